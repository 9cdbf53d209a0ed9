/*
 * POP3 session: connection callbacks, the command table and dispatch, and
 * the state machine of RFC 1939 §3:
 *
 *   greeting -> AUTHORIZATION --USER/PASS, AUTH (SASL)--> TRANSACTION
 *            --QUIT--> UPDATE (expunge the DELE'd messages) -> close
 *
 * QUIT in AUTHORIZATION, a dropped connection, a timeout or a server
 * shutdown close the session without UPDATE: nothing is deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-int.h"

/* The states a command is valid in (RFC 1939 §4-§6, RFC 2449 §5 for CAPA). */
#define IN_AUTHZ 0x1
#define IN_TRANS 0x2

/*
 * The command table, indexed by enum pop3_verb. min/max count the
 * arguments; usage is the text of the syntax error. RFC 2449 §6.6
 * PIPELINING: commands are read one after the other from the input; a
 * command that waits (a login, RETR's read, QUIT's UPDATE) pauses input so
 * the replies keep their order.
 */
static const struct pop3_command {
    const char *name;
    unsigned states;
    unsigned min_args, max_args;
    const char *usage;
    pop3_cmd_fn run;
} commands[] = {
    [POP3_USER] = { "USER", IN_AUTHZ, 1, 1, "USER name", pop3_cmd_user },
    [POP3_PASS] = { "PASS", IN_AUTHZ, 1, 1, "PASS password", pop3_cmd_pass },
    [POP3_APOP] = { "APOP", IN_AUTHZ, 2, 2, "APOP name digest", pop3_cmd_apop },
    [POP3_AUTH] = { "AUTH", IN_AUTHZ, 0, 2, "AUTH mechanism [initial-response]", pop3_cmd_auth },
    [POP3_STLS] = { "STLS", IN_AUTHZ, 0, 0, "STLS", pop3_cmd_stls },
    [POP3_CAPA] = { "CAPA", IN_AUTHZ | IN_TRANS, 0, 0, "CAPA", pop3_cmd_capa },
    [POP3_STAT] = { "STAT", IN_TRANS, 0, 0, "STAT", pop3_cmd_stat },
    [POP3_LIST] = { "LIST", IN_TRANS, 0, 1, "LIST [msg]", pop3_cmd_list },
    [POP3_RETR] = { "RETR", IN_TRANS, 1, 1, "RETR msg", pop3_cmd_retr },
    [POP3_DELE] = { "DELE", IN_TRANS, 1, 1, "DELE msg", pop3_cmd_dele },
    [POP3_NOOP] = { "NOOP", IN_TRANS, 0, 0, "NOOP", pop3_cmd_noop },
    [POP3_RSET] = { "RSET", IN_TRANS, 0, 0, "RSET", pop3_cmd_rset },
    [POP3_QUIT] = { "QUIT", IN_AUTHZ | IN_TRANS, 0, 0, "QUIT", pop3_cmd_quit },
    [POP3_TOP] = { "TOP", IN_TRANS, 2, 2, "TOP msg lines", pop3_cmd_top },
    [POP3_UIDL] = { "UIDL", IN_TRANS, 0, 1, "UIDL [msg]", pop3_cmd_uidl },
};

static struct store *pop3_store;

static const char *state_names[] = {
    [ST_AUTHORIZATION] = "authorization", [ST_SASL] = "sasl",
    [ST_TRANSACTION] = "transaction",     [ST_UPDATE] = "update",
    [ST_CLOSING] = "closing",
};

void pop3_enter(struct pop3_session *s, enum pop3_state state)
{
    if (s->state == state)
        return;
    log_event(PLOG_DEBUG, s->conn ? conn_id(s->conn) : 0, "event=state from=%s to=%s",
              state_names[s->state], state_names[state]);
    s->state = state;
}

static void vreply(struct pop3_session *s, const char *fmt, va_list ap)
{
    if (!s->conn)
        return;
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

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
}

void pop3_error(struct pop3_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
    if (++s->errors >= s->cfg->max_errors && s->state != ST_CLOSING) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=too-many-errors peer=%s errors=%u",
                  conn_peer_ip(s->conn), s->errors);
        pop3_reply(s, "-ERR Too many errors, closing connection");
        pop3_close(s);
    }
}

