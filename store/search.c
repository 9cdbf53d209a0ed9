/*
 * search.c — the search index for IMAP SEARCH (RFC 3501 / RFC 9051 §6.4.4)
 * and the searches themselves.
 *
 * Per blob (its text is the same for every recipient, so it is indexed
 * once): a row of the FTS5 table blob_text, rowid = blob id, with the
 * header text ("name: value" lines) and the body text of the message as
 * mime_text_extract makes them, both folded with mime_casefold; and a row
 * of blob_search with the day of its Date: field. Made off the writer
 * (prepare() on the thread pool, store_text_make), inserted by the writer
 * with the new blob (store_text_insert), gone with the blob (trigger and
 * cascade, db.c migration 3). store_text_backfill indexes the blobs of a
 * database made before migration 3.
 *
 * Matching: the needle is folded the same way, and a message matches when
 * the folded needle is a byte substring of the folded text. The index
 * (trigram tokens, case_sensitive since the text is folded already,
 * detail=none: which trigrams a blob has, not where) narrows the messages
 * to those having every trigram of the needle; their stored text is then
 * checked (instr for BODY and TEXT, header_has for HEADER, field by field so
 * that a needle found in another field does not count). Needles shorter
 * than 3 characters, or not valid UTF-8, check the text of every message of
 * the mailbox.
 *
 * Cost: the index's answer covers the whole database (the blobs of every
 * mailbox that have the trigrams; reading those lists is sequential and
 * cheap), then the text of the mailbox's candidates is read and checked.
 * Without the index (short needles) the text of every message of the
 * mailbox is read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

/* ---------------------------------------------------------------- dates */

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

#define DATE_TOKENS 8
#define DATE_TOKEN_MAX 16

struct date_tok {
    char s[DATE_TOKEN_MAX];
    size_t len;
    bool digits, alpha;
};

/* Splits a date into words of letters, digits and ':' (time), dropping
 * comments (RFC 5322 CFWS, nested, quoted-pairs) and everything else. */
static size_t date_tokens(const char *p, struct date_tok *t)
{
    size_t n = 0;
    while (*p && n < DATE_TOKENS) {
        if (*p == '(') {
            int depth = 0;
            for (; *p; p++) {
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == '(')
                    depth++;
                else if (*p == ')' && --depth == 0)
                    break;
            }
            if (*p)
                p++;
            continue;
        }
        size_t len = strspn(p, "0123456789:abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if (len == 0) {
            p++;
            continue;
        }
        if (len < DATE_TOKEN_MAX) {
            struct date_tok *k = &t[n++];
            memcpy(k->s, p, len);
            k->s[len] = '\0';
            k->len = len;
            k->digits = strspn(k->s, "0123456789") == len;
            k->alpha = strspn(k->s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                       == len;
        } else {
            n++; /* too long for any part of a date: a placeholder */
            t[n - 1] = (struct date_tok){ .len = len };
        }
        p += len;
    }
    return n;
}

/* 1..12 for "Jan" .. "Dec" (or a longer word starting so), 0 otherwise. */
static unsigned date_month(const struct date_tok *t)
{
    static const char names[12][4] = { "jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec" };
    if (!t->alpha || t->len < 3)
        return 0;
    for (unsigned i = 0; i < 12; i++)
        if (strncasecmp(t->s, names[i], 3) == 0)
            return i + 1;
    return 0;
}

/* RFC 5322 §3.3 year, §4.3 obs-year: 2 digits from 1950, 3 from 1900. */
static bool date_year(const struct date_tok *t, unsigned *y)
{
    if (!t->digits || t->len < 2 || t->len > 4)
        return false;
    unsigned v = (unsigned)atoi(t->s);
    if (t->len == 2)
        v += v < 50 ? 2000 : 1900;
    else if (t->len == 3)
        v += 1900;
    *y = v;
    return v >= 1;
}

/*
 * The day of a Date: value, unix seconds of 00:00 UTC; false when it cannot
 * be read.
 *
 * date-time = [ day-of-week "," ] day month year time zone (RFC 5322 §3.3,
 * with §4.3's obsolete years, spaces and comments); also the asctime() form
 * "Tue Dec  1 10:00:00 2026" some old software writes. Only the date as
 * written counts (RFC 3501 §6.4.4: "disregarding time and timezone").
 */
