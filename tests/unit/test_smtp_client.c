/*
 * The SMTP client engine (smtp/client.c): whole dialogues scripted line by
 * line, the bytes written compared exactly, and the results checked per
 * recipient. The server's lines are what real servers send (Postfix,
 * Exim, Exchange shapes); the expectations come from the RFCs cited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

/* ------------------------------------------------------------ helpers */

static const char *const two_rcpts[] = { "bob@example.org", "carol@example.org" };
static const char *const three_rcpts[] = { "bob@example.org", "carol@example.org",
                                           "dave@example.org" };

static struct smtpc_opts opts(enum smtpc_tls tls)
{
    struct smtpc_opts o = { .helo = "mail.example.test", .starttls = tls };
    return o;
}

static struct smtpc_envelope env(const char *const *rcpts, size_t n, uint64_t size)
{
    struct smtpc_envelope e = {
        .mail_from = "alice@example.test", .rcpts = rcpts, .n_rcpts = n, .size = size,
    };
    return e;
}

static struct smtpc *start(const struct smtpc_opts *o, const struct smtpc_envelope *e)
{
    struct smtpc *c = NULL;
    assert_int_equal(smtpc_new(o, e, &c), 0);
    assert_non_null(c);
    return c;
}

static const char *action_name(enum smtpc_action a)
{
    static const char *const names[] = { "READ", "WRITE", "START_TLS", "SEND_BODY",
                                         "QUIT_DONE", "CLOSE" };
    return (unsigned)a < 6 ? names[a] : "?";
}

static void expect_action(struct smtpc *c, enum smtpc_action want)
{
    enum smtpc_action got = smtpc_next(c);
    if (got != want)
        fail_msg("next: got %s, want %s", action_name(got), action_name(want));
}

/* next() says WRITE and the bytes are exactly want. */
static void expect_write(struct smtpc *c, const char *want)
{
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    if (n != strlen(want) || memcmp(p, want, n) != 0)
        fail_msg("wrote \"%.*s\", want \"%s\"", (int)n, p, want);
}

/* next() says READ; the lines of text (CRLF-ended) go in, each accepted. */
static void feed(struct smtpc *c, const char *text)
{
    expect_action(c, SMTPC_READ);
    while (*text) {
        const char *eol = strstr(text, "\r\n");
        assert_non_null(eol);
        if (smtpc_input(c, text, (size_t)(eol - text)) != 0)
            fail_msg("line refused: %.*s", (int)(eol - text), text);
        text = eol + 2;
    }
}

/* One line that must be refused. */
static void feed_bad(struct smtpc *c, const char *line, size_t len)
{
    assert_int_equal(smtpc_input(c, line, len), -1);
    expect_action(c, SMTPC_CLOSE);
}

static void expect_result(const struct smtpc_result *r, int code, const char *status,
                          enum smtpc_stage stage, bool permanent, bool tempfail)
{
    assert_non_null(r);
    assert_non_null(r->text);
    if (r->code != code || strcmp(r->status, status) != 0 || r->stage != stage ||
        r->permanent != permanent || r->tempfail != tempfail)
        fail_msg("result %d %s stage %d perm %d temp %d (\"%s\"), want %d %s stage %d perm %d "
                 "temp %d",
                 r->code, r->status, (int)r->stage, r->permanent, r->tempfail, r->text, code,
                 status, (int)stage, permanent, tempfail);
}

static void expect_rcpt(struct smtpc *c, size_t i, int code, const char *status,
                        enum smtpc_stage stage, bool permanent, bool tempfail)
{
    expect_result(smtpc_rcpt_result(c, i), code, status, stage, permanent, tempfail);
}

#define DELIVERED(c, i, status) expect_rcpt(c, i, 250, status, SMTPC_STAGE_BODY, false, false)

static const char ehlo_full[] = "250-mx.example.org Hello mail.example.test\r\n"
                                "250-PIPELINING\r\n"
                                "250-SIZE 10240000\r\n"
                                "250-8bitmime\r\n"
                                "250-CHUNKING\r\n"
                                "250-ENHANCEDSTATUSCODES\r\n"
                                "250 SMTPUTF8\r\n";

/* Greeting and EHLO with the given EHLO reply. */
static void hello(struct smtpc *c, const char *ehlo_reply)
{
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, "220 mx.example.org ESMTP\r\n");
    expect_write(c, "EHLO mail.example.test\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, ehlo_reply);
}

