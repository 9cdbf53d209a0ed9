/*
 * SMTP session: connection callbacks, the command table and dispatch, and
 * the phase machine that decides what the next input bytes are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp-int.h"

/* Command flags. */
#define CMD_NEEDS_HELO 0x1  /* RFC 5321 §4.1.4: EHLO/HELO first */
#define CMD_NO_ARGS 0x2     /* any argument is a 501 */

/*
 * The command table, indexed by enum smtp_verb. PIPELINING (RFC 2920 §3.1):
 * EHLO, DATA, BDAT LAST, QUIT, STARTTLS and AUTH end a pipelined group; the
 * session honours that by pausing input while their effect is pending.
 */
static const struct smtp_command {
    const char *name;
    unsigned flags;
    smtp_cmd_fn run;
} commands[] = {
    [SMTP_HELO] = { "HELO", 0, smtp_cmd_helo },
    [SMTP_EHLO] = { "EHLO", 0, smtp_cmd_ehlo },
    [SMTP_MAIL] = { "MAIL", CMD_NEEDS_HELO, smtp_cmd_mail },
    [SMTP_RCPT] = { "RCPT", CMD_NEEDS_HELO, smtp_cmd_rcpt },
    [SMTP_DATA] = { "DATA", CMD_NEEDS_HELO | CMD_NO_ARGS, smtp_cmd_data },
    [SMTP_BDAT] = { "BDAT", CMD_NEEDS_HELO, smtp_cmd_bdat },
    [SMTP_RSET] = { "RSET", CMD_NO_ARGS, smtp_cmd_rset },
    [SMTP_NOOP] = { "NOOP", 0, smtp_cmd_noop },
    [SMTP_QUIT] = { "QUIT", CMD_NO_ARGS, smtp_cmd_quit },
    [SMTP_HELP] = { "HELP", 0, smtp_cmd_help },
    [SMTP_VRFY] = { "VRFY", 0, smtp_cmd_vrfy },
    [SMTP_EXPN] = { "EXPN", 0, smtp_cmd_expn },
    [SMTP_STARTTLS] = { "STARTTLS", CMD_NO_ARGS, smtp_cmd_starttls },
    [SMTP_AUTH] = { "AUTH", CMD_NEEDS_HELO, smtp_cmd_auth },
};

static struct store *smtp_store;
static struct dns *smtp_dns;
static const struct dmarc_psl *smtp_psl;

static const char *phase_names[] = {
    [PHASE_COMMAND] = "command", [PHASE_DATA] = "data", [PHASE_BDAT] = "bdat",
    [PHASE_AUTH] = "auth",       [PHASE_WAIT] = "wait", [PHASE_CLOSING] = "closing",
};

void smtp_enter(struct smtp_session *s, enum smtp_phase phase)
{
    if (s->phase == phase)
        return;
    log_event(PLOG_DEBUG, conn_id(s->conn), "event=phase from=%s to=%s",
              phase_names[s->phase], phase_names[phase]);
    s->phase = phase;
}

static void vreply(struct smtp_session *s, const char *fmt, va_list ap)
{
    char line[1024];
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    conn_write(s->conn, line, (size_t)n);
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
}

void smtp_error(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
    if (++s->errors >= s->cfg->max_errors) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=too-many-errors peer=%s errors=%u",
                  conn_peer_ip(s->conn), s->errors);
        smtp_reply(s, "421 4.7.0 %s Too many errors, closing connection", s->cfg->hostname);
        smtp_close(s);
    }
}

void smtp_close(struct smtp_session *s)
{
    smtp_enter(s, PHASE_CLOSING);
    conn_close(s->conn);
}

void smtp_txn_free(struct smtp_txn **txn)
{
    struct smtp_txn *t = *txn;
    if (!t)
        return;
    smtp_checks_free(&t->checks);
    for (unsigned i = 0; i < t->n_remote; i++)
        free(t->remote[i]);
    free(t->remote);
    free(t->user_ids);
    buf_free(&t->msg);
    free(t);
    *txn = NULL;
}

void smtp_session_free(struct smtp_session **sp)
{
    struct smtp_session *s = *sp;
    if (!s)
        return;
    smtp_txn_free(&s->txn);
    auth_session_free(&s->auth);
    free(s);
    *sp = NULL;
}

/*
 * Runs after the final reply of a transaction: the session goes back to
 * reading commands, or closes if the server is stopping.
 */
void smtp_after_transaction(struct smtp_session *s)
{
    smtp_txn_free(&s->txn);
    if (s->stopping) {
        smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
        smtp_close(s);
        return;
    }
    smtp_enter(s, PHASE_COMMAND);
}

