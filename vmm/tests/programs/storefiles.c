/* Files and directories as programs use them, under the directory given
 * as argv[1] (made here; it must not exist): created, written, pwritten,
 * appended, truncated, fsynced, renamed (replacing a target), listed,
 * stat'ed, linked symbolically and hard, chmod'ed, touched, mapped, read back and
 * removed, with the errors Linux gives for the usual mistakes and for `.`,
 * `..` and trailing slashes as last names. The output
 * names no inode, time or directory, so runs on different file systems
 * print the same. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "walks.h"

static const char *dir;

static const char *at(const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "yes" : "no"); }

static void fails(const char *what, long r, int expect) {
    int e = errno;
    if (r == -1 && e == expect)
        printf("%s: %s\n", what, strerror(expect));
    else
        printf("%s: did not fail as expected (%ld, %s)\n", what, r, strerror(e));
}

/* `n` bytes of `b`, NULs as '.'. */
static void show(const char *what, const char *b, long n) {
    printf("%s: %ld [", what, n);
    for (long i = 0; i < n; i++)
        putchar(b[i] ? b[i] : '.');
    printf("]\n");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        printf("opendir %s failed: %s\n", path, strerror(errno));
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char kind = e->d_type == DT_DIR ? 'd' : e->d_type == DT_LNK ? 'l' : e->d_type == DT_REG ? 'f'
                  : e->d_type == DT_FIFO ? 'p' : e->d_type == DT_SOCK ? 's' : '?';
        char *s = malloc(strlen(e->d_name) + 3);
        sprintf(s, "%c %s", kind, e->d_name);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    printf("listing:");
    for (int i = 0; i < n; i++) {
        printf(" [%s]", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static uint64_t sum(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: storefiles DIR\n");
        return 2;
    }
    dir = argv[1];
    struct stat st, st2;
    check("made the directory", mkdir(dir, 0755) == 0);
    fails("mkdir again", mkdir(dir, 0755), EEXIST);
    check("it is a directory", stat(dir, &st) == 0 && S_ISDIR(st.st_mode));

    int fd = open(at("a"), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0640);
    check("created", fd >= 0);
    fails("O_EXCL again", open(at("a"), O_CREAT | O_EXCL | O_RDWR, 0640), EEXIST);
    check("written", write(fd, "hello, world\n", 13) == 13);
    check("pwritten", pwrite(fd, "HELLO", 5, 0) == 5);
    check("offset kept by pwrite", lseek(fd, 0, SEEK_CUR) == 13);
    check("seek to the end", lseek(fd, 0, SEEK_END) == 13);
    check("written past the end", pwrite(fd, "!", 1, 20000) == 1);
    check("size after the hole", fstat(fd, &st) == 0 && st.st_size == 20001);
    check("mode as asked", (st.st_mode & 07777) == 0640 && S_ISREG(st.st_mode));
    check("one link", st.st_nlink == 1);
    char buf[64] = {0};
    check("pread", pread(fd, buf, 13, 0) == 13 && !memcmp(buf, "HELLO, world\n", 13));
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    check("SEEK_DATA and SEEK_HOLE", lseek(fd, 0, SEEK_DATA) == 0 && hole > 0 && hole <= 20001);
    fails("SEEK_DATA at the end", lseek(fd, 20001, SEEK_DATA), ENXIO);
    check("the hole reads as zeros", pread(fd, buf, 4, 100) == 4 && !memcmp(buf, "\0\0\0\0", 4));
    check("read at the end is 0", pread(fd, buf, 4, 20001) == 0);
    check("fsync", fsync(fd) == 0);
    check("fdatasync", fdatasync(fd) == 0);
    check("ftruncate down", ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5);
    check("ftruncate up", ftruncate(fd, 9) == 0 && pread(fd, buf, 9, 0) == 9 && !memcmp(buf, "HELLO\0\0\0\0", 9));
    close(fd);
    ino_t ino = st.st_ino;

    fd = open(at("a"), O_WRONLY | O_APPEND);
    check("append", write(fd, "xy", 2) == 2 && write(fd, "z", 1) == 1);
    close(fd);
    check("appended at the end", stat(at("a"), &st) == 0 && st.st_size == 12);
    fd = open(at("a"), O_RDONLY);
    check("read back", read(fd, buf, 64) == 12 && !memcmp(buf + 9, "xyz", 3));
    close(fd);

    /* rename: the same inode under the new name; replacing a target. */
    int b = open(at("b"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    check("b written", write(b, "old b\n", 6) == 6);
    close(b);
    check("renamed over b", rename(at("a"), at("b")) == 0);
    fails("a is gone", stat(at("a"), &st), ENOENT);
    check("b is a's inode", stat(at("b"), &st) == 0 && st.st_ino == ino && st.st_size == 12);
    b = open(at("b"), O_CREAT | O_WRONLY, 0644);
    check("b opened again", b >= 0);
    check("renamed while open", rename(at("b"), at("c")) == 0);
    check("the open file still writes", write(b, "Q", 1) == 1);
    close(b);
    fd = open(at("c"), O_RDONLY);
    check("and its byte is in c", read(fd, buf, 1) == 1 && buf[0] == 'Q');
    close(fd);
    int d = open(at("d"), O_CREAT | O_WRONLY, 0600);
    close(d);
    fails("RENAME_NOREPLACE", syscall(SYS_renameat2, AT_FDCWD, at("c"), AT_FDCWD, at("d"), 1), EEXIST);

    /* Directories. */
    check("mkdir sub", mkdir(at("sub"), 0700) == 0);
    check("file in sub", close(open(at("sub/f"), O_CREAT | O_WRONLY, 0600)) == 0);
    fails("rmdir non-empty", rmdir(at("sub")), ENOTEMPTY);
    fails("unlink a directory", unlink(at("sub")), EISDIR);
    fails("open a directory to write", open(at("sub"), O_WRONLY), EISDIR);
    fails("O_DIRECTORY of a file", open(at("c"), O_RDONLY | O_DIRECTORY), ENOTDIR);
    fails("O_CREAT with O_DIRECTORY", open(at("cd"), O_RDONLY | O_CREAT | O_DIRECTORY, 0644), EINVAL);
    fails("which made nothing", access(at("cd"), F_OK), ENOENT);
    fails("O_CREAT with O_DIRECTORY on a directory", open(dir, O_RDONLY | O_CREAT | O_DIRECTORY, 0644), EINVAL);
    fails("a path through a file", open(at("c/x"), O_RDONLY), ENOTDIR);
    fails("a missing file", open(at("nope"), O_RDONLY), ENOENT);
    fails("in a missing directory", open(at("nope/x"), O_CREAT | O_WRONLY, 0600), ENOENT);
    fails("rmdir of a file", rmdir(at("c")), ENOTDIR);
    char longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    fails("a name too long", open(at(longname), O_CREAT | O_WRONLY, 0600), ENAMETOOLONG);
    check("dir nlink counts sub", stat(dir, &st) == 0 && st.st_nlink == 3);
    check("moved a directory", rename(at("sub"), at("sub2")) == 0 && stat(at("sub2/f"), &st) == 0);

    /* Symbolic links. */
    check("symlink", symlink("c", at("link")) == 0);
    ssize_t n = readlink(at("link"), buf, sizeof buf);
    check("readlink", n == 1 && buf[0] == 'c');
    check("stat follows", stat(at("link"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 12);
    check("lstat does not", lstat(at("link"), &st) == 0 && S_ISLNK(st.st_mode));
    fails("readlink of a file", readlink(at("c"), buf, sizeof buf), EINVAL);
    check("a link to a directory", symlink("sub2", at("dlink")) == 0 && stat(at("dlink/f"), &st) == 0);
    /* A link whose target does not exist yet (cp -a and tar make links
     * first): its owner and times are its own. */
    check("a dangling link", symlink("later", at("dangling")) == 0);
    check("lchown", lchown(at("dangling"), getuid(), getgid()) == 0);
    check("fchownat AT_SYMLINK_NOFOLLOW",
          fchownat(AT_FDCWD, at("dangling"), getuid(), getgid(), AT_SYMLINK_NOFOLLOW) == 0);
    fails("chown follows it", chown(at("dangling"), getuid(), getgid()), ENOENT);
    check("faccessat2 AT_SYMLINK_NOFOLLOW asks the link itself",
          syscall(439, AT_FDCWD, at("dangling"), W_OK, AT_SYMLINK_NOFOLLOW) == 0);
    fails("faccessat2 follows it otherwise", syscall(439, AT_FDCWD, at("dangling"), F_OK, 0), ENOENT);
    {
        int pfd = open(at("c"), O_PATH);
        check("faccessat2 AT_EMPTY_PATH asks the descriptor's file",
              pfd >= 0 && syscall(439, pfd, "", R_OK | W_OK, AT_EMPTY_PATH) == 0);
        fails("faccessat2 AT_EMPTY_PATH, not executable", syscall(439, pfd, "", X_OK, AT_EMPTY_PATH), EACCES);
        fails("faccessat2 an empty path without it", syscall(439, pfd, "", F_OK, 0), ENOENT);
        close(pfd);
    }
    struct timespec lt[2] = {{900000000, 0}, {900000001, 3}};
    check("utimensat AT_SYMLINK_NOFOLLOW",
          utimensat(AT_FDCWD, at("dangling"), lt, AT_SYMLINK_NOFOLLOW) == 0 &&
          lstat(at("dangling"), &st) == 0 && st.st_mtim.tv_sec == 900000001 && st.st_mtim.tv_nsec == 3);
    fails("utimensat follows it", utimensat(AT_FDCWD, at("dangling"), lt, 0), ENOENT);
    fails("utimensat with a bad flag", utimensat(AT_FDCWD, at("c"), lt, 0x2), EINVAL);
    check("the link removed", unlink(at("dangling")) == 0);

    /* Metadata. */
    check("chmod", chmod(at("c"), 0751) == 0 && stat(at("c"), &st) == 0 && (st.st_mode & 07777) == 0751);
    check("access X_OK", access(at("c"), X_OK) == 0);
    check("chmod -x", chmod(at("c"), 0640) == 0);
    fails("access X_OK of a non-executable", access(at("c"), X_OK), EACCES);
    struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};
    check("utimensat", utimensat(AT_FDCWD, at("c"), ts, 0) == 0 && stat(at("c"), &st) == 0 &&
                           st.st_mtim.tv_sec == 1200000000 && st.st_mtim.tv_nsec == 7 &&
                           st.st_atim.tv_sec == 1000000000);
    check("truncate by path", truncate(at("c"), 3) == 0 && stat(at("c"), &st) == 0 && st.st_size == 3);
    int cfd = open(at("c"), O_RDONLY);
    check("fchownat AT_EMPTY_PATH", fchownat(cfd, "", getuid(), getgid(), AT_EMPTY_PATH) == 0);
    fails("fchownat of an empty path", fchownat(cfd, "", getuid(), getgid(), 0), ENOENT);
    close(cfd);
    struct timeval tv[2] = {{1100000000, 0}, {1300000000, 250000}};
    check("utimes (the old call)", syscall(SYS_utimes, at("c"), tv) == 0 && stat(at("c"), &st) == 0 &&
          st.st_mtim.tv_sec == 1300000000 && st.st_mtim.tv_nsec == 250000000);
    struct { long actime, modtime; } ub = {1100000000, 1400000000};
    check("utime (the oldest)", syscall(SYS_utime, at("c"), &ub) == 0 && stat(at("c"), &st) == 0 &&
          st.st_mtim.tv_sec == 1400000000 && st.st_atim.tv_sec == 1100000000);

    /* Working directory and relative paths. */
    char cwd[4096];
    check("getcwd", getcwd(cwd, sizeof cwd) != 0);
    check("chdir", chdir(at("sub2")) == 0);
    check("relative create", close(open("g", O_CREAT | O_WRONLY, 0600)) == 0 && stat(at("sub2/g"), &st) == 0);
    check("relative ..", stat("../c", &st2) == 0 && st2.st_size == 3);
    char here[4096];
    check("getcwd is the directory", getcwd(here, sizeof here) && !strcmp(here, at("sub2")));
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    check("openat relative to a directory", dfd >= 0 && faccessat(dfd, "f", F_OK, 0) == 0);
    close(dfd);
    check("back", chdir(cwd) == 0);

    /* A working directory removed under its process: getcwd is ENOENT (as
     * getcwd(2) says), /proc/self/cwd "PATH (deleted)", nothing is found or
     * made in it, even once a directory of its name is made again; `..`
     * leads out. A forked child inherits it. So does a directory a rename
     * replaced. */
    check("into gone", mkdir(at("gone"), 0755) == 0 && chdir(at("gone")) == 0);
    check("removed", rmdir(at("gone")) == 0);
    fails("getcwd in a removed directory", getcwd(here, sizeof here) ? 0 : -1, ENOENT);
    char shown[600];
    ssize_t ln = readlink("/proc/self/cwd", shown, sizeof shown - 1);
    shown[ln > 0 ? ln : 0] = 0;
    check("its /proc/self/cwd says deleted", ln > 0 && strstr(shown, "gone (deleted)") != 0);
    fails("create in it", open("x", O_CREAT | O_WRONLY, 0600), ENOENT);
    fails("mkdir in it", mkdir("y", 0755), ENOENT);
    check("made again", mkdir(at("gone"), 0755) == 0 && close(open(at("gone/new"), O_CREAT | O_WRONLY, 0600)) == 0);
    fails("its new name is not in the removed one", open("new", O_RDONLY), ENOENT);
    fails("nor through a name in it and ..", open("x/../new", O_RDONLY), ENOENT);
    fails("nor run from it", execl("./new", "new", (char *)0), ENOENT);
    pid_t child = fork();
    if (child == 0)
        _exit(getcwd(here, sizeof here) == 0 && errno == ENOENT ? 0 : 1);
    int kst;
    check("a child's getcwd is ENOENT too", waitpid(child, &kst, 0) == child && WIFEXITED(kst) && WEXITSTATUS(kst) == 0);
    check("../gone is the new one", stat("../gone/new", &st) == 0);
    check("cd .. leaves it", chdir("..") == 0 && getcwd(here, sizeof here) && !strcmp(here, dir));
    check("into gone again", chdir(at("gone")) == 0 && access("new", F_OK) == 0);
    check("a rename onto itself keeps it",
          rename(at("gone"), at("gone")) == 0 && getcwd(here, sizeof here) && !strcmp(here, at("gone")));
    check("emptied", unlink(at("gone/new")) == 0 && mkdir(at("over"), 0755) == 0);
    check("a rename over it", rename(at("over"), at("gone")) == 0);
    fails("getcwd in a directory a rename replaced", getcwd(here, sizeof here) ? 0 : -1, ENOENT);
    check("back again", chdir(cwd) == 0 && getcwd(here, sizeof here) && !strcmp(here, cwd));
    check("gone removed", rmdir(at("gone")) == 0);

    /* A bigger file: written in odd pieces, read back, mapped. */
    size_t big = 3 << 20;
    unsigned char *data = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    fd = open(at("big"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    size_t done = 0;
    while (done < big) {
        size_t k = big - done < 100003 ? big - done : 100003;
        if (write(fd, data + done, k) != (ssize_t)k)
            break;
        done += k;
    }
    check("big written", done == big);
    check("big fsynced", fsync(fd) == 0);
    done = 0;
    while (done < big) {
        ssize_t k = pread(fd, back + done, big - done, done);
        if (k <= 0)
            break;
        done += k;
    }
    check("big read back", done == big && !memcmp(data, back, big));
    void *m = mmap(0, big, PROT_READ, MAP_PRIVATE, fd, 0);
    check("big mapped", m != MAP_FAILED && sum(m, big) == sum(data, big));
    if (m != MAP_FAILED) munmap(m, big);
    /* A regular file moves a large call whole, as on Linux: one write,
     * read, pwrite, pread, writev, readv, pwritev and preadv of 3 MiB (or
     * of what is left to its end). */
    memset(back, 0, big);
    printf("one write of 3 MiB: %zd\n", pwrite(fd, data, big, 0));
    printf("one pread of 3 MiB: %zd\n", pread(fd, back, big, 0));
    check("one pread's bytes", !memcmp(data, back, big));
    printf("one pread from 1 MiB before the end: %zd\n", pread(fd, back, big, big - (1 << 20)));
    lseek(fd, 0, SEEK_SET);
    printf("one read of 3 MiB: %zd\n", read(fd, back, big));
    lseek(fd, 0, SEEK_SET);
    ssize_t wrote = write(fd, data, big);
    printf("one write of 3 MiB at the offset: %zd, now at %ld\n", wrote,
           (long)lseek(fd, 0, SEEK_CUR));
    struct iovec two[2] = {{data, big / 2 + 5}, {data + big / 2 + 5, big / 2 - 5}};
    struct iovec into[2] = {{back, 7}, {back + 7, big - 7}};
    lseek(fd, 0, SEEK_SET);
    printf("writev of 3 MiB: %zd\n", writev(fd, two, 2));
    memset(back, 0, big);
    lseek(fd, 0, SEEK_SET);
    printf("readv of 3 MiB: %zd\n", readv(fd, into, 2));
    check("readv's bytes", !memcmp(data, back, big));
    printf("pwritev of 3 MiB: %zd\n", pwritev(fd, two, 2, 0));
    memset(back, 0, big);
    printf("preadv of 3 MiB: %zd\n", preadv(fd, into, 2, 0));
    check("preadv's bytes", !memcmp(data, back, big));
    close(fd);
    printf("big sum %016llx\n", (unsigned long long)sum(data, big));

    /* A shared writable mapping: msync and munmap reach the file, bytes
     * past its end do not. */
    int mf = open(at("m"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    char fill[5000];
    memset(fill, '.', sizeof fill);
    check("m written", write(mf, fill, sizeof fill) == sizeof fill);
    char *sm = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
    check("mapped shared", sm != MAP_FAILED);
    if (sm != MAP_FAILED) {
        check("the mapping holds the file", sm[0] == '.' && sm[4999] == '.' && sm[5000] == 0);
        sm[10] = 'A';
        sm[4999] = 'Z';
        sm[6000] = 'X';
        check("msync", msync(sm, 8192, MS_SYNC) == 0);
        check("written through", pread(mf, buf, 1, 10) == 1 && buf[0] == 'A' && pread(mf, buf, 1, 4999) == 1 && buf[0] == 'Z');
        check("size kept", fstat(mf, &st) == 0 && st.st_size == 5000);
        sm[20] = 'B';
        check("munmap", munmap(sm, 8192) == 0);
        check("written at munmap", pread(mf, buf, 1, 20) == 1 && buf[0] == 'B');
    }
    fails("shared writable on a read-only open", (long)mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, open(at("m"), O_RDONLY), 0), EACCES);
    close(mf);
    check("m removed", unlink(at("m")) == 0);

    /* I/O at offsets, vectors, copies between files, advice, fallocate:
     * what each call returns and the bytes it leaves, as the host has them. */
    int pv = open(at("pv"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    char v1[5] = "abcde", v2[7] = "fghijkl", r1[4], r2[20];
    struct iovec wv[2] = {{v1, 5}, {v2, 7}}, rv[2] = {{r1, 4}, {r2, 20}};
    printf("pwritev: %zd\n", pwritev(pv, wv, 2, 3));
    ssize_t got = preadv(pv, rv, 2, 2);
    printf("preadv: %zd\n", got);
    show("preadv's first buffer", r1, 4);
    show("preadv's second buffer", r2, got - 4);
    printf("offset untouched: %ld\n", (long)lseek(pv, 0, SEEK_CUR));
    printf("pwritev2 at the offset: %ld", syscall(SYS_pwritev2, pv, wv, 1L, -1L, 0L, 0L));
    printf(", offset %ld\n", (long)lseek(pv, 0, SEEK_CUR));
    printf("pwritev2 RWF_APPEND: %ld\n", syscall(SYS_pwritev2, pv, wv, 1L, 0L, 0L, 0x10L));
    fails("pwritev at offset -1", pwritev(pv, wv, 1, -1), EINVAL);
    int pa = open(at("pv"), O_WRONLY | O_APPEND);
    printf("pwritev2 at the offset of an O_APPEND open: %ld", syscall(SYS_pwritev2, pa, wv, 1L, -1L, 0L, 0L));
    printf(", offset %ld, size %ld\n", (long)lseek(pa, 0, SEEK_CUR), (long)lseek(pa, 0, SEEK_END));
    close(pa);
    printf("pwritev2 at the offset, RWF_APPEND: %ld", syscall(SYS_pwritev2, pv, wv, 1L, -1L, 0L, 0x10L));
    printf(", offset %ld\n", (long)lseek(pv, 0, SEEK_CUR));
    lseek(pv, 5, SEEK_SET);
    printf("preadv2 at the offset: %ld", syscall(SYS_preadv2, pv, rv, 1L, -1L, 0L, 0L));
    printf(", offset %ld\n", (long)lseek(pv, 0, SEEK_CUR));
    show("read", r1, 4);
    fails("preadv2 with a bad flag", syscall(SYS_preadv2, pv, rv, 1L, 0L, 0L, 1L << 30), EOPNOTSUPP);
    fails("preadv at a negative offset", preadv(pv, rv, 1, -5), EINVAL);
    int cp = open(at("cp"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    loff_t in_at = 5, out_at = 2;
    printf("copy_file_range at offsets: %zd", copy_file_range(pv, &in_at, cp, &out_at, 8, 0));
    printf(", now %ld and %ld\n", (long)in_at, (long)out_at);
    show("copied", buf, pread(cp, buf, sizeof buf, 0));
    lseek(pv, 17, SEEK_SET);
    lseek(cp, 0, SEEK_SET);
    printf("copy_file_range at the files' offsets: %zd", copy_file_range(pv, NULL, cp, NULL, 100, 0));
    printf(", now %ld and %ld\n", (long)lseek(pv, 0, SEEK_CUR), (long)lseek(cp, 0, SEEK_CUR));
    printf("copy_file_range at the end: %zd\n", copy_file_range(pv, NULL, cp, NULL, 100, 0));
    fails("copy_file_range with flags", copy_file_range(pv, NULL, cp, NULL, 1, 1), EINVAL);
    in_at = 0, out_at = 4;
    fails("copy_file_range overlapping itself", copy_file_range(pv, &in_at, pv, &out_at, 8, 0), EINVAL);
    off_t sf_at = 3;
    printf("sendfile from an offset: %zd", sendfile(cp, pv, &sf_at, 4));
    printf(", now %ld and %ld\n", (long)sf_at, (long)lseek(pv, 0, SEEK_CUR));
    show("cp", buf, pread(cp, buf, sizeof buf, 0));
    printf("posix_fadvise: %d and %d\n", posix_fadvise(pv, 0, 0, POSIX_FADV_SEQUENTIAL), posix_fadvise(pv, 0, 0, 99));
    printf("readahead: %zd\n", readahead(pv, 0, 4096));
    check("fallocate grows", fallocate(pv, 0, 0, 10000) == 0 && fstat(pv, &st) == 0 && st.st_size == 10000);
    check("fallocate KEEP_SIZE", fallocate(pv, FALLOC_FL_KEEP_SIZE, 0, 20000) == 0 && fstat(pv, &st) == 0 && st.st_size == 10000);
    check("posix_fallocate", posix_fallocate(pv, 5000, 10000) == 0 && fstat(pv, &st) == 0 && st.st_size == 15000);
    check("punch a hole", fallocate(pv, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4, 8) == 0 && fstat(pv, &st) == 0 && st.st_size == 15000);
    show("after the hole", buf, pread(pv, buf, 24, 0));
    fails("punch without KEEP_SIZE", fallocate(pv, FALLOC_FL_PUNCH_HOLE, 0, 8), EOPNOTSUPP);
    fails("fallocate of no bytes", fallocate(pv, 0, 0, 0), EINVAL);
    int ro = open(at("pv"), O_RDONLY);
    fails("fallocate read-only", fallocate(ro, 0, 0, 100), EBADF);
    close(ro);
    close(pv);
    close(cp);
    check("pv and cp removed", unlink(at("pv")) == 0 && unlink(at("cp")) == 0);

    /* Shared mappings follow the file: a write() shows in every mapping of
     * it, a write through one mapping shows in the others once written
     * back (msync), in a forked child's too, and a truncate leaves zeros. */
    int sh = open(at("sh"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    check("sh written", write(sh, "0123456789", 10) == 10);
    char *ro1 = mmap(0, 4096, PROT_READ, MAP_SHARED, sh, 0);
    char *rw1 = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sh, 0);
    check("mapped twice", ro1 != MAP_FAILED && rw1 != MAP_FAILED);
    check("pwrite", pwrite(sh, "ab", 2, 3) == 2);
    show("a pwrite shows in the read-only mapping", ro1, 10);
    show("and in the writable one", rw1, 10);
    memcpy(rw1 + 6, "XY", 2);
    check("msync", msync(rw1, 4096, MS_SYNC) == 0);
    show("a write through one mapping shows in the other", ro1, 10);
    show("and in the file", buf, pread(sh, buf, 10, 0));
    check("read-only made writable", mprotect(ro1, 4096, PROT_READ | PROT_WRITE) == 0);
    ro1[0] = 'Z';
    check("munmap", munmap(ro1, 4096) == 0);
    show("its write reached the file at munmap", buf, pread(sh, buf, 10, 0));
    show("and the other mapping", rw1, 10);
    pid_t kid = fork();
    if (kid == 0) {
        rw1[9] = 'K';
        msync(rw1, 4096, MS_SYNC);
        _exit(0);
    }
    int status;
    check("child done", waitpid(kid, &status, 0) == kid && WIFEXITED(status));
    show("the child's write shows in the parent's mapping", rw1, 10);
    int go[2];
    check("pipe", pipe(go) == 0);
    kid = fork();
    if (kid == 0) {
        char c;
        read(go[0], &c, 1);
        fsync(sh);
        _exit(0);
    }
    rw1[1] = 'P';
    write(go[1], "g", 1);
    check("child done", waitpid(kid, &status, 0) == kid && WIFEXITED(status));
    show("the child's fsync wrote the parent's mapping", buf, pread(sh, buf, 10, 0));
    close(go[0]);
    close(go[1]);
    check("pipe", pipe(go) == 0);
    rw1[3] = 'R'; /* before the fork, not written back */
    kid = fork();
    if (kid == 0) {
        char c;
        read(go[0], &c, 1);
        _exit(0); /* its copy of the mapping goes: nothing of it changed */
    }
    rw1[2] = 'Q';
    rw1[3] = 'S';
    write(go[1], "g", 1);
    check("child done", waitpid(kid, &status, 0) == kid && WIFEXITED(status));
    show("a child going keeps the parent's unsaved write", rw1, 10);
    check("msync", msync(rw1, 4096, MS_SYNC) == 0);
    show("and is after msync", buf, pread(sh, buf, 10, 0));
    close(go[0]);
    close(go[1]);
    check("truncated", ftruncate(sh, 5) == 0);
    show("a truncate leaves zeros", rw1, 10);
    check("written again", pwrite(sh, "abcdefghij", 10, 0) == 10);
    int tr = open(at("sh"), O_WRONLY | O_TRUNC);
    check("emptied by O_TRUNC and grown back", tr >= 0 && ftruncate(tr, 10) == 0);
    show("the old bytes are gone from the mapping", rw1, 10);
    close(tr);
    check("munmap", munmap(rw1, 4096) == 0);
    int rdonly = open(at("sh"), O_RDONLY);
    char *ro2 = mmap(0, 4096, PROT_READ, MAP_SHARED, rdonly, 0);
    fails("PROT_WRITE on a read-only open's shared mapping", mprotect(ro2, 4096, PROT_READ | PROT_WRITE), EACCES);
    munmap(ro2, 4096);
    close(rdonly);
    close(sh);
    check("sh removed", unlink(at("sh")) == 0);

    /* Two processes mapping one file on their own (not inherited), both
     * writing it with no msync: each sees the other's stores at once, as
     * through one page cache (SQLite's WAL index between processes). */
    int co = open(at("co"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    check("co sized", ftruncate(co, 8192) == 0);
    volatile long *cm = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, co, 0);
    check("co mapped", cm != MAP_FAILED);
    kid = fork();
    if (kid == 0) {
        int mine = open(at("co"), O_RDWR);
        volatile long *km = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mine, 0);
        if (km == MAP_FAILED) _exit(2);
        for (int i = 0; i < 20000; i++) __atomic_fetch_add(&km[0], 1, __ATOMIC_SEQ_CST);
        while (km[512] != 1) {}
        km[513] = 77;
        km[512] = 2;
        _exit(0);
    }
    for (int i = 0; i < 20000; i++) __atomic_fetch_add(&cm[0], 1, __ATOMIC_SEQ_CST);
    cm[512] = 1;
    while (cm[512] != 2) {}
    check("co child", waitpid(kid, &status, 0) == kid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("both processes' adds: %ld; the child's flag seen: %ld\n", cm[0], cm[513]);
    cm[2] = 12345; /* this process's own store, not written back by anyone yet */
    long early[3] = {0, 0, 0};
    check("co read before msync", pread(co, early, sizeof early, 0) == sizeof early);
    printf("read() sees the stores before any msync: %ld %ld\n", early[0], early[2]);
    check("co msync", msync((void *)cm, 8192, MS_SYNC) == 0);
    long fromfile[2] = {0, 0};
    check("co read", pread(co, fromfile, sizeof fromfile[0], 0) == sizeof fromfile[0] &&
                         pread(co, &fromfile[1], sizeof fromfile[1], 513 * sizeof(long)) == sizeof fromfile[1]);
    printf("in the file: %ld %ld\n", fromfile[0], fromfile[1]);
    munmap((void *)cm, 8192);
    close(co);
    check("co removed", unlink(at("co")) == 0);

    /* atime by Linux's default rule (relatime): the first read after a
     * write moves it, the next does not; a read leaves ctime alone. */
    int af = open(at("at"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    check("at written", write(af, "x", 1) == 1);
    usleep(20000);
    struct stat a0, a1, a2;
    fstat(af, &a0);
    pread(af, buf, 1, 0);
    fstat(af, &a1);
    usleep(20000);
    pread(af, buf, 1, 0);
    fstat(af, &a2);
    check("a read after a write moves the atime",
          a1.st_atim.tv_sec * 1000000000LL + a1.st_atim.tv_nsec > a0.st_atim.tv_sec * 1000000000LL + a0.st_atim.tv_nsec);
    check("the next read does not", a2.st_atim.tv_sec == a1.st_atim.tv_sec && a2.st_atim.tv_nsec == a1.st_atim.tv_nsec);
    check("a read leaves the ctime", a1.st_ctim.tv_sec == a0.st_ctim.tv_sec && a1.st_ctim.tv_nsec == a0.st_ctim.tv_nsec);
    close(af);
    check("at removed", unlink(at("at")) == 0);

    /* A trailing slash names a directory. */
    fails("stat of a file with a slash", stat(at("c/"), &st), ENOTDIR);
    check("stat of a directory with a slash", stat(at("sub2/"), &st) == 0 && S_ISDIR(st.st_mode));
    fails("open of a file with a slash", open(at("c/"), O_RDONLY), ENOTDIR);
    fails("O_CREAT with a slash", open(at("new/"), O_CREAT | O_WRONLY, 0644), EISDIR);
    fails("unlink of a file with a slash", unlink(at("c/")), ENOTDIR);
    fails("unlink of a directory with a slash", unlink(at("sub2/")), EISDIR);
    check("the file is still there", stat(at("c"), &st) == 0);

    /* Hard links: one file under two names, which stays until both go. */
    int hl = open(at("h1"), O_CREAT | O_RDWR, 0644);
    check("h1 written", write(hl, "hard", 4) == 4);
    check("link", link(at("h1"), at("h2")) == 0);
    check("two names, one file", stat(at("h1"), &st) == 0 && stat(at("h2"), &st2) == 0 &&
          st.st_ino == st2.st_ino && st.st_nlink == 2 && st2.st_nlink == 2);
    check("fstat sees nlink 2", fstat(hl, &st) == 0 && st.st_nlink == 2);
    int h2 = open(at("h2"), O_RDWR);
    check("written through one name, read through the other",
          pwrite(h2, "HA", 2, 0) == 2 && pread(hl, buf, 4, 0) == 4 && !memcmp(buf, "HArd", 4));
    close(h2);
    fails("link over an existing name", link(at("h1"), at("c")), EEXIST);
    fails("link of a directory", link(at("sub2"), at("sub3")), EPERM);
    fails("link of a missing file", link(at("nope"), at("h3")), ENOENT);
    fails("link into a missing directory", link(at("h1"), at("nope/h3")), ENOENT);
    fails("link of a missing file below a file", link(at("nope"), at("c/h3")), ENOENT);
    fails("link of a missing file over a name", link(at("nope"), at("c")), ENOENT);
    fails("link below a file", link(at("h1"), at("c/h3")), ENOTDIR);
    fails("linkat with a bad flag", linkat(AT_FDCWD, at("h1"), AT_FDCWD, at("h3"), 0x1), EINVAL);
    check("symlink to h1", symlink("h1", at("hs")) == 0);
    check("link of a symlink names the symlink", link(at("hs"), at("hs2")) == 0 &&
          lstat(at("hs2"), &st) == 0 && S_ISLNK(st.st_mode) && st.st_nlink == 2);
    check("linkat AT_SYMLINK_FOLLOW names its target",
          linkat(AT_FDCWD, at("hs"), AT_FDCWD, at("h3"), AT_SYMLINK_FOLLOW) == 0 &&
          lstat(at("h3"), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 3);
    check("rename onto another name of the same file does nothing",
          rename(at("h3"), at("h1")) == 0 && stat(at("h3"), &st) == 0 && st.st_nlink == 3);
    check("a name unlinked while the file is open", unlink(at("h1")) == 0 && fstat(hl, &st) == 0 && st.st_nlink == 2);
    check("the data stays under the others", pread(hl, buf, 4, 0) == 4 && stat(at("h2"), &st) == 0 &&
          st.st_size == 4 && st.st_nlink == 2);
    close(hl);
    int h3 = open(at("h3"), O_RDONLY);
    check("read through the last names", h3 >= 0 && read(h3, buf, 4) == 4 && !memcmp(buf, "HArd", 4));
    close(h3);
    check("hard links removed", unlink(at("h2")) == 0 && unlink(at("h3")) == 0 && unlink(at("hs")) == 0 &&
          unlink(at("hs2")) == 0);
    fails("the file is gone", stat(at("h3"), &st), ENOENT);

    /* Unlinked while open: the name goes, the file stays until closed. */
    int u = open(at("u"), O_CREAT | O_RDWR, 0600);
    check("u written", write(u, "keep", 4) == 4);
    check("unlinked while open", unlink(at("u")) == 0);
    fails("its name is gone", stat(at("u"), &st), ENOENT);
    check("still written and read", pwrite(u, "KEEP", 4, 0) == 4 && pread(u, buf, 4, 0) == 4 && !memcmp(buf, "KEEP", 4));
    check("fstat still answers", fstat(u, &st) == 0 && st.st_size == 4);
    check("closed", close(u) == 0);

    /* `.`, `..` and a trailing slash as the last name: Linux checks them
     * as the program wrote them, before the path is looked up. */
    check("mkdir e", mkdir(at("e"), 0755) == 0);
    fails("rmdir of dir/.", rmdir(at("e/.")), EINVAL);
    fails("rmdir of dir/..", rmdir(at("e/..")), ENOTEMPTY);
    fails("rmdir of missing/.", rmdir(at("nope/.")), ENOENT);
    fails("rmdir of file/.", rmdir(at("c/.")), ENOTDIR);
    check("e is still there", stat(at("e"), &st) == 0 && S_ISDIR(st.st_mode));
    fails("unlink of dir/.", unlink(at("e/.")), EISDIR);
    fails("mkdir of dir/..", mkdir(at("e/.."), 0755), EEXIST);
    fails("link to a new name with a slash", link(at("c"), at("c2/")), ENOENT);
    fails("link to an existing name with a slash", link(at("c"), at("d/")), EEXIST);
    fails("link of a file with a slash", link(at("c/"), at("c3")), ENOTDIR);
    fails("link of a directory with a slash", link(at("e/"), at("e2")), EPERM);
    fails("symlink to a name with a slash", symlink("c", at("s/")), ENOENT);
    fails("mknod of a name with a slash", mknod(at("n/"), S_IFREG | 0644, 0), ENOENT);
    check("symlink to e", symlink("e", at("se")) == 0);
    fails("unlink of a link to a directory with a slash", unlink(at("se/")), ENOTDIR);
    fails("O_NOFOLLOW of a symbolic link", open(at("se"), O_RDONLY | O_NOFOLLOW), ELOOP);
    fails("O_TRUNC of a directory", open(at("e"), O_RDONLY | O_TRUNC), EISDIR);
    fails("access with a bad mode", access(at("c"), 8), EINVAL);
    int tf = open(at("t"), O_CREAT | O_RDWR | O_APPEND, 0644);
    check("pwrite of an O_APPEND open appends",
          write(tf, "ab", 2) == 2 && pwrite(tf, "c", 1, 0) == 1 && pread(tf, buf, 4, 0) == 3 &&
          !memcmp(buf, "abc", 3));
    close(tf);
    tf = open(at("t"), O_RDONLY | O_TRUNC);
    check("O_TRUNC of a read-only open truncates", tf >= 0 && fstat(tf, &st) == 0 && st.st_size == 0);
    close(tf);
    check("names removed", unlink(at("t")) == 0 && unlink(at("se")) == 0 && rmdir(at("e")) == 0);

    /* O_PATH descriptors name a file and open nothing; statx and fstatat
     * check their flags; fchmodat2 does not change a link's mode. */
    check("a link to c", symlink("c", at("lc")) == 0);
    int pl = open(at("lc"), O_PATH | O_NOFOLLOW);
    check("O_PATH of the link itself", pl >= 0 && fstat(pl, &st) == 0 && S_ISLNK(st.st_mode));
    check("readlinkat of it with an empty path", readlinkat(pl, "", buf, sizeof buf) == 1 && buf[0] == 'c');
    printf("F_GETFL of it: %o\n", fcntl(pl, F_GETFL) & ~0100000);
    fails("fchmodat2 AT_SYMLINK_NOFOLLOW of a link", syscall(452, AT_FDCWD, at("lc"), 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
    fails("fchmodat2 with a bad flag", syscall(452, AT_FDCWD, at("c"), 0600, 1), EINVAL);
    check("fchmodat2 AT_SYMLINK_NOFOLLOW of a file", syscall(452, AT_FDCWD, at("c"), 0604, AT_SYMLINK_NOFOLLOW) == 0 &&
          stat(at("c"), &st) == 0 && (st.st_mode & 0777) == 0604);
    close(pl);
    int pc = open(at("c"), O_PATH);
    fails("fsync of O_PATH", fsync(pc), EBADF);
    fails("fchmod of O_PATH", syscall(SYS_fchmod, pc, 0600), EBADF); /* musl's fchmod goes on by /proc */
    fails("ftruncate of O_PATH", ftruncate(pc, 0), EBADF);
    fails("flock of O_PATH", flock(pc, LOCK_EX), EBADF);
    fails("lseek of O_PATH", lseek(pc, 0, SEEK_SET), EBADF);
    fails("mmap of O_PATH", (long)mmap(0, 4096, PROT_READ, MAP_PRIVATE, pc, 0), EBADF);
    fails("F_SETFL of O_PATH", fcntl(pc, F_SETFL, O_NONBLOCK), EBADF);
    check("fstat and F_DUPFD of O_PATH", fstat(pc, &st) == 0 && st.st_size == 3 && close(fcntl(pc, F_DUPFD_CLOEXEC, 0)) == 0);
    check("fchmodat2 of O_PATH's file by AT_EMPTY_PATH", syscall(452, pc, "", 0640, AT_EMPTY_PATH) == 0 &&
          stat(at("c"), &st) == 0 && (st.st_mode & 0777) == 0640);
    fails("fstatat with a bad flag", fstatat(AT_FDCWD, at("c"), &st, 1), EINVAL);
    uint64_t sx[32]; /* struct statx, which older musl does not declare: stx_size is sx[5] */
    check("statx of a null path with AT_EMPTY_PATH", syscall(SYS_statx, pc, NULL, AT_EMPTY_PATH, 0x7ff, sx) == 0 && sx[5] == 3);
    fails("statx with a reserved mask bit", syscall(SYS_statx, AT_FDCWD, at("c"), 0, 0x80000000u, sx), EINVAL);
    fails("statx with both sync flags", syscall(SYS_statx, AT_FDCWD, at("c"), 0x6000, 0x7ff, sx), EINVAL);
    fails("utimensat of no path and no descriptor", syscall(SYS_utimensat, AT_FDCWD, NULL, NULL, 0), EFAULT);
    close(pc);
    int dd = open(dir, O_RDONLY | O_DIRECTORY);
    fails("getdents64 into 8 bytes", syscall(SYS_getdents64, dd, buf, 8), EINVAL);
    int epf = epoll_create1(0), cf = open(at("c"), O_RDONLY);
    struct epoll_event eev = {.events = EPOLLIN};
    fails("epoll of a file", epoll_ctl(epf, EPOLL_CTL_ADD, cf, &eev), EPERM);
    fails("epoll of a directory", epoll_ctl(epf, EPOLL_CTL_ADD, dd, &eev), EPERM);
    close(cf);
    close(epf);
    close(dd);
    check("the link to c removed", unlink(at("lc")) == 0);
    /* rm -rf: names removed as they are read; none is skipped. */
    check("mkdir many", mkdir(at("many"), 0755) == 0);
    char nm[600];
    for (int i = 0; i < 800; i++) { /* more than one 32 KiB read of glibc's readdir */
        snprintf(nm, sizeof nm, "many/a-name-long-enough-to-fill-a-buffer-%03d", i);
        close(open(at(nm), O_CREAT | O_WRONLY, 0644));
    }
    DIR *md = opendir(at("many"));
    int removed = 0;
    for (struct dirent *e; md && (e = readdir(md));)
        if (e->d_name[0] != '.' && unlinkat(dirfd(md), e->d_name, 0) == 0)
            removed++;
    if (md) closedir(md);
    printf("removed while reading: %d\n", removed);
    check("and then the directory", rmdir(at("many")) == 0);
    /* A named pipe in the directory: listed and stat'ed as one, a child
     * writes through it to the end, O_CREAT opens it, rename keeps it. */
    check("mkfifo", mkfifo(at("fifo"), 0640) == 0);
    fails("mkfifo again", mkfifo(at("fifo"), 0640), EEXIST);
    check("stat says a FIFO", stat(at("fifo"), &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640 &&
                                 st.st_size == 0);
    list(dir);
    pid_t fw = fork();
    if (fw == 0) {
        int w = open(at("fifo"), O_WRONLY);
        for (int i = 0; i < 500; i++)
            dprintf(w, "line %d\n", i);
        _exit(0);
    }
    int fr = open(at("fifo"), O_RDONLY | O_CREAT, 0600);
    long fifo_bytes = 0, got_now;
    while ((got_now = read(fr, buf, sizeof buf)) > 0)
        fifo_bytes += got_now;
    printf("through the fifo: %ld bytes, end %ld\n", fifo_bytes, got_now);
    check("fstat of an end says FIFO", fstat(fr, &st) == 0 && S_ISFIFO(st.st_mode));
    close(fr);
    waitpid(fw, NULL, 0);
    fails("a non-blocking writer with no reader", open(at("fifo"), O_WRONLY | O_NONBLOCK), ENXIO);
    fails("truncate of a FIFO", truncate(at("fifo"), 0), EINVAL);
    fails("O_DIRECTORY of a FIFO", open(at("fifo"), O_RDONLY | O_NONBLOCK | O_DIRECTORY), ENOTDIR);
    check("renamed, still a FIFO", rename(at("fifo"), at("fifo2")) == 0 && lstat(at("fifo2"), &st) == 0 &&
                                      S_ISFIFO(st.st_mode));
    int frw = open(at("fifo2"), O_RDWR);
    check("O_RDWR both ends", frw >= 0 && write(frw, "rw", 2) == 2 && read(frw, buf, 2) == 2 && !memcmp(buf, "rw", 2));
    check("unlinked while open, still a pipe", unlink(at("fifo2")) == 0 && write(frw, "z", 1) == 1 &&
                                                  read(frw, buf, 1) == 1 && buf[0] == 'z');
    close(frw);
    /* AF_UNIX names in the directory: a socket file each, on storage
     * too (the file storage's, the socket the processor's). */
    struct sockaddr_un sa = {.sun_family = AF_UNIX}, smiss = sa, sf = sa;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", at("sock"));
    snprintf(smiss.sun_path, sizeof smiss.sun_path, "%s", at("nope/sock"));
    snprintf(sf.sun_path, sizeof sf.sun_path, "%s", at("c"));
    int ls = socket(AF_UNIX, SOCK_STREAM, 0), cs = socket(AF_UNIX, SOCK_STREAM, 0);
    fails("bind in a missing directory", bind(ls, (void *)&smiss, sizeof smiss), ENOENT);
    check("bind and listen", bind(ls, (void *)&sa, sizeof sa) == 0 && listen(ls, 2) == 0);
    check("its file", lstat(at("sock"), &st) == 0 && S_ISSOCK(st.st_mode));
    list(dir);
    fails("open of the socket's file", open(at("sock"), O_RDONLY), ENXIO);
    check("mknod of a socket's file", mknod(at("sockfile"), S_IFSOCK | 0600, 0) == 0 &&
                                         lstat(at("sockfile"), &st) == 0 && S_ISSOCK(st.st_mode));
    int orphan = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un so = {.sun_family = AF_UNIX};
    snprintf(so.sun_path, sizeof so.sun_path, "%s", at("sockfile"));
    fails("a connect to it, no socket bound", connect(orphan, (void *)&so, sizeof so), ECONNREFUSED);
    close(orphan);
    check("and unlinked", unlink(at("sockfile")) == 0);
    fails("bind of the name again", bind(cs, (void *)&sa, sizeof sa), EADDRINUSE);
    fails("bind of a bound socket", bind(ls, (void *)&sa, sizeof sa), EADDRINUSE);
    check("connect", connect(cs, (void *)&sa, sizeof sa) == 0);
    fails("listen on a connected socket", listen(cs, 1), EINVAL);
    fails("accept on a connected socket", accept(cs, NULL, NULL), EINVAL);
    close(cs);
    cs = socket(AF_UNIX, SOCK_STREAM, 0);
    fails("connect to a file no socket has", connect(cs, (void *)&sf, sizeof sf), ECONNREFUSED);
    check("unlink of the socket's name", unlink(at("sock")) == 0);
    fails("connect after it", connect(cs, (void *)&sa, sizeof sa), ENOENT);
    check("bound again by another", bind(cs, (void *)&sa, sizeof sa) == 0 && unlink(at("sock")) == 0);
    close(cs);
    close(ls);
    fails("a socket type Linux has not", socket(AF_UNIX, 12, 0), EINVAL);
    fails("unknown flags with the type", socket(AF_UNIX, SOCK_STREAM | 0x40, 0), EINVAL);
    fails("a type AF_UNIX has not", socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    int rs = socket(AF_UNIX, SOCK_RAW, 0), sot = 0;
    socklen_t sol = sizeof sot;
    check("AF_UNIX SOCK_RAW is a datagram socket", rs >= 0 && getsockopt(rs, SOL_SOCKET, SO_TYPE, &sot, &sol) == 0 && sot == SOCK_DGRAM);
    fails("getsockopt at a level AF_UNIX has not", getsockopt(rs, IPPROTO_TCP, 1, &sot, &sol), EOPNOTSUPP);
    close(rs);
    list(dir);

    walk_errors(at);
    /* Clean up. */
    check("unlink", unlink(at("c")) == 0 && unlink(at("d")) == 0 && unlink(at("big")) == 0);
    check("unlink links", unlink(at("link")) == 0 && unlink(at("dlink")) == 0);
    check("empty sub2", unlink(at("sub2/f")) == 0 && unlink(at("sub2/g")) == 0 && rmdir(at("sub2")) == 0);
    list(dir);
    check("rmdir", rmdir(dir) == 0);
    fails("gone", stat(dir, &st), ENOENT);
    return 0;
}
