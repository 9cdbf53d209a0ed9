/*
 * Mailbox commands: SELECT / EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE /
 * UNSUBSCRIBE, STATUS (RFC 9051 §6.3). LIST and LSUB are in cmd-list.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

static const char system_flags[] = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

static void select_report(struct imap_session *s, const struct store_mailbox *mb,
                          uint32_t first_unseen)
{
    struct imap_view *v = s->view;
    char *keywords = NULL;
    if (store_mailbox_keywords(s->store, mb->id, &keywords) != STORE_OK)
        keywords = NULL;
    const char *kw = keywords ? keywords : "";
    imap_untagged(s, "FLAGS (%s%s%s)", system_flags, *kw ? " " : "", kw);
    imap_untagged(s, "%zu EXISTS", v->count);
    if (s->rev2) {
        /* RFC 9051 §6.3.2: the name as the server spells it, no RECENT/UNSEEN. */
        imap_printf(s, "* LIST () \"/\" ");
        imap_write_mailbox(s, mb->name);
        imap_printf(s, "\r\n");
    } else {
        imap_untagged(s, "0 RECENT");
        if (first_unseen)
            imap_untagged(s, "OK [UNSEEN %u] First unseen", first_unseen);
    }
    if (v->readonly)
        imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
    else
        imap_untagged(s, "OK [PERMANENTFLAGS (%s%s%s \\*)] Flags permitted", system_flags,
                      *kw ? " " : "", kw);
    imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mb->uidvalidity);
    imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", mb->uidnext);
    free(keywords);
}

/* SELECT's optional parameters (RFC 4466 §2.1, RFC 7162 §3.1.8, §3.2.5). */
struct select_params {
    bool qresync;
    uint32_t uidvalidity;
    uint64_t modseq;
    const struct imap_arg *known_uids;
};

static bool parse_select_params(struct imap_session *s, const struct imap_arg *list,
                                struct select_params *p)
{
    for (const struct imap_arg *a = list->child; a; a = a->next) {
        if (imap_arg_is(a, "CONDSTORE")) {
            imap_condstore_on(s);
            continue;
        }
        const struct imap_arg *q = a->next;
        if (!imap_arg_is(a, "QRESYNC") || !q || q->type != IMAP_ARG_LIST || q->count < 2 ||
            q->count > 4) {
            imap_bad(s, "SELECT parameters are CONDSTORE or QRESYNC (uidvalidity modseq ...)");
            return false;
        }
        if (!s->qresync) {
            imap_bad(s, "QRESYNC must be enabled first (ENABLE QRESYNC)");
            return false;
        }
        const struct imap_arg *v = q->child, *m = v->next;
        if (v->type != IMAP_ARG_ATOM || m->type != IMAP_ARG_ATOM ||
            !imap_parse_nz_number(v->str, v->len, &p->uidvalidity) ||
            !imap_parse_modseq(m->str, m->len, false, &p->modseq) ||
            (m->next && m->next->type != IMAP_ARG_ATOM)) {
            imap_bad(s, "Invalid QRESYNC parameters");
            return false;
        }
        p->qresync = true;
        p->known_uids = m->next; /* the seq-match data that may follow is optional help */
        a = q;
    }
    return true;
}

/* RFC 7162 §3.2.5.1: what changed since the client's modseq, known UIDs only. */
static void qresync_report(struct imap_session *s, const struct select_params *p)
{
    struct imap_view *v = s->view;
    struct imap_seqset known = { 0 };
    struct imap_arena *arena = imap_parser_arena(s->parser);
    bool filter = false;
    if (p->known_uids) {
        uint32_t max = imap_view_max_uid(v);
        filter = imap_seqset_parse(arena, p->known_uids->str, p->known_uids->len, 0, &known) == 0 &&
                 (!known.star || imap_seqset_resolve(arena, &known, max ? max : 1, &known) == 0);
    }
    uint32_t *uids = NULL;
    size_t n = 0, k = 0;
    if (store_message_vanished(s->store, v->id, p->modseq, &uids, &n) == STORE_OK) {
        for (size_t i = 0; i < n; i++)
            if (!filter || imap_seqset_contains(&known, uids[i]))
                uids[k++] = uids[i];
        imap_write_vanished(s, true, uids, k);
        free(uids);
    }
    v->dirty = true;
    uint64_t seen = v->seen_modseq;
    v->seen_modseq = p->modseq < seen ? p->modseq : seen;
    imap_view_report(s, false); /* FETCH (UID FLAGS MODSEQ) of what changed */
}

/* SELECT and EXAMINE (§6.3.2, §6.3.3): a failed SELECT leaves no mailbox
 * selected; leaving one selected is announced with [CLOSED] (RFC 7162 §3.2.11). */
