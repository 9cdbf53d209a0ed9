/*
 * store.h — the only door to the data. SQLite behind it today; a second
 * implementation (PostgreSQL, change events over LISTEN/NOTIFY) must be
 * possible behind this same header, so it speaks in operations ("deliver
 * these recipients", "list these users"), never in rows and cursors.
 *
 * Threads: the synchronous functions run on the caller's thread on a reader
 * or admin connection; petrelctl and tests call them directly, petreld calls
 * the read-only ones from the loop (they are small indexed reads). Writes
 * that acknowledge mail (store_deliver) go through the one writer thread with
 * group commit and report back on the loop.
 */
#ifndef PETREL_STORE_H
#define PETREL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Results: 0 is success, the rest are negative. */
enum store_result {
    STORE_OK = 0,
    STORE_ERROR = -1,     /* I/O or database error; details logged */
    STORE_NOTFOUND = -2,
    STORE_EXISTS = -3,
    STORE_INVALID = -4,   /* malformed address or argument */
    STORE_LOOP = -5,      /* alias would loop */
    STORE_QUOTA = -6,     /* over quota */
    STORE_BUSY = -7,      /* shutting down */
};

/* A short English phrase for a result, for CLI messages. */
const char *store_strerror(int result);

struct store;

/*
 * Opens (creating if needed) data_dir/petrel.db, runs migrations, sets WAL
 * and synchronous=FULL. Returns 0, or -1 with a message in err.
 */
int store_open(const char *data_dir, struct store **out, char *err, size_t errlen);
/* Stops the writer (after its queue drains) and closes every connection. */
void store_close(struct store **s);

/*
 * petreld only: start the writer thread and route its completions and the
 * change events to loop. Before this, store_deliver is not available.
 */
int store_start_writer(struct store *s, uv_loop_t *loop);

/* --------------------------------------------------------------- domains */

int store_domain_add(struct store *s, const char *domain);
int store_domain_del(struct store *s, const char *domain); /* and its users, aliases */
bool store_domain_is_local(struct store *s, const char *domain);

struct store_domain_info {
    const char *name;
    unsigned users;
    unsigned aliases;
};
typedef void (*store_domain_cb)(void *arg, const struct store_domain_info *d);
int store_domain_list(struct store *s, store_domain_cb cb, void *arg);

/* ----------------------------------------------------------------- users */

/*
 * Credentials are made by auth/ (auth_make_credentials): a crypt(3) hash and
 * the SCRAM-SHA-256 secret. The store keeps them as opaque strings.
 * Creating a user creates INBOX, Sent, Drafts, Trash, Junk and Archive.
 */
int store_user_add(struct store *s, const char *address, const char *pw_hash,
                   const char *scram_secret, uint64_t quota);
int store_user_del(struct store *s, const char *address);
int store_user_passwd(struct store *s, const char *address, const char *pw_hash,
                      const char *scram_secret);
int store_user_set_quota(struct store *s, const char *address, uint64_t quota);

/* Addresses are matched with the domain part case-insensitive. */
struct store_user {
    int64_t id;
    char address[320];
    char pw_hash[256];
    char scram_secret[512];
    uint64_t quota;   /* 0 = unlimited */
    uint64_t used;    /* bytes of stored messages */
    unsigned messages;
};
/* Looks a user up by exact address (domain case-insensitive). */
int store_user_get(struct store *s, const char *address, struct store_user *out);

typedef void (*store_user_cb)(void *arg, const struct store_user *u);
/* domain NULL: every user. */
int store_user_list(struct store *s, const char *domain, store_user_cb cb, void *arg);

/* --------------------------------------------------------------- aliases */

/* targets: comma-separated addresses. Adding to an existing alias adds targets. */
int store_alias_add(struct store *s, const char *address, const char *targets);
/* targets NULL: delete the whole alias. */
int store_alias_del(struct store *s, const char *address, const char *targets);

struct store_alias_info {
    const char *address;  /* "@domain" for a catch-all */
    const char *targets;  /* comma-separated */
};
typedef void (*store_alias_cb)(void *arg, const struct store_alias_info *a);
int store_alias_list(struct store *s, const char *domain, store_alias_cb cb, void *arg);

/* ------------------------------------------------------------- mailboxes */

struct store_mailbox_info {
    const char *name;
    const char *special_use; /* "\\Sent" ... or "" */
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    unsigned messages;
    unsigned unseen;
    uint64_t size;
    bool subscribed;
};
typedef void (*store_mailbox_cb)(void *arg, const struct store_mailbox_info *m);
int store_mailbox_list(struct store *s, const char *address, store_mailbox_cb cb, void *arg);

/* ------------------------------------------------------------ recipients */

#define STORE_MAX_EXPANSION 64 /* users one recipient may expand to */

