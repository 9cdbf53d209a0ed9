/*
 * query.c — read-only views of mailboxes and stored messages, on the reader
 * connection: store_mailbox_list, store_message_list, store_message_read.
 *
 * Each call is one or two autocommit SELECTs: no read transaction stays open
 * between calls, so the writer's WAL checkpoints are never held back by an
 * idle petrelctl or test.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/core.h"
#include "store/store-int.h"

/* A stored message larger than this is refused by store_message_read rather
 * than allocated: far above any size limit the SMTP side accepts. */
#define STORE_READ_MAX ((uint64_t)1 << 31)

/* The user id of address on the reader, as a STORE_* result in *r. */
static int64_t reader_user(struct store *s, const char *address, int *r)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK) {
        *r = STORE_INVALID;
        return 0;
    }
    int64_t uid = store_user_id(s->rd, addr);
    *r = uid < 0 ? STORE_ERROR : uid == 0 ? STORE_NOTFOUND : STORE_OK;
    return uid;
}

/* ------------------------------------------------------------- mailboxes */

int store_mailbox_list(struct store *s, const char *address, store_mailbox_cb cb, void *arg)
{
    int r;
    int64_t uid = reader_user(s, address, &r);
    if (r != STORE_OK)
        return r;
    /* Flags are space-separated and, like every IMAP flag, case-insensitive:
     * LIKE compares ASCII case-insensitively and '\' is not special in it. */
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT x.name, x.special_use, x.uidvalidity, x.uidnext, x.highestmodseq,"
        " EXISTS (SELECT 1 FROM subscriptions u WHERE u.user_id = x.user_id"
        "   AND u.name = x.name), count(m.id),"
        " coalesce(sum(' ' || m.flags || ' ' NOT LIKE '% \\Seen %'), 0),"
        " coalesce(sum(m.size), 0)"
        " FROM mailboxes x LEFT JOIN messages m ON m.mailbox_id = x.id"
        " WHERE x.user_id = ?1 GROUP BY x.id"
        " ORDER BY x.name <> 'INBOX', x.name");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, uid);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_mailbox_info m = {
            .name = store_col_text(st, 0),
            .special_use = store_col_text(st, 1),
            .uidvalidity = (uint32_t)sqlite3_column_int64(st, 2),
            .uidnext = (uint32_t)sqlite3_column_int64(st, 3),
            .highestmodseq = (uint64_t)sqlite3_column_int64(st, 4),
            .subscribed = sqlite3_column_int(st, 5) != 0,
            .messages = (unsigned)sqlite3_column_int64(st, 6),
            .unseen = (unsigned)sqlite3_column_int64(st, 7),
            .size = (uint64_t)sqlite3_column_int64(st, 8),
        };
        cb(arg, &m);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "mailbox_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* -------------------------------------------------------------- messages */

int store_message_list(struct store *s, const char *address, const char *mailbox,
                       store_message_cb cb, void *arg)
{
    if (!mailbox || !*mailbox)
        return STORE_INVALID;
    int r;
    int64_t uid = reader_user(s, address, &r);
    if (r != STORE_OK)
        return r;
    /* RFC 3501 §5.1: INBOX is case-insensitive, every other name is not. */
    if (strcasecmp(mailbox, "INBOX") == 0)
        mailbox = "INBOX";
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT id FROM mailboxes WHERE user_id = ?1 AND name = ?2");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, uid);
    sqlite3_bind_text(st, 2, mailbox, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t mbox = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_db_log(s->rd, "message_list");
        return STORE_ERROR;
    }
    if (mbox == 0)
        return STORE_NOTFOUND;

    st = store_db_prepare(s->rd,
        "SELECT uid, modseq, internal_date, size, flags FROM messages"
        " WHERE mailbox_id = ?1 ORDER BY uid");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mbox);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_message_info m = {
            .mailbox_id = mbox,
            .uid = (uint32_t)sqlite3_column_int64(st, 0),
            .modseq = (uint64_t)sqlite3_column_int64(st, 1),
            .internal_date = sqlite3_column_int64(st, 2),
            .size = (uint64_t)sqlite3_column_int64(st, 3),
            .flags = store_col_text(st, 4),
        };
        cb(arg, &m);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "message_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/*
 * Inflates a blob into a buffer of exactly size bytes (plus a NUL that is
 * not counted). The buffer is one byte larger than size, so a stream that
 * inflates to more than size bytes is caught as corrupt, not truncated.
 */
int store_inflate_blob(const void *z, size_t zlen, uint64_t size, char **data, size_t *len)
{
    if (size > STORE_READ_MAX || zlen > ULONG_MAX) {
        log_event(PLOG_ERROR, 0, "event=store_error op=message_read error=blob_too_large"
                  " size=%llu", (unsigned long long)size);
        return STORE_ERROR;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf)
        return STORE_ERROR;
    uLongf out = (uLongf)size + 1;
    int zr = uncompress((Bytef *)buf, &out, z ? z : (const Bytef *)"", (uLong)zlen);
    if (zr != Z_OK || out != size) {
        log_event(PLOG_ERROR, 0, "event=store_error op=message_read error=corrupt_blob"
                  " zlib=%d size=%llu inflated=%llu", zr, (unsigned long long)size,
                  (unsigned long long)out);
        free(buf);
        return STORE_ERROR;
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return STORE_OK;
}

int store_message_read(struct store *s, int64_t mailbox_id, uint32_t uid,
                       char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (mailbox_id <= 0 || uid == 0)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT b.data, b.size FROM messages m JOIN blobs b ON b.id = m.blob_id"
        " WHERE m.mailbox_id = ?1 AND m.uid = ?2");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    int r;
    if (rc == SQLITE_ROW) {
        const void *z = sqlite3_column_blob(st, 0);
        size_t zlen = (size_t)sqlite3_column_bytes(st, 0);
        r = store_inflate_blob(z, zlen, (uint64_t)sqlite3_column_int64(st, 1), data, len);
    } else if (rc == SQLITE_DONE) {
        r = STORE_NOTFOUND;
    } else {
        store_db_log(s->rd, "message_read");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return r;
}
