/*
 * server.c — the server object: TLS contexts (server side, and the client
 * side of outbound connections), listeners, connection limits, deferred
 * input (conn_resume) and graceful stop.
 */
#include "core/core-int.h"

#include <errno.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IP_BUCKETS 1024
#define LISTEN_BACKLOG 511

struct ip_count {
    struct ip_count *next;
    unsigned n;
    char ip[46];
};

/* ------------------------------------------------------------------ TLS */

static void ssl_err(char *out, size_t outlen)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, out, outlen);
    else
        snprintf(out, outlen, "unknown error");
}

static SSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "tls: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"petrel", 6);

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "tls: cert %s: %s", cfg->tls_cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "tls: key %s: %s", cfg->tls_key, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "tls: key %s does not match cert %s", cfg->tls_key, cfg->tls_cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * The client context of outbound connections. Verification mode, SNI and
 * the name to check are set per connection (connect.c). Any thread: it
 * runs on the thread pool, as loading the system trust store parses a
 * hundred-odd certificates (tens of milliseconds).
 */
static SSL_CTX *client_ctx_build(const struct config *cfg, char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "client context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No system store is no error: ca_file alone can make a peer verify. */
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        ERR_clear_error();
    const char *ca = cfg->tls_ca_file;
    if (ca[0] && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        unsigned long e = ERR_peek_last_error();
        const char *r = ERR_reason_error_string(e);
        ERR_clear_error();
        FILE *f = fopen(ca, "r"); /* for the errno of a missing or unreadable file */
        if (!f)
            snprintf(err, errlen, "ca_file %s: %s", ca, strerror(errno));
        else
            snprintf(err, errlen, "ca_file %s: %s", ca, r ? r : "no certificate found");
        if (f)
            fclose(f);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void client_work(uv_work_t *w)
{
    struct server *srv = w->data;
    srv->client_loaded = client_ctx_build(&srv->cfg, srv->client_err, sizeof srv->client_err);
}

static void check_done(struct server *srv);

static void client_work_done(uv_work_t *w, int status)
{
    struct server *srv = w->data;
    srv->client_loading = false;
    SSL_CTX *ctx = srv->client_loaded;
    srv->client_loaded = NULL;
    char v[600];
    if (status == UV_ECANCELED) {
        snprintf(srv->client_err, sizeof srv->client_err, "server stopping");
    } else if (ctx) {
        SSL_CTX_free(srv->client_ctx); /* NULL: no second load starts while one runs */
        srv->client_ctx = ctx;
        log_event(PLOG_DEBUG, 0, "event=tls-client-ready ca_file=%s",
                  log_value(srv->cfg.tls_ca_file[0] ? srv->cfg.tls_ca_file : "system", v,
                            sizeof v));
    } else {
        log_event(PLOG_ERROR, 0, "event=tls-client-failed reason=%s",
                  log_value(srv->client_err, v, sizeof v));
    }
    conn_client_ctx_ready(srv);
    check_done(srv);
}

/*
 * Made on first use, so a server that never connects out never reads a
 * trust store; SIGHUP drops it, and a failed load is tried again by the
 * next connection that needs it.
 */
SSL_CTX *server_client_ctx(struct server *srv)
{
    if (srv->client_ctx || srv->client_loading)
        return srv->client_ctx;
    if (srv->stopping) {
        snprintf(srv->client_err, sizeof srv->client_err, "server stopping");
        return NULL;
    }
    srv->client_work.data = srv;
    if (uv_queue_work(srv->loop, &srv->client_work, client_work, client_work_done) == 0) {
        srv->client_loading = true;
        return NULL;
    }
    /* No thread pool: load here, once. */
    srv->client_ctx = client_ctx_build(&srv->cfg, srv->client_err, sizeof srv->client_err);
    return srv->client_ctx;
}

const char *server_client_ctx_error(const struct server *srv)
{
    return srv->client_err[0] ? srv->client_err : "no client context";
}

static bool any_listener(const struct config *cfg)
{
    for (int i = 0; i < LISTEN_KIND_COUNT; i++)
        if (cfg->listen[i].enabled)
            return true;
    return false;
}

static void on_idle(uv_idle_t *h);

int server_init(struct server **out, uv_loop_t *loop, const struct config *cfg,
                char *err, size_t errlen)
{
    *out = NULL;
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->next_id = 1;
    srv->rbuf = malloc(CORE_READ_SIZE);
    srv->ip_buckets = IP_BUCKETS;
    srv->ip_table = calloc(IP_BUCKETS, sizeof *srv->ip_table);
    if (!srv->rbuf || !srv->ip_table) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    char why[512];
    srv->ctx = tls_ctx_new(cfg, why, sizeof why);
    if (!srv->ctx) {
        /* Without any listener configured (tests, tools) TLS is optional. */
        if (any_listener(cfg)) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        log_event(PLOG_DEBUG, 0, "event=tls-disabled reason=%s",
                  log_value(why, (char[300]){0}, 300));
    }

    /* A peer that resets while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    uv_idle_init(loop, &srv->idle);
    srv->idle.data = srv;
    *out = srv;
    return 0;
fail:
    SSL_CTX_free(srv->ctx);
    free(srv->rbuf);
    free(srv->ip_table);
    free(srv);
    return -1;
}

int server_reload_tls(struct server *srv)
{
    char why[512];
    SSL_CTX *ctx = tls_ctx_new(&srv->cfg, why, sizeof why);
    char v[600];
    if (!ctx) {
        log_event(PLOG_ERROR, 0, "event=tls-reload result=failed reason=%s",
                  log_value(why, v, sizeof v));
        return -1;
    }
    /* Connections hold references to the old context; it goes with the last. */
    SSL_CTX_free(srv->ctx);
    srv->ctx = ctx;
    /* The next outbound connection reads ca_file (and the system store) again. */
    SSL_CTX_free(srv->client_ctx);
    srv->client_ctx = NULL;
    log_event(PLOG_INFO, 0, "event=tls-reload result=ok cert=%s",
              log_value(srv->cfg.tls_cert, v, sizeof v));
    return 0;
}

const struct config *server_config(const struct server *srv)
{
    return &srv->cfg;
}

uv_loop_t *server_loop(const struct server *srv)
{
    return srv->loop;
}

unsigned server_connection_count(const struct server *srv)
{
    return srv->nactive;
}

/* ------------------------------------------------------- per-IP limits */

static size_t ip_hash(const char *ip)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)ip; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

int server_ip_acquire(struct server *srv, const char *ip)
{
    struct ip_count **slot = &srv->ip_table[ip_hash(ip) % srv->ip_buckets];
    struct ip_count *e;
    for (e = *slot; e; e = e->next)
        if (strcmp(e->ip, ip) == 0)
            break;
    if (e) {
        if (e->n >= srv->cfg.max_connections_per_ip)
            return -1;
        e->n++;
        return 0;
    }
    if (srv->cfg.max_connections_per_ip == 0)
        return -1;
    e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->ip, sizeof e->ip, "%s", ip);
    e->n = 1;
    e->next = *slot;
    *slot = e;
    return 0;
}

