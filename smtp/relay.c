/*
 * relay.c — the outbound queue runner (docs/relay.md).
 *
 * Once a second, when there is room, the runner asks the store for the
 * due rows of the queue (one row per remote recipient) and groups them
 * into jobs: one message from one sender to the recipients of one domain.
 * Each destination domain runs at most [queue] per_domain jobs at once,
 * the whole runner [queue] max_connections. A job reads its message off
 * the loop, signs it with the newest DKIM key of its From domain (on the
 * thread pool: an RSA signature takes a millisecond or more), hands it to
 * outbound.c, and writes every recipient's outcome back in one store
 * transaction: delivered or bounced rows go, the others are retried after
 * a back-off that doubles from [queue] retry_min up to retry_max, until
 * [queue] lifetime has passed since the message was queued.
 *
 * Bounces (RFC 3464 reports, dsn.c) go to the envelope sender: into the
 * local mailbox when the sender is local, else into the queue with the
 * null sender; a message from the null sender is never bounced (RFC 5321
 * §6.1, §4.5.5). A delay notice goes once, after [queue] delay_warning.
 *
 * Lifetime: relay_stop drops the jobs not started and cuts the deliveries
 * under way (their rows stay due: a message whose final dot went out may
 * arrive twice, never not at all, RFC 5321 §6.1); a job reading, signing
 * or writing its outcome finishes that step. The runner is freed with its
 * last job.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtp/relay-int.h"

#define SCAN_MAX 256       /* rows asked for at once */
#define TICK_MS 1000       /* how often an idle runner looks for due rows */
#define ROUTE_CACHE_MAX 300 /* seconds a destination's route is reused at most */

struct job_rcpt {
    int64_t id;
    char *addr;
    unsigned attempts;
    bool warned;
    int64_t created;
};

struct job {
    struct relay *r;
    struct dest *dest;
    struct job *next, *prev;        /* the runner's jobs; pending ones also in dest */
    struct job *qnext;              /* dest's pending queue */
    bool started;

    int64_t blob_id;
    char *mail_from;
    struct job_rcpt *rc;
    const char **addrs;             /* rc[i].addr, for outbound_job */
    size_t n, cap;

    char *stored;                   /* as stored (owned) */
    const char *msg;                /* stored minus our Return-Path */
    size_t len;
    char *sig;                      /* "DKIM-Signature: ...\r\n" or NULL */
    size_t sig_len;
    char *out;                      /* sig + msg, what goes out */
    size_t out_len;
    char dkim_domain[DNS_NAME_MAX + 1];
    char dkim_selector[DNS_NAME_MAX + 1];
    char *dkim_pem;                 /* the key to sign with, or NULL */
    bool eight_bit, smtputf8;
    uv_work_t work;

    struct outbound_job ojob;
    struct outbound *ob;
};

struct dest {
    char domain[DNS_NAME_MAX + 1];
    struct route route;             /* the last one found, while fresh */
    int64_t route_expires;
    struct dest *next;
    struct job *head, *tail;        /* pending jobs */
    unsigned active;
};

struct relay {
    struct server *srv;
    struct store *store;
    struct dns *dns;
    const struct config *cfg;
    uv_timer_t timer;
    struct dest *dests;
    struct job *jobs;               /* every live job */
    unsigned n_jobs, active;
    bool scanning, more;            /* the last scan found rows: scan again once they started */
    bool stopping, timer_closed;
};

unsigned relay_retry_delay(unsigned retry_min, unsigned retry_max, unsigned failures)
{
    uint64_t d = retry_min;
    for (unsigned i = 1; i < failures && d < retry_max; i++)
        d *= 2;
    return d > retry_max ? retry_max : (unsigned)d;
}

static void start_jobs(struct relay *r);
static void tick_soon(struct relay *r);

/* -------------------------------------------------------------- lifetime */

static void relay_free_if_done(struct relay *r)
{
    if (r->stopping && r->timer_closed && r->n_jobs == 0) {
        while (r->dests) {
            struct dest *d = r->dests;
            r->dests = d->next;
            free(d);
        }
        free(r);
    }
}

