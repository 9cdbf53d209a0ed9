/*
 * test_auth.c — credentials, and whole SASL exchanges through auth.h on a
 * real uv loop against a real store, with Cyrus SASL's client library on
 * the other side (PLAIN, LOGIN, SCRAM-SHA-256), plus throttling.
 *
 * Every test uses its own peer address and, where failures are counted,
 * its own account, so the throttle tables never leak between tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "auth/auth.h"

#define PASSWORD "correct horse battery"

static char tmpdir[] = "/tmp/petrel-auth-XXXXXX";
static struct config cfg;
static struct store *db;
static uv_loop_t loop;

/* ------------------------------------------------------------ fixture */

static void add_user(const char *address, const char *password)
{
    char *h = NULL, *sc = NULL;
    assert_int_equal(auth_make_credentials(password, &h, &sc), 0);
    assert_int_equal(store_user_add(db, address, h, sc, 0), STORE_OK);
    free(h);
    free(sc);
}

static int group_setup(void **state)
{
    char err[256];
    if (!mkdtemp(tmpdir))
        return -1;
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof cfg.hostname, "mail.example.test");
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", tmpdir);
    cfg.plaintext_on_loopback = true;
    cfg.auth_fail_delay_ms = 20;
    cfg.auth_max_fails_ip = 5;
    cfg.auth_max_fails_user = 3;
    cfg.auth_fail_window = 60;
    log_set_level(PLOG_WARN);
    if (store_open(tmpdir, &db, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (uv_loop_init(&loop) != 0)
        return -1;
    if (auth_init(&cfg, db, &loop, err, sizeof err) != 0) {
        fprintf(stderr, "auth_init: %s\n", err);
        return -1;
    }
    if (sasl_client_init(NULL) != SASL_OK)
        return -1;
    if (store_domain_add(db, "example.test") != STORE_OK)
        return -1;
    add_user("alice@example.test", PASSWORD);
    add_user("bob@example.test", PASSWORD);
    add_user("carol@example.test", PASSWORD);
    add_user("erin@example.test", PASSWORD); /* test_log_lines only */
    return 0;
}

static int group_teardown(void **state)
{
    sasl_client_done();
    auth_shutdown();
    uv_run(&loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(&loop);
    store_close(&db);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------ client driver */

struct client {
    const char *authname;
    const char *authzid;
    sasl_secret_t *secret;
};

static int cl_simple(void *context, int id, const char **result, unsigned *len)
{
    struct client *c = context;
    *result = id == SASL_CB_USER ? c->authzid : c->authname;
    if (len)
        *len = (unsigned)strlen(*result);
    return SASL_OK;
}

static int cl_pass(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
    struct client *c = context;
    *psecret = c->secret;
    return SASL_OK;
}

#define CB(f) ((int (*)(void))(void (*)(void))(f))

struct result {
    bool called;
    enum auth_status st;
    char *challenge;
};

static void on_result(void *arg, enum auth_status st, const char *challenge_b64)
{
    struct result *r = arg;
    r->called = true;
    r->st = st;
    free(r->challenge);
    r->challenge = challenge_b64 ? strdup(challenge_b64) : NULL;
    if (st == AUTH_CONTINUE)
        assert_non_null(challenge_b64);
    else
        assert_null(challenge_b64);
}

static void wait_result(struct result *r)
{
    while (!r->called)
        uv_run(&loop, UV_RUN_ONCE);
}

static char *b64(const char *data, unsigned len)
{
    unsigned cap = (len + 2) / 3 * 4 + 1, out = 0;
    char *s = malloc(cap + 1);
    assert_non_null(s);
    if (len == 0) {
        strcpy(s, "=");
        return s;
    }
    assert_int_equal(sasl_encode64(data, len, s, cap + 1, &out), SASL_OK);
    return s;
}

/*
 * Runs mech for authname/password (authzid "" for none) through session s.
 * initial: whether the client sends an initial response.
 */
static enum auth_status exchange(struct auth_session *s, const char *mech, const char *authname,
                                 const char *authzid, const char *password, bool initial)
{
    size_t plen = strlen(password);
    struct client c = { authname, authzid, malloc(sizeof(sasl_secret_t) + plen + 1) };
    assert_non_null(c.secret);
    c.secret->len = plen;
    memcpy(c.secret->data, password, plen + 1);
    sasl_callback_t cbs[] = {
        { SASL_CB_AUTHNAME, CB(cl_simple), &c },
        { SASL_CB_USER, CB(cl_simple), &c },
        { SASL_CB_PASS, CB(cl_pass), &c },
        { SASL_CB_LIST_END, NULL, NULL },
    };
    sasl_conn_t *cc = NULL;
    assert_int_equal(sasl_client_new("smtp", "mail.example.test", NULL, NULL, cbs, 0, &cc),
                     SASL_OK);
    sasl_security_properties_t sp = { .min_ssf = 0, .max_ssf = 0, .security_flags = 0 };
    assert_int_equal(sasl_setprop(cc, SASL_SEC_PROPS, &sp), SASL_OK);

    const char *out = NULL, *chosen = NULL;
    unsigned outlen = 0;
    int rc = sasl_client_start(cc, mech, NULL, initial ? &out : NULL,
                               initial ? &outlen : NULL, &chosen);
    assert_true(rc == SASL_OK || rc == SASL_CONTINUE);

    struct result r = { 0 };
    char *enc = initial && out ? b64(out, outlen) : NULL;
    auth_start(s, mech, enc, on_result, &r);
    assert_false(r.called); /* never from inside auth_start */
    free(enc);
    wait_result(&r);
    while (r.st == AUTH_CONTINUE) {
        char dec[4096];
        unsigned declen = 0;
        size_t n = strlen(r.challenge);
        if (n)
            assert_int_equal(sasl_decode64(r.challenge, (unsigned)n, dec, sizeof dec, &declen),
                             SASL_OK);
        out = NULL;
        outlen = 0;
        rc = sasl_client_step(cc, dec, declen, NULL, &out, &outlen);
        assert_true(rc == SASL_OK || rc == SASL_CONTINUE);
        enc = out && outlen ? b64(out, outlen) : strdup("");
        r.called = false;
        auth_step(s, enc, on_result, &r);
        assert_false(r.called);
        free(enc);
        wait_result(&r);
    }
    free(r.challenge);
    sasl_dispose(&cc);
    free(c.secret);
    return r.st;
}

static struct auth_session *tls_session(const char *ip)
{
    struct auth_session *s = auth_session_new_peer("smtp", ip, true, 0);
    assert_non_null(s);
    return s;
}

/* ----------------------------------------------------------- tests */

static void test_credentials(void **state)
{
    char *h = NULL, *sc = NULL;
    assert_int_equal(auth_make_credentials("s3cret pass", &h, &sc), 0);
    assert_non_null(h);
    assert_non_null(sc);
    assert_true(strncmp(h, "$y$", 3) == 0);
    assert_true(strncmp(sc, "SCRAM-SHA-256$10000:", 20) == 0);
    assert_null(strstr(h, "s3cret"));
    assert_null(strstr(sc, "s3cret"));
    assert_true(auth_check_password("s3cret pass", h));
    assert_false(auth_check_password("s3cret pasS", h));
    assert_false(auth_check_password("", h));
    assert_false(auth_check_password("s3cret pass", ""));
    assert_false(auth_check_password("s3cret pass", "garbage"));

    char *h2 = NULL, *sc2 = NULL;
    assert_int_equal(auth_make_credentials("s3cret pass", &h2, &sc2), 0);
    assert_string_not_equal(h, h2);   /* fresh salt each time */
    assert_string_not_equal(sc, sc2);
    free(h);
    free(sc);
    free(h2);
    free(sc2);

    assert_int_equal(auth_make_credentials("", &h, &sc), -1);
    assert_null(h);
    assert_null(sc);
}

static void test_mechanisms(void **state)
{
    struct auth_session *s = tls_session("192.0.2.10");
    const char *m = auth_mechanisms(s);
    assert_non_null(strstr(m, "PLAIN"));
    assert_non_null(strstr(m, "LOGIN"));
    assert_non_null(strstr(m, "SCRAM-SHA-256"));
    assert_null(strstr(m, "SCRAM-SHA-1 "));
    assert_null(strstr(m, "DIGEST-MD5"));
    assert_null(strstr(m, "ANONYMOUS"));
    auth_session_free(&s);
    assert_null(s);

    /* Plain text, remote: only SCRAM. */
    s = auth_session_new_peer("smtp", "192.0.2.11", false, 0);
    assert_non_null(s);
    assert_string_equal(auth_mechanisms(s), "SCRAM-SHA-256");
    auth_session_free(&s);

    /* Loopback with plaintext_on_loopback. */
    s = auth_session_new_peer("imap", "127.0.0.1", false, 0);
    assert_non_null(strstr(auth_mechanisms(s), "PLAIN"));
    auth_session_free(&s);
}

static void test_plain_ok(void **state)
{
    struct auth_session *s = tls_session("192.0.2.20");
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "", PASSWORD, true), AUTH_OK);
    assert_string_equal(auth_session_user(s), "alice@example.test");
    assert_true(auth_session_user_id(s) > 0);
    auth_session_free(&s);

    /* Domain case does not matter; the identity is the store's address. */
    s = tls_session("192.0.2.20");
    assert_int_equal(exchange(s, "plain", "alice@EXAMPLE.Test", "", PASSWORD, false), AUTH_OK);
    assert_string_equal(auth_session_user(s), "alice@example.test");
    auth_session_free(&s);
}

static void test_login_ok(void **state)
{
    struct auth_session *s = tls_session("192.0.2.21");
    assert_int_equal(exchange(s, "LOGIN", "alice@example.test", "", PASSWORD, false), AUTH_OK);
    assert_string_equal(auth_session_user(s), "alice@example.test");
    auth_session_free(&s);
}

static void test_scram_ok(void **state)
{
    struct auth_session *s = auth_session_new_peer("imap", "192.0.2.22", false, 0);
    assert_int_equal(exchange(s, "SCRAM-SHA-256", "alice@example.test", "", PASSWORD, true),
                     AUTH_OK);
    assert_string_equal(auth_session_user(s), "alice@example.test");
    auth_session_free(&s);
}

static void test_wrong_password(void **state)
{
    struct auth_session *s = tls_session("192.0.2.30");
    assert_int_equal(exchange(s, "PLAIN", "carol@example.test", "", "wrong", true), AUTH_FAIL);
    assert_null(auth_session_user(s));
    assert_int_equal(exchange(s, "LOGIN", "nobody@example.test", "", "wrong", false),
                     AUTH_FAIL);
    auth_session_free(&s);

    s = tls_session("192.0.2.31");
    assert_int_equal(exchange(s, "SCRAM-SHA-256", "carol@example.test", "", "wrong", true),
                     AUTH_FAIL);
    /* An unknown account fails the same way (decoy secret, no early NOUSER). */
    assert_int_equal(exchange(s, "SCRAM-SHA-256", "nobody@example.test", "", "x", true),
                     AUTH_FAIL);
    auth_session_free(&s);
}

static void test_authzid_refused(void **state)
{
    struct auth_session *s = tls_session("192.0.2.40");
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "bob@example.test", PASSWORD,
                              true),
                     AUTH_FAIL);
    assert_null(auth_session_user(s));
    /* Same identity spelled out as authzid is fine. */
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "alice@example.test", PASSWORD,
                              true),
                     AUTH_OK);
    auth_session_free(&s);
}

