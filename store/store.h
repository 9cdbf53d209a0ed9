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

/* ------------------------------------------------------------- DKIM keys */

/*
 * The DKIM signing keys of the local domains (RFC 6376; docs/dkim.md "Keys
 * and DNS"), in the store so that one backup of it covers them.
 *
 * selector: RFC 6376 §3.1, dot-separated labels of letters, digits and
 * inner hyphens, 1..63 bytes each, with "selector._domainkey.domain" at
 * most 253 bytes; kept lowercased, like the domain. algorithm:
 * "rsa-sha256" or "ed25519-sha256". pem: the unencrypted private key
 * (dkim_key_generate's PKCS#8 PEM), 1..STORE_DKIM_PEM_MAX bytes, kept as
 * given: the store does not parse it.
 *
 * A domain signs with its newest key: the first of the domain that
 * store_dkim_key_list gives (largest created, the later add on a tie).
 * That is key rotation: add a key under a new selector and publish its
 * record at once (the new key signs from its add on; until receivers see
 * the record its signatures find no key); delete the old key later, and
 * its record a few days after that, once mail signed with it has been
 * read.
 *
 * add: STORE_NOTFOUND (no such domain), STORE_EXISTS (the domain has that
 * selector), STORE_INVALID (domain, selector, algorithm or pem). del:
 * STORE_NOTFOUND (no such domain or selector), STORE_INVALID. list: domain
 * NULL lists every domain; STORE_NOTFOUND for an unknown domain. Rows come
 * ordered by domain, then newest first; strings are valid during the
 * callback only. A domain's keys go when the domain is deleted.
 */
#define STORE_DKIM_PEM_MAX 16384

int store_dkim_key_add(struct store *s, const char *domain, const char *selector,
                       const char *algorithm, const char *pem);
int store_dkim_key_del(struct store *s, const char *domain, const char *selector);

struct store_dkim_key_info {
    const char *domain, *selector, *algorithm, *pem;
    int64_t created;    /* unix seconds */
};
typedef void (*store_dkim_cb)(void *arg, const struct store_dkim_key_info *k);
int store_dkim_key_list(struct store *s, const char *domain /* NULL = all */,
                        store_dkim_cb cb, void *arg);

/* ------------------------------------------------------------- mailboxes */

struct store_mailbox_info {
    const char *name;
    const char *special_use; /* "\\Sent" ... or "" */
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    unsigned messages;
    unsigned unseen;         /* messages without \\Seen */
    uint64_t size;
    bool subscribed;
    int64_t id;
    unsigned deleted;        /* messages with \\Deleted */
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
    /* true: each local user gets the message in their special-use \Junk
     * mailbox (RFC 6154) instead of INBOX, INBOX when they have none; the
     * MX's DMARC quarantine (docs/spf-dmarc.md). Remote recipients are
     * queued as usual. */
    bool junk;
};
typedef void (*store_done_cb)(void *arg, int result);
int store_deliver(struct store *s, const struct store_delivery *d,
                  store_done_cb done, void *arg);

/* ----------------------------------------------------------- change events */

/*
 * APPEND: uid_first..uid_last appended (deliver, append, copy, move), modseq
 *         the last one's;
 * FLAGS: the flags of uid_first (= uid_last) are now flags, at modseq;
 * EXPUNGE: uid_first (= uid_last) is gone, modseq the mailbox's new one;
 * MAILBOX_CREATE / MAILBOX_DELETE: mailbox_id named name;
 * MAILBOX_RENAME: mailbox_id renamed from old_name to name (one event for
 *         each renamed mailbox, children included).
 * String fields are NULL when they do not apply, valid during the callback.
 */
enum store_change_kind {
    STORE_CHANGE_APPEND,
    STORE_CHANGE_FLAGS,
    STORE_CHANGE_EXPUNGE,
    STORE_CHANGE_MAILBOX_CREATE,
    STORE_CHANGE_MAILBOX_DELETE,
    STORE_CHANGE_MAILBOX_RENAME,
};

