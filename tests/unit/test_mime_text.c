/*
 * test_mime_text.c — decoded text for search: transfer encodings, charsets,
 * RFC 2047 encoded words, HTML stripping, nested messages, skipped
 * attachments, the size cap, repaired UTF-8; and the case-folding matcher.
 * Every output is checked to be valid UTF-8 without NUL bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

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

static void assert_clean(const char *s, size_t len)
{
    assert_non_null(s);
    assert_int_equal(strlen(s), len);   /* NUL-terminated, no NUL inside */
    if (!mime_utf8_valid(s, len))
        fail_msg("not valid UTF-8: \"%s\"", s);
}

static struct mime_text *extract_mem(const char *data, size_t len, size_t cap)
{
    struct mime_message *m = mime_parse(data, len);
    assert_non_null(m);
    struct mime_text *t = mime_text_extract(m, data, len, cap);
    assert_non_null(t);
    mime_free(&m);
    assert_clean(t->header, t->header_len);
    assert_clean(t->body, t->body_len);
    assert_true(t->header_len + t->body_len <= cap);
    return t;
}

static struct mime_text *extract_file(const char *name)
{
    size_t len;
    char *data = read_data(name, &len);
    struct mime_text *t = extract_mem(data, len, MIME_TEXT_CAP);
    free(data);
    return t;
}

#define assert_has(hay, needle)                                                     \
    do {                                                                            \
        if (!strstr((hay), (needle)))                                               \
            fail_msg("\"%s\" not found in:\n%s", (needle), (hay));                  \
    } while (0)

#define assert_lacks(hay, needle)                                                   \
    do {                                                                            \
        if (strstr((hay), (needle)))                                                \
            fail_msg("\"%s\" unexpectedly in:\n%s", (needle), (hay));               \
    } while (0)

static char *hdec(const char *v)
{
    size_t n;
    char *s = mime_header_decode(v, strlen(v), &n);
    assert_clean(s, n);
    return s;
}

