/*
 * petrelctl — the admin CLI: domains, users, aliases, mailboxes, queue,
 * DKIM keys and the DNS records to publish.
 *
 *   petrelctl [-c FILE] GROUP VERB [ARGS] [OPTIONS]
 *   petrelctl [-c FILE] GROUP [ARGS] [OPTIONS]    (a group of one verb: dns)
 *
 * One table row per verb (commands[] below) carries its arguments, its
 * options, its handler and its usage text; help, argument checks and
 * dispatch all read the table. Exit status: 0 done, 1 any error (one line on
 * stderr: "petrelctl: GROUP VERB: what went wrong"). Passwords are read from
 * standard input (--password-stdin) or prompted on /dev/tty without echo;
 * never taken from argv, never printed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/core.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define DEFAULT_CONFIG "/etc/petrel/petrel.conf"
#define MAX_PASSWORD 1024
#define MAX_ARGS 8

enum {
    OPT_JSON = 1 << 0,
    OPT_PASSWORD_STDIN = 1 << 1,
    OPT_QUOTA = 1 << 2,
    OPT_SELECTOR = 1 << 3,
    OPT_ALGORITHM = 1 << 4,
};

struct ctl {
    const struct command *cmd;
    struct config cfg;
    struct store *store;
    unsigned opts;          /* OPT_* given */
    const char *quota;      /* --quota value */
    const char *selector;   /* --selector value */
    const char *algorithm;  /* --algorithm value */
    const char *args[MAX_ARGS];
    int nargs;
};

typedef int (*handler_fn)(struct ctl *ctl);

struct command {
    const char *group;
    const char *verb;       /* NULL: the group is the command (dns) */
    int min_args, max_args;
    unsigned opts;          /* OPT_* accepted */
    handler_fn run;
    const char *usage;      /* arguments and options after "GROUP VERB" */
    const char *help;       /* one line */
};

/* ------------------------------------------------------------ errors */

static int fail(const struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    fputs("petrelctl: ", stderr);
    if (ctl && ctl->cmd && ctl->cmd->verb)
        fprintf(stderr, "%s %s: ", ctl->cmd->group, ctl->cmd->verb);
    else if (ctl && ctl->cmd)
        fprintf(stderr, "%s: ", ctl->cmd->group);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* The domain part of an address, lowercased into buf ("" if none). */
static const char *domain_of(const char *address, char *buf, size_t n)
{
    const char *at = strrchr(address, '@');
    size_t i = 0;
    for (const char *p = at ? at + 1 : ""; *p && i + 1 < n; p++)
        buf[i++] = (char)tolower((unsigned char)*p);
    buf[i] = '\0';
    return buf;
}

/* A store result that is not STORE_OK, in words about this command's subject. */
static int fail_store(const struct ctl *ctl, int r, const char *what, const char *name)
{
    switch (r) {
    case STORE_INVALID:
        return fail(ctl, "invalid %s %s", what, name);
    case STORE_EXISTS:
        return fail(ctl, "%s %s already exists", what, name);
    case STORE_NOTFOUND:
        return fail(ctl, "%s %s does not exist", what, name);
    case STORE_LOOP:
        return fail(ctl, "%s %s would make an alias loop", what, name);
    default:
        return fail(ctl, "%s %s: %s", what, name, store_strerror(r));
    }
}

/* ------------------------------------------------------ table output */

/*
 * Rows of cells, printed as aligned columns under a header, or as a JSON
 * array of objects. Each cell keeps its display text and its JSON value.
 */
struct cell {
    char *text;
    char *json;
};

struct table {
    int ncols;
    const char *const *heads;  /* column titles */
    const char *const *keys;   /* JSON keys */
    struct cell *cells;
    size_t nrows, cap;
    bool oom;
};

static char *json_string(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 3);
    if (!out)
        return NULL;
    char *p = out;
    *p++ = '"';
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        switch (*q) {
        case '"': *p++ = '\\'; *p++ = '"'; break;
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        case '\r': *p++ = '\\'; *p++ = 'r'; break;
        case '\t': *p++ = '\\'; *p++ = 't'; break;
        default:
            if (*q < 0x20 || *q == 0x7f)
                p += sprintf(p, "\\u%04x", *q);
            else
                *p++ = (char)*q;
        }
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

static void table_init(struct table *t, int ncols, const char *const *heads,
                       const char *const *keys)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->heads = heads;
    t->keys = keys;
}

static struct cell *table_row(struct table *t)
{
    if (t->oom)
        return NULL;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct cell *c = realloc(t->cells, cap * (size_t)t->ncols * sizeof *c);
        if (!c) {
            t->oom = true;
            return NULL;
        }
        t->cells = c;
        t->cap = cap;
    }
    struct cell *row = &t->cells[t->nrows++ * (size_t)t->ncols];
    memset(row, 0, (size_t)t->ncols * sizeof *row);
    return row;
}

static void cell_set(struct table *t, struct cell *c, char *text, char *json)
{
    c->text = text;
    c->json = json;
    if (!text || !json)
        t->oom = true;
}

static void cell_str(struct table *t, struct cell *c, const char *s)
{
    cell_set(t, c, strdup(s ? s : ""), json_string(s ? s : ""));
}

/* A number shown as display but given to JSON as the plain number. */
static void cell_num(struct table *t, struct cell *c, const char *display, uint64_t n)
{
    char *j = NULL;
    if (asprintf(&j, "%" PRIu64, n) < 0)
        j = NULL;
    cell_set(t, c, strdup(display), j);
}

static void cell_uint(struct table *t, struct cell *c, uint64_t n)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, n);
    cell_num(t, c, buf, n);
}

static void cell_bool(struct table *t, struct cell *c, bool b)
{
    cell_set(t, c, strdup(b ? "yes" : "no"), strdup(b ? "true" : "false"));
}

static void cell_time(struct table *t, struct cell *c, int64_t when)
{
    char buf[32] = "-";
    time_t tt = (time_t)when;
    struct tm tm;
    if (when > 0 && gmtime_r(&tt, &tm))
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cell_set(t, c, strdup(buf), when > 0 ? json_string(buf) : strdup("null"));
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) {
        free(t->cells[i].text);
        free(t->cells[i].json);
    }
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

