/*
 * test_store_search.c — the IMAP SEARCH index of the store (schema
 * migrations 3 and 4): BODY / TEXT / HEADER (FROM, TO, SUBJECT ...) over
 * decoded text (base64, quoted-printable, ISO-8859-1, UTF-8, RFC 2047 words,
 * multipart, HTML), case folding, short needles, LIKE and FTS5 specials
 * taken literally, field-exact HEADER, SENTBEFORE / SENTON / SENTSINCE, one
 * index row per blob (dedup, deletion with the blob, failed items), the
 * upgrade of a version 2 or 3 database, the text cap, and a search made on
 * a libuv pool thread. Real on-disk database, writer thread on a real loop.
 *
 * The index is built after the delivery by the indexer (store/index.c). The
 * matching tests run twice: once with the indexer paused (store_index_pause,
 * "(lag)" in the name), so that every message is searched through its text
 * made on the fly, and once after the indexer has caught up, through the
 * index; both must give the same answers. Other tests: searches racing the
 * indexer, a mix of indexed and queued messages, blobs left queued by a
 * stop or a crash, and store_close stopping a busy indexer promptly.
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
#include "mime/mime.h"
#include "store/store-int.h"   /* store_index_pause */
#include "store/store.h"
#include "tests/unit/testdir.h"

/* The "(lag)" runs: the indexer is paused from the store's start. */
static bool lag;

static int lag_on(void **state)
{
    (void)state;
    lag = true;
    return 0;
}

static int lag_off(void **state)
{
    (void)state;
    lag = false;
    return 0;
}

struct fx {
    char dir[512];
    char db_path[600];
    struct store *s;
    uv_loop_t loop;
    int64_t alice, bob;
    int64_t inbox;          /* alice's INBOX */
    unsigned pending;
};

static int64_t user_id(struct fx *f, const char *address)
{
    struct store_user u;
    assert_int_equal(store_user_get(f->s, address, &u), STORE_OK);
    return u.id;
}

static int64_t mailbox_id(struct fx *f, int64_t user, const char *name)
{
    struct store_mailbox m;
    assert_int_equal(store_mailbox_get(f->s, user, name, &m), STORE_OK);
    return m.id;
}