void server_ip_release(struct server *srv, const char *ip)
{
    struct ip_count **pp = &srv->ip_table[ip_hash(ip) % srv->ip_buckets];
    for (; *pp; pp = &(*pp)->next) {
        struct ip_count *e = *pp;
        if (strcmp(e->ip, ip) != 0)
            continue;
        if (--e->n == 0) {
            *pp = e->next;
            free(e);
        }
        return;
    }
}

/* --------------------------------------------------------- resume list */

static void resume_unlink(struct server *srv, struct conn *c)
{
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        srv->resume_head = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    c->rnext = c->rprev = NULL;
    c->rpending = false;
}

void server_schedule_resume(struct server *srv, struct conn *c)
{
    if (c->rpending || srv->idle_closed)
        return;
    /* Append at the tail: FIFO keeps connections fair. */
    struct conn **pp = &srv->resume_head;
    struct conn *prev = NULL;
    while (*pp) {
        prev = *pp;
        pp = &(*pp)->rnext;
    }
    *pp = c;
    c->rprev = prev;
    c->rnext = NULL;
    c->rpending = true;
    if (!uv_is_active((uv_handle_t *)&srv->idle))
        uv_idle_start(&srv->idle, on_idle);
}

void server_unschedule_resume(struct server *srv, struct conn *c)
{
    if (c->rpending)
        resume_unlink(srv, c);
}

/* Runs the connections resumed before this turn; those resumed while it
 * runs wait for the next turn, so a pause/resume loop cannot spin here. */
static void on_idle(uv_idle_t *h)
{
    struct server *srv = h->data;
    unsigned n = 0;
    for (struct conn *c = srv->resume_head; c; c = c->rnext)
        n++;
    while (n-- > 0 && srv->resume_head) {
        struct conn *c = srv->resume_head;
        resume_unlink(srv, c);
        conn_run_resume(c);
    }
    if (!srv->resume_head)
        uv_idle_stop(&srv->idle);
}

/* ------------------------------------------------------------ listeners */

/* Listeners stay allocated until the server is freed: connections keep a
 * pointer to theirs and may outlive the listening socket during a stop. */
static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->srv->closing_handles--;
    check_done(l->srv);
}

/* A listener that failed to start was never linked: it goes at once. */
static void on_failed_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct server *srv = l->srv;
    free(l);
    srv->closing_handles--;
    check_done(srv);
}

static void on_connection(uv_stream_t *s, int status)
{
    struct listener *l = s->data;
    if (status < 0) {
        log_event(PLOG_WARN, 0, "event=accept-failed listener=%s error=%s",
                  listener_kind_name(l->kind), uv_err_name(status));
        return;
    }
    if (l->srv->stopping)
        return;
    conn_accept(l);
}

