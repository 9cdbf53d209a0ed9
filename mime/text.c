/*
 * text.c — the decoded text of a message for the search index (IMAP SEARCH
 * BODY / TEXT) and RFC 2047 encoded-word decoding (SEARCH SUBJECT / FROM).
 *
 * Everything is a pipeline of small streaming stages that end in one bounded
 * output buffer:
 *
 *   raw body --(transfer decoding)--> charset bytes --(conv)--> UTF-8
 *            --(HTML filter, text/html only)--> clean --> sink (capped)
 *
 * The raw body is read in CHUNK-sized slices, so memory is the cap plus a few
 * fixed buffers whatever the message size, and work stops as soon as the cap
 * is reached. Every stage repairs instead of failing: whatever the input, the
 * sink holds valid UTF-8 without NUL bytes.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime-int.h"

#define CHUNK 16384          /* raw body bytes decoded per step */
#define CARRY_MAX 16         /* incomplete multibyte sequence kept between steps */
#define CHARSET_MAX 40       /* longer charset names are not looked up */

static const char REPLACEMENT[] = "\xEF\xBF\xBD";   /* U+FFFD */

/* ---------------------------------------------------------------- sink */

/* A growable output of at most limit bytes (plus a NUL). */
struct sink {
    char *buf;
    size_t len, alloc, limit;
    bool full;               /* limit reached: later text is dropped */
    bool oom;
};

static bool sink_reserve(struct sink *s, size_t n)
{
    if (s->alloc - s->len > n)
        return true;
    size_t want = s->alloc ? s->alloc : 256;
    while (want - s->len <= n)
        want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
    if (want > s->limit + 1 && s->limit + 1 - s->len > n)
        want = s->limit + 1;   /* never more than the limit needs */
    char *nb = realloc(s->buf, want);
    if (!nb) {
        s->oom = true;
        return false;
    }
    s->buf = nb;
    s->alloc = want;
    return true;
}

/*
 * Appends n bytes. Callers only ever feed valid UTF-8, but may split a
 * character between two calls; when the limit cuts the text, the cut goes
 * back to the start of the character it falls in, which may lie in bytes
 * appended before.
 */
static void sink_put(struct sink *s, const char *p, size_t n)
{
    if (s->full || s->oom || n == 0)
        return;
    size_t keep = n;
    if (n > s->limit - s->len) {
        keep = s->limit - s->len;
        s->full = true;
        /* p[keep] is the first byte left out; a character starts there? */
        while (keep > 0 && ((unsigned char)p[keep] & 0xC0) == 0x80)
            keep--;
        if (keep == 0 && ((unsigned char)p[0] & 0xC0) == 0x80) {
            /* The cut falls in a character begun by an earlier call. */
            while (s->len > 0 && ((unsigned char)s->buf[s->len - 1] & 0xC0) == 0x80)
                s->len--;
            if (s->len > 0 && (unsigned char)s->buf[s->len - 1] >= 0xC0)
                s->len--;
            if (s->buf)
                s->buf[s->len] = '\0';
            return;
        }
    }
    if (!sink_reserve(s, keep))
        return;
    memcpy(s->buf + s->len, p, keep);
    s->len += keep;
    s->buf[s->len] = '\0';
}

static void sink_str(struct sink *s, const char *str)
{
    sink_put(s, str, strlen(str));
}

/* Control characters out: none is useful to a search, NUL breaks C strings.
 * A header value becomes one line; a body keeps its line breaks (CRLF and a
 * bare CR become LF) and tabs. */
static void put_clean(struct sink *s, const char *p, size_t n, bool oneline)
{
    char tmp[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && !s->full; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7F) {
            if (c == '\r' && !oneline) {
                if (i + 1 < n && p[i + 1] == '\n')
                    continue;
                c = '\n';
            } else if (oneline || (c != '\n' && c != '\t')) {
                c = ' ';
            }
        }
        tmp[k++] = (char)c;
        if (k == sizeof tmp) {
            sink_put(s, tmp, k);
            k = 0;
        }
    }
    sink_put(s, tmp, k);
}

/* ---------------------------------------------------------------- UTF-8 */

static size_t put_utf8(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * The UTF-8 sequence at s[0, n): its length when valid (RFC 3629 §4: no
 * overlong forms, surrogates or values above U+10FFFF), 0 when invalid, -1
 * when it is a valid beginning cut short by the end of s.
 */
static int utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
            return 0;
    }
    return len;
}

