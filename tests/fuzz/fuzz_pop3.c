/*
 * The pure halves of pop3/ against any bytes.
 *
 * Parser (pop3_parse_line, pop3_parse_number), properties:
 *  - the result and verb are in range; arguments lie inside the line, are
 *    non-empty, hold no space or control byte and keep to their limits;
 *  - PASS's text is the rest of the line after "PASS ";
 *  - an accepted command, written again as "VERB a1 a2", parses to itself;
 *  - a number accepted is all digits, <= 10 of them, and its value.
 *
 * Encoder (pop3_encode / pop3_encode_finish), over the input as a message:
 *  - split invariance: any split of the input and any output window give
 *    the same bytes as one call;
 *  - what a client reads back (lines split at CRLF, one leading dot removed
 *    from a line that has one, up to the line ".") is the message with bare
 *    LF made CRLF and a final line end added if missing;
 *  - the response holds "\n.\r\n" only at its very end (no client, LF- or
 *    CRLF-minded, sees it end early), and every LF in it follows a CR;
 *  - TOP n is a prefix of RETR up to its terminator.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3.h"

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static const char *const names[] = {
    [POP3_USER] = "USER", [POP3_PASS] = "PASS", [POP3_APOP] = "APOP", [POP3_AUTH] = "AUTH",
    [POP3_STLS] = "STLS", [POP3_CAPA] = "CAPA", [POP3_STAT] = "STAT", [POP3_LIST] = "LIST",
    [POP3_RETR] = "RETR", [POP3_DELE] = "DELE", [POP3_NOOP] = "NOOP", [POP3_RSET] = "RSET",
    [POP3_QUIT] = "QUIT", [POP3_TOP] = "TOP",   [POP3_UIDL] = "UIDL",
};

static void check_number(const char *p, size_t n)
{
    uint32_t v;
    if (!pop3_parse_number(p, n, &v))
        return;
    CHECK(n >= 1 && n <= 10);
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(p[i] >= '0' && p[i] <= '9');
        w = w * 10 + (uint64_t)(p[i] - '0');
    }
    CHECK(w == v);
}

static void check_parse(const char *line, size_t size)
{
    struct pop3_cmd c;
    enum pop3_parse r = pop3_parse_line(line, size, &c);
    CHECK(r <= POP3_PARSE_TOOLONG);
    CHECK(c.verb <= POP3_UNKNOWN);
    CHECK((r == POP3_PARSE_UNKNOWN) == (c.verb == POP3_UNKNOWN));
    if (r != POP3_PARSE_OK)
        return;
    size_t vlen = strlen(names[c.verb]);
    CHECK(size >= vlen && (size == vlen || line[vlen] == ' '));
    CHECK(c.argc <= POP3_MAX_ARGS);
    if (c.verb == POP3_PASS) {
        CHECK(c.argc == (c.rest.len > 0));
        CHECK(c.rest.len <= POP3_MAX_PASS);
        CHECK(size == vlen ? c.rest.len == 0 : c.rest.p == line + vlen + 1);
        CHECK(!memchr(c.rest.p, '\0', c.rest.len) && !memchr(c.rest.p, '\n', c.rest.len));
        return;
    }
    char again[2 * POP3_MAX_AUTH_LINE];
    size_t k = (size_t)snprintf(again, sizeof again, "%s", names[c.verb]);
    for (unsigned i = 0; i < c.argc; i++) {
        const struct pop3_arg *a = &c.argv[i];
        CHECK(a->len > 0 && a->p >= line && a->p + a->len <= line + size);
        CHECK(a->len <= (c.verb == POP3_AUTH && i == 1 ? POP3_MAX_AUTH_LINE : POP3_MAX_ARG));
        for (size_t j = 0; j < a->len; j++) {
            unsigned char ch = (unsigned char)a->p[j];
            CHECK(ch > 0x20 && ch != 0x7f);
        }
        CHECK(a->p[-1] == ' ');
        again[k++] = ' ';
        memcpy(again + k, a->p, a->len);
        k += a->len;
        check_number(a->p, a->len);
    }
    struct pop3_cmd c2;
    CHECK(pop3_parse_line(again, k, &c2) == POP3_PARSE_OK);
    CHECK(c2.verb == c.verb && c2.argc == c.argc);
    for (unsigned i = 0; i < c.argc; i++)
        CHECK(c2.argv[i].len == c.argv[i].len &&
              memcmp(c2.argv[i].p, c.argv[i].p, c.argv[i].len) == 0);
}

/* A small deterministic generator for splits, seeded by the input. */
static uint32_t rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The whole response; *len set. Caller frees. */
static char *encode(const uint8_t *in, size_t n, bool top, uint32_t lines, uint32_t seed)
{
    struct pop3_encoder e;
    pop3_encoder_init(&e, top, lines);
    char *out = malloc(2 * n + POP3_ENCODE_FINISH_MAX + 1);
    char win[97];
    size_t o = 0, off = 0;
    uint32_t s = seed | 1;
    while (off < n) {
        size_t take = seed ? 1 + rng(&s) % 300 : n - off;
        if (take > n - off)
            take = n - off;
        size_t cap = seed ? 2 + rng(&s) % (sizeof win - 1) : sizeof win;
        size_t w;
        size_t used = pop3_encode(&e, (const char *)in + off, take, win, cap, &w);
        CHECK(w <= cap && used <= take && (used > 0 || e.done));
        memcpy(out + o, win, w);
        o += w;
        off += used;
    }
    o += pop3_encode_finish(&e, out + o);
    out[o] = '\0';
    /* Encoded length is returned through the terminator search below. */
    return out;
}

