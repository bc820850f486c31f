/* Path walks as every file system must answer them, shared by
 * tmpfiles.c (the tmpfs) and storefiles.c (storage): names under a file
 * are ENOTDIR wherever the walk meets it, a name longer than NAME_MAX is
 * ENAMETOOLONG (LTP's link04, readlink03, statfs02, chdir04), "file/" is
 * no directory; and a working directory renamed stays the working
 * directory (LTP's inotify02 renames its own). `at` names a file in the
 * program's directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

static void walk_fails(const char *what, long r, int expect)
{
    printf("%s: %s\n", what, r == -1 && errno == expect ? strerror(expect) : "did not fail as expected");
}

static void walk_errors(const char *(*at)(const char *))
{
    struct stat nst;
    struct statfs nsf;
    char nb[64], longname[300], here[512];
    close(open(at("plain"), O_CREAT | O_WRONLY, 0644));
    walk_fails("stat under a file", stat(at("plain/x"), &nst), ENOTDIR);
    walk_fails("open under a file", open(at("plain/x"), O_RDONLY), ENOTDIR);
    walk_fails("create under a file", open(at("plain/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR);
    walk_fails("readlink under a file", readlink(at("plain/x"), nb, sizeof nb), ENOTDIR);
    walk_fails("statfs under a file", statfs(at("plain/x"), &nsf), ENOTDIR);
    walk_fails("mkdir under a file", mkdir(at("plain/x"), 0755), ENOTDIR);
    walk_fails("unlink under a file", unlink(at("plain/x")), ENOTDIR);
    walk_fails("rename from under a file", rename(at("plain/x"), at("y")), ENOTDIR);
    walk_fails("access of file/", access(at("plain/"), F_OK), ENOTDIR);
    walk_fails("readlink of the working directory's empty name", readlink("", nb, sizeof nb), ENOENT);
    memset(longname, 'n', 299);
    longname[299] = 0;
    walk_fails("stat of a 299-byte name", stat(at(longname), &nst), ENAMETOOLONG);
    unlink(at("plain"));

    mkdir(at("walked"), 0755);
    getcwd(here, sizeof here);
    chdir(at("walked"));
    rename(at("walked"), at("renamed"));
    close(open("made", O_CREAT | O_WRONLY, 0644));
    printf("a file made in the working directory after its rename: %s\n",
           access(at("renamed/made"), F_OK) == 0 ? "yes" : "no");
    unlink(at("renamed/made"));
    chdir(here);
    rmdir(at("renamed"));
}
