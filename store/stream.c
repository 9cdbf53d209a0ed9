/*
 * stream.c — a message read in pieces: for responses too big to hold at
 * once (a 25 MB POP3 RETR). Each read is one job on the thread pool that
 * reads some compressed bytes with SQLite's incremental blob I/O and
 * inflates them into the stream's piece buffer; the zlib state lives in
 * the stream between jobs, so memory per stream is one piece, one input
 * buffer and zlib's window, whatever the message size.
 *
 * Every read runs in its own read transaction and first checks that the
 * blob found by the first read is still the same blob (id and SHA-256): a
 * blob freed by an expunge meanwhile answers STORE_NOTFOUND, and a rowid
 * reused by another message can never be read into this one's stream.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/core.h"
#include "store/store-int.h"

#define STREAM_INPUT (32 * 1024)   /* compressed bytes read per blob read */

struct store_stream {
    struct store *s;
    int64_t mailbox_id;
    uint32_t uid;

    int64_t blob_id;               /* 0 until the first read found it */
    unsigned char sha256[32];
    uint64_t size;                 /* raw bytes, from the blob row */
    uint64_t inflated;             /* raw bytes handed out so far */
    int zoff;                      /* compressed bytes read so far */
    z_stream z;
    bool z_ready, ended;

    size_t piece_len;
    int result;

    uv_work_t work;
    bool busy;                     /* a read is queued or running */
    bool closed;                   /* closed while busy: freed after it */
    store_stream_cb cb;
    void *arg;

    /* Sized at the first read to the message (a 5 KB message needs 5 KB,
     * not a 160 KB allocation that malloc would map and unmap each time). */
    unsigned char *in;
    size_t in_cap;
    char *piece;
    size_t piece_cap;
};

int store_stream_open(struct store *s, int64_t mailbox_id, uint32_t uid,
                      struct store_stream **out)
{
    *out = NULL;
    if (mailbox_id <= 0 || uid == 0)
        return STORE_INVALID;
    struct store_stream *st = malloc(sizeof(*st));
    if (!st)
        return STORE_ERROR;
    memset(st, 0, sizeof *st);
    st->s = s;
    st->mailbox_id = mailbox_id;
    st->uid = uid;
    st->work.data = st;
    *out = st;
    return STORE_OK;
}

static void stream_free(struct store_stream *st)
{
    if (st->z_ready)
        inflateEnd(&st->z);
    free(st->in);
    free(st->piece);
    free(st);
}

/* The buffers, once: no bigger than the message and its compressed form. */
static int alloc_buffers(struct store_stream *st, int zlen)
{
    if (st->piece)
        return STORE_OK;
    st->piece_cap = st->size < STORE_STREAM_PIECE ? (size_t)st->size + 1 : STORE_STREAM_PIECE;
    st->in_cap = zlen < STREAM_INPUT ? (size_t)zlen + 1 : STREAM_INPUT;
    st->piece = malloc(st->piece_cap);
    st->in = malloc(st->in_cap);
    return st->piece && st->in ? STORE_OK : STORE_ERROR;
}

void store_stream_close(struct store_stream **stp)
{
    struct store_stream *st = *stp;
    if (!st)
        return;
    *stp = NULL;
    if (st->busy)
        st->closed = true;
    else
        stream_free(st);
}

/* The first read finds the blob; later ones check it is still there. */
static int find_blob(sqlite3 *db, struct store_stream *st)
{
    sqlite3_stmt *q;
    if (st->blob_id == 0) {
        q = store_db_prepare(db,
            "SELECT b.id, b.sha256, b.size FROM messages m JOIN blobs b ON b.id = m.blob_id"
            " WHERE m.mailbox_id = ?1 AND m.uid = ?2");
        if (!q)
            return STORE_ERROR;
        sqlite3_bind_int64(q, 1, st->mailbox_id);
        sqlite3_bind_int64(q, 2, st->uid);
    } else {
        q = store_db_prepare(db, "SELECT id, sha256, size FROM blobs WHERE id = ?1 AND sha256 = ?2");
        if (!q)
            return STORE_ERROR;
        sqlite3_bind_int64(q, 1, st->blob_id);
        sqlite3_bind_blob(q, 2, st->sha256, sizeof(st->sha256), SQLITE_STATIC);
    }
    int rc = sqlite3_step(q), r = STORE_NOTFOUND;
    if (rc == SQLITE_ROW && st->blob_id == 0) {
        if (sqlite3_column_bytes(q, 1) != (int)sizeof(st->sha256)) {
            r = STORE_ERROR;
        } else {
            st->blob_id = sqlite3_column_int64(q, 0);
            memcpy(st->sha256, sqlite3_column_blob(q, 1), sizeof(st->sha256));
            st->size = (uint64_t)sqlite3_column_int64(q, 2);
            r = STORE_OK;
        }
    } else if (rc == SQLITE_ROW) {
        r = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        store_db_log(db, "stream");
        r = STORE_ERROR;
    }
    sqlite3_finalize(q);
    return r;
}

