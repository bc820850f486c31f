/* Scans that interleave, up and down: three buffers of MiB (argv[1]) each
 * are filled, one is copied into another with memcpy (glibc's copies a
 * large buffer from its end when both sit at the same offset in their
 * pages), a loop runs down all three at once, one adds up another, and
 * a fourth is filled from its end. Prints checksums the host computes the
 * same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long sum(const unsigned long *p, size_t n) {
    unsigned long long s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
    return s;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
    size_t n = (mib << 20) / sizeof(unsigned long);
    unsigned long *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b),
                  *c = malloc(n * sizeof *c);
    if (!a || !b || !c) { perror("malloc"); return 1; }
    for (size_t i = 0; i < n; i++) {
        a[i] = i * 2654435761u;
        b[i] = ~i;
        c[i] = i;
    }
    memcpy(b, a, n * sizeof *a);
    printf("copy %llu\n", sum(b, n));
    for (size_t i = n; i-- > 0;) c[i] = a[i] ^ (b[i] >> 3) ^ i;
    printf("down %llu\n", sum(c, n));
    unsigned long *d = malloc(n * sizeof *d);
    if (!d) { perror("malloc"); return 1; }
    for (size_t i = n; i-- > 0;) d[i] = i ^ c[n - 1 - i];
    printf("fill down %llu\n", sum(d, n));
    return 0;
}
