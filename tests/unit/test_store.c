/*
 * test_store.c — the SQLite store through store.h on a real on-disk
 * database: migrations, domains, users, aliases and recipient resolution,
 * delivery through the writer thread on a real uv loop (shared blobs, UIDs,
 * MODSEQ, group commit, quota, change events), byte-exact reads, the
 * outbound queue.
 *
 * Every test opens its own database in its own directory under one
 * temporary directory. Where store.h has no operation to observe a detail
 * (blob refcounts, user_version) the test reads the file with its own
 * read-only SQLite connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    bool writer;
};

/* ---------------------------------------------------------- helpers */

/* A fresh store in testdir/<test name>, with or without the writer. */
static struct fx *fx_open(const char *name, bool writer)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", testdir, name);
    snprintf(f->db_path, sizeof f->db_path, "%s/petrel.db", f->dir);
    char err[256] = "";
    if (store_open(f->dir, &f->s, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (writer) {
        assert_int_equal(store_start_writer(f->s, &f->loop), STORE_OK);
        f->writer = true;
    }
    return f;
}

static void fx_close(struct fx **fp)
{
    struct fx *f = *fp;
    store_close(&f->s);
    assert_null(f->s);
    /* Lets libuv finish the work requests and close the async handle. */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    testdir_rm(f->dir);
    free(f);
    *fp = NULL;
}

static void add_user(struct fx *f, const char *address, uint64_t quota)
{
    assert_int_equal(store_user_add(f->s, address, "$hash$", "scram", quota), STORE_OK);
}

static int64_t user_id(struct fx *f, const char *address)
{
    struct store_user u;
    assert_int_equal(store_user_get(f->s, address, &u), STORE_OK);
    return u.id;
}

/* A delivery's completion, as the callback saw it. */
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

/* Runs the loop until every callback counted in *pending has fired. */
static void wait_pending(struct fx *f, unsigned *pending)
{
    while (*pending > 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

/* Delivers one message and waits for its completion; returns the result. */
static int deliver_wait(struct fx *f, const char *data, size_t len, const int64_t *ids,
                        unsigned n_ids, const char *const *remote, unsigned n_remote)
{
    unsigned pending = 1;
    struct done d = { .pending = &pending };
    struct store_delivery dl = {
        .data = data, .len = len, .internal_date = 1700000000,
        .mail_from = "sender@remote.test", .user_ids = ids, .n_users = n_ids,
        .remote = remote, .n_remote = n_remote,
    };
    int r = store_deliver(f->s, &dl, on_done, &d);
    if (r != STORE_OK)
        return r;
    wait_pending(f, &pending);
    assert_true(d.fired);
    return d.result;
}

/* Collects mailboxes, messages and queue rows from the list callbacks. */
struct mbox_row {
    char name[64];
    char special_use[32];
    struct store_mailbox_info info;
};

struct mbox_rows {
    struct mbox_row row[16];
    unsigned n;
};

static void mbox_cb(void *arg, const struct store_mailbox_info *m)
{
    struct mbox_rows *r = arg;
    assert_true(r->n < 16);
    struct mbox_row *row = &r->row[r->n++];
    snprintf(row->name, sizeof row->name, "%s", m->name);
    snprintf(row->special_use, sizeof row->special_use, "%s", m->special_use);
    row->info = *m;
    row->info.name = row->name;
    row->info.special_use = row->special_use;
}

static const struct store_mailbox_info *find_mbox(struct mbox_rows *r, const char *name)
{
    for (unsigned i = 0; i < r->n; i++)
        if (strcmp(r->row[i].name, name) == 0)
            return &r->row[i].info;
    return NULL;
}

static struct store_mailbox_info inbox_of(struct fx *f, const char *address)
{
    struct mbox_rows rows = { .n = 0 };
    assert_int_equal(store_mailbox_list(f->s, address, mbox_cb, &rows), STORE_OK);
    const struct store_mailbox_info *m = find_mbox(&rows, "INBOX");
    assert_non_null(m);
    return *m;
}

struct msg_rows {
    struct store_message_info m[512];
    unsigned n;
};

static void msg_cb(void *arg, const struct store_message_info *m)
{
    struct msg_rows *r = arg;
    assert_true(r->n < 512);
    r->m[r->n] = *m;
    r->m[r->n].flags = NULL; /* only valid during the callback */
    r->n++;
}

struct queue_rows {
    int64_t id[16];
    char rcpt[16][64];
    char domain[16][64];
    char from[16][64];
    uint64_t size[16];
    int64_t next_attempt[16];
    unsigned n;
};

static void queue_cb(void *arg, const struct store_queue_info *q)
{
    struct queue_rows *r = arg;
    assert_true(r->n < 16);
    r->id[r->n] = q->id;
    snprintf(r->rcpt[r->n], sizeof r->rcpt[0], "%s", q->rcpt);
    snprintf(r->domain[r->n], sizeof r->domain[0], "%s", q->domain);
    snprintf(r->from[r->n], sizeof r->from[0], "%s", q->mail_from);
    r->size[r->n] = q->size;
    r->next_attempt[r->n] = q->next_attempt;
    r->n++;
}

static void expect_read(struct fx *f, int64_t mailbox_id, uint32_t uid, const char *want,
                        size_t want_len)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(store_message_read(f->s, mailbox_id, uid, &data, &len), STORE_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, want_len);
    free(data);
}

static const char MSG[] =
    "Return-Path: <sender@remote.test>\r\n"
    "Received: from remote.test by mail.example.test; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "From: Sender <sender@remote.test>\r\n"
    "To: alice@example.test\r\n"
    "Subject: Hello\r\n"
    "Message-ID: <1@remote.test>\r\n"
    "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "\r\n"
    "Body line one.\r\n"
    ".leading dot and trailing spaces   \r\n";

/* -------------------------------------------------------- migrations */

static void test_migrations(void **state)
{
    struct fx *f = fx_open("migrations", false);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), LATEST_SCHEMA);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                               " AND name IN ('domains', 'users', 'aliases', 'mailboxes',"
                               " 'blobs', 'messages', 'parses', 'queue')"), 8);
    /* WAL is a property of the file. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Reopening is a no-op: same version, data kept. */
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    store_close(&f->s);
    char err[256] = "";
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), LATEST_SCHEMA);
    assert_true(store_domain_is_local(f->s, "example.test"));

    /* Two stores on one file (petreld and petrelctl) coexist. */
    struct store *other = NULL;
    assert_int_equal(store_open(f->dir, &other, err, sizeof err), 0);
    assert_true(store_domain_is_local(other, "example.test"));
    assert_int_equal(store_domain_add(other, "second.test"), STORE_OK);
    assert_true(store_domain_is_local(f->s, "second.test"));
    store_close(&other);
    assert_null(other);

    /* A file from a newer program is refused, not downgraded. */
    store_close(&f->s);
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    err[0] = '\0';
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), -1);
    assert_null(f->s);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);

    /* A data directory that cannot be created. */
    struct store *bad = NULL;
    assert_int_equal(store_open("/nonexistent-petrel/dir", &bad, err, sizeof err), -1);
    assert_null(bad);
    fx_close(&f);
}

