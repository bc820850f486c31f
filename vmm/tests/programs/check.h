/* What several test programs share: printing a call's result with errno's
 * name when it failed, and waiting until another process sleeps in a
 * system call (so that the next step finds it waiting, on the host and on
 * Lego alike). */
#ifndef LEGO_TEST_CHECK_H
#define LEGO_TEST_CHECK_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

/* A TCP listener on 127.0.0.1 at a port the kernel picks; `a` gets its
 * address. */
static inline int tcp_listener(struct sockaddr_in *a)
{
    socklen_t l = sizeof *a;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    bind(srv, (struct sockaddr *)a, sizeof *a);
    listen(srv, 4);
    getsockname(srv, (struct sockaddr *)a, &l);
    return srv;
}

#endif
