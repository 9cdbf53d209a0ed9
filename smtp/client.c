/*
 * The SMTP client engine of the outbound relay: RFC 5321 from the client
 * side, with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), STARTTLS (RFC 3207), AUTH
 * (RFC 4954) and enhanced status codes (RFC 2034, RFC 3463).
 *
 * A pure state machine (smtp.h "SMTP client", docs/smtp-client.md): the
 * transport asks smtpc_next() what to do and hands in reply lines. Every
 * command written pushes its reply onto a FIFO (`due`); each reply pops
 * the head and goes to that command's handler in the command table. A
 * PIPELINING group is several pushes before the first reply comes.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

#define MINUTE (60u * 1000u)
#define MAX_COMMAND 2048  /* bytes of one command line we write (AUTH PLAIN is the longest) */

/* Commands whose reply we wait for (the greeting counts as one). */
enum cmd {
    CMD_GREETING, CMD_EHLO, CMD_HELO, CMD_STARTTLS, CMD_AUTH_PLAIN, CMD_AUTH_LOGIN,
    CMD_AUTH_USER, CMD_AUTH_PASS, CMD_AUTH_CANCEL, CMD_RSET, CMD_MAIL, CMD_RCPT, CMD_DATA,
    CMD_DOT, CMD_BDAT, CMD_ABORT_DOT, CMD_QUIT, CMD_COUNT
};

enum state {
    ST_SESSION,      /* greeting, EHLO/HELO, STARTTLS, AUTH */
    ST_TLS,          /* the transport does the handshake */
    ST_TRANSACTION,  /* RSET, MAIL, RCPT, DATA, the final reply */
    ST_IDLE,         /* the transaction is over: QUIT_DONE */
    ST_QUIT,         /* QUIT written */
    ST_CLOSED,
};

enum rcpt_state { RCPT_PENDING, RCPT_ACCEPTED, RCPT_DONE };

struct rcpt {
    char *addr;
    enum rcpt_state st;
    struct smtpc_result res;
};

/* One transaction's envelope, copied and checked. */
struct env {
    char *from;
    struct rcpt *rcpt;
    size_t n;
    uint64_t size;
    bool body_8bit;   /* BODY=8BITMIME when offered: 8-bit body or UTF-8 header fields */
    bool need_utf8;   /* SMTPUTF8 needed */
    bool addr_utf8;   /* ... because an address is not ASCII */
};

/* A reply or a local decision, before it becomes results. */
struct verdict {
    int code;
    char status[16];
    const char *text;
    size_t len;
    bool permanent, tempfail;
};

/* Result texts, freed together with the transaction. */
struct text {
    struct text *next;
    char s[];
};

struct verdict;
struct smtpc;

/* The command table (defined below the handlers). */
struct cmd_def {
    enum smtpc_stage stage;
    unsigned timeout_ms;
    unsigned positive;  /* POS(2), POS(3): the positive reply classes the command can get */
    void (*on_reply)(struct smtpc *c, const struct verdict *r);
};
#define POS(k) (1u << (k))
static const struct cmd_def cmds[CMD_COUNT];

struct smtpc {
    char helo[SMTP_MAX_DOMAIN + 1];
    char *user, *pass;  /* NULL without AUTH; wiped when freed */
    enum smtpc_tls starttls;
    bool tls_active, last_mx;

    enum state state;
    enum smtpc_stage last_stage;  /* of the latest command written */
    unsigned ext, ext_new;        /* EHLO keywords: known, and being read */
    uint64_t size_limit, size_new;
    bool tls_refused;             /* opportunistic STARTTLS was refused: plain text */
    bool authed;
    bool need_rset;               /* the server may hold a transaction of ours */

    /* the transaction */
    struct env env;
    size_t rcpt_sent, rcpt_replied, accepted;
    bool pipelined, chunking;     /* as decided when MAIL was written */
    bool mail_failed;
    enum smtpc_body body;
    bool body_pending;            /* SEND_BODY until smtpc_body_sent() */
    struct smtpc_result tx;
    bool has_tx;
    struct text *texts;

    /* replies due, in order: a ring */
    enum cmd *due;
    size_t due_cap, due_head, due_len;
    size_t due_sent;  /* the first due_sent of them were written: their replies may come */

    /* the reply being received */
    struct {
        int code;          /* 0: none under way */
        unsigned lines;
        size_t bytes;
        char status[16];
        char text[SMTPC_MAX_TEXT + 1];
        size_t len;
    } in;

    /* output: command lines not yet taken, or taken until the next call */
    char *out;
    size_t out_len, out_cap;
    bool out_taken, out_secret;
};

/* ------------------------------------------------------------ helpers */

static int reply_class(int code)
{
    return code / 100;
}

static void wipe(void *p, size_t n)
{
    if (p)
        explicit_bzero(p, n);
}