void imap_cmd_select(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    struct select_params params = { 0 };
    const struct imap_arg *list = r->nargs == 2 ? r->args->next : NULL;
    if (r->nargs < 1 || r->nargs > 2 || (list && list->type != IMAP_ARG_LIST)) {
        imap_bad(s, "%s takes a mailbox name and optional parameters", r->name);
        return;
    }
    if (!imap_arg_mailbox(s, r->args, name, sizeof name))
        return;
    if (s->view) {
        imap_view_free(&s->view);
        s->state = IMAP_AUTH;
        imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
    }
    imap_saved_clear(s); /* "$" belongs to the mailbox it was made in */
    if (list && !parse_select_params(s, list, &params))
        return;
    struct store_mailbox mb;
    uint32_t first_unseen = 0;
    int res = store_mailbox_get(s->store, s->user_id, name, &mb);
    if (res == STORE_OK)
        res = imap_view_open(s, &mb, strcmp(r->name, "EXAMINE") == 0, &s->view, &first_unseen);
    if (res != STORE_OK) {
        imap_done_store_error(s, res, r->name);
        return;
    }
    s->state = IMAP_SELECTED;
    select_report(s, &mb, first_unseen);
    if (s->condstore)
        imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
                      (unsigned long long)mb.highestmodseq);
    /* A different UIDVALIDITY: the client's cache is void, nothing to resync. */
    if (params.qresync && params.uidvalidity == mb.uidvalidity)
        qresync_report(s, &params);
    imap_done(s, "OK", "[%s] %s completed", s->view->readonly ? "READ-ONLY" : "READ-WRITE",
              r->name);
}

/* ---------------------------------------------------------------- writes */

static void write_done(void *arg, int result)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    if (result == STORE_OK)
        imap_done(s, "OK", "%s completed", s->req.name);
    else
        imap_done_store_error(s, result, s->req.name);
    conn_flush(s->conn);
}

/* CREATE makes the missing parents too (RFC 9051 §6.3.4 SHOULD). */
struct create_op {
    char name[STORE_MAILBOX_NAME_MAX + 1];
    size_t len;
    size_t at;  /* end of the level being created; name[at] is NUL meanwhile */
};

static void create_next(struct imap_session *s);

static void create_done(void *arg, int result)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    struct create_op *op = s->op;
    bool last = op->at == op->len;
    if (last || (result != STORE_OK && result != STORE_EXISTS)) {
        if (result == STORE_OK)
            imap_done(s, "OK", "CREATE completed");
        else
            imap_done_store_error(s, result, "CREATE");
        conn_flush(s->conn);
        return;
    }
    op->name[op->at] = '/';
    create_next(s);
}

static void create_next(struct imap_session *s)
{
    struct create_op *op = s->op;
    char *slash = strchr(op->name + op->at + (op->at ? 1 : 0), '/');
    op->at = slash ? (size_t)(slash - op->name) : strlen(op->name);
    if (slash)
        *slash = 0;
    imap_wait(s);
    if (store_mailbox_create(s->store, s->user_id, op->name, NULL, create_done, s) != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, STORE_ERROR, "CREATE");
    }
}

void imap_cmd_create(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (r->nargs != 1) {
        imap_bad(s, "CREATE takes a mailbox name");
        return;
    }
    if (!imap_arg_mailbox(s, r->args, name, sizeof name))
        return;
    size_t len = strlen(name);
    if (len && name[len - 1] == '/') /* §6.3.4: a trailing delimiter declares intent */
        name[--len] = 0;
    if (strcasecmp(name, "INBOX") == 0) {
        imap_done(s, "NO", "[ALREADYEXISTS] INBOX always exists");
        return;
    }
    struct store_mailbox mb;
    if (len == 0 || store_mailbox_get(s->store, s->user_id, name, &mb) == STORE_INVALID) {
        imap_done(s, "NO", "[CANNOT] Invalid mailbox name");
        return;
    }
    struct create_op *op = calloc(1, sizeof *op);
    if (!op) {
        imap_done_store_error(s, STORE_ERROR, "CREATE");
        return;
    }
    memcpy(op->name, name, len + 1);
    op->len = len;
    s->op = op;
    s->op_free = free;
    create_next(s);
}

void imap_cmd_delete(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (r->nargs != 1) {
        imap_bad(s, "DELETE takes a mailbox name");
        return;
    }
    if (!imap_arg_mailbox(s, r->args, name, sizeof name))
        return;
    if (strcmp(name, "INBOX") == 0) {
        imap_done(s, "NO", "[CANNOT] INBOX cannot be deleted");
        return;
    }
    if (s->view && strcmp(s->view->name, name) == 0) {
        /* Deleting the selected mailbox deselects it first. */
        imap_view_free(&s->view);
        s->state = IMAP_AUTH;
        imap_untagged(s, "OK [CLOSED] Mailbox closed");
    }
    imap_wait(s);
    if (store_mailbox_delete(s->store, s->user_id, name, write_done, s) != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, STORE_ERROR, "DELETE");
    }
}

