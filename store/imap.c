/*
 * imap.c — the write operations IMAP needs (mailbox create / delete /
 * rename / subscribe, append, flags, expunge, copy and move): argument
 * checks and item set-up on the loop, the SQL in the writer thread (each
 * item in its own savepoint of the writer's group transaction, see
 * deliver.c), and the typed completion callbacks on the loop.
 *
 * Also the two rules every operation shares: canonical flags and mailbox
 * names.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "store/store-int.h"

/* ------------------------------------------------------------------ flags */

/* RFC 3501 §2.3.2, in canonical order. \Recent is not storable. */
static const char *const system_flags[] = {
    "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};
#define N_SYSTEM ((int)(sizeof(system_flags) / sizeof(system_flags[0])))
#define STORE_KEYWORD_MAX 255     /* bytes of one keyword */

/* RFC 3501 §9: flag-keyword = atom; atom-specials excluded. */
static bool keyword_valid(const char *k, size_t len)
{
    if (len == 0 || len > STORE_KEYWORD_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
            return false;
    }
    return true;
}

struct flag_tok {
    const char *p;
    size_t len;
    int sys;          /* index in system_flags, or N_SYSTEM for a keyword */
};

static int tok_cmp(const void *a, const void *b)
{
    const struct flag_tok *x = a, *y = b;
    if (x->sys != y->sys)
        return x->sys - y->sys;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = strncasecmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Splits flags into tokens; STORE_INVALID on a bad one. *toks is malloc'd. */
static int flag_tokens(const char *flags, struct flag_tok **toks, size_t *n)
{
    *toks = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = flags; *p; p++)
        cap += *p == ' ';
    struct flag_tok *t = calloc(cap, sizeof(*t));
    if (!t)
        return STORE_ERROR;
    for (const char *p = flags; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " ");
        struct flag_tok tok = { .p = p, .len = len, .sys = N_SYSTEM };
        if (*p == '\\') {
            tok.sys = -1;
            for (int i = 0; i < N_SYSTEM && tok.sys < 0; i++)
                if (strlen(system_flags[i]) == len && strncasecmp(system_flags[i], p, len) == 0)
                    tok.sys = i;
            if (tok.sys < 0) {
                free(t);
                return STORE_INVALID;
            }
            tok.p = system_flags[tok.sys];
        } else if (!keyword_valid(p, len)) {
            free(t);
            return STORE_INVALID;
        }
        t[(*n)++] = tok;
        p += len;
    }
    *toks = t;
    return STORE_OK;
}

/* Sorts, drops duplicates and joins; STORE_INVALID past STORE_FLAGS_MAX. */
static int flag_join(struct flag_tok *t, size_t n, char **out)
{
    qsort(t, n, sizeof(*t), tok_cmp);
    size_t total = 1, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && tok_cmp(&t[m - 1], &t[i]) == 0)
            continue;
        t[m++] = t[i];
        total += t[i].len + 1;
    }
    if (total > STORE_FLAGS_MAX)
        return STORE_INVALID;
    char *s = malloc(total);
    if (!s)
        return STORE_ERROR;
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        if (o)
            s[o++] = ' ';
        memcpy(s + o, t[i].p, t[i].len);
        o += t[i].len;
    }
    s[o] = '\0';
    *out = s;
    return STORE_OK;
}

int store_flags_canon(const char *flags, char **out)
{
    *out = NULL;
    struct flag_tok *t;
    size_t n;
    int r = flag_tokens(flags ? flags : "", &t, &n);
    if (r != STORE_OK)
        return r;
    r = flag_join(t, n, out);
    free(t);
    return r;
}

/*
 * The flags of a message after a STORE: old (as stored; read leniently,
 * bad tokens dropped) combined with req (canonical) by mode.
 */
static int flags_apply(const char *old, const char *req, int mode, char **out)
{
    struct flag_tok *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char *old_canon = NULL;
    if (store_flags_canon(old, &old_canon) != STORE_OK)
        old_canon = strdup("");
    if (!old_canon)
        return STORE_ERROR;
    int r = flag_tokens(old_canon, &a, &na);
    if (r == STORE_OK)
        r = flag_tokens(req, &b, &nb);
    if (r == STORE_OK) {
        if (mode == STORE_FLAGS_REPLACE) {
            r = flag_join(b, nb, out);
        } else if (mode == STORE_FLAGS_ADD) {
            struct flag_tok *all = calloc(na + nb + 1, sizeof(*all));
            if (!all) {
                r = STORE_ERROR;
            } else {
                memcpy(all, a, na * sizeof(*a));
                memcpy(all + na, b, nb * sizeof(*b));
                r = flag_join(all, na + nb, out);
                free(all);
            }
        } else {
            size_t m = 0;
            for (size_t i = 0; i < na; i++) {
                bool drop = false;
                for (size_t j = 0; j < nb && !drop; j++)
                    drop = tok_cmp(&a[i], &b[j]) == 0;
                if (!drop)
                    a[m++] = a[i];
            }
            r = flag_join(a, m, out);
        }
    }
    free(a);
    free(b);
    free(old_canon);
    return r;
}

