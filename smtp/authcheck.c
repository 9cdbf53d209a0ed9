/*
 * authcheck.c — what a message goes through at the end of its data, before
 * it is accepted:
 *
 *  - loop protection on every role (RFC 5321 §6.3): more than [limits]
 *    max_hops Received fields in its header is 554 5.4.6;
 *  - on the MX, unless [checks] mode = off: SPF (RFC 7208), DKIM (RFC 6376)
 *    and DMARC (RFC 7489), reported in Authentication-Results (RFC 8601)
 *    and, in enforce mode, DMARC's policy: 550 5.7.1 for reject, each
 *    recipient's Junk mailbox for quarantine. Temporary DNS failures never
 *    refuse anything. Submission is authenticated and is not checked.
 *
 * spf.c, dkim.c and dmarc.c are pure state machines that ask for DNS
 * records; this file answers them with dns_query() on the loop. For one
 * transaction, top to bottom:
 *
 *   MAIL          smtp_checks_mail: spf_begin (MAIL FROM, or postmaster@HELO
 *                 for the null sender, RFC 7208 §2.4); its lookups, one at a
 *                 time, run while RCPT and DATA go on
 *   end of data   smtp_checks_message: input paused, the deadline starts;
 *                 scan(): the Received count, dkim_verify_begin (parses the
 *                 signatures, hashes the body), the From domain, and fields
 *                 forging our Authentication-Results dropped; on the thread
 *                 pool for messages over SMTP_SCAN_INLINE_MAX
 *   scanned()     554 on a loop; else one TXT lookup per DKIM key name, all
 *                 at once
 *   advance()     once SPF and the keys are answered: dmarc_begin and its
 *                 lookups, one at a time
 *   decide()      Authentication-Results, one log line, the verdict: deliver
 *                 (INBOX or Junk) or 550
 *   on_deadline() [checks] timeout after the end of the data: every lookup
 *                 pending, and every one asked later, is answered
 *                 DNS_TIMEOUT (temperror), so the reply never waits longer
 *
 * Ownership: the struct authcheck belongs to the transaction; smtp_txn_free
 * frees it, cancelling its lookups and closing its timer. While scan() runs
 * on the pool the session is marked committing, so a session whose client
 * left waits for the scan before it is freed.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtp/smtp-int.h"

/* One TXT lookup of a DKIM key name; signatures sharing the name share it. */
struct key_lookup {
    struct authcheck *a;
    struct dns_query *q;          /* NULL once answered */
    char name[DNS_NAME_MAX + 1];
};

struct authcheck {
    struct smtp_session *s;
    bool enabled;                 /* SPF, DKIM, DMARC: MX, mode tag/enforce, a resolver */
    bool expired;                 /* the deadline passed: lookups count as timed out */
    bool decided;
    uv_timer_t timer;             /* the deadline ([checks] timeout) */
    bool timer_init;

    struct spf *spf;              /* NULL: SPF not checked */
    struct dns_query *spf_q;

    /* scan(): input, then results (written by the pool thread while the
     * loop leaves them alone) */
    uv_work_t work;
    char *msg;                    /* the client's bytes, in the transaction's buffer */
    size_t len;
    int64_t received_at;
    const char *authserv_id;
    unsigned hops;                /* Received fields of the header */
    size_t dropped;               /* bytes of forged Authentication-Results cut */
    unsigned n_dropped;
    bool oom;
    struct dkim_verify *dkim;     /* NULL: not checked (out of memory) */
    enum dmarc_from from;
    char from_domain[DNS_NAME_MAX + 1];
    bool scanned;

    struct key_lookup keys[DKIM_MAX_SIGNATURES];
    unsigned n_keys, keys_pending;

    bool dmarc_started;
    struct dmarc *dmarc;          /* NULL: no usable From (reported as permerror) */
    struct dns_query *dmarc_q;
};

static const struct dns_result timed_out = { .status = DNS_TIMEOUT };
static const struct dns_result no_query = { .status = DNS_TEMPFAIL };

static void advance(struct authcheck *a);

/* ------------------------------------------------------- header fields */

/* The end of the field starting at m[pos]: past the LF of its last line,
 * continuation lines (starting with SP or HTAB) included. */
static size_t field_end(const char *m, size_t pos, size_t end)
{
    for (;;) {
        const char *lf = memchr(m + pos, '\n', end - pos);
        if (!lf)
            return end;
        pos = (size_t)(lf - m) + 1;
        if (pos >= end || (m[pos] != ' ' && m[pos] != '\t'))
            return pos;
    }
}

