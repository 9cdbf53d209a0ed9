/*
 * The SMTP client engine (smtp/client.c) against any server: the input's
 * first four bytes choose the options and the envelope, the rest is split
 * at LF into reply lines. A driver plays the transport through every
 * action (writes, TLS, the body, reuse with smtpc_reset, QUIT), pretending
 * each succeeds, and feeds the lines when the engine reads; when they run
 * out, the connection is lost. Properties checked:
 *  - the engine ends (SMTPC_CLOSE) within a bound of steps: no loop, no
 *    stuck state, every action makes progress;
 *  - what it writes is whole CRLF-ended command lines, no bare CR/LF/NUL,
 *    never the password in clear;
 *  - at QUIT_DONE and CLOSE every recipient is decided, flags and status
 *    class agree, texts are bounded, printable (CRLF between lines) and
 *    hold no credential;
 *  - timeouts stay within RFC 5321 §4.5.3.2's largest (10 min).
 * The same bytes also go through the DATA encoder, whose output the
 * server's decoder (smtp_data_decode) must turn back into the message
 * with CRLF line ends, ended exactly at the final dot.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static const char PASSWORD[] = "Sekr1t-pw";
static const char PASSWORD_B64[] = "U2VrcjF0LXB3";
static bool with_auth;  /* the engine knows the password: it must never show it */

/* --------------------------------------------------------- the session */

static void check_output(const char *p, size_t n)
{
    CHECK(n >= 3 && p[n - 2] == '\r' && p[n - 1] == '\n');
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(p[i] != 0);
        if (p[i] == '\r') {
            CHECK(i + 1 < n && p[i + 1] == '\n');
            CHECK(line > 0 && line < 2048);
            line = 0;
            i++;
        } else {
            CHECK(p[i] != '\n');
            line++;
        }
    }
    CHECK(!memmem(p, n, PASSWORD, sizeof PASSWORD - 1));
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* "c.s.d": class 2, 4 or 5; subject and detail 1-3 digits. */
static void check_status(const char *s)
{
    CHECK(memchr(s, 0, 16) != NULL);
    CHECK(s[0] == '2' || s[0] == '4' || s[0] == '5');
    CHECK(s[1] == '.');
    size_t i = 2, k = 0;
    for (; is_digit(s[i]); i++)
        k++;
    CHECK(k >= 1 && k <= 3 && s[i] == '.');
    i++;
    for (k = 0; is_digit(s[i]); i++)
        k++;
    CHECK(k >= 1 && k <= 3 && s[i] == 0);
}

static void check_text(const char *t)
{
    CHECK(t != NULL);
    size_t n = strlen(t);
    CHECK(n <= SMTPC_MAX_TEXT);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '\r') {
            CHECK(t[i + 1] == '\n');
            i++;
            continue;
        }
        CHECK(ch >= 0x20 && ch != 0x7f);
    }
    CHECK(!with_auth || (!strstr(t, PASSWORD) && !strstr(t, PASSWORD_B64)));
}

static void check_result(const struct smtpc_result *r, bool final)
{
    CHECK(r != NULL);
    check_text(r->text);
    if (!final && r->stage == SMTPC_STAGE_NONE)
        return;
    CHECK(r->stage > SMTPC_STAGE_NONE && r->stage <= SMTPC_STAGE_BODY);
    CHECK(!(r->permanent && r->tempfail));
    CHECK(r->code == 0 || (r->code >= 200 && r->code <= 559));
    check_status(r->status);
    if (r->permanent)
        CHECK(r->status[0] == '5' && (r->code == 0 || r->code / 100 == 5));
    else if (r->tempfail)
        CHECK(r->status[0] == '4');
    else
        CHECK(r->status[0] == '2' && r->code / 100 == 2);
}

static void check_results(struct smtpc *c, size_t n, bool final)
{
    for (size_t i = 0; i < n; i++) {
        const struct smtpc_result *r = smtpc_rcpt_result(c, i);
        check_result(r, final);
        /* Delivered means the final reply said so. */
        if (final && !r->permanent && !r->tempfail)
            CHECK(r->stage == SMTPC_STAGE_BODY);
    }
    CHECK(smtpc_rcpt_result(c, n) == NULL);
    if (smtpc_result(c))
        check_result(smtpc_result(c), true);
}

struct lines {
    const char *p, *end;
};

static bool next_line(struct lines *l, const char **line, size_t *len)
{
    if (l->p >= l->end)
        return false;
    const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
    const char *e = nl ? nl : l->end;
    *line = l->p;
    *len = (size_t)(e - l->p);
    l->p = nl ? nl + 1 : l->end;
    return true;
}

static const char *const RCPTS[] = {
    "bob@example.org", "\"carol smith\"@example.org", "postmaster", "d\xc3\xb6rte@example.org",
};

