/*
 * IMAP command reader and argument parsers (RFC 3501 §9, RFC 9051 §9).
 * Pure functions over bytes: the session feeds lines and literal bytes,
 * gets a token tree, and asks the helpers below to read sequence sets,
 * dates, flags, SEARCH keys and FETCH attributes out of it.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"
#include "imap/chars.h"

/* ------------------------------------------------------------ arena */

struct imap_arena_chunk {
    struct imap_arena_chunk *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_CHUNK 4096
#define ARENA_ALIGN (alignof(max_align_t))

void imap_arena_init(struct imap_arena *a, size_t cap)
{
    a->head = NULL;
    a->used = 0;
    a->cap = cap;
}

void *imap_arena_alloc(struct imap_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    if (a->cap && (a->used > a->cap || size > a->cap - a->used))
        return NULL;
    struct imap_arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        c = malloc(sizeof *c + csize);
        if (!c)
            return NULL;
        c->size = csize;
        c->used = 0;
        /* A big block gets a chunk of its own; small ones keep filling head. */
        if (csize != ARENA_CHUNK && a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    a->used += size;
    return p;
}

void imap_arena_free(struct imap_arena *a)
{
    struct imap_arena_chunk *c = a->head;
    while (c) {
        struct imap_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

static char *arena_strndup(struct imap_arena *a, const char *s, size_t len)
{
    char *d = imap_arena_alloc(a, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

/* ------------------------------------------------------------ characters */

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool is_tag_char(int ch)
{
    return is_astring_char(ch) && ch != '+';
}

/*
 * What the reader accepts in an atom token: ASTRING-CHARs plus the
 * list-wildcards (LIST patterns, "1:*") and a leading "\" (flags). Which
 * of these an argument may really hold is the accessors' business.
 */
static bool is_token_char(int ch)
{
    return is_astring_char(ch) || ch == '%' || ch == '*';
}

/* ------------------------------------------------------------ limits */

void imap_limits_default(struct imap_limits *l)
{
    l->max_line = 8192;
    l->max_literal = 64 * 1024;
    l->max_message = 64 * 1024 * 1024;
    l->max_command = 256 * 1024;
    l->max_depth = 16;
    l->max_tokens = 4096;
}

/* ------------------------------------------------------------ reader */

struct level {
    struct imap_arg *list;   /* NULL at the top level */
    struct imap_arg **tail;
};

struct imap_parser {
    struct imap_limits lim;
    unsigned flags;      /* for the next command */
    unsigned cmd_flags;  /* for this one */
    struct imap_arena arena;
    enum imap_want want;
    struct imap_command cmd;
    struct level *stack; /* max_depth + 1 levels */
    unsigned depth;
    size_t tokens;
    size_t bytes;        /* toward max_command */
    bool started;        /* tag and name read */
    bool after_token;    /* the next line continues after a literal */
    bool skipping;       /* BAD found: swallowing the rest of the command */
    bool nul_seen;       /* a NUL in a non-binary literal */
    struct imap_literal lit;
    char *lit_buf;
    size_t lit_off;
    enum imap_perr err;
    const char *errmsg;
};

struct imap_parser *imap_parser_new(const struct imap_limits *limits, unsigned flags)
{
    struct imap_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (limits)
        p->lim = *limits;
    else
        imap_limits_default(&p->lim);
    if (p->lim.max_depth > 1024)
        p->lim.max_depth = 1024;
    p->stack = calloc(p->lim.max_depth + 1, sizeof *p->stack);
    if (!p->stack) {
        free(p);
        return NULL;
    }
    p->flags = flags;
    imap_arena_init(&p->arena, 0);
    imap_parser_reset(p);
    return p;
}

void imap_parser_free(struct imap_parser **pp)
{
    struct imap_parser *p = *pp;
    if (!p)
        return;
    imap_arena_free(&p->arena);
    free(p->stack);
    free(p);
    *pp = NULL;
}

void imap_parser_set_flags(struct imap_parser *p, unsigned flags)
{
    p->flags = flags;
}

void imap_parser_reset(struct imap_parser *p)
{
    imap_arena_free(&p->arena);
    memset(&p->cmd, 0, sizeof p->cmd);
    p->cmd.tag = "*";
    p->cmd.name = "";
    p->depth = 0;
    p->stack[0].list = NULL;
    p->stack[0].tail = &p->cmd.args;
    p->tokens = 0;
    p->bytes = 0;
    p->started = false;
    p->after_token = false;
    p->skipping = false;
    p->nul_seen = false;
    memset(&p->lit, 0, sizeof p->lit);
    p->lit_buf = NULL;
    p->lit_off = 0;
    p->err = IMAP_PERR_NONE;
    p->errmsg = NULL;
    p->cmd_flags = p->flags;
    p->want = IMAP_WANT_LINE;
}

enum imap_want imap_parser_want(const struct imap_parser *p)
{
    return p->want;
}

const struct imap_literal *imap_parser_literal(const struct imap_parser *p)
{
    return &p->lit;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
    return &p->cmd;
}

struct imap_arena *imap_parser_arena(struct imap_parser *p)
{
    return &p->arena;
}

const char *imap_parser_error(const struct imap_parser *p, enum imap_perr *code)
{
    if (code)
        *code = p->err;
    return p->errmsg ? p->errmsg : "";
}

static enum imap_want fatal(struct imap_parser *p, enum imap_perr code, const char *msg)
{
    p->err = code;
    p->errmsg = msg;
    return p->want = IMAP_WANT_FATAL;
}

/*
 * Does the line end with a literal announcement, "{n}", "{n+}", "~{n}" or
 * "~{n+}"? Returns its size in *n (saturating) and whether it is
 * synchronising.
 */
static bool trailing_literal(const char *line, size_t len, uint64_t *n, bool *sync)
{
    if (len < 3 || line[len - 1] != '}')
        return false;
    size_t i = len - 1;
    *sync = true;
    if (line[i - 1] == '+') {
        *sync = false;
        i--;
    }
    size_t digits_end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        i--;
    if (i == digits_end || i == 0 || line[i - 1] != '{')
        return false;
    uint64_t v = 0;
    for (size_t k = i; k < digits_end; k++) {
        if (v > (UINT64_MAX - 9) / 10) {
            v = UINT64_MAX;
            break;
        }
        v = v * 10 + (uint64_t)(line[k] - '0');
    }
    *n = v;
    return true;
}

static size_t discard_limit(const struct imap_parser *p)
{
    return p->lim.max_message > p->lim.max_literal ? p->lim.max_message : p->lim.max_literal;
}

/*
 * The command is BAD. The client stops at a synchronising literal (it
 * waits for "+"), but keeps sending after a non-synchronising one, so that
 * literal and the lines after it are swallowed before BAD is reported.
 */
static enum imap_want skip_from_line(struct imap_parser *p, const char *line, size_t len)
{
    uint64_t n;
    bool sync;
    if (!trailing_literal(line, len, &n, &sync) || sync)
        return p->want = IMAP_WANT_BAD;
    /* Past discard_limit() reading costs too much: RFC 7888 §4 lets us close. */
    if (n > discard_limit(p))
        return fatal(p, IMAP_PERR_TOOBIG, "Literal too big");
    p->skipping = true;
    memset(&p->lit, 0, sizeof p->lit);
    p->lit.size = p->lit.remaining = n;
    p->lit.discard = true;
    p->lit_buf = NULL;
    return p->want = n ? IMAP_WANT_LITERAL : IMAP_WANT_LINE;
}

static enum imap_want bad(struct imap_parser *p, const char *line, size_t len,
                          enum imap_perr code, const char *msg)
{
    p->err = code;
    p->errmsg = msg;
    return skip_from_line(p, line, len);
}

struct cur {
    const char *s, *p, *end;
};

static int peek(const struct cur *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static struct imap_arg *new_arg(struct imap_parser *p, enum imap_arg_type type)
{
    if (p->tokens >= p->lim.max_tokens)
        return NULL;
    struct imap_arg *a = imap_arena_alloc(&p->arena, sizeof *a);
    if (!a)
        return NULL;
    memset(a, 0, sizeof *a);
    a->type = type;
    p->tokens++;
    struct level *lv = &p->stack[p->depth];
    *lv->tail = a;
    lv->tail = &a->next;
    if (lv->list)
        lv->list->count++;
    else
        p->cmd.nargs++;
    return a;
}

/* The error for a failed new_arg(). */
static const char *arg_error(const struct imap_parser *p, enum imap_perr *code)
{
    if (p->tokens >= p->lim.max_tokens) {
        *code = IMAP_PERR_TOOBIG;
        return "Too many arguments";
    }
    *code = IMAP_PERR_NOMEM;
    return "Out of memory";
}

/*
 * quoted = DQUOTE *QUOTED-CHAR DQUOTE, QUOTED-CHAR = <any TEXT-CHAR except
 * quoted-specials> / "\" quoted-specials (RFC 3501 §9); 8-bit only as UTF-8
 * under UTF8=ACCEPT (RFC 6855 §3 / RFC 9051 §9 QUOTED-CHAR =/ UTF8-2..4).
 * Returns NULL with *msg on error.
 */
static struct imap_arg *read_quoted(struct imap_parser *p, struct cur *c, const char **msg,
                                    enum imap_perr *code)
{
    *code = IMAP_PERR_SYNTAX;
    const char *start = ++c->p;
    size_t outlen = 0;
    for (;;) {
        int ch = peek(c);
        if (ch < 0) {
            *msg = "Unterminated quoted string";
            return NULL;
        }
        if (ch == '"')
            break;
        if (ch == '\\') {
            c->p++;
            ch = peek(c);
            if (ch != '\\' && ch != '"') {
                *msg = "Bad escape in quoted string";
                return NULL;
            }
            c->p++;
        } else if (ch == 0 || ch == '\r' || ch == '\n') {
            *msg = "CR, LF or NUL in quoted string";
            return NULL;
        } else if (ch >= 0x80) {
            size_t n;
            if (!(p->cmd_flags & IMAP_PARSE_UTF8)) {
                *msg = "8-bit character in quoted string without UTF8=ACCEPT";
                return NULL;
            }
            n = utf8_seq_len((const unsigned char *)c->p, (size_t)(c->end - c->p));
            if (!n) {
                *msg = "Invalid UTF-8 in quoted string";
                return NULL;
            }
            c->p += n;
            outlen += n;
            continue;
        } else {
            c->p++;
        }
        outlen++;
    }
    const char *stop = c->p++;
    struct imap_arg *a = new_arg(p, IMAP_ARG_QUOTED);
    char *d = a ? imap_arena_alloc(&p->arena, outlen + 1) : NULL;
    if (!d) {
        *msg = arg_error(p, code);
        return NULL;
    }
    size_t k = 0;
    for (const char *s = start; s < stop; s++) {
        if (*s == '\\')
            s++;
        d[k++] = *s;
    }
    d[k] = 0;
    a->str = d;
    a->len = k;
    return a;
}

/* Atoms that take a "[section]" (RFC 3501 §9 fetch-att, RFC 3516). */
static bool takes_section(const char *s, size_t n)
{
    static const char *const names[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
                                         "BINARY.SIZE" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0)
            return true;
    return false;
}

/*
 * An atom. After BODY, BODY.PEEK, BINARY, BINARY.PEEK and BINARY.SIZE a
 * '[' opens a section read up to its ']' as part of the same token, spaces,
 * parentheses and quoted header names included, so that
 * "BODY[HEADER.FIELDS (A B)]<0.100>" is one atom for imap_parse_fetch().
 */
static struct imap_arg *read_atom(struct imap_parser *p, struct cur *c, const char **msg,
                                  enum imap_perr *code)
{
    *code = IMAP_PERR_SYNTAX;
    const char *start = c->p;
    if (peek(c) == '\\')
        c->p++;
    for (;;) {
        int ch = peek(c);
        if (ch == '[' && takes_section(start, (size_t)(c->p - start))) {
            bool quoted = false;
            c->p++;
            for (;;) {
                ch = peek(c);
                if (ch < 0x20 || ch >= 0x7f) {
                    *msg = ch < 0 ? "Unterminated section" : "Bad character in section";
                    return NULL;
                }
                c->p++;
                if (quoted && ch == '\\') {
                    if (peek(c) != '\\' && peek(c) != '"') {
                        *msg = "Bad escape in quoted string";
                        return NULL;
                    }
                    c->p++;
                } else if (ch == '"') {
                    quoted = !quoted;
                } else if (!quoted && ch == ']') {
                    break;
                } else if (!quoted && ch == '{') {
                    *msg = "Literal inside a section";
                    return NULL;
                }
            }
            continue;
        }
        if (!is_token_char(ch))
            break;
        c->p++;
    }
    size_t n = (size_t)(c->p - start);
    if (n == 0) {
        *msg = "Bad character";
        return NULL;
    }
    bool nil = n == 3 && strncasecmp(start, "NIL", 3) == 0;
    struct imap_arg *a = new_arg(p, nil ? IMAP_ARG_NIL : IMAP_ARG_ATOM);
    char *d = a ? arena_strndup(&p->arena, start, n) : NULL;
    if (!d) {
        *msg = arg_error(p, code);
        return NULL;
    }
    a->str = d;
    a->len = n;
    return a;
}

/* Is this literal an APPEND message (every APPEND literal but the mailbox)? */
static bool message_literal(const struct imap_parser *p)
{
    return strcmp(p->cmd.name, "APPEND") == 0 && (p->depth > 0 || p->cmd.nargs > 0);
}

/*
 * literal = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 9051 §9, RFC 7888),
 * literal8 = "~{" number64 ["+"] "}" CRLF *OCTET (RFC 3516). The
 * announcement ends the line.
 */
static enum imap_want read_literal(struct imap_parser *p, struct cur *c, const char *line,
                                   size_t len)
{
    bool binary = false;
    if (peek(c) == '~') {
        binary = true;
        c->p++;
    }
    c->p++; /* '{' */
    uint64_t n = 0;
    const char *digits = c->p;
    while (peek(c) >= '0' && peek(c) <= '9') {
        if (n > (UINT64_MAX / 2 - 9) / 10)
            return bad(p, line, len, IMAP_PERR_TOOBIG, "Literal too big");
        n = n * 10 + (uint64_t)(*c->p++ - '0');
    }
    bool sync = true;
    if (peek(c) == '+') {
        sync = false;
        c->p++;
    }
    if (c->p == digits || peek(c) != '}' || c->p + 1 != c->end)
        return bad(p, line, len, IMAP_PERR_SYNTAX, "Bad literal");
    c->p++;

    bool message = message_literal(p);
    bool streamed = message && (p->cmd_flags & IMAP_PARSE_STREAM_MESSAGES);
    uint64_t limit = message ? p->lim.max_message : p->lim.max_literal;
    /*
     * RFC 7888 §4: a literal over the limit is BAD [TOOBIG]. The client
     * waits at a synchronising one; a non-synchronising one is already on
     * its way and is swallowed first (or, past discard_limit(), fatal).
     */
    if (n > limit || (!streamed && n > p->lim.max_command - p->bytes))
        return bad(p, line, len, IMAP_PERR_TOOBIG, "Literal too big");
    enum imap_perr code;
    struct imap_arg *a = new_arg(p, IMAP_ARG_LITERAL);
    if (!a) {
        const char *msg = arg_error(p, &code);
        return bad(p, line, len, code, msg);
    }
    a->binary = binary;
    a->streamed = streamed;
    a->len = (size_t)n;
    p->lit_buf = NULL;
    if (!streamed) {
        p->lit_buf = imap_arena_alloc(&p->arena, (size_t)n + 1);
        if (!p->lit_buf)
            return fatal(p, IMAP_PERR_NOMEM, "Out of memory");
        p->lit_buf[n] = 0;
        a->str = p->lit_buf;
        p->bytes += (size_t)n;
    }
    memset(&p->lit, 0, sizeof p->lit);
    p->lit.size = p->lit.remaining = n;
    p->lit.sync = sync;
    p->lit.binary = binary;
    p->lit.streamed = streamed;
    p->lit_off = 0;
    p->nul_seen = false;
    if (sync)
        return p->want = IMAP_WANT_CONTINUE;
    if (n == 0) {
        p->after_token = true;
        return p->want = IMAP_WANT_LINE;
    }
    return p->want = IMAP_WANT_LITERAL;
}

/* tag SP command-name, the start of every command. */
static enum imap_want read_head(struct imap_parser *p, struct cur *c, const char *line,
                                size_t len)
{
    while (is_tag_char(peek(c)))
        c->p++;
    size_t n = (size_t)(c->p - c->s);
    if (n == 0 || (peek(c) != ' ' && peek(c) != -1))
        return bad(p, line, len, IMAP_PERR_SYNTAX, n || len ? "Invalid tag" : "Empty line");
    char *tag = arena_strndup(&p->arena, c->s, n);
    if (!tag)
        return fatal(p, IMAP_PERR_NOMEM, "Out of memory");
    p->cmd.tag = tag;
    if (peek(c) != ' ')
        return bad(p, line, len, IMAP_PERR_SYNTAX, "Missing command");
    c->p++;
    const char *name = c->p;
    while (is_atom_char(peek(c)))
        c->p++;
    n = (size_t)(c->p - name);
    if (n == 0 || (peek(c) != ' ' && peek(c) != -1))
        return bad(p, line, len, IMAP_PERR_SYNTAX, "Invalid command name");
    char *up = arena_strndup(&p->arena, name, n);
    if (!up)
        return fatal(p, IMAP_PERR_NOMEM, "Out of memory");
    for (size_t i = 0; i < n; i++)
        if (up[i] >= 'a' && up[i] <= 'z')
            up[i] = (char)(up[i] - 'a' + 'A');
    p->cmd.name = up;
    p->started = true;
    return IMAP_WANT_LINE;
}

/*
 * Arguments: SP-separated tokens, "(" and ")" around lists (RFC 3501 §9
 * is strict: one SP between arguments, none after "(" or before ")", none
 * at the end of the line).
 */
static enum imap_want read_args(struct imap_parser *p, struct cur *c, const char *line,
                                size_t len)
{
    bool just_opened = false;
    for (;;) {
        int ch = peek(c);
        if (p->after_token) {
            if (ch < 0) {
                if (p->depth > 0)
                    return bad(p, line, len, IMAP_PERR_SYNTAX, "Missing )");
                return p->want = IMAP_WANT_READY;
            }
            if (ch == ')') {
                if (p->depth == 0)
                    return bad(p, line, len, IMAP_PERR_SYNTAX, "Unexpected )");
                p->depth--;
                c->p++;
                continue;
            }
            if (ch != ' ')
                return bad(p, line, len, IMAP_PERR_SYNTAX, "Expected space");
            c->p++;
            p->after_token = false;
            just_opened = false;
            continue;
        }
        enum imap_perr code = IMAP_PERR_SYNTAX;
        const char *msg = NULL;
        struct imap_arg *a = NULL;
        switch (ch) {
        case -1:
            return bad(p, line, len, IMAP_PERR_SYNTAX,
                       just_opened ? "Missing )" : "Missing argument");
        case '(':
            if (p->depth >= p->lim.max_depth)
                return bad(p, line, len, IMAP_PERR_TOOBIG, "Lists nested too deeply");
            a = new_arg(p, IMAP_ARG_LIST);
            if (!a) {
                msg = arg_error(p, &code);
                return bad(p, line, len, code, msg);
            }
            p->depth++;
            p->stack[p->depth].list = a;
            p->stack[p->depth].tail = &a->child;
            c->p++;
            just_opened = true;
            continue;
        case ')':
            if (!just_opened)
                return bad(p, line, len, IMAP_PERR_SYNTAX, "Unexpected )");
            p->depth--;
            c->p++;
            p->after_token = true;
            continue;
        case '"':
            a = read_quoted(p, c, &msg, &code);
            break;
        case '{':
            return read_literal(p, c, line, len);
        case '~':
            if (c->p + 1 < c->end && c->p[1] == '{')
                return read_literal(p, c, line, len);
            /* fall through */
        default:
            a = read_atom(p, c, &msg, &code);
            break;
        }
        if (!a)
            return bad(p, line, len, code, msg);
        p->after_token = true;
    }
}

enum imap_want imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len)
{
    if (p->want != IMAP_WANT_LINE)
        return p->want;
    if (len > p->lim.max_line)
        return fatal(p, IMAP_PERR_TOOBIG, "Line too long");
    if (p->skipping)
        return skip_from_line(p, line, len);
    if (len + 2 > p->lim.max_command - p->bytes)
        return bad(p, line, len, IMAP_PERR_TOOBIG, "Command too long");
    p->bytes += len + 2;
    struct cur c = { line, line, line + len };
    if (!p->started) {
        p->cmd_flags = p->flags;
        enum imap_want w = read_head(p, &c, line, len);
        if (!p->started)
            return w;
        if (peek(&c) < 0)
            return p->want = IMAP_WANT_READY;
        c.p++; /* the SP after the name */
    }
    return read_args(p, &c, line, len);
}

size_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len)
{
    if (p->want != IMAP_WANT_CONTINUE && p->want != IMAP_WANT_LITERAL)
        return 0;
    p->want = IMAP_WANT_LITERAL;
    size_t take = len < p->lit.remaining ? len : (size_t)p->lit.remaining;
    if (p->lit_buf && take) {
        memcpy(p->lit_buf + p->lit_off, data, take);
        /* CHAR8 = %x01-ff: a literal (not literal8) holds no NUL. */
        if (!p->lit.binary && memchr(data, 0, take))
            p->nul_seen = true;
    }
    p->lit_off += take;
    p->lit.remaining -= take;
    if (p->lit.remaining)
        return take;
    p->want = IMAP_WANT_LINE;
    if (p->lit.discard)
        return take;
    if (p->nul_seen) {
        p->err = IMAP_PERR_SYNTAX;
        p->errmsg = "NUL in literal";
        p->skipping = true;
        return take;
    }
    p->after_token = true;
    return take;
}

/* ------------------------------------------------------------ values */

bool imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len)
{
    if (!a)
        return false;
    switch (a->type) {
    case IMAP_ARG_ATOM:
        for (size_t i = 0; i < a->len; i++)
            if (!is_astring_char((unsigned char)a->str[i]))
                return false;
        /* fall through */
    case IMAP_ARG_NIL:
    case IMAP_ARG_QUOTED:
        *s = a->str;
        *len = a->len;
        return true;
    case IMAP_ARG_LITERAL:
        return imap_arg_string(a, s, len);
    case IMAP_ARG_LIST:
        break;
    }
    return false;
}

bool imap_arg_string(const struct imap_arg *a, const char **s, size_t *len)
{
    if (!a || (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL) || !a->str)
        return false;
    *s = a->str;
    *len = a->len;
    return true;
}

bool imap_arg_nstring(const struct imap_arg *a, const char **s, size_t *len)
{
    if (a && a->type == IMAP_ARG_NIL) {
        *s = NULL;
        *len = 0;
        return true;
    }
    return imap_arg_string(a, s, len);
}

bool imap_arg_is(const struct imap_arg *a, const char *word)
{
    return a && (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) &&
           strlen(word) == a->len && strncasecmp(a->str, word, a->len) == 0;
}

/* ------------------------------------------------------------ numbers */

static bool parse_digits(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool imap_parse_number(const char *s, size_t len, uint32_t *out)
{
    uint64_t v;
    if (!parse_digits(s, len, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool imap_parse_nz_number(const char *s, size_t len, uint32_t *out)
{
    /* nz-number = digit-nz *DIGIT: no leading zero. */
    return len > 0 && s[0] != '0' && imap_parse_number(s, len, out);
}

bool imap_parse_number64(const char *s, size_t len, uint64_t *out)
{
    return parse_digits(s, len, INT64_MAX, out);
}

bool imap_parse_modseq(const char *s, size_t len, bool allow_zero, uint64_t *out)
{
    uint64_t v;
    if (!parse_digits(s, len, INT64_MAX, &v) || (v == 0 && !allow_zero))
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------ dates */

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return dim[m - 1];
}

static bool digits_at(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "-" date-month "-" date-year at s (9 bytes: "-Feb-2024"). */
static bool month_year(const char *s, unsigned *m, unsigned *y)
{
    if (s[0] != '-' || s[4] != '-')
        return false;
    *m = 0;
    for (unsigned i = 0; i < 12; i++)
        if (strncasecmp(s + 1, months[i], 3) == 0)
            *m = i + 1;
    return *m && digits_at(s + 5, 4, y);
}

/* date-text = date-day "-" date-month "-" date-year; date-day = 1*2DIGIT */
bool imap_parse_date(const char *s, size_t len, int64_t *out)
{
    unsigned d, m, y;
    size_t dl = len == 10 ? 1 : len == 11 ? 2 : 0;
    if (!dl || !digits_at(s, dl, &d) || !month_year(s + dl, &m, &y))
        return false;
    if (d < 1 || d > days_in_month(y, m))
        return false;
    *out = days_from_civil(y, m, d) * 86400;
    return true;
}

/*
 * date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
 * zone DQUOTE; date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":"
 * 2DIGIT ":" 2DIGIT; zone = ("+" / "-") 4DIGIT. 26 bytes without quotes.
 */
bool imap_parse_datetime(const char *s, size_t len, int64_t *out, int *zone)
{
    unsigned d, m, y, hh, mm, ss, zh, zm;
    if (len != 26)
        return false;
    if (s[0] == ' ') {
        if (!digits_at(s + 1, 1, &d))
            return false;
    } else if (!digits_at(s, 2, &d)) {
        return false;
    }
    if (!month_year(s + 2, &m, &y) || s[11] != ' ' || s[14] != ':' || s[17] != ':' ||
        s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
        return false;
    if (!digits_at(s + 12, 2, &hh) || !digits_at(s + 15, 2, &mm) ||
        !digits_at(s + 18, 2, &ss) || !digits_at(s + 22, 2, &zh) ||
        !digits_at(s + 24, 2, &zm))
        return false;
    if (d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 60 || zm > 59)
        return false;
    int z = (int)(zh * 60 + zm) * (s[21] == '-' ? -1 : 1);
    *out = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)z * 60;
    *zone = z;
    return true;
}

/* ------------------------------------------------------------ flags */

static const struct {
    const char *name;
    int bit;
} system_flags[] = {
    { "\\Answered", IMAP_FLAG_ANSWERED }, { "\\Flagged", IMAP_FLAG_FLAGGED },
    { "\\Deleted", IMAP_FLAG_DELETED },   { "\\Seen", IMAP_FLAG_SEEN },
    { "\\Draft", IMAP_FLAG_DRAFT },
};

static bool is_atom(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_atom_char((unsigned char)s[i]))
            return false;
    return true;
}

int imap_parse_flag(const char *s, size_t len)
{
    if (len > 0 && s[0] == '\\') {
        for (size_t i = 0; i < sizeof system_flags / sizeof system_flags[0]; i++)
            if (strlen(system_flags[i].name) == len &&
                strncasecmp(s, system_flags[i].name, len) == 0)
                return system_flags[i].bit;
        return -1;
    }
    return is_atom(s, len) ? 0 : -1;
}

int imap_parse_flags(struct imap_arena *a, const struct imap_arg *arg, struct imap_flags *out)
{
    memset(out, 0, sizeof *out);
    if (!arg)
        return IMAP_PERR_SYNTAX;
    const struct imap_arg *first = arg->type == IMAP_ARG_LIST ? arg->child : arg;
    size_t n = 0;
    for (const struct imap_arg *f = first; f; f = f->next)
        n++;
    if (n) {
        out->keywords = imap_arena_alloc(a, n * sizeof *out->keywords);
        if (!out->keywords)
            return IMAP_PERR_NOMEM;
    }
    for (const struct imap_arg *f = first; f; f = f->next) {
        if (f->type != IMAP_ARG_ATOM)
            return IMAP_PERR_SYNTAX;
        int bit = imap_parse_flag(f->str, f->len);
        if (bit < 0)
            return IMAP_PERR_SYNTAX;
        if (bit > 0) {
            out->system |= (unsigned)bit;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < out->nkeywords && !dup; i++)
            dup = strcasecmp(out->keywords[i], f->str) == 0;
        if (!dup)
            out->keywords[out->nkeywords++] = f->str;
    }
    return 0;
}

bool imap_mailbox_is_inbox(const char *name, size_t len)
{
    return len == 5 && strncasecmp(name, "INBOX", 5) == 0;
}