static char *dup_secret(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char **s)
{
    if (*s) {
        wipe(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

/* Base64 (RFC 4648 §4) of in[0, n) into out, NUL-terminated; out holds 4 * ((n + 2) / 3) + 1. */
static void b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = 0;
}

/* -------------------------------------------------------- the envelope */

/*
 * An address as the server's own parser takes it, and exactly as given:
 * "x@y> AUTH=<" parses as "<x@y>" plus a parameter, and must not pass.
 */
static bool valid_address(const char *a, bool mail, bool *utf8)
{
    size_t n = strnlen(a, SMTP_MAX_PATH);
    if (n > SMTP_MAX_PATH - 2)
        return false;
    if (mail && n == 0)
        return true;  /* the null sender */
    char line[SMTP_MAX_PATH + 32];
    int k = snprintf(line, sizeof line, mail ? "FROM:<%s> SMTPUTF8" : "TO:<%s>", a);
    struct smtp_path p;
    struct smtp_mail_params m;
    enum smtp_arg_error err = mail ? smtp_parse_mail(line, (size_t)k, &p, &m)
                                   : smtp_parse_rcpt(line, (size_t)k, true, &p);
    if (err != SMTP_ARG_OK || strcmp(p.address, a) != 0)
        return false;
    *utf8 |= p.utf8;
    return true;
}

static void env_free(struct env *env)
{
    if (env->rcpt)
        for (size_t i = 0; i < env->n; i++)
            free(env->rcpt[i].addr);
    free(env->rcpt);
    free(env->from);
    memset(env, 0, sizeof *env);
}

static int env_new(const struct smtpc_envelope *e, struct env *env)
{
    memset(env, 0, sizeof *env);
    if (!e || !e->mail_from || !e->rcpts || e->n_rcpts == 0 || e->n_rcpts > SMTPC_MAX_RCPTS) {
        errno = EINVAL;
        return -1;
    }
    bool utf8 = false;
    if (!valid_address(e->mail_from, true, &utf8))
        goto invalid;
    for (size_t i = 0; i < e->n_rcpts; i++)
        if (!e->rcpts[i] || !valid_address(e->rcpts[i], false, &utf8))
            goto invalid;
    env->from = strdup(e->mail_from);
    env->rcpt = calloc(e->n_rcpts, sizeof *env->rcpt);
    if (!env->from || !env->rcpt)
        goto nomem;
    env->n = e->n_rcpts;
    for (size_t i = 0; i < env->n; i++) {
        env->rcpt[i].res.text = "";
        if (!(env->rcpt[i].addr = strdup(e->rcpts[i])))
            goto nomem;
    }
    env->size = e->size;
    env->addr_utf8 = utf8;
    env->need_utf8 = utf8 || e->smtputf8;
    /* UTF-8 header fields are 8-bit data too (RFC 6531 §3.1, item 8). */
    env->body_8bit = e->eight_bit || e->smtputf8;
    return 0;
invalid:
    errno = EINVAL;
    return -1;
nomem:
    env_free(env);
    errno = ENOMEM;
    return -1;
}

/* ------------------------------------------------------------ output */

/* Output taken by the transport is gone at the next call: wipe and drop it. */
static void drop_taken(struct smtpc *c)
{
    if (!c->out_taken)
        return;
    if (c->out_secret)
        wipe(c->out, c->out_len);
    c->out_len = 0;
    c->out_taken = false;
    c->out_secret = false;
}

static void drop_output(struct smtpc *c)
{
    wipe(c->out, c->out_len);
    c->out_len = 0;
    c->out_taken = false;
    c->out_secret = false;
}

static bool out_reserve(struct smtpc *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return true;
    size_t cap = c->out_cap ? c->out_cap : 512;
    while (cap - c->out_len < n)
        cap *= 2;
    /* Not realloc: the old block may hold credentials. */
    char *p = malloc(cap);
    if (!p)
        return false;
    if (c->out_len)
        memcpy(p, c->out, c->out_len);
    wipe(c->out, c->out_cap);
    free(c->out);
    c->out = p;
    c->out_cap = cap;
    return true;
}

static bool due_push(struct smtpc *c, enum cmd cmd);
static void fail_internal(struct smtpc *c);

/* Appends one command line and waits for its reply. False: out of memory (handled). */
static bool emit(struct smtpc *c, enum cmd cmd, bool secret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool emit(struct smtpc *c, enum cmd cmd, bool secret, const char *fmt, ...)
{
    char line[MAX_COMMAND];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert(n > 2 && (size_t)n < sizeof line);  /* the envelope limits make it fit */
    drop_taken(c);
    bool ok = n > 2 && (size_t)n < sizeof line && out_reserve(c, (size_t)n) && due_push(c, cmd);
    if (ok) {
        memcpy(c->out + c->out_len, line, (size_t)n);
        c->out_len += (size_t)n;
        c->out_secret |= secret;
    }
    wipe(line, (size_t)n);
    if (!ok)
        fail_internal(c);
    return ok;
}

/* -------------------------------------------------------------- texts */

/*
 * The credentials never reach a result, even when a server echoes them:
 * the password, and the base64 of the password and of the PLAIN message,
 * are overwritten with '*'.
 */
static void scrub_one(char *s, size_t n, const char *needle, size_t k)
{
    if (k == 0)
        return;
    for (char *p = s; (p = memmem(p, n - (size_t)(p - s), needle, k)) != NULL; p += k)
        memset(p, '*', k);
}

static void scrub_secrets(const struct smtpc *c, char *s, size_t n)
{
    if (!c->pass)
        return;
    size_t ul = strlen(c->user), pl = strlen(c->pass);
    unsigned char plain[2 * SMTPC_MAX_SECRET + 2];
    char b64[(sizeof plain + 2) / 3 * 4 + 1];
    scrub_one(s, n, c->pass, pl);
    b64_encode((const unsigned char *)c->pass, pl, b64);
    scrub_one(s, n, b64, strlen(b64));
    plain[0] = 0;
    memcpy(plain + 1, c->user, ul);
    plain[1 + ul] = 0;
    memcpy(plain + 2 + ul, c->pass, pl);
    b64_encode(plain, 2 + ul + pl, b64);
    scrub_one(s, n, b64, strlen(b64));
    wipe(plain, sizeof plain);
    wipe(b64, sizeof b64);
}

/* A copy of text[0, len) that lives as long as the transaction ("" when out of memory). */
static const char *keep_text(struct smtpc *c, const char *text, size_t len)
{
    struct text *t = malloc(sizeof *t + len + 1);
    if (!t)
        return "";
    memcpy(t->s, text, len);
    t->s[len] = 0;
    scrub_secrets(c, t->s, len);
    t->next = c->texts;
    c->texts = t;
    return t->s;
}

static void free_texts(struct smtpc *c)
{
    while (c->texts) {
        struct text *t = c->texts;
        c->texts = t->next;
        free(t);
    }
}

/* ------------------------------------------------------------ results */

static void set_result(struct smtpc_result *res, enum smtpc_stage stage, const struct verdict *v,
                       const char *text)
{
    res->code = v->code;
    memcpy(res->status, v->status, sizeof res->status);
    res->text = text;
    res->stage = stage;
    res->permanent = v->permanent;
    res->tempfail = v->tempfail;
}

/*
 * The failure that ends the transaction applies to every recipient not
 * yet decided, and becomes the transaction's result when one was.
 */
static void decide_all(struct smtpc *c, enum smtpc_stage stage, const struct verdict *v)
{
    const char *text = NULL;
    for (size_t i = 0; i < c->env.n; i++) {
        struct rcpt *r = &c->env.rcpt[i];
        if (r->st == RCPT_DONE)
            continue;
        if (!text)
            text = keep_text(c, v->text, v->len);
        set_result(&r->res, stage, v, text);
        r->st = RCPT_DONE;
    }
    if (text && !c->has_tx) {
        set_result(&c->tx, stage, v, text);
        c->has_tx = true;
    }
}

/* The reply to DATA or to the message decides the accepted recipients. */
static void decide_accepted(struct smtpc *c, enum smtpc_stage stage, const struct verdict *v)
{
    const char *text = keep_text(c, v->text, v->len);
    for (size_t i = 0; i < c->env.n; i++) {
        struct rcpt *r = &c->env.rcpt[i];
        if (r->st != RCPT_ACCEPTED)
            continue;
        set_result(&r->res, stage, v, text);
        r->st = RCPT_DONE;
    }
    set_result(&c->tx, stage, v, text);
    c->has_tx = true;
}

/* A decision of ours, with our words in buf. */
static void local_verdict(struct verdict *v, char *buf, size_t buflen, const char *status,
                          bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void local_verdict(struct verdict *v, char *buf, size_t buflen, const char *status,
                          bool permanent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, buflen, fmt, ap);
    va_end(ap);
    memset(v, 0, sizeof *v);
    snprintf(v->status, sizeof v->status, "%s", status);
    v->text = buf;
    v->len = n < 0 ? 0 : (size_t)n < buflen ? (size_t)n : buflen - 1;
    v->permanent = permanent;
    v->tempfail = !permanent;
}

/*
 * A failure the message may not deserve (a host refusing us, TLS or AUTH
 * trouble) is made a tempfail, its status class too, as Postfix's
 * soft_bounce does: the DSN then says "delayed", not "failed".
 */
static void soften(struct verdict *v)
{
    v->permanent = false;
    v->tempfail = true;
    if (v->status[0] == '5')
        v->status[0] = '4';
}

/* --------------------------------------------------------- due replies */

static bool due_push(struct smtpc *c, enum cmd cmd)
{
    if (c->due_len == c->due_cap)
        return false;
    c->due[(c->due_head + c->due_len) % c->due_cap] = cmd;
    c->due_len++;
    if (cmds[cmd].stage != SMTPC_STAGE_NONE)
        c->last_stage = cmds[cmd].stage;
    return true;
}

static enum cmd due_pop(struct smtpc *c)
{
    assert(c->due_sent > 0 && c->due_len > 0);
    enum cmd cmd = c->due[c->due_head];
    c->due_head = (c->due_head + 1) % c->due_cap;
    c->due_len--;
    c->due_sent--;
    return cmd;
}

/* Room for the longest PIPELINING group: MAIL, every RCPT, DATA (and slack). */
static bool due_reserve(struct smtpc *c, size_t n_rcpts)
{
    size_t cap = n_rcpts + 4;
    if (cap <= c->due_cap)
        return true;
    enum cmd *p = malloc(cap * sizeof *p);
    if (!p)
        return false;
    for (size_t i = 0; i < c->due_len; i++)
        p[i] = c->due[(c->due_head + i) % c->due_cap];
    free(c->due);
    c->due = p;
    c->due_cap = cap;
    c->due_head = 0;
    return true;
}

/* ------------------------------------------------------- fatal endings */

static void close_now(struct smtpc *c)
{
    c->state = ST_CLOSED;
    c->due_len = 0;
    c->due_sent = 0;
    c->body_pending = false;
    drop_output(c);
}

static void fail_close(struct smtpc *c, enum smtpc_stage stage, const struct verdict *v)
{
    decide_all(c, stage, v);
    close_now(c);
}

/* The connection is in step but of no more use: say QUIT, then close. */
static void fail_quit(struct smtpc *c, enum smtpc_stage stage, const struct verdict *v)
{
    decide_all(c, stage, v);
    c->state = ST_QUIT;
    c->body_pending = false;
    emit(c, CMD_QUIT, false, "QUIT\r\n");
}

static void fail_internal(struct smtpc *c)
{
    struct verdict v;
    char buf[64];
    local_verdict(&v, buf, sizeof buf, "4.3.0", false, "local error: out of memory");
    fail_close(c, c->last_stage, &v);
}

/* The stage a lost connection or a timeout interrupts. */
static enum smtpc_stage current_stage(const struct smtpc *c);

static void fail_local_close(struct smtpc *c, const char *status, const char *what)
{
    struct verdict v;
    char buf[128];
    local_verdict(&v, buf, sizeof buf, status, false, "%s during %s", what,
                  smtpc_stage_name(current_stage(c)));
    fail_close(c, current_stage(c), &v);
}

/* RFC 3463 §3.6: X.5.0 "other or undefined protocol status". */
static int protocol_error(struct smtpc *c, const char *what)
{
    char buf[128];
    snprintf(buf, sizeof buf, "protocol error: %s", what);
    fail_local_close(c, "4.5.0", buf);
    return -1;
}

/* ------------------------------------------------------ the handlers */

static void send_ehlo(struct smtpc *c)
{
    c->ext_new = 0;
    c->size_new = 0;
    c->state = ST_SESSION;
    emit(c, CMD_EHLO, false, "EHLO %s\r\n", c->helo);
}

static void next_step(struct smtpc *c);

/*
 * A greeting or EHLO/HELO refusal is about this host, not the message
 * (RFC 5321 §3.1: a 554 greeting means "no SMTP service here"). It
 * bounces only from the last host; elsewhere it is a tempfail and the
 * runner tries the next MX (§5.1). The server still waits for QUIT (§3.1).
 */
static void session_refused(struct smtpc *c, enum smtpc_stage stage, const struct verdict *r)
{
    struct verdict v = *r;
    if (!c->last_mx)
        soften(&v);
    fail_quit(c, stage, &v);
}

static void on_greeting(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2)
        send_ehlo(c);
    else
        session_refused(c, SMTPC_STAGE_GREETING, r);
}

/* RFC 5321 §3.2, §4.1.4: a server that does not take EHLO answers 5xx
 * (500, 502, 550 ...); then HELO, and no extensions. */
static void on_ehlo(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2) {
        c->ext = c->ext_new;
        c->size_limit = c->size_new;
        next_step(c);
    } else if (reply_class(r->code) == 5) {
        emit(c, CMD_HELO, false, "HELO %s\r\n", c->helo);
    } else {
        session_refused(c, SMTPC_STAGE_HELO, r);
    }
}

static void on_helo(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2) {
        c->ext = 0;
        c->size_limit = 0;
        next_step(c);
    } else {
        session_refused(c, SMTPC_STAGE_HELO, r);
    }
}