/* ----------------------------------------------------------- domains */

struct dom_rows {
    char name[8][64];
    unsigned users[8], aliases[8];
    unsigned n;
};

static void dom_cb(void *arg, const struct store_domain_info *d)
{
    struct dom_rows *r = arg;
    assert_true(r->n < 8);
    snprintf(r->name[r->n], sizeof r->name[0], "%s", d->name);
    r->users[r->n] = d->users;
    r->aliases[r->n] = d->aliases;
    r->n++;
}

static void test_domains(void **state)
{
    struct fx *f = fx_open("domains", false);
    assert_int_equal(store_domain_add(f->s, "Example.TEST"), STORE_OK);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_EXISTS);
    assert_int_equal(store_domain_add(f->s, "b.test"), STORE_OK);
    assert_int_equal(store_domain_add(f->s, "bad..test"), STORE_INVALID);
    assert_int_equal(store_domain_add(f->s, "-bad.test"), STORE_INVALID);
    assert_int_equal(store_domain_add(f->s, ""), STORE_INVALID);
    assert_true(store_domain_is_local(f->s, "EXAMPLE.test"));
    assert_false(store_domain_is_local(f->s, "other.test"));

    add_user(f, "alice@example.test", 0);
    assert_int_equal(store_alias_add(f->s, "info@example.test", "alice@example.test"),
                     STORE_OK);
    struct dom_rows rows = { .n = 0 };
    assert_int_equal(store_domain_list(f->s, dom_cb, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.name[0], "b.test");
    assert_string_equal(rows.name[1], "example.test");
    assert_int_equal(rows.users[1], 1);
    assert_int_equal(rows.aliases[1], 1);

    /* An alias elsewhere pointing into a deleted domain goes with it. */
    add_user(f, "carol@b.test", 0);
    assert_int_equal(store_alias_add(f->s, "fwd@b.test", "alice@example.test,carol@b.test"),
                     STORE_OK);
    assert_int_equal(store_domain_del(f->s, "EXAMPLE.test"), STORE_OK);
    assert_int_equal(store_domain_del(f->s, "example.test"), STORE_NOTFOUND);
    assert_false(store_domain_is_local(f->s, "example.test"));
    struct store_user u;
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_NOTFOUND);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM aliases WHERE address = 'fwd@b.test'"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM mailboxes"), 6);
    fx_close(&f);
}

/* ------------------------------------------------------------- users */

static void count_user(void *arg, const struct store_user *u)
{
    (*(unsigned *)arg)++;
}

static void test_users(void **state)
{
    struct fx *f = fx_open("users", false);
    assert_int_equal(store_user_add(f->s, "alice@example.test", "h", "s", 0), STORE_NOTFOUND);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    assert_int_equal(store_user_add(f->s, "Alice@Example.Test", "h1", "s1", 5000), STORE_OK);
    assert_int_equal(store_user_add(f->s, "alice@example.test", "h", "s", 0), STORE_EXISTS);
    assert_int_equal(store_user_add(f->s, "ALICE@example.test", "h", "s", 0), STORE_EXISTS);
    assert_int_equal(store_user_add(f->s, "no-at-sign", "h", "s", 0), STORE_INVALID);
    assert_int_equal(store_user_add(f->s, "a..b@example.test", "h", "s", 0), STORE_INVALID);
    assert_int_equal(store_user_add(f->s, "@example.test", "h", "s", 0), STORE_INVALID);

    struct store_user u;
    assert_int_equal(store_user_get(f->s, "alice@EXAMPLE.test", &u), STORE_OK);
    assert_string_equal(u.address, "Alice@example.test");
    assert_string_equal(u.pw_hash, "h1");
    assert_string_equal(u.scram_secret, "s1");
    assert_int_equal(u.quota, 5000);
    assert_int_equal(u.used, 0);
    assert_int_equal(u.messages, 0);

    /* The six default mailboxes, INBOX first, with RFC 6154 special-use. */
    struct mbox_rows rows = { .n = 0 };
    assert_int_equal(store_mailbox_list(f->s, "alice@example.test", mbox_cb, &rows), STORE_OK);
    assert_int_equal(rows.n, 6);
    assert_string_equal(rows.row[0].name, "INBOX");
    static const char *const want[][2] = {
        { "INBOX", "" }, { "Sent", "\\Sent" }, { "Drafts", "\\Drafts" },
        { "Trash", "\\Trash" }, { "Junk", "\\Junk" }, { "Archive", "\\Archive" },
    };
    for (size_t i = 0; i < 6; i++) {
        const struct store_mailbox_info *m = find_mbox(&rows, want[i][0]);
        assert_non_null(m);
        assert_string_equal(m->special_use, want[i][1]);
        assert_int_equal(m->uidnext, 1);
        assert_int_equal(m->messages, 0);
        assert_int_equal(m->unseen, 0);
        assert_int_equal(m->size, 0);
        assert_true(m->uidvalidity > 0);
        assert_true(m->subscribed);
    }
    assert_int_equal(store_mailbox_list(f->s, "nobody@example.test", mbox_cb, &rows),
                     STORE_NOTFOUND);
    assert_int_equal(store_mailbox_list(f->s, "bad", mbox_cb, &rows), STORE_INVALID);

    assert_int_equal(store_user_passwd(f->s, "alice@example.test", "h2", "s2"), STORE_OK);
    assert_int_equal(store_user_passwd(f->s, "bob@example.test", "h2", "s2"), STORE_NOTFOUND);
    assert_int_equal(store_user_set_quota(f->s, "alice@example.test", 0), STORE_OK);
    assert_int_equal(store_user_set_quota(f->s, "bob@example.test", 1), STORE_NOTFOUND);
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_OK);
    assert_string_equal(u.pw_hash, "h2");
    assert_string_equal(u.scram_secret, "s2");
    assert_int_equal(u.quota, 0);

    add_user(f, "bob@example.test", 0);
    assert_int_equal(store_domain_add(f->s, "other.test"), STORE_OK);
    add_user(f, "carol@other.test", 0);
    unsigned n = 0;
    assert_int_equal(store_user_list(f->s, NULL, count_user, &n), STORE_OK);
    assert_int_equal(n, 3);
    n = 0;
    assert_int_equal(store_user_list(f->s, "example.test", count_user, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_user_list(f->s, "none.test", count_user, &n), STORE_NOTFOUND);

    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_OK);
    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_NOTFOUND);
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_NOTFOUND);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM mailboxes"), 12);
    fx_close(&f);
}

