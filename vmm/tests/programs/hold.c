/* Fills MiB (argv[1]) of memory with a pattern, says so, waits for a line
 * on stdin (while its memory may change hands), then checks every word
 * and prints a checksum the host computes the same way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t n = (mib << 20) / sizeof(uint64_t);
    uint64_t *p = malloc(n * sizeof(uint64_t));
    if (!p) { perror("malloc"); return 1; }
    for (size_t i = 0; i < n; i++) p[i] = i * 0x9e3779b97f4a7c15ull;
    printf("filled %zu MiB\n", mib);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 2;
    unsigned long long sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != i * 0x9e3779b97f4a7c15ull) {
            printf("bad word at %zu\n", i);
            return 1;
        }
        sum += p[i] >> 32;
    }
    printf("checked %zu MiB sum %llu\n", mib, sum);
    return 0;
}