static void print_padded(const char *s, size_t width, bool last)
{
    fputs(s, stdout);
    if (!last)
        for (size_t n = strlen(s); n < width + 2; n++)
            putchar(' ');
}

static int table_print(struct ctl *ctl, struct table *t)
{
    if (t->oom) {
        table_free(t);
        return fail(ctl, "out of memory");
    }
    if (ctl->opts & OPT_JSON) {
        putchar('[');
        for (size_t r = 0; r < t->nrows; r++) {
            fputs(r ? ",\n {" : "{", stdout);
            for (int c = 0; c < t->ncols; c++)
                printf("%s\"%s\": %s", c ? ", " : "", t->keys[c],
                       t->cells[r * (size_t)t->ncols + (size_t)c].json);
            putchar('}');
        }
        puts("]");
    } else {
        size_t width[16] = { 0 };
        for (int c = 0; c < t->ncols; c++) {
            width[c] = strlen(t->heads[c]);
            for (size_t r = 0; r < t->nrows; r++) {
                size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)c].text);
                if (n > width[c])
                    width[c] = n;
            }
        }
        for (int c = 0; c < t->ncols; c++)
            print_padded(t->heads[c], width[c], c == t->ncols - 1);
        putchar('\n');
        for (size_t r = 0; r < t->nrows; r++) {
            for (int c = 0; c < t->ncols; c++)
                print_padded(t->cells[r * (size_t)t->ncols + (size_t)c].text, width[c],
                             c == t->ncols - 1);
            putchar('\n');
        }
    }
    table_free(t);
    return fflush(stdout) == 0 ? 0 : fail(ctl, "cannot write output: %s", strerror(errno));
}

/* 0 -> "0", 1288490 -> "1.2M", 52428800 -> "50M" (powers of 1024). */
static void human_size(uint64_t n, char *buf, size_t len)
{
    static const char units[] = "BKMGTPE";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (n == 0)
        snprintf(buf, len, "0");
    else if (u == 0)
        snprintf(buf, len, "%" PRIu64 "B", n);
    else if (v < 10 && (uint64_t)(v * 10) % 10 != 0)
        snprintf(buf, len, "%.1f%c", (double)(uint64_t)(v * 10) / 10, units[u]);
    else
        snprintf(buf, len, "%.0f%c", v, units[u]);
}

/* --------------------------------------------------------- passwords */

static struct termios saved_tty;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line (without its newline) from f into buf. Returns 0, or -1 if
 * nothing could be read or the line is too long. */
static int read_line(FILE *f, char *buf, size_t n)
{
    if (!fgets(buf, (int)n, f))
        return -1;
    size_t len = strlen(buf);
    if (len && buf[len - 1] == '\n')
        buf[--len] = '\0';
    else if (len == n - 1)
        return -1; /* no newline within the limit: too long */
    if (len && buf[len - 1] == '\r')
        buf[--len] = '\0';
    return 0;
}

static int prompt_tty(struct ctl *ctl, const char *prompt, char *buf, size_t n)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(ctl, "no terminal to ask for the password (use --password-stdin)");
    FILE *f = fdopen(fd, "r+");
    if (!f) {
        close(fd);
        return fail(ctl, "cannot open /dev/tty: %s", strerror(errno));
    }
    struct termios t;
    bool echo_off = tcgetattr(fd, &t) == 0;
    if (echo_off) {
        saved_tty = t;
        tty_fd = fd;
        signal(SIGINT, restore_tty);
        signal(SIGTERM, restore_tty);
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        t.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &t);
    }
    fputs(prompt, f);
    fflush(f);
    int rc = read_line(f, buf, n);
    if (echo_off) {
        tcsetattr(fd, TCSAFLUSH, &saved_tty);
        tty_fd = -1;
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    fputc('\n', f);
    fclose(f);
    if (rc != 0)
        return fail(ctl, "could not read the password");
    return 0;
}

/* Gets a new password into buf per the command's options. */
static int get_password(struct ctl *ctl, const char *address, char *buf, size_t n)
{
    if (ctl->opts & OPT_PASSWORD_STDIN) {
        if (read_line(stdin, buf, n) != 0 && !buf[0])
            return fail(ctl, "empty password");
        if (strlen(buf) == n - 1)
            return fail(ctl, "password longer than %d bytes", MAX_PASSWORD);
    } else {
        char again[MAX_PASSWORD + 2], prompt[400];
        snprintf(prompt, sizeof prompt, "New password for %s: ", address);
        if (prompt_tty(ctl, prompt, buf, n) != 0)
            return 1;
        if (buf[0] && prompt_tty(ctl, "Retype the password: ", again, sizeof again) != 0) {
            explicit_bzero(buf, n);
            return 1;
        }
        bool same = !buf[0] || strcmp(buf, again) == 0;
        explicit_bzero(again, sizeof again);
        if (!same) {
            explicit_bzero(buf, n);
            return fail(ctl, "the passwords do not match");
        }
    }
    if (!buf[0])
        return fail(ctl, "empty password");
    return 0;
}

/* Reads a password and makes the stored credentials. */
static int make_credentials(struct ctl *ctl, const char *address, char **hash, char **scram)
{
    char pw[MAX_PASSWORD + 2] = "";
    if (get_password(ctl, address, pw, sizeof pw) != 0)
        return 1;
    int rc = auth_make_credentials(pw, hash, scram);
    explicit_bzero(pw, sizeof pw);
    if (rc != 0)
        return fail(ctl, "could not hash the password");
    return 0;
}

static void free_credentials(char **hash, char **scram)
{
    if (*hash)
        explicit_bzero(*hash, strlen(*hash));
    if (*scram)
        explicit_bzero(*scram, strlen(*scram));
    free(*hash);
    free(*scram);
    *hash = *scram = NULL;
}

/* "50M" -> bytes. */
static int get_size(struct ctl *ctl, const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || parse_size(s, out) != 0)
        return fail(ctl, "invalid size %s (bytes, or with K, M, G; 0 = no limit)", s ? s : "");
    return 0;
}

static int get_id(struct ctl *ctl, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = s && isdigit((unsigned char)*s) ? strtoll(s, &end, 10) : -1;
    if (v <= 0 || errno || *end)
        return fail(ctl, "invalid queue id %s", s ? s : "");
    *out = v;
    return 0;
}