/* RFC 3463 X.7.4 "security features not supported": TLS is our policy,
 * so its absence is a tempfail, for an MX and for a smarthost alike (a
 * configuration to fix, not mail to bounce). */
static void tls_missing(struct smtpc *c, const struct verdict *r)
{
    struct verdict v;
    char buf[SMTPC_MAX_TEXT + 1];
    if (r)
        local_verdict(&v, buf, sizeof buf, "4.7.4", false,
                      "TLS required but STARTTLS was refused: %.*s", (int)r->len, r->text);
    else
        local_verdict(&v, buf, sizeof buf, "4.7.4", false,
                      "TLS required but the server does not offer STARTTLS");
    v.code = r ? r->code : 0;
    fail_quit(c, SMTPC_STAGE_STARTTLS, &v);
}

/* RFC 3207 §4: 220 to go ahead; 454 (or anything else) and we decide. */
static void on_starttls(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2) {
        c->state = ST_TLS;
    } else if (c->starttls == SMTPC_TLS_REQUIRED) {
        tls_missing(c, r);
    } else {
        c->tls_refused = true;  /* §4.1: the client decides; opportunistic goes on */
        next_step(c);
    }
}

static void auth_local_failure(struct smtpc *c, const char *what)
{
    struct verdict v;
    char buf[128];
    local_verdict(&v, buf, sizeof buf, "4.7.0", false, "AUTH: %s", what);
    fail_quit(c, SMTPC_STAGE_AUTH, &v);
}

