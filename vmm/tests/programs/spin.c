/* Threads that never make a system call: they must share a vCPU, get
 * signals while they compute, and end when the process exits. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int go, alarmed;
static volatile unsigned long counts[3];

static void *spin(void *arg) {
    long i = (long)arg;
    while (!go) {}
    for (;;) counts[i]++;
    return NULL;
}

static void on_alarm(int sig) { (void)sig; alarmed = 1; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, spin, (void *)i);
    /* The main thread spins too, until the alarm: every thread must get
     * time on the vCPUs while none of them ever blocks. */
    signal(SIGALRM, on_alarm);
    alarm(1);
    go = 1;
    while (!alarmed) {}
    int all = 1;
    for (int i = 0; i < 3; i++) all &= counts[i] > 0;
    printf("alarm while spinning: yes\n");
    printf("every spinning thread ran: %s\n", all ? "yes" : "no");
    /* exit_group with three threads still spinning. */
    exit(3);
}