struct store_change {
    enum store_change_kind kind;
    int64_t user_id;
    int64_t mailbox_id;
    uint32_t uid_first, uid_last;
    uint64_t modseq;
    const char *flags;
    const char *name;
    const char *old_name;
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
 *
 * The search index is built after the commit, off the delivery path, by the
 * writer between its groups (docs/store.md "The indexer"); searches are exact
 * meanwhile (they read the text of messages not indexed yet). index_pending
 * is the indexing lag: new blobs (one per distinct message) waiting for the
 * indexer, counted at store_start_writer and by the writer since. It is
 * exact when 0 ("caught up"); otherwise it may still count blobs deleted
 * (expunged) before the indexer reached them, until it finds the queue
 * empty.
 */
struct store_stats {
    uint64_t transactions; /* writer operation groups, not index batches */
    uint64_t deliveries;
    uint64_t ops;          /* every writer operation, deliveries included */
    uint64_t indexed;      /* blobs the indexer took from its queue */
    uint64_t index_pending; /* blobs waiting for the indexer (see above) */
    uint64_t index_batches; /* index transactions committed */
};
void store_stats(struct store *s, struct store_stats *out);

/* ------------------------------------------------------------------ IMAP */

/*
 * Operations for the IMAP server. Mailboxes and messages are named by the
 * user's id (store_user_get) and the mailbox's id (store_mailbox_get).
 *
 * Mailbox names are UTF-8 (IMAP's modified UTF-7 is the IMAP side's job),
 * hierarchy delimiter '/', at most STORE_MAILBOX_NAME_MAX bytes, no empty
 * level ("a//b", "/a", "a/"), no control characters, no '*' or '%'. "INBOX"
 * is case-insensitive (also as the first level: "inbox/x" is "INBOX/x") and
 * always exists. Flags are a space-separated string of system flags
 * (\Seen \Answered \Flagged \Deleted \Draft, any case) and keywords
 * (IMAP atoms); the store keeps them canonical: system flags first in that
 * order and spelled so, then keywords sorted, duplicates (case-insensitive)
 * dropped.
 *
 * Reads are synchronous on the reader connection (small indexed queries,
 * never waiting for the writer). Writes go through the writer thread like
 * store_deliver: they need store_start_writer, answer STORE_BUSY once
 * store_close has begun, and call back on the loop thread only after their
 * transaction is durable; their change events are published just before.
 * Result arrays given to a callback are valid during the callback only.
 */
#define STORE_MAILBOX_NAME_MAX 512
#define STORE_SPECIAL_USE_MAX 16
#define STORE_FLAGS_MAX 4096      /* bytes of one message's flags */
#define STORE_OP_UIDS_MAX 1000000 /* UIDs one operation may name */

struct store_mailbox {
    int64_t id;
    char name[STORE_MAILBOX_NAME_MAX + 1];
    char special_use[STORE_SPECIAL_USE_MAX + 1];
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    bool subscribed;
    unsigned messages;
    unsigned unseen;    /* messages without \Seen */
    unsigned deleted;   /* messages with \Deleted */
    uint64_t size;      /* bytes of its messages */
};

/* One mailbox of a user by name with its status. STORE_NOTFOUND, STORE_INVALID. */
int store_mailbox_get(struct store *s, int64_t user_id, const char *name,
                      struct store_mailbox *out);
/* Every mailbox of a user with its status (id and deleted set), INBOX first
 * then by name, in one query. */
int store_mailbox_status_list(struct store *s, int64_t user_id, store_mailbox_cb cb,
                              void *arg);
/* The user's subscribed names (LSUB / LIST (SUBSCRIBED)), existing or not. */
typedef void (*store_name_cb)(void *arg, const char *name);
int store_subscription_list(struct store *s, int64_t user_id, store_name_cb cb, void *arg);

/*
 * The index of a mailbox in UID order: every message whose modseq is above
 * changed_since (0: all, the SELECT snapshot; N: CONDSTORE/QRESYNC "changed
 * since N"). info->flags is valid during the callback. STORE_NOTFOUND when
 * the mailbox does not exist.
 */
int store_message_index(struct store *s, int64_t mailbox_id, uint64_t changed_since,
                        store_message_cb cb, void *arg);
/* The same for the messages with uid_lo <= UID <= uid_hi (FETCH of a few). */
int store_message_range(struct store *s, int64_t mailbox_id, uint32_t uid_lo, uint32_t uid_hi,
                        store_message_cb cb, void *arg);
/* A mailbox's HIGHESTMODSEQ alone: one row, for change reports. STORE_NOTFOUND. */
int store_mailbox_modseq(struct store *s, int64_t mailbox_id, uint64_t *modseq);
/*
 * UIDs expunged from a mailbox with a modseq above since (QRESYNC VANISHED,
 * RFC 7162 §3.2.5.1), ascending, in a malloc'd array the caller frees
 * (*uids NULL when *n is 0).
 */
int store_message_vanished(struct store *s, int64_t mailbox_id, uint64_t since,
                           uint32_t **uids, size_t *n);
/* Every keyword set on some message of the mailbox, canonical and
 * space-separated ("" for none), malloc'd, for FLAGS / PERMANENTFLAGS. */
int store_mailbox_keywords(struct store *s, int64_t mailbox_id, char **out);

/* A user's quota in bytes: used, and limit (0 = unlimited). */
int store_quota_get(struct store *s, int64_t user_id, uint64_t *used, uint64_t *limit);

/*
 * Reads a message off the loop, on the libuv thread pool: with
 * STORE_FETCH_RAW the exact bytes (decompressed, NUL after them not
 * counted), with STORE_FETCH_PARSE the stored parse (mime_decode of the
 * parse cache; NULL when the message could not be parsed at delivery).
 * cb runs on the loop with STORE_OK, STORE_NOTFOUND or STORE_ERROR; the
 * caller owns data (free) and parse (mime_free), which are NULL when not
 * asked for or on failure. Needs store_start_writer (the loop).
 */
#define STORE_FETCH_RAW 1u
#define STORE_FETCH_PARSE 2u
struct mime_message;
typedef void (*store_fetch_cb)(void *arg, int result, char *data, size_t len,
                               struct mime_message *parse);
int store_fetch(struct store *s, int64_t mailbox_id, uint32_t uid, unsigned what,
                store_fetch_cb cb, void *arg);

/*
 * A message read in pieces, for responses too big to hold at once (POP3
 * RETR): store_stream_read inflates the next piece of at most
 * STORE_STREAM_PIECE bytes on the thread pool and hands it to cb on the
 * loop (data valid until the next read or the close). After the piece for
 * which store_stream_ended() is true, the message is complete. One read at
 * a time. STORE_NOTFOUND when the message (or, later, its stored bytes)
 * was expunged meanwhile; STORE_ERROR on a read or a corrupt blob. Memory
 * per stream stays under 200 KB whatever the message size.
 * store_stream_close may be called with a read in flight: its callback
 * then never runs. Needs store_start_writer (the loop).
 */
#define STORE_STREAM_PIECE (128 * 1024)
struct store_stream;
typedef void (*store_stream_cb)(void *arg, int result, const char *data, size_t len);
int store_stream_open(struct store *s, int64_t mailbox_id, uint32_t uid,
                      struct store_stream **out);
int store_stream_read(struct store_stream *st, store_stream_cb cb, void *arg);
bool store_stream_ended(const struct store_stream *st);
/* The message's size in bytes, known after the first read. */
uint64_t store_stream_size(const struct store_stream *st);
void store_stream_close(struct store_stream **st);

/*
 * SEARCH (RFC 3501 / RFC 9051 §6.4.4), one key at a time: the IMAP side
 * combines the UID lists (AND, OR, NOT, sequence sets). Both calls are
 * synchronous and may run on any thread, a libuv pool thread included (they
 * take a pool reader connection, never the loop's reader); they may take a
 * while on a large mailbox, so petreld calls them off the loop. They answer
 * the UIDs of the matching messages of the mailbox, ascending, in a malloc'd
 * array the caller frees (*uids NULL when *n is 0), and STORE_OK,
 * STORE_NOTFOUND (no such mailbox), STORE_INVALID, STORE_BUSY (store_close
 * has begun) or STORE_ERROR.
 *
 * Text keys match a substring case-insensitively: needle and text are both
 * folded with mime_casefold (Unicode simple case folding, so "GRÜẞE"
 * finds "Grüße" but "SS" does not find "ß") and compared byte for byte;
 * '%', '_', '*' and '"' are ordinary characters. The text is what
 * mime_text_extract makes of the message: header values unfolded with
 * RFC 2047 words decoded, body parts transfer-decoded and
 * converted to UTF-8, HTML without markup, attached messages included in
 * the body; at most MIME_TEXT_CAP (1 MiB) of header and body text per
 * message is searchable. Every message committed before the call is
 * searched, also one whose text the indexer has not reached yet (its text
 * is then extracted during the search, with the same rules).
 *
 * STORE_TEXT_BODY   the body text (BODY);
 * STORE_TEXT_TEXT   the header text or the body text (TEXT);
 * STORE_TEXT_HEADER the value of every field named header (any case) of
 *                   the message's own header (HEADER, and FROM, TO, CC,
 *                   BCC, SUBJECT as header "from" ...); an empty needle
 *                   matches every message that has such a field. A name no
 *                   field can have (empty, with ':', space or 8-bit) matches
 *                   nothing.
 * An empty needle for BODY or TEXT matches every message.
 */
enum store_text_field { STORE_TEXT_BODY, STORE_TEXT_TEXT, STORE_TEXT_HEADER };
#define STORE_SEARCH_NEEDLE_MAX 4096   /* bytes of one needle; STORE_INVALID above */
int store_search_text(struct store *s, int64_t mailbox_id, enum store_text_field field,
                      const char *header, const char *needle, uint32_t **uids, size_t *n);

/*
 * SENTBEFORE / SENTON / SENTSINCE: compares the date written in the
 * message's Date: field (day, month, year; time and zone ignored, RFC 3501
 * §6.4.4) with day, unix seconds of 00:00 UTC of a date (other values are
 * taken as the day they fall in). A message without a Date: field, or with
 * one that cannot be read, matches none of the three.
 */
enum store_sent_op { STORE_SENT_BEFORE, STORE_SENT_ON, STORE_SENT_SINCE };
int store_search_sent(struct store *s, int64_t mailbox_id, enum store_sent_op op, int64_t day,
                      uint32_t **uids, size_t *n);

/*
 * The same for up to STORE_FETCH_MANY_MAX messages in one pool job (FETCH
 * 1:* ENVELOPE): cb runs once per UID, in the order given, each result as
 * store_fetch's (the caller owns data and parse), then done (may be NULL)
 * once with STORE_OK or STORE_ERROR.
 */
#define STORE_FETCH_MANY_MAX 1024
typedef void (*store_fetch_many_cb)(void *arg, uint32_t uid, int result, char *data, size_t len,
                                    struct mime_message *parse);
int store_fetch_many(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                     unsigned what, store_fetch_many_cb cb, store_done_cb done, void *arg);

/* Mailbox writes; done gets STORE_OK or the result named. */
/* special_use: "" / NULL or one RFC 6154 attribute (\All \Archive \Drafts
 * \Flagged \Junk \Sent \Trash), else STORE_INVALID. Parents are not created.
 * STORE_EXISTS. The mailbox gets a UIDVALIDITY never given before in this
 * database (max(now, last given + 1)). */
int store_mailbox_create(struct store *s, int64_t user_id, const char *name,
                         const char *special_use, store_done_cb done, void *arg);
/* Expunges its messages (blobs, quota) and deletes it; children stay.
 * INBOX: STORE_INVALID. STORE_NOTFOUND. */
int store_mailbox_delete(struct store *s, int64_t user_id, const char *name,
                         store_done_cb done, void *arg);
/* Renames a mailbox and its children ("old/..."); UIDVALIDITY is kept.
 * STORE_NOTFOUND, STORE_EXISTS (the new name or a renamed child's),
 * STORE_INVALID (into itself, or to INBOX). RFC 3501 §6.3.5: renaming INBOX
 * creates the new mailbox, moves every INBOX message into it (same UIDs,
 * new UIDVALIDITY) and leaves INBOX empty (tombstones written); INBOX's
 * children are not renamed. */
int store_mailbox_rename(struct store *s, int64_t user_id, const char *old_name,
                         const char *new_name, store_done_cb done, void *arg);
/* Subscribes (on) or unsubscribes a name, which need not exist. Idempotent. */
int store_mailbox_subscribe(struct store *s, int64_t user_id, const char *name, bool on,
                            store_done_cb done, void *arg);

/*
 * APPEND: stores data in the user's mailbox like a delivery (one blob by
 * SHA-256, parse kept), flags canonicalised. data must stay valid until cb.
 * cb gets STORE_OK with the mailbox's UIDVALIDITY and the new UID (UIDPLUS
 * APPENDUID), STORE_NOTFOUND (no such mailbox: TRYCREATE), STORE_QUOTA,
 * STORE_INVALID (bad flags) or STORE_ERROR.
 */
struct store_append {
    int64_t user_id;
    const char *mailbox;
    const char *data;
    size_t len;
    const char *flags;       /* NULL or "" for none */
    int64_t internal_date;   /* unix seconds */
};
typedef void (*store_append_cb)(void *arg, int result, uint32_t uidvalidity, uint32_t uid);
int store_append(struct store *s, const struct store_append *a, store_append_cb cb, void *arg);

/*
 * STORE / UID STORE. For each existing message among uids (others are
 * ignored): with unchangedsince > 0 (CONDSTORE, RFC 7162 §3.1.3) a message
 * whose modseq is above it is not touched and reported in failed;
 * otherwise the flags are added, removed or replaced and, if they changed,
 * the message gets modseq = ++highestmodseq of the mailbox and is reported
 * in changed (ascending UIDs). A message whose flags would not change is in
 * neither list.
 */
enum store_flags_mode { STORE_FLAGS_ADD, STORE_FLAGS_REMOVE, STORE_FLAGS_REPLACE };
struct store_flag_change {
    uint32_t uid;
    uint64_t modseq;
    const char *flags;   /* canonical */
};
struct store_flags_result {
    const struct store_flag_change *changed;
    size_t n_changed;
    const uint32_t *failed;
    size_t n_failed;
};
typedef void (*store_flags_cb)(void *arg, int result, const struct store_flags_result *r);
int store_flags(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                enum store_flags_mode mode, const char *flags, uint64_t unchangedsince,
                store_flags_cb cb, void *arg);

/*
 * EXPUNGE (uids NULL: every \Deleted message) or UID EXPUNGE (only the
 * \Deleted ones among uids). Expunged messages are deleted, leave a
 * tombstone (mailbox, uid, modseq) for QRESYNC, drop their blob reference
 * (the blob goes at 0) and their size from the user's quota. All expunged
 * UIDs of one call share modseq = ++highestmodseq (0 when none).
 */
typedef void (*store_expunge_cb)(void *arg, int result, const uint32_t *uids, size_t n,
                                 uint64_t modseq);
int store_expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                  store_expunge_cb cb, void *arg);

