/* Allocation-heavy work: brk, mmap (large blocks), realloc growing through
 * mremap, free, and a checksum of everything written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static unsigned long long mix(unsigned long long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x;
}

int main(void) {
    unsigned long long sum = 0;
    /* Many small blocks (brk). */
    enum { N = 20000 };
    char **small = malloc(N * sizeof *small);
    for (int i = 0; i < N; i++) {
        size_t len = 16 + (mix(i) % 200);
        small[i] = malloc(len);
        memset(small[i], (char)i, len);
    }
    for (int i = 0; i < N; i += 2) free(small[i]);
    for (int i = 1; i < N; i += 2) sum += (unsigned char)small[i][5];
    /* Large blocks (mmap) and a realloc that grows them (mremap). */
    size_t len = 1 << 20;
    unsigned char *big = malloc(len);
    for (size_t i = 0; i < len; i++) big[i] = (unsigned char)mix(i);
    for (int step = 0; step < 5; step++) {
        size_t nlen = len * 2;
        big = realloc(big, nlen);
        if (!big) { puts("realloc failed"); return 1; }
        for (size_t i = len; i < nlen; i++) big[i] = (unsigned char)mix(i);
        len = nlen;
    }
    for (size_t i = 0; i < len; i += 4093) sum += big[i];
    /* Shrink it back, and an anonymous mapping of our own. */
    big = realloc(big, 4096);
    sum += big[100];
    unsigned char *m = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { puts("mmap failed"); return 1; }
    for (size_t i = 0; i < (8u << 20); i += 4096) { sum += m[i]; m[i] = 1; }
    munmap(m + (1 << 20), 1 << 20);
    m[0] = 2;
    sum += m[0];
    printf("sum=%llu len=%zu\n", sum, len);
    free(big);
    return 0;
}
