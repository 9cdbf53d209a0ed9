/*
 * admin.c — domains, users and aliases: synchronous writes on the admin
 * connection (one transaction each) and listings on the reader.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

/* Mailboxes every new user gets (RFC 6154 special-use attributes). */
static const struct {
    const char *name;
    const char *special_use;
} default_mailboxes[] = {
    { "INBOX", "" },
    { "Sent", "\\Sent" },
    { "Drafts", "\\Drafts" },
    { "Trash", "\\Trash" },
    { "Junk", "\\Junk" },
    { "Archive", "\\Archive" },
};

#define LOOP_WALK_MAX 4096 /* aliases visited by one loop check */

/* ---------------------------------------------------------------- helpers */

/* Runs a statement that returns at most one integer. Returns the integer,
 * 0 when there is no row, -1 on error. */
static int64_t query_id(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = store_db_prepare(db, sql);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int64_t id = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE) {
        store_db_log(db, "query");
        id = -1;
    }
    sqlite3_finalize(st);
    return id;
}

int64_t store_domain_id(sqlite3 *db, const char *domain)
{
    return query_id(db, "SELECT id FROM domains WHERE name = lower(?1)", domain);
}

int64_t store_user_id(sqlite3 *db, const char *norm)
{
    return query_id(db, "SELECT id FROM users WHERE address = ?1", norm);
}

bool store_alias_exists(sqlite3 *db, const char *norm)
{
    return query_id(db, "SELECT 1 FROM aliases WHERE address = ?1 LIMIT 1", norm) > 0;
}

/* Executes sql with text ?1 (and integer ?2 if i2 != 0). Returns the number
 * of changed rows, or -1. */
static int exec_bind(sqlite3 *db, const char *sql, const char *t1, int64_t i2)
{
    sqlite3_stmt *st = store_db_prepare(db, sql);
    if (!st)
        return -1;
    if (t1)
        sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    if (i2)
        sqlite3_bind_int64(st, 2, i2);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_db_log(db, "exec");
        return -1;
    }
    return sqlite3_changes(db);
}

static void lower_copy(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* The domain id a list is limited to: 0 (all) when domain is NULL. */
static int domain_filter(struct store *s, const char *domain, int64_t *did)
{
    *did = 0;
    if (!domain)
        return STORE_OK;
    if (!store_domain_valid(domain))
        return STORE_INVALID;
    *did = store_domain_id(s->rd, domain);
    if (*did <= 0)
        return *did < 0 ? STORE_ERROR : STORE_NOTFOUND;
    return STORE_OK;
}

/* ---------------------------------------------------------------- domains */

int store_domain_add(struct store *s, const char *domain)
{
    if (!store_domain_valid(domain))
        return STORE_INVALID;
    char name[STORE_DOMAIN_MAX + 1];
    lower_copy(domain, name, sizeof(name));
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    int64_t id = store_domain_id(s->ad, name);
    if (id < 0)
        r = STORE_ERROR;
    else if (id > 0)
        r = STORE_EXISTS;
    else if (exec_bind(s->ad, "INSERT INTO domains(name, created) VALUES (?1, ?2)",
                       name, (int64_t)time(NULL)) != 1)
        r = STORE_ERROR;
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=domain_add domain=%s", name);
    return r;
}

/*
 * Removes alias rows whose target is a local address that is neither a user
 * nor an alias any more, until none is left: deleting a user, a domain or an
 * alias can leave an alias with no target, and the aliases naming that one
 * would then point at nothing (the address refuses mail instead of reaching
 * its catch-all). Each round removes at least one row, so this ends.
 */
static int prune_aliases(sqlite3 *db)
{
    sqlite3_stmt *st = store_db_prepare(db,
        "DELETE FROM aliases WHERE EXISTS (SELECT 1 FROM domains d"
        "   WHERE d.name = lower(substr(aliases.target, instr(aliases.target, '@') + 1)))"
        " AND NOT EXISTS (SELECT 1 FROM users u WHERE u.address = aliases.target)"
        " AND NOT EXISTS (SELECT 1 FROM aliases a WHERE a.address = aliases.target)");
    if (!st)
        return STORE_ERROR;
    int r = STORE_OK;
    for (;;) {
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            store_db_log(db, "alias_prune");
            r = STORE_ERROR;
            break;
        }
        if (sqlite3_changes(db) == 0)
            break;
    }
    sqlite3_finalize(st);
    return r;
}

