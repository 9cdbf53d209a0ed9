/*
 * test_mime_imap.c — IMAP views of a parse: ENVELOPE, BODY and BODYSTRUCTURE
 * of every message in tests/data/mime (the expected strings are what
 * Dovecot sends for these messages; docs/mime.md "IMAP views"), the same
 * from a mime_encode / mime_decode round trip, string quoting, address
 * syntax, BODY[section] ranges, HEADER.FIELDS and BINARY decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mime/mime.h"

#define LIMIT (1u << 20)

/* ------------------------------------------------------------ helpers */

static char *read_data(const char *name, size_t *len)
{
    const char *root = getenv("PETREL_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/mime/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (is PETREL_SOURCE_DIR set?)", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void assert_buf(const struct buf *b, const char *want, size_t want_len)
{
    if (b->len != want_len || (want_len && memcmp(b->data, want, want_len) != 0))
        fail_msg("got\n  %.*s\nwant\n  %.*s", (int)b->len, b->data, (int)want_len, want);
}

static void assert_bufs(const struct buf *b, const char *want)
{
    assert_buf(b, want, strlen(want));
}

static void check_envelope(const struct mime_part *m, unsigned flags, const char *want)
{
    struct buf b = { 0 };
    assert_int_equal(mime_imap_envelope(&b, LIMIT, m, flags), 0);
    assert_bufs(&b, want);
    buf_free(&b);
}

static void check_body(const struct mime_message *m, bool ext, const char *want)
{
    struct buf b = { 0 };
    assert_int_equal(mime_imap_bodystructure(&b, LIMIT, m, ext, 0), 0);
    assert_bufs(&b, want);
    buf_free(&b);
}

/* A message given inline, CRLF line ends from "\n". */
struct inline_msg {
    char *data;
    size_t len;
    struct mime_message *m;
};

static void load_text(struct inline_msg *im, const char *text)
{
    size_t n = strlen(text);
    im->data = malloc(2 * n + 1);
    assert_non_null(im->data);
    im->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n')
            im->data[im->len++] = '\r';
        im->data[im->len++] = text[i];
    }
    im->m = mime_parse(im->data, im->len);
    assert_non_null(im->m);
}

static void unload_text(struct inline_msg *im)
{
    mime_free(&im->m);
    free(im->data);
}

/* ---------------------------------------------- every test message */

struct expect {
    const char *file;
    const char *envelope;
    const char *bodystructure;
    const char *body;
};

static const struct expect expected[] = {
    { "alternative.eml",
      "(NIL \"Alternative\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"bob\" \"example.net\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 11 "
        "1 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
        "17 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"alt-b1\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 11 "
        "1)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 17 1) "
        "\"alternative\")" },
    { "bare-lf.eml",
      "(NIL \"Bare LF\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 2 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") "
        "NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"lf\") NIL NIL "
        "NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 "
        "2)(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL "
        "NIL \"7bit\" 6 1) \"mixed\")" },
    { "encoded-word.eml",
      "(NIL \"=?UTF-8?B?SMOpbGxvIHfDtnJsZA==?= =?UTF-8?Q?_again?=\" "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) ((NIL NIL "
        "\"bob\" \"example.net\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 7 1 NIL NIL NIL "
        "NIL)",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 7 1)" },
    { "imap-calendar.eml",
      "(\"Thu, 4 Dec 2025 09:00:00 -0500\" \"Invitation: Sync @ Thu\" "
        "((\"Organizer\" NIL \"org\" \"example.com\")) ((\"Organizer\" NIL \"org\" "
        "\"example.com\")) ((\"Organizer\" NIL \"org\" \"example.com\")) ((NIL NIL "
        "\"team\" \"example.com\")) NIL NIL NIL \"<cal@example.com>\")",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 16 1 NIL NIL "
        "NIL NIL)(\"text\" \"calendar\" (\"charset\" \"UTF-8\" \"method\" \"REQUEST\") "
        "NIL NIL \"base64\" 64 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"a\") "
        "NIL NIL NIL)(\"application\" \"ics\" (\"name\" \"invite.ics\") NIL NIL "
        "\"base64\" 44 NIL (\"attachment\" (\"filename\" \"invite.ics\")) (\"en-US\" "
        "\"de\") \"http://example.com/invite.ics\") \"mixed\" (\"boundary\" \"m\") NIL "
        "NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 16 1)(\"text\" "
        "\"calendar\" (\"charset\" \"UTF-8\" \"method\" \"REQUEST\") NIL NIL "
        "\"base64\" 64 1) \"alternative\")(\"application\" \"ics\" (\"name\" "
        "\"invite.ics\") NIL NIL \"base64\" 44) \"mixed\")" },
    { "imap-empty-multipart.eml",
      "(NIL {13}\r\nlots of space ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL) \"mixed\" (\"boundary\" \"e\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) "
        "\"mixed\")" },
    { "imap-nested-rfc822.eml",
      "(\"Tue, 2 Dec 2025 08:15:00 +0100\" \"Fwd: nested\" ((\"Smith, Alice\" NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"list-bounces\" "
        "\"lists.example.org\")) ((NIL NIL \"discuss\" \"lists.example.org\")) "
        "((\"Bob\" NIL \"bob\" \"example.net\")(\"Carol C.\" NIL \"carol\" "
        "\"example.com\")) ((NIL NIL \"dave\" \"example.net\")) NIL "
        "\"<prev@example.org>\" \"<outer-1@example.org>\")",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 280 (\"Mon, 1 "
        "Dec 2025 18:00:00 +0000\" \"inner\" ((\"Erin\" NIL \"erin\" \"example.com\")) "
        "((\"Erin\" NIL \"erin\" \"example.com\")) ((\"Erin\" NIL \"erin\" "
        "\"example.com\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL) "
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL "
        "NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1 "
        "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"b2\") NIL NIL NIL) 16 NIL "
        "NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 "
        "1)(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 280 (\"Mon, 1 Dec "
        "2025 18:00:00 +0000\" \"inner\" ((\"Erin\" NIL \"erin\" \"example.com\")) "
        "((\"Erin\" NIL \"erin\" \"example.com\")) ((\"Erin\" NIL \"erin\" "
        "\"example.com\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL) "
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 "
        "1)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1) "
        "\"alternative\") 16) \"mixed\")" },
    { "imap-rfc2231.eml",
      "(NIL {29}\r\n=?UTF-8?B?QW5oYW5n?= \"quoted\" ((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL "
        "\"joerg\" \"example.de\")) ((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"joerg\" "
        "\"example.de\")) ((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"joerg\" \"example.de\")) "
        "((NIL NIL \"Friends\" NIL)(NIL NIL \"anna\" \"example.de\")(\"Ben B.\" NIL "
        "\"ben\" \"example.de\")(NIL NIL NIL NIL)(NIL NIL \"solo\" \"example.de\")) "
        "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)",
      "((\"application\" \"pdf\" (\"name*\" \"UTF-8''%C3%9Cbersicht%202025.pdf\") "
        "NIL NIL \"base64\" 20 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" "
        "(\"filename*\" \"UTF-8''%C3%9Cbersicht%202025.pdf\")) NIL NIL)(\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 16 1 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"x\") NIL NIL NIL)",
      "((\"application\" \"pdf\" (\"name*\" \"UTF-8''%C3%9Cbersicht%202025.pdf\") "
        "NIL NIL \"base64\" 20)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"base64\" 16 1) \"mixed\")" },
    { "imap-signed.eml",
      "(\"Wed, 3 Dec 2025 10:00:00 +0000\" \"signed\" ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL "
        "\"<signed@example.org>\")",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" "
        "43 2 NIL NIL NIL NIL)(\"application\" \"pgp-signature\" (\"name\" "
        "\"signature.asc\") NIL \"OpenPGP digital signature\" \"7bit\" 76 NIL "
        "(\"attachment\" (\"filename\" \"signature.asc\")) NIL NIL) \"signed\" "
        "(\"micalg\" \"pgp-sha256\" \"protocol\" \"application/pgp-signature\" "
        "\"boundary\" \"sig\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" "
        "43 2)(\"application\" \"pgp-signature\" (\"name\" \"signature.asc\") NIL "
        "\"OpenPGP digital signature\" \"7bit\" 76) \"signed\")" },
    { "malformed-headers.eml",
      "(NIL \"spaced name\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 27 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 27 1)" },
    { "missing-boundary.eml",
      "(NIL \"No boundary\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL "
        "NIL NIL)",
      "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 61 NIL NIL NIL NIL)",
      "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 61)" },
    { "nested-mixed.eml",
      "(NIL \"Report\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" "
        "\"example.net\")) NIL NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1 NIL "
        "NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 "
        "1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL "
        "NIL)(\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<pdf1@example.org>\" "
        "\"The report\" \"base64\" 12 NIL (\"attachment\" (\"filename\" \"report.pdf\" "
        "\"size\" \"12\")) NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 "
        "1)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 1) "
        "\"alternative\")(\"application\" \"pdf\" (\"name\" \"report.pdf\") "
        "\"<pdf1@example.org>\" \"The report\" \"base64\" 12) \"mixed\")" },
    { "rfc822.eml",
      "(NIL \"Fwd: Original\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"bob\" \"example.net\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 1 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 200 (\"Sun, 30 Nov 2025 "
        "09:00:00 +0100\" \"Original\" ((NIL NIL \"carol\" \"example.com\")) ((NIL NIL "
        "\"carol\" \"example.com\")) ((NIL NIL \"carol\" \"example.com\")) ((NIL NIL "
        "\"alice\" \"example.org\")) NIL NIL NIL \"<orig@example.com>\") (\"text\" "
        "\"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"7bit\" 14 1 NIL NIL NIL NIL) "
        "8 NIL (\"inline\" NIL) NIL NIL) \"mixed\" (\"boundary\" \"fwd\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 "
        "1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 200 (\"Sun, 30 Nov 2025 "
        "09:00:00 +0100\" \"Original\" ((NIL NIL \"carol\" \"example.com\")) ((NIL NIL "
        "\"carol\" \"example.com\")) ((NIL NIL \"carol\" \"example.com\")) ((NIL NIL "
        "\"alice\" \"example.org\")) NIL NIL NIL \"<orig@example.com>\") (\"text\" "
        "\"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"7bit\" 14 1) 8) \"mixed\")" },
    { "simple.eml",
      "(\"Mon, 1 Dec 2025 10:00:00 +0000\" \"Hello\" ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL "
        "\"alice\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.net\")) NIL NIL "
        "NIL \"<simple-1@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 2 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 2)" },
    { "unterminated.eml",
      "(NIL NIL ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1 "
        "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"u\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1) "
        "\"mixed\")" },
    { "utf8-headers.eml",
        "(NIL {21}\r\nGr\xc3" "\xbc" "\xc3" "\x9f" "e aus K\xc3" "\xb6" "ln \xe2" "\x98" "\x95"
        " (({15}\r\nJ\xc3" "\xbc" "rgen M\xc3" "\xbc" "ller NIL {7}\r\nj\xc3" "\xbc"
        "rgen {11}\r\nex\xc3" "\xa4" "mple.de)) (({15}\r\nJ\xc3" "\xbc" "rgen M\xc3" "\xbc"
        "ller NIL {7}\r\nj\xc3" "\xbc" "rgen {11}\r\nex\xc3" "\xa4" "mple.de)) (({15}\r\nJ\xc3"
        "\xbc" "rgen M\xc3" "\xbc" "ller NIL {7}\r\nj\xc3" "\xbc" "rgen {11}\r\nex\xc3" "\xa4"
        "mple.de)) (({6}\r\n\xe5" "\xb1" "\xb1" "\xe7" "\x94" "\xb0"
        " NIL \"yamada\" \"example.jp\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 9 1 NIL "
        "(\"inline\" (\"filename*\" \"utf-8''%E2%98%95.txt\")) NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 9 1)" },
};

static void test_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const struct expect *e = &expected[i];
        size_t len;
        char *data = read_data(e->file, &len);
        struct mime_message *m = mime_parse(data, len);
        assert_non_null(m);
        check_envelope(&m->root, 0, e->envelope);
        check_body(m, true, e->bodystructure);
        check_body(m, false, e->body);

        /* The stored form gives the same answers. */
        size_t elen;
        char *enc = mime_encode(m, &elen);
        assert_non_null(enc);
        struct mime_message *d = mime_decode(enc, elen);
        assert_non_null(d);
        check_envelope(&d->root, 0, e->envelope);
        check_body(d, true, e->bodystructure);
        check_body(d, false, e->body);
        mime_free(&d);
        free(enc);
        mime_free(&m);
        free(data);
    }
}

