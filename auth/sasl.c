/*
 * sasl.c — Cyrus SASL server glue.
 *
 * Configuration is programmatic (SASL_CB_GETOPT); no /etc/sasl2 file is read.
 *   mech_list       PLAIN LOGIN SCRAM-SHA-256 (we store only SHA-256 SCRAM secrets)
 *   auxprop_plugin  petrel: an in-process auxprop plugin that answers the
 *                   "*authPassword" property Cyrus' scram plugin requests
 *                   with the stored SCRAM secret; sasldb is never consulted
 *   pwcheck_method  auxprop: only a fallback after our userdb_checkpass
 *                   callback refuses; our auxprop never yields userPassword,
 *                   so the fallback cannot succeed
 *
 * Threads: sasl_server_start/step run on the libuv pool. Cyrus' default
 * mutex hooks are no-ops, so pthread mutexes are installed with
 * sasl_set_mutex() before sasl_server_init(). The callbacks that run inside
 * a step (canon_user, checkpass, auxprop lookup, proxy policy) find their
 * session through a thread-local pointer set around the call.
 */
#include <assert.h>
#include <crypt.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <sasl/saslutil.h>

#include "auth/auth-int.h"

#define AUTH_MECH_LIST "PLAIN LOGIN SCRAM-SHA-256"
#define AUTH_AUXPROP_NAME "petrel"
#define AUTH_MAX_PASSWORD 1024
#define AUTH_MAX_MECH_NAME 20   /* RFC 4422 §3.1: at most 20 characters */
#define AUTH_MAX_RESPONSE 16384 /* decoded client response, bytes */

struct auth_global auth_g;

static bool sasl_ready;
static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char fake_key[32];   /* derives decoy SCRAM secrets for unknown users */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[256];          /* crypt(3) hash checked for unknown users */

struct auth_session {
    sasl_conn_t *sasl;
    uint64_t conn_id;
    char service[16];
    char peer[64];
    bool tls;
    char mechs[256];
    char mech[AUTH_MAX_MECH_NAME + 1];

    /* One exchange: request in, result out (written by the pool thread). */
    bool starting;
    char *in;
    unsigned inlen;
    bool has_in;
    int rc;
    char *out_b64;
    bool f_throttled, f_tempfail, f_nouser, f_authz;
    char attempted[AUTH_MAX_USER + 1];

    char user[AUTH_MAX_USER + 1];
    int64_t user_id;

    auth_cb cb;
    void *arg;
    enum auth_status pending;

    bool busy;     /* work queued on the pool */
    bool dead;     /* freed by the owner while busy */
    bool timer_on;
    uv_work_t work;
    uv_timer_t timer;
};

static _Thread_local struct auth_session *tl_sess;

int auth_store_user_get(const char *address, struct store_user *out)
{
    if (!auth_g.store)
        return STORE_ERROR;
    pthread_mutex_lock(&store_mu);
    int rc = store_user_get(auth_g.store, address, out);
    pthread_mutex_unlock(&store_mu);
    return rc;
}

/* ------------------------------------------------------------ mutexes */

static void *mutex_alloc(void)
{
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m && pthread_mutex_init(m, NULL) != 0) {
        free(m);
        m = NULL;
    }
    return m;
}

static int mutex_lock(void *m)
{
    return pthread_mutex_lock(m) == 0 ? SASL_OK : SASL_FAIL;
}

static int mutex_unlock(void *m)
{
    return pthread_mutex_unlock(m) == 0 ? SASL_OK : SASL_FAIL;
}

static void mutex_free(void *m)
{
    if (m) {
        pthread_mutex_destroy(m);
        free(m);
    }
}

/* ---------------------------------------------------------- callbacks */

static int cb_getopt(void *context, const char *plugin_name, const char *option,
                     const char **result, unsigned *len)
{
    static const struct { const char *name, *value; } opts[] = {
        { "mech_list", AUTH_MECH_LIST },
        { "auxprop_plugin", AUTH_AUXPROP_NAME },
        { "pwcheck_method", "auxprop" },
        { "canon_user_plugin", "INTERNAL" },
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (strcmp(option, opts[i].name) == 0) {
            *result = opts[i].value;
            if (len)
                *len = (unsigned)strlen(opts[i].value);
            return SASL_OK;
        }
    }
    /* Answered (unset) rather than SASL_FAIL: Cyrus would then consult a
     * config file, and every setting is meant to be here. */
    *result = NULL;
    if (len)
        *len = 0;
    return SASL_OK;
}

