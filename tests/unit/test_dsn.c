/*
 * Delivery status notifications (smtp/dsn.c): every DSN built here is read
 * back with Petrel's own MIME parser (multipart/report of three parts, the
 * types of RFC 3464, RFC 6522 and RFC 6533), its per-message and
 * per-recipient fields checked one by one, and its lines checked for CRLF
 * ends and RFC 5322 lengths. Then hostile inputs (header injection through
 * every string), headers-only returns, UTF-8 addresses, the boundary, the
 * refusals (null sender, bad status), and the Received: hop count.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "mime/mime.h"
#include "smtp/smtp.h"

#define NOW 1700000000          /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define ARRIVED (NOW - 3600)    /* Tue, 14 Nov 2023 21:13:20 +0000 */
#define RETRY (NOW + 2 * 86400) /* Thu, 16 Nov 2023 22:13:20 +0000 */

static const char ORIGINAL[] =
    "Received: from client.example.com (client.example.com [192.0.2.7])\r\n"
    "\tby mail.example.test (Petrel) with ESMTPSA id 1.1; Tue, 14 Nov 2023 21:13:20 +0000\r\n"
    "From: Alice <alice@example.test>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: Invoice 42\r\n"
    "Date: Tue, 14 Nov 2023 21:13:19 +0000\r\n"
    "Message-ID: <inv42@example.test>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "please find the invoice below.\r\n";

/* ------------------------------------------------------------ helpers */

struct dsn {
    char *data;
    size_t len;
    struct mime_message *m;
};

static void dsn_free(struct dsn *d)
{
    free(d->data);
    mime_free(&d->m);
}

static struct dsn build_ok(const struct dsn_report *r)
{
    struct dsn d = { 0 };
    assert_int_equal(dsn_build(r, &d.data, &d.len), 0);
    assert_non_null(d.data);
    assert_int_equal(strlen(d.data), d.len);
    d.m = mime_parse(d.data, d.len);
    assert_non_null(d.m);
    return d;
}

static struct dsn_report report(const struct dsn_rcpt *rcpts, size_t n)
{
    return (struct dsn_report){
        .reporting_mta = "mail.example.test",
        .postmaster = "MAILER-DAEMON@mail.example.test",
        .envelope_from = "alice@example.test",
        .arrival_date = ARRIVED,
        .now = NOW,
        .rcpts = rcpts,
        .n_rcpts = n,
        .original = ORIGINAL,
        .original_len = sizeof ORIGINAL - 1,
    };
}

static const struct dsn_rcpt bob_failed = {
    .rcpt = "bob@example.org",
    .action = DSN_FAILED,
    .status = "5.1.1",
    .remote_mta = "mx.example.org",
    .diagnostic = "550 5.1.1 <bob@example.org>: no such user",
    .last_attempt = NOW - 60,
};

/* Every line ends in CRLF, none is longer than 998 bytes (RFC 5322 §2.1.1). */
static void check_lines(const struct dsn *d)
{
    size_t start = 0;
    for (size_t i = 0; i < d->len; i++) {
        if (d->data[i] == '\r') {
            assert_true(i + 1 < d->len && d->data[i + 1] == '\n');
        } else if (d->data[i] == '\n') {
            assert_true(i > 0 && d->data[i - 1] == '\r');
            assert_true(i - 1 - start <= 998);
            start = i + 1;
        }
    }
    assert_int_equal(start, d->len);  /* ends with CRLF */
}

