/*
 * db.c — connections, schema migrations, store_open/store_close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

/*
 * Schema migrations, in order: migrations[i] takes user_version i to i + 1.
 * Never edit a released entry; append a new one. All pending entries run in
 * one transaction on open, so a crash leaves the old version intact.
 */
static const char *const migrations[] = {
    /* 1: the base schema. */
    "CREATE TABLE domains ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"              /* lowercase */
    "  created INTEGER NOT NULL);"

    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL UNIQUE COLLATE NOCASE,"  /* local@domain */
    "  local TEXT NOT NULL,"
    "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    "  pw_hash TEXT NOT NULL DEFAULT '',"
    "  scram_secret TEXT NOT NULL DEFAULT '',"
    "  quota INTEGER NOT NULL DEFAULT 0,"       /* bytes, 0 = unlimited */
    "  used INTEGER NOT NULL DEFAULT 0,"        /* bytes of stored messages */
    "  created INTEGER NOT NULL);"
    "CREATE INDEX users_domain ON users(domain_id);"

    /* One row per (alias, target); "@domain" is the catch-all. */
    "CREATE TABLE aliases ("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL COLLATE NOCASE,"
    "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    "  target TEXT NOT NULL COLLATE NOCASE,"
    "  UNIQUE(address, target));"
    "CREATE INDEX aliases_domain ON aliases(domain_id);"
    "CREATE INDEX aliases_target ON aliases(target);"

    "CREATE TABLE mailboxes ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  special_use TEXT NOT NULL DEFAULT '',"
    "  uidvalidity INTEGER NOT NULL,"
    "  uidnext INTEGER NOT NULL DEFAULT 1,"
    "  highestmodseq INTEGER NOT NULL DEFAULT 1,"
    "  subscribed INTEGER NOT NULL DEFAULT 1,"
    "  UNIQUE(user_id, name));"

    /* Blob refcount = messages rows + queue rows that point at it. */
    "CREATE TABLE blobs ("
    "  id INTEGER PRIMARY KEY,"
    "  sha256 BLOB NOT NULL UNIQUE,"
    "  data BLOB NOT NULL,"                     /* zlib stream */
    "  size INTEGER NOT NULL,"                  /* raw bytes */
    "  refcount INTEGER NOT NULL);"

    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    "  uid INTEGER NOT NULL,"
    "  modseq INTEGER NOT NULL,"
    "  flags TEXT NOT NULL DEFAULT '',"         /* space-separated, keywords too */
    "  internal_date INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id),"
    "  UNIQUE(mailbox_id, uid));"
    "CREATE INDEX messages_blob ON messages(blob_id);"

    /* mime_encode() of the parse, plus envelope fields for sorting/search. */
    "CREATE TABLE parses ("
    "  blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,"
    "  mime BLOB,"
    "  date TEXT, subject TEXT, from_addr TEXT, message_id TEXT);"

    "CREATE TABLE queue ("
    "  id INTEGER PRIMARY KEY,"
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id),"
    "  mail_from TEXT NOT NULL,"
    "  rcpt TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"                   /* lowercase, for per-domain runs */
    "  created INTEGER NOT NULL,"
    "  next_attempt INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX queue_due ON queue(next_attempt);"
    "CREATE INDEX queue_blob ON queue(blob_id);",

    /* 2: IMAP. Subscriptions by name (RFC 3501 §6.3.6: a name may be
     * subscribed without existing), taken over from mailboxes.subscribed,
     * which is no longer read; expunge tombstones for QRESYNC (RFC 7162);
     * the persistent UIDVALIDITY counter; modseq indexes. Written so that
     * running it again is harmless (IF NOT EXISTS, OR IGNORE). */
    "CREATE TABLE IF NOT EXISTS subscriptions ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY(user_id, name)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO subscriptions(user_id, name)"
    "  SELECT user_id, name FROM mailboxes WHERE subscribed <> 0;"

    "CREATE TABLE IF NOT EXISTS expunged ("
    "  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    "  uid INTEGER NOT NULL,"
    "  modseq INTEGER NOT NULL,"
    "  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(mailbox_id, modseq);"
    "CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);"

    /* name -> last value given; 'uidvalidity' only, today. */
    "CREATE TABLE IF NOT EXISTS counters ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO counters(name, value)"
    "  SELECT 'uidvalidity', coalesce(max(uidvalidity), 0) FROM mailboxes;",

    /* 3: IMAP SEARCH. blob_text: the FTS5 index of each blob's folded
     * header and body text (search.c), rowid = blob id, trigram tokens so
     * that any substring of 3 or more characters is found through the
     * index; case_sensitive because the text is folded before it is stored
     * (mime_casefold), so the index folds nothing more than SEARCH does;
     * detail=none (which trigrams, not where: an eighth of the size, and
     * the stored text is checked anyway); columnsize=0 (no ranking). The
     * text itself is stored in the table. blob_search: the day of the
     * Date: field (NULL: none or unreadable), a row for every indexed
     * blob. The FTS row goes with its blob by trigger (an FTS5 table takes
     * no foreign key), blob_search by cascade. Existing blobs were indexed
     * by a backfill in migration_code, now left to migration 4. Runs again
     * harmlessly. */
    "CREATE VIRTUAL TABLE IF NOT EXISTS blob_text USING fts5(header, body,"
    "  tokenize = 'trigram case_sensitive 1', detail = none, columnsize = 0);"
    "CREATE TABLE IF NOT EXISTS blob_search ("
    "  blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,"
    "  sent_day INTEGER);"                      /* unix seconds, 00:00 UTC */
    "CREATE TRIGGER IF NOT EXISTS blobs_text_gc AFTER DELETE ON blobs BEGIN"
    "  DELETE FROM blob_text WHERE rowid = old.id;"
    " END;",

    /* 4: the search index off the delivery path. index_queue: the blobs
     * whose blob_text and blob_search rows the indexer (index.c) has still
     * to make; a new blob is queued in its delivery's transaction, and
     * leaves the queue in the transaction that inserts its rows (or with
     * the blob). The blobs without a blob_search row (stored before
     * migration 3, on an upgrade from version 2) are queued here, so the
     * migration reads no message. Runs again harmlessly. */
    "CREATE TABLE IF NOT EXISTS index_queue ("
    "  blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE);"
    "INSERT OR IGNORE INTO index_queue(blob_id)"
    "  SELECT id FROM blobs b"
    "  WHERE NOT EXISTS (SELECT 1 FROM blob_search x WHERE x.blob_id = b.id);",

    /* 5: DKIM signing keys (dkim.c). The private keys live in the store
     * rather than in files beside it, so one backup of the store holds
     * everything a restored server needs, with nothing to keep in step.
     * They are as secret as the password hashes and the mail next to them:
     * data_dir is made 0700 by store_open, but petrel.db, -wal and -shm get
     * SQLite's 0644 less the umask, so only a data_dir that is not open to
     * other users (store_open made it, or the admin chmod'ed it 0700) keeps
     * them to the server's user; petrelctl dkim generate warns otherwise.
     * algorithm: "rsa-sha256" or "ed25519-sha256", checked by dkim.c (no
     * CHECK: a new algorithm then needs no table rebuild). created: unix
     * seconds; a domain signs with its newest key. The keys go with their
     * domain (cascade). Runs again harmlessly. */
    "CREATE TABLE IF NOT EXISTS dkim_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    "  selector TEXT NOT NULL,"                 /* lowercase */
    "  algorithm TEXT NOT NULL,"
    "  private_pem TEXT NOT NULL,"              /* unencrypted PEM */
    "  created INTEGER NOT NULL,"
    "  UNIQUE(domain_id, selector));",

    /* 6: the queue runner (queue.c: store_queue_due, store_queue_update).
     * queue.warned: 1 once a delay notice (RFC 3464 "delayed") went out for
     * the row, so the runner sends one per recipient; existing rows get 0.
     * It is added by queue_add_warned below (ALTER TABLE queue ADD COLUMN
     * warned INTEGER NOT NULL DEFAULT 0), as SQLite has no ADD COLUMN IF
     * NOT EXISTS. The due listing is ordered by domain, blob_id, id (one
     * connection per domain, one transaction per message), and two indexes
     * serve it, chosen by the size of the due set: queue_next (replacing
     * queue_due) holds the sort keys after next_attempt, so a small due set
     * is sorted from the index alone, the table read only for the rows
     * returned; queue_order holds next_attempt after the sort keys, so the
     * first rows of a large due set are read in order without sorting the
     * rest, the due test made in the index. queue_next also serves
     * min(next_attempt) (store_queue_next). Runs again harmlessly. */
    "DROP INDEX IF EXISTS queue_due;"
    "CREATE INDEX IF NOT EXISTS queue_next ON queue(next_attempt, domain, blob_id);"
    "CREATE INDEX IF NOT EXISTS queue_order ON queue(domain, blob_id, next_attempt);",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/*
 * Migration 6: ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL
 * DEFAULT 0, unless the column is there (the migration runs again when a
 * lower user_version is written over a newer schema: a column cannot be
 * added twice). Existing rows get 0: no delay notice sent yet.
 */