static int cb_log(void *context, int level, const char *message)
{
    /* Cyrus' messages never carry passwords, but may carry peer input. */
    if (log_enabled(PLOG_DEBUG) && message) {
        char v[256];
        log_event(PLOG_DEBUG, tl_sess ? tl_sess->conn_id : 0, "event=sasl-log level=%d msg=%s",
                  level, log_value(message, v, sizeof v));
    }
    return SASL_OK;
}

/*
 * The store's address is the identity: the domain part is lowercased, the
 * local part kept as given (the store matches it exactly).
 */
static int cb_canon_user(sasl_conn_t *conn, void *context, const char *in, unsigned inlen,
                         unsigned flags, const char *user_realm, char *out,
                         unsigned out_max, unsigned *out_len)
{
    if (inlen == 0 || inlen > AUTH_MAX_USER || inlen >= out_max)
        return SASL_BADPROT;
    for (unsigned i = 0; i < inlen; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch <= 0x20 || ch == 0x7f)
            return SASL_BADPROT;
    }
    memcpy(out, in, inlen);
    out[inlen] = '\0';
    char *at = strrchr(out, '@');
    for (char *p = at; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    *out_len = inlen;

    struct auth_session *s = tl_sess;
    if (s && (flags & SASL_CU_AUTHID)) {
        snprintf(s->attempted, sizeof s->attempted, "%s", out);
        /* The account check happens here, before any password hashing. */
        if (throttle_user_blocked(out)) {
            s->f_throttled = true;
            return SASL_FAIL;
        }
    }
    return SASL_OK;
}

/* Refuse acting as someone else: the authorization identity must be empty
 * (then Cyrus passes the authentication identity) or equal to it. */
static int cb_proxy_policy(sasl_conn_t *conn, void *context, const char *requested_user,
                           unsigned rlen, const char *auth_identity, unsigned alen,
                           const char *def_realm, unsigned urlen, struct propctx *propctx)
{
    if (rlen == alen && memcmp(requested_user, auth_identity, alen) == 0)
        return SASL_OK;
    if (tl_sess)
        tl_sess->f_authz = true;
    sasl_seterror(conn, SASL_NOLOG, "authorization identity differs");
    return SASL_NOAUTHZ;
}

static void make_dummy_hash(void)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    unsigned char r[16];
    char pw[33];
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd || RAND_bytes(r, sizeof r) != 1 ||
        !crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting)) {
        free(cd);
        return;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(pw + 2 * i, 3, "%02x", r[i]);
    const char *h = crypt_r(pw, setting, cd);
    if (h && h[0] != '*')
        snprintf(dummy_hash, sizeof dummy_hash, "%s", h);
    free(cd);
}

/* PLAIN and LOGIN: verify against the stored crypt(3) hash. */
static int cb_checkpass(sasl_conn_t *conn, void *context, const char *user, const char *pass,
                        unsigned passlen, struct propctx *propctx)
{
    struct auth_session *s = tl_sess;
    if (passlen == 0 || passlen > AUTH_MAX_PASSWORD || memchr(pass, '\0', passlen))
        return SASL_BADAUTH;
    char *pw = malloc(passlen + 1);
    if (!pw)
        return SASL_NOMEM;
    memcpy(pw, pass, passlen);
    pw[passlen] = '\0';

    struct store_user *u = calloc(1, sizeof *u);
    int rc = u ? auth_store_user_get(user, u) : STORE_ERROR;
    int result;
    if (rc == STORE_OK) {
        result = auth_check_password(pw, u->pw_hash) ? SASL_OK : SASL_BADAUTH;
    } else if (rc == STORE_NOTFOUND || rc == STORE_INVALID) {
        /* Spend the same time as for a real account. */
        pthread_once(&dummy_once, make_dummy_hash);
        (void)auth_check_password(pw, dummy_hash);
        if (s)
            s->f_nouser = true;
        result = SASL_NOUSER;
    } else {
        if (s)
            s->f_tempfail = true;
        result = SASL_FAIL;
    }
    explicit_bzero(pw, passlen);
    free(pw);
    if (u) {
        explicit_bzero(u, sizeof *u);
        free(u);
    }
    return result;
}

