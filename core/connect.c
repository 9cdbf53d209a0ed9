/*
 * connect.c — outbound connections (the SMTP relay to MX hosts and
 * smarthosts): uv_tcp_connect under a deadline, the client side of TLS
 * (implicit, or STARTTLS later), then the same struct conn as an accepted
 * connection (conn.c).
 *
 * Lifecycle: conn_connect() links the object and starts the connect; from
 * then on exactly one of handler->open (connected, handshake done) or
 * handler->close without open (conn_error() says why) follows, always
 * from the loop, never from inside conn_connect().
 *
 * TLS: one client SSL_CTX per server (server_client_ctx), loaded on the
 * thread pool when first needed; a connection that needs it before then
 * waits as if shaking hands (tls_wait: no input to the handler, output
 * corked, its deadline or idle timer running). Per connection,
 * SNI with the name given, the name (or IP) set on the verify parameters,
 * and SSL_VERIFY_PEER only when verify is asked. Without it the chain and
 * the name are still checked and the result kept (conn_tls_verified), but
 * the handshake goes on whatever they say (RFC 7435 opportunistic TLS).
 */
#include "core/core-int.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_ip_literal(const char *s)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static void log_peer(struct conn *c, enum log_level level, const char *event)
{
    bool v6 = strchr(c->peer_ip, ':') != NULL;
    char v[300];
    log_event(level, c->id, "event=%s peer=%s%s%s:%d reason=%s", event, v6 ? "[" : "",
              c->peer_ip, v6 ? "]" : "", c->peer_port,
              log_value(conn_error(c), v, sizeof v));
}

/* An attempt that cannot go on: log it and close (handler->close follows
 * from the loop). */
static void connect_fail(struct conn *c)
{
    log_peer(c, PLOG_INFO, "connect-failed");
    conn_close(c);
}

/* A client engine for c, set up for c->tls_sni and c->tls_verify; NULL
 * with conn_error() set. */
static SSL *client_ssl(struct conn *c, SSL_CTX *ctx)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx); /* holds a reference on the context */
    if (!ssl) {
        conn_set_error(c, "TLS: out of memory");
        return NULL;
    }
    const char *sni = c->tls_sni;
    if (sni && *sni) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        int ok;
        if (is_ip_literal(sni)) {
            /* RFC 6066 §3: no SNI for an address; the certificate must name it. */
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, sni);
        } else {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set_tlsext_host_name(ssl, sni) == 1 && SSL_set1_host(ssl, sni) == 1;
        }
        if (!ok) {
            ERR_clear_error();
            SSL_free(ssl);
            char v[300];
            conn_set_error(c, "TLS: bad server name %s", log_value(sni, v, sizeof v));
            return NULL;
        }
    }
    SSL_set_verify(ssl, c->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return ssl;
}

static void client_tls_fail(struct conn *c)
{
    char v[300];
    log_event(PLOG_INFO, c->id, "event=tls-failed reason=%s",
              log_value(conn_error(c), v, sizeof v));
    conn_close(c);
}

static void client_tls_start(struct conn *c, SSL_CTX *ctx)
{
    c->tls_wait = false;
    c->handshaking = false;
    /* Nothing the peer sent before our ClientHello is protected input. */
    conn_discard_input(c);
    SSL *ssl = client_ssl(c, ctx);
    if (!ssl || conn_tls_attach(c, ssl) != 0) {
        SSL_free(ssl);
        conn_set_error(c, "TLS: out of memory"); /* unless client_ssl said why */
        client_tls_fail(c);
        return;
    }
    free(c->tls_sni);
    c->tls_sni = NULL;
    conn_tls_kick(c);
    if (!c->closing)
        conn_update_reading(c);
}

void conn_client_tls(struct conn *c)
{
    SSL_CTX *ctx = server_client_ctx(c->srv);
    if (ctx) {
        client_tls_start(c, ctx);
    } else if (c->srv->client_loading) {
        /* Held as if shaking hands: no input for the handler, output
         * corked, the timers run. */
        c->tls_wait = true;
        c->handshaking = true;
    } else {
        conn_set_error(c, "TLS: %s", server_client_ctx_error(c->srv));
        client_tls_fail(c);
    }
}

