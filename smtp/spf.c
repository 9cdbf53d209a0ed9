/*
 * SPF (RFC 7208): check_host() as a state machine driven by DNS answers,
 * the record parser (§4.5, §4.6, §5, §6, Appendix A's ABNF) and macro
 * expansion (§7). Why not libspf2: docs/spf-dmarc.md.
 *
 * No I/O, no clock, no global state. The evaluation is a stack of frames,
 * one per record being evaluated (the checked domain, then each include;
 * redirect= replaces the frame it ends). Only the top frame's current term
 * is ever in progress, so its progress (target name, MX hosts) lives in
 * struct spf. Every step either finishes, asks one lookup, or moves on, and
 * the lookup counts bound the whole run (§4.6.4).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

#define MAX_QUERIES 200      /* a backstop: the RFC limits allow about 140 */
#define MAX_HELO 255
#define MAX_VALUE (SPF_MAX_SENDER + 16)  /* a macro's value: <sender> with "postmaster" */

/* ------------------------------------------------------------ helpers */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq(const char *a, size_t an, const char *lit)
{
    size_t n = strlen(lit);
    return an == n && strncasecmp(a, lit, n) == 0;
}

/* Copies src into dst[cap] (truncating), returns dst. */
static char *copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    return dst;
}

/* ---------------------------------------------------------- addresses */

struct ipaddr {
    bool v6;
    unsigned char b[16];  /* IPv4 in b[0..3] */
};

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address (§5). */
static bool ip_parse(const char *s, struct ipaddr *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memcpy(ip->b, &a4, 4);
        return true;
    }
    if (inet_pton(AF_INET6, s, &a6) != 1)
        return false;
    if (memcmp(a6.s6_addr, mapped, 12) == 0) {
        memcpy(ip->b, a6.s6_addr + 12, 4);
        return true;
    }
    ip->v6 = true;
    memcpy(ip->b, a6.s6_addr, 16);
    return true;
}

