/*
 * smtp-load: an SMTP load generator for bench/smtp.
 *
 *   smtp-load -p PORT [-h HOST] [-n MESSAGES] [-c CONNECTIONS] [-s SIZE]
 *             [-r RCPT] [-f FROM] [-t TIMEOUT_S]
 *
 * Opens CONNECTIONS plain TCP connections (one thread each, blocking
 * sockets), sends EHLO once per connection, then delivers MESSAGES messages
 * of about SIZE bytes in total, each as MAIL / RCPT / DATA, one command at a
 * time (no pipelining), many messages per connection. A message's latency
 * runs from sending MAIL to receiving the final reply after the data.
 *
 * Prints key=value lines on stdout (parsed by bench/smtp):
 *   acked= failed= errors= elapsed_s= msgs_per_s= p50_ms= p90_ms= p99_ms= max_ms=
 * Exit 0 when every message got 250, 1 otherwise, 2 on usage errors.
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
#define REPLY_MAX_LINES 64

struct opts {
    const char *host;
    const char *port;
    long messages;
    long conns;
    long size;
    const char *rcpt;
    const char *from;
    long timeout_s;
};

struct conn {
    int fd;
    char in[8192];
    size_t have;
    size_t pos;
};

static struct opts opt = {
    .host = "127.0.0.1", .port = NULL, .messages = 5000, .conns = 50, .size = 5120,
    .rcpt = "u@example.test", .from = "bench@load.test", .timeout_s = 60,
};

static atomic_long next_msg;
static atomic_long n_acked;
static atomic_long n_failed;   /* a final reply other than 250 */
static atomic_long n_errors;   /* connection-level failures */
static double *latency_ms;     /* per message index; < 0 when not acked */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int err_printed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void complain(const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&err_lock);
    if (err_printed++ < 10)
        fprintf(stderr, fmt, a, b);
    pthread_mutex_unlock(&err_lock);
}

static int connect_to(const struct opts *o)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        complain("smtp-load: %s: %s\n", o->host, gai_strerror(rc));
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
        complain("smtp-load: connect: %s%s\n", strerror(errno), "");
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { .tv_sec = o->timeout_s };
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