/* RFC 4954 §6: 535 (bad credentials) and other 5xx are permanent, 454 and
 * other 4xx temporary; the server's words, never ours with the secret. */
static void auth_refused(struct smtpc *c, const struct verdict *r)
{
    fail_quit(c, SMTPC_STAGE_AUTH, r);
}

/* Sends base64 of s (a LOGIN response, RFC 4954 §4). */
static void send_b64(struct smtpc *c, enum cmd cmd, const char *s)
{
    char b64[(SMTPC_MAX_SECRET + 2) / 3 * 4 + 1];
    b64_encode((const unsigned char *)s, strlen(s), b64);
    emit(c, cmd, true, "%s\r\n", b64);
    wipe(b64, sizeof b64);
}

/* The server has a challenge PLAIN and LOGIN do not expect: cancel with "*" (RFC 4954 §4). */
static void auth_cancel(struct smtpc *c)
{
    emit(c, CMD_AUTH_CANCEL, false, "*\r\n");
}

static void on_auth_login(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 3)
        send_b64(c, CMD_AUTH_USER, c->user);  /* the prompt's words are not checked */
    else
        auth_refused(c, r);
}

static void on_auth_user(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 3)
        send_b64(c, CMD_AUTH_PASS, c->pass);
    else
        auth_refused(c, r);
}

/* The reply to AUTH PLAIN with its initial response, or to LOGIN's password: 235. */
static void on_auth_final(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2) {
        c->authed = true;
        next_step(c);
    } else if (reply_class(r->code) == 3) {
        auth_cancel(c);
    } else {
        auth_refused(c, r);
    }
}

static void on_auth_cancel(struct smtpc *c, const struct verdict *r)
{
    auth_local_failure(c, "the server asked for more than the mechanism gives");
}

static bool step_mail(struct smtpc *c);

/* RSET only fails on a confused server: the message is not at fault. */
static void on_rset(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 2) {
        c->need_rset = false;
        step_mail(c);
    } else {
        struct verdict v = *r;
        soften(&v);
        fail_quit(c, SMTPC_STAGE_RSET, &v);
    }
}

static void send_rcpt(struct smtpc *c)
{
    emit(c, CMD_RCPT, false, "RCPT TO:<%s>\r\n", c->env.rcpt[c->rcpt_sent++].addr);
}

static void start_body(struct smtpc *c, enum smtpc_body mode)
{
    c->body = mode;
    c->body_pending = true;
    if (mode == SMTPC_BODY_BDAT)
        /* RFC 3030 §2: one chunk, the whole message. */
        emit(c, CMD_BDAT, false, "BDAT %llu LAST\r\n", (unsigned long long)c->env.size);
    else if (due_push(c, CMD_DOT))
        c->due_sent++;  /* the transport is writing the data and its dot now */
    else
        fail_internal(c);
}

/* Every RCPT answered (without PIPELINING, or with CHUNKING): DATA or BDAT,
 * or the end when no recipient was accepted. */
static void after_rcpts(struct smtpc *c)
{
    if (c->accepted == 0)
        c->state = ST_IDLE;
    else if (c->chunking)
        start_body(c, SMTPC_BODY_BDAT);
    else
        emit(c, CMD_DATA, false, "DATA\r\n");
}

/* MAIL refused: nobody gets the message. With PIPELINING the RCPT and DATA
 * replies still come (503s) and are read and ignored (RFC 2920 §3.1). */
static void on_mail(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) != 2) {
        c->mail_failed = true;
        decide_all(c, SMTPC_STAGE_MAIL, r);
        c->state = ST_IDLE;
        return;
    }
    c->need_rset = true;
    if (!c->pipelined)
        send_rcpt(c);
}

static void on_rcpt(struct smtpc *c, const struct verdict *r)
{
    size_t i = c->rcpt_replied++;
    if (c->mail_failed || i >= c->env.n)
        return;
    struct rcpt *rc = &c->env.rcpt[i];
    set_result(&rc->res, SMTPC_STAGE_RCPT, r, keep_text(c, r->text, r->len));
    if (reply_class(r->code) == 2) {
        rc->st = RCPT_ACCEPTED;
        c->accepted++;
    } else {
        rc->st = RCPT_DONE;
    }
    if (!c->pipelined) {
        if (c->rcpt_sent < c->env.n)
            send_rcpt(c);
        else
            after_rcpts(c);
    } else if (c->rcpt_replied == c->env.n && c->chunking) {
        after_rcpts(c);
    }
}

/* A 354 when no recipient was accepted is the server's mistake (RFC 2920
 * §3.1 says 503 or 554): end the empty message at once and ignore its reply. */
static void abort_data(struct smtpc *c)
{
    emit(c, CMD_ABORT_DOT, false, ".\r\n");
}

static void on_data(struct smtpc *c, const struct verdict *r)
{
    if (reply_class(r->code) == 3) {
        if (!c->mail_failed && c->accepted > 0)
            start_body(c, SMTPC_BODY_DATA);
        else
            abort_data(c);
        return;
    }
    /* Refused with no recipient accepted: the pipelined DATA's expected
     * 503/554 (RFC 2920 §3.1), not a failure of anyone. */
    if (!c->mail_failed && c->accepted > 0)
        decide_accepted(c, SMTPC_STAGE_DATA, r);
    c->state = ST_IDLE;
}

/* The final reply decides every accepted recipient. RFC 5321 §4.1.1.4: the
 * end of data clears the server's transaction whatever the reply. */
static void on_dot(struct smtpc *c, const struct verdict *r)
{
    decide_accepted(c, SMTPC_STAGE_BODY, r);
    c->need_rset = false;
    c->state = ST_IDLE;
}

/* RFC 3030 §2: after a refused BDAT the transaction is failed and the
 * client resets it. */
static void on_bdat(struct smtpc *c, const struct verdict *r)
{
    decide_accepted(c, SMTPC_STAGE_BODY, r);
    c->need_rset = reply_class(r->code) != 2;
    c->state = ST_IDLE;
}

static void on_abort_dot(struct smtpc *c, const struct verdict *r)
{
    c->state = ST_IDLE;
}

