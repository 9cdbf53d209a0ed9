/*
 * dns.c — asynchronous DNS on the libuv loop, with c-ares (docs/dns.md).
 *
 * c-ares owns the sockets, the query packets and the retries; its socket
 * state callback tells us which sockets to watch, and a uv_poll_t per socket
 * feeds readiness back through ares_process_fd(). One uv_timer_t serves both
 * c-ares's retry timeouts and our own deadline per query (timeout x tries:
 * c-ares alone doubles the wait on every round). No threads.
 *
 * Answers are parsed here, by the pure dns_parse_response(), rather than by
 * c-ares's ares_parse_*_reply(): those drop TTLs, fold "name exists, no such
 * record" into an error, and allocate as much as the answer asks.
 *
 * A query's life: pending (in d->pending, c-ares holds it) -> its callback
 * runs (answer, error, our deadline, or dns_free) -> freed when c-ares lets
 * go of it. A query that ends before c-ares is done with it (deadline,
 * dns_cancel) stays allocated, detached (cb NULL), until c-ares calls back.
 * One that c-ares ends inside ares_query() itself, or that fails our own
 * checks, waits in d->ready for the next loop turn (the kick timer), so a
 * callback never runs inside dns_query().
 */
#include "core/core.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 1035 §3.2.2, RFC 3596 §2.1: the record types and class we ask for. */
enum { RR_A = 1, RR_CNAME = 5, RR_PTR = 12, RR_MX = 15, RR_TXT = 16, RR_AAAA = 28, CLASS_IN = 1 };

/* EDNS UDP payload size: the DNS flag day 2020 value, which avoids IP
 * fragmentation; larger answers come over TCP. */
#define DNS_EDNS_SIZE 1232
/* CNAME links followed from the name asked (RFC 1034 §3.6.2 sets none). */
#define DNS_MAX_CNAME 8
/* Bytes of strings in one result. The caps above keep it under ~82 KiB
 * (64 KiB of TXT data at most, 64 names of 254); this only backs them up. */
#define DNS_TEXT_LIMIT (256 * 1024)
#define DNS_MAX_TRIES 100

static const struct {
    const char *name;
    uint16_t rrtype;
} types[] = {
    [DNS_A] = { "A", RR_A },
    [DNS_AAAA] = { "AAAA", RR_AAAA },
    [DNS_MX] = { "MX", RR_MX },
    [DNS_TXT] = { "TXT", RR_TXT },
    [DNS_PTR] = { "PTR", RR_PTR },
};
#define NTYPES (sizeof types / sizeof types[0])

static const char *const status_names[] = {
    [DNS_OK] = "ok",
    [DNS_NXDOMAIN] = "nxdomain",
    [DNS_NODATA] = "nodata",
    [DNS_TEMPFAIL] = "tempfail",
    [DNS_TIMEOUT] = "timeout",
    [DNS_BADNAME] = "badname",
    [DNS_CANCELLED] = "cancelled",
};

const char *dns_status_name(enum dns_status status)
{
    if ((unsigned)status >= sizeof status_names / sizeof status_names[0])
        return "unknown";
    return status_names[status];
}

const char *dns_type_name(enum dns_type type)
{
    if ((unsigned)type >= NTYPES)
        return "unknown";
    return types[type].name;
}

bool dns_mx_is_null(const struct dns_result *r)
{
    return r && r->status == DNS_OK && r->n_mx == 1 && r->mx[0].host[0] == '\0';
}

/* ------------------------------------------------------------- parsing */

/* A result and everything it points to, in one allocation plus its text. */
struct answer {
    struct dns_result r; /* first: dns_result_free() gets this pointer */
    size_t n;
    size_t offs[DNS_MAX_RECORDS];  /* into text, until the end of parsing */
    size_t lens[DNS_MAX_RECORDS];
    const char *strs[DNS_MAX_RECORDS];
    struct dns_mx mx[DNS_MAX_RECORDS];
    struct buf text;
};

