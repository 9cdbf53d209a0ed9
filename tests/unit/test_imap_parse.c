/*
 * The IMAP command parser (imap/imap.h, parser half): the reader (tags,
 * atoms, quoted strings, lists, literals and their limits, RFC 3501 §9,
 * RFC 7888), sequence sets (RFC 3501 §9, §6.4.8, RFC 5182), modified UTF-7
 * (RFC 3501 §5.1.3), SEARCH (RFC 3501/9051 §6.4.4, RFC 4731, RFC 5032,
 * RFC 7162) and FETCH (RFC 3501/9051 §6.4.5, RFC 3516, RFC 7162).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "imap/imap.h"

/* ------------------------------------------------------------ helpers */

static enum imap_want feed(struct imap_parser *p, const char *line)
{
    return imap_parser_feed_line(p, line, strlen(line));
}

/* Feeds all of data as literal bytes; the literal must take every byte. */
static enum imap_want feed_lit(struct imap_parser *p, const char *data, size_t n)
{
    assert_int_equal(imap_parser_feed_literal(p, data, n), n);
    return imap_parser_want(p);
}

/* A one-line command that must be READY after a reset. */
static const struct imap_command *ready(struct imap_parser *p, const char *line)
{
    imap_parser_reset(p);
    enum imap_want w = feed(p, line);
    if (w != IMAP_WANT_READY)
        fail_msg("\"%s\": want %d, error \"%s\"", line, (int)w, imap_parser_error(p, NULL));
    return imap_parser_command(p);
}

/* A one-line command that must give want w with error class code. */
static void expect_want(struct imap_parser *p, const char *line, enum imap_want w,
                        enum imap_perr code)
{
    imap_parser_reset(p);
    enum imap_want got = feed(p, line);
    enum imap_perr got_code;
    const char *msg = imap_parser_error(p, &got_code);
    if (got != w || got_code != code)
        fail_msg("\"%s\": want %d/%d, got %d/%d (%s)", line, (int)w, (int)code, (int)got,
                 (int)got_code, msg);
}

static void expect_bad(struct imap_parser *p, const char *line)
{
    expect_want(p, line, IMAP_WANT_BAD, IMAP_PERR_SYNTAX);
}

static struct imap_arg *nth(struct imap_arg *a, size_t n)
{
    while (a && n--)
        a = a->next;
    assert_non_null(a);
    return a;
}

static void assert_arg(const struct imap_arg *a, enum imap_arg_type type, const char *str)
{
    assert_non_null(a);
    assert_int_equal(a->type, type);
    assert_int_equal(a->len, strlen(str));
    assert_memory_equal(a->str, str, a->len + 1);
}

static struct imap_parser *small_parser(unsigned flags)
{
    struct imap_limits l;
    imap_limits_default(&l);
    l.max_literal = 10;
    l.max_message = 100;
    l.max_command = 200;
    l.max_line = 80;
    l.max_depth = 3;
    l.max_tokens = 8;
    return imap_parser_new(&l, flags);
}

/* ------------------------------------------------------------ reader */

static void test_reader_commands(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    assert_int_equal(imap_parser_want(p), IMAP_WANT_LINE);

    const struct imap_command *c = ready(p, "a1 noop");
    assert_string_equal(c->tag, "a1");
    assert_string_equal(c->name, "NOOP");
    assert_int_equal(c->nargs, 0);
    assert_null(c->args);

    c = ready(p, "A002 select INBOX");
    assert_string_equal(c->name, "SELECT");
    assert_int_equal(c->nargs, 1);
    assert_arg(c->args, IMAP_ARG_ATOM, "INBOX");

    /* "UID" is a command name of its own; FETCH is its first argument. */
    c = ready(p, "t UID FETCH 1:* (FLAGS)");
    assert_string_equal(c->name, "UID");
    assert_int_equal(c->nargs, 3);
    assert_true(imap_arg_is(c->args, "fetch"));
    assert_arg(c->args->next, IMAP_ARG_ATOM, "1:*");

    /* Tags may hold any ASTRING-CHAR but "+", "]" included. */
    c = ready(p, "x.y]z-1 CAPABILITY");
    assert_string_equal(c->tag, "x.y]z-1");

    /* NIL, flags and LIST wildcards. */
    c = ready(p, "t STORE 1 +FLAGS (\\Seen $Junk) NIL % *");
    assert_int_equal(c->nargs, 6);
    assert_arg(nth(c->args, 1), IMAP_ARG_ATOM, "+FLAGS");
    assert_arg(nth(c->args, 2)->child, IMAP_ARG_ATOM, "\\Seen");
    assert_int_equal(nth(c->args, 3)->type, IMAP_ARG_NIL);
    assert_arg(nth(c->args, 4), IMAP_ARG_ATOM, "%");
    imap_parser_free(&p);
    assert_null(p);
}

static void test_reader_bad_tags(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    expect_bad(p, "");
    expect_bad(p, "a+b NOOP");      /* tag excludes "+" */
    expect_bad(p, "* NOOP");        /* "*" is no ASTRING-CHAR */
    expect_bad(p, "a(b NOOP");
    expect_bad(p, "a\"b NOOP");
    expect_bad(p, "{3} NOOP");
    expect_bad(p, " a NOOP");
    expect_bad(p, "a1");            /* no command */
    expect_bad(p, "a1 ");
    expect_bad(p, "a1  NOOP");      /* one SP only */
    expect_bad(p, "a1 NO\x01OP");
    expect_bad(p, "a\x80 NOOP");
    /* The tag of a bad command is kept when it was valid. */
    expect_bad(p, "t7 NOOP (");
    assert_string_equal(imap_parser_command(p)->tag, "t7");
    expect_bad(p, "t+7 NOOP");
    assert_string_equal(imap_parser_command(p)->tag, "*");
    /* The reader goes on after a reset. */
    assert_string_equal(ready(p, "t8 NOOP")->tag, "t8");
    imap_parser_free(&p);
}

static void test_reader_quoted(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_command *c = ready(p, "t LOGIN \"joe \\\"x\\\" \\\\ y\" \"\"");
    assert_arg(c->args, IMAP_ARG_QUOTED, "joe \"x\" \\ y");
    assert_arg(c->args->next, IMAP_ARG_QUOTED, "");
    const char *s;
    size_t n;
    assert_true(imap_arg_string(c->args, &s, &n));
    assert_true(imap_arg_astring(c->args, &s, &n));

    expect_bad(p, "t LOGIN \"a\\b\"");       /* only \\ and \" escape */
    expect_bad(p, "t LOGIN \"abc");
    expect_bad(p, "t LOGIN \"a\\");
    expect_bad(p, "t LOGIN \"a\"b");          /* no SP after the string */
    expect_bad(p, "t LOGIN \"a\rb\"");
    expect_bad(p, "t LOGIN \"caf\xc3\xa9\"");  /* 8-bit needs UTF8=ACCEPT */

    /* RFC 6855 §3: UTF-8 in quoted strings once UTF8=ACCEPT is enabled. */
    imap_parser_set_flags(p, IMAP_PARSE_UTF8);
    c = ready(p, "t SELECT \"caf\xc3\xa9\"");
    assert_arg(c->args, IMAP_ARG_QUOTED, "caf\xc3\xa9");
    expect_bad(p, "t SELECT \"caf\xc3\"");
    expect_bad(p, "t SELECT \"\xed\xa0\x80\"");  /* a surrogate */
    expect_bad(p, "t SELECT \"\xc0\xaf\"");      /* overlong */
    imap_parser_free(&p);
}

static void test_reader_lists(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_command *c = ready(p, "t X (a (b \"c\") () ((d)))");
    assert_int_equal(c->nargs, 1);
    struct imap_arg *l = c->args;
    assert_int_equal(l->type, IMAP_ARG_LIST);
    assert_int_equal(l->count, 4);
    assert_arg(l->child, IMAP_ARG_ATOM, "a");
    struct imap_arg *b = nth(l->child, 1);
    assert_int_equal(b->count, 2);
    assert_arg(b->child->next, IMAP_ARG_QUOTED, "c");
    assert_int_equal(nth(l->child, 2)->count, 0);
    assert_null(nth(l->child, 2)->child);
    assert_arg(nth(l->child, 3)->child->child, IMAP_ARG_ATOM, "d");

    c = ready(p, "t X (a) b");
    assert_int_equal(c->nargs, 2);

    expect_bad(p, "t X (a");
    expect_bad(p, "t X a)");
    expect_bad(p, "t X ( a)");
    expect_bad(p, "t X (a )");
    expect_bad(p, "t X (a)(b)");
    expect_bad(p, "t X a ");
    expect_bad(p, "t X  a");
    expect_bad(p, "t X (");
    expect_bad(p, "t X )");
    imap_parser_free(&p);
}