/* ----------------------------------------------------------- domains */

static int domain_add(struct ctl *ctl)
{
    const char *d = ctl->args[0];
    int r = store_domain_add(ctl->store, d);
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", d);
    printf("added domain %s\n", d);
    return 0;
}

static int domain_del(struct ctl *ctl)
{
    const char *d = ctl->args[0];
    int r = store_domain_del(ctl->store, d);
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", d);
    printf("deleted domain %s and its users and aliases\n", d);
    return 0;
}

static void domain_row(void *arg, const struct store_domain_info *d)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    cell_str(t, &c[0], d->name);
    cell_uint(t, &c[1], d->users);
    cell_uint(t, &c[2], d->aliases);
}

static int domain_list(struct ctl *ctl)
{
    static const char *const heads[] = { "DOMAIN", "USERS", "ALIASES" };
    static const char *const keys[] = { "domain", "users", "aliases" };
    struct table t;
    table_init(&t, 3, heads, keys);
    int r = store_domain_list(ctl->store, domain_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail(ctl, "%s", store_strerror(r));
    }
    return table_print(ctl, &t);
}

/* ------------------------------------------------------------- users */

static int user_add(struct ctl *ctl)
{
    const char *a = ctl->args[0];
    char dom[256];
    uint64_t quota = ctl->cfg.default_quota;
    if ((ctl->opts & OPT_QUOTA) && get_size(ctl, ctl->quota, &quota) != 0)
        return 1;
    /* Check what we can before asking for a password. */
    struct store_user *u = calloc(1, sizeof *u);
    if (!u)
        return fail(ctl, "out of memory");
    int r = store_user_get(ctl->store, a, u);
    free(u);
    if (r == STORE_INVALID || !strchr(a, '@'))
        return fail(ctl, "invalid address %s", a);
    if (r == STORE_OK)
        return fail(ctl, "user %s already exists", a);
    if (!store_domain_is_local(ctl->store, domain_of(a, dom, sizeof dom)))
        return fail(ctl, "domain %s does not exist", dom);

    char *hash = NULL, *scram = NULL;
    if (make_credentials(ctl, a, &hash, &scram) != 0)
        return 1;
    r = store_user_add(ctl->store, a, hash, scram, quota);
    free_credentials(&hash, &scram);
    if (r == STORE_NOTFOUND)
        return fail(ctl, "domain %s does not exist", dom);
    if (r == STORE_EXISTS)
        return fail(ctl, "%s already exists (as a user or an alias)", a);
    if (r != STORE_OK)
        return fail_store(ctl, r, "user", a);
    printf("added user %s\n", a);
    return 0;
}

static int user_del(struct ctl *ctl)
{
    const char *a = ctl->args[0];
    int r = store_user_del(ctl->store, a);
    if (r != STORE_OK)
        return fail_store(ctl, r, r == STORE_INVALID ? "address" : "user", a);
    printf("deleted user %s and all their mail\n", a);
    return 0;
}

static int user_passwd(struct ctl *ctl)
{
    const char *a = ctl->args[0];
    struct store_user *u = calloc(1, sizeof *u);
    if (!u)
        return fail(ctl, "out of memory");
    int r = store_user_get(ctl->store, a, u);
    free(u);
    if (r != STORE_OK)
        return fail_store(ctl, r, r == STORE_INVALID ? "address" : "user", a);
    char *hash = NULL, *scram = NULL;
    if (make_credentials(ctl, a, &hash, &scram) != 0)
        return 1;
    r = store_user_passwd(ctl->store, a, hash, scram);
    free_credentials(&hash, &scram);
    if (r != STORE_OK)
        return fail_store(ctl, r, "user", a);
    printf("changed the password of %s\n", a);
    return 0;
}

static int user_quota(struct ctl *ctl)
{
    const char *a = ctl->args[0];
    uint64_t q;
    if (get_size(ctl, ctl->args[1], &q) != 0)
        return 1;
    int r = store_user_set_quota(ctl->store, a, q);
    if (r != STORE_OK)
        return fail_store(ctl, r, r == STORE_INVALID ? "address" : "user", a);
    char h[32];
    human_size(q, h, sizeof h);
    printf("set the quota of %s to %s\n", a, q ? h : "unlimited");
    return 0;
}

static void user_row(void *arg, const struct store_user *u)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    char used[32], quota[32];
    human_size(u->used, used, sizeof used);
    if (u->quota)
        human_size(u->quota, quota, sizeof quota);
    else
        snprintf(quota, sizeof quota, "unlimited");
    cell_str(t, &c[0], u->address);
    cell_num(t, &c[1], used, u->used);
    cell_num(t, &c[2], quota, u->quota);
    cell_uint(t, &c[3], u->messages);
}

static int user_list(struct ctl *ctl)
{
    static const char *const heads[] = { "ADDRESS", "USED", "QUOTA", "MESSAGES" };
    static const char *const keys[] = { "address", "used", "quota", "messages" };
    struct table t;
    table_init(&t, 4, heads, keys);
    const char *dom = ctl->nargs ? ctl->args[0] : NULL;
    int r = store_user_list(ctl->store, dom, user_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail_store(ctl, r, "domain", dom ? dom : "");
    }
    return table_print(ctl, &t);
}

/* ----------------------------------------------------------- aliases */

static int alias_add(struct ctl *ctl)
{
    const char *a = ctl->args[0], *targets = ctl->args[1];
    char dom[256];
    int r = store_alias_add(ctl->store, a, targets);
    switch (r) {
    case STORE_OK:
        printf("added alias %s -> %s\n", a, targets);
        return 0;
    case STORE_INVALID:
        return fail(ctl, "invalid alias address or target in %s %s", a, targets);
    case STORE_NOTFOUND:
        if (!store_domain_is_local(ctl->store, domain_of(a, dom, sizeof dom)))
            return fail(ctl, "domain %s does not exist", dom);
        /* A target in a local domain must be a user or alias already. */
        return fail(ctl, "a target in %s is not a local user or alias", targets);
    case STORE_EXISTS: {
        struct store_user *u = calloc(1, sizeof *u);
        bool is_user = u && store_user_get(ctl->store, a, u) == STORE_OK;
        free(u);
        if (is_user)
            return fail(ctl, "%s is a user; an alias cannot have the same address", a);
        return fail(ctl, "alias %s already has the targets %s", a, targets);
    }
    case STORE_LOOP:
        return fail(ctl, "alias %s -> %s would loop", a, targets);
    default:
        return fail_store(ctl, r, "alias", a);
    }
}

