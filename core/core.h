/*
 * core.h — the event loop, listeners, connections (plain, STARTTLS, implicit
 * TLS), bounded buffers, config, logging, timers and limits. No mail logic.
 *
 * Threading: every function here runs on the loop thread unless it says
 * otherwise. Nothing in core blocks the loop.
 */
#ifndef PETREL_CORE_H
#define PETREL_CORE_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ------------------------------------------------------------------ log */

enum log_level { PLOG_ERROR, PLOG_WARN, PLOG_INFO, PLOG_DEBUG };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parses "error", "warn", "info", "debug". Returns 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * One line per event on stderr:
 *   2026-12-01T14:00:00.123Z info c42 event=login user=a@b.test result=ok
 * conn_id 0 prints "-" in place of the connection id. fmt supplies the
 * key=value fields; values that may hold spaces or peer bytes go through
 * log_value() first. Secrets are never passed here.
 */
void log_event(enum log_level level, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Makes s safe as one log field value: control bytes, '"' and '\' are
 * escaped, the whole is quoted if it holds a space, and it is cut to fit buf.
 * Returns buf.
 */
const char *log_value(const char *s, char *buf, size_t bufsize);

/* --------------------------------------------------------------- config */

enum listener_kind {
    LISTEN_SMTP,        /* MX, port 25 */
    LISTEN_SUBMISSION,  /* STARTTLS then AUTH, port 587 */
    LISTEN_SUBMISSIONS, /* implicit TLS, port 465 (RFC 8314) */
    LISTEN_IMAP,
    LISTEN_IMAPS,
    LISTEN_POP3,
    LISTEN_POP3S,
    LISTEN_KIND_COUNT
};

/* "smtp", "submission", ... as in the [listen] section. */
const char *listener_kind_name(enum listener_kind kind);

struct listen_addr {
    bool enabled;
    char host[64]; /* numeric IPv4 or IPv6 address, no brackets */
    int port;
};

/* [checks] mode: what the MX does with SPF, DKIM and DMARC. */
enum checks_mode {
    CHECKS_OFF,      /* no lookups, no Authentication-Results */
    CHECKS_TAG,      /* Authentication-Results only */
    CHECKS_ENFORCE,  /* and DMARC policy: reject (550) or quarantine (Junk) */
};
/* "off", "tag", "enforce". */
const char *checks_mode_name(enum checks_mode mode);

/* [relay] tls: how the smarthost connection is secured; both are required
 * TLS with the certificate verified (a password never goes in clear). */
enum relay_tls {
    RELAY_STARTTLS,  /* port 587 */
    RELAY_IMPLICIT,  /* port 465 (RFC 8314) */
};

struct config {
    char path[PATH_MAX];

    /* [server] */
    char hostname[256];
    char data_dir[PATH_MAX];

    /* [tls] */
    char tls_cert[PATH_MAX];
    char tls_key[PATH_MAX];
    char tls_ca_file[PATH_MAX];      /* CAs trusted for outbound TLS; "" = the system's */

    /* [listen] */
    struct listen_addr listen[LISTEN_KIND_COUNT];

    /* [limits] */
    unsigned max_connections;        /* whole server */
    unsigned max_connections_per_ip;
    unsigned max_line_length;        /* command lines, bytes incl. CRLF */
    uint64_t max_message_size;       /* bytes; advertised by SMTP SIZE */
    unsigned max_recipients;         /* per SMTP transaction */
    unsigned max_errors;             /* bad commands before 421 and close */
    unsigned smtp_timeout;           /* seconds idle, SMTP */
    unsigned preauth_timeout;        /* seconds idle before login, IMAP/POP3 */
    unsigned idle_timeout;           /* seconds idle after login, IMAP/POP3 */
    unsigned max_output_buffer;      /* bytes queued to a slow peer before we stop reading */
    unsigned max_hops;               /* Received fields a message may carry (RFC 5321 §6.3) */

    /* [auth] */
    bool plaintext_on_loopback;      /* allow PLAIN/LOGIN without TLS from 127/8, ::1 */
    unsigned auth_fail_delay_ms;     /* delay after each failed login */
    unsigned auth_max_fails_ip;      /* failures per address before refusing */
    unsigned auth_max_fails_user;    /* failures per account before refusing */
    unsigned auth_fail_window;       /* seconds a failure counts */

    /* [store] */
    uint64_t default_quota;          /* bytes for new users; 0 = unlimited */

    /* [log] */
    enum log_level log_level;

    /* [worker] */
    unsigned threads;                /* libuv thread pool size */

    /* [dns] */
    char dns_server[64];             /* "IP", "IP:PORT", "[IPv6]:PORT"; "" = /etc/resolv.conf */
    unsigned dns_timeout_ms;         /* per try */
    unsigned dns_tries;

    /* [checks] SPF, DKIM, DMARC on the MX listener (docs/spf-dmarc.md "On the MX") */
    enum checks_mode checks_mode;
    char checks_psl[PATH_MAX];       /* the Public Suffix List file for DMARC */
    unsigned checks_timeout;         /* seconds the end of DATA waits for the checks */

    /* [relay] a smarthost for all outbound mail (docs/relay.md); host "" = MX delivery */
    char relay_host[256];
    int relay_port;
    enum relay_tls relay_tls;
    char relay_user[256];            /* "" = no AUTH */
    char relay_password[256];
    int mx_port;                     /* the port of MX hosts: 25 (tests use others) */

    /* [queue] the outbound queue runner */
    unsigned queue_lifetime;         /* seconds before a message is bounced */
    unsigned queue_delay_warning;    /* seconds before a delay notice; 0 = never */
    unsigned queue_retry_min;        /* seconds after the first failure */
    unsigned queue_retry_max;        /* the cap of the doubling back-off */
    unsigned queue_per_domain;       /* connections to one destination at once */
    unsigned queue_max_connections;  /* outbound connections at once, all together */
};

/* Fills cfg with the built-in defaults (see docs/configuration.md). */
void config_defaults(struct config *cfg);

/*
 * Reads an INI file over the defaults and validates it. On error returns -1
 * and writes one line to err naming the file, line and key, e.g.
 *   "petrel.conf:7: [listen] smtpp: unknown key"
 * Nothing is bound or opened here.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/*
 * The same as config_load() over text (a NUL-terminated INI document);
 * name stands for the file name in errors and in cfg->path.
 */
int config_load_string(const char *text, const char *name, struct config *cfg, char *err,
                       size_t errlen);

/* Parses "50M", "1G", "1024" (K, M, G are powers of 1024). Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);

/* ----------------------------------------------------------------- text */

/* Length of one well-formed UTF-8 sequence of 2-4 bytes at s (no overlong
 * forms, no surrogates), or 0. Any thread. */
size_t utf8_seq_len(const unsigned char *s, size_t left);

/* -------------------------------------------------------------- buffers */

/* A growable byte buffer with a hard cap. Owner calls buf_free(). */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Returns 0, or -1 if the result would exceed limit bytes or allocation failed. */
int buf_append(struct buf *b, const void *data, size_t len, size_t limit);
int buf_printf(struct buf *b, size_t limit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_free(struct buf *b);

/* ---------------------------------------------------------------- server */

/*
 * The server owns the loop, the TLS context and the connection limits. One
 * per process. server_init() loads the certificate and key: on error it
 * returns -1 with a message in err.
 */
struct server;

int server_init(struct server **out, uv_loop_t *loop, const struct config *cfg,
                char *err, size_t errlen);
/* SIGHUP: reload certificate and key; on failure keep the old ones and log. */
int server_reload_tls(struct server *srv);
const struct config *server_config(const struct server *srv);
uv_loop_t *server_loop(const struct server *srv);
unsigned server_connection_count(const struct server *srv);

/*
 * Graceful stop: close the listeners, then tell every connection's handler
 * (handler->shutdown) to finish its current transaction and close. done runs
 * once the last connection is gone.
 */
void server_stop(struct server *srv, void (*done)(void *arg), void *arg);
void server_free(struct server **srv);

/* ------------------------------------------------------------ connection */

enum tls_mode {
    TLS_NONE,      /* plain; STARTTLS may upgrade it */
    TLS_IMPLICIT,  /* handshake before the first byte of protocol */
};

struct conn;

/*
 * A protocol's callbacks. open runs once the connection is ready (after the
 * handshake for implicit TLS) and normally writes the greeting. input runs
 * whenever unconsumed input is buffered and the connection is not paused;
 * the handler consumes what it can with conn_getline()/conn_getbytes() and
 * returns. Output written during a callback is flushed when it returns.
 * close runs exactly once, last; the handler frees its session there.
 */
struct conn_handler {
    void (*open)(struct conn *c);
    void (*input)(struct conn *c);
    void (*timeout)(struct conn *c);   /* idle timer fired; NULL: just close */
    void (*shutdown)(struct conn *c);  /* server stopping; close when idle */
    void (*close)(struct conn *c);
    /* Over a connection limit: write the protocol's "too busy" line. Core
     * closes the connection after it (open is never called). */
    void (*refuse)(struct conn *c, const char *why);
    /* Output queued to a slow peer passed max_output_buffer and has now
     * fallen to half of it (see conn_write_blocked). NULL: not needed. */
    void (*drain)(struct conn *c);
    /* A STARTTLS handshake (conn_starttls or conn_starttls_client) finished;
     * input resumes after it returns. Not called for implicit TLS, where
     * open plays that part. NULL: not needed. */
    void (*handshake)(struct conn *c);
};

struct listener;

/*
 * Binds host:port and accepts connections for handler. ctx is available to
 * the handler through conn_listener_ctx(). On error returns -1 with err set
 * (e.g. "smtp 0.0.0.0:25: address already in use").
 */
int listener_start(struct server *srv, enum listener_kind kind,
                   const struct listen_addr *addr, enum tls_mode tls,
                   const struct conn_handler *handler, void *ctx,
                   char *err, size_t errlen);
/* Every listener of kinds[0..n) that the config enables, one handler. */
struct listener_spec {
    enum listener_kind kind;
    enum tls_mode tls;
};
int listeners_start(struct server *srv, const struct listener_spec *specs, size_t n,
                    const struct conn_handler *handler, void *ctx, char *err, size_t errlen);
/* The port actually bound (useful when the config said port 0). */
int listener_port(const struct listener *l);
/* The listener most recently started for kind, or NULL (e.g. to ask its port). */
struct listener *server_listener(const struct server *srv, enum listener_kind kind);

uint64_t conn_id(const struct conn *c);
enum listener_kind conn_kind(const struct conn *c);
void *conn_listener_ctx(const struct conn *c);
struct server *conn_server(const struct conn *c);
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);

const char *conn_peer_ip(const struct conn *c);   /* "192.0.2.1" or "2001:db8::1" */
int conn_peer_port(const struct conn *c);
const char *conn_local_ip(const struct conn *c);
bool conn_is_loopback(const struct conn *c);
/* 127.0.0.0/8, ::1 or an IPv4-mapped 127/8, given as a numeric address. */
bool ip_is_loopback(const char *ip);
bool conn_is_tls(const struct conn *c);
/* Negotiated TLS version and cipher ("TLSv1.3", "TLS_AES_256_GCM_SHA384"); NULL without TLS. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
int conn_tls_bits(const struct conn *c);

enum conn_read {
    CONN_OK,       /* got a line / some bytes */
    CONN_AGAIN,    /* nothing complete buffered; input will be called again */
    CONN_TOOLONG,  /* the line exceeded the limit; it has been discarded up
                      to and including its LF */
};

