/*
 * smtp-int.h — private to smtp/: the session, the transaction and the
 * functions the session's files share.
 */
#ifndef PETREL_SMTP_INT_H
#define PETREL_SMTP_INT_H

#include "auth/auth.h"
#include "smtp/smtp.h"

/* RFC 4954 §4: an AUTH response line may be up to 12288 octets. */
#define SMTP_MAX_AUTH_LINE 12288

/*
 * Room reserved in front of the client's bytes for the header fields we
 * prepend (Return-Path, Authentication-Results, Received; deliver.c). They
 * are written into it at the end, so the message is never moved: together
 * they stay far below this (the A-R value at most ~6 KB with 8 DKIM
 * signatures, docs/spf-dmarc.md); a larger block would be moved in.
 */
#define SMTP_HEAD_ROOM 16384

/*
 * Messages up to this size are scanned for the checks on the loop; larger
 * ones on the thread pool. The scan is dominated by the DKIM body hash:
 * measured about 2 ms per MB (Release; 3.6 ms Debug), so 128 KiB costs
 * the loop ~0.25 ms, and a 50 MB message would stall it ~100 ms.
 */
#define SMTP_SCAN_INLINE_MAX (128 * 1024)

enum smtp_role {
    ROLE_MX,          /* port 25: anyone, local recipients only */
    ROLE_SUBMISSION,  /* 587/465: AUTH before MAIL, may relay */
};

/* What the session reads next. */
enum smtp_phase {
    PHASE_COMMAND,  /* command lines */
    PHASE_DATA,     /* the DATA body up to CRLF.CRLF */
    PHASE_BDAT,     /* the bytes of a BDAT chunk */
    PHASE_AUTH,     /* a SASL response line */
    PHASE_WAIT,     /* an async step runs (commit, SASL); input paused */
    PHASE_CLOSING,  /* QUIT or a fatal reply sent; input ignored */
};

/* One mail transaction: from MAIL to the end of DATA/BDAT LAST or RSET. */
struct authcheck;

struct smtp_txn {
    struct smtp_path from;
    struct smtp_mail_params params;
    unsigned n_rcpt;              /* accepted RCPT commands */
    char first_rcpt[SMTP_MAX_PATH + 1];

    int64_t *user_ids;            /* local recipients after expansion, unique */
    unsigned n_users, cap_users;
    char **remote;                /* remote recipients, unique */
    unsigned n_remote, cap_remote;

    struct buf msg;               /* SMTP_HEAD_ROOM bytes, then the message */
    size_t body_start;            /* where the client's bytes begin in msg (after
                                     the room, and after fields the checks drop) */
    bool too_big;                 /* over max_message_size; still reading */
    bool bare_eol;                /* BDAT: a bare CR or LF was seen */
    struct smtp_data_decoder dec; /* DATA */

    bool bdat;                    /* BDAT used: DATA no longer allowed */
    bool bdat_failed;             /* a chunk was refused: the rest is read and refused */
    bool bdat_last;
    uint64_t chunk_left;
    bool prev_cr;                 /* BDAT: last byte of the previous chunk was CR */

    struct authcheck *checks;     /* SPF from MAIL on the MX; the end-of-data checks */
};

struct smtp_session {
    struct conn *conn;
    struct store *store;
    struct dns *dns;              /* NULL: no SPF/DKIM/DMARC */
    const struct dmarc_psl *psl;
    const struct config *cfg;
    enum smtp_role role;
    enum smtp_phase phase;

    char helo[256];
    bool esmtp;                   /* EHLO, not HELO */
    unsigned errors;

    struct smtp_txn *txn;
    unsigned txn_count;

    struct auth_session *auth;
    char user[320];               /* authenticated address, "" if none */
    int64_t user_id;

    bool closed;                  /* the connection is gone */
    bool committing;              /* an off-loop step holds this session and the
                                     message (a store commit, the checks' scan on
                                     the pool): its callback frees a closed one */
    bool stopping;                /* server shutdown: close after this transaction */
};

/* session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A reply that counts as a client error; past max_errors the session ends. */
void smtp_error(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_enter(struct smtp_session *s, enum smtp_phase phase);
void smtp_txn_free(struct smtp_txn **txn);
void smtp_after_transaction(struct smtp_session *s);
void smtp_session_free(struct smtp_session **s);
void smtp_close(struct smtp_session *s);

/* commands.c */
typedef void (*smtp_cmd_fn)(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_helo(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_ehlo(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_rset(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_noop(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_quit(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_help(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_vrfy(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_expn(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_starttls(struct smtp_session *s, const char *args, size_t len);

/* auth.c */
void smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len);
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len);

/* data.c */
void smtp_cmd_data(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len);
/* Feed buffered input to the DATA / BDAT reader. Returns false when it
 * needs more input. */
bool smtp_read_data(struct smtp_session *s);
bool smtp_read_bdat(struct smtp_session *s);

/*
 * authcheck.c: loop protection (RFC 5321 §6.3) on every role; SPF, DKIM,
 * DMARC on the MX ([checks] mode; docs/spf-dmarc.md "On the MX").
 */
/* MAIL was accepted: on the MX, SPF starts and runs while RCPT and DATA go on. */
void smtp_checks_mail(struct smtp_session *s);
/* The message is complete (and neither too big nor bare-EOL): the checks
 * run, with input paused, and end in a refusal or in smtp_deliver(). */
void smtp_checks_message(struct smtp_session *s);
/* Cancels what is pending (lookups, the timer). Not during the pool scan. */
void smtp_checks_free(struct authcheck **a);

/* deliver.c */
/* Reserves SMTP_HEAD_ROOM in front of the message (DATA / first BDAT). */
int smtp_message_start(struct smtp_session *s);
/* Prepends Return-Path, the Authentication-Results value authres (NULL:
 * none) and Received, and hands the message to the store (junk: into each
 * user's Junk mailbox). The final reply comes from the store's callback. */
void smtp_deliver(struct smtp_session *s, const char *authres, bool junk);
/* The final reply of a message refused at the end of the data (the
 * checks): the transaction ends and input resumes. */
void smtp_refuse_message(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
