/* System V IPC objects' owners and modes, as Linux checks them: a
 * process that gave up root gets at a message queue, a semaphore set and
 * a shared memory segment only as their modes let its ids (owner, group,
 * others; the creator counts as an owner), may change or remove only
 * what it owns or made, and sees the owner and creator ids IPC_STAT
 * reports. (Every object was root's and nothing was checked: any user
 * read any other's shared memory.) Run as root, on the host and on
 * Lego. Objects are private or keyed by the pid, and removed at the end. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef MSG_COPY
#define MSG_COPY 040000 /* musl does not name it */
#endif

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

struct msg {
    long type;
    char text[16];
};

static int msq, sem, shm, keyed;
static key_t key;

/* 0 if a get found the object `want`, else its result. */
static long same(long got, long want)
{
    return got == want ? 0 : got;
}

/* Attaches the segment with `flags` and says what it reads (-1 with errno
 * if refused). */
static long attach(int flags)
{
    char *a = shmat(shm, NULL, flags);
    if (a == (void *)-1)
        return -1;
    printf("  it reads: %s\n", a);
    shmdt(a);
    return 0;
}

static void show_perm(const char *what, struct ipc_perm *p)
{
    printf("%s: uid %u gid %u cuid %u cgid %u mode %o\n", what, (unsigned)p->uid,
           (unsigned)p->gid, (unsigned)p->cuid, (unsigned)p->cgid, (unsigned)p->mode & 0777);
}

/* Becomes uid/gid (no supplementary groups but `group`, if not 0). */
static void become(uid_t uid, gid_t gid, gid_t group)
{
    if (group ? setgroups(1, &group) : setgroups(0, NULL))
        printf("setgroups: %s\n", strerror(errno));
    if (setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
        printf("dropping root: %s\n", strerror(errno));
}

/* What a process with these ids may do to the three objects. */
static void tries(const char *who, uid_t uid, gid_t gid, gid_t group)
{
    printf("%s:\n", who);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        become(uid, gid, group);
        struct msg m = { 1, "hello" };
        SHOW("  msgget for read", same(msgget(key, 0400), keyed));
        SHOW("  msgget asking nothing", same(msgget(key, 0), keyed));
        SHOW("  msgsnd", msgsnd(msq, &m, 6, IPC_NOWAIT));
        SHOW("  msgrcv", msgrcv(msq, &m, sizeof m.text, 0, IPC_NOWAIT));
        struct msqid_ds mds;
        SHOW("  msgctl IPC_STAT", msgctl(msq, IPC_STAT, &mds));
        SHOW("  semop wait for zero", semop(sem, &(struct sembuf){ 0, 0, IPC_NOWAIT }, 1));
        SHOW("  semop add", semop(sem, &(struct sembuf){ 0, 1, IPC_NOWAIT }, 1));
        SHOW("  semctl GETVAL", semctl(sem, 0, GETVAL));
        SHOW("  semctl SETVAL", semctl(sem, 0, SETVAL, (union semun){ .val = 3 }));
        SHOW("  semctl SETVAL out of range", semctl(sem, 0, SETVAL, (union semun){ .val = -1 }));
        SHOW("  shmat", attach(0));
        SHOW("  shmat read-only", attach(SHM_RDONLY));
        struct shmid_ds sds;
        SHOW("  shmctl IPC_STAT", shmctl(shm, IPC_STAT, &sds));
        SHOW("  shmctl SHM_LOCK", shmctl(shm, SHM_LOCK, NULL));
        /* Itself as the owner, no bits for anyone. */
        memset(&mds, 0, sizeof mds);
        mds.msg_perm.uid = uid, mds.msg_perm.gid = gid, mds.msg_qbytes = 16384;
        SHOW("  msgctl IPC_SET", msgctl(msq, IPC_SET, &mds));
        SHOW("  semctl IPC_RMID", semctl(sem, 0, IPC_RMID));
        SHOW("  shmctl IPC_RMID", shmctl(shm, IPC_RMID, NULL));
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

/* Object `id`'s line of /proc/sysvipc/`file`, the columns that do not
 * name processes or times (`keep`: their numbers, from 0). */
static void proc_line(const char *file, int id, const int *keep, int n)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", file);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: %s\n", path, strerror(errno));
        return;
    }
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char *col[20];
        int cols = 0;
        for (char *t = strtok(line, " \n"); t && cols < 20; t = strtok(NULL, " \n"))
            col[cols++] = t;
        if (cols < 2 || !isdigit((unsigned char)col[1][0]) || atoi(col[1]) != id)
            continue;
        found = 1;
        printf("%s:", path);
        for (int i = 0; i < n; i++)
            printf(" %s", keep[i] < cols ? col[keep[i]] : "?");
        printf("\n");
    }
    if (!found)
        printf("%s: no line for %d\n", path, id);
    fclose(f);
}