/*
 * Takes the next line. *line points into the connection's buffer and stays
 * valid until the next conn_get*() call or the callback returns. *len
 * excludes the line ending; *crlf tells whether it ended in CRLF (false: a
 * bare LF). max is the limit in bytes including the ending.
 */
enum conn_read conn_getline(struct conn *c, size_t max, const char **line,
                            size_t *len, bool *crlf);
/* Takes up to max raw bytes (literals, BDAT chunks, DATA). Same lifetime rule. */
enum conn_read conn_getbytes(struct conn *c, size_t max, const char **data, size_t *len);
/* Gives back the last n bytes of the latest conn_getbytes() in the same
 * callback (input read ahead that belongs to the next command). */
void conn_unget(struct conn *c, size_t n);
/* Bytes buffered and not consumed. */
size_t conn_pending(const struct conn *c);

/* Queue output; it is flushed when the current callback returns. */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_vprintf(struct conn *c, const char *fmt, va_list ap);
/* Flush now (e.g. from an async completion outside any callback). */
void conn_flush(struct conn *c);
/*
 * True while more than max_output_buffer bytes wait for the peer. A handler
 * that produces output in steps (a large FETCH or RETR) stops producing
 * then and goes on in handler->drain.
 */
bool conn_write_blocked(const struct conn *c);