static bool empty_line(const char *m, size_t pos, size_t len)
{
    return m[pos] == '\n' || (m[pos] == '\r' && pos + 1 < len && m[pos + 1] == '\n');
}

/* RFC 5322 §2.1: the header ends at the first empty line (or the data). */
static size_t header_length(const char *m, size_t len)
{
    size_t pos = 0;
    while (pos < len && !empty_line(m, pos, len))
        pos = field_end(m, pos, len);
    return pos;
}

/* The offset of the value of field f[0, n) when its name is name (any
 * case; blanks before the colon, RFC 5322 §4.5.3), else 0. */
static size_t field_value(const char *f, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(f, name, k) != 0)
        return 0;
    size_t i = k;
    while (i < n && (f[i] == ' ' || f[i] == '\t'))
        i++;
    return i < n && f[i] == ':' ? i + 1 : 0;
}

/* RFC 5322 §3.2.2 CFWS: blanks, line folds and (nested) comments. */
static size_t skip_cfws(const char *v, size_t n, size_t i)
{
    unsigned depth = 0;
    for (; i < n; i++) {
        char c = v[i];
        if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '(')
            break;
        if (c == '(')
            depth++;
        else if (c == ')' && depth > 0)
            depth--;
        else if (c == '\\' && depth > 0)
            i++;
    }
    return i;
}

/* Does the Authentication-Results value v[0, n) carry authserv-id id?
 * RFC 8601 §2.2: authserv-id is a value (RFC 2045 token or quoted-string)
 * after CFWS; compared without case and without a trailing dot. */
static bool claims_id(const char *v, size_t n, const char *id)
{
    char got[DNS_NAME_MAX + 2];
    size_t g = 0, i = skip_cfws(v, n, 0);
    if (i < n && v[i] == '"') {
        for (i++; i < n && v[i] != '"'; i++) {
            if (v[i] == '\\' && i + 1 < n)
                i++;
            if (v[i] == '\r' || v[i] == '\n')
                continue;
            if (g == sizeof got - 1)
                return false;
            got[g++] = v[i];
        }
    } else {
        for (; i < n && (unsigned char)v[i] > ' ' && !strchr("()<>@,;:\\\"/[]?=", v[i]); i++) {
            if (g == sizeof got - 1)
                return false;
            got[g++] = v[i];
        }
    }
    if (g > 0 && got[g - 1] == '.')
        g--;
    size_t idn = strlen(id);
    if (idn > 0 && id[idn - 1] == '.')
        idn--;
    return g > 0 && g == idn && strncasecmp(got, id, g) == 0;
}

/* The number of fields named name in the header m[0, head). */
static unsigned count_fields(const char *m, size_t head, const char *name)
{
    unsigned n = 0;
    for (size_t pos = 0, end; pos < head; pos = end) {
        end = field_end(m, pos, head);
        n += field_value(m + pos, end - pos, name) > 0;
    }
    return n;
}

struct range {
    size_t off, len;
};

/*
 * RFC 8601 §5: an Authentication-Results field with our authserv-id that is
 * already in the message did not come from us (ours is added after this
 * scan), and must not be trusted by anyone reading it: it is deleted
 * (renaming would keep a forged verdict before the reader's eyes). The
 * header above each such field moves down over it, so only header bytes
 * move; the client's bytes then begin *dropped bytes later. Returns -1
 * when out of memory.
 */
static int drop_forged(char *m, size_t head, const char *id, size_t *dropped, unsigned *count)
{
    *dropped = 0;
    *count = 0;
    struct range *r = NULL;
    size_t n = 0, cap = 0;
    for (size_t pos = 0, end; pos < head; pos = end) {
        end = field_end(m, pos, head);
        size_t v = field_value(m + pos, end - pos, "Authentication-Results");
        if (!v || !claims_id(m + pos + v, end - pos - v, id))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct range *nr = realloc(r, ncap * sizeof *nr);
            if (!nr) {
                free(r);
                return -1;
            }
            r = nr;
            cap = ncap;
        }
        r[n++] = (struct range){ pos, end - pos };
    }
    size_t shift = 0;
    for (size_t k = n; k-- > 0;) {
        shift += r[k].len;
        size_t from = k ? r[k - 1].off + r[k - 1].len : 0;
        memmove(m + from + shift, m + from, r[k].off - from);
    }
    free(r);
    *dropped = shift;
    *count = (unsigned)n;
    return 0;
}