static void show_proc(void)
{
    static const int msg_cols[] = { 2, 3, 4, 7, 8, 9, 10 };
    static const int sem_cols[] = { 2, 3, 4, 5, 6, 7 };
    static const int shm_cols[] = { 2, 3, 6, 7, 8, 9, 10, 14, 15 };
    proc_line("msg", msq, msg_cols, 7);
    proc_line("sem", sem, sem_cols, 6);
    proc_line("shm", shm, shm_cols, 9);
}

static void set_owner(uid_t uid, gid_t gid, int mode)
{
    struct msqid_ds m;
    struct semid_ds s;
    struct shmid_ds h;
    msgctl(msq, IPC_STAT, &m);
    m.msg_perm.uid = uid, m.msg_perm.gid = gid, m.msg_perm.mode = mode;
    SHOW("msgctl IPC_SET", msgctl(msq, IPC_SET, &m));
    semctl(sem, 0, IPC_STAT, (union semun){ .buf = &s });
    s.sem_perm.uid = uid, s.sem_perm.gid = gid, s.sem_perm.mode = mode;
    SHOW("semctl IPC_SET", semctl(sem, 0, IPC_SET, (union semun){ .buf = &s }));
    shmctl(shm, IPC_STAT, &h);
    h.shm_perm.uid = uid, h.shm_perm.gid = gid, h.shm_perm.mode = mode;
    SHOW("shmctl IPC_SET", shmctl(shm, IPC_SET, &h));
}

