/*
 * auth.h — Cyrus SASL server glue, password hashing and login throttling.
 * Users come from the store (auth -> store).
 *
 * Mechanisms: PLAIN, LOGIN and SCRAM-SHA-256 (SCRAM-SHA-1 and others where
 * the installed SASL plugins and stored secrets allow). PLAIN and LOGIN are
 * offered only on TLS connections, or on loopback when the config allows.
 * Every SASL step and password check runs on the libuv thread pool; the
 * results come back on the loop thread.
 */
#ifndef PETREL_AUTH_H
#define PETREL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

/* Once per process, after the store is open. loop NULL: CLI use (no sessions). */
int auth_init(const struct config *cfg, struct store *store, uv_loop_t *loop,
              char *err, size_t errlen);
void auth_shutdown(void);

/*
 * Makes the stored credentials for a password: a crypt(3) yescrypt hash and
 * the SCRAM-SHA-256 secret. Slow by design; never call it on the loop.
 * The caller frees both strings. Returns 0 or -1 (empty password, no memory).
 */
int auth_make_credentials(const char *password, char **pw_hash, char **scram_secret);

/* Checks a password against a stored hash. Slow; never on the loop. */
bool auth_check_password(const char *password, const char *pw_hash);

enum auth_status {
    AUTH_CONTINUE,   /* send the challenge, wait for the client's reply */
    AUTH_OK,         /* authenticated; auth_session_user() is set */
    AUTH_FAIL,       /* bad credentials (already delayed and logged) */
    AUTH_THROTTLED,  /* too many failures from this address or account */
    AUTH_BADMECH,    /* mechanism unknown or not allowed on this connection */
    AUTH_BADINPUT,   /* client response not valid base64 / malformed */
    AUTH_TEMPFAIL,   /* store or SASL failure; try later */
};

struct auth_session;

/*
 * service: "smtp", "imap" or "pop". c gives the peer address (throttling,
 * logging) and whether the channel is TLS or loopback.
 */
struct auth_session *auth_session_new(const char *service, struct conn *c);
/* Both constructors return NULL when out of memory or when auth_init() ran
 * without a loop (answer the client with a temporary failure). */
/*
 * The same without a struct conn (unit tests, tools): peer_ip gives the
 * throttling/logging address (loopback is derived from it), tls whether the
 * channel is encrypted, conn_id the id printed in log lines (0: none).
 */
struct auth_session *auth_session_new_peer(const char *service, const char *peer_ip, bool tls,
                                           uint64_t conn_id);
/* Frees at once, or after a step still running on the pool completes (its
 * callback is then not called). Sets *s to NULL. */
void auth_session_free(struct auth_session **s);

/* Space-separated mechanisms allowed on this connection now, e.g. "PLAIN LOGIN SCRAM-SHA-256". */
const char *auth_mechanisms(struct auth_session *s);
/* Whether mech[0, len) (any case) is among them. */
bool auth_mechanism_allowed(struct auth_session *s, const char *mech, size_t len);

/*
 * challenge_b64: the base64 text to send with AUTH_CONTINUE (may be "" for
 * an empty challenge), NULL otherwise. Valid only during the callback.
 */
typedef void (*auth_cb)(void *arg, enum auth_status st, const char *challenge_b64);

/*
 * Starts mech. initial_b64 is the client's initial response in base64 ("="
 * for an empty one) or NULL when the client sent none. cb runs later on the
 * loop, never from inside this call.
 */
void auth_start(struct auth_session *s, const char *mech, const char *initial_b64,
                auth_cb cb, void *arg);
/*
 * A user name and password as one step (IMAP LOGIN, POP3 USER/PASS): the
 * PLAIN mechanism, so it is refused (AUTH_BADMECH) where PLAIN is.
 */
void auth_login(struct auth_session *s, const char *user, const char *password, auth_cb cb,
                void *arg);
/* The client's next response, base64. */
void auth_step(struct auth_session *s, const char *response_b64, auth_cb cb, void *arg);

/* After AUTH_OK: the canonical address and store id of the user. */
const char *auth_session_user(const struct auth_session *s);
int64_t auth_session_user_id(const struct auth_session *s);

#endif
