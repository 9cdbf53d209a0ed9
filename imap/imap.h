/*
 * imap.h — the IMAP server (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1).
 *
 * The parser half is pure: no sockets, no store, hard limits, unit-tested
 * (tests/unit/test_imap_parse.c) and fuzzed (tests/fuzz/fuzz_imap.c) on its
 * own. docs/imap-parser.md explains the design. The session and command
 * API follow below it.
 */
#ifndef PETREL_IMAP_H
#define PETREL_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"

/* ---- parser ---- */

/* ------------------------------------------------------------ arena */

/*
 * Memory with one owner: everything a command parses (tokens, literals,
 * sequence sets, search trees, fetch lists) lives in one arena and is
 * freed by one imap_arena_free(). cap bounds the bytes handed out; an
 * allocation that would pass it fails before calling malloc.
 */
struct imap_arena_chunk;
struct imap_arena {
    struct imap_arena_chunk *head;
    size_t used;   /* bytes handed out */
    size_t cap;    /* 0: no limit */
};
void imap_arena_init(struct imap_arena *a, size_t cap);
void *imap_arena_alloc(struct imap_arena *a, size_t size);  /* NULL: over cap or ENOMEM */
void imap_arena_free(struct imap_arena *a);                /* reusable after */

/* ------------------------------------------------------------ limits */

/*
 * Every limit the reader enforces, checked before allocating. Defaults:
 * line 8192 (RFC 7162 §4 asks clients for at most 8192 octets), literal
 * 64 KiB, message 64 MiB, command 256 KiB, depth 16, tokens 4096.
 */
struct imap_limits {
    size_t max_line;      /* one line without CRLF */
    size_t max_literal;   /* a literal the parser keeps in memory */
    size_t max_message;   /* an APPEND message literal (see IMAP_PARSE_STREAM_MESSAGES) */
    size_t max_command;   /* lines + kept literals of one command */
    unsigned max_depth;   /* nested parenthesised lists */
    unsigned max_tokens;  /* arguments of one command, lists included */
};
void imap_limits_default(struct imap_limits *l);

/* ------------------------------------------------------------ tokens */

enum imap_arg_type {
    IMAP_ARG_ATOM,     /* also sequence sets, flags (\Seen), BODY[...]<..> */
    IMAP_ARG_NIL,      /* the atom NIL; astring accessors read it as "NIL" */
    IMAP_ARG_QUOTED,
    IMAP_ARG_LITERAL,  /* {n}, {n+}, ~{n} (binary), kept or streamed */
    IMAP_ARG_LIST,
};

/*
 * One argument. Strings are NUL-terminated copies in the command's arena
 * (len excludes the NUL; a literal8 may hold NULs). A streamed literal has
 * str == NULL and len = its size. A list has its children at child and
 * count of them. Siblings chain through next.
 */
struct imap_arg {
    enum imap_arg_type type;
    bool binary;      /* literal8 ~{n} (RFC 3516) */
    bool streamed;    /* literal handed to the session, not kept */
    const char *str;
    size_t len;
    struct imap_arg *child;
    size_t count;
    struct imap_arg *next;
};

/* A command read by the parser; valid until imap_parser_reset(). */
struct imap_command {
    const char *tag;     /* "*" when the line had no valid tag */
    const char *name;    /* upper-cased; "" before it was read. "UID" is a name of its own */
    struct imap_arg *args;
    size_t nargs;        /* top-level arguments */
};

/* ------------------------------------------------------------ reader */