/* Whether the space-separated flags contain \Deleted (any case). */
static bool has_deleted(const char *flags)
{
    for (const char *p = flags; *p;) {
        size_t len = strcspn(p, " ");
        if (len == 8 && strncasecmp(p, "\\Deleted", 8) == 0)
            return true;
        p += len;
        p += *p == ' ';
    }
    return false;
}

/* ---------------------------------------------------------------- names */

/* Length of the UTF-8 sequence at p (RFC 3629), 0 when malformed. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, surrogate */
    if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

int store_mailbox_name(const char *in, char *out, size_t outlen)
{
    size_t len = in ? strlen(in) : 0;
    if (len == 0 || len > STORE_MAILBOX_NAME_MAX || len >= outlen)
        return STORE_INVALID;
    if (in[0] == '/' || in[len - 1] == '/' || strstr(in, "//"))
        return STORE_INVALID;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f || c == '*' || c == '%')
            return STORE_INVALID;
        size_t n = utf8_len((const unsigned char *)in + i);
        if (n == 0)
            return STORE_INVALID;
        i += n;
    }
    memcpy(out, in, len + 1);
    /* RFC 3501 §5.1: INBOX is case-insensitive; so is it as a parent. */
    if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
        memcpy(out, "INBOX", 5);
    return STORE_OK;
}

/* ----------------------------------------------------------- result arrays */

static int push_uid(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        uint32_t *p = realloc(*a, ncap * sizeof(*p));
        if (!p)
            return -1;
        *a = p;
        *cap = ncap;
    }
    (*a)[(*n)++] = v;
    return 0;
}

void store_imap_reset(struct store_item *it)
{
    free(it->r_uids);
    free(it->r_uids2);
    for (size_t i = 0; i < it->n_rflags; i++)
        free((char *)it->r_flags[i].flags);
    free(it->r_flags);
    it->r_uids = it->r_uids2 = NULL;
    it->r_flags = NULL;
    it->n_r = it->n_r2 = it->cap_r = it->cap_r2 = it->n_rflags = it->cap_rflags = 0;
    it->uidvalidity = it->uid = 0;
    it->modseq = 0;
}

/* ------------------------------------------------------------ writer SQL */

static const char SQL_MBOX_BY_NAME[] =
    "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailboxes"
    " WHERE user_id = ?1 AND name = ?2";
static const char SQL_MBOX_BY_ID[] =
    "SELECT user_id, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id = ?1";
static const char SQL_MBOX_SET[] =
    "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3 WHERE id = ?1";
static const char SQL_MBOX_ADD[] =
    "INSERT INTO mailboxes(user_id, name, special_use, uidvalidity, uidnext, highestmodseq)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_MBOX_DEL[] = "DELETE FROM mailboxes WHERE id = ?1";
static const char SQL_MBOX_RENAME[] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1";
static const char SQL_MBOX_CHILDREN[] =
    "SELECT id, name FROM mailboxes WHERE user_id = ?1 AND substr(name, 1, ?3) = ?2"
    " ORDER BY name";
static const char SQL_MBOX_UIDS[] =
    "SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
static const char SQL_MSGS_MOVE[] = "UPDATE messages SET mailbox_id = ?2 WHERE mailbox_id = ?1";
static const char SQL_SUB_ADD[] =
    "INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?1, ?2)";
static const char SQL_SUB_DEL[] = "DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2";
static const char SQL_SUB_RENAME[] =
    "UPDATE OR IGNORE subscriptions SET name = ?3 WHERE user_id = ?1 AND name = ?2";
static const char SQL_USER[] = "SELECT quota, used FROM users WHERE id = ?1";
static const char SQL_USER_USED[] =
    "UPDATE users SET used = max(used + ?2, 0) WHERE id = ?1";
static const char SQL_MSG_GET[] =
    "SELECT modseq, flags, internal_date, size, blob_id FROM messages"
    " WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_MSG_ADD[] =
    "INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_MSG_FLAGS[] =
    "UPDATE messages SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_MSG_DEL[] = "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_TOMB[] =
    "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)";
static const char SQL_BLOB_REF[] = "UPDATE blobs SET refcount = refcount + ?2 WHERE id = ?1";
static const char SQL_BLOB_GC[] = "DELETE FROM blobs WHERE id = ?1 AND refcount <= 0";
static const char SQL_DELETED[] =
    "SELECT uid FROM messages WHERE mailbox_id = ?1"
    " AND ' ' || flags || ' ' LIKE '% \\Deleted %' ORDER BY uid";

struct mbox {
    int64_t id, user_id;
    uint32_t uidvalidity, uidnext;
    uint64_t hms;
};

/* STORE_OK, STORE_NOTFOUND or STORE_ERROR. */
static int mbox_by_name(struct store_wctx *w, int64_t user_id, const char *name, struct mbox *m)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_BY_NAME);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *m = (struct mbox){
            .id = sqlite3_column_int64(st, 0), .user_id = user_id,
            .uidvalidity = (uint32_t)sqlite3_column_int64(st, 1),
            .uidnext = (uint32_t)sqlite3_column_int64(st, 2),
            .hms = (uint64_t)sqlite3_column_int64(st, 3),
        };
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

