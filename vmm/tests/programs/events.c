/* epoll and eventfd as event loops use them: level- and edge-triggered
 * pipes, one-shot interests, hang-ups, a child writing, eventfd counters
 * and semaphores, timeouts that expire while other pipes stay busy, a
 * child's SIGCHLD interrupting a wait its exit also wakes, and the errors
 * Linux gives, and a ready descriptor added under a sleeping waiter; an
 * epoll instance watched by another (readable while it has events, in
 * poll too) and the loops and depths ELOOP refuses; EPOLLEXCLUSIVE's rules
 * and descriptors reused; a socket watched before its non-blocking connect
 * (as nginx's upstream connections) reports the connection. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t chld;
static void on_chld(int sig) { (void)sig; chld++; }

/* A child holds the last descriptors of a pipe (the parent closed its
 * own after the fork): its exit closes them, which wakes the parent's
 * epoll wait (finding nothing ready) just before SIGCHLD comes. The
 * signal must still end the wait with EINTR, as on Linux, which is how
 * event loops learn of children (Python's multiprocessing forkserver
 * waited forever). */
static void sigchld_ends_a_woken_wait(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    int p[2];
    pipe(p);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    int q[2];
    pipe(q);
    pid_t child = fork();
    if (child == 0) {
        usleep(100000);
        _exit(0);
    }
    close(q[0]);
    close(q[1]);
    struct epoll_event out;
    errno = 0;
    int r = epoll_wait(ep, &out, 1, 5000);
    printf("epoll_wait as a child ends: %d %s, handler ran %d\n", r, r < 0 ? strerror(errno) : "",
           (int)chld);
    waitpid(child, NULL, 0);
    close(ep);
    close(p[0]);
    close(p[1]);
    signal(SIGCHLD, SIG_DFL);
}

static long ms_since(struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int busy[2];
static volatile int stop;

/* Keeps an unrelated pipe busy: a waiter's timeout must still expire. */
static void *chatter(void *arg) {
    (void)arg;
    char c = 'x';
    while (!stop) {
        write(busy[1], &c, 1);
        read(busy[0], &c, 1);
        usleep(2000);
    }
    return NULL;
}

static int wait_n(int ep, int timeout) {
    struct epoll_event ev[8];
    return epoll_wait(ep, ev, 8, timeout);
}

/* A pipe's write end whose readers are gone holds an error: poll and
 * epoll say POLLERR, select counts it readable and writable. asyncio
 * watches a child's stdin pipe for reading to learn the child is gone. */
static void write_end_without_readers(void) {
    signal(SIGCHLD, SIG_DFL); /* no EINTR race with the wake */
    int p[2];
    pipe(p);
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        char c;
        read(p[0], &c, 1); /* until the parent says */
        _exit(0);
    }
    close(p[0]);
    write(p[1], "x", 1);
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_SET(p[1], &rd);
    /* Blocks until the child exits and its read end goes with it. */
    int r = select(p[1] + 1, &rd, NULL, NULL, NULL);
    printf("select on a write end whose reader exited: %d, readable %d\n", r, FD_ISSET(p[1], &rd) != 0);
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(p[1], &rd);
    FD_SET(p[1], &wr);
    struct timeval tv = {0, 0};
    r = select(p[1] + 1, &rd, &wr, NULL, &tv);
    printf("select again: %d, readable %d, writable %d\n", r, FD_ISSET(p[1], &rd) != 0, FD_ISSET(p[1], &wr) != 0);
    struct pollfd pfd = {.fd = p[1], .events = 0};
    r = poll(&pfd, 1, 0);
    printf("poll with no events asked: %d, revents %#x\n", r, pfd.revents);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 9}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev);
    r = epoll_wait(ep, &out, 1, 0);
    printf("epoll: %d, events %#x\n", r, r == 1 ? out.events : 0);
    int status;
    waitpid(child, &status, 0);
    close(ep);
    close(p[1]);
}

