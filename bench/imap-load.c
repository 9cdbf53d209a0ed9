/*
 * imap-load: an IMAP load generator for bench/imap.
 *
 *   imap-load -p PORT -u USER -w PASSWORD [-h HOST] [-c CONNECTIONS]
 *             [-d SECONDS] [-r ROUNDS] [-k K] [-m MESSAGES] [-t TIMEOUT_S]
 *
 * Opens CONNECTIONS plain TCP connections (one thread each, blocking
 * sockets; the server must allow LOGIN there, e.g. with
 * plaintext_on_loopback), all logged in as USER. Each connection sends
 * LOGIN, SELECT INBOX once, then runs rounds until SECONDS have passed
 * (or ROUNDS rounds, when given) and sends LOGOUT. One round, one command
 * at a time (no pipelining), m and u random in 1..EXISTS and 1..UIDNEXT-1:
 *
 *   FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)   every K-th round (0: never),
 *                                                first in round K-1-(i mod K)
 *                                                on connection i (staggered)
 *   FETCH m BODY.PEEK[]                          x4, between the others
 *   UID STORE u +FLAGS (\Seen)                   x1
 *   UID STORE u -FLAGS (\Seen)                   x1 (keeps about half unseen)
 *   UID SEARCH UNSEEN                            x1
 *   NOOP                                         x2
 *
 * All connections share the one mailbox, so every STORE is also reported
 * to the others (untagged FETCH FLAGS) at the end of their next command.
 *
 * Responses are parsed, not just scanned for the tag: a line ending in a
 * literal {n} (or {n+}) is followed by exactly n bytes, read by count,
 * then by the rest of the same response; so a BODY[] literal that contains
 * "a1 OK" is never taken for a tagged reply. Checks: the tagged status is
 * OK; SELECT's EXISTS equals MESSAGES (when given); FETCH 1:* returns one
 * FETCH per message; FETCH BODY.PEEK[] returns a non-empty literal; no
 * untagged BYE. A command's latency runs from sending it to its tagged
 * reply.
 *
 * Prints key=value lines on stdout (parsed by bench/imap):
 *   connections= exists= rounds= ops= failed= errors= elapsed_s= ops_per_s=
 *   body_bytes= unseen_avg=
 *   CMD_n= CMD_p50_ms= CMD_p99_ms= CMD_max_ms=   for CMD in login select
 *       fetchall body store search noop
 * ops counts every command after SELECT (the full FETCHes included);
 * elapsed runs from the end of the last SELECT to the last LOGOUT.
 * Exit 0 when every command got OK and nothing broke, 1 otherwise, 2 on
 * usage errors.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN (4 * 1024 * 1024) /* one response segment between literals */
#define LITERAL_MAX (256 * 1024 * 1024)

enum cmd_kind { K_LOGIN, K_SELECT, K_FETCHALL, K_BODY, K_STORE, K_SEARCH, K_NOOP, K_COUNT };

static const char *const kind_names[K_COUNT] = {
    "login", "select", "fetchall", "body", "store", "search", "noop",
};

struct opts {
    const char *host;
    const char *port;
    const char *user;
    const char *password;
    long conns;
    long seconds;
    long rounds;       /* 0: until seconds have passed */
    long full_every;   /* K */
    long messages;     /* expected EXISTS; 0: not checked */
    long timeout_s;
};

/* Latencies of one kind of command, one thread's worth. */
struct samples {
    double *ms;
    size_t n, cap;
};

struct conn {
    int fd;
    long id;
    char in[64 * 1024];
    size_t have;
    size_t pos;
    char *line;          /* the current segment, NUL-terminated, CRLF removed */
    size_t line_cap;
    unsigned long tag;
    uint64_t rng;
    struct samples lat[K_COUNT];
    long ops, rounds;
    long long body_bytes;
    long long unseen_sum;
    long searches;
    bool failed;         /* a tagged NO/BAD or a failed check */
};

/* What the responses to one command held, as far as the checks need. */
struct result {
    char status[8];      /* OK, NO, BAD; "" when the connection broke */
    char text[256];      /* the rest of the tagged line */
    long exists;         /* last "* n EXISTS", -1 if none */
    long uidnext;        /* [UIDNEXT n], -1 if none */
    long fetches;        /* "* n FETCH" responses */
    long search_hits;    /* numbers in "* SEARCH" */
    long long literal_bytes;
    long literals;
    bool bye;
};

