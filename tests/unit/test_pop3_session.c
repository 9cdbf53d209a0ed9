/*
 * The POP3 state machine, in process: a real server (core), store, auth and
 * pop3_start on a loopback port, driven by a scripted blocking client in a
 * second thread while the test thread runs the loop. Covers the command
 * table (every command in the wrong state), AUTHORIZATION -> TRANSACTION
 * -> UPDATE, DELE / RSET / QUIT, dropped connections, pipelining, limits
 * (bad commands, long lines, pre-login timeout), concurrent snapshots,
 * SASL AUTH, and a large RETR under back-pressure next to a second session.
 *
 * The client thread never calls cmocka: it records failures as text, and
 * the test thread fails with them after joining it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "pop3/pop3.h"

#define PW "pop3 test password"
/* More than the kernel buffers on both ends of loopback hold (tcp_wmem's
 * 4 MB maximum plus a 16 KB receive buffer), so back-pressure must act. */
#define BIG_SIZE (12 * 1024 * 1024)

static char tmpdir[] = "/tmp/petrel-pop3-XXXXXX";
static struct config cfg;
static struct store *db;
static struct server *srv;
static uv_loop_t loop;
static uv_async_t done_async;
static int port;
static char *big;          /* erin's large message */

/* ------------------------------------------------------------ fixture */

static void add_user(const char *address)
{
    char *h = NULL, *sc = NULL;
    assert_int_equal(auth_make_credentials(PW, &h, &sc), 0);
    assert_int_equal(store_user_add(db, address, h, sc, 0), STORE_OK);
    free(h);
    free(sc);
}

static void delivered(void *arg, int result)
{
    *(int *)arg = result;
}

static void deliver(const char *address, const char *data, size_t len)
{
    struct store_user u;
    assert_int_equal(store_user_get(db, address, &u), STORE_OK);
    int result = 1;
    struct store_delivery d = {
        .data = data, .len = len, .internal_date = 1700000000, .mail_from = "x@remote.test",
        .user_ids = &u.id, .n_users = 1,
    };
    assert_int_equal(store_deliver(db, &d, delivered, &result), STORE_OK);
    while (result == 1)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(result, STORE_OK);
}

static void deliver_str(const char *address, const char *data)
{
    deliver(address, data, strlen(data));
}

static unsigned inbox_count(const char *address)
{
    struct store_user u;
    struct store_mailbox mb;
    assert_int_equal(store_user_get(db, address, &u), STORE_OK);
    assert_int_equal(store_mailbox_get(db, u.id, "INBOX", &mb), STORE_OK);
    return mb.messages;
}

static void on_done_async(uv_async_t *h)
{
    uv_stop(&loop);
}

static const char msg1[] = "Subject: one\r\nFrom: a@remote.test\r\n\r\nbody one\r\n.dot line\r\n";
static const char msg2[] = "Subject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";
static const char msg3[] = "Subject: three\r\n\r\n..two dots\r\n.\r\nend\r\n";

static int group_setup(void **state)
{
    char err[512], cmd[1024];
    if (!mkdtemp(tmpdir))
        return -1;
    const char *src = getenv("PETREL_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "PETREL_SOURCE_DIR is not set (ctest sets it)\n");
        return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s/scripts/make-cert.sh' mail.example.test '%s/tls' >/dev/null 2>&1",
             src, tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "make-cert.sh failed\n");
        return -1;
    }
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof cfg.hostname, "mail.example.test");
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", tmpdir);
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s/tls/cert.pem", tmpdir);
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s/tls/key.pem", tmpdir);
    cfg.listen[LISTEN_POP3].enabled = true;
    snprintf(cfg.listen[LISTEN_POP3].host, sizeof cfg.listen[LISTEN_POP3].host, "127.0.0.1");
    cfg.listen[LISTEN_POP3].port = 0;
    cfg.plaintext_on_loopback = true;
    cfg.auth_fail_delay_ms = 10;
    cfg.max_errors = 12;
    cfg.preauth_timeout = 2;
    cfg.max_output_buffer = 256 * 1024;
    log_set_level(PLOG_ERROR);

    if (uv_loop_init(&loop) != 0)
        return -1;
    if (server_init(&srv, &loop, &cfg, err, sizeof err) != 0 ||
        store_open(tmpdir, &db, err, sizeof err) != 0 || store_start_writer(db, &loop) != 0 ||
        auth_init(&cfg, db, &loop, err, sizeof err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    if (store_domain_add(db, "example.test") != STORE_OK)
        return -1;
    static const char *const users[] = { "alice", "bob", "carol", "dave", "erin", "frank" };
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s@example.test", users[i]);
        add_user(a);
        deliver_str(a, msg1);
        deliver_str(a, msg2);
        deliver_str(a, msg3);
    }
    big = malloc(BIG_SIZE + 1);
    memcpy(big, "Subject: big\r\n\r\n", 16);
    for (size_t i = 16; i < BIG_SIZE; i++)
        big[i] = (i % 77 == 75) ? '\r' : (i % 77 == 76) ? '\n' : (i % 77 == 0) ? '.' : 'a' + i % 26;
    big[BIG_SIZE] = 0;
    deliver("erin@example.test", big, BIG_SIZE);

    if (pop3_start(srv, db, err, sizeof err) != 0) {
        fprintf(stderr, "pop3_start: %s\n", err);
        return -1;
    }
    port = listener_port(server_listener(srv, LISTEN_POP3));
    uv_async_init(&loop, &done_async, on_done_async);
    return 0;
}

