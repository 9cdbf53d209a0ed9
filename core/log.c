/*
 * log.c — one line per event on stderr, key=value fields.
 */
#include "core/core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Logging may be called from worker threads (store writer, thread pool). */
static _Atomic int log_level_cur = PLOG_INFO;

static const char *const level_names[] = {
    [PLOG_ERROR] = "error",
    [PLOG_WARN] = "warn",
    [PLOG_INFO] = "info",
    [PLOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_level_cur);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Longest line written; longer events are cut (and still end in a newline). */
#define LOG_LINE_MAX 4096

void log_event(enum log_level level, uint64_t conn_id, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    char idbuf[24];
    if (conn_id)
        snprintf(idbuf, sizeof idbuf, "c%llu", (unsigned long long)conn_id);
    else
        strcpy(idbuf, "-");
    int w = snprintf(line + n, sizeof line - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000L,
                     level_names[level], idbuf);
    if (w > 0)
        n += (size_t)w;

    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';

    /* One write(2) per line so lines from several threads do not interleave. */
    const char *p = line;
    while (n > 0) {
        ssize_t r = write(STDERR_FILENO, p, n);
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
}

const char *log_value(const char *s, char *buf, size_t bufsize)
{
    if (bufsize == 0)
        return buf;
    if (!s)
        s = "";
    bool quote = s[0] == '\0' || strchr(s, ' ') != NULL;
    /* Room for the body: keep one byte for NUL and, when quoting, two quotes. */
    size_t room = bufsize - 1;
    size_t n = 0;
    if (quote) {
        if (room < 2) {
            buf[0] = '\0';
            return buf;
        }
        room -= 1; /* closing quote */
        buf[n++] = '"';
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        size_t elen;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            elen = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2);
            elen = 2;
        } else if (*p == '\r') {
            memcpy(esc, "\\r", 2);
            elen = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2);
            elen = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            elen = 4;
        } else {
            esc[0] = (char)*p;
            elen = 1;
        }
        if (n + elen > room)
            break; /* never cut an escape in half */
        memcpy(buf + n, esc, elen);
        n += elen;
    }
    if (quote)
        buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}
