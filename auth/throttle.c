/*
 * throttle.c — failed-login counting per peer address and per account.
 *
 * A fixed window per key: the first failure opens it, failures inside it
 * count, and once it is cfg->auth_fail_window seconds old the key starts
 * afresh. Tables are fixed arrays (no allocation after init); when full, an
 * expired or else the oldest entry is reused, so memory stays bounded under
 * an address-spraying attack. Loopback is not exempt.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth-int.h"

struct throttle_entry {
    uint64_t hash;      /* 0: free slot */
    char key[AUTH_MAX_USER + 1];
    uint64_t since;     /* window start, monotonic seconds */
    unsigned fails;
};

struct throttle_table {
    struct throttle_entry *e;
    size_t n;
};

static pthread_mutex_t throttle_mu = PTHREAD_MUTEX_INITIALIZER;
static struct throttle_table ips, users;

static uint64_t now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static uint64_t window(void)
{
    return auth_g.cfg && auth_g.cfg->auth_fail_window ? auth_g.cfg->auth_fail_window : 1;
}

/* FNV-1a; never 0 so 0 can mark a free slot. */
static uint64_t key_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* IPv6 peers are counted by their /64: one host usually owns the whole prefix. */
static void ip_key(const char *ip, char *out, size_t outlen)
{
    unsigned char a[16];
    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, a) == 1) {
        memset(a + 8, 0, 8);
        char txt[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, a, txt, sizeof txt)) {
            snprintf(out, outlen, "%s/64", txt);
            return;
        }
    }
    snprintf(out, outlen, "%s", ip);
}

/* Accounts are counted case-insensitively, as the store matches them:
 * "Alice@x" and "alice@x" are one account, one counter. */
static void user_key(const char *user, char *out, size_t outlen)
{
    size_t i = 0;
    for (; user[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)user[i]);
    out[i] = '\0';
}

static bool expired(const struct throttle_entry *e, uint64_t now)
{
    return e->hash == 0 || now - e->since >= window();
}

static struct throttle_entry *find(struct throttle_table *t, const char *key)
{
    uint64_t h = key_hash(key);
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].hash == h && strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    }
    return NULL;
}

static struct throttle_entry *find_or_add(struct throttle_table *t, const char *key,
                                          uint64_t now)
{
    struct throttle_entry *e = find(t, key);
    if (e)
        return e;
    struct throttle_entry *victim = NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (expired(&t->e[i], now)) {
            victim = &t->e[i];
            break;
        }
        if (!victim || t->e[i].since < victim->since)
            victim = &t->e[i];
    }
    if (!victim)
        return NULL;
    victim->hash = key_hash(key);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->since = now;
    victim->fails = 0;
    return victim;
}

static void bump(struct throttle_table *t, const char *key, uint64_t now)
{
    struct throttle_entry *e = find_or_add(t, key, now);
    if (!e)
        return;
    if (expired(e, now)) {
        e->since = now;
        e->fails = 0;
    }
    e->fails++;
}

static bool blocked(struct throttle_table *t, const char *key, unsigned max)
{
    if (max == 0)
        return false; /* 0 in the config: no limit */
    const struct throttle_entry *e = find(t, key);
    return e && !expired(e, now_sec()) && e->fails >= max;
}

int throttle_init(void)
{
    pthread_mutex_lock(&throttle_mu);
    if (!ips.e) {
        ips.e = calloc(AUTH_THROTTLE_MAX_IPS, sizeof *ips.e);
        users.e = calloc(AUTH_THROTTLE_MAX_USERS, sizeof *users.e);
        ips.n = AUTH_THROTTLE_MAX_IPS;
        users.n = AUTH_THROTTLE_MAX_USERS;
    }
    int rc = ips.e && users.e ? 0 : -1;
    pthread_mutex_unlock(&throttle_mu);
    if (rc)
        throttle_shutdown();
    return rc;
}

void throttle_shutdown(void)
{
    pthread_mutex_lock(&throttle_mu);
    free(ips.e);
    free(users.e);
    ips.e = users.e = NULL;
    ips.n = users.n = 0;
    pthread_mutex_unlock(&throttle_mu);
}

void throttle_reset(void)
{
    pthread_mutex_lock(&throttle_mu);
    if (ips.e)
        memset(ips.e, 0, ips.n * sizeof *ips.e);
    if (users.e)
        memset(users.e, 0, users.n * sizeof *users.e);
    pthread_mutex_unlock(&throttle_mu);
}

void throttle_record_failure(const char *ip, const char *user)
{
    char k[AUTH_MAX_USER + 1];
    uint64_t now = now_sec();
    pthread_mutex_lock(&throttle_mu);
    if (ip && *ip) {
        ip_key(ip, k, sizeof k);
        bump(&ips, k, now);
    }
    if (user && *user) {
        user_key(user, k, sizeof k);
        bump(&users, k, now);
    }
    pthread_mutex_unlock(&throttle_mu);
}

void throttle_clear_user(const char *user)
{
    char k[AUTH_MAX_USER + 1];
    if (!user)
        return;
    user_key(user, k, sizeof k);
    pthread_mutex_lock(&throttle_mu);
    struct throttle_entry *e = find(&users, k);
    if (e)
        memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&throttle_mu);
}

bool throttle_ip_blocked(const char *ip)
{
    if (!ip || !*ip || !auth_g.cfg)
        return false;
    char k[AUTH_MAX_USER + 1];
    ip_key(ip, k, sizeof k);
    pthread_mutex_lock(&throttle_mu);
    bool b = blocked(&ips, k, auth_g.cfg->auth_max_fails_ip);
    pthread_mutex_unlock(&throttle_mu);
    return b;
}

bool throttle_user_blocked(const char *user)
{
    if (!user || !*user || !auth_g.cfg)
        return false;
    char k[AUTH_MAX_USER + 1];
    user_key(user, k, sizeof k);
    pthread_mutex_lock(&throttle_mu);
    bool b = blocked(&users, k, auth_g.cfg->auth_max_fails_user);
    pthread_mutex_unlock(&throttle_mu);
    return b;
}