/* A limit too small fails cleanly, never writes past it. */
static void test_limit(void **state)
{
    (void)state;
    size_t len;
    char *data = read_data("imap-nested-rfc822.eml", &len);
    struct mime_message *m = mime_parse(data, len);
    for (size_t lim = 0; lim < 900; lim += 7) {
        struct buf b = { 0 };
        int rc = mime_imap_bodystructure(&b, lim, m, true, 0);
        assert_true(b.len <= lim);
        assert_true(rc == 0 || rc == -1);
        buf_free(&b);
        rc = mime_imap_envelope(&b, lim, &m->root, 0);
        assert_true(b.len <= lim);
        buf_free(&b);
    }
    mime_free(&m);
    free(data);
}

/* -------------------------------------------------- strings, addresses */

static void test_utf8_accept(void **state)
{
    (void)state;
    size_t len;
    char *data = read_data("utf8-headers.eml", &len);
    struct mime_message *m = mime_parse(data, len);
    check_envelope(&m->root, MIME_IMAP_UTF8,
                   "(NIL \"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x98\x95\" "
                   "((\"J\xc3\xbcrgen M\xc3\xbcller\" NIL "
                   "\"j\xc3\xbcrgen\" \"ex\xc3\xa4mple.de\")) "
                   "((\"J\xc3\xbcrgen M\xc3\xbcller\" NIL "
                   "\"j\xc3\xbcrgen\" \"ex\xc3\xa4mple.de\")) "
                   "((\"J\xc3\xbcrgen M\xc3\xbcller\" NIL "
                   "\"j\xc3\xbcrgen\" \"ex\xc3\xa4mple.de\")) "
                   "((\"\xe5\xb1\xb1\xe7\x94\xb0\" NIL \"yamada\" \"example.jp\")) "
                   "NIL NIL NIL NIL)");
    mime_free(&m);
    free(data);

    /* Invalid UTF-8 stays a literal even with UTF8=ACCEPT. */
    struct inline_msg im;
    load_text(&im, "Subject: bad \xc3\x28 byte\nMessage-ID: <\xff@x>\n\n");
    check_envelope(&im.m->root, MIME_IMAP_UTF8,
                   "(NIL {11}\r\nbad \xc3\x28 byte NIL NIL NIL NIL NIL NIL NIL {5}\r\n<\xff@x>)");
    unload_text(&im);
}

