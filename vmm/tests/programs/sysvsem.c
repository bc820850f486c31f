/* System V semaphores: a set shared by forked processes, a wait for a
 * value, SEM_UNDO at exit, GETNCNT, timeouts, IPC_NOWAIT, removal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

union semun { int val; struct semid_ds *buf; unsigned short *array; };

/* The call's result, and errno's name when it failed. */

static int op(int id, int num, int delta, int flg)
{
    struct sembuf b = { num, delta, flg };
    return semop(id, &b, 1);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    printf("semget: %s\n", id >= 0 ? "ok" : strerror(errno));
    unsigned short init[3] = { 0, 5, 0 };
    union semun arg = { .array = init };
    printf("SETALL: %d\n", semctl(id, 0, SETALL, arg));
    struct semid_ds ds;
    arg.buf = &ds;
    semctl(id, 0, IPC_STAT, arg);
    printf("nsems %lu mode %o\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777);

    /* Children wait for semaphore 0 to be raised; the parent counts them. */
    for (int i = 0; i < 3; i++) {
        if (fork() == 0) {
            if (op(id, 0, -1, 0))
                _exit(100);
            op(id, 2, 1, 0);
            _exit(0);
        }
    }
    while (semctl(id, 0, GETNCNT) < 3)
        usleep(1000);
    printf("GETNCNT: %d\n", semctl(id, 0, GETNCNT));
    op(id, 0, 3, 0);
    /* All three took one and raised semaphore 2. */
    struct sembuf all[1] = { { 2, -3, 0 } };
    printf("semop of 3 on semaphore 2: %d\n", semop(id, all, 1));
    int st, sum = 0;
    while (wait(&st) > 0)
        sum += WEXITSTATUS(st);
    printf("children exit statuses: %d\n", sum);

    /* SEM_UNDO: a child takes two and exits; they come back. */
    if (fork() == 0) {
        op(id, 1, -2, SEM_UNDO);
        _exit(semctl(id, 1, GETVAL));
    }
    wait(&st);
    printf("child saw %d, after its exit %d\n", WEXITSTATUS(st), semctl(id, 1, GETVAL));

    /* Several operations: all or none. */
    struct sembuf two[2] = { { 1, -1, 0 }, { 0, -1, IPC_NOWAIT } };
    SHOW("all-or-none", semop(id, two, 2));
    SHOW("semaphore 1 still", semctl(id, 1, GETVAL));
    SHOW("wait for zero with IPC_NOWAIT", op(id, 1, 0, IPC_NOWAIT));
    struct sembuf z_none[1] = { { 0, 0, 0 } };
    struct timespec t = { 0, 30 * 1000 * 1000 };
    struct sembuf z = { 1, 0, 0 };
    SHOW("semtimedop", semtimedop(id, &z, 1, &t));
    SHOW("bad semaphore", op(id, 7, 1, 0));
    SHOW("no operations", semop(id, z_none, 0));
    arg.val = 40000;
    SHOW("SETVAL too large", semctl(id, 1, SETVAL, arg));
    SHOW("GETVAL of a bad semaphore", semctl(id, 9, GETVAL));
    SHOW("semget without IPC_CREAT", semget(0x5eed, 1, 0));

    /* A waiter learns of the set's removal. */
    if (fork() == 0) {
        int r = op(id, 0, -1, 0);
        _exit(r == -1 && errno == EIDRM ? 0 : 1);
    }
    while (semctl(id, 0, GETNCNT) < 1)
        usleep(1000);
    printf("IPC_RMID: %d\n", semctl(id, 0, IPC_RMID));
    wait(&st);
    printf("the waiter saw EIDRM: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");
    SHOW("after removal", semctl(id, 0, GETVAL));
    return 0;
}
