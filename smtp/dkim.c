/*
 * DKIM signing and verification (RFC 6376) with rsa-sha256 and
 * ed25519-sha256 (RFC 8463), key sizes per RFC 8301. Every cryptographic
 * operation is OpenSSL's (EVP); this file is the text: tag lists (§3.2),
 * signature fields (§3.5), key records (§3.6.1), header selection and the
 * two hashes (§3.7). Canonicalization is in dkim-canon.c. Why not
 * libopendkim: docs/dkim.md.
 *
 * No I/O and no shared state. OpenSSL errors are cleared before returning,
 * so a failed verification leaves nothing in the thread's error queue for
 * the TLS code that runs next on the same thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "smtp/smtp.h"

#define HASH_LEN 32            /* SHA-256 */
#define MAX_TAGS 64            /* tags in one tag-list */
#define MAX_DNS_NAME 253
#define MAX_PEM (64 * 1024)
#define FOLD_WIDTH 78          /* RFC 5322 §2.1.1: SHOULD NOT pass 78 */
#define BUILD_LIMIT (1024 * 1024)
#define ED25519_KEY_LEN 32
#define ED25519_SIG_LEN 64

/* ------------------------------------------------------------ helpers */

struct span {
    const char *p;
    size_t n;
};

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* FWS once unfolded: in a header field a CR or LF is always part of FWS. */
static bool is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* ASCII case-insensitive equality (no locale). */
static bool eq_ci(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool span_is(struct span s, const char *lit)
{
    return eq_ci(s.p, s.n, lit, strlen(lit));
}

static struct span trim(struct span s)
{
    while (s.n > 0 && is_fws(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_fws(s.p[s.n - 1]))
        s.n--;
    return s;
}

static char *span_dup(struct span s)
{
    char *d = malloc(s.n + 1);
    if (d) {
        memcpy(d, s.p, s.n);
        d[s.n] = 0;
    }
    return d;
}

/* Does the colon-separated list v hold item (case-insensitively, FWS trimmed)? */
static bool list_has(struct span v, const char *item)
{
    size_t i = 0;
    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ':')
            j++;
        if (span_is(trim((struct span){ v.p + i, j - i }), item))
            return true;
        i = j + 1;
    }
    return false;
}

/* Digits only; saturates (RFC 6376 §3.5 t=: longer values MAY be taken as infinite). */
static bool parse_u64(struct span s, uint64_t *out)
{
    if (s.n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_digit(s.p[i]))
            return false;
        unsigned d = (unsigned)(s.p[i] - '0');
        v = (v > (UINT64_MAX - d) / 10) ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

/*
 * A DNS name: labels of letters, digits, '-' and '_' (selectors in the wild
 * use '_'), 1-63 bytes each, 253 in all, at least min_labels of them.
 */
static bool valid_dns_name(struct span s, unsigned min_labels)
{
    if (s.n == 0 || s.n > MAX_DNS_NAME)
        return false;
    unsigned labels = 0;
    size_t lab = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '.') {
            if (lab == 0)
                return false;
            labels++;
            lab = 0;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
            return false;
        if (++lab > 63)
            return false;
    }
    if (lab == 0)
        return false;
    return labels + 1 >= min_labels;
}

/* RFC 5322 field-name: 1*ftext, printable ASCII but ':'. */
static bool valid_field_name(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e || c == ':')
            return false;
    }
    return true;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Base64 with FWS anywhere (§3.5 b=, bh=; §3.6.1 p=). Padding may be
 * missing. Returns 0 with a malloc'd *out, -1 on bad syntax, -2 out of memory.
 */
static int b64_decode(struct span s, unsigned char **out, size_t *out_len)
{
    unsigned char *d = malloc(s.n / 4 * 3 + 3);
    if (!d)
        return -2;
    size_t n = 0, chars = 0, pads = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (is_fws((char)c))
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pads > 0) {
            free(d);
            return -1;
        }
        chars++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (chars % 4 == 1 || pads > 2 || (pads > 0 && (chars + pads) % 4 != 0)) {
        free(d);
        return -1;
    }
    *out = d;
    *out_len = n;
    return 0;
}

/* Base64 without line breaks; malloc'd, NUL-terminated. */
static char *b64_encode(const unsigned char *p, size_t n)
{
    char *o = malloc((n + 2) / 3 * 4 + 1);
    if (o)
        EVP_EncodeBlock((unsigned char *)o, p, (int)n);
    return o;
}

/* ----------------------------------------------------------- tag lists */

struct tag {
    struct span name;
    struct span value;          /* without FWS at either end */
    size_t raw_start, raw_end;  /* the value with its FWS, offsets in the list */
};

enum tags_status { TAGS_OK, TAGS_SYNTAX, TAGS_DUPLICATE, TAGS_TOO_MANY };

/*
 * RFC 6376 §3.2: tag-spec *(";" tag-spec) [";"]. Names are ALPHA
 * *(ALPHA / DIGIT / "_"), case-sensitive, and unique (a duplicate makes the
 * whole list invalid). Values are VALCHARs (any printable byte but ';')
 * and FWS; bytes of 0x80 and above are let through for the checks of each
 * tag to judge. An empty tag-spec (";;") is tolerated, as most verifiers do.
 */
