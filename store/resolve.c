/*
 * resolve.c — envelope recipient to local users and remote addresses, on
 * the reader connection.
 *
 * Order: exact user; exact alias; plus-address (user+tag -> user, when
 * user+tag is neither); catch-all "@domain". Alias targets are followed to
 * STORE_ALIAS_DEPTH levels; a local target that is neither a user nor an
 * alias (deleted meanwhile) is skipped. Catch-all and plus-addressing apply
 * to the envelope recipient only, never to alias targets.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "store/store-int.h"

struct resolve {
    sqlite3 *db;
    sqlite3_stmt *user;    /* id, quota, used by address */
    sqlite3_stmt *alias;   /* targets of an alias */
    struct store_rcpt *out;
    int err;
};

static void add_user(struct resolve *r, int64_t id, uint64_t quota, uint64_t used)
{
    struct store_rcpt *o = r->out;
    for (unsigned i = 0; i < o->n_users; i++)
        if (o->user_ids[i] == id)
            return;
    if (o->n_users == STORE_MAX_EXPANSION) {
        o->truncated = true;
        return;
    }
    o->user_ids[o->n_users] = id;
    o->quota_free[o->n_users] = quota == 0 ? UINT64_MAX : used >= quota ? 0 : quota - used;
    o->quota[o->n_users] = quota == 0 ? UINT64_MAX : quota;
    o->n_users++;
}

static void add_remote(struct resolve *r, const char *addr)
{
    struct store_rcpt *o = r->out;
    size_t cap = sizeof(o->remote) / sizeof(o->remote[0]);
    for (unsigned i = 0; i < o->n_remote; i++)
        if (strcasecmp(o->remote[i], addr) == 0)
            return;
    if (o->n_remote == cap) {
        o->truncated = true;
        return;
    }
    snprintf(o->remote[o->n_remote++], sizeof(o->remote[0]), "%s", addr);
}

/* Adds addr if it is a user. Returns 1 if it was, 0 if not, -1 on error. */
static int try_user(struct resolve *r, const char *addr)
{
    sqlite3_reset(r->user);
    sqlite3_bind_text(r->user, 1, addr, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(r->user);
    if (rc == SQLITE_ROW) {
        add_user(r, sqlite3_column_int64(r->user, 0),
                 (uint64_t)sqlite3_column_int64(r->user, 1),
                 (uint64_t)sqlite3_column_int64(r->user, 2));
    } else if (rc != SQLITE_DONE) {
        store_db_log(r->db, "resolve_user");
        r->err = 1;
    }
    sqlite3_reset(r->user);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static bool is_local_domain(struct resolve *r, const char *addr)
{
    return store_domain_id(r->db, store_addr_domain(addr)) > 0;
}

/* Expands alias addr into r->out. Returns 1 if addr is an alias, 0 if not. */
static int expand(struct resolve *r, const char *addr, int depth)
{
    /* The statement is shared across recursion levels: copy the targets out
     * before following them. */
    char targets[64][STORE_ADDR_MAX + 1];
    unsigned n = 0;
    bool found = false;
    sqlite3_reset(r->alias);
    sqlite3_bind_text(r->alias, 1, addr, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(r->alias)) == SQLITE_ROW) {
        found = true;
        if (n < sizeof(targets) / sizeof(targets[0]))
            snprintf(targets[n++], sizeof(targets[0]), "%s", store_col_text(r->alias, 0));
        else
            r->out->truncated = true;
    }
    if (rc != SQLITE_DONE) {
        store_db_log(r->db, "resolve_alias");
        r->err = 1;
    }
    sqlite3_reset(r->alias);
    for (unsigned i = 0; i < n && !r->err; i++) {
        if (!is_local_domain(r, targets[i])) {
            add_remote(r, targets[i]);
            continue;
        }
        if (try_user(r, targets[i]) != 0)
            continue;
        if (depth + 1 >= STORE_ALIAS_DEPTH) {
            r->out->truncated = true;
            continue;
        }
        expand(r, targets[i], depth + 1);
    }
    return found ? 1 : 0;
}

/* Exact user, else exact alias. Returns 1 if addr took the mail. */
static int take(struct resolve *r, const char *addr)
{
    int u = try_user(r, addr);
    if (u != 0)
        return u;
    return expand(r, addr, 0);
}

int store_resolve_rcpt(struct store *s, const char *address, struct store_rcpt *out)
{
    memset(out, 0, sizeof(*out));
    char addr[STORE_ADDR_MAX + 1];
    if (store_addr_norm(address, false, addr, sizeof(addr)) != STORE_OK)
        return STORE_INVALID;
    const char *domain = store_addr_domain(addr);
    struct resolve r = { .db = s->rd, .out = out };
    int64_t did = store_domain_id(s->rd, domain);
    if (did <= 0)
        return did < 0 ? STORE_ERROR : STORE_NOTFOUND;
    r.user = store_db_prepare(s->rd, "SELECT id, quota, used FROM users WHERE address = ?1");
    r.alias = store_db_prepare(s->rd, "SELECT target FROM aliases WHERE address = ?1 ORDER BY id");
    if (!r.user || !r.alias) {
        sqlite3_finalize(r.user);
        sqlite3_finalize(r.alias);
        return STORE_ERROR;
    }
    int taken = take(&r, addr);
    if (!taken && !r.err) {
        /* Plus-addressing: "user+tag@d" goes to "user@d". */
        const char *plus = strchr(addr, '+');
        size_t base = plus ? (size_t)(plus - addr) : 0;
        if (base > 0) {
            char alt[STORE_ADDR_MAX + 1];
            snprintf(alt, sizeof(alt), "%.*s@%s", (int)base, addr, domain);
            taken = take(&r, alt);
        }
    }
    if (!taken && !r.err) {
        char catchall[STORE_ADDR_MAX + 2];
        snprintf(catchall, sizeof(catchall), "@%s", domain);
        taken = expand(&r, catchall, 0);
    }
    sqlite3_finalize(r.user);
    sqlite3_finalize(r.alias);
    if (r.err)
        return STORE_ERROR;
    if (out->truncated) {
        char buf[STORE_ADDR_MAX + 8];
        log_event(PLOG_WARN, 0, "event=resolve_truncated rcpt=%s users=%u remote=%u",
                  log_value(addr, buf, sizeof(buf)), out->n_users, out->n_remote);
    }
    return out->n_users || out->n_remote ? STORE_OK : STORE_NOTFOUND;
}
