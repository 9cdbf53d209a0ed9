/*
 * DKIM (smtp/dkim.c, smtp/dkim-canon.c) against the published vectors:
 * RFC 8463 Appendix A (Ed25519 and RSA signatures of one message, verified
 * and reproduced byte for byte), RFC 6376 Appendix A/C (whose printed
 * signature is known not to verify: its body hash does, and the same tags
 * signed again with the Appendix C key do), the canonicalization examples of
 * RFC 6376 §3.4.5; then every rule of §3.5, §3.6.1 and §6.1 that decides a
 * result, and round trips with generated keys.
 *
 * Signatures with unusual tags (simple canonicalization, l=, x=, a bad h=)
 * come from custom_sign below, written apart from dkim.c on purpose: its
 * own header selection and b= handling, the public canonicalization and
 * OpenSSL directly.
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
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "smtp/smtp.h"

/* RFC 8463 Appendix A.2 */
#define REC_BRISBANE "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define REC_TEST                                                                           \
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"                 \
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"                \
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"                \
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
/* RFC 6376 Appendix C */
#define REC_6376                                                                           \
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkM"          \
    "oGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/R"                     \
    "tdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToI"                     \
    "MmPSPDdQPNUYckcQ2QIDAQAB"
#define ED_PUB "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

#define T8463 1528637909
#define NOW 1700000000

/* ------------------------------------------------------------ helpers */

/* tests/data/dkim/name, from PETREL_SOURCE_DIR (ctest) or else beside this file. */
static char *read_data(const char *name, size_t *len)
{
    const char *root = getenv("PETREL_SOURCE_DIR");
    char path[1024];
    if (root) {
        snprintf(path, sizeof path, "%s/tests/data/dkim/%s", root, name);
    } else {
        const char *me = __FILE__, *cut = strstr(me, "tests/unit/test_dkim.c");
        snprintf(path, sizeof path, "%.*stests/data/dkim/%s", cut ? (int)(cut - me) : 0, me,
                 name);
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (is PETREL_SOURCE_DIR set?)", path);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static struct dkim_key *load_key(const char *file, const char *domain, const char *selector)
{
    size_t n;
    char *pem = read_data(file, &n);
    struct dkim_key *k = NULL;
    char err[200];
    if (dkim_key_load(pem, n, domain, selector, &k, err, sizeof err) != 0)
        fail_msg("%s: %s", file, err);
    free(pem);
    return k;
}

static EVP_PKEY *load_pkey(const char *file)
{
    size_t n;
    char *pem = read_data(file, &n);
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    free(pem);
    assert_non_null(pk);
    return pk;
}

static char *cat(const char *a, size_t an, const char *b, size_t bn)
{
    char *r = malloc(an + bn + 1);
    assert_non_null(r);
    memcpy(r, a, an);
    memcpy(r + an, b, bn);
    r[an + bn] = 0;
    return r;
}

/* s with the first occurrence of from replaced by to (malloc'd). */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        fail_msg("no \"%s\" in the message", from);
    size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
    char *r = malloc(strlen(s) - fl + tl + 1);
    assert_non_null(r);
    memcpy(r, s, pre);
    memcpy(r + pre, to, tl);
    strcpy(r + pre + tl, at + fl);
    return r;
}

/* s with every occurrence of from replaced by to (malloc'd). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)) != NULL; p += fl)
        n++;
    char *r = malloc(strlen(s) + n * tl + 1), *o = r;
    assert_non_null(r);
    for (const char *p = s;;) {
        const char *at = strstr(p, from);
        if (!at) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(at - p));
        o += at - p;
        memcpy(o, to, tl);
        o += tl;
        p = at + fl;
    }
    return r;
}

/* A key table for the lookups. */
struct keyrow {
    const char *name;
    enum dkim_dns dns;
    const char *recs[3];
    size_t n;
};

/* Begins verification of msg at now and answers each lookup from rows
 * (names not in rows get NXDOMAIN). */
static struct dkim_verify *verify_with(const char *msg, size_t len, int64_t now,
                                       const struct keyrow *rows, size_t n_rows)
{
    struct dkim_verify *v = NULL;
    assert_int_equal(dkim_verify_begin(msg, len, now, &v), 0);
    for (size_t i = 0; i < dkim_verify_count(v); i++) {
        const char *name = dkim_verify_key_name(v, i);
        if (!name)
            continue;
        const struct keyrow *row = NULL;
        for (size_t r = 0; r < n_rows; r++)
            if (strcmp(rows[r].name, name) == 0)
                row = &rows[r];
        if (row)
            dkim_verify_key(v, i, row->recs, NULL, row->n, row->dns);
        else
            dkim_verify_key(v, i, NULL, NULL, 0, DKIM_DNS_NXDOMAIN);
        assert_null(dkim_verify_key_name(v, i));
    }
    return v;
}

/* Verification of msg when every key name has the single record rec. */
static struct dkim_verify *verify_one(const char *msg, int64_t now, const char *rec)
{
    struct dkim_verify *v = NULL;
    assert_int_equal(dkim_verify_begin(msg, strlen(msg), now, &v), 0);
    for (size_t i = 0; i < dkim_verify_count(v); i++)
        if (dkim_verify_key_name(v, i))
            dkim_verify_key(v, i, &rec, NULL, 1, DKIM_DNS_OK);
    return v;
}

static void expect(const struct dkim_verify *v, size_t i, enum dkim_result want,
                   const char *reason)
{
    const struct dkim_sig_result *r = dkim_verify_result(v, i);
    assert_non_null(r);
    if (r->result != want || (reason && strcmp(r->reason, reason) != 0))
        fail_msg("signature %zu: got %s (%s), want %s (%s)", i, dkim_result_name(r->result),
                 r->reason, dkim_result_name(want), reason ? reason : "any reason");
}

/* The single-signature case: result and reason of signature 0 of msg. */
static void expect_one(const char *msg, int64_t now, const char *rec, enum dkim_result want,
                       const char *reason)
{
    struct dkim_verify *v = verify_one(msg, now, rec);
    assert_int_equal(dkim_verify_count(v), 1);
    expect(v, 0, want, reason);
    dkim_verify_free(&v);
}

/* dkim_sign, the field prepended: a malloc'd message. */
static char *sign_msg(const struct dkim_key *k, const char *msg, int64_t now,
                      const struct dkim_sign_opts *o)
{
    char *field;
    size_t flen;
    if (dkim_sign(k, msg, strlen(msg), now, o, &field, &flen) != 0)
        fail_msg("dkim_sign: %s", strerror(errno));
    assert_int_equal(strlen(field), flen);
    char *signed_msg = cat(field, flen, msg, strlen(msg));
    free(field);
    return signed_msg;
}

/* msg with every CRLF that folds a line removed (malloc'd). */
static char *unfold(const char *msg)
{
    char *out = malloc(strlen(msg) + 1);
    size_t n = 0;
    for (const char *p = msg; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = 0;
    return out;
}

/* The b= value of the first DKIM-Signature in msg, whitespace removed. */
static char *b_value(const char *msg)
{
    const char *p = strstr(msg, " b=");
    assert_non_null(p);
    p += 3;
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    for (; *p && *p != ';'; p++) {
        if (*p == '\r' && p[1] == '\n' && p[2] != ' ' && p[2] != '\t')
            break;  /* end of the field */
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            out[n++] = *p;
    }
    out[n] = 0;
    return out;
}

/* ---- canonicalization into a string */

struct cbuf {
    char *p;
    size_t n;
};

static void cbuf_sink(void *arg, const char *p, size_t n)
{
    struct cbuf *b = arg;
    b->p = realloc(b->p, b->n + n + 1);
    assert_non_null(b->p);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

static char *canon_h(enum dkim_canon c, const char *field, bool crlf)
{
    struct cbuf b = { 0 };
    dkim_canon_header(c, field, strlen(field), crlf, cbuf_sink, &b);
    return b.p ? b.p : strdup("");
}

static char *canon_b(enum dkim_canon c, const char *body, uint64_t *total)
{
    struct cbuf b = { 0 };
    uint64_t t = dkim_canon_body(c, body, strlen(body), cbuf_sink, &b);
    assert_int_equal(t, b.n);
    if (total)
        *total = t;
    return b.p ? b.p : strdup("");
}

static char *b64(const unsigned char *p, size_t n)
{
    char *o = malloc((n + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)o, p, (int)n);
    return o;
}

static void sha256(const char *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

/*
 * An independent signer: prepends "DKIM-Signature: " tags, where tags holds
 * "%BH" where the body hash goes and either ends in "b=" or holds "b=%B"
 * where the signature goes. h lists the names of tags' h=, hc/bc its c=, l
 * its l= (-1: whole body).
 */
static char *custom_sign(const char *msg, const char *tags, const char *const *h, size_t nh,
                         enum dkim_canon hc, enum dkim_canon bc, long long l, EVP_PKEY *pk)
{
    const char *sep = strstr(msg, "\r\n\r\n");
    assert_non_null(sep);
    size_t hdr_len = (size_t)(sep - msg) + 2;
    const char *body = sep + 4;

    /* Body hash. */
    char *cb = canon_b(bc, body, NULL);
    size_t cbn = strlen(cb);
    if (l >= 0 && (size_t)l < cbn)
        cbn = (size_t)l;
    unsigned char bh[32];
    sha256(cb, cbn, bh);
    free(cb);
    char *bh64 = b64(bh, 32);
    char *t = replace(tags, "%BH", bh64);
    free(bh64);
    char *at = strstr(t, "b=%B");
    const char *after = "";
    if (at) {
        at[2] = 0;
        after = at + 4;
    }
    char *sigf = cat("DKIM-Signature: ", 16, t, strlen(t));
    char *hashed = cat(sigf, strlen(sigf), after, strlen(after));

    /* Fields of the header (start offsets), with continuation lines. */
    size_t starts[64], ends[64], nf = 0;
    for (size_t p = 0; p < hdr_len;) {
        const char *e = strstr(msg + p, "\r\n");
        size_t next = (size_t)(e - msg) + 2;
        if (msg[p] == ' ' || msg[p] == '\t') {
            ends[nf - 1] = next;
        } else {
            starts[nf] = p;
            ends[nf++] = next;
        }
        p = next;
    }
    bool used[64] = { false };
    struct cbuf hb = { 0 };
    for (size_t i = 0; i < nh; i++) {
        for (size_t j = nf; j-- > 0;) {
            size_t nl = strlen(h[i]);
            if (used[j] || strncasecmp(msg + starts[j], h[i], nl) != 0 ||
                msg[starts[j] + nl] != ':')
                continue;
            used[j] = true;
            dkim_canon_header(hc, msg + starts[j], ends[j] - starts[j], true, cbuf_sink, &hb);
            break;
        }
    }
    dkim_canon_header(hc, hashed, strlen(hashed), false, cbuf_sink, &hb);
    free(hashed);
    unsigned char hh[32];
    sha256(hb.p, hb.n, hh);
    free(hb.p);

    unsigned char sig[1024];
    size_t sl = sizeof sig;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sl, hh, 32), 1);
        EVP_MD_CTX_free(md);
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_sign(ctx, sig, &sl, hh, 32), 1);
        EVP_PKEY_CTX_free(ctx);
    }
    char *s64 = b64(sig, sl);
    char *f1 = cat(sigf, strlen(sigf), s64, strlen(s64));
    char *f2 = cat(f1, strlen(f1), after, strlen(after));
    char *f3 = cat(f2, strlen(f2), "\r\n", 2);
    char *out = cat(f3, strlen(f3), msg, strlen(msg));
    free(t);
    free(sigf);
    free(s64);
    free(f1);
    free(f2);
    free(f3);
    return out;
}