static void stopped(void *arg)
{
    uv_stop(&loop);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int group_teardown(void **state)
{
    server_stop(srv, stopped, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_close(&db);
    auth_shutdown();
    server_free(&srv);
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(big);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------- client thread */

static char failures[8192];

#define EXPECT(cond, ...)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            size_t used_ = strlen(failures);                                     \
            int n_ = snprintf(failures + used_, sizeof failures - used_,        \
                              "line %d: ", __LINE__);                            \
            if (n_ > 0 && (size_t)n_ < sizeof failures - used_) {               \
                used_ += (size_t)n_;                                             \
                snprintf(failures + used_, sizeof failures - used_, __VA_ARGS__); \
                strncat(failures, "\n", sizeof failures - strlen(failures) - 1); \
            }                                                                    \
        }                                                                        \
    } while (0)

struct client {
    int fd;
    char buf[65536];
    size_t have;
};

static bool cl_connect_buf(struct client *c, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf) /* before connect, so the window is small from the start */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = { .tv_sec = 15 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        EXPECT(false, "connect failed");
        return false;
    }
    return true;
}

static bool cl_connect(struct client *c)
{
    return cl_connect_buf(c, 0);
}

static void cl_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void cl_send(struct client *c, const char *text)
{
    size_t n = strlen(text);
    EXPECT(send(c->fd, text, n, MSG_NOSIGNAL) == (ssize_t)n, "send %s", text);
}

/* One line without CRLF into out; false on EOF or timeout. */
static bool cl_line(struct client *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1;
            size_t keep = n >= 2 && nl[-1] == '\r' ? n - 2 : n - 1;
            if (keep >= cap)
                keep = cap - 1;
            memcpy(out, c->buf, keep);
            out[keep] = 0;
            memmove(c->buf, c->buf + n, c->have - n);
            c->have -= n;
            return true;
        }
        if (c->have == sizeof c->buf)
            return false;
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r <= 0) {
            out[0] = 0;
            return false;
        }
        c->have += (size_t)r;
    }
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Sends cmd (CRLF added) and checks the first line of the reply. */
static void cl_expect(struct client *c, const char *cmd, const char *prefix)
{
    char line[1024], text[1100];
    snprintf(text, sizeof text, "%s\r\n", cmd);
    cl_send(c, text);
    bool got = cl_line(c, line, sizeof line);
    EXPECT(got && starts(line, prefix), "%s: got [%s], want [%s...]", cmd, line, prefix);
}

/* The body of a multi-line response, dot-unstuffed, lines joined by "\n"
 * (or the raw CRLF bytes with raw). */
static size_t cl_multi(struct client *c, char *out, size_t cap, bool raw)
{
    char line[8192];
    size_t n = 0;
    while (cl_line(c, line, sizeof line)) {
        if (strcmp(line, ".") == 0)
            return n;
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t len = strlen(p);
        if (n + len + 2 < cap) {
            memcpy(out + n, p, len);
            n += len;
            if (raw)
                out[n++] = '\r';
            out[n++] = '\n';
        }
    }
    EXPECT(false, "multi-line response not terminated");
    return n;
}

static bool cl_eof(struct client *c)
{
    char line[1024];
    while (cl_line(c, line, sizeof line))
        ;
    return c->have == 0;
}