static void test_quoting(void **state)
{
    (void)state;
    struct inline_msg im;
    /* Date/Message-ID: up to four escapes stay quoted, more is a literal;
     * a subject with a quote or tabs is a literal (Dovecot "for humans"). */
    load_text(&im, "Date: \"a\\b\"\"\n"
                   "Message-ID: \"\"\"\"\"\n"
                   "In-Reply-To: one\n two\n"
                   "Subject: say \"hi\"\n"
                   "From: \"Last, First\" <first.last@example.org>\n\n");
    check_envelope(&im.m->root, 0,
                   "(\"\\\"a\\\\b\\\"\\\"\" {8}\r\nsay \"hi\" "
                   "((\"Last, First\" NIL \"first.last\" \"example.org\"))"
                   " ((\"Last, First\" NIL \"first.last\" \"example.org\"))"
                   " ((\"Last, First\" NIL \"first.last\" \"example.org\"))"
                   " NIL NIL NIL \"one two\" {5}\r\n\"\"\"\"\")");
    unload_text(&im);

    /* Empty and blank values. */
    load_text(&im, "Subject:\nDate: \nTo:\nSender: \n\n");
    check_envelope(&im.m->root, 0, "(\"\" \"\" NIL NIL NIL NIL NIL NIL NIL NIL)");
    unload_text(&im);
}

