/*
 * IMAP session: connection callbacks, the command table and dispatch, the
 * reader loop that feeds the parser lines and literals, and the rules for
 * when mailbox changes may be reported.
 *
 * Commands run one at a time. A command that needs the store's writer or
 * the thread pool pauses input (imap_wait) and finishes with imap_done;
 * pipelined commands wait in the input buffer meanwhile, so sequence
 * numbers only change between commands, at points the RFC allows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-int.h"

static const struct imap_command_def {
    const char *name;
    unsigned states;
    unsigned flags;
    imap_cmd_fn run;
} commands[] = {
    { "CAPABILITY", IMAP_ANY, 0, imap_cmd_capability },
    { "NOOP", IMAP_ANY, 0, imap_cmd_noop },
    { "LOGOUT", IMAP_ANY, 0, imap_cmd_logout },
    { "ID", IMAP_ANY, 0, imap_cmd_id },
    { "STARTTLS", IMAP_NOTAUTH, 0, imap_cmd_starttls },
    { "LOGIN", IMAP_NOTAUTH, 0, imap_cmd_login },
    { "AUTHENTICATE", IMAP_NOTAUTH, 0, imap_cmd_authenticate },
    { "ENABLE", IMAP_LOGGED_IN, 0, imap_cmd_enable },
    { "NAMESPACE", IMAP_LOGGED_IN, 0, imap_cmd_namespace },
    { "SELECT", IMAP_LOGGED_IN, 0, imap_cmd_select },
    { "EXAMINE", IMAP_LOGGED_IN, 0, imap_cmd_select },
    { "CREATE", IMAP_LOGGED_IN, 0, imap_cmd_create },
    { "DELETE", IMAP_LOGGED_IN, 0, imap_cmd_delete },
    { "RENAME", IMAP_LOGGED_IN, 0, imap_cmd_rename },
    { "SUBSCRIBE", IMAP_LOGGED_IN, 0, imap_cmd_subscribe },
    { "UNSUBSCRIBE", IMAP_LOGGED_IN, 0, imap_cmd_subscribe },
    { "LIST", IMAP_LOGGED_IN, 0, imap_cmd_list },
    { "LSUB", IMAP_LOGGED_IN, 0, imap_cmd_list },
    { "STATUS", IMAP_LOGGED_IN, 0, imap_cmd_status },
    { "APPEND", IMAP_LOGGED_IN, 0, imap_cmd_append },
    { "IDLE", IMAP_LOGGED_IN, 0, imap_cmd_idle },
    { "GETQUOTA", IMAP_LOGGED_IN, 0, imap_cmd_getquota },
    { "GETQUOTAROOT", IMAP_LOGGED_IN, 0, imap_cmd_getquota },
    { "COMPRESS", IMAP_LOGGED_IN, 0, imap_cmd_compress },
    { "CHECK", IMAP_SELECTED, 0, imap_cmd_check },
    { "CLOSE", IMAP_SELECTED, 0, imap_cmd_close },
    { "UNSELECT", IMAP_SELECTED, 0, imap_cmd_close },
    { "EXPUNGE", IMAP_SELECTED, 0, imap_cmd_expunge },
    { "SEARCH", IMAP_SELECTED, CMD_USES_MSN, imap_cmd_search },
    { "FETCH", IMAP_SELECTED, CMD_USES_MSN, imap_cmd_fetch },
    { "STORE", IMAP_SELECTED, CMD_USES_MSN, imap_cmd_store },
    { "COPY", IMAP_SELECTED, CMD_USES_MSN, imap_cmd_copy },
    { "MOVE", IMAP_SELECTED, CMD_USES_MSN, imap_cmd_copy },
    { "UID SEARCH", IMAP_SELECTED, 0, imap_cmd_search },
    { "UID FETCH", IMAP_SELECTED, 0, imap_cmd_fetch },
    { "UID STORE", IMAP_SELECTED, 0, imap_cmd_store },
    { "UID COPY", IMAP_SELECTED, 0, imap_cmd_copy },
    { "UID MOVE", IMAP_SELECTED, 0, imap_cmd_copy },
    { "UID EXPUNGE", IMAP_SELECTED, 0, imap_cmd_expunge },
};

static struct store *imap_store;

static const char *phase_names[] = {
    [IMAP_PH_COMMAND] = "command", [IMAP_PH_WAIT] = "wait", [IMAP_PH_AUTH] = "auth",
    [IMAP_PH_IDLE] = "idle",       [IMAP_PH_CLOSING] = "closing",
};

void imap_enter(struct imap_session *s, enum imap_phase phase)
{
    if (s->phase == phase)
        return;
    log_event(PLOG_DEBUG, conn_id(s->conn), "event=phase from=%s to=%s",
              phase_names[s->phase], phase_names[phase]);
    s->phase = phase;
}

static void vline(struct imap_session *s, const char *prefix, const char *status,
                  const char *fmt, va_list ap)
{
    char text[1024];
    vsnprintf(text, sizeof text, fmt, ap);
    imap_printf(s, "%s %s%s%s\r\n", prefix, status, *status ? " " : "", text);
}

void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(s, s->req.tag ? s->req.tag : "*", status, fmt, ap);
    va_end(ap);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(s, "*", "", fmt, ap);
    va_end(ap);
}

void imap_close(struct imap_session *s)
{
    imap_enter(s, IMAP_PH_CLOSING);
    conn_close(s->conn);
}

/* Too many bad commands: the peer is not speaking IMAP (or is probing). */
static bool count_error(struct imap_session *s)
{
    if (++s->errors < s->cfg->max_errors)
        return false;
    log_event(PLOG_WARN, conn_id(s->conn), "event=too-many-errors peer=%s errors=%u",
              conn_peer_ip(s->conn), s->errors);
    imap_untagged(s, "BYE Too many invalid commands");
    imap_close(s);
    return true;
}