static void cl_greeting(struct client *c)
{
    char line[1024];
    EXPECT(cl_line(c, line, sizeof line) && starts(line, "+OK "), "greeting [%s]", line);
}

static void cl_login(struct client *c, const char *user, const char *prefix)
{
    char text[256];
    cl_greeting(c);
    snprintf(text, sizeof text, "USER %s", user);
    cl_expect(c, text, "+OK");
    cl_expect(c, "PASS " PW, prefix);
}

/* Runs fn in a client thread while this thread runs the loop. */
static void *thread_main(void *arg)
{
    ((void (*)(void))arg)();
    uv_async_send(&done_async);
    return NULL;
}

static void run_client(void (*fn)(void))
{
    failures[0] = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_main, (void *)fn), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    /* Let the server see the last closes. */
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (failures[0])
        fail_msg("%s", failures);
}

/* --------------------------------------------------------------- tests */

static void script_authorization(void)
{
    struct client c;
    char buf[4096];
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    /* TRANSACTION commands before login. */
    cl_expect(&c, "STAT", "-ERR STAT is not valid before login");
    cl_expect(&c, "RETR 1", "-ERR RETR is not valid before login");
    cl_expect(&c, "NOOP", "-ERR NOOP is not valid before login");
    cl_expect(&c, "XYZZY", "-ERR Unknown command");
    cl_expect(&c, "PASS x", "-ERR Send USER first");
    cl_expect(&c, "APOP alice@example.test 0123456789abcdef", "-ERR APOP is not available");
    cl_expect(&c, "CAPA", "+OK");
    size_t n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    EXPECT(strstr(buf, "\nUSER\n") && strstr(buf, "SASL ") && strstr(buf, "PLAIN") &&
               strstr(buf, "STLS\n") && strstr(buf, "TOP\n") && strstr(buf, "UIDL\n") &&
               strstr(buf, "RESP-CODES\n") && strstr(buf, "AUTH-RESP-CODE\n") &&
               strstr(buf, "PIPELINING\n") && strstr(buf, "EXPIRE NEVER\n") &&
               strstr(buf, "IMPLEMENTATION Petrel\n"),
           "CAPA before login: [%s]", buf);
    cl_expect(&c, "USER alice@example.test", "+OK");
    cl_expect(&c, "PASS wrong password", "-ERR [AUTH] Authentication failed");
    /* After a failed PASS, USER is needed again (RFC 1939 §7). */
    cl_expect(&c, "PASS " PW, "-ERR Send USER first");
    cl_expect(&c, "USER alice@example.test", "+OK");
    cl_expect(&c, "PASS " PW, "+OK Logged in, 3 messages");
    cl_expect(&c, "USER alice@example.test", "-ERR USER is not valid after login");
    cl_expect(&c, "AUTH PLAIN", "-ERR AUTH is not valid after login");
    cl_expect(&c, "STLS", "-ERR STLS is not valid after login");
    cl_expect(&c, "CAPA", "+OK");
    n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    EXPECT(!strstr(buf, "USER") && !strstr(buf, "SASL") && !strstr(buf, "STLS") &&
               strstr(buf, "UIDL\n"),
           "CAPA after login: [%s]", buf);
    cl_expect(&c, "QUIT", "+OK");
    EXPECT(cl_eof(&c), "no close after QUIT");
    cl_close(&c);

    /* QUIT before login just ends the session. */
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    cl_expect(&c, "QUIT", "+OK");
    EXPECT(cl_eof(&c), "no close after QUIT");
    cl_close(&c);
}

static void test_authorization(void **state)
{
    run_client(script_authorization);
    assert_int_equal(inbox_count("alice@example.test"), 3);
}