/* ------------------------------------------------------------- charsets */

struct html;
static void html_feed(struct html *h, const char *p, size_t n);

/*
 * Bytes in a charset to UTF-8, fed in pieces. A multibyte character split
 * between two pieces is carried over; bytes that are not valid in the
 * charset become U+FFFD. With no iconv (cd == (iconv_t)-1) the input is
 * taken as UTF-8.
 */
struct conv {
    iconv_t cd;
    char carry[CARRY_MAX];
    size_t ncarry;
    bool started;            /* something was output: a BOM now is text */
    struct sink *out;
    struct html *html;       /* text/html: output goes through the filter */
    bool oneline;
};

/* Names glibc does not know, or that mail uses for a superset. */
static const struct {
    const char *name, *iconv_name;
} charset_aliases[] = {
    /* WHATWG Encoding: mail labelled Latin-1 is Windows-1252 in practice
     * (curly quotes, euro sign in 0x80-0x9F). */
    { "iso-8859-1", "WINDOWS-1252" },
    { "iso8859-1", "WINDOWS-1252" },
    { "latin1", "WINDOWS-1252" },
    { "l1", "WINDOWS-1252" },
    { "ks_c_5601-1987", "CP949" },
    { "ks_c_5601", "CP949" },
    { "x-sjis", "SHIFT_JIS" },
    { "gb2312", "GBK" },
    { "x-gbk", "GBK" },
    { "iso-8859-8-i", "ISO-8859-8" },
    { "x-mac-roman", "MACINTOSH" },
    { "unicode-1-1-utf-7", "UTF-7" },
};

/* Charsets read as UTF-8 without iconv: US-ASCII is a subset, and 8-bit
 * bytes in a part labelled US-ASCII (or not labelled) are most often UTF-8. */
static const char *const utf8_names[] = {
    "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "us", "iso646-us",
    "unknown-8bit", "x-unknown", "unknown", "default",
};

static bool charset_name_ok(const char *cs)
{
    size_t n = strlen(cs);
    if (n == 0 || n > CHARSET_MAX)
        return false;
    /* Only what charset names are made of (RFC 2978 §2.3, minus a few):
     * keeps "//TRANSLIT" suffixes and paths away from iconv_open. */
    for (size_t i = 0; i < n; i++) {
        char c = cs[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '.' || c == ':' || c == '+'))
            return false;
    }
    return true;
}

static void conv_open(struct conv *cv, const char *charset, struct sink *out,
                      struct html *html, bool oneline)
{
    memset(cv, 0, sizeof *cv);
    cv->cd = (iconv_t)-1;
    cv->out = out;
    cv->html = html;
    cv->oneline = oneline;
    if (!charset || !charset_name_ok(charset))
        return;   /* unknown: UTF-8 with repairs */
    for (size_t i = 0; i < sizeof utf8_names / sizeof utf8_names[0]; i++)
        if (strcasecmp(charset, utf8_names[i]) == 0)
            return;
    const char *name = charset;
    for (size_t i = 0; i < sizeof charset_aliases / sizeof charset_aliases[0]; i++)
        if (strcasecmp(charset, charset_aliases[i].name) == 0)
            name = charset_aliases[i].iconv_name;
    cv->cd = iconv_open("UTF-8", name);
}

static void conv_close(struct conv *cv)
{
    if (cv->cd != (iconv_t)-1)
        iconv_close(cv->cd);
    cv->cd = (iconv_t)-1;
}

/* Valid UTF-8 to the next stage; a BOM at the very start is dropped. */
static void conv_emit(struct conv *cv, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (!cv->started) {
        cv->started = true;
        if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            n -= 3;
        }
    }
    if (cv->html)
        html_feed(cv->html, p, n);
    else
        put_clean(cv->out, p, n, cv->oneline);
}

/* UTF-8 input: valid runs go through, each invalid byte becomes U+FFFD.
 * Returns the bytes consumed (a cut-short sequence at the end is left when
 * more input is to come). */
static size_t conv_utf8(struct conv *cv, const char *in, size_t n, bool final)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t i = 0, run = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_len(u + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        conv_emit(cv, in + run, i - run);
        if (k < 0 && !final)
            return i;
        conv_emit(cv, REPLACEMENT, 3);
        run = ++i;
    }
    conv_emit(cv, in + run, i - run);
    return n;
}