static struct opts opt = {
    .host = "127.0.0.1", .conns = 20, .seconds = 20, .full_every = 10, .timeout_s = 120,
};

static atomic_long n_errors;   /* connections that broke */
static atomic_long n_failed;   /* commands not OK or failing a check */
static atomic_long n_ready;
static atomic_long exists_seen = -1;
static double t_start;         /* set when the last connection has selected */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static bool started;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int err_printed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void complain(const struct conn *c, const char *what, const char *detail)
{
    pthread_mutex_lock(&err_lock);
    if (err_printed++ < 10)
        fprintf(stderr, "imap-load: connection %ld: %s: %.300s\n", c->id, what, detail);
    pthread_mutex_unlock(&err_lock);
}

static uint64_t next_rand(struct conn *c)
{
    /* xorshift64*: a private generator per thread, reproducible by id. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static long rand_in(struct conn *c, long lo, long hi)
{
    return lo + (long)(next_rand(c) % (uint64_t)(hi - lo + 1));
}

static int add_sample(struct samples *s, double ms)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *p = realloc(s->ms, cap * sizeof *p);
        if (!p)
            return -1;
        s->ms = p;
        s->cap = cap;
    }
    s->ms[s->n++] = ms;
    return 0;
}

static int connect_to(void)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "imap-load: %s: %s\n", opt.host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "imap-load: connect: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { .tv_sec = opt.timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fill(struct conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->in, sizeof c->in, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have = (size_t)r;
        c->pos = 0;
        return 0;
    }
}

/* One segment up to CRLF into c->line (CRLF removed); its length in *len. */
static int read_line(struct conn *c, size_t *len)
{
    size_t n = 0;
    for (;;) {
        if (c->pos == c->have && fill(c) != 0)
            return -1;
        const char *p = c->in + c->pos;
        size_t avail = c->have - c->pos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) + 1 : avail;
        if (n + take + 1 > c->line_cap) {
            if (n + take + 1 > LINE_MAX_LEN)
                return -1;
            size_t cap = c->line_cap ? c->line_cap : 4096;
            while (cap < n + take + 1)
                cap *= 2;
            char *l = realloc(c->line, cap);
            if (!l)
                return -1;
            c->line = l;
            c->line_cap = cap;
        }
        memcpy(c->line + n, p, take);
        n += take;
        c->pos += take;
        if (nl) {
            n--; /* the LF */
            if (n > 0 && c->line[n - 1] == '\r')
                n--;
            c->line[n] = '\0';
            *len = n;
            return 0;
        }
    }
}

/* Skips n literal bytes by count. */
static int skip_bytes(struct conn *c, long long n)
{
    while (n > 0) {
        if (c->pos == c->have && fill(c) != 0)
            return -1;
        size_t avail = c->have - c->pos;
        size_t take = (long long)avail < n ? avail : (size_t)n;
        c->pos += take;
        n -= (long long)take;
    }
    return 0;
}

/* The size of the literal announced at the end of a segment ("{123}" or
 * "{123+}"), -1 when the segment does not end in one. */
static long long literal_at_end(const char *line, size_t len)
{
    if (len < 3 || line[len - 1] != '}')
        return -1;
    size_t i = len - 1;
    if (line[i - 1] == '+')
        i--;
    size_t end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        i--;
    if (i == end || i == 0 || line[i - 1] != '{' || end - i > 10)
        return -1;
    long long v = strtoll(line + i, NULL, 10);
    return v <= LITERAL_MAX ? v : -2;
}

static long count_numbers(const char *p)
{
    long n = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p >= '0' && *p <= '9')
            n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* An untagged response's first segment: what the checks need from it. */
