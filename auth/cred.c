/*
 * cred.c — stored credentials: a yescrypt crypt(3) hash for PLAIN/LOGIN and
 * a SCRAM-SHA-256 secret (RFC 5802 §3, RFC 7677). The clear password is
 * never stored. Everything here is slow by design: callers run it off the
 * loop thread (petrelctl, or the libuv pool).
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/auth-int.h"

/* Base64 of n bytes, NUL-terminated, into out (needs 4*ceil(n/3)+1 bytes). */
static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

char *auth_scram_secret(const char *password, const unsigned char *salt, size_t saltlen,
                        unsigned iterations)
{
    unsigned char salted[AUTH_SCRAM_KEY_LEN], client_key[AUTH_SCRAM_KEY_LEN];
    unsigned char stored_key[AUTH_SCRAM_KEY_LEN], server_key[AUTH_SCRAM_KEY_LEN];
    unsigned int len = 0;
    char *out = NULL;

    /* RFC 5802 §3: SaltedPassword := Hi(password, salt, i) = PBKDF2-HMAC. */
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)saltlen,
                           (int)iterations, EVP_sha256(), sizeof salted, salted))
        goto done;
    if (!HMAC(EVP_sha256(), salted, sizeof salted, (const unsigned char *)"Client Key", 10,
              client_key, &len) || len != sizeof client_key)
        goto done;
    SHA256(client_key, sizeof client_key, stored_key);
    if (!HMAC(EVP_sha256(), salted, sizeof salted, (const unsigned char *)"Server Key", 10,
              server_key, &len) || len != sizeof server_key)
        goto done;

    char s64[64], st64[64], sv64[64];
    if (saltlen > 45)
        goto done;
    b64(salt, saltlen, s64);
    b64(stored_key, sizeof stored_key, st64);
    b64(server_key, sizeof server_key, sv64);
    if (asprintf(&out, "SCRAM-SHA-256$%u:%s$%s:%s", iterations, s64, st64, sv64) < 0)
        out = NULL;
done:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return out;
}

int auth_make_credentials(const char *password, char **pw_hash, char **scram_secret)
{
    *pw_hash = NULL;
    *scram_secret = NULL;
    if (!password || !*password)
        return -1;

    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    /* "$y$" with count 0: libxcrypt's default yescrypt cost; NULL rbytes: OS randomness. */
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting))
        return -1;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -1;
    const char *h = crypt_r(password, setting, cd);
    if (!h || h[0] == '*' || !(*pw_hash = strdup(h))) {
        explicit_bzero(cd, sizeof *cd);
        free(cd);
        return -1;
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);

    unsigned char salt[AUTH_SCRAM_SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1 ||
        !(*scram_secret = auth_scram_secret(password, salt, sizeof salt,
                                            AUTH_SCRAM_ITERATIONS))) {
        free(*pw_hash);
        *pw_hash = NULL;
        return -1;
    }
    return 0;
}

bool auth_check_password(const char *password, const char *pw_hash)
{
    if (!password || !pw_hash || !*pw_hash || !*password)
        return false;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *h = crypt_r(password, pw_hash, cd);
    bool ok = false;
    /* crypt_r returns a "*"-prefixed failure token for a bad setting. */
    if (h && h[0] != '*') {
        size_t n = strlen(pw_hash);
        ok = strlen(h) == n && CRYPTO_memcmp(h, pw_hash, n) == 0;
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}