/*
 * Deletes a user inside the caller's transaction: its messages (blob
 * refcounts decremented, blobs at 0 removed with their parses), its
 * mailboxes, and alias targets naming it, so no alias silently points at
 * nobody.
 */
static int user_delete_tx(sqlite3 *db, int64_t uid)
{
    static const char *const steps[] = {
        ("UPDATE blobs SET refcount = refcount - (SELECT count(*) FROM messages m"
         "   JOIN mailboxes x ON m.mailbox_id = x.id"
         "   WHERE x.user_id = ?2 AND m.blob_id = blobs.id)"
         " WHERE id IN (SELECT m.blob_id FROM messages m"
         "   JOIN mailboxes x ON m.mailbox_id = x.id WHERE x.user_id = ?2)"),
        ("DELETE FROM messages WHERE mailbox_id IN"
         " (SELECT id FROM mailboxes WHERE user_id = ?2)"),
        "DELETE FROM blobs WHERE refcount <= 0",
        "DELETE FROM aliases WHERE target = (SELECT address FROM users WHERE id = ?2)",
        "DELETE FROM users WHERE id = ?2",
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (exec_bind(db, steps[i], NULL, uid) < 0)
            return STORE_ERROR;
    return prune_aliases(db);
}

int store_domain_del(struct store *s, const char *domain)
{
    if (!store_domain_valid(domain))
        return STORE_INVALID;
    char name[STORE_DOMAIN_MAX + 1];
    lower_copy(domain, name, sizeof(name));
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    int64_t did = store_domain_id(s->ad, name);
    if (did <= 0) {
        r = did < 0 ? STORE_ERROR : STORE_NOTFOUND;
        return store_admin_end(s, r);
    }
    sqlite3_stmt *st = store_db_prepare(s->ad, "SELECT id FROM users WHERE domain_id = ?1");
    if (!st)
        return store_admin_end(s, STORE_ERROR);
    sqlite3_bind_int64(st, 1, did);
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = realloc(ids, cap * sizeof(*p));
            if (!p) {
                r = STORE_ERROR;
                break;
            }
            ids = p;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = STORE_ERROR;
    sqlite3_finalize(st);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        r = user_delete_tx(s->ad, ids[i]);
    free(ids);
    /* Targets in other domains that pointed into this one would turn remote. */
    if (r == STORE_OK
        && (exec_bind(s->ad, "DELETE FROM aliases WHERE lower(substr(target,"
                             " -length(?1) - 1)) = '@' || ?1", name, 0) < 0
            || exec_bind(s->ad, "DELETE FROM domains WHERE id = ?2", NULL, did) != 1
            || prune_aliases(s->ad) != STORE_OK))
        r = STORE_ERROR;
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=domain_del domain=%s users=%zu", name, n);
    return r;
}

bool store_domain_is_local(struct store *s, const char *domain)
{
    if (!store_domain_valid(domain))
        return false;
    return store_domain_id(s->rd, domain) > 0;
}

int store_domain_list(struct store *s, store_domain_cb cb, void *arg)
{
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT name, (SELECT count(*) FROM users u WHERE u.domain_id = d.id),"
        " (SELECT count(DISTINCT address) FROM aliases a WHERE a.domain_id = d.id)"
        " FROM domains d ORDER BY name");
    if (!st)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_domain_info d = {
            .name = store_col_text(st, 0),
            .users = (unsigned)sqlite3_column_int64(st, 1),
            .aliases = (unsigned)sqlite3_column_int64(st, 2),
        };
        cb(arg, &d);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "domain_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* ------------------------------------------------------------------ users */

int store_user_add(struct store *s, const char *address, const char *pw_hash,
                   const char *scram_secret, uint64_t quota)
{
    char addr[STORE_ADDR_MAX + 1];
    struct store_user *u = NULL;
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    if (!pw_hash)
        pw_hash = "";
    if (!scram_secret)
        scram_secret = "";
    if (strlen(pw_hash) >= sizeof(u->pw_hash) || strlen(scram_secret) >= sizeof(u->scram_secret)
        || quota > INT64_MAX)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    int64_t did = store_domain_id(s->ad, store_addr_domain(addr));
    int64_t existing = did > 0 ? store_user_id(s->ad, addr) : 0;
    if (did < 0 || existing < 0)
        r = STORE_ERROR;
    else if (did == 0)
        r = STORE_NOTFOUND;
    else if (existing > 0 || store_alias_exists(s->ad, addr))
        r = STORE_EXISTS;
    if (r != STORE_OK)
        return store_admin_end(s, r);

    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *st = store_db_prepare(s->ad,
        "INSERT INTO users(address, local, domain_id, pw_hash, scram_secret, quota, created)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st)
        return store_admin_end(s, STORE_ERROR);
    sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, addr, (int)(store_addr_domain(addr) - 1 - addr), SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, did);
    sqlite3_bind_text(st, 4, pw_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, scram_secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)quota);
    sqlite3_bind_int64(st, 7, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        store_db_log(s->ad, "user_add");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    int64_t uid = sqlite3_last_insert_rowid(s->ad);

    st = r == STORE_OK ? store_db_prepare(s->ad,
        "INSERT INTO mailboxes(user_id, name, special_use, uidvalidity)"
        " VALUES (?1, ?2, ?3, ?4)") : NULL;
    if (r == STORE_OK && !st)
        r = STORE_ERROR;
    size_t n_default = sizeof(default_mailboxes) / sizeof(default_mailboxes[0]);
    for (size_t i = 0; r == STORE_OK && i < n_default; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, uid);
        sqlite3_bind_text(st, 2, default_mailboxes[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, default_mailboxes[i].special_use, -1, SQLITE_STATIC);
        /* RFC 3501 §2.3.1.1: a value never given before (db.c). */
        uint32_t uidvalidity = store_next_uidvalidity(s->ad);
        sqlite3_bind_int64(st, 4, uidvalidity);
        if (uidvalidity == 0 || sqlite3_step(st) != SQLITE_DONE
            || exec_bind(s->ad, "INSERT OR IGNORE INTO subscriptions(name, user_id)"
                         " VALUES (?1, ?2)", default_mailboxes[i].name, uid) < 0) {
            store_db_log(s->ad, "mailbox_add");
            r = STORE_ERROR;
        }
    }
    sqlite3_finalize(st);
    r = store_admin_end(s, r);
    if (r == STORE_OK) {
        char buf[STORE_ADDR_MAX + 8];
        log_event(PLOG_INFO, 0, "event=user_add user=%s", log_value(addr, buf, sizeof(buf)));
    }
    return r;
}

int store_user_del(struct store *s, const char *address)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int64_t uid = store_user_id(s->ad, addr);
    int r = uid < 0 ? STORE_ERROR : uid == 0 ? STORE_NOTFOUND : user_delete_tx(s->ad, uid);
    r = store_admin_end(s, r);
    if (r == STORE_OK) {
        char buf[STORE_ADDR_MAX + 8];
        log_event(PLOG_INFO, 0, "event=user_del user=%s", log_value(addr, buf, sizeof(buf)));
    }
    return r;
}