static void fx_start(struct fx *f)
{
    char err[256] = "";
    if (store_open(f->dir, &f->s, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
    assert_int_equal(store_start_writer(f->s, &f->loop), STORE_OK);
    if (lag)
        store_index_pause(f->s, true);
}

static struct fx *fx_open(const char *name)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", testdir, name);
    snprintf(f->db_path, sizeof f->db_path, "%s/petrel.db", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fx_start(f);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    assert_int_equal(store_user_add(f->s, "alice@example.test", "$h$", "scram", 0), STORE_OK);
    assert_int_equal(store_user_add(f->s, "bob@example.test", "$h$", "scram", 0), STORE_OK);
    f->alice = user_id(f, "alice@example.test");
    f->bob = user_id(f, "bob@example.test");
    f->inbox = mailbox_id(f, f->alice, "INBOX");
    return f;
}

/* Stops the store and runs the loop until it has let go of everything. */
static void fx_stop(struct fx *f)
{
    store_close(&f->s);
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

static void wait_all(struct fx *f)
{
    while (f->pending > 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static struct store_stats stats(struct fx *f)
{
    struct store_stats st;
    store_stats(f->s, &st);
    return st;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Waits until the indexer has caught up (index_pending 0). */
static void wait_indexed(struct fx *f)
{
    double t0 = now_s();
    while (stats(f).index_pending > 0) {
        if (now_s() - t0 > 60)
            fail_msg("the indexer did not catch up: %llu pending",
                     (unsigned long long)stats(f).index_pending);
        usleep(1000);
    }
}

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

/* ------------------------------------------------------------- writes */

struct res {
    struct fx *f;
    bool fired;
    int result;
    uint32_t uid;
};

static void on_done(void *arg, int result)
{
    struct res *r = arg;
    r->fired = true;
    r->result = result;
    r->f->pending--;
}

static void on_append(void *arg, int result, uint32_t uidvalidity, uint32_t uid)
{
    (void)uidvalidity;
    struct res *r = arg;
    r->uid = uid;
    on_done(arg, result);
}

static void on_expunge(void *arg, int result, const uint32_t *uids, size_t n, uint64_t modseq)
{
    (void)uids;
    (void)n;
    (void)modseq;
    on_done(arg, result);
}

static void on_flags(void *arg, int result, const struct store_flags_result *fr)
{
    (void)fr;
    on_done(arg, result);
}

static int deliver_to(struct fx *f, const char *msg, const int64_t *users, unsigned n)
{
    struct res r = { .f = f };
    struct store_delivery d = {
        .data = msg, .len = strlen(msg), .internal_date = 1700000000,
        .mail_from = "sender@remote.test", .user_ids = users, .n_users = n,
    };
    f->pending++;
    assert_int_equal(store_deliver(f->s, &d, on_done, &r), STORE_OK);
    wait_all(f);
    assert_true(r.fired);
    return r.result;
}

static void deliver(struct fx *f, const char *msg)
{
    assert_int_equal(deliver_to(f, msg, &f->alice, 1), STORE_OK);
}

static uint32_t append(struct fx *f, int64_t user, const char *mailbox, const char *msg)
{
    struct res r = { .f = f };
    struct store_append a = {
        .user_id = user, .mailbox = mailbox, .data = msg, .len = strlen(msg),
        .internal_date = 1700000000,
    };
    f->pending++;
    assert_int_equal(store_append(f->s, &a, on_append, &r), STORE_OK);
    wait_all(f);
    assert_int_equal(r.result, STORE_OK);
    return r.uid;
}

/* Marks every message of a mailbox \Deleted and expunges it. */
static void expunge_all(struct fx *f, int64_t mbox, uint32_t max_uid)
{
    uint32_t uids[64];
    assert_true(max_uid <= 64);
    for (uint32_t i = 0; i < max_uid; i++)
        uids[i] = i + 1;
    struct res r = { .f = f };
    f->pending++;
    assert_int_equal(store_flags(f->s, mbox, uids, max_uid, STORE_FLAGS_ADD, "\\Deleted", 0,
                                 on_flags, &r), STORE_OK);
    wait_all(f);
    assert_int_equal(r.result, STORE_OK);
    r = (struct res){ .f = f };
    f->pending++;
    assert_int_equal(store_expunge(f->s, mbox, NULL, 0, on_expunge, &r), STORE_OK);
    wait_all(f);
    assert_int_equal(r.result, STORE_OK);
}

/* ------------------------------------------------------------ searches */

/* The UIDs as "1 3 4" ("" for none); fails on an error. */
static const char *uid_text(int r, uint32_t *uids, size_t n)
{
    static char out[512];
    assert_int_equal(r, STORE_OK);
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(uids[i - 1] < uids[i]); /* ascending */
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%u", i ? " " : "", uids[i]);
    }
    if (n == 0)
        assert_null(uids);
    free(uids);
    return out;
}

static const char *search(struct fx *f, int64_t mbox, enum store_text_field field,
                          const char *header, const char *needle)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    int r = store_search_text(f->s, mbox, field, header, needle, &uids, &n);
    return uid_text(r, uids, n);
}

#define BODY(f, needle) search(f, (f)->inbox, STORE_TEXT_BODY, NULL, needle)
#define TEXT(f, needle) search(f, (f)->inbox, STORE_TEXT_TEXT, NULL, needle)
#define HEADER(f, name, needle) search(f, (f)->inbox, STORE_TEXT_HEADER, name, needle)

static const char *sent(struct fx *f, enum store_sent_op op, int64_t day)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    int r = store_search_sent(f->s, f->inbox, op, day, &uids, &n);
    return uid_text(r, uids, n);
}

static int64_t day_of(int y, int m, int d)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
    return (int64_t)timegm(&tm);
}

/* ------------------------------------------------------------ messages */

/* UID 1: plain ASCII, every address field, custom and empty fields. */
static const char M_PLAIN[] =
    "Date: Mon, 2 Mar 2026 09:15:00 +0100\r\n"
    "From: Alice Example <alice@example.test>\r\n"
    "To: Bob <bob@example.test>\r\n"
    "Cc: Carol <carol@example.test>\r\n"
    "Subject: Quarterly report\r\n"
    "X-Custom: alpha beta\r\n"
    "X-Custom-Two: gamma\r\n"
    "X-Empty:\r\n"
    "Message-ID: <1@example.test>\r\n"
    "\r\n"
    "The numbers are 100% final_version.\r\n"
    "Say \"hi\" to everyone.\r\n"
    "Bananas.\r\n";

/* UID 2: UTF-8 body in base64, RFC 2047 B and Q words; the date as written
 * is 3 March although it is 4 March in UTC. */
static const char M_B64[] =
    "Date: Tue, 03 Mar 2026 23:30:00 -0800\r\n"
    "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@remote.test>\r\n"
    "To: alice@example.test\r\n"
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= from bob\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "VmllbGUgR3LDvMOfZSBhdXMgTcO8bmNoZW4sDQpKw7xyZ2VuDQo=\r\n";

/* UID 3: ISO-8859-1 quoted-printable, ISO-8859-1 Q word, no Date. */
static const char M_QP[] =
    "From: pierre@remote.test\r\n"
    "To: alice@example.test\r\n"
    "Subject: =?ISO-8859-1?Q?Caf=E9?= menu\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 cr=E8me br=FBl=E9e, na=EFve.\r\n";

/* UID 4: multipart/mixed with an alternative (QP text, HTML) and a base64
 * attachment; an obsolete date (2-digit year, no weekday). */
static const char M_MULTI[] =
    "Date: 4 Mar 26 08:00 EST\r\n"
    "From: news@remote.test\r\n"
    "To: alice@example.test\r\n"
    "Subject: Newsletter\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Plain part: =C3=A9t=C3=A9 sale\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><body><p>Some <b>bold words</b> here</p></body></html>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "c2VjcmV0YXR0YWNobWVudCBwYXlsb2FkDQo=\r\n"
    "--outer--\r\n";

/* UID 5: asctime() date, capital sharp s (U+1E9E) in an 8-bit body. */
static const char M_ASCTIME[] =
    "Date: Wed Mar  4 10:00:00 2026\r\n"
    "From: bob@example.test\r\n"
    "To: alice@example.test\r\n"
    "Subject: Re: misc\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "GR\xC3\x9C\xE1\xBA\x9E" "E and ASCII\r\n";

/* UID 6: a Date that cannot be read. */
static const char M_BADDATE[] =
    "Date: yesterday (about noon)\r\n"
    "From: carol@example.test\r\n"
    "To: alice@example.test\r\n"
    "Subject: short\r\n"
    "\r\n"
    "short\r\n";

static struct fx *fx_mail(const char *name)
{
    struct fx *f = fx_open(name);
    deliver(f, M_PLAIN);
    deliver(f, M_B64);
    deliver(f, M_QP);
    deliver(f, M_MULTI);
    deliver(f, M_ASCTIME);
    deliver(f, M_BADDATE);
    if (!lag)
        wait_indexed(f);
    /* Searched through the index, or every message through its text. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), lag ? 0 : 6);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), lag ? 6 : 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), lag ? 0 : 6);
    return f;
}

/* --------------------------------------------------------------- tests */

static void test_body(void **state)
{
    (void)state;
    struct fx *f = fx_mail("body");
    /* base64 UTF-8, folded both ways; U+1E9E folds to ß, "SS" does not. */
    assert_string_equal(BODY(f, "grüße"), "2 5");
    assert_string_equal(BODY(f, "GRÜẞE"), "2 5");
    assert_string_equal(BODY(f, "GRÜSSE"), "");
    assert_string_equal(BODY(f, "MÜNCHEN"), "2");
    assert_string_equal(BODY(f, "münchen,\nJÜRGEN"), "2"); /* across the line break */
    /* ISO-8859-1 quoted-printable. */
    assert_string_equal(BODY(f, "CAFÉ CRÈME"), "3");
    assert_string_equal(BODY(f, "brûlée, naïve"), "3");
    assert_string_equal(BODY(f, "brulee"), "");
    /* Multipart: both alternatives, HTML without markup, no attachment. */
    assert_string_equal(BODY(f, "été sale"), "4");
    assert_string_equal(BODY(f, "BOLD WORDS"), "4");
    assert_string_equal(BODY(f, "some bold words here"), "4");
    assert_string_equal(BODY(f, "<b>"), "");
    assert_string_equal(BODY(f, "secretattachment"), "");
    /* BODY is the body, TEXT the header too. */
    assert_string_equal(BODY(f, "quarterly"), "");
    assert_string_equal(TEXT(f, "QUARTERLY"), "1");
    assert_string_equal(TEXT(f, "carol"), "1 6");
    assert_string_equal(TEXT(f, "grüße"), "2 5");
    assert_string_equal(TEXT(f, "no such words"), "");
    /* The empty string is in every message. */
    assert_string_equal(BODY(f, ""), "1 2 3 4 5 6");
    assert_string_equal(TEXT(f, ""), "1 2 3 4 5 6");
    fx_close(&f);
}

static void test_short_and_special(void **state)
{
    (void)state;
    struct fx *f = fx_mail("special");
    /* 1 and 2 characters: no trigram, the text is read. */
    assert_string_equal(BODY(f, "%"), "1");
    assert_string_equal(BODY(f, "ü"), "2 5");
    assert_string_equal(BODY(f, "Ü"), "2 5");
    assert_string_equal(BODY(f, "ẞ"), "2 5");
    assert_string_equal(BODY(f, "_v"), "1");
    assert_string_equal(BODY(f, "0%"), "1");
    assert_string_equal(BODY(f, "zq"), "");
    /* "Quarterly" in 1's header, "quoted-printable" in 3's. */
    assert_string_equal(TEXT(f, "q"), "1 3");
    assert_string_equal(BODY(f, "q"), "");
    /* LIKE and GLOB wildcards are plain characters. */
    assert_string_equal(BODY(f, "100%"), "1");
    assert_string_equal(BODY(f, "% f"), "1");
    assert_string_equal(BODY(f, "%f"), "");
    assert_string_equal(BODY(f, "1_0"), "");
    assert_string_equal(BODY(f, "l_v"), "1");
    assert_string_equal(BODY(f, "l%v"), "");
    assert_string_equal(BODY(f, "final*"), "");
    assert_string_equal(BODY(f, "fin?l"), "");
    /* FTS5 syntax is plain text too: quotes, operators, column filters. */
    assert_string_equal(BODY(f, "\"hi\""), "1");
    assert_string_equal(BODY(f, "say \"hi\" to"), "1");
    assert_string_equal(BODY(f, "\"\"\""), "");
    assert_string_equal(BODY(f, "hi OR numbers"), "");
    assert_string_equal(BODY(f, "body : numbers"), "");
    assert_string_equal(BODY(f, "NEAR(x y)"), "");
    /* Needles longer than the query's trigram sample. */
    assert_string_equal(BODY(f, "the numbers are 100% final_version.\nsay \"hi\" to everyone."),
                        "1");
    assert_string_equal(BODY(f, "the numbers are 100% final_version.\nsay \"hi\" to everyone!"),
                        "");
    /* Every trigram of the needle is in 1, but not the needle itself. */
    assert_string_equal(BODY(f, "bananas"), "1");
    assert_string_equal(BODY(f, "ananana"), "");
    assert_string_equal(TEXT(f, "ananana"), "");
    /* Bytes that are not UTF-8 only match themselves. */
    assert_string_equal(BODY(f, "\xFF\xFE\xFD"), "");
    fx_close(&f);
}

static void test_header(void **state)
{
    (void)state;
    struct fx *f = fx_mail("header");
    /* SUBJECT with encoded words decoded. */
    assert_string_equal(HEADER(f, "Subject", "grüße"), "2");
    assert_string_equal(HEADER(f, "SUBJECT", "CAFÉ"), "3");
    assert_string_equal(HEADER(f, "subject", "report"), "1");
    /* Field-exact: "bob" is in 1's To, 2's Subject and 5's From. */
    assert_string_equal(HEADER(f, "From", "bob"), "5");
    assert_string_equal(HEADER(f, "To", "bob"), "1");
    assert_string_equal(HEADER(f, "subject", "bob"), "2");
    assert_string_equal(HEADER(f, "from", "JÜRGEN"), "2");
    assert_string_equal(HEADER(f, "cc", "carol"), "1");
    assert_string_equal(HEADER(f, "subject", "example"), "");
    /* Short needles are field-exact as well ("u" is in many other fields). */
    assert_string_equal(HEADER(f, "subject", "u"), "1 3");
    assert_string_equal(HEADER(f, "subject", "é"), "3");
    /* Empty needle: the messages that have the field. */
    assert_string_equal(HEADER(f, "bcc", ""), "");
    assert_string_equal(HEADER(f, "Cc", ""), "1");
    assert_string_equal(HEADER(f, "X-Empty", ""), "1");
    assert_string_equal(HEADER(f, "date", ""), "1 2 4 5 6");
    assert_string_equal(HEADER(f, "Subject", ""), "1 2 3 4 5 6");
    /* A field name is not a prefix of another. */
    assert_string_equal(HEADER(f, "X-Custom", ""), "1");
    assert_string_equal(HEADER(f, "x-custom", "BETA"), "1");
    assert_string_equal(HEADER(f, "x-custom", "gamma"), "");
    assert_string_equal(HEADER(f, "X-Custom-Two", "gamma"), "1");
    assert_string_equal(HEADER(f, "X-Cust", ""), "");
    assert_string_equal(HEADER(f, "X-Missing", ""), "");
    /* Names no field can have match nothing. */
    assert_string_equal(HEADER(f, "bad name", ""), "");
    assert_string_equal(HEADER(f, "", ""), "");
    assert_string_equal(HEADER(f, "to:", "bob"), "");
    assert_string_equal(HEADER(f, "n\xC3\xA4me", ""), "");
    fx_close(&f);
}

static void test_sent(void **state)
{
    (void)state;
    struct fx *f = fx_mail("sent");
    int64_t mar2 = day_of(2026, 3, 2), mar3 = day_of(2026, 3, 3), mar4 = day_of(2026, 3, 4);
    assert_string_equal(sent(f, STORE_SENT_ON, mar2), "1");
    assert_string_equal(sent(f, STORE_SENT_ON, mar3), "2");     /* as written, not UTC */
    assert_string_equal(sent(f, STORE_SENT_ON, mar4), "4 5");   /* "26", asctime */
    assert_string_equal(sent(f, STORE_SENT_BEFORE, mar3), "1");
    assert_string_equal(sent(f, STORE_SENT_BEFORE, mar2), "");
    assert_string_equal(sent(f, STORE_SENT_SINCE, mar3), "2 4 5");
    assert_string_equal(sent(f, STORE_SENT_SINCE, mar2), "1 2 4 5");
    assert_string_equal(sent(f, STORE_SENT_SINCE, day_of(2026, 3, 5)), "");
    /* Any time of the day is that day. */
    assert_string_equal(sent(f, STORE_SENT_ON, mar2 + 86399), "1");
    /* 3 (no Date) and 6 (unreadable) are in none of them. */
    assert_string_equal(sent(f, STORE_SENT_BEFORE, day_of(9999, 1, 1)), "1 2 4 5");
    assert_string_equal(sent(f, STORE_SENT_SINCE, day_of(1900, 1, 1)), "1 2 4 5");
    fx_close(&f);
}

/* More Date forms, one message each: (Date value, its day or 0). */
static void test_sent_forms(void **state)
{
    (void)state;
    static const struct {
        const char *date;
        int y, m, d;
    } forms[] = {
        { "Thu, 1 Jan 1970 00:00:00 +0000", 1970, 1, 1 },
        { "1 jan 1970 23:59 -1200", 1970, 1, 1 },
        { "(comment) Fri , 29 Feb 2008 12:00:00 GMT (another)", 2008, 2, 29 },
        { "Sat, 31 Dec 99 23:59:59 +0000", 1999, 12, 31 },
        { "Sun, 01 Jan 049 00:00:00 +0000", 1949, 1, 1 },
        { "Mon, 15 September 2025 08:00:00 +0200", 2025, 9, 15 },
        { "Tue, 30 Feb 2026 10:00:00 +0000", 0, 0, 0 },   /* no such day */
        { "Tue, 29 Feb 2100 10:00:00 +0000", 0, 0, 0 },   /* not a leap year */
        { "2026-03-04T10:00:00Z", 0, 0, 0 },              /* ISO 8601: not RFC 5322 */
        { "", 0, 0, 0 },
    };
    struct fx *f = fx_open("sentforms");
    size_t n = sizeof(forms) / sizeof(forms[0]);
    for (size_t i = 0; i < n; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "Date: %s\r\nSubject: form %zu\r\n\r\nbody %zu\r\n",
                 forms[i].date, i, i);
        deliver(f, msg);
    }
    for (size_t i = 0; i < n; i++) {
        if (!forms[i].y)
            continue;
        char want[16];
        /* The first two forms share 1 Jan 1970. */
        snprintf(want, sizeof want, forms[i].y == 1970 ? "1 2" : "%zu", i + 1);
        assert_string_equal(sent(f, STORE_SENT_ON, day_of(forms[i].y, forms[i].m, forms[i].d)),
                            want);
    }
    /* The unreadable ones are in no range. */
    assert_string_equal(sent(f, STORE_SENT_SINCE, day_of(1000, 1, 1)), "1 2 3 4 5 6");
    assert_string_equal(sent(f, STORE_SENT_BEFORE, day_of(1970, 1, 2)), "1 2 5");
    assert_string_equal(sent(f, STORE_SENT_BEFORE, 0), "5");
    /* A day before 1970 rounds down too. */
    assert_string_equal(sent(f, STORE_SENT_ON, day_of(1949, 1, 1) + 3600), "5");
    fx_close(&f);
}

static void test_dedup_and_gc(void **state)
{
    (void)state;
    struct fx *f = fx_open("dedup");
    int64_t both[2] = { f->alice, f->bob };
    assert_int_equal(deliver_to(f, M_B64, both, 2), STORE_OK);
    int64_t bob_inbox = mailbox_id(f, f->bob, "INBOX");
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 1);
    assert_string_equal(BODY(f, "münchen"), "1");
    assert_string_equal(search(f, bob_inbox, STORE_TEXT_BODY, NULL, "münchen"), "1");
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    /* The same bytes appended again: the blob and its index row are shared. */
    int64_t archive = mailbox_id(f, f->alice, "Archive");
    assert_int_equal(append(f, f->alice, "Archive", M_B64), 1);
    assert_string_equal(search(f, archive, STORE_TEXT_HEADER, "subject", "GRÜSSE"), "");
    assert_string_equal(search(f, archive, STORE_TEXT_HEADER, "subject", "GRÜẞE"), "1");
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 1);
    /* An appended message of its own is indexed. */
    int64_t drafts = mailbox_id(f, f->alice, "Drafts");
    assert_int_equal(append(f, f->alice, "Drafts", M_QP), 1);
    assert_string_equal(search(f, drafts, STORE_TEXT_BODY, NULL, "crème"), "1");
    assert_string_equal(search(f, drafts, STORE_TEXT_BODY, NULL, "münchen"), "");
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 2);
    /* The row stays while one reference does, and goes with the blob. */
    expunge_all(f, f->inbox, 1);
    expunge_all(f, bob_inbox, 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 2);
    assert_string_equal(search(f, archive, STORE_TEXT_BODY, NULL, "münchen"), "1");
    expunge_all(f, archive, 1);
    expunge_all(f, drafts, 1);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 0);
    assert_string_equal(search(f, archive, STORE_TEXT_BODY, NULL, "münchen"), "");
    /* Deleting a user drops its blobs' rows too (admin connection), */
    deliver(f, M_PLAIN);
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 1);
    assert_int_equal(store_user_del(f->s, "alice@example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 0);
    /* and the queue row of a blob not indexed yet. */
    store_index_pause(f->s, true);
    assert_int_equal(deliver_to(f, M_QP, &f->bob, 1), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 1);
    assert_int_equal(store_user_del(f->s, "bob@example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blobs"), 0);
    /* The writer's count still has it, until the indexer finds the queue
     * empty. */
    assert_int_equal(stats(f).index_pending, 1);
    store_index_pause(f->s, false);
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 0);
    db_exec(f, "INSERT INTO blob_text(blob_text) VALUES ('integrity-check')");
    fx_close(&f);
}