/*
 * Stop delivering input (an async step is under way: a store commit, a
 * password check). Bytes keep being buffered up to the input limit, then
 * reading stops. conn_resume() schedules input on the next loop turn.
 */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/*
 * Begin the server side of a TLS handshake. Every byte buffered after the
 * current line is discarded (STARTTLS injection). Input resumes after the
 * handshake; a failed handshake closes the connection.
 */
int conn_starttls(struct conn *c);

/*
 * Turns on DEFLATE both ways (RFC 4978) after flushing what was written so
 * far uncompressed. Input the peer sent after the current command is taken
 * as compressed. Returns -1 if already on or out of memory.
 */
int conn_compress(struct conn *c);

/* Idle timeout in milliseconds; reset by every read. 0 disables. */
void conn_set_timeout(struct conn *c, uint64_t ms);

/* Flush pending output, then close. handler->close runs afterwards. */
void conn_close(struct conn *c);

/* ------------------------------------------------- outbound connections */

/*
 * Connections we open (the SMTP relay to MX hosts and smarthosts). They use
 * the same struct conn as accepted ones; conn_kind() returns
 * LISTEN_KIND_COUNT and conn_listener_ctx() NULL for them.
 */
struct conn_connect_opts {
    const char *ip;              /* numeric IPv4 or IPv6 address */
    int port;
    enum tls_mode tls;           /* TLS_IMPLICIT: client handshake right after connect */
    const char *sni;             /* TLS server name (SNI) and the name verified; NULL: none */
    bool verify;                 /* TLS: refuse a peer whose chain does not verify against
                                    [tls] ca_file (or the system store when empty) or whose
                                    certificate does not match sni */
    uint64_t timeout_ms;         /* connect (+ implicit handshake) must finish within it;
                                    0: no deadline */
};
/*
 * Starts a connection; returns 0 with *out set (data set with conn_set_data
 * before any callback), or -1 (bad address, out of memory, server stopping;
 * no callback ever runs then). Later exactly one of:
 * h->open when connected (and, for TLS_IMPLICIT, after the handshake), or
 * h->close without open (connect refused / unreachable / timed out /
 * handshake failed), with conn_error() saying why. No callback runs from
 * inside conn_connect(). After open it behaves like an accepted connection:
 * h->input, h->timeout (conn_set_timeout), h->drain, h->close.
 * Output written before open waits until the connection is up (and the
 * handshake done). Outbound connections do not count against
 * max_connections/per-ip limits nor in server_connection_count();
 * server_stop calls h->shutdown on them like on inbound ones (one not open
 * yet closes with "server stopping").
 */