static void test_bad_mech_and_input(void **state)
{
    struct result r = { 0 };
    struct auth_session *s = auth_session_new_peer("smtp", "192.0.2.50", false, 0);
    auth_start(s, "PLAIN", NULL, on_result, &r); /* plain text without TLS */
    assert_false(r.called);
    wait_result(&r);
    assert_int_equal(r.st, AUTH_BADMECH);

    r.called = false;
    auth_start(s, "DIGEST-MD5", NULL, on_result, &r);
    wait_result(&r);
    assert_int_equal(r.st, AUTH_BADMECH);

    r.called = false;
    auth_start(s, "SCRAM-SHA-256", "!!not base64!!", on_result, &r);
    wait_result(&r);
    assert_int_equal(r.st, AUTH_BADINPUT);

    /* "=": an empty initial response; Cyrus answers with an empty challenge. */
    r.called = false;
    auth_start(s, "SCRAM-SHA-256", "=", on_result, &r);
    wait_result(&r);
    assert_int_equal(r.st, AUTH_CONTINUE);
    assert_string_equal(r.challenge, "");
    auth_session_free(&s);
    free(r.challenge);
}

static void test_throttle_account(void **state)
{
    /* bob: 3 failures (max_fails_user) from different addresses ... */
    const char *ips[] = { "192.0.2.60", "192.0.2.61", "192.0.2.62" };
    for (int i = 0; i < 3; i++) {
        struct auth_session *s = tls_session(ips[i]);
        assert_int_equal(exchange(s, "PLAIN", "bob@example.test", "", "nope", true), AUTH_FAIL);
        auth_session_free(&s);
    }
    /* ... (the local part's case does not make a new account) ... */
    struct auth_session *s0 = tls_session("192.0.2.64");
    assert_int_equal(exchange(s0, "PLAIN", "BOB@example.test", "", PASSWORD, true),
                     AUTH_THROTTLED);
    auth_session_free(&s0);
    /* ... then even the right password is refused, by any mechanism. */
    struct auth_session *s = tls_session("192.0.2.63");
    assert_int_equal(exchange(s, "PLAIN", "bob@example.test", "", PASSWORD, true),
                     AUTH_THROTTLED);
    assert_int_equal(exchange(s, "SCRAM-SHA-256", "bob@example.test", "", PASSWORD, true),
                     AUTH_THROTTLED);
    /* Other accounts from a clean address are unaffected. */
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "", PASSWORD, true), AUTH_OK);
    auth_session_free(&s);
}

