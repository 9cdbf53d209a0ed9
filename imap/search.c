/*
 * SEARCH arguments to a tree of keys (RFC 3501 §6.4.4, RFC 9051 §6.4.4):
 *
 *   search         = "SEARCH" [search-return-opts] SP search-program
 *   search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)
 *
 * with the keys of RFC 7162 (MODSEQ), RFC 5032 (OLDER, YOUNGER), RFC 4731
 * (RETURN options) and RFC 5182 ("$"). The reader has already turned
 * parentheses into lists, so a group is one list argument.
 */
#include <string.h>
#include <strings.h>

#include "imap/chars.h"
#include "imap/imap.h"

/*
 * NOT, OR and groups nest by recursion: bound it apart from the token
 * limit. Left-nested OR chains of a hundred terms still pass.
 */
#define SEARCH_MAX_DEPTH 128

/* What follows a key. */
enum key_value {
    V_NONE,
    V_ASTRING,   /* BCC "x" */
    V_KEYWORD,   /* KEYWORD $Forwarded */
    V_DATE,      /* SINCE 1-Feb-2024 */
    V_NUMBER64,  /* LARGER 1000 (RFC 9051 number64) */
    V_NZNUMBER,  /* OLDER 3600 (RFC 5032 §3: nz-number) */
    V_UIDSET,    /* UID 1:5 */
    V_HEADER,    /* HEADER name value */
    V_MODSEQ,    /* MODSEQ ["/flags/\\Seen" all] 1234 */
    V_NOT,       /* NOT key */
    V_OR,        /* OR key key */
};

static const struct search_key_def {
    const char *name;
    enum imap_search_key key;
    enum key_value value;
} key_defs[] = {
    { "ALL", IMAP_SK_ALL, V_NONE },
    { "ANSWERED", IMAP_SK_ANSWERED, V_NONE },
    { "BCC", IMAP_SK_BCC, V_ASTRING },
    { "BEFORE", IMAP_SK_BEFORE, V_DATE },
    { "BODY", IMAP_SK_BODY, V_ASTRING },
    { "CC", IMAP_SK_CC, V_ASTRING },
    { "DELETED", IMAP_SK_DELETED, V_NONE },
    { "DRAFT", IMAP_SK_DRAFT, V_NONE },
    { "FLAGGED", IMAP_SK_FLAGGED, V_NONE },
    { "FROM", IMAP_SK_FROM, V_ASTRING },
    { "HEADER", IMAP_SK_HEADER, V_HEADER },
    { "KEYWORD", IMAP_SK_KEYWORD, V_KEYWORD },
    { "LARGER", IMAP_SK_LARGER, V_NUMBER64 },
    { "MODSEQ", IMAP_SK_MODSEQ, V_MODSEQ },
    { "NEW", IMAP_SK_NEW, V_NONE },
    { "NOT", IMAP_SK_NOT, V_NOT },
    { "OLD", IMAP_SK_OLD, V_NONE },
    { "OLDER", IMAP_SK_OLDER, V_NZNUMBER },
    { "ON", IMAP_SK_ON, V_DATE },
    { "OR", IMAP_SK_OR, V_OR },
    { "RECENT", IMAP_SK_RECENT, V_NONE },
    { "SEEN", IMAP_SK_SEEN, V_NONE },
    { "SENTBEFORE", IMAP_SK_SENTBEFORE, V_DATE },
    { "SENTON", IMAP_SK_SENTON, V_DATE },
    { "SENTSINCE", IMAP_SK_SENTSINCE, V_DATE },
    { "SINCE", IMAP_SK_SINCE, V_DATE },
    { "SMALLER", IMAP_SK_SMALLER, V_NUMBER64 },
    { "SUBJECT", IMAP_SK_SUBJECT, V_ASTRING },
    { "TEXT", IMAP_SK_TEXT, V_ASTRING },
    { "TO", IMAP_SK_TO, V_ASTRING },
    { "UID", IMAP_SK_UID, V_UIDSET },
    { "UNANSWERED", IMAP_SK_UNANSWERED, V_NONE },
    { "UNDELETED", IMAP_SK_UNDELETED, V_NONE },
    { "UNDRAFT", IMAP_SK_UNDRAFT, V_NONE },
    { "UNFLAGGED", IMAP_SK_UNFLAGGED, V_NONE },
    { "UNKEYWORD", IMAP_SK_UNKEYWORD, V_KEYWORD },
    { "UNSEEN", IMAP_SK_UNSEEN, V_NONE },
    { "YOUNGER", IMAP_SK_YOUNGER, V_NZNUMBER },
};

static const struct {
    const char *name;
    unsigned bit;
} return_opts[] = {
    { "MIN", IMAP_SR_MIN },     { "MAX", IMAP_SR_MAX },   { "COUNT", IMAP_SR_COUNT },
    { "ALL", IMAP_SR_ALL },     { "SAVE", IMAP_SR_SAVE },
};

struct sp {
    struct imap_arena *a;
    const char **err;
    unsigned depth;
};

static int fail(struct sp *s, int code, const char *msg)
{
    *s->err = msg;
    return code;
}

