/*
 * Response pieces: strings (quoted or literal), mailbox names, flag lists,
 * dates and the CAPABILITY list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap-int.h"

void imap_write(struct imap_session *s, const void *data, size_t len)
{
    conn_write(s->conn, data, len);
}

void imap_printf(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_vprintf(s->conn, fmt, ap);
    va_end(ap);
}

/* RFC 9051 §4.3: a quoted string holds no CR, LF or NUL; 8-bit only as UTF-8
 * once UTF8=ACCEPT is enabled. Long strings go as literals too. */
static bool quotable(const char *str, size_t len, bool utf8)
{
    if (len > 1024)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)str[i];
        if (ch == 0 || ch == '\r' || ch == '\n' || (ch >= 0x80 && !utf8))
            return false;
    }
    return !utf8 || mime_utf8_valid(str, len);
}

void imap_buf_string(struct buf *b, const char *str, size_t len, bool utf8)
{
    if (!quotable(str, len, utf8)) {
        buf_printf(b, SIZE_MAX, "{%zu}\r\n", len);
        buf_append(b, str, len, SIZE_MAX);
        return;
    }
    buf_append(b, "\"", 1, SIZE_MAX);
    for (size_t i = 0; i < len; i++) {
        if (str[i] == '"' || str[i] == '\\')
            buf_append(b, "\\", 1, SIZE_MAX);
        buf_append(b, &str[i], 1, SIZE_MAX);
    }
    buf_append(b, "\"", 1, SIZE_MAX);
}

void imap_write_string(struct imap_session *s, const char *str, size_t len)
{
    struct buf b = { 0 };
    imap_buf_string(&b, str, len, s->utf8);
    imap_write(s, b.data, b.len);
    buf_free(&b);
}

void imap_write_mailbox(struct imap_session *s, const char *name)
{
    size_t len = strlen(name);
    if (s->utf8) {
        imap_write_string(s, name, len);
        return;
    }
    char enc[IMAP_UTF7_ENCODED_MAX(STORE_MAILBOX_NAME_MAX)];
    ssize_t n = imap_utf7_encode(name, len, enc, sizeof enc);
    if (n < 0) /* the store holds valid UTF-8 names; keep the reply well formed */
        imap_write_string(s, "INBOX", 5);
    else
        imap_write_string(s, enc, (size_t)n);
}

bool imap_arg_mailbox(struct imap_session *s, const struct imap_arg *a, char *out, size_t outsize)
{
    const char *str;
    size_t len;
    if (!a || !imap_arg_astring(a, &str, &len)) {
        imap_bad(s, "Mailbox name expected");
        return false;
    }
    if (imap_mailbox_is_inbox(str, len)) {
        snprintf(out, outsize, "INBOX");
        return true;
    }
    if (s->utf8) {
        /* RFC 6855 §3: UTF-8 names once enabled. */
        if (len >= outsize || !mime_utf8_valid(str, len) || memchr(str, 0, len)) {
            imap_bad(s, "Invalid mailbox name");
            return false;
        }
        memcpy(out, str, len);
        out[len] = 0;
        return true;
    }
    if (imap_utf7_decode(str, len, out, outsize) < 0) {
        imap_bad(s, "Invalid mailbox name (modified UTF-7 expected, RFC 3501 section 5.1.3)");
        return false;
    }
    return true;
}

void imap_buf_flags(struct buf *b, const char *flags)
{
    buf_printf(b, SIZE_MAX, "(%s)", flags ? flags : "");
}

void imap_format_date(int64_t t, char out[32])
{
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 32, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Before login: what a client needs to log in (RFC 9051 §7.2.2 lets the
 * list change after STARTTLS and login). LOGINDISABLED when plain-text
 * logins are refused on this channel (RFC 3501 §6.2.3).
 */
void imap_buf_capability(struct imap_session *s, struct buf *b)
{
    buf_printf(b, SIZE_MAX, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE");
    if (s->state == IMAP_NOTAUTH) {
        if (!conn_is_tls(s->conn) && conn_kind(s->conn) == LISTEN_IMAP)
            buf_printf(b, SIZE_MAX, " STARTTLS");
        if (!s->auth)
            s->auth = auth_session_new("imap", s->conn);
        const char *mechs = s->auth ? auth_mechanisms(s->auth) : "";
        bool plain = false;
        for (const char *p = mechs; *p;) {
            size_t n = strcspn(p, " ");
            buf_printf(b, SIZE_MAX, " AUTH=%.*s", (int)n, p);
            if (n == 5 && strncmp(p, "PLAIN", 5) == 0)
                plain = true;
            p += n;
            while (*p == ' ')
                p++;
        }
        if (!plain)
            buf_printf(b, SIZE_MAX, " LOGINDISABLED");
        return;
    }
    buf_printf(b, SIZE_MAX,
               " NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE CHILDREN ESEARCH STATUS=SIZE"
               " CONDSTORE QRESYNC COMPRESS=DEFLATE LIST-EXTENDED LIST-STATUS SEARCHRES BINARY"
               " QUOTA QUOTA=RES-STORAGE APPENDLIMIT=%llu",
               (unsigned long long)s->cfg->max_message_size);
}

/* The store's flag string for parsed flags ("\Seen \Draft kw1 kw2"). */
int imap_flags_string(const struct imap_flags *f, struct buf *out)
{
    static const struct {
        unsigned bit;
        const char *name;
    } sys[] = {
        { IMAP_FLAG_ANSWERED, "\\Answered" }, { IMAP_FLAG_FLAGGED, "\\Flagged" },
        { IMAP_FLAG_DELETED, "\\Deleted" },   { IMAP_FLAG_SEEN, "\\Seen" },
        { IMAP_FLAG_DRAFT, "\\Draft" },
    };
    int r = 0;
    for (size_t i = 0; i < sizeof sys / sizeof *sys && r == 0; i++)
        if (f->system & sys[i].bit)
            r = buf_printf(out, STORE_FLAGS_MAX, "%s%s", out->len ? " " : "", sys[i].name);
    for (size_t i = 0; i < f->nkeywords && r == 0; i++)
        r = buf_printf(out, STORE_FLAGS_MAX, "%s%s", out->len ? " " : "", f->keywords[i]);
    if (r == 0)
        r = buf_append(out, "", 1, STORE_FLAGS_MAX + 1); /* NUL, not counted */
    if (r == 0)
        out->len--;
    return r;
}
