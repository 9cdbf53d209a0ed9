/*
 * The INI config loader against any text. Properties checked:
 *  - an error is one NUL-terminated line that names the file;
 *  - an accepted config holds every value within its documented range;
 *  - config_load (a file) and config_load_string (a string) agree: same
 *    result, same error, same config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static bool terminated(const char *s, size_t size)
{
    return memchr(s, 0, size) != NULL;
}

static void check_config(const struct config *c)
{
    CHECK(terminated(c->path, sizeof c->path));
    CHECK(terminated(c->hostname, sizeof c->hostname) && c->hostname[0]);
    CHECK(terminated(c->data_dir, sizeof c->data_dir) && c->data_dir[0]);
    CHECK(terminated(c->tls_cert, sizeof c->tls_cert) && c->tls_cert[0]);
    CHECK(terminated(c->tls_key, sizeof c->tls_key) && c->tls_key[0]);
    for (int i = 0; i < LISTEN_KIND_COUNT; i++) {
        const struct listen_addr *l = &c->listen[i];
        CHECK(terminated(l->host, sizeof l->host));
        if (l->enabled)
            CHECK(l->host[0] && l->port >= 0 && l->port <= 65535);
    }
    CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
    CHECK(c->max_connections_per_ip >= 1 && c->max_connections_per_ip <= 1000000);
    CHECK(c->max_line_length >= 512 && c->max_line_length <= 1024 * 1024);
    CHECK(c->max_recipients >= 1 && c->max_errors >= 1);
    CHECK(c->smtp_timeout >= 1 && c->smtp_timeout <= 86400);
    CHECK(c->max_output_buffer >= 4096);
    CHECK(c->auth_fail_delay_ms <= 60000);
    CHECK(c->threads >= 1 && c->threads <= 1024);
    CHECK((unsigned)c->log_level <= PLOG_DEBUG);
}

/* A file for the config_load side, made once per process. */
static char scratch[64];

static void remove_scratch(void)
{
    unlink(scratch);
}

static const char *scratch_file(void)
{
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/fuzz_config-XXXXXX");
        int fd = mkstemp(scratch);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_scratch);
    }
    return scratch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    const char *name = scratch_file();
    static struct config a, b; /* large (PATH_MAX strings): not on the stack */
    char err_a[512], err_b[512];
    memset(err_a, 'x', sizeof err_a);
    config_defaults(&a);
    int rc_a = config_load_string(text, name, &a, err_a, sizeof err_a);
    CHECK(rc_a == 0 || rc_a == -1);
    CHECK(terminated(err_a, sizeof err_a));
    if (rc_a == 0) {
        CHECK(err_a[0] == '\0');
        CHECK(strcmp(a.path, name) == 0);
        check_config(&a);
    } else {
        CHECK(strncmp(err_a, name, strlen(name)) == 0 && !strchr(err_a, '\n'));
    }

    /* A NUL ends the string but not the file: compare only text without one. */
    if (!memchr(data, 0, size)) {
        FILE *f = fopen(name, "w");
        if (!f || fwrite(text, 1, size, f) != size || fclose(f) != 0)
            abort();
        config_defaults(&b);
        int rc_b = config_load(name, &b, err_b, sizeof err_b);
        CHECK(rc_a == rc_b);
        CHECK(strcmp(err_a, err_b) == 0);
        if (rc_a == 0)
            CHECK(memcmp(&a, &b, sizeof a) == 0);
    }
    free(text);
    return 0;
}
