/* The host's installation as it shows through storage keeps its owners and
 * modes: a directory opened to write (or with O_CREAT) is EISDIR, and a
 * user who does not own a file of it cannot write, chmod, chown, truncate
 * or set the times of it, nor of root's files in DIR (argv[1]); times of
 * its own are set, and both times UTIME_OMIT look nothing up. Run as
 * root; prints each call's outcome, which the host gives the same. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void r(const char *what, int x) {
    printf("%s: %s\n", what, x < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char mine[4096], own[4096];
    snprintf(mine, sizeof mine, "%s/mine", argv[1]);
    snprintf(own, sizeof own, "%s/own", argv[1]);
    struct stat s;
    r("open a directory to write", open("/usr/share", O_WRONLY));
    r("open a directory with O_CREAT", open("/usr/share", O_RDONLY | O_CREAT, 0644));
    r("stat it", stat("/usr/share", &s));
    printf("a directory: %d\n", S_ISDIR(s.st_mode));
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    r("both times omitted, of no file", utimensat(AT_FDCWD, "/no/such/file", omit, 0));
    if (mkdir(argv[1], 0777) < 0 && errno != EEXIST) return 2;
    chmod(argv[1], 0777);
    int fd = open(mine, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) return 2;
    close(fd);
    if (setgid(65534) || setuid(65534)) return 2;
    struct timespec set[2] = {{1, 0}, {1, 0}};
    r("chmod root's /etc/passwd", chmod("/etc/passwd", 0777));
    r("chown it", chown("/etc/passwd", 65534, 65534));
    r("touch it", utimensat(AT_FDCWD, "/etc/passwd", NULL, 0));
    r("set its times", utimensat(AT_FDCWD, "/etc/passwd", set, 0));
    r("open it to write", open("/etc/passwd", O_WRONLY));
    r("truncate it", truncate("/etc/passwd", 0));
    r("set the times of root's file", utimensat(AT_FDCWD, mine, set, 0));
    r("touch root's 0600 file", utimensat(AT_FDCWD, mine, NULL, 0));
    fd = open(own, O_CREAT | O_WRONLY, 0600);
    r("make a file of its own", fd);
    close(fd);
    r("set the times of its own", utimensat(AT_FDCWD, own, set, 0));
    r("stat /etc/passwd", stat("/etc/passwd", &s));
    printf("mode %o, owner %d\n", (unsigned)(s.st_mode & 07777), (int)s.st_uid);
    return 0;
}