static int mbox_by_id(struct store_wctx *w, int64_t id, struct mbox *m)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_BY_ID);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *m = (struct mbox){
            .id = id, .user_id = sqlite3_column_int64(st, 0),
            .uidvalidity = (uint32_t)sqlite3_column_int64(st, 1),
            .uidnext = (uint32_t)sqlite3_column_int64(st, 2),
            .hms = (uint64_t)sqlite3_column_int64(st, 3),
        };
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

static int mbox_set(struct store_wctx *w, const struct mbox *m)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_SET);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_int64(st, 2, m->uidnext);
    sqlite3_bind_int64(st, 3, (int64_t)m->hms);
    return store_wstep(st);
}

static int user_used(struct store_wctx *w, int64_t user_id, int64_t delta)
{
    if (delta == 0)
        return 0;
    sqlite3_stmt *st = store_wstmt(w, SQL_USER_USED);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, delta);
    return store_wstep(st);
}

/* STORE_OK when add more bytes fit the user's quota, STORE_QUOTA, STORE_NOTFOUND. */
static int quota_check(struct store_wctx *w, int64_t user_id, uint64_t add)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_USER);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
    if (rc == SQLITE_ROW) {
        uint64_t quota = (uint64_t)sqlite3_column_int64(st, 0);
        uint64_t used = (uint64_t)sqlite3_column_int64(st, 1);
        r = quota && (used > quota || add > quota - used) ? STORE_QUOTA : STORE_OK;
    }
    sqlite3_reset(st);
    return r;
}

struct msg_row {
    uint32_t uid;
    uint64_t modseq;
    char *flags;
    int64_t internal_date;
    uint64_t size;
    int64_t blob_id;
};

/* STORE_OK, STORE_NOTFOUND or STORE_ERROR; row->flags is malloc'd. */
static int msg_get(struct store_wctx *w, int64_t mbox, uint32_t uid, struct msg_row *row)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_MSG_GET);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
    if (rc == SQLITE_ROW) {
        *row = (struct msg_row){
            .uid = uid,
            .modseq = (uint64_t)sqlite3_column_int64(st, 0),
            .flags = strdup(store_col_text(st, 1)),
            .internal_date = sqlite3_column_int64(st, 2),
            .size = (uint64_t)sqlite3_column_int64(st, 3),
            .blob_id = sqlite3_column_int64(st, 4),
        };
        r = row->flags ? STORE_OK : STORE_ERROR;
    }
    sqlite3_reset(st);
    return r;
}

static int msg_add(struct store_wctx *w, int64_t mbox, uint32_t uid, uint64_t modseq,
                   const char *flags, int64_t internal_date, uint64_t size, int64_t blob)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_MSG_ADD);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    sqlite3_bind_text(st, 4, flags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, internal_date);
    sqlite3_bind_int64(st, 6, (int64_t)size);
    sqlite3_bind_int64(st, 7, blob);
    return store_wstep(st);
}

static int blob_adjust(struct store_wctx *w, int64_t blob, int64_t delta)
{
    sqlite3_stmt *st = store_wstmt(w, SQL_BLOB_REF);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, blob);
    sqlite3_bind_int64(st, 2, delta);
    if (store_wstep(st) != 0)
        return -1;
    if (delta >= 0)
        return 0;
    /* The last reference gone: the blob goes, its parse by cascade. */
    st = store_wstmt(w, SQL_BLOB_GC);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, blob);
    return store_wstep(st);
}

/*
 * Removes one message: row deleted, tombstone at modseq (none when 0), blob
 * reference dropped. *size gets its size (the caller adjusts quota once).
 * STORE_NOTFOUND when it is not there.
 */
static int msg_remove(struct store_wctx *w, int64_t mbox, uint32_t uid, uint64_t modseq,
                      uint64_t *size)
{
    struct msg_row row;
    int r = msg_get(w, mbox, uid, &row);
    if (r != STORE_OK)
        return r;
    free(row.flags);
    *size = row.size;
    sqlite3_stmt *st = store_wstmt(w, SQL_MSG_DEL);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, uid);
    if (store_wstep(st) != 0)
        return STORE_ERROR;
    if (modseq > 0) {
        st = store_wstmt(w, SQL_TOMB);
        if (!st)
            return STORE_ERROR;
        sqlite3_bind_int64(st, 1, mbox);
        sqlite3_bind_int64(st, 2, uid);
        sqlite3_bind_int64(st, 3, (int64_t)modseq);
        if (store_wstep(st) != 0)
            return STORE_ERROR;
    }
    return blob_adjust(w, row.blob_id, -1) == 0 ? STORE_OK : STORE_ERROR;
}

/* Every UID of a mailbox (or its \Deleted ones), ascending, into it->r_uids. */
static int collect_uids(struct store_wctx *w, struct store_item *it, int64_t mbox,
                        const char *sql)
{
    sqlite3_stmt *st = store_wstmt(w, sql);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mbox);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (push_uid(&it->r_uids, &it->n_r, &it->cap_r,
                     (uint32_t)sqlite3_column_int64(st, 0)) != 0) {
            sqlite3_reset(st);
            return STORE_ERROR;
        }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sub_exec(struct store_wctx *w, const char *sql, int64_t user_id, const char *a,
                    const char *b)
{
    sqlite3_stmt *st = store_wstmt(w, sql);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
    return store_wstep(st);
}