static void show_all(void)
{
    struct msqid_ds m;
    struct semid_ds s;
    struct shmid_ds h;
    if (msgctl(msq, IPC_STAT, &m) == 0)
        show_perm("queue", &m.msg_perm);
    if (semctl(sem, 0, IPC_STAT, (union semun){ .buf = &s }) == 0)
        show_perm("semaphores", &s.sem_perm);
    if (shmctl(shm, IPC_STAT, &h) == 0)
        show_perm("segment", &h.shm_perm);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The same memlock limit on the host and on Lego (SHM_LOCK asks). */
    struct rlimit lock = { 65536, 65536 };
    setrlimit(RLIMIT_MEMLOCK, &lock);
    key = 0x4c470000 | (getpid() & 0xffff);
    msq = keyed = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    sem = semget(IPC_PRIVATE, 1, 0600);
    shm = shmget(IPC_PRIVATE, 4096, 0600);
    if (msq < 0 || sem < 0 || shm < 0) {
        printf("cannot make the objects: %s\n", strerror(errno));
        return 1;
    }
    char *text = shmat(shm, NULL, 0);
    strcpy(text, "root's words");
    show_all();

    /* MSG_COPY copies the message at a place in the queue and leaves it
     * (with IPC_NOWAIT only). */
    struct msg one = { 7, "first" }, two = { 8, "second" }, got;
    msgsnd(msq, &one, 6, 0);
    msgsnd(msq, &two, 7, 0);
    show_proc();
    SHOW("MSG_COPY of place 1", msgrcv(msq, &got, sizeof got.text, 1, MSG_COPY | IPC_NOWAIT));
    printf("it is type %ld: %s\n", got.type, got.text);
    SHOW("MSG_COPY without IPC_NOWAIT", msgrcv(msq, &got, sizeof got.text, 0, MSG_COPY));
    SHOW("MSG_COPY of place 5", msgrcv(msq, &got, sizeof got.text, 5, MSG_COPY | IPC_NOWAIT));
    SHOW("MSG_COPY into 3 bytes", msgrcv(msq, &got, 3, 0, MSG_COPY | IPC_NOWAIT));
    SHOW("the first is still there", msgrcv(msq, &got, sizeof got.text, 0, IPC_NOWAIT));
    SHOW("and the second", msgrcv(msq, &got, sizeof got.text, 0, IPC_NOWAIT));
    shmdt(text);

    /* 0600, root's: another user gets nothing, asks nothing of it. */
    tries("user 1000 against root's 0600", 1000, 1000, 0);

    /* Others may read. */
    set_owner(0, 0, 0604);
    tries("user 1000 against 0604", 1000, 1000, 0);

    /* Group 500 may read and write; a member by its gid, and by a
     * supplementary group. */
    set_owner(0, 500, 0660);
    show_all();
    show_proc();
    tries("group 500 by gid against 0660", 1000, 500, 0);
    tries("group 500 as a supplementary group", 1000, 1000, 500);

    /* Given to user 1000 with no bits for anyone: the owner's bits are
     * none, so even it may not read, but it may change and remove. */
    set_owner(1000, 1000, 0000);
    show_all();
    tries("owner 1000 against 0000", 1000, 1000, 0);
    show_all();

    /* IPC_SET with an invalid owner. */
    struct msqid_ds m;
    if (msgctl(msq, IPC_STAT, &m) == 0) {
        m.msg_perm.uid = (uid_t)-1;
        SHOW("msgctl IPC_SET uid -1", msgctl(msq, IPC_SET, &m));
    }

    /* An object a user makes is its own: root sees its ids, and a third
     * user may not remove it; its maker may. */
    int link[2];
    pipe(link);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        become(2000, 2000, 0);
        int q = msgget(IPC_PRIVATE, 0640);
        struct msqid_ds d;
        SHOW("user 2000 makes a queue", q >= 0 ? 0 : -1);
        SHOW("its IPC_STAT", msgctl(q, IPC_STAT, &d));
        show_perm("its queue", &d.msg_perm);
        d.msg_qbytes = 1 << 20;
        SHOW("raising msg_qbytes past MSGMNB", msgctl(q, IPC_SET, &d));
        struct rlimit none = { 0, 0 };
        setrlimit(RLIMIT_MEMLOCK, &none);
        int s = shmget(IPC_PRIVATE, 4096, 0600);
        SHOW("SHM_LOCK with RLIMIT_MEMLOCK 0", shmctl(s, SHM_LOCK, NULL));
        SHOW("SHM_UNLOCK", shmctl(s, SHM_UNLOCK, NULL));
        shmctl(s, IPC_RMID, NULL);
        write(link[1], &q, sizeof q);
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    int q = -1;
    read(link[0], &q, sizeof q);
    struct msqid_ds d;
    if (msgctl(q, IPC_STAT, &d) == 0)
        show_perm("root sees it", &d.msg_perm);
    static const uid_t removers[] = { 3000, 2000 };
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        if ((p = fork()) == 0) {
            become(removers[i], removers[i], 0);
            printf("user %u removes it: ", (unsigned)removers[i]);
            SHOW("", msgctl(q, IPC_RMID, NULL));
            fflush(stdout);
            _exit(0);
        }
        waitpid(p, NULL, 0);
    }

    /* SHM_LOCK shows as SHM_LOCKED (root). */
    int locked = shmget(IPC_PRIVATE, 4096, 0600);
    SHOW("root's SHM_LOCK", shmctl(locked, SHM_LOCK, NULL));
    struct shmid_ds h;
    if (shmctl(locked, IPC_STAT, &h) == 0)
        printf("locked: %s\n", h.shm_perm.mode & SHM_LOCKED ? "yes" : "no");
    SHOW("root's SHM_UNLOCK", shmctl(locked, SHM_UNLOCK, NULL));
    if (shmctl(locked, IPC_STAT, &h) == 0)
        printf("locked: %s\n", h.shm_perm.mode & SHM_LOCKED ? "yes" : "no");
    shmctl(locked, IPC_RMID, NULL);

    msgctl(msq, IPC_RMID, NULL);
    semctl(sem, 0, IPC_RMID);
    shmctl(shm, IPC_RMID, NULL);
    return 0;
}
