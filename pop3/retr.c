/*
 * RETR and TOP: the message is read in pieces off the loop (store_stream:
 * SQLite incremental blob reads and inflate on the thread pool, one piece
 * of STORE_STREAM_PIECE bytes per job), then written out in slices of
 * POP3_STREAM_CHUNK bytes, byte-stuffed as it goes (encode.c), one slice
 * per stream per loop turn, so a 25 MB RETR never holds the loop for more
 * than one slice and other connections are served in between.
 *
 * Back-pressure: when core reports the peer is not keeping up
 * (conn_write_blocked: more than max_output_buffer queued), the stream
 * leaves the pump and waits for the connection's drain callback. What is
 * queued for one RETR stays under max_output_buffer plus one slice.
 *
 * Memory: one piece of the message (plus zlib's window) and that bounded
 * output, whatever the message size (docs/pop3.md).
 *
 * Ownership: while a piece is being read, the stream holds one of the
 * session's pending references (pop3_release); a stream cancelled then is
 * detached from its session and freed when the piece arrives.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-int.h"

struct pop3_stream {
    struct pop3_session *s;
    struct store_stream *src;
    const char *data;       /* the current piece, owned by src */
    size_t len, off;
    uint64_t consumed;      /* message bytes encoded so far */
    struct pop3_encoder enc;
    size_t index;           /* in the maildrop */
    bool retr;              /* RETR (marks the message retrieved), not TOP */
    bool started;           /* the +OK line went out */
    bool reading;           /* a piece is on its way from the store */
    bool cancelled;         /* detached from its session while reading */
    bool parked;            /* waiting for the peer to read (drain) */
    uint64_t mark;          /* consumed at the last idle timeout */
    struct pop3_stream *next, *prev;
};

/* Every stream being written, pumped by one idle handle on the loop. */
static uv_idle_t pump;
static bool pump_ready;
static struct pop3_stream *streams;

static void on_pump(uv_idle_t *h);
static void on_piece(void *arg, int result, const char *data, size_t len);
/* Loop thread only: one slice of encoded output at a time. */
static char scratch[POP3_STREAM_CHUNK * POP3_ENCODE_MAX_GROWTH + POP3_ENCODE_FINISH_MAX];

static bool linked(const struct pop3_stream *st)
{
    return st->prev || streams == st;
}

static void unlink_stream(struct pop3_stream *st)
{
    if (!linked(st))
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->next = st->prev = NULL;
    if (!streams && pump_ready)
        uv_idle_stop(&pump);
}

/* Into the pump: written from the next loop turn on. */
static void link_stream(struct pop3_stream *st, uv_loop_t *loop)
{
    st->parked = false;
    /* One handle per loop; a new loop (tests) gets it afresh. */
    if (!pump_ready || pump.loop != loop || uv_is_closing((uv_handle_t *)&pump)) {
        uv_idle_init(loop, &pump);
        pump_ready = true;
    }
    st->next = streams;
    if (streams)
        streams->prev = st;
    streams = st;
    uv_idle_start(&pump, on_pump);
}

/* Into the pump, or parked when the peer has not read what is queued. */
static void resume_stream(struct pop3_stream *st)
{
    struct conn *c = st->s->conn;
    if (conn_write_blocked(c))
        st->parked = true;
    else
        link_stream(st, server_loop(conn_server(c)));
}

static void free_stream(struct pop3_stream **stp)
{
    struct pop3_stream *st = *stp;
    unlink_stream(st);
    if (st->s && st->s->stream == st)
        st->s->stream = NULL;
    store_stream_close(&st->src);
    free(st);
    *stp = NULL;
}

/* Asks the store for the next piece; false when it cannot. */
static int read_next(struct pop3_stream *st)
{
    unlink_stream(st);
    st->reading = true;
    st->s->pending++;
    int r = store_stream_read(st->src, on_piece, st);
    if (r != STORE_OK) {
        st->reading = false;
        st->s->pending--;
    }
    return r;
}

enum step { STEP_MORE, STEP_READ, STEP_END };

/* Writes the next slice of the current piece. */
static enum step stream_step(struct pop3_stream *st)
{
    size_t take = st->len - st->off, out_len = 0;
    if (take > POP3_STREAM_CHUNK)
        take = POP3_STREAM_CHUNK;
    size_t used = pop3_encode(&st->enc, st->data + st->off, take, scratch,
                              sizeof scratch - POP3_ENCODE_FINISH_MAX, &out_len);
    st->off += used;
    st->consumed += used;
    bool piece_done = st->off == st->len;
    bool end = st->enc.done || (piece_done && store_stream_ended(st->src));
    if (end)
        out_len += pop3_encode_finish(&st->enc, scratch + out_len);
    conn_write(st->s->conn, scratch, out_len);
    conn_flush(st->s->conn);
    return end ? STEP_END : piece_done ? STEP_READ : STEP_MORE;
}

static void finish_stream(struct pop3_stream *st)
{
    struct pop3_session *s = st->s;
    if (st->retr)
        s->drop.msgs[st->index].retrieved = true;
    free_stream(&st);
    pop3_step_done(s);
}

/* Mid-response failure: no -ERR line can follow a +OK, so the connection
 * goes (nothing is lost: no UPDATE without QUIT). */