static void job_free(struct job *j)
{
    struct relay *r = j->r;
    if (j->prev)
        j->prev->next = j->next;
    else
        r->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    r->n_jobs--;
    if (j->started) {
        r->active--;
        j->dest->active--;
    }
    for (size_t i = 0; i < j->n; i++)
        free(j->rc[i].addr);
    free(j->rc);
    free(j->addrs);
    free(j->mail_from);
    free(j->stored);
    free(j->sig);
    free(j->out);
    free(j->dkim_pem);
    free(j);
    if (r->stopping)
        relay_free_if_done(r);
    else
        start_jobs(r);
}

/* --------------------------------------------------------- bounces, notices */

struct report {
    char *data;
    size_t len;
    int64_t user_ids[STORE_MAX_EXPANSION];
    char *remote[9];
    unsigned n_remote;
};

static void on_report_stored(void *arg, int result)
{
    struct report *rp = arg;
    log_event(result == STORE_OK ? PLOG_INFO : PLOG_ERROR, 0,
              "event=relay-report-stored result=%d bytes=%zu", result, rp->len);
    free(rp->data);
    for (unsigned i = 0; i < rp->n_remote; i++)
        free(rp->remote[i]);
    free(rp);
}

/* Hands a DSN to the store for the sender: local mailboxes or the queue. */
static void deliver_report(struct relay *r, const char *to, char *data, size_t len)
{
    struct report *rp = calloc(1, sizeof *rp);
    struct store_rcpt rcpt;
    if (!rp) {
        free(data);
        return;
    }
    /* Delivered here, it gets the Return-Path a final delivery adds (RFC
     * 5321 §4.4); queued, the relay drops it again when sending. */
    static const char rpath[] = "Return-Path: <>\r\n";
    rp->data = malloc(sizeof rpath - 1 + len);
    if (!rp->data) {
        free(data);
        free(rp);
        return;
    }
    memcpy(rp->data, rpath, sizeof rpath - 1);
    memcpy(rp->data + sizeof rpath - 1, data, len);
    free(data);
    rp->len = len += sizeof rpath - 1;
    struct store_delivery d = {
        .data = rp->data, .len = len, .internal_date = time(NULL), .mail_from = "",
        .user_ids = rp->user_ids, .remote = (const char *const *)rp->remote,
    };
    const char *at = strrchr(to, '@');
    int res = store_resolve_rcpt(r->store, to, &rcpt);
    if (res == STORE_OK) {
        memcpy(rp->user_ids, rcpt.user_ids, rcpt.n_users * sizeof rcpt.user_ids[0]);
        d.n_users = rcpt.n_users;
        for (unsigned i = 0; i < rcpt.n_remote; i++)
            rp->remote[rp->n_remote++] = strdup(rcpt.remote[i]);
    } else if (at && !store_domain_is_local(r->store, at + 1)) {
        rp->remote[rp->n_remote++] = strdup(to);
    }
    for (unsigned i = 0; i < rp->n_remote; i++)
        if (!rp->remote[i])
            res = STORE_ERROR;
    d.n_remote = rp->n_remote;
    char v[400];
    if ((d.n_users == 0 && d.n_remote == 0) || (res != STORE_OK && res != STORE_NOTFOUND) ||
        store_deliver(r->store, &d, on_report_stored, rp) != STORE_OK) {
        log_event(PLOG_WARN, 0, "event=relay-report-dropped to=%s reason=%s",
                  log_value(to, v, sizeof v), d.n_users + d.n_remote ? "store" : "no-such-sender");
        on_report_stored(rp, STORE_ERROR);
    }
}

