/*
 * SMTP commands other than AUTH and the message transfer: greeting,
 * envelope, housekeeping, STARTTLS. RFC 5321 §4.1.1 unless noted.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp-int.h"

static void reset_transaction(struct smtp_session *s)
{
    smtp_txn_free(&s->txn);
}

static void set_helo(struct smtp_session *s, const char *args, size_t len, bool esmtp)
{
    if (len >= sizeof s->helo)
        len = sizeof s->helo - 1;
    memcpy(s->helo, args, len);
    s->helo[len] = 0;
    s->esmtp = esmtp;
    reset_transaction(s); /* §4.1.4: EHLO/HELO also reset the transaction */
}

void smtp_cmd_helo(struct smtp_session *s, const char *args, size_t len)
{
    if (!smtp_valid_helo(args, len)) {
        smtp_error(s, "501 5.5.4 Syntax: HELO hostname");
        return;
    }
    set_helo(s, args, len, false);
    smtp_reply(s, "250 %s", s->cfg->hostname);
}

/* AUTH is offered on submission only, and before TLS only where plain-text
 * mechanisms would be allowed at all. */
static bool auth_offered(struct smtp_session *s)
{
    if (s->role != ROLE_SUBMISSION || s->user[0])
        return false;
    return conn_is_tls(s->conn) || (conn_is_loopback(s->conn) && s->cfg->plaintext_on_loopback);
}

void smtp_cmd_ehlo(struct smtp_session *s, const char *args, size_t len)
{
    if (!smtp_valid_helo(args, len)) {
        smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
        return;
    }
    set_helo(s, args, len, true);
    smtp_reply(s, "250-%s Hello %s [%s]", s->cfg->hostname, s->helo, conn_peer_ip(s->conn));
    smtp_reply(s, "250-PIPELINING");
    smtp_reply(s, "250-SIZE %" PRIu64, s->cfg->max_message_size);
    smtp_reply(s, "250-8BITMIME");
    smtp_reply(s, "250-SMTPUTF8");
    smtp_reply(s, "250-ENHANCEDSTATUSCODES");
    smtp_reply(s, "250-CHUNKING");
    if (!conn_is_tls(s->conn))
        smtp_reply(s, "250-STARTTLS");
    if (auth_offered(s)) {
        if (!s->auth)
            s->auth = auth_session_new("smtp", s->conn);
        if (s->auth && auth_mechanisms(s->auth)[0])
            smtp_reply(s, "250-AUTH %s", auth_mechanisms(s->auth));
    }
    smtp_reply(s, "250 HELP");
}

static bool same_address(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* The user owns the address: their own, a plus-address of it, or an
 * address that resolves to them. */
static bool sender_owned(struct smtp_session *s, const char *address)
{
    if (same_address(address, s->user))
        return true;
    const char *at = strrchr(address, '@');
    const char *plus = memchr(address, '+', at ? (size_t)(at - address) : 0);
    if (plus) {
        char base[SMTP_MAX_PATH + 1];
        snprintf(base, sizeof base, "%.*s%s", (int)(plus - address), address, at);
        if (same_address(base, s->user))
            return true;
    }
    struct store_rcpt r;
    if (store_resolve_rcpt(s->store, address, &r) != STORE_OK)
        return false;
    for (unsigned i = 0; i < r.n_users; i++)
        if (r.user_ids[i] == s->user_id)
            return true;
    return false;
}

static void log_reject(struct smtp_session *s, const char *what, const char *addr,
                       const char *code)
{
    char v[400];
    log_event(PLOG_INFO, conn_id(s->conn), "event=%s-rejected peer=%s address=%s code=%s", what,
              conn_peer_ip(s->conn), log_value(addr, v, sizeof v), code);
}

/* Maps a path parse error to the reply of RFC 5321 / RFC 3463 / RFC 6531. */
static void path_error(struct smtp_session *s, enum smtp_arg_error err, bool sender)
{
    const char *which = sender ? "sender" : "recipient";
    const char *detail = sender ? "5.1.7" : "5.1.3";
    switch (err) {
    case SMTP_ARG_SYNTAX:
        smtp_error(s, "501 5.5.4 Syntax: %s", sender ? "MAIL FROM:<address>" : "RCPT TO:<address>");
        break;
    case SMTP_ARG_PATH:
        smtp_error(s, "501 %s Bad %s address syntax", detail, which);
        break;
    case SMTP_ARG_TOOLONG:
        smtp_error(s, "501 %s The %s address is too long", detail, which);
        break;
    case SMTP_ARG_NONASCII:
        smtp_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
        break;
    case SMTP_ARG_PARAM_SYNTAX:
        smtp_error(s, "501 5.5.4 Bad parameter syntax");
        break;
    case SMTP_ARG_PARAM_UNKNOWN:
        smtp_error(s, "555 5.5.4 Unsupported parameter");
        break;
    case SMTP_ARG_OK:
        break;
    }
}

void smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len)
{
    if (s->txn) {
        smtp_error(s, "503 5.5.1 Nested MAIL command");
        return;
    }
    if (s->role == ROLE_SUBMISSION && !s->user[0]) {
        smtp_error(s, "530 5.7.0 Authentication required");
        return;
    }
    struct smtp_txn *t = calloc(1, sizeof *t);
    if (!t) {
        smtp_reply(s, "451 4.3.0 Out of memory");
        return;
    }
    enum smtp_arg_error err = smtp_parse_mail(args, len, &t->from, &t->params);
    if (err != SMTP_ARG_OK) {
        free(t);
        path_error(s, err, true);
        return;
    }
    /* RFC 1870 §6.1 */
    if (t->params.has_size && t->params.size > s->cfg->max_message_size) {
        free(t);
        smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
        return;
    }
    if (s->role == ROLE_SUBMISSION && (t->from.null || !sender_owned(s, t->from.address))) {
        log_reject(s, "sender", t->from.address, "553");
        free(t);
        smtp_reply(s, "553 5.7.1 Sender address rejected: not owned by user %s", s->user);
        return;
    }
    s->txn = t;
    s->txn_count++;
    char v[400];
    log_event(PLOG_DEBUG, conn_id(s->conn), "event=mail from=%s",
              log_value(t->from.address, v, sizeof v));
    smtp_reply(s, "250 2.1.0 Ok");
    smtp_checks_mail(s); /* SPF, in the background of RCPT and DATA */
}

