/*
 * test_dns.c — core/dns.c: the [dns] config keys, server strings, the pure
 * answer parser over hand-made packets, and the resolver on a real libuv
 * loop against tests/integration/dnsserver.py (python3-dnslib) on a free
 * loopback port: every type and status, MX order, TXT joining, TCP
 * fallback, timeouts, cancelling, dns_free with queries pending, and 200
 * queries at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

/* ------------------------------------------------------------ config */

static void test_config_defaults(void **state)
{
    struct config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_string_equal(cfg.dns_server, "");
    assert_int_equal(cfg.dns_timeout_ms, 5000);
    assert_int_equal(cfg.dns_tries, 2);
    assert_int_equal(config_load_string("[dns]\nserver = 127.0.0.1:5353\ntimeout = 250\n"
                                        "tries = 3\n",
                                        "t.conf", &cfg, err, sizeof err),
                     0);
    assert_string_equal(cfg.dns_server, "127.0.0.1:5353");
    assert_int_equal(cfg.dns_timeout_ms, 250);
    assert_int_equal(cfg.dns_tries, 3);
    config_defaults(&cfg);
    assert_int_equal(config_load_string("[dns]\nserver = [::1]:53\n", "t.conf", &cfg, err,
                                        sizeof err),
                     0);
    assert_string_equal(cfg.dns_server, "[::1]:53");
}

static void expect_config_error(const char *text, const char *want)
{
    struct config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_int_equal(config_load_string(text, "t.conf", &cfg, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_config_errors(void **state)
{
    expect_config_error("[dns]\nserver = localhost\n",
                        "t.conf:2: [dns] server: bad server \"localhost\": "
                        "bad IPv4 address (numeric address expected)");
    expect_config_error("[dns]\n\nserver = 127.0.0.1:0\n",
                        "t.conf:3: [dns] server: bad server \"127.0.0.1:0\": bad port (1-65535)");
    expect_config_error("[dns]\nserver =\n", "t.conf:2: [dns] server: empty value");
    expect_config_error("[dns]\ntimeout = 5\n",
                        "t.conf:2: [dns] timeout: out of range (10 to 60000)");
    expect_config_error("[dns]\ntimeout = 5s\n", "t.conf:2: [dns] timeout: bad number \"5s\"");
    expect_config_error("[dns]\ntries = 0\n", "t.conf:2: [dns] tries: out of range (1 to 10)");
    expect_config_error("[dns]\nservers = 127.0.0.1\n", "t.conf:2: [dns] servers: unknown key");
    expect_config_error("[dns]\ntries = 1\ntries = 2\n",
                        "t.conf:3: [dns] tries: duplicate key (first set on line 2)");
}

static void test_server_parse(void **state)
{
    static const struct {
        const char *in, *host;
        int port;
    } good[] = {
        { "127.0.0.1", "127.0.0.1", 53 },
        { "127.0.0.1:5353", "127.0.0.1", 5353 },
        { "::1", "::1", 53 },
        { "2001:db8::53", "2001:db8::53", 53 },
        { "[::1]", "::1", 53 },
        { "[2001:db8::1]:1053", "2001:db8::1", 1053 },
    };
    static const char *const bad[] = {
        "", "localhost", "1.2.3", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:53x",
        "1.2.3.4:-1", "[::1]:", "[::1", "[::1]53", "[1.2.3.4]:53", "::1:53:zz", "fe80::1%lo",
        "[]:53", "1.2.3.4:123456",
    };
    char host[64];
    int port;
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        why = NULL;
        assert_int_equal(dns_server_parse(good[i].in, host, sizeof host, &port, &why), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (dns_server_parse(bad[i], host, sizeof host, &port, &why) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
    }
}

static void test_names(void **state)
{
    assert_string_equal(dns_status_name(DNS_OK), "ok");
    assert_string_equal(dns_status_name(DNS_NXDOMAIN), "nxdomain");
    assert_string_equal(dns_status_name(DNS_CANCELLED), "cancelled");
    assert_string_equal(dns_status_name((enum dns_status)99), "unknown");
    assert_string_equal(dns_type_name(DNS_MX), "MX");
    assert_string_equal(dns_type_name((enum dns_type)99), "unknown");
}

/* ------------------------------------------------- packets by hand */

struct pkt {
    unsigned char b[8192];
    size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
    assert_true(p->n < sizeof p->b);
    p->b[p->n++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
    put8(p, v >> 8 & 0xff);
    put8(p, v & 0xff);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

static void put_bytes(struct pkt *p, const void *data, size_t len)
{
    assert_true(p->n + len <= sizeof p->b);
    memcpy(p->b + p->n, data, len);
    p->n += len;
}

/* A name, uncompressed ("" is the root). */
static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(p, (unsigned)l);
        put_bytes(p, name, l);
        name += l + (dot ? 1 : 0);
    }
    put8(p, 0);
}

/* Header (flags, counts) and one question; returns the question's offset. */
static size_t put_header(struct pkt *p, unsigned flags, unsigned an, const char *qname,
                         unsigned qtype)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, flags);
    put16(p, 1);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
    size_t q = p->n;
    put_name(p, qname);
    put16(p, qtype);
    put16(p, 1);
    return q;
}

/* A record's fixed part, the owner as a pointer to off. */
static void put_rr(struct pkt *p, size_t owner_off, unsigned type, uint32_t ttl, unsigned rdlen)
{
    put16(p, 0xc000 | (unsigned)owner_off);
    put16(p, type);
    put16(p, 1);
    put32(p, ttl);
    put16(p, rdlen);
}

#define RESP 0x8180 /* QR, RD, RA, NOERROR */

static struct dns_result *parse(const struct pkt *p, const char *qname, enum dns_type t)
{
    struct dns_result *r = dns_parse_response(p->b, p->n, qname, t);
    assert_non_null(r);
    return r;
}

static void test_parse_header(void **state)
{
    struct pkt p;
    struct dns_result *r;
    size_t q = put_header(&p, RESP, 1, "a.test", 1);
    put_rr(&p, q, 1, 60, 4);
    put_bytes(&p, "\xc0\x00\x02\x01", 4);
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_addrs, 1);
    assert_string_equal(r->addrs[0], "192.0.2.1");
    assert_int_equal(r->ttl, 60);
    assert_false(r->partial);
    dns_result_free(&r);
    assert_null(r);

    /* Every shorter prefix is malformed; none reads past its end (ASan). */
    for (size_t n = 0; n < p.n; n++) {
        r = dns_parse_response(p.b, n, "a.test", DNS_A);
        assert_non_null(r);
        assert_int_equal(r->status, DNS_TEMPFAIL);
        assert_int_equal(r->n_addrs, 0);
        dns_result_free(&r);
    }

    p.b[2] = 0x01; /* QR clear: a query */
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);
    p.b[2] = 0x81;
    p.b[3] = 0x83; /* NXDOMAIN */
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_NXDOMAIN);
    assert_int_equal(r->n_addrs, 0);
    dns_result_free(&r);
    p.b[3] = 0x82; /* SERVFAIL */
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);
    p.b[3] = 0x85; /* REFUSED */
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);
    p.b[3] = 0x80;

    /* Another name's records, another class, another type: none is an answer. */
    r = parse(&p, "b.test", DNS_A);
    assert_int_equal(r->status, DNS_NODATA);
    dns_result_free(&r);
    r = parse(&p, "a.test", DNS_AAAA);
    assert_int_equal(r->status, DNS_NODATA);
    dns_result_free(&r);
    p.b[p.n - 4 - 2 - 4 - 2 + 1] = 3; /* class CH */
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_NODATA);
    dns_result_free(&r);

    /* The name asked matches case-insensitively, trailing dot or not. */
    q = put_header(&p, RESP, 1, "A.Test", 1);
    put_rr(&p, q, 1, 0x80000001u, 4); /* RFC 2181 §8: top bit set = 0 */
    put_bytes(&p, "\xc0\x00\x02\x01", 4);
    r = parse(&p, "a.TEST.", DNS_A);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->ttl, 0);
    dns_result_free(&r);
}

