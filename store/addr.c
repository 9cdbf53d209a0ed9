/*
 * addr.c — address syntax and normal form.
 *
 * Accepted: local@domain where local is dot-atom text (RFC 5322 §3.2.3) or
 * UTF-8 (RFC 6531), at most 64 bytes, and domain is LDH labels of 1..63
 * bytes, at most 253 bytes (RFC 5321 §4.5.3.1, RFC 1035 §2.3.1). Quoted
 * local parts and address literals are refused: nobody hosts mailboxes
 * under them. The domain is lowercased; the local part is kept as written
 * and compared case-insensitively (ASCII) by the database.
 */
#include <ctype.h>
#include <string.h>

#include "store/store-int.h"

/* RFC 5322 §3.2.3 atext, plus any non-ASCII byte (RFC 6531 UTF-8). */
static bool atext(unsigned char c)
{
    if (c >= 0x80 || isalnum(c))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool local_valid(const char *p, size_t len)
{
    if (len == 0 || len > STORE_LOCAL_MAX || p[0] == '.' || p[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '.') {
            if (p[i + 1] == '.')
                return false;
        } else if (!atext(c)) {
            return false;
        }
    }
    return true;
}

static bool domain_valid_n(const char *p, size_t len)
{
    if (len == 0 || len > STORE_DOMAIN_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)p[i] : '.';
        if (c == '.') {
            /* RFC 1123 §2.1: labels are 1..63 LDH bytes, no edge hyphens. */
            if (label == 0 || label > 63 || p[i - 1] == '-' || p[i - label] == '-')
                return false;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

bool store_domain_valid(const char *domain)
{
    return domain && domain_valid_n(domain, strlen(domain));
}

int store_addr_norm(const char *address, bool allow_catchall, char *out, size_t outlen)
{
    if (!address)
        return STORE_INVALID;
    size_t len = strnlen(address, STORE_ADDR_MAX + 1);
    if (len > STORE_ADDR_MAX || len + 1 > outlen)
        return STORE_INVALID;
    const char *at = memchr(address, '@', len);
    if (!at || memchr(at + 1, '@', len - (size_t)(at - address) - 1))
        return STORE_INVALID;
    size_t llen = (size_t)(at - address);
    size_t dlen = len - llen - 1;
    if (llen == 0 ? !allow_catchall : !local_valid(address, llen))
        return STORE_INVALID;
    if (!domain_valid_n(at + 1, dlen))
        return STORE_INVALID;
    memcpy(out, address, llen + 1);
    for (size_t i = 0; i < dlen; i++)
        out[llen + 1 + i] = (char)tolower((unsigned char)at[1 + i]);
    out[len] = '\0';
    return STORE_OK;
}

const char *store_addr_domain(const char *norm)
{
    const char *at = strrchr(norm, '@');
    return at ? at + 1 : norm + strlen(norm);
}
