/*
 * deliver.c — store_deliver: preparation on the libuv thread pool, one
 * writer thread with group commit, completions and change events on the loop.
 *
 *   loop: store_deliver      -> uv_queue_work
 *   pool: prepare()          SHA-256, zlib, mime_parse + mime_encode;
 *                            appends the item to the writer queue
 *   writer: take every queued item (up to STORE_BATCH_MAX), BEGIN IMMEDIATE,
 *           one SAVEPOINT per item, COMMIT (the group's one fsync), move the
 *           items to the done list, uv_async_send; a new blob is queued for
 *           the search indexer (index_queue), which the writer runs when it
 *           has nothing else to do (index.c)
 *   loop: on_async           publish change events, run done callbacks
 *
 * An item is freed on the loop once both its work request has finished
 * (after_prepare) and its completion has run: libuv owns the uv_work_t
 * until after_prepare.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "core/core.h"
#include "mime/mime.h"
#include "store/store-int.h"

struct change {
    int64_t user_id;
    int64_t mailbox_id;
    uint32_t uid;
    uint64_t modseq;
};

/* Writer statements, prepared once on the writer connection. */
enum {
    W_USER, W_BLOB_FIND, W_BLOB_REF, W_BLOB_ADD, W_PARSE_ADD, W_INDEX_ADD,
    W_INBOX, W_SPECIAL, W_MSG_ADD, W_MBOX_BUMP, W_USER_USED, W_QUEUE_ADD, W_COUNT
};

static const char *const writer_sql[W_COUNT] = {
    [W_USER] = "SELECT quota, used FROM users WHERE id = ?1",
    [W_BLOB_FIND] = "SELECT id FROM blobs WHERE sha256 = ?1",
    [W_BLOB_REF] = "UPDATE blobs SET refcount = refcount + ?2 WHERE id = ?1",
    [W_BLOB_ADD] = "INSERT INTO blobs(sha256, data, size, refcount) VALUES (?1, ?2, ?3, ?4)",
    [W_PARSE_ADD] = "INSERT OR REPLACE INTO parses(blob_id, mime, date, subject, from_addr,"
                    " message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* A new blob's id is in no other table: its rows went with the blob
     * that had the id before (cascade). */
    [W_INDEX_ADD] = "INSERT INTO index_queue(blob_id) VALUES (?1)",
    [W_INBOX] = "SELECT id, uidnext, highestmodseq FROM mailboxes"
                " WHERE user_id = ?1 AND name = 'INBOX'",
    /* store_delivery.junk: the user's mailbox of that special use (the
     * oldest, should there be several), else INBOX. */
    [W_SPECIAL] = "SELECT id, uidnext, highestmodseq FROM mailboxes"
                  " WHERE user_id = ?1 AND special_use = ?2 ORDER BY id LIMIT 1",
    [W_MSG_ADD] = "INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size,"
                  " blob_id) VALUES (?1, ?2, ?3, '', ?4, ?5, ?6)",
    [W_MBOX_BUMP] = "UPDATE mailboxes SET uidnext = ?2 + 1, highestmodseq = ?3 WHERE id = ?1",
    [W_USER_USED] = "UPDATE users SET used = used + ?2 WHERE id = ?1",
    [W_QUEUE_ADD] = "INSERT INTO queue(blob_id, mail_from, rcpt, domain, created, next_attempt)"
                    " VALUES (?1, ?2, ?3, lower(?4), ?5, ?5)",
};

/* ------------------------------------------------------------------ items */

void store_item_free(struct store_item **ip)
{
    struct store_item *it = *ip;
    if (!it)
        return;
    free(it->mail_from);
    free(it->user_ids);
    for (unsigned i = 0; i < it->n_remote; i++)
        free(it->remote[i]);
    free(it->remote);
    free(it->z);
    free(it->parse);
    free(it->date);
    free(it->subject);
    free(it->from);
    free(it->message_id);
    free(it->name);
    free(it->name2);
    free(it->flags);
    free(it->uids);
    store_imap_reset(it);
    for (unsigned i = 0; i < it->n_changes; i++) {
        free(it->changes[i].flags);
        free(it->changes[i].name);
        free(it->changes[i].old_name);
    }
    free(it->changes);
    free(it);
    *ip = NULL;
}

static void item_unref(struct store_item *it)
{
    if (--it->refs == 0)
        store_item_free(&it);
}

