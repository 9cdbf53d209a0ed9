/*
 * SPF (smtp/spf.c) against any bytes. Input: two control bytes, then TXT
 * records separated by NUL bytes. Checked:
 *  - spf_record_check() of the first record: 1 exactly when it does not
 *    begin with "v=spf1" and a space or its end;
 *  - macro expansion of the first record as a macro-string: a domain
 *    expansion is at most 253 bytes, NUL-free, its length returned; what
 *    expands as a domain-spec also expands as an explain-string;
 *  - a whole check_host() against a made-up zone derived from the input:
 *    every TXT lookup answers one of the records (sometimes two), A/AAAA,
 *    MX and PTR answers and DNS errors come from a hash of the name and the
 *    control bytes. It must end within the lookup limits (at most ~140
 *    lookups), every asked name must be a valid DNS name, and the result and
 *    explanation must be consistent (with one record for every name, a
 *    broken record never passes and a non-SPF one gives none).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

#define MAX_RECORDS 8
#define MAX_LOOKUPS 200

static uint32_t hash(const char *s, uint32_t seed)
{
    uint32_t h = 2166136261u ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)(*s | 0x20);
        h *= 16777619u;
    }
    return h;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > DNS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (c <= 0x20 || c >= 0x7f || c == '\\' || ++label > 63) {
            return false;
        }
    }
    return label > 0;
}

static bool is_spf1(const char *t, size_t n)
{
    static const char v[] = "v=spf1";
    if (n < 6)
        return false;
    for (size_t i = 0; i < 6; i++) {
        char c = t[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != v[i])
            return false;
    }
    return n == 6 || t[6] == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 16384)
        return 0;
    uint8_t c0 = data[0], c1 = data[1];
    const char *rec[MAX_RECORDS];
    size_t len[MAX_RECORDS], n = 0;
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    while (p <= end && n < MAX_RECORDS) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        if (!z)
            z = end;
        rec[n] = p;
        len[n] = (size_t)(z - p);
        n++;
        p = z + 1;
    }

    /* the parser */
    char why[128];
    int chk = spf_record_check(rec[0], len[0], why, sizeof why);
    CHECK(chk == -1 || chk == 0 || chk == 1);
    CHECK((chk == 1) == !is_spf1(rec[0], len[0]));

    /* macro expansion */
    static const char *const ips[] = { "192.0.2.1", "2001:db8::cb01", "::ffff:198.51.100.7",
                                       "10.0.0.4" };
    struct spf_macro_vars v = { .sender = (c0 & 1) ? "strong-bad@email.example.com"
                                                   : "postmaster@mail.example.org",
                                .domain = "email.example.com",
                                .ip = ips[c0 >> 6],
                                .helo = "mail.example.org",
                                .ptr = (c0 & 2) ? "mx.example.org" : NULL,
                                .receiver = (c0 & 4) ? "mx.example.net" : NULL,
                                .now = 1700000000 };
    static char out[SPF_MAX_EXPANSION + 1], out2[SPF_MAX_EXPANSION + 1];
    int dn = spf_macro_expand(rec[0], len[0], SPF_MACRO_DOMAIN, &v, out, sizeof out);
    CHECK(dn >= -2);
    if (dn >= 0) {
        CHECK(dn <= DNS_NAME_MAX);
        CHECK(strlen(out) == (size_t)dn);
    }
    int en = spf_macro_expand(rec[0], len[0], SPF_MACRO_EXP, &v, out2, sizeof out2);
    CHECK(en >= -2);
    if (en >= 0)
        CHECK(strlen(out2) == (size_t)en);
    if (dn >= 0)
        CHECK(en >= 0 || en == -2);

    /* a whole evaluation */
    struct spf *s;
    const char *sender = (c1 & 1) ? "" : (c1 & 2) ? "joe+x@example.com" : "a@b.example.com";
    if (spf_begin(ips[c0 >> 6], sender, "mail.example.com", (c1 & 4) != 0, &s) != 0)
        return 0;
    spf_set_receiver(s, "mx.example.net", 1700000000);
    const char *name;
    enum dns_type type;
    unsigned lookups = 0;
    while ((name = spf_want(s, &type))) {
        CHECK(++lookups <= MAX_LOOKUPS);
        if (type == DNS_PTR)
            CHECK(strcmp(name, "192.0.2.1") == 0 || strcmp(name, "2001:db8::cb01") == 0 ||
                  strcmp(name, "198.51.100.7") == 0 || strcmp(name, "10.0.0.4") == 0);
        else
            CHECK(name_ok(name));
        uint32_t h = hash(name, (uint32_t)type * 7919u + c1);
        struct dns_result r = { 0 };
        const char *strs[16];
        size_t lens[16];
        struct dns_mx mx[13];
        char hosts[13][64], addrs[4][48];
        unsigned pick = h % 16;
        if (pick == 0 && (c1 & 8))
            r.status = DNS_TEMPFAIL;
        else if (pick == 1 && (c1 & 16))
            r.status = DNS_TIMEOUT;
        else if (pick < 4)
            r.status = DNS_NXDOMAIN;
        else if (pick < 6)
            r.status = DNS_NODATA;
        else
            r.status = DNS_OK;
        if (r.status == DNS_OK) {
            switch (type) {
            case DNS_TXT: {
                size_t k = (h >> 8) % n, m = 1 + ((h >> 16) % 8 == 0);
                for (size_t i = 0; i < m; i++) {
                    strs[i] = rec[(k + i) % n];
                    lens[i] = len[(k + i) % n];
                }
                r.txt = strs;
                r.txt_len = lens;
                r.n_txt = m;
                break;
            }
            case DNS_A:
            case DNS_AAAA: {
                size_t m = 1 + (h >> 8) % 3;
                for (size_t i = 0; i < m; i++) {
                    if (type == DNS_A)
                        snprintf(addrs[i], sizeof addrs[i], "%s",
                                 (h >> (10 + i)) & 1 ? "192.0.2.1" : "203.0.113.5");
                    else
                        snprintf(addrs[i], sizeof addrs[i], "%s",
                                 (h >> (10 + i)) & 1 ? "2001:db8::cb01" : "2001:db8::1");
                    strs[i] = addrs[i];
                }
                r.addrs = strs;
                r.n_addrs = m;
                break;
            }
            case DNS_MX: {
                size_t m = 1 + (h >> 8) % 13;
                for (size_t i = 0; i < m; i++) {
                    snprintf(hosts[i], sizeof hosts[i], "mx%zu.example.%s", i,
                             (h >> 12) & 1 ? "com" : "net");
                    mx[i].preference = (uint16_t)i;
                    mx[i].host = (h >> 20) % 7 == 0 && i == 0 ? "" : hosts[i];
                }
                r.mx = mx;
                r.n_mx = m;
                break;
            }
            case DNS_PTR: {
                size_t m = 1 + (h >> 8) % 12;
                for (size_t i = 0; i < m && i < 12; i++) {
                    snprintf(hosts[i], sizeof hosts[i], "h%zu.%s", i,
                             (h >> 13) & 1 ? "example.com" : "b.example.com");
                    strs[i] = hosts[i];
                }
                r.ptr = strs;
                r.n_ptr = m;
                break;
            }
            }
        }
        spf_answer(s, &r);
    }
    const char *expl = NULL;
    enum spf_result res = spf_result(s, &expl);
    CHECK(res >= SPF_NONE && res <= SPF_PERMERROR);
    if (expl) {
        CHECK(res == SPF_FAIL);
        CHECK(strlen(expl) <= SPF_MAX_EXPLANATION);
        for (const char *e = expl; *e; e++)
            CHECK((unsigned char)*e >= 0x20 && (unsigned char)*e <= 0x7e);
    }
    CHECK(spf_detail(s)[0] != 0);
    for (const char *d = spf_detail(s); *d; d++)
        CHECK((unsigned char)*d >= 0x20 && (unsigned char)*d <= 0x7e);
    /* one record for every name: a broken one never passes, a non-SPF one is none */
    if (n == 1 && chk == -1)
        CHECK(res != SPF_PASS);
    if (n == 1 && chk == 1)
        CHECK(res == SPF_NONE || res == SPF_TEMPERROR);
    spf_free(&s);
    CHECK(s == NULL);
    return 0;
}
