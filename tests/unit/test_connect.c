/*
 * Outbound connections (core/connect.c): conn_connect and
 * conn_starttls_client against core's own listeners on loopback, in one
 * loop. The listener side is a tiny line protocol: "220 hello" on open,
 * "250 <line>" for each line, "STARTTLS" -> "220 go" (plus an injected
 * plaintext line that the client must discard) and the server side of
 * STARTTLS, "QUIT" -> "221 bye" and close.
 *
 * Certificates: scripts/make-cert.sh makes a self-signed one for
 * mail.example.test; one server trusts it ([tls] ca_file), another has no
 * ca_file (the system store, which does not know it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

#define NAME "mail.example.test"

static char tmpdir[] = "/tmp/petrel-connect-XXXXXX";
static uv_loop_t loop;
static struct server *srv;       /* listeners; trusts the test certificate */
static struct server *srv_noca;  /* no listeners, no ca_file */
static int plain_port, tls_port;
static int listener_ctx_dummy;

/* ------------------------------------------------------ listener side */

static int srv_opened, srv_closed, srv_handshakes;

static void srv_open(struct conn *c)
{
    srv_opened++;
    conn_set_timeout(c, 15000);
    conn_printf(c, "220 hello\r\n");
}

static void srv_input(struct conn *c)
{
    const char *line;
    size_t len;
    bool crlf;
    enum conn_read r;
    while ((r = conn_getline(c, 512, &line, &len, &crlf)) != CONN_AGAIN) {
        if (r == CONN_TOOLONG)
            continue;
        if (len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
            /* One write: the injected line travels with the 220. */
            conn_printf(c, "220 go\r\n250 injected\r\n");
            assert_int_equal(conn_starttls(c), 0);
        } else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
            conn_printf(c, "221 bye\r\n");
            conn_close(c);
            return;
        } else {
            conn_printf(c, "250 %.*s\r\n", (int)len, line);
        }
    }
}

static void srv_handshake(struct conn *c)
{
    (void)c;
    srv_handshakes++;
}

static void srv_shutdown(struct conn *c)
{
    conn_printf(c, "421 stopping\r\n");
    conn_close(c);
}

static void srv_close(struct conn *c)
{
    (void)c;
    srv_closed++;
}

static const struct conn_handler srv_handler = {
    .open = srv_open,
    .input = srv_input,
    .handshake = srv_handshake,
    .shutdown = srv_shutdown,
    .close = srv_close,
};

/* -------------------------------------------------------- client side */

enum mode {
    M_PLAIN,     /* "220 hello" -> PING -> QUIT */
    M_STARTTLS,  /* "220 hello" -> STARTTLS -> handshake -> PING -> QUIT */
    M_IDLE,      /* answers nothing */
};

struct client {
    enum mode mode;
    const char *sni;            /* M_STARTTLS */
    bool verify;
    struct conn *c;
    int opened, closed, handshakes, shutdowns, starttls_rc;
    bool tls_open, verified_open, tls_hs, verified_hs;
    enum listener_kind kind;
    void *lctx;
    char peer_ip[64], local_ip[64];
    int peer_port;
    char error[256];
    char got[8][128];
    int ngot;
    uint64_t closed_ns;
};

static void cl_open(struct conn *c)
{
    struct client *k = conn_data(c);
    assert_ptr_equal(k->c, c);
    k->opened++;
    k->tls_open = conn_is_tls(c);
    k->verified_open = conn_tls_verified(c);
    k->kind = conn_kind(c);
    k->lctx = conn_listener_ctx(c);
    snprintf(k->peer_ip, sizeof k->peer_ip, "%s", conn_peer_ip(c));
    snprintf(k->local_ip, sizeof k->local_ip, "%s", conn_local_ip(c));
    k->peer_port = conn_peer_port(c);
    conn_set_timeout(c, 15000);
}

