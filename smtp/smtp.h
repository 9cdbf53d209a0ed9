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

struct dmarc_psl;

/*
 * Starts every SMTP listener the config enables (smtp, submission,
 * submissions). dns is the resolver of the MX's SPF, DKIM and DMARC checks
 * ([checks] mode; NULL: no checks), psl the Public Suffix List for DMARC
 * (NULL: the last two labels, docs/spf-dmarc.md); both must outlive every
 * SMTP connection. Returns 0, or -1 with err naming the listener.
 */
int smtp_start(struct server *srv, struct store *store, struct dns *dns,
               const struct dmarc_psl *psl, char *err, size_t errlen);

/* -------------------------------------------------------- outbound relay */

/*
 * The queue runner (relay.c, docs/relay.md): delivers the store's queue to
 * the destinations' MX hosts, or to [relay] host, with DKIM signatures,
 * retries and bounces. dns and store must outlive it. relay_stop before
 * server_stop and store_close: deliveries under way are cut (their rows
 * stay due), a job in a store or pool step finishes it, and the runner
 * frees itself once the loop has run.
 */
struct relay;
int relay_start(struct server *srv, struct store *store, struct dns *dns, struct relay **out);
void relay_stop(struct relay **r);
/* The wait before try failures+1, after failures failed tries (1 or more):
 * retry_min doubled each time, at most retry_max. */
unsigned relay_retry_delay(unsigned retry_min, unsigned retry_max, unsigned failures);

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

/* ---------------------------------------------------------------- DSN */
/*
 * Delivery status notifications, the bounces and delay notices of the
 * outbound relay (RFC 3464 in an RFC 6522 multipart/report, RFC 6533 for
 * UTF-8 addresses; smtp/dsn.c, docs/bounces.md). Pure code: no I/O, no
 * clock (every time comes in the report), no global state; any thread.
 *
 * The caller sends the result with the null reverse-path MAIL FROM:<>
 * (RFC 5321 §4.5.5) to envelope_from, with BODY=8BITMIME when it holds
 * 8-bit bytes and SMTPUTF8 when envelope_from is not ASCII. It never
 * builds one for a message whose own envelope sender is null: that is how
 * bounce loops are avoided (dsn_build refuses it).
 */

#define DSN_MAX_RETURN (1024 * 1024)  /* originals larger are returned headers only */
#define DSN_MAX_DIAGNOSTIC 4096       /* bytes of one diagnostic quoted; the rest cut */

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

/* One recipient's outcome (RFC 3464 §2.3). Strings are read during the call only. */
struct dsn_rcpt {
    const char *rcpt;          /* the envelope recipient as given in RCPT TO, without <> */
    const char *orcpt;         /* the ORCPT parameter as received (RFC 3461 §4.2:
                                * "rfc822;bob+2Bx@example.org", xtext; RFC 6533
                                * utf-8 with \x{..}), or NULL. Without a ';' it is
                                * taken as a plain rfc822 address. */
    enum dsn_action action;
    const char *status;        /* enhanced status "5.1.1" (RFC 3463); NULL: 5.0.0
                                * for failed, 4.0.0 delayed, 2.0.0 otherwise */
    const char *remote_mta;    /* the MX host that answered, NULL when none did */
    const char *diagnostic;    /* the remote reply ("550 5.1.1 <x@y>: no such user",
                                * lines of a multi-line reply separated by CRLF), or
                                * our own words when no server answered; NULL: none */
    int64_t last_attempt;      /* unix time, 0 = none */
    int64_t will_retry_until;  /* DSN_DELAYED: unix time we give up, 0 = unknown */
};