static size_t conv_iconv(struct conv *cv, const char *in, size_t n, bool final)
{
    char obuf[4096];
    char *ip = (char *)in;
    size_t left = n;
    while (left > 0 && !cv->out->full) {
        char *op = obuf;
        size_t oleft = sizeof obuf;
        size_t r = iconv(cv->cd, &ip, &left, &op, &oleft);
        int err = errno;
        conv_emit(cv, obuf, (size_t)(op - obuf));
        if (r != (size_t)-1 || err == E2BIG)
            continue;
        if (err == EINVAL && !final && left < CARRY_MAX)
            return n - left;   /* a character continues in the next piece */
        /* EILSEQ, or a character cut short by the end: one byte is lost. */
        conv_emit(cv, REPLACEMENT, 3);
        ip++;
        left--;
    }
    if (final) {
        /* Back to the initial shift state (ISO-2022-JP, UTF-7). */
        char *op = obuf;
        size_t oleft = sizeof obuf;
        iconv(cv->cd, NULL, NULL, &op, &oleft);
        conv_emit(cv, obuf, (size_t)(op - obuf));
    }
    return n;
}

static size_t convert(struct conv *cv, const char *in, size_t n, bool final)
{
    return cv->cd == (iconv_t)-1 ? conv_utf8(cv, in, n, final) : conv_iconv(cv, in, n, final);
}

/* Feeds n bytes; final when no more follow. */
static void conv_feed(struct conv *cv, const char *in, size_t n, bool final)
{
    if (cv->ncarry > 0) {
        /* The carried bytes and the start of this piece: at most one
         * character is completed there, the converter goes on after it. */
        char tmp[2 * CARRY_MAX];
        size_t old = cv->ncarry;
        size_t add = n < CARRY_MAX ? n : CARRY_MAX;
        memcpy(tmp, cv->carry, old);
        memcpy(tmp + old, in, add);
        size_t tn = old + add;
        size_t used = convert(cv, tmp, tn, final && add == n);
        cv->ncarry = 0;
        if (used < old) {
            /* Still cut short: then all of the piece fit in tmp (add == n). */
            memmove(cv->carry, tmp + used, tn - used);
            cv->ncarry = tn - used;
            return;
        }
        in += used - old;
        n -= used - old;
    }
    if (cv->out->full || (n == 0 && !final))
        return;
    size_t used = convert(cv, in, n, final);
    if (used < n) {
        cv->ncarry = n - used;
        memcpy(cv->carry, in + used, cv->ncarry);
    }
}

/* ------------------------------------------------------ encoded words */

struct bytes {
    char *p;
    size_t len, alloc;
};

static bool bytes_put(struct bytes *b, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (b->alloc - b->len < n) {
        size_t want = b->alloc ? b->alloc : 64;
        while (want - b->len < n)
            want *= 2;
        char *np = realloc(b->p, want);
        if (!np)
            return false;
        b->p = np;
        b->alloc = want;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64val(unsigned char c)
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

/* An encoded word "=?charset?e?text?=" at s[0, n) (RFC 2047 §2). */
struct eword {
    size_t len;                  /* of the whole word */
    char charset[CHARSET_MAX + 1];
    char enc;                    /* 'b' or 'q' */
    const char *text;
    size_t text_len;
};

/*
 * Parses the encoded word at s; false when there is none (then the bytes are
 * plain text). Lenient as readers are: no 75-character limit, B text without
 * its padding. Strict where a guess would eat plain text: no white space or
 * control character inside, a B text of the base64 alphabet only.
 */
static bool parse_eword(const char *s, size_t n, struct eword *w)
{
    if (n < 8 || s[0] != '=' || s[1] != '?')
        return false;
    size_t i = 2, cs = 0;
    while (i < n && s[i] != '?') {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7F || cs >= CHARSET_MAX)
            return false;
        w->charset[cs++] = (char)c;
        i++;
    }
    if (cs == 0 || i + 3 >= n)
        return false;
    w->charset[cs] = '\0';
    /* RFC 2231 §5: charset*language */
    char *star = strchr(w->charset, '*');
    if (star)
        *star = '\0';
    char e = s[i + 1];
    if ((e != 'B' && e != 'b' && e != 'Q' && e != 'q') || s[i + 2] != '?')
        return false;
    w->enc = (e == 'B' || e == 'b') ? 'b' : 'q';
    i += 3;
    w->text = s + i;
    while (i < n && s[i] != '?') {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7F)
            return false;
        if (w->enc == 'b' && c != '=' && b64val(c) < 0)
            return false;
        i++;
    }
    if (i + 1 >= n || s[i + 1] != '=')
        return false;
    w->text_len = (size_t)(s + i - w->text);
    w->len = i + 2;
    return true;
}

