/*
 * test_mime_imap.c — IMAP views of a parse: ENVELOPE, BODY and BODYSTRUCTURE
 * of every message in tests/data/mime, the same from a mime_encode /
 * mime_decode round trip, Dovecot's rules one by one on small messages,
 * string quoting, address syntax, BODY[section] ranges, HEADER.FIELDS and
 * BINARY decoding.
 *
 * The expected strings of the messages are the bytes Dovecot 2.3.19 sends
 * for them (docs/mime.md "IMAP views"; tests/integration/test_imap_dovecot.py
 * compares against a running Dovecot). For a message with a bare LF the
 * body sizes are those of the stored bytes, where Dovecot counts CRLF.
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
        "0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
        "\"7bit\" 17 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"alt-b1\") NIL "
        "NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 11 "
        "0)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 17 0) "
        "\"alternative\")" },
    { "apple-mail.eml",
      "(\"Tue, 4 Nov 2025 18:02:11 +0100\" \"Lunch tomorrow?\" "
        "((\"=?utf-8?Q?Ren=C3=A9_Fran=C3=A7ois?=\" NIL \"rene\" \"icloud.example\")) "
        "((\"=?utf-8?Q?Ren=C3=A9_Fran=C3=A7ois?=\" NIL \"rene\" \"icloud.example\")) "
        "((\"=?utf-8?Q?Ren=C3=A9_Fran=C3=A7ois?=\" NIL \"rene\" \"icloud.example\")) "
        "((\"Sam\" NIL \"sam\" \"example.org\")) NIL NIL NIL "
        "\"<5F1A2B3C-4D5E-6F70-8192-A3B4C5D6E7F8@icloud.example>\")",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 20 "
        "1 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 129 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
        "\"Apple-Mail=_3C6E1F0A-2B4D-4F3A-9E1C-7D8B9A0B1C2D\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 20 "
        "1)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 129 0) "
        "\"alternative\")" },
    { "bare-lf.eml",
      "(NIL \"Bare LF\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 1 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 6 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" "
        "\"lf\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 "
        "1)(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL "
        "NIL \"7bit\" 6 0) \"mixed\")" },
    { "boundary-in-body.eml",
      "(NIL \"boundary-like lines in bodies\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 110 2 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "25 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 33 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"sep\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 110 "
        "2)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 25 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 0) "
        "\"mixed\")" },
    { "calendar-invite.eml",
      "(\"Thu, 6 Nov 2025 14:00:00 +0000\" \"Invitation: Design sync @ Mon Nov 10, "
        "2025 3pm - 4pm (CET)\" ((\"Organizer Person\" NIL \"organizer\" "
        "\"example.com\")) ((\"Google Calendar\" NIL \"calendar-notification\" "
        "\"google.example\")) ((\"Organizer Person\" NIL \"organizer\" "
        "\"example.com\")) ((NIL NIL \"attendee\" \"example.org\")) NIL NIL NIL "
        "\"<calendar-1f2e3d4c-5b6a-7988-a7b6-c5d4e3f2a1b0@google.example>\")",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\" \"format\" \"flowed\" \"delsp\" "
        "\"yes\") NIL NIL \"base64\" 52 0 NIL NIL NIL NIL)(\"text\" \"html\" "
        "(\"charset\" \"UTF-8\") NIL NIL \"quoted-printable\" 24 0 NIL NIL NIL "
        "NIL)(\"text\" \"calendar\" (\"charset\" \"UTF-8\" \"method\" \"REQUEST\") "
        "NIL NIL \"7bit\" 209 10 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
        "\"000000000000a1b2c20612b6f000\") NIL NIL NIL)(\"application\" \"ics\" "
        "(\"name\" \"invite.ics\") NIL NIL \"base64\" 40 NIL (\"attachment\" "
        "(\"filename\" \"invite.ics\")) NIL NIL) \"mixed\" (\"boundary\" "
        "\"000000000000a1b2c30612b6f001\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\" \"format\" \"flowed\" \"delsp\" "
        "\"yes\") NIL NIL \"base64\" 52 0)(\"text\" \"html\" (\"charset\" \"UTF-8\") "
        "NIL NIL \"quoted-printable\" 24 0)(\"text\" \"calendar\" (\"charset\" "
        "\"UTF-8\" \"method\" \"REQUEST\") NIL NIL \"7bit\" 209 10) "
        "\"alternative\")(\"application\" \"ics\" (\"name\" \"invite.ics\") NIL NIL "
        "\"base64\" 40) \"mixed\")" },
    { "crlf-lf-mix.eml",
      "(NIL \"CRLF and LF\" ((NIL NIL \"mix\" \"example.org\")) ((NIL NIL \"mix\" "
        "\"example.org\")) ((NIL NIL \"mix\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 1 NIL "
        "NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "12 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"m\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 "
        "1)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1) "
        "\"alternative\")" },
    { "ctype-no-subtype.eml",
      "(NIL \"content types without subtype\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL "
        "NIL)(\"\" \"\" NIL NIL NIL \"7bit\" 13 NIL NIL NIL NIL)(\"\" \"\" NIL NIL "
        "NIL \"7bit\" 22 NIL NIL NIL NIL)(\"\" \"\" NIL NIL NIL \"7bit\" 14 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 "
        "NIL NIL NIL NIL)(\"Text\" \"Plain\" (\"Charset\" \"UTF-8\") NIL NIL \"7bit\" "
        "23 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"n\") NIL NIL NIL)",
      "((\"text\" \"\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)(\"\" \"\" "
        "NIL NIL NIL \"7bit\" 13)(\"\" \"\" NIL NIL NIL \"7bit\" 22)(\"\" \"\" NIL "
        "NIL NIL \"7bit\" 14)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 8 0)(\"Text\" \"Plain\" (\"Charset\" \"UTF-8\") NIL NIL \"7bit\" 23 "
        "0) \"mixed\")" },
    { "digest.eml",
      "(NIL \"List digest, Vol 1, Issue 2\" ((NIL NIL \"digest\" "
        "\"lists.example.org\")) ((NIL NIL \"digest\" \"lists.example.org\")) ((NIL "
        "NIL \"digest\" \"lists.example.org\")) ((NIL NIL \"subscriber\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 91 (\"Sat, 15 Nov 2025 "
        "08:00:00 +0000\" \"first post\" ((NIL NIL \"one\" \"example.org\")) ((NIL "
        "NIL \"one\" \"example.org\")) ((NIL NIL \"one\" \"example.org\")) NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "6 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL "
        "\"7bit\" 54 (NIL \"second post\" ((NIL NIL \"two\" \"example.org\")) ((NIL "
        "NIL \"two\" \"example.org\")) ((NIL NIL \"two\" \"example.org\")) NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "7 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 25 0 NIL NIL NIL NIL) \"digest\" "
        "(\"boundary\" \"dg\") NIL NIL NIL)",
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 91 (\"Sat, 15 Nov 2025 "
        "08:00:00 +0000\" \"first post\" ((NIL NIL \"one\" \"example.org\")) ((NIL "
        "NIL \"one\" \"example.org\")) ((NIL NIL \"one\" \"example.org\")) NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "6 0) 4)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 54 (NIL \"second post\" "
        "((NIL NIL \"two\" \"example.org\")) ((NIL NIL \"two\" \"example.org\")) "
        "((NIL NIL \"two\" \"example.org\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0) 3)(\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 25 0) \"digest\")" },
    { "dsn-bounce.eml",
      "(\"Sat, 8 Nov 2025 03:14:15 +0000 (UTC)\" \"Undelivered Mail Returned to "
        "Sender\" ((\"Mail Delivery System\" NIL \"MAILER-DAEMON\" "
        "\"mx.example.org\")) ((\"Mail Delivery System\" NIL \"MAILER-DAEMON\" "
        "\"mx.example.org\")) ((\"Mail Delivery System\" NIL \"MAILER-DAEMON\" "
        "\"mx.example.org\")) ((NIL NIL \"sender\" \"example.com\")) NIL NIL NIL "
        "\"<20251108031415.9B3C41C0456@mx.example.org>\")",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL \"Notification\" "
        "\"7bit\" 171 4 NIL NIL NIL NIL)(\"message\" \"delivery-status\" NIL NIL "
        "\"Delivery report\" \"7bit\" 167 NIL NIL NIL NIL)(\"text\" "
        "\"rfc822-headers\" (\"charset\" \"us-ascii\") NIL \"Undelivered Message "
        "Headers\" \"7bit\" 101 4 NIL NIL NIL NIL) \"report\" (\"report-type\" "
        "\"delivery-status\" \"boundary\" \"8A2F31C0123.1762571655/mx.example.org\") "
        "NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL \"Notification\" "
        "\"7bit\" 171 4)(\"message\" \"delivery-status\" NIL NIL \"Delivery report\" "
        "\"7bit\" 167)(\"text\" \"rfc822-headers\" (\"charset\" \"us-ascii\") NIL "
        "\"Undelivered Message Headers\" \"7bit\" 101 4) \"report\")" },
    { "dsn-full-message.eml",
      "(\"Sat, 8 Nov 2025 04:00:00 +0100\" \"Returned mail: see transcript for "
        "details\" ((\"Mail Delivery Subsystem\" NIL \"MAILER-DAEMON\" "
        "\"relay.example.net\")) ((\"Mail Delivery Subsystem\" NIL \"MAILER-DAEMON\" "
        "\"relay.example.net\")) ((\"Mail Delivery Subsystem\" NIL \"MAILER-DAEMON\" "
        "\"relay.example.net\")) ((NIL NIL \"author\" \"example.com\")) NIL NIL NIL "
        "NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 61 0 NIL "
        "NIL NIL NIL)(\"message\" \"delivery-status\" NIL NIL NIL \"7bit\" 113 NIL "
        "NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 201 (\"Fri, 7 Nov "
        "2025 22:00:00 +0100\" \"Are you there?\" ((\"Author\" NIL \"author\" "
        "\"example.com\")) ((\"Author\" NIL \"author\" \"example.com\")) ((\"Author\" "
        "NIL \"author\" \"example.com\")) ((NIL NIL \"gone\" \"example.net\")) NIL "
        "NIL NIL \"<q1@example.com>\") (\"text\" \"plain\" (\"charset\" \"us-ascii\") "
        "NIL NIL \"7bit\" 14 0 NIL NIL NIL NIL) 7 NIL NIL NIL NIL) \"report\" "
        "(\"report-type\" \"delivery-status\" \"boundary\" \"r1\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 61 "
        "0)(\"message\" \"delivery-status\" NIL NIL NIL \"7bit\" 113)(\"message\" "
        "\"rfc822\" NIL NIL NIL \"7bit\" 201 (\"Fri, 7 Nov 2025 22:00:00 +0100\" "
        "\"Are you there?\" ((\"Author\" NIL \"author\" \"example.com\")) "
        "((\"Author\" NIL \"author\" \"example.com\")) ((\"Author\" NIL \"author\" "
        "\"example.com\")) ((NIL NIL \"gone\" \"example.net\")) NIL NIL NIL "
        "\"<q1@example.com>\") (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 14 0) 7) \"report\")" },
    { "duplicate-headers.eml",
      "(NIL \"duplicate content headers\" ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") \"<first@id>\" NIL "
        "\"Base64\" 8 0 NIL (\"attachment\" (\"filename\" \"second.txt\")) (\"de-DE\" "
        "\"en\") NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "1 0 NIL (\"inline\" (\"filename\" \"first.txt\")) NIL NIL) \"mixed\" "
        "(\"boundary\" \"d\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") \"<first@id>\" NIL "
        "\"Base64\" 8 0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 1 0) \"mixed\")" },
    { "empty-parts.eml",
      "(NIL \"empty parts\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "
        "NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 0 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
        "NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)(\"application\" \"octet-stream\" NIL "
        "NIL NIL \"7bit\" 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"base64\" 0 0 NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"e\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 0)(\"text\" "
        "\"html\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 0 0) \"mixed\")" },
    { "encoded-word.eml",
      "(NIL {51}\r\n=?UTF-8?B?SMOpbGxvIHfDtnJsZA==?= =?UTF-8?Q?_again?= "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) "
        "((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) ((NIL NIL "
        "\"bob\" \"example.net\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 7 1 NIL NIL NIL "
        "NIL)",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 7 1)" },
    { "encoded-words-edge.eml",
      "(\"Mon, 10 Nov 2025 07:00:00 +0100\" {125}\r\n=?UTF-8?Q?Adjacent_?= "
        "=?UTF-8?Q?words_?= =?UTF-8?B?w6lsw6hWZQ==?= and "
        "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= =?utf-8?Q?trailing?= "
        "((\"=?UTF-8?B?QmrDtnJu?= =?UTF-8?B?IE/DtmxsZXI=?=\" NIL \"bjoern\" "
        "\"example.se\")) ((\"=?UTF-8?B?QmrDtnJu?= =?UTF-8?B?IE/DtmxsZXI=?=\" NIL "
        "\"bjoern\" \"example.se\")) ((\"=?UTF-8?B?QmrDtnJu?= "
        "=?UTF-8?B?IE/DtmxsZXI=?=\" NIL \"bjoern\" \"example.se\")) "
        "((\"=?ISO-8859-1?Q?Fran=E7ois?=\" NIL \"francois\" "
        "\"example.fr\")(\"=?x-unknown-charset?Q?Mystery_Person?=\" NIL \"mystery\" "
        "\"example.org\")(NIL NIL \"plain\" \"example.org\")) ((\"=?UTF-8?B?broken "
        "base64?=\" NIL \"broken\" "
        "\"example.org\")(\"=?utf-8?q?under_scores_and=5Fequals?=\" NIL \"u\" "
        "\"example.org\")) NIL NIL \"<ew-edge@example.se>\")",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\" \"name\" "
        "\"=?UTF-8?Q?r=C3=A9sum=C3=A9.txt?=\") NIL NIL \"7bit\" 27 1 NIL (\"inline\" "
        "(\"filename\" \"=?UTF-8?Q?r=C3=A9sum=C3=A9.txt?=\")) NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"UTF-8\" \"name\" "
        "\"=?UTF-8?Q?r=C3=A9sum=C3=A9.txt?=\") NIL NIL \"7bit\" 27 1)" },
    { "envelope-comments.eml",
      "(\"Sun, 16 Nov 2025 10:00:00 +0000 (UTC)  \" {23}\r\npadded subject with tab "
        "((\"John Q. Public\" NIL \"john\" \"example.org\")) ((NIL NIL \"jane\" "
        "\"example.org\")) ((\"Name\" NIL \"reply\" \"example.org\")) ((NIL NIL "
        "\"john doe\" \"example.com\")(NIL NIL \"a\\\"b\" \"example.com\")(NIL NIL "
        "\"john..doe\" \"example.com\")(NIL NIL \"john.\" \"example.com\")(NIL "
        "\"@relay1.example,@relay2.example\" \"user\" \"example.com\")(NIL NIL "
        "\"user\" \"[192.0.2.7]\")(\"Name, With Comma\" NIL \"nc\" \"example.com\")) "
        "((\"=?utf-8?q?Encoded?=\" NIL \"enc\" \"example.org\")(\"Mr . Dot\" NIL "
        "\"dot\" \"example.org\")(NIL NIL \"empty-name\" "
        "\"example.org\")({11}\r\nspaced name NIL \"spaced\" \"example.org\")) "
        "((\"nested (comment) here\" NIL \"a\" \"example.org\")(NIL NIL \"b\" "
        "\"MISSING_DOMAIN\")) \"<x@example.org> (Mail from x)\" "
        "\"<comments@example.org> (trailing comment)\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "envelope-edge.eml",
      "(NIL \"\" ((\"a@b\" NIL \"real\" \"example.org\")(\"Name\" NIL \"one\" "
        "\"example.org\")) ((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL "
        "NIL)) ((NIL NIL \"group\" NIL)(NIL NIL \"member\" \"example.org\")(NIL NIL "
        "NIL NIL)) ((\"d\" NIL \"a\" \"b\")(NIL NIL \"x\" \"example.org\")(NIL NIL "
        "\"user\" \"MISSING_DOMAIN\")(NIL NIL \"user\" \"MISSING_DOMAIN\")) ((\"a b\" "
        "NIL \"c\" \"example.org\")(NIL NIL \"first\" \"example.org\")) "
        "((\"=?utf-8?q?quoted_encoded?=\" NIL \"qe\" \"example.org\")(\"=?utf-8?q?A?= "
        "=?utf-8?q?B?=\" NIL \"ab\" \"example.org\")) \"<one@example.org> "
        "<two@example.org>\" \"<tab\x09inside@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "envelope-groups.eml",
      "(\"Fri, 14 Nov 2025 09:00:00 +0000\" \"groups\" ((\"Announcer\" NIL "
        "\"announce\" \"example.org\")) ((NIL NIL \"List\" NIL)(NIL NIL NIL NIL)) "
        "((NIL NIL \"Replies\" NIL)(NIL NIL \"replies\" \"example.org\")(NIL NIL NIL "
        "NIL)) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL "
        "\"Project Team\" NIL)(NIL NIL \"alice\" \"example.org\")(\"Bob B.\" NIL "
        "\"bob\" \"example.org\")(NIL NIL \"carol\" \"example.org\")(NIL NIL NIL "
        "NIL)(NIL NIL \"outsider\" \"example.net\")) ((NIL NIL \"Empty Group\" "
        "NIL)(NIL NIL NIL NIL)) NIL \"<groups@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1)" },
    { "envelope-malformed.eml",
      "(\"not a date at all\" \"malformed addresses\" ((NIL NIL "
        "\"user-without-domain\" \"MISSING_DOMAIN\")) ((NIL NIL "
        "\"user-without-domain\" \"MISSING_DOMAIN\")) ((NIL NIL \"MISSING_MAILBOX\" "
        "\"SYNTAX_ERROR\")) ((NIL NIL \"user\" \"MISSING_DOMAIN\")(NIL NIL "
        "\"MISSING_MAILBOX\" \"domain.example\")(NIL NIL \"angle-only\" "
        "\"MISSING_DOMAIN\")(NIL NIL \"a\" \"b\")) ((\"Joe\" NIL \"joe\" "
        "\"SYNTAX_ERROR\")(NIL NIL \"next\" \"example.org\")) ((\"Bob Smith bob\" NIL "
        "\"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) NIL \"not-an-id\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "envelope-missing.eml",
      "(NIL NIL NIL NIL NIL ((NIL NIL \"only-to\" \"example.org\")) NIL NIL NIL "
        "NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "envelope-multiple.eml",
      "(\"Sun, 16 Nov 2025 10:00:00 +0000\" \"second subject\" ((NIL NIL \"first\" "
        "\"example.org\")(\"Second\" NIL \"second\" \"example.org\")) ((NIL NIL "
        "\"first\" \"example.org\")(\"Second\" NIL \"second\" \"example.org\")) ((NIL "
        "NIL \"first\" \"example.org\")(\"Second\" NIL \"second\" \"example.org\")) "
        "((NIL NIL \"one\" \"example.org\")(NIL NIL \"two\" \"example.org\")(NIL NIL "
        "\"three\" \"example.org\")) NIL ((NIL NIL \"hidden\" \"example.org\")) "
        "\"<b@example.org>\" \"<second@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "folded-first-line.eml",
      "(\"  \x09Mon, 17 Nov 2025 10:00:00 +0000\" {23}\r\nstarts on the next line "
        "((NIL NIL \"folded\" \"example.org\")) ((NIL NIL \"folded\" "
        "\"example.org\")) ((NIL NIL \"folded\" \"example.org\")) ((NIL NIL \"first\" "
        "\"example.org\")(NIL NIL \"second\" \"example.org\")) NIL NIL \" "
        "<irt-1@example.org> <irt-2@example.org>\" "
        "\"\x09<folded-first@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") \" <cid@example.org>\" NIL "
        "\"7bit\" 6 1 NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") \" <cid@example.org>\" NIL "
        "\"7bit\" 6 1)" },
    { "gmail-related.eml",
      "(\"Wed, 5 Nov 2025 10:21:09 -0800\" \"Logo draft\" ((\"Pat Example\" NIL "
        "\"pat.example\" \"gmail.example\")) ((\"Pat Example\" NIL \"pat.example\" "
        "\"gmail.example\")) ((\"Pat Example\" NIL \"pat.example\" "
        "\"gmail.example\")) ((NIL NIL \"design\" \"example.org\")) NIL NIL NIL "
        "\"<CAF3xB+2kQ9z_Zy7wP-VhH0s1uQ@mail.gmail.com>\")",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 39 2 NIL NIL "
        "NIL NIL)(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL "
        "\"quoted-printable\" 110 2 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
        "\"000000000000f3c1a40612b5e6f0\") NIL NIL NIL)(\"image\" \"png\" (\"name\" "
        "\"logo.png\") \"<ii_m3x9k2a10>\" NIL \"base64\" 98 NIL (\"inline\" "
        "(\"filename\" \"logo.png\")) NIL NIL) \"related\" (\"boundary\" "
        "\"000000000000f3c1a50612b5e6f1\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 39 "
        "2)(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL \"quoted-printable\" "
        "110 2) \"alternative\")(\"image\" \"png\" (\"name\" \"logo.png\") "
        "\"<ii_m3x9k2a10>\" NIL \"base64\" 98) \"related\")" },
    { "header-lf-body-crlf.eml",
      "(NIL \"LF header, CRLF body\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0 "
        "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"h\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0) "
        "\"mixed\")" },
    { "header-only-blank.eml",
      "(NIL \"a header and its empty line\" ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 0 0 NIL NIL NIL "
        "NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 0 0)" },
    { "header-only.eml",
      "(\"Thu, 13 Nov 2025 11:00:00 +0000\" \"only a header\" ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL "
        "\"<header-only@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)" },
    { "imap-calendar.eml",
      "(\"Thu, 4 Dec 2025 09:00:00 -0500\" \"Invitation: Sync @ Thu\" "
        "((\"Organizer\" NIL \"org\" \"example.com\")) ((\"Organizer\" NIL \"org\" "
        "\"example.com\")) ((\"Organizer\" NIL \"org\" \"example.com\")) ((NIL NIL "
        "\"team\" \"example.com\")) NIL NIL NIL \"<cal@example.com>\")",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 16 0 NIL NIL "
        "NIL NIL)(\"text\" \"calendar\" (\"charset\" \"UTF-8\" \"method\" "
        "\"REQUEST\") NIL NIL \"base64\" 64 0 NIL NIL NIL NIL) \"alternative\" "
        "(\"boundary\" \"a\") NIL NIL NIL)(\"application\" \"ics\" (\"name\" "
        "\"invite.ics\") NIL NIL \"base64\" 44 NIL (\"attachment\" (\"filename\" "
        "\"invite.ics\")) (\"en-US\" \"de\") \"http://example.com/invite.ics\") "
        "\"mixed\" (\"boundary\" \"m\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"7bit\" 16 "
        "0)(\"text\" \"calendar\" (\"charset\" \"UTF-8\" \"method\" \"REQUEST\") NIL "
        "NIL \"base64\" 64 0) \"alternative\")(\"application\" \"ics\" (\"name\" "
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
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 0 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 282 (\"Mon, 1 "
        "Dec 2025 18:00:00 +0000\" \"inner\" ((\"Erin\" NIL \"erin\" "
        "\"example.com\")) ((\"Erin\" NIL \"erin\" \"example.com\")) ((\"Erin\" NIL "
        "\"erin\" \"example.com\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL "
        "NIL) ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 "
        "NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 12 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"b2\") NIL NIL "
        "NIL) 16 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 "
        "0)(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 282 (\"Mon, 1 Dec "
        "2025 18:00:00 +0000\" \"inner\" ((\"Erin\" NIL \"erin\" \"example.com\")) "
        "((\"Erin\" NIL \"erin\" \"example.com\")) ((\"Erin\" NIL \"erin\" "
        "\"example.com\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL) "
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 "
        "0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0) "
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
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 16 0 NIL NIL NIL "
        "NIL) \"mixed\" (\"boundary\" \"x\") NIL NIL NIL)",
      "((\"application\" \"pdf\" (\"name*\" \"UTF-8''%C3%9Cbersicht%202025.pdf\") "
        "NIL NIL \"base64\" 20)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"base64\" 16 0) \"mixed\")" },
    { "imap-signed.eml",
      "(\"Wed, 3 Dec 2025 10:00:00 +0000\" \"signed\" ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL "
        "\"<signed@example.org>\")",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" "
        "43 1 NIL NIL NIL NIL)(\"application\" \"pgp-signature\" (\"name\" "
        "\"signature.asc\") NIL \"OpenPGP digital signature\" \"7bit\" 76 NIL "
        "(\"attachment\" (\"filename\" \"signature.asc\")) NIL NIL) \"signed\" "
        "(\"micalg\" \"pgp-sha256\" \"protocol\" \"application/pgp-signature\" "
        "\"boundary\" \"sig\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" "
        "43 1)(\"application\" \"pgp-signature\" (\"name\" \"signature.asc\") NIL "
        "\"OpenPGP digital signature\" \"7bit\" 76) \"signed\")" },
    { "lf-nested-rfc822.eml",
      "(NIL \"bare LF with a nested message\" ((NIL NIL \"lf\" \"example.org\")) "
        "((NIL NIL \"lf\" \"example.org\")) ((NIL NIL \"lf\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 144 (NIL \"inner\" "
        "((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) "
        "((NIL NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL) ((\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) "
        "\"alternative\" (\"boundary\" \"lf2\") NIL NIL NIL) 9 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"lf\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 "
        "0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 144 (NIL \"inner\" ((NIL NIL "
        "\"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) ((NIL NIL "
        "\"inner\" \"example.org\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0) \"alternative\") 9) "
        "\"mixed\")" },
    { "long-folded.eml",
      "(\"Wed, 12 Nov 2025 14:30:00 +0000\" {163}\r\nThis subject is very long and "
        "has been folded by a mail client because it exceeded seventy-eight "
        "characters, and then it was folded again with a tab, and once more ((\"A "
        "very long display name that goes on and on for the sake of folding\" NIL "
        "\"long.name\" \"example.org\")) ((\"A very long display name that goes on "
        "and on for the sake of folding\" NIL \"long.name\" \"example.org\")) ((\"A "
        "very long display name that goes on and on for the sake of folding\" NIL "
        "\"long.name\" \"example.org\")) ((NIL NIL \"one\" \"example.org\")(NIL NIL "
        "\"two\" \"example.org\")(NIL NIL \"three\" \"example.org\")(NIL NIL \"four\" "
        "\"example.org\")(NIL NIL \"five\" \"example.org\")(NIL NIL \"six\" "
        "\"example.org\")(NIL NIL \"seven\" \"example.org\")(NIL NIL \"eight\" "
        "\"example.org\")(NIL NIL \"nine\" \"example.org\")(\"Ten, The\" NIL \"ten\" "
        "\"example.org\")(NIL NIL \"eleven\" \"example.org\")) NIL NIL "
        "\"<a@example.org> <b@example.org>\" \" "
        "<very-long-message-id-0123456789abcdef0123456789abcdef@mail.example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\" \"delsp\" "
        "\"yes\") NIL \"a description  folded over   three lines\" \"7bit\" 7 1 NIL "
        "NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\" \"delsp\" "
        "\"yes\") NIL \"a description  folded over   three lines\" \"7bit\" 7 1)" },
    { "malformed-headers.eml",
      "(NIL \"spaced name\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL "
        "NIL NIL NIL)",
      "(\"\" \"\" NIL NIL NIL \"7bit\" 27 NIL NIL NIL NIL)",
      "(\"\" \"\" NIL NIL NIL \"7bit\" 27)" },
    { "message-global.eml",
      "(NIL \"Fwd: UTF-8 message\" ((NIL NIL \"intl\" \"example.org\")) ((NIL NIL "
        "\"intl\" \"example.org\")) ((NIL NIL \"intl\" \"example.org\")) ((NIL NIL "
        "\"reader\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 16 0 NIL NIL "
        "NIL NIL)(\"message\" \"global\" NIL NIL NIL \"7bit\" 142 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"g\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 16 "
        "0)(\"message\" \"global\" NIL NIL NIL \"7bit\" 142) \"mixed\")" },
    { "mime-version-only.eml",
      "(NIL \"MIME-Version without Content-Type\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 10 1 NIL "
        "(\"inline\" (\"filename\" \"hello.txt\")) (\"en\") NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 10 1)" },
    { "missing-boundary.eml",
      "(NIL \"No boundary\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL "
        "NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL) \"mixed\" NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) "
        "\"mixed\")" },
    { "missing-final-boundary.eml",
      "(NIL \"missing final boundaries\" ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL "
        "NIL NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "11 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 33 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL "
        "NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 "
        "0)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 "
        "0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 1) "
        "\"alternative\") \"mixed\")" },
    { "multipart-no-parts-nested.eml",
      "(NIL \"message/rfc822 with odd bodies\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL "
        "\"7bit\" 58 (NIL \"header cut by a boundary\" ((NIL NIL \"cut\" "
        "\"example.org\")) ((NIL NIL \"cut\" \"example.org\")) ((NIL NIL \"cut\" "
        "\"example.org\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 2 NIL NIL NIL "
        "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 38 (NIL NIL NIL NIL NIL "
        "NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL)((\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" "
        "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"o\") NIL NIL NIL)",
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "0 0) 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 58 (NIL \"header cut by "
        "a boundary\" ((NIL NIL \"cut\" \"example.org\")) ((NIL NIL \"cut\" "
        "\"example.org\")) ((NIL NIL \"cut\" \"example.org\")) NIL NIL NIL NIL NIL) "
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) "
        "2)(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 38 (NIL NIL NIL NIL NIL NIL "
        "NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 0 0) 1)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 0 0) \"mixed\") \"mixed\")" },
    { "nested-digest.eml",
      "(NIL \"digest in a message in a digest\" ((NIL NIL \"digest\" "
        "\"example.org\")) ((NIL NIL \"digest\" \"example.org\")) ((NIL NIL "
        "\"digest\" \"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL "
        "NIL)",
      "(((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 88 (NIL \"digest item without "
        "MIME-Version\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL) 3 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 144 (NIL \"digest item "
        "with a digest\" NIL NIL NIL NIL NIL NIL NIL NIL) ((\"message\" \"rfc822\" "
        "NIL NIL NIL \"7bit\" 24 (NIL \"deepest\" NIL NIL NIL NIL NIL NIL NIL NIL) "
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL "
        "NIL NIL) 2 NIL NIL NIL NIL) \"digest\" (\"boundary\" \"d2\") NIL NIL NIL) 10 "
        "NIL NIL NIL NIL) \"digest\" (\"boundary\" \"d1\") NIL NIL NIL)((\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 27 0 NIL NIL NIL NIL) "
        "\"alternative\" (\"boundary\" \"top\") NIL NIL NIL) \"mixed\" (\"boundary\" "
        "\"top\") NIL NIL NIL)",
      "(((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 88 (NIL \"digest item without "
        "MIME-Version\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0) 3)(\"message\" \"rfc822\" "
        "NIL NIL NIL \"7bit\" 144 (NIL \"digest item with a digest\" NIL NIL NIL NIL "
        "NIL NIL NIL NIL) ((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 24 (NIL "
        "\"deepest\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0) 2) \"digest\") 10) "
        "\"digest\")((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "27 0) \"alternative\") \"mixed\")" },
    { "nested-mixed.eml",
      "(NIL \"Report\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" "
        "\"example.net\")) NIL NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0 NIL "
        "NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "20 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL "
        "NIL)(\"application\" \"pdf\" (\"name\" \"report.pdf\") "
        "\"<pdf1@example.org>\" \"The report\" \"BASE64\" 12 NIL (\"attachment\" "
        "(\"filename\" \"report.pdf\" \"size\" \"12\")) NIL NIL) \"mixed\" "
        "(\"boundary\" \"outer\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 "
        "0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 0) "
        "\"alternative\")(\"application\" \"pdf\" (\"name\" \"report.pdf\") "
        "\"<pdf1@example.org>\" \"The report\" \"BASE64\" 12) \"mixed\")" },
    { "no-final-newline.eml",
      "(NIL \"no final newline\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 25 0 NIL "
        "NIL NIL NIL) \"mixed\" (\"boundary\" \"z\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 25 0) "
        "\"mixed\")" },
    { "no-mime-version.eml",
      "(NIL \"Content-* without MIME-Version or Content-Type\" ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1)" },
    { "no-separator.eml",
      "(NIL \"no empty line after the header\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)" },
    { "nul-control-headers.eml",
      "(\"Thu, 13 Nov 2025 10:00:00 +0000\" {26}\r\nNUL\xef\xbf\xbdhere and "
        "\x1b[1mescape\x7f ((NIL NIL \"Ctl\" \"MISSING_DOMAIN\")) ((NIL NIL \"Ctl\" "
        "\"MISSING_DOMAIN\")) ((NIL NIL \"Ctl\" \"MISSING_DOMAIN\")) ((NIL NIL "
        "\"nul\" \"example.org\")) NIL NIL NIL "
        "{22}\r\n<nul\xef\xbf\xbdid@example.org>)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"name\" "
        "{9}\r\na\xef\xbf\xbd" "b.txt) NIL {14}\r\ndesc\xef\xbf\xbdription \"7bit\" "
        "25 1 NIL NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"name\" "
        "{9}\r\na\xef\xbf\xbd" "b.txt) NIL {14}\r\ndesc\xef\xbf\xbdription \"7bit\" "
        "25 1)" },
    { "odd-boundaries.eml",
      "(NIL \"empty and very long boundaries\" ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 19 0 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "6 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"\") NIL NIL "
        "NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 34 0 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "0 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" "
        "\"a-boundary-that-is-much-longer-than-seventy-characters-and-keeps-going-on-a"
        "nd-on-XYZ\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 19 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) "
        "\"alternative\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 34 0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 0 0) \"mixed\")" },
    { "outlook-tnef.eml",
      "(\"Mon, 3 Nov 2025 08:12:43 +0000\" \"RE: Q4 budget review\" ((\"Doe, John\" "
        "NIL \"John.Doe\" \"corp.example.com\")) ((\"Doe, John\" NIL \"John.Doe\" "
        "\"corp.example.com\")) ((\"Doe, John\" NIL \"John.Doe\" "
        "\"corp.example.com\")) ((\"Roe, Jane\" NIL \"Jane.Roe\" "
        "\"corp.example.com\")(\"Team Berlin\" NIL \"team-berlin\" "
        "\"corp.example.com\")) ((NIL NIL \"external\" \"partner.example.net\")) NIL "
        "\"<AM0PR10MB9999@AM0PR10MB9999.EURPRD10.PROD.OUTLOOK.COM>\" "
        "\"<AM0PR10MB1234ABCD5678@AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM>\")",
      "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
        "\"quoted-printable\" 48 3 NIL NIL NIL NIL)(\"application\" \"ms-tnef\" "
        "(\"name\" \"winmail.dat\") NIL \"winmail.dat\" \"base64\" 98 NIL "
        "(\"attachment\" (\"filename\" \"winmail.dat\" \"size\" \"64\" "
        "\"creation-date\" \"Mon, 03 Nov 2025 08:12:43 GMT\" \"modification-date\" "
        "\"Mon, 03 Nov 2025 08:12:43 GMT\")) NIL NIL) \"mixed\" (\"boundary\" "
        "\"_002_AM0PR10MB1234ABCD5678AM0PR10MB1234EURP_\") NIL (\"en-US\") NIL)",
      "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
        "\"quoted-printable\" 48 3)(\"application\" \"ms-tnef\" (\"name\" "
        "\"winmail.dat\") NIL \"winmail.dat\" \"base64\" 98) \"mixed\")" },
    { "preamble-epilogue.eml",
      "(NIL \"preamble and epilogue\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL "
        "NIL NIL NIL) \"alternative\" (\"boundary\" \"pe2\") NIL NIL NIL)(\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"pe\") NIL NIL NIL)",
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) "
        "\"alternative\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 6 1) \"mixed\")" },
    { "quoted-params.eml",
      "(NIL \"quoted parameters\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"application\" \"octet-stream\" (\"name\" \"a \\\"quoted\\\" name.txt\") "
        "NIL NIL \"7bit\" 1 NIL (\"attachment\" (\"filename\" \"back\\\\slash.txt\" "
        "\"size\" \"12\")) NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\" "
        "\"x-empty\" \"\" \"x-after\" \"yes\") NIL NIL \"7bit\" 1 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"name\" \"=?utf-8?b?w6k=?=\" \"x-semi\" \"a;b\" "
        "\"x-eq\" \"a\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"\" \"noname\" \"x-novalue\" \"\" \"x-last\" "
        "\"end\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL "
        "NIL)(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL "
        "NIL) \"mixed\" (\"boundary\" \"q q\") NIL NIL NIL)",
      "((\"application\" \"octet-stream\" (\"name\" \"a \\\"quoted\\\" name.txt\") "
        "NIL NIL \"7bit\" 1)(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"x-empty\" "
        "\"\" \"x-after\" \"yes\") NIL NIL \"7bit\" 1 0)(\"text\" \"plain\" (\"name\" "
        "\"=?utf-8?b?w6k=?=\" \"x-semi\" \"a;b\" \"x-eq\" \"a\" \"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 1 0)(\"text\" \"plain\" (\"\" \"noname\" "
        "\"x-novalue\" \"\" \"x-last\" \"end\" \"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 1 0)(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 1) "
        "\"mixed\")" },
    { "raw-latin1-headers.eml",
      "(\"Tue, 11 Nov 2025 13:00:00 +0100\" {21}\r\nCaf\xe9 cr\xe8me \xe0 la carte "
        "(({14}\r\nAndr\xe9 Fran\xe7ois NIL \"andre\" \"example.fr\")) "
        "(({14}\r\nAndr\xe9 Fran\xe7ois NIL \"andre\" \"example.fr\")) "
        "(({14}\r\nAndr\xe9 Fran\xe7ois NIL \"andre\" \"example.fr\")) "
        "(({14}\r\nMa\xeftre d'h\xf4tel NIL \"maitre\" \"example.fr\")) NIL NIL NIL "
        "\"<latin1-raw@example.fr>\")",
      "(\"text\" \"plain\" (\"charset\" \"iso-8859-1\" \"name\" {8}\r\nmen\xfc.txt) "
        "NIL NIL \"8bit\" 15 1 NIL (\"inline\" (\"filename\" {8}\r\nmen\xfc.txt)) NIL "
        "NIL)",
      "(\"text\" \"plain\" (\"charset\" \"iso-8859-1\" \"name\" {8}\r\nmen\xfc.txt) "
        "NIL NIL \"8bit\" 15 1)" },
    { "raw-utf8-headers.eml",
      "(\"Tue, 11 Nov 2025 12:00:00 +0100\" {27}\r\nR\xc3\xa9sum\xc3\xa9 "
        "\xe2\x80\x94 \xe5\xb1\xa5\xe6\xad\xb4\xe6\x9b\xb8 \xf0\x9f\x93\x8e "
        "(({15}\r\nZo\xc3\xab \xc3\x85ngstr\xc3\xb6m NIL \"zoe\" \"example.se\")) "
        "(({15}\r\nZo\xc3\xab \xc3\x85ngstr\xc3\xb6m NIL \"zoe\" \"example.se\")) "
        "(({15}\r\nZo\xc3\xab \xc3\x85ngstr\xc3\xb6m NIL \"zoe\" \"example.se\")) "
        "(({10}\r\n\xce\x95\xce\xbb\xce\xad\xce\xbd\xce\xb7 NIL \"eleni\" "
        "\"example.gr\")({6}\r\n\xe6\x9d\x8e\xe9\x9b\xb7 NIL \"lilei\" "
        "\"example.cn\")) (({16}\r\nM\xc3\xbcller, J\xc3\xbcrgen NIL \"j.mueller\" "
        "\"example.de\")) NIL NIL \"<utf8-raw@example.se>\")",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 7 0 NIL NIL "
        "NIL NIL)(\"application\" \"pdf\" (\"name\" {22}\r\nLebenslauf "
        "M\xc3\xbcller.pdf) NIL {23}\r\nLebenslauf f\xc3\xbcr J\xc3\xbcrgen \"7bit\" "
        "4 NIL (\"attachment\" (\"filename\" {22}\r\nLebenslauf M\xc3\xbcller.pdf)) "
        "NIL NIL) \"mixed\" (\"boundary\" \"u8\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 7 "
        "0)(\"application\" \"pdf\" (\"name\" {22}\r\nLebenslauf M\xc3\xbcller.pdf) "
        "NIL {23}\r\nLebenslauf f\xc3\xbcr J\xc3\xbcrgen \"7bit\" 4) \"mixed\")" },
    { "rfc2231-boundary.eml",
      "(NIL \"boundary given in RFC 2231 sections\" ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 6 0 NIL "
        "NIL NIL NIL) \"mixed\" (\"boundary\" \"split\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0)(\"text\" "
        "\"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 6 0) \"mixed\")" },
    { "rfc2231-continuations.eml",
      "(NIL \"RFC 2231 parameters\" ((NIL NIL \"files\" \"example.org\")) ((NIL NIL "
        "\"files\" \"example.org\")) ((NIL NIL \"files\" \"example.org\")) ((NIL NIL "
        "\"reader\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"application\" \"octet-stream\" (\"name*\" "
        "\"UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt\") NIL NIL \"7bit\" 4 NIL "
        "(\"attachment\" (\"filename*\" \"iso-8859-1'de'Gr%FCn 100%25 sure.txt\")) "
        "NIL NIL)(\"text\" \"plain\" (\"charset*\" \"us-ascii'en'us-ascii\" \"title\" "
        "\"abc\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL (\"inline\" "
        "(\"filename*0\" \"one\" \"filename*2\" \"three\")) NIL NIL)(\"application\" "
        "\"pdf\" (\"name\" \"plain.pdf\" \"NAME\" \"upper.pdf\") NIL NIL \"7bit\" 3 "
        "NIL (\"attachment\" (\"filename\" \"euro.pdf\" \"filename*\" "
        "\"UTF-8''%e2%82%ac.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"p\") NIL NIL "
        "NIL)",
      "((\"application\" \"octet-stream\" (\"name*\" "
        "\"UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt\") NIL NIL \"7bit\" 4)(\"text\" "
        "\"plain\" (\"charset*\" \"us-ascii'en'us-ascii\" \"title\" \"abc\" "
        "\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0)(\"application\" \"pdf\" "
        "(\"name\" \"plain.pdf\" \"NAME\" \"upper.pdf\") NIL NIL \"7bit\" 3) "
        "\"mixed\")" },
    { "rfc822-three-deep.eml",
      "(\"Sun, 9 Nov 2025 09:00:00 +0000\" \"Fwd: Fwd: Fwd: deep\" ((NIL NIL "
        "\"level0\" \"example.org\")) ((NIL NIL \"level0\" \"example.org\")) ((NIL "
        "NIL \"level0\" \"example.org\")) ((NIL NIL \"reader\" \"example.org\")) NIL "
        "NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL "
        "NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 529 (NIL \"Fwd: Fwd: "
        "deep\" ((NIL NIL \"level1\" \"example.org\")) ((NIL NIL \"level1\" "
        "\"example.org\")) ((NIL NIL \"level1\" \"example.org\")) NIL NIL NIL NIL "
        "NIL) ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 "
        "NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 263 (NIL \"Fwd: "
        "deep\" ((NIL NIL \"level2\" \"example.org\")) ((NIL NIL \"level2\" "
        "\"example.org\")) ((NIL NIL \"level2\" \"example.org\")) NIL NIL NIL NIL "
        "\"<level2@example.org>\") (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 132 "
        "(\"Sat, 8 Nov 2025 08:00:00 +0000\" \"deep\" ((NIL NIL \"level3\" "
        "\"example.org\")) ((NIL NIL \"level3\" \"example.org\")) ((NIL NIL "
        "\"level3\" \"example.org\")) ((\"Deep Reader\" NIL \"reader\" "
        "\"example.org\")) NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) 5 NIL NIL NIL NIL) 11 "
        "NIL (\"attachment\" (\"filename\" \"level2.eml\")) NIL NIL) \"mixed\" "
        "(\"boundary\" \"L1\") NIL NIL NIL) 26 NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"L0\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 "
        "0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 529 (NIL \"Fwd: Fwd: deep\" "
        "((NIL NIL \"level1\" \"example.org\")) ((NIL NIL \"level1\" "
        "\"example.org\")) ((NIL NIL \"level1\" \"example.org\")) NIL NIL NIL NIL "
        "NIL) ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 "
        "0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 263 (NIL \"Fwd: deep\" ((NIL "
        "NIL \"level2\" \"example.org\")) ((NIL NIL \"level2\" \"example.org\")) "
        "((NIL NIL \"level2\" \"example.org\")) NIL NIL NIL NIL "
        "\"<level2@example.org>\") (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 132 "
        "(\"Sat, 8 Nov 2025 08:00:00 +0000\" \"deep\" ((NIL NIL \"level3\" "
        "\"example.org\")) ((NIL NIL \"level3\" \"example.org\")) ((NIL NIL "
        "\"level3\" \"example.org\")) ((\"Deep Reader\" NIL \"reader\" "
        "\"example.org\")) NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 11 0) 5) 11) \"mixed\") 26) \"mixed\")" },
    { "rfc822.eml",
      "(NIL \"Fwd: Original\" ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"bob\" \"example.net\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 0 NIL "
        "NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 200 (\"Sun, 30 Nov "
        "2025 09:00:00 +0100\" \"Original\" ((NIL NIL \"carol\" \"example.com\")) "
        "((NIL NIL \"carol\" \"example.com\")) ((NIL NIL \"carol\" \"example.com\")) "
        "((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL \"<orig@example.com>\") "
        "(\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"7bit\" 14 0 NIL "
        "NIL NIL NIL) 7 NIL (\"inline\" NIL) NIL NIL) \"mixed\" (\"boundary\" "
        "\"fwd\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 "
        "0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 200 (\"Sun, 30 Nov 2025 "
        "09:00:00 +0100\" \"Original\" ((NIL NIL \"carol\" \"example.com\")) ((NIL "
        "NIL \"carol\" \"example.com\")) ((NIL NIL \"carol\" \"example.com\")) ((NIL "
        "NIL \"alice\" \"example.org\")) NIL NIL NIL \"<orig@example.com>\") "
        "(\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"7bit\" 14 0) 7) "
        "\"mixed\")" },
    { "root-rfc822.eml",
      "(NIL \"the whole body is a message\" ((NIL NIL \"wrapper\" \"example.org\")) "
        "((NIL NIL \"wrapper\" \"example.org\")) ((NIL NIL \"wrapper\" "
        "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL NIL)",
      "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 280 (NIL \"inner subject\" "
        "((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Inner\" NIL \"inner\" "
        "\"example.org\")) ((\"Inner\" NIL \"inner\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL \"<inner-root@example.org>\") ((\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL "
        "NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL "
        "NIL NIL NIL) \"alternative\" (\"boundary\" \"ia\") NIL NIL NIL) 16 NIL NIL "
        "NIL NIL)",
      "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 280 (NIL \"inner subject\" "
        "((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Inner\" NIL \"inner\" "
        "\"example.org\")) ((\"Inner\" NIL \"inner\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL \"<inner-root@example.org>\") ((\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0)(\"text\" \"html\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0) \"alternative\") 16)" },
    { "simple.eml",
      "(\"Mon, 1 Dec 2025 10:00:00 +0000\" \"Hello\" ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" "
        "NIL \"alice\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.net\")) NIL "
        "NIL NIL \"<simple-1@example.org>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 2 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 2)" },
    { "smime-opaque.eml",
      "(\"Fri, 7 Nov 2025 11:05:00 +0100\" \"Encrypted\" ((\"Signer\" NIL "
        "\"signer\" \"secure.example\")) ((\"Signer\" NIL \"signer\" "
        "\"secure.example\")) ((\"Signer\" NIL \"signer\" \"secure.example\")) ((NIL "
        "NIL \"reader\" \"example.org\")) NIL NIL NIL "
        "\"<smime-enc-1@secure.example>\")",
      "(\"application\" \"pkcs7-mime\" (\"smime-type\" \"enveloped-data\" \"name\" "
        "\"smime.p7m\") NIL \"S/MIME Encrypted Message\" \"base64\" 100 NIL "
        "(\"attachment\" (\"filename\" \"smime.p7m\")) NIL NIL)",
      "(\"application\" \"pkcs7-mime\" (\"smime-type\" \"enveloped-data\" \"name\" "
        "\"smime.p7m\") NIL \"S/MIME Encrypted Message\" \"base64\" 100)" },
    { "smime-signed.eml",
      "(\"Fri, 7 Nov 2025 11:00:00 +0100\" \"Signed report\" ((\"Signer\" NIL "
        "\"signer\" \"secure.example\")) ((\"Signer\" NIL \"signer\" "
        "\"secure.example\")) ((\"Signer\" NIL \"signer\" \"secure.example\")) ((NIL "
        "NIL \"reader\" \"example.org\")) NIL NIL NIL "
        "\"<smime-signed-1@secure.example>\")",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 24 1 NIL NIL "
        "NIL NIL)(\"application\" \"pkcs7-signature\" (\"name\" \"smime.p7s\") NIL "
        "\"S/MIME Cryptographic Signature\" \"base64\" 88 NIL (\"attachment\" "
        "(\"filename\" \"smime.p7s\")) NIL NIL) \"signed\" (\"protocol\" "
        "\"application/pkcs7-signature\" \"micalg\" \"sha-256\" \"boundary\" "
        "\"----5A1B2C3D4E5F60718293A4B5C6D7E8F9\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 24 "
        "1)(\"application\" \"pkcs7-signature\" (\"name\" \"smime.p7s\") NIL \"S/MIME "
        "Cryptographic Signature\" \"base64\" 88) \"signed\")" },
    { "subject-quotes.eml",
      "(\"Tue, 18 Nov 2025 10:00:00 +0000\" {23}\r\nsay \"hi\" \\ and \\\"more\\\" "
        "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL "
        "NIL \"a\" \"example.org\")) ((NIL NIL \"b\" \"example.org\")) NIL NIL NIL "
        "\"<\\\"quoted\\\"@example.org>\")",
      "(\"text\" \"plain\" (\"name\" \"x\\\\y\\\"z\" \"charset\" \"us-ascii\") NIL "
        "\"a \\\"quoted\\\" description with \\\\ backslash\" \"7bit\" 6 1 "
        "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL NIL \"http://example.org/a b\")",
      "(\"text\" \"plain\" (\"name\" \"x\\\\y\\\"z\" \"charset\" \"us-ascii\") NIL "
        "\"a \\\"quoted\\\" description with \\\\ backslash\" \"7bit\" 6 1)" },
    { "text-charsets.eml",
      "(NIL \"charsets\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL "
        "\"quoted-printable\" 19 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
        "\"windows-1252\") NIL NIL \"8bit\" 22 0 NIL NIL NIL NIL)(\"text\" \"plain\" "
        "(\"charset\" \"koi8-r\") NIL NIL \"8bit\" 17 0 NIL NIL NIL NIL)(\"text\" "
        "\"plain\" (\"charset\" \"shift_jis\") NIL NIL \"base64\" 24 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 0 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"x-no-such-charset\") NIL NIL "
        "\"7bit\" 24 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
        "NIL NIL \"7bit\" 16 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL "
        "NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL "
        "\"quoted-printable\" 19 0)(\"text\" \"plain\" (\"charset\" \"windows-1252\") "
        "NIL NIL \"8bit\" 22 0)(\"text\" \"plain\" (\"charset\" \"koi8-r\") NIL NIL "
        "\"8bit\" 17 0)(\"text\" \"plain\" (\"charset\" \"shift_jis\") NIL NIL "
        "\"base64\" 24 0)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
        "12 0)(\"text\" \"plain\" (\"charset\" \"x-no-such-charset\") NIL NIL "
        "\"7bit\" 24 0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 16 0) \"mixed\")" },
    { "text-encoded-words.eml",
      "(NIL {82}\r\n=?UTF-8?B?SMOpbGxv?= =?UTF-8?Q?_w=C3=B6rld?= =?utf-8?q?!?= "
        "plain =?UTF-8?Q?again?= ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" "
        "\"vm1.ulg.ac.be\")) ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" "
        "\"vm1.ulg.ac.be\")) ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" "
        "\"vm1.ulg.ac.be\")) ((\"=?US-ASCII?Q?Keith_Moore?=\" NIL \"moore\" "
        "\"cs.utk.edu\")) ((\"=?koi8-r?B?8NLJ18XU?=\" NIL \"ivan\" \"example.ru\")) "
        "NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)" },
    { "text-html.eml",
      "(NIL \"html\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 0 NIL "
        "NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
        "\"quoted-printable\" 437 7 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
        "\"alt\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 "
        "0)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" "
        "437 7) \"alternative\")" },
    { "text-invalid-utf8.eml",
      "(NIL {38}\r\n\xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big \xc0\xaf "
        "overlong (({4}\r\nbad\xc3 NIL \"a\" \"example.org\")) (({4}\r\nbad\xc3 NIL "
        "\"a\" \"example.org\")) (({4}\r\nbad\xc3 NIL \"a\" \"example.org\")) NIL NIL "
        "NIL NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 64 1 NIL NIL "
        "NIL NIL)",
      "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 64 1)" },
    { "text-nested.eml",
      "(NIL \"outer\" ((NIL NIL \"outer\" \"example.org\")) ((NIL NIL \"outer\" "
        "\"example.org\")) ((NIL NIL \"outer\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL "
        "NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"x.pdf\") NIL NIL \"base64\" "
        "36 NIL (\"attachment\" (\"filename\" \"x.pdf\")) NIL NIL)(\"message\" "
        "\"rfc822\" NIL NIL NIL \"7bit\" 383 (NIL \"=?utf-8?q?inner_subj=C3=A9ct?=\" "
        "((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) "
        "((NIL NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL) ((\"text\" "
        "\"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 19 0 NIL "
        "(\"attachment\" (\"filename\" \"notes.txt\")) NIL NIL)(\"image\" \"png\" NIL "
        "NIL NIL \"base64\" 12 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"inner\") "
        "NIL NIL NIL) 19 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL "
        "NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 "
        "0)(\"application\" \"pdf\" (\"name\" \"x.pdf\") NIL NIL \"base64\" "
        "36)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 383 (NIL "
        "\"=?utf-8?q?inner_subj=C3=A9ct?=\" ((NIL NIL \"inner\" \"example.org\")) "
        "((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) "
        "NIL NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
        "\"7bit\" 11 0)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
        "19 0)(\"image\" \"png\" NIL NIL NIL \"base64\" 12) \"mixed\") 19) \"mixed\")" },
    { "text-transfer.eml",
      "(NIL \"transfer encodings\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL "
        "\"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.net\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 44 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
        "\"Quoted-Printable\" 110 3 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"xx\") "
        "NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 44 "
        "0)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"Quoted-Printable\" "
        "110 3) \"mixed\")" },
    { "unquoted-boundary.eml",
      "(NIL \"unquoted boundary with '='\" ((NIL NIL \"oe\" \"example.org\")) ((NIL "
        "NIL \"oe\" \"example.org\")) ((NIL NIL \"oe\" \"example.org\")) ((NIL NIL "
        "\"b\" \"example.org\")) NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"windows-1252\") NIL NIL "
        "\"quoted-printable\" 13 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
        "\"windows-1252\") NIL NIL \"quoted-printable\" 12 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL "
        "NIL NIL NIL) \"alternative\" (\"boundary\" \"----\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"windows-1252\") NIL NIL "
        "\"quoted-printable\" 13 0)(\"text\" \"html\" (\"charset\" \"windows-1252\") "
        "NIL NIL \"quoted-printable\" 12 0)(\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 0 0) \"alternative\")" },
    { "unterminated.eml",
      "(NIL NIL ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
        "((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1 "
        "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"u\") NIL NIL NIL)",
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
        "0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1) "
        "\"mixed\")" },
    { "uppercase-types.eml",
      "(NIL \"upper case types\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"b\" "
        "\"example.org\")) NIL NIL NIL NIL)",
      "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\" \"Format\" \"Flowed\") NIL "
        "NIL \"QUOTED-PRINTABLE\" 6 0 NIL (\"INLINE\" (\"FILENAME\" \"X.TXT\")) NIL "
        "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 124 (NIL \"inner\" ((NIL "
        "NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) ((NIL "
        "NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL) (\"Text\" \"HTML\" "
        "(\"Charset\" \"UTF-8\") NIL NIL \"8Bit\" 8 0 NIL NIL NIL NIL) 5 NIL NIL NIL "
        "NIL)(\"Application\" \"Octet-Stream\" (\"Name\" \"DATA.BIN\") NIL NIL "
        "\"BASE64\" 4 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"UP\") NIL NIL NIL)",
      "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\" \"Format\" \"Flowed\") NIL "
        "NIL \"QUOTED-PRINTABLE\" 6 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "
        "124 (NIL \"inner\" ((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" "
        "\"example.org\")) ((NIL NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL) "
        "(\"Text\" \"HTML\" (\"Charset\" \"UTF-8\") NIL NIL \"8Bit\" 8 0) "
        "5)(\"Application\" \"Octet-Stream\" (\"Name\" \"DATA.BIN\") NIL NIL "
        "\"BASE64\" 4) \"MIXED\")" },
    { "utf8-headers.eml",
      "(NIL {21}\r\nGr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x98\x95 "
        "(({15}\r\nJ\xc3\xbcrgen M\xc3\xbcller NIL {7}\r\nj\xc3\xbcrgen "
        "{11}\r\nex\xc3\xa4mple.de)) (({15}\r\nJ\xc3\xbcrgen M\xc3\xbcller NIL "
        "{7}\r\nj\xc3\xbcrgen {11}\r\nex\xc3\xa4mple.de)) (({15}\r\nJ\xc3\xbcrgen "
        "M\xc3\xbcller NIL {7}\r\nj\xc3\xbcrgen {11}\r\nex\xc3\xa4mple.de)) "
        "(({6}\r\n\xe5\xb1\xb1\xe7\x94\xb0 NIL \"yamada\" \"example.jp\")) NIL NIL "
        "NIL NIL)",
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

/* ------------------------------------------- Dovecot's rules, one by one */