static void test_parse_compression(void **state)
{
    struct pkt p;
    struct dns_result *r;
    /* Answer owner: a pointer to itself. */
    size_t q = put_header(&p, RESP, 1, "a.test", 1);
    size_t at = p.n;
    put16(&p, 0xc000 | (unsigned)at);
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 60);
    put16(&p, 4);
    put_bytes(&p, "\xc0\x00\x02\x01", 4);
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);

    /* A pointer forwards (into the rdata). */
    p.b[at + 1] = (unsigned char)(at + 12);
    r = parse(&p, "a.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);

    /* Two pointers that point at each other, through a label. */
    q = put_header(&p, RESP, 1, "a.test", 15);
    put_rr(&p, q, 15, 60, 0);
    size_t rd = p.n;
    put16(&p, 10);
    size_t l1 = p.n;
    put8(&p, 1);
    put8(&p, 'x');
    put16(&p, 0xc000 | (unsigned)(l1 + 4));
    put8(&p, 1);
    put8(&p, 'y');
    put16(&p, 0xc000 | (unsigned)l1);
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    r = parse(&p, "a.test", DNS_MX);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    assert_true(r->partial);
    dns_result_free(&r);

    /* An MX host through two legitimate pointers. */
    q = put_header(&p, RESP, 2, "a.test", 15);
    put_rr(&p, q, 15, 300, 0);
    rd = p.n;
    put16(&p, 10);
    size_t mx1 = p.n;
    put8(&p, 3);
    put_bytes(&p, "mx1", 3);
    put16(&p, 0xc000 | (unsigned)q);
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    put_rr(&p, q, 15, 200, 0);
    rd = p.n;
    put16(&p, 5);
    put8(&p, 1);
    put8(&p, 'b');
    put16(&p, 0xc000 | (unsigned)mx1);
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    r = parse(&p, "a.test", DNS_MX);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_mx, 2);
    assert_int_equal(r->mx[0].preference, 5);
    assert_string_equal(r->mx[0].host, "b.mx1.a.test");
    assert_int_equal(r->mx[1].preference, 10);
    assert_string_equal(r->mx[1].host, "mx1.a.test");
    assert_int_equal(r->ttl, 200);
    dns_result_free(&r);
}