static bool date_day(const char *value, int64_t *day)
{
    struct date_tok t[DATE_TOKENS];
    size_t n = date_tokens(value ? value : "", t);
    size_t i = 0;
    if (i < n && t[i].alpha && date_month(&t[i]) == 0)
        i++; /* day of week */
    unsigned d = 0, m = 0, y = 0;
    if (i + 2 < n && t[i].digits && t[i].len <= 2) {
        d = (unsigned)atoi(t[i].s);
        m = date_month(&t[i + 1]);
        if (!m || !date_year(&t[i + 2], &y))
            return false;
    } else if (i + 1 < n && (m = date_month(&t[i])) != 0 && t[i + 1].digits
               && t[i + 1].len <= 2) {
        d = (unsigned)atoi(t[i + 1].s);
        size_t k = i + 2;
        while (k < n && !t[k].digits)
            k++; /* the time */
        if (k == n || t[k].len != 4 || !date_year(&t[k], &y))
            return false;
    } else {
        return false;
    }
    if (d < 1 || d > days_in_month(y, m))
        return false;
    *day = days_from_civil(y, m, d) * 86400;
    return true;
}

/* ----------------------------------------------------------- index rows */

void store_text_free(struct store_text *t)
{
    free(t->header);
    free(t->body);
    *t = (struct store_text){ 0 };
}

/* mime_casefold, its buffer (twice the input) cut to what it holds: the
 * text waits in the writer's queue. */
static char *fold(const char *s, size_t len, size_t *out_len)
{
    char *f = mime_casefold(s, len, out_len);
    char *shrunk = f ? realloc(f, *out_len + 1) : NULL;
    return shrunk ? shrunk : f;
}

int store_text_make(const struct mime_message *m, const char *data, size_t len,
                    struct store_text *t)
{
    *t = (struct store_text){ 0 };
    if (!m)
        return 0;
    t->has_day = m->root.date && date_day(m->root.date, &t->day);
    struct mime_text *x = mime_text_extract(m, data, len, STORE_TEXT_CAP);
    if (!x) {
        store_text_free(t);
        return errno == ENOMEM ? -1 : 0;
    }
    t->header = fold(x->header, x->header_len, &t->header_len);
    t->body = fold(x->body, x->body_len, &t->body_len);
    mime_text_free(&x);
    if (!t->header || !t->body) {
        store_text_free(t);
        return -1;
    }
    return 0;
}