static bool token_is(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

static const char *param(const struct mime_part *p, const char *name)
{
    for (unsigned i = 0; i < p->n_params; i++)
        if (strcasecmp(p->params[i].name, name) == 0)
            return p->params[i].value;
    return NULL;
}

/* The root is multipart/report; report-type=delivery-status with n parts of these types. */
static void check_structure(const struct dsn *d, const char *t2, const char *t3)
{
    const struct mime_part *root = &d->m->root;
    assert_false(d->m->repaired);
    assert_true(token_is(root->type, "multipart"));
    assert_true(token_is(root->subtype, "report"));
    assert_true(token_is(param(root, "report-type"), "delivery-status"));
    assert_non_null(param(root, "boundary"));
    assert_int_equal(root->n_children, t3 ? 3 : 2);
    const struct mime_part *p = root->children;
    assert_true(token_is(p[0].type, "text") && token_is(p[0].subtype, "plain"));
    assert_true(token_is(param(&p[0], "charset"), "utf-8"));
    char t[64];
    snprintf(t, sizeof t, "%s/%s", p[1].type, p[1].subtype);
    assert_string_equal(t, t2);
    if (t3) {
        snprintf(t, sizeof t, "%s/%s", p[2].type, p[2].subtype);
        assert_string_equal(t, t3);
    }
}

/* A part's body, NUL-terminated (malloc'd). */
static char *body(const struct dsn *d, unsigned i)
{
    const struct mime_part *p = &d->m->root.children[i];
    size_t n = p->end - p->body_start;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, d->data + p->body_start, n);
    s[n] = 0;
    return s;
}

/* The top-level header field name, unfolded, malloc'd or NULL. */
static char *top(const struct dsn *d, const char *name)
{
    return mime_header_get(d->data, 0, d->m->root.body_start, name);
}

static void assert_top(const struct dsn *d, const char *name, const char *value)
{
    char *v = top(d, name);
    assert_non_null(v);
    assert_string_equal(v, value);
    free(v);
}

static void assert_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("missing \"%s\" in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        fail_msg("unexpected \"%s\" in:\n%s", needle, hay);
}

/* The groups of a message/delivery-status body: per-message, then per-recipient. */
static unsigned groups(char *report, char **g, unsigned max)
{
    unsigned n = 0;
    char *p = report;
    while (n < max && *p) {
        g[n++] = p;
        char *e = strstr(p, "\r\n\r\n");
        if (!e)
            break;
        e[2] = 0;  /* keep the group's last CRLF */
        p = e + 4;
    }
    return n;
}

/* ------------------------------------------------------------- tests */

static void test_failed(void **state)
{
    (void)state;
    struct dsn_report r = report(&bob_failed, 1);
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "message/rfc822");

    /* The RFC 5322 header. */
    assert_top(&d, "From", "\"Mail Delivery System\" <MAILER-DAEMON@mail.example.test>");
    assert_top(&d, "To", "<alice@example.test>");
    assert_top(&d, "Subject", "Undelivered Mail Returned to Sender");
    assert_top(&d, "Date", "Tue, 14 Nov 2023 22:13:20 +0000");
    assert_top(&d, "Auto-Submitted", "auto-replied");
    assert_top(&d, "MIME-Version", "1.0");
    char *mid = top(&d, "Message-ID");
    assert_non_null(mid);
    assert_true(mid[0] == '<' && strstr(mid, "@mail.example.test>") != NULL);
    free(mid);
    assert_null(top(&d, "Content-Transfer-Encoding"));  /* all ASCII */
    assert_non_null(d.m->root.children[2].message);     /* the original, parsed */

    /* Part 1: plain words, the remote reply quoted. */
    char *text = body(&d, 0);
    assert_has(text, "could not be delivered");
    assert_has(text, "  bob@example.org\r\n");
    assert_has(text, "the address does not exist");
    assert_has(text, "The receiving server mx.example.org said:");
    assert_has(text, "          550 5.1.1 <bob@example.org>: no such user\r\n");
    assert_has(text, "Subject: Invoice 42\r\n");
    assert_has(text, "Sent:    Tue, 14 Nov 2023 21:13 UTC\r\n");
    assert_has(text, "Your original message is attached.");
    free(text);

    /* Part 2: the per-message group, then one per recipient. */
    char *rep = body(&d, 1), *g[4];
    assert_int_equal(groups(rep, g, 4), 2);
    assert_string_equal(g[0], "Reporting-MTA: dns; mail.example.test\r\n"
                              "Arrival-Date: Tue, 14 Nov 2023 21:13:20 +0000\r\n");
    assert_string_equal(g[1], "Final-Recipient: rfc822; bob@example.org\r\n"
                              "Action: failed\r\n"
                              "Status: 5.1.1\r\n"
                              "Remote-MTA: dns; mx.example.org\r\n"
                              "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: no such user\r\n"
                              "Last-Attempt-Date: Tue, 14 Nov 2023 22:12:20 +0000\r\n");
    free(rep);

    /* Part 3: the original, byte for byte. */
    char *orig = body(&d, 2);
    assert_string_equal(orig, ORIGINAL);
    free(orig);
    dsn_free(&d);
}