static void test_parse_mx(void **state)
{
    struct pkt p;
    struct dns_result *r;
    static const struct {
        unsigned pref;
        const char *host;
    } in[] = { { 20, "c.test" }, { 10, "a.test" }, { 10, "b.test" }, { 0, "" }, { 10, "x y" },
               { 30, "d.test" } };
    size_t q = put_header(&p, RESP, 6, "m.test", 15);
    for (size_t i = 0; i < 6; i++) {
        put_rr(&p, q, 15, 300, 0);
        size_t rd = p.n;
        put16(&p, in[i].pref);
        put_name(&p, in[i].host);
        p.b[rd - 1] = (unsigned char)(p.n - rd);
    }
    r = parse(&p, "m.test", DNS_MX);
    assert_int_equal(r->status, DNS_OK);
    assert_true(r->partial); /* "x y" left out */
    assert_int_equal(r->n_mx, 5);
    assert_int_equal(r->mx[0].preference, 0);
    assert_string_equal(r->mx[0].host, "");
    assert_string_equal(r->mx[1].host, "a.test"); /* ties keep the server's order */
    assert_string_equal(r->mx[2].host, "b.test");
    assert_string_equal(r->mx[3].host, "c.test");
    assert_string_equal(r->mx[4].host, "d.test");
    assert_false(dns_mx_is_null(r)); /* the root among others is not RFC 7505's */
    dns_result_free(&r);

    /* RFC 7505 null MX alone. */
    q = put_header(&p, RESP, 1, "m.test", 15);
    put_rr(&p, q, 15, 300, 3);
    put16(&p, 0);
    put8(&p, 0);
    r = parse(&p, "m.test", DNS_MX);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_mx, 1);
    assert_string_equal(r->mx[0].host, "");
    assert_true(dns_mx_is_null(r));
    dns_result_free(&r);

    /* RDATA longer than its name, or too short for the preference. */
    q = put_header(&p, RESP, 2, "m.test", 15);
    put_rr(&p, q, 15, 300, 4);
    put16(&p, 0);
    put8(&p, 0);
    put8(&p, 0);
    put_rr(&p, q, 15, 300, 2);
    put16(&p, 0);
    r = parse(&p, "m.test", DNS_MX);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    assert_true(r->partial);
    dns_result_free(&r);
}

static void test_parse_txt(void **state)
{
    struct pkt p;
    struct dns_result *r;
    size_t q = put_header(&p, RESP, 4, "t.test", 16);
    /* "v=spf1 " "-all" */
    put_rr(&p, q, 16, 300, 1 + 7 + 1 + 4);
    put8(&p, 7);
    put_bytes(&p, "v=spf1 ", 7);
    put8(&p, 4);
    put_bytes(&p, "-all", 4);
    /* A NUL inside. */
    put_rr(&p, q, 16, 300, 4);
    put8(&p, 3);
    put_bytes(&p, "a\0b", 3);
    /* Over DNS_MAX_TXT: 17 strings of 255. */
    put_rr(&p, q, 16, 300, 17 * 256);
    for (int i = 0; i < 17; i++) {
        put8(&p, 255);
        for (int j = 0; j < 255; j++)
            put8(&p, 'z');
    }
    /* A length byte past the RDATA. */
    put_rr(&p, q, 16, 300, 3);
    put8(&p, 5);
    put_bytes(&p, "ab", 2);
    r = parse(&p, "t.test", DNS_TXT);
    assert_int_equal(r->status, DNS_OK);
    assert_true(r->partial);
    assert_int_equal(r->n_txt, 2);
    assert_string_equal(r->txt[0], "v=spf1 -all");
    assert_int_equal(r->txt_len[0], 11);
    assert_int_equal(r->txt_len[1], 3);
    assert_memory_equal(r->txt[1], "a\0b", 4);
    dns_result_free(&r);

    /* Exactly DNS_MAX_TXT bytes is kept. */
    q = put_header(&p, RESP, 1, "t.test", 16);
    put_rr(&p, q, 16, 300, 16 * 256 + 17);
    for (int i = 0; i < 16; i++) {
        put8(&p, 255);
        for (int j = 0; j < 255; j++)
            put8(&p, 'a' + i);
    }
    put8(&p, 16);
    put_bytes(&p, "0123456789abcdef", 16);
    r = parse(&p, "t.test", DNS_TXT);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_txt, 1);
    assert_int_equal(r->txt_len[0], DNS_MAX_TXT);
    assert_int_equal(strlen(r->txt[0]), DNS_MAX_TXT);
    assert_int_equal(r->txt[0][255], 'b');
    dns_result_free(&r);
}