static bool eword_bytes(const struct eword *w, struct bytes *out)
{
    char buf[256];
    size_t k = 0;
    const unsigned char *t = (const unsigned char *)w->text;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < w->text_len; i++) {
        if (w->enc == 'b') {
            int v = b64val(t[i]);
            if (v < 0) {          /* '=': padding */
                bits = 0;
                continue;
            }
            acc = (acc << 6) | (uint32_t)v;
            bits += 6;
            if (bits < 8)
                continue;
            bits -= 8;
            buf[k++] = (char)((acc >> bits) & 0xFF);
        } else if (t[i] == '_') {
            buf[k++] = ' ';       /* RFC 2047 §4.2 (2) */
        } else if (t[i] == '=' && i + 2 < w->text_len && hexval(t[i + 1]) >= 0
                   && hexval(t[i + 2]) >= 0) {
            buf[k++] = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
            i += 2;
        } else {
            buf[k++] = (char)t[i];
        }
        if (k == sizeof buf) {
            if (!bytes_put(out, buf, k))
                return false;
            k = 0;
        }
    }
    return bytes_put(out, buf, k);
}

/* Converts the joined bytes of adjacent words of one charset. */
static void flush_words(struct sink *s, struct bytes *pend, const char *charset)
{
    if (pend->len == 0)
        return;
    struct conv cv;
    conv_open(&cv, charset, s, NULL, true);
    conv_feed(&cv, pend->p, pend->len, true);
    conv_close(&cv);
    pend->len = 0;
}

static bool all_wsp(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

static void plain_utf8(struct sink *s, const char *p, size_t n)
{
    struct conv cv;
    conv_open(&cv, NULL, s, NULL, true);
    conv_feed(&cv, p, n, true);
}

/*
 * RFC 2047 §6.2: white space between adjacent encoded words is dropped, and
 * adjacent words of one charset are converted as one byte string, so a
 * character split between two words (as some encoders do) comes out whole.
 */
static void decode_words(struct sink *s, const char *v, size_t n)
{
    struct bytes pend = { 0 };
    char pend_cs[CHARSET_MAX + 1] = "";
    size_t text = 0;         /* start of plain text not yet output */
    bool after_word = false;
    size_t i = 0;
    while (i < n && !s->full && !s->oom) {
        struct eword w;
        const char *q = memchr(v + i, '=', n - i);
        if (!q)
            break;
        i = (size_t)(q - v);
        if (!parse_eword(v + i, n - i, &w)) {
            i++;
            continue;
        }
        if (!(after_word && all_wsp(v + text, i - text))) {
            flush_words(s, &pend, pend_cs);
            plain_utf8(s, v + text, i - text);
        }
        if (pend.len && strcasecmp(pend_cs, w.charset) != 0)
            flush_words(s, &pend, pend_cs);
        strcpy(pend_cs, w.charset);
        if (!eword_bytes(&w, &pend)) {
            s->oom = true;
            break;
        }
        i += w.len;
        text = i;
        after_word = true;
    }
    flush_words(s, &pend, pend_cs);
    if (text < n)
        plain_utf8(s, v + text, n - text);
    free(pend.p);
}

char *mime_header_decode(const char *value, size_t len, size_t *out_len)
{
    struct sink s = { .limit = SIZE_MAX - 1 };
    if (!sink_reserve(&s, len + 1))
        return NULL;
    s.buf[0] = '\0';
    decode_words(&s, value ? value : "", value ? len : 0);
    if (s.oom) {
        free(s.buf);
        return NULL;
    }
    if (out_len)
        *out_len = s.len;
    return s.buf;
}

/* ----------------------------------------------------------------- HTML */

enum html_state { H_TEXT, H_LT, H_TAG, H_COMMENT, H_RAW, H_ENT };

#define TAGNAME_MAX 16
#define ENTITY_MAX 32

/*
 * A streaming tag stripper: text between tags, entities decoded, scripts,
 * styles and comments dropped, white space collapsed, block elements as line
 * breaks. Not an HTML5 parser: only what a search needs, in one pass and
 * constant memory. Input and output are UTF-8; only ASCII bytes are looked at.
 */
struct html {
    enum html_state st;
    char name[TAGNAME_MAX + 1];
    size_t nlen;
    bool name_done;
    char quote;
    unsigned dashes;                 /* H_COMMENT: '-' in a row */
    const char *raw_end;             /* H_RAW: "</script" or "</style" */
    size_t raw_matched;
    char ent[ENTITY_MAX + 1];
    size_t elen;
    enum { WS_NONE, WS_SPACE, WS_LINE } ws;
    bool any;                        /* text was output */
    char obuf[1024];
    size_t olen;
    struct sink *out;
};

static void html_flush(struct html *h)
{
    put_clean(h->out, h->obuf, h->olen, false);
    h->olen = 0;
}

static void html_byte(struct html *h, char c)
{
    if (h->olen == sizeof h->obuf)
        html_flush(h);
    h->obuf[h->olen++] = c;
}

/* A text byte: white space is held back and collapsed. */
static void html_text(struct html *h, char c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        if (h->ws == WS_NONE)
            h->ws = WS_SPACE;
        return;
    }
    if (h->ws != WS_NONE && h->any)
        html_byte(h, h->ws == WS_LINE ? '\n' : ' ');
    h->ws = WS_NONE;
    h->any = true;
    html_byte(h, c);
}

