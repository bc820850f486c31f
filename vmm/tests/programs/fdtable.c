/* The descriptor table as programs see it: /proc/self/fd and /dev/fd
 * listed, close_range closing or marking close-on-exec, its errors; and
 * what GNU ls asks of a file besides: statx's times and owner, and an
 * extended attribute it does not have; /proc/self/fdinfo. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The numbers a directory lists, sorted (the directory's own descriptor
 * left out), and whether each entry is a symbolic link. */
static void list(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        printf("%s: opendir: %s\n", dir, strerror(errno));
        return;
    }
    int fds[64], n = 0, links = 1, dots = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            dots++;
            continue;
        }
        int fd = atoi(e->d_name);
        if (fd == dirfd(d)) continue;
        if (e->d_type != DT_LNK) links = 0;
        if (n < 64) fds[n++] = fd;
    }
    closedir(d);
    qsort(fds, n, sizeof *fds, cmp);
    printf("%s:", dir);
    for (int i = 0; i < n; i++) printf(" %d", fds[i]);
    printf(" (dots %d, links %s)\n", dots, links ? "yes" : "no");
}

int main(void) {
    /* What the caller left open (a test harness's, a shell's) would list
     * differently on the host. */
    for (int fd = 3; fd < 1024; fd++) close(fd);
    int a = open("/dev/null", O_RDONLY), b = dup(a), c = dup(a), d = dup(a);
    printf("opened %d %d %d %d\n", a, b, c, d);
    list("/proc/self/fd");
    list("/dev/fd");
    struct stat st;
    printf("stat /proc/self/fd is a directory: %s\n",
           stat("/proc/self/fd", &st) == 0 && S_ISDIR(st.st_mode) ? "yes" : "no");
    SHOW("open(\"/proc/self/fd\", O_WRONLY)", open("/proc/self/fd", O_WRONLY));
    /* 4: CLOSE_RANGE_CLOEXEC */
    SHOW("close_range(5, ~0U, CLOEXEC)", syscall(SYS_close_range, 5, ~0U, 4));
    for (int fd = 3; fd <= 6; fd++) printf("fd %d cloexec %d\n", fd, fcntl(fd, F_GETFD) & FD_CLOEXEC);
    SHOW("close_range(4, ~0U, 0)", syscall(SYS_close_range, 4, ~0U, 0));
    list("/proc/self/fd");
    SHOW("fcntl(4, F_GETFD)", fcntl(4, F_GETFD));
    SHOW("close_range(9, 8, 0)", syscall(SYS_close_range, 9, 8, 0));
    SHOW("close_range(0, 8, 0x80)", syscall(SYS_close_range, 0, 8, 0x80));
    SHOW("close_range(100, 200, 0)", syscall(SYS_close_range, 100, 200, 0));

    char name[] = "/tmp/fdtable-XXXXXX";
    int t = mkstemp(name);
    /* statx by its number and Linux's layout (musl 1.2.3 has no
     * wrapper): uid 20, gid 24, atime 64, ctime 96, mtime 112. */
    unsigned char sx[256];
    struct stat s2;
    if (t >= 0 && syscall(SYS_statx, AT_FDCWD, name, 0, 0x7ff, sx) == 0 && stat(name, &s2) == 0) {
        long long at, ct, mt;
        unsigned mns, uid, gid;
        memcpy(&uid, sx + 20, 4);
        memcpy(&gid, sx + 24, 4);
        memcpy(&at, sx + 64, 8);
        memcpy(&ct, sx + 96, 8);
        memcpy(&mt, sx + 112, 8);
        memcpy(&mns, sx + 120, 4);
        printf("statx times and owner agree with stat: %s\n",
               mt == s2.st_mtime && mns == (unsigned)s2.st_mtim.tv_nsec && at == s2.st_atime &&
                       ct == s2.st_ctime && uid == s2.st_uid && gid == s2.st_gid && mt > 1577836800
                   ? "yes"
                   : "no");
    }
    char v[16];
    SHOW("getxattr(user.lego)", getxattr(name, "user.lego", v, sizeof v));
    SHOW("getxattr of a missing file", getxattr("/tmp/no/such", "user.lego", v, sizeof v));
    unlink(name);

    /* CPython's subprocess closes what it does not pass while it reads
     * /proc/self/fd one small buffer at a time: closing moves no entry
     * that is still to come. */
    close(t);
    int keep = open("/dev/null", O_RDONLY);
    for (int i = 0; i < 12; i++) open("/dev/null", O_RDONLY);
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    char small[64];
    long got;
    while ((got = syscall(SYS_getdents64, dir, small, sizeof small)) > 0) {
        for (long at = 0; at < got;) {
            unsigned short reclen;
            memcpy(&reclen, small + at + 16, 2);
            int fd = atoi(small + at + 19);
            if (small[at + 19] != '.' && fd > 2 && fd != keep && fd != dir) close(fd);
            at += reclen;
        }
    }
    close(dir);
    int open_after = 0;
    for (int fd = 3; fd < 64; fd++) open_after += fcntl(fd, F_GETFD) >= 0;
    printf("closed while listing: %d left open (the one kept: %s)\n", open_after,
           fcntl(keep, F_GETFD) >= 0 ? "yes" : "no");

    /* /proc/self/fdinfo: a file per descriptor, with its offset and
     * flags (the mount and inode differ between file systems). */
    for (int fd = 3; fd < 1024; fd++) close(fd);
    int w = open("/dev/null", O_WRONLY | O_APPEND | O_CLOEXEC), r = open("/dev/null", O_RDONLY);
    lseek(r, 0, SEEK_SET);
    int fi = open("/proc/self/fdinfo", O_RDONLY | O_DIRECTORY);
    int regular = 1, names = 0;
    char dents[4096];
    for (long got; (got = syscall(SYS_getdents64, fi, dents, sizeof dents)) > 0;)
        for (long at = 0; at < got;) {
            unsigned short reclen;
            memcpy(&reclen, dents + at + 16, 2);
            if (dents[at + 19] != '.') {
                names++;
                regular &= dents[at + 18] == DT_REG;
            }
            at += reclen;
        }
    close(fi);
    printf("fdinfo lists %d, all files: %s\n", names, regular ? "yes" : "no");
    for (int fd = w; fd <= r; fd++) {
        char path[64], text[256] = {0};
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f) fclose(f);
        text[n] = 0;
        char *mnt = strstr(text, "mnt_id:");
        if (mnt) *mnt = 0;
        printf("fdinfo of %d:\n%s", fd, text);
    }
    SHOW("fdinfo of a descriptor not open", open("/proc/self/fdinfo/999", O_RDONLY));
    return 0;
}