static void untagged(struct result *r, const char *line)
{
    const char *p = line + 2;
    if (strncasecmp(p, "BYE", 3) == 0) {
        r->bye = true;
        return;
    }
    if (strncasecmp(p, "SEARCH", 6) == 0) {
        r->search_hits += count_numbers(p + 6);
        return;
    }
    const char *u = strstr(p, "[UIDNEXT ");
    if (strncasecmp(p, "OK ", 3) == 0 && u) {
        r->uidnext = strtol(u + 9, NULL, 10);
        return;
    }
    if (*p >= '0' && *p <= '9') {
        char *end;
        long n = strtol(p, &end, 10);
        if (strncasecmp(end, " EXISTS", 7) == 0)
            r->exists = n;
        else if (strncasecmp(end, " FETCH ", 7) == 0)
            r->fetches++;
    }
}

/*
 * Sends one command (tag added here) and reads every response up to its
 * tagged reply into r. Returns 0 when the tagged reply arrived (whatever its
 * status), -1 when the connection broke or said BYE.
 */
static int command(struct conn *c, const char *fmt, const char *arg, struct result *r)
{
    bool logout = strncmp(fmt, "LOGOUT", 6) == 0;
    char tag[24], cmd[512];
    snprintf(tag, sizeof tag, "a%lu", ++c->tag);
    int n = snprintf(cmd, sizeof cmd, "%s ", tag);
    n += snprintf(cmd + n, sizeof cmd - (size_t)n, fmt, arg);
    n += snprintf(cmd + n, sizeof cmd - (size_t)n, "\r\n");
    memset(r, 0, sizeof *r);
    r->exists = r->uidnext = -1;
    if (send_all(c, cmd, (size_t)n) != 0)
        return -1;
    size_t taglen = strlen(tag);
    for (;;) {
        size_t len;
        if (read_line(c, &len) != 0)
            return -1;
        const char *line = c->line;
        if (len > taglen && strncmp(line, tag, taglen) == 0 && line[taglen] == ' ') {
            const char *st = line + taglen + 1;
            size_t sl = strcspn(st, " ");
            snprintf(r->status, sizeof r->status, "%.*s", (int)(sl < 7 ? sl : 7), st);
            snprintf(r->text, sizeof r->text, "%s", st + sl + (st[sl] ? 1 : 0));
            return 0;
        }
        if (len >= 2 && line[0] == '*' && line[1] == ' ') {
            untagged(r, line);
            if (r->bye && !logout) {
                complain(c, "server said BYE", line);
                return -1;
            }
        } else {
            complain(c, "unexpected response", line);
        }
        /* The rest of this response: literal, segment, literal, ... */
        long long lit;
        while ((lit = literal_at_end(c->line, len)) != -1) {
            if (lit < 0) {
                complain(c, "literal too large", c->line);
                return -1;
            }
            if (skip_bytes(c, lit) != 0 || read_line(c, &len) != 0)
                return -1;
            r->literal_bytes += lit;
            r->literals++;
        }
    }
}

/* Runs a command, records its latency under kind; false when the
 * connection is unusable. A NO/BAD counts as failed and goes on. */
static bool timed(struct conn *c, enum cmd_kind kind, const char *fmt, const char *arg,
                  struct result *r)
{
    double t0 = now_s();
    if (command(c, fmt, arg, r) != 0)
        return false;
    double ms = (now_s() - t0) * 1000.0;
    if (strcmp(r->status, "OK") != 0) {
        char what[600];
        snprintf(what, sizeof what, fmt, arg);
        complain(c, what, r->text[0] ? r->text : r->status);
        atomic_fetch_add(&n_failed, 1);
        c->failed = true;
        return true;
    }
    if (add_sample(&c->lat[kind], ms) != 0)
        return false;
    if (kind != K_LOGIN && kind != K_SELECT)
        c->ops++;
    return true;
}

static void check_failed(struct conn *c, const char *what, const char *detail)
{
    complain(c, what, detail);
    atomic_fetch_add(&n_failed, 1);
    c->failed = true;
}

static bool body(struct conn *c, long exists)
{
    struct result r;
    char arg[32];
    snprintf(arg, sizeof arg, "%ld", rand_in(c, 1, exists));
    if (!timed(c, K_BODY, "FETCH %s BODY.PEEK[]", arg, &r))
        return false;
    if (r.status[0] == 'O' && (r.literals < 1 || r.literal_bytes == 0))
        check_failed(c, "FETCH BODY.PEEK[] returned no literal", arg);
    c->body_bytes += r.literal_bytes;
    return true;
}