struct rule_case {
    const char *text;        /* "\n" becomes CRLF */
    const char *envelope;    /* NULL: not checked */
    const char *bodystructure;
};

/* Each expected string is what Dovecot 2.3.19 sends for the message. */
static const struct rule_case rule_cases[] = {
    /* lines are the LFs of the body */
    { "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno line "
      "break\n--b\n\none\ntwo\n\n--b--\n",
      NULL,
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0 NIL "
        "NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "10 2 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)" },
    /* a boundary right after a closing one takes no line break */
    { "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: "
      "message/rfc822\n\nContent-Type: multipart/alternative; "
      "boundary=i\n\n--i\n\nx\n--i--\n--o--\n",
      NULL,
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 68 (NIL NIL NIL NIL NIL NIL "
        "NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 1 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"i\") NIL NIL "
        "NIL) 6 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"o\") NIL NIL NIL)" },
    /* types, parameters, encodings as written */
    { "MIME-Version: 1.0\nContent-Type: TEXT/Plain; CharSet=UTF-8; "
      "Format=Flowed\nContent-Transfer-Encoding: "
      "Quoted-Printable\nContent-Disposition: INLINE; FileName=A.TXT\n\nx\n",
      NULL,
      "(\"TEXT\" \"Plain\" (\"CharSet\" \"UTF-8\" \"Format\" \"Flowed\") NIL NIL "
        "\"Quoted-Printable\" 3 1 NIL (\"INLINE\" (\"FileName\" \"A.TXT\")) NIL NIL)" },
    /* a multipart without boundary shows one empty part */
    { "Content-Type: multipart/mixed\n\n--x\n\ntext\n--x--\n",
      NULL,
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL) \"mixed\" NIL NIL NIL NIL)" },
    /* invalid content types */
    { "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: "
      "text/\n\n1\n--b\nContent-Type: text\n\n2\n--b\nContent-Type: "
      "multipart\n\n3\n--b\nContent-Type: text/plain junk\n\n4\n--b--\n",
      NULL,
      "((\"\" \"\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL NIL)(\"text\" \"\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL "
        "NIL)(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL "
        "NIL)(\"\" \"\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"b\") NIL NIL NIL)" },
    /* Content-* need MIME-Version or Content-Type in a message */
    { "Content-Transfer-Encoding: base64\nContent-ID: <x@y>\nContent-Language: "
      "en\n\naGk=\n",
      NULL,
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL "
        "NIL NIL)" },
    /* the first valid encoding and language, dispositions until one has parameters */
    { "Content-Type: text/plain\nContent-Transfer-Encoding: two "
      "words\nContent-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: "
      "base64\nContent-Language: ()\nContent-Language: de, (x) "
      "en\nContent-Disposition: inline\nContent-Disposition: attachment; "
      "filename=a\nContent-Disposition: inline; filename=b\n\nx\n",
      NULL,
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" 3 1 NIL "
        "(\"attachment\" (\"filename\" \"a\")) (\"de\" \"en\") NIL)" },
    /* envelope: the last string field, every address field */
    { "Date: one\nDate: two\nSubject: first\nSubject: second\nFrom: "
      "a@example.org\nFrom: B <b@example.org>\nSender:\nTo: g: x@example.org;\nTo: "
      "y@example.org\nMessage-ID: <1@x>\nMessage-ID: <2@x>\n\n",
      "(\"two\" \"second\" ((NIL NIL \"a\" \"example.org\")(\"B\" NIL \"b\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")(\"B\" NIL \"b\" "
        "\"example.org\")) ((NIL NIL \"a\" \"example.org\")(\"B\" NIL \"b\" "
        "\"example.org\")) ((NIL NIL \"g\" NIL)(NIL NIL \"x\" \"example.org\")(NIL "
        "NIL NIL NIL)(NIL NIL \"y\" \"example.org\")) NIL NIL NIL \"<2@x>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)" },
    /* values as Dovecot reads them: a leading fold, trailing blanks */
    { "Date:\n Mon, 1 Dec 2025 10:00:00 +0000  \nSubject: folded\n  "
      "subject\nMessage-ID:  \n <id@x>\nIn-Reply-To: a?b\n\n",
      "(\" Mon, 1 Dec 2025 10:00:00 +0000  \" {14}\r\nfolded subject NIL NIL NIL "
        "NIL NIL NIL \"a?b\" \"  <id@x>\")",
      "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL)" },
    /* message/global is a leaf */
    { "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: "
      "message/global\n\nSubject: inner\nContent-Type: multipart/mixed; "
      "boundary=c\n\n--c\n\nx\n--c--\n--b--\n",
      NULL,
      "((\"message\" \"global\" NIL NIL NIL \"7bit\" 76 NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"b\") NIL NIL NIL)" },
    /* RFC 2231 as Dovecot joins it */
    { "Content-Type: application/x; b*1=\"2\"; a=1; b*0*=us-ascii''%41; c*0=x; "
      "c*2=z; d*0=\"50%\"; d*1*=%41\n\n",
      NULL,
      "(\"application\" \"x\" (\"a\" \"1\" \"b*\" \"us-ascii''%412\" \"c*0\" \"x\" "
        "\"c*2\" \"z\" \"d*\" \"''50%25%41\") NIL NIL \"7bit\" 0 NIL NIL NIL NIL)" },
    /* a header cut by a boundary; digest default */
    { "Content-Type: multipart/digest; boundary=d\n\n--d\nContent-Type: "
      "message/rfc822\n--d\n\nSubject: s\n\nbody\n--d--\n",
      NULL,
      "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
        "0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL "
        "\"7bit\" 18 (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL NIL NIL) 2 NIL NIL "
        "NIL NIL) \"digest\" (\"boundary\" \"d\") NIL NIL NIL)" },
    /* an empty boundary: every "--" line */
    { "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\none\n----\n",
      NULL,
      "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0 NIL NIL "
        "NIL NIL) \"mixed\" (\"boundary\" \"\") NIL NIL NIL)" },
    /* a boundary that is the whole line wins over a longer prefix match */
    { "Content-Type: multipart/mixed; boundary=\"x--\"\n\n--x--\n"
      "Content-Type: multipart/alternative; boundary=x\n\n--x\n\ninner\n--x--\n"
      "after inner\n--x--\n\nouter 2\n--x----\n",
      NULL,
      "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL "
        "NIL NIL) \"alternative\" (\"boundary\" \"x\") NIL NIL NIL)(\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0 NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"x--\") NIL NIL NIL)" },
};