/* One CRLF- or LF-terminated line into line (NUL-terminated, EOL removed). */
static int read_line(struct conn *c, char *line, size_t cap)
{
    size_t len = 0;
    for (;;) {
        if (c->pos == c->have) {
            ssize_t r = recv(c->fd, c->in, sizeof c->in, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            c->have = (size_t)r;
            c->pos = 0;
        }
        char ch = c->in[c->pos++];
        if (ch == '\n') {
            if (len > 0 && line[len - 1] == '\r')
                len--;
            line[len] = '\0';
            return 0;
        }
        if (len + 1 < cap)
            line[len++] = ch;
    }
}

/* Reads a (multi-line) reply; returns its code, -1 on a broken connection.
 * last receives the final line. */
static int read_reply(struct conn *c, char *last, size_t cap)
{
    for (int i = 0; i < REPLY_MAX_LINES; i++) {
        if (read_line(c, last, cap) != 0)
            return -1;
        if (strlen(last) < 3)
            return -1;
        if (last[3] != '-')
            return atoi(last);
    }
    return -1;
}

static int command(struct conn *c, const char *cmd, size_t len, int want, char *reply,
                   size_t cap)
{
    if (send_all(c, cmd, len) != 0)
        return -1;
    int code = read_reply(c, reply, cap);
    return code == want ? 0 : (code < 0 ? -1 : code);
}

/* A message of about opt.size bytes, unique by index (no blob dedup). */
static size_t build_message(char *out, size_t cap, long idx)
{
    size_t n = (size_t)snprintf(out, cap,
                                "From: Bench <%s>\r\n"
                                "To: <%s>\r\n"
                                "Subject: bench message %ld\r\n"
                                "Message-ID: <bench-%ld-%d@load.test>\r\n"
                                "Date: Mon, 01 Dec 2025 12:00:00 +0000\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: text/plain; charset=us-ascii\r\n"
                                "\r\n",
                                opt.from, opt.rcpt, idx, idx, (int)getpid());
    static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed "
                                "do eiusmod tempor incididunt ut labore et dolore magna ";
    unsigned seed = (unsigned)idx * 2654435761u + 1;
    /* Leave room for the ".\r\n" terminator. */
    while (n + 80 + 5 < (size_t)opt.size && n + 80 + 5 < cap) {
        int col = snprintf(out + n, cap - n, "%08ld ", idx);
        n += (size_t)col;
        while (col < 72) {
            seed = seed * 1103515245u + 12345u;
            size_t off = (seed >> 8) % (sizeof words - 12);
            out[n++] = words[off];
            col++;
        }
        out[n++] = '\r';
        out[n++] = '\n';
    }
    memcpy(out + n, ".\r\n", 3);
    return n + 3;
}

static void *worker(void *arg)
{
    (void)arg;
    char line[LINE_MAX_LEN];
    char cmd[512];
    size_t cap = (size_t)opt.size + 1024;
    char *msg = malloc(cap);
    struct conn *c = calloc(1, sizeof *c);
    if (!msg || !c) {
        atomic_fetch_add(&n_errors, 1);
        free(msg);
        free(c);
        return NULL;
    }
    c->fd = connect_to(&opt);
    if (c->fd < 0)
        goto fail;
    int code = read_reply(c, line, sizeof line);
    if (code != 220) {
        complain("smtp-load: greeting: %s%s\n", code < 0 ? "connection closed" : line, "");
        goto fail;
    }
    int n = snprintf(cmd, sizeof cmd, "EHLO load.test\r\n");
    if ((code = command(c, cmd, (size_t)n, 250, line, sizeof line)) != 0) {
        complain("smtp-load: EHLO: %s%s\n", code < 0 ? "connection closed" : line, "");
        goto fail;
    }
    for (;;) {
        long idx = atomic_fetch_add(&next_msg, 1);
        if (idx >= opt.messages)
            break;
        size_t mlen = build_message(msg, cap, idx);
        double t0 = now_s();
        n = snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", opt.from);
        if ((code = command(c, cmd, (size_t)n, 250, line, sizeof line)) != 0)
            goto txn_failed;
        n = snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", opt.rcpt);
        if ((code = command(c, cmd, (size_t)n, 250, line, sizeof line)) != 0)
            goto txn_failed;
        if ((code = command(c, "DATA\r\n", 6, 354, line, sizeof line)) != 0)
            goto txn_failed;
        if ((code = command(c, msg, mlen, 250, line, sizeof line)) != 0)
            goto txn_failed;
        latency_ms[idx] = (now_s() - t0) * 1000.0;
        atomic_fetch_add(&n_acked, 1);
        continue;
    txn_failed:
        if (code < 0) {
            complain("smtp-load: connection lost during a transaction%s%s\n", "", "");
            atomic_fetch_add(&n_failed, 1);
            goto fail;
        }
        complain("smtp-load: refused: %s%s\n", line, "");
        atomic_fetch_add(&n_failed, 1);
        if (send_all(c, "RSET\r\n", 6) != 0 || read_reply(c, line, sizeof line) < 0)
            goto fail;
    }
    if (send_all(c, "QUIT\r\n", 6) == 0)
        (void)read_reply(c, line, sizeof line);
    close(c->fd);
    free(c);
    free(msg);
    return NULL;
fail:
    atomic_fetch_add(&n_errors, 1);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    free(msg);
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
        fprintf(stderr, "smtp-load: %s: expected %ld..%ld, got %s\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: smtp-load -p PORT [-h HOST] [-n MESSAGES] [-c CONNECTIONS]"
                    " [-s SIZE] [-r RCPT] [-f FROM] [-t TIMEOUT_S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "h:p:n:c:s:r:f:t:")) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'n': opt.messages = number(optarg, 1, 100000000, "-n"); break;
        case 'c': opt.conns = number(optarg, 1, 10000, "-c"); break;
        case 's': opt.size = number(optarg, 512, 64 * 1024 * 1024, "-s"); break;
        case 'r': opt.rcpt = optarg; break;
        case 'f': opt.from = optarg; break;
        case 't': opt.timeout_s = number(optarg, 1, 3600, "-t"); break;
        default: usage();
        }
    }
    if (!opt.port || optind != argc)
        usage();

    latency_ms = malloc((size_t)opt.messages * sizeof *latency_ms);
    pthread_t *th = calloc((size_t)opt.conns, sizeof *th);
    if (!latency_ms || !th) {
        fprintf(stderr, "smtp-load: out of memory\n");
        return 1;
    }
    for (long i = 0; i < opt.messages; i++)
        latency_ms[i] = -1.0;

    double t0 = now_s();
    long started = 0;
    for (long i = 0; i < opt.conns; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&th[i], &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            fprintf(stderr, "smtp-load: pthread_create: %s\n", strerror(rc));
            break;
        }
        started++;
    }
    for (long i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - t0;

    size_t n = 0;
    for (long i = 0; i < opt.messages; i++)
        if (latency_ms[i] >= 0)
            latency_ms[n++] = latency_ms[i];
    qsort(latency_ms, n, sizeof *latency_ms, cmp_double);

    long acked = atomic_load(&n_acked);
    printf("messages=%ld connections=%ld size=%ld\n", opt.messages, opt.conns, opt.size);
    printf("acked=%ld failed=%ld errors=%ld unsent=%ld\n", acked, atomic_load(&n_failed),
           atomic_load(&n_errors), opt.messages - acked - atomic_load(&n_failed));
    printf("elapsed_s=%.3f msgs_per_s=%.1f\n", elapsed, elapsed > 0 ? acked / elapsed : 0.0);
    printf("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", percentile(latency_ms, n, 50),
           percentile(latency_ms, n, 90), percentile(latency_ms, n, 99),
           n ? latency_ms[n - 1] : 0.0);
    free(latency_ms);
    free(th);
    return acked == opt.messages ? 0 : 1;
}