struct dsn_report {
    const char *reporting_mta;  /* our hostname (ASCII) */
    const char *postmaster;     /* From: of the DSN, "MAILER-DAEMON@mail.example.test" */
    const char *envelope_from;  /* the original's envelope sender: To: of the DSN */
    const char *envelope_id;    /* the ENVID parameter as received (xtext), or NULL */
    int64_t arrival_date;       /* when we received the original, unix time, 0 = unknown */
    int64_t now;                /* Date: of the DSN, unix time */
    const struct dsn_rcpt *rcpts;
    size_t n_rcpts;             /* at least 1 */
    const char *original;       /* the original message (CRLF lines), or NULL: no part 3 */
    size_t original_len;
    bool headers_only;          /* RET=HDRS; also when original_len > DSN_MAX_RETURN */
};

/*
 * Builds the whole DSN message: RFC 5322 header (From "Mail Delivery
 * System" <postmaster>, To <envelope_from>, Subject, Date from now in UTC,
 * Message-ID, Auto-Submitted: auto-replied, MIME-Version) and a
 * multipart/report; report-type=delivery-status body of three parts: a
 * text/plain; charset=utf-8 explanation, the message/delivery-status (or
 * message/global-delivery-status when an address is not ASCII), and the
 * original as message/rfc822 (message/global) or its header alone as
 * text/rfc822-headers (message/global-headers). The original's bare CR and
 * LF become CRLF. CR, LF and control characters in every input string are
 * made spaces, so no input can add a header line. Lines end in CRLF; the
 * result is malloc'd, NUL-terminated, *out_len bytes without the NUL.
 * Returns 0, or -1 with errno EINVAL (r, out or out_len NULL; empty or null
 * envelope_from, reporting_mta or postmaster; no recipients or one without
 * rcpt; a bad action or status; a time outside years 1970-9999) or ENOMEM.
 */
int dsn_build(const struct dsn_report *r, char **out, size_t *out_len);

/*
 * The number of Received: fields in the header of msg[0, len) (up to its
 * first empty line; the field name in any case, a folded field counted
 * once). RFC 5321 §6.3: a message with too many is in a loop; docs/bounces.md.
 */
unsigned smtp_count_received(const char *msg, size_t len);

/* -------------------------------------------------------- SMTP client */
/*
 * The SMTP client protocol engine of the outbound relay (smtp/client.c;
 * docs/smtp-client.md): one connection's dialogue with one server, as a
 * state machine. No I/O, no clock, no DNS, no global state: the transport
 * (sockets, TLS, timers, DNS, choosing the MX host) asks smtpc_next() what
 * to do, does it, and reports back:
 *
 *     smtpc_new(&opts, &env, &c);                 the greeting is awaited
 *     for (;;) switch (smtpc_next(c)) {
 *     case SMTPC_WRITE:      smtpc_output(c, &p, &n); queue p[0, n); break;
 *     case SMTPC_READ:       on each reply line: smtpc_input(c, line, len);
 *                            on timeout (smtpc_timeout_ms) or EOF:
 *                            smtpc_connection_lost(c); break;
 *     case SMTPC_START_TLS:  handshake, then smtpc_tls_done(c)
 *                            (or smtpc_tls_failed(c)); break;
 *     case SMTPC_SEND_BODY:  send the message (smtpc_body_mode), then
 *                            smtpc_body_sent(c); break;
 *     case SMTPC_QUIT_DONE:  read the results; then smtpc_reset(c, &next)
 *                            for the next message, or smtpc_quit(c); break;
 *     case SMTPC_CLOSE:      read the results, close the socket, smtpc_free.
 *     }
 *
 * Every string handed in is copied: opts, envelopes and lines need stay
 * valid only during the call. Strings handed out belong to the engine.
 */

#define SMTPC_MAX_LINE 4096          /* bytes of one reply line (RFC 5321 §4.5.3.1.5 says 512
                                        with CRLF; we are tolerant): longer is a protocol error */
#define SMTPC_MAX_REPLY_LINES 100    /* lines of one multi-line reply: more is a protocol error */
#define SMTPC_MAX_REPLY_BYTES 65536  /* bytes of one reply, all lines: more is a protocol error */
#define SMTPC_MAX_TEXT 1024          /* bytes of reply text kept in a result (the rest cut) */
#define SMTPC_MAX_RCPTS 1000         /* recipients of one envelope */
#define SMTPC_MAX_SECRET 512         /* bytes of auth_user and of auth_pass */