/* One resource record of the answer section (RFC 1035 §4.1.3). */
struct rr {
    char owner[DNS_NAME_MAX + 1];
    int owner_ok; /* read_name() result: 1 = a name we may compare */
    uint16_t type, cls, rdlen;
    uint32_t ttl;
    size_t rd; /* offset of RDATA */
};

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 2181 §8: a TTL with the top bit set counts as zero. */
static uint32_t ttl_value(uint32_t ttl)
{
    return ttl & 0x80000000u ? 0 : ttl;
}

/*
 * Reads the domain name at *off (RFC 1035 §4.1.4 compression) into out, in
 * presentation form without the trailing dot ("" for the root), and moves
 * *off past it. A compression pointer must point before the labels it ends,
 * so reading always ends. Returns 1 for a name, 0 for a well-formed name
 * that no host name can be (a label holding '.', '\', a space, a control or
 * an 8-bit byte: it is never compared nor returned), -1 if malformed.
 */
static int read_name(const unsigned char *m, size_t len, size_t *off, char *out)
{
    size_t pos = *off, seg = *off, after = 0, n = 0;
    bool jumped = false, clean = true;
    for (;;) {
        if (pos >= len)
            return -1;
        unsigned c = m[pos];
        if ((c & 0xc0) == 0xc0) {
            if (len - pos < 2)
                return -1;
            size_t to = (size_t)(c & 0x3f) << 8 | m[pos + 1];
            if (to >= seg)
                return -1;
            if (!jumped) {
                after = pos + 2;
                jumped = true;
            }
            pos = seg = to;
            continue;
        }
        if (c & 0xc0)
            return -1; /* extended label types (RFC 6891 §5 retired them) */
        pos++;
        if (c == 0)
            break;
        if (c > len - pos || n + (n > 0) + c > DNS_NAME_MAX)
            return -1;
        if (n > 0)
            out[n++] = '.';
        for (size_t i = 0; i < c; i++) {
            unsigned char b = m[pos + i];
            if (b <= ' ' || b >= 0x7f || b == '.' || b == '\\')
                clean = false;
            out[n++] = (char)b;
        }
        pos += c;
    }
    out[n] = '\0';
    *off = jumped ? after : pos;
    return clean ? 1 : 0;
}

static int read_rr(const unsigned char *m, size_t len, size_t *off, struct rr *rr)
{
    rr->owner_ok = read_name(m, len, off, rr->owner);
    if (rr->owner_ok < 0 || len - *off < 10)
        return -1;
    const unsigned char *p = m + *off;
    rr->type = get16(p);
    rr->cls = get16(p + 2);
    rr->ttl = ttl_value(get32(p + 4));
    rr->rdlen = get16(p + 8);
    *off += 10;
    if (rr->rdlen > len - *off)
        return -1;
    rr->rd = *off;
    *off += rr->rdlen;
    return 0;
}

/* A name that fills all of an RR's RDATA (after 'skip' bytes): 1, 0 or -1 as read_name(). */
static int rdata_name(const unsigned char *m, size_t len, const struct rr *rr, size_t skip,
                      char *out)
{
    if (rr->rdlen < skip + 1)
        return -1;
    size_t p = rr->rd + skip;
    int k = read_name(m, len, &p, out);
    if (k >= 0 && p != rr->rd + rr->rdlen)
        return -1;
    return k;
}

static int push_text(struct answer *a, const void *data, size_t len)
{
    a->offs[a->n] = a->text.len;
    a->lens[a->n] = len;
    if (buf_append(&a->text, data, len, DNS_TEXT_LIMIT) != 0 ||
        buf_append(&a->text, "", 1, DNS_TEXT_LIMIT) != 0)
        return -1;
    a->n++;
    return 0;
}

/*
 * Adds one record of the type asked. Returns 1 when added, 0 when left out
 * (malformed or over a bound: the result is partial), -1 when out of memory.
 */