/* ------------------------------------------------ aliases, resolution */

struct alias_rows {
    char address[8][64];
    char targets[8][256];
    unsigned n;
};

static void alias_cb(void *arg, const struct store_alias_info *a)
{
    struct alias_rows *r = arg;
    assert_true(r->n < 8);
    snprintf(r->address[r->n], sizeof r->address[0], "%s", a->address);
    snprintf(r->targets[r->n], sizeof r->targets[0], "%s", a->targets);
    r->n++;
}

static bool has_user(const struct store_rcpt *r, int64_t id)
{
    for (unsigned i = 0; i < r->n_users; i++)
        if (r->user_ids[i] == id)
            return true;
    return false;
}

static void test_aliases_resolve(void **state)
{
    struct fx *f = fx_open("aliases", false);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    add_user(f, "bob@example.test", 1000);
    int64_t alice = user_id(f, "alice@example.test");
    int64_t bob = user_id(f, "bob@example.test");

    struct store_rcpt r;
    /* Exact user, domain case-insensitive, local part too. */
    assert_int_equal(store_resolve_rcpt(f->s, "alice@EXAMPLE.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 1);
    assert_int_equal(r.user_ids[0], alice);
    assert_true(r.quota_free[0] == UINT64_MAX);
    assert_int_equal(store_resolve_rcpt(f->s, "ALICE@example.test", &r), STORE_OK);
    assert_int_equal(r.user_ids[0], alice);
    assert_true(r.quota[0] == UINT64_MAX);
    assert_false(r.truncated);
    assert_int_equal(store_resolve_rcpt(f->s, "bob@example.test", &r), STORE_OK);
    assert_int_equal(r.quota_free[0], 1000);
    assert_int_equal(r.quota[0], 1000);

    assert_int_equal(store_resolve_rcpt(f->s, "nobody@example.test", &r), STORE_NOTFOUND);
    assert_int_equal(store_resolve_rcpt(f->s, "alice@remote.test", &r), STORE_NOTFOUND);
    assert_int_equal(store_resolve_rcpt(f->s, "not an address", &r), STORE_INVALID);

    /* Plus-addressing. */
    assert_int_equal(store_resolve_rcpt(f->s, "alice+lists@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 1);
    assert_int_equal(r.user_ids[0], alice);
    assert_int_equal(store_resolve_rcpt(f->s, "nobody+x@example.test", &r), STORE_NOTFOUND);

    /* Aliases: several targets, a remote target, alias of an alias. */
    assert_int_equal(store_alias_add(f->s, "sales@example.test",
                                     "alice@example.test, bob@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "sales@example.test", "alice@example.test"),
                     STORE_EXISTS);
    assert_int_equal(store_alias_add(f->s, "sales@example.test", "partner@remote.test"),
                     STORE_OK);
    assert_int_equal(store_alias_add(f->s, "all@example.test", "sales@example.test"),
                     STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "all@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 2);
    assert_true(has_user(&r, alice) && has_user(&r, bob));
    assert_int_equal(r.n_remote, 1);
    assert_string_equal(r.remote[0], "partner@remote.test");
    /* Plus-addressing on an alias. */
    assert_int_equal(store_resolve_rcpt(f->s, "sales+q4@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 2);
    /* An alias named user+tag takes precedence over plus-addressing. */
    assert_int_equal(store_alias_add(f->s, "alice+bob@example.test", "bob@example.test"),
                     STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "alice+bob@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 1);
    assert_int_equal(r.user_ids[0], bob);

    /* Refusals: loops, unknown local targets, user/alias clashes. */
    assert_int_equal(store_alias_add(f->s, "loop@example.test", "loop@example.test"),
                     STORE_LOOP);
    assert_int_equal(store_alias_add(f->s, "sales@example.test", "all@example.test"),
                     STORE_LOOP);
    assert_int_equal(store_alias_add(f->s, "a@example.test", "alice@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "b@example.test", "a@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "c@example.test", "b@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "a@example.test", "c@example.test"), STORE_LOOP);
    assert_int_equal(store_resolve_rcpt(f->s, "c@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 1);
    assert_int_equal(r.user_ids[0], alice);
    assert_int_equal(store_alias_add(f->s, "x@example.test", "ghost@example.test"),
                     STORE_NOTFOUND);
    assert_int_equal(store_alias_add(f->s, "alice@example.test", "bob@example.test"),
                     STORE_EXISTS);
    assert_int_equal(store_user_add(f->s, "sales@example.test", "h", "s", 0), STORE_EXISTS);
    assert_int_equal(store_alias_add(f->s, "x@unknown.test", "alice@example.test"),
                     STORE_NOTFOUND);
    assert_int_equal(store_alias_add(f->s, "x@example.test", ""), STORE_INVALID);
    assert_int_equal(store_alias_add(f->s, "x@example.test", "bad"), STORE_INVALID);

    /* Catch-all takes what nobody else takes, not what a user takes. */
    assert_int_equal(store_alias_add(f->s, "@example.test", "bob@example.test"), STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "nobody@example.test", &r), STORE_OK);
    assert_int_equal(r.n_users, 1);
    assert_int_equal(r.user_ids[0], bob);
    assert_int_equal(store_resolve_rcpt(f->s, "alice@example.test", &r), STORE_OK);
    assert_int_equal(r.user_ids[0], alice);
    assert_int_equal(store_resolve_rcpt(f->s, "alice+x@example.test", &r), STORE_OK);
    assert_int_equal(r.user_ids[0], alice);

    struct alias_rows rows = { .n = 0 };
    assert_int_equal(store_alias_list(f->s, "example.test", alias_cb, &rows), STORE_OK);
    assert_int_equal(rows.n, 7);
    assert_string_equal(rows.address[0], "@example.test");
    unsigned sales = 0;
    while (sales < rows.n && strcmp(rows.address[sales], "sales@example.test") != 0)
        sales++;
    assert_true(sales < rows.n);
    assert_string_equal(rows.targets[sales],
                        "alice@example.test,bob@example.test,partner@remote.test");

    /* Deleting one target, then a whole alias (and what points at it). */
    assert_int_equal(store_alias_del(f->s, "sales@example.test", "bob@example.test"), STORE_OK);
    assert_int_equal(store_alias_del(f->s, "sales@example.test", "bob@example.test"),
                     STORE_NOTFOUND);
    assert_int_equal(store_alias_del(f->s, "sales@example.test", NULL), STORE_OK);
    assert_int_equal(store_alias_del(f->s, "sales@example.test", NULL), STORE_NOTFOUND);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM aliases WHERE address = 'all@example.test'"),
                     0);
    /* all@ is gone with its only target: the catch-all now takes it. */
    assert_int_equal(store_resolve_rcpt(f->s, "all@example.test", &r), STORE_OK);
    assert_int_equal(r.user_ids[0], bob);
    assert_int_equal(store_alias_del(f->s, "@example.test", NULL), STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "all@example.test", &r), STORE_NOTFOUND);

    /* Limits of one expansion are reported, never silently applied. */
    char list[1024] = "";
    for (unsigned i = 0; i < 10; i++) {
        char one[40];
        snprintf(one, sizeof one, "%sr%u@remote.test", i ? "," : "", i);
        strcat(list, one);
    }
    assert_int_equal(store_alias_add(f->s, "wide@example.test", list), STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "wide@example.test", &r), STORE_OK);
    assert_int_equal(r.n_remote, 8);
    assert_true(r.truncated);
    assert_int_equal(store_alias_del(f->s, "wide@example.test", NULL), STORE_OK);
    /* A chain deeper than the expansion depth. */
    assert_int_equal(store_alias_add(f->s, "d0@example.test", "bob@example.test"), STORE_OK);
    for (unsigned i = 1; i <= 10; i++) {
        char a[40], t[40];
        snprintf(a, sizeof a, "d%u@example.test", i);
        snprintf(t, sizeof t, "d%u@example.test", i - 1);
        assert_int_equal(store_alias_add(f->s, a, t), STORE_OK);
    }
    assert_int_equal(store_resolve_rcpt(f->s, "d3@example.test", &r), STORE_OK);
    assert_false(r.truncated);
    assert_int_equal(r.user_ids[0], bob);
    assert_int_equal(store_resolve_rcpt(f->s, "d10@example.test", &r), STORE_NOTFOUND);
    assert_true(r.truncated);
    assert_int_equal(store_alias_del(f->s, "d0@example.test", NULL), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM aliases WHERE address LIKE 'd%'"), 0);

    /* Deleting a user removes the alias targets naming it, and the aliases
     * left with no target, however deep: c -> b -> a -> alice. */
    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "c@example.test", &r), STORE_NOTFOUND);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM aliases WHERE address IN"
                               " ('a@example.test', 'b@example.test', 'c@example.test')"), 0);
    /* ... so that the catch-all takes those addresses again. */
    assert_int_equal(store_alias_add(f->s, "@example.test", "bob@example.test"), STORE_OK);
    assert_int_equal(store_resolve_rcpt(f->s, "c@example.test", &r), STORE_OK);
    assert_int_equal(r.user_ids[0], bob);
    /* Same through an alias deleted by name. */
    assert_int_equal(store_alias_add(f->s, "d@example.test", "bob@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "e@example.test", "d@example.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "g@example.test",
                                     "e@example.test,far@remote.test"), STORE_OK);
    assert_int_equal(store_alias_del(f->s, "d@example.test", NULL), STORE_OK);
    rows.n = 0;
    assert_int_equal(store_alias_list(f->s, NULL, alias_cb, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.address[0], "@example.test");
    assert_string_equal(rows.address[1], "alice+bob@example.test");
    assert_string_equal(rows.address[2], "g@example.test");
    assert_string_equal(rows.targets[2], "far@remote.test");
    fx_close(&f);
}

/* ---------------------------------------------------------- delivery */

static void test_deliver_needs_writer(void **state)
{
    struct fx *f = fx_open("nowriter", false);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t id = user_id(f, "alice@example.test");
    struct store_delivery d = { .data = MSG, .len = sizeof MSG - 1, .mail_from = "",
                                .user_ids = &id, .n_users = 1 };
    assert_int_equal(store_deliver(f->s, &d, NULL, NULL), STORE_BUSY);
    fx_close(&f);
}

static void test_deliver_invalid(void **state)
{
    struct fx *f = fx_open("invalid", true);
    struct store_delivery d = { .data = MSG, .len = sizeof MSG - 1, .mail_from = "" };
    assert_int_equal(store_deliver(f->s, &d, NULL, NULL), STORE_INVALID);
    const char *bad[] = { "not-an-address" };
    d.remote = bad;
    d.n_remote = 1;
    assert_int_equal(store_deliver(f->s, &d, NULL, NULL), STORE_INVALID);
    assert_int_equal(store_start_writer(f->s, &f->loop), STORE_EXISTS);
    fx_close(&f);
}

static void test_deliver_shared_blob(void **state)
{
    struct fx *f = fx_open("shared", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    add_user(f, "bob@example.test", 0);
    add_user(f, "carol@example.test", 0);
    int64_t ids[4] = {
        user_id(f, "alice@example.test"), user_id(f, "bob@example.test"),
        user_id(f, "carol@example.test"), user_id(f, "alice@example.test"), /* dup */
    };
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, ids, 4, NULL, 0), STORE_OK);

    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 3);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT size FROM blobs"), sizeof MSG - 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT length(sha256) FROM blobs"), 32);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM messages"), 3);
    /* The parse cache has one row per blob, envelope fields included. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses WHERE subject = 'Hello'"
                               " AND message_id = '<1@remote.test>' AND length(mime) > 0"), 1);

    static const char *const users[] = { "alice@example.test", "bob@example.test",
                                         "carol@example.test" };
    for (size_t i = 0; i < 3; i++) {
        struct store_mailbox_info in = inbox_of(f, users[i]);
        assert_int_equal(in.messages, 1);
        assert_int_equal(in.unseen, 1);
        assert_int_equal(in.size, sizeof MSG - 1);
        assert_int_equal(in.uidnext, 2);
        struct msg_rows rows = { .n = 0 };
        assert_int_equal(store_message_list(f->s, users[i], "inbox", msg_cb, &rows), STORE_OK);
        assert_int_equal(rows.n, 1);
        assert_int_equal(rows.m[0].uid, 1);
        assert_int_equal(rows.m[0].size, sizeof MSG - 1);
        assert_int_equal(rows.m[0].internal_date, 1700000000);
        expect_read(f, rows.m[0].mailbox_id, 1, MSG, sizeof MSG - 1);
        struct store_user u;
        assert_int_equal(store_user_get(f->s, users[i], &u), STORE_OK);
        assert_int_equal(u.used, sizeof MSG - 1);
        assert_int_equal(u.messages, 1);
    }

    /* The same bytes again reuse the blob. */
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, ids, 1, NULL, 0), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 4);

    /* Deleting users releases their references; the last one the blob. */
    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 2);
    assert_int_equal(store_user_del(f->s, "bob@example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 1);
    /* Deleting the domain deletes carol and her mail with it. */
    assert_int_equal(store_domain_del(f->s, "example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM mailboxes"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses"), 0);
    fx_close(&f);
}

/* Bytes that a text-minded implementation would mangle. */
static void test_read_exact(void **state)
{
    struct fx *f = fx_open("exact", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t id = user_id(f, "alice@example.test");

    char bin[3000];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 7 + (i >> 5));
    memcpy(bin, "Subject: bin\n\n\0\r\r\n", 18);
    assert_int_equal(deliver_wait(f, bin, sizeof bin, &id, 1, NULL, 0), STORE_OK);
    assert_int_equal(deliver_wait(f, "", 0, &id, 1, NULL, 0), STORE_OK);
    /* 2 MB of compressible text. */
    size_t big_len = 2 * 1024 * 1024;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
    assert_int_equal(deliver_wait(f, big, big_len, &id, 1, NULL, 0), STORE_OK);

    struct msg_rows rows = { .n = 0 };
    assert_int_equal(store_message_list(f->s, "alice@example.test", "INBOX", msg_cb, &rows),
                     STORE_OK);
    assert_int_equal(rows.n, 3);
    int64_t mb = rows.m[0].mailbox_id;
    expect_read(f, mb, 1, bin, sizeof bin);
    char *data = NULL;
    size_t len = 99;
    assert_int_equal(store_message_read(f->s, mb, 2, &data, &len), STORE_OK);
    assert_int_equal(len, 0);
    assert_non_null(data);
    free(data);
    expect_read(f, mb, 3, big, big_len);
    assert_true(testdir_db_int(f->db_path, "SELECT max(length(data)) FROM blobs") < (int64_t)big_len / 10);
    free(big);

    assert_int_equal(store_message_read(f->s, mb, 4, &data, &len), STORE_NOTFOUND);
    assert_null(data);
    assert_int_equal(store_message_read(f->s, mb, 0, &data, &len), STORE_INVALID);
    assert_int_equal(store_message_read(f->s, 0, 1, &data, &len), STORE_INVALID);
    rows.n = 0;
    assert_int_equal(store_message_list(f->s, "alice@example.test", "Nope", msg_cb, &rows),
                     STORE_NOTFOUND);
    assert_int_equal(store_message_list(f->s, "alice@example.test", "Sent", msg_cb, &rows),
                     STORE_OK);
    assert_int_equal(rows.n, 0);
    assert_int_equal(store_message_list(f->s, "nobody@example.test", "INBOX", msg_cb, &rows),
                     STORE_NOTFOUND);
    assert_int_equal(store_message_list(f->s, "alice@example.test", NULL, msg_cb, &rows),
                     STORE_INVALID);
    fx_close(&f);
}

/* ------------------------------------------------- reading in pieces */

struct piece_sink {
    char *buf;
    size_t len, cap;
    unsigned pieces, pending;
    int result;
};

static void on_piece(void *arg, int result, const char *data, size_t len)
{
    struct piece_sink *k = arg;
    k->result = result;
    k->pending--;
    if (result != STORE_OK)
        return;
    assert_true(len <= STORE_STREAM_PIECE);
    assert_true(k->len + len <= k->cap);
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    k->pieces++;
}

/* One piece; returns its result. */
static int stream_step(struct fx *f, struct store_stream *st, struct piece_sink *k)
{
    k->pending = 1;
    assert_int_equal(store_stream_read(st, on_piece, k), STORE_OK);
    assert_int_equal(store_stream_read(st, on_piece, k), STORE_INVALID); /* one at a time */
    wait_pending(f, &k->pending);
    return k->result;
}

static void on_expunged(void *arg, int result, const uint32_t *uids, size_t n, uint64_t modseq)
{
    (void)uids, (void)modseq;
    assert_int_equal(result, STORE_OK);
    assert_int_equal(n, 1);
    (*(unsigned *)arg)--;
}

static void test_stream(void **state)
{
    (void)state;
    struct fx *f = fx_open("stream", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t id = user_id(f, "alice@example.test");
    /* 3 MB that compress poorly enough to take many blob reads. */
    size_t big_len = 3 * 1024 * 1024 + 17;
    char *big = malloc(big_len);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < big_len; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (i % 78 == 77) ? '\n' : (char)('!' + (x >> 16) % 90);
    }
    assert_int_equal(deliver_wait(f, big, big_len, &id, 1, NULL, 0), STORE_OK);
    assert_int_equal(deliver_wait(f, "", 0, &id, 1, NULL, 0), STORE_OK);
    assert_int_equal(deliver_wait(f, big, big_len, &id, 1, NULL, 0), STORE_OK);
    struct msg_rows rows = { .n = 0 };
    assert_int_equal(store_message_list(f->s, "alice@example.test", "INBOX", msg_cb, &rows),
                     STORE_OK);
    int64_t mb = rows.m[0].mailbox_id;

    /* Whole, byte-exact, in pieces no bigger than STORE_STREAM_PIECE. */
    struct piece_sink k = { .buf = malloc(big_len), .cap = big_len };
    assert_non_null(k.buf);
    struct store_stream *st;
    assert_int_equal(store_stream_open(f->s, mb, 1, &st), STORE_OK);
    while (!store_stream_ended(st))
        assert_int_equal(stream_step(f, st, &k), STORE_OK);
    assert_int_equal(store_stream_size(st), big_len);
    assert_int_equal(k.len, big_len);
    assert_memory_equal(k.buf, big, big_len);
    assert_int_equal(k.pieces, (big_len + STORE_STREAM_PIECE - 1) / STORE_STREAM_PIECE);
    assert_int_equal(store_stream_read(st, on_piece, &k), STORE_INVALID); /* past the end */
    store_stream_close(&st);
    assert_null(st);

    /* An empty message: one empty piece, then ended. */
    k.len = k.pieces = 0;
    assert_int_equal(store_stream_open(f->s, mb, 2, &st), STORE_OK);
    assert_int_equal(stream_step(f, st, &k), STORE_OK);
    assert_true(store_stream_ended(st));
    assert_int_equal(k.len, 0);
    assert_int_equal(store_stream_size(st), 0);
    store_stream_close(&st);

    /* No such message; bad arguments. */
    assert_int_equal(store_stream_open(f->s, mb, 9, &st), STORE_OK);
    assert_int_equal(stream_step(f, st, &k), STORE_NOTFOUND);
    store_stream_close(&st);
    assert_int_equal(store_stream_open(f->s, mb, 0, &st), STORE_INVALID);
    assert_null(st);

    /* Expunged between two pieces: the next piece says so. Message 1
     * shares its blob with message 3, so expunge both. */
    k.len = 0;
    assert_int_equal(store_stream_open(f->s, mb, 3, &st), STORE_OK);
    assert_int_equal(stream_step(f, st, &k), STORE_OK);
    unsigned pending = 1;
    uint32_t uid1 = 1, uid3 = 3;
    assert_int_equal(store_expunge_uids(f->s, mb, &uid1, 1, on_expunged, &pending), STORE_OK);
    wait_pending(f, &pending);
    assert_int_equal(stream_step(f, st, &k), STORE_OK); /* the blob is still message 3's */
    pending = 1;
    assert_int_equal(store_expunge_uids(f->s, mb, &uid3, 1, on_expunged, &pending), STORE_OK);
    wait_pending(f, &pending);
    assert_int_equal(stream_step(f, st, &k), STORE_NOTFOUND);
    store_stream_close(&st);

    /* Closed with a read in flight: freed later, its callback never runs. */
    assert_int_equal(deliver_wait(f, big, big_len, &id, 1, NULL, 0), STORE_OK);
    assert_int_equal(store_stream_open(f->s, mb, 4, &st), STORE_OK);
    k.pending = 1;
    assert_int_equal(store_stream_read(st, on_piece, &k), STORE_OK);
    store_stream_close(&st);
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(k.pending, 1);
    free(k.buf);
    free(big);
    fx_close(&f);
}

/* Change events as a subscriber saw them. */
struct events {
    struct store_change ch[256];
    unsigned n;
};

static void on_change(void *arg, const struct store_change *ch)
{
    struct events *e = arg;
    assert_true(e->n < 256);
    e->ch[e->n++] = *ch;
}

static void test_uid_modseq(void **state)
{
    struct fx *f = fx_open("uids", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    add_user(f, "bob@example.test", 0);
    int64_t alice = user_id(f, "alice@example.test");
    int64_t bob = user_id(f, "bob@example.test");
    struct events all = { .n = 0 }, only_bob = { .n = 0 }, gone = { .n = 0 };
    struct store_sub *sa = store_subscribe(f->s, 0, on_change, &all);
    struct store_sub *sb = store_subscribe(f->s, bob, on_change, &only_bob);
    struct store_sub *sg = store_subscribe(f->s, 0, on_change, &gone);
    assert_non_null(sa);
    assert_non_null(sb);
    assert_non_null(sg);
    store_unsubscribe(f->s, &sg);
    assert_null(sg);

    struct store_mailbox_info before = inbox_of(f, "alice@example.test");
    uint64_t last_modseq = before.highestmodseq;
    for (unsigned i = 0; i < 5; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "Subject: %u\r\n\r\nbody %u\r\n", i, i);
        assert_int_equal(deliver_wait(f, msg, (size_t)n, &alice, 1, NULL, 0), STORE_OK);
        struct store_mailbox_info in = inbox_of(f, "alice@example.test");
        assert_int_equal(in.uidnext, i + 2);
        assert_true(in.highestmodseq > last_modseq);
        assert_int_equal(in.uidvalidity, before.uidvalidity);
        last_modseq = in.highestmodseq;
    }
    struct msg_rows rows = { .n = 0 };
    assert_int_equal(store_message_list(f->s, "alice@example.test", "INBOX", msg_cb, &rows),
                     STORE_OK);
    assert_int_equal(rows.n, 5);
    for (unsigned i = 0; i < rows.n; i++) {
        assert_int_equal(rows.m[i].uid, i + 1);
        if (i > 0)
            assert_true(rows.m[i].modseq > rows.m[i - 1].modseq);
    }
    assert_int_equal(rows.m[4].modseq, last_modseq);

    /* One event per append, on the loop, after the callback's commit. */
    assert_int_equal(all.n, 5);
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(all.ch[i].kind, STORE_CHANGE_APPEND);
        assert_int_equal(all.ch[i].user_id, alice);
        assert_int_equal(all.ch[i].mailbox_id, rows.m[i].mailbox_id);
        assert_int_equal(all.ch[i].uid_first, i + 1);
        assert_int_equal(all.ch[i].uid_last, i + 1);
        assert_int_equal(all.ch[i].modseq, rows.m[i].modseq);
    }
    assert_int_equal(only_bob.n, 0);
    assert_int_equal(gone.n, 0);

    /* Bob's UIDs are his own: they start at 1. */
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, &bob, 1, NULL, 0), STORE_OK);
    assert_int_equal(only_bob.n, 1);
    assert_int_equal(only_bob.ch[0].uid_first, 1);
    assert_int_equal(inbox_of(f, "bob@example.test").uidnext, 2);
    assert_int_equal(inbox_of(f, "alice@example.test").uidnext, 6);

    store_unsubscribe(f->s, &sa);
    store_unsubscribe(f->s, &sb);
    fx_close(&f);
}

#define GROUP_N 200

static void test_group_commit(void **state)
{
    struct fx *f = fx_open("group", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    add_user(f, "bob@example.test", 0);
    int64_t ids[2] = { user_id(f, "alice@example.test"), user_id(f, "bob@example.test") };

    char (*msgs)[128] = calloc(GROUP_N, sizeof(*msgs));
    size_t *lens = calloc(GROUP_N, sizeof(*lens));
    struct done *done = calloc(GROUP_N, sizeof(*done));
    assert_non_null(msgs);
    assert_non_null(lens);
    assert_non_null(done);
    struct events *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    struct store_sub *sub = store_subscribe(f->s, ids[0], on_change, ev);
    unsigned pending = 0;
    for (unsigned i = 0; i < GROUP_N; i++) {
        lens[i] = (size_t)snprintf(msgs[i], sizeof msgs[i],
                                   "Subject: group %u\r\nMessage-ID: <%u@x>\r\n\r\nbody %u\r\n",
                                   i, i, i);
        struct store_delivery d = {
            .data = msgs[i], .len = lens[i], .internal_date = 1700000000 + i,
            .mail_from = "", .user_ids = ids, .n_users = i % 3 == 0 ? 2 : 1,
        };
        done[i].pending = &pending;
        assert_int_equal(store_deliver(f->s, &d, on_done, &done[i]), STORE_OK);
        pending++;
    }
    wait_pending(f, &pending);
    for (unsigned i = 0; i < GROUP_N; i++) {
        assert_true(done[i].fired);
        assert_int_equal(done[i].result, STORE_OK);
    }
    /* Appends in one commit are merged into ranges; together they cover
     * alice's UIDs 1..GROUP_N exactly once, in order. */
    uint32_t next_uid = 1;
    for (unsigned k = 0; k < ev->n; k++) {
        assert_int_equal(ev->ch[k].user_id, ids[0]);
        assert_int_equal(ev->ch[k].uid_first, next_uid);
        assert_true(ev->ch[k].uid_last >= ev->ch[k].uid_first);
        next_uid = ev->ch[k].uid_last + 1;
    }
    assert_int_equal(next_uid, GROUP_N + 1);
    store_unsubscribe(f->s, &sub);
    free(ev);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.deliveries, GROUP_N);
    assert_true(st.transactions >= 1);
    assert_true(st.transactions < st.deliveries);
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "group commit: %llu deliveries in %llu transactions\n",
                (unsigned long long)st.deliveries, (unsigned long long)st.transactions);

    /* Every message byte-exact; UIDs dense and ascending in each INBOX. */
    struct msg_rows *rows = calloc(1, sizeof(*rows));
    assert_non_null(rows);
    assert_int_equal(store_message_list(f->s, "alice@example.test", "INBOX", msg_cb, rows),
                     STORE_OK);
    assert_int_equal(rows->n, GROUP_N);
    bool *seen = calloc(GROUP_N, sizeof(*seen));
    assert_non_null(seen);
    for (unsigned k = 0; k < rows->n; k++) {
        assert_int_equal(rows->m[k].uid, k + 1);
        if (k > 0)
            assert_true(rows->m[k].modseq > rows->m[k - 1].modseq);
        unsigned i = (unsigned)(rows->m[k].internal_date - 1700000000);
        assert_true(i < GROUP_N);
        assert_false(seen[i]);
        seen[i] = true;
        expect_read(f, rows->m[k].mailbox_id, rows->m[k].uid, msgs[i], lens[i]);
    }
    rows->n = 0;
    assert_int_equal(store_message_list(f->s, "bob@example.test", "INBOX", msg_cb, rows),
                     STORE_OK);
    assert_int_equal(rows->n, (GROUP_N + 2) / 3);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), GROUP_N);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT sum(refcount) FROM blobs"), GROUP_N + (GROUP_N + 2) / 3);
    free(seen);
    free(rows);
    free(done);
    free(lens);
    free(msgs);
    fx_close(&f);
}

