/*
 * search.c — the search index for IMAP SEARCH (RFC 3501 / RFC 9051 §6.4.4)
 * and the searches themselves.
 *
 * Per blob (its text is the same for every recipient, so it is indexed
 * once): a row of the FTS5 table blob_text, rowid = blob id, with the
 * header text ("name: value" lines) and the body text of the message as
 * mime_text_extract makes them, both folded with mime_casefold; and a row
 * of blob_search with the day of its Date: field (as the stored parse has
 * it, parses.date). Both are written after the delivery by the indexer
 * (index.c, store_text_of_blob), which takes the blob out of index_queue in
 * the same transaction, and go with the blob (trigger and cascade, db.c
 * migrations 3 and 4).
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
 * The messages whose blob is still queued for the indexer have no rows: a
 * search makes their text itself (search_queued) and reads their day from
 * parses.date, in the same read transaction as the indexed part, so a
 * message is found the moment its delivery has committed.
 *
 * Cost: the index's answer covers the whole database (the blobs of every
 * mailbox that have the trigrams; reading those lists is sequential and
 * cheap), then the text of the mailbox's candidates is read and checked.
 * Without the index (short needles) the text of every message of the
 * mailbox is read. Each queued message of the mailbox costs an inflate, a
 * parse and an extraction (tens of microseconds for a few KB).
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
bool store_date_day(const char *value, int64_t *day)
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

int store_text_make(const struct mime_message *m, const char *data, size_t len,
                    struct store_text *t)
{
    *t = (struct store_text){ 0 };
    if (!m)
        return 0;
    struct mime_text *x = mime_text_extract(m, data, len, STORE_TEXT_CAP);
    if (!x) {
        store_text_free(t);
        return errno == ENOMEM ? -1 : 0;
    }
    t->header = mime_casefold(x->header, x->header_len, &t->header_len);
    t->body = mime_casefold(x->body, x->body_len, &t->body_len);
    mime_text_free(&x);
    if (!t->header || !t->body) {
        store_text_free(t);
        return -1;
    }
    return 0;
}

int store_text_of_blob(const void *z, size_t zlen, uint64_t size, struct store_text *t)
{
    *t = (struct store_text){ 0 };
    char *data = NULL;
    size_t len = 0;
    if (store_inflate_blob(z, zlen, size, &data, &len) != STORE_OK)
        return 1; /* logged */
    struct mime_message *m = mime_parse(data, len);
    int r = m ? store_text_make(m, data, len, t) : -1;
    mime_free(&m);
    free(data);
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

/*
 * Messages whose blob the indexer has not reached yet (index_queue): their
 * text is made here as the indexer will make it (store_text_of_blob) and
 * matched with the rules of the statements above: instr() (text_find) for
 * BODY and TEXT, header_has for HEADER; no text (the message could not be
 * parsed) matches nothing, as a missing text row does.
 */

/* SQLite's instr() on text: the first byte and every byte that does not
 * continue a UTF-8 sequence may start the match. */
static bool text_find(const char *h, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return true;
    size_t i = 0;
    while (nlen <= hlen - i) {
        if (h[i] == needle[0] && memcmp(h + i, needle, nlen) == 0)
            return true;
        do
            i++;
        while (i < hlen && ((unsigned char)h[i] & 0xC0) == 0x80);
    }
    return false;
}

static bool text_match(const struct store_text *t, enum store_text_field field,
                       const char *name, const char *needle, size_t nlen)
{
    if (!t->header)
        return false;
    switch (field) {
    case STORE_TEXT_BODY:
        return text_find(t->body, t->body_len, needle, nlen);
    case STORE_TEXT_TEXT:
        return text_find(t->header, t->header_len, needle, nlen)
               || text_find(t->body, t->body_len, needle, nlen);
    case STORE_TEXT_HEADER:
        return header_has(t->header, t->header_len, name, strlen(name), needle, nlen);
    }
    return false;
}

#define STR_(x) #x
#define STR(x) STR_(x)
/* Whether the queue is short: then it is read first, each queued blob
 * looked up among the mailbox's messages (index messages_blob), so a search
 * pays nothing when the index has caught up. A long queue (after an upgrade
 * from version 2) is probed from the mailbox's messages instead. */
static const char SQL_QUEUE_SHORT[] =
    "SELECT count(*) <= " STR(STORE_SEARCH_QUEUE_SCAN)
    " FROM (SELECT 1 FROM index_queue LIMIT " STR(STORE_SEARCH_QUEUE_SCAN) " + 1)";
static const char *const queued_sql[2] = {
    "SELECT m.uid, b.id, b.data, b.size FROM messages m"
    " CROSS JOIN index_queue q ON q.blob_id = m.blob_id CROSS JOIN blobs b ON b.id = m.blob_id"
    " WHERE m.mailbox_id = ?1",
    "SELECT m.uid, b.id, b.data, b.size FROM index_queue q"
    " CROSS JOIN messages m ON m.blob_id = q.blob_id CROSS JOIN blobs b ON b.id = q.blob_id"
    " WHERE m.mailbox_id = ?1",
};

static const char *const queued_day_sql[2] = {
    "SELECT m.uid, p.date FROM messages m CROSS JOIN index_queue q ON q.blob_id = m.blob_id"
    " LEFT JOIN parses p ON p.blob_id = m.blob_id WHERE m.mailbox_id = ?1",
    "SELECT m.uid, p.date FROM index_queue q CROSS JOIN messages m ON m.blob_id = q.blob_id"
    " LEFT JOIN parses p ON p.blob_id = q.blob_id WHERE m.mailbox_id = ?1",
};