static int alias_del(struct ctl *ctl)
{
    const char *a = ctl->args[0], *targets = ctl->nargs > 1 ? ctl->args[1] : NULL;
    int r = store_alias_del(ctl->store, a, targets);
    if (r == STORE_NOTFOUND && targets)
        return fail(ctl, "alias %s with target %s does not exist", a, targets);
    if (r != STORE_OK)
        return fail_store(ctl, r, r == STORE_INVALID ? "address" : "alias", a);
    if (targets)
        printf("removed %s from alias %s\n", targets, a);
    else
        printf("deleted alias %s\n", a);
    return 0;
}

static void alias_row(void *arg, const struct store_alias_info *a)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    cell_str(t, &c[0], a->address);
    cell_str(t, &c[1], a->targets);
}

static int alias_list(struct ctl *ctl)
{
    static const char *const heads[] = { "ALIAS", "TARGETS" };
    static const char *const keys[] = { "alias", "targets" };
    struct table t;
    table_init(&t, 2, heads, keys);
    const char *dom = ctl->nargs ? ctl->args[0] : NULL;
    int r = store_alias_list(ctl->store, dom, alias_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail_store(ctl, r, "domain", dom ? dom : "");
    }
    return table_print(ctl, &t);
}

/* --------------------------------------------------------- mailboxes */

static void mailbox_row(void *arg, const struct store_mailbox_info *m)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    char size[32];
    human_size(m->size, size, sizeof size);
    cell_str(t, &c[0], m->name);
    cell_str(t, &c[1], m->special_use && *m->special_use ? m->special_use : "-");
    cell_uint(t, &c[2], m->messages);
    cell_uint(t, &c[3], m->unseen);
    cell_num(t, &c[4], size, m->size);
    cell_uint(t, &c[5], m->uidvalidity);
    cell_uint(t, &c[6], m->uidnext);
    cell_bool(t, &c[7], m->subscribed);
}

static int mailbox_list(struct ctl *ctl)
{
    static const char *const heads[] = { "MAILBOX", "SPECIAL-USE", "MESSAGES", "UNSEEN",
                                         "SIZE", "UIDVALIDITY", "UIDNEXT", "SUBSCRIBED" };
    static const char *const keys[] = { "mailbox", "special_use", "messages", "unseen",
                                        "size", "uidvalidity", "uidnext", "subscribed" };
    struct table t;
    table_init(&t, 8, heads, keys);
    const char *a = ctl->args[0];
    int r = store_mailbox_list(ctl->store, a, mailbox_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail_store(ctl, r, r == STORE_INVALID ? "address" : "user", a);
    }
    return table_print(ctl, &t);
}

/* ------------------------------------------------------------- queue */

static void queue_row(void *arg, const struct store_queue_info *q)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    char size[32];
    human_size(q->size, size, sizeof size);
    cell_uint(t, &c[0], (uint64_t)q->id);
    cell_str(t, &c[1], q->mail_from && *q->mail_from ? q->mail_from : "<>");
    cell_str(t, &c[2], q->rcpt);
    cell_num(t, &c[3], size, q->size);
    cell_time(t, &c[4], q->created);
    cell_uint(t, &c[5], q->attempts);
    cell_time(t, &c[6], q->next_attempt);
    cell_str(t, &c[7], q->last_error && *q->last_error ? q->last_error : "-");
}

static int queue_list(struct ctl *ctl)
{
    static const char *const heads[] = { "ID", "FROM", "TO", "SIZE", "QUEUED", "ATTEMPTS",
                                         "NEXT-ATTEMPT", "LAST-ERROR" };
    static const char *const keys[] = { "id", "from", "to", "size", "queued", "attempts",
                                        "next_attempt", "last_error" };
    struct table t;
    table_init(&t, 8, heads, keys);
    int r = store_queue_list(ctl->store, queue_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail(ctl, "%s", store_strerror(r));
    }
    return table_print(ctl, &t);
}

static int queue_flush(struct ctl *ctl)
{
    int64_t id = 0;
    if (ctl->nargs && get_id(ctl, ctl->args[0], &id) != 0)
        return 1;
    int r = store_queue_flush(ctl->store, id);
    if (r != STORE_OK)
        return fail_store(ctl, r, "queue entry", ctl->args[0] ? ctl->args[0] : "");
    if (id)
        printf("queue entry %" PRId64 " is due now\n", id);
    else
        printf("every queue entry is due now\n");
    return 0;
}

static int queue_del(struct ctl *ctl)
{
    int64_t id = 0;
    if (get_id(ctl, ctl->args[0], &id) != 0)
        return 1;
    int r = store_queue_del(ctl->store, id);
    if (r != STORE_OK)
        return fail_store(ctl, r, "queue entry", ctl->args[0]);
    printf("deleted queue entry %" PRId64 "\n", id);
    return 0;
}

/* -------------------------------------------------------------- DKIM */

#define TXT_STRING_MAX 255  /* bytes of one character-string (RFC 1035 §3.3) */
#define DNS_NAME_BUF 320    /* a DNS name in zone-file form, final dot included */

/* --algorithm names, the store's (the a= of the signatures), the library's. */
static const struct {
    const char *name;
    const char *store_name;
    enum dkim_alg alg;
} dkim_algs[] = {
    { "rsa", "rsa-sha256", DKIM_RSA_SHA256 },
    { "ed25519", "ed25519-sha256", DKIM_ED25519_SHA256 },
};

#define N_DKIM_ALGS (sizeof dkim_algs / sizeof dkim_algs[0])

static void lower_copy(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static void print_quoted(const char *p, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\')
            putchar('\\');
        putchar(p[i]);
    }
    putchar('"');
}

