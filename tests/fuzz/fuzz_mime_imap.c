/*
 * fuzz_mime_imap.c — IMAP views of arbitrary messages.
 *
 * The input is parsed; ENVELOPE, BODYSTRUCTURE and BODY (with and without
 * UTF8=ACCEPT) must be syntactically valid IMAP: balanced parentheses,
 * atoms, NIL, numbers, quoted strings with only escaped '"' and '\' and no
 * CR, LF or (without UTF8=ACCEPT) 8-bit bytes, literals {n}\r\n with exactly
 * n bytes. The rendering from a mime_decode(mime_encode()) tree must be the
 * same bytes. A few sections are located and must lie inside the message;
 * HEADER.FIELDS output must end with the empty line; BINARY and BINARY.SIZE
 * must agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_LIMIT (8u << 20)

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_mime_imap: %s\n", what);
        abort();
    }
}

/* ------------------------------------------------------ IMAP syntax */

struct scan {
    const unsigned char *p, *end;
    bool utf8;
};

static void scan_quoted(struct scan *s)
{
    s->p++;
    for (;;) {
        check(s->p < s->end, "unterminated quoted string");
        unsigned char c = *s->p++;
        if (c == '"')
            return;
        check(c != '\r' && c != '\n' && c != 0, "CR, LF or NUL in a quoted string");
        check(s->utf8 || c < 0x80, "8-bit byte in a quoted string");
        if (c == '\\') {
            check(s->p < s->end && (*s->p == '"' || *s->p == '\\'), "bad escape");
            s->p++;
        }
    }
}

static void scan_literal(struct scan *s)
{
    s->p++;
    uint64_t n = 0;
    bool digits = false;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        check(n < UINT64_MAX / 10, "literal length overflow");
        n = n * 10 + (uint64_t)(*s->p++ - '0');
        digits = true;
    }
    check(digits, "literal without a length");
    check(s->end - s->p >= 3 && memcmp(s->p, "}\r\n", 3) == 0, "bad literal header");
    s->p += 3;
    check((uint64_t)(s->end - s->p) >= n, "literal longer than the output");
    for (uint64_t i = 0; i < n; i++)
        check(s->p[i] != 0, "NUL in a literal");
    s->p += n;
}

/* One value: list, NIL, number, quoted or literal. */
static void scan_value(struct scan *s, unsigned depth)
{
    check(s->p < s->end, "value expected");
    check(depth < 256, "nesting too deep");
    unsigned char c = *s->p;
    if (c == '(') {
        s->p++;
        bool first = true;
        while (s->p < s->end && *s->p != ')') {
            /* Lists of lists (bodies, addresses) have no blank between
             * items; other items are separated by one space. */
            if (!first && *s->p == ' ')
                s->p++;
            else
                check(first || *s->p == '(', "items not separated");
            scan_value(s, depth + 1);
            first = false;
        }
        check(s->p < s->end, "unbalanced parentheses");
        s->p++;
    } else if (c == '"') {
        scan_quoted(s);
    } else if (c == '{') {
        scan_literal(s);
    } else if (c >= '0' && c <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    } else {
        check(s->end - s->p >= 3 && memcmp(s->p, "NIL", 3) == 0, "unexpected token");
        s->p += 3;
    }
}

static void check_syntax(const struct buf *b, bool utf8)
{
    struct scan s = { (const unsigned char *)b->data, (const unsigned char *)b->data + b->len,
                      utf8 };
    check(b->len > 0 && b->data[0] == '(', "not a list");
    scan_value(&s, 0);
    check(s.p == s.end, "trailing bytes after the list");
}

/* ----------------------------------------------------------- render */

static void render(const struct mime_message *m, unsigned flags, struct buf *out)
{
    check(mime_imap_envelope(out, OUT_LIMIT, &m->root, flags) == 0, "envelope failed");
    check_syntax(out, flags & MIME_IMAP_UTF8);
    size_t mark = out->len;
    check(mime_imap_bodystructure(out, OUT_LIMIT, m, true, flags) == 0, "bodystructure failed");
    struct buf part = { out->data + mark, out->len - mark, 0 };
    check_syntax(&part, flags & MIME_IMAP_UTF8);
    mark = out->len;
    check(mime_imap_bodystructure(out, OUT_LIMIT, m, false, flags) == 0, "body failed");
    part = (struct buf){ out->data + mark, out->len - mark, 0 };
    check_syntax(&part, flags & MIME_IMAP_UTF8);
}

static void sections(const struct mime_message *m, const char *d, size_t size)
{
    static const uint32_t paths[][3] = { { 1, 0, 0 }, { 2, 0, 0 }, { 1, 1, 0 }, { 2, 1, 0 },
                                         { 1, 2, 1 }, { 3, 1, 2 } };
    static const unsigned lens[] = { 1, 1, 2, 2, 3, 3 };
    static const char *const names[] = { "from", "Subject", "content-type" };
    for (unsigned i = 0; i <= sizeof lens / sizeof lens[0]; i++) {
        const uint32_t *path = i ? paths[i - 1] : NULL;
        unsigned n = i ? lens[i - 1] : 0;
        for (int t = MIME_SECTION_ALL; t <= MIME_SECTION_MIME; t++) {
            struct mime_range r;
            const struct mime_part *p;
            int rc = mime_imap_section(m, path, n, (enum mime_section_text)t, &r, &p);
            check(rc >= -1 && rc <= 1, "section result");
            check(r.start <= r.end && r.end <= size, "section outside the message");
            if (rc != 1)
                continue;
            if (t == MIME_SECTION_HEADER_FIELDS || t == MIME_SECTION_HEADER_FIELDS_NOT) {
                struct buf b = { 0 };
                check(mime_imap_header_fields(&b, OUT_LIMIT, d, size, r, names, 3,
                                              t == MIME_SECTION_HEADER_FIELDS_NOT) == 0,
                      "header fields failed");
                check(b.len >= 2 && memcmp(b.data + b.len - 2, "\r\n", 2) == 0,
                      "header fields without the empty line");
                buf_free(&b);
            }
            if (t == MIME_SECTION_ALL && n > 0) {
                struct buf b = { 0 };
                uint64_t bsize = 0;
                int r1 = mime_imap_binary(&b, OUT_LIMIT, d, size, p);
                int r2 = mime_imap_binary_size(d, size, p, &bsize);
                check(r1 == r2, "BINARY and BINARY.SIZE disagree");
                check(r1 != MIME_BINARY_OK || bsize == b.len, "BINARY.SIZE is not the size");
                buf_free(&b);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    struct mime_message *m = mime_parse(d, size);
    if (!m)
        return 0;
    size_t elen = 0;
    char *enc = mime_encode(m, &elen);
    check(enc != NULL, "mime_encode failed");
    struct mime_message *dm = mime_decode(enc, elen);
    check(dm != NULL, "mime_decode failed");

    for (unsigned flags = 0; flags <= MIME_IMAP_UTF8; flags += MIME_IMAP_UTF8) {
        struct buf a = { 0 }, b = { 0 };
        render(m, flags, &a);
        render(dm, flags, &b);
        check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
              "a decoded tree renders differently");
        buf_free(&a);
        buf_free(&b);
    }
    sections(m, d, size);

    mime_free(&dm);
    free(enc);
    mime_free(&m);
    return 0;
}
