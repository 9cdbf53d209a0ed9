/*
 * fuzz_dns.c — the DNS answer parser (dns_parse_response in core/dns.c).
 *
 * Input: one byte for the type asked (mod 5), the question name up to a NUL,
 * then the response message. Properties checked:
 *  - it never reads outside the message (ASan) and always terminates;
 *  - a result other than DNS_OK carries no records and TTL 0;
 *  - DNS_OK carries 1 to DNS_MAX_RECORDS records, all of the type asked;
 *  - names are at most DNS_NAME_MAX printable bytes without '\', empty
 *    labels or a trailing dot; addresses read back with inet_pton; MX
 *    records come sorted; each TXT is txt_len bytes, at most DNS_MAX_TXT,
 *    NUL-terminated;
 *  - parsing the same input twice gives the same result.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            fprintf(stderr, "fuzz_dns: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                 \
        }                                                            \
    } while (0)

static void check_name(const char *s)
{
    size_t n = strlen(s);
    CHECK(n <= DNS_NAME_MAX);
    if (n == 0)
        return; /* the root (null MX) */
    CHECK(s[0] != '.' && s[n - 1] != '.' && !strstr(s, ".."));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        CHECK(c > ' ' && c < 0x7f && c != '\\');
    }
}

static void check_result(const struct dns_result *r, enum dns_type type)
{
    size_t total = r->n_addrs + r->n_mx + r->n_txt + r->n_ptr;
    CHECK((unsigned)r->status <= DNS_CANCELLED);
    if (r->status != DNS_OK) {
        CHECK(total == 0 && r->ttl == 0);
        return;
    }
    CHECK(total >= 1 && total <= DNS_MAX_RECORDS);
    CHECK(r->ttl <= 0x7fffffffu);
    unsigned char bin[16];
    switch (type) {
    case DNS_A:
    case DNS_AAAA:
        CHECK(r->n_addrs == total);
        for (size_t i = 0; i < r->n_addrs; i++)
            CHECK(inet_pton(type == DNS_A ? AF_INET : AF_INET6, r->addrs[i], bin) == 1);
        break;
    case DNS_MX:
        CHECK(r->n_mx == total);
        for (size_t i = 0; i < r->n_mx; i++) {
            check_name(r->mx[i].host);
            if (i > 0)
                CHECK(r->mx[i - 1].preference <= r->mx[i].preference);
        }
        CHECK(dns_mx_is_null(r) == (r->n_mx == 1 && r->mx[0].host[0] == '\0'));
        break;
    case DNS_TXT:
        CHECK(r->n_txt == total);
        for (size_t i = 0; i < r->n_txt; i++) {
            CHECK(r->txt_len[i] <= DNS_MAX_TXT);
            CHECK(r->txt[i][r->txt_len[i]] == '\0');
        }
        break;
    case DNS_PTR:
        CHECK(r->n_ptr == total);
        for (size_t i = 0; i < r->n_ptr; i++)
            check_name(r->ptr[i]);
        break;
    }
}

static void check_same(const struct dns_result *a, const struct dns_result *b)
{
    CHECK(a->status == b->status && a->ttl == b->ttl && a->partial == b->partial);
    CHECK(a->n_addrs == b->n_addrs && a->n_mx == b->n_mx && a->n_txt == b->n_txt &&
          a->n_ptr == b->n_ptr);
    for (size_t i = 0; i < a->n_addrs; i++)
        CHECK(strcmp(a->addrs[i], b->addrs[i]) == 0);
    for (size_t i = 0; i < a->n_mx; i++)
        CHECK(a->mx[i].preference == b->mx[i].preference &&
              strcmp(a->mx[i].host, b->mx[i].host) == 0);
    for (size_t i = 0; i < a->n_txt; i++)
        CHECK(a->txt_len[i] == b->txt_len[i] &&
              memcmp(a->txt[i], b->txt[i], a->txt_len[i]) == 0);
    for (size_t i = 0; i < a->n_ptr; i++)
        CHECK(strcmp(a->ptr[i], b->ptr[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536 + 300)
        return 0;
    enum dns_type type = (enum dns_type)(data[0] % 5);
    const uint8_t *nul = memchr(data + 1, 0, size - 1 < 300 ? size - 1 : 300);
    if (!nul)
        return 0;
    char qname[300];
    memcpy(qname, data + 1, (size_t)(nul - data - 1) + 1);
    const uint8_t *msg = nul + 1;
    size_t len = size - (size_t)(msg - data);
    if (len > 65535)
        return 0;

    /* A copy of exactly len bytes, so ASan sees any read past the end. */
    unsigned char *m = malloc(len ? len : 1);
    if (!m)
        return 0;
    memcpy(m, msg, len);
    struct dns_result *a = dns_parse_response(m, len, qname, type);
    struct dns_result *b = dns_parse_response(m, len, qname, type);
    if (a && b) {
        check_result(a, type);
        check_same(a, b);
    }
    dns_result_free(&a);
    dns_result_free(&b);
    CHECK(!a && !b);
    free(m);
    return 0;
}
