/*
 * queue.c — the outbound queue.
 *
 * As the administrator sees it: list on the reader, delete and flush on the
 * admin connection (one transaction each). For the queue runner: the due
 * rows and the message bytes read on the thread pool (pool readers, like
 * store_fetch), the outcomes of attempts written by the writer thread
 * (OP_QUEUE_UPDATE items, grouped with the deliveries), the next due time
 * on the reader.
 *
 * Queue rows are created by the writer (store_deliver with remote
 * recipients); each row holds one reference on its message blob, so
 * deleting a row drops that reference and the blob goes with the last one.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

int store_queue_list(struct store *s, store_queue_cb cb, void *arg)
{
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT q.id, q.mail_from, q.rcpt, q.domain, q.created, q.next_attempt,"
        " q.attempts, q.last_error, b.size, q.warned"
        " FROM queue q JOIN blobs b ON b.id = q.blob_id ORDER BY q.id");
    if (!st)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_queue_info q = {
            .id = sqlite3_column_int64(st, 0),
            .mail_from = store_col_text(st, 1),
            .rcpt = store_col_text(st, 2),
            .domain = store_col_text(st, 3),
            .created = sqlite3_column_int64(st, 4),
            .next_attempt = sqlite3_column_int64(st, 5),
            .attempts = (unsigned)sqlite3_column_int64(st, 6),
            .last_error = store_col_text(st, 7),
            .size = (uint64_t)sqlite3_column_int64(st, 8),
            .warned = sqlite3_column_int(st, 9) != 0,
        };
        cb(arg, &q);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "queue_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Runs sql with ?1 = a, ?2 = b on db. Returns changed rows, or -1. */
static int exec_ids(sqlite3 *db, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st = store_db_prepare(db, sql);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_db_log(db, "queue");
        return -1;
    }
    return sqlite3_changes(db);
}

int store_queue_del(struct store *s, int64_t id)
{
    if (id <= 0)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    sqlite3_stmt *st = store_db_prepare(s->ad, "SELECT blob_id FROM queue WHERE id = ?1");
    int64_t blob = 0;
    if (!st) {
        r = STORE_ERROR;
    } else {
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            blob = sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            r = STORE_NOTFOUND;
        else
            r = STORE_ERROR;
        sqlite3_finalize(st);
    }
    /* The blob's parse goes with it (parses: ON DELETE CASCADE). */
    if (r == STORE_OK
        && (exec_ids(s->ad, "DELETE FROM queue WHERE id = ?1", id, 0) != 1
            || exec_ids(s->ad, "UPDATE blobs SET refcount = refcount - 1 WHERE id = ?1",
                        blob, 0) != 1
            || exec_ids(s->ad, "DELETE FROM blobs WHERE id = ?1 AND refcount <= 0",
                        blob, 0) < 0))
        r = STORE_ERROR;
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=queue_del id=%lld", (long long)id);
    return r;
}

int store_queue_flush(struct store *s, int64_t id)
{
    if (id < 0)
        return STORE_INVALID;
    int64_t now = (int64_t)time(NULL);
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    /* min(): an entry already overdue keeps its place in the due order. */
    int n = exec_ids(s->ad,
                     "UPDATE queue SET next_attempt = min(next_attempt, ?2)"
                     " WHERE ?1 = 0 OR id = ?1", id, now);
    int r = n < 0 ? STORE_ERROR : (id && n == 0) ? STORE_NOTFOUND : STORE_OK;
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=queue_flush id=%lld entries=%d", (long long)id, n);
    return r;
}

/* ------------------------------------------------------------ the runner */

int store_queue_next(struct store *s, int64_t *when)
{
    *when = INT64_MAX;
    /* min() over the queue_next index: one index entry read. */
    sqlite3_stmt *st = store_db_prepare(s->rd, "SELECT min(next_attempt) FROM queue");
    if (!st)
        return STORE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *when = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_ROW)
        store_db_log(s->rd, "queue_next");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? STORE_OK : STORE_ERROR;
}

