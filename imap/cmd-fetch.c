/*
 * FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3501 §6.4.5).
 *
 * Metadata (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) comes from the
 * store's index in one query. ENVELOPE and BODYSTRUCTURE come from the parse
 * kept at delivery, body sections from the raw bytes; both are read on the
 * thread pool (store_fetch), one message at a time, so the loop never
 * decompresses. Output pauses while the client is not reading
 * (conn_write_blocked) and goes on from the drain callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-int.h"

#define FETCH_ITEM_LIMIT ((size_t)1 << 30)  /* one rendered item */

struct fetch_msg {
    uint32_t uid;
    uint32_t msn;
    bool found;          /* still in the store */
    bool seen_now;       /* this FETCH set \Seen: report FLAGS */
    uint64_t modseq;
    int64_t date;
    uint64_t size;
    char *flags;
};

struct fetch_op {
    struct imap_fetch f;     /* in the parser's arena, valid during the command */
    struct fetch_msg *m;
    size_t n, next;
    size_t batch_end;        /* the pool job under way covers [next, batch_end) */
    unsigned need;           /* STORE_FETCH_RAW | STORE_FETCH_PARSE */
    bool sets_seen;
    bool failed_cte;         /* BINARY of an unknown or broken encoding */
};

static void op_free(void *p)
{
    struct fetch_op *op = p;
    for (size_t i = 0; i < op->n; i++)
        free(op->m[i].flags);
    free(op->m);
    free(op);
}

