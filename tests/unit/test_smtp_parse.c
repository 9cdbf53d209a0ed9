/*
 * The SMTP command-line parser: verbs, paths (RFC 5321 §4.1.2, RFC 6531),
 * MAIL/RCPT parameters (RFC 1870, RFC 6152, RFC 6531, RFC 4954) and the
 * EHLO/HELO argument (§4.1.1.1). The expectations come from the RFC
 * grammar; where the parser is deliberately more liberal it says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp.h"

/* ------------------------------------------------------------ helpers */

static enum smtp_arg_error mail(const char *args, struct smtp_path *p,
                                struct smtp_mail_params *m)
{
    return smtp_parse_mail(args, strlen(args), p, m);
}

static enum smtp_arg_error rcpt(const char *args, bool utf8, struct smtp_path *p)
{
    return smtp_parse_rcpt(args, strlen(args), utf8, p);
}

/* MAIL must give err; when OK, the address must be want. */
static void expect_mail(const char *args, enum smtp_arg_error err, const char *want)
{
    struct smtp_path p;
    struct smtp_mail_params m;
    enum smtp_arg_error got = mail(args, &p, &m);
    if (got != err)
        fail_msg("MAIL %s: got %d, want %d", args, (int)got, (int)err);
    if (err == SMTP_ARG_OK && want)
        assert_string_equal(p.address, want);
}

/* RCPT (SMTPUTF8 or not) must give err; when OK, the address must be want. */
static void expect_rcpt(const char *args, bool utf8, enum smtp_arg_error err, const char *want)
{
    struct smtp_path p;
    enum smtp_arg_error got = rcpt(args, utf8, &p);
    if (got != err)
        fail_msg("RCPT %s (utf8=%d): got %d, want %d", args, utf8, (int)got, (int)err);
    if (err == SMTP_ARG_OK && want)
        assert_string_equal(p.address, want);
}

/* The same path in MAIL FROM and RCPT TO. */
static void expect_path(const char *path, enum smtp_arg_error err, const char *want)
{
    char line[1024];
    snprintf(line, sizeof line, "FROM:%s", path);
    expect_mail(line, err, want);
    snprintf(line, sizeof line, "TO:%s", path);
    expect_rcpt(line, false, err, want);
}

static bool helo(const char *s)
{
    return smtp_valid_helo(s, strlen(s));
}

/* n copies of ch into buf, NUL-terminated. */
static char *fill(char *buf, char ch, size_t n)
{
    memset(buf, ch, n);
    buf[n] = 0;
    return buf;
}

/* A domain of exactly n bytes: 63-byte labels joined by dots. */
static char *domain_of(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 64 == 63) ? '.' : 'd';
    if (n > 2 && buf[n - 1] == '.') { /* never end on a dot */
        buf[n - 2] = '.';
        buf[n - 1] = 'e';
    }
    buf[n] = 0;
    return buf;
}

/* --------------------------------------------------------------- verbs */

static void check_verb(const char *line, enum smtp_verb want, const char *want_args)
{
    const char *args = NULL;
    size_t args_len = 99;
    enum smtp_verb v = smtp_parse_verb(line, strlen(line), &args, &args_len);
    if (v != want)
        fail_msg("\"%s\": verb %d, want %d", line, (int)v, (int)want);
    assert_non_null(args);
    assert_int_equal(args_len, strlen(want_args));
    assert_memory_equal(args, want_args, args_len);
}

