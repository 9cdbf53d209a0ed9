/*
 * encode.c — the stored form of a parse (mime_encode / mime_decode), so IMAP
 * answers ENVELOPE and BODYSTRUCTURE without reparsing. Format (docs/mime.md):
 *
 *   "PMIM" version(1) message-fields END
 *
 * Every field is a one-byte tag, (number << 2) | wire type, then its value:
 * VARINT (LEB128, at most 64 bits, minimal), STRING (varint length + bytes),
 * PAIR (two STRINGs) or GROUP (fields up to an END tag, 0x00). A reader skips
 * fields whose number it does not know, so optional fields can be added
 * without a new version; a change of meaning needs a new version, which old
 * readers reject (IMAP then parses the message again).
 *
 * The stored blob is read back from disk, so mime_decode treats it as hostile:
 * every length is checked against the bytes left before allocating, depth,
 * parts and parameters are bounded by the parser's limits, and a tree is
 * only returned when it has the invariants the parser guarantees.
 */
#include <stdlib.h>
#include <string.h>

#include "mime/mime-int.h"

#define ENC_MAGIC "PMIM"
#define ENC_MAGIC_LEN 4
/* Version 2 (Dovecot's reading): tokens and parameter names as written,
 * body_lines the LFs in the body, every From/To/... occurrence kept ("\n"
 * between), the last Date/Subject/... Version 1 trees (lowercased, one
 * line more for a body not ending in LF, first occurrences) still decode. */
#define ENC_VERSION 2
#define ENC_VERSION_MIN 1
#define ENC_VARINT_MAX 10   /* bytes of a 64-bit LEB128 */

enum wire { W_VARINT = 0, W_STRING = 1, W_PAIR = 2, W_GROUP = 3 };

#define TAG(num, wire) ((uint8_t)((num) << 2 | (wire)))
#define TAG_END 0x00
#define TAG_NUM(tag) ((tag) >> 2)
#define TAG_WIRE(tag) ((enum wire)((tag) & 3))

/* Message group. */
enum {
    M_SIZE = 1,        /* VARINT */
    M_N_PARTS = 2,     /* VARINT */
    M_FLAGS = 3,       /* VARINT: bit 0 repaired */
    M_ROOT = 4,        /* GROUP: part */
};
#define M_FLAG_REPAIRED 1u

/* Part group. Numbers 1..63; never reuse a number for another meaning. */
enum {
    P_HEADER_START = 1,   /* VARINT */
    P_HEADER_LEN = 2,     /* VARINT: body_start - header_start */
    P_BODY_LEN = 3,       /* VARINT: end - body_start */
    P_BODY_LINES = 4,     /* VARINT */
    P_FLAGS = 5,          /* VARINT: bit 0 multipart */
    P_PARAM = 8,          /* PAIR, repeated, in order */
    P_DISP_PARAM = 14,    /* PAIR, repeated, in order */
    P_CHILD = 17,         /* GROUP, repeated, in order */
    P_MESSAGE = 18,       /* GROUP */
};
#define P_FLAG_MULTIPART 1u

/* The string fields of a part: number and member. */
struct str_field {
    uint8_t num;
    bool required;
    size_t offset;
};

#define AT(member) offsetof(struct mime_part, member)

static const struct str_field str_fields[] = {
    { 6,  true,  AT(type) },
    { 7,  true,  AT(subtype) },
    { 9,  false, AT(id) },
    { 10, false, AT(description) },
    { 11, true,  AT(encoding) },
    { 12, false, AT(md5) },
    { 13, false, AT(disposition) },
    { 15, false, AT(language) },
    { 16, false, AT(location) },
    { 19, false, AT(date) },
    { 20, false, AT(subject) },
    { 21, false, AT(from) },
    { 22, false, AT(sender) },
    { 23, false, AT(reply_to) },
    { 24, false, AT(to) },
    { 25, false, AT(cc) },
    { 26, false, AT(bcc) },
    { 27, false, AT(in_reply_to) },
    { 28, false, AT(message_id) },
};
#define N_STR_FIELDS (sizeof str_fields / sizeof str_fields[0])

static char **str_slot(struct mime_part *p, size_t offset)
{
    return (char **)(void *)((char *)p + offset);
}

static const char *str_get(const struct mime_part *p, size_t offset)
{
    return *(char *const *)(const void *)((const char *)p + offset);
}

/* ------------------------------------------------------------- writer */

struct writer {
    uint8_t *buf;
    size_t len, cap;
    bool oom;
};

static bool w_reserve(struct writer *w, size_t n)
{
    if (w->oom)
        return false;
    if (n <= w->cap - w->len)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb) {
        w->oom = true;
        return false;
    }
    w->buf = nb;
    w->cap = cap;
    return true;
}

