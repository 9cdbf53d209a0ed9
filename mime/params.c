/*
 * params.c — structured MIME fields read the way Dovecot reads them
 * (lib-mail rfc822-parser.c, rfc2231-parser.c, message-part-data.c), so
 * BODYSTRUCTURE shows what Dovecot shows: Content-Type (RFC 2045 §5.1),
 * Content-Disposition (RFC 2183), Content-Transfer-Encoding (RFC 2045 §6)
 * and Content-Language (RFC 3282), RFC 5322 CFWS skipped, RFC 2231
 * sections joined.
 *
 * Tokens, parameter names and values keep their case; readers compare
 * case-insensitively. Parameters come in the order written, duplicates
 * kept; RFC 2231 ones (name*N, name*, name*N*) follow the others, joined
 * per name in section order (sorted by name, case-sensitively, then index):
 * "name" when no section is extended, else "name*" with the value kept as
 * one RFC 2231 extended value ("''" prefixed when section 0 is not
 * extended, '%' of plain sections written "%25"). A name whose sections do
 * not run 0, 1, 2 ... gives each section as it was written ("name*1*").
 * A malformed parameter is skipped up to the next ';' (any ';', quotes do
 * not count), as Dovecot does.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime-int.h"

struct lex {
    const char *p, *end;
};

/* A growing string; out of memory sticks. */
struct sb {
    char *s;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sb *b, const char *p, size_t n)
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

static void sb_addc(struct sb *b, char c)
{
    sb_add(b, &c, 1);
}

static void sb_trunc(struct sb *b, size_t n)
{
    b->n = n;
    if (b->s)
        b->s[n] = '\0';
}

static char *sb_dup(struct sb *b)
{
    char *r = strndup(b->s ? b->s : "", b->n);
    if (!r)
        b->oom = true;
    return r;
}

/* RFC 2045 token (Dovecot: atext but "/=?", or '.'); 8-bit bytes count. */
static bool is_token_char(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if (c <= 32 || c == 127)
        return false;
    return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 atext; 8-bit bytes count. */
static bool is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if (c <= 32 || c == 127)
        return false;
    return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* At '('. 1 when input is left after it, 0 at the end, -1 unterminated. */
static int skip_comment(struct lex *l)
{
    int level = 1;
    for (l->p++; l->p < l->end; l->p++) {
        char c = *l->p;
        if (c == '(') {
            level++;
        } else if (c == ')') {
            if (--level == 0) {
                l->p++;
                return l->p < l->end ? 1 : 0;
            }
        } else if (c == '\\') {
            if (++l->p >= l->end)
                return -1;
            if (*l->p == '\r' || *l->p == '\n')
                l->p--;   /* obs-qp: not an escape */
        }
    }
    return -1;
}

/* CFWS. 1 when input is left, 0 at the end, -1 on an unterminated comment. */
static int skip_lwsp(struct lex *l)
{
    while (l->p < l->end) {
        char c = *l->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            l->p++;
        } else if (c == '(') {
            if (skip_comment(l) < 0)
                return -1;
        } else {
            break;
        }
    }
    return l->p < l->end ? 1 : 0;
}

/* A token (possibly empty) appended to s, then CFWS: skip_lwsp's result. */
static int parse_token(struct lex *l, struct sb *s)
{
    const char *start = l->p;
    while (l->p < l->end && is_token_char((unsigned char)*l->p))
        l->p++;
    sb_add(s, start, (size_t)(l->p - start));
    return skip_lwsp(l);
}

/* At '"': the content without escapes appended to s, then CFWS. -1 when
 * unterminated (nothing appended). */
static int parse_quoted(struct lex *l, struct sb *s)
{
    size_t mark = s->n;
    const char *start = ++l->p;
    for (; l->p < l->end; l->p++) {
        char c = *l->p;
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
            if (++l->p >= l->end)
                break;
            if (*l->p == '\r' || *l->p == '\n') {
                l->p--;
                continue;
            }
            sb_add(s, start, (size_t)(l->p - start - 1));
            start = l->p;
        }
    }
    sb_trunc(s, mark);
    return -1;
}

/* rfc822_parse_content_type: "type/subtype" into s. On an invalid value s
 * is "" or, when the value ended (or hit a bad comment) right after the
 * type, just the type. */
static int content_type(struct lex *l, struct sb *s)
{
    if (skip_lwsp(l) <= 0)
        return -1;
    if (parse_token(l, s) <= 0 || s->n == 0)
        return -1;
    if (*l->p != '/') {
        sb_trunc(s, 0);
        return -1;
    }
    l->p++;
    if (skip_lwsp(l) <= 0) {
        sb_trunc(s, 0);
        return -1;
    }
    sb_addc(s, '/');
    size_t sub = s->n;
    int ret = parse_token(l, s);
    if (ret < 0 || s->n == sub || (l->p < l->end && *l->p != ';')) {
        sb_trunc(s, 0);
        return -1;
    }
    return ret;
}

/* rfc822_parse_content_param: "; key=value". 1 with key and value, 0 at
 * the end, -1 when broken (the caller steps one byte and tries again). */