static void run_session(const uint8_t *cfg, const char *data, size_t size)
{
    static const enum smtpc_tls tls[] = { SMTPC_TLS_NONE, SMTPC_TLS_OPPORTUNISTIC,
                                          SMTPC_TLS_REQUIRED, SMTPC_TLS_REQUIRED };
    struct smtpc_opts o = {
        .helo = "mail.example.test",
        .starttls = tls[cfg[0] & 3],
        .tls_active = cfg[0] & 4,
        .last_mx = cfg[0] & 8,
        .auth_user = cfg[0] & 16 ? "user" : NULL,
        .auth_pass = cfg[0] & 16 ? PASSWORD : NULL,
    };
    size_t n_rcpts = 1 + (cfg[1] & 3);
    const char *rcpts[4];
    for (size_t i = 0; i < n_rcpts; i++)
        rcpts[i] = RCPTS[cfg[1] & 4 ? i : i % 3];  /* the UTF-8 one only when chosen */
    struct smtpc_envelope e = {
        .mail_from = cfg[0] & 32 ? "" : "alice@example.test",
        .rcpts = rcpts,
        .n_rcpts = n_rcpts,
        .size = (uint64_t)cfg[2] << (cfg[3] & 31),
        .eight_bit = cfg[0] & 64,
        .smtputf8 = cfg[0] & 128,
    };
    with_auth = o.auth_pass != NULL;
    bool tls_fails = cfg[1] & 8, race_body = cfg[1] & 16;
    unsigned resets = (cfg[1] >> 5) & 3;

    struct smtpc *c;
    if (smtpc_new(&o, &e, &c) != 0)
        abort();

    struct lines l = { data, data + size };
    size_t n_lines = 0;
    for (const char *p = data; p < data + size; p++)
        n_lines += *p == '\n';
    size_t bound = 8 * (n_lines + 1) + 16 * (resets + 1) + 64, steps = 0;
    bool done = false;
    while (!done) {
        CHECK(++steps <= bound);
        enum smtpc_action a = smtpc_next(c);
        CHECK(smtpc_timeout_ms(c) <= 10 * 60 * 1000);
        const char *line;
        size_t len;
        switch (a) {
        case SMTPC_WRITE: {
            const char *p;
            size_t n;
            smtpc_output(c, &p, &n);
            check_output(p, n);
            CHECK(smtpc_next(c) != SMTPC_WRITE);  /* taken means sent */
            break;
        }
        case SMTPC_READ:
            CHECK(smtpc_timeout_ms(c) > 0);
            check_results(c, n_rcpts, false);
            if (next_line(&l, &line, &len))
                smtpc_input(c, line, len);
            else
                smtpc_connection_lost(c);
            break;
        case SMTPC_START_TLS:
            if (tls_fails)
                smtpc_tls_failed(c);
            else
                smtpc_tls_done(c);
            break;
        case SMTPC_SEND_BODY:
            CHECK(smtpc_body_mode(c) == SMTPC_BODY_DATA || smtpc_body_mode(c) == SMTPC_BODY_BDAT);
            if (race_body && next_line(&l, &line, &len))
                smtpc_input(c, line, len);  /* a reply racing the body */
            smtpc_body_sent(c);
            break;
        case SMTPC_QUIT_DONE:
            CHECK(smtpc_timeout_ms(c) == 0);
            check_results(c, n_rcpts, true);
            if (resets > 0) {
                resets--;
                CHECK(smtpc_reset(c, &e) == 0);
                check_results(c, n_rcpts, false);
            } else {
                CHECK(smtpc_quit(c) == 0);
            }
            break;
        case SMTPC_CLOSE:
            check_results(c, n_rcpts, true);
            CHECK(smtpc_input(c, "250 ok", 6) == -1);
            CHECK(smtpc_reset(c, &e) == -1 && smtpc_quit(c) == -1);
            done = true;
            break;
        default:
            abort();
        }
    }
    smtpc_free(&c);
    CHECK(c == NULL);
}

/* ------------------------------------------------------- DATA encoder */

struct out {
    char *p;
    size_t len, cap;
};

static void sink(void *arg, const char *p, size_t n)
{
    struct out *o = arg;
    CHECK(o->len + n <= o->cap);
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

/* The message as the encoder must send it: every CR, LF or CRLF a CRLF,
 * and a last line ended. */
static size_t normalize(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
            out[o++] = '\r';
            out[o++] = '\n';
        } else {
            out[o++] = in[i];
        }
    }
    if (o > 0 && !(o >= 2 && out[o - 2] == '\r' && out[o - 1] == '\n')) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

static void run_encoder(const uint8_t *cfg, const char *data, size_t size)
{
    struct out enc = { malloc(2 * size + 8), 0, 2 * size + 8 };
    struct out dec = { malloc(2 * size + 8), 0, 2 * size + 8 };
    char *want = malloc(2 * size + 8);
    if (!enc.p || !dec.p || !want)
        abort();
    struct smtpc_dot d = { 0 };
    size_t step = 1 + cfg[3] % 7;  /* fed in pieces: the state carries over */
    for (size_t i = 0; i < size; i += step)
        smtpc_dot_encode(&d, data + i, size - i < step ? size - i : step, sink, &enc);
    smtpc_dot_end(&d, sink, &enc);

    struct smtp_data_decoder dd = { 0 };
    bool fin = false;
    size_t used = smtp_data_decode(&dd, enc.p, enc.len, sink, &dec, &fin);
    CHECK(fin && used == enc.len && !dd.bare_eol);
    size_t wn = normalize(data, size, want);
    CHECK(dec.len == wn && memcmp(dec.p, want, wn) == 0);
    free(enc.p);
    free(dec.p);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 65536)
        return 0;
    /* A private copy: the engine must not read past the end. */
    size_t n = size - 4;
    char *text = malloc(n ? n : 1);
    if (!text)
        return 0;
    memcpy(text, data + 4, n);
    run_session(data, text, n);
    run_encoder(data, text, n);
    free(text);
    return 0;
}
