/* Allocation-heavy work: brk, mmap (large blocks), realloc growing through
 * mremap, free, and a checksum of everything written; then the break moved
 * by hand: what a grown break adds reads as zeros, also where the break
 * had been and was given back, while the page the break ends in keeps its
 * bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The break grown by 1 MiB, written, shrunk to a point inside a page and
 * grown again: "zeros" counts the nonzero bytes above the old break's page
 * (Linux: 0), "kept" whether the partial page kept what was written. */
static unsigned long long mix(unsigned long long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x;
}

static char *set_break(char *to) { return (char *)syscall(SYS_brk, to); }

static void break_by_hand(void) {
    char *base = set_break(0);
    if (set_break(base + (1 << 20)) != base + (1 << 20)) { puts("brk grow failed"); return; }
    memset(base, 0x5a, 1 << 20);
    char *mid = base + (256 << 10) + 100;
    if (set_break(mid) != mid) { puts("brk shrink failed"); return; }
    char *top = mid + (512 << 10);
    if (set_break(top) != top) { puts("brk regrow failed"); return; }
    char *page_end = (char *)(((uintptr_t)mid + 4095) & ~(uintptr_t)4095);
    size_t nonzero = 0;
    for (char *p = page_end; p < top; p++) nonzero += *p != 0;
    int kept = 1;
    for (char *p = mid; p < page_end; p++) kept &= *p == 0x5a;
    /* Fresh pages taken first by a write, then read back. */
    for (char *p = page_end; p < top; p += 4096) *p = 7;
    size_t sevens = 0;
    for (char *p = page_end; p < top; p += 4096) sevens += *p == 7;
    printf("break: zeros nonzero=%zu kept=%d sevens=%zu\n", nonzero, kept, sevens);
    set_break(base);
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
    break_by_hand();
    return 0;
}
