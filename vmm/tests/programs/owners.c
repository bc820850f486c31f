/* Owners and groups of files as Linux keeps them, in directory DIR (made
 * here; run as root): what root and a user (uid 1000, gid 100, also in
 * group 60) make is theirs, a set-group-ID directory gives its group (and
 * its set-group-ID bit to directories made in it), chown clears the
 * set-user-ID bit (and set-group-ID with group execute) even when it
 * changes nothing, lchown and fchown, and who may change what (a user may
 * keep its own file's owner and give it a group it is in; chmod only of
 * its own files, and without set-group-ID outside its groups). PostgreSQL
 * refuses a data directory its user does not own, so these must hold on
 * storage as on a host's disk. Prints what it saw, to compare. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"

static void owner(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        printf("%-36s %s\n", path, strerror(errno));
    else
        printf("%-36s uid %u gid %u mode %04o\n", path, st.st_uid, st.st_gid,
               st.st_mode & 07777);
}

static void make(const char *path, mode_t mode)
{
    int fd = open(path, O_CREAT | O_WRONLY, mode);
    if (fd < 0)
        printf("%-36s open: %s\n", path, strerror(errno));
    else
        close(fd);
}

static void as_user(void)
{
    gid_t groups[] = {60};
    if (setgroups(1, groups) || setgid(100) || setuid(1000)) {
        printf("dropping root: %s\n", strerror(errno));
        fflush(stdout);
        _exit(1);
    }
    make("shared/mine", 0640);
    owner("shared/mine");
    SHOW("mkdir shared/mydir", mkdir("shared/mydir", 0750));
    owner("shared/mydir");
    SHOW("symlink shared/mylink", symlink("mine", "shared/mylink"));
    owner("shared/mylink");
    SHOW("mkfifo shared/myfifo", mkfifo("shared/myfifo", 0600));
    owner("shared/myfifo");
    /* Made in a set-group-ID directory of group 50. */
    make("sgid/f", 0644);
    owner("sgid/f");
    SHOW("mkdir sgid/sub", mkdir("sgid/sub", 0755));
    owner("sgid/sub");
    make("sgid/sub/deeper", 0644);
    owner("sgid/sub/deeper");

    SHOW("chown mine to root", chown("shared/mine", 0, -1));
    SHOW("chown mine to itself", chown("shared/mine", 1000, -1));
    SHOW("chgrp mine to a group it is in", chown("shared/mine", -1, 60));
    owner("shared/mine");
    SHOW("chgrp mine to its own gid", chown("shared/mine", -1, 100));
    SHOW("chgrp mine to another group", chown("shared/mine", -1, 61));
    SHOW("lchown of its link", lchown("shared/mylink", -1, 60));
    owner("shared/mylink");
    SHOW("chgrp root's file", chown("rootfile", -1, 100));
    SHOW("chmod root's file", chmod("rootfile", 0666));
    SHOW("chmod mine", chmod("shared/mine", 0600));
    int fd = open("shared/mine", O_RDONLY);
    SHOW("fchmod mine", fchmod(fd, 0604));
    SHOW("fchown mine", fchown(fd, -1, 100));
    close(fd);
    owner("shared/mine");
    /* Its own file, of a group it is not in. */
    SHOW("chmod g+s outside its groups", chmod("sgid/f", 02755));
    owner("sgid/f");
    SHOW("chmod g+s in its group", chmod("shared/mine", 02755));
    owner("shared/mine");
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: owners DIR\n");
        return 2;
    }
    umask(022);
    if (mkdir(argv[1], 0755) && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    if (chdir(argv[1])) {
        perror(argv[1]);
        return 1;
    }
    chmod(".", 0755);
    SHOW("mkdir shared", mkdir("shared", 0777));
    chmod("shared", 0777);
    SHOW("mkdir sgid", mkdir("sgid", 0777));
    SHOW("chown sgid to 0:50", chown("sgid", 0, 50));
    SHOW("chmod sgid 2777", chmod("sgid", 02777));
    owner("sgid");
    make("rootfile", 0644);
    owner("rootfile");

    make("suid", 0755);
    chmod("suid", 06755);
    SHOW("chown suid -1 -1", chown("suid", -1, -1));
    owner("suid");
    chmod("suid", 02745);
    SHOW("chown sgid without g+x -1 -1", chown("suid", -1, -1));
    owner("suid");
    chmod("suid", 04755);
    SHOW("chown suid to 7:8", chown("suid", 7, 8));
    owner("suid");
    SHOW("chmod a directory 6755", (mkdir("dir", 0755), chmod("dir", 06755)));
    SHOW("chown it -1 -1", chown("dir", -1, -1));
    owner("dir");

    SHOW("symlink link", symlink("rootfile", "link"));
    SHOW("lchown link to 9:10", lchown("link", 9, 10));
    owner("link");
    owner("rootfile");
    SHOW("chown through link to 3:4", chown("link", 3, 4));
    owner("link");
    owner("rootfile");
    int fd = open("rootfile", O_RDONLY);
    SHOW("fchown rootfile to 11:12", fchown(fd, 11, 12));
    close(fd);
    owner("rootfile");
    SHOW("chown rootfile to 0:0", chown("rootfile", 0, 0));

    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        as_user();
    int status = 0;
    waitpid(child, &status, 0);
    printf("the user's part exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    owner("shared/mine");
    SHOW("root chowns the user's file", chown("shared/mine", 0, 0));
    owner("shared/mine");
    return 0;
}