static void test_throttle_address(void **state)
{
    /* 5 failures (max_fails_ip) from one address, different unknown users. */
    char user[64];
    for (int i = 0; i < 5; i++) {
        struct auth_session *s = tls_session("198.51.100.7");
        snprintf(user, sizeof user, "ghost%d@example.test", i);
        assert_int_equal(exchange(s, "PLAIN", user, "", "x", true), AUTH_FAIL);
        auth_session_free(&s);
    }
    struct auth_session *s = tls_session("198.51.100.7");
    struct result r = { 0 };
    uint64_t t0 = uv_hrtime();
    auth_start(s, "PLAIN", "AGFsaWNlQGV4YW1wbGUudGVzdAB4", on_result, &r);
    assert_false(r.called);
    wait_result(&r);
    assert_int_equal(r.st, AUTH_THROTTLED);
    /* Refused at once: no password check, no failure delay. */
    assert_true(uv_hrtime() - t0 < 15 * 1000000ULL);
    auth_session_free(&s);

    /* Loopback is not exempt. */
    for (int i = 0; i < 5; i++) {
        s = auth_session_new_peer("smtp", "127.0.0.9", false, 0);
        snprintf(user, sizeof user, "loop%d@example.test", i);
        assert_int_equal(exchange(s, "PLAIN", user, "", "x", true), AUTH_FAIL);
        auth_session_free(&s);
    }
    s = auth_session_new_peer("smtp", "127.0.0.9", false, 0);
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "", PASSWORD, true),
                     AUTH_THROTTLED);
    auth_session_free(&s);

    /* IPv6 peers count by /64. */
    for (int i = 0; i < 5; i++) {
        char ip[64];
        snprintf(ip, sizeof ip, "2001:db8:1:2::%x", i + 1);
        s = tls_session(ip);
        snprintf(user, sizeof user, "six%d@example.test", i);
        assert_int_equal(exchange(s, "PLAIN", user, "", "x", true), AUTH_FAIL);
        auth_session_free(&s);
    }
    s = tls_session("2001:db8:1:2::ffff");
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "", PASSWORD, true),
                     AUTH_THROTTLED);
    auth_session_free(&s);
}