/*
 * Resolves an envelope recipient in a local domain: exact user, alias,
 * plus-address (user+tag@ when user+tag is not itself a user or alias),
 * catch-all (@domain). Alias targets are followed recursively (depth-limited);
 * targets outside the local domains are returned as remote addresses.
 * STORE_NOTFOUND: the domain is local but nobody takes the address.
 */
struct store_rcpt {
    unsigned n_users;
    int64_t user_ids[STORE_MAX_EXPANSION];
    uint64_t quota_free[STORE_MAX_EXPANSION]; /* UINT64_MAX when unlimited */
    uint64_t quota[STORE_MAX_EXPANSION];      /* the whole quota, same rule */
    unsigned n_remote;
    char remote[8][320];
    /* The expansion hit a limit (STORE_MAX_EXPANSION users, 8 remote
     * addresses, STORE_ALIAS_DEPTH levels) and some targets are missing
     * from the lists above; logged as event=resolve_truncated. */
    bool truncated;
};
int store_resolve_rcpt(struct store *s, const char *address, struct store_rcpt *out);

/* --------------------------------------------------------------- delivery */

/*
 * One message for many recipients: one blob (SHA-256 addressed, zlib,
 * refcounted), one row in each user's INBOX, one outbound queue row per
 * remote recipient, all in one transaction. The store parses the MIME
 * structure (mime/) and keeps the parse for IMAP.
 *
 * data must stay valid until done runs. done runs on the loop thread only
 * after the transaction holding the message is durable (fsync'd), with
 * STORE_OK, STORE_QUOTA (a user went over quota meanwhile; nothing was
 * stored) or STORE_ERROR.
 */
struct store_delivery {
    const char *data;
    size_t len;
    int64_t internal_date;      /* unix seconds */
    const char *mail_from;      /* envelope sender, "" for the null sender */
    const int64_t *user_ids;    /* local recipients, duplicates allowed */
    unsigned n_users;
    const char *const *remote;  /* remote recipients for the outbound queue */
    unsigned n_remote;
};
typedef void (*store_done_cb)(void *arg, int result);
int store_deliver(struct store *s, const struct store_delivery *d,
                  store_done_cb done, void *arg);

/* ----------------------------------------------------------- change events */

enum store_change_kind { STORE_CHANGE_APPEND, STORE_CHANGE_FLAGS, STORE_CHANGE_EXPUNGE };

struct store_change {
    enum store_change_kind kind;
    int64_t user_id;
    int64_t mailbox_id;
    uint32_t uid_first, uid_last;
    uint64_t modseq;
};
typedef void (*store_change_cb)(void *arg, const struct store_change *ch);

/*
 * Subscribers are called on the loop thread after the change is durable.
 * user_id 0 subscribes to every user. Returns a handle for unsubscribe.
 */
struct store_sub;
struct store_sub *store_subscribe(struct store *s, int64_t user_id,
                                  store_change_cb cb, void *arg);
void store_unsubscribe(struct store *s, struct store_sub **sub);

/* -------------------------------------------------------- stored messages */

struct store_message_info {
    int64_t mailbox_id;
    uint32_t uid;
    uint64_t modseq;
    int64_t internal_date;
    uint64_t size;
    const char *flags;          /* space-separated, e.g. "\\Seen" */
};
typedef void (*store_message_cb)(void *arg, const struct store_message_info *m);
/* Messages of one mailbox of a user, in UID order. */
int store_message_list(struct store *s, const char *address, const char *mailbox,
                       store_message_cb cb, void *arg);
/* The exact stored bytes of a message (decompressed). Caller frees *data. */
int store_message_read(struct store *s, int64_t mailbox_id, uint32_t uid,
                       char **data, size_t *len);

/* ------------------------------------------------------------------ stats */

/*
 * Counters of the writer since store_start_writer: transactions committed
 * and deliveries (store_deliver calls) they carried. Group commit makes
 * transactions < deliveries under load. Any thread.
 */
struct store_stats {
    uint64_t transactions;
    uint64_t deliveries;
};
void store_stats(struct store *s, struct store_stats *out);

/* ------------------------------------------------------------------ queue */

struct store_queue_info {
    int64_t id;
    const char *mail_from;
    const char *rcpt;
    const char *domain;
    int64_t created;
    int64_t next_attempt;
    unsigned attempts;
    const char *last_error;
    uint64_t size;
};
typedef void (*store_queue_cb)(void *arg, const struct store_queue_info *q);
int store_queue_list(struct store *s, store_queue_cb cb, void *arg);
int store_queue_del(struct store *s, int64_t id);
/* id 0: every entry. Makes the entries due now. */
int store_queue_flush(struct store *s, int64_t id);

#endif