static void w_bytes(struct writer *w, const void *p, size_t n)
{
    if (n && w_reserve(w, n)) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
}

static void w_byte(struct writer *w, uint8_t b)
{
    w_bytes(w, &b, 1);
}

static void w_varint(struct writer *w, uint64_t v)
{
    uint8_t tmp[ENC_VARINT_MAX];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    w_bytes(w, tmp, n);
}

/* Zero values are left out: a reader takes an absent VARINT as 0. */
static void w_field_varint(struct writer *w, uint8_t num, uint64_t v)
{
    if (v == 0)
        return;
    w_byte(w, TAG(num, W_VARINT));
    w_varint(w, v);
}

static void w_string(struct writer *w, const char *s)
{
    size_t n = strlen(s);
    w_varint(w, n);
    w_bytes(w, s, n);
}

static void w_params(struct writer *w, uint8_t num, const struct mime_param *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        w_byte(w, TAG(num, W_PAIR));
        w_string(w, p[i].name ? p[i].name : "");
        w_string(w, p[i].value ? p[i].value : "");
    }
}

/* Canonical order: the same tree always gives the same bytes. Offsets as
 * differences keep the varints short; a tree breaking header_start <=
 * body_start <= end encodes to something mime_decode rejects. */
static void w_part(struct writer *w, const struct mime_part *p)
{
    w_field_varint(w, P_HEADER_START, p->header_start);
    w_field_varint(w, P_HEADER_LEN, (uint64_t)(p->body_start - p->header_start));
    w_field_varint(w, P_BODY_LEN, (uint64_t)(p->end - p->body_start));
    w_field_varint(w, P_BODY_LINES, p->body_lines);
    w_field_varint(w, P_FLAGS, p->multipart ? P_FLAG_MULTIPART : 0);
    for (size_t i = 0; i < N_STR_FIELDS; i++) {
        const char *s = str_get(p, str_fields[i].offset);
        if (s) {
            w_byte(w, TAG(str_fields[i].num, W_STRING));
            w_string(w, s);
        }
    }
    w_params(w, P_PARAM, p->params, p->n_params);
    w_params(w, P_DISP_PARAM, p->disp_params, p->n_disp_params);
    for (unsigned i = 0; i < p->n_children; i++) {
        w_byte(w, TAG(P_CHILD, W_GROUP));
        w_part(w, &p->children[i]);
    }
    if (p->message) {
        w_byte(w, TAG(P_MESSAGE, W_GROUP));
        w_part(w, p->message);
    }
    w_byte(w, TAG_END);
}

char *mime_encode(const struct mime_message *msg, size_t *len)
{
    if (!msg || !len)
        return NULL;
    struct writer w = { 0 };
    w_bytes(&w, ENC_MAGIC, ENC_MAGIC_LEN);
    w_byte(&w, ENC_VERSION);
    w_field_varint(&w, M_SIZE, msg->size);
    w_field_varint(&w, M_N_PARTS, msg->n_parts);
    w_field_varint(&w, M_FLAGS, msg->repaired ? M_FLAG_REPAIRED : 0);
    w_byte(&w, TAG(M_ROOT, W_GROUP));
    w_part(&w, &msg->root);
    w_byte(&w, TAG_END);
    if (w.oom) {
        free(w.buf);
        return NULL;
    }
    *len = w.len;
    return (char *)w.buf;
}

/* ------------------------------------------------------------- reader */

struct reader {
    const uint8_t *p;
    size_t n, i;
    unsigned parts;         /* parts decoded so far */
};

static bool r_byte(struct reader *r, uint8_t *b)
{
    if (r->i >= r->n)
        return false;
    *b = r->p[r->i++];
    return true;
}

/* LEB128, at most 64 bits, minimal (no trailing zero groups): one value has
 * one encoding. */
static bool r_varint(struct reader *r, uint64_t *v)
{
    uint64_t out = 0;
    for (unsigned k = 0; k < ENC_VARINT_MAX; k++) {
        uint8_t b;
        if (!r_byte(r, &b))
            return false;
        uint64_t bits = b & 0x7f;
        if (k == ENC_VARINT_MAX - 1 && bits > 1)
            return false;                       /* past 64 bits */
        out |= bits << (7 * k);
        if (!(b & 0x80)) {
            if (k > 0 && b == 0)
                return false;                   /* not minimal */
            *v = out;
            return true;
        }
    }
    return false;
}

static bool r_size(struct reader *r, size_t *v)
{
    uint64_t u;
    if (!r_varint(r, &u) || u > SIZE_MAX)
        return false;
    *v = (size_t)u;
    return true;
}

/* A string's bytes in the input; checked against what is left. */
static bool r_span(struct reader *r, const uint8_t **s, size_t *len)
{
    size_t n;
    if (!r_size(r, &n) || n > r->n - r->i)
        return false;
    *s = r->p + r->i;
    *len = n;
    r->i += n;
    return true;
}

