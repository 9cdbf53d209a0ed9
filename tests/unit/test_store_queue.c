/*
 * test_store_queue.c — the outbound queue for the queue runner, through
 * store.h on a real on-disk database with the writer on a real uv loop:
 * store_queue_due (now, max, busy, order, both of its index plans),
 * store_queue_next, store_queue_read, store_queue_update (DONE with blob
 * references, RETRY, WARNED, rows deleted meanwhile, last_error cut) and
 * migration 6 from a version 5 file.
 *
 * Every test opens its own database in its own directory under one
 * temporary directory. Where store.h has no operation to observe or
 * arrange a detail (blob counts, next_attempt times, an old schema) the
 * test opens the file with its own SQLite connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "store/store.h"
#include "tests/unit/testdir.h"

#define LATEST_SCHEMA 6   /* the number of migrations in store/db.c */


/* One test's store, its directory and its loop. */
struct fx {
    char dir[512];
    char db_path[600];
    struct store *s;
    uv_loop_t loop;
};

/* ---------------------------------------------------------- helpers */

static void fx_start(struct fx *f, bool writer)
{
    char err[256] = "";
    if (store_open(f->dir, &f->s, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
    if (writer)
        assert_int_equal(store_start_writer(f->s, &f->loop), STORE_OK);
}

/* A fresh store in testdir/<test name>, with or without the writer. */
static struct fx *fx_open(const char *name, bool writer)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", testdir, name);
    snprintf(f->db_path, sizeof f->db_path, "%s/petrel.db", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fx_start(f, writer);
    return f;
}

/* Closes the store (and lets libuv finish its requests), keeps the files. */
static void fx_stop(struct fx *f)
{
    store_close(&f->s);
    assert_null(f->s);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void fx_close(struct fx **fp)
{
    struct fx *f = *fp;
    fx_stop(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    testdir_rm(f->dir);
    free(f);
    *fp = NULL;
}

/* Arranges a detail store.h does not set, through a separate connection. */
static void db_exec(struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* Runs the loop until every callback counted in *pending has fired. */
static void wait_pending(struct fx *f, unsigned *pending)
{
    while (*pending > 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

struct done {
    int result;
    bool fired;
    unsigned *pending;
};

static void on_done(void *arg, int result)
{
    struct done *d = arg;
    assert_false(d->fired);
    d->fired = true;
    d->result = result;
    (*d->pending)--;
}

/* Delivers data to the local users and remote addresses; returns the result. */
static int deliver(struct fx *f, const char *data, const int64_t *ids, unsigned n_ids,
                   const char *const *remote, unsigned n_remote)
{
    unsigned pending = 1;
    struct done d = { .pending = &pending };
    struct store_delivery dl = {
        .data = data, .len = strlen(data), .internal_date = 1700000000,
        .mail_from = "sender@example.test", .user_ids = ids, .n_users = n_ids,
        .remote = remote, .n_remote = n_remote,
    };
    int r = store_deliver(f->s, &dl, on_done, &d);
    if (r != STORE_OK)
        return r;
    wait_pending(f, &pending);
    return d.result;
}

static int update(struct fx *f, const struct store_queue_outcome *o, size_t n)
{
    unsigned pending = 1;
    struct done d = { .pending = &pending };
    int r = store_queue_update(f->s, o, n, on_done, &d);
    if (r != STORE_OK)
        return r;
    wait_pending(f, &pending);
    return d.result;
}

/* The due rows as the callbacks gave them. */
#define DUE_ROWS 256
struct due {
    struct store_queue_item q[DUE_ROWS];
    char text[DUE_ROWS][3][128];
    unsigned n;              /* rows through cb */
    unsigned done_n;         /* n given to done */
    int result;
    bool fired;
};

static void due_cb(void *arg, const struct store_queue_item *q)
{
    struct due *d = arg;
    assert_false(d->fired);
    assert_true(d->n < DUE_ROWS);
    d->q[d->n] = *q;
    snprintf(d->text[d->n][0], 128, "%s", q->mail_from);
    snprintf(d->text[d->n][1], 128, "%s", q->rcpt);
    snprintf(d->text[d->n][2], 128, "%s", q->domain);
    d->q[d->n].mail_from = d->text[d->n][0];
    d->q[d->n].rcpt = d->text[d->n][1];
    d->q[d->n].domain = d->text[d->n][2];
    d->n++;
}

static void due_done(void *arg, int result, unsigned n)
{
    struct due *d = arg;
    assert_false(d->fired);
    d->fired = true;
    d->result = result;
    d->done_n = n;
}

/* store_queue_due and its callbacks; d is reset first. */
static int due(struct fx *f, int64_t now, unsigned max, const int64_t *busy, size_t n_busy,
               struct due *d)
{
    memset(d, 0, sizeof(*d));
    int r = store_queue_due(f->s, now, max, busy, n_busy, due_cb, due_done, d);
    if (r != STORE_OK)
        return r;
    while (!d->fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(d->done_n, d->n);
    return d->result;
}

struct blob {
    int result;
    char *data;
    size_t len;
    bool fired;
};

static void blob_cb(void *arg, int result, char *data, size_t len)
{
    struct blob *b = arg;
    assert_false(b->fired);
    b->fired = true;
    b->result = result;
    b->data = data;
    b->len = len;
}

static int read_blob(struct fx *f, int64_t blob_id, struct blob *b)
{
    memset(b, 0, sizeof(*b));
    int r = store_queue_read(f->s, blob_id, blob_cb, b);
    if (r != STORE_OK)
        return r;
    while (!b->fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (b->result != STORE_OK)
        assert_null(b->data);
    return b->result;
}

/* The rows of store_queue_list, by id. */
struct list_row {
    int64_t id;
    unsigned attempts;
    int64_t next_attempt;
    bool warned;
    char last_error[1100];
};
struct list {
    struct list_row r[32];
    unsigned n;
};

static void list_cb(void *arg, const struct store_queue_info *q)
{
    struct list *l = arg;
    assert_true(l->n < 32);
    struct list_row *r = &l->r[l->n++];
    r->id = q->id;
    r->attempts = q->attempts;
    r->next_attempt = q->next_attempt;
    r->warned = q->warned;
    snprintf(r->last_error, sizeof r->last_error, "%s", q->last_error);
}

static const struct list_row *list_row(struct fx *f, struct list *l, int64_t id)
{
    l->n = 0;
    assert_int_equal(store_queue_list(f->s, list_cb, l), STORE_OK);
    for (unsigned i = 0; i < l->n; i++)
        if (l->r[i].id == id)
            return &l->r[i];
    return NULL;
}

static int64_t user(struct fx *f, const char *address)
{
    struct store_user u;
    if (store_user_get(f->s, address, &u) != STORE_OK) {
        assert_int_equal(store_user_add(f->s, address, "$hash$", "scram", 0), STORE_OK);
        assert_int_equal(store_user_get(f->s, address, &u), STORE_OK);
    }
    return u.id;
}

static const char MSG1[] =
    "From: Sender <sender@example.test>\r\n"
    "To: many\r\n"
    "Subject: one\r\n"
    "\r\n"
    "First message.\r\n";
static const char MSG2[] =
    "From: Sender <sender@example.test>\r\n"
    "To: many\r\n"
    "Subject: two\r\n"
    "\r\n"
    "Second message,\r\n.with a dot line\r\n";

/*
 * Queues MSG1 for a@b.test, c@A.TEST (domain lowercased), d@b.test and
 * MSG2 for e@a.test, f@b.test; ids 1..5 in that order, blob 1 and 2.
 */
static void queue_two(struct fx *f)
{
    const char *r1[] = { "a@b.test", "c@A.TEST", "d@b.test" };
    const char *r2[] = { "e@a.test", "f@b.test" };
    assert_int_equal(deliver(f, MSG1, NULL, 0, r1, 3), STORE_OK);
    assert_int_equal(deliver(f, MSG2, NULL, 0, r2, 2), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue"), 5);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT max(id) FROM queue"), 5);
}

/* ------------------------------------------------------------- due */

static void test_due(void **state)
{
    struct fx *f = fx_open("due", true);
    struct due d;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(due(f, now, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 0);

    queue_two(f);
    /* Order: domain, then blob, then id. */
    assert_int_equal(due(f, now + 1, 10, NULL, 0, &d), STORE_OK);
    static const int64_t order[] = { 2, 4, 1, 3, 5 };
    assert_int_equal(d.n, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(d.q[i].id, order[i]);
    assert_string_equal(d.q[0].domain, "a.test");
    assert_string_equal(d.q[0].rcpt, "c@A.TEST");
    assert_string_equal(d.q[0].mail_from, "sender@example.test");
    assert_int_equal(d.q[0].size, strlen(MSG1));
    assert_int_equal(d.q[1].size, strlen(MSG2));
    assert_int_equal(d.q[0].blob_id, d.q[2].blob_id);
    assert_true(d.q[1].blob_id > d.q[0].blob_id);
    assert_int_equal(d.q[0].attempts, 0);
    assert_false(d.q[0].warned);
    assert_true(d.q[0].created >= now - 5 && d.q[0].created <= now + 5);

    /* max, and busy ids skipped without taking a place. */
    assert_int_equal(due(f, now + 1, 2, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.q[0].id, 2);
    assert_int_equal(d.q[1].id, 4);
    const int64_t busy[] = { 4, 99, 2 }; /* unsorted, one unknown */
    assert_int_equal(due(f, now + 1, 2, busy, 3, &d), STORE_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.q[0].id, 1);
    assert_int_equal(d.q[1].id, 3);
    const int64_t all[] = { 1, 2, 3, 4, 5 };
    assert_int_equal(due(f, now + 1, 10, all, 5, &d), STORE_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(due(f, now + 1, 0, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 0);

    /* now: only rows with next_attempt <= now. */
    db_exec(f, "UPDATE queue SET next_attempt = 1000 WHERE id IN (1, 5);"
               " UPDATE queue SET next_attempt = 2000 WHERE id NOT IN (1, 5)");
    assert_int_equal(due(f, 999, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(due(f, 1000, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.q[0].id, 1);
    assert_int_equal(d.q[1].id, 5);
    assert_int_equal(due(f, 1999, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(due(f, 2000, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 5);

    /* Arguments. */
    assert_int_equal(store_queue_due(f->s, now, 10, NULL, 1, due_cb, due_done, &d),
                     STORE_INVALID);
    assert_int_equal(store_queue_due(f->s, now, 10, NULL, 0, NULL, due_done, &d),
                     STORE_INVALID);
    /* done may be NULL. */
    memset(&d, 0, sizeof d);
    assert_int_equal(store_queue_due(f->s, 2000, 10, NULL, 0, due_cb, NULL, &d), STORE_OK);
    while (d.n < 5)
        uv_run(&f->loop, UV_RUN_ONCE);
    fx_close(&f);

    /* Without the writer (petrelctl): not available. */
    f = fx_open("due_nowriter", false);
    assert_int_equal(store_queue_due(f->s, now, 10, NULL, 0, due_cb, due_done, &d), STORE_BUSY);
    assert_int_equal(store_queue_read(f->s, 1, blob_cb, &d), STORE_BUSY);
    struct store_queue_outcome o = { .id = 1, .what = STORE_QUEUE_DONE };
    assert_int_equal(store_queue_update(f->s, &o, 1, NULL, NULL), STORE_BUSY);
    fx_close(&f);
}

/*
 * A large queue: 100,000 rows over 1,000 domains, due listings through
 * both index plans (a small due set sorted, a large one read in order)
 * give the same rows as a plain ORDER BY on another connection.
 */
struct many {
    int64_t *id;
    char (*domain)[32];
    unsigned n, cap;
    int result;
    bool fired;
};

static void many_cb(void *arg, const struct store_queue_item *q)
{
    struct many *m = arg;
    assert_true(m->n < m->cap);
    m->id[m->n] = q->id;
    snprintf(m->domain[m->n], sizeof m->domain[0], "%s", q->domain);
    m->n++;
}

static void many_done(void *arg, int result, unsigned n)
{
    struct many *m = arg;
    assert_int_equal(n, m->n);
    m->result = result;
    m->fired = true;
}

static void expect_first(struct fx *f, int64_t now, unsigned max, const int64_t *busy,
                         size_t n_busy, const char *where)
{
    struct many m = { .cap = max };
    m.id = calloc(max, sizeof(*m.id));
    m.domain = calloc(max, sizeof(*m.domain));
    assert_true(m.id && m.domain);
    /* The best of three, round trip through the pool included. */
    double best = 1e9;
    for (int run = 0; run < 3; run++) {
        m.n = 0;
        m.fired = false;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(store_queue_due(f->s, now, max, busy, n_busy, many_cb, many_done, &m),
                         STORE_OK);
        while (!m.fired)
            uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_int_equal(m.result, STORE_OK);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        best = ms < best ? ms : best;
    }
    print_message("      due %s, max %u: %u rows, %.1f ms\n", where, max, m.n, best);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT id, domain FROM queue NOT INDEXED WHERE next_attempt <= %lld"
             " ORDER BY domain, blob_id, id", (long long)now);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    unsigned i = 0;
    while (i < max && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        bool skip = false;
        for (size_t k = 0; k < n_busy; k++)
            skip |= busy[k] == id;
        if (skip)
            continue;
        assert_true(i < m.n);
        assert_int_equal(m.id[i], id);
        assert_string_equal(m.domain[i], (const char *)sqlite3_column_text(st, 1));
        i++;
    }
    assert_int_equal(m.n, i);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(m.id);
    free(m.domain);
}

static void test_due_large(void **state)
{
    struct fx *f = fx_open("due_large", true);
    queue_two(f);
    /* The indexer done with the two blobs first: the insert below holds the
     * write lock for a while, which a waiting index batch would log. */
    for (;;) {
        struct store_stats st;
        store_stats(f->s, &st);
        if (st.index_pending == 0)
            break;
        usleep(1000);
    }
    /* 100,000 more rows on blob 1: 1% due at 1500, every one at 6000. */
    db_exec(f, "BEGIN;"
               " WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)"
               " INSERT INTO queue(blob_id, mail_from, rcpt, domain, created, next_attempt)"
               " SELECT 1 + i % 2, 'sender@example.test', 'u' || i || '@d' || (i % 997) || '.test',"
               "   'd' || (i % 997) || '.test', 1000,"
               "   CASE WHEN i % 100 = 0 THEN 1000 ELSE 5000 END FROM c;"
               " UPDATE blobs SET refcount = refcount + 50000;"
               " UPDATE queue SET next_attempt = 3000 WHERE id <= 5;"
               " COMMIT");
    const int64_t busy[] = { 106, 1006, 7, 3 };
    expect_first(f, 999, 200, NULL, 0, "none");
    expect_first(f, 1500, 200, NULL, 0, "1%");
    expect_first(f, 1500, 200, busy, 4, "1% busy");
    expect_first(f, 1500, 2000, NULL, 0, "1% (all of them)");
    expect_first(f, 6000, 200, NULL, 0, "all");
    expect_first(f, 6000, 200, busy, 4, "all busy");
    expect_first(f, 6000, 5000, NULL, 0, "all");
    int64_t when = 0;
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_int_equal(when, 1000);
    fx_close(&f);
}

/* ------------------------------------------------------------ next */

static void test_next(void **state)
{
    struct fx *f = fx_open("next", true);
    int64_t when = 0;
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_int_equal(when, INT64_MAX);
    int64_t before = (int64_t)time(NULL);
    queue_two(f);
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_true(when >= before && when <= (int64_t)time(NULL));
    db_exec(f, "UPDATE queue SET next_attempt = 5000 + id");
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_int_equal(when, 5001);
    struct store_queue_outcome o = { .id = 1, .what = STORE_QUEUE_DONE };
    assert_int_equal(update(f, &o, 1), STORE_OK);
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_int_equal(when, 5002);
    fx_close(&f);

    /* Synchronous: no writer needed. */
    f = fx_open("next_nowriter", false);
    assert_int_equal(store_queue_next(f->s, &when), STORE_OK);
    assert_int_equal(when, INT64_MAX);
    fx_close(&f);
}

/* ------------------------------------------------------------ read */

static void test_read(void **state)
{
    struct fx *f = fx_open("read", true);
    queue_two(f);
    struct due d;
    assert_int_equal(due(f, (int64_t)time(NULL) + 1, 10, NULL, 0, &d), STORE_OK);
    struct blob b;
    assert_int_equal(read_blob(f, d.q[0].blob_id, &b), STORE_OK);
    assert_int_equal(b.len, strlen(MSG1));
    assert_memory_equal(b.data, MSG1, b.len);
    free(b.data);
    assert_int_equal(read_blob(f, d.q[1].blob_id, &b), STORE_OK);
    assert_int_equal(b.len, strlen(MSG2));
    assert_memory_equal(b.data, MSG2, b.len);
    free(b.data);

    /* A large message, compressible and not, comes back byte for byte. */
    size_t big = 3 * 1024 * 1024;
    char *data = malloc(big + 1);
    assert_non_null(data);
    memcpy(data, "Subject: big\r\n\r\n", 16);
    uint32_t x = 12345;
    for (size_t i = 16; i < big; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = i % 80 == 79 ? '\n' : i < big / 2 ? 'a' + (char)(i % 26)
                                                     : (char)(' ' + (x >> 16) % 90);
    }
    data[big] = '\0';
    const char *r[] = { "big@c.test" };
    assert_int_equal(deliver(f, data, NULL, 0, r, 1), STORE_OK);
    int64_t blob = testdir_db_int(f->db_path, "SELECT blob_id FROM queue WHERE rcpt = 'big@c.test'");
    assert_int_equal(read_blob(f, blob, &b), STORE_OK);
    assert_int_equal(b.len, big);
    assert_memory_equal(b.data, data, big);
    free(b.data);
    free(data);

    /* Gone, or never there. */
    assert_int_equal(read_blob(f, 999, &b), STORE_NOTFOUND);
    assert_int_equal(store_queue_read(f->s, 0, blob_cb, &b), STORE_INVALID);
    assert_int_equal(store_queue_read(f->s, 1, NULL, &b), STORE_INVALID);
    fx_close(&f);
}

/* ---------------------------------------------------------- update */

static void test_update_done(void **state)
{
    struct fx *f = fx_open("update_done", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    int64_t alice = user(f, "alice@example.test");
    queue_two(f);
    /* MSG1 also for alice: its blob outlives its queue rows. */
    const char *r3[] = { "g@c.test" };
    assert_int_equal(deliver(f, MSG1, &alice, 1, r3, 1), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 2);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 1"), 5);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 2"), 2);

    /* MSG2's two rows: the blob, its parse and its index rows go with the last. */
    struct store_queue_outcome o[] = { { .id = 4, .what = STORE_QUEUE_DONE } };
    assert_int_equal(update(f, o, 1), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue WHERE id = 4"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 2"), 1);
    o[0].id = 5;
    assert_int_equal(update(f, o, 1), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs WHERE id = 2"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses WHERE blob_id = 2"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    struct blob b;
    assert_int_equal(read_blob(f, 2, &b), STORE_NOTFOUND);

    /* MSG1's four rows in one call, the same id twice among them, DONE
     * with other bits: each row once, the local copy keeps the blob. */
    struct store_queue_outcome all[] = {
        { .id = 1, .what = STORE_QUEUE_DONE },
        { .id = 2, .what = STORE_QUEUE_DONE | STORE_QUEUE_RETRY, .next_attempt = 1,
          .last_error = "ignored" },
        { .id = 3, .what = STORE_QUEUE_DONE | STORE_QUEUE_WARNED },
        { .id = 6, .what = STORE_QUEUE_DONE },
        { .id = 6, .what = STORE_QUEUE_DONE },
    };
    assert_int_equal(update(f, all, 5), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 1"), 1);
    assert_int_equal(read_blob(f, 1, &b), STORE_OK);
    assert_memory_equal(b.data, MSG1, b.len);
    free(b.data);
    struct store_stats stats;
    store_stats(f->s, &stats);
    assert_int_equal(stats.deliveries, 3); /* updates are not deliveries */
    fx_close(&f);
}

static void test_update_retry_warned(void **state)
{
    struct fx *f = fx_open("update_retry", true);
    queue_two(f);
    int64_t now = (int64_t)time(NULL);
    struct store_queue_outcome o[] = {
        { .id = 1, .what = STORE_QUEUE_RETRY, .next_attempt = now + 600,
          .last_error = "451 4.7.1 greylisted, try later" },
        { .id = 2, .what = STORE_QUEUE_WARNED },
        { .id = 3, .what = STORE_QUEUE_RETRY | STORE_QUEUE_WARNED, .next_attempt = now + 900,
          .last_error = NULL },
    };
    assert_int_equal(update(f, o, 3), STORE_OK);
    struct list l;
    const struct list_row *r = list_row(f, &l, 1);
    assert_non_null(r);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->next_attempt, now + 600);
    assert_string_equal(r->last_error, "451 4.7.1 greylisted, try later");
    assert_false(r->warned);
    r = list_row(f, &l, 2); /* WARNED alone changes nothing else */
    assert_int_equal(r->attempts, 0);
    assert_true(r->next_attempt <= now);
    assert_string_equal(r->last_error, "");
    assert_true(r->warned);
    r = list_row(f, &l, 3);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->next_attempt, now + 900);
    assert_string_equal(r->last_error, "");
    assert_true(r->warned);

    /* No longer due until next_attempt; then due again, with the counts. */
    struct due d;
    assert_int_equal(due(f, now + 1, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.q[0].id, 2);
    assert_true(d.q[0].warned);
    assert_int_equal(d.q[1].id, 4);
    assert_int_equal(d.q[2].id, 5);
    assert_int_equal(due(f, now + 600, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.q[2].id, 1);
    assert_int_equal(d.q[2].attempts, 1);
    assert_false(d.q[2].warned);

    /* A second retry counts again; WARNED stays set without the bit. */
    o[2].what = STORE_QUEUE_RETRY;
    o[2].last_error = "timeout";
    o[2].next_attempt = now + 1800;
    assert_int_equal(update(f, &o[2], 1), STORE_OK);
    r = list_row(f, &l, 3);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->next_attempt, now + 1800);
    assert_string_equal(r->last_error, "timeout");
    assert_true(r->warned);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue"), 5);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 1"), 3);

    /* Arguments: nothing applied, no callback. */
    struct store_queue_outcome bad[] = {
        { .id = 1, .what = STORE_QUEUE_RETRY, .next_attempt = 1 },
        { .id = 2, .what = 0 },
    };
    assert_int_equal(store_queue_update(f->s, bad, 2, NULL, NULL), STORE_INVALID);
    bad[1].what = 8;
    assert_int_equal(store_queue_update(f->s, bad, 2, NULL, NULL), STORE_INVALID);
    bad[1].what = STORE_QUEUE_DONE;
    bad[1].id = 0;
    assert_int_equal(store_queue_update(f->s, bad, 2, NULL, NULL), STORE_INVALID);
    assert_int_equal(store_queue_update(f->s, bad, 0, NULL, NULL), STORE_INVALID);
    assert_int_equal(store_queue_update(f->s, NULL, 1, NULL, NULL), STORE_INVALID);
    r = list_row(f, &l, 1);
    assert_int_equal(r->attempts, 1);

    /* cb may be NULL: the update still goes through. */
    struct store_queue_outcome w = { .id = 4, .what = STORE_QUEUE_WARNED };
    assert_int_equal(store_queue_update(f->s, &w, 1, NULL, NULL), STORE_OK);
    fx_stop(f); /* drains the writer */
    fx_start(f, true);
    assert_true(list_row(f, &l, 4)->warned);
    fx_close(&f);
}

static void test_update_deleted(void **state)
{
    struct fx *f = fx_open("update_deleted", true);
    queue_two(f);
    /* petrelctl queue del while the runner has rows 1 and 4 in flight. */
    assert_int_equal(store_queue_del(f->s, 1), STORE_OK);
    assert_int_equal(store_queue_del(f->s, 4), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 1"), 2);
    struct store_queue_outcome o[] = {
        { .id = 1, .what = STORE_QUEUE_DONE },
        { .id = 4, .what = STORE_QUEUE_RETRY | STORE_QUEUE_WARNED, .next_attempt = 1,
          .last_error = "x" },
        { .id = 2, .what = STORE_QUEUE_RETRY, .next_attempt = 7, .last_error = "450" },
        { .id = 12345, .what = STORE_QUEUE_WARNED },
    };
    assert_int_equal(update(f, o, 4), STORE_OK);
    /* The deleted rows' blob references were not dropped twice. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 1"), 2);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs WHERE id = 2"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue"), 3);
    struct list l;
    const struct list_row *r = list_row(f, &l, 2);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->next_attempt, 7);
    assert_string_equal(r->last_error, "450");
    fx_close(&f);
}

static void test_update_error_cut(void **state)
{
    struct fx *f = fx_open("update_cut", true);
    queue_two(f);
    char *e = malloc(5001);
    assert_non_null(e);
    memset(e, 'x', 5000);
    e[5000] = '\0';
    /* Row 2: a 2-byte UTF-8 character across byte 1000 is left out whole. */
    char *u = malloc(1101);
    assert_non_null(u);
    memset(u, 'y', 1100);
    u[999] = (char)0xC3;
    u[1000] = (char)0xA9;
    u[1100] = '\0';
    /* Row 3: exactly 1000 bytes, kept whole. */
    char *k = malloc(1001);
    assert_non_null(k);
    memset(k, 'z', 1000);
    k[1000] = '\0';
    struct store_queue_outcome o[] = {
        { .id = 1, .what = STORE_QUEUE_RETRY, .next_attempt = 1, .last_error = e },
        { .id = 2, .what = STORE_QUEUE_RETRY, .next_attempt = 1, .last_error = u },
        { .id = 3, .what = STORE_QUEUE_RETRY, .next_attempt = 1, .last_error = k },
    };
    assert_int_equal(update(f, o, 3), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT length(CAST(last_error AS BLOB)) FROM queue WHERE id = 1"),
                     STORE_QUEUE_ERROR_MAX);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT length(CAST(last_error AS BLOB)) FROM queue WHERE id = 2"),
                     999);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT length(CAST(last_error AS BLOB)) FROM queue WHERE id = 3"),
                     1000);
    struct list l;
    const struct list_row *r = list_row(f, &l, 1);
    assert_int_equal(strlen(r->last_error), 1000);
    assert_int_equal(strspn(r->last_error, "x"), 1000);
    free(e);
    free(u);
    free(k);
    fx_close(&f);
}

/* -------------------------------------------------------- migration */

static void test_migration(void **state)
{
    struct fx *f = fx_open("migration", true);
    queue_two(f);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), LATEST_SCHEMA);
    struct store_queue_outcome o = { .id = 2, .what = STORE_QUEUE_RETRY, .next_attempt = 42,
                                     .last_error = "kept" };
    assert_int_equal(update(f, &o, 1), STORE_OK);
    fx_stop(f);

    /* Back to version 5: no warned column, no queue_order index. */
    db_exec(f, "DROP INDEX queue_order; ALTER TABLE queue DROP COLUMN warned;"
               " PRAGMA user_version = 5");
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM pragma_table_info('queue')"
                               " WHERE name = 'warned'"), 0);
    fx_start(f, true);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), LATEST_SCHEMA);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                               " AND name = 'queue_order'"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue"), 5);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM queue WHERE warned = 0"), 5);
    struct list l;
    const struct list_row *r = list_row(f, &l, 2);
    assert_non_null(r);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->next_attempt, 42);
    assert_string_equal(r->last_error, "kept");
    assert_false(r->warned);
    struct due d;
    assert_int_equal(due(f, (int64_t)time(NULL) + 1, 10, NULL, 0, &d), STORE_OK);
    assert_int_equal(d.n, 5);
    o.what = STORE_QUEUE_WARNED;
    assert_int_equal(update(f, &o, 1), STORE_OK);
    assert_true(list_row(f, &l, 2)->warned);
    fx_stop(f);

    /* Migration 6 runs again harmlessly over its own schema. */
    db_exec(f, "PRAGMA user_version = 5");
    fx_start(f, true);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), LATEST_SCHEMA);
    assert_true(list_row(f, &l, 2)->warned);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_due_large),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_update_done),
        cmocka_unit_test(test_update_retry_warned),
        cmocka_unit_test(test_update_deleted),
        cmocka_unit_test(test_update_error_cut),
        cmocka_unit_test(test_migration),
    };
    return cmocka_run_group_tests(tests, testdir_setup, testdir_teardown);
}