int conn_connect(struct server *srv, const struct conn_connect_opts *o,
                 const struct conn_handler *h, void *data, struct conn **out);
/*
 * Client side of STARTTLS (after the server's "220 ready" was read): input
 * is held, buffered input is discarded (RFC 3207 §6 injection), the
 * handshake runs, then h->handshake(c) is called and input resumes; on
 * failure the connection closes (h->close) with conn_error() set, e.g.
 * "TLS handshake: certificate verify failed (hostname mismatch)" or
 * "TLS: ca_file FILE: No such file or directory". The idle timeout
 * (conn_set_timeout) bounds the handshake. sni and verify as in struct
 * conn_connect_opts. Returns 0 (no callback runs from inside it; output
 * written meanwhile goes out encrypted), or -1 with the connection left as
 * it was (not outbound, TLS already, still connecting, closing, out of
 * memory).
 *
 * The client TLS context (the system trust store plus [tls] ca_file) is
 * loaded on the thread pool when first needed and after SIGHUP; the first
 * TLS connections wait for it within their deadline or idle timeout.
 */
int conn_starttls_client(struct conn *c, const char *sni, bool verify);
/* Why an outbound connection failed or closed: "connection refused", "timed out",
 * "TLS handshake: ...", "connection reset", "connection closed by peer" ...;
 * "" when nothing went wrong (and always for inbound connections). The
 * first reason stays. */
const char *conn_error(const struct conn *c);
/* TLS and the peer's certificate verified (chain and name) — for logs/Received.
 * Also computed when verify was false (opportunistic TLS); false inbound. */
bool conn_tls_verified(const struct conn *c);


/* ------------------------------------------------------------------ DNS */

/*
 * Asynchronous DNS on the loop: c-ares sockets watched with uv_poll_t, its
 * timeouts on a uv_timer_t; no threads, nothing blocks (docs/dns.md). One
 * struct dns serves any number of concurrent queries.
 */
struct dns;
struct dns_query;

enum dns_type { DNS_A, DNS_AAAA, DNS_MX, DNS_TXT, DNS_PTR };

enum dns_status {
    DNS_OK,        /* at least one record (of the type asked, after CNAMEs) */
    DNS_NXDOMAIN,  /* RCODE 3: the name does not exist */
    DNS_NODATA,    /* the name exists, no record of that type (RFC 2308 §2.2) */
    DNS_TEMPFAIL,  /* SERVFAIL, REFUSED, server unreachable, malformed answer,
                      out of memory: try again later */
    DNS_TIMEOUT,   /* no answer within timeout_ms x tries */
    DNS_BADNAME,   /* not a name we ask about (syntax, length; PTR: not an IP) */
    DNS_CANCELLED, /* dns_free() ran while the query was pending */
};

