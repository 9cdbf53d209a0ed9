/*
 * parse.c — the MIME tree (RFC 2045, RFC 2046). One forward pass over the
 * message: every line start is looked at once, at the innermost multipart
 * open there, so the parse is linear in the size of the message.
 *
 * Boundaries (RFC 2046 §5.1.1): a line starting with "--" + boundary of any
 * open multipart; like Dovecot, a prefix match (the RFC forbids boundaries
 * that are a prefix of a line of an enclosed part), the longest open boundary
 * wins. The line break before a boundary line belongs to the boundary.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime-int.h"

struct boundary {
    const char *s;
    size_t len;
};

struct ctx {
    const char *d;
    size_t len;
    struct boundary stack[MIME_MAX_DEPTH];
    unsigned nb;
    unsigned n_parts;
    bool repaired;
    bool oom;
    /* Line counting cursor: lf_count newlines in d[0, lf_pos). Queries come
     * in (almost) increasing order, so counting is linear overall. */
    size_t lf_pos;
    size_t lf_count;
    /* End of the last finished part: a later end never moves before it (a
     * line break inside a child's header is not the parent's to drop). */
    size_t done;
};

/* Where a body stopped: at the boundary line `line` of stack[which], or at
 * the end of the data (which == -1, line == len). */
struct stop {
    size_t line;
    int which;
    bool closing;
};

