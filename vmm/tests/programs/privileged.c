/* Privileged instructions at user privilege: each must end in SIGSEGV for
 * the program (as on Linux), never reach the machine. Under PVM they would
 * otherwise run as if in the kernel (PVM.md). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf jump;
static volatile int last_sig;

static void caught(int sig) {
    last_sig = sig;
    siglongjmp(jump, 1);
}

#define TRY(name, insn)                                                    \
    do {                                                                   \
        last_sig = 0;                                                      \
        if (sigsetjmp(jump, 1) == 0) {                                     \
            __asm__ volatile(insn ::: "memory", "rax", "rdx", "rcx");      \
            printf("%s: ran\n", name);                                     \
        } else {                                                           \
            printf("%s: %s\n", name, strsignal(last_sig));                 \
        }                                                                  \
    } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = caught;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    TRY("out", "mov $0x612, %%dx; mov $1, %%eax; outl %%eax, %%dx");
    TRY("in", "mov $0x612, %%dx; inl %%dx, %%eax");
    TRY("hlt", "hlt");
    TRY("int 0x81", "int $0x81");
    TRY("wrmsr", "mov $0xc0000082, %%ecx; xor %%eax, %%eax; xor %%edx, %%edx; wrmsr");
    printf("still here\n");
    return 0;
}
