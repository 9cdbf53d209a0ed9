/*
 * config.c — INI configuration: built-in defaults, parsing with inih, and
 * validation. Every error is one line "FILE:LINE: [section] key: problem".
 */
#include "core/core.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[LISTEN_KIND_COUNT] = {
    [LISTEN_SMTP] = "smtp",
    [LISTEN_SUBMISSION] = "submission",
    [LISTEN_SUBMISSIONS] = "submissions",
    [LISTEN_IMAP] = "imap",
    [LISTEN_IMAPS] = "imaps",
    [LISTEN_POP3] = "pop3",
    [LISTEN_POP3S] = "pop3s",
};

static const char *const checks_mode_names[] = {
    [CHECKS_OFF] = "off",
    [CHECKS_TAG] = "tag",
    [CHECKS_ENFORCE] = "enforce",
};

const char *checks_mode_name(enum checks_mode mode)
{
    if ((unsigned)mode > CHECKS_ENFORCE)
        return "unknown";
    return checks_mode_names[mode];
}

const char *listener_kind_name(enum listener_kind kind)
{
    if ((unsigned)kind >= LISTEN_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (gethostname(cfg->hostname, sizeof cfg->hostname - 1) != 0 || !cfg->hostname[0])
        snprintf(cfg->hostname, sizeof cfg->hostname, "localhost");
    cfg->hostname[sizeof cfg->hostname - 1] = '\0';
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "/var/lib/petrel");
    snprintf(cfg->tls_cert, sizeof cfg->tls_cert, "/etc/petrel/tls/cert.pem");
    snprintf(cfg->tls_key, sizeof cfg->tls_key, "/etc/petrel/tls/key.pem");

    cfg->max_connections = 2000;
    cfg->max_connections_per_ip = 250;
    cfg->max_line_length = 4096;
    cfg->max_message_size = 50ull * 1024 * 1024;
    cfg->max_recipients = 1000;
    cfg->max_errors = 10;
    cfg->smtp_timeout = 300;
    cfg->preauth_timeout = 60;
    cfg->idle_timeout = 1800;
    cfg->max_output_buffer = 1024 * 1024;
    cfg->max_hops = 50;

    cfg->plaintext_on_loopback = false;
    cfg->auth_fail_delay_ms = 1000;
    cfg->auth_max_fails_ip = 20;
    cfg->auth_max_fails_user = 10;
    cfg->auth_fail_window = 900;

    cfg->default_quota = 0;
    cfg->log_level = PLOG_INFO;
    cfg->threads = 4;

    cfg->dns_server[0] = '\0'; /* /etc/resolv.conf */
    cfg->dns_timeout_ms = 5000;
    cfg->dns_tries = 2;

    /* Enforce: a domain's published DMARC policy protects its users' names
     * from forgery; DNS failures never reject (docs/spf-dmarc.md). */
    cfg->checks_mode = CHECKS_ENFORCE;
    snprintf(cfg->checks_psl, sizeof cfg->checks_psl,
             "/usr/share/publicsuffix/public_suffix_list.dat");
    cfg->checks_timeout = 20; /* RFC 7208 §4.6.4: at least 20 s for SPF */

    cfg->relay_port = 587;
    cfg->relay_tls = RELAY_STARTTLS;
    cfg->mx_port = 25;
    cfg->queue_lifetime = 5 * 86400;     /* RFC 5321 §4.5.4.1: at least 4-5 days */
    cfg->queue_delay_warning = 4 * 3600;
    cfg->queue_retry_min = 300;          /* RFC 5321 §4.5.4.1: at least 30 minutes is */
    cfg->queue_retry_max = 3600;         /* the RFC's advice; we start faster, cap at 1 h */
    cfg->queue_per_domain = 20;        /* Postfix's default_destination_concurrency_limit */
    cfg->queue_max_connections = 64;
}

int parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*p) {
    case '\0': break;
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: return -1;
    }
    if (*p != '\0')
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

/* ------------------------------------------------------------ key table */

