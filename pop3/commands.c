/*
 * POP3 commands other than the login (auth.c) and the message transfer
 * (retr.c): CAPA, STLS, the maildrop listing, DELE / RSET, QUIT.
 * RFC 1939 §5-§7 unless noted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pop3/pop3-int.h"

struct pop3_msg *pop3_message_arg(struct pop3_session *s, const struct pop3_arg *arg,
                                  uint32_t *number)
{
    uint32_t n;
    if (!pop3_parse_number(arg->p, arg->len, &n)) {
        pop3_error(s, "-ERR Invalid message number");
        return NULL;
    }
    if (n == 0 || n > s->drop.n) {
        pop3_error(s, "-ERR No such message, only %zu in maildrop", s->drop.n);
        return NULL;
    }
    struct pop3_msg *m = &s->drop.msgs[n - 1];
    /* §5: "may not refer to a message marked as deleted". */
    if (m->deleted) {
        pop3_error(s, "-ERR Message %" PRIu32 " already deleted", n);
        return NULL;
    }
    *number = n;
    return m;
}

/* RFC 2449 §5: the capabilities in the current state. */
void pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    bool authz = s->state == ST_AUTHORIZATION;
    pop3_reply(s, "+OK Capability list follows");
    pop3_reply(s, "TOP");
    pop3_reply(s, "UIDL");
    pop3_reply(s, "RESP-CODES");
    pop3_reply(s, "AUTH-RESP-CODE"); /* RFC 3206 §5 */
    pop3_reply(s, "PIPELINING");
    pop3_reply(s, "EXPIRE NEVER");
    if (authz) {
        /* RFC 2595 §4 (like IMAP's LOGINDISABLED): USER is not offered
         * where it would be refused, i.e. before TLS. */
        if (pop3_plaintext_allowed(s))
            pop3_reply(s, "USER");
        if (!s->auth)
            s->auth = auth_session_new("pop", s->conn);
        if (s->auth && auth_mechanisms(s->auth)[0])
            pop3_reply(s, "SASL %s", auth_mechanisms(s->auth));
        if (!conn_is_tls(s->conn))
            pop3_reply(s, "STLS");
    }
    pop3_reply(s, "IMPLEMENTATION %s", POP3_IMPLEMENTATION);
    pop3_reply(s, ".");
}

/* RFC 2595 §4 */
void pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    if (conn_is_tls(s->conn)) {
        pop3_error(s, "-ERR TLS already active");
        return;
    }
    pop3_reply(s, "+OK Begin TLS negotiation");
    /* Forget what was said before TLS; conn_starttls drops whatever the
     * client pipelined after STLS (RFC 2595 §3.1). */
    explicit_bzero(s->user, sizeof s->user);
    auth_session_free(&s->auth);
    if (conn_starttls(s->conn) != 0) {
        log_event(PLOG_ERROR, conn_id(s->conn), "event=starttls-failed peer=%s",
                  conn_peer_ip(s->conn));
        pop3_close(s);
    }
}

/* §7: APOP needs the clear password (or its MD5 state) on the server. The
 * store keeps only a yescrypt hash and SCRAM keys, so APOP is neither
 * offered (no timestamp in the greeting) nor accepted. */
void pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    pop3_error(s, "-ERR APOP is not available; use USER/PASS or AUTH over TLS");
}

void pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    const struct pop3_maildrop *d = &s->drop;
    pop3_reply(s, "+OK %zu %" PRIu64, d->n - d->n_deleted, d->size - d->size_deleted);
}

void pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    const struct pop3_maildrop *d = &s->drop;
    uint32_t n;
    if (cmd->argc == 1) {
        const struct pop3_msg *m = pop3_message_arg(s, &cmd->argv[0], &n);
        if (m)
            pop3_reply(s, "+OK %" PRIu32 " %" PRIu64, n, m->size);
        return;
    }
    pop3_reply(s, "+OK %zu messages (%" PRIu64 " octets)", d->n - d->n_deleted,
               d->size - d->size_deleted);
    for (size_t i = 0; i < d->n; i++)
        if (!d->msgs[i].deleted)
            pop3_reply(s, "%zu %" PRIu64, i + 1, d->msgs[i].size);
    pop3_reply(s, ".");
}

void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    const struct pop3_maildrop *d = &s->drop;
    char id[POP3_UIDL_LEN + 1];
    uint32_t n;
    if (cmd->argc == 1) {
        const struct pop3_msg *m = pop3_message_arg(s, &cmd->argv[0], &n);
        if (m) {
            pop3_uidl(d->uidvalidity, m->uid, id);
            pop3_reply(s, "+OK %" PRIu32 " %s", n, id);
        }
        return;
    }
    pop3_reply(s, "+OK Unique-id listing follows");
    for (size_t i = 0; i < d->n; i++) {
        if (d->msgs[i].deleted)
            continue;
        pop3_uidl(d->uidvalidity, d->msgs[i].uid, id);
        pop3_reply(s, "%zu %s", i + 1, id);
    }
    pop3_reply(s, ".");
}

/* §6: DELE only marks; the message goes at QUIT (UPDATE), RSET unmarks. */
void pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    uint32_t n;
    struct pop3_msg *m = pop3_message_arg(s, &cmd->argv[0], &n);
    if (!m)
        return;
    m->deleted = true;
    s->drop.n_deleted++;
    s->drop.size_deleted += m->size;
    pop3_reply(s, "+OK Message %" PRIu32 " deleted", n);
}

void pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    pop3_reply(s, "+OK");
}

void pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    struct pop3_maildrop *d = &s->drop;
    for (size_t i = 0; i < d->n; i++)
        d->msgs[i].deleted = false;
    d->n_deleted = 0;
    d->size_deleted = 0;
    pop3_reply(s, "+OK Maildrop has %zu messages (%" PRIu64 " octets)", d->n, d->size);
}

/* §4: QUIT before login just ends; §6: after it, the UPDATE state. */
void pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    if (s->state == ST_TRANSACTION) {
        pop3_update(s);
        return;
    }
    pop3_reply(s, "+OK %s POP3 server signing off", s->cfg->hostname);
    pop3_close(s);
}
