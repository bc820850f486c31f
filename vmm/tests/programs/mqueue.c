/* POSIX message queues as programs use them: priorities, full and empty
 * queues with and without O_NONBLOCK, absolute timeouts, a receiver in
 * another process woken by a send, poll and epoll on a queue, attributes,
 * the status line a read gives, notification by signal and by thread
 * (SIGEV_THREAD, through the C library's netlink helper), unlink while
 * open, and the errors Linux gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char name[64];

static void show_attr(const char *what, mqd_t q) {
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("%s: flags %s maxmsg %ld msgsize %ld curmsgs %ld\n", what,
           a.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0", a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static volatile sig_atomic_t got_signo, got_code, got_value, got_pid_ok;
static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    got_signo = sig;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
    got_pid_ok = si->si_pid == getpid();
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int thread_told;
static void on_message(union sigval v) {
    pthread_mutex_lock(&lock);
    thread_told = v.sival_int;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    /* The program again, after an exec that closed the descriptor its
     * registration was made through (close-on-exec). */
    if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
        mqd_t q = mq_open(argv[2], O_RDONLY);
        struct sigevent none = {.sigev_notify = SIGEV_NONE};
        SHOW("notify after an exec closed the queue", mq_notify(q, &none));
        mq_notify(q, NULL);
        return 0;
    }
    snprintf(name, sizeof name, "/lego-test-mq-%d", (int)getpid());
    struct mq_attr attr = {.mq_maxmsg = 3, .mq_msgsize = 32};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    printf("open: %s\n", q == (mqd_t)-1 ? strerror(errno) : "ok");
    SHOW("open again with O_EXCL", mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr));
    show_attr("attributes", q);

    /* Priorities: the highest first, the oldest of a priority first. */
    SHOW("send low", mq_send(q, "low", 3, 1));
    SHOW("send high", mq_send(q, "high", 4, 9));
    SHOW("send low2", mq_send(q, "low2", 4, 1));
    show_attr("full", q);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    SHOW("timed send to a full queue", mq_timedsend(q, "x", 1, 0, &ts));
    struct timespec bad = {0, 2000000000L};
    SHOW("a bad timeout", mq_timedsend(q, "x", 1, 0, &bad));
    SHOW("too long", mq_send(q, "0123456789012345678901234567890123", 33, 0));
    SHOW("priority 32768", mq_send(q, "x", 1, 32768));
    char buf[64];
    unsigned prio;
    SHOW("a small buffer", mq_receive(q, buf, 16, &prio));
    for (int i = 0; i < 3; i++) {
        ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
        printf("receive: %.*s at %u\n", (int)(n > 0 ? n : 0), buf, prio);
    }

    /* Empty: O_NONBLOCK says EAGAIN; a timeout ETIMEDOUT. */
    struct mq_attr nb = {.mq_flags = O_NONBLOCK}, old;
    mq_setattr(q, &nb, &old);
    printf("old flags: %s\n", old.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0");
    SHOW("receive, non-blocking", mq_receive(q, buf, sizeof buf, NULL));
    struct mq_attr bl = {.mq_flags = 0};
    mq_setattr(q, &bl, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    SHOW("timed receive from an empty queue", mq_timedreceive(q, buf, sizeof buf, NULL, &ts));
    struct mq_attr worse = {.mq_flags = O_NONBLOCK | O_APPEND};
    SHOW("setattr with other flags", mq_setattr(q, &worse, NULL));

    /* Another process sends while this one waits in receive. */
    pid_t child = fork();
    if (child == 0) {
        mqd_t c = mq_open(name, O_WRONLY);
        wait_asleep(getppid());
        mq_send(c, "from the child", 14, 3);
        _exit(0);
    }
    ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
    printf("woken by the child: %.*s at %u\n", (int)(n > 0 ? n : 0), buf, prio);
    waitpid(child, NULL, 0);

    /* poll and epoll: readable with a message, writable with room. */
    struct pollfd p = {.fd = q, .events = POLLIN | POLLOUT};
    poll(&p, 1, 0);
    printf("poll, empty: %s%s\n", p.revents & POLLIN ? "in " : "", p.revents & POLLOUT ? "out" : "");
    mq_send(q, "a", 1, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5};
    epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev);
    struct epoll_event out;
    int k = epoll_wait(ep, &out, 1, 1000);
    printf("epoll: %d data %u\n", k, k == 1 ? out.data.u32 : 0);
    close(ep);

    /* The status line. */
    n = read(q, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("read: %s", buf);
    mq_receive(q, buf, sizeof buf, NULL);

    /* Notification by signal: once, when the empty queue gets one. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent se = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    se.sigev_value.sival_int = 42;
    SHOW("notify", mq_notify(q, &se));
    SHOW("notify again", mq_notify(q, &se));
    /* A fresh description reads the status line from its start. */
    mqd_t q2 = mq_open(name, O_RDONLY);
    n = read(q2, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char *pid_at = strstr(buf, "NOTIFY_PID:");
    int owner = pid_at ? atoi(pid_at + 11) : -1;
    if (pid_at)
        *pid_at = 0;
    printf("read while registered: %s(NOTIFY_PID %s)\n", buf, owner == getpid() ? "ours" : "another");
    mq_close(q2);
    /* Closing any descriptor of the queue gave the registration up. */
    SHOW("notify after closing another descriptor", mq_notify(q, &se));
    mq_send(q, "n", 1, 0);
    printf("signal: %d code %s value %d sender %s\n", (int)got_signo,
           got_code == SI_MESGQ ? "SI_MESGQ" : "other", (int)got_value, got_pid_ok ? "us" : "another");
    mq_receive(q, buf, sizeof buf, NULL);
    SHOW("notify after it fired", mq_notify(q, &se));
    SHOW("give it up", mq_notify(q, NULL));

    /* Notification by a thread the C library starts. */
    struct sigevent st = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_message};
    st.sigev_value.sival_int = 7;
    SHOW("notify by thread", mq_notify(q, &st));
    mq_send(q, "t", 1, 0);
    pthread_mutex_lock(&lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (!thread_told && pthread_cond_timedwait(&cond, &lock, &until) == 0) {
    }
    pthread_mutex_unlock(&lock);
    printf("thread told: %d\n", thread_told);

    /* A process that registered through a close-on-exec descriptor and
     * then execs: the exec's close gave the registration up. */
    fflush(stdout);
    pid_t execer = fork();
    if (execer == 0) {
        mqd_t c = mq_open(name, O_RDONLY | O_CLOEXEC);
        struct sigevent none = {.sigev_notify = SIGEV_NONE};
        mq_notify(c, &none);
        execl("/proc/self/exe", "mqueue", "after-exec", name, (char *)NULL);
        _exit(127);
    }
    waitpid(execer, NULL, 0);

    /* Unlinked while open: still usable, the name gone. */
    SHOW("unlink", mq_unlink(name));
    SHOW("unlink again", mq_unlink(name));
    SHOW("open the name", mq_open(name, O_RDONLY));
    n = mq_receive(q, buf, sizeof buf, NULL);
    printf("still readable: %zd\n", n);
    mq_close(q);

    /* Errors. */
    SHOW("a bad descriptor", mq_send(0, "x", 1, 0));
    struct mq_attr big = {.mq_maxmsg = 0, .mq_msgsize = 8};
    SHOW("maxmsg 0", mq_open(name, O_CREAT | O_RDWR, 0600, &big));
    mqd_t w = mq_open(name, O_CREAT | O_WRONLY, 0600, NULL);
    show_attr("defaults", w);
    SHOW("receive on a write-only one", mq_receive(w, buf, 8192, NULL));
    mq_close(w);
    mq_unlink(name);
    return 0;
}
