/*
 * mime-int.h — private to mime/: header field scanning, unfolding and
 * structured field (Content-Type, Content-Disposition) parsing shared by
 * parse.c, header.c, params.c and encode.c.
 */
#ifndef PETREL_MIME_INT_H
#define PETREL_MIME_INT_H

#include "mime/mime.h"

/* Raw RFC 2231 sections kept per structured field before joining. */
#define MIME_MAX_RAW_PARAMS (4 * MIME_MAX_PARAMS)

/* One header field in a buffer: the name and the raw value (from just after
 * the colon to the end of its last line, folds included, line end excluded). */
struct mime_field {
    size_t name, name_len;
    size_t value, value_end;
};

enum mime_line {
    MIME_LINE_FIELD,   /* *f filled */
    MIME_LINE_JUNK,    /* a line that is no field (no colon, bad name): skipped */
    MIME_LINE_BLANK,   /* the empty line that ends the header */
    MIME_LINE_END,     /* end of the range: no more lines */
};

/* Reads the line(s) at *pos (a line start) in [*pos, end); moves *pos past
 * them (past the empty line for MIME_LINE_BLANK). */
enum mime_line mime_next_field(const char *d, size_t end, size_t *pos,
                               struct mime_field *f);

/* Unfolded, trimmed copy of d[start, end): CR/LF of folds removed, NUL bytes
 * replaced by 0x80 so the value is a C string. NULL when out of memory. */
char *mime_unfold(const char *d, size_t start, size_t end);

/* A field value as Dovecot's header parser reads it (its "full value",
 * flags SKIP_INITIAL_LWSP | DROP_CR), for the tree and IMAP: the blanks
 * after the colon skipped (only one when the first line is all blanks),
 * trailing blanks kept, the CR of every line break dropped and, unless
 * keep_lf, its LF too (the blank that starts a continuation line stays),
 * NUL bytes as U+FFFD. d[start, end) is mime_field's [value, value_end).
 * NULL when out of memory. */
char *mime_field_value(const char *d, size_t start, size_t end, bool keep_lf);

/* Case-insensitive compare of a field name with a NUL-terminated name. */
bool mime_name_is(const char *d, const struct mime_field *f, const char *name);

/*
 * Structured fields, read as Dovecot reads them (params.c). Tokens and
 * parameter names keep their case.
 *
 * mime_parse_content_type always sets *type and *subtype (unless out of
 * memory): "type"/"subtype" as written when valid (returns 1, parameters
 * set); when invalid (returns 0, no parameters) "" and "", or the type and
 * "" when the value ends right after the type ("text"). -1 when out of
 * memory. mime_parse_disposition: 1 with the (possibly empty) token and
 * its parameters, 0 when it has no usable token, -1 out of memory.
 * *truncated is set when parameters were dropped by MIME_MAX_PARAMS.
 */
int mime_parse_content_type(const char *value, char **type, char **subtype,
                            struct mime_param **params, unsigned *n_params,
                            bool *truncated);
int mime_parse_disposition(const char *value, char **disposition,
                           struct mime_param **params, unsigned *n_params,
                           bool *truncated);
/* Content-Transfer-Encoding: its token as written when the value is one
 * token and CFWS, else NULL (*oom set when out of memory). */
char *mime_parse_token(const char *value, bool *oom);
/* Content-Language: does the value start with an atom (after CFWS)? */
bool mime_language_valid(const char *value);

void mime_params_free(struct mime_param **params, unsigned *n);
/* Frees everything a part owns (not the part itself) and zeroes it. */
void mime_part_clear(struct mime_part *p);

#endif