/* ------------------------------------------------------------- the scan */

/*
 * Everything that reads the whole message, in one pass over it. Safe on any
 * thread: it touches only a's scan fields and the message. DKIM sees the
 * bytes as received, before any field is dropped.
 */
static void scan(struct authcheck *a)
{
    size_t head = header_length(a->msg, a->len);
    a->hops = count_fields(a->msg, head, "Received");
    if (a->enabled) {
        if (dkim_verify_begin(a->msg, a->len, a->received_at, &a->dkim) != 0)
            a->dkim = NULL;
        a->from = dmarc_from_domain(a->msg, a->len, a->from_domain, sizeof a->from_domain);
    }
    if (drop_forged(a->msg, head, a->authserv_id, &a->dropped, &a->n_dropped) != 0)
        a->oom = true;
}

static void lookup_keys(struct authcheck *a);

static void scanned(struct authcheck *a)
{
    struct smtp_session *s = a->s;
    a->scanned = true;
    s->txn->body_start += a->dropped;
    if (a->n_dropped)
        log_event(PLOG_INFO, conn_id(s->conn), "event=authres-dropped peer=%s count=%u",
                  conn_peer_ip(s->conn), a->n_dropped);
    if (a->oom) {
        smtp_refuse_message(s, "451 4.3.0 Out of memory, try again later");
        return;
    }
    if (a->hops > s->cfg->max_hops) {
        log_event(PLOG_WARN, conn_id(s->conn), "event=mail-loop peer=%s hops=%u max=%u",
                  conn_peer_ip(s->conn), a->hops, s->cfg->max_hops);
        smtp_refuse_message(s, "554 5.4.6 Too many hops (%u Received headers): mail loop?",
                            a->hops);
        return;
    }
    if (!a->enabled) {
        smtp_deliver(s, NULL, false);
        return;
    }
    lookup_keys(a);
    advance(a);
}

static void scan_work(uv_work_t *w)
{
    scan(w->data);
}

static void scan_after(uv_work_t *w, int status)
{
    (void)status; /* never cancelled */
    struct authcheck *a = w->data;
    struct smtp_session *s = a->s;
    s->committing = false;
    if (s->closed) {
        smtp_session_free(&s); /* and with the transaction, a */
        return;
    }
    scanned(a);
}

/* ------------------------------------------------------------------ SPF */

static void on_spf(void *arg, const struct dns_result *r);

/* Asks SPF's next lookup, or answers it at once when the deadline has
 * passed (or no query can be made): the check then ends in temperror. */
static void spf_next(struct authcheck *a)
{
    enum dns_type type;
    const char *name;
    while ((name = spf_want(a->spf, &type))) {
        if (!a->expired && (a->spf_q = dns_query(a->s->dns, name, type, on_spf, a)))
            return;
        spf_answer(a->spf, a->expired ? &timed_out : &no_query);
    }
}

static void on_spf(void *arg, const struct dns_result *r)
{
    struct authcheck *a = arg;
    a->spf_q = NULL;
    spf_answer(a->spf, r);
    spf_next(a);
    advance(a);
}

/* ----------------------------------------------------------------- DKIM */

/* docs/dkim.md: how core's statuses map onto a key lookup's. */
static enum dkim_dns key_status(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return DKIM_DNS_OK;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_BADNAME:
        return DKIM_DNS_NXDOMAIN; /* no key record: RFC 6376 §6.1.2 step 3 */
    default:
        return DKIM_DNS_TEMPFAIL;
    }
}

/* Hands the answer for name to every signature waiting for that key. */
static void give_key(struct authcheck *a, const char *name, const struct dns_result *r)
{
    size_t n = dkim_verify_count(a->dkim);
    for (size_t i = 0; i < n; i++) {
        const char *want = dkim_verify_key_name(a->dkim, i);
        if (want && strcasecmp(want, name) == 0)
            dkim_verify_key(a->dkim, i, r->txt, r->txt_len, r->n_txt, key_status(r->status));
    }
}

static void on_key(void *arg, const struct dns_result *r)
{
    struct key_lookup *k = arg;
    struct authcheck *a = k->a;
    k->q = NULL;
    a->keys_pending--;
    give_key(a, k->name, r);
    advance(a);
}

static bool key_asked(const struct authcheck *a, const char *name)
{
    for (unsigned i = 0; i < a->n_keys; i++)
        if (strcasecmp(a->keys[i].name, name) == 0)
            return true;
    return false;
}