enum smtpc_tls {
    SMTPC_TLS_NONE,           /* never STARTTLS */
    SMTPC_TLS_OPPORTUNISTIC,  /* STARTTLS when offered; plain text when not, or when refused */
    SMTPC_TLS_REQUIRED,       /* STARTTLS or nothing: tempfail 4.7.4 when not offered or refused */
};

struct smtpc_opts {
    const char *helo;          /* our hostname for EHLO/HELO (smtp_valid_helo) */
    enum smtpc_tls starttls;   /* ignored when tls_active */
    bool tls_active;           /* implicit TLS (port 465): the connection is TLS already */
    /* The last host the runner will try for these recipients (the last MX,
     * or the smarthost). A 5xx greeting or EHLO/HELO refusal is about this
     * host, not the message: it is permanent only here; elsewhere it is a
     * tempfail so the runner tries the next MX (RFC 5321 §3.1, §5.1). */
    bool last_mx;
    /* Smarthost AUTH (RFC 4954); NULL = no AUTH. Both or neither; over TLS
     * only (else a tempfail, never the password in clear). PLAIN with an
     * initial response, else LOGIN. Neither appears in any result. */
    const char *auth_user, *auth_pass;
};

struct smtpc_envelope {
    const char *mail_from;     /* "" for the null sender; no <> */
    const char *const *rcpts;  /* 1..SMTPC_MAX_RCPTS addresses, no <> */
    size_t n_rcpts;
    /* Message bytes: SIZE= (RFC 1870). With BDAT it is the chunk size, so it
     * must be exactly the bytes the transport sends. */
    uint64_t size;
    bool eight_bit;   /* the body has 8-bit bytes: BODY=8BITMIME when offered (RFC 6152) */
    bool smtputf8;    /* non-ASCII header fields: needs SMTPUTF8 (RFC 6531); non-ASCII
                         addresses imply it */
};

struct smtpc;

/*
 * A new engine for one connection, awaiting the server's greeting, with
 * the first message's envelope. Every address must parse as an RFC 5321
 * path (smtp_parse_mail / smtp_parse_rcpt with SMTPUTF8). Returns 0, or -1
 * with errno EINVAL (bad options or envelope) or ENOMEM.
 */
int smtpc_new(const struct smtpc_opts *o, const struct smtpc_envelope *e, struct smtpc **out);
void smtpc_free(struct smtpc **c);  /* wipes the credentials; NULL-safe */

enum smtpc_action {
    SMTPC_READ,       /* wait for the next reply line (at most smtpc_timeout_ms) */
    SMTPC_WRITE,      /* send smtpc_output()'s bytes, then ask again */
    SMTPC_START_TLS,  /* STARTTLS accepted: discard whatever was read and not yet given
                         to smtpc_input, handshake, then smtpc_tls_done() */
    SMTPC_SEND_BODY,  /* send the message as smtpc_body_mode() says, then smtpc_body_sent() */
    SMTPC_QUIT_DONE,  /* the transaction is over (success or not); results final */
    SMTPC_CLOSE,      /* close now (421, protocol error, lost, after QUIT); results final */
};
enum smtpc_action smtpc_next(struct smtpc *c);

/*
 * The bytes to send for SMTPC_WRITE: one or more CRLF-ended command lines
 * (a PIPELINING group, RFC 2920). Taking them counts as sending them: the
 * transport copies them to its write queue before any other smtpc_* call,
 * after which they are wiped (they may hold AUTH credentials). *n is 0 when
 * there is nothing to send.
 */
void smtpc_output(struct smtpc *c, const char **p, size_t *n);

