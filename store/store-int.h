/*
 * store-int.h — private to store/. The SQLite implementation of store.h.
 *
 * Three connections per store (see docs/store.md):
 *   rd  reader: synchronous reads from the caller's thread, query_only,
 *       never holds a read transaction open between calls;
 *   ad  admin: synchronous writes (domains, users, aliases, queue), one
 *       transaction per call, serialised by ad_lock;
 *   wr  writer: owned by the writer thread (store_start_writer), group commit,
 *       and the search indexer in the writer's idle time (index.c).
 */
#ifndef PETREL_STORE_INT_H
#define PETREL_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "mime/mime.h"
#include "store/store.h"

/* RFC 5321 §4.5.3.1.1 / §4.5.3.1.2 limits; 64 + 1 + 253 fits store_user.address. */
#define STORE_LOCAL_MAX 64
#define STORE_DOMAIN_MAX 253
#define STORE_ADDR_MAX (STORE_LOCAL_MAX + 1 + STORE_DOMAIN_MAX)
#define STORE_ALIAS_DEPTH 8       /* alias expansion depth at delivery */
#define STORE_ALIAS_TARGETS 1000  /* targets one alias add may name */
#define STORE_BATCH_MAX 256       /* deliveries per group commit */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_ZLIB_LEVEL 6

/*
 * The search indexer (index.c, docs/store.md "The indexer"): deliveries and
 * appends only queue a new blob (index_queue); the writer thread builds its
 * text and blob_search rows later, in batches, when its own queue is empty:
 *
 * - quiet writer (no item in flight, none written for STORE_INDEX_QUIET_MS):
 *   batches back to back, so a burst of mail pays nothing for the index,
 *   which catches up after it;
 * - busy writer, but the index behind for STORE_INDEX_LATE_MS: batches in
 *   at most 1 / STORE_INDEX_SHARE of the writer's time, so a steady load
 *   cannot leave the index behind for good.
 *
 * A batch stops after STORE_INDEX_BUDGET_US of work or STORE_INDEX_BATCH_MAX
 * blobs, or as soon as a writer
 * item is queued once it has done STORE_INDEX_MIN_US, or when the writer
 * stops or the indexer is paused; a delivery thus waits for at most the
 * rest of one blob and one commit without fsync. A batch that failed is
 * retried after STORE_INDEX_RETRY_MS.
 */
#define STORE_INDEX_QUIET_MS 5
#define STORE_INDEX_LATE_MS 10000
#define STORE_INDEX_SHARE 4
#define STORE_INDEX_BUDGET_US 10000
#define STORE_INDEX_BATCH_MAX 1024    /* blobs */
#define STORE_INDEX_MIN_US 1000
#define STORE_INDEX_RETRY_MS 1000
/* A search checks the blobs not indexed yet by reading the queue first when
 * it holds at most this many, else by walking the mailbox (search.c). */
#define STORE_SEARCH_QUEUE_SCAN 4096

/*
 * The search text of one blob (search.c): the header and body text folded
 * with mime_casefold. Made by the indexer, or by a search for a message
 * not indexed yet.
 */
struct store_text {
    char *header;               /* "name: value\n" lines; NULL: no text row */
    char *body;
    size_t header_len, body_len;
};

/* What a writer item does; OP_DELIVER and OP_APPEND are prepared on the
 * thread pool first (prepare() in deliver.c), the others go straight to the
 * writer queue. OP_QUEUE_UPDATE is queue.c's (store_queue_update). */
enum store_op {
    OP_DELIVER, OP_APPEND, OP_MBOX_CREATE, OP_MBOX_DELETE, OP_MBOX_RENAME,
    OP_SUBSCRIBE, OP_FLAGS, OP_EXPUNGE, OP_COPY, OP_QUEUE_UPDATE,
};

struct store_queue_batch;

/* A change event made by an item, published after its commit. */
struct store_pending_change {
    struct store_change ev;     /* string fields are set from the owned ones */
    char *flags, *name, *old_name;
};

/*
 * One operation on its way through the writer. Created on the loop, filled
 * by prepare() (pool) for deliveries and appends, applied by the writer in
 * its own savepoint, completed and freed on the loop.
 */
struct store_item {
    struct store_item *next;
    struct store *s;
    enum store_op op;
    uv_work_t work;
    int refs;                   /* loop thread: after_prepare + completion */

    /* OP_DELIVER, OP_APPEND: the message */
    const char *data;           /* caller's, valid until done */
    size_t len;
    int64_t internal_date;
    char *mail_from;
    int64_t *user_ids;          /* distinct */
    unsigned n_users;
    char **remote;
    unsigned n_remote;

