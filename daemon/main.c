/*
 * petreld: reads the config, opens the store, starts auth and the protocol
 * listeners, and runs the loop until SIGTERM/SIGINT. SIGHUP reloads the TLS
 * certificate and key.
 *
 * Start-up order matters: everything that can fail on bad config or files
 * (config, certificate, store) fails before any port is bound, so a broken
 * restart never half-takes the ports.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/core.h"
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define DEFAULT_CONFIG "/etc/petrel/petrel.conf"

struct daemon {
    uv_loop_t *loop;
    struct config cfg;
    struct server *srv;
    struct store *store;
    struct dns *dns;              /* the checks on the MX; the relay's routes */
    struct relay *relay;          /* the outbound queue runner */
    struct dmarc_psl *psl;        /* NULL: DMARC's last-two-labels fallback */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: petreld [-c FILE]\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t       check the configuration and exit\n"
            "  -h       this help\n");
}

static void on_stopped(void *arg)
{
    struct daemon *d = arg;
    struct store_stats st;
    store_stats(d->store, &st);
    /* Deliveries per transaction shows group commit at work. */
    log_event(PLOG_INFO, 0, "event=stopped transactions=%llu deliveries=%llu",
              (unsigned long long)st.transactions, (unsigned long long)st.deliveries);
    uv_stop(d->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        int r = server_reload_tls(d->srv);
        log_event(r == 0 ? PLOG_INFO : PLOG_ERROR, 0, "event=reload-tls result=%s",
                  r == 0 ? "ok" : "failed");
        return;
    }
    if (d->stopping)
        return;
    d->stopping = true;
    log_event(PLOG_INFO, 0, "event=signal signal=%s", signum == SIGTERM ? "TERM" : "INT");
    relay_stop(&d->relay);
    server_stop(d->srv, on_stopped, d);
}

static int watch_signal(struct daemon *d, uv_signal_t *h, int signum)
{
    h->data = d;
    if (uv_signal_init(d->loop, h) != 0 || uv_signal_start(h, on_signal, signum) != 0)
        return -1;
    uv_unref((uv_handle_t *)h);
    return 0;
}

/*
 * The Public Suffix List for DMARC's organizational domains ([checks] psl).
 * The default file missing is a warning (DMARC falls back to the last two
 * labels, docs/spf-dmarc.md); a file named in the config must load.
 */
static int load_psl(struct daemon *d, char *err, size_t errlen)
{
    if (d->cfg.checks_mode == CHECKS_OFF)
        return 0;
    char why[512];
    if (dmarc_psl_load(d->cfg.checks_psl, &d->psl, why, sizeof why) == 0) {
        log_event(PLOG_DEBUG, 0, "event=psl-loaded rules=%zu", dmarc_psl_rules(d->psl));
        return 0;
    }
    d->psl = NULL;
    if (strcmp(d->cfg.checks_psl, DMARC_PSL_PATH) != 0) {
        snprintf(err, errlen, "[checks] psl: %s", why);
        return -1;
    }
    char v[600];
    log_event(PLOG_WARN, 0, "event=psl-missing reason=%s fallback=last-two-labels",
              log_value(why, v, sizeof v));
    return 0;
}

static int start(struct daemon *d, char *err, size_t errlen)
{
    if (server_init(&d->srv, d->loop, &d->cfg, err, errlen) != 0)
        return -1;
    if (store_open(d->cfg.data_dir, &d->store, err, errlen) != 0)
        return -1;
    if (store_start_writer(d->store, d->loop) != 0) {
        snprintf(err, errlen, "store: cannot start the writer");
        return -1;
    }
    if (auth_init(&d->cfg, d->store, d->loop, err, errlen) != 0)
        return -1;
    if (dns_new(d->loop, d->cfg.dns_server[0] ? d->cfg.dns_server : NULL, d->cfg.dns_timeout_ms,
                d->cfg.dns_tries, &d->dns, err, errlen) != 0)
        return -1;
    if (load_psl(d, err, errlen) != 0)
        return -1;
    if (smtp_start(d->srv, d->store, d->dns, d->psl, err, errlen) != 0)
        return -1;
    if (relay_start(d->srv, d->store, d->dns, &d->relay) != 0) {
        snprintf(err, errlen, "relay: cannot start the queue runner");
        return -1;
    }
    if (imap_start(d->srv, d->store, err, errlen) != 0)
        return -1;
    if (pop3_start(d->srv, d->store, err, errlen) != 0)
        return -1;
    if (watch_signal(d, &d->sig_term, SIGTERM) != 0 || watch_signal(d, &d->sig_int, SIGINT) != 0 ||
        watch_signal(d, &d->sig_hup, SIGHUP) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    return 0;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(struct daemon *d)
{
    relay_stop(&d->relay);
    /* The store first: its writer drains, then its loop handles go. */
    store_close(&d->store);
    auth_shutdown();
    dns_free(&d->dns); /* no session is left to have a query pending */
    server_free(&d->srv);
    uv_walk(d->loop, close_handle, NULL);
    uv_run(d->loop, UV_RUN_DEFAULT);
    uv_loop_close(d->loop);
    dmarc_psl_free(&d->psl);
}

/* libuv's pool size is read once, at the first queued work item. */
static void set_pool_size(unsigned threads)
{
    char v[16];
    snprintf(v, sizeof v, "%u", threads);
    setenv("UV_THREADPOOL_SIZE", v, 1);
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    bool check_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    static struct daemon d;
    char err[512];
    config_defaults(&d.cfg);
    if (config_load(path, &d.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "petreld: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("%s: ok\n", path);
        return 0;
    }
    log_set_level(d.cfg.log_level);
    set_pool_size(d.cfg.threads);
    signal(SIGPIPE, SIG_IGN);

    d.loop = uv_default_loop();
    if (start(&d, err, sizeof err) != 0) {
        fprintf(stderr, "petreld: %s\n", err);
        log_event(PLOG_ERROR, 0, "event=start-failed reason=\"%s\"", err);
        finish(&d);
        return 1;
    }
    log_event(PLOG_INFO, 0, "event=started hostname=%s data_dir=%s checks=%s", d.cfg.hostname,
              d.cfg.data_dir, checks_mode_name(d.cfg.checks_mode));
    uv_run(d.loop, UV_RUN_DEFAULT);
    finish(&d);
    return 0;
}