/* Through void (*)(void): GCC's blessed generic function pointer type. */
#define CB(f) ((sasl_callback_ft)(void (*)(void))(f))

static sasl_callback_t global_callbacks[] = {
    { SASL_CB_GETOPT, CB(cb_getopt), NULL },
    { SASL_CB_LOG, CB(cb_log), NULL },
    { SASL_CB_CANON_USER, CB(cb_canon_user), NULL },
    { SASL_CB_PROXY_POLICY, CB(cb_proxy_policy), NULL },
    { SASL_CB_SERVER_USERDB_CHECKPASS, CB(cb_checkpass), NULL },
    { SASL_CB_LIST_END, NULL, NULL },
};

/* ------------------------------------------------------------- auxprop */

/*
 * A secret shaped like a real one for an address nobody owns: the salt is
 * stable per address (derived from a per-process key), the keys are random
 * and match no proof. SCRAM then fails at the proof, as for a wrong
 * password, instead of telling an attacker at the first step that the
 * account does not exist.
 */
static char *decoy_secret(const char *user)
{
    unsigned char mac[32], keys[2 * AUTH_SCRAM_KEY_LEN];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), fake_key, sizeof fake_key, (const unsigned char *)user,
              strlen(user), mac, &len) || RAND_bytes(keys, sizeof keys) != 1)
        return NULL;
    char salt64[32], k1[48], k2[48], *out = NULL;
    EVP_EncodeBlock((unsigned char *)salt64, mac, AUTH_SCRAM_SALT_LEN);
    EVP_EncodeBlock((unsigned char *)k1, keys, AUTH_SCRAM_KEY_LEN);
    EVP_EncodeBlock((unsigned char *)k2, keys + AUTH_SCRAM_KEY_LEN, AUTH_SCRAM_KEY_LEN);
    if (asprintf(&out, "SCRAM-SHA-256$%u:%s$%s:%s", AUTH_SCRAM_ITERATIONS, salt64, k1, k2) < 0)
        out = NULL;
    return out;
}

static int auxprop_lookup(void *glob_context, sasl_server_params_t *sparams, unsigned flags,
                          const char *user, unsigned ulen)
{
    if (flags & SASL_AUXPROP_AUTHZID)
        return SASL_OK; /* nothing kept about authorization identities */
    const struct propval *want = sparams->utils->prop_get(sparams->propctx);
    if (!want)
        return SASL_NOMEM;
    const char *name = NULL;
    for (const struct propval *p = want; p->name; p++) {
        /* "*authPassword": looked up for the authentication identity. */
        if (strcasecmp(p->name, "*authPassword") == 0) {
            if (p->values && !(flags & SASL_AUXPROP_OVERRIDE))
                return SASL_OK;
            if (p->values)
                sparams->utils->prop_erase(sparams->propctx, p->name);
            name = p->name;
        }
    }
    if (!name || ulen == 0 || ulen > AUTH_MAX_USER)
        return SASL_OK;

    char addr[AUTH_MAX_USER + 1];
    memcpy(addr, user, ulen);
    addr[ulen] = '\0';
    struct store_user *u = calloc(1, sizeof *u);
    if (!u)
        return SASL_NOMEM;
    int rc = auth_store_user_get(addr, u);
    int result = SASL_OK;
    if (rc == STORE_OK && u->scram_secret[0]) {
        sparams->utils->prop_set(sparams->propctx, name, u->scram_secret,
                                 (unsigned)strlen(u->scram_secret));
    } else if (rc == STORE_OK || rc == STORE_NOTFOUND || rc == STORE_INVALID) {
        /* Unknown user, or a user without a SCRAM secret: decoy. */
        char *d = decoy_secret(addr);
        if (tl_sess)
            tl_sess->f_nouser = true;
        if (d) {
            sparams->utils->prop_set(sparams->propctx, name, d, (unsigned)strlen(d));
            free(d);
        }
    } else {
        if (tl_sess)
            tl_sess->f_tempfail = true;
        result = SASL_FAIL;
    }
    explicit_bzero(u, sizeof *u);
    free(u);
    return result;
}