/* A report on recipients idx[0..n) of j: failed, or delayed. */
static void send_report(struct job *j, const struct relay_outcome *out, const size_t *idx,
                        size_t n, enum dsn_action action)
{
    struct relay *r = j->r;
    if (n == 0)
        return;
    char v[400];
    if (!j->mail_from[0]) {
        /* RFC 5321 §4.5.5: never a report about a report. */
        log_event(PLOG_INFO, 0, "event=relay-report-skipped reason=null-sender rcpts=%zu", n);
        return;
    }
    struct dsn_rcpt *dr = calloc(n, sizeof *dr);
    if (!dr)
        return;
    int64_t now = time(NULL);
    for (size_t k = 0; k < n; k++) {
        const struct relay_outcome *o = &out[idx[k]];
        const struct job_rcpt *jr = &j->rc[idx[k]];
        dr[k] = (struct dsn_rcpt){
            .rcpt = jr->addr, .action = action, .status = o->status[0] ? o->status : NULL,
            .remote_mta = o->remote_mta[0] ? o->remote_mta : NULL,
            .diagnostic = o->diagnostic, .last_attempt = now,
            .will_retry_until = jr->created + r->cfg->queue_lifetime,
        };
    }
    char postmaster[320];
    snprintf(postmaster, sizeof postmaster, "MAILER-DAEMON@%s", r->cfg->hostname);
    struct dsn_report rep = {
        .reporting_mta = r->cfg->hostname, .postmaster = postmaster,
        .envelope_from = j->mail_from, .arrival_date = j->rc[idx[0]].created, .now = now,
        .rcpts = dr, .n_rcpts = n, .original = j->msg, .original_len = j->len,
        .headers_only = action == DSN_DELAYED, /* the sender still has it on its way */
    };
    char *data = NULL;
    size_t len = 0;
    if (dsn_build(&rep, &data, &len) == 0) {
        log_event(PLOG_INFO, 0, "event=relay-report action=%s to=%s rcpts=%zu",
                  action == DSN_FAILED ? "failed" : "delayed",
                  log_value(j->mail_from, v, sizeof v), n);
        deliver_report(r, j->mail_from, data, len);
    }
    free(dr);
}

/* ------------------------------------------------------------- outcomes */

static void on_updated(void *arg, int result)
{
    struct job *j = arg;
    if (result != STORE_OK)
        log_event(PLOG_ERROR, 0, "event=relay-update-failed result=%d rcpts=%zu", result, j->n);
    job_free(j);
}

/* Every recipient's outcome: the store rows, the reports, the logs. */
static void on_delivered(void *arg, struct outbound *ob, struct relay_outcome *out)
{
    struct job *j = arg;
    struct relay *r = j->r;
    const struct config *cfg = r->cfg;
    j->ob = NULL;
    int64_t now = time(NULL);
    const struct route *rt = outbound_route(ob);
    if (rt && rt != j->ojob.route && rt->ttl > 0) {
        /* DNS answers are kept as long as their TTL says, at most 5 minutes. */
        j->dest->route = *rt;
        j->dest->route_expires = now + (rt->ttl < ROUTE_CACHE_MAX ? rt->ttl : ROUTE_CACHE_MAX);
    }
    struct store_queue_outcome *qo = calloc(j->n, sizeof *qo);
    size_t *failed = calloc(j->n, sizeof *failed), *delayed = calloc(j->n, sizeof *delayed);
    char **errs = calloc(j->n, sizeof *errs);
    size_t n_failed = 0, n_delayed = 0;
    if (!qo || !failed || !delayed || !errs) {
        /* The rows stay due: the message goes again (a duplicate, not a loss). */
        free(qo), free(failed), free(delayed), free(errs);
        job_free(j);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        struct relay_outcome *o = &out[i];
        struct job_rcpt *jr = &j->rc[i];
        char v[400], w[1200];
        qo[i].id = jr->id;
        bool expired = now >= jr->created + (int64_t)cfg->queue_lifetime;
        if (o->delivered) {
            qo[i].what = STORE_QUEUE_DONE;
        } else if (o->permanent || expired) {
            if (!o->status[0]) /* else the last status: RFC 3464 allows 4.x.x as failed */
                snprintf(o->status, sizeof o->status, "4.4.7"); /* RFC 3463: expired */
            qo[i].what = STORE_QUEUE_DONE;
            failed[n_failed++] = i;
        } else {
            qo[i].what = STORE_QUEUE_RETRY;
            qo[i].next_attempt =
                now + relay_retry_delay(cfg->queue_retry_min, cfg->queue_retry_max,
                                        jr->attempts + 1);
            size_t elen = strlen(o->status) + strlen(o->diagnostic) + 2;
            if ((errs[i] = malloc(elen)) != NULL)
                snprintf(errs[i], elen, "%s %s", o->status, o->diagnostic);
            qo[i].last_error = errs[i] ? errs[i] : o->status;
            if (!jr->warned && cfg->queue_delay_warning &&
                now - jr->created >= (int64_t)cfg->queue_delay_warning) {
                qo[i].what |= STORE_QUEUE_WARNED;
                delayed[n_delayed++] = i;
            }
        }
        log_event(o->delivered ? PLOG_INFO : PLOG_WARN, 0,
                  "event=relay-%s rcpt=%s mta=%s status=%s attempts=%u reply=%s",
                  o->delivered ? "delivered" : qo[i].what == STORE_QUEUE_DONE ? "failed" :
                  "deferred", log_value(jr->addr, v, sizeof v),
                  o->remote_mta[0] ? o->remote_mta : "-", o->status, jr->attempts + 1,
                  log_value(o->diagnostic, w, sizeof w));
    }
    send_report(j, out, failed, n_failed, DSN_FAILED);
    send_report(j, out, delayed, n_delayed, DSN_DELAYED);
    if (store_queue_update(r->store, qo, j->n, on_updated, j) != STORE_OK)
        on_updated(j, STORE_ERROR);
    for (size_t i = 0; i < j->n; i++)
        free(errs[i]);
    free(errs), free(qo), free(failed), free(delayed);
}