/* An item that fails (over quota) leaves no index rows behind. */
static void test_failed_item(void **state)
{
    (void)state;
    struct fx *f = fx_open("failed");
    assert_int_equal(store_user_add(f->s, "carol@example.test", "$h$", "scram", 10), STORE_OK);
    int64_t carol = user_id(f, "carol@example.test");
    assert_int_equal(deliver_to(f, M_PLAIN, &carol, 1), STORE_QUOTA);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(stats(f).index_pending, 0);
    /* A group of many, the failed ones in it. */
    static struct res r[40];
    static char msgs[40][128];
    for (int i = 0; i < 40; i++) {
        snprintf(msgs[i], sizeof msgs[i], "Subject: batch %d\r\n\r\nword%dword\r\n", i, i);
        struct store_delivery d = {
            .data = msgs[i], .len = strlen(msgs[i]), .internal_date = 1,
            .mail_from = "", .user_ids = i % 4 == 3 ? &carol : &f->alice, .n_users = 1,
        };
        r[i] = (struct res){ .f = f };
        f->pending++;
        assert_int_equal(store_deliver(f->s, &d, on_done, &r[i]), STORE_OK);
    }
    wait_all(f);
    for (int i = 0; i < 40; i++)
        assert_int_equal(r[i].result, i % 4 == 3 ? STORE_QUOTA : STORE_OK);
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 30);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 30);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(stats(f).indexed, 30);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text t WHERE NOT EXISTS"
                               " (SELECT 1 FROM blobs b WHERE b.id = t.rowid)"), 0);
    /* The group's UIDs follow the order prepare() finished in. */
    const char *one = BODY(f, "word2word");
    assert_true(*one && !strchr(one, ' '));
    assert_string_equal(BODY(f, "word3word"), "");
    assert_string_equal(BODY(f, "word"), "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"
                                         " 21 22 23 24 25 26 27 28 29 30");
    db_exec(f, "INSERT INTO blob_text(blob_text) VALUES ('integrity-check')");
    fx_close(&f);
}

