/* Private file mappings and truncation: pages past the new end are
 * dropped, the process's own copies too, in every process mapping the
 * file; the page holding the new end keeps what the process wrote.
 * Usage: privtrunc DIR (made if missing). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static int all(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "yes" : "NO"); }

/* stress-ng's memfd check (Linux commit 5abfd71d936a). */
static void memfd_case(void) {
    int fd = memfd_create("privtrunc", 0);
    if (fd < 0 || ftruncate(fd, 2 * PG)) {
        perror("memfd");
        exit(1);
    }
    unsigned char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(m, 0x5a, 2 * PG);
    madvise(m, 2 * PG, MADV_PAGEOUT);
    if (ftruncate(fd, PG) || ftruncate(fd, 2 * PG)) {
        perror("ftruncate");
        exit(1);
    }
    check("memfd: first page keeps its copy", all(m, PG, 0x5a));
    check("memfd: second page zero after the shrink", all(m + PG, PG, 0));
    munmap(m, 2 * PG);
    close(fd);
}

static int make(const char *path, int pages) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    unsigned char page[PG];
    for (int i = 0; i < pages; i++) {
        memset(page, 'A' + i, PG);
        if (write(fd, page, PG) != PG) {
            perror("write");
            exit(1);
        }
    }
    return fd;
}

/* A file mapped privately, written in parts, shared with a child. */
static void file_case(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/privtrunc.dat", dir);
    int fd = make(path, 3);
    unsigned char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    m[0] = 'x';
    m[2 * PG] = 'y';
    int go[2], done[2];
    if (pipe(go) || pipe(done)) {
        perror("pipe");
        exit(1);
    }
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        /* The parent cut and grew the file: this copy lost its third page. */
        int ok = m[0] == 'x' && all(m + 2 * PG, PG, 0);
        c = ok ? '.' : 'x';
        if (write(done[1], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    /* Cut inside the second page: it stays, the third goes. */
    if (ftruncate(fd, PG + 100) || ftruncate(fd, 3 * PG)) {
        perror("ftruncate");
        exit(1);
    }
    check("file: first page keeps the process's write", m[0] == 'x' && all(m + 1, PG - 1, 'A'));
    check("file: the page holding the new end keeps its start", all(m + PG, 100, 'B'));
    check("file: third page zero, the process's write gone", all(m + 2 * PG, PG, 0));
    char c = 'g';
    if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) != 1) {
        perror("pipe");
        exit(1);
    }
    check("file: a forked child's copy lost its third page too", c == '.');
    waitpid(child, NULL, 0);
    munmap(m, 3 * PG);
    /* Emptied by O_TRUNC: a private mapping keeps nothing of it. */
    m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    m[PG] = 'z';
    int again = open(path, O_RDWR | O_TRUNC);
    if (again < 0 || ftruncate(again, 3 * PG)) {
        perror("O_TRUNC");
        exit(1);
    }
    check("file: O_TRUNC drops every page", all(m, 3 * PG, 0));
    munmap(m, 3 * PG);
    close(again);
    close(fd);
    unlink(path);
}

/* A private mapping moved by mremap: the truncation finds it where it went. */
static void moved_case(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/privtrunc-moved.dat", dir);
    int fd = make(path, 4);
    unsigned char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    unsigned char *to = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || to == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    m[3 * PG] = 'w';
    unsigned char *n = mremap(m, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (n != to) {
        perror("mremap");
        exit(1);
    }
    if (ftruncate(fd, 2 * PG) || ftruncate(fd, 4 * PG)) {
        perror("ftruncate");
        exit(1);
    }
    check("moved: first two pages kept", all(n, PG, 'A') && all(n + PG, PG, 'B'));
    check("moved: last two pages zero", all(n + 2 * PG, 2 * PG, 0));
    munmap(n, 4 * PG);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/privtrunc";
    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    memfd_case();
    file_case(dir);
    moved_case(dir);
    return 0;
}
