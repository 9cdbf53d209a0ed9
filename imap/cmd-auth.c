/*
 * Not-authenticated state: STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3) and
 * AUTHENTICATE (§6.2.2, SASL-IR RFC 4959) on top of auth/. Password checks
 * run off the loop; the session waits meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

#define MAX_AUTH_LINE 12288  /* base64 of a SCRAM message or a long PLAIN */

void imap_cmd_starttls(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs) {
        imap_bad(s, "STARTTLS takes no arguments");
        return;
    }
    if (conn_is_tls(s->conn) || conn_kind(s->conn) != LISTEN_IMAP) {
        imap_bad(s, "TLS is already active");
        return;
    }
    imap_tagged(s, "OK", "Begin TLS negotiation now");
    /* §6.2.1: forget what was learnt before TLS; conn_starttls drops what
     * the client pipelined after STARTTLS (command injection). */
    auth_session_free(&s->auth);
    imap_parser_reset(s->parser);
    memset(&s->req, 0, sizeof s->req);
    if (conn_starttls(s->conn) != 0) {
        log_event(PLOG_ERROR, conn_id(s->conn), "event=starttls-failed peer=%s",
                  conn_peer_ip(s->conn));
        imap_close(s);
    }
}

static bool ensure_auth(struct imap_session *s)
{
    if (!s->auth)
        s->auth = auth_session_new("imap", s->conn);
    if (s->auth)
        return true;
    imap_done(s, "NO", "[UNAVAILABLE] Temporary authentication failure");
    return false;
}

static void login_result(void *arg, enum auth_status st, const char *challenge)
{
    struct imap_session *s = arg;
    if (!imap_resume(s))
        return;
    switch (st) {
    case AUTH_CONTINUE:
        /* AUTHENTICATE: "+ challenge", then the client's line. */
        imap_printf(s, "+ %s\r\n", challenge);
        imap_enter(s, IMAP_PH_AUTH);
        conn_resume(s->conn);
        conn_flush(s->conn);
        return;
    case AUTH_OK: {
        imap_login_done(s, auth_session_user(s->auth), auth_session_user_id(s->auth));
        struct buf caps = { 0 };
        imap_buf_capability(s, &caps);
        imap_done(s, "OK", "[CAPABILITY %.*s] Logged in", (int)caps.len,
                  caps.data ? caps.data : "");
        buf_free(&caps);
        break;
    }
    case AUTH_FAIL:
        imap_done(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
        break;
    case AUTH_THROTTLED:
        imap_done(s, "NO", "[UNAVAILABLE] Too many failed logins, try again later");
        break;
    case AUTH_BADMECH:
        if (!conn_is_tls(s->conn))
            imap_done(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS or port 993 to log in");
        else
            imap_done(s, "NO", "[CANNOT] Unsupported authentication mechanism");
        break;
    case AUTH_BADINPUT:
        imap_bad(s, "Invalid base64 or malformed SASL response");
        break;
    case AUTH_TEMPFAIL:
        imap_done(s, "NO", "[UNAVAILABLE] Temporary authentication failure");
        break;
    }
    /* Logged in or not, this exchange is over; a SASL context is costly to
     * keep on an idle connection. */
    auth_session_free(&s->auth);
    conn_flush(s->conn);
}

void imap_cmd_login(struct imap_session *s, const struct imap_request *r)
{
    const char *user, *pass;
    size_t ul, pl;
    if (r->nargs != 2 || !imap_arg_astring(r->args, &user, &ul) ||
        !imap_arg_astring(r->args->next, &pass, &pl)) {
        imap_bad(s, "LOGIN takes a user name and a password");
        return;
    }
    if (memchr(user, 0, ul) || memchr(pass, 0, pl)) {
        imap_bad(s, "NUL in user name or password");
        return;
    }
    if (!ensure_auth(s))
        return;
    imap_wait(s);
    auth_login(s->auth, user, pass, login_result, s);
}

void imap_cmd_authenticate(struct imap_session *s, const struct imap_request *r)
{
    const struct imap_arg *mech = r->args;
    const struct imap_arg *ir = mech ? mech->next : NULL;
    if (r->nargs < 1 || r->nargs > 2 || mech->type != IMAP_ARG_ATOM ||
        (ir && ir->type != IMAP_ARG_ATOM)) {
        imap_bad(s, "AUTHENTICATE takes a mechanism and an optional initial response");
        return;
    }
    if (!ensure_auth(s))
        return;
    imap_wait(s);
    /* RFC 4959: "=" stands for an empty initial response, as auth/ expects. */
    auth_start(s->auth, mech->str, ir ? ir->str : NULL, login_result, s);
}

/* A line in reply to "+": base64, or "*" to cancel (RFC 9051 §6.2.2). */
void imap_auth_response(struct imap_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        auth_session_free(&s->auth);
        imap_enter(s, IMAP_PH_COMMAND);
        imap_bad(s, "Authentication cancelled");
        return;
    }
    if (len > MAX_AUTH_LINE) {
        auth_session_free(&s->auth);
        imap_enter(s, IMAP_PH_COMMAND);
        imap_bad(s, "[TOOBIG] Authentication response too long");
        return;
    }
    char *response = strndup(line, len);
    if (!response) {
        imap_enter(s, IMAP_PH_COMMAND);
        imap_done(s, "NO", "[UNAVAILABLE] Out of memory");
        return;
    }
    imap_wait(s);
    auth_step(s->auth, response, login_result, s);
    free(response);
}
