/*
 * IDLE (RFC 2177, RFC 9051 §6.3.13): the session reports every change as
 * the store publishes it (session.c on_change) until the client says DONE.
 */
#include <string.h>
#include <strings.h>

#include "imap/imap-int.h"

void imap_cmd_idle(struct imap_session *s, const struct imap_request *r)
{
    if (r->nargs) {
        imap_bad(s, "IDLE takes no arguments");
        return;
    }
    imap_printf(s, "+ idling\r\n");
    imap_enter(s, IMAP_PH_IDLE);
    imap_view_report(s, true);
}

void imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
    imap_enter(s, IMAP_PH_COMMAND);
    if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
        imap_done(s, "OK", "IDLE terminated");
    else
        imap_bad(s, "Expected DONE to end IDLE");
}