/* --------------------------------------------------- reading, signing, sending */

static void send_job(struct job *j)
{
    if (j->r->stopping) {
        job_free(j);
        return;
    }
    j->ojob = (struct outbound_job){
        .domain = j->dest->domain,
        .route = time(NULL) < j->dest->route_expires ? &j->dest->route : NULL,
        .mail_from = j->mail_from,
        .rcpts = j->addrs, .n_rcpts = j->n,
        .msg = j->out ? j->out : j->msg, .len = j->out ? j->out_len : j->len,
        .eight_bit = j->eight_bit, .smtputf8 = j->smtputf8,
    };
    j->ob = outbound_start(j->r->srv, j->r->dns, j->r->cfg, &j->ojob, on_delivered, j);
    if (!j->ob) {
        log_event(PLOG_ERROR, 0, "event=relay-start-failed domain=%s", j->dest->domain);
        job_free(j);
    }
}

/* Where the message has bytes over 127: anywhere, and in the header. */
static void scan_8bit(struct job *j)
{
    const unsigned char *p = (const unsigned char *)j->msg;
    bool in_header = true;
    for (size_t i = 0; i < j->len; i++) {
        if (p[i] >= 0x80) {
            j->eight_bit = true;
            j->smtputf8 |= in_header;
            if (!in_header)
                return;
        }
        /* The header ends at the first empty line. */
        if (in_header && p[i] == '\n' && i + 1 < j->len &&
            (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < j->len && p[i + 2] == '\n')))
            in_header = false;
    }
}

static void sign(struct job *j)
{
    struct dkim_key *k = NULL;
    char err[256];
    if (dkim_key_load(j->dkim_pem, strlen(j->dkim_pem), j->dkim_domain, j->dkim_selector, &k,
                      err, sizeof err) != 0) {
        log_event(PLOG_ERROR, 0, "event=dkim-key-unusable domain=%s selector=%s error=\"%s\"",
                  j->dkim_domain, j->dkim_selector, err);
        return;
    }
    if (dkim_sign(k, j->msg, j->len, time(NULL), NULL, &j->sig, &j->sig_len) != 0)
        j->sig = NULL;
    dkim_key_free(&k);
    if (!j->sig) {
        log_event(PLOG_WARN, 0, "event=dkim-unsigned domain=%s reason=sign", j->dkim_domain);
        return;
    }
    j->out = malloc(j->sig_len + j->len);
    if (j->out) {
        memcpy(j->out, j->sig, j->sig_len);
        memcpy(j->out + j->sig_len, j->msg, j->len);
        j->out_len = j->sig_len + j->len;
    } else {
        log_event(PLOG_WARN, 0, "event=dkim-unsigned domain=%s reason=memory", j->dkim_domain);
    }
}

/* Pool: what would hold the loop for a large message (the 8-bit scan, the
 * signature); nothing of the runner is touched. */
static void prepare_work(uv_work_t *w)
{
    struct job *j = w->data;
    scan_8bit(j);
    if (j->dkim_pem)
        sign(j);
}

