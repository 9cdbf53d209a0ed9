/*
 * test_mime.c — the MIME parser on the messages in tests/data/mime (structure,
 * parameters, offsets, repairs, limits) and the stored form: every parse
 * survives mime_encode / mime_decode unchanged, and mime_decode rejects
 * truncated, corrupt and hostile encodings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

/* ------------------------------------------------------------ helpers */

struct msg_file {
    char *data;
    size_t len;
    struct mime_message *m;
};

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

static void load(const char *name, struct msg_file *mf)
{
    mf->data = read_data(name, &mf->len);
    mf->m = mime_parse(mf->data, mf->len);
    assert_non_null(mf->m);
    assert_int_equal(mf->m->size, mf->len);
}

static void unload(struct msg_file *mf)
{
    mime_free(&mf->m);
    assert_null(mf->m);
    free(mf->data);
}

/* data[start, end) is exactly text. */
static void assert_span(const char *data, size_t start, size_t end, const char *text)
{
    assert_true(start <= end);
    size_t n = strlen(text);
    if (end - start != n || memcmp(data + start, text, n) != 0)
        fail_msg("span [%zu,%zu) is \"%.*s\", expected \"%s\"", start, end,
                 (int)(end - start), data + start, text);
}

static void assert_type(const struct mime_part *p, const char *type, const char *subtype)
{
    assert_string_equal(p->type, type);
    assert_string_equal(p->subtype, subtype);
}

static const char *param(const struct mime_param *ps, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ps[i].name, name) == 0)
            return ps[i].value;
    return NULL;
}

static void assert_param(const struct mime_part *p, const char *name, const char *value)
{
    const char *v = param(p->params, p->n_params, name);
    if (!v)
        fail_msg("no parameter %s", name);
    assert_string_equal(v, value);
}

/* ------------------------------------------------- deep tree comparison */

static void assert_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        assert_true(a == b);
    else
        assert_string_equal(a, b);
}

static void assert_params_eq(const struct mime_param *a, unsigned na,
                             const struct mime_param *b, unsigned nb)
{
    assert_int_equal(na, nb);
    for (unsigned i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_string_equal(a[i].value, b[i].value);
    }
}

static void assert_part_eq(const struct mime_part *a, const struct mime_part *b)
{
    assert_int_equal(a->header_start, b->header_start);
    assert_int_equal(a->body_start, b->body_start);
    assert_int_equal(a->end, b->end);
    assert_int_equal(a->body_lines, b->body_lines);
    assert_str_eq(a->type, b->type);
    assert_str_eq(a->subtype, b->subtype);
    assert_params_eq(a->params, a->n_params, b->params, b->n_params);
    assert_str_eq(a->id, b->id);
    assert_str_eq(a->description, b->description);
    assert_str_eq(a->encoding, b->encoding);
    assert_str_eq(a->md5, b->md5);
    assert_str_eq(a->disposition, b->disposition);
    assert_params_eq(a->disp_params, a->n_disp_params, b->disp_params, b->n_disp_params);
    assert_str_eq(a->language, b->language);
    assert_str_eq(a->location, b->location);
    assert_int_equal(a->multipart, b->multipart);
    assert_int_equal(a->n_children, b->n_children);
    for (unsigned i = 0; i < a->n_children; i++)
        assert_part_eq(&a->children[i], &b->children[i]);
    assert_int_equal(a->message != NULL, b->message != NULL);
    if (a->message)
        assert_part_eq(a->message, b->message);
    assert_str_eq(a->date, b->date);
    assert_str_eq(a->subject, b->subject);
    assert_str_eq(a->from, b->from);
    assert_str_eq(a->sender, b->sender);
    assert_str_eq(a->reply_to, b->reply_to);
    assert_str_eq(a->to, b->to);
    assert_str_eq(a->cc, b->cc);
    assert_str_eq(a->bcc, b->bcc);
    assert_str_eq(a->in_reply_to, b->in_reply_to);
    assert_str_eq(a->message_id, b->message_id);
}

/*
 * The stored form: decode(encode(m)) equals m and encodes to the same bytes;
 * every strict prefix, and the encoding with a byte appended, is rejected;
 * no single-byte corruption crashes (ASan builds check the memory).
 */
static void assert_roundtrip(const struct mime_message *m)
{
    size_t len = 0;
    char *enc = mime_encode(m, &len);
    assert_non_null(enc);
    struct mime_message *d = mime_decode(enc, len);
    assert_non_null(d);
    assert_int_equal(d->n_parts, m->n_parts);
    assert_int_equal(d->repaired, m->repaired);
    assert_int_equal(d->size, m->size);
    assert_part_eq(&m->root, &d->root);
    size_t len2 = 0;
    char *enc2 = mime_encode(d, &len2);
    assert_non_null(enc2);
    assert_int_equal(len, len2);
    assert_memory_equal(enc, enc2, len);
    free(enc2);
    mime_free(&d);

    for (size_t cut = 0; cut < len; cut++) {
        struct mime_message *t = mime_decode(enc, cut);
        if (t)
            fail_msg("mime_decode accepted a truncation to %zu of %zu bytes", cut, len);
    }
    char *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, enc, len);
    longer[len] = 0;
    assert_null(mime_decode(longer, len + 1));

    for (size_t i = 0; i < len; i++) {
        static const uint8_t flips[] = { 0x01, 0x80, 0xff };
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(longer, enc, len);
            longer[i] = (char)(longer[i] ^ flips[k]);
            struct mime_message *x = mime_decode(longer, len);
            if (x) {
                /* Accepted: then it is a tree that encodes and decodes again. */
                size_t l3;
                char *e3 = mime_encode(x, &l3);
                assert_non_null(e3);
                struct mime_message *y = mime_decode(e3, l3);
                assert_non_null(y);
                assert_part_eq(&x->root, &y->root);
                mime_free(&y);
                free(e3);
                mime_free(&x);
            }
        }
    }
    free(longer);
    free(enc);
}