static int add_record(struct answer *a, const unsigned char *m, size_t len, const struct rr *rr,
                      enum dns_type type)
{
    char text[DNS_NAME_MAX + 1];
    int k;
    switch (type) {
    case DNS_A:
    case DNS_AAAA: {
        int af = type == DNS_A ? AF_INET : AF_INET6;
        if (rr->rdlen != (type == DNS_A ? 4 : 16))
            return 0;
        if (!inet_ntop(af, m + rr->rd, text, sizeof text))
            return 0;
        return push_text(a, text, strlen(text)) == 0 ? 1 : -1;
    }
    case DNS_MX:
        k = rdata_name(m, len, rr, 2, text);
        if (k != 1)
            return 0;
        a->mx[a->n].preference = get16(m + rr->rd);
        return push_text(a, text, strlen(text)) == 0 ? 1 : -1;
    case DNS_PTR:
        k = rdata_name(m, len, rr, 0, text);
        if (k != 1)
            return 0;
        return push_text(a, text, strlen(text)) == 0 ? 1 : -1;
    case DNS_TXT: {
        /* RFC 1035 §3.3.14: one or more <character-string>s, each a length
         * byte and that many bytes; RFC 7208 §3.3 joins them with nothing. */
        size_t p = rr->rd, end = rr->rd + rr->rdlen, total = 0;
        while (p < end) {
            size_t l = m[p];
            if (l > end - p - 1)
                return 0;
            total += l;
            p += 1 + l;
        }
        if (total > DNS_MAX_TXT)
            return 0;
        size_t start = a->text.len;
        for (p = rr->rd; p < end; p += 1 + m[p])
            if (buf_append(&a->text, m + p + 1, m[p], DNS_TEXT_LIMIT) != 0)
                return -1;
        if (buf_append(&a->text, "", 1, DNS_TEXT_LIMIT) != 0)
            return -1;
        a->offs[a->n] = start;
        a->lens[a->n] = total;
        a->n++;
        return 1;
    }
    }
    return 0;
}

/* The name asked, as compared with owners: without the trailing dot. */
static int question_name(const char *qname, char *out)
{
    size_t n = strlen(qname);
    if (n > 0 && qname[n - 1] == '.')
        n--;
    if (n > DNS_NAME_MAX)
        return -1;
    memcpy(out, qname, n);
    out[n] = '\0';
    return 0;
}

static enum dns_status parse(struct answer *a, const unsigned char *m, size_t len,
                             const char *qname, enum dns_type type)
{
    /* RFC 1035 §4.1.1: the header. */
    if (len < 12 || (unsigned)type >= NTYPES)
        return DNS_TEMPFAIL;
    uint16_t flags = get16(m + 2);
    if (!(flags & 0x8000))
        return DNS_TEMPFAIL; /* QR clear: a query, not a response */
    switch (flags & 0x000f) {
    case 0: break;
    case 3: return DNS_NXDOMAIN; /* RFC 6604: about the end of any CNAME chain */
    default: return DNS_TEMPFAIL;
    }
    if (flags & 0x0200)
        a->r.partial = true; /* TC: what is here is not all there is */
    unsigned qdcount = get16(m + 4), ancount = get16(m + 6);

    char name[DNS_NAME_MAX + 1];
    size_t off = 12;
    for (unsigned i = 0; i < qdcount; i++) {
        if (read_name(m, len, &off, name) < 0 || len - off < 4)
            return DNS_TEMPFAIL;
        off += 4;
    }
    /* Check the answer section's structure once: the passes below cannot fail then. */
    size_t answers = off;
    struct rr rr;
    for (unsigned i = 0; i < ancount; i++)
        if (read_rr(m, len, &off, &rr) != 0)
            return DNS_TEMPFAIL;

    char cur[DNS_NAME_MAX + 1];
    if (question_name(qname, cur) != 0)
        return DNS_TEMPFAIL;
    uint32_t ttl = UINT32_MAX;
    for (unsigned links = 0;;) {
        bool found = false;
        off = answers;
        for (unsigned i = 0; i < ancount && !found; i++) {
            read_rr(m, len, &off, &rr);
            if (rr.type != RR_CNAME || rr.cls != CLASS_IN || rr.owner_ok != 1 ||
                strcasecmp(rr.owner, cur) != 0)
                continue;
            if (rdata_name(m, len, &rr, 0, name) != 1)
                return DNS_TEMPFAIL;
            memcpy(cur, name, strlen(name) + 1);
            ttl = rr.ttl < ttl ? rr.ttl : ttl;
            found = true;
        }
        if (!found)
            break;
        if (++links > DNS_MAX_CNAME)
            return DNS_TEMPFAIL; /* a loop, or longer than anyone needs */
    }

    off = answers;
    for (unsigned i = 0; i < ancount; i++) {
        read_rr(m, len, &off, &rr);
        if (rr.type != types[type].rrtype || rr.cls != CLASS_IN || rr.owner_ok != 1 ||
            strcasecmp(rr.owner, cur) != 0)
            continue;
        if (a->n == DNS_MAX_RECORDS) {
            a->r.partial = true;
            break;
        }
        int k = add_record(a, m, len, &rr, type);
        if (k < 0)
            return DNS_TEMPFAIL;
        if (k == 0) {
            a->r.partial = true;
            continue;
        }
        ttl = rr.ttl < ttl ? rr.ttl : ttl;
    }
    if (a->n == 0)
        return a->r.partial ? DNS_TEMPFAIL : DNS_NODATA;
    a->r.ttl = ttl;
    return DNS_OK;
}