/* Bounds of one result. Records past DNS_MAX_RECORDS, TXT records longer
 * than DNS_MAX_TXT bytes (after concatenation) and records with malformed
 * data are left out, and the result says partial. */
#define DNS_MAX_RECORDS 64
#define DNS_MAX_TXT 4096
#define DNS_NAME_MAX 253 /* presentation form, without the trailing dot */

struct dns_mx {
    uint16_t preference;
    const char *host;  /* no trailing dot; "" is the root: RFC 7505 null MX "0 ." */
};

/*
 * A query's outcome. Everything it points to is valid only during the
 * callback (copy what you keep). Names come without the trailing dot, in
 * the case the server sent; the arrays not of the type asked are empty.
 */
struct dns_result {
    enum dns_status status;
    uint32_t ttl;                 /* least TTL of the records used, CNAMEs
                                     included; 0 unless DNS_OK */
    bool partial;                 /* some records were left out (see above) */
    const char *const *addrs;     /* A / AAAA as text: "192.0.2.1", "2001:db8::1" */
    size_t n_addrs;
    const struct dns_mx *mx;      /* sorted by preference; equal preferences
                                     keep the server's order (RFC 5321 §5.1
                                     randomising is the caller's) */
    size_t n_mx;
    const char *const *txt;       /* per record, its strings concatenated
                                     (RFC 7208 §3.3), NUL-terminated */
    const size_t *txt_len;        /* bytes of each (a TXT may hold a NUL byte) */
    size_t n_txt;
    const char *const *ptr;       /* PTR host names */
    size_t n_ptr;
};

typedef void (*dns_cb)(void *arg, const struct dns_result *r);

/*
 * A resolver on loop. server: "IP", "IP:PORT" or "[IPv6]:PORT" (port 53 by
 * default), or NULL / "" for the name servers of /etc/resolv.conf (read
 * once, here). timeout_ms: wait for one try; tries: attempts per server.
 * Every query ends after at most timeout_ms x tries with DNS_TIMEOUT. On
 * error returns -1 with one line in err.
 */
int dns_new(uv_loop_t *loop, const char *server, unsigned timeout_ms, unsigned tries,
            struct dns **out, char *err, size_t errlen);

/*
 * Every pending query's callback runs with DNS_CANCELLED before dns_free()
 * returns (from inside it; they must not start queries). May be called from
 * a callback. The memory goes once the loop has run the handles' close
 * callbacks: run the loop before uv_loop_close(). Sets *d to NULL.
 */
void dns_free(struct dns **d);

/*
 * Asks for name's records of type; cb runs exactly once, later, from the
 * loop (never from inside dns_query()), unless dns_cancel() comes first.
 * name: a domain with or without the trailing dot; for DNS_PTR a numeric
 * IPv4 or IPv6 address (the in-addr.arpa / ip6.arpa name is made here).
 * No search domains are appended. The callback may start new queries and
 * cancel others. Returns the query, valid until its callback returns, or
 * NULL (and cb never runs) when out of memory or during dns_free().
 */
struct dns_query *dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb cb,
                            void *arg);

/*
 * Forgets a pending query: its callback never runs (so the caller can free
 * what arg points to right away). Sets *q to NULL. A no-op on NULL and from
 * inside the query's own callback.
 */
void dns_cancel(struct dns_query **q);

/* RFC 7505 §3: the answer is the single MX "0 ." (the domain takes no mail). */
bool dns_mx_is_null(const struct dns_result *r);

/* "ok", "nxdomain", "nodata", "tempfail", "timeout", "badname", "cancelled". */
const char *dns_status_name(enum dns_status status);
/* "A", "AAAA", "MX", "TXT", "PTR". */
const char *dns_type_name(enum dns_type type);

/*
 * Checks a server value as dns_new() and the [dns] server key take it and
 * splits it: host gets the numeric address (without brackets), *port the
 * port (53 when none). Returns 0, or -1 with *why set.
 */
int dns_server_parse(const char *s, char *host, size_t hostlen, int *port, const char **why);

/*
 * The pure step under dns_query(), for tests and fuzzing: a DNS response
 * msg[0..len) to the question (qname, type) as a result. Follows the CNAME
 * chain from qname (at most 8 links), keeps class IN records owned by its
 * end, within the bounds above; never reads outside msg. qname is the
 * question as sent (for PTR the reverse name). Returns NULL only when out
 * of memory; free with dns_result_free().
 */
struct dns_result *dns_parse_response(const unsigned char *msg, size_t len, const char *qname,
                                      enum dns_type type);
void dns_result_free(struct dns_result **r);

#endif
