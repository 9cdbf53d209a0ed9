/*
 * header.c — RFC 5322 §2.2 header fields: line scanning, unfolding and
 * mime_header_get. Lines end at CRLF or at a bare LF; a bare CR is data.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stdint.h>

#include "mime/mime-int.h"

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* End of the line starting at pos: index of its LF, or end. */
static size_t line_end(const char *d, size_t pos, size_t end)
{
    const char *lf = memchr(d + pos, '\n', end - pos);
    return lf ? (size_t)(lf - d) : end;
}

/* Content end of a line whose LF (or end) is at eol: drops a CR before LF. */
static size_t content_end(const char *d, size_t pos, size_t eol, size_t end)
{
    if (eol < end && eol > pos && d[eol - 1] == '\r')
        return eol - 1;
    return eol;
}

enum mime_line mime_next_field(const char *d, size_t end, size_t *pos,
                               struct mime_field *f)
{
    size_t p = *pos;
    if (p >= end)
        return MIME_LINE_END;

    size_t eol = line_end(d, p, end);
    size_t cend = content_end(d, p, eol, end);
    if (cend == p && eol < end) {
        *pos = eol + 1;
        return MIME_LINE_BLANK;
    }

    /* RFC 5322 §2.2.3: a line starting with WSP continues the field. */
    size_t last_cend = cend;
    size_t next = eol < end ? eol + 1 : end;
    while (next < end && is_wsp(d[next])) {
        eol = line_end(d, next, end);
        last_cend = content_end(d, next, eol, end);
        next = eol < end ? eol + 1 : end;
    }
    *pos = next;

    /* The name: printable US-ASCII but ':' (RFC 5322 §3.6.8), optionally
     * followed by WSP before the colon (obsolete syntax, §4.5.3). */
    size_t i = p;
    while (i < cend && d[i] != ':' && (unsigned char)d[i] > 32 && (unsigned char)d[i] < 127)
        i++;
    size_t name_end = i;
    while (i < cend && is_wsp(d[i]))
        i++;
    if (name_end == p || i >= cend || d[i] != ':')
        return MIME_LINE_JUNK;
    f->name = p;
    f->name_len = name_end - p;
    f->value = i + 1;
    f->value_end = last_cend;
    return MIME_LINE_FIELD;
}

char *mime_unfold(const char *d, size_t start, size_t end)
{
    while (start < end && is_wsp(d[start]))
        start++;
    char *out = malloc(end - start + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        char c = d[i];
        if (c == '\n' || (c == '\r' && i + 1 < end && d[i + 1] == '\n'))
            continue;
        out[n++] = c ? c : (char)0x80;
    }
    /* Leading WSP after a fold at the very start is trimmed too. */
    size_t s = 0;
    while (s < n && is_wsp(out[s]))
        s++;
    while (n > s && (is_wsp(out[n - 1]) || out[n - 1] == '\r'))
        n--;
    if (s)
        memmove(out, out + s, n - s);
    out[n - s] = '\0';
    return out;
}

/* U+FFFD, what Dovecot puts for a NUL in a header value. */
#define NUL_REPLACEMENT "\xef\xbf\xbd"

char *mime_field_value(const char *d, size_t start, size_t end, bool keep_lf)
{
    if (end - start > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(3 * (end - start) + 1);
    if (!out)
        return NULL;
    /* Dovecot's SKIP_INITIAL_LWSP: the blanks after the colon go, unless
     * the first line is nothing but blanks; then only the first one. */
    const char *lf = memchr(d + start, '\n', end - start);
    size_t first_end = lf ? (size_t)(lf - d) : end;
    if (lf && first_end > start && d[first_end - 1] == '\r')
        first_end--;
    size_t pos = start;
    while (pos < first_end && is_wsp(d[pos]))
        pos++;
    if (pos == first_end && pos > start)
        pos = start + 1;
    size_t n = 0;
    for (size_t i = pos; i < end; i++) {
        char c = d[i];
        if ((c == '\n' && !keep_lf) || (c == '\r' && i + 1 < end && d[i + 1] == '\n'))
            continue;   /* Dovecot's DROP_CR (and the LF when not kept) */
        if (c == '\0') {
            memcpy(out + n, NUL_REPLACEMENT, 3);
            n += 3;
        } else {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    return out;
}

bool mime_name_is(const char *d, const struct mime_field *f, const char *name)
{
    size_t n = strlen(name);
    return n == f->name_len && strncasecmp(d + f->name, name, n) == 0;
}

char *mime_header_get(const char *data, size_t start, size_t end, const char *name)
{
    if (!data || !name || start >= end)
        return NULL;
    size_t pos = start;
    struct mime_field f;
    for (;;) {
        switch (mime_next_field(data, end, &pos, &f)) {
        case MIME_LINE_FIELD:
            if (mime_name_is(data, &f, name))
                return mime_unfold(data, f.value, f.value_end);
            break;
        case MIME_LINE_JUNK:
            break;
        case MIME_LINE_BLANK:
        case MIME_LINE_END:
            return NULL;
        }
    }
}
