/*
 * SMTP AUTH (RFC 4954) on top of auth/: the command, the 334 exchange and
 * the replies. SASL steps run off the loop; the session waits meanwhile.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp-int.h"

static void auth_done(void *arg, enum auth_status st, const char *challenge)
{
    struct smtp_session *s = arg;
    switch (st) {
    case AUTH_CONTINUE:
        smtp_reply(s, "334 %s", challenge);
        smtp_enter(s, PHASE_AUTH);
        break;
    case AUTH_OK:
        snprintf(s->user, sizeof s->user, "%s", auth_session_user(s->auth));
        s->user_id = auth_session_user_id(s->auth);
        smtp_reply(s, "235 2.7.0 Authentication successful");
        break;
    case AUTH_FAIL:
        smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
        break;
    case AUTH_THROTTLED:
        smtp_reply(s, "454 4.7.0 Too many failed logins, try again later");
        break;
    case AUTH_BADMECH:
        smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
        break;
    case AUTH_BADINPUT:
        smtp_error(s, "501 5.5.2 Cannot decode response");
        break;
    case AUTH_TEMPFAIL:
        smtp_reply(s, "454 4.7.0 Temporary authentication failure");
        break;
    }
    if (st != AUTH_CONTINUE) {
        /* One SASL exchange per session object: a new AUTH starts afresh. */
        if (st != AUTH_OK)
            auth_session_free(&s->auth);
        if (s->phase == PHASE_WAIT || s->phase == PHASE_AUTH)
            smtp_enter(s, PHASE_COMMAND);
    }
    conn_resume(s->conn);
    conn_flush(s->conn);
}

void smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len)
{
    if (s->role != ROLE_SUBMISSION) {
        smtp_error(s, "503 5.5.1 AUTH not available on this port; use submission (587 or 465)");
        return;
    }
    if (s->user[0]) {
        smtp_error(s, "503 5.5.1 Already authenticated");
        return;
    }
    if (s->txn) {
        smtp_error(s, "503 5.5.1 AUTH not allowed during a mail transaction");
        return;
    }
    char text[SMTP_MAX_AUTH_LINE + 1];
    if (len >= sizeof text) {
        smtp_error(s, "500 5.5.6 Line too long");
        return;
    }
    memcpy(text, args, len);
    text[len] = 0;
    char *initial = strchr(text, ' ');
    if (initial)
        *initial++ = 0;
    const char *mech = text;
    size_t mech_len = strlen(mech);
    if (mech_len == 0 || mech_len > 40 || (initial && (!*initial || strchr(initial, ' ')))) {
        smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return;
    }

    if (!s->auth)
        s->auth = auth_session_new("smtp", s->conn);
    if (!s->auth) {
        smtp_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    if (!auth_mechanism_allowed(s->auth, mech, mech_len)) {
        /* RFC 4954 §6: 538 when the mechanism would need encryption. */
        if (!conn_is_tls(s->conn) &&
            (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0))
            smtp_error(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        else
            smtp_error(s, "504 5.5.4 Unrecognized authentication type");
        return;
    }
    smtp_enter(s, PHASE_WAIT);
    conn_pause(s->conn);
    auth_start(s->auth, mech, initial, auth_done, s);
}

/* A line in reply to 334: base64, or "*" to cancel (RFC 4954 §4). */
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        auth_session_free(&s->auth);
        smtp_enter(s, PHASE_COMMAND);
        smtp_error(s, "501 5.0.0 Authentication cancelled");
        return;
    }
    char response[SMTP_MAX_AUTH_LINE + 1];
    memcpy(response, line, len);
    response[len] = 0;
    smtp_enter(s, PHASE_WAIT);
    conn_pause(s->conn);
    auth_step(s->auth, response, auth_done, s);
}