static void test_verb_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum smtp_verb verb;
    } all[] = {
        { "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL },
        { "RCPT", SMTP_RCPT }, { "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
        { "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
        { "HELP", SMTP_HELP }, { "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN },
        { "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH },
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char lower[16];
        size_t n = strlen(all[i].name);
        for (size_t j = 0; j <= n; j++)
            lower[j] = (char)(all[i].name[j] | (j < n ? 0x20 : 0));
        check_verb(all[i].name, all[i].verb, "");
        /* §2.4: verbs are case-insensitive. */
        check_verb(lower, all[i].verb, "");
    }
    check_verb("mAiL FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>");
}

static void test_verb_args(void **state)
{
    (void)state;
    check_verb("MAIL FROM:<a@b> SIZE=10", SMTP_MAIL, "FROM:<a@b> SIZE=10");
    check_verb("EHLO   client.example", SMTP_EHLO, "client.example");
    /* Trailing spaces and tabs are not part of the argument. */
    check_verb("QUIT   ", SMTP_QUIT, "");
    check_verb("NOOP  hello world \t ", SMTP_NOOP, "hello world");
    check_verb("RCPT TO:<a@b>  ", SMTP_RCPT, "TO:<a@b>");
    /* Only the given length counts: no NUL needed. */
    const char *args;
    size_t args_len;
    assert_int_equal(smtp_parse_verb("QUITX", 4, &args, &args_len), SMTP_QUIT);
    assert_int_equal(args_len, 0);
    assert_int_equal(smtp_parse_verb("", 0, &args, &args_len), SMTP_UNKNOWN);
    assert_int_equal(args_len, 0);
}

static void test_verb_unknown(void **state)
{
    (void)state;
    check_verb("XYZZY", SMTP_UNKNOWN, "");
    check_verb("XYZZY plugh", SMTP_UNKNOWN, "plugh");
    /* The verb ends at a space: no space means it is all verb. */
    check_verb("MAILFROM:<a@b>", SMTP_UNKNOWN, "");
    check_verb("MAI", SMTP_UNKNOWN, "");
    check_verb("MAILS", SMTP_UNKNOWN, "");
    check_verb("START", SMTP_UNKNOWN, "");
    check_verb(" QUIT", SMTP_UNKNOWN, "QUIT");
    check_verb("QUIT\t", SMTP_UNKNOWN, "");
    check_verb("", SMTP_UNKNOWN, "");
}

/* --------------------------------------------------------------- paths */

static void test_plain_path(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    assert_int_equal(mail("FROM:<user@example.com>", &p, &m), SMTP_ARG_OK);
    assert_string_equal(p.address, "user@example.com");
    assert_int_equal(p.local_len, 4);
    assert_false(p.null);
    assert_false(p.postmaster);
    assert_false(p.utf8);
    assert_false(m.has_size);
    assert_false(m.body_8bit);
    assert_false(m.smtputf8);

    assert_int_equal(rcpt("TO:<First.Last@Sub.Example.ORG>", false, &p), SMTP_ARG_OK);
    assert_string_equal(p.address, "First.Last@Sub.Example.ORG");
    assert_int_equal(p.local_len, 10);

    /* "FROM:" and "TO:" are case-insensitive (§2.4). */
    expect_mail("from:<a@b>", SMTP_ARG_OK, "a@b");
    expect_rcpt("tO:<a@b>", false, SMTP_ARG_OK, "a@b");
    /* Every atext character is allowed in a Dot-string (RFC 5322 §3.2.3). */
    expect_path("<!#$%&'*+-/=?^_`{|}~0Az@example.com>", SMTP_ARG_OK,
                "!#$%&'*+-/=?^_`{|}~0Az@example.com");
    /* Angle brackets are required (§4.1.2: Path = "<" ... ">"). */
    expect_path("user@example.com", SMTP_ARG_PATH, NULL);
    expect_path("<user@example.com", SMTP_ARG_PATH, NULL);
    expect_path("<user>", SMTP_ARG_PATH, NULL);
    expect_path("<@example.com>", SMTP_ARG_PATH, NULL);
    expect_path("<user@>", SMTP_ARG_PATH, NULL);
    expect_path("<a@b@c>", SMTP_ARG_PATH, NULL);
    expect_path("< a@b>", SMTP_ARG_PATH, NULL);
    expect_path("<a@b >", SMTP_ARG_PATH, NULL);
    expect_path("", SMTP_ARG_PATH, NULL);
}

static void test_null_path(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    /* §4.5.5: the null reverse-path. */
    assert_int_equal(mail("FROM:<>", &p, &m), SMTP_ARG_OK);
    assert_true(p.null);
    assert_string_equal(p.address, "");
    assert_int_equal(p.local_len, 0);
    assert_int_equal(mail("FROM:<> SIZE=100", &p, &m), SMTP_ARG_OK);
    assert_true(p.null);
    assert_true(m.has_size);
    /* A forward-path is never null. */
    expect_rcpt("TO:<>", false, SMTP_ARG_PATH, NULL);
    expect_mail("FROM:< >", SMTP_ARG_PATH, NULL);
    expect_mail("FROM:<>x", SMTP_ARG_SYNTAX, NULL);
}

static void test_postmaster(void **state)
{
    (void)state;
    struct smtp_path p;
    /* §4.1.1.3: "<Postmaster>" is a forward-path, case-insensitively. */
    const char *forms[] = { "TO:<Postmaster>", "TO:<postmaster>", "TO:<POSTMASTER>",
                            "TO:<pOsTmAsTeR>" };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_int_equal(rcpt(forms[i], false, &p), SMTP_ARG_OK);
        assert_true(p.postmaster);
        assert_false(p.null);
        assert_int_equal(p.local_len, 10);
        assert_int_equal(strcasecmp(p.address, "postmaster"), 0);
    }
    /* With a domain it is an ordinary mailbox. */
    assert_int_equal(rcpt("TO:<Postmaster@example.com>", false, &p), SMTP_ARG_OK);
    assert_false(p.postmaster);
    assert_string_equal(p.address, "Postmaster@example.com");
    /* Not as a reverse-path, not quoted, not after a source route, no other name. */
    expect_mail("FROM:<Postmaster>", SMTP_ARG_PATH, NULL);
    expect_rcpt("TO:<\"Postmaster\">", false, SMTP_ARG_PATH, NULL);
    expect_rcpt("TO:<@relay.example:Postmaster>", false, SMTP_ARG_PATH, NULL);
    expect_rcpt("TO:<Postmasters>", false, SMTP_ARG_PATH, NULL);
    expect_rcpt("TO:<abuse>", false, SMTP_ARG_PATH, NULL);
}

static void test_quoted_local(void **state)
{
    (void)state;
    struct smtp_path p;
    /* Quoted-string = DQUOTE *QcontentSMTP DQUOTE (§4.1.2); kept quoted. */
    assert_int_equal(rcpt("TO:<\"a b\"@x.example>", false, &p), SMTP_ARG_OK);
    assert_string_equal(p.address, "\"a b\"@x.example");
    assert_int_equal(p.local_len, 5);
    expect_path("<\"a\\\"b\"@x>", SMTP_ARG_OK, "\"a\\\"b\"@x");
    expect_path("<\"a\\\\b\"@x>", SMTP_ARG_OK, "\"a\\\\b\"@x");
    expect_path("<\"a@b\"@x>", SMTP_ARG_OK, "\"a@b\"@x");
    expect_path("<\"<>,;: ()[]\"@x>", SMTP_ARG_OK, "\"<>,;: ()[]\"@x");
    expect_path("<\"..\"@x>", SMTP_ARG_OK, "\"..\"@x");
    /* quoted-pairSMTP = "\" %d32-126: any printable may be escaped. */
    expect_path("<\"\\a\"@x>", SMTP_ARG_OK, "\"\\a\"@x");
    /* *QcontentSMTP: the empty quoted string is in the grammar. */
    expect_path("<\"\"@x>", SMTP_ARG_OK, "\"\"@x");

    expect_path("<\"ab@x>", SMTP_ARG_PATH, NULL);      /* unterminated */
    expect_path("<\"a\\\"@x>", SMTP_ARG_PATH, NULL);   /* escaped closing quote */
    expect_path("<\"a\tb\"@x>", SMTP_ARG_PATH, NULL);  /* HT is not qtextSMTP */
    expect_path("<\"a\\\tb\"@x>", SMTP_ARG_PATH, NULL); /* nor quotable */
    expect_path("<\"a\"b@x>", SMTP_ARG_PATH, NULL);    /* quoted then atom */
    expect_path("<a\"b\"@x>", SMTP_ARG_PATH, NULL);
    expect_path("<\"a\".b@x>", SMTP_ARG_PATH, NULL);
    char nul[] = "TO:<\"a\0b\"@x>";
    assert_int_equal(smtp_parse_rcpt(nul, sizeof nul - 1, false, &p), SMTP_ARG_PATH);
}

static void test_dot_string(void **state)
{
    (void)state;
    /* Dot-string = Atom *("." Atom): no leading, trailing or double dots. */
    expect_path("<a.b.c@x>", SMTP_ARG_OK, "a.b.c@x");
    expect_path("<.a@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a.@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a..b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<.@x>", SMTP_ARG_PATH, NULL);
    /* Specials and spaces need quoting. */
    expect_path("<a b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a(b)@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a,b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a;b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a[b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a\\b@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a\x01@x>", SMTP_ARG_PATH, NULL);
    expect_path("<a\x7f@x>", SMTP_ARG_PATH, NULL);
}

static void test_domain(void **state)
{
    (void)state;
    char label[80], line[400];
    /* sub-domain = Let-dig [Ldh-str] (§4.1.2). */
    expect_path("<a@x-y.example>", SMTP_ARG_OK, "a@x-y.example");
    expect_path("<a@1.2>", SMTP_ARG_OK, "a@1.2");
    expect_path("<a@x--y>", SMTP_ARG_OK, "a@x--y");
    expect_path("<a@-x.example>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x-.example>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x..example>", SMTP_ARG_PATH, NULL);
    expect_path("<a@.x>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x.>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x_y.example>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x y>", SMTP_ARG_PATH, NULL);
    /* RFC 1035 §2.3.4: a label is at most 63 octets. */
    snprintf(line, sizeof line, "<a@%s.example>", fill(label, 'l', 63));
    expect_path(line, SMTP_ARG_OK, NULL);
    snprintf(line, sizeof line, "<a@%s.example>", fill(label, 'l', 64));
    expect_path(line, SMTP_ARG_PATH, NULL);
}

static void test_address_literal(void **state)
{
    (void)state;
    struct smtp_path p;
    /* address-literal (§4.1.3). */
    expect_path("<a@[192.0.2.1]>", SMTP_ARG_OK, "a@[192.0.2.1]");
    expect_path("<a@[IPv6:::1]>", SMTP_ARG_OK, "a@[IPv6:::1]");
    expect_path("<a@[IPv6:2001:db8::1]>", SMTP_ARG_OK, "a@[IPv6:2001:db8::1]");
    expect_path("<a@[ipv6:2001:DB8:0:0:0:0:0:1]>", SMTP_ARG_OK, NULL);
    expect_path("<a@[IPv6:::ffff:192.0.2.1]>", SMTP_ARG_OK, NULL);
    /* General-address-literal = Standardized-tag ":" 1*dcontent */
    expect_path("<a@[x-tag:abc]>", SMTP_ARG_OK, "a@[x-tag:abc]");

    expect_path("<a@[192.0.2.256]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[192.0.2]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[192.0.2.1.5]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[ 192.0.2.1]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[IPv6:zz::1]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[IPv6:192.0.2.1]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[IPv6:]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[::1]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[192.0.2.1>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[192.0.2.1]x>", SMTP_ARG_PATH, NULL);
    expect_path("<a@x.[192.0.2.1]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[:abc]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[tag-:abc]>", SMTP_ARG_PATH, NULL); /* Ldh-str ends in Let-dig */
    expect_path("<a@[tag:]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[tag:a\\b]>", SMTP_ARG_PATH, NULL);
    expect_path("<a@[tag:a b]>", SMTP_ARG_PATH, NULL);
    /* A NUL must not end the literal early for inet_pton. */
    char nul[] = "TO:<a@[192.0.2.1\0junk]>";
    assert_int_equal(smtp_parse_rcpt(nul, sizeof nul - 1, false, &p), SMTP_ARG_PATH);
}

static void test_limits(void **state)
{
    (void)state;
    char local[100], dom[300], line[700];
    struct smtp_path p;

    /* §4.5.3.1.1: local part 64 octets. */
    snprintf(line, sizeof line, "TO:<%s@x.example>", fill(local, 'l', 64));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_OK);
    assert_int_equal(p.local_len, 64);
    snprintf(line, sizeof line, "TO:<%s@x.example>", fill(local, 'l', 65));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_TOOLONG);
    /* Quotes count: they are part of the local part. */
    snprintf(line, sizeof line, "TO:<\"%s\"@x.example>", fill(local, 'l', 62));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_OK);
    snprintf(line, sizeof line, "TO:<\"%s\"@x.example>", fill(local, 'l', 63));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_TOOLONG);

    /* §4.5.3.1.3: path 256 octets with "<" and ">", so a mailbox of 254. */
    snprintf(line, sizeof line, "TO:<%s@%s>", fill(local, 'l', 64), domain_of(dom, 189));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_OK);
    assert_int_equal(strlen(p.address), 254);
    assert_int_equal(p.local_len, 64);
    assert_true(strlen(p.address) + 2 <= SMTP_MAX_PATH);
    snprintf(line, sizeof line, "TO:<%s@%s>", fill(local, 'l', 64), domain_of(dom, 190));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_TOOLONG);
    snprintf(line, sizeof line, "FROM:<a@%s>", domain_of(dom, 252));
    expect_mail(line, SMTP_ARG_OK, NULL);
    snprintf(line, sizeof line, "FROM:<a@%s>", domain_of(dom, 253));
    expect_mail(line, SMTP_ARG_TOOLONG, NULL);

    /* §4.5.3.1.2: domain 255 octets (the path limit also applies). */
    snprintf(line, sizeof line, "TO:<a@%s>", domain_of(dom, 255));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_TOOLONG);
    snprintf(line, sizeof line, "TO:<a@%s>", domain_of(dom, 256));
    assert_int_equal(rcpt(line, false, &p), SMTP_ARG_TOOLONG);
}