static void drop_changes(struct store_item *it)
{
    for (unsigned i = 0; i < it->n_changes; i++) {
        free(it->changes[i].flags);
        free(it->changes[i].name);
        free(it->changes[i].old_name);
    }
    free(it->changes);
    it->changes = NULL;
    it->n_changes = it->cap_changes = 0;
}

int store_item_change(struct store_item *it, enum store_change_kind kind, int64_t user_id,
                      int64_t mailbox_id, uint32_t uid, uint64_t modseq, const char *flags,
                      const char *name, const char *old_name)
{
    if (it->n_changes == it->cap_changes) {
        unsigned ncap = it->cap_changes ? it->cap_changes * 2 : 4;
        struct store_pending_change *p = realloc(it->changes, ncap * sizeof(*p));
        if (!p)
            return -1;
        it->changes = p;
        it->cap_changes = ncap;
    }
    struct store_pending_change *c = &it->changes[it->n_changes];
    *c = (struct store_pending_change){
        .ev = { .kind = kind, .user_id = user_id, .mailbox_id = mailbox_id,
                .uid_first = uid, .uid_last = uid, .modseq = modseq },
        .flags = flags ? strdup(flags) : NULL,
        .name = name ? strdup(name) : NULL,
        .old_name = old_name ? strdup(old_name) : NULL,
    };
    if ((flags && !c->flags) || (name && !c->name) || (old_name && !c->old_name)) {
        free(c->flags);
        free(c->name);
        free(c->old_name);
        return -1;
    }
    it->n_changes++;
    return 0;
}

/* ---------------------------------------------------------------- prepare */

static int sha256(const char *data, size_t len, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned olen = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)
             && EVP_DigestUpdate(ctx, data, len) && EVP_DigestFinal_ex(ctx, out, &olen)
             && olen == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/*
 * One deflate stream per pool thread, reset per message: zlib's ~256 KB of
 * state allocated and freed for every delivery cost more than the
 * compression itself (malloc trimming on each free). The key's destructor
 * ends the stream when the thread exits.
 */
static pthread_key_t zkey;
static pthread_once_t zkey_once = PTHREAD_ONCE_INIT;

static void zstream_free(void *p)
{
    deflateEnd(p);
    free(p);
}

static void zkey_make(void)
{
    if (pthread_key_create(&zkey, zstream_free) != 0)
        abort(); /* only at start-up, with no resources to recover */
}

static z_stream *thread_zstream(void)
{
    pthread_once(&zkey_once, zkey_make);
    z_stream *zs = pthread_getspecific(zkey);
    if (zs)
        return deflateReset(zs) == Z_OK ? zs : NULL;
    zs = calloc(1, sizeof *zs);
    if (!zs)
        return NULL;
    if (deflateInit(zs, STORE_ZLIB_LEVEL) != Z_OK) {
        free(zs);
        return NULL;
    }
    if (pthread_setspecific(zkey, zs) != 0) {
        zstream_free(zs);
        return NULL;
    }
    return zs;
}

static int compress_data(struct store_item *it)
{
    z_stream *zs = thread_zstream();
    if (!zs)
        return -1;
    uLong bound = deflateBound(zs, (uLong)it->len);
    it->z = malloc(bound ? bound : 1);
    if (!it->z)
        return -1;
    zs->next_in = (Bytef *)it->data;
    zs->avail_in = (uInt)it->len;
    zs->next_out = it->z;
    zs->avail_out = (uInt)bound;
    if (deflate(zs, Z_FINISH) != Z_STREAM_END)
        return -1;
    it->zlen = zs->total_out;
    return 0;
}

static char *dup_or_null(const char *v)
{
    return v ? strdup(v) : NULL;
}

/* Thread pool: everything CPU-heavy, so the writer only writes. */
static void prepare(uv_work_t *req)
{
    struct store_item *it = req->data;
    struct store *s = it->s;
    it->prep = STORE_ERROR;
    if (sha256(it->data, it->len, it->sha) == 0 && compress_data(it) == 0) {
        struct mime_message *m = mime_parse(it->data, it->len);
        if (m) {
            it->parse = mime_encode(m, &it->parse_len);
            it->date = dup_or_null(m->root.date);
            it->subject = dup_or_null(m->root.subject);
            it->from = dup_or_null(m->root.from);
            it->message_id = dup_or_null(m->root.message_id);
            mime_free(&m);
        }
        /* A message we cannot parse is still stored: IMAP parses on demand. */
        it->prep = STORE_OK;
    }
    pthread_mutex_lock(&s->q_lock);
    if (s->q_tail)
        s->q_tail->next = it;
    else
        s->q_head = it;
    s->q_tail = it;
    pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
}

