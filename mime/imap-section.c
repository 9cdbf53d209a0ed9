/*
 * imap-section.c — BODY[section] ranges (RFC 3501 §6.4.5, RFC 9051 §6.4.5),
 * HEADER.FIELDS filtering and BINARY decoding (RFC 3516) over the raw
 * message, located through the cached parse.
 */
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "mime/mime-int.h"

/* ------------------------------------------------------------ sections */

/*
 * The part BODY[path] names, as Dovecot finds it: inside a multipart the
 * number picks a child; anywhere else only 1 is valid and means the part
 * itself (its body), and more numbers may follow only when it is a
 * message/rfc822, whose inner message they then address.
 */
static const struct mime_part *find_part(const struct mime_message *msg, const uint32_t *path,
                                         unsigned n)
{
    const struct mime_part *p = &msg->root;
    for (unsigned i = 0; i < n; i++) {
        bool more = i + 1 < n;
        if (p->multipart) {
            if (path[i] > p->n_children)
                return NULL;
            p = &p->children[path[i] - 1];
        } else if (path[i] != 1 || (more && !p->message)) {
            return NULL;
        }
        if (more && p->message)
            p = p->message;
    }
    return p;
}

int mime_imap_section(const struct mime_message *msg, const uint32_t *path, unsigned n,
                      enum mime_section_text text, struct mime_range *r,
                      const struct mime_part **part)
{
    *r = (struct mime_range){ 0, 0 };
    if (part)
        *part = NULL;
    for (unsigned i = 0; i < n; i++)
        if (path[i] == 0)
            return -1;
    if (text == MIME_SECTION_MIME && n == 0)
        return -1;
    const struct mime_part *p = find_part(msg, path, n);
    if (!p)
        return 0;
    switch (text) {
    case MIME_SECTION_ALL:
        *r = n == 0 ? (struct mime_range){ 0, msg->size }
                    : (struct mime_range){ p->body_start, p->end };
        break;
    case MIME_SECTION_MIME:
        /* Also for a message/rfc822 part: its own MIME header (Dovecot). */
        *r = (struct mime_range){ p->header_start, p->body_start };
        break;
    case MIME_SECTION_HEADER:
    case MIME_SECTION_HEADER_FIELDS:
    case MIME_SECTION_HEADER_FIELDS_NOT:
    case MIME_SECTION_TEXT:
        if (n > 0) {
            /* RFC 3501 §6.4.5: only of a message/rfc822 part. */
            if (!p->message)
                return 0;
            p = p->message;
        }
        *r = text == MIME_SECTION_TEXT ? (struct mime_range){ p->body_start, p->end }
                                       : (struct mime_range){ p->header_start, p->body_start };
        break;
    default:
        return -1;
    }
    if (part)
        *part = p;
    return 1;
}

/* ------------------------------------------------------- HEADER.FIELDS */

static bool name_listed(const char *data, const struct mime_field *f,
                        const char *const *names, size_t n_names)
{
    for (size_t i = 0; i < n_names; i++)
        if (mime_name_is(data, f, names[i]))
            return true;
    return false;
}

/* data[start, end) with every line ending in CRLF (a bare LF, or none at
 * the end of the message, gets one). */
static int append_crlf(struct buf *out, size_t limit, const char *data, size_t start,
                       size_t end)
{
    size_t run = start;
    for (size_t i = start; i < end; i++) {
        if (data[i] == '\n' && (i == start || data[i - 1] != '\r')) {
            if (buf_append(out, data + run, i - run, limit) != 0
                || buf_append(out, "\r\n", 2, limit) != 0)
                return -1;
            run = i + 1;
        }
    }
    if (buf_append(out, data + run, end - run, limit) != 0)
        return -1;
    if (end > start && data[end - 1] != '\n')
        return buf_append(out, "\r\n", 2, limit);
    return 0;
}

int mime_imap_header_fields(struct buf *out, size_t limit, const char *data, size_t len,
                            struct mime_range hdr, const char *const *names,
                            size_t n_names, bool not)
{
    if (hdr.start > hdr.end || hdr.end > len)
        return -1;
    size_t pos = hdr.start;
    struct mime_field f;
    for (;;) {
        size_t line = pos;
        enum mime_line kind = mime_next_field(data, hdr.end, &pos, &f);
        if (kind == MIME_LINE_BLANK || kind == MIME_LINE_END)
            break;
        /* A line that is no field has no name: HEADER.FIELDS.NOT keeps it. */
        bool keep = kind == MIME_LINE_FIELD ? name_listed(data, &f, names, n_names) != not
                                            : not;
        if (keep && append_crlf(out, limit, data, line, pos) != 0)
            return -1;
    }
    return buf_append(out, "\r\n", 2, limit);
}

/* ------------------------------------------------------------- BINARY */

/* Decoded bytes go to a buffer or are only counted (BINARY.SIZE). */
struct sink {
    struct buf *b;
    size_t limit;
    uint64_t n;
};

