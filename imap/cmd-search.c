/*
 * SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with ESEARCH
 * results (RFC 4731) when the client asks with RETURN.
 *
 * Keys on the message index (flags, dates, sizes, sequence sets) are
 * evaluated here; text keys (BODY, TEXT, FROM ... HEADER) and the SENT*
 * dates are answered by the store's search index as UID lists. Those
 * queries run on the thread pool, all of them before the tree is walked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap-int.h"

#define DAY 86400

/* One text or SENT* key and the UIDs the store answered for it. */
struct leaf {
    const struct imap_search *key;
    uint32_t *uids;
    size_t n;
    int result;
};

struct meta {
    uint32_t uid;
    uint64_t modseq;
    int64_t date;
    uint64_t size;
    char *flags;
};

struct search_op {
    struct imap_session *s;
    struct store *store;
    int64_t mailbox_id;
    struct imap_search_cmd cmd;  /* in the parser's arena */
    struct leaf *leaves;
    size_t n_leaves;
    struct meta *meta;           /* aligned with the view's UIDs */
    size_t n_meta;
    uint32_t max_uid;            /* '*' in UID sets */
    uv_work_t work;
};

static void op_free(void *p)
{
    struct search_op *op = p;
    for (size_t i = 0; i < op->n_leaves; i++)
        free(op->leaves[i].uids);
    free(op->leaves);
    for (size_t i = 0; i < op->n_meta; i++)
        free(op->meta[i].flags);
    free(op->meta);
    free(op);
}

static bool is_leaf(enum imap_search_key k)
{
    switch (k) {
    case IMAP_SK_BCC: case IMAP_SK_BODY: case IMAP_SK_CC: case IMAP_SK_FROM:
    case IMAP_SK_SUBJECT: case IMAP_SK_TEXT: case IMAP_SK_TO: case IMAP_SK_HEADER:
    case IMAP_SK_SENTBEFORE: case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
        return true;
    default:
        return false;
    }
}

static size_t count_leaves(const struct imap_search *k)
{
    size_t n = 0;
    for (; k; k = k->next)
        n += is_leaf(k->key) ? 1 : count_leaves(k->child);
    return n;
}

static void collect_leaves(struct search_op *op, const struct imap_search *k)
{
    for (; k; k = k->next) {
        if (is_leaf(k->key))
            op->leaves[op->n_leaves++].key = k;
        else
            collect_leaves(op, k->child);
    }
}

/* Pool thread: every text key against the store's index. */
static void run_leaf(struct search_op *op, struct leaf *l)
{
    const struct imap_search *k = l->key;
    const char *header = NULL;
    enum store_text_field field = STORE_TEXT_HEADER;
    switch (k->key) {
    case IMAP_SK_BODY: field = STORE_TEXT_BODY; break;
    case IMAP_SK_TEXT: field = STORE_TEXT_TEXT; break;
    case IMAP_SK_BCC: header = "bcc"; break;
    case IMAP_SK_CC: header = "cc"; break;
    case IMAP_SK_FROM: header = "from"; break;
    case IMAP_SK_TO: header = "to"; break;
    case IMAP_SK_SUBJECT: header = "subject"; break;
    case IMAP_SK_HEADER: header = k->field; break;
    case IMAP_SK_SENTBEFORE:
        l->result = store_search_sent(op->store, op->mailbox_id, STORE_SENT_BEFORE, k->date,
                                      &l->uids, &l->n);
        return;
    case IMAP_SK_SENTON:
        l->result = store_search_sent(op->store, op->mailbox_id, STORE_SENT_ON, k->date,
                                      &l->uids, &l->n);
        return;
    case IMAP_SK_SENTSINCE:
        l->result = store_search_sent(op->store, op->mailbox_id, STORE_SENT_SINCE, k->date,
                                      &l->uids, &l->n);
        return;
    default:
        return;
    }
    l->result = store_search_text(op->store, op->mailbox_id, field, header, k->str, &l->uids,
                                  &l->n);
}

