/*
 * DMARC (RFC 7489; np= of RFC 9091): the Public Suffix List and
 * organizational domains (§3.2), the RFC5322.From domain (§6.6.1), policy
 * records (§6.3, §6.4), discovery (§6.6.3), alignment (§3.1) and the policy
 * to apply (§6.6.4), as a state machine driven by DNS answers; and the
 * Authentication-Results value (RFC 8601) of SPF, DKIM and DMARC. Why not
 * libopendmarc: docs/spf-dmarc.md.
 *
 * No I/O but dmarc_psl_load(), no clock, no global state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

#define MAX_PSL_FILE (16 * 1024 * 1024)
#define MAX_LABELS 128
#define COMMENT_MAX 160   /* bytes of text in one Authentication-Results comment */

/* ------------------------------------------------------------ helpers */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void lower_str(char *s)
{
    for (; *s; s++)
        *s = lower(*s);
}

static bool span_eq(const char *a, size_t an, const char *lit)
{
    size_t n = strlen(lit);
    return an == n && strncasecmp(a, lit, n) == 0;
}

static char *copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    return dst;
}

/*
 * A domain as DMARC uses it: ASCII (A-labels), lowercase, no trailing dot,
 * 1..253 bytes, labels of 1..63 letters, digits, '-' or '_'. Returns the
 * length, or -1.
 */
static int norm_domain(const char *in, char *out, size_t cap)
{
    if (!in || cap < DNS_NAME_MAX + 1 || smtp_domain_ascii(in, out, cap) < 0)
        return -1;
    lower_str(out);
    size_t n = strlen(out), label = 0;
    if (n == 0 || n > DNS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = out[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
            return -1;
        if (++label > 63)
            return -1;
    }
    return label ? (int)n : -1;
}

/* ------------------------------------------------------ names of things */

const char *dmarc_result_name(enum dmarc_result r)
{
    switch (r) {
    case DMARC_NONE: return "none";
    case DMARC_PASS: return "pass";
    case DMARC_FAIL: return "fail";
    case DMARC_TEMPERROR: return "temperror";
    case DMARC_PERMERROR: return "permerror";
    }
    return "permerror";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    switch (p) {
    case DMARC_POLICY_NONE: return "none";
    case DMARC_POLICY_QUARANTINE: return "quarantine";
    case DMARC_POLICY_REJECT: return "reject";
    }
    return "none";
}

/* ---------------------------------------------- the Public Suffix List */

/*
 * Rules in one open-addressing hash set. A key is the rule in ASCII,
 * lowercase, with its "!" or "*." prefix: "co.uk", "*.ck", "!www.ck".
 */
struct dmarc_psl {
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *slot;  /* pool offset + 1; 0: empty */
    size_t cap, n;
};

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool psl_has(const struct dmarc_psl *p, const char *key, size_t n)
{
    if (!p->cap)
        return false;
    for (size_t i = fnv1a(key, n) & (p->cap - 1);; i = (i + 1) & (p->cap - 1)) {
        uint32_t o = p->slot[i];
        if (!o)
            return false;
        const char *k = p->pool + o - 1;
        if (strncmp(k, key, n) == 0 && k[n] == 0)
            return true;
    }
}

static int psl_grow(struct dmarc_psl *p)
{
    size_t cap = p->cap ? p->cap * 2 : 1024;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < p->cap; i++) {
        uint32_t o = p->slot[i];
        if (!o)
            continue;
        const char *k = p->pool + o - 1;
        size_t j = fnv1a(k, strlen(k)) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = o;
    }
    free(p->slot);
    p->slot = slot;
    p->cap = cap;
    return 0;
}

static int psl_add(struct dmarc_psl *p, const char *key, size_t n)
{
    if (psl_has(p, key, n))
        return 0;
    if ((p->n + 1) * 2 > p->cap && psl_grow(p) < 0)
        return -1;
    if (p->pool_len + n + 1 > p->pool_cap) {
        size_t cap = p->pool_cap ? p->pool_cap * 2 : 65536;
        while (cap < p->pool_len + n + 1)
            cap *= 2;
        if (cap > UINT32_MAX - 1)
            return -1;
        char *pool = realloc(p->pool, cap);
        if (!pool)
            return -1;
        p->pool = pool;
        p->pool_cap = cap;
    }
    memcpy(p->pool + p->pool_len, key, n);
    p->pool[p->pool_len + n] = 0;
    size_t i = fnv1a(key, n) & (p->cap - 1);
    while (p->slot[i])
        i = (i + 1) & (p->cap - 1);
    p->slot[i] = (uint32_t)(p->pool_len + 1);
    p->pool_len += n + 1;
    p->n++;
    return 0;
}

