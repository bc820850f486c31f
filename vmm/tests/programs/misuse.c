/* Calls made wrong, and the errors Linux gives for them, in Linux's
 * order where two could apply (each found by LTP's syscall tests on
 * Lego): execve with no arguments at all, clone3's flag rules, a pipe
 * size past 2^31, epoll of what cannot be polled, wait4 of INT_MIN, a
 * shared futex on memory that is not there, negative requeue counts,
 * mq_notify's request before its descriptor, readahead of a directory,
 * setpgid of a child that ran execve, mmap of a closed descriptor,
 * gettimeofday's time zone, a memfd name too long, recvmmsg's timeout,
 * the timer slack prctl keeps, a running program opened for writing
 * and a program open for writing run (ETXTBSY), and /dev/urandom's
 * ioctls. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* <linux/random.h>'s, which musl's headers lack. */
#define RNDGETENTCNT 0x80045200
#define RNDADDTOENTCNT 0x40045201

#include "check.h"

/* (Linux's values: musl has no <linux/futex.h>.) */
#define FUTEX_WAKE_SHARED 1
#define FUTEX_WAKE_PRIVATE_OP (1 | 128)
#define FUTEX_CMP_REQUEUE_PRIVATE_OP (4 | 128)

struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static long clone3_with(uint64_t flags)
{
    struct clone_args_v0 a = { .flags = flags, .exit_signal = SIGCHLD };
    long r = syscall(SYS_clone3, &a, sizeof a);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, 0, 0);
    return r;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 0 && argv[0] && argv[0][0] == 0) {
        /* Run by execve with no arguments: Linux gives one, "". */
        printf("  run with none: argc %d, argv[0] \"%s\"\n", argc, argv[0]);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "sleep")) {
        pause();
        return 0;
    }

    pid_t c = fork();
    if (c == 0) {
        char *none[] = { NULL };
        execve("/proc/self/exe", none, none);
        _exit(99);
    }
    waitpid(c, 0, 0);

    SHOW("clone3 CLONE_SIGHAND without CLONE_VM", clone3_with(CLONE_SIGHAND));
    SHOW("clone3 CLONE_FS with CLONE_NEWNS", clone3_with(CLONE_FS | CLONE_NEWNS));
    SHOW("clone3 CLONE_THREAD without CLONE_SIGHAND", clone3_with(CLONE_THREAD | CLONE_VM));

    int p[2];
    pipe(p);
    SHOW("F_SETPIPE_SZ of 2^31 + 1", fcntl(p[1], F_SETPIPE_SZ, (1U << 31) + 1));

    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    int path = open("/", O_PATH);
    int null = open("/dev/null", O_RDONLY);
    SHOW("epoll_ctl of an O_PATH descriptor", epoll_ctl(ep, EPOLL_CTL_ADD, path, &ev));
    SHOW("epoll_ctl of /dev/null", epoll_ctl(ep, EPOLL_CTL_ADD, null, &ev));

    SHOW("wait4 of INT_MIN", wait4(INT_MIN, 0, 0, 0));

    char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    SHOW("FUTEX_WAKE (shared) on unmapped memory", syscall(SYS_futex, gone, FUTEX_WAKE_SHARED, 1, 0, 0, 0));
    SHOW("FUTEX_WAKE_PRIVATE there", syscall(SYS_futex, gone, FUTEX_WAKE_PRIVATE_OP, 1, 0, 0, 0));
    int word = 0;
    SHOW("FUTEX_CMP_REQUEUE of -1 waiters",
         syscall(SYS_futex, &word, FUTEX_CMP_REQUEUE_PRIVATE_OP, -1, 1, &word, 0));

    struct sigevent bad = { .sigev_notify = -1 };
    SHOW("mq_notify of a bad kind on a bad descriptor", syscall(SYS_mq_notify, 1000, &bad));
    bad = (struct sigevent){ .sigev_notify = SIGEV_SIGNAL, .sigev_signo = 65 };
    SHOW("mq_notify of signal 65 on a bad descriptor", syscall(SYS_mq_notify, 1000, &bad));

    char dir[] = "/tmp/misuse-XXXXXX";
    mkdtemp(dir);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("readahead of a directory in /tmp", readahead(d, 0, 4096));
    close(d);
    rmdir(dir);

    int ready[2];
    pipe(ready);
    pid_t k = fork();
    if (k == 0) {
        close(ready[0]);
        fcntl(ready[1], F_SETFD, FD_CLOEXEC);
        execl("/proc/self/exe", "misuse", "sleep", (char *)0);
        _exit(99);
    }
    close(ready[1]);
    char b;
    read(ready[0], &b, 1); /* EOF: it ran execve */
    SHOW("setpgid of a child that ran execve", setpgid(k, k));
    kill(k, SIGKILL);
    waitpid(k, 0, 0);

    int f = open("/proc/self/exe", O_RDONLY);
    close(f);
    SHOW("mmap of length 0 of a closed descriptor", (long)mmap(NULL, 0, PROT_READ, MAP_SHARED, f, 0));

    struct timeval tv;
    SHOW("gettimeofday with a bad time zone pointer", syscall(SYS_gettimeofday, &tv, (void *)1));
    char longname[300];
    memset(longname, 'm', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    SHOW("memfd_create of a 299-byte name", syscall(SYS_memfd_create, longname, 0));
    int sp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sp);
    struct mmsghdr mm = { 0 };
    struct timespec back = { -1, 0 };
    SHOW("recvmmsg with a negative timeout", syscall(SYS_recvmmsg, sp[0], &mm, 1, 0, &back));
    SHOW("PR_SET_TIMERSLACK 70000", prctl(PR_SET_TIMERSLACK, 70000, 0, 0, 0));
    SHOW("PR_GET_TIMERSLACK", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    pid_t sl = fork();
    if (sl == 0) {
        prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0);
        /* Back to its default: the parent's value at the fork. */
        printf("  a child's after a reset to its default: %d\n", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
        _exit(0);
    }
    waitpid(sl, 0, 0);

    /* A copy of this program, running: not to be opened for writing. */
    char prog[64];
    snprintf(prog, sizeof prog, "/tmp/misuse-prog-%d", getpid());
    int from = open("/proc/self/exe", O_RDONLY), to = open(prog, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char chunk[65536];
    long got;
    while ((got = read(from, chunk, sizeof chunk)) > 0)
        write(to, chunk, got);
    close(from);
    /* Still open for writing here: execve of it is refused. */
    pid_t busy = fork();
    if (busy == 0) {
        execl(prog, "misuse", "sleep", (char *)0);
        printf("execve of a program open for writing: %s\n", strerror(errno));
        _exit(0);
    }
    waitpid(busy, 0, 0);
    close(to);
    int started[2];
    pipe(started);
    pid_t running = fork();
    if (running == 0) {
        fcntl(started[1], F_SETFD, FD_CLOEXEC);
        execl(prog, "misuse", "sleep", (char *)0);
        _exit(99);
    }
    close(started[1]);
    read(started[0], &b, 1);
    SHOW("open for writing of a running program", open(prog, O_WRONLY));
    SHOW("unlink of it", unlink(prog));
    int fresh = open(prog, O_CREAT | O_WRONLY, 0755);
    printf("a new file in its place: %s\n", fresh >= 0 ? "made" : strerror(errno));
    close(fresh);
    unlink(prog);
    kill(running, SIGKILL);
    waitpid(running, 0, 0);

    /* random(4)'s entropy count (ENOTTY before); feeding the pool is
     * root's. */
    int rnd = open("/dev/urandom", O_RDONLY), count = -1;
    SHOW("RNDGETENTCNT", ioctl(rnd, RNDGETENTCNT, &count));
    printf("  the pool holds %d bits\n", count);
    pid_t feeder = fork();
    if (feeder == 0) {
        setresuid(1000, 1000, 1000);
        SHOW("RNDADDTOENTCNT as a user", ioctl(rnd, RNDADDTOENTCNT, &count));
        _exit(0);
    }
    waitpid(feeder, 0, 0);
    close(rnd);
    return 0;
}