/*
 * Pool jobs count in s->fetching like store_fetch's, so store_close waits
 * for them; their after-work callbacks run on the loop and do not touch the
 * store (it may be closed by then).
 */
static int pool_queue(struct store *s, uv_work_t *work, uv_work_cb run, uv_after_work_cb after)
{
    pthread_mutex_lock(&s->q_lock);
    s->fetching++;
    pthread_mutex_unlock(&s->q_lock);
    if (uv_queue_work(s->loop, work, run, after) != 0) {
        pthread_mutex_lock(&s->q_lock);
        s->fetching--;
        pthread_mutex_unlock(&s->q_lock);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* The end of a pool job's work (pool thread). */
static void pool_done(struct store *s)
{
    pthread_mutex_lock(&s->q_lock);
    if (--s->fetching == 0)
        pthread_cond_broadcast(&s->fetch_cond);
    pthread_mutex_unlock(&s->q_lock);
}

/*
 * The due listing chooses its index by the size of the due set, counted up
 * to QUEUE_DUE_SORT_MAX rows on queue_next (db.c, migration 6):
 *
 * - fewer: the due ids are sorted from queue_next alone (it holds the sort
 *   keys), and only the rows returned are read from the table;
 * - more: queue_order gives the rows in order (the last key, id, sorted
 *   within each domain and blob) and the due test is made in the index,
 *   so the read stops after the rows it needs, without sorting the rest.
 *
 * Measured on 100,000 rows over 1,000 domains, 200 rows asked: 10 due,
 * 0.1 ms sorted against 10 ms in order (the whole index scanned); 1,000
 * due, 1 ms against 8 ms; all due, 24 ms against 1 ms.
 */
#define QUEUE_DUE_SORT_MAX 4096

static const char SQL_DUE_COUNT[] =
    "SELECT count(*) FROM (SELECT 1 FROM queue INDEXED BY queue_next"
    " WHERE next_attempt <= ?1 LIMIT ?2)";
#define DUE_COLUMNS \
    "SELECT q.id, q.blob_id, q.mail_from, q.rcpt, q.domain, q.created, q.attempts," \
    " q.warned, b.size"
static const char SQL_DUE_SORTED[] =
    DUE_COLUMNS " FROM (SELECT id FROM queue INDEXED BY queue_next WHERE next_attempt <= ?1"
    "   ORDER BY domain, blob_id, id LIMIT ?2) x"
    " JOIN queue q ON q.id = x.id JOIN blobs b ON b.id = q.blob_id"
    " ORDER BY q.domain, q.blob_id, q.id";
static const char SQL_DUE_ORDERED[] =
    DUE_COLUMNS " FROM queue q INDEXED BY queue_order JOIN blobs b ON b.id = q.blob_id"
    " WHERE q.next_attempt <= ?1 ORDER BY q.domain, q.blob_id, q.id LIMIT ?2";

/* One row read on the pool; the item's strings point into text. */
struct due_row {
    struct store_queue_item q;
    char *text;
};

struct due_req {
    uv_work_t work;
    struct store *s;
    int64_t now;
    unsigned max;
    int64_t *busy;              /* sorted */
    size_t n_busy;
    store_queue_item_cb cb;
    void (*done)(void *arg, int result, unsigned n);
    void *arg;
    int result;
    struct due_row *rows;
    unsigned n;
};

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Copies the current row of st into r; -1 when out of memory. */
static int due_row_take(sqlite3_stmt *st, struct due_row *r)
{
    const char *from = store_col_text(st, 2), *rcpt = store_col_text(st, 3),
               *domain = store_col_text(st, 4);
    size_t lf = strlen(from) + 1, lr = strlen(rcpt) + 1, ld = strlen(domain) + 1;
    r->text = malloc(lf + lr + ld);
    if (!r->text)
        return -1;
    memcpy(r->text, from, lf);
    memcpy(r->text + lf, rcpt, lr);
    memcpy(r->text + lf + lr, domain, ld);
    r->q = (struct store_queue_item){
        .id = sqlite3_column_int64(st, 0),
        .blob_id = sqlite3_column_int64(st, 1),
        .mail_from = r->text,
        .rcpt = r->text + lf,
        .domain = r->text + lf + lr,
        .created = sqlite3_column_int64(st, 5),
        .attempts = (unsigned)sqlite3_column_int64(st, 6),
        .warned = sqlite3_column_int(st, 7) != 0,
        .size = (uint64_t)sqlite3_column_int64(st, 8),
    };
    return 0;
}

/* Both statements run in the one read transaction, so the count and the
 * rows see the same queue. */
static int due_read(sqlite3 *db, struct due_req *d)
{
    /* The busy rows can take at most n_busy of the first max + n_busy. */
    int64_t limit = (int64_t)d->max + (int64_t)d->n_busy;
    sqlite3_stmt *st = store_db_prepare(db, SQL_DUE_COUNT);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, d->now);
    sqlite3_bind_int64(st, 2, QUEUE_DUE_SORT_MAX);
    int rc = sqlite3_step(st);
    int64_t due = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (due < 0) {
        store_db_log(db, "queue_due");
        return STORE_ERROR;
    }
    if (due == 0)
        return STORE_OK;
    st = store_db_prepare(db, due < QUEUE_DUE_SORT_MAX ? SQL_DUE_SORTED : SQL_DUE_ORDERED);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, d->now);
    sqlite3_bind_int64(st, 2, limit);
    /* Rows to give at most: due is exact below the count's cap. */
    size_t cap = due < QUEUE_DUE_SORT_MAX && due < (int64_t)d->max ? (size_t)due : d->max;
    d->rows = cap ? malloc(cap * sizeof(*d->rows)) : NULL;
    int r = cap && !d->rows ? STORE_ERROR : STORE_OK;
    while (r == STORE_OK && d->n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (d->n_busy && bsearch(&id, d->busy, d->n_busy, sizeof(id), id_cmp))
            continue;
        if (due_row_take(st, &d->rows[d->n]) != 0)
            r = STORE_ERROR;
        else
            d->n++;
    }
    if (r == STORE_OK && d->n < cap && rc != SQLITE_DONE) {
        store_db_log(db, "queue_due");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return r;
}

static void due_work(uv_work_t *req)
{
    struct due_req *d = req->data;
    struct store *s = d->s;
    d->result = STORE_ERROR;
    sqlite3 *db = store_pool_reader(s, NULL);
    if (db) {
        if (store_db_exec(db, "BEGIN") == 0) {
            d->result = due_read(db, d);
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        store_pool_reader_put(s, db);
    }
    pool_done(s);
}

static void due_after(uv_work_t *req, int status)
{
    struct due_req *d = req->data;
    if (status != 0)
        d->result = STORE_ERROR;
    unsigned n = d->result == STORE_OK ? d->n : 0;
    for (unsigned i = 0; i < n; i++)
        d->cb(d->arg, &d->rows[i].q);
    if (d->done)
        d->done(d->arg, d->result, n);
    for (unsigned i = 0; i < d->n; i++)
        free(d->rows[i].text);
    free(d->rows);
    free(d->busy);
    free(d);
}

int store_queue_due(struct store *s, int64_t now, unsigned max, const int64_t *busy, size_t n_busy,
                    store_queue_item_cb cb, void (*done)(void *arg, int result, unsigned n),
                    void *arg)
{
    if (!cb || (n_busy && !busy) || n_busy > STORE_OP_UIDS_MAX)
        return STORE_INVALID;
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    struct due_req *d = calloc(1, sizeof(*d));
    if (!d)
        return STORE_ERROR;
    *d = (struct due_req){
        .s = s, .now = now, .max = max < STORE_QUEUE_DUE_MAX ? max : STORE_QUEUE_DUE_MAX,
        .n_busy = n_busy, .cb = cb, .done = done, .arg = arg,
    };
    if (n_busy) {
        d->busy = malloc(n_busy * sizeof(*busy));
        if (!d->busy) {
            free(d);
            return STORE_ERROR;
        }
        memcpy(d->busy, busy, n_busy * sizeof(*busy));
        qsort(d->busy, n_busy, sizeof(*busy), id_cmp);
    }
    d->work.data = d;
    if (pool_queue(s, &d->work, due_work, due_after) != STORE_OK) {
        free(d->busy);
        free(d);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* ----------------------------------------------------------- blob bytes */

struct blob_req {
    uv_work_t work;
    struct store *s;
    int64_t blob_id;
    store_blob_cb cb;
    void *arg;
    int result;
    char *data;
    size_t len;
};

static void blob_work(uv_work_t *req)
{
    struct blob_req *b = req->data;
    struct store *s = b->s;
    b->result = STORE_ERROR;
    sqlite3 *db = store_pool_reader(s, NULL);
    sqlite3_stmt *st = db ? store_db_prepare(db, "SELECT data, size FROM blobs WHERE id = ?1")
                          : NULL;
    if (st) {
        sqlite3_bind_int64(st, 1, b->blob_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            b->result = store_inflate_blob(sqlite3_column_blob(st, 0),
                                           (size_t)sqlite3_column_bytes(st, 0),
                                           (uint64_t)sqlite3_column_int64(st, 1),
                                           &b->data, &b->len);
        else if (rc == SQLITE_DONE)
            b->result = STORE_NOTFOUND;
        else
            store_db_log(db, "queue_read");
        sqlite3_finalize(st);
    }
    if (db)
        store_pool_reader_put(s, db);
    pool_done(s);
}

static void blob_after(uv_work_t *req, int status)
{
    struct blob_req *b = req->data;
    if (status != 0 && b->result == STORE_OK)
        b->result = STORE_ERROR;
    if (b->result != STORE_OK) {
        free(b->data);
        b->data = NULL;
        b->len = 0;
    }
    b->cb(b->arg, b->result, b->data, b->len);
    free(b);
}

int store_queue_read(struct store *s, int64_t blob_id, store_blob_cb cb, void *arg)
{
    if (blob_id <= 0 || !cb)
        return STORE_INVALID;
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    struct blob_req *b = calloc(1, sizeof(*b));
    if (!b)
        return STORE_ERROR;
    *b = (struct blob_req){ .s = s, .blob_id = blob_id, .cb = cb, .arg = arg };
    b->work.data = b;
    if (pool_queue(s, &b->work, blob_work, blob_after) != STORE_OK) {
        free(b);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* -------------------------------------------------------------- outcomes */

/* What a store_queue_update item carries; last_error strings point into
 * text. Freed by update_done, the item's completion. */
struct store_queue_batch {
    struct store_queue_outcome *o;
    size_t n;
    char *text;
    store_done_cb cb;
    void *arg;
};

static const char SQL_Q_DEL[] = "DELETE FROM queue WHERE id = ?1 RETURNING blob_id";
static const char SQL_Q_RETRY[] =
    "UPDATE queue SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3,"
    " warned = max(warned, ?4) WHERE id = ?1";
static const char SQL_Q_WARNED[] = "UPDATE queue SET warned = 1 WHERE id = ?1";
/* The blob's parse, search rows and index_queue row go with it (cascade). */
static const char SQL_BLOB_UNREF[] = "UPDATE blobs SET refcount = refcount - 1 WHERE id = ?1";
static const char SQL_BLOB_GC[] = "DELETE FROM blobs WHERE id = ?1 AND refcount <= 0";

/* DONE: the row and its blob reference; a row already gone is skipped. */
static int apply_done(struct store_wctx *w, int64_t id)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_Q_DEL);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int64_t blob = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return STORE_ERROR;
    if (blob == 0)
        return STORE_OK;
    st = store_wstmt(w, SQL_BLOB_UNREF);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, blob);
    if (store_wstep(st) != 0)
        return STORE_ERROR;
    st = store_wstmt(w, SQL_BLOB_GC);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, blob);
    return store_wstep(st) == 0 ? STORE_OK : STORE_ERROR;
}

int store_queue_apply(struct store_wctx *w, struct store_item *it)
{
    const struct store_queue_batch *b = it->queue;
    for (size_t i = 0; i < b->n; i++) {
        const struct store_queue_outcome *o = &b->o[i];
        if (o->what & STORE_QUEUE_DONE) {
            if (apply_done(w, o->id) != STORE_OK)
                return STORE_ERROR;
            continue;
        }
        sqlite3_stmt *st = store_wstmt(w, o->what & STORE_QUEUE_RETRY ? SQL_Q_RETRY
                                                                     : SQL_Q_WARNED);
        if (!st)
            return STORE_ERROR;
        sqlite3_bind_int64(st, 1, o->id);
        if (o->what & STORE_QUEUE_RETRY) {
            sqlite3_bind_int64(st, 2, o->next_attempt);
            sqlite3_bind_text(st, 3, o->last_error, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 4, (o->what & STORE_QUEUE_WARNED) != 0);
        }
        /* No row changed: deleted meanwhile, nothing to do. */
        if (store_wstep(st) != 0)
            return STORE_ERROR;
    }
    return STORE_OK;
}

static void update_done(void *arg, int result)
{
    struct store_queue_batch *b = arg;
    if (b->cb)
        b->cb(b->arg, result);
    free(b->o);
    free(b->text);
    free(b);
}

/* The bytes of e kept: at most STORE_QUEUE_ERROR_MAX, not ending inside a
 * UTF-8 sequence (the cut backs up to the start of a character). */
static size_t error_len(const char *e)
{
    size_t n = strnlen(e, STORE_QUEUE_ERROR_MAX + 1);
    if (n <= STORE_QUEUE_ERROR_MAX)
        return n;
    n = STORE_QUEUE_ERROR_MAX;
    while (n > 0 && ((unsigned char)e[n] & 0xC0) == 0x80)
        n--;
    return n;
}

#define QUEUE_WHAT_ALL (STORE_QUEUE_DONE | STORE_QUEUE_RETRY | STORE_QUEUE_WARNED)

int store_queue_update(struct store *s, const struct store_queue_outcome *o, size_t n,
                       store_done_cb cb, void *arg)
{
    if (!o || n == 0 || n > STORE_QUEUE_UPDATE_MAX)
        return STORE_INVALID;
    size_t text = 0;
    for (size_t i = 0; i < n; i++) {
        if (o[i].id <= 0 || o[i].what == 0 || (o[i].what & ~QUEUE_WHAT_ALL))
            return STORE_INVALID;
        if ((o[i].what & STORE_QUEUE_RETRY) && o[i].last_error)
            text += error_len(o[i].last_error);
        text++;
    }
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    struct store_queue_batch *b = calloc(1, sizeof(*b));
    struct store_item *it = calloc(1, sizeof(*it));
    if (b) {
        b->o = malloc(n * sizeof(*o));
        b->text = malloc(text);
    }
    if (!b || !it || !b->o || !b->text) {
        if (b) {
            free(b->o);
            free(b->text);
        }
        free(b);
        free(it);
        return STORE_ERROR;
    }
    char *p = b->text;
    for (size_t i = 0; i < n; i++) {
        b->o[i] = o[i];
        size_t len = 0;
        if ((o[i].what & STORE_QUEUE_RETRY) && o[i].last_error) {
            len = error_len(o[i].last_error);
            memcpy(p, o[i].last_error, len);
        }
        p[len] = '\0';
        b->o[i].last_error = p;
        p += len + 1;
    }
    b->n = n;
    b->cb = cb;
    b->arg = arg;
    it->op = OP_QUEUE_UPDATE;
    it->queue = b;
    it->done = update_done;
    it->arg = b;
    int r = store_writer_submit(s, it);
    if (r != STORE_OK) {
        it->done = NULL;
        store_item_free(&it);
        free(b->o);
        free(b->text);
        free(b);
    }
    return r;
}