    /* prepare() */
    int prep;                   /* STORE_OK or STORE_ERROR */
    unsigned char sha[32];
    unsigned char *z;
    size_t zlen;
    char *parse;
    size_t parse_len;
    char *date, *subject, *from, *message_id;
    int64_t new_blob;           /* writer: the blob this item created (queued
                                 * for the indexer) */

    /* IMAP operations (imap.c) */
    int64_t user_id;
    int64_t mailbox_id, dst_mailbox_id;
    char *name, *name2;         /* mailbox names; special-use in name2 for create */
    char *flags;                /* canonical */
    int mode;                   /* enum store_flags_mode; subscribe: on */
    uint64_t unchangedsince;
    uint32_t *uids;             /* ascending, distinct */
    size_t n_uids;
    bool all_deleted;           /* expunge without a UID list */
    bool force;          /* OP_EXPUNGE: the UIDs named, \Deleted or not */
    bool move;

    /* OP_QUEUE_UPDATE: the outcomes, queue.c's; it->done and it->arg are
     * queue.c's completion, which frees them */
    struct store_queue_batch *queue;

    /* writer results */
    int result;
    struct store_pending_change *changes;
    unsigned n_changes, cap_changes;
    uint32_t uidvalidity, uid;
    uint64_t modseq;
    uint32_t *r_uids, *r_uids2; /* expunged / failed / copy src, copy dst */
    size_t n_r, n_r2, cap_r, cap_r2;
    struct store_flag_change *r_flags;
    size_t n_rflags, cap_rflags;

    /* completion: done for deliveries and mailbox writes, else the typed one */
    store_done_cb done;
    store_append_cb append_cb;
    store_flags_cb flags_cb;
    store_expunge_cb expunge_cb;
    store_copy_cb copy_cb;
    void *arg;
};

/* The writer's prepared statements: store_wstmt caches one per call site
 * (keyed by the SQL literal's address). */
struct store_wctx {
    sqlite3 *db;
    sqlite3_stmt **deliver;     /* deliver.c's own table */
    struct { const char *sql; sqlite3_stmt *st; } *cache;
    size_t n_cache, cap_cache;
    bool sync_normal;           /* db may be at synchronous=NORMAL (an index
                                 * batch): FULL again before any group */
};

struct store_sub {
    struct store_sub *next, *prev;
    int64_t user_id;
    store_change_cb cb;
    void *arg;
    bool dead;         /* unsubscribed while events were being dispatched */
};

struct store {
    char path[PATH_MAX];
    sqlite3 *rd;
    sqlite3 *ad;
    pthread_mutex_t ad_lock;

    /* Writer; everything below q_lock is protected by it. */
    uv_loop_t *loop;
    uv_async_t *async;          /* heap: freed by its close callback */
    sqlite3 *wr;
    pthread_t thread;
    bool writer_started;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;      /* writer: items queued or stopping */
    pthread_cond_t idle_cond;   /* store_close: inflight reached 0 */
    struct store_item *q_head, *q_tail;       /* prepared, for the writer */
    struct store_item *done_head, *done_tail; /* written, for the loop */
    unsigned inflight;          /* accepted, not yet through the writer */
    bool stopping;              /* writer: exit once the queue is empty */
    struct store_stats stats;   /* index_pending: exact when 0, may count
                                 * blobs deleted before the indexer saw them */
    bool index_paused;          /* store_index_pause: no index batch */
    /* Reader connections for the thread pool (store_fetch, the searches):
     * the free list, how many are handed out, the fetches queued or running;
     * store_close waits until the last two are 0 (fetch_cond), then sets
     * pool_closed and store_pool_reader answers NULL. */
    sqlite3 **pool_rd;
    size_t n_pool_rd, cap_pool_rd;
    unsigned pool_rd_out;
    unsigned fetching;
    bool pool_closed;
    pthread_cond_t fetch_cond;

    /* Loop thread only. */
    bool closing;               /* store_deliver answers STORE_BUSY */
    struct store_sub *subs;
    bool dispatching;
    bool dead_subs;    /* some subs were unsubscribed during a dispatch */
};

/* db.c */
int store_db_open(const char *path, bool query_only, sqlite3 **out, char *err, size_t errlen);
void store_db_close(sqlite3 **db);
int store_db_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql);
void store_db_log(sqlite3 *db, const char *op);
int store_tx_begin(sqlite3 *db);
int store_tx_commit(sqlite3 *db);
void store_tx_rollback(sqlite3 *db);
/* A transaction on the admin connection: begin takes ad_lock; end commits
 * when r is STORE_OK (else rolls back), releases it and returns the result. */
int store_admin_begin(struct store *s);
int store_admin_end(struct store *s, int r);
const char *store_col_text(sqlite3_stmt *st, int col);

/* addr.c: syntax and normal form. out gets local@domain with the domain
 * lowercased (and "@domain" for a catch-all when allowed). */
