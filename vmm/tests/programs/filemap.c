/* Read-only mappings of a host file (the program's own binary), whose
 * pages Lego reads from the file at their first access instead of copying
 * them to a memory component: what they show against read(), at an
 * offset, with the last page's tail; in a forked child and in two threads
 * at once; after mprotect to PROT_NONE and back, MADV_DONTNEED, mremap,
 * a fixed anonymous mapping over part of them, munmap and mapping again;
 * a write refused, then allowed by mprotect without the file changing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

static char *want;
static long size;

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "yes" : "no"); }

static int zeros(const char *p, long n) {
    for (long i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static sigjmp_buf back;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(back, 1);
}

struct half {
    const char *map;
    long from, to;
    int same;
};

static void *read_half(void *arg) {
    struct half *h = arg;
    /* Page by page, backwards: no read-ahead helps. */
    h->same = 1;
    for (long at = h->to - PG; at >= h->from; at -= PG)
        if (memcmp(h->map + at, want + at, PG))
            h->same = 0;
    return NULL;
}

int main(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        perror("/proc/self/exe");
        return 1;
    }
    size = st.st_size;
    want = malloc(size);
    if (!want || pread(fd, want, size, 0) != size) {
        perror("pread");
        return 1;
    }
    long whole = (size + PG - 1) / PG * PG;

    char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    check("mapped", p != MAP_FAILED);
    check("the mapping shows the file", !memcmp(p, want, size));
    check("the last page ends in zeros", zeros(p + size, whole - size));
    char *q = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 2 * PG);
    check("at an offset", q != MAP_FAILED && !memcmp(q, want + 2 * PG, 3 * PG));
    check("a shared read-only mapping too", ({
              char *s = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
              int ok = s != MAP_FAILED && !memcmp(s, want, size);
              munmap(s, size);
              ok;
          }));

    char *r = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    pid_t child = fork();
    if (child == 0)
        _exit(memcmp(r, want, size) ? 1 : 0);
    int status;
    waitpid(child, &status, 0);
    check("a forked child sees it", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Two threads, each its half, pages not touched before. */
    char *t = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    long mid = size / 2 / PG * PG, end = size / PG * PG;
    struct half a = {t, 0, mid, 0}, b = {t, mid, end, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, read_half, &a);
    pthread_create(&tb, NULL, read_half, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    check("two threads read it at once", a.same && b.same);

    check("PROT_NONE and back", !mprotect(r, size, PROT_NONE) && !mprotect(r, size, PROT_READ) &&
                                    !memcmp(r, want, size));
    check("MADV_DONTNEED reads the file again", !madvise(r, size, MADV_DONTNEED) && !memcmp(r, want, size));
    char *m = mremap(r, whole, whole + 2 * PG, MREMAP_MAYMOVE);
    check("moved by mremap", m != MAP_FAILED && !memcmp(m, want, size));
    char *z = mmap(m + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check("an anonymous page over one of its pages", z == m + PG && zeros(z, PG) &&
                                                          !memcmp(m, want, PG) &&
                                                          !memcmp(m + 2 * PG, want + 2 * PG, size - 2 * PG));
    munmap(m, whole + 2 * PG);
    char *again = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    check("unmapped and mapped again", again != MAP_FAILED && !memcmp(again, want, size));

    signal(SIGSEGV, on_segv);
    volatile int refused = 0;
    if (sigsetjmp(back, 1) == 0)
        ((volatile char *)again)[PG + 7] = 'X';
    else
        refused = 1;
    signal(SIGSEGV, SIG_DFL);
    check("a write to it is refused (SIGSEGV)", refused);
    check("made writable", !mprotect(again, size, PROT_READ | PROT_WRITE));
    again[PG + 7] = 'X';
    again[size - 1] ^= 0x55;
    check("written where written", again[PG + 7] == 'X' && again[size - 1] == (char)(want[size - 1] ^ 0x55));
    check("the rest still the file's", !memcmp(again, want, PG + 7) &&
                                           !memcmp(again + PG + 8, want + PG + 8, size - PG - 9));
    check("made read-only again, kept", !mprotect(again, size, PROT_READ) && again[PG + 7] == 'X');
    char *fresh = malloc(size);
    check("the file unchanged", pread(fd, fresh, size, 0) == size && !memcmp(fresh, want, size));
    char *other = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    check("another mapping does not see the write", !memcmp(other, want, size));
    return 0;
}