static void test_reader_limits(void **state)
{
    (void)state;
    struct imap_parser *p = small_parser(0);
    /* Depth 3 passes, 4 is BAD [TOOBIG]. */
    ready(p, "t X (((a)))");
    expect_want(p, "t X ((((a))))", IMAP_WANT_BAD, IMAP_PERR_TOOBIG);
    /* 8 tokens, lists included. */
    ready(p, "t X 1 2 3 4 5 6 7 8");
    expect_want(p, "t X 1 2 3 4 5 6 7 8 9", IMAP_WANT_BAD, IMAP_PERR_TOOBIG);
    expect_want(p, "t X (1 2 3 4 5 6 7 8)", IMAP_WANT_BAD, IMAP_PERR_TOOBIG);
    /* A line past max_line cannot be resynchronised. */
    char line[128];
    memset(line, 'a', sizeof line - 1);
    line[sizeof line - 1] = 0;
    memcpy(line, "t X ", 4);
    expect_want(p, line, IMAP_WANT_FATAL, IMAP_PERR_TOOBIG);
    imap_parser_free(&p);

    struct imap_limits l;
    imap_limits_default(&l);
    assert_int_equal(l.max_line, 8192);
    assert_int_equal(l.max_literal, 64 * 1024);
    assert_int_equal(l.max_depth, 16);
    p = imap_parser_new(&l, 0);
    char deep[64] = "t X ";
    for (int i = 0; i < 16; i++)
        strcat(deep, "(");
    strcat(deep, "a");
    for (int i = 0; i < 16; i++)
        strcat(deep, ")");
    ready(p, deep);
    deep[4] = 0;
    for (int i = 0; i < 17; i++)
        strcat(deep, "(");
    expect_want(p, deep, IMAP_WANT_BAD, IMAP_PERR_TOOBIG);
    imap_parser_free(&p);
}

static void test_literal_sync(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    assert_int_equal(feed(p, "a LOGIN {3}"), IMAP_WANT_CONTINUE);
    const struct imap_literal *lit = imap_parser_literal(p);
    assert_int_equal(lit->size, 3);
    assert_int_equal(lit->remaining, 3);
    assert_true(lit->sync);
    assert_false(lit->binary);
    assert_string_equal(imap_parser_command(p)->tag, "a");
    assert_int_equal(feed_lit(p, "bob", 3), IMAP_WANT_LINE);
    assert_int_equal(feed(p, " {4}"), IMAP_WANT_CONTINUE);
    /* In pieces; extra bytes are not taken. */
    assert_int_equal(imap_parser_feed_literal(p, "p", 1), 1);
    assert_int_equal(imap_parser_want(p), IMAP_WANT_LITERAL);
    assert_int_equal(imap_parser_literal(p)->remaining, 3);
    assert_int_equal(imap_parser_feed_literal(p, "ass\r\n", 5), 3);
    assert_int_equal(imap_parser_want(p), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_READY);
    const struct imap_command *c = imap_parser_command(p);
    assert_int_equal(c->nargs, 2);
    assert_arg(c->args, IMAP_ARG_LITERAL, "bob");
    assert_arg(c->args->next, IMAP_ARG_LITERAL, "pass");
    const char *s;
    size_t n;
    assert_true(imap_arg_astring(c->args, &s, &n));
    assert_true(imap_arg_nstring(c->args, &s, &n));

    /* A literal inside a list, then more arguments on the next line. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "t X (a {1}"), IMAP_WANT_CONTINUE);
    assert_int_equal(feed_lit(p, "b", 1), IMAP_WANT_LINE);
    assert_int_equal(feed(p, " c) d"), IMAP_WANT_READY);
    c = imap_parser_command(p);
    assert_int_equal(c->nargs, 2);
    assert_int_equal(c->args->count, 3);
    assert_arg(nth(c->args->child, 1), IMAP_ARG_LITERAL, "b");

    /* The line after a literal goes on with SP, ")" or ends. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "t X {1}"), IMAP_WANT_CONTINUE);
    assert_int_equal(feed_lit(p, "b", 1), IMAP_WANT_LINE);
    assert_int_equal(feed(p, "c"), IMAP_WANT_BAD);

    expect_bad(p, "t X {}");
    expect_bad(p, "t X {1a}");
    expect_bad(p, "t X {1} a");   /* the announcement ends the line */
    expect_bad(p, "t X {-1}");
    imap_parser_free(&p);
}

static void test_literal_nonsync(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    /* LITERAL+: no continuation, the bytes follow at once. */
    assert_int_equal(feed(p, "a LOGIN {3+}"), IMAP_WANT_LITERAL);
    assert_false(imap_parser_literal(p)->sync);
    assert_int_equal(feed_lit(p, "bob", 3), IMAP_WANT_LINE);
    assert_int_equal(feed(p, " {0+}"), IMAP_WANT_LINE);  /* empty literal */
    assert_int_equal(feed(p, ""), IMAP_WANT_READY);
    const struct imap_command *c = imap_parser_command(p);
    assert_arg(c->args, IMAP_ARG_LITERAL, "bob");
    assert_arg(c->args->next, IMAP_ARG_LITERAL, "");

    /* literal8 (RFC 3516) may hold NUL; a plain literal may not. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "t X ~{3+}"), IMAP_WANT_LITERAL);
    assert_true(imap_parser_literal(p)->binary);
    assert_int_equal(feed_lit(p, "a\0b", 3), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_READY);
    c = imap_parser_command(p);
    assert_true(c->args->binary);
    assert_int_equal(c->args->len, 3);
    assert_memory_equal(c->args->str, "a\0b", 3);

    imap_parser_reset(p);
    assert_int_equal(feed(p, "t X {3+}"), IMAP_WANT_LITERAL);
    assert_int_equal(feed_lit(p, "a\0b", 3), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_BAD);
    imap_parser_free(&p);
}

/* RFC 7888 §4: literals over the limit. */
static void test_literal_limits(void **state)
{
    (void)state;
    struct imap_parser *p = small_parser(0);
    enum imap_perr code;

    /* Synchronising: BAD [TOOBIG] at once, the client sends nothing. */
    assert_int_equal(feed(p, "a LOGIN {11}"), IMAP_WANT_BAD);
    imap_parser_error(p, &code);
    assert_int_equal(code, IMAP_PERR_TOOBIG);
    ready(p, "b NOOP");

    /* Non-synchronising: swallowed with the rest of the command, then BAD. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a LOGIN {11+}"), IMAP_WANT_LITERAL);
    assert_true(imap_parser_literal(p)->discard);
    assert_int_equal(feed_lit(p, "0123456789x", 11), IMAP_WANT_LINE);
    assert_int_equal(feed(p, " {2+}"), IMAP_WANT_LITERAL);
    assert_int_equal(feed_lit(p, "pw", 2), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_BAD);
    imap_parser_error(p, &code);
    assert_int_equal(code, IMAP_PERR_TOOBIG);
    ready(p, "b NOOP");

    /* Past max(max_literal, max_message) reading is not worth it: FATAL. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a LOGIN {101+}"), IMAP_WANT_FATAL);
    imap_parser_error(p, &code);
    assert_int_equal(code, IMAP_PERR_TOOBIG);
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a LOGIN {99999999999999999999999+}"), IMAP_WANT_FATAL);
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a LOGIN {99999999999999999999999}"), IMAP_WANT_BAD);

    /* A syntax error before a non-synchronising literal: swallowed too. */
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a LOGIN \"x {3+}"), IMAP_WANT_LITERAL);
    assert_int_equal(feed_lit(p, "abc", 3), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_BAD);
    imap_parser_error(p, &code);
    assert_int_equal(code, IMAP_PERR_SYNTAX);

    imap_parser_free(&p);

    /* max_command counts lines and kept literals of one command. */
    struct imap_limits l;
    imap_limits_default(&l);
    l.max_command = 200;
    p = imap_parser_new(&l, 0);
    assert_int_equal(feed(p, "a X {10+}"), IMAP_WANT_LITERAL);
    assert_int_equal(feed_lit(p, "0123456789", 10), IMAP_WANT_LINE);
    int i;
    for (i = 0; i < 20; i++) {
        assert_int_equal(feed(p, " {10+}"), IMAP_WANT_LITERAL);
        bool discard = imap_parser_literal(p)->discard;
        assert_int_equal(feed_lit(p, "0123456789", 10), IMAP_WANT_LINE);
        if (discard)
            break;
    }
    /* 21 + 9 * 18 = 183 bytes fit; the next line makes 191, its literal does not. */
    assert_int_equal(i, 9);
    assert_int_equal(feed(p, ""), IMAP_WANT_BAD);
    imap_parser_error(p, &code);
    assert_int_equal(code, IMAP_PERR_TOOBIG);
    imap_parser_free(&p);
}

