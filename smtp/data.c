/*
 * Message transfer: DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC 3030).
 *
 * Smuggling defence: only <CRLF>.<CRLF> ends DATA. A bare LF or bare CR
 * anywhere in the message makes the whole message refused (nothing is
 * delivered), and a bare LF never starts a line, so "\n.\r\n" or "\n.\n"
 * cannot end the data early.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp-int.h"

static void append(struct smtp_session *s, const char *p, size_t n)
{
    struct smtp_txn *t = s->txn;
    if (t->too_big || n == 0)
        return;
    if (t->msg.len - t->body_start + n > s->cfg->max_message_size ||
        buf_append(&t->msg, p, n, s->cfg->max_message_size + SMTP_HEAD_ROOM) != 0) {
        t->too_big = true;
        buf_free(&t->msg); /* nothing more will be stored: give the memory back now */
    }
}

void smtp_cmd_data(struct smtp_session *s, const char *args, size_t len)
{
    struct smtp_txn *t = s->txn;
    if (!t) {
        smtp_error(s, "503 5.5.1 Need MAIL command");
        return;
    }
    if (t->bdat) {
        smtp_error(s, "503 5.5.1 DATA not allowed after BDAT");
        return;
    }
    if (t->n_rcpt == 0) {
        /* §3.3: DATA with no accepted recipient. */
        smtp_error(s, "554 5.5.1 No valid recipients");
        return;
    }
    if (smtp_message_start(s) != 0) {
        smtp_reply(s, "451 4.3.0 Out of memory");
        return;
    }
    t->dec = (struct smtp_data_decoder){ 0 };
    smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    smtp_enter(s, PHASE_DATA);
}

/* The message is complete: refuse it, or check it and hand it to the store. */
static void end_of_message(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    if (t->bare_eol || t->dec.bare_eol) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=bare-eol peer=%s", conn_peer_ip(s->conn));
        smtp_reply(s, "550 5.6.0 Message refused: bare CR or LF; lines must end with CRLF");
        smtp_after_transaction(s);
    } else if (t->too_big) {
        smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
        smtp_after_transaction(s);
    } else {
        smtp_checks_message(s);
    }
}

static void sink(void *arg, const char *p, size_t n)
{
    append(arg, p, n);
}

bool smtp_read_data(struct smtp_session *s)
{
    const char *p;
    size_t n;
    if (conn_getbytes(s->conn, SIZE_MAX, &p, &n) != CONN_OK)
        return false;
    bool done;
    size_t used = smtp_data_decode(&s->txn->dec, p, n, sink, s, &done);
    if (!done)
        return true;
    /* Bytes after the end belong to the next commands; hand them back. */
    if (used < n)
        conn_unget(s->conn, n - used);
    end_of_message(s);
    return true;
}

/* ------------------------------------------------------------------ BDAT */

static bool parse_bdat(const char *args, size_t len, uint64_t *size, bool *last)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && args[i] >= '0' && args[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(args[i++] - '0');
    }
    if (i == 0)
        return false;
    *size = v;
    *last = false;
    if (i == len)
        return true;
    if (args[i] != ' ')
        return false;
    while (i < len && args[i] == ' ')
        i++;
    if (len - i == 4 && strncasecmp(args + i, "LAST", 4) == 0) {
        *last = true;
        return true;
    }
    return false;
}

/*
 * RFC 3030 §2: the chunk is read even when the command fails, so the
 * stream stays in step; a transaction whose chunk failed refuses the rest.
 */
void smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len)
{
    uint64_t size;
    bool last;
    if (!parse_bdat(args, len, &size, &last)) {
        /* Without a size we cannot tell where the chunk ends: give up. */
        smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
        smtp_close(s);
        return;
    }
    if (!s->txn) {
        s->txn = calloc(1, sizeof *s->txn);
        if (!s->txn) {
            smtp_close(s);
            return;
        }
        s->txn->bdat_failed = true; /* read and refuse: 503 below */
        s->txn->from.null = true;
    } else if (!s->txn->bdat) {
        if (s->txn->n_rcpt > 0 && smtp_message_start(s) != 0) {
            smtp_reply(s, "451 4.3.0 Out of memory");
            smtp_close(s);
            return;
        }
        s->txn->bdat = true;
        if (s->txn->n_rcpt == 0)
            s->txn->bdat_failed = true;
    }
    s->txn->chunk_left = size;
    s->txn->bdat_last = last;
    smtp_enter(s, PHASE_BDAT);
}

static void check_bare(struct smtp_txn *t, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t->prev_cr && p[i] != '\n')
            t->bare_eol = true;
        if (!t->prev_cr && p[i] == '\n')
            t->bare_eol = true;
        t->prev_cr = p[i] == '\r';
    }
}

static void end_of_chunk(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    uint64_t received = t->too_big ? 0 : t->msg.len - t->body_start;
    if (t->bdat_failed) {
        bool nothing = t->n_rcpt == 0;
        smtp_error(s, nothing && t->msg.len == 0 && t->from.null && !t->bdat
                          ? "503 5.5.1 Need MAIL command"
                          : "554 5.5.1 No valid recipients or earlier chunk refused");
        if (t->bdat_last || !t->bdat)
            smtp_after_transaction(s);
        else
            smtp_enter(s, PHASE_COMMAND);
        return;
    }
    if (t->too_big) {
        smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
        t->bdat_failed = true;
        if (t->bdat_last)
            smtp_after_transaction(s);
        else
            smtp_enter(s, PHASE_COMMAND);
        return;
    }
    if (!t->bdat_last) {
        smtp_reply(s, "250 2.0.0 %" PRIu64 " octets received", received);
        smtp_enter(s, PHASE_COMMAND);
        return;
    }
    if (t->prev_cr)
        t->bare_eol = true;
    end_of_message(s);
}

bool smtp_read_bdat(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    if (t->chunk_left > 0) {
        const char *p;
        size_t n;
        if (conn_getbytes(s->conn, t->chunk_left > SIZE_MAX ? SIZE_MAX : (size_t)t->chunk_left,
                          &p, &n) != CONN_OK)
            return false;
        t->chunk_left -= n;
        if (!t->bdat_failed) {
            check_bare(t, p, n);
            append(s, p, n);
        }
        if (t->chunk_left > 0)
            return true;
    }
    end_of_chunk(s);
    return true;
}