static void test_source_route(void **state)
{
    (void)state;
    struct smtp_path p;
    /* §4.1.2 / appendix C: the A-d-l is parsed and ignored. */
    assert_int_equal(rcpt("TO:<@a,@b:user@c>", false, &p), SMTP_ARG_OK);
    assert_string_equal(p.address, "user@c");
    assert_int_equal(p.local_len, 4);
    expect_path("<@relay.example:user@c.example>", SMTP_ARG_OK, "user@c.example");
    expect_path("<@a.example,@b.example,@c.example:\"q u\"@d>", SMTP_ARG_OK, "\"q u\"@d");
    expect_path("<@a,b:user@c>", SMTP_ARG_PATH, NULL);
    expect_path("<@a user@c>", SMTP_ARG_PATH, NULL);
    expect_path("<@a,@b user@c>", SMTP_ARG_PATH, NULL);
    expect_path("<@:user@c>", SMTP_ARG_PATH, NULL);
    expect_path("<@a,:user@c>", SMTP_ARG_PATH, NULL);
    expect_path("<@a:>", SMTP_ARG_PATH, NULL);
    expect_path("<@[192.0.2.1]:user@c>", SMTP_ARG_PATH, NULL); /* At-domain = "@" Domain */
    expect_mail("FROM:<@a:>", SMTP_ARG_PATH, NULL);
    /* A UTF-8 route still needs SMTPUTF8, but the address it leads to is
     * not UTF-8 (found by fuzz_smtp). */
    expect_rcpt("TO:<@m\xc3\xbcnchen.example:a@b>", false, SMTP_ARG_NONASCII, NULL);
    expect_mail("FROM:<@m\xc3\xbcnchen.example:a@b>", SMTP_ARG_NONASCII, NULL);
    assert_int_equal(rcpt("TO:<@m\xc3\xbcnchen.example:a@b>", true, &p), SMTP_ARG_OK);
    assert_string_equal(p.address, "a@b");
    assert_false(p.utf8);
    struct smtp_mail_params m;
    assert_int_equal(mail("FROM:<@m\xc3\xbcnchen.example:a@b> SMTPUTF8", &p, &m), SMTP_ARG_OK);
    assert_false(p.utf8);
}

