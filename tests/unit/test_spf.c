/*
 * SPF (smtp/spf.c) against RFC 7208: every macro example of §7.4, the
 * extended examples of the appendix (the example.com / example.org zone),
 * and an evaluation table driven by a fake DNS zone kept here: a list of
 * name/type -> answer rows, fed to spf_answer() one lookup at a time. The
 * cases come from the RFC text (record selection §4.5, evaluation §4.6,
 * limits §4.6.4, mechanisms §5, include results §5.2, modifiers §6, macros
 * §7), in the spirit of the OpenSPF test suite but written from scratch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "smtp/smtp.h"

/* ------------------------------------------------------- the fake zone */

#define MAXDATA 16
#define MAX_QUERIES_SANITY 250

/* One name/type. status: DNS_OK (0) with data, or an error to return. */
struct rr {
    const char *name;
    enum dns_type type;
    enum dns_status status;
    const char *data[MAXDATA];  /* addresses, TXT records, PTR names, or MX "pref host" */
};

/* The zone of the RFC 7208 appendix examples (CNAMEs as a resolver returns them). */
static const struct rr appendix_zone[] = {
    { "example.com", DNS_MX, DNS_OK, { "10 mail-a.example.com", "20 mail-b.example.com" } },
    { "example.com", DNS_A, DNS_OK, { "192.0.2.10", "192.0.2.11" } },
    { "amy.example.com", DNS_A, DNS_OK, { "192.0.2.65" } },
    { "bob.example.com", DNS_A, DNS_OK, { "192.0.2.66" } },
    { "mail-a.example.com", DNS_A, DNS_OK, { "192.0.2.129" } },
    { "mail-b.example.com", DNS_A, DNS_OK, { "192.0.2.130" } },
    { "www.example.com", DNS_A, DNS_OK, { "192.0.2.10", "192.0.2.11" } },
    { "example.org", DNS_MX, DNS_OK, { "10 mail-c.example.org" } },
    { "mail-c.example.org", DNS_A, DNS_OK, { "192.0.2.140" } },
    { "example.net", DNS_MX, DNS_OK, { "10 mail-d.example.net" } },
    { "mail-d.example.net", DNS_A, DNS_OK, { "192.0.2.150" } },
    { "192.0.2.10", DNS_PTR, DNS_OK, { "example.com" } },
    { "192.0.2.11", DNS_PTR, DNS_OK, { "example.com" } },
    { "192.0.2.65", DNS_PTR, DNS_OK, { "amy.example.com" } },
    { "192.0.2.66", DNS_PTR, DNS_OK, { "bob.example.com" } },
    { "192.0.2.129", DNS_PTR, DNS_OK, { "mail-a.example.com" } },
    { "192.0.2.130", DNS_PTR, DNS_OK, { "mail-b.example.com" } },
    { "192.0.2.140", DNS_PTR, DNS_OK, { "mail-c.example.org" } },
    { "10.0.0.4", DNS_PTR, DNS_OK, { "bob.example.com" } },
    { NULL, 0, 0, { NULL } },
};

/* A result built from rows; the strings point into the rows. */
struct answer {
    struct dns_result r;
    const char *strs[MAXDATA];
    size_t lens[MAXDATA];
    struct dns_mx mx[MAXDATA];
    char hosts[MAXDATA][256];
};

static bool name_eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Looks name/type up in the zones: the first row of that name and type;
 * else NODATA when some zone has the name, else NXDOMAIN. */
static void zone_lookup(const struct rr *const *zones, const char *name, enum dns_type type,
                        struct answer *a)
{
    memset(a, 0, sizeof *a);
    bool name_seen = false;
    for (size_t z = 0; zones[z]; z++) {
        for (const struct rr *r = zones[z]; r->name; r++) {
            if (!name_eq(r->name, name))
                continue;
            name_seen = true;
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
                    if (strcmp(a->hosts[i], ".") == 0)
                        a->hosts[i][0] = 0;
                    a->mx[i].preference = (uint16_t)pref;
                    a->mx[i].host = a->hosts[i];
                }
            }
            switch (type) {
            case DNS_A:
            case DNS_AAAA:
                a->r.addrs = a->strs;
                a->r.n_addrs = n;
                break;
            case DNS_MX:
                a->r.mx = a->mx;
                a->r.n_mx = n;
                break;
            case DNS_TXT:
                a->r.txt = a->strs;
                a->r.txt_len = a->lens;
                a->r.n_txt = n;
                break;
            case DNS_PTR:
                a->r.ptr = a->strs;
                a->r.n_ptr = n;
                break;
            }
            a->r.ttl = 300;
            return;
        }
    }
    a->r.status = name_seen ? DNS_NODATA : DNS_NXDOMAIN;
}

struct run {
    enum spf_result result;
    char explanation[SPF_MAX_EXPLANATION + 1];
    bool has_explanation;
    char detail[256];
    char domain[256];
    unsigned queries;
    char log[8192];  /* "TYPE name\n" per lookup */
};

static void run_spf(const struct rr *const *zones, const char *ip, const char *sender,
                    const char *helo, bool helo_identity, struct run *out)
{
    memset(out, 0, sizeof *out);
    struct spf *s = NULL;
    assert_int_equal(spf_begin(ip, sender, helo, helo_identity, &s), 0);
    spf_set_receiver(s, "mx.example.net", 1700000000);
    const char *name;
    enum dns_type type;
    size_t logn = 0;
    while ((name = spf_want(s, &type))) {
        out->queries++;
        assert_true(out->queries < MAX_QUERIES_SANITY);
        logn += (size_t)snprintf(out->log + logn, sizeof out->log - logn, "%s %s\n",
                                 dns_type_name(type), name);
        if (logn >= sizeof out->log)
            logn = sizeof out->log - 1;
        struct answer a;
        zone_lookup(zones, name, type, &a);
        spf_answer(s, &a.r);
    }
    const char *expl = NULL;
    out->result = spf_result(s, &expl);
    if (expl) {
        out->has_explanation = true;
        snprintf(out->explanation, sizeof out->explanation, "%s", expl);
    }
    snprintf(out->detail, sizeof out->detail, "%s", spf_detail(s));
    snprintf(out->domain, sizeof out->domain, "%s", spf_domain(s));
    spf_free(&s);
    assert_null(s);
}

#define END { NULL, 0, 0, { NULL } }
#define ZONE(...) ((const struct rr[]){ __VA_ARGS__, END })
#define TXT(n, ...) { n, DNS_TXT, DNS_OK, { __VA_ARGS__ } }
#define A(n, ...) { n, DNS_A, DNS_OK, { __VA_ARGS__ } }
#define AAAA(n, ...) { n, DNS_AAAA, DNS_OK, { __VA_ARGS__ } }
#define MX(n, ...) { n, DNS_MX, DNS_OK, { __VA_ARGS__ } }
#define PTR(n, ...) { n, DNS_PTR, DNS_OK, { __VA_ARGS__ } }
#define ERR(n, t, st) { n, t, st, { NULL } }
#define REC(r) ZONE(TXT("example.com", r))

/* -------------------------------------------------- evaluation table */

struct ecase {
    const char *what;
    const struct rr *zone;   /* searched before the appendix zone */
    const char *ip;
    const char *sender;      /* NULL: "x@example.com" */
    enum spf_result want;
    const char *explanation; /* expected exp= text, NULL: none */
};