/* ------------------------------------------------------ mailbox operations */

static int apply_create(struct store_wctx *w, struct store_item *it)
{
    struct mbox m;
    int r = quota_check(w, it->user_id, 0); /* the user exists */
    if (r == STORE_QUOTA)
        r = STORE_OK;
    if (r != STORE_OK)
        return r;
    r = mbox_by_name(w, it->user_id, it->name, &m);
    if (r != STORE_NOTFOUND)
        return r == STORE_OK ? STORE_EXISTS : r;
    uint32_t uidvalidity = store_next_uidvalidity(w->db);
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_ADD);
    if (uidvalidity == 0 || !st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, it->user_id);
    sqlite3_bind_text(st, 2, it->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, it->name2 ? it->name2 : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, uidvalidity);
    sqlite3_bind_int64(st, 5, 1);
    sqlite3_bind_int64(st, 6, 1);
    if (store_wstep(st) != 0)
        return STORE_ERROR;
    int64_t id = sqlite3_last_insert_rowid(w->db);
    it->uidvalidity = uidvalidity;
    if (store_item_change(it, STORE_CHANGE_MAILBOX_CREATE, it->user_id, id, 0, 0, NULL,
                          it->name, NULL) != 0)
        return STORE_ERROR;
    return STORE_OK;
}

static int apply_delete(struct store_wctx *w, struct store_item *it)
{
    if (strcmp(it->name, "INBOX") == 0)
        return STORE_INVALID;
    struct mbox m;
    int r = mbox_by_name(w, it->user_id, it->name, &m);
    if (r != STORE_OK)
        return r;
    r = collect_uids(w, it, m.id, SQL_MBOX_UIDS);
    uint64_t total = 0;
    for (size_t i = 0; r == STORE_OK && i < it->n_r; i++) {
        uint64_t size = 0;
        r = msg_remove(w, m.id, it->r_uids[i], 0, &size);
        total += size;
    }
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_DEL);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, m.id);
    if (store_wstep(st) != 0 || user_used(w, it->user_id, -(int64_t)total) != 0)
        return STORE_ERROR;
    if (store_item_change(it, STORE_CHANGE_MAILBOX_DELETE, it->user_id, m.id, 0, 0, NULL,
                          it->name, NULL) != 0)
        return STORE_ERROR;
    return STORE_OK;
}

/* RFC 3501 §6.3.5: INBOX's messages move to a new mailbox, INBOX stays. */
static int rename_inbox(struct store_wctx *w, struct store_item *it, struct mbox *inbox)
{
    uint32_t uidvalidity = store_next_uidvalidity(w->db);
    sqlite3_stmt *st = store_wstmt(w, SQL_MBOX_ADD);
    if (uidvalidity == 0 || !st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, it->user_id);
    sqlite3_bind_text(st, 2, it->name2, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, uidvalidity);
    sqlite3_bind_int64(st, 5, inbox->uidnext);
    sqlite3_bind_int64(st, 6, (int64_t)inbox->hms);
    if (store_wstep(st) != 0)
        return STORE_ERROR;
    int64_t id = sqlite3_last_insert_rowid(w->db);
    int r = collect_uids(w, it, inbox->id, SQL_MBOX_UIDS);
    if (r != STORE_OK)
        return r;
    st = store_wstmt(w, SQL_MSGS_MOVE);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, inbox->id);
    sqlite3_bind_int64(st, 2, id);
    if (store_wstep(st) != 0)
        return STORE_ERROR;
    if (store_item_change(it, STORE_CHANGE_MAILBOX_CREATE, it->user_id, id, 0, 0, NULL,
                          it->name2, NULL) != 0)
        return STORE_ERROR;
    if (it->n_r == 0)
        return STORE_OK;
    /* For INBOX the messages are expunged: tombstones, one new modseq. */
    inbox->hms++;
    for (size_t i = 0; i < it->n_r; i++) {
        st = store_wstmt(w, SQL_TOMB);
        if (!st)
            return STORE_ERROR;
        sqlite3_bind_int64(st, 1, inbox->id);
        sqlite3_bind_int64(st, 2, it->r_uids[i]);
        sqlite3_bind_int64(st, 3, (int64_t)inbox->hms);
        if (store_wstep(st) != 0
            || store_item_change(it, STORE_CHANGE_EXPUNGE, it->user_id, inbox->id,
                                 it->r_uids[i], inbox->hms, NULL, NULL, NULL) != 0)
            return STORE_ERROR;
    }
    return mbox_set(w, inbox) == 0 ? STORE_OK : STORE_ERROR;
}

struct renamed {
    int64_t id;
    char *from, *to;
};

static void renamed_free(struct renamed *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].from);
        free(v[i].to);
    }
    free(v);
}

