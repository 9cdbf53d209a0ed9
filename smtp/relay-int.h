/*
 * relay-int.h — private to the outbound relay (relay.c runs the queue,
 * route.c finds where a domain's mail goes, outbound.c speaks SMTP to it).
 * docs/relay.md tells the whole story.
 */
#ifndef PETREL_RELAY_INT_H
#define PETREL_RELAY_INT_H

#include "smtp/smtp.h"

#define ROUTE_MAX_HOSTS 10     /* MX hosts tried for one domain */
#define ROUTE_MAX_ADDRS 4      /* addresses of one family of one host */
#define ROUTE_MAX_TARGETS 16   /* addresses tried for one delivery, all hosts */

#define RELAY_MAX_RCPTS 100        /* recipients of one envelope (RFC 5321 §4.5.3.1.8) */
#define RELAY_CONNECT_TIMEOUT 30000 /* ms for the TCP connect (and implicit TLS) */

/* ---------------------------------------------------------------- route.c */

struct route_target {
    char host[DNS_NAME_MAX + 1];   /* the MX host (or smarthost) name: SNI, logs, DSNs */
    char ip[46];
};

struct route {
    struct route_target t[ROUTE_MAX_TARGETS];
    size_t n;
    int port;
    uint32_t ttl;                  /* seconds it may be reused: the least TTL of its answers */
};

enum route_status {
    ROUTE_OK,
    ROUTE_TEMP,   /* DNS failed for now: try the message again later */
    ROUTE_PERM,   /* no such domain, null MX, no addresses, a loop: bounce */
};

/* why: "5.1.10 ..." — an enhanced status code then words, for the DSN. rt:
 * valid during the callback, when ROUTE_OK. */
typedef void (*route_cb)(void *arg, enum route_status status, const char *why,
                         const struct route *rt);
struct route_query;
/* The smarthost's route when [relay] host is a numeric address: no DNS. */
bool route_numeric(const struct config *cfg, struct route *rt);
/* Finds the targets for domain (MX mode) or the smarthost (a name); cb runs
 * exactly once, later, unless route_cancel comes first. NULL: out of memory. */
struct route_query *route_find(struct dns *dns, const struct config *cfg, const char *domain,
                               route_cb cb, void *arg);
void route_cancel(struct route_query **q);

/* ------------------------------------------------------------- outbound.c */

/* One recipient's outcome of a delivery attempt. */
struct relay_outcome {
    bool delivered, permanent;      /* neither: try again later */
    char status[16];                /* "5.1.1" */
    char *diagnostic;               /* the server's reply or our words (malloc'd) */
    char remote_mta[DNS_NAME_MAX + 1];  /* the host that answered, "" when none did */
};

/* An envelope to send: the message once, to recipients of one domain. */
struct outbound_job {
    const char *domain;
    const struct route *route;      /* known (cached) route, or NULL: find it */
    const char *mail_from;
    const char *const *rcpts;
    size_t n_rcpts;
    const char *msg;                /* as it goes out: CRLF lines, signed */
    size_t len;
    bool eight_bit;                 /* a byte over 127 anywhere: BODY=8BITMIME */
    bool smtputf8;                  /* one in the header: SMTPUTF8 (RFC 6531 §3.2) */
};

struct outbound;
typedef void (*outbound_cb)(void *arg, struct outbound *o, struct relay_outcome *out /* n_rcpts */);
/*
 * Delivers job over the targets of its route in turn, until one takes a
 * decision on the recipients; cb runs once with every recipient's outcome
 * (the array is the callee's: valid during the callback). job and its
 * strings must stay valid until then. cancel: cb never runs (shutdown).
 */
struct outbound *outbound_start(struct server *srv, struct dns *dns, const struct config *cfg,
                                const struct outbound_job *job, outbound_cb cb, void *arg);
void outbound_cancel(struct outbound **o);
/* During the callback: the route it used (found or given), NULL when none. */
const struct route *outbound_route(const struct outbound *o);

#endif
