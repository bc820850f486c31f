/* Pages read, then changed, in a working set larger than the processor's
 * ExCache: counters over MiB (argv[1]) of memory, each pass reading every
 * counter and updating it (so pages come back from memory components for
 * a read and are written after), the middle pass only on every other page
 * (the rest leave the cache unchanged). Prints a checksum the host
 * computes the same way; a lost write shows as a bad counter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define STRIDE 16                /* one counter per 64 bytes */
#define PER_PAGE (4096 / 4)      /* counters' index step per page */

static int changed(size_t i, int pass) {
    return pass != 2 || (i / PER_PAGE) % 2 == 0;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t n = (mib << 20) / sizeof(uint32_t);
    uint32_t *p = malloc(n * sizeof(uint32_t));
    if (!p) { perror("malloc"); return 1; }
    for (size_t i = 0; i < n; i += STRIDE) p[i] = (uint32_t)i;
    for (int pass = 1; pass <= 3; pass++)
        for (size_t i = 0; i < n; i += STRIDE)
            if (changed(i, pass)) p[i] = p[i] * 3 + (uint32_t)pass;
    unsigned long long sum = 0;
    for (size_t i = 0; i < n; i += STRIDE) {
        uint32_t want = (uint32_t)i;
        for (int pass = 1; pass <= 3; pass++)
            if (changed(i, pass)) want = want * 3 + (uint32_t)pass;
        if (p[i] != want) { printf("bad counter at %zu: %u != %u\n", i, p[i], want); return 1; }
        sum += p[i];
    }
    printf("rewrote %zu MiB checksum %llu\n", mib, sum);
    return 0;
}