bool store_domain_valid(const char *domain);
int store_addr_norm(const char *address, bool allow_catchall, char *out, size_t outlen);
/* Points at the domain part of a normalised address (after '@'). */
const char *store_addr_domain(const char *norm);

/* admin.c, shared with resolve.c: the id of a domain, user or alias on db. */
int64_t store_domain_id(sqlite3 *db, const char *domain);
int64_t store_user_id(sqlite3 *db, const char *norm);
bool store_alias_exists(sqlite3 *db, const char *norm);

/* db.c: a fresh UIDVALIDITY from the persistent counter, inside the
 * caller's write transaction on db; 0 on error. */
uint32_t store_next_uidvalidity(sqlite3 *db);
/* db.c: a query_only connection for a synchronous read on any thread but
 * the loop's (a pool thread), from the free list or opened; NULL on error or
 * once store_close has begun (*closed set then). Give it back with put,
 * always: store_close waits for every connection handed out. */
sqlite3 *store_pool_reader(struct store *s, bool *closed);
void store_pool_reader_put(struct store *s, sqlite3 *db);

/* query.c: inflates a blob of size raw bytes (NUL added, not counted). */
int store_inflate_blob(const void *z, size_t zlen, uint64_t size, char **data, size_t *len);

/* deliver.c */
void store_writer_stop(struct store *s);
/* Queues an item that needs no preparation; STORE_BUSY when closing. */
int store_writer_submit(struct store *s, struct store_item *it);
/* Queues an item (OP_DELIVER, OP_APPEND) for prepare() on the pool first. */
int store_writer_prepare(struct store *s, struct store_item *it);
void store_item_free(struct store_item **it);
/* Appends a change event to it; -1 when out of memory. */
int store_item_change(struct store_item *it, enum store_change_kind kind, int64_t user_id,
                      int64_t mailbox_id, uint32_t uid, uint64_t modseq, const char *flags,
                      const char *name, const char *old_name);
/* Finds or creates it's blob (prepared) and adds refs to its refcount. */
int64_t store_blob_ref(struct store_wctx *w, struct store_item *it, int64_t refs);
sqlite3_stmt *store_wstmt(struct store_wctx *w, const char *sql);
int store_wstep(sqlite3_stmt *st);

/* search.c: the search text of one blob (see struct store_text). */
#define STORE_TEXT_CAP MIME_TEXT_CAP  /* header + body text bytes per blob */
/* Fills t from data[0, len) and its parse m (NULL, when the message could
 * not be parsed: t stays empty, no text row). -1 when out of memory (t is
 * then empty). */
int store_text_make(const struct mime_message *m, const char *data, size_t len,
                    struct store_text *t);
/* The same from a stored blob (zlib stream z of size raw bytes): inflate,
 * mime_parse, store_text_make. 0; 1 when the blob cannot be inflated (t
 * empty, logged); -1 when out of memory. */
int store_text_of_blob(const void *z, size_t zlen, uint64_t size, struct store_text *t);
void store_text_free(struct store_text *t);
/* The day written in a Date: value (the stored parse's parses.date), unix
 * seconds of 00:00 UTC; false when there is none or it cannot be read
 * (RFC 3501 SENT* keys, the indexer's blob_search rows). */
bool store_date_day(const char *value, int64_t *day);

/* index.c: the indexer (see STORE_INDEX_BUDGET_US). store_index_batch runs
 * one batch in its own transaction on the writer's connection: the oldest
 * queued blobs get their text and blob_search rows and leave the queue. *drained is set when
 * the queue was found empty. STORE_OK or STORE_ERROR (rolled back or
 * partly done; logged). Writer thread only. */
int store_index_batch(struct store *s, struct store_wctx *w, unsigned *indexed, bool *drained);
/* The number of queued blobs (at writer start); -1 on error. */
int64_t store_index_count(sqlite3 *db);
/* Test hook (not in store.h): while paused the writer starts no index batch
 * and stops a running one after its current blob, so a search sees blobs
 * not indexed yet. Any thread. */
void store_index_pause(struct store *s, bool paused);

/* queue.c: writer side of store_queue_update (OP_QUEUE_UPDATE). */
int store_queue_apply(struct store_wctx *w, struct store_item *it);

/* imap.c: writer side and completion of the IMAP operations. */
int store_imap_apply(struct store_wctx *w, struct store_item *it);
void store_imap_reset(struct store_item *it);
void store_imap_complete(struct store_item *it);
/* imap.c: canonical flags (see store.h) in a malloc'd *out; STORE_INVALID. */
int store_flags_canon(const char *flags, char **out);
/* imap.c: a mailbox name checked and with INBOX normalised; STORE_INVALID. */
int store_mailbox_name(const char *in, char *out, size_t outlen);

#endif