/* Closing the store drains deliveries still in flight and runs their callbacks. */
static void test_close_drains(void **state)
{
    struct fx *f = fx_open("drain", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t id = user_id(f, "alice@example.test");
    unsigned pending = 0;
    struct done done[20];
    memset(done, 0, sizeof done);
    for (unsigned i = 0; i < 20; i++) {
        struct store_delivery d = { .data = MSG, .len = sizeof MSG - 1, .mail_from = "",
                                    .user_ids = &id, .n_users = 1 };
        done[i].pending = &pending;
        assert_int_equal(store_deliver(f->s, &d, on_done, &done[i]), STORE_OK);
        pending++;
    }
    store_close(&f->s);
    assert_int_equal(pending, 0);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(done[i].result, STORE_OK);
    char err[256];
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
    assert_int_equal(inbox_of(f, "alice@example.test").messages, 20);
    fx_close(&f);
}

static void test_quota(void **state)
{
    struct fx *f = fx_open("quota", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "small@example.test", 1000);
    add_user(f, "big@example.test", 0);
    int64_t small = user_id(f, "small@example.test");
    int64_t both[2] = { user_id(f, "big@example.test"), small };

    char msg[600];
    memset(msg, 'x', sizeof msg);
    memcpy(msg, "Subject: q\r\n\r\n", 14);
    assert_int_equal(deliver_wait(f, msg, sizeof msg, &small, 1, NULL, 0), STORE_OK);
    struct store_rcpt r;
    assert_int_equal(store_resolve_rcpt(f->s, "small@example.test", &r), STORE_OK);
    assert_int_equal(r.quota_free[0], 400);

    /* Over quota: nothing at all is stored, for nobody. */
    msg[20] = 'y';
    assert_int_equal(deliver_wait(f, msg, sizeof msg, both, 2, NULL, 0), STORE_QUOTA);
    struct store_user u;
    assert_int_equal(store_user_get(f->s, "small@example.test", &u), STORE_OK);
    assert_int_equal(u.used, 600);
    assert_int_equal(u.messages, 1);
    assert_int_equal(store_user_get(f->s, "big@example.test", &u), STORE_OK);
    assert_int_equal(u.used, 0);
    assert_int_equal(u.messages, 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);

    /* Deliveries racing for the last bytes in one group: the writer sees
     * each one's usage, so exactly one of two 300-byte messages fits. */
    unsigned pending = 0;
    struct done race[2];
    memset(race, 0, sizeof race);
    for (unsigned i = 0; i < 2; i++) {
        struct store_delivery d = { .data = i ? msg : msg + 1, .len = 300, .mail_from = "",
                                    .user_ids = &small, .n_users = 1 };
        race[i].pending = &pending;
        assert_int_equal(store_deliver(f->s, &d, on_done, &race[i]), STORE_OK);
        pending++;
    }
    wait_pending(f, &pending);
    assert_int_equal((race[0].result == STORE_OK) + (race[1].result == STORE_OK), 1);
    assert_int_equal((race[0].result == STORE_QUOTA) + (race[1].result == STORE_QUOTA), 1);
    assert_int_equal(store_user_get(f->s, "small@example.test", &u), STORE_OK);
    assert_int_equal(u.used, 900);
    assert_int_equal(deliver_wait(f, msg, 100, &small, 1, NULL, 0), STORE_OK);

    /* Exactly up to the quota is accepted. */
    assert_int_equal(store_user_get(f->s, "small@example.test", &u), STORE_OK);
    assert_int_equal(u.used, 1000);
    assert_int_equal(deliver_wait(f, msg, 1, &small, 1, NULL, 0), STORE_QUOTA);
    /* Raising the quota lets mail in again. */
    assert_int_equal(store_user_set_quota(f->s, "small@example.test", 0), STORE_OK);
    assert_int_equal(deliver_wait(f, msg, 1, &small, 1, NULL, 0), STORE_OK);
    fx_close(&f);
}

/* ------------------------------------------------------------- queue */

static void test_queue(void **state)
{
    struct fx *f = fx_open("queue", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t alice = user_id(f, "alice@example.test");

    struct queue_rows q = { .n = 0 };
    assert_int_equal(store_queue_list(f->s, queue_cb, &q), STORE_OK);
    assert_int_equal(q.n, 0);

    const char *remote[] = { "bob@Remote.TEST", "carol@other.test" };
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, &alice, 1, remote, 2), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 3);
    assert_int_equal(store_queue_list(f->s, queue_cb, &q), STORE_OK);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.rcpt[0], "bob@Remote.TEST");
    assert_string_equal(q.domain[0], "remote.test");
    assert_string_equal(q.rcpt[1], "carol@other.test");
    assert_string_equal(q.from[0], "sender@remote.test");
    assert_int_equal(q.size[0], sizeof MSG - 1);
    assert_true(q.id[0] < q.id[1]);

    /* Remote-only delivery: a blob held by queue rows alone. */
    static const char other[] = "Subject: out\r\n\r\nremote only\r\n";
    const char *one[] = { "dave@remote.test" };
    assert_int_equal(deliver_wait(f, other, sizeof other - 1, NULL, 0, one, 1), STORE_OK);
    q.n = 0;
    assert_int_equal(store_queue_list(f->s, queue_cb, &q), STORE_OK);
    assert_int_equal(q.n, 3);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 2);

    /* Flush makes entries due now (never later than they were). */
    assert_int_equal(store_queue_flush(f->s, q.id[0]), STORE_OK);
    assert_int_equal(store_queue_flush(f->s, 0), STORE_OK);
    assert_int_equal(store_queue_flush(f->s, 99999), STORE_NOTFOUND);
    assert_int_equal(store_queue_flush(f->s, -1), STORE_INVALID);
    assert_true(testdir_db_int(f->db_path, "SELECT max(next_attempt) FROM queue") <= (int64_t)time(NULL));

    assert_int_equal(store_queue_del(f->s, q.id[2]), STORE_OK);
    assert_int_equal(store_queue_del(f->s, q.id[2]), STORE_NOTFOUND);
    assert_int_equal(store_queue_del(f->s, 0), STORE_INVALID);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses"), 1);
    assert_int_equal(store_queue_del(f->s, q.id[0]), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 2);
    q.n = 0;
    assert_int_equal(store_queue_list(f->s, queue_cb, &q), STORE_OK);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.rcpt[0], "carol@other.test");

    /* The local copy outlives the queue rows. */
    assert_int_equal(store_queue_del(f->s, q.id[0]), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 1);
    struct msg_rows rows = { .n = 0 };
    assert_int_equal(store_message_list(f->s, "alice@example.test", "INBOX", msg_cb, &rows),
                     STORE_OK);
    assert_int_equal(rows.n, 1);
    expect_read(f, rows.m[0].mailbox_id, 1, MSG, sizeof MSG - 1);
    fx_close(&f);
}