/*
 * One TXT record in zone-file form: NAME IN TXT and the record in quoted
 * character-strings of at most TXT_STRING_MAX bytes, inside parentheses
 * when parens. Receivers join the strings without a separator (RFC 6376
 * §3.6.2.2, RFC 7208 §3.3).
 */
static void print_txt(const char *name, const char *record, bool parens)
{
    size_t n = strlen(record), off = 0;
    printf("%s IN TXT %s", name, parens ? "( " : "");
    do {
        size_t len = n - off < TXT_STRING_MAX ? n - off : TXT_STRING_MAX;
        print_quoted(record + off, len);
        off += len;
        if (off < n)
            putchar(' ');
    } while (off < n);
    puts(parens ? " )" : "");
}

/* The TXT record of a stored key (malloc'd), *bits its size; NULL with err. */
static char *key_record(const char *pem, const char *domain, const char *selector,
                        unsigned *bits, char *err, size_t errlen)
{
    struct dkim_key *k = NULL;
    if (dkim_key_load(pem, strlen(pem), domain, selector, &k, err, errlen) != 0)
        return NULL;
    if (bits)
        *bits = dkim_key_bits(k);
    char *txt = dkim_key_txt_record(k);
    dkim_key_free(&k);
    if (!txt)
        snprintf(err, errlen, "out of memory");
    return txt;
}

/*
 * The store holds the private keys (and the password hashes, and the mail):
 * warn when another user could read it. SQLite creates petrel.db with 0644
 * less the umask; store_open makes data_dir 0700, but leaves the mode of a
 * directory that already existed.
 */
static void warn_if_readable(const struct ctl *ctl)
{
    char path[sizeof ctl->cfg.data_dir + 16];
    struct stat dir, db;
    snprintf(path, sizeof path, "%s/petrel.db", ctl->cfg.data_dir);
    if (stat(ctl->cfg.data_dir, &dir) != 0 || stat(path, &db) != 0)
        return;
    bool group = (dir.st_mode & S_IXGRP) && (db.st_mode & S_IRGRP);
    bool other = (dir.st_mode & S_IXOTH) && (db.st_mode & S_IROTH);
    if (group || other)
        fprintf(stderr, "petrelctl: warning: %s holds the private key and other users can "
                        "read it (file %03o, directory %03o): chmod 700 %s\n",
                path, (unsigned)(db.st_mode & 0777), (unsigned)(dir.st_mode & 0777),
                ctl->cfg.data_dir);
}

/* "petrel" and the year and month (UTC): petrel202612. */
static void default_selector(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(buf, n, "petrel%Y%m", &tm) == 0)
        snprintf(buf, n, "petrel");
}

struct key_find {
    const char *selector;
    bool found;
};

static void key_find_row(void *arg, const struct store_dkim_key_info *k)
{
    struct key_find *f = arg;
    if (strcasecmp(k->selector, f->selector) == 0)
        f->found = true;
}

static int fail_selector_taken(const struct ctl *ctl, const char *d, const char *sel)
{
    return fail(ctl, "domain %s already has a DKIM key with selector %s "
                     "(choose another with --selector)", d, sel);
}

/* Before making a key: the domain exists and does not have the selector. */
static int dkim_precheck(struct ctl *ctl, const char *d, const char *sel)
{
    struct key_find f = { sel, false };
    int r = store_dkim_key_list(ctl->store, d, key_find_row, &f);
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", d);
    if (f.found)
        return fail_selector_taken(ctl, d, sel);
    return 0;
}

/* Stores a new key and prints the record to publish. */
static int dkim_add_print(struct ctl *ctl, const char *d, const char *sel, const char *alg,
                          const char *pem)
{
    int r = store_dkim_key_add(ctl->store, d, sel, alg, pem);
    if (r == STORE_EXISTS)
        return fail_selector_taken(ctl, d, sel);
    if (r == STORE_INVALID)
        return fail(ctl, "invalid selector %s (labels of letters, digits and hyphens, "
                         "at most 63 bytes each, joined by dots)", sel);
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", d);
    char dom[256], s[256], name[DNS_NAME_BUF], err[256];
    lower_copy(d, dom, sizeof dom);
    lower_copy(sel, s, sizeof s);
    unsigned bits = 0;
    char *rec = key_record(pem, dom, s, &bits, err, sizeof err);
    if (!rec) {
        store_dkim_key_del(ctl->store, dom, s);
        return fail(ctl, "the new key does not load: %s", err);
    }
    snprintf(name, sizeof name, "%s._domainkey.%s.", s, dom);
    printf("added DKIM key %s for %s (%s, %u bits); publish this TXT record:\n", s, dom, alg,
           bits);
    print_txt(name, rec, true);
    free(rec);
    warn_if_readable(ctl);
    return 0;
}

static int dkim_generate(struct ctl *ctl)
{
    const char *d = ctl->args[0], *an = ctl->algorithm ? ctl->algorithm : "rsa";
    size_t a = 0;
    while (a < N_DKIM_ALGS && strcmp(dkim_algs[a].name, an) != 0)
        a++;
    if (a == N_DKIM_ALGS)
        return fail(ctl, "invalid algorithm %s (rsa or ed25519)", an);
    char def[32];
    const char *sel = ctl->selector;
    if (!sel) {
        default_selector(def, sizeof def);
        sel = def;
    }
    if (dkim_precheck(ctl, d, sel) != 0)
        return 1;
    char *pem = NULL, *txt = NULL;
    if (dkim_key_generate(dkim_algs[a].alg, &pem, &txt) != 0)
        return fail(ctl, "could not generate the key");
    free(txt); /* printed from the stored key, as dns prints it */
    int rc = dkim_add_print(ctl, d, sel, dkim_algs[a].store_name, pem);
    explicit_bzero(pem, strlen(pem));
    free(pem);
    return rc;
}

static void dkim_row(void *arg, const struct store_dkim_key_info *k)
{
    struct table *t = arg;
    struct cell *c = table_row(t);
    if (!c)
        return;
    cell_str(t, &c[0], k->domain);
    cell_str(t, &c[1], k->selector);
    cell_str(t, &c[2], k->algorithm);
    cell_time(t, &c[3], k->created);
}

