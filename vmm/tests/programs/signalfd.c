/* signalfd: blocked signals read as records, poll and epoll on it (a
 * child's SIGCHLD wakes them), a blocking read woken by another thread,
 * sigqueue's value, a set changed in place, and the errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, struct signalfd_siginfo *si, ssize_t n)
{
    if (n < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    printf("%s: %zd bytes, %s, code %d, from %s\n", what, n, strsignal(si->ssi_signo),
           si->ssi_code, si->ssi_pid == (unsigned)getpid() ? "self" : "another");
}

static void *kick(void *arg)
{
    usleep(20000);
    kill(getpid(), SIGUSR2);
    return arg;
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, 0);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    printf("signalfd: %s\n", fd >= 0 ? "ok" : strerror(errno));
    char link[64] = { 0 }, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    readlink(path, link, sizeof link - 1);
    printf("it is %s\n", link);

    struct signalfd_siginfo si[2];
    errno = 0;
    show("nothing pending", si, read(fd, si, sizeof si[0]));
    struct pollfd p = { fd, POLLIN };
    printf("poll: %d\n", poll(&p, 1, 0));
    kill(getpid(), SIGUSR1);
    int polled = poll(&p, 1, 0);
    printf("poll after a kill: %d, revents %d\n", polled, p.revents);
    show("read", si, read(fd, si, sizeof si[0]));
    errno = 0;
    show("a short buffer", si, read(fd, si, 10));

    /* A child's end wakes epoll_wait. */
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        _exit(3);
    }
    struct epoll_event got;
    printf("epoll_wait: %d\n", epoll_wait(ep, &got, 1, 5000));
    ssize_t n = read(fd, si, sizeof si[0]);
    printf("SIGCHLD: %zd bytes, status %d, from the child: %s\n", n, si[0].ssi_status,
           si[0].ssi_pid == (unsigned)child ? "yes" : "no");
    waitpid(child, 0, 0);

    /* Two at once, the lowest number first, with sigqueue's value. */
    union sigval v = { .sival_int = 42 };
    sigqueue(getpid(), SIGCHLD, v);
    sigqueue(getpid(), SIGUSR1, v);
    n = read(fd, si, sizeof si);
    printf("two: %zd bytes, %s then %s, value %d\n", n, strsignal(si[0].ssi_signo),
           strsignal(si[1].ssi_signo), si[0].ssi_int);

    /* The set changed in place; a blocking read woken by a thread. */
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, 0);
    int fd2 = signalfd(-1, &set, 0);
    printf("signalfd on its own fd: %d\n", signalfd(fd2, &set, 0) == fd2);
    pthread_t t;
    pthread_create(&t, 0, kick, 0);
    show("blocking read", si, read(fd2, si, sizeof si[0]));
    pthread_join(t, 0);
    int pipefd[2];
    pipe(pipefd);
    errno = 0;
    int r = signalfd(pipefd[0], &set, 0);
    printf("signalfd on a pipe: %d %s\n", r, strerror(errno));
    errno = 0;
    r = syscall(289, -1, &set, 4, 0);
    printf("a bad size: %d %s\n", r, strerror(errno));
    return 0;
}
