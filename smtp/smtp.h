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

#endif