static void test_dovecot_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        struct inline_msg im;
        load_text(&im, rule_cases[i].text);
        if (rule_cases[i].envelope)
            check_envelope(&im.m->root, 0, rule_cases[i].envelope);
        check_body(im.m, true, rule_cases[i].bodystructure);
        size_t elen;
        char *enc = mime_encode(im.m, &elen);
        assert_non_null(enc);
        struct mime_message *d = mime_decode(enc, elen);
        assert_non_null(d);
        check_body(d, true, rule_cases[i].bodystructure);
        mime_free(&d);
        free(enc);
        unload_text(&im);
    }

    /* A NUL in a header value is U+FFFD (Dovecot's message_header_strdup);
     * a string with it is 8-bit, so a literal. */
    static const char nul[] = "In-Reply-To: a\0b\r\nContent-ID: <\0>\r\n"
                              "Content-Type: text/plain\r\n\r\n";
    struct mime_message *m = mime_parse(nul, sizeof nul - 1);
    assert_non_null(m);
    check_envelope(&m->root, 0, "(NIL NIL NIL NIL NIL NIL NIL NIL {5}\r\na\xef\xbf\xbd" "b NIL)");
    check_body(m, false, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") {5}\r\n"
                         "<\xef\xbf\xbd> NIL \"7bit\" 0 0)");
    mime_free(&m);
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
        snprintf(text, sizeof text, "MIME-Version: 1.0\nContent-Transfer-Encoding: %s\n\n%s",
                 cases[i].cte, cases[i].body);
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
        cmocka_unit_test(test_dovecot_rules),
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