/* The same for exactly the existing messages among uids, \Deleted or not
 * (POP3 QUIT: the messages marked with DELE, in one transaction). */
int store_expunge_uids(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n_uids,
                       store_expunge_cb cb, void *arg);

/*
 * COPY / MOVE (RFC 6851) between two mailboxes of the same user
 * (STORE_INVALID otherwise). The existing messages among uids are copied in
 * ascending UID order to new consecutive UIDs in dst, flags and internal
 * date kept, blob shared; cb gets dst's UIDVALIDITY and the mapping
 * src_uids[i] -> dst_uids[i] (UIDPLUS COPYUID). A copy that would take the
 * user over quota stores nothing (STORE_QUOTA). Move also expunges the
 * sources in the same transaction (tombstones, one modseq) and does not
 * check quota (usage does not grow).
 */
typedef void (*store_copy_cb)(void *arg, int result, uint32_t uidvalidity,
                              const uint32_t *src_uids, const uint32_t *dst_uids, size_t n);
int store_copy(struct store *s, int64_t src_mailbox_id, const uint32_t *uids, size_t n_uids,
               int64_t dst_mailbox_id, bool move, store_copy_cb cb, void *arg);

/* ------------------------------------------------------------------ queue */

/*
 * The outbound queue: one row per remote recipient of a delivery
 * (store_deliver's remote list), due at once, each holding a reference on
 * the message's blob (docs/store.md "The outbound queue").
 *
 * Administration (petrelctl), synchronous: list on the reader, del and
 * flush on the admin connection, STORE_NOTFOUND for an unknown id.
 */
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
    bool warned;             /* a delay notice went out already */
};
typedef void (*store_queue_cb)(void *arg, const struct store_queue_info *q);
/* Every row, by id; strings valid during the callback. */
int store_queue_list(struct store *s, store_queue_cb cb, void *arg);
/* Deletes a row and drops its blob reference (the blob goes at 0). */
int store_queue_del(struct store *s, int64_t id);
/* id 0: every entry. Makes the entries due now (an overdue one keeps its time). */
int store_queue_flush(struct store *s, int64_t id);