static void test_literal_append_streamed(void **state)
{
    (void)state;
    struct imap_parser *p = small_parser(IMAP_PARSE_STREAM_MESSAGES);
    /* The mailbox literal is kept, the message streamed up to max_message. */
    assert_int_equal(feed(p, "a APPEND {5}"), IMAP_WANT_CONTINUE);
    assert_false(imap_parser_literal(p)->streamed);
    assert_int_equal(feed_lit(p, "INBOX", 5), IMAP_WANT_LINE);
    assert_int_equal(feed(p, " (\\Seen) {50}"), IMAP_WANT_CONTINUE);
    assert_true(imap_parser_literal(p)->streamed);
    char msg[50];
    memset(msg, 'm', sizeof msg);
    assert_int_equal(feed_lit(p, msg, sizeof msg), IMAP_WANT_LINE);
    assert_int_equal(feed(p, ""), IMAP_WANT_READY);
    const struct imap_command *c = imap_parser_command(p);
    assert_arg(c->args, IMAP_ARG_LITERAL, "INBOX");
    struct imap_arg *m = nth(c->args, 2);
    assert_true(m->streamed);
    assert_null(m->str);
    assert_int_equal(m->len, 50);
    const char *s;
    size_t n;
    assert_false(imap_arg_astring(m, &s, &n));

    imap_parser_reset(p);
    assert_int_equal(feed(p, "a APPEND INBOX {101}"), IMAP_WANT_BAD);
    /* Without streaming the message counts as a kept literal. */
    imap_parser_set_flags(p, 0);
    imap_parser_reset(p);
    assert_int_equal(feed(p, "a APPEND INBOX {50}"), IMAP_WANT_CONTINUE);
    assert_false(imap_parser_literal(p)->streamed);
    imap_parser_free(&p);
}

/* ------------------------------------------------------------ sequence sets */

static int seqset(struct imap_arena *a, const char *s, struct imap_seqset *set)
{
    return imap_seqset_parse(a, s, strlen(s), IMAP_SEQSET_ALLOW_SAVED, set);
}

/* The ranges as "lo:hi,lo:hi" with '*' for IMAP_SEQ_STAR. */
static const char *ranges(const struct imap_seqset *set)
{
    static char buf[256];
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < set->count; i++) {
        char lo[16], hi[16];
        snprintf(lo, sizeof lo, "%u", (unsigned)set->ranges[i].lo);
        snprintf(hi, sizeof hi, "%u", (unsigned)set->ranges[i].hi);
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s:%s", i ? "," : "",
                              set->ranges[i].lo == IMAP_SEQ_STAR ? "*" : lo,
                              set->ranges[i].hi == IMAP_SEQ_STAR ? "*" : hi);
    }
    return buf;
}

static void expect_set(struct imap_arena *a, const char *s, const char *want)
{
    struct imap_seqset set;
    int rc = seqset(a, s, &set);
    if (rc != 0)
        fail_msg("\"%s\": error %d", s, rc);
    assert_string_equal(ranges(&set), want);
}

static void test_seqset_parse(void **state)
{
    (void)state;
    struct imap_arena a;
    imap_arena_init(&a, 0);
    expect_set(&a, "1", "1:1");
    expect_set(&a, "1:5", "1:5");
    expect_set(&a, "5:2", "2:5");
    expect_set(&a, "7,1,3", "1:1,3:3,7:7");
    expect_set(&a, "1,2,3", "1:3");               /* adjacent ranges merge */
    expect_set(&a, "1:3,2:6,9", "1:6,9:9");
    expect_set(&a, "4294967295", "4294967295:4294967295");
    expect_set(&a, "4294967295,1:4294967294", "1:4294967295");
    /* With '*' the ranges stay as written, '*' always the high end. */
    expect_set(&a, "*", "*:*");
    expect_set(&a, "*:4", "4:*");
    expect_set(&a, "1,3:5,*", "1:1,3:5,*:*");

    struct imap_seqset set;
    assert_int_equal(seqset(&a, "1,3:5,*", &set), 0);
    assert_true(set.star);
    assert_int_equal(seqset(&a, "1:5", &set), 0);
    assert_false(set.star);
    /* RFC 5182: "$" alone is the saved result. */
    assert_int_equal(seqset(&a, "$", &set), 0);
    assert_true(set.saved);
    assert_int_equal(set.count, 0);
    assert_int_equal(imap_seqset_parse(&a, "$", 1, 0, &set), IMAP_PERR_SYNTAX);

    static const char *const invalid[] = {
        "", "0", "0:5", "1:0", "01", "1:", ":1", ",", "1,", ",1", "1,,2", "1:2:3",
        "4294967296", "99999999999999999999", "-1", "+1", "a", "1a", " 1", "1 ",
        "$,1", "1,$", "$:1", "**", "*:*:1", "1.5",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (seqset(&a, invalid[i], &set) != IMAP_PERR_SYNTAX)
            fail_msg("\"%s\" accepted", invalid[i]);
    }
    /* Only len bytes count. */
    assert_int_equal(imap_seqset_parse(&a, "12,x", 2, 0, &set), 0);
    assert_string_equal(ranges(&set), "12:12");

    /* An arena cap is an allocation failure, not a crash. */
    struct imap_arena tiny;
    imap_arena_init(&tiny, 8);
    assert_int_equal(seqset(&tiny, "1,3,5,7,9", &set), IMAP_PERR_NOMEM);
    imap_arena_free(&tiny);
    imap_arena_free(&a);
}

static void expect_resolved(struct imap_arena *a, const char *s, uint32_t max, const char *want)
{
    struct imap_seqset set, out;
    assert_int_equal(seqset(a, s, &set), 0);
    assert_int_equal(imap_seqset_resolve(a, &set, max, &out), 0);
    assert_false(out.star);
    if (strcmp(ranges(&out), want) != 0)
        fail_msg("\"%s\" max %u: %s, want %s", s, (unsigned)max, ranges(&out), want);
}

static void test_seqset_resolve(void **state)
{
    (void)state;
    struct imap_arena a;
    imap_arena_init(&a, 0);
    expect_resolved(&a, "559:*", 1000, "559:1000");
    /* RFC 3501 §6.4.8: "559:*" includes max even when max < 559. */
    expect_resolved(&a, "559:*", 100, "100:559");
    expect_resolved(&a, "*:559", 100, "100:559");
    expect_resolved(&a, "*", 7, "7:7");
    expect_resolved(&a, "1,3:5,*", 10, "1:1,3:5,10:10");
    expect_resolved(&a, "1,3:5,*", 4, "1:1,3:5");
    expect_resolved(&a, "*,1:*", 3, "1:3");
    expect_resolved(&a, "2:4", 1, "2:4");      /* no '*': unchanged */
    /* An empty mailbox: '*' names no message. */
    expect_resolved(&a, "*", 0, "");
    expect_resolved(&a, "5:*", 0, "1:5");
    expect_resolved(&a, "1:*", UINT32_MAX, "1:4294967295");

    /* In place. */
    struct imap_seqset set;
    assert_int_equal(seqset(&a, "*,2:3,1", &set), 0);
    struct imap_range *r = set.ranges;
    assert_int_equal(imap_seqset_resolve(&a, &set, 4, &set), 0);
    assert_ptr_equal(set.ranges, r);
    assert_string_equal(ranges(&set), "1:4");
    imap_arena_free(&a);
}

