/*
 * EXPUNGE, UID EXPUNGE (RFC 4315 §2.1), CLOSE and UNSELECT (RFC 3691).
 * Expunged messages leave tombstones in the store; every session learns of
 * them from its next report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-int.h"

static void deselect(struct imap_session *s)
{
    imap_view_free(&s->view);
    imap_saved_clear(s);
    s->state = IMAP_AUTH;
}

static void expunge_done(void *arg, int result, const uint32_t *uids, size_t n, uint64_t modseq)
{
    (void)uids;
    (void)n;
    (void)modseq;
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    if (result != STORE_OK) {
        imap_done_store_error(s, result, s->req.name);
    } else if (strcmp(s->req.name, "CLOSE") == 0) {
        deselect(s); /* §6.4.2: no untagged EXPUNGE for CLOSE */
        imap_done(s, "OK", "CLOSE completed");
    } else {
        /* The command's own EXPUNGEs are owed now, pipelining or not. */
        imap_view_report(s, true);
        imap_done(s, "OK", "%s completed", s->req.name);
    }
    conn_flush(s->conn);
}

static void expunge(struct imap_session *s, const uint32_t *uids, size_t n)
{
    imap_wait(s);
    int res = store_expunge(s->store, s->view->id, uids, n, expunge_done, s);
    if (res != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, res, s->req.name);
    }
}

void imap_cmd_expunge(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs != (r->uid ? 1u : 0u)) {
        imap_bad(s, r->uid ? "UID EXPUNGE takes a UID set" : "EXPUNGE takes no arguments");
        return;
    }
    if (s->view->readonly) {
        imap_done(s, "NO", "[READ-ONLY] The mailbox is open read-only (EXAMINE)");
        return;
    }
    if (!r->uid) {
        expunge(s, NULL, 0);
        return;
    }
    uint32_t *uids;
    size_t n;
    if (imap_view_select_set(s, r->args, true, &uids, &n) != 0)
        return;
    if (n == 0)
        imap_done(s, "OK", "UID EXPUNGE completed");
    else
        expunge(s, uids, n);
    free(uids);
}

/* CLOSE expunges (unless read-only) and deselects; UNSELECT only deselects. */
void imap_cmd_close(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs) {
        imap_bad(s, "%s takes no arguments", r->name);
        return;
    }
    if (strcmp(r->name, "CLOSE") == 0 && !s->view->readonly) {
        expunge(s, NULL, 0);
        return;
    }
    deselect(s);
    imap_done(s, "OK", "%s completed", r->name);
}