static int content_param(struct lex *l, struct sb *key, struct sb *value)
{
    sb_trunc(key, 0);
    sb_trunc(value, 0);
    if (l->p >= l->end)
        return 0;
    if (*l->p != ';')
        return -1;
    l->p++;
    if (skip_lwsp(l) <= 0)
        return -1;
    if (parse_token(l, key) <= 0 || *l->p != '=')
        return -1;
    l->p++;
    int ret = skip_lwsp(l);
    if (ret <= 0) {
        /* no value: "" (or broken) */
    } else if (*l->p == '"') {
        ret = parse_quoted(l, value);
    } else if (*l->p == '=') {
        /* Dovecot's workaround for name==?utf-8?b?...?= */
        const char *start = l->p;
        while (l->p < l->end && *l->p != ';' && *l->p != ' ' && *l->p != '\t'
               && *l->p != '\r' && *l->p != '\n')
            l->p++;
        sb_add(value, start, (size_t)(l->p - start));
    } else {
        ret = parse_token(l, value);
    }
    return ret < 0 ? -1 : 1;
}

/* ------------------------------------------------------------ RFC 2231 */

struct plist {
    struct mime_param *p;
    unsigned n;
    bool truncated, oom;
};

/* Takes name and value (malloc'd); past MIME_MAX_PARAMS they are dropped. */
static void plist_add(struct plist *pl, char *name, char *value)
{
    if (!name || !value || pl->oom) {
        pl->oom = true;
        free(name);
        free(value);
        return;
    }
    if (pl->n >= MIME_MAX_PARAMS) {
        pl->truncated = true;
        free(name);
        free(value);
        return;
    }
    struct mime_param *np = realloc(pl->p, (pl->n + 1) * sizeof *np);
    if (!np) {
        pl->oom = true;
        free(name);
        free(value);
        return;
    }
    pl->p = np;
    np[pl->n].name = name;
    np[pl->n].value = value;
    pl->n++;
}

struct section {
    char *key;          /* the name before '*' */
    char *value;
    unsigned idx;
    bool extended;
};