static void on_quit(struct smtpc *c, const struct verdict *r)
{
    close_now(c);
}

/*
 * The command table: each reply's stage, timeout (RFC 5321 §4.5.3.2 where
 * it names one; docs/smtp-client.md for the rest), the positive reply
 * classes (2 = 2xx, 3 = 3xx) the command can get, and its handler. Any 4xx
 * or 5xx goes to the handler too; a positive class not listed is a
 * protocol error (a 354 to MAIL, a 250 to DATA).
 */
static const struct cmd_def cmds[CMD_COUNT] = {
    [CMD_GREETING] = { SMTPC_STAGE_GREETING, 5 * MINUTE, POS(2), on_greeting },
    [CMD_EHLO] = { SMTPC_STAGE_HELO, 5 * MINUTE, POS(2), on_ehlo },
    [CMD_HELO] = { SMTPC_STAGE_HELO, 5 * MINUTE, POS(2), on_helo },
    [CMD_STARTTLS] = { SMTPC_STAGE_STARTTLS, 5 * MINUTE, POS(2), on_starttls },
    [CMD_AUTH_PLAIN] = { SMTPC_STAGE_AUTH, 5 * MINUTE, POS(2) | POS(3), on_auth_final },
    [CMD_AUTH_LOGIN] = { SMTPC_STAGE_AUTH, 5 * MINUTE, POS(3), on_auth_login },
    [CMD_AUTH_USER] = { SMTPC_STAGE_AUTH, 5 * MINUTE, POS(3), on_auth_user },
    [CMD_AUTH_PASS] = { SMTPC_STAGE_AUTH, 5 * MINUTE, POS(2) | POS(3), on_auth_final },
    [CMD_AUTH_CANCEL] = { SMTPC_STAGE_AUTH, 5 * MINUTE, POS(2) | POS(3), on_auth_cancel },
    [CMD_RSET] = { SMTPC_STAGE_RSET, 5 * MINUTE, POS(2), on_rset },
    [CMD_MAIL] = { SMTPC_STAGE_MAIL, 5 * MINUTE, POS(2), on_mail },
    [CMD_RCPT] = { SMTPC_STAGE_RCPT, 5 * MINUTE, POS(2), on_rcpt },
    [CMD_DATA] = { SMTPC_STAGE_DATA, 2 * MINUTE, POS(3), on_data },
    [CMD_DOT] = { SMTPC_STAGE_BODY, 10 * MINUTE, POS(2), on_dot },
    [CMD_BDAT] = { SMTPC_STAGE_BODY, 10 * MINUTE, POS(2), on_bdat },
    [CMD_ABORT_DOT] = { SMTPC_STAGE_DATA, 10 * MINUTE, POS(2) | POS(3), on_abort_dot },
    [CMD_QUIT] = { SMTPC_STAGE_NONE, 2 * MINUTE, POS(2) | POS(3), on_quit },
};

static enum smtpc_stage current_stage(const struct smtpc *c)
{
    if (c->body_pending)
        return SMTPC_STAGE_BODY;
    if (c->state == ST_TLS)
        return SMTPC_STAGE_STARTTLS;
    if (c->due_sent > 0 && cmds[c->due[c->due_head]].stage != SMTPC_STAGE_NONE)
        return cmds[c->due[c->due_head]].stage;
    return c->last_stage != SMTPC_STAGE_NONE ? c->last_stage : SMTPC_STAGE_GREETING;
}

/* ------------------------------------------------- the session steps */

/* RFC 3207 §4: STARTTLS when offered and wanted; §4.2: EHLO again after. */
static bool step_starttls(struct smtpc *c)
{
    if (c->tls_active || c->starttls == SMTPC_TLS_NONE || c->tls_refused)
        return false;
    if (c->ext & SMTPC_EXT_STARTTLS) {
        emit(c, CMD_STARTTLS, false, "STARTTLS\r\n");
        return true;
    }
    if (c->starttls == SMTPC_TLS_OPPORTUNISTIC)
        return false;
    tls_missing(c, NULL);
    return true;
}

/* RFC 4954 §4: PLAIN with an initial response (RFC 4616: authzid empty,
 * NUL, user, NUL, password), else LOGIN. Only over TLS. */
static bool step_auth(struct smtpc *c)
{
    if (!c->user || c->authed)
        return false;
    if (!c->tls_active) {
        auth_local_failure(c, "refused to authenticate without TLS");
    } else if (!(c->ext & SMTPC_EXT_AUTH)) {
        auth_local_failure(c, "the server does not offer AUTH");
    } else if (c->ext & SMTPC_EXT_AUTH_PLAIN) {
        size_t ul = strlen(c->user), pl = strlen(c->pass);
        unsigned char plain[2 * SMTPC_MAX_SECRET + 2];
        char b64[(sizeof plain + 2) / 3 * 4 + 1];
        plain[0] = 0;
        memcpy(plain + 1, c->user, ul);
        plain[1 + ul] = 0;
        memcpy(plain + 2 + ul, c->pass, pl);
        b64_encode(plain, 2 + ul + pl, b64);
        emit(c, CMD_AUTH_PLAIN, true, "AUTH PLAIN %s\r\n", b64);
        wipe(plain, sizeof plain);
        wipe(b64, sizeof b64);
    } else if (c->ext & SMTPC_EXT_AUTH_LOGIN) {
        emit(c, CMD_AUTH_LOGIN, false, "AUTH LOGIN\r\n");
    } else {
        auth_local_failure(c, "no mechanism in common (PLAIN, LOGIN)");
    }
    return true;
}

/* RFC 6531 §3.2: no SMTPUTF8, no UTF-8 mail. X.6.7 when an address is not
 * ASCII, X.6.9 when only header fields are (RFC 6531 §4.? registry, RFC 5248). */
static bool check_smtputf8(struct smtpc *c, struct verdict *v, char *buf, size_t len)
{
    if (!c->env.need_utf8 || (c->ext & SMTPC_EXT_SMTPUTF8))
        return true;
    if (c->env.addr_utf8)
        local_verdict(v, buf, len, "5.6.7", true,
                      "non-ASCII address, but the server does not offer SMTPUTF8");
    else
        local_verdict(v, buf, len, "5.6.9", true,
                      "UTF-8 header fields, but the server does not offer SMTPUTF8");
    return false;
}

/* RFC 1870 §4: a size over the server's fixed maximum will be refused;
 * X.3.4 "message too big for system" without trying. SIZE 0: no limit. */
