/* mprotect with a SIGSEGV handler: the handler sees the exact address and
 * SEGV_ACCERR, makes the page writable and the write is retried; an
 * unmapped page gives SEGV_MAPERR; PROT_NONE refuses reads too; code
 * copied to a page made PROT_EXEC alone runs there, and a PROT_WRITE page
 * reads, as x86's page tables allow (LTP mprotect04). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *page;
static volatile int faults;
static volatile int last_code;
static volatile int addr_ok;
static volatile char *expect;

static void segv(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    faults++;
    last_code = info->si_code;
    addr_ok = (char *)info->si_addr == expect;
    /* Let the access succeed when it is retried. */
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
    if (info->si_code == SEGV_MAPERR)
        mmap(page + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static const char *code(int c) {
    return c == SEGV_ACCERR ? "SEGV_ACCERR" : c == SEGV_MAPERR ? "SEGV_MAPERR" : "other";
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    page = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(page, "before");
    mprotect(page, 4096, PROT_READ);
    printf("read-only still reads: %s\n", page);
    expect = page + 100;
    page[100] = 'x';
    printf("write to read-only: faults=%d %s addr=%s, then wrote %c\n", faults, code(last_code),
           addr_ok ? "exact" : "wrong", page[100]);
    mprotect(page, 4096, PROT_NONE);
    expect = page + 7;
    char c = page[7];
    printf("read of PROT_NONE: faults=%d %s addr=%s, then read %d\n", faults, code(last_code),
           addr_ok ? "exact" : "wrong", c);
    munmap(page + 4096, 4096);
    expect = page + 4096 + 8;
    page[4096 + 8] = 'y';
    printf("write to unmapped: faults=%d %s addr=%s, then wrote %c\n", faults, code(last_code),
           addr_ok ? "exact" : "wrong", page[4096 + 8]);
    /* A page that was written keeps its data across read-only and back. */
    mprotect(page, 4096, PROT_READ);
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
    printf("data kept: %.6s\n", page);

    /* mov $42, %eax; ret */
    static const unsigned char code42[] = {0xb8, 42, 0, 0, 0, 0xc3};
    char *x = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(x, code42, sizeof code42);
    mprotect(x, 4096, PROT_EXEC);
    int before = faults;
    int (*fn)(void) = (int (*)(void))(void *)x;
    printf("code in a PROT_EXEC page: returned %d, faults %d\n", fn(), faults - before);
    char *w = mmap(NULL, 4096, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    w[5] = 'w';
    printf("a PROT_WRITE page reads back: %c, faults %d\n", *(volatile char *)(w + 5), faults - before);
    return 0;
}
