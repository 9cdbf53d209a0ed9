/*
 * The IMAP reader and argument parsers against any bytes, fed as a client
 * would send them: lines, and literal bytes when the reader asks for them.
 * Each complete command goes through imap_parse_search (SEARCH), through
 * imap_parse_fetch (FETCH), its sequence sets through imap_seqset_*, and
 * every atom and string through the sequence-set, FETCH-attribute,
 * modified UTF-7, flag and date parsers. Properties checked:
 *  - the reader's state is what feed_line returned; a literal takes at most
 *    what remains; BAD and FATAL come with an error class and text;
 *  - a READY command respects the limits (tokens, depth, literal sizes),
 *    its counts match its lists, and its strings are NUL-terminated;
 *  - search trees have the shape of their keys (OR two children, NOT one);
 *  - fetch bodies obey RFC 3501/3516 (MIME after a part, BINARY parts only,
 *    length > 0, VANISHED with CHANGEDSINCE) and parse again from text;
 *  - resolved sequence sets are sorted, merged and iterate what they hold;
 *  - modified UTF-7: what decodes encodes back to itself, and what encodes
 *    decodes back to itself.
 *
 * Byte 0 of the input chooses the mode, the rest is the client's stream:
 *   bit 0  UTF8=ACCEPT          bit 2  small limits
 *   bit 1  stream APPEND data   bit 3  refuse synchronising literals
 *   bits 4-7  literal bytes per feed, minus one
 * Seeds start with a letter: '@' (0x40) is no flag and 5-byte pieces.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

enum {
    MODE_UTF8 = 1 << 0,
    MODE_STREAM = 1 << 1,
    MODE_SMALL = 1 << 2,
    MODE_REFUSE_SYNC = 1 << 3,
};

/* ------------------------------------------------------------ reader */

struct counts {
    size_t tokens;
    unsigned depth;
};

static void check_args(const struct imap_arg *a, size_t n, unsigned depth,
                       const struct imap_limits *l, struct counts *c)
{
    size_t seen = 0;
    if (depth > c->depth)
        c->depth = depth;
    for (; a; a = a->next, seen++) {
        c->tokens++;
        switch (a->type) {
        case IMAP_ARG_LIST:
            check_args(a->child, a->count, depth + 1, l, c);
            break;
        case IMAP_ARG_LITERAL:
            CHECK(a->len <= (l->max_message > l->max_literal ? l->max_message
                                                             : l->max_literal));
            CHECK(a->streamed == (a->str == NULL));
            if (a->str)
                CHECK(a->str[a->len] == 0);
            break;
        case IMAP_ARG_ATOM:
        case IMAP_ARG_NIL:
        case IMAP_ARG_QUOTED:
            CHECK(a->str && a->str[a->len] == 0 && strlen(a->str) == a->len);
            CHECK(a->type == IMAP_ARG_QUOTED || a->len > 0);
            break;
        }
    }
    CHECK(seen == n);
}

static void check_command(const struct imap_command *cmd, const struct imap_limits *l)
{
    CHECK(cmd->tag && cmd->tag[0]);
    for (const char *s = cmd->name; *s; s++)
        CHECK(!(*s >= 'a' && *s <= 'z'));
    struct counts c = { 0, 0 };
    check_args(cmd->args, cmd->nargs, 0, l, &c);
    CHECK(c.tokens <= l->max_tokens);
    CHECK(c.depth <= l->max_depth);
}

/* ------------------------------------------------------------ sequence sets */

static void check_normal(const struct imap_seqset *s)
{
    CHECK(!s->star);
    for (size_t i = 0; i < s->count; i++) {
        CHECK(s->ranges[i].lo >= 1 && s->ranges[i].lo <= s->ranges[i].hi);
        if (i)
            CHECK(s->ranges[i - 1].hi < UINT32_MAX &&
                  s->ranges[i - 1].hi + 1 < s->ranges[i].lo);
    }
}

static void check_members(const struct imap_seqset *s)
{
    struct imap_seqset_iter it = { 0 };
    uint32_t n, prev = 0;
    for (int i = 0; i < 64 && imap_seqset_next(s, &it, &n); i++) {
        CHECK(n > prev && imap_seqset_contains(s, n));
        prev = n;
    }
    for (size_t i = 0; i < s->count; i++) {
        CHECK(imap_seqset_contains(s, s->ranges[i].hi));
        CHECK(!imap_seqset_contains(s, s->ranges[i].lo - 1));
    }
}

