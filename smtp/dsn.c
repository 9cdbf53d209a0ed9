/*
 * Delivery status notifications: the bounce or delay notice sent to the
 * sender of a message the outbound relay could not (yet) deliver, RFC 3464
 * inside an RFC 6522 multipart/report, with the RFC 6533 types when an
 * address is UTF-8. Also the hop count of RFC 5321 §6.3 (it belongs with
 * the trace code and may move there).
 *
 * Pure code: no I/O, no clock, no global state. The message is built in
 * three steps: the inputs are checked and cleaned, the text and report
 * parts are written into buffers of their own, then a boundary that occurs
 * in none of the parts is chosen and everything is joined. docs/bounces.md
 * shows the result.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "smtp/smtp.h"

#define NO_CAP ((size_t)-1 / 4)   /* the output is bounded by its inputs */
#define FOLD_WIDTH 78             /* RFC 5322 §2.1.1: lines SHOULD NOT pass 78 */
#define HARD_WIDTH 900            /* ... and MUST NOT pass 998: break words here */
#define TEXT_WIDTH 72             /* the human-readable part */
#define MAX_SUBJECT 200           /* bytes of the original's Subject quoted */
#define MAX_FIELD 1024            /* bytes of any other single input string used */
#define BOUNDARY_TRIES 64
#define MAX_TIME INT64_C(253402300799)  /* 9999-12-31T23:59:59Z: 4-digit years */

/* ------------------------------------------------------------ output */

/* A buffer that remembers a failed append, so writers need not check each. */
struct out {
    struct buf b;
    bool fail;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (!o->fail && buf_append(&o->b, p, n, NO_CAP) != 0)
        o->fail = true;
}

static void put_s(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_c(struct out *o, char c)
{
    put(o, &c, 1);
}

/* Short formatted pieces only (numbers, dates, fixed words). */
__attribute__((format(printf, 2, 3))) static void put_f(struct out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        o->fail = true;
        return;
    }
    put(o, tmp, (size_t)n);
}

/* NUL-terminates and hands the bytes over (NULL on failure); o is emptied. */
static char *out_take(struct out *o, size_t *len)
{
    put_c(o, 0);
    if (o->fail) {
        buf_free(&o->b);
        return NULL;
    }
    char *p = o->b.data;
    *len = o->b.len - 1;
    o->b = (struct buf){ 0 };
    return p;
}

/* ------------------------------------------------------------ helpers */

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static bool starts_ci(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (lower(s[i]) != lower(lit[i]))
            return false;
    return true;
}

static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

static bool str_8bit(const char *s)
{
    return s && has_8bit(s, strlen(s));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* FNV-1a, 64 bits: for names that must differ between reports, not for security. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t fnv_s(uint64_t h, const char *s)
{
    return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "", 1);
}

static uint64_t fnv_i(uint64_t h, int64_t v)
{
    return fnv(h, &v, sizeof v);
}

/*
 * Appends s[0, n) made safe for one line of a header field or of text:
 * CR, LF, the other controls and DEL become spaces; a byte >= 0x80 is kept
 * when utf8 and it begins valid UTF-8 (RFC 3629), else it becomes '?'.
 * Leading and trailing spaces are dropped; at most max bytes are written,
 * cut at a character boundary.
 */
static void put_clean(struct out *o, const char *s, size_t n, bool utf8, size_t max)
{
    size_t start = o->b.len, kept = o->b.len;  /* kept: end of the last non-space */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = 1;
        if (c >= 0x80) {
            k = utf8 ? utf8_seq_len((const unsigned char *)s + i, n - i) : 0;
            if (k == 0) {
                k = 1;
                c = '?';
            }
        } else if (c < 0x20 || c == 0x7f) {
            c = ' ';
        }
        if (o->b.len - start + k > max)
            break;
        if (c == ' ' && o->b.len == start) {
            i += k;
            continue;
        }
        if (c >= 0x80)
            put(o, s + i, k);
        else
            put_c(o, (char)c);
        if (o->fail)
            return;
        if (c != ' ')
            kept = o->b.len;
        i += k;
    }
    o->b.len = kept;
}

/* A cleaned copy of s (NULL: ""), malloc'd; NULL when out of memory. */
static char *clean_dup(const char *s, bool utf8, size_t max)
{
    struct out o = { 0 };
    if (s)
        put_clean(&o, s, strlen(s), utf8, max);
    size_t len;
    return out_take(&o, &len);
}

/*
 * The lines of a reply ("550-5.1.1 first\r\n550 5.1.1 second"), each
 * cleaned, empty ones dropped, joined with "\n" (the only control left),
 * at most DSN_MAX_DIAGNOSTIC bytes. malloc'd; NULL when out of memory.
 */
