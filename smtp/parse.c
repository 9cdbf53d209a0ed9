/*
 * SMTP command-line parser: verbs, paths (RFC 5321 §4.1.2 with RFC 6531
 * UTF-8), MAIL/RCPT parameters. Pure functions over byte ranges.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    { "HELO", SMTP_HELO },   { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL },
    { "RCPT", SMTP_RCPT },   { "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
    { "RSET", SMTP_RSET },   { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
    { "HELP", SMTP_HELP },   { "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN },
    { "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH },
};

enum smtp_verb smtp_parse_verb(const char *line, size_t len, const char **args,
                               size_t *args_len)
{
    size_t n = 0;
    while (n < len && line[n] != ' ')
        n++;
    size_t a = n;
    while (a < len && line[a] == ' ')
        a++;
    size_t end = len;
    while (end > a && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    *args = line + a;
    *args_len = end - a;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == n && strncasecmp(line, verbs[i].name, n) == 0)
            return verbs[i].verb;
    return SMTP_UNKNOWN;
}

/* ---------------------------------------------------------------- cursor */

struct cursor {
    const char *p, *end;
    bool allow_utf8;
    bool saw_utf8;
    bool helo;  /* EHLO/HELO: ASCII only, '_' tolerated in labels */
};

static bool at_end(const struct cursor *c)
{
    return c->p >= c->end;
}

static int peek(const struct cursor *c)
{
    return at_end(c) ? -1 : (unsigned char)*c->p;
}

static bool eat(struct cursor *c, char ch)
{
    if (peek(c) != (unsigned char)ch)
        return false;
    c->p++;
    return true;
}

/* Consumes one well-formed UTF-8 sequence of 2-4 bytes (no overlongs, no surrogates). */
static bool eat_utf8(struct cursor *c)
{
    size_t n = utf8_seq_len((const unsigned char *)c->p, (size_t)(c->end - c->p));
    if (n == 0)
        return false;
    c->p += n;
    c->saw_utf8 = true;
    return true;
}

