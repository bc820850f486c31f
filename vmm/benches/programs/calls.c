/* The benchmark program, run the same on the host and on Lego:
 *   calls getpid N        N getpid calls; ns per call
 *   calls clock N         N clock_gettime(CLOCK_MONOTONIC) calls (the vDSO)
 *   calls pipe N          N rounds of a 4 KiB write to a pipe and its read
 *   calls cpu MIB ROUNDS  ROUNDS passes of arithmetic over MIB of memory
 *   calls true            nothing (start-to-exit)
 *   calls fork N          N rounds of fork, the child's _exit and waitpid
 *   calls spawn N         N rounds of fork, the child's execve of this
 *                         program with "true", and waitpid
 * Prints "ns_per_op=..." (or "ms=...") measured inside the program, so
 * boot and teardown are not counted except for `true`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *what = argv[1];
    if (!strcmp(what, "true")) return 0;
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(what, "getpid")) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) syscall(SYS_getpid);
        printf("ns_per_op=%.1f\n", n ? (now_ns() - t0) / n : 0.0);
        return 0;
    }
    if (!strcmp(what, "clock")) {
        struct timespec t;
        double t0 = now_ns();
        for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
        printf("ns_per_op=%.1f\n", n ? (now_ns() - t0) / n : 0.0);
        return 0;
    }
    if (!strcmp(what, "pipe")) {
        int fds[2];
        if (pipe(fds)) return 1;
        static char buf[4096];
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(fds[1], buf, sizeof buf) != sizeof buf) return 1;
            if (read(fds[0], buf, sizeof buf) != sizeof buf) return 1;
        }
        printf("ns_per_op=%.1f\n", n ? (now_ns() - t0) / n : 0.0);
        return 0;
    }
    if (!strcmp(what, "fork") || !strcmp(what, "spawn")) {
        int spawn = !strcmp(what, "spawn");
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid < 0) return 1;
            if (pid == 0) {
                if (spawn) execl(argv[0], argv[0], "true", (char *)0);
                _exit(spawn ? 127 : 0);
            }
            int status;
            if (waitpid(pid, &status, 0) != pid || status != 0) return 1;
        }
        printf("ns_per_op=%.1f\n", n ? (now_ns() - t0) / n : 0.0);
        return 0;
    }
    if (!strcmp(what, "cpu")) {
        long rounds = argc > 3 ? atol(argv[3]) : 1;
        size_t len = (size_t)n << 20;
        unsigned long *a = malloc(len);
        if (!a) return 1;
        size_t words = len / sizeof *a;
        for (size_t i = 0; i < words; i++) a[i] = i * 2654435761u;
        double t0 = now_ns();
        unsigned long sum = 0;
        for (long r = 0; r < rounds; r++)
            for (size_t i = 0; i < words; i++) {
                a[i] = a[i] * 6364136223846793005UL + 1442695040888963407UL;
                sum += a[i] >> 17;
            }
        printf("ms=%.1f sum=%lu\n", (now_ns() - t0) / 1e6, sum);
        return 0;
    }
    return 2;
}