static bool ip_in_net(const struct ipaddr *ip, bool v6, const unsigned char *net, int bits)
{
    if (ip->v6 != v6)
        return false;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(ip->b, net, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (ip->b[full] & mask) == (net[full] & mask);
}

/* Does an A / AAAA record's text address lie in ip's /bits? */
static bool addr_match(const struct ipaddr *ip, const char *text, int bits)
{
    unsigned char net[16];
    if (ip->v6) {
        if (inet_pton(AF_INET6, text, net) != 1)
            return false;
        return ip_in_net(ip, true, net, bits);
    }
    if (inet_pton(AF_INET, text, net) != 1)
        return false;
    return ip_in_net(ip, false, net, bits);
}

/* "i" of §7.3: dotted quad, or 32 dot-separated nibbles for IPv6. */
static void ip_dotted(const struct ipaddr *ip, char *out, size_t cap)
{
    if (!ip->v6) {
        snprintf(out, cap, "%u.%u.%u.%u", ip->b[0], ip->b[1], ip->b[2], ip->b[3]);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (int i = 0; i < 16 && n + 4 < cap; i++) {
        out[n++] = hex[ip->b[i] >> 4];
        out[n++] = '.';
        out[n++] = hex[ip->b[i] & 15];
        out[n++] = '.';
    }
    out[n ? n - 1 : 0] = 0;
}

static void ip_text(const struct ipaddr *ip, char *out, size_t cap)
{
    if (!inet_ntop(ip->v6 ? AF_INET6 : AF_INET, ip->b, out, (socklen_t)cap))
        copy(out, cap, "");
}

/* -------------------------------------------------------- domain names */

/*
 * A name we may ask DNS about (docs/dns.md): 1..253 bytes, labels of 1..63
 * printable ASCII bytes other than '\'. One trailing dot is dropped first.
 */
static bool query_name_ok(const char *s, size_t n)
{
    if (n && s[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c <= 0x20 || c >= 0x7f || c == '\\' || ++label > 63)
            return false;
    }
    return label > 0;
}

/*
 * §4.3: a usable <domain> is a multi-label host name whose last label is
 * not all digits (so no address literal or IP address); labels of letters,
 * digits, '-' and '_'.
 */
static bool check_domain_ok(const char *s)
{
    size_t n = strlen(s), labels = 0, label = 0;
    bool digits_only = true;
    if (!query_name_ok(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            labels++;
            label = 0;
            digits_only = true;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_')
            return false;
        if (!is_digit(c))
            digits_only = false;
        label++;
    }
    if (label > 0)
        labels++;
    return labels >= 2 && !digits_only;
}

/* Is name equal to domain or below it? Both without trailing dots. */
static bool name_within(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);
    if (n == d)
        return strcasecmp(name, domain) == 0;
    return n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0;
}

/* ------------------------------------------------------------ Punycode */

/* RFC 3492 §6.3 over one label of code points. */
static int punycode(const uint32_t *cp, size_t n, char *out, size_t cap)
{
    enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
    size_t o = 0, b = 0;
    for (size_t i = 0; i < n; i++)
        if (cp[i] < 0x80) {
            if (o + 1 >= cap)
                return -1;
            out[o++] = lower((char)cp[i]);
            b++;
        }
    if (b > 0) {
        if (o + 1 >= cap)
            return -1;
        out[o++] = '-';
    }
    uint32_t nn = 0x80, bias = 72;
    uint64_t delta = 0;
    size_t h = b;
    while (h < n) {
        uint32_t m = UINT32_MAX;
        for (size_t i = 0; i < n; i++)
            if (cp[i] >= nn && cp[i] < m)
                m = cp[i];
        delta += (uint64_t)(m - nn) * (h + 1);
        nn = m;
        for (size_t i = 0; i < n; i++) {
            if (cp[i] < nn)
                delta++;
            if (cp[i] != nn)
                continue;
            uint64_t q = delta;
            for (uint32_t k = BASE;; k += BASE) {
                uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
                if (q < t)
                    break;
                uint32_t d = (uint32_t)(t + (q - t) % (BASE - t));
                if (o + 1 >= cap)
                    return -1;
                out[o++] = (char)(d < 26 ? 'a' + d : '0' + d - 26);
                q = (q - t) / (BASE - t);
            }
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)(q < 26 ? 'a' + q : '0' + q - 26);
            /* adapt (§6.1) */
            uint64_t dl = h == b ? delta / DAMP : delta / 2;
            dl += dl / (h + 1);
            uint32_t k = 0;
            while (dl > ((BASE - TMIN) * TMAX) / 2) {
                dl /= BASE - TMIN;
                k += BASE;
            }
            bias = (uint32_t)(k + (BASE - TMIN + 1) * dl / (dl + SKEW));
            delta = 0;
            h++;
        }
        delta++;
        nn++;
        if (delta > UINT32_MAX)
            return -1;
    }
    out[o] = 0;
    return (int)o;
}

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

int smtp_domain_ascii(const char *domain, char *out, size_t outlen)
{
    size_t len = strlen(domain), o = 0;
    if (len && domain[len - 1] == '.')
        len--;
    if (outlen == 0)
        return -1;
    size_t i = 0;
    while (i <= len) {
        size_t end = i;
        bool ascii = true;
        while (end < len && domain[end] != '.') {
            if ((unsigned char)domain[end] >= 0x80)
                ascii = false;
            end++;
        }
        if (i > 0) {
            if (o + 2 > outlen)
                return -1;
            out[o++] = '.';
        }
        if (ascii) {
            if (o + (end - i) + 1 > outlen)
                return -1;
            memcpy(out + o, domain + i, end - i);
            o += end - i;
        } else {
            uint32_t cp[64];
            size_t ncp = 0;
            for (size_t k = i; k < end;) {
                if (ncp == 63)
                    return -1;
                size_t l = utf8_decode((const unsigned char *)domain + k, end - k, &cp[ncp]);
                if (l == 0)
                    return -1;
                ncp++;
                k += l;
            }
            char label[64];
            if (punycode(cp, ncp, label, sizeof label) < 0 || strlen(label) > 59)
                return -1;
            int w = snprintf(out + o, outlen - o, "xn--%s", label);
            if (w < 0 || (size_t)w >= outlen - o)
                return -1;
            o += (size_t)w;
        }
        i = end + 1;
    }
    out[o] = 0;
    if (o > DNS_NAME_MAX)
        return -1;
    return (int)o;
}

/* ------------------------------------------------------ macros (§7) */

/* What the expansion works with: the public vars with the address parsed. */
struct mctx {
    const struct spf_macro_vars *v;
    struct ipaddr ip;
    char i[80];   /* "i" */
    char c[48];   /* "c" */
};

static bool is_delim(char c)
{
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

static bool unreserved(unsigned char c)
{
    return is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

struct obuf {
    char *p;
    size_t n, cap;
    bool over;
};

static void oput(struct obuf *o, const char *s, size_t n)
{
    if (o->over || !o->p)
        return;
    if (n >= o->cap - o->n || o->n + n > SPF_MAX_EXPANSION) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* One value through the transformers (§7.3): split, reverse, keep the
 * rightmost digits parts, join with '.', URL-escape when upper. */
static void transform(struct obuf *o, const char *val, unsigned long keep, bool reverse,
                      const char *delims, size_t ndelims, bool escape)
{
    struct {
        size_t at, n;
    } parts[MAX_VALUE + 2];
    size_t np = 0, start = 0, len = strlen(val);
    if (len > MAX_VALUE) {
        o->over = true;
        return;
    }
    for (size_t i = 0; i <= len; i++) {
        bool cut = i == len;
        if (!cut)
            for (size_t d = 0; d < ndelims; d++)
                if (val[i] == delims[d])
                    cut = true;
        if (cut) {
            parts[np].at = start;
            parts[np].n = i - start;
            np++;
            start = i + 1;
        }
    }
    if (reverse)
        for (size_t a = 0, b = np - 1; a < b; a++, b--) {
            size_t at = parts[a].at, an = parts[a].n;
            parts[a] = parts[b];
            parts[b].at = at;
            parts[b].n = an;
        }
    size_t first = keep && keep < np ? np - keep : 0;
    for (size_t k = first; k < np; k++) {
        if (k > first)
            oput(o, ".", 1);
        const char *p = val + parts[k].at;
        if (!escape) {
            oput(o, p, parts[k].n);
            continue;
        }
        for (size_t j = 0; j < parts[k].n; j++) {
            unsigned char ch = (unsigned char)p[j];
            if (unreserved(ch)) {
                oput(o, (const char *)&ch, 1);
            } else {
                char e[4];
                snprintf(e, sizeof e, "%%%02X", ch);
                oput(o, e, 3);
            }
        }
    }
}

/*
 * Scans (ctx NULL) or expands a macro-string. exp: an explain-string (SP
 * allowed; c, r, t allowed). Returns 0, -1 syntax error, -2 too long, -3 the
 * "p" macro is used and ctx has no p value yet (ctx->v->ptr NULL and
 * need_p set).
 */
static int expand(const char *s, size_t n, const struct mctx *ctx, bool exp, bool need_p,
                  struct obuf *o)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c != '%') {
            if ((c < 0x21 || c > 0x7e) && !(exp && c == ' '))
                return -1;
            size_t j = i + 1;
            while (j < n && s[j] != '%' && (unsigned char)s[j] >= 0x21 &&
                   (unsigned char)s[j] <= 0x7e)
                j++;
            oput(o, s + i, j - i);
            i = j;
            continue;
        }
        if (i + 1 >= n)
            return -1;
        char k = s[i + 1];
        if (k == '%' || k == '_' || k == '-') {
            oput(o, k == '%' ? "%" : k == '_' ? " " : "%20", k == '-' ? 3 : 1);
            i += 2;
            continue;
        }
        if (k != '{' || i + 2 >= n)
            return -1;
        size_t j = i + 2;
        char letter = s[j++];
        char l = lower(letter);
        if (l == 0 || !strchr("slodiphcrtv", l))
            return -1;
        if (!exp && (l == 'c' || l == 'r' || l == 't'))
            return -1;
        unsigned long keep = 0;
        bool digits = false;
        while (j < n && is_digit(s[j])) {
            digits = true;
            if (keep < 100000)
                keep = keep * 10 + (unsigned long)(s[j] - '0');
            j++;
        }
        if (digits && keep == 0)
            return -1;  /* §7.3: the DIGIT value MUST be nonzero */
        bool reverse = false;
        if (j < n && lower(s[j]) == 'r') {
            reverse = true;
            j++;
        }
        size_t d0 = j;
        while (j < n && is_delim(s[j]))
            j++;
        if (j >= n || s[j] != '}')
            return -1;
        size_t nd = j - d0;
        i = j + 1;
        if (!ctx)
            continue;
        const struct spf_macro_vars *v = ctx->v;
        const char *val = "";
        char buf[MAX_VALUE + 1];
        const char *at = v->sender ? strrchr(v->sender, '@') : NULL;
        switch (l) {
        case 's':
            val = v->sender ? v->sender : "";
            break;
        case 'l':
            if (at) {
                size_t ln = (size_t)(at - v->sender);
                snprintf(buf, sizeof buf, "%.*s", (int)ln, v->sender);
                val = buf;
            } else {
                val = "postmaster";
            }
            break;
        case 'o':
            val = at ? at + 1 : v->sender ? v->sender : "";
            break;
        case 'd':
            val = v->domain ? v->domain : "";
            break;
        case 'i':
            val = ctx->i;
            break;
        case 'p':
            if (!v->ptr && need_p)
                return -3;
            val = v->ptr ? v->ptr : "unknown";
            break;
        case 'h':
            val = v->helo ? v->helo : "";
            break;
        case 'c':
            val = ctx->c;
            break;
        case 'r':
            val = v->receiver && *v->receiver ? v->receiver : "unknown";
            break;
        case 't':
            snprintf(buf, sizeof buf, "%lld", (long long)v->now);
            val = buf;
            break;
        case 'v':
            val = ctx->ip.v6 ? "ip6" : "in-addr";
            break;
        }
        transform(o, val, keep, reverse, nd ? s + d0 : ".", nd ? nd : 1,
                  letter >= 'A' && letter <= 'Z');
    }
    return o->over ? -2 : 0;
}

static int mctx_init(struct mctx *m, const struct spf_macro_vars *v)
{
    memset(m, 0, sizeof *m);
    m->v = v;
    if (!v->ip || !ip_parse(v->ip, &m->ip))
        return -1;
    ip_dotted(&m->ip, m->i, sizeof m->i);
    ip_text(&m->ip, m->c, sizeof m->c);
    return 0;
}

/* §7.3: a name longer than 253 loses labels on the left; one trailing dot goes. */
static size_t domain_truncate(char *s, size_t n)
{
    if (n && s[n - 1] == '.')
        s[--n] = 0;
    size_t start = 0;
    while (n - start > DNS_NAME_MAX) {
        char *dot = memchr(s + start, '.', n - start);
        if (!dot) {
            start = n;
            break;
        }
        start = (size_t)(dot - s) + 1;
    }
    memmove(s, s + start, n - start + 1);
    return n - start;
}

int spf_macro_expand(const char *spec, size_t len, enum spf_macro_use use,
                     const struct spf_macro_vars *v, char *out, size_t outlen)
{
    struct mctx m;
    if (outlen == 0)
        return -2;
    if (mctx_init(&m, v) < 0)
        return -3;
    struct obuf o = { out, 0, outlen, false };
    int r = expand(spec, len, &m, use == SPF_MACRO_EXP, false, &o);
    if (r < 0)
        return r;
    out[o.n] = 0;
    if (use == SPF_MACRO_DOMAIN)
        return (int)domain_truncate(out, o.n);
    return (int)o.n;
}

/* --------------------------------------------------- records (§4.5, §4.6) */

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
    enum mech mech;
    char qual;              /* '+', '-', '~', '?' */
    const char *raw;        /* the term as written */
    size_t raw_len;
    const char *spec;       /* domain-spec, or NULL: the current domain */
    size_t spec_len;
    int cidr4, cidr6;       /* prefix lengths: 32 and 128 by default */
    unsigned char net[16];  /* ip4 / ip6 */
};