static void test_parse_limits(void **state)
{
    struct pkt p;
    struct dns_result *r;
    size_t q = put_header(&p, RESP, 70, "n.test", 1);
    for (unsigned i = 0; i < 70; i++) {
        put_rr(&p, q, 1, 300, 4);
        put8(&p, 10);
        put8(&p, 0);
        put8(&p, 0);
        put8(&p, i);
    }
    r = parse(&p, "n.test", DNS_A);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_addrs, DNS_MAX_RECORDS);
    assert_true(r->partial);
    assert_string_equal(r->addrs[63], "10.0.0.63");
    dns_result_free(&r);

    /* Bad A / AAAA lengths are left out. */
    q = put_header(&p, RESP, 2, "n.test", 28);
    put_rr(&p, q, 28, 300, 4);
    put32(&p, 0);
    put_rr(&p, q, 28, 300, 16);
    put_bytes(&p, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    r = parse(&p, "n.test", DNS_AAAA);
    assert_int_equal(r->status, DNS_OK);
    assert_true(r->partial);
    assert_int_equal(r->n_addrs, 1);
    assert_string_equal(r->addrs[0], "2001:db8::1");
    dns_result_free(&r);

    /* The TC bit: what came is used, and marked partial. */
    q = put_header(&p, RESP | 0x0200, 0, "n.test", 1);
    r = parse(&p, "n.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);
}

/* A chain n0 -> n1 -> ... -> n<links>, then an A record there. */
static void cname_chain(struct pkt *p, unsigned links, bool loop)
{
    char name[32];
    size_t q = put_header(p, RESP, links + 1, "n0.test", 1);
    size_t owner = q;
    for (unsigned i = 0; i < links; i++) {
        put_rr(p, owner, 5, 100 + i, 0);
        size_t rd = p->n;
        snprintf(name, sizeof name, "n%u.test", loop && i == links - 1 ? 0 : i + 1);
        put_name(p, name);
        p->b[rd - 1] = (unsigned char)(p->n - rd);
        owner = rd;
    }
    put_rr(p, owner, 1, 500, 4);
    put_bytes(p, "\xc0\x00\x02\x07", 4);
}

static void test_parse_cname(void **state)
{
    struct pkt p;
    struct dns_result *r;
    cname_chain(&p, 8, false);
    r = parse(&p, "n0.test", DNS_A);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n_addrs, 1);
    assert_string_equal(r->addrs[0], "192.0.2.7");
    assert_int_equal(r->ttl, 100);
    dns_result_free(&r);
    /* Asked in the middle of the chain. */
    r = parse(&p, "n5.test", DNS_A);
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->ttl, 105);
    dns_result_free(&r);

    cname_chain(&p, 9, false);
    r = parse(&p, "n0.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);

    cname_chain(&p, 3, true);
    r = parse(&p, "n0.test", DNS_A);
    assert_int_equal(r->status, DNS_TEMPFAIL);
    dns_result_free(&r);

    /* A CNAME to a name with no A: NODATA. */
    size_t q = put_header(&p, RESP, 1, "n0.test", 1);
    put_rr(&p, q, 5, 100, 0);
    size_t rd = p.n;
    put_name(&p, "other.test");
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    r = parse(&p, "n0.test", DNS_A);
    assert_int_equal(r->status, DNS_NODATA);
    dns_result_free(&r);
}

static void test_parse_ptr(void **state)
{
    struct pkt p;
    struct dns_result *r;
    size_t q = put_header(&p, RESP, 2, "1.2.0.192.in-addr.arpa", 12);
    put_rr(&p, q, 12, 300, 0);
    size_t rd = p.n;
    put_name(&p, "host.example.test");
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    put_rr(&p, q, 12, 300, 0);
    rd = p.n;
    put_name(&p, "bad\001name.test");
    p.b[rd - 1] = (unsigned char)(p.n - rd);
    r = parse(&p, "1.2.0.192.in-addr.arpa", DNS_PTR);
    assert_int_equal(r->status, DNS_OK);
    assert_true(r->partial);
    assert_int_equal(r->n_ptr, 1);
    assert_string_equal(r->ptr[0], "host.example.test");
    assert_int_equal(r->n_addrs + r->n_mx + r->n_txt, 0);
    dns_result_free(&r);
}

/* ----------------------------------------------------- the test server */

static pid_t server_pid = -1;
static int server_in = -1; /* its stdin: closing it stops it */
static int server_port;
static char server_addr[64];