/*
 * A version 2 database (before the index): migrations 3 and 4 queue every
 * blob for the indexer, without reading any message; searches are right
 * before the indexer has run (SENT* from the stored parse), and after.
 */
static void test_migration_upgrade(void **state)
{
    (void)state;
    struct fx *f = fx_mail("upgrade");
    uint32_t drafts_uid = append(f, f->alice, "Drafts", "Subject: draft\r\n\r\nunsent words\r\n");
    assert_int_equal(drafts_uid, 1);
    fx_stop(f);
    /* What migrations 3 and 4 add, taken away again: the v2 schema and
     * data, and a blob that cannot be inflated. */
    db_exec(f, "DROP TRIGGER blobs_text_gc; DROP TABLE blob_text; DROP TABLE blob_search;"
               " DROP TABLE index_queue;"
               " INSERT INTO blobs(sha256, data, size, refcount)"
               "   VALUES (randomblob(32), x'0102', 40, 1);"
               " PRAGMA user_version = 2;");
    bool was = lag;
    lag = true; /* paused from the start */
    fx_start(f);
    lag = was;
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), 6);
    /* Every blob is queued, nothing indexed yet. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 8);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 0);
    int64_t drafts = mailbox_id(f, f->alice, "Drafts");
    for (int round = 0; round < 2; round++) {
        assert_string_equal(BODY(f, "grüße"), "2 5");
        assert_string_equal(BODY(f, "crème"), "3");
        assert_string_equal(HEADER(f, "from", "bob"), "5");
        assert_string_equal(HEADER(f, "X-Empty", ""), "1");
        assert_string_equal(sent(f, STORE_SENT_ON, day_of(2026, 3, 4)), "4 5");
        assert_string_equal(sent(f, STORE_SENT_ON, day_of(2026, 3, 3)), "2");
        assert_string_equal(sent(f, STORE_SENT_BEFORE, day_of(9999, 1, 1)), "1 2 4 5");
        assert_string_equal(search(f, drafts, STORE_TEXT_TEXT, NULL, "UNSENT"), "1");
        if (round == 0) {
            assert_int_equal(stats(f).index_pending, 8);
            store_index_pause(f->s, false);
            wait_indexed(f);
        }
    }
    /* The unreadable blob left the queue without a text row. */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 8);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 7);
    assert_int_equal(stats(f).indexed, 8);
    /* Deliveries after the migration are indexed as usual. */
    deliver(f, "Subject: later\r\n\r\nafter the migration\r\n");
    assert_string_equal(BODY(f, "after the"), "7");
    wait_indexed(f);
    /* Running migrations 3 and 4 again is harmless. */
    fx_stop(f);
    db_exec(f, "PRAGMA user_version = 2");
    fx_start(f);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), 6);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 8);
    assert_string_equal(BODY(f, "grüße"), "2 5");
    /* A version 3 database (indexed at delivery) has nothing to queue. */
    fx_stop(f);
    db_exec(f, "DROP TABLE index_queue; PRAGMA user_version = 3");
    fx_start(f);
    assert_int_equal(testdir_db_int(f->db_path, "PRAGMA user_version"), 6);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_search"), 9);
    assert_string_equal(BODY(f, "after the"), "7");
    db_exec(f, "INSERT INTO blob_text(blob_text) VALUES ('integrity-check')");
    fx_close(&f);
}