static void script_transaction(void)
{
    struct client c;
    char buf[4096], want[256];
    if (!cl_connect(&c))
        return;
    cl_login(&c, "alice@example.test", "+OK");
    size_t total = strlen(msg1) + strlen(msg2) + strlen(msg3);
    snprintf(want, sizeof want, "+OK 3 %zu", total);
    cl_expect(&c, "STAT", want);
    cl_expect(&c, "LIST", "+OK 3 messages");
    size_t n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    snprintf(want, sizeof want, "1 %zu\n2 %zu\n3 %zu\n", strlen(msg1), strlen(msg2), strlen(msg3));
    EXPECT(strcmp(buf, want) == 0, "LIST: [%s] want [%s]", buf, want);
    snprintf(want, sizeof want, "+OK 2 %zu", strlen(msg2));
    cl_expect(&c, "LIST 2", want);
    cl_expect(&c, "LIST 0", "-ERR No such message");
    cl_expect(&c, "LIST 4", "-ERR No such message");
    cl_expect(&c, "LIST x", "-ERR Invalid message number");
    cl_expect(&c, "LIST 1 2", "-ERR Syntax: LIST [msg]");
    cl_expect(&c, "STAT 1", "-ERR Syntax: STAT");
    cl_expect(&c, "UIDL", "+OK");
    n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    EXPECT(n == 3 * (2 + POP3_UIDL_LEN + 1) && buf[0] == '1' && buf[1] == ' ', "UIDL: [%s]", buf);
    char uidl1[64];
    snprintf(uidl1, sizeof uidl1, "+OK 1 %.*s", POP3_UIDL_LEN, buf + 2);
    cl_expect(&c, "UIDL 1", uidl1);

    snprintf(want, sizeof want, "+OK %zu octets", strlen(msg1));
    cl_expect(&c, "RETR 1", want);
    n = cl_multi(&c, buf, sizeof buf, true);
    EXPECT(n == strlen(msg1) && memcmp(buf, msg1, n) == 0, "RETR 1 bytes differ");
    cl_expect(&c, "RETR 3", "+OK");
    n = cl_multi(&c, buf, sizeof buf, true);
    EXPECT(n == strlen(msg3) && memcmp(buf, msg3, n) == 0, "RETR 3 bytes differ");
    cl_expect(&c, "TOP 2 1", "+OK");
    n = cl_multi(&c, buf, sizeof buf, true);
    buf[n] = 0;
    EXPECT(strcmp(buf, "Subject: two\r\n\r\nline 1\r\n") == 0, "TOP 2 1: [%s]", buf);
    cl_expect(&c, "TOP 2", "-ERR Syntax: TOP msg lines");
    cl_expect(&c, "TOP 2 x", "-ERR Invalid line count");

    cl_expect(&c, "DELE 1", "+OK Message 1 deleted");
    cl_expect(&c, "DELE 1", "-ERR Message 1 already deleted");
    cl_expect(&c, "RETR 1", "-ERR Message 1 already deleted");
    snprintf(want, sizeof want, "+OK 2 %zu", strlen(msg2) + strlen(msg3));
    cl_expect(&c, "STAT", want);
    cl_expect(&c, "LIST", "+OK 2 messages");
    n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    EXPECT(buf[0] == '2', "LIST after DELE: [%s]", buf);
    cl_expect(&c, "RSET", "+OK Maildrop has 3 messages");
    snprintf(want, sizeof want, "+OK 3 %zu", total);
    cl_expect(&c, "STAT", want);
    cl_expect(&c, "NOOP", "+OK");
    cl_expect(&c, "QUIT", "+OK");
    EXPECT(cl_eof(&c), "no close after QUIT");
    cl_close(&c);
}

static void test_transaction(void **state)
{
    run_client(script_transaction);
    assert_int_equal(inbox_count("alice@example.test"), 3);
}

static void script_dele_quit(void)
{
    struct client c;
    if (!cl_connect(&c))
        return;
    cl_login(&c, "bob@example.test", "+OK Logged in, 3 messages");
    cl_expect(&c, "DELE 1", "+OK");
    cl_expect(&c, "DELE 3", "+OK");
    cl_expect(&c, "QUIT", "+OK mail.example.test POP3 server signing off (2 messages deleted)");
    EXPECT(cl_eof(&c), "no close after QUIT");
    cl_close(&c);
    /* The next session sees what is left, numbered afresh. */
    if (!cl_connect(&c))
        return;
    cl_login(&c, "bob@example.test", "+OK Logged in, 1 messages");
    char want[64];
    snprintf(want, sizeof want, "+OK 1 %zu", strlen(msg2));
    cl_expect(&c, "LIST 1", want);
    cl_expect(&c, "QUIT", "+OK");
    cl_close(&c);
}

static void test_dele_quit_expunges(void **state)
{
    run_client(script_dele_quit);
    assert_int_equal(inbox_count("bob@example.test"), 1);
}

static void script_drop(void)
{
    struct client c;
    if (!cl_connect(&c))
        return;
    cl_login(&c, "carol@example.test", "+OK");
    cl_expect(&c, "DELE 1", "+OK");
    cl_expect(&c, "DELE 2", "+OK");
    cl_close(&c); /* no QUIT */
    /* A timeout in TRANSACTION is a drop too: nothing is deleted. */
    if (!cl_connect(&c))
        return;
    cl_login(&c, "carol@example.test", "+OK Logged in, 3 messages");
    cl_expect(&c, "DELE 3", "+OK");
    cl_close(&c);
}

