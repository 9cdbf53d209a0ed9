/* The DATA decoder: dot-unstuffing, the end of data, bare CR/LF (smuggling). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp.h"

struct out {
    char data[4096];
    size_t len;
};

static void collect(void *arg, const char *p, size_t n)
{
    struct out *o = arg;
    assert_true(o->len + n <= sizeof o->data);
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

/* Decodes in by chunks of step bytes; returns consumed, or -1 if no end. */
static long decode(const char *in, size_t step, struct out *o, bool *bare)
{
    struct smtp_data_decoder d = { 0 };
    size_t n = strlen(in), off = 0;
    memset(o, 0, sizeof *o);
    while (off < n) {
        size_t len = n - off < step ? n - off : step;
        bool done;
        size_t used = smtp_data_decode(&d, in + off, len, collect, o, &done);
        off += used;
        if (done) {
            *bare = d.bare_eol;
            return (long)off;
        }
        assert_int_equal(used, len);
    }
    *bare = d.bare_eol;
    return -1;
}

/* The same result whatever the split of the input. */
static void check(const char *in, long consumed, const char *want, bool bare)
{
    for (size_t step = 1; step <= strlen(in) + 1; step++) {
        struct out o;
        bool b;
        long c = decode(in, step, &o, &b);
        assert_int_equal(c, consumed);
        if (want) {
            assert_int_equal(o.len, strlen(want));
            assert_memory_equal(o.data, want, o.len);
        }
        assert_int_equal(b, bare);
    }
}

static void test_plain(void **state)
{
    (void)state;
    check("Subject: x\r\n\r\nbody\r\n.\r\n", 23, "Subject: x\r\n\r\nbody\r\n", false);
    check(".\r\n", 3, "", false);                       /* empty message */
    check("a\r\n.\r\nMAIL FROM:<x>\r\n", 6, "a\r\n", false); /* pipelined rest left */
}

static void test_unstuffing(void **state)
{
    (void)state;
    check("..a\r\n...\r\n.b\r\n.\r\n", 17, ".a\r\n..\r\nb\r\n", false);
    check("x\r\n..\r\n.\r\n", 10, "x\r\n.\r\n", false);
}

static void test_only_crlf_dot_crlf_ends(void **state)
{
    (void)state;
    /* Each of these would end the data on a lax server: here they do not. */
    check("a\n.\r\nb\r\n.\r\n", 11, "a\n.\r\nb\r\n", true);
    check("a\r\n.\nb\r\n.\r\n", 11, "a\r\n\nb\r\n", true);
    check("a\n.\nb\r\n.\r\n", 10, "a\n.\nb\r\n", true);
    check("a\r.\r\nb\r\n.\r\n", 11, "a\r.\r\nb\r\n", true);
    check("a\r\n.\r.\r\n.\r\n", 11, "a\r\n\r.\r\n", true);
    check("no end\r\n", -1, NULL, false);
    check("no end\n.\n", -1, NULL, true);
}

static void test_bare_cr_lf(void **state)
{
    (void)state;
    check("a\rb\r\n.\r\n", 8, "a\rb\r\n", true);
    check("a\nb\r\n.\r\n", 8, "a\nb\r\n", true);
    check("a\r\r\n.\r\n", 7, "a\r\r\n", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_unstuffing),
        cmocka_unit_test(test_only_crlf_dot_crlf_ends),
        cmocka_unit_test(test_bare_cr_lf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