static int apply_rename(struct store_wctx *w, struct store_item *it)
{
    const char *from = it->name, *to = it->name2;
    size_t flen = strlen(from);
    if (strcmp(from, to) == 0 || strcmp(to, "INBOX") == 0)
        return STORE_EXISTS;
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return STORE_INVALID; /* into itself */
    struct mbox m, other;
    int r = mbox_by_name(w, it->user_id, from, &m);
    if (r != STORE_OK)
        return r;
    r = mbox_by_name(w, it->user_id, to, &other);
    if (r != STORE_NOTFOUND)
        return r == STORE_OK ? STORE_EXISTS : r;
    if (strcmp(from, "INBOX") == 0)
        return rename_inbox(w, it, &m);

    /* The mailbox and its children "from/...", all checked before any moves. */
    struct renamed *v = NULL;
    size_t n = 0, cap = 0;
    char *prefix = malloc(flen + 2);
    sqlite3_stmt *st = prefix ? store_wstmt(w, SQL_MBOX_CHILDREN) : NULL;
    if (!st) {
        free(prefix);
        return STORE_ERROR;
    }
    memcpy(prefix, from, flen);
    memcpy(prefix + flen, "/", 2);
    sqlite3_bind_int64(st, 1, it->user_id);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)flen + 1);
    int rc;
    r = STORE_OK;
    bool self = true;
    while (r == STORE_OK) {
        int64_t id;
        const char *name;
        if (self) {
            id = m.id;
            name = from;
            self = false;
        } else if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            id = sqlite3_column_int64(st, 0);
            name = store_col_text(st, 1);
        } else {
            r = rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct renamed *p = realloc(v, ncap * sizeof(*p));
            if (!p) {
                r = STORE_ERROR;
                break;
            }
            v = p;
            cap = ncap;
        }
        size_t tlen = strlen(to), nlen = strlen(name);
        char *dst = malloc(tlen + (nlen - flen) + 1);
        char *src = strdup(name);
        if (!dst || !src) {
            free(dst);
            free(src);
            r = STORE_ERROR;
            break;
        }
        memcpy(dst, to, tlen);
        memcpy(dst + tlen, name + flen, nlen - flen + 1);
        v[n++] = (struct renamed){ .id = id, .from = src, .to = dst };
        if (tlen + (nlen - flen) > STORE_MAILBOX_NAME_MAX)
            r = STORE_INVALID;
    }
    sqlite3_reset(st);
    free(prefix);
    for (size_t i = 1; r == STORE_OK && i < n; i++) {
        r = mbox_by_name(w, it->user_id, v[i].to, &other);
        r = r == STORE_NOTFOUND ? STORE_OK : r == STORE_OK ? STORE_EXISTS : r;
    }
    for (size_t i = 0; r == STORE_OK && i < n; i++) {
        st = store_wstmt(w, SQL_MBOX_RENAME);
        if (!st) {
            r = STORE_ERROR;
            break;
        }
        sqlite3_bind_int64(st, 1, v[i].id);
        sqlite3_bind_text(st, 2, v[i].to, -1, SQLITE_STATIC);
        if (store_wstep(st) != 0
            || sub_exec(w, SQL_SUB_RENAME, it->user_id, v[i].from, v[i].to) != 0
            || store_item_change(it, STORE_CHANGE_MAILBOX_RENAME, it->user_id, v[i].id, 0, 0,
                                 NULL, v[i].to, v[i].from) != 0)
            r = STORE_ERROR;
    }
    renamed_free(v, n);
    return r;
}

static int apply_subscribe(struct store_wctx *w, struct store_item *it)
{
    int r = quota_check(w, it->user_id, 0);
    if (r == STORE_QUOTA)
        r = STORE_OK;
    if (r != STORE_OK)
        return r;
    return sub_exec(w, it->mode ? SQL_SUB_ADD : SQL_SUB_DEL, it->user_id, it->name, NULL) == 0
        ? STORE_OK : STORE_ERROR;
}

/* ------------------------------------------------------ message operations */

static int apply_append(struct store_wctx *w, struct store_item *it)
{
    if (it->prep != STORE_OK)
        return STORE_ERROR;
    struct mbox m;
    int r = mbox_by_name(w, it->user_id, it->name, &m);
    if (r == STORE_OK)
        r = quota_check(w, it->user_id, it->len);
    if (r != STORE_OK)
        return r;
    int64_t blob = store_blob_ref(w, it, 1);
    if (blob < 0)
        return STORE_ERROR;
    uint32_t uid = m.uidnext++;
    uint64_t modseq = ++m.hms;
    if (msg_add(w, m.id, uid, modseq, it->flags, it->internal_date, it->len, blob) != 0
        || mbox_set(w, &m) != 0 || user_used(w, it->user_id, (int64_t)it->len) != 0
        || store_item_change(it, STORE_CHANGE_APPEND, it->user_id, m.id, uid, modseq, NULL,
                             NULL, NULL) != 0)
        return STORE_ERROR;
    it->uidvalidity = m.uidvalidity;
    it->uid = uid;
    return STORE_OK;
}