static int section_cmp(const struct section *a, const struct section *b)
{
    int r = strcmp(a->key, b->key);
    if (r)
        return r;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static char *key_with_index(const struct section *s)
{
    size_t n = strlen(s->key) + 16;
    char *k = malloc(n);
    if (k) {
        /* "%s*%u" / "%s*%u*" */
        char num[12];
        size_t i = sizeof num;
        unsigned v = s->idx;
        num[--i] = '\0';
        do {
            num[--i] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        strcpy(k, s->key);
        strcat(k, "*");
        strcat(k, num + i);
        if (s->extended)
            strcat(k, "*");
    }
    return k;
}

/* Sections sec[from, to) of one name, all indexes present: one parameter. */
static void join_sections(struct plist *pl, struct section *sec, unsigned from, unsigned to,
                          bool have_ext)
{
    struct sb v = { 0 };
    sb_add(&v, "", 0);
    if (!sec[from].extended && have_ext)
        sb_add(&v, "''", 2);
    for (unsigned j = from; j < to; j++) {
        if (!sec[j].extended && have_ext) {
            for (const char *c = sec[j].value; *c; c++) {
                if (*c == '%')
                    sb_add(&v, "%25", 3);
                else
                    sb_addc(&v, *c);
            }
        } else {
            sb_add(&v, sec[j].value, strlen(sec[j].value));
        }
    }
    size_t kn = strlen(sec[from].key);
    char *key = malloc(kn + 2);
    if (key) {
        memcpy(key, sec[from].key, kn);
        key[kn] = '*';
        key[kn + (have_ext ? 1 : 0)] = '\0';
    }
    if (v.oom)
        pl->oom = true;
    plist_add(pl, key, v.oom ? NULL : v.s);
    if (v.oom)
        free(v.s);
}

/* rfc2231_parse: the parameters from l (at "; ..." or the end). */
static void parse_params(struct lex *l, struct plist *pl)
{
    struct sb key = { 0 }, value = { 0 };
    struct section *sec = NULL;
    unsigned n_sec = 0, cap = 0, n_read = 0;
    struct section cur = { 0 };   /* idx carries over, as in Dovecot */
    int ret;
    while (!pl->oom && (ret = content_param(l, &key, &value)) != 0) {
        if (ret < 0) {
            if (l->p >= l->end)
                break;
            l->p++;
            continue;
        }
        if (key.oom || value.oom) {
            pl->oom = true;
            break;
        }
        if (n_read++ >= MIME_MAX_RAW_PARAMS) {
            pl->truncated = true;
            continue;
        }
        char *k = key.s ? key.s : (char *)"";
        char *star = strchr(k, '*');
        bool is_section = false;
        if (star) {
            const char *p = star;
            if (p[1] != '\0') {
                p++;
                cur.idx = 0;
                for (; *p >= '0' && *p <= '9'; p++)
                    cur.idx = cur.idx * 10 + (unsigned)(*p - '0');
            }
            cur.extended = *p == '*';
            if (cur.extended)
                p++;
            is_section = *p == '\0';
        }
        if (!is_section) {
            plist_add(pl, strdup(k), strdup(value.s ? value.s : ""));
            continue;
        }
        if (n_sec == cap) {
            unsigned ncap = cap ? cap * 2 : 8;
            struct section *ns = realloc(sec, ncap * sizeof *ns);
            if (!ns) {
                pl->oom = true;
                break;
            }
            sec = ns;
            cap = ncap;
        }
        struct section *s = &sec[n_sec];
        *s = cur;
        s->key = strndup(k, (size_t)(star - k));
        s->value = strdup(value.s ? value.s : "");
        if (!s->key || !s->value) {
            free(s->key);
            free(s->value);
            pl->oom = true;
            break;
        }
        n_sec++;
    }
    free(key.s);
    free(value.s);

    /* Stable insertion sort by (name, index): few sections, and equal
     * ones keep their order as in Dovecot. */
    for (unsigned i = 1; i < n_sec; i++) {
        struct section t = sec[i];
        unsigned j = i;
        for (; j > 0 && section_cmp(&sec[j - 1], &t) > 0; j--)
            sec[j] = sec[j - 1];
        sec[j] = t;
    }
    for (unsigned i = 0, next; i < n_sec && !pl->oom; i = next) {
        bool ok = true, have_ext = false;
        unsigned want = 0, j;
        for (j = i; j < n_sec; j++) {
            if (strcasecmp(sec[i].key, sec[j].key) != 0)
                break;
            if (sec[j].idx != want)
                ok = false;
            have_ext |= sec[j].extended;
            want++;
        }
        next = j;
        if (ok) {
            join_sections(pl, sec, i, next, have_ext);
        } else {
            for (j = i; j < next; j++)
                plist_add(pl, key_with_index(&sec[j]), strdup(sec[j].value));
        }
    }
    for (unsigned i = 0; i < n_sec; i++) {
        free(sec[i].key);
        free(sec[i].value);
    }
    free(sec);
}

/* ------------------------------------------------------------- fields */

static int finish_params(struct plist *pl, struct mime_param **params, unsigned *n_params,
                         bool *truncated)
{
    if (pl->oom) {
        mime_params_free(&pl->p, &pl->n);
        return -1;
    }
    if (pl->truncated)
        *truncated = true;
    *params = pl->p;
    *n_params = pl->n;
    return 0;
}

int mime_parse_content_type(const char *value, char **type, char **subtype,
                            struct mime_param **params, unsigned *n_params,
                            bool *truncated)
{
    struct lex l = { value, value + strlen(value) };
    struct sb s = { 0 };
    sb_add(&s, "", 0);
    (void)skip_lwsp(&l);
    int ret = content_type(&l, &s);
    if (s.oom) {
        free(s.s);
        return -1;
    }
    char *slash = strchr(s.s, '/');
    *type = strndup(s.s, slash ? (size_t)(slash - s.s) : s.n);
    *subtype = strdup(slash ? slash + 1 : "");
    free(s.s);
    if (!*type || !*subtype) {
        free(*type);
        free(*subtype);
        *type = *subtype = NULL;
        return -1;
    }
    if (ret < 0)
        return 0;
    struct plist pl = { 0 };
    parse_params(&l, &pl);
    if (finish_params(&pl, params, n_params, truncated) < 0) {
        free(*type);
        free(*subtype);
        *type = *subtype = NULL;
        return -1;
    }
    return 1;
}

int mime_parse_disposition(const char *value, char **disposition,
                           struct mime_param **params, unsigned *n_params,
                           bool *truncated)
{
    struct lex l = { value, value + strlen(value) };
    struct sb s = { 0 };
    sb_add(&s, "", 0);
    (void)skip_lwsp(&l);
    if (parse_token(&l, &s) < 0) {
        free(s.s);
        return 0;
    }
    char *d = sb_dup(&s);
    free(s.s);
    if (!d)
        return -1;
    struct plist pl = { 0 };
    parse_params(&l, &pl);
    if (finish_params(&pl, params, n_params, truncated) < 0) {
        free(d);
        return -1;
    }
    *disposition = d;
    return 1;
}

char *mime_parse_token(const char *value, bool *oom)
{
    struct lex l = { value, value + strlen(value) };
    struct sb s = { 0 };
    sb_add(&s, "", 0);
    (void)skip_lwsp(&l);
    char *t = NULL;
    if (parse_token(&l, &s) >= 0 && skip_lwsp(&l) == 0 && s.n > 0 && !s.oom)
        t = sb_dup(&s);
    if (s.oom)
        *oom = true;
    free(s.s);
    return t;
}

bool mime_language_valid(const char *value)
{
    struct lex l = { value, value + strlen(value) };
    (void)skip_lwsp(&l);
    return l.p < l.end && is_atext((unsigned char)*l.p);
}

void mime_params_free(struct mime_param **params, unsigned *n)
{
    if (!*params)
        return;
    for (unsigned i = 0; i < *n; i++) {
        free((*params)[i].name);
        free((*params)[i].value);
    }
    free(*params);
    *params = NULL;
    *n = 0;
}