static bool check_size(struct smtpc *c, struct verdict *v, char *buf, size_t len)
{
    if (!(c->ext & SMTPC_EXT_SIZE) || c->size_limit == 0 || c->env.size <= c->size_limit)
        return true;
    local_verdict(v, buf, len, "5.3.4", true,
                  "message size %llu exceeds the server's limit of %llu bytes",
                  (unsigned long long)c->env.size, (unsigned long long)c->size_limit);
    return false;
}

static bool (*const mail_checks[])(struct smtpc *c, struct verdict *v, char *buf, size_t len) = {
    check_smtputf8, check_size,
};

static void send_mail(struct smtpc *c)
{
    char params[96];
    int n = 0;
    if (c->ext & SMTPC_EXT_SIZE)  /* RFC 1870 §6 */
        n += snprintf(params + n, sizeof params - (size_t)n, " SIZE=%llu",
                      (unsigned long long)c->env.size);
    if (c->env.body_8bit && (c->ext & SMTPC_EXT_8BITMIME))  /* RFC 6152 §2 */
        n += snprintf(params + n, sizeof params - (size_t)n, " BODY=8BITMIME");
    if (c->env.need_utf8)  /* RFC 6531 §3.4; check_smtputf8 made sure it is offered */
        snprintf(params + n, sizeof params - (size_t)n, " SMTPUTF8");
    else
        params[n] = 0;
    emit(c, CMD_MAIL, false, "MAIL FROM:<%s>%s\r\n", c->env.from, params);
}

/*
 * The transaction: local checks (no MAIL for a message the server has told
 * us it cannot take), RSET when the server may still hold our previous
 * transaction (sent alone), then MAIL. With PIPELINING (RFC 2920 §3.1)
 * MAIL, every RCPT and DATA go in one group (DATA last); with CHUNKING the
 * group ends after the RCPTs and BDAT follows their replies.
 */
static bool step_mail(struct smtpc *c)
{
    struct verdict v;
    char buf[160];
    c->state = ST_TRANSACTION;
    for (size_t i = 0; i < sizeof mail_checks / sizeof mail_checks[0]; i++)
        if (!mail_checks[i](c, &v, buf, sizeof buf)) {
            decide_all(c, SMTPC_STAGE_MAIL, &v);
            c->state = ST_IDLE;
            return true;
        }
    if (c->need_rset) {
        emit(c, CMD_RSET, false, "RSET\r\n");
        return true;
    }
    c->pipelined = (c->ext & SMTPC_EXT_PIPELINING) != 0;
    c->chunking = (c->ext & SMTPC_EXT_CHUNKING) != 0;
    send_mail(c);
    if (c->pipelined) {
        while (c->state != ST_CLOSED && c->rcpt_sent < c->env.n)
            send_rcpt(c);
        if (!c->chunking && c->state != ST_CLOSED)
            emit(c, CMD_DATA, false, "DATA\r\n");
    }
    return true;
}

/* After EHLO/HELO, in order: STARTTLS, AUTH, the transaction. Each step
 * returns true when it has taken the session on. */
static bool (*const session_steps[])(struct smtpc *c) = { step_starttls, step_auth, step_mail };

static void next_step(struct smtpc *c)
{
    for (size_t i = 0; i < sizeof session_steps / sizeof session_steps[0]; i++)
        if (session_steps[i](c))
            return;
}

/* -------------------------------------------------------------- EHLO */

static void ehlo_size(struct smtpc *c, const char *p, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    /* RFC 1870 §4: no value or 0 is "no fixed limit"; junk, the same. */
    c->size_new = i == n || p[i] == ' ' ? v : 0;
}

static bool word_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

/* RFC 4954 §3: "AUTH" SP mechanism *(SP mechanism) */
static void ehlo_auth(struct smtpc *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == ' ')
            i++;
        size_t s = i;
        while (i < n && p[i] != ' ')
            i++;
        if (word_is(p + s, i - s, "PLAIN"))
            c->ext_new |= SMTPC_EXT_AUTH_PLAIN;
        else if (word_is(p + s, i - s, "LOGIN"))
            c->ext_new |= SMTPC_EXT_AUTH_LOGIN;
    }
}

static const struct {
    const char *keyword;
    unsigned bit;
    void (*params)(struct smtpc *c, const char *p, size_t n);
} ehlo_keywords[] = {
    { "PIPELINING", SMTPC_EXT_PIPELINING, NULL },
    { "SIZE", SMTPC_EXT_SIZE, ehlo_size },
    { "8BITMIME", SMTPC_EXT_8BITMIME, NULL },
    { "SMTPUTF8", SMTPC_EXT_SMTPUTF8, NULL },
    { "CHUNKING", SMTPC_EXT_CHUNKING, NULL },
    { "STARTTLS", SMTPC_EXT_STARTTLS, NULL },
    { "AUTH", SMTPC_EXT_AUTH, ehlo_auth },
    { "ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCED, NULL },
};

/*
 * One line of an EHLO reply after the first (RFC 5321 §4.1.1.1):
 * ehlo-keyword *( SP ehlo-param ), the keyword in any case. "AUTH=LOGIN
 * PLAIN", the form of old Outlook-era servers, counts as AUTH.
 */
static void ehlo_line(struct smtpc *c, const char *p, size_t n)
{
    size_t k = 0;
    while (k < n && (isalnum((unsigned char)p[k]) || p[k] == '-'))
        k++;
    if (k == 0 || (k < n && p[k] != ' ' && p[k] != '='))
        return;
    const char *params = k < n ? p + k + 1 : p + n;
    size_t params_len = k < n ? n - k - 1 : 0;
    for (size_t i = 0; i < sizeof ehlo_keywords / sizeof ehlo_keywords[0]; i++) {
        if (!word_is(p, k, ehlo_keywords[i].keyword))
            continue;
        c->ext_new |= ehlo_keywords[i].bit;
        if (ehlo_keywords[i].params)
            ehlo_keywords[i].params(c, params, params_len);
        return;
    }
}

/* ------------------------------------------------------ reply parsing */

/*
 * RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 * Reply-code [ SP textstring ] CRLF, with Reply-code = %x32-35 %x30-35
 * %x30-39. "250" alone is a last line. NUL, CR and LF never belong in one.
 */
static bool parse_line(const char *line, size_t len, int *code, bool *last)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        line[2] < '0' || line[2] > '9')
        return false;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return false;
    for (size_t i = 3; i < len; i++)
        if (line[i] == 0 || line[i] == '\r' || line[i] == '\n')
            return false;
    *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    *last = len == 3 || line[3] == ' ';
    return true;
}

/*
 * The enhanced status code at the start of a reply's text (RFC 2034 §4,
 * syntax RFC 3463 §2: class "." 1*3digit "." 1*3digit), taken when its
 * class agrees with the reply code; else derived from the code (RFC 3463:
 * 2.0.0, 4.0.0, 5.0.0; 3xx replies are not results and get x.0.0 too).
 */