static size_t response_len(const char *r)
{
    /* Ends at the first "\r\n.\r\n" (or a leading ".\r\n"): checked unique. */
    if (strncmp(r, ".\r\n", 3) == 0)
        return 3;
    const char *p = strstr(r, "\r\n.\r\n");
    CHECK(p != NULL);
    return (size_t)(p - r) + 5;
}

static void check_encoder(const uint8_t *in, size_t n)
{
    if (memchr(in, '\0', n))
        return; /* keeps strstr usable; NUL is an ordinary byte otherwise */
    char *one = encode(in, n, false, 0, 0);
    size_t len = response_len(one);
    CHECK(one[len] == '\0'); /* nothing after the terminator */
    uint32_t seed = (uint32_t)n * 2654435761u + (n ? in[0] : 7u);
    char *split = encode(in, n, false, 0, seed);
    CHECK(strcmp(one, split) == 0);
    free(split);

    /* Every LF follows a CR; "\n.\r\n" only as the end. */
    for (size_t i = 0; i < len; i++)
        if (one[i] == '\n')
            CHECK(i > 0 && one[i - 1] == '\r');
    const char *early = strstr(one, "\n.\r\n");
    CHECK(!early || (size_t)(early - one) + 4 == len);

    /* What a client reads back. */
    char *want = malloc(2 * n + 3);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            want[w++] = '\r';
        want[w++] = (char)in[i];
    }
    if (w && want[w - 1] != '\n') {
        if (want[w - 1] != '\r')
            want[w++] = '\r';
        want[w++] = '\n';
    }
    char *got = malloc(len + 1);
    size_t g = 0;
    const char *p = one;
    for (;;) {
        const char *eol = strstr(p, "\r\n");
        CHECK(eol);
        size_t l = (size_t)(eol - p);
        if (l == 1 && p[0] == '.')
            break;
        if (p[0] == '.') {
            CHECK(l >= 2); /* a stuffed line is never the bare "." */
            p++;
            l--;
        }
        memcpy(got + g, p, l);
        g += l;
        got[g++] = '\r';
        got[g++] = '\n';
        p = eol + 2;
    }
    CHECK(g == w && memcmp(got, want, w) == 0);
    free(got);
    free(want);

    /* TOP: a prefix of RETR. */
    uint32_t lines = n ? in[n - 1] % 6 : 0;
    char *top = encode(in, n, true, lines, seed ^ 0x9e3779b9u);
    size_t tlen = response_len(top);
    CHECK(top[tlen] == '\0' && tlen <= len);
    CHECK(memcmp(top, one, tlen - 3) == 0);
    free(top);
    free(one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy: the parser must not read past size. */
    char *line = malloc(size ? size : 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    check_parse(line, size);
    check_number(line, size);
    free(line);
    check_encoder(data, size);
    return 0;
}
