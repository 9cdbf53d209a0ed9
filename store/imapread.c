/*
 * imapread.c — the reads IMAP needs: mailbox status (one or all), the
 * subscriptions, a mailbox's message index and expunge tombstones, its
 * keywords, quota — synchronous on the reader connection, each one
 * autocommit statement — and store_fetch, which reads and inflates a
 * message on the libuv thread pool with a pool reader connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "mime/mime.h"
#include "store/store-int.h"

/* ------------------------------------------------------------- mailboxes */

/* Status of one mailbox (name given) or of all of a user's, one query.
 * LIKE is ASCII case-insensitive and '\' is not special in it. */
#define MBOX_STATUS_SQL(where)                                                      \
    "SELECT x.id, x.name, x.special_use, x.uidvalidity, x.uidnext, x.highestmodseq," \
    " EXISTS (SELECT 1 FROM subscriptions u WHERE u.user_id = x.user_id"             \
    "   AND u.name = x.name), count(m.id),"                                          \
    " coalesce(sum(' ' || m.flags || ' ' NOT LIKE '% \\Seen %'), 0),"                \
    " coalesce(sum(' ' || m.flags || ' ' LIKE '% \\Deleted %'), 0),"                 \
    " coalesce(sum(m.size), 0)"                                                      \
    " FROM mailboxes x LEFT JOIN messages m ON m.mailbox_id = x.id"                  \
    " WHERE x.user_id = ?1" where " GROUP BY x.id"                                   \
    " ORDER BY x.name <> 'INBOX', x.name"

static void status_row(sqlite3_stmt *st, struct store_mailbox_info *m)
{
    *m = (struct store_mailbox_info){
        .id = sqlite3_column_int64(st, 0),
        .name = store_col_text(st, 1),
        .special_use = store_col_text(st, 2),
        .uidvalidity = (uint32_t)sqlite3_column_int64(st, 3),
        .uidnext = (uint32_t)sqlite3_column_int64(st, 4),
        .highestmodseq = (uint64_t)sqlite3_column_int64(st, 5),
        .subscribed = sqlite3_column_int(st, 6) != 0,
        .messages = (unsigned)sqlite3_column_int64(st, 7),
        .unseen = (unsigned)sqlite3_column_int64(st, 8),
        .deleted = (unsigned)sqlite3_column_int64(st, 9),
        .size = (uint64_t)sqlite3_column_int64(st, 10),
    };
}

int store_mailbox_get(struct store *s, int64_t user_id, const char *name,
                      struct store_mailbox *out)
{
    char norm[STORE_MAILBOX_NAME_MAX + 1];
    memset(out, 0, sizeof(*out));
    if (user_id <= 0 || store_mailbox_name(name, norm, sizeof(norm)) != STORE_OK)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd, MBOX_STATUS_SQL(" AND x.name = ?2"));
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, norm, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
    if (rc == SQLITE_ROW) {
        struct store_mailbox_info m;
        status_row(st, &m);
        out->id = m.id;
        snprintf(out->name, sizeof(out->name), "%s", m.name);
        snprintf(out->special_use, sizeof(out->special_use), "%s", m.special_use);
        out->uidvalidity = m.uidvalidity;
        out->uidnext = m.uidnext;
        out->highestmodseq = m.highestmodseq;
        out->subscribed = m.subscribed;
        out->messages = m.messages;
        out->unseen = m.unseen;
        out->deleted = m.deleted;
        out->size = m.size;
        r = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        store_db_log(s->rd, "mailbox_get");
    }
    sqlite3_finalize(st);
    return r;
}

int store_mailbox_status_list(struct store *s, int64_t user_id, store_mailbox_cb cb,
                              void *arg)
{
    if (user_id <= 0)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd, MBOX_STATUS_SQL(""));
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_mailbox_info m;
        status_row(st, &m);
        cb(arg, &m);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "mailbox_status_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