static const char *const H_FTS[] = { "from", "to", "subject" };

/* An Ed25519 signature with the given tags (relaxed/relaxed, h=from:to:subject). */
static char *ed_sign(const char *msg, const char *tags, long long l)
{
    EVP_PKEY *pk = load_pkey("rfc8463-ed25519.pem");
    char *out = custom_sign(msg, tags, H_FTS, 3, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, l, pk);
    EVP_PKEY_free(pk);
    return out;
}

#define SIMPLE_MSG                                                                         \
    "From: Alice <alice@example.org>\r\n"                                                  \
    "To: Bob <bob@example.net>\r\n"                                                        \
    "Subject: lunch\r\n"                                                                   \
    "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"                                             \
    "Message-ID: <1@example.org>\r\n"                                                      \
    "\r\n"                                                                                 \
    "See you at noon.\r\n"

#define ED_TAGS(extra)                                                                     \
    "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=ed; " extra                \
    "h=from:to:subject; bh=%BH; b="

/* ------------------------------------------------------ canonicalization */

/* RFC 6376 §3.4.5, both canonicalizations of its example. */
static void test_canon_rfc_example(void **state)
{
    (void)state;
    const char *h1 = "A: X\r\n";
    const char *h2 = "B : Y\t\r\n\tZ  \r\n";
    const char *body = " C \r\nD \t E\r\n\r\n\r\n";
    char *s;
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, h1, true), "a:X\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, h2, true), "b:Y Z\r\n");
    free(s);
    assert_string_equal(s = canon_b(DKIM_CANON_RELAXED, body, NULL), " C\r\nD E\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_SIMPLE, h1, true), "A: X\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_SIMPLE, h2, true), "B : Y\t\r\n\tZ  \r\n");
    free(s);
    assert_string_equal(s = canon_b(DKIM_CANON_SIMPLE, body, NULL), " C \r\nD \t E\r\n");
    free(s);
}

