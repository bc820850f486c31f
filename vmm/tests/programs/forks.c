/* Thirty processes alive at once (a shell's background jobs, make -j):
 * each child says it is up, then waits for the parent to let go. The
 * parent has written 32 MiB first, so thirty copies would be 960 MiB, more
 * than the test's memory component holds: fork shares pages until they
 * are written, as Linux's copy-on-write. Each child checks a page of the
 * parent's and writes its own copy of another; the parent's stay. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 30
#define HEAP (32 << 20)

int main(void)
{
    int up[2], go[2];
    if (pipe(up) || pipe(go)) {
        perror("pipe");
        return 1;
    }
    unsigned char *heap = malloc(HEAP);
    if (!heap)
        return 1;
    for (size_t o = 0; o < HEAP; o += 4096)
        heap[o] = (unsigned char)(o >> 12);
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (pid == 0) {
            char c = 'u';
            size_t mine = (size_t)(i + 1) << 20;
            if (heap[(size_t)i << 12] != (unsigned char)i)
                _exit(101);
            heap[mine] = 0xff;
            if (heap[mine] != 0xff)
                _exit(102);
            close(go[1]);
            if (write(up[1], &c, 1) != 1)
                _exit(100);
            /* EOF once the parent closes its end. */
            while (read(go[0], &c, 1) > 0)
                ;
            _exit(i);
        }
    }
    close(up[1]);
    close(go[0]);
    int alive = 0;
    char c;
    while (alive < CHILDREN && read(up[0], &c, 1) == 1)
        alive++;
    printf("%d children alive at once\n", alive);
    close(go[1]);
    int reaped = 0, sum = 0, status;
    while (wait(&status) > 0) {
        reaped++;
        if (WIFEXITED(status))
            sum += WEXITSTATUS(status);
    }
    printf("reaped %d, exit statuses add up to %d\n", reaped, sum);
    int same = 1;
    for (size_t o = 0; o < HEAP; o += 4096)
        same &= heap[o] == (unsigned char)(o >> 12);
    printf("the parent's pages: %s\n", same ? "as it wrote them" : "changed by a child");
    /* No child left. */
    printf("wait: %s\n", wait(&status) < 0 ? strerror(errno) : "a child");
    return 0;
}