/* Points the result into the text, and sorts MX records (stable). */
static void finish_answer(struct answer *a, enum dns_type type)
{
    for (size_t i = 0; i < a->n; i++)
        a->strs[i] = a->text.data + a->offs[i];
    switch (type) {
    case DNS_A:
    case DNS_AAAA:
        a->r.addrs = a->strs;
        a->r.n_addrs = a->n;
        break;
    case DNS_MX:
        for (size_t i = 0; i < a->n; i++)
            a->mx[i].host = a->strs[i];
        /* RFC 5321 §5.1: lowest preference first. At most 64: insertion sort. */
        for (size_t i = 1; i < a->n; i++) {
            struct dns_mx x = a->mx[i];
            size_t j = i;
            for (; j > 0 && a->mx[j - 1].preference > x.preference; j--)
                a->mx[j] = a->mx[j - 1];
            a->mx[j] = x;
        }
        a->r.mx = a->mx;
        a->r.n_mx = a->n;
        break;
    case DNS_TXT:
        a->r.txt = a->strs;
        a->r.txt_len = a->lens;
        a->r.n_txt = a->n;
        break;
    case DNS_PTR:
        a->r.ptr = a->strs;
        a->r.n_ptr = a->n;
        break;
    }
}

struct dns_result *dns_parse_response(const unsigned char *msg, size_t len, const char *qname,
                                      enum dns_type type)
{
    struct answer *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->r.status = parse(a, msg, len, qname, type);
    if (a->r.status == DNS_OK)
        finish_answer(a, type);
    else
        a->n = 0;
    return &a->r;
}

void dns_result_free(struct dns_result **r)
{
    if (!r || !*r)
        return;
    struct answer *a = (struct answer *)*r;
    buf_free(&a->text);
    free(a);
    *r = NULL;
}

/* ------------------------------------------------------- names, servers */

/*
 * The name to ask for, checked: without the trailing dot, 1 to 253
 * characters, labels of 1 to 63 printable ASCII bytes other than '\' (c-ares
 * would read it as an escape). Underscores and the like are fine (_dmarc).
 */
static int query_name(const char *in, char *out)
{
    size_t n = strlen(in);
    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (c <= ' ' || c >= 0x7f || c == '\\' || ++label > 63) {
            return -1;
        }
    }
    if (label == 0)
        return -1;
    memcpy(out, in, n);
    out[n] = '\0';
    return 0;
}

