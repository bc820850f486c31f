/* sigwait, sigwaitinfo and sigtimedwait: signals taken from the pending
 * set without a handler, lowest number first, from another thread and
 * another process; timeouts; a handled signal outside the set; kill and
 * rt_sigqueueinfo by a thread's id (not the process's) reach its
 * process, as on Linux (LTP's rt_sigqueueinfo01). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static void on_usr2(int sig)
{
    (void)sig;
}

static void *kick(void *arg)
{
    usleep(20000);
    kill(getpid(), SIGUSR1);
    return arg;
}

static volatile pid_t worker_tid;
static volatile int worker_done;
static void *worker(void *arg)
{
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    while (!worker_done)
        usleep(1000);
    return 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, 0);

    struct timespec zero = { 0, 0 };
    siginfo_t si;
    errno = 0;
    int r = sigtimedwait(&set, &si, &zero);
    printf("nothing pending: %d %s\n", r, strerror(errno));

    /* Pending before the call: the lowest number first. */
    kill(getpid(), SIGTERM);
    kill(getpid(), SIGUSR1);
    r = sigtimedwait(&set, &si, &zero);
    printf("first: %s, code %s, from %s\n", strsignal(r),
           si.si_code == SI_USER ? "SI_USER" : "other", si.si_pid == getpid() ? "self" : "?");
    r = sigwaitinfo(&set, &si);
    printf("second: %s\n", strsignal(r));

    /* Real-time signals queue, each one taken. */
    union sigval v = { .sival_int = 7 };
    sigqueue(getpid(), SIGRTMIN, v);
    sigqueue(getpid(), SIGRTMIN, v);
    v.sival_int = 8;
    sigqueue(getpid(), SIGRTMIN, v);
    int n = 0, values = 0, queued = 0;
    while (sigtimedwait(&set, &si, &zero) == SIGRTMIN) {
        n++;
        values = values * 10 + si.si_value.sival_int;
        queued += si.si_code == SI_QUEUE && si.si_pid == getpid();
    }
    printf("SIGRTMIN taken %d times, values %d, %d from sigqueue\n", n, values, queued);

    /* From another thread while waiting. */
    pthread_t t;
    pthread_create(&t, 0, kick, 0);
    int sig = 0;
    r = sigwait(&set, &sig);
    printf("sigwait: %d, %s\n", r, strsignal(sig));
    pthread_join(t, 0);

    /* From a child process. */
    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        kill(getppid(), SIGTERM);
        _exit(0);
    }
    r = sigwaitinfo(&set, &si);
    printf("from the child: %s, sender is the child: %s\n", strsignal(r),
           si.si_pid == child ? "yes" : "no");
    waitpid(child, 0, 0);

    /* A timeout, then a handled signal outside the set. */
    struct timespec t30 = { 0, 30 * 1000 * 1000 };
    errno = 0;
    r = sigtimedwait(&set, &si, &t30);
    printf("timeout: %d %s\n", r, strerror(errno));
    signal(SIGUSR2, on_usr2);
    if (fork() == 0) {
        /* Once the parent waits in sigtimedwait. */
        wait_asleep(getppid());
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    struct timespec t5 = { 5, 0 };
    errno = 0;
    r = sigtimedwait(&set, &si, &t5);
    printf("a handled signal outside the set: %d %s\n", r, strerror(errno));
    wait(0);
    sigset_t bad;
    sigemptyset(&bad);
    errno = 0;
    r = sigtimedwait(&bad, &si, (struct timespec[]){ { 0, -1 } });
    printf("a bad timeout: %d %s\n", r, strerror(errno));
    {
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        sigprocmask(SIG_BLOCK, &usr2, 0);
        pthread_t w;
        pthread_create(&w, 0, worker, 0);
        while (!worker_tid)
            usleep(1000);
        int k = kill(worker_tid, SIGUSR2);
        siginfo_t si;
        struct timespec second = { 1, 0 };
        int got = sigtimedwait(&usr2, &si, &second);
        printf("kill of a thread's id: %d, taken %s\n", k, got == SIGUSR2 ? "yes" : "no");
        siginfo_t q = { .si_signo = SIGUSR2, .si_code = SI_QUEUE };
        q.si_value.sival_int = 7;
        q.si_pid = getpid();
        long r = syscall(SYS_rt_sigqueueinfo, worker_tid, SIGUSR2, &q);
        got = sigtimedwait(&usr2, &si, &second);
        printf("rt_sigqueueinfo to a thread's id: %ld, taken %s, value %d\n", r, got == SIGUSR2 ? "yes" : "no",
               si.si_value.sival_int);
        worker_done = 1;
        pthread_join(w, 0);
    }
    return 0;
}