/*
 * The queue runner (petreld). store_queue_due, store_queue_read and
 * store_queue_update run off the loop and call back on it, like store_fetch
 * (reads on the thread pool) and store_expunge (writes through the writer,
 * group commit, callback after the commit is durable); they need
 * store_start_writer and answer STORE_BUSY without it or once store_close
 * has begun, STORE_INVALID for bad arguments (no callback runs then).
 */

/* One due recipient of the outbound queue. Strings valid during the callback. */
struct store_queue_item {
    int64_t id;
    int64_t blob_id;
    const char *mail_from;   /* "" = null sender */
    const char *rcpt;
    const char *domain;      /* lowercase */
    int64_t created;
    unsigned attempts;
    bool warned;             /* a delay notice went out already */
    uint64_t size;           /* the message's bytes */
};
/*
 * Up to max due rows (next_attempt <= now), ordered by domain, blob_id, id, skipping the
 * ids in busy[0..n_busy) (in flight in the runner). cb runs once per row on the loop,
 * then done(arg, result, n_rows) once (done may be NULL); on STORE_ERROR no row is
 * given. max above STORE_QUEUE_DUE_MAX counts as STORE_QUEUE_DUE_MAX. The rows are
 * read in one snapshot taken on the pool: keep an id in busy until the
 * store_queue_update of its attempt has called back, or a read started meanwhile may
 * give it again.
 */