static enum tags_status parse_tags(const char *s, size_t n, struct tag *tags, size_t *count)
{
    size_t k = 0, i = 0;
    *count = 0;
    while (i < n) {
        while (i < n && is_fws(s[i]))
            i++;
        if (i == n)
            break;
        if (s[i] == ';') {
            i++;
            continue;
        }
        if (!is_alpha(s[i]))
            return TAGS_SYNTAX;
        size_t ns = i;
        while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            i++;
        struct span name = { s + ns, i - ns };
        while (i < n && is_fws(s[i]))
            i++;
        if (i == n || s[i] != '=')
            return TAGS_SYNTAX;
        i++;
        size_t rs = i;
        while (i < n && s[i] != ';') {
            unsigned char c = (unsigned char)s[i];
            if (!is_fws((char)c) && (c < 0x21 || c == 0x7f))
                return TAGS_SYNTAX;
            i++;
        }
        if (k == MAX_TAGS)
            return TAGS_TOO_MANY;
        for (size_t j = 0; j < k; j++)
            if (tags[j].name.n == name.n && memcmp(tags[j].name.p, name.p, name.n) == 0)
                return TAGS_DUPLICATE;
        tags[k].name = name;
        tags[k].value = trim((struct span){ s + rs, i - rs });
        tags[k].raw_start = rs;
        tags[k].raw_end = i;
        k++;
        if (i < n)
            i++;  /* the ';' */
    }
    *count = k;
    return TAGS_OK;
}

static const struct tag *find_tag(const struct tag *tags, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (tags[i].name.n == len && memcmp(tags[i].name.p, name, len) == 0)
            return &tags[i];
    return NULL;
}

static const char *tags_error(enum tags_status st, bool key)
{
    switch (st) {
    case TAGS_DUPLICATE:
        return key ? "key record has a duplicate tag" : "duplicate tag";
    case TAGS_TOO_MANY:
        return key ? "key record has too many tags" : "too many tags";
    default:
        return key ? "key record syntax error" : "tag-list syntax error";
    }
}

/* ------------------------------------------------------ header fields */

/* One header field: [start, end) with its line ends; name_len 0: no usable name. */
struct field {
    size_t start, end;
    size_t colon;     /* offset of the ':' (absolute), valid when name_len > 0 */
    size_t name_len;  /* the name before the colon, WSP before the colon dropped */
};

struct fields {
    struct field *v;
    size_t n, cap;
    size_t body;      /* where the body starts (len when there is none) */
};

static void fields_free(struct fields *F)
{
    free(F->v);
    F->v = NULL;
    F->n = F->cap = 0;
}

/*
 * Splits the header into fields: a line that begins with WSP continues the
 * field above; an empty line ends the header. A line without a colon, or a
 * continuation with nothing above it, is a field no h= name can select.
 */
static int split_fields(const char *msg, size_t len, struct fields *F)
{
    memset(F, 0, sizeof *F);
    F->body = len;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        size_t next = nl ? (size_t)(nl - msg) + 1 : len;
        size_t cend = nl ? (size_t)(nl - msg) : len;
        if (nl && cend > pos && msg[cend - 1] == '\r')
            cend--;
        if (cend == pos && nl) {
            F->body = next;
            return 0;
        }
        if (is_wsp(msg[pos]) && F->n > 0) {
            F->v[F->n - 1].end = next;
        } else {
            if (F->n == F->cap) {
                size_t cap = F->cap ? F->cap * 2 : 32;
                struct field *v = realloc(F->v, cap * sizeof *v);
                if (!v) {
                    fields_free(F);
                    return -1;
                }
                F->v = v;
                F->cap = cap;
            }
            struct field *f = &F->v[F->n++];
            f->start = pos;
            f->end = next;
            f->colon = 0;
            f->name_len = 0;
            const char *colon = is_wsp(msg[pos]) ? NULL : memchr(msg + pos, ':', cend - pos);
            if (colon) {
                size_t ne = (size_t)(colon - msg);
                f->colon = ne;
                while (ne > pos && is_wsp(msg[ne - 1]))
                    ne--;
                f->name_len = ne - pos;
            }
        }
        pos = next;
    }
    return 0;
}

static bool field_is(const char *msg, const struct field *f, const char *name, size_t n)
{
    return f->name_len > 0 && eq_ci(msg + f->start, f->name_len, name, n);
}

/* ------------------------------------------------------------- hashing */

struct hasher {
    EVP_MD_CTX *md;
    bool failed;
};