static int emit(struct sink *s, const char *p, size_t n)
{
    s->n += n;
    if (s->b && buf_append(s->b, p, n, s->limit) != 0)
        return MIME_BINARY_LIMIT;
    return MIME_BINARY_OK;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * RFC 2045 §6.8. Line breaks and blanks are skipped. Invalid: any other
 * byte outside the alphabet, '=' before the third character of a group or
 * followed by data other than '=' (a padded group may be followed by a new
 * one: some encoders concatenate), a lone last character. A last group of
 * 2 or 3 characters without its padding is accepted.
 */
static int decode_base64(struct sink *s, const unsigned char *d, size_t n)
{
    char out[768];
    size_t o = 0;
    uint32_t acc = 0;
    unsigned have = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = d[i];
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            if (have + pad < 2)
                return MIME_BINARY_INVALID;
            pad++;
            if (have + pad == 4) {
                /* xx== or xxx= */
                out[o++] = (char)(acc >> (have == 2 ? 4 : 10));
                if (have == 3)
                    out[o++] = (char)(acc >> 2);
                acc = 0;
                have = pad = 0;
            }
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0)
            return MIME_BINARY_INVALID;
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            out[o++] = (char)(acc >> 16);
            out[o++] = (char)(acc >> 8);
            out[o++] = (char)acc;
            acc = 0;
            have = 0;
        }
        if (o > sizeof out - 4) {
            if (emit(s, out, o) != 0)
                return MIME_BINARY_LIMIT;
            o = 0;
        }
    }
    if (pad > 0 || have == 1)
        return MIME_BINARY_INVALID;
    if (have == 2) {
        out[o++] = (char)(acc >> 4);
    } else if (have == 3) {
        out[o++] = (char)(acc >> 10);
        out[o++] = (char)(acc >> 2);
    }
    return emit(s, out, o);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * RFC 2045 §6.7. "=XX" (either case), soft line breaks "=" [blanks] (CR)LF
 * or "=" at the very end; blanks before a line break are dropped (rule 3).
 * Invalid, as Dovecot's decoder has it: '=' followed by anything else, and
 * a CR not followed by LF. Hard line breaks are copied as they are.
 */
static int decode_qp(struct sink *s, const unsigned char *d, size_t n)
{
    char out[1024];
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        if (o > sizeof out - 8) {
            if (emit(s, out, o) != 0)
                return MIME_BINARY_LIMIT;
            o = 0;
        }
        unsigned char c = d[i];
        if (c == ' ' || c == '\t') {
            size_t j = i;
            while (j < n && (d[j] == ' ' || d[j] == '\t'))
                j++;
            if (j == n || d[j] == '\n' || (d[j] == '\r' && j + 1 < n && d[j + 1] == '\n')) {
                i = j;   /* trailing blanks: transport padding */
                continue;
            }
            while (i < j) {
                if (o > sizeof out - 8) {
                    if (emit(s, out, o) != 0)
                        return MIME_BINARY_LIMIT;
                    o = 0;
                }
                out[o++] = (char)d[i++];
            }
            continue;
        }
        if (c == '\r') {
            if (i + 1 >= n || d[i + 1] != '\n')
                return MIME_BINARY_INVALID;
            out[o++] = '\r';
            out[o++] = '\n';
            i += 2;
            continue;
        }
        if (c != '=') {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (i + 2 < n && hex_value(d[i + 1]) >= 0 && hex_value(d[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(d[i + 1]) << 4 | hex_value(d[i + 2]));
            i += 3;
            continue;
        }
        size_t j = i + 1;
        while (j < n && (d[j] == ' ' || d[j] == '\t'))
            j++;
        if (j == n) {
            i = j;                       /* "=" at the end */
        } else if (d[j] == '\n') {
            i = j + 1;                   /* soft line break */
        } else if (d[j] == '\r' && j + 1 < n && d[j + 1] == '\n') {
            i = j + 2;
        } else {
            return MIME_BINARY_INVALID;
        }
    }
    return emit(s, out, o);
}

static int decode_part(struct sink *s, const char *data, size_t len, const struct mime_part *p)
{
    if (p->header_start > p->body_start || p->body_start > p->end || p->end > len)
        return MIME_BINARY_LIMIT;
    const unsigned char *d = (const unsigned char *)data + p->body_start;
    size_t n = p->end - p->body_start;
    const char *enc = p->encoding ? p->encoding : "7bit";
    if (strcasecmp(enc, "base64") == 0)
        return decode_base64(s, d, n);
    if (strcasecmp(enc, "quoted-printable") == 0)
        return decode_qp(s, d, n);
    if (strcasecmp(enc, "7bit") == 0 || strcasecmp(enc, "8bit") == 0
        || strcasecmp(enc, "binary") == 0)
        return emit(s, (const char *)d, n);
    return MIME_BINARY_UNKNOWN;
}

int mime_imap_binary(struct buf *out, size_t limit, const char *data, size_t len,
                     const struct mime_part *part)
{
    struct sink s = { out, limit, 0 };
    return decode_part(&s, data, len, part);
}

int mime_imap_binary_size(const char *data, size_t len, const struct mime_part *part,
                          uint64_t *size)
{
    struct sink s = { NULL, 0, 0 };
    int rc = decode_part(&s, data, len, part);
    *size = rc == MIME_BINARY_OK ? s.n : 0;
    return rc;
}
