/*
 * outbound.c — one envelope delivered to its destination: the route
 * (route.c), then each target in turn, a connection (core's conn_connect)
 * carrying the SMTP client engine (client.c) until a server decides on the
 * recipients.
 *
 * The next target is tried only when this one decided nothing: it could
 * not be reached, or it failed before any RCPT reply (greeting, EHLO,
 * STARTTLS, AUTH, MAIL, a lost connection). A server that answered the
 * recipients has spoken for the domain (RFC 5321 §4.5.4.1 leaves the
 * retry to the queue).
 *
 * TLS: to an MX, STARTTLS when offered, without checking the certificate
 * (RFC 7435 opportunistic security: encrypt against eavesdroppers; an MX
 * name in unsigned DNS proves nothing). To a smarthost, TLS is required
 * and its certificate verified against [relay] host, since the password
 * goes over it.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/relay-int.h"

#define BODY_SLICE (64 * 1024)  /* bytes queued per step while sending the message */

struct outbound {
    struct server *srv;
    struct dns *dns;
    const struct config *cfg;
    const struct outbound_job *job;  /* gone once cancelled */
    size_t n_rcpts;
    outbound_cb cb;
    void *arg;

    struct route_query *rq;
    struct route route;
    size_t target;                  /* the one being tried */
    struct conn *conn;
    struct smtpc *c;
    struct smtpc_dot dot;
    size_t body_off;                /* bytes of the message sent */
    bool sending_body;
    bool cancelled;                 /* the runner left: free on close */

    struct relay_outcome *out;      /* n_rcpts */
};

static bool connect_next(struct outbound *o);

static void set_outcome(struct relay_outcome *r, bool delivered, bool permanent,
                        const char *status, const char *text, const char *mta)
{
    r->delivered = delivered;
    r->permanent = permanent;
    snprintf(r->status, sizeof r->status, "%s", status);
    free(r->diagnostic);
    r->diagnostic = strdup(text ? text : "");
    snprintf(r->remote_mta, sizeof r->remote_mta, "%s", mta ? mta : "");
}

/* Every recipient gets the same outcome: the route failed, or no target
 * could be reached. why: "4.4.1 words". */
static void all_outcomes(struct outbound *o, bool permanent, const char *why)
{
    char status[16] = "";
    size_t n = strcspn(why, " ");
    if (n < sizeof status)
        memcpy(status, why, n);
    for (size_t i = 0; i < o->job->n_rcpts; i++)
        set_outcome(&o->out[i], false, permanent, status, why + (why[n] ? n + 1 : n), NULL);
}

static void free_outbound(struct outbound *o)
{
    route_cancel(&o->rq);
    smtpc_free(&o->c);
    for (size_t i = 0; i < o->n_rcpts; i++)
        free(o->out[i].diagnostic);
    free(o->out);
    free(o);
}

static void finish(struct outbound *o)
{
    o->cb(o->arg, o, o->out);
    free_outbound(o);
}

const struct route *outbound_route(const struct outbound *o)
{
    return o->route.n ? &o->route : NULL;
}

/* ------------------------------------------------------------ the engine */

static void write_sink(void *arg, const char *p, size_t n)
{
    conn_write(arg, p, n);
}

/* The message in slices while the peer keeps up; drain resumes it. */
static bool send_body(struct outbound *o)
{
    const struct outbound_job *j = o->job;
    bool bdat = smtpc_body_mode(o->c) == SMTPC_BODY_BDAT;
    while (o->body_off < j->len) {
        if (conn_write_blocked(o->conn))
            return false;
        size_t n = j->len - o->body_off;
        if (n > BODY_SLICE)
            n = BODY_SLICE;
        if (bdat)
            conn_write(o->conn, j->msg + o->body_off, n);
        else
            smtpc_dot_encode(&o->dot, j->msg + o->body_off, n, write_sink, o->conn);
        o->body_off += n;
    }
    if (!bdat)
        smtpc_dot_end(&o->dot, write_sink, o->conn);
    o->sending_body = false;
    smtpc_body_sent(o->c);
    return true;
}

/* Does what the engine asks until it waits for the peer; returns what it
 * waits for: a reply line (READ), the peer to drain the body (SEND_BODY;
 * an early reply may still be read), the handshake, or the close. */