/* A C string: no NUL inside (the parser never makes one). *out stays NULL
 * on failure; corrupt input and out of memory both fail the decode. */
static bool r_string(struct reader *r, char **out)
{
    const uint8_t *s;
    size_t n;
    *out = NULL;
    if (!r_span(r, &s, &n) || memchr(s, '\0', n))
        return false;
    char *c = malloc(n + 1);
    if (!c)
        return false;
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return true;
}

static bool skip_value(struct reader *r, enum wire wire, unsigned depth);

/* Fields of an unknown group, up to its END. */
static bool skip_group(struct reader *r, unsigned depth)
{
    if (depth >= MIME_MAX_DEPTH)
        return false;
    for (;;) {
        uint8_t tag;
        if (!r_byte(r, &tag))
            return false;
        if (tag == TAG_END)
            return true;
        if (TAG_NUM(tag) == 0 || !skip_value(r, TAG_WIRE(tag), depth + 1))
            return false;
    }
}

static bool skip_value(struct reader *r, enum wire wire, unsigned depth)
{
    uint64_t v;
    const uint8_t *s;
    size_t n;
    switch (wire) {
    case W_VARINT:
        return r_varint(r, &v);
    case W_STRING:
        return r_span(r, &s, &n);
    case W_PAIR:
        return r_span(r, &s, &n) && r_span(r, &s, &n);
    case W_GROUP:
        return skip_group(r, depth);
    }
    return false;
}

static bool r_param(struct reader *r, struct mime_param **params, unsigned *n)
{
    if (*n >= MIME_MAX_PARAMS)
        return false;
    struct mime_param *np = realloc(*params, (*n + 1) * sizeof *np);
    if (!np)
        return false;
    *params = np;
    struct mime_param *p = &np[*n];
    if (!r_string(r, &p->name))
        return false;
    if (!r_string(r, &p->value)) {
        free(p->name);
        return false;
    }
    (*n)++;
    return true;
}

static bool r_part(struct reader *r, struct mime_part *p, unsigned depth);

static bool r_child(struct reader *r, struct mime_part *p, unsigned *cap, unsigned depth)
{
    if (p->n_children == *cap) {
        /* Grows with what is actually in the input, never to a count it
         * announces; r_part bounds the total by MIME_MAX_PARTS. */
        unsigned ncap = *cap ? *cap * 2 : 4;
        struct mime_part *nc = realloc(p->children, ncap * sizeof *nc);
        if (!nc)
            return false;
        p->children = nc;
        *cap = ncap;
    }
    struct mime_part *c = &p->children[p->n_children];
    memset(c, 0, sizeof *c);
    p->n_children++;    /* counted before filling: a failure frees it */
    return r_part(r, c, depth + 1);
}

static const struct str_field *str_field_of(unsigned num)
{
    for (size_t i = 0; i < N_STR_FIELDS; i++)
        if (str_fields[i].num == num)
            return &str_fields[i];
    return NULL;
}

/* The parser's invariants on one decoded part; its children were checked
 * when they were decoded, the bound by the message size is checked at the
 * end (fields come in any order, M_SIZE may follow M_ROOT). */
static bool part_valid(const struct mime_part *p)
{
    for (size_t i = 0; i < N_STR_FIELDS; i++)
        if (str_fields[i].required && !str_get(p, str_fields[i].offset))
            return false;
    if (p->n_children && !p->multipart)
        return false;
    if (p->message && p->multipart)
        return false;
    for (unsigned i = 0; i < p->n_children; i++) {
        const struct mime_part *c = &p->children[i];
        if (c->header_start < p->body_start || c->end > p->end)
            return false;
    }
    if (p->message && (p->message->header_start < p->body_start || p->message->end > p->end))
        return false;
    return true;
}

/* One part group, after its tag. On failure what was read stays in *p for
 * mime_part_clear to free. */