static struct imap_search *new_node(struct sp *s, enum imap_search_key key)
{
    struct imap_search *k = imap_arena_alloc(s->a, sizeof *k);
    if (k) {
        memset(k, 0, sizeof *k);
        k->key = key;
    }
    return k;
}

/* The argument at *cur, which moves past it; NULL at the end. */
static const struct imap_arg *take(const struct imap_arg **cur)
{
    const struct imap_arg *a = *cur;
    if (a)
        *cur = a->next;
    return a;
}

static const struct search_key_def *find_key(const struct imap_arg *a)
{
    for (size_t i = 0; i < sizeof key_defs / sizeof key_defs[0]; i++)
        if (imap_arg_is(a, key_defs[i].name))
            return &key_defs[i];
    return NULL;
}

static bool is_atom_arg(const struct imap_arg *a)
{
    return a && (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL);
}

static int parse_key(struct sp *s, const struct imap_arg **cur, struct imap_search **out);

/* Keys from first to the end of its list, as children of group (AND). */
static int parse_keys(struct sp *s, const struct imap_arg *first, struct imap_search *group)
{
    struct imap_search **tail = &group->child;
    const struct imap_arg *cur = first;
    while (cur) {
        int rc = parse_key(s, &cur, tail);
        if (rc)
            return rc;
        tail = &(*tail)->next;
    }
    return 0;
}

/* date = date-text / DQUOTE date-text DQUOTE */
static int parse_date_value(struct sp *s, const struct imap_arg *v, struct imap_search *k)
{
    if (!v || (v->type != IMAP_ARG_ATOM && v->type != IMAP_ARG_QUOTED) ||
        !imap_parse_date(v->str, v->len, &k->date))
        return fail(s, IMAP_PERR_SYNTAX, "Invalid date in SEARCH");
    return 0;
}

/* entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE (RFC 7162 §7) */
static bool valid_entry_name(const char *str, size_t len)
{
    static const char prefix[] = "/flags/";
    size_t n = sizeof prefix - 1;
    if (len <= n || strncasecmp(str, prefix, n) != 0)
        return false;
    str += n;
    len -= n;
    if (str[0] == '\\') {
        str++;
        len--;
    }
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_atom_char((unsigned char)str[i]))
            return false;
    return true;
}

/* MODSEQ [entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §3.1.5) */
static int parse_modseq_value(struct sp *s, const struct imap_arg **cur, struct imap_search *k)
{
    static const char *const types[] = { "priv", "shared", "all" };
    const struct imap_arg *v = take(cur);
    if (v && (v->type == IMAP_ARG_QUOTED || v->type == IMAP_ARG_LITERAL)) {
        if (!v->str || !valid_entry_name(v->str, v->len))
            return fail(s, IMAP_PERR_SYNTAX, "Invalid MODSEQ entry name");
        k->field = v->str;
        k->field_len = v->len;
        const struct imap_arg *t = take(cur);
        for (size_t i = 0; i < sizeof types / sizeof types[0] && !k->entry_type; i++)
            if (imap_arg_is(t, types[i]))
                k->entry_type = types[i];
        if (!k->entry_type)
            return fail(s, IMAP_PERR_SYNTAX, "Invalid MODSEQ entry type");
        v = take(cur);
    }
    if (!is_atom_arg(v) || !imap_parse_modseq(v->str, v->len, true, &k->number))
        return fail(s, IMAP_PERR_SYNTAX, "Invalid MODSEQ value");
    return 0;
}

static int parse_string_value(struct sp *s, const struct imap_arg **cur, const char **str,
                              size_t *len)
{
    if (!imap_arg_astring(take(cur), str, len))
        return fail(s, IMAP_PERR_SYNTAX, "Missing or invalid string in SEARCH");
    return 0;
}

static int parse_seqset_value(struct sp *s, const struct imap_arg *v, struct imap_search *k)
{
    if (!is_atom_arg(v))
        return fail(s, IMAP_PERR_SYNTAX, "Missing sequence set");
    int rc = imap_seqset_parse(s->a, v->str, v->len, IMAP_SEQSET_ALLOW_SAVED, &k->set);
    return rc ? fail(s, rc, "Invalid sequence set") : 0;
}

