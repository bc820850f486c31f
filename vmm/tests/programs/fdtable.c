/* The descriptor table as programs see it: /proc/self/fd and /dev/fd
 * listed, close_range closing or marking close-on-exec, its errors. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    SHOW("close_range( 4, ~0U, 0)", syscall(SYS_close_range, 4, ~0U, 0));
    list("/proc/self/fd");
    SHOW("fcntl(4, F_GETFD)", fcntl(4, F_GETFD));
    SHOW("close_range( 9, 8, 0)", syscall(SYS_close_range, 9, 8, 0));
    SHOW("close_range( 0, 8, 0x80)", syscall(SYS_close_range, 0, 8, 0x80));
    SHOW("close_range( 100, 200, 0)", syscall(SYS_close_range, 100, 200, 0));
    return 0;
}
