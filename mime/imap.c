/*
 * imap.c — IMAP ENVELOPE and BODY / BODYSTRUCTURE from a parse (RFC 3501
 * §7.4.2, RFC 9051 §7.5.2), byte for byte what Dovecot 2.3 sends for the
 * same message (lib-imap imap-bodystructure.c, imap-envelope.c,
 * imap-quote.c; the tree is Dovecot's, see parse.c). docs/mime.md lists
 * where we differ (sizes of bare-LF messages, limits).
 *
 * Strings follow Dovecot's three rules:
 *  - nstring: quoted, backslash-escaping '"' and '\' up to four times; a
 *    literal when there are more, or CR/LF, or 8-bit bytes (with
 *    MIME_IMAP_UTF8: bytes that are not valid UTF-8);
 *  - nolf: CR/LF dropped first (a CR/LF before a non-blank becomes a space);
 *  - for humans (subject, display names): blanks (SP, TAB, CR, LF) folded
 *    to one space and trimmed; sent as a literal whenever that changed
 *    anything or the text holds '"', '\' or disallowed 8-bit bytes.
 *
 * Addresses are parsed as Dovecot's message-address.c does with its
 * "fill missing" flag: broken input still gives four-part addresses, with
 * MISSING_MAILBOX, MISSING_DOMAIN, SYNTAX_ERROR or INVALID_ROUTE filling
 * the holes, and RFC 5322 groups as (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "mime/mime-int.h"

/* More quoted-specials than this and a literal is shorter (Dovecot). */
#define QUOTED_MAX_ESCAPES 4

/* ------------------------------------------------------------ output */

struct out {
    struct buf *b;
    size_t limit;
    unsigned flags;
    bool err;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (!o->err && buf_append(o->b, s, n, o->limit) != 0)
        o->err = true;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putc_(struct out *o, char c)
{
    put(o, &c, 1);
}

static void put_uint(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: shortest form, no
 * surrogates, <= U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void put_literal(struct out *o, const char *s, size_t n)
{
    putc_(o, '{');
    put_uint(o, n);
    puts_(o, "}\r\n");
    put(o, s, n);
}

/* NIL, "quoted" or {n} literal. */
static void put_nstring(struct out *o, const char *s)
{
    if (!s) {
        puts_(o, "NIL");
        return;
    }
    size_t n = strlen(s);
    unsigned escapes = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            if (escapes++ < QUOTED_MAX_ESCAPES)
                continue;
        } else if (c == '\r' || c == '\n') {
            /* not allowed in a quoted string */
        } else if (c < 0x80) {
            continue;
        } else if (o->flags & MIME_IMAP_UTF8) {
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (k) {
                i += k - 1;
                continue;
            }
        }
        put_literal(o, s, n);
        return;
    }
    putc_(o, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            put(o, s + run, i - run);
            putc_(o, '\\');
            run = i;
        }
    }
    put(o, s + run, n - run);
    putc_(o, '"');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* As put_nstring, CR and LF dropped: one before a non-blank becomes a space. */
static void put_nstring_nolf(struct out *o, const char *s)
{
    if (!s || !strpbrk(s, "\r\n")) {
        put_nstring(o, s);
        return;
    }
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    if (!t) {
        o->err = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], next = s[i + 1];
        if (c != '\r' && c != '\n')
            t[k++] = c;
        else if (!is_blank(next) && next != '\r' && next != '\n' && next != '\0')
            t[k++] = ' ';
    }
    t[k] = '\0';
    put_nstring(o, t);
    free(t);
}