static void after_prepare(uv_work_t *req, int status)
{
    (void)status; /* never cancelled: prepare() always queues the item */
    item_unref(req->data);
}

/* ----------------------------------------------------------------- writer */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *v)
{
    if (v)
        sqlite3_bind_text(st, col, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* Finds or creates the blob for it and adds refs to its refcount. */
int64_t store_blob_ref(struct store_wctx *wc, struct store_item *it, int64_t refs)
{
    sqlite3_stmt **w = wc->deliver;
    sqlite3_stmt *st = w[W_BLOB_FIND];
    sqlite3_bind_blob(st, 1, it->sha, sizeof(it->sha), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    if (id > 0) {
        st = w[W_BLOB_REF];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, refs);
        return step_done(st) == 0 ? id : -1;
    }
    st = w[W_BLOB_ADD];
    sqlite3_bind_blob(st, 1, it->sha, sizeof(it->sha), SQLITE_STATIC);
    sqlite3_bind_blob64(st, 2, it->z, it->zlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)it->len);
    sqlite3_bind_int64(st, 4, refs);
    if (step_done(st) != 0)
        return -1;
    sqlite3_bind_null(st, 2); /* drop the reference to it->z */
    id = sqlite3_last_insert_rowid(sqlite3_db_handle(st));
    st = w[W_PARSE_ADD];
    sqlite3_bind_int64(st, 1, id);
    if (it->parse)
        sqlite3_bind_blob64(st, 2, it->parse, it->parse_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    bind_text_or_null(st, 3, it->date);
    bind_text_or_null(st, 4, it->subject);
    bind_text_or_null(st, 5, it->from);
    bind_text_or_null(st, 6, it->message_id);
    int r = step_done(st);
    sqlite3_clear_bindings(st);
    if (r == 0) {
        /* The search rows are the indexer's job, after the commit
         * (index.c): here only the queue row. */
        st = w[W_INDEX_ADD];
        sqlite3_bind_int64(st, 1, id);
        r = step_done(st);
    }
    if (r == 0)
        it->new_blob = id;
    return r == 0 ? id : -1;
}

/*
 * Applies one item inside the open transaction. Returns STORE_OK,
 * STORE_QUOTA (nothing written) or STORE_ERROR; the caller rolls the item's
 * savepoint back on failure.
 */
static int apply(struct store_wctx *wc, struct store_item *it)
{
    sqlite3_stmt **w = wc->deliver;
    if (it->prep != STORE_OK)
        return STORE_ERROR;
    /* Quota first: one recipient over quota refuses the whole item. */
    unsigned present = 0;
    bool *skip = calloc(it->n_users ? it->n_users : 1, sizeof(*skip));
    if (!skip)
        return STORE_ERROR;
    int r = STORE_OK;
    for (unsigned i = 0; r == STORE_OK && i < it->n_users; i++) {
        sqlite3_stmt *st = w[W_USER];
        sqlite3_bind_int64(st, 1, it->user_ids[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            uint64_t quota = (uint64_t)sqlite3_column_int64(st, 0);
            uint64_t used = (uint64_t)sqlite3_column_int64(st, 1);
            if (quota && (used > quota || it->len > quota - used))
                r = STORE_QUOTA;
            present++;
        } else if (rc == SQLITE_DONE) {
            skip[i] = true; /* deleted between RCPT and commit */
            log_event(PLOG_WARN, 0, "event=deliver_skip user_id=%lld reason=deleted",
                      (long long)it->user_ids[i]);
        } else {
            r = STORE_ERROR;
        }
        sqlite3_reset(st);
    }
    if (r != STORE_OK || present + it->n_remote == 0) {
        free(skip);
        return r;
    }
    int64_t blob = store_blob_ref(wc, it, (int64_t)present + it->n_remote);
    if (blob < 0)
        r = STORE_ERROR;
    for (unsigned i = 0; r == STORE_OK && i < it->n_users; i++) {
        if (skip[i])
            continue;
        sqlite3_stmt *st = w[W_INBOX];
        int rc = SQLITE_DONE;
        if (it->name2) { /* OP_DELIVER: the special use to deliver into */
            st = w[W_SPECIAL];
            sqlite3_bind_int64(st, 1, it->user_ids[i]);
            sqlite3_bind_text(st, 2, it->name2, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            if (rc == SQLITE_DONE) {
                sqlite3_reset(st);
                st = w[W_INBOX];
            }
        }
        if (rc == SQLITE_DONE) {
            sqlite3_bind_int64(st, 1, it->user_ids[i]);
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            r = STORE_ERROR;
            break;
        }
        struct change one = {
            .user_id = it->user_ids[i],
            .mailbox_id = sqlite3_column_int64(st, 0),
            .uid = (uint32_t)sqlite3_column_int64(st, 1),
            .modseq = (uint64_t)sqlite3_column_int64(st, 2) + 1,
        };
        const struct change *ch = &one;
        sqlite3_reset(st);
        if (store_item_change(it, STORE_CHANGE_APPEND, ch->user_id, ch->mailbox_id, ch->uid,
                              ch->modseq, NULL, NULL, NULL) != 0) {
            r = STORE_ERROR;
            break;
        }

        st = w[W_MSG_ADD];
        sqlite3_bind_int64(st, 1, ch->mailbox_id);
        sqlite3_bind_int64(st, 2, ch->uid);
        sqlite3_bind_int64(st, 3, (int64_t)ch->modseq);
        sqlite3_bind_int64(st, 4, it->internal_date);
        sqlite3_bind_int64(st, 5, (int64_t)it->len);
        sqlite3_bind_int64(st, 6, blob);
        if (step_done(st) != 0) {
            r = STORE_ERROR;
            break;
        }
        st = w[W_MBOX_BUMP];
        sqlite3_bind_int64(st, 1, ch->mailbox_id);
        sqlite3_bind_int64(st, 2, ch->uid);
        sqlite3_bind_int64(st, 3, (int64_t)ch->modseq);
        if (step_done(st) != 0) {
            r = STORE_ERROR;
            break;
        }
        st = w[W_USER_USED];
        sqlite3_bind_int64(st, 1, ch->user_id);
        sqlite3_bind_int64(st, 2, (int64_t)it->len);
        if (step_done(st) != 0)
            r = STORE_ERROR;
    }
    int64_t now = (int64_t)time(NULL);
    for (unsigned i = 0; r == STORE_OK && i < it->n_remote; i++) {
        sqlite3_stmt *st = w[W_QUEUE_ADD];
        sqlite3_bind_int64(st, 1, blob);
        sqlite3_bind_text(st, 2, it->mail_from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, it->remote[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, store_addr_domain(it->remote[i]), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
        if (step_done(st) != 0)
            r = STORE_ERROR;
    }
    free(skip);
    return r;
}

sqlite3_stmt *store_wstmt(struct store_wctx *w, const char *sql)
{
    for (size_t i = 0; i < w->n_cache; i++) {
        if (w->cache[i].sql == sql) {
            sqlite3_reset(w->cache[i].st);
            sqlite3_clear_bindings(w->cache[i].st);
            return w->cache[i].st;
        }
    }
    if (w->n_cache == w->cap_cache) {
        size_t ncap = w->cap_cache ? w->cap_cache * 2 : 32;
        void *p = realloc(w->cache, ncap * sizeof(*w->cache));
        if (!p)
            return NULL;
        w->cache = p;
        w->cap_cache = ncap;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(w->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        store_db_log(w->db, "writer_prepare");
        return NULL;
    }
    w->cache[w->n_cache].sql = sql;
    w->cache[w->n_cache].st = st;
    w->n_cache++;
    return st;
}

/* Steps a statement that returns no row and resets it: 0 or -1. */
int store_wstep(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* No statement may stay mid-step across ROLLBACK TO or COMMIT. */
static void wctx_reset(struct store_wctx *w)
{
    for (size_t i = 0; i < w->n_cache; i++)
        sqlite3_reset(w->cache[i].st);
    for (int i = 0; i < W_COUNT; i++)
        if (w->deliver[i])
            sqlite3_reset(w->deliver[i]);
}

static void wctx_free(struct store_wctx *w)
{
    for (size_t i = 0; i < w->n_cache; i++)
        sqlite3_finalize(w->cache[i].st);
    free(w->cache);
    w->cache = NULL;
    w->n_cache = w->cap_cache = 0;
}

static int apply_item(struct store_wctx *w, struct store_item *it)
{
    if (it->op == OP_QUEUE_UPDATE)
        return store_queue_apply(w, it);
    return it->op == OP_DELIVER ? apply(w, it) : store_imap_apply(w, it);
}

static void reset_results(struct store_item *it)
{
    it->new_blob = 0;
    drop_changes(it);
    store_imap_reset(it);
}

/* One group: every item gets its own savepoint, the group one COMMIT. */
static void write_batch(struct store *s, struct store_wctx *w, struct store_item *batch)
{
    sqlite3 *db = s->wr;
    /* Durability: an index batch ran at synchronous=NORMAL. */
    if (w->sync_normal && store_db_exec(db, "PRAGMA synchronous=FULL") == 0)
        w->sync_normal = false;
    bool ok = !w->sync_normal && store_tx_begin(db) == 0;
    for (struct store_item *it = batch; it; it = it->next) {
        if (!ok) {
            it->result = STORE_ERROR;
            continue;
        }
        if (store_db_exec(db, "SAVEPOINT item") != 0) {
            it->result = STORE_ERROR;
            continue;
        }
        it->result = apply_item(w, it);
        wctx_reset(w);
        if (it->result == STORE_ERROR)
            store_db_log(db, it->op == OP_DELIVER ? "deliver"
                             : it->op == OP_QUEUE_UPDATE ? "queue_update" : "imap_op");
        if (it->result != STORE_OK) {
            sqlite3_exec(db, "ROLLBACK TO item", NULL, NULL, NULL);
            reset_results(it);
        }
        if (store_db_exec(db, "RELEASE item") != 0)
            ok = false;
    }
    if (ok && store_tx_commit(db) != 0)
        ok = false;
    if (!ok) {
        store_tx_rollback(db);
        for (struct store_item *it = batch; it; it = it->next) {
            it->result = STORE_ERROR;
            reset_results(it);
        }
    }
    unsigned n = 0, n_deliver = 0, n_blobs = 0;
    for (struct store_item *it = batch; it; it = it->next) {
        n++;
        n_deliver += it->op == OP_DELIVER;
        n_blobs += ok && it->result == STORE_OK && it->new_blob > 0;
    }
    pthread_mutex_lock(&s->q_lock);
    if (ok)
        s->stats.transactions++;
    s->stats.deliveries += n_deliver;
    s->stats.ops += n;
    s->stats.index_pending += n_blobs;
    pthread_mutex_unlock(&s->q_lock);
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* When the indexer may run next (writer thread). */
struct index_clock {
    int64_t last_write;     /* the end of the last group */
    int64_t behind_since;   /* blobs queued since (pending > 0) */
    int64_t next_busy;      /* the next batch while busy, for the share */
    int64_t retry_at;       /* after a failed batch */
};

/*
 * Writer thread, q_lock held, its queue empty and not stopping: runs one
 * index batch when it is the indexer's turn (rules at STORE_INDEX_BUDGET_US,
 * store-int.h), with q_lock released meanwhile, and returns true. Otherwise
 * returns false with *wait_ms: how long to wait for an item at most (-1:
 * until one comes).
 */
static bool index_turn(struct store *s, struct store_wctx *w, struct index_clock *c,
                       int64_t *wait_ms)
{
    *wait_ms = -1;
    if (s->stats.index_pending == 0 || s->index_paused)
        return false;
    int64_t now = mono_ms();
    int64_t at = c->retry_at; /* the earliest start */
    bool quiet = s->inflight == 0 && now >= c->last_write + STORE_INDEX_QUIET_MS;
    if (!quiet) {
        /* Busy: a quarter of the writer's time, once the index is late. */
        int64_t busy_at = c->behind_since + STORE_INDEX_LATE_MS;
        if (busy_at < c->next_busy)
            busy_at = c->next_busy;
        if (s->inflight == 0 && c->last_write + STORE_INDEX_QUIET_MS < busy_at)
            busy_at = c->last_write + STORE_INDEX_QUIET_MS;
        if (at < busy_at)
            at = busy_at;
    }
    if (now < at) {
        *wait_ms = at - now;
        return false;
    }
    pthread_mutex_unlock(&s->q_lock);
    unsigned n = 0;
    bool drained = false;
    int r = store_index_batch(s, w, &n, &drained);
    int64_t end = mono_ms();
    pthread_mutex_lock(&s->q_lock);
    s->stats.indexed += n;
    s->stats.index_batches += n > 0;
    /* 0 only once the queue was found empty: rows the count missed (made
     * by another process) keep the indexer going. */
    s->stats.index_pending = drained ? 0
                           : s->stats.index_pending > n ? s->stats.index_pending - n : 1;
    c->next_busy = end + (end - now) * (STORE_INDEX_SHARE - 1);
    if (r != STORE_OK)
        c->retry_at = end + STORE_INDEX_RETRY_MS;
    return true;
}

static void writer_wait(struct store *s, int64_t ms)
{
    if (ms < 0) {
        pthread_cond_wait(&s->q_cond, &s->q_lock);
        return;
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* q_cond's clock (store_open) */
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->q_cond, &s->q_lock, &t);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    sqlite3_stmt *w[W_COUNT] = { 0 };
    struct store_wctx wc = { .db = s->wr, .deliver = w };
    bool ready = true;
    for (int i = 0; i < W_COUNT; i++)
        if (sqlite3_prepare_v3(s->wr, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &w[i], NULL) != SQLITE_OK) {
            store_db_log(s->wr, "writer_prepare");
            ready = false;
        }
    struct index_clock clock = { .behind_since = mono_ms() };
    pthread_mutex_lock(&s->q_lock);
    for (;;) {
        while (!s->q_head && !s->stopping) {
            int64_t ms = -1;
            if (!ready || !index_turn(s, &wc, &clock, &ms))
                writer_wait(s, ms);
        }
        if (!s->q_head)
            break; /* stopping and drained; the index queue stays */
        /* Take everything queued, up to the cap: the group. */
        struct store_item *batch = s->q_head, *last = batch;
        unsigned n = 1;
        while (last->next && n < STORE_BATCH_MAX) {
            last = last->next;
            n++;
        }
        s->q_head = last->next;
        if (!s->q_head)
            s->q_tail = NULL;
        last->next = NULL;
        bool index_idle = s->stats.index_pending == 0;
        pthread_mutex_unlock(&s->q_lock);

        if (ready) {
            write_batch(s, &wc, batch);
        } else {
            for (struct store_item *it = batch; it; it = it->next)
                it->result = STORE_ERROR;
        }

        pthread_mutex_lock(&s->q_lock);
        clock.last_write = mono_ms();
        if (index_idle && s->stats.index_pending > 0)
            clock.behind_since = clock.last_write;
        if (s->done_tail)
            s->done_tail->next = batch;
        else
            s->done_head = batch;
        s->done_tail = last;
        s->inflight -= n;
        if (s->inflight == 0)
            pthread_cond_broadcast(&s->idle_cond);
        /* uv_async_send is thread-safe; the handle lives until store_close
         * has joined this thread. */
        uv_async_send(s->async);
    }
    pthread_mutex_unlock(&s->q_lock);
    wctx_free(&wc);
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(w[i]);
    return NULL;
}

/* ------------------------------------------------------------ completions */

static void unlink_sub(struct store *s, struct store_sub *sub)
{
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        s->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    free(sub);
}

static void publish(struct store *s, const struct store_change *ch)
{
    s->dispatching = true;
    for (struct store_sub *sub = s->subs; sub; sub = sub->next)
        if (!sub->dead && (sub->user_id == 0 || sub->user_id == ch->user_id))
            sub->cb(sub->arg, ch);
    s->dispatching = false;
    /* Unsubscribed during dispatch: free now that nobody walks the list. */
    if (!s->dead_subs)
        return;
    s->dead_subs = false;
    for (struct store_sub *sub = s->subs, *next; sub; sub = next) {
        next = sub->next;
        if (sub->dead)
            unlink_sub(s, sub);
    }
}

/* Publishes one pending change with its strings attached. */
static void publish_pending(struct store *s, struct store_pending_change *c)
{
    struct store_change ev = c->ev;
    ev.flags = c->flags;
    ev.name = c->name;
    ev.old_name = c->old_name;
    publish(s, &ev);
}

/*
 * Loop thread: the items' transactions are durable. Appends to one mailbox
 * with consecutive UIDs within the list are merged into one event (the
 * writer assigns each mailbox's UIDs consecutively); other events go out
 * one by one in the order they were made. Then the callbacks run in queue
 * order.
 */
static void complete(struct store *s, struct store_item *list)
{
    struct store_change *ev = NULL;
    size_t n_ev = 0, cap = 0;
    for (struct store_item *it = list; it; it = it->next) {
        for (unsigned i = 0; i < it->n_changes; i++) {
            struct store_pending_change *pc = &it->changes[i];
            const struct store_change *c = &pc->ev;
            if (c->kind != STORE_CHANGE_APPEND) {
                /* Earlier appends first, so a client sees them in order. */
                for (size_t k = 0; k < n_ev; k++)
                    publish(s, &ev[k]);
                n_ev = 0;
                publish_pending(s, pc);
                continue;
            }
            size_t j = 0;
            while (j < n_ev && !(ev[j].mailbox_id == c->mailbox_id
                                 && ev[j].uid_last + 1 == c->uid_first))
                j++;
            if (j < n_ev) {
                ev[j].uid_last = c->uid_last;
                ev[j].modseq = c->modseq;
                continue;
            }
            if (n_ev == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct store_change *p = realloc(ev, ncap * sizeof(*p));
                if (!p) {
                    /* Out of memory: this change goes out unmerged. */
                    publish(s, c);
                    continue;
                }
                ev = p;
                cap = ncap;
            }
            ev[n_ev++] = *c;
        }
    }
    for (size_t k = 0; k < n_ev; k++)
        publish(s, &ev[k]);
    free(ev);
    while (list) {
        struct store_item *it = list;
        list = it->next;
        it->next = NULL;
        if (it->done)
            it->done(it->arg, it->result);
        else
            store_imap_complete(it);
        item_unref(it);
    }
}

static struct store_item *take_done(struct store *s)
{
    pthread_mutex_lock(&s->q_lock);
    struct store_item *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->q_lock);
    return list;
}

static void on_async(uv_async_t *h)
{
    struct store *s = h->data;
    complete(s, take_done(s));
}

static void on_async_closed(uv_handle_t *h)
{
    free(h);
}

/* ----------------------------------------------------------------- public */

int store_start_writer(struct store *s, uv_loop_t *loop)
{
    if (s->writer_started)
        return STORE_EXISTS;
    char err[256];
    if (store_db_open(s->path, false, &s->wr, err, sizeof(err)) != 0) {
        char buf[300];
        log_event(PLOG_ERROR, 0, "event=store_error op=writer_open error=%s",
                  log_value(err, buf, sizeof(buf)));
        return STORE_ERROR;
    }
    s->async = calloc(1, sizeof(*s->async));
    if (!s->async || uv_async_init(loop, s->async, on_async) != 0) {
        free(s->async);
        s->async = NULL;
        store_db_close(&s->wr);
        return STORE_ERROR;
    }
    s->async->data = s;
    s->loop = loop;
    s->stopping = false;
    /* Blobs left queued by the last run (stopped, crashed) or a migration,
     * counted before the writer owns the connection. */
    int64_t queued = store_index_count(s->wr);
    if (queued < 0) {
        store_db_log(s->wr, "index_count");
        queued = 1; /* the indexer finds out */
    }
    if (queued > 0)
        log_event(PLOG_INFO, 0, "event=store_index_backlog blobs=%lld", (long long)queued);
    s->stats.index_pending = (uint64_t)queued;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        uv_close((uv_handle_t *)s->async, on_async_closed);
        s->async = NULL;
        store_db_close(&s->wr);
        return STORE_ERROR;
    }
    s->writer_started = true;
    return STORE_OK;
}

/*
 * Drains and stops the writer. Runs on the loop thread (or after the loop
 * stopped): waits for every accepted item to be written (prepare() needs no
 * loop turn to hand items over), then runs the remaining completions here.
 * Work requests still owned by libuv free their item in after_prepare when
 * the loop next runs; the async handle is freed by its close callback.
 */
void store_writer_stop(struct store *s)
{
    if (!s->writer_started)
        return;
    s->closing = true;
    pthread_mutex_lock(&s->q_lock);
    while (s->inflight > 0)
        pthread_cond_wait(&s->idle_cond, &s->q_lock);
    s->stopping = true;
    pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
    pthread_join(s->thread, NULL);
    s->writer_started = false;
    complete(s, take_done(s));
    s->async->data = NULL;
    uv_close((uv_handle_t *)s->async, on_async_closed);
    s->async = NULL;
    store_db_close(&s->wr);
}

int store_deliver(struct store *s, const struct store_delivery *d,
                  store_done_cb done, void *arg)
{
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    if (!d || (!d->data && d->len) || d->n_users + d->n_remote == 0
        || d->n_users > 100000 || d->n_remote > 100000)
        return STORE_INVALID;
    for (unsigned i = 0; i < d->n_remote; i++) {
        char norm[STORE_ADDR_MAX + 1];
        if (store_addr_norm(d->remote[i], false, norm, sizeof(norm)) != STORE_OK)
            return STORE_INVALID;
    }
    struct store_item *it = calloc(1, sizeof(*it));
    if (!it)
        return STORE_ERROR;
    it->op = OP_DELIVER;
    it->data = d->data ? d->data : "";
    it->len = d->len;
    it->internal_date = d->internal_date;
    it->done = done;
    it->arg = arg;
    it->mail_from = strdup(d->mail_from ? d->mail_from : "");
    it->user_ids = calloc(d->n_users ? d->n_users : 1, sizeof(*it->user_ids));
    it->remote = calloc(d->n_remote ? d->n_remote : 1, sizeof(*it->remote));
    /* name2 of an OP_DELIVER item: the special use of the target mailbox. */
    if (d->junk)
        it->name2 = strdup("\\Junk");
    bool ok = it->mail_from && it->user_ids && it->remote && (!d->junk || it->name2);
    /* Duplicates allowed in: one copy per user out. */
    for (unsigned i = 0; ok && i < d->n_users; i++) {
        bool dup = false;
        for (unsigned j = 0; j < it->n_users && !dup; j++)
            dup = it->user_ids[j] == d->user_ids[i];
        if (!dup)
            it->user_ids[it->n_users++] = d->user_ids[i];
    }
    for (unsigned i = 0; ok && i < d->n_remote; i++) {
        it->remote[i] = strdup(d->remote[i]);
        ok = it->remote[i] != NULL;
        it->n_remote += ok;
    }
    if (!ok) {
        store_item_free(&it);
        return STORE_ERROR;
    }
    int r = store_writer_prepare(s, it);
    if (r != STORE_OK)
        store_item_free(&it);
    return r;
}

int store_writer_submit(struct store *s, struct store_item *it)
{
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    it->s = s;
    it->refs = 1;
    pthread_mutex_lock(&s->q_lock);
    s->inflight++;
    if (s->q_tail)
        s->q_tail->next = it;
    else
        s->q_head = it;
    s->q_tail = it;
    pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
    return STORE_OK;
}

int store_writer_prepare(struct store *s, struct store_item *it)
{
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    it->s = s;
    it->refs = 2;
    it->work.data = it;
    pthread_mutex_lock(&s->q_lock);
    s->inflight++;
    pthread_mutex_unlock(&s->q_lock);
    if (uv_queue_work(s->loop, &it->work, prepare, after_prepare) != 0) {
        pthread_mutex_lock(&s->q_lock);
        s->inflight--;
        pthread_mutex_unlock(&s->q_lock);
        return STORE_ERROR;
    }
    return STORE_OK;
}

void store_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->q_lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->q_lock);
}

/* ---------------------------------------------------------- subscriptions */

struct store_sub *store_subscribe(struct store *s, int64_t user_id,
                                  store_change_cb cb, void *arg)
{
    struct store_sub *sub = calloc(1, sizeof(*sub));
    if (!sub)
        return NULL;
    sub->user_id = user_id;
    sub->cb = cb;
    sub->arg = arg;
    sub->next = s->subs;
    if (s->subs)
        s->subs->prev = sub;
    s->subs = sub;
    return sub;
}

/* O(1): thousands of IMAP sessions come and go. */
void store_unsubscribe(struct store *s, struct store_sub **subp)
{
    struct store_sub *sub = *subp;
    if (!sub)
        return;
    *subp = NULL;
    if (s->dispatching) {
        sub->dead = true;
        s->dead_subs = true;
        return;
    }
    unlink_sub(s, sub);
}