static void test_seqset_members(void **state)
{
    (void)state;
    struct imap_arena a;
    imap_arena_init(&a, 0);
    struct imap_seqset set;
    assert_int_equal(seqset(&a, "9,2:4,7", &set), 0);
    uint32_t got[8], n;
    size_t k = 0;
    struct imap_seqset_iter it = { 0 };
    while (imap_seqset_next(&set, &it, &n))
        got[k++] = n;
    assert_int_equal(k, 5);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[2], 4);
    assert_int_equal(got[3], 7);
    assert_int_equal(got[4], 9);
    assert_false(imap_seqset_next(&set, &it, &n));
    for (uint32_t i = 0; i < 12; i++)
        assert_int_equal(imap_seqset_contains(&set, i),
                         (i >= 2 && i <= 4) || i == 7 || i == 9);

    /* The top of the range: no wrap-around. */
    assert_int_equal(seqset(&a, "4294967294:4294967295", &set), 0);
    memset(&it, 0, sizeof it);
    k = 0;
    while (imap_seqset_next(&set, &it, &n) && k < 8)
        k++;
    assert_int_equal(k, 2);
    assert_true(imap_seqset_contains(&set, UINT32_MAX));
    assert_false(imap_seqset_contains(&set, 1));

    /* The empty set (an empty mailbox resolved "*"). */
    struct imap_seqset empty = { 0 };
    memset(&it, 0, sizeof it);
    assert_false(imap_seqset_next(&empty, &it, &n));
    assert_false(imap_seqset_contains(&empty, 1));
    imap_arena_free(&a);
}

/* ------------------------------------------------------------ modified UTF-7 */

static void expect_decode(const char *in, const char *want)
{
    char out[256];
    ssize_t n = imap_utf7_decode(in, strlen(in), out, sizeof out);
    if (n < 0)
        fail_msg("decode \"%s\": %d", in, (int)n);
    assert_int_equal((size_t)n, strlen(want));
    assert_string_equal(out, want);
    /* The decoder takes only what the encoder writes: back to the input. */
    char back[256];
    n = imap_utf7_encode(out, (size_t)n, back, sizeof back);
    assert_true(n >= 0);
    assert_string_equal(back, in);
}

static void expect_decode_refused(const char *in, size_t len)
{
    char out[256];
    ssize_t n = imap_utf7_decode(in, len, out, sizeof out);
    if (n != -1)
        fail_msg("decode \"%.*s\" gave %d", (int)len, in, (int)n);
}

static void test_utf7_rfc_examples(void **state)
{
    (void)state;
    /* RFC 3501 §5.1.3. */
    expect_decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
                  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    expect_decode("&-", "&");
    expect_decode("Tom &- Jerry", "Tom & Jerry");
    expect_decode("", "");
    expect_decode("INBOX", "INBOX");
    expect_decode("Entw&APw-rfe", "Entw\xc3\xbc" "rfe");
    expect_decode("&AOk-&-", "\xc3\xa9&");        /* a shift, then "&" */
    expect_decode("&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9");
    expect_decode("&2D3eAA-", "\xf0\x9f\x98\x80");   /* U+1F600, a surrogate pair */
    expect_decode("a&AAE-b", "a\x01" "b");           /* controls are encoded */
    expect_decode("&AH8-", "\x7f");
}

static void expect_round_trip(const char *utf8)
{
    char enc[IMAP_UTF7_ENCODED_MAX(64)], dec[256];
    size_t len = strlen(utf8);
    assert_true(len <= 64);
    ssize_t n = imap_utf7_encode(utf8, len, enc, sizeof enc);
    if (n < 0)
        fail_msg("encode \"%s\": %d", utf8, (int)n);
    assert_int_equal((size_t)n, strlen(enc));
    for (ssize_t i = 0; i < n; i++)
        assert_true(enc[i] >= 0x20 && enc[i] <= 0x7e);
    ssize_t m = imap_utf7_decode(enc, (size_t)n, dec, IMAP_UTF7_DECODED_MAX((size_t)n));
    assert_int_equal((size_t)m, len);
    assert_string_equal(dec, utf8);
}

static void test_utf7_round_trips(void **state)
{
    (void)state;
    expect_round_trip("plain ASCII ~!@#$%^*()_+{}|:<>?");
    expect_round_trip("&&&");
    expect_round_trip("\xc3\xa9t\xc3\xa9");
    expect_round_trip("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e&x");
    expect_round_trip("\xf0\x9f\x98\x80\xf0\x9f\x98\x81 \xf4\x8f\xbf\xbf");
    expect_round_trip("\x01\x1f\x7f\xc2\x80");
    expect_round_trip("a\xc3\xa9&\xc3\xa9" "b");
    /* 1, 2, 3 and 4 units: every padding length. */
    expect_round_trip("\xc3\xa9");
    expect_round_trip("\xc3\xa9\xc3\xa9");
    expect_round_trip("\xc3\xa9\xc3\xa9\xc3\xa9");
    expect_round_trip("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");

    char out[64];
    assert_int_equal(imap_utf7_encode("\xc3\xa9", 2, out, sizeof out), 5);
    assert_string_equal(out, "&AOk-");
    assert_int_equal(imap_utf7_encode("a&b", 3, out, sizeof out), 4);
    assert_string_equal(out, "a&-b");
}

