/*
 * STORE and UID STORE (RFC 9051 §6.4.6): FLAGS, +FLAGS, -FLAGS, each with
 * .SILENT. The store changes the flags in one durable transaction; the
 * untagged FETCH answers name the messages whose flags changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

struct flags_op {
    bool silent;
    bool conditional;          /* UNCHANGEDSINCE given */
    uint64_t unchangedsince;
};

/* [MODIFIED set]: sequence numbers for STORE, UIDs for UID STORE (RFC 7162 §3.1.3). */
static void modified_code(struct imap_session *s, const uint32_t *uids, size_t n, struct buf *b)
{
    if (n == 0)
        return;
    uint32_t *v = malloc(n * sizeof *v);
    if (!v)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = s->req.uid ? uids[i] : imap_view_msn(s->view, uids[i]);
        if (id)
            v[k++] = id;
    }
    buf_printf(b, SIZE_MAX, "[MODIFIED ");
    imap_buf_set(b, v, k);
    buf_printf(b, SIZE_MAX, "] ");
    free(v);
}

/* One changed message: FLAGS unless silent; UID for UID STORE; MODSEQ once
 * CONDSTORE is on, even when silent (RFC 7162 §3.1.3 example 3). */
static void report_change(struct imap_session *s, const struct store_flag_change *c, bool silent)
{
    uint32_t msn = imap_view_msn(s->view, c->uid);
    if (!msn || (silent && !s->condstore))
        return;
    struct buf b = { 0 };
    buf_printf(&b, SIZE_MAX, "* %u FETCH (", msn);
    if (s->req.uid)
        buf_printf(&b, SIZE_MAX, "UID %u ", c->uid);
    if (!silent)
        buf_printf(&b, SIZE_MAX, "FLAGS (%s) ", c->flags);
    if (s->condstore)
        buf_printf(&b, SIZE_MAX, "MODSEQ (%llu) ", (unsigned long long)c->modseq);
    b.len--; /* the last space */
    buf_printf(&b, SIZE_MAX, ")\r\n");
    imap_write(s, b.data, b.len);
    buf_free(&b);
}

static void flags_done(void *arg, int result, const struct store_flags_result *r)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    if (result != STORE_OK) {
        imap_done_store_error(s, result, "STORE");
        conn_flush(s->conn);
        return;
    }
    struct flags_op *op = s->op;
    /* This session reports its own changes here, not again from the event. */
    struct imap_quiet *q = realloc(s->quiet, (r->n_changed ? r->n_changed : 1) * sizeof *q);
    if (q)
        s->quiet = q;
    for (size_t i = 0; i < r->n_changed; i++) {
        if (q)
            s->quiet[s->n_quiet++] = (struct imap_quiet){ r->changed[i].uid,
                                                          r->changed[i].modseq };
        report_change(s, &r->changed[i], op->silent);
    }
    struct buf code = { 0 };
    modified_code(s, r->failed, r->n_failed, &code);
    imap_done(s, "OK", "%.*sSTORE completed", (int)code.len, code.data ? code.data : "");
    buf_free(&code);
    conn_flush(s->conn);
}

static bool parse_item(const struct imap_arg *a, enum store_flags_mode *mode, bool *silent)
{
    if (!a || a->type != IMAP_ARG_ATOM)
        return false;
    const char *p = a->str;
    *mode = STORE_FLAGS_REPLACE;
    if (*p == '+' || *p == '-')
        *mode = *p++ == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
    if (strcasecmp(p, "FLAGS.SILENT") == 0)
        *silent = true;
    else if (strcasecmp(p, "FLAGS") == 0)
        *silent = false;
    else
        return false;
    return true;
}

void imap_cmd_store(struct imap_session *s, const struct imap_request *r)
{
    struct flags_op *op = calloc(1, sizeof *op);
    if (!op) {
        imap_done_store_error(s, STORE_ERROR, "STORE");
        return;
    }
    s->op = op;
    s->op_free = free;
    enum store_flags_mode mode;
    const struct imap_arg *item = r->nargs >= 3 ? r->args->next : NULL;
    /* STORE set [(UNCHANGEDSINCE n)] item flags (RFC 7162 §3.1.3). */
    if (item && item->type == IMAP_ARG_LIST) {
        const struct imap_arg *m = item->child;
        if (item->count != 2 || !imap_arg_is(m, "UNCHANGEDSINCE") ||
            m->next->type != IMAP_ARG_ATOM ||
            !imap_parse_modseq(m->next->str, m->next->len, true, &op->unchangedsince)) {
            imap_bad(s, "STORE modifiers: (UNCHANGEDSINCE mod-sequence)");
            return;
        }
        op->conditional = true;
        imap_condstore_on(s);
        item = item->next;
    }
    if (!parse_item(item, &mode, &op->silent)) {
        imap_bad(s, "STORE takes a sequence set, FLAGS, +FLAGS or -FLAGS (.SILENT) and flags");
        return;
    }
    struct imap_flags flags;
    if (imap_parse_flags(imap_parser_arena(s->parser), item->next, &flags) != 0) {
        imap_bad(s, "Invalid flags (\\Recent cannot be stored)");
        return;
    }
    if (s->view->readonly) {
        imap_done(s, "NO", "[READ-ONLY] The mailbox is open read-only (EXAMINE)");
        return;
    }
    struct buf fl = { 0 };
    if (imap_flags_string(&flags, &fl) != 0) {
        buf_free(&fl);
        imap_done(s, "NO", "[LIMIT] Too many flags");
        return;
    }
    uint32_t *uids;
    size_t n;
    if (imap_view_select_set(s, r->args, r->uid, &uids, &n) != 0) {
        buf_free(&fl);
        return;
    }
    if (n == 0) {
        free(uids);
        buf_free(&fl);
        imap_done(s, "OK", "STORE completed");
        return;
    }
    if (op->conditional && op->unchangedsince == 0) {
        /* Every message has a modseq above 0: all fail, none changes. */
        struct buf code = { 0 };
        modified_code(s, uids, n, &code);
        imap_done(s, "OK", "%.*sSTORE completed", (int)code.len, code.data ? code.data : "");
        buf_free(&code);
        free(uids);
        buf_free(&fl);
        return;
    }
    imap_wait(s);
    int res = store_flags(s->store, s->view->id, uids, n, mode, fl.data, op->unchangedsince,
                          flags_done, s);
    free(uids);
    buf_free(&fl);
    if (res != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, res, "STORE");
    }
}
