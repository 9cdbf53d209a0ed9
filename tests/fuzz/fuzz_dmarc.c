/*
 * DMARC (smtp/dmarc.c) against any bytes. Input: one control byte, then
 * four parts separated by NUL bytes: a DMARC TXT record, a message header,
 * a Public Suffix List, a domain. Checked:
 *  - dmarc_record_parse(): a known status; on OK the values are in range and
 *    rua=/ruf= point into the record;
 *  - dmarc_from_domain(): a known status; on OK a lowercase DNS name;
 *  - the list parsed from the third part: dmarc_org_domain() of the fourth
 *    part is a label-aligned suffix of it, lowercase, and its own
 *    organizational domain (idempotent), with the list and without;
 *  - an evaluation for the fourth part as the From domain, the record
 *    answering every _dmarc lookup (twice, sometimes), DNS statuses from the
 *    control byte: it ends within 5 lookups with a consistent outcome;
 *  - authres_value() of it: CR only in the "CRLF TAB" separators.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static bool lower_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DNS_NAME_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint8_t c = data[0];
    char *copy = malloc(size);
    CHECK(copy);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = 0;
    const char *part[4] = { "", "", "", "" };
    size_t plen[4] = { 0, 0, 0, 0 };
    char *p = copy, *end = copy + size - 1;
    for (int i = 0; i < 4 && p <= end; i++) {
        char *z = memchr(p, 0, (size_t)(end - p) + 1);
        part[i] = p;
        plen[i] = (size_t)(z - p);
        p = z + 1;
    }

    /* the record */
    struct dmarc_record r;
    enum dmarc_record_status st = dmarc_record_parse(part[0], plen[0], &r);
    CHECK(st == DMARC_RECORD_OK || st == DMARC_RECORD_NOT_DMARC || st == DMARC_RECORD_INVALID);
    if (st == DMARC_RECORD_OK) {
        CHECK(r.pct <= 100);
        CHECK(r.p <= DMARC_POLICY_REJECT && r.sp <= DMARC_POLICY_REJECT &&
              r.np <= DMARC_POLICY_REJECT);
        CHECK(r.fo != 0 && r.fo <= 15);
        if (r.rua)
            CHECK(r.rua >= part[0] && r.rua + r.rua_len <= part[0] + plen[0]);
        if (r.ruf)
            CHECK(r.ruf >= part[0] && r.ruf + r.ruf_len <= part[0] + plen[0]);
        if (r.p_assumed)
            CHECK(r.n_rua > 0 && r.p == DMARC_POLICY_NONE);
    }

    /* the From domain */
    char from[DNS_NAME_MAX + 1];
    enum dmarc_from f = dmarc_from_domain(part[1], plen[1], from, sizeof from);
    CHECK(f <= DMARC_FROM_INVALID);
    if (f == DMARC_FROM_OK)
        CHECK(lower_name(from));

    /* organizational domains */
    struct dmarc_psl *psl = dmarc_psl_parse(part[2], plen[2]);
    CHECK(psl);
    char org[DNS_NAME_MAX + 1], org2[DNS_NAME_MAX + 1], low[DNS_NAME_MAX + 2];
    for (int with = 0; with < 2; with++) {
        const struct dmarc_psl *l = with ? psl : NULL;
        int n = dmarc_org_domain(l, part[3], org, sizeof org);
        if (n < 0)
            continue;
        CHECK((size_t)n == strlen(org));
        size_t dn = plen[3];
        if (dn && part[3][dn - 1] == '.')
            dn--;
        CHECK(dn <= DNS_NAME_MAX && (size_t)n <= dn);
        for (size_t i = 0; i < dn; i++)
            low[i] = (char)(part[3][i] >= 'A' && part[3][i] <= 'Z' ? part[3][i] + 32 : part[3][i]);
        low[dn] = 0;
        CHECK(strcmp(low + dn - (size_t)n, org) == 0);
        CHECK((size_t)n == dn || low[dn - (size_t)n - 1] == '.');
        CHECK(dmarc_org_domain(l, org, org2, sizeof org2) == n);
        CHECK(strcmp(org, org2) == 0);
    }

    /* an evaluation */
    struct dmarc_dkim dk[2] = { { part[3], (c & 1) ? DKIM_PASS : DKIM_TEMPERROR },
                                { f == DMARC_FROM_OK ? from : "example.com", DKIM_PASS } };
    struct dmarc_input in = { .from_domain = part[3],
                              .spf = (enum spf_result)((c >> 1) % 7),
                              .spf_domain = f == DMARC_FROM_OK ? from : part[3],
                              .dkim = dk,
                              .n_dkim = (c >> 4) % 3,
                              .psl = (c & 8) ? psl : NULL,
                              .sample = c * 37u };
    struct dmarc *d;
    CHECK(dmarc_begin(&in, &d) == 0);
    const char *name;
    enum dns_type type;
    unsigned lookups = 0;
    while ((name = dmarc_want(d, &type))) {
        CHECK(++lookups <= 5);
        CHECK(lower_name(name));
        struct dns_result res = { 0 };
        const char *txt[2] = { part[0], part[0] };
        size_t tl[2] = { plen[0], plen[0] };
        static const char *const addr[] = { "192.0.2.1" };
        static const struct dns_mx mx[] = { { 10, "mx.example.com" } };
        unsigned pick = (c + lookups * 3) % 8;
        res.status = pick == 0 ? DNS_TEMPFAIL : pick == 1 ? DNS_NXDOMAIN
                                              : pick == 2 ? DNS_NODATA : DNS_OK;
        if (res.status == DNS_OK) {
            if (type == DNS_TXT) {
                res.txt = txt;
                res.txt_len = tl;
                res.n_txt = pick == 7 ? 2 : 1;
            } else if (type == DNS_MX) {
                res.mx = mx;
                res.n_mx = 1;
            } else {
                res.addrs = addr;
                res.n_addrs = 1;
            }
        }
        dmarc_answer(d, &res);
    }
    struct dmarc_outcome o;
    enum dmarc_result dr = dmarc_result(d, &o);
    CHECK(dr == o.result && dr <= DMARC_PERMERROR);
    if (dr != DMARC_FAIL)
        CHECK(o.policy == DMARC_POLICY_NONE);
    else
        CHECK(o.policy <= o.requested && o.record);
    if (dr == DMARC_PASS)
        CHECK(o.spf_aligned || o.dkim_aligned);
    CHECK(o.reason && o.reason[0]);

    struct authres_input ai = { .authserv_id = part[1], .dkim_checked = (c & 2) != 0,
                                .dmarc = d };
    char *v = authres_value(&ai);
    CHECK(v);
    for (char *q = v; *q; q++) {
        if (*q == '\r')
            CHECK(q[1] == '\n' && q[2] == '\t');
        if (*q == '\n')
            CHECK(q > v && q[-1] == '\r');
    }
    free(v);
    dmarc_free(&d);
    dmarc_psl_free(&psl);
    free(copy);
    return 0;
}
