/* Threads with a mutex, a condition variable and thread-local storage. */
#include <pthread.h>
#include <stdio.h>

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

int main(void) {
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