/* -------------------------------------------------------- the messages */

static void test_simple(void **state)
{
    struct msg_file mf;
    load("simple.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_int_equal(mf.m->n_parts, 1);
    assert_false(mf.m->repaired);
    assert_type(r, "text", "plain");
    assert_int_equal(r->n_params, 1);
    assert_param(r, "charset", "us-ascii");    /* added, as IMAP reports it */
    assert_string_equal(r->encoding, "7bit");
    assert_false(r->multipart);
    assert_int_equal(r->n_children, 0);
    assert_null(r->message);
    assert_string_equal(r->date, "Mon, 1 Dec 2025 10:00:00 +0000");
    assert_string_equal(r->from, "Alice <alice@example.org>");
    assert_string_equal(r->to, "Bob <bob@example.net>");
    assert_string_equal(r->subject, "Hello");
    assert_string_equal(r->message_id, "<simple-1@example.org>");
    assert_null(r->cc);
    assert_null(r->sender);
    /* The header ends with its empty line; the body runs to the end. */
    assert_int_equal(r->header_start, 0);
    assert_span(mf.data, r->body_start - 4, r->body_start, "\r\n\r\n");
    assert_span(mf.data, r->body_start, r->end, "Hello Bob,\r\nthis is plain text.\r\n");
    assert_int_equal(r->end, mf.len);
    assert_int_equal(r->body_lines, 2);
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_alternative(void **state)
{
    struct msg_file mf;
    load("alternative.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_int_equal(mf.m->n_parts, 3);
    assert_false(mf.m->repaired);
    assert_type(r, "multipart", "alternative");
    assert_param(r, "boundary", "alt-b1");
    assert_true(r->multipart);
    assert_int_equal(r->n_children, 2);
    assert_string_equal(r->subject, "Alternative");
    /* The preamble and epilogue belong to the multipart's body. */
    assert_span(mf.data, r->body_start, r->body_start + 21, "This is the preamble.");
    assert_int_equal(r->end, mf.len);

    const struct mime_part *t = &r->children[0];
    assert_type(t, "text", "plain");
    assert_param(t, "charset", "utf-8");
    assert_int_equal(t->n_params, 1);
    assert_string_equal(t->encoding, "quoted-printable");
    assert_span(mf.data, t->header_start, t->body_start,
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    /* RFC 2046 §5.1.1: the CRLF before a boundary is the boundary's. */
    assert_span(mf.data, t->body_start, t->end, "Plain body.");
    assert_int_equal(t->body_lines, 0);      /* the LFs in the body (Dovecot) */
    assert_null(t->subject);     /* envelope fields only on messages */

    const struct mime_part *h = &r->children[1];
    assert_type(h, "text", "html");
    assert_param(h, "charset", "utf-8");
    assert_span(mf.data, h->header_start, h->body_start,
                "Content-Type: text/html; charset=\"utf-8\"\r\n\r\n");
    assert_span(mf.data, h->body_start, h->end, "<p>HTML body.</p>");
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_nested_mixed(void **state)
{
    struct msg_file mf;
    load("nested-mixed.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_int_equal(mf.m->n_parts, 5);
    assert_false(mf.m->repaired);
    assert_type(r, "multipart", "mixed");
    assert_param(r, "boundary", "outer");     /* from a folded field */
    assert_int_equal(r->n_children, 2);

    const struct mime_part *alt = &r->children[0];
    assert_type(alt, "multipart", "alternative");
    assert_param(alt, "boundary", "inner");
    assert_true(alt->multipart);
    assert_int_equal(alt->n_children, 2);
    assert_type(&alt->children[0], "text", "plain");
    assert_span(mf.data, alt->children[0].body_start, alt->children[0].end, "Text version.");
    assert_type(&alt->children[1], "text", "html");
    assert_span(mf.data, alt->children[1].body_start, alt->children[1].end,
                "<b>HTML version.</b>");
    /* The inner multipart ends before the line break that precedes the
     * outer boundary: its epilogue is the empty line after "--inner--". */
    assert_span(mf.data, alt->end - 11, alt->end, "--inner--\r\n");
    assert_true(alt->children[1].end < alt->end);

    const struct mime_part *pdf = &r->children[1];
    assert_type(pdf, "application", "pdf");
    assert_param(pdf, "name", "report.pdf");
    assert_int_equal(pdf->n_params, 1);       /* no charset outside text/ */
    assert_string_equal(pdf->encoding, "BASE64");   /* as written */
    assert_string_equal(pdf->disposition, "attachment");
    assert_int_equal(pdf->n_disp_params, 2);
    assert_string_equal(param(pdf->disp_params, pdf->n_disp_params, "filename"), "report.pdf");
    assert_string_equal(param(pdf->disp_params, pdf->n_disp_params, "size"), "12");
    assert_string_equal(pdf->id, "<pdf1@example.org>");
    assert_string_equal(pdf->description, "The report");
    assert_span(mf.data, pdf->header_start, pdf->header_start + 13, "Content-Type:");
    assert_span(mf.data, pdf->body_start, pdf->end, "JVBERi0xLjQK");
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_rfc822(void **state)
{
    struct msg_file mf;
    load("rfc822.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_int_equal(mf.m->n_parts, 4);
    assert_false(mf.m->repaired);
    assert_type(r, "multipart", "mixed");
    assert_string_equal(r->subject, "Fwd: Original");
    assert_int_equal(r->n_children, 2);
    assert_span(mf.data, r->children[0].body_start, r->children[0].end,
                "See the forwarded message.");

    const struct mime_part *fwd = &r->children[1];
    assert_type(fwd, "message", "rfc822");
    assert_int_equal(fwd->n_params, 0);
    assert_string_equal(fwd->disposition, "inline");
    assert_false(fwd->multipart);
    assert_null(fwd->subject);
    assert_non_null(fwd->message);

    const struct mime_part *in = fwd->message;
    /* The inner message is the whole body of the message/rfc822 part. */
    assert_int_equal(in->header_start, fwd->body_start);
    assert_int_equal(in->end, fwd->end);
    assert_type(in, "text", "plain");
    assert_param(in, "charset", "iso-8859-1");
    assert_string_equal(in->from, "carol@example.com");
    assert_string_equal(in->to, "alice@example.org");
    assert_string_equal(in->subject, "Original");
    assert_string_equal(in->date, "Sun, 30 Nov 2025 09:00:00 +0100");
    assert_string_equal(in->message_id, "<orig@example.com>");
    assert_span(mf.data, in->header_start, in->header_start + 25, "From: carol@example.com\r\n");
    assert_span(mf.data, in->body_start, in->end, "Original text.");
    assert_int_equal(in->body_lines, 0);
    assert_int_equal(fwd->body_lines, 7);
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_missing_boundary(void **state)
{
    struct msg_file mf;
    load("missing-boundary.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    /* No boundary parameter: a multipart without parts, its body one piece,
     * flagged (Dovecot shows one empty text/plain part). */
    assert_true(mf.m->repaired);
    assert_int_equal(mf.m->n_parts, 1);
    assert_type(r, "multipart", "mixed");
    assert_int_equal(r->n_params, 0);
    assert_true(r->multipart);
    assert_int_equal(r->n_children, 0);
    assert_span(mf.data, r->body_start, r->body_start + 11, "--whatever\n");
    assert_int_equal(r->end, mf.len);
    assert_int_equal(r->body_lines, 5);
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_unterminated(void **state)
{
    struct msg_file mf;
    load("unterminated.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_true(mf.m->repaired);
    assert_int_equal(mf.m->n_parts, 3);
    assert_true(r->multipart);
    assert_int_equal(r->n_children, 2);
    /* A part header cut by a boundary line: header without its line break,
     * empty body. */
    const struct mime_part *a = &r->children[0];
    assert_span(mf.data, a->header_start, a->body_start, "Content-Type: text/plain");
    assert_int_equal(a->end, a->body_start);
    assert_int_equal(a->body_lines, 0);
    /* No closing delimiter: the last part runs to the end. */
    const struct mime_part *b = &r->children[1];
    assert_span(mf.data, b->body_start, b->end, "never closed\n");
    assert_int_equal(b->end, mf.len);
    assert_int_equal(r->end, mf.len);
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_malformed_headers(void **state)
{
    struct msg_file mf;
    load("malformed-headers.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_true(mf.m->repaired);
    assert_string_equal(r->from, "alice@example.org");
    /* Obsolete syntax (RFC 5322 §4.5.3): WSP before the colon. */
    assert_string_equal(r->subject, "spaced name");
    /* The first Content-Type is invalid ("text/"): an empty type and
     * subtype, no parameters, and the later valid one is not used (the
     * first occurrence wins), as in Dovecot. */
    assert_type(r, "", "");
    assert_int_equal(r->n_params, 0);
    /* An encoding field without a token: the default. */
    assert_string_equal(r->encoding, "7bit");
    assert_span(mf.data, r->body_start, r->end, "Body after broken headers.\n");
    assert_span(mf.data, r->body_start - 2, r->body_start, "\n\n");
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_encoded_word(void **state)
{
    struct msg_file mf;
    load("encoded-word.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_false(mf.m->repaired);
    /* Raw values, the LF of a fold kept (as Dovecot reads them): RFC 2047
     * decoding is the reader's (IMAP sends ENVELOPE strings undecoded). */
    assert_string_equal(r->subject, "=?UTF-8?B?SMOpbGxvIHfDtnJsZA==?=\n =?UTF-8?Q?_again?=");
    assert_string_equal(r->from, "=?ISO-8859-1?Q?Andr=E9?= <andre@example.org>");
    assert_param(r, "charset", "UTF-8");      /* values keep their case */
    assert_span(mf.data, r->body_start, r->end, "Body.\r\n");
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_utf8_headers(void **state)
{
    struct msg_file mf;
    load("utf8-headers.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_false(mf.m->repaired);
    assert_string_equal(r->from, "Jürgen Müller <jürgen@exämple.de>");
    assert_string_equal(r->to, "山田 <yamada@example.jp>");
    assert_string_equal(r->subject, "Grüße aus Köln ☕");
    assert_string_equal(r->disposition, "inline");
    /* RFC 2231 extended value kept encoded, name marked with '*'. */
    assert_string_equal(param(r->disp_params, r->n_disp_params, "filename*"),
                        "utf-8''%E2%98%95.txt");
    assert_span(mf.data, r->body_start, r->end, "Grüße.\n");
    assert_roundtrip(mf.m);
    unload(&mf);
}

static void test_bare_lf(void **state)
{
    struct msg_file mf;
    load("bare-lf.eml", &mf);
    const struct mime_part *r = &mf.m->root;
    assert_false(mf.m->repaired);
    assert_type(r, "multipart", "mixed");
    assert_int_equal(r->n_children, 2);
    const struct mime_part *a = &r->children[0];
    assert_span(mf.data, a->header_start, a->body_start, "Content-Type: text/plain\n\n");
    assert_span(mf.data, a->body_start, a->end, "line one\nline two");
    assert_int_equal(a->body_lines, 1);
    const struct mime_part *b = &r->children[1];
    assert_param(b, "format", "flowed");
    assert_param(b, "charset", "us-ascii");
    assert_string_equal(b->params[b->n_params - 1].name, "charset");   /* added last */
    assert_span(mf.data, b->body_start, b->end, "second");
    assert_roundtrip(mf.m);
    unload(&mf);
}

/* CRLF and bare LF give the same tree, line counts included. */
static void test_crlf_equals_lf(void **state)
{
    size_t len;
    char *crlf = read_data("nested-mixed.eml", &len);
    char *lf = malloc(len);
    assert_non_null(lf);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!(crlf[i] == '\r' && i + 1 < len && crlf[i + 1] == '\n'))
            lf[n++] = crlf[i];
    struct mime_message *a = mime_parse(crlf, len);
    struct mime_message *b = mime_parse(lf, n);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n_parts, b->n_parts);
    const struct mime_part *pa = &a->root.children[1], *pb = &b->root.children[1];
    assert_type(pb, "application", "pdf");
    assert_int_equal(pa->body_lines, pb->body_lines);
    assert_int_equal(a->root.body_lines, b->root.body_lines);
    assert_span(lf, pb->body_start, pb->end, "JVBERi0xLjQK");
    assert_span(lf, b->root.children[0].children[0].body_start,
                b->root.children[0].children[0].end, "Text version.");
    assert_roundtrip(b);
    mime_free(&a);
    mime_free(&b);
    free(crlf);
    free(lf);
}

/* ------------------------------------------------ edge cases and limits */

static void test_empty_and_headerless(void **state)
{
    struct mime_message *m = mime_parse("", 0);
    assert_non_null(m);
    assert_type(&m->root, "text", "plain");
    assert_int_equal(m->root.end, 0);
    assert_roundtrip(m);
    mime_free(&m);

    m = mime_parse(NULL, 5);
    assert_non_null(m);
    assert_int_equal(m->size, 0);
    mime_free(&m);

    /* A header without the empty line: everything is header. */
    static const char h[] = "Subject: x\r\nFrom: y";
    m = mime_parse(h, sizeof h - 1);
    assert_non_null(m);
    assert_string_equal(m->root.from, "y");
    assert_int_equal(m->root.body_start, sizeof h - 1);
    assert_roundtrip(m);
    mime_free(&m);

    /* NUL bytes become U+FFFD in values (Dovecot), so values stay C strings. */
    static const char nul[] = "Subject: a\0b\n\nbody";
    m = mime_parse(nul, sizeof nul - 1);
    assert_non_null(m);
    assert_string_equal(m->root.subject, "a\xef\xbf\xbd" "b");
    assert_roundtrip(m);
    mime_free(&m);
}

static void test_depth_limit(void **state)
{
    /* 40 nested multiparts, each with its own boundary. */
    char *buf = malloc(64 * 1024);
    assert_non_null(buf);
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(buf + n, "Content-Type: multipart/mixed; boundary=b%02d\n\n--b%02d\n",
                             i, i);
    n += (size_t)sprintf(buf + n, "\ndeep\n");
    struct mime_message *m = mime_parse(buf, n);
    assert_non_null(m);
    assert_true(m->repaired);
    unsigned depth = 0;
    const struct mime_part *p = &m->root;
    while (p->n_children) {
        p = &p->children[0];
        depth++;
    }
    assert_int_equal(depth, MIME_MAX_DEPTH - 1);
    assert_false(p->multipart);      /* past the limit: an opaque body */
    assert_int_equal(m->n_parts, MIME_MAX_DEPTH);
    assert_roundtrip(m);
    mime_free(&m);
    free(buf);
}

static void test_parts_limit(void **state)
{
    size_t cap = 16 * (MIME_MAX_PARTS + 100) + 256;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "Content-Type: multipart/mixed; boundary=x\n\n");
    for (int i = 0; i < MIME_MAX_PARTS + 100; i++)
        n += (size_t)sprintf(buf + n, "--x\n\np%d\n", i % 10);
    n += (size_t)sprintf(buf + n, "--x--\n");
    assert_true(n < cap);
    struct mime_message *m = mime_parse(buf, n);
    assert_non_null(m);
    assert_true(m->repaired);
    assert_int_equal(m->n_parts, MIME_MAX_PARTS);
    assert_int_equal(m->root.n_children, MIME_MAX_PARTS - 1);
    size_t len;
    char *enc = mime_encode(m, &len);
    assert_non_null(enc);
    struct mime_message *d = mime_decode(enc, len);
    assert_non_null(d);
    assert_part_eq(&m->root, &d->root);
    mime_free(&d);
    free(enc);
    mime_free(&m);
    free(buf);
}

static void test_rfc2231_continuations(void **state)
{
    static const char msg[] =
        "Content-Type: application/octet-stream;\n"
        " name*0=\"long \"; name*1=\"file\"; name*2=\".bin\";\n"
        " title*0*=us-ascii'en'a%20b; title*1=\" c\"\n"
        "\n";
    struct mime_message *m = mime_parse(msg, sizeof msg - 1);
    assert_non_null(m);
    assert_param(&m->root, "name", "long file.bin");
    /* A plain section joined to extended ones: only '%' is escaped (Dovecot). */
    assert_param(&m->root, "title*", "us-ascii'en'a%20b c");
    assert_roundtrip(m);
    mime_free(&m);
}

/* A message given inline, CRLF line ends from "\n". */
static struct mime_message *parse_text(const char *text, char **data, size_t *len)
{
    size_t n = strlen(text);
    char *d = malloc(2 * n + 1);
    assert_non_null(d);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n')
            d[k++] = '\r';
        d[k++] = text[i];
    }
    struct mime_message *m = mime_parse(d, k);
    assert_non_null(m);
    assert_roundtrip(m);
    *data = d;
    *len = k;
    return m;
}

/* Where parts end, as Dovecot's message-parser.c finds it. */
static void test_dovecot_boundaries(void **state)
{
    char *d;
    size_t len;
    /* The rest of a boundary line is its multipart's, so the next boundary
     * line right after "--i--" takes no line break: the message/rfc822 part
     * keeps the inner closing line with its CRLF. */
    struct mime_message *m = parse_text(
        "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
        "Content-Type: message/rfc822\n\n"
        "Content-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i--\n--o--\n",
        &d, &len);
    const struct mime_part *fwd = &m->root.children[0];
    assert_non_null(fwd->message);
    assert_span(d, fwd->end - 9, fwd->end, "\r\n--i--\r\n");
    assert_int_equal(fwd->message->end, fwd->end);
    assert_int_equal(fwd->body_lines, 6);
    assert_span(d, fwd->message->children[0].body_start, fwd->message->children[0].end, "x");
    assert_int_equal(fwd->message->children[0].body_lines, 0);
    mime_free(&m);
    free(d);

    /* A message/rfc822 part whose header a boundary cuts still gets an
     * (empty) inner message; digest parts default to message/rfc822. */
    m = parse_text("Content-Type: multipart/digest; boundary=d\n\n--d\n"
                   "Content-Type: message/rfc822\n--d\n\nSubject: s\n\nbody\n--d--\n", &d, &len);
    assert_int_equal(m->root.n_children, 2);
    const struct mime_part *cut = &m->root.children[0];
    assert_span(d, cut->header_start, cut->body_start, "Content-Type: message/rfc822");
    assert_non_null(cut->message);
    assert_int_equal(cut->message->header_start, cut->body_start);
    assert_int_equal(cut->message->end, cut->body_start);
    const struct mime_part *dig = &m->root.children[1];
    assert_type(dig, "message", "rfc822");
    assert_non_null(dig->message);
    assert_string_equal(dig->message->subject, "s");
    assert_int_equal(m->n_parts, 5);
    mime_free(&m);
    free(d);

    /* An empty boundary: every line starting with "--"; "----" closes. */
    m = parse_text("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\none\n----\n", &d, &len);
    assert_true(m->root.multipart);
    assert_int_equal(m->root.n_children, 1);
    assert_span(d, m->root.children[0].body_start, m->root.children[0].end, "one");
    mime_free(&m);
    free(d);

    /* Only the first 80 bytes of a boundary count. */
    char long_b[512];
    snprintf(long_b, sizeof long_b,
             "Content-Type: multipart/mixed; boundary=%.80s-tail\n\n--%.80s-other\n\nx\n"
             "--%.80s--\n",
             "0123456789012345678901234567890123456789012345678901234567890123456789abcdefghij",
             "0123456789012345678901234567890123456789012345678901234567890123456789abcdefghij",
             "0123456789012345678901234567890123456789012345678901234567890123456789abcdefghij");
    m = parse_text(long_b, &d, &len);
    assert_int_equal(m->root.n_children, 1);
    assert_span(d, m->root.children[0].body_start, m->root.children[0].end, "x");
    assert_false(m->repaired);
    mime_free(&m);
    free(d);

    /* A boundary that is the whole line (but its "--") wins at once: "--x--"
     * closes the inner "x" although the outer "x--" is longer. */
    m = parse_text("Content-Type: multipart/mixed; boundary=\"x--\"\n\n--x--\n"
                   "Content-Type: multipart/alternative; boundary=x\n\n--x\n\ninner\n--x--\n"
                   "after inner\n--x--\n\nouter 2\n--x----\n", &d, &len);
    assert_int_equal(m->root.n_children, 2);
    assert_int_equal(m->root.children[0].n_children, 1);
    assert_span(d, m->root.children[1].body_start, m->root.children[1].end, "outer 2");
    mime_free(&m);
    free(d);
}

/* Which header fields count, and how their values are kept (Dovecot). */
static void test_dovecot_fields(void **state)
{
    char *d;
    size_t len;
    /* Without MIME-Version and Content-Type a message has no Content-*. */
    struct mime_message *m = parse_text(
        "Content-Transfer-Encoding: base64\nContent-ID: <x@y>\n"
        "Content-Disposition: inline; a=b\nContent-Language: en\n\naGk=\n", &d, &len);
    const struct mime_part *r = &m->root;
    assert_string_equal(r->encoding, "7bit");
    assert_null(r->id);
    assert_null(r->disposition);
    assert_int_equal(r->n_disp_params, 0);
    assert_null(r->language);
    assert_type(r, "text", "plain");
    mime_free(&m);
    free(d);
    m = parse_text("MIME-Version: 1.0\nContent-Transfer-Encoding: Base64\n\naGk=\n", &d, &len);
    assert_string_equal(m->root.encoding, "Base64");   /* as written */
    mime_free(&m);
    free(d);

    /* The first valid encoding and language; a disposition is replaced
     * until one has parameters; the first Content-ID; tokens as written. */
    m = parse_text("Content-Type: TEXT/Plain; CharSet=UTF-8\n"
                   "Content-Transfer-Encoding: two words\nContent-Transfer-Encoding: 8bit\n"
                   "Content-Transfer-Encoding: base64\nContent-Language: ()\n"
                   "Content-Language: de, en\nContent-Language: fr\n"
                   "Content-Disposition: inline\nContent-Disposition: Attachment; filename=a\n"
                   "Content-Disposition: inline; filename=b\n"
                   "Content-ID: <1@x>\nContent-ID: <2@x>\n\nx\n", &d, &len);
    r = &m->root;
    assert_type(r, "TEXT", "Plain");
    assert_int_equal(r->n_params, 1);
    assert_string_equal(r->params[0].name, "CharSet");   /* counts as the charset */
    assert_string_equal(r->encoding, "8bit");
    assert_string_equal(r->language, "de, en");
    assert_string_equal(r->disposition, "Attachment");
    assert_string_equal(param(r->disp_params, r->n_disp_params, "filename"), "a");
    assert_string_equal(r->id, "<1@x>");
    mime_free(&m);
    free(d);

    /* Invalid types: "text" alone keeps its type (with a charset), other
     * broken values are "" and "". */
    m = parse_text("Content-Type: text\n\n", &d, &len);
    assert_type(&m->root, "text", "");
    assert_param(&m->root, "charset", "us-ascii");
    mime_free(&m);
    free(d);
    m = parse_text("Content-Type: text/plain junk; charset=x\n\n", &d, &len);
    assert_type(&m->root, "", "");
    assert_int_equal(m->root.n_params, 0);
    mime_free(&m);
    free(d);

    /* Envelope: the last Date/Subject/Message-ID, every From/To...
     * occurrence ("\n" between them); values keep trailing blanks and the
     * LF of a fold, a first line of blanks loses one blank. */
    m = parse_text("Date: one\nDate:  two  \nSubject: first\nSubject: a\n  folded\n"
                   "From: a@example.org\nFrom: B <b@example.org>\n"
                   "Message-ID:  \n <id@x>\nTo:\n\n", &d, &len);
    r = &m->root;
    assert_string_equal(r->date, "two  ");
    assert_string_equal(r->subject, "a\n  folded");
    assert_string_equal(r->from, "a@example.org\nB <b@example.org>");
    assert_string_equal(r->message_id, " \n <id@x>");
    assert_string_equal(r->to, "");
    mime_free(&m);
    free(d);

    /* message/global stays one body (Dovecot 2.3 reads only
     * message/rfc822 as a message). */
    m = parse_text("Content-Type: message/global\n\nSubject: x\n\ny\n", &d, &len);
    assert_null(m->root.message);
    assert_int_equal(m->n_parts, 1);
    mime_free(&m);
    free(d);
}

/* RFC 2231 as Dovecot joins it: plain parameters first, then the joined
 * ones by name; a name with a missing section gives each section. */
static void test_dovecot_rfc2231(void **state)
{
    char *d;
    size_t len;
    struct mime_message *m = parse_text(
        "Content-Type: application/x; b*1=\"2\"; a=1; b*0*=us-ascii''%41; c*0=x;"
        " c*2=z; d*0=\"50%\"; d*1*=%41; A=dup; a=dup2\n\n", &d, &len);
    static const char *const want[][2] = {
        { "a", "1" }, { "A", "dup" }, { "a", "dup2" }, { "b*", "us-ascii''%412" },
        { "c*0", "x" }, { "c*2", "z" }, { "d*", "''50%25%41" },
    };
    const struct mime_part *r = &m->root;
    assert_int_equal(r->n_params, sizeof want / sizeof want[0]);
    for (unsigned i = 0; i < r->n_params; i++) {
        assert_string_equal(r->params[i].name, want[i][0]);
        assert_string_equal(r->params[i].value, want[i][1]);
    }
    mime_free(&m);
    free(d);
}

static void test_header_get(void **state)
{
    static const char msg[] = "X-One: 1\r\nX-Two: folded\r\n\tvalue\r\n\r\nX-Three: body\r\n";
    size_t len = sizeof msg - 1;
    char *v = mime_header_get(msg, 0, len, "x-two");
    assert_string_equal(v, "folded\tvalue");
    free(v);
    assert_null(mime_header_get(msg, 0, len, "X-Three"));  /* stops at the body */
    assert_null(mime_header_get(msg, 0, 0, "X-One"));
    assert_null(mime_header_get(NULL, 0, len, "X-One"));
}

/* ------------------------------------------------- hostile encodings */

struct enc {
    uint8_t b[4096];
    size_t n;
};

static void put(struct enc *e, uint8_t byte)
{
    assert_true(e->n < sizeof e->b);
    e->b[e->n++] = byte;
}

static void put_varint(struct enc *e, uint64_t v)
{
    do {
        put(e, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}

static void put_str(struct enc *e, uint8_t tag, const char *s)
{
    put(e, tag);
    put_varint(e, strlen(s));
    for (const char *c = s; *c; c++)
        put(e, (uint8_t)*c);
}

/* Tags as in mime/encode.c: (number << 2) | wire. */
#define T_SIZE 0x04
#define T_NPARTS 0x08
#define T_ROOT 0x13
#define T_HSTART 0x04
#define T_HLEN 0x08
#define T_BLEN 0x0c
#define T_FLAGS 0x14
#define T_TYPE 0x19
#define T_SUBTYPE 0x1d
#define T_PARAM 0x22
#define T_ENCODING 0x2d
#define T_CHILD 0x47
#define T_MESSAGE 0x4b

static void put_head(struct enc *e, uint64_t size, uint64_t n_parts)
{
    e->n = 0;
    memcpy(e->b, "PMIM\x01", 5);
    e->n = 5;
    put(e, T_SIZE);
    put_varint(e, size);
    put(e, T_NPARTS);
    put_varint(e, n_parts);
    put(e, T_ROOT);
}

static void put_min_part(struct enc *e)
{
    put_str(e, T_TYPE, "text");
    put_str(e, T_SUBTYPE, "plain");
    put_str(e, T_ENCODING, "7bit");
}

static struct mime_message *dec(const struct enc *e)
{
    return mime_decode((const char *)e->b, e->n);
}

static void test_decode_valid_minimal(void **state)
{
    struct enc e;
    put_head(&e, 10, 1);
    put(&e, T_BLEN);
    put_varint(&e, 10);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    struct mime_message *m = dec(&e);
    assert_non_null(m);
    assert_int_equal(m->root.end, 10);
    assert_string_equal(m->root.type, "text");
    mime_free(&m);

    /* Unknown fields of every wire type are skipped (forward compatible). */
    put_head(&e, 10, 1);
    put_min_part(&e);
    put(&e, (60 << 2) | 0);
    put_varint(&e, 300);
    put_str(&e, (61 << 2) | 1, "future");
    put(&e, (62 << 2) | 2);
    put_varint(&e, 1);
    put(&e, 'a');
    put_varint(&e, 0);
    put(&e, (63 << 2) | 3);
    put_str(&e, (40 << 2) | 1, "x");
    put(&e, 0);
    put(&e, 0);
    put(&e, (30 << 2) | 0);     /* unknown message field */
    put_varint(&e, 7);
    put(&e, 0);
    m = dec(&e);
    assert_non_null(m);
    mime_free(&m);
}

static void test_decode_rejects(void **state)
{
    struct enc e;
    struct mime_message *m;

    assert_null(mime_decode(NULL, 10));
    assert_null(mime_decode("PMIM", 4));
    assert_null(mime_decode("PMIX\x01\x00", 6));
    assert_null(mime_decode("PMIM\x03\x00", 6));   /* unknown version */
    assert_null(mime_decode("PMIM\x00\x00", 6));
    assert_null(mime_decode("PMIM\x01\x00", 6));   /* no root */

    /* A part without its type. */
    put_head(&e, 10, 1);
    put_str(&e, T_SUBTYPE, "plain");
    put_str(&e, T_ENCODING, "7bit");
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Wrong part count. */
    put_head(&e, 10, 2);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* An offset past the message size. */
    put_head(&e, 10, 1);
    put(&e, T_BLEN);
    put_varint(&e, 11);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Offsets that overflow. */
    put_head(&e, UINT64_MAX, 1);
    put(&e, T_HSTART);
    put_varint(&e, UINT64_MAX - 1);
    put(&e, T_HLEN);
    put_varint(&e, 5);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* A string longer than the input, one with a NUL, a duplicate field. */
    put_head(&e, 10, 1);
    put(&e, T_TYPE);
    put_varint(&e, 1000000);
    assert_null(dec(&e));
    put_head(&e, 10, 1);
    put_str(&e, T_TYPE, "te");
    e.b[e.n - 1] = 0;
    put_str(&e, T_SUBTYPE, "plain");
    put_str(&e, T_ENCODING, "7bit");
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));
    put_head(&e, 10, 1);
    put_min_part(&e);
    put_str(&e, T_TYPE, "text");
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* A known field with the wrong wire type; field number 0. */
    put_head(&e, 10, 1);
    put_min_part(&e);
    put_str(&e, (1 << 2) | 1, "1");     /* header_start as a string */
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));
    put_head(&e, 10, 1);
    put_min_part(&e);
    put(&e, 0x01);
    put_varint(&e, 0);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Overlong and oversized varints. */
    put_head(&e, 10, 1);
    put(&e, T_BLEN);
    put(&e, 0x85);
    put(&e, 0x00);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));
    put_head(&e, 10, 1);
    put(&e, T_BLEN);
    for (int i = 0; i < 10; i++)
        put(&e, 0xff);
    put(&e, 0x01);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Unknown flag bits. */
    put_head(&e, 10, 1);
    put(&e, T_FLAGS);
    put_varint(&e, 2);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Children without the multipart flag; a child outside its parent. */
    put_head(&e, 10, 2);
    put_min_part(&e);
    put(&e, T_CHILD);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));
    put_head(&e, 10, 2);
    put(&e, T_BLEN);
    put_varint(&e, 5);
    put(&e, T_FLAGS);
    put_varint(&e, 1);
    put_min_part(&e);
    put(&e, T_CHILD);
    put(&e, T_HSTART);
    put_varint(&e, 4);
    put(&e, T_BLEN);
    put_varint(&e, 2);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Trailing bytes. */
    put_head(&e, 10, 1);
    put_min_part(&e);
    put(&e, 0);
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* More parameters than MIME_MAX_PARAMS. */
    put_head(&e, 10, 1);
    put_min_part(&e);
    for (int i = 0; i <= MIME_MAX_PARAMS; i++) {
        put(&e, T_PARAM);
        put_varint(&e, 1);
        put(&e, (uint8_t)('a' + i % 26));
        put_varint(&e, 0);
    }
    put(&e, 0);
    put(&e, 0);
    assert_null(dec(&e));

    /* Nesting past MIME_MAX_DEPTH, through children and inner messages. */
    for (int via_message = 0; via_message < 2; via_message++) {
        int levels = MIME_MAX_DEPTH + 1;
        put_head(&e, 10, (uint64_t)levels);
        for (int i = 0; i < levels; i++) {
            if (i + 1 < levels && !via_message) {
                put(&e, T_FLAGS);
                put_varint(&e, 1);
            }
            put_min_part(&e);
            if (i + 1 < levels)
                put(&e, via_message ? T_MESSAGE : T_CHILD);
        }
        for (int i = 0; i < levels; i++)
            put(&e, 0);
        put(&e, 0);
        assert_null(dec(&e));
    }

    /* Unknown groups are bounded in depth too. */
    put_head(&e, 10, 1);
    put_min_part(&e);
    for (int i = 0; i < 200; i++)
        put(&e, (63 << 2) | 3);
    for (int i = 0; i < 200; i++)
        put(&e, 0);
    put(&e, 0);
    put(&e, 0);
    m = dec(&e);
    assert_null(m);
}

/* More parts than MIME_MAX_PARTS, with children of a few bytes each. */
static void test_decode_parts_bomb(void **state)
{
    size_t cap = 16 * (MIME_MAX_PARTS + 10) + 64;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    size_t n = 0;
    memcpy(b, "PMIM\x01", 5);
    n = 5;
    b[n++] = T_NPARTS;
    b[n++] = 0x81;   /* 4097 */
    b[n++] = 0x20;
    b[n++] = T_ROOT;
    b[n++] = T_FLAGS;
    b[n++] = 1;
    static const uint8_t min[] = { T_TYPE, 1, 't', T_SUBTYPE, 1, 'p', T_ENCODING, 1, '7' };
    memcpy(b + n, min, sizeof min);
    n += sizeof min;
    for (int i = 0; i < MIME_MAX_PARTS; i++) {
        b[n++] = T_CHILD;
        memcpy(b + n, min, sizeof min);
        n += sizeof min;
        b[n++] = 0;
    }
    b[n++] = 0;
    b[n++] = 0;
    assert_true(n <= cap);
    assert_null(mime_decode((const char *)b, n));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_alternative),
        cmocka_unit_test(test_nested_mixed),
        cmocka_unit_test(test_rfc822),
        cmocka_unit_test(test_missing_boundary),
        cmocka_unit_test(test_unterminated),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_encoded_word),
        cmocka_unit_test(test_utf8_headers),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_crlf_equals_lf),
        cmocka_unit_test(test_empty_and_headerless),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_parts_limit),
        cmocka_unit_test(test_rfc2231_continuations),
        cmocka_unit_test(test_dovecot_boundaries),
        cmocka_unit_test(test_dovecot_fields),
        cmocka_unit_test(test_dovecot_rfc2231),
        cmocka_unit_test(test_header_get),
        cmocka_unit_test(test_decode_valid_minimal),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_parts_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