void pop3_close(struct pop3_session *s)
{
    pop3_enter(s, ST_CLOSING);
    if (s->conn)
        conn_close(s->conn);
}

bool pop3_plaintext_allowed(const struct pop3_session *s)
{
    return conn_is_tls(s->conn) || (conn_is_loopback(s->conn) && s->cfg->plaintext_on_loopback);
}

void pop3_step_begin(struct pop3_session *s)
{
    s->busy = true;
    conn_pause(s->conn);
}

void pop3_step_done(struct pop3_session *s)
{
    s->busy = false;
    if (!s->conn)
        return;
    if (s->stopping && s->state != ST_CLOSING) {
        pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
        pop3_close(s);
    } else if (s->state != ST_CLOSING) {
        conn_resume(s->conn);
    }
    conn_flush(s->conn);
}

static void session_free(struct pop3_session **sp)
{
    struct pop3_session *s = *sp;
    if (!s)
        return;
    pop3_stream_cancel(s);
    auth_session_free(&s->auth);
    pop3_maildrop_free(&s->drop);
    pop3_update_free(&s->upd);
    explicit_bzero(s->user, sizeof s->user);
    free(s);
    *sp = NULL;
}

bool pop3_release(struct pop3_session **sp)
{
    struct pop3_session *s = *sp;
    s->pending--;
    if (!s->closed)
        return true;
    if (s->pending == 0)
        session_free(sp);
    *sp = NULL;
    return false;
}

static void dispatch(struct pop3_session *s, const char *line, size_t len)
{
    struct pop3_cmd cmd;
    enum pop3_parse r = pop3_parse_line(line, len, &cmd);
    if (r == POP3_PARSE_UNKNOWN) {
        /* The keyword only: what follows may be a password. */
        char kw[17], v[40];
        size_t n = 0;
        while (n < len && line[n] != ' ')
            n++;
        snprintf(kw, sizeof kw, "%.*s", (int)(n < 16 ? n : 0), line);
        log_event(PLOG_INFO, conn_id(s->conn), "event=unknown-command peer=%s command=%s",
                  conn_peer_ip(s->conn), log_value(n < 16 ? kw : "(long)", v, sizeof v));
        pop3_error(s, "-ERR Unknown command");
        return;
    }
    const struct pop3_command *c = &commands[cmd.verb];
    bool authz = s->state == ST_AUTHORIZATION;
    if (!(c->states & (authz ? IN_AUTHZ : IN_TRANS))) {
        pop3_error(s, "-ERR %s is not valid %s", c->name, authz ? "before login" : "after login");
        return;
    }
    if (r == POP3_PARSE_TOOLONG) {
        pop3_error(s, "-ERR Argument too long");
        return;
    }
    if (r != POP3_PARSE_OK || cmd.argc < c->min_args || cmd.argc > c->max_args) {
        pop3_error(s, "-ERR Syntax: %s", c->usage);
        return;
    }
    log_event(PLOG_DEBUG, conn_id(s->conn), "event=command verb=%s", c->name);
    c->run(s, &cmd);
}

/* Reads and runs one line; false when no whole line is buffered. */
static bool read_line(struct pop3_session *s)
{
    const char *line;
    size_t len;
    bool sasl = s->state == ST_SASL;
    size_t max = sasl ? POP3_MAX_AUTH_LINE + 2 : s->cfg->max_line_length;
    switch (conn_getline(s->conn, max, &line, &len, NULL)) {
    case CONN_AGAIN:
        return false;
    case CONN_TOOLONG:
        if (sasl) {
            auth_session_free(&s->auth);
            pop3_enter(s, ST_AUTHORIZATION);
        }
        pop3_error(s, "-ERR Line too long");
        return true;
    case CONN_OK:
        break;
    }
    if (sasl)
        pop3_auth_response(s, line, len);
    else
        dispatch(s, line, len);
    return true;
}

static void on_input(struct conn *c)
{
    struct pop3_session *s = conn_data(c);
    while (!s->busy && (s->state == ST_AUTHORIZATION || s->state == ST_SASL ||
                        s->state == ST_TRANSACTION)) {
        if (!read_line(s))
            break;
    }
}

