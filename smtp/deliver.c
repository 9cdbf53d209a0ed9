/*
 * The end of a transaction: the header fields we prepend (Return-Path and
 * Received, RFC 5321 §4.4; Authentication-Results, RFC 8601 §5) written
 * into the room kept in front of the client's bytes, then one
 * store_deliver() whose completion sends the final reply. The 250 goes out
 * only after the store says the message is durable; until then input is
 * paused (RFC 2920 §3.1: DATA ends a pipelined group, so the client waits
 * for this reply anyway).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smtp/smtp-int.h"

/* RFC 5322 §3.3 date-time, in local time with its numeric zone. */
static void rfc5322_date(time_t t, char *out, size_t len)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* RFC 3848 (and RFC 6531 §3.7.3 for SMTPUTF8) "with" protocol names. */
static const char *with_protocol(const struct smtp_session *s)
{
    static const char *const names[2][2][2] = {
        /* [utf8][tls][auth] */
        { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
        { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
    };
    if (!s->esmtp)
        return "SMTP";
    bool utf8 = s->txn->params.smtputf8;
    bool tls = conn_is_tls(s->conn);
    bool auth = s->user[0] != 0;
    return names[utf8][tls][auth];
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3 address literal). */
static void peer_literal(const struct smtp_session *s, char *out, size_t len)
{
    const char *ip = conn_peer_ip(s->conn);
    snprintf(out, len, strchr(ip, ':') ? "[IPv6:%s]" : "[%s]", ip);
}

/* The session's id for this transaction, also logged: "<conn>.<n>". */
static void txn_id(const struct smtp_session *s, char *out, size_t len)
{
    snprintf(out, len, "%" PRIx64 ".%u", conn_id(s->conn), s->txn_count);
}

int smtp_message_start(struct smtp_session *s)
{
    static const char room[SMTP_HEAD_ROOM];
    struct smtp_txn *t = s->txn;
    if (buf_append(&t->msg, room, sizeof room, s->cfg->max_message_size + SMTP_HEAD_ROOM) != 0)
        return -1;
    t->body_start = t->msg.len;
    return 0;
}

/*
 * The fields we prepend, top down: Return-Path (§4.4: added by the final
 * delivery; ours is final), Authentication-Results above our Received, as
 * RFC 8601's examples have it (the verdict of the hop that received).
 */
static int head_fields(struct smtp_session *s, const char *authres, struct buf *b)
{
    struct smtp_txn *t = s->txn;
    size_t cap = 4 * SMTP_HEAD_ROOM;
    char peer[64], date[64], id[48];
    peer_literal(s, peer, sizeof peer);
    rfc5322_date(time(NULL), date, sizeof date);
    txn_id(s, id, sizeof id);

    int r = buf_printf(b, cap, "Return-Path: <%s>\r\n", t->from.null ? "" : t->from.address);
    if (authres) {
        r |= buf_append(b, "Authentication-Results: ", 24, cap);
        r |= buf_append(b, authres, strlen(authres), cap);
        r |= buf_append(b, "\r\n", 2, cap);
    }
    r |= buf_printf(b, cap, "Received: from %s (%s)\r\n\tby %s (Petrel) with %s id %s",
                    s->helo, peer, s->cfg->hostname, with_protocol(s), id);
    if (conn_is_tls(s->conn))
        r |= buf_printf(b, cap, "\r\n\t(using %s with cipher %s (%d bits))",
                        conn_tls_version(s->conn), conn_tls_cipher(s->conn),
                        conn_tls_bits(s->conn));
    if (s->user[0])
        r |= buf_printf(b, cap, "\r\n\t(authenticated as %s)", s->user);
    /* Naming the recipient of a multi-recipient message would disclose Bcc. */
    if (t->n_rcpt == 1)
        r |= buf_printf(b, cap, "\r\n\tfor <%s>", t->first_rcpt);
    r |= buf_printf(b, cap, "; %s\r\n", date);
    return r ? -1 : 0;
}

/*
 * Puts the fields h just in front of the client's bytes and returns where
 * the message now begins in t->msg, or -1 (out of memory). They fit the
 * room; should they not, the message is moved to make space.
 */
static long long place_head(struct smtp_txn *t, const struct buf *h)
{
    if (h->len > t->body_start) {
        size_t more = h->len - t->body_start;
        if (buf_append(&t->msg, h->data, more, SIZE_MAX) != 0)
            return -1;
        memmove(t->msg.data + t->body_start + more, t->msg.data + t->body_start,
                t->msg.len - more - t->body_start);
        t->body_start += more;
    }
    size_t start = t->body_start - h->len;
    memcpy(t->msg.data + start, h->data, h->len);
    return (long long)start;
}

static void on_stored(void *arg, int result)
{
    struct smtp_session *s = arg;
    s->committing = false;
    if (s->closed) {
        /* The client left before the reply; the message is stored (or not)
         * all the same and it will retry what it did not see acknowledged. */
        smtp_session_free(&s);
        return;
    }
    char id[48];
    txn_id(s, id, sizeof id);
    struct smtp_txn *t = s->txn;
    log_event(result == STORE_OK ? PLOG_INFO : PLOG_WARN, conn_id(s->conn),
              "event=delivery id=%s from=<%s> local=%u remote=%u size=%zu result=%s", id,
              t->from.null ? "" : t->from.address, t->n_users, t->n_remote,
              t->msg.len - t->body_start, store_strerror(result));
    switch (result) {
    case STORE_OK:
        smtp_reply(s, "250 2.0.0 Ok: queued as %s", id);
        break;
    case STORE_QUOTA:
        smtp_reply(s, "452 4.2.2 Mailbox full, try again later");
        break;
    default:
        smtp_reply(s, "451 4.3.0 Temporary failure storing the message, try again later");
        break;
    }
    smtp_after_transaction(s);
    conn_resume(s->conn);
    conn_flush(s->conn);
}

void smtp_refuse_message(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_vprintf(s->conn, fmt, ap);
    va_end(ap);
    conn_write(s->conn, "\r\n", 2);
    smtp_after_transaction(s);
    conn_resume(s->conn);
    conn_flush(s->conn);
}

void smtp_deliver(struct smtp_session *s, const char *authres, bool junk)
{
    struct smtp_txn *t = s->txn;
    struct buf h = { 0 };
    long long start = head_fields(s, authres, &h) == 0 ? place_head(t, &h) : -1;
    buf_free(&h);
    if (start < 0) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=delivery result=out-of-memory");
        smtp_refuse_message(s, "451 4.3.0 Out of memory, try again later");
        return;
    }
    struct store_delivery d = {
        .data = t->msg.data + start,
        .len = t->msg.len - (size_t)start,
        .internal_date = (int64_t)time(NULL),
        .mail_from = t->from.null ? "" : t->from.address,
        .user_ids = t->user_ids,
        .n_users = t->n_users,
        .remote = (const char *const *)t->remote,
        .n_remote = t->n_remote,
        .junk = junk,
    };
    int r = store_deliver(s->store, &d, on_stored, s);
    if (r != STORE_OK) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=delivery result=%s", store_strerror(r));
        smtp_refuse_message(s, "451 4.3.0 Temporary failure storing the message, try again later");
        return;
    }
    s->committing = true;
    smtp_enter(s, PHASE_WAIT);
    conn_pause(s->conn);
}