/* Which of the queued_* statements: 1 when the queue is short. -1 on error. */
static int queue_plan(sqlite3 *db)
{
    sqlite3_stmt *st = store_db_prepare(db, SQL_QUEUE_SHORT);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int plan = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : -1;
    sqlite3_finalize(st);
    if (plan < 0)
        store_db_log(db, "search_queued");
    return plan;
}

/* The UIDs of the mailbox's queued messages that match, in any order. */
static int search_queued(sqlite3 *db, int64_t mailbox_id, enum store_text_field field,
                         const char *name, const char *needle, size_t nlen, struct uid_list *out)
{
    int plan = queue_plan(db);
    if (plan < 0)
        return STORE_ERROR;
    int rc;
    sqlite3_stmt *st = store_db_prepare(db, queued_sql[plan]);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    int r = STORE_OK;
    int64_t last_blob = 0;
    bool last_match = false;
    while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t blob = sqlite3_column_int64(st, 1);
        if (blob != last_blob) {
            /* One blob's messages come together from the queue: its text
             * is made once for them. */
            struct store_text t;
            int tr = store_text_of_blob(sqlite3_column_blob(st, 2),
                                        (size_t)sqlite3_column_bytes(st, 2),
                                        (uint64_t)sqlite3_column_int64(st, 3), &t);
            if (tr < 0)
                r = STORE_ERROR;
            last_match = tr == 0 && text_match(&t, field, name, needle, nlen);
            last_blob = blob;
            store_text_free(&t);
        }
        if (r == STORE_OK && last_match
            && uid_push(out, (uint32_t)sqlite3_column_int64(st, 0)) != 0)
            r = STORE_ERROR;
    }
    if (r == STORE_OK && rc != SQLITE_DONE) {
        store_db_log(db, "search_queued");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return r;
}

static int uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds more (any order) to l (ascending): l stays ascending, without
 * duplicates. */
static int uid_merge(struct uid_list *l, struct uid_list *more)
{
    if (more->n == 0)
        return STORE_OK;
    qsort(more->v, more->n, sizeof(*more->v), uid_cmp);
    size_t cap = l->n + more->n;
    uint32_t *v = malloc(cap * sizeof(*v));
    if (!v)
        return STORE_ERROR;
    size_t i = 0, j = 0, k = 0;
    while (i < l->n || j < more->n) {
        uint32_t x = j == more->n || (i < l->n && l->v[i] <= more->v[j]) ? l->v[i++]
                                                                          : more->v[j++];
        if (k == 0 || v[k - 1] != x)
            v[k++] = x;
    }
    free(l->v);
    l->v = v;
    l->n = k;
    l->cap = cap;
    return STORE_OK;
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
        bool all = field != STORE_TEXT_HEADER && flen == 0;
        const char *hname = field == STORE_TEXT_HEADER ? name : NULL;
        /* The indexed messages and the queued ones from one snapshot: the
         * indexer may move a blob from the queue to the index meanwhile. */
        struct uid_list queued = { 0 };
        r = store_db_exec(db, "BEGIN") == 0 ? STORE_OK : STORE_ERROR;
        if (r == STORE_OK)
            r = run_search(db, all ? SQL_ALL : search_sql[field][q.len > 0], mailbox_id, &q,
                           hname, folded, flen, &l);
        if (r == STORE_OK && !all)
            r = search_queued(db, mailbox_id, field, hname, folded, flen, &queued);
        store_tx_rollback(db); /* ends the read transaction */
        if (r == STORE_OK)
            r = uid_merge(&l, &queued);
        free(queued.v);
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
    struct uid_list l = { 0 }, queued = { 0 };
    /* The indexed messages (blob_search) and the queued ones (their day
     * read from the stored parse, as the indexer will) from one snapshot. */
    r = store_db_exec(db, "BEGIN") == 0 ? STORE_OK : STORE_ERROR;
    int plan = r == STORE_OK ? queue_plan(db) : -1;
    for (int pass = 0; r == STORE_OK && pass < 2; pass++) {
        sqlite3_stmt *st = plan < 0 ? NULL
                         : store_db_prepare(db, pass == 0 ? sql[op] : queued_day_sql[plan]);
        if (!st) {
            r = STORE_ERROR;
            break;
        }
        sqlite3_bind_int64(st, 1, mailbox_id);
        if (pass == 0)
            sqlite3_bind_int64(st, 2, d * 86400);
        int rc;
        while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (pass == 1) {
                const char *date = (const char *)sqlite3_column_text(st, 1);
                int64_t sent;
                if (!date || !store_date_day(date, &sent)
                    || !(op == STORE_SENT_BEFORE ? sent < d * 86400
                         : op == STORE_SENT_ON ? sent == d * 86400 : sent >= d * 86400))
                    continue;
            }
            if (uid_push(pass == 0 ? &l : &queued, (uint32_t)sqlite3_column_int64(st, 0)) != 0)
                r = STORE_ERROR;
        }
        if (r == STORE_OK && rc != SQLITE_DONE) {
            store_db_log(db, "search_sent");
            r = STORE_ERROR;
        }
        sqlite3_finalize(st);
    }
    store_tx_rollback(db); /* ends the read transaction */
    if (r == STORE_OK)
        r = uid_merge(&l, &queued);
    free(queued.v);
    return search_done(s, db, r, &l, uids, n);
}
