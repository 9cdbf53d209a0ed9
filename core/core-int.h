/*
 * core-int.h — private to core/: the server, listener and connection
 * structures shared by server.c, conn.c and connect.c.
 */
#ifndef PETREL_CORE_INT_H
#define PETREL_CORE_INT_H

#include "core/core.h"

#include <openssl/ssl.h>

/* libuv offers this much per read; one such buffer serves the whole loop. */
#define CORE_READ_SIZE (64 * 1024)
/* Force-close a closing connection whose peer does not take our last bytes. */
#define CORE_CLOSE_LINGER_MS 10000
/* Cork size at which conn_write() pushes output to the socket by itself. */
#define CORE_CORK_MAX (64 * 1024)

struct ip_count;
struct conn_z;

/*
 * A connection. Input is read into the server's shared buffer; the handler
 * consumes from there ("ext" view) and only what it leaves is copied into
 * in, which is freed once empty. Consumption is lazy (in_off / ext_off) so
 * a handler can take many lines per callback without a memmove each.
 */
struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;             /* idle timeout; linger while closing */
    struct server *srv;
    struct listener *l;           /* NULL for an outbound connection */
    const struct conn_handler *h;
    struct conn *next, *prev;     /* server's list */
    struct conn *rnext, *rprev;   /* server's resume list */
    uint64_t id;
    void *data;

    struct buf in;
    size_t in_off;
    const char *ext;              /* non-NULL during a zero-copy dispatch */
    size_t ext_len, ext_off;
    size_t line_max;              /* largest max given to conn_getline */

    struct buf out;               /* corked plaintext output */
    size_t queued;                /* bytes handed to uv_write, not yet done */

    SSL *ssl;
    BIO *rbio, *wbio;             /* owned by ssl */

    uint64_t bytes_in, bytes_out;
    uint64_t start_ms, timeout_ms;
    unsigned handles_open;
    unsigned in_cb;               /* depth of handler callbacks running */

    bool counted;                 /* accepted within limits */
    bool opened;                  /* handler->open ran */
    bool paused;
    bool rpending;                /* on the resume list */
    bool closing;
    bool shut;                    /* uv_shutdown / uv_close begun */
    bool handles_closing;
    bool eof;                     /* peer finished sending */
    bool dead;                    /* socket error: write nothing more */
    bool discarding;              /* inside an overlong line */
    bool handshaking;
    bool reading;
    bool out_blocked;             /* back-pressure from a slow peer */
    bool outbound;                /* made by conn_connect() */
    bool connecting;              /* outbound: uv_tcp_connect under way */
    bool starttls_cb;             /* call handler->handshake once TLS is up */
    bool tls_verified;            /* outbound TLS: chain and name verified */
    bool tls_implicit;            /* outbound: client TLS once TCP is up */
    bool tls_wait;                /* outbound: TLS waits for the client context */
    bool tls_verify;              /* outbound: SSL_VERIFY_PEER */
    char *tls_sni;                /* outbound: until the engine is made */
    struct conn_z *z;             /* DEFLATE (conn_compress) or NULL */
    char *error;                  /* outbound: conn_error(), NULL = "" */

    int peer_port;
    char peer_ip[46];
    char local_ip[46];
};

struct server {
    uv_loop_t *loop;
    struct config cfg;
    SSL_CTX *ctx;                 /* NULL until a certificate loads */
    SSL_CTX *client_ctx;          /* outbound TLS; NULL until loaded */
    uv_work_t client_work;        /* loads it on the thread pool */
    SSL_CTX *client_loaded;       /* the work's result, taken on the loop */
    bool client_loading;
    char client_err[512];         /* why the last load failed */
    char *rbuf;                   /* shared read buffer, CORE_READ_SIZE */
    bool rbuf_busy;

    struct listener *listeners;
    struct conn *conns;           /* every live conn object */
    unsigned nconns;              /* objects, refused ones included */
    unsigned nactive;             /* accepted connections (limits, count) */
    uint64_t next_id;

    struct ip_count **ip_table;   /* per-address counts of accepted conns */
    size_t ip_buckets;

    uv_idle_t idle;               /* runs deferred input (conn_resume) */
    struct conn *resume_head;

    bool stopping;
    bool idle_closed;
    bool free_pending;
    unsigned closing_handles;     /* listener handles waiting for close_cb */
    void (*stop_done)(void *arg);
    void *stop_arg;
};

struct listener {
    uv_tcp_t tcp;
    struct server *srv;
    struct listener *next;
    enum listener_kind kind;
    enum tls_mode tls;
    const struct conn_handler *handler;
    void *ctx;
    int port;
    char name[96];                /* "smtp 127.0.0.1:2525" */
};

/* server.c */
int server_ip_acquire(struct server *srv, const char *ip);
void server_ip_release(struct server *srv, const char *ip);
void server_conn_gone(struct server *srv);
void server_schedule_resume(struct server *srv, struct conn *c);
void server_unschedule_resume(struct server *srv, struct conn *c);
/* The client TLS context, or NULL: then, if srv->client_loading, it is
 * being loaded on the thread pool and conn_client_ctx_ready() follows;
 * else it failed (server_client_ctx_error). */
SSL_CTX *server_client_ctx(struct server *srv);
const char *server_client_ctx_error(const struct server *srv);

/* conn.c */
void conn_accept(struct listener *l);
/* A connection object with both handles initialised and on the server's
 * list (not counted against limits), or NULL when out of memory. */
struct conn *conn_new(struct server *srv, const struct conn_handler *h);
/* Takes ssl over (on success) with a memory BIO pair: the accept state, or
 * the connect state for an outbound connection. Returns 0 or -1. */
int conn_tls_attach(struct conn *c, SSL *ssl);
/* Client side: sends the first handshake flight (ClientHello). */
void conn_tls_kick(struct conn *c);
/* Drops every byte buffered after the current line (STARTTLS injection). */
void conn_discard_input(struct conn *c);
/* Outbound: records why the connection failed; the first reason stays. */
void conn_set_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A libuv error as conn_error() words: "connection refused", ... */
const char *conn_uv_reason(int err);
/* A hard deadline on the idle timer (not reset by reads). */
void conn_deadline(struct conn *c, uint64_t ms);
/* Outbound: TCP is up. Starts the implicit handshake, or opens. */
void conn_established(struct conn *c);
void conn_update_reading(struct conn *c);

/* connect.c */
/* Outbound: starts the client handshake (c->tls_sni, c->tls_verify), or
 * holds the connection as handshaking until the client context is loaded;
 * on failure closes it with conn_error() set. */
void conn_client_tls(struct conn *c);
/* The client context load ended (srv->client_ctx set or not). */
void conn_client_ctx_ready(struct server *srv);
/* Plaintext input for the handler (after TLS and DEFLATE). */
void conn_feed(struct conn *c, const char *data, size_t n);
/* How many more input bytes the handler's buffer takes. */
size_t conn_input_room(const struct conn *c);
/* Moves the unconsumed input to dst; returns its size. */
size_t conn_take_pending(struct conn *c, struct buf *dst);

/* compress.c */
void conn_z_input(struct conn *c, const char *data, size_t n);
void conn_z_pump(struct conn *c);
int conn_z_output(struct conn *c);   /* c->out deflated in place */
bool conn_z_stash_full(const struct conn *c);
void conn_z_free(struct conn *c);
void conn_run_resume(struct conn *c);
void conn_server_shutdown(struct conn *c);

#endif