static enum smtpc_action pump(struct outbound *o)
{
    for (;;) {
        const char *p;
        size_t n;
        switch (smtpc_next(o->c)) {
        case SMTPC_READ:
            conn_set_timeout(o->conn, smtpc_timeout_ms(o->c));
            return SMTPC_READ;
        case SMTPC_WRITE:
            smtpc_output(o->c, &p, &n);
            conn_write(o->conn, p, n);
            break;
        case SMTPC_START_TLS:
            if (conn_starttls_client(o->conn, o->route.t[o->target].host,
                                     o->cfg->relay_host[0] != '\0') != 0) {
                smtpc_tls_failed(o->c);
                break;
            }
            return SMTPC_START_TLS;
        case SMTPC_SEND_BODY:
            if (!o->sending_body) {
                o->sending_body = true;
                o->body_off = 0;
                memset(&o->dot, 0, sizeof o->dot);
            }
            conn_set_timeout(o->conn, smtpc_timeout_ms(o->c));
            if (!send_body(o))
                return SMTPC_SEND_BODY;
            break;
        case SMTPC_QUIT_DONE:
            if (smtpc_quit(o->c) != 0) {
                conn_close(o->conn);
                return SMTPC_CLOSE;
            }
            break;
        case SMTPC_CLOSE:
            conn_close(o->conn);
            return SMTPC_CLOSE;
        }
    }
}

/* ------------------------------------------------------ connection events */

static void on_open(struct conn *c)
{
    struct outbound *o = conn_data(c);
    const struct route_target *t = &o->route.t[o->target];
    bool smarthost = o->cfg->relay_host[0] != '\0';
    struct smtpc_opts opts = {
        .helo = o->cfg->hostname,
        .starttls = smarthost ? SMTPC_TLS_REQUIRED : SMTPC_TLS_OPPORTUNISTIC,
        .tls_active = conn_is_tls(c),
        .last_mx = o->target + 1 == o->route.n,
        .auth_user = smarthost && o->cfg->relay_user[0] ? o->cfg->relay_user : NULL,
        .auth_pass = smarthost && o->cfg->relay_user[0] ? o->cfg->relay_password : NULL,
    };
    const struct outbound_job *j = o->job;
    struct smtpc_envelope env = {
        .mail_from = j->mail_from, .rcpts = j->rcpts, .n_rcpts = j->n_rcpts,
        .size = j->len, .eight_bit = j->eight_bit, .smtputf8 = j->smtputf8,
    };
    log_event(PLOG_DEBUG, conn_id(c), "event=relay-connected host=%s ip=%s", t->host, t->ip);
    if (smtpc_new(&opts, &env, &o->c) != 0) {
        all_outcomes(o, false, "4.3.0 Out of memory");
        conn_close(c);
        return;
    }
    pump(o);
}

static void on_input(struct conn *c)
{
    struct outbound *o = conn_data(c);
    if (o->cancelled)
        return;
    static char overlong[SMTPC_MAX_LINE + 1];
    const char *line;
    size_t len;
    bool crlf;
    for (;;) {
        enum conn_read r = conn_getline(c, SMTPC_MAX_LINE + 2, &line, &len, &crlf);
        if (r == CONN_AGAIN)
            return;
        if (r == CONN_TOOLONG) {
            /* The engine refuses a line this long: it ends the session. */
            memset(overlong, 'x', sizeof overlong);
            line = overlong;
            len = sizeof overlong;
        }
        smtpc_input(o->c, line, len);
        enum smtpc_action a = pump(o);
        if (a == SMTPC_CLOSE || a == SMTPC_START_TLS)
            return; /* what is still buffered is dropped (RFC 3207 §6) or moot */
    }
}

static void on_handshake(struct conn *c)
{
    struct outbound *o = conn_data(c);
    if (o->cancelled)
        return;
    smtpc_tls_done(o->c);
    pump(o);
}

static void on_drain(struct conn *c)
{
    struct outbound *o = conn_data(c);
    if (o->cancelled)
        return;
    if (o->sending_body && send_body(o))
        pump(o);
}

static void on_timeout(struct conn *c)
{
    struct outbound *o = conn_data(c);
    if (o->cancelled)
        return;
    smtpc_connection_lost(o->c);
    conn_close(c);
}

static void on_shutdown(struct conn *c)
{
    conn_close(c);
}

/* Whether a failed attempt decided nothing, so the next target may. */
static bool undecided(const struct outbound *o)
{
    for (size_t i = 0; i < o->job->n_rcpts; i++) {
        const struct smtpc_result *r = smtpc_rcpt_result(o->c, i);
        if (!r || !r->tempfail || (r->code && r->stage >= SMTPC_STAGE_RCPT))
            return false;
    }
    return true;
}