static void prepare_after(uv_work_t *w, int status)
{
    (void)status;
    send_job(w->data);
}

/* The newest key of a domain: the first row store_dkim_key_list gives. */
static void on_key(void *arg, const struct store_dkim_key_info *k)
{
    struct job *j = arg;
    if (j->dkim_pem)
        return;
    j->dkim_pem = strdup(k->pem);
    snprintf(j->dkim_selector, sizeof j->dkim_selector, "%s", k->selector);
}

/* Bytes of a leading Return-Path field, continuation lines included. */
static size_t return_path_len(const char *p, size_t len)
{
    static const char name[] = "Return-Path:";
    if (len < sizeof name - 1 || strncasecmp(p, name, sizeof name - 1) != 0)
        return 0;
    size_t i = 0;
    for (;;) {
        const char *nl = memchr(p + i, '\n', len - i);
        if (!nl)
            return 0;
        i = (size_t)(nl - p) + 1;
        if (i == len || (p[i] != ' ' && p[i] != '\t'))
            return i;
    }
}

static void on_message(void *arg, int result, char *data, size_t len)
{
    struct job *j = arg;
    if (result != STORE_OK || j->r->stopping) {
        free(data);
        if (result != STORE_OK)
            log_event(PLOG_ERROR, 0, "event=relay-read-failed blob=%lld result=%d",
                      (long long)j->blob_id, result);
        job_free(j); /* the rows stay; a vanished blob means they went too */
        return;
    }
    /* The store keeps the Return-Path: field that local delivery puts
     * first; it belongs to the final delivery only (RFC 5321 §4.4). */
    size_t skip = return_path_len(data, len);
    j->stored = data;
    j->msg = data + skip;
    j->len = len - skip;
    /* Signed by the From domain, so that DMARC aligns (RFC 7489 §3.1.1). */
    if (dmarc_from_domain(j->msg, j->len, j->dkim_domain, sizeof j->dkim_domain) == DMARC_FROM_OK)
        store_dkim_key_list(j->r->store, j->dkim_domain, on_key, j);
    j->work.data = j;
    if (uv_queue_work(server_loop(j->r->srv), &j->work, prepare_work, prepare_after) != 0) {
        prepare_work(&j->work); /* no pool: on the loop, rather than not at all */
        prepare_after(&j->work, 0);
    }
}

static void start_job(struct job *j)
{
    struct relay *r = j->r;
    j->started = true;
    r->active++;
    j->dest->active++;
    if (store_queue_read(r->store, j->blob_id, on_message, j) != STORE_OK)
        job_free(j);
}

/* Starts pending jobs while the limits allow. */
static void start_jobs(struct relay *r)
{
    bool started = true;
    while (started && r->active < r->cfg->queue_max_connections) {
        started = false;
        for (struct dest *d = r->dests; d && r->active < r->cfg->queue_max_connections;
             d = d->next) {
            if (!d->head || d->active >= r->cfg->queue_per_domain)
                continue;
            struct job *j = d->head;
            d->head = j->qnext;
            if (!d->head)
                d->tail = NULL;
            start_job(j);
            started = true;
        }
    }
    /* The last scan found rows and all have started: more may be due. */
    bool pending = false;
    for (struct dest *d = r->dests; d && !pending; d = d->next)
        pending = d->head != NULL;
    if (r->more && !pending && !r->scanning)
        tick_soon(r);
}

/* ------------------------------------------------------------- scanning */

static struct dest *dest_for(struct relay *r, const char *domain)
{
    for (struct dest *d = r->dests; d; d = d->next)
        if (strcmp(d->domain, domain) == 0)
            return d;
    struct dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    d->next = r->dests;
    r->dests = d;
    return d;
}

static struct job *new_job(struct relay *r, struct dest *d, const struct store_queue_item *q)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j || !(j->mail_from = strdup(q->mail_from))) {
        free(j);
        return NULL;
    }
    j->r = r;
    j->dest = d;
    j->blob_id = q->blob_id;
    j->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = j;
    r->jobs = j;
    r->n_jobs++;
    if (d->tail)
        d->tail->qnext = j;
    else
        d->head = j;
    d->tail = j;
    return j;
}