static int dkim_list(struct ctl *ctl)
{
    static const char *const heads[] = { "DOMAIN", "SELECTOR", "ALGORITHM", "CREATED" };
    static const char *const keys[] = { "domain", "selector", "algorithm", "created" };
    struct table t;
    table_init(&t, 4, heads, keys);
    const char *dom = ctl->nargs ? ctl->args[0] : NULL;
    int r = store_dkim_key_list(ctl->store, dom, dkim_row, &t);
    if (r != STORE_OK) {
        table_free(&t);
        return fail_store(ctl, r, "domain", dom ? dom : "");
    }
    return table_print(ctl, &t);
}

static int dkim_del(struct ctl *ctl)
{
    const char *d = ctl->args[0], *sel = ctl->args[1];
    int r = store_dkim_key_del(ctl->store, d, sel);
    bool local = r != STORE_OK && store_domain_is_local(ctl->store, d);
    if (r == STORE_NOTFOUND && local)
        return fail(ctl, "domain %s has no DKIM key with selector %s", d, sel);
    if (r == STORE_INVALID && local)
        return fail(ctl, "invalid selector %s", sel);
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", d);
    char dom[256], s[256];
    lower_copy(d, dom, sizeof dom);
    lower_copy(sel, s, sizeof s);
    printf("deleted DKIM key %s of %s; remove the TXT record %s._domainkey.%s. in a few days\n",
           s, dom, s, dom);
    return 0;
}

/* --------------------------------------------------------------- dns */

/*
 * RFC 6186 / RFC 8314 client autoconfiguration, one SRV record per service.
 * Implicit TLS gets the preferred (lower) priority: RFC 8314 §3 and §5.1
 * prefer it to STARTTLS.
 */
static const struct {
    const char *service;
    enum listener_kind kind;
    int priority;
    const char *what;
} srv_records[] = {
    { "_submissions", LISTEN_SUBMISSIONS, 0, "sending mail from mail programs, implicit TLS" },
    { "_submission", LISTEN_SUBMISSION, 10, "sending mail from mail programs, STARTTLS" },
    { "_imaps", LISTEN_IMAPS, 0, "reading mail with IMAP, implicit TLS" },
    { "_imap", LISTEN_IMAP, 10, "reading mail with IMAP, STARTTLS" },
    { "_pop3s", LISTEN_POP3S, 0, "downloading mail with POP3, implicit TLS" },
    { "_pop3", LISTEN_POP3, 10, "downloading mail with POP3, STARTTLS" },
};

struct dns_ctx {
    const char *domain;     /* lowercase */
    unsigned keys;
};

/* host: the [server] hostname with its final dot (as records name it). */
static void dns_mx(const struct ctl *ctl, const char *d, const char *host)
{
    const struct listen_addr *smtp = &ctl->cfg.listen[LISTEN_SMTP];
    int hl = (int)strlen(host) - 1; /* the name in sentences, without the dot */
    printf("; MX: other servers deliver mail for %s to %.*s, on port 25\n", d, hl, host);
    printf("%s. IN MX 10 %s\n", d, host);
    if (!smtp->enabled)
        printf("; (note: [listen] smtp is off: this server takes no mail from other servers)\n");
    else if (smtp->port != 25)
        printf("; (note: [listen] smtp is port %d: forward port 25 of the public address to it)\n",
               smtp->port);
    printf("; A/AAAA: %.*s must resolve to this server's public addresses, which petrelctl "
           "does not know (NAT, several interfaces): publish them yourself, in its zone:\n",
           hl, host);
    printf(";   %s IN A    <public IPv4 address>\n", host);
    printf(";   %s IN AAAA <public IPv6 address>\n", host);
    printf("; and ask whoever owns those addresses for reverse DNS (PTR) naming %.*s: "
           "many receivers refuse mail without it\n", hl, host);
}

static void dns_spf(const char *d)
{
    char name[DNS_NAME_BUF];
    printf("; SPF (RFC 7208): only the hosts of the MX record send mail from %s; when "
           "mail goes out through a smarthost, add that provider's include: before -all\n", d);
    snprintf(name, sizeof name, "%s.", d);
    print_txt(name, "v=spf1 mx -all", false);
}

static void dns_key_row(void *arg, const struct store_dkim_key_info *k)
{
    struct dns_ctx *dc = arg;
    char name[DNS_NAME_BUF], err[256];
    if (dc->keys++ == 0)
        printf("; DKIM (RFC 6376): the public key of selector %s (%s), the newest key of %s: "
               "its mail is signed with it\n", k->selector, k->algorithm, k->domain);
    else
        printf("; DKIM: older key %s (%s): keep it published a few days after the newer one "
               "took over, then petrelctl dkim del %s %s\n", k->selector, k->algorithm,
               k->domain, k->selector);
    char *rec = key_record(k->pem, k->domain, k->selector, NULL, err, sizeof err);
    if (!rec) {
        printf("; (the stored key %s cannot be read: %s)\n", k->selector, err);
        return;
    }
    snprintf(name, sizeof name, "%s._domainkey.%s.", k->selector, k->domain);
    print_txt(name, rec, true);
    free(rec);
}

static int dns_dkim(struct ctl *ctl, const char *d)
{
    struct dns_ctx dc = { d, 0 };
    int r = store_dkim_key_list(ctl->store, d, dns_key_row, &dc);
    if (r != STORE_OK)
        return r;
    if (dc.keys == 0)
        printf("; DKIM (RFC 6376): %s has no key yet: run petrelctl dkim generate %s, "
               "then this again\n", d, d);
    return STORE_OK;
}

static void dns_dmarc(struct ctl *ctl, const char *d)
{
    char name[DNS_NAME_BUF], rec[400], pm[300];
    printf("; DMARC (RFC 7489): receivers quarantine mail from %s that passes neither SPF "
           "nor DKIM for it, and send daily reports to postmaster@%s; p=none (reports "
           "only) is the cautious start while you check that all your mail passes\n", d, d);
    snprintf(name, sizeof name, "_dmarc.%s.", d);
    snprintf(rec, sizeof rec, "v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", d);
    print_txt(name, rec, false);
    snprintf(pm, sizeof pm, "postmaster@%s", d);
    struct store_rcpt *rc = calloc(1, sizeof *rc);
    if (rc && store_resolve_rcpt(ctl->store, pm, rc) == STORE_NOTFOUND)
        printf("; (note: %s is neither a user nor an alias: add one, it gets the reports)\n",
               pm);
    free(rc);
}

