/* What several test programs share: printing a call's result with errno's
 * name when it failed, and waiting until another process sleeps in a
 * system call (so that the next step finds it waiting, on the host and on
 * Lego alike). */
#ifndef LEGO_TEST_CHECK_H
#define LEGO_TEST_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define SHOW(what, expr)                                                     \
    do {                                                                     \
        errno = 0;                                                           \
        long r_ = (expr);                                                    \
        printf("%s: %ld%s%s\n", what, r_, r_ < 0 ? " " : "",                 \
               r_ < 0 ? strerror(errno) : "");                               \
    } while (0)

/* Waits (at most 5 s) until process `pid` sleeps, as /proc/PID/stat
 * says. */
static inline void wait_asleep(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 5000; i++) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        char *s = strrchr(buf, ')');
        if (s && s[1] == ' ' && s[2] == 'S')
            return;
        usleep(1000);
    }
}

#endif
