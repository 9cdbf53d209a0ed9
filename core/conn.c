/*
 * conn.c — one connection: reading through the loop's shared buffer, line
 * and byte input, corked output with back-pressure, TLS over memory BIOs
 * (implicit and STARTTLS share one path), timeouts and the close sequence.
 *
 * Close sequence: conn_close() flushes (TLS close_notify included), then
 * uv_shutdown(); its callback (or the linger timer) uv_close()s both
 * handles; when both close callbacks ran, handler->close runs and the
 * connection is freed. No handler callback runs after close.
 *
 * Outbound connections (connect.c) come here once TCP is up
 * (conn_established); before that they only buffer output. Their TLS is
 * the client side of the same memory-BIO path.
 */
#include "core/core-int.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest line limit honoured for buffering, whatever a handler asks. */
#define CORE_LINE_MAX_CAP (16u * 1024 * 1024)

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;
    char data[];
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void flush_out(struct conn *c);
static void tls_advance(struct conn *c);
static void tls_pull(struct conn *c);
static void hard_close(struct conn *c);

/* ----------------------------------------------------------- accessors */

uint64_t conn_id(const struct conn *c) { return c->id; }
enum listener_kind conn_kind(const struct conn *c) { return c->l ? c->l->kind : LISTEN_KIND_COUNT; }
void *conn_listener_ctx(const struct conn *c) { return c->l ? c->l->ctx : NULL; }
const char *conn_error(const struct conn *c) { return c->error ? c->error : ""; }
struct server *conn_server(const struct conn *c) { return c->srv; }
void conn_set_data(struct conn *c, void *data) { c->data = data; }
void *conn_data(const struct conn *c) { return c->data; }
const char *conn_peer_ip(const struct conn *c) { return c->peer_ip; }
int conn_peer_port(const struct conn *c) { return c->peer_port; }
const char *conn_local_ip(const struct conn *c) { return c->local_ip; }

bool conn_is_loopback(const struct conn *c)
{
    return ip_is_loopback(c->peer_ip);
}

bool ip_is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

bool conn_is_tls(const struct conn *c)
{
    return c->ssl && !c->handshaking;
}

const char *conn_tls_version(const struct conn *c)
{
    return conn_is_tls(c) ? SSL_get_version(c->ssl) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
    return conn_is_tls(c) ? SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)) : NULL;
}

int conn_tls_bits(const struct conn *c)
{
    return conn_is_tls(c) ? SSL_CIPHER_get_bits(SSL_get_current_cipher(c->ssl), NULL) : 0;
}

bool conn_tls_verified(const struct conn *c)
{
    return conn_is_tls(c) && c->tls_verified;
}

void conn_set_error(struct conn *c, const char *fmt, ...)
{
    if (!c->outbound || c->error)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->error = strdup(buf); /* NULL when out of memory: conn_error() says "" */
}

const char *conn_uv_reason(int err)
{
    switch (err) {
    case UV_ECONNREFUSED: return "connection refused";
    case UV_ETIMEDOUT: return "timed out";
    case UV_ECONNRESET:
    case UV_EPIPE: return "connection reset";
    case UV_ECONNABORTED: return "connection aborted";
    case UV_ENETUNREACH: return "network unreachable";
    case UV_EHOSTUNREACH: return "host unreachable";
    case UV_EADDRNOTAVAIL: return "address not available";
    case UV_EOF: return "connection closed by peer";
    default: return uv_strerror(err);
    }
}

/* ---------------------------------------------------------------- input */

static size_t in_limit(const struct conn *c)
{
    size_t line = c->srv->cfg.max_line_length;
    if (c->line_max > line)
        line = c->line_max;
    return CORE_READ_SIZE + line;
}

size_t conn_pending(const struct conn *c)
{
    return c->ext ? c->ext_len - c->ext_off : c->in.len - c->in_off;
}

/* The bytes the handler reads from: the shared buffer during a zero-copy
 * dispatch, the connection's own buffer otherwise. */
static void input_view(struct conn *c, const char **base, size_t *len, size_t **off)
{
    if (c->ext) {
        *base = c->ext;
        *len = c->ext_len;
        *off = &c->ext_off;
    } else {
        *base = c->in.data;
        *len = c->in.len;
        *off = &c->in_off;
    }
}

