/*
 * DMARC (smtp/dmarc.c) against RFC 7489 (and np= of RFC 9091): record
 * parsing (§6.3, §6.4), organizational domains through a Public Suffix List
 * (§3.2; a small list here, and Debian's file when it is installed), the
 * RFC5322.From domain (§6.6.1), discovery (§6.6.3), alignment (§3.1) and the
 * policy (§6.6.4, pct sampled with an injected value), driven by a fake DNS
 * zone; and the Authentication-Results value (RFC 8601).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include "smtp/smtp.h"

/* ------------------------------------------------------- the fake zone */

#define MAXDATA 8

struct rr {
    const char *name;
    enum dns_type type;
    enum dns_status status;
    const char *data[MAXDATA];  /* addresses, TXT records, MX "pref host" */
};

#define END { NULL, 0, 0, { NULL } }
#define TXT(n, ...) { n, DNS_TXT, DNS_OK, { __VA_ARGS__ } }
#define A(n, ...) { n, DNS_A, DNS_OK, { __VA_ARGS__ } }
#define MX(n, ...) { n, DNS_MX, DNS_OK, { __VA_ARGS__ } }
#define ERR(n, t, st) { n, t, st, { NULL } }

struct answer {
    struct dns_result r;
    const char *strs[MAXDATA];
    size_t lens[MAXDATA];
    struct dns_mx mx[MAXDATA];
    char hosts[MAXDATA][256];
};

static void zone_lookup(const struct rr *zone, const char *name, enum dns_type type,
                        struct answer *a)
{
    memset(a, 0, sizeof *a);
    bool seen = false;
    for (const struct rr *r = zone; r->name; r++) {
        if (strcasecmp(r->name, name) != 0)
            continue;
        seen = true;
        if (r->type != type)
            continue;
        a->r.status = r->status;
        if (r->status != DNS_OK)
            return;
        size_t n = 0;
        while (n < MAXDATA && r->data[n])
            n++;
        for (size_t i = 0; i < n; i++) {
            a->strs[i] = r->data[i];
            a->lens[i] = strlen(r->data[i]);
            if (type == DNS_MX) {
                unsigned pref = 0;
                sscanf(r->data[i], "%u %255s", &pref, a->hosts[i]);
                a->mx[i].preference = (uint16_t)pref;
                a->mx[i].host = a->hosts[i];
            }
        }
        if (type == DNS_TXT) {
            a->r.txt = a->strs;
            a->r.txt_len = a->lens;
            a->r.n_txt = n;
        } else if (type == DNS_MX) {
            a->r.mx = a->mx;
            a->r.n_mx = n;
        } else {
            a->r.addrs = a->strs;
            a->r.n_addrs = n;
        }
        return;
    }
    a->r.status = seen ? DNS_NODATA : DNS_NXDOMAIN;
}

static const char psl_text[] =
    "// a small list in the format of publicsuffix.org\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "net\n"
    "org\n"
    "example\n"
    "uk\n"
    "co.uk\n"
    "ck\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "\xd1\x80\xd1\x84\n"  /* рф */
    "  io   trailing words are ignored\n"
    "\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io\n";

static struct dmarc_psl *test_psl(void)
{
    struct dmarc_psl *p = dmarc_psl_parse(psl_text, sizeof psl_text - 1);
    assert_non_null(p);
    return p;
}

/* The zone of the evaluation tests. */
static const struct rr zone[] = {
    TXT("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine"),
    TXT("_dmarc.sub.example.com", "v=DMARC1; p=none"),
    TXT("_dmarc.example.org", "v=DMARC1; p=reject"),
    TXT("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=s"),
    TXT("_dmarc.example.net", "v=DMARC1; p=quarantine; sp=none; np=reject"),
    A("real.example.net", "192.0.2.1"),
    TXT("nodata.example.net", "hello"),
    MX("mxonly.example.net", "10 mx.example.net"),
    ERR("broken.example.net", DNS_A, DNS_TEMPFAIL),
    TXT("_dmarc.pct.example", "v=DMARC1; p=reject; pct=30"),
    TXT("_dmarc.pctq.example", "v=DMARC1; p=quarantine; pct=0"),
    TXT("_dmarc.two.example", "v=DMARC1; p=reject", "v=DMARC1; p=none"),
    TXT("_dmarc.other.example", "some verification text", "v=spf1 -all"),
    TXT("_dmarc.nop.example", "v=DMARC1; adkim=s"),
    TXT("_dmarc.ruaonly.example", "v=DMARC1; p=bogus; rua=mailto:dmarc@ruaonly.example"),
    ERR("_dmarc.tempfail.example", DNS_TXT, DNS_TEMPFAIL),
    ERR("_dmarc.timeout.example", DNS_TXT, DNS_TIMEOUT),
    TXT("_dmarc.example.co.uk", "v=DMARC1; p=quarantine"),
    END,
};

