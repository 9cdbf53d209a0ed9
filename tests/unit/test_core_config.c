/*
 * test_core_config.c — config defaults, every error line, parse_size, and
 * the small helpers (log_value, struct buf).
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

#include "core/core.h"

static char tmpdir[] = "/tmp/petrel-cfg-XXXXXX";
static char path[512];
static char cert[512];
static char key[512];

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(path, sizeof path, "%s/petrel.conf", tmpdir);
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    write_file(cert, "not checked by config_load\n");
    write_file(key, "not checked by config_load\n");
    return 0;
}

static int group_teardown(void **state)
{
    unlink(path);
    unlink(cert);
    unlink(key);
    rmdir(tmpdir);
    return 0;
}

/* Loads text as a config file; returns config_load's result. */
static int load(const char *text, struct config *cfg, char *err, size_t errlen)
{
    write_file(path, text);
    config_defaults(cfg);
    return config_load(path, cfg, err, errlen);
}

/* Expects load() to fail with exactly "PATH<suffix>". */
static void expect_error(const char *text, const char *suffix)
{
    struct config cfg;
    char err[1024];
    char want[1024];
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s%s", path, suffix);
    assert_string_equal(err, want);
}

static void test_defaults(void **state)
{
    struct config cfg;
    config_defaults(&cfg);
    assert_int_equal(cfg.max_connections, 2000);
    assert_int_equal(cfg.max_connections_per_ip, 250);
    assert_int_equal(cfg.max_line_length, 4096);
    assert_true(cfg.max_message_size == 52428800ull);
    assert_int_equal(cfg.max_recipients, 1000);
    assert_int_equal(cfg.max_errors, 10);
    assert_int_equal(cfg.smtp_timeout, 300);
    assert_int_equal(cfg.preauth_timeout, 60);
    assert_int_equal(cfg.idle_timeout, 1800);
    assert_int_equal(cfg.max_output_buffer, 1024 * 1024);
    assert_false(cfg.plaintext_on_loopback);
    assert_int_equal(cfg.auth_fail_delay_ms, 1000);
    assert_int_equal(cfg.auth_max_fails_ip, 20);
    assert_int_equal(cfg.auth_max_fails_user, 10);
    assert_int_equal(cfg.auth_fail_window, 900);
    assert_true(cfg.default_quota == 0);
    assert_int_equal(cfg.log_level, PLOG_INFO);
    assert_int_equal(cfg.threads, 4);
    assert_true(cfg.hostname[0] != '\0');
    assert_string_equal(cfg.data_dir, "/var/lib/petrel");
    assert_string_equal(cfg.tls_cert, "/etc/petrel/tls/cert.pem");
    assert_string_equal(cfg.tls_key, "/etc/petrel/tls/key.pem");
    for (int i = 0; i < LISTEN_KIND_COUNT; i++)
        assert_false(cfg.listen[i].enabled);
}