#define S_ "x@example.com"

static const struct rr *const z_include_pass =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1 +all"));
static const struct rr *const z_include_fail =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1 -all"));
static const struct rr *const z_include_softfail =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1 ~all"));
static const struct rr *const z_include_neutral =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1 ?all"));
static const struct rr *const z_include_default =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1"));
static const struct rr *const z_include_tempfail =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         ERR("inc.example.net", DNS_TXT, DNS_TEMPFAIL));
static const struct rr *const z_include_timeout =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         ERR("inc.example.net", DNS_TXT, DNS_TIMEOUT));
static const struct rr *const z_include_permerror =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "v=spf1 foo"));
static const struct rr *const z_include_none =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"));
static const struct rr *const z_include_nospf =
    ZONE(TXT("example.com", "v=spf1 -include:inc.example.net ?all"),
         TXT("inc.example.net", "some other text"));

static const struct rr *const z_multi_domain =
    ZONE(TXT("example.com", "v=spf1 include:example.org include:example.net -all"),
         TXT("example.org", "v=spf1 mx -all"), TXT("example.net", "v=spf1 mx -all"));

static const struct rr *const z_dnsbl = ZONE(
    TXT("example.com",
        "v=spf1 mx include:mobile-users._spf.%{d} include:remote-users._spf.%{d} -all"),
    TXT("mobile-users._spf.example.com", "v=spf1 exists:%{l1r+}.%{d}"),
    TXT("remote-users._spf.example.com", "v=spf1 exists:%{ir}.%{l1r+}.%{d}"),
    A("mary.mobile-users._spf.example.com", "127.0.0.2"),
    A("fred.mobile-users._spf.example.com", "127.0.0.2"),
    A("15.15.168.192.joel.remote-users._spf.example.com", "127.0.0.2"),
    A("16.15.168.192.joel.remote-users._spf.example.com", "127.0.0.2"));

static const struct rr *const z_requirements =
    ZONE(TXT("example.com", "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all"),
         TXT("ip4._spf.example.com", "v=spf1 -ip4:192.0.2.0/24 +all"),
         TXT("ptr._spf.example.com", "v=spf1 -ptr:example.com +all"));

static const struct rr *const z_redirect =
    ZONE(TXT("example.com", "v=spf1 redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all"));
static const struct rr *const z_redirect_all =
    ZONE(TXT("example.com", "v=spf1 -all redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all"));
static const struct rr *const z_redirect_after =
    ZONE(TXT("example.com", "v=spf1 ip4:198.51.100.1 redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all"));
static const struct rr *const z_redirect_chain =
    ZONE(TXT("example.com", "v=spf1 redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 redirect=_spf2.example.net"),
         TXT("_spf2.example.net", "v=spf1 ~all"));
static const struct rr *const z_redirect_domain =
    ZONE(TXT("example.com", "v=spf1 redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 a -all"), A("_spf.example.net", "192.0.2.200"));
static const struct rr *const z_redirect_nospf =
    ZONE(TXT("example.com", "v=spf1 redirect=_spf.example.net"),
         TXT("_spf.example.net", "hello"));

static const struct rr *const z_exp =
    ZONE(TXT("example.com", "v=spf1 -all exp=explain._spf.%{d}"),
         TXT("explain._spf.example.com", "%{i} is not one of %{d}'s designated mail servers."));
static const struct rr *const z_exp_macros = ZONE(
    TXT("example.com", "v=spf1 -all exp=why.example.com"),
    TXT("why.example.com", "See http://%{d}/why.html?s=%{S}&i=%{C} (%{r}, %{t}, %{h}, %{v}%_%%)"));
static const struct rr *const z_exp_softfail =
    ZONE(TXT("example.com", "v=spf1 ~all exp=why.example.com"), TXT("why.example.com", "no"));
static const struct rr *const z_exp_nxdomain =
    ZONE(TXT("example.com", "v=spf1 -all exp=why.example.com"));
static const struct rr *const z_exp_two =
    ZONE(TXT("example.com", "v=spf1 -all exp=why.example.com"),
         TXT("why.example.com", "one", "two"));
static const struct rr *const z_exp_bad =
    ZONE(TXT("example.com", "v=spf1 -all exp=why.example.com"),
         TXT("why.example.com", "bad %{x} macro"));
static const struct rr *const z_exp_tempfail =
    ZONE(TXT("example.com", "v=spf1 -all exp=why.example.com"),
         ERR("why.example.com", DNS_TXT, DNS_TEMPFAIL));
static const struct rr *const z_exp_include =
    ZONE(TXT("example.com", "v=spf1 include:inc.example.net -all"),
         TXT("inc.example.net", "v=spf1 -all exp=why.example.com"),
         TXT("why.example.com", "from the include"));
static const struct rr *const z_exp_redirect =
    ZONE(TXT("example.com", "v=spf1 exp=a.example.net redirect=r.example.net"),
         TXT("r.example.net", "v=spf1 -all exp=b.example.net"), TXT("a.example.net", "A text"),
         TXT("b.example.net", "B text"));
static const struct rr *const z_exp_p =
    ZONE(TXT("example.com", "v=spf1 -all exp=why.example.net"),
         TXT("why.example.net", "%{p} is not allowed"));

#define A10                                                                                \
    A("a1.example.net", "198.51.100.1"), A("a2.example.net", "198.51.100.1"),              \
        A("a3.example.net", "198.51.100.1"), A("a4.example.net", "198.51.100.1"),          \
        A("a5.example.net", "198.51.100.1"), A("a6.example.net", "198.51.100.1"),          \
        A("a7.example.net", "198.51.100.1"), A("a8.example.net", "198.51.100.1"),          \
        A("a9.example.net", "198.51.100.1"), A("a10.example.net", "198.51.100.1"),         \
        A("a11.example.net", "198.51.100.1")
#define TEN_A                                                                              \
    "a:a1.example.net a:a2.example.net a:a3.example.net a:a4.example.net a:a5.example.net " \
    "a:a6.example.net a:a7.example.net a:a8.example.net a:a9.example.net a:a10.example.net"

static const struct rr *const z_ten = ZONE(TXT("example.com", "v=spf1 " TEN_A " -all"), A10);
static const struct rr *const z_eleven =
    ZONE(TXT("example.com", "v=spf1 " TEN_A " a:a11.example.net -all"), A10);
static const struct rr *const z_ten_redirect =
    ZONE(TXT("example.com", "v=spf1 " TEN_A " redirect=_spf.example.net"),
         TXT("_spf.example.net", "v=spf1 +all"), A10);
static const struct rr *const z_ten_ip4 =
    ZONE(TXT("example.com", "v=spf1 " TEN_A " ip4:192.0.2.99 -all"), A10);
static const struct rr *const z_ten_exp =
    ZONE(TXT("example.com", "v=spf1 " TEN_A " -all exp=why.example.com"),
         TXT("why.example.com", "no more"), A10);
static const struct rr *const z_nine_include = ZONE(
    TXT("example.com", "v=spf1 a:a1.example.net a:a2.example.net a:a3.example.net "
                       "a:a4.example.net a:a5.example.net a:a6.example.net a:a7.example.net "
                       "a:a8.example.net a:a9.example.net include:inc.example.net -all"),
    TXT("inc.example.net", "v=spf1 mx:example.org -all"), A10);
