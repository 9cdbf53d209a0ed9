/*
 * The end of a transaction: trace headers (RFC 5321 §4.4) written before
 * the client's bytes, then one store_deliver() whose completion sends the
 * final reply. The 250 goes out only after the store says the message is
 * durable; until then input is paused (RFC 2920 §3.1: DATA ends a
 * pipelined group, so the client waits for this reply anyway).
 */
#include <inttypes.h>
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

int smtp_trace_headers(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    struct buf *b = &t->msg;
    size_t cap = s->cfg->max_message_size + SMTP_TRACE_ROOM;
    char peer[64], date[64], id[48];
    peer_literal(s, peer, sizeof peer);
    rfc5322_date(time(NULL), date, sizeof date);
    txn_id(s, id, sizeof id);

    /* §4.4: Return-Path is added by the final delivery; ours is final. */
    int r = buf_printf(b, cap, "Return-Path: <%s>\r\n", t->from.null ? "" : t->from.address);
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

void smtp_deliver(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    struct store_delivery d = {
        .data = t->msg.data,
        .len = t->msg.len,
        .internal_date = (int64_t)time(NULL),
        .mail_from = t->from.null ? "" : t->from.address,
        .user_ids = t->user_ids,
        .n_users = t->n_users,
        .remote = (const char *const *)t->remote,
        .n_remote = t->n_remote,
    };
    int r = store_deliver(s->store, &d, on_stored, s);
    if (r != STORE_OK) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=delivery result=%s", store_strerror(r));
        smtp_reply(s, "451 4.3.0 Temporary failure storing the message, try again later");
        smtp_after_transaction(s);
        return;
    }
    s->committing = true;
    smtp_enter(s, PHASE_WAIT);
    conn_pause(s->conn);
}
