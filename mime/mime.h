/*
 * mime.h — RFC 5322 / MIME (RFC 2045-2049) parser. No I/O, no allocation
 * beyond the parse tree it returns. Hard limits on depth, parts and header
 * size; malformed input never fails the parse, it yields the structure
 * Dovecot's lib-mail finds (so IMAP answers as Dovecot does; docs/mime.md),
 * flagged where it was repaired.
 *
 * The parse is done once at delivery; its encoded form (mime_encode) is kept
 * by the store so IMAP can answer ENVELOPE and BODYSTRUCTURE without reading
 * the message again.
 */
#ifndef PETREL_MIME_H
#define PETREL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_MAX_DEPTH 32
#define MIME_MAX_PARTS 4096
#define MIME_MAX_PARAMS 32

struct mime_param {
    char *name;   /* as written: compare case-insensitively */
    char *value;  /* unquoted; RFC 2231 sections joined (docs/mime.md) */
};

/*
 * A body part. Offsets are into the whole message. A part is the header
 * [header_start, body_start) followed by the body [body_start, end).
 */
struct mime_part {
    size_t header_start;
    size_t body_start;
    size_t end;
    uint32_t body_lines;         /* LF bytes in the body */

    /* Tokens are as written ("TEXT", "Base64"): compare case-insensitively.
     * An invalid Content-Type gives "" and "" (or the type and "" when the
     * value ends after it), as Dovecot reads it. */
    char *type;                  /* "text" by default */
    char *subtype;               /* "plain" by default */
    struct mime_param *params;   /* Content-Type parameters; every text/ *
                                  * part has a charset (us-ascii added last
                                  * when absent, as IMAP reports it) */
    unsigned n_params;
    char *id;                    /* Content-ID, raw or NULL */
    char *description;           /* Content-Description, raw or NULL */
    char *encoding;              /* Content-Transfer-Encoding, "7bit" default */
    char *md5;                   /* Content-MD5 or NULL */
    char *disposition;           /* token (may be "") or NULL */
    struct mime_param *disp_params;
    unsigned n_disp_params;
    char *language;              /* Content-Language raw or NULL */
    char *location;              /* Content-Location raw or NULL */

    struct mime_part *children;  /* multipart/ *: the parts, in order */
    unsigned n_children;
    /* true for a multipart/ * part within the limits; it may have zero
     * children (no boundary parameter or line: IMAP then shows one empty
     * text/plain part, as Dovecot does). A multipart type with multipart ==
     * false is a single opaque body (past MIME_MAX_DEPTH, or no subtype). */
    bool multipart;
    struct mime_part *message;   /* message/rfc822: the inner message
                                  * (message/global stays one body) */

    /* Envelope fields of this part's header when it is a message (the root
     * or a message/rfc822 body), or NULL if absent: raw values as Dovecot
     * reads them (blanks after the colon skipped, folds' LFs kept, NUL as
     * U+FFFD). date, subject, in_reply_to, message_id: the last occurrence;
     * the address fields: every occurrence, "\n" between them, without the
     * folds' LFs. */
    char *date, *subject, *from, *sender, *reply_to, *to, *cc, *bcc,
         *in_reply_to, *message_id;
};

struct mime_message {
    struct mime_part root;
    unsigned n_parts;            /* parts in the tree, root and inner messages
                                  * included; <= MIME_MAX_PARTS */
    bool repaired;               /* limits hit or structure repaired */
    size_t size;                 /* bytes parsed: every offset is <= size */
};

/* Parses len bytes of data. Returns NULL only when out of memory. */
struct mime_message *mime_parse(const char *data, size_t len);
void mime_free(struct mime_message **msg);

/*
 * Serialises a parse into a compact self-describing byte string (to be
 * stored) and back; the format is in docs/mime.md. mime_encode returns a
 * malloc'd buffer (*len bytes, not NUL-terminated), NULL when out of memory.
 * mime_decode returns NULL on a corrupt, truncated or unknown-version input;
 * a tree it returns has the parser's guarantees (type, subtype, encoding and
 * parameter names/values set; header_start <= body_start <= end <= size;
 * children and inner messages inside their parent's body; depth below
 * MIME_MAX_DEPTH, n_parts correct and <= MIME_MAX_PARTS). A reader must
 * still check msg->size against the message it indexes with the offsets.
 */
