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
    if (v->nruns && v->runs[v->nruns - 1].hi + 1 == uid) {
        v->runs[v->nruns - 1].hi = uid;
        v->count++;
        return 0;
    }
    if (v->nruns == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct imap_run *r = realloc(v->runs, cap * sizeof *r);
        if (!r)
            return -1;
        v->runs = r;
        v->cap = cap;
    }
    v->runs[v->nruns++] = (struct imap_run){ uid, uid, (uint32_t)v->count };
    v->count++;
    return 0;
}

/* The run holding uid, or the one before where it would be; -1 if none. */
static ssize_t find_run(const struct imap_view *v, uint32_t uid)
{
    size_t lo = 0, hi = v->nruns;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->runs[mid].lo <= uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ssize_t)lo - 1;
}

static void renumber(struct imap_view *v, size_t from)
{
    for (size_t i = from ? from : 1; i < v->nruns; i++)
        v->runs[i].before = v->runs[i - 1].before + (v->runs[i - 1].hi - v->runs[i - 1].lo + 1);
}

/* Takes uid out of the view; false when it was not there or memory ran out. */
static bool remove_uid(struct imap_view *v, uint32_t uid)
{
    ssize_t i = find_run(v, uid);
    if (i < 0 || uid > v->runs[i].hi)
        return false;
    struct imap_run *r = &v->runs[i];
    if (r->lo == r->hi) {
        memmove(r, r + 1, (v->nruns - (size_t)i - 1) * sizeof *r);
        v->nruns--;
    } else if (uid == r->lo) {
        r->lo++;
    } else if (uid == r->hi) {
        r->hi--;
    } else {
        if (v->nruns == v->cap) {
            struct imap_run *g = realloc(v->runs, v->cap * 2 * sizeof *g);
            if (!g)
                return false;
            v->runs = g;
            v->cap *= 2;
            r = &v->runs[i];
        }
        memmove(r + 2, r + 1, (v->nruns - (size_t)i - 1) * sizeof *r);
        v->nruns++;
        r[1] = (struct imap_run){ uid + 1, r->hi, 0 };
        r->hi = uid - 1;
    }
    v->count--;
    if (v->nruns)
        v->runs[0].before = 0;
    renumber(v, (size_t)i);
    return true;
}

struct loading {
    struct imap_view *v;
    uint32_t first_unseen;
};

static void collect_uid(void *arg, const struct store_message_info *m)
{
    struct loading *l = arg;
    if (push_uid(l->v, m->uid) != 0)
        l->v->gone = true; /* out of memory: the session ends at its next command */
    else if (!l->first_unseen && !strstr(m->flags, "\\Seen"))
        l->first_unseen = (uint32_t)l->v->count;
}

int imap_view_open(struct imap_session *s, const struct store_mailbox *mb, bool readonly,
                   struct imap_view **out, uint32_t *first_unseen)
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
    struct loading l = { v, 0 };
    int r = store_message_index(s->store, mb->id, 0, collect_uid, &l);
    if (r != STORE_OK || v->gone) {
        imap_view_free(&v);
        return r != STORE_OK ? r : STORE_ERROR;
    }
    *first_unseen = l.first_unseen;
    *out = v;
    return STORE_OK;
}

void imap_view_free(struct imap_view **vp)
{
    struct imap_view *v = *vp;
    if (!v)
        return;
    free(v->runs);
    free(v);
    *vp = NULL;
}

uint32_t imap_view_msn(const struct imap_view *v, uint32_t uid)
{
    ssize_t i = find_run(v, uid);
    if (i < 0 || uid > v->runs[i].hi)
        return 0;
    return v->runs[i].before + (uid - v->runs[i].lo) + 1;
}

uint32_t imap_view_uid(const struct imap_view *v, uint32_t msn)
{
    size_t lo = 0, hi = v->nruns;
    while (lo < hi) { /* the first run starting after msn */
        size_t mid = lo + (hi - lo) / 2;
        if (v->runs[mid].before < msn)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct imap_run *r = &v->runs[lo - 1];
    return r->lo + (msn - r->before - 1);
}

uint32_t imap_view_max_uid(const struct imap_view *v)
{
    return v->nruns ? v->runs[v->nruns - 1].hi : 0;
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
        if (!msn || !remove_uid(v, uids[i]))
            continue;
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
    uint64_t top;
    if (store_mailbox_modseq(s->store, v->id, &top) != STORE_OK)
        return; /* deleted: the change event said so */
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

bool imap_saved_has(const struct imap_session *s, uint32_t uid)
{
    size_t lo = 0, hi = s->n_saved;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->saved[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_saved && s->saved[lo] == uid;
}

void imap_saved_clear(struct imap_session *s)
{
    free(s->saved);
    s->saved = NULL;
    s->n_saved = 0;
}

/* "$": the saved UIDs still in the view (RFC 5182 §2.1: expunged ones go). */
static int saved_set(struct imap_session *s, uint32_t **uids, size_t *n)
{
    uint32_t *out = malloc((s->n_saved ? s->n_saved : 1) * sizeof *out);
    if (!out) {
        imap_done(s, "NO", "[SERVERBUG] Out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n_saved; i++)
        if (imap_view_msn(s->view, s->saved[i]))
            out[k++] = s->saved[i];
    *uids = out;
    *n = k;
    return 0;
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
        imap_seqset_parse(arena, a->str, a->len, IMAP_SEQSET_ALLOW_SAVED, &set) != 0) {
        imap_bad(s, "Invalid sequence set");
        return -1;
    }
    if (set.saved)
        return saved_set(s, uids, n);
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
        for (size_t r = 0; r < v->nruns; r++)
            for (uint64_t u = v->runs[r].lo; u <= v->runs[r].hi; u++)
                if (imap_seqset_contains(&set, (uint32_t)u))
                    out[k++] = (uint32_t)u;
    } else {
        struct imap_seqset_iter it = { 0 };
        uint32_t msn;
        while (imap_seqset_next(&set, &it, &msn))
            out[k++] = imap_view_uid(v, msn);
    }
    *uids = out;
    *n = k;
    return 0;
}