/*
 * An overlong line: CONN_TOOLONG is returned once, when its LF has been
 * seen and everything through it discarded (possibly several reads later;
 * until then CONN_AGAIN). The protocol then answers once per line.
 */
enum conn_read conn_getline(struct conn *c, size_t max, const char **line, size_t *len,
                            bool *crlf)
{
    if (max == 0)
        max = 1;
    if (max > CORE_LINE_MAX_CAP)
        max = CORE_LINE_MAX_CAP;
    if (max > c->line_max)
        c->line_max = max;
    if (c->closing)
        return CONN_AGAIN;

    const char *base;
    size_t blen, *off;
    input_view(c, &base, &blen, &off);
    for (;;) {
        const char *p = base + *off;
        size_t avail = blen - *off;
        if (c->discarding) {
            const char *nl = avail ? memchr(p, '\n', avail) : NULL;
            if (!nl) {
                *off = blen;
                return CONN_AGAIN;
            }
            *off += (size_t)(nl - p) + 1;
            c->discarding = false;
            return CONN_TOOLONG;
        }
        size_t scan = avail < max ? avail : max;
        const char *nl = scan ? memchr(p, '\n', scan) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - p);
            *off += n + 1;
            bool cr = n > 0 && p[n - 1] == '\r';
            if (cr)
                n--;
            *line = p;
            *len = n;
            if (crlf)
                *crlf = cr;
            return CONN_OK;
        }
        if (avail < max)
            return CONN_AGAIN;
        c->discarding = true;
        *off += max;
    }
}

enum conn_read conn_getbytes(struct conn *c, size_t max, const char **data, size_t *len)
{
    if (c->closing)
        return CONN_AGAIN;
    const char *base;
    size_t blen, *off;
    input_view(c, &base, &blen, &off);
    size_t avail = blen - *off;
    if (avail == 0 || max == 0)
        return CONN_AGAIN;
    size_t n = avail < max ? avail : max;
    *data = base + *off;
    *len = n;
    *off += n;
    return CONN_OK;
}

/* Gives back the last n bytes of the latest conn_getbytes() within the same
 * callback: a protocol that reads ahead (SMTP DATA) returns what belongs to
 * the next command. */
void conn_unget(struct conn *c, size_t n)
{
    const char *base;
    size_t blen, *off;
    input_view(c, &base, &blen, &off);
    *off -= n < *off ? n : *off;
}

/* Drops consumed bytes from the own buffer; frees it once empty. Only
 * outside handler callbacks, so returned pointers stay valid within one. */
