/*
 * auth-int.h — private to auth/: the pieces shared between the credential
 * code (auth.c), the SASL glue (sasl.c) and the failure throttle (throttle.c).
 */
#ifndef PETREL_AUTH_INT_H
#define PETREL_AUTH_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"

/* SCRAM-SHA-256 parameters (RFC 7677 asks for at least 4096 iterations). */
#define AUTH_SCRAM_ITERATIONS 10000
#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_SCRAM_KEY_LEN 32 /* SHA-256 output */

/* Longest address we accept as an authentication identity (RFC 5321 path). */
#define AUTH_MAX_USER 320

/* Bounded throttle tables: entries beyond these evict the oldest. */
#define AUTH_THROTTLE_MAX_IPS 4096
#define AUTH_THROTTLE_MAX_USERS 4096

/* The global state set by auth_init. */
struct auth_global {
    const struct config *cfg;
    struct store *store;
    uv_loop_t *loop;
};
extern struct auth_global auth_g;

/*
 * Store access from auth runs on pool threads as well as the loop thread;
 * these serialise it (the store's reader connection is not promised to be
 * shared across threads).
 */
int auth_store_user_get(const char *address, struct store_user *out);

/*
 * Builds a SCRAM-SHA-256 secret string for password and salt (the format
 * Cyrus' scram plugin parses from the authPassword property):
 *   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
 * Returns a malloc'd string or NULL.
 */
char *auth_scram_secret(const char *password, const unsigned char *salt, size_t saltlen,
                        unsigned iterations);

/* ------------------------------------------------------------- throttle */

/*
 * Failure counting per peer address (IPv6 by its /64) and per account.
 * Thread-safe (one mutex): the loop records failures, pool threads ask
 * about an account while SASL runs. Time is CLOCK_MONOTONIC seconds.
 */
int throttle_init(void);
void throttle_shutdown(void);
void throttle_record_failure(const char *ip, const char *user);
void throttle_clear_user(const char *user);
bool throttle_ip_blocked(const char *ip);
bool throttle_user_blocked(const char *user);
/* For tests: forget every entry. */
void throttle_reset(void);

#endif
