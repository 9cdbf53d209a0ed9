/*
 * test_store_imap.c — the IMAP operations of store.h on a real on-disk
 * database with the writer thread on a real uv loop: mailboxes (create,
 * delete, rename incl. INBOX, subscriptions, UIDVALIDITY), append, flags
 * (canonical form, CONDSTORE unchangedsince), expunge (tombstones,
 * changed-since), copy and move (UID mappings, quota), blob refcounts,
 * group commit of mixed operations, change events and async fetch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "mime/mime.h"
#include "store/store.h"
#include "tests/unit/testdir.h"

struct fx {
    char dir[512];
    char db_path[600];
    struct store *s;
    uv_loop_t loop;
    int64_t uid;        /* alice's user id */
    unsigned pending;
};

static struct fx *fx_open(const char *name, uint64_t quota)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", testdir, name);
    snprintf(f->db_path, sizeof f->db_path, "%s/petrel.db", f->dir);
    char err[256] = "";
    if (store_open(f->dir, &f->s, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(store_start_writer(f->s, &f->loop), STORE_OK);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    assert_int_equal(store_user_add(f->s, "alice@example.test", "$h$", "scram", quota),
                     STORE_OK);
    struct store_user u;
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_OK);
    f->uid = u.id;
    return f;
}

static void fx_close(struct fx **fp)
{
    struct fx *f = *fp;
    store_close(&f->s);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    testdir_rm(f->dir);
    free(f);
    *fp = NULL;
}