/* Every key the signatures still need, each name once, all at once. */
static void lookup_keys(struct authcheck *a)
{
    size_t n = a->dkim ? dkim_verify_count(a->dkim) : 0;
    for (size_t i = 0; i < n && a->n_keys < DKIM_MAX_SIGNATURES; i++) {
        const char *name = dkim_verify_key_name(a->dkim, i);
        if (!name || key_asked(a, name))
            continue;
        struct key_lookup *k = &a->keys[a->n_keys++];
        k->a = a;
        snprintf(k->name, sizeof k->name, "%s", name);
        if (!a->expired && (k->q = dns_query(a->s->dns, k->name, DNS_TXT, on_key, k)))
            a->keys_pending++;
        else
            give_key(a, k->name, a->expired ? &timed_out : &no_query);
    }
}

/* ---------------------------------------------------------------- DMARC */

static void on_dmarc(void *arg, const struct dns_result *r);

static void dmarc_next(struct authcheck *a)
{
    enum dns_type type;
    const char *name;
    while ((name = dmarc_want(a->dmarc, &type))) {
        if (!a->expired && (a->dmarc_q = dns_query(a->s->dns, name, type, on_dmarc, a)))
            return;
        dmarc_answer(a->dmarc, a->expired ? &timed_out : &no_query);
    }
}

static void on_dmarc(void *arg, const struct dns_result *r)
{
    struct authcheck *a = arg;
    a->dmarc_q = NULL;
    dmarc_answer(a->dmarc, r);
    dmarc_next(a);
    advance(a);
}

/* RFC 7489 §6.6.4 pct=: the sample is a fresh random number per message. */
static uint32_t pct_sample(void)
{
    uint32_t x;
    if (RAND_bytes((unsigned char *)&x, sizeof x) != 1)
        x = (uint32_t)random();
    return x;
}

/* DMARC over SPF's result and every signature's (§4.1, §3.1 alignment). */
static void start_dmarc(struct authcheck *a)
{
    a->dmarc_started = true;
    if (a->from != DMARC_FROM_OK)
        return; /* no author domain to ask about: permerror (decide) */
    struct dmarc_dkim dk[DKIM_MAX_SIGNATURES];
    size_t n = a->dkim ? dkim_verify_count(a->dkim) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct dkim_sig_result *r = dkim_verify_result(a->dkim, i);
        dk[i] = (struct dmarc_dkim){ .domain = r->domain, .result = r->result };
    }
    struct dmarc_input in = {
        .from_domain = a->from_domain,
        .spf = a->spf ? spf_result(a->spf, NULL) : SPF_NONE,
        .spf_domain = a->spf ? spf_domain(a->spf) : NULL,
        .dkim = dk,
        .n_dkim = n,
        .psl = a->s->psl,
        .sample = pct_sample(),
    };
    if (dmarc_begin(&in, &a->dmarc) != 0) {
        a->dmarc = NULL;
        return;
    }
    dmarc_next(a);
}

/* --------------------------------------------------------- the verdict */

static const char *from_problem(enum dmarc_from f)
{
    switch (f) {
    case DMARC_FROM_OK:
        break;
    case DMARC_FROM_MISSING:
        return "no From field";
    case DMARC_FROM_MULTIPLE:
        return "more than one From field";
    case DMARC_FROM_MULTIPLE_DOMAINS:
        return "From addresses of several domains";
    case DMARC_FROM_INVALID:
        return "no usable address in From";
    }
    return "";
}

/* The Authentication-Results value (malloc'd, NULL when out of memory). */
static char *authres(const struct authcheck *a)
{
    struct dkim_sig_result res[DKIM_MAX_SIGNATURES];
    size_t n = a->dkim ? dkim_verify_count(a->dkim) : 0;
    for (size_t i = 0; i < n; i++)
        res[i] = *dkim_verify_result(a->dkim, i);
    struct authres_input in = {
        .authserv_id = a->authserv_id,
        .spf = a->spf,
        .dkim = res,
        .n_dkim = n,
        .dkim_checked = a->dkim != NULL,
        .dmarc = a->dmarc,
    };
    char *v = authres_value(&in);
    if (!v || a->from == DMARC_FROM_OK)
        return v;
    /* No author domain: DMARC cannot run; say why (RFC 7489 §6.6.1). */
    const char *why = from_problem(a->from);
    size_t len = strlen(v);
    if (len >= 6 && strcmp(v + len - 6, "; none") == 0)
        len -= 6;
    char *w = realloc(v, len + strlen(why) + 32);
    if (!w) {
        free(v);
        return NULL;
    }
    snprintf(w + len, strlen(why) + 32, ";\r\n\tdmarc=permerror (%s)", why);
    return w;
}