static void html_cp(struct html *h, uint32_t cp)
{
    char u[4];
    size_t n = put_utf8(cp, u);
    for (size_t i = 0; i < n; i++)
        html_text(h, u[i]);
}

/* Elements that break a line of text; the others (b, a, span ...) do not
 * break words. */
static const char *const html_blocks[] = {
    "br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "hr", "title",
    "section", "article", "header", "footer", "body", "head", "html",
};

static void html_tag_end(struct html *h)
{
    const char *name = h->name[0] == '/' ? h->name + 1 : h->name;
    if (h->name[0] != '/' && strcmp(name, "script") == 0) {
        h->st = H_RAW, h->raw_end = "</script", h->raw_matched = 0;
        return;
    }
    if (h->name[0] != '/' && strcmp(name, "style") == 0) {
        h->st = H_RAW, h->raw_end = "</style", h->raw_matched = 0;
        return;
    }
    h->st = H_TEXT;
    for (size_t i = 0; i < sizeof html_blocks / sizeof html_blocks[0]; i++)
        if (strcmp(name, html_blocks[i]) == 0)
            h->ws = WS_LINE;
}

/* HTML 4 Latin-1 entities, U+00A0 to U+00FF in order. */
static const char *const latin1_entities[96] = {
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy",
    "ordf", "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3",
    "acute", "micro", "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14",
    "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml",
    "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
    "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml",
    "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig",
    "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave",
    "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
};