static void work_run(uv_work_t *w)
{
    struct search_op *op = w->data;
    for (size_t i = 0; i < op->n_leaves; i++)
        run_leaf(op, &op->leaves[i]);
}

/* ------------------------------------------------------------ evaluation */

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && uids[lo] == uid;
}

static bool has_flag(const char *flags, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = flags; p && *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncasecmp(p, flag, n) == 0)
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

static const struct leaf *find_leaf(const struct search_op *op, const struct imap_search *k)
{
    for (size_t i = 0; i < op->n_leaves; i++)
        if (op->leaves[i].key == k)
            return &op->leaves[i];
    return NULL;
}

static bool eval(const struct search_op *op, const struct imap_search *k, uint32_t msn,
                 const struct meta *m);

static bool eval_all(const struct search_op *op, const struct imap_search *k, uint32_t msn,
                     const struct meta *m)
{
    for (; k; k = k->next)
        if (!eval(op, k, msn, m))
            return false;
    return true;
}

static bool in_set(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
    if (!set->star)
        return imap_seqset_contains(set, n);
    /* '*' stands for max; "n:*" includes every number from n up (§6.4.8). */
    for (size_t i = 0; i < set->count; i++) {
        uint32_t lo = set->ranges[i].lo == IMAP_SEQ_STAR ? max : set->ranges[i].lo;
        uint32_t hi = set->ranges[i].hi == IMAP_SEQ_STAR ? max : set->ranges[i].hi;
        if (lo > hi) {
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
        if (n >= lo && n <= hi)
            return true;
    }
    return false;
}

static bool eval(const struct search_op *op, const struct imap_search *k, uint32_t msn,
                 const struct meta *m)
{
    const char *f = m->flags;
    int64_t day = m->date - (m->date % DAY + DAY) % DAY;
    switch (k->key) {
    case IMAP_SK_AND: return eval_all(op, k->child, msn, m);
    case IMAP_SK_OR:
        return eval(op, k->child, msn, m) || eval(op, k->child->next, msn, m);
    case IMAP_SK_NOT: return !eval(op, k->child, msn, m);
    case IMAP_SK_ALL: return true;
    case IMAP_SK_SEQSET:
    case IMAP_SK_UID:
        if (k->set.saved)
            return imap_saved_has(op->s, m->uid);
        return k->key == IMAP_SK_UID ? in_set(&k->set, m->uid, op->max_uid)
                                     : in_set(&k->set, msn, (uint32_t)op->n_meta);
    case IMAP_SK_ANSWERED: return has_flag(f, "\\Answered");
    case IMAP_SK_DELETED: return has_flag(f, "\\Deleted");
    case IMAP_SK_DRAFT: return has_flag(f, "\\Draft");
    case IMAP_SK_FLAGGED: return has_flag(f, "\\Flagged");
    case IMAP_SK_SEEN: return has_flag(f, "\\Seen");
    case IMAP_SK_UNANSWERED: return !has_flag(f, "\\Answered");
    case IMAP_SK_UNDELETED: return !has_flag(f, "\\Deleted");
    case IMAP_SK_UNDRAFT: return !has_flag(f, "\\Draft");
    case IMAP_SK_UNFLAGGED: return !has_flag(f, "\\Flagged");
    case IMAP_SK_UNSEEN: return !has_flag(f, "\\Seen");
    /* No message is \Recent in Petrel (docs/imap.md): NEW is RECENT UNSEEN. */
    case IMAP_SK_NEW: case IMAP_SK_RECENT: return false;
    case IMAP_SK_OLD: return true;
    case IMAP_SK_KEYWORD: return has_flag(f, k->str);
    case IMAP_SK_UNKEYWORD: return !has_flag(f, k->str);
    case IMAP_SK_BEFORE: return day < k->date;
    case IMAP_SK_ON: return day == k->date;
    case IMAP_SK_SINCE: return day >= k->date;
    case IMAP_SK_LARGER: return m->size > k->number;
    case IMAP_SK_SMALLER: return m->size < k->number;
    case IMAP_SK_OLDER: return m->date <= (int64_t)time(NULL) - (int64_t)k->number;
    case IMAP_SK_YOUNGER: return m->date >= (int64_t)time(NULL) - (int64_t)k->number;
    case IMAP_SK_MODSEQ: return m->modseq >= k->number;
    default: {
        const struct leaf *l = find_leaf(op, k);
        return l && uid_in(l->uids, l->n, m->uid);
    }
    }
}

/* ------------------------------------------------------------ results */

static bool uses_modseq(const struct imap_search *k)
{
    for (; k; k = k->next)
        if (k->key == IMAP_SK_MODSEQ || uses_modseq(k->child))
            return true;
    return false;
}

/* modseq: the highest of the hits when the search used MODSEQ (RFC 7162
 * §3.1.5), else 0. */
static void answer(struct imap_session *s, struct search_op *op, const uint32_t *hits, size_t n,
                   uint64_t modseq)
{
    struct buf b = { 0 };
    if (!op->cmd.esearch && !s->rev2) { /* IMAP4rev2 answers ESEARCH only */
        buf_printf(&b, SIZE_MAX, "* SEARCH");
        for (size_t i = 0; i < n; i++)
            buf_printf(&b, SIZE_MAX, " %u", hits[i]);
        if (modseq && n)
            buf_printf(&b, SIZE_MAX, " (MODSEQ %llu)", (unsigned long long)modseq);
    } else {
        /* RFC 4731 §3.1: RETURN () means ALL; nothing found gives no MIN/MAX/ALL. */
        unsigned ret = op->cmd.ret ? op->cmd.ret : IMAP_SR_ALL;
        buf_printf(&b, SIZE_MAX, "* ESEARCH (TAG \"%s\")%s", s->req.tag, s->req.uid ? " UID" : "");
        if ((ret & IMAP_SR_MIN) && n)
            buf_printf(&b, SIZE_MAX, " MIN %u", hits[0]);
        if ((ret & IMAP_SR_MAX) && n)
            buf_printf(&b, SIZE_MAX, " MAX %u", hits[n - 1]);
        if (ret & IMAP_SR_COUNT)
            buf_printf(&b, SIZE_MAX, " COUNT %zu", n);
        if ((ret & IMAP_SR_ALL) && n) {
            buf_printf(&b, SIZE_MAX, " ALL ");
            imap_buf_set(&b, hits, n);
        }
        if (modseq && n)
            buf_printf(&b, SIZE_MAX, " MODSEQ %llu", (unsigned long long)modseq);
    }
    buf_append(&b, "\r\n", 2, SIZE_MAX);
    imap_write(s, b.data, b.len);
    buf_free(&b);
}

/*
 * RETURN (SAVE) keeps the result for "$" as UIDs; with MIN or MAX only
 * those are kept (RFC 5182 §2.4).
 */
static void save_result(struct imap_session *s, const struct search_op *op,
                        const uint32_t *hits, size_t n)
{
    imap_saved_clear(s);
    uint32_t *saved = malloc((n ? n : 1) * sizeof *saved);
    if (!saved)
        return;
    unsigned ends = op->cmd.ret & (IMAP_SR_MIN | IMAP_SR_MAX);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = !ends || ((ends & IMAP_SR_MIN) && i == 0) ||
                    ((ends & IMAP_SR_MAX) && i == n - 1);
        if (keep)
            saved[k++] = s->req.uid ? hits[i] : imap_view_uid(s->view, hits[i]);
    }
    s->saved = saved;
    s->n_saved = k;
}