int store_user_passwd(struct store *s, const char *address, const char *pw_hash,
                      const char *scram_secret)
{
    char addr[STORE_ADDR_MAX + 1];
    struct store_user *u = NULL;
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK || !pw_hash
        || strlen(pw_hash) >= sizeof(u->pw_hash)
        || (scram_secret && strlen(scram_secret) >= sizeof(u->scram_secret)))
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    sqlite3_stmt *st = store_db_prepare(s->ad,
        "UPDATE users SET pw_hash = ?2, scram_secret = ?3 WHERE address = ?1");
    if (!st)
        return store_admin_end(s, STORE_ERROR);
    sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pw_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, scram_secret ? scram_secret : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        store_db_log(s->ad, "user_passwd");
        r = STORE_ERROR;
    } else if (sqlite3_changes(s->ad) == 0) {
        r = STORE_NOTFOUND;
    }
    sqlite3_finalize(st);
    return store_admin_end(s, r);
}

int store_user_set_quota(struct store *s, const char *address, uint64_t quota)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK || quota > INT64_MAX)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    sqlite3_stmt *st = store_db_prepare(s->ad, "UPDATE users SET quota = ?2 WHERE address = ?1");
    if (!st)
        return store_admin_end(s, STORE_ERROR);
    sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)quota);
    if (sqlite3_step(st) != SQLITE_DONE) {
        store_db_log(s->ad, "user_quota");
        r = STORE_ERROR;
    } else if (sqlite3_changes(s->ad) == 0) {
        r = STORE_NOTFOUND;
    }
    sqlite3_finalize(st);
    return store_admin_end(s, r);
}

#define USER_COLUMNS \
    "SELECT u.id, u.address, u.pw_hash, u.scram_secret, u.quota, u.used," \
    " (SELECT count(*) FROM messages m JOIN mailboxes x ON m.mailbox_id = x.id" \
    "  WHERE x.user_id = u.id) FROM users u"