static int hasher_init(struct hasher *h)
{
    h->failed = false;
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        h->md = NULL;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static void hash_sink(void *arg, const char *p, size_t n)
{
    struct hasher *h = arg;
    if (EVP_DigestUpdate(h->md, p, n) != 1)
        h->failed = true;
}

static int hasher_final(struct hasher *h, unsigned char out[HASH_LEN])
{
    unsigned int n = 0;
    int ok = !h->failed && EVP_DigestFinal_ex(h->md, out, &n) == 1 && n == HASH_LEN;
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/*
 * The header hash of §3.7: each field named in h=, the bottom-most not yet
 * used instance first (§5.4.2; a name with no instance left adds nothing),
 * then the signature field sigf (its b= value already removed) without a
 * trailing CRLF. self is the index of the signature field being verified,
 * which h= never selects (§3.5 h=); (size_t)-1 when signing.
 */
static int header_hash(const char *msg, const struct fields *F, size_t self,
                       const struct span *names, size_t n_names, const char *sigf,
                       size_t sigf_len, enum dkim_canon hc, unsigned char out[HASH_LEN])
{
    bool *used = calloc(F->n ? F->n : 1, sizeof *used);
    if (!used)
        return -1;
    struct hasher h;
    if (hasher_init(&h) != 0) {
        free(used);
        return -1;
    }
    for (size_t k = 0; k < n_names; k++) {
        for (size_t j = F->n; j-- > 0;) {
            const struct field *f = &F->v[j];
            if (used[j] || j == self || !field_is(msg, f, names[k].p, names[k].n))
                continue;
            used[j] = true;
            dkim_canon_header(hc, msg + f->start, f->end - f->start, true, hash_sink, &h);
            break;
        }
    }
    dkim_canon_header(hc, sigf, sigf_len, false, hash_sink, &h);
    free(used);
    return hasher_final(&h, out);
}

/* The body hash of one (canonicalization, l=) pair; the same pair is hashed once. */
struct body_hash {
    enum dkim_canon canon;
    uint64_t limit;                 /* l=, UINT64_MAX without */
    uint64_t total;                 /* canonical body length */
    unsigned char hash[HASH_LEN];
};

struct body_cache {
    const char *body;
    size_t len;
    size_t n;
    struct body_hash e[DKIM_MAX_SIGNATURES + 1];
};

struct limited {
    struct hasher h;
    uint64_t limit, hashed;
};

static void limited_sink(void *arg, const char *p, size_t n)
{
    struct limited *l = arg;
    if (l->hashed >= l->limit)
        return;
    uint64_t take = l->limit - l->hashed;
    if (take > n)
        take = n;
    hash_sink(&l->h, p, (size_t)take);
    l->hashed += take;
}

static const struct body_hash *body_hash(struct body_cache *bc, enum dkim_canon c,
                                         uint64_t limit)
{
    for (size_t i = 0; i < bc->n; i++)
        if (bc->e[i].canon == c && bc->e[i].limit == limit)
            return &bc->e[i];
    if (bc->n == sizeof bc->e / sizeof bc->e[0])
        return NULL;  /* cannot happen: one entry per signature at most */
    struct body_hash *e = &bc->e[bc->n];
    struct limited l = { .limit = limit };
    if (hasher_init(&l.h) != 0)
        return NULL;
    e->total = dkim_canon_body(c, bc->body, bc->len, limited_sink, &l);
    if (hasher_final(&l.h, e->hash) != 0)
        return NULL;
    e->canon = c;
    e->limit = limit;
    bc->n++;
    return e;
}

/* -------------------------------------------------------------- names */

const char *dkim_result_name(enum dkim_result r)
{
    switch (r) {
    case DKIM_NONE:
        return "none";
    case DKIM_PASS:
        return "pass";
    case DKIM_FAIL:
        return "fail";
    case DKIM_NEUTRAL:
        return "neutral";
    case DKIM_TEMPERROR:
        return "temperror";
    case DKIM_PERMERROR:
        return "permerror";
    }
    return "permerror";
}

static const char *alg_name(enum dkim_alg a)
{
    return a == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* ------------------------------------------------------------- signing */

struct dkim_key {
    EVP_PKEY *pkey;
    enum dkim_alg alg;
    unsigned bits;
    char domain[MAX_DNS_NAME + 1];
    char selector[MAX_DNS_NAME + 1];
};

/* Never ask for a passphrase (OpenSSL's default would open /dev/tty). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int dkim_key_load(const char *pem, size_t len, const char *domain, const char *selector,
                  struct dkim_key **out, char *err, size_t errlen)
{
    *out = NULL;
    struct span d = { domain, domain ? strlen(domain) : 0 };
    struct span s = { selector, selector ? strlen(selector) : 0 };
    if (!valid_dns_name(d, 2)) {
        snprintf(err, errlen, "invalid DKIM domain");
        return -1;
    }
    if (!valid_dns_name(s, 1) || s.n + d.n + strlen("._domainkey.") > MAX_DNS_NAME) {
        snprintf(err, errlen, "invalid DKIM selector");
        return -1;
    }
    if (!pem || len == 0 || len > MAX_PEM) {
        snprintf(err, errlen, "no PEM private key");
        return -1;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!pk) {
        snprintf(err, errlen, "not an unencrypted PEM private key");
        return -1;
    }
    struct dkim_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pk);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    k->pkey = pk;
    int type = EVP_PKEY_get_base_id(pk);
    if (type == EVP_PKEY_ED25519) {
        k->alg = DKIM_ED25519_SHA256;
        k->bits = 256;
    } else if (type == EVP_PKEY_RSA) {
        k->alg = DKIM_RSA_SHA256;
        int bits = EVP_PKEY_get_bits(pk);
        k->bits = bits > 0 ? (unsigned)bits : 0;
        if (k->bits < DKIM_RSA_MIN_BITS || k->bits > DKIM_RSA_SIGN_MAX_BITS) {
            snprintf(err, errlen, "RSA key of %u bits: DKIM takes %d to %d", k->bits,
                     DKIM_RSA_MIN_BITS, DKIM_RSA_SIGN_MAX_BITS);
            dkim_key_free(&k);
            return -1;
        }
    } else {
        snprintf(err, errlen, "unsupported key type: DKIM takes RSA or Ed25519");
        dkim_key_free(&k);
        return -1;
    }
    memcpy(k->domain, d.p, d.n);
    memcpy(k->selector, s.p, s.n);
    *out = k;
    return 0;
}

void dkim_key_free(struct dkim_key **k)
{
    if (!*k)
        return;
    EVP_PKEY_free((*k)->pkey);
    free(*k);
    *k = NULL;
}

enum dkim_alg dkim_key_alg(const struct dkim_key *k)
{
    return k->alg;
}

unsigned dkim_key_bits(const struct dkim_key *k)
{
    return k->bits;
}

/* "v=DKIM1; k=...; p=..." for a key pair (§3.6.1; RFC 8463 §4.2: raw Ed25519 key). */
static char *txt_record(EVP_PKEY *pk, enum dkim_alg alg)
{
    unsigned char raw[ED25519_KEY_LEN], *der = NULL;
    const unsigned char *pub = raw;
    size_t n = sizeof raw;
    if (alg == DKIM_ED25519_SHA256) {
        if (EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1) {
            ERR_clear_error();
            return NULL;
        }
    } else {
        int dn = i2d_PUBKEY(pk, &der);  /* SubjectPublicKeyInfo, as everyone publishes */
        if (dn <= 0) {
            ERR_clear_error();
            return NULL;
        }
        pub = der;
        n = (size_t)dn;
    }
    char *b64 = b64_encode(pub, n);
    OPENSSL_free(der);
    if (!b64)
        return NULL;
    char *rec = NULL;
    if (asprintf(&rec, "v=DKIM1; k=%s; p=%s", alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa",
                 b64) < 0)
        rec = NULL;
    free(b64);
    return rec;
}

char *dkim_key_txt_record(const struct dkim_key *k)
{
    return txt_record(k->pkey, k->alg);
}

int dkim_key_generate(enum dkim_alg alg, char **pem, char **txt)
{
    *pem = *txt = NULL;
    EVP_PKEY *pk = alg == DKIM_ED25519_SHA256
                       ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                       : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_GENERATE_BITS);
    BIO *bio = pk ? BIO_new(BIO_s_mem()) : NULL;
    int rc = -1;
    if (bio && PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (*pem = malloc((size_t)n + 1)) != NULL) {
            memcpy(*pem, data, (size_t)n);
            (*pem)[n] = 0;
            *txt = txt_record(pk, alg);
            rc = *txt ? 0 : -1;
        }
    }
    BIO_free(bio);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (rc != 0) {
        free(*pem);
        *pem = NULL;
    }
    return rc;
}

/*
 * What is signed by default: RFC 6376 §5.4.1's list, the MIME fields (a
 * changed Content-Type changes what the reader sees) and Message-ID, and
 * List-Unsubscribe-Post (RFC 8058 §4 needs it signed). Not Received,
 * Return-Path and the like, which relays add or rewrite.
 */
static const char *const default_headers[] = {
    "from", "reply-to", "subject", "date", "to", "cc",
    "resent-date", "resent-from", "resent-to", "resent-cc",
    "in-reply-to", "references", "message-id",
    "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe",
    "list-post", "list-owner", "list-archive",
    "mime-version", "content-type", "content-transfer-encoding", "content-id",
    "content-description",
};

/* Appends tokens separated by one space, breaking lines before FOLD_WIDTH. */
struct folder {
    struct buf *b;
    size_t col;
    bool failed;
};

static void fold_put(struct folder *f, const char *tok, size_t n)
{
    if (f->b->len > 0) {
        if (f->col + 1 + n > FOLD_WIDTH) {
            if (buf_append(f->b, "\r\n ", 3, BUILD_LIMIT) != 0)
                f->failed = true;
            f->col = 1;
        } else {
            if (buf_append(f->b, " ", 1, BUILD_LIMIT) != 0)
                f->failed = true;
            f->col++;
        }
    }
    if (buf_append(f->b, tok, n, BUILD_LIMIT) != 0)
        f->failed = true;
    f->col += n;
}

static void fold_printf(struct folder *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fold_printf(struct folder *f, const char *fmt, ...)
{
    char tok[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tok, sizeof tok, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tok) {
        f->failed = true;
        return;
    }
    fold_put(f, tok, (size_t)n);
}

/* Signs the 32-byte header hash: RSASSA-PKCS1-v1_5 with SHA-256, or PureEdDSA
 * over the hash itself (RFC 8463 §3). */
static unsigned char *crypto_sign(EVP_PKEY *pk, enum dkim_alg alg,
                                  const unsigned char hash[HASH_LEN], size_t *sig_len)
{
    unsigned char *sig = NULL;
    size_t n = 0;
    bool ok = false;
    if (alg == DKIM_ED25519_SHA256) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (md && EVP_DigestSignInit(md, NULL, NULL, NULL, pk) == 1 &&
            EVP_DigestSign(md, NULL, &n, hash, HASH_LEN) == 1 && (sig = malloc(n)) != NULL &&
            EVP_DigestSign(md, sig, &n, hash, HASH_LEN) == 1)
            ok = true;
        EVP_MD_CTX_free(md);
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        if (ctx && EVP_PKEY_sign_init(ctx) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
            EVP_PKEY_sign(ctx, NULL, &n, hash, HASH_LEN) == 1 && (sig = malloc(n)) != NULL &&
            EVP_PKEY_sign(ctx, sig, &n, hash, HASH_LEN) == 1)
            ok = true;
        EVP_PKEY_CTX_free(ctx);
    }
    if (!ok) {
        free(sig);
        ERR_clear_error();
        return NULL;
    }
    *sig_len = n;
    return sig;
}

/* The h= names for msg: opts->headers, or the default set as present, then From again. */
static int sign_names(const char *msg, const struct fields *F, const struct dkim_sign_opts *o,
                      struct span *names, size_t *n_names)
{
    size_t n = 0;
    if (o && o->headers) {
        bool from = false;
        if (o->n_headers == 0 || o->n_headers > DKIM_MAX_SIGNED_FIELDS)
            return -1;
        for (size_t i = 0; i < o->n_headers; i++) {
            const char *h = o->headers[i];
            size_t hn = h ? strlen(h) : 0;
            if (hn > 256 || !valid_field_name(h, hn))
                return -1;
            from |= eq_ci(h, hn, "from", 4);
            names[n++] = (struct span){ h, hn };
        }
        if (!from)
            return -1;
        *n_names = n;
        return 0;
    }
    for (size_t d = 0; d < sizeof default_headers / sizeof default_headers[0]; d++) {
        const char *h = default_headers[d];
        size_t hn = strlen(h);
        for (size_t j = 0; j < F->n && n < DKIM_MAX_SIGNED_FIELDS - 1; j++)
            if (field_is(msg, &F->v[j], h, hn))
                names[n++] = (struct span){ h, hn };
    }
    names[n++] = (struct span){ "from", 4 };  /* oversigned: a second From breaks it */
    *n_names = n;
    return 0;
}

int dkim_sign(const struct dkim_key *k, const char *msg, size_t len, int64_t now,
              const struct dkim_sign_opts *opts, char **field, size_t *field_len)
{
    *field = NULL;
    *field_len = 0;
    if (!msg)
        msg = "";
    if (now < 0 || (opts && opts->expire < 0) || (len > 0 && is_wsp(msg[0]))) {
        errno = EINVAL;
        return -1;
    }
    struct fields F;
    if (split_fields(msg, len, &F) != 0) {
        errno = ENOMEM;
        return -1;
    }
    bool has_from = false;
    for (size_t j = 0; j < F.n; j++)
        has_from |= field_is(msg, &F.v[j], "from", 4);
    struct span names[DKIM_MAX_SIGNED_FIELDS];
    size_t n_names = 0;
    if (!has_from || sign_names(msg, &F, opts, names, &n_names) != 0) {
        fields_free(&F);
        errno = EINVAL;
        return -1;
    }

    struct body_cache bc = { .body = msg + F.body, .len = len - F.body };
    const struct body_hash *bh = body_hash(&bc, DKIM_CANON_RELAXED, UINT64_MAX);
    char *bh64 = bh ? b64_encode(bh->hash, HASH_LEN) : NULL;

    /* The layout of RFC 8463's example (tags in its order, " : " in h=), so
     * its published signatures are reproduced byte for byte in the tests. */
    struct buf b = { 0 };
    struct folder f = { .b = &b, .failed = !bh64 };
    fold_put(&f, "DKIM-Signature:", 15);
    fold_printf(&f, "v=1;");
    fold_printf(&f, "a=%s;", alg_name(k->alg));
    fold_printf(&f, "c=relaxed/relaxed;");
    fold_printf(&f, "d=%s;", k->domain);
    fold_printf(&f, "i=@%s;", k->domain);
    fold_printf(&f, "q=dns/txt;");
    fold_printf(&f, "s=%s;", k->selector);
    fold_printf(&f, "t=%lld;", (long long)now);
    if (opts && opts->expire > 0)
        fold_printf(&f, "x=%lld;", (long long)(now + opts->expire));
    for (size_t i = 0; i < n_names; i++) {
        char tok[300];
        int tn = snprintf(tok, sizeof tok, "%s%.*s%s", i == 0 ? "h=" : "", (int)names[i].n,
                          names[i].p, i + 1 == n_names ? ";" : "");
        if (tn < 0 || (size_t)tn >= sizeof tok) {
            f.failed = true;
            break;
        }
        for (int c = 0; c < tn; c++)
            tok[c] = lower(tok[c]);
        fold_put(&f, tok, (size_t)tn);
        if (i + 1 < n_names)
            fold_put(&f, ":", 1);
    }
    fold_printf(&f, "bh=%s;", bh64 ? bh64 : "");
    fold_put(&f, "b=", 2);
    free(bh64);

    unsigned char hh[HASH_LEN];
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (!f.failed &&
        header_hash(msg, &F, (size_t)-1, names, n_names, b.data, b.len, DKIM_CANON_RELAXED,
                    hh) == 0)
        sig = crypto_sign(k->pkey, k->alg, hh, &sig_len);
    fields_free(&F);
    char *sig64 = sig ? b64_encode(sig, sig_len) : NULL;
    free(sig);
    if (!sig64) {
        buf_free(&b);
        errno = f.failed || !bh ? ENOMEM : EIO;
        return -1;
    }
    /* b= goes on in whole lines: FWS inside base64 is allowed (§3.5). */
    size_t left = strlen(sig64), at = 0;
    while (left > 0 && !f.failed) {
        size_t room = f.col < FOLD_WIDTH ? FOLD_WIDTH - f.col : 0;
        if (room == 0) {
            if (buf_append(&b, "\r\n ", 3, BUILD_LIMIT) != 0)
                f.failed = true;
            f.col = 1;
            continue;
        }
        size_t take = room < left ? room : left;
        if (buf_append(&b, sig64 + at, take, BUILD_LIMIT) != 0)
            f.failed = true;
        f.col += take;
        at += take;
        left -= take;
    }
    free(sig64);
    if (f.failed || buf_append(&b, "\r\n", 3, BUILD_LIMIT) != 0) {
        buf_free(&b);
        errno = ENOMEM;
        return -1;
    }
    *field = b.data;        /* NUL included above, not counted */
    *field_len = b.len - 1;
    return 0;
}

/* ----------------------------------------------------------- verifying */

struct sig {
    struct dkim_sig_result r;
    char *domain, *selector, *identity;
    char *key_name;                 /* non-NULL while the key is awaited */
    unsigned char *b;
    size_t b_len;
    unsigned char hh[HASH_LEN];     /* header hash (§3.7) */
    enum dkim_alg alg;
    bool i_subdomain;               /* i= is under d=, not d= itself */
};

struct dkim_verify {
    size_t n;
    struct sig sigs[DKIM_MAX_SIGNATURES];
};

static void decide(struct sig *s, enum dkim_result r, const char *reason)
{
    s->r.result = r;
    s->r.reason = reason;
    free(s->key_name);
    s->key_name = NULL;
}

/* §6.1.1: the signature field is unusable; 0 so callers can return it. */
static int perm(struct sig *s, const char *reason)
{
    decide(s, DKIM_PERMERROR, reason);
    return 0;
}

/* h=: field names separated by ':' with FWS around them; From is required. */
static const char *parse_h(struct span v, struct span *names, size_t *n)
{
    bool from = false;
    size_t k = 0, i = 0;
    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ':')
            j++;
        struct span name = trim((struct span){ v.p + i, j - i });
        if (!valid_field_name(name.p, name.n))
            return "invalid h= list";
        if (k == DKIM_MAX_SIGNED_FIELDS)
            return "too many fields in h=";
        from |= span_is(name, "from");
        names[k++] = name;
        i = j + 1;
    }
    *n = k;
    return from ? NULL : "h= does not include From";
}

