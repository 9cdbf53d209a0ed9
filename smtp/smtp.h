/*
 * smtp.h — the SMTP server (RFC 5321): MX on port 25, submission with
 * STARTTLS on 587 and implicit TLS on 465 (RFC 8314), local delivery into
 * the store and outbound recipients into the store's queue.
 *
 * The parser half (command lines, paths, parameters) is pure: no I/O, hard
 * limits, unit-tested and fuzzed on its own.
 */
#ifndef PETREL_SMTP_H
#define PETREL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

/*
 * Starts every SMTP listener the config enables (smtp, submission,
 * submissions). Returns 0, or -1 with err naming the listener.
 */
int smtp_start(struct server *srv, struct store *store, char *err, size_t errlen);

/* ------------------------------------------------------------- parser */

/* RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets. */
#define SMTP_MAX_LOCAL 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256

enum smtp_verb {
    SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT, SMTP_RSET,
    SMTP_NOOP, SMTP_QUIT, SMTP_HELP, SMTP_VRFY, SMTP_EXPN, SMTP_STARTTLS, SMTP_AUTH,
    SMTP_UNKNOWN
};

/*
 * Splits a command line (without CRLF) into its verb and the argument text
 * after one or more spaces. *args points into line ("" when none).
 */
enum smtp_verb smtp_parse_verb(const char *line, size_t len, const char **args,
                               size_t *args_len);

/*
 * A parsed Path. A source route (@a,@b:) is parsed and dropped (§4.1.2:
 * never used to relay). address is the mailbox as local@domain with a
 * quoted local part kept quoted, or "" for the null path.
 */
struct smtp_path {
    char address[SMTP_MAX_PATH + 1];
    size_t local_len;     /* bytes of the local part in address */
    bool null;            /* "<>" */
    bool postmaster;      /* "<Postmaster>" with no domain (§4.5.1) */
    bool utf8;            /* holds non-ASCII (RFC 6531) */
};

/* MAIL FROM parameters we support (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531, RFC 4954 AUTH). */
struct smtp_mail_params {
    bool has_size;
    uint64_t size;
    bool body_8bit;
    bool smtputf8;
};

enum smtp_arg_error {
    SMTP_ARG_OK,
    SMTP_ARG_SYNTAX,        /* no "FROM:"/"TO:", junk after the path: 501 5.5.4 */
    SMTP_ARG_PATH,          /* the path is not a Path per RFC 5321 §4.1.2 */
    SMTP_ARG_TOOLONG,       /* over a §4.5.3.1 limit */
    SMTP_ARG_NONASCII,      /* UTF-8 but no SMTPUTF8: 553 5.6.7 (RFC 6531 §3.7.4.2) */
    SMTP_ARG_PARAM_SYNTAX,  /* malformed parameter: 501 5.5.4 */
    SMTP_ARG_PARAM_UNKNOWN, /* parameter not implemented: 555 5.5.4 (§4.1.1.11) */
};

/* Parses the argument of MAIL: "FROM:<path> [params]". The null path is allowed. */
enum smtp_arg_error smtp_parse_mail(const char *args, size_t len, struct smtp_path *path,
                                    struct smtp_mail_params *params);
/* Parses the argument of RCPT: "TO:<path>". No parameters are supported. */
enum smtp_arg_error smtp_parse_rcpt(const char *args, size_t len, bool smtputf8,
                                    struct smtp_path *path);

/*
 * Checks the argument of EHLO/HELO: a domain or an address literal.
 * RFC 5321 §4.1.1.1.
 */
bool smtp_valid_helo(const char *s, size_t len);

/*
 * The DATA decoder (RFC 5321 §4.5.2): removes the dot-stuffing and finds
 * the end, <CRLF>.<CRLF>. Nothing else ends the data: a bare LF never
 * starts a line, so "\n.\r\n" or "\r\n.\n" cannot end it early. Bare CR
 * and bare LF are passed through and flagged in bare_eol, so the caller
 * can refuse the message (SMTP smuggling). Start zeroed.
 */
enum smtp_data_state { SMTP_DS_BOL, SMTP_DS_TEXT, SMTP_DS_CR, SMTP_DS_DOT, SMTP_DS_DOT_CR };
struct smtp_data_decoder {
    enum smtp_data_state state;
    bool bare_eol;
};
typedef void (*smtp_data_sink)(void *arg, const char *p, size_t n);
/*
 * Decodes p[0..n), handing the message bytes to sink. Returns the bytes
 * consumed: all of them, or up to and including the final LF when *done.
 */