static char *clean_lines(const char *s, bool utf8)
{
    struct out o = { 0 };
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        size_t before = o.b.len;
        if (before > 0)
            put_c(&o, '\n');
        size_t room = DSN_MAX_DIAGNOSTIC > o.b.len ? DSN_MAX_DIAGNOSTIC - o.b.len : 0;
        size_t mark = o.b.len;
        put_clean(&o, s + i, j - i, utf8, room);
        if (o.b.len == mark)
            o.b.len = before;  /* an empty line: drop its separator too */
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        i = j;
    }
    size_t len;
    return out_take(&o, &len);
}

/* ------------------------------------------------------------- times */

struct civil {
    int64_t year;
    unsigned month, day, hour, min, sec, wday;  /* month 1-12, wday 0 = Sunday */
};

/* Unix time to the proleptic Gregorian calendar in UTC (days_from_civil inverted). */
static void civil_from_unix(int64_t t, struct civil *c)
{
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    c->hour = (unsigned)(secs / 3600);
    c->min = (unsigned)(secs / 60 % 60);
    c->sec = (unsigned)(secs % 60);
    c->wday = (unsigned)(((days % 7) + 7 + 4) % 7);  /* 1970-01-01 was a Thursday */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    c->day = doy - (153 * mp + 2) / 5 + 1;
    c->month = mp < 10 ? mp + 3 : mp - 9;
    c->year = (int64_t)yoe + era * 400 + (c->month <= 2);
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static bool time_ok(int64_t t)
{
    return t >= 0 && t <= MAX_TIME;
}

/* RFC 5322 §3.3 date-time in UTC: "Tue, 14 Nov 2023 22:13:20 +0000". */
static void put_date(struct out *o, int64_t t)
{
    struct civil c;
    civil_from_unix(t, &c);
    put_f(o, "%s, %02u %s %04" PRId64 " %02u:%02u:%02u +0000", wdays[c.wday], c.day,
          months[c.month - 1], c.year, c.hour, c.min, c.sec);
}

/* For people: "Tue, 14 Nov 2023 22:13 UTC". */
static void put_human_date(struct out *o, int64_t t)
{
    struct civil c;
    civil_from_unix(t, &c);
    put_f(o, "%s, %u %s %04" PRId64 " %02u:%02u UTC", wdays[c.wday], c.day,
          months[c.month - 1], c.year, c.hour, c.min);
}

/* ------------------------------------------------------ header fields */

/*
 * Writes "name: value" CRLF, value cleaned already ("\n" in it forces a
 * fold, as between the lines of a multi-line reply, RFC 3464 §2.1.2).
 * Folding (RFC 5322 §2.2.3) puts a CRLF before an existing space once a
 * line would pass FOLD_WIDTH, so unfolding gives the value back; a run of
 * HARD_WIDTH bytes without a space is broken with CRLF SP.
 */
static void put_field(struct out *o, const char *name, const char *value)
{
    put_s(o, name);
    put_s(o, ": ");
    size_t col = strlen(name) + 2;
    bool line_has_text = false;
    const char *p = value;
    while (*p) {
        if (*p == '\n') {
            put_s(o, "\r\n ");
            col = 1;
            line_has_text = false;
            p++;
            continue;
        }
        /* A chunk: its leading spaces, then up to the next space or "\n". */
        size_t n = 0;
        while (p[n] == ' ')
            n++;
        while (p[n] && p[n] != ' ' && p[n] != '\n')
            n++;
        if (line_has_text && p[0] == ' ' && col + n > FOLD_WIDTH) {
            put_s(o, "\r\n");
            col = 0;
        }
        while (col + n > HARD_WIDTH) {
            size_t k = HARD_WIDTH > col ? HARD_WIDTH - col : 1;
            put(o, p, k);
            put_s(o, "\r\n ");
            p += k;
            n -= k;
            col = 1;
        }
        put(o, p, n);
        col += n;
        line_has_text = true;
        p += n;
    }
    put_s(o, "\r\n");
}

/* ---------------------------------------------------- report contents */

static const char *const action_names[] = { "failed", "delayed", "delivered", "relayed",
                                            "expanded" };

/* RFC 3463 §2: class "." subject "." detail, subject and detail 1-3 digits. */
static bool status_ok(const char *s)
{
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return false;
    const char *p = s + 1;
    for (int part = 0; part < 2; part++) {
        if (*p++ != '.')
            return false;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits <= 3) {
            p++;
            digits++;
        }
        if (digits < 1 || digits > 3)
            return false;
    }
    return *p == 0;
}

static const char *rcpt_status(const struct dsn_rcpt *rc)
{
    if (rc->status)
        return rc->status;
    return rc->action == DSN_FAILED ? "5.0.0" : rc->action == DSN_DELAYED ? "4.0.0" : "2.0.0";
}

