/*
 * The SMTP command-line parser against any bytes: smtp_parse_verb, then the
 * arguments (and the whole input) through smtp_parse_mail, smtp_parse_rcpt
 * with and without SMTPUTF8, and smtp_valid_helo. Properties checked:
 *  - the verb's arguments lie inside the line, trimmed of spaces;
 *  - an accepted path fits the RFC 5321 §4.5.3.1 limits, is NUL-terminated,
 *    has its '@' at local_len, was copied from the input, is flagged utf8
 *    exactly when it holds non-ASCII, and parses again to itself;
 *  - an accepted HELO argument is short, printable ASCII, and outside an
 *    address literal holds no '@', '<', '>' or '['.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static bool has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* The invariants of a path the parser accepted from in[0..n). */
static void check_path(const struct smtp_path *p, const char *in, size_t n, bool mail,
                       bool utf8_ok)
{
    CHECK(memchr(p->address, 0, sizeof p->address) != NULL);
    size_t len = strlen(p->address);
    if (p->null) {
        CHECK(mail && len == 0 && p->local_len == 0 && !p->postmaster && !p->utf8);
        return;
    }
    CHECK(len > 0 && len + 2 <= SMTP_MAX_PATH);
    CHECK(p->local_len > 0 && p->local_len <= SMTP_MAX_LOCAL && p->local_len <= len);
    CHECK(memmem(in, n, p->address, len) != NULL);
    CHECK(p->utf8 == has_non_ascii(p->address, len));
    CHECK(!p->utf8 || utf8_ok);
    if (p->postmaster) {
        CHECK(!mail && len == 10 && p->local_len == 10 && !p->utf8);
        CHECK(strcasecmp(p->address, "postmaster") == 0);
        return;
    }
    CHECK(p->address[p->local_len] == '@');
    size_t domain_len = len - p->local_len - 1;
    CHECK(domain_len > 0 && domain_len <= SMTP_MAX_DOMAIN);

    /* Round trip: the canonical form parses to the same path. */
    char line[SMTP_MAX_PATH + 32];
    struct smtp_path again;
    size_t ln = (size_t)snprintf(line, sizeof line, "TO:<%s>", p->address);
    CHECK(smtp_parse_rcpt(line, ln, true, &again) == SMTP_ARG_OK);
    CHECK(strcmp(again.address, p->address) == 0 && again.local_len == p->local_len &&
          again.utf8 == p->utf8 && !again.null && !again.postmaster);
    if (!p->utf8)
        CHECK(smtp_parse_rcpt(line, ln, false, &again) == SMTP_ARG_OK);
    else
        CHECK(smtp_parse_rcpt(line, ln, false, &again) == SMTP_ARG_NONASCII);
    struct smtp_mail_params m;
    ln = (size_t)snprintf(line, sizeof line, "FROM:<%s> SMTPUTF8", p->address);
    CHECK(smtp_parse_mail(line, ln, &again, &m) == SMTP_ARG_OK);
    CHECK(strcmp(again.address, p->address) == 0 && m.smtputf8);
}

static void check_args(const char *a, size_t n)
{
    struct smtp_path p;
    struct smtp_mail_params m;
    enum smtp_arg_error e = smtp_parse_mail(a, n, &p, &m);
    CHECK(e <= SMTP_ARG_PARAM_UNKNOWN);
    if (e == SMTP_ARG_OK) {
        check_path(&p, a, n, true, m.smtputf8);
        CHECK(!p.utf8 || m.smtputf8);
    }

    enum smtp_arg_error e1 = smtp_parse_rcpt(a, n, false, &p);
    CHECK(e1 <= SMTP_ARG_PARAM_UNKNOWN);
    if (e1 == SMTP_ARG_OK)
        check_path(&p, a, n, false, false);
    struct smtp_path p8;
    enum smtp_arg_error e8 = smtp_parse_rcpt(a, n, true, &p8);
    CHECK(e8 <= SMTP_ARG_PARAM_UNKNOWN && e8 != SMTP_ARG_NONASCII);
    if (e8 == SMTP_ARG_OK)
        check_path(&p8, a, n, false, true);
    /* SMTPUTF8 only widens what RCPT accepts. */
    if (e1 == SMTP_ARG_OK)
        CHECK(e8 == SMTP_ARG_OK && strcmp(p.address, p8.address) == 0);

    if (smtp_valid_helo(a, n)) {
        CHECK(n > 0 && n <= SMTP_MAX_DOMAIN);
        /* dcontent (§4.1.3) may hold '@', '<' and '>'; a Domain may not. */
        bool literal = a[0] == '[';
        CHECK(!literal || a[n - 1] == ']');
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)a[i];
            CHECK(ch > 32 && ch < 127);
            CHECK(literal || (ch != '@' && ch != '<' && ch != '>' && ch != '['));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy: the parser must not read past size. */
    char *line = malloc(size ? size : 1);
    if (!line)
        return 0;
    memcpy(line, data, size);

    const char *args = NULL;
    size_t args_len = 0;
    enum smtp_verb v = smtp_parse_verb(line, size, &args, &args_len);
    CHECK(v <= SMTP_UNKNOWN);
    CHECK(args >= line && args <= line + size && args_len <= (size_t)(line + size - args));
    if (args_len) {
        CHECK(args[0] != ' ');
        CHECK(args[args_len - 1] != ' ' && args[args_len - 1] != '\t');
        CHECK(args > line && args[-1] == ' ');
    }
    if (v != SMTP_UNKNOWN) {
        const char *sp = memchr(line, ' ', size);
        size_t verb_len = sp ? (size_t)(sp - line) : size;
        CHECK(verb_len >= 4 && verb_len <= 8);
    }

    check_args(args, args_len);
    if (args != line || args_len != size)
        check_args(line, size);
    free(line);
    return 0;
}