static const struct rr *const z_loop = REC("v=spf1 include:example.com -all");
static const struct rr *const z_redirect_loop = REC("v=spf1 redirect=example.com");

static const struct rr *const z_void2 =
    REC("v=spf1 a:n1.example.net a:n2.example.net -all");
static const struct rr *const z_void3 =
    REC("v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net -all");
static const struct rr *const z_void_nodata =
    ZONE(TXT("example.com", "v=spf1 a:t1.example.net mx:t1.example.net exists:n1.example.net -all"),
         TXT("t1.example.net", "not an address"));

static const struct rr *const z_mx11 =
    ZONE(TXT("example.com", "v=spf1 mx:many.example.net -all"),
         MX("many.example.net", "1 m1.example.net", "2 m2.example.net", "3 m3.example.net",
            "4 m4.example.net", "5 m5.example.net", "6 m6.example.net", "7 m7.example.net",
            "8 m8.example.net", "9 m9.example.net", "10 m10.example.net", "11 m11.example.net"),
         A("m11.example.net", "192.0.2.99"));
static const struct rr *const z_mx10 =
    ZONE(TXT("example.com", "v=spf1 mx:many.example.net -all"),
         MX("many.example.net", "1 m1.example.net", "2 m2.example.net", "3 m3.example.net",
            "4 m4.example.net", "5 m5.example.net", "6 m6.example.net", "7 m7.example.net",
            "8 m8.example.net", "9 m9.example.net", "10 m10.example.net"),
         A("m10.example.net", "192.0.2.99"));
static const struct rr *const z_null_mx =
    ZONE(TXT("example.com", "v=spf1 mx:nomail.example.net -all"),
         MX("nomail.example.net", "0 ."));

#define PTR12                                                                              \
    PTR("192.0.2.200", "n1.example.com", "n2.example.com", "n3.example.com",               \
        "n4.example.com", "n5.example.com", "n6.example.com", "n7.example.com",            \
        "n8.example.com", "n9.example.com", "n10.example.com", "n11.example.com",          \
        "n12.example.com")
static const struct rr *const z_ptr_11th =
    ZONE(TXT("example.com", "v=spf1 ptr -all"), PTR12, A("n11.example.com", "192.0.2.200"));
static const struct rr *const z_ptr_10th =
    ZONE(TXT("example.com", "v=spf1 ptr -all"), PTR12, A("n10.example.com", "192.0.2.200"));
static const struct rr *const z_ptr_tempfail =
    ZONE(TXT("example.com", "v=spf1 ptr -all"), ERR("192.0.2.65", DNS_PTR, DNS_TEMPFAIL));
static const struct rr *const z_ptr_a_tempfail =
    ZONE(TXT("example.com", "v=spf1 ptr -all"), ERR("amy.example.com", DNS_A, DNS_TEMPFAIL));
static const struct rr *const z_p_macro =
    ZONE(TXT("example.com", "v=spf1 exists:%{p}.allow.example.net -all"),
         A("amy.example.com.allow.example.net", "127.0.0.2"));
static const struct rr *const z_p_prefer =
    ZONE(TXT("example.com", "v=spf1 exists:%{p}.p.example.net -all"),
         PTR("192.0.2.201", "other.example.org", "good.example.com"),
         A("other.example.org", "192.0.2.201"), A("good.example.com", "192.0.2.201"),
         A("good.example.com.p.example.net", "127.0.0.2"));

static const struct rr *const z_v6_a =
    ZONE(TXT("example.com", "v=spf1 a//64 -all"), AAAA("example.com", "2001:db8::1"));
static const struct rr *const z_exists_ir =
    ZONE(TXT("example.com", "v=spf1 exists:%{ir}.list.example.com -all"),
         A("10.2.0.192.list.example.com", "127.0.0.2"));
static const struct rr *const z_exists_v6 =
    ZONE(TXT("example.com", "v=spf1 exists:%{v}.ok.example.com -all"),
         A("ip6.ok.example.com", "127.0.0.1"));
static const struct rr *const z_null_sender =
    ZONE(TXT("example.com", "v=spf1 exists:%{l}.%{o}.ok.example.net -all"),
         A("postmaster.example.com.ok.example.net", "127.0.0.2"));
static const struct rr *const z_idn = ZONE(TXT("xn--bcher-kva.example", "v=spf1 +all"));