static void test_smtputf8(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    /* RFC 6531 §3.3: UTF-8 in local parts and domains, only with SMTPUTF8. */
    assert_int_equal(mail("FROM:<pel\xc3\xa9@example.com>", &p, &m), SMTP_ARG_NONASCII);
    assert_int_equal(mail("FROM:<pel\xc3\xa9@example.com> SMTPUTF8", &p, &m), SMTP_ARG_OK);
    assert_true(p.utf8);
    assert_true(m.smtputf8);
    assert_string_equal(p.address, "pel\xc3\xa9@example.com");
    assert_int_equal(p.local_len, 5);
    assert_int_equal(mail("FROM:<a@m\xc3\xbcnchen.example> smtputf8", &p, &m), SMTP_ARG_OK);
    assert_true(p.utf8);
    assert_int_equal(mail("FROM:<a@m\xc3\xbcnchen.example>", &p, &m), SMTP_ARG_NONASCII);
    /* ASCII with SMTPUTF8 is fine and not flagged. */
    assert_int_equal(mail("FROM:<a@b> SMTPUTF8", &p, &m), SMTP_ARG_OK);
    assert_false(p.utf8);

    expect_rcpt("TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example>", false,
                SMTP_ARG_NONASCII, NULL);
    expect_rcpt("TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example>", true,
                SMTP_ARG_OK, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example");
    assert_int_equal(rcpt("TO:<\"\xc3\xa9 x\"@b>", true, &p), SMTP_ARG_OK);
    assert_true(p.utf8);
    assert_int_equal(rcpt("TO:<\xf0\x9f\x90\xa6@b>", true, &p), SMTP_ARG_OK); /* 4 bytes */
    assert_int_equal(rcpt("TO:<a@b>", true, &p), SMTP_ARG_OK);
    assert_false(p.utf8);

    /* Invalid UTF-8 is refused with or without SMTPUTF8 (RFC 3629). */
    static const char *bad[] = {
        "<a\xff@b>",             /* never in UTF-8 */
        "<a\x80@b>",             /* lone continuation */
        "<a\xc0\xaf@b>",         /* overlong "/" */
        "<a\xe0\x80\xaf@b>",     /* overlong, 3 bytes */
        "<a\xed\xa0\x80@b>",     /* surrogate */
        "<a\xf4\x90\x80\x80@b>", /* over U+10FFFF */
        "<a\xc3@b>",             /* truncated */
        "<a@b\xc3>",             /* truncated at the end of the domain */
        "<\"a\xc3\"@b>",         /* truncated in a quoted string */
        "<\"\\\xc3\xa9\"@b>",    /* quoted-pairSMTP is ASCII only */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "FROM:%s SMTPUTF8", bad[i]);
        expect_mail(line, SMTP_ARG_PATH, NULL);
        snprintf(line, sizeof line, "TO:%s", bad[i]);
        expect_rcpt(line, true, SMTP_ARG_PATH, NULL);
        expect_rcpt(line, false, SMTP_ARG_PATH, NULL);
    }
}

