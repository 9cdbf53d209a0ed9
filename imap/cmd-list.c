/*
 * LIST and LSUB (RFC 9051 §6.3.9, RFC 3501 §6.3.8-9) with LIST-EXTENDED
 * (RFC 5258: selection and return options, several patterns), LIST-STATUS
 * (RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154). One
 * hierarchy delimiter, "/".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

#define MAX_PATTERNS 16

enum { SEL_SUBSCRIBED = 1, SEL_SPECIAL = 2, SEL_RECURSIVE = 4 };
enum { RET_SUBSCRIBED = 1, RET_SPECIAL = 2, RET_STATUS = 4 };

struct list_req {
    bool lsub;
    bool extended;       /* LIST-EXTENDED syntax was used */
    unsigned sel, ret;
    unsigned status;     /* STATUS items of RETURN (STATUS (...)) */
    char *patterns[MAX_PATTERNS];
    size_t n_patterns;
};

struct entry {
    char *name;
    struct store_mailbox_info info;  /* info.name is name; zero when !exists */
    char special[STORE_SPECIAL_USE_MAX + 1];
    bool exists, subscribed;
};

struct listing {
    struct entry *e;
    size_t n, cap;
};

static struct entry *find(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0)
            return &l->e[i];
    return NULL;
}

static struct entry *add_entry(struct listing *l, const char *name)
{
    struct entry *e = find(l, name);
    if (e)
        return e;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct entry *grown = realloc(l->e, cap * sizeof *grown);
        if (!grown)
            return NULL;
        l->e = grown;
        l->cap = cap;
    }
    e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name)
        return NULL;
    e->info.name = e->name;
    l->n++;
    return e;
}

static void free_listing(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].name);
    free(l->e);
}

static void add_mailbox(void *arg, const struct store_mailbox_info *m)
{
    struct entry *e = add_entry(arg, m->name);
    if (!e)
        return;
    e->info = *m;
    e->info.name = e->name;
    snprintf(e->special, sizeof e->special, "%s", m->special_use ? m->special_use : "");
    e->exists = true;
    e->subscribed = m->subscribed;
}

static void add_subscription(void *arg, const char *name)
{
    struct entry *e = add_entry(arg, name);
    if (e)
        e->subscribed = true;
}

/*
 * RFC 9051 §6.3.9: "*" matches anything, "%" anything but the delimiter.
 * One row of a dynamic programme per pattern byte: O(pattern x name), so
 * no pattern of wildcards can make it backtrack without end.
 */
static bool match(const char *pat, const char *name)
{
    size_t n = strlen(name);
    bool *row = calloc(n + 1, sizeof *row);
    if (!row)
        return false;
    row[0] = true; /* the empty pattern matches the empty prefix */
    for (const char *p = pat; *p; p++) {
        if (*p == '*' || *p == '%') {
            bool reach = false;
            for (size_t j = 0; j <= n; j++) {
                if (*p == '%' && j > 0 && name[j - 1] == '/')
                    reach = false;
                reach = reach || row[j];
                row[j] = reach;
            }
        } else {
            for (size_t j = n; j > 0; j--)
                row[j] = row[j - 1] && name[j - 1] == *p;
            row[0] = false;
        }
    }
    bool ok = row[n];
    free(row);
    return ok;
}

static bool match_any(const struct list_req *q, const char *name)
{
    for (size_t i = 0; i < q->n_patterns; i++)
        if (match(q->patterns[i], name))
            return true;
    return false;
}

static bool is_child(const char *child, const char *parent)
{
    size_t n = strlen(parent);
    return strncmp(child, parent, n) == 0 && child[n] == '/';
}

static bool has_child(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].exists && is_child(l->e[i].name, name))
            return true;
    return false;
}

/* Does e meet the selection options (RFC 5258 §3.1)? */
static bool selected(const struct list_req *q, const struct entry *e)
{
    if (q->lsub || (q->sel & SEL_SUBSCRIBED))
        return e->subscribed && (!(q->sel & SEL_SPECIAL) || e->special[0]);
    return e->exists && (!(q->sel & SEL_SPECIAL) || e->special[0]);
}

static bool selected_descendant(const struct list_req *q, const struct listing *l,
                                const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (is_child(l->e[i].name, name) && selected(q, &l->e[i]))
            return true;
    return false;
}

