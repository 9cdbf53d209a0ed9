/*
 * mime.h — RFC 5322 / MIME (RFC 2045-2049) parser. No I/O, no allocation
 * beyond the parse tree it returns. Hard limits on depth, parts and header
 * size; malformed input never fails the parse, it yields the best structure
 * a reader would see (as IMAP servers do), flagged where it was repaired.
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
    char *name;   /* lowercased */
    char *value;  /* unquoted; RFC 2231 continuations joined */
};

/*
 * A body part. Offsets are into the whole message. A part is the header
 * [header_start, body_start) followed by the body [body_start, end).
 */
struct mime_part {
    size_t header_start;
    size_t body_start;
    size_t end;
    uint32_t body_lines;         /* lines in the body */

    char *type;                  /* lowercased, "text" by default */
    char *subtype;               /* lowercased, "plain" by default */
    struct mime_param *params;   /* Content-Type parameters; every text/ *
                                  * part has a charset (us-ascii added last
                                  * when absent, as IMAP reports it) */
    unsigned n_params;
    char *id;                    /* Content-ID, raw or NULL */
    char *description;           /* Content-Description, raw or NULL */
    char *encoding;              /* Content-Transfer-Encoding lowercased, "7bit" default */
    char *md5;                   /* Content-MD5 or NULL */
    char *disposition;           /* lowercased or NULL */
    struct mime_param *disp_params;
    unsigned n_disp_params;
    char *language;              /* Content-Language raw or NULL */
    char *location;              /* Content-Location raw or NULL */

    struct mime_part *children;  /* multipart/ *: the parts, in order */
    unsigned n_children;
    /* true when the body was split into parts (a multipart with a usable
     * boundary, within the limits); it may still have zero children (IMAP
     * then shows one empty text/plain part, as Dovecot does). A multipart
     * type with multipart == false is a single opaque body (no boundary
     * parameter, or past MIME_MAX_DEPTH / MIME_MAX_PARTS). */
    bool multipart;
    struct mime_part *message;   /* message/rfc822 (and global): the inner message */

    /* Envelope fields of this part's header when it is a message (the root
     * or a message/rfc822 body): raw unfolded values, or NULL if absent. */
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

/*
 * Finds the first header field named name (case-insensitive) in the header
 * block [start, end) of data. Returns the unfolded value in a malloc'd
 * string, or NULL.
 */
char *mime_header_get(const char *data, size_t start, size_t end, const char *name);

#endif
