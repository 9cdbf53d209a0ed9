/*
 * FETCH attributes and modifiers (RFC 3501 §6.4.5, RFC 9051 §6.4.5):
 *
 *   fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
 *           fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
 *
 * with BINARY (RFC 3516), MODSEQ and the CHANGEDSINCE and VANISHED
 * modifiers (RFC 7162), fetch-modifiers being RFC 4466 §2.4's list. The
 * reader keeps "BODY.PEEK[HEADER.FIELDS (To From)]<0.100>" as one atom;
 * this file takes it apart.
 */
#include <string.h>
#include <strings.h>

#include "imap/chars.h"
#include "imap/imap.h"

static const struct {
    const char *name;
    unsigned items;
} simple_atts[] = {
    { "ENVELOPE", IMAP_FI_ENVELOPE },
    { "FLAGS", IMAP_FI_FLAGS },
    { "INTERNALDATE", IMAP_FI_INTERNALDATE },
    { "RFC822", IMAP_FI_RFC822 },
    { "RFC822.HEADER", IMAP_FI_RFC822_HEADER },
    { "RFC822.SIZE", IMAP_FI_RFC822_SIZE },
    { "RFC822.TEXT", IMAP_FI_RFC822_TEXT },
    { "BODY", IMAP_FI_BODY },
    { "BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE },
    { "UID", IMAP_FI_UID },
    { "MODSEQ", IMAP_FI_MODSEQ },
};

/* RFC 3501 §6.4.5: macros stand alone, never inside a list. */
#define FAST_ITEMS (IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE)
static const struct {
    const char *name;
    unsigned items;
} macros[] = {
    { "ALL", FAST_ITEMS | IMAP_FI_ENVELOPE },
    { "FAST", FAST_ITEMS },
    { "FULL", FAST_ITEMS | IMAP_FI_ENVELOPE | IMAP_FI_BODY },
};

/* BINARY.SIZE reads no content, so like a peek it sets no \Seen. */
static const struct {
    const char *name;
    enum imap_fetch_kind kind;
    bool peek;
} section_atts[] = {
    { "BODY", IMAP_FB_BODY, false },
    { "BODY.PEEK", IMAP_FB_BODY, true },
    { "BINARY", IMAP_FB_BINARY, false },
    { "BINARY.PEEK", IMAP_FB_BINARY, true },
    { "BINARY.SIZE", IMAP_FB_BINARY_SIZE, true },
};

static const struct {
    const char *name;
    enum imap_section_text text;
} section_texts[] = {
    { "HEADER", IMAP_ST_HEADER },
    { "HEADER.FIELDS", IMAP_ST_HEADER_FIELDS },
    { "HEADER.FIELDS.NOT", IMAP_ST_HEADER_FIELDS_NOT },
    { "TEXT", IMAP_ST_TEXT },
    { "MIME", IMAP_ST_MIME },
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

struct fp {
    struct imap_arena *a;
    const char **err;
};

static int fail(struct fp *f, int code, const char *msg)
{
    *f->err = msg;
    return code;
}

static bool name_is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* ------------------------------------------------------------ header-list */

/* The closing DQUOTE of the quoted string opened at t[open], or 0. */
static size_t quoted_end(const char *t, size_t n, size_t open)
{
    for (size_t i = open + 1; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '"')
            return i;
        if (ch == '\\' && i + 1 < n && (t[i + 1] == '\\' || t[i + 1] == '"'))
            i++;
        else if (ch == '\\' || ch < 0x20 || ch > 0x7e)
            return 0;
    }
    return 0;
}

/* s[0..n) with quoted-string escapes removed, NUL-terminated, in the arena. */
static char *unescape(struct imap_arena *a, const char *s, size_t n)
{
    char *d = imap_arena_alloc(a, n + 1);
    size_t o = 0;
    if (!d)
        return NULL;
    for (size_t j = 0; j < n; j++) {
        if (s[j] == '\\')
            j++;
        d[o++] = s[j];
    }
    d[o] = 0;
    return d;
}

/*
 * One header-fld-name (astring, but not a literal: the reader refuses
 * those inside a section) at t[*i]; *i moves past it.
 */
static int parse_field_name(struct fp *f, const char *t, size_t n, size_t *i,
                            const char **name)
{
    size_t start = *i, stop = start;
    char *d;
    if (t[start] == '"') {
        stop = quoted_end(t, n, start);
        if (!stop)
            return fail(f, IMAP_PERR_SYNTAX, "Bad quoted header field name");
        d = unescape(f->a, t + start + 1, stop - start - 1);
        stop++;
    } else {
        while (stop < n && is_astring_char((unsigned char)t[stop]))
            stop++;
        d = unescape(f->a, t + start, stop - start);
    }
    if (!d)
        return fail(f, IMAP_PERR_NOMEM, "Out of memory");
    /* RFC 5322 §3.6.8: a field name is at least one character. */
    if (!d[0])
        return fail(f, IMAP_PERR_SYNTAX, "Empty header field name");
    *name = d;
    *i = stop;
    return 0;
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static int parse_header_list(struct fp *f, const char *t, size_t n, struct imap_fetch_body *b)
{
    if (n < 3 || t[0] != '(' || t[n - 1] != ')')
        return fail(f, IMAP_PERR_SYNTAX, "Expected a list of header field names");
    size_t max = 1;
    for (size_t i = 0; i < n; i++)
        max += t[i] == ' ';
    b->fields = imap_arena_alloc(f->a, max * sizeof *b->fields);
    if (!b->fields)
        return fail(f, IMAP_PERR_NOMEM, "Out of memory");
    size_t i = 1, end = n - 1;
    for (;;) {
        int rc = parse_field_name(f, t, end, &i, &b->fields[b->nfields]);
        if (rc)
            return rc;
        b->nfields++;
        if (i == end)
            return 0;
        if (t[i] != ' ' || i + 1 == end)
            return fail(f, IMAP_PERR_SYNTAX, "Bad header field list");
        i++;
    }
}

/* ------------------------------------------------------------ section */

/*
 * section-text = section-msgtext / "MIME", section-msgtext = "HEADER" /
 * "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT".
 */
static int parse_section_text(struct fp *f, const char *t, size_t n, struct imap_fetch_body *b)
{
    const char *sp = memchr(t, ' ', n);
    size_t wlen = sp ? (size_t)(sp - t) : n;
    for (size_t i = 0; i < COUNT(section_texts) && b->text == IMAP_ST_NONE; i++)
        if (name_is(t, wlen, section_texts[i].name))
            b->text = section_texts[i].text;
    if (b->text == IMAP_ST_NONE)
        return fail(f, IMAP_PERR_SYNTAX, "Unknown section");
    /* RFC 3501 §6.4.5: MIME refers to the header of a part, so it needs one. */
    if (b->text == IMAP_ST_MIME && b->nparts == 0)
        return fail(f, IMAP_PERR_SYNTAX, "MIME needs a part number");
    bool fields = b->text == IMAP_ST_HEADER_FIELDS || b->text == IMAP_ST_HEADER_FIELDS_NOT;
    if (!fields)
        return sp ? fail(f, IMAP_PERR_SYNTAX, "Junk after section") : 0;
    if (!sp)
        return fail(f, IMAP_PERR_SYNTAX, "Missing header field list");
    return parse_header_list(f, sp + 1, n - wlen - 1, b);
}

/*
 * section-spec = section-msgtext / (section-part ["." section-text]),
 * section-part = nz-number *("." nz-number). BINARY takes a section-part
 * only (RFC 3516 §4.1 section-binary).
 */
static int parse_section(struct fp *f, const char *t, size_t n, struct imap_fetch_body *b)
{
    size_t i = 0;
    while (i < n && is_digit(t[i])) {
        size_t start = i;
        while (i < n && is_digit(t[i]))
            i++;
        if (b->nparts == IMAP_MAX_PART_DEPTH)
            return fail(f, IMAP_PERR_SYNTAX, "Part number nested too deeply");
        if (!imap_parse_nz_number(t + start, i - start, &b->part[b->nparts]))
            return fail(f, IMAP_PERR_SYNTAX, "Invalid part number");
        b->nparts++;
        if (i == n)
            return 0;
        if (t[i] != '.' || ++i == n)
            return fail(f, IMAP_PERR_SYNTAX, "Invalid part number");
    }
    if (i == n)
        return 0;
    if (b->kind != IMAP_FB_BODY)
        return fail(f, IMAP_PERR_SYNTAX, "BINARY takes part numbers only");
    return parse_section_text(f, t + i, n - i, b);
}

/* partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9; RFC 3501: 32-bit) */
static int parse_partial(struct fp *f, const char *t, size_t n, struct imap_fetch_body *b)
{
    const char *dot = n > 2 ? memchr(t, '.', n) : NULL;
    if (!dot || t[0] != '<' || t[n - 1] != '>')
        return fail(f, IMAP_PERR_SYNTAX, "Invalid partial range");
    size_t olen = (size_t)(dot - t) - 1, llen = n - olen - 3;
    if (!imap_parse_number64(t + 1, olen, &b->offset) ||
        !imap_parse_number64(dot + 1, llen, &b->length) || b->length == 0 || dot[1] == '0')
        return fail(f, IMAP_PERR_SYNTAX, "Invalid partial range");
    b->partial = true;
    return 0;
}

/* The ']' closing the section that starts at t[0] (after '['), quotes skipped. */
static const char *section_end(const char *t, size_t n)
{
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        if (quoted && t[i] == '\\')
            i++;
        else if (t[i] == '"')
            quoted = !quoted;
        else if (!quoted && t[i] == ']')
            return t + i;
    }
    return NULL;
}

/* BODY[...]<...> and its kin, s[0..len) with '[' at bracket. */
static int parse_body_att(struct fp *f, const char *s, size_t len, const char *bracket,
                          struct imap_fetch_body *b)
{
    size_t nlen = (size_t)(bracket - s);
    size_t k = 0;
    while (k < COUNT(section_atts) && !name_is(s, nlen, section_atts[k].name))
        k++;
    if (k == COUNT(section_atts))
        return fail(f, IMAP_PERR_SYNTAX, "Unknown fetch attribute");
    memset(b, 0, sizeof *b);
    b->kind = section_atts[k].kind;
    b->peek = section_atts[k].peek;
    const char *sec = bracket + 1, *end = s + len;
    const char *close = section_end(sec, (size_t)(end - sec));
    if (!close)
        return fail(f, IMAP_PERR_SYNTAX, "Unterminated section");
    size_t slen = (size_t)(close - sec);
    char *copy = imap_arena_alloc(f->a, slen + 1);
    if (!copy)
        return fail(f, IMAP_PERR_NOMEM, "Out of memory");
    memcpy(copy, sec, slen);
    copy[slen] = 0;
    b->section = copy;
    int rc = parse_section(f, sec, slen, b);
    if (rc || close + 1 == end)
        return rc;
    if (b->kind == IMAP_FB_BINARY_SIZE)
        return fail(f, IMAP_PERR_SYNTAX, "BINARY.SIZE takes no partial range");
    return parse_partial(f, close + 1, (size_t)(end - close - 1), b);
}

/* One fetch-att; a section attribute fills out->bodies[out->nbodies]. */
static int parse_att(struct fp *f, const char *s, size_t len, struct imap_fetch *out)
{
    const char *bracket = memchr(s, '[', len);
    if (bracket) {
        int rc = parse_body_att(f, s, len, bracket, &out->bodies[out->nbodies]);
        if (rc == 0)
            out->nbodies++;
        return rc;
    }
    for (size_t i = 0; i < COUNT(simple_atts); i++) {
        if (name_is(s, len, simple_atts[i].name)) {
            out->items |= simple_atts[i].items;
            return 0;
        }
    }
    return fail(f, IMAP_PERR_SYNTAX, "Unknown fetch attribute");
}

/* Room for n section attributes. */
static int alloc_bodies(struct fp *f, size_t n, struct imap_fetch *out)
{
    if (n == 0)
        return 0;
    out->bodies = imap_arena_alloc(f->a, n * sizeof *out->bodies);
    return out->bodies ? 0 : fail(f, IMAP_PERR_NOMEM, "Out of memory");
}

int imap_parse_fetch_att(struct imap_arena *a, const char *s, size_t len,
                         struct imap_fetch *out, const char **err)
{
    struct fp f = { a, err };
    memset(out, 0, sizeof *out);
    *err = NULL;
    int rc = alloc_bodies(&f, memchr(s, '[', len) ? 1 : 0, out);
    return rc ? rc : parse_att(&f, s, len, out);
}

/* ------------------------------------------------------------ FETCH */

/*
 * fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")". Each
 * at most once. CHANGEDSINCE 0 is taken although RFC 7162 §7 wants 1 or
 * more: iPhone Mail sends it, and every message has changed since 0.
 */
static int parse_modifiers(struct fp *f, const struct imap_arg *list, struct imap_fetch *out)
{
    if (list->type != IMAP_ARG_LIST || !list->child)
        return fail(f, IMAP_PERR_SYNTAX, "Expected a list of FETCH modifiers");
    for (const struct imap_arg *m = list->child; m; m = m->next) {
        if (imap_arg_is(m, "CHANGEDSINCE") && !out->changedsince) {
            const struct imap_arg *v = m->next;
            if (!v || v->type != IMAP_ARG_ATOM ||
                !imap_parse_modseq(v->str, v->len, true, &out->changedsince_modseq))
                return fail(f, IMAP_PERR_SYNTAX, "Invalid CHANGEDSINCE value");
            out->changedsince = true;
            /* RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ item. */
            out->items |= IMAP_FI_MODSEQ;
            m = v;
        } else if (imap_arg_is(m, "VANISHED") && !out->vanished) {
            out->vanished = true;
        } else {
            return fail(f, IMAP_PERR_SYNTAX, "Unknown or repeated FETCH modifier");
        }
    }
    /* RFC 7162 §3.2.6: VANISHED without CHANGEDSINCE is BAD. */
    if (out->vanished && !out->changedsince)
        return fail(f, IMAP_PERR_SYNTAX, "VANISHED needs CHANGEDSINCE");
    return 0;
}

static bool has_section(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM && memchr(a->str, '[', a->len);
}

static int parse_att_list(struct fp *f, const struct imap_arg *list, struct imap_fetch *out)
{
    size_t n = 0;
    if (!list->child)
        return fail(f, IMAP_PERR_SYNTAX, "Empty list of fetch attributes");
    for (const struct imap_arg *c = list->child; c; c = c->next)
        n += has_section(c);
    int rc = alloc_bodies(f, n, out);
    for (const struct imap_arg *c = list->child; c && !rc; c = c->next) {
        if (c->type != IMAP_ARG_ATOM)
            return fail(f, IMAP_PERR_SYNTAX, "Expected a fetch attribute");
        rc = parse_att(f, c->str, c->len, out);
    }
    return rc;
}

static int parse_atts(struct fp *f, const struct imap_arg *args, struct imap_fetch *out)
{
    if (args->type == IMAP_ARG_LIST)
        return parse_att_list(f, args, out);
    if (args->type != IMAP_ARG_ATOM)
        return fail(f, IMAP_PERR_SYNTAX, "Expected fetch attributes");
    for (size_t i = 0; i < COUNT(macros); i++) {
        if (name_is(args->str, args->len, macros[i].name)) {
            out->items = macros[i].items;
            return 0;
        }
    }
    int rc = alloc_bodies(f, has_section(args), out);
    return rc ? rc : parse_att(f, args->str, args->len, out);
}

int imap_parse_fetch(struct imap_arena *a, const struct imap_arg *args,
                     struct imap_fetch *out, const char **err)
{
    struct fp f = { a, err };
    memset(out, 0, sizeof *out);
    *err = NULL;
    if (!args)
        return fail(&f, IMAP_PERR_SYNTAX, "Missing fetch attributes");
    int rc = parse_atts(&f, args, out);
    if (rc || !args->next)
        return rc;
    if (args->next->next)
        return fail(&f, IMAP_PERR_SYNTAX, "Junk after FETCH modifiers");
    return parse_modifiers(&f, args->next, out);
}