static void test_utf7_refused(void **state)
{
    (void)state;
    /* Raw 8-bit and control bytes. */
    expect_decode_refused("caf\xc3\xa9", 5);
    expect_decode_refused("a\tb", 3);
    expect_decode_refused("a\0b", 3);
    expect_decode_refused("\x7f", 1);
    /* '&' without '-'. */
    expect_decode_refused("&", 1);
    expect_decode_refused("a&", 2);
    expect_decode_refused("&AOk", 4);
    /* Not modified BASE64: '/' (it is ','), '=' padding, other bytes. */
    expect_decode_refused("&A/k-", 5);
    expect_decode_refused("&AOk=-", 6);
    expect_decode_refused("&AO k-", 6);
    /* Bits left over: non-zero padding, or a whole needless character. */
    expect_decode_refused("&AOl-", 5);
    expect_decode_refused("&AOkA-", 6);
    expect_decode_refused("&A-", 3);
    expect_decode_refused("&AA-", 4);
    /* Printable ASCII encoded: 'a' and '&'. */
    expect_decode_refused("&AGE-", 5);
    expect_decode_refused("&ACY-", 5);
    expect_decode_refused("&AOkAYQ-", 8);
    /* Lone surrogates: high, low, high then a non-low. */
    expect_decode_refused("&2D0-", 5);
    expect_decode_refused("&3gA-", 5);
    expect_decode_refused("&2D0A6Q-", 8);
    expect_decode_refused("&2D3YPQ-", 8);
    /* U+0000. */
    expect_decode_refused("&AAA-", 5);
    /* Two shifts in a row: the encoder writes one. */
    expect_decode_refused("&AOk-&AOk-", 10);

    /* Encoding refuses invalid UTF-8 and U+0000. */
    char out[64];
    static const char *const bad_utf8[] = {
        "\xc3", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf8\x88\x80\x80\x80", "\xff", "\xc3\x28",
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        assert_int_equal(imap_utf7_encode(bad_utf8[i], strlen(bad_utf8[i]), out, sizeof out), -1);
    assert_int_equal(imap_utf7_encode("a\0b", 3, out, sizeof out), -1);

    /* No room: -2, and still a NUL-terminated prefix. */
    assert_int_equal(imap_utf7_decode("abcdef", 6, out, 6), -2);
    assert_int_equal(strlen(out), 5);
    assert_int_equal(imap_utf7_decode("abcdef", 6, out, 7), 6);
    assert_int_equal(imap_utf7_encode("\xc3\xa9", 2, out, 5), -2);
    assert_int_equal(imap_utf7_encode("\xc3\xa9", 2, out, 6), 5);
    assert_int_equal(imap_utf7_decode("a", 1, out, 0), -2);
    /* Invalid beats no room. */
    assert_int_equal(imap_utf7_decode("abc&", 4, out, 2), -1);
}

static void test_mailbox_inbox(void **state)
{
    (void)state;
    assert_true(imap_mailbox_is_inbox("INBOX", 5));
    assert_true(imap_mailbox_is_inbox("inBox", 5));
    assert_false(imap_mailbox_is_inbox("INBOX/x", 7));
    assert_false(imap_mailbox_is_inbox("INBO", 4));
}

/* ------------------------------------------------------------ SEARCH */

static const char *const key_names[] = {
    [IMAP_SK_AND] = "AND",         [IMAP_SK_OR] = "OR",
    [IMAP_SK_NOT] = "NOT",         [IMAP_SK_ALL] = "ALL",
    [IMAP_SK_SEQSET] = "SET",      [IMAP_SK_UID] = "UID",
    [IMAP_SK_ANSWERED] = "ANSWERED", [IMAP_SK_DELETED] = "DELETED",
    [IMAP_SK_DRAFT] = "DRAFT",     [IMAP_SK_FLAGGED] = "FLAGGED",
    [IMAP_SK_SEEN] = "SEEN",       [IMAP_SK_UNANSWERED] = "UNANSWERED",
    [IMAP_SK_UNDELETED] = "UNDELETED", [IMAP_SK_UNDRAFT] = "UNDRAFT",
    [IMAP_SK_UNFLAGGED] = "UNFLAGGED", [IMAP_SK_UNSEEN] = "UNSEEN",
    [IMAP_SK_NEW] = "NEW",         [IMAP_SK_OLD] = "OLD",
    [IMAP_SK_RECENT] = "RECENT",   [IMAP_SK_KEYWORD] = "KEYWORD",
    [IMAP_SK_UNKEYWORD] = "UNKEYWORD", [IMAP_SK_BCC] = "BCC",
    [IMAP_SK_BODY] = "BODY",       [IMAP_SK_CC] = "CC",
    [IMAP_SK_FROM] = "FROM",       [IMAP_SK_SUBJECT] = "SUBJECT",
    [IMAP_SK_TEXT] = "TEXT",       [IMAP_SK_TO] = "TO",
    [IMAP_SK_HEADER] = "HEADER",   [IMAP_SK_BEFORE] = "BEFORE",
    [IMAP_SK_ON] = "ON",           [IMAP_SK_SINCE] = "SINCE",
    [IMAP_SK_SENTBEFORE] = "SENTBEFORE", [IMAP_SK_SENTON] = "SENTON",
    [IMAP_SK_SENTSINCE] = "SENTSINCE", [IMAP_SK_LARGER] = "LARGER",
    [IMAP_SK_SMALLER] = "SMALLER", [IMAP_SK_OLDER] = "OLDER",
    [IMAP_SK_YOUNGER] = "YOUNGER", [IMAP_SK_MODSEQ] = "MODSEQ",
};

/* The tree as "(AND (OR SEEN (NOT FLAGGED)) (UID 1:5))"-like text. */
static void render(const struct imap_search *k, char *buf, size_t size)
{
    size_t o = strlen(buf);
    bool group = k->child != NULL;
    snprintf(buf + o, size - o, "%s%s", group ? "(" : "", key_names[k->key]);
    for (const struct imap_search *c = k->child; c; c = c->next) {
        strncat(buf, " ", size - strlen(buf) - 1);
        render(c, buf, size);
    }
    if (group)
        strncat(buf, ")", size - strlen(buf) - 1);
}

/* "t SEARCH <args>" through the reader, then imap_parse_search(). */
static int search(struct imap_parser *p, const char *args, struct imap_search_cmd *out,
                  const char **err)
{
    char line[1024];
    snprintf(line, sizeof line, "t SEARCH %s", args);
    const struct imap_command *c = ready(p, line);
    return imap_parse_search(imap_parser_arena(p), c->args, out, err);
}

/* SEARCH args must parse to the tree want (rendered without the root). */
static const struct imap_search_cmd *expect_search(struct imap_parser *p, const char *args,
                                                   const char *want)
{
    static struct imap_search_cmd cmd;
    const char *err;
    int rc = search(p, args, &cmd, &err);
    if (rc != 0)
        fail_msg("SEARCH %s: %d (%s)", args, rc, err);
    char buf[512] = "";
    for (const struct imap_search *k = cmd.root->child; k; k = k->next) {
        if (buf[0])
            strcat(buf, " ");
        render(k, buf, sizeof buf);
    }
    if (strcmp(buf, want) != 0)
        fail_msg("SEARCH %s: %s, want %s", args, buf, want);
    return &cmd;
}

static void expect_search_error(struct imap_parser *p, const char *args, int code)
{
    struct imap_search_cmd cmd;
    const char *err = NULL;
    int rc = search(p, args, &cmd, &err);
    if (rc != code)
        fail_msg("SEARCH %s: %d, want %d", args, rc, code);
    assert_non_null(err);
}

static void test_search_every_key(void **state)
{
    (void)state;
    static const struct {
        const char *args;
        const char *tree;
    } cases[] = {
        { "ALL", "ALL" },
        { "ANSWERED", "ANSWERED" },
        { "BCC boss", "BCC" },
        { "BEFORE 1-Feb-2024", "BEFORE" },
        { "BODY \"x y\"", "BODY" },
        { "CC {3+}\r\nabc", "CC" },
        { "DELETED", "DELETED" },
        { "DRAFT", "DRAFT" },
        { "FLAGGED", "FLAGGED" },
        { "FROM joe@example.com", "FROM" },
        { "HEADER Message-ID <a@b>", "HEADER" },
        { "KEYWORD $Forwarded", "KEYWORD" },
        { "LARGER 1000", "LARGER" },
        { "MODSEQ 5", "MODSEQ" },
        { "NEW", "NEW" },
        { "NOT SEEN", "(NOT SEEN)" },
        { "OLD", "OLD" },
        { "OLDER 3600", "OLDER" },
        { "ON 29-Feb-2024", "ON" },
        { "OR SEEN DRAFT", "(OR SEEN DRAFT)" },
        { "RECENT", "RECENT" },
        { "SEEN", "SEEN" },
        { "SENTBEFORE 1-Jan-2000", "SENTBEFORE" },
        { "SENTON 31-Dec-1999", "SENTON" },
        { "SENTSINCE 01-Jan-1970", "SENTSINCE" },
        { "SINCE \"1-Mar-2024\"", "SINCE" },
        { "SMALLER 20", "SMALLER" },
        { "SUBJECT hello", "SUBJECT" },
        { "TEXT \"\"", "TEXT" },
        { "TO NIL", "TO" },
        { "UID 1:*", "UID" },
        { "UNANSWERED", "UNANSWERED" },
        { "UNDELETED", "UNDELETED" },
        { "UNDRAFT", "UNDRAFT" },
        { "UNFLAGGED", "UNFLAGGED" },
        { "UNKEYWORD Junk", "UNKEYWORD" },
        { "UNSEEN", "UNSEEN" },
        { "YOUNGER 60", "YOUNGER" },
        { "1:5,7", "SET" },
        { "*", "SET" },
        { "$", "SET" },
        { "(SEEN)", "(AND SEEN)" },
        { "all", "ALL" },
        { "uNsEeN", "UNSEEN" },
    };
    struct imap_parser *p = imap_parser_new(NULL, IMAP_PARSE_UTF8);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strchr(cases[i].args, '{')) {
            /* A literal value: fed as the reader would get it. */
            char line[64];
            const char *nl = strstr(cases[i].args, "\r\n");
            snprintf(line, sizeof line, "t SEARCH %.*s", (int)(nl - cases[i].args),
                     cases[i].args);
            imap_parser_reset(p);
            assert_int_equal(feed(p, line), IMAP_WANT_LITERAL);
            assert_int_equal(feed_lit(p, nl + 2, strlen(nl + 2)), IMAP_WANT_LINE);
            assert_int_equal(feed(p, ""), IMAP_WANT_READY);
            struct imap_search_cmd cmd;
            const char *err;
            assert_int_equal(imap_parse_search(imap_parser_arena(p),
                                               imap_parser_command(p)->args, &cmd, &err), 0);
            assert_int_equal(cmd.root->child->key, IMAP_SK_CC);
            assert_string_equal(cmd.root->child->str, "abc");
            continue;
        }
        expect_search(p, cases[i].args, cases[i].tree);
    }
    imap_parser_free(&p);
}

