/* execveat and fexecve: a program by a path relative to a directory
 * descriptor, by an open descriptor (AT_EMPTY_PATH, as glibc's and musl's
 * fexecve do it), a script by its descriptor, and the errors Linux gives
 * (a flag it lacks, an empty path without AT_EMPTY_PATH, a directory, a
 * bad descriptor, a symbolic link with AT_SYMLINK_NOFOLLOW); the name each
 * runs by (/proc/self/comm). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

extern char **environ;

static void run(const char *what, int dirfd, const char *path, int flags, const char *arg, int use_fexecve)
{
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {"execat", (char *)arg, 0};
        if (use_fexecve)
            fexecve(dirfd, argv, environ);
        else
            syscall(SYS_execveat, dirfd, path, argv, environ, flags);
        printf("%s: %s\n", what, strerror(errno));
        _exit(1);
    }
    int status;
    waitpid(child, &status, 0);
    printf("%s: exit %d\n", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1) {
        char comm[32] = "";
        FILE *f = fopen("/proc/self/comm", "r");
        if (f && fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = 0;
        if (f)
            fclose(f);
        printf("  running with %s, named %s\n", argv[1], comm);
        return 0;
    }
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char dir_buf[256], base_buf[256];
    strcpy(dir_buf, exe);
    strcpy(base_buf, exe);
    int dir = open(dirname(dir_buf), O_RDONLY | O_DIRECTORY);
    const char *base = basename(base_buf);
    int self = open(exe, O_RDONLY);
    run("relative to a directory", dir, base, 0, "a directory's name", 0);
    run("AT_EMPTY_PATH", self, "", AT_EMPTY_PATH, "its descriptor", 0);
    run("fexecve", self, 0, 0, "fexecve", 1);
    char script[64];
    snprintf(script, sizeof script, "/tmp/execat-%d.sh", (int)getpid());
    int s = open(script, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    const char *text = "#!/bin/sh\necho \"  a script says $1\"\n";
    write(s, text, strlen(text));
    close(s);
    s = open(script, O_RDONLY);
    run("a script by its descriptor", s, "", AT_EMPTY_PATH, "hello", 0);
    char link[64];
    snprintf(link, sizeof link, "/tmp/execat-%d.link", (int)getpid());
    symlink(script, link);
    run("AT_SYMLINK_NOFOLLOW on a link", AT_FDCWD, link, AT_SYMLINK_NOFOLLOW, "x", 0);
    run("the link followed", AT_FDCWD, link, 0, "through a link", 0);
    /* Named by the name it was run by: "exe" (busybox renames itself for
     * its applet then), a link's own name (15 bytes of it). */
    run("/proc/self/exe", AT_FDCWD, "/proc/self/exe", 0, "itself", 0);
    char self_link[64];
    snprintf(self_link, sizeof self_link, "/tmp/execat-self-link-%d", (int)getpid());
    symlink("/proc/self/exe", self_link);
    run("a link to /proc/self/exe", AT_FDCWD, self_link, 0, "itself through a link", 0);
    unlink(self_link);
    run("flag 1", dir, base, 1, "x", 0);
    run("an empty path", self, "", 0, "x", 0);
    run("a directory", dir, "", AT_EMPTY_PATH, "x", 0);
    run("a bad descriptor", 99, base, 0, "x", 0);
    run("a name not there", dir, "not-there", 0, "x", 0);
    char under[80];
    snprintf(under, sizeof under, "%s/x", script);
    run("a name under a file", AT_FDCWD, under, 0, "x", 0);
    /* A first line longer than Linux reads (256 bytes, the last one not
     * the line's): the argument is cut, the interpreter runs. */
    char longer[64];
    snprintf(longer, sizeof longer, "/tmp/execat-long-%d", (int)getpid());
    mkdir(longer, 0755);
    int ld = open(longer, O_RDONLY | O_DIRECTORY);
    char line[400] = "#!/bin/echo   ";
    memset(line + strlen(line), 'a', 300);
    strcat(line, "b\n");
    s = openat(ld, "l.sh", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    write(s, line, strlen(line));
    close(s);
    run("a first line too long", ld, "l.sh", 0, "x", 0);
    unlinkat(ld, "l.sh", 0);
    close(ld);
    rmdir(longer);
    unlink(link);
    unlink(script);
    return 0;
}