enum verdict { V_DELIVER, V_JUNK, V_REJECT_FROM, V_REJECT_DMARC };

static const char *const verdict_names[] = {
    [V_DELIVER] = "deliver", [V_JUNK] = "junk",
    [V_REJECT_FROM] = "reject", [V_REJECT_DMARC] = "reject",
};

/*
 * The policy (docs/spf-dmarc.md "On the MX"): only enforce mode acts, and
 * only on a DMARC fail (after pct=) or on a message without one author
 * domain. SPF fail alone is not acted on (RFC 7489 §10.1: DKIM may still
 * align); temperror never is.
 */
static enum verdict verdict(const struct authcheck *a, const struct dmarc_outcome *o,
                            enum dmarc_result dr)
{
    if (a->s->cfg->checks_mode != CHECKS_ENFORCE)
        return V_DELIVER;
    if (a->from != DMARC_FROM_OK)
        return V_REJECT_FROM;
    if (dr != DMARC_FAIL)
        return V_DELIVER;
    switch (o->policy) {
    case DMARC_POLICY_REJECT:
        return V_REJECT_DMARC;
    case DMARC_POLICY_QUARANTINE:
        return V_JUNK;
    case DMARC_POLICY_NONE:
        break;
    }
    return V_DELIVER;
}

/* One line per checked message, so a rejection can be followed. */
static void log_verdict(const struct authcheck *a, enum dmarc_result dr,
                        const struct dmarc_outcome *o, enum verdict v)
{
    char dkim[16 * DKIM_MAX_SIGNATURES] = "none"; /* "permerror," at most 10 each */
    size_t n = a->dkim ? dkim_verify_count(a->dkim) : 0;
    for (size_t i = 0, used = 0; i < n && used < sizeof dkim; i++)
        used += (size_t)snprintf(dkim + used, sizeof dkim - used, "%s%s", i ? "," : "",
                                 dkim_result_name(dkim_verify_result(a->dkim, i)->result));
    if (!a->dkim)
        snprintf(dkim, sizeof dkim, "unchecked");
    struct smtp_session *s = a->s;
    log_event(v == V_DELIVER ? PLOG_INFO : PLOG_WARN, conn_id(s->conn),
              "event=authcheck txn=%u peer=%s spf=%s dkim=%s dmarc=%s policy=%s "
              "from_domain=%s action=%s%s",
              s->txn_count, conn_peer_ip(s->conn),
              a->spf ? spf_result_name(spf_result(a->spf, NULL)) : "unchecked", dkim,
              dmarc_result_name(dr), dr == DMARC_FAIL ? dmarc_policy_name(o->policy) : "none",
              a->from == DMARC_FROM_OK ? a->from_domain : "-", verdict_names[v],
              a->expired ? " timeout=yes" : "");
}

static void decide(struct authcheck *a)
{
    struct smtp_session *s = a->s;
    a->decided = true;
    if (a->timer_init)
        uv_timer_stop(&a->timer);
    struct dmarc_outcome o = { 0 };
    enum dmarc_result dr = a->dmarc ? dmarc_result(a->dmarc, &o)
                           : a->from != DMARC_FROM_OK ? DMARC_PERMERROR : DMARC_TEMPERROR;
    enum verdict v = verdict(a, &o, dr);
    log_verdict(a, dr, &o, v);
    char *ar = authres(a);
    char domain[sizeof a->from_domain];
    memcpy(domain, a->from_domain, sizeof domain);
    const char *problem = from_problem(a->from);
    /* From here a may be freed (the transaction ends). */
    switch (v) {
    case V_REJECT_FROM:
        smtp_refuse_message(s, "550 5.7.1 Message rejected: %s; the header must name exactly "
                               "one author domain in From (RFC 7489 section 6.6.1)",
                            problem);
        break;
    case V_REJECT_DMARC:
        smtp_refuse_message(s, "550 5.7.1 Message rejected: %s's DMARC policy says reject, "
                               "and the message failed SPF and DKIM alignment",
                            domain);
        break;
    case V_JUNK:
    case V_DELIVER:
        smtp_deliver(s, ar, v == V_JUNK);
        break;
    }
    free(ar);
}