/* c=header[/body]; the body defaults to simple (§3.5 c=). */
static bool parse_c(struct span v, enum dkim_canon *hc, enum dkim_canon *bc)
{
    const char *slash = memchr(v.p, '/', v.n);
    struct span h = { v.p, slash ? (size_t)(slash - v.p) : v.n };
    *bc = DKIM_CANON_SIMPLE;
    if (span_is(h, "simple"))
        *hc = DKIM_CANON_SIMPLE;
    else if (span_is(h, "relaxed"))
        *hc = DKIM_CANON_RELAXED;
    else
        return false;
    if (!slash)
        return true;
    struct span b = { slash + 1, v.n - h.n - 1 };
    if (span_is(b, "relaxed"))
        *bc = DKIM_CANON_RELAXED;
    else if (!span_is(b, "simple"))
        return false;
    return true;
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * i=: dkim-quoted-printable [local-part] "@" domain (§3.5). Decoded into
 * *out (malloc'd). Returns NULL or the reason it is unusable; *out NULL
 * with no reason means out of memory.
 */
static const char *parse_i(struct span v, struct span d, char **out, bool *subdomain)
{
    *out = NULL;
    char *id = malloc(v.n + 1);
    if (!id)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (is_fws((char)c))
            continue;
        if (c == '=') {
            int hi = i + 2 < v.n ? hex_value(v.p[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(v.p[i + 2]) : -1;
            if (lo < 0)
                goto bad;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (c < 0x21 || c == 0x7f)
                goto bad;
        }
        id[n++] = (char)c;
    }
    id[n] = 0;
    const char *at = memrchr(id, '@', n);
    if (!at)
        goto bad;
    struct span dom = { at + 1, n - (size_t)(at + 1 - id) };
    if (!valid_dns_name(dom, 1))
        goto bad;
    *subdomain = false;
    if (!eq_ci(dom.p, dom.n, d.p, d.n)) {
        /* §6.1.1: d= must be i='s domain or a parent of it. */
        if (dom.n <= d.n + 1 || dom.p[dom.n - d.n - 1] != '.' ||
            !eq_ci(dom.p + dom.n - d.n, d.n, d.p, d.n)) {
            free(id);
            return "i= is not in the d= domain";
        }
        *subdomain = true;
    }
    *out = id;
    return NULL;
bad:
    free(id);
    return "invalid i= identity";
}

static int64_t to_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Parses and checks the signature field F->v[fi] (§6.1.1), hashes (§6.1.3). -1: no memory. */
static int sig_check(struct sig *s, const char *msg, const struct fields *F, size_t fi,
                     int64_t now, struct body_cache *bc)
{
    const struct field *f = &F->v[fi];
    s->r.result = DKIM_TEMPERROR;
    s->r.reason = "key not yet looked up";
    s->r.domain = s->r.selector = s->r.identity = s->r.algorithm = "";
    if (f->end - f->start > DKIM_MAX_SIG_FIELD)
        return perm(s, "signature field too long");

    /* The tag-list: after the colon, without the field's last line end. */
    size_t vs = f->colon + 1, ve = f->end;
    if (ve > vs && msg[ve - 1] == '\n')
        ve--;
    if (ve > vs && msg[ve - 1] == '\r')
        ve--;
    struct tag tags[MAX_TAGS];
    size_t nt;
    enum tags_status st = parse_tags(msg + vs, ve - vs, tags, &nt);
    if (st != TAGS_OK)
        return perm(s, tags_error(st, false));

    const struct tag *tv = find_tag(tags, nt, "v"), *ta = find_tag(tags, nt, "a"),
                     *tb = find_tag(tags, nt, "b"), *tbh = find_tag(tags, nt, "bh"),
                     *tc = find_tag(tags, nt, "c"), *td = find_tag(tags, nt, "d"),
                     *th = find_tag(tags, nt, "h"), *ti = find_tag(tags, nt, "i"),
                     *tl = find_tag(tags, nt, "l"), *tq = find_tag(tags, nt, "q"),
                     *ts = find_tag(tags, nt, "s"), *tt = find_tag(tags, nt, "t"),
                     *tx = find_tag(tags, nt, "x");

    /* What the result reports, whatever else is wrong. */
    if (td && valid_dns_name(td->value, 2)) {
        if (!(s->domain = span_dup(td->value)))
            return -1;
        s->r.domain = s->domain;
    }
    if (ts && valid_dns_name(ts->value, 1)) {
        if (!(s->selector = span_dup(ts->value)))
            return -1;
        s->r.selector = s->selector;
    }
    if (tb) {
        size_t k = 0;
        for (size_t i = 0; i < tb->value.n && k < sizeof s->r.b_prefix - 1; i++) {
            char c = tb->value.p[i];
            if (b64_value((unsigned char)c) >= 0)
                s->r.b_prefix[k++] = c;
            else if (!is_fws(c))
                break;
        }
        s->r.b_prefix[k] = 0;
    }

    if (!tv)
        return perm(s, "missing v= tag");
    if (!span_is(tv->value, "1"))
        return perm(s, "unsupported version v=");
    if (!ta)
        return perm(s, "missing a= tag");
    if (!tb)
        return perm(s, "missing b= tag");
    if (!tbh)
        return perm(s, "missing bh= tag");
    if (!td)
        return perm(s, "missing d= tag");
    if (!th)
        return perm(s, "missing h= tag");
    if (!ts)
        return perm(s, "missing s= tag");

    if (span_is(ta->value, "rsa-sha256"))
        s->alg = DKIM_RSA_SHA256;
    else if (span_is(ta->value, "ed25519-sha256"))
        s->alg = DKIM_ED25519_SHA256;
    else if (span_is(ta->value, "rsa-sha1"))
        return perm(s, "rsa-sha1 is not accepted (RFC 8301)");
    else
        return perm(s, "unsupported algorithm a=");
    s->r.algorithm = alg_name(s->alg);

    int rc = b64_decode(tb->value, &s->b, &s->b_len);
    if (rc == -2)
        return -1;
    if (rc != 0)
        return perm(s, "b= is not base64");
    if (s->b_len == 0)
        return perm(s, "b= is empty");
    unsigned char *bh;
    size_t bh_len;
    rc = b64_decode(tbh->value, &bh, &bh_len);
    if (rc == -2)
        return -1;
    if (rc != 0)
        return perm(s, "bh= is not base64");
    bool bh_ok = false;  /* compared below, once the checks are done */

    enum dkim_canon hc = DKIM_CANON_SIMPLE, bcanon = DKIM_CANON_SIMPLE;
    const char *why = NULL;
    struct span names[DKIM_MAX_SIGNED_FIELDS];
    size_t n_names = 0;
    uint64_t l = UINT64_MAX, t = 0, x = 0;
    if (tc && !parse_c(tc->value, &hc, &bcanon))
        why = "unsupported canonicalization c=";
    else if (!s->domain)
        why = "invalid d= domain";
    else if (!s->selector)
        why = "invalid s= selector";
    else if (strlen(s->selector) + strlen("._domainkey.") + strlen(s->domain) > MAX_DNS_NAME)
        why = "key name too long";
    else if ((why = parse_h(th->value, names, &n_names)) != NULL)
        ;
    else if (tl && !parse_u64(tl->value, &l))
        why = "invalid l=";
    else if (tq && !list_has(tq->value, "dns/txt"))
        why = "no supported query method q=";
    else if (tt && !parse_u64(tt->value, &t))
        why = "invalid t=";
    else if (tx && !parse_u64(tx->value, &x))
        why = "invalid x=";
    else if (tt && tx && x <= t)
        why = "x= is not after t=";  /* §3.5 x= */
    else if (tt && to_i64(t) - DKIM_CLOCK_SKEW > now)
        why = "t= is in the future";
    else if (tx && now > DKIM_CLOCK_SKEW && to_i64(x) < now - DKIM_CLOCK_SKEW)
        why = "signature expired";
    if (why) {
        free(bh);
        return perm(s, why);
    }
    if (ti) {
        char *id;
        why = parse_i(ti->value, td->value, &id, &s->i_subdomain);
        if (!why && !id) {
            free(bh);
            return -1;
        }
        if (why) {
            free(bh);
            return perm(s, why);
        }
        s->identity = id;
    } else if (asprintf(&s->identity, "@%s", s->domain) < 0) {
        s->identity = NULL;
        free(bh);
        return -1;
    }
    s->r.identity = s->identity;

    /* §6.1.3 step 1-2: the body hash, before any DNS is spent on it. */
    const struct body_hash *e = body_hash(bc, bcanon, l);
    if (!e) {
        free(bh);
        return -1;
    }
    bh_ok = bh_len == HASH_LEN && memcmp(bh, e->hash, HASH_LEN) == 0;
    free(bh);
    if (tl && l > e->total)
        return perm(s, "l= is larger than the body");  /* §3.5 l=: MUST NOT be larger */
    s->r.partial_body = tl && l < e->total;
    if (!bh_ok) {
        decide(s, DKIM_FAIL, "body hash did not verify");
        return 0;
    }

    /* The signature field with b='s value (and the FWS around it) taken out. */
    size_t cut_from = vs + tb->raw_start, cut_to = vs + tb->raw_end;
    size_t sig_len = (ve - f->start) - (cut_to - cut_from);
    char *sigf = malloc(sig_len ? sig_len : 1);
    if (!sigf)
        return -1;
    memcpy(sigf, msg + f->start, cut_from - f->start);
    memcpy(sigf + (cut_from - f->start), msg + cut_to, ve - cut_to);
    rc = header_hash(msg, F, fi, names, n_names, sigf, sig_len, hc, s->hh);
    free(sigf);
    if (rc != 0)
        return -1;
    if (asprintf(&s->key_name, "%s._domainkey.%s", s->selector, s->domain) < 0) {
        s->key_name = NULL;
        return -1;
    }
    return 0;
}

static void sig_free(struct sig *s)
{
    free(s->domain);
    free(s->selector);
    free(s->identity);
    free(s->key_name);
    free(s->b);
}

int dkim_verify_begin(const char *msg, size_t len, int64_t now, struct dkim_verify **out)
{
    *out = NULL;
    if (!msg)
        msg = "";
    struct dkim_verify *v = calloc(1, sizeof *v);
    struct fields F;
    if (!v || split_fields(msg, len, &F) != 0) {
        free(v);
        errno = ENOMEM;
        return -1;
    }
    struct body_cache bc = { .body = msg + F.body, .len = len - F.body };
    for (size_t j = 0; j < F.n && v->n < DKIM_MAX_SIGNATURES; j++) {
        if (!field_is(msg, &F.v[j], "dkim-signature", 14))
            continue;
        if (sig_check(&v->sigs[v->n++], msg, &F, j, now, &bc) != 0) {
            fields_free(&F);
            dkim_verify_free(&v);
            errno = ENOMEM;
            return -1;
        }
    }
    fields_free(&F);
    *out = v;
    return 0;
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
    return v ? v->n : 0;
}

const char *dkim_verify_key_name(const struct dkim_verify *v, size_t i)
{
    return v && i < v->n ? v->sigs[i].key_name : NULL;
}

/* What one key record made of the signature. rank: pass 3, a real key's
 * fail 2, any other error 1. */
struct outcome {
    enum dkim_result result;
    const char *reason;
    unsigned bits;
    bool testing;
    int rank;
};

static struct outcome key_error(const char *reason)
{
    return (struct outcome){ .result = DKIM_PERMERROR, .reason = reason, .rank = 1 };
}

/* The public key of p= for alg (RFC 8463 §4.2: Ed25519 is the raw 32 bytes;
 * RSA is SubjectPublicKeyInfo, or a bare RSAPublicKey as §3.6.1 words it). */
static EVP_PKEY *public_key(enum dkim_alg alg, const unsigned char *p, size_t n)
{
    if (alg == DKIM_ED25519_SHA256)
        return n == ED25519_KEY_LEN
                   ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p, n)
                   : NULL;
    if (n > (size_t)INT32_MAX)
        return NULL;
    const unsigned char *q = p;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)n);
    if (!pk || q != p + n) {
        EVP_PKEY_free(pk);
        q = p;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)n);
        if (pk && q != p + n) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
    }
    if (pk && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

/* 1: verified, 0: not, -1: out of memory. */
static int crypto_verify(EVP_PKEY *pk, enum dkim_alg alg, const unsigned char hash[HASH_LEN],
                         const unsigned char *sig, size_t sig_len)
{
    int rc;
    if (alg == DKIM_ED25519_SHA256) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (!md)
            return -1;
        rc = sig_len == ED25519_SIG_LEN && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, hash, HASH_LEN) == 1;
        EVP_MD_CTX_free(md);
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        if (!ctx)
            return -1;
        rc = EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, hash, HASH_LEN) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    return rc;
}