/*
 * The ORCPT parameter (RFC 3461 §4.2) decoded: "addr-type;xtext" to the
 * type (letters, digits, '-'; "rfc822" when absent or odd) and the address
 * with xtext "+XX" decoded and, for the utf-8 type, RFC 6533 §3 "\x{HEX}"
 * escapes turned into UTF-8. The address is cleaned by the caller.
 */
struct orcpt {
    char type[32];
    struct out addr;
};

static void put_utf8_cp(struct out *o, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    put(o, b, n);
}

/* "\x{HEX}" at p: its length and *cp, or 0 when it is not one. */
static size_t unitext_escape(const char *p, unsigned long *cp)
{
    if (p[0] != '\\' || p[1] != 'x' || p[2] != '{')
        return 0;
    unsigned long v = 0;
    size_t i = 3;
    while (hexval(p[i]) >= 0 && i < 9)
        v = v * 16 + (unsigned long)hexval(p[i++]);
    if (i == 3 || p[i] != '}' || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return i + 1;
}

static void orcpt_decode(const char *s, struct orcpt *oc)
{
    const char *semi = strchr(s, ';');
    const char *a = s;
    strcpy(oc->type, "rfc822");
    if (semi) {
        size_t n = (size_t)(semi - s);
        while (n > 0 && is_wsp(s[0])) {
            s++;
            n--;
        }
        while (n > 0 && is_wsp(s[n - 1]))
            n--;
        bool ok = n > 0 && n < sizeof oc->type;
        for (size_t i = 0; ok && i < n; i++) {
            char c = s[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-';
        }
        if (ok) {
            for (size_t i = 0; i < n; i++)
                oc->type[i] = lower(s[i]);
            oc->type[n] = 0;
        }
        a = semi + 1;
    }
    while (is_wsp(*a))
        a++;
    bool utf8 = strcmp(oc->type, "utf-8") == 0;
    for (const char *p = a; *p && oc->addr.b.len < MAX_FIELD;) {
        unsigned long cp;
        size_t k;
        if (p[0] == '+' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            put_c(&oc->addr, (char)(hexval(p[1]) * 16 + hexval(p[2])));
            p += 3;
        } else if (utf8 && (k = unitext_escape(p, &cp)) > 0) {
            put_utf8_cp(&oc->addr, cp);
            p += k;
        } else {
            put_c(&oc->addr, *p++);
        }
    }
}

/* The ENVID parameter (RFC 3461 §4.4) with xtext decoded, cleaned (malloc'd). */
static char *envid_decode(const char *s, bool utf8)
{
    struct out o = { 0 };
    for (const char *p = s; *p && o.b.len < MAX_FIELD;) {
        if (p[0] == '+' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            put_c(&o, (char)(hexval(p[1]) * 16 + hexval(p[2])));
            p += 3;
        } else {
            put_c(&o, *p++);
        }
    }
    size_t len;
    char *raw = out_take(&o, &len);
    if (!raw)
        return NULL;
    struct out c = { 0 };
    put_clean(&c, raw, len, utf8, MAX_FIELD);
    free(raw);
    return out_take(&c, &len);
}

/* Everything about one recipient, cleaned once and used by both parts. */
struct rinfo {
    char *rcpt;        /* cleaned address */
    char *orcpt;       /* cleaned decoded ORCPT address, or NULL */
    char orcpt_type[32];
    char *mta;         /* cleaned Remote-MTA host, or NULL */
    char *diag;        /* cleaned diagnostic lines joined by "\n", or NULL */
};

/* What the whole report needs to know before writing. */
struct plan {
    const struct dsn_report *r;
    struct rinfo *ri;
    bool global;           /* RFC 6533 types: some address or the original's header is UTF-8 */
    const char *orig;      /* the slice of the original returned, orig_len bytes */
    size_t orig_len;
    bool orig_headers;     /* only its header */
    bool orig_too_large;   /* ... because of DSN_MAX_RETURN */
    char *subject;         /* the original's Subject, decoded and cleaned, or NULL */
    size_t n_action[5];
};

/* ------------------------------------------------- the human-readable part */

/*
 * Appends text (one paragraph, no line breaks) wrapped at TEXT_WIDTH after
 * indent spaces per line; a word longer than a line gets a line of its own
 * (broken at HARD_WIDTH).
 */
static void put_wrapped(struct out *o, const char *text, size_t indent)
{
    size_t col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ' ')
            n++;
        if (n == 0)
            break;
        if (col > 0 && col + 1 + n > TEXT_WIDTH) {
            put_s(o, "\r\n");
            col = 0;
        }
        if (col == 0) {
            for (size_t i = 0; i < indent; i++)
                put_c(o, ' ');
            col = indent;
        } else {
            put_c(o, ' ');
            col++;
        }
        while (col + n > HARD_WIDTH) {
            size_t k = HARD_WIDTH - col;
            put(o, p, k);
            put_s(o, "\r\n");
            for (size_t i = 0; i < indent; i++)
                put_c(o, ' ');
            col = indent;
            p += k;
            n -= k;
        }
        put(o, p, n);
        col += n;
        p += n;
    }
    put_s(o, "\r\n");
}