static void parse_status(const char *t, size_t n, int code, char out[16])
{
    size_t i = 0, digits[3] = { 0, 0, 0 };
    for (int part = 0; part < 3; part++) {
        if (part > 0) {
            if (i >= n || t[i] != '.')
                goto derived;
            i++;
        }
        while (i < n && t[i] >= '0' && t[i] <= '9' && digits[part] < 4) {
            i++;
            digits[part]++;
        }
    }
    if (digits[0] != 1 || digits[1] < 1 || digits[1] > 3 || digits[2] < 1 || digits[2] > 3 ||
        (i < n && t[i] != ' ') || t[0] - '0' != code / 100)
        goto derived;
    memcpy(out, t, i);
    out[i] = 0;
    return;
derived:
    snprintf(out, 16, "%d.0.0", code / 100);
}

/* Appends a line to the reply text: CRLF between lines, control bytes and
 * invalid UTF-8 as '?', cut at SMTPC_MAX_TEXT on a character boundary. */
static void append_text(struct smtpc *c, const char *line, size_t len)
{
    char *t = c->in.text;
    size_t o = c->in.len;
    if (c->in.lines > 1) {
        if (SMTPC_MAX_TEXT - o < 2)
            return;
        t[o++] = '\r';
        t[o++] = '\n';
    }
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)line[i];
        size_t k = ch >= 0x80 ? utf8_seq_len((const unsigned char *)line + i, len - i) : 1;
        if (SMTPC_MAX_TEXT - o < (k ? k : 1))
            break;
        if (k > 1) {
            memcpy(t + o, line + i, k);
            o += k;
            i += k;
        } else {
            t[o++] = ch < 0x20 || ch == 0x7f || ch >= 0x80 ? '?' : (char)ch;
            i++;
        }
    }
    t[o] = 0;
    c->in.len = o;
}

/* Hands a whole reply to the handler of the command it answers. Returns -1
 * on a protocol error. */
static int dispatch(struct smtpc *c, const struct verdict *r)
{
    if (c->due_sent == 0) {
        /* An unrequested 421 (RFC 5321 §3.8: the server is going away). */
        fail_close(c, current_stage(c), r);
        return 0;
    }
    enum cmd cmd = c->due[c->due_head];
    const struct cmd_def *def = &cmds[cmd];
    int k = reply_class(r->code);
    if ((k == 2 || k == 3) && !(def->positive & POS(k)))
        return protocol_error(c, "unexpected reply code");
    due_pop(c);
    /* §3.8: 421 to any command but QUIT: the server closes the connection. */
    if (r->code == 421 && cmd != CMD_QUIT)
        fail_close(c, def->stage, r);
    else
        def->on_reply(c, r);
    return 0;
}

static int reply_done(struct smtpc *c)
{
    struct verdict v = { 0 };
    int k = reply_class(c->in.code);
    v.code = c->in.code;
    memcpy(v.status, c->in.status, sizeof v.status);
    v.text = c->in.text;
    v.len = c->in.len;
    v.permanent = k == 5;
    v.tempfail = k == 4;
    c->in.code = 0;
    c->in.lines = 0;
    c->in.bytes = 0;
    int rc = dispatch(c, &v);
    c->in.len = 0;
    return rc;
}

int smtpc_input(struct smtpc *c, const char *line, size_t len)
{
    drop_taken(c);
    if (c->state == ST_CLOSED)
        return -1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > SMTPC_MAX_LINE)
        return protocol_error(c, "reply line too long");
    int code;
    bool last;
    if (!parse_line(line, len, &code, &last))
        return protocol_error(c, "malformed reply line");
    if (c->in.lines == 0) {
        /* RFC 3207 §4.2: nothing may follow the 220 to STARTTLS in plain text. */
        if (c->state == ST_TLS || (c->due_sent == 0 && code != 421))
            return protocol_error(c, "reply when none was due");
        c->in.code = code;
        c->in.len = 0;
        parse_status(line + (len > 3 ? 4 : 3), len > 3 ? len - 4 : 0, code, c->in.status);
    } else if (code != c->in.code) {
        return protocol_error(c, "reply codes of a multi-line reply disagree");  /* §4.2.1 */
    }
    if (++c->in.lines > SMTPC_MAX_REPLY_LINES)
        return protocol_error(c, "reply has too many lines");
    c->in.bytes += len + 2;
    if (c->in.bytes > SMTPC_MAX_REPLY_BYTES)
        return protocol_error(c, "reply too long");
    append_text(c, line, len);
    if (c->in.lines > 1 && len > 4 && reply_class(code) == 2 && c->due_sent > 0 &&
        c->due[c->due_head] == CMD_EHLO)
        ehlo_line(c, line + 4, len - 4);
    return last ? reply_done(c) : 0;
}

/* ------------------------------------------------------------- public */

const char *smtpc_stage_name(enum smtpc_stage s)
{
    static const char *const names[] = {
        [SMTPC_STAGE_NONE] = "nothing",      [SMTPC_STAGE_GREETING] = "greeting",
        [SMTPC_STAGE_HELO] = "EHLO/HELO",    [SMTPC_STAGE_STARTTLS] = "STARTTLS",
        [SMTPC_STAGE_AUTH] = "AUTH",         [SMTPC_STAGE_RSET] = "RSET",
        [SMTPC_STAGE_MAIL] = "MAIL FROM",    [SMTPC_STAGE_RCPT] = "RCPT TO",
        [SMTPC_STAGE_DATA] = "DATA",         [SMTPC_STAGE_BODY] = "end of data",
    };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static bool valid_secret(const char *s)
{
    return s && strnlen(s, SMTPC_MAX_SECRET + 1) <= SMTPC_MAX_SECRET;
}

static bool valid_opts(const struct smtpc_opts *o)
{
    if (!o || !o->helo || strnlen(o->helo, SMTP_MAX_DOMAIN + 1) > SMTP_MAX_DOMAIN ||
        !smtp_valid_helo(o->helo, strlen(o->helo)))
        return false;
    if ((unsigned)o->starttls > SMTPC_TLS_REQUIRED)
        return false;
    if (!o->auth_user && !o->auth_pass)
        return true;
    return valid_secret(o->auth_user) && valid_secret(o->auth_pass) && o->auth_user[0];
}

int smtpc_new(const struct smtpc_opts *o, const struct smtpc_envelope *e, struct smtpc **out)
{
    *out = NULL;
    if (!valid_opts(o)) {
        errno = EINVAL;
        return -1;
    }
    struct smtpc *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return -1;
    }
    if (env_new(e, &c->env) != 0) {
        int err = errno;
        free(c);
        errno = err;
        return -1;
    }
    snprintf(c->helo, sizeof c->helo, "%s", o->helo);
    c->starttls = o->starttls;
    c->tls_active = o->tls_active;
    c->last_mx = o->last_mx;
    c->tx.text = "";
    c->state = ST_SESSION;
    c->user = dup_secret(o->auth_user);
    c->pass = dup_secret(o->auth_pass);
    if ((o->auth_user && (!c->user || !c->pass)) || !due_reserve(c, c->env.n)) {
        smtpc_free(&c);
        errno = ENOMEM;
        return -1;
    }
    due_push(c, CMD_GREETING);
    c->due_sent = 1;  /* the server talks first */
    *out = c;
    return 0;
}