int listener_start(struct server *srv, enum listener_kind kind,
                   const struct listen_addr *addr, enum tls_mode tls,
                   const struct conn_handler *handler, void *ctx,
                   char *err, size_t errlen)
{
    bool v6 = strchr(addr->host, ':') != NULL;
    char name[96];
    snprintf(name, sizeof name, v6 ? "%s [%s]:%d" : "%s %s:%d", listener_kind_name(kind),
             addr->host, addr->port);
    if (srv->stopping) {
        snprintf(err, errlen, "%s: server is stopping", name);
        return -1;
    }
    if (tls == TLS_IMPLICIT && !srv->ctx) {
        snprintf(err, errlen, "%s: no TLS certificate loaded", name);
        return -1;
    }
    struct sockaddr_storage ss;
    int r = v6 ? uv_ip6_addr(addr->host, addr->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(addr->host, addr->port, (struct sockaddr_in *)&ss);
    if (r != 0 || addr->port < 0 || addr->port > 65535) {
        snprintf(err, errlen, "%s: bad address", name);
        return -1;
    }
    struct listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    l->srv = srv;
    l->kind = kind;
    l->tls = tls;
    l->handler = handler;
    l->ctx = ctx;
    snprintf(l->name, sizeof l->name, "%s", name);
    uv_tcp_init(srv->loop, &l->tcp);
    l->tcp.data = l;

    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, v6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (r == 0) {
        int len = sizeof ss;
        r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    }
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", name, uv_strerror(r));
        srv->closing_handles++;
        uv_close((uv_handle_t *)&l->tcp, on_failed_listener_closed);
        return -1;
    }
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    l->next = srv->listeners;
    srv->listeners = l;
    log_event(PLOG_INFO, 0, "event=listen listener=%s addr=%s%s%s:%d tls=%s",
              listener_kind_name(kind), v6 ? "[" : "", addr->host, v6 ? "]" : "", l->port,
              tls == TLS_IMPLICIT ? "implicit" : "starttls");
    return 0;
}

int listener_port(const struct listener *l)
{
    return l ? l->port : -1;
}

struct listener *server_listener(const struct server *srv, enum listener_kind kind)
{
    for (struct listener *l = srv->listeners; l; l = l->next)
        if (l->kind == kind)
            return l;
    return NULL;
}

/* ----------------------------------------------------------------- stop */

static void free_server_mem(struct server *srv)
{
    SSL_CTX_free(srv->ctx);
    SSL_CTX_free(srv->client_ctx);
    for (size_t i = 0; i < srv->ip_buckets; i++) {
        while (srv->ip_table[i]) {
            struct ip_count *e = srv->ip_table[i];
            srv->ip_table[i] = e->next;
            free(e);
        }
    }
    free(srv->ip_table);
    free(srv->rbuf);
    while (srv->listeners) {
        struct listener *l = srv->listeners;
        srv->listeners = l->next;
        free(l);
    }
    free(srv);
}

static void on_idle_closed(uv_handle_t *h)
{
    struct server *srv = h->data;
    srv->idle_closed = true;
    if (srv->stop_done)
        srv->stop_done(srv->stop_arg);
    if (srv->free_pending)
        free_server_mem(srv);
}

static void check_done(struct server *srv)
{
    if (!srv->stopping || srv->nconns > 0 || srv->closing_handles > 0 || srv->client_loading)
        return;
    if (uv_is_closing((uv_handle_t *)&srv->idle))
        return;
    uv_close((uv_handle_t *)&srv->idle, on_idle_closed);
}

void server_conn_gone(struct server *srv)
{
    check_done(srv);
}

void server_stop(struct server *srv, void (*done)(void *arg), void *arg)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    srv->stop_done = done;
    srv->stop_arg = arg;
    log_event(PLOG_INFO, 0, "event=stopping connections=%u", srv->nactive);
    for (struct listener *l = srv->listeners; l; l = l->next) {
        srv->closing_handles++;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
    /* A client context not loaded yet is not needed any more. */
    if (srv->client_loading)
        uv_cancel((uv_req_t *)&srv->client_work);
    /* Connections are freed only in uv_close callbacks, so the list stays
     * intact while handlers run. */
    for (struct conn *c = srv->conns; c; c = c->next)
        if (!c->closing)
            conn_server_shutdown(c);
    check_done(srv);
}

void server_free(struct server **srvp)
{
    struct server *srv = *srvp;
    if (!srv)
        return;
    *srvp = NULL;
    if (srv->idle_closed) {
        free_server_mem(srv);
        return;
    }
    /* Handles are still open: stop, and free once the loop has closed them. */
    srv->free_pending = true;
    if (!srv->stopping) {
        server_stop(srv, NULL, NULL);
    } else {
        srv->stop_done = NULL;
    }
}

int listeners_start(struct server *srv, const struct listener_spec *specs, size_t n,
                    const struct conn_handler *handler, void *ctx, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct listen_addr *addr = &srv->cfg.listen[specs[i].kind];
        if (addr->enabled &&
            listener_start(srv, specs[i].kind, addr, specs[i].tls, handler, ctx, err, errlen) != 0)
            return -1;
    }
    return 0;
}