static void abort_stream(struct pop3_stream *st)
{
    struct pop3_session *s = st->s;
    free_stream(&st);
    s->busy = false;
    pop3_close(s);
}

/* One step of a stream in the pump, or right after a piece arrived. */
static void advance(struct pop3_stream *st)
{
    switch (stream_step(st)) {
    case STEP_END:
        finish_stream(st);
        break;
    case STEP_READ:
        if (read_next(st) != STORE_OK)
            abort_stream(st);
        break;
    case STEP_MORE:
        if (!linked(st) || conn_write_blocked(st->s->conn)) {
            unlink_stream(st);
            resume_stream(st);
        }
        break;
    }
}

static void on_pump(uv_idle_t *h)
{
    (void)h;
    struct pop3_stream *next;
    for (struct pop3_stream *st = streams; st; st = next) {
        next = st->next;
        advance(st);
    }
}

void pop3_stream_cancel(struct pop3_session *s)
{
    struct pop3_stream *st = s->stream;
    if (!st)
        return;
    if (st->reading) {
        unlink_stream(st);
        st->cancelled = true;
        s->stream = NULL;   /* on_piece frees it */
        return;
    }
    free_stream(&s->stream);
}

bool pop3_stream_stalled(struct pop3_session *s)
{
    struct pop3_stream *st = s->stream;
    if (!st || st->reading)
        return false;
    bool stalled = st->consumed == st->mark;
    st->mark = st->consumed;
    return stalled;
}

void pop3_stream_drain(struct pop3_session *s)
{
    if (s->stream && s->stream->parked)
        link_stream(s->stream, server_loop(conn_server(s->conn)));
}

/* The response is still to come: an -ERR line says why. */
static void fetch_failed(struct pop3_session *s, uint32_t number, int result)
{
    struct pop3_msg *m = &s->drop.msgs[number - 1];
    if (result == STORE_NOTFOUND) {
        m->gone = true;
        pop3_reply(s, "-ERR Message %" PRIu32 " was removed by another session", number);
        return;
    }
    log_event(PLOG_ERROR, conn_id(s->conn), "event=pop3-fetch-failed user=%s uid=%" PRIu32
              " result=%s", s->login, m->uid, store_strerror(result));
    pop3_reply(s, "-ERR [SYS/TEMP] Cannot read message %" PRIu32 ", try again later", number);
}

/* The first piece failed. */
static void fail_start(struct pop3_stream *st, int result)
{
    struct pop3_session *s = st->s;
    uint32_t number = (uint32_t)(st->index + 1);
    free_stream(&st);
    fetch_failed(s, number, result);
    pop3_step_done(s);
}

static void on_piece(void *arg, int result, const char *data, size_t len)
{
    struct pop3_stream *st = arg;
    struct pop3_session *s = st->s;
    st->reading = false;
    if (!pop3_release(&s) || st->cancelled) {
        st->s = NULL;
        free_stream(&st);
        return;
    }
    if (!st->started && s->stopping) {
        free_stream(&st); /* the server is stopping: no long transfer now */
        pop3_step_done(s);
        return;
    }
    if (result != STORE_OK) {
        if (!st->started) {
            fail_start(st, result);
            return;
        }
        log_event(PLOG_ERROR, conn_id(s->conn), "event=pop3-stream-failed user=%s result=%s",
                  s->login, store_strerror(result));
        abort_stream(st);
        return;
    }
    st->data = data;
    st->len = len;
    st->off = 0;
    if (!st->started) {
        st->started = true;
        if (st->retr)
            pop3_reply(s, "+OK %" PRIu64 " octets", store_stream_size(st->src));
        else
            pop3_reply(s, "+OK Top of message follows");
    }
    advance(st);
}

static void fetch(struct pop3_session *s, uint32_t number, bool top, uint32_t lines)
{
    struct pop3_msg *m = &s->drop.msgs[number - 1];
    if (m->gone) {
        pop3_reply(s, "-ERR Message %" PRIu32 " was removed by another session", number);
        return;
    }
    struct pop3_stream *st = calloc(1, sizeof *st);
    int r = st ? store_stream_open(s->store, s->drop.mailbox_id, m->uid, &st->src) : STORE_ERROR;
    if (r != STORE_OK) {
        free(st);
        fetch_failed(s, number, r);
        return;
    }
    st->s = s;
    st->index = number - 1;
    st->retr = !top;
    pop3_encoder_init(&st->enc, top, lines);
    s->stream = st;
    pop3_step_begin(s);
    r = read_next(st);
    if (r != STORE_OK) {
        free_stream(&st);
        fetch_failed(s, number, r);
        pop3_step_done(s);
    }
}

/* RFC 1939 §5 RETR */
void pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    uint32_t n;
    if (pop3_message_arg(s, &cmd->argv[0], &n))
        fetch(s, n, false, 0);
}

/* RFC 1939 §7 TOP msg n: the header, the empty line, n body lines. */
void pop3_cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    uint32_t n, lines;
    if (!pop3_message_arg(s, &cmd->argv[0], &n))
        return;
    if (!pop3_parse_number(cmd->argv[1].p, cmd->argv[1].len, &lines)) {
        pop3_error(s, "-ERR Invalid line count");
        return;
    }
    fetch(s, n, true, lines);
}