enum key_type {
    K_STR,      /* char array of size bytes, non-empty */
    K_ADDR,     /* [listen] host:port */
    K_UINT,     /* plain decimal number, fits unsigned within [min, max] */
    K_USIZE,    /* size with K/M/G suffix, fits unsigned within [min, max] */
    K_SIZE,     /* size with K/M/G suffix, uint64_t */
    K_BOOL,
    K_LOGLEVEL,
    K_DNSSERVER, /* [dns] server: numeric address, optional port (dns_server_parse) */
    K_CHECKSMODE, /* [checks] mode: off, tag, enforce */
    K_OPTSTR,   /* char array of size bytes, may be empty */
    K_RELAYTLS, /* [relay] tls: starttls, implicit */
};

struct key_def {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size;    /* K_STR: capacity */
    uint64_t min;   /* K_UINT / K_USIZE range */
    uint64_t max;
};

#define OFF(f) offsetof(struct config, f)
#define STR(sec, key, f) { sec, key, K_STR, OFF(f), sizeof(((struct config *)0)->f), 0, 0 }
#define ADDR(key, kind) \
    { "listen", key, K_ADDR, OFF(listen) + (kind) * sizeof(struct listen_addr), 0, 0, 0 }
#define OPTSTR(sec, key, f) { sec, key, K_OPTSTR, OFF(f), sizeof(((struct config *)0)->f), 0, 0 }
#define UINT(sec, key, f, lo, hi) { sec, key, K_UINT, OFF(f), 0, lo, hi }
#define USIZE(sec, key, f, lo, hi) { sec, key, K_USIZE, OFF(f), 0, lo, hi }

static const struct key_def keys[] = {
    STR("server", "hostname", hostname),
    STR("server", "data_dir", data_dir),
    STR("tls", "cert", tls_cert),
    STR("tls", "key", tls_key),
    OPTSTR("tls", "ca_file", tls_ca_file),
    ADDR("smtp", LISTEN_SMTP),
    ADDR("submission", LISTEN_SUBMISSION),
    ADDR("submissions", LISTEN_SUBMISSIONS),
    ADDR("imap", LISTEN_IMAP),
    ADDR("imaps", LISTEN_IMAPS),
    ADDR("pop3", LISTEN_POP3),
    ADDR("pop3s", LISTEN_POP3S),
    UINT("limits", "max_connections", max_connections, 1, 1000000),
    UINT("limits", "max_connections_per_ip", max_connections_per_ip, 1, 1000000),
    /* RFC 5321 §4.5.3.1.4 and RFC 9051 need lines of at least 512 / 8000 bytes. */
    USIZE("limits", "max_line_length", max_line_length, 512, 1024 * 1024),
    { "limits", "max_message_size", K_SIZE, OFF(max_message_size), 0, 0, 0 },
    UINT("limits", "max_recipients", max_recipients, 1, 1000000),
    UINT("limits", "max_errors", max_errors, 1, 1000000),
    UINT("limits", "smtp_timeout", smtp_timeout, 1, 86400),
    UINT("limits", "preauth_timeout", preauth_timeout, 1, 86400),
    UINT("limits", "idle_timeout", idle_timeout, 1, 86400),
    USIZE("limits", "max_output_buffer", max_output_buffer, 4096, 1024u * 1024 * 1024),
    UINT("limits", "max_hops", max_hops, 1, 1000),
    { "auth", "plaintext_on_loopback", K_BOOL, OFF(plaintext_on_loopback), 0, 0, 0 },
    UINT("auth", "fail_delay_ms", auth_fail_delay_ms, 0, 60000),
    UINT("auth", "max_fails_ip", auth_max_fails_ip, 1, 1000000),
    UINT("auth", "max_fails_user", auth_max_fails_user, 1, 1000000),
    UINT("auth", "fail_window", auth_fail_window, 1, 86400 * 7),
    { "store", "default_quota", K_SIZE, OFF(default_quota), 0, 0, 0 },
    { "log", "level", K_LOGLEVEL, OFF(log_level), 0, 0, 0 },
    UINT("worker", "threads", threads, 1, 1024),
    { "dns", "server", K_DNSSERVER, OFF(dns_server), sizeof(((struct config *)0)->dns_server),
      0, 0 },
    UINT("dns", "timeout", dns_timeout_ms, 10, 60000),
    UINT("dns", "tries", dns_tries, 1, 10),
    { "checks", "mode", K_CHECKSMODE, OFF(checks_mode), 0, 0, 0 },
    STR("checks", "psl", checks_psl),
    UINT("checks", "timeout", checks_timeout, 1, 600),
    OPTSTR("relay", "host", relay_host),
    UINT("relay", "port", relay_port, 1, 65535),
    { "relay", "tls", K_RELAYTLS, OFF(relay_tls), 0, 0, 0 },
    OPTSTR("relay", "user", relay_user),
    OPTSTR("relay", "password", relay_password),
    UINT("relay", "mx_port", mx_port, 1, 65535),
    UINT("queue", "lifetime", queue_lifetime, 1, 90 * 86400),
    UINT("queue", "delay_warning", queue_delay_warning, 0, 90 * 86400),
    UINT("queue", "retry_min", queue_retry_min, 1, 86400),
    UINT("queue", "retry_max", queue_retry_max, 1, 7 * 86400),
    UINT("queue", "per_domain", queue_per_domain, 1, 1000),
    UINT("queue", "max_connections", queue_max_connections, 1, 10000),
};