struct drun {
    struct dmarc_outcome o;
    enum dmarc_result result;
    char log[2048];
    unsigned queries;
    char reason[256], record_domain[256], dkim_domain[256], org[256];
};

static void run_dmarc(const struct dmarc_input *in, const struct rr *z, struct drun *out)
{
    memset(out, 0, sizeof *out);
    struct dmarc *d = NULL;
    assert_int_equal(dmarc_begin(in, &d), 0);
    const char *name;
    enum dns_type type;
    size_t logn = 0;
    while ((name = dmarc_want(d, &type))) {
        assert_true(++out->queries < 10);
        logn += (size_t)snprintf(out->log + logn, sizeof out->log - logn, "%s %s\n",
                                 dns_type_name(type), name);
        struct answer a;
        zone_lookup(z, name, type, &a);
        dmarc_answer(d, &a.r);
    }
    out->result = dmarc_result(d, &out->o);
    snprintf(out->reason, sizeof out->reason, "%s", out->o.reason);
    snprintf(out->record_domain, sizeof out->record_domain, "%s", out->o.record_domain);
    snprintf(out->dkim_domain, sizeof out->dkim_domain, "%s", out->o.dkim_domain);
    snprintf(out->org, sizeof out->org, "%s", out->o.org_domain);
    out->o.reason = out->reason;
    out->o.record = NULL;
    dmarc_free(&d);
    assert_null(d);
}

/* ---------------------------------------------------- records (§6.3) */

