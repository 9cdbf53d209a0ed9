/*
 * store-int.h — private to store/. The SQLite implementation of store.h.
 *
 * Three connections per store (see docs/store.md):
 *   rd  reader: synchronous reads from the caller's thread, query_only,
 *       never holds a read transaction open between calls;
 *   ad  admin: synchronous writes (domains, users, aliases, queue), one
 *       transaction per call, serialised by ad_lock;
 *   wr  writer: owned by the writer thread (store_start_writer), group commit.
 */
#ifndef PETREL_STORE_INT_H
#define PETREL_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

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

struct store_item;   /* one delivery on its way through the writer */

struct store_sub {
    struct store_sub *next;
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
    struct store_stats stats;

    /* Loop thread only. */
    bool closing;               /* store_deliver answers STORE_BUSY */
    struct store_sub *subs;
    bool dispatching;
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

/* deliver.c */
void store_writer_stop(struct store *s);

#endif
