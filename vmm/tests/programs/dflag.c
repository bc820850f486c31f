/* The direction flag a program sets is its own. Interrupts (the VMM's
 * tick, a kick from another vCPU) and signals land while one thread
 * computes with DF set and another makes system calls and copies: the
 * monitor must not run its own copies backwards (it did: the copy of the
 * interrupted thread's registers went over the heap, and the monitor
 * crashed at once), and a signal handler starts with DF clear, as Linux's
 * setup_rt_frame leaves it. Compared with the host. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int handler_saw_df = -1;
static volatile unsigned long handled;

static unsigned long flags(void) {
    unsigned long f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f));
    return f;
}

static void on_alarm(int sig) {
    (void)sig;
    if (flags() & 0x400)
        handler_saw_df = 1;
    else if (handler_saw_df < 0)
        handler_saw_df = 0;
    handled++;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Computes with DF set for about `ms` milliseconds, with no system call. */
static void spin_with_df(int ms) {
    unsigned long spins = (unsigned long)ms * 200000;
    __asm__ volatile("std" ::: "memory");
    for (volatile unsigned long i = 0; i < spins; i++) {
    }
    __asm__ volatile("cld" ::: "memory");
}

static void *spinner(void *arg) {
    double end = now() + *(double *)arg;
    while (now() < end)
        spin_with_df(15);
    return 0;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 3000}, {0, 3000}};
    setitimer(ITIMER_REAL, &it, 0);
    pthread_t t;
    pthread_create(&t, 0, spinner, &secs);
    char a[4096], b[4096];
    unsigned long calls = 0;
    double end = now() + secs;
    while (now() < end) {
        spin_with_df(2);
        memset(a, (int)calls, sizeof a);
        memcpy(b, a, sizeof b);
        if (memcmp(a, b, sizeof a) != 0) {
            printf("a copy came out wrong\n");
            return 1;
        }
        getppid();
        calls++;
    }
    pthread_join(t, 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    printf("signals handled: %s; DF in a handler: %s\n", handled > 0 ? "yes" : "no",
           handler_saw_df == 1   ? "set (wrong)"
           : handler_saw_df == 0 ? "clear"
                                 : "never ran");
    return handler_saw_df == 1;
}