/* put_wrapped of a formatted paragraph. */
__attribute__((format(printf, 3, 4))) static void para(struct out *o, size_t indent,
                                                       const char *fmt, ...)
{
    char *tmp = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->fail = true;
        return;
    }
    put_wrapped(o, tmp, indent);
    free(tmp);
}

/*
 * RFC 3463 codes in plain words, by subject.detail ("1.1") or subject alone
 * ("7"); the first match wins.
 */
static const struct {
    const char *code;
    const char *words;
} reasons[] = {
    { "1.1", "the address does not exist" },
    { "1.2", "the domain of the address does not exist or does not receive mail" },
    { "1.3", "the address is not valid" },
    { "1.6", "the mailbox has moved and left no forwarding address" },
    { "1.10", "the domain of the address does not accept mail" },
    { "2.1", "the mailbox is disabled" },
    { "2.2", "the recipient's mailbox is full" },
    { "2.3", "the message is larger than the recipient accepts" },
    { "3.4", "the message is larger than the receiving server accepts" },
    { "4.1", "the receiving server did not answer" },
    { "4.2", "the connection to the receiving server was lost" },
    { "4.3", "the recipient's mail server could not be looked up" },
    { "4.4", "no mail server could be found for the recipient's domain" },
    { "4.6", "the message went round in a loop between mail servers" },
    { "4.7", "it could not be delivered in the time allowed" },
    { "5.3", "the message has too many recipients" },
    { "7.1", "the receiving server refused it (often a spam filter or a restricted address)" },
    { "7", "the receiving server refused it for security or policy reasons" },
};

static const char *reason_words(const char *status)
{
    const char *sd = status + 2;  /* after "5." */
    size_t subj = strcspn(sd, ".");
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        const char *c = reasons[i].code;
        if (strcmp(c, sd) == 0 || (strchr(c, '.') == NULL && strlen(c) == subj &&
                                   strncmp(c, sd, subj) == 0))
            return reasons[i].words;
    }
    if (status[0] == '5')
        return "a permanent error";
    if (status[0] == '4')
        return "a temporary problem";
    return NULL;
}

/* One recipient's block: the address, why, what the server said, when. */
static void text_rcpt(struct out *o, const struct dsn_rcpt *rc, const struct rinfo *ri)
{
    put_s(o, "\r\n");
    if (ri->orcpt && strcmp(ri->orcpt, ri->rcpt) != 0)
        para(o, 2, "%s (you wrote to %s)", ri->rcpt, ri->orcpt);
    else
        para(o, 2, "%s", ri->rcpt);
    bool undelivered = rc->action == DSN_FAILED || rc->action == DSN_DELAYED;
    const char *why = undelivered ? reason_words(rcpt_status(rc)) : NULL;
    if (why)
        para(o, 6, "%s %s.", rc->action == DSN_DELAYED ? "Problem so far:" : "Reason:", why);
    if (ri->diag) {
        if (ri->mta)
            para(o, 6, "The receiving server %s said:", ri->mta);
        else
            para(o, 6, "Details:");
        for (const char *l = ri->diag; *l;) {
            size_t n = strcspn(l, "\n");
            char line[DSN_MAX_DIAGNOSTIC + 1];
            memcpy(line, l, n);
            line[n] = 0;
            put_wrapped(o, line, 10);
            l += n + (l[n] == '\n');
        }
    }
    if (rc->action == DSN_DELAYED && rc->will_retry_until > 0) {
        put_s(o, "      We will keep trying until ");
        put_human_date(o, rc->will_retry_until);
        put_s(o, ".\r\n");
    }
}

/* The intro paragraph of the recipients with one action. */
static void text_group_intro(struct out *o, enum dsn_action a, size_t n)
{
    const char *who = n == 1 ? "the recipient below" : "the recipients below";
    put_s(o, "\r\n");
    switch (a) {
    case DSN_FAILED:
        para(o, 0, "Your message could not be delivered to %s. We have stopped trying: "
                   "it will not be sent again.", who);
        break;
    case DSN_DELAYED:
        para(o, 0, "Your message has not been delivered yet to %s. We are still trying, "
                   "and there is nothing you need to do now. If we have to give up, you "
                   "will get another message saying so.", who);
        break;
    case DSN_DELIVERED:
        para(o, 0, "Your message was delivered to %s.", who);
        break;
    case DSN_RELAYED:
        para(o, 0, "Your message was passed on to %s, whose mail system does not confirm "
                   "delivery. You will not hear more from us about it.",
             n == 1 ? "the mail server of the recipient below"
                    : "the mail servers of the recipients below");
        break;
    case DSN_EXPANDED:
        para(o, 0, "Your message was delivered to %s: a mailing list or forwarding "
                   "address, which passed it on to its members.", who);
        break;
    }
}