static void test_failure_is_delayed(void **state)
{
    struct auth_session *s = tls_session("192.0.2.70");
    uint64_t t0 = uv_hrtime();
    assert_int_equal(exchange(s, "PLAIN", "carol@example.test", "", "bad", true), AUTH_FAIL);
    assert_true(uv_hrtime() - t0 >= cfg.auth_fail_delay_ms * 1000000ULL);
    auth_session_free(&s);
}

/* Reads the whole file at path into a malloc'd string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The log lines fail2ban relies on, and no secret in any of them. */
static void test_log_lines(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/log.txt", tmpdir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), STDERR_FILENO);
    log_set_level(PLOG_DEBUG);

    struct auth_session *s = tls_session("192.0.2.90");
    assert_int_equal(exchange(s, "PLAIN", "erin@example.test", "", "Sekr1t-wrong", true),
                     AUTH_FAIL);
    assert_int_equal(exchange(s, "PLAIN", "alice@example.test", "", PASSWORD, true), AUTH_OK);
    auth_session_free(&s);
    s = auth_session_new_peer("imap", "192.0.2.91", false, 7);
    assert_int_equal(exchange(s, "SCRAM-SHA-256", "alice@example.test", "", PASSWORD, true),
                     AUTH_OK);
    auth_session_free(&s);

    log_set_level(PLOG_WARN);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(f);
    char *log = slurp(path);
    assert_non_null(strstr(log, " warn - event=auth-failed service=smtp mech=PLAIN "
                                "user=erin@example.test peer=192.0.2.90 "
                                "reason=bad-credentials\n"));
    assert_non_null(strstr(log, "event=auth-ok service=smtp mech=PLAIN "
                                "user=alice@example.test peer=192.0.2.90\n"));
    assert_non_null(strstr(log, " info c7 event=auth-ok service=imap mech=SCRAM-SHA-256 "
                                "user=alice@example.test peer=192.0.2.91\n"));
    assert_null(strstr(log, "Sekr1t"));
    assert_null(strstr(log, PASSWORD));
    assert_null(strstr(log, "horse"));
    free(log);
    unlink(path);
}