/*
 * The command reader. The session feeds it lines (without CRLF) and literal
 * bytes and asks imap_parser_want() what to do next:
 *
 *   NEED_LINE     read a line, imap_parser_feed_line()
 *   CONTINUE      a synchronising literal is announced: send "+ Ready",
 *                 then feed its bytes (RFC 3501 §7.5). The session may
 *                 instead refuse the command (tagged BAD/NO) and call
 *                 imap_parser_reset(): the client will not send it.
 *   NEED_LITERAL  feed imap_parser_literal()->remaining more bytes
 *   READY         imap_parser_command() is complete; reset when done
 *   BAD           tagged BAD (imap_parser_error()), reset, go on
 *   FATAL         untagged BYE and close: the input cannot be resynchronised
 *
 * After a BAD found in a line that ends with a non-synchronising literal the
 * reader first swallows that literal and the rest of the command (the
 * client is already sending them), then reports BAD.
 */
enum imap_want {
    IMAP_WANT_LINE,
    IMAP_WANT_CONTINUE,
    IMAP_WANT_LITERAL,
    IMAP_WANT_READY,
    IMAP_WANT_BAD,
    IMAP_WANT_FATAL,
};

enum imap_parse_flags {
    IMAP_PARSE_UTF8 = 1 << 0,            /* UTF8=ACCEPT enabled (RFC 6855 §3) */
    /*
     * APPEND message literals (every APPEND literal but the mailbox, so
     * CATENATE TEXT parts too) are streamed: the parser counts their bytes
     * but keeps none; the session stores what it feeds. Their limit is
     * max_message and they do not count toward max_command.
     */
    IMAP_PARSE_STREAM_MESSAGES = 1 << 1,
};

enum imap_perr {
    IMAP_PERR_NONE,
    IMAP_PERR_SYNTAX,      /* BAD */
    IMAP_PERR_TOOBIG,      /* BAD [TOOBIG] or FATAL: a limit was passed */
    IMAP_PERR_BADCHARSET,  /* NO [BADCHARSET] (SEARCH) */
    IMAP_PERR_NOMEM,
};

/* The literal being read (meaningful in CONTINUE and NEED_LITERAL). */
struct imap_literal {
    uint64_t size;
    uint64_t remaining;
    bool sync;        /* {n}: the client waits for "+" */
    bool binary;      /* ~{n} */
    bool streamed;    /* the session keeps the bytes (IMAP_PARSE_STREAM_MESSAGES) */
    bool discard;     /* part of a command already found BAD */
};

struct imap_parser;
struct imap_parser *imap_parser_new(const struct imap_limits *limits, unsigned flags);
void imap_parser_free(struct imap_parser **p);
void imap_parser_set_flags(struct imap_parser *p, unsigned flags);  /* from the next command */
enum imap_want imap_parser_want(const struct imap_parser *p);
/* line[0..len) without CRLF. Only in NEED_LINE. */
enum imap_want imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len);
/* Takes up to remaining bytes of the literal and returns how many it took. */
size_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len);
const struct imap_literal *imap_parser_literal(const struct imap_parser *p);
/* The command so far (complete in READY; tag and name are set once read). */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* The arena of the current command, for the helpers below. */
struct imap_arena *imap_parser_arena(struct imap_parser *p);
/* After BAD or FATAL: a short text for the reply, and its class. */
const char *imap_parser_error(const struct imap_parser *p, enum imap_perr *code);
/* Frees the command and waits for a new one. */
void imap_parser_reset(struct imap_parser *p);

/* ------------------------------------------------------------ values */

/* astring: atom (ASTRING-CHARs), NIL, quoted or kept literal. */
bool imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len);
/* string: quoted or kept literal. */
bool imap_arg_string(const struct imap_arg *a, const char **s, size_t *len);
/* nstring: string, or NIL giving *s == NULL. */
bool imap_arg_nstring(const struct imap_arg *a, const char **s, size_t *len);
/* An atom equal to word, ASCII case-insensitively. */
bool imap_arg_is(const struct imap_arg *a, const char *word);

