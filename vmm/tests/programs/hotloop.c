/* Touches a working set of MiB (argv[1]) again and again for SECONDS
 * (argv[2]): every page in order, or (argv[3] "random") pages at random.
 * Used to see the ExCache's sampled hit ratio: near all hits when the set
 * fits the cache, about the cache's share of the set when it does not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 4;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    int random = argc > 3 && strcmp(argv[3], "random") == 0;
    size_t pages = (mib << 20) / 4096;
    unsigned char *p = malloc(pages * 4096);
    if (!p) { perror("malloc"); return 1; }
    /* At random, the first touches are spread too (an odd stride over a
     * power-of-two count visits every page once). */
    for (size_t i = 0; i < pages; i++) {
        size_t pg = random ? (i * 2654435761u) % pages : i;
        p[pg * 4096] = (unsigned char)pg;
    }
    unsigned long long x = 88172645463325252ull, bad = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (since(&t0) < secs)
        for (size_t i = 0; i < pages; i++) {
            size_t pg = i;
            if (random) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pg = x % pages;
            }
            bad += p[pg * 4096] != (unsigned char)pg;
        }
    printf("%s\n", bad ? "bad bytes" : "done");
    return bad != 0;
}
