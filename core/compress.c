/*
 * DEFLATE on a connection (RFC 4978 COMPRESS=DEFLATE; any protocol may use
 * it): raw deflate (RFC 1951) both ways, between the protocol and TLS.
 *
 * Output: every flush of the connection's output is one deflate run ended
 * with Z_SYNC_FLUSH, so the peer can decode each response as it arrives.
 * Input: what the peer sent is inflated as far as it goes, never waiting
 * for bytes that have not come (the bug RFC 4978 §4 warns about). The
 * compressed bytes wait in a stash while the handler has not consumed what
 * was inflated before, so a small input that inflates to a lot is taken
 * at the pace of the handler, within the connection's input limit.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/core-int.h"

/* Our deflate window and memory: 2^12 bytes and memLevel 5 keep a
 * compressing connection near 40 KiB (zlib: 2^(w+2) + 2^(m+9) for deflate,
 * 2^15 for the inflate window the peer may use). */
#define Z_OUT_WINDOW 12
#define Z_OUT_MEMLEVEL 5

struct conn_z {
    z_stream in, out;
    struct buf stash;  /* compressed input not inflated yet */
};

static char zbuf[CORE_READ_SIZE]; /* inflated input, handed to the handler at once */

void conn_z_free(struct conn *c)
{
    struct conn_z *z = c->z;
    if (!z)
        return;
    inflateEnd(&z->in);
    deflateEnd(&z->out);
    buf_free(&z->stash);
    free(z);
    c->z = NULL;
}

bool conn_z_stash_full(const struct conn *c)
{
    return c->z && c->z->stash.len >= CORE_READ_SIZE;
}

/* Inflates what the stash holds while the handler has room for it. */
void conn_z_pump(struct conn *c)
{
    struct conn_z *z = c->z;
    size_t used = 0;
    while (z && !c->closing && used < z->stash.len) {
        size_t room = conn_input_room(c);
        if (room == 0)
            break;
        z->in.next_in = (Bytef *)z->stash.data + used;
        z->in.avail_in = (uInt)(z->stash.len - used);
        z->in.next_out = (Bytef *)zbuf;
        z->in.avail_out = (uInt)(room < sizeof zbuf ? room : sizeof zbuf);
        uInt out_before = z->in.avail_out;
        int rc = inflate(&z->in, Z_SYNC_FLUSH);
        used = (size_t)((char *)z->in.next_in - z->stash.data);
        size_t got = out_before - z->in.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            log_event(PLOG_INFO, c->id, "event=inflate-error reason=%s",
                      z->in.msg ? z->in.msg : "stream end");
            conn_close(c);
            return;
        }
        if (got)
            conn_feed(c, zbuf, got);
        else if (rc == Z_BUF_ERROR)
            break; /* needs bytes the peer has not sent yet */
        z = c->z;
    }
    if (z)
        buf_consume(&z->stash, used);
}

void conn_z_input(struct conn *c, const char *data, size_t n)
{
    if (buf_append(&c->z->stash, data, n, SIZE_MAX) != 0) {
        conn_close(c);
        return;
    }
    conn_z_pump(c);
}

int conn_z_output(struct conn *c)
{
    struct conn_z *z = c->z;
    size_t cap = deflateBound(&z->out, (uLong)c->out.len) + 64, len = 0;
    char *packed = malloc(cap);
    if (!packed)
        return -1;
    z->out.next_in = (Bytef *)c->out.data;
    z->out.avail_in = (uInt)c->out.len;
    for (;;) {
        z->out.next_out = (Bytef *)packed + len;
        z->out.avail_out = (uInt)(cap - len);
        if (deflate(&z->out, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
            free(packed);
            return -1;
        }
        len = cap - z->out.avail_out;
        if (z->out.avail_out != 0)
            break;
        char *p = realloc(packed, cap * 2); /* full: deflate may hold more */
        if (!p) {
            free(packed);
            return -1;
        }
        packed = p;
        cap *= 2;
    }
    buf_free(&c->out);
    c->out = (struct buf){ packed, len, cap };
    return 0;
}

int conn_compress(struct conn *c)
{
    if (c->z || c->closing || c->dead)
        return -1;
    struct conn_z *z = calloc(1, sizeof *z);
    if (!z)
        return -1;
    if (inflateInit2(&z->in, -MAX_WBITS) != Z_OK) {
        free(z);
        return -1;
    }
    if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -Z_OUT_WINDOW, Z_OUT_MEMLEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        inflateEnd(&z->in);
        free(z);
        return -1;
    }
    /* The reply that accepted COMPRESS goes out as it is. */
    conn_flush(c);
    c->z = z;
    /* The peer compresses from the byte after its command: whatever it
     * pipelined behind it is already deflated. */
    size_t left = conn_take_pending(c, &z->stash);
    if (left)
        server_schedule_resume(c->srv, c);
    log_event(PLOG_DEBUG, c->id, "event=compress");
    return 0;
}