/* number (RFC 3501 §9): 32-bit unsigned, no sign, no leading '+'. */
bool imap_parse_number(const char *s, size_t len, uint32_t *out);
bool imap_parse_nz_number(const char *s, size_t len, uint32_t *out);
/* number64 (RFC 9051 §9): 0 .. 2^63-1. */
bool imap_parse_number64(const char *s, size_t len, uint64_t *out);
/* mod-sequence-value (RFC 7162 §7): 1 .. 2^63-1; valzer also allows 0. */
bool imap_parse_modseq(const char *s, size_t len, bool allow_zero, uint64_t *out);

/*
 * date (RFC 3501 §9: "1-Feb-2024", day 1-2 digits, month case-insensitive)
 * to the unix time of 00:00:00 UTC that day. date-time (APPEND,
 * "17-Jul-1996 02:44:25 -0700", day " 1" or "01") to unix time; *zone gets
 * the offset in minutes east of UTC. Callers pass the text without quotes.
 */
bool imap_parse_date(const char *s, size_t len, int64_t *out);
bool imap_parse_datetime(const char *s, size_t len, int64_t *out, int *zone);

/* ------------------------------------------------------------ sequence sets */

/* '*' before resolution (0 is never a valid nz-number). */
#define IMAP_SEQ_STAR 0

struct imap_range {
    uint32_t lo, hi;  /* inclusive, lo <= hi */
};

/*
 * A sequence-set or uid-set (RFC 3501 §9), sorted, non-overlapping,
 * adjacent ranges merged; "5:2" is 2:5. When star is set, the ranges are
 * kept as written with '*' as IMAP_SEQ_STAR, and imap_seqset_resolve()
 * must run (against the mailbox of the moment) before contains/next.
 * saved: the set was "$" (RFC 5182 SEARCHRES) and has no ranges.
 */
struct imap_seqset {
    struct imap_range *ranges;
    size_t count;
    bool star;
    bool saved;
};

#define IMAP_SEQSET_ALLOW_SAVED 1u  /* accept "$" */
/* Returns 0 or IMAP_PERR_*. Ranges are allocated from a. */
int imap_seqset_parse(struct imap_arena *a, const char *s, size_t len, unsigned flags,
                      struct imap_seqset *out);
/*
 * '*' becomes max (the highest sequence number or UID; RFC 3501 §6.4.8:
 * "559:*" includes max even if max < 559), then sorts and merges again.
 * out may be in (done in place), else out's ranges come from a.
 */
int imap_seqset_resolve(struct imap_arena *a, const struct imap_seqset *in, uint32_t max,
                        struct imap_seqset *out);
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Iterates the members in increasing order; start with a zeroed iterator. */
struct imap_seqset_iter {
    size_t i;
    uint32_t next;
    bool started;
};
bool imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it, uint32_t *n);

/* ------------------------------------------------------------ flags */

enum imap_flag_bits {
    IMAP_FLAG_ANSWERED = 1 << 0,
    IMAP_FLAG_FLAGGED = 1 << 1,
    IMAP_FLAG_DELETED = 1 << 2,
    IMAP_FLAG_SEEN = 1 << 3,
    IMAP_FLAG_DRAFT = 1 << 4,
};

struct imap_flags {
    unsigned system;        /* imap_flag_bits */
    const char **keywords;  /* as sent, duplicates (case-insensitive) removed */
    size_t nkeywords;
};

/*
 * One flag (RFC 3501 §9 flag): returns a system bit, 0 for a valid keyword
 * (an atom), -1 for anything else — "\Recent" and unknown "\" flags too,
 * since a client may not set them (RFC 3501 §2.3.2, RFC 9051 §2.3.2).
 */
int imap_parse_flag(const char *s, size_t len);
/*
 * A flag-list "(\Seen foo)" when arg is a list, else arg and every sibling
 * after it (STORE's "flag *(SP flag)"). Returns 0 or IMAP_PERR_*.
 */
int imap_parse_flags(struct imap_arena *a, const struct imap_arg *arg, struct imap_flags *out);

/* ------------------------------------------------------------ mailbox names */

