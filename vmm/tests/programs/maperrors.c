/* The errors Linux gives the memory calls for the usual mistakes, and what
 * it takes that looks like one: mmap's MAP_SHARED_VALIDATE, protection
 * bits past PROT_EXEC, a file open for writing only; munmap of no bytes;
 * PROT_GROWSDOWN off the stack and on it; mremap of an old length of 0;
 * msync of a range not all mapped; a shared mapping of /dev/zero open
 * for reading only, or of a memfd sealed against writes, which may not
 * be or become writable; mremap to a named place (MREMAP_FIXED) and
 * leaving the old range mapped (MREMAP_DONTUNMAP), with their checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define MAPPED(what, expr)                                                   \
    do {                                                                     \
        errno = 0;                                                           \
        void *m_ = (expr);                                                   \
        printf("%s: %s\n", what, m_ == MAP_FAILED ? strerror(errno) : "mapped"); \
    } while (0)

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    const long pg = 4096;
    MAPPED("MAP_SHARED_VALIDATE, anonymous",
           mmap(0, pg, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0));
    char path[64];
    snprintf(path, sizeof path, "/tmp/maperrors-%d", (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ftruncate(fd, pg);
    MAPPED("MAP_SHARED_VALIDATE of a file", mmap(0, pg, PROT_READ, MAP_SHARED_VALIDATE, fd, 0));
    MAPPED("MAP_SHARED_VALIDATE with a flag Linux has not",
           mmap(0, pg, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, fd, 0));
    MAPPED("MAP_SHARED_VALIDATE with MAP_SYNC (no DAX)",
           mmap(0, pg, PROT_READ, MAP_SHARED_VALIDATE | 0x80000, fd, 0));
    MAPPED("a protection bit past PROT_EXEC",
           mmap(0, pg, PROT_READ | 0x100, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    int wo = open(path, O_WRONLY);
    MAPPED("a file open for writing only", mmap(0, pg, PROT_READ, MAP_SHARED, wo, 0));
    close(wo);
    close(fd);
    unlink(path);
    char *a = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    SHOW("munmap of no bytes", munmap(a, 0));
    SHOW("mprotect PROT_GROWSDOWN off the stack", mprotect(a, pg, PROT_READ | PROT_GROWSDOWN));
    SHOW("mprotect PROT_GROWSUP", mprotect(a, pg, PROT_READ | PROT_GROWSUP));
    MAPPED("mremap of the mapping whole (not split)", mremap(a, 4 * pg, 4 * pg, 0));
    MAPPED("mremap of an old length of 0, private", mremap(a, 0, pg, MREMAP_MAYMOVE));
    /* The stack: down to its start, as glibc makes it executable. */
    volatile char here = 0;
    char *sp = (char *)((unsigned long)&here & ~(pg - 1));
    SHOW("mprotect PROT_GROWSDOWN on the stack",
         mprotect(sp, pg, PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN));
    printf("the stack still works: %d\n", here == 0);
    munmap(a + 2 * pg, pg);
    SHOW("msync of a range with a hole", msync(a, 4 * pg, MS_SYNC));
    SHOW("msync of the mapped part", msync(a, 2 * pg, MS_ASYNC));
    int zero = open("/dev/zero", O_RDONLY);
    MAPPED("/dev/zero read-only, shared and writable",
           mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0));
    char *z = mmap(0, pg, PROT_READ, MAP_SHARED, zero, 0);
    SHOW("mprotect it PROT_WRITE", mprotect(z, pg, PROT_READ | PROT_WRITE));
    char *zp = mmap(0, pg, PROT_READ, MAP_PRIVATE, zero, 0);
    SHOW("mprotect a private one PROT_WRITE", mprotect(zp, pg, PROT_READ | PROT_WRITE));
    close(zero);
    int sealed = memfd_create("sealed", MFD_ALLOW_SEALING);
    ftruncate(sealed, pg);
    fcntl(sealed, F_ADD_SEALS, F_SEAL_FUTURE_WRITE);
    char *sm = mmap(0, pg, PROT_READ, MAP_SHARED, sealed, 0);
    SHOW("mprotect PROT_WRITE of a memfd sealed against writes", mprotect(sm, pg, PROT_READ | PROT_WRITE));
    close(sealed);

    /* MREMAP_FIXED: over another mapping, which goes; the old range goes. */
    char *src = mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *dst = mmap(0, 4 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 3; i++)
        src[i * pg] = 'a' + i;
    MAPPED("MREMAP_FIXED without MREMAP_MAYMOVE", mremap(src, 3 * pg, 3 * pg, MREMAP_FIXED, dst));
    MAPPED("MREMAP_FIXED to an unaligned place",
           mremap(src, 3 * pg, 3 * pg, MREMAP_FIXED | MREMAP_MAYMOVE, dst + 1));
    MAPPED("MREMAP_FIXED onto itself",
           mremap(src, 3 * pg, 3 * pg, MREMAP_FIXED | MREMAP_MAYMOVE, src + pg));
    char *moved = mremap(src, 3 * pg, 2 * pg, MREMAP_FIXED | MREMAP_MAYMOVE, dst + pg);
    printf("MREMAP_FIXED, shrinking: %s, holds %c%c, writable %d\n",
           moved == dst + pg ? "at the place named" : "elsewhere", moved[0], moved[pg],
           mprotect(moved, 2 * pg, PROT_READ | PROT_WRITE) == 0);
    SHOW("  the old range", msync(src, pg, MS_ASYNC));
    SHOW("  the page before it, of the mapping it replaced", msync(dst, pg, MS_ASYNC));
    munmap(dst, 4 * pg);
    /* MREMAP_DONTUNMAP: the old range stays, empty. */
    char *keep = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    keep[0] = 'k';
    /* By the system call: C libraries pass the fifth argument only with
     * MREMAP_FIXED (glibc whatever its register holds, which Linux
     * checks). */
    MAPPED("MREMAP_DONTUNMAP to another size",
           (void *)syscall(SYS_mremap, keep, 2 * pg, 3 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0));
    MAPPED("MREMAP_DONTUNMAP with an unaligned address",
           (void *)syscall(SYS_mremap, keep, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 1));
    char *away = (char *)syscall(SYS_mremap, keep, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    printf("MREMAP_DONTUNMAP: moved %d, holds %c; the old range mapped %d, reads %d\n",
           away != MAP_FAILED && away != keep, away[0], msync(keep, 2 * pg, MS_ASYNC) == 0, keep[0]);
    munmap(keep, 2 * pg);
    munmap(away, 2 * pg);
    munmap(a, 4 * pg);
    return 0;
}