static void test_dropped_connection_keeps_mail(void **state)
{
    run_client(script_drop);
    assert_int_equal(inbox_count("carol@example.test"), 3);
}

static void script_pipelining(void)
{
    struct client c;
    char line[1024];
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    /* RFC 2449 §6.6: the whole session in one write. */
    cl_send(&c, "CAPA\r\nUSER alice@example.test\r\nPASS " PW "\r\nSTAT\r\nLIST 2\r\n"
                "RETR 2\r\nDELE 2\r\nRSET\r\nNOOP\r\nQUIT\r\n");
    char buf[4096];
    EXPECT(cl_line(&c, line, sizeof line) && starts(line, "+OK"), "CAPA: %s", line);
    cl_multi(&c, buf, sizeof buf, false);
    static const char *const want[] = { "+OK", "+OK Logged in", "+OK 3 ", "+OK 2 ", "+OK " };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        EXPECT(cl_line(&c, line, sizeof line) && starts(line, want[i]), "%zu: [%s] want [%s]",
               i, line, want[i]);
    size_t n = cl_multi(&c, buf, sizeof buf, true);
    EXPECT(n == strlen(msg2) && memcmp(buf, msg2, n) == 0, "pipelined RETR bytes differ");
    static const char *const rest[] = { "+OK Message 2 deleted", "+OK Maildrop has 3", "+OK",
                                        "+OK mail.example.test POP3 server signing off (0" };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        EXPECT(cl_line(&c, line, sizeof line) && starts(line, rest[i]), "%zu: [%s] want [%s]",
               i, line, rest[i]);
    EXPECT(cl_eof(&c), "no close after QUIT");
    cl_close(&c);
}

static void test_pipelining(void **state)
{
    run_client(script_pipelining);
    assert_int_equal(inbox_count("alice@example.test"), 3);
}

static void script_limits(void)
{
    struct client c;
    char line[1024];
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    /* An overlong line is answered once; the session goes on. */
    char *longline = malloc(cfg.max_line_length + 100);
    memset(longline, 'A', cfg.max_line_length + 97);
    memcpy(longline + cfg.max_line_length + 97, "\r\n", 3);
    cl_send(&c, longline);
    free(longline);
    EXPECT(cl_line(&c, line, sizeof line) && starts(line, "-ERR Line too long"), "[%s]", line);
    cl_expect(&c, "CAPA", "+OK");
    cl_multi(&c, line, sizeof line, false);
    /* max_errors (12 here) bad commands, the long line included: closed. */
    for (int i = 0; i < 10; i++)
        cl_expect(&c, "BOGUS", "-ERR Unknown command");
    cl_expect(&c, "BOGUS", "-ERR Unknown command");
    EXPECT(cl_line(&c, line, sizeof line) && starts(line, "-ERR Too many errors"), "[%s]", line);
    EXPECT(cl_eof(&c), "not closed after too many errors");
    cl_close(&c);

    /* preauth_timeout (2 s here). */
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    EXPECT(cl_line(&c, line, sizeof line) && starts(line, "-ERR Autologout"), "[%s]", line);
    EXPECT(cl_eof(&c), "not closed after the timeout");
    cl_close(&c);
}

static void test_limits(void **state)
{
    run_client(script_limits);
}

/* Two sessions of one user work on their own snapshots (docs/pop3.md). */
static void script_concurrent(void)
{
    struct client a, b;
    char buf[4096];
    if (!cl_connect(&a) || !cl_connect(&b))
        return;
    cl_login(&a, "dave@example.test", "+OK Logged in, 3 messages");
    cl_login(&b, "dave@example.test", "+OK Logged in, 3 messages");
    cl_expect(&a, "UIDL 2", "+OK 2 ");
    cl_expect(&a, "DELE 1", "+OK");
    cl_expect(&a, "QUIT", "+OK mail.example.test POP3 server signing off (1 messages deleted)");
    cl_close(&a);
    /* b's numbers and listing do not move; the deleted message is gone. */
    cl_expect(&b, "STAT", "+OK 3 ");
    cl_expect(&b, "RETR 1", "-ERR Message 1 was removed by another session");
    cl_expect(&b, "TOP 1 0", "-ERR Message 1 was removed by another session");
    cl_expect(&b, "RETR 2", "+OK");
    size_t n = cl_multi(&b, buf, sizeof buf, true);
    EXPECT(n == strlen(msg2) && memcmp(buf, msg2, n) == 0, "RETR 2 bytes differ");
    cl_expect(&b, "DELE 1", "+OK"); /* harmless: already gone */
    cl_expect(&b, "QUIT", "+OK mail.example.test POP3 server signing off (0 messages deleted)");
    cl_close(&b);
}