struct record {
    char *text;
    struct term *terms;
    size_t n_terms;
    const char *redirect, *exp;  /* domain-specs, or NULL */
    size_t redirect_len, exp_len;
};

static void record_free(struct record *r)
{
    free(r->text);
    free(r->terms);
    memset(r, 0, sizeof *r);
}

static bool is_spf1(const char *t, size_t n)
{
    return n >= 6 && strncasecmp(t, "v=spf1", 6) == 0 && (n == 6 || t[6] == ' ');
}

/* A macro-string followed by domain-end (§7.1). */
static bool domain_spec_ok(const char *s, size_t n)
{
    struct obuf none = { 0 };
    if (n == 0 || expand(s, n, NULL, false, false, &none) != 0)
        return false;
    /* domain-end = ( "." toplabel [ "." ] ) / macro-expand: does the string
     * (valid, so every '%' starts a whole macro-expand) end with a macro? */
    bool last_macro = false;
    size_t m = n;
    if (n >= 2 && s[n - 1] == '.')
        m = n - 1;  /* a macro then one dot: accepted, as in real records */
    for (size_t i = 0; i < m;) {
        if (s[i] == '%') {
            if (s[i + 1] == '{')
                i = (size_t)((const char *)memchr(s + i, '}', m - i) - s) + 1;
            else
                i += 2;
            last_macro = true;
        } else {
            i++;
            last_macro = false;
        }
    }
    if (last_macro)
        return true;  /* domain-end = macro-expand */
    size_t end = n;
    if (s[end - 1] == '.')
        end--;
    size_t dot = end;
    while (dot > 0 && s[dot - 1] != '.')
        dot--;
    if (dot == 0)
        return false;  /* no "." before the top label */
    const char *t = s + dot;
    size_t tn = end - dot;
    /* toplabel = ( *alphanum ALPHA *alphanum ) /
     *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
    if (tn == 0 || !is_alnum(t[0]) || !is_alnum(t[tn - 1]))
        return false;
    bool alpha = false, hyphen = false;
    for (size_t i = 0; i < tn; i++) {
        if (t[i] == '-')
            hyphen = true;
        else if (is_alpha(t[i]))
            alpha = true;
        else if (!is_digit(t[i]))
            return false;
    }
    return alpha || hyphen;
}

/* "/" 1..3 digits without a leading zero, at most max. */
static bool parse_cidr(const char *s, size_t n, int max, int *out)
{
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Trailing dual-cidr-length (§5.6): "/n", "//m", "/n//m". Shortens *n. */
static bool strip_dual_cidr(const char *s, size_t *n, int *c4, int *c6)
{
    size_t e = *n;
    /* "//m" */
    size_t k = e;
    while (k > 0 && is_digit(s[k - 1]))
        k--;
    if (k < e && k >= 2 && s[k - 1] == '/' && s[k - 2] == '/') {
        if (!parse_cidr(s + k, e - k, 128, c6))
            return false;
        e = k - 2;
        k = e;
        while (k > 0 && is_digit(s[k - 1]))
            k--;
    }
    if (k < e && k >= 1 && s[k - 1] == '/') {
        if (!parse_cidr(s + k, e - k, 32, c4))
            return false;
        e = k - 1;
    }
    *n = e;
    return true;
}

/* qnum "." qnum "." qnum "." qnum without leading zeros (Appendix A). */
static bool parse_ip4(const char *s, size_t n, unsigned char out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        size_t st = i;
        unsigned v = 0;
        while (i < n && is_digit(s[i]) && i - st < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        out[part] = (unsigned char)v;
    }
    return i == n;
}

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || !whylen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* One directive (§4.6.1, §5). */
static bool parse_directive(const char *p, size_t n, struct term *t)
{
    memset(t, 0, sizeof *t);
    t->raw = p;
    t->raw_len = n;
    t->qual = '+';
    t->cidr4 = 32;
    t->cidr6 = 128;
    if (n && strchr("+-~?", p[0])) {
        t->qual = p[0];
        p++;
        n--;
    }
    size_t k = 0;
    while (k < n && (is_alnum(p[k])))
        k++;
    const char *rest = p + k;
    size_t rn = n - k;
    static const struct {
        const char *name;
        enum mech m;
    } names[] = { { "all", M_ALL }, { "include", M_INCLUDE }, { "a", M_A },
                  { "mx", M_MX },   { "ptr", M_PTR },         { "ip4", M_IP4 },
                  { "ip6", M_IP6 }, { "exists", M_EXISTS } };
    size_t m;
    for (m = 0; m < sizeof names / sizeof names[0]; m++)
        if (span_eq(p, k, names[m].name))
            break;
    if (m == sizeof names / sizeof names[0])
        return false;
    t->mech = names[m].m;
    switch (t->mech) {
    case M_ALL:
        return rn == 0;
    case M_INCLUDE:
    case M_EXISTS:
        if (rn < 2 || rest[0] != ':')
            return false;
        t->spec = rest + 1;
        t->spec_len = rn - 1;
        return domain_spec_ok(t->spec, t->spec_len);
    case M_A:
    case M_MX:
        if (!strip_dual_cidr(rest, &rn, &t->cidr4, &t->cidr6))
            return false;
        /* fall through */
    case M_PTR:
        if (rn == 0)
            return true;
        if (rest[0] != ':' || rn < 2)
            return false;
        t->spec = rest + 1;
        t->spec_len = rn - 1;
        return domain_spec_ok(t->spec, t->spec_len);
    case M_IP4: {
        if (rn < 2 || rest[0] != ':')
            return false;
        const char *a = rest + 1;
        size_t an = rn - 1;
        const char *slash = memchr(a, '/', an);
        if (slash) {
            if (!parse_cidr(slash + 1, an - (size_t)(slash + 1 - a), 32, &t->cidr4))
                return false;
            an = (size_t)(slash - a);
        }
        return parse_ip4(a, an, t->net);
    }
    case M_IP6: {
        if (rn < 2 || rest[0] != ':')
            return false;
        const char *a = rest + 1;
        size_t an = rn - 1;
        const char *slash = memchr(a, '/', an);
        if (slash) {
            if (!parse_cidr(slash + 1, an - (size_t)(slash + 1 - a), 128, &t->cidr6))
                return false;
            an = (size_t)(slash - a);
        }
        char buf[INET6_ADDRSTRLEN + 1];
        if (an == 0 || an >= sizeof buf)
            return false;
        memcpy(buf, a, an);
        buf[an] = 0;
        return inet_pton(AF_INET6, buf, t->net) == 1;
    }
    }
    return false;
}

/*
 * Parses a record that is_spf1() accepted. Returns 0, -1 syntax error (why),
 * -2 out of memory. r may be NULL: check only.
 */
static int record_parse(const char *txt, size_t len, struct record *r, char *why, size_t whylen)
{
    struct record tmp = { 0 };
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        if (txt[i] == ' ')
            cap++;
    if (r) {
        tmp.text = malloc(len + 1);
        tmp.terms = calloc(cap, sizeof *tmp.terms);
        if (!tmp.text || !tmp.terms) {
            record_free(&tmp);
            return -2;
        }
        memcpy(tmp.text, txt, len);
        tmp.text[len] = 0;
        txt = tmp.text;
    }
    bool has_redirect = false, has_exp = false;
    size_t i = 6;
    while (i < len) {
        if (txt[i] == ' ') {
            i++;
            continue;
        }
        size_t st = i;
        while (i < len && txt[i] != ' ')
            i++;
        const char *p = txt + st;
        size_t n = i - st;
        /* modifier = name "=" ...; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
        size_t k = 0;
        if (is_alpha(p[0]))
            while (k < n && (is_alnum(p[k]) || p[k] == '-' || p[k] == '_' || p[k] == '.'))
                k++;
        if (k > 0 && k < n && p[k] == '=') {
            const char *v = p + k + 1;
            size_t vn = n - k - 1;
            bool redirect = span_eq(p, k, "redirect"), exp = span_eq(p, k, "exp");
            if (redirect || exp) {
                if ((redirect && has_redirect) || (exp && has_exp)) {
                    set_why(why, whylen, "%s= given twice (RFC 7208 6)", redirect ? "redirect" : "exp");
                    goto bad;
                }
                if (!domain_spec_ok(v, vn)) {
                    set_why(why, whylen, "bad domain-spec in '%.*s'", (int)(n > 64 ? 64 : n), p);
                    goto bad;
                }
                if (redirect) {
                    has_redirect = true;
                    tmp.redirect = v;
                    tmp.redirect_len = vn;
                } else {
                    has_exp = true;
                    tmp.exp = v;
                    tmp.exp_len = vn;
                }
            } else {
                /* unknown-modifier = name "=" macro-string: ignored (§6), but it
                 * must still be one */
                struct obuf none = { 0 };
                if (expand(v, vn, NULL, false, false, &none) != 0) {
                    set_why(why, whylen, "bad macro-string in '%.*s'", (int)(n > 64 ? 64 : n),
                            p);
                    goto bad;
                }
            }
            continue;
        }
        struct term t;
        if (!parse_directive(p, n, &t)) {
            set_why(why, whylen, "bad term '%.*s'", (int)(n > 64 ? 64 : n), p);
            goto bad;
        }
        if (r)
            tmp.terms[tmp.n_terms++] = t;
    }
    if (r)
        *r = tmp;
    return 0;
bad:
    record_free(&tmp);
    return -1;
}