struct addr_case {
    const char *value;
    const char *want;
};

static const struct addr_case addr_cases[] = {
    { "alice@example.org", "((NIL NIL \"alice\" \"example.org\"))" },
    { "Alice <alice@example.org>", "((\"Alice\" NIL \"alice\" \"example.org\"))" },
    { "alice@example.org (Alice A)", "((\"Alice A\" NIL \"alice\" \"example.org\"))" },
    { "\"a\\\"b\" <x@y>", "(({3}\r\na\"b NIL \"x\" \"y\"))" },
    { "<@r1,@r2:x@y>", "((NIL \"@r1,@r2\" \"x\" \"y\"))" },
    { "x@[127.0.0.1]", "((NIL NIL \"x\" \"[127.0.0.1]\"))" },
    /* An empty element is an address with nothing in it (Dovecot). */
    { "a@b, , c@d",
      "((NIL NIL \"a\" \"b\")(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
      "(NIL NIL \"c\" \"d\"))" },
    { "user", "((NIL NIL \"user\" \"MISSING_DOMAIN\"))" },
    { "Just A Name", "((\"Just A Name\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
    { "Broken <x@", "((\"Broken\" NIL \"x\" \"SYNTAX_ERROR\"))" },
    { "<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
    { "g: ;", "((NIL NIL \"g\" NIL)(NIL NIL NIL NIL))" },
    { "A Group:a@b,c@d;, e@f",
      "((NIL NIL \"A Group\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL)"
      "(NIL NIL \"e\" \"f\"))" },
    { "=?utf-8?q?x?= <x@y>", "((\"=?utf-8?q?x?=\" NIL \"x\" \"y\"))" },
    { "a.b.@c", "((NIL NIL \"a.b.\" \"c\"))" },
};

static void test_addresses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "To: %s\n\n", addr_cases[i].value);
        struct inline_msg im;
        load_text(&im, text);
        char want[1024];
        snprintf(want, sizeof want, "(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)",
                 addr_cases[i].want);
        check_envelope(&im.m->root, 0, want);
        unload_text(&im);
    }
}

