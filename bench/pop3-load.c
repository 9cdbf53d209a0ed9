/*
 * pop3-load: a POP3 load generator for bench/pop3.
 *
 *   pop3-load -p PORT -u USER -w PASSWORD [-h HOST] [-c CONNECTIONS]
 *             [-d DEPTH] [-t TIMEOUT_S]
 *
 * Opens CONNECTIONS plain TCP connections at once (one thread each,
 * blocking sockets; the server must allow USER/PASS there, e.g. with
 * plaintext_on_loopback). Every connection logs in with USER/PASS, then
 * STAT, LIST, UIDL, RETR of every message of the maildrop, and QUIT
 * (nothing is deleted). RETRs are pipelined DEPTH deep (RFC 2449
 * PIPELINING; 1 = one at a time). Each response is checked: the
 * multi-line ones are read to their terminator, and RETR must deliver at
 * least the octets it announced.
 *
 * Prints key=value lines on stdout (parsed by bench/pop3):
 *   connections= depth= sessions_ok= errors= messages= bytes= elapsed_s=
 *   msgs_per_s= mb_per_s= retr_s= retr_msgs_per_s= retr_mb_per_s=
 *   login_p50_ms= login_max_ms= session_p50_s= session_max_s=
 * messages and bytes count every RETR of every connection (bytes are the
 * message octets, before stuffing); elapsed runs from the first connect to
 * the last QUIT; retr_s from the first client logged in to the last QUIT
 * (the password checks, slow by design, left out). Exit 0 when every session completed, 1 otherwise, 2 on
 * usage errors.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096

struct opts {
    const char *host;
    const char *port;
    const char *user;
    const char *password;
    long conns;
    long depth;
    long timeout_s;
};

struct conn {
    int fd;
    char in[256 * 1024];
    size_t have;
    size_t pos;
};

static struct opts opt = {
    .host = "127.0.0.1", .conns = 10, .depth = 1, .timeout_s = 120,
};

static atomic_long n_ok;
static atomic_long n_errors;
static atomic_long n_messages;
static atomic_llong n_bytes;
static double *login_ms, *session_s;
static double t_start;
static double *logged_in_at, *done_at; /* seconds after t_start */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int err_printed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void complain(const char *what, const char *detail)
{
    pthread_mutex_lock(&err_lock);
    if (err_printed++ < 10)
        fprintf(stderr, "pop3-load: %s: %s\n", what, detail);
    pthread_mutex_unlock(&err_lock);
}

