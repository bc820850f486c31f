/* POSIX timers (timer_create and its calls): a signal with its siginfo,
 * overruns while the signal waits, SIGEV_NONE, absolute times on the
 * monotonic and wall clocks (one long past), a CPU-time timer, a timer aimed at one
 * thread, the C library's SIGEV_THREAD, the default sigevent, a signalfd
 * record, fork, delete, and the errors Linux gives. Timer ids are not
 * printed: Linux spends one on some failed creates. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"

static volatile sig_atomic_t got_code, got_value, got_overrun, got_timerid, fired;

static void on_timer(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
    got_overrun = si->si_overrun;
    got_timerid = si->si_timerid;
    fired++;
}

static void handle(int sig)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, 0);
}

static long ms_since(struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void arm(timer_t t, int flags, long ms, long period_ms)
{
    struct itimerspec its = {{period_ms / 1000, period_ms % 1000 * 1000000},
                             {ms / 1000, ms % 1000 * 1000000}};
    timer_settime(t, flags, &its, 0);
}

static void wait_fired(void)
{
    for (int i = 0; i < 2000 && !fired; i++)
        usleep(1000);
}

static void one_signal(void)
{
    printf("SIGEV_SIGNAL, one shot:\n");
    handle(SIGUSR1);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 42;
    timer_t t;
    SHOW("  create", timer_create(CLOCK_MONOTONIC, &ev, &t));
    fired = 0;
    arm(t, 0, 20, 0);
    wait_fired();
    printf("  fired %d, SI_TIMER %d, value %d, overrun %d, its id %d\n", fired,
           got_code == SI_TIMER, got_value, got_overrun, got_timerid == (int)(intptr_t)t);
    struct itimerspec left;
    timer_gettime(t, &left);
    printf("  after: %ld.%09ld every %ld.%09ld\n", (long)left.it_value.tv_sec, left.it_value.tv_nsec,
           (long)left.it_interval.tv_sec, left.it_interval.tv_nsec);
    SHOW("  delete", timer_delete(t));
    SHOW("  delete again", syscall(SYS_timer_delete, t));
    SHOW("  gettime of a deleted one", timer_gettime(t, &left));
}

static void overruns(void)
{
    printf("overruns while the signal is blocked:\n");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, 0);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    timer_t t;
    timer_create(CLOCK_MONOTONIC, &ev, &t);
    arm(t, 0, 5, 5);
    usleep(100000);
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    int over = timer_getoverrun(t);
    printf("  sigwaitinfo %d, one signal for many expirations: %s, getoverrun agrees: %s\n",
           sig == SIGUSR2, si.si_overrun >= 5 ? "yes" : "no", over == si.si_overrun ? "yes" : "no");
    arm(t, 0, 0, 0);
    SHOW("  getoverrun after settime", timer_getoverrun(t));
    timer_delete(t);
    struct timespec zero = {0, 0};
    SHOW("  nothing more queued once deleted", sigtimedwait(&set, &si, &zero));
    /* A wall-clock time an hour back, every microsecond: 3.6e9 periods
     * already, more than an int holds (DELAYTIMER_MAX). */
    timer_create(CLOCK_REALTIME, &ev, &t);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec past = {{0, 1000}, {now.tv_sec - 3600, now.tv_nsec}};
    timer_settime(t, TIMER_ABSTIME, &past, 0);
    sig = sigwaitinfo(&set, &si);
    printf("  an hour-old start, every microsecond: overrun %s\n",
           si.si_overrun == 0x7fffffff ? "capped at INT_MAX" : "not capped");
    timer_delete(t);
    sigtimedwait(&set, &si, &zero);
    printf("two timers on one standard signal, due together:\n");
    timer_t two[2];
    for (int i = 0; i < 2; i++) {
        ev.sigev_value.sival_int = i + 1;
        timer_create(CLOCK_MONOTONIC, &ev, &two[i]);
    }
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += 20000000;
    if (at.tv_nsec >= 1000000000)
        at.tv_sec++, at.tv_nsec -= 1000000000;
    struct itimerspec its = {{0, 0}, at};
    for (int i = 0; i < 2; i++)
        timer_settime(two[i], TIMER_ABSTIME, &its, 0);
    usleep(60000);
    int values = 0;
    struct timespec wait1 = {1, 0};
    for (int i = 0; i < 2; i++)
        if (sigtimedwait(&set, &si, &wait1) == SIGUSR2 && si.si_code == SI_TIMER)
            values += si.si_value.sival_int;
    printf("  both taken: %s\n", values == 3 ? "yes" : "no");
    for (int i = 0; i < 2; i++)
        timer_delete(two[i]);
    sigprocmask(SIG_UNBLOCK, &set, 0);
}