/* RFC 1035 §3.5 and RFC 3596 §2.5: the PTR name of a numeric address. */
static int reverse_name(const char *ip, char *out, size_t outlen)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1) {
        snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, b) != 1 || outlen < 16 * 4 + sizeof "ip6.arpa")
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[b[i] & 0xf];
        *p++ = '.';
        *p++ = hex[b[i] >> 4];
        *p++ = '.';
    }
    memcpy(p, "ip6.arpa", sizeof "ip6.arpa");
    return 0;
}

static int parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return -1;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int dns_server_parse(const char *s, char *host, size_t hostlen, int *port, const char **why)
{
    char h[INET6_ADDRSTRLEN];
    const char *portstr = NULL;
    unsigned char bin[16];
    size_t hl;
    if (!s || !*s) {
        *why = "empty";
        return -1;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || (end[1] != '\0' && end[1] != ':')) {
            *why = "expected [IPv6]:port";
            return -1;
        }
        hl = (size_t)(end - s - 1);
        if (hl == 0 || hl >= sizeof h) {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(h, s + 1, hl);
        h[hl] = '\0';
        if (inet_pton(AF_INET6, h, bin) != 1) {
            *why = "bad IPv6 address";
            return -1;
        }
        if (end[1] == ':')
            portstr = end + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) { /* a bare IPv6 address, no port */
            hl = strlen(s);
            if (hl >= sizeof h || inet_pton(AF_INET6, s, bin) != 1) {
                *why = "bad IPv6 address (numeric address expected; [IPv6]:port for a port)";
                return -1;
            }
        } else {
            hl = colon ? (size_t)(colon - s) : strlen(s);
            if (hl == 0 || hl >= sizeof h) {
                *why = "bad IPv4 address (numeric address expected)";
                return -1;
            }
            if (colon)
                portstr = colon + 1;
        }
        memcpy(h, s, hl);
        h[hl] = '\0';
        if (!strchr(h, ':') && inet_pton(AF_INET, h, bin) != 1) {
            *why = "bad IPv4 address (numeric address expected)";
            return -1;
        }
    }
    int p = 53;
    if (portstr && parse_port(portstr, &p) != 0) {
        *why = "bad port (1-65535)";
        return -1;
    }
    if (strlen(h) >= hostlen) {
        *why = "address too long";
        return -1;
    }
    memcpy(host, h, strlen(h) + 1);
    *port = p;
    return 0;
}

/* ------------------------------------------------------------ resolver */

struct dns_sock {
    uv_poll_t poll;
    struct dns *d;
    ares_socket_t fd;
    struct dns_sock *next;
};

struct qlist {
    struct dns_query *head, *tail;
};

struct dns_query {
    struct dns *d;
    dns_cb cb;                /* NULL once its callback ran or it was cancelled */
    void *arg;
    enum dns_type type;
    bool in_ares;             /* c-ares holds it: only its callback frees it */
    bool submitting;          /* inside ares_query() */
    bool delivering;          /* its callback is running or has run */
    uint64_t started, deadline; /* uv_now() ms */
    struct qlist *list;       /* &d->pending, &d->ready or NULL */
    struct dns_query *prev, *next;
    enum dns_status early_status; /* for d->ready: what to deliver... */
    struct dns_result *early;     /* ...or this parsed answer */
    char name[DNS_NAME_MAX + 1];  /* as sent (PTR: the reverse name) */
};

struct dns {
    uv_loop_t *loop;
    ares_channel channel;
    uv_timer_t timer;         /* c-ares timeouts and query deadlines */
    uv_timer_t kick;          /* delivers d->ready on the next loop turn */
    struct dns_sock *socks;
    struct qlist pending;     /* in submission order, which is deadline order */
    struct qlist ready;
    uint64_t budget_ms;       /* timeout x tries */
    unsigned depth;           /* nesting of our callbacks: teardown waits for 0 */
    unsigned handles;         /* uv handles not yet closed */
    bool closing;             /* dns_free() called */
    bool torn_down;
};