static void wait_all(struct fx *f)
{
    while (f->pending > 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

/* ------------------------------------------------------- callback records */

struct res {
    struct fx *f;
    bool fired;
    int result;
    uint32_t uidvalidity, uid;
    uint64_t modseq;
    uint32_t u1[64], u2[64];
    uint64_t ms[64];
    char fl[64][128];
    size_t n1, n2;
};

static void fired(struct res *r, int result)
{
    assert_false(r->fired);
    r->fired = true;
    r->result = result;
    r->f->pending--;
}

static void on_done(void *arg, int result)
{
    fired(arg, result);
}

static void on_append(void *arg, int result, uint32_t uidvalidity, uint32_t uid)
{
    struct res *r = arg;
    r->uidvalidity = uidvalidity;
    r->uid = uid;
    fired(r, result);
}

static void on_flags(void *arg, int result, const struct store_flags_result *fr)
{
    struct res *r = arg;
    assert_true(fr->n_changed <= 64 && fr->n_failed <= 64);
    for (size_t i = 0; i < fr->n_changed; i++) {
        r->u1[i] = fr->changed[i].uid;
        r->ms[i] = fr->changed[i].modseq;
        snprintf(r->fl[i], sizeof r->fl[i], "%s", fr->changed[i].flags);
    }
    r->n1 = fr->n_changed;
    for (size_t i = 0; i < fr->n_failed; i++)
        r->u2[i] = fr->failed[i];
    r->n2 = fr->n_failed;
    fired(r, result);
}

static void on_expunge(void *arg, int result, const uint32_t *uids, size_t n, uint64_t modseq)
{
    struct res *r = arg;
    assert_true(n <= 64);
    if (n)
        memcpy(r->u1, uids, n * sizeof(*uids));
    r->n1 = n;
    r->modseq = modseq;
    fired(r, result);
}

static void on_copy(void *arg, int result, uint32_t uidvalidity, const uint32_t *src,
                    const uint32_t *dst, size_t n)
{
    struct res *r = arg;
    assert_true(n <= 64);
    if (n) {
        memcpy(r->u1, src, n * sizeof(*src));
        memcpy(r->u2, dst, n * sizeof(*dst));
    }
    r->n1 = r->n2 = n;
    r->uidvalidity = uidvalidity;
    fired(r, result);
}

/* Synchronous wrappers: start the op, run the loop until it answers. */
static int mb_create(struct fx *f, const char *name, const char *special)
{
    struct res r = { .f = f };
    int rc = store_mailbox_create(f->s, f->uid, name, special, on_done, &r);
    if (rc != STORE_OK)
        return rc;
    f->pending++;
    wait_all(f);
    return r.result;
}

static int mb_delete(struct fx *f, const char *name)
{
    struct res r = { .f = f };
    int rc = store_mailbox_delete(f->s, f->uid, name, on_done, &r);
    if (rc != STORE_OK)
        return rc;
    f->pending++;
    wait_all(f);
    return r.result;
}

static int mb_rename(struct fx *f, const char *from, const char *to)
{
    struct res r = { .f = f };
    int rc = store_mailbox_rename(f->s, f->uid, from, to, on_done, &r);
    if (rc != STORE_OK)
        return rc;
    f->pending++;
    wait_all(f);
    return r.result;
}

static int mb_subscribe(struct fx *f, const char *name, bool on)
{
    struct res r = { .f = f };
    int rc = store_mailbox_subscribe(f->s, f->uid, name, on, on_done, &r);
    if (rc != STORE_OK)
        return rc;
    f->pending++;
    wait_all(f);
    return r.result;
}

static struct store_mailbox mb_get(struct fx *f, const char *name)
{
    struct store_mailbox m;
    assert_int_equal(store_mailbox_get(f->s, f->uid, name, &m), STORE_OK);
    return m;
}

static struct res append(struct fx *f, const char *mailbox, const char *data, const char *flags)
{
    struct res r = { .f = f };
    struct store_append a = {
        .user_id = f->uid, .mailbox = mailbox, .data = data, .len = strlen(data),
        .flags = flags, .internal_date = 1700000000,
    };
    r.result = store_append(f->s, &a, on_append, &r);
    if (r.result == STORE_OK) {
        f->pending++;
        wait_all(f);
    }
    return r;
}

static struct res set_flags(struct fx *f, int64_t mbox, const uint32_t *uids, size_t n,
                            enum store_flags_mode mode, const char *flags, uint64_t since)
{
    struct res r = { .f = f };
    r.result = store_flags(f->s, mbox, uids, n, mode, flags, since, on_flags, &r);
    if (r.result == STORE_OK) {
        f->pending++;
        wait_all(f);
    }
    return r;
}

static struct res expunge(struct fx *f, int64_t mbox, const uint32_t *uids, size_t n)
{
    struct res r = { .f = f };
    r.result = store_expunge(f->s, mbox, uids, n, on_expunge, &r);
    if (r.result == STORE_OK) {
        f->pending++;
        wait_all(f);
    }
    return r;
}

static struct res copy(struct fx *f, int64_t src, const uint32_t *uids, size_t n, int64_t dst,
                       bool move)
{
    struct res r = { .f = f };
    r.result = store_copy(f->s, src, uids, n, dst, move, on_copy, &r);
    if (r.result == STORE_OK) {
        f->pending++;
        wait_all(f);
    }
    return r;
}

/* The index of a mailbox into arrays. */
struct idx {
    unsigned n;
    uint32_t uid[64];
    uint64_t modseq[64];
    char flags[64][128];
};

static void idx_cb(void *arg, const struct store_message_info *m)
{
    struct idx *x = arg;
    assert_true(x->n < 64);
    x->uid[x->n] = m->uid;
    x->modseq[x->n] = m->modseq;
    snprintf(x->flags[x->n], sizeof x->flags[0], "%s", m->flags);
    x->n++;
}

static struct idx index_of(struct fx *f, int64_t mbox, uint64_t since)
{
    struct idx x = { .n = 0 };
    assert_int_equal(store_message_index(f->s, mbox, since, idx_cb, &x), STORE_OK);
    return x;
}

/* Change events. */
struct evs {
    unsigned n;
    struct store_change ev[64];
    char flags[64][64], name[64][64], old_name[64][64];
};

static void ev_cb(void *arg, const struct store_change *ch)
{
    struct evs *e = arg;
    assert_true(e->n < 64);
    e->ev[e->n] = *ch;
    snprintf(e->flags[e->n], 64, "%s", ch->flags ? ch->flags : "-");
    snprintf(e->name[e->n], 64, "%s", ch->name ? ch->name : "-");
    snprintf(e->old_name[e->n], 64, "%s", ch->old_name ? ch->old_name : "-");
    e->ev[e->n].flags = e->ev[e->n].name = e->ev[e->n].old_name = NULL;
    e->n++;
}

static const char MSG1[] = "From: a@b.test\r\nSubject: one\r\n\r\nbody one\r\n";
static const char MSG2[] = "From: a@b.test\r\nSubject: two\r\n\r\nbody two, longer\r\n";
static const char MSG3[] = "From: a@b.test\r\nSubject: three\r\nContent-Type: text/plain\r\n"
                           "\r\nbody three\r\n";

/* -------------------------------------------------------------- mailboxes */

struct names {
    unsigned n;
    char name[32][64];
    struct store_mailbox_info info[32];
};

static void names_cb(void *arg, const char *name)
{
    struct names *x = arg;
    assert_true(x->n < 32);
    snprintf(x->name[x->n++], 64, "%s", name);
}

static void mbox_cb(void *arg, const struct store_mailbox_info *m)
{
    struct names *x = arg;
    assert_true(x->n < 32);
    snprintf(x->name[x->n], 64, "%s", m->name);
    x->info[x->n] = *m;
    x->info[x->n].name = x->info[x->n].special_use = NULL;
    x->n++;
}

static void test_mailboxes(void **state)
{
    (void)state;
    struct fx *f = fx_open("mailboxes", 0);
    struct store_mailbox in = mb_get(f, "inbox");
    assert_string_equal(in.name, "INBOX");
    assert_true(in.subscribed);
    assert_int_equal(in.uidnext, 1);

    assert_int_equal(mb_create(f, "Work", NULL), STORE_OK);
    assert_int_equal(mb_create(f, "Work", NULL), STORE_EXISTS);
    assert_int_equal(mb_create(f, "iNbOx", NULL), STORE_EXISTS);
    assert_int_equal(mb_create(f, "Work/2026/Q1", "\\flagged"), STORE_OK); /* no parents */
    assert_int_equal(mb_create(f, "Ünïcødé", NULL), STORE_OK);
    assert_int_equal(mb_create(f, "bad//name", NULL), STORE_INVALID);
    assert_int_equal(mb_create(f, "/lead", NULL), STORE_INVALID);
    assert_int_equal(mb_create(f, "trail/", NULL), STORE_INVALID);
    assert_int_equal(mb_create(f, "wild*", NULL), STORE_INVALID);
    assert_int_equal(mb_create(f, "\xff\xfe", NULL), STORE_INVALID);
    assert_int_equal(mb_create(f, "X", "\\Bogus"), STORE_INVALID);
    struct store_mailbox q = mb_get(f, "Work/2026/Q1");
    assert_string_equal(q.special_use, "\\Flagged");
    assert_false(q.subscribed);
    assert_int_equal(store_mailbox_get(f->s, f->uid, "Work/2026", &q), STORE_NOTFOUND);

    /* One listing with status. */
    struct names l = { .n = 0 };
    assert_int_equal(store_mailbox_status_list(f->s, f->uid, mbox_cb, &l), STORE_OK);
    assert_int_equal(l.n, 9);
    assert_string_equal(l.name[0], "INBOX");
    assert_true(l.info[0].id == in.id);

    /* Subscriptions: by name, existing or not. */
    assert_int_equal(mb_subscribe(f, "Ghost/Box", true), STORE_OK);
    assert_int_equal(mb_subscribe(f, "Work", true), STORE_OK);
    assert_int_equal(mb_subscribe(f, "Work", true), STORE_OK);
    assert_int_equal(mb_subscribe(f, "Junk", false), STORE_OK);
    struct names sub = { .n = 0 };
    assert_int_equal(store_subscription_list(f->s, f->uid, names_cb, &sub), STORE_OK);
    assert_int_equal(sub.n, 7); /* 6 defaults - Junk + Ghost/Box + Work */
    assert_string_equal(sub.name[0], "INBOX");
    assert_true(mb_get(f, "Work").subscribed);
    assert_false(mb_get(f, "Junk").subscribed);

    /* Delete: INBOX refused, children stay, subscriptions stay. */
    assert_int_equal(mb_delete(f, "INBOX"), STORE_INVALID);
    assert_int_equal(mb_delete(f, "nope"), STORE_NOTFOUND);
    assert_int_equal(mb_delete(f, "Work"), STORE_OK);
    assert_int_equal(store_mailbox_get(f->s, f->uid, "Work", &q), STORE_NOTFOUND);
    mb_get(f, "Work/2026/Q1");

    /* Rename with children. */
    assert_int_equal(mb_create(f, "A", NULL), STORE_OK);
    assert_int_equal(mb_create(f, "A/B", NULL), STORE_OK);
    assert_int_equal(mb_create(f, "A/B/C", NULL), STORE_OK);
    assert_int_equal(mb_create(f, "AX", NULL), STORE_OK);
    uint32_t uv_a = mb_get(f, "A").uidvalidity;
    assert_int_equal(mb_rename(f, "A", "Sent"), STORE_EXISTS);
    assert_int_equal(mb_rename(f, "A", "A/B/D"), STORE_INVALID);
    assert_int_equal(mb_rename(f, "nope", "Z"), STORE_NOTFOUND);
    assert_int_equal(mb_rename(f, "A", "INBOX"), STORE_EXISTS);
    assert_int_equal(mb_rename(f, "A", "Z"), STORE_OK);
    assert_int_equal(mb_get(f, "Z").uidvalidity, uv_a);
    mb_get(f, "Z/B");
    mb_get(f, "Z/B/C");
    mb_get(f, "AX"); /* not a child */
    assert_int_equal(store_mailbox_get(f->s, f->uid, "A/B", &q), STORE_NOTFOUND);
    /* A renamed child colliding with an existing name refuses it all. */
    assert_int_equal(mb_create(f, "Y/B", NULL), STORE_OK);
    assert_int_equal(mb_rename(f, "Z", "Y"), STORE_EXISTS); /* Z/B -> Y/B is taken */
    mb_get(f, "Z");
    assert_int_equal(store_mailbox_get(f->s, f->uid, "Y", &q), STORE_NOTFOUND);
    mb_get(f, "Z/B");
    fx_close(&f);
}

/* RFC 3501 §2.3.1.1: a name never shows the same UIDVALIDITY twice. */
static void test_uidvalidity(void **state)
{
    (void)state;
    struct fx *f = fx_open("uidvalidity", 0);
    uint32_t seen[32];
    unsigned n = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mb_create(f, "Again", NULL), STORE_OK);
        seen[n++] = mb_get(f, "Again").uidvalidity;
        assert_int_equal(mb_delete(f, "Again"), STORE_OK);
    }
    /* A user deleted and created again in the same second. */
    seen[n++] = mb_get(f, "INBOX").uidvalidity;
    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_OK);
    assert_int_equal(store_user_add(f->s, "alice@example.test", "$h$", "s", 0), STORE_OK);
    struct store_user u;
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_OK);
    f->uid = u.id;
    seen[n++] = mb_get(f, "INBOX").uidvalidity;
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            assert_true(seen[i] != seen[j]);
    fx_close(&f);
}

