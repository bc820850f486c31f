/* ppoll, pselect and epoll_pwait with a signal mask: a signal blocked
 * around the call (SIGCHLD, as GNU make's jobserver blocks it around its
 * pselect) ends the wait with EINTR under the call's mask, its handler
 * runs, and the mask from before is back afterwards; a call that finds a
 * descriptor ready returns it and leaves the signal pending; a bad size is
 * EINVAL. Prints what holds, so the host's and Lego's outputs compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_chld(int sig)
{
    (void)sig;
    handled++;
}

static const char *yes(int b)
{
    return b ? "yes" : "no";
}

static int chld_blocked(void)
{
    sigset_t now;
    sigprocmask(SIG_BLOCK, 0, &now);
    return sigismember(&now, SIGCHLD);
}

static void child_ends_soon(void)
{
    if (fork() == 0) {
        usleep(50000);
        _exit(0);
    }
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, 0);
    sigset_t chld, none;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &chld, 0);
    int p[2];
    pipe(p);

    child_ends_soon();
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    errno = 0;
    int r = pselect(p[0] + 1, &rd, 0, 0, 0, &none);
    printf("pselect: EINTR %s, handler ran %s, SIGCHLD blocked again %s\n", yes(r < 0 && errno == EINTR),
           yes(handled == 1), yes(chld_blocked()));
    wait(0);

    child_ends_soon();
    struct pollfd pf = {p[0], POLLIN, 0};
    errno = 0;
    r = ppoll(&pf, 1, 0, &none);
    printf("ppoll: EINTR %s, handler ran %s, SIGCHLD blocked again %s\n", yes(r < 0 && errno == EINTR),
           yes(handled == 2), yes(chld_blocked()));
    wait(0);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    child_ends_soon();
    errno = 0;
    r = epoll_pwait(ep, &out, 1, -1, &none);
    printf("epoll_pwait: EINTR %s, handler ran %s, SIGCHLD blocked again %s\n", yes(r < 0 && errno == EINTR),
           yes(handled == 3), yes(chld_blocked()));
    wait(0);

    /* Ready at once: the descriptor, and the signal stays pending. */
    child_ends_soon();
    usleep(150000);
    write(p[1], "x", 1);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    r = pselect(p[0] + 1, &rd, 0, 0, 0, &none);
    sigset_t pend;
    sigpending(&pend);
    printf("ready at once: 1 ready %s, SIGCHLD still pending %s, handler not run %s\n", yes(r == 1),
           yes(sigismember(&pend, SIGCHLD)), yes(handled == 3));
    char c;
    read(p[0], &c, 1);
    /* Pending and open under the call's mask: EINTR at once. */
    struct timespec long_wait = {5, 0};
    errno = 0;
    r = ppoll(&pf, 1, &long_wait, &none);
    printf("pending before the wait: EINTR %s, handler ran %s\n", yes(r < 0 && errno == EINTR), yes(handled == 4));
    wait(0);

    errno = 0;
    r = syscall(SYS_ppoll, &pf, 1, &long_wait, &none, 4);
    printf("a mask of 4 bytes: %s\n", r < 0 && errno == EINVAL ? "EINVAL" : "taken");
    return 0;
}