static int apply_flags(struct store_wctx *w, struct store_item *it)
{
    struct mbox m = { 0 };
    int r = mbox_by_id(w, it->mailbox_id, &m);
    uint64_t start = m.hms;
    for (size_t i = 0; r == STORE_OK && i < it->n_uids; i++) {
        struct msg_row row;
        int g = msg_get(w, m.id, it->uids[i], &row);
        if (g == STORE_NOTFOUND)
            continue;
        if (g != STORE_OK) {
            r = g;
            break;
        }
        /* RFC 7162 §3.1.3: changed since the client looked: not touched. */
        if (it->unchangedsince && row.modseq > it->unchangedsince) {
            free(row.flags);
            if (push_uid(&it->r_uids, &it->n_r, &it->cap_r, row.uid) != 0)
                r = STORE_ERROR;
            continue;
        }
        char *nf = NULL, *of = NULL;
        r = flags_apply(row.flags, it->flags, it->mode, &nf);
        if (r == STORE_OK && store_flags_canon(row.flags, &of) != STORE_OK)
            of = NULL;
        free(row.flags);
        if (r != STORE_OK || (of && strcmp(of, nf) == 0)) {
            free(nf);
            free(of);
            continue;
        }
        free(of);
        uint64_t modseq = ++m.hms;
        sqlite3_stmt *st = store_wstmt(w, SQL_MSG_FLAGS);
        if (!st) {
            free(nf);
            r = STORE_ERROR;
            break;
        }
        sqlite3_bind_int64(st, 1, m.id);
        sqlite3_bind_int64(st, 2, row.uid);
        sqlite3_bind_text(st, 3, nf, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)modseq);
        if (store_wstep(st) != 0
            || store_item_change(it, STORE_CHANGE_FLAGS, m.user_id, m.id, row.uid, modseq, nf,
                                 NULL, NULL) != 0) {
            free(nf);
            r = STORE_ERROR;
            break;
        }
        if (it->n_rflags == it->cap_rflags) {
            size_t ncap = it->cap_rflags ? it->cap_rflags * 2 : 16;
            struct store_flag_change *p = realloc(it->r_flags, ncap * sizeof(*p));
            if (!p) {
                free(nf);
                r = STORE_ERROR;
                break;
            }
            it->r_flags = p;
            it->cap_rflags = ncap;
        }
        it->r_flags[it->n_rflags++] = (struct store_flag_change){
            .uid = row.uid, .modseq = modseq, .flags = nf,
        };
    }
    if (r == STORE_OK && m.hms != start && mbox_set(w, &m) != 0)
        r = STORE_ERROR;
    return r;
}

/* Expunges it->r_uids from m at one new modseq; used drops by their size. */
static int expunge_list(struct store_wctx *w, struct store_item *it, struct mbox *m)
{
    if (it->n_r == 0)
        return STORE_OK;
    it->modseq = ++m->hms;
    uint64_t total = 0;
    for (size_t i = 0; i < it->n_r; i++) {
        uint64_t size = 0;
        int r = msg_remove(w, m->id, it->r_uids[i], it->modseq, &size);
        if (r != STORE_OK)
            return r == STORE_NOTFOUND ? STORE_ERROR : r;
        total += size;
        if (store_item_change(it, STORE_CHANGE_EXPUNGE, m->user_id, m->id, it->r_uids[i],
                              it->modseq, NULL, NULL, NULL) != 0)
            return STORE_ERROR;
    }
    if (mbox_set(w, m) != 0 || user_used(w, m->user_id, -(int64_t)total) != 0)
        return STORE_ERROR;
    return STORE_OK;
}

static int apply_expunge(struct store_wctx *w, struct store_item *it)
{
    struct mbox m;
    int r = mbox_by_id(w, it->mailbox_id, &m);
    if (r != STORE_OK)
        return r;
    if (it->all_deleted) {
        r = collect_uids(w, it, m.id, SQL_DELETED);
    } else {
        for (size_t i = 0; r == STORE_OK && i < it->n_uids; i++) {
            struct msg_row row;
            int g = msg_get(w, m.id, it->uids[i], &row);
            if (g == STORE_NOTFOUND)
                continue;
            if (g != STORE_OK)
                return g;
            bool del = has_deleted(row.flags);
            free(row.flags);
            if ((del || it->force) && push_uid(&it->r_uids, &it->n_r, &it->cap_r, row.uid) != 0)
                r = STORE_ERROR;
        }
    }
    return r == STORE_OK ? expunge_list(w, it, &m) : r;
}