static void settle(struct conn *c)
{
    if (c->in_cb || c->ext)
        return;
    if (c->in_off >= c->in.len) {
        buf_free(&c->in);
        c->in_off = 0;
    } else if (c->in_off > 0) {
        buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
}

static bool can_dispatch(const struct conn *c)
{
    return c->opened && !c->closing && !c->paused && !c->handshaking;
}

static void dispatch_input(struct conn *c)
{
    if (!can_dispatch(c) || conn_pending(c) == 0)
        return;
    c->in_cb++;
    c->h->input(c);
    c->in_cb--;
}

static void update_reading(struct conn *c)
{
    if (c->connecting)
        return;
    bool want = !c->closing && !c->eof && !c->out_blocked && conn_pending(c) < in_limit(c) &&
                !conn_z_stash_full(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void conn_update_reading(struct conn *c)
{
    update_reading(c);
}

size_t conn_input_room(const struct conn *c)
{
    size_t pend = conn_pending(c), lim = in_limit(c);
    return pend < lim ? lim - pend : 0;
}

size_t conn_take_pending(struct conn *c, struct buf *dst)
{
    const char *base;
    size_t len, *off;
    input_view(c, &base, &len, &off);
    size_t n = len - *off;
    if (n && buf_append(dst, base + *off, n, SIZE_MAX) != 0)
        return 0;
    *off = len;
    return n;
}

/* New plaintext bytes (in the shared buffer) for the handler. */
void conn_feed(struct conn *c, const char *data, size_t n)
{
    if (c->closing || n == 0)
        return;
    settle(c);
    if (c->in.len == 0 && can_dispatch(c)) {
        /* Zero copy: the handler reads straight from the shared buffer. */
        c->ext = data;
        c->ext_len = n;
        c->ext_off = 0;
        dispatch_input(c);
        const char *rest = c->ext + c->ext_off;
        size_t left = c->ext_len - c->ext_off;
        c->ext = NULL;
        c->ext_len = c->ext_off = 0;
        if (left && !c->closing && buf_append(&c->in, rest, left, in_limit(c)) != 0) {
            log_event(PLOG_WARN, c->id, "event=input-overflow");
            conn_set_error(c, "input overflow");
            conn_close(c);
        }
    } else {
        if (buf_append(&c->in, data, n, in_limit(c)) != 0) {
            log_event(PLOG_WARN, c->id, "event=input-overflow");
            conn_set_error(c, "input overflow");
            conn_close(c);
            return;
        }
        dispatch_input(c);
    }
    settle(c);
}

/* Bytes from the socket or TLS: inflated first once DEFLATE is on. */
static void take_input(struct conn *c, const char *data, size_t n)
{
    if (c->z)
        conn_z_input(c, data, n);
    else
        conn_feed(c, data, n);
}

/* After every callback into the handler: flush output, follow up on EOF,
 * and decide whether to keep reading. */
static void after_cb(struct conn *c)
{
    if (c->in_cb)
        return;
    settle(c);
    if (c->z && !c->paused)
        conn_z_pump(c); /* input inflated while the handler had no room */
    flush_out(c);
    if (c->closing)
        return;
    if (c->eof && !c->paused && !c->handshaking) {
        conn_close(c);
        return;
    }
    update_reading(c);
}

/* ---------------------------------------------------------------- reads */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    struct server *srv = c->srv;
    size_t room = CORE_READ_SIZE;
    if (!c->ssl) {
        size_t pend = conn_pending(c);
        size_t lim = in_limit(c);
        room = pend < lim ? lim - pend : 0;
        if (room > CORE_READ_SIZE)
            room = CORE_READ_SIZE;
    }
    if (srv->rbuf_busy || room == 0) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    srv->rbuf_busy = true;
    *buf = uv_buf_init(srv->rbuf, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (buf->base == c->srv->rbuf)
        c->srv->rbuf_busy = false;
    if (nread == 0 || c->closing)
        return;
    if (nread == UV_ENOBUFS) {
        update_reading(c);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            log_event(PLOG_DEBUG, c->id, "event=read-error error=%s", uv_err_name((int)nread));
            c->dead = true;
        }
        conn_set_error(c, "%s%s", c->handshaking ? "TLS handshake: " : "",
                       conn_uv_reason((int)nread));
        c->eof = true;
        uv_read_stop(s);
        c->reading = false;
        if (!c->opened || c->handshaking || c->dead)
            conn_close(c);
        else
            after_cb(c);
        return;
    }

    c->bytes_in += (uint64_t)nread;
    if (c->timeout_ms)
        uv_timer_start(&c->timer, on_timer, c->timeout_ms, 0);
    if (c->ssl) {
        /* Ciphertext to the TLS engine; the shared buffer is then free for
         * the plaintext. */
        if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
            conn_close(c);
            return;
        }
        tls_advance(c);
    } else {
        take_input(c, buf->base, (size_t)nread);
    }
    after_cb(c);
}

/* --------------------------------------------------------------- output */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    c->queued -= w->len;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            log_event(PLOG_DEBUG, c->id, "event=write-error error=%s", uv_err_name(status));
            conn_set_error(c, "%s", conn_uv_reason(status));
        }
        c->dead = true;
        if (!c->closing)
            conn_close(c);
        return;
    }
    if (c->out_blocked && c->queued <= c->srv->cfg.max_output_buffer / 2) {
        c->out_blocked = false;
        if (c->closing)
            return;
        if (c->h->drain && c->opened) {
            /* A producer that waited for the peer (a long FETCH, a RETR) goes on. */
            c->in_cb++;
            c->h->drain(c);
            c->in_cb--;
            after_cb(c);
        } else {
            update_reading(c);
        }
    }
}

bool conn_write_blocked(const struct conn *c)
{
    return c->out_blocked;
}