static void build_text(struct out *o, const struct plan *pl)
{
    const struct dsn_report *r = pl->r;
    char *host = clean_dup(r->reporting_mta, false, MAX_FIELD);
    if (!host) {
        o->fail = true;
        return;
    }
    para(o, 0, "This is an automatic message from the mail server %s.", host);
    free(host);
    if (pl->subject || r->arrival_date > 0) {
        put_s(o, "\r\n");
        para(o, 0, "It is about your message:");
        if (pl->subject) {
            put_s(o, "    Subject: ");
            put_s(o, pl->subject);
            put_s(o, "\r\n");
        }
        if (r->arrival_date > 0) {
            put_s(o, "    Sent:    ");
            put_human_date(o, r->arrival_date);
            put_s(o, "\r\n");
        }
    }
    /* The undelivered first: they are what the reader must act on. */
    for (int a = DSN_FAILED; a <= DSN_EXPANDED; a++) {
        if (pl->n_action[a] == 0)
            continue;
        text_group_intro(o, (enum dsn_action)a, pl->n_action[a]);
        for (size_t i = 0; i < r->n_rcpts; i++)
            if ((int)r->rcpts[i].action == a)
                text_rcpt(o, &r->rcpts[i], &pl->ri[i]);
    }
    if (pl->orig) {
        put_s(o, "\r\n");
        if (!pl->orig_headers)
            para(o, 0, "Your original message is attached.");
        else if (pl->orig_too_large)
            para(o, 0, "The header of your original message is attached; the whole message "
                       "is too large to send back.");
        else
            para(o, 0, "The header of your original message is attached.");
    }
    if (pl->n_action[DSN_FAILED] > 0) {
        put_s(o, "\r\n");
        para(o, 0, "If you need help, forward this message to your mail administrator.");
    }
}

/* ------------------------------------------------ the machine-readable part */

/* RFC 6533 §3: the utf-8 address type for an address that is not ASCII. */
static const char *addr_type(const char *addr)
{
    return str_8bit(addr) ? "utf-8" : "rfc822";
}

static void put_typed_field(struct out *o, const char *name, const char *type,
                            const char *value)
{
    struct out v = { 0 };
    put_s(&v, type);
    put_s(&v, "; ");
    put_s(&v, value);
    size_t len;
    char *s = out_take(&v, &len);
    if (!s) {
        o->fail = true;
        return;
    }
    put_field(o, name, s);
    free(s);
}

static void put_date_field(struct out *o, const char *name, int64_t t)
{
    put_s(o, name);
    put_s(o, ": ");
    put_date(o, t);
    put_s(o, "\r\n");
}

/* A diagnostic that begins with a reply code is an SMTP reply (RFC 3464 §2.3.6). */
static bool is_smtp_reply(const char *d)
{
    return d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
           d[2] <= '9' && (d[3] == 0 || d[3] == ' ' || d[3] == '-' || d[3] == '\n');
}

/* RFC 3464 §2.2 per-message fields, then §2.3 per-recipient groups. */
static void build_report(struct out *o, const struct plan *pl)
{
    const struct dsn_report *r = pl->r;
    char *host = clean_dup(r->reporting_mta, false, MAX_FIELD);
    if (!host) {
        o->fail = true;
        return;
    }
    put_typed_field(o, "Reporting-MTA", "dns", host);  /* §2.2.2 */
    free(host);
    if (r->envelope_id && r->envelope_id[0]) {         /* §2.2.1 */
        char *id = envid_decode(r->envelope_id, pl->global);
        if (!id) {
            o->fail = true;
            return;
        }
        if (id[0])
            put_field(o, "Original-Envelope-Id", id);
        free(id);
    }
    if (r->arrival_date > 0)                           /* §2.2.5 */
        put_date_field(o, "Arrival-Date", r->arrival_date);

    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        const struct rinfo *ri = &pl->ri[i];
        put_s(o, "\r\n");
        if (ri->orcpt)                                  /* §2.3.1 */
            put_typed_field(o, "Original-Recipient", ri->orcpt_type, ri->orcpt);
        put_typed_field(o, "Final-Recipient", addr_type(ri->rcpt), ri->rcpt);  /* §2.3.2 */
        put_field(o, "Action", action_names[rc->action]);                      /* §2.3.3 */
        put_field(o, "Status", rcpt_status(rc));                               /* §2.3.4 */
        if (ri->mta)                                                            /* §2.3.5 */
            put_typed_field(o, "Remote-MTA", "dns", ri->mta);
        if (ri->diag)                                                           /* §2.3.6 */
            put_typed_field(o, "Diagnostic-Code",
                            ri->mta && is_smtp_reply(ri->diag) ? "smtp" : "X-Petrel",
                            ri->diag);
        if (rc->last_attempt > 0)                                               /* §2.3.7 */
            put_date_field(o, "Last-Attempt-Date", rc->last_attempt);
        if (rc->action == DSN_DELAYED && rc->will_retry_until > 0)             /* §2.3.9 */
            put_date_field(o, "Will-Retry-Until", rc->will_retry_until);
    }
}