static int apply_copy(struct store_wctx *w, struct store_item *it)
{
    struct mbox src, dst;
    int r = mbox_by_id(w, it->mailbox_id, &src);
    if (r == STORE_OK)
        r = mbox_by_id(w, it->dst_mailbox_id, &dst);
    if (r != STORE_OK)
        return r;
    if (src.user_id != dst.user_id)
        return STORE_INVALID;
    struct msg_row *rows = calloc(it->n_uids ? it->n_uids : 1, sizeof(*rows));
    if (!rows)
        return STORE_ERROR;
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; r == STORE_OK && i < it->n_uids; i++) {
        int g = msg_get(w, src.id, it->uids[i], &rows[n]);
        if (g == STORE_OK)
            total += rows[n++].size;
        else if (g != STORE_NOTFOUND)
            r = g;
    }
    /* A move does not grow the user's usage: no quota check. */
    if (r == STORE_OK && !it->move)
        r = quota_check(w, src.user_id, total);
    for (size_t i = 0; r == STORE_OK && i < n; i++) {
        uint32_t uid = dst.uidnext++;
        uint64_t modseq = ++dst.hms;
        if (msg_add(w, dst.id, uid, modseq, rows[i].flags, rows[i].internal_date,
                    rows[i].size, rows[i].blob_id) != 0
            || blob_adjust(w, rows[i].blob_id, 1) != 0
            || push_uid(&it->r_uids, &it->n_r, &it->cap_r, rows[i].uid) != 0
            || push_uid(&it->r_uids2, &it->n_r2, &it->cap_r2, uid) != 0
            || store_item_change(it, STORE_CHANGE_APPEND, dst.user_id, dst.id, uid, modseq,
                                 NULL, NULL, NULL) != 0)
            r = STORE_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        free(rows[i].flags);
    free(rows);
    if (r == STORE_OK && n > 0 && mbox_set(w, &dst) != 0)
        r = STORE_ERROR;
    if (r == STORE_OK && !it->move && user_used(w, dst.user_id, (int64_t)total) != 0)
        r = STORE_ERROR;
    it->uidvalidity = dst.uidvalidity;
    if (r != STORE_OK || !it->move)
        return r;
    /* RFC 6851: the sources go in the same transaction; the copies took
     * their own reference, so the blobs stay. Moving within one mailbox
     * reads its counters again after the inserts. */
    if (src.id == dst.id && mbox_by_id(w, src.id, &src) != STORE_OK)
        return STORE_ERROR;
    uint64_t size_moved = total;
    r = expunge_list(w, it, &src);
    /* expunge_list took the moved bytes off 'used'; they still exist. */
    if (r == STORE_OK && user_used(w, src.user_id, (int64_t)size_moved) != 0)
        r = STORE_ERROR;
    return r;
}

int store_imap_apply(struct store_wctx *w, struct store_item *it)
{
    switch (it->op) {
    case OP_APPEND: return apply_append(w, it);
    case OP_MBOX_CREATE: return apply_create(w, it);
    case OP_MBOX_DELETE: return apply_delete(w, it);
    case OP_MBOX_RENAME: return apply_rename(w, it);
    case OP_SUBSCRIBE: return apply_subscribe(w, it);
    case OP_FLAGS: return apply_flags(w, it);
    case OP_EXPUNGE: return apply_expunge(w, it);
    case OP_COPY: return apply_copy(w, it);
    case OP_DELIVER: case OP_QUEUE_UPDATE: break; /* deliver.c, queue.c */
    }
    return STORE_ERROR;
}

/* Loop thread, after the commit; mailbox writes use it->done (deliver.c). */
void store_imap_complete(struct store_item *it)
{
    switch (it->op) {
    case OP_APPEND:
        if (it->append_cb)
            it->append_cb(it->arg, it->result, it->uidvalidity, it->uid);
        break;
    case OP_FLAGS:
        if (it->flags_cb) {
            struct store_flags_result fr = {
                .changed = it->r_flags, .n_changed = it->n_rflags,
                .failed = it->r_uids, .n_failed = it->n_r,
            };
            it->flags_cb(it->arg, it->result, &fr);
        }
        break;
    case OP_EXPUNGE:
        if (it->expunge_cb)
            it->expunge_cb(it->arg, it->result, it->r_uids, it->n_r, it->modseq);
        break;
    case OP_COPY:
        if (it->copy_cb)
            it->copy_cb(it->arg, it->result, it->uidvalidity, it->r_uids, it->r_uids2,
                        it->r_uids2 ? it->n_r2 : 0);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ entry points */

static struct store_item *item_new(enum store_op op)
{
    struct store_item *it = calloc(1, sizeof(*it));
    if (it)
        it->op = op;
    return it;
}

static int submit(struct store *s, struct store_item *it)
{
    int r = store_writer_submit(s, it);
    if (r != STORE_OK)
        store_item_free(&it);
    return r;
}

static int uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Copies uids, ascending and distinct, 0 dropped. */
static int copy_uids(struct store_item *it, const uint32_t *uids, size_t n)
{
    if (n > STORE_OP_UIDS_MAX || (n && !uids))
        return STORE_INVALID;
    it->uids = malloc((n ? n : 1) * sizeof(*uids));
    if (!it->uids)
        return STORE_ERROR;
    if (n)
        memcpy(it->uids, uids, n * sizeof(*uids));
    qsort(it->uids, n, sizeof(*uids), uid_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (it->uids[i] != 0 && (m == 0 || it->uids[m - 1] != it->uids[i]))
            it->uids[m++] = it->uids[i];
    it->n_uids = m;
    return STORE_OK;
}

static const char *const special_uses[] = {
    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
};

static int mailbox_op(struct store *s, enum store_op op, int64_t user_id, const char *name,
                      const char *name2, store_done_cb done, void *arg, int mode)
{
    char a[STORE_MAILBOX_NAME_MAX + 1], b[STORE_MAILBOX_NAME_MAX + 1];
    if (user_id <= 0 || store_mailbox_name(name, a, sizeof(a)) != STORE_OK)
        return STORE_INVALID;
    if (op == OP_MBOX_RENAME && store_mailbox_name(name2, b, sizeof(b)) != STORE_OK)
        return STORE_INVALID;
    if (op == OP_MBOX_CREATE && name2 && *name2) {
        bool known = false;
        for (size_t i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]) && !known; i++)
            if (strcasecmp(name2, special_uses[i]) == 0) {
                name2 = special_uses[i];
                known = true;
            }
        if (!known)
            return STORE_INVALID;
    }
    struct store_item *it = item_new(op);
    if (!it)
        return STORE_ERROR;
    it->user_id = user_id;
    it->done = done;
    it->arg = arg;
    it->mode = mode;
    it->name = strdup(a);
    it->name2 = op == OP_MBOX_RENAME ? strdup(b)
              : op == OP_MBOX_CREATE ? strdup(name2 ? name2 : "") : NULL;
    if (!it->name || ((op == OP_MBOX_RENAME || op == OP_MBOX_CREATE) && !it->name2)) {
        store_item_free(&it);
        return STORE_ERROR;
    }
    return submit(s, it);
}

int store_mailbox_create(struct store *s, int64_t user_id, const char *name,
                         const char *special_use, store_done_cb done, void *arg)
{
    return mailbox_op(s, OP_MBOX_CREATE, user_id, name, special_use, done, arg, 0);
}

int store_mailbox_delete(struct store *s, int64_t user_id, const char *name,
                         store_done_cb done, void *arg)
{
    return mailbox_op(s, OP_MBOX_DELETE, user_id, name, NULL, done, arg, 0);
}

int store_mailbox_rename(struct store *s, int64_t user_id, const char *old_name,
                         const char *new_name, store_done_cb done, void *arg)
{
    return mailbox_op(s, OP_MBOX_RENAME, user_id, old_name, new_name, done, arg, 0);
}

int store_mailbox_subscribe(struct store *s, int64_t user_id, const char *name, bool on,
                            store_done_cb done, void *arg)
{
    return mailbox_op(s, OP_SUBSCRIBE, user_id, name, NULL, done, arg, on);
}

int store_append(struct store *s, const struct store_append *a, store_append_cb cb, void *arg)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (!a || a->user_id <= 0 || (!a->data && a->len)
        || store_mailbox_name(a->mailbox, name, sizeof(name)) != STORE_OK)
        return STORE_INVALID;
    struct store_item *it = item_new(OP_APPEND);
    if (!it)
        return STORE_ERROR;
    int r = store_flags_canon(a->flags, &it->flags);
    it->name = r == STORE_OK ? strdup(name) : NULL;
    if (r == STORE_OK && !it->name)
        r = STORE_ERROR;
    if (r != STORE_OK) {
        store_item_free(&it);
        return r;
    }
    it->user_id = a->user_id;
    it->data = a->data ? a->data : "";
    it->len = a->len;
    it->internal_date = a->internal_date;
    it->append_cb = cb;
    it->arg = arg;
    r = store_writer_prepare(s, it);
    if (r != STORE_OK)
        store_item_free(&it);
    return r;
}

