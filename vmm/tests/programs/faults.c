/* The signals a processor's faults send, as Linux sends them: SIGSEGV's
 * codes and addresses (a write to a read-only page, NULL, an unmapped
 * page, PROT_NONE, a non-canonical address, a privileged instruction),
 * SIGFPE, SIGILL, int3's SIGTRAP, the trap number in the frame; a handler
 * that fixes the protection and returns (the access is made again), one
 * that moves the instruction pointer past ud2, and a stack overflow
 * caught on an alternate stack. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile int sig, code;
static volatile uintptr_t addr;
static volatile long trapno;
static char *page;

static void jump(int s, siginfo_t *si, void *uc)
{
    sig = s;
    code = si->si_code;
    addr = (uintptr_t)si->si_addr;
    trapno = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_TRAPNO];
    siglongjmp(jb, 1);
}

static void fix(int s, siginfo_t *si, void *uc)
{
    (void)uc;
    sig = s;
    code = si->si_code;
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

static void skip(int s, siginfo_t *si, void *uc)
{
    (void)si;
    sig = s;
    ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] += 2; /* ud2's length */
}

#define TRY(what, expect, stmt)                                                                  \
    do {                                                                                         \
        sig = code = 0;                                                                          \
        addr = 1;                                                                                \
        trapno = -1;                                                                             \
        if (!sigsetjmp(jb, 1)) {                                                                 \
            stmt;                                                                                \
        }                                                                                        \
        printf("%-26s signal %2d code %3d address %s trap %ld\n", what, sig, code,              \
               addr == (uintptr_t)(expect) ? "as expected" : "other", trapno);                   \
    } while (0)

void deep(int n)
{
    volatile char b[4096];
    b[0] = n;
    deep(n + 1);
    b[1] = 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    struct sigaction sa = {.sa_sigaction = jump, .sa_flags = SA_SIGINFO | SA_NODEFER};
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, 0);
    page = mmap(0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TRY("write to read-only", page + 100, page[100] = 1);
    TRY("read of NULL+16", 0x10, (void)*(volatile char *)0x10);
    TRY("write to NULL+16", 0x10, *(volatile char *)0x10 = 1);
    munmap(page + 4096, 4096);
    TRY("read of unmapped", page + 4104, (void)*(volatile char *)(page + 4104));
    char *none = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TRY("read of PROT_NONE", none, (void)*(volatile char *)none);
    TRY("non-canonical read", 0, (void)*(volatile char *)0x8000000000000000ull);
    TRY("hlt", 0, __asm__ volatile("hlt"));
    TRY("int3", 0, __asm__ volatile("int3"));
    TRY("divide by zero", addr, {
        volatile int z = 0;
        volatile int x = 5 / z;
        (void)x;
    });
    TRY("ud2", addr, __asm__ volatile("ud2"));

    struct sigaction sf = {.sa_sigaction = fix, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sf, 0);
    sig = 0;
    page[200] = 7;
    printf("fixed by its handler: signal %d code %d, the write made: %s\n", sig, code,
           page[200] == 7 ? "yes" : "no");
    struct sigaction sk = {.sa_sigaction = skip, .sa_flags = SA_SIGINFO};
    sigaction(SIGILL, &sk, 0);
    sig = 0;
    __asm__ volatile("ud2");
    printf("ud2 stepped over by its handler: signal %d\n", sig);

    stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
    sigaltstack(&ss, 0);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    sig = 0;
    if (!sigsetjmp(jb, 1))
        deep(0);
    printf("stack overflow on the alternate stack: signal %d code %d\n", sig, code);
    return 0;
}