static void test_search_values(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_search *k;

    k = expect_search(p, "SUBJECT \"hello world\"", "SUBJECT")->root->child;
    assert_string_equal(k->str, "hello world");
    assert_int_equal(k->str_len, 11);

    k = expect_search(p, "HEADER \"List-Id\" \"\"", "HEADER")->root->child;
    assert_string_equal(k->field, "List-Id");
    assert_int_equal(k->field_len, 7);
    assert_int_equal(k->str_len, 0);

    k = expect_search(p, "SINCE 1-Feb-2024", "SINCE")->root->child;
    assert_int_equal(k->date, 1706745600);

    k = expect_search(p, "LARGER 9223372036854775807", "LARGER")->root->child;
    assert_true(k->number == INT64_MAX);

    k = expect_search(p, "YOUNGER 4294967295", "YOUNGER")->root->child;
    assert_true(k->number == UINT32_MAX);

    k = expect_search(p, "KEYWORD $MDNSent", "KEYWORD")->root->child;
    assert_string_equal(k->str, "$MDNSent");

    k = expect_search(p, "UID 5:3,9", "UID")->root->child;
    assert_int_equal(k->set.count, 2);
    assert_int_equal(k->set.ranges[0].lo, 3);
    k = expect_search(p, "UID $", "UID")->root->child;
    assert_true(k->set.saved);
    k = expect_search(p, "2:*", "SET")->root->child;
    assert_true(k->set.star);

    /* RFC 7162 §3.1.5: MODSEQ with and without an entry. */
    k = expect_search(p, "MODSEQ 0", "MODSEQ")->root->child;
    assert_true(k->number == 0);
    assert_null(k->field);
    assert_null(k->entry_type);
    k = expect_search(p, "MODSEQ \"/flags/\\\\draft\" all 620162338", "MODSEQ")->root->child;
    assert_string_equal(k->field, "/flags/\\draft");
    assert_string_equal(k->entry_type, "all");
    assert_true(k->number == 620162338);
    k = expect_search(p, "MODSEQ \"/flags/$MDNSent\" PRIV 1", "MODSEQ")->root->child;
    assert_string_equal(k->entry_type, "priv");
    k = expect_search(p, "MODSEQ \"/flags/junk\" shared 1", "MODSEQ")->root->child;
    assert_string_equal(k->entry_type, "shared");
    imap_parser_free(&p);
}

static void test_search_structure(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    expect_search(p, "SEEN FLAGGED", "SEEN FLAGGED");
    expect_search(p, "OR SEEN NOT FLAGGED", "(OR SEEN (NOT FLAGGED))");
    expect_search(p, "NOT OR SEEN FLAGGED UID 1", "(NOT (OR SEEN FLAGGED)) UID");
    expect_search(p, "OR (SEEN FLAGGED) (DELETED)", "(OR (AND SEEN FLAGGED) (AND DELETED))");
    expect_search(p, "OR OR OR FROM a TO a CC a SUBJECT a",
                  "(OR (OR (OR FROM TO) CC) SUBJECT)");
    expect_search(p, "((NOT (SEEN)))", "(AND (AND (NOT (AND SEEN))))");
    expect_search(p, "NOT NOT ALL", "(NOT (NOT ALL))");
    /* Thunderbird's quick filter. */
    expect_search(p, "UNDELETED OR OR FROM \"x\" SUBJECT \"x\" BODY \"x\"",
                  "UNDELETED (OR (OR FROM SUBJECT) BODY)");

    /* Nesting is bounded apart from the reader's list depth. */
    char line[1200] = "";
    for (int i = 0; i < 127; i++)
        strcat(line, "NOT ");
    strcat(line, "ALL");
    struct imap_search_cmd cmd;
    const char *err;
    assert_int_equal(search(p, line, &cmd, &err), 0);
    memmove(line + 4, line, strlen(line) + 1);
    memcpy(line, "NOT ", 4);
    assert_int_equal(search(p, line, &cmd, &err), IMAP_PERR_SYNTAX);
    assert_string_equal(err, "Search keys nested too deeply");
    imap_parser_free(&p);
}

static void test_search_charset_return(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_search_cmd *c;

    c = expect_search(p, "ALL", "ALL");
    assert_false(c->esearch);
    assert_false(c->charset_given);
    c = expect_search(p, "CHARSET UTF-8 SUBJECT x", "SUBJECT");
    assert_true(c->charset_given);
    expect_search(p, "CHARSET us-ascii ALL", "ALL");
    expect_search(p, "CHARSET \"UTF-8\" ALL", "ALL");
    expect_search_error(p, "CHARSET ISO-8859-1 SUBJECT x", IMAP_PERR_BADCHARSET);
    expect_search_error(p, "CHARSET UTF-16 ALL", IMAP_PERR_BADCHARSET);
    expect_search_error(p, "CHARSET UTF-8", IMAP_PERR_SYNTAX);
    expect_search_error(p, "CHARSET", IMAP_PERR_SYNTAX);
    expect_search_error(p, "CHARSET (UTF-8) ALL", IMAP_PERR_SYNTAX);
    /* CHARSET comes first (after RETURN) or not at all. */
    expect_search_error(p, "ALL CHARSET UTF-8", IMAP_PERR_SYNTAX);

    /* RFC 4731. */
    c = expect_search(p, "RETURN (MIN MAX) UNSEEN", "UNSEEN");
    assert_true(c->esearch);
    assert_int_equal(c->ret, IMAP_SR_MIN | IMAP_SR_MAX);
    c = expect_search(p, "RETURN (count all save) ALL", "ALL");
    assert_int_equal(c->ret, IMAP_SR_COUNT | IMAP_SR_ALL | IMAP_SR_SAVE);
    c = expect_search(p, "RETURN () ALL", "ALL");   /* RFC 4731 §3.1: () is ALL */
    assert_int_equal(c->ret, IMAP_SR_ALL);
    c = expect_search(p, "RETURN (SAVE) CHARSET UTF-8 UID $", "UID");
    assert_int_equal(c->ret, IMAP_SR_SAVE);
    assert_true(c->charset_given);
    expect_search_error(p, "RETURN (PARTIAL 1:10) ALL", IMAP_PERR_SYNTAX);
    expect_search_error(p, "RETURN MIN ALL", IMAP_PERR_SYNTAX);
    expect_search_error(p, "RETURN", IMAP_PERR_SYNTAX);
    expect_search_error(p, "RETURN (MIN)", IMAP_PERR_SYNTAX);
    expect_search_error(p, "RETURN ((MIN)) ALL", IMAP_PERR_SYNTAX);
    expect_search_error(p, "CHARSET UTF-8 RETURN (MIN) ALL", IMAP_PERR_SYNTAX);
    imap_parser_free(&p);
}

static void test_search_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "FOO", "SEEN FOO", "SUBJECT", "HEADER Subject", "HEADER", "FROM (a)",
        "BEFORE", "BEFORE 32-Jan-2024", "BEFORE 1-Foo-2024", "BEFORE 29-Feb-2023",
        "BEFORE 1-Feb-24", "SINCE 1-Feb-2024 00:00", "ON {10+}\r\n",
        "LARGER", "LARGER -1", "LARGER 1k", "LARGER 9223372036854775808", "SMALLER \"5\"",
        "OLDER 0", "OLDER 4294967296", "YOUNGER x",
        "KEYWORD", "KEYWORD \\Seen", "KEYWORD \"foo\"", "KEYWORD (a)", "UNKEYWORD a*b",
        "UID", "UID 0", "UID 1:", "UID x", "UID (1)", "0", "1:0", "$,1", "*:",
        "NOT", "OR SEEN", "OR", "()", "(SEEN) ()", "(FOO)",
        "MODSEQ", "MODSEQ x", "MODSEQ -1", "MODSEQ 9223372036854775808",
        "MODSEQ \"/flags/\\\\Seen\" 5", "MODSEQ \"/flags/\\\\Seen\" any 5",
        "MODSEQ \"/flags/\\\\Seen\" all", "MODSEQ \"flags/x\" all 5",
        "MODSEQ \"/flags/\" all 5", "MODSEQ \"/flags/a b\" all 5", "MODSEQ \"/flags/\\\\\" all 5",
        "\"ALL\"", "NIL",
    };
    struct imap_parser *p = imap_parser_new(NULL, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct imap_search_cmd cmd;
        const char *err = NULL;
        int rc;
        if (strchr(bad[i], '{')) {
            imap_parser_reset(p);
            assert_int_equal(feed(p, "t SEARCH ON {10+}"), IMAP_WANT_LITERAL);
            assert_int_equal(feed_lit(p, "1-Feb-2024", 10), IMAP_WANT_LINE);
            assert_int_equal(feed(p, ""), IMAP_WANT_READY);
            rc = imap_parse_search(imap_parser_arena(p), imap_parser_command(p)->args, &cmd,
                                   &err);
        } else {
            rc = search(p, bad[i], &cmd, &err);
        }
        if (rc != IMAP_PERR_SYNTAX)
            fail_msg("SEARCH %s: %d", bad[i], rc);
        assert_non_null(err);
    }
    /* No arguments at all. */
    struct imap_search_cmd cmd;
    const char *err;
    assert_int_equal(imap_parse_search(imap_parser_arena(p), NULL, &cmd, &err),
                     IMAP_PERR_SYNTAX);
    /* Out of arena: NOMEM, not a crash. */
    struct imap_arena tiny;
    imap_arena_init(&tiny, 64);
    const struct imap_command *c = ready(p, "t SEARCH OR SEEN NOT FLAGGED");
    assert_int_equal(imap_parse_search(&tiny, c->args, &cmd, &err), IMAP_PERR_NOMEM);
    imap_arena_free(&tiny);
    imap_parser_free(&p);
}

