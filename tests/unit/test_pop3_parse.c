/*
 * The pure halves of pop3/: the command-line parser (RFC 1939 §3, RFC 2449
 * §4, RFC 5034 §4), numbers, UIDL values, and the RETR/TOP encoder
 * (RFC 1939 §3 byte-stuffing, §7 TOP) including split invariance and the
 * smuggling-shaped inputs (bare LF before a dot).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3.h"

/* ------------------------------------------------------------ parser */

static enum pop3_parse parse(const char *line, struct pop3_cmd *c)
{
    return pop3_parse_line(line, strlen(line), c);
}

static void expect_arg(const struct pop3_cmd *c, unsigned i, const char *want)
{
    assert_true(i < c->argc);
    assert_int_equal(c->argv[i].len, strlen(want));
    assert_memory_equal(c->argv[i].p, want, strlen(want));
}

static void test_verbs(void **state)
{
    static const struct {
        const char *line;
        enum pop3_verb verb;
    } cases[] = {
        { "USER a", POP3_USER }, { "pass x", POP3_PASS }, { "Apop a b", POP3_APOP },
        { "AUTH", POP3_AUTH },   { "stls", POP3_STLS },   { "CAPA", POP3_CAPA },
        { "STAT", POP3_STAT },   { "LIST", POP3_LIST },   { "RETR 1", POP3_RETR },
        { "DELE 1", POP3_DELE }, { "NOOP", POP3_NOOP },   { "RSET", POP3_RSET },
        { "QUIT", POP3_QUIT },   { "top 1 2", POP3_TOP }, { "UidL", POP3_UIDL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pop3_cmd c;
        assert_int_equal(parse(cases[i].line, &c), POP3_PARSE_OK);
        assert_int_equal(c.verb, cases[i].verb);
    }
}

static void test_unknown(void **state)
{
    static const char *const lines[] = {
        "", " ", " STAT", "STATS", "ST", "HELO x", "LIST\t1", "QUITQUIT",
        "EHLO mail", "XTND XMIT",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct pop3_cmd c;
        assert_int_equal(parse(lines[i], &c), POP3_PARSE_UNKNOWN);
        assert_int_equal(c.verb, POP3_UNKNOWN);
    }
    /* A NUL inside the keyword is not the shorter keyword. */
    struct pop3_cmd c;
    assert_int_equal(pop3_parse_line("STA\0T", 5, &c), POP3_PARSE_UNKNOWN);
}

static void test_arguments(void **state)
{
    struct pop3_cmd c;
    assert_int_equal(parse("STAT", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(parse("STAT   ", &c), POP3_PARSE_OK); /* trailing spaces */
    assert_int_equal(c.argc, 0);
    assert_int_equal(parse("TOP 1 10", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 2);
    expect_arg(&c, 0, "1");
    expect_arg(&c, 1, "10");
    assert_int_equal(parse("TOP  1   10 ", &c), POP3_PARSE_OK); /* liberal with spaces */
    expect_arg(&c, 1, "10");
    assert_int_equal(parse("USER alice@example.test", &c), POP3_PARSE_OK);
    expect_arg(&c, 0, "alice@example.test");
    assert_int_equal(parse("USER j\xc3\xb6rg@example.test", &c), POP3_PARSE_OK); /* UTF-8 */
    /* At most two arguments, no control bytes. */
    assert_int_equal(parse("TOP 1 2 3", &c), POP3_PARSE_SYNTAX);
    assert_int_equal(c.verb, POP3_TOP);
    assert_int_equal(parse("USER a\tb", &c), POP3_PARSE_SYNTAX);
    assert_int_equal(parse("USER a\x7f", &c), POP3_PARSE_SYNTAX);
    assert_int_equal(pop3_parse_line("USER a\0b", 8, &c), POP3_PARSE_SYNTAX);
}

static void test_limits(void **state)
{
    struct pop3_cmd c;
    char line[POP3_MAX_AUTH_LINE + 64];
    memset(line, 'a', sizeof line);
    memcpy(line, "USER ", 5);
    assert_int_equal(pop3_parse_line(line, 5 + POP3_MAX_ARG, &c), POP3_PARSE_OK);
    assert_int_equal(pop3_parse_line(line, 5 + POP3_MAX_ARG + 1, &c), POP3_PARSE_TOOLONG);
    /* RFC 5034 §4: the initial response may be longer; the mechanism not. */
    memcpy(line, "AUTH PLAIN ", 11);
    assert_int_equal(pop3_parse_line(line, 11 + POP3_MAX_AUTH_LINE, &c), POP3_PARSE_OK);
    assert_int_equal(c.argv[1].len, POP3_MAX_AUTH_LINE);
    assert_int_equal(pop3_parse_line(line, 11 + POP3_MAX_AUTH_LINE + 1, &c), POP3_PARSE_TOOLONG);
    memset(line, 'a', sizeof line);
    memcpy(line, "AUTH ", 5);
    assert_int_equal(pop3_parse_line(line, 5 + POP3_MAX_ARG + 1, &c), POP3_PARSE_TOOLONG);
    memcpy(line, "PASS ", 5);
    assert_int_equal(pop3_parse_line(line, 5 + POP3_MAX_PASS, &c), POP3_PARSE_OK);
    assert_int_equal(pop3_parse_line(line, 5 + POP3_MAX_PASS + 1, &c), POP3_PARSE_TOOLONG);
}

/* RFC 1939 §7: "PASS string"; the password is the rest of the line. */
static void test_pass(void **state)
{
    struct pop3_cmd c;
    assert_int_equal(parse("PASS my secret  pass ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_int_equal(c.rest.len, strlen("my secret  pass "));
    assert_memory_equal(c.rest.p, "my secret  pass ", c.rest.len);
    assert_int_equal(parse("PASS  lead", &c), POP3_PARSE_OK);
    assert_memory_equal(c.rest.p, " lead", 5);
    assert_int_equal(parse("PASS", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(parse("PASS ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(pop3_parse_line("PASS a\0b", 8, &c), POP3_PARSE_SYNTAX);
    assert_int_equal(parse("PASS a\rb", &c), POP3_PARSE_SYNTAX);
}

static void test_numbers(void **state)
{
    uint32_t v;
    assert_true(pop3_parse_number("1", 1, &v) && v == 1);
    assert_true(pop3_parse_number("0", 1, &v) && v == 0);
    assert_true(pop3_parse_number("007", 3, &v) && v == 7);
    assert_true(pop3_parse_number("4294967295", 10, &v) && v == UINT32_MAX);
    assert_false(pop3_parse_number("4294967296", 10, &v));
    assert_false(pop3_parse_number("00000000001", 11, &v)); /* 11 digits */
    assert_false(pop3_parse_number("", 0, &v));
    assert_false(pop3_parse_number("+1", 2, &v));
    assert_false(pop3_parse_number("-1", 2, &v));
    assert_false(pop3_parse_number("1a", 2, &v));
    assert_false(pop3_parse_number(" 1", 2, &v));
}

static void test_uidl(void **state)
{
    char a[POP3_UIDL_LEN + 1], b[POP3_UIDL_LEN + 1];
    pop3_uidl(0x5f5e100u, 1, a);
    assert_string_equal(a, "05f5e10000000001");
    pop3_uidl(UINT32_MAX, UINT32_MAX, a);
    assert_string_equal(a, "ffffffffffffffff");
    /* Unique per (UIDVALIDITY, UID); RFC 1939 §7: 0x21..0x7E, 1-70 chars. */
    pop3_uidl(1, 0x10, a);
    pop3_uidl(0x10, 1, b);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < POP3_UIDL_LEN; i++)
        assert_true(a[i] >= 0x21 && a[i] <= 0x7e);
}

/* ----------------------------------------------------------- encoder */

struct enc_out {
    char *data;
    size_t len;
};

/* Encodes in[0..n) in pieces of step bytes with an output window of cap
 * bytes; returns the whole response (NUL-terminated, caller frees). */
static struct enc_out encode(const char *in, size_t n, bool top, uint32_t lines, size_t step,
                             size_t cap)
{
    struct pop3_encoder e;
    pop3_encoder_init(&e, top, lines);
    struct enc_out o = { malloc(2 * n + 16), 0 };
    assert_non_null(o.data);
    char *win = malloc(cap);
    assert_non_null(win);
    size_t off = 0;
    while (off < n) {
        size_t take = n - off < step ? n - off : step;
        size_t used, w;
        used = pop3_encode(&e, in + off, take, win, cap, &w);
        assert_true(used > 0 || w > 0 || e.done);
        assert_true(w <= cap);
        memcpy(o.data + o.len, win, w);
        o.len += w;
        off += used;
    }
    o.len += pop3_encode_finish(&e, o.data + o.len);
    o.data[o.len] = '\0';
    free(win);
    return o;
}

static void expect_encoding(const char *in, bool top, uint32_t lines, const char *want)
{
    size_t n = strlen(in);
    static const size_t steps[] = { 1, 2, 3, 7, 64, 100000 };
    static const size_t caps[] = { 2, 3, 5, 4096 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        for (size_t j = 0; j < sizeof caps / sizeof caps[0]; j++) {
            struct enc_out o = encode(in, n, top, lines, steps[i], caps[j]);
            if (o.len != strlen(want) || memcmp(o.data, want, o.len) != 0)
                fail_msg("encode(%s, top=%d %u) step %zu cap %zu:\n got [%s]\nwant [%s]", in, top,
                         lines, steps[i], caps[j], o.data, want);
            free(o.data);
        }
    }
}

static void test_stuffing(void **state)
{
    expect_encoding("", false, 0, ".\r\n");
    expect_encoding("a\r\n", false, 0, "a\r\n.\r\n");
    expect_encoding(".\r\n", false, 0, "..\r\n.\r\n");
    expect_encoding("x\r\n.\r\n..y\r\n", false, 0, "x\r\n..\r\n...y\r\n.\r\n");
    expect_encoding(".leading\r\nmid.dot\r\n", false, 0, "..leading\r\nmid.dot\r\n.\r\n");
    /* No final line end: one is added before the terminator. */
    expect_encoding("tail", false, 0, "tail\r\n.\r\n");
    expect_encoding("a\r\n.", false, 0, "a\r\n..\r\n.\r\n");
    expect_encoding("ends in CR\r", false, 0, "ends in CR\r\n.\r\n");
}

/* Bare LF is a line end for some clients: it becomes CRLF, and a dot after
 * it is stuffed, so "\n.\r\n" never ends the response early. */
static void test_bare_lf_and_cr(void **state)
{
    expect_encoding("a\n.\r\nb\r\n", false, 0, "a\r\n..\r\nb\r\n.\r\n");
    expect_encoding("a\nb\n", false, 0, "a\r\nb\r\n.\r\n");
    /* A bare CR is not a line end: the dot after it is data. */
    expect_encoding("a\r.b\r\n", false, 0, "a\r.b\r\n.\r\n");
    expect_encoding("\r\r\n", false, 0, "\r\r\n.\r\n");
}

static const char msg[] = "Subject: x\r\n"
                          "From: a@b\r\n"
                          "\r\n"
                          "line 1\r\n"
                          ".line 2\r\n"
                          "line 3\r\n";

static void test_top(void **state)
{
    expect_encoding(msg, true, 0, "Subject: x\r\nFrom: a@b\r\n\r\n.\r\n");
    expect_encoding(msg, true, 1, "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n.\r\n");
    expect_encoding(msg, true, 2, "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n..line 2\r\n.\r\n");
    /* More lines than the body has: the whole message. */
    char whole[256];
    snprintf(whole, sizeof whole, "%s.\r\n", "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n"
                                             "..line 2\r\nline 3\r\n");
    expect_encoding(msg, true, 3, whole);
    expect_encoding(msg, true, 1000, whole);
    expect_encoding(msg, false, 0, whole);
    /* A body line without a line end counts; the end is added. */
    expect_encoding("H: 1\r\n\r\nonly", true, 5, "H: 1\r\n\r\nonly\r\n.\r\n");
    /* No empty line: all header, sent whole. */
    expect_encoding("H: 1\r\nH: 2\r\n", true, 0, "H: 1\r\nH: 2\r\n.\r\n");
    /* The header ends at the first empty line, even one with a bare LF;
     * a line with only spaces is not empty. */
    expect_encoding("H: 1\n\nb1\nb2\n", true, 1, "H: 1\r\n\r\nb1\r\n.\r\n");
    expect_encoding("H: 1\r\n \r\nH: 2\r\n\r\nb\r\n", true, 0, "H: 1\r\n \r\nH: 2\r\n\r\n.\r\n");
    /* Empty body lines count as lines. */
    expect_encoding("H: 1\r\n\r\n\r\n\r\nx\r\n", true, 2, "H: 1\r\n\r\n\r\n\r\n.\r\n");
    /* An empty message. */
    expect_encoding("", true, 3, ".\r\n");
}

/* TOP n's output is a prefix of RETR's for every n (then the terminator). */
static void test_top_is_prefix(void **state)
{
    struct enc_out full = encode(msg, strlen(msg), false, 0, 5, 64);
    for (uint32_t n = 0; n < 6; n++) {
        struct enc_out t = encode(msg, strlen(msg), true, n, 3, 7);
        assert_true(t.len <= full.len);
        assert_memory_equal(t.data, full.data, t.len - 3);
        assert_memory_equal(t.data + t.len - 3, ".\r\n", 3);
        free(t.data);
    }
    free(full.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs),         cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_arguments),     cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pass),          cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_uidl),          cmocka_unit_test(test_stuffing),
        cmocka_unit_test(test_bare_lf_and_cr), cmocka_unit_test(test_top),
        cmocka_unit_test(test_top_is_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