static void assert_hdec(const char *in, const char *want)
{
    char *got = hdec(in);
    if (strcmp(got, want) != 0)
        fail_msg("decode(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

/* ------------------------------------------------- transfer encodings */

static void test_transfer(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-transfer.eml");
    assert_has(t->header, "Subject: transfer encodings\n");
    assert_has(t->header, "From: a@example.org\n");
    assert_has(t->body, "Grüße aus Köln, base64 works.");
    assert_has(t->body, "Soft line break and café and € lower hex, a literal = sign, \n");
    assert_has(t->body, "padded soft break joined.");
    assert_lacks(t->body, "preamble");
    assert_lacks(t->body, "epilogue");
    assert_lacks(t->body, "\r");
    assert_false(t->truncated);
    mime_text_free(&t);
    assert_null(t);
}

/* ------------------------------------------------------------ charsets */

static void test_charsets(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-charsets.eml");
    assert_has(t->body, "latin1: déjà vu\n");
    assert_has(t->body, "cp1252: “quoted” – 5 €\n");
    assert_has(t->body, "koi8: Привет, мир\n");
    assert_has(t->body, "日本語のテキスト\n");
    assert_has(t->body, "\nbom: Zoë\n");          /* the BOM is gone */
    assert_lacks(t->body, "\xEF\xBB\xBF");
    assert_has(t->body, "unknown: ok é bad \xEF\xBF\xBD end");
    assert_has(t->body, "default us-ascii");
    mime_text_free(&t);
}

/* A UTF-8 text in charset cs, transfer-encoded, over many 16 KiB chunks: the
 * extracted body is the text again, whatever falls on a chunk boundary. */
static char *to_charset(const char *utf8, const char *cs, size_t *out_len)
{
    iconv_t cd = iconv_open(cs, "UTF-8");
    assert_true(cd != (iconv_t)-1);
    size_t in_left = strlen(utf8), cap = in_left * 2 + 16, out_left = cap;
    char *out = malloc(cap), *ip = (char *)utf8, *op = out;
    assert_true(iconv(cd, &ip, &in_left, &op, &out_left) != (size_t)-1);
    iconv_close(cd);
    *out_len = cap - out_left;
    return out;
}

static char *b64(const unsigned char *in, size_t n, size_t *out_len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(n * 2 + 8), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0)
                     | (i + 2 < n ? in[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
        if ((i / 3) % 19 == 18)
            *o++ = '\n';
    }
    *out_len = (size_t)(o - out);
    return out;
}

/* Every byte =XX, soft breaks every 60 columns: chunk edges cut escapes. */
static char *qp(const unsigned char *in, size_t n, size_t *out_len)
{
    char *out = malloc(n * 4 + 8), *o = out;
    for (size_t i = 0; i < n; i++) {
        o += sprintf(o, "=%02X", in[i]);
        if (i % 20 == 19)
            o += sprintf(o, "=\r\n");
    }
    *out_len = (size_t)(o - out);
    return out;
}

static void roundtrip(const char *text, const char *cs, const char *cte)
{
    size_t enc_len, body_len;
    char *enc = to_charset(text, cs, &enc_len);
    char *body = strcmp(cte, "base64") == 0 ? b64((unsigned char *)enc, enc_len, &body_len)
               : strcmp(cte, "quoted-printable") == 0 ? qp((unsigned char *)enc, enc_len, &body_len)
               : (body_len = enc_len, memcpy(malloc(enc_len), enc, enc_len));
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "Subject: x\nContent-Type: text/plain; charset=%s\n"
                      "Content-Transfer-Encoding: %s\n\n", cs, cte);
    size_t len = (size_t)hn + body_len;
    char *msg = malloc(len);
    memcpy(msg, head, (size_t)hn);
    memcpy(msg + hn, body, body_len);
    struct mime_text *t = extract_mem(msg, len, 4 * MIME_TEXT_CAP);
    if (t->body_len != strlen(text) || memcmp(t->body, text, t->body_len) != 0)
        fail_msg("%s/%s: body differs (%zu bytes, want %zu)", cs, cte, t->body_len,
                 strlen(text));
    mime_text_free(&t);
    free(msg);
    free(body);
    free(enc);
}

static char *repeat(const char *unit, int times)
{
    size_t ul = strlen(unit), n = 0;
    char *text = malloc(ul * (size_t)times + 1);
    for (int i = 0; i < times; i++, n += ul)
        memcpy(text + n, unit, ul);
    text[n] = '\0';
    return text;
}

static void test_chunk_boundaries(void **state)
{
    (void)state;
    /* Odd byte lengths, so characters straddle every 16 KiB chunk edge. */
    char *any = repeat("Ünïcödé ткст 日本語 \n", 4000);
    char *sjis = repeat("日本語のテキスト ткст x\n", 4000);
    const char *ctes[] = { "8bit", "base64", "quoted-printable" };
    for (size_t i = 0; i < 3; i++) {
        roundtrip(any, "UTF-8", ctes[i]);
        roundtrip(any, "UTF-16LE", ctes[i]);
        roundtrip(any, "GB18030", ctes[i]);
        roundtrip(sjis, "SHIFT_JIS", ctes[i]);
        roundtrip(sjis, "ISO-2022-JP", ctes[i]);
    }
    free(any);
    free(sjis);
}

/* ------------------------------------------------------- encoded words */

static void test_encoded_words_message(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-encoded-words.eml");
    const char *h = t->header;
    assert_has(h, "From: André Pirard <PIRARD@vm1.ulg.ac.be>\n");
    assert_has(h, "To: Keith Moore <moore@cs.utk.edu>\n");
    assert_has(h, "Cc: Привет <ivan@example.ru>\n");
    /* RFC 2047 §6.2: the folding white space between adjacent words goes. */
    assert_has(h, "Subject: Héllo wörld! plain again\n");
    assert_has(h, "X-Broken: =?UTF-8?Q?no end and =?UTF-8?X?bad?= and =?UTF-8?B?!!!?= "
                  "and =??Q?x?=\n");
    assert_has(h, "X-Split: \xE2\x9A\xA1\n");    /* one character over two words */
    assert_has(h, "X-Lang: English\n");
    assert_has(h, "X-Raw: café raw utf-8 and a bad \xEF\xBF\xBD byte\n");
    assert_has(t->body, "Body.");
    mime_text_free(&t);
}

static void test_header_decode(void **state)
{
    (void)state;
    assert_hdec("", "");
    assert_hdec("plain", "plain");
    assert_hdec("=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text");
    /* RFC 2047 §8 examples */
    assert_hdec("(=?ISO-8859-1?Q?a?=)", "(a)");
    assert_hdec("(=?ISO-8859-1?Q?a?= b)", "(a b)");
    assert_hdec("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)");
    assert_hdec("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)");
    assert_hdec("(=?ISO-8859-1?Q?a?=\t =?ISO-8859-1?Q?b?=)", "(ab)");
    assert_hdec("(=?ISO-8859-1?Q?a_b?=)", "(a b)");
    assert_hdec("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)");
    /* adjacent without any white space (broken, but common) */
    assert_hdec("=?UTF-8?Q?a?==?UTF-8?Q?b?=", "ab");
    /* different charsets joined too, each converted on its own */
    assert_hdec("=?koi8-r?B?8NLJ18XU?= =?iso-8859-1?Q?=E9t=E9?=", "Приветété");
    assert_hdec("=?windows-1252?Q?=93x=94?=", "“x”");
    assert_hdec("=?SHIFT_JIS?B?k/qWe4zq?=", "日本語");
    assert_hdec("=?utf-8?b?w6k?=", "é");                  /* no padding */
    assert_hdec("=?UTF-8?Q?caf=C3=A9?= is ok", "café is ok");
    assert_hdec("text =?UTF-8?Q?x?=text", "text xtext");
    /* broken words stay as they are */
    assert_hdec("=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated");
    assert_hdec("=?UTF-8?Z?x?=", "=?UTF-8?Z?x?=");
    assert_hdec("=?UTF-8?B?a b?=", "=?UTF-8?B?a b?=");
    assert_hdec("=?UTF-8?B?a*b?=", "=?UTF-8?B?a*b?=");
    assert_hdec("=??B?YQ==?=", "=??B?YQ==?=");
    assert_hdec("=?UTF-8?Q?a", "=?UTF-8?Q?a");
    assert_hdec("=?", "=?");
    assert_hdec("=", "=");
    /* a bad escape in Q is kept literally; bad bytes in the charset repaired */
    assert_hdec("=?UTF-8?Q?100=ZZ?=", "100=ZZ");
    assert_hdec("=?UTF-8?Q?=FF?=", "\xEF\xBF\xBD");
    assert_hdec("=?UTF-8?Q?=E2=82?=", "\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_hdec("=?shift_jis?Q?=82?=", "\xEF\xBF\xBD");
    /* unknown charset: UTF-8 with repairs; charset names iconv must not see */
    assert_hdec("=?x-unknown-cs?Q?caf=C3=A9?=", "café");
    assert_hdec("=?utf-8//TRANSLIT?Q?=C3=A9?=", "é");
    assert_hdec("=?../../etc/passwd?Q?a?=", "a");
    /* control characters become spaces */
    assert_hdec("=?UTF-8?Q?a=00b=0D=0Ac?=", "a b  c");
    /* a NUL in the middle of the input */
    size_t n;
    char *s = mime_header_decode("a\0b", 3, &n);
    assert_clean(s, n);
    assert_string_equal(s, "a b");
    free(s);
    s = mime_header_decode(NULL, 0, &n);
    assert_clean(s, n);
    free(s);
}

/* ----------------------------------------------------------------- HTML */

static void test_html(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-html.eml");
    const char *b = t->body;
    assert_has(b, "Plain version.");
    assert_has(b, "The Title");
    assert_has(b, "Hello boldworld & café é€ <tag> &unknown; AT&T 1 < 2");
    assert_has(b, "Block\ntwo");
    assert_has(b, "link–\xEF\xBF\xBD" "end");
    assert_lacks(b, "secret");        /* script, style, comment, attributes */
    assert_lacks(b, "color");
    assert_lacks(b, "&unknown;x");
    assert_lacks(b, "<b>");
    assert_lacks(b, "\xC2\xA0");      /* &nbsp; is a plain space */
    mime_text_free(&t);

    /* Constructs cut by the end of the part, and a plain '<'. */
    const char *cases[][2] = {
        { "a &amp", "a &" },
        { "a &", "a &" },
        { "x <", "x <" },
        { "x <b", "x" },
        { "<script>never closed", "" },
        { "<!-- never closed", "" },
        { "<p>a</p>\n\n   <p>b</p>", "a\nb" },
        { "&#x110000;&#55296;&#99999999999999999999;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
        { "<SCRIPT>x</script\n>y", "y" },
        { "<style>a<b</style>c", "c" },
        { "&#65&#x42;&copy;", "AB©" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512];
        int len = snprintf(msg, sizeof msg, "Content-Type: text/html\n\n%s", cases[i][0]);
        struct mime_text *h = extract_mem(msg, (size_t)len, MIME_TEXT_CAP);
        if (strcmp(h->body, cases[i][1]) != 0)
            fail_msg("html \"%s\" -> \"%s\", want \"%s\"", cases[i][0], h->body, cases[i][1]);
        mime_text_free(&h);
    }
}

/* ----------------------------------------------- nesting, attachments */

static void test_nested(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-nested.eml");
    assert_has(t->header, "Subject: outer\n");
    assert_lacks(t->header, "inner");
    assert_has(t->body, "Outer text.");
    assert_has(t->body, "From: inner@example.org\n");
    assert_has(t->body, "Subject: inner subjéct\n");
    assert_has(t->body, "Inner text.");
    assert_has(t->body, "Attached text file.");   /* text/ * attachments count */
    assert_lacks(t->body, "secretpdf");
    assert_lacks(t->body, "secretpng");
    assert_lacks(t->body, "c2VjcmV0cG5n");
    assert_lacks(t->body, "PDF");
    /* Part headers are not text, only message headers are. */
    assert_lacks(t->body, "Content-Disposition");
    /* In order: outer text, then the inner message. */
    assert_true(strstr(t->body, "Outer text.") < strstr(t->body, "Inner text."));
    mime_text_free(&t);
}

/* message/global is one body in the tree (as Dovecot shows it); its text
 * is still found, the inner structure parsed on the fly. */
static void test_message_global(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("message-global.eml");
    assert_has(t->body, "Forwarded below.");
    assert_has(t->body, "Subject: Gr\xc3\xbc\xc3\x9f" "e\n");
    assert_has(t->body, "Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e.");
    mime_text_free(&t);

    /* Only identity encodings are read as a message; nesting is bounded. */
    static const char b64[] = "Content-Type: message/global\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n"
                              "U3ViamVjdDogeAoKc2VjcmV0Cg==\r\n";
    t = extract_mem(b64, sizeof b64 - 1, MIME_TEXT_CAP);
    assert_lacks(t->body, "secret");
    mime_text_free(&t);
    char deep[2048];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n,
                              "Content-Type: message/global\r\n\r\n");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "Content-Type: text/plain\r\n\r\nbottom\r\n");
    t = extract_mem(deep, n, MIME_TEXT_CAP);
    assert_lacks(t->body, "bottom");
    mime_text_free(&t);
}

/* ------------------------------------------------------- invalid UTF-8 */

static void test_invalid_utf8(void **state)
{
    (void)state;
    struct mime_text *t = extract_file("text-invalid-utf8.eml");
    assert_has(t->header, "From: bad\xEF\xBF\xBD <a@example.org>\n");
    assert_has(t->header, "too big");
    assert_has(t->body, "ok € then \xEF\xBF\xBD\xEF\xBF\xBD cut, \xEF\xBF\xBD lone, "
                        "\xF0\x9F\x98\x80 emoji, NUL here\n");
    assert_has(t->body, "trailing lead \xEF\xBF\xBD");
    mime_text_free(&t);

    /* Every single-byte value, in each charset path. */
    const char *charsets[] = { "utf-8", "iso-8859-1", "shift_jis", "koi8-r", "utf-16",
                               "iso-2022-jp", "utf-7", "no-such" };
    for (size_t c = 0; c < sizeof charsets / sizeof charsets[0]; c++) {
        char msg[1024];
        int n = snprintf(msg, sizeof msg, "Content-Type: text/plain; charset=%s\n\n",
                         charsets[c]);
        for (int i = 0; i < 256; i++)
            msg[n++] = (char)(255 - i);
        struct mime_text *x = extract_mem(msg, (size_t)n, MIME_TEXT_CAP);
        mime_text_free(&x);
    }
}

/* ------------------------------------------------------------- the cap */

static void test_cap(void **state)
{
    (void)state;
    /* A header and a body of multibyte characters, cut at every size. */
    const char *msg = "Subject: =?utf-8?q?=C3=A9t=C3=A9?= \xE6\x97\xA5\n"
                      "Content-Type: text/plain; charset=utf-8\n\n"
                      "\xF0\x9F\x98\x80\xC3\xA9\xE6\x97\xA5 text \xF0\x9F\x98\x80\n";
    size_t len = strlen(msg);
    struct mime_text *full = extract_mem(msg, len, MIME_TEXT_CAP);
    assert_false(full->truncated);
    size_t total = full->header_len + full->body_len;
    for (size_t cap = 0; cap <= total + 1; cap++) {
        struct mime_text *t = extract_mem(msg, len, cap);
        assert_true(t->header_len + t->body_len <= cap);
        assert_int_equal(t->truncated, cap < total);
        /* A prefix of the full text, cut on a character boundary. */
        assert_true(t->header_len <= full->header_len);
        assert_memory_equal(t->header, full->header, t->header_len);
        assert_memory_equal(t->body, full->body, t->body_len);
        if (t->body_len > 0)
            assert_int_equal(t->header_len, full->header_len);
        /* Only a character that does not fit is left out. */
        assert_true(cap < total ? cap - (t->header_len + t->body_len) < 4 : true);
        mime_text_free(&t);
    }
    mime_text_free(&full);

    /* A big body stops at the cap; memory and time stay bounded. */
    size_t big = 8u << 20;
    char *m = malloc(big);
    int hn = snprintf(m, big, "Content-Type: text/plain; charset=utf-8\n\n");
    for (size_t i = (size_t)hn; i < big; i++)
        m[i] = "\xC3\xA9 abc\n"[(i - (size_t)hn) % 7];
    struct mime_text *t = extract_mem(m, big, MIME_TEXT_CAP);
    assert_true(t->truncated);
    assert_true(t->header_len + t->body_len > MIME_TEXT_CAP - 4);
    mime_text_free(&t);
    free(m);
}

static void test_mismatch(void **state)
{
    (void)state;
    const char *msg = "Subject: x\n\nbody\n";
    struct mime_message *m = mime_parse(msg, strlen(msg));
    assert_null(mime_text_extract(m, msg, strlen(msg) - 1, MIME_TEXT_CAP));
    assert_null(mime_text_extract(NULL, msg, strlen(msg), MIME_TEXT_CAP));
    mime_free(&m);
    /* The empty message. */
    m = mime_parse("", 0);
    struct mime_text *t = mime_text_extract(m, "", 0, MIME_TEXT_CAP);
    assert_non_null(t);
    assert_string_equal(t->header, "");
    assert_string_equal(t->body, "");
    mime_text_free(&t);
    mime_text_free(&t);
    mime_free(&m);
}

/* --------------------------------------------------- matching, folding */

static void assert_match(const char *hay, const char *needle, int want)
{
    int got = mime_search_match(hay, strlen(hay), needle, strlen(needle));
    if (got != want)
        fail_msg("match(\"%s\", \"%s\") = %d, want %d", hay, needle, got, want);
}

static void test_match(void **state)
{
    (void)state;
    assert_match("Hello World", "WORLD", 1);
    assert_match("Hello World", "o w", 1);
    assert_match("Hello World", "worlds", 0);
    assert_match("anything", "", 1);
    assert_match("", "x", 0);
    /* Latin-1 Supplement, Latin Extended-A */
    assert_match("GRÜSSE AUS KÖLN", "köln", 1);
    assert_match("Ÿ and Œuvre", "ÿ AND œ", 1);
    assert_match("ĞÜŞİÖÇ", "ğüş", 1);
    assert_match("ŁÓDŹ", "łódź", 1);
    assert_match("ſ", "S", 1);                     /* long s folds to s */
    assert_match("straße", "STRASSE", 0);          /* simple folding only */
    assert_match("STRAẞE", "straße", 1);           /* U+1E9E -> ß */
    assert_match("µ", "Μ", 1);                     /* micro sign, Greek capital mu */
    /* Greek */
    assert_match("ΟΔΥΣΣΕΥΣ", "οδυσσευς", 1);
    assert_match("Οδυσσεύς", "ΟΔΥΣΣΕΎΣ", 1);         /* final sigma */
    assert_match("ΆΈΉΊΌΎΏ", "άέήίόύώ", 1);
    /* Cyrillic */
    assert_match("ПРИВЕТ, МИР", "привет", 1);
    assert_match("ЁЖИК Ї Є Ґ", "ёжик ї є ґ", 1);
    assert_match("Ѣ", "ѣ", 1);
    /* Beyond the brief: Armenian, fullwidth, Kelvin sign */
    assert_match("ԱԲԳ", "աբգ", 1);
    assert_match("ＡＢＣ", "ａｂｃ", 1);
    assert_match("\xE2\x84\xAA", "k", 1);
    /* Invalid bytes only match themselves. */
    assert_match("a\xFF" "b", "\xFF", 1);
    assert_match("a\xFF" "B", "\xFF" "b", 1);
    assert_match("ab", "\xFF", 0);

    size_t n;
    const char *mixed = "ÀÉÎÕÜ ΑΒΓ АБВ ς \xC8\xBA";
    char *f = mime_casefold(mixed, strlen(mixed), &n);
    assert_string_equal(f, "àéîõü αβγ абв σ \xE2\xB1\xA5");   /* U+023A -> U+2C65 */
    assert_int_equal(n, strlen(f));
    free(f);
    f = mime_casefold("", 0, &n);
    assert_string_equal(f, "");
    free(f);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(mime_utf8_valid("", 0));
    assert_true(mime_utf8_valid("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 10));
    assert_true(mime_utf8_valid("\xF4\x8F\xBF\xBF", 4));
    assert_false(mime_utf8_valid("\xF4\x90\x80\x80", 4));   /* > U+10FFFF */
    assert_false(mime_utf8_valid("\xED\xA0\x80", 3));       /* surrogate */
    assert_false(mime_utf8_valid("\xC0\xAF", 2));           /* overlong */
    assert_false(mime_utf8_valid("\xE0\x80\xAF", 3));       /* overlong */
    assert_false(mime_utf8_valid("\xE2\x82", 2));           /* cut short */
    assert_false(mime_utf8_valid("\x80", 1));
    assert_false(mime_utf8_valid("\xFF", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_chunk_boundaries),
        cmocka_unit_test(test_encoded_words_message),
        cmocka_unit_test(test_header_decode),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_message_global),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
