/*
 * POP3 command-line parser: the keyword, the arguments, numbers. Pure
 * functions over byte ranges (RFC 1939 §3, RFC 2449 §4).
 */
#include <string.h>
#include <strings.h>

#include "pop3/pop3.h"

static const struct {
    const char *name;
    enum pop3_verb verb;
} verbs[] = {
    { "USER", POP3_USER }, { "PASS", POP3_PASS }, { "APOP", POP3_APOP },
    { "AUTH", POP3_AUTH }, { "STLS", POP3_STLS }, { "CAPA", POP3_CAPA },
    { "STAT", POP3_STAT }, { "LIST", POP3_LIST }, { "RETR", POP3_RETR },
    { "DELE", POP3_DELE }, { "NOOP", POP3_NOOP }, { "RSET", POP3_RSET },
    { "QUIT", POP3_QUIT }, { "TOP", POP3_TOP },   { "UIDL", POP3_UIDL },
};

static enum pop3_verb find_verb(const char *p, size_t n)
{
    if (n < 3 || n > 4)
        return POP3_UNKNOWN;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == n && strncasecmp(p, verbs[i].name, n) == 0)
            return verbs[i].verb;
    return POP3_UNKNOWN;
}

/* An argument byte: printable ASCII or any byte of UTF-8 (addresses). */
static bool arg_byte(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f;
}

enum pop3_parse pop3_parse_line(const char *line, size_t len, struct pop3_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    size_t n = 0;
    while (n < len && line[n] != ' ')
        n++;
    cmd->verb = find_verb(line, n);
    if (cmd->verb == POP3_UNKNOWN)
        return POP3_PARSE_UNKNOWN;

    if (cmd->verb == POP3_PASS) {
        /* RFC 1939 §7: "PASS string"; the string may hold spaces. */
        size_t a = n < len ? n + 1 : len;
        cmd->rest.p = line + a;
        cmd->rest.len = len - a;
        if (memchr(cmd->rest.p, '\0', cmd->rest.len) || memchr(cmd->rest.p, '\r', cmd->rest.len)
            || memchr(cmd->rest.p, '\n', cmd->rest.len))
            return POP3_PARSE_SYNTAX;
        if (cmd->rest.len > POP3_MAX_PASS)
            return POP3_PARSE_TOOLONG;
        if (cmd->rest.len > 0) {
            cmd->argc = 1;
            cmd->argv[0] = cmd->rest;
        }
        return POP3_PARSE_OK;
    }

    size_t i = n;
    for (;;) {
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ') {
            if (!arg_byte((unsigned char)line[i]))
                return POP3_PARSE_SYNTAX;
            i++;
        }
        if (cmd->argc == POP3_MAX_ARGS)
            return POP3_PARSE_SYNTAX;
        size_t alen = i - start;
        /* RFC 5034 §4: the initial response is exempt from the 40 (here
         * POP3_MAX_ARG) limit; the line limit still holds. */
        size_t max = cmd->verb == POP3_AUTH && cmd->argc == 1 ? POP3_MAX_AUTH_LINE : POP3_MAX_ARG;
        if (alen > max)
            return POP3_PARSE_TOOLONG;
        cmd->argv[cmd->argc].p = line + start;
        cmd->argv[cmd->argc].len = alen;
        cmd->argc++;
    }
    return POP3_PARSE_OK;
}

bool pop3_parse_number(const char *p, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

void pop3_uidl(uint32_t uidvalidity, uint32_t uid, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[i] = hex[(uidvalidity >> (28 - 4 * i)) & 0xf];
        out[8 + i] = hex[(uid >> (28 - 4 * i)) & 0xf];
    }
    out[POP3_UIDL_LEN] = '\0';
}