/* QUIT after QUIT_DONE, 221, CLOSE. */
static void quit(struct smtpc *c)
{
    expect_action(c, SMTPC_QUIT_DONE);
    assert_int_equal(smtpc_quit(c), 0);
    expect_write(c, "QUIT\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 120000);
    feed(c, "221 2.0.0 Bye\r\n");
    expect_action(c, SMTPC_CLOSE);
    assert_int_equal(smtpc_timeout_ms(c), 0);
}

/* ------------------------------------------------------- happy paths */

/* PIPELINING + SIZE + 8BITMIME + CHUNKING: one write for MAIL and the RCPTs,
 * then BDAT (RFC 2920, RFC 1870, RFC 6152, RFC 3030). */
static void test_happy_extensions(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 1234);
    e.eight_bit = true;
    struct smtpc *c = start(&o, &e);
    hello(c, ehlo_full);
    unsigned want = SMTPC_EXT_PIPELINING | SMTPC_EXT_SIZE | SMTPC_EXT_8BITMIME |
                    SMTPC_EXT_CHUNKING | SMTPC_EXT_ENHANCED | SMTPC_EXT_SMTPUTF8;
    assert_int_equal(smtpc_extensions(c), want);
    assert_int_equal(smtpc_size_limit(c), 10240000);
    expect_write(c, "MAIL FROM:<alice@example.test> SIZE=1234 BODY=8BITMIME\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n");
    feed(c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n");
    expect_write(c, "BDAT 1234 LAST\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    assert_int_equal(smtpc_body_mode(c), SMTPC_BODY_BDAT);
    assert_int_equal(smtpc_timeout_ms(c), 180000);
    expect_action(c, SMTPC_SEND_BODY);  /* until the transport says it is sent */
    smtpc_body_sent(c);
    assert_int_equal(smtpc_timeout_ms(c), 600000);
    feed(c, "250 2.0.0 Ok: queued as 4XyZ\r\n");
    DELIVERED(c, 0, "2.0.0");
    DELIVERED(c, 1, "2.0.0");
    assert_string_equal(smtpc_rcpt_result(c, 0)->text, "250 2.0.0 Ok: queued as 4XyZ");
    expect_result(smtpc_result(c), 250, "2.0.0", SMTPC_STAGE_BODY, false, false);
    assert_null(smtpc_rcpt_result(c, 2));
    quit(c);
    smtpc_free(&c);
    assert_null(c);
}

/* PIPELINING without CHUNKING: DATA ends the group; the body dot-stuffed. */
static void test_happy_pipelining_data(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 99);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE\r\n");
    assert_int_equal(smtpc_size_limit(c), 0);  /* "SIZE" alone: no fixed limit */
    expect_write(c, "MAIL FROM:<alice@example.test> SIZE=99\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n"
                    "DATA\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, "250 Ok\r\n250 Ok\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);  /* the second RCPT's reply */
    feed(c, "250 Ok\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 120000);  /* DATA's 354 */
    feed(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    assert_int_equal(smtpc_body_mode(c), SMTPC_BODY_DATA);
    smtpc_body_sent(c);
    expect_action(c, SMTPC_READ);
    assert_int_equal(smtpc_timeout_ms(c), 600000);
    feed(c, "250 Ok: queued as ABC\r\n");
    DELIVERED(c, 0, "2.0.0");  /* no enhanced code in the reply: derived */
    DELIVERED(c, 1, "2.0.0");
    quit(c);
    smtpc_free(&c);
}

/* No extensions at all: one command at a time (RFC 5321 §4.1.1, §3.3). */
static void test_no_extensions(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_OPPORTUNISTIC);  /* not offered: go on */
    struct smtpc_envelope e = env(two_rcpts, 2, 500);
    e.eight_bit = true;  /* sent without BODY= (docs/smtp-client.md) */
    struct smtpc *c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    assert_int_equal(smtpc_extensions(c), 0);
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<bob@example.org>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<carol@example.org>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "DATA\r\n");
    feed(c, "354 go ahead\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    feed(c, "250 ok\r\n");
    DELIVERED(c, 0, "2.0.0");
    DELIVERED(c, 1, "2.0.0");
    quit(c);
    smtpc_free(&c);
}

/* RFC 5321 §3.2: EHLO refused with 5xx: HELO, and no extensions. */
static void test_helo_fallback(void **state)
{
    static const char *const refusals[] = { "500 5.5.1 Command unrecognized\r\n",
                                            "502 Command not implemented\r\n",
                                            "550 Not now\r\n" };
    for (size_t i = 0; i < 3; i++) {
        struct smtpc_opts o = opts(SMTPC_TLS_NONE);
        struct smtpc_envelope e = env(two_rcpts, 1, 10);
        struct smtpc *c = start(&o, &e);
        hello(c, refusals[i]);
        expect_write(c, "HELO mail.example.test\r\n");
        assert_int_equal(smtpc_timeout_ms(c), 300000);
        feed(c, "250 mx.example.org\r\n");
        assert_int_equal(smtpc_extensions(c), 0);
        expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
        feed(c, "250 ok\r\n");
        expect_write(c, "RCPT TO:<bob@example.org>\r\n");
        feed(c, "250 ok\r\n");
        expect_write(c, "DATA\r\n");
        feed(c, "354 go\r\n");
        expect_action(c, SMTPC_SEND_BODY);
        smtpc_body_sent(c);
        feed(c, "250 ok\r\n");
        DELIVERED(c, 0, "2.0.0");
        quit(c);
        smtpc_free(&c);
    }
}

/* HELO refused as well: the session is refused (not the last MX: tempfail,
 * the 5 of the status made a 4). */
static void test_helo_refused(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "502 5.5.2 no\r\n");
    expect_write(c, "HELO mail.example.test\r\n");
    feed(c, "550 5.7.1 go away\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 550, "4.7.1", SMTPC_STAGE_HELO, false, true);
    expect_rcpt(c, 1, 550, "4.7.1", SMTPC_STAGE_HELO, false, true);
    feed(c, "221 bye\r\n");
    expect_action(c, SMTPC_CLOSE);
    smtpc_free(&c);
}

/* ----------------------------------------------------------- greeting */

/* RFC 5321 §3.1: a 554 greeting is "no service here": permanent only from
 * the last MX, else tempfail so the next MX is tried; QUIT either way. */
static void test_greeting_554(void **state)
{
    for (int last = 0; last < 2; last++) {
        struct smtpc_opts o = opts(SMTPC_TLS_NONE);
        o.last_mx = last;
        struct smtpc_envelope e = env(two_rcpts, 2, 10);
        struct smtpc *c = start(&o, &e);
        feed(c, "554-mx.example.org no SMTP service here\r\n554 5.7.1 blocked\r\n");
        expect_write(c, "QUIT\r\n");
        if (last)
            expect_rcpt(c, 1, 554, "5.0.0", SMTPC_STAGE_GREETING, true, false);
        else
            expect_rcpt(c, 1, 554, "4.0.0", SMTPC_STAGE_GREETING, false, true);
        /* The status is only taken from a reply's first line. */
        assert_string_equal(smtpc_rcpt_result(c, 0)->text,
                            "554-mx.example.org no SMTP service here\r\n554 5.7.1 blocked");
        assert_non_null(smtpc_result(c));
        assert_int_equal(smtpc_result(c)->stage, SMTPC_STAGE_GREETING);
        feed(c, "503 5.5.1 bad sequence\r\n");  /* any reply to QUIT */
        expect_action(c, SMTPC_CLOSE);
        smtpc_free(&c);
    }
}

/* 421 greeting: tempfail, close at once (RFC 5321 §3.8). */
static void test_greeting_421(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    o.last_mx = true;
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    feed(c, "421 4.3.2 too busy\r\n");
    expect_action(c, SMTPC_CLOSE);
    expect_rcpt(c, 0, 421, "4.3.2", SMTPC_STAGE_GREETING, false, true);
    expect_rcpt(c, 1, 421, "4.3.2", SMTPC_STAGE_GREETING, false, true);
    assert_int_equal(smtpc_input(c, "250 ok", 6), -1);  /* nothing after CLOSE */
    smtpc_free(&c);
}

/* ----------------------------------------------------------- STARTTLS */

static void test_starttls_required_not_offered(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_REQUIRED);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    expect_write(c, "QUIT\r\n");  /* no MAIL */
    expect_rcpt(c, 0, 0, "4.7.4", SMTPC_STAGE_STARTTLS, false, true);
    expect_rcpt(c, 1, 0, "4.7.4", SMTPC_STAGE_STARTTLS, false, true);
    assert_non_null(strstr(smtpc_result(c)->text, "TLS required"));
    feed(c, "221 bye\r\n");
    expect_action(c, SMTPC_CLOSE);
    smtpc_free(&c);
}

/* RFC 3207 §4.2: after the handshake everything is forgotten and EHLO sent
 * again; the second EHLO's keywords count. */
static void test_starttls_opportunistic(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_OPPORTUNISTIC);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-SIZE 5\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
    assert_true(smtpc_extensions(c) & SMTPC_EXT_STARTTLS);
    expect_write(c, "STARTTLS\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, "220 2.0.0 Ready to start TLS\r\n");
    expect_action(c, SMTPC_START_TLS);
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    expect_action(c, SMTPC_START_TLS);
    smtpc_tls_done(c);
    assert_int_equal(smtpc_extensions(c), 0);
    expect_write(c, "EHLO mail.example.test\r\n");
    feed(c, "250-mx.example.org\r\n250 SIZE 100\r\n");
    /* SIZE 5 from before TLS is forgotten; no STARTTLS again. */
    assert_int_equal(smtpc_extensions(c), SMTPC_EXT_SIZE);
    assert_int_equal(smtpc_size_limit(c), 100);
    expect_write(c, "MAIL FROM:<alice@example.test> SIZE=10\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<bob@example.org>\r\n");
    smtpc_free(&c);
}

/* A line after the 220 but before the handshake is injected plain text
 * (the STARTTLS command injection family): protocol error. */
static void test_starttls_injection(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_REQUIRED);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 STARTTLS\r\n");
    expect_write(c, "STARTTLS\r\n");
    feed(c, "220 go ahead\r\n");
    expect_action(c, SMTPC_START_TLS);
    feed_bad(c, "250 injected", 12);
    expect_rcpt(c, 0, 0, "4.5.0", SMTPC_STAGE_STARTTLS, false, true);
    smtpc_free(&c);
}