/* ------------------------------------------------------------ planning */

/* The end of the header of msg: after the line end before its first empty line. */
static size_t header_end(const char *msg, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
            return i;
        const char *lf = memchr(msg + i, '\n', len - i);
        if (!lf)
            return len;
        i = (size_t)(lf - msg) + 1;
    }
    return len;
}

/* The longest run of whole fields of the header h[0, n) that fits in max bytes. */
static size_t header_cut(const char *h, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t cut = 0;
    for (size_t i = 0; i < max;) {
        const char *lf = memchr(h + i, '\n', max - i);
        if (!lf)
            break;
        i = (size_t)(lf - h) + 1;
        if (i < n && !is_wsp(h[i]))
            cut = i;
    }
    return cut;
}

static int plan_original(struct plan *pl)
{
    const struct dsn_report *r = pl->r;
    if (!r->original || r->original_len == 0)
        return 0;
    size_t hlen = header_end(r->original, r->original_len);
    pl->orig = r->original;
    pl->orig_too_large = r->original_len > DSN_MAX_RETURN;
    pl->orig_headers = r->headers_only || pl->orig_too_large;
    pl->orig_len = pl->orig_headers ? header_cut(r->original, hlen, DSN_MAX_RETURN)
                                    : r->original_len;
    if (has_8bit(r->original, hlen))
        pl->global = true;  /* RFC 6532 header: message/global (RFC 6533 §6.3) */

    char *subj = mime_header_get(r->original, 0, hlen, "Subject");
    if (subj) {
        size_t dlen;
        char *dec = mime_header_decode(subj, strlen(subj), &dlen);
        free(subj);
        if (!dec)
            return -1;
        struct out o = { 0 };
        put_clean(&o, dec, dlen, true, MAX_SUBJECT);
        free(dec);
        pl->subject = out_take(&o, &dlen);
        if (!pl->subject)
            return -1;
        if (!pl->subject[0]) {
            free(pl->subject);
            pl->subject = NULL;
        }
    }
    return 0;
}

static bool report_valid(const struct dsn_report *r)
{
    if (!r->reporting_mta || !r->reporting_mta[0] || !r->postmaster || !r->postmaster[0])
        return false;
    /* Never a bounce to the null sender (RFC 5321 §4.5.5, §6.1). */
    if (!r->envelope_from || !r->envelope_from[0] || strcmp(r->envelope_from, "<>") == 0)
        return false;
    if (!r->rcpts || r->n_rcpts == 0 || !time_ok(r->now) || !time_ok(r->arrival_date))
        return false;
    if (!r->original && r->original_len > 0)
        return false;
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        if (!rc->rcpt || !rc->rcpt[0] || (unsigned)rc->action > DSN_EXPANDED)
            return false;
        if (!status_ok(rcpt_status(rc)) || !time_ok(rc->last_attempt) ||
            !time_ok(rc->will_retry_until))
            return false;
    }
    return true;
}

static void plan_free(struct plan *pl)
{
    if (pl->ri) {
        for (size_t i = 0; i < pl->r->n_rcpts; i++) {
            free(pl->ri[i].rcpt);
            free(pl->ri[i].orcpt);
            free(pl->ri[i].mta);
            free(pl->ri[i].diag);
        }
        free(pl->ri);
    }
    free(pl->subject);
}