static int add_user(struct smtp_txn *t, int64_t id, unsigned max)
{
    for (unsigned i = 0; i < t->n_users; i++)
        if (t->user_ids[i] == id)
            return 0;
    if (t->n_users == t->cap_users) {
        unsigned cap = t->cap_users ? t->cap_users * 2 : 8;
        if (cap > max)
            cap = max;
        if (t->n_users >= cap)
            return -1;
        int64_t *ids = realloc(t->user_ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        t->user_ids = ids;
        t->cap_users = cap;
    }
    t->user_ids[t->n_users++] = id;
    return 0;
}

static int add_remote(struct smtp_txn *t, const char *address, unsigned max)
{
    for (unsigned i = 0; i < t->n_remote; i++)
        if (strcasecmp(t->remote[i], address) == 0)
            return 0;
    if (t->n_remote == t->cap_remote) {
        unsigned cap = t->cap_remote ? t->cap_remote * 2 : 4;
        if (cap > max)
            cap = max;
        if (t->n_remote >= cap)
            return -1;
        char **r = realloc(t->remote, cap * sizeof *r);
        if (!r)
            return -1;
        t->remote = r;
        t->cap_remote = cap;
    }
    t->remote[t->n_remote] = strdup(address);
    if (!t->remote[t->n_remote])
        return -1;
    t->n_remote++;
    return 0;
}

/* §4.5.1: <Postmaster> goes to postmaster@ of the server's own domain: the
 * host name, or the nearest parent of it that is a local domain. */
static bool postmaster_address(struct smtp_session *s, char *out, size_t outlen)
{
    for (const char *d = s->cfg->hostname; d; d = strchr(d, '.'), d = d ? d + 1 : NULL) {
        if (store_domain_is_local(s->store, d)) {
            snprintf(out, outlen, "postmaster@%s", d);
            return true;
        }
    }
    return false;
}

static void lowercase_domain(char *address)
{
    char *at = strrchr(address, '@');
    for (char *p = at; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* Accepts a local recipient: expands it and checks quota. Returns true if a
 * reply other than 250 was sent. */
static bool take_local(struct smtp_session *s, const char *address)
{
    struct smtp_txn *t = s->txn;
    struct store_rcpt r;
    unsigned max_users = s->cfg->max_recipients * 4;
    switch (store_resolve_rcpt(s->store, address, &r)) {
    case STORE_OK:
        break;
    case STORE_NOTFOUND:
    case STORE_INVALID: /* valid SMTP syntax no account can have (quoted, ...) */
        log_reject(s, "rcpt", address, "550");
        smtp_error(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", address);
        return true;
    default:
        smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
        return true;
    }
    if (r.truncated) {
        /* Delivering to part of an alias would lose mail silently. */
        log_reject(s, "rcpt", address, "550");
        smtp_error(s, "550 5.2.4 <%s>: Alias expands to too many recipients", address);
        return true;
    }
    for (unsigned i = 0; i < r.n_users; i++) {
        /* A message larger than the whole quota can never be delivered:
         * permanent. Otherwise the user may make room: temporary (RFC 3463
         * X.2.2 allows both). */
        uint64_t size = t->params.has_size ? t->params.size : 0;
        if (size > r.quota[i]) {
            log_reject(s, "rcpt", address, "552");
            smtp_reply(s, "552 5.2.2 <%s>: Message exceeds mailbox quota", address);
            return true;
        }
        if (r.quota_free[i] == 0 || size > r.quota_free[i]) {
            log_reject(s, "rcpt", address, "452");
            smtp_reply(s, "452 4.2.2 <%s>: Mailbox full", address);
            return true;
        }
    }
    for (unsigned i = 0; i < r.n_users; i++)
        if (add_user(t, r.user_ids[i], max_users) != 0)
            goto too_many;
    for (unsigned i = 0; i < r.n_remote; i++)
        if (add_remote(t, r.remote[i], s->cfg->max_recipients) != 0)
            goto too_many;
    return false;
too_many:
    smtp_reply(s, "452 4.5.3 Too many recipients");
    return true;
}

void smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len)
{
    struct smtp_txn *t = s->txn;
    if (!t) {
        smtp_error(s, "503 5.5.1 Need MAIL before RCPT");
        return;
    }
    struct smtp_path path;
    enum smtp_arg_error err = smtp_parse_rcpt(args, len, t->params.smtputf8, &path);
    if (err != SMTP_ARG_OK) {
        path_error(s, err, false);
        return;
    }
    /* RFC 5321 §4.5.3.1.8 */
    if (t->n_rcpt >= s->cfg->max_recipients) {
        smtp_reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    char address[SMTP_MAX_PATH + 1];
    if (path.postmaster) {
        if (!postmaster_address(s, address, sizeof address)) {
            smtp_error(s, "550 5.1.1 <Postmaster>: no local postmaster");
            return;
        }
    } else {
        snprintf(address, sizeof address, "%s", path.address);
        lowercase_domain(address);
    }
    const char *domain = strrchr(address, '@') + 1;
    if (store_domain_is_local(s->store, domain)) {
        if (take_local(s, address))
            return;
    } else if (s->role == ROLE_SUBMISSION) {
        if (add_remote(t, address, s->cfg->max_recipients) != 0) {
            smtp_reply(s, "452 4.5.3 Too many recipients");
            return;
        }
    } else {
        log_reject(s, "relay", address, "554");
        smtp_error(s, "554 5.7.1 <%s>: Relay access denied", address);
        return;
    }
    if (t->n_rcpt++ == 0)
        snprintf(t->first_rcpt, sizeof t->first_rcpt, "%s", address);
    smtp_reply(s, "250 2.1.5 Ok");
}

void smtp_cmd_rset(struct smtp_session *s, const char *args, size_t len)
{
    reset_transaction(s);
    smtp_reply(s, "250 2.0.0 Ok");
}

void smtp_cmd_noop(struct smtp_session *s, const char *args, size_t len)
{
    smtp_reply(s, "250 2.0.0 Ok");
}

void smtp_cmd_quit(struct smtp_session *s, const char *args, size_t len)
{
    smtp_reply(s, "221 2.0.0 %s Bye", s->cfg->hostname);
    smtp_close(s);
}

void smtp_cmd_help(struct smtp_session *s, const char *args, size_t len)
{
    smtp_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP");
    smtp_reply(s, "214-2.0.0           VRFY STARTTLS AUTH");
    smtp_reply(s, "214 2.0.0 See RFC 5321");
}

/* §3.5.3: 252 when we will not confirm an address but would take mail. */
void smtp_cmd_vrfy(struct smtp_session *s, const char *args, size_t len)
{
    if (len == 0) {
        smtp_error(s, "501 5.5.4 Syntax: VRFY address");
        return;
    }
    smtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

/* §3.5.2: mailing lists are not disclosed. */
void smtp_cmd_expn(struct smtp_session *s, const char *args, size_t len)
{
    smtp_reply(s, "502 5.5.1 EXPN not available");
}

/* RFC 3207 §4 */
void smtp_cmd_starttls(struct smtp_session *s, const char *args, size_t len)
{
    if (conn_is_tls(s->conn)) {
        smtp_error(s, "503 5.5.1 TLS already active");
        return;
    }
    if (s->txn) {
        smtp_error(s, "503 5.5.1 STARTTLS not allowed during a mail transaction");
        return;
    }
    smtp_reply(s, "220 2.0.0 Ready to start TLS");
    /* §4.2: forget everything learnt before TLS; the client says EHLO again.
     * conn_starttls drops whatever the client pipelined after STARTTLS. */
    s->helo[0] = 0;
    s->esmtp = false;
    auth_session_free(&s->auth);
    if (conn_starttls(s->conn) != 0) {
        log_event(PLOG_ERROR, conn_id(s->conn), "event=starttls-failed peer=%s",
                  conn_peer_ip(s->conn));
        smtp_close(s);
    }
}