static void work_done(uv_work_t *w, int status)
{
    struct search_op *op = w->data;
    struct imap_session *s = op->s;
    if (!imap_resume(s))
        return; /* op went with the session */
    for (size_t i = 0; i < op->n_leaves; i++) {
        if (status != 0 || op->leaves[i].result != STORE_OK) {
            if (op->cmd.ret & IMAP_SR_SAVE)
                imap_saved_clear(s); /* RFC 5182 §2.1: a failed SAVE empties "$" */
            imap_done_store_error(s, status ? STORE_ERROR : op->leaves[i].result, "SEARCH");
            conn_flush(s->conn);
            return;
        }
    }
    uint32_t *hits = malloc((op->n_meta ? op->n_meta : 1) * sizeof *hits);
    if (!hits) {
        imap_done_store_error(s, STORE_ERROR, "SEARCH");
        conn_flush(s->conn);
        return;
    }
    size_t n = 0;
    uint64_t modseq = 0;
    bool want_modseq = uses_modseq(op->cmd.root);
    for (size_t i = 0; i < op->n_meta; i++) {
        if (op->meta[i].flags && eval(op, op->cmd.root, (uint32_t)i + 1, &op->meta[i])) {
            hits[n++] = s->req.uid ? op->meta[i].uid : (uint32_t)i + 1;
            if (want_modseq && op->meta[i].modseq > modseq)
                modseq = op->meta[i].modseq;
        }
    }
    if (op->cmd.ret & IMAP_SR_SAVE)
        save_result(s, op, hits, n);
    /* RFC 5182 §2.4: SAVE alone asks for no ESEARCH response. */
    if (op->cmd.ret != IMAP_SR_SAVE)
        answer(s, op, hits, n, modseq);
    free(hits);
    imap_done(s, "OK", "SEARCH completed");
    conn_flush(s->conn);
}