static void check_seqset(struct imap_arena *a, const char *str, size_t len)
{
    struct imap_seqset set, out;
    int rc = imap_seqset_parse(a, str, len, IMAP_SEQSET_ALLOW_SAVED, &set);
    CHECK(rc == 0 || rc == IMAP_PERR_SYNTAX || rc == IMAP_PERR_NOMEM);
    if (rc != 0 || set.saved)
        return;
    CHECK(set.count > 0);
    if (!set.star)
        check_normal(&set);
    static const uint32_t maxes[] = { 0, 1, 7, 600, UINT32_MAX };
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        if (imap_seqset_resolve(a, &set, maxes[i], &out) != 0)
            return;
        check_normal(&out);
        check_members(&out);
        if (set.star && maxes[i])
            CHECK(imap_seqset_contains(&out, maxes[i]));
    }
}

/* ------------------------------------------------------------ UTF-7 */

static void check_utf7(const char *s, size_t len)
{
    if (len > 4096)
        return;
    char *dec = malloc(IMAP_UTF7_DECODED_MAX(len));
    char *enc = malloc(IMAP_UTF7_ENCODED_MAX(len));
    CHECK(dec && enc);
    ssize_t n = imap_utf7_decode(s, len, dec, IMAP_UTF7_DECODED_MAX(len));
    CHECK(n >= -1);
    if (n >= 0) {
        /* Only canonical input decodes: it encodes back to itself. */
        CHECK((size_t)n == strlen(dec));
        ssize_t m = imap_utf7_encode(dec, (size_t)n, enc, IMAP_UTF7_ENCODED_MAX((size_t)n));
        CHECK(m == (ssize_t)len && memcmp(enc, s, len) == 0);
    }
    n = imap_utf7_encode(s, len, enc, IMAP_UTF7_ENCODED_MAX(len));
    CHECK(n >= -1);
    if (n >= 0) {
        CHECK((size_t)n == strlen(enc));
        ssize_t m = imap_utf7_decode(enc, (size_t)n, dec, IMAP_UTF7_DECODED_MAX((size_t)n));
        CHECK(m == (ssize_t)len && memcmp(dec, s, len) == 0);
    }
    free(dec);
    free(enc);
}

/* ------------------------------------------------------------ SEARCH */

static void check_search_node(const struct imap_search *k)
{
    size_t n = 0;
    for (const struct imap_search *c = k->child; c; c = c->next) {
        check_search_node(c);
        n++;
    }
    switch (k->key) {
    case IMAP_SK_AND:
        CHECK(n >= 1);
        return;
    case IMAP_SK_OR:
        CHECK(n == 2);
        return;
    case IMAP_SK_NOT:
        CHECK(n == 1);
        return;
    case IMAP_SK_SEQSET:
    case IMAP_SK_UID:
        CHECK(k->set.saved || k->set.count > 0);
        break;
    case IMAP_SK_HEADER:
        CHECK(k->field && k->str);
        break;
    case IMAP_SK_MODSEQ:
        CHECK(!k->field == !k->entry_type && k->number <= INT64_MAX);
        break;
    case IMAP_SK_OLDER:
    case IMAP_SK_YOUNGER:
        CHECK(k->number >= 1 && k->number <= UINT32_MAX);
        break;
    default:
        CHECK(k->key <= IMAP_SK_MODSEQ);
        break;
    }
    CHECK(n == 0);
}

static void check_search(struct imap_arena *a, const struct imap_arg *args)
{
    struct imap_search_cmd cmd;
    const char *err;
    int rc = imap_parse_search(a, args, &cmd, &err);
    CHECK(rc == 0 || rc == IMAP_PERR_SYNTAX || rc == IMAP_PERR_BADCHARSET ||
          rc == IMAP_PERR_NOMEM);
    if (rc != 0) {
        CHECK(err && err[0]);
        return;
    }
    CHECK(cmd.root && cmd.root->key == IMAP_SK_AND);
    CHECK(!cmd.esearch == !cmd.ret);
    check_search_node(cmd.root);
}

/* ------------------------------------------------------------ FETCH */

