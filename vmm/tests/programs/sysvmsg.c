/* System V message queues: types selected as Linux selects them, a full
 * queue and an empty one waited on by forked processes, errors, removal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

struct msg {
    long type;
    char text[64];
};

static int put_msg(int q, long type, const char *text, int flags)
{
    struct msg m = { type };
    strcpy(m.text, text);
    return msgsnd(q, &m, strlen(text) + 1, flags);
}

static void take(int q, long type, int flags)
{
    struct msg m = { 0 };
    errno = 0;
    long n = msgrcv(q, &m, sizeof m.text, type, flags);
    if (n < 0)
        printf("msgrcv %ld: %s\n", type, strerror(errno));
    else
        printf("msgrcv %ld: type %ld, %ld bytes, \"%s\"\n", type, m.type, n, m.text);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("msgget: %s\n", q >= 0 ? "ok" : strerror(errno));
    put_msg(q, 3, "three", 0);
    put_msg(q, 1, "one", 0);
    put_msg(q, 2, "two", 0);
    put_msg(q, 1, "one again", 0);
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    printf("qnum %lu cbytes %lu mode %o\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.__msg_cbytes, ds.msg_perm.mode & 0777);
    take(q, 2, 0);
    take(q, -2, 0);
    take(q, 1, MSG_EXCEPT);
    take(q, 0, 0);
    take(q, 0, IPC_NOWAIT);
    SHOW("type 0", put_msg(q, 0, "x", 0));
    put_msg(q, 5, "a message too long for a small buffer", 0);
    struct msg small;
    SHOW("short buffer", msgrcv(q, &small, 4, 0, 0));
    SHOW("short buffer, MSG_NOERROR", msgrcv(q, &small, 4, 0, MSG_NOERROR));

    /* A child waits for a message; the parent sends it. */
    if (fork() == 0) {
        struct msg m;
        long n = msgrcv(q, &m, sizeof m.text, 9, 0);
        _exit(n == 6 && strcmp(m.text, "hello") == 0 ? 0 : 1);
    }
    usleep(20000);
    put_msg(q, 9, "hello", 0);
    int st;
    wait(&st);
    printf("the waiting child got it: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");

    /* A full queue: IPC_NOWAIT fails, a sender waits for room. */
    ds.msg_qbytes = 100;
    SHOW("IPC_SET", msgctl(q, IPC_SET, &ds));
    int sent = 0;
    while (put_msg(q, 1, "0123456789012345678", IPC_NOWAIT) == 0)
        sent++;
    printf("sent %d before it was full: %s\n", sent, strerror(errno));
    if (fork() == 0)
        _exit(put_msg(q, 2, "late", 0) == 0 ? 0 : 1);
    usleep(20000);
    take(q, 0, 0);
    wait(&st);
    printf("the waiting sender got in: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");
    take(q, 2, 0);

    /* A receiver learns of the queue's removal (removed once it waits). */
    pid_t receiver = fork();
    if (receiver == 0) {
        struct msg m;
        long n = msgrcv(q, &m, sizeof m.text, 42, 0);
        _exit(n == -1 && errno == EIDRM ? 0 : 1);
    }
    wait_asleep(receiver);
    SHOW("IPC_RMID", msgctl(q, IPC_RMID, 0));
    wait(&st);
    printf("the waiter saw EIDRM: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");
    SHOW("after removal", put_msg(q, 1, "x", 0));
    SHOW("msgget without IPC_CREAT", msgget(0x5eed, 0));
    return 0;
}