int spf_record_check(const char *txt, size_t len, char *why, size_t whylen)
{
    set_why(why, whylen, "ok");
    if (!is_spf1(txt, len)) {
        set_why(why, whylen, "not an SPF record");
        return 1;
    }
    return record_parse(txt, len, NULL, why, whylen) == 0 ? 0 : -1;
}

/* ------------------------------------------------------ the evaluation */

enum purpose { W_RECORD, W_TERM, W_MX_HOST, W_PTR, W_PTR_ADDR, W_EXP };
enum tstep { T_BEGIN, T_TARGET, T_QUERY, T_MX, T_PTR, T_CHILD };
enum estep { E_NONE, E_TARGET, E_QUERY, E_TEXT };
enum ptr_state { PTR_UNASKED, PTR_DONE };

struct frame {
    char domain[DNS_NAME_MAX + 1];
    struct record rec;
    bool loaded;
    bool redirected;   /* a redirect= target: no record is permerror (§6.1) */
    size_t next;       /* the current term; n_terms: redirect= or the end */
};

struct spf {
    struct ipaddr ip;
    char ip_str[INET6_ADDRSTRLEN];
    char sender[MAX_VALUE + 1];          /* <sender>: local@domain */
    char mailfrom[SPF_MAX_SENDER + 1];   /* as given, "" for the null path */
    char helo[MAX_HELO + 1];
    bool helo_identity;
    char receiver[DNS_NAME_MAX + 1];
    int64_t now;
    char domain0[DNS_NAME_MAX + 1];      /* the checked <domain> */