static const struct {
    const char *name;
    uint32_t cp;
} html_entities[] = {
    { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
    { "ndash", 0x2013 }, { "mdash", 0x2014 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
    { "sbquo", 0x201A }, { "ldquo", 0x201C }, { "rdquo", 0x201D }, { "bdquo", 0x201E },
    { "hellip", 0x2026 }, { "euro", 0x20AC }, { "bull", 0x2022 }, { "trade", 0x2122 },
    { "dagger", 0x2020 }, { "Dagger", 0x2021 }, { "permil", 0x2030 },
    { "lsaquo", 0x2039 }, { "rsaquo", 0x203A }, { "OElig", 0x152 }, { "oelig", 0x153 },
    { "Scaron", 0x160 }, { "scaron", 0x161 }, { "Yuml", 0x178 }, { "circ", 0x2C6 },
    { "tilde", 0x2DC }, { "ensp", ' ' }, { "emsp", ' ' }, { "thinsp", ' ' },
    { "zwnj", 0x200C }, { "zwj", 0x200D }, { "lrm", 0x200E }, { "rlm", 0x200F },
};

/* HTML5 §13.2.5.80: &#128; to &#159; are read as Windows-1252. */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160,
    0x2039, 0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178,
};

/* The entity in h->ent (without '&' and ';'): its code point, or -1. */
static long entity_cp(const struct html *h)
{
    const char *e = h->ent;
    if (e[0] == '#') {
        bool hex = e[1] == 'x' || e[1] == 'X';
        const char *d = e + (hex ? 2 : 1);
        if (!*d)
            return -1;
        unsigned long v = 0;
        for (; *d; d++) {
            int x = hex ? hexval((unsigned char)*d) : (*d >= '0' && *d <= '9' ? *d - '0' : -1);
            if (x < 0)
                return -1;
            v = v * (hex ? 16 : 10) + (unsigned long)x;
            if (v > 0x10FFFF)
                v = 0x110000;   /* stays out of range, no overflow */
        }
        if (v >= 0x80 && v <= 0x9F)
            return cp1252_c1[v - 0x80];
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return 0xFFFD;
        return (long)v;
    }
    for (size_t i = 0; i < sizeof html_entities / sizeof html_entities[0]; i++)
        if (strcmp(e, html_entities[i].name) == 0)
            return html_entities[i].cp;
    for (size_t i = 0; i < 96; i++)
        if (strcmp(e, latin1_entities[i]) == 0)
            return i == 0 ? ' ' : (long)(0xA0 + i);   /* nbsp: a space */
    return -1;
}

/* The entity in h->ent ends (semi: at a ';'); unknown ones stay as text. */
static void html_entity_end(struct html *h, bool semi)
{
    h->ent[h->elen] = '\0';
    long cp = entity_cp(h);
    if (cp >= 0) {
        html_cp(h, (uint32_t)cp);
    } else {
        html_text(h, '&');
        for (size_t i = 0; i < h->elen; i++)
            html_text(h, h->ent[i]);
        if (semi)
            html_text(h, ';');
    }
    h->st = H_TEXT;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static void html_char(struct html *h, char c)
{
    switch (h->st) {
    case H_TEXT:
        if (c == '<')
            h->st = H_LT;
        else if (c == '&')
            h->st = H_ENT, h->elen = 0;
        else
            html_text(h, c);
        return;
    case H_LT:
        if (is_alpha(c) || c == '/' || c == '!' || c == '?') {
            h->st = H_TAG;
            h->quote = 0;
            h->name_done = false;
            h->name[0] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            h->nlen = 1;
            h->name[1] = '\0';
            return;
        }
        h->st = H_TEXT;          /* "a < b": a plain '<' */
        html_text(h, '<');
        html_char(h, c);
        return;
    case H_TAG:
        if (!h->name_done) {
            if (is_alnum(c) || c == '-' || c == '!') {
                if (h->nlen < TAGNAME_MAX) {
                    h->name[h->nlen++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                    h->name[h->nlen] = '\0';
                }
                if (strcmp(h->name, "!--") == 0) {
                    h->st = H_COMMENT;
                    h->dashes = 0;
                }
                return;
            }
            h->name_done = true;
        }
        if (h->quote) {
            if (c == h->quote)
                h->quote = 0;
        } else if (c == '"' || c == '\'') {
            h->quote = c;
        } else if (c == '>') {
            html_tag_end(h);
        }
        return;
    case H_COMMENT:
        if (c == '>' && h->dashes >= 2)
            h->st = H_TEXT;
        else
            h->dashes = c == '-' ? h->dashes + 1 : 0;
        return;
    case H_RAW: {
        char lc = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (lc == h->raw_end[h->raw_matched])
            h->raw_matched++;
        else
            h->raw_matched = lc == '<' ? 1 : 0;
        if (h->raw_end[h->raw_matched] == '\0') {
            /* The rest of the end tag up to '>' is skipped as a tag. */
            h->st = H_TAG;
            h->quote = 0;
            h->name_done = true;
            strcpy(h->name, "/");
        }
        return;
    }
    case H_ENT:
        if (c == ';') {
            html_entity_end(h, true);
            return;
        }
        if ((is_alnum(c) || (c == '#' && h->elen == 0)) && h->elen < ENTITY_MAX) {
            h->ent[h->elen++] = c;
            return;
        }
        html_entity_end(h, false);   /* without its ';', as browsers do */
        html_char(h, c);
        return;
    }
}

static void html_feed(struct html *h, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !h->out->full; i++)
        html_char(h, p[i]);
}

static void html_finish(struct html *h)
{
    if (h->st == H_ENT)
        html_entity_end(h, false);
    else if (h->st == H_LT)
        html_text(h, '<');
    html_flush(h);
}

/* ------------------------------------------------- transfer encodings */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

struct decoder {
    enum cte cte;
    uint32_t acc;            /* base64 bits not yet output */
    int bits;
};

/*
 * Decodes in[0, n) into out (room for n bytes); returns the bytes consumed.
 * Only quoted-printable leaves bytes over, an '=' whose meaning depends on
 * bytes not yet read; at least one byte is consumed when n > 0.
 */
static size_t cte_decode(struct decoder *d, const char *in, size_t n, bool final,
                         char *out, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t k = 0, i = 0;
    switch (d->cte) {
    case CTE_IDENTITY:
        memcpy(out, in, n);
        *out_len = n;
        return n;
    case CTE_BASE64:
        /* RFC 2045 §6.8: characters outside the alphabet are ignored; '='
         * ends a quantum, and decoding goes on after it (concatenated
         * encodings). */
        for (i = 0; i < n; i++) {
            if (u[i] == '=') {
                d->bits = 0;
                continue;
            }
            int v = b64val(u[i]);
            if (v < 0)
                continue;
            d->acc = (d->acc << 6) | (uint32_t)v;
            d->bits += 6;
            if (d->bits >= 8) {
                d->bits -= 8;
                out[k++] = (char)((d->acc >> d->bits) & 0xFF);
            }
        }
        *out_len = k;
        return n;
    case CTE_QP:
        while (i < n) {
            if (u[i] != '=') {
                out[k++] = (char)u[i++];
                continue;
            }
            /* RFC 2045 §6.7 (1): =XX, lower case hex accepted. */
            if (i + 2 < n && hexval(u[i + 1]) >= 0 && hexval(u[i + 2]) >= 0) {
                out[k++] = (char)(hexval(u[i + 1]) * 16 + hexval(u[i + 2]));
                i += 3;
                continue;
            }
            /* (5): a soft line break, with the transport padding of (3). */
            size_t j = i + 1;
            while (j < n && (u[j] == ' ' || u[j] == '\t'))
                j++;
            if (j < n && u[j] == '\r')
                j++;
            if (j < n && u[j] == '\n') {
                i = j + 1;
                continue;
            }
            if (j == n && final) {
                i = n;            /* '=' ending the body */
                continue;
            }
            if ((j == n || i + 2 >= n) && !final && i > 0)
                break;            /* decided by the next bytes */
            out[k++] = '=';       /* not an escape: kept as it is */
            i++;
        }
        *out_len = k;
        return i;
    }
    *out_len = 0;
    return n;
}

/* --------------------------------------------------------- the message */

/* message/global parts read as messages inside each other, at most. */
#define TEXT_MAX_GLOBAL 4

struct extract {
    const char *data;
    unsigned globals;        /* message/global parts open */
    struct sink header, body;
    char *raw;               /* decoded transfer encoding + carry room */
};

static const char *param_of(const struct mime_part *p, const char *name)
{
    for (unsigned i = 0; i < p->n_params; i++)
        if (strcasecmp(p->params[i].name, name) == 0)
            return p->params[i].value;
    return NULL;
}

/* "Name: value\n" for every field, values unfolded and decoded. */
static void header_text(struct extract *x, struct sink *s, const struct mime_part *p)
{
    size_t pos = p->header_start;
    struct mime_field f;
    for (;;) {
        if (s->full || s->oom)
            return;
        switch (mime_next_field(x->data, p->body_start, &pos, &f)) {
        case MIME_LINE_FIELD: {
            char *v = mime_unfold(x->data, f.value, f.value_end);
            if (!v) {
                s->oom = true;
                return;
            }
            plain_utf8(s, x->data + f.name, f.name_len);
            sink_str(s, ": ");
            decode_words(s, v, strlen(v));
            sink_str(s, "\n");
            free(v);
            break;
        }
        case MIME_LINE_JUNK:
            break;
        case MIME_LINE_BLANK:
        case MIME_LINE_END:
            return;
        }
    }
}

static enum cte cte_of(const char *encoding)
{
    if (encoding && strcasecmp(encoding, "base64") == 0)
        return CTE_BASE64;
    if (encoding && strcasecmp(encoding, "quoted-printable") == 0)
        return CTE_QP;
    return CTE_IDENTITY;   /* 7bit, 8bit, binary; unknown ones as they are */
}

static void body_text(struct extract *x, const struct mime_part *p)
{
    struct sink *s = &x->body;
    if (s->len > 0)
        sink_str(s, "\n");
    struct html *h = NULL;
    if (strcasecmp(p->subtype, "html") == 0) {
        h = calloc(1, sizeof *h);
        if (!h) {
            s->oom = true;
            return;
        }
        h->out = s;
    }
    struct conv cv;
    conv_open(&cv, param_of(p, "charset"), s, h, false);
    struct decoder d = { .cte = cte_of(p->encoding) };
    size_t pos = p->body_start;
    while (!s->full && !s->oom) {
        size_t n = p->end - pos < CHUNK ? p->end - pos : CHUNK;
        bool final = pos + n == p->end;
        size_t dn;
        pos += cte_decode(&d, x->data + pos, n, final, x->raw, &dn);
        conv_feed(&cv, x->raw, dn, final);
        if (final)
            break;
    }
    conv_close(&cv);
    if (h) {
        html_finish(h);
        free(h);
    }
}

static void walk(struct extract *x, const struct mime_part *p)
{
    if (x->body.full || x->body.oom)
        return;
    if (p->multipart) {
        for (unsigned i = 0; i < p->n_children; i++)
            walk(x, &p->children[i]);
    } else if (p->message) {
        /* An attached message is part of the outer body (RFC 3501 §6.4.4
         * BODY searches it): its header and text go there. */
        if (x->body.len > 0)
            sink_str(&x->body, "\n");
        header_text(x, &x->body, p->message);
        walk(x, p->message);
    } else if (strcasecmp(p->type, "text") == 0) {
        body_text(x, p);
    } else if (strcasecmp(p->type, "message") == 0 && strcasecmp(p->subtype, "global") == 0
               && cte_of(p->encoding) == CTE_IDENTITY && x->globals < TEXT_MAX_GLOBAL) {
        /* RFC 6532 §3.5: an attached message with UTF-8 headers. The tree
         * keeps it as one body (as IMAP shows it, Dovecot's way), so its
         * structure is parsed here, for search only. */
        struct mime_message *m = mime_parse(x->data + p->body_start, p->end - p->body_start);
        if (!m) {
            x->body.oom = true;
            return;
        }
        const char *outer = x->data;
        x->data += p->body_start;
        x->globals++;
        if (x->body.len > 0)
            sink_str(&x->body, "\n");
        header_text(x, &x->body, &m->root);
        walk(x, &m->root);
        x->globals--;
        x->data = outer;
        mime_free(&m);
    }
}

struct mime_text *mime_text_extract(const struct mime_message *msg, const char *data,
                                    size_t len, size_t cap)
{
    if (!msg || (!data && len) || msg->size != len || cap >= SIZE_MAX - 1) {
        errno = EINVAL;
        return NULL;
    }
    struct extract x = { .data = data ? data : "" };
    x.header.limit = cap;
    x.raw = malloc(CHUNK);
    struct mime_text *t = calloc(1, sizeof *t);
    if (!x.raw || !t || !sink_reserve(&x.header, 0) || !sink_reserve(&x.body, 0))
        goto oom;
    x.header.buf[0] = x.body.buf[0] = '\0';

    header_text(&x, &x.header, &msg->root);
    x.body.limit = cap - x.header.len;
    if (!x.header.full)
        walk(&x, &msg->root);
    if (x.header.oom || x.body.oom)
        goto oom;
    free(x.raw);
    t->header = x.header.buf;
    t->header_len = x.header.len;
    t->body = x.body.buf;
    t->body_len = x.body.len;
    t->truncated = x.header.full || x.body.full;
    return t;
oom:
    free(x.raw);
    free(x.header.buf);
    free(x.body.buf);
    free(t);
    errno = ENOMEM;
    return NULL;
}

void mime_text_free(struct mime_text **t)
{
    if (!t || !*t)
        return;
    free((*t)->header);
    free((*t)->body);
    free(*t);
    *t = NULL;
}