static const struct ecase ecases[] = {
    /* the appendix examples */
    { "+all", REC("v=spf1 +all"), "192.0.2.99", S_, SPF_PASS, NULL },
    { "a 1", REC("v=spf1 a -all"), "192.0.2.10", S_, SPF_PASS, NULL },
    { "a 2", REC("v=spf1 a -all"), "192.0.2.11", S_, SPF_PASS, NULL },
    { "a 3", REC("v=spf1 a -all"), "192.0.2.65", S_, SPF_FAIL, NULL },
    { "a:example.org", REC("v=spf1 a:example.org -all"), "192.0.2.10", S_, SPF_FAIL, NULL },
    { "mx 1", REC("v=spf1 mx -all"), "192.0.2.129", S_, SPF_PASS, NULL },
    { "mx 2", REC("v=spf1 mx -all"), "192.0.2.130", S_, SPF_PASS, NULL },
    { "mx 3", REC("v=spf1 mx -all"), "192.0.2.10", S_, SPF_FAIL, NULL },
    { "mx:example.org 1", REC("v=spf1 mx:example.org -all"), "192.0.2.140", S_, SPF_PASS, NULL },
    { "mx:example.org 2", REC("v=spf1 mx:example.org -all"), "192.0.2.129", S_, SPF_FAIL, NULL },
    { "mx mx:example.org 1", REC("v=spf1 mx mx:example.org -all"), "192.0.2.130", S_, SPF_PASS,
      NULL },
    { "mx mx:example.org 2", REC("v=spf1 mx mx:example.org -all"), "192.0.2.140", S_, SPF_PASS,
      NULL },
    { "mx/30 1", REC("v=spf1 mx/30 mx:example.org/30 -all"), "192.0.2.131", S_, SPF_PASS, NULL },
    { "mx/30 2", REC("v=spf1 mx/30 mx:example.org/30 -all"), "192.0.2.143", S_, SPF_PASS, NULL },
    { "mx/30 3", REC("v=spf1 mx/30 mx:example.org/30 -all"), "192.0.2.132", S_, SPF_FAIL, NULL },
    { "ptr valid", REC("v=spf1 ptr -all"), "192.0.2.65", S_, SPF_PASS, NULL },
    { "ptr elsewhere", REC("v=spf1 ptr -all"), "192.0.2.140", S_, SPF_FAIL, NULL },
    { "ptr not validated", REC("v=spf1 ptr -all"), "10.0.0.4", S_, SPF_FAIL, NULL },
    { "ip4/28 1", REC("v=spf1 ip4:192.0.2.128/28 -all"), "192.0.2.65", S_, SPF_FAIL, NULL },
    { "ip4/28 2", REC("v=spf1 ip4:192.0.2.128/28 -all"), "192.0.2.129", S_, SPF_PASS, NULL },
    { "multiple domains 1", z_multi_domain, "192.0.2.140", S_, SPF_PASS, NULL },
    { "multiple domains 2", z_multi_domain, "192.0.2.150", S_, SPF_PASS, NULL },
    { "multiple domains 3", z_multi_domain, "192.0.2.129", S_, SPF_FAIL, NULL },
    { "dnsbl mary", z_dnsbl, "192.0.2.99", "mary@example.com", SPF_PASS, NULL },
    { "dnsbl fred+bulk", z_dnsbl, "192.0.2.99", "fred+bulk@example.com", SPF_PASS, NULL },
    { "dnsbl joel 1", z_dnsbl, "192.168.15.15", "joel@example.com", SPF_PASS, NULL },
    { "dnsbl joel 2", z_dnsbl, "192.168.15.17", "joel@example.com", SPF_FAIL, NULL },
    { "requirements both", z_requirements, "192.0.2.65", S_, SPF_PASS, NULL },
    { "requirements no ptr", z_requirements, "192.0.2.140", S_, SPF_FAIL, NULL },
    { "requirements no ip4", z_requirements, "10.0.0.4", S_, SPF_FAIL, NULL },

    /* qualifiers and the default (§4.6.2, §4.7) */
    { "-all", REC("v=spf1 -all"), "192.0.2.99", S_, SPF_FAIL, NULL },
    { "~all", REC("v=spf1 ~all"), "192.0.2.99", S_, SPF_SOFTFAIL, NULL },
    { "?all", REC("v=spf1 ?all"), "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "all", REC("v=spf1 all"), "192.0.2.99", S_, SPF_PASS, NULL },
    { "no terms", REC("v=spf1"), "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "trailing space", REC("v=spf1 "), "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "no match", REC("v=spf1 ip4:192.0.2.1"), "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "spaces", REC("v=spf1   ip4:192.0.2.10   -all"), "192.0.2.10", S_, SPF_PASS, NULL },
    { "case", REC("V=SPF1 IP4:192.0.2.10 -ALL"), "192.0.2.10", S_, SPF_PASS, NULL },
    { "~ qualifier", REC("v=spf1 ~ip4:192.0.2.10 -all"), "192.0.2.10", S_, SPF_SOFTFAIL, NULL },
    { "? qualifier", REC("v=spf1 ?a -all"), "192.0.2.10", S_, SPF_NEUTRAL, NULL },
    { "- qualifier", REC("v=spf1 -mx +all"), "192.0.2.129", S_, SPF_FAIL, NULL },
    { "first match wins", REC("v=spf1 -ip4:192.0.2.10 +all"), "192.0.2.10", S_, SPF_FAIL,
      NULL },

    /* ip4, ip6, a, exists (§5.3, §5.6, §5.7) */
    { "ip4/32 default", REC("v=spf1 ip4:192.0.2.10 -all"), "192.0.2.11", S_, SPF_FAIL, NULL },
    { "ip4/24", REC("v=spf1 ip4:192.0.2.0/24 -all"), "192.0.2.77", S_, SPF_PASS, NULL },
    { "ip4/0", REC("v=spf1 ip4:0.0.0.0/0 -all"), "203.0.113.9", S_, SPF_PASS, NULL },
    { "ip4 vs IPv6 client", REC("v=spf1 ip4:0.0.0.0/0 -all"), "2001:db8::cb01", S_, SPF_FAIL,
      NULL },
    { "ip6/32", REC("v=spf1 ip6:2001:db8::/32 -all"), "2001:db8::cb01", S_, SPF_PASS, NULL },
    { "ip6/128", REC("v=spf1 ip6:2001:db8::cb00/128 -all"), "2001:db8::cb01", S_, SPF_FAIL,
      NULL },
    { "ip6 default /128", REC("v=spf1 ip6:2001:db8::cb01 -all"), "2001:db8::cb01", S_,
      SPF_PASS, NULL },
    { "ip6 vs IPv4 client", REC("v=spf1 ip6:::/0 -all"), "192.0.2.10", S_, SPF_FAIL, NULL },
    { "IPv4-mapped client", REC("v=spf1 a -all"), "::ffff:192.0.2.10", S_, SPF_PASS, NULL },
    { "IPv4-mapped ip4", REC("v=spf1 ip4:192.0.2.10 -all"), "::ffff:192.0.2.10", S_, SPF_PASS,
      NULL },
    { "a/24", REC("v=spf1 a/24 -all"), "192.0.2.99", S_, SPF_PASS, NULL },
    { "a:example.com.", REC("v=spf1 a:example.com. -all"), "192.0.2.10", S_, SPF_PASS, NULL },
    { "a//64 same /64", z_v6_a, "2001:db8::ffff", S_, SPF_PASS, NULL },
    { "a//64 other /64", z_v6_a, "2001:db8:1::1", S_, SPF_FAIL, NULL },
    { "exists %{ir}", z_exists_ir, "192.0.2.10", S_, SPF_PASS, NULL },
    { "exists %{ir} none", z_exists_ir, "192.0.2.11", S_, SPF_FAIL, NULL },
    { "exists asks A for IPv6", z_exists_v6, "2001:db8::cb01", S_, SPF_PASS, NULL },
    { "ptr:example.org", REC("v=spf1 ptr:example.org -all"), "192.0.2.140", S_, SPF_PASS, NULL },
    { "ptr first 10 names", z_ptr_10th, "192.0.2.200", S_, SPF_PASS, NULL },
    { "ptr 11th name ignored", z_ptr_11th, "192.0.2.200", S_, SPF_FAIL, NULL },
    { "ptr lookup error: no match", z_ptr_tempfail, "192.0.2.65", S_, SPF_FAIL, NULL },
    { "ptr address error: skipped", z_ptr_a_tempfail, "192.0.2.65", S_, SPF_FAIL, NULL },
    { "%{p} validated", z_p_macro, "192.0.2.65", S_, SPF_PASS, NULL },
    { "%{p} unknown", z_p_macro, "10.0.0.4", S_, SPF_FAIL, NULL },
    { "%{p} prefers the domain", z_p_prefer, "192.0.2.201", S_, SPF_PASS, NULL },
    { "mx null MX", z_null_mx, "192.0.2.99", S_, SPF_FAIL, NULL },

    /* include (§5.2 table) */
    { "include pass -> match", z_include_pass, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "include fail -> no match", z_include_fail, "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "include softfail -> no match", z_include_softfail, "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "include neutral -> no match", z_include_neutral, "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "include default neutral", z_include_default, "192.0.2.99", S_, SPF_NEUTRAL, NULL },
    { "include temperror", z_include_tempfail, "192.0.2.99", S_, SPF_TEMPERROR, NULL },
    { "include timeout", z_include_timeout, "192.0.2.99", S_, SPF_TEMPERROR, NULL },
    { "include permerror", z_include_permerror, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "include none (nxdomain)", z_include_none, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "include none (no spf)", z_include_nospf, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "include bad expansion", REC("v=spf1 include:%{l}.example.net -all"), "192.0.2.99",
      "a..b@example.com", SPF_PERMERROR, NULL },

    /* redirect (§6.1) */
    { "redirect pass", z_redirect, "192.0.2.10", S_, SPF_PASS, NULL },
    { "redirect fail", z_redirect, "198.51.100.1", S_, SPF_FAIL, NULL },
    { "redirect ignored after all", z_redirect_all, "192.0.2.10", S_, SPF_FAIL, NULL },
    { "mechanism before redirect", z_redirect_after, "198.51.100.1", S_, SPF_PASS, NULL },
    { "redirect chain", z_redirect_chain, "192.0.2.10", S_, SPF_SOFTFAIL, NULL },
    { "redirect sets <domain>", z_redirect_domain, "192.0.2.200", S_, SPF_PASS, NULL },
    { "redirect nxdomain", REC("v=spf1 redirect=nothing.example.net"), "192.0.2.10", S_,
      SPF_PERMERROR, NULL },
    { "redirect no spf", z_redirect_nospf, "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "redirect loop", z_redirect_loop, "192.0.2.10", S_, SPF_PERMERROR, NULL },

    /* exp (§6.2) */
    { "exp", z_exp, "192.0.2.99", S_, SPF_FAIL,
      "192.0.2.99 is not one of example.com's designated mail servers." },
    { "exp macros", z_exp_macros, "192.0.2.99", S_, SPF_FAIL,
      "See http://example.com/why.html?s=x%40example.com&i=192.0.2.99 (mx.example.net, "
      "1700000000, mail.example.com, in-addr %)" },
    { "exp %{c} IPv6", ZONE(TXT("example.com", "v=spf1 -all exp=why.example.com"),
                            TXT("why.example.com", "%{c} %{i}")),
      "2001:db8::cb01", S_, SPF_FAIL,
      "2001:db8::cb01 2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1" },
    { "exp not for softfail", z_exp_softfail, "192.0.2.99", S_, SPF_SOFTFAIL, NULL },
    { "exp nxdomain", z_exp_nxdomain, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "exp two records", z_exp_two, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "exp bad macro", z_exp_bad, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "exp tempfail", z_exp_tempfail, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "exp of an include unused", z_exp_include, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "exp of the redirect target", z_exp_redirect, "192.0.2.99", S_, SPF_FAIL, "B text" },
    { "exp with %{p}", z_exp_p, "192.0.2.65", S_, SPF_FAIL, "amy.example.com is not allowed" },

    /* limits (§4.6.4) */
    { "10 lookups", z_ten, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "11 lookups", z_eleven, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "redirect is the 11th", z_ten_redirect, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "ip4 does not count", z_ten_ip4, "192.0.2.99", S_, SPF_PASS, NULL },
    { "exp does not count", z_ten_exp, "192.0.2.99", S_, SPF_FAIL, "no more" },
    { "include's terms count", z_nine_include, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "include loop", z_loop, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "2 void lookups", z_void2, "192.0.2.99", S_, SPF_FAIL, NULL },
    { "3 void lookups", z_void3, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "NODATA is void", z_void_nodata, "192.0.2.99", S_, SPF_PERMERROR, NULL },
    { "10 MX names", z_mx10, "192.0.2.99", S_, SPF_PASS, NULL },
    { "11 MX names", z_mx11, "192.0.2.99", S_, SPF_PERMERROR, NULL },

    /* DNS errors (§2.6.6, §5) */
    { "record tempfail", ZONE(ERR("example.com", DNS_TXT, DNS_TEMPFAIL)), "192.0.2.10", S_,
      SPF_TEMPERROR, NULL },
    { "record timeout", ZONE(ERR("example.com", DNS_TXT, DNS_TIMEOUT)), "192.0.2.10", S_,
      SPF_TEMPERROR, NULL },
    { "record cancelled", ZONE(ERR("example.com", DNS_TXT, DNS_CANCELLED)), "192.0.2.10", S_,
      SPF_TEMPERROR, NULL },
    { "a timeout", ZONE(TXT("example.com", "v=spf1 a:err.example.net -all"),
                        ERR("err.example.net", DNS_A, DNS_TIMEOUT)),
      "192.0.2.10", S_, SPF_TEMPERROR, NULL },
    { "mx tempfail", ZONE(TXT("example.com", "v=spf1 mx:err.example.net -all"),
                          ERR("err.example.net", DNS_MX, DNS_TEMPFAIL)),
      "192.0.2.10", S_, SPF_TEMPERROR, NULL },
    { "mx host tempfail", ZONE(TXT("example.com", "v=spf1 mx:m.example.net -all"),
                               MX("m.example.net", "10 err.example.net"),
                               ERR("err.example.net", DNS_A, DNS_TEMPFAIL)),
      "192.0.2.10", S_, SPF_TEMPERROR, NULL },
    { "exists tempfail", ZONE(TXT("example.com", "v=spf1 exists:err.example.net -all"),
                              ERR("err.example.net", DNS_A, DNS_TEMPFAIL)),
      "192.0.2.10", S_, SPF_TEMPERROR, NULL },
    { "error after a match", ZONE(TXT("example.com", "v=spf1 ip4:192.0.2.10 a:e.example.net -all"),
                                  ERR("e.example.net", DNS_A, DNS_TEMPFAIL)),
      "192.0.2.10", S_, SPF_PASS, NULL },

    /* record selection (§4.5) */
    { "two records", ZONE(TXT("example.com", "v=spf1 +all", "v=spf1 -all")), "192.0.2.10", S_,
      SPF_PERMERROR, NULL },
    { "one of several TXT",
      ZONE(TXT("example.com", "google-site-verification=abc", "v=spf10 +all", "v=spf1 -all")),
      "192.0.2.10", S_, SPF_FAIL, NULL },
    { "v=spf1x is not SPF", REC("v=spf1x +all"), "192.0.2.10", S_, SPF_NONE, NULL },
    { "no TXT (NODATA)", NULL, "192.0.2.10", "x@amy.example.com", SPF_NONE, NULL },
    { "NXDOMAIN", NULL, "192.0.2.10", "x@nowhere.example.com", SPF_NONE, NULL },
    { "TXT without SPF", REC("hello world"), "192.0.2.10", S_, SPF_NONE, NULL },

    /* syntax (§4.6, Appendix A): the whole record is permerror */
    { "unknown mechanism", REC("v=spf1 foo"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "error after a match", REC("v=spf1 +all foo"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "a: empty", REC("v=spf1 a: -all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "include alone", REC("v=spf1 include -all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "include: empty", REC("v=spf1 include: -all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip4/33", REC("v=spf1 ip4:192.0.2.1/33"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip4 leading zero", REC("v=spf1 ip4:192.0.02.1"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip4 three parts", REC("v=spf1 ip4:192.0.2"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip4 256", REC("v=spf1 ip4:192.0.2.256"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip4 empty cidr", REC("v=spf1 ip4:192.0.2.10/"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip6/129", REC("v=spf1 ip6:2001:db8::/129"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ip6 of an IPv4", REC("v=spf1 ip6:192.0.2.1"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "cidr leading zero", REC("v=spf1 a/024"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "ptr with cidr", REC("v=spf1 ptr/24"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "numeric top label", REC("v=spf1 a:foo.example.123"), "192.0.2.10", S_, SPF_PERMERROR,
      NULL },
    { "single label", REC("v=spf1 a:museum"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "bad macro letter", REC("v=spf1 exists:%{x}.example.com"), "192.0.2.10", S_,
      SPF_PERMERROR, NULL },
    { "zero digits", REC("v=spf1 exists:%{d0}.example.com"), "192.0.2.10", S_, SPF_PERMERROR,
      NULL },
    { "c outside exp", REC("v=spf1 exists:%{c}.example.com"), "192.0.2.10", S_, SPF_PERMERROR,
      NULL },
    { "t outside exp", REC("v=spf1 exists:%{t}.example.com"), "192.0.2.10", S_, SPF_PERMERROR,
      NULL },
    { "unclosed macro", REC("v=spf1 exists:%{d"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "bare percent", REC("v=spf1 a:ex%ample.com"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "two redirects", REC("v=spf1 redirect=a.example.com redirect=b.example.com"),
      "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "two exps", REC("v=spf1 exp=a.example.com exp=b.example.com -all"), "192.0.2.10", S_,
      SPF_PERMERROR, NULL },
    { "empty redirect", REC("v=spf1 redirect="), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "bad unknown modifier", REC("v=spf1 foo=%{z} -all"), "192.0.2.10", S_, SPF_PERMERROR,
      NULL },
    { "double qualifier", REC("v=spf1 --all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "all with argument", REC("v=spf1 all:foo"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "tab separator", REC("v=spf1 a\t-all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },
    { "=all", REC("v=spf1 =all"), "192.0.2.10", S_, SPF_PERMERROR, NULL },

    /* what is not an error */
    { "unknown modifier ignored", REC("v=spf1 foo=bar -all"), "192.0.2.10", S_, SPF_FAIL, NULL },
    { "odd unknown modifier", REC("v=spf1 moo.cow-far_out=man:dog/cat ip4:192.0.2.10 -all"),
      "192.0.2.10", S_, SPF_PASS, NULL },
    { "domain-spec ends in a macro", REC("v=spf1 a:%{d} -all"), "192.0.2.10", S_, SPF_PASS,
      NULL },
    { "hyphen top label", REC("v=spf1 a:foo.123-456 -all"), "192.0.2.10", S_, SPF_FAIL, NULL },

    /* identities (§2.3, §2.4, §4.3) */
    { "null sender: postmaster@helo", z_null_sender, "192.0.2.10", "x@example.com", SPF_PASS,
      NULL },
    { "IDN domain", z_idn, "192.0.2.10", "x@b\xc3\xbc" "cher.example", SPF_PASS, NULL },
    { "single-label domain", NULL, "192.0.2.10", "x@example", SPF_NONE, NULL },
    { "numeric domain", NULL, "192.0.2.10", "x@192.0.2.1", SPF_NONE, NULL },
    { "address literal", NULL, "192.0.2.10", "x@[192.0.2.1]", SPF_NONE, NULL },
    { "empty label", NULL, "192.0.2.10", "x@foo..example.com", SPF_NONE, NULL },
    { "label of 64", NULL, "192.0.2.10",
      "x@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com",
      SPF_NONE, NULL },
};

static void test_evaluation_table(void **state)
{
    (void)state;
    unsigned failures = 0;
    for (size_t i = 0; i < sizeof ecases / sizeof ecases[0]; i++) {
        const struct ecase *c = &ecases[i];
        const struct rr *zones[3] = { c->zone ? c->zone : appendix_zone,
                                      c->zone ? appendix_zone : NULL, NULL };
        struct run r;
        const char *sender = c->sender;
        if (strcmp(c->what, "null sender: postmaster@helo") == 0)
            run_spf(zones, c->ip, "", "example.com", false, &r);
        else
            run_spf(zones, c->ip, sender, "mail.example.com", false, &r);
        bool ok = r.result == c->want;
        if (c->explanation)
            ok = ok && r.has_explanation && strcmp(r.explanation, c->explanation) == 0;
        else
            ok = ok && !r.has_explanation;
        if (!ok) {
            failures++;
            print_error("case '%s': got %s (%s), want %s; explanation %s%s%s\n%s", c->what,
                        spf_result_name(r.result), r.detail, spf_result_name(c->want),
                        r.has_explanation ? "'" : "", r.has_explanation ? r.explanation : "none",
                        r.has_explanation ? "'" : "", r.log);
        }
        assert_true(r.detail[0] != 0);
        if (getenv("PETREL_SPF_VERBOSE"))
            printf("%-32s %-9s %s\n", c->what, spf_result_name(r.result), r.detail);
    }
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------- macros (§7.4) */

static const struct spf_macro_vars v4 = {
    .sender = "strong-bad@email.example.com",
    .domain = "email.example.com",
    .ip = "192.0.2.3",
    .helo = "mx.example.org",
    .ptr = "mx.example.org",
};

static void expect_expand(const char *spec, enum spf_macro_use use,
                          const struct spf_macro_vars *v, const char *want)
{
    char out[SPF_MAX_EXPANSION + 1];
    int n = spf_macro_expand(spec, strlen(spec), use, v, out, sizeof out);
    if (n < 0 || strcmp(out, want) != 0)
        fail_msg("%s: got %d '%s', want '%s'", spec, n, n >= 0 ? out : "", want);
    assert_int_equal((size_t)n, strlen(want));
}

static void test_macro_rfc_examples(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want;
    } t[] = {
        { "%{s}", "strong-bad@email.example.com" },
        { "%{o}", "email.example.com" },
        { "%{d}", "email.example.com" },
        { "%{d4}", "email.example.com" },
        { "%{d3}", "email.example.com" },
        { "%{d2}", "example.com" },
        { "%{d1}", "com" },
        { "%{dr}", "com.example.email" },
        { "%{d2r}", "example.email" },
        { "%{l}", "strong-bad" },
        { "%{l-}", "strong.bad" },
        { "%{lr}", "strong-bad" },
        { "%{lr-}", "bad.strong" },
        { "%{l1r-}", "strong" },
        { "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
        { "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
        { "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
        { "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
        { "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        expect_expand(t[i].spec, SPF_MACRO_DOMAIN, &v4, t[i].want);

    struct spf_macro_vars v6 = v4;
    v6.ip = "2001:db8::cb01";
    expect_expand("%{ir}.%{v}._spf.%{d2}", SPF_MACRO_DOMAIN, &v6,
                  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
                  "example.com");
}

static void test_macro_more(void **state)
{
    (void)state;
    /* uppercase: URL-escaped (RFC 3986 unreserved kept) */
    expect_expand("%{S}", SPF_MACRO_DOMAIN, &v4, "strong-bad%40email.example.com");
    expect_expand("%{L}", SPF_MACRO_DOMAIN, &v4, "strong-bad");
    struct spf_macro_vars odd = v4;
    odd.sender = "a b/c~d@example.com";
    expect_expand("%{L}", SPF_MACRO_EXP, &odd, "a%20b%2Fc~d");
    expect_expand("%{l/}", SPF_MACRO_EXP, &odd, "a b.c~d");
    /* escapes */
    expect_expand("a%%b%_c%-d", SPF_MACRO_EXP, &v4, "a%b c%20d");
    /* the rest of the letters */
    expect_expand("%{h}", SPF_MACRO_DOMAIN, &v4, "mx.example.org");
    expect_expand("%{p}", SPF_MACRO_DOMAIN, &v4, "mx.example.org");
    expect_expand("%{p2}", SPF_MACRO_DOMAIN, &v4, "example.org");
    struct spf_macro_vars nop = v4;
    nop.ptr = NULL;
    expect_expand("%{p}", SPF_MACRO_DOMAIN, &nop, "unknown");
    expect_expand("%{c}", SPF_MACRO_EXP, &v4, "192.0.2.3");
    expect_expand("%{r}", SPF_MACRO_EXP, &v4, "unknown");
    struct spf_macro_vars rt = v4;
    rt.receiver = "mx.example.net";
    rt.now = 1700000000;
    expect_expand("%{r} %{t} %{t2}", SPF_MACRO_EXP, &rt, "mx.example.net 1700000000 1700000000");
    struct spf_macro_vars v6 = v4;
    v6.ip = "2001:DB8::CB01";
    expect_expand("%{c}", SPF_MACRO_EXP, &v6, "2001:db8::cb01");
    expect_expand("%{v}", SPF_MACRO_DOMAIN, &v6, "ip6");
    struct spf_macro_vars mapped = v4;
    mapped.ip = "::ffff:192.0.2.3";
    expect_expand("%{i} %{v} %{c}", SPF_MACRO_EXP, &mapped, "192.0.2.3 in-addr 192.0.2.3");
    /* several delimiters, large digit counts, case of letters and r */
    struct spf_macro_vars dl = v4;
    dl.sender = "a.b-c+d@example.com";
    expect_expand("%{l-+.}", SPF_MACRO_DOMAIN, &dl, "a.b.c.d");
    expect_expand("%{lR-+.}", SPF_MACRO_DOMAIN, &dl, "d.c.b.a");
    expect_expand("%{d99999999999999}", SPF_MACRO_DOMAIN, &v4, "email.example.com");
    expect_expand("%{D2}", SPF_MACRO_DOMAIN, &v4, "example.com");
    /* empty parts stay */
    struct spf_macro_vars e = v4;
    e.sender = "a..b@example.com";
    expect_expand("%{l}", SPF_MACRO_EXP, &e, "a..b");
    expect_expand("%{lr}", SPF_MACRO_EXP, &e, "b..a");
    /* §7.3: longer than 253: labels dropped on the left; a trailing dot goes */
    char spec[600] = "", want[300] = "";
    for (int i = 0; i < 40; i++)
        strcat(spec, "abcdefg.");
    strcat(spec, "%{d}.");
    char full[700];
    snprintf(full, sizeof full, "%.*s%s", (int)strlen(spec) - 5, spec, "email.example.com");
    const char *p = full;
    while (strlen(p) > 253)
        p = strchr(p, '.') + 1;
    snprintf(want, sizeof want, "%s", p);
    expect_expand(spec, SPF_MACRO_DOMAIN, &v4, want);
    assert_true(strlen(want) <= 253);

    /* syntax errors */
    static const char *const bad[] = { "%{z}", "%{d0}", "%", "%x", "%{d", "%{}",
                                       "%{d2x}", "a b", "%{c}", "%{r}", "%{t}", "\x01" };
    char out[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = spf_macro_expand(bad[i], strlen(bad[i]), SPF_MACRO_DOMAIN, &v4, out, sizeof out);
        if (n != -1)
            fail_msg("'%s' expanded (%d)", bad[i], n);
    }
    assert_int_equal(spf_macro_expand("a b", 3, SPF_MACRO_EXP, &v4, out, sizeof out), 3);
    assert_int_equal(spf_macro_expand("%{s}", 4, SPF_MACRO_EXP, &v4, out, 8), -2);
    struct spf_macro_vars noip = v4;
    noip.ip = "not an address";
    assert_int_equal(spf_macro_expand("x", 1, SPF_MACRO_EXP, &noip, out, sizeof out), -3);
}

/* ------------------------------------------------- the record parser */

static void test_record_check(void **state)
{
    (void)state;
    static const char *const good[] = {
        "v=spf1",
        "v=spf1 ",
        "v=spf1 -all",
        "V=Spf1 A MX -ALL",
        "v=spf1 a mx ptr include:example.com exists:%{i}.bl.example.com ?all",
        "v=spf1 a:example.com/24//64 mx:%{d}//128 a//0 mx/0",
        ("v=spf1 ip4:0.0.0.0/0 ip4:255.255.255.255/32 ip6:::/0 ip6:2001:db8::1 "
         "ip6:::ffff:192.0.2.1/128"),
        "v=spf1 redirect=_spf.example.com",
        "v=spf1 exp=explain.%{d} -all",
        "v=spf1 foo=bar x-y_z.w=%{l}%% -all",
        "v=spf1 a:foo.123-456 a:_spf.example.com. a:%{d}.",
        "v=spf1 include:%{ir}.%{v}._spf.%{d2} include:%{d2}.trusted-domains.example.net",
    };
    static const char *const bad[] = {
        "v=spf1 foo",
        "v=spf1 a:",
        "v=spf1 a:museum",
        "v=spf1 a:foo.123",
        "v=spf1 a:foo.-bar",
        "v=spf1 a/33",
        "v=spf1 a//129",
        "v=spf1 a/01",
        "v=spf1 mx:example.com/",
        "v=spf1 ip4:1.2.3.4/",
        "v=spf1 ip4:1.2.3",
        "v=spf1 ip4:01.2.3.4",
        "v=spf1 ip4:example.com",
        "v=spf1 ip6:2001:db8::/200",
        "v=spf1 ip6:2001:db8::%1",
        "v=spf1 include",
        "v=spf1 include:",
        "v=spf1 exists",
        "v=spf1 all/24",
        "v=spf1 ptr:",
        "v=spf1 redirect=a.com redirect=b.com",
        "v=spf1 exp=a.com exp=b.com",
        "v=spf1 redirect=%{c}.example.com",
        "v=spf1 x=%",
        "v=spf1 +",
        "v=spf1 =",
        "v=spf1 a\x80",
    };
    char why[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (spf_record_check(good[i], strlen(good[i]), why, sizeof why) != 0)
            fail_msg("'%s' refused: %s", good[i], why);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (spf_record_check(bad[i], strlen(bad[i]), why, sizeof why) != -1)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(spf_record_check("v=spf10 -all", 12, why, sizeof why), 1);
    assert_int_equal(spf_record_check("spf1", 4, why, sizeof why), 1);
    assert_int_equal(spf_record_check("", 0, NULL, 0), 1);
    /* a NUL inside the record */
    assert_int_equal(spf_record_check("v=spf1 a\0b", 10, why, sizeof why), -1);
}

/* --------------------------------------------------------- identities */

static void test_identities(void **state)
{
    (void)state;
    const struct rr *zones[] = {
        ZONE(TXT("helo.example.com", "v=spf1 ip4:192.0.2.10 -all"),
             TXT("example.com", "v=spf1 exists:%{l}.lp.example.net -all"),
             A("postmaster.lp.example.net", "127.0.0.2")),
        NULL
    };
    struct run r;
    struct spf *s;
    const char *v;

    run_spf(zones, "192.0.2.10", "x@example.com", "helo.example.com", true, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.domain, "helo.example.com");
    assert_int_equal(spf_begin("192.0.2.10", "x@example.com", "helo.example.com", true, &s), 0);
    assert_string_equal(spf_identity(s, &v), "smtp.helo");
    assert_string_equal(v, "helo.example.com");
    spf_free(&s);

    /* null sender: postmaster@HELO (§2.4) */
    run_spf(zones, "192.0.2.10", "", "helo.example.com", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.domain, "helo.example.com");
    assert_int_equal(spf_begin("192.0.2.10", NULL, "helo.example.com", false, &s), 0);
    assert_string_equal(spf_identity(s, &v), "smtp.helo");
    spf_free(&s);
    assert_int_equal(spf_begin("192.0.2.10", "x@Example.COM.", "h.example", false, &s), 0);
    assert_string_equal(spf_identity(s, &v), "smtp.mailfrom");
    assert_string_equal(v, "x@Example.COM.");
    assert_string_equal(spf_domain(s), "Example.COM");
    spf_free(&s);

    /* no local part: postmaster (§4.3) */
    run_spf(zones, "192.0.2.10", "example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    run_spf(zones, "192.0.2.10", "@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    run_spf(zones, "192.0.2.10", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_FAIL);

    /* malformed HELO: none without a lookup */
    static const char *const bad_helo[] = { "[192.0.2.1]", "localhost", "192.0.2.1", "",
                                            "a..b.example", "-.example.com extra" };
    for (size_t i = 0; i < sizeof bad_helo / sizeof bad_helo[0]; i++) {
        run_spf(zones, "192.0.2.10", NULL, bad_helo[i], true, &r);
        assert_int_equal(r.result, SPF_NONE);
        assert_int_equal(r.queries, 0);
    }
    char longhelo[300];
    memset(longhelo, 'a', sizeof longhelo - 1);
    longhelo[sizeof longhelo - 1] = 0;
    longhelo[10] = '.';
    run_spf(zones, "192.0.2.10", NULL, longhelo, true, &r);
    assert_int_equal(r.result, SPF_NONE);
}

/* ----------------------------------------------------- the lookups asked */

static void test_lookup_sequence(void **state)
{
    (void)state;
    const struct rr *zones[] = { REC("v=spf1 mx -all"), appendix_zone, NULL };
    struct run r;
    run_spf(zones, "192.0.2.130", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.log, "TXT example.com\nMX example.com\nA mail-a.example.com\n"
                               "A mail-b.example.com\n");

    const struct rr *z6[] = { ZONE(TXT("example.com", "v=spf1 mx a -all"),
                                   AAAA("mail-a.example.com", "2001:db8::25")),
                              appendix_zone, NULL };
    run_spf(z6, "2001:db8::25", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.log, "TXT example.com\nMX example.com\nAAAA mail-a.example.com\n");

    /* an IPv4-mapped client asks A */
    const struct rr *zm[] = { REC("v=spf1 a -all"), appendix_zone, NULL };
    run_spf(zm, "::ffff:192.0.2.11", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.log, "TXT example.com\nA example.com\n");

    /* ptr: PTR asked with the client address, only names in the target validated */
    const struct rr *zp[] = { REC("v=spf1 ptr -all"), appendix_zone, NULL };
    run_spf(zp, "192.0.2.65", "x@example.com", "h.example.net", false, &r);
    assert_string_equal(r.log, "TXT example.com\nPTR 192.0.2.65\nA amy.example.com\n");

    /* the include loop stops at the limit */
    const struct rr *zl[] = { REC("v=spf1 include:example.com -all"), NULL };
    run_spf(zl, "192.0.2.65", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_int_equal(r.queries, 11);

    /* PTR asked once for several ptr terms and %{p} */
    const struct rr *zpp[] = { REC("v=spf1 ptr:a.example ptr:b.example exists:%{p}.x.example "
                                   "ptr -all"),
                               appendix_zone, NULL };
    run_spf(zpp, "192.0.2.65", "x@example.com", "h.example.net", false, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.log, "TXT example.com\nPTR 192.0.2.65\nA amy.example.com\n"
                               "A amy.example.com.x.example\n");
}

/* ------------------------------------------------------------- the API */

static void test_api(void **state)
{
    (void)state;
    struct spf *s = (struct spf *)1;
    assert_int_equal(spf_begin("not-an-ip", "x@example.com", "h.example", false, &s), -1);
    assert_null(s);
    assert_int_equal(spf_begin("192.0.2.1%eth0", "x@example.com", "h.example", false, &s), -1);
    char big[SPF_MAX_SENDER + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[1] = '@';
    assert_int_equal(spf_begin("192.0.2.1", big, "h.example", false, &s), -1);

    assert_int_equal(spf_begin("192.0.2.1", "x@example.com", "h.example", false, &s), 0);
    enum dns_type t;
    assert_string_equal(spf_want(s, &t), "example.com");
    assert_int_equal(t, DNS_TXT);
    /* not finished: temperror */
    const char *expl = "x";
    assert_int_equal(spf_result(s, &expl), SPF_TEMPERROR);
    assert_null(expl);
    struct dns_result nx = { .status = DNS_NXDOMAIN };
    spf_answer(s, &nx);
    assert_null(spf_want(s, &t));
    assert_int_equal(spf_result(s, NULL), SPF_NONE);
    spf_answer(s, &nx);  /* ignored */
    assert_int_equal(spf_result(s, NULL), SPF_NONE);
    spf_free(&s);
    assert_null(s);
    spf_free(&s);

    assert_string_equal(spf_result_name(SPF_NONE), "none");
    assert_string_equal(spf_result_name(SPF_NEUTRAL), "neutral");
    assert_string_equal(spf_result_name(SPF_PASS), "pass");
    assert_string_equal(spf_result_name(SPF_FAIL), "fail");
    assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
    assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
    assert_string_equal(spf_result_name(SPF_PERMERROR), "permerror");
}

/* ----------------------------------------------------- A-labels (RFC 3492) */

static void test_domain_ascii(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } t[] = {
        { "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
        { "m\xc3\xbc" "nchen.de.", "xn--mnchen-3ya.de" },
        { "\xd1\x80\xd1\x84", "xn--p1ai" },                       /* рф */
        { "\xe9\xa6\x99\xe6\xb8\xaf", "xn--j6w193g" },            /* 香港 */
        { "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
          "xn--r8jz45g.xn--zckzah" },                             /* 例え.テスト */
        { "3\xe5\xb9\xb4" "B\xe7\xb5\x84\xe9\x87\x91\xe5\x85\xab\xe5\x85\x88\xe7\x94\x9f",
          "xn--3b-ww4c5e180e575a65lsy2b" },                       /* RFC 3492 7.1 (L) */
        { "\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8\xd8\xaa\xd9\x83\xd9\x84\xd9\x85"
          "\xd9\x88\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\x9f",
          "xn--egbpdaj6bu4bxfgehfvwxn" },                         /* RFC 3492 7.1 (A) */
        { "Example.COM", "Example.COM" },
        { "example.com.", "example.com" },
    };
    char out[256];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int n = smtp_domain_ascii(t[i].in, out, sizeof out);
        if (n < 0 || strcmp(out, t[i].want) != 0)
            fail_msg("%s: got %d '%s', want '%s'", t[i].want, n, n >= 0 ? out : "", t[i].want);
    }
    assert_int_equal(smtp_domain_ascii("\xff.com", out, sizeof out), -1);
    assert_int_equal(smtp_domain_ascii("\xc3.com", out, sizeof out), -1);
    assert_int_equal(smtp_domain_ascii("\xed\xa0\x80.com", out, sizeof out), -1);  /* surrogate */
    assert_int_equal(smtp_domain_ascii("example.com", out, 5), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_macro_rfc_examples),
        cmocka_unit_test(test_macro_more),
        cmocka_unit_test(test_record_check),
        cmocka_unit_test(test_evaluation_table),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_lookup_sequence),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_domain_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
