/*
 * imap-int.h — private to imap/: the session, the selected mailbox view,
 * the command table's types and the response writers.
 */
#ifndef PETREL_IMAP_INT_H
#define PETREL_IMAP_INT_H

#include "auth/auth.h"
#include "imap/imap.h"
#include "mime/mime.h"
#include "store/store.h"

/* Session states (RFC 9051 §3), as bits so a command names where it may run. */
enum imap_state {
    IMAP_NOTAUTH = 1 << 0,
    IMAP_AUTH = 1 << 1,
    IMAP_SELECTED = 1 << 2,
};
#define IMAP_ANY (IMAP_NOTAUTH | IMAP_AUTH | IMAP_SELECTED)
#define IMAP_LOGGED_IN (IMAP_AUTH | IMAP_SELECTED)

/* What the next input bytes are. */
enum imap_phase {
    IMAP_PH_COMMAND,  /* commands, through the parser */
    IMAP_PH_WAIT,     /* a command runs off the loop; input paused */
    IMAP_PH_AUTH,     /* AUTHENTICATE: base64 response lines */
    IMAP_PH_IDLE,     /* IDLE: waiting for DONE */
    IMAP_PH_CLOSING,
};

/* Command flags. */
#define CMD_USES_MSN 0x1  /* takes sequence numbers: no EXPUNGE after it (RFC 9051 §7.5.1) */

/*
 * UIDs lo..hi, all present, whose first has sequence number before + 1.
 * Mailboxes are mostly runs of consecutive UIDs, so a view of 10,000
 * messages with a few expunges costs a few runs, not 40 KB per session.
 */
struct imap_run {
    uint32_t lo, hi, before;
};

/*
 * The selected mailbox as this session sees it: the UIDs by sequence
 * number, as runs. It changes only when the session reports the change
 * (EXISTS, EXPUNGE), so sequence numbers stay consistent. seen_modseq:
 * changes up to it were reported (flags, new messages); expunged_modseq
 * the same for expunges, which may have to wait.
 */
struct imap_view {
    int64_t id;
    char name[STORE_MAILBOX_NAME_MAX + 1];
    bool readonly;
    uint32_t uidvalidity;
    struct imap_run *runs;
    size_t nruns, cap;
    size_t count;          /* messages */
    uint64_t seen_modseq;
    uint64_t expunged_modseq;
    bool dirty;         /* a change event arrived since the last report */
    bool gone;          /* the mailbox was deleted or renamed away */
};

struct imap_session;

/* The command being run; tag and args live in the parser's arena. */
struct imap_request {
    const char *tag;
    const char *name;          /* "FETCH", "UID FETCH" ... */
    const struct imap_arg *args;
    size_t nargs;
    bool uid;                  /* the UID form */
    unsigned flags;            /* CMD_* */
};

typedef void (*imap_cmd_fn)(struct imap_session *s, const struct imap_request *r);

/* Messages a silent STORE changed: their FETCH FLAGS is not reported back. */
struct imap_quiet {
    uint32_t uid;
    uint64_t modseq;
};

struct imap_session {
    struct conn *conn;
    const struct config *cfg;
    struct store *store;
    struct imap_parser *parser;
    enum imap_state state;
    enum imap_phase phase;
    unsigned errors;
    bool continued;            /* "+" sent for the literal being read */
    bool closed;               /* the connection is gone; free when idle */
    bool stopping;             /* server shutdown: BYE after this command */
    unsigned busy;             /* async operations holding the session */

    struct imap_request req;   /* valid while a command runs */
    struct buf literal;        /* APPEND message bytes (streamed literal) */
    void *op;                  /* the running command's own state */
    void (*op_free)(void *op);
    void (*drain)(struct imap_session *s);  /* resumes output after back-pressure */

    struct auth_session *auth;
    char user[320];
    int64_t user_id;
    struct store_sub *sub;

    bool condstore;            /* ENABLE CONDSTORE or a CONDSTORE command */
    bool qresync;
    bool rev2;                 /* ENABLE IMAP4rev2 (RFC 9051) */
    bool utf8;                 /* UTF-8 mailbox names and strings (IMAP4rev2) */
    bool compressed;           /* COMPRESS DEFLATE is on */

    struct imap_view *view;    /* NULL unless SELECTED */
    struct imap_session *report_next, *report_prev;  /* IDLE reports to run */
    bool report_queued;
    struct imap_quiet *quiet;
    size_t n_quiet;

    uint32_t *saved;           /* SEARCHRES "$": UIDs, ascending (RFC 5182) */
    size_t n_saved;
};