static size_t count_lf(const char *d, size_t from, size_t to)
{
    size_t n = 0;
    const char *p = d + from, *e = d + to;
    while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

static size_t lf_before(struct ctx *c, size_t pos)
{
    if (pos >= c->lf_pos)
        c->lf_count += count_lf(c->d, c->lf_pos, pos);
    else
        c->lf_count -= count_lf(c->d, pos, c->lf_pos);
    c->lf_pos = pos;
    return c->lf_count;
}

static size_t next_line(const struct ctx *c, size_t pos)
{
    const char *lf = memchr(c->d + pos, '\n', c->len - pos);
    return lf ? (size_t)(lf - c->d) + 1 : c->len;
}

/* Is the line at pos a boundary line of an open multipart? */
static bool boundary_at(const struct ctx *c, size_t pos, struct stop *st)
{
    const char *d = c->d;
    if (c->nb == 0 || pos + 2 > c->len || d[pos] != '-' || d[pos + 1] != '-')
        return false;
    int best = -1;
    size_t best_len = 0;
    for (unsigned i = 0; i < c->nb; i++) {
        const struct boundary *b = &c->stack[i];
        if (pos + 2 + b->len <= c->len && memcmp(d + pos + 2, b->s, b->len) == 0
            && (best < 0 || b->len >= best_len)) {
            best = (int)i;
            best_len = b->len;
        }
    }
    if (best < 0)
        return false;
    size_t after = pos + 2 + best_len;
    st->line = pos;
    st->which = best;
    st->closing = after + 2 <= c->len && d[after] == '-' && d[after + 1] == '-';
    return true;
}

/* Scans line starts from pos (a line start) to the next boundary line. */
static struct stop find_boundary(const struct ctx *c, size_t pos)
{
    struct stop st = { c->len, -1, false };
    while (pos < c->len) {
        if (boundary_at(c, pos, &st))
            return st;
        pos = next_line(c, pos);
    }
    st.line = c->len;
    st.which = -1;
    return st;
}

/* A body ends before the line break that precedes its boundary line. */
static size_t end_before(const struct ctx *c, struct stop st, size_t floor)
{
    if (st.which < 0)
        return c->len;
    size_t e = st.line;
    if (e > floor && c->d[e - 1] == '\n') {
        e--;
        if (e > floor && c->d[e - 1] == '\r')
            e--;
    }
    return e;
}

static char *dup_or_oom(struct ctx *c, const char *s)
{
    char *r = strdup(s);
    if (!r)
        c->oom = true;
    return r;
}

/* -------------------------------------------------------------- header */

enum field_kind { F_RAW, F_ENVELOPE, F_CTYPE, F_DISPOSITION, F_ENCODING };

struct field_rule {
    const char *name;
    enum field_kind kind;
    size_t offset;          /* of the char * member in struct mime_part */
};

#define AT(member) offsetof(struct mime_part, member)

/* Header fields kept in the tree; the first occurrence of each wins. */
static const struct field_rule field_rules[] = {
    { "content-type",              F_CTYPE,       0 },
    { "content-transfer-encoding", F_ENCODING,    AT(encoding) },
    { "content-disposition",       F_DISPOSITION, 0 },
    { "content-id",                F_RAW,         AT(id) },
    { "content-description",       F_RAW,         AT(description) },
    { "content-md5",               F_RAW,         AT(md5) },
    { "content-language",          F_RAW,         AT(language) },
    { "content-location",          F_RAW,         AT(location) },
    { "date",                      F_ENVELOPE,    AT(date) },
    { "subject",                   F_ENVELOPE,    AT(subject) },
    { "from",                      F_ENVELOPE,    AT(from) },
    { "sender",                    F_ENVELOPE,    AT(sender) },
    { "reply-to",                  F_ENVELOPE,    AT(reply_to) },
    { "to",                        F_ENVELOPE,    AT(to) },
    { "cc",                        F_ENVELOPE,    AT(cc) },
    { "bcc",                       F_ENVELOPE,    AT(bcc) },
    { "in-reply-to",               F_ENVELOPE,    AT(in_reply_to) },
    { "message-id",                F_ENVELOPE,    AT(message_id) },
};

struct header_state {
    char *ctype;            /* first Content-Type, unfolded */
    char *disposition;      /* first Content-Disposition, unfolded */
    bool seen_encoding;
};

static char **slot(struct mime_part *p, size_t offset)
{
    return (char **)(void *)((char *)p + offset);
}

static void take_field(struct ctx *c, struct mime_part *p, struct header_state *hs,
                       const struct mime_field *f, bool is_message)
{
    const struct field_rule *r = NULL;
    for (size_t i = 0; i < sizeof field_rules / sizeof field_rules[0]; i++) {
        if (mime_name_is(c->d, f, field_rules[i].name)) {
            r = &field_rules[i];
            break;
        }
    }
    if (!r || (r->kind == F_ENVELOPE && !is_message))
        return;
    char **dst;
    switch (r->kind) {
    case F_CTYPE:
        dst = &hs->ctype;
        break;
    case F_DISPOSITION:
        dst = &hs->disposition;
        break;
    case F_ENCODING:
        if (hs->seen_encoding)
            return;
        hs->seen_encoding = true;
        dst = slot(p, r->offset);
        break;
    default:
        dst = slot(p, r->offset);
        break;
    }
    if (*dst)
        return;
    *dst = mime_unfold(c->d, f->value, f->value_end);
    if (!*dst) {
        c->oom = true;
        return;
    }
    if (r->kind == F_ENCODING) {
        char *tok = mime_parse_token(*dst, &c->oom);
        free(*dst);
        *dst = tok;   /* NULL: invalid, the default applies */
    }
}

/*
 * Reads the header at p->header_start. Returns true when a boundary line cut
 * it short (*st set), false when it ended at an empty line or at the end of
 * the data (p->body_start set).
 */
static bool read_header(struct ctx *c, struct mime_part *p, struct header_state *hs,
                        bool is_message, struct stop *st)
{
    size_t pos = p->header_start;
    struct mime_field f;
    for (;;) {
        if (boundary_at(c, pos, st)) {
            /* RFC 2046 §5.1.1: a part header without its empty line. */
            c->repaired = true;
            p->body_start = end_before(c, *st, p->header_start);
            return true;
        }
        switch (mime_next_field(c->d, c->len, &pos, &f)) {
        case MIME_LINE_FIELD:
            take_field(c, p, hs, &f, is_message);
            break;
        case MIME_LINE_JUNK:
            c->repaired = true;
            break;
        case MIME_LINE_BLANK:
        case MIME_LINE_END:
            p->body_start = pos;
            return false;
        }
    }
}

static bool has_param(const struct mime_part *p, const char *name)
{
    for (unsigned i = 0; i < p->n_params; i++)
        if (strcmp(p->params[i].name, name) == 0)
            return true;
    return false;
}

static const char *param_value(const struct mime_part *p, const char *name)
{
    for (unsigned i = 0; i < p->n_params; i++)
        if (strcmp(p->params[i].name, name) == 0)
            return p->params[i].value;
    return NULL;
}

/* IMAP reports text/ * without a charset as charset "us-ascii" (RFC 2045
 * §5.2); keep it in the tree so every reader sees the same parameters. */
static void add_default_charset(struct ctx *c, struct mime_part *p)
{
    if (strcmp(p->type, "text") != 0 || has_param(p, "charset"))
        return;
    if (p->n_params >= MIME_MAX_PARAMS) {
        c->repaired = true;
        p->n_params--;
        free(p->params[p->n_params].name);
        free(p->params[p->n_params].value);
    }
    struct mime_param *np = realloc(p->params, (p->n_params + 1) * sizeof *np);
    if (!np) {
        c->oom = true;
        return;
    }
    p->params = np;
    np[p->n_params].name = dup_or_oom(c, "charset");
    np[p->n_params].value = dup_or_oom(c, "us-ascii");
    if (!np[p->n_params].name || !np[p->n_params].value) {
        free(np[p->n_params].name);
        free(np[p->n_params].value);
        return;
    }
    p->n_params++;
}

/* Content-* fields into the part; defaults per RFC 2045 §5.2 and, inside a
 * multipart/digest, message/rfc822 (RFC 2046 §5.1.5). */
static void apply_header(struct ctx *c, struct mime_part *p, struct header_state *hs,
                         bool in_digest)
{
    bool trunc = false;
    int rc = 0;
    if (hs->ctype) {
        rc = mime_parse_content_type(hs->ctype, &p->type, &p->subtype,
                                     &p->params, &p->n_params, &trunc);
        if (rc < 0)
            c->oom = true;
        else if (rc == 0)
            c->repaired = true;
    }
    if (rc <= 0) {
        p->type = dup_or_oom(c, in_digest ? "message" : "text");
        p->subtype = dup_or_oom(c, in_digest ? "rfc822" : "plain");
    }
    if (p->type)
        add_default_charset(c, p);
    if (hs->disposition) {
        rc = mime_parse_disposition(hs->disposition, &p->disposition,
                                    &p->disp_params, &p->n_disp_params, &trunc);
        if (rc < 0)
            c->oom = true;
    }
    if (!p->encoding)
        p->encoding = dup_or_oom(c, "7bit");
    if (trunc)
        c->repaired = true;
    free(hs->ctype);
    free(hs->disposition);
    hs->ctype = hs->disposition = NULL;
}

/* ---------------------------------------------------------------- body */

static struct stop parse_part(struct ctx *c, struct mime_part *p, size_t start,
                              unsigned depth, bool is_message, bool in_digest);

static bool add_child(struct ctx *c, struct mime_part *p, unsigned *cap)
{
    if (p->n_children == *cap) {
        unsigned ncap = *cap ? *cap * 2 : 4;
        struct mime_part *nc = realloc(p->children, ncap * sizeof *nc);
        if (!nc) {
            c->oom = true;
            return false;
        }
        p->children = nc;
        *cap = ncap;
    }
    memset(&p->children[p->n_children], 0, sizeof p->children[0]);
    p->n_children++;
    c->n_parts++;
    return true;
}

/* RFC 2046 §5.1.1: preamble, parts, closing delimiter, epilogue. */
static struct stop parse_multipart(struct ctx *c, struct mime_part *p, const char *bnd,
                                   unsigned depth)
{
    unsigned own = c->nb;
    c->stack[c->nb++] = (struct boundary){ bnd, strlen(bnd) };
    p->multipart = true;
    bool digest = strcmp(p->subtype, "digest") == 0;
    unsigned cap = 0;

    struct stop st = find_boundary(c, p->body_start);   /* skips the preamble */
    while (!c->oom) {
        if (st.which != (int)own) {
            /* Missing closing delimiter: a parent boundary or the end. */
            c->repaired = true;
            break;
        }
        size_t next = next_line(c, st.line);
        if (st.closing) {
            c->nb = own;
            return find_boundary(c, next);                 /* skips the epilogue */
        }
        if (c->n_parts >= MIME_MAX_PARTS) {
            c->repaired = true;
            st = find_boundary(c, next);
            continue;
        }
        if (!add_child(c, p, &cap))
            break;
        st = parse_part(c, &p->children[p->n_children - 1], next, depth + 1, false, digest);
    }
    c->nb = own;
    return st;
}

static bool is_message_type(const struct mime_part *p)
{
    return strcmp(p->type, "message") == 0
           && (strcmp(p->subtype, "rfc822") == 0 || strcmp(p->subtype, "global") == 0);
}

static struct stop parse_part(struct ctx *c, struct mime_part *p, size_t start,
                              unsigned depth, bool is_message, bool in_digest)
{
    struct header_state hs = { 0 };
    struct stop st;
    p->header_start = start;
    bool cut = read_header(c, p, &hs, is_message, &st);
    apply_header(c, p, &hs, in_digest);
    if (c->oom)
        return (struct stop){ c->len, -1, false };
    if (cut) {
        p->end = p->body_start;
        if (p->end > c->done)
            c->done = p->end;
        return st;
    }

    size_t lines0 = lf_before(c, p->body_start);
    bool deeper = depth + 1 < MIME_MAX_DEPTH;
    const char *bnd = strcmp(p->type, "multipart") == 0 ? param_value(p, "boundary") : NULL;

    if (bnd && *bnd && deeper) {
        st = parse_multipart(c, p, bnd, depth);
    } else if (is_message_type(p) && deeper && c->n_parts < MIME_MAX_PARTS) {
        p->message = calloc(1, sizeof *p->message);
        if (!p->message) {
            c->oom = true;
            return (struct stop){ c->len, -1, false };
        }
        c->n_parts++;
        st = parse_part(c, p->message, p->body_start, depth + 1, true, false);
    } else {
        /* A multipart without boundary is one opaque body, as in Dovecot. */
        if (strcmp(p->type, "multipart") == 0 || is_message_type(p))
            c->repaired = true;
        st = find_boundary(c, p->body_start);
    }
    if (c->oom)
        return (struct stop){ c->len, -1, false };

    p->end = end_before(c, st, p->body_start > c->done ? p->body_start : c->done);
    c->done = p->end;
    size_t lines = lf_before(c, p->end) - lines0;
    /* A last line without its line break still counts. */
    if (p->end > p->body_start && c->d[p->end - 1] != '\n')
        lines++;
    p->body_lines = lines > UINT32_MAX ? UINT32_MAX : (uint32_t)lines;
    return st;
}

struct mime_message *mime_parse(const char *data, size_t len)
{
    struct mime_message *msg = calloc(1, sizeof *msg);
    if (!msg)
        return NULL;
    struct ctx c = { .d = data ? data : "", .len = data ? len : 0 };
    c.n_parts = 1;
    parse_part(&c, &msg->root, 0, 0, true, false);
    if (c.oom) {
        mime_free(&msg);
        return NULL;
    }
    msg->n_parts = c.n_parts;
    msg->repaired = c.repaired;
    msg->size = c.len;
    return msg;
}

/* ---------------------------------------------------------------- free */

void mime_part_clear(struct mime_part *p)
{
    free(p->type);
    free(p->subtype);
    mime_params_free(&p->params, &p->n_params);
    free(p->id);
    free(p->description);
    free(p->encoding);
    free(p->md5);
    free(p->disposition);
    mime_params_free(&p->disp_params, &p->n_disp_params);
    free(p->language);
    free(p->location);
    for (unsigned i = 0; i < p->n_children; i++)
        mime_part_clear(&p->children[i]);
    free(p->children);
    if (p->message) {
        mime_part_clear(p->message);
        free(p->message);
    }
    free(p->date);
    free(p->subject);
    free(p->from);
    free(p->sender);
    free(p->reply_to);
    free(p->to);
    free(p->cc);
    free(p->bcc);
    free(p->in_reply_to);
    free(p->message_id);
    memset(p, 0, sizeof *p);
}

void mime_free(struct mime_message **msg)
{
    if (!msg || !*msg)
        return;
    mime_part_clear(&(*msg)->root);
    free(*msg);
    *msg = NULL;
}