/* Bytes for the socket, as they are (ciphertext or plaintext). */
static void write_raw(struct conn *c, const char *data, size_t len)
{
    if (c->dead || len == 0 || c->handles_closing)
        return;
    c->bytes_out += len;
    if (c->queued == 0) {
        /* Common case: the kernel takes it all, no request to allocate. */
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0) {
            data += r;
            len -= (size_t)r;
        } else if (r < 0 && r != UV_EAGAIN) {
            conn_set_error(c, "%s", conn_uv_reason(r));
            c->dead = true;
            if (!c->closing)
                conn_close(c);
            return;
        }
        if (len == 0)
            return;
    }
    struct wreq *w = malloc(sizeof *w + len);
    if (!w) {
        c->dead = true;
        if (!c->closing)
            conn_close(c);
        return;
    }
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        c->dead = true;
        if (!c->closing)
            conn_close(c);
        return;
    }
    c->queued += len;
    if (c->queued > c->srv->cfg.max_output_buffer && !c->out_blocked) {
        /* The peer does not read: stop reading its commands until it does. */
        c->out_blocked = true;
        update_reading(c);
    }
}

static void tls_drain_wbio(struct conn *c)
{
    char *p;
    long n = BIO_get_mem_data(c->wbio, &p);
    if (n > 0) {
        write_raw(c, p, (size_t)n);
        (void)BIO_reset(c->wbio);
    }
}

static void flush_out(struct conn *c)
{
    if (c->dead) {
        buf_free(&c->out);
        return;
    }
    if (c->connecting || c->tls_wait)
        return; /* corked until the connection is up / its TLS has begun */
    if (c->z && c->out.len && conn_z_output(c) != 0) {
        buf_free(&c->out);
        c->dead = true;
        if (!c->closing)
            conn_close(c);
        return;
    }
    if (c->ssl) {
        if (!c->handshaking && c->out.len) {
            ERR_clear_error();
            /* A memory BIO takes everything: SSL_write writes it all or fails. */
            if (SSL_write(c->ssl, c->out.data, (int)c->out.len) <= 0) {
                buf_free(&c->out);
                c->dead = true;
                if (!c->closing)
                    conn_close(c);
                return;
            }
            buf_free(&c->out);
        }
        tls_drain_wbio(c); /* handshake data waits for nothing */
        return;
    }
    if (c->out.len) {
        write_raw(c, c->out.data, c->out.len);
        buf_free(&c->out);
    }
}

void conn_write(struct conn *c, const void *data, size_t len)
{
    if (c->closing || c->dead || len == 0)
        return;
    if (buf_append(&c->out, data, len, SIZE_MAX) != 0) {
        c->dead = true;
        conn_close(c);
        return;
    }
    /* Large replies go out in pieces; socket back-pressure applies. */
    if (c->out.len >= CORE_CORK_MAX)
        flush_out(c);
}

void conn_vprintf(struct conn *c, const char *fmt, va_list ap)
{
    if (c->closing || c->dead)
        return;
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof small) {
        conn_write(c, small, (size_t)n);
    } else if (n >= 0) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            conn_write(c, big, (size_t)n);
            free(big);
        }
    }
    va_end(again);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_vprintf(c, fmt, ap);
    va_end(ap);
}

void conn_flush(struct conn *c)
{
    if (!c->closing)
        flush_out(c);
}

/* ------------------------------------------------------------------ TLS */

int conn_tls_attach(struct conn *c, SSL *ssl)
{
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return -1;
    }
    BIO_set_mem_eof_return(rbio, -1); /* empty means "more later" */
    SSL_set_bio(ssl, rbio, wbio);
    if (c->outbound)
        SSL_set_connect_state(ssl);
    else
        SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->rbio = rbio;
    c->wbio = wbio;
    c->handshaking = true;
    return 0;
}

static int tls_begin(struct conn *c)
{
    if (!c->srv->ctx)
        return -1;
    SSL *ssl = SSL_new(c->srv->ctx); /* holds a reference on the context */
    if (!ssl)
        return -1;
    if (conn_tls_attach(c, ssl) != 0) {
        SSL_free(ssl);
        return -1;
    }
    return 0;
}

static const char *tls_reason(int sslerr, char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        snprintf(buf, len, "%s", r ? r : "unknown");
    } else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, len, "unexpected eof");
    } else {
        snprintf(buf, len, "ssl error %d", sslerr);
    }
    ERR_clear_error();
    return buf;
}