size_t smtp_data_decode(struct smtp_data_decoder *d, const char *p, size_t n,
                        smtp_data_sink sink, void *arg, bool *done);

/* --------------------------------------------------------------- DKIM */
/*
 * DKIM (RFC 6376) signing and verification with rsa-sha256 and
 * ed25519-sha256 (RFC 8463), on OpenSSL (smtp/dkim.c, smtp/dkim-canon.c;
 * docs/dkim.md). Pure code: no I/O, no DNS, no clock, no global state, so
 * every function may run on any thread (body hashing of a large message
 * belongs on the thread pool, not the loop). The caller looks key records
 * up asynchronously and hands them in.
 *
 * Messages are the bytes as sent, lines ended by CRLF. A bare LF is read as
 * a line end (as if the message had been converted to CRLF); a bare CR is an
 * ordinary byte.
 */

#define DKIM_MAX_SIGNATURES 8          /* evaluated per message, from the top; the rest ignored */
#define DKIM_MAX_SIG_FIELD 16384       /* bytes of one DKIM-Signature field: longer is permerror */
#define DKIM_MAX_SIGNED_FIELDS 128     /* names in h= */
#define DKIM_MAX_KEY_RECORD 8192       /* bytes of one key TXT record */
#define DKIM_MAX_KEY_RECORDS 4         /* TXT records tried per key name */
#define DKIM_RSA_MIN_BITS 1024         /* RFC 8301 §3.2: smaller keys are never valid */
#define DKIM_RSA_MAX_BITS 8192         /* larger keys are not verified */
#define DKIM_RSA_SIGN_MAX_BITS 4096    /* RFC 8301: verifiers need not go further */
#define DKIM_RSA_GENERATE_BITS 2048
#define DKIM_CLOCK_SKEW 300            /* seconds of tolerance for t= and x= */

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

/* Canonicalizations (RFC 6376 §3.4). Relaxed is 0: the default of options. */
enum dkim_canon { DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE };

/* ---- canonicalization, public for the tests and for ARC (RFC 8617) later */

typedef void (*dkim_sink)(void *arg, const char *p, size_t n);

/*
 * Canonicalizes one header field, field[0, len) from its name to its last
 * line end (the line end may be missing), handing the output to sink in
 * pieces. The output ends with CRLF when crlf is true, else without one (the
 * signature's own field, §3.7). Relaxed (§3.4.2): name lowercased, unfolded,
 * runs of WSP made one SP, WSP around the colon and at the end removed.
 * Simple (§3.4.1): unchanged but for line ends written as CRLF.
 */
void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, bool crlf,
                       dkim_sink sink, void *arg);

/*
 * Canonicalizes a body, body[0, len) (what follows the empty line), handing
 * the output to sink in pieces of at most a few KiB. Returns the output
 * length. Simple (§3.4.3): empty lines at the end removed, a missing final
 * CRLF added, an empty body is CRLF. Relaxed (§3.4.4): also WSP at line ends
 * removed and runs of WSP made one SP; an empty body stays empty.
 */
uint64_t dkim_canon_body(enum dkim_canon c, const char *body, size_t len, dkim_sink sink,
                         void *arg);

/* ------------------------------------------------------------ signing */

struct dkim_key;  /* a private key with its domain (d=), selector (s=) and algorithm */

/*
 * Loads a PEM private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE
 * KEY", unencrypted): RSA of DKIM_RSA_MIN_BITS..DKIM_RSA_SIGN_MAX_BITS bits,
 * or Ed25519. domain and selector must be ASCII DNS names. Returns 0, or -1
 * with a sentence in err.
 */
int dkim_key_load(const char *pem, size_t len, const char *domain, const char *selector,
                  struct dkim_key **out, char *err, size_t errlen);
void dkim_key_free(struct dkim_key **k);
enum dkim_alg dkim_key_alg(const struct dkim_key *k);
unsigned dkim_key_bits(const struct dkim_key *k);  /* RSA modulus bits; 256 for Ed25519 */

/*
 * The TXT record that publishes k's public key at
 * selector._domainkey.domain: "v=DKIM1; k=rsa; p=..." (k=ed25519 for
 * Ed25519). One string: split it into character-strings of at most 255
 * bytes for the zone file. Malloc'd; NULL when out of memory.
 */
char *dkim_key_txt_record(const struct dkim_key *k);

/*
 * Makes a new private key (RSA of DKIM_RSA_GENERATE_BITS bits, or Ed25519):
 * *pem is the PKCS#8 PEM to store (readable by dkim_key_load), *txt_record
 * its TXT record as dkim_key_txt_record gives it. Both malloc'd. Returns 0,
 * or -1 (out of memory or OpenSSL failure). RSA generation takes a while:
 * not on the loop thread.
 */