void conn_client_ctx_ready(struct server *srv)
{
    /* No handler callback runs from here, so the list stays as it is. */
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (!c->tls_wait || c->closing)
            continue;
        if (srv->client_ctx) {
            client_tls_start(c, srv->client_ctx);
        } else {
            c->tls_wait = false;
            conn_set_error(c, "TLS: %s", server_client_ctx_error(srv));
            client_tls_fail(c);
        }
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    /* UV_ECANCELED: conn_close() ran while connecting; its close callbacks
     * come after this one, so c is still here. */
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        conn_set_error(c, "%s", conn_uv_reason(status));
        connect_fail(c);
        return;
    }
    conn_established(c);
}

int conn_connect(struct server *srv, const struct conn_connect_opts *o,
                 const struct conn_handler *h, void *data, struct conn **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    const char *ip = o->ip ? o->ip : "";
    bool v6 = strchr(ip, ':') != NULL;
    int r = v6 ? uv_ip6_addr(ip, o->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(ip, o->port, (struct sockaddr_in *)&ss);
    if (r != 0 || o->port <= 0 || o->port > 65535) {
        char v[100];
        log_event(PLOG_INFO, 0, "event=connect-failed peer=%s port=%d reason=\"bad address\"",
                  log_value(ip, v, sizeof v), o->port);
        return -1;
    }
    if (srv->stopping) {
        log_event(PLOG_INFO, 0, "event=connect-failed peer=%s port=%d reason=\"server stopping\"",
                  ip, o->port);
        return -1;
    }
    struct conn *c = conn_new(srv, h);
    if (!c) {
        log_event(PLOG_ERROR, 0, "event=connect-failed reason=out-of-memory");
        return -1;
    }
    c->outbound = true;
    c->connecting = true;
    c->data = data;
    if (v6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof c->peer_ip);
    else
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof c->peer_ip);
    c->peer_port = o->port;
    *out = c;
    {
        char v[300];
        log_event(PLOG_DEBUG, c->id, "event=connect peer=%s%s%s:%d tls=%s sni=%s verify=%s",
                  v6 ? "[" : "", c->peer_ip, v6 ? "]" : "", c->peer_port,
                  o->tls == TLS_IMPLICIT ? "implicit" : "none",
                  log_value(o->sni ? o->sni : "", v, sizeof v), o->verify ? "yes" : "no");
    }

    if (o->tls == TLS_IMPLICIT) {
        c->tls_implicit = true;
        c->tls_verify = o->verify;
        if (o->sni && !(c->tls_sni = strdup(o->sni))) {
            conn_set_error(c, "out of memory");
            connect_fail(c);
            return 0;
        }
        (void)server_client_ctx(srv); /* loads alongside the connect */
    }
    uv_connect_t *req = malloc(sizeof *req);
    if (!req) {
        conn_set_error(c, "out of memory");
        connect_fail(c);
        return 0;
    }
    req->data = c;
    r = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&ss, on_connect);
    if (r != 0) {
        free(req);
        conn_set_error(c, "%s", conn_uv_reason(r));
        connect_fail(c);
        return 0;
    }
    conn_deadline(c, o->timeout_ms);
    return 0;
}

int conn_starttls_client(struct conn *c, const char *sni, bool verify)
{
    if (!c->outbound || c->ssl || c->tls_wait || c->closing || c->dead || c->connecting)
        return -1;
    free(c->tls_sni);
    c->tls_sni = NULL;
    if (sni && !(c->tls_sni = strdup(sni)))
        return -1;
    c->tls_verify = verify;
    /* The STARTTLS command itself went out in plaintext already. */
    conn_flush(c);
    if (c->closing || c->dead)
        return -1;
    /* RFC 3207 §6: what the server sent after its "220 ready" predates TLS
     * and must not be taken as protected input. */
    conn_discard_input(c);
    c->starttls_cb = true;
    log_event(PLOG_DEBUG, c->id, "event=starttls-client verify=%s", verify ? "yes" : "no");
    conn_client_tls(c); /* on failure the connection closes; h->close follows */
    return 0;
}
