/* chroot: paths resolve in the new root (absolute ones and `..` stop
 * there, statfs and getxattr too), getcwd shows the working directory
 * from it, a child inherits it, and the errors Linux gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s: %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    char jail[64], path[128];
    snprintf(jail, sizeof jail, "/tmp/chroot-%d", (int)getpid());
    mkdir(jail, 0755);
    snprintf(path, sizeof path, "%s/etc", jail);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/etc/motd", jail);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    write(fd, "inside\n", 7);
    close(fd);
    snprintf(path, sizeof path, "%s/etc/motd", jail);
    errno = 0;
    show("chroot of a file", chroot(path));
    show("chroot of nothing", chroot("/tmp/no-such-dir-here"));
    pid_t c = fork();
    if (c == 0) {
        show("chroot", chroot(jail));
        char cwd[256];
        /* The working directory stays, outside the root, until a chdir. */
        show("chdir /", chdir("/"));
        printf("getcwd: %s\n", getcwd(cwd, sizeof cwd));
        char buf[32] = {0};
        fd = open("/etc/motd", O_RDONLY);
        read(fd, buf, sizeof buf - 1);
        close(fd);
        printf("/etc/motd: %s", buf);
        /* Calls that take a path and look at the file it names. */
        struct statfs sf;
        show("statfs /etc/motd", statfs("/etc/motd", &sf));
        char v[8];
        show("getxattr /etc/motd", getxattr("/etc/motd", "user.none", v, sizeof v));
        show("open ../../etc/motd", fd = open("../../etc/motd", O_RDONLY));
        close(fd);
        show("stat /etc/passwd (outside)", access("/etc/passwd", F_OK));
        show("chdir etc", chdir("etc"));
        printf("getcwd: %s\n", getcwd(cwd, sizeof cwd));
        show("chdir ../..", chdir("../.."));
        printf("getcwd: %s\n", getcwd(cwd, sizeof cwd));
        fd = open("/made", O_WRONLY | O_CREAT, 0644);
        show("create /made", fd);
        close(fd);
        pid_t g = fork();
        if (g == 0) {
            _exit(access("/etc/motd", R_OK) == 0 ? 0 : 1);
        }
        int st;
        waitpid(g, &st, 0);
        printf("a child sees the same root: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    snprintf(path, sizeof path, "%s/made", jail);
    printf("made inside the jail: %d\n", access(path, F_OK) == 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/etc/motd", jail);
    unlink(path);
    snprintf(path, sizeof path, "%s/etc", jail);
    rmdir(path);
    rmdir(jail);
    return 0;
}