static void on_open(struct conn *c)
{
    struct pop3_session *s = calloc(1, sizeof *s);
    if (!s) {
        conn_close(c);
        return;
    }
    s->conn = c;
    s->store = pop3_store;
    s->cfg = server_config(conn_server(c));
    s->state = ST_AUTHORIZATION;
    conn_set_data(c, s);
    conn_set_timeout(c, (uint64_t)s->cfg->preauth_timeout * 1000);
    /* No APOP timestamp: APOP is not offered (commands.c). */
    pop3_reply(s, "+OK %s POP3 server ready", s->cfg->hostname);
}

/*
 * RFC 1939 §3: the autologout timer is at least 10 minutes after login
 * (idle_timeout, 30 by default); before login, preauth_timeout. A step
 * under way (the UPDATE commit, a RETR to a slow reader) is not cut, but a
 * RETR whose reader took nothing for a whole timeout is: it would hold the
 * message in memory for ever.
 */
static void on_timeout(struct conn *c)
{
    struct pop3_session *s = conn_data(c);
    bool authed = s->state == ST_TRANSACTION || s->state == ST_UPDATE;
    unsigned secs = authed ? s->cfg->idle_timeout : s->cfg->preauth_timeout;
    if (s->stream && pop3_stream_stalled(s)) {
        log_event(PLOG_INFO, conn_id(c), "event=pop3-stalled peer=%s user=%s", conn_peer_ip(c),
                  s->login);
        pop3_stream_cancel(s);
        s->busy = false;
        pop3_close(s); /* mid-response: no -ERR line can follow */
        return;
    }
    if (s->busy) {
        conn_set_timeout(c, (uint64_t)secs * 1000);
        return;
    }
    log_event(PLOG_INFO, conn_id(c), "event=timeout peer=%s state=%s", conn_peer_ip(c),
              state_names[s->state]);
    /* §3 says close without a reply; a line saying why costs nothing and
     * clients log it. Nothing is deleted: no UPDATE without QUIT. */
    pop3_reply(s, "-ERR Autologout: idle for too long, closing connection");
    pop3_close(s);
}

static void on_shutdown(struct conn *c)
{
    struct pop3_session *s = conn_data(c);
    s->stopping = true;
    if (s->stream) {
        /* A RETR may wait for its reader for long: cut it (no UPDATE
         * without QUIT, so nothing is lost). */
        pop3_stream_cancel(s);
        s->busy = false;
        pop3_close(s);
        return;
    }
    if (s->busy)
        return; /* pop3_step_done() closes after the step's reply */
    pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
    pop3_close(s);
}

static void on_close(struct conn *c)
{
    struct pop3_session *s = conn_data(c);
    if (!s)
        return;
    conn_set_data(c, NULL);
    s->closed = true;
    s->conn = NULL;
    if (s->state == ST_TRANSACTION && s->drop.n_deleted)
        log_event(PLOG_INFO, conn_id(c), "event=pop3-abandon user=%s marked=%zu",
                  s->login, s->drop.n_deleted);
    pop3_stream_cancel(s);
    auth_session_free(&s->auth); /* a step on the pool: its callback is dropped */
    /* A store callback still to come frees us (pop3_release). */
    if (s->pending == 0)
        session_free(&s);
}

/* Queued output fell below half of max_output_buffer (core.h). */
static void on_drain(struct conn *c)
{
    struct pop3_session *s = conn_data(c);
    if (s)
        pop3_stream_drain(s);
}

static void on_refuse(struct conn *c, const char *why)
{
    conn_printf(c, "-ERR [SYS/TEMP] Too many connections (%s), try again later\r\n", why);
}

static const struct conn_handler pop3_handler = {
    .open = on_open,
    .input = on_input,
    .timeout = on_timeout,
    .shutdown = on_shutdown,
    .close = on_close,
    .refuse = on_refuse,
    .drain = on_drain,
};

int pop3_start(struct server *srv, struct store *store, char *err, size_t errlen)
{
    static const struct listener_spec listeners[] = {
        { LISTEN_POP3, TLS_NONE },      /* STLS, RFC 2595 */
        { LISTEN_POP3S, TLS_IMPLICIT }, /* RFC 8314 */
    };
    pop3_store = store;
    return listeners_start(srv, listeners, sizeof listeners / sizeof listeners[0], &pop3_handler,
                           NULL, err, errlen);
}