static void test_failed_and_delayed(void **state)
{
    (void)state;
    const struct dsn_rcpt rcpts[] = {
        {
            .rcpt = "carol+sales@example.org",
            .orcpt = "rfc822;carol+2Bsales@example.org",
            .action = DSN_DELAYED,
            .status = "4.4.1",
            .diagnostic = "connect to mx.example.org[192.0.2.25]:25: Connection timed out",
            .last_attempt = NOW - 120,
            .will_retry_until = RETRY,
        },
        {
            .rcpt = "dave@example.net",
            .orcpt = "dave@example.net",
            .action = DSN_FAILED,
            .status = "5.2.2",
            .remote_mta = "mx1.example.net",
            .diagnostic = "552-5.2.2 The email account that you tried to reach is over quota.\r\n"
                          "552 5.2.2 Please direct the recipient to the help page.",
            .last_attempt = NOW - 30,
        },
    };
    struct dsn_report r = report(rcpts, 2);
    r.envelope_id = "QQ314159+2Bx";
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "message/rfc822");
    assert_top(&d, "Subject", "Undelivered Mail Returned to Sender");

    char *rep = body(&d, 1), *g[5];
    assert_int_equal(groups(rep, g, 5), 3);
    assert_string_equal(g[0], "Reporting-MTA: dns; mail.example.test\r\n"
                              "Original-Envelope-Id: QQ314159+x\r\n"
                              "Arrival-Date: Tue, 14 Nov 2023 21:13:20 +0000\r\n");
    assert_string_equal(
        g[1], "Original-Recipient: rfc822; carol+sales@example.org\r\n"
              "Final-Recipient: rfc822; carol+sales@example.org\r\n"
              "Action: delayed\r\n"
              "Status: 4.4.1\r\n"
              "Diagnostic-Code: X-Petrel; connect to mx.example.org[192.0.2.25]:25:\r\n"
              " Connection timed out\r\n"
              "Last-Attempt-Date: Tue, 14 Nov 2023 22:11:20 +0000\r\n"
              "Will-Retry-Until: Thu, 16 Nov 2023 22:13:20 +0000\r\n");
    /* A multi-line reply: one line of the reply per continuation line. */
    assert_string_equal(
        g[2], "Original-Recipient: rfc822; dave@example.net\r\n"
              "Final-Recipient: rfc822; dave@example.net\r\n"
              "Action: failed\r\n"
              "Status: 5.2.2\r\n"
              "Remote-MTA: dns; mx1.example.net\r\n"
              "Diagnostic-Code: smtp; 552-5.2.2 The email account that you tried to reach is\r\n"
              " over quota.\r\n"
              " 552 5.2.2 Please direct the recipient to the help page.\r\n"
              "Last-Attempt-Date: Tue, 14 Nov 2023 22:12:50 +0000\r\n");
    free(rep);

    char *text = body(&d, 0);
    /* The failure comes first, then the delay. */
    char *failed = strstr(text, "could not be delivered"), *delayed = strstr(text, "not been delivered yet");
    assert_non_null(failed);
    assert_non_null(delayed);
    assert_true(failed < delayed);
    assert_has(text, "the recipient's mailbox is full");
    assert_has(text, "          552 5.2.2 Please direct the recipient to the help page.\r\n");
    assert_has(text, "We will keep trying until Thu, 16 Nov 2023 22:13 UTC.");
    assert_has(text, "Details:\r\n          connect to mx.example.org[192.0.2.25]:25:");
    free(text);
    dsn_free(&d);
}

