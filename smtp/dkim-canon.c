/*
 * DKIM canonicalization (RFC 6376 §3.4): simple and relaxed, for header
 * fields and for the body. Streaming: the output goes to a sink in pieces
 * of at most CANON_CHUNK bytes, so a 50 MB body is hashed without a copy.
 *
 * Line ends: CRLF and a bare LF both end a line and are written CRLF (the
 * message as it would be on the wire); a bare CR is an ordinary byte.
 */
#include <string.h>

#include "smtp/smtp.h"

#define CANON_CHUNK 8192

/* Batches small pieces (relaxed output is word by word) into big ones. */
struct out {
    dkim_sink sink;
    void *arg;
    uint64_t total;
    size_t n;
    char buf[CANON_CHUNK];
};

static void out_flush(struct out *o)
{
    if (o->n > 0)
        o->sink(o->arg, o->buf, o->n);
    o->n = 0;
}

static void out_put(struct out *o, const char *p, size_t n)
{
    o->total += n;
    while (n > 0) {
        if (o->n == 0 && n >= sizeof o->buf) {
            o->sink(o->arg, p, n);
            return;
        }
        size_t take = sizeof o->buf - o->n;
        if (take > n)
            take = n;
        memcpy(o->buf + o->n, p, take);
        o->n += take;
        p += take;
        n -= take;
        if (o->n == sizeof o->buf)
            out_flush(o);
    }
}

static void out_crlf(struct out *o, uint64_t count)
{
    static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    const uint64_t per = (sizeof crlfs - 1) / 2;
    while (count > 0) {
        uint64_t k = count < per ? count : per;
        out_put(o, crlfs, (size_t)k * 2);
        count -= k;
    }
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* The line starting at pos: content [pos, *cend), next line at *next. */
static void line_at(const char *s, size_t len, size_t pos, size_t *cend, size_t *next)
{
    const char *nl = memchr(s + pos, '\n', len - pos);
    if (!nl) {
        *cend = len;
        *next = len;
        return;
    }
    size_t e = (size_t)(nl - s);
    *next = e + 1;
    if (e > pos && s[e - 1] == '\r')
        e--;
    *cend = e;
}

/* Is there a line end (CRLF or LF) at s[i]? Its length, else 0. */
static size_t eol_at(const char *s, size_t len, size_t i)
{
    if (s[i] == '\n')
        return 1;
    if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
        return 2;
    return 0;
}

void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, bool crlf,
                       dkim_sink sink, void *arg)
{
    struct out o = { .sink = sink, .arg = arg };
    if (c == DKIM_CANON_SIMPLE) {
        /* §3.4.1: no change at all, but for line ends written CRLF. */
        size_t pos = 0;
        while (pos < len) {
            size_t cend, next;
            line_at(field, len, pos, &cend, &next);
            out_put(&o, field + pos, cend - pos);
            pos = next;
            if (pos < len)
                out_crlf(&o, 1);
        }
    } else {
        /* §3.4.2: lowercase name, no WSP around the colon, unfolded value
         * with WSP runs made one SP and no WSP at either end. */
        const char *colon = memchr(field, ':', len);
        size_t name_end = colon ? (size_t)(colon - field) : len;
        size_t ne = name_end;
        while (ne > 0 && is_wsp(field[ne - 1]))
            ne--;
        for (size_t i = 0; i < ne;) {
            char low[256];
            size_t k = 0;
            while (i < ne && k < sizeof low) {
                char ch = field[i++];
                low[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
            }
            out_put(&o, low, k);
        }
        out_put(&o, ":", 1);
        bool started = false, space = false;
        size_t i = colon ? name_end + 1 : len;
        while (i < len) {
            size_t eol = eol_at(field, len, i);
            if (eol) {
                i += eol;  /* unfold */
                continue;
            }
            if (is_wsp(field[i])) {
                space = true;
                i++;
                continue;
            }
            size_t j = i;
            while (j < len && !is_wsp(field[j]) && !eol_at(field, len, j))
                j++;
            if (space && started)
                out_put(&o, " ", 1);
            out_put(&o, field + i, j - i);
            started = true;
            space = false;
            i = j;
        }
    }
    if (crlf)
        out_crlf(&o, 1);
    out_flush(&o);
}

uint64_t dkim_canon_body(enum dkim_canon c, const char *body, size_t len, dkim_sink sink,
                         void *arg)
{
    struct out o = { .sink = sink, .arg = arg };
    uint64_t empty = 0;  /* empty lines held back: dropped if nothing follows */
    size_t pos = 0;
    while (pos < len) {
        size_t cend, next;
        line_at(body, len, pos, &cend, &next);
        if (c == DKIM_CANON_SIMPLE) {
            if (cend == pos) {
                empty++;
            } else {
                out_crlf(&o, empty);
                empty = 0;
                out_put(&o, body + pos, cend - pos);
                out_crlf(&o, 1);
            }
        } else {
            /* §3.4.4: WSP at the end of a line goes, other WSP runs become
             * one SP (at the start of a line too). */
            bool started = false, space = false;
            size_t i = pos;
            while (i < cend) {
                if (is_wsp(body[i])) {
                    space = true;
                    i++;
                    continue;
                }
                size_t j = i;
                while (j < cend && !is_wsp(body[j]))
                    j++;
                if (!started) {
                    out_crlf(&o, empty);
                    empty = 0;
                }
                if (space)
                    out_put(&o, " ", 1);
                out_put(&o, body + i, j - i);
                started = true;
                space = false;
                i = j;
            }
            if (started)
                out_crlf(&o, 1);
            else
                empty++;
        }
        pos = next;
    }
    /* §3.4.3: "If there is no body or no CRLFs at the end of the body, a
     * CRLF is added"; §3.4.4 adds one only "if the body is non-empty", so an
     * empty relaxed body stays empty. */
    if (c == DKIM_CANON_SIMPLE && o.total == 0)
        out_crlf(&o, 1);
    out_flush(&o);
    return o.total;
}