char *mime_encode(const struct mime_message *msg, size_t *len);
struct mime_message *mime_decode(const char *data, size_t len);
/* The stored parse is of the format mime_encode writes now. An older one
 * still decodes, but into the older reading (lowercased tokens, first
 * occurrences): the store parses such a message again instead. */
bool mime_encoded_is_current(const char *data, size_t len);

/*
 * Finds the first header field named name (case-insensitive) in the header
 * block [start, end) of data. Returns the unfolded value in a malloc'd
 * string, or NULL.
 */
char *mime_header_get(const char *data, size_t start, size_t end, const char *name);

/* ------------------------------------------------------------ IMAP views */
/*
 * IMAP FETCH items from a parse (mime/imap.c, mime/imap-section.c; format
 * and Dovecot differences in docs/mime.md "IMAP views"). ENVELOPE and
 * BODYSTRUCTURE need only the tree (parsed, or mime_decode'd from the
 * store); sections and BINARY also need the raw message the tree was made
 * from: data/len with len == msg->size, checked by the caller.
 *
 * Writers append to a struct buf (core/core.h) and never grow it past limit
 * bytes. They return 0, or -1 when limit would be passed or memory ran out;
 * on -1 the buffer holds a partial item: restore its len before reuse.
 */
struct buf;

/* Flags of the writers. */
#define MIME_IMAP_UTF8 0x1u   /* UTF8=ACCEPT (RFC 6855, RFC 9051): valid UTF-8
                               * may be sent in quoted strings; else 8-bit
                               * strings go as literals {n}\r\n... */

/* "(date subject from sender reply-to to cc bcc in-reply-to message-id)"
 * of a message part (&msg->root or an inner part->message). */
int mime_imap_envelope(struct buf *out, size_t limit, const struct mime_part *msg,
                       unsigned flags);

/* "(...)" of the whole message: BODYSTRUCTURE with extension data when
 * extended, else BODY (RFC 3501 §7.4.2, RFC 9051 §7.5.2). */
int mime_imap_bodystructure(struct buf *out, size_t limit, const struct mime_message *msg,
                            bool extended, unsigned flags);

/* What a BODY[section] names after its part numbers (RFC 3501 §6.4.5). */
enum mime_section_text {
    MIME_SECTION_ALL,                /* [] whole message, [1.2] a part's body */
    MIME_SECTION_HEADER,
    MIME_SECTION_HEADER_FIELDS,      /* range of the header to filter */
    MIME_SECTION_HEADER_FIELDS_NOT,
    MIME_SECTION_TEXT,
    MIME_SECTION_MIME,               /* the part's own header; needs numbers */
};

struct mime_range {
    size_t start, end;               /* [start, end) in the raw message */
};

/*
 * Locates BODY[part.part...text] (path = the n numbers, n == 0 for none).
 * Returns 1 with *r set (and *part, when part is not NULL, set to the part
 * read: for HEADER/TEXT the inner message), 0 when the part does not exist
 * (*r empty: the answer is an empty string ""), -1 when the spec is invalid
 * (a part number 0, MIME without numbers: a BAD). Rules as Dovecot: part 1 of
 * a non-multipart is its body; numbers go on inside a message/rfc822;
 * HEADER, HEADER.FIELDS[.NOT] and TEXT after numbers need a message/rfc822
 * part and refer to its inner message; MIME is the part's own header.
 * <start.len> partial fetches are the caller's: cut the range (or the
 * header-fields output) afterwards.
 */
int mime_imap_section(const struct mime_message *msg, const uint32_t *path, unsigned n,
                      enum mime_section_text text, struct mime_range *r,
                      const struct mime_part **part);

/*
 * HEADER.FIELDS (names) or, with not, HEADER.FIELDS.NOT of the header block
 * hdr (from mime_imap_section) of data[0, len): the fields whose name is
 * (or is not) in names, case-insensitively, as they are in the message
 * (folding kept, line ends written CRLF), in message order, then the empty
 * line "\r\n".
 */