/* Room for the result of a decode or an encode of len bytes, NUL included. */
#define IMAP_UTF7_DECODED_MAX(len) ((len) + (len) / 8 + 1)
#define IMAP_UTF7_ENCODED_MAX(len) (5 * (len) + 1)
/*
 * Modified UTF-7 (RFC 3501 §5.1.3) to UTF-8 and back. Decoding refuses
 * what an encoder never writes: raw 8-bit or control bytes, '&' without
 * '-', bits left over, encoded printable ASCII, lone surrogates, U+0000,
 * a shift right after another ("&AOk-&AOk-": the encoder writes one,
 * "&AOkA6Q-"; "&AOk-&-", a shift then "&", is fine).
 * Encoding refuses invalid UTF-8 and U+0000. Both write a NUL-terminated
 * result and return its length, or -1 (invalid) or -2 (no room).
 */
ssize_t imap_utf7_decode(const char *in, size_t len, char *out, size_t outsize);
ssize_t imap_utf7_encode(const char *in, size_t len, char *out, size_t outsize);
/* "INBOX" in any case (RFC 3501 §5.1). */
bool imap_mailbox_is_inbox(const char *name, size_t len);

/* ------------------------------------------------------------ SEARCH */

enum imap_search_key {
    IMAP_SK_AND,         /* parenthesised group and the top level: children */
    IMAP_SK_OR,          /* children: two */
    IMAP_SK_NOT,         /* children: one */
    IMAP_SK_ALL,
    IMAP_SK_SEQSET,      /* set */
    IMAP_SK_UID,         /* set */
    /* flags */
    IMAP_SK_ANSWERED, IMAP_SK_DELETED, IMAP_SK_DRAFT, IMAP_SK_FLAGGED, IMAP_SK_SEEN,
    IMAP_SK_UNANSWERED, IMAP_SK_UNDELETED, IMAP_SK_UNDRAFT, IMAP_SK_UNFLAGGED,
    IMAP_SK_UNSEEN,
    IMAP_SK_NEW, IMAP_SK_OLD, IMAP_SK_RECENT,   /* RFC 3501 only */
    IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,        /* str */
    /* strings (str) */
    IMAP_SK_BCC, IMAP_SK_BODY, IMAP_SK_CC, IMAP_SK_FROM, IMAP_SK_SUBJECT,
    IMAP_SK_TEXT, IMAP_SK_TO,
    IMAP_SK_HEADER,      /* field, str */
    /* dates (date: 00:00 UTC of the day) */
    IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,
    IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE,
    /* numbers */
    IMAP_SK_LARGER, IMAP_SK_SMALLER,           /* number (RFC 9051 number64) */
    IMAP_SK_OLDER, IMAP_SK_YOUNGER,            /* number: seconds (RFC 5032 WITHIN) */
    IMAP_SK_MODSEQ,                            /* number; entry, entry_type (RFC 7162) */
};

struct imap_search {
    enum imap_search_key key;
    const char *str, *field;      /* str: value; field: HEADER name, MODSEQ entry */
    size_t str_len, field_len;
    const char *entry_type;       /* MODSEQ: "priv", "shared", "all" or NULL */
    int64_t date;
    uint64_t number;
    struct imap_seqset set;
    struct imap_search *child;    /* AND, OR, NOT */
    struct imap_search *next;
};

enum imap_search_return {
    IMAP_SR_MIN = 1 << 0, IMAP_SR_MAX = 1 << 1, IMAP_SR_COUNT = 1 << 2,
    IMAP_SR_ALL = 1 << 3, IMAP_SR_SAVE = 1 << 4,
};

struct imap_search_cmd {
    bool esearch;        /* RETURN given (RFC 4731): answer ESEARCH */
    unsigned ret;        /* imap_search_return; RETURN () is ALL (RFC 4731 §3.1) */
    bool charset_given;  /* CHARSET UTF-8 or US-ASCII was named */
    struct imap_search *root;  /* IMAP_SK_AND of the keys */
};