static void check_body(const struct imap_fetch_body *b)
{
    CHECK(b->section && b->nparts <= IMAP_MAX_PART_DEPTH);
    for (unsigned i = 0; i < b->nparts; i++)
        CHECK(b->part[i] > 0);
    CHECK(b->text != IMAP_ST_MIME || b->nparts > 0);
    CHECK(b->kind == IMAP_FB_BODY || b->text == IMAP_ST_NONE);
    bool fields = b->text == IMAP_ST_HEADER_FIELDS || b->text == IMAP_ST_HEADER_FIELDS_NOT;
    CHECK(fields == (b->nfields > 0));
    for (size_t i = 0; i < b->nfields; i++)
        CHECK(b->fields[i][0]);
    CHECK(!b->partial || (b->length > 0 && b->kind != IMAP_FB_BINARY_SIZE));
    CHECK(b->kind != IMAP_FB_BINARY_SIZE || b->peek);
}

static void check_fetch_result(const struct imap_fetch *f)
{
    for (size_t i = 0; i < f->nbodies; i++)
        check_body(&f->bodies[i]);
    CHECK(!f->vanished || f->changedsince);
    CHECK(!f->changedsince || (f->items & IMAP_FI_MODSEQ));
}

static void check_fetch(struct imap_arena *a, const struct imap_arg *args)
{
    struct imap_fetch f;
    const char *err;
    int rc = imap_parse_fetch(a, args, &f, &err);
    CHECK(rc == 0 || rc == IMAP_PERR_SYNTAX || rc == IMAP_PERR_NOMEM);
    if (rc != 0) {
        CHECK(err && err[0]);
        return;
    }
    check_fetch_result(&f);
}

static bool same_body(const struct imap_fetch_body *x, const struct imap_fetch_body *y)
{
    if (x->kind != y->kind || x->peek != y->peek || x->nparts != y->nparts ||
        x->text != y->text || x->nfields != y->nfields || x->partial != y->partial ||
        x->offset != y->offset || x->length != y->length)
        return false;
    if (memcmp(x->part, y->part, x->nparts * sizeof x->part[0]) != 0)
        return false;
    for (size_t i = 0; i < x->nfields; i++)
        if (strcmp(x->fields[i], y->fields[i]) != 0)
            return false;
    return true;
}

/*
 * One attribute from text. A body written back as the server echoes it
 * (name, "[" section "]", "<offset.length>") parses to the same body.
 */
static void check_fetch_att(struct imap_arena *a, const char *s, size_t len)
{
    static const char *const names[2][3] = {
        { "BODY", "BINARY", "BINARY.SIZE" },
        { "BODY.PEEK", "BINARY.PEEK", "BINARY.SIZE" },
    };
    struct imap_fetch f, again;
    const char *err;
    if (imap_parse_fetch_att(a, s, len, &f, &err) != 0)
        return;
    check_fetch_result(&f);
    CHECK(f.nbodies <= 1 && (f.nbodies == 0 || f.items == 0));
    if (f.nbodies == 0)
        return;
    const struct imap_fetch_body *b = &f.bodies[0];
    char text[16384];
    int n = snprintf(text, sizeof text, "%s[%s]", names[b->peek][b->kind], b->section);
    if (b->partial)
        n += snprintf(text + n, sizeof text - (size_t)n, "<%llu.%llu>",
                      (unsigned long long)b->offset, (unsigned long long)b->length);
    CHECK(n > 0 && (size_t)n < sizeof text);
    CHECK(imap_parse_fetch_att(a, text, (size_t)n, &again, &err) == 0);
    CHECK(again.nbodies == 1 && same_body(b, &again.bodies[0]));
}

/* ------------------------------------------------------------ flags, dates */

static void check_flags(struct imap_arena *a, const struct imap_arg *arg)
{
    struct imap_flags f;
    int rc = imap_parse_flags(a, arg, &f);
    CHECK(rc == 0 || rc == IMAP_PERR_SYNTAX || rc == IMAP_PERR_NOMEM);
    if (rc != 0)
        return;
    CHECK(f.system < 1u << 5);
    for (size_t i = 0; i < f.nkeywords; i++)
        CHECK(imap_parse_flag(f.keywords[i], strlen(f.keywords[i])) == 0);
}

static void check_dates(const char *s, size_t len)
{
    int64_t t;
    int zone;
    if (imap_parse_date(s, len, &t))
        CHECK(t % 86400 == 0);
    if (imap_parse_datetime(s, len, &t, &zone))
        CHECK(zone > -6000 && zone < 6000);
}

/* ------------------------------------------------------------ commands */