static void test_record_parse(void **state)
{
    (void)state;
    struct dmarc_record r;
    const char *t = "v=DMARC1; p=reject";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.p, DMARC_POLICY_REJECT);
    assert_false(r.has_sp);
    assert_false(r.has_np);
    assert_false(r.p_assumed);
    assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
    assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
    assert_int_equal(r.pct, 100);
    assert_int_equal(r.ri, 86400);
    assert_int_equal(r.fo, DMARC_FO_0);
    assert_null(r.rua);
    assert_null(r.ruf);

    t = "v=DMARC1; p=quarantine; sp=reject; np=none; adkim=s; aspf=s; pct=25; "
        "rua=mailto:agg@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; "
        "fo=1:d:s; ri=3600; rf=afrf";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
    assert_true(r.has_sp);
    assert_int_equal(r.sp, DMARC_POLICY_REJECT);
    assert_true(r.has_np);
    assert_int_equal(r.np, DMARC_POLICY_NONE);
    assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);
    assert_int_equal(r.aspf, DMARC_ALIGN_STRICT);
    assert_int_equal(r.pct, 25);
    assert_int_equal(r.ri, 3600);
    assert_int_equal(r.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
    assert_int_equal(r.n_rua, 2);
    assert_int_equal(r.n_ruf, 1);
    assert_int_equal(r.rua_len, strlen("mailto:agg@example.com,mailto:b@example.net!10m"));
    assert_memory_equal(r.rua, "mailto:agg@example.com,", 23);

    /* blanks, case of names and values, trailing separators */
    t = "v = DMARC1 ;\tP = Reject ; SP=None;;";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.p, DMARC_POLICY_REJECT);
    assert_int_equal(r.sp, DMARC_POLICY_NONE);
    t = "V=DMARC1;p=none;";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);

    /* not DMARC records: discarded (§6.6.3 steps 2, 4) */
    static const char *const notd[] = { "v=dmarc1; p=reject", "p=reject; v=DMARC1",
                                        "v=DMARC2; p=reject", "v=spf1 -all", "",
                                        "v=DMARC1p=reject", ";v=DMARC1; p=reject",
                                        "hello world" };
    for (size_t i = 0; i < sizeof notd / sizeof notd[0]; i++)
        if (dmarc_record_parse(notd[i], strlen(notd[i]), &r) != DMARC_RECORD_NOT_DMARC)
            fail_msg("'%s' taken for DMARC", notd[i]);

    /* DMARC records without a usable policy (§6.6.3 step 6) */
    static const char *const inval[] = { "v=DMARC1", "v=DMARC1;", "v=DMARC1; p=bogus",
                                         "v=DMARC1; p=reject; sp=bogus", "v=DMARC1; pct=50",
                                         "v=DMARC1; p=reject; sp=x; rua=bad uri" };
    for (size_t i = 0; i < sizeof inval / sizeof inval[0]; i++)
        if (dmarc_record_parse(inval[i], strlen(inval[i]), &r) != DMARC_RECORD_INVALID)
            fail_msg("'%s' not invalid", inval[i]);
    /* ... unless rua= has a valid URI: as p=none (6.1) */
    t = "v=DMARC1; rua=mailto:x@example.com";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_true(r.p_assumed);
    assert_int_equal(r.p, DMARC_POLICY_NONE);
    t = "v=DMARC1; p=reject; sp=bogus; rua=mailto:x@example.com";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_true(r.p_assumed);
    assert_int_equal(r.p, DMARC_POLICY_NONE);
    assert_false(r.has_sp);

    /* other bad values take their defaults; unknown tags and junk ignored */
    t = "v=DMARC1; p=reject; pct=101; adkim=x; aspf=; fo=2; ri=-1; foo=bar; junk; np=maybe";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.pct, 100);
    assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
    assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
    assert_int_equal(r.fo, DMARC_FO_0);
    assert_int_equal(r.ri, 86400);
    assert_false(r.has_np);
    t = "v=DMARC1; p=reject; pct=0; fo=1:";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.pct, 0);
    assert_int_equal(r.fo, DMARC_FO_0);
    t = "v=DMARC1; p=reject; pct=abc; fo=d";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.pct, 100);
    assert_int_equal(r.fo, DMARC_FO_D);
    /* a repeated tag: the first counts */
    t = "v=DMARC1; p=none; p=reject; pct=10; pct=90";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.p, DMARC_POLICY_NONE);
    assert_int_equal(r.pct, 10);
    /* URIs counted */
    t = "v=DMARC1; p=none; rua=mailto:a@x.example, mailto:b@y.example!10m, bad uri, :x, "
        "https://r.example/x!5, mailto:c@z.example!k";
    assert_int_equal(dmarc_record_parse(t, strlen(t), &r), DMARC_RECORD_OK);
    assert_int_equal(r.n_rua, 3);
    /* NULL rec: check only */
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=none", 16, NULL), DMARC_RECORD_OK);

    assert_string_equal(dmarc_result_name(DMARC_NONE), "none");
    assert_string_equal(dmarc_result_name(DMARC_PASS), "pass");
    assert_string_equal(dmarc_result_name(DMARC_FAIL), "fail");
    assert_string_equal(dmarc_result_name(DMARC_TEMPERROR), "temperror");
    assert_string_equal(dmarc_result_name(DMARC_PERMERROR), "permerror");
    assert_string_equal(dmarc_policy_name(DMARC_POLICY_NONE), "none");
    assert_string_equal(dmarc_policy_name(DMARC_POLICY_QUARANTINE), "quarantine");
    assert_string_equal(dmarc_policy_name(DMARC_POLICY_REJECT), "reject");
}

/* ---------------------------------------- organizational domains (§3.2) */

static void expect_org(const struct dmarc_psl *p, const char *d, const char *want)
{
    char out[256];
    int n = dmarc_org_domain(p, d, out, sizeof out);
    if (n < 0 || strcmp(out, want) != 0)
        fail_msg("org(%s): got %d '%s', want '%s'", d, n, n >= 0 ? out : "", want);
}

