/* `..` as Linux walks it: from the directory a symbolic link reached, not
 * the name that led there; getcwd after chdir through a link names the
 * directory reached. In a scratch directory of /tmp, compared with the
 * host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char dir[64];

static void put(const char *rel, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* What the file at `path` (from `at`) holds, or its errno's name. */
static void show(const char *what, int at, const char *path)
{
    char buf[32] = {0};
    int fd = openat(at, path, O_RDONLY);
    if (fd < 0) {
        printf("%s: %s\n", what, errno == ENOENT ? "ENOENT" : errno == ELOOP ? "ELOOP" : strerror(errno));
        return;
    }
    if (read(fd, buf, sizeof buf - 1) < 0)
        strcpy(buf, "?");
    close(fd);
    printf("%s: %s\n", what, buf);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(dir, sizeof dir, "/tmp/lego-dotdot-%d", (int)getpid());
    char p[256], q[256];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/a", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/b", dir);
    mkdir(p, 0755);
    put("f", "top");
    put("a/f", "in a");
    snprintf(p, sizeof p, "%s/l", dir);
    symlink("a/b", p);
    snprintf(p, sizeof p, "%s/loop1", dir);
    snprintf(q, sizeof q, "%s/loop2", dir);
    symlink("loop2", p);
    symlink("loop1", q);

    snprintf(p, sizeof p, "%s/l/../f", dir);
    show("l/../f", AT_FDCWD, p);
    snprintf(p, sizeof p, "%s/l", dir);
    int l = open(p, O_RDONLY | O_DIRECTORY);
    show("openat(l, ../f)", l, "../f");
    show("openat(l, ../../f)", l, "../../f");
    snprintf(p, sizeof p, "%s/missing/../f", dir);
    show("missing/../f", AT_FDCWD, p);
    snprintf(p, sizeof p, "%s/loop1/../f", dir);
    show("loop1/../f", AT_FDCWD, p);

    snprintf(p, sizeof p, "%s/l", dir);
    if (chdir(p) == 0 && getcwd(q, sizeof q)) {
        size_t n = strlen(dir);
        printf("getcwd after chdir(l): %s\n", strncmp(q, dir, n) == 0 ? q + n : q);
    }
    show("../f from there", AT_FDCWD, "../f");

    if (chdir("/proc/self") == 0 && getcwd(q, sizeof q)) {
        snprintf(p, sizeof p, "/proc/%d", (int)getpid());
        printf("getcwd after chdir(/proc/self) is /proc/PID: %s\n", strcmp(p, q) == 0 ? "yes" : q);
    }
    struct stat a, b;
    int same = stat("/proc/self/fd/..", &a) == 0 && stat("/proc/self", &b) == 0 && a.st_ino == b.st_ino &&
               S_ISDIR(a.st_mode);
    printf("/proc/self/fd/.. is /proc/self: %s\n", same ? "yes" : "no");

    /* Names past /proc's and /dev/fd's links: a process's working
     * directory and root, an open directory; not past an open file. */
    snprintf(p, sizeof p, "%s/a", dir);
    chdir(p);
    show("/proc/self/cwd/f", AT_FDCWD, "/proc/self/cwd/f");
    snprintf(p, sizeof p, "/proc/self/root%s/f", dir);
    show("/proc/self/root/DIR/f", AT_FDCWD, p);
    snprintf(p, sizeof p, "/dev/fd/%d/../f", l);
    show("/dev/fd/N/../f, N the link's directory", AT_FDCWD, p);
    int fa = open(".", O_RDONLY | O_DIRECTORY), ff = open("f", O_RDONLY);
    snprintf(p, sizeof p, "/proc/self/fd/%d/f", fa);
    show("/proc/self/fd/N/f", AT_FDCWD, p);
    snprintf(p, sizeof p, "/dev/fd/%d/x", ff);
    show("/dev/fd/N/x, N a file", AT_FDCWD, p);
    snprintf(p, sizeof p, "/dev/fd/%d/x", 99);
    show("/dev/fd/99/x, 99 not open", AT_FDCWD, p);
    close(fa);
    close(ff);

    /* A directory exchanged with another (RENAME_EXCHANGE) takes the
     * working directories in it along, both ways. */
    char e1[128], e2[128];
    snprintf(e1, sizeof e1, "%s/e1", dir);
    snprintf(e2, sizeof e2, "%s/e2", dir);
    mkdir(e1, 0755);
    mkdir(e2, 0755);
    snprintf(p, sizeof p, "%s/s", e1);
    mkdir(p, 0755);
    if (chdir(p) == 0 && syscall(SYS_renameat2, AT_FDCWD, e1, AT_FDCWD, e2, 2 /* RENAME_EXCHANGE */) == 0 &&
        getcwd(q, sizeof q)) {
        size_t n = strlen(dir);
        printf("getcwd after an exchange: %s\n", strncmp(q, dir, n) == 0 ? q + n : q);
    }
    if (chdir(e2) == 0 && syscall(SYS_renameat2, AT_FDCWD, e1, AT_FDCWD, e2, 2) == 0 && getcwd(q, sizeof q)) {
        size_t n = strlen(dir);
        printf("getcwd in the new name's directory after an exchange back: %s\n",
               strncmp(q, dir, n) == 0 ? q + n : q);
    }
    snprintf(p, sizeof p, "%s/s", e1);
    rmdir(p);
    rmdir(e1);
    rmdir(e2);

    chdir("/");
    const char *names[] = {"a/f", "f", "l", "loop1", "loop2"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/a/b", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}
