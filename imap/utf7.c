/*
 * Modified UTF-7 mailbox names (RFC 3501 §5.1.3): printable US-ASCII but
 * "&" stands for itself, "&" is "&-", and anything else is UTF-16BE in
 * modified BASE64 ("," for "/", no "=" padding) between "&" and "-".
 *
 * The decoder accepts exactly what the encoder writes, so that one mailbox
 * has one spelling: decode then encode gives back the input.
 */
#include <stdint.h>
#include <string.h>

#include "imap/imap.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Output that remembers running out of room (one byte is kept for the NUL). */
struct out {
    char *buf;
    size_t size, len;
    bool full;
};

static void put(struct out *o, char ch)
{
    if (o->len + 1 < o->size)
        o->buf[o->len++] = ch;
    else
        o->full = true;
}

static ssize_t finish(struct out *o)
{
    if (o->size == 0)
        return -2;
    o->buf[o->len] = 0;
    return o->full ? -2 : (ssize_t)o->len;
}

static bool is_direct(uint32_t ch)
{
    return ch >= 0x20 && ch <= 0x7e;
}

/* ------------------------------------------------------------ decoding */

static int b64_value(char ch)
{
    const char *p = ch ? strchr(b64, ch) : NULL;
    return p ? (int)(p - b64) : -1;
}

static void put_utf8(struct out *o, uint32_t cp)
{
    if (cp < 0x80) {
        put(o, (char)cp);
    } else if (cp < 0x800) {
        put(o, (char)(0xc0 | cp >> 6));
        put(o, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put(o, (char)(0xe0 | cp >> 12));
        put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
        put(o, (char)(0x80 | (cp & 0x3f)));
    } else {
        put(o, (char)(0xf0 | cp >> 18));
        put(o, (char)(0x80 | ((cp >> 12) & 0x3f)));
        put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
        put(o, (char)(0x80 | (cp & 0x3f)));
    }
}

/*
 * One UTF-16 unit of a shift. *high holds a pending high surrogate. Refuses
 * lone surrogates, U+0000 and printable ASCII (written directly).
 */
static bool take_unit(uint32_t unit, uint32_t *high, struct out *o)
{
    if (unit >= 0xd800 && unit <= 0xdbff) {
        if (*high)
            return false;
        *high = unit;
        return true;
    }
    uint32_t cp = unit;
    if (unit >= 0xdc00 && unit <= 0xdfff) {
        if (!*high)
            return false;
        cp = 0x10000 + ((*high - 0xd800) << 10) + (unit - 0xdc00);
        *high = 0;
    } else if (*high) {
        return false;
    }
    if (cp == 0 || is_direct(cp))
        return false;
    put_utf8(o, cp);
    return true;
}

/*
 * The base64 of a shift from in[*pos] up to and including its "-". The
 * encoder pads the last unit with at most 4 zero bits (16 bits take 3
 * characters, 32 take 6, 48 take 8), so 6 or more bits left over, or
 * non-zero ones, are refused.
 */
static bool decode_shift(const char *in, size_t len, size_t *pos, struct out *o)
{
    uint32_t bits = 0, high = 0;
    unsigned nbits = 0;
    size_t i = *pos;
    for (; i < len && in[i] != '-'; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return false;
        bits = bits << 6 | (uint32_t)v;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        uint32_t unit = bits >> nbits;
        bits &= (1u << nbits) - 1;
        if (!take_unit(unit, &high, o))
            return false;
    }
    if (i == len || high || nbits >= 6 || bits != 0)
        return false;
    *pos = i + 1;
    return true;
}

ssize_t imap_utf7_decode(const char *in, size_t len, char *out, size_t outsize)
{
    struct out o = { out, outsize, 0, false };
    bool after_shift = false;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        if (!is_direct(ch))
            return -1;
        if (ch != '&') {
            put(&o, (char)ch);
            i++;
            after_shift = false;
        } else if (i + 1 < len && in[i + 1] == '-') {
            put(&o, '&');
            i += 2;
            after_shift = false;
        } else {
            /* "&AOk-&AOk-": an encoder writes one shift, "&AOkA6Q-". */
            if (after_shift)
                return -1;
            i++;
            if (!decode_shift(in, len, &i, &o))
                return -1;
            after_shift = true;
        }
    }
    return finish(&o);
}

/* ------------------------------------------------------------ encoding */

/* One well-formed UTF-8 sequence at s: its length and code point, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t left, uint32_t *cp)
{
    size_t n;
    uint32_t v;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        v = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        v = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        v = s[0] & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (n == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return n;
}

struct shift {
    uint32_t bits;
    unsigned nbits;
};

static void push_unit(struct shift *sh, uint32_t unit, struct out *o)
{
    sh->bits = sh->bits << 16 | unit;
    sh->nbits += 16;
    while (sh->nbits >= 6) {
        sh->nbits -= 6;
        put(o, b64[(sh->bits >> sh->nbits) & 63]);
    }
    sh->bits &= (1u << sh->nbits) - 1;
}

static void end_shift(struct shift *sh, struct out *o)
{
    if (sh->nbits)
        put(o, b64[(sh->bits << (6 - sh->nbits)) & 63]);
    put(o, '-');
    sh->bits = 0;
    sh->nbits = 0;
}

ssize_t imap_utf7_encode(const char *in, size_t len, char *out, size_t outsize)
{
    struct out o = { out, outsize, 0, false };
    struct shift sh = { 0, 0 };
    bool shifted = false;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        if (is_direct(ch)) {
            if (shifted)
                end_shift(&sh, &o);
            shifted = false;
            put(&o, (char)ch);
            if (ch == '&')
                put(&o, '-');
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)in + i, len - i, &cp);
        if (n == 0 || cp == 0)
            return -1;
        if (!shifted)
            put(&o, '&');
        shifted = true;
        if (cp >= 0x10000) {
            push_unit(&sh, 0xd800 + ((cp - 0x10000) >> 10), &o);
            push_unit(&sh, 0xdc00 + ((cp - 0x10000) & 0x3ff), &o);
        } else {
            push_unit(&sh, cp, &o);
        }
        i += n;
    }
    if (shifted)
        end_shift(&sh, &o);
    return finish(&o);
}