static int connect_to(void)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc != 0) {
        complain(opt.host, gai_strerror(rc));
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
        complain("connect", strerror(errno));
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

/* One line into line (NUL-terminated, CRLF removed). */
static int read_line(struct conn *c, char *line, size_t cap)
{
    size_t len = 0;
    for (;;) {
        if (c->pos == c->have && fill(c) != 0)
            return -1;
        char *nl = memchr(c->in + c->pos, '\n', c->have - c->pos);
        size_t n = nl ? (size_t)(nl - (c->in + c->pos)) : c->have - c->pos;
        size_t room = cap - 1 - len;
        memcpy(line + len, c->in + c->pos, n < room ? n : room);
        len += n < room ? n : room;
        c->pos += n;
        if (nl) {
            c->pos++;
            if (len > 0 && line[len - 1] == '\r')
                len--;
            line[len] = '\0';
            return 0;
        }
    }
}

/* A status line that must be +OK; the text after it in line. */
static int expect_ok(struct conn *c, char *line, size_t cap, const char *what)
{
    if (read_line(c, line, cap) != 0) {
        complain(what, "connection closed");
        return -1;
    }
    if (strncmp(line, "+OK", 3) != 0) {
        complain(what, line);
        return -1;
    }
    return 0;
}

/*
 * The body of a multi-line response, up to and with its ".CRLF" line.
 * Returns the octets it carried, stuffing removed and CRLF counted, or -1.
 */
static long long read_multi(struct conn *c)
{
    long long octets = 0;
    /* The status line's CRLF precedes the body: start at a line start. */
    int state = 0; /* 0 line start, 1 in line, 2 ".", 3 ".\r" */
    long long line_len = 0;
    for (;;) {
        if (c->pos == c->have && fill(c) != 0)
            return -1;
        const char *p = c->in + c->pos, *end = c->in + c->have;
        while (p < end) {
            char ch = *p++;
            switch (state) {
            case 0:
                if (ch == '.') {
                    state = 2;
                    continue;
                }
                state = 1;
                line_len = 0;
                /* fall through */
            case 1:
                line_len++;
                if (ch == '\n') {
                    octets += line_len;
                    state = 0;
                }
                break;
            case 2:
                if (ch == '\r') {
                    state = 3;
                } else { /* a stuffed dot */
                    state = 1;
                    line_len = 1;
                    if (ch == '\n') {
                        octets += 1;
                        state = 0;
                    }
                }
                break;
            case 3:
                if (ch == '\n') {
                    c->pos = (size_t)(p - c->in);
                    return octets;
                }
                state = 1;
                line_len = 2;
                break;
            }
        }
        c->pos = c->have;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void *worker(void *arg)
{
    long idx = (long)(intptr_t)arg;
    char line[LINE_MAX_LEN], cmd[LINE_MAX_LEN];
    struct conn *c = calloc(1, sizeof *c);
    long long *sizes = NULL;
    if (!c) {
        atomic_fetch_add(&n_errors, 1);
        return NULL;
    }
    double t0 = now_s();
    c->fd = connect_to();
    if (c->fd < 0 || expect_ok(c, line, sizeof line, "greeting") != 0)
        goto fail;
    int n = snprintf(cmd, sizeof cmd, "USER %s\r\n", opt.user);
    if (send_all(c, cmd, (size_t)n) != 0 || expect_ok(c, line, sizeof line, "USER") != 0)
        goto fail;
    n = snprintf(cmd, sizeof cmd, "PASS %s\r\n", opt.password);
    if (send_all(c, cmd, (size_t)n) != 0 || expect_ok(c, line, sizeof line, "PASS") != 0)
        goto fail;
    login_ms[idx] = (now_s() - t0) * 1000.0;
    logged_in_at[idx] = now_s() - t_start;

    long count = 0;
    long long total = 0;
    if (send_all(c, "STAT\r\n", 6) != 0 || expect_ok(c, line, sizeof line, "STAT") != 0 ||
        sscanf(line, "+OK %ld %lld", &count, &total) != 2)
        goto fail;
    sizes = calloc((size_t)count + 1, sizeof *sizes);
    if (!sizes)
        goto fail;
    if (send_all(c, "LIST\r\n", 6) != 0 || expect_ok(c, line, sizeof line, "LIST") != 0 ||
        read_multi(c) < 0)
        goto fail;
    if (send_all(c, "UIDL\r\n", 6) != 0 || expect_ok(c, line, sizeof line, "UIDL") != 0 ||
        read_multi(c) < 0)
        goto fail;

    long sent = 0, got = 0;
    while (got < count) {
        while (sent < count && sent - got < opt.depth) {
            n = snprintf(cmd, sizeof cmd, "RETR %ld\r\n", sent + 1);
            if (send_all(c, cmd, (size_t)n) != 0)
                goto fail;
            sent++;
        }
        long long announced = 0;
        if (expect_ok(c, line, sizeof line, "RETR") != 0 ||
            sscanf(line, "+OK %lld", &announced) != 1)
            goto fail;
        long long octets = read_multi(c);
        /* A message without a final CRLF gets one: at most 2 more. */
        if (octets < announced || octets > announced + 2) {
            complain("RETR", "octets differ from the announced size");
            goto fail;
        }
        atomic_fetch_add(&n_messages, 1);
        atomic_fetch_add(&n_bytes, announced);
        got++;
    }
    if (send_all(c, "QUIT\r\n", 6) != 0 || expect_ok(c, line, sizeof line, "QUIT") != 0)
        goto fail;
    session_s[idx] = now_s() - t0;
    done_at[idx] = now_s() - t_start;
    atomic_fetch_add(&n_ok, 1);
    close(c->fd);
    free(sizes);
    free(c);
    return NULL;
fail:
    atomic_fetch_add(&n_errors, 1);
    if (c->fd >= 0)
        close(c->fd);
    free(sizes);
    free(c);
    return NULL;
}

static long number(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "pop3-load: %s: expected %ld..%ld, got %s\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: pop3-load -p PORT -u USER -w PASSWORD [-h HOST] [-c CONNECTIONS]"
                    " [-d DEPTH] [-t TIMEOUT_S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "h:p:u:w:c:d:t:")) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'u': opt.user = optarg; break;
        case 'w': opt.password = optarg; break;
        case 'c': opt.conns = number(optarg, 1, 10000, "-c"); break;
        case 'd': opt.depth = number(optarg, 1, 1000, "-d"); break;
        case 't': opt.timeout_s = number(optarg, 1, 3600, "-t"); break;
        default: usage();
        }
    }
    if (!opt.port || !opt.user || !opt.password || optind != argc)
        usage();

    login_ms = calloc((size_t)opt.conns, sizeof *login_ms);
    session_s = calloc((size_t)opt.conns, sizeof *session_s);
    logged_in_at = calloc((size_t)opt.conns, sizeof *logged_in_at);
    done_at = calloc((size_t)opt.conns, sizeof *done_at);
    pthread_t *th = calloc((size_t)opt.conns, sizeof *th);
    if (!login_ms || !session_s || !logged_in_at || !done_at || !th) {
        fprintf(stderr, "pop3-load: out of memory\n");
        return 1;
    }
    double t0 = now_s();
    t_start = t0;
    long started = 0;
    for (long i = 0; i < opt.conns; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&th[i], &attr, worker, (void *)(intptr_t)i);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            fprintf(stderr, "pop3-load: pthread_create: %s\n", strerror(rc));
            break;
        }
        started++;
    }
    for (long i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - t0;

    long ok = atomic_load(&n_ok), msgs = atomic_load(&n_messages);
    long long bytes = atomic_load(&n_bytes);
    size_t nl = 0, ns = 0;
    for (long i = 0; i < opt.conns; i++) {
        if (login_ms[i] > 0)
            login_ms[nl++] = login_ms[i];
        if (session_s[i] > 0)
            session_s[ns++] = session_s[i];
    }
    printf("connections=%ld depth=%ld sessions_ok=%ld errors=%ld\n", opt.conns, opt.depth, ok,
           atomic_load(&n_errors));
    printf("messages=%ld bytes=%lld elapsed_s=%.3f msgs_per_s=%.1f mb_per_s=%.2f\n", msgs, bytes,
           elapsed, elapsed > 0 ? msgs / elapsed : 0.0,
           elapsed > 0 ? (double)bytes / (1024.0 * 1024.0) / elapsed : 0.0);
    double first = 0, last = 0;
    for (long i = 0; i < opt.conns; i++) {
        if (logged_in_at[i] > 0 && (first == 0 || logged_in_at[i] < first))
            first = logged_in_at[i];
        if (done_at[i] > last)
            last = done_at[i];
    }
    double retr = last > first ? last - first : 0;
    printf("retr_s=%.3f retr_msgs_per_s=%.1f retr_mb_per_s=%.2f\n", retr,
           retr > 0 ? msgs / retr : 0.0, retr > 0 ? (double)bytes / (1024.0 * 1024.0) / retr : 0.0);
    double lp50 = percentile(login_ms, nl, 50), lmax = nl ? login_ms[nl - 1] : 0.0;
    double sp50 = percentile(session_s, ns, 50), smax = ns ? session_s[ns - 1] : 0.0;
    printf("login_p50_ms=%.1f login_max_ms=%.1f session_p50_s=%.3f session_max_s=%.3f\n", lp50,
           lmax, sp50, smax);
    free(login_ms);
    free(session_s);
    free(logged_in_at);
    free(done_at);
    free(th);
    return ok == opt.conns ? 0 : 1;
}