/* Text past the cap is not searchable; what comes before it is. */
static void test_cap(void **state)
{
    (void)state;
    struct fx *f = fx_open("cap");
    size_t fill = MIME_TEXT_CAP + MIME_TEXT_CAP / 4; /* 62 of every 64 are text */
    char *msg = malloc(fill + 256);
    assert_non_null(msg);
    int k = sprintf(msg, "Subject: big\r\n\r\nstartmarker ");
    for (size_t i = 0; i < fill; i += 64)
        k += sprintf(msg + k, "%-61.61s\r\n", "filler text filler text filler text");
    sprintf(msg + k, "endmarker\r\n");
    deliver(f, msg);
    free(msg);
    assert_string_equal(BODY(f, "startmarker"), "1");
    assert_string_equal(BODY(f, "endmarker"), "");
    if (!lag) {
        wait_indexed(f);
        assert_string_equal(BODY(f, "startmarker"), "1");
        assert_string_equal(BODY(f, "endmarker"), "");
        assert_true(testdir_db_int(f->db_path, "SELECT length(header) + length(body) FROM blob_text")
                    <= MIME_TEXT_CAP);
    }
    fx_close(&f);
}

static void test_invalid(void **state)
{
    (void)state;
    struct fx *f = fx_open("invalid");
    deliver(f, M_PLAIN);
    uint32_t *uids = (uint32_t *)1;
    size_t n = 99;
    assert_int_equal(store_search_text(f->s, 0, STORE_TEXT_BODY, NULL, "x", &uids, &n),
                     STORE_INVALID);
    assert_null(uids);
    assert_int_equal(n, 0);
    assert_int_equal(store_search_text(f->s, f->inbox, STORE_TEXT_BODY, NULL, NULL, &uids, &n),
                     STORE_INVALID);
    assert_int_equal(store_search_text(f->s, f->inbox, STORE_TEXT_HEADER, NULL, "x", &uids,
                                       &n), STORE_INVALID);
    assert_int_equal(store_search_text(f->s, f->inbox, (enum store_text_field)7, NULL, "x",
                                       &uids, &n), STORE_INVALID);
    char *big = malloc(STORE_SEARCH_NEEDLE_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', STORE_SEARCH_NEEDLE_MAX + 1);
    big[STORE_SEARCH_NEEDLE_MAX + 1] = '\0';
    assert_int_equal(store_search_text(f->s, f->inbox, STORE_TEXT_BODY, NULL, big, &uids, &n),
                     STORE_INVALID);
    big[STORE_SEARCH_NEEDLE_MAX] = '\0'; /* the longest allowed */
    assert_string_equal(search(f, f->inbox, STORE_TEXT_TEXT, NULL, big), "");
    assert_string_equal(search(f, f->inbox, STORE_TEXT_HEADER, big, big), "");
    free(big);
    assert_int_equal(store_search_text(f->s, 9999, STORE_TEXT_BODY, NULL, "x", &uids, &n),
                     STORE_NOTFOUND);
    assert_int_equal(store_search_text(f->s, 9999, STORE_TEXT_HEADER, "bad name", "x", &uids,
                                       &n), STORE_NOTFOUND);
    assert_int_equal(store_search_sent(f->s, 9999, STORE_SENT_ON, 0, &uids, &n),
                     STORE_NOTFOUND);
    assert_int_equal(store_search_sent(f->s, f->inbox, (enum store_sent_op)3, 0, &uids, &n),
                     STORE_INVALID);
    assert_int_equal(store_search_sent(f->s, -1, STORE_SENT_ON, 0, &uids, &n), STORE_INVALID);
    assert_null(uids);
    fx_close(&f);
}

/* petreld searches on the thread pool, several at once. */
struct pool_search {
    struct fx *f;
    const char *needle;
    int result;
    uint32_t *uids;
    size_t n;
    bool done;
};

static void pool_work(uv_work_t *req)
{
    struct pool_search *p = req->data;
    p->result = store_search_text(p->f->s, p->f->inbox, STORE_TEXT_BODY, NULL, p->needle,
                                  &p->uids, &p->n);
}

static void pool_after(uv_work_t *req, int status)
{
    struct pool_search *p = req->data;
    assert_int_equal(status, 0);
    p->done = true;
    p->f->pending--;
}

static void test_pool_thread(void **state)
{
    (void)state;
    struct fx *f = fx_mail("pool");
    static const char *const needles[] = { "grüße", "ü", "crème", "nothing here", "%" };
    static const char *const want[] = { "2 5", "2 5", "3", "", "1" };
    enum { N = 5, ROUNDS = 8 };
    static uv_work_t req[N * ROUNDS];
    static struct pool_search ps[N * ROUNDS];
    for (int i = 0; i < N * ROUNDS; i++) {
        ps[i] = (struct pool_search){ .f = f, .needle = needles[i % N] };
        req[i].data = &ps[i];
        f->pending++;
        assert_int_equal(uv_queue_work(&f->loop, &req[i], pool_work, pool_after), 0);
    }
    /* A delivery meanwhile: readers never wait for the writer. */
    deliver(f, "Subject: meanwhile\r\n\r\nanother word\r\n");
    wait_all(f);
    for (int i = 0; i < N * ROUNDS; i++) {
        assert_true(ps[i].done);
        assert_string_equal(uid_text(ps[i].result, ps[i].uids, ps[i].n), want[i % N]);
    }
    assert_string_equal(BODY(f, "another word"), "7");
    fx_close(&f);
}

/* Indexed and queued messages in one mailbox, one answer. */
static void test_lag_mixed(void **state)
{
    (void)state;
    struct fx *f = fx_open("mixed");
    deliver(f, M_PLAIN);                       /* 1 */
    deliver(f, M_B64);                         /* 2 */
    wait_indexed(f);
    store_index_pause(f->s, true);
    deliver(f, M_QP);                          /* 3, queued */
    deliver(f, M_ASCTIME);                     /* 4, queued */
    deliver(f, M_PLAIN);                       /* 5: 1's blob, indexed */
    deliver(f, "Subject: fresh\r\n\r\nGrüße, fresh words\r\n"); /* 6, queued */
    deliver(f, "Subject: fresh\r\n\r\nGrüße, fresh words\r\n"); /* 7: 6's blob */
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 3);
    assert_int_equal(stats(f).index_pending, 3);
    /* A queued message copied to another mailbox is found there too. */
    int64_t archive = mailbox_id(f, f->alice, "Archive");
    uint32_t four[] = { 4 };
    struct res r = { .f = f };
    f->pending++;
    assert_int_equal(store_copy(f->s, f->inbox, four, 1, archive, false, NULL, NULL), STORE_OK);
    (void)r;
    f->pending--;
    for (int round = 0; round < 2; round++) {
        assert_string_equal(BODY(f, "grüße"), "2 4 6 7");
        assert_string_equal(BODY(f, "ü"), "2 4 6 7");
        assert_string_equal(BODY(f, "bananas"), "1 5");
        assert_string_equal(TEXT(f, "fresh"), "6 7");
        assert_string_equal(TEXT(f, "carol"), "1 5");
        assert_string_equal(TEXT(f, "q"), "1 3 5");
        assert_string_equal(HEADER(f, "subject", "fresh"), "6 7");
        assert_string_equal(HEADER(f, "from", "bob"), "4");
        assert_string_equal(HEADER(f, "Cc", ""), "1 5");
        assert_string_equal(HEADER(f, "Subject", ""), "1 2 3 4 5 6 7");
        assert_string_equal(BODY(f, ""), "1 2 3 4 5 6 7");
        assert_string_equal(BODY(f, "nothing like it"), "");
        assert_string_equal(sent(f, STORE_SENT_ON, day_of(2026, 3, 4)), "4");
        if (round == 0) {
            /* The copy is done once its commit is: wait for it. */
            while (testdir_db_int(f->db_path, "SELECT count(*) FROM messages") < 8)
                uv_run(&f->loop, UV_RUN_ONCE);
            assert_string_equal(search(f, archive, STORE_TEXT_BODY, NULL, "ascii"), "1");
            store_index_pause(f->s, false);
            wait_indexed(f);
            assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
        }
    }
    assert_string_equal(search(f, archive, STORE_TEXT_BODY, NULL, "ascii"), "1");
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 5);
    fx_close(&f);
}