    struct frame frames[SPF_MAX_DEPTH + 1];
    size_t depth;
    unsigned dns_terms, voids, queries;

    /* the top frame's current term */
    enum tstep tstep;
    char target[DNS_NAME_MAX + 1];
    char mx[SPF_MAX_MX_NAMES][DNS_NAME_MAX + 1];
    size_t n_mx, mx_next;

    /* the client's PTR names (§5.5), asked once, validated as needed */
    enum ptr_state ptr_state;
    char ptr[SPF_MAX_PTR_NAMES][DNS_NAME_MAX + 1];
    signed char ptr_ok[SPF_MAX_PTR_NAMES];  /* -1 not yet, 0 no, 1 validated */
    size_t n_ptr, ptr_asking;

    /* exp= (§6.2) */
    enum estep estep;
    char *exp_txt;
    char *explanation;

    bool waiting;
    enum purpose purpose;
    enum dns_type want_type;
    char want[DNS_NAME_MAX + 1];

    bool done;
    enum spf_result result;
    char detail[200];
};

const char *spf_result_name(enum spf_result r)
{
    switch (r) {
    case SPF_NONE: return "none";
    case SPF_NEUTRAL: return "neutral";
    case SPF_PASS: return "pass";
    case SPF_FAIL: return "fail";
    case SPF_SOFTFAIL: return "softfail";
    case SPF_TEMPERROR: return "temperror";
    case SPF_PERMERROR: return "permerror";
    }
    return "permerror";
}