static void test_starttls_refused(void **state)
{
    /* Opportunistic: on in plain text, without EHLO again. */
    struct smtpc_opts o = opts(SMTPC_TLS_OPPORTUNISTIC);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 STARTTLS\r\n");
    expect_write(c, "STARTTLS\r\n");
    feed(c, "454 4.7.0 TLS not available due to temporary reason\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    smtpc_free(&c);

    /* Required: QUIT, tempfail 4.7.4 quoting the server. */
    o = opts(SMTPC_TLS_REQUIRED);
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 STARTTLS\r\n");
    expect_write(c, "STARTTLS\r\n");
    feed(c, "454 4.7.0 TLS not available due to temporary reason\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 454, "4.7.4", SMTPC_STAGE_STARTTLS, false, true);
    assert_non_null(strstr(smtpc_rcpt_result(c, 0)->text, "454 4.7.0 TLS not available"));
    smtpc_free(&c);
}

static void test_tls_handshake_failed(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_OPPORTUNISTIC);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 STARTTLS\r\n");
    expect_write(c, "STARTTLS\r\n");
    feed(c, "220 go ahead\r\n");
    expect_action(c, SMTPC_START_TLS);
    smtpc_tls_failed(c);
    expect_action(c, SMTPC_CLOSE);
    expect_rcpt(c, 1, 0, "4.7.0", SMTPC_STAGE_STARTTLS, false, true);
    smtpc_free(&c);
}

/* Implicit TLS (port 465): no STARTTLS even when offered and required. */
static void test_implicit_tls(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_REQUIRED);
    o.tls_active = true;
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 STARTTLS\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    smtpc_free(&c);
}

/* --------------------------------------------------------------- AUTH */

static struct smtpc_opts auth_opts(void)
{
    struct smtpc_opts o = opts(SMTPC_TLS_REQUIRED);
    o.auth_user = "user";
    o.auth_pass = "pass";
    return o;
}

static void assert_no_secret(struct smtpc *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *t = smtpc_rcpt_result(c, i)->text;
        assert_null(strstr(t, "pass"));
        assert_null(strstr(t, "cGFzcw=="));
        assert_null(strstr(t, "AHVzZXIAcGFzcw=="));
    }
}

/* RFC 4954 §4 with RFC 4616: base64("\0user\0pass") as the initial response,
 * after STARTTLS and the second EHLO. */
