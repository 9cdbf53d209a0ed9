/* testdir.c — see testdir.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "tests/unit/testdir.h"

char testdir[] = "/tmp/petrel-test-XXXXXX";

int testdir_setup(void **state)
{
    (void)state;
    if (!mkdtemp(testdir))
        return -1;
    log_set_level(PLOG_ERROR);
    return 0;
}

int testdir_teardown(void **state)
{
    (void)state;
    rmdir(testdir);
    return 0;
}

void testdir_rm(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}