static int parse_value(struct sp *s, enum key_value value, const struct imap_arg **cur,
                       struct imap_search *k)
{
    const struct imap_arg *v;
    uint32_t n32;
    int rc;
    switch (value) {
    case V_NONE:
        return 0;
    case V_ASTRING:
        return parse_string_value(s, cur, &k->str, &k->str_len);
    case V_KEYWORD:
        /* flag-keyword = atom: no "\" system flags. */
        v = take(cur);
        if (!is_atom_arg(v) || imap_parse_flag(v->str, v->len) != 0)
            return fail(s, IMAP_PERR_SYNTAX, "Invalid keyword");
        k->str = v->str;
        k->str_len = v->len;
        return 0;
    case V_DATE:
        return parse_date_value(s, take(cur), k);
    case V_NUMBER64:
        v = take(cur);
        if (!is_atom_arg(v) || !imap_parse_number64(v->str, v->len, &k->number))
            return fail(s, IMAP_PERR_SYNTAX, "Invalid number in SEARCH");
        return 0;
    case V_NZNUMBER:
        v = take(cur);
        if (!is_atom_arg(v) || !imap_parse_nz_number(v->str, v->len, &n32))
            return fail(s, IMAP_PERR_SYNTAX, "Invalid interval in SEARCH");
        k->number = n32;
        return 0;
    case V_UIDSET:
        return parse_seqset_value(s, take(cur), k);
    case V_HEADER:
        rc = parse_string_value(s, cur, &k->field, &k->field_len);
        return rc ? rc : parse_string_value(s, cur, &k->str, &k->str_len);
    case V_MODSEQ:
        return parse_modseq_value(s, cur, k);
    case V_NOT:
        return parse_key(s, cur, &k->child);
    case V_OR:
        rc = parse_key(s, cur, &k->child);
        return rc ? rc : parse_key(s, cur, &k->child->next);
    }
    return fail(s, IMAP_PERR_SYNTAX, "Invalid search key");
}

/* A sequence set written as a key: it starts with a digit, '*' or '$'. */
static bool looks_like_seqset(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM && a->len > 0 &&
           ((a->str[0] >= '0' && a->str[0] <= '9') || a->str[0] == '*' || a->str[0] == '$');
}

static int parse_one_key(struct sp *s, const struct imap_arg **cur, struct imap_search **out)
{
    const struct imap_arg *arg = take(cur);
    struct imap_search *k = new_node(s, IMAP_SK_AND);
    if (!k)
        return fail(s, IMAP_PERR_NOMEM, "Out of memory");
    *out = k;
    if (!arg)
        return fail(s, IMAP_PERR_SYNTAX, "Missing search key");
    if (arg->type == IMAP_ARG_LIST) {
        if (!arg->child)
            return fail(s, IMAP_PERR_SYNTAX, "Empty search group");
        return parse_keys(s, arg->child, k);
    }
    const struct search_key_def *d = find_key(arg);
    if (d) {
        k->key = d->key;
        return parse_value(s, d->value, cur, k);
    }
    if (looks_like_seqset(arg)) {
        k->key = IMAP_SK_SEQSET;
        return parse_seqset_value(s, arg, k);
    }
    return fail(s, IMAP_PERR_SYNTAX, "Unknown search key");
}

static int parse_key(struct sp *s, const struct imap_arg **cur, struct imap_search **out)
{
    if (s->depth >= SEARCH_MAX_DEPTH)
        return fail(s, IMAP_PERR_SYNTAX, "Search keys nested too deeply");
    s->depth++;
    int rc = parse_one_key(s, cur, out);
    s->depth--;
    return rc;
}

/* RETURN (opts): RFC 4731 §3.1; "RETURN ()" means "RETURN (ALL)". */
static int parse_return(struct sp *s, const struct imap_arg *list, struct imap_search_cmd *out)
{
    if (!list || list->type != IMAP_ARG_LIST)
        return fail(s, IMAP_PERR_SYNTAX, "RETURN needs a list of options");
    out->esearch = true;
    for (const struct imap_arg *o = list->child; o; o = o->next) {
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof return_opts / sizeof return_opts[0] && !bit; i++)
            if (imap_arg_is(o, return_opts[i].name))
                bit = return_opts[i].bit;
        if (!bit)
            return fail(s, IMAP_PERR_SYNTAX, "Unknown RETURN option");
        out->ret |= bit;
    }
    if (!out->ret)
        out->ret = IMAP_SR_ALL;
    return 0;
}

/* charset = atom / quoted. RFC 9051 §6.4.4: UTF-8 and US-ASCII must work. */
static int parse_charset(struct sp *s, const struct imap_arg *v, struct imap_search_cmd *out)
{
    if (!v || (v->type != IMAP_ARG_ATOM && v->type != IMAP_ARG_QUOTED))
        return fail(s, IMAP_PERR_SYNTAX, "Missing charset");
    if (strcasecmp(v->str, "UTF-8") != 0 && strcasecmp(v->str, "US-ASCII") != 0)
        return fail(s, IMAP_PERR_BADCHARSET, "Unsupported charset");
    out->charset_given = true;
    return 0;
}

int imap_parse_search(struct imap_arena *a, const struct imap_arg *args,
                      struct imap_search_cmd *out, const char **err)
{
    struct sp s = { a, err, 0 };
    const struct imap_arg *cur = args;
    int rc;
    memset(out, 0, sizeof *out);
    *err = NULL;
    if (imap_arg_is(cur, "RETURN")) {
        if ((rc = parse_return(&s, cur->next, out)) != 0)
            return rc;
        cur = cur->next->next;
    }
    if (imap_arg_is(cur, "CHARSET")) {
        if ((rc = parse_charset(&s, cur->next, out)) != 0)
            return rc;
        cur = cur->next->next;
    }
    if (!cur)
        return fail(&s, IMAP_PERR_SYNTAX, "Missing search key");
    out->root = new_node(&s, IMAP_SK_AND);
    if (!out->root)
        return fail(&s, IMAP_PERR_NOMEM, "Out of memory");
    return parse_keys(&s, cur, out->root);
}
