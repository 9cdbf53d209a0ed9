/*
 * pop3-int.h — private to pop3/: the session, the maildrop snapshot and the
 * functions the session's files share.
 */
#ifndef PETREL_POP3_INT_H
#define PETREL_POP3_INT_H

#include "auth/auth.h"
#include "pop3/pop3.h"

/* RFC 2449 §6.0: IMPLEMENTATION is free text. */
#define POP3_IMPLEMENTATION "Petrel"
/* Message bytes encoded per stream per loop turn (output is at most twice
 * that): large enough for throughput, small enough that one 25 MB RETR
 * does not hold the loop from other connections. */
#define POP3_STREAM_CHUNK (64 * 1024)
/* Longest address USER may name (the store's limit, RFC 5321 paths fit). */
#define POP3_MAX_USER 320

/*
 * The session's one state enum (RFC 1939 §3). SASL is AUTHORIZATION inside
 * an AUTH exchange (the next line is a SASL response, RFC 5034 §4); CLOSING
 * is after QUIT or a fatal reply, when input is ignored.
 */
enum pop3_state {
    ST_AUTHORIZATION,
    ST_SASL,
    ST_TRANSACTION,
    ST_UPDATE,
    ST_CLOSING,
};

/* One message of the snapshot taken at login; its number is index + 1. */
struct pop3_msg {
    uint32_t uid;
    uint64_t size;      /* octets as stored (RFC 1939 §5 "exact size") */
    bool deleted;       /* DELE in this session; RSET clears it */
    bool retrieved;     /* RETR completed: \Seen at QUIT */
    bool gone;          /* expunged meanwhile by another session */
};

/* The maildrop: INBOX as it was at login (RFC 1939 §4). Numbers stay
 * stable for the session whatever other sessions do. */
struct pop3_maildrop {
    int64_t mailbox_id;
    uint32_t uidvalidity;
    struct pop3_msg *msgs;
    size_t n, cap;
    size_t n_deleted;
    uint64_t size;          /* every message */
    uint64_t size_deleted;  /* the DELE-marked ones */
};

struct pop3_stream;

/* QUIT's UPDATE state: up to three store operations in flight at once. */
struct pop3_update {
    uint32_t *seen, *del;
    size_t n_seen, n_del;
    int expunge_result;
    size_t n_expunged;
    bool submitted_expunge;
};

struct pop3_session {
    struct conn *conn;
    struct store *store;
    const struct config *cfg;
    enum pop3_state state;
    bool busy;                /* an async step runs; input is paused */
    unsigned errors;

    char user[POP3_MAX_USER + 1];  /* USER given, waiting for PASS */
    struct auth_session *auth;
    char login[POP3_MAX_USER + 1]; /* authenticated address */
    int64_t user_id;

    struct pop3_maildrop drop;
    struct pop3_stream *stream;    /* RETR/TOP being written */
    struct pop3_update upd;

    unsigned pending;         /* store callbacks that will still arrive */
    bool closed;              /* the connection is gone */
    bool stopping;            /* server shutdown: close after this step */
};

/* session.c */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A reply that counts as a client error; past max_errors the session ends. */
void pop3_error(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_enter(struct pop3_session *s, enum pop3_state state);
void pop3_close(struct pop3_session *s);
/* An async step begins: input pauses until pop3_step_done(). */
void pop3_step_begin(struct pop3_session *s);
/* It ended and its reply is written: resume input (or close when the
 * server is stopping). */
void pop3_step_done(struct pop3_session *s);
/* A store callback arrived: false when the connection has gone meanwhile
 * (the session may then have been freed; do nothing more with it). */
bool pop3_release(struct pop3_session **s);
bool pop3_plaintext_allowed(const struct pop3_session *s);

/* commands.c */
typedef void (*pop3_cmd_fn)(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd);
/* The message named by arg, or NULL after an -ERR reply (not a number,
 * out of range, or deleted). */
struct pop3_msg *pop3_message_arg(struct pop3_session *s, const struct pop3_arg *arg,
                                  uint32_t *number);

/* auth.c */
void pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_auth_response(struct pop3_session *s, const char *line, size_t len);

/* maildrop.c */
/* After a login: snapshot INBOX and enter TRANSACTION, or answer -ERR. */
void pop3_maildrop_open(struct pop3_session *s);
void pop3_maildrop_free(struct pop3_maildrop *d);
/* QUIT in TRANSACTION: the UPDATE state (RFC 1939 §6). */
void pop3_update(struct pop3_session *s);
void pop3_update_free(struct pop3_update *u);

/* retr.c */
void pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd);
void pop3_cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd);
/* The connection closed: drop the stream, if any. */
void pop3_stream_cancel(struct pop3_session *s);
/* At an idle timeout: true when the stream has not moved since the
 * previous one (a peer that stopped reading). */
bool pop3_stream_stalled(struct pop3_session *s);
/* The peer has read what was queued: a parked stream goes on. */
void pop3_stream_drain(struct pop3_session *s);

#endif
