/*
 * route.c — where the relay sends a destination domain's mail: the
 * addresses to try, in order (RFC 5321 §5.1).
 *
 * MX mode: the domain's MX hosts by preference; no MX record at all means
 * the domain itself is the one host (the implicit MX); a null MX (RFC
 * 7505) or a domain that does not exist is a permanent failure. Every MX
 * host's A then AAAA addresses are asked at once and tried in turn, IPv4
 * first (IPv6 outbound is the more often broken). When our own hostname
 * is among the MX hosts, it and every host of the same or a less preferred
 * rank are dropped (§5.1: we are already at that rank; sending there would
 * loop).
 *
 * Smarthost mode ([relay] host): the one host, its addresses, the port
 * and TLS of the config.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/relay-int.h"

struct route_query;

/* One address lookup: which host and family it answers for. */
struct route_lookup {
    struct route_query *q;
    struct dns_query *dq;
    size_t host;
    int family;                     /* 0: A, 1: AAAA */
};

struct route_host {
    char name[DNS_NAME_MAX + 1];
    char addrs[2][ROUTE_MAX_ADDRS][46];
    size_t n_addrs[2];
    bool temp;                      /* a lookup failed for now */
};

struct route_query {
    struct dns *dns;
    const struct config *cfg;
    route_cb cb;
    void *arg;
    char domain[DNS_NAME_MAX + 1];
    struct dns_query *mx;
    struct route_host hosts[ROUTE_MAX_HOSTS];
    size_t n_hosts;
    struct route_lookup look[ROUTE_MAX_HOSTS][2];
    unsigned pending;               /* address lookups outstanding */
    uint32_t ttl;                   /* least TTL of the answers used */
};

static void cancel_all(struct route_query *q)
{
    dns_cancel(&q->mx);
    for (size_t h = 0; h < q->n_hosts; h++)
        for (int f = 0; f < 2; f++)
            dns_cancel(&q->look[h][f].dq);
}

/* The answer, then the query is gone. */
static void finish(struct route_query *q, enum route_status status, const char *why,
                   const struct route *rt)
{
    cancel_all(q);
    q->cb(q->arg, status, why, rt);
    free(q);
}

/* Every address lookup answered: the route, in host order, A before AAAA. */
static void addresses_done(struct route_query *q)
{
    struct route rt = { .n = 0 };
    bool temp = false;
    for (size_t h = 0; h < q->n_hosts; h++) {
        struct route_host *host = &q->hosts[h];
        temp |= host->temp;
        for (int f = 0; f < 2; f++)
            for (size_t i = 0; i < host->n_addrs[f] && rt.n < ROUTE_MAX_TARGETS; i++) {
                struct route_target *tg = &rt.t[rt.n++];
                snprintf(tg->host, sizeof tg->host, "%s", host->name);
                snprintf(tg->ip, sizeof tg->ip, "%s", host->addrs[f][i]);
            }
    }
    rt.port = q->cfg->relay_host[0] ? q->cfg->relay_port : q->cfg->mx_port;
    rt.ttl = q->ttl;
    if (rt.n > 0)
        finish(q, ROUTE_OK, NULL, &rt);
    else if (temp)
        finish(q, ROUTE_TEMP, "4.4.3 The addresses of the destination's mail hosts cannot be"
               " found now", NULL);
    else
        finish(q, ROUTE_PERM, "5.4.4 The destination's mail hosts have no addresses", NULL);
}

static bool temporary(enum dns_status st)
{
    return st == DNS_TEMPFAIL || st == DNS_TIMEOUT;
}

static void on_addrs(void *arg, const struct dns_result *r)
{
    struct route_lookup *l = arg;
    struct route_query *q = l->q;
    struct route_host *host = &q->hosts[l->host];
    l->dq = NULL;
    if (r->status == DNS_OK && r->ttl < q->ttl)
        q->ttl = r->ttl;
    if (r->status == DNS_OK)
        for (size_t i = 0; i < r->n_addrs && host->n_addrs[l->family] < ROUTE_MAX_ADDRS; i++)
            snprintf(host->addrs[l->family][host->n_addrs[l->family]++], 46, "%s", r->addrs[i]);
    else if (temporary(r->status))
        host->temp = true;
    if (--q->pending == 0)
        addresses_done(q);
}

/* Asks every host's A and AAAA at once; a numeric host is its own address.
 * Returns the lookups started. */
