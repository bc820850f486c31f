/* Locked memory as Linux keeps it: VmLck counts what mlock, MAP_LOCKED
 * and mlockall lock, once each, and drops with munlock, munmap and
 * munlockall; a fork child starts with none; mremap takes the lock along;
 * madvise may not drop locked pages nor msync invalidate them; and
 * RLIMIT_MEMLOCK bounds a user without CAP_IPC_LOCK (EPERM at 0, ENOMEM
 * past it, EAGAIN for a mapping); smaps shows a locked mapping resident
 * and locked; a System V segment's lock goes at shmdt, and a shared mapping's follows
 * mremap. Run as root, on the host and on Lego. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "check.h"

static long vmlck(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* The Rss and Locked of the mapping at `at` in /proc/self/smaps. */
static void smaps_of(void *at)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[256];
    int in = 0;
    long rss = -1, locked = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            in = start == (unsigned long)at;
            continue;
        }
        if (in)
            sscanf(line, "Rss: %ld", &rss), sscanf(line, "Locked: %ld", &locked);
    }
    if (f)
        fclose(f);
    printf("  in smaps: Rss %ld kB, Locked %ld kB\n", rss, locked);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    const long pg = 4096;
    long base = vmlck();
    printf("VmLck at start: %ld kB\n", base);
    char *a = mmap(0, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SHOW("mlock of 3 pages", mlock(a, 3 * pg));
    SHOW("mlock of 2 of them and one more, not page-aligned", mlock(a + 2 * pg + 100, pg));
    printf("locked: %ld kB\n", vmlck() - base);
    SHOW("munlock of the first", munlock(a, pg));
    printf("locked: %ld kB\n", vmlck() - base);
    SHOW("madvise MADV_DONTNEED of a locked page", madvise(a + pg, pg, MADV_DONTNEED));
    SHOW("madvise MADV_FREE of a locked page", madvise(a + pg, pg, MADV_FREE));
    SHOW("madvise MADV_DONTNEED of an unlocked one", madvise(a, pg, MADV_DONTNEED));
    SHOW("msync MS_INVALIDATE of a locked page", msync(a + pg, pg, MS_INVALIDATE));
    SHOW("msync MS_SYNC of it", msync(a + pg, pg, MS_SYNC));
    munmap(a + 6 * pg, pg);
    SHOW("mlock from a hole", mlock(a + 6 * pg, 2 * pg));

    char *b = mmap(0, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    printf("MAP_LOCKED of 16 pages: %ld kB locked\n", vmlck() - base);
    smaps_of(b);
    pid_t child = fork();
    if (child == 0) {
        printf("  a fork child: %ld kB locked\n", vmlck() - base);
        _exit(0);
    }
    waitpid(child, 0, 0);
    b = mremap(b, 16 * pg, 32 * pg, MREMAP_MAYMOVE);
    printf("mremap of it to 32 pages: %ld kB locked\n", vmlck() - base);
    munmap(b, 32 * pg);
    munmap(a, 8 * pg);
    printf("all unmapped: %ld kB locked\n", vmlck() - base);

    SHOW("mlockall(MCL_CURRENT | MCL_FUTURE)", mlockall(MCL_CURRENT | MCL_FUTURE));
    long all = vmlck();
    char *c = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("  what was mapped is locked: %s; a new mapping after: %ld kB more\n",
           all > 64 ? "yes" : "no", vmlck() - all);
    SHOW("munlockall", munlockall());
    printf("  locked after: %ld kB\n", vmlck());
    munmap(c, 4 * pg);
    SHOW("mlockall(MCL_ONFAULT) alone", mlockall(MCL_ONFAULT));

    child = fork();
    if (child == 0) {
        setresuid(65534, 65534, 65534);
        char *d = mmap(0, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        struct rlimit two = { 2 * pg, 2 * pg }, none = { 0, 0 };
        setrlimit(RLIMIT_MEMLOCK, &two);
        printf("  not root, a limit of 2 pages:\n");
        SHOW("  mlock of 3 pages", mlock(d, 3 * pg));
        SHOW("  mlock of 2", mlock(d, 2 * pg));
        SHOW("  mlock of the same 2 again", mlock(d, 2 * pg));
        errno = 0;
        void *e = mmap(0, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
        printf("  MAP_LOCKED past it: %s\n", e == MAP_FAILED ? strerror(errno) : "mapped");
        SHOW("  mlockall(MCL_CURRENT)", mlockall(MCL_CURRENT));
        SHOW("  munlock", munlock(d, 2 * pg));
        setrlimit(RLIMIT_MEMLOCK, &none);
        SHOW("  mlock under a limit of 0", mlock(d, pg));
        SHOW("  mlockall under a limit of 0", mlockall(MCL_FUTURE));
        _exit(0);
    }
    waitpid(child, 0, 0);

    /* A System V segment locked, then detached: its lock goes with it. */
    int id = shmget(IPC_PRIVATE, 4 * pg, IPC_CREAT | 0600);
    char *s = shmat(id, 0, 0);
    long before = vmlck();
    SHOW("mlock of an attached segment", mlock(s, 4 * pg));
    printf("locked: %ld kB more\n", vmlck() - before);
    SHOW("shmdt", shmdt(s));
    printf("after shmdt: %ld kB more\n", vmlck() - before);
    shmctl(id, IPC_RMID, 0);

    /* Locked shared memory shrunk by mremap: the lock follows. */
    char *m = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    before = vmlck();
    SHOW("mlock of 4 shared pages", mlock(m, 4 * pg));
    char *n = mremap(m, 4 * pg, 2 * pg, 0);
    printf("mremap to 2 pages: %s, locked: %ld kB more\n", n == MAP_FAILED ? strerror(errno) : "done",
           vmlck() - before);
    SHOW("munmap of them", munmap(n, 2 * pg));
    printf("after munmap: %ld kB more\n", vmlck() - before);
    return 0;
}