/* A descriptor that is ready when it is added (or modified) wakes a
 * thread already asleep in epoll_wait on the same instance, as Go's
 * netpoller sleeps while another thread adds a socket whose connect
 * failed at once (Lego woke nobody: Go's program hung). */
static int waiter_ep;
static void *waiter(void *arg) {
    struct epoll_event ev;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = epoll_wait(waiter_ep, &ev, 1, 5000);
    long ms = ms_since(&t0);
    printf("%s: %d %s\n", (const char *)arg, n, ms < 3000 ? "at once" : "at its timeout");
    return NULL;
}

static void ready_when_added_wakes_a_waiter(void) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    waiter_ep = epoll_create1(0);
    pthread_t t;
    pthread_create(&t, NULL, waiter, "woken by an add");
    usleep(100000);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(waiter_ep, EPOLL_CTL_ADD, p[0], &ev);
    pthread_join(t, NULL);
    ev.events = 0;
    epoll_ctl(waiter_ep, EPOLL_CTL_MOD, p[0], &ev);
    pthread_create(&t, NULL, waiter, "woken by a modify");
    usleep(100000);
    ev.events = EPOLLIN;
    epoll_ctl(waiter_ep, EPOLL_CTL_MOD, p[0], &ev);
    pthread_join(t, NULL);
    close(waiter_ep);
    close(p[0]);
    close(p[1]);
}

static void nested(void) {
    int inner = epoll_create1(0), outer = epoll_create1(0), p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &ev);
    ev.data.u64 = 8;
    printf("inner in outer: %d\n", epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev));
    struct epoll_event got[4];
    printf("outer, nothing yet: %d\n", epoll_wait(outer, got, 4, 0));
    struct pollfd pf = {.fd = inner, .events = POLLIN};
    printf("poll of inner, nothing yet: %d\n", poll(&pf, 1, 0));
    write(p[1], "x", 1);
    int n = epoll_wait(outer, got, 4, 100);
    printf("outer after a write: %d, data %llu, events %#x\n", n,
           n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL, n > 0 ? got[0].events : 0);
    n = poll(&pf, 1, 0);
    printf("poll of inner: %d revents %#x\n", n, pf.revents);
    n = epoll_wait(inner, got, 4, 0);
    printf("inner: %d, data %llu\n", n, n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
    /* Loops. */
    errno = 0;
    n = epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev);
    printf("outer in inner: %d errno %s\n", n, errno == ELOOP ? "ELOOP" : strerror(errno));
    errno = 0;
    n = epoll_ctl(inner, EPOLL_CTL_ADD, inner, &ev);
    printf("itself: %d errno %s\n", n, errno == EINVAL ? "EINVAL" : strerror(errno));
    int chain[7];
    chain[0] = outer;
    int depth_refused = -1;
    for (int i = 1; i < 7; i++) {
        chain[i] = epoll_create1(0);
        if (epoll_ctl(chain[i], EPOLL_CTL_ADD, chain[i - 1], &ev) != 0) {
            depth_refused = errno == ELOOP ? i : -2;
            break;
        }
    }
    printf("a chain is refused at level %d\n", depth_refused);
    close(p[0]);
    close(p[1]);
}

/* EPOLLEXCLUSIVE's rules, and a descriptor closed and opened again on
 * the same number: a new file, so a new interest (stress-ng's epoll
 * stressor met EEXIST here). */
static void show(const char *what, int r) {
    printf("%s: %d %s\n", what, r, r < 0 ? strerror(errno) : "");
}

