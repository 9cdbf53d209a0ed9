/*
 * parse.c — the MIME tree (RFC 2045, RFC 2046). One forward pass over the
 * message: every line start is looked at once, at the innermost multipart
 * open there, so the parse is linear in the size of the message.
 *
 * The structure is the one Dovecot's lib-mail message-parser.c finds, so
 * IMAP BODYSTRUCTURE matches Dovecot's (docs/mime.md "IMAP views"):
 *
 *  - Boundaries (RFC 2046 §5.1.1): a line starting with "--" + the
 *    boundary (its first BOUNDARY_MAX bytes) of an open multipart. A prefix
 *    match; of several, the longest wins, the innermost on a tie, and the
 *    search stops at one that is the whole line (or the line but a final
 *    "--").
 *  - The line break before a boundary line belongs to the boundary, unless
 *    it was taken already: the rest of a boundary line (through its LF)
 *    belongs to that boundary's multipart, so a boundary line right after
 *    another one, or right after a part's header, takes no line break.
 *  - Content-* fields count in a message (the root, an inner message) only
 *    with MIME-Version or Content-Type in its header; in a part of a
 *    multipart always.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime-int.h"

/* Dovecot's BOUNDARY_STRING_MAX_LEN: only this much of a boundary counts. */
#define BOUNDARY_MAX 80

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
    /* End of the last finished part: a later end never moves before it. */
    size_t done;
    /* Everything before this belongs to what was parsed already: set past a
     * boundary line, and to the boundary line that cut a header short. A
     * line break before it is not the next boundary's to take. */
    size_t taken;
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

/* Is the line at pos a boundary line of an open multipart? (Dovecot's
 * boundary_line_find and boundary_find.) */