static struct fetch_msg *find_msg(struct fetch_op *op, uint32_t uid)
{
    size_t lo = 0, hi = op->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (op->m[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < op->n && op->m[lo].uid == uid ? &op->m[lo] : NULL;
}

static void take_meta(void *arg, const struct store_message_info *info)
{
    struct fetch_op *op = arg;
    struct fetch_msg *m = find_msg(op, info->uid);
    if (!m || (op->f.changedsince && info->modseq <= op->f.changedsince_modseq))
        return;
    m->found = true;
    m->modseq = info->modseq;
    m->date = info->internal_date;
    m->size = info->size;
    free(m->flags);
    m->flags = strdup(info->flags);
}

/* The index rows of the messages asked for, a range query per run of
 * nearby UIDs: one for 1:*, a few for a handful of messages. */
#define META_GAP 64

static int load_meta(struct imap_session *s, struct fetch_op *op)
{
    for (size_t i = 0; i < op->n;) {
        size_t j = i;
        while (j + 1 < op->n && op->m[j + 1].uid - op->m[j].uid <= META_GAP)
            j++;
        int r = store_message_range(s->store, s->view->id, op->m[i].uid, op->m[j].uid,
                                    take_meta, op);
        if (r != STORE_OK)
            return r;
        i = j + 1;
    }
    return STORE_OK;
}

/* ------------------------------------------------------------ rendering */

static bool body_needs_parse(const struct imap_fetch_body *b)
{
    return b->nparts > 0 || b->text != IMAP_ST_NONE || b->kind != IMAP_FB_BODY;
}

static unsigned what_to_read(const struct imap_fetch *f)
{
    unsigned need = 0;
    if (f->items & (IMAP_FI_ENVELOPE | IMAP_FI_BODY | IMAP_FI_BODYSTRUCTURE |
                    IMAP_FI_RFC822_HEADER | IMAP_FI_RFC822_TEXT))
        need |= STORE_FETCH_PARSE;
    if (f->items & (IMAP_FI_RFC822 | IMAP_FI_RFC822_HEADER | IMAP_FI_RFC822_TEXT))
        need |= STORE_FETCH_RAW;
    for (size_t i = 0; i < f->nbodies; i++) {
        need |= STORE_FETCH_RAW;
        if (body_needs_parse(&f->bodies[i]))
            need |= STORE_FETCH_PARSE;
    }
    return need;
}

static bool sets_seen(const struct imap_fetch *f)
{
    if (f->items & (IMAP_FI_RFC822 | IMAP_FI_RFC822_TEXT))
        return true;
    for (size_t i = 0; i < f->nbodies; i++)
        if (!f->bodies[i].peek && f->bodies[i].kind != IMAP_FB_BINARY_SIZE)
            return true;
    return false;
}

/* A literal; literal8 (RFC 3516 §4.3) when it holds a NUL. */
static void put_literal(struct buf *b, const char *data, size_t len)
{
    bool nul = len && memchr(data, 0, len);
    buf_printf(b, SIZE_MAX, "%s{%zu}\r\n", nul ? "~" : "", len);
    buf_append(b, data, len, SIZE_MAX);
}

static enum mime_section_text section_text(enum imap_section_text t)
{
    switch (t) {
    case IMAP_ST_HEADER: return MIME_SECTION_HEADER;
    case IMAP_ST_HEADER_FIELDS: return MIME_SECTION_HEADER_FIELDS;
    case IMAP_ST_HEADER_FIELDS_NOT: return MIME_SECTION_HEADER_FIELDS_NOT;
    case IMAP_ST_TEXT: return MIME_SECTION_TEXT;
    case IMAP_ST_MIME: return MIME_SECTION_MIME;
    case IMAP_ST_NONE: break;
    }
    return MIME_SECTION_ALL;
}

/*
 * The bytes a BODY[...] or BINARY[...] names: a range of the raw message,
 * or rendered into tmp (HEADER.FIELDS, decoded BINARY). Returns 0, or a
 * MIME_BINARY_* error.
 */
static int section_bytes(const struct imap_fetch_body *fb, const char *data, size_t len,
                         const struct mime_message *msg, struct buf *tmp, const char **out,
                         size_t *out_len)
{
    struct mime_range r = { 0, 0 };
    const struct mime_part *part = NULL;
    *out = "";
    *out_len = 0;
    if (!msg) /* no parse: only the whole message is known */
        r.end = fb->nparts == 0 && fb->text == IMAP_ST_NONE ? len : 0;
    else if (mime_imap_section(msg, fb->part, fb->nparts, section_text(fb->text), &r, &part) <= 0)
        return 0; /* no such part: "" (RFC 9051 §6.4.5) */
    if (fb->kind != IMAP_FB_BODY) {
        if (!part)
            return 0;
        if (fb->kind == IMAP_FB_BINARY_SIZE) {
            uint64_t size = 0;
            int rc = mime_imap_binary_size(data, len, part, &size);
            buf_printf(tmp, SIZE_MAX, "%llu", (unsigned long long)size);
            *out = tmp->data;
            *out_len = tmp->len;
            return rc;
        }
        int rc = mime_imap_binary(tmp, FETCH_ITEM_LIMIT, data, len, part);
        *out = tmp->data ? tmp->data : "";
        *out_len = tmp->len;
        return rc;
    }
    if (fb->text == IMAP_ST_HEADER_FIELDS || fb->text == IMAP_ST_HEADER_FIELDS_NOT) {
        mime_imap_header_fields(tmp, FETCH_ITEM_LIMIT, data, len, r,
                                (const char *const *)fb->fields, fb->nfields,
                                fb->text == IMAP_ST_HEADER_FIELDS_NOT);
        *out = tmp->data ? tmp->data : "";
        *out_len = tmp->len;
        return 0;
    }
    *out = data + r.start;
    *out_len = r.end - r.start;
    return 0;
}

static const char *const kind_names[] = {
    [IMAP_FB_BODY] = "BODY", [IMAP_FB_BINARY] = "BINARY", [IMAP_FB_BINARY_SIZE] = "BINARY.SIZE",
};

static int render_body(struct buf *b, const struct imap_fetch_body *fb, const char *data,
                       size_t len, const struct mime_message *msg)
{
    struct buf tmp = { 0 };
    const char *bytes;
    size_t n;
    int rc = section_bytes(fb, data, len, msg, &tmp, &bytes, &n);
    if (rc == 0) {
        buf_printf(b, SIZE_MAX, " %s[%s]", kind_names[fb->kind], fb->section ? fb->section : "");
        if (fb->kind == IMAP_FB_BINARY_SIZE) {
            buf_append(b, " ", 1, SIZE_MAX);
            buf_append(b, bytes, n, SIZE_MAX);
        } else {
            if (fb->partial) {
                /* <origin> is echoed; the part past the end is "" (§6.4.5). */
                size_t off = fb->offset < n ? (size_t)fb->offset : n;
                size_t take = n - off < fb->length ? n - off : (size_t)fb->length;
                bytes += off;
                n = take;
                buf_printf(b, SIZE_MAX, "<%llu>", (unsigned long long)fb->offset);
            }
            buf_append(b, " ", 1, SIZE_MAX);
            put_literal(b, bytes, n);
        }
    }
    buf_free(&tmp);
    return rc;
}

static void render_meta(struct imap_session *s, struct buf *b, const struct fetch_op *op,
                        const struct fetch_msg *m)
{
    unsigned items = op->f.items;
    if (items & IMAP_FI_UID)
        buf_printf(b, SIZE_MAX, " UID %u", m->uid);
    if ((items & IMAP_FI_FLAGS) || m->seen_now) {
        buf_append(b, " FLAGS ", 7, SIZE_MAX);
        imap_buf_flags(b, m->flags);
    }
    if (items & IMAP_FI_INTERNALDATE) {
        char date[32];
        imap_format_date(m->date, date);
        buf_printf(b, SIZE_MAX, " INTERNALDATE \"%s\"", date);
    }
    if (items & IMAP_FI_RFC822_SIZE)
        buf_printf(b, SIZE_MAX, " RFC822.SIZE %llu", (unsigned long long)m->size);
    /* RFC 7162 §3.1.4: with CONDSTORE on, FLAGS travel with MODSEQ. */
    if ((items & IMAP_FI_MODSEQ) || (s->condstore && ((items & IMAP_FI_FLAGS) || m->seen_now)))
        buf_printf(b, SIZE_MAX, " MODSEQ (%llu)", (unsigned long long)m->modseq);
}

static void render_parse(struct imap_session *s, struct buf *b, unsigned items,
                         const struct mime_message *msg)
{
    unsigned flags = s->utf8 ? MIME_IMAP_UTF8 : 0;
    if (items & IMAP_FI_ENVELOPE) {
        buf_append(b, " ENVELOPE ", 10, SIZE_MAX);
        if (!msg || mime_imap_envelope(b, FETCH_ITEM_LIMIT, &msg->root, flags) != 0)
            buf_printf(b, SIZE_MAX, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }
    if (items & IMAP_FI_BODY) {
        buf_append(b, " BODY ", 6, SIZE_MAX);
        if (!msg || mime_imap_bodystructure(b, FETCH_ITEM_LIMIT, msg, false, flags) != 0)
            buf_printf(b, SIZE_MAX, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
    }
    if (items & IMAP_FI_BODYSTRUCTURE) {
        buf_append(b, " BODYSTRUCTURE ", 15, SIZE_MAX);
        if (!msg || mime_imap_bodystructure(b, FETCH_ITEM_LIMIT, msg, true, flags) != 0)
            buf_printf(b, SIZE_MAX, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
    }
}

/* RFC822, RFC822.HEADER and RFC822.TEXT are BODY[], BODY.PEEK[HEADER] and
 * BODY[TEXT] answered under their own names (RFC 3501 §6.4.5). */
static void render_rfc822(struct buf *b, unsigned items, const char *data, size_t len,
                          const struct mime_message *msg)
{
    struct mime_range r;
    if (items & IMAP_FI_RFC822_HEADER) {
        if (!msg || mime_imap_section(msg, NULL, 0, MIME_SECTION_HEADER, &r, NULL) <= 0)
            r = (struct mime_range){ 0, len };
        buf_append(b, " RFC822.HEADER ", 15, SIZE_MAX);
        put_literal(b, data + r.start, r.end - r.start);
    }
    if (items & IMAP_FI_RFC822_TEXT) {
        if (!msg || mime_imap_section(msg, NULL, 0, MIME_SECTION_TEXT, &r, NULL) <= 0)
            r = (struct mime_range){ len, len };
        buf_append(b, " RFC822.TEXT ", 13, SIZE_MAX);
        put_literal(b, data + r.start, r.end - r.start);
    }
    if (items & IMAP_FI_RFC822) {
        buf_append(b, " RFC822 ", 8, SIZE_MAX);
        put_literal(b, data, len);
    }
}

/* One "* n FETCH (...)" line. Returns 0 or a MIME_BINARY_* error. */
static int render(struct imap_session *s, struct fetch_op *op, struct fetch_msg *m,
                  const char *data, size_t len, const struct mime_message *msg)
{
    struct buf b = { 0 };
    int rc = 0;
    render_meta(s, &b, op, m);
    render_parse(s, &b, op->f.items, msg);
    if (data)
        render_rfc822(&b, op->f.items, data, len, msg);
    for (size_t i = 0; i < op->f.nbodies && data; i++) {
        int r = render_body(&b, &op->f.bodies[i], data, len, msg);
        if (r != 0)
            rc = r;
    }
    if (b.len) { /* b starts with the separating space; literals may hold NULs */
        imap_printf(s, "* %u FETCH (", m->msn);
        imap_write(s, b.data + 1, b.len - 1);
        imap_write(s, ")\r\n", 3);
    }
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ the loop */

/* A pool job reads this many parses, or raw messages up to FETCH_BATCH_BYTES. */
#define FETCH_BATCH 256
#define FETCH_BATCH_BYTES ((uint64_t)4 << 20)

static void emit(struct imap_session *s);

static void finish(struct imap_session *s)
{
    struct fetch_op *op = s->op;
    if (op->failed_cte)
        imap_done(s, "NO", "[UNKNOWN-CTE] A part has a content transfer encoding that "
                           "cannot be decoded");
    else
        imap_done(s, "OK", "FETCH completed");
}

static void fetched(void *arg, uint32_t uid, int result, char *data, size_t len,
                    struct mime_message *parse)
{
    struct imap_session *s = arg;
    struct fetch_op *op = s->op;
    struct fetch_msg *m = s->closed ? NULL : find_msg(op, uid);
    /* STORE_NOTFOUND: expunged meanwhile; the client learns it later. */
    if (m && result == STORE_OK) {
        const char *raw = op->need & STORE_FETCH_RAW ? (data ? data : "") : NULL;
        if (parse && raw && parse->size != len)
            mime_free(&parse); /* not this message's parse; render without it */
        if (render(s, op, m, raw, len, parse) < 0)
            op->failed_cte = true;
    }
    free(data);
    mime_free(&parse);
}

static void batch_done(void *arg, int result)
{
    (void)result; /* reported per message above */
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    struct fetch_op *op = s->op;
    op->next = op->batch_end;
    emit(s);
    conn_flush(s->conn);
}

/* The next messages to read in one pool job, from op->next. */
static size_t next_batch(struct fetch_op *op, uint32_t *uids)
{
    size_t k = 0, j = op->next;
    uint64_t bytes = 0;
    for (; j < op->n && k < FETCH_BATCH; j++) {
        const struct fetch_msg *m = &op->m[j];
        if (!m->found)
            continue;
        if ((op->need & STORE_FETCH_RAW) && k && bytes + m->size > FETCH_BATCH_BYTES)
            break;
        bytes += m->size;
        uids[k++] = m->uid;
    }
    op->batch_end = j;
    return k;
}

static void emit(struct imap_session *s)
{
    struct fetch_op *op = s->op;
    while (op->next < op->n) {
        if (conn_write_blocked(s->conn)) {
            s->drain = emit; /* on_drain calls back */
            imap_wait(s);
            s->busy--;       /* waiting for output holds nothing */
            return;
        }
        struct fetch_msg *m = &op->m[op->next];
        if (!m->found || !op->need) {
            if (m->found)
                render(s, op, m, NULL, 0, NULL);
            op->next++;
            continue;
        }
        uint32_t uids[FETCH_BATCH];
        size_t k = next_batch(op, uids);
        imap_wait(s);
        if (store_fetch_many(s->store, s->view->id, uids, k, op->need, fetched, batch_done, s) !=
            STORE_OK) {
            imap_resume(s);
            imap_done_store_error(s, STORE_ERROR, "FETCH");
        }
        return;
    }
    s->drain = NULL;
    finish(s);
}

/*
 * UID FETCH ... (CHANGEDSINCE m VANISHED): the UIDs of the set expunged
 * since m, before the FETCH responses (RFC 7162 §3.2.6). "*" reaches past
 * the last message left, so "1:*" covers what was expunged at the end.
 */
static void report_vanished(struct imap_session *s, const struct imap_arg *arg, uint64_t since)
{
    struct imap_arena *arena = imap_parser_arena(s->parser);
    struct imap_seqset set;
    uint32_t *uids = NULL;
    size_t n = 0, k = 0;
    if (imap_seqset_parse(arena, arg->str, arg->len, 0, &set) != 0 ||
        (set.star && imap_seqset_resolve(arena, &set, UINT32_MAX, &set) != 0) ||
        store_message_vanished(s->store, s->view->id, since, &uids, &n) != STORE_OK)
        return;
    for (size_t i = 0; i < n; i++)
        if (imap_seqset_contains(&set, uids[i]))
            uids[k++] = uids[i];
    imap_write_vanished(s, true, uids, k);
    free(uids);
}

/* \Seen for the non-PEEK body fetches, set before the bodies go out. */
static void seen_done(void *arg, int result, const struct store_flags_result *r)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    struct fetch_op *op = s->op;
    if (result == STORE_OK) {
        struct imap_quiet *q = realloc(s->quiet, (r->n_changed ? r->n_changed : 1) * sizeof *q);
        if (q)
            s->quiet = q;
        for (size_t i = 0; i < r->n_changed; i++) {
            struct fetch_msg *m = find_msg(op, r->changed[i].uid);
            if (!m)
                continue;
            free(m->flags);
            m->flags = strdup(r->changed[i].flags);
            m->modseq = r->changed[i].modseq;
            m->seen_now = true;
            if (q)
                s->quiet[s->n_quiet++] = (struct imap_quiet){ m->uid, m->modseq };
        }
    }
    emit(s);
    conn_flush(s->conn);
}

static void set_seen(struct imap_session *s)
{
    struct fetch_op *op = s->op;
    uint32_t *uids = malloc(op->n * sizeof *uids);
    size_t k = 0;
    for (size_t i = 0; uids && i < op->n; i++)
        if (op->m[i].found && !strstr(op->m[i].flags ? op->m[i].flags : "", "\\Seen"))
            uids[k++] = op->m[i].uid;
    if (k == 0) {
        free(uids);
        emit(s);
        return;
    }
    imap_wait(s);
    int res = store_flags(s->store, s->view->id, uids, k, STORE_FLAGS_ADD, "\\Seen", 0,
                          seen_done, s);
    free(uids);
    if (res != STORE_OK) {
        imap_resume(s);
        emit(s); /* the bodies still go out; \Seen is best effort */
    }
}

static int parse_request(struct imap_session *s, const struct imap_request *r,
                         struct fetch_op *op, uint32_t **uids, size_t *n)
{
    if (r->nargs < 2 || r->nargs > 3) {
        imap_bad(s, "%s takes a sequence set and data items", r->name);
        return -1;
    }
    const char *err = NULL;
    if (imap_parse_fetch(imap_parser_arena(s->parser), r->args->next, &op->f, &err) != 0) {
        imap_bad(s, "%s", err ? err : "Invalid FETCH items");
        return -1;
    }
    /* RFC 7162 §3.2.6: VANISHED only in UID FETCH, once QRESYNC is on. */
    if (op->f.vanished && (!r->uid || !s->qresync)) {
        imap_bad(s, "VANISHED needs UID FETCH and ENABLE QRESYNC");
        return -1;
    }
    if (op->f.changedsince || (op->f.items & IMAP_FI_MODSEQ))
        imap_condstore_on(s);
    if (imap_view_select_set(s, r->args, r->uid, uids, n) != 0)
        return -1;
    if (op->f.vanished)
        report_vanished(s, r->args, op->f.changedsince_modseq);
    return 0;
}

void imap_cmd_fetch(struct imap_session *s, const struct imap_request *r)
{
    struct fetch_op *op = calloc(1, sizeof *op);
    if (!op) {
        imap_done_store_error(s, STORE_ERROR, "FETCH");
        return;
    }
    s->op = op;
    s->op_free = op_free;
    uint32_t *uids;
    size_t n;
    if (parse_request(s, r, op, &uids, &n) != 0)
        return;
    if (r->uid)
        op->f.items |= IMAP_FI_UID; /* RFC 9051 §6.4.9: UID FETCH always returns UID */
    op->m = calloc(n ? n : 1, sizeof *op->m);
    if (!op->m) {
        free(uids);
        imap_done_store_error(s, STORE_ERROR, "FETCH");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        op->m[i].uid = uids[i];
        op->m[i].msn = imap_view_msn(s->view, uids[i]);
    }
    op->n = n;
    free(uids);
    op->need = what_to_read(&op->f);
    if (load_meta(s, op) != STORE_OK) {
        imap_done_store_error(s, STORE_ERROR, "FETCH");
        return;
    }
    if (sets_seen(&op->f) && !s->view->readonly)
        set_seen(s);
    else
        emit(s);
}