static void list_append(struct qlist *l, struct dns_query *q)
{
    q->list = l;
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static void list_remove(struct dns_query *q)
{
    struct qlist *l = q->list;
    if (!l)
        return;
    if (q->prev)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->list = NULL;
    q->prev = q->next = NULL;
}

static void free_query(struct dns_query *q)
{
    dns_result_free(&q->early);
    free(q);
}

static void teardown(struct dns *d);

static void enter(struct dns *d)
{
    d->depth++;
}

static void leave(struct dns *d)
{
    if (--d->depth == 0 && d->closing && !d->torn_down)
        teardown(d);
}

/* Runs q's callback once with r. The caller unlinked q and frees it after. */
static void deliver(struct dns *d, struct dns_query *q, const struct dns_result *r)
{
    dns_cb cb = q->cb;
    q->cb = NULL;
    q->delivering = true;
    if (log_enabled(PLOG_DEBUG)) {
        char v[DNS_NAME_MAX + 8];
        log_event(PLOG_DEBUG, 0, "event=dns type=%s name=%s status=%s records=%zu ms=%llu",
                  dns_type_name(q->type), log_value(q->name, v, sizeof v),
                  dns_status_name(r->status), r->n_addrs + r->n_mx + r->n_txt + r->n_ptr,
                  (unsigned long long)(uv_now(d->loop) - q->started));
    }
    cb(q->arg, r);
}

static enum dns_status map_status(int status)
{
    switch (status) {
    case ARES_SUCCESS: return DNS_OK;
    case ARES_ENODATA: return DNS_NODATA;
    case ARES_ENOTFOUND: return DNS_NXDOMAIN;
    case ARES_ETIMEOUT: return DNS_TIMEOUT;
    case ARES_EBADNAME: return DNS_BADNAME;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return DNS_CANCELLED;
    default: return DNS_TEMPFAIL; /* SERVFAIL, REFUSED, ECONNREFUSED, ENOMEM, ... */
    }
}

/* The outcome c-ares reported: a parsed answer in *owned, or a bare status. */
static const struct dns_result *outcome(const struct dns_query *q, int status,
                                        const unsigned char *abuf, int alen,
                                        struct dns_result *bare, struct dns_result **owned)
{
    static const struct dns_result oom = { .status = DNS_TEMPFAIL };
    memset(bare, 0, sizeof *bare);
    bare->status = map_status(status);
    if (status != ARES_SUCCESS || !abuf || alen <= 0) {
        if (bare->status == DNS_OK)
            bare->status = DNS_TEMPFAIL;
        return bare;
    }
    *owned = dns_parse_response(abuf, (size_t)alen, q->name, q->type);
    return *owned ? *owned : &oom;
}

/* c-ares's completion callback for every query. */
static void ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;
    struct dns *d = q->d;
    struct dns_result bare, *owned = NULL;
    q->in_ares = false;
    if (q->submitting) { /* inside ares_query(): keep it for the next loop turn */
        const struct dns_result *r = outcome(q, status, abuf, alen, &bare, &owned);
        q->early = owned;
        q->early_status = r->status;
        return;
    }
    if (!q->cb) { /* cancelled, timed out, or cancelled by dns_free() */
        free_query(q);
        return;
    }
    list_remove(q);
    enter(d);
    deliver(d, q, outcome(q, status, abuf, alen, &bare, &owned));
    dns_result_free(&owned);
    free_query(q);
    leave(d);
}

static void timer_cb(uv_timer_t *t);

/* Sets the timer for whichever comes first: c-ares's next timeout or the
 * oldest query's deadline. */
static void rearm(struct dns *d)
{
    if (d->closing)
        return;
    struct timeval tv, *tvp = ares_timeout(d->channel, NULL, &tv);
    uint64_t wait = UINT64_MAX;
    if (tvp)
        wait = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
    if (d->pending.head) {
        uint64_t now = uv_now(d->loop), dl = d->pending.head->deadline;
        uint64_t left = dl > now ? dl - now : 0;
        if (left < wait)
            wait = left;
    }
    if (wait == UINT64_MAX)
        uv_timer_stop(&d->timer);
    else
        uv_timer_start(&d->timer, timer_cb, wait, 0);
}