static void next_command(struct imap_session *s)
{
    imap_parser_reset(s->parser);
    buf_free(&s->literal);
    memset(&s->req, 0, sizeof s->req);
    s->continued = false;
    s->n_quiet = 0;
    if (s->op && s->op_free)
        s->op_free(s->op);
    s->op = NULL;
    s->op_free = NULL;
    s->drain = NULL;
    if (s->phase == IMAP_PH_CLOSING)
        return;
    if (s->stopping) {
        imap_untagged(s, "BYE Server shutting down");
        imap_close(s);
        return;
    }
    imap_enter(s, IMAP_PH_COMMAND);
    conn_resume(s->conn);
}

void imap_bad(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(s, s->req.tag ? s->req.tag : "*", "BAD", fmt, ap);
    va_end(ap);
    if (!count_error(s))
        next_command(s);
}

/*
 * Changes are reported before the tagged reply. EXPUNGE waits when the
 * command used sequence numbers or when the client already pipelined more
 * commands, which may use the numbers it knows (RFC 9051 §7.5.1).
 */
void imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
{
    if (s->view && s->phase != IMAP_PH_CLOSING) {
        bool allow = !(s->req.flags & CMD_USES_MSN) && conn_pending(s->conn) == 0;
        imap_view_report(s, allow);
    }
    if (s->phase == IMAP_PH_CLOSING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vline(s, s->req.tag ? s->req.tag : "*", status, fmt, ap);
    va_end(ap);
    next_command(s);
}

void imap_done_store_error(struct imap_session *s, int result, const char *what)
{
    switch (result) {
    case STORE_NOTFOUND:
        imap_done(s, "NO", "[NONEXISTENT] %s: no such mailbox", what);
        break;
    case STORE_EXISTS:
        imap_done(s, "NO", "[ALREADYEXISTS] %s: mailbox already exists", what);
        break;
    case STORE_INVALID:
        imap_done(s, "NO", "[CANNOT] %s: not possible with this mailbox", what);
        break;
    case STORE_QUOTA:
        imap_done(s, "NO", "[OVERQUOTA] %s: mailbox quota exceeded", what);
        break;
    case STORE_BUSY:
        imap_done(s, "NO", "[UNAVAILABLE] %s: server shutting down", what);
        break;
    default:
        imap_done(s, "NO", "[SERVERBUG] %s failed; try again later", what);
        break;
    }
}

void imap_wait(struct imap_session *s)
{
    s->busy++;
    imap_enter(s, IMAP_PH_WAIT);
    conn_pause(s->conn);
}

static void unqueue_report(struct imap_session *s);

static void session_free(struct imap_session *s)
{
    unqueue_report(s);
    if (s->sub)
        store_unsubscribe(s->store, &s->sub);
    imap_view_free(&s->view);
    imap_saved_clear(s);
    auth_session_free(&s->auth);
    imap_parser_free(&s->parser);
    buf_free(&s->literal);
    free(s->quiet);
    if (s->op && s->op_free)
        s->op_free(s->op);
    free(s);
}

bool imap_resume(struct imap_session *s)
{
    s->busy--;
    if (s->closed) {
        if (s->busy == 0)
            session_free(s);
        return false;
    }
    return true;
}

/*
 * Sessions in IDLE with a change to report. They are reported a slice per
 * loop turn, after the store's callbacks: a delivery's 250 and every other
 * connection go on while thousands of idle sessions are told.
 */
#define REPORT_SLICE 256
static struct imap_session *report_head, *report_tail;
static uv_idle_t report_idle;

static void unqueue_report(struct imap_session *s)
{
    if (!s->report_queued)
        return;
    if (s->report_prev)
        s->report_prev->report_next = s->report_next;
    else
        report_head = s->report_next;
    if (s->report_next)
        s->report_next->report_prev = s->report_prev;
    else
        report_tail = s->report_prev;
    s->report_next = s->report_prev = NULL;
    s->report_queued = false;
}

static void run_reports(uv_idle_t *h)
{
    for (int i = 0; i < REPORT_SLICE && report_head; i++) {
        struct imap_session *s = report_head;
        unqueue_report(s);
        if (s->phase == IMAP_PH_IDLE) {
            imap_view_report(s, true);
            conn_flush(s->conn);
        }
    }
    if (!report_head)
        uv_idle_stop(h);
}

static void queue_report(struct imap_session *s)
{
    if (s->report_queued)
        return;
    s->report_queued = true;
    s->report_prev = report_tail;
    if (report_tail)
        report_tail->report_next = s;
    else
        report_head = s;
    report_tail = s;
    uv_idle_start(&report_idle, run_reports);
}

static void on_change(void *arg, const struct store_change *ch)
{
    struct imap_session *s = arg;
    struct imap_view *v = s->view;
    if (!v || ch->mailbox_id != v->id || s->closed)
        return;
    if (ch->kind == STORE_CHANGE_MAILBOX_DELETE)
        v->gone = true;
    else if (ch->kind == STORE_CHANGE_MAILBOX_RENAME && ch->name)
        snprintf(v->name, sizeof v->name, "%s", ch->name);
    v->dirty = true;
    if (s->phase == IMAP_PH_IDLE)
        queue_report(s);
}

void imap_login_done(struct imap_session *s, const char *user, int64_t user_id)
{
    snprintf(s->user, sizeof s->user, "%s", user);
    s->user_id = user_id;
    s->state = IMAP_AUTH;
    s->sub = store_subscribe(s->store, user_id, on_change, s);
    conn_set_timeout(s->conn, (uint64_t)s->cfg->idle_timeout * 1000);
    log_event(PLOG_INFO, conn_id(s->conn), "event=login proto=imap peer=%s user=%s result=ok",
              conn_peer_ip(s->conn), s->user);
}

/*
 * RFC 7162 §3.1: after the first CONDSTORE enabling command every FETCH with
 * FLAGS carries MODSEQ, and a selected mailbox's HIGHESTMODSEQ is told.
 */
void imap_condstore_on(struct imap_session *s)
{
    if (s->condstore)
        return;
    s->condstore = true;
    if (s->view)
        imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
                      (unsigned long long)imap_view_modseq(s->view));
}

