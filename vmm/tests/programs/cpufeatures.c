/* What a program learns of the CPU before it picks its code paths: CPUID's
 * OSXSAVE (the OS saves the extended state) and, from XCR0, which state it
 * saves; what libgcc then makes of AVX and AVX2. glibc, OpenSSL and
 * compilers' function multiversioning all decide so. Prints the answers,
 * so the host's and Lego's outputs compare. */
#include <cpuid.h>
#include <stdio.h>

int main(void)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    int osxsave = (c >> 27) & 1;
    printf("OSXSAVE: %s\n", osxsave ? "yes" : "no");
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        printf("XCR0: x87 and SSE %s, AVX %s\n", (lo & 3) == 3 ? "yes" : "no", lo & 4 ? "yes" : "no");
    }
    __builtin_cpu_init();
    printf("AVX usable: %s\n", __builtin_cpu_supports("avx") ? "yes" : "no");
    printf("AVX2 usable: %s\n", __builtin_cpu_supports("avx2") ? "yes" : "no");
    return 0;
}
