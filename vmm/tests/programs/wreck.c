/* Fills MiB (argv[1]) of memory, then writes CR3 from user mode. On an
 * ordinary KVM host the CPU refuses that (SIGSEGV); under PVM, KVM
 * carries it out as if the monitor had, and the processor's monitor
 * triple-faults (README, isolation). Either way, what the process held at
 * its memory component must be freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 32) << 20;
    char *p = malloc(len);
    if (!p) { perror("malloc"); return 1; }
    memset(p, 7, len);
    printf("filled\n");
    fflush(stdout);
    unsigned long zero = 0;
    __asm__ volatile("mov %0, %%cr3" :: "r"(zero) : "memory");
    printf("still here\n");
    return p[len / 2];
}