static void test_concurrent_snapshots(void **state)
{
    run_client(script_concurrent);
    assert_int_equal(inbox_count("dave@example.test"), 2);
}

static void b64(const char *raw, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
}

static void script_sasl(void)
{
    struct client c;
    char buf[1024], text[600], enc[400];
    static const char plain[] = "\0frank@example.test\0" PW;
    b64(plain, sizeof plain - 1, enc);
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    cl_expect(&c, "AUTH", "+OK");
    size_t n = cl_multi(&c, buf, sizeof buf, false);
    buf[n] = 0;
    EXPECT(strstr(buf, "PLAIN\n") && strstr(buf, "SCRAM-SHA-256\n"), "AUTH list: [%s]", buf);
    cl_expect(&c, "AUTH CRAM-MD5", "-ERR Unrecognized authentication mechanism");
    /* Cancelled exchange. */
    cl_expect(&c, "AUTH PLAIN", "+ ");
    cl_expect(&c, "*", "-ERR Authentication cancelled");
    /* Bad base64, then a wrong password: [AUTH]. */
    cl_expect(&c, "AUTH PLAIN !!!!", "-ERR Cannot decode");
    static const char bad[] = "\0frank@example.test\0nope";
    char enc_bad[100];
    b64(bad, sizeof bad - 1, enc_bad);
    snprintf(text, sizeof text, "AUTH PLAIN %s", enc_bad);
    cl_expect(&c, text, "-ERR [AUTH] Authentication failed");
    /* Response on the next line. */
    cl_expect(&c, "AUTH PLAIN", "+ ");
    cl_expect(&c, enc, "+OK Logged in, 3 messages");
    cl_expect(&c, "QUIT", "+OK");
    cl_close(&c);
    /* Initial response (RFC 5034 §4). */
    if (!cl_connect(&c))
        return;
    cl_greeting(&c);
    snprintf(text, sizeof text, "AUTH PLAIN %s", enc);
    cl_expect(&c, text, "+OK Logged in, 3 messages");
    cl_expect(&c, "QUIT", "+OK");
    cl_close(&c);
}

static void test_sasl(void **state)
{
    run_client(script_sasl);
}

/* A 12 MB RETR to a client that does not read: the server parks it
 * (back-pressure) and a second session is served meanwhile; then the
 * whole message arrives, byte-exact. */
static void script_big_retr(void)
{
    struct client a, b;
    char line[256];
    if (!cl_connect_buf(&a, 16 * 1024) || !cl_connect(&b))
        return;
    cl_login(&a, "erin@example.test", "+OK Logged in, 4 messages");
    cl_send(&a, "RETR 4\r\nNOOP\r\n");
    usleep(300 * 1000);
    cl_login(&b, "erin@example.test", "+OK Logged in, 4 messages");
    cl_expect(&b, "LIST 4", "+OK 4 12582912");
    cl_expect(&b, "QUIT", "+OK");
    cl_close(&b);

    char *got = malloc(BIG_SIZE + 4096);
    EXPECT(cl_line(&a, line, sizeof line) && strcmp(line, "+OK 12582912 octets") == 0, "[%s]",
           line);
    size_t n = cl_multi(&a, got, BIG_SIZE + 4096, true);
    /* It may end mid-line: the server then adds a line end. */
    EXPECT(n >= BIG_SIZE && memcmp(got, big, BIG_SIZE) == 0, "big RETR differs (n=%zu)", n);
    free(got);
    cl_expect(&a, "QUIT", "+OK");
    cl_close(&a);
}

static void test_big_retr_back_pressure(void **state)
{
    run_client(script_big_retr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_transaction),
        cmocka_unit_test(test_dele_quit_expunges),
        cmocka_unit_test(test_dropped_connection_keeps_mail),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_concurrent_snapshots),
        cmocka_unit_test(test_sasl),
        cmocka_unit_test(test_big_retr_back_pressure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
