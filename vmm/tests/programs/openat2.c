/* openat2 under the directory given as argv[1] (made here; it must not
 * exist): struct open_how checked as Linux checks it, and the walk under
 * each RESOLVE_* flag (links refused, a walk kept beneath its directory or
 * rooted in it, one file system). The output names no inode or directory,
 * so runs on different file systems print the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Not every C library's headers have them (musl's do not). */
struct how {
    uint64_t flags, mode, resolve;
};
#define NO_XDEV 0x01
#define NO_MAGICLINKS 0x02
#define NO_SYMLINKS 0x04
#define BENEATH 0x08
#define IN_ROOT 0x10
#define CACHED 0x20
#define SYS_OPENAT2 437

static const char *dir;

static const char *at(const char *name) {
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static int dfd;

/* openat2 of `path` from the test's directory; prints what it opened
 * (the file's first bytes, or its kind) or the error. */
static void try(const char *what, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct how h = {flags, mode, resolve};
    int fd = syscall(SYS_OPENAT2, dfd, path, &h, sizeof h);
    if (fd < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    struct stat st;
    char b[16] = {0};
    fstat(fd, &st);
    if (S_ISREG(st.st_mode) && !(flags & O_PATH) && (flags & O_ACCMODE) != O_WRONLY && path[0] != '/')
        printf("%s: a file [%.*s]\n", what, (int)read(fd, b, sizeof b - 1), b);
    else
        printf("%s: %s\n", what, S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a link" : S_ISREG(st.st_mode) ? "a file" : "opened");
    close(fd);
}

static void sized(const char *what, size_t size, int tail) {
    char buf[128] = {0};
    struct how *h = (void *)buf;
    h->flags = O_RDONLY;
    if (tail)
        buf[size - 1] = 1;
    int fd = syscall(SYS_OPENAT2, dfd, "a/f", buf, size);
    printf("%s: %s\n", what, fd >= 0 ? "opened" : strerror(errno));
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv) {
    dir = argc > 1 ? argv[1] : "/tmp/lego-openat2";
    if (mkdir(dir, 0755) != 0 || mkdir(at("a"), 0755) != 0 || mkdir(at("a/b"), 0755) != 0) {
        perror("mkdir");
        return 1;
    }
    int fd = open(at("a/f"), O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || write(fd, "eff", 3) != 3) {
        perror("a/f");
        return 1;
    }
    close(fd);
    symlink("a/f", at("lnk"));
    symlink("/etc/hostname", at("abs"));
    symlink("../", at("up"));
    symlink("a/missing", at("dangling"));
    symlink("loop", at("loop"));
    dfd = open(dir, O_RDONLY | O_DIRECTORY);

    try("plain", "a/f", O_RDONLY, 0, 0);
    sized("a struct smaller than the first version", 16, 0);
    sized("a larger struct, its tail zero", 64, 0);
    sized("a larger struct with a field set past ours", 64, 1);
    sized("a struct larger than a page", 8192, 0);
    try("an unknown open flag", "a/f", O_RDONLY | (1u << 30), 0, 0);
    try("a mode without O_CREAT", "a/f", O_RDONLY, 0644, 0);
    try("a mode with bits beyond 07777", "new", O_CREAT | O_WRONLY, 010644, 0);
    try("an unknown resolve flag", "a/f", O_RDONLY, 0, 1ull << 40);
    try("RESOLVE_BENEATH with RESOLVE_IN_ROOT", "a/f", O_RDONLY, 0, BENEATH | IN_ROOT);
    try("RESOLVE_CACHED with O_CREAT", "new", O_CREAT | O_WRONLY, 0600, CACHED);
    try("RESOLVE_CACHED", "a/f", O_RDONLY, 0, CACHED);
    {
        int r = syscall(SYS_OPENAT2, dfd, "a/f", NULL, sizeof(struct how));
        printf("no struct: %s\n", r >= 0 ? "opened" : strerror(errno));
    }

    try("beneath: down and up again", "a/b/../f", O_RDONLY, 0, BENEATH);
    try("beneath: a relative link", "lnk", O_RDONLY, 0, BENEATH);
    try("beneath: ..", "..", O_RDONLY, 0, BENEATH);
    try("beneath: an absolute path", "/etc/hostname", O_RDONLY, 0, BENEATH);
    try("beneath: a link to an absolute path", "abs", O_RDONLY, 0, BENEATH);
    try("beneath: a link that climbs out", "up", O_RDONLY, 0, BENEATH);
    try("beneath: a link not followed", "abs", O_PATH | O_NOFOLLOW, 0, BENEATH);
    try("beneath: creates through a dangling link", "dangling", O_CREAT | O_WRONLY, 0600, BENEATH);
    try("beneath: O_CREAT|O_EXCL on a link", "lnk", O_CREAT | O_EXCL | O_WRONLY, 0600, BENEATH);
    try("beneath: a directory", "a/b/", O_RDONLY, 0, BENEATH);
    try("beneath: a file as a directory", "a/f/", O_RDONLY, 0, BENEATH);
    try("beneath: through a file", "a/f/x", O_RDONLY, 0, BENEATH);
    try("beneath: missing", "a/nope", O_RDONLY, 0, BENEATH);
    try("beneath: a loop", "loop", O_RDONLY, 0, BENEATH);
    try("in root: an absolute path", "/a/f", O_RDONLY, 0, IN_ROOT);
    try("in root: .. at the root", "../../a/f", O_RDONLY, 0, IN_ROOT);
    try("in root: an absolute link", "abs", O_RDONLY, 0, IN_ROOT);
    try("in root: a link that climbs", "up/lnk", O_RDONLY, 0, IN_ROOT);
    try("no symlinks", "lnk", O_RDONLY, 0, NO_SYMLINKS);
    try("no symlinks, the link itself", "lnk", O_PATH | O_NOFOLLOW, 0, NO_SYMLINKS);
    try("no symlinks on the way", "up/a/f", O_RDONLY, 0, NO_SYMLINKS);
    try("no magic links: /proc/self/exe", "/proc/self/exe", O_RDONLY, 0, NO_MAGICLINKS);
    try("no magic links: /proc/self is not one", "/proc/self/comm", O_RDONLY, 0, NO_MAGICLINKS);
    try("no magic links: the cwd's link", "/proc/self/cwd", O_RDONLY, 0, NO_MAGICLINKS);
    try("a magic link followed", "/proc/self/cwd", O_RDONLY | O_DIRECTORY, 0, 0);
    try("no xdev: into /proc", "/proc/self/comm", O_RDONLY, 0, NO_XDEV);
    try("no xdev: within the directory", "a/f", O_RDONLY, 0, NO_XDEV);
    try("no xdev: a link within", "lnk", O_RDONLY, 0, NO_XDEV);
    {
        struct stat st;
        printf("made through the dangling link: %s\n",
               stat(at("a/missing"), &st) == 0 && (st.st_mode & 0777) == 0600 ? "yes" : "no");
    }
    unlink(at("a/missing"));
    unlink(at("a/f"));
    rmdir(at("a/b"));
    rmdir(at("a"));
    unlink(at("lnk"));
    unlink(at("abs"));
    unlink(at("up"));
    unlink(at("dangling"));
    unlink(at("loop"));
    printf("removed: %s\n", rmdir(dir) == 0 ? "yes" : strerror(errno));
    return 0;
}