static void settings(void)
{
    printf("SIGEV_NONE and settings:\n");
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_NONE;
    timer_t t;
    SHOW("  create", timer_create(CLOCK_REALTIME, &ev, &t));
    struct itimerspec its = {{2, 500000000}, {10, 0}}, old, now;
    SHOW("  settime", timer_settime(t, 0, &its, &old));
    printf("  old: %ld %ld\n", (long)old.it_value.tv_sec, (long)old.it_interval.tv_sec);
    timer_gettime(t, &now);
    printf("  left about 10 s: %s, every %ld.%09ld\n",
           now.it_value.tv_sec == 9 || (now.it_value.tv_sec == 10 && now.it_value.tv_nsec == 0) ? "yes" : "no",
           (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
    timer_delete(t);
    /* (Linux's gettime of a disarmed SIGEV_NONE timer shows the time it
     * had left: a signalling one shows the setting.) */
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_create(CLOCK_REALTIME, &ev, &t);
    timer_settime(t, 0, &its, 0);
    struct itimerspec off = {{1, 0}, {0, 0}};
    SHOW("  disarm", timer_settime(t, 0, &off, &old));
    printf("  old every %ld.%09ld\n", (long)old.it_interval.tv_sec, old.it_interval.tv_nsec);
    timer_gettime(t, &now);
    printf("  disarmed: %ld %ld %ld %ld\n", (long)now.it_value.tv_sec, now.it_value.tv_nsec,
           (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    SHOW("  a nanosecond count of 1e9", timer_settime(t, 0, &bad, 0));
    SHOW("  no setting", syscall(SYS_timer_settime, t, 0, NULL, NULL));
    SHOW("  getoverrun", timer_getoverrun(t));
    timer_delete(t);
}

static void absolute(void)
{
    printf("absolute times:\n");
    handle(SIGUSR1);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    clockid_t clocks[2] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
    for (int i = 0; i < 2; i++) {
        timer_t t;
        timer_create(clocks[i], &ev, &t);
        struct timespec t0, at;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        clock_gettime(clocks[i], &at);
        at.tv_nsec += 30000000;
        if (at.tv_nsec >= 1000000000) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000;
        }
        struct itimerspec its = {{0, 0}, at};
        fired = 0;
        timer_settime(t, TIMER_ABSTIME, &its, 0);
        wait_fired();
        long ms = ms_since(&t0);
        printf("  %s: fired %d, after 25 ms or more: %s\n", i ? "wall clock" : "monotonic", fired,
               ms >= 25 ? "yes" : "no");
        /* A moment ago (Lego's monotonic clock starts at its boot). */
        struct itimerspec past = {{0, 0}, {0, 0}};
        clock_gettime(clocks[i], &past.it_value);
        if (past.it_value.tv_nsec >= 1000)
            past.it_value.tv_nsec -= 1000;
        else
            past.it_value.tv_sec--, past.it_value.tv_nsec += 999999000;
        fired = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        timer_settime(t, TIMER_ABSTIME, &past, 0);
        wait_fired();
        printf("  a time past fires at once: %s\n", fired && ms_since(&t0) < 500 ? "yes" : "no");
        timer_delete(t);
    }
}

static void cpu_time(void)
{
    printf("CLOCK_PROCESS_CPUTIME_ID:\n");
    handle(SIGPROF);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGPROF;
    timer_t t;
    SHOW("  create", timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t));
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    fired = 0;
    arm(t, 0, 30, 0);
    volatile unsigned long spin = 0;
    while (!fired)
        spin++;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    long used = (c1.tv_sec - c0.tv_sec) * 1000 + (c1.tv_nsec - c0.tv_nsec) / 1000000;
    printf("  fired after 30 ms of CPU or more: %s\n", used >= 29 ? "yes" : "no");
    timer_delete(t);
}

/* sigev_notify_thread_id, spelt differently by glibc and musl (or not at
 * all): the kernel's union at offset 16 on x86-64. */
static void set_tid(struct sigevent *ev, pid_t tid)
{
    memcpy((char *)ev + 16, &tid, sizeof tid);
}

static sem_t ready;
static volatile pid_t target_tid;
static volatile int target_got;

static void *target(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2);
    target_tid = gettid();
    sem_post(&ready);
    siginfo_t si;
    if (sigwaitinfo(&set, &si) == SIGRTMIN + 2 && si.si_code == SI_TIMER)
        target_got = si.si_value.sival_int;
    return 0;
}

static void thread_id(void)
{
    printf("SIGEV_THREAD_ID:\n");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &set, 0);
    sem_init(&ready, 0, 0);
    pthread_t th;
    pthread_create(&th, 0, target, 0);
    sem_wait(&ready);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGRTMIN + 2;
    ev.sigev_value.sival_int = 77;
    set_tid(&ev, target_tid);
    timer_t t;
    SHOW("  create", timer_create(CLOCK_MONOTONIC, &ev, &t));
    arm(t, 0, 10, 0);
    pthread_join(th, 0);
    printf("  the thread took it: value %d\n", target_got);
    timer_delete(t);
    set_tid(&ev, target_tid); /* ended now */
    SHOW("  a thread that ended", timer_create(CLOCK_MONOTONIC, &ev, &t));
    set_tid(&ev, 1);
    SHOW("  another process's thread", timer_create(CLOCK_MONOTONIC, &ev, &t));
    pthread_sigmask(SIG_UNBLOCK, &set, 0);
}