static void write_entry(struct imap_session *s, const struct list_req *q,
                        const struct listing *all, const char *name, const struct entry *e)
{
    struct buf a = { 0 };
    bool exists = e && e->exists;
    if (q->lsub && !exists)
        buf_printf(&a, SIZE_MAX, "\\Noselect");
    else if (!exists)
        buf_printf(&a, SIZE_MAX, q->extended ? "\\NonExistent" : "\\Noselect");
    buf_printf(&a, SIZE_MAX, "%s%s", a.len ? " " : "",
               has_child(all, name) ? "\\HasChildren" : "\\HasNoChildren");
    if (e && e->subscribed && ((q->ret & RET_SUBSCRIBED) || (q->sel & SEL_SUBSCRIBED)))
        buf_printf(&a, SIZE_MAX, " \\Subscribed");
    /* RFC 6154 §2: in a plain LIST always; extended, when asked. */
    if (exists && e->special[0] &&
        (!q->extended || (q->ret & RET_SPECIAL) || (q->sel & SEL_SPECIAL)))
        buf_printf(&a, SIZE_MAX, " %s", e->special);
    imap_printf(s, "* %s (%.*s) \"/\" ", q->lsub ? "LSUB" : "LIST", (int)a.len, a.data);
    imap_write_mailbox(s, name);
    if ((q->sel & SEL_RECURSIVE) && selected_descendant(q, all, name))
        imap_printf(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    imap_printf(s, "\r\n");
    buf_free(&a);
    /* RFC 5819: STATUS right after the LIST of each selectable mailbox. */
    if ((q->ret & RET_STATUS) && exists)
        imap_write_status(s, &e->info, q->status);
}

/*
 * Every name that matches: selected entries, entries with a selected
 * descendant under RECURSIVEMATCH, and levels above selected entries that
 * do not exist (RFC 9051 §6.3.9: shown as \Noselect; LIST-EXTENDED says
 * \NonExistent).
 */
static void list_matches(struct imap_session *s, const struct list_req *q, struct listing *all)
{
    struct listing shown = { 0 };
    for (size_t i = 0; i < all->n; i++) {
        const struct entry *e = &all->e[i];
        bool sel = selected(q, e);
        bool via_child = (q->sel & SEL_RECURSIVE) && selected_descendant(q, all, e->name);
        if ((sel || via_child) && match_any(q, e->name) && !find(&shown, e->name)) {
            add_entry(&shown, e->name);
            write_entry(s, q, all, e->name, e);
        }
        /* A level is shown for a selected entry the patterns hide ("a/b"
         * under "%" shows "a"); under "*" the entry shows itself. */
        if (!sel || match_any(q, e->name))
            continue;
        char level[STORE_MAILBOX_NAME_MAX + 1];
        snprintf(level, sizeof level, "%s", e->name);
        for (char *slash = strrchr(level, '/'); slash; slash = strrchr(level, '/')) {
            *slash = 0;
            if (find(all, level) || find(&shown, level) || !match_any(q, level))
                continue;
            add_entry(&shown, level);
            write_entry(s, q, all, level, NULL);
        }
    }
    free_listing(&shown);
}

/* ------------------------------------------------------------ arguments */

/* list-mailbox = 1*list-char / string: an atom may hold "%" "*" "]" (RFC 9051 §9). */
static bool list_arg(const struct imap_arg *a, const char **str, size_t *len)
{
    if (a && a->type == IMAP_ARG_ATOM) {
        *str = a->str;
        *len = a->len;
        return true;
    }
    return imap_arg_astring(a, str, len);
}

/* reference + pattern, as UTF-8 with INBOX in capitals. */
static char *full_pattern(struct imap_session *s, const char *ref, size_t rl, const char *pat,
                          size_t pl)
{
    char raw[2 * STORE_MAILBOX_NAME_MAX + 2];
    if (rl + pl + 1 >= sizeof raw)
        return NULL;
    snprintf(raw, sizeof raw, "%.*s%s%.*s", (int)rl, ref,
             rl && ref[rl - 1] != '/' && pl && pat[0] != '/' ? "/" : "", (int)pl, pat);
    size_t cap = IMAP_UTF7_DECODED_MAX(sizeof raw);
    char *out = imap_arena_alloc(imap_parser_arena(s->parser), cap);
    if (!out)
        return NULL;
    if (s->utf8) /* IMAP4rev2: patterns are UTF-8 like the names */
        memcpy(out, raw, strlen(raw) + 1);
    else if (imap_utf7_decode(raw, strlen(raw), out, cap) < 0)
        return NULL;
    if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == 0 || out[5] == '/'))
        memcpy(out, "INBOX", 5);
    return out;
}