/*
 * A queue longer than STORE_SEARCH_QUEUE_SCAN (after an upgrade): searches
 * walk the mailbox instead of the queue, with the same answers.
 */
static void test_long_queue(void **state)
{
    (void)state;
    lag = true;
    struct fx *f = fx_mail("longqueue");
    lag = false;
    /* Blobs of no mailbox of alice's (a copy of the first one's bytes). */
    db_exec(f, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 4200)"
               " INSERT INTO blobs(sha256, data, size, refcount)"
               " SELECT randomblob(32), (SELECT data FROM blobs WHERE id = 1),"
               "   (SELECT size FROM blobs WHERE id = 1), 1 FROM k;"
               " INSERT INTO index_queue(blob_id) SELECT id FROM blobs WHERE id > 6;");
    assert_true(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue") > STORE_SEARCH_QUEUE_SCAN);
    for (int round = 0; round < 2; round++) {
        assert_string_equal(BODY(f, "grüße"), "2 5");
        assert_string_equal(BODY(f, "ü"), "2 5");
        assert_string_equal(TEXT(f, "carol"), "1 6");
        assert_string_equal(HEADER(f, "from", "bob"), "5");
        assert_string_equal(HEADER(f, "Subject", ""), "1 2 3 4 5 6");
        assert_string_equal(sent(f, STORE_SENT_ON, day_of(2026, 3, 4)), "4 5");
        assert_string_equal(sent(f, STORE_SENT_BEFORE, day_of(2026, 3, 3)), "1");
        if (round == 0) {
            store_index_pause(f->s, false);
            wait_indexed(f);
            assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue"), 0);
        }
    }
    fx_close(&f);
}