static void check_each_arg(struct imap_arena *a, const struct imap_arg *arg)
{
    for (; arg; arg = arg->next) {
        if (arg->type == IMAP_ARG_LIST) {
            check_flags(a, arg);
            check_each_arg(a, arg->child);
            continue;
        }
        if (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_QUOTED)
            check_dates(arg->str, arg->len);
        if (arg->type == IMAP_ARG_ATOM) {
            check_seqset(a, arg->str, arg->len);
            check_fetch_att(a, arg->str, arg->len);
        }
        if (arg->str)
            check_utf7(arg->str, arg->len);
    }
}

static void run_command(struct imap_parser *p, const struct imap_limits *l)
{
    const struct imap_command *cmd = imap_parser_command(p);
    struct imap_arena *a = imap_parser_arena(p);
    check_command(cmd, l);
    const struct imap_arg *args = cmd->args;
    /* "UID FETCH ...", "UID SEARCH ...": the real name is the first argument. */
    bool uid = strcmp(cmd->name, "UID") == 0 && args && args->type == IMAP_ARG_ATOM;
    const char *name = uid ? args->str : cmd->name;
    if (uid)
        args = args->next;
    if (strcasecmp(name, "SEARCH") == 0)
        check_search(a, args);
    if (strcasecmp(name, "FETCH") == 0 && args)
        check_fetch(a, args->next);
    check_each_arg(a, cmd->args);
}

static void small_limits(struct imap_limits *l)
{
    l->max_line = 256;
    l->max_literal = 64;
    l->max_message = 512;
    l->max_command = 2048;
    l->max_depth = 4;
    l->max_tokens = 64;
}

/* Feeds the next line of data[*pos..size) (LF-terminated, CR dropped). */
static enum imap_want next_line(struct imap_parser *p, const uint8_t *data, size_t size,
                                size_t *pos)
{
    const uint8_t *start = data + *pos;
    const uint8_t *nl = memchr(start, '\n', size - *pos);
    size_t len = nl ? (size_t)(nl - start) : size - *pos;
    *pos += len + (nl != NULL);
    if (len && start[len - 1] == '\r')
        len--;
    /* A private copy: the reader must not read past len. */
    char *line = malloc(len ? len : 1);
    CHECK(line);
    memcpy(line, start, len);
    enum imap_want w = imap_parser_feed_line(p, line, len);
    free(line);
    return w;
}

static bool next_literal(struct imap_parser *p, const uint8_t *data, size_t size, size_t *pos,
                         size_t piece)
{
    const struct imap_literal *lit = imap_parser_literal(p);
    uint64_t before = lit->remaining;
    size_t n = size - *pos < piece ? size - *pos : piece;
    if (n == 0)
        return false;
    size_t took = imap_parser_feed_literal(p, data + *pos, n);
    CHECK(took <= n && took <= before && took == (before < n ? before : n));
    CHECK(lit->remaining == before - took);
    *pos += took;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    struct imap_limits l;
    imap_limits_default(&l);
    if (mode & MODE_SMALL)
        small_limits(&l);
    unsigned flags = (mode & MODE_UTF8 ? IMAP_PARSE_UTF8 : 0) |
                     (mode & MODE_STREAM ? IMAP_PARSE_STREAM_MESSAGES : 0);
    struct imap_parser *p = imap_parser_new(&l, flags);
    CHECK(p);
    size_t piece = (mode >> 4) + 1, pos = 1;
    bool more = true;
    while (more) {
        enum imap_want w = imap_parser_want(p);
        enum imap_perr code;
        switch (w) {
        case IMAP_WANT_LINE:
            more = pos < size;
            if (more) {
                enum imap_want got = next_line(p, data, size, &pos);
                CHECK(got == imap_parser_want(p));
            }
            break;
        case IMAP_WANT_CONTINUE:
            /* The session refuses the command, or sends "+ Ready" and reads on. */
            if (mode & MODE_REFUSE_SYNC) {
                imap_parser_reset(p);
                break;
            }
            /* fall through */
        case IMAP_WANT_LITERAL:
            more = next_literal(p, data, size, &pos, piece);
            break;
        case IMAP_WANT_READY:
            run_command(p, &l);
            imap_parser_reset(p);
            break;
        case IMAP_WANT_BAD:
            CHECK(imap_parser_error(p, &code)[0] && code != IMAP_PERR_NONE);
            imap_parser_reset(p);
            break;
        case IMAP_WANT_FATAL:
            CHECK(imap_parser_error(p, &code)[0] && code != IMAP_PERR_NONE);
            more = false;
            break;
        }
    }
    imap_parser_free(&p);
    CHECK(p == NULL);
    return 0;
}
