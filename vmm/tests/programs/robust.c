/* Robust and priority-inheritance mutexes: a lock whose owner ended is
 * EOWNERDEAD to the next locker (threads, and processes sharing memory),
 * PI locks exclude and are handed over under contention; another
 * process's robust list is for who may trace it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t m;
static long counter;

static void init(pthread_mutex_t *mx, int robust, int pi, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (robust)
        printf("  setrobust: %s\n", strerror(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)));
    if (pi)
        printf("  setprotocol: %s\n", strerror(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT)));
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    printf("  init: %s\n", strerror(pthread_mutex_init(mx, &a)));
    pthread_mutexattr_destroy(&a);
}

static void *die_holding(void *arg)
{
    pthread_mutex_lock(arg);
    return 0; /* ends without unlocking */
}

static void *add(void *arg)
{
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&m);
        counter++;
        pthread_mutex_unlock(&m);
    }
    return arg;
}

static void *try_held(void *arg)
{
    printf("  trylock of a held lock: %s\n", strerror(pthread_mutex_trylock(&m)));
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 20 * 1000 * 1000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    printf("  timedlock of a held lock: %s\n", strerror(pthread_mutex_timedlock(&m, &t)));
    return arg;
}

static void owner_dies(const char *what, int pi)
{
    printf("%s:\n", what);
    init(&m, 1, pi, 0);
    pthread_t t;
    pthread_create(&t, 0, die_holding, &m);
    pthread_join(t, 0);
    printf("  lock after its owner ended: %s\n", strerror(pthread_mutex_lock(&m)));
    printf("  consistent: %s\n", strerror(pthread_mutex_consistent(&m)));
    printf("  unlock: %s\n", strerror(pthread_mutex_unlock(&m)));
    printf("  lock again: %s\n", strerror(pthread_mutex_lock(&m)));
    pthread_mutex_unlock(&m);
    pthread_mutex_destroy(&m);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    owner_dies("robust", 0);
    owner_dies("robust and PI", 1);

    printf("PI under contention:\n");
    init(&m, 0, 1, 0);
    pthread_t ts[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&ts[i], 0, add, 0);
    for (int i = 0; i < 4; i++)
        pthread_join(ts[i], 0);
    printf("  counter %ld\n", counter);
    pthread_mutex_lock(&m);
    pthread_t t;
    pthread_create(&t, 0, try_held, 0);
    pthread_join(t, 0);
    printf("  relock by its owner: %s\n", strerror(pthread_mutex_trylock(&m)));
    pthread_mutex_unlock(&m);

    printf("robust, shared by processes:\n");
    pthread_mutex_t *sm = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init(sm, 1, 0, 1);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(sm);
        _exit(7);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("  child exited %d holding it\n", WEXITSTATUS(status));
    printf("  lock: %s\n", strerror(pthread_mutex_lock(sm)));
    printf("  consistent: %s\n", strerror(pthread_mutex_consistent(sm)));
    printf("  unlock: %s\n", strerror(pthread_mutex_unlock(sm)));
    printf("  lock again: %s\n", strerror(pthread_mutex_lock(sm)));
    pthread_mutex_unlock(sm);
    /* get_robust_list of others: root may, another user may not (nor
     * of process 1, root's). */
    void *head;
    size_t len;
    pid_t parent = getpid();
    pid_t kid = fork();
    if (kid == 0) {
        printf("the child asks its parent's, as root: %s\n",
               syscall(SYS_get_robust_list, parent, &head, &len) == 0 ? "ok" : strerror(errno));
        setresuid(65534, 65534, 65534);
        printf("as another user: %s; of the parent outside: %s; its own: %s\n",
               syscall(SYS_get_robust_list, parent, &head, &len) == 0 ? "ok" : strerror(errno),
               syscall(SYS_get_robust_list, 1, &head, &len) == 0 ? "ok" : strerror(errno),
               syscall(SYS_get_robust_list, 0, &head, &len) == 0 && len == 24 ? "ok" : strerror(errno));
        _exit(0);
    }
    waitpid(kid, 0, 0);
    return 0;
}