static int corrupt(struct store_stream *st, const char *why)
{
    log_event(PLOG_ERROR, 0, "event=store_error op=stream error=corrupt_blob reason=%s"
              " blob_id=%lld size=%llu inflated=%llu", why, (long long)st->blob_id,
              (unsigned long long)st->size, (unsigned long long)st->inflated);
    return STORE_ERROR;
}

/* Inflates from the open blob until the piece is full or the stream ends. */
static int inflate_piece(struct store_stream *st, sqlite3_blob *blob)
{
    int zlen = sqlite3_blob_bytes(blob);
    st->z.next_out = (Bytef *)st->piece;
    st->z.avail_out = (uInt)st->piece_cap;
    while (st->z.avail_out > 0 && !st->ended) {
        if (st->z.avail_in == 0) {
            int n = zlen - st->zoff;
            if (n <= 0)
                return corrupt(st, "truncated");
            if ((size_t)n > st->in_cap)
                n = (int)st->in_cap;
            if (sqlite3_blob_read(blob, st->in, n, st->zoff) != SQLITE_OK)
                return STORE_ERROR;
            st->zoff += n;
            st->z.next_in = st->in;
            st->z.avail_in = (uInt)n;
        }
        int zr = inflate(&st->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            st->ended = true;
        else if (zr != Z_OK)
            return corrupt(st, "zlib");
    }
    st->piece_len = st->piece_cap - st->z.avail_out;
    st->inflated += st->piece_len;
    if (st->inflated > st->size || (st->ended && st->inflated != st->size))
        return corrupt(st, "size");
    return STORE_OK;
}

static int read_piece(sqlite3 *db, struct store_stream *st)
{
    int r = find_blob(db, st);
    if (r != STORE_OK)
        return r;
    if (!st->z_ready) {
        if (inflateInit(&st->z) != Z_OK)
            return STORE_ERROR;
        st->z_ready = true;
    }
    sqlite3_blob *blob;
    if (sqlite3_blob_open(db, "main", "blobs", "data", st->blob_id, 0, &blob) != SQLITE_OK) {
        store_db_log(db, "stream_blob_open");
        return STORE_ERROR;
    }
    r = alloc_buffers(st, sqlite3_blob_bytes(blob));
    if (r == STORE_OK)
        r = inflate_piece(st, blob);
    sqlite3_blob_close(blob);
    return r;
}

/* Thread pool: one piece, in one read transaction. */
static void read_work(uv_work_t *req)
{
    struct store_stream *st = req->data;
    struct store *s = st->s;
    st->piece_len = 0;
    st->result = STORE_ERROR;
    sqlite3 *db = store_pool_reader(s, NULL);
    if (db) {
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
            st->result = read_piece(db, st);
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        store_pool_reader_put(s, db);
    }
    pthread_mutex_lock(&s->q_lock);
    if (--s->fetching == 0)
        pthread_cond_broadcast(&s->fetch_cond);
    pthread_mutex_unlock(&s->q_lock);
}

/* Loop: hands the piece over; does not touch the store (it may be closed). */
static void read_after(uv_work_t *req, int status)
{
    struct store_stream *st = req->data;
    st->busy = false;
    if (st->closed) {
        stream_free(st);
        return;
    }
    int r = status == 0 ? st->result : STORE_ERROR;
    if (r != STORE_OK)
        st->piece_len = 0;
    st->cb(st->arg, r, st->piece, st->piece_len);
}

int store_stream_read(struct store_stream *st, store_stream_cb cb, void *arg)
{
    struct store *s = st->s;
    if (st->busy || st->ended || !cb)
        return STORE_INVALID;
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    st->cb = cb;
    st->arg = arg;
    pthread_mutex_lock(&s->q_lock);
    s->fetching++;
    pthread_mutex_unlock(&s->q_lock);
    st->busy = true;
    if (uv_queue_work(s->loop, &st->work, read_work, read_after) != 0) {
        st->busy = false;
        pthread_mutex_lock(&s->q_lock);
        s->fetching--;
        pthread_mutex_unlock(&s->q_lock);
        return STORE_ERROR;
    }
    return STORE_OK;
}

uint64_t store_stream_size(const struct store_stream *st)
{
    return st->size;
}

bool store_stream_ended(const struct store_stream *st)
{
    return st->ended;
}