static void call_open(struct conn *c)
{
    c->opened = true;
    c->in_cb++;
    if (c->h->open)
        c->h->open(c);
    c->in_cb--;
}

/* A handshake failed: log, drop the engine (no close_notify after a failed
 * handshake) and close. */
static void tls_fail(struct conn *c, int sslerr)
{
    char why[160], v[200];
    tls_reason(sslerr, why, sizeof why);
    if (c->outbound) {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK && strstr(why, "certificate verify failed"))
            conn_set_error(c, "TLS handshake: %s (%s)", why, X509_verify_cert_error_string(vr));
        else
            conn_set_error(c, "TLS handshake: %s", why);
    }
    log_event(PLOG_INFO, c->id, "event=tls-failed reason=%s",
              log_value(c->outbound ? conn_error(c) : why, v, sizeof v));
    c->handshaking = false;
    SSL_free(c->ssl);
    c->ssl = NULL;
    c->rbio = c->wbio = NULL;
    buf_free(&c->out); /* never let it out in plaintext */
    conn_close(c);
}

static void tls_done(struct conn *c)
{
    c->handshaking = false;
    tls_drain_wbio(c);
    if (c->outbound) {
        /* Recorded also under SSL_VERIFY_NONE: the chain and the name were
         * checked, only not enforced. */
        c->tls_verified = SSL_get_verify_result(c->ssl) == X509_V_OK &&
                          SSL_get0_peer_certificate(c->ssl) != NULL;
        log_event(PLOG_INFO, c->id, "event=tls version=%s cipher=%s bits=%d verified=%s",
                  conn_tls_version(c), conn_tls_cipher(c), conn_tls_bits(c),
                  c->tls_verified ? "yes" : "no");
    } else {
        log_event(PLOG_INFO, c->id, "event=tls version=%s cipher=%s bits=%d",
                  conn_tls_version(c), conn_tls_cipher(c), conn_tls_bits(c));
    }
}

static void tls_advance(struct conn *c)
{
    if (c->closing)
        return;
    if (c->handshaking) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            tls_drain_wbio(c); /* our half of the handshake, or an alert */
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            tls_fail(c, e);
            return;
        }
        tls_done(c);
        if (!c->opened) {
            uv_timer_stop(&c->timer); /* the handshake deadline */
            c->timeout_ms = 0;
            call_open(c);
            if (c->closing)
                return;
        } else if (c->starttls_cb) {
            c->starttls_cb = false;
            if (c->h->handshake) {
                c->in_cb++;
                c->h->handshake(c);
                c->in_cb--;
                if (c->closing)
                    return;
            }
        }
        flush_out(c); /* anything the handler wrote while we shook hands */
    }
    tls_pull(c);
}

void conn_tls_kick(struct conn *c)
{
    if (!c->ssl || !c->handshaking || c->closing)
        return;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl); /* writes the ClientHello, wants the reply */
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    tls_drain_wbio(c);
    if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        tls_fail(c, e);
}

/* Decrypts what the engine holds, as far as the input buffer has room. */
static void tls_pull(struct conn *c)
{
    while (c->ssl && !c->closing && !c->handshaking) {
        size_t pend = conn_pending(c), lim = in_limit(c);
        if (pend >= lim)
            break;
        size_t room = lim - pend;
        if (room > CORE_READ_SIZE)
            room = CORE_READ_SIZE;
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->srv->rbuf, (int)room);
        if (r > 0) {
            take_input(c, c->srv->rbuf, (size_t)r);
            if (conn_z_stash_full(c))
                break;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->eof = true; /* close_notify from the peer */
            conn_set_error(c, "connection closed by peer");
            break;
        }
        char why[160], v[200];
        tls_reason(e, why, sizeof why);
        conn_set_error(c, "TLS: %s", why);
        log_event(PLOG_INFO, c->id, "event=tls-error reason=%s", log_value(why, v, sizeof v));
        c->eof = true;
        tls_drain_wbio(c);
        conn_close(c);
        return;
    }
    if (c->ssl && !c->closing)
        tls_drain_wbio(c);
}

void conn_discard_input(struct conn *c)
{
    if (c->ext)
        c->ext_off = c->ext_len;
    c->in_off = c->in.len;
    c->discarding = false;
}