int store_text_insert(sqlite3_stmt *search_add, sqlite3_stmt *text_add, int64_t blob,
                      const struct store_text *t)
{
    int rc;
    if (search_add) {
        sqlite3_bind_int64(search_add, 1, blob);
        if (t->has_day)
            sqlite3_bind_int64(search_add, 2, t->day);
        else
            sqlite3_bind_null(search_add, 2);
        rc = sqlite3_step(search_add);
        sqlite3_reset(search_add);
        if (rc != SQLITE_DONE)
            return -1;
    }
    if (!text_add || !t->header)
        return 0;
    sqlite3_bind_int64(text_add, 1, blob);
    sqlite3_bind_text64(text_add, 2, t->header, t->header_len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_text64(text_add, 3, t->body, t->body_len, SQLITE_STATIC, SQLITE_UTF8);
    rc = sqlite3_step(text_add);
    sqlite3_reset(text_add);
    sqlite3_clear_bindings(text_add); /* t's buffers may go now */
    return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Migration 3: every blob without a blob_search row is inflated, parsed,
 * extracted and inserted, one at a time (memory: one message and its text).
 * A blob that cannot be read gets its blob_search row without text, so it is
 * not tried again.
 */
int store_text_backfill(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *next = store_db_prepare(db,
        "SELECT b.id, b.data, b.size FROM blobs b WHERE b.id > ?1 AND NOT EXISTS"
        " (SELECT 1 FROM blob_search x WHERE x.blob_id = b.id) ORDER BY b.id LIMIT 1");
    sqlite3_stmt *search_add = store_db_prepare(db, STORE_SQL_SEARCH_ADD);
    sqlite3_stmt *text_add = store_db_prepare(db, STORE_SQL_TEXT_ADD);
    int r = next && search_add && text_add ? 0 : -1;
    if (r != 0)
        snprintf(err, errlen, "backfill: %s", sqlite3_errmsg(db));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t last = 0, done = 0, unreadable = 0;
    while (r == 0) {
        sqlite3_bind_int64(next, 1, last);
        int rc = sqlite3_step(next);
        if (rc != SQLITE_ROW) {
            if (rc != SQLITE_DONE) {
                snprintf(err, errlen, "backfill: %s", sqlite3_errmsg(db));
                r = -1;
            }
            break;
        }
        last = sqlite3_column_int64(next, 0);
        char *data = NULL;
        size_t len = 0;
        struct store_text t = { 0 };
        int ir = store_inflate_blob(sqlite3_column_blob(next, 1),
                                    (size_t)sqlite3_column_bytes(next, 1),
                                    (uint64_t)sqlite3_column_int64(next, 2), &data, &len);
        sqlite3_reset(next);
        if (ir == STORE_OK) {
            struct mime_message *m = mime_parse(data, len);
            if (!m || store_text_make(m, data, len, &t) != 0) {
                snprintf(err, errlen, "backfill: out of memory");
                r = -1;
            }
            mime_free(&m);
        } else {
            unreadable++;
            log_event(PLOG_WARN, 0, "event=store_backfill_skip blob_id=%lld reason=unreadable",
                      (long long)last);
        }
        free(data);
        if (r == 0 && store_text_insert(search_add, text_add, last, &t) != 0) {
            snprintf(err, errlen, "backfill: %s", sqlite3_errmsg(db));
            r = -1;
        }
        store_text_free(&t);
        done++;
        if (r == 0 && done % 10000 == 0)
            log_event(PLOG_INFO, 0, "event=store_backfill blobs=%lld", (long long)done);
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r == 0 && done > 0)
        log_event(PLOG_INFO, 0, "event=store_backfill blobs=%lld unreadable=%lld ms=%lld",
                  (long long)done, (long long)unreadable,
                  (long long)((t1.tv_sec - t0.tv_sec) * 1000
                              + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    sqlite3_finalize(next);
    sqlite3_finalize(search_add);
    sqlite3_finalize(text_add);
    return r;
}

/* ---------------------------------------------------------------- search */

struct uid_list {
    uint32_t *v;
    size_t n, cap;
};

static int uid_push(struct uid_list *l, uint32_t uid)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        uint32_t *p = realloc(l->v, ncap * sizeof(*p));
        if (!p)
            return -1;
        l->v = p;
        l->cap = ncap;
    }
    l->v[l->n++] = uid;
    return 0;
}

static int mailbox_exists(sqlite3 *db, int64_t mailbox_id)
{
    sqlite3_stmt *st = store_db_prepare(db, "SELECT 1 FROM mailboxes WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        store_db_log(db, "search");
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

/* A field name as the folded header text has it; false when no field of a
 * message can have it (RFC 5322 §3.6.8: ftext, printable ASCII but ':'). */
static bool field_name(const char *in, char *out, size_t outlen)
{
    size_t len = strlen(in);
    if (len == 0 || len >= outlen)
        return false;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (i < len && (c < 33 || c > 126 || c == ':'))
            return false;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return true;
}

/* Whether the folded header text h has a field named name whose value (after
 * ": ") contains needle. Lines are "name: value\n"; names have no ':'. */
static bool header_has(const char *h, size_t hlen, const char *name, size_t name_len,
                       const char *needle, size_t nlen)
{
    const char *p = h, *end = h + hlen;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > name_len && memcmp(p, name, name_len) == 0
            && p[name_len] == ':') {
            const char *v = p + name_len + 1;
            v += v < eol && *v == ' ';
            if (nlen == 0 || memmem(v, (size_t)(eol - v), needle, nlen))
                return true;
        }
        p = eol + 1;
    }
    return false;
}

/* Characters (UTF-8 lead bytes) in s[0, len). */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/*
 * The index keeps which trigrams a blob has, not where (detail=none), so a
 * query is the AND of the needle's trigrams: every blob whose text contains
 * the needle has them all, and the few that have them apart are dropped by
 * the check on the text that follows (instr, header_has). At most
 * QUERY_TRIGRAMS of them, spread over the needle: more only cost time.
 */
#define TRIGRAM 3
#define QUERY_TRIGRAMS 24
#define QUERY_MAX 4096   /* 25 terms of at most 31 bytes */

/* Appends the trigrams of s[0, len) (valid UTF-8, at least one trigram) as
 * FTS5 strings joined by AND: "abc" AND "bcd" ... ('"' doubled). */
static int fts_trigrams(struct buf *b, const char *s, size_t len)
{
    size_t starts[TRIGRAM + 1], n = 0, total = utf8_chars(s, len);
    size_t want = total - TRIGRAM + 1;
    size_t step = want > QUERY_TRIGRAMS ? (want + QUERY_TRIGRAMS - 1) / QUERY_TRIGRAMS : 1;
    int r = 0;
    size_t k = 0; /* trigram index */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            continue;
        /* s[i] starts a character (or i == len): the last TRIGRAM + 1 starts
         * bound the trigram ending here. */
        if (n == TRIGRAM + 1) {
            memmove(starts, starts + 1, TRIGRAM * sizeof(*starts));
            n--;
        }
        starts[n++] = i;
        if (n < TRIGRAM + 1)
            continue;
        if (k++ % step != 0 && i != len)
            continue;
        const char *t = s + starts[0];
        size_t tl = i - starts[0];
        if (b->len)
            r |= buf_append(b, " AND ", 5, QUERY_MAX);
        r |= buf_append(b, "\"", 1, QUERY_MAX);
        for (size_t j = 0; j < tl; j++) {
            r |= buf_append(b, t + j, 1, QUERY_MAX);
            if (t[j] == '"')
                r |= buf_append(b, "\"", 1, QUERY_MAX);
        }
        r |= buf_append(b, "\"", 1, QUERY_MAX);
    }
    return r;
}

/*
 * The mailbox's messages in UID order, each with its text row read by rowid
 * (CROSS JOIN keeps that order); indexed, only those whose blob is among the
 * index's answer, computed once for the statement (IN list). Probing the
 * index per message instead (MATCH with rowid = blob) costs a walk of each
 * trigram's list per message: 6x slower on 2,000 messages that all match.
 */
#define SEARCH_FROM \
    " FROM messages m CROSS JOIN blob_text t ON t.rowid = m.blob_id WHERE m.mailbox_id = ?1"
#define INDEXED " AND m.blob_id IN (SELECT rowid FROM blob_text WHERE blob_text MATCH ?2)"
static const char SQL_ALL[] = "SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
/* [field][indexed]: ?2 the FTS5 query (indexed), ?3 the folded needle. */
static const char *const search_sql[3][2] = {
    [STORE_TEXT_BODY] = {
        "SELECT m.uid" SEARCH_FROM " AND instr(t.body, ?3) > 0 ORDER BY m.uid",
        "SELECT m.uid" SEARCH_FROM INDEXED " AND instr(t.body, ?3) > 0 ORDER BY m.uid",
    },
    [STORE_TEXT_TEXT] = {
        "SELECT m.uid" SEARCH_FROM " AND (instr(t.header, ?3) > 0 OR instr(t.body, ?3) > 0)"
        " ORDER BY m.uid",
        "SELECT m.uid" SEARCH_FROM INDEXED
        " AND (instr(t.header, ?3) > 0 OR instr(t.body, ?3) > 0) ORDER BY m.uid",
    },
    [STORE_TEXT_HEADER] = {
        "SELECT m.uid, t.header" SEARCH_FROM " ORDER BY m.uid",
        "SELECT m.uid, t.header" SEARCH_FROM INDEXED " ORDER BY m.uid",
    },
};

/*
 * Runs one search statement (?1 mailbox, ?2 FTS5 query, ?3 folded needle)
 * and collects the UIDs; with name set, only the rows whose header text
 * (column 1) has that field with needle in its value.
 */
static int run_search(sqlite3 *db, const char *sql, int64_t mailbox_id, const struct buf *q,
                      const char *name, const char *needle, size_t nlen, struct uid_list *out)
{
    sqlite3_stmt *st = store_db_prepare(db, sql);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    if (q->len)
        sqlite3_bind_text64(st, 2, q->data, q->len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_text64(st, 3, needle, nlen, SQLITE_STATIC, SQLITE_UTF8);
    size_t name_len = name ? strlen(name) : 0;
    int rc = SQLITE_DONE, r = STORE_OK;
    while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (name) {
            const char *h = (const char *)sqlite3_column_text(st, 1);
            size_t hlen = (size_t)sqlite3_column_bytes(st, 1);
            if (!h || !header_has(h, hlen, name, name_len, needle, nlen))
                continue;
        }
        if (uid_push(out, (uint32_t)sqlite3_column_int64(st, 0)) != 0)
            r = STORE_ERROR;
    }
    if (r == STORE_OK && rc != SQLITE_DONE) {
        store_db_log(db, "search");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return r;
}

/* Takes a pool reader; STORE_BUSY once store_close has begun. */
static int search_db(struct store *s, int64_t mailbox_id, sqlite3 **db)
{
    bool closed = false;
    *db = store_pool_reader(s, &closed);
    if (!*db)
        return closed ? STORE_BUSY : STORE_ERROR;
    int r = mailbox_exists(*db, mailbox_id);
    if (r != STORE_OK) {
        store_pool_reader_put(s, *db);
        *db = NULL;
    }
    return r;
}

static int search_done(struct store *s, sqlite3 *db, int r, struct uid_list *l, uint32_t **uids,
                       size_t *n)
{
    store_pool_reader_put(s, db);
    if (r != STORE_OK || l->n == 0) {
        free(l->v);
        return r;
    }
    *uids = l->v;
    *n = l->n;
    return STORE_OK;
}

int store_search_text(struct store *s, int64_t mailbox_id, enum store_text_field field,
                      const char *header, const char *needle, uint32_t **uids, size_t *n)
{
    *uids = NULL;
    *n = 0;
    if (mailbox_id <= 0 || !needle || strlen(needle) > STORE_SEARCH_NEEDLE_MAX
        || (field != STORE_TEXT_BODY && field != STORE_TEXT_TEXT && field != STORE_TEXT_HEADER)
        || (field == STORE_TEXT_HEADER && (!header || strlen(header) > STORE_SEARCH_NEEDLE_MAX)))
        return STORE_INVALID;
    char name[STORE_SEARCH_NEEDLE_MAX + 3]; /* room for ": " */
    bool no_field = field == STORE_TEXT_HEADER && !field_name(header, name, sizeof(name) - 2);
    size_t flen;
    char *folded = mime_casefold(needle, strlen(needle), &flen);
    if (!folded)
        return STORE_ERROR;
    bool indexed = mime_utf8_valid(folded, flen) && utf8_chars(folded, flen) >= TRIGRAM;
    struct buf q = { 0 };
    int r = STORE_OK;
    if (!no_field && indexed) {
        r = fts_trigrams(&q, folded, flen);
    } else if (field == STORE_TEXT_HEADER && !no_field) {
        /* A short or empty needle: the candidates have "name: " (3
         * characters or more), which a rare field makes worth it. */
        size_t nl = strlen(name);
        memcpy(name + nl, ": ", 3);
        r = fts_trigrams(&q, name, nl + 2);
        name[nl] = '\0';
    }
    sqlite3 *db = NULL;
    struct uid_list l = { 0 };
    r = r ? STORE_ERROR : search_db(s, mailbox_id, &db);
    if (r == STORE_OK && !no_field) {
        const char *sql = field != STORE_TEXT_HEADER && flen == 0 ? SQL_ALL
                        : search_sql[field][q.len > 0];
        r = run_search(db, sql, mailbox_id, &q, field == STORE_TEXT_HEADER ? name : NULL,
                       folded, flen, &l);
    }
    buf_free(&q);
    free(folded);
    if (!db)
        return r;
    return search_done(s, db, r, &l, uids, n); /* no_field: nothing matches */
}

int store_search_sent(struct store *s, int64_t mailbox_id, enum store_sent_op op, int64_t day,
                      uint32_t **uids, size_t *n)
{
    *uids = NULL;
    *n = 0;
    static const char *const sql[] = {
#define SENT_SQL(cmp)                                                                   \
    "SELECT m.uid FROM messages m CROSS JOIN blob_search b ON b.blob_id = m.blob_id"    \
    " WHERE m.mailbox_id = ?1 AND b.sent_day " cmp " ?2 ORDER BY m.uid"
        [STORE_SENT_BEFORE] = SENT_SQL("<"),
        [STORE_SENT_ON] = SENT_SQL("="),
        [STORE_SENT_SINCE] = SENT_SQL(">="),
#undef SENT_SQL
    };
    if (mailbox_id <= 0 || op < STORE_SENT_BEFORE || op > STORE_SENT_SINCE
        || day < -INT64_MAX / 2 || day > INT64_MAX / 2)
        return STORE_INVALID;
    /* The day day falls in, also before 1970. */
    int64_t d = day / 86400 - (day % 86400 < 0);
    sqlite3 *db;
    int r = search_db(s, mailbox_id, &db);
    if (r != STORE_OK)
        return r;
    struct uid_list l = { 0 };
    sqlite3_stmt *st = store_db_prepare(db, sql[op]);
    if (!st) {
        r = STORE_ERROR;
    } else {
        sqlite3_bind_int64(st, 1, mailbox_id);
        sqlite3_bind_int64(st, 2, d * 86400);
        int rc;
        while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            if (uid_push(&l, (uint32_t)sqlite3_column_int64(st, 0)) != 0)
                r = STORE_ERROR;
        if (r == STORE_OK && rc != SQLITE_DONE) {
            store_db_log(db, "search_sent");
            r = STORE_ERROR;
        }
        sqlite3_finalize(st);
    }
    return search_done(s, db, r, &l, uids, n);
}