static void take_results(struct outbound *o)
{
    const char *host = o->route.t[o->target].host;
    for (size_t i = 0; i < o->job->n_rcpts; i++) {
        const struct smtpc_result *r = smtpc_rcpt_result(o->c, i);
        bool delivered = r->stage == SMTPC_STAGE_BODY && r->code >= 200 && r->code < 300 &&
                         !r->permanent && !r->tempfail;
        set_outcome(&o->out[i], delivered, r->permanent, r->status, r->text,
                    r->code ? host : NULL);
    }
}

static void on_close(struct conn *c)
{
    struct outbound *o = conn_data(c);
    o->conn = NULL;
    if (o->cancelled) {
        free_outbound(o);
        return;
    }
    const struct route_target *t = &o->route.t[o->target];
    char why[512];
    if (!o->c) {
        /* Never talked: not reached, or the implicit TLS handshake failed. */
        snprintf(why, sizeof why, "4.4.1 Cannot reach %s [%s]: %s", t->host, t->ip,
                 conn_error(c)[0] ? conn_error(c) : "connection failed");
        log_event(PLOG_INFO, conn_id(c), "event=relay-unreachable host=%s ip=%s error=\"%s\"",
                  t->host, t->ip, conn_error(c));
        all_outcomes(o, false, why);
    } else {
        smtpc_connection_lost(o->c); /* decides what is still open; a no-op after QUIT */
        take_results(o);
        if (!undecided(o)) {
            finish(o);
            return;
        }
        smtpc_free(&o->c);
    }
    o->target++;
    if (!connect_next(o))
        finish(o);
}

static const struct conn_handler outbound_handler = {
    .open = on_open,
    .input = on_input,
    .timeout = on_timeout,
    .shutdown = on_shutdown,
    .close = on_close,
    .drain = on_drain,
    .handshake = on_handshake,
};

/* ------------------------------------------------------------- the route */

/* Connects to the first target from o->target on that takes a connection
 * attempt; false when none is left. */
static bool connect_next(struct outbound *o)
{
    for (; o->target < o->route.n; o->target++) {
        const struct route_target *t = &o->route.t[o->target];
        bool smarthost = o->cfg->relay_host[0] != '\0';
        struct conn_connect_opts co = {
            .ip = t->ip, .port = o->route.port,
            .tls = smarthost && o->cfg->relay_tls == RELAY_IMPLICIT ? TLS_IMPLICIT : TLS_NONE,
            .sni = t->host, .verify = smarthost, .timeout_ms = RELAY_CONNECT_TIMEOUT,
        };
        if (conn_connect(o->srv, &co, &outbound_handler, o, &o->conn) == 0)
            return true;
        char why[256];
        snprintf(why, sizeof why, "4.4.1 Cannot connect to %s [%s]", t->host, t->ip);
        all_outcomes(o, false, why);
    }
    return false;
}

static void on_route(void *arg, enum route_status status, const char *why,
                     const struct route *rt)
{
    struct outbound *o = arg;
    o->rq = NULL;
    if (status != ROUTE_OK) {
        all_outcomes(o, status == ROUTE_PERM, why);
        finish(o);
        return;
    }
    o->route = *rt;
    o->target = 0;
    if (!connect_next(o))
        finish(o);
}

struct outbound *outbound_start(struct server *srv, struct dns *dns, const struct config *cfg,
                                const struct outbound_job *job, outbound_cb cb, void *arg)
{
    struct outbound *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->out = calloc(job->n_rcpts, sizeof *o->out);
    if (!o->out) {
        free(o);
        return NULL;
    }
    o->srv = srv;
    o->dns = dns;
    o->cfg = cfg;
    o->job = job;
    o->n_rcpts = job->n_rcpts;
    o->cb = cb;
    o->arg = arg;
    all_outcomes(o, false, "4.4.1 No attempt was made");
    if (job->route || route_numeric(cfg, &o->route)) {
        if (job->route)
            o->route = *job->route;
        if (!connect_next(o)) {
            free_outbound(o);
            return NULL;
        }
        return o;
    }
    o->rq = route_find(dns, cfg, job->domain, on_route, o);
    if (!o->rq) {
        free_outbound(o);
        return NULL;
    }
    return o;
}

void outbound_cancel(struct outbound **op)
{
    struct outbound *o = *op;
    if (!o)
        return;
    *op = NULL;
    if (o->conn) {
        o->cancelled = true;
        conn_close(o->conn);
    } else {
        free_outbound(o);
    }
}
