/*
 * The DATA byte decoder: a pure state machine over the client's bytes, so
 * it can be unit-tested and fuzzed apart from the session (RFC 5321 §4.5.2,
 * §4.1.1.4).
 */
#include "smtp/smtp.h"

size_t smtp_data_decode(struct smtp_data_decoder *d, const char *p, size_t n,
                        smtp_data_sink sink, void *arg, bool *done)
{
    size_t i = 0;
    *done = false;
    while (i < n) {
        char ch = p[i];
        switch (d->state) {
        case SMTP_DS_BOL:
            if (ch == '.') {
                d->state = SMTP_DS_DOT;
                i++;
            } else {
                d->state = SMTP_DS_TEXT;
            }
            break;
        case SMTP_DS_DOT:
            if (ch == '\r') {
                d->state = SMTP_DS_DOT_CR;
                i++;
            } else {
                d->state = SMTP_DS_TEXT; /* the leading dot is dropped */
            }
            break;
        case SMTP_DS_DOT_CR:
            if (ch == '\n') {
                *done = true;
                return i + 1;
            }
            /* ".\r" then something else: the dot was stuffing, the CR is bare. */
            d->bare_eol = true;
            sink(arg, "\r", 1);
            d->state = SMTP_DS_TEXT;
            break;
        case SMTP_DS_CR:
            if (ch == '\n') {
                sink(arg, "\r\n", 2);
                d->state = SMTP_DS_BOL;
                i++;
            } else {
                d->bare_eol = true;
                sink(arg, "\r", 1);
                d->state = SMTP_DS_TEXT;
            }
            break;
        case SMTP_DS_TEXT: {
            size_t j = i;
            while (j < n && p[j] != '\r' && p[j] != '\n')
                j++;
            if (j > i)
                sink(arg, p + i, j - i);
            i = j;
            if (i == n)
                break;
            if (p[i] == '\r') {
                d->state = SMTP_DS_CR;
            } else {
                /* A bare LF stays inside the line: it never starts one. */
                d->bare_eol = true;
                sink(arg, "\n", 1);
            }
            i++;
            break;
        }
        }
    }
    return i;
}
