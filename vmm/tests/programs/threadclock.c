/* A thread's CPU clock counts that thread's time only: a sleeping
 * thread's stays still while another spins, pthread_getcpuclockid reads
 * the spinner's, getrusage(RUSAGE_THREAD) the caller's, and a timer on a
 * thread's clock fires as that thread runs (Go's profiler gives each of
 * its threads such a timer). Compared with the host: only what must hold
 * is printed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile int stop;
static volatile int fired;
static volatile pid_t spinner_tid;

static double secs(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_prof(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    if (si->si_code == SI_TIMER && syscall(SYS_gettid) == spinner_tid)
        fired++;
}

static void *spin(void *arg)
{
    (void)arg;
    spinner_tid = (pid_t)syscall(SYS_gettid);
    /* A timer on this thread's own clock, telling this thread. */
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev.sigev_notify_thread_id = spinner_tid;
    timer_t t;
    struct itimerspec every = {{0, 10000000}, {0, 10000000}};
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &t) == 0)
        timer_settime(t, 0, &every, NULL);
    while (!stop)
        ;
    return NULL;
}

/* User and system time of a getrusage, in seconds. */
static double used(const struct rusage *r)
{
    return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 + r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_prof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);

    double mine0 = secs(CLOCK_THREAD_CPUTIME_ID), all0 = secs(CLOCK_PROCESS_CPUTIME_ID);
    /* From here on: the program's start (its execve above all, whose
     * round trips to a memory component a loaded host stretches) is not
     * what is compared. */
    struct rusage self0, thread0;
    getrusage(RUSAGE_SELF, &self0);
    getrusage(RUSAGE_THREAD, &thread0);
    pthread_t th;
    pthread_create(&th, NULL, spin, NULL);
    while (!spinner_tid)
        usleep(1000);
    clockid_t its;
    pthread_getcpuclockid(th, &its);
    double its0 = secs(its);
    /* Sleep in small steps: the spinner runs meanwhile. */
    for (int i = 0; i < 40 && secs(its) - its0 < 0.3; i++)
        usleep(25000);
    double mine = secs(CLOCK_THREAD_CPUTIME_ID) - mine0, all = secs(CLOCK_PROCESS_CPUTIME_ID) - all0;
    double spun = secs(its) - its0;
    struct rusage self, thread;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_THREAD, &thread);
    stop = 1;
    pthread_join(th, NULL);
    double self_s = used(&self) - used(&self0), thread_s = used(&thread) - used(&thread0);
    printf("the spinner's clock ran 0.2 s or more: %s\n", spun >= 0.2 ? "yes" : "no");
    printf("the process's clock ran as much: %s\n", all >= spun * 0.9 ? "yes" : "no");
    /* A quarter: the sleeper's own calls take a few ms, but on a host
     * loaded by other tests a vCPU taken off its core in the middle of one
     * is charged to it (a tenth once failed in CI); counting the spinner's
     * time would make it the whole. */
    printf("the sleeper's own clock stayed under a quarter of that: %s\n", mine < spun / 4 ? "yes" : "no");
    printf("RUSAGE_THREAD of the sleeper under a quarter of RUSAGE_SELF: %s\n",
           thread_s < self_s / 4 ? "yes" : "no");
    if (mine >= spun / 4 || thread_s >= self_s / 4)
        fprintf(stderr, "sleeper %.4f s (rusage %.4f s), spinner %.4f s, process %.4f s (rusage %.4f s)\n",
                mine, thread_s, spun, all, self_s);
    printf("the spinner's 10 ms timer fired on it 5 times or more: %s\n", fired >= 5 ? "yes" : "no");
    printf("and not far more than its CPU time allows: %s\n", fired <= spun * 100 + 5 ? "yes" : "no");
    return 0;
}