static int queue_add_warned(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_db_prepare(db,
        "SELECT count(*) FROM pragma_table_info('queue') WHERE name = 'warned'");
    if (!st) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st);
    int have = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (have < 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    if (have > 0)
        return 0;
    char *msg = NULL;
    if (sqlite3_exec(db, "ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/*
 * Work a migration needs beyond SQL, run after migrations[version - 1] in
 * the same transaction: migration 6's column (above). Migration 3 had one,
 * the backfill of the search index: every stored message inflated, parsed
 * and indexed while the migration held the write lock, for minutes on a
 * large database. It is gone: migration 4 queues those blobs for the
 * indexer, which works in the background once petreld runs, and searches
 * are exact meanwhile.
 */
static const struct {
    int version;
    int (*run)(sqlite3 *db, char *err, size_t errlen);
} migration_code[] = {
    { 6, queue_add_warned },
};

const char *store_strerror(int result)
{
    switch (result) {
    case STORE_OK: return "ok";
    case STORE_ERROR: return "database error";
    case STORE_NOTFOUND: return "not found";
    case STORE_EXISTS: return "already exists";
    case STORE_INVALID: return "invalid address or argument";
    case STORE_LOOP: return "alias would loop";
    case STORE_QUOTA: return "over quota";
    case STORE_BUSY: return "store is shutting down";
    default: return "unknown error";
    }
}

void store_db_log(sqlite3 *db, const char *op)
{
    char buf[256];
    log_event(PLOG_ERROR, 0, "event=store_error op=%s error=%s", op,
              log_value(db ? sqlite3_errmsg(db) : "no connection", buf, sizeof(buf)));
}

int store_db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char buf[256];
        log_event(PLOG_ERROR, 0, "event=store_error op=exec error=%s",
                  log_value(msg ? msg : "?", buf, sizeof(buf)));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_db_log(db, "prepare");
        return NULL;
    }
    return st;
}

const char *store_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

/* BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies to
 * it rather than to a later lock upgrade that cannot wait (SQLITE_BUSY). */
int store_tx_begin(sqlite3 *db)
{
    return store_db_exec(db, "BEGIN IMMEDIATE");
}

int store_tx_commit(sqlite3 *db)
{
    if (store_db_exec(db, "COMMIT") != 0) {
        store_tx_rollback(db);
        return -1;
    }
    return 0;
}

void store_tx_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* The admin connection is shared by the threads of one process: one
 * transaction at a time, under ad_lock. */
int store_admin_begin(struct store *s)
{
    pthread_mutex_lock(&s->ad_lock);
    if (store_tx_begin(s->ad) != 0) {
        pthread_mutex_unlock(&s->ad_lock);
        return STORE_ERROR;
    }
    return STORE_OK;
}

int store_admin_end(struct store *s, int r)
{
    if (r == STORE_OK) {
        if (store_tx_commit(s->ad) != 0)
            r = STORE_ERROR;
    } else {
        store_tx_rollback(s->ad);
    }
    pthread_mutex_unlock(&s->ad_lock);
    return r;
}

/*
 * RFC 3501 §2.3.1.1: a name must never show the same UIDVALIDITY for other
 * messages. One counter for the whole database, so no value is ever given
 * twice, whatever was deleted and created again: max(now, last + 1).
 */
uint32_t store_next_uidvalidity(sqlite3 *db)
{
    sqlite3_stmt *st = store_db_prepare(db,
        "UPDATE counters SET value = max(value + 1, ?1) WHERE name = 'uidvalidity'"
        " RETURNING value");
    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || v <= 0 || v > UINT32_MAX) {
        store_db_log(db, "uidvalidity");
        return 0;
    }
    return (uint32_t)v;
}