static void dispatch(struct smtp_session *s, const char *line, size_t len)
{
    const char *args;
    size_t args_len;
    enum smtp_verb verb = smtp_parse_verb(line, len, &args, &args_len);
    if (verb == SMTP_UNKNOWN) {
        char name[32];
        log_event(PLOG_INFO, conn_id(s->conn), "event=unknown-command peer=%s command=%s",
                  conn_peer_ip(s->conn),
                  log_value(len < 16 ? line : "(long)", name, sizeof name));
        smtp_error(s, "500 5.5.2 Command not recognized");
        return;
    }
    const struct smtp_command *cmd = &commands[verb];
    if ((cmd->flags & CMD_NEEDS_HELO) && s->helo[0] == 0) {
        smtp_error(s, "503 5.5.1 Send HELO or EHLO first");
        return;
    }
    if ((cmd->flags & CMD_NO_ARGS) && args_len > 0) {
        smtp_error(s, "501 5.5.4 Syntax: %s", cmd->name);
        return;
    }
    cmd->run(s, args, args_len);
}

/* Command lines: the limit is the config's, or RFC 4954's for SASL lines. */
static bool read_command(struct smtp_session *s)
{
    const char *line;
    size_t len;
    bool crlf;
    size_t max = s->phase == PHASE_AUTH ? SMTP_MAX_AUTH_LINE : s->cfg->max_line_length;
    switch (conn_getline(s->conn, max, &line, &len, &crlf)) {
    case CONN_AGAIN:
        return false;
    case CONN_TOOLONG:
        smtp_error(s, "500 5.5.6 Line too long");
        if (s->phase == PHASE_AUTH) {
            auth_session_free(&s->auth);
            smtp_enter(s, PHASE_COMMAND);
        }
        return true;
    case CONN_OK:
        break;
    }
    if (s->phase == PHASE_AUTH)
        smtp_auth_response(s, line, len);
    else
        dispatch(s, line, len);
    return true;
}

static void on_input(struct conn *c)
{
    struct smtp_session *s = conn_data(c);
    bool more = true;
    while (more) {
        switch (s->phase) {
        case PHASE_COMMAND:
        case PHASE_AUTH:
            more = read_command(s);
            break;
        case PHASE_DATA:
            more = smtp_read_data(s);
            break;
        case PHASE_BDAT:
            more = smtp_read_bdat(s);
            break;
        case PHASE_WAIT:
        case PHASE_CLOSING:
            more = false;
            break;
        }
    }
}

static void on_open(struct conn *c)
{
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s) {
        conn_close(c);
        return;
    }
    s->conn = c;
    s->store = smtp_store;
    s->dns = smtp_dns;
    s->psl = smtp_psl;
    s->cfg = server_config(conn_server(c));
    s->role = conn_kind(c) == LISTEN_SMTP ? ROLE_MX : ROLE_SUBMISSION;
    s->phase = PHASE_COMMAND;
    conn_set_data(c, s);
    conn_set_timeout(c, (uint64_t)s->cfg->smtp_timeout * 1000);
    smtp_reply(s, "220 %s ESMTP Petrel", s->cfg->hostname);
}

static void on_timeout(struct conn *c)
{
    struct smtp_session *s = conn_data(c);
    log_event(PLOG_INFO, conn_id(c), "event=timeout peer=%s phase=%s", conn_peer_ip(c),
              phase_names[s->phase]);
    if (s->committing)
        return; /* the commit's reply is owed first */
    smtp_reply(s, "421 4.4.2 %s Timeout, closing connection", s->cfg->hostname);
    smtp_close(s);
}

static void on_shutdown(struct conn *c)
{
    struct smtp_session *s = conn_data(c);
    s->stopping = true;
    /* A transaction under way finishes first (smtp_after_transaction):
     * its data, its checks (bounded by [checks] timeout), its commit. */
    if (s->txn && (s->phase == PHASE_DATA || s->phase == PHASE_BDAT ||
                   s->phase == PHASE_WAIT || s->committing))
        return;
    smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
    smtp_close(s);
}

static void on_close(struct conn *c)
{
    struct smtp_session *s = conn_data(c);
    if (!s)
        return;
    conn_set_data(c, NULL);
    s->closed = true;
    s->conn = NULL;
    /* A commit in flight owns the message bytes; its callback frees us. */
    if (!s->committing)
        smtp_session_free(&s);
}

static void on_refuse(struct conn *c, const char *why)
{
    conn_printf(c, "421 4.7.0 %s Too many connections (%s), try again later\r\n",
                server_config(conn_server(c))->hostname, why);
}

static const struct conn_handler smtp_handler = {
    .open = on_open,
    .input = on_input,
    .timeout = on_timeout,
    .shutdown = on_shutdown,
    .close = on_close,
    .refuse = on_refuse,
};

int smtp_start(struct server *srv, struct store *store, struct dns *dns,
               const struct dmarc_psl *psl, char *err, size_t errlen)
{
    static const struct listener_spec listeners[] = {
        { LISTEN_SMTP, TLS_NONE },
        { LISTEN_SUBMISSION, TLS_NONE },
        { LISTEN_SUBMISSIONS, TLS_IMPLICIT },
    };
    smtp_store = store;
    smtp_dns = dns;
    smtp_psl = psl;
    return listeners_start(srv, listeners, sizeof listeners / sizeof listeners[0], &smtp_handler,
                           NULL, err, errlen);
}