int dkim_key_generate(enum dkim_alg alg, char **pem, char **txt_record);

/* Signing options; NULL or zeroed for the defaults. */
struct dkim_sign_opts {
    /* Field names for h=, in order; a name given more often than the message
     * has that field signs its absence (oversigning). Must include From.
     * NULL: every field of the default set (docs/dkim.md) that the message
     * has, as often as it has it, then From once more. */
    const char *const *headers;
    size_t n_headers;
    int64_t expire;  /* > 0: x= is t= plus this many seconds */
};

/*
 * Signs msg[0, len) (the message as it will be sent, CRLF lines) with
 * relaxed/relaxed canonicalization, t= now. *field is a complete
 * "DKIM-Signature: ..." header field, folded, ending in CRLF, *field_len
 * bytes (malloc'd, NUL-terminated): prepend it to the message. Returns 0,
 * or -1 with errno EINVAL (no From field, h= without From, a message that
 * begins with whitespace, now < 0) or ENOMEM (or EIO: OpenSSL failed).
 */
int dkim_sign(const struct dkim_key *k, const char *msg, size_t len, int64_t now,
              const struct dkim_sign_opts *opts, char **field, size_t *field_len);

/* ---------------------------------------------------------- verifying */

/* Results as Authentication-Results names them (RFC 8601 §2.7.1). */
enum dkim_result {
    DKIM_NONE,        /* no signature */
    DKIM_PASS,
    DKIM_FAIL,        /* body hash or signature did not verify, key revoked */
    DKIM_NEUTRAL,     /* would have failed, but the key says t=y (testing) */
    DKIM_TEMPERROR,   /* key lookup failed for now (or was never done) */
    DKIM_PERMERROR,   /* unusable signature or key: syntax, unsupported, expired, no key */
};

/* "none", "pass", "fail", "neutral", "temperror", "permerror". */
const char *dkim_result_name(enum dkim_result r);

/* The outcome of one signature. Strings belong to the dkim_verify. */
struct dkim_sig_result {
    enum dkim_result result;
    const char *reason;     /* short English text for logs and the AR comment */
    const char *domain;     /* d= ("" when missing or invalid): header.d */
    const char *selector;   /* s= (""): header.s */
    const char *identity;   /* i= decoded, "@" d= when absent (""): header.i */
    const char *algorithm;  /* "rsa-sha256", "ed25519-sha256" (""): header.a */
    char b_prefix[9];       /* the first 8 characters of b=: header.b (RFC 6008) */
    unsigned key_bits;      /* size of the key that decided, 0 when none */
    bool testing;           /* the key record has t=y */
    bool partial_body;      /* l= left bytes at the end of the body unsigned */
};

/* DNS outcome of a key lookup. */
enum dkim_dns { DKIM_DNS_OK, DKIM_DNS_NXDOMAIN, DKIM_DNS_TEMPFAIL };

struct dkim_verify;  /* every DKIM-Signature of one message, parsed and hashed */

/*
 * Parses every DKIM-Signature field of msg[0, len) (the first
 * DKIM_MAX_SIGNATURES from the top), checks each, computes its body hash
 * and header hash. now is the time of reception (for t= and x=). msg need
 * not stay valid afterwards. Returns 0, or -1 when out of memory: the
 * message itself never makes it fail.
 */
int dkim_verify_begin(const char *msg, size_t len, int64_t now, struct dkim_verify **out);
size_t dkim_verify_count(const struct dkim_verify *v);

/*
 * The DNS name whose TXT records signature i needs,
 * "selector._domainkey.domain", or NULL when i is already decided (syntax
 * error, bad body hash, expired ..., or its key was given).
 */
const char *dkim_verify_key_name(const struct dkim_verify *v, size_t i);

/*
 * Hands in the lookup of dkim_verify_key_name(v, i): when dns is
 * DKIM_DNS_OK, the n_txt TXT records, each its character-strings joined
 * without separators (§3.6.2.2), txt_len[k] bytes long (txt_len NULL: each
 * NUL-terminated). Decides signature i; ignored when i is already decided.
 */
void dkim_verify_key(struct dkim_verify *v, size_t i, const char *const *txt,
                     const size_t *txt_len, size_t n_txt, enum dkim_dns dns);

/* The outcome of signature i (temperror "key not looked up" while undecided). */
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i);
void dkim_verify_free(struct dkim_verify **v);

#endif