/* --------------------------------------------------------------- messages */

static void test_append_flags(void **state)
{
    (void)state;
    struct fx *f = fx_open("append_flags", 0);
    struct store_mailbox in = mb_get(f, "INBOX");
    struct res a1 = append(f, "inbox", MSG1, "$Junk \\seen \\SEEN foo \\Flagged FOO");
    assert_int_equal(a1.result, STORE_OK);
    assert_int_equal(a1.uid, 1);
    assert_int_equal(a1.uidvalidity, in.uidvalidity);
    assert_int_equal(append(f, "INBOX", MSG2, NULL).uid, 2);
    assert_int_equal(append(f, "INBOX", MSG3, "\\Draft").uid, 3);
    assert_int_equal(append(f, "Nope", MSG1, NULL).result, STORE_NOTFOUND);
    assert_int_equal(append(f, "INBOX", MSG1, "\\Recent").result, STORE_INVALID);
    assert_int_equal(append(f, "INBOX", MSG1, "bad(kw").result, STORE_INVALID);

    struct idx x = index_of(f, in.id, 0);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.flags[0], "\\Seen \\Flagged $Junk foo");
    assert_string_equal(x.flags[1], "");
    assert_true(x.modseq[0] < x.modseq[1] && x.modseq[1] < x.modseq[2]);
    in = mb_get(f, "INBOX");
    assert_int_equal(in.messages, 3);
    assert_int_equal(in.unseen, 2);
    assert_int_equal(in.uidnext, 4);
    assert_int_equal(in.highestmodseq, x.modseq[2]);
    assert_int_equal(in.size, strlen(MSG1) + strlen(MSG2) + strlen(MSG3));

    char *kw = NULL;
    assert_int_equal(store_mailbox_keywords(f->s, in.id, &kw), STORE_OK);
    assert_string_equal(kw, "$Junk foo");
    free(kw);

    /* STORE modes; unchanged messages are not reported and keep modseq. */
    uint32_t all[] = { 3, 1, 2, 99, 1 };
    struct res r = set_flags(f, in.id, all, 5, STORE_FLAGS_ADD, "\\seen", 0);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.n1, 2);
    assert_int_equal(r.u1[0], 2);
    assert_int_equal(r.u1[1], 3);
    assert_string_equal(r.fl[1], "\\Seen \\Draft");
    assert_true(r.ms[0] == in.highestmodseq + 1 && r.ms[1] == in.highestmodseq + 2);
    r = set_flags(f, in.id, all, 5, STORE_FLAGS_REMOVE, "FOO \\Draft", 0);
    assert_int_equal(r.n1, 2);
    assert_string_equal(r.fl[0], "\\Seen \\Flagged $Junk");
    assert_string_equal(r.fl[1], "\\Seen");
    uint32_t two[] = { 2 };
    r = set_flags(f, in.id, two, 1, STORE_FLAGS_REPLACE, "\\Answered kw2", 0);
    assert_int_equal(r.n1, 1);
    assert_string_equal(r.fl[0], "\\Answered kw2");
    assert_int_equal(mb_get(f, "INBOX").unseen, 1);

    /* CONDSTORE: UNCHANGEDSINCE below a message's modseq fails it only. */
    x = index_of(f, in.id, 0);
    uint64_t m1 = x.modseq[0], m2 = x.modseq[1];
    assert_true(m2 > m1);
    uint32_t both[] = { 1, 2 };
    r = set_flags(f, in.id, both, 2, STORE_FLAGS_ADD, "\\Flagged", m1);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.n2, 1);
    assert_int_equal(r.u2[0], 2);
    assert_int_equal(r.n1, 0); /* 1 already \Flagged: no change */
    r = set_flags(f, in.id, both, 2, STORE_FLAGS_ADD, "$Important", m1);
    assert_int_equal(r.n1, 1);
    assert_int_equal(r.u1[0], 1);
    assert_int_equal(r.n2, 1);
    /* Changed since: exactly the messages above the modseq. */
    struct idx ch = index_of(f, in.id, r.ms[0] - 1);
    assert_int_equal(ch.n, 1);
    assert_int_equal(ch.uid[0], 1);
    assert_int_equal(set_flags(f, in.id, both, 2, 7, "x", 0).result, STORE_INVALID);
    fx_close(&f);
}