int conn_starttls(struct conn *c)
{
    if (c->outbound || c->ssl || c->closing || c->dead || !c->srv->ctx)
        return -1;
    /* The "ready to start TLS" reply goes out in plaintext first. */
    flush_out(c);
    /* RFC 3207 §6 and RFC 2595 §3: whatever the client pipelined after the
     * command predates TLS and must not be taken as protected input. */
    conn_discard_input(c);
    if (tls_begin(c) != 0)
        return -1;
    c->starttls_cb = true;
    log_event(PLOG_DEBUG, c->id, "event=starttls");
    return 0;
}

/* -------------------------------------------------------------- control */

void conn_pause(struct conn *c)
{
    c->paused = true;
}

void conn_resume(struct conn *c)
{
    if (c->closing)
        return;
    c->paused = false;
    server_schedule_resume(c->srv, c);
}

void conn_run_resume(struct conn *c)
{
    if (c->closing || c->paused)
        return;
    dispatch_input(c);
    settle(c);
    if (c->ssl && !c->handshaking)
        tls_pull(c);
    after_cb(c);
}

void conn_set_timeout(struct conn *c, uint64_t ms)
{
    c->timeout_ms = ms;
    if (c->closing)
        return;
    if (ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->closing) {
        /* The peer did not take our last bytes in time. */
        hard_close(c);
        return;
    }
    log_event(PLOG_DEBUG, c->id, "event=timeout");
    if (!c->opened || c->handshaking || !c->h->timeout) {
        if (c->outbound) {
            conn_set_error(c, "%stimed out", c->handshaking ? "TLS handshake: " : "");
            if (!c->opened) {
                bool v6 = strchr(c->peer_ip, ':') != NULL;
                log_event(PLOG_INFO, c->id, "event=connect-failed peer=%s%s%s:%d reason=\"%s\"",
                          v6 ? "[" : "", c->peer_ip, v6 ? "]" : "", c->peer_port, conn_error(c));
            }
        }
        conn_close(c);
        return;
    }
    c->in_cb++;
    c->h->timeout(c);
    c->in_cb--;
    after_cb(c);
}

/* The connect (and implicit handshake) deadline of an outbound connection:
 * unlike the idle timeout, reads do not push it back. */
void conn_deadline(struct conn *c, uint64_t ms)
{
    c->timeout_ms = 0;
    if (ms && !c->closing)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

void conn_server_shutdown(struct conn *c)
{
    if (c->closing)
        return;
    if (!c->opened || c->handshaking || !c->h->shutdown) {
        /* Outbound and not open yet: the close tells the caller why. */
        conn_set_error(c, "server stopping");
        conn_close(c);
        return;
    }
    c->in_cb++;
    c->h->shutdown(c);
    c->in_cb--;
    after_cb(c);
}

/* ---------------------------------------------------------------- close */

static void finalize(struct conn *c)
{
    struct server *srv = c->srv;
    double secs = (double)(uv_now(srv->loop) - c->start_ms) / 1000.0;
    if (c->outbound) {
        bool v6 = strchr(c->peer_ip, ':') != NULL;
        char v[300];
        log_event(PLOG_INFO, c->id,
                  "event=disconnect direction=out peer=%s%s%s:%d duration=%.3fs in=%llu "
                  "out=%llu error=%s",
                  v6 ? "[" : "", c->peer_ip, v6 ? "]" : "", c->peer_port, secs,
                  (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
                  log_value(c->error ? c->error : "none", v, sizeof v));
    } else {
        log_event(PLOG_INFO, c->id, "event=disconnect listener=%s duration=%.3fs in=%llu out=%llu",
                  listener_kind_name(c->l->kind), secs, (unsigned long long)c->bytes_in,
                  (unsigned long long)c->bytes_out);
    }
    /* An outbound connection that never opened gets its close: it is how
     * the caller learns the attempt failed. */
    if ((c->opened || c->outbound) && c->h->close)
        c->h->close(c);
    if (c->counted) {
        server_ip_release(srv, c->peer_ip);
        srv->nactive--;
    }
    server_unschedule_resume(srv, c);
    SSL_free(c->ssl);
    conn_z_free(c);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c->error);
    free(c->tls_sni);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
    server_conn_gone(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles_open == 0)
        finalize(c);
}

static void hard_close(struct conn *c)
{
    if (c->handles_closing)
        return;
    c->handles_closing = true;
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    hard_close(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    if (c->connecting)
        c->dead = true; /* nothing to flush; uv_close cancels the connect */
    /* Flush while writes are still accepted, then refuse further output. */
    if (!c->dead) {
        flush_out(c);
        if (c->ssl && !c->handshaking && !c->dead) {
            ERR_clear_error();
            SSL_shutdown(c->ssl); /* queues close_notify */
            tls_drain_wbio(c);
        }
    }
    c->closing = true;
    buf_free(&c->out);
    server_unschedule_resume(c->srv, c);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->dead) {
        hard_close(c);
        return;
    }
    /* libuv runs the shutdown after the queued writes; the timer bounds the
     * wait for a peer that does not read. */
    uv_timer_start(&c->timer, on_timer, CORE_CLOSE_LINGER_MS, 0);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        hard_close(c);
        return;
    }
    req->data = c;
    c->shut = true;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        hard_close(c);
    }
}