static bool parse_selection(const struct imap_arg *list, struct list_req *q)
{
    for (const struct imap_arg *o = list->child; o; o = o->next) {
        if (imap_arg_is(o, "SUBSCRIBED"))
            q->sel |= SEL_SUBSCRIBED;
        else if (imap_arg_is(o, "SPECIAL-USE"))
            q->sel |= SEL_SPECIAL;
        else if (imap_arg_is(o, "RECURSIVEMATCH"))
            q->sel |= SEL_RECURSIVE;
        else if (!imap_arg_is(o, "REMOTE")) /* no remote mailboxes here */
            return false;
    }
    /* RFC 5258 §3.1: RECURSIVEMATCH only refines another option. */
    return !(q->sel & SEL_RECURSIVE) || (q->sel & ~SEL_RECURSIVE);
}

static bool parse_return(struct imap_session *s, const struct imap_arg *list, struct list_req *q)
{
    for (const struct imap_arg *o = list->child; o; o = o->next) {
        if (imap_arg_is(o, "SUBSCRIBED")) {
            q->ret |= RET_SUBSCRIBED;
        } else if (imap_arg_is(o, "SPECIAL-USE")) {
            q->ret |= RET_SPECIAL;
        } else if (imap_arg_is(o, "STATUS")) {
            if (!imap_status_items(s, o->next, &q->status))
                return false; /* BAD sent */
            q->ret |= RET_STATUS;
            o = o->next;
        } else if (!imap_arg_is(o, "CHILDREN")) { /* children are always shown */
            imap_bad(s, "Unknown LIST return option");
            return false;
        }
    }
    return true;
}

static bool parse_list(struct imap_session *s, const struct imap_request *r, struct list_req *q)
{
    const struct imap_arg *a = r->args;
    q->lsub = strcmp(r->name, "LSUB") == 0;
    if (a && a->type == IMAP_ARG_LIST && !q->lsub) {
        q->extended = true;
        if (!parse_selection(a, q)) {
            imap_bad(s, "Unknown or incomplete LIST selection options");
            return false;
        }
        a = a->next;
    }
    const char *ref, *pat;
    size_t rl, pl;
    if (!list_arg(a, &ref, &rl) || !a->next) {
        imap_bad(s, "%s takes a reference and a mailbox pattern", r->name);
        return false;
    }
    const struct imap_arg *pats = a->next, *p = pats;
    if (pats->type == IMAP_ARG_LIST && !q->lsub) {
        q->extended = true;
        p = pats->child;
    }
    for (; p; p = pats->type == IMAP_ARG_LIST ? p->next : NULL) {
        if (!list_arg(p, &pat, &pl) || q->n_patterns == MAX_PATTERNS ||
            !(q->patterns[q->n_patterns++] = full_pattern(s, ref, rl, pat, pl))) {
            imap_bad(s, "Invalid mailbox pattern (modified UTF-7 expected)");
            return false;
        }
    }
    const struct imap_arg *ret = pats->next;
    if (ret && !q->lsub) {
        if (!imap_arg_is(ret, "RETURN") || !ret->next || ret->next->type != IMAP_ARG_LIST ||
            ret->next->next) {
            imap_bad(s, "LIST ... RETURN (options)");
            return false;
        }
        q->extended = true;
        return parse_return(s, ret->next, q);
    }
    if (ret) {
        imap_bad(s, "LSUB takes a reference and a mailbox pattern");
        return false;
    }
    return q->n_patterns > 0;
}

void imap_cmd_list(struct imap_session *s, const struct imap_request *r)
{
    struct list_req q = { 0 };
    if (!parse_list(s, r, &q))
        return;
    if (q.n_patterns == 1 && q.patterns[0][0] == 0 && !q.lsub && !q.sel) {
        /* §6.3.9: the hierarchy delimiter and root. */
        imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
        imap_done(s, "OK", "LIST completed");
        return;
    }
    struct listing all = { 0 };
    int res = store_mailbox_status_list(s->store, s->user_id, add_mailbox, &all);
    if (res == STORE_OK)
        res = store_subscription_list(s->store, s->user_id, add_subscription, &all);
    if (res != STORE_OK) {
        free_listing(&all);
        imap_done_store_error(s, res, r->name);
        return;
    }
    list_matches(s, &q, &all);
    free_listing(&all);
    imap_done(s, "OK", "%s completed", r->name);
}
