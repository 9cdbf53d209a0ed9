/*
 * COPY, MOVE (RFC 6851) and their UID forms, with UIDPLUS COPYUID (RFC
 * 4315). The store copies in one durable transaction; MOVE also expunges
 * the sources in it, and the EXPUNGEs are reported before the tagged OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-int.h"

static void copy_done(void *arg, int result, uint32_t uidvalidity, const uint32_t *src,
                      const uint32_t *dst, size_t n)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    bool move = strstr(s->req.name, "MOVE") != NULL;
    if (result == STORE_NOTFOUND) {
        imap_done(s, "NO", "[TRYCREATE] Mailbox does not exist");
    } else if (result != STORE_OK) {
        imap_done_store_error(s, result, s->req.name);
    } else {
        struct buf code = { 0 };
        if (n) {
            buf_printf(&code, SIZE_MAX, "[COPYUID %u ", uidvalidity);
            imap_buf_set(&code, src, n);
            buf_append(&code, " ", 1, SIZE_MAX);
            imap_buf_set(&code, dst, n);
            buf_append(&code, "] ", 2, SIZE_MAX);
        }
        const char *c = code.data ? code.data : "";
        if (move) {
            /* RFC 6851 §4.3: COPYUID goes untagged, before the EXPUNGEs. */
            imap_untagged(s, "OK %sMoved", c);
            imap_view_report(s, true);
            imap_done(s, "OK", "MOVE completed");
        } else {
            imap_done(s, "OK", "%sCOPY completed", c);
        }
        buf_free(&code);
    }
    conn_flush(s->conn);
}

void imap_cmd_copy(struct imap_session *s, const struct imap_request *r)
{
    bool move = strstr(r->name, "MOVE") != NULL;
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (r->nargs != 2) {
        imap_bad(s, "%s takes a sequence set and a mailbox name", r->name);
        return;
    }
    if (!imap_arg_mailbox(s, r->args->next, name, sizeof name))
        return;
    if (move && s->view->readonly) {
        imap_done(s, "NO", "[READ-ONLY] The mailbox is open read-only (EXAMINE)");
        return;
    }
    uint32_t *uids;
    size_t n;
    if (imap_view_select_set(s, r->args, r->uid, &uids, &n) != 0)
        return;
    struct store_mailbox dst;
    int res = store_mailbox_get(s->store, s->user_id, name, &dst);
    if (res == STORE_NOTFOUND) {
        free(uids);
        imap_done(s, "NO", "[TRYCREATE] Mailbox does not exist");
        return;
    }
    if (res == STORE_OK && dst.id == s->view->id && move) {
        free(uids);
        imap_done(s, "NO", "[CANNOT] Cannot move messages into the mailbox they are in");
        return;
    }
    if (res == STORE_OK && n) {
        imap_wait(s);
        res = store_copy(s->store, s->view->id, uids, n, dst.id, move, copy_done, s);
        if (res != STORE_OK)
            imap_resume(s);
    } else if (res == STORE_OK) {
        imap_done(s, "OK", "%s completed", r->name);
    }
    free(uids);
    if (res != STORE_OK)
        imap_done_store_error(s, res, r->name);
}