static bool r_part(struct reader *r, struct mime_part *p, unsigned depth)
{
    if (depth >= MIME_MAX_DEPTH || r->parts >= MIME_MAX_PARTS)
        return false;
    r->parts++;
    uint64_t seen = 0;      /* scalar field numbers read: duplicates are corrupt */
    size_t header_len = 0, body_len = 0;
    unsigned cap = 0;
    for (;;) {
        uint8_t tag;
        if (!r_byte(r, &tag))
            return false;
        if (tag == TAG_END)
            break;
        unsigned num = TAG_NUM(tag);
        enum wire wire = TAG_WIRE(tag);
        if (num == 0)
            return false;
        bool repeated = num == P_PARAM || num == P_DISP_PARAM || num == P_CHILD;
        if (!repeated) {
            if (seen & (UINT64_C(1) << num))
                return false;
            seen |= UINT64_C(1) << num;
        }
        const struct str_field *sf = str_field_of(num);
        uint64_t v;
        switch (num) {
        case P_HEADER_START:
        case P_HEADER_LEN:
        case P_BODY_LEN:
            if (wire != W_VARINT)
                return false;
            if (!r_size(r, num == P_HEADER_START ? &p->header_start
                           : num == P_HEADER_LEN ? &header_len : &body_len))
                return false;
            break;
        case P_BODY_LINES:
            if (wire != W_VARINT || !r_varint(r, &v) || v > UINT32_MAX)
                return false;
            p->body_lines = (uint32_t)v;
            break;
        case P_FLAGS:
            if (wire != W_VARINT || !r_varint(r, &v) || (v & ~(uint64_t)P_FLAG_MULTIPART))
                return false;
            p->multipart = v & P_FLAG_MULTIPART;
            break;
        case P_PARAM:
            if (wire != W_PAIR || !r_param(r, &p->params, &p->n_params))
                return false;
            break;
        case P_DISP_PARAM:
            if (wire != W_PAIR || !r_param(r, &p->disp_params, &p->n_disp_params))
                return false;
            break;
        case P_CHILD:
            if (wire != W_GROUP || !r_child(r, p, &cap, depth))
                return false;
            break;
        case P_MESSAGE:
            if (wire != W_GROUP)
                return false;
            p->message = calloc(1, sizeof *p->message);
            if (!p->message || !r_part(r, p->message, depth + 1))
                return false;
            break;
        default:
            if (sf) {
                if (wire != W_STRING || !r_string(r, str_slot(p, sf->offset)))
                    return false;
            } else if (!skip_value(r, wire, depth + 1)) {
                return false;
            }
            break;
        }
    }
    /* Offsets are known only now: fields come in any order. */
    if (header_len > SIZE_MAX - p->header_start
        || body_len > SIZE_MAX - p->header_start - header_len)
        return false;
    p->body_start = p->header_start + header_len;
    p->end = p->body_start + body_len;
    return part_valid(p);
}

/* Every offset within the message: the part ends bound everything else. */
static bool tree_within(const struct mime_part *p, size_t size)
{
    if (p->end > size)
        return false;
    for (unsigned i = 0; i < p->n_children; i++)
        if (!tree_within(&p->children[i], size))
            return false;
    return !p->message || tree_within(p->message, size);
}

bool mime_encoded_is_current(const char *data, size_t len)
{
    return data && len > ENC_MAGIC_LEN && memcmp(data, ENC_MAGIC, ENC_MAGIC_LEN) == 0 &&
           (uint8_t)data[ENC_MAGIC_LEN] == ENC_VERSION;
}

struct mime_message *mime_decode(const char *data, size_t len)
{
    if (!data || len < ENC_MAGIC_LEN + 1 || memcmp(data, ENC_MAGIC, ENC_MAGIC_LEN) != 0
        || (uint8_t)data[ENC_MAGIC_LEN] < ENC_VERSION_MIN
        || (uint8_t)data[ENC_MAGIC_LEN] > ENC_VERSION)
        return NULL;
    struct mime_message *msg = calloc(1, sizeof *msg);
    if (!msg)
        return NULL;
    struct reader r = { (const uint8_t *)data, len, ENC_MAGIC_LEN + 1, 0 };
    uint64_t seen = 0, n_parts = 0, flags = 0;
    for (;;) {
        uint8_t tag;
        if (!r_byte(&r, &tag))
            goto bad;
        if (tag == TAG_END)
            break;
        unsigned num = TAG_NUM(tag);
        enum wire wire = TAG_WIRE(tag);
        if (num == 0 || (seen & (UINT64_C(1) << num)))
            goto bad;
        seen |= UINT64_C(1) << num;
        bool ok;
        switch (num) {
        case M_SIZE:
            ok = wire == W_VARINT && r_size(&r, &msg->size);
            break;
        case M_N_PARTS:
            ok = wire == W_VARINT && r_varint(&r, &n_parts);
            break;
        case M_FLAGS:
            ok = wire == W_VARINT && r_varint(&r, &flags)
                 && !(flags & ~(uint64_t)M_FLAG_REPAIRED);
            break;
        case M_ROOT:
            ok = wire == W_GROUP && r_part(&r, &msg->root, 0);
            break;
        default:
            ok = skip_value(&r, wire, 0);
            break;
        }
        if (!ok)
            goto bad;
    }
    if (r.i != r.n || !(seen & (UINT64_C(1) << M_ROOT)))
        goto bad;
    if (n_parts != r.parts || !tree_within(&msg->root, msg->size))
        goto bad;
    msg->n_parts = r.parts;
    msg->repaired = flags & M_FLAG_REPAIRED;
    return msg;
bad:
    mime_free(&msg);
    return NULL;
}