struct dmarc_psl *dmarc_psl_parse(const char *text, size_t len)
{
    struct dmarc_psl *p = calloc(1, sizeof *p);
    if (!p || psl_grow(p) < 0) {
        dmarc_psl_free(&p);
        return NULL;
    }
    size_t i = 0;
    while (i < len) {
        size_t eol = i;
        while (eol < len && text[eol] != '\n')
            eol++;
        /* "Each line is only read up to the first whitespace"; "//" comments */
        size_t s = i;
        while (s < eol && (text[s] == ' ' || text[s] == '\t'))
            s++;
        size_t e = s;
        while (e < eol && !is_wsp(text[e]))
            e++;
        i = eol + 1;
        if (e == s || (e - s >= 2 && text[s] == '/' && text[s + 1] == '/'))
            continue;
        char rule[DNS_NAME_MAX + 2], key[DNS_NAME_MAX + 3];
        bool exc = text[s] == '!';
        if (exc)
            s++;
        if (e - s == 0 || e - s > DNS_NAME_MAX)
            continue;
        memcpy(rule, text + s, e - s);
        rule[e - s] = 0;
        char ascii[DNS_NAME_MAX + 1];
        if (smtp_domain_ascii(rule, ascii, sizeof ascii) <= 0)
            continue;
        lower_str(ascii);
        snprintf(key, sizeof key, "%s%s", exc ? "!" : "", ascii);
        if (psl_add(p, key, strlen(key)) < 0) {
            dmarc_psl_free(&p);
            return NULL;
        }
    }
    return p;
}

int dmarc_psl_load(const char *path, struct dmarc_psl **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path)
        path = DMARC_PSL_PATH;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    size_t cap = 1 << 18, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_PSL_FILE) {
                snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_PSL_FILE);
                free(buf);
                fclose(f);
                errno = EFBIG;
                return -1;
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        errno = buf ? EIO : ENOMEM;
        return -1;
    }
    *out = dmarc_psl_parse(buf, n);
    free(buf);
    if (!*out) {
        snprintf(err, errlen, "%s: out of memory", path);
        errno = ENOMEM;
        return -1;
    }
    if ((*out)->n == 0) {
        snprintf(err, errlen, "%s: no rules", path);
        dmarc_psl_free(out);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

size_t dmarc_psl_rules(const struct dmarc_psl *psl)
{
    return psl ? psl->n : 0;
}

void dmarc_psl_free(struct dmarc_psl **pp)
{
    struct dmarc_psl *p = *pp;
    if (!p)
        return;
    free(p->pool);
    free(p->slot);
    free(p);
    *pp = NULL;
}

/*
 * §3.2 with the list's algorithm (publicsuffix.org/list/): the prevailing
 * rule is an exception rule if one matches (then its leftmost label goes),
 * else the matching rule with the most labels, else "*".
 */
int dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t outlen)
{
    char d[DNS_NAME_MAX + 1];
    if (!domain)
        return -1;
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        d[i] = lower(domain[i]);
    d[n] = 0;
    size_t start[MAX_LABELS], nl = 0;  /* start[k]: where the k-th label from the left begins */
    size_t ls = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        if (i == ls || nl == MAX_LABELS)
            return -1;  /* empty label */
        start[nl++] = ls;
        ls = i + 1;
    }
    size_t ps = 1;
    if (psl) {
        size_t exc = 0;
        char key[DNS_NAME_MAX + 3];
        for (size_t k = 1; k <= nl; k++) {
            const char *sk = d + start[nl - k];
            size_t skn = n - start[nl - k];
            if (psl_has(psl, sk, skn) && k > ps)
                ps = k;
            snprintf(key, sizeof key, "!%s", sk);
            if (psl_has(psl, key, skn + 1))
                exc = k;
            if (k >= 2) {
                const char *parent = d + start[nl - k + 1];
                snprintf(key, sizeof key, "*.%s", parent);
                if (psl_has(psl, key, strlen(key)) && k > ps)
                    ps = k;
            }
        }
        if (exc >= 2)
            ps = exc - 1;
    }
    const char *org = ps < nl ? d + start[nl - ps - 1] : d;
    size_t on = strlen(org);
    if (on + 1 > outlen)
        return -1;
    memcpy(out, org, on + 1);
    return (int)on;
}

/* ------------------------------------------------ the From domain (§6.6.1) */

enum ftok { F_END, F_ATOM, F_QSTR, F_DLIT, F_SPECIAL };

struct token {
    enum ftok type;
    const char *p;
    size_t n;
    char c;  /* F_SPECIAL */
};

/* CFWS (RFC 5322 §3.2.2): blanks, line ends, nested comments with quoted-pairs. */
static void skip_cfws(const char *s, size_t n, size_t *i)
{
    while (*i < n) {
        if (is_wsp(s[*i])) {
            (*i)++;
            continue;
        }
        if (s[*i] != '(')
            return;
        int depth = 0;
        while (*i < n) {
            char c = s[(*i)++];
            if (c == '\\' && *i < n)
                (*i)++;
            else if (c == '(')
                depth++;
            else if (c == ')' && --depth == 0)
                break;
        }
    }
}

