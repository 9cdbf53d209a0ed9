/*
 * The selected mailbox as one session sees it, and the reports that bring
 * that view up to date with the store.
 *
 * Change events only mark the view dirty. A report then asks the store what
 * changed since the modseq the view has reported up to: messages with a
 * higher modseq are new (UID above the view's last: EXISTS) or have new
 * flags (FETCH FLAGS), tombstones with a higher modseq are expunges. One
 * query answers any number of events, and nothing is queued per session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-int.h"

static int push_uid(struct imap_view *v, uint32_t uid)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *u = realloc(v->uids, cap * sizeof *u);
        if (!u)
            return -1;
        v->uids = u;
        v->cap = cap;
    }
    v->uids[v->count++] = uid;
    return 0;
}

static void collect_uid(void *arg, const struct store_message_info *m)
{
    struct imap_view *v = arg;
    if (push_uid(v, m->uid) != 0)
        v->gone = true; /* out of memory: the session ends at its next command */
}

int imap_view_open(struct imap_session *s, const struct store_mailbox *mb, bool readonly,
                   struct imap_view **out)
{
    struct imap_view *v = calloc(1, sizeof *v);
    if (!v)
        return STORE_ERROR;
    v->id = mb->id;
    snprintf(v->name, sizeof v->name, "%s", mb->name);
    v->readonly = readonly;
    v->uidvalidity = mb->uidvalidity;
    /* mb was read before the index: a change in between is reported again,
     * never lost. */
    v->seen_modseq = v->expunged_modseq = mb->highestmodseq;
    int r = store_message_index(s->store, mb->id, 0, collect_uid, v);
    if (r != STORE_OK || v->gone) {
        imap_view_free(&v);
        return r != STORE_OK ? r : STORE_ERROR;
    }
    *out = v;
    return STORE_OK;
}

void imap_view_free(struct imap_view **vp)
{
    struct imap_view *v = *vp;
    if (!v)
        return;
    free(v->uids);
    free(v);
    *vp = NULL;
}

uint32_t imap_view_msn(const struct imap_view *v, uint32_t uid)
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->count && v->uids[lo] == uid ? (uint32_t)lo + 1 : 0;
}

uint32_t imap_view_max_uid(const struct imap_view *v)
{
    return v->count ? v->uids[v->count - 1] : 0;
}

static void report_expunges(struct imap_session *s, uint64_t since)
{
    struct imap_view *v = s->view;
    uint32_t *uids = NULL;
    size_t n = 0, gone = 0;
    if (store_message_vanished(s->store, v->id, since, &uids, &n) != STORE_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        uint32_t msn = imap_view_msn(v, uids[i]);
        if (!msn)
            continue;
        memmove(&v->uids[msn - 1], &v->uids[msn], (v->count - msn) * sizeof *v->uids);
        v->count--;
        if (s->qresync)
            uids[gone++] = uids[i];
        else
            imap_printf(s, "* %u EXPUNGE\r\n", msn);
    }
    /* RFC 7162 §3.2.10: VANISHED replaces EXPUNGE once QRESYNC is on. */
    imap_write_vanished(s, false, uids, gone);
    free(uids);
}

void imap_write_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n)
{
    if (n == 0)
        return;
    struct buf b = { 0 };
    buf_printf(&b, SIZE_MAX, "* VANISHED %s", earlier ? "(EARLIER) " : "");
    imap_buf_set(&b, uids, n);
    buf_append(&b, "\r\n", 2, SIZE_MAX);
    imap_write(s, b.data, b.len);
    buf_free(&b);
}

void imap_buf_set(struct buf *b, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        buf_printf(b, SIZE_MAX, "%s%u", i ? "," : "", v[i]);
        if (j > i)
            buf_printf(b, SIZE_MAX, ":%u", v[j]);
        i = j + 1;
    }
}

uint64_t imap_view_modseq(const struct imap_view *v)
{
    return v->seen_modseq < v->expunged_modseq ? v->seen_modseq : v->expunged_modseq;
}