static void test_canon_body_edges(void **state)
{
    (void)state;
    static const struct {
        const char *in, *simple, *relaxed;
    } cases[] = {
        { "", "\r\n", "" },                                 /* §3.4.3 / §3.4.4 */
        { "\r\n", "\r\n", "" },
        { "\r\n\r\n\r\n", "\r\n", "" },
        { "abc", "abc\r\n", "abc\r\n" },                    /* final CRLF added */
        { "abc\r\n\r\n", "abc\r\n", "abc\r\n" },
        { "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
        { " \r\n\t\r\n", " \r\n\t\r\n", "" },               /* blank, not empty, in simple */
        { "x  \t y \r\n", "x  \t y \r\n", "x y\r\n" },
        { "\t lead\r\n", "\t lead\r\n", " lead\r\n" },
        { "a\nb\n\n", "a\r\nb\r\n", "a\r\nb\r\n" },         /* bare LF is a line end */
        { "a\rb\r\n", "a\rb\r\n", "a\rb\r\n" },             /* bare CR is a byte */
        { "abc\r\n  ", "abc\r\n  \r\n", "abc\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = canon_b(DKIM_CANON_SIMPLE, cases[i].in, NULL);
        if (strcmp(s, cases[i].simple) != 0)
            fail_msg("simple case %zu", i);
        free(s);
        s = canon_b(DKIM_CANON_RELAXED, cases[i].in, NULL);
        if (strcmp(s, cases[i].relaxed) != 0)
            fail_msg("relaxed case %zu", i);
        free(s);
    }
    /* The well-known hashes of the two empty bodies. */
    unsigned char h[32];
    char *s = canon_b(DKIM_CANON_SIMPLE, "", NULL);
    sha256(s, strlen(s), h);
    free(s);
    assert_string_equal(s = b64(h, 32), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
    free(s);
    sha256("", 0, h);
    assert_string_equal(s = b64(h, 32), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    free(s);

    /* A large body goes out in pieces and comes back whole. */
    size_t big = 100000;
    char *in = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        in[i] = (i % 50 == 49) ? '\n' : (i % 7 == 0 ? ' ' : 'x');
    in[big] = 0;
    uint64_t total;
    char *out = canon_b(DKIM_CANON_SIMPLE, in, &total);
    assert_int_equal(total, big + big / 50);  /* each LF became CRLF */
    free(out);
    free(in);
}

static void test_canon_header_edges(void **state)
{
    (void)state;
    char *s;
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, "SUBJECT:\r\n", true), "subject:\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, "X-A \t: \t v  w \r\n", false),
                        "x-a:v w");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, "To: a,\r\n  b,\r\n\tc", true),
                        "to:a, b, c\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, "To: a,\n b\n", true), "to:a, b\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_SIMPLE, "To: a,\n b\n", true),
                        "To: a,\r\n b\r\n");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_SIMPLE, "To: a,\r\n b\r\n", false),
                        "To: a,\r\n b");
    free(s);
    assert_string_equal(s = canon_h(DKIM_CANON_RELAXED, "Subject: caf\xc3\xa9 \r\n", true),
                        "subject:caf\xc3\xa9\r\n");
    free(s);
}

/* ------------------------------------------------------------ vectors */

/* RFC 8463 Appendix A.3 verifies with the records of A.2. */
static void test_rfc8463_verify(void **state)
{
    (void)state;
    size_t n;
    char *msg = read_data("rfc8463-signed.eml", &n);
    struct keyrow rows[] = {
        { "brisbane._domainkey.football.example.com", DKIM_DNS_OK, { REC_BRISBANE }, 1 },
        { "test._domainkey.football.example.com", DKIM_DNS_OK, { REC_TEST }, 1 },
    };
    struct dkim_verify *v = NULL;
    assert_int_equal(dkim_verify_begin(msg, n, T8463 + 60, &v), 0);
    assert_int_equal(dkim_verify_count(v), 2);
    assert_string_equal(dkim_verify_key_name(v, 0), rows[0].name);
    assert_string_equal(dkim_verify_key_name(v, 1), rows[1].name);
    expect(v, 0, DKIM_TEMPERROR, "key not yet looked up");
    dkim_verify_free(&v);

    v = verify_with(msg, n, T8463 + 60, rows, 2);
    expect(v, 0, DKIM_PASS, "verified");
    expect(v, 1, DKIM_PASS, "verified");
    const struct dkim_sig_result *r = dkim_verify_result(v, 0);
    assert_string_equal(r->domain, "football.example.com");
    assert_string_equal(r->selector, "brisbane");
    assert_string_equal(r->algorithm, "ed25519-sha256");
    assert_string_equal(r->identity, "@football.example.com");
    assert_string_equal(r->b_prefix, "/gCrinpc");
    assert_int_equal(r->key_bits, 256);
    assert_false(r->testing);
    assert_false(r->partial_body);
    r = dkim_verify_result(v, 1);
    assert_string_equal(r->algorithm, "rsa-sha256");
    assert_string_equal(r->b_prefix, "F45dVWDf");
    assert_int_equal(r->key_bits, 1024);
    assert_null(dkim_verify_result(v, 2));
    dkim_verify_free(&v);
    free(msg);
}

/* Our signer with the RFC 8463 keys reproduces the published b= values. */
static void test_rfc8463_reproduce(void **state)
{
    (void)state;
    char *msg = read_data("rfc8463-unsigned.eml", NULL);
    char *published = read_data("rfc8463-signed.eml", NULL);
    const char *const h[] = { "from", "to", "subject", "date", "message-id",
                              "from", "subject", "date" };
    struct dkim_sign_opts o = { .headers = h, .n_headers = 8 };

    struct dkim_key *ed = load_key("rfc8463-ed25519.pem", "football.example.com", "brisbane");
    assert_int_equal(dkim_key_alg(ed), DKIM_ED25519_SHA256);
    assert_int_equal(dkim_key_bits(ed), 256);
    char *s = dkim_key_txt_record(ed);
    assert_string_equal(s, REC_BRISBANE);
    free(s);
    char *signed_ed = sign_msg(ed, msg, T8463, &o);
    char *got = b_value(signed_ed), *want = b_value(published);
    assert_string_equal(got, want);
    free(got);
    free(want);
    expect_one(signed_ed, T8463, REC_BRISBANE, DKIM_PASS, "verified");

    struct dkim_key *rsa = load_key("rfc8463-rsa.pem", "football.example.com", "test");
    assert_int_equal(dkim_key_alg(rsa), DKIM_RSA_SHA256);
    assert_int_equal(dkim_key_bits(rsa), 1024);
    s = dkim_key_txt_record(rsa);
    assert_string_equal(s, REC_TEST);
    free(s);
    char *signed_rsa = sign_msg(rsa, msg, T8463, &o);
    got = b_value(signed_rsa);
    want = b_value(strstr(published, "DKIM-Signature: v=1; a=rsa"));
    assert_string_equal(got, want);  /* PKCS#1 v1.5 is deterministic too */
    free(got);
    free(want);
    expect_one(signed_rsa, T8463, REC_TEST, DKIM_PASS, "verified");

    /* The field our signer writes has the published tags, in their order. */
    char *flat = unfold(signed_ed);
    assert_non_null(strstr(flat, "DKIM-Signature: v=1; a=ed25519-sha256; "
                                 "c=relaxed/relaxed; d=football.example.com; "
                                 "i=@football.example.com; q=dns/txt; s=brisbane; "
                                 "t=1528637909; h=from : to : subject : date : message-id : "
                                 "from : subject : date; "
                                 "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b="));
    free(flat);

    free(signed_ed);
    free(signed_rsa);
    dkim_key_free(&ed);
    dkim_key_free(&rsa);
    assert_null(ed);
    free(msg);
    free(published);
}

/*
 * RFC 6376 Appendix A.2 with the Appendix C key. It is said not to verify;
 * it does (libopendkim agrees) when copied as printed: the page's 3-space
 * margin removed, the continuation lines keeping their 6 and 8 spaces.
 * c=simple/simple makes every other copy fail: with the margin kept, or
 * with tabs, the header hash changes (the body hash still matches).
 */