/* ---------------------------------------------------------- parameters */

static void test_param_size(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    /* RFC 1870 §6: "SIZE=" size-value, size-value ::= 1*20DIGIT. */
    assert_int_equal(mail("FROM:<a@b> SIZE=1000", &p, &m), SMTP_ARG_OK);
    assert_true(m.has_size);
    assert_true(m.size == 1000);
    assert_int_equal(mail("FROM:<a@b> size=0", &p, &m), SMTP_ARG_OK);
    assert_true(m.has_size);
    assert_true(m.size == 0);
    assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551615", &p, &m), SMTP_ARG_OK);
    assert_true(m.size == UINT64_MAX);
    /* Twenty digits past 2^64 - 1 are valid syntax: saturated, so the
     * session answers 552 (too big) rather than 501. */
    assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551616", &p, &m), SMTP_ARG_OK);
    assert_true(m.size == UINT64_MAX);
    assert_int_equal(mail("FROM:<a@b> SIZE=99999999999999999999", &p, &m), SMTP_ARG_OK);
    assert_true(m.size == UINT64_MAX);
    assert_int_equal(mail("FROM:<a@b> SIZE=00000000000000000042", &p, &m), SMTP_ARG_OK);
    assert_true(m.size == 42);
    expect_mail("FROM:<a@b> SIZE=100000000000000000000", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE=", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE=12a", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE=-1", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE=+1", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SIZE=1 SIZE=2", SMTP_ARG_PARAM_SYNTAX, NULL);
}

static void test_param_body(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    /* RFC 6152 §2: body-value ::= "7BIT" / "8BITMIME". */
    assert_int_equal(mail("FROM:<a@b> BODY=7BIT", &p, &m), SMTP_ARG_OK);
    assert_false(m.body_8bit);
    assert_int_equal(mail("FROM:<a@b> BODY=8BITMIME", &p, &m), SMTP_ARG_OK);
    assert_true(m.body_8bit);
    assert_int_equal(mail("FROM:<a@b> body=8bitmime", &p, &m), SMTP_ARG_OK);
    assert_true(m.body_8bit);
    /* RFC 3030 BINARYMIME is not advertised: 555 (§4.1.1.11). */
    expect_mail("FROM:<a@b> BODY=BINARYMIME", SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_mail("FROM:<a@b> BODY=8BIT", SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_mail("FROM:<a@b> BODY", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> BODY=", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> BODY=7BIT BODY=7BIT", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> BODY=7BIT BODY=8BITMIME", SMTP_ARG_PARAM_SYNTAX, NULL);
}

static void test_param_smtputf8_auth(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    /* RFC 6531 §3.4: SMTPUTF8 takes no value. */
    assert_int_equal(mail("FROM:<a@b> SMTPUTF8", &p, &m), SMTP_ARG_OK);
    assert_true(m.smtputf8);
    expect_mail("FROM:<a@b> SMTPUTF8=yes", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> SMTPUTF8 SMTPUTF8", SMTP_ARG_PARAM_SYNTAX, NULL);
    /* RFC 4954 §5: AUTH=<> and AUTH=xtext are accepted (and not used). */
    expect_mail("FROM:<a@b> AUTH=<>", SMTP_ARG_OK, "a@b");
    expect_mail("FROM:<a@b> AUTH=user+40example.com", SMTP_ARG_OK, "a@b");
    expect_mail("FROM:<a@b> AUTH", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> AUTH=<> AUTH=<>", SMTP_ARG_PARAM_SYNTAX, NULL);
    /* All together, in any order, with extra spaces. */
    assert_int_equal(mail("FROM:<a@b>  AUTH=<>   BODY=8BITMIME SMTPUTF8 SIZE=7", &p, &m),
                     SMTP_ARG_OK);
    assert_true(m.smtputf8 && m.body_8bit && m.has_size && m.size == 7);
}

static void test_param_errors(void **state)
{
    (void)state;
    /* §4.1.1.11: parameters not implemented: 555. */
    expect_mail("FROM:<a@b> FOO=bar", SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_mail("FROM:<a@b> RET=FULL", SMTP_ARG_PARAM_UNKNOWN, NULL); /* no DSN */
    expect_mail("FROM:<a@b> X-FOO", SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_mail("FROM:<a@b> SIZE=1 FOO", SMTP_ARG_PARAM_UNKNOWN, NULL);
    /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
    expect_mail("FROM:<a@b> -X=1", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> X_Y=1", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> =1", SMTP_ARG_PARAM_SYNTAX, NULL);
    /* esmtp-value = 1*(%d33-60 / %d62-126) */
    expect_mail("FROM:<a@b> FOO=a=b", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> FOO=", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> FOO=a\x01", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> FOO=a\x7f", SMTP_ARG_PARAM_SYNTAX, NULL);
    /* RFC 6531 §3.3: UTF-8 in a value, but only well-formed. */
    expect_mail("FROM:<a@b> FOO=\xc3\xa9", SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_mail("FROM:<a@b> FOO=\xc3", SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_mail("FROM:<a@b> FOO=\xff", SMTP_ARG_PARAM_SYNTAX, NULL);
    /* Parameters follow the path after a space. */
    expect_mail("FROM:<a@b>SIZE=1", SMTP_ARG_SYNTAX, NULL);
    /* RCPT: no parameter is supported. */
    expect_rcpt("TO:<a@b> NOTIFY=NEVER", false, SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_rcpt("TO:<a@b> SIZE=1", false, SMTP_ARG_PARAM_UNKNOWN, NULL);
    expect_rcpt("TO:<a@b> =x", false, SMTP_ARG_PARAM_SYNTAX, NULL);
    expect_rcpt("TO:<a@b>   ", false, SMTP_ARG_OK, "a@b");
    expect_rcpt("TO:<a@b>x", false, SMTP_ARG_SYNTAX, NULL);
    expect_rcpt("TO:<a@b>>", false, SMTP_ARG_SYNTAX, NULL);
}

static void test_keyword_colon(void **state)
{
    (void)state;
    /* "MAIL FROM:" Reverse-path, "RCPT TO:" Forward-path: the colon is required. */
    expect_mail("FROM<a@b>", SMTP_ARG_SYNTAX, NULL);
    expect_mail("FROM <a@b>", SMTP_ARG_SYNTAX, NULL);
    expect_mail("FROM :<a@b>", SMTP_ARG_SYNTAX, NULL);
    expect_mail("FRO:<a@b>", SMTP_ARG_SYNTAX, NULL);
    expect_mail("", SMTP_ARG_SYNTAX, NULL);
    expect_mail("TO:<a@b>", SMTP_ARG_SYNTAX, NULL);
    expect_rcpt("TO<a@b>", false, SMTP_ARG_SYNTAX, NULL);
    expect_rcpt("TO <a@b>", false, SMTP_ARG_SYNTAX, NULL);
    expect_rcpt("FROM:<a@b>", false, SMTP_ARG_SYNTAX, NULL);
    expect_rcpt("", false, SMTP_ARG_SYNTAX, NULL);
    /* "FROM:" with no path at all. */
    expect_mail("FROM:", SMTP_ARG_PATH, NULL);
    expect_rcpt("TO:", false, SMTP_ARG_PATH, NULL);
    /*
     * §4.1.2 allows no space after the colon, but many clients send one;
     * like most servers the parser tolerates spaces there (and only there).
     */
    expect_mail("FROM: <a@b>", SMTP_ARG_OK, "a@b");
    expect_mail("FROM:   <a@b> SIZE=1", SMTP_ARG_OK, "a@b");
    expect_mail("FROM: <>", SMTP_ARG_OK, "");
    expect_rcpt("TO: <a@b>", false, SMTP_ARG_OK, "a@b");
    expect_mail("FROM:\t<a@b>", SMTP_ARG_PATH, NULL);
}

static void test_failed_parse_clears(void **state)
{
    (void)state;
    struct smtp_path p;
    struct smtp_mail_params m;
    memset(&p, 0x55, sizeof p);
    memset(&m, 0x55, sizeof m);
    assert_int_equal(mail("FROM<a@b>", &p, &m), SMTP_ARG_SYNTAX);
    assert_false(p.null);
    assert_int_equal(p.local_len, 0);
    assert_false(m.has_size);
    memset(&p, 0x55, sizeof p);
    assert_int_equal(rcpt("TO<a@b>", false, &p), SMTP_ARG_SYNTAX);
    assert_int_equal(p.local_len, 0);
}

/* ---------------------------------------------------------------- HELO */

static void test_helo(void **state)
{
    (void)state;
    char dom[300], line[320];
    /* ehlo = "EHLO" SP ( Domain / address-literal ) (§4.1.1.1). */
    assert_true(helo("example.com"));
    assert_true(helo("mail.example.com"));
    assert_true(helo("localhost"));
    assert_true(helo("x"));
    assert_true(helo("192.0.2.1")); /* digits are Let-dig */
    assert_true(helo("[192.0.2.1]"));
    assert_true(helo("[IPv6:::1]"));
    assert_true(helo("[IPv6:2001:db8::1]"));
    assert_true(helo(domain_of(dom, 255)));
    /* Tolerated against the grammar: '_' in a label (desktop host names). */
    assert_true(helo("DESKTOP-1_AB"));
    assert_true(helo("my_host.example"));

    assert_false(helo(""));
    assert_false(helo(domain_of(dom, 256)));
    snprintf(line, sizeof line, "%s.example", fill(dom, 'l', 64));
    assert_false(helo(line));
    assert_false(helo("a b"));
    assert_false(helo("a\tb"));
    assert_false(helo("a..b"));
    assert_false(helo(".a"));
    assert_false(helo("a."));
    assert_false(helo("-a.example"));
    assert_false(helo("a-.example"));
    assert_false(helo("user@example.com"));
    assert_false(helo("<example.com>"));
    assert_false(helo("exa\"mple"));
    assert_false(helo("[192.0.2.256]"));
    assert_false(helo("[192.0.2.1]x"));
    assert_false(helo("[192.0.2.1"));
    assert_false(helo("[]"));
    assert_false(helo("[IPv6:nope]"));
    /* ASCII only: the client cannot know yet whether we take SMTPUTF8. */
    assert_false(helo("m\xc3\xbcnchen.example"));
    assert_false(helo("a\xff"));
    assert_false(smtp_valid_helo("a\0b", 3));
    assert_false(smtp_valid_helo("[192.0.2.1\0]", 12));
    /* Only len bytes count. */
    assert_true(smtp_valid_helo("example.com junk", 11));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verb_table),
        cmocka_unit_test(test_verb_args),
        cmocka_unit_test(test_verb_unknown),
        cmocka_unit_test(test_plain_path),
        cmocka_unit_test(test_null_path),
        cmocka_unit_test(test_postmaster),
        cmocka_unit_test(test_quoted_local),
        cmocka_unit_test(test_dot_string),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_address_literal),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_source_route),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_param_size),
        cmocka_unit_test(test_param_body),
        cmocka_unit_test(test_param_smtputf8_auth),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_keyword_colon),
        cmocka_unit_test(test_failed_parse_clears),
        cmocka_unit_test(test_helo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