static void take_meta(void *arg, const struct store_message_info *info)
{
    struct search_op *op = arg;
    uint32_t msn = imap_view_msn(op->s->view, info->uid);
    if (!msn)
        return; /* new since the view: not visible to this session yet */
    struct meta *m = &op->meta[msn - 1];
    m->modseq = info->modseq;
    m->date = info->internal_date;
    m->size = info->size;
    free(m->flags);
    m->flags = strdup(info->flags);
}

void imap_cmd_search(struct imap_session *s, const struct imap_request *r)
{
    struct search_op *op = calloc(1, sizeof *op);
    if (!op) {
        imap_done_store_error(s, STORE_ERROR, "SEARCH");
        return;
    }
    s->op = op;
    s->op_free = op_free;
    const char *err = NULL;
    int rc = imap_parse_search(imap_parser_arena(s->parser), r->args, &op->cmd, &err);
    if (rc == IMAP_PERR_BADCHARSET) {
        imap_done(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
        return;
    }
    if (rc != 0) {
        imap_bad(s, "%s", err ? err : "Invalid search");
        return;
    }
    if (uses_modseq(op->cmd.root))
        imap_condstore_on(s);
    struct imap_view *v = s->view;
    op->s = s;
    op->store = s->store;
    op->mailbox_id = v->id;
    op->max_uid = imap_view_max_uid(v);
    op->n_leaves = count_leaves(op->cmd.root);
    op->leaves = calloc(op->n_leaves ? op->n_leaves : 1, sizeof *op->leaves);
    op->meta = calloc(v->count ? v->count : 1, sizeof *op->meta);
    if (!op->leaves || !op->meta) {
        imap_done_store_error(s, STORE_ERROR, "SEARCH");
        return;
    }
    op->n_leaves = 0;
    collect_leaves(op, op->cmd.root);
    op->n_meta = v->count;
    for (size_t i = 0; i < v->count; i++)
        op->meta[i].uid = imap_view_uid(v, (uint32_t)i + 1);
    if (store_message_index(s->store, v->id, 0, take_meta, op) != STORE_OK) {
        imap_done_store_error(s, STORE_ERROR, "SEARCH");
        return;
    }
    imap_wait(s);
    op->work.data = op;
    if (uv_queue_work(server_loop(conn_server(s->conn)), &op->work, work_run, work_done) != 0) {
        imap_resume(s);
        imap_done_store_error(s, STORE_ERROR, "SEARCH");
    }
}
