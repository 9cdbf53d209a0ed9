/*
 * libfsync-delay.so: LD_PRELOAD shim for bench/smtp --fsync-delay-us. Makes
 * every fsync/fdatasync of the process take FSYNC_DELAY_US microseconds
 * longer, to emulate a slower disk than the machine's (a VM's virtual disk
 * often acknowledges a flush in ~150 us; a SATA SSD takes 0.5-2 ms, a spinning
 * disk 5-10 ms). Only for benchmarks: it never changes what is written.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

static void delay(void)
{
    static long us = -1;
    if (us < 0) {
        const char *e = getenv("FSYNC_DELAY_US");
        us = e ? atol(e) : 0;
    }
    if (us > 0) {
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    delay();
    return rc;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    delay();
    return rc;
}
