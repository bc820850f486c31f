/* O_ASYNC: SIGIO to a descriptor's owner when it becomes readable or
 * writable (fcntl F_SETFL and ioctl FIOASYNC, as nginx's master sets it on
 * the channel to each worker), F_SETSIG's siginfo (the reason, the band,
 * the descriptor), no signal without an owner or once the flag is off,
 * an owner and O_ASYNC set on a TCP socket before its connect;
 * and a program's title written over its arguments (setproctitle, as
 * nginx and PostgreSQL name their processes) read back from
 * /proc/self/cmdline. Prints what holds, so the host's and Lego's outputs
 * compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t sigios;
static volatile sig_atomic_t rt_code, rt_fd, rt_band, rts;

static void on_sigio(int sig)
{
    (void)sig;
    sigios++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    rts++;
    rt_code = si->si_code;
    rt_fd = si->si_fd;
    rt_band = (int)si->si_band;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static const char *yes(int b)
{
    return b ? "yes" : "no";
}

/* Waits (at most about 2 s) for SIGIO number `n`. */
static void wait_for(int n)
{
    sigset_t none;
    sigemptyset(&none);
    alarm(2);
    while (sigios < n) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGIO);
        sigprocmask(SIG_BLOCK, &block, &old);
        if (sigios < n && sigsuspend(&none) < 0 && errno == EINTR && sigios < n) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            break; /* the alarm */
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    alarm(0);
}

static void pipes(void)
{
    int p[2];
    char buf[256];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(1);
    }
    /* The flag alone, without an owner: kept, and nothing is sent. */
    fcntl(p[0], F_SETFL, O_ASYNC);
    printf("F_GETFL shows O_ASYNC: %s\n", yes(fcntl(p[0], F_GETFL) & O_ASYNC));
    write(p[1], "a", 1);
    printf("no owner, sigios: %d\n", sigios);
    read(p[0], buf, sizeof buf);
    fcntl(p[0], F_SETOWN, getpid());
    printf("set with data already there: %d\n", sigios);
    write(p[1], "b", 1);
    printf("after a write: %s\n", yes(sigios >= 1));
    int before = sigios;
    write(p[1], "c", 1);
    printf("another write, another: %s\n", yes(sigios > before));
    read(p[0], buf, sizeof buf);
    /* Off: no more. */
    fcntl(p[0], F_SETFL, 0);
    printf("F_GETFL after clearing: %s\n", yes(fcntl(p[0], F_GETFL) & O_ASYNC));
    before = sigios;
    write(p[1], "d", 1);
    printf("cleared, a write: %s\n", yes(sigios > before));
    read(p[0], buf, sizeof buf);

    /* The write end: a full pipe drained becomes writable. */
    fcntl(p[1], F_SETFL, O_NONBLOCK | O_ASYNC);
    fcntl(p[1], F_SETOWN, getpid());
    int n = 0;
    while (write(p[1], buf, sizeof buf) > 0)
        n++;
    before = sigios;
    static char big[1 << 16];
    read(p[0], big, sizeof big);
    printf("a full pipe read: writer told: %s\n", yes(sigios > before));
    close(p[0]);
    close(p[1]);
}

static void setsig(void)
{
    int p[2];
    char buf[16];
    pipe(p);
    fcntl(p[0], F_SETOWN, getpid());
    fcntl(p[0], F_SETSIG, SIGRTMIN);
    int on = 1;
    ioctl(p[0], FIOASYNC, &on);
    write(p[1], "x", 1);
    printf("F_SETSIG: %d signal(s), code %d, fd is the read end %s, band has POLLIN %s\n",
           (int)rts, (int)rt_code, yes(rt_fd == p[0]), yes(rt_band & POLLIN));
    read(p[0], buf, sizeof buf);
    /* The peer hangs up. */
    rts = 0;
    close(p[1]);
    printf("the writer closed: signal %s, code %d\n", yes(rts > 0),
           rts ? (int)rt_code : -1);
    close(p[0]);
}