#define NKEYS (sizeof keys / sizeof keys[0])

struct parse_state {
    struct config *cfg;
    const char *path;   /* the file, or the name given with a string */
    FILE *f;            /* config_load: the file, or NULL */
    const char *text;   /* config_load_string: what is left to read */
    int cur_line;       /* line of the text inih is handling now */
    int next_line;
    int lines[NKEYS];   /* where each key was set; 0 = default */
    int err_line;       /* first error; 0 = none */
    char *err;
    size_t errlen;
};

/* fgets() over a string: at most num - 1 bytes, up to and including '\n'. */
static char *string_gets(char *str, int num, const char **text)
{
    const char *t = *text;
    if (!*t || num < 2)
        return NULL;
    size_t max = (size_t)num - 1, n = 0;
    while (n < max && t[n]) {
        if (t[n++] == '\n')
            break;
    }
    memcpy(str, t, n);
    str[n] = '\0';
    *text = t + n;
    return str;
}

static bool more_input(struct parse_state *st)
{
    if (!st->f)
        return *st->text != '\0';
    int ch = getc(st->f);
    if (ch == EOF)
        return false;
    ungetc(ch, st->f);
    return true;
}

/*
 * inih reads line by line through this; counting here gives handler line
 * numbers. inih cuts a line longer than its buffer and parses the rest as
 * a line of its own, which would silently truncate a value: refuse it.
 */
static char *count_reader(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    char *r = st->f ? fgets(str, num, st->f) : string_gets(str, num, &st->text);
    if (!r)
        return NULL;
    st->cur_line = st->next_line;
    size_t n = strlen(r);
    if (n > 0 && r[n - 1] == '\n') {
        st->next_line++;
    } else if (n + 1 >= (size_t)num && more_input(st)) {
        if (!st->err_line) { /* keep the first */
            st->err_line = st->cur_line;
            if (st->err && st->errlen)
                snprintf(st->err, st->errlen, "%s:%d: line too long (max %d bytes)", st->path,
                         st->cur_line, num - 2);
        }
        return NULL;
    }
    return r;
}

