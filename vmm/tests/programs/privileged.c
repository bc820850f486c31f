/* Privileged instructions at user privilege: each must end in SIGSEGV for
 * the program (as on Linux), never reach the machine. Under PVM they would
 * otherwise run as if in the kernel (PVM.md). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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

/* The same with rsi and rdi at `at`: instructions that KVM's emulator
 * carries out, whose memory access meets a page that is not mapped. */
#define TRY_AT(name, insn, at)                                             \
    do {                                                                   \
        last_sig = 0;                                                      \
        if (sigsetjmp(jump, 1) == 0) {                                     \
            __asm__ volatile(insn ::"S"(at), "D"(at)                       \
                             : "memory", "rax", "rdx", "rcx");             \
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
    /* A far return through a selector of the LDT: there is none (#GP).
     * Under PVM, KVM's emulator makes it and reads the descriptor table. */
    /* The other vendor's hypercall instruction is #UD, which KVM used to
     * answer by rewriting it in the program's read-only code: refused, the
     * vCPU retried it in KVM for good. Now SIGILL; the native one, from a
     * process, returns an error in rax (-KVM_EPERM) and runs on. */
    TRY("vmcall", "vmcall");
    TRY("vmmcall", "vmmcall");
    TRY("lretq ldt", "pushq $4; pushq $0; lretq");
    TRY("lretq ldt high", "pushq $0x1234; pushq $0; lretq");
    /* A hole between two mapped pages. */
    char *pages = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pages[0] = pages[2 * 4096] = 1;
    munmap(pages + 4096, 4096);
    char *hole = pages + 4096 + 16;
    TRY_AT("sgdt to a hole", "sgdt (%%rdi)", hole);
    TRY_AT("sidt to a hole", "sidt (%%rdi)", hole);
    TRY_AT("smsw to a hole", "smsw (%%rdi)", hole);
    TRY_AT("str to a hole", "str (%%rdi)", hole);
    TRY_AT("sldt to a hole", "sldt (%%rdi)", hole);
    TRY_AT("outsb from a hole", "mov $0x612, %%dx; outsb", hole);
    TRY_AT("insb to a hole", "mov $0x612, %%dx; insb", hole);
    printf("still here\n");
    return 0;
}