static bool is_special(char c)
{
    return c == '<' || c == '>' || c == '@' || c == ',' || c == ':' || c == ';' || c == '.' ||
           c == ')' || c == ']';
}

static struct token next_tok(const char *s, size_t n, size_t *i)
{
    struct token t = { F_END, NULL, 0, 0 };
    skip_cfws(s, n, i);
    if (*i >= n)
        return t;
    size_t st = *i;
    char c = s[st];
    if (c == '"' || c == '[') {
        char close = c == '"' ? '"' : ']';
        (*i)++;
        while (*i < n && s[*i] != close) {
            if (s[*i] == '\\' && *i + 1 < n)
                (*i)++;
            (*i)++;
        }
        if (*i < n)
            (*i)++;
        t.type = c == '"' ? F_QSTR : F_DLIT;
    } else if (is_special(c)) {
        (*i)++;
        t.type = F_SPECIAL;
        t.c = c;
    } else {
        while (*i < n && !is_wsp(s[*i]) && !is_special(s[*i]) && s[*i] != '(' &&
               s[*i] != '"' && s[*i] != '[')
            (*i)++;
        t.type = F_ATOM;
    }
    t.p = s + st;
    t.n = *i - st;
    return t;
}

static bool tok_is(const struct token *t, char c)
{
    return t->type == F_SPECIAL && t->c == c;
}

/* The domain of one mailbox's tokens: 1 found, 0 not a mailbox with a DNS domain. */
static int mailbox_domain(const struct token *t, size_t nt, char *out, size_t cap)
{
    size_t a = 0, b = nt;
    for (size_t k = 0; k < nt; k++)
        if (tok_is(&t[k], '<')) {
            a = k + 1;
            b = a;
            while (b < nt && !tok_is(&t[b], '>'))
                b++;
            break;
        }
    /* obs-route "@a,@b:" inside the angle brackets */
    if (a < b && tok_is(&t[a], '@'))
        for (size_t k = a; k < b; k++)
            if (tok_is(&t[k], ':')) {
                a = k + 1;
                break;
            }
    size_t at = b;
    for (size_t k = a; k < b; k++)
        if (tok_is(&t[k], '@'))
            at = k;
    if (at == b || at == a)
        return 0;
    char dom[DNS_NAME_MAX + 2];
    size_t dn = 0;
    bool want_atom = true;
    for (size_t k = at + 1; k < b; k++) {
        if (want_atom ? t[k].type != F_ATOM : !tok_is(&t[k], '.'))
            return 0;  /* a domain-literal, a quoted string, a stray special */
        if (dn + t[k].n >= sizeof dom)
            return 0;
        memcpy(dom + dn, t[k].p, t[k].n);
        dn += t[k].n;
        want_atom = !want_atom;
    }
    if (dn == 0 || want_atom)
        return 0;  /* empty, or ends with '.' */
    dom[dn] = 0;
    return norm_domain(dom, out, cap) > 0;
}

enum dmarc_from dmarc_from_domain(const char *msg, size_t len, char *domain, size_t domainlen)
{
    const char *val = NULL;
    size_t val_len = 0, fields = 0;
    if (domainlen)
        domain[0] = 0;
    for (size_t i = 0; i < len;) {
        if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
            break;  /* the empty line: end of the header */
        size_t end = i;
        for (;;) {
            while (end < len && msg[end] != '\n')
                end++;
            if (end < len)
                end++;
            if (end < len && (msg[end] == ' ' || msg[end] == '\t'))
                continue;  /* folded */
            break;
        }
        size_t k = i;
        while (k < end && (unsigned char)msg[k] > 0x20 && (unsigned char)msg[k] < 0x7f &&
               msg[k] != ':')
            k++;
        size_t name_end = k;
        while (k < end && (msg[k] == ' ' || msg[k] == '\t'))
            k++;  /* obs-optional: WSP before the colon */
        if (k < end && msg[k] == ':' && span_eq(msg + i, name_end - i, "from")) {
            fields++;
            val = msg + k + 1;
            val_len = end - k - 1;
        }
        i = end;
    }
    if (fields == 0)
        return DMARC_FROM_MISSING;
    if (fields > 1)
        return DMARC_FROM_MULTIPLE;