static void test_org_domain(void **state)
{
    (void)state;
    struct dmarc_psl *p = test_psl();
    assert_int_equal(dmarc_psl_rules(p), 15);
    expect_org(p, "example.com", "example.com");
    expect_org(p, "a.b.example.com", "example.com");
    expect_org(p, "MAIL.Example.COM.", "example.com");
    expect_org(p, "example.co.uk", "example.co.uk");
    expect_org(p, "x.y.example.co.uk", "example.co.uk");
    expect_org(p, "co.uk", "co.uk");   /* a public suffix is its own */
    expect_org(p, "uk", "uk");
    expect_org(p, "foo.bar.ck", "foo.bar.ck");  /* *.ck: bar.ck is public */
    expect_org(p, "a.foo.bar.ck", "foo.bar.ck");
    expect_org(p, "www.ck", "www.ck");          /* !www.ck */
    expect_org(p, "a.b.www.ck", "www.ck");
    expect_org(p, "a.b.kawasaki.jp", "a.b.kawasaki.jp");
    expect_org(p, "x.city.kawasaki.jp", "city.kawasaki.jp");
    expect_org(p, "user.github.io", "user.github.io");
    expect_org(p, "a.user.github.io", "user.github.io");
    expect_org(p, "example.io", "example.io");
    expect_org(p, "example.unlisted", "example.unlisted");  /* the default rule "*" */
    expect_org(p, "a.b.example.unlisted", "example.unlisted");
    expect_org(p, "a.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai");  /* рф as an A-label */
    char out[256];
    assert_int_equal(dmarc_org_domain(p, "a..example.com", out, sizeof out), -1);
    assert_int_equal(dmarc_org_domain(p, "", out, sizeof out), -1);
    assert_int_equal(dmarc_org_domain(p, "example.com", out, 5), -1);
    /* without a list: the last two labels */
    expect_org(NULL, "a.b.example.com", "example.com");
    expect_org(NULL, "a.example.co.uk", "co.uk");
    expect_org(NULL, "com", "com");
    dmarc_psl_free(&p);
    assert_null(p);

    char err[256];
    errno = 0;
    assert_int_equal(dmarc_psl_load("/nonexistent/psl.dat", &p, err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(p);
}

/* Debian's list, when the publicsuffix package is installed. */
static void test_org_domain_system_list(void **state)
{
    (void)state;
    if (access(DMARC_PSL_PATH, R_OK) != 0) {
        print_message("%s absent (Debian package publicsuffix): skipped\n", DMARC_PSL_PATH);
        skip();
    }
    struct dmarc_psl *p;
    char err[256];
    assert_int_equal(dmarc_psl_load(NULL, &p, err, sizeof err), 0);
    assert_true(dmarc_psl_rules(p) > 5000);
    expect_org(p, "mail.example.com", "example.com");
    expect_org(p, "www.bbc.co.uk", "bbc.co.uk");
    expect_org(p, "a.b.example.com.au", "example.com.au");
    expect_org(p, "www.city.kawasaki.jp", "city.kawasaki.jp");
    expect_org(p, "foo.bar.kawasaki.jp", "foo.bar.kawasaki.jp");
    expect_org(p, "user.github.io", "user.github.io");
    expect_org(p, "mail.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai");
    dmarc_psl_free(&p);
}

/* ------------------------------------------------ the From domain (§6.6.1) */

static void expect_from(const char *msg, enum dmarc_from want, const char *domain)
{
    char out[DNS_NAME_MAX + 1];
    enum dmarc_from got = dmarc_from_domain(msg, strlen(msg), out, sizeof out);
    if (got != want || (domain && strcmp(out, domain) != 0))
        fail_msg("%s: got %d '%s', want %d '%s'", msg, got, out, want, domain ? domain : "");
}

static void test_from_domain(void **state)
{
    (void)state;
    expect_from("From: a@example.com\r\n\r\nbody", DMARC_FROM_OK, "example.com");
    expect_from("Subject: x\r\nFrom: \"Doe, John\" <john@Example.COM>\r\nTo: b@c.d\r\n\r\n",
                DMARC_FROM_OK, "example.com");
    expect_from("From: John (comment, with <x@evil.example>) <john@example.com>\r\n\r\n",
                DMARC_FROM_OK, "example.com");
    expect_from("from : john@example.com\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: John\r\n <john@example.com>\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: john@example.com\nSubject: bare LF\n\nbody", DMARC_FROM_OK, "example.com");
    expect_from("From: john@example.com (John Smith)\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: john@ example . com\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: a@example.com, b@EXAMPLE.com\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: team: a@example.com, b@example.com;\r\n\r\n", DMARC_FROM_OK,
                "example.com");
    expect_from("From: <@relay.example.org:john@example.com>\r\n\r\n", DMARC_FROM_OK,
                "example.com");
    expect_from("From: \"a@evil.example\"@example.com\r\n\r\n", DMARC_FROM_OK, "example.com");
    expect_from("From: a@b\xc3\xbc" "cher.example\r\n\r\n", DMARC_FROM_OK,
                "xn--bcher-kva.example");
    expect_from("From sender@example.org Mon Jan  1 00:00:00 2024\r\n"
                "From: a@example.com\r\n\r\n",
                DMARC_FROM_OK, "example.com");
    expect_from("Resent-From: a@evil.example\r\nX-From: b@evil.example\r\n"
                "From: c@example.com\r\n\r\n",
                DMARC_FROM_OK, "example.com");
    expect_from("From: , a@example.com,\r\n\r\n", DMARC_FROM_OK, "example.com");

    expect_from("Subject: none\r\n\r\nFrom: a@example.com\r\n", DMARC_FROM_MISSING, NULL);
    expect_from("", DMARC_FROM_MISSING, NULL);
    expect_from("From: a@example.com\r\nFrom: a@example.com\r\n\r\n", DMARC_FROM_MULTIPLE, NULL);
    expect_from("From: a@example.com, b@example.net\r\n\r\n", DMARC_FROM_MULTIPLE_DOMAINS, NULL);
    expect_from("From: undisclosed-recipients:;\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@[192.0.2.1]\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: <>\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: john\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@example..com\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@example.com.\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@exa\"mple\".com\r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: \r\n\r\n", DMARC_FROM_INVALID, NULL);
    expect_from("From: a@b\xff.example\r\n\r\n", DMARC_FROM_INVALID, NULL);
}

/* ---------------------------------------------------------- evaluation */

static struct dmarc_input input(const char *from, enum spf_result spf, const char *spf_domain,
                                const struct dmarc_psl *psl)
{
    struct dmarc_input in = { .from_domain = from, .spf = spf, .spf_domain = spf_domain,
                              .psl = psl, .sample = 0 };
    return in;
}

static void test_alignment(void **state)
{
    (void)state;
    struct dmarc_psl *p = test_psl();
    struct drun r;

    /* SPF: strict and relaxed (§3.1.2) */
    struct dmarc_input in = input("example.com", SPF_PASS, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    assert_true(r.o.spf_aligned);
    assert_false(r.o.dkim_aligned);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    assert_string_equal(r.record_domain, "example.com");
    in = input("example.com", SPF_PASS, "bounce.Example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    in = input("strict.example", SPF_PASS, "bounce.strict.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    in = input("strict.example", SPF_PASS, "strict.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    /* an aligned domain whose SPF did not pass */
    in = input("example.com", SPF_SOFTFAIL, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    in = input("example.com", SPF_PASS, "example.net", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    /* relaxed needs the PSL: example.co.uk and other.co.uk are not aligned */
    in = input("example.co.uk", SPF_PASS, "other.co.uk", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    in = input("example.co.uk", SPF_PASS, "mail.example.co.uk", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);

    /* DKIM: each signature's d= (§3.1.1) */
    struct dmarc_dkim k[] = { { "example.net", DKIM_PASS },
                              { "mail.example.com", DKIM_FAIL },
                              { "news.example.com", DKIM_PASS } };
    in = input("example.com", SPF_FAIL, "example.com", p);
    in.dkim = k;
    in.n_dkim = 3;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    assert_true(r.o.dkim_aligned);
    assert_string_equal(r.dkim_domain, "news.example.com");
    in.n_dkim = 2;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    struct dmarc_dkim ks[] = { { "sub.strict.example", DKIM_PASS }, { "STRICT.example", DKIM_PASS } };
    in = input("strict.example", SPF_NONE, "", p);
    in.dkim = ks;
    in.n_dkim = 1;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    in.n_dkim = 2;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    assert_string_equal(r.dkim_domain, "strict.example");

    /* temporary errors on aligned identifiers: temperror, not fail */
    in = input("example.com", SPF_TEMPERROR, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_TEMPERROR);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    in = input("example.com", SPF_TEMPERROR, "example.net", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    struct dmarc_dkim kt[] = { { "example.com", DKIM_TEMPERROR } };
    in = input("example.com", SPF_FAIL, "example.com", p);
    in.dkim = kt;
    in.n_dkim = 1;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_TEMPERROR);
    /* a pass wins over a temperror */
    in.spf = SPF_PASS;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    dmarc_psl_free(&p);
}

static void test_policy(void **state)
{
    (void)state;
    struct dmarc_psl *p = test_psl();
    struct drun r;

    /* the domain's own record: p */
    struct dmarc_input in = input("example.com", SPF_FAIL, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    assert_int_equal(r.o.requested, DMARC_POLICY_REJECT);
    assert_string_equal(r.o.policy_tag, "p");
    assert_string_equal(r.log, "TXT _dmarc.example.com\n");

    /* a subdomain without a record: the organizational domain's sp */
    in = input("news.example.com", SPF_FAIL, "news.example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    assert_string_equal(r.o.policy_tag, "sp");
    assert_string_equal(r.record_domain, "example.com");
    assert_string_equal(r.org, "example.com");
    assert_string_equal(r.log, "TXT _dmarc.news.example.com\nTXT _dmarc.example.com\n");
    /* ... no sp: p */
    in = input("a.b.example.org", SPF_FAIL, "example.org", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    assert_string_equal(r.o.policy_tag, "p");
    /* a subdomain with its own record */
    in = input("sub.example.com", SPF_FAIL, "sub.example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    assert_string_equal(r.record_domain, "sub.example.com");
    assert_string_equal(r.log, "TXT _dmarc.sub.example.com\n");

    /* np (RFC 9091): a subdomain that does not exist */
    in = input("ghost.example.net", SPF_NONE, "", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    assert_string_equal(r.o.policy_tag, "np");
    assert_string_equal(r.log, "TXT _dmarc.ghost.example.net\nTXT _dmarc.example.net\n"
                               "A ghost.example.net\n");
    in = input("nodata.example.net", SPF_NONE, "", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    assert_string_equal(r.log, "TXT _dmarc.nodata.example.net\nTXT _dmarc.example.net\n"
                               "A nodata.example.net\nAAAA nodata.example.net\n"
                               "MX nodata.example.net\n");
    in = input("real.example.net", SPF_NONE, "", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    assert_string_equal(r.o.policy_tag, "sp");
    in = input("mxonly.example.net", SPF_NONE, "", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    in = input("broken.example.net", SPF_NONE, "", p);  /* an error: taken as existing */
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    in = input("example.net", SPF_NONE, "", p);  /* the organizational domain: p */
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    assert_string_equal(r.log, "TXT _dmarc.example.net\n");
    /* a pass asks nothing more */
    in = input("ghost.example.net", SPF_PASS, "ghost.example.net", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PASS);
    assert_int_equal(r.queries, 2);

    /* pct (§6.6.4): sample % 100 < pct applies; else one step weaker */
    in = input("pct.example", SPF_FAIL, "pct.example", p);
    in.sample = 29;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    assert_false(r.o.sampled_out);
    in.sample = 30;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    assert_int_equal(r.o.requested, DMARC_POLICY_REJECT);
    assert_true(r.o.sampled_out);
    in.sample = 129;
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_REJECT);
    in.sample = UINT32_MAX;  /* 95 */
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    in = input("pctq.example", SPF_FAIL, "pctq.example", p);
    for (uint32_t s = 0; s < 100; s += 33) {
        in.sample = s;
        run_dmarc(&in, zone, &r);
        assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
        assert_int_equal(r.o.requested, DMARC_POLICY_QUARANTINE);
    }
    /* p=none with rua stands in for an unusable p= */
    in = input("ruaonly.example", SPF_FAIL, "ruaonly.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    dmarc_psl_free(&p);
}

static void test_discovery(void **state)
{
    (void)state;
    struct dmarc_psl *p = test_psl();
    struct drun r;

    /* no record */
    struct dmarc_input in = input("norecord.com", SPF_FAIL, "norecord.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_NONE);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    assert_string_equal(r.log, "TXT _dmarc.norecord.com\n");
    in = input("a.norecord.com", SPF_FAIL, "norecord.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_NONE);
    assert_string_equal(r.log, "TXT _dmarc.a.norecord.com\nTXT _dmarc.norecord.com\n");
    /* TXT records that are not DMARC are discarded */
    in = input("other.example", SPF_FAIL, "other.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_NONE);
    /* several: permerror, no policy, no fallback */
    in = input("two.example", SPF_FAIL, "two.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PERMERROR);
    assert_int_equal(r.o.policy, DMARC_POLICY_NONE);
    assert_int_equal(r.queries, 1);
    in = input("x.two.example", SPF_FAIL, "two.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PERMERROR);
    /* no usable p= and no rua= */
    in = input("nop.example", SPF_FAIL, "nop.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PERMERROR);
    /* DNS errors */
    in = input("tempfail.example", SPF_PASS, "tempfail.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_TEMPERROR);
    in = input("timeout.example", SPF_PASS, "timeout.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_TEMPERROR);
    in = input("x.tempfail.example", SPF_PASS, "tempfail.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_TEMPERROR);
    /* PSL organizational domains */
    in = input("a.example.co.uk", SPF_FAIL, "x.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    assert_string_equal(r.log, "TXT _dmarc.a.example.co.uk\nTXT _dmarc.example.co.uk\n");
    in = input("co.uk", SPF_FAIL, "x.example", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_NONE);
    assert_string_equal(r.log, "TXT _dmarc.co.uk\n");
    /* a From domain too long for "_dmarc." in front: the organizational domain's */
    char longd[256] = "";
    for (int i = 0; i < 30; i++)
        strcat(longd, "abcdefg.");
    strcat(longd, "example.com");
    assert_true(strlen(longd) > 246);
    in = input(longd, SPF_FAIL, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);
    assert_string_equal(r.log, "TXT _dmarc.example.com\n");
    /* a From domain that is no domain: permerror, nothing asked */
    in = input("[192.0.2.1]", SPF_PASS, "example.com", p);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_PERMERROR);
    assert_int_equal(r.queries, 0);
    /* UTF-8 From domain: asked as A-labels */
    in = input("b\xc3\xbc" "cher.example", SPF_NONE, "", p);
    run_dmarc(&in, zone, &r);
    assert_string_equal(r.log, "TXT _dmarc.xn--bcher-kva.example\n");
    /* without a PSL the last two labels are the organizational domain */
    in = input("news.example.com", SPF_FAIL, "bounce.example.com", NULL);
    run_dmarc(&in, zone, &r);
    assert_int_equal(r.result, DMARC_FAIL);
    assert_int_equal(r.o.policy, DMARC_POLICY_QUARANTINE);

    /* the API */
    struct dmarc *d;
    assert_int_equal(dmarc_begin(NULL, &d), -1);
    assert_int_equal(errno, EINVAL);
    in = input("example.com", SPF_PASS, "example.com", p);
    assert_int_equal(dmarc_begin(&in, &d), 0);
    enum dns_type t;
    assert_string_equal(dmarc_want(d, &t), "_dmarc.example.com");
    assert_int_equal(t, DNS_TXT);
    struct dmarc_outcome o;
    assert_int_equal(dmarc_result(d, &o), DMARC_TEMPERROR);
    assert_int_equal(o.policy, DMARC_POLICY_NONE);
    dmarc_free(&d);
    dmarc_free(&d);
    dmarc_psl_free(&p);
}

/* ------------------------------------------ Authentication-Results (RFC 8601) */

static struct spf *spf_pass(void)
{
    struct spf *s;
    assert_int_equal(spf_begin("192.0.2.10", "alice@example.com", "mail.example.com", false, &s),
                     0);
    const char *rec = "v=spf1 ip4:192.0.2.10 -all";
    size_t len = strlen(rec);
    struct dns_result r = { .status = DNS_OK, .txt = &rec, .txt_len = &len, .n_txt = 1 };
    spf_answer(s, &r);
    assert_null(spf_want(s, NULL));
    assert_int_equal(spf_result(s, NULL), SPF_PASS);
    return s;
}

static struct dmarc *dmarc_run(const char *from, enum spf_result spf)
{
    struct dmarc_input in = input(from, spf, "example.com", NULL);
    struct dmarc *d;
    assert_int_equal(dmarc_begin(&in, &d), 0);
    const char *name;
    enum dns_type t;
    while ((name = dmarc_want(d, &t))) {
        struct answer a;
        zone_lookup(zone, name, t, &a);
        dmarc_answer(d, &a.r);
    }
    return d;
}

static void test_authres(void **state)
{
    (void)state;
    struct spf *s = spf_pass();
    struct dmarc *d = dmarc_run("example.com", SPF_PASS);
    struct dkim_sig_result k[2];
    memset(k, 0, sizeof k);
    k[0].result = DKIM_PASS;
    k[0].reason = "signature verified";
    k[0].domain = "example.com";
    k[0].selector = "sel";
    snprintf(k[0].b_prefix, sizeof k[0].b_prefix, "ab/c+d=e");
    k[1].result = DKIM_FAIL;
    k[1].reason = "body hash (bh=) mismatch";
    k[1].domain = "example.net";
    k[1].selector = "s\r\n2";
    snprintf(k[1].b_prefix, sizeof k[1].b_prefix, "Zz09+abc");
    struct authres_input in = { .authserv_id = "mail.example.net", .spf = s, .dkim = k,
                                .n_dkim = 2, .dkim_checked = true, .dmarc = d };
    char *v = authres_value(&in);
    assert_non_null(v);
    assert_string_equal(
        v, "mail.example.net;\r\n"
           "\tspf=pass (example.com: matched ip4:192.0.2.10) smtp.mailfrom=alice@example.com;\r\n"
           "\tdkim=pass (signature verified) header.d=example.com header.s=sel "
           "header.b=\"ab/c+d=e\";\r\n"
           "\tdkim=fail (body hash \\(bh=\\) mismatch) header.d=example.net header.s=\"s2\" "
           "header.b=Zz09+abc;\r\n"
           "\tdmarc=pass (p=reject sp=quarantine dis=none) header.from=example.com");
    free(v);

    /* nothing checked; no signatures; a failing DMARC */
    struct authres_input none = { .authserv_id = "mail.example.net" };
    v = authres_value(&none);
    assert_string_equal(v, "mail.example.net; none");
    free(v);
    dmarc_free(&d);
    d = dmarc_run("news.example.com", SPF_FAIL);
    struct authres_input two = { .authserv_id = "mx one", .dkim_checked = true, .dmarc = d };
    v = authres_value(&two);
    assert_string_equal(v, "\"mx one\";\r\n\tdkim=none;\r\n"
                           "\tdmarc=fail (p=reject sp=quarantine dis=quarantine) "
                           "header.from=news.example.com");
    free(v);
    dmarc_free(&d);
    d = dmarc_run("norecord.com", SPF_FAIL);
    struct authres_input three = { .authserv_id = "mx.example.net", .dmarc = d };
    v = authres_value(&three);
    assert_string_equal(v, "mx.example.net;\r\n\tdmarc=none (no DMARC record) "
                           "header.from=norecord.com");
    free(v);
    dmarc_free(&d);
    spf_free(&s);

    /* quoting (RFC 8601 §2.2): odd addresses, the null sender, HELO */
    assert_int_equal(spf_begin("192.0.2.10", "\"john doe\"@example.com", "h.example.com", false,
                               &s), 0);
    struct authres_input q = { .authserv_id = "mx.example.net", .spf = s };
    v = authres_value(&q);
    assert_string_equal(v, "mx.example.net;\r\n\tspf=temperror (check not finished) "
                           "smtp.mailfrom=\"\\\"john doe\\\"@example.com\"");
    free(v);
    spf_free(&s);
    assert_int_equal(spf_begin("192.0.2.10", "", "[192.0.2.1]", false, &s), 0);
    q.spf = s;
    v = authres_value(&q);
    assert_string_equal(v, "mx.example.net;\r\n\tspf=none ('[192.0.2.1]' is not a domain SPF "
                           "can check) smtp.helo=\"[192.0.2.1]\"");
    free(v);
    spf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_parse),
        cmocka_unit_test(test_org_domain),
        cmocka_unit_test(test_org_domain_system_list),
        cmocka_unit_test(test_from_domain),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_authres),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
