/*
 * RETR and TOP: the message is read off the loop (store_fetch on the
 * thread pool: SQLite read and inflate), then written out in pieces of
 * POP3_STREAM_CHUNK bytes, byte-stuffed as it goes (encode.c), one piece
 * per stream per loop turn, so a 25 MB RETR never holds the loop for more
 * than one piece and other connections are served in between.
 *
 * Back-pressure: when core reports the peer is not keeping up
 * (conn_write_blocked: more than max_output_buffer queued), the stream
 * leaves the pump and waits for the connection's drain callback. What is
 * queued for one RETR stays under max_output_buffer plus one piece.
 *
 * Memory: store_fetch hands over the whole decompressed message, so a
 * RETR holds the message once, plus that bounded output (docs/pop3.md).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-int.h"

struct pop3_stream {
    struct pop3_session *s;
    char *data;             /* the whole message, from store_fetch */
    size_t len, off;
    struct pop3_encoder enc;
    size_t index;           /* in the maildrop */
    bool retr;              /* RETR (marks the message retrieved), not TOP */
    bool parked;            /* waiting for the peer to read (drain) */
    size_t mark;            /* off at the last idle timeout */
    struct pop3_stream *next, *prev;
};

/* Every stream in progress, pumped by one idle handle on the loop. */
static uv_idle_t pump;
static bool pump_ready;
static struct pop3_stream *streams;

static void on_pump(uv_idle_t *h);
/* Loop thread only: one piece of encoded output at a time. */
static char scratch[POP3_STREAM_CHUNK * POP3_ENCODE_MAX_GROWTH + POP3_ENCODE_FINISH_MAX];

static void unlink_stream(struct pop3_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else if (streams == st)
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

/* Out of the pump until the peer has read (pop3_stream_drain). */
static void park_stream(struct pop3_stream *st)
{
    unlink_stream(st);
    st->parked = true;
}

static void free_stream(struct pop3_stream **stp)
{
    struct pop3_stream *st = *stp;
    unlink_stream(st);
    st->s->stream = NULL;
    free(st->data);
    free(st);
    *stp = NULL;
}

/* Writes the next piece; true when the response is complete. */
static bool stream_step(struct pop3_stream *st)
{
    size_t take = st->len - st->off, out_len = 0;
    if (take > POP3_STREAM_CHUNK)
        take = POP3_STREAM_CHUNK;
    st->off += pop3_encode(&st->enc, st->data + st->off, take, scratch,
                           sizeof scratch - POP3_ENCODE_FINISH_MAX, &out_len);
    bool end = st->off == st->len || st->enc.done;
    if (end)
        out_len += pop3_encode_finish(&st->enc, scratch + out_len);
    conn_write(st->s->conn, scratch, out_len);
    conn_flush(st->s->conn);
    return end;
}

static void finish_stream(struct pop3_stream *st)
{
    struct pop3_session *s = st->s;
    if (st->retr)
        s->drop.msgs[st->index].retrieved = true;
    free_stream(&st);
    pop3_step_done(s);
}

static void on_pump(uv_idle_t *h)
{
    struct pop3_stream *next;
    for (struct pop3_stream *st = streams; st; st = next) {
        next = st->next;
        if (stream_step(st))
            finish_stream(st);
        else if (conn_write_blocked(st->s->conn))
            park_stream(st);
    }
}

void pop3_stream_cancel(struct pop3_session *s)
{
    if (s->stream)
        free_stream(&s->stream);
}

bool pop3_stream_stalled(struct pop3_session *s)
{
    struct pop3_stream *st = s->stream;
    if (!st)
        return false;
    bool stalled = st->off == st->mark;
    st->mark = st->off;
    return stalled;
}

void pop3_stream_drain(struct pop3_session *s)
{
    if (s->stream && s->stream->parked)
        link_stream(s->stream, server_loop(conn_server(s->conn)));
}

static void start_stream(struct pop3_session *s, char *data, size_t len)
{
    struct pop3_stream *st = calloc(1, sizeof *st);
    if (!st) {
        free(data);
        pop3_reply(s, "-ERR [SYS/TEMP] Out of memory");
        pop3_step_done(s);
        return;
    }
    st->s = s;
    st->data = data;
    st->len = len;
    st->index = s->fetch_index;
    st->retr = !s->fetch_top;
    pop3_encoder_init(&st->enc, s->fetch_top, s->fetch_lines);
    s->stream = st;
    if (st->retr)
        pop3_reply(s, "+OK %zu octets", len);
    else
        pop3_reply(s, "+OK Top of message follows");
    /* Most messages fit in one piece: no detour through the pump. */
    if (stream_step(st)) {
        finish_stream(st);
        return;
    }
    if (conn_write_blocked(s->conn))
        st->parked = true;
    else
        link_stream(st, server_loop(conn_server(s->conn)));
}

static void on_fetched(void *arg, int result, char *data, size_t len,
                       struct mime_message *parse)
{
    struct pop3_session *s = arg;
    if (!pop3_release(&s)) {
        free(data);
        return;
    }
    struct pop3_msg *m = &s->drop.msgs[s->fetch_index];
    uint32_t number = (uint32_t)(s->fetch_index + 1);
    if (s->stopping) {
        free(data); /* the server is stopping: no long transfer now */
        pop3_step_done(s);
        return;
    }
    if (result == STORE_NOTFOUND) {
        m->gone = true;
        pop3_reply(s, "-ERR Message %" PRIu32 " was removed by another session", number);
        pop3_step_done(s);
        return;
    }
    if (result != STORE_OK) {
        log_event(PLOG_ERROR, conn_id(s->conn), "event=pop3-fetch-failed user=%s uid=%" PRIu32
                  " result=%s", s->login, m->uid, store_strerror(result));
        pop3_reply(s, "-ERR [SYS/TEMP] Cannot read message %" PRIu32 ", try again later", number);
        pop3_step_done(s);
        return;
    }
    start_stream(s, data, len);
}

static void fetch(struct pop3_session *s, uint32_t number, bool top, uint32_t lines)
{
    struct pop3_msg *m = &s->drop.msgs[number - 1];
    if (m->gone) {
        pop3_reply(s, "-ERR Message %" PRIu32 " was removed by another session", number);
        return;
    }
    s->fetch_index = number - 1;
    s->fetch_top = top;
    s->fetch_lines = lines;
    pop3_step_begin(s);
    s->pending++;
    int r = store_fetch(s->store, s->drop.mailbox_id, m->uid, STORE_FETCH_RAW, on_fetched, s);
    if (r != STORE_OK) {
        s->pending--;
        pop3_reply(s, "-ERR [SYS/TEMP] Cannot read message %" PRIu32 ", try again later", number);
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