int mime_imap_header_fields(struct buf *out, size_t limit, const char *data, size_t len,
                            struct mime_range hdr, const char *const *names,
                            size_t n_names, bool not);

/* Results of the BINARY helpers (RFC 3516). */
enum {
    MIME_BINARY_OK = 0,
    MIME_BINARY_LIMIT = -1,      /* limit reached or out of memory */
    MIME_BINARY_INVALID = -2,    /* bad base64 / quoted-printable: [UNKNOWN-CTE] */
    MIME_BINARY_UNKNOWN = -3,    /* a transfer encoding we do not know: [UNKNOWN-CTE] */
};

/* BINARY[part]: the body of part (from mime_imap_section, MIME_SECTION_ALL)
 * decoded per its Content-Transfer-Encoding (7bit, 8bit, binary copied;
 * base64, quoted-printable decoded), appended to out. */
int mime_imap_binary(struct buf *out, size_t limit, const char *data, size_t len,
                     const struct mime_part *part);

/* BINARY.SIZE[part]: the decoded size, without keeping the output. */
int mime_imap_binary_size(const char *data, size_t len, const struct mime_part *part,
                          uint64_t *size);
/* ------------------------------------------------------- end IMAP views */


/* ------------------------------------------------ Decoded text for search */

/*
 * Text for the search index (IMAP SEARCH BODY / TEXT, RFC 3501 §6.4.4) and
 * for header matching (SUBJECT, FROM ...). mime/text.c, mime/fold.c;
 * docs/mime.md "Decoded text for search". Pure functions, no shared state:
 * safe on any thread.
 */

#define MIME_TEXT_CAP (1024 * 1024)   /* suggested cap: text bytes per message */

/*
 * Both strings are valid UTF-8 without NUL bytes, NUL-terminated, and
 * header_len + body_len <= the cap given. header: one "Name: value\n" line
 * per field of the message header, unfolded, encoded words decoded. body:
 * every text/ * part decoded (transfer encoding, charset; text/html without
 * its markup), and for an attached message/rfc822 its header lines and text;
 * parts are separated by a line break, other attachments are skipped.
 * truncated: the cap cut the text (at a character boundary).
 */
struct mime_text {
    char *header;
    size_t header_len;
    char *body;
    size_t body_len;
    bool truncated;
};

/*
 * Extracts the text of data[0, len), parsed into msg (msg->size must be len).
 * Never fails on content. Returns NULL with errno EINVAL (msg does not match
 * len) or ENOMEM. Memory is bounded by cap plus a few fixed buffers.
 */
struct mime_text *mime_text_extract(const struct mime_message *msg, const char *data,
                                    size_t len, size_t cap);
void mime_text_free(struct mime_text **t);

/*
 * Decodes an unfolded header value (as mime_header_get returns it) to UTF-8:
 * RFC 2047 encoded words (B and Q, any charset iconv knows; adjacent words
 * joined, §6.2), invalid words left as they are, 8-bit bytes taken as UTF-8
 * and invalid ones replaced by U+FFFD, control characters made spaces.
 * Returns a malloc'd string (*out_len bytes, may be NULL), NULL when out of
 * memory.
 */
char *mime_header_decode(const char *value, size_t len, size_t *out_len);

/* Whether s[0, len) is valid UTF-8 (RFC 3629). */
bool mime_utf8_valid(const char *s, size_t len);

/*
 * Unicode simple case folding (CaseFolding.txt C + S) of UTF-8 text; invalid
 * bytes are kept as they are. Returns a malloc'd NUL-terminated string
 * (*out_len bytes, may be NULL), NULL when out of memory.
 */
char *mime_casefold(const char *s, size_t len, size_t *out_len);

/*
 * IMAP SEARCH matching (RFC 3501 §6.4.4): is needle a substring of haystack
 * once both are case-folded (mime_casefold)? An empty needle matches.
 * Returns 1 or 0, -1 when out of memory.
 */
int mime_search_match(const char *haystack, size_t hlen, const char *needle, size_t nlen);

#endif
