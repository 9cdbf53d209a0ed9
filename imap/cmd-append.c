/*
 * APPEND (RFC 9051 §6.3.12) with UIDPLUS APPENDUID (RFC 4315) and
 * APPENDLIMIT (RFC 7889). The message literal is streamed by the parser
 * into the session's literal buffer; the store makes it durable before OK.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imap/imap-int.h"

/*
 * Before "+" for a synchronising message literal: a message over the limit
 * or a mailbox that does not exist is refused now, so the client does not
 * send the bytes (RFC 7889 §4 [TOOBIG], RFC 9051 §6.3.12 [TRYCREATE]).
 */
bool imap_append_literal_ok(struct imap_session *s, uint64_t size)
{
    const struct imap_command *cmd = imap_parser_command(s->parser);
    s->req.tag = cmd->tag;
    s->req.name = "APPEND";
    if (s->state == IMAP_NOTAUTH) {
        imap_bad(s, "Log in first");
        return false;
    }
    if (size > s->cfg->max_message_size) {
        imap_done(s, "NO", "[TOOBIG] Message larger than %llu bytes",
                  (unsigned long long)s->cfg->max_message_size);
        return false;
    }
    char name[STORE_MAILBOX_NAME_MAX + 1];
    const char *str;
    size_t len;
    struct store_mailbox mb;
    if (cmd->args && imap_arg_astring(cmd->args, &str, &len) && len < sizeof name &&
        (imap_mailbox_is_inbox(str, len) || imap_utf7_decode(str, len, name, sizeof name) >= 0) &&
        store_mailbox_get(s->store, s->user_id, imap_mailbox_is_inbox(str, len) ? "INBOX" : name,
                          &mb) == STORE_NOTFOUND) {
        imap_done(s, "NO", "[TRYCREATE] Mailbox does not exist");
        return false;
    }
    return true;
}

static void append_done(void *arg, int result, uint32_t uidvalidity, uint32_t uid)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    if (result == STORE_OK)
        imap_done(s, "OK", "[APPENDUID %u %u] APPEND completed", uidvalidity, uid);
    else if (result == STORE_NOTFOUND)
        imap_done(s, "NO", "[TRYCREATE] Mailbox does not exist");
    else
        imap_done_store_error(s, result, "APPEND");
    conn_flush(s->conn);
}

void imap_cmd_append(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    const struct imap_arg *a = r->args;
    if (r->nargs < 2 || r->nargs > 4) {
        imap_bad(s, "APPEND takes a mailbox, optional flags and date, and a message literal");
        return;
    }
    if (!imap_arg_mailbox(s, a, name, sizeof name))
        return;
    a = a->next;
    struct imap_flags flags = { 0 };
    if (a->type == IMAP_ARG_LIST) {
        if (imap_parse_flags(imap_parser_arena(s->parser), a, &flags) != 0) {
            imap_bad(s, "Invalid flag list");
            return;
        }
        a = a->next;
    }
    int64_t date = (int64_t)time(NULL);
    int zone;
    if (a && a->type == IMAP_ARG_QUOTED) {
        if (!imap_parse_datetime(a->str, a->len, &date, &zone)) {
            imap_bad(s, "Invalid date-time (like \"17-Jul-1996 02:44:25 -0700\")");
            return;
        }
        a = a->next;
    }
    if (!a || a->type != IMAP_ARG_LITERAL || !a->streamed || a->next) {
        imap_bad(s, "APPEND takes one message literal (MULTIAPPEND is not supported)");
        return;
    }
    if (a->len == 0) {
        imap_done(s, "NO", "Cannot store an empty message");
        return;
    }
    struct buf fl = { 0 };
    if (imap_flags_string(&flags, &fl) != 0) {
        buf_free(&fl);
        imap_done(s, "NO", "[LIMIT] Too many flags");
        return;
    }
    struct store_append ap = {
        .user_id = s->user_id,
        .mailbox = name,
        .data = s->literal.data,
        .len = s->literal.len,
        .flags = fl.data,
        .internal_date = date,
    };
    imap_wait(s);
    int res = store_append(s->store, &ap, append_done, s);
    buf_free(&fl);
    if (res != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, res, "APPEND");
    }
}