int store_flags(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                enum store_flags_mode mode, const char *flags, uint64_t unchangedsince,
                store_flags_cb cb, void *arg)
{
    if (mailbox_id <= 0 || mode < STORE_FLAGS_ADD || mode > STORE_FLAGS_REPLACE
        || unchangedsince > INT64_MAX)
        return STORE_INVALID;
    struct store_item *it = item_new(OP_FLAGS);
    if (!it)
        return STORE_ERROR;
    int r = store_flags_canon(flags, &it->flags);
    if (r == STORE_OK)
        r = copy_uids(it, uids, n_uids);
    if (r != STORE_OK) {
        store_item_free(&it);
        return r;
    }
    it->mailbox_id = mailbox_id;
    it->mode = (int)mode;
    it->unchangedsince = unchangedsince;
    it->flags_cb = cb;
    it->arg = arg;
    return submit(s, it);
}

static int expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                   bool force, store_expunge_cb cb, void *arg)
{
    if (mailbox_id <= 0)
        return STORE_INVALID;
    struct store_item *it = item_new(OP_EXPUNGE);
    if (!it)
        return STORE_ERROR;
    it->all_deleted = uids == NULL;
    it->force = force;
    int r = copy_uids(it, uids, uids ? n_uids : 0);
    if (r != STORE_OK) {
        store_item_free(&it);
        return r;
    }
    it->mailbox_id = mailbox_id;
    it->expunge_cb = cb;
    it->arg = arg;
    return submit(s, it);
}

int store_expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                  store_expunge_cb cb, void *arg)
{
    return expunge(s, mailbox_id, uids, n_uids, false, cb, arg);
}

int store_expunge_uids(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                       store_expunge_cb cb, void *arg)
{
    if (!uids)
        return STORE_INVALID;
    return expunge(s, mailbox_id, uids, n_uids, true, cb, arg);
}

int store_copy(struct store *s, int64_t src_mailbox_id, const uint32_t *uids, size_t n_uids,
               int64_t dst_mailbox_id, bool move, store_copy_cb cb, void *arg)
{
    if (src_mailbox_id <= 0 || dst_mailbox_id <= 0)
        return STORE_INVALID;
    struct store_item *it = item_new(OP_COPY);
    if (!it)
        return STORE_ERROR;
    int r = copy_uids(it, uids, n_uids);
    if (r != STORE_OK) {
        store_item_free(&it);
        return r;
    }
    it->mailbox_id = src_mailbox_id;
    it->dst_mailbox_id = dst_mailbox_id;
    it->move = move;
    it->copy_cb = cb;
    it->arg = arg;
    return submit(s, it);
}