static void test_rfc6376_example(void **state)
{
    (void)state;
    char *a2 = read_data("rfc6376-a2.eml", NULL);
    struct keyrow rows[] = {
        { "brisbane._domainkey.example.com", DKIM_DNS_OK, { REC_6376 }, 1 },
    };
    struct dkim_verify *v = verify_with(a2, strlen(a2), NOW, rows, 1);
    assert_int_equal(dkim_verify_count(v), 1);
    expect(v, 0, DKIM_PASS, "verified");
    assert_string_equal(dkim_verify_result(v, 0)->identity, "joe@football.example.com");
    assert_string_equal(dkim_verify_result(v, 0)->b_prefix, "AuUoFEfD");
    dkim_verify_free(&v);
    char *margin = replace_all(a2, "\r\n      ", "\r\n         ");
    v = verify_with(margin, strlen(margin), NOW, rows, 1);
    expect(v, 0, DKIM_FAIL, "signature did not verify");
    dkim_verify_free(&v);
    free(margin);

    char *a1 = read_data("rfc6376-a1.eml", NULL);
    EVP_PKEY *pk = load_pkey("rfc6376-brisbane.pem");
    const char *const h[] = { "Received", "From", "To", "Subject", "Date", "Message-ID" };
    char *resigned = custom_sign(
        a1,
        "v=1; a=rsa-sha256; s=brisbane; d=example.com;\r\n"
        "      c=simple/simple; q=dns/txt; i=joe@football.example.com;\r\n"
        "      h=Received : From : To : Subject : Date : Message-ID;\r\n"
        "      bh=%BH;\r\n"
        "      b=%B;",
        h, 6, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, pk);
    assert_non_null(strstr(resigned, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"));
    char *got = b_value(resigned), *want = b_value(a2);
    assert_string_equal(got, want);  /* the printed b=, from an independent signer */
    free(got);
    free(want);
    v = verify_with(resigned, strlen(resigned), NOW, rows, 1);
    expect(v, 0, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    free(resigned);
    EVP_PKEY_free(pk);

    /* And our own signer with the Appendix C key. */
    struct dkim_key *k = load_key("rfc6376-brisbane.pem", "example.com", "brisbane");
    char *signed_msg = sign_msg(k, a1, NOW, NULL);
    v = verify_with(signed_msg, strlen(signed_msg), NOW, rows, 1);
    expect(v, 0, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    free(signed_msg);
    dkim_key_free(&k);
    free(a1);
    free(a2);
}

/* --------------------------------------------------------- round trips */

/* The signature field's lines: at most 78 bytes, continuations folded with SP. */
static void check_field_layout(const char *signed_msg)
{
    assert_memory_equal(signed_msg, "DKIM-Signature: v=1;", 20);
    const char *p = signed_msg;
    for (;;) {
        const char *e = strstr(p, "\r\n");
        if ((size_t)(e - p) > 78)
            fail_msg("line longer than 78: %.*s", (int)(e - p), p);
        p = e + 2;
        if (*p != ' ')
            break;
    }
    assert_memory_equal(p, "Received:", 9);
}

static void roundtrip(enum dkim_alg alg, const char *k_tag, unsigned bits)
{
    char *pem, *txt;
    assert_int_equal(dkim_key_generate(alg, &pem, &txt), 0);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "v=DKIM1; k=%s; p=", k_tag);
    assert_memory_equal(txt, prefix, strlen(prefix));
    struct dkim_key *k = NULL;
    char err[200];
    assert_int_equal(dkim_key_load(pem, strlen(pem), "example.org", "s2024", &k, err, sizeof err),
                     0);
    assert_int_equal(dkim_key_bits(k), bits);
    char *again = dkim_key_txt_record(k);
    assert_string_equal(again, txt);
    free(again);

    const char *msg = "Received: from x by y; Mon, 2 Jan 2023 10:00:00 +0000\r\n"
                      "From: Alice <alice@example.org>\r\n"
                      "To: Bob <bob@example.net>\r\n"
                      "Cc: Carol <carol@example.net>\r\n"
                      "Subject: a subject long enough to make the h= tag fold somewhere\r\n"
                      "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
                      "Message-ID: <1@example.org>\r\n"
                      "MIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "X-Mailer: test\r\n"
                      "\r\n"
                      "Hello,  world.\r\n\r\n\r\n";
    char *signed_msg = sign_msg(k, msg, NOW, NULL);
    check_field_layout(signed_msg);
    char *flat = unfold(signed_msg);
    assert_non_null(strstr(flat, " h=from : subject : date : to : cc : message-id : "
                                 "mime-version : content-type : from; bh="));
    free(flat);
    assert_null(strstr(signed_msg, "received :"));
    assert_null(strstr(signed_msg, "x-mailer"));
    struct dkim_verify *v = verify_one(signed_msg, NOW + 10, txt);
    expect(v, 0, DKIM_PASS, "verified");
    assert_int_equal(dkim_verify_result(v, 0)->key_bits, bits);
    assert_string_equal(dkim_verify_result(v, 0)->algorithm,
                        alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
    dkim_verify_free(&v);

    /* Received is not signed: a relay may add another. */
    char *relayed = cat("Received: from relay\r\n", 22, signed_msg, strlen(signed_msg));
    expect_one(relayed, NOW, txt, DKIM_PASS, "verified");
    free(relayed);

    free(signed_msg);
    dkim_key_free(&k);
    free(pem);
    free(txt);
}

static void test_roundtrip_rsa2048(void **state)
{
    (void)state;
    roundtrip(DKIM_RSA_SHA256, "rsa", 2048);
}

static void test_roundtrip_ed25519(void **state)
{
    (void)state;
    roundtrip(DKIM_ED25519_SHA256, "ed25519", 256);
}

/* ---------------------------------------------------------- tampering */

static void test_tampered(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *good = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    expect_one(good, NOW, REC_BRISBANE, DKIM_PASS, "verified");

    char *m = replace(good, "Subject: lunch", "Subject: dinner");
    expect_one(m, NOW, REC_BRISBANE, DKIM_FAIL, "signature did not verify");
    free(m);
    m = replace(good, "at noon", "at one");
    expect_one(m, NOW, REC_BRISBANE, DKIM_FAIL, "body hash did not verify");
    free(m);
    /* Relaxed: whitespace and case changes in transit are fine. */
    m = replace(good, "Subject: lunch\r\n", "SUBJECT:   lunch \r\n");
    char *m2 = replace(m, "See you at noon.\r\n", "See  you\tat noon.  \r\n\r\n");
    expect_one(m2, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
    free(m2);
    /* An unsigned field added is fine; a second From is not (oversigned). */
    m = replace(good, "From: Alice", "X-Spam: no\r\nFrom: Alice");
    expect_one(m, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
    m = replace(good, "From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice");
    expect_one(m, NOW, REC_BRISBANE, DKIM_FAIL, "signature did not verify");
    free(m);
    m = cat(good, strlen(good), "P.S. appended\r\n", 15);
    expect_one(m, NOW, REC_BRISBANE, DKIM_FAIL, "body hash did not verify");
    free(m);
    /* The wrong key. */
    expect_one(good, NOW, "v=DKIM1; k=ed25519; p=A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
               DKIM_FAIL, "signature did not verify");
    free(good);
    dkim_key_free(&k);
}

/* Simple header canonicalization breaks on a refolded field; relaxed does not. */
static void test_simple_vs_relaxed(void **state)
{
    (void)state;
    EVP_PKEY *pk = load_pkey("rfc8463-ed25519.pem");
    const char *tags_s = "v=1; a=ed25519-sha256; c=simple/simple; d=example.org; s=ed; "
                         "h=from:to:subject; bh=%BH; b=";
    const char *tags_r = "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=ed; "
                         "h=from:to:subject; bh=%BH; b=";
    char *s = custom_sign(SIMPLE_MSG, tags_s, H_FTS, 3, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE,
                          -1, pk);
    char *r = custom_sign(SIMPLE_MSG, tags_r, H_FTS, 3, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                          -1, pk);
    expect_one(s, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(r, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    char *s2 = replace(s, "To: Bob <bob@example.net>", "To: Bob\r\n <bob@example.net>");
    char *r2 = replace(r, "To: Bob <bob@example.net>", "To: Bob\r\n <bob@example.net>");
    expect_one(s2, NOW, REC_BRISBANE, DKIM_FAIL, "signature did not verify");
    expect_one(r2, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(s2);
    free(r2);
    s2 = replace(s, "noon.\r\n", "noon. \r\n");
    r2 = replace(r, "noon.\r\n", "noon. \r\n");
    expect_one(s2, NOW, REC_BRISBANE, DKIM_FAIL, "body hash did not verify");
    expect_one(r2, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(s2);
    free(r2);
    /* Blank lines at the end are ignored by both. */
    s2 = cat(s, strlen(s), "\r\n\r\n", 4);
    expect_one(s2, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(s2);
    free(s);
    free(r);
    EVP_PKEY_free(pk);
}

/* A bare-LF message canonicalizes as its CRLF form (docs/dkim.md). */
static void test_bare_lf(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    const char *lf = "From: a@example.org\nTo: b@example.net\nSubject: lf\n\nline\n";
    const char *crlf = "From: a@example.org\r\nTo: b@example.net\r\nSubject: lf\r\n\r\nline\r\n";
    char *field;
    size_t n;
    assert_int_equal(dkim_sign(k, lf, strlen(lf), NOW, NULL, &field, &n), 0);
    char *m1 = cat(field, n, lf, strlen(lf));
    char *m2 = cat(field, n, crlf, strlen(crlf));
    expect_one(m1, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(m2, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(field);
    free(m1);
    free(m2);
    dkim_key_free(&k);
}

/* ---------------------------------------------------------- key records */

static void test_revoked(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *m = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    expect_one(m, NOW, "v=DKIM1; k=ed25519; p=", DKIM_FAIL, "key revoked");
    expect_one(m, NOW, "v=DKIM1; k=ed25519; p= ", DKIM_FAIL, "key revoked");
    /* Revoked wins over a key type that would not fit (§6.1.2 steps 7, 8). */
    expect_one(m, NOW, "v=DKIM1; k=rsa; p=", DKIM_FAIL, "key revoked");
    expect_one(m, NOW, "v=DKIM1; k=ed25519; t=y; p=", DKIM_NEUTRAL,
               "key revoked (key in testing mode)");

    /* t=y: a pass stays a pass, a failure is only neutral. */
    struct dkim_verify *v = verify_one(m, NOW, "v=DKIM1; k=ed25519; t=y; p=" ED_PUB);
    expect(v, 0, DKIM_PASS, "verified");
    assert_true(dkim_verify_result(v, 0)->testing);
    dkim_verify_free(&v);
    char *bad = replace(m, "lunch", "brunch");
    expect_one(bad, NOW, "v=DKIM1; k=ed25519; t=y:s; p=" ED_PUB, DKIM_NEUTRAL,
               "signature did not verify (key in testing mode)");
    free(bad);
    free(m);
    dkim_key_free(&k);
}

static void test_key_record_rules(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *m = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    static const struct {
        const char *rec;
        enum dkim_result want;
        const char *reason;
    } cases[] = {
        { "k=ed25519; p=" ED_PUB, DKIM_PASS, "verified" },                 /* v= optional */
        { "v=DKIM1;k=ed25519;p=" ED_PUB ";", DKIM_PASS, "verified" },
        { "v=DKIM1; k=ed25519; h=sha1:sha256; s=email; n=note; p=" ED_PUB, DKIM_PASS, "verified" },
        { "v=DKIM1; k=ed25519; s=*; x_new=1; p=" ED_PUB, DKIM_PASS, "verified" },
        { "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQH Og7hcvPapiMlrwIaaPcHURo=", DKIM_PASS,
          "verified" },
        { "v=DKIM1; p=" ED_PUB, DKIM_PERMERROR, "key type k= does not match a=" }, /* k=rsa */
        { "v=DKIM1; k=rsa; p=" ED_PUB, DKIM_PERMERROR, "key type k= does not match a=" },
        { "v=DKIM1; k=dsa; p=" ED_PUB, DKIM_PERMERROR, "unknown key type k=" },
        { "v=DKIM1; k=ed25519; h=sha1; p=" ED_PUB, DKIM_PERMERROR,
          "key h= does not allow sha256" },
        { "v=DKIM1; k=ed25519; s=web; p=" ED_PUB, DKIM_PERMERROR, "key is not for email (s=)" },
        { "v=DKIM2; k=ed25519; p=" ED_PUB, DKIM_PERMERROR, "key record is not DKIM1" },
        { "k=ed25519; v=DKIM1; p=" ED_PUB, DKIM_PERMERROR, "key record is not DKIM1" },
        { "v=DKIM1; k=ed25519", DKIM_PERMERROR, "key record has no p= tag" },
        { "v=DKIM1; k=ed25519; p=!!!!", DKIM_PERMERROR, "key p= is not base64" },
        { "v=DKIM1; k=ed25519; p=AAAA", DKIM_PERMERROR, "public key data is invalid" },
        { "v=DKIM1; k=ed25519; k=ed25519; p=" ED_PUB, DKIM_PERMERROR,
          "key record has a duplicate tag" },
        { "v=spf1 -all", DKIM_PERMERROR, "key record is not DKIM1" },
        { "this is not a record", DKIM_PERMERROR, "key record syntax error" },
        { "", DKIM_PERMERROR, "key record has no p= tag" },
        { "v=DKIM1; k=ed25519; p=\x01", DKIM_PERMERROR, "key record syntax error" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dkim_verify *v = verify_one(m, NOW, cases[i].rec);
        const struct dkim_sig_result *r = dkim_verify_result(v, 0);
        if (r->result != cases[i].want || strcmp(r->reason, cases[i].reason) != 0)
            fail_msg("record %zu \"%s\": got %s (%s)", i, cases[i].rec,
                     dkim_result_name(r->result), r->reason);
        dkim_verify_free(&v);
    }
    free(m);
    dkim_key_free(&k);

    /* An RSA record that holds a bare RSAPublicKey (PKCS#1) rather than SPKI. */
    EVP_PKEY *pk = load_pkey("rfc8463-rsa.pem");
    unsigned char *der = NULL;
    int dn = i2d_PublicKey(pk, &der);
    assert_true(dn > 0);
    char *p64 = b64(der, (size_t)dn);
    char rec[600];
    snprintf(rec, sizeof rec, "v=DKIM1; k=rsa; p=%s", p64);
    char *sm = read_data("rfc8463-signed.eml", NULL);
    struct keyrow rows[] = { { "test._domainkey.football.example.com", DKIM_DNS_OK, { rec }, 1 } };
    struct dkim_verify *v = verify_with(sm, strlen(sm), T8463, rows, 1);
    expect(v, 1, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    free(sm);
    free(p64);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
}

/* RFC 8301: RSA keys under 1024 bits are never valid; key_load refuses them too. */
static void test_rsa_key_size(void **state)
{
    (void)state;
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
    assert_non_null(small);
    unsigned char *der = NULL;
    int dn = i2d_PUBKEY(small, &der);
    char *p64 = b64(der, (size_t)dn);
    char rec[400];
    snprintf(rec, sizeof rec, "v=DKIM1; k=rsa; p=%s", p64);
    const char *const h[] = { "from" };
    char *m = custom_sign(SIMPLE_MSG,
                          "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=small; "
                          "h=from; bh=%BH; b=",
                          h, 1, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, -1, small);
    expect_one(m, NOW, rec, DKIM_PERMERROR, "RSA key smaller than 1024 bits (RFC 8301)");
    free(m);

    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, small, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long pn = BIO_get_mem_data(bio, &pem);
    struct dkim_key *k = NULL;
    char err[200];
    assert_int_equal(dkim_key_load(pem, (size_t)pn, "example.org", "s", &k, err, sizeof err), -1);
    assert_null(k);
    assert_non_null(strstr(err, "512 bits"));
    BIO_free(bio);
    free(p64);
    OPENSSL_free(der);
    EVP_PKEY_free(small);
}

static void test_dns_outcomes(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *m = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    struct dkim_verify *v = NULL;
    assert_int_equal(dkim_verify_begin(m, strlen(m), NOW, &v), 0);
    assert_string_equal(dkim_verify_key_name(v, 0), "ed._domainkey.example.org");
    expect(v, 0, DKIM_TEMPERROR, "key not yet looked up");
    dkim_verify_key(v, 0, NULL, NULL, 0, DKIM_DNS_TEMPFAIL);
    expect(v, 0, DKIM_TEMPERROR, "key lookup failed temporarily");
    assert_null(dkim_verify_key_name(v, 0));
    const char *rec = REC_BRISBANE;
    dkim_verify_key(v, 0, &rec, NULL, 1, DKIM_DNS_OK);  /* decided: ignored */
    expect(v, 0, DKIM_TEMPERROR, "key lookup failed temporarily");
    dkim_verify_key(v, 5, &rec, NULL, 1, DKIM_DNS_OK);  /* out of range: ignored */
    dkim_verify_free(&v);
    assert_null(v);

    struct keyrow nx[] = { { "ed._domainkey.example.org", DKIM_DNS_NXDOMAIN, { NULL }, 0 } };
    v = verify_with(m, strlen(m), NOW, nx, 1);
    expect(v, 0, DKIM_PERMERROR, "no key record");
    dkim_verify_free(&v);
    struct keyrow empty[] = { { "ed._domainkey.example.org", DKIM_DNS_OK, { NULL }, 0 } };
    v = verify_with(m, strlen(m), NOW, empty, 1);
    expect(v, 0, DKIM_PERMERROR, "no key record");
    dkim_verify_free(&v);
    /* Several records: each is tried (§6.1.2 step 4). */
    struct keyrow several[] = {
        { "ed._domainkey.example.org", DKIM_DNS_OK,
          { "v=spf1 -all", "v=DKIM1; k=rsa; p=" ED_PUB, REC_BRISBANE }, 3 },
    };
    v = verify_with(m, strlen(m), NOW, several, 1);
    expect(v, 0, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    struct keyrow wrong[] = {
        { "ed._domainkey.example.org", DKIM_DNS_OK,
          { "garbage", "v=DKIM1; k=ed25519; p=A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=" },
          2 },
    };
    v = verify_with(m, strlen(m), NOW, wrong, 1);
    expect(v, 0, DKIM_FAIL, "signature did not verify");  /* the real key's verdict */
    dkim_verify_free(&v);

    /* A record holding a NUL byte is malformed when its length is given. */
    static const char nul_rec[] = REC_BRISBANE "\0; x=1";
    const char *nr = nul_rec;
    size_t nl = sizeof nul_rec - 1;
    assert_int_equal(dkim_verify_begin(m, strlen(m), NOW, &v), 0);
    dkim_verify_key(v, 0, &nr, &nl, 1, DKIM_DNS_OK);
    expect(v, 0, DKIM_PERMERROR, "key record syntax error");
    dkim_verify_free(&v);
    assert_int_equal(dkim_verify_begin(m, strlen(m), NOW, &v), 0);
    dkim_verify_key(v, 0, &nr, NULL, 1, DKIM_DNS_OK);  /* NUL-terminated: ends there */
    expect(v, 0, DKIM_PASS, "verified");
    dkim_verify_free(&v);

    /* No signature at all. */
    assert_int_equal(dkim_verify_begin(SIMPLE_MSG, strlen(SIMPLE_MSG), NOW, &v), 0);
    assert_int_equal(dkim_verify_count(v), 0);
    assert_null(dkim_verify_key_name(v, 0));
    assert_null(dkim_verify_result(v, 0));
    dkim_verify_free(&v);
    assert_int_equal(dkim_verify_begin(NULL, 0, NOW, &v), 0);
    assert_int_equal(dkim_verify_count(v), 0);
    dkim_verify_free(&v);
    free(m);
    dkim_key_free(&k);
}

/* ------------------------------------------------- signature field rules */

static void test_body_length(void **state)
{
    (void)state;
    /* The relaxed body "See you at noon.\r\n" is 18 bytes. */
    char *m = ed_sign(SIMPLE_MSG, ED_TAGS("l=18; "), 18);
    struct dkim_verify *v = verify_one(m, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PASS, "verified");
    assert_false(dkim_verify_result(v, 0)->partial_body);
    dkim_verify_free(&v);
    char *more = cat(m, strlen(m), "Click here: http://evil.example/\r\n", 34);
    v = verify_one(more, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PASS, "verified");
    assert_true(dkim_verify_result(v, 0)->partial_body);
    dkim_verify_free(&v);
    free(more);
    free(m);

    m = ed_sign(SIMPLE_MSG, ED_TAGS("l=4; "), 4);
    v = verify_one(m, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PASS, "verified");
    assert_true(dkim_verify_result(v, 0)->partial_body);
    dkim_verify_free(&v);
    free(m);

    m = ed_sign(SIMPLE_MSG, ED_TAGS("l=19; "), 19);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "l= is larger than the body");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("l=99999999999999999999999999; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "l= is larger than the body");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("l=0; "), 0);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
}

static void test_times(void **state)
{
    (void)state;
    char *m = ed_sign(SIMPLE_MSG, ED_TAGS("t=1700000000; x=1700003600; "), -1);
    expect_one(m, NOW + 3600, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(m, NOW + 3600 + DKIM_CLOCK_SKEW, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(m, NOW + 3600 + DKIM_CLOCK_SKEW + 1, REC_BRISBANE, DKIM_PERMERROR,
               "signature expired");
    expect_one(m, NOW - DKIM_CLOCK_SKEW, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(m, NOW - DKIM_CLOCK_SKEW - 1, REC_BRISBANE, DKIM_PERMERROR,
               "t= is in the future");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("t=1700000000; x=1700000000; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "x= is not after t=");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("x=1000; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "signature expired");
    free(m);
    /* More than 12 digits: taken as infinite (§3.5). */
    m = ed_sign(SIMPLE_MSG, ED_TAGS("x=99999999999999999999; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("t=99999999999999999999; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "t= is in the future");
    free(m);

    /* dkim_sign's x=. */
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    struct dkim_sign_opts o = { .expire = 86400 };
    m = sign_msg(k, SIMPLE_MSG, NOW, &o);
    assert_non_null(strstr(m, "t=1700000000; x=1700086400;"));
    expect_one(m, NOW + 86400, REC_BRISBANE, DKIM_PASS, "verified");
    expect_one(m, NOW + 86400 + DKIM_CLOCK_SKEW + 1, REC_BRISBANE, DKIM_PERMERROR,
               "signature expired");
    free(m);
    dkim_key_free(&k);
}

static void test_h_without_from(void **state)
{
    (void)state;
    EVP_PKEY *pk = load_pkey("rfc8463-ed25519.pem");
    const char *const h[] = { "to", "subject" };
    char *m = custom_sign(SIMPLE_MSG,
                          "v=1; a=ed25519-sha256; d=example.org; s=ed; h=to:subject; "
                          "bh=%BH; b=",
                          h, 2, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, pk);
    struct dkim_verify *v = verify_one(m, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PERMERROR, "h= does not include From");
    assert_null(dkim_verify_key_name(v, 0));
    dkim_verify_free(&v);
    free(m);
    /* From in any case counts; c= absent is simple/simple. */
    const char *const h2[] = { "FROM", "to" };
    m = custom_sign(SIMPLE_MSG,
                    "v=1; a=ed25519-sha256; d=example.org; s=ed; h=FROM:to; bh=%BH; b=", h2, 2,
                    DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, pk);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
    EVP_PKEY_free(pk);
}

static void test_identity(void **state)
{
    (void)state;
    char *m = ed_sign(SIMPLE_MSG, ED_TAGS("i=@mail.example.org; "), -1);
    struct dkim_verify *v = verify_one(m, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PASS, "verified");
    assert_string_equal(dkim_verify_result(v, 0)->identity, "@mail.example.org");
    dkim_verify_free(&v);
    expect_one(m, NOW, "v=DKIM1; k=ed25519; t=s; p=" ED_PUB, DKIM_PERMERROR,
               "i= is a subdomain of d= but the key has t=s");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("i=joe=2Bnews@Example.ORG; "), -1);
    v = verify_one(m, NOW, "v=DKIM1; k=ed25519; t=s; p=" ED_PUB);
    expect(v, 0, DKIM_PASS, "verified");
    assert_string_equal(dkim_verify_result(v, 0)->identity, "joe+news@Example.ORG");
    dkim_verify_free(&v);
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("i=joe@example.org.evil.example; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "i= is not in the d= domain");
    free(m);
    m = ed_sign(SIMPLE_MSG, ED_TAGS("i=joe@badexample.org; "), -1);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PERMERROR, "i= is not in the d= domain");
    free(m);
}

/* Broken signature fields: permerror at once, no key to look up. */
static void test_syntax_errors(void **state)
{
    (void)state;
#define GOOD_B "b=AAAA"
#define GOOD_BH "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    static const struct {
        const char *tags;
        const char *reason;
    } cases[] = {
        { "a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "missing v= tag" },
        { "v=2; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "unsupported version v=" },
        { "v=1; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B, "missing a= tag" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH, "missing b= tag" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_B, "missing bh= tag" },
        { "v=1; a=ed25519-sha256; s=ed; h=from; " GOOD_BH "; " GOOD_B, "missing d= tag" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; " GOOD_BH "; " GOOD_B,
          "missing h= tag" },
        { "v=1; a=ed25519-sha256; d=example.org; h=from; " GOOD_BH "; " GOOD_B,
          "missing s= tag" },
        { "v=1; a=rsa-sha1; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "rsa-sha1 is not accepted (RFC 8301)" },
        { "v=1; a=hmac-md5; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "unsupported algorithm a=" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH "; b=!!",
          "b= is not base64" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH "; b=",
          "b= is empty" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; bh=%%; " GOOD_B,
          "bh= is not base64" },
        { "v=1; a=ed25519-sha256; c=fancy; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "unsupported canonicalization c=" },
        { "v=1; a=ed25519-sha256; c=relaxed/fancy; d=example.org; s=ed; h=from; " GOOD_BH
          "; " GOOD_B,
          "unsupported canonicalization c=" },
        { "v=1; a=ed25519-sha256; d=org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "invalid d= domain" },
        { "v=1; a=ed25519-sha256; d=exa mple.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "invalid d= domain" },
        { "v=1; a=ed25519-sha256; d=example.org; s=a..b; h=from; " GOOD_BH "; " GOOD_B,
          "invalid s= selector" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from::to; " GOOD_BH "; " GOOD_B,
          "invalid h= list" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=; " GOOD_BH "; " GOOD_B,
          "invalid h= list" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; i=nobody; " GOOD_BH "; " GOOD_B,
          "invalid i= identity" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; i=a=ZZ@example.org; " GOOD_BH
          "; " GOOD_B,
          "invalid i= identity" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; l=12a; " GOOD_BH "; " GOOD_B,
          "invalid l=" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; q=dns/foo; " GOOD_BH "; " GOOD_B,
          "no supported query method q=" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; t=soon; " GOOD_BH "; " GOOD_B,
          "invalid t=" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; x=-5; " GOOD_BH "; " GOOD_B,
          "invalid x=" },
        { "v=1; a=ed25519-sha256; d=example.org; d=example.org; s=ed; h=from; " GOOD_BH
          "; " GOOD_B,
          "duplicate tag" },
        { "v=1; 1a=x; a=ed25519-sha256; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B,
          "tag-list syntax error" },
        { "v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; z=\x01; " GOOD_BH "; " GOOD_B,
          "tag-list syntax error" },
        { "v=1; a; d=example.org; s=ed; h=from; " GOOD_BH "; " GOOD_B, "tag-list syntax error" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *field = NULL;
        assert_true(asprintf(&field, "DKIM-Signature: %s\r\n", cases[i].tags) > 0);
        char *m = cat(field, strlen(field), SIMPLE_MSG, strlen(SIMPLE_MSG));
        struct dkim_verify *v = NULL;
        assert_int_equal(dkim_verify_begin(m, strlen(m), NOW, &v), 0);
        assert_int_equal(dkim_verify_count(v), 1);
        const struct dkim_sig_result *r = dkim_verify_result(v, 0);
        if (r->result != DKIM_PERMERROR || strcmp(r->reason, cases[i].reason) != 0 ||
            dkim_verify_key_name(v, 0) != NULL)
            fail_msg("case %zu \"%s\": got %s (%s), want permerror (%s)", i, cases[i].tags,
                     dkim_result_name(r->result), r->reason, cases[i].reason);
        dkim_verify_free(&v);
        free(m);
        free(field);
    }
    /* What a broken signature still reports. */
    const char *m = "DKIM-Signature: v=9; a=ed25519-sha256; d=example.org; s=sel; "
                    "h=from; bh=x; b=ABCDEFGHIJKL\r\n" SIMPLE_MSG;
    struct dkim_verify *v = NULL;
    assert_int_equal(dkim_verify_begin(m, strlen(m), NOW, &v), 0);
    const struct dkim_sig_result *r = dkim_verify_result(v, 0);
    assert_string_equal(r->domain, "example.org");
    assert_string_equal(r->selector, "sel");
    assert_string_equal(r->b_prefix, "ABCDEFGH");
    assert_string_equal(r->algorithm, "");
    dkim_verify_free(&v);

    /* An overlong field. */
    size_t big = DKIM_MAX_SIG_FIELD + 10;
    char *huge = malloc(big + strlen(SIMPLE_MSG) + 100);
    int n = sprintf(huge, "DKIM-Signature: v=1; z=");
    memset(huge + n, 'a', big);
    strcpy(huge + n + big, "\r\n" SIMPLE_MSG);
    assert_int_equal(dkim_verify_begin(huge, strlen(huge), NOW, &v), 0);
    expect(v, 0, DKIM_PERMERROR, "signature field too long");
    dkim_verify_free(&v);
    free(huge);
}

/* More signatures than the limit: the first DKIM_MAX_SIGNATURES are evaluated. */
static void test_many_signatures(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *m = strdup(SIMPLE_MSG);
    for (int i = 0; i < DKIM_MAX_SIGNATURES + 2; i++) {
        char *next = sign_msg(k, m, NOW + i, NULL);
        free(m);
        m = next;
    }
    struct dkim_verify *v = verify_one(m, NOW + 20, REC_BRISBANE);
    assert_int_equal(dkim_verify_count(v), DKIM_MAX_SIGNATURES);
    for (size_t i = 0; i < DKIM_MAX_SIGNATURES; i++)
        expect(v, i, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    free(m);

    /* Good, tampered and broken side by side, each judged alone. */
    char *a = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    char *b = replace(a, "DKIM-Signature: v=1;", "DKIM-Signature: v=1; l=x;");
    char *c = sign_msg(k, b, NOW, NULL);
    const char *const h[] = { "from" };
    struct dkim_sign_opts o = { .headers = h, .n_headers = 1 };
    char *d = sign_msg(k, c, NOW, &o);
    char *e = replace(d, "Subject: lunch", "Subject: LUNCH!");
    v = verify_one(e, NOW, REC_BRISBANE);
    assert_int_equal(dkim_verify_count(v), 3);
    expect(v, 0, DKIM_PASS, "verified");  /* signs From only */
    expect(v, 1, DKIM_FAIL, "signature did not verify");
    expect(v, 2, DKIM_PERMERROR, "invalid l=");
    dkim_verify_free(&v);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    dkim_key_free(&k);
}

/* h= may sign older signatures; the field being verified is never selected. */
static void test_signing_signatures(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *first = sign_msg(k, SIMPLE_MSG, NOW, NULL);
    const char *const h[] = { "from", "dkim-signature", "dkim-signature" };
    struct dkim_sign_opts o = { .headers = h, .n_headers = 3 };
    char *second = sign_msg(k, first, NOW, &o);
    struct dkim_verify *v = verify_one(second, NOW, REC_BRISBANE);
    expect(v, 0, DKIM_PASS, "verified");
    expect(v, 1, DKIM_PASS, "verified");
    dkim_verify_free(&v);
    /* Removing the older signature breaks the newer one. */
    const char *older = strstr(second + 1, "DKIM-Signature:");
    const char *from = strstr(second, "\r\nFrom:") + 2;
    char *cut = cat(second, (size_t)(older - second), from, strlen(from));
    v = verify_one(cut, NOW, REC_BRISBANE);
    assert_int_equal(dkim_verify_count(v), 1);
    expect(v, 0, DKIM_FAIL, "signature did not verify");
    dkim_verify_free(&v);
    free(cut);
    free(first);
    free(second);
    dkim_key_free(&k);
}

/* ------------------------------------------------------------- errors */

static void test_key_load_errors(void **state)
{
    (void)state;
    struct dkim_key *k = (struct dkim_key *)1;
    char err[200];
    size_t n;
    char *pem = read_data("rfc8463-ed25519.pem", &n);
    assert_int_equal(dkim_key_load("junk", 4, "example.org", "s", &k, err, sizeof err), -1);
    assert_null(k);
    assert_int_equal(dkim_key_load(pem, n, "localhost", "s", &k, err, sizeof err), -1);
    assert_string_equal(err, "invalid DKIM domain");
    assert_int_equal(dkim_key_load(pem, n, "example.org", "a b", &k, err, sizeof err), -1);
    assert_string_equal(err, "invalid DKIM selector");
    assert_int_equal(dkim_key_load(pem, n, "example.org", "", &k, err, sizeof err), -1);
    assert_int_equal(dkim_key_load(NULL, 0, "example.org", "s", &k, err, sizeof err), -1);
    free(pem);

    /* An encrypted key fails without asking for a passphrase. */
    EVP_PKEY *ed = load_pkey("rfc8463-ed25519.pem");
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, ed, EVP_aes_128_cbc(), NULL, 0, NULL,
                                              (void *)"secret"),
                     1);
    char *data;
    long dn = BIO_get_mem_data(bio, &data);
    assert_int_equal(dkim_key_load(data, (size_t)dn, "example.org", "s", &k, err, sizeof err),
                     -1);
    assert_string_equal(err, "not an unencrypted PEM private key");
    BIO_free(bio);
    EVP_PKEY_free(ed);

    /* Neither RSA nor Ed25519. */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL), 1);
    dn = BIO_get_mem_data(bio, &data);
    assert_int_equal(dkim_key_load(data, (size_t)dn, "example.org", "s", &k, err, sizeof err),
                     -1);
    assert_string_equal(err, "unsupported key type: DKIM takes RSA or Ed25519");
    BIO_free(bio);
    EVP_PKEY_free(ec);
    assert_int_equal(ERR_peek_error(), 0);  /* nothing left for the TLS code */
}

static void test_sign_errors(void **state)
{
    (void)state;
    struct dkim_key *k = load_key("rfc8463-ed25519.pem", "example.org", "ed");
    char *f = (char *)1;
    size_t n = 1;
    const char *no_from = "To: b@example.net\r\nSubject: x\r\n\r\nbody\r\n";
    errno = 0;
    assert_int_equal(dkim_sign(k, no_from, strlen(no_from), NOW, NULL, &f, &n), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(f);
    assert_int_equal(n, 0);
    const char *ws = " From: a@example.org\r\n\r\nbody\r\n";
    assert_int_equal(dkim_sign(k, ws, strlen(ws), NOW, NULL, &f, &n), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(dkim_sign(k, SIMPLE_MSG, strlen(SIMPLE_MSG), -1, NULL, &f, &n), -1);
    /* From only in the body is no From. */
    const char *body_from = "To: b@example.net\r\n\r\nFrom: a@example.org\r\n";
    assert_int_equal(dkim_sign(k, body_from, strlen(body_from), NOW, NULL, &f, &n), -1);
    const char *const h1[] = { "to", "subject" };
    struct dkim_sign_opts o = { .headers = h1, .n_headers = 2 };
    assert_int_equal(dkim_sign(k, SIMPLE_MSG, strlen(SIMPLE_MSG), NOW, &o, &f, &n), -1);
    assert_int_equal(errno, EINVAL);
    const char *const h2[] = { "from", "bad name" };
    o.headers = h2;
    assert_int_equal(dkim_sign(k, SIMPLE_MSG, strlen(SIMPLE_MSG), NOW, &o, &f, &n), -1);
    o.n_headers = 0;
    assert_int_equal(dkim_sign(k, SIMPLE_MSG, strlen(SIMPLE_MSG), NOW, &o, &f, &n), -1);
    /* A header-only message (no body) signs and verifies. */
    const char *hdr_only = "From: a@example.org\r\nSubject: empty\r\n";
    char *m = sign_msg(k, hdr_only, NOW, NULL);
    expect_one(m, NOW, REC_BRISBANE, DKIM_PASS, "verified");
    free(m);
    dkim_key_free(&k);
    dkim_key_free(&k);  /* NULL is fine */
}

static void test_result_names(void **state)
{
    (void)state;
    assert_string_equal(dkim_result_name(DKIM_NONE), "none");
    assert_string_equal(dkim_result_name(DKIM_PASS), "pass");
    assert_string_equal(dkim_result_name(DKIM_FAIL), "fail");
    assert_string_equal(dkim_result_name(DKIM_NEUTRAL), "neutral");
    assert_string_equal(dkim_result_name(DKIM_TEMPERROR), "temperror");
    assert_string_equal(dkim_result_name(DKIM_PERMERROR), "permerror");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_rfc_example),
        cmocka_unit_test(test_canon_body_edges),
        cmocka_unit_test(test_canon_header_edges),
        cmocka_unit_test(test_rfc8463_verify),
        cmocka_unit_test(test_rfc8463_reproduce),
        cmocka_unit_test(test_rfc6376_example),
        cmocka_unit_test(test_roundtrip_rsa2048),
        cmocka_unit_test(test_roundtrip_ed25519),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_simple_vs_relaxed),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_key_record_rules),
        cmocka_unit_test(test_rsa_key_size),
        cmocka_unit_test(test_dns_outcomes),
        cmocka_unit_test(test_body_length),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_h_without_from),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_many_signatures),
        cmocka_unit_test(test_signing_signatures),
        cmocka_unit_test(test_key_load_errors),
        cmocka_unit_test(test_sign_errors),
        cmocka_unit_test(test_result_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