#define STORE_QUEUE_DUE_MAX 10000
typedef void (*store_queue_item_cb)(void *arg, const struct store_queue_item *q);
int store_queue_due(struct store *s, int64_t now, unsigned max, const int64_t *busy, size_t n_busy,
                    store_queue_item_cb cb, void (*done)(void *arg, int result, unsigned n), void *arg);
/* The earliest next_attempt of the queue (INT64_MAX when empty), synchronous, cheap (index). */
int store_queue_next(struct store *s, int64_t *when);
/* The message bytes of a queued blob, read and inflated on the pool (like store_fetch). cb gets
 * malloc'd data it owns, or result != STORE_OK (STORE_NOTFOUND when the blob is gone). */
typedef void (*store_blob_cb)(void *arg, int result, char *data, size_t len);
int store_queue_read(struct store *s, int64_t blob_id, store_blob_cb cb, void *arg);
/* Outcomes of delivery attempts, applied in one transaction through the writer:
 * STORE_QUEUE_DONE deletes the row (delivered, or failed for good and bounced: the runner
 * has already handed the bounce to store_deliver); STORE_QUEUE_RETRY sets attempts+1,
 * last_error, next_attempt; STORE_QUEUE_WARNED sets warned=1 (with RETRY's changes too when
 * combined, RETRY|WARNED; a later RETRY alone keeps it). A row deleted meanwhile
 * (petrelctl queue del) is skipped, not an error. Blob references drop for deleted rows as in store_queue_del.
 * DONE with other bits: the row is deleted. what 0 or an unknown bit, id <= 0, n 0 or
 * above STORE_QUEUE_UPDATE_MAX: STORE_INVALID. cb (may be NULL) gets STORE_OK or
 * STORE_ERROR (nothing applied). o and its strings are copied before the call returns. */
#define STORE_QUEUE_DONE 1u
#define STORE_QUEUE_RETRY 2u
#define STORE_QUEUE_WARNED 4u
#define STORE_QUEUE_ERROR_MAX 1000   /* bytes of last_error kept, cut at a UTF-8 boundary */
#define STORE_QUEUE_UPDATE_MAX 100000
struct store_queue_outcome {
    int64_t id;
    unsigned what;           /* the bits above */
    int64_t next_attempt;    /* RETRY */
    const char *last_error;  /* RETRY: the reply or reason, at most 1000 bytes kept; NULL = "" */
};
int store_queue_update(struct store *s, const struct store_queue_outcome *o, size_t n,
                       store_done_cb cb, void *arg);

#endif