static void test_delayed_only(void **state)
{
    (void)state;
    const struct dsn_rcpt rc = {
        .rcpt = "erin@example.com",
        .action = DSN_DELAYED,
        .remote_mta = "mx.example.com",
        .diagnostic = "451 4.7.1 Greylisted, try again later",
        .will_retry_until = RETRY,
    };
    struct dsn_report r = report(&rc, 1);
    r.headers_only = true;
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "text/rfc822-headers");
    assert_top(&d, "Subject", "Delayed Mail (still being retried)");
    char *rep = body(&d, 1);
    assert_has(rep, "\r\nAction: delayed\r\nStatus: 4.0.0\r\n");  /* the default status */
    assert_has(rep, "Diagnostic-Code: smtp; 451 4.7.1 Greylisted, try again later\r\n");
    assert_has(rep, "Will-Retry-Until: Thu, 16 Nov 2023 22:13:20 +0000\r\n");
    assert_lacks(rep, "Last-Attempt-Date");
    free(rep);
    char *text = body(&d, 0);
    assert_has(text, "nothing you need to do");
    assert_has(text, "We will keep trying until Thu, 16 Nov 2023 22:13 UTC.");
    assert_lacks(text, "could not be delivered");
    assert_lacks(text, "mail administrator");
    free(text);
    dsn_free(&d);
}

static void test_other_actions(void **state)
{
    (void)state;
    const struct dsn_rcpt rcpts[] = {
        { .rcpt = "a@example.org", .action = DSN_DELIVERED },
        { .rcpt = "b@example.org", .action = DSN_RELAYED, .status = "2.0.0" },
        { .rcpt = "c@example.org", .action = DSN_EXPANDED },
    };
    struct dsn_report r = report(rcpts, 3);
    r.original = NULL;
    r.original_len = 0;
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", NULL);  /* no original: two parts */
    assert_top(&d, "Subject", "Delivery Status Notification");
    char *rep = body(&d, 1);
    assert_has(rep, "Action: delivered\r\nStatus: 2.0.0\r\n");
    assert_has(rep, "Action: relayed\r\nStatus: 2.0.0\r\n");
    assert_has(rep, "Action: expanded\r\nStatus: 2.0.0\r\n");
    free(rep);
    dsn_free(&d);
}

/* No input string may add a header line, in the header or in the report. */
static void test_injection(void **state)
{
    (void)state;
    const struct dsn_rcpt rc = {
        .rcpt = "bob@example.org\r\nBcc: victim1@example.net",
        .orcpt = "rfc822;bob@example.org+0D+0ABcc:+20victim2@example.net",
        .action = DSN_FAILED,
        .status = "5.1.1",
        .remote_mta = "mx.example.org\r\nX-Injected: 1",
        .diagnostic = "550 no\r\nBcc: victim3@example.net\n\rX-Injected: 2\x01\x7f",
    };
    struct dsn_report r = report(&rc, 1);
    r.envelope_from = "alice@example.test\r\nBcc: victim4@example.net";
    r.postmaster = "MAILER-DAEMON@mail.example.test>\r\nBcc: victim5@example.net";
    r.reporting_mta = "mail.example.test\nX-Injected: 3";
    r.envelope_id = "id+0D+0AX-Injected:+203";
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "message/rfc822");
    assert_null(d.m->root.bcc);
    /* No line of a header block, or of the report, begins a Bcc or X-Injected
     * field (part 1 is prose: a line there may begin with any word). */
    const struct mime_part *kids = d.m->root.children;
    struct {
        size_t start, end;
    } blocks[] = {
        { 0, d.m->root.body_start },
        { kids[0].header_start, kids[0].body_start },
        { kids[1].header_start, kids[1].end },
        { kids[2].header_start, kids[2].body_start },
    };
    for (size_t b = 0; b < 4; b++) {
        for (size_t i = blocks[b].start; i < blocks[b].end; i++) {
            if (i > blocks[b].start && d.data[i - 1] != '\n')
                continue;
            assert_false(strncasecmp(d.data + i, "Bcc", 3) == 0);
            assert_false(strncasecmp(d.data + i, "X-Injected", 10) == 0);
        }
    }
    char *to = top(&d, "To");
    assert_string_equal(to, "<alice@example.test  Bcc: victim4@example.net>");
    free(to);
    char *rep = body(&d, 1);
    assert_has(rep, "Final-Recipient: rfc822; bob@example.org  Bcc: victim1@example.net\r\n");
    assert_has(rep, "Original-Recipient: rfc822; bob@example.org  Bcc: victim2@example.net\r\n");
    assert_has(rep, "Remote-MTA: dns; mx.example.org  X-Injected: 1\r\n");
    /* The reply's lines split at its CR and LF, each a continuation line. */
    assert_has(rep, "Diagnostic-Code: smtp; 550 no\r\n Bcc: victim3@example.net\r\n"
                    " X-Injected: 2\r\n");
    assert_has(rep, "Original-Envelope-Id: id  X-Injected: 3\r\n");
    free(rep);
    dsn_free(&d);
}

