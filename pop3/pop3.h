/*
 * pop3.h — the POP3 server (RFC 1939) with CAPA and response codes
 * (RFC 2449, RFC 3206), STLS on 110 (RFC 2595), implicit TLS on 995
 * (RFC 8314) and SASL AUTH (RFC 5034). It serves each user's INBOX from the
 * store, through the same auth/ as SMTP and IMAP.
 *
 * The two pure halves, the command-line parser and the RETR/TOP encoder
 * (byte-stuffing, the TOP header/body split), have no I/O and hard limits;
 * they are unit-tested and fuzzed on their own.
 */
#ifndef PETREL_POP3_H
#define PETREL_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

/*
 * Starts every POP3 listener the config enables (pop3 with STLS, pop3s
 * with implicit TLS). Needs auth_init() and store_start_writer() first.
 * Returns 0, or -1 with err naming the listener.
 */
int pop3_start(struct server *srv, struct store *store, char *err, size_t errlen);

/* ------------------------------------------------------------- parser */

/*
 * RFC 2449 §4: keywords are 3 or 4 characters, arguments at most 40. The
 * 40 is too small for the e-mail addresses USER carries, so arguments may
 * have up to POP3_MAX_ARG bytes; the SASL initial response of AUTH (RFC
 * 5034 §4 lifts the limit for it) and the text of PASS have their own.
 */
#define POP3_MAX_ARG 255
#define POP3_MAX_PASS 512         /* the longest password auth_login takes */
#define POP3_MAX_AUTH_LINE 12288  /* a SASL response line, like SMTP (RFC 4954 §4) */
#define POP3_MAX_ARGS 2

enum pop3_verb {
    POP3_USER, POP3_PASS, POP3_APOP, POP3_AUTH, POP3_STLS, POP3_CAPA,
    POP3_STAT, POP3_LIST, POP3_RETR, POP3_DELE, POP3_NOOP, POP3_RSET,
    POP3_QUIT, POP3_TOP, POP3_UIDL,
    POP3_UNKNOWN
};

enum pop3_parse {
    POP3_PARSE_OK,
    POP3_PARSE_UNKNOWN,  /* no such keyword */
    POP3_PARSE_SYNTAX,   /* more than POP3_MAX_ARGS arguments, NUL or control bytes */
    POP3_PARSE_TOOLONG,  /* an argument over its limit */
};

struct pop3_arg {
    const char *p;  /* into the line; not NUL-terminated */
    size_t len;
};

struct pop3_cmd {
    enum pop3_verb verb;
    unsigned argc;
    struct pop3_arg argv[POP3_MAX_ARGS];
    /* PASS only (RFC 1939 §7 allows spaces in it): everything after the
     * one space that follows the keyword, verbatim; argc is 1 if it is not
     * empty. */
    struct pop3_arg rest;
};

/*
 * Parses a command line (without its CRLF). The keyword is matched without
 * regard to case; arguments are separated by one or more spaces, trailing
 * spaces are ignored. cmd->verb is set even when the result is not OK
 * (POP3_UNKNOWN when the keyword is not known), so the session can name
 * the command in its error.
 */
enum pop3_parse pop3_parse_line(const char *line, size_t len, struct pop3_cmd *cmd);

/*
 * A message number or a line count: decimal digits only, no sign, at most
 * 10 digits, value <= UINT32_MAX. Message numbers must also be >= 1 (the
 * session checks that); TOP's line count may be 0.
 */
bool pop3_parse_number(const char *p, size_t len, uint32_t *out);

/* --------------------------------------------------------- RETR / TOP */

/*
 * The multi-line response encoder (RFC 1939 §3): every line of the message
 * is sent CRLF-terminated, a line that begins with '.' gets one more '.'
 * in front. A message stored with bare LF line ends (possible through IMAP
 * APPEND) gets CRLF: a bare LF is a line end to some clients and not to
 * others, and "\n.\r\n" must never look like the end of the response to
 * either. A bare CR that is not followed by LF is sent as it is.
 *
 * TOP (RFC 1939 §7): the header, the empty line that ends it and at most
 * top_lines lines of the body. A message without an empty line is all
 * header and goes out whole. A body line is whatever ends in LF (or the
 * message); the count is of lines as stored, before any stuffing.
 *
 * The encoder is incremental: the message may come in pieces of any size
 * and the output is the same (split invariance).
 */
struct pop3_encoder {
    bool bol;           /* at the beginning of a line */
    bool prev_cr;       /* the last byte was CR */
    bool line_empty;    /* no byte but a CR on this line so far */
    bool in_body;       /* past the empty line that ends the header */
    bool top;           /* TOP: stop after top_lines body lines */
    bool done;          /* TOP has sent all it should */
    uint32_t lines_left;
};

void pop3_encoder_init(struct pop3_encoder *e, bool top, uint32_t top_lines);

/* Bytes of output pop3_encode() may write per byte of input. */
#define POP3_ENCODE_MAX_GROWTH 2
/* Bytes pop3_encode_finish() may write. */
#define POP3_ENCODE_FINISH_MAX 5

/*
 * Encodes from in[0..n) into out[0..cap) as much as fits (cap >= 2 makes
 * progress). Returns the bytes of in consumed and sets *out_len. Once
 * e->done (TOP) the rest of in is consumed without output.
 */
size_t pop3_encode(struct pop3_encoder *e, const char *in, size_t n, char *out, size_t cap,
                   size_t *out_len);

/*
 * The end of the response: the line end an unterminated last line needs,
 * then ".\r\n". Writes at most POP3_ENCODE_FINISH_MAX bytes; returns how
 * many.
 */
size_t pop3_encode_finish(const struct pop3_encoder *e, char *out);

/* -------------------------------------------------------------- UIDL */

/*
 * The unique-id of a message (RFC 1939 §7 UIDL): the mailbox's UIDVALIDITY
 * and the message's UID as 8 + 8 lower-case hex digits. Stable for as long
 * as the message exists (UIDs are never reused under one UIDVALIDITY) and
 * unique in the maildrop. out needs POP3_UIDL_LEN + 1 bytes.
 */
#define POP3_UIDL_LEN 16
void pop3_uidl(uint32_t uidvalidity, uint32_t uid, char *out);

#endif