/*
 * With the indexer running: each message is searched right after its
 * delivery's callback, while the indexer moves blobs from the queue to the
 * index; every search must see every message delivered so far, once.
 */
static void test_race(void **state)
{
    (void)state;
    struct fx *f = fx_open("race");
    enum { N = 150 };
    char want[N * 5] = "";
    size_t wl = 0;
    for (int i = 0; i < N; i++) {
        char msg[256], word[32];
        snprintf(msg, sizeof msg, "Subject: race %d\r\n\r\ncommon text, unique%dx\r\n", i, i);
        deliver(f, msg);
        snprintf(word, sizeof word, "unique%dx", i);
        char one[16];
        snprintf(one, sizeof one, "%d", i + 1);
        assert_string_equal(BODY(f, word), one);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%d", i ? " " : "", i + 1);
        assert_string_equal(BODY(f, "common text"), want);
        assert_string_equal(HEADER(f, "subject", "race"), want);
    }
    wait_indexed(f);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), N);
    assert_string_equal(BODY(f, "common text"), want);
    fx_close(&f);
}

/* Blobs left unindexed (by a crash, or a stop) are indexed at the next start. */
static void test_leftover(void **state)
{
    (void)state;
    struct fx *f = fx_mail("leftover");
    fx_stop(f);
    /* As a crash between a delivery and its index batch leaves them. */
    db_exec(f, "DELETE FROM blob_text WHERE rowid IN (SELECT id FROM blobs WHERE id % 2 = 0);"
               " INSERT INTO index_queue(blob_id) SELECT id FROM blobs WHERE id % 2 = 0;");
    lag = true;
    fx_start(f);
    lag = false;
    assert_int_equal(stats(f).index_pending, 3);
    assert_string_equal(BODY(f, "grüße"), "2 5");
    assert_string_equal(TEXT(f, "carol"), "1 6");
    store_index_pause(f->s, false);
    wait_indexed(f);
    assert_int_equal(stats(f).indexed, 3);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), 6);
    assert_string_equal(BODY(f, "grüße"), "2 5");
    assert_string_equal(TEXT(f, "carol"), "1 6");
    fx_close(&f);
}

