/* remap_file_pages, as Linux emulates it: pages of a shared file mapping
 * and of shared anonymous memory made to show other pages of their
 * object, writes through them reaching the file, and the errors. Prints
 * what it sees; the host's output must match. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void show(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : ""); }

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/remapfile.dat";
    long pg = 4096;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror("open"); return 1; }
    char page[4096];
    for (int i = 0; i < 4; i++) {
        memset(page, 'A' + i, sizeof page);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) { perror("write"); return 1; }
    }
    char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    show("remap page 0 to file page 3", remap_file_pages(m, pg, 0, 3, 0));
    printf("pages now %c %c %c %c\n", m[0], m[pg], m[2 * pg], m[3 * pg]);
    m[0] = 'x';
    msync(m, 4 * pg, MS_SYNC);
    char c = 0;
    pread(fd, &c, 1, 3 * pg);
    printf("file page 3 starts with %c, page 3 of the mapping with %c\n", c, m[3 * pg]);
    show("remap two pages to 0", remap_file_pages(m + 2 * pg, 2 * pg, 0, 0, MAP_NONBLOCK));
    printf("pages now %c %c %c %c\n", m[0], m[pg], m[2 * pg], m[3 * pg]);
    show("prot not 0", remap_file_pages(m, pg, PROT_READ, 1, 0));
    show("bad flags", remap_file_pages(m, pg, 0, 1, MAP_SHARED));
    show("past the mapping", remap_file_pages(m + 3 * pg, 2 * pg, 0, 0, 0));
    show("size 0", remap_file_pages(m, 0, 0, 0, 0));
    show("not mapped", remap_file_pages((void *)(16 * pg), pg, 0, 0, 0));
    /* A page made to show a file page outside what its mapping first
     * covered: a write through it reaches that page at munmap (it was
     * lost on storage). */
    munmap(m, 4 * pg);
    char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    show("remap page 0 of a 2-page mapping to file page 3", remap_file_pages(two, pg, 0, 3, 0));
    two[0] = 'z';
    munmap(two, 2 * pg);
    pread(fd, &c, 1, 3 * pg);
    printf("after munmap, file page 3 starts with %c\n", c);
    char *priv = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
    show("a private mapping", remap_file_pages(priv, pg, 0, 1, 0));
    char *anon = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 4; i++) anon[i * pg] = '0' + i;
    show("shared anonymous page 1 to 3", remap_file_pages(anon + pg, pg, 0, 3, 0));
    printf("anonymous pages now %c %c %c %c\n", anon[0], anon[pg], anon[2 * pg], anon[3 * pg]);
    anon[pg] = 'y';
    printf("a write through it is seen at page 3: %c\n", anon[3 * pg]);
    unlink(path);
    return 0;
}
