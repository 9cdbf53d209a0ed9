/*
 * POP3 login on top of auth/: USER/PASS (RFC 1939 §7) and AUTH (RFC 5034).
 * Both go through the same SASL session, so password checks, throttling
 * and their log lines are auth/'s, shared with SMTP and IMAP: PASS is run
 * as the PLAIN mechanism with the USER name and the password (auth_login).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3/pop3-int.h"

static bool ensure_auth(struct pop3_session *s)
{
    if (!s->auth)
        s->auth = auth_session_new("pop", s->conn);
    if (!s->auth) {
        pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
        return false;
    }
    return true;
}

/* The result of PASS or of an AUTH exchange step. */
static void auth_done(void *arg, enum auth_status st, const char *challenge)
{
    struct pop3_session *s = arg;
    switch (st) {
    case AUTH_CONTINUE:
        /* RFC 5034 §4: "+" SP base64 (an empty challenge is "+ "). */
        pop3_reply(s, "+ %s", challenge);
        pop3_enter(s, ST_SASL);
        break;
    case AUTH_OK:
        snprintf(s->login, sizeof s->login, "%s", auth_session_user(s->auth));
        s->user_id = auth_session_user_id(s->auth);
        auth_session_free(&s->auth);
        pop3_enter(s, ST_AUTHORIZATION);
        pop3_maildrop_open(s);
        break;
    case AUTH_FAIL:
        /* RFC 3206 §4: [AUTH], the credentials are wrong. */
        pop3_reply(s, "-ERR [AUTH] Authentication failed");
        break;
    case AUTH_THROTTLED:
        pop3_reply(s, "-ERR [SYS/TEMP] Too many failed logins, try again later");
        break;
    case AUTH_BADMECH:
        pop3_reply(s, "-ERR Unrecognized authentication mechanism");
        break;
    case AUTH_BADINPUT:
        pop3_error(s, "-ERR Cannot decode the response");
        break;
    case AUTH_TEMPFAIL:
        pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
        break;
    }
    if (st != AUTH_CONTINUE && st != AUTH_OK) {
        /* One SASL exchange per auth session: a new attempt starts afresh. */
        auth_session_free(&s->auth);
        if (s->state == ST_SASL)
            pop3_enter(s, ST_AUTHORIZATION);
    }
    pop3_step_done(s);
}

static void begin(struct pop3_session *s, const char *mech, const char *initial)
{
    pop3_step_begin(s);
    auth_start(s->auth, mech, initial, auth_done, s);
}

/* §7 USER. Whether the name exists is not disclosed: PASS fails alike. */
void pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    if (!pop3_plaintext_allowed(s)) {
        pop3_error(s, "-ERR Plaintext authentication disallowed without TLS; use STLS first");
        return;
    }
    const struct pop3_arg *a = &cmd->argv[0];
    if (a->len > POP3_MAX_USER) {
        pop3_error(s, "-ERR User name too long");
        return;
    }
    memcpy(s->user, a->p, a->len);
    s->user[a->len] = '\0';
    pop3_reply(s, "+OK Send your password");
}

/* §7 PASS: auth_login runs it as SASL PLAIN with the USER name. */
void pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    if (!s->user[0]) {
        pop3_error(s, "-ERR Send USER first");
        return;
    }
    if (!pop3_plaintext_allowed(s)) { /* USER checked it; TLS cannot go away */
        pop3_error(s, "-ERR Plaintext authentication disallowed without TLS; use STLS first");
        return;
    }
    if (!ensure_auth(s))
        return;
    char user[sizeof s->user];
    char password[POP3_MAX_PASS + 1];
    memcpy(user, s->user, sizeof user);
    memcpy(password, cmd->rest.p, cmd->rest.len); /* the parser kept it <= POP3_MAX_PASS */
    password[cmd->rest.len] = '\0';
    /* §7: after PASS, successful or not, USER starts again. */
    explicit_bzero(s->user, sizeof s->user);
    pop3_step_begin(s);
    auth_login(s->auth, user, password, auth_done, s);
    explicit_bzero(password, sizeof password);
    explicit_bzero(user, sizeof user);
}

/* RFC 5034 §4. Without a mechanism: the list (RFC 1734's form, which
 * older Outlook versions send). */
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
    if (!ensure_auth(s))
        return;
    const char *mechs = auth_mechanisms(s->auth);
    if (cmd->argc == 0) {
        pop3_reply(s, "+OK Authentication mechanisms follow");
        for (const char *p = mechs; *p;) {
            size_t w = strcspn(p, " ");
            if (w)
                pop3_reply(s, "%.*s", (int)w, p);
            p += w;
            p += strspn(p, " ");
        }
        pop3_reply(s, ".");
        return;
    }
    const struct pop3_arg *m = &cmd->argv[0];
    char mech[41];
    if (m->len >= sizeof mech) {
        pop3_error(s, "-ERR Unrecognized authentication mechanism");
        return;
    }
    memcpy(mech, m->p, m->len);
    mech[m->len] = '\0';
    if (!auth_mechanism_allowed(s->auth, mech, m->len)) {
        if (!conn_is_tls(s->conn) && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0))
            pop3_error(s, "-ERR Encryption required for this mechanism; use STLS first");
        else
            pop3_error(s, "-ERR Unrecognized authentication mechanism");
        return;
    }
    char *initial = NULL;
    if (cmd->argc == 2) {
        initial = strndup(cmd->argv[1].p, cmd->argv[1].len);
        if (!initial) {
            pop3_reply(s, "-ERR [SYS/TEMP] Out of memory");
            return;
        }
    }
    begin(s, mech, initial);
    if (initial) {
        explicit_bzero(initial, cmd->argv[1].len);
        free(initial);
    }
}

/* A line in reply to "+ challenge": base64, or "*" to cancel (§4). */
void pop3_auth_response(struct pop3_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        auth_session_free(&s->auth);
        pop3_enter(s, ST_AUTHORIZATION);
        pop3_error(s, "-ERR Authentication cancelled");
        return;
    }
    char response[POP3_MAX_AUTH_LINE + 3];
    if (len >= sizeof response)
        len = sizeof response - 1; /* read_line's limit keeps it shorter */
    memcpy(response, line, len);
    response[len] = '\0';
    pop3_step_begin(s);
    auth_step(s->auth, response, auth_done, s);
    explicit_bzero(response, len);
}
