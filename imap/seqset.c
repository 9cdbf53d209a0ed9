/*
 * Sequence sets and UID sets (RFC 3501 §9, RFC 9051 §9):
 *
 *   sequence-set = (seq-number / seq-range) ["," sequence-set]
 *   seq-range    = seq-number ":" seq-number
 *   seq-number   = nz-number / "*"
 *
 * plus "$", the saved search result (RFC 5182 §2), which stands alone.
 *
 * A set without '*' is normalised at once. A set with '*' keeps its
 * ranges in the order written, each with lo <= hi except that a '*' end
 * is always hi ("*:4" is kept as 4:*, "*" as *:*), until
 * imap_seqset_resolve() knows what '*' means.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"

static bool parse_seq_number(const char *s, size_t len, uint32_t *out)
{
    if (len == 1 && s[0] == '*') {
        *out = IMAP_SEQ_STAR;
        return true;
    }
    return imap_parse_nz_number(s, len, out);
}

/* One seq-number or seq-range in s[0..len), '*' placed in hi. */
static bool parse_range(const char *s, size_t len, struct imap_range *r)
{
    const char *colon = memchr(s, ':', len);
    uint32_t a, b;
    if (!colon) {
        if (!parse_seq_number(s, len, &a))
            return false;
        r->lo = r->hi = a;
        return true;
    }
    size_t alen = (size_t)(colon - s);
    if (!parse_seq_number(s, alen, &a) || !parse_seq_number(colon + 1, len - alen - 1, &b))
        return false;
    if (a == IMAP_SEQ_STAR || (b != IMAP_SEQ_STAR && b < a)) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    r->lo = a;
    r->hi = b;
    return true;
}

static int cmp_range(const void *x, const void *y)
{
    const struct imap_range *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Sorts the ranges and merges those that overlap or touch. */
static void normalise(struct imap_seqset *set)
{
    if (set->count == 0)
        return;
    qsort(set->ranges, set->count, sizeof *set->ranges, cmp_range);
    size_t k = 0;
    for (size_t i = 1; i < set->count; i++) {
        struct imap_range *last = &set->ranges[k];
        const struct imap_range *r = &set->ranges[i];
        if (last->hi == UINT32_MAX || r->lo <= last->hi + 1) {
            if (r->hi > last->hi)
                last->hi = r->hi;
        } else {
            set->ranges[++k] = *r;
        }
    }
    set->count = k + 1;
}

int imap_seqset_parse(struct imap_arena *a, const char *s, size_t len, unsigned flags,
                      struct imap_seqset *out)
{
    memset(out, 0, sizeof *out);
    if (len == 1 && s[0] == '$' && (flags & IMAP_SEQSET_ALLOW_SAVED)) {
        out->saved = true;
        return 0;
    }
    if (len == 0)
        return IMAP_PERR_SYNTAX;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == ',';
    out->ranges = n <= SIZE_MAX / sizeof *out->ranges
                      ? imap_arena_alloc(a, n * sizeof *out->ranges)
                      : NULL;
    if (!out->ranges)
        return IMAP_PERR_NOMEM;
    const char *p = s, *end = s + len;
    for (size_t i = 0; i < n; i++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        struct imap_range *r = &out->ranges[i];
        if (!parse_range(p, (size_t)(stop - p), r))
            return IMAP_PERR_SYNTAX;
        if (r->hi == IMAP_SEQ_STAR)
            out->star = true;
        p = stop + 1;
    }
    out->count = n;
    if (!out->star)
        normalise(out);
    return 0;
}

int imap_seqset_resolve(struct imap_arena *a, const struct imap_seqset *in, uint32_t max,
                        struct imap_seqset *out)
{
    if (out != in) {
        *out = *in;
        if (in->count) {
            out->ranges = imap_arena_alloc(a, in->count * sizeof *out->ranges);
            if (!out->ranges)
                return IMAP_PERR_NOMEM;
            memcpy(out->ranges, in->ranges, in->count * sizeof *out->ranges);
        }
    }
    if (!out->star)
        return 0;
    /*
     * RFC 3501 §6.4.8: "559:*" means max:559 when max < 559. With an empty
     * mailbox (max 0) '*' names no message: "*" drops out, "5:*" is 1:5.
     */
    size_t k = 0;
    for (size_t i = 0; i < out->count; i++) {
        struct imap_range r = out->ranges[i];
        if (r.hi == IMAP_SEQ_STAR) {
            uint32_t lo = r.lo == IMAP_SEQ_STAR ? max : r.lo;
            r.lo = lo < max ? lo : max;
            r.hi = lo > max ? lo : max;
        }
        if (r.lo == 0)
            r.lo = 1;
        if (r.hi >= r.lo)
            out->ranges[k++] = r;
    }
    out->count = k;
    out->star = false;
    normalise(out);
    return 0;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
    assert(!set->star);
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct imap_range *r = &set->ranges[mid];
        if (n < r->lo)
            hi = mid;
        else if (n > r->hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it, uint32_t *n)
{
    assert(!set->star);
    if (!it->started) {
        it->started = true;
        it->i = 0;
        if (set->count)
            it->next = set->ranges[0].lo;
    }
    if (it->i >= set->count)
        return false;
    *n = it->next;
    if (it->next == set->ranges[it->i].hi) {
        if (++it->i < set->count)
            it->next = set->ranges[it->i].lo;
    } else {
        it->next++;
    }
    return true;
}