static void dns_srv(const struct ctl *ctl, const char *d, const char *host)
{
    printf("; client autoconfiguration (RFC 6186, RFC 8314): mail programs find the "
           "server from the address; a service that is off is published as not available\n");
    for (size_t i = 0; i < sizeof srv_records / sizeof srv_records[0]; i++) {
        const struct listen_addr *l = &ctl->cfg.listen[srv_records[i].kind];
        if (l->enabled) {
            printf("; %s, port %d\n", srv_records[i].what, l->port);
            printf("%s._tcp.%s. IN SRV %d 1 %d %s\n", srv_records[i].service, d,
                   srv_records[i].priority, l->port, host);
        } else {
            printf("; %s: not available ([listen] %s is off)\n", srv_records[i].what,
                   listener_kind_name(srv_records[i].kind));
            printf("%s._tcp.%s. IN SRV 0 0 0 .\n", srv_records[i].service, d);
        }
    }
}

static void no_row(void *arg, const struct store_dkim_key_info *k)
{
    (void)arg;
    (void)k;
}

static int dns_records(struct ctl *ctl)
{
    const char *arg = ctl->args[0];
    char d[256], host[DNS_NAME_BUF];
    int r = store_dkim_key_list(ctl->store, arg, no_row, NULL); /* the domain exists */
    if (r != STORE_OK)
        return fail_store(ctl, r, "domain", arg);
    lower_copy(arg, d, sizeof d);
    size_t hl = strlen(ctl->cfg.hostname);
    snprintf(host, sizeof host, "%s%s", ctl->cfg.hostname,
             hl && ctl->cfg.hostname[hl - 1] == '.' ? "" : ".");
    printf("; DNS records for %s, in zone-file form (names end in a dot)\n", d);
    dns_mx(ctl, d, host);
    dns_spf(d);
    if ((r = dns_dkim(ctl, d)) != STORE_OK)
        return fail_store(ctl, r, "domain", arg);
    dns_dmarc(ctl, d);
    dns_srv(ctl, d, host);
    return fflush(stdout) == 0 ? 0 : fail(ctl, "cannot write output: %s", strerror(errno));
}

/* ---------------------------------------------------------- commands */

static const struct command commands[] = {
    { "domain", "add", 1, 1, 0, domain_add, "DOMAIN",
      "add a local domain" },
    { "domain", "del", 1, 1, 0, domain_del, "DOMAIN",
      "delete a domain with all its users, their mail and its aliases" },
    { "domain", "list", 0, 0, OPT_JSON, domain_list, "[--json]",
      "list domains with their user and alias counts" },
    { "user", "add", 1, 1, OPT_PASSWORD_STDIN | OPT_QUOTA, user_add,
      "ADDRESS [--password-stdin] [--quota SIZE]",
      "add a user (password prompted twice, or one line from stdin)" },
    { "user", "del", 1, 1, 0, user_del, "ADDRESS",
      "delete a user and all their mail" },
    { "user", "list", 0, 1, OPT_JSON, user_list, "[DOMAIN] [--json]",
      "list users with used space and quota" },
    { "user", "passwd", 1, 1, OPT_PASSWORD_STDIN, user_passwd, "ADDRESS [--password-stdin]",
      "set a user's password" },
    { "user", "quota", 2, 2, 0, user_quota, "ADDRESS SIZE",
      "set a user's quota: bytes, or with K, M, G; 0 = no limit" },
    { "alias", "add", 2, 2, 0, alias_add, "ADDRESS TARGET[,TARGET...]",
      "add an alias, or targets to an existing one (@domain = catch-all)" },
    { "alias", "del", 1, 2, 0, alias_del, "ADDRESS [TARGET[,TARGET...]]",
      "delete an alias, or only the given targets" },
    { "alias", "list", 0, 1, OPT_JSON, alias_list, "[DOMAIN] [--json]",
      "list aliases and their targets" },
    { "mailbox", "list", 1, 1, OPT_JSON, mailbox_list, "ADDRESS [--json]",
      "list a user's mailboxes" },
    { "queue", "list", 0, 0, OPT_JSON, queue_list, "[--json]",
      "list the outbound queue" },
    { "queue", "flush", 0, 1, 0, queue_flush, "[ID]",
      "make one queue entry, or all, due for delivery now" },
    { "queue", "del", 1, 1, 0, queue_del, "ID",
      "delete a queue entry (the message is not delivered)" },
    { "dkim", "generate", 1, 1, OPT_SELECTOR | OPT_ALGORITHM, dkim_generate,
      "DOMAIN [--selector S] [--algorithm A]",
      "make a DKIM key (A: rsa, the default, or ed25519), print its TXT record" },
    { "dkim", "list", 0, 1, OPT_JSON, dkim_list, "[DOMAIN] [--json]",
      "list DKIM keys, each domain's newest (the signing one) first" },
    { "dkim", "del", 2, 2, 0, dkim_del, "DOMAIN SELECTOR",
      "delete a DKIM key" },
    { "dns", NULL, 1, 1, 0, dns_records, "DOMAIN",
      "print the DNS records to publish for a domain (MX, SPF, DKIM, DMARC, SRV)" },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* "GROUP VERB ARGS", or "GROUP ARGS" for a group of one verb. */
static const char *usage_line(const struct command *c, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s %s", c->group, c->verb ? " " : "", c->verb ? c->verb : "",
             c->usage);
    return buf;
}

static void usage_verb(FILE *f, const struct command *c)
{
    char u[160];
    fprintf(f, "usage: petrelctl [-c FILE] %s\n  %s\n", usage_line(c, u, sizeof u), c->help);
}

static void usage_group(FILE *f, const char *group)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!group || strcmp(commands[i].group, group) == 0)
            fprintf(f, "  %-7s %-8s %-40s %s\n", commands[i].group,
                    commands[i].verb ? commands[i].verb : "", commands[i].usage,
                    commands[i].help);
}

