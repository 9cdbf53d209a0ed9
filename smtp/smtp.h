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

/* ---------------------------------------------------------------- SPF */
/*
 * SPF (RFC 7208) check_host() as a state machine the caller drives with DNS
 * answers (smtp/spf.c; docs/spf-dmarc.md). No I/O, no clock, no global
 * state: the caller asks spf_want() what to look up, looks it up (core's
 * dns_query(), or a table in the tests) and hands the answer to
 * spf_answer(), until spf_want() says NULL. Then spf_result() is final.
 * The lookups come one at a time, in the order RFC 7208 evaluates them.
 *
 *     struct spf *s;
 *     spf_begin(client_ip, mail_from, helo, false, &s);
 *     while ((name = spf_want(s, &type)))
 *         spf_answer(s, <the answer of dns_query(dns, name, type, ...)>);
 *     res = spf_result(s, &explanation);
 *
 * The caller bounds the whole check in time (§4.6.4: at least 20 s): when
 * its timer fires, it answers the pending lookup with DNS_TIMEOUT, which
 * ends the check with temperror.
 */

#define SPF_MAX_DNS_TERMS 10     /* include a mx ptr exists redirect (§4.6.4): more is permerror */
#define SPF_MAX_VOID_LOOKUPS 2   /* NXDOMAIN/NODATA answers to terms (§4.6.4): more is permerror */
#define SPF_MAX_MX_NAMES 10      /* MX names of one "mx" (§4.6.4): more is permerror */
#define SPF_MAX_PTR_NAMES 10     /* PTR names used by "ptr" and %{p} (§4.6.4): the rest ignored */
#define SPF_MAX_DEPTH 10         /* nested include/redirect records (the term limit binds first) */
#define SPF_MAX_EXPANSION 8192   /* bytes of one macro expansion before truncation: more is permerror */
#define SPF_MAX_EXPLANATION 512  /* bytes of an exp= explanation kept (the rest cut) */
#define SPF_MAX_SENDER 512       /* bytes of the sender address spf_begin() takes */