static void finish(struct spf *s, enum spf_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The detail goes to logs and header comments: printable ASCII only. */
static void sanitize(char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static void finish(struct spf *s, enum spf_result r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
    sanitize(s->detail);
    s->result = r;
    s->done = true;
    s->waiting = false;
}

static void want(struct spf *s, const char *name, enum dns_type type, enum purpose p)
{
    if (++s->queries > MAX_QUERIES) {
        finish(s, SPF_PERMERROR, "processing limit: more than %d lookups", MAX_QUERIES);
        return;
    }
    copy(s->want, sizeof s->want, name);
    s->want_type = type;
    s->purpose = p;
    s->waiting = true;
}

static struct frame *top(struct spf *s)
{
    return &s->frames[s->depth - 1];
}

static enum dns_type addr_type(const struct spf *s)
{
    return s->ip.v6 ? DNS_AAAA : DNS_A;
}

/* A void lookup (§4.6.4). True when that was one too many (finished). */
static bool void_lookup(struct spf *s)
{
    if (++s->voids > SPF_MAX_VOID_LOOKUPS) {
        finish(s, SPF_PERMERROR, "more than %d void lookups (RFC 7208 4.6.4)",
               SPF_MAX_VOID_LOOKUPS);
        return true;
    }
    return false;
}

static void next_term(struct spf *s, struct frame *f)
{
    f->next++;
    s->tstep = T_BEGIN;
}

static enum spf_result qual_result(char q)
{
    switch (q) {
    case '-': return SPF_FAIL;
    case '~': return SPF_SOFTFAIL;
    case '?': return SPF_NEUTRAL;
    default: return SPF_PASS;
    }
}

static void frame_done(struct spf *s, enum spf_result r);

static void matched(struct spf *s, struct frame *f, const struct term *t)
{
    if (s->depth == 1) {
        snprintf(s->detail, sizeof s->detail, "%s: matched %.*s", f->domain,
                 (int)(t->raw_len > 80 ? 80 : t->raw_len), t->raw);
        sanitize(s->detail);
    }
    frame_done(s, qual_result(t->qual));
}

/*
 * The frame's check_host() ended with r (pass, fail, softfail, neutral:
 * errors finish the whole check at once, since include passes them up
 * unchanged, §5.2).
 */
static void frame_done(struct spf *s, enum spf_result r)
{
    struct frame *f = top(s);
    if (s->depth > 1) {
        record_free(&f->rec);
        s->depth--;
        struct frame *p = top(s);
        const struct term *t = &p->rec.terms[p->next];
        /* §5.2: pass matches; fail, softfail, neutral do not */
        if (r == SPF_PASS)
            matched(s, p, t);
        else
            next_term(s, p);
        return;
    }
    s->result = r;
    if (r == SPF_FAIL && f->rec.exp) {
        s->estep = E_TARGET;
        return;
    }
    s->done = true;
}

static bool push(struct spf *s, const char *domain)
{
    if (s->depth > SPF_MAX_DEPTH) {
        finish(s, SPF_PERMERROR, "include nesting deeper than %d", SPF_MAX_DEPTH);
        return false;
    }
    struct frame *f = &s->frames[s->depth++];
    memset(f, 0, sizeof *f);
    copy(f->domain, sizeof f->domain, domain);
    s->tstep = T_BEGIN;
    return true;
}

/*
 * The validated name for %{p} (§7.3 with §5.5): one at or below domain
 * first, else any, else "unknown". NULL when a lookup was asked.
 */
static const char *p_value(struct spf *s, const char *domain)
{
    if (s->ptr_state == PTR_UNASKED) {
        want(s, s->ip_str, DNS_PTR, W_PTR);
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < s->n_ptr; i++) {
            if (pass == 0 && !name_within(s->ptr[i], domain))
                continue;
            if (s->ptr_ok[i] < 0) {
                s->ptr_asking = i;
                want(s, s->ptr[i], addr_type(s), W_PTR_ADDR);
                return NULL;
            }
            if (s->ptr_ok[i] == 1)
                return s->ptr[i];
        }
    return "unknown";
}

/* The "ptr" mechanism (§5.5): 1 match, 0 none, -1 a lookup was asked. */
static int ptr_match(struct spf *s, const char *target)
{
    if (s->ptr_state == PTR_UNASKED) {
        want(s, s->ip_str, DNS_PTR, W_PTR);
        return -1;
    }
    for (size_t i = 0; i < s->n_ptr; i++) {
        if (!name_within(s->ptr[i], target))
            continue;
        if (s->ptr_ok[i] < 0) {
            s->ptr_asking = i;
            want(s, s->ptr[i], addr_type(s), W_PTR_ADDR);
            return -1;
        }
        if (s->ptr_ok[i] == 1)
            return 1;
    }
    return 0;
}

static void vars_of(const struct spf *s, const char *domain, const char *p,
                    struct spf_macro_vars *v)
{
    v->sender = s->sender;
    v->domain = domain;
    v->ip = s->ip_str;
    v->helo = s->helo;
    v->ptr = p;
    v->receiver = s->receiver;
    v->now = s->now;
}

/*
 * Expands spec in the frame f (exp: an explain-string) into out[cap]. %{p}
 * is looked up on demand. Returns the length, -1 waiting for a lookup, -2
 * too long, -3 syntax.
 */
static int expand_in(struct spf *s, const struct frame *f, const char *spec, size_t len,
                     bool exp, char *out, size_t cap)
{
    struct spf_macro_vars v;
    struct mctx m;
    vars_of(s, f->domain, NULL, &v);
    if (mctx_init(&m, &v) < 0)
        return -3;
    struct obuf o = { out, 0, cap, false };
    int r = expand(spec, len, &m, exp, true, &o);
    if (r == -3) {
        const char *p = p_value(s, f->domain);
        if (!p)
            return -1;
        v.ptr = p;
        o.n = 0;
        o.over = false;
        r = expand(spec, len, &m, exp, false, &o);
    }
    if (r == -2)
        return -2;
    if (r < 0)
        return -3;
    out[o.n] = 0;
    return (int)o.n;
}

/*
 * The target name of a term (§4.8): its domain-spec expanded and truncated,
 * or the current domain. 1 ready, 0 waiting for a lookup, -1 not a name we
 * can ask about, -2 expansion too long.
 */
static int target(struct spf *s, const struct frame *f, const char *spec, size_t len)
{
    if (!spec) {
        copy(s->target, sizeof s->target, f->domain);
        return 1;
    }
    char buf[SPF_MAX_EXPANSION + 1];
    int n = expand_in(s, f, spec, len, false, buf, sizeof buf);
    if (n == -1)
        return 0;
    if (n == -2)
        return -2;
    if (n < 0)
        return -1;
    size_t tn = domain_truncate(buf, (size_t)n);
    if (!query_name_ok(buf, tn))
        return -1;
    copy(s->target, sizeof s->target, buf);
    return 1;
}

/* No term matched: redirect= (§6.1), else neutral (§4.7). */
static void end_of_terms(struct spf *s, struct frame *f)
{
    if (!f->rec.redirect) {
        if (s->depth == 1)
            snprintf(s->detail, sizeof s->detail, "%s: no term matched", f->domain);
        frame_done(s, SPF_NEUTRAL);
        return;
    }
    if (s->tstep == T_BEGIN) {
        if (++s->dns_terms > SPF_MAX_DNS_TERMS) {
            finish(s, SPF_PERMERROR, "more than %d DNS-querying terms (RFC 7208 4.6.4)",
                   SPF_MAX_DNS_TERMS);
            return;
        }
        s->tstep = T_TARGET;
    }
    int r = target(s, f, f->rec.redirect, f->rec.redirect_len);
    if (r == 0)
        return;
    if (r < 0) {
        finish(s, SPF_PERMERROR, "%s: redirect= target is not a domain name", f->domain);
        return;
    }
    record_free(&f->rec);
    char t[DNS_NAME_MAX + 1];
    copy(t, sizeof t, s->target);
    memset(f, 0, sizeof *f);
    copy(f->domain, sizeof f->domain, t);
    f->redirected = true;
    s->tstep = T_BEGIN;
}

static void term_step(struct spf *s, struct frame *f)
{
    if (f->next >= f->rec.n_terms) {
        end_of_terms(s, f);
        return;
    }
    const struct term *t = &f->rec.terms[f->next];
    switch (s->tstep) {
    case T_BEGIN:
        switch (t->mech) {
        case M_ALL:
            matched(s, f, t);
            return;
        case M_IP4:
        case M_IP6:
            if (ip_in_net(&s->ip, t->mech == M_IP6, t->net,
                          t->mech == M_IP6 ? t->cidr6 : t->cidr4))
                matched(s, f, t);
            else
                next_term(s, f);
            return;
        default:
            break;
        }
        if (++s->dns_terms > SPF_MAX_DNS_TERMS) {
            finish(s, SPF_PERMERROR, "more than %d DNS-querying terms (RFC 7208 4.6.4)",
                   SPF_MAX_DNS_TERMS);
            return;
        }
        s->tstep = T_TARGET;
        /* fall through */
    case T_TARGET: {
        int r = target(s, f, t->spec, t->spec_len);
        if (r == 0)
            return;
        if (r == -2) {
            finish(s, SPF_PERMERROR, "%s: macro expansion too long in %.*s", f->domain,
                   (int)(t->raw_len > 80 ? 80 : t->raw_len), t->raw);
            return;
        }
        if (r < 0) {
            if (t->mech == M_INCLUDE) {
                finish(s, SPF_PERMERROR, "%s: include target is not a domain name",
                       f->domain);
                return;
            }
            /* a name that cannot exist: as if NXDOMAIN */
            if (!void_lookup(s))
                next_term(s, f);
            return;
        }
        switch (t->mech) {
        case M_INCLUDE:
            s->tstep = T_CHILD;
            push(s, s->target);
            return;
        case M_A:
            s->tstep = T_QUERY;
            want(s, s->target, addr_type(s), W_TERM);
            return;
        case M_MX:
            s->tstep = T_QUERY;
            want(s, s->target, DNS_MX, W_TERM);
            return;
        case M_EXISTS:
            s->tstep = T_QUERY;
            want(s, s->target, DNS_A, W_TERM);  /* A even for IPv6 (§5.7) */
            return;
        case M_PTR:
            s->tstep = T_PTR;
            return;
        default:
            return;
        }
    }
    case T_PTR: {
        int r = ptr_match(s, s->target);
        if (r < 0)
            return;
        if (r > 0)
            matched(s, f, t);
        else
            next_term(s, f);
        return;
    }
    case T_MX:
        if (s->mx_next < s->n_mx) {
            want(s, s->mx[s->mx_next], addr_type(s), W_MX_HOST);
            return;
        }
        next_term(s, f);
        return;
    case T_QUERY:
    case T_CHILD:
        break;
    }
    /* not reached: these steps wait for an answer or a child frame */
    finish(s, SPF_TEMPERROR, "internal: step %d without an answer", (int)s->tstep);
}

static void exp_step(struct spf *s)
{
    struct frame *f = &s->frames[0];
    if (s->estep == E_TARGET) {
        int r = target(s, f, f->rec.exp, f->rec.exp_len);
        if (r == 0)
            return;
        if (r < 0) {
            s->done = true;  /* §6.2: as if there were no exp= */
            return;
        }
        s->estep = E_QUERY;
        want(s, s->target, DNS_TXT, W_EXP);
        return;
    }
    if (s->estep == E_TEXT) {
        char buf[SPF_MAX_EXPANSION + 1];
        int n = expand_in(s, f, s->exp_txt, strlen(s->exp_txt), true, buf, sizeof buf);
        if (n == -1)
            return;
        if (n >= 0) {
            if (n > SPF_MAX_EXPLANATION)
                n = SPF_MAX_EXPLANATION;
            for (int i = 0; i < n; i++)
                if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
                    buf[i] = '?';
            buf[n] = 0;
            s->explanation = strdup(buf);
        }
        s->done = true;
        return;
    }
    s->done = true;
}

static void run(struct spf *s)
{
    while (!s->done && !s->waiting) {
        if (s->estep != E_NONE) {
            exp_step(s);
            continue;
        }
        struct frame *f = top(s);
        if (!f->loaded) {
            want(s, f->domain, DNS_TXT, W_RECORD);
            continue;
        }
        term_step(s, f);
    }
}

enum dns_class { DC_OK, DC_VOID, DC_ERROR };

static enum dns_class classify(const struct dns_result *r)
{
    switch (r->status) {
    case DNS_OK:
        return DC_OK;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_BADNAME:
        return DC_VOID;
    default:
        return DC_ERROR;
    }
}

static void on_record(struct spf *s, const struct dns_result *r)
{
    struct frame *f = top(s);
    enum dns_class c = classify(r);
    if (c == DC_ERROR) {
        finish(s, SPF_TEMPERROR, "%s: TXT lookup %s", f->domain, dns_status_name(r->status));
        return;
    }
    size_t found = 0, which = 0;
    if (c == DC_OK)
        for (size_t i = 0; i < r->n_txt; i++) {
            size_t n = r->txt_len ? r->txt_len[i] : strlen(r->txt[i]);
            if (is_spf1(r->txt[i], n)) {
                found++;
                which = i;
            }
        }
    if (found == 0) {
        if (s->depth > 1 || f->redirected)  /* §5.2, §6.1 */
            finish(s, SPF_PERMERROR, "%s has no SPF record (%s target)", f->domain,
                   f->redirected ? "redirect" : "include");
        else
            finish(s, SPF_NONE, "%s: no SPF record", f->domain);
        return;
    }
    if (found > 1) {
        finish(s, SPF_PERMERROR, "%s: more than one SPF record (RFC 7208 4.5)", f->domain);
        return;
    }
    size_t n = r->txt_len ? r->txt_len[which] : strlen(r->txt[which]);
    char why[120];
    int pr = record_parse(r->txt[which], n, &f->rec, why, sizeof why);
    if (pr == -2) {
        finish(s, SPF_TEMPERROR, "out of memory");
        return;
    }
    if (pr < 0) {
        finish(s, SPF_PERMERROR, "%s: %s", f->domain, why);
        return;
    }
    f->loaded = true;
    f->next = 0;
    s->tstep = T_BEGIN;
}

static void on_term(struct spf *s, const struct dns_result *r)
{
    struct frame *f = top(s);
    const struct term *t = &f->rec.terms[f->next];
    enum dns_class c = classify(r);
    if (c == DC_ERROR) {
        finish(s, SPF_TEMPERROR, "%s: %s lookup of %s %s", f->domain,
               dns_type_name(s->want_type), s->want, dns_status_name(r->status));
        return;
    }
    if (c == DC_VOID) {
        if (!void_lookup(s))
            next_term(s, f);
        return;
    }
    switch (t->mech) {
    case M_A:
        for (size_t i = 0; i < r->n_addrs; i++)
            if (addr_match(&s->ip, r->addrs[i], s->ip.v6 ? t->cidr6 : t->cidr4)) {
                matched(s, f, t);
                return;
            }
        next_term(s, f);
        return;
    case M_EXISTS:
        if (r->n_addrs > 0)
            matched(s, f, t);
        else
            next_term(s, f);
        return;
    case M_MX:
        if (r->n_mx > SPF_MAX_MX_NAMES) {
            finish(s, SPF_PERMERROR, "%s: %s has more than %d MX names (RFC 7208 4.6.4)",
                   f->domain, s->target, SPF_MAX_MX_NAMES);
            return;
        }
        s->n_mx = 0;
        s->mx_next = 0;
        for (size_t i = 0; i < r->n_mx; i++)
            if (r->mx[i].host[0] && query_name_ok(r->mx[i].host, strlen(r->mx[i].host)))
                copy(s->mx[s->n_mx++], sizeof s->mx[0], r->mx[i].host);
        s->tstep = T_MX;
        return;
    default:
        next_term(s, f);
        return;
    }
}

static void on_mx_host(struct spf *s, const struct dns_result *r)
{
    struct frame *f = top(s);
    const struct term *t = &f->rec.terms[f->next];
    enum dns_class c = classify(r);
    if (c == DC_ERROR) {
        finish(s, SPF_TEMPERROR, "%s: %s lookup of %s %s", f->domain,
               dns_type_name(s->want_type), s->want, dns_status_name(r->status));
        return;
    }
    if (c == DC_OK)
        for (size_t i = 0; i < r->n_addrs; i++)
            if (addr_match(&s->ip, r->addrs[i], s->ip.v6 ? t->cidr6 : t->cidr4)) {
                matched(s, f, t);
                return;
            }
    s->mx_next++;
}

/* §5.5: an error on the PTR lookup means no names (the mechanism does not match). */
static void on_ptr(struct spf *s, const struct dns_result *r)
{
    s->ptr_state = PTR_DONE;
    s->n_ptr = 0;
    if (r->status != DNS_OK)
        return;
    for (size_t i = 0; i < r->n_ptr && s->n_ptr < SPF_MAX_PTR_NAMES; i++) {
        const char *name = r->ptr[i];
        size_t n = strlen(name);
        if (n && name[n - 1] == '.')
            n--;
        if (!query_name_ok(name, n) || n > DNS_NAME_MAX)
            continue;
        snprintf(s->ptr[s->n_ptr], sizeof s->ptr[0], "%.*s", (int)n, name);
        s->ptr_ok[s->n_ptr++] = -1;
    }
}

/* §5.5: an error on a name's address lookup skips that name. */
static void on_ptr_addr(struct spf *s, const struct dns_result *r)
{
    size_t i = s->ptr_asking;
    s->ptr_ok[i] = 0;
    if (r->status != DNS_OK)
        return;
    int bits = s->ip.v6 ? 128 : 32;
    for (size_t k = 0; k < r->n_addrs; k++)
        if (addr_match(&s->ip, r->addrs[k], bits))
            s->ptr_ok[i] = 1;
}

/* §6.2: anything but exactly one record with a valid explain-string: no explanation. */
static void on_exp(struct spf *s, const struct dns_result *r)
{
    if (r->status != DNS_OK || r->n_txt != 1) {
        s->done = true;
        return;
    }
    size_t n = r->txt_len ? r->txt_len[0] : strlen(r->txt[0]);
    struct obuf none = { 0 };
    if (memchr(r->txt[0], 0, n) || expand(r->txt[0], n, NULL, true, false, &none) != 0) {
        s->done = true;
        return;
    }
    s->exp_txt = strndup(r->txt[0], n);
    if (!s->exp_txt) {
        s->done = true;
        return;
    }
    s->estep = E_TEXT;
}

/* ------------------------------------------------------------- the API */

int spf_begin(const char *ip, const char *sender, const char *helo, bool helo_identity,
              struct spf **out)
{
    *out = NULL;
    if (!ip || (sender && strlen(sender) > SPF_MAX_SENDER)) {
        errno = EINVAL;
        return -1;
    }
    struct spf *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return -1;
    }
    if (!ip_parse(ip, &s->ip)) {
        free(s);
        errno = EINVAL;
        return -1;
    }
    ip_text(&s->ip, s->ip_str, sizeof s->ip_str);
    if (!helo)
        helo = "";
    bool helo_long = strlen(helo) > MAX_HELO;
    copy(s->helo, sizeof s->helo, helo);
    s->helo_identity = helo_identity;
    copy(s->receiver, sizeof s->receiver, "unknown");

    const char *dom;
    if (helo_identity || !sender || !*sender) {
        /* §2.3, §2.4: postmaster@<HELO> */
        snprintf(s->sender, sizeof s->sender, "postmaster@%s", s->helo);
        dom = s->helo;
    } else {
        copy(s->mailfrom, sizeof s->mailfrom, sender);
        const char *at = strrchr(sender, '@');
        /* §4.3: no local part: "postmaster" */
        if (!at)
            snprintf(s->sender, sizeof s->sender, "postmaster@%s", sender);
        else if (at == sender)
            snprintf(s->sender, sizeof s->sender, "postmaster%s", sender);
        else
            copy(s->sender, sizeof s->sender, sender);
        dom = strrchr(s->sender, '@') + 1;
    }
    char ascii[DNS_NAME_MAX + 1];
    bool ok = !helo_long && smtp_domain_ascii(dom, ascii, sizeof ascii) >= 0 &&
              check_domain_ok(ascii);
    copy(s->domain0, sizeof s->domain0, ok ? ascii : dom);
    push(s, s->domain0);
    if (!ok) {
        /* §4.3: a malformed or single-label domain is "none" */
        finish(s, SPF_NONE, "'%.64s' is not a domain SPF can check", dom);
        *out = s;
        return 0;
    }
    run(s);
    *out = s;
    return 0;
}

void spf_set_receiver(struct spf *s, const char *hostname, int64_t now)
{
    copy(s->receiver, sizeof s->receiver, hostname && *hostname ? hostname : "unknown");
    s->now = now;
}

const char *spf_want(const struct spf *s, enum dns_type *type)
{
    if (s->done || !s->waiting)
        return NULL;
    if (type)
        *type = s->want_type;
    return s->want;
}

void spf_answer(struct spf *s, const struct dns_result *r)
{
    if (s->done || !s->waiting)
        return;
    s->waiting = false;
    switch (s->purpose) {
    case W_RECORD: on_record(s, r); break;
    case W_TERM: on_term(s, r); break;
    case W_MX_HOST: on_mx_host(s, r); break;
    case W_PTR: on_ptr(s, r); break;
    case W_PTR_ADDR: on_ptr_addr(s, r); break;
    case W_EXP: on_exp(s, r); break;
    }
    run(s);
}

enum spf_result spf_result(const struct spf *s, const char **explanation)
{
    if (explanation)
        *explanation = s->done && s->result == SPF_FAIL ? s->explanation : NULL;
    return s->done ? s->result : SPF_TEMPERROR;
}

const char *spf_detail(const struct spf *s)
{
    return s->done ? s->detail : "check not finished";
}

const char *spf_domain(const struct spf *s)
{
    return s->domain0;
}

const char *spf_identity(const struct spf *s, const char **value)
{
    if (s->helo_identity || !s->mailfrom[0]) {
        if (value)
            *value = s->helo;
        return "smtp.helo";
    }
    if (value)
        *value = s->mailfrom;
    return "smtp.mailfrom";
}

void spf_free(struct spf **sp)
{
    struct spf *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->depth; i++)
        record_free(&s->frames[i].rec);
    free(s->exp_txt);
    free(s->explanation);
    free(s);
    *sp = NULL;
}