static void zone_add(struct buf *z, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void zone_add(struct buf *z, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_int_equal(buf_append(z, tmp, strlen(tmp), 1 << 20), 0);
}

#define N_MANY 200
#define BIG_TXT 6   /* records of 400 bytes: over the 1232-byte EDNS size, so TCP */

static char *make_zone(void)
{
    struct buf z = { 0 };
    char x300[301], y400[401];
    memset(x300, 'x', 300);
    x300[300] = '\0';
    memset(y400, 'y', 400);
    y400[400] = '\0';
    zone_add(&z, "{\"example.test\": {\"A\": [\"192.0.2.1\", \"192.0.2.2\"], "
                 "\"AAAA\": [\"2001:db8::1\"], "
                 "\"MX\": [[20, \"mx2.example.test\"], [10, \"mx1.example.test\"], "
                 "[10, \"mx1b.example.test\"], [5, \"mx0.example.test\"]], "
                 "\"TXT\": [\"v=spf1 -all\", [\"v=DKIM1; \", \"k=rsa; \", \"p=AB\"]], "
                 "\"ttl\": 120},");
    zone_add(&z, "\"nullmx.test\": {\"MX\": [[0, \".\"]], \"A\": [\"192.0.2.5\"]},");
    zone_add(&z, "\"www.example.test\": {\"CNAME\": \"example.test\", \"ttl\": 60},");
    zone_add(&z, "\"dangling.test\": {\"CNAME\": \"nowhere.test\"},");
    zone_add(&z, "\"sub.deep.test\": {\"A\": [\"192.0.2.7\"]},");
    zone_add(&z, "\"long.test\": {\"TXT\": [\"%s\"]},", x300);
    zone_add(&z, "\"big.test\": {\"TXT\": [");
    for (int i = 0; i < BIG_TXT; i++)
        zone_add(&z, "%s\"%s\"", i ? ", " : "", y400);
    zone_add(&z, "]},");
    zone_add(&z, "\"many.test\": {\"A\": [");
    for (int i = 0; i < 70; i++)
        zone_add(&z, "%s\"10.1.0.%d\"", i ? ", " : "", i);
    zone_add(&z, "]},");
    zone_add(&z, "\"1.2.0.192.in-addr.arpa\": {\"PTR\": [\"host.example.test\"]},");
    zone_add(&z, "\"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa\": "
                 "{\"PTR\": [\"host6.example.test\"]},");
    zone_add(&z, "\"slow.test\": {\"A\": [\"192.0.2.9\"], \"delay\": 0.3},");
    zone_add(&z, "\"broken.test\": \"servfail\",");
    zone_add(&z, "\"refused.test\": \"refused\",");
    for (int i = 0; i < N_MANY; i++)
        zone_add(&z, "\"c%d.test\": {\"A\": [\"10.2.%d.%d\"]},", i, i / 256, i % 256);
    zone_add(&z, "\"down.test\": \"drop\"}");
    assert_int_equal(buf_append(&z, "", 1, 1 << 20), 0);
    return z.data;
}

static const char *python(void)
{
    const char *p = getenv("PETREL_PYTHON");
    if (p && *p)
        return p;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static int group_setup(void **state)
{
    char script[1024];
    const char *src = getenv("PETREL_SOURCE_DIR");
    if (src && *src) {
        snprintf(script, sizeof script, "%s/tests/integration/dnsserver.py", src);
    } else { /* __FILE__ is tests/unit/test_dns.c */
        snprintf(script, sizeof script, "%s", __FILE__);
        char *slash = strrchr(script, '/');
        if (!slash)
            return -1;
        snprintf(slash, sizeof script - (size_t)(slash - script), "/../integration/dnsserver.py");
    }
    char *zone = make_zone();
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        const char *verbose = getenv("PETREL_DNS_VERBOSE"); /* each query on stderr */
        execlp(python(), python(), script, "--zone", zone, "--print-port", "--until-eof",
               verbose && *verbose ? "--verbose" : (char *)NULL, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", python(), strerror(errno));
        _exit(127);
    }
    free(zone);
    close(in[0]);
    close(out[1]);
    server_pid = pid;
    server_in = in[1];

    char line[32] = "";
    size_t n = 0;
    struct pollfd pfd = { .fd = out[0], .events = POLLIN };
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        if (poll(&pfd, 1, 20000) <= 0)
            break;
        ssize_t k = read(out[0], line + n, sizeof line - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        line[n] = '\0';
    }
    close(out[0]);
    server_port = atoi(line);
    if (server_port <= 0) {
        fprintf(stderr, "dnsserver.py did not start (%s; python3-dnslib installed? "
                        "scripts/deps.sh installs it)\n", script);
        return -1;
    }
    snprintf(server_addr, sizeof server_addr, "127.0.0.1:%d", server_port);
    return 0;
}

static int group_teardown(void **state)
{
    if (server_in >= 0)
        close(server_in);
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    return 0;
}

/* ---------------------------------------------------------- the loop */

struct fixture {
    uv_loop_t loop;
    struct dns *dns;
};

static int make_fixture(void **state, unsigned timeout_ms, unsigned tries)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    if (dns_new(&f->loop, server_addr, timeout_ms, tries, &f->dns, err, sizeof err) != 0) {
        fprintf(stderr, "dns_new: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return make_fixture(state, 2000, 2);
}

/* c-ares alone would wait 200 + 400 + 800 ms; the deadline is 600. */
static int setup_short(void **state)
{
    return make_fixture(state, 200, 3);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_free(&f->dns);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop); /* UV_EBUSY: a handle left open */
    free(f);
    return rc == 0 ? 0 : -1;
}

/* What a callback saw, copied out of the result. */
struct seen {
    int calls;
    enum dns_status status;
    uint32_t ttl;
    bool partial;
    size_t n;
    char *items[DNS_MAX_RECORDS];
    size_t lens[DNS_MAX_RECORDS];
    unsigned prefs[DNS_MAX_RECORDS];
    bool null_mx;
    uint64_t at; /* uv_now() */
    uv_loop_t *loop;
};

static void seen_clear(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    uv_loop_t *loop = s->loop;
    memset(s, 0, sizeof *s);
    s->loop = loop;
}

static void copy_item(struct seen *s, const char *p, size_t len)
{
    s->items[s->n] = malloc(len + 1);
    assert_non_null(s->items[s->n]);
    memcpy(s->items[s->n], p, len + 1);
    s->lens[s->n] = len;
    s->n++;
}

static void record_cb(void *arg, const struct dns_result *r)
{
    struct seen *s = arg;
    s->calls++;
    s->status = r->status;
    s->ttl = r->ttl;
    s->partial = r->partial;
    s->null_mx = dns_mx_is_null(r);
    if (s->loop)
        s->at = uv_now(s->loop);
    for (size_t i = 0; i < r->n_addrs; i++)
        copy_item(s, r->addrs[i], strlen(r->addrs[i]));
    for (size_t i = 0; i < r->n_mx; i++) {
        s->prefs[s->n] = r->mx[i].preference;
        copy_item(s, r->mx[i].host, strlen(r->mx[i].host));
    }
    for (size_t i = 0; i < r->n_txt; i++)
        copy_item(s, r->txt[i], r->txt_len[i]);
    for (size_t i = 0; i < r->n_ptr; i++)
        copy_item(s, r->ptr[i], strlen(r->ptr[i]));
}

/* One query, run to its end. */
static void lookup(struct fixture *f, const char *name, enum dns_type type, struct seen *s)
{
    seen_clear(s);
    s->loop = &f->loop;
    struct dns_query *q = dns_query(f->dns, name, type, record_cb, s);
    assert_non_null(q);
    assert_int_equal(s->calls, 0); /* never from inside dns_query() */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(s->calls, 1);
}

static void test_a_aaaa(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "example.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.items[0], "192.0.2.1");
    assert_string_equal(s.items[1], "192.0.2.2");
    assert_int_equal(s.ttl, 120);
    assert_false(s.partial);

    lookup(f, "example.test.", DNS_AAAA, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.items[0], "2001:db8::1");

    lookup(f, "EXAMPLE.Test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 2);

    /* Through a CNAME: the TTL is the chain's least. */
    lookup(f, "www.example.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ttl, 60);
    seen_clear(&s);
}

static void test_mx(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "example.test", DNS_MX, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.prefs[0], 5);
    assert_string_equal(s.items[0], "mx0.example.test");
    assert_int_equal(s.prefs[1], 10);
    assert_string_equal(s.items[1], "mx1.example.test");
    assert_int_equal(s.prefs[2], 10);
    assert_string_equal(s.items[2], "mx1b.example.test");
    assert_int_equal(s.prefs[3], 20);
    assert_string_equal(s.items[3], "mx2.example.test");
    assert_false(s.null_mx);

    lookup(f, "nullmx.test", DNS_MX, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.prefs[0], 0);
    assert_string_equal(s.items[0], "");
    assert_true(s.null_mx);
    seen_clear(&s);
}

static void test_txt(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "example.test", DNS_TXT, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.items[0], "v=spf1 -all");
    assert_string_equal(s.items[1], "v=DKIM1; k=rsa; p=AB");
    assert_int_equal(s.lens[1], strlen("v=DKIM1; k=rsa; p=AB"));

    /* 300 bytes: published as a 255-byte and a 45-byte string. */
    lookup(f, "long.test", DNS_TXT, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.lens[0], 300);
    assert_int_equal(strspn(s.items[0], "x"), 300);

    /* 2.4 KB of TXT: truncated over UDP, asked again over TCP. */
    lookup(f, "big.test", DNS_TXT, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, BIG_TXT);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.lens[i], 400);
    seen_clear(&s);
}

static void test_ptr(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "192.0.2.1", DNS_PTR, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.items[0], "host.example.test");
    lookup(f, "2001:db8::1", DNS_PTR, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.items[0], "host6.example.test");
    lookup(f, "192.0.2.2", DNS_PTR, &s);
    assert_int_equal(s.status, DNS_NXDOMAIN);
    lookup(f, "host.example.test", DNS_PTR, &s);
    assert_int_equal(s.status, DNS_BADNAME);
    seen_clear(&s);
}