/* §6.1.2 steps 5-8 and §6.1.3 with one TXT record. */
static struct outcome try_key(const struct sig *s, const char *txt, size_t n)
{
    if (n > DKIM_MAX_KEY_RECORD)
        return key_error("key record too long");
    struct tag tags[MAX_TAGS];
    size_t nt;
    enum tags_status st = parse_tags(txt, n, tags, &nt);
    if (st != TAGS_OK)
        return key_error(tags_error(st, true));
    const struct tag *tv = find_tag(tags, nt, "v"), *th = find_tag(tags, nt, "h"),
                     *tk = find_tag(tags, nt, "k"), *tp = find_tag(tags, nt, "p"),
                     *ts = find_tag(tags, nt, "s"), *tt = find_tag(tags, nt, "t");
    /* §3.6.1 v=: if present, first and "DKIM1"; else the record is discarded. */
    if (tv && (tv != &tags[0] || !span_is(tv->value, "DKIM1")))
        return key_error("key record is not DKIM1");
    enum dkim_alg k = DKIM_RSA_SHA256;
    if (tk) {
        if (span_is(tk->value, "ed25519"))
            k = DKIM_ED25519_SHA256;
        else if (!span_is(tk->value, "rsa"))
            return key_error("unknown key type k=");
    }
    if (!tp)
        return key_error("key record has no p= tag");
    if (th && !list_has(th->value, "sha256"))
        return key_error("key h= does not allow sha256");  /* §6.1.2 step 6 */
    if (ts && !list_has(ts->value, "*") && !list_has(ts->value, "email"))
        return key_error("key is not for email (s=)");
    struct outcome o = { .rank = 2 };
    o.testing = tt && list_has(tt->value, "y");
    bool strict = tt && list_has(tt->value, "s");
    if (tp->value.n == 0) {
        /* §6.1.2 step 7: "treat this as a failed signature check". */
        o.result = o.testing ? DKIM_NEUTRAL : DKIM_FAIL;
        o.reason = o.testing ? "key revoked (key in testing mode)" : "key revoked";
        return o;
    }
    if (k != s->alg)
        return key_error("key type k= does not match a=");  /* step 8 */
    unsigned char *p;
    size_t p_len;
    int rc = b64_decode(tp->value, &p, &p_len);
    if (rc == -2)
        return (struct outcome){ DKIM_TEMPERROR, "out of memory", 0, false, 1 };
    if (rc != 0)
        return key_error("key p= is not base64");
    EVP_PKEY *pk = public_key(k, p, p_len);
    free(p);
    if (!pk) {
        ERR_clear_error();
        return key_error("public key data is invalid");
    }
    int bits = EVP_PKEY_get_bits(pk);
    o.bits = bits > 0 ? (unsigned)bits : 0;
    if (k == DKIM_ED25519_SHA256)
        o.bits = 256;
    if (k == DKIM_RSA_SHA256 && o.bits < DKIM_RSA_MIN_BITS) {
        EVP_PKEY_free(pk);
        return key_error("RSA key smaller than 1024 bits (RFC 8301)");
    }
    if (k == DKIM_RSA_SHA256 && o.bits > DKIM_RSA_MAX_BITS) {
        EVP_PKEY_free(pk);
        return key_error("RSA key larger than 8192 bits");
    }
    if (strict && s->i_subdomain) {
        EVP_PKEY_free(pk);
        return key_error("i= is a subdomain of d= but the key has t=s");
    }
    rc = crypto_verify(pk, k, s->hh, s->b, s->b_len);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (rc < 0)
        return (struct outcome){ DKIM_TEMPERROR, "out of memory", 0, false, 1 };
    if (rc == 1) {
        o.result = DKIM_PASS;
        o.reason = "verified";
        o.rank = 3;
    } else {
        o.result = o.testing ? DKIM_NEUTRAL : DKIM_FAIL;
        o.reason = o.testing ? "signature did not verify (key in testing mode)"
                             : "signature did not verify";
    }
    return o;
}