static void cl_input(struct conn *c)
{
    struct client *k = conn_data(c);
    const char *line;
    size_t len;
    bool crlf;
    while (conn_getline(c, 512, &line, &len, &crlf) == CONN_OK) {
        if (k->ngot < 8)
            snprintf(k->got[k->ngot++], sizeof k->got[0], "%.*s", (int)len, line);
        if (k->mode == M_IDLE)
            continue;
        if (len == 9 && memcmp(line, "220 hello", 9) == 0) {
            conn_printf(c, k->mode == M_STARTTLS ? "STARTTLS\r\n" : "PING\r\n");
        } else if (len == 6 && memcmp(line, "220 go", 6) == 0) {
            k->starttls_rc = conn_starttls_client(c, k->sni, k->verify);
        } else if (len == 8 && memcmp(line, "250 PING", 8) == 0) {
            conn_printf(c, "QUIT\r\n");
        } else if (len == 7 && memcmp(line, "221 bye", 7) == 0) {
            conn_close(c);
            return;
        }
    }
}

static void cl_handshake(struct conn *c)
{
    struct client *k = conn_data(c);
    k->handshakes++;
    k->tls_hs = conn_is_tls(c);
    k->verified_hs = conn_tls_verified(c);
    conn_printf(c, "PING\r\n");
}

static void cl_shutdown(struct conn *c)
{
    struct client *k = conn_data(c);
    k->shutdowns++;
    conn_printf(c, "QUIT\r\n");
    conn_close(c);
}

static void cl_close(struct conn *c)
{
    struct client *k = conn_data(c);
    assert_ptr_equal(k->c, c);
    k->closed++;
    k->closed_ns = uv_hrtime();
    snprintf(k->error, sizeof k->error, "%s", conn_error(c));
    k->c = NULL;
}

static const struct conn_handler cl_handler = {
    .open = cl_open,
    .input = cl_input,
    .handshake = cl_handshake,
    .shutdown = cl_shutdown,
    .close = cl_close,
};

/* ------------------------------------------------------------ helpers */

static bool guard_fired;

static void on_guard(uv_timer_t *t)
{
    (void)t;
    guard_fired = true;
}

/* Runs the loop until *flag is set (or ms pass: a failure). */
static void run_until(const int *flag, uint64_t ms)
{
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard_fired = false;
    uv_timer_start(&guard, on_guard, ms, 0);
    while (!*flag && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(guard_fired);
}

/* Lets the listener side finish too (srv takes one connection at a time),
 * so tests do not overlap. */
static void settle_server(void)
{
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard_fired = false;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while ((srv_closed < srv_opened || server_connection_count(srv) > 0) && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(srv_closed, srv_opened);
}

static void start(struct server *s, struct client *k, int port, enum tls_mode tls,
                  const char *sni, bool verify, uint64_t timeout_ms)
{
    struct conn_connect_opts o = {
        .ip = "127.0.0.1", .port = port, .tls = tls, .sni = sni, .verify = verify,
        .timeout_ms = timeout_ms,
    };
    assert_int_equal(conn_connect(s, &o, &cl_handler, k, &k->c), 0);
    assert_non_null(k->c);
    assert_ptr_equal(conn_data(k->c), k);
}

static bool got(const struct client *k, const char *line)
{
    for (int i = 0; i < k->ngot; i++)
        if (strcmp(k->got[i], line) == 0)
            return true;
    return false;
}

/* A TCP socket that listens and never accepts: the kernel completes the
 * connect, nobody ever speaks. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------ fixture */

static int group_setup(void **state)
{
    (void)state;
    char err[512], cmd[1024];
    if (!mkdtemp(tmpdir))
        return -1;
    const char *src = getenv("PETREL_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "PETREL_SOURCE_DIR is not set (ctest sets it)\n");
        return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s/scripts/make-cert.sh' " NAME " '%s/tls' >/dev/null 2>&1", src,
             tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "make-cert.sh failed\n");
        return -1;
    }
    const char *lv = getenv("PETREL_TEST_LOG");
    enum log_level level = PLOG_ERROR;
    if (lv)
        log_level_parse(lv, &level);
    log_set_level(level);

    struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof cfg.hostname, NAME);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", tmpdir);
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s/tls/cert.pem", tmpdir);
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s/tls/key.pem", tmpdir);
    snprintf(cfg.tls_ca_file, sizeof cfg.tls_ca_file, "%s/tls/cert.pem", tmpdir);
    cfg.max_connections = 1; /* outbound connections must not count */
    cfg.max_connections_per_ip = 1;
    if (uv_loop_init(&loop) != 0)
        return -1;
    if (server_init(&srv, &loop, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "server_init: %s\n", err);
        return -1;
    }
    struct listen_addr a = { .enabled = true, .host = "127.0.0.1", .port = 0 };
    if (listener_start(srv, LISTEN_SMTP, &a, TLS_NONE, &srv_handler, &listener_ctx_dummy, err,
                       sizeof err) != 0 ||
        listener_start(srv, LISTEN_SUBMISSIONS, &a, TLS_IMPLICIT, &srv_handler,
                       &listener_ctx_dummy, err, sizeof err) != 0) {
        fprintf(stderr, "listener_start: %s\n", err);
        return -1;
    }
    plain_port = listener_port(server_listener(srv, LISTEN_SMTP));
    tls_port = listener_port(server_listener(srv, LISTEN_SUBMISSIONS));

    cfg.tls_ca_file[0] = '\0';
    if (server_init(&srv_noca, &loop, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "server_init: %s\n", err);
        return -1;
    }
    return 0;
}

