/* Advisory locks as programs take them on the file given: fcntl record
 * locks between a parent and its child (F_GETLK sees the other's lock,
 * F_SETLK fails with EAGAIN, F_SETLKW waits until the holder lets go),
 * a close releasing the process's locks, OFD locks and flock; F_GETLK's
 * order among one owner's ranges, and F_SETLKW's EDEADLK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

/* A call's result as text, errno named: "0" or "-1 EAGAIN". */
static const char *res(int r) {
    static char buf[4][64];
    static int next;
    char *b = buf[next++ % 4];
    if (r == 0)
        return "0";
    snprintf(b, 64, "%d %s", r, strerror(errno));
    return b;
}

static const char *lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock f = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return res(fcntl(fd, cmd, &f));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    int fd = open(argv[1], O_CREAT | O_RDWR | O_TRUNC, 0644);
    printf("open: %s\n", fd >= 0 ? "yes" : strerror(errno));
    printf("write lock 0-100: %s\n", lk(fd, F_SETLK, F_WRLCK, 0, 100));
    int ready[2], go[2];
    pipe(ready);
    pipe(go);
    pid_t child = fork();
    if (child == 0) {
        int c = open(argv[1], O_RDWR);
        struct flock f = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
        fcntl(c, F_GETLK, &f);
        printf("child sees: type %s start %ld len %ld pid is parent %s\n",
               f.l_type == F_WRLCK ? "write" : "other", (long)f.l_start, (long)f.l_len,
               f.l_pid == getppid() ? "yes" : "no");
        printf("child try: %s\n", lk(c, F_SETLK, F_RDLCK, 50, 10));
        printf("child past it: %s\n", lk(c, F_SETLK, F_WRLCK, 100, 10));
        write(ready[1], "r", 1);
        printf("child waited and got it: %s\n", lk(c, F_SETLKW, F_WRLCK, 0, 10));
        _exit(0);
    }
    char b;
    read(ready[0], &b, 1);
    usleep(100000);
    printf("parent unlocks\n");
    lk(fd, F_SETLK, F_UNLCK, 0, 100);
    int st;
    waitpid(child, &st, 0);
    printf("child exited %d\n", WEXITSTATUS(st));

    /* A close of any descriptor of the file drops the process's locks. */
    lk(fd, F_SETLK, F_WRLCK, 0, 0);
    int other = open(argv[1], O_RDONLY);
    close(other);
    if (fork() == 0) {
        int c = open(argv[1], O_RDWR);
        printf("after the parent's close, child locks: %s\n", lk(c, F_SETLK, F_WRLCK, 0, 0));
        _exit(0);
    }
    wait(&st);

    /* OFD locks belong to the open file: two opens conflict in one process. */
    int a = open(argv[1], O_RDWR), c = open(argv[1], O_RDWR);
    printf("ofd a: %s\n", lk(a, F_OFD_SETLK, F_WRLCK, 0, 10));
    printf("ofd c: %s\n", lk(c, F_OFD_SETLK, F_WRLCK, 5, 10));
    close(a);
    printf("ofd c after a closed: %s\n", lk(c, F_OFD_SETLK, F_WRLCK, 5, 10));

    /* flock: shared twice, exclusive refused, then free. */
    int f1 = open(argv[1], O_RDONLY), f2 = open(argv[1], O_RDONLY);
    printf("flock sh: %s\n", res(flock(f1, LOCK_SH)));
    printf("flock sh again: %s\n", res(flock(f2, LOCK_SH | LOCK_NB)));
    printf("flock ex: %s\n", res(flock(f2, LOCK_EX | LOCK_NB)));
    flock(f1, LOCK_UN);
    printf("flock ex after un: %s\n", res(flock(f2, LOCK_EX | LOCK_NB)));
    int w = open(argv[1], O_WRONLY);
    printf("read lock on a write-only fd: %s\n", lk(w, F_SETLK, F_RDLCK, 0, 1));

    /* F_GETLK names an owner's lowest range first, whatever the order the
     * ranges were taken in (LTP's fcntl11). */
    close(c);
    int g = open(argv[1], O_RDWR);
    lk(g, F_SETLK, F_WRLCK, 10, 5);
    lk(g, F_SETLK, F_RDLCK, 1, 5);
    if (fork() == 0) {
        int c = open(argv[1], O_RDWR);
        struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        fcntl(c, F_GETLK, &f);
        printf("first conflict: %s at %ld for %ld\n", f.l_type == F_RDLCK ? "read" : "write",
               (long)f.l_start, (long)f.l_len);
        _exit(0);
    }
    wait(&st);

    /* Two processes each waiting for the other's byte: one of them (the
     * second to wait) gets EDEADLK instead of waiting for ever. */
    lk(g, F_SETLK, F_UNLCK, 0, 0);
    lk(g, F_SETLK, F_WRLCK, 0, 1);
    int held[2];
    pipe(held);
    if (fork() == 0) {
        int c = open(argv[1], O_RDWR);
        lk(c, F_SETLK, F_WRLCK, 1, 1);
        write(held[1], "h", 1);
        struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        _exit(fcntl(c, F_SETLKW, &f) == 0 ? 0 : errno == EDEADLK ? 1 : 2);
    }
    read(held[0], &b, 1);
    usleep(100000);
    struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
    int mine = fcntl(g, F_SETLKW, &f) == 0 ? 0 : errno == EDEADLK ? 1 : 2;
    if (mine == 1)
        lk(g, F_SETLK, F_UNLCK, 0, 0);
    wait(&st);
    printf("waiting for each other: EDEADLK %d time(s), other errors %s\n",
           (mine == 1) + (WEXITSTATUS(st) == 1), mine == 2 || WEXITSTATUS(st) == 2 ? "yes" : "no");
    unlink(argv[1]);
    return 0;
}
