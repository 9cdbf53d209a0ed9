/*
 * index.c — the search indexer: the blob_text and blob_search rows of a
 * blob (search.c), made after its delivery, off the delivery path.
 *
 * A delivery or an append commits its new blob with a row in index_queue
 * and no text (deliver.c), so SMTP's 250 never waits for FTS5, whose
 * trigram tokenizer costs about 110 ns per byte of text. The writer thread
 * runs store_index_batch between its groups when it is quiet (deliver.c,
 * index_turn; the rules are beside STORE_INDEX_BUDGET_US in store-int.h):
 * one transaction that takes the oldest queued blobs, makes their text
 * (inflate, mime_parse, mime_text_extract, mime_casefold: exactly what a
 * search of a queued message makes) and inserts it with the day of the
 * Date: the parse kept (blob_search), deleting each queue row in the same
 * transaction. A crash loses nothing: the queue rows of an uncommitted
 * batch are still there, and the next start finds them.
 *
 * Why the writer thread and not a thread of its own: SQLite has one write
 * lock per database. A second writing connection would hold it for a whole
 * batch while the delivery writer waited in the busy handler, which sleeps
 * in steps of up to 100 ms, so a delivery's latency would depend on the
 * indexer's; nor could deliveries be given priority. On the writer thread a
 * batch is just one more thing the writer does between groups, and it looks
 * at the writer's queue after every blob.
 *
 * Durability: an index batch commits with synchronous=NORMAL (no fsync; WAL
 * mode stays consistent, and the next delivery's fsync makes it durable).
 * A batch lost in a power cut comes back as queue rows and is done again:
 * the index can always be rebuilt from the blobs.
 */
#include <stdlib.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

static const char SQL_NEXT[] =
    "SELECT q.blob_id, b.data, b.size, p.date FROM index_queue q"
    " LEFT JOIN blobs b ON b.id = q.blob_id LEFT JOIN parses p ON p.blob_id = q.blob_id"
    " WHERE q.blob_id > ?1 ORDER BY q.blob_id LIMIT 1";
static const char SQL_TEXT_ADD[] =
    "INSERT OR REPLACE INTO blob_text(rowid, header, body) VALUES (?1, ?2, ?3)";
static const char SQL_DAY_ADD[] =
    "INSERT OR REPLACE INTO blob_search(blob_id, sent_day) VALUES (?1, ?2)";
static const char SQL_DONE[] = "DELETE FROM index_queue WHERE blob_id = ?1";

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Whether the batch stops before its next blob, having worked us. */
static bool batch_over(struct store *s, int64_t us)
{
    if (us >= STORE_INDEX_BUDGET_US)
        return true;
    pthread_mutex_lock(&s->q_lock);
    bool over = s->stopping || s->index_paused || (s->q_head && us >= STORE_INDEX_MIN_US);
    pthread_mutex_unlock(&s->q_lock);
    return over;
}

/* A blob of the batch, whose other rows follow its text row. */
struct indexed {
    int64_t id;
    bool gone;          /* the queue row had no blob */
    bool has_day;
    int64_t day;
};

/*
 * The text row of the next queued blob after `after`, or none (it->id 0).
 * 0, or -1 (SQL error, or out of memory). The blob's other rows come after
 * the batch's text rows (finish_batch): a statement that may need a
 * statement journal (INSERT OR REPLACE, a foreign key) opens a savepoint,
 * at which FTS5 writes out its pending index data, so interleaving them
 * made one index segment per blob and doubled the indexer's cost.
 */
