/* Time as programs read it: clock_gettime, gettimeofday and time (on
 * Lego from the vDSO, in user mode) agree with the system call and never
 * go backwards; clocks the vDSO does not serve still work; a sleep lasts
 * as long as the clocks say; a sleep a signal ends tells what was left
 * of it, written in the sleeper's memory (LTP's nanosleep02); time spent
 * in system calls is system time (times, getrusage, a child's in wait4),
 * and the CPU clock counts it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void on_int(int s) { (void)s; }

static long long tv_ns(struct timeval t) { return t.tv_sec * 1000000000LL + t.tv_usec * 1000LL; }

/* System calls that copy (32 KiB through a pipe and back), and nothing
 * else, for `ms` of wall time. */
static void calls_for(int ms) {
    static char buf[32768];
    int p[2];
    pipe(p);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 10; i++) {
            write(p[1], buf, sizeof buf);
            read(p[0], buf, sizeof buf);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while (ns(b) - ns(a) < ms * 1000000LL);
    close(p[0]);
    close(p[1]);
}

static void system_time(void) {
    struct timespec cpu0, cpu1;
    struct rusage u;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    calls_for(300);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    getrusage(RUSAGE_SELF, &u);
    long hz = sysconf(_SC_CLK_TCK);
    struct tms t;
    times(&t);
    long long user = tv_ns(u.ru_utime), sys = tv_ns(u.ru_stime);
    printf("300 ms of system calls: system time over 100 ms %s, in times %s, "
           "the CPU clock counts both %s\n",
           sys > 100000000 ? "yes" : "no", t.tms_stime * 1000 / hz > 100 ? "yes" : "no",
           ns(cpu1) - ns(cpu0) > 200000000 && ns(cpu1) >= user + sys - 20000000 ? "yes" : "no");
    pid_t child = fork();
    if (child == 0) {
        calls_for(300);
        _exit(0);
    }
    int status;
    wait4(child, &status, 0, &u);
    getrusage(RUSAGE_CHILDREN, &u);
    times(&t);
    printf("a child's: in wait4 %s, getrusage %s, times %s\n",
           tv_ns(u.ru_stime) > 100000000 ? "over 100 ms" : "less",
           tv_ns(u.ru_stime) > 100000000 ? "over 100 ms" : "less",
           t.tms_cstime * 1000 / hz > 100 ? "over 100 ms" : "less");
}

static int ordered(clockid_t clock) {
    for (int i = 0; i < 2000; i++) {
        struct timespec a, b, c;
        clock_gettime(clock, &a);
        syscall(SYS_clock_gettime, clock, &b);
        clock_gettime(clock, &c);
        if (ns(a) > ns(b) || ns(b) > ns(c) || a.tv_nsec >= 1000000000 || a.tv_nsec < 0)
            return 0;
    }
    return 1;
}

int main(void) {
    printf("monotonic agrees with the system call: %s\n", ordered(CLOCK_MONOTONIC) ? "yes" : "no");
    printf("realtime agrees with the system call: %s\n", ordered(CLOCK_REALTIME) ? "yes" : "no");
    printf("boottime agrees with the system call: %s\n", ordered(CLOCK_BOOTTIME) ? "yes" : "no");
    struct timespec rt, cpu;
    struct timeval tv;
    clock_gettime(CLOCK_REALTIME, &rt);
    gettimeofday(&tv, NULL);
    time_t t = time(NULL);
    long long us = tv.tv_sec * 1000000LL + tv.tv_usec;
    printf("gettimeofday agrees: %s\n", us >= ns(rt) / 1000 && us - ns(rt) / 1000 < 1000000 ? "yes" : "no");
    /* glibc's time() reads the coarse clock, which may still be in the
     * second before (by up to a tick) when the fine one has moved on. */
    printf("time agrees: %s\n", t >= rt.tv_sec - 1 && t - rt.tv_sec <= 1 ? "yes" : "no");
    printf("after 2020: %s\n", t > 1577836800 ? "yes" : "no");
    printf("process CPU clock: %s\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0 ? "yes" : "no");
    struct timespec a, b, nap = {0, 50 * 1000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long slept = ns(b) - ns(a);
    printf("a 50 ms sleep: %s\n", slept >= 50000000 && slept < 2000000000 ? "yes" : "no");

    /* CPU clocks by id (Python's time.pthread_getcpuclockid), and what
     * may not be set. */
    clockid_t c;
    int r = clock_getcpuclockid(getpid(), &c);
    printf("clock_getcpuclockid: %s, reads %s\n", r ? strerror(r) : "ok",
           clock_gettime(c, &cpu) == 0 ? "yes" : strerror(errno));
    r = pthread_getcpuclockid(pthread_self(), &c);
    printf("pthread_getcpuclockid: %s, reads %s\n", r ? strerror(r) : "ok",
           clock_gettime(c, &cpu) == 0 ? "yes" : strerror(errno));
    printf("another process's: %s\n", strerror(clock_getcpuclockid(999999, &c)));
    printf("a CPU clock of no one: %s\n",
           clock_gettime((~999999 << 3) | 2, &cpu) == 0 ? "reads" : strerror(errno));
    printf("a CPU clock of kind 3: %s\n",
           clock_gettime((~0 << 3) | 3, &cpu) == 0 ? "reads" : strerror(errno));
    printf("getres of clock 99: %s\n", clock_getres(99, &cpu) == 0 ? "ok" : strerror(errno));
    printf("set the monotonic clock: %s\n",
           clock_settime(CLOCK_MONOTONIC, &a) == 0 ? "ok" : strerror(errno));

    /* A signal from another process ends a 5 s sleep after 0.3 s: the
     * time left (about 4.7 s) is written to the sleeper's rem, not to the
     * same address in the signaller (as Lego did once). */
    signal(SIGINT, on_int);
    struct timespec left = {77, 77};
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct timespec five = {5, 0};
        int r = nanosleep(&five, &left);
        int e = errno;
        printf("interrupted sleep: %s, %s left\n", r == 0 ? "0" : strerror(e),
               left.tv_sec == 4 ? "4.x s" : left.tv_sec == 77 ? "nothing said" : "wrong time");
        fflush(stdout);
        _exit(0);
    }
    wait_asleep(child);
    usleep(100000);
    kill(child, SIGINT);
    waitpid(child, NULL, 0);
    printf("the signaller's memory untouched: %s\n", left.tv_sec == 77 && left.tv_nsec == 77 ? "yes" : "no");
    printf("clock_nanosleep on a thread CPU clock: %s\n",
           strerror(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &nap, NULL) == 0 ? 0 : errno));
    system_time();
    return 0;
}