static void timer_cb(uv_timer_t *t)
{
    struct dns *d = t->data;
    enter(d);
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    uint64_t now = uv_now(d->loop);
    struct dns_query *q;
    static const struct dns_result timed_out = { .status = DNS_TIMEOUT };
    while (!d->closing && (q = d->pending.head) && q->deadline <= now) {
        list_remove(q); /* c-ares still holds it: freed in ares_cb */
        deliver(d, q, &timed_out);
    }
    rearm(d);
    leave(d);
}

static void kick_cb(uv_timer_t *t)
{
    struct dns *d = t->data;
    struct dns_query *q;
    enter(d);
    while (!d->closing && (q = d->ready.head)) {
        list_remove(q);
        struct dns_result bare = { .status = q->early_status };
        deliver(d, q, q->early ? q->early : &bare);
        free_query(q);
    }
    leave(d);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct dns_sock *s = h->data;
    struct dns *d = s->d;
    ares_socket_t fd = s->fd;
    enter(d);
    if (status < 0) /* let c-ares find the error on the socket */
        ares_process_fd(d->channel, fd, fd);
    else
        ares_process_fd(d->channel, events & UV_READABLE ? fd : ARES_SOCKET_BAD,
                        events & UV_WRITABLE ? fd : ARES_SOCKET_BAD);
    rearm(d);
    leave(d);
}

static void free_if_done(struct dns *d)
{
    if (d->torn_down && d->handles == 0)
        free(d);
}

static void sock_closed(uv_handle_t *h)
{
    struct dns_sock *s = h->data;
    struct dns *d = s->d;
    free(s);
    d->handles--;
    free_if_done(d);
}

static void timer_closed(uv_handle_t *h)
{
    struct dns *d = h->data;
    d->handles--;
    free_if_done(d);
}

static void sock_close(struct dns *d, struct dns_sock *s)
{
    for (struct dns_sock **pp = &d->socks; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    /* Stopped before c-ares closes the descriptor (which it may reuse at once). */
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

/* c-ares: watch fd for reading and/or writing, or (both 0) forget it. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock *s = d->socks;
    while (s && s->fd != fd)
        s = s->next;
    if (!readable && !writable) {
        if (s)
            sock_close(d, s);
        return;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        int rc = s ? uv_poll_init_socket(d->loop, &s->poll, fd) : UV_ENOMEM;
        if (rc != 0) { /* the queries on it end at their deadline */
            log_event(PLOG_ERROR, 0, "event=dns-poll result=failed error=%s", uv_strerror(rc));
            free(s);
            return;
        }
        s->poll.data = s;
        s->d = d;
        s->fd = fd;
        s->next = d->socks;
        d->socks = s;
        d->handles++;
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  poll_cb);
}

int dns_new(uv_loop_t *loop, const char *server, unsigned timeout_ms, unsigned tries,
            struct dns **out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN];
    int port = 53, rc;
    const char *why = NULL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (timeout_ms == 0 || timeout_ms > 3600 * 1000 || tries == 0 || tries > DNS_MAX_TRIES) {
        if (err && errlen)
            snprintf(err, errlen, "dns: timeout must be 1 to 3600000 ms, tries 1 to %d",
                     DNS_MAX_TRIES);
        return -1;
    }
    bool own_server = server && *server;
    if (own_server && dns_server_parse(server, host, sizeof host, &port, &why) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "dns: bad server \"%s\": %s", server, why);
        return -1;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        if (err && errlen)
            snprintf(err, errlen, "dns: c-ares: %s", ares_strerror(rc));
        return -1;
    }
    struct dns *d = calloc(1, sizeof *d);
    if (!d) {
        ares_library_cleanup();
        if (err && errlen)
            snprintf(err, errlen, "dns: out of memory");
        return -1;
    }
    d->loop = loop;
    d->budget_ms = (uint64_t)timeout_ms * tries;

    struct ares_options opt = {
        .flags = ARES_FLAG_EDNS,
        .timeout = (int)timeout_ms,
        .tries = (int)tries,
        .ednspsz = DNS_EDNS_SIZE,
        .sock_state_cb = sock_state_cb,
        .sock_state_cb_data = d,
    };
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ |
               ARES_OPT_SOCK_STATE_CB;
    rc = ares_init_options(&d->channel, &opt, mask);
    if (rc == ARES_SUCCESS && own_server) {
        struct ares_addr_port_node node = { .udp_port = port, .tcp_port = port };
        node.family = strchr(host, ':') ? AF_INET6 : AF_INET;
        if (node.family == AF_INET)
            inet_pton(AF_INET, host, &node.addr.addr4);
        else
            inet_pton(AF_INET6, host, &node.addr.addr6);
        rc = ares_set_servers_ports(d->channel, &node);
    }
    if (rc != ARES_SUCCESS) {
        if (err && errlen)
            snprintf(err, errlen, "dns: c-ares: %s", ares_strerror(rc));
        if (d->channel)
            ares_destroy(d->channel);
        free(d);
        ares_library_cleanup();
        return -1;
    }
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->kick);
    d->timer.data = d;
    d->kick.data = d;
    d->handles = 2;
    *out = d;
    return 0;
}