/*
 * Parses SEARCH arguments: args is the first argument after "SEARCH".
 * Returns 0, IMAP_PERR_SYNTAX, IMAP_PERR_BADCHARSET (a CHARSET other than
 * UTF-8 and US-ASCII: NO [BADCHARSET (UTF-8 US-ASCII)]) or NOMEM; *err
 * then names the problem.
 */
int imap_parse_search(struct imap_arena *a, const struct imap_arg *args,
                      struct imap_search_cmd *out, const char **err);

/* ------------------------------------------------------------ FETCH */

enum imap_fetch_item {
    IMAP_FI_FLAGS = 1 << 0,
    IMAP_FI_INTERNALDATE = 1 << 1,
    IMAP_FI_RFC822_SIZE = 1 << 2,
    IMAP_FI_ENVELOPE = 1 << 3,
    IMAP_FI_BODY = 1 << 4,            /* non-extensible BODYSTRUCTURE */
    IMAP_FI_BODYSTRUCTURE = 1 << 5,
    IMAP_FI_UID = 1 << 6,
    IMAP_FI_MODSEQ = 1 << 7,
    IMAP_FI_RFC822 = 1 << 8,          /* = BODY[] (sets \Seen) */
    IMAP_FI_RFC822_HEADER = 1 << 9,   /* = BODY.PEEK[HEADER] */
    IMAP_FI_RFC822_TEXT = 1 << 10,    /* = BODY[TEXT] (sets \Seen) */
};

enum imap_fetch_kind { IMAP_FB_BODY, IMAP_FB_BINARY, IMAP_FB_BINARY_SIZE };
enum imap_section_text {
    IMAP_ST_NONE, IMAP_ST_HEADER, IMAP_ST_HEADER_FIELDS, IMAP_ST_HEADER_FIELDS_NOT,
    IMAP_ST_TEXT, IMAP_ST_MIME,
};

#define IMAP_MAX_PART_DEPTH 32

/* One BODY[...], BODY.PEEK[...], BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...]. */
struct imap_fetch_body {
    enum imap_fetch_kind kind;
    bool peek;
    uint32_t part[IMAP_MAX_PART_DEPTH];  /* "1.2.3" */
    unsigned nparts;
    enum imap_section_text text;
    const char **fields;                 /* HEADER.FIELDS[.NOT], as sent */
    size_t nfields;
    const char *section;                 /* the text between [ and ], to echo */
    bool partial;                        /* <offset.length> */
    uint64_t offset, length;
};

struct imap_fetch {
    unsigned items;                      /* imap_fetch_item */
    struct imap_fetch_body *bodies;
    size_t nbodies;
    bool changedsince;                   /* RFC 7162 §3.1.4.1 */
    uint64_t changedsince_modseq;
    bool vanished;                       /* RFC 7162 §3.2.6; needs CHANGEDSINCE */
};

/*
 * Parses FETCH arguments: args is the argument after the sequence set (a
 * macro ALL/FAST/FULL, one attribute or a list), optionally followed by a
 * list of modifiers. Returns 0 or IMAP_PERR_*, *err naming the problem.
 */
int imap_parse_fetch(struct imap_arena *a, const struct imap_arg *args,
                     struct imap_fetch *out, const char **err);
/* One attribute given as text, e.g. "BODY.PEEK[1.2.HEADER.FIELDS (To)]<0.100>". */
int imap_parse_fetch_att(struct imap_arena *a, const char *s, size_t len,
                         struct imap_fetch *out, const char **err);

/* ---- session ---- */

/*
 * Starts the imap (143, STARTTLS) and imaps (993, implicit TLS, RFC 8314)
 * listeners the config enables. Returns 0, or -1 with err naming the
 * listener. docs/imap.md describes the session.
 */
struct store;
int imap_start(struct server *srv, struct store *store, char *err, size_t errlen);

#endif