static void never_called(void *arg, enum auth_status st, const char *ch)
{
    fail_msg("callback after free");
}

static void test_free_while_running(void **state)
{
    struct auth_session *s = tls_session("192.0.2.80");
    /* "\0alice@example.test\0correct horse battery" */
    char raw[64];
    size_t n = 0;
    raw[n++] = '\0';
    memcpy(raw + n, "alice@example.test", 18);
    n += 18;
    raw[n++] = '\0';
    memcpy(raw + n, PASSWORD, strlen(PASSWORD));
    n += strlen(PASSWORD);
    char *enc = b64(raw, (unsigned)n);
    auth_start(s, "PLAIN", enc, never_called, NULL);
    free(enc);
    auth_session_free(&s);
    assert_null(s);
    uv_run(&loop, UV_RUN_DEFAULT); /* the pool finishes; the session is freed */

    /* Freed during the failure delay: no callback either. */
    s = tls_session("192.0.2.81");
    struct result r = { 0 };
    raw[n - 1] = 'X'; /* wrong password */
    enc = b64(raw, (unsigned)n);
    auth_start(s, "PLAIN", enc, never_called, &r);
    free(enc);
    /* A long delay; run until the check is done and the delay timer armed. */
    unsigned saved = cfg.auth_fail_delay_ms;
    cfg.auth_fail_delay_ms = 10000;
    uint64_t until = uv_hrtime() + 1500 * 1000000ULL;
    while (uv_hrtime() < until) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    auth_session_free(&s);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_hrtime() - t0 < 1000 * 1000000ULL); /* the timer went with it */
    cfg.auth_fail_delay_ms = saved;
}


/*
 * Many exchanges at once: SASL steps of different sessions run concurrently
 * on the pool. Each callback drives its own client one step further and
 * calls auth_step from inside the callback.
 */
#define N_PARALLEL 12

struct par {
    struct auth_session *s;
    sasl_conn_t *cc;
    struct client c;
    bool done;
    enum auth_status st;
    int *remaining;
};