static void set_err(struct parse_state *st, int line, const char *section, const char *name,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_err(struct parse_state *st, int line, const char *section, const char *name,
                    const char *fmt, ...)
{
    if (st->err_line)
        return; /* keep the first */
    st->err_line = line;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (st->err && st->errlen)
        snprintf(st->err, st->errlen, "%s:%d: [%s] %s: %s", st->path, line, section, name, what);
}

static const char *const bool_true[] = { "true", "yes", "on", "1" };
static const char *const bool_false[] = { "false", "no", "off", "0" };

static int parse_bool(const char *v, bool *out)
{
    for (size_t i = 0; i < sizeof bool_true / sizeof bool_true[0]; i++) {
        if (strcasecmp(v, bool_true[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, bool_false[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_uint(const char *v, uint64_t *out)
{
    if (!*v)
        return -1;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* "192.0.2.1:25" or "[2001:db8::1]:25"; numeric addresses only (no DNS). */
static int parse_addr(const char *v, struct listen_addr *out, const char **why)
{
    char host[sizeof out->host];
    const char *port;
    size_t hlen;
    if (v[0] == '[') {
        const char *end = strchr(v, ']');
        if (!end || end[1] != ':') {
            *why = "expected [IPv6]:port";
            return -1;
        }
        hlen = (size_t)(end - v - 1);
        if (hlen == 0 || hlen >= sizeof host) {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(host, v + 1, hlen);
        host[hlen] = '\0';
        struct sockaddr_in6 a6;
        if (uv_ip6_addr(host, 0, &a6) != 0 || strchr(host, '%')) {
            *why = "bad IPv6 address";
            return -1;
        }
        port = end + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon || strchr(v, ':') != colon) {
            *why = "expected host:port (IPv6 in brackets)";
            return -1;
        }
        hlen = (size_t)(colon - v);
        if (hlen == 0 || hlen >= sizeof host) {
            *why = "bad IPv4 address";
            return -1;
        }
        memcpy(host, v, hlen);
        host[hlen] = '\0';
        struct sockaddr_in a4;
        if (uv_ip4_addr(host, 0, &a4) != 0) {
            *why = "bad IPv4 address (numeric address expected)";
            return -1;
        }
        port = colon + 1;
    }
    uint64_t p;
    if (parse_uint(port, &p) != 0 || p > 65535) {
        *why = "bad port (0-65535)";
        return -1;
    }
    out->enabled = true;
    snprintf(out->host, sizeof out->host, "%s", host);
    out->port = (int)p;
    return 0;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    int line = st->cur_line;
    bool section_known = false;
    const struct key_def *k = NULL;
    size_t idx = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) != 0)
            continue;
        section_known = true;
        if (strcmp(keys[i].name, name) == 0) {
            k = &keys[i];
            idx = i;
            break;
        }
    }
    if (!section_known) {
        set_err(st, line, section, name, "unknown section [%s]", section);
        return 0;
    }
    if (!k) {
        set_err(st, line, section, name, "unknown key");
        return 0;
    }
    if (st->lines[idx]) {
        set_err(st, line, section, name, "duplicate key (first set on line %d)", st->lines[idx]);
        return 0;
    }
    st->lines[idx] = line;

    char *field = (char *)st->cfg + k->offset;
    uint64_t n;
    const char *why = NULL;
    switch (k->type) {
    case K_STR:
    case K_OPTSTR:
        if (!*value && k->type == K_STR) {
            set_err(st, line, section, name, "empty value");
            return 0;
        }
        if (strlen(value) >= k->size) {
            set_err(st, line, section, name, "value too long (max %zu bytes)", k->size - 1);
            return 0;
        }
        memcpy(field, value, strlen(value) + 1);
        break;
    case K_ADDR:
        if (parse_addr(value, (struct listen_addr *)field, &why) != 0) {
            set_err(st, line, section, name, "bad address \"%s\": %s", value, why);
            return 0;
        }
        break;
    case K_UINT:
    case K_USIZE:
        if ((k->type == K_UINT ? parse_uint(value, &n) : parse_size(value, &n)) != 0) {
            set_err(st, line, section, name, "bad number \"%s\"", value);
            return 0;
        }
        if (n < k->min || n > k->max) {
            set_err(st, line, section, name, "out of range (%llu to %llu)",
                    (unsigned long long)k->min, (unsigned long long)k->max);
            return 0;
        }
        *(unsigned *)field = (unsigned)n;
        break;
    case K_SIZE:
        if (parse_size(value, &n) != 0) {
            set_err(st, line, section, name, "bad size \"%s\" (bytes, or with K, M, G)", value);
            return 0;
        }
        *(uint64_t *)field = n;
        break;
    case K_BOOL:
        if (parse_bool(value, (bool *)field) != 0) {
            set_err(st, line, section, name, "bad boolean \"%s\" (true or false)", value);
            return 0;
        }
        break;
    case K_LOGLEVEL:
        if (log_level_parse(value, (enum log_level *)field) != 0) {
            set_err(st, line, section, name, "bad level \"%s\" (error, warn, info, debug)",
                    value);
            return 0;
        }
        break;
    case K_DNSSERVER: {
        char host[64];
        int port;
        if (!*value) {
            set_err(st, line, section, name, "empty value");
            return 0;
        }
        if (strlen(value) >= k->size ||
            dns_server_parse(value, host, sizeof host, &port, &why) != 0) {
            set_err(st, line, section, name, "bad server \"%s\": %s", value,
                    why ? why : "too long");
            return 0;
        }
        memcpy(field, value, strlen(value) + 1);
        break;
    }
    case K_CHECKSMODE: {
        size_t m = 0;
        while (m <= CHECKS_ENFORCE && strcasecmp(value, checks_mode_names[m]) != 0)
            m++;
        if (m > CHECKS_ENFORCE) {
            set_err(st, line, section, name, "bad mode \"%s\" (off, tag, enforce)", value);
            return 0;
        }
        *(enum checks_mode *)field = (enum checks_mode)m;
        break;
    }
    case K_RELAYTLS:
        if (strcasecmp(value, "starttls") == 0) {
            *(enum relay_tls *)field = RELAY_STARTTLS;
        } else if (strcasecmp(value, "implicit") == 0) {
            *(enum relay_tls *)field = RELAY_IMPLICIT;
        } else {
            set_err(st, line, section, name, "bad value \"%s\" (starttls, implicit)", value);
            return 0;
        }
        break;
    }
    return 1;
}

static int key_index(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The TLS certificate and key must be readable when any listener is enabled:
 * every protocol offers STARTTLS or speaks implicit TLS. */
static int check_readable(struct parse_state *st, const char *name, const char *file)
{
    if (access(file, R_OK) == 0)
        return 0;
    int e = errno;
    int line = st->lines[key_index("tls", name)];
    if (st->err && st->errlen) {
        if (line)
            snprintf(st->err, st->errlen, "%s:%d: [tls] %s: cannot read %s: %s", st->path, line,
                     name, file, strerror(e));
        else
            snprintf(st->err, st->errlen, "%s: [tls] %s: cannot read %s: %s", st->path, name,
                     file, strerror(e));
    }
    return -1;
}

/* Parses what st reads (a file or a string) over cfg, then validates. */
static int load(struct parse_state *st)
{
    struct config *cfg = st->cfg;
    const char *path = st->path;
    char *err = st->err;
    size_t errlen = st->errlen;
    int rc = ini_parse_stream(count_reader, st, ini_cb, st);
    if (rc == -2) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (rc > 0) {
        /* inih reports the first bad line; it is ours unless a syntax error came first. */
        if (!st->err_line || rc < st->err_line) {
            if (err && errlen)
                snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)",
                         path, rc);
        }
        return -1;
    }
    if (rc != 0 || st->err_line)
        return -1;

    snprintf(cfg->path, sizeof cfg->path, "%s", path);

    /* Validation after parsing: values that depend on each other or on files. */
    if (!cfg->hostname[0]) {
        if (err && errlen)
            snprintf(err, errlen, "%s: [server] hostname: must not be empty", path);
        return -1;
    }
    if (!cfg->data_dir[0]) {
        if (err && errlen)
            snprintf(err, errlen, "%s: [server] data_dir: must not be empty", path);
        return -1;
    }
    if (!cfg->relay_user[0] != !cfg->relay_password[0]) {
        if (err && errlen)
            snprintf(err, errlen, "%s: [relay] user and password: give both or neither", path);
        return -1;
    }
    if (cfg->queue_retry_min > cfg->queue_retry_max) {
        if (err && errlen)
            snprintf(err, errlen, "%s: [queue] retry_min: more than retry_max", path);
        return -1;
    }
    bool any = false;
    for (int i = 0; i < LISTEN_KIND_COUNT; i++)
        any |= cfg->listen[i].enabled;
    if (any) {
        if (check_readable(st, "cert", cfg->tls_cert) != 0 ||
            check_readable(st, "key", cfg->tls_key) != 0)
            return -1;
    }
    return 0;
}

static bool name_fits(const char *path, const struct config *cfg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (strlen(path) < sizeof cfg->path)
        return true;
    if (err && errlen)
        snprintf(err, errlen, "%s: path too long", path);
    return false;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    if (!name_fits(path, cfg, err, errlen))
        return -1;
    struct parse_state st = {
        .cfg = cfg, .path = path, .next_line = 1, .err = err, .errlen = errlen,
    };
    st.f = fopen(path, "r");
    if (!st.f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = load(&st);
    fclose(st.f);
    return rc;
}

int config_load_string(const char *text, const char *name, struct config *cfg, char *err,
                       size_t errlen)
{
    if (!name_fits(name, cfg, err, errlen))
        return -1;
    struct parse_state st = {
        .cfg = cfg, .path = name, .text = text, .next_line = 1, .err = err, .errlen = errlen,
    };
    return load(&st);
}