/* --------------------------------------------------------- sections */

struct sect {
    size_t len;
    char *data;
    struct mime_message *m;
};

static void sect_load(struct sect *s, const char *file)
{
    s->data = read_data(file, &s->len);
    s->m = mime_parse(s->data, s->len);
    assert_non_null(s->m);
}

static void sect_unload(struct sect *s)
{
    mime_free(&s->m);
    free(s->data);
}

/* BODY[path.text] is exactly want (NULL: nonexistent, empty). */
static void check_section(const struct sect *s, const uint32_t *path, unsigned n,
                          enum mime_section_text text, const char *want)
{
    struct mime_range r;
    const struct mime_part *p;
    int rc = mime_imap_section(s->m, path, n, text, &r, &p);
    if (!want) {
        assert_int_equal(rc, 0);
        assert_int_equal(r.end - r.start, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_non_null(p);
    assert_true(r.start <= r.end && r.end <= s->len);
    size_t n_want = strlen(want);
    if (r.end - r.start != n_want || memcmp(s->data + r.start, want, n_want) != 0)
        fail_msg("section is \"%.*s\", want \"%s\"", (int)(r.end - r.start), s->data + r.start,
                 want);
}

static void test_sections(void **state)
{
    (void)state;
    struct sect s;
    sect_load(&s, "imap-nested-rfc822.eml");
    static const uint32_t p1[] = { 1 }, p2[] = { 2 }, p21[] = { 2, 1 }, p22[] = { 2, 2 },
                          p23[] = { 2, 3 }, p3[] = { 3 }, p11[] = { 1, 1 }, p12[] = { 1, 2 },
                          p0[] = { 0 };
    check_section(&s, p1, 1, MIME_SECTION_ALL, "See below.");
    check_section(&s, p1, 1, MIME_SECTION_MIME, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    /* 1.1 of a leaf is the leaf itself (Dovecot); 1.2 does not exist. */
    check_section(&s, p11, 2, MIME_SECTION_ALL, "See below.");
    check_section(&s, p12, 2, MIME_SECTION_ALL, NULL);
    check_section(&s, p2, 1, MIME_SECTION_MIME,
                  "Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n");
    check_section(&s, p2, 1, MIME_SECTION_HEADER,
                  "From: Erin <erin@example.com>\r\nTo: alice@example.org\r\n"
                  "Subject: inner\r\nDate: Mon, 1 Dec 2025 18:00:00 +0000\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n"
                  "\r\n");
    check_section(&s, p21, 2, MIME_SECTION_ALL, "inner text");
    check_section(&s, p21, 2, MIME_SECTION_MIME, "Content-Type: text/plain\r\n\r\n");
    check_section(&s, p22, 2, MIME_SECTION_ALL, "<p>inner</p>");
    check_section(&s, p23, 2, MIME_SECTION_ALL, NULL);
    check_section(&s, p3, 1, MIME_SECTION_ALL, NULL);
    /* HEADER / TEXT after numbers need a message/rfc822 part. */
    check_section(&s, p1, 1, MIME_SECTION_HEADER, NULL);
    check_section(&s, p21, 2, MIME_SECTION_TEXT, NULL);
    check_section(&s, NULL, 0, MIME_SECTION_TEXT,
                  "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n"
                  "--b1\r\nContent-Type: message/rfc822\r\n"
                  "Content-Description: forwarded\r\n\r\n"
                  "From: Erin <erin@example.com>\r\nTo: alice@example.org\r\n"
                  "Subject: inner\r\nDate: Mon, 1 Dec 2025 18:00:00 +0000\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
                  "--b2\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
                  "--b2\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--b2--\r\n--b1--\r\n");
    struct mime_range r;
    assert_int_equal(mime_imap_section(s.m, NULL, 0, MIME_SECTION_ALL, &r, NULL), 1);
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, s.len);
    assert_int_equal(mime_imap_section(s.m, NULL, 0, MIME_SECTION_MIME, &r, NULL), -1);
    assert_int_equal(mime_imap_section(s.m, p0, 1, MIME_SECTION_ALL, &r, NULL), -1);
    sect_unload(&s);

    /* Part 1 of a non-multipart message is its body; 2 does not exist. */
    sect_load(&s, "simple.eml");
    check_section(&s, p1, 1, MIME_SECTION_ALL, "Hello Bob,\r\nthis is plain text.\r\n");
    check_section(&s, p2, 1, MIME_SECTION_ALL, NULL);
    check_section(&s, p1, 1, MIME_SECTION_MIME,
                  "Date: Mon, 1 Dec 2025 10:00:00 +0000\r\nFrom: Alice <alice@example.org>\r\n"
                  "To: Bob <bob@example.net>\r\nSubject: Hello\r\n"
                  "Message-ID: <simple-1@example.org>\r\n\r\n");
    sect_unload(&s);

    /* An empty multipart shows one part in BODYSTRUCTURE, but BODY[1] is empty. */
    sect_load(&s, "imap-empty-multipart.eml");
    check_section(&s, p1, 1, MIME_SECTION_ALL, NULL);
    sect_unload(&s);
}

static void check_fields(const struct sect *s, const uint32_t *path, unsigned n, bool not,
                         const char *const *names, size_t n_names, const char *want)
{
    struct mime_range r;
    assert_int_equal(mime_imap_section(s->m, path, n,
                                       not ? MIME_SECTION_HEADER_FIELDS_NOT
                                           : MIME_SECTION_HEADER_FIELDS, &r, NULL), 1);
    struct buf b = { 0 };
    assert_int_equal(mime_imap_header_fields(&b, LIMIT, s->data, s->len, r, names, n_names, not),
                     0);
    assert_bufs(&b, want);
    buf_free(&b);
}

static void test_header_fields(void **state)
{
    (void)state;
    struct sect s;
    sect_load(&s, "imap-signed.eml");
    static const char *const from_subject[] = { "From", "SUBJECT" };
    check_fields(&s, NULL, 0, false, from_subject, 2,
                 "From: alice@example.org\r\nSubject: signed\r\n\r\n");
    /* Folding kept. */
    static const char *const ctype[] = { "content-type" };
    check_fields(&s, NULL, 0, false, ctype, 1,
                 "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
                 " protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n");
    static const char *const none[] = { "X-Nothing" };
    check_fields(&s, NULL, 0, false, none, 1, "\r\n");
    static const char *const several[] = { "from", "to", "subject", "date", "message-id",
                                           "mime-version" };
    check_fields(&s, NULL, 0, true, several, 6,
                 "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
                 " protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n");
    sect_unload(&s);

    /* Of an inner message; bare LF written as CRLF. */
    sect_load(&s, "imap-nested-rfc822.eml");
    static const uint32_t p2[] = { 2 };
    static const char *const received[] = { "Received", "MIME-Version", "Content-Type" };
    check_fields(&s, p2, 1, true, received, 3,
                 "From: Erin <erin@example.com>\r\nTo: alice@example.org\r\n"
                 "Subject: inner\r\nDate: Mon, 1 Dec 2025 18:00:00 +0000\r\n\r\n");
    sect_unload(&s);

    sect_load(&s, "bare-lf.eml");
    check_fields(&s, NULL, 0, false, from_subject, 2,
                 "From: alice@example.org\r\nSubject: Bare LF\r\n\r\n");
    sect_unload(&s);

    /* HEADER.FIELDS.NOT keeps lines that are no field; a header at the end
     * of the data gets its line end. */
    struct inline_msg im;
    load_text(&im, "Received: x\nnot a field\nX-A: 1");
    struct sect t = { im.len, im.data, im.m };
    static const char *const recv[] = { "received" };
    check_fields(&t, NULL, 0, true, recv, 1, "not a field\r\nX-A: 1\r\n\r\n");
    unload_text(&im);
}

/* ----------------------------------------------------------- BINARY */

static const struct mime_part *part_at(const struct mime_message *m, const uint32_t *path,
                                       unsigned n)
{
    struct mime_range r;
    const struct mime_part *p = NULL;
    assert_int_equal(mime_imap_section(m, path, n, MIME_SECTION_ALL, &r, &p), 1);
    return p;
}

static void check_binary(const char *data, size_t len, const struct mime_part *p, int want_rc,
                         const char *want, size_t want_len)
{
    struct buf b = { 0 };
    assert_int_equal(mime_imap_binary(&b, LIMIT, data, len, p), want_rc);
    uint64_t size = 99;
    assert_int_equal(mime_imap_binary_size(data, len, p, &size), want_rc);
    if (want_rc == MIME_BINARY_OK) {
        assert_buf(&b, want, want_len);
        assert_int_equal(size, want_len);
    }
    buf_free(&b);
}

static void test_binary(void **state)
{
    (void)state;
    struct sect s;
    sect_load(&s, "imap-calendar.eml");
    static const uint32_t p12[] = { 1, 2 }, p2[] = { 2 }, p11[] = { 1, 1 };
    const char *ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";
    check_binary(s.data, s.len, part_at(s.m, p12, 2), 0, ics, strlen(ics));
    const char *ics2 = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
    check_binary(s.data, s.len, part_at(s.m, p2, 1), 0, ics2, strlen(ics2));
    check_binary(s.data, s.len, part_at(s.m, p11, 2), 0, "You are invited.", 16);
    /* Too small a limit. */
    struct buf b = { 0 };
    assert_int_equal(mime_imap_binary(&b, 10, s.data, s.len, part_at(s.m, p12, 2)),
                     MIME_BINARY_LIMIT);
    assert_true(b.len <= 10);
    buf_free(&b);
    sect_unload(&s);

    sect_load(&s, "imap-signed.eml");
    static const uint32_t p1[] = { 1 };
    const char *qp = "Signed caf\xc3\xa9 text with a soft break.";
    check_binary(s.data, s.len, part_at(s.m, p1, 1), 0, qp, strlen(qp));
    sect_unload(&s);

    /* Invalid base64 (a '!'): [UNKNOWN-CTE]. */
    sect_load(&s, "imap-rfc2231.eml");
    check_binary(s.data, s.len, part_at(s.m, p2, 1), MIME_BINARY_INVALID, NULL, 0);
    check_binary(s.data, s.len, part_at(s.m, p1, 1), 0, "%PDF-1.4\n%\xc7\xec\x8f\xa2\n", 15);
    sect_unload(&s);

    struct bin_case {
        const char *cte, *body;
        int rc;
        const char *want;
        size_t want_len;
    } cases[] = {
        { "base64", "QUJD\nREVG\n", 0, "ABCDEF", 6 },
        { "base64", "QUI=", 0, "AB", 2 },
        { "base64", "QQ==\nQkM=", 0, "ABC", 3 },      /* concatenated */
        { "base64", "QUI", 0, "AB", 2 },              /* padding missing */
        { "base64", "QUJDR", MIME_BINARY_INVALID, NULL, 0 },
        { "base64", "Q===", MIME_BINARY_INVALID, NULL, 0 },
        { "base64", "QQ==QQ", 0, "AA", 2 },
        { "base64", "QQ=A", MIME_BINARY_INVALID, NULL, 0 },
        { "base64", "AA\x01", MIME_BINARY_INVALID, NULL, 0 },
        { "base64", "", 0, "", 0 },
        { "BASE64", "AAEC", 0, "\0\1\2", 3 },
        { "quoted-printable", "a=3Db=3db  \nc=\nd=", 0, "a=b=b\r\ncd", 9 },
        { "quoted-printable", "x=4", MIME_BINARY_INVALID, NULL, 0 },
        { "quoted-printable", "x=G0", MIME_BINARY_INVALID, NULL, 0 },
        { "quoted-printable", "soft= \t\nbreak", 0, "softbreak", 9 },
        { "8bit", "caf\xc3\xa9", 0, "caf\xc3\xa9", 5 },
        { "binary", "a", 0, "a", 1 },
        { "x-uuencode", "begin", MIME_BINARY_UNKNOWN, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "Content-Transfer-Encoding: %s\n\n%s", cases[i].cte,
                 cases[i].body);
        struct inline_msg im;
        load_text(&im, text);
        check_binary(im.data, im.len, &im.m->root, cases[i].rc, cases[i].want,
                     cases[i].want_len);
        unload_text(&im);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_utf8_accept),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