/* ------------------------------------------------------------ FETCH */

/* "t FETCH 1 <args>" through the reader, then imap_parse_fetch(). */
static int fetch(struct imap_parser *p, const char *args, struct imap_fetch *out,
                 const char **err)
{
    char line[1024];
    snprintf(line, sizeof line, "t FETCH 1 %s", args);
    const struct imap_command *c = ready(p, line);
    return imap_parse_fetch(imap_parser_arena(p), c->args->next, out, err);
}

static const struct imap_fetch *expect_fetch(struct imap_parser *p, const char *args)
{
    static struct imap_fetch f;
    const char *err;
    int rc = fetch(p, args, &f, &err);
    if (rc != 0)
        fail_msg("FETCH %s: %d (%s)", args, rc, err);
    return &f;
}

static void expect_fetch_error(struct imap_parser *p, const char *args)
{
    struct imap_fetch f;
    const char *err = NULL;
    int rc = fetch(p, args, &f, &err);
    if (rc != IMAP_PERR_SYNTAX)
        fail_msg("FETCH %s: %d", args, rc);
    assert_non_null(err);
}

#define FAST (IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE)

static void test_fetch_macros_and_items(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    assert_int_equal(expect_fetch(p, "ALL")->items, FAST | IMAP_FI_ENVELOPE);
    assert_int_equal(expect_fetch(p, "fast")->items, FAST);
    assert_int_equal(expect_fetch(p, "FULL")->items, FAST | IMAP_FI_ENVELOPE | IMAP_FI_BODY);

    static const struct {
        const char *name;
        unsigned item;
    } items[] = {
        { "ENVELOPE", IMAP_FI_ENVELOPE },       { "FLAGS", IMAP_FI_FLAGS },
        { "INTERNALDATE", IMAP_FI_INTERNALDATE }, { "RFC822", IMAP_FI_RFC822 },
        { "RFC822.HEADER", IMAP_FI_RFC822_HEADER }, { "RFC822.SIZE", IMAP_FI_RFC822_SIZE },
        { "RFC822.TEXT", IMAP_FI_RFC822_TEXT }, { "BODY", IMAP_FI_BODY },
        { "BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE }, { "UID", IMAP_FI_UID },
        { "MODSEQ", IMAP_FI_MODSEQ },
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        const struct imap_fetch *f = expect_fetch(p, items[i].name);
        assert_int_equal(f->items, items[i].item);
        assert_int_equal(f->nbodies, 0);
        char list[64];
        snprintf(list, sizeof list, "(%s)", items[i].name);
        assert_int_equal(expect_fetch(p, list)->items, items[i].item);
    }
    const struct imap_fetch *f = expect_fetch(p, "(uid flags Rfc822.Size BODY.PEEK[])");
    assert_int_equal(f->items, IMAP_FI_UID | IMAP_FI_FLAGS | IMAP_FI_RFC822_SIZE);
    assert_int_equal(f->nbodies, 1);
    assert_false(f->changedsince);
    imap_parser_free(&p);
}

static const struct imap_fetch_body *one_body(struct imap_parser *p, const char *args)
{
    const struct imap_fetch *f = expect_fetch(p, args);
    assert_int_equal(f->nbodies, 1);
    assert_int_equal(f->items, 0);
    return &f->bodies[0];
}

static void test_fetch_sections(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_fetch_body *b;

    b = one_body(p, "BODY[]");
    assert_int_equal(b->kind, IMAP_FB_BODY);
    assert_false(b->peek);
    assert_int_equal(b->nparts, 0);
    assert_int_equal(b->text, IMAP_ST_NONE);
    assert_string_equal(b->section, "");
    assert_false(b->partial);

    b = one_body(p, "BODY.PEEK[1.2.3]");
    assert_true(b->peek);
    assert_int_equal(b->nparts, 3);
    assert_int_equal(b->part[0], 1);
    assert_int_equal(b->part[2], 3);
    assert_string_equal(b->section, "1.2.3");

    assert_int_equal(one_body(p, "BODY[HEADER]")->text, IMAP_ST_HEADER);
    assert_int_equal(one_body(p, "body[text]")->text, IMAP_ST_TEXT);
    b = one_body(p, "BODY[2.MIME]");
    assert_int_equal(b->text, IMAP_ST_MIME);
    assert_int_equal(b->nparts, 1);
    b = one_body(p, "BODY[4.2.HEADER]");
    assert_int_equal(b->text, IMAP_ST_HEADER);
    assert_int_equal(b->nparts, 2);
    assert_int_equal(one_body(p, "BODY[3.TEXT]")->text, IMAP_ST_TEXT);

    b = one_body(p, "BODY.PEEK[HEADER.FIELDS (From To \"X-Spam Flag\" Message-ID)]");
    assert_int_equal(b->text, IMAP_ST_HEADER_FIELDS);
    assert_int_equal(b->nfields, 4);
    assert_string_equal(b->fields[0], "From");
    assert_string_equal(b->fields[2], "X-Spam Flag");
    assert_string_equal(b->fields[3], "Message-ID");
    assert_string_equal(b->section, "HEADER.FIELDS (From To \"X-Spam Flag\" Message-ID)");

    b = one_body(p, "BODY[1.HEADER.FIELDS.NOT (Received \"a\\\"b\")]");
    assert_int_equal(b->text, IMAP_ST_HEADER_FIELDS_NOT);
    assert_int_equal(b->nparts, 1);
    assert_int_equal(b->nfields, 2);
    assert_string_equal(b->fields[1], "a\"b");

    /* Partial: <offset.length>, 64-bit (RFC 9051 §9). */
    b = one_body(p, "BODY[]<0.2048>");
    assert_true(b->partial);
    assert_true(b->offset == 0 && b->length == 2048);
    b = one_body(p, "BODY.PEEK[HEADER.FIELDS (To)]<10.9223372036854775807>");
    assert_true(b->offset == 10 && b->length == INT64_MAX);
    assert_string_equal(b->section, "HEADER.FIELDS (To)");
    b = one_body(p, "BINARY.PEEK[1]<007.1>");
    assert_true(b->offset == 7 && b->length == 1);

    /* RFC 3516. */
    b = one_body(p, "BINARY[1.2]");
    assert_int_equal(b->kind, IMAP_FB_BINARY);
    assert_false(b->peek);
    assert_int_equal(b->nparts, 2);
    b = one_body(p, "BINARY.PEEK[]");
    assert_int_equal(b->kind, IMAP_FB_BINARY);
    assert_true(b->peek);
    b = one_body(p, "BINARY.SIZE[3]");
    assert_int_equal(b->kind, IMAP_FB_BINARY_SIZE);
    assert_true(b->peek);

    /* The deepest part path. */
    char att[256] = "BODY[";
    for (int i = 0; i < IMAP_MAX_PART_DEPTH; i++)
        strcat(att, i ? ".9" : "9");
    strcat(att, "]");
    assert_int_equal(one_body(p, att)->nparts, IMAP_MAX_PART_DEPTH);
    att[strlen(att) - 1] = 0;
    strcat(att, ".9]");
    expect_fetch_error(p, att);

    /* Several in one list, each in order. */
    const struct imap_fetch *f =
        expect_fetch(p, "(UID BODY.PEEK[HEADER] BODY[1]<0.10> BINARY.SIZE[] FLAGS)");
    assert_int_equal(f->nbodies, 3);
    assert_int_equal(f->bodies[1].part[0], 1);
    assert_true(f->bodies[1].partial);
    assert_int_equal(f->bodies[2].kind, IMAP_FB_BINARY_SIZE);
    assert_int_equal(f->items, IMAP_FI_UID | IMAP_FI_FLAGS);
    imap_parser_free(&p);
}

static void test_fetch_att_text(void **state)
{
    (void)state;
    struct imap_arena a;
    imap_arena_init(&a, 0);
    struct imap_fetch f;
    const char *err;
    const char *s = "BODY.PEEK[1.2.HEADER.FIELDS (To)]<0.100>";
    assert_int_equal(imap_parse_fetch_att(&a, s, strlen(s), &f, &err), 0);
    assert_int_equal(f.nbodies, 1);
    assert_int_equal(f.bodies[0].nparts, 2);
    assert_int_equal(f.bodies[0].nfields, 1);
    assert_true(f.bodies[0].length == 100);
    assert_int_equal(imap_parse_fetch_att(&a, "UID", 3, &f, &err), 0);
    assert_int_equal(f.items, IMAP_FI_UID);
    assert_int_equal(f.nbodies, 0);
    /* Only len bytes count, and every form is checked. */
    assert_int_equal(imap_parse_fetch_att(&a, "UIDX", 3, &f, &err), 0);
    static const char *const bad[] = {
        "", "BODY[", "BODY[]]", "BODY[\"]", "BODY[HEADER.FIELDS (\"a)]",
        "BODY[HEADER.FIELDS (\"a\\x\")]", "BODY[HEADER.FIELDS (a\tb)]",
        "BODY[HEADER.FIELDS (\"\")]", "BODY[]<", "BODY[]<1.2", "BODY[]x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (imap_parse_fetch_att(&a, bad[i], strlen(bad[i]), &f, &err) != IMAP_PERR_SYNTAX)
            fail_msg("\"%s\" accepted", bad[i]);
    }
    imap_arena_free(&a);
}

static void test_fetch_modifiers(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_fetch *f = expect_fetch(p, "(FLAGS) (CHANGEDSINCE 12345)");
    assert_true(f->changedsince);
    assert_true(f->changedsince_modseq == 12345);
    /* RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ. */
    assert_int_equal(f->items, IMAP_FI_FLAGS | IMAP_FI_MODSEQ);
    assert_false(f->vanished);

    f = expect_fetch(p, "FLAGS (CHANGEDSINCE 5 VANISHED)");
    assert_true(f->vanished);
    f = expect_fetch(p, "FAST (vanished changedsince 5)");
    assert_true(f->vanished && f->changedsince);
    assert_int_equal(f->items, FAST | IMAP_FI_MODSEQ);
    /* iPhone Mail sends CHANGEDSINCE 0. */
    f = expect_fetch(p, "UID (CHANGEDSINCE 0)");
    assert_true(f->changedsince && f->changedsince_modseq == 0);

    /* RFC 7162 §3.2.6: VANISHED needs CHANGEDSINCE. */
    expect_fetch_error(p, "FLAGS (VANISHED)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE x)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE -1)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE 9223372036854775808)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE \"1\")");
    expect_fetch_error(p, "FLAGS (UNCHANGEDSINCE 1)");
    expect_fetch_error(p, "FLAGS ()");
    expect_fetch_error(p, "FLAGS CHANGEDSINCE 1");
    expect_fetch_error(p, "FLAGS (CHANGEDSINCE 1) (VANISHED)");
    imap_parser_free(&p);
}

static void test_fetch_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "FOO", "(FOO)", "()", "((FLAGS))", "(FLAGS ALL)", "(ALL)", "(FAST FLAGS)",
        "\"FLAGS\"", "NIL", "(FLAGS \"UID\")", "RFC822.FOO", "BODY.PEEK", "BINARY",
        "BINARY.SIZE", "BODYSTRUCTURE[]", "FLAGS[]", "BODY.PEEK.X[]",
        /* section-spec */
        "BODY[MIME]",            /* RFC 3501 §6.4.5: MIME only after a part */
        "BODY[0]", "BODY[01]", "BODY[1.]", "BODY[.1]", "BODY[1..2]", "BODY[1.0]",
        "BODY[4294967296]", "BODY[HEADERS]", "BODY[HEADER ]", "BODY[TEXT (a)]",
        "BODY[1.FOO]", "BODY[HEADER.FIELDS]", "BODY[HEADER.FIELDS ()]",
        "BODY[HEADER.FIELDS (a  b)]", "BODY[HEADER.FIELDS (a )]", "BODY[HEADER.FIELDS ( a)]",
        "BODY[HEADER.FIELDS a]", "BODY[HEADER.FIELDS (a) ]", "BODY[HEADER.FIELDS (a)(b)]",
        "BODY[HEADER.FIELDS.NOT]", "BODY[HEADER.FIELDS(a)]", "BODY[HEADER.FIELDS ((a))]",
        /* RFC 3516 section-binary: part numbers only */
        "BINARY[HEADER]", "BINARY[1.TEXT]", "BINARY.PEEK[1.MIME]", "BINARY.SIZE[TEXT]",
        "BINARY.SIZE[1]<0.10>",
        /* partial */
        "BODY[]<0.0>", "BODY[]<1>", "BODY[]<a.b>", "BODY[]<1.>", "BODY[]<.1>",
        "BODY[]<1.2.3>", "BODY[]<1.02>", "BODY[]<-1.2>", "BODY[]<1.2>x", "BODY[]<>",
        "BODY[]<9223372036854775808.1>", "BODY[]0.1>",
    };
    struct imap_parser *p = imap_parser_new(NULL, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fetch_error(p, bad[i]);
    struct imap_fetch f;
    const char *err;
    assert_int_equal(imap_parse_fetch(imap_parser_arena(p), NULL, &f, &err), IMAP_PERR_SYNTAX);
    /* The reader refuses a literal inside a section. */
    expect_bad(p, "t FETCH 1 BODY[HEADER.FIELDS ({2}");
    imap_parser_free(&p);
}