static bool store(struct conn *c, long max_uid, char sign)
{
    struct result r;
    char arg[48];
    snprintf(arg, sizeof arg, "%ld %cFLAGS (\\Seen)", rand_in(c, 1, max_uid), sign);
    return timed(c, K_STORE, "UID STORE %s", arg, &r);
}

static bool noop(struct conn *c)
{
    struct result r;
    return timed(c, K_NOOP, "NOOP%s", "", &r);
}

static bool search(struct conn *c)
{
    struct result r;
    if (!timed(c, K_SEARCH, "UID SEARCH UNSEEN%s", "", &r))
        return false;
    c->unseen_sum += r.search_hits;
    c->searches++;
    return true;
}

static bool fetch_all(struct conn *c, long exists)
{
    struct result r;
    if (!timed(c, K_FETCHALL, "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)%s", "", &r))
        return false;
    /* Other sessions' flag changes come as FETCH responses too, but those
     * are folded into the command's own one per message here. */
    if (r.status[0] == 'O' && r.fetches < exists) {
        char d[96];
        snprintf(d, sizeof d, "%ld FETCH responses for %ld messages", r.fetches, exists);
        check_failed(c, "FETCH 1:*", d);
    }
    return true;
}

/* IMAP quoted string (RFC 3501 §4.3) of s, for LOGIN. */
static void quoted(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n + 3 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void wait_start(void)
{
    pthread_mutex_lock(&start_lock);
    if (atomic_fetch_add(&n_ready, 1) + 1 == opt.conns) {
        t_start = now_s();
        started = true;
        pthread_cond_broadcast(&start_cond);
    }
    while (!started)
        pthread_cond_wait(&start_cond, &start_lock);
    pthread_mutex_unlock(&start_lock);
}

static void *worker(void *arg)
{
    struct conn *c = arg;
    struct result r;
    size_t len;
    bool ready = false;
    c->fd = connect_to();
    if (c->fd < 0)
        goto fail;
    if (read_line(c, &len) != 0 || strncmp(c->line, "* OK", 4) != 0) {
        complain(c, "greeting", c->line_cap ? c->line : "connection closed");
        goto fail;
    }
    char login[1200], u[520], p[520];
    quoted(u, sizeof u, opt.user);
    quoted(p, sizeof p, opt.password);
    snprintf(login, sizeof login, "%s %s", u, p);
    if (!timed(c, K_LOGIN, "LOGIN %s", login, &r) || strcmp(r.status, "OK") != 0)
        goto fail;
    if (!timed(c, K_SELECT, "SELECT %s", "INBOX", &r) || strcmp(r.status, "OK") != 0)
        goto fail;
    long exists = r.exists, max_uid = r.uidnext - 1;
    if (exists <= 0 || max_uid <= 0) {
        check_failed(c, "SELECT INBOX", "no messages (EXISTS/UIDNEXT missing or 0)");
        goto fail;
    }
    atomic_store(&exists_seen, exists);
    if (opt.messages && exists != opt.messages) {
        char d[96];
        snprintf(d, sizeof d, "EXISTS %ld, expected %ld", exists, opt.messages);
        check_failed(c, "SELECT INBOX", d);
    }
    ready = true;
    wait_start();
    double deadline = t_start + (double)opt.seconds;
    for (long round = 0; opt.rounds ? round < opt.rounds : now_s() < deadline; round++) {
        /* Staggered by connection, so the full FETCHes do not all run at once. */
        if (opt.full_every && (round + c->id) % opt.full_every == opt.full_every - 1 &&
            !fetch_all(c, exists))
            goto fail;
        if (!body(c, exists) || !store(c, max_uid, '+') || !body(c, exists) || !noop(c) ||
            !body(c, exists) || !store(c, max_uid, '-') || !body(c, exists) || !search(c) ||
            !noop(c))
            goto fail;
        c->rounds++;
    }
    if (command(c, "LOGOUT%s", "", &r) != 0 || strcmp(r.status, "OK") != 0)
        goto fail;
    close(c->fd);
    c->fd = -1;
    return NULL;
fail:
    complain(c, "connection lost or unusable", c->line_cap ? c->line : "");
    atomic_fetch_add(&n_errors, 1);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (!ready)
        wait_start(); /* do not hold the others back */
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static long number(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "imap-load: %s: expected %ld..%ld, got %s\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: imap-load -p PORT -u USER -w PASSWORD [-h HOST] [-c CONNECTIONS]"
                    " [-d SECONDS] [-r ROUNDS] [-k K] [-m MESSAGES] [-t TIMEOUT_S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "h:p:u:w:c:d:r:k:m:t:")) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'u': opt.user = optarg; break;
        case 'w': opt.password = optarg; break;
        case 'c': opt.conns = number(optarg, 1, 10000, "-c"); break;
        case 'd': opt.seconds = number(optarg, 1, 86400, "-d"); break;
        case 'r': opt.rounds = number(optarg, 0, 100000000, "-r"); break;
        case 'k': opt.full_every = number(optarg, 0, 100000000, "-k"); break;
        case 'm': opt.messages = number(optarg, 0, 100000000, "-m"); break;
        case 't': opt.timeout_s = number(optarg, 1, 3600, "-t"); break;
        default: usage();
        }
    }
    if (!opt.port || !opt.user || !opt.password || optind != argc)
        usage();
    if (strlen(opt.user) > 256 || strlen(opt.password) > 256) {
        fprintf(stderr, "imap-load: user or password too long\n");
        return 2;
    }

    struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    pthread_t *th = calloc((size_t)opt.conns, sizeof *th);
    if (!conns || !th) {
        fprintf(stderr, "imap-load: out of memory\n");
        return 1;
    }
    for (long i = 0; i < opt.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        conns[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&th[i], &attr, worker, &conns[i]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            /* The started ones would wait for all to be ready. */
            fprintf(stderr, "imap-load: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
    }
    for (long i = 0; i < opt.conns; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - t_start;

    long ops = 0, rounds = 0, searches = 0;
    long long body_bytes = 0, unseen = 0;
    for (long i = 0; i < opt.conns; i++) {
        ops += conns[i].ops;
        rounds += conns[i].rounds;
        body_bytes += conns[i].body_bytes;
        unseen += conns[i].unseen_sum;
        searches += conns[i].searches;
    }
    printf("connections=%ld exists=%ld full_every=%ld\n", opt.conns, atomic_load(&exists_seen),
           opt.full_every);
    printf("rounds=%ld ops=%ld failed=%ld errors=%ld elapsed_s=%.3f ops_per_s=%.1f\n", rounds,
           ops, atomic_load(&n_failed), atomic_load(&n_errors), elapsed,
           elapsed > 0 ? (double)ops / elapsed : 0.0);
    printf("body_bytes=%lld unseen_avg=%.0f\n", body_bytes,
           searches ? (double)unseen / (double)searches : 0.0);
    for (int k = 0; k < K_COUNT; k++) {
        size_t n = 0;
        for (long i = 0; i < opt.conns; i++)
            n += conns[i].lat[k].n;
        double *all = malloc((n ? n : 1) * sizeof *all);
        if (!all) {
            fprintf(stderr, "imap-load: out of memory\n");
            return 1;
        }
        size_t at = 0;
        for (long i = 0; i < opt.conns; i++) {
            if (conns[i].lat[k].n)
                memcpy(all + at, conns[i].lat[k].ms, conns[i].lat[k].n * sizeof *all);
            at += conns[i].lat[k].n;
            free(conns[i].lat[k].ms);
        }
        qsort(all, n, sizeof *all, cmp_double);
        printf("%s_n=%zu %s_p50_ms=%.2f %s_p99_ms=%.2f %s_max_ms=%.2f\n", kind_names[k], n,
               kind_names[k], percentile(all, n, 50), kind_names[k], percentile(all, n, 99),
               kind_names[k], n ? all[n - 1] : 0.0);
        free(all);
    }
    for (long i = 0; i < opt.conns; i++)
        free(conns[i].line);
    bool ok = atomic_load(&n_errors) == 0 && atomic_load(&n_failed) == 0;
    free(conns);
    free(th);
    return ok ? 0 : 1;
}