/*
 * One reply line as received, without its CRLF (one trailing CR is
 * tolerated). The transport needs to buffer no more than SMTPC_MAX_LINE + 2
 * bytes: a longer line it hands in cut to SMTPC_MAX_LINE + 1 bytes, and it
 * is refused. Lines of a multi-line reply (RFC 5321 §4.2.1) come one call
 * each. Returns 0, or -1 on a malformed line, a reply over the limits, or a
 * reply when none is due: the undecided recipients become tempfail 4.5.0
 * and next() says SMTPC_CLOSE. Lines after SMTPC_CLOSE are refused (-1).
 */
int smtpc_input(struct smtpc *c, const char *line, size_t len);

/* The TLS handshake after SMTPC_START_TLS is done: EHLO again (RFC 3207 §4.2). */
void smtpc_tls_done(struct smtpc *c);
/* It failed: undecided recipients tempfail 4.7.0, next() says SMTPC_CLOSE. */
void smtpc_tls_failed(struct smtpc *c);

/*
 * How SMTPC_SEND_BODY sends the message:
 * - SMTPC_BODY_DATA: the message through smtpc_dot_encode() and
 *   smtpc_dot_end() (dot-stuffed, CRLF line ends, then ".\r\n").
 * - SMTPC_BODY_BDAT (RFC 3030): the engine has already written the
 *   "BDAT <size> LAST\r\n" command through SMTPC_WRITE; send exactly
 *   envelope.size raw bytes, nothing after them. The message must have CRLF
 *   line ends (Petrel's server refuses anything else, so what it queues has).
 */
enum smtpc_body { SMTPC_BODY_DATA, SMTPC_BODY_BDAT };
enum smtpc_body smtpc_body_mode(const struct smtpc *c);

/* The whole message was handed to the socket; the final reply is due. Ignored
 * when that reply already came (a server answering early). */
void smtpc_body_sent(struct smtpc *c);

/*
 * The connection broke, or a timeout ran out: every undecided recipient
 * becomes tempfail 4.4.2 "connection lost" (RFC 3463; RFC 5321 §3.8:
 * as if 451; after the final dot the message may have arrived anyway, so
 * a retry can duplicate it). next() says SMTPC_CLOSE.
 */
void smtpc_connection_lost(struct smtpc *c);

/*
 * After SMTPC_QUIT_DONE: the next message over the same connection (RSET
 * first when the server may still hold the last transaction). Results start
 * afresh. Returns 0, or -1 with errno EINVAL (not after QUIT_DONE, bad
 * envelope: nothing changes) or ENOMEM.
 */
int smtpc_reset(struct smtpc *c, const struct smtpc_envelope *e);
/* After SMTPC_QUIT_DONE: say QUIT; next() writes it, reads 221, says CLOSE.
 * Returns 0, or -1 with errno EINVAL in any other state. */
int smtpc_quit(struct smtpc *c);

/*
 * How long the transport waits for what next() asked, in ms (RFC 5321
 * §4.5.3.2): greeting, EHLO/HELO, STARTTLS, AUTH, MAIL, RCPT, RSET 5 min;
 * the TLS handshake 5 min; DATA 2 min; SMTPC_SEND_BODY 3 min for each
 * write to make progress; the final reply (dot or BDAT) 10 min; QUIT 2 min.
 * 0: nothing awaited (idle after QUIT_DONE: the transport's reuse policy).
 */
unsigned smtpc_timeout_ms(const struct smtpc *c);

/* EHLO keywords the server offered (after the latest EHLO; 0 after HELO). */
#define SMTPC_EXT_PIPELINING 0x001u   /* RFC 2920 */
#define SMTPC_EXT_SIZE 0x002u         /* RFC 1870 */
#define SMTPC_EXT_8BITMIME 0x004u     /* RFC 6152 */
#define SMTPC_EXT_SMTPUTF8 0x008u     /* RFC 6531 */
#define SMTPC_EXT_CHUNKING 0x010u     /* RFC 3030 */
#define SMTPC_EXT_STARTTLS 0x020u     /* RFC 3207 */
#define SMTPC_EXT_AUTH 0x040u         /* RFC 4954 (also the old "AUTH=" form) */
#define SMTPC_EXT_ENHANCED 0x080u     /* ENHANCEDSTATUSCODES, RFC 2034 */
#define SMTPC_EXT_AUTH_PLAIN 0x100u   /* AUTH lists PLAIN */
#define SMTPC_EXT_AUTH_LOGIN 0x200u   /* AUTH lists LOGIN */
unsigned smtpc_extensions(const struct smtpc *c);
uint64_t smtpc_size_limit(const struct smtpc *c);  /* SIZE's value; 0 = none announced */