void imap_cmd_rename(struct imap_session *s, const struct imap_request *r)
{
    char from[STORE_MAILBOX_NAME_MAX + 1], to[STORE_MAILBOX_NAME_MAX + 1];
    if (r->nargs != 2) {
        imap_bad(s, "RENAME takes two mailbox names");
        return;
    }
    if (!imap_arg_mailbox(s, r->args, from, sizeof from) ||
        !imap_arg_mailbox(s, r->args->next, to, sizeof to))
        return;
    imap_wait(s);
    if (store_mailbox_rename(s->store, s->user_id, from, to, write_done, s) != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, STORE_ERROR, "RENAME");
    }
}

void imap_cmd_subscribe(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    if (r->nargs != 1) {
        imap_bad(s, "%s takes a mailbox name", r->name);
        return;
    }
    if (!imap_arg_mailbox(s, r->args, name, sizeof name))
        return;
    imap_wait(s);
    bool on = strcmp(r->name, "SUBSCRIBE") == 0;
    if (store_mailbox_subscribe(s->store, s->user_id, name, on, write_done, s) != STORE_OK) {
        imap_resume(s);
        imap_done_store_error(s, STORE_ERROR, r->name);
    }
}

/* ---------------------------------------------------------------- STATUS */

enum status_item { ST_MESSAGES, ST_RECENT, ST_UIDNEXT, ST_UIDVALIDITY, ST_UNSEEN, ST_DELETED,
                   ST_SIZE, ST_HIGHESTMODSEQ, ST_COUNT };
static const char *const status_names[ST_COUNT] = {
    [ST_MESSAGES] = "MESSAGES", [ST_RECENT] = "RECENT",   [ST_UIDNEXT] = "UIDNEXT",
    [ST_UIDVALIDITY] = "UIDVALIDITY", [ST_UNSEEN] = "UNSEEN", [ST_DELETED] = "DELETED",
    [ST_SIZE] = "SIZE", [ST_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
};

static uint64_t status_value(const struct store_mailbox_info *m, enum status_item i)
{
    switch (i) {
    case ST_MESSAGES: return m->messages;
    case ST_RECENT: return 0;
    case ST_UIDNEXT: return m->uidnext;
    case ST_UIDVALIDITY: return m->uidvalidity;
    case ST_UNSEEN: return m->unseen;
    case ST_DELETED: return m->deleted;
    case ST_SIZE: return m->size;
    case ST_HIGHESTMODSEQ: return m->highestmodseq;
    case ST_COUNT: break;
    }
    return 0;
}

bool imap_status_items(struct imap_session *s, const struct imap_arg *list, unsigned *want)
{
    *want = 0;
    if (!list || list->type != IMAP_ARG_LIST || list->count == 0) {
        imap_bad(s, "STATUS items are a list, like (MESSAGES UNSEEN)");
        return false;
    }
    for (const struct imap_arg *a = list->child; a; a = a->next) {
        size_t i = 0;
        while (i < ST_COUNT && !imap_arg_is(a, status_names[i]))
            i++;
        if (i == ST_COUNT || (i == ST_RECENT && s->rev2)) { /* RFC 9051 has no RECENT */
            imap_bad(s, "Unknown STATUS item");
            return false;
        }
        *want |= 1u << i;
    }
    if (*want & (1u << ST_HIGHESTMODSEQ))
        imap_condstore_on(s);
    return true;
}

void imap_write_status(struct imap_session *s, const struct store_mailbox_info *m, unsigned want)
{
    struct buf b = { 0 };
    for (size_t i = 0; i < ST_COUNT; i++)
        if (want & (1u << i))
            buf_printf(&b, SIZE_MAX, "%s%s %llu", b.len ? " " : "", status_names[i],
                       (unsigned long long)status_value(m, (enum status_item)i));
    imap_printf(s, "* STATUS ");
    imap_write_mailbox(s, m->name);
    imap_printf(s, " (%.*s)\r\n", (int)b.len, b.data ? b.data : "");
    buf_free(&b);
}

void imap_cmd_status(struct imap_session *s, const struct imap_request *r)
{
    char name[STORE_MAILBOX_NAME_MAX + 1];
    unsigned want;
    if (r->nargs != 2) {
        imap_bad(s, "STATUS takes a mailbox name and a list of items");
        return;
    }
    if (!imap_arg_mailbox(s, r->args, name, sizeof name) ||
        !imap_status_items(s, r->args->next, &want))
        return;
    struct store_mailbox mb;
    int res = store_mailbox_get(s->store, s->user_id, name, &mb);
    if (res != STORE_OK) {
        imap_done_store_error(s, res, "STATUS");
        return;
    }
    struct store_mailbox_info info = {
        .name = mb.name, .uidvalidity = mb.uidvalidity, .uidnext = mb.uidnext,
        .highestmodseq = mb.highestmodseq, .messages = mb.messages, .unseen = mb.unseen,
        .size = mb.size, .deleted = mb.deleted,
    };
    imap_write_status(s, &info, want);
    imap_done(s, "OK", "STATUS completed");
}