static unsigned find_addresses(struct route_query *q)
{
    for (size_t h = 0; h < q->n_hosts; h++) {
        struct route_host *host = &q->hosts[h];
        unsigned char bin[16];
        if (inet_pton(AF_INET, host->name, bin) == 1 || inet_pton(AF_INET6, host->name, bin) == 1) {
            int f = strchr(host->name, ':') ? 1 : 0;
            /* A numeric host name fits an address buffer. */
            memcpy(host->addrs[f][host->n_addrs[f]++], host->name, strlen(host->name) + 1);
            continue;
        }
        for (int f = 0; f < 2; f++) {
            struct route_lookup *l = &q->look[h][f];
            *l = (struct route_lookup){ .q = q, .host = h, .family = f };
            q->pending++;
            l->dq = dns_query(q->dns, host->name, f ? DNS_AAAA : DNS_A, on_addrs, l);
            if (!l->dq) {
                q->pending--;
                host->temp = true;
            }
        }
    }
    return q->pending;
}

static void add_host(struct route_query *q, const char *name)
{
    if (q->n_hosts < ROUTE_MAX_HOSTS)
        snprintf(q->hosts[q->n_hosts++].name, DNS_NAME_MAX + 1, "%s", name);
}

static void on_mx(void *arg, const struct dns_result *r)
{
    struct route_query *q = arg;
    q->mx = NULL;
    if (r->status == DNS_NODATA) {
        add_host(q, q->domain); /* §5.1: no MX, the domain is its own host */
    } else if (r->status == DNS_NXDOMAIN || r->status == DNS_BADNAME) {
        finish(q, ROUTE_PERM, "5.1.2 The recipient's domain does not exist", NULL);
        return;
    } else if (r->status != DNS_OK) {
        finish(q, ROUTE_TEMP, "4.4.3 The recipient domain's mail hosts cannot be found now",
               NULL);
        return;
    } else if (dns_mx_is_null(r)) {
        finish(q, ROUTE_PERM, "5.1.10 The recipient's domain accepts no mail (null MX,"
               " RFC 7505)", NULL);
        return;
    } else {
        if (r->ttl < q->ttl)
            q->ttl = r->ttl;
        /* §5.1: ourselves among them: only the more preferred hosts. */
        size_t n = r->n_mx;
        for (size_t i = 0; i < r->n_mx; i++)
            if (strcasecmp(r->mx[i].host, q->cfg->hostname) == 0) {
                n = i;
                while (n > 0 && r->mx[n - 1].preference == r->mx[i].preference)
                    n--;
                break;
            }
        for (size_t i = 0; i < n; i++)
            if (r->mx[i].host[0])
                add_host(q, r->mx[i].host);
        if (n < r->n_mx && q->n_hosts == 0) {
            finish(q, ROUTE_PERM, "5.4.6 The recipient domain's mail comes back to this"
                   " server (its best MX is us): a mail loop", NULL);
            return;
        }
    }
    if (find_addresses(q) == 0)
        addresses_done(q);
}

bool route_numeric(const struct config *cfg, struct route *rt)
{
    unsigned char bin[16];
    const char *h = cfg->relay_host;
    if (!h[0] || (inet_pton(AF_INET, h, bin) != 1 && inet_pton(AF_INET6, h, bin) != 1))
        return false;
    rt->n = 1;
    rt->port = cfg->relay_port;
    rt->ttl = UINT32_MAX;
    snprintf(rt->t[0].host, sizeof rt->t[0].host, "%s", h);
    snprintf(rt->t[0].ip, sizeof rt->t[0].ip, "%s", h);
    return true;
}

struct route_query *route_find(struct dns *dns, const struct config *cfg, const char *domain,
                               route_cb cb, void *arg)
{
    struct route_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->dns = dns;
    q->cfg = cfg;
    q->cb = cb;
    q->arg = arg;
    q->ttl = UINT32_MAX;
    snprintf(q->domain, sizeof q->domain, "%s", domain);
    if (cfg->relay_host[0]) {
        add_host(q, cfg->relay_host);
        if (find_addresses(q) == 0) {
            free(q);
            return NULL;
        }
        return q;
    }
    q->mx = dns_query(dns, domain, DNS_MX, on_mx, q);
    if (!q->mx) {
        free(q);
        return NULL;
    }
    return q;
}

void route_cancel(struct route_query **qp)
{
    struct route_query *q = *qp;
    if (!q)
        return;
    *qp = NULL;
    cancel_all(q);
    free(q);
}