/* Cleans every recipient's strings; decides global. Returns 0 or -1 (ENOMEM). */
static int plan_rcpts(struct plan *pl)
{
    const struct dsn_report *r = pl->r;
    pl->ri = calloc(r->n_rcpts, sizeof *pl->ri);
    if (!pl->ri)
        return -1;
    if (str_8bit(r->envelope_from))
        pl->global = true;
    /* First the addresses, which decide global; then the texts, which follow it. */
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        struct rinfo *ri = &pl->ri[i];
        pl->n_action[rc->action]++;
        if (!(ri->rcpt = clean_dup(rc->rcpt, true, MAX_FIELD)))
            return -1;
        if (str_8bit(ri->rcpt))
            pl->global = true;
        if (rc->orcpt && rc->orcpt[0]) {
            struct orcpt oc = { 0 };
            orcpt_decode(rc->orcpt, &oc);
            size_t len;
            char *raw = out_take(&oc.addr, &len);
            if (!raw)
                return -1;
            struct out c = { 0 };
            put_clean(&c, raw, len, true, MAX_FIELD);
            free(raw);
            if (!(ri->orcpt = out_take(&c, &len)))
                return -1;
            if (!ri->orcpt[0]) {
                free(ri->orcpt);
                ri->orcpt = NULL;
                continue;
            }
            bool u = str_8bit(ri->orcpt);
            strcpy(ri->orcpt_type, u ? "utf-8" : oc.type);
            if (u)
                pl->global = true;
        }
    }
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        struct rinfo *ri = &pl->ri[i];
        if (rc->remote_mta && rc->remote_mta[0]) {
            if (!(ri->mta = clean_dup(rc->remote_mta, false, MAX_FIELD)))
                return -1;
        }
        if (rc->diagnostic) {
            /* message/delivery-status is ASCII (RFC 3464 §2.1.1); global allows UTF-8. */
            if (!(ri->diag = clean_lines(rc->diagnostic, pl->global)))
                return -1;
            if (!ri->diag[0]) {
                free(ri->diag);
                ri->diag = NULL;
            }
        }
        if (ri->mta && !ri->mta[0]) {
            free(ri->mta);
            ri->mta = NULL;
        }
    }
    return 0;
}

/* --------------------------------------------------------- assembling */

/* Writes the original's slice with every line ended by CRLF (bare CR, bare LF fixed). */
static void put_crlf(struct out *o, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        put(o, s + run, i - run);
        put_s(o, "\r\n");
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        run = i + 1;
    }
    put(o, s + run, n - run);
    if (run < n)
        put_s(o, "\r\n");
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static const char *subject_line(const struct plan *pl)
{
    if (pl->n_action[DSN_FAILED] > 0)
        return "Undelivered Mail Returned to Sender";
    if (pl->n_action[DSN_DELAYED] > 0)
        return "Delayed Mail (still being retried)";
    return "Delivery Status Notification";
}

/* Message-ID's id-right: the host's dot-atom characters, others made '-'. */
static void put_id_host(struct out *o, const char *host)
{
    static const char atext[] = "!#$%&'*+-/=?^_`{|}~.";
    size_t n = 0;
    for (const char *p = host; *p && n < 255; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(atext, c) != NULL;
        put_c(o, ok ? c : '-');
    }
}

