/* Threads with a mutex, a condition variable and thread-local storage;
 * and the process's state in /proc/self/stat, which is its first
 * thread's: sleeping in pthread_join while another thread reads it. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int turn;
static __thread long mine = 0;

static void *work(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        mine += id;
    }
    /* Take turns in order, handing over with the condition variable. */
    pthread_mutex_lock(&lock);
    while (turn != id) pthread_cond_wait(&cond, &lock);
    printf("thread %ld done, its own sum %ld\n", id, mine);
    turn++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return (void *)(mine * 2);
}

/* The state letter of /proc/self/stat, once it is 'S' or after 5 s. */
static void *watch(void *arg) {
    (void)arg;
    char state = '?';
    for (int i = 0; i < 5000 && state != 'S'; i++) {
        char buf[512] = {0};
        FILE *f = fopen("/proc/self/stat", "r");
        if (f) {
            fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
        }
        char *close = strrchr(buf, ')');
        state = close && close[1] ? close[2] : '?';
        if (state != 'S') nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    printf("the process while its first thread joins: %c\n", state);
    return NULL;
}

int main(void) {
    pthread_t w;
    pthread_create(&w, NULL, watch, NULL);
    pthread_join(w, NULL);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, (void *)i);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("counter=%ld total=%ld main's own=%ld\n", counter, total, mine);
    return counter == THREADS * ROUNDS ? 0 : 1;
}