/* --------------------------------------------------------------- accept */

static void sock_name(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
    ip[0] = '\0';
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, iplen);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
        else
            uv_ip6_name(a, ip, iplen);
        *port = ntohs(a->sin6_port);
    }
}

struct conn *conn_new(struct server *srv, const struct conn_handler *h)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->h = h;
    c->id = srv->next_id++;
    c->start_ms = uv_now(srv->loop);
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    return c;
}

void conn_accept(struct listener *l)
{
    struct server *srv = l->srv;
    struct conn *c = conn_new(srv, l->handler);
    if (!c) {
        log_event(PLOG_ERROR, 0, "event=accept-failed reason=out-of-memory");
        return;
    }
    c->l = l;

    if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        c->dead = true;
        hard_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        sock_name(&ss, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
    len = sizeof ss;
    int lport;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        sock_name(&ss, c->local_ip, sizeof c->local_ip, &lport);
    uv_tcp_nodelay(&c->tcp, 1);

    bool v6 = strchr(c->peer_ip, ':') != NULL;
    log_event(PLOG_INFO, c->id, "event=connect listener=%s peer=%s%s%s:%d",
              listener_kind_name(l->kind), v6 ? "[" : "", c->peer_ip, v6 ? "]" : "",
              c->peer_port);

    const char *why = NULL;
    if (srv->nactive >= srv->cfg.max_connections)
        why = "max_connections";
    else if (server_ip_acquire(srv, c->peer_ip) != 0)
        why = "max_connections_per_ip";
    if (why) {
        log_event(PLOG_WARN, c->id, "event=refused reason=%s peer=%s", why, c->peer_ip);
        /* Implicit TLS: a plaintext "busy" line would be noise to the peer. */
        if (l->tls != TLS_IMPLICIT && c->h->refuse) {
            c->in_cb++;
            c->h->refuse(c, why);
            c->in_cb--;
        }
        conn_close(c);
        return;
    }
    c->counted = true;
    srv->nactive++;

    if (l->tls == TLS_IMPLICIT) {
        if (tls_begin(c) != 0) {
            log_event(PLOG_ERROR, c->id, "event=tls-failed reason=no-context");
            conn_close(c);
            return;
        }
        /* The handshake must finish within the pre-login timeout. */
        conn_set_timeout(c, (uint64_t)srv->cfg.preauth_timeout * 1000);
        update_reading(c);
        return;
    }
    call_open(c);
    after_cb(c);
}

/* --------------------------------------------------------- outbound */

void conn_established(struct conn *c)
{
    c->connecting = false;
    struct sockaddr_storage ss;
    int len = sizeof ss, lport = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        sock_name(&ss, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
    len = sizeof ss;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        sock_name(&ss, c->local_ip, sizeof c->local_ip, &lport);
    uv_tcp_nodelay(&c->tcp, 1);
    bool v6 = strchr(c->local_ip, ':') != NULL;
    log_event(PLOG_DEBUG, c->id, "event=connected local=%s%s%s:%d", v6 ? "[" : "", c->local_ip,
              v6 ? "]" : "", lport);
    if (c->tls_implicit) {
        /* The connect deadline keeps running over the handshake. */
        conn_client_tls(c);
        return;
    }
    uv_timer_stop(&c->timer);
    c->timeout_ms = 0;
    call_open(c);
    after_cb(c);
}