static void test_headers_only(void **state)
{
    (void)state;
    struct dsn_report r = report(&bob_failed, 1);
    r.headers_only = true;
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "text/rfc822-headers");
    char *h = body(&d, 2);
    const char *end = strstr(ORIGINAL, "\r\n\r\n");
    assert_int_equal(strlen(h), (size_t)(end + 2 - ORIGINAL));
    assert_memory_equal(h, ORIGINAL, strlen(h));
    assert_lacks(h, "Hello Bob");
    free(h);
    char *text = body(&d, 0);
    assert_has(text, "The header of your original message is attached.");
    free(text);
    dsn_free(&d);

    /* Past DSN_MAX_RETURN the header alone goes back, whatever RET said. */
    size_t hlen = (size_t)(end + 4 - ORIGINAL);
    size_t big = DSN_MAX_RETURN + 1000;
    char *orig = malloc(big);
    assert_non_null(orig);
    memcpy(orig, ORIGINAL, hlen);
    for (size_t i = hlen; i < big; i++)
        orig[i] = (i % 64 == 63) ? '\n' : 'x';
    r = report(&bob_failed, 1);
    r.original = orig;
    r.original_len = big;
    d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "text/rfc822-headers");
    assert_true(d.len < 64 * 1024);
    text = body(&d, 0);
    assert_has(text, "too large to send back");
    free(text);
    dsn_free(&d);

    /* The same size returned whole when just under the limit, bare LFs made CRLF. */
    r.original_len = DSN_MAX_RETURN;
    d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/delivery-status", "message/rfc822");
    dsn_free(&d);
    free(orig);
}

