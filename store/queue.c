/*
 * queue.c — the outbound queue as the administrator sees it: list on the
 * reader, delete and flush on the admin connection (one transaction each).
 *
 * Queue rows are created by the writer (store_deliver with remote
 * recipients); each row holds one reference on its message blob, so
 * deleting a row drops that reference and the blob goes with the last one.
 */
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

int store_queue_list(struct store *s, store_queue_cb cb, void *arg)
{
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT q.id, q.mail_from, q.rcpt, q.domain, q.created, q.next_attempt,"
        " q.attempts, q.last_error, b.size"
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