    struct token *t = malloc(DMARC_MAX_FROM_TOKENS * sizeof *t);
    if (!t)
        return DMARC_FROM_INVALID;
    enum dmarc_from res = DMARC_FROM_INVALID;
    size_t nt = 0, i = 0, mailboxes = 0;
    int angle = 0;
    char first[DNS_NAME_MAX + 1] = "", cur[DNS_NAME_MAX + 1];
    for (;;) {
        struct token tk = next_tok(val, val_len, &i);
        bool end_el = tk.type == F_END || (angle == 0 && (tok_is(&tk, ',') || tok_is(&tk, ';')));
        if (angle == 0 && tok_is(&tk, ':')) {
            nt = 0;  /* group: display-name ":" mailboxes ";" (RFC 6854) */
            continue;
        }
        if (!end_el) {
            if (tok_is(&tk, '<'))
                angle++;
            else if (tok_is(&tk, '>') && angle > 0)
                angle--;
            if (nt == DMARC_MAX_FROM_TOKENS)
                goto out;
            t[nt++] = tk;
            continue;
        }
        if (nt > 0) {  /* an empty element (obs-mbox-list) is skipped */
            if (!mailbox_domain(t, nt, cur, sizeof cur))
                goto out;
            if (mailboxes++ == 0) {
                copy(first, sizeof first, cur);
            } else if (strcmp(first, cur) != 0) {
                res = DMARC_FROM_MULTIPLE_DOMAINS;
                goto out;
            }
        }
        nt = 0;
        angle = 0;
        if (tk.type == F_END)
            break;
    }
    if (mailboxes > 0) {
        if (strlen(first) + 1 > domainlen)
            goto out;
        copy(domain, domainlen, first);
        res = DMARC_FROM_OK;
    }
out:
    free(t);
    return res;
}

/* ------------------------------------------------- records (§6.3, §6.4) */

static bool parse_policy(const char *v, size_t n, enum dmarc_policy *p)
{
    if (span_eq(v, n, "none"))
        *p = DMARC_POLICY_NONE;
    else if (span_eq(v, n, "quarantine"))
        *p = DMARC_POLICY_QUARANTINE;
    else if (span_eq(v, n, "reject"))
        *p = DMARC_POLICY_REJECT;
    else
        return false;
    return true;
}

static bool parse_uint(const char *v, size_t n, size_t maxdigits, unsigned long *out)
{
    if (n == 0 || n > maxdigits)
        return false;
    unsigned long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(v[i]))
            return false;
        x = x * 10 + (unsigned long)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ], comma-separated. */
static unsigned count_uris(const char *v, size_t n)
{
    unsigned good = 0;
    size_t i = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && v[e] != ',')
            e++;
        size_t a = i, b = e;
        while (a < b && is_wsp(v[a]))
            a++;
        while (b > a && is_wsp(v[b - 1]))
            b--;
        /* size limit suffix */
        size_t bang = b;
        for (size_t k = a; k < b; k++)
            if (v[k] == '!')
                bang = k;
        bool ok = true;
        if (bang < b) {
            size_t k = bang + 1;
            size_t d0 = k;
            while (k < b && is_digit(v[k]))
                k++;
            if (k == d0)
                ok = false;
            if (k < b && strchr("kmgtKMGT", v[k]))
                k++;
            if (k != b)
                ok = false;
        }
        /* URI: scheme ":" something, no blanks (RFC 3986 §3.1) */
        size_t k = a;
        if (k < bang && is_alpha(v[k])) {
            while (k < bang && (is_alpha(v[k]) || is_digit(v[k]) || v[k] == '+' ||
                                v[k] == '-' || v[k] == '.'))
                k++;
        } else {
            ok = false;
        }
        if (k >= bang || v[k] != ':' || k + 1 >= bang)
            ok = false;
        for (size_t j = a; j < bang; j++)
            if ((unsigned char)v[j] <= 0x20 || (unsigned char)v[j] >= 0x7f)
                ok = false;
        if (ok)
            good++;
        i = e + 1;
    }
    return good;
}

enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len,
                                            struct dmarc_record *rec)
{
    struct dmarc_record r = { 0 };
    r.adkim = r.aspf = DMARC_ALIGN_RELAXED;
    r.pct = 100;
    r.ri = 86400;
    r.fo = DMARC_FO_0;
    bool first = true, got_p = false, bad_sp = false;
    unsigned seen = 0;
    enum { S_P = 1, S_SP = 2, S_NP = 4, S_ADKIM = 8, S_ASPF = 16, S_PCT = 32, S_RI = 64,
           S_FO = 128, S_RUA = 256, S_RUF = 512 };
    size_t i = 0;
    while (i <= len) {
        size_t e = i;
        while (e < len && txt[e] != ';')
            e++;
        size_t a = i, b = e;
        i = e + 1;
        while (a < b && is_wsp(txt[a]))
            a++;
        while (b > a && is_wsp(txt[b - 1]))
            b--;
        if (a == b) {
            if (first)
                return DMARC_RECORD_NOT_DMARC;
            continue;
        }
        const char *eq = memchr(txt + a, '=', b - a);
        if (!eq) {
            if (first)
                return DMARC_RECORD_NOT_DMARC;
            continue;  /* §6.3: syntax errors in the remainder are ignored */
        }
        size_t na = a, nb = (size_t)(eq - txt);
        while (nb > na && is_wsp(txt[nb - 1]))
            nb--;
        size_t va = (size_t)(eq - txt) + 1;
        while (va < b && is_wsp(txt[va]))
            va++;
        const char *name = txt + na, *v = txt + va;
        size_t nn = nb - na, vn = b - va;
        if (first) {
            /* §6.3: v=DMARC1 first, the value exactly */
            if (!span_eq(name, nn, "v") || vn != 6 || memcmp(v, "DMARC1", 6) != 0)
                return DMARC_RECORD_NOT_DMARC;
            first = false;
            continue;
        }
        unsigned long x;
        enum dmarc_policy pol;
#define ONCE(bit)          \
    if (seen & (bit))      \
        continue;          \
    seen |= (bit)
        if (span_eq(name, nn, "p")) {
            ONCE(S_P);
            if (parse_policy(v, vn, &pol)) {
                r.p = pol;
                got_p = true;
            }
        } else if (span_eq(name, nn, "sp")) {
            ONCE(S_SP);
            if (parse_policy(v, vn, &pol)) {
                r.sp = pol;
                r.has_sp = true;
            } else {
                bad_sp = true;
            }
        } else if (span_eq(name, nn, "np")) {
            ONCE(S_NP);
            if (parse_policy(v, vn, &pol)) {
                r.np = pol;
                r.has_np = true;
            }
        } else if (span_eq(name, nn, "adkim") || span_eq(name, nn, "aspf")) {
            bool dk = nn == 5;
            ONCE(dk ? S_ADKIM : S_ASPF);
            enum dmarc_align al;
            if (span_eq(v, vn, "r"))
                al = DMARC_ALIGN_RELAXED;
            else if (span_eq(v, vn, "s"))
                al = DMARC_ALIGN_STRICT;
            else
                continue;
            if (dk)
                r.adkim = al;
            else
                r.aspf = al;
        } else if (span_eq(name, nn, "pct")) {
            ONCE(S_PCT);
            if (parse_uint(v, vn, 3, &x) && x <= 100)
                r.pct = (unsigned)x;
        } else if (span_eq(name, nn, "ri")) {
            ONCE(S_RI);
            if (parse_uint(v, vn, 9, &x))
                r.ri = (unsigned)x;
        } else if (span_eq(name, nn, "fo")) {
            ONCE(S_FO);
            unsigned fo = 0;
            bool ok = vn > 0;
            for (size_t k = 0; k < vn && ok; k++) {
                char c = lower(v[k]);
                if (c == '0')
                    fo |= DMARC_FO_0;
                else if (c == '1')
                    fo |= DMARC_FO_1;
                else if (c == 'd')
                    fo |= DMARC_FO_D;
                else if (c == 's')
                    fo |= DMARC_FO_S;
                else
                    ok = false;
                if (ok && k + 1 < vn) {
                    size_t j = k + 1;
                    while (j < vn && is_wsp(v[j]))
                        j++;
                    if (j >= vn || v[j] != ':') {
                        ok = false;
                        break;
                    }
                    j++;
                    while (j < vn && is_wsp(v[j]))
                        j++;
                    k = j - 1;
                    if (j >= vn)
                        ok = false;
                }
            }
            if (ok)
                r.fo = fo;
        } else if (span_eq(name, nn, "rua")) {
            ONCE(S_RUA);
            r.rua = v;
            r.rua_len = vn;
            r.n_rua = count_uris(v, vn);
        } else if (span_eq(name, nn, "ruf")) {
            ONCE(S_RUF);
            r.ruf = v;
            r.ruf_len = vn;
            r.n_ruf = count_uris(v, vn);
        }
#undef ONCE
    }
    if (first)
        return DMARC_RECORD_NOT_DMARC;
    if (!got_p || bad_sp) {
        /* §6.6.3 step 6 */
        if (r.n_rua == 0)
            return DMARC_RECORD_INVALID;
        r.p = DMARC_POLICY_NONE;
        r.has_sp = r.has_np = false;
        r.p_assumed = true;
    }
    if (rec)
        *rec = r;
    return DMARC_RECORD_OK;
}

/* ------------------------------------------------------ the evaluation */

enum dstep { D_FROM, D_ORG, D_NP_A, D_NP_AAAA, D_NP_MX, D_DONE };

struct dmarc {
    char from[DNS_NAME_MAX + 1];
    char org[DNS_NAME_MAX + 1];
    enum spf_result spf;
    bool spf_align_r, spf_align_s;        /* the SPF domain is aligned, whatever the result */
    bool dkim_pass_r, dkim_pass_s;        /* an aligned passing signature */
    bool dkim_temp_r, dkim_temp_s;        /* an aligned signature with temperror */
    char dkim_dom_r[DNS_NAME_MAX + 1], dkim_dom_s[DNS_NAME_MAX + 1];
    uint32_t sample;