static void test_expunge(void **state)
{
    (void)state;
    struct fx *f = fx_open("expunge", 0);
    struct store_mailbox in = mb_get(f, "INBOX");
    for (int i = 0; i < 5; i++)
        assert_int_equal(append(f, "INBOX", i % 2 ? MSG2 : MSG1, i < 4 ? "\\Deleted" : "").result,
                         STORE_OK);
    uint64_t before = mb_get(f, "INBOX").highestmodseq;
    struct store_user u;
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_OK);
    uint64_t used0 = u.used;

    /* UID EXPUNGE: only the \Deleted among the given UIDs. */
    uint32_t some[] = { 2, 5, 42 };
    struct res r = expunge(f, in.id, some, 3);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.n1, 1);
    assert_int_equal(r.u1[0], 2);
    assert_int_equal(r.modseq, before + 1);
    /* EXPUNGE: every \Deleted one. */
    r = expunge(f, in.id, NULL, 0);
    assert_int_equal(r.n1, 3);
    assert_int_equal(r.u1[0], 1);
    assert_int_equal(r.u1[1], 3);
    assert_int_equal(r.u1[2], 4);
    assert_int_equal(r.modseq, before + 2);
    r = expunge(f, in.id, NULL, 0);
    assert_int_equal(r.n1, 0);
    assert_int_equal(r.modseq, 0);
    in = mb_get(f, "INBOX");
    assert_int_equal(in.messages, 1);
    assert_int_equal(in.highestmodseq, before + 2);
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u), STORE_OK);
    assert_int_equal(u.used, used0 - 2 * strlen(MSG1) - 2 * strlen(MSG2));

    /* Tombstones: VANISHED since a modseq. */
    uint32_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_message_vanished(f->s, in.id, before, &v, &n), STORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[3], 4);
    free(v);
    assert_int_equal(store_message_vanished(f->s, in.id, before + 1, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    free(v);
    assert_int_equal(store_message_vanished(f->s, in.id, before + 2, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(v);
    assert_int_equal(index_of(f, in.id, before).n, 0);
    assert_int_equal(index_of(f, in.id, 0).n, 1);

    /* The blob of MSG1 is still used by uid 5; MSG2's went at refcount 0. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT refcount FROM blobs"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses"), 1);

    /* POP3 QUIT: the named UIDs go whatever their flags; unknown ones are skipped. */
    assert_int_equal(append(f, "INBOX", MSG2, "\\Seen").result, STORE_OK);
    uint32_t marked[] = { 5, 6, 99 };
    r = (struct res){ .f = f };
    r.result = store_expunge_uids(f->s, in.id, marked, 3, on_expunge, &r);
    assert_int_equal(r.result, STORE_OK);
    f->pending++;
    wait_all(f);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.n1, 2);
    assert_int_equal(r.u1[0], 5);
    assert_int_equal(r.u1[1], 6);
    assert_int_equal(mb_get(f, "INBOX").messages, 0);
    assert_int_equal(store_expunge_uids(f->s, in.id, NULL, 0, on_expunge, &r), STORE_INVALID);
    fx_close(&f);
}

static void test_copy_move(void **state)
{
    (void)state;
    uint64_t size3 = strlen(MSG1) + strlen(MSG2) + strlen(MSG3);
    struct fx *f = fx_open("copy_move", 2 * size3 + 60);
    struct store_mailbox in = mb_get(f, "INBOX"), ar = mb_get(f, "Archive");
    assert_int_equal(append(f, "INBOX", MSG1, "\\Seen").result, STORE_OK);
    assert_int_equal(append(f, "INBOX", MSG2, "kw").result, STORE_OK);
    assert_int_equal(append(f, "INBOX", MSG3, NULL).result, STORE_OK);
    assert_int_equal(append(f, "Archive", MSG3, NULL).uid, 1);

    uint32_t uids[] = { 3, 1, 77 };
    struct res r = copy(f, in.id, uids, 3, ar.id, false);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.uidvalidity, ar.uidvalidity);
    assert_int_equal(r.n1, 2);
    assert_int_equal(r.u1[0], 1);
    assert_int_equal(r.u2[0], 2);
    assert_int_equal(r.u1[1], 3);
    assert_int_equal(r.u2[1], 3);
    struct idx x = index_of(f, ar.id, 0);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.flags[1], "\\Seen");
    assert_int_equal(testdir_db_int(f->db_path, "SELECT max(refcount) FROM blobs"), 3); /* MSG3 */

    /* Over quota: nothing copied. */
    uint32_t all[] = { 1, 2, 3 };
    r = copy(f, in.id, all, 3, ar.id, false);
    assert_int_equal(r.result, STORE_QUOTA);
    assert_int_equal(index_of(f, ar.id, 0).n, 3);

    /* Move does not grow usage: allowed; sources expunged with tombstones. */
    struct store_user u0, u1;
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u0), STORE_OK);
    uint64_t hms = mb_get(f, "INBOX").highestmodseq;
    r = copy(f, in.id, all, 3, ar.id, true);
    assert_int_equal(r.result, STORE_OK);
    assert_int_equal(r.n1, 3);
    assert_int_equal(r.u2[0], 4);
    assert_int_equal(r.u2[2], 6);
    assert_int_equal(mb_get(f, "INBOX").messages, 0);
    assert_int_equal(mb_get(f, "Archive").messages, 6);
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u1), STORE_OK);
    assert_int_equal(u1.used, u0.used);
    uint32_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_message_vanished(f->s, in.id, hms, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    free(v);

    /* Across users: refused. */
    assert_int_equal(store_user_add(f->s, "bob@example.test", "$h$", "s", 0), STORE_OK);
    struct store_user bob;
    assert_int_equal(store_user_get(f->s, "bob@example.test", &bob), STORE_OK);
    struct store_mailbox bin;
    assert_int_equal(store_mailbox_get(f->s, bob.id, "INBOX", &bin), STORE_OK);
    uint32_t one[] = { 1 };
    assert_int_equal(copy(f, ar.id, one, 1, bin.id, false).result, STORE_INVALID);

    /* Deleting a mailbox expunges its messages: blobs and quota follow. */
    assert_int_equal(mb_delete(f, "Archive"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM parses"), 0);
    assert_int_equal(store_user_get(f->s, "alice@example.test", &u1), STORE_OK);
    assert_int_equal(u1.used, 0);
    uint64_t used, limit;
    assert_int_equal(store_quota_get(f->s, f->uid, &used, &limit), STORE_OK);
    assert_int_equal(used, 0);
    assert_int_equal(limit, 2 * size3 + 60);

    /* Append over quota. */
    char *big = malloc(3 * size3);
    memset(big, 'x', 3 * size3 - 1);
    big[3 * size3 - 1] = '\0';
    assert_int_equal(append(f, "INBOX", big, NULL).result, STORE_QUOTA);
    free(big);
    fx_close(&f);
}

/* RFC 3501 §6.3.5: renaming INBOX moves its messages and leaves it empty. */
static void test_rename_inbox(void **state)
{
    (void)state;
    struct fx *f = fx_open("rename_inbox", 0);
    assert_int_equal(mb_create(f, "INBOX/child", NULL), STORE_OK);
    assert_int_equal(append(f, "INBOX", MSG1, "\\Seen").result, STORE_OK);
    assert_int_equal(append(f, "INBOX", MSG2, NULL).result, STORE_OK);
    struct store_mailbox in = mb_get(f, "INBOX");
    struct evs e = { .n = 0 };
    struct store_sub *sub = store_subscribe(f->s, f->uid, ev_cb, &e);

    assert_int_equal(mb_rename(f, "inbox", "Old Mail"), STORE_OK);
    struct store_mailbox old = mb_get(f, "Old Mail"), in2 = mb_get(f, "INBOX");
    assert_int_equal(old.messages, 2);
    assert_int_equal(old.unseen, 1);
    assert_true(old.uidvalidity != in.uidvalidity);
    assert_int_equal(old.uidnext, 3);
    assert_int_equal(in2.id, in.id);
    assert_int_equal(in2.messages, 0);
    assert_int_equal(in2.uidvalidity, in.uidvalidity);
    assert_int_equal(in2.uidnext, 3); /* UIDs never reused */
    mb_get(f, "INBOX/child");
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(store_message_read(f->s, old.id, 2, &data, &len), STORE_OK);
    assert_int_equal(len, strlen(MSG2));
    free(data);
    uint32_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_message_vanished(f->s, in.id, in.highestmodseq, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    free(v);
    /* Events: the new mailbox, then INBOX's expunges. */
    assert_int_equal(e.n, 3);
    assert_int_equal(e.ev[0].kind, STORE_CHANGE_MAILBOX_CREATE);
    assert_string_equal(e.name[0], "Old Mail");
    assert_int_equal(e.ev[1].kind, STORE_CHANGE_EXPUNGE);
    assert_int_equal(e.ev[1].mailbox_id, in.id);
    assert_int_equal(e.ev[2].uid_first, 2);
    store_unsubscribe(f->s, &sub);
    /* New mail goes to the (still existing) INBOX. */
    assert_int_equal(append(f, "INBOX", MSG3, NULL).uid, 3);
    fx_close(&f);
}

/* --------------------------------------------------- events, group commit */

static void test_events(void **state)
{
    (void)state;
    struct fx *f = fx_open("events", 0);
    struct evs e = { .n = 0 }, other = { .n = 0 };
    struct store_sub *sub = store_subscribe(f->s, f->uid, ev_cb, &e);
    struct store_sub *sub2 = store_subscribe(f->s, f->uid + 1000, ev_cb, &other);
    struct store_mailbox in = mb_get(f, "INBOX");

    assert_int_equal(mb_create(f, "Box", NULL), STORE_OK);
    struct res a = append(f, "INBOX", MSG1, NULL);
    uint32_t u[] = { 1 };
    struct res fl = set_flags(f, in.id, u, 1, STORE_FLAGS_ADD, "\\Deleted", 0);
    struct res ex = expunge(f, in.id, NULL, 0);
    assert_int_equal(mb_rename(f, "Box", "Box2"), STORE_OK);
    assert_int_equal(mb_delete(f, "Box2"), STORE_OK);

    assert_int_equal(e.n, 6);
    assert_int_equal(e.ev[0].kind, STORE_CHANGE_MAILBOX_CREATE);
    assert_string_equal(e.name[0], "Box");
    assert_int_equal(e.ev[1].kind, STORE_CHANGE_APPEND);
    assert_int_equal(e.ev[1].mailbox_id, in.id);
    assert_int_equal(e.ev[1].uid_first, a.uid);
    assert_int_equal(e.ev[2].kind, STORE_CHANGE_FLAGS);
    assert_int_equal(e.ev[2].uid_first, 1);
    assert_int_equal(e.ev[2].modseq, fl.ms[0]);
    assert_string_equal(e.flags[2], "\\Deleted");
    assert_int_equal(e.ev[3].kind, STORE_CHANGE_EXPUNGE);
    assert_int_equal(e.ev[3].uid_first, 1);
    assert_int_equal(e.ev[3].modseq, ex.modseq);
    assert_int_equal(e.ev[4].kind, STORE_CHANGE_MAILBOX_RENAME);
    assert_string_equal(e.name[4], "Box2");
    assert_string_equal(e.old_name[4], "Box");
    assert_int_equal(e.ev[5].kind, STORE_CHANGE_MAILBOX_DELETE);
    assert_string_equal(e.name[5], "Box2");
    for (unsigned i = 0; i < e.n; i++)
        assert_int_equal(e.ev[i].user_id, f->uid);
    assert_int_equal(other.n, 0);
    store_unsubscribe(f->s, &sub);
    store_unsubscribe(f->s, &sub2);
    fx_close(&f);
}

#define MIXED_N 40

/* Mixed operations queued together share transactions; one failing op
 * (a create of an existing name) does not fail its neighbours. */
static void test_group_commit_mixed(void **state)
{
    (void)state;
    struct fx *f = fx_open("group_mixed", 0);
    struct store_mailbox in = mb_get(f, "INBOX");
    assert_int_equal(append(f, "INBOX", MSG1, NULL).result, STORE_OK);
    struct store_stats st0, st1;
    store_stats(f->s, &st0);

    static struct res r[MIXED_N];
    static char names[MIXED_N][16];
    static char bodies[MIXED_N][64];
    uint32_t one[] = { 1 };
    for (int i = 0; i < MIXED_N; i++) {
        r[i] = (struct res){ .f = f };
        int rc;
        switch (i % 4) {
        case 0:
            snprintf(names[i], sizeof names[i], "Box%d", i);
            rc = store_mailbox_create(f->s, f->uid, names[i], NULL, on_done, &r[i]);
            break;
        case 1: {
            snprintf(bodies[i], sizeof bodies[i], "Subject: %d\r\n\r\nbody %d\r\n", i, i);
            struct store_append a = {
                .user_id = f->uid, .mailbox = "INBOX", .data = bodies[i],
                .len = strlen(bodies[i]), .flags = "\\Seen", .internal_date = 1,
            };
            rc = store_append(f->s, &a, on_append, &r[i]);
            break;
        }
        case 2:
            rc = store_flags(f->s, in.id, one, 1, i % 8 == 2 ? STORE_FLAGS_ADD
                             : STORE_FLAGS_REMOVE, "\\Flagged", 0, on_flags, &r[i]);
            break;
        default:
            rc = store_mailbox_create(f->s, f->uid, "Sent", NULL, on_done, &r[i]);
            break;
        }
        assert_int_equal(rc, STORE_OK);
        f->pending++;
    }
    wait_all(f);
    for (int i = 0; i < MIXED_N; i++)
        assert_int_equal(r[i].result, i % 4 == 3 ? STORE_EXISTS : STORE_OK);
    store_stats(f->s, &st1);
    uint64_t ops = st1.ops - st0.ops, tx = st1.transactions - st0.transactions;
    assert_int_equal(ops, MIXED_N);
    assert_int_equal(st1.deliveries, st0.deliveries);
    assert_true(tx < ops);
    /* The appends got consecutive UIDs 2.., flags ops alternate. */
    struct idx x = index_of(f, in.id, 0);
    assert_int_equal(x.n, 1 + MIXED_N / 4);
    for (unsigned i = 0; i < x.n; i++)
        assert_int_equal(x.uid[i], i + 1);
    assert_int_equal(mb_get(f, "Box36").messages, 0);
    fx_close(&f);
}

/* ------------------------------------------------------------------ fetch */

struct fetched {
    struct fx *f;
    int result;
    char *data;
    size_t len;
    struct mime_message *parse;
};

static void on_fetch(void *arg, int result, char *data, size_t len, struct mime_message *parse)
{
    struct fetched *x = arg;
    x->result = result;
    x->data = data;
    x->len = len;
    x->parse = parse;
    x->f->pending--;
}

static void test_fetch(void **state)
{
    (void)state;
    struct fx *f = fx_open("fetch", 0);
    struct store_mailbox in = mb_get(f, "INBOX");
    assert_int_equal(append(f, "INBOX", MSG3, NULL).result, STORE_OK);

    struct fetched a = { .f = f }, b = { .f = f }, c = { .f = f };
    assert_int_equal(store_fetch(f->s, in.id, 1, STORE_FETCH_RAW | STORE_FETCH_PARSE, on_fetch,
                                 &a), STORE_OK);
    assert_int_equal(store_fetch(f->s, in.id, 1, STORE_FETCH_PARSE, on_fetch, &b), STORE_OK);
    assert_int_equal(store_fetch(f->s, in.id, 9, STORE_FETCH_RAW, on_fetch, &c), STORE_OK);
    f->pending = 3;
    wait_all(f);
    assert_int_equal(a.result, STORE_OK);
    assert_int_equal(a.len, strlen(MSG3));
    assert_memory_equal(a.data, MSG3, a.len);
    assert_non_null(a.parse);
    assert_string_equal(a.parse->root.subject, "three");
    assert_string_equal(a.parse->root.subtype, "plain");
    assert_int_equal(b.result, STORE_OK);
    assert_null(b.data);
    assert_non_null(b.parse);
    assert_int_equal(c.result, STORE_NOTFOUND);
    assert_null(c.data);
    free(a.data);
    mime_free(&a.parse);
    mime_free(&b.parse);
    assert_int_equal(store_fetch(f->s, in.id, 1, 0, on_fetch, &c), STORE_INVALID);
    fx_close(&f);
}

/* Sets the stored parse of every message to bytes (NULL: none). */
static void set_stored_parse(struct fx *f, const char *bytes, size_t len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE parses SET mime = ?1", -1, &st, NULL),
                     SQLITE_OK);
    if (bytes)
        sqlite3_bind_blob(st, 1, bytes, (int)len, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static char *fetched_subject(struct fx *f, int64_t mailbox_id)
{
    struct fetched x = { .f = f };
    assert_int_equal(store_fetch(f->s, mailbox_id, 1, STORE_FETCH_PARSE, on_fetch, &x), STORE_OK);
    f->pending = 1;
    wait_all(f);
    assert_int_equal(x.result, STORE_OK);
    assert_null(x.data);
    assert_non_null(x.parse);
    char *subject = strdup(x.parse->root.subject ? x.parse->root.subject : "");
    mime_free(&x.parse);
    return subject;
}

/* A stored parse of an older format, a damaged one or none: the message is
 * parsed again from its bytes; a current one is used as stored. */
static void test_fetch_reparse(void **state)
{
    (void)state;
    struct fx *f = fx_open("reparse", 0);
    struct store_mailbox in = mb_get(f, "INBOX");
    assert_int_equal(append(f, "INBOX", MSG3, NULL).result, STORE_OK);
    /* The parse of another message, to tell a decode from a re-parse. */
    static const char other[] = "Subject: other\r\n\r\nx\r\n";
    struct mime_message *m = mime_parse(other, sizeof other - 1);
    size_t len = 0;
    char *enc = mime_encode(m, &len);
    mime_free(&m);
    assert_non_null(enc);
    assert_true(mime_encoded_is_current(enc, len));

    set_stored_parse(f, enc, len);
    char *subject = fetched_subject(f, in.id);
    assert_string_equal(subject, "other"); /* current: decoded as stored */
    free(subject);

    enc[4] = 1; /* version 1 */
    assert_false(mime_encoded_is_current(enc, len));
    set_stored_parse(f, enc, len);
    subject = fetched_subject(f, in.id);
    assert_string_equal(subject, "three");
    free(subject);

    set_stored_parse(f, "PMIM\x02\xff\xff", 7); /* current version, damaged */
    subject = fetched_subject(f, in.id);
    assert_string_equal(subject, "three");
    free(subject);

    set_stored_parse(f, NULL, 0);
    subject = fetched_subject(f, in.id);
    assert_string_equal(subject, "three");
    free(subject);
    free(enc);
    fx_close(&f);
}

/* Migration 2 takes the subscribed column over into subscriptions. */
static void test_migration_subscriptions(void **state)
{
    (void)state;
    struct fx *f = fx_open("migration", 0);
    store_close(&f->s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "DROP TABLE subscriptions; DROP TABLE expunged; DROP TABLE counters;"
        " UPDATE mailboxes SET subscribed = 0 WHERE name = 'Junk';"
        " PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
    assert_int_equal(store_start_writer(f->s, &f->loop), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), 6); /* migrated through to the latest */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM subscriptions"), 5);
    assert_false(mb_get(f, "Junk").subscribed);
    /* The counter starts above every UIDVALIDITY already given. */
    uint32_t max = (uint32_t)testdir_db_int(f->db_path, "SELECT max(uidvalidity) FROM mailboxes");
    assert_int_equal(mb_create(f, "New", NULL), STORE_OK);
    assert_true(mb_get(f, "New").uidvalidity > max);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mailboxes),
        cmocka_unit_test(test_uidvalidity),
        cmocka_unit_test(test_append_flags),
        cmocka_unit_test(test_expunge),
        cmocka_unit_test(test_copy_move),
        cmocka_unit_test(test_rename_inbox),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_group_commit_mixed),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_fetch_reparse),
        cmocka_unit_test(test_migration_subscriptions),
    };
    return cmocka_run_group_tests(tests, testdir_setup, testdir_teardown);
}