static void socketpairs(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        exit(1);
    }
    int on = 1;
    printf("FIOASYNC: %d\n", ioctl(sv[0], FIOASYNC, &on));
    fcntl(sv[0], F_SETOWN, getpid());
    printf("F_GETFL shows O_ASYNC: %s\n", yes(fcntl(sv[0], F_GETFL) & O_ASYNC));
    int before = sigios;
    pid_t child = fork();
    if (child == 0) {
        usleep(100 * 1000);
        write(sv[1], "from the child", 14);
        _exit(0);
    }
    wait_for(before + 1);
    printf("the child's write: %s\n", yes(sigios > before));
    char buf[64];
    ssize_t got = read(sv[0], buf, sizeof buf);
    printf("read %zd\n", got);
    waitpid(child, NULL, 0);
    on = 0;
    ioctl(sv[0], FIOASYNC, &on);
    printf("F_GETFL after FIOASYNC 0: %s\n", yes(fcntl(sv[0], F_GETFL) & O_ASYNC));
    close(sv[0]);
    close(sv[1]);
}

static void title(int argc, char **argv)
{
    char *start = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]); /* the last NUL */
    size_t area = (size_t)(end - start) + 1;
    char buf[8192];
    /* A shorter title, the rest NULs: the whole area reads back. */
    memset(start, 0, area);
    strcpy(start, "sigio: short");
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    int rest_nul = 1;
    for (ssize_t i = (ssize_t)strlen(buf); i < n; i++)
        rest_nul &= buf[i] == 0;
    printf("short title: '%s', length is the area's %s, rest NUL %s\n", buf,
           yes((size_t)n == area), yes(rest_nul));
    /* A longer one, over the end of the arguments into the environment
     * (which the program moved away first, as setproctitle does). */
    char title[300];
    memset(title, 'x', sizeof title - 1);
    title[sizeof title - 1] = 0;
    memcpy(title, "sigio: long ", 12);
    size_t room = area;
    extern char **environ;
    if (environ[0] == end + 1) {
        char *last = end;
        for (char **e = environ; *e; e++)
            last = *e + strlen(*e);
        room = (size_t)(last - start) + 1;
    }
    if (room > sizeof title) {
        memcpy(start, title, sizeof title);
        fd = open("/proc/self/cmdline", O_RDONLY);
        n = read(fd, buf, sizeof buf);
        close(fd);
        printf("long title: %zd bytes, same %s, ends in its NUL %s\n", n,
               yes(n == (ssize_t)sizeof title && memcmp(buf, title, sizeof title) == 0),
               yes(n > 0 && buf[n - 1] == 0));
    } else {
        printf("long title: no room\n");
    }
}

/* The owner and O_ASYNC given to a socket before its connect stay
 * (Lego's connect made the connection a new open file without them). */
static void set_before_connect(void)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(s, F_SETOWN, getpid());
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_ASYNC);
    printf("connect after F_SETOWN and O_ASYNC: %d\n", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("kept O_ASYNC %s, its owner %s\n", yes(fcntl(s, F_GETFL) & O_ASYNC),
           yes(fcntl(s, F_GETOWN) == getpid()));
    int c = accept(l, NULL, NULL);
    int before = sigios;
    write(c, "x", 1);
    wait_for(before + 1);
    printf("the peer's write: %s\n", yes(sigios > before));
    close(c);
    close(s);
    close(l);
}

int main(int argc, char **argv)
{
    /* Run again with a known environment, so that the title has the
     * same room on every system. */
    if (!getenv("SIGIO_AGAIN")) {
        static char pad[401];
        memset(pad, 'p', 400);
        memcpy(pad, "PAD=", 4);
        char *envp[] = {"SIGIO_AGAIN=1", pad, NULL};
        char *args[] = {argv[0], "one", "two", NULL};
        execve("/proc/self/exe", args, envp);
        perror("execve");
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGIO, on_sigio);
    signal(SIGALRM, on_alarm);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    pipes();
    setsig();
    socketpairs();
    set_before_connect();
    title(argc, argv);
    return 0;
}