static const struct imap_command_def *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void execute(struct imap_session *s)
{
    const struct imap_command *cmd = imap_parser_command(s->parser);
    s->req.tag = cmd->tag;
    s->req.name = cmd->name;
    s->req.args = cmd->args;
    s->req.nargs = cmd->nargs;
    char uidname[32];
    if (strcmp(cmd->name, "UID") == 0) {
        const struct imap_arg *sub = cmd->args;
        if (!sub || sub->type != IMAP_ARG_ATOM || sub->len > 10) {
            imap_bad(s, "UID needs FETCH, STORE, COPY, MOVE, SEARCH or EXPUNGE");
            return;
        }
        snprintf(uidname, sizeof uidname, "UID %s", sub->str);
        for (char *p = uidname; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        s->req.name = uidname;
        s->req.args = sub->next;
        s->req.nargs = cmd->nargs - 1;
        s->req.uid = true;
    }
    const struct imap_command_def *def = find_command(s->req.name);
    if (!def) {
        char name[40];
        log_event(PLOG_INFO, conn_id(s->conn), "event=unknown-command peer=%s command=%s",
                  conn_peer_ip(s->conn), log_value(s->req.name, name, sizeof name));
        imap_bad(s, "Unknown command");
        return;
    }
    s->req.name = def->name;  /* uidname is on this stack frame */
    s->req.flags = def->flags;
    if (!(def->states & s->state)) {
        if (s->state == IMAP_NOTAUTH)
            imap_bad(s, "Log in first");
        else if (def->states == IMAP_NOTAUTH)
            imap_bad(s, "Already logged in");
        else
            imap_bad(s, "No mailbox selected");
        return;
    }
    if (s->view && s->view->gone) {
        imap_untagged(s, "BYE [UNAVAILABLE] The selected mailbox was deleted");
        imap_close(s);
        return;
    }
    def->run(s, &s->req);
}

static void parser_bad(struct imap_session *s)
{
    enum imap_perr code;
    const char *msg = imap_parser_error(s->parser, &code);
    s->req.tag = imap_parser_command(s->parser)->tag;
    if (code == IMAP_PERR_TOOBIG)
        imap_bad(s, "[TOOBIG] %s", msg);
    else
        imap_bad(s, "%s", msg);
}

static void parser_fatal(struct imap_session *s)
{
    enum imap_perr code;
    const char *msg = imap_parser_error(s->parser, &code);
    log_event(PLOG_INFO, conn_id(s->conn), "event=protocol-error peer=%s reason=\"%s\"",
              conn_peer_ip(s->conn), msg);
    imap_untagged(s, "BYE %s%s", code == IMAP_PERR_TOOBIG ? "[TOOBIG] " : "", msg);
    imap_close(s);
}

static size_t line_limit(const struct imap_session *s)
{
    return s->cfg->max_line_length > 8192 ? s->cfg->max_line_length : 8192;
}

static bool read_line(struct imap_session *s)
{
    const char *line;
    size_t len;
    bool crlf;
    switch (conn_getline(s->conn, line_limit(s) + 2, &line, &len, &crlf)) {
    case CONN_AGAIN:
        return false;
    case CONN_TOOLONG:
        /* The rest of that command cannot be told apart from a new one. */
        imap_untagged(s, "BYE [TOOBIG] Line too long");
        imap_close(s);
        return false;
    case CONN_OK:
        break;
    }
    switch (s->phase) {
    case IMAP_PH_AUTH:
        imap_auth_response(s, line, len);
        break;
    case IMAP_PH_IDLE:
        imap_idle_line(s, line, len);
        break;
    default:
        imap_parser_feed_line(s->parser, line, len);
        break;
    }
    return true;
}

static bool read_literal(struct imap_session *s)
{
    const struct imap_literal *lit = imap_parser_literal(s->parser);
    const char *data;
    size_t len;
    size_t want = lit->remaining > 65536 ? 65536 : (size_t)lit->remaining;
    if (conn_getbytes(s->conn, want, &data, &len) != CONN_OK)
        return false;
    bool keep = lit->streamed && !lit->discard;
    size_t took = imap_parser_feed_literal(s->parser, data, len);
    if (keep && buf_append(&s->literal, data, took, SIZE_MAX) != 0) {
        imap_untagged(s, "BYE Out of memory");
        imap_close(s);
        return false;
    }
    return true;
}

/* A synchronising literal: "+" or a refusal the client will not answer. */
static void literal_continue(struct imap_session *s)
{
    const struct imap_literal *lit = imap_parser_literal(s->parser);
    if (lit->streamed && !lit->discard && !imap_append_literal_ok(s, lit->size))
        return;
    imap_printf(s, "+ Ready for literal data\r\n");
    s->continued = true;
}

static bool step(struct imap_session *s)
{
    if (s->phase == IMAP_PH_AUTH || s->phase == IMAP_PH_IDLE)
        return read_line(s);
    switch (imap_parser_want(s->parser)) {
    case IMAP_WANT_LINE:
        return read_line(s);
    case IMAP_WANT_CONTINUE:
        if (!s->continued) {
            literal_continue(s);
            return s->phase == IMAP_PH_COMMAND;
        }
        return read_literal(s);
    case IMAP_WANT_LITERAL:
        s->continued = false;
        return read_literal(s);
    case IMAP_WANT_READY:
        s->continued = false;
        execute(s);
        return s->phase == IMAP_PH_COMMAND || s->phase == IMAP_PH_AUTH ||
               s->phase == IMAP_PH_IDLE;
    case IMAP_WANT_BAD:
        parser_bad(s);
        return s->phase == IMAP_PH_COMMAND;
    case IMAP_WANT_FATAL:
        parser_fatal(s);
        return false;
    }
    return false;
}

static void on_input(struct conn *c)
{
    struct imap_session *s = conn_data(c);
    while (s->phase != IMAP_PH_WAIT && s->phase != IMAP_PH_CLOSING && step(s))
        ;
}

static void on_open(struct conn *c)
{
    struct imap_session *s = calloc(1, sizeof *s);
    struct imap_limits lim;
    imap_limits_default(&lim);
    if (s) {
        s->cfg = server_config(conn_server(c));
        lim.max_line = line_limit(s);
        lim.max_message = s->cfg->max_message_size;
        s->parser = imap_parser_new(&lim, IMAP_PARSE_STREAM_MESSAGES);
    }
    if (!s || !s->parser) {
        free(s);
        conn_printf(c, "* BYE Out of memory\r\n");
        conn_close(c);
        return;
    }
    s->conn = c;
    s->store = imap_store;
    s->state = IMAP_NOTAUTH;
    s->phase = IMAP_PH_COMMAND;
    conn_set_data(c, s);
    conn_set_timeout(c, (uint64_t)s->cfg->preauth_timeout * 1000);
    struct buf caps = { 0 };
    imap_buf_capability(s, &caps);
    imap_printf(s, "* OK [CAPABILITY %.*s] %s Petrel IMAP ready\r\n", (int)caps.len,
                caps.data ? caps.data : "", s->cfg->hostname);
    buf_free(&caps);
}

static void on_timeout(struct conn *c)
{
    struct imap_session *s = conn_data(c);
    log_event(PLOG_INFO, conn_id(c), "event=timeout peer=%s phase=%s user=%s", conn_peer_ip(c),
              phase_names[s->phase], s->user[0] ? s->user : "-");
    if (s->phase == IMAP_PH_WAIT)
        return; /* the command's reply is owed first */
    imap_untagged(s, "BYE Autologout; idle for too long");
    imap_close(s);
}

static void on_shutdown(struct conn *c)
{
    struct imap_session *s = conn_data(c);
    s->stopping = true;
    if (s->phase == IMAP_PH_WAIT)
        return; /* next_command says BYE */
    imap_untagged(s, "BYE Server shutting down");
    imap_close(s);
}

static void on_close(struct conn *c)
{
    struct imap_session *s = conn_data(c);
    if (!s)
        return;
    conn_set_data(c, NULL);
    s->closed = true;
    unqueue_report(s);
    if (s->sub)
        store_unsubscribe(s->store, &s->sub);
    if (s->busy == 0)
        session_free(s);
}

static void on_refuse(struct conn *c, const char *why)
{
    conn_printf(c, "* BYE [UNAVAILABLE] Too many connections (%s), try again later\r\n", why);
}

static void on_drain(struct conn *c)
{
    struct imap_session *s = conn_data(c);
    if (s && s->phase == IMAP_PH_WAIT && s->drain)
        s->drain(s);
}

static const struct conn_handler imap_handler = {
    .open = on_open,
    .input = on_input,
    .timeout = on_timeout,
    .shutdown = on_shutdown,
    .close = on_close,
    .refuse = on_refuse,
    .drain = on_drain,
};

int imap_start(struct server *srv, struct store *store, char *err, size_t errlen)
{
    static const struct listener_spec listeners[] = {
        { LISTEN_IMAP, TLS_NONE },      /* STARTTLS */
        { LISTEN_IMAPS, TLS_IMPLICIT }, /* RFC 8314 */
    };
    imap_store = store;
    if (uv_idle_init(server_loop(srv), &report_idle) != 0) {
        snprintf(err, errlen, "imap: cannot create the report handle");
        return -1;
    }
    return listeners_start(srv, listeners, sizeof listeners / sizeof listeners[0], &imap_handler,
                           NULL, err, errlen);
}