/* RFC 5322 header and RFC 6522 multipart/report around the three parts. */
static void assemble(struct out *o, const struct plan *pl, const struct out *text,
                     const struct out *report, const char *boundary, uint64_t hash)
{
    const struct dsn_report *r = pl->r;
    bool text8 = has_8bit(text->b.data, text->b.len);
    bool report8 = has_8bit(report->b.data, report->b.len);
    bool orig8 = pl->orig && has_8bit(pl->orig, pl->orig_len);

    struct out from = { 0 };
    put_s(&from, "\"Mail Delivery System\" <");
    put_clean(&from, r->postmaster, strlen(r->postmaster), true, MAX_FIELD);
    put_s(&from, ">");
    put_c(&from, 0);
    struct out to = { 0 };
    put_c(&to, '<');
    put_clean(&to, r->envelope_from, strlen(r->envelope_from), true, MAX_FIELD);
    put_c(&to, '>');
    put_c(&to, 0);
    if (from.fail || to.fail) {
        o->fail = true;
    } else {
        put_field(o, "From", from.b.data);
        put_field(o, "To", to.b.data);
    }
    buf_free(&from.b);
    buf_free(&to.b);
    put_field(o, "Subject", subject_line(pl));
    put_date_field(o, "Date", r->now);
    put_f(o, "Message-ID: <dsn.%" PRIx64 ".%016" PRIx64 "@", (uint64_t)r->now, hash);
    char *host = clean_dup(r->reporting_mta, false, MAX_FIELD);
    if (!host) {
        o->fail = true;
        return;
    }
    put_id_host(o, host);
    free(host);
    put_s(o, ">\r\n");
    put_s(o, "Auto-Submitted: auto-replied\r\n");  /* RFC 3834 §5 */
    put_s(o, "MIME-Version: 1.0\r\n");
    put_f(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "\tboundary=\"%s\"\r\n", boundary);
    if (text8 || report8 || orig8)
        put_s(o, "Content-Transfer-Encoding: 8bit\r\n");
    put_s(o, "\r\nThis is a MIME-encapsulated message.\r\n");

    /* Part 1 (RFC 6522 §3: the human-readable explanation). */
    put_f(o, "\r\n--%s\r\n", boundary);
    put_s(o, "Content-Description: Notification\r\n");
    put_s(o, "Content-Type: text/plain; charset=utf-8\r\n");
    put_s(o, text8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
    put_s(o, "\r\n");
    put(o, text->b.data, text->b.len);

    /* Part 2 (RFC 3464 §2; RFC 6533 §6.1). */
    put_f(o, "\r\n--%s\r\n", boundary);
    put_s(o, "Content-Description: Delivery report\r\n");
    put_s(o, pl->global ? "Content-Type: message/global-delivery-status\r\n"
                        : "Content-Type: message/delivery-status\r\n");
    put_s(o, report8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
    put_s(o, "\r\n");
    put(o, report->b.data, report->b.len);

    /* Part 3 (RFC 6522 §3; RFC 6533 §6.3: message/global, message/global-headers). */
    if (pl->orig) {
        bool undelivered = pl->n_action[DSN_FAILED] + pl->n_action[DSN_DELAYED] > 0;
        put_f(o, "\r\n--%s\r\n", boundary);
        put_f(o, "Content-Description: %s%s\r\n", undelivered ? "Undelivered " : "",
              pl->orig_headers ? "Message Headers" : "Message");
        if (pl->global)
            put_s(o, pl->orig_headers ? "Content-Type: message/global-headers\r\n"
                                      : "Content-Type: message/global\r\n");
        else
            put_s(o, pl->orig_headers ? "Content-Type: text/rfc822-headers\r\n"
                                      : "Content-Type: message/rfc822\r\n");
        put_s(o, orig8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
        put_s(o, "\r\n");
        put_crlf(o, pl->orig, pl->orig_len);
    }
    put_f(o, "\r\n--%s--\r\n", boundary);
}

/* The hash that names this report: its inputs and the parts as written. */
static uint64_t report_hash(const struct plan *pl, const struct out *text,
                            const struct out *report)
{
    const struct dsn_report *r = pl->r;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = fnv_s(h, r->reporting_mta);
    h = fnv_s(h, r->envelope_from);
    h = fnv_i(h, r->now);
    h = fnv(h, text->b.data, text->b.len);
    h = fnv(h, report->b.data, report->b.len);
    if (pl->orig)
        h = fnv(h, pl->orig, pl->orig_len);
    return h;
}

/*
 * RFC 2046 §5.1.1: the boundary must occur in none of the parts. It comes
 * from the hash; on a clash the hash is stirred and tried again. Returns
 * false when every try clashed (only a crafted original could do that).
 */
static bool pick_boundary(const struct plan *pl, const struct out *text,
                          const struct out *report, uint64_t *hash, char *b, size_t blen)
{
    for (unsigned t = 0; t < BOUNDARY_TRIES; t++) {
        snprintf(b, blen, "=_petrel_dsn_%016" PRIx64, *hash);
        if (!contains(text->b.data, text->b.len, b) &&
            !contains(report->b.data, report->b.len, b) &&
            !(pl->orig && contains(pl->orig, pl->orig_len, b)))
            return true;
        *hash = fnv_i(*hash, t);
    }
    return false;
}

/* dsn_build once the report is valid: 0, or -1 with the errno to give. */
static int build(struct plan *pl, struct out *text, struct out *report, struct out *msg,
                 int *err)
{
    *err = ENOMEM;
    if (plan_original(pl) != 0 || plan_rcpts(pl) != 0)
        return -1;
    build_text(text, pl);
    build_report(report, pl);
    if (text->fail || report->fail)
        return -1;
    uint64_t hash = report_hash(pl, text, report);
    char boundary[64];
    if (!pick_boundary(pl, text, report, &hash, boundary, sizeof boundary)) {
        *err = EINVAL;
        return -1;
    }
    assemble(msg, pl, text, report, boundary, hash);
    return msg->fail ? -1 : 0;
}

int dsn_build(const struct dsn_report *r, char **out, size_t *out_len)
{
    if (!r || !out || !out_len || !report_valid(r)) {
        errno = EINVAL;
        return -1;
    }
    struct plan pl = { .r = r };
    struct out text = { 0 }, report = { 0 }, msg = { 0 };
    int err;
    int rc = build(&pl, &text, &report, &msg, &err);
    if (rc == 0) {
        *out = out_take(&msg, out_len);
        if (!*out)
            rc = -1;
    }
    plan_free(&pl);
    buf_free(&text.b);
    buf_free(&report.b);
    buf_free(&msg.b);
    if (rc != 0)
        errno = err;
    return rc;
}

/* ----------------------------------------------------------- hop count */

unsigned smtp_count_received(const char *msg, size_t len)
{
    unsigned n = 0;
    for (size_t i = 0; i < len;) {
        /* The empty line ends the header (RFC 5322 §2.1). */
        if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
            break;
        const char *lf = memchr(msg + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - msg) : len;
        /* A line that begins with WSP continues the field before it (folding). */
        if (starts_ci(msg + i, end - i, "received")) {
            size_t k = i + 8;
            while (k < end && is_wsp(msg[k]))  /* obs-optional: WSP before the colon */
                k++;
            if (k < end && msg[k] == ':' && n < UINT_MAX)
                n++;
        }
        i = end + 1;
    }
    return n;
}
