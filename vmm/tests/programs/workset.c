/* A working set larger than the processor's ExCache: writes a pattern over
 * MiB (argv[1]) of memory, then reads it back twice, and prints a checksum
 * the host computes the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t len = mib << 20;
    unsigned char *p = malloc(len);
    if (!p) { perror("malloc"); return 1; }
    for (size_t i = 0; i < len; i += 64) p[i] = (unsigned char)(i * 2654435761u >> 13);
    unsigned long long sum = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < len; i += 64) {
            unsigned char want = (unsigned char)(i * 2654435761u >> 13);
            if (p[i] != want) { printf("bad byte at %zu: %u != %u\n", i, p[i], want); return 1; }
            sum += p[i];
        }
    printf("working set %zu MiB checksum %llu\n", mib, sum);
    return 0;
}