static sem_t ran;
static volatile int thread_value;

static void in_a_thread(union sigval v)
{
    thread_value = v.sival_int;
    sem_post(&ran);
}

static void library_thread(void)
{
    printf("SIGEV_THREAD (the C library's):\n");
    sem_init(&ran, 0, 0);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = in_a_thread;
    ev.sigev_value.sival_int = 7;
    timer_t t;
    SHOW("  create", timer_create(CLOCK_MONOTONIC, &ev, &t));
    arm(t, 0, 10, 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    SHOW("  the function ran", sem_timedwait(&ran, &until));
    printf("  with value %d\n", thread_value);
    timer_delete(t);
}

static void default_event(void)
{
    /* The system call's (glibc's timer_create passes a sigevent of its
     * own when given none). */
    printf("no sigevent: SIGALRM with the id as value:\n");
    handle(SIGALRM);
    int id = -1;
    SHOW("  create", syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &id));
    fired = 0;
    struct itimerspec its = {{0, 0}, {0, 10000000}};
    syscall(SYS_timer_settime, id, 0, &its, NULL);
    wait_fired();
    printf("  fired %d, value is the id: %s\n", fired, got_value == id ? "yes" : "no");
    pid_t child = fork();
    if (child == 0) {
        SHOW("  a fork child has none", syscall(SYS_timer_gettime, id, &its));
        _exit(0);
    }
    waitpid(child, 0, 0);
    syscall(SYS_timer_delete, id);
}

static void with_signalfd(void)
{
    printf("a signalfd record:\n");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, 0);
    int fd = signalfd(-1, &set, 0);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN + 1;
    ev.sigev_value.sival_int = 99;
    timer_t t;
    timer_create(CLOCK_MONOTONIC, &ev, &t);
    arm(t, 0, 10, 0);
    struct signalfd_siginfo r;
    SHOW("  read", read(fd, &r, sizeof r));
    printf("  SI_TIMER %d, id %s, value %d, overrun %u\n", (int)r.ssi_code == SI_TIMER,
           (int)r.ssi_tid == (int)(intptr_t)t ? "matches" : "differs", r.ssi_int, r.ssi_overrun);
    timer_delete(t);
    close(fd);
    sigprocmask(SIG_UNBLOCK, &set, 0);
}

static void errors(void)
{
    printf("errors:\n");
    timer_t t;
    SHOW("  CLOCK_MONOTONIC_RAW", syscall(SYS_timer_create, CLOCK_MONOTONIC_RAW, NULL, &t));
    SHOW("  CLOCK_REALTIME_COARSE", syscall(SYS_timer_create, CLOCK_REALTIME_COARSE, NULL, &t));
    SHOW("  clock 10", syscall(SYS_timer_create, 10, NULL, &t));
    SHOW("  clock 12", syscall(SYS_timer_create, 12, NULL, &t));
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    SHOW("  signal 0", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &t));
    ev.sigev_signo = 65;
    SHOW("  signal 65", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &t));
    ev.sigev_signo = SIGUSR1;
    ev.sigev_notify = 3;
    SHOW("  notify 3", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &t));
    SHOW("  a bad sigevent pointer", syscall(SYS_timer_create, CLOCK_MONOTONIC, (void *)8, &t));
    SHOW("  settime of no timer", syscall(SYS_timer_settime, 12345, 0, NULL, NULL));
    SHOW("  getoverrun of no timer", syscall(SYS_timer_getoverrun, 12345));
    SHOW("  delete of no timer", syscall(SYS_timer_delete, 12345));
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    one_signal();
    overruns();
    settings();
    absolute();
    cpu_time();
    thread_id();
    library_thread();
    default_event();
    with_signalfd();
    errors();
    return 0;
}
