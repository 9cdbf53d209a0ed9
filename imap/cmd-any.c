/*
 * Commands valid in any state or without a mailbox of their own:
 * CAPABILITY, NOOP, CHECK, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161),
 * NAMESPACE (RFC 2342), GETQUOTA / GETQUOTAROOT (RFC 9208), COMPRESS (RFC 4978).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

static bool no_args(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs == 0)
        return true;
    imap_bad(s, "%s takes no arguments", r->name);
    return false;
}

void imap_cmd_capability(struct imap_session *s, const struct imap_request *r)
{
    if (!no_args(s, r))
        return;
    struct buf b = { 0 };
    imap_buf_capability(s, &b);
    imap_printf(s, "* CAPABILITY %.*s\r\n", (int)b.len, b.data ? b.data : "");
    buf_free(&b);
    imap_done(s, "OK", "Capability completed");
}

/* NOOP and CHECK exist to collect pending updates (RFC 9051 §6.1.2). */
void imap_cmd_noop(struct imap_session *s, const struct imap_request *r)
{
    if (no_args(s, r))
        imap_done(s, "OK", "%s completed", r->name);
}

void imap_cmd_check(struct imap_session *s, const struct imap_request *r)
{
    imap_cmd_noop(s, r);
}

void imap_cmd_logout(struct imap_session *s, const struct imap_request *r)
{
    if (!no_args(s, r))
        return;
    imap_untagged(s, "BYE Logging out");
    imap_tagged(s, "OK", "Logout completed");
    log_event(PLOG_INFO, conn_id(s->conn), "event=logout proto=imap user=%s",
              s->user[0] ? s->user : "-");
    imap_close(s);
}

/* RFC 2971: the client's ID is logged, ours is answered. */
void imap_cmd_id(struct imap_session *s, const struct imap_request *r)
{
    const struct imap_arg *a = r->args;
    if (r->nargs != 1 || (a->type != IMAP_ARG_LIST && a->type != IMAP_ARG_NIL)) {
        imap_bad(s, "ID takes a parameter list or NIL");
        return;
    }
    if (a->type == IMAP_ARG_LIST) {
        if (a->count % 2 != 0 || a->count > 60) {
            imap_bad(s, "ID parameters are field-value pairs (at most 30)");
            return;
        }
        for (const struct imap_arg *f = a->child; f && f->next; f = f->next->next) {
            const char *k, *val;
            size_t kl, vl;
            char kb[64], vb[128];
            if (!imap_arg_string(f, &k, &kl) || !imap_arg_nstring(f->next, &val, &vl)) {
                imap_bad(s, "ID fields are strings");
                return;
            }
            log_event(PLOG_DEBUG, conn_id(s->conn), "event=client-id %s=%s",
                      log_value(k, kb, sizeof kb), log_value(val ? val : "NIL", vb, sizeof vb));
        }
    }
    imap_untagged(s, "ID (\"name\" \"Petrel\" \"vendor\" \"Petrel\")");
    imap_done(s, "OK", "ID completed");
}

/* RFC 5161: ENABLE names extensions; the answer lists those it turned on.
 * QRESYNC implies CONDSTORE (RFC 7162 §3.2.3). */
void imap_cmd_enable(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs == 0) {
        imap_bad(s, "ENABLE needs at least one capability");
        return;
    }
    for (const struct imap_arg *a = r->args; a; a = a->next) {
        if (a->type != IMAP_ARG_ATOM) {
            imap_bad(s, "ENABLE takes capability names");
            return;
        }
    }
    char enabled[96] = "";
    for (const struct imap_arg *a = r->args; a; a = a->next) {
        bool qresync = imap_arg_is(a, "QRESYNC");
        if ((qresync || imap_arg_is(a, "CONDSTORE")) && !s->condstore) {
            imap_condstore_on(s);
            strcat(enabled, " CONDSTORE");
        }
        if (qresync && !s->qresync) {
            s->qresync = true;
            strcat(enabled, " QRESYNC");
        }
        /* RFC 9051 §6.3.1: from now on IMAP4rev2 rules, UTF-8 mailbox names
         * (§5.1) and strings, ESEARCH results, no \Recent. */
        if (imap_arg_is(a, "IMAP4rev2") && !s->rev2) {
            s->rev2 = s->utf8 = true;
            imap_parser_set_flags(s->parser, IMAP_PARSE_STREAM_MESSAGES | IMAP_PARSE_UTF8);
            strcat(enabled, " IMAP4rev2");
        }
    }
    imap_untagged(s, "ENABLED%s", enabled);
    imap_done(s, "OK", "Enabled");
}

/* One personal namespace, "" with delimiter "/" (RFC 2342 §5). */
void imap_cmd_namespace(struct imap_session *s, const struct imap_request *r)
{
    if (!no_args(s, r))
        return;
    imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
    imap_done(s, "OK", "Namespace completed");
}

/*
 * RFC 9208: one quota root "" per user over every mailbox, resource STORAGE
 * in KiB. GETQUOTAROOT names a mailbox (which must exist), GETQUOTA a root.
 */
void imap_cmd_getquota(struct imap_session *s, const struct imap_request *r)
{
    bool root = strcmp(r->name, "GETQUOTAROOT") == 0;
    if (r->nargs != 1) {
        imap_bad(s, "%s takes one argument", r->name);
        return;
    }
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (root) {
        if (!imap_arg_mailbox(s, r->args, name, sizeof name))
            return;
        struct store_mailbox mb;
        int res = store_mailbox_get(s->store, s->user_id, name, &mb);
        if (res != STORE_OK) {
            imap_done_store_error(s, res, "GETQUOTAROOT");
            return;
        }
    } else {
        const char *q;
        size_t ql;
        if (!imap_arg_astring(r->args, &q, &ql)) {
            imap_bad(s, "Quota root expected");
            return;
        }
        if (ql != 0) {
            imap_done(s, "NO", "[NONEXISTENT] No such quota root; the user's root is \"\"");
            return;
        }
    }
    uint64_t used, limit;
    if (store_quota_get(s->store, s->user_id, &used, &limit) != STORE_OK) {
        imap_done_store_error(s, STORE_ERROR, r->name);
        return;
    }
    if (root) {
        imap_printf(s, "* QUOTAROOT ");
        imap_write_mailbox(s, name);
        imap_printf(s, " \"\"\r\n");
    }
    if (limit)
        imap_untagged(s, "QUOTA \"\" (STORAGE %llu %llu)", (unsigned long long)(used / 1024),
                      (unsigned long long)(limit / 1024));
    else
        imap_untagged(s, "QUOTA \"\" ()");
    imap_done(s, "OK", "%s completed", r->name);
}

/* RFC 4978: the OK goes out as it is, then DEFLATE both ways. */
void imap_cmd_compress(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs != 1 || r->args->type != IMAP_ARG_ATOM) {
        imap_bad(s, "COMPRESS takes a mechanism name");
        return;
    }
    if (s->compressed) {
        imap_done(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
        return;
    }
    if (!imap_arg_is(r->args, "DEFLATE")) {
        imap_done(s, "NO", "[CANNOT] Unknown compression mechanism; DEFLATE is supported");
        return;
    }
    imap_done(s, "OK", "DEFLATE active");
    if (conn_compress(s->conn) != 0) {
        imap_close(s);
        return;
    }
    s->compressed = true;
}
