/* process_vm_readv and process_vm_writev as MPI libraries use them
 * (single-copy transfers between processes): a parent reads a child's
 * buffer and writes into it, scattered over several buffers, a partial
 * copy stops at the first bad remote buffer, and the errors: bad flags,
 * too many buffers, no such process, and a user reaching into root's
 * process. Prints what it saw, to compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"


static char shared_text[200000];

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof shared_text; i++)
        shared_text[i] = 'a' + i % 26;
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        /* The child: its copy of shared_text changes to show it is its own. */
        memcpy(shared_text, "CHILD", 5);
        char *heap = malloc(100);
        strcpy(heap, "from the child's heap");
        if (write(up[1], &heap, sizeof heap) != sizeof heap)
            _exit(1);
        char go;
        if (read(down[0], &go, 1) != 1)
            _exit(1);
        /* What the parent wrote. */
        printf("child sees: %.26s | %s\n", shared_text + 1000, heap);
        /* A user cannot reach into root's process. */
        syscall(SYS_setresuid, 1000, 1000, 1000);
        char buf[8];
        struct iovec l = {buf, sizeof buf}, r = {shared_text, sizeof buf};
        SHOW("child as user 1000 reads its parent", process_vm_readv(getppid(), &l, 1, &r, 1, 0));
        _exit(0);
    }
    char *heap;
    if (read(up[0], &heap, sizeof heap) != sizeof heap)
        return 1;
    char a[3], b[40];
    memset(b, 0, sizeof b);
    struct iovec local[2] = {{a, sizeof a}, {b, sizeof b - 1}};
    struct iovec remote[2] = {{shared_text, 5}, {heap, 21}};
    SHOW("read the child's text and heap", process_vm_readv(c, local, 2, remote, 2, 0));
    printf("read: %.3s + %s\n", a, b);

    /* A large read, in pieces of different sizes on each side. */
    static char big[sizeof shared_text];
    struct iovec lbig[3] = {{big, 70000}, {big + 70000, 1}, {big + 70001, sizeof big - 70001}};
    struct iovec rbig[2] = {{shared_text, 100000}, {shared_text + 100000, 100000}};
    SHOW("read 200000 bytes", process_vm_readv(c, lbig, 3, rbig, 2, 0));
    printf("matches the child's text past its first bytes: %s\n",
           memcmp(big + 5, shared_text + 5, sizeof big - 5) == 0 ? "yes" : "no");

    /* A bad remote buffer ends the copy there. */
    struct iovec rbad[2] = {{shared_text, 10}, {(void *)16, 10}};
    struct iovec lone = {big, 20};
    SHOW("read with a bad second remote buffer", process_vm_readv(c, &lone, 1, rbad, 2, 0));
    SHOW("read with only a bad remote buffer", process_vm_readv(c, &lone, 1, rbad + 1, 1, 0));
    struct iovec lbad = {(void *)16, 10};
    SHOW("read into a bad local buffer", process_vm_readv(c, &lbad, 1, remote, 1, 0));

    /* Writes. */
    const char *msg = "written by the parent";
    struct iovec wl[2] = {{(void *)"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26}, {(void *)msg, strlen(msg) + 1}};
    struct iovec wr[2] = {{shared_text + 1000, 26}, {heap, strlen(msg) + 1}};
    SHOW("write the child's text and heap", process_vm_writev(c, wl, 2, wr, 2, 0));

    /* Errors. */
    SHOW("flags 1", process_vm_readv(c, local, 1, remote, 1, 1));
    SHOW("1025 buffers", process_vm_readv(c, local, 1025, remote, 1, 0));
    SHOW("no such process", process_vm_readv(999999, local, 1, remote, 1, 0));
    SHOW("nothing to copy", process_vm_readv(c, local, 0, remote, 1, 0));
    SHOW("nothing to copy, no such process", process_vm_readv(999999, local, 0, remote, 1, 0));
    SHOW("its own memory", process_vm_readv(getpid(), local, 1, remote, 1, 0));

    if (write(down[1], "g", 1) != 1)
        return 1;
    int st;
    waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    return 0;
}