    enum dstep step;
    char want[DNS_NAME_MAX + 1];
    enum dns_type want_type;

    char *rec_text;
    struct dmarc_record rec;
    bool have_rec;
    char rec_domain[DNS_NAME_MAX + 1];
    bool nonexistent;

    struct dmarc_outcome out;
    char reason[200];
};

static void dfinish(struct dmarc *d, enum dmarc_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dfinish(struct dmarc *d, enum dmarc_result r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
    d->out.result = r;
    d->step = D_DONE;
}

/* Asks _dmarc.<domain> TXT; false when that name would be too long. */
static bool ask_record(struct dmarc *d, const char *domain)
{
    if (strlen(domain) + 7 > DNS_NAME_MAX)
        return false;
    snprintf(d->want, sizeof d->want, "_dmarc.%s", domain);
    d->want_type = DNS_TXT;
    return true;
}

static enum dmarc_policy weaker(enum dmarc_policy p)
{
    return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

/* A fail: which policy (§6.6.3, RFC 9091 §4.1), then pct (§6.6.4). */
static void decide(struct dmarc *d)
{
    const struct dmarc_record *r = &d->rec;
    bool sub = strcmp(d->rec_domain, d->from) != 0;
    d->out.requested = r->p;
    d->out.policy_tag = "p";
    if (sub && d->nonexistent && r->has_np) {
        d->out.requested = r->np;
        d->out.policy_tag = "np";
    } else if (sub && r->has_sp) {
        d->out.requested = r->sp;
        d->out.policy_tag = "sp";
    }
    bool selected = d->sample % 100 < r->pct;
    d->out.policy = selected ? d->out.requested : weaker(d->out.requested);
    d->out.sampled_out = d->out.policy != d->out.requested;
    dfinish(d, DMARC_FAIL, "no aligned SPF or DKIM pass; %s=%s%s%s", d->out.policy_tag,
            dmarc_policy_name(d->out.requested), d->out.sampled_out ? ", pct sampled out: " : "",
            d->out.sampled_out ? dmarc_policy_name(d->out.policy) : "");
}

/* The record is known: alignment (§3.1) and the result (§4.2). */
static void evaluate(struct dmarc *d)
{
    const struct dmarc_record *r = &d->rec;
    bool strict_spf = r->aspf == DMARC_ALIGN_STRICT, strict_dkim = r->adkim == DMARC_ALIGN_STRICT;
    bool spf_dom = strict_spf ? d->spf_align_s : d->spf_align_r;
    d->out.spf_aligned = d->spf == SPF_PASS && spf_dom;
    d->out.dkim_aligned = strict_dkim ? d->dkim_pass_s : d->dkim_pass_r;
    d->out.dkim_domain = d->out.dkim_aligned ? (strict_dkim ? d->dkim_dom_s : d->dkim_dom_r) : "";
    if (d->out.spf_aligned || d->out.dkim_aligned) {
        d->out.policy = DMARC_POLICY_NONE;
        dfinish(d, DMARC_PASS, "%s%s%s", d->out.spf_aligned ? "SPF aligned" : "",
                d->out.spf_aligned && d->out.dkim_aligned ? ", " : "",
                d->out.dkim_aligned ? "DKIM aligned" : "");
        return;
    }
    /* A transient error on an aligned identifier might have been a pass. */
    if ((d->spf == SPF_TEMPERROR && spf_dom) ||
        (strict_dkim ? d->dkim_temp_s : d->dkim_temp_r)) {
        dfinish(d, DMARC_TEMPERROR, "aligned %s had a temporary error",
                d->spf == SPF_TEMPERROR && spf_dom ? "SPF" : "DKIM");
        return;
    }
    bool sub = strcmp(d->rec_domain, d->from) != 0;
    if (sub && r->has_np) {
        /* RFC 9091 §2.7: does the author domain exist (A, AAAA, MX)? */
        d->step = D_NP_A;
        copy(d->want, sizeof d->want, d->from);
        d->want_type = DNS_A;
        return;
    }
    decide(d);
}

int dmarc_begin(const struct dmarc_input *in, struct dmarc **out)
{
    *out = NULL;
    if (!in || !in->from_domain) {
        errno = EINVAL;
        return -1;
    }
    struct dmarc *d = calloc(1, sizeof *d);
    if (!d) {
        errno = ENOMEM;
        return -1;
    }
    d->out.policy_tag = "";
    d->out.dkim_domain = "";
    d->out.from_domain = d->from;
    d->out.org_domain = d->org;
    d->out.record_domain = d->rec_domain;
    d->out.reason = d->reason;
    d->spf = in->spf;
    d->sample = in->sample;
    *out = d;
    if (norm_domain(in->from_domain, d->from, sizeof d->from) < 0) {
        copy(d->from, sizeof d->from, "");
        dfinish(d, DMARC_PERMERROR, "the From domain is not a DNS domain name");
        return 0;
    }
    if (dmarc_org_domain(in->psl, d->from, d->org, sizeof d->org) < 0)
        copy(d->org, sizeof d->org, d->from);

    char dom[DNS_NAME_MAX + 1], org[DNS_NAME_MAX + 1];
    if (in->spf_domain && norm_domain(in->spf_domain, dom, sizeof dom) > 0) {
        d->spf_align_s = strcmp(dom, d->from) == 0;
        d->spf_align_r = dmarc_org_domain(in->psl, dom, org, sizeof org) > 0 &&
                         strcmp(org, d->org) == 0;
    }
    for (size_t i = 0; i < in->n_dkim; i++) {
        const struct dmarc_dkim *k = &in->dkim[i];
        if (!k->domain || norm_domain(k->domain, dom, sizeof dom) < 0)
            continue;
        bool s = strcmp(dom, d->from) == 0;
        bool r = dmarc_org_domain(in->psl, dom, org, sizeof org) > 0 && strcmp(org, d->org) == 0;
        if (k->result == DKIM_PASS) {
            if (s && !d->dkim_pass_s)
                copy(d->dkim_dom_s, sizeof d->dkim_dom_s, dom);
            if (r && !d->dkim_pass_r)
                copy(d->dkim_dom_r, sizeof d->dkim_dom_r, dom);
            d->dkim_pass_s |= s;
            d->dkim_pass_r |= r;
        } else if (k->result == DKIM_TEMPERROR) {
            d->dkim_temp_s |= s;
            d->dkim_temp_r |= r;
        }
    }
    d->step = D_FROM;
    if (!ask_record(d, d->from)) {
        d->step = D_ORG;
        if (strcmp(d->org, d->from) == 0 || !ask_record(d, d->org))
            dfinish(d, DMARC_NONE, "no DMARC record");
    }
    return 0;
}

const char *dmarc_want(const struct dmarc *d, enum dns_type *type)
{
    if (d->step == D_DONE)
        return NULL;
    if (type)
        *type = d->want_type;
    return d->want;
}

static void on_records(struct dmarc *d, const struct dns_result *r)
{
    const char *where = d->step == D_FROM ? d->from : d->org;
    if (r->status == DNS_TEMPFAIL || r->status == DNS_TIMEOUT || r->status == DNS_CANCELLED) {
        dfinish(d, DMARC_TEMPERROR, "_dmarc.%s TXT lookup %s", where,
                dns_status_name(r->status));
        return;
    }
    size_t found = 0, which = 0;
    enum dmarc_record_status st = DMARC_RECORD_NOT_DMARC;
    if (r->status == DNS_OK)
        for (size_t i = 0; i < r->n_txt; i++) {
            size_t n = r->txt_len ? r->txt_len[i] : strlen(r->txt[i]);
            enum dmarc_record_status s = dmarc_record_parse(r->txt[i], n, NULL);
            if (s != DMARC_RECORD_NOT_DMARC) {
                found++;
                which = i;
                st = s;
            }
        }
    if (found > 1) {
        /* §6.6.3 step 5: no DMARC processing; reported as permerror */
        dfinish(d, DMARC_PERMERROR, "more than one DMARC record at _dmarc.%s", where);
        return;
    }
    if (found == 1 && st == DMARC_RECORD_INVALID) {
        dfinish(d, DMARC_PERMERROR, "the DMARC record at _dmarc.%s has no valid p=", where);
        return;
    }
    if (found == 1) {
        size_t n = r->txt_len ? r->txt_len[which] : strlen(r->txt[which]);
        d->rec_text = malloc(n + 1);
        if (!d->rec_text) {
            dfinish(d, DMARC_TEMPERROR, "out of memory");
            return;
        }
        memcpy(d->rec_text, r->txt[which], n);
        d->rec_text[n] = 0;
        dmarc_record_parse(d->rec_text, n, &d->rec);
        d->have_rec = true;
        d->out.record = &d->rec;
        copy(d->rec_domain, sizeof d->rec_domain, where);
        evaluate(d);
        return;
    }
    /* §6.6.3 step 3: then the organizational domain */
    if (d->step == D_FROM && strcmp(d->org, d->from) != 0 && ask_record(d, d->org)) {
        d->step = D_ORG;
        return;
    }
    dfinish(d, DMARC_NONE, "no DMARC record");
}

void dmarc_answer(struct dmarc *d, const struct dns_result *r)
{
    switch (d->step) {
    case D_FROM:
    case D_ORG:
        on_records(d, r);
        return;
    case D_NP_A:
    case D_NP_AAAA:
    case D_NP_MX:
        /* RFC 9091 §2.7: NXDOMAIN, or NODATA for all three: it does not exist.
         * Anything else (records, errors) counts as existing. */
        if (r->status == DNS_NXDOMAIN || (r->status == DNS_NODATA && d->step == D_NP_MX)) {
            d->nonexistent = true;
        } else if (r->status == DNS_NODATA) {
            d->step = d->step == D_NP_A ? D_NP_AAAA : D_NP_MX;
            d->want_type = d->step == D_NP_AAAA ? DNS_AAAA : DNS_MX;
            return;
        }
        decide(d);
        return;
    case D_DONE:
        return;
    }
}

enum dmarc_result dmarc_result(const struct dmarc *d, struct dmarc_outcome *out)
{
    if (d->step != D_DONE) {
        if (out) {
            *out = d->out;
            out->result = DMARC_TEMPERROR;
            out->policy = DMARC_POLICY_NONE;
            out->reason = "DMARC check not finished";
        }
        return DMARC_TEMPERROR;
    }
    if (out)
        *out = d->out;
    return d->out.result;
}

void dmarc_free(struct dmarc **dp)
{
    struct dmarc *d = *dp;
    if (!d)
        return;
    free(d->rec_text);
    free(d);
    *dp = NULL;
}

/* -------------------------------------- Authentication-Results (RFC 8601) */

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(struct sb *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 2045 token: printable ASCII but tspecials. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c))
            return false;
    }
    return true;
}