static void test_statuses(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "nowhere.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_NXDOMAIN);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.ttl, 0);
    lookup(f, "nullmx.test", DNS_AAAA, &s);
    assert_int_equal(s.status, DNS_NODATA);
    assert_int_equal(s.n, 0);
    lookup(f, "example.test", DNS_PTR + 0, &s); /* PTR wants an address */
    assert_int_equal(s.status, DNS_BADNAME);
    lookup(f, "deep.test", DNS_A, &s); /* an empty non-terminal (RFC 8020) */
    assert_int_equal(s.status, DNS_NODATA);
    lookup(f, "dangling.test", DNS_A, &s); /* CNAME to a name that does not exist */
    assert_int_equal(s.status, DNS_NXDOMAIN);
    lookup(f, "broken.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_TEMPFAIL);
    lookup(f, "refused.test", DNS_MX, &s);
    assert_int_equal(s.status, DNS_TEMPFAIL);

    lookup(f, "many.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_int_equal(s.n, DNS_MAX_RECORDS);
    assert_true(s.partial);
    seen_clear(&s);
}

static void test_badname(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    char label63[80], label64[80], long_name[300];
    memset(label64, 'a', 64);
    snprintf(label64 + 64, sizeof label64 - 64, ".test");
    memset(label63, 'a', 63);
    snprintf(label63 + 63, sizeof label63 - 63, ".test");
    for (size_t i = 0; i < 254; i++)
        long_name[i] = i % 2 ? '.' : 'a';
    long_name[254] = '\0'; /* "a.a. ... a." ends in a dot: 253 without it, fine */
    lookup(f, long_name, DNS_A, &s);
    assert_int_not_equal(s.status, DNS_BADNAME);
    long_name[254] = 'a';
    long_name[255] = '\0'; /* 255 characters */
    const char *const bad[] = { "", ".", "a..test", ".a.test", "a.test..", "a b.test",
                                "a\\.b.test", "tab\t.test", "\xc3\xa9.test", label64,
                                long_name };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lookup(f, bad[i], DNS_A, &s);
        if (s.status != DNS_BADNAME)
            fail_msg("\"%s\": %s", bad[i], dns_status_name(s.status));
    }
    lookup(f, label63, DNS_A, &s); /* 63 is fine */
    assert_int_equal(s.status, DNS_NXDOMAIN);
    lookup(f, "_dmarc.example.test", DNS_TXT, &s);
    assert_int_equal(s.status, DNS_NXDOMAIN);
    lookup(f, "example.test", (enum dns_type)42, &s);
    assert_int_equal(s.status, DNS_BADNAME);
    seen_clear(&s);
}

static void test_timeout(void **state)
{
    struct fixture *f = *state; /* 200 ms x 3 tries */
    struct seen s = { 0 };
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    lookup(f, "down.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_TIMEOUT);
    uint64_t took = s.at - t0;
    if (took < 600 || took > 1200) /* loose above: ctest runs tests side by side */
        fail_msg("timed out after %llu ms, want 600", (unsigned long long)took);
    seen_clear(&s);
}

static void test_slow_within_budget(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    lookup(f, "slow.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    assert_string_equal(s.items[0], "192.0.2.9");
    seen_clear(&s);
}

static void test_unreachable(void **state)
{
    /* A loopback UDP port nobody listens on: ICMP port unreachable. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));

    struct fixture f;
    char err[256];
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(dns_new(&f.loop, addr, 2000, 2, &f.dns, err, sizeof err), 0);
    struct seen s = { 0 };
    uv_update_time(&f.loop);
    uint64_t t0 = uv_now(&f.loop);
    lookup(&f, "example.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_TEMPFAIL); /* refused at once, not a timeout */
    assert_true(s.at - t0 < 1000);
    dns_free(&f.dns);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    seen_clear(&s);
}

static void count_cb(void *arg, const struct dns_result *r)
{
    (*(int *)arg)++;
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    int calls = 0;
    struct dns_query *q = dns_query(f->dns, "slow.test", DNS_A, count_cb, &calls);
    struct dns_query *bad = dns_query(f->dns, "a..b", DNS_A, count_cb, &calls);
    assert_non_null(q);
    assert_non_null(bad);
    dns_cancel(&q);
    dns_cancel(&bad);
    assert_null(q);
    assert_null(bad);
    dns_cancel(&q); /* NULL: a no-op */
    dns_cancel(NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(calls, 0);

    /* The resolver still works after. */
    struct seen s = { 0 };
    lookup(f, "example.test", DNS_A, &s);
    assert_int_equal(s.status, DNS_OK);
    seen_clear(&s);
}

/* One callback cancels another query, the other starts a follow-up. */
struct chain {
    struct dns *dns;
    struct dns_query *victim;
    int victim_calls;
    struct seen mx, a;
};

static void victim_cb(void *arg, const struct dns_result *r)
{
    struct chain *c = arg;
    c->victim_calls++;
}

static void mx_then_a_cb(void *arg, const struct dns_result *r)
{
    struct chain *c = arg;
    record_cb(&c->mx, r);
    dns_cancel(&c->victim);
    assert_int_equal(r->status, DNS_OK);
    /* Chained lookup from inside a callback: the A of the best MX's domain. */
    assert_non_null(dns_query(c->dns, "example.test", DNS_A, record_cb, &c->a));
}

static void test_callbacks_reenter(void **state)
{
    struct fixture *f = *state;
    struct chain c = { .dns = f->dns };
    c.victim = dns_query(f->dns, "slow.test", DNS_A, victim_cb, &c);
    assert_non_null(dns_query(f->dns, "example.test", DNS_MX, mx_then_a_cb, &c));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(c.victim_calls, 0);
    assert_null(c.victim);
    assert_int_equal(c.mx.calls, 1);
    assert_int_equal(c.a.calls, 1);
    assert_int_equal(c.a.status, DNS_OK);
    seen_clear(&c.mx);
    seen_clear(&c.a);
}

/* Cancelling a query from inside its own callback is harmless. */
static void self_cancel_cb(void *arg, const struct dns_result *r)
{
    struct dns_query **q = arg;
    dns_cancel(q);
}

static void test_cancel_self(void **state)
{
    struct fixture *f = *state;
    static struct dns_query *q;
    q = dns_query(f->dns, "example.test", DNS_A, self_cancel_cb, &q);
    assert_non_null(q);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(q);
}

static void status_cb(void *arg, const struct dns_result *r)
{
    struct seen *s = arg;
    s->calls++;
    s->status = r->status;
}

static void test_free_pending(void **state)
{
    struct fixture *f = *state;
    struct seen s[6] = { { 0 } };
    for (int i = 0; i < 5; i++)
        assert_non_null(dns_query(f->dns, "down.test", DNS_A, status_cb, &s[i]));
    assert_non_null(dns_query(f->dns, "", DNS_A, status_cb, &s[5])); /* waiting to report BADNAME */
    /* The five are out on the wire (ares_query() sends at once). */
    dns_free(&f->dns);
    assert_null(f->dns);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, DNS_CANCELLED);
    }
    dns_free(&f->dns); /* NULL: a no-op */
}

/* dns_free() from inside a callback, with other queries pending. */
struct freeing {
    struct dns **dns;
    int calls;
    struct seen others[3];
};

static void free_from_cb(void *arg, const struct dns_result *r)
{
    struct freeing *fr = arg;
    fr->calls++;
    assert_int_equal(r->status, DNS_OK);
    dns_free(fr->dns);
    assert_null(*fr->dns);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fr->others[i].calls, 1);
        assert_int_equal(fr->others[i].status, DNS_CANCELLED);
    }
}