static void teardown(struct dns *d)
{
    d->torn_down = true;
    /* Frees the detached queries c-ares still holds (ares_cb, cb NULL) and
     * closes its sockets (sock_state_cb closes their poll handles). */
    ares_destroy(d->channel);
    d->channel = NULL;
    while (d->socks)
        sock_close(d, d->socks);
    uv_timer_stop(&d->timer);
    uv_timer_stop(&d->kick);
    uv_close((uv_handle_t *)&d->timer, timer_closed);
    uv_close((uv_handle_t *)&d->kick, timer_closed);
    ares_library_cleanup();
}

void dns_free(struct dns **dp)
{
    struct dns *d = dp ? *dp : NULL;
    if (!d)
        return;
    *dp = NULL;
    if (d->closing)
        return;
    d->closing = true;
    static const struct dns_result cancelled = { .status = DNS_CANCELLED };
    struct dns_query *q;
    enter(d);
    while ((q = d->pending.head) || (q = d->ready.head)) {
        list_remove(q);
        deliver(d, q, &cancelled);
        if (!q->in_ares)
            free_query(q);
    }
    leave(d);
}

struct dns_query *dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb cb,
                            void *arg)
{
    if (!d || d->closing || !cb || !name)
        return NULL;
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->type = type;
    uv_update_time(d->loop); /* the deadline counts from now, not from the loop turn's start */
    q->started = uv_now(d->loop);
    q->deadline = q->started + d->budget_ms;

    int bad = (unsigned)type >= NTYPES ? -1
              : type == DNS_PTR       ? reverse_name(name, q->name, sizeof q->name)
                                      : query_name(name, q->name);
    if (bad) {
        snprintf(q->name, sizeof q->name, "%.*s", DNS_NAME_MAX, name);
        q->early_status = DNS_BADNAME;
        list_append(&d->ready, q);
        uv_timer_start(&d->kick, kick_cb, 0, 0);
        return q;
    }
    list_append(&d->pending, q);
    q->in_ares = true;
    q->submitting = true;
    ares_query(d->channel, q->name, CLASS_IN, types[type].rrtype, ares_cb, q);
    q->submitting = false;
    if (!q->in_ares) { /* c-ares answered at once (out of memory, no socket, ...) */
        list_remove(q);
        list_append(&d->ready, q);
        uv_timer_start(&d->kick, kick_cb, 0, 0);
    }
    rearm(d);
    return q;
}

void dns_cancel(struct dns_query **qp)
{
    struct dns_query *q = qp ? *qp : NULL;
    if (!q)
        return;
    *qp = NULL;
    if (q->delivering)
        return; /* from inside its callback: it is freed after that returns */
    list_remove(q);
    q->cb = NULL;
    if (!q->in_ares) /* else ares_cb frees it when c-ares lets go */
        free_query(q);
}
