/*
 * dkim.c — the DKIM signing keys of the local domains (store.h "DKIM keys"):
 * synchronous writes on the admin connection, one transaction each, and
 * listings on the reader, as admin.c does for domains.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "store/store-int.h"

#define DKIM_KEY_NAME_MAX 253  /* selector._domainkey.domain, RFC 1035 §2.3.4 */
#define DOMAINKEY_LABEL "._domainkey."

static const char *const algorithms[] = { "rsa-sha256", "ed25519-sha256" };

static bool algorithm_valid(const char *a)
{
    for (size_t i = 0; a && i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (strcmp(a, algorithms[i]) == 0)
            return true;
    return false;
}

/*
 * RFC 6376 §3.1: selector = sub-domain *( "." sub-domain ), sub-domain as in
 * RFC 5321 (letters, digits, hyphens inside; 1..63 bytes), which is what
 * store_domain_valid checks for a domain; the key's DNS name must fit too.
 */
static bool selector_valid(const char *sel, const char *domain)
{
    return store_domain_valid(sel)
        && strlen(sel) + strlen(DOMAINKEY_LABEL) + strlen(domain) <= DKIM_KEY_NAME_MAX;
}

static void lower_copy(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* Checks and lowercases domain and selector into dom and sel. */
static int names_norm(const char *domain, const char *selector, char *dom, char *sel)
{
    if (!store_domain_valid(domain) || !selector || !selector_valid(selector, domain))
        return STORE_INVALID;
    lower_copy(domain, dom, STORE_DOMAIN_MAX + 1);
    lower_copy(selector, sel, STORE_DOMAIN_MAX + 1);
    return STORE_OK;
}

/* Inserts the key of domain id did inside the caller's transaction. */
static int key_insert(sqlite3 *db, int64_t did, const char *sel, const char *alg,
                      const char *pem)
{
    sqlite3_stmt *st = store_db_prepare(db,
        "INSERT INTO dkim_keys(domain_id, selector, algorithm, private_pem, created)"
        " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, did);
    sqlite3_bind_text(st, 2, sel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, alg, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return STORE_EXISTS;
    if (rc != SQLITE_DONE) {
        store_db_log(db, "dkim_key_add");
        return STORE_ERROR;
    }
    return STORE_OK;
}

int store_dkim_key_add(struct store *s, const char *domain, const char *selector,
                       const char *algorithm, const char *pem)
{
    char dom[STORE_DOMAIN_MAX + 1], sel[STORE_DOMAIN_MAX + 1];
    if (names_norm(domain, selector, dom, sel) != STORE_OK || !algorithm_valid(algorithm)
        || !pem || !*pem || strnlen(pem, STORE_DKIM_PEM_MAX + 1) > STORE_DKIM_PEM_MAX)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int64_t did = store_domain_id(s->ad, dom);
    int r = did < 0 ? STORE_ERROR : did == 0 ? STORE_NOTFOUND
          : key_insert(s->ad, did, sel, algorithm, pem);
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=dkim_key_add domain=%s selector=%s algorithm=%s",
                  dom, sel, algorithm);
    return r;
}

int store_dkim_key_del(struct store *s, const char *domain, const char *selector)
{
    char dom[STORE_DOMAIN_MAX + 1], sel[STORE_DOMAIN_MAX + 1];
    if (names_norm(domain, selector, dom, sel) != STORE_OK)
        return STORE_INVALID;
    if (store_admin_begin(s) != STORE_OK)
        return STORE_ERROR;
    int r = STORE_OK;
    sqlite3_stmt *st = store_db_prepare(s->ad,
        "DELETE FROM dkim_keys WHERE selector = ?2"
        " AND domain_id = (SELECT id FROM domains WHERE name = ?1)");
    if (!st)
        return store_admin_end(s, STORE_ERROR);
    sqlite3_bind_text(st, 1, dom, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sel, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        store_db_log(s->ad, "dkim_key_del");
        r = STORE_ERROR;
    } else if (sqlite3_changes(s->ad) == 0) {
        r = STORE_NOTFOUND;
    }
    sqlite3_finalize(st);
    r = store_admin_end(s, r);
    if (r == STORE_OK)
        log_event(PLOG_INFO, 0, "event=dkim_key_del domain=%s selector=%s", dom, sel);
    return r;
}

int store_dkim_key_list(struct store *s, const char *domain, store_dkim_cb cb, void *arg)
{
    int64_t did = 0;
    if (domain) {
        if (!store_domain_valid(domain))
            return STORE_INVALID;
        did = store_domain_id(s->rd, domain);
        if (did <= 0)
            return did < 0 ? STORE_ERROR : STORE_NOTFOUND;
    }
    /* Newest first: the first key of a domain is the one it signs with. */
    sqlite3_stmt *st = store_db_prepare(s->rd,
        "SELECT d.name, k.selector, k.algorithm, k.private_pem, k.created"
        " FROM dkim_keys k JOIN domains d ON d.id = k.domain_id"
        " WHERE ?1 = 0 OR k.domain_id = ?1"
        " ORDER BY d.name, k.created DESC, k.id DESC");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, did);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_dkim_key_info k = {
            .domain = store_col_text(st, 0),
            .selector = store_col_text(st, 1),
            .algorithm = store_col_text(st, 2),
            .pem = store_col_text(st, 3),
            .created = sqlite3_column_int64(st, 4),
        };
        cb(arg, &k);
    }
    if (rc != SQLITE_DONE)
        store_db_log(s->rd, "dkim_key_list");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}