/* RFC 5322 atext. */
static bool is_atext(int ch)
{
    return ch > 0 && ch < 128 && (isalnum(ch) || strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

static bool eat_atom(struct cursor *c)
{
    const char *start = c->p;
    for (;;) {
        int ch = peek(c);
        if (is_atext(ch))
            c->p++;
        else if (ch >= 0x80 && eat_utf8(c))
            continue;
        else
            break;
    }
    return c->p > start;
}

/* Dot-string = Atom *("." Atom) */
static bool eat_dot_string(struct cursor *c)
{
    if (!eat_atom(c))
        return false;
    while (eat(c, '.'))
        if (!eat_atom(c))
            return false;
    return true;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE (§4.1.2) */
static bool eat_quoted_string(struct cursor *c)
{
    if (!eat(c, '"'))
        return false;
    for (;;) {
        int ch = peek(c);
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch == '\\') {
            c->p++;
            ch = peek(c);
            if (ch < 32 || ch > 126)
                return false;
            c->p++;
        } else if (ch >= 32 && ch <= 126) {
            c->p++;
        } else if (ch >= 0x80) {
            if (!eat_utf8(c))
                return false;
        } else {
            return false;
        }
    }
}

/* sub-domain = Let-dig [Ldh-str], or a U-label under RFC 6531. */
static bool eat_subdomain(struct cursor *c)
{
    const char *start = c->p;
    int last = -1;
    for (;;) {
        int ch = peek(c);
        if (ch >= 0 && ch < 128 && (isalnum(ch) || ch == '-' || (c->helo && ch == '_'))) {
            if (c->p == start && ch == '-')
                return false;
            c->p++;
            last = ch;
        } else if (ch >= 0x80 && !c->helo && eat_utf8(c)) {
            last = 'a';
        } else {
            break;
        }
    }
    return c->p > start && last != '-' && c->p - start <= 63;
}

static bool eat_domain(struct cursor *c)
{
    if (!eat_subdomain(c))
        return false;
    while (eat(c, '.'))
        if (!eat_subdomain(c))
            return false;
    return true;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]" (§4.1.3) */
static bool eat_address_literal(struct cursor *c)
{
    if (!eat(c, '['))
        return false;
    const char *start = c->p;
    while (!at_end(c) && *c->p != ']')
        c->p++;
    if (!eat(c, ']'))
        return false;
    size_t n = (size_t)(c->p - 1 - start);
    char lit[64];
    unsigned char addr[16];
    /* A NUL inside would end the copy early for inet_pton: "[192.0.2.1\0junk]". */
    if (n == 0 || n >= sizeof lit || memchr(start, 0, n))
        return false;
    memcpy(lit, start, n);
    lit[n] = 0;
    if (inet_pton(AF_INET, lit, addr) == 1)
        return true;
    if (n > 5 && strncasecmp(lit, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, lit + 5, addr) == 1;
    /* General-address-literal: Standardized-tag ":" 1*dcontent, where
     * Standardized-tag = Ldh-str: it ends with a letter or digit. */
    const char *colon = strchr(lit, ':');
    if (!colon || colon == lit || colon[1] == 0 || colon[-1] == '-')
        return false;
    for (const char *p = lit; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < 33 || *p > 126 || *p == '[' || *p == '\\')
            return false;
    return true;
}

/* A-d-l = At-domain *( "," At-domain ) ":" — parsed and dropped (§4.1.2). */
static bool skip_source_route(struct cursor *c)
{
    do {
        if (!eat(c, '@') || !eat_domain(c))
            return false;
    } while (eat(c, ','));
    return eat(c, ':');
}

static enum smtp_arg_error parse_path(struct cursor *c, bool allow_null, struct smtp_path *out)
{
    memset(out, 0, sizeof *out);
    if (!eat(c, '<'))
        return SMTP_ARG_PATH;
    if (allow_null && eat(c, '>')) {
        out->null = true;
        return SMTP_ARG_OK;
    }
    bool routed = peek(c) == '@';
    if (routed && !skip_source_route(c))
        return SMTP_ARG_PATH;
    /* The route is dropped, so it does not make the address UTF-8; it still
     * needs SMTPUTF8, which c->saw_utf8 keeps for the check. */
    bool route_utf8 = c->saw_utf8;
    c->saw_utf8 = false;

    const char *local = c->p;
    if (peek(c) == '"' ? !eat_quoted_string(c) : !eat_dot_string(c))
        return SMTP_ARG_PATH;
    size_t local_len = (size_t)(c->p - local);

    /* §4.5.1: "Postmaster" without a domain must be accepted as a recipient.
     * §4.1.1.3 spells it "<Postmaster>": no source route before it. */
    if (!allow_null && !routed && peek(c) == '>' && local_len == 10 &&
        strncasecmp(local, "Postmaster", 10) == 0) {
        c->p++;
        memcpy(out->address, local, local_len);
        out->local_len = local_len;
        out->postmaster = true;
        return SMTP_ARG_OK;
    }
    if (!eat(c, '@'))
        return SMTP_ARG_PATH;
    const char *domain = c->p;
    if (peek(c) == '[' ? !eat_address_literal(c) : !eat_domain(c))
        return SMTP_ARG_PATH;
    size_t domain_len = (size_t)(c->p - domain);
    if (!eat(c, '>'))
        return SMTP_ARG_PATH;

    if (local_len > SMTP_MAX_LOCAL || domain_len > SMTP_MAX_DOMAIN ||
        local_len + 1 + domain_len + 2 > SMTP_MAX_PATH)
        return SMTP_ARG_TOOLONG;
    memcpy(out->address, local, local_len);
    out->address[local_len] = '@';
    memcpy(out->address + local_len + 1, domain, domain_len);
    out->address[local_len + 1 + domain_len] = 0;
    out->local_len = local_len;
    out->utf8 = c->saw_utf8;
    c->saw_utf8 |= route_utf8;
    if (c->saw_utf8 && !c->allow_utf8)
        return SMTP_ARG_NONASCII;
    return SMTP_ARG_OK;
}

/* "FROM:" / "TO:", case-insensitive; spaces after the colon are tolerated
 * (a common client habit the RFC grammar does not allow). */
static bool eat_keyword_colon(struct cursor *c, const char *kw)
{
    size_t n = strlen(kw);
    if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, kw, n) != 0)
        return false;
    c->p += n;
    while (peek(c) == ' ')
        c->p++;
    return true;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value] (§4.1.2) */
static bool next_param(struct cursor *c, const char **kw, size_t *kw_len, const char **val,
                       size_t *val_len)
{
    while (peek(c) == ' ')
        c->p++;
    if (at_end(c))
        return false;
    *kw = c->p;
    while (!at_end(c) && *c->p != ' ' && *c->p != '=')
        c->p++;
    *kw_len = (size_t)(c->p - *kw);
    *val = NULL;
    *val_len = 0;
    if (eat(c, '=')) {
        *val = c->p;
        while (!at_end(c) && *c->p != ' ')
            c->p++;
        *val_len = (size_t)(c->p - *val);
    }
    return true;
}

static bool valid_keyword(const char *kw, size_t n)
{
    if (n == 0 || !isalnum((unsigned char)kw[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)kw[i]) && kw[i] != '-')
            return false;
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), =/ UTF8-non-ascii (RFC 6531 §3.3) */
static bool valid_value(const char *v, size_t n)
{
    struct cursor c = { v, v + n, true, false, false };
    if (n == 0)
        return false;
    while (!at_end(&c)) {
        int ch = peek(&c);
        if (ch >= 0x80) {
            if (!eat_utf8(&c))
                return false;
        } else if (ch < 33 || ch == '=' || ch == 127) {
            return false;
        } else {
            c.p++;
        }
    }
    return true;
}

static bool kw_is(const char *kw, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(kw, name, n) == 0;
}

/* RFC 1870 §6: size-value ::= 1*20DIGIT. Twenty digits can exceed 2^64 - 1;
 * such a value saturates, so the caller answers 552 (too big), not 501. */
static bool parse_size_value(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

enum smtp_arg_error smtp_parse_mail(const char *args, size_t len, struct smtp_path *path,
                                    struct smtp_mail_params *params)
{
    struct cursor c = { args, args + len, true, false, false };
    memset(path, 0, sizeof *path);
    memset(params, 0, sizeof *params);
    if (!eat_keyword_colon(&c, "FROM:"))
        return SMTP_ARG_SYNTAX;
    enum smtp_arg_error err = parse_path(&c, true, path);
    if (err != SMTP_ARG_OK)
        return err;
    if (!at_end(&c) && *c.p != ' ')
        return SMTP_ARG_SYNTAX;

    bool seen_body = false, seen_auth = false;
    const char *kw, *val;
    size_t kw_len, val_len;
    while (next_param(&c, &kw, &kw_len, &val, &val_len)) {
        if (!valid_keyword(kw, kw_len) || (val && !valid_value(val, val_len)))
            return SMTP_ARG_PARAM_SYNTAX;
        if (kw_is(kw, kw_len, "SIZE")) {
            /* RFC 1870 §6 */
            if (params->has_size || !val || !parse_size_value(val, val_len, &params->size))
                return SMTP_ARG_PARAM_SYNTAX;
            params->has_size = true;
        } else if (kw_is(kw, kw_len, "BODY")) {
            /* RFC 6152; BINARYMIME (RFC 3030) is not offered. */
            if (seen_body || !val)
                return SMTP_ARG_PARAM_SYNTAX;
            seen_body = true;
            if (kw_is(val, val_len, "8BITMIME"))
                params->body_8bit = true;
            else if (!kw_is(val, val_len, "7BIT"))
                return SMTP_ARG_PARAM_UNKNOWN;
        } else if (kw_is(kw, kw_len, "SMTPUTF8")) {
            if (params->smtputf8 || val)
                return SMTP_ARG_PARAM_SYNTAX;
            params->smtputf8 = true;
        } else if (kw_is(kw, kw_len, "AUTH")) {
            /* RFC 4954 §5: the original submitter; trusted only between
             * relays we know, so it is accepted and not used. */
            if (seen_auth || !val)
                return SMTP_ARG_PARAM_SYNTAX;
            seen_auth = true;
        } else {
            return SMTP_ARG_PARAM_UNKNOWN;
        }
    }
    if (c.saw_utf8 && !params->smtputf8)
        return SMTP_ARG_NONASCII;
    return SMTP_ARG_OK;
}

enum smtp_arg_error smtp_parse_rcpt(const char *args, size_t len, bool smtputf8,
                                    struct smtp_path *path)
{
    struct cursor c = { args, args + len, smtputf8, false, false };
    memset(path, 0, sizeof *path);
    if (!eat_keyword_colon(&c, "TO:"))
        return SMTP_ARG_SYNTAX;
    enum smtp_arg_error err = parse_path(&c, false, path);
    if (err != SMTP_ARG_OK)
        return err;
    const char *kw, *val;
    size_t kw_len, val_len;
    if (!at_end(&c) && *c.p != ' ')
        return SMTP_ARG_SYNTAX;
    if (next_param(&c, &kw, &kw_len, &val, &val_len))
        return valid_keyword(kw, kw_len) ? SMTP_ARG_PARAM_UNKNOWN : SMTP_ARG_PARAM_SYNTAX;
    return SMTP_ARG_OK;
}

/* ehlo = "EHLO" SP ( Domain / address-literal ) (§4.1.1.1). */
bool smtp_valid_helo(const char *s, size_t len)
{
    struct cursor c = { s, s + len, false, false, true };
    if (len == 0 || len > SMTP_MAX_DOMAIN)
        return false;
    if (peek(&c) == '[')
        return eat_address_literal(&c) && at_end(&c);
    /* Domain, with '_' tolerated: many desktop clients send host names
     * that carry one, and refusing them helps nobody. ASCII only: the
     * client cannot know yet whether we take SMTPUTF8, and the name goes
     * into the Received field of messages that may be plain ASCII. */
    return eat_domain(&c) && at_end(&c);
}
