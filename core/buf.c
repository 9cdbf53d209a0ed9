/*
 * buf.c — growable byte buffers with a hard cap.
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 256

/* Ensures room for need bytes in total without ever exceeding limit. */
static int buf_reserve(struct buf *b, size_t need, size_t limit)
{
    if (need > limit)
        return -1;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : BUF_MIN_CAP;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (ncap > limit)
        ncap = limit;
    char *p = realloc(b->data, ncap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len, size_t limit)
{
    if (len == 0)
        return 0;
    if (b->len > limit || len > limit - b->len)
        return -1;
    if (buf_reserve(b, b->len + len, limit) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int buf_printf(struct buf *b, size_t limit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n, limit);

    if (b->len > limit || (size_t)n > limit - b->len)
        return -1;
    /* Format into a scratch block so the buffer itself never grows past limit. */
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return -1;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(b, tmp, (size_t)n, limit);
    free(tmp);
    return rc;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