static bool quiet(const struct imap_session *s, const struct store_message_info *m)
{
    for (size_t i = 0; i < s->n_quiet; i++)
        if (s->quiet[i].uid == m->uid && s->quiet[i].modseq == m->modseq)
            return true;
    return false;
}

struct changes {
    struct imap_session *s;
    uint32_t max_uid;
    size_t added;
};

static void report_change(void *arg, const struct store_message_info *m)
{
    struct changes *c = arg;
    struct imap_session *s = c->s;
    if (m->uid > c->max_uid) {
        if (push_uid(s->view, m->uid) == 0)
            c->added++;
        return;
    }
    uint32_t msn = imap_view_msn(s->view, m->uid);
    if (!msn || quiet(s, m))
        return;
    if (s->condstore)
        imap_printf(s, "* %u FETCH (UID %u FLAGS (%s) MODSEQ (%llu))\r\n", msn, m->uid,
                    m->flags, (unsigned long long)m->modseq);
    else
        imap_printf(s, "* %u FETCH (UID %u FLAGS (%s))\r\n", msn, m->uid, m->flags);
}

void imap_view_report(struct imap_session *s, bool allow_expunge)
{
    struct imap_view *v = s->view;
    if (!v || !v->dirty || v->gone)
        return;
    struct store_mailbox mb;
    if (store_mailbox_get(s->store, s->user_id, v->name, &mb) != STORE_OK || mb.id != v->id)
        return; /* renamed or deleted: the change event says which */
    uint64_t top = mb.highestmodseq;
    bool expunges_left = false;
    if (top > v->expunged_modseq) {
        if (allow_expunge) {
            report_expunges(s, v->expunged_modseq);
            v->expunged_modseq = top;
        } else {
            expunges_left = true;
        }
    }
    if (top > v->seen_modseq) {
        struct changes c = { s, imap_view_max_uid(v), 0 };
        if (store_message_index(s->store, v->id, v->seen_modseq, report_change, &c) == STORE_OK)
            v->seen_modseq = top;
        if (c.added)
            imap_printf(s, "* %zu EXISTS\r\n", v->count);
    }
    v->dirty = expunges_left;
}

/*
 * RFC 9051 §9 seq-number: "*" is the largest number in use; a sequence
 * number above the number of messages is invalid (BAD), a UID that does not
 * exist is simply not there (§6.4.8).
 */
int imap_view_select_set(struct imap_session *s, const struct imap_arg *a, bool uid,
                         uint32_t **uids, size_t *n)
{
    struct imap_view *v = s->view;
    struct imap_arena *arena = imap_parser_arena(s->parser);
    struct imap_seqset set;
    *uids = NULL;
    *n = 0;
    if (!a || a->type != IMAP_ARG_ATOM ||
        imap_seqset_parse(arena, a->str, a->len, 0, &set) != 0) {
        imap_bad(s, "Invalid sequence set");
        return -1;
    }
    uint32_t max = uid ? imap_view_max_uid(v) : (uint32_t)v->count;
    if (set.star) {
        if (max == 0 && !uid) {
            imap_bad(s, "Invalid sequence number: the mailbox is empty");
            return -1;
        }
        if (imap_seqset_resolve(arena, &set, max ? max : 1, &set) != 0) {
            imap_bad(s, "Invalid sequence set");
            return -1;
        }
    }
    if (!uid && set.count && set.ranges[set.count - 1].hi > v->count) {
        imap_bad(s, "Invalid sequence number %u (the mailbox has %zu messages)",
                 set.ranges[set.count - 1].hi, v->count);
        return -1;
    }
    uint32_t *out = malloc((v->count ? v->count : 1) * sizeof *out);
    if (!out) {
        imap_done(s, "NO", "[SERVERBUG] Out of memory");
        return -1;
    }
    size_t k = 0;
    if (uid) {
        for (size_t i = 0; i < v->count; i++)
            if (imap_seqset_contains(&set, v->uids[i]))
                out[k++] = v->uids[i];
    } else {
        struct imap_seqset_iter it = { 0 };
        uint32_t msn;
        while (imap_seqset_next(&set, &it, &msn))
            out[k++] = v->uids[msn - 1];
    }
    *uids = out;
    *n = k;
    return 0;
}