/* The next step once nothing is pending; the last thing its callers do,
 * since the transaction (and a) may end inside. */
static void advance(struct authcheck *a)
{
    if (!a->scanned || a->decided || a->spf_q || a->keys_pending > 0)
        return;
    if (!a->dmarc_started)
        start_dmarc(a);
    if (a->dmarc_q)
        return;
    decide(a);
}

/* ------------------------------------------------------------- deadline */

static void on_deadline(uv_timer_t *h)
{
    struct authcheck *a = h->data;
    a->expired = true;
    if (a->s->closed)
        return; /* the scan on the pool frees it all */
    log_event(PLOG_INFO, conn_id(a->s->conn), "event=authcheck-timeout peer=%s",
              conn_peer_ip(a->s->conn));
    if (a->spf_q) {
        dns_cancel(&a->spf_q);
        spf_answer(a->spf, &timed_out);
        spf_next(a);
    }
    for (unsigned i = 0; i < a->n_keys; i++) {
        struct key_lookup *k = &a->keys[i];
        if (k->q) {
            dns_cancel(&k->q);
            a->keys_pending--;
            give_key(a, k->name, &timed_out);
        }
    }
    if (a->dmarc_q) {
        dns_cancel(&a->dmarc_q);
        dmarc_answer(a->dmarc, &timed_out);
        dmarc_next(a);
    }
    advance(a);
}

/* --------------------------------------------------------------- public */

static struct authcheck *checks_new(struct smtp_session *s)
{
    struct authcheck *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->s = s;
    a->authserv_id = s->cfg->hostname;
    a->enabled = s->role == ROLE_MX && s->cfg->checks_mode != CHECKS_OFF && s->dns;
    a->from = DMARC_FROM_MISSING;
    if (a->enabled) {
        if (uv_timer_init(server_loop(conn_server(s->conn)), &a->timer) != 0) {
            free(a);
            return NULL;
        }
        a->timer.data = a;
        a->timer_init = true;
    }
    return a;
}

void smtp_checks_mail(struct smtp_session *s)
{
    if (s->role != ROLE_MX || s->cfg->checks_mode == CHECKS_OFF || !s->dns)
        return;
    struct smtp_txn *t = s->txn;
    struct authcheck *a = t->checks = checks_new(s);
    if (!a)
        return; /* tried again at the end of the data */
    /* RFC 7208 §2.4: the null sender is checked as postmaster@HELO. */
    if (spf_begin(conn_peer_ip(s->conn), t->from.null ? NULL : t->from.address, s->helo, false,
                  &a->spf) != 0) {
        a->spf = NULL;
        return;
    }
    spf_set_receiver(a->spf, s->cfg->hostname, (int64_t)time(NULL));
    spf_next(a);
}

void smtp_checks_message(struct smtp_session *s)
{
    struct smtp_txn *t = s->txn;
    if (!t->checks && !(t->checks = checks_new(s))) {
        smtp_refuse_message(s, "451 4.3.0 Out of memory, try again later");
        return;
    }
    struct authcheck *a = t->checks;
    a->msg = t->msg.data + t->body_start;
    a->len = t->msg.len - t->body_start;
    a->received_at = (int64_t)time(NULL);
    smtp_enter(s, PHASE_WAIT);
    conn_pause(s->conn);
    if (a->timer_init)
        uv_timer_start(&a->timer, on_deadline, (uint64_t)s->cfg->checks_timeout * 1000, 0);
    if (a->len > SMTP_SCAN_INLINE_MAX) {
        a->work.data = a;
        if (uv_queue_work(server_loop(conn_server(s->conn)), &a->work, scan_work,
                          scan_after) == 0) {
            s->committing = true;
            return;
        }
    }
    scan(a);
    scanned(a);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void smtp_checks_free(struct authcheck **ap)
{
    struct authcheck *a = *ap;
    if (!a)
        return;
    *ap = NULL;
    dns_cancel(&a->spf_q);
    for (unsigned i = 0; i < a->n_keys; i++)
        dns_cancel(&a->keys[i].q);
    dns_cancel(&a->dmarc_q);
    spf_free(&a->spf);
    dkim_verify_free(&a->dkim);
    dmarc_free(&a->dmarc);
    if (a->timer_init)
        uv_close((uv_handle_t *)&a->timer, on_timer_closed);
    else
        free(a);
}
