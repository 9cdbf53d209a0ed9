/*
 * DKIM against any bytes. Input: one control byte, the message, then key
 * records separated by NUL bytes (every key name of the message gets these
 * records, with the DNS outcome bits 0-1 of the control byte pick; bit 2:
 * with their lengths rather than NUL-terminated). Properties checked:
 *  - dkim_verify_begin never fails on content; at most DKIM_MAX_SIGNATURES;
 *    a key name is a short "<s>._domainkey.<d>" and the signature waits for
 *    it (temperror); once the key is given the signature is decided and
 *    every string of its result is set;
 *  - both body canonicalizations are idempotent, relaxed leaves no tab, no
 *    run of spaces, no space before CRLF and no empty line at the end, both
 *    end in CRLF (relaxed: unless empty); relaxed header canonicalization is
 *    idempotent;
 *  - round trip: a message dkim_sign accepts, signed with the RFC 8463
 *    Ed25519 key, verifies (pass) with its record, whatever else it holds.
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

#define NOW 1700000000
#define MAX_CANON_INPUT 16384

static const char ed_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                             "-----END PRIVATE KEY-----\n";
static const char ed_record[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

struct cbuf {
    char *p;
    size_t n;
};

static void cbuf_sink(void *arg, const char *p, size_t n)
{
    struct cbuf *b = arg;
    char *q = realloc(b->p, b->n + n + 1);
    CHECK(q);
    b->p = q;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static struct cbuf canon_body(enum dkim_canon c, const char *s, size_t n)
{
    struct cbuf b = { 0 };
    uint64_t total = dkim_canon_body(c, s, n, cbuf_sink, &b);
    CHECK(total == b.n);
    return b;
}

static void check_canon(const char *s, size_t n)
{
    if (n > MAX_CANON_INPUT)
        n = MAX_CANON_INPUT;
    for (int c = 0; c < 2; c++) {
        enum dkim_canon canon = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
        struct cbuf once = canon_body(canon, s, n);
        struct cbuf twice = canon_body(canon, once.p, once.n);
        CHECK(once.n == twice.n && (once.n == 0 || memcmp(once.p, twice.p, once.n) == 0));
        if (canon == DKIM_CANON_SIMPLE)
            CHECK(once.n >= 2);
        if (once.n > 0) {
            CHECK(once.p[once.n - 2] == '\r' && once.p[once.n - 1] == '\n');
            if (once.n >= 4 && canon == DKIM_CANON_RELAXED)
                CHECK(memcmp(once.p + once.n - 4, "\r\n\r\n", 4) != 0);
        }
        if (canon == DKIM_CANON_RELAXED)
            for (size_t i = 0; i + 1 < once.n; i++) {
                CHECK(once.p[i] != '\t');
                CHECK(!(once.p[i] == ' ' && once.p[i + 1] == ' '));
                CHECK(!(once.p[i] == ' ' && i + 2 < once.n && once.p[i + 1] == '\r' &&
                        once.p[i + 2] == '\n'));
            }
        free(once.p);
        free(twice.p);
    }
    struct cbuf h1 = { 0 }, h2 = { 0 };
    dkim_canon_header(DKIM_CANON_RELAXED, s, n, true, cbuf_sink, &h1);
    dkim_canon_header(DKIM_CANON_RELAXED, h1.p, h1.n, true, cbuf_sink, &h2);
    CHECK(h1.n == h2.n && memcmp(h1.p, h2.p, h1.n) == 0);
    free(h1.p);
    free(h2.p);
}

static void check_result(const struct dkim_sig_result *r)
{
    CHECK(r);
    CHECK(r->result >= DKIM_NONE && r->result <= DKIM_PERMERROR && r->result != DKIM_NONE);
    CHECK(r->reason && r->domain && r->selector && r->identity && r->algorithm);
    CHECK(memchr(r->b_prefix, 0, sizeof r->b_prefix) != NULL);
}

static void verify(const char *msg, size_t len, const char *const *recs,
                   const size_t *rec_lens, size_t n_recs, enum dkim_dns dns)
{
    struct dkim_verify *v = NULL;
    CHECK(dkim_verify_begin(msg, len, NOW, &v) == 0);
    size_t n = dkim_verify_count(v);
    CHECK(n <= DKIM_MAX_SIGNATURES);
    for (size_t i = 0; i < n; i++) {
        const char *name = dkim_verify_key_name(v, i);
        check_result(dkim_verify_result(v, i));
        if (name) {
            CHECK(strlen(name) <= 253 && strstr(name, "._domainkey.") != NULL);
            CHECK(dkim_verify_result(v, i)->result == DKIM_TEMPERROR);
            dkim_verify_key(v, i, recs, rec_lens, n_recs, dns);
        }
        CHECK(dkim_verify_key_name(v, i) == NULL);
        check_result(dkim_verify_result(v, i));
    }
    CHECK(dkim_verify_result(v, n) == NULL);
    dkim_verify_free(&v);
    CHECK(v == NULL);
}

static void roundtrip(const struct dkim_key *k, const char *msg, size_t len)
{
    char *field;
    size_t flen;
    if (dkim_sign(k, msg, len, NOW, NULL, &field, &flen) != 0)
        return;
    char *m = malloc(flen + len + 1);
    CHECK(m);
    memcpy(m, field, flen);
    memcpy(m + flen, msg, len);
    struct dkim_verify *v = NULL;
    CHECK(dkim_verify_begin(m, flen + len, NOW, &v) == 0);
    CHECK(dkim_verify_count(v) >= 1);
    CHECK(strcmp(dkim_verify_key_name(v, 0), "fuzz._domainkey.example.org") == 0);
    const char *rec = ed_record;
    dkim_verify_key(v, 0, &rec, NULL, 1, DKIM_DNS_OK);
    if (dkim_verify_result(v, 0)->result != DKIM_PASS)
        abort();
    dkim_verify_free(&v);
    free(m);
    free(field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dkim_key *key;
    if (!key) {
        char err[128];
        CHECK(dkim_key_load(ed_pem, sizeof ed_pem - 1, "example.org", "fuzz", &key, err,
                            sizeof err) == 0);
    }
    if (size == 0)
        return 0;
    enum dkim_dns dns = (enum dkim_dns)(data[0] & 3);  /* 3: not a valid outcome */
    const char *msg = (const char *)data + 1;
    size_t rest = size - 1;
    const char *nul = memchr(msg, 0, rest);
    size_t len = nul ? (size_t)(nul - msg) : rest;

    /* The records: NUL-terminated copies of what follows the message. */
    char *recs_buf = NULL;
    const char *recs[DKIM_MAX_KEY_RECORDS + 1];
    size_t lens[DKIM_MAX_KEY_RECORDS + 1];
    size_t n_recs = 0;
    if (nul) {
        size_t rl = rest - len - 1;
        recs_buf = malloc(rl + 1);
        CHECK(recs_buf);
        memcpy(recs_buf, nul + 1, rl);
        recs_buf[rl] = 0;
        for (char *p = recs_buf; n_recs < sizeof recs / sizeof recs[0];) {
            size_t l = strlen(p);
            recs[n_recs] = p;
            lens[n_recs++] = l;
            if (p + l >= recs_buf + rl)
                break;
            p += l + 1;
        }
    }

    verify(msg, len, recs, (data[0] & 4) ? lens : NULL, n_recs, dns);
    check_canon(msg, len);
    roundtrip(key, msg, len);
    free(recs_buf);
    return 0;
}