/* Results as RFC 7208 §2.6 and RFC 8601 §2.7.2 name them. */
enum spf_result {
    SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_TEMPERROR, SPF_PERMERROR
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *spf_result_name(enum spf_result r);

struct spf;  /* one check_host() evaluation */

/*
 * Starts check_host() for the client address ip (IPv4 or IPv6 text; an
 * IPv4-mapped IPv6 address is checked as the IPv4 address, §5) and the
 * identity: the MAIL FROM address sender (without <>; "" or NULL for the
 * null path, which checks "postmaster@" helo, §2.4), or with helo_identity
 * the HELO/EHLO name helo (§2.3). A sender without a local part gets
 * "postmaster" (§4.3). A domain that is not a multi-label DNS name (an
 * address literal, a bad label) gives none at once (§4.3); UTF-8 labels
 * are turned into A-labels first. Returns 0, or -1 with errno EINVAL (ip is
 * not an address, sender longer than SPF_MAX_SENDER) or ENOMEM.
 */
int spf_begin(const char *ip, const char *sender, const char *helo, bool helo_identity,
              struct spf **out);

/*
 * The values of the macros only exp= may use (§7.3): "r", the name of the
 * host doing the check ("unknown" until set), and "t", the time (0 until
 * set). Call before the answers come in.
 */
void spf_set_receiver(struct spf *s, const char *hostname, int64_t now);

/*
 * The lookup the check needs next: the name (no trailing dot) and *type;
 * for DNS_PTR the name is the client address as text, as dns_query() takes
 * it. NULL when the check is finished. The string is valid until the next
 * call of spf_answer() or spf_free().
 */
const char *spf_want(const struct spf *s, enum dns_type *type);

/*
 * The answer to the lookup spf_want() named (r is read during the call
 * only). DNS_OK: the records; DNS_NXDOMAIN, DNS_NODATA: none (a "void
 * lookup" where a term asked); DNS_TEMPFAIL, DNS_TIMEOUT, DNS_CANCELLED:
 * temperror (except where §5.5 says to ignore errors: ptr and %{p});
 * DNS_BADNAME: as NXDOMAIN. Ignored when nothing is wanted.
 */
void spf_answer(struct spf *s, const struct dns_result *r);

/*
 * The result: final once spf_want() is NULL, temperror before. With a fail
 * and a usable exp= (§6.2), *explanation is the expanded text (printable
 * ASCII, at most SPF_MAX_EXPLANATION bytes) for the 550 reply, else NULL.
 * explanation may be NULL. The string belongs to s.
 */
enum spf_result spf_result(const struct spf *s, const char **explanation);

/* Why, in a few English words, for logs and the Authentication-Results comment. */
const char *spf_detail(const struct spf *s);

/*
 * The <domain> checked: the MAIL FROM domain, or the HELO name for the null
 * path or helo_identity; ASCII, no trailing dot. DMARC aligns with it.
 */
const char *spf_domain(const struct spf *s);

/*
 * The RFC 8601 property of the identity checked, "smtp.mailfrom" (with the
 * MAIL FROM address in *value) or "smtp.helo" (the HELO name: null path or
 * helo_identity).
 */
const char *spf_identity(const struct spf *s, const char **value);

void spf_free(struct spf **s);

/* ---- the parsers, public for the tests and the fuzz target */

/*
 * Checks one TXT record: 1 when it is not an SPF record (does not begin
 * with "v=spf1" then a space or its end, §4.5), 0 when it is a valid one,
 * -1 when it is one with a syntax error (§4.6: permerror; why says where).
 */
int spf_record_check(const char *txt, size_t len, char *why, size_t whylen);

/* What a macro-string is expanded for (§7). */
enum spf_macro_use {
    SPF_MACRO_DOMAIN,  /* a domain-spec: "c", "r", "t" are errors; over 253 bytes,
                          labels are dropped from the left (§7.3) */
    SPF_MACRO_EXP,     /* an explain-string: every letter, spaces allowed */
};

/* The values of the macro letters (§7.3); strings as check_host() has them. */
struct spf_macro_vars {
    const char *sender;    /* "s": local@domain ("l" and "o" are its parts) */
    const char *domain;    /* "d" */
    const char *ip;        /* "i", "c", "v": the client address as text */
    const char *helo;      /* "h" */
    const char *ptr;       /* "p": the validated name, NULL for "unknown" */
    const char *receiver;  /* "r": NULL for "unknown" */
    int64_t now;           /* "t" */
};

/*
 * Expands the macro-string spec[0, len) (RFC 7208 §7.1, §7.3) into out
 * (NUL-terminated, outlen bytes). Returns the length, or -1 on a syntax
 * error, -2 when the result does not fit (or passes SPF_MAX_EXPANSION), -3
 * when v->ip is not an address.
 */
int spf_macro_expand(const char *spec, size_t len, enum spf_macro_use use,
                     const struct spf_macro_vars *v, char *out, size_t outlen);

/*
 * A domain in ASCII: labels with bytes >= 0x80 (UTF-8) become A-labels
 * (RFC 3492 Punycode; ASCII letters lowercased, no other IDNA2008 mapping),
 * other labels are copied; one trailing dot is dropped. Returns the length,
 * or -1 (invalid UTF-8, a label or the name too long for outlen or DNS).
 */
int smtp_domain_ascii(const char *domain, char *out, size_t outlen);

/* -------------------------------------------------------------- DMARC */
/*
 * DMARC (RFC 7489, with np= of RFC 9091): the author domain of a message,
 * policy record discovery, identifier alignment and the policy to apply, as
 * a state machine driven with DNS answers like SPF's (smtp/dmarc.c;
 * docs/spf-dmarc.md). Pure but for dmarc_psl_load(), which reads a file.
 */

#define DMARC_PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"  /* Debian: publicsuffix */
#define DMARC_MAX_RECORD DNS_MAX_TXT
#define DMARC_MAX_FROM_TOKENS 512   /* tokens of one mailbox in From: more is invalid */

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };
enum dmarc_align { DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT };

/* "none", "pass", "fail", "temperror", "permerror". */
const char *dmarc_result_name(enum dmarc_result r);
/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

/* ---- the Public Suffix List and organizational domains (§3.2) */

struct dmarc_psl;

/*
 * Reads the Public Suffix List file at path (NULL: DMARC_PSL_PATH). File
 * I/O: call at start-up, not on the loop. Returns 0, or -1 with a line in
 * err (no such file: errno ENOENT).
 */
int dmarc_psl_load(const char *path, struct dmarc_psl **out, char *err, size_t errlen);
/* The same from text in memory (the list's format). NULL when out of memory. */
struct dmarc_psl *dmarc_psl_parse(const char *text, size_t len);
size_t dmarc_psl_rules(const struct dmarc_psl *psl);
void dmarc_psl_free(struct dmarc_psl **psl);

/*
 * The organizational domain of domain (ASCII, any case, one trailing dot
 * allowed) into out, lowercase: its public suffix plus one label (§3.2;
 * the list's wildcard and exception rules; no rule: the last label). A
 * public suffix itself is its own organizational domain. psl NULL: the
 * last two labels. Returns its length, or -1 (not a domain, outlen short).
 */
int dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t outlen);

/* ---- the RFC5322.From domain (§6.6.1) */

enum dmarc_from {
    DMARC_FROM_OK,
    DMARC_FROM_MISSING,           /* no From field */
    DMARC_FROM_MULTIPLE,          /* more than one From field */
    DMARC_FROM_MULTIPLE_DOMAINS,  /* one From field, mailboxes of different domains */
    DMARC_FROM_INVALID,           /* no mailbox, or one without a DNS domain */
};

/*
 * The author domain of the message msg[0, len) (its header is read up to
 * the first empty line): the domain of the mailboxes of its one From field,
 * lowercase ASCII (UTF-8 labels as A-labels) in domain (DNS_NAME_MAX + 1
 * bytes is enough). Several mailboxes of one domain are fine; anything else
 * is not OK, and the session treats the message as a DMARC permerror.
 */
enum dmarc_from dmarc_from_domain(const char *msg, size_t len, char *domain, size_t domainlen);

/* ---- policy records (§6.3, §6.4) */

/* A parsed record. The strings point into the text parsed. */
struct dmarc_record {
    enum dmarc_policy p, sp, np;
    bool has_sp, has_np;        /* else p applies to subdomains (np: sp, then p) */
    bool p_assumed;             /* p missing or invalid, a valid rua=: p=none (§6.6.3 6.1) */
    enum dmarc_align adkim, aspf;
    unsigned pct;               /* 0..100, default 100 */
    unsigned ri;                /* seconds, default 86400 */
    unsigned fo;                /* DMARC_FO_* bits, default DMARC_FO_0 */
    const char *rua, *ruf;      /* the raw URI lists (parsed, not used yet), or NULL */
    size_t rua_len, ruf_len;
    unsigned n_rua, n_ruf;      /* syntactically valid URIs in each */
};
#define DMARC_FO_0 0x1u
#define DMARC_FO_1 0x2u
#define DMARC_FO_D 0x4u
#define DMARC_FO_S 0x8u

enum dmarc_record_status {
    DMARC_RECORD_OK,
    DMARC_RECORD_NOT_DMARC,  /* does not begin with "v=DMARC1": not a DMARC record */
    DMARC_RECORD_INVALID,    /* a DMARC record without a usable p= or sp= (and no rua=) */
};

/*
 * Parses one TXT record txt[0, len) (§6.4). Unknown tags are ignored, other
 * invalid values take their defaults (§6.3); a repeated tag: the first
 * counts. rec is set when the result is DMARC_RECORD_OK.
 */
enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len,
                                            struct dmarc_record *rec);

/* ---- evaluation */

/* One DKIM signature's outcome, as dkim_verify_result() gives it. */
struct dmarc_dkim {
    const char *domain;        /* d= */
    enum dkim_result result;
};

struct dmarc_input {
    const char *from_domain;          /* from dmarc_from_domain() */
    enum spf_result spf;              /* SPF of the MAIL FROM identity (§4.1) */
    const char *spf_domain;           /* spf_domain(): MAIL FROM's, HELO for the null path */
    const struct dmarc_dkim *dkim;    /* every signature verified */
    size_t n_dkim;
    const struct dmarc_psl *psl;      /* NULL: last two labels (docs/spf-dmarc.md) */
    uint32_t sample;                  /* random: pct= applies when sample % 100 < pct */
};

struct dmarc;

/*
 * Starts the evaluation. Strings are copied; psl is used during the call
 * only. A from_domain that is not a DNS name ends at once with permerror.
 * Returns 0, or -1 with errno ENOMEM (EINVAL: in or from_domain NULL).
 */
int dmarc_begin(const struct dmarc_input *in, struct dmarc **out);

/* The next lookup (always DNS_TXT of _dmarc.<domain>, or for np= the
 * author domain's A, AAAA, MX), NULL when finished. Valid until the next
 * dmarc_answer() or dmarc_free(). */
const char *dmarc_want(const struct dmarc *d, enum dns_type *type);

/* The answer to dmarc_want()'s lookup. */
void dmarc_answer(struct dmarc *d, const struct dns_result *r);

/* What came out. Strings belong to the struct dmarc. */
struct dmarc_outcome {
    enum dmarc_result result;
    enum dmarc_policy policy;        /* what to do now: after pct, none unless fail */
    enum dmarc_policy requested;     /* the record's p, sp or np that applied (fail only) */
    const char *policy_tag;          /* "p", "sp", "np", or "" */
    bool sampled_out;                /* pct= lowered requested to policy */
    bool spf_aligned, dkim_aligned;  /* an aligned pass of each */
    const char *dkim_domain;         /* the aligned passing d=, or "" */
    const char *from_domain;         /* header.from */
    const char *org_domain;          /* of from_domain */
    const char *record_domain;       /* where the record was found, or "" */
    const struct dmarc_record *record;  /* NULL without one */
    const char *reason;              /* a few English words */
};

/* The outcome: final once dmarc_want() is NULL (temperror before). out may be NULL. */
enum dmarc_result dmarc_result(const struct dmarc *d, struct dmarc_outcome *out);
void dmarc_free(struct dmarc **d);

/* ---- Authentication-Results (RFC 8601) */

struct authres_input {
    const char *authserv_id;                /* the server's hostname */
    const struct spf *spf;                  /* NULL: no spf= */
    const struct dkim_sig_result *dkim;     /* copies of dkim_verify_result() */
    size_t n_dkim;
    bool dkim_checked;                      /* false: no dkim=; with n_dkim 0: dkim=none */
    const struct dmarc *dmarc;              /* NULL: no dmarc= */
};

/*
 * The value of an Authentication-Results field, malloc'd, NULL when out of
 * memory:
 *
 *   mail.example.net;
 *  	spf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=a@example.org;
 *  	dkim=pass (signature verified) header.d=example.org header.s=sel header.b="AbC/12+x";
 *  	dmarc=pass (p=reject dis=none) header.from=example.org
 *
 * (each method on its own line: CRLF and a tab between them; "host; none"
 * when there is none). Values are RFC 2045 tokens, or addresses, as they
 * are, else quoted strings (RFC 8601 §2.2); CR, LF and other controls are
 * dropped everywhere. Write "Authentication-Results: " before it and CRLF
 * after it.
 */
char *authres_value(const struct authres_input *in);

#endif