/*
 * store_close stops a busy indexer after its current blob: the rest stays
 * queued for the next start. Also times the indexer (STORE_TEST_VERBOSE).
 */
static void test_close_prompt(void **state)
{
    (void)state;
    struct fx *f = fx_open("close");
    enum { N = 1200 };
    static char msgs[N][4200];
    static struct res r[N];
    static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed "
                                "do eiusmod tempor incididunt ut labore et dolore magna ";
    store_index_pause(f->s, true);
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        int k = snprintf(msgs[i], sizeof msgs[i], "Subject: prose %d\r\n\r\n", i);
        unsigned seed = (unsigned)i * 2654435761u + 1;
        while (k < 4096) {
            k += snprintf(msgs[i] + k, sizeof msgs[i] - (size_t)k, "%08d ", i);
            for (int col = 9; col < 72; col++) {
                seed = seed * 1103515245u + 12345u;
                msgs[i][k++] = words[(seed >> 8) % (sizeof words - 12)];
            }
            msgs[i][k++] = '\r';
            msgs[i][k++] = '\n';
        }
        msgs[i][k] = '\0';
        struct store_delivery d = {
            .data = msgs[i], .len = (size_t)k, .internal_date = 1, .mail_from = "",
            .user_ids = &f->alice, .n_users = 1,
        };
        r[i] = (struct res){ .f = f };
        f->pending++;
        assert_int_equal(store_deliver(f->s, &d, on_done, &r[i]), STORE_OK);
    }
    wait_all(f);
    double t1 = now_s();
    assert_int_equal(stats(f).index_pending, N);
    /* UIDs follow the order prepare() finished in: one of them. */
    char uid777[16];
    snprintf(uid777, sizeof uid777, "%s", BODY(f, "00000777 "));
    assert_true(*uid777 && !strchr(uid777, ' '));
    store_index_pause(f->s, false);
    usleep(100 * 1000);
    double t2 = now_s();
    fx_stop(f);
    double t3 = now_s();
    int64_t left = testdir_db_int(f->db_path, "SELECT count(*) FROM index_queue");
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "close: %d deliveries in %.3f s; store_close %.1f ms after 100 ms of"
                " indexing, %lld of %d left queued\n", N, t1 - t0, (t3 - t2) * 1e3,
                (long long)left, N);
    assert_true(left > 0 && left < N);
    assert_true(t3 - t2 < 1.0);
    /* The next start takes over. */
    fx_start(f);
    assert_string_equal(BODY(f, "00000777 "), uid777);
    t0 = now_s();
    wait_indexed(f);
    t1 = now_s();
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "indexer: %lld blobs in %.3f s (%llu batches)\n", (long long)left,
                t1 - t0, (unsigned long long)stats(f).index_batches);
    assert_int_equal(stats(f).indexed, (uint64_t)left);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM blob_text"), N);
    assert_string_equal(BODY(f, "00000777 "), uid777);
    fx_close(&f);
}

#define LAG_TEST(fn) { #fn " (lag)", fn, lag_on, lag_off, NULL }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_short_and_special),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_sent),
        cmocka_unit_test(test_sent_forms),
        cmocka_unit_test(test_dedup_and_gc),
        cmocka_unit_test(test_failed_item),
        cmocka_unit_test(test_migration_upgrade),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_pool_thread),
        LAG_TEST(test_body),
        LAG_TEST(test_short_and_special),
        LAG_TEST(test_header),
        LAG_TEST(test_sent),
        LAG_TEST(test_sent_forms),
        LAG_TEST(test_cap),
        LAG_TEST(test_pool_thread),
        cmocka_unit_test(test_lag_mixed),
        cmocka_unit_test(test_long_queue),
        cmocka_unit_test(test_race),
        cmocka_unit_test(test_leftover),
        cmocka_unit_test(test_close_prompt),
    };
    return cmocka_run_group_tests(tests, testdir_setup, testdir_teardown);
}