static void test_full_config(void **state)
{
    char text[2048];
    snprintf(text, sizeof text,
             "; comment\n"
             "[server]\n"
             "hostname = mail.example.test\n"
             "data_dir = /srv/petrel\n"
             "[tls]\n"
             "cert = %s\n"
             "key = %s\n"
             "[listen]\n"
             "smtp = 0.0.0.0:25\n"
             "imaps = [::1]:993\n"
             "pop3 = 127.0.0.1:0\n"
             "[limits]\n"
             "max_connections = 10\n"
             "max_connections_per_ip = 3\n"
             "max_line_length = 8K\n"
             "max_message_size = 20M\n"
             "max_output_buffer = 64K\n"
             "[auth]\n"
             "plaintext_on_loopback = no\n"
             "fail_window = 60\n"
             "[store]\n"
             "default_quota = 1G\n"
             "[log]\n"
             "level = debug\n"
             "[worker]\n"
             "threads = 8\n",
             cert, key);
    struct config cfg;
    char err[1024] = "";
    assert_int_equal(load(text, &cfg, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.path, path);
    assert_string_equal(cfg.hostname, "mail.example.test");
    assert_string_equal(cfg.data_dir, "/srv/petrel");
    assert_string_equal(cfg.tls_cert, cert);
    assert_true(cfg.listen[LISTEN_SMTP].enabled);
    assert_string_equal(cfg.listen[LISTEN_SMTP].host, "0.0.0.0");
    assert_int_equal(cfg.listen[LISTEN_SMTP].port, 25);
    assert_true(cfg.listen[LISTEN_IMAPS].enabled);
    assert_string_equal(cfg.listen[LISTEN_IMAPS].host, "::1");
    assert_int_equal(cfg.listen[LISTEN_IMAPS].port, 993);
    assert_int_equal(cfg.listen[LISTEN_POP3].port, 0);
    assert_false(cfg.listen[LISTEN_SUBMISSION].enabled);
    assert_int_equal(cfg.max_connections, 10);
    assert_int_equal(cfg.max_connections_per_ip, 3);
    assert_int_equal(cfg.max_line_length, 8192);
    assert_true(cfg.max_message_size == 20ull << 20);
    assert_int_equal(cfg.max_output_buffer, 65536);
    assert_false(cfg.plaintext_on_loopback);
    assert_int_equal(cfg.auth_fail_window, 60);
    assert_true(cfg.default_quota == 1ull << 30);
    assert_int_equal(cfg.log_level, PLOG_DEBUG);
    assert_int_equal(cfg.threads, 8);
    /* Untouched keys keep their defaults. */
    assert_int_equal(cfg.max_recipients, 1000);
}

static void test_errors(void **state)
{
    expect_error("[listen]\nsmtpp = 127.0.0.1:25\n", ":2: [listen] smtpp: unknown key");
    expect_error("[server]\nhostname = a\n\n[bogus]\nfoo = 1\n",
                 ":5: [bogus] foo: unknown section [bogus]");
    expect_error("[listen]\nsmtp = localhost:25\n",
                 ":2: [listen] smtp: bad address \"localhost:25\": "
                 "bad IPv4 address (numeric address expected)");
    expect_error("[listen]\nimap = 127.0.0.1:65536\n",
                 ":2: [listen] imap: bad address \"127.0.0.1:65536\": bad port (0-65535)");
    expect_error("[listen]\nimap = ::1:143\n",
                 ":2: [listen] imap: bad address \"::1:143\": "
                 "expected host:port (IPv6 in brackets)");
    expect_error("[listen]\nimap = [fe80::zz]:143\n",
                 ":2: [listen] imap: bad address \"[fe80::zz]:143\": bad IPv6 address");
    expect_error("[limits]\nmax_connections = 12x\n",
                 ":2: [limits] max_connections: bad number \"12x\"");
    expect_error("[limits]\nmax_connections = -1\n",
                 ":2: [limits] max_connections: bad number \"-1\"");
    expect_error("[limits]\nmax_connections = 0\n",
                 ":2: [limits] max_connections: out of range (1 to 1000000)");
    expect_error("[limits]\nmax_message_size = 10Q\n",
                 ":2: [limits] max_message_size: bad size \"10Q\" (bytes, or with K, M, G)");
    expect_error("[auth]\nplaintext_on_loopback = maybe\n",
                 ":2: [auth] plaintext_on_loopback: bad boolean \"maybe\" (true or false)");
    expect_error("[log]\nlevel = loud\n",
                 ":2: [log] level: bad level \"loud\" (error, warn, info, debug)");
    expect_error("[worker]\nthreads = 2\nthreads = 3\n",
                 ":3: [worker] threads: duplicate key (first set on line 2)");
    expect_error("[server\nhostname = x\n", ":1: syntax error (expected [section] or key = value)");
    expect_error("[server]\nhostname x\n", ":2: syntax error (expected [section] or key = value)");
    /* The first error wins, even when a later line is also wrong. */
    expect_error("[limits]\nmax_errors = x\nmax_errorz = 1\n",
                 ":2: [limits] max_errors: bad number \"x\"");
}

static void test_missing_cert(void **state)
{
    /* Named on line 3. */
    expect_error("[tls]\nkey = /nonexistent/key.pem\ncert = /nonexistent/cert.pem\n"
                 "[listen]\nsmtp = 127.0.0.1:25\n",
                 ":3: [tls] cert: cannot read /nonexistent/cert.pem: No such file or directory");
    /* The key, with a readable cert. */
    char text[1024];
    snprintf(text, sizeof text, "[tls]\ncert = %s\nkey = %s/nokey.pem\n[listen]\nimap = [::1]:0\n",
             cert, tmpdir);
    char suffix[1024];
    snprintf(suffix, sizeof suffix,
             ":3: [tls] key: cannot read %s/nokey.pem: No such file or directory", tmpdir);
    expect_error(text, suffix);
    /* From the defaults: no line number. */
    if (access("/etc/petrel/tls/cert.pem", R_OK) != 0)
        expect_error("[listen]\nsmtp = 127.0.0.1:25\n",
                     ": [tls] cert: cannot read /etc/petrel/tls/cert.pem: "
                     "No such file or directory");
    /* Without a listener the certificate is not needed. */
    struct config cfg;
    char err[512];
    assert_int_equal(load("[tls]\ncert = /nonexistent/cert.pem\n", &cfg, err, sizeof err), 0);
}

static void test_open_fails(void **state)
{
    struct config cfg;
    char err[512];
    config_defaults(&cfg);
    assert_int_equal(config_load("/nonexistent/petrel.conf", &cfg, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/petrel.conf: cannot open: No such file or directory");
}

static void test_parse_size(void **state)
{
    uint64_t v = 1;
    assert_int_equal(parse_size("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(parse_size("1024", &v), 0);
    assert_true(v == 1024);
    assert_int_equal(parse_size("50M", &v), 0);
    assert_true(v == 52428800ull);
    assert_int_equal(parse_size("50m", &v), 0);
    assert_true(v == 52428800ull);
    assert_int_equal(parse_size("1G", &v), 0);
    assert_true(v == 1073741824ull);
    assert_int_equal(parse_size("3k", &v), 0);
    assert_true(v == 3072);
    assert_int_equal(parse_size("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(parse_size("17179869183G", &v), 0);
    assert_true(v == 17179869183ull << 30);

    v = 7;
    assert_int_equal(parse_size("18446744073709551616", &v), -1);
    assert_int_equal(parse_size("17179869184G", &v), -1);
    assert_int_equal(parse_size("", &v), -1);
    assert_int_equal(parse_size("K", &v), -1);
    assert_int_equal(parse_size("12X", &v), -1);
    assert_int_equal(parse_size("1.5M", &v), -1);
    assert_int_equal(parse_size("-1", &v), -1);
    assert_int_equal(parse_size(" 1", &v), -1);
    assert_int_equal(parse_size("1MB", &v), -1);
    assert_true(v == 7); /* untouched on error */
}

static void test_log_value(void **state)
{
    char buf[64];
    assert_string_equal(log_value("plain", buf, sizeof buf), "plain");
    assert_string_equal(log_value("two words", buf, sizeof buf), "\"two words\"");
    assert_string_equal(log_value("a\"b\\c", buf, sizeof buf), "a\\\"b\\\\c");
    assert_string_equal(log_value("x\r\ny\x01", buf, sizeof buf), "x\\r\\ny\\x01");
    assert_string_equal(log_value("", buf, sizeof buf), "\"\"");
    char small[8];
    assert_string_equal(log_value("abcdefghij", small, sizeof small), "abcdefg");
    assert_string_equal(log_value("ab cdefghij", small, sizeof small), "\"ab cd\"");
    /* An escape is never cut in half. */
    assert_string_equal(log_value("abcdef\n", small, sizeof small), "abcdef");
    enum log_level lv;
    assert_int_equal(log_level_parse("warn", &lv), 0);
    assert_int_equal(lv, PLOG_WARN);
    assert_int_equal(log_level_parse("verbose", &lv), -1);
    log_set_level(PLOG_WARN);
    assert_false(log_enabled(PLOG_INFO));
    assert_true(log_enabled(PLOG_ERROR));
    log_set_level(PLOG_INFO);
    assert_string_equal(listener_kind_name(LISTEN_SUBMISSIONS), "submissions");
    assert_string_equal(listener_kind_name(LISTEN_POP3S), "pop3s");
}

static void test_buf(void **state)
{
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "hello", 5, 8), 0);
    assert_int_equal(buf_append(&b, "abc", 3, 8), 0);
    assert_int_equal(b.len, 8);
    assert_true(b.cap <= 8); /* never grown beyond the limit */
    assert_int_equal(buf_append(&b, "x", 1, 8), -1);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "helloabc", 8);
    buf_consume(&b, 5);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    assert_int_equal(buf_printf(&b, 100, "%d-%s", 42, "z"), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "abc42-z", 7);
    assert_int_equal(buf_printf(&b, 8, "%s", "toolong"), -1);
    assert_int_equal(b.len, 7);
    /* A long formatted string takes the slow path. */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_printf(&b, 2000, "%s", big), 0);
    assert_int_equal(b.len, 1006);
    assert_true(b.cap <= 2000);
    assert_int_equal(buf_printf(&b, 1500, "%s", big), -1);
    buf_consume(&b, 5000);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_cert),
        cmocka_unit_test(test_open_fails),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_log_value),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
