/*
 * The maildrop: a snapshot of the user's INBOX taken at login (RFC 1939 §4)
 * and the UPDATE state that QUIT enters (§6).
 *
 * Concurrent sessions of one user (POP3 or IMAP) each keep their own view:
 * a message another session expunges stays listed here with its number,
 * and RETR of it answers -ERR (docs/pop3.md explains the choice over
 * [IN-USE]).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-int.h"

void pop3_maildrop_free(struct pop3_maildrop *d)
{
    free(d->msgs);
    memset(d, 0, sizeof *d);
}

void pop3_update_free(struct pop3_update *u)
{
    free(u->seen);
    free(u->del);
    memset(u, 0, sizeof *u);
}

struct snap {
    struct pop3_maildrop *d;
    bool nomem;
};

static void add_message(void *arg, const struct store_message_info *m)
{
    struct snap *sn = arg;
    struct pop3_maildrop *d = sn->d;
    if (sn->nomem)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct pop3_msg *p = realloc(d->msgs, cap * sizeof *p);
        if (!p) {
            sn->nomem = true;
            return;
        }
        d->msgs = p;
        d->cap = cap;
    }
    d->msgs[d->n++] = (struct pop3_msg){ .uid = m->uid, .size = m->size };
    d->size += m->size;
}

void pop3_maildrop_open(struct pop3_session *s)
{
    struct store_mailbox mb;
    int r = store_mailbox_get(s->store, s->user_id, "INBOX", &mb);
    struct pop3_maildrop *d = &s->drop;
    pop3_maildrop_free(d);
    if (r == STORE_OK) {
        d->mailbox_id = mb.id;
        d->uidvalidity = mb.uidvalidity;
        struct snap sn = { .d = d };
        /* One indexed read of (uid, size) rows on the loop, like IMAP SELECT. */
        r = store_message_index(s->store, mb.id, 0, add_message, &sn);
        if (r == STORE_OK && sn.nomem)
            r = STORE_ERROR;
    }
    if (r != STORE_OK) {
        log_event(PLOG_ERROR, conn_id(s->conn), "event=pop3-maildrop-failed user=%s result=%s",
                  s->login, store_strerror(r));
        pop3_maildrop_free(d);
        s->login[0] = '\0';
        s->user_id = 0;
        /* RFC 2449 §8.1.2 / RFC 3206 §4: not the user's fault. */
        if (r == STORE_NOTFOUND)
            pop3_reply(s, "-ERR [SYS/PERM] This account has no INBOX");
        else
            pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the maildrop, try again later");
        return;
    }
    log_event(PLOG_INFO, conn_id(s->conn), "event=pop3-login user=%s messages=%zu size=%" PRIu64,
              s->login, d->n, d->size);
    pop3_enter(s, ST_TRANSACTION);
    conn_set_timeout(s->conn, (uint64_t)s->cfg->idle_timeout * 1000);
    pop3_reply(s, "+OK Logged in, %zu messages (%" PRIu64 " octets)", d->n, d->size);
}

/* ------------------------------------------------------------- UPDATE */

/*
 * QUIT: the retrieved messages get \Seen, the DELE'd ones are expunged, in
 * one store request each (store_expunge_uids takes the marked UIDs whatever
 * their flags). The reply waits until the commits are durable (DESIGN: OK
 * only after the commit). A connection that drops before QUIT sends
 * nothing of this. A marked message another session expunged meanwhile is
 * simply gone (RFC 1939 §6 asks only that the marked ones be removed).
 */
static void finish_update(struct pop3_session *s)
{
    struct pop3_update *u = &s->upd;
    bool ok = u->expunge_result == STORE_OK;
    log_event(ok ? PLOG_INFO : PLOG_WARN, s->conn ? conn_id(s->conn) : 0,
              "event=pop3-update user=%s deleted=%zu expunged=%zu seen=%zu result=%s",
              s->login, u->n_del, u->n_expunged, u->n_seen, ok ? "ok" : "failed");
    if (!ok)
        pop3_reply(s, "-ERR [SYS/TEMP] Deleted messages not removed, try again later");
    else
        pop3_reply(s, "+OK %s POP3 server signing off (%zu messages deleted)", s->cfg->hostname,
                   u->n_expunged);
    pop3_close(s);
    pop3_step_done(s);
}

/* Every store callback of the UPDATE ends here. */
static void update_step(struct pop3_session *s)
{
    if (!pop3_release(&s))
        return; /* the client hung up after QUIT; the commits still happened */
    if (s->pending == 0)
        finish_update(s);
}

static void on_seen(void *arg, int result, const struct store_flags_result *r)
{
    struct pop3_session *s = arg;
    if (result != STORE_OK)
        log_event(PLOG_WARN, 0, "event=pop3-seen-failed user=%s result=%s", s->login,
                  store_strerror(result));
    update_step(s);
}

static void on_expunged(void *arg, int result, const uint32_t *uids, size_t n, uint64_t modseq)
{
    struct pop3_session *s = arg;
    s->upd.expunge_result = result;
    s->upd.n_expunged = result == STORE_OK ? n : 0;
    update_step(s);
}

static uint32_t *collect(const struct pop3_maildrop *d, bool deleted, size_t *n)
{
    *n = 0;
    uint32_t *uids = malloc((d->n ? d->n : 1) * sizeof *uids);
    if (!uids)
        return NULL;
    for (size_t i = 0; i < d->n; i++) {
        const struct pop3_msg *m = &d->msgs[i];
        if (deleted ? m->deleted : (m->retrieved && !m->deleted && !m->gone))
            uids[(*n)++] = m->uid;
    }
    return uids;
}

void pop3_update(struct pop3_session *s)
{
    struct pop3_update *u = &s->upd;
    pop3_update_free(u);
    pop3_enter(s, ST_UPDATE);
    pop3_step_begin(s);
    u->seen = collect(&s->drop, false, &u->n_seen);
    u->del = collect(&s->drop, true, &u->n_del);
    u->expunge_result = STORE_OK;
    if (!u->seen || !u->del) {
        u->expunge_result = STORE_ERROR;
        finish_update(s);
        return;
    }
    int64_t box = s->drop.mailbox_id;
    /* \Seen first: it is only a courtesy to IMAP clients; its failure is
     * logged, not reported (RFC 1939 has no notion of it). */
    if (u->n_seen) {
        s->pending++;
        if (store_flags(s->store, box, u->seen, u->n_seen, STORE_FLAGS_ADD, "\\Seen", 0, on_seen,
                        s) != STORE_OK)
            s->pending--;
    }
    if (u->n_del) {
        s->pending++;
        int r = store_expunge_uids(s->store, box, u->del, u->n_del, on_expunged, s);
        if (r != STORE_OK) {
            s->pending--;
            u->expunge_result = r;
        }
    }
    if (s->pending == 0)
        finish_update(s);
}