static bool boundary_at(const struct ctx *c, size_t pos, struct stop *st)
{
    const char *d = c->d;
    if (c->nb == 0 || pos + 2 > c->len || d[pos] != '-' || d[pos + 1] != '-')
        return false;
    size_t s = pos + 2;
    const char *lf = memchr(d + s, '\n', c->len - s);
    size_t len;
    bool dashes = false;
    if (lf) {
        len = (size_t)(lf - (d + s));
        if (len > 0 && d[s + len - 1] == '\r')
            len--;
        dashes = len > 2 && d[s + len - 1] == '-' && d[s + len - 2] == '-';
    } else {
        len = c->len - s;
        if (len > BOUNDARY_MAX + 4)
            len = BOUNDARY_MAX + 4;
    }
    int best = -1;
    for (int i = (int)c->nb - 1; i >= 0; i--) {
        const struct boundary *b = &c->stack[i];
        if (b->len <= len && memcmp(d + s, b->s, b->len) == 0
            && (best < 0 || c->stack[best].len < b->len)) {
            best = i;
            if (b->len == len || (dashes && b->len + 2 == len))
                break;   /* the whole line: nothing can match better */
        }
    }
    if (best < 0)
        return false;
    size_t after = s + c->stack[best].len;
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

/* A body ends before the line break that precedes its boundary line, when
 * that line break lies after floor (nothing took it yet). */
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

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* -------------------------------------------------------------- header */

enum field_kind {
    F_RAW,          /* the first occurrence wins */
    F_STRING,       /* envelope string: the last occurrence wins (Dovecot) */
    F_ADDRESS,      /* envelope addresses: every occurrence, "\n" between */
    F_CTYPE,        /* the first wins, even when invalid */
    F_DISPOSITION,  /* a later one replaces one without parameters */
    F_ENCODING,     /* the first valid one wins */
    F_LANGUAGE,     /* the first valid one wins */
    F_MIME_VERSION,
};

struct field_rule {
    const char *name;
    enum field_kind kind;
    size_t offset;          /* of the char * member in struct mime_part */
};

#define AT(member) offsetof(struct mime_part, member)

/* Header fields kept in the tree (Dovecot's message-part-data.c rules). */
static const struct field_rule field_rules[] = {
    { "content-type",              F_CTYPE,        0 },
    { "content-transfer-encoding", F_ENCODING,     AT(encoding) },
    { "content-disposition",       F_DISPOSITION,  0 },
    { "content-id",                F_RAW,          AT(id) },
    { "content-description",       F_RAW,          AT(description) },
    { "content-md5",               F_RAW,          AT(md5) },
    { "content-language",          F_LANGUAGE,     AT(language) },
    { "content-location",          F_RAW,          AT(location) },
    { "mime-version",              F_MIME_VERSION, 0 },
    { "date",                      F_STRING,       AT(date) },
    { "subject",                   F_STRING,       AT(subject) },
    { "from",                      F_ADDRESS,      AT(from) },
    { "sender",                    F_ADDRESS,      AT(sender) },
    { "reply-to",                  F_ADDRESS,      AT(reply_to) },
    { "to",                        F_ADDRESS,      AT(to) },
    { "cc",                        F_ADDRESS,      AT(cc) },
    { "bcc",                       F_ADDRESS,      AT(bcc) },
    { "in-reply-to",               F_STRING,       AT(in_reply_to) },
    { "message-id",                F_STRING,       AT(message_id) },
};

struct header_state {
    char *ctype;            /* first Content-Type */
    bool mime_version;      /* MIME-Version seen */
};

static char **slot(struct mime_part *p, size_t offset)
{
    return (char **)(void *)((char *)p + offset);
}

static bool is_envelope(enum field_kind k)
{
    return k == F_STRING || k == F_ADDRESS;
}

/* Content-Disposition: Dovecot parses each one while the part has none
 * with parameters yet, the last parsed wins. */
static void take_disposition(struct ctx *c, struct mime_part *p, const char *value)
{
    if (p->n_disp_params > 0)
        return;
    char *disp = NULL;
    struct mime_param *params = NULL;
    unsigned n = 0;
    bool trunc = false;
    int rc = mime_parse_disposition(value, &disp, &params, &n, &trunc);
    if (rc < 0) {
        c->oom = true;
        return;
    }
    if (rc == 0)
        return;
    free(p->disposition);
    mime_params_free(&p->disp_params, &p->n_disp_params);
    p->disposition = disp;
    p->disp_params = params;
    p->n_disp_params = n;
    if (trunc)
        c->repaired = true;
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
    if (!r || (is_envelope(r->kind) && !is_message))
        return;
    if (r->kind == F_MIME_VERSION) {
        hs->mime_version = true;
        return;
    }
    char **dst = NULL;
    if (r->kind == F_CTYPE)
        dst = &hs->ctype;
    else if (r->kind != F_DISPOSITION)
        dst = slot(p, r->offset);
    if (dst && *dst && (r->kind == F_RAW || r->kind == F_CTYPE || r->kind == F_ENCODING
                        || r->kind == F_LANGUAGE))
        return;
    if (r->kind == F_DISPOSITION && p->n_disp_params > 0)
        return;
    /* Line breaks of folds kept (IMAP writes such a string as Dovecot
     * does); an address field gets none, "\n" separates its occurrences. */
    char *v = mime_field_value(c->d, f->value, f->value_end, r->kind != F_ADDRESS);
    if (!v) {
        c->oom = true;
        return;
    }
    switch (r->kind) {
    case F_ENCODING: {
        char *tok = mime_parse_token(v, &c->oom);
        free(v);
        *dst = tok;   /* NULL: invalid, a later one may count */
        return;
    }
    case F_LANGUAGE:
        if (!mime_language_valid(v)) {
            free(v);
            return;
        }
        break;
    case F_DISPOSITION:
        take_disposition(c, p, v);
        free(v);
        return;
    case F_ADDRESS:
        if (*dst) {
            size_t a = strlen(*dst), b = strlen(v);
            char *j = realloc(*dst, a + b + 2);
            if (!j) {
                free(v);
                c->oom = true;
                return;
            }
            j[a] = '\n';
            memcpy(j + a + 1, v, b + 1);
            free(v);
            *dst = j;
            return;
        }
        break;
    case F_STRING:
        free(*dst);
        break;
    default:
        break;
    }
    *dst = v;
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
            /* RFC 2046 §5.1.1: a part header without its empty line. The
             * line break before the boundary is the parent's (Dovecot). */
            c->repaired = true;
            p->body_start = end_before(c, *st, p->header_start);
            c->taken = st->line;
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

static bool is_type(const struct mime_part *p, const char *type)
{
    return strcasecmp(p->type, type) == 0;
}

static const char *param_value(const struct mime_part *p, const char *name)
{
    for (unsigned i = 0; i < p->n_params; i++)
        if (strcasecmp(p->params[i].name, name) == 0)
            return p->params[i].value;
    return NULL;
}

/* IMAP reports text/ * without a charset as charset "us-ascii" (RFC 2045
 * §5.2); keep it in the tree so every reader sees the same parameters. */
static void add_default_charset(struct ctx *c, struct mime_part *p)
{
    if (!is_type(p, "text") || param_value(p, "charset"))
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

/* Drops the Content-* fields of a message that is not MIME. */
static void forget_content(struct mime_part *p)
{
    char **fields[] = { &p->encoding, &p->id, &p->description, &p->md5, &p->disposition,
                        &p->language, &p->location };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
    mime_params_free(&p->disp_params, &p->n_disp_params);
}

/* Content-* fields into the part; defaults per RFC 2045 §5.2 and, inside a
 * multipart/digest, message/rfc822 (RFC 2046 §5.1.5). */
static void apply_header(struct ctx *c, struct mime_part *p, struct header_state *hs,
                         bool is_message, bool in_digest)
{
    if (is_message && !hs->mime_version && !hs->ctype)
        forget_content(p);
    if (hs->ctype) {
        bool trunc = false;
        int rc = mime_parse_content_type(hs->ctype, &p->type, &p->subtype,
                                         &p->params, &p->n_params, &trunc);
        if (rc < 0)
            c->oom = true;
        else if (rc == 0)
            c->repaired = true;
        if (trunc)
            c->repaired = true;
    } else {
        p->type = dup_or_oom(c, in_digest ? "message" : "text");
        p->subtype = dup_or_oom(c, in_digest ? "rfc822" : "plain");
    }
    if (p->type && p->subtype)
        add_default_charset(c, p);
    if (!p->encoding)
        p->encoding = dup_or_oom(c, "7bit");
    free(hs->ctype);
    hs->ctype = NULL;
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
    size_t blen = strlen(bnd);
    c->stack[c->nb++] = (struct boundary){ bnd, blen < BOUNDARY_MAX ? blen : BOUNDARY_MAX };
    bool digest = strcasecmp(p->subtype, "digest") == 0;
    unsigned cap = 0;

    struct stop st = find_boundary(c, p->body_start);   /* skips the preamble */
    while (!c->oom) {
        if (st.which != (int)own) {
            /* Missing closing delimiter: a parent boundary or the end. */
            c->repaired = true;
            break;
        }
        size_t next = next_line(c, st.line);
        c->taken = next;   /* the boundary line is the multipart's */
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

static bool is_rfc822(const struct mime_part *p)
{
    return is_type(p, "message") && strcasecmp(p->subtype, "rfc822") == 0;
}

/* An inner message with nothing in it, where a cut header left its
 * message/rfc822 part (Dovecot still opens the inner message there). */
static void empty_message(struct ctx *c, struct mime_part *p)
{
    p->message = calloc(1, sizeof *p->message);
    if (!p->message) {
        c->oom = true;
        return;
    }
    c->n_parts++;
    struct mime_part *m = p->message;
    m->header_start = m->body_start = m->end = p->body_start;
    struct header_state hs = { 0 };
    apply_header(c, m, &hs, true, false);
}

static struct stop parse_part(struct ctx *c, struct mime_part *p, size_t start,
                              unsigned depth, bool is_message, bool in_digest)
{
    struct header_state hs = { 0 };
    struct stop st;
    p->header_start = start;
    bool cut = read_header(c, p, &hs, is_message, &st);
    apply_header(c, p, &hs, is_message, in_digest);
    if (c->oom)
        return (struct stop){ c->len, -1, false };

    bool deeper = depth + 1 < MIME_MAX_DEPTH;
    bool multipart = is_type(p, "multipart") && p->subtype[0] != '\0';
    bool message = is_rfc822(p) && deeper && c->n_parts < MIME_MAX_PARTS;
    if (multipart && !deeper) {
        multipart = false;   /* one opaque body */
        c->repaired = true;
    }
    if (is_rfc822(p) && !message)
        c->repaired = true;

    if (cut) {
        p->end = p->body_start;
        p->multipart = multipart;
        if (message)
            empty_message(c, p);
        if (p->end > c->done)
            c->done = p->end;
        return st;
    }

    size_t lines0 = lf_before(c, p->body_start);
    const char *bnd = multipart ? param_value(p, "boundary") : NULL;
    p->multipart = multipart;
    if (bnd) {
        st = parse_multipart(c, p, bnd, depth);
    } else if (message) {
        p->message = calloc(1, sizeof *p->message);
        if (!p->message) {
            c->oom = true;
            return (struct stop){ c->len, -1, false };
        }
        c->n_parts++;
        st = parse_part(c, p->message, p->body_start, depth + 1, true, false);
    } else {
        /* A multipart without a boundary has no parts, its body is one
         * (Dovecot shows an empty text/plain part). */
        if (multipart)
            c->repaired = true;
        st = find_boundary(c, p->body_start);
    }
    if (c->oom)
        return (struct stop){ c->len, -1, false };

    p->end = end_before(c, st, max3(p->body_start, c->done, c->taken));
    c->done = p->end;
    /* IMAP line count: the LFs in the body (Dovecot). */
    size_t lines = lf_before(c, p->end) - lines0;
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