static void user_row(sqlite3_stmt *st, struct store_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(st, 0);
    snprintf(u->address, sizeof(u->address), "%s", store_col_text(st, 1));
    snprintf(u->pw_hash, sizeof(u->pw_hash), "%s", store_col_text(st, 2));
    snprintf(u->scram_secret, sizeof(u->scram_secret), "%s", store_col_text(st, 3));
    u->quota = (uint64_t)sqlite3_column_int64(st, 4);
    u->used = (uint64_t)sqlite3_column_int64(st, 5);
    u->messages = (unsigned)sqlite3_column_int64(st, 6);
}

int store_user_get(struct store *s, const char *address, struct store_user *out)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    sqlite3_stmt *st = store_db_prepare(s->rd, USER_COLUMNS " WHERE u.address = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int r = STORE_OK;
    if (rc == SQLITE_ROW)
        user_row(st, out);
    else if (rc == SQLITE_DONE)
        r = STORE_NOTFOUND;
    else {
        store_db_log(s->rd, "user_get");
        r = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return r;
}

int store_user_list(struct store *s, const char *domain, store_user_cb cb, void *arg)
{
    int64_t did;
    int r = domain_filter(s, domain, &did);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *st = store_db_prepare(s->rd, USER_COLUMNS
        " WHERE ?1 = 0 OR u.domain_id = ?1 ORDER BY u.address");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, did);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_user u;
        user_row(st, &u);
        cb(arg, &u);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "user_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* ---------------------------------------------------------------- aliases */

struct target_list {
    char (*addr)[STORE_ADDR_MAX + 1];
    size_t n;
};

/* Splits "a@x, b@y" into normalised addresses. Empty items are skipped;
 * at least one target is required. */
static int parse_targets(const char *targets, struct target_list *out)
{
    out->addr = NULL;
    out->n = 0;
    if (!targets)
        return STORE_INVALID;
    size_t cap = 1;
    for (const char *p = targets; *p; p++)
        cap += *p == ',';
    if (cap > STORE_ALIAS_TARGETS)
        return STORE_INVALID;
    out->addr = calloc(cap, sizeof(*out->addr));
    if (!out->addr)
        return STORE_ERROR;
    const char *p = targets;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > p) {
            char item[STORE_ADDR_MAX + 2];
            size_t len = (size_t)(e - p);
            if (len > STORE_ADDR_MAX)
                return STORE_INVALID;
            memcpy(item, p, len);
            item[len] = '\0';
            if (store_addr_norm(item, false, out->addr[out->n], sizeof(out->addr[0])) != STORE_OK)
                return STORE_INVALID;
            out->n++;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return out->n ? STORE_OK : STORE_INVALID;
}

/*
 * Would following local alias targets from alias start reach start again?
 * Walks the alias graph as it is inside the current transaction (new
 * targets included). Returns STORE_OK, STORE_LOOP or STORE_ERROR.
 */
static int loop_check(sqlite3 *db, const char *start)
{
    sqlite3_stmt *st = store_db_prepare(db, "SELECT target FROM aliases WHERE address = ?1");
    if (!st)
        return STORE_ERROR;
    char (*seen)[STORE_ADDR_MAX + 1] = malloc(LOOP_WALK_MAX * sizeof(*seen));
    if (!seen) {
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    size_t n = 0, next = 0;
    int r = STORE_OK;
    snprintf(seen[n++], sizeof(seen[0]), "%s", start);
    /* Breadth-first: seen[next..n) are aliases whose targets are not read yet. */
    while (r == STORE_OK && next < n) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, seen[next++], -1, SQLITE_TRANSIENT);
        int rc;
        while (r == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = store_col_text(st, 0);
            if (strcasecmp(t, start) == 0) {
                r = STORE_LOOP;
                break;
            }
            bool known = false;
            for (size_t i = 0; i < n && !known; i++)
                known = strcasecmp(seen[i], t) == 0;
            if (known)
                continue;
            if (n == LOOP_WALK_MAX) {
                r = STORE_INVALID;
                break;
            }
            snprintf(seen[n++], sizeof(seen[0]), "%s", t);
        }
    }
    sqlite3_finalize(st);
    free(seen);
    return r;
}