static void test_free_from_callback(void **state)
{
    struct fixture *f = *state;
    struct freeing fr = { .dns = &f->dns };
    for (int i = 0; i < 3; i++)
        assert_non_null(dns_query(f->dns, "down.test", DNS_TXT, status_cb, &fr.others[i]));
    assert_non_null(dns_query(f->dns, "example.test", DNS_A, free_from_cb, &fr));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(fr.calls, 1);
    assert_null(f->dns);
}

struct many {
    int done;
    int wrong;
    char want[N_MANY][32];
};

struct many_one {
    struct many *m;
    int i;
};

static void many_cb(void *arg, const struct dns_result *r)
{
    struct many_one *o = arg;
    o->m->done++;
    if (r->status != DNS_OK || r->n_addrs != 1 || strcmp(r->addrs[0], o->m->want[o->i]) != 0)
        o->m->wrong++;
}

static void test_many_concurrent(void **state)
{
    struct fixture *f = *state;
    static struct many m;
    static struct many_one ones[N_MANY];
    char name[32];
    memset(&m, 0, sizeof m);
    for (int i = 0; i < N_MANY; i++) {
        snprintf(m.want[i], sizeof m.want[i], "10.2.%d.%d", i / 256, i % 256);
        snprintf(name, sizeof name, "c%d.test", i);
        ones[i] = (struct many_one){ &m, i };
        assert_non_null(dns_query(f->dns, name, DNS_A, many_cb, &ones[i]));
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(m.done, N_MANY);
    assert_int_equal(m.wrong, 0);
}

static void test_new_errors(void **state)
{
    uv_loop_t loop;
    struct dns *d = NULL;
    char err[256];
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(dns_new(&loop, "dns.example", 1000, 2, &d, err, sizeof err), -1);
    assert_null(d);
    assert_string_equal(err, "dns: bad server \"dns.example\": "
                             "bad IPv4 address (numeric address expected)");
    assert_int_equal(dns_new(&loop, "127.0.0.1", 1000, 0, &d, err, sizeof err), -1);
    assert_int_equal(dns_new(&loop, "127.0.0.1", 0, 2, &d, err, sizeof err), -1);
    /* The system's resolv.conf; nothing is asked. */
    assert_int_equal(dns_new(&loop, NULL, 1000, 2, &d, err, sizeof err), 0);
    assert_non_null(d);
    dns_free(&d);
    assert_int_equal(dns_new(&loop, "", 1000, 2, &d, err, sizeof err), 0);
    dns_free(&d);
    assert_int_equal(dns_new(&loop, "[::1]:5353", 1000, 2, &d, err, sizeof err), 0);
    dns_free(&d);
    assert_null(dns_query(NULL, "example.test", DNS_A, count_cb, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    alarm(300); /* a hung loop fails the test instead of CI */
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_server_parse),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_header),
        cmocka_unit_test(test_parse_compression),
        cmocka_unit_test(test_parse_mx),
        cmocka_unit_test(test_parse_txt),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_cname),
        cmocka_unit_test(test_parse_ptr),
        cmocka_unit_test(test_new_errors),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test_setup_teardown(test_a_aaaa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ptr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_badname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_slow_within_budget, setup, teardown),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callbacks_reenter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("dns_pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("dns_live", live, group_setup, group_teardown);
    return failed ? 1 : 0;
}