static void stopped(void *arg)
{
    (*(int *)arg)++;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int done = 0;
    server_stop(srv, stopped, &done);
    server_stop(srv_noca, stopped, &done);
    while (done < 2)
        uv_run(&loop, UV_RUN_ONCE);
    server_free(&srv);
    server_free(&srv_noca);
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        return -1;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- tests */

static void test_bad_address(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    struct conn *c = (struct conn *)&k;
    struct conn_connect_opts o = { .ip = NAME, .port = 25 };
    assert_int_equal(conn_connect(srv, &o, &cl_handler, &k, &c), -1);
    assert_null(c);
    o.ip = "127.0.0.1";
    o.port = 0;
    assert_int_equal(conn_connect(srv, &o, &cl_handler, &k, &c), -1);
    o.port = 70000;
    assert_int_equal(conn_connect(srv, &o, &cl_handler, &k, &c), -1);
    o.ip = NULL;
    o.port = 25;
    assert_int_equal(conn_connect(srv, &o, &cl_handler, &k, &c), -1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(k.opened + k.closed, 0);
}

/* Plain connect, lines both ways, the accessors of an outbound conn, and
 * output written before open held until the connection is up. */
static void test_plain(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    start(srv, &k, plain_port, TLS_NONE, NULL, false, 10000);
    conn_printf(k.c, "EARLY\r\n");
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_int_equal(k.closed, 1);
    assert_false(k.tls_open);
    assert_false(k.verified_open);
    assert_int_equal(k.kind, LISTEN_KIND_COUNT);
    assert_null(k.lctx);
    assert_string_equal(k.peer_ip, "127.0.0.1");
    assert_int_equal(k.peer_port, plain_port);
    assert_string_equal(k.local_ip, "127.0.0.1");
    assert_int_equal(k.ngot, 4);
    assert_string_equal(k.got[0], "220 hello");
    assert_string_equal(k.got[1], "250 EARLY");
    assert_string_equal(k.got[2], "250 PING");
    assert_string_equal(k.got[3], "221 bye");
    assert_string_equal(k.error, ""); /* we closed after 221: nothing went wrong */
    settle_server();
}

/* max_connections = 1 (and 1 per IP) on srv: an outbound connection from
 * srv to its own listener takes no slot, so the inbound side is accepted,
 * and only that one is counted. */
static void test_outbound_not_counted(void **state)
{
    (void)state;
    struct client k = { .mode = M_IDLE };
    start(srv, &k, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k.ngot, 15000);
    assert_int_equal(k.opened, 1);
    assert_string_equal(k.got[0], "220 hello");
    assert_int_equal(server_connection_count(srv), 1);
    conn_close(k.c);
    run_until(&k.closed, 15000);
    assert_string_equal(k.error, "");
    settle_server();
}

static void test_implicit_verified(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    start(srv, &k, tls_port, TLS_IMPLICIT, NAME, true, 10000);
    conn_printf(k.c, "EARLY\r\n"); /* waits for the handshake */
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_true(k.tls_open);
    assert_true(k.verified_open);
    assert_int_equal(k.handshakes, 0); /* implicit: open plays that part */
    assert_int_equal(k.ngot, 4);
    assert_string_equal(k.got[1], "250 EARLY");
    assert_string_equal(k.got[3], "221 bye");
    assert_string_equal(k.error, "");
    settle_server();
}

static void test_implicit_wrong_name(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    start(srv, &k, tls_port, TLS_IMPLICIT, "other.example.test", true, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 0);
    assert_int_equal(k.closed, 1);
    assert_non_null(strstr(k.error, "TLS handshake: certificate verify failed"));
    assert_non_null(strstr(k.error, "hostname mismatch"));
    settle_server();
}

static void test_implicit_no_ca(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    start(srv_noca, &k, tls_port, TLS_IMPLICIT, NAME, true, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 0);
    assert_non_null(strstr(k.error, "certificate verify failed"));
    settle_server();
}

/* Opportunistic: encrypted, not authenticated, and said so. */
static void test_implicit_no_verify(void **state)
{
    (void)state;
    struct client k = { .mode = M_PLAIN };
    start(srv_noca, &k, tls_port, TLS_IMPLICIT, NAME, false, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_true(k.tls_open);
    assert_false(k.verified_open);
    assert_true(got(&k, "250 PING"));
    assert_true(got(&k, "221 bye"));
    assert_string_equal(k.error, "");
    settle_server();

    /* Without verify but trusted and the right name: verified all the same;
     * the wrong name: not verified, still connected. */
    struct client k2 = { .mode = M_PLAIN };
    start(srv, &k2, tls_port, TLS_IMPLICIT, NAME, false, 10000);
    run_until(&k2.closed, 15000);
    assert_int_equal(k2.opened, 1);
    assert_true(k2.verified_open);
    settle_server();
    struct client k3 = { .mode = M_PLAIN };
    start(srv, &k3, tls_port, TLS_IMPLICIT, "other.example.test", false, 10000);
    run_until(&k3.closed, 15000);
    assert_int_equal(k3.opened, 1);
    assert_true(k3.tls_open);
    assert_false(k3.verified_open);
    settle_server();
}

static void test_starttls(void **state)
{
    (void)state;
    int hs_before = srv_handshakes;
    struct client k = { .mode = M_STARTTLS, .sni = NAME, .verify = true };
    start(srv, &k, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_false(k.tls_open);
    assert_int_equal(k.starttls_rc, 0);
    assert_int_equal(k.handshakes, 1);
    assert_int_equal(srv_handshakes - hs_before, 1);
    assert_true(k.tls_hs);
    assert_true(k.verified_hs);
    assert_false(got(&k, "250 injected")); /* RFC 3207 §6 */
    assert_int_equal(k.ngot, 4);
    assert_string_equal(k.got[0], "220 hello");
    assert_string_equal(k.got[1], "220 go");
    assert_string_equal(k.got[2], "250 PING");
    assert_string_equal(k.got[3], "221 bye");
    assert_string_equal(k.error, "");
    settle_server();
}

static void test_starttls_verify_fails(void **state)
{
    (void)state;
    struct client k = { .mode = M_STARTTLS, .sni = "other.example.test", .verify = true };
    start(srv, &k, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_int_equal(k.starttls_rc, 0);
    assert_int_equal(k.handshakes, 0);
    assert_non_null(strstr(k.error, "TLS handshake: certificate verify failed"));
    assert_false(got(&k, "250 PING"));
    settle_server();
}

/* conn_starttls_client refuses a connection that is TLS already. */
static void starttls_twice_open(struct conn *c)
{
    struct client *k = conn_data(c);
    k->opened++;
    k->starttls_rc = conn_starttls_client(c, NAME, true);
    conn_close(c);
}

static void test_starttls_refused(void **state)
{
    (void)state;
    struct conn_handler h = cl_handler;
    h.open = starttls_twice_open;
    struct client k = { .mode = M_IDLE };
    struct conn_connect_opts o = {
        .ip = "127.0.0.1", .port = tls_port, .tls = TLS_IMPLICIT, .sni = NAME, .verify = true,
        .timeout_ms = 10000,
    };
    assert_int_equal(conn_connect(srv, &o, &h, &k, &k.c), 0);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_int_equal(k.starttls_rc, -1);
    settle_server();
}

static void test_refused(void **state)
{
    (void)state;
    int port;
    int fd = silent_listener(&port);
    close(fd); /* nothing listens on port now */
    struct client k = { .mode = M_PLAIN };
    uint64_t t0 = uv_hrtime();
    start(srv, &k, port, TLS_NONE, NULL, false, 5000);
    run_until(&k.closed, 3000);
    assert_int_equal(k.opened, 0);
    assert_int_equal(k.closed, 1);
    assert_string_equal(k.error, "connection refused");
    assert_true(k.closed_ns - t0 < 1000000000ull);
}

static void test_timeout(void **state)
{
    (void)state;
    int port;
    int fd = silent_listener(&port);
    struct client k = { .mode = M_PLAIN };
    uint64_t t0 = uv_hrtime();
    start(srv, &k, port, TLS_IMPLICIT, NAME, true, 300);
    run_until(&k.closed, 3000);
    uint64_t ms = (k.closed_ns - t0) / 1000000;
    assert_int_equal(k.opened, 0);
    assert_int_equal(k.closed, 1);
    assert_non_null(strstr(k.error, "timed out"));
    assert_true(ms >= 250 && ms < 1000);
    close(fd);
}

/* The caller gives up while the connect is pending: close, never open. */
static void test_close_while_connecting(void **state)
{
    (void)state;
    int port;
    int fd = silent_listener(&port);
    struct client k = { .mode = M_PLAIN };
    start(srv, &k, port, TLS_IMPLICIT, NAME, true, 0);
    conn_close(k.c);
    run_until(&k.closed, 3000);
    assert_int_equal(k.opened, 0);
    assert_string_equal(k.error, "");
    close(fd);
}

/* A server of its own (no listeners) with ca_file; stopped and freed by
 * drop_server(). */
static struct server *new_server(const char *ca_file)
{
    char err[512];
    struct config cfg = *server_config(srv_noca);
    snprintf(cfg.tls_ca_file, sizeof cfg.tls_ca_file, "%s", ca_file);
    struct server *s;
    assert_int_equal(server_init(&s, &loop, &cfg, err, sizeof err), 0);
    return s;
}

static void drop_server(struct server **s)
{
    int done = 0;
    server_stop(*s, stopped, &done);
    run_until(&done, 15000);
    server_free(s);
}

/* The first TLS use of a server: STARTTLS waits for the client context
 * (loaded on the thread pool), then goes on. */
static void test_starttls_first_use(void **state)
{
    (void)state;
    char ca[600];
    snprintf(ca, sizeof ca, "%s/tls/cert.pem", tmpdir);
    struct server *s = new_server(ca);
    struct client k = { .mode = M_STARTTLS, .sni = NAME, .verify = true };
    start(s, &k, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.starttls_rc, 0);
    assert_int_equal(k.handshakes, 1);
    assert_true(k.verified_hs);
    assert_false(got(&k, "250 injected"));
    assert_true(got(&k, "250 PING"));
    assert_string_equal(k.error, "");
    drop_server(&s);
    settle_server();
}

/* An unreadable ca_file: the attempt closes saying so; plain still works. */
static void test_bad_ca_file(void **state)
{
    (void)state;
    struct server *s = new_server("/nonexistent/ca.pem");
    struct client k = { .mode = M_PLAIN };
    start(s, &k, tls_port, TLS_IMPLICIT, NAME, true, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 0);
    assert_non_null(strstr(k.error, "TLS: ca_file /nonexistent/ca.pem"));
    settle_server();
    struct client k2 = { .mode = M_STARTTLS, .sni = NAME, .verify = false };
    start(s, &k2, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k2.closed, 15000);
    assert_int_equal(k2.opened, 1);
    assert_int_equal(k2.handshakes, 0);
    assert_non_null(strstr(k2.error, "TLS: ca_file /nonexistent/ca.pem"));
    settle_server();
    struct client k3 = { .mode = M_PLAIN };
    start(s, &k3, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&k3.closed, 15000);
    assert_true(got(&k3, "221 bye"));
    drop_server(&s);
    settle_server();
}

/* SIGHUP drops the client context; the next connection loads it again. */
static void test_reload(void **state)
{
    (void)state;
    assert_int_equal(server_reload_tls(srv), 0);
    struct client k = { .mode = M_PLAIN };
    start(srv, &k, tls_port, TLS_IMPLICIT, NAME, true, 10000);
    run_until(&k.closed, 15000);
    assert_int_equal(k.opened, 1);
    assert_true(k.verified_open);
    settle_server();
}

/* server_stop: an open outbound connection gets shutdown, one still in its
 * handshake closes with "server stopping"; everything is freed. */
static void test_server_stop(void **state)
{
    (void)state;
    char err[512];
    struct config cfg = *server_config(srv_noca);
    struct server *s3;
    assert_int_equal(server_init(&s3, &loop, &cfg, err, sizeof err), 0);

    struct client a = { .mode = M_IDLE };
    start(s3, &a, plain_port, TLS_NONE, NULL, false, 10000);
    run_until(&a.ngot, 15000);
    assert_int_equal(a.opened, 1);
    assert_string_equal(a.got[0], "220 hello");

    int port;
    int fd = silent_listener(&port);
    struct client b = { .mode = M_PLAIN };
    start(s3, &b, port, TLS_IMPLICIT, NAME, false, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(server_connection_count(s3), 0);

    int done = 0;
    server_stop(s3, stopped, &done);
    struct conn_connect_opts o = { .ip = "127.0.0.1", .port = plain_port };
    struct client c = { .mode = M_PLAIN };
    assert_int_equal(conn_connect(s3, &o, &cl_handler, &c, &c.c), -1); /* stopping */
    run_until(&done, 15000);
    assert_int_equal(a.shutdowns, 1);
    assert_int_equal(a.closed, 1);
    assert_int_equal(b.opened, 0);
    assert_int_equal(b.closed, 1);
    assert_string_equal(b.error, "server stopping");
    server_free(&s3);
    close(fd);
    settle_server();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_outbound_not_counted),
        cmocka_unit_test(test_implicit_verified),
        cmocka_unit_test(test_implicit_wrong_name),
        cmocka_unit_test(test_implicit_no_ca),
        cmocka_unit_test(test_implicit_no_verify),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_starttls_verify_fails),
        cmocka_unit_test(test_starttls_refused),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_close_while_connecting),
        cmocka_unit_test(test_starttls_first_use),
        cmocka_unit_test(test_bad_ca_file),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_server_stop),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