/* session.c */
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void imap_bad(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ends the running command: reports mailbox changes, writes the tagged
 * reply, reads the next command. */
void imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Async steps: wait pauses input and holds the session; resume returns
 * false (and frees the session) when the connection closed meanwhile. */
void imap_wait(struct imap_session *s);
bool imap_resume(struct imap_session *s);
void imap_close(struct imap_session *s);
void imap_enter(struct imap_session *s, enum imap_phase phase);
void imap_login_done(struct imap_session *s, const char *user, int64_t user_id);
/* A CONDSTORE enabling command ran (RFC 7162 §3.1). */
void imap_condstore_on(struct imap_session *s);
/* Store result → tagged NO with a response code. */
void imap_done_store_error(struct imap_session *s, int result, const char *what);

/* write.c — response pieces */
void imap_write(struct imap_session *s, const void *data, size_t len);
void imap_printf(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string as quoted, or as a literal when it needs one. */
void imap_write_string(struct imap_session *s, const char *str, size_t len);
void imap_buf_string(struct buf *b, const char *str, size_t len, bool utf8);
/* A mailbox name (UTF-8 in the store) as modified UTF-7 or UTF-8. */
void imap_write_mailbox(struct imap_session *s, const char *name);
/* "(\Seen foo)" from the store's space-separated flags. */
void imap_buf_flags(struct buf *b, const char *flags);
/* The store's flag string (NUL-terminated in out->data); -1 over STORE_FLAGS_MAX. */
int imap_flags_string(const struct imap_flags *f, struct buf *out);
/* "17-Jul-1996 02:44:25 +0000" */
void imap_format_date(int64_t t, char out[32]);
/* The mailbox argument, decoded to UTF-8 in out. false: invalid (a BAD was sent). */
bool imap_arg_mailbox(struct imap_session *s, const struct imap_arg *a, char *out, size_t outsize);
/* CAPABILITY for the session's state, without the "* CAPABILITY " prefix. */
void imap_buf_capability(struct imap_session *s, struct buf *b);

/* view.c — the selected mailbox */
/* Loads the view; *first_unseen gets the sequence number of the first
 * message without \Seen (0: none) for SELECT's [UNSEEN]. */
int imap_view_open(struct imap_session *s, const struct store_mailbox *mb, bool readonly,
                   struct imap_view **out, uint32_t *first_unseen);
void imap_view_free(struct imap_view **v);
uint32_t imap_view_msn(const struct imap_view *v, uint32_t uid);  /* 0: not there */
uint32_t imap_view_uid(const struct imap_view *v, uint32_t msn);  /* 1 <= msn <= count */
uint32_t imap_view_max_uid(const struct imap_view *v);
/* Reports what changed (EXISTS, FETCH FLAGS, and EXPUNGE when allowed). */
void imap_view_report(struct imap_session *s, bool allow_expunge);
/*
 * The UIDs a sequence set (or uid set) names in the view, ascending; "*"
 * resolved against the view. Returns 0, or -1 after a BAD was sent.
 */
int imap_view_select_set(struct imap_session *s, const struct imap_arg *a, bool uid,
                         uint32_t **uids, size_t *n);
/* The modseq everything up to which this session has been told (RFC 7162
 * HIGHESTMODSEQ as this session may report it). */
uint64_t imap_view_modseq(const struct imap_view *v);
/* "$" (RFC 5182): is uid in the saved result? Forget it (SELECT, failures). */
bool imap_saved_has(const struct imap_session *s, uint32_t uid);
void imap_saved_clear(struct imap_session *s);
/* "* VANISHED [(EARLIER) ]set" for ascending UIDs; nothing when n is 0. */
void imap_write_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n);
/* "1:3,7" from ascending numbers. */
void imap_buf_set(struct buf *b, const uint32_t *v, size_t n);

/* cmd-*.c */
void imap_cmd_capability(struct imap_session *s, const struct imap_request *r);
void imap_cmd_noop(struct imap_session *s, const struct imap_request *r);
void imap_cmd_logout(struct imap_session *s, const struct imap_request *r);
void imap_cmd_id(struct imap_session *s, const struct imap_request *r);
void imap_cmd_enable(struct imap_session *s, const struct imap_request *r);
void imap_cmd_namespace(struct imap_session *s, const struct imap_request *r);
void imap_cmd_starttls(struct imap_session *s, const struct imap_request *r);
void imap_cmd_login(struct imap_session *s, const struct imap_request *r);
void imap_cmd_authenticate(struct imap_session *s, const struct imap_request *r);
void imap_auth_response(struct imap_session *s, const char *line, size_t len);
void imap_cmd_select(struct imap_session *s, const struct imap_request *r);
void imap_cmd_create(struct imap_session *s, const struct imap_request *r);
void imap_cmd_delete(struct imap_session *s, const struct imap_request *r);
void imap_cmd_rename(struct imap_session *s, const struct imap_request *r);
void imap_cmd_subscribe(struct imap_session *s, const struct imap_request *r);
void imap_cmd_list(struct imap_session *s, const struct imap_request *r);
void imap_cmd_status(struct imap_session *s, const struct imap_request *r);
/* STATUS item lists (also LIST ... RETURN (STATUS (...)), RFC 5819). */
bool imap_status_items(struct imap_session *s, const struct imap_arg *list, unsigned *want);
void imap_write_status(struct imap_session *s, const struct store_mailbox_info *m, unsigned want);
void imap_cmd_append(struct imap_session *s, const struct imap_request *r);
bool imap_append_literal_ok(struct imap_session *s, uint64_t size);
void imap_cmd_check(struct imap_session *s, const struct imap_request *r);
void imap_cmd_close(struct imap_session *s, const struct imap_request *r);
void imap_cmd_expunge(struct imap_session *s, const struct imap_request *r);
void imap_cmd_fetch(struct imap_session *s, const struct imap_request *r);
void imap_cmd_store(struct imap_session *s, const struct imap_request *r);
void imap_cmd_copy(struct imap_session *s, const struct imap_request *r);
void imap_cmd_search(struct imap_session *s, const struct imap_request *r);
void imap_cmd_idle(struct imap_session *s, const struct imap_request *r);
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_cmd_getquota(struct imap_session *s, const struct imap_request *r);
void imap_cmd_compress(struct imap_session *s, const struct imap_request *r);

#endif