static void par_cb(void *arg, enum auth_status st, const char *challenge)
{
    struct par *p = arg;
    if (st != AUTH_CONTINUE) {
        p->done = true;
        p->st = st;
        (*p->remaining)--;
        return;
    }
    char dec[4096];
    unsigned declen = 0;
    if (*challenge)
        assert_int_equal(sasl_decode64(challenge, (unsigned)strlen(challenge), dec, sizeof dec,
                                       &declen), SASL_OK);
    const char *out = NULL;
    unsigned outlen = 0;
    int rc = sasl_client_step(p->cc, dec, declen, NULL, &out, &outlen);
    assert_true(rc == SASL_OK || rc == SASL_CONTINUE);
    char *enc = out && outlen ? b64(out, outlen) : strdup("");
    auth_step(p->s, enc, par_cb, p);
    free(enc);
}

static void test_parallel_sessions(void **state)
{
    static struct par ps[N_PARALLEL];
    static sasl_callback_t cbs[N_PARALLEL][4];
    int remaining = N_PARALLEL;
    for (int i = 0; i < N_PARALLEL; i++) {
        struct par *p = &ps[i];
        bool good = i % 3 != 2;
        const char *pw = good ? PASSWORD : "wrong password";
        const char *mech = i % 2 ? "SCRAM-SHA-256" : "PLAIN";
        char ip[32];
        snprintf(ip, sizeof ip, "203.0.113.%d", i + 1);
        p->s = tls_session(ip);
        p->remaining = &remaining;
        /* Bad ones: a fresh unknown account each, so none is throttled. */
        static char names[N_PARALLEL][64];
        snprintf(names[i], sizeof names[i], "par%d@example.test", i);
        p->c.authname = good ? "alice@example.test" : names[i];
        p->c.authzid = "";
        p->c.secret = malloc(sizeof(sasl_secret_t) + strlen(pw) + 1);
        assert_non_null(p->c.secret);
        p->c.secret->len = strlen(pw);
        memcpy(p->c.secret->data, pw, strlen(pw) + 1);
        cbs[i][0] = (sasl_callback_t){ SASL_CB_AUTHNAME, CB(cl_simple), &p->c };
        cbs[i][1] = (sasl_callback_t){ SASL_CB_USER, CB(cl_simple), &p->c };
        cbs[i][2] = (sasl_callback_t){ SASL_CB_PASS, CB(cl_pass), &p->c };
        cbs[i][3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
        assert_int_equal(sasl_client_new("smtp", "mail.example.test", NULL, NULL, cbs[i], 0,
                                         &p->cc), SASL_OK);
        sasl_security_properties_t sp = { .min_ssf = 0, .max_ssf = 0 };
        assert_int_equal(sasl_setprop(p->cc, SASL_SEC_PROPS, &sp), SASL_OK);
        const char *out = NULL, *chosen = NULL;
        unsigned outlen = 0;
        int rc = sasl_client_start(p->cc, mech, NULL, &out, &outlen, &chosen);
        assert_true(rc == SASL_OK || rc == SASL_CONTINUE);
        char *enc = b64(out ? out : "", out ? outlen : 0);
        auth_start(p->s, mech, enc, par_cb, p);
        free(enc);
    }
    while (remaining > 0)
        uv_run(&loop, UV_RUN_ONCE);
    for (int j = 0; j < N_PARALLEL; j++) {
        bool ok = j % 3 != 2;
        assert_int_equal(ps[j].st, ok ? AUTH_OK : AUTH_FAIL);
        if (ok)
            assert_string_equal(auth_session_user(ps[j].s), "alice@example.test");
        auth_session_free(&ps[j].s);
        sasl_dispose(&ps[j].cc);
        free(ps[j].c.secret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_plain_ok),
        cmocka_unit_test(test_login_ok),
        cmocka_unit_test(test_scram_ok),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_authzid_refused),
        cmocka_unit_test(test_bad_mech_and_input),
        cmocka_unit_test(test_throttle_account),
        cmocka_unit_test(test_throttle_address),
        cmocka_unit_test(test_failure_is_delayed),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_free_while_running),
        cmocka_unit_test(test_parallel_sessions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