/* The reader hands a whole BODY[...]<...> to the FETCH parser as one atom. */
static void test_fetch_tokens(void **state)
{
    (void)state;
    struct imap_parser *p = imap_parser_new(NULL, 0);
    const struct imap_command *c = ready(
        p, "t UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (To \"X-A)]\" From)]<0.100> FLAGS)");
    struct imap_arg *list = nth(c->args, 2);
    assert_int_equal(list->count, 3);
    assert_arg(nth(list->child, 1), IMAP_ARG_ATOM,
               "BODY.PEEK[HEADER.FIELDS (To \"X-A)]\" From)]<0.100>");
    struct imap_fetch f;
    const char *err;
    assert_int_equal(imap_parse_fetch(imap_parser_arena(p), list, &f, &err), 0);
    assert_int_equal(f.bodies[0].nfields, 3);
    assert_string_equal(f.bodies[0].fields[1], "X-A)]");
    /* Only after BODY, BODY.PEEK, BINARY, BINARY.PEEK and BINARY.SIZE. */
    c = ready(p, "t FETCH 1 (FOO[A B])");
    list = nth(c->args, 1);
    assert_int_equal(list->count, 2);
    assert_arg(list->child, IMAP_ARG_ATOM, "FOO[A");
    assert_int_equal(imap_parse_fetch(imap_parser_arena(p), list, &f, &err), IMAP_PERR_SYNTAX);
    expect_bad(p, "t FETCH 1 BODY[HEADER.FIELDS (A)");
    expect_bad(p, "t FETCH 1 BODY[HEADER.FIELDS (\"A)]");
    imap_parser_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_commands),
        cmocka_unit_test(test_reader_bad_tags),
        cmocka_unit_test(test_reader_quoted),
        cmocka_unit_test(test_reader_lists),
        cmocka_unit_test(test_reader_limits),
        cmocka_unit_test(test_literal_sync),
        cmocka_unit_test(test_literal_nonsync),
        cmocka_unit_test(test_literal_limits),
        cmocka_unit_test(test_literal_append_streamed),
        cmocka_unit_test(test_seqset_parse),
        cmocka_unit_test(test_seqset_resolve),
        cmocka_unit_test(test_seqset_members),
        cmocka_unit_test(test_utf7_rfc_examples),
        cmocka_unit_test(test_utf7_round_trips),
        cmocka_unit_test(test_utf7_refused),
        cmocka_unit_test(test_mailbox_inbox),
        cmocka_unit_test(test_search_every_key),
        cmocka_unit_test(test_search_values),
        cmocka_unit_test(test_search_structure),
        cmocka_unit_test(test_search_charset_return),
        cmocka_unit_test(test_search_errors),
        cmocka_unit_test(test_fetch_macros_and_items),
        cmocka_unit_test(test_fetch_sections),
        cmocka_unit_test(test_fetch_att_text),
        cmocka_unit_test(test_fetch_modifiers),
        cmocka_unit_test(test_fetch_errors),
        cmocka_unit_test(test_fetch_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
