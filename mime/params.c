/*
 * params.c — structured MIME fields: Content-Type (RFC 2045 §5.1),
 * Content-Disposition (RFC 2183), Content-Transfer-Encoding (RFC 2045 §6),
 * with RFC 5322 CFWS skipped and RFC 2231 parameter continuations joined.
 *
 * RFC 2231 choice (as Dovecot reports it in BODYSTRUCTURE): continuations
 * name*0, name*1 ... are joined. When any section is extended (name*, or
 * name*N*), the result is named "name*" and its value is kept encoded as
 * charset'language'%XX... ; plain sections joined to it are %-encoded so the
 * whole value stays one RFC 2231 extended value. Decoding the charset is left
 * to the reader. Duplicate names: the first wins.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime-int.h"

struct lex {
    const char *s;
    size_t i, n;
};

struct raw_param {
    char *base;     /* lowercased name without the RFC 2231 suffix */
    char *value;
    int section;    /* -1: none */
    bool ext;       /* value is charset'lang'%XX (RFC 2231 extended) */
    bool used;
};

static bool is_tspecial(unsigned char c)
{
    return c && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* RFC 2045 token; 8-bit bytes tolerated. */
static bool is_token_char(unsigned char c)
{
    return c > 32 && c != 127 && !is_tspecial(c);
}

static void skip_comment(struct lex *l)
{
    unsigned depth = 0;
    while (l->i < l->n) {
        char c = l->s[l->i++];
        if (c == '\\' && l->i < l->n)
            l->i++;
        else if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            return;
    }
}

/* RFC 5322 §3.2.2 CFWS. */
static void skip_cfws(struct lex *l)
{
    while (l->i < l->n) {
        char c = l->s[l->i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            l->i++;
        else if (c == '(')
            skip_comment(l);
        else
            break;
    }
}

static size_t take_token(struct lex *l)
{
    size_t start = l->i;
    while (l->i < l->n && is_token_char((unsigned char)l->s[l->i]))
        l->i++;
    return l->i - start;
}

static char *lower_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return out;
}

/* RFC 5322 §3.2.4 quoted-string at l->s[l->i] == '"'; unterminated runs to
 * the end. Backslash escapes are removed. */
static char *take_quoted(struct lex *l)
{
    char *out = malloc(l->n - l->i + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    l->i++;
    while (l->i < l->n) {
        char c = l->s[l->i++];
        if (c == '"')
            break;
        if (c == '\\' && l->i < l->n)
            c = l->s[l->i++];
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

/* Lenient unquoted value: real mail has unquoted '=' and '/' in boundaries
 * and file names, so take everything up to WSP, ';', '"' or '('. */
static char *take_value_atom(struct lex *l)
{
    size_t start = l->i;
    while (l->i < l->n) {
        unsigned char c = (unsigned char)l->s[l->i];
        if (c <= 32 || c == ';' || c == '"' || c == '(' || c == 127)
            break;
        l->i++;
    }
    return strndup(l->s + start, l->i - start);
}

/* Skips a malformed parameter: to the next ';' outside quotes/comments. */
static void skip_to_semicolon(struct lex *l)
{
    while (l->i < l->n && l->s[l->i] != ';') {
        if (l->s[l->i] == '"') {
            char *junk = take_quoted(l);
            free(junk);
            if (!junk)
                l->i = l->n;
        } else if (l->s[l->i] == '(') {
            skip_comment(l);
        } else {
            l->i++;
        }
    }
}

/* Splits "name*N*" into base, section and ext (RFC 2231 §3, §4). */
static char *split_name(char *name, int *section, bool *ext)
{
    *section = -1;
    *ext = false;
    char *star = strchr(name, '*');
    if (!star)
        return name;
    char *p = star + 1;
    if (*p == '\0') {
        *ext = true;
    } else {
        long v = 0;
        char *q = p;
        while (*q >= '0' && *q <= '9' && v < 100000)
            v = v * 10 + (*q++ - '0');
        if (q == p || (*q != '\0' && strcmp(q, "*") != 0) || (q - p > 1 && *p == '0'))
            return name; /* not RFC 2231: keep the literal name */
        *section = (int)v;
        *ext = *q == '*';
    }
    *star = '\0';
    return name;
}

static void raw_free(struct raw_param *raw, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        free(raw[i].base);
        free(raw[i].value);
    }
}

/* Collects "; name=value" pairs. Returns -1 on OOM. */
static int collect_raw(struct lex *l, struct raw_param *raw, unsigned *n_raw,
                       bool *truncated)
{
    *n_raw = 0;
    for (;;) {
        skip_cfws(l);
        if (l->i >= l->n)
            return 0;
        if (l->s[l->i] != ';') {
            skip_to_semicolon(l);
            continue;
        }
        l->i++;
        skip_cfws(l);
        size_t name_at = l->i;
        size_t name_len = take_token(l);
        skip_cfws(l);
        if (name_len == 0 || l->i >= l->n || l->s[l->i] != '=') {
            skip_to_semicolon(l);
            continue;
        }
        l->i++;
        skip_cfws(l);
        char *value = l->i < l->n && l->s[l->i] == '"' ? take_quoted(l) : take_value_atom(l);
        if (!value)
            return -1;
        if (*n_raw >= MIME_MAX_RAW_PARAMS) {
            *truncated = true;
            free(value);
            continue;
        }
        char *name = lower_dup(l->s + name_at, name_len);
        if (!name) {
            free(value);
            return -1;
        }
        struct raw_param *r = &raw[(*n_raw)++];
        r->base = split_name(name, &r->section, &r->ext);
        r->value = value;
        r->used = false;
    }
}

/* RFC 2231 §7 attribute-char: keep, else %XX. */
static bool is_attr_char(unsigned char c)
{
    return is_token_char(c) && c != '*' && c != '\'' && c != '%' && c < 128;
}

static size_t pct_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += is_attr_char((unsigned char)*s) ? 1 : 3;
    return n;
}

static char *pct_append(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_attr_char(c)) {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

/* Joins the sections 0, 1, 2 ... of raw[first]'s base name. Marks them used.
 * Returns 1 with *name and *value set, 0 when there is no section 0, -1 OOM. */
static int join_sections(struct raw_param *raw, unsigned n_raw, unsigned first,
                         char **name, char **value)
{
    const char *base = raw[first].base;
    struct raw_param *seq[MIME_MAX_RAW_PARAMS];
    unsigned n_seq = 0;
    for (unsigned i = first; i < n_raw; i++)
        if (raw[i].section >= 0 && strcmp(raw[i].base, base) == 0)
            raw[i].used = true;
    /* Sections in index order; the first of a duplicated index wins. */
    for (int k = 0; n_seq < MIME_MAX_RAW_PARAMS; k++) {
        struct raw_param *hit = NULL;
        for (unsigned i = first; i < n_raw && !hit; i++)
            if (raw[i].section == k && strcmp(raw[i].base, base) == 0)
                hit = &raw[i];
        if (!hit)
            break;
        seq[n_seq++] = hit;
    }
    if (n_seq == 0)
        return 0;
    bool any_ext = false;
    for (unsigned i = 0; i < n_seq; i++)
        any_ext |= seq[i]->ext;
    size_t len = 3;
    for (unsigned i = 0; i < n_seq; i++)
        len += any_ext && !seq[i]->ext ? pct_len(seq[i]->value) : strlen(seq[i]->value);
    char *v = malloc(len);
    char *nm = malloc(strlen(base) + 2);
    if (!v || !nm) {
        free(v);
        free(nm);
        return -1;
    }
    char *o = v;
    if (any_ext && !seq[0]->ext) {
        *o++ = '\'';   /* no charset, no language */
        *o++ = '\'';
    }
    for (unsigned i = 0; i < n_seq; i++) {
        if (any_ext && !seq[i]->ext) {
            o = pct_append(o, seq[i]->value);
        } else {
            size_t l = strlen(seq[i]->value);
            memcpy(o, seq[i]->value, l);
            o += l;
        }
    }
    *o = '\0';
    strcpy(nm, base);
    if (any_ext)
        strcat(nm, "*");
    *name = nm;
    *value = v;
    return 1;
}

static bool have_param(const struct mime_param *p, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return true;
    return false;
}

/* Turns raw sections into the final list. Takes ownership of nothing. */
static int build_params(struct raw_param *raw, unsigned n_raw,
                        struct mime_param **out, unsigned *n_out, bool *truncated)
{
    *out = NULL;
    *n_out = 0;
    if (n_raw == 0)
        return 0;
    struct mime_param *p = calloc(n_raw < MIME_MAX_PARAMS ? n_raw : MIME_MAX_PARAMS,
                                  sizeof *p);
    if (!p)
        return -1;
    unsigned n = 0;
    for (unsigned i = 0; i < n_raw; i++) {
        if (raw[i].used)
            continue;
        char *name, *value;
        if (raw[i].section >= 0) {
            int rc = join_sections(raw, n_raw, i, &name, &value);
            if (rc < 0)
                goto oom;
            if (rc == 0)
                continue;
        } else {
            raw[i].used = true;
            name = malloc(strlen(raw[i].base) + 2);
            value = strdup(raw[i].value);
            if (!name || !value) {
                free(name);
                free(value);
                goto oom;
            }
            strcpy(name, raw[i].base);
            if (raw[i].ext)
                strcat(name, "*");
        }
        if (have_param(p, n, name) || n >= MIME_MAX_PARAMS) {
            if (n >= MIME_MAX_PARAMS)
                *truncated = true;
            free(name);
            free(value);
            continue;
        }
        p[n].name = name;
        p[n].value = value;
        n++;
    }
    if (n == 0) {
        free(p);
        p = NULL;
    }
    *out = p;
    *n_out = n;
    return 0;
oom:
    mime_params_free(&p, &n);
    return -1;
}

static int parse_params(struct lex *l, struct mime_param **params, unsigned *n_params,
                        bool *truncated)
{
    struct raw_param *raw = calloc(MIME_MAX_RAW_PARAMS, sizeof *raw);
    if (!raw)
        return -1;
    unsigned n_raw = 0;
    int rc = collect_raw(l, raw, &n_raw, truncated);
    if (rc == 0)
        rc = build_params(raw, n_raw, params, n_params, truncated);
    raw_free(raw, n_raw);
    free(raw);
    return rc;
}

int mime_parse_content_type(const char *value, char **type, char **subtype,
                            struct mime_param **params, unsigned *n_params,
                            bool *truncated)
{
    struct lex l = { value, 0, strlen(value) };
    skip_cfws(&l);
    size_t t_at = l.i, t_len = take_token(&l);
    skip_cfws(&l);
    if (t_len == 0 || l.i >= l.n || l.s[l.i] != '/')
        return 0;
    l.i++;
    skip_cfws(&l);
    size_t s_at = l.i, s_len = take_token(&l);
    if (s_len == 0)
        return 0;
    char *t = lower_dup(value + t_at, t_len);
    char *s = lower_dup(value + s_at, s_len);
    if (!t || !s || parse_params(&l, params, n_params, truncated) < 0) {
        free(t);
        free(s);
        return -1;
    }
    *type = t;
    *subtype = s;
    return 1;
}

int mime_parse_disposition(const char *value, char **disposition,
                           struct mime_param **params, unsigned *n_params,
                           bool *truncated)
{
    struct lex l = { value, 0, strlen(value) };
    skip_cfws(&l);
    size_t at = l.i, len = take_token(&l);
    if (len == 0)
        return 0;
    char *d = lower_dup(value + at, len);
    if (!d || parse_params(&l, params, n_params, truncated) < 0) {
        free(d);
        return -1;
    }
    *disposition = d;
    return 1;
}

char *mime_parse_token(const char *value, bool *oom)
{
    struct lex l = { value, 0, strlen(value) };
    skip_cfws(&l);
    size_t at = l.i, len = take_token(&l);
    if (len == 0)
        return NULL;
    char *t = lower_dup(value + at, len);
    if (!t)
        *oom = true;
    return t;
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