static void on_item(void *arg, const struct store_queue_item *q)
{
    struct relay *r = arg;
    struct dest *d = dest_for(r, q->domain);
    if (!d)
        return;
    struct job *j = d->tail;
    if (!j || j->started || j->blob_id != q->blob_id || strcmp(j->mail_from, q->mail_from) != 0 ||
        j->n == RELAY_MAX_RCPTS)
        j = new_job(r, d, q);
    if (!j)
        return;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 4;
        struct job_rcpt *rc = realloc(j->rc, cap * sizeof *rc);
        if (!rc)
            return;
        j->rc = rc;
        const char **addrs = realloc(j->addrs, cap * sizeof *addrs);
        if (!addrs)
            return;
        j->addrs = addrs;
        j->cap = cap;
    }
    char *addr = strdup(q->rcpt);
    if (!addr)
        return;
    j->rc[j->n] = (struct job_rcpt){ .id = q->id, .addr = addr, .attempts = q->attempts,
                                     .warned = q->warned, .created = q->created };
    j->addrs[j->n] = addr;
    j->n++;
}

static void on_scanned(void *arg, int result, unsigned n)
{
    struct relay *r = arg;
    r->scanning = false;
    r->more = result == STORE_OK && n > 0;
    /* A job whose rows could not be taken (out of memory) has none: drop it. */
    for (struct job *j = r->jobs, *next; j; j = next) {
        next = j->next;
        if (!j->started && j->n == 0) {
            struct dest *d = j->dest;
            struct job **pp = &d->head, *prev = NULL;
            while (*pp && *pp != j) {
                prev = *pp;
                pp = &(*pp)->qnext;
            }
            if (*pp)
                *pp = j->qnext;
            if (d->tail == j)
                d->tail = prev;
            job_free(j);
        }
    }
    if (r->stopping) {
        relay_free_if_done(r);
        return;
    }
    start_jobs(r);
}

static void scan(struct relay *r)
{
    size_t n_busy = 0;
    for (struct job *j = r->jobs; j; j = j->next)
        n_busy += j->n;
    int64_t *busy = malloc((n_busy ? n_busy : 1) * sizeof *busy);
    if (!busy)
        return;
    n_busy = 0;
    for (struct job *j = r->jobs; j; j = j->next)
        for (size_t i = 0; i < j->n; i++)
            busy[n_busy++] = j->rc[i].id;
    r->more = false;
    r->scanning = true;
    if (store_queue_due(r->store, time(NULL), SCAN_MAX, busy, n_busy, on_item, on_scanned, r) !=
        STORE_OK)
        r->scanning = false;
    free(busy);
}

static void on_tick(uv_timer_t *t)
{
    struct relay *r = t->data;
    int64_t when;
    if (r->stopping || r->scanning || r->active >= r->cfg->queue_max_connections)
        return;
    if (r->more || (store_queue_next(r->store, &when) == STORE_OK && when <= time(NULL)))
        scan(r);
}

static void tick_soon(struct relay *r)
{
    if (!r->stopping)
        uv_timer_start(&r->timer, on_tick, 0, TICK_MS);
}

/* ------------------------------------------------------------ interface */

int relay_start(struct server *srv, struct store *store, struct dns *dns, struct relay **out)
{
    struct relay *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->srv = srv;
    r->store = store;
    r->dns = dns;
    r->cfg = server_config(srv);
    if (uv_timer_init(server_loop(srv), &r->timer) != 0) {
        free(r);
        return -1;
    }
    r->timer.data = r;
    uv_unref((uv_handle_t *)&r->timer);
    uv_timer_start(&r->timer, on_tick, 0, TICK_MS);
    *out = r;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    r->timer_closed = true;
    relay_free_if_done(r);
}

void relay_stop(struct relay **rp)
{
    struct relay *r = *rp;
    if (!r)
        return;
    *rp = NULL;
    r->stopping = true;
    for (struct job *j = r->jobs, *next; j; j = next) {
        next = j->next;
        if (j->ob) {
            outbound_cancel(&j->ob);
            job_free(j);
        }
    }
    for (struct dest *d = r->dests; d; d = d->next) {
        struct job *j = d->head;
        d->head = d->tail = NULL;
        while (j) {
            struct job *next = j->qnext;
            job_free(j);
            j = next;
        }
    }
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