/* RFC 5322 atext */
static bool is_atext(unsigned char c)
{
    return (c < 0x80 && (is_alpha((char)c) || is_digit((char)c))) ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_dot_atom(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (!is_atext((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* pvalue (RFC 8601 §2.2): a token, local@domain, or a quoted-string. */
static void put_pvalue(struct sb *b, const char *v)
{
    const char *at = strrchr(v, '@');
    if (is_token(v) ||
        (at && at > v && is_dot_atom(v, (size_t)(at - v)) && is_dot_atom(at + 1, strlen(at + 1)))) {
        sb_str(b, v);
        return;
    }
    sb_put(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (is_ctl((unsigned char)*p))
            continue;
        if (*p == '"' || *p == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void put_comment(struct sb *b, const char *text)
{
    if (!text || !*text)
        return;
    sb_str(b, " (");
    size_t n = 0;
    for (const char *p = text; *p && n < COMMENT_MAX; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (is_ctl(c))
            continue;
        if (c >= 0x80) {
            sb_put(b, "?", 1);
            continue;
        }
        if (c == '(' || c == ')' || c == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_str(b, ")");
}

static void put_prop(struct sb *b, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    sb_str(b, " ");
    sb_str(b, name);
    sb_str(b, "=");
    put_pvalue(b, value);
}

static void start_method(struct sb *b, const char *method, const char *result)
{
    sb_str(b, ";\r\n\t");
    sb_str(b, method);
    sb_str(b, "=");
    sb_str(b, result);
}

char *authres_value(const struct authres_input *in)
{
    struct sb b = { 0 };
    put_pvalue(&b, in->authserv_id && *in->authserv_id ? in->authserv_id : "localhost");
    size_t methods = 0;
    if (in->spf) {
        const char *value;
        const char *prop = spf_identity(in->spf, &value);
        start_method(&b, "spf", spf_result_name(spf_result(in->spf, NULL)));
        put_comment(&b, spf_detail(in->spf));
        put_prop(&b, prop, value);
        methods++;
    }
    if (in->dkim_checked) {
        if (in->n_dkim == 0)
            start_method(&b, "dkim", "none");
        for (size_t i = 0; i < in->n_dkim; i++) {
            const struct dkim_sig_result *k = &in->dkim[i];
            start_method(&b, "dkim", dkim_result_name(k->result));
            put_comment(&b, k->reason);
            put_prop(&b, "header.d", k->domain);
            put_prop(&b, "header.s", k->selector);
            put_prop(&b, "header.b", k->b_prefix);
        }
        methods++;
    }
    if (in->dmarc) {
        struct dmarc_outcome o;
        enum dmarc_result r = dmarc_result(in->dmarc, &o);
        start_method(&b, "dmarc", dmarc_result_name(r));
        if (o.record) {
            char c[96];
            int n = snprintf(c, sizeof c, "p=%s", dmarc_policy_name(o.record->p));
            if (o.record->has_sp)
                n += snprintf(c + n, sizeof c - (size_t)n, " sp=%s",
                              dmarc_policy_name(o.record->sp));
            snprintf(c + n, sizeof c - (size_t)n, " dis=%s", dmarc_policy_name(o.policy));
            put_comment(&b, c);
        } else {
            put_comment(&b, o.reason);
        }
        put_prop(&b, "header.from", o.from_domain);
        methods++;
    }
    if (methods == 0)
        sb_str(&b, "; none");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