void smtpc_free(struct smtpc **cp)
{
    struct smtpc *c = *cp;
    if (!c)
        return;
    free_secret(&c->user);
    free_secret(&c->pass);
    wipe(c->out, c->out_cap);
    free(c->out);
    free(c->due);
    free_texts(c);
    env_free(&c->env);
    free(c);
    *cp = NULL;
}

enum smtpc_action smtpc_next(struct smtpc *c)
{
    drop_taken(c);
    if (c->state == ST_CLOSED)
        return SMTPC_CLOSE;
    if (c->out_len > 0)
        return SMTPC_WRITE;
    if (c->body_pending)
        return SMTPC_SEND_BODY;
    if (c->state == ST_TLS)
        return SMTPC_START_TLS;
    if (c->due_len > 0)
        return SMTPC_READ;
    if (c->state == ST_IDLE)
        return SMTPC_QUIT_DONE;
    /* Nothing to do and nothing awaited: a bug, never a hang. */
    assert(!"smtpc: stuck");
    fail_local_close(c, "4.3.0", "local error: stuck");
    return SMTPC_CLOSE;
}

void smtpc_output(struct smtpc *c, const char **p, size_t *n)
{
    drop_taken(c);
    *p = c->out_len ? c->out : "";
    *n = c->out_len;
    c->out_taken = c->out_len > 0;
    if (c->out_taken)
        c->due_sent = c->due_len;  /* every command waiting is in these bytes */
}

void smtpc_tls_done(struct smtpc *c)
{
    drop_taken(c);
    if (c->state != ST_TLS)
        return;
    /* RFC 3207 §4.2: forget everything the server said before; EHLO again. */
    c->tls_active = true;
    c->ext = 0;
    c->size_limit = 0;
    c->authed = false;
    send_ehlo(c);
}

void smtpc_tls_failed(struct smtpc *c)
{
    drop_taken(c);
    if (c->state != ST_CLOSED)
        fail_local_close(c, "4.7.0", "TLS handshake failed");
}

enum smtpc_body smtpc_body_mode(const struct smtpc *c)
{
    return c->body;
}

void smtpc_body_sent(struct smtpc *c)
{
    drop_taken(c);
    c->body_pending = false;
}

void smtpc_connection_lost(struct smtpc *c)
{
    drop_taken(c);
    if (c->state != ST_CLOSED)
        fail_local_close(c, "4.4.2", "connection lost or timed out");
}

int smtpc_reset(struct smtpc *c, const struct smtpc_envelope *e)
{
    drop_taken(c);
    if (c->state != ST_IDLE || c->due_len > 0 || c->body_pending) {
        errno = EINVAL;
        return -1;
    }
    struct env env;
    if (env_new(e, &env) != 0)
        return -1;
    if (!due_reserve(c, env.n)) {
        env_free(&env);
        errno = ENOMEM;
        return -1;
    }
    env_free(&c->env);
    free_texts(c);
    c->env = env;
    c->rcpt_sent = c->rcpt_replied = c->accepted = 0;
    c->mail_failed = false;
    c->has_tx = false;
    memset(&c->tx, 0, sizeof c->tx);
    c->tx.text = "";
    step_mail(c);
    return 0;
}

int smtpc_quit(struct smtpc *c)
{
    drop_taken(c);
    if (c->state != ST_IDLE || c->due_len > 0 || c->body_pending) {
        errno = EINVAL;
        return -1;
    }
    c->state = ST_QUIT;
    emit(c, CMD_QUIT, false, "QUIT\r\n");
    return 0;
}

unsigned smtpc_timeout_ms(const struct smtpc *c)
{
    if (c->state == ST_CLOSED)
        return 0;
    if (c->body_pending)
        return 3 * MINUTE;  /* §4.5.3.2.5: each data block */
    if (c->state == ST_TLS)
        return 5 * MINUTE;
    if (c->due_sent > 0)
        return cmds[c->due[c->due_head]].timeout_ms;
    return 0;
}

unsigned smtpc_extensions(const struct smtpc *c)
{
    return c->ext;
}

uint64_t smtpc_size_limit(const struct smtpc *c)
{
    return c->ext & SMTPC_EXT_SIZE ? c->size_limit : 0;
}

const struct smtpc_result *smtpc_rcpt_result(const struct smtpc *c, size_t i)
{
    return i < c->env.n ? &c->env.rcpt[i].res : NULL;
}

const struct smtpc_result *smtpc_result(const struct smtpc *c)
{
    return c->has_tx ? &c->tx : NULL;
}

/* ------------------------------------------------------- DATA encoder */

enum { DOT_BOL, DOT_TEXT, DOT_CR };

void smtpc_dot_encode(struct smtpc_dot *d, const char *p, size_t n, smtpc_sink sink, void *arg)
{
    size_t i = 0;
    while (i < n) {
        if (d->state == DOT_CR) {
            /* CRLF, or a bare CR sent as CRLF (RFC 5321 §2.3.8) */
            sink(arg, "\r\n", 2);
            d->state = DOT_BOL;
            if (p[i] == '\n')
                i++;
            continue;
        }
        if (d->state == DOT_BOL && p[i] == '.')
            sink(arg, ".", 1);  /* §4.5.2: the transparency dot */
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (j > i) {
            sink(arg, p + i, j - i);
            d->state = DOT_TEXT;
        }
        if (j == n)
            return;
        if (p[j] == '\r') {
            d->state = DOT_CR;
        } else {
            sink(arg, "\r\n", 2);  /* a bare LF */
            d->state = DOT_BOL;
        }
        i = j + 1;
    }
}

void smtpc_dot_end(struct smtpc_dot *d, smtpc_sink sink, void *arg)
{
    if (d->state != DOT_BOL)
        sink(arg, "\r\n", 2);
    sink(arg, ".\r\n", 3);
    d->state = DOT_BOL;
}