void dkim_verify_key(struct dkim_verify *v, size_t i, const char *const *txt,
                     const size_t *txt_len, size_t n_txt, enum dkim_dns dns)
{
    if (!v || i >= v->n || !v->sigs[i].key_name)
        return;
    struct sig *s = &v->sigs[i];
    if (dns == DKIM_DNS_NXDOMAIN || (dns == DKIM_DNS_OK && (n_txt == 0 || !txt))) {
        decide(s, DKIM_PERMERROR, "no key record");  /* §6.1.2 step 3 */
        return;
    }
    if (dns != DKIM_DNS_OK) {
        decide(s, DKIM_TEMPERROR, "key lookup failed temporarily");  /* step 2 */
        return;
    }
    /* Step 4: with several records, try each; the best outcome counts. */
    struct outcome best = { .rank = 0 };
    for (size_t k = 0; k < n_txt && k < DKIM_MAX_KEY_RECORDS; k++) {
        if (!txt[k])
            continue;
        size_t n = txt_len ? txt_len[k] : strnlen(txt[k], DKIM_MAX_KEY_RECORD + 1);
        struct outcome o = try_key(s, txt[k], n);
        if (o.rank > best.rank)
            best = o;
        if (o.result == DKIM_PASS)
            break;
    }
    if (best.rank == 0)
        best = key_error("no key record");
    s->r.key_bits = best.bits;
    s->r.testing = best.testing;
    decide(s, best.result, best.reason);
}

const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
    return v && i < v->n ? &v->sigs[i].r : NULL;
}

void dkim_verify_free(struct dkim_verify **v)
{
    if (!*v)
        return;
    for (size_t i = 0; i < (*v)->n; i++)
        sig_free(&(*v)->sigs[i]);
    free(*v);
    *v = NULL;
}