static void test_non_ascii(void **state)
{
    (void)state;
    const struct dsn_rcpt rc = {
        .rcpt = "j\xc3\xb6rg@b\xc3\xbc" "cher.example",
        .orcpt = "utf-8;j\\x{F6}rg@b\\x{FC}cher.example",
        .action = DSN_FAILED,
        .status = "5.1.1",
        .remote_mta = "mx.xn--bcher-kva.example",
        .diagnostic = "550 5.1.1 <j\xc3\xb6rg@b\xc3\xbc" "cher.example> unknown \xff",
    };
    struct dsn_report r = report(&rc, 1);
    struct dsn d = build_ok(&r);
    check_lines(&d);
    check_structure(&d, "message/global-delivery-status", "message/global");
    assert_top(&d, "Content-Transfer-Encoding", "8bit");
    char *rep = body(&d, 1);
    assert_has(rep, "Original-Recipient: utf-8; j\xc3\xb6rg@b\xc3\xbc" "cher.example\r\n");
    assert_has(rep, "Final-Recipient: utf-8; j\xc3\xb6rg@b\xc3\xbc" "cher.example\r\n");
    /* UTF-8 kept in a global report, invalid bytes replaced. */
    assert_has(rep, "Diagnostic-Code: smtp; 550 5.1.1 <j\xc3\xb6rg@b\xc3\xbc"
                    "cher.example> unknown ?\r\n");
    free(rep);
    char *text = body(&d, 0);
    assert_true(mime_utf8_valid(text, strlen(text)));
    assert_has(text, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
    free(text);
    dsn_free(&d);

    /* An ASCII report: a non-ASCII byte in a reply becomes '?'. */
    struct dsn_rcpt ascii = bob_failed;
    ascii.diagnostic = "550 5.1.1 Benutzer unbekannt: M\xc3\xbcller";
    r = report(&ascii, 1);
    d = build_ok(&r);
    check_structure(&d, "message/delivery-status", "message/rfc822");
    rep = body(&d, 1);
    assert_has(rep, "Diagnostic-Code: smtp; 550 5.1.1 Benutzer unbekannt: M??ller\r\n");
    assert_null(strstr(rep, "\xc3"));
    free(rep);
    dsn_free(&d);

    /* A UTF-8 sender, headers only: message/global-headers; To in UTF-8 (RFC 6532). */
    r = report(&bob_failed, 1);
    r.envelope_from = "\xc3\xa5sa@example.test";
    r.headers_only = true;
    d = build_ok(&r);
    check_structure(&d, "message/global-delivery-status", "message/global-headers");
    assert_top(&d, "To", "<\xc3\xa5sa@example.test>");
    dsn_free(&d);
}

static void test_boundary(void **state)
{
    (void)state;
    struct dsn_report r = report(&bob_failed, 1);
    struct dsn d = build_ok(&r);
    char boundary[128];
    snprintf(boundary, sizeof boundary, "%s", param(&d.m->root, "boundary"));
    assert_true(strlen(boundary) >= 16 && strlen(boundary) <= 70);  /* RFC 2046 §5.1.1 */
    assert_null(strstr(ORIGINAL, boundary));
    char *mid1 = top(&d, "Message-ID");
    dsn_free(&d);

    /* An original that quotes that boundary, and the prefix of every one. */
    char orig[1024];
    snprintf(orig, sizeof orig,
             "Subject: tricky\r\n\r\n--%s\r\n--%s--\r\n--=_petrel_dsn_\r\n", boundary,
             boundary);
    r.original = orig;
    r.original_len = strlen(orig);
    d = build_ok(&r);
    check_structure(&d, "message/delivery-status", "message/rfc822");
    const char *b2 = param(&d.m->root, "boundary");
    assert_string_not_equal(b2, boundary);
    assert_null(strstr(orig, b2));
    char *o = body(&d, 2);
    assert_string_equal(o, orig);
    free(o);
    /* Another report, another Message-ID. */
    char *mid2 = top(&d, "Message-ID");
    assert_string_not_equal(mid1, mid2);
    free(mid1);
    free(mid2);
    dsn_free(&d);
}

static void test_refused(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    struct dsn_report r = report(&bob_failed, 1);

    /* Never a bounce to the null sender. */
    const char *nulls[] = { "", "<>" };
    for (size_t i = 0; i < 2; i++) {
        r.envelope_from = nulls[i];
        errno = 0;
        assert_int_equal(dsn_build(&r, &out, &len), -1);
        assert_int_equal(errno, EINVAL);
        assert_null(out);
    }
    r.envelope_from = NULL;
    assert_int_equal(dsn_build(&r, &out, &len), -1);

    r = report(&bob_failed, 0);
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    r = report(NULL, 1);
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    r = report(&bob_failed, 1);
    r.reporting_mta = "";
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    r = report(&bob_failed, 1);
    r.now = -1;
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    assert_int_equal(dsn_build(NULL, &out, &len), -1);

    const char *bad_status[] = { "5.1", "6.0.0", "5.1.1 ", "5..1", "5.1.1234", "x", "" };
    for (size_t i = 0; i < sizeof bad_status / sizeof bad_status[0]; i++) {
        struct dsn_rcpt rc = bob_failed;
        rc.status = bad_status[i];
        r = report(&rc, 1);
        errno = 0;
        assert_int_equal(dsn_build(&r, &out, &len), -1);
        assert_int_equal(errno, EINVAL);
    }
    struct dsn_rcpt rc = bob_failed;
    rc.action = (enum dsn_action)7;
    r = report(&rc, 1);
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    rc = bob_failed;
    rc.rcpt = "";
    r = report(&rc, 1);
    assert_int_equal(dsn_build(&r, &out, &len), -1);
    assert_null(out);

    /* Long statuses are fine: 5.7.26 (RFC 7372), 5.1.10 (RFC 7505). */
    rc = bob_failed;
    rc.status = "5.7.26";
    r = report(&rc, 1);
    struct dsn d = build_ok(&r);
    char *text = body(&d, 0);
    assert_has(text, "for security or policy");
    free(text);
    dsn_free(&d);
}

/* Folding keeps the value: unfolded, the Diagnostic-Code is the reply. */
static void test_long_values(void **state)
{
    (void)state;
    char diag[3000];
    strcpy(diag, "550 5.7.1");
    while (strlen(diag) < 300)
        strcat(diag, " policy");
    strcat(diag, " ");
    size_t at = strlen(diag);
    memset(diag + at, 'z', 1500);  /* a word longer than any line may be */
    diag[at + 1500] = 0;
    struct dsn_rcpt rc = bob_failed;
    rc.diagnostic = diag;
    struct dsn_report r = report(&rc, 1);
    struct dsn d = build_ok(&r);
    check_lines(&d);
    char *rep = body(&d, 1), *g[3];
    assert_int_equal(groups(rep, g, 3), 2);
    char *v = mime_header_get(g[1], 0, strlen(g[1]), "Diagnostic-Code");
    assert_non_null(v);
    /* The spaces unfold back; only the over-long word gained a break. */
    assert_memory_equal(v, "smtp; ", 6);
    assert_memory_equal(v + 6, diag, at);
    free(v);
    free(rep);
    dsn_free(&d);
}

static void test_dates(void **state)
{
    (void)state;
    struct dsn_report r = report(&bob_failed, 1);
    r.now = 951782400;  /* a leap day */
    r.arrival_date = 0; /* unknown: no Arrival-Date */
    struct dsn d = build_ok(&r);
    assert_top(&d, "Date", "Tue, 29 Feb 2000 00:00:00 +0000");
    char *rep = body(&d, 1);
    assert_lacks(rep, "Arrival-Date");
    free(rep);
    dsn_free(&d);
    r.now = 253402300799;  /* the last second of 9999 */
    d = build_ok(&r);
    assert_top(&d, "Date", "Fri, 31 Dec 9999 23:59:59 +0000");
    dsn_free(&d);
    r.now = 0;
    d = build_ok(&r);
    assert_top(&d, "Date", "Thu, 01 Jan 1970 00:00:00 +0000");
    dsn_free(&d);
}

static void test_count_received(void **state)
{
    (void)state;
    static const char msg[] =
        "Received: from a by b; Tue, 14 Nov 2023 21:13:20 +0000\r\n"
        "received : from c\r\n"
        "\tby d\r\n"
        "\tReceived: not a field, a folded line\r\n"
        "RECEIVED:from e\r\n"
        "Received-SPF: pass\r\n"
        "X-Received: by f\r\n"
        "Subject: Received: no\r\n"
        "\r\n"
        "Received: in the body\r\n";
    assert_int_equal(smtp_count_received(msg, sizeof msg - 1), 3);
    /* LF line ends, and a header that runs to the end. */
    static const char lf[] = "Received: a\nReceived: b\n c\n\nReceived: body\n";
    assert_int_equal(smtp_count_received(lf, sizeof lf - 1), 2);
    assert_int_equal(smtp_count_received(lf, 12), 1);
    assert_int_equal(smtp_count_received("Received: x", 11), 1);
    assert_int_equal(smtp_count_received("\r\nReceived: x\r\n", 15), 0);
    assert_int_equal(smtp_count_received("", 0), 0);
    assert_int_equal(smtp_count_received("Received", 8), 0);

    /* 60 hops, as a loop would pile them up. */
    char big[60 * 32 + 64];
    size_t n = 0;
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "Received: from hop%d\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\nbody\r\n");
    assert_int_equal(smtp_count_received(big, n), 60);
    assert_int_equal(smtp_count_received(ORIGINAL, sizeof ORIGINAL - 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed),
        cmocka_unit_test(test_failed_and_delayed),
        cmocka_unit_test(test_delayed_only),
        cmocka_unit_test(test_other_actions),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_headers_only),
        cmocka_unit_test(test_non_ascii),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_count_received),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