int store_alias_add(struct store *s, const char *address, const char *targets)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, true, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    struct target_list tl;
    int r = parse_targets(targets, &tl);
    if (r != STORE_OK) {
        free(tl.addr);
        return r;
    }
    if (store_admin_begin(s) != STORE_OK) {
        free(tl.addr);
        return STORE_ERROR;
    }
    int64_t did = store_domain_id(s->ad, store_addr_domain(addr));
    int64_t uid = did > 0 ? store_user_id(s->ad, addr) : 0;
    if (did < 0 || uid < 0)
        r = STORE_ERROR;
    else if (did == 0)
        r = STORE_NOTFOUND;
    else if (uid > 0)
        r = STORE_EXISTS;   /* an address is a user or an alias, not both */
    sqlite3_stmt *st = r == STORE_OK ? store_db_prepare(s->ad,
        "INSERT OR IGNORE INTO aliases(address, domain_id, target) VALUES (?1, ?2, ?3)") : NULL;
    if (r == STORE_OK && !st)
        r = STORE_ERROR;
    int added = 0;
    for (size_t i = 0; r == STORE_OK && i < tl.n; i++) {
        const char *t = tl.addr[i];
        if (strcasecmp(t, addr) == 0) {
            r = STORE_LOOP;
            break;
        }
        /* A local target must exist now: a typo would silently drop mail. */
        int64_t tdid = store_domain_id(s->ad, store_addr_domain(t));
        if (tdid < 0) {
            r = STORE_ERROR;
            break;
        }
        if (tdid > 0) {
            int64_t tuid = store_user_id(s->ad, t);
            if (tuid < 0)
                r = STORE_ERROR;
            else if (tuid == 0 && !store_alias_exists(s->ad, t))
                r = STORE_NOTFOUND;
            if (r != STORE_OK)
                break;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, did);
        sqlite3_bind_text(st, 3, t, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            store_db_log(s->ad, "alias_add");
            r = STORE_ERROR;
        } else {
            added += sqlite3_changes(s->ad);
        }
    }
    sqlite3_finalize(st);
    if (r == STORE_OK && added == 0)
        r = STORE_EXISTS;
    if (r == STORE_OK)
        r = loop_check(s->ad, addr);
    r = store_admin_end(s, r);
    free(tl.addr);
    if (r == STORE_OK) {
        char buf[STORE_ADDR_MAX + 8];
        log_event(PLOG_INFO, 0, "event=alias_add alias=%s targets=%d",
                  log_value(addr, buf, sizeof(buf)), added);
    }
    return r;
}

int store_alias_del(struct store *s, const char *address, const char *targets)
{
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, true, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    struct target_list tl = { 0 };
    int r = STORE_OK;
    if (targets && (r = parse_targets(targets, &tl)) != STORE_OK) {
        free(tl.addr);
        return r;
    }
    if (store_admin_begin(s) != STORE_OK) {
        free(tl.addr);
        return STORE_ERROR;
    }
    if (!targets) {
        int n = exec_bind(s->ad, "DELETE FROM aliases WHERE address = ?1", addr, 0);
        r = n < 0 ? STORE_ERROR : n == 0 ? STORE_NOTFOUND : STORE_OK;
    }
    for (size_t i = 0; r == STORE_OK && i < tl.n; i++) {
        sqlite3_stmt *st = store_db_prepare(s->ad,
            "DELETE FROM aliases WHERE address = ?1 AND target = ?2");
        if (!st) {
            r = STORE_ERROR;
            break;
        }
        sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tl.addr[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = STORE_ERROR;
        else if (sqlite3_changes(s->ad) == 0)
            r = STORE_NOTFOUND;
        sqlite3_finalize(st);
    }
    /* Once the alias is gone, other aliases must not point at nothing. */
    if (r == STORE_OK && prune_aliases(s->ad) != STORE_OK)
        r = STORE_ERROR;
    r = store_admin_end(s, r);
    free(tl.addr);
    if (r == STORE_OK) {
        char buf[STORE_ADDR_MAX + 8];
        log_event(PLOG_INFO, 0, "event=alias_del alias=%s", log_value(addr, buf, sizeof(buf)));
    }
    return r;
}

int store_alias_list(struct store *s, const char *domain, store_alias_cb cb, void *arg)
{
    int64_t did;
    int r = domain_filter(s, domain, &did);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT address, group_concat(target, ',') FROM"
        " (SELECT address, target FROM aliases WHERE ?1 = 0 OR domain_id = ?1"
        "  ORDER BY address, id)"
        " GROUP BY address ORDER BY address");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, did);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_alias_info a = {
            .address = store_col_text(st, 0),
            .targets = store_col_text(st, 1),
        };
        cb(arg, &a);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "alias_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}
