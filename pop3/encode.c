/*
 * The RETR / TOP encoder: a pure state machine from stored message bytes
 * to the lines of a multi-line response (RFC 1939 §3 byte-stuffing, §7 TOP),
 * so it can be unit-tested and fuzzed apart from the session.
 */
#include <string.h>

#include "pop3/pop3.h"

void pop3_encoder_init(struct pop3_encoder *e, bool top, uint32_t top_lines)
{
    memset(e, 0, sizeof *e);
    e->bol = true;
    e->line_empty = true;
    e->top = top;
    e->lines_left = top_lines;
}

/* A line of the message ended (its LF has been written). */
static void line_end(struct pop3_encoder *e)
{
    bool empty = e->line_empty;
    e->bol = true;
    e->line_empty = true;
    e->prev_cr = false;
    if (!e->in_body) {
        /* RFC 5322 §2.1: the first empty line ends the header. */
        if (empty) {
            e->in_body = true;
            if (e->top && e->lines_left == 0)
                e->done = true;
        }
        return;
    }
    if (e->top && --e->lines_left == 0)
        e->done = true;
}

size_t pop3_encode(struct pop3_encoder *e, const char *in, size_t n, char *out, size_t cap,
                   size_t *out_len)
{
    size_t i = 0, o = 0;
    while (i < n && !e->done && cap - o >= POP3_ENCODE_MAX_GROWTH) {
        if (!e->bol) {
            /* Inside a line: everything up to the next LF goes out as it
             * is (a CR in it is data, the line is not empty). */
            size_t avail = n - i < cap - o ? n - i : cap - o;
            const char *nl = memchr(in + i, '\n', avail);
            size_t span = nl ? (size_t)(nl - (in + i)) : avail;
            if (span) {
                memcpy(out + o, in + i, span);
                o += span;
                i += span;
                e->prev_cr = in[i - 1] == '\r';
                e->line_empty = false;
                continue;
            }
        }
        char ch = in[i++];
        if (ch == '\n') {
            if (!e->prev_cr)
                out[o++] = '\r'; /* a bare LF goes out as CRLF */
            out[o++] = '\n';
            line_end(e);
            continue;
        }
        if (e->bol && ch == '.')
            out[o++] = '.'; /* RFC 1939 §3: byte-stuff the termination octet */
        out[o++] = ch;
        /* A line is empty when nothing but the CR of its CRLF is on it. */
        if (!(e->bol && ch == '\r'))
            e->line_empty = false;
        e->bol = false;
        e->prev_cr = ch == '\r';
    }
    if (e->done)
        i = n; /* TOP: the rest of the message is not sent */
    *out_len = o;
    return i;
}

size_t pop3_encode_finish(const struct pop3_encoder *e, char *out)
{
    size_t k = 0;
    if (!e->bol) {
        /* The message did not end with a line end: the terminator must
         * start a line of its own. */
        if (!e->prev_cr)
            out[k++] = '\r';
        out[k++] = '\n';
    }
    out[k++] = '.';
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}