/* ------------------------------------------------------- concurrency */

/* Holds SQLite's write lock from another connection, as a busy petreld
 * writer (or a long petrelctl transaction) would. */
static sqlite3 *lock_db(struct fx *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void unlock_db(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

struct unlock_timer {
    uv_timer_t timer;
    sqlite3 *db;
};

static void on_unlock(uv_timer_t *t)
{
    struct unlock_timer *u = (struct unlock_timer *)t;
    unlock_db(u->db);
    u->db = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = fx_open("concurrent", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    int64_t alice = user_id(f, "alice@example.test");

    /* Opening an up-to-date store, and reading from it, needs no write lock:
     * petrelctl's list verbs work while the writer holds one. */
    sqlite3 *held = lock_db(f);
    struct store *ctl = NULL;
    char err[256] = "";
    if (store_open(f->dir, &ctl, err, sizeof err) != 0)
        fail_msg("store_open while locked: %s", err);
    assert_true(store_domain_is_local(ctl, "example.test"));
    struct mbox_rows rows = { .n = 0 };
    assert_int_equal(store_mailbox_list(ctl, "alice@example.test", mbox_cb, &rows), STORE_OK);
    struct queue_rows q = { .n = 0 };
    assert_int_equal(store_queue_list(ctl, queue_cb, &q), STORE_OK);

    /* Deliveries wait for the lock (busy timeout) instead of failing. */
    struct unlock_timer u = { .db = held };
    assert_int_equal(uv_timer_init(&f->loop, &u.timer), 0);
    assert_int_equal(uv_timer_start(&u.timer, on_unlock, 300, 0), 0);
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, &alice, 1, NULL, 0), STORE_OK);
    assert_null(u.db);

    /* Admin writes from the second store while the writer delivers. */
    unsigned pending = 0;
    struct done done[50];
    memset(done, 0, sizeof done);
    for (unsigned i = 0; i < 50; i++) {
        struct store_delivery d = { .data = MSG, .len = sizeof MSG - 1, .mail_from = "",
                                    .user_ids = &alice, .n_users = 1 };
        done[i].pending = &pending;
        assert_int_equal(store_deliver(f->s, &d, on_done, &done[i]), STORE_OK);
        pending++;
        char addr[64];
        snprintf(addr, sizeof addr, "user%u@example.test", i);
        assert_int_equal(store_user_add(ctl, addr, "h", "s", 0), STORE_OK);
    }
    wait_pending(f, &pending);
    for (unsigned i = 0; i < 50; i++)
        assert_int_equal(done[i].result, STORE_OK);
    assert_int_equal(inbox_of(f, "alice@example.test").messages, 51);
    unsigned n = 0;
    assert_int_equal(store_user_list(f->s, NULL, count_user, &n), STORE_OK);
    assert_int_equal(n, 51);
    store_close(&ctl);
    fx_close(&f);
}

/* A recipient deleted between RCPT and the commit is skipped. */
static void test_deliver_deleted_user(void **state)
{
    struct fx *f = fx_open("deleted", true);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    add_user(f, "alice@example.test", 0);
    add_user(f, "bob@example.test", 0);
    int64_t ids[2] = { user_id(f, "alice@example.test"), user_id(f, "bob@example.test") };
    assert_int_equal(store_user_del(f->s, "bob@example.test"), STORE_OK);
    assert_int_equal(deliver_wait(f, MSG, sizeof MSG - 1, ids, 2, NULL, 0), STORE_OK);
    assert_int_equal(inbox_of(f, "alice@example.test").messages, 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_aliases_resolve),
        cmocka_unit_test(test_deliver_needs_writer),
        cmocka_unit_test(test_deliver_invalid),
        cmocka_unit_test(test_deliver_shared_blob),
        cmocka_unit_test(test_read_exact),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_uid_modseq),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_deliver_deleted_user),
    };
    return cmocka_run_group_tests(tests, testdir_setup, testdir_teardown);
}