/*
 * The pool readers serve store_fetch (queued work) and the synchronous
 * searches alike: whoever holds one counts in pool_rd_out, so store_close
 * never closes a connection in use nor frees the store under a reader.
 */
sqlite3 *store_pool_reader(struct store *s, bool *closed)
{
    sqlite3 *db = NULL;
    if (closed)
        *closed = false;
    pthread_mutex_lock(&s->q_lock);
    if (s->pool_closed) {
        pthread_mutex_unlock(&s->q_lock);
        if (closed)
            *closed = true;
        return NULL;
    }
    s->pool_rd_out++;
    if (s->n_pool_rd > 0)
        db = s->pool_rd[--s->n_pool_rd];
    pthread_mutex_unlock(&s->q_lock);
    if (db)
        return db;
    char err[256];
    if (store_db_open(s->path, true, &db, err, sizeof(err)) != 0) {
        char buf[300];
        log_event(PLOG_ERROR, 0, "event=store_error op=pool_reader_open error=%s",
                  log_value(err, buf, sizeof(buf)));
        store_pool_reader_put(s, NULL);
        return NULL;
    }
    return db;
}

void store_pool_reader_put(struct store *s, sqlite3 *db)
{
    pthread_mutex_lock(&s->q_lock);
    if (--s->pool_rd_out == 0 && s->fetching == 0)
        pthread_cond_broadcast(&s->fetch_cond);
    if (!db) {
        pthread_mutex_unlock(&s->q_lock);
        return;
    }
    if (s->n_pool_rd == s->cap_pool_rd) {
        size_t ncap = s->cap_pool_rd ? s->cap_pool_rd * 2 : 4;
        sqlite3 **p = realloc(s->pool_rd, ncap * sizeof(*p));
        if (p) {
            s->pool_rd = p;
            s->cap_pool_rd = ncap;
        }
    }
    if (s->n_pool_rd < s->cap_pool_rd) {
        s->pool_rd[s->n_pool_rd++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&s->q_lock);
    store_db_close(&db);
}

int store_db_open(const char *path, bool query_only, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);
    /* journal_mode is persistent in the file, the rest is per connection. */
    const char *setup = query_only
        ? "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA query_only=ON;"
        : "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;";
    char *msg = NULL;
    if (sqlite3_exec(db, setup, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void store_db_close(sqlite3 **db)
{
    if (*db) {
        sqlite3_close_v2(*db);
        *db = NULL;
    }
}

static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = store_db_prepare(db, "PRAGMA user_version");
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Runs the pending migrations in one transaction. An up-to-date file is only
 * read: opening must not wait for the write lock, or petrelctl could not even
 * list while petreld's writer (or another petrelctl) holds it. When work is
 * pending the version is read again under the write lock: petrelctl and
 * petreld may open a fresh file together.
 */
static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    int v = 0;
    if (user_version(db, &v) != 0) {
        snprintf(err, errlen, "reading schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (v == N_MIGRATIONS)
        return 0;
    if (store_tx_begin(db) != 0 || user_version(db, &v) != 0) {
        snprintf(err, errlen, "reading schema version: %s", sqlite3_errmsg(db));
        store_tx_rollback(db);
        return -1;
    }
    if (v > N_MIGRATIONS) {
        snprintf(err, errlen, "database schema version %d is newer than this program (%d)",
                 v, N_MIGRATIONS);
        store_tx_rollback(db);
        return -1;
    }
    for (int i = v; i < N_MIGRATIONS; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db, migrations[i], NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "migration %d: %s", i + 1, msg ? msg : "?");
            sqlite3_free(msg);
            store_tx_rollback(db);
            return -1;
        }
        for (size_t k = 0; k < sizeof(migration_code) / sizeof(migration_code[0]); k++) {
            if (migration_code[k].version != i + 1)
                continue;
            char why[200] = "";
            if (migration_code[k].run(db, why, sizeof(why)) != 0) {
                snprintf(err, errlen, "migration %d: %s", i + 1, why);
                store_tx_rollback(db);
                return -1;
            }
        }
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", N_MIGRATIONS);
    if (store_db_exec(db, sql) != 0 || store_tx_commit(db) != 0) {
        snprintf(err, errlen, "migration commit: %s", sqlite3_errmsg(db));
        store_tx_rollback(db);
        return -1;
    }
    if (v != N_MIGRATIONS)
        log_event(PLOG_INFO, 0, "event=store_migrate from=%d to=%d", v, N_MIGRATIONS);
    return 0;
}

int store_open(const char *data_dir, struct store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!data_dir || !*data_dir) {
        snprintf(err, errlen, "no data directory");
        return -1;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", data_dir, strerror(errno));
        return -1;
    }
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((size_t)snprintf(s->path, sizeof(s->path), "%s/petrel.db", data_dir)
        >= sizeof(s->path)) {
        snprintf(err, errlen, "%s: path too long", data_dir);
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->ad_lock, NULL);
    pthread_mutex_init(&s->q_lock, NULL);
    /* The writer waits on q_cond with a timeout (the indexer's timers). */
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cond, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&s->idle_cond, NULL);
    pthread_cond_init(&s->fetch_cond, NULL);

    /* The admin connection is opened first: it creates the file and runs the
     * migrations; the reader is query_only and opens a migrated schema. */
    if (store_db_open(s->path, false, &s->ad, err, errlen) != 0
        || migrate(s->ad, err, errlen) != 0
        || store_db_open(s->path, true, &s->rd, err, errlen) != 0) {
        store_close(&s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(struct store **sp)
{
    struct store *s = *sp;
    if (!s)
        return;
    store_writer_stop(s);
    /* Fetches and searches on the pool use the pool readers: let them
     * finish, then hand out no more. */
    pthread_mutex_lock(&s->q_lock);
    while (s->fetching > 0 || s->pool_rd_out > 0)
        pthread_cond_wait(&s->fetch_cond, &s->q_lock);
    s->pool_closed = true;
    pthread_mutex_unlock(&s->q_lock);
    for (size_t i = 0; i < s->n_pool_rd; i++)
        store_db_close(&s->pool_rd[i]);
    free(s->pool_rd);
    while (s->subs) {
        struct store_sub *next = s->subs->next;
        free(s->subs);
        s->subs = next;
    }
    store_db_close(&s->rd);
    store_db_close(&s->ad);
    pthread_cond_destroy(&s->fetch_cond);
    pthread_cond_destroy(&s->idle_cond);
    pthread_cond_destroy(&s->q_cond);
    pthread_mutex_destroy(&s->q_lock);
    pthread_mutex_destroy(&s->ad_lock);
    free(s);
    *sp = NULL;
}