int store_subscription_list(struct store *s, int64_t user_id, store_name_cb cb, void *arg)
{
    if (user_id <= 0)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name <> 'INBOX', name");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, store_col_text(st, 0));
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "subscription_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

int store_quota_get(struct store *s, int64_t user_id, uint64_t *used, uint64_t *limit)
{
    *used = *limit = 0;
    sqlite3_stmt *st = store_db_prepare(s->rd, "SELECT used, quota FROM users WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *used = (uint64_t)sqlite3_column_int64(st, 0);
        *limit = (uint64_t)sqlite3_column_int64(st, 1);
    } else if (rc != SQLITE_DONE) {
        store_db_log(s->rd, "quota_get");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

/* -------------------------------------------------------------- messages */

static int mailbox_exists(struct store *s, int64_t mailbox_id)
{
    sqlite3_stmt *st = store_db_prepare(s->rd, "SELECT 1 FROM mailboxes WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

/* Rows of messages from st (uid, modseq, internal_date, size, flags) to cb. */
static int message_rows(struct store *s, sqlite3_stmt *st, int64_t mailbox_id,
                        store_message_cb cb, void *arg)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_message_info m = {
            .mailbox_id = mailbox_id,
            .uid = (uint32_t)sqlite3_column_int64(st, 0),
            .modseq = (uint64_t)sqlite3_column_int64(st, 1),
            .internal_date = sqlite3_column_int64(st, 2),
            .size = (uint64_t)sqlite3_column_int64(st, 3),
            .flags = store_col_text(st, 4),
        };
        cb(arg, &m);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "message_index");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

int store_message_index(struct store *s, int64_t mailbox_id, uint64_t changed_since,
                        store_message_cb cb, void *arg)
{
    if (mailbox_id <= 0 || changed_since > INT64_MAX)
        return STORE_INVALID;
    int r = mailbox_exists(s, mailbox_id);
    if (r != STORE_OK)
        return r;
    /* The whole index walks (mailbox_id, uid) in order; "changed since"
     * takes the few rows the modseq index finds and sorts them. */
    sqlite3_stmt *st = store_db_prepare(s->rd, changed_since == 0
        ? "SELECT uid, modseq, internal_date, size, flags FROM messages"
          " WHERE mailbox_id = ?1 ORDER BY uid"
        : "SELECT uid, modseq, internal_date, size, flags FROM messages"
          " WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    if (changed_since)
        sqlite3_bind_int64(st, 2, (int64_t)changed_since);
    return message_rows(s, st, mailbox_id, cb, arg);
}

int store_message_range(struct store *s, int64_t mailbox_id, uint32_t uid_lo, uint32_t uid_hi,
                        store_message_cb cb, void *arg)
{
    if (mailbox_id <= 0 || uid_lo > uid_hi)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT uid, modseq, internal_date, size, flags FROM messages"
        " WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, uid_lo);
    sqlite3_bind_int64(st, 3, uid_hi);
    return message_rows(s, st, mailbox_id, cb, arg);
}

int store_mailbox_modseq(struct store *s, int64_t mailbox_id, uint64_t *modseq)
{
    sqlite3_stmt *st = store_db_prepare(s->rd, "SELECT highestmodseq FROM mailboxes WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *modseq = (uint64_t)sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        store_db_log(s->rd, "mailbox_modseq");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

int store_message_vanished(struct store *s, int64_t mailbox_id, uint64_t since,
                           uint32_t **uids, size_t *n)
{
    *uids = NULL;
    *n = 0;
    if (mailbox_id <= 0 || since > INT64_MAX)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, (int64_t)since);
    size_t cap = 0;
    int rc;
    int r = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint32_t *p = realloc(*uids, ncap * sizeof(*p));
            if (!p) {
                r = STORE_ERROR;
                break;
            }
            *uids = p;
            cap = ncap;
        }
        (*uids)[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    if (r == STORE_OK && rc != SQLITE_DONE) {
        store_db_log(s->rd, "message_vanished");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    if (r != STORE_OK) {
        free(*uids);
        *uids = NULL;
        *n = 0;
    }
    return r;
}

/* The keywords of the distinct flag strings in use, joined and canonicalised;
 * system flags are skipped. */
int store_mailbox_keywords(struct store *s, int64_t mailbox_id, char **out)
{
    *out = NULL;
    if (mailbox_id <= 0)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT DISTINCT flags FROM messages WHERE mailbox_id = ?1 AND flags <> ''");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    char *all = NULL;
    size_t len = 0;
    int rc = SQLITE_DONE, r = STORE_OK;
    while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *f = store_col_text(st, 0);
        for (const char *p = f; *p;) {
            size_t tl = strcspn(p, " ");
            if (tl && *p != '\\') {
                /* Bounded: a mailbox with more keywords than fit one
                 * message's flags gets the first ones only. */
                if (len + tl + 2 > STORE_FLAGS_MAX)
                    break;
                char *np = realloc(all, len + tl + 2);
                if (!np) {
                    r = STORE_ERROR;
                    break;
                }
                all = np;
                if (len)
                    all[len++] = ' ';
                memcpy(all + len, p, tl);
                len += tl;
                all[len] = '\0';
            }
            p += tl;
            p += *p == ' ';
        }
    }
    if (r == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_db_log(s->rd, "mailbox_keywords");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    if (r == STORE_OK) {
        r = store_flags_canon(all ? all : "", out);
        if (r == STORE_INVALID) /* a stored keyword no longer valid: none */
            r = (*out = strdup("")) ? STORE_OK : STORE_ERROR;
    }
    free(all);
    return r;
}

/* ----------------------------------------------------------------- fetch */

struct fetch_item {
    uint32_t uid;
    int result;
    char *data;
    size_t len;
    struct mime_message *parse;
};

struct fetch_req {
    uv_work_t work;
    struct store *s;
    int64_t mailbox_id;
    unsigned what;
    struct fetch_item *items;
    size_t n;
    store_fetch_many_cb cb;
    store_done_cb done;
    store_fetch_cb one;      /* store_fetch's callback, through fetch_one */
    void *arg;
};

/*
 * The stored parse is of an older format, damaged, or missing: the message
 * is parsed again from its bytes (on the pool, like the read), so every
 * message is rendered as the current parser reads it (docs/store.md).
 */
static int reparse(sqlite3_stmt *st, const struct fetch_req *f, struct fetch_item *it,
                   bool had_parse)
{
    char *data = it->data;
    size_t len = it->len;
    int r = STORE_OK;
    if (!(f->what & STORE_FETCH_RAW))
        r = store_inflate_blob(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                               (uint64_t)sqlite3_column_int64(st, 1), &data, &len);
    if (r != STORE_OK)
        return r;
    it->parse = mime_parse(data, len);
    if (data != it->data)
        free(data);
    log_event(PLOG_DEBUG, 0, "event=store_reparse mailbox_id=%lld uid=%u reason=%s",
              (long long)f->mailbox_id, it->uid, had_parse ? "old-or-damaged" : "none");
    return it->parse ? STORE_OK : STORE_ERROR;
}

static int fetch_read(sqlite3_stmt *st, const struct fetch_req *f, struct fetch_item *it)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, f->mailbox_id);
    sqlite3_bind_int64(st, 2, it->uid);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
    if (rc == SQLITE_ROW) {
        r = STORE_OK;
        if (f->what & STORE_FETCH_RAW)
            r = store_inflate_blob(sqlite3_column_blob(st, 0),
                                   (size_t)sqlite3_column_bytes(st, 0),
                                   (uint64_t)sqlite3_column_int64(st, 1), &it->data, &it->len);
        const char *mime = sqlite3_column_blob(st, 2);
        int mlen = sqlite3_column_bytes(st, 2);
        if (r == STORE_OK && (f->what & STORE_FETCH_PARSE)) {
            if (mime_encoded_is_current(mime, (size_t)mlen))
                it->parse = mime_decode(mime, (size_t)mlen);
            if (!it->parse)
                r = reparse(st, f, it, mime != NULL && mlen > 0);
        }
    } else if (rc != SQLITE_DONE) {
        store_db_log(sqlite3_db_handle(st), "fetch");
    }
    return r;
}

/* Thread pool: the reads and the inflates, off the loop, one statement. */
static void fetch_work(uv_work_t *req)
{
    struct fetch_req *f = req->data;
    struct store *s = f->s;
    sqlite3 *db = store_pool_reader(s, NULL);
    sqlite3_stmt *st = db ? store_db_prepare(db,
        "SELECT b.data, b.size, p.mime FROM messages m JOIN blobs b ON b.id = m.blob_id"
        " LEFT JOIN parses p ON p.blob_id = b.id WHERE m.mailbox_id = ?1 AND m.uid = ?2") : NULL;
    for (size_t i = 0; i < f->n; i++)
        f->items[i].result = st ? fetch_read(st, f, &f->items[i]) : STORE_ERROR;
    sqlite3_finalize(st);
    if (db)
        store_pool_reader_put(s, db);
    pthread_mutex_lock(&s->q_lock);
    if (--s->fetching == 0)
        pthread_cond_broadcast(&s->fetch_cond);
    pthread_mutex_unlock(&s->q_lock);
}

/* Loop: hands the results over in order; does not touch the store (it may
 * be closed). */
static void fetch_after(uv_work_t *req, int status)
{
    struct fetch_req *f = req->data;
    for (size_t i = 0; i < f->n; i++) {
        struct fetch_item *it = &f->items[i];
        if (status != 0 && it->result == STORE_OK)
            it->result = STORE_ERROR;
        if (it->result != STORE_OK) {
            free(it->data);
            it->data = NULL;
            it->len = 0;
            mime_free(&it->parse);
        }
        f->cb(f->arg, it->uid, it->result, it->data, it->len, it->parse);
    }
    if (f->done)
        f->done(f->arg, status == 0 ? STORE_OK : STORE_ERROR);
    free(f->items);
    free(f);
}

int store_fetch_many(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                     unsigned what, store_fetch_many_cb cb, store_done_cb done, void *arg)
{
    if (mailbox_id <= 0 || n == 0 || n > STORE_FETCH_MANY_MAX || !cb ||
        !(what & (STORE_FETCH_RAW | STORE_FETCH_PARSE)))
        return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (uids[i] == 0)
            return STORE_INVALID;
    if (!s->writer_started || s->closing)
        return STORE_BUSY;
    struct fetch_req *f = calloc(1, sizeof(*f));
    struct fetch_item *items = calloc(n, sizeof(*items));
    if (!f || !items) {
        free(f);
        free(items);
        return STORE_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        items[i].uid = uids[i];
    *f = (struct fetch_req){
        .s = s, .mailbox_id = mailbox_id, .what = what, .items = items, .n = n,
        .cb = cb, .done = done, .arg = arg,
    };
    f->work.data = f;
    pthread_mutex_lock(&s->q_lock);
    s->fetching++;
    pthread_mutex_unlock(&s->q_lock);
    if (uv_queue_work(s->loop, &f->work, fetch_work, fetch_after) != 0) {
        pthread_mutex_lock(&s->q_lock);
        s->fetching--;
        pthread_mutex_unlock(&s->q_lock);
        free(items);
        free(f);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* store_fetch is a batch of one whose request carries the single callback. */
struct fetch_one {
    store_fetch_cb cb;
    void *arg;
};

static void fetch_one(void *arg, uint32_t uid, int result, char *data, size_t len,
                      struct mime_message *parse)
{
    (void)uid;
    struct fetch_one *o = arg;
    o->cb(o->arg, result, data, len, parse);
    free(o);
}

int store_fetch(struct store *s, int64_t mailbox_id, uint32_t uid, unsigned what,
                store_fetch_cb cb, void *arg)
{
    if (!cb)
        return STORE_INVALID;
    struct fetch_one *o = malloc(sizeof(*o));
    if (!o)
        return STORE_ERROR;
    *o = (struct fetch_one){ cb, arg };
    int r = store_fetch_many(s, mailbox_id, &uid, 1, what, fetch_one, NULL, o);
    if (r != STORE_OK)
        free(o);
    return r;
}