static bool is_lwsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Subject and display names: blanks folded and trimmed (see the top). */
static void put_for_humans(struct out *o, const char *s)
{
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    if (!t) {
        o->err = true;
        return;
    }
    bool modify = false, pending = false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_lwsp((char)c)) {
            pending = k > 0;
            continue;
        }
        if (pending)
            t[k++] = ' ';
        pending = false;
        if (c == '"' || c == '\\') {
            modify = true;
        } else if (c >= 0x80) {
            size_t len = (o->flags & MIME_IMAP_UTF8) ? utf8_len((const unsigned char *)s + i,
                                                                n - i) : 0;
            if (!len) {
                modify = true;
            } else {
                memcpy(t + k, s + i, len);
                k += len;
                i += len - 1;
                continue;
            }
        }
        t[k++] = (char)c;
    }
    t[k] = '\0';
    if (k != n || memcmp(s, t, n) != 0)
        modify = true;
    if (!modify) {
        putc_(o, '"');
        put(o, s, n);
        putc_(o, '"');
    } else if (k == 0) {
        puts_(o, "\"\"");
    } else {
        put_literal(o, t, k);
    }
    free(t);
}

/* ------------------------------------------- RFC 5322 lexer (Dovecot's) */

struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->n <= n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n <= n)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_addc(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

static void sb_reset(struct sbuf *b)
{
    b->n = 0;
    if (b->s)
        b->s[0] = '\0';
}

static char *sb_dup(struct sbuf *b)
{
    char *r = strndup(b->s ? b->s : "", b->n);
    if (!r)
        b->oom = true;
    return r;
}

struct lex {
    const unsigned char *p, *end;
    struct sbuf comment;     /* the last comment skipped */
};

/* RFC 5322 atext; 8-bit bytes count as atext, as in Dovecot. */
static bool is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if (c <= 32 || c == 127)
        return false;
    return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static bool at_end(const struct lex *l)
{
    return l->p >= l->end;
}

/* Byte at p, or NUL at the end (values hold no NUL: the parser maps them). */
static unsigned char cur(const struct lex *l)
{
    return at_end(l) ? 0 : *l->p;
}

/* At '('. Returns 1, 0 at the end of input, -1 when unterminated. */
static int skip_comment(struct lex *l)
{
    int level = 1;
    sb_reset(&l->comment);
    const unsigned char *start = ++l->p;
    for (; l->p < l->end; l->p++) {
        unsigned char c = *l->p;
        if (c == '(') {
            level++;
        } else if (c == ')') {
            if (--level == 0) {
                sb_add(&l->comment, start, (size_t)(l->p - start));
                l->p++;
                return at_end(l) ? 0 : 1;
            }
        } else if (c == '\n') {
            size_t len = (size_t)(l->p - start);
            if (len > 0 && start[len - 1] == '\r')
                len--;
            sb_add(&l->comment, start, len);
            start = l->p + 1;
        } else if (c == '\\') {
            l->p++;
            if (l->p >= l->end)
                return -1;
            if (*l->p == '\r' || *l->p == '\n') {
                l->p--;   /* obs-qp: kept as it is */
                continue;
            }
            sb_add(&l->comment, start, (size_t)(l->p - start - 1));
            start = l->p;
        }
    }
    return -1;
}

/* CFWS. Returns 1 when input is left, 0 at the end, -1 on a bad comment. */
static int skip_lwsp(struct lex *l)
{
    while (l->p < l->end) {
        if (is_lwsp((char)*l->p)) {
            l->p++;
            continue;
        }
        if (*l->p != '(')
            break;
        if (skip_comment(l) < 0)
            return -1;
    }
    return at_end(l) ? 0 : 1;
}

static int parse_atom(struct lex *l, struct sbuf *s)
{
    if (at_end(l) || !is_atext(*l->p))
        return -1;
    const unsigned char *start = l->p++;
    while (l->p < l->end && is_atext(*l->p))
        l->p++;
    sb_add(s, start, (size_t)(l->p - start));
    return at_end(l) ? 0 : skip_lwsp(l);
}

/* dot-atom, blanks allowed around the dots (RFC 822). */
static int parse_dot_atom(struct lex *l, struct sbuf *s)
{
    if (at_end(l) || !is_atext(*l->p))
        return -1;
    const unsigned char *start = l->p++;
    for (;;) {
        while (l->p < l->end && is_atext(*l->p))
            l->p++;
        if (l->p == start)
            return -1;
        sb_add(s, start, (size_t)(l->p - start));
        if (at_end(l))
            return 0;
        int ret = skip_lwsp(l);
        if (ret <= 0)
            return ret;
        if (*l->p != '.')
            return 1;
        l->p++;
        sb_addc(s, '.');
        if (skip_lwsp(l) <= 0)
            return -1;
        start = l->p;
    }
}

/* At '"': the content unescaped. -1 when unterminated. */
static int parse_quoted(struct lex *l, struct sbuf *s)
{
    const unsigned char *start = ++l->p;
    for (; l->p < l->end; l->p++) {
        unsigned char c = *l->p;
        if (c == '"') {
            sb_add(s, start, (size_t)(l->p - start));
            l->p++;
            return skip_lwsp(l);
        } else if (c == '\n') {
            size_t len = (size_t)(l->p - start);
            if (len > 0 && start[len - 1] == '\r')
                len--;
            sb_add(s, start, len);
            start = l->p + 1;
        } else if (c == '\\') {
            l->p++;
            if (l->p >= l->end)
                return -1;
            if (*l->p == '\r' || *l->p == '\n') {
                l->p--;
                continue;
            }
            sb_add(s, start, (size_t)(l->p - start - 1));
            start = l->p;
        }
    }
    return -1;
}

static int parse_atom_or_dot(struct lex *l, struct sbuf *s)
{
    const unsigned char *start = l->p;
    while (l->p < l->end && (is_atext(*l->p) || *l->p == '.'))
        l->p++;
    sb_add(s, start, (size_t)(l->p - start));
    return at_end(l) ? 0 : skip_lwsp(l);
}

/* phrase = 1*word / obs-phrase; words joined by one space. */
static int parse_phrase(struct lex *l, struct sbuf *s)
{
    if (at_end(l))
        return 0;
    if (*l->p == '.')
        return -1;
    for (;;) {
        int ret = cur(l) == '"' ? parse_quoted(l, s) : parse_atom_or_dot(l, s);
        if (ret <= 0)
            return ret;
        unsigned char c = cur(l);
        if (!is_atext(c) && c != '"' && c != '.')
            break;
        sb_addc(s, ' ');
    }
    return skip_lwsp(l);
}

/* At '[': the literal with its brackets and backslashes. */
static int parse_domain_literal(struct lex *l, struct sbuf *s)
{
    const unsigned char *start = l->p++;
    for (; l->p < l->end; l->p++) {
        unsigned char c = *l->p;
        if (c == '[') {
            return -1;
        } else if (c == ']') {
            l->p++;
            sb_add(s, start, (size_t)(l->p - start));
            return skip_lwsp(l);
        } else if (c == '\n') {
            size_t len = (size_t)(l->p - start);
            if (len > 0 && start[len - 1] == '\r')
                len--;
            sb_add(s, start, len);
            start = l->p + 1;
        } else if (c == '\\') {
            l->p++;
            if (l->p >= l->end)
                return -1;
            if (*l->p == '\r' || *l->p == '\n') {
                sb_add(s, start, (size_t)(l->p - start));
                start = l->p;
                l->p--;
            }
        }
    }
    return -1;
}

/* At '@'. */
static int parse_domain(struct lex *l, struct sbuf *s)
{
    l->p++;
    if (skip_lwsp(l) <= 0)
        return -1;
    return *l->p == '[' ? parse_domain_literal(l, s) : parse_dot_atom(l, s);
}

/* ------------------------------------------------ addresses (RFC 5322 §3.4) */

struct addr {
    char *name, *route, *mailbox, *domain;
    const char *fill_mailbox, *fill_domain, *fill_route;   /* constants */
    bool invalid;
};

struct aparse {
    struct lex l;
    struct sbuf str;
    struct addr a;
    struct out *o;
    unsigned count;
};

static const char *addr_get(char *own, const char *fill)
{
    return own ? own : fill;
}

static void addr_clear(struct addr *a)
{
    free(a->name);
    free(a->route);
    free(a->mailbox);
    free(a->domain);
    memset(a, 0, sizeof *a);
}

static void set_str(char **dst, struct aparse *ap)
{
    free(*dst);
    *dst = sb_dup(&ap->str);
}

/* Writes the current address and starts a new one. */
static void emit(struct aparse *ap)
{
    struct out *o = ap->o;
    struct addr *a = &ap->a;
    if (ap->count++ == 0)
        putc_(o, '(');   /* address lists have no blanks between items */
    putc_(o, '(');
    if (a->name)
        put_for_humans(o, a->name);
    else
        puts_(o, "NIL");
    putc_(o, ' ');
    put_nstring(o, addr_get(a->route, a->fill_route));
    putc_(o, ' ');
    put_nstring(o, addr_get(a->mailbox, a->fill_mailbox));
    putc_(o, ' ');
    put_nstring(o, addr_get(a->domain, a->fill_domain));
    putc_(o, ')');
    addr_clear(a);
}

static void emit_fixed(struct aparse *ap)
{
    struct addr *a = &ap->a;
    if (!a->mailbox && !a->fill_mailbox)
        a->fill_mailbox = "MISSING_MAILBOX";
    const char *d = addr_get(a->domain, a->fill_domain);
    if (!d || !*d) {
        free(a->domain);
        a->domain = NULL;
        a->fill_domain = "MISSING_DOMAIN";
    }
    emit(ap);
}

/* Dovecot's non-strict dots: "a..b." is still a local part. */
static int parse_loose_dot_atom(struct lex *l, struct sbuf *s)
{
    int ret = -1;
    do {
        while (*l->p == '.') {
            sb_addc(s, '.');
            l->p++;
            if (at_end(l))
                return 0;
            ret = 1;
        }
        if (*l->p == '@')
            break;
        ret = parse_atom(l, s);
    } while (ret > 0 && *l->p == '.');
    return ret;
}

/* At input left. */
static int parse_local_part(struct aparse *ap)
{
    struct lex *l = &ap->l;
    sb_reset(&ap->str);
    int ret = *l->p == '"' ? parse_quoted(l, &ap->str) : parse_loose_dot_atom(l, &ap->str);
    if (ret < 0)
        return -1;
    set_str(&ap->a.mailbox, ap);
    return ret;
}

static int parse_addr_domain(struct aparse *ap)
{
    sb_reset(&ap->str);
    int ret = parse_domain(&ap->l, &ap->str);
    if (ret < 0)
        return -1;
    set_str(&ap->a.domain, ap);
    ap->a.fill_domain = NULL;
    return ret;
}

/* obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain) */
static int parse_route(struct aparse *ap)
{
    struct lex *l = &ap->l;
    sb_reset(&ap->str);
    for (;;) {
        if (at_end(l))
            return 0;
        if (*l->p != '@')
            break;
        if (ap->str.n > 0)
            sb_addc(&ap->str, ',');
        sb_addc(&ap->str, '@');
        int ret = parse_domain(l, &ap->str);
        if (ret <= 0)
            return ret;
        while (skip_lwsp(l) > 0 && *l->p == ',')
            l->p++;
    }
    set_str(&ap->a.route, ap);
    return 1;
}

/* "<" [route ":"] [local-part ["@" domain]] ">" */
static int parse_angle_addr(struct aparse *ap)
{
    struct lex *l = &ap->l;
    l->p++;
    if (skip_lwsp(l) <= 0)
        return -1;
    if (*l->p == '@') {
        if (parse_route(ap) > 0 && *l->p == ':') {
            l->p++;
        } else {
            free(ap->a.route);
            ap->a.route = NULL;
            ap->a.fill_route = "INVALID_ROUTE";
            if (at_end(l))
                return -1;
        }
        if (skip_lwsp(l) <= 0)
            return -1;
    }
    if (*l->p != '>') {
        if (parse_local_part(ap) <= 0)
            return -1;
        if (*l->p == '@' && parse_addr_domain(ap) <= 0)
            return -1;
    }
    if (*l->p != '>')
        return -1;
    l->p++;
    return skip_lwsp(l);
}

static int parse_name_addr(struct aparse *ap)
{
    struct lex *l = &ap->l;
    sb_reset(&ap->str);
    if (parse_phrase(l, &ap->str) <= 0 || *l->p != '<')
        return -1;
    if (ap->str.n > 0)
        set_str(&ap->a.name, ap);
    if (parse_angle_addr(ap) < 0) {
        free(ap->a.domain);
        ap->a.domain = NULL;
        ap->a.fill_domain = "SYNTAX_ERROR";
        ap->a.invalid = true;
    }
    return at_end(l) ? 0 : 1;
}

static int parse_addr_spec(struct aparse *ap)
{
    struct lex *l = &ap->l;
    int ret2 = -2;
    sb_reset(&l->comment);
    bool quoted = *l->p == '"';
    int ret = parse_local_part(ap);
    if (ret <= 0)
        ap->a.invalid = true;
    if (ret != 0 && !at_end(l) && *l->p == '@') {
        ret2 = parse_addr_domain(ap);
        if (ret2 <= 0)
            ret = ret2;
    }
    if (l->comment.n > 0) {
        free(ap->a.name);
        ap->a.name = sb_dup(&l->comment);
    } else if (ret2 == -2) {
        /* "user" alone is a mailbox; "user more words" a display name. */
        sb_addc(&ap->str, ' ');
        size_t before = ap->str.n;
        (void)parse_phrase(l, &ap->str);
        if (ap->str.n != before) {
            free(ap->a.mailbox);
            ap->a.mailbox = NULL;
            set_str(&ap->a.name, ap);
        } else if (!quoted) {
            ap->a.fill_domain = "";
        }
        ap->a.invalid = true;
        ret = -1;
    }
    return ret;
}

static int parse_mailbox(struct aparse *ap)
{
    struct lex *l = &ap->l;
    const unsigned char *start = l->p;
    int ret = parse_name_addr(ap);
    if (ret < 0) {
        l->p = start;
        addr_clear(&ap->a);
        ret = parse_addr_spec(ap);
        struct addr *a = &ap->a;
        if (a->invalid && !a->name && a->mailbox && !a->domain && !a->fill_domain) {
            a->name = a->mailbox;
            a->mailbox = NULL;
        }
    }
    emit_fixed(ap);
    return ret;
}

/* group = display-name ":" [mailbox-list / CFWS] ";" [CFWS] */
static int parse_group(struct aparse *ap)
{
    struct lex *l = &ap->l;
    sb_reset(&ap->str);
    if (parse_phrase(l, &ap->str) <= 0 || *l->p != ':')
        return -1;
    l->p++;
    int ret = skip_lwsp(l);
    set_str(&ap->a.mailbox, ap);
    emit(ap);
    if (ret > 0 && *l->p != ';') {
        for (;;) {
            (void)parse_mailbox(ap);
            if (at_end(l) || *l->p != ',')
                break;
            l->p++;
            if (skip_lwsp(l) <= 0) {
                ret = -1;
                break;
            }
        }
    }
    if (ret >= 0) {
        if (at_end(l) || *l->p != ';') {
            ret = -1;
        } else {
            l->p++;
            ret = skip_lwsp(l);
        }
    }
    emit(ap);   /* end of group: (NIL NIL NIL NIL) */
    return ret == 0 ? 0 : 1;
}

static int parse_address(struct aparse *ap)
{
    const unsigned char *start = ap->l.p;
    int ret = parse_group(ap);
    if (ret < 0) {
        ap->l.p = start;
        addr_clear(&ap->a);
        ret = parse_mailbox(ap);
    }
    return ret;
}

/* "((name adl mailbox host)...)" or NIL. Returns the number of addresses.
 * value holds every occurrence of the field, "\n" between them: each is
 * parsed on its own and the lists joined (Dovecot merges repeated address
 * fields so). */
static unsigned put_addresses(struct out *o, const char *value)
{
    if (!value) {
        puts_(o, "NIL");
        return 0;
    }
    struct aparse ap = { .o = o };
    for (const char *v = value; v; ) {
        const char *nl = strchr(v, '\n');
        ap.l.p = (const unsigned char *)v;
        ap.l.end = nl ? (const unsigned char *)nl : ap.l.p + strlen(v);
        v = nl ? nl + 1 : NULL;
        if (skip_lwsp(&ap.l) <= 0)
            continue;
        for (;;) {
            if (parse_address(&ap) == 0)
                break;
            if (at_end(&ap.l) || *ap.l.p != ',')
                break;
            ap.l.p++;
            int ret = skip_lwsp(&ap.l);
            if (ret <= 0) {
                if (ret < 0)
                    emit_fixed(&ap);
                break;
            }
        }
        addr_clear(&ap.a);
    }
    if (ap.str.oom || ap.l.comment.oom)
        o->err = true;
    addr_clear(&ap.a);
    free(ap.str.s);
    free(ap.l.comment.s);
    if (ap.count == 0)
        puts_(o, "NIL");
    else
        putc_(o, ')');
    return ap.count;
}

/* -------------------------------------------------------------- ENVELOPE */

/* RFC 3501 §7.4.2: sender and reply-to default to from (Dovecot: when
 * they give no address, not only when absent). */
static void put_addresses_or(struct out *o, const char *value, const char *fallback)
{
    size_t mark = o->b->len;
    if (value && put_addresses(o, value) > 0)
        return;
    if (!o->err)
        o->b->len = mark;
    put_addresses(o, fallback);
}

static void put_envelope(struct out *o, const struct mime_part *m)
{
    putc_(o, '(');
    put_nstring_nolf(o, m->date);
    putc_(o, ' ');
    if (m->subject)
        put_for_humans(o, m->subject);
    else
        puts_(o, "NIL");
    putc_(o, ' ');
    put_addresses(o, m->from);
    putc_(o, ' ');
    put_addresses_or(o, m->sender, m->from);
    putc_(o, ' ');
    put_addresses_or(o, m->reply_to, m->from);
    putc_(o, ' ');
    put_addresses(o, m->to);
    putc_(o, ' ');
    put_addresses(o, m->cc);
    putc_(o, ' ');
    put_addresses(o, m->bcc);
    putc_(o, ' ');
    put_nstring_nolf(o, m->in_reply_to);
    putc_(o, ' ');
    put_nstring_nolf(o, m->message_id);
    putc_(o, ')');
}

int mime_imap_envelope(struct buf *out, size_t limit, const struct mime_part *msg,
                       unsigned flags)
{
    struct out o = { out, limit, flags, false };
    put_envelope(&o, msg);
    return o.err ? -1 : 0;
}

/* --------------------------------------------------------- BODYSTRUCTURE */

/* A part that is never split even though its type asks for it (Dovecot
 * writes these as application/octet-stream). */
#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

static void put_params(struct out *o, const struct mime_param *p, unsigned n,
                       bool default_charset)
{
    if (n == 0 && !default_charset) {
        puts_(o, "NIL");
        return;
    }
    bool seen = false;
    putc_(o, '(');
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            putc_(o, ' ');
        if (strcasecmp(p[i].name, "charset") == 0)
            seen = true;
        put_nstring(o, p[i].name);
        putc_(o, ' ');
        put_nstring(o, p[i].value);
    }
    if (default_charset && !seen)
        puts_(o, n ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
    putc_(o, ')');
}

/* Content-Language: 1#Language-tag, atoms separated by commas (RFC 3282). */
static void put_languages(struct out *o, const char *value)
{
    if (!value) {
        puts_(o, "NIL");
        return;
    }
    struct lex l = { (const unsigned char *)value, (const unsigned char *)value + strlen(value),
                     { 0 } };
    struct sbuf s = { 0 };
    unsigned n = 0;
    size_t mark = o->b->len;
    (void)skip_lwsp(&l);
    while (parse_atom(&l, &s) >= 0) {
        putc_(o, n++ ? ' ' : '(');
        put_nstring(o, s.s);
        sb_reset(&s);
        if (at_end(&l) || *l.p != ',')
            break;
        l.p++;
        (void)skip_lwsp(&l);
    }
    if (s.oom || l.comment.oom)
        o->err = true;
    free(s.s);
    free(l.comment.s);
    if (n) {
        putc_(o, ')');
    } else {
        if (!o->err)
            o->b->len = mark;
        puts_(o, "NIL");
    }
}

/* body-ext-1part / body-ext-mpart after md5 or params: dsp lang loc. */
static void put_ext_common(struct out *o, const struct mime_part *p)
{
    putc_(o, ' ');
    if (!p->disposition) {
        puts_(o, "NIL");
    } else {
        putc_(o, '(');
        put_nstring(o, p->disposition);
        putc_(o, ' ');
        put_params(o, p->disp_params, p->n_disp_params, false);
        putc_(o, ')');
    }
    putc_(o, ' ');
    put_languages(o, p->language);
    putc_(o, ' ');
    put_nstring_nolf(o, p->location);
}

static bool is_type(const struct mime_part *p, const char *type)
{
    return strcasecmp(p->type, type) == 0;
}

static void put_body(struct out *o, const struct mime_part *p, bool ext);

static void put_multipart(struct out *o, const struct mime_part *p, bool ext)
{
    if (p->n_children == 0) {
        /* RFC 2046 wants at least one part; show one empty text part. */
        puts_(o, EMPTY_BODY);
        puts_(o, ext ? " NIL NIL NIL NIL)" : ")");
    }
    for (unsigned i = 0; i < p->n_children && !o->err; i++) {
        putc_(o, '(');
        put_body(o, &p->children[i], ext);
        putc_(o, ')');
    }
    putc_(o, ' ');
    put_nstring(o, p->subtype);
    if (!ext)
        return;
    putc_(o, ' ');
    put_params(o, p->params, p->n_params, false);
    put_ext_common(o, p);
}

static void put_single(struct out *o, const struct mime_part *p, bool ext)
{
    bool text = false;
    if (p->message) {
        /* Dovecot writes its own "rfc822"; a version 1 tree may still hold
         * an opened message/global. */
        puts_(o, "\"message\" ");
        put_nstring(o, strcasecmp(p->subtype, "rfc822") == 0 ? "rfc822" : p->subtype);
    } else if (is_type(p, "multipart")
               || (is_type(p, "message") && strcasecmp(p->subtype, "rfc822") == 0)) {
        /* Not split (past the limits; "multipart" without a subtype). */
        puts_(o, "\"application\" \"octet-stream\"");
    } else {
        text = is_type(p, "text");
        put_nstring(o, p->type);
        putc_(o, ' ');
        put_nstring(o, p->subtype);
    }
    putc_(o, ' ');
    put_params(o, p->params, p->n_params, text);
    putc_(o, ' ');
    put_nstring_nolf(o, p->id);
    putc_(o, ' ');
    put_nstring_nolf(o, p->description);
    putc_(o, ' ');
    put_nstring(o, p->encoding);
    putc_(o, ' ');
    put_uint(o, p->end - p->body_start);
    if (text) {
        putc_(o, ' ');
        put_uint(o, p->body_lines);
    } else if (p->message) {
        putc_(o, ' ');
        put_envelope(o, p->message);
        puts_(o, " (");
        put_body(o, p->message, ext);
        puts_(o, ") ");
        put_uint(o, p->body_lines);
    }
    if (!ext)
        return;
    putc_(o, ' ');
    put_nstring_nolf(o, p->md5);
    put_ext_common(o, p);
}

static void put_body(struct out *o, const struct mime_part *p, bool ext)
{
    if (o->err)
        return;
    if (p->multipart)
        put_multipart(o, p, ext);
    else
        put_single(o, p, ext);
}

int mime_imap_bodystructure(struct buf *out, size_t limit, const struct mime_message *msg,
                            bool extended, unsigned flags)
{
    struct out o = { out, limit, flags, false };
    putc_(&o, '(');
    put_body(&o, &msg->root, extended);
    putc_(&o, ')');
    return o.err ? -1 : 0;
}