static void usage_all(FILE *f)
{
    fprintf(f, "usage: petrelctl [-c FILE] GROUP VERB [ARGS] [OPTIONS]\n"
               "  -c FILE      config file (default " DEFAULT_CONFIG ")\n"
               "  -h, --help   this text; GROUP --help and GROUP VERB --help for more\n"
               "\n");
    usage_group(f, NULL);
    fprintf(f, "\nExit status: 0 on success, 1 on any error.\n");
}

static bool is_help(const char *s)
{
    return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

static bool group_exists(const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].group, g) == 0)
            return true;
    return false;
}

/* verb NULL: the command of a group that has no verbs (dns). */
static const struct command *find_command(const char *group, const char *verb)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *v = commands[i].verb;
        if (strcmp(commands[i].group, group) == 0
            && (v && verb ? strcmp(v, verb) == 0 : v == verb))
            return &commands[i];
    }
    return NULL;
}

/* Options that take a value: --name VALUE or --name=VALUE. */
static const struct {
    const char *name;
    unsigned opt;
    const char *value;      /* for "--name needs a VALUE" */
} valued_opts[] = {
    { "--quota", OPT_QUOTA, "a SIZE" },
    { "--selector", OPT_SELECTOR, "a SELECTOR" },
    { "--algorithm", OPT_ALGORITHM, "rsa or ed25519" },
};

static const char **valued_slot(struct ctl *ctl, unsigned opt)
{
    switch (opt) {
    case OPT_QUOTA: return &ctl->quota;
    case OPT_SELECTOR: return &ctl->selector;
    default: return &ctl->algorithm;
    }
}

/* argv[*i] as one of the command's valued options: 1 taken (*i moved past
 * its value), 0 not one, -1 on error (reported). */
static int take_valued(struct ctl *ctl, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof valued_opts / sizeof valued_opts[0]; k++) {
        size_t n = strlen(valued_opts[k].name);
        if (!(ctl->cmd->opts & valued_opts[k].opt) || strncmp(a, valued_opts[k].name, n) != 0
            || (a[n] != '\0' && a[n] != '='))
            continue;
        const char **slot = valued_slot(ctl, valued_opts[k].opt);
        if (a[n] == '=') {
            *slot = a + n + 1;
        } else if (*i + 1 < argc) {
            *slot = argv[++*i];
        } else {
            fail(ctl, "%s needs %s", valued_opts[k].name, valued_opts[k].value);
            return -1;
        }
        ctl->opts |= valued_opts[k].opt;
        return 1;
    }
    return 0;
}

/* Options after GROUP VERB. Returns 0, 1 on error, or 2 when help was shown. */
static int parse_args(struct ctl *ctl, int argc, char **argv)
{
    const struct command *c = ctl->cmd;
    bool only_args = false;
    char u[160];
    usage_line(c, u, sizeof u);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int taken = only_args ? 0 : take_valued(ctl, argc, argv, &i);
        if (taken < 0)
            return 1;
        if (taken > 0)
            continue;
        if (!only_args && is_help(a)) {
            usage_verb(stdout, c);
            return 2;
        }
        if (!only_args && strcmp(a, "--") == 0) {
            only_args = true;
        } else if (!only_args && strcmp(a, "--json") == 0 && (c->opts & OPT_JSON)) {
            ctl->opts |= OPT_JSON;
        } else if (!only_args && strcmp(a, "--password-stdin") == 0 &&
                   (c->opts & OPT_PASSWORD_STDIN)) {
            ctl->opts |= OPT_PASSWORD_STDIN;
        } else if (!only_args && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--password") == 0 || strncmp(a, "--password=", 11) == 0)
                return fail(ctl, "passwords are never taken from the command line; "
                                 "use --password-stdin or the prompt");
            return fail(ctl, "unknown option %s (usage: %s)", a, u);
        } else {
            if (ctl->nargs >= c->max_args)
                return fail(ctl, "too many arguments (usage: %s)", u);
            ctl->args[ctl->nargs++] = a;
        }
    }
    if (ctl->nargs < c->min_args)
        return fail(ctl, "missing argument (usage: %s)", u);
    return 0;
}

int main(int argc, char **argv)
{
    static struct ctl ctl;
    const char *conf = DEFAULT_CONFIG;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (is_help(argv[i])) {
            usage_all(stdout);
            return 0;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf = argv[++i];
        } else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2]) {
            conf = argv[i] + 2;
        } else if (strcmp(argv[i], "-c") == 0) {
            return fail(NULL, "-c needs a FILE");
        } else {
            return fail(NULL, "unknown option %s (try petrelctl --help)", argv[i]);
        }
    }
    if (i >= argc) {
        usage_all(stderr);
        return 1;
    }
    const char *group = argv[i++];
    if (!group_exists(group))
        return fail(NULL, "unknown command %s (try petrelctl --help)", group);
    ctl.cmd = find_command(group, NULL);
    if (ctl.cmd) {
        /* a group of one verb: its arguments follow */
    } else if (i >= argc || is_help(argv[i])) {
        FILE *f = i >= argc ? stderr : stdout;
        fprintf(f, "usage: petrelctl [-c FILE] %s VERB ...\n", group);
        usage_group(f, group);
        if (i >= argc)
            return fail(NULL, "%s: missing verb", group);
        return 0;
    } else {
        const char *verb = argv[i++];
        ctl.cmd = find_command(group, verb);
        if (!ctl.cmd)
            return fail(NULL, "%s: unknown verb %s (try petrelctl %s --help)", group, verb,
                        group);
    }

    int rc = parse_args(&ctl, argc - i, argv + i);
    if (rc)
        return rc == 2 ? 0 : 1;

    char err[512];
    log_set_level(PLOG_WARN); /* the store's info lines are for the daemon's log */
    config_defaults(&ctl.cfg);
    if (config_load(conf, &ctl.cfg, err, sizeof err) != 0)
        return fail(NULL, "%s", err);
    if (store_open(ctl.cfg.data_dir, &ctl.store, err, sizeof err) != 0)
        return fail(NULL, "%s", err);
    if (auth_init(&ctl.cfg, ctl.store, NULL, err, sizeof err) != 0) {
        store_close(&ctl.store);
        return fail(NULL, "%s", err);
    }
    rc = ctl.cmd->run(&ctl);
    auth_shutdown();
    store_close(&ctl.store);
    return rc ? 1 : 0;
}