static void test_auth_plain(void **state)
{
    struct smtpc_opts o = auth_opts();
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n");
    expect_write(c, "STARTTLS\r\n");  /* never AUTH before TLS */
    feed(c, "220 ready\r\n");
    expect_action(c, SMTPC_START_TLS);
    smtpc_tls_done(c);
    expect_write(c, "EHLO mail.example.test\r\n");
    feed(c, "250-smtp.example.net\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 8BITMIME\r\n");
    assert_true(smtpc_extensions(c) & SMTPC_EXT_AUTH_PLAIN);
    expect_write(c, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, "235 2.7.0 Authentication successful\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    smtpc_free(&c);
}

/* LOGIN: username and password each in base64 after a 334 prompt. */
static void test_auth_login(void **state)
{
    struct smtpc_opts o = auth_opts();
    o.tls_active = true;
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH LOGIN\r\n");
    expect_write(c, "AUTH LOGIN\r\n");
    feed(c, "334 VXNlcm5hbWU6\r\n");
    expect_write(c, "dXNlcg==\r\n");
    feed(c, "334 UGFzc3dvcmQ6\r\n");
    expect_write(c, "cGFzcw==\r\n");
    feed(c, "235 2.7.0 Authentication successful\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    smtpc_free(&c);

    /* The old "AUTH=" form (Outlook-era servers) counts too. */
    c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH=LOGIN\r\n");
    assert_true(smtpc_extensions(c) & SMTPC_EXT_AUTH_LOGIN);
    assert_false(smtpc_extensions(c) & SMTPC_EXT_AUTH_PLAIN);
    expect_write(c, "AUTH LOGIN\r\n");
    smtpc_free(&c);
}

/* 535: a permanent failure with the server's words (never the password,
 * even when the server echoes it); 454: tempfail. Then QUIT. */
static void test_auth_refused(void **state)
{
    struct smtpc_opts o = auth_opts();
    o.tls_active = true;
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH PLAIN\r\n");
    expect_write(c, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    feed(c, "535-5.7.8 Username and Password not accepted: AHVzZXIAcGFzcw==\r\n"
            "535 5.7.8 password was pass\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 535, "5.7.8", SMTPC_STAGE_AUTH, true, false);
    expect_rcpt(c, 1, 535, "5.7.8", SMTPC_STAGE_AUTH, true, false);
    assert_non_null(strstr(smtpc_rcpt_result(c, 0)->text, "not accepted"));
    assert_no_secret(c, 2);
    smtpc_free(&c);

    c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH LOGIN\r\n");
    expect_write(c, "AUTH LOGIN\r\n");
    feed(c, "334 VXNlcm5hbWU6\r\n");
    expect_write(c, "dXNlcg==\r\n");
    feed(c, "334 UGFzc3dvcmQ6\r\n");
    expect_write(c, "cGFzcw==\r\n");
    feed(c, "454 4.7.0 Temporary authentication failure cGFzcw==\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 454, "4.7.0", SMTPC_STAGE_AUTH, false, true);
    assert_no_secret(c, 2);
    smtpc_free(&c);
}

/* No AUTH in clear, no AUTH offered, no common mechanism: tempfail 4.7.0
 * without sending AUTH; an unexpected challenge is cancelled with "*". */
static void test_auth_impossible(void **state)
{
    struct smtpc_opts o = auth_opts();
    o.starttls = SMTPC_TLS_OPPORTUNISTIC;
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH PLAIN\r\n");  /* no STARTTLS */
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 0, "4.7.0", SMTPC_STAGE_AUTH, false, true);
    smtpc_free(&c);

    o.tls_active = true;
    c = start(&o, &e);
    hello(c, "250 smtp.example.net\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 0, "4.7.0", SMTPC_STAGE_AUTH, false, true);
    smtpc_free(&c);

    c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 0, "4.7.0", SMTPC_STAGE_AUTH, false, true);
    smtpc_free(&c);

    c = start(&o, &e);
    hello(c, "250-smtp.example.net\r\n250 AUTH PLAIN\r\n");
    expect_write(c, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    feed(c, "334 \r\n");
    expect_write(c, "*\r\n");
    feed(c, "501 5.7.0 cancelled\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 0, "4.7.0", SMTPC_STAGE_AUTH, false, true);
    smtpc_free(&c);
}

/* ------------------------------------------------- checks before MAIL */

/* RFC 1870: over the server's SIZE: 5.3.4 without MAIL; the connection stays
 * usable, and the next (smaller) message goes without RSET. */
static void test_size_too_large(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 2000);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-SIZE 1000\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 0, "5.3.4", SMTPC_STAGE_MAIL, true, false);
    expect_rcpt(c, 1, 0, "5.3.4", SMTPC_STAGE_MAIL, true, false);
    assert_non_null(strstr(smtpc_result(c)->text, "2000"));
    assert_int_equal(smtpc_timeout_ms(c), 0);

    struct smtpc_envelope small = env(two_rcpts, 1, 1000);
    assert_int_equal(smtpc_reset(c, &small), 0);
    assert_null(smtpc_result(c));
    assert_int_equal(smtpc_rcpt_result(c, 0)->stage, SMTPC_STAGE_NONE);
    expect_write(c, "MAIL FROM:<alice@example.test> SIZE=1000\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "DATA\r\n");
    smtpc_free(&c);
}

/* RFC 6531: SMTPUTF8 needed and not offered: 5.6.7 for a non-ASCII address,
 * 5.6.9 for UTF-8 header fields alone; offered: the SMTPUTF8 parameter. */
static void test_smtputf8(void **state)
{
    static const char *const utf8_rcpt[] = { "j\xc3\xb6rg@b\xc3\xbc" "cher.example" };
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(utf8_rcpt, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 8BITMIME\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 0, "5.6.7", SMTPC_STAGE_MAIL, true, false);
    smtpc_free(&c);

    e = env(two_rcpts, 1, 10);
    e.smtputf8 = true;
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 8BITMIME\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 0, "5.6.9", SMTPC_STAGE_MAIL, true, false);
    smtpc_free(&c);

    e = env(utf8_rcpt, 1, 10);
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test> SMTPUTF8\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>\r\n");
    smtpc_free(&c);

    /* UTF-8 header fields are 8-bit data: BODY=8BITMIME too. */
    e = env(two_rcpts, 1, 10);
    e.smtputf8 = true;
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8\r\n");
    smtpc_free(&c);
}

/* ------------------------------------------------------- the results */

/* One 250, one 550, one 451: each its own result; the accepted one gets
 * the final reply. */
static void test_mixed_recipients(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(three_rcpts, 3, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n"
                    "RCPT TO:<dave@example.org>\r\n"
                    "DATA\r\n");
    feed(c, "250 2.1.0 Sender ok\r\n"
            "250 2.1.5 Recipient ok\r\n"
            "550-5.1.1 <carol@example.org>: Recipient address rejected:\r\n"
            "550 5.1.1 User unknown in virtual mailbox table\r\n"
            "451 4.3.0 <dave@example.org>: Temporary lookup failure\r\n");
    /* While DATA is pending the accepted one shows its RCPT reply. */
    expect_rcpt(c, 0, 250, "2.1.5", SMTPC_STAGE_RCPT, false, false);
    feed(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    feed(c, "250 2.0.0 Ok: queued as 1234\r\n");
    DELIVERED(c, 0, "2.0.0");
    expect_rcpt(c, 1, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    expect_rcpt(c, 2, 451, "4.3.0", SMTPC_STAGE_RCPT, false, true);
    assert_string_equal(smtpc_rcpt_result(c, 1)->text,
                        "550-5.1.1 <carol@example.org>: Recipient address rejected:\r\n"
                        "550 5.1.1 User unknown in virtual mailbox table");
    expect_result(smtpc_result(c), 250, "2.0.0", SMTPC_STAGE_BODY, false, false);
    quit(c);
    smtpc_free(&c);
}

/* DATA refused after accepted RCPTs: the accepted ones fail with it. */
static void test_data_rejected(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n"
                    "DATA\r\n");
    feed(c, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n");
    feed(c, "554 5.7.1 Message refused by policy\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 554, "5.7.1", SMTPC_STAGE_DATA, true, false);
    expect_rcpt(c, 1, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    expect_result(smtpc_result(c), 554, "5.7.1", SMTPC_STAGE_DATA, true, false);

    /* The server may still hold the transaction: RSET before the next. */
    struct smtpc_envelope next = env(two_rcpts, 1, 10);
    assert_int_equal(smtpc_reset(c, &next), 0);
    expect_write(c, "RSET\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 300000);
    feed(c, "250 2.0.0 Ok\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "DATA\r\n");
    smtpc_free(&c);
}

/* Every RCPT refused: without PIPELINING no DATA at all; with it the
 * pipelined DATA's 503/554 is expected, not a failure (RFC 2920 §3.1). */
static void test_no_recipient_accepted(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<bob@example.org>\r\n");
    feed(c, "550 5.1.1 no\r\n");
    expect_write(c, "RCPT TO:<carol@example.org>\r\n");
    feed(c, "452 4.2.2 mailbox full\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    expect_rcpt(c, 1, 452, "4.2.2", SMTPC_STAGE_RCPT, false, true);
    assert_null(smtpc_result(c));
    smtpc_free(&c);

    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n"
                    "DATA\r\n");
    feed(c, "250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n554 5.5.1 Error: no valid recipients\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    expect_rcpt(c, 1, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    assert_null(smtpc_result(c));
    smtpc_free(&c);

    /* A broken server that says 354 anyway gets an empty message ended at once. */
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    feed(c, "250 ok\r\n550 no\r\n550 no\r\n354 go on\r\n");
    expect_write(c, ".\r\n");
    feed(c, "554 no recipients\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 550, "5.0.0", SMTPC_STAGE_RCPT, true, false);
    smtpc_free(&c);
}

/* MAIL refused: every recipient gets MAIL's reply; pipelined RCPT/DATA
 * replies are read and ignored. No RSET needed afterwards. */
static void test_mail_refused(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    feed(c, "553 5.7.1 Sender address rejected\r\n503 5.5.1 need MAIL\r\n");
    expect_action(c, SMTPC_READ);  /* two replies still due */
    feed(c, "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 553, "5.7.1", SMTPC_STAGE_MAIL, true, false);
    expect_rcpt(c, 1, 553, "5.7.1", SMTPC_STAGE_MAIL, true, false);
    expect_result(smtpc_result(c), 553, "5.7.1", SMTPC_STAGE_MAIL, true, false);
    assert_int_equal(smtpc_reset(c, &e), 0);
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.org>\r\n"
                    "RCPT TO:<carol@example.org>\r\n"
                    "DATA\r\n");
    smtpc_free(&c);
}

/* 421 in the middle (RFC 5321 §3.8): every undecided recipient tempfails
 * with it, decided ones keep their results, the connection closes. */
static void test_421_mid_session(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(three_rcpts, 3, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<bob@example.org>\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<carol@example.org>\r\n");
    feed(c, "550 5.1.1 unknown\r\n");
    expect_write(c, "RCPT TO:<dave@example.org>\r\n");
    feed(c, "421 4.4.2 mx.example.org Error: timeout exceeded\r\n");
    expect_action(c, SMTPC_CLOSE);
    expect_rcpt(c, 0, 421, "4.4.2", SMTPC_STAGE_RCPT, false, true);
    expect_rcpt(c, 1, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);
    expect_rcpt(c, 2, 421, "4.4.2", SMTPC_STAGE_RCPT, false, true);
    smtpc_free(&c);

    /* A 421 nobody asked for, while idle between messages: just close. */
    c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-SIZE 1\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    assert_int_equal(smtpc_input(c, "421 4.3.2 shutting down", 23), 0);
    expect_action(c, SMTPC_CLOSE);
    expect_rcpt(c, 0, 0, "5.3.4", SMTPC_STAGE_MAIL, true, false);
    smtpc_free(&c);
}

/* Connection lost while sending the body: tempfail 4.4.2 (RFC 5321
 * §4.1.1.4 treats it as 451); the refused recipient keeps its 550. */
static void test_connection_lost_in_data(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(three_rcpts, 3, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    feed(c, "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_connection_lost(c);
    expect_action(c, SMTPC_CLOSE);
    expect_rcpt(c, 0, 0, "4.4.2", SMTPC_STAGE_BODY, false, true);
    expect_rcpt(c, 1, 550, "5.0.0", SMTPC_STAGE_RCPT, true, false);
    expect_rcpt(c, 2, 0, "4.4.2", SMTPC_STAGE_BODY, false, true);
    expect_result(smtpc_result(c), 0, "4.4.2", SMTPC_STAGE_BODY, false, true);
    assert_non_null(strstr(smtpc_result(c)->text, "end of data"));
    assert_int_equal(smtpc_reset(c, &e), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(smtpc_quit(c), -1);
    smtpc_free(&c);

    /* Lost after the dot: the message may have arrived; tempfail anyway. */
    c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    smtpc_connection_lost(c);
    expect_rcpt(c, 1, 0, "4.4.2", SMTPC_STAGE_MAIL, false, true);
    smtpc_free(&c);
}

/* Several messages over one connection (RFC 5321 §3.3): after a delivered
 * message no RSET; after one whose RCPTs all failed, RSET first. */
static void test_reuse(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    assert_int_equal(smtpc_reset(c, &e), -1);  /* not while busy */
    expect_write(c, "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.org>\r\n");
    feed(c, "250 ok\r\n250 ok\r\n");
    expect_write(c, "BDAT 10 LAST\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    feed(c, "250 2.0.0 queued\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    DELIVERED(c, 0, "2.0.0");

    static const char *const other[] = { "erin@example.org" };
    struct smtpc_envelope e2 = env(other, 1, 20);
    e2.mail_from = "";
    assert_int_equal(smtpc_reset(c, &e2), 0);
    assert_int_equal(smtpc_rcpt_result(c, 0)->stage, SMTPC_STAGE_NONE);
    expect_write(c, "MAIL FROM:<>\r\nRCPT TO:<erin@example.org>\r\n");
    feed(c, "250 ok\r\n550 5.1.1 no\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    expect_rcpt(c, 0, 550, "5.1.1", SMTPC_STAGE_RCPT, true, false);

    assert_int_equal(smtpc_reset(c, &e), 0);
    expect_write(c, "RSET\r\n");
    feed(c, "250 ok\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.org>\r\n");
    feed(c, "250 ok\r\n250 ok\r\n");
    expect_write(c, "BDAT 10 LAST\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    feed(c, "552 5.3.4 too big after all\r\n");
    expect_rcpt(c, 0, 552, "5.3.4", SMTPC_STAGE_BODY, true, false);

    /* RFC 3030 §2: after a refused BDAT, RSET; a refused RSET ends it. */
    assert_int_equal(smtpc_reset(c, &e), 0);
    expect_write(c, "RSET\r\n");
    feed(c, "500 5.5.1 what\r\n");
    expect_write(c, "QUIT\r\n");
    expect_rcpt(c, 0, 500, "4.5.1", SMTPC_STAGE_RSET, false, true);
    feed(c, "221 bye\r\n");
    expect_action(c, SMTPC_CLOSE);
    smtpc_free(&c);
}

/* ---------------------------------------------------- reply parsing */

static struct smtpc *at_ehlo(void)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);
    struct smtpc *c = start(&o, &e);
    feed(c, "220 mx.example.org\r\n");
    expect_write(c, "EHLO mail.example.test\r\n");
    return c;
}

/* RFC 5321 §4.2.1: every line of a reply has the same code. */
static void test_multiline_mismatch(void **state)
{
    struct smtpc *c = at_ehlo();
    assert_int_equal(smtpc_input(c, "250-mx.example.org", 18), 0);
    assert_int_equal(smtpc_input(c, "250-PIPELINING", 14), 0);
    feed_bad(c, "251 SIZE 100", 12);
    expect_rcpt(c, 0, 0, "4.5.0", SMTPC_STAGE_HELO, false, true);
    expect_rcpt(c, 1, 0, "4.5.0", SMTPC_STAGE_HELO, false, true);
    assert_non_null(strstr(smtpc_result(c)->text, "protocol error"));
    smtpc_free(&c);
}

static void test_malformed_lines(void **state)
{
    static const struct {
        const char *line;
        size_t len;
    } bad[] = {
        { "", 0 },         { "25", 2 },          { "2500 ok", 7 },    { "250x ok", 7 },
        { "650 ok", 6 },   { "199 ok", 6 },      { "160 ok", 6 },     { "2a0 ok", 6 },
        { "260 ok", 6 },   { "250 o\0k", 7 },    { "250 o\rk", 7 },   { "250 o\nk", 7 },
        { " 250 ok", 7 },  { "250\tok", 6 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct smtpc *c = at_ehlo();
        if (smtpc_input(c, bad[i].line, bad[i].len) != -1)
            fail_msg("accepted line %zu", i);
        expect_action(c, SMTPC_CLOSE);
        expect_rcpt(c, 0, 0, "4.5.0", SMTPC_STAGE_HELO, false, true);
        smtpc_free(&c);
    }
}

/* "250" alone is a complete last line (§4.2); one trailing CR is forgiven. */
static void test_bare_code(void **state)
{
    struct smtpc *c = at_ehlo();
    assert_int_equal(smtpc_input(c, "250-mx.example.org\r", 19), 0);
    assert_int_equal(smtpc_input(c, "250-PIPELINING", 14), 0);
    assert_int_equal(smtpc_input(c, "250", 3), 0);
    assert_int_equal(smtpc_extensions(c), SMTPC_EXT_PIPELINING);
    expect_action(c, SMTPC_WRITE);
    smtpc_free(&c);
}

static void test_reply_limits(void **state)
{
    /* A line over SMTPC_MAX_LINE. */
    char *line = malloc(SMTPC_MAX_LINE + 2);
    assert_non_null(line);
    memcpy(line, "250 ", 4);
    memset(line + 4, 'x', SMTPC_MAX_LINE - 2);
    struct smtpc *c = at_ehlo();
    assert_int_equal(smtpc_input(c, line, SMTPC_MAX_LINE), 0);  /* at the limit: fine */
    smtpc_free(&c);
    c = at_ehlo();
    feed_bad(c, line, SMTPC_MAX_LINE + 1);
    smtpc_free(&c);

    /* More than SMTPC_MAX_REPLY_LINES lines. */
    c = at_ehlo();
    int i;
    for (i = 0; i < SMTPC_MAX_REPLY_LINES; i++)
        assert_int_equal(smtpc_input(c, "250-X", 5), 0);
    feed_bad(c, "250-X", 5);
    smtpc_free(&c);

    /* More than SMTPC_MAX_REPLY_BYTES in all. */
    c = at_ehlo();
    memcpy(line, "250-", 4);
    int rc = 0;
    for (i = 0; i < SMTPC_MAX_REPLY_LINES && rc == 0; i++)
        rc = smtpc_input(c, line, SMTPC_MAX_LINE);
    assert_int_equal(rc, -1);
    assert_true((size_t)i * (SMTPC_MAX_LINE + 2) > SMTPC_MAX_REPLY_BYTES);
    expect_action(c, SMTPC_CLOSE);
    smtpc_free(&c);
    free(line);
}

/* A reply when none is due: before the command was handed out, or extra. */
static void test_unexpected_reply(void **state)
{
    struct smtpc *c = at_ehlo();
    feed(c, "250 mx.example.org\r\n");
    expect_action(c, SMTPC_WRITE);  /* MAIL not yet taken */
    feed_bad(c, "250 ok", 6);
    smtpc_free(&c);

    c = at_ehlo();
    feed(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    feed(c, "250 ok\r\n");
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    feed(c, "250 ok\r\n");
    feed_bad(c, "250 one too many", 16);
    smtpc_free(&c);

    /* A positive reply the command cannot get: 354 to MAIL, 250 to DATA. */
    c = at_ehlo();
    feed(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    feed_bad(c, "354 go ahead", 12);
    expect_rcpt(c, 0, 0, "4.5.0", SMTPC_STAGE_MAIL, false, true);
    smtpc_free(&c);
}

/* Enhanced codes: taken when well-formed and of the reply's class. */
static void test_status_codes(void **state)
{
    static const struct {
        const char *reply;
        const char *status;
    } cases[] = {
        { "550 5.1.1 no such user\r\n", "5.1.1" },
        { "550 5.7.26 unauthenticated\r\n", "5.7.26" },
        { "550 5.123.456\r\n", "5.123.456" },
        { "550 4.1.1 class differs\r\n", "5.0.0" },
        { "550 5.1234.1 too many digits\r\n", "5.0.0" },
        { "550 5.1.1.1 four parts\r\n", "5.0.0" },
        { "550 5.1.1x glued\r\n", "5.0.0" },
        { "550 51.1.1 two-digit class\r\n", "5.0.0" },
        { "550 5..1 empty\r\n", "5.0.0" },
        { "550\r\n", "5.0.0" },
        { "451 4.7.1 greylisted\r\n", "4.7.1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtpc_opts o = opts(SMTPC_TLS_NONE);
        struct smtpc_envelope e = env(two_rcpts, 1, 10);
        struct smtpc *c = start(&o, &e);
        hello(c, "250 mx.example.org\r\n");
        expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
        feed(c, cases[i].reply);
        if (strcmp(smtpc_rcpt_result(c, 0)->status, cases[i].status) != 0)
            fail_msg("%s: status %s, want %s", cases[i].reply, smtpc_rcpt_result(c, 0)->status,
                     cases[i].status);
        smtpc_free(&c);
    }
}

/* Control bytes and invalid UTF-8 become '?'; valid UTF-8 stays; long
 * text is cut at SMTPC_MAX_TEXT. */
static void test_result_text(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    const char line[] = "550 5.7.1 caf\xc3\xa9 \x1b[1m \xff\xfe bye";
    assert_int_equal(smtpc_input(c, line, sizeof line - 1), 0);
    assert_string_equal(smtpc_rcpt_result(c, 0)->text, "550 5.7.1 caf\xc3\xa9 ?[1m ?? bye");
    smtpc_free(&c);

    c = start(&o, &e);
    hello(c, "250 mx.example.org\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    char big[3000];
    memcpy(big, "550-", 4);
    memset(big + 4, 'a', sizeof big - 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(smtpc_input(c, big, sizeof big), 0);
    assert_int_equal(smtpc_input(c, "550 end", 7), 0);
    assert_int_equal(strlen(smtpc_rcpt_result(c, 0)->text), SMTPC_MAX_TEXT);
    smtpc_free(&c);
}

/* -------------------------------------------------------------- timeouts */

/* RFC 5321 §4.5.3.2 per state, including the body and after it. */
static void test_timeouts(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    assert_int_equal(smtpc_timeout_ms(c), 5 * 60000);  /* greeting */
    feed(c, "220 hi\r\n");
    expect_write(c, "EHLO mail.example.test\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 5 * 60000);  /* EHLO */
    feed(c, "250 hi\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 5 * 60000);  /* MAIL */
    feed(c, "250 ok\r\n");
    expect_write(c, "RCPT TO:<bob@example.org>\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 5 * 60000);  /* RCPT */
    feed(c, "250 ok\r\n");
    expect_write(c, "DATA\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 2 * 60000);  /* DATA initiation */
    feed(c, "354 go\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    assert_int_equal(smtpc_timeout_ms(c), 3 * 60000);  /* data block */
    smtpc_body_sent(c);
    assert_int_equal(smtpc_timeout_ms(c), 10 * 60000);  /* data termination */
    feed(c, "250 ok\r\n");
    expect_action(c, SMTPC_QUIT_DONE);
    assert_int_equal(smtpc_timeout_ms(c), 0);  /* idle: the transport's choice */
    assert_int_equal(smtpc_quit(c), 0);
    expect_write(c, "QUIT\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 2 * 60000);
    feed(c, "221 bye\r\n");
    assert_int_equal(smtpc_timeout_ms(c), 0);
    smtpc_free(&c);
}

/* An early final reply while the body is still being sent (the transport's
 * read and write callbacks race): taken, and QUIT_DONE waits for body_sent. */
static void test_early_final_reply(void **state)
{
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 1, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    expect_write(c, "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.org>\r\n");
    feed(c, "250 ok\r\n250 ok\r\n");
    expect_write(c, "BDAT 10 LAST\r\n");
    expect_action(c, SMTPC_SEND_BODY);
    assert_int_equal(smtpc_input(c, "250 2.0.0 ok", 12), 0);
    DELIVERED(c, 0, "2.0.0");
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    expect_action(c, SMTPC_QUIT_DONE);
    smtpc_free(&c);
}

/* ------------------------------------------------------ construction */

static void test_new_invalid(void **state)
{
    struct smtpc *c = (struct smtpc *)1;
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(two_rcpts, 2, 10);

    static const char *const bad_rcpts[][1] = {
        { "bob@example.org> AUTH=<" }, { "bob@example.org>\r\nRSET" }, { "" },
        { "bob" },                     { "<bob@example.org>" },        { "bob@@example.org" },
    };
    for (size_t i = 0; i < sizeof bad_rcpts / sizeof bad_rcpts[0]; i++) {
        struct smtpc_envelope b = env(bad_rcpts[i], 1, 10);
        errno = 0;
        if (smtpc_new(&o, &b, &c) != -1 || errno != EINVAL || c != NULL)
            fail_msg("accepted rcpt \"%s\"", bad_rcpts[i][0]);
    }
    struct smtpc_envelope b = e;
    b.mail_from = "alice@example.test>\r\nDATA";
    assert_int_equal(smtpc_new(&o, &b, &c), -1);
    b = e;
    b.n_rcpts = 0;
    assert_int_equal(smtpc_new(&o, &b, &c), -1);
    b.n_rcpts = SMTPC_MAX_RCPTS + 1;
    assert_int_equal(smtpc_new(&o, &b, &c), -1);
    assert_int_equal(smtpc_new(&o, NULL, &c), -1);

    struct smtpc_opts p = o;
    p.helo = "bad helo\r\nRSET";
    assert_int_equal(smtpc_new(&p, &e, &c), -1);
    p = o;
    p.helo = NULL;
    assert_int_equal(smtpc_new(&p, &e, &c), -1);
    p = o;
    p.auth_user = "user";  /* no password */
    assert_int_equal(smtpc_new(&p, &e, &c), -1);
    p.auth_pass = "pass";
    p.auth_user = "";
    assert_int_equal(smtpc_new(&p, &e, &c), -1);
    char long_pass[SMTPC_MAX_SECRET + 2];
    memset(long_pass, 'p', sizeof long_pass - 1);
    long_pass[sizeof long_pass - 1] = 0;
    p.auth_user = "user";
    p.auth_pass = long_pass;
    assert_int_equal(smtpc_new(&p, &e, &c), -1);

    /* Postmaster without a domain, quoted local parts, the null sender. */
    static const char *const fine[] = { "Postmaster", "\"john doe\"@example.org",
                                        "x@[192.0.2.1]" };
    b = env(fine, 3, 10);
    b.mail_from = "";
    assert_int_equal(smtpc_new(&o, &b, &c), 0);
    smtpc_free(&c);
    smtpc_free(&c);  /* NULL-safe */
}

/* 1,000 recipients pipelined in one write. */
static void test_many_recipients(void **state)
{
    static char addrs[SMTPC_MAX_RCPTS][32];
    static const char *ptrs[SMTPC_MAX_RCPTS];
    for (int i = 0; i < SMTPC_MAX_RCPTS; i++) {
        snprintf(addrs[i], sizeof addrs[i], "user%d@example.org", i);
        ptrs[i] = addrs[i];
    }
    struct smtpc_opts o = opts(SMTPC_TLS_NONE);
    struct smtpc_envelope e = env(ptrs, SMTPC_MAX_RCPTS, 10);
    struct smtpc *c = start(&o, &e);
    hello(c, "250-mx.example.org\r\n250 PIPELINING\r\n");
    expect_action(c, SMTPC_WRITE);
    const char *p;
    size_t n;
    smtpc_output(c, &p, &n);
    assert_true(n > 20000);
    assert_int_equal(smtpc_input(c, "250 ok", 6), 0);
    /* RFC 5321 §4.5.3.1.8: past 100 a server may say 452; those retry later. */
    for (int i = 0; i < SMTPC_MAX_RCPTS; i++)
        assert_int_equal(i < 100 ? smtpc_input(c, "250 ok", 6)
                                 : smtpc_input(c, "452 4.5.3 Too many recipients", 29),
                         0);
    assert_int_equal(smtpc_input(c, "354 go", 6), 0);
    expect_action(c, SMTPC_SEND_BODY);
    smtpc_body_sent(c);
    feed(c, "250 ok\r\n");
    DELIVERED(c, 99, "2.0.0");
    expect_rcpt(c, 100, 452, "4.5.3", SMTPC_STAGE_RCPT, false, true);
    smtpc_free(&c);
}

/* ------------------------------------------------------- DATA encoder */

struct sinkbuf {
    char buf[256];
    size_t len;
};

static void sink(void *arg, const char *p, size_t n)
{
    struct sinkbuf *s = arg;
    assert_true(s->len + n <= sizeof s->buf);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void expect_encoded(const char *in, const char *want)
{
    /* Fed whole and byte by byte: the same output. */
    for (int split = 0; split < 2; split++) {
        struct smtpc_dot d = { 0 };
        struct sinkbuf s = { .len = 0 };
        size_t n = strlen(in);
        if (split)
            for (size_t i = 0; i < n; i++)
                smtpc_dot_encode(&d, in + i, 1, sink, &s);
        else
            smtpc_dot_encode(&d, in, n, sink, &s);
        smtpc_dot_end(&d, sink, &s);
        if (s.len != strlen(want) || memcmp(s.buf, want, s.len) != 0)
            fail_msg("encoded \"%s\" (split %d) as \"%.*s\"", in, split, (int)s.len, s.buf);
    }
}

static void test_dot_encode(void **state)
{
    expect_encoded("", ".\r\n");
    expect_encoded("a\r\n", "a\r\n.\r\n");
    expect_encoded("a", "a\r\n.\r\n");
    expect_encoded(".\r\n", "..\r\n.\r\n");
    expect_encoded("a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n");
    expect_encoded("a.b\r\n", "a.b\r\n.\r\n");
    /* RFC 5321 §2.3.8: bare LF and bare CR go out as CRLF. */
    expect_encoded("a\nb\rc\r\r\n", "a\r\nb\r\nc\r\n\r\n.\r\n");
    expect_encoded("a\n.\n", "a\r\n..\r\n.\r\n");
    expect_encoded("x\r", "x\r\n.\r\n");
    expect_encoded("\r.\n", "\r\n..\r\n.\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_extensions),
        cmocka_unit_test(test_happy_pipelining_data),
        cmocka_unit_test(test_no_extensions),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_helo_refused),
        cmocka_unit_test(test_greeting_554),
        cmocka_unit_test(test_greeting_421),
        cmocka_unit_test(test_starttls_required_not_offered),
        cmocka_unit_test(test_starttls_opportunistic),
        cmocka_unit_test(test_starttls_injection),
        cmocka_unit_test(test_starttls_refused),
        cmocka_unit_test(test_tls_handshake_failed),
        cmocka_unit_test(test_implicit_tls),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_auth_login),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_auth_impossible),
        cmocka_unit_test(test_size_too_large),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_mixed_recipients),
        cmocka_unit_test(test_data_rejected),
        cmocka_unit_test(test_no_recipient_accepted),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_421_mid_session),
        cmocka_unit_test(test_connection_lost_in_data),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_multiline_mismatch),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_bare_code),
        cmocka_unit_test(test_reply_limits),
        cmocka_unit_test(test_unexpected_reply),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_result_text),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_early_final_reply),
        cmocka_unit_test(test_new_invalid),
        cmocka_unit_test(test_many_recipients),
        cmocka_unit_test(test_dot_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
