/* A working set of shared memory: MiB (argv[1]) of MAP_SHARED anonymous
 * memory, or with "sysv" a System V segment (key 0x1e90), which must come
 * zeroed; a forked child writes a pattern over it, and the parent reads it
 * back after the child's exit and prints a checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned char want(size_t i) { return (unsigned char)(i * 2654435761u >> 13) | 1; }

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    int sysv = argc > 2 && strcmp(argv[2], "sysv") == 0;
    size_t len = mib << 20;
    unsigned char *p;
    int id = -1;
    if (sysv) {
        id = shmget(0x1e90, len, IPC_CREAT | 0600);
        if (id < 0) { perror("shmget"); return 1; }
        p = shmat(id, NULL, 0);
        if (p == (void *)-1) { perror("shmat"); return 1; }
        for (size_t i = 0; i < len; i += 4096)
            if (p[i] != 0) { printf("the segment is not new: byte %zu is %u\n", i, p[i]); return 1; }
    } else {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
    }
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) {
        for (size_t i = 0; i < len; i += 64) p[i] = want(i);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { printf("child status %#x\n", status); return 1; }
    unsigned long long sum = 0;
    for (size_t i = 0; i < len; i += 64) {
        if (p[i] != want(i)) { printf("bad byte at %zu: %u != %u\n", i, p[i], want(i)); return 1; }
        sum += p[i];
    }
    if (sysv && shmctl(id, IPC_RMID, NULL) != 0) { perror("shmctl"); return 1; }
    printf("shared %zu MiB checksum %llu\n", mib, sum);
    return 0;
}