/* Which step a result answers (a DSN's "in reply to ..."). */
enum smtpc_stage {
    SMTPC_STAGE_NONE,      /* undecided */
    SMTPC_STAGE_GREETING,
    SMTPC_STAGE_HELO,      /* EHLO or HELO */
    SMTPC_STAGE_STARTTLS,  /* the command, the handshake, or TLS missing */
    SMTPC_STAGE_AUTH,
    SMTPC_STAGE_RSET,
    SMTPC_STAGE_MAIL,      /* MAIL FROM, or a check made instead of it (SIZE, SMTPUTF8) */
    SMTPC_STAGE_RCPT,
    SMTPC_STAGE_DATA,      /* the DATA command */
    SMTPC_STAGE_BODY,      /* the end of data or BDAT: the final reply */
};
/* "greeting", "EHLO/HELO", "STARTTLS", "AUTH", "RSET", "MAIL FROM", "RCPT TO",
 * "DATA", "end of data". */
const char *smtpc_stage_name(enum smtpc_stage s);

/*
 * A result. A recipient's is its RCPT reply, replaced by the final reply
 * (end of data / BDAT) when the RCPT was accepted, or by the failure that
 * ended the transaction first. Decided (stage != NONE, and when accepted
 * the final reply in) for every recipient once next() says QUIT_DONE or
 * CLOSE. Delivered: stage BODY, code 2xx, neither flag.
 */
struct smtpc_result {
    int code;             /* the server's reply code; 0 when none decided (a local check,
                             a lost connection, a protocol error) */
    char status[16];      /* enhanced status "5.1.1": the reply's own (RFC 2034) when its
                             class agrees with the code, else derived (2.0.0, 4.0.0, 5.0.0;
                             RFC 3463), or ours for local decisions */
    const char *text;     /* the reply's lines as received (codes included) joined by
                             CRLF, none at the end (what dsn_rcpt.diagnostic takes; escape
                             it for logs); control bytes and invalid UTF-8 as '?', cut at
                             SMTPC_MAX_TEXT bytes; or our words. Never NULL; "" when none.
                             Valid until smtpc_reset() or smtpc_free(). */
    enum smtpc_stage stage;
    bool permanent;       /* give up: bounce (5xx, or a permanent local check) */
    bool tempfail;        /* try again later (4xx, lost connection, TLS missing ...) */
};
/* Recipient i's result (index into envelope.rcpts), NULL when out of range. */
const struct smtpc_result *smtpc_rcpt_result(const struct smtpc *c, size_t i);
/* The result of the transaction as a whole: the failure that ended it before
 * the recipients decided (greeting, EHLO, STARTTLS, AUTH, MAIL, DATA, ...), or
 * the final reply; NULL when there is none (every RCPT refused). */
const struct smtpc_result *smtpc_result(const struct smtpc *c);

/*
 * The DATA encoder (RFC 5321 §4.5.2, §2.3.8): a '.' starting a line is
 * doubled, and bare CR or bare LF are sent as CRLF (clients MUST NOT send
 * them otherwise). Feed the message in any pieces; output goes to sink.
 * smtpc_dot_end() ends the last line if it is open and writes ".\r\n".
 * Start zeroed.
 */
struct smtpc_dot {
    unsigned char state;
};
typedef void (*smtpc_sink)(void *arg, const char *p, size_t n);
void smtpc_dot_encode(struct smtpc_dot *d, const char *p, size_t n, smtpc_sink sink, void *arg);
void smtpc_dot_end(struct smtpc_dot *d, smtpc_sink sink, void *arg);

#endif