static int index_one(struct store_wctx *w, int64_t after, struct indexed *it)
{
    *it = (struct indexed){ 0 };
    sqlite3_stmt *next = store_wstmt(w, SQL_NEXT);
    if (!next)
        return -1;
    sqlite3_bind_int64(next, 1, after);
    int rc = sqlite3_step(next);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(next);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    int64_t id = sqlite3_column_int64(next, 0);
    /* The day from the stored parse, as a search of a queued blob reads it
     * (search.c). */
    const char *date = (const char *)sqlite3_column_text(next, 3);
    it->has_day = date && store_date_day(date, &it->day);
    /* No blob (blobs.data is NOT NULL): a queue row without its blob, which
     * the foreign key prevents; it just goes. */
    it->gone = sqlite3_column_type(next, 1) == SQLITE_NULL;
    struct store_text t = { 0 };
    int tr = it->gone ? 0 : 1;
    if (sqlite3_column_type(next, 1) == SQLITE_BLOB)
        tr = store_text_of_blob(sqlite3_column_blob(next, 1), (size_t)sqlite3_column_bytes(next, 1),
                                (uint64_t)sqlite3_column_int64(next, 2), &t);
    sqlite3_reset(next);
    if (tr < 0) {
        log_event(PLOG_WARN, 0, "event=store_index_error blob_id=%lld reason=no_memory",
                  (long long)id);
        return -1;
    }
    if (tr > 0) /* it stays unsearchable, as at delivery */
        log_event(PLOG_WARN, 0, "event=store_index_skip blob_id=%lld reason=unreadable",
                  (long long)id);
    int r = 0;
    if (t.header) {
        sqlite3_stmt *add = store_wstmt(w, SQL_TEXT_ADD);
        r = -1;
        if (add) {
            sqlite3_bind_int64(add, 1, id);
            sqlite3_bind_text64(add, 2, t.header, t.header_len, SQLITE_STATIC, SQLITE_UTF8);
            sqlite3_bind_text64(add, 3, t.body, t.body_len, SQLITE_STATIC, SQLITE_UTF8);
            r = store_wstep(add);
            sqlite3_clear_bindings(add); /* t goes now */
        }
    }
    store_text_free(&t);
    it->id = id;
    return r;
}

/* The batch's blob_search rows, and its blobs out of the queue. 0 or -1. */
static int finish_batch(struct store_wctx *w, const struct indexed *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int64_t id = v[i].id;
        if (!v[i].gone) {
            sqlite3_stmt *day = store_wstmt(w, SQL_DAY_ADD);
            if (!day)
                return -1;
            sqlite3_bind_int64(day, 1, id);
            if (v[i].has_day)
                sqlite3_bind_int64(day, 2, v[i].day);
            if (store_wstep(day) != 0)
                return -1;
        }
        sqlite3_stmt *done = store_wstmt(w, SQL_DONE);
        if (!done)
            return -1;
        sqlite3_bind_int64(done, 1, id);
        if (store_wstep(done) != 0)
            return -1;
    }
    return 0;
}

int store_index_batch(struct store *s, struct store_wctx *w, unsigned *indexed, bool *drained)
{
    sqlite3 *db = w->db;
    *indexed = 0;
    *drained = false;
    int64_t t0 = now_us();
    struct indexed *v = malloc(STORE_INDEX_BATCH_MAX * sizeof(*v));
    if (!v)
        return STORE_ERROR;
    w->sync_normal = true; /* until FULL is back (write_batch checks) */
    int r = store_db_exec(db, "PRAGMA synchronous=NORMAL") == 0 && store_tx_begin(db) == 0
        ? STORE_OK : STORE_ERROR;
    int64_t last = 0;
    unsigned n = 0;
    while (r == STORE_OK && n < STORE_INDEX_BATCH_MAX
           && !(n > 0 && batch_over(s, now_us() - t0))) {
        if (index_one(w, last, &v[n]) != 0) {
            r = STORE_ERROR;
        } else if (v[n].id == 0) {
            *drained = true;
            break;
        } else {
            last = v[n].id;
            n++;
        }
    }
    if (r == STORE_OK && (finish_batch(w, v, n) != 0 || store_tx_commit(db) != 0))
        r = STORE_ERROR;
    free(v);
    if (r != STORE_OK) {
        /* All or nothing: the queue rows of the batch are back. */
        store_db_log(db, "index");
        store_tx_rollback(db);
        n = 0;
        *drained = false;
    }
    if (store_db_exec(db, "PRAGMA synchronous=FULL") == 0)
        w->sync_normal = false;
    *indexed = n;
    return r;
}

int64_t store_index_count(sqlite3 *db)
{
    sqlite3_stmt *st = store_db_prepare(db, "SELECT count(*) FROM index_queue");
    if (!st)
        return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

void store_index_pause(struct store *s, bool paused)
{
    pthread_mutex_lock(&s->q_lock);
    s->index_paused = paused;
    pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
}