static void exclusive_and_reused(void) {
    int ep = epoll_create1(0), other = epoll_create1(0), p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    show("an epoll instance, exclusively", epoll_ctl(ep, EPOLL_CTL_ADD, other, &ev));
    ev.events = EPOLLIN;
    printf("then normally: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, other, &ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
    show("exclusive one-shot", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLRDHUP;
    show("exclusive with RDHUP", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLEXCLUSIVE;
    printf("exclusive: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN;
    show("modified after", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    printf("deleted: %d\n", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], &ev));
    int reused = 0;
    for (int i = 0; i < 200; i++) {
        int q[2];
        pipe(q);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev) == 0)
            reused++;
        close(q[0]);
        close(q[1]);
    }
    printf("200 pipes on the same numbers added: %d\n", reused);
    close(p[0]);
    close(p[1]);
    close(other);
    close(ep);
}

/* nginx adds an upstream socket to its epoll instance (edge-triggered)
 * before its non-blocking connect and waits for EPOLLOUT: Lego's watch
 * stayed on the unconnected socket, and nginx's proxy hung. */
static void watched_before_connect(int edge) {
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    int ep = epoll_create1(0);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | (edge ? EPOLLET : 0),
                             .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    const char *how = edge ? "edge" : "level";
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 0);
    printf("%s, unconnected socket: %d events %#x\n", how, n, n > 0 ? out.events : 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("%s, connect: %s\n", how, r ? strerror(errno) : "done");
    n = epoll_wait(ep, &out, 1, 2000);
    printf("%s, connected: %d events %#x\n", how, n, n > 0 ? out.events : 0);
    int c = accept(l, NULL, NULL);
    write(c, "x", 1);
    n = epoll_wait(ep, &out, 1, 2000);
    printf("%s, its peer wrote: %d events %#x\n", how, n, n > 0 ? out.events : 0);
    close(c);
    close(s);
    close(l);
    close(ep);
}

int main(void) {
    int p[2];
    pipe(p);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234567890};
    printf("add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    printf("add again: %s\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) ? strerror(errno) : "ok");
    printf("nothing yet: %d\n", wait_n(ep, 0));
    write(p[1], "ab", 2);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 1000);
    printf("level: %d events %#x data %#llx\n", n, out[0].events, (unsigned long long)out[0].data.u64);
    printf("level again: %d\n", wait_n(ep, 0));

    ev.events = EPOLLIN | EPOLLET;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    printf("edge: %d\n", wait_n(ep, 0));
    printf("edge, nothing new: %d\n", wait_n(ep, 0));
    write(p[1], "c", 1);
    printf("edge, new data: %d\n", wait_n(ep, 0));
    char buf[16];
    read(p[0], buf, sizeof buf);

    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    write(p[1], "d", 1);
    int first = wait_n(ep, 0);
    printf("oneshot: %d then %d\n", first, wait_n(ep, 0));
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    printf("oneshot rearmed: %d\n", wait_n(ep, 0));
    read(p[0], buf, sizeof buf);

    /* A child writes later; the parent sleeps in epoll_wait. */
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    pid_t child = fork();
    if (child == 0) {
        usleep(50000);
        write(p[1], "child", 5);
        _exit(0);
    }
    n = epoll_wait(ep, out, 4, 5000);
    n = n == 1 ? (int)read(p[0], buf, sizeof buf) : -1;
    printf("from the child: %.*s\n", n > 0 ? n : 0, buf);
    waitpid(child, NULL, 0);
    close(p[1]);
    n = epoll_wait(ep, out, 4, 1000);
    printf("writer gone: %d, hangup %s\n", n, n == 1 && (out[0].events & EPOLLHUP) ? "yes" : "no");
    int deleted = epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    printf("delete: %d; delete again: %s\n", deleted,
           epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) ? strerror(errno) : "ok");
    int file = open("/proc/self/exe", O_RDONLY);
    ev.events = EPOLLIN;
    printf("a regular file: %s\n", epoll_ctl(ep, EPOLL_CTL_ADD, file, &ev) ? strerror(errno) : "ok");
    printf("bad maxevents: %s\n", epoll_wait(ep, out, 0, 0) < 0 ? strerror(errno) : "ok");

    /* eventfd: a counter, a semaphore, a nonblocking one that is empty. */
    int efd = eventfd(3, 0);
    uint64_t v = 4;
    write(efd, &v, 8);
    read(efd, &v, 8);
    printf("eventfd read: %llu\n", (unsigned long long)v);
    int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    uint64_t a = 0, b = 0, c = 0;
    read(sem, &a, 8);
    read(sem, &b, 8);
    int r = read(sem, &c, 8);
    printf("semaphore: %llu %llu, then %s\n", (unsigned long long)a, (unsigned long long)b,
           r < 0 ? strerror(errno) : "a value");
    printf("short read: %s\n", read(efd, buf, 4) < 0 ? strerror(errno) : "ok");
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u32 = 77;
    epoll_ctl(ep, EPOLL_CTL_ADD, sem, &ev);
    printf("empty eventfd: %d\n", wait_n(ep, 0));
    v = 1;
    write(sem, &v, 8);
    n = epoll_wait(ep, out, 4, 1000);
    printf("signalled eventfd: %d data %u\n", n, n == 1 ? out[0].data.u32 : 0);

    /* Timeouts expire on time while another pipe keeps changing. */
    pipe(busy);
    int quiet[2];
    pipe(quiet);
    pthread_t t;
    pthread_create(&t, NULL, chatter, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pollfd pfd = {.fd = quiet[0], .events = POLLIN};
    r = poll(&pfd, 1, 100);
    long ms = ms_since(&t0);
    printf("poll timed out: %d after %s\n", r, ms >= 100 && ms < 2000 ? "about 100 ms" : "the wrong time");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(quiet[0], &rd);
    struct timeval tv = {0, 100000};
    r = select(quiet[0] + 1, &rd, NULL, NULL, &tv);
    ms = ms_since(&t0);
    printf("select timed out: %d, set %s, after %s\n", r, FD_ISSET(quiet[0], &rd) ? "kept" : "cleared",
           ms >= 100 && ms < 2000 ? "about 100 ms" : "the wrong time");
    /* Linux leaves the time not waited in the timeout (glibc passes the
     * program's; musl a copy). */
    printf("select's timeout after it: %s\n", tv.tv_sec == 0 && tv.tv_usec == 0 ? "zero" : "as given");
    int ep2 = epoll_create(1);
    ev.events = EPOLLIN;
    epoll_ctl(ep2, EPOLL_CTL_ADD, quiet[0], &ev);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = wait_n(ep2, 100);
    ms = ms_since(&t0);
    printf("epoll timed out: %d after %s\n", r, ms >= 100 && ms < 2000 ? "about 100 ms" : "the wrong time");
    stop = 1;
    pthread_join(t, NULL);
    sigchld_ends_a_woken_wait();
    write_end_without_readers();
    ready_when_added_wakes_a_waiter();
    nested();
    exclusive_and_reused();
    watched_before_connect(1);
    watched_before_connect(0);
    /* Descriptors kept ready take turns when more are ready than a wait
     * takes (LTP's epoll_wait14): 7 pipes, 3 at a time, 7 waits, each
     * reported 3 times. */
    {
        int fair = epoll_create1(0), turns[7] = { 0 }, same = 1;
        for (int i = 0; i < 7; i++) {
            int fp[2];
            pipe(fp);
            write(fp[1], "x", 1);
            struct epoll_event fe = { .events = EPOLLIN, .data.u32 = i };
            epoll_ctl(fair, EPOLL_CTL_ADD, fp[0], &fe);
        }
        for (int w = 0; w < 7; w++) {
            struct epoll_event got[3];
            int n = epoll_wait(fair, got, 3, 0);
            for (int i = 0; i < n; i++)
                turns[got[i].data.u32]++;
        }
        for (int i = 0; i < 7; i++)
            same &= turns[i] == 3;
        printf("ready descriptors take turns: %s\n", same ? "yes" : "no");
    }
    return 0;
}