static sasl_auxprop_plug_t petrel_auxprop = {
    .features = 0,
    .spare_int1 = 0,
    .glob_context = NULL,
    .auxprop_free = NULL,
    .auxprop_lookup = auxprop_lookup,
    .name = AUTH_AUXPROP_NAME,
    .auxprop_store = NULL,
};

static int auxprop_plug_init(const sasl_utils_t *utils, int max_version, int *out_version,
                             sasl_auxprop_plug_t **plug, const char *plugname)
{
    if (max_version < SASL_AUXPROP_PLUG_VERSION)
        return SASL_BADVERS;
    *out_version = SASL_AUXPROP_PLUG_VERSION;
    *plug = &petrel_auxprop;
    return SASL_OK;
}

/* ---------------------------------------------------------------- init */

int auth_init(const struct config *cfg, struct store *store, uv_loop_t *loop,
              char *err, size_t errlen)
{
    auth_g.cfg = cfg;
    auth_g.store = store;
    auth_g.loop = loop;
    if (!loop)
        return 0; /* CLI: credentials only, no SASL sessions */
    if (throttle_init() != 0) {
        snprintf(err, errlen, "auth: out of memory");
        return -1;
    }
    if (sasl_ready)
        return 0;
    if (RAND_bytes(fake_key, sizeof fake_key) != 1) {
        snprintf(err, errlen, "auth: no randomness");
        return -1;
    }
    /* Before any sasl_*_init: Cyrus ignores sasl_set_mutex afterwards. */
    sasl_set_mutex(mutex_alloc, mutex_lock, mutex_unlock, mutex_free);
    int rc = sasl_server_init(global_callbacks, "petrel");
    if (rc != SASL_OK) {
        snprintf(err, errlen, "auth: sasl_server_init: %s", sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    rc = sasl_auxprop_add_plugin(AUTH_AUXPROP_NAME, auxprop_plug_init);
    if (rc != SASL_OK) {
        snprintf(err, errlen, "auth: sasl_auxprop_add_plugin: %s",
                 sasl_errstring(rc, NULL, NULL));
        sasl_server_done();
        return -1;
    }
    sasl_ready = true;
    return 0;
}

void auth_shutdown(void)
{
    if (sasl_ready) {
        sasl_server_done();
        sasl_ready = false;
    }
    throttle_shutdown();
    auth_g.cfg = NULL;
    auth_g.store = NULL;
    auth_g.loop = NULL;
}

/* ------------------------------------------------------------ sessions */

static struct auth_session *session_create(const char *service, const char *ip, bool tls,
                                           unsigned tls_bits, bool loopback, uint64_t id)
{
    if (!sasl_ready || !auth_g.loop || !service || !ip)
        return NULL;
    struct auth_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->service, sizeof s->service, "%s", service);
    snprintf(s->peer, sizeof s->peer, "%s", ip);
    s->tls = tls;
    s->conn_id = id;

    /* No "ip;port" strings: only mechanisms we never offer (DIGEST-MD5,
     * Kerberos) use them, and a form Cyrus fails to parse (an IPv4-mapped
     * address, say) would make every login on the connection fail. */
    const char *fqdn = auth_g.cfg->hostname[0] ? auth_g.cfg->hostname : NULL;
    int rc = sasl_server_new(service, fqdn, NULL, NULL, NULL, NULL, 0, &s->sasl);
    if (rc != SASL_OK) {
        log_event(PLOG_ERROR, id, "event=auth-error op=sasl_server_new err=%d", rc);
        free(s);
        return NULL;
    }

    bool plain_ok = tls || (loopback && auth_g.cfg->plaintext_on_loopback);
    sasl_security_properties_t sp = {
        .min_ssf = 0,
        .max_ssf = 0, /* no SASL security layers: TLS protects the channel */
        .maxbufsize = 0,
        .security_flags = SASL_SEC_NOANONYMOUS | (plain_ok ? 0 : SASL_SEC_NOPLAINTEXT),
    };
    rc = sasl_setprop(s->sasl, SASL_SEC_PROPS, &sp);
    if (rc == SASL_OK && tls) {
        sasl_ssf_t ssf = tls_bits ? tls_bits : 128;
        rc = sasl_setprop(s->sasl, SASL_SSF_EXTERNAL, &ssf);
    }
    const char *list = NULL;
    unsigned len = 0;
    int count = 0;
    if (rc == SASL_OK)
        rc = sasl_listmech(s->sasl, NULL, "", " ", "", &list, &len, &count);
    if (rc == SASL_OK)
        snprintf(s->mechs, sizeof s->mechs, "%s", list);
    else if (rc == SASL_NOMECH)
        rc = SASL_OK; /* nothing allowed here: an empty list */
    if (rc != SASL_OK) {
        log_event(PLOG_ERROR, id, "event=auth-error op=sasl_setup err=%d", rc);
        sasl_dispose(&s->sasl);
        free(s);
        return NULL;
    }
    uv_timer_init(auth_g.loop, &s->timer);
    s->timer.data = s;
    return s;
}

struct auth_session *auth_session_new_peer(const char *service, const char *peer_ip, bool tls,
                                           uint64_t conn_id)
{
    return session_create(service, peer_ip, tls, 0, ip_is_loopback(peer_ip ? peer_ip : ""),
                          conn_id);
}

struct auth_session *auth_session_new(const char *service, struct conn *c)
{
    int bits = conn_tls_bits(c);
    return session_create(service, conn_peer_ip(c), conn_is_tls(c),
                          bits > 0 ? (unsigned)bits : 0, conn_is_loopback(c), conn_id(c));
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void session_destroy(struct auth_session *s)
{
    if (s->sasl)
        sasl_dispose(&s->sasl);
    if (s->in) {
        explicit_bzero(s->in, s->inlen);
        free(s->in);
    }
    free(s->out_b64);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void auth_session_free(struct auth_session **sp)
{
    struct auth_session *s = *sp;
    *sp = NULL;
    if (!s)
        return;
    if (s->busy) {
        s->dead = true; /* the after-work callback frees it */
        return;
    }
    session_destroy(s);
}

const char *auth_mechanisms(struct auth_session *s)
{
    return s->mechs;
}

const char *auth_session_user(const struct auth_session *s)
{
    return s->user[0] ? s->user : NULL;
}

int64_t auth_session_user_id(const struct auth_session *s)
{
    return s->user_id;
}

/* Calls the owner's callback; s may be freed by it, so nothing touches s after. */
static void finish(struct auth_session *s, enum auth_status st)
{
    char *ch = NULL;
    if (st == AUTH_CONTINUE) {
        ch = s->out_b64;
        s->out_b64 = NULL;
    }
    auth_cb cb = s->cb;
    void *arg = s->arg;
    s->cb = NULL;
    if (cb)
        cb(arg, st, st == AUTH_CONTINUE ? (ch ? ch : "") : NULL);
    free(ch);
}

static void on_timer(uv_timer_t *t)
{
    struct auth_session *s = t->data;
    s->timer_on = false;
    finish(s, s->pending);
}

/* Reports st from the loop after delay_ms (0: on the next loop turn). */
static void deliver_later(struct auth_session *s, enum auth_status st, uint64_t delay_ms)
{
    s->pending = st;
    s->timer_on = true;
    uv_timer_start(&s->timer, on_timer, delay_ms, 0);
}

static const char *user_or_dash(const struct auth_session *s, char *buf, size_t n)
{
    return s->attempted[0] ? log_value(s->attempted, buf, n) : "-";
}

static void log_throttled(struct auth_session *s, const char *why)
{
    char u[AUTH_MAX_USER + 8];
    log_event(PLOG_WARN, s->conn_id,
              "event=auth-throttled service=%s mech=%s user=%s peer=%s reason=%s",
              s->service, s->mech[0] ? s->mech : "-", user_or_dash(s, u, sizeof u), s->peer,
              why);
}

static void work_run(uv_work_t *w)
{
    struct auth_session *s = w->data;
    const char *out = NULL;
    unsigned outlen = 0;

    tl_sess = s;
    const char *in = s->has_in ? (s->in ? s->in : "") : NULL;
    if (s->starting)
        s->rc = sasl_server_start(s->sasl, s->mech, in, s->has_in ? s->inlen : 0, &out, &outlen);
    else
        s->rc = sasl_server_step(s->sasl, in ? in : "", s->inlen, &out, &outlen);

    if (s->rc == SASL_CONTINUE) {
        unsigned cap = (outlen + 2) / 3 * 4 + 1, b64len = 0;
        s->out_b64 = malloc(cap);
        if (!s->out_b64 ||
            (outlen > 0 && sasl_encode64(out, outlen, s->out_b64, cap, &b64len) != SASL_OK)) {
            s->rc = SASL_NOMEM;
        } else if (outlen == 0) {
            s->out_b64[0] = '\0';
        }
    } else if (s->rc == SASL_OK) {
        const void *name = NULL;
        struct store_user *u = calloc(1, sizeof *u);
        int src = STORE_ERROR;
        if (u && sasl_getprop(s->sasl, SASL_USERNAME, &name) == SASL_OK && name)
            src = auth_store_user_get(name, u);
        if (src == STORE_OK) {
            snprintf(s->user, sizeof s->user, "%s", u->address);
            s->user_id = u->id;
        } else if (src == STORE_NOTFOUND) {
            s->rc = SASL_NOUSER; /* deleted meanwhile */
        } else {
            s->rc = SASL_FAIL;
            s->f_tempfail = true;
        }
        if (u) {
            explicit_bzero(u, sizeof *u);
            free(u);
        }
    }
    if (s->in) {
        explicit_bzero(s->in, s->inlen);
        free(s->in);
        s->in = NULL;
    }
    tl_sess = NULL;
}

/* Cyrus result (plus what our callbacks noticed) -> auth_status. */
static enum auth_status map_result(const struct auth_session *s, const char **reason)
{
    *reason = NULL;
    if (s->f_throttled)
        return AUTH_THROTTLED;
    if (s->f_tempfail)
        return AUTH_TEMPFAIL;
    switch (s->rc) {
    case SASL_OK:
        return AUTH_OK;
    case SASL_CONTINUE:
        return AUTH_CONTINUE;
    case SASL_NOMECH:
    case SASL_TOOWEAK:
    case SASL_ENCRYPT:
        return AUTH_BADMECH;
    case SASL_BADPROT:
        *reason = "malformed";
        return AUTH_BADINPUT;
    case SASL_NOMEM:
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
        return AUTH_TEMPFAIL;
    default:
        break;
    }
    if (s->f_authz)
        *reason = "authzid-mismatch";
    else if (s->f_nouser)
        *reason = "unknown-user";
    else
        *reason = "bad-credentials";
    return AUTH_FAIL;
}

static void work_done(uv_work_t *w, int status)
{
    struct auth_session *s = w->data;
    s->busy = false;
    if (s->dead) {
        session_destroy(s);
        return;
    }
    const char *reason;
    enum auth_status st = status == 0 ? map_result(s, &reason) : AUTH_TEMPFAIL;
    char u[AUTH_MAX_USER + 8];

    switch (st) {
    case AUTH_OK:
        throttle_clear_user(s->user);
        log_event(PLOG_INFO, s->conn_id, "event=auth-ok service=%s mech=%s user=%s peer=%s",
                  s->service, s->mech, log_value(s->user, u, sizeof u), s->peer);
        break;
    case AUTH_FAIL:
        throttle_record_failure(s->peer, s->attempted);
        log_event(PLOG_WARN, s->conn_id,
                  "event=auth-failed service=%s mech=%s user=%s peer=%s reason=%s",
                  s->service, s->mech, user_or_dash(s, u, sizeof u), s->peer, reason);
        deliver_later(s, AUTH_FAIL, auth_g.cfg->auth_fail_delay_ms);
        return;
    case AUTH_THROTTLED:
        log_throttled(s, "account");
        break;
    case AUTH_BADINPUT:
        log_event(PLOG_INFO, s->conn_id,
                  "event=auth-failed service=%s mech=%s user=%s peer=%s reason=%s",
                  s->service, s->mech, user_or_dash(s, u, sizeof u), s->peer, reason);
        break;
    case AUTH_TEMPFAIL:
        log_event(PLOG_ERROR, s->conn_id,
                  "event=auth-error service=%s mech=%s peer=%s err=%d", s->service, s->mech,
                  s->peer, s->rc);
        break;
    default:
        break;
    }
    finish(s, st);
}

/* Decodes the client's base64 into s->in. "=" and "" are an empty response. */
static int decode_input(struct auth_session *s, const char *b64)
{
    s->in = NULL;
    s->inlen = 0;
    s->has_in = b64 != NULL;
    if (!b64 || strcmp(b64, "=") == 0 || *b64 == '\0')
        return 0;
    size_t n = strlen(b64);
    if (n / 4 * 3 > AUTH_MAX_RESPONSE)
        return -1;
    unsigned cap = (unsigned)(n / 4 * 3 + 3), len = 0;
    s->in = malloc(cap + 1);
    if (!s->in || sasl_decode64(b64, (unsigned)n, s->in, cap + 1, &len) != SASL_OK) {
        free(s->in);
        s->in = NULL;
        return -1;
    }
    s->inlen = len;
    return 0;
}

static bool mech_allowed(const struct auth_session *s, const char *mech)
{
    size_t n = strlen(mech);
    for (const char *p = s->mechs; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && strncasecmp(p, mech, n) == 0)
            return true;
        p += w;
        p += strspn(p, " ");
    }
    return false;
}

static void run(struct auth_session *s, bool starting, const char *b64, auth_cb cb, void *arg)
{
    assert(!s->busy && !s->timer_on);
    s->cb = cb;
    s->arg = arg;
    s->starting = starting;
    s->rc = SASL_FAIL;
    s->f_throttled = s->f_tempfail = s->f_authz = false;
    free(s->out_b64);
    s->out_b64 = NULL;
    if (starting) {
        s->f_nouser = false;
        s->attempted[0] = '\0';
        s->user[0] = '\0';
        s->user_id = 0;
    }

    if (throttle_ip_blocked(s->peer)) {
        log_throttled(s, "address");
        deliver_later(s, AUTH_THROTTLED, 0);
        return;
    }
    if (decode_input(s, b64) != 0) {
        deliver_later(s, AUTH_BADINPUT, 0);
        return;
    }
    s->busy = true;
    s->work.data = s;
    if (uv_queue_work(auth_g.loop, &s->work, work_run, work_done) != 0) {
        s->busy = false;
        deliver_later(s, AUTH_TEMPFAIL, 0);
    }
}

void auth_start(struct auth_session *s, const char *mech, const char *initial_b64,
                auth_cb cb, void *arg)
{
    size_t n = mech ? strlen(mech) : 0;
    s->mech[0] = '\0';
    if (n == 0 || n > AUTH_MAX_MECH_NAME || !mech_allowed(s, mech)) {
        s->cb = cb;
        s->arg = arg;
        deliver_later(s, AUTH_BADMECH, 0);
        return;
    }
    for (size_t i = 0; i <= n; i++)
        s->mech[i] = (char)toupper((unsigned char)mech[i]);
    run(s, true, initial_b64, cb, arg);
}

void auth_step(struct auth_session *s, const char *response_b64, auth_cb cb, void *arg)
{
    run(s, false, response_b64 ? response_b64 : "", cb, arg);
}

/* LOGIN (IMAP) and USER/PASS (POP3) are PLAIN with the identities given. */
void auth_login(struct auth_session *s, const char *user, const char *password, auth_cb cb,
                void *arg)
{
    size_t ul = strlen(user), pl = strlen(password);
    if (ul > 512 || pl > 512) {
        s->cb = cb;
        s->arg = arg;
        deliver_later(s, AUTH_BADINPUT, 0);
        return;
    }
    unsigned char raw[1 + 512 + 1 + 512];
    raw[0] = 0;
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = 0;
    memcpy(raw + 2 + ul, password, pl);
    char b64[4 * ((sizeof raw + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)(2 + ul + pl));
    OPENSSL_cleanse(raw, sizeof raw);
    auth_start(s, "PLAIN", b64, cb, arg);
    OPENSSL_cleanse(b64, sizeof b64);
}

bool auth_mechanism_allowed(struct auth_session *s, const char *mech, size_t len)
{
    for (const char *p = auth_mechanisms(s); *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && strncasecmp(p, mech, len) == 0)
            return true;
        p += n;
        while (*p == ' ')
            p++;
    }
    return false;
}
