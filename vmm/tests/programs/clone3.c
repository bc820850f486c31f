/* clone3: struct clone_args checked as Linux checks it (its size, unknown
 * flags, the exit signal in its own field), CLONE_CLEAR_SIGHAND giving the
 * child default handlers, CLONE_PIDFD, and a thread started on a stack of
 * its own given by address and size. glibc's pthread_create and
 * posix_spawn use clone3 when the kernel has it. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#define CLONE_INTO_CGROUP 0x200000000ULL
#define SYS_CLONE3 435

struct args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

static void handler(int s) { (void)s; }

/* A child by clone3 that exits with 7 if its SIGUSR1 handler is the
 * default, 8 if it kept the parent's, 9 if SIGUSR2 is no longer ignored:
 * its exit status, or -errno. */
static long child(uint64_t flags, size_t size, int *pidfd) {
    /* Room for a larger struct than ours, zero past it. */
    static union {
        struct args a;
        char bytes[8192];
    } u;
    memset(&u, 0, sizeof u);
    u.a.flags = flags;
    u.a.exit_signal = SIGCHLD;
    if (flags & CLONE_PIDFD)
        u.a.pidfd = (uint64_t)(uintptr_t)pidfd;
    long r = syscall(SYS_CLONE3, &u.a, size);
    if (r == 0) {
        struct sigaction u1, u2;
        sigaction(SIGUSR1, NULL, &u1);
        sigaction(SIGUSR2, NULL, &u2);
        _exit(u2.sa_handler != SIG_IGN ? 9 : u1.sa_handler == SIG_DFL ? 7 : 8);
    }
    if (r < 0)
        return -errno;
    int st;
    waitpid(r, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1000;
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerror(-r));
    else
        printf("%s: exited %ld\n", what, r);
}

static volatile int ran;
static char stack[64 << 10] __attribute__((aligned(16)));

/* Runs in the child, on `stack`. */
__attribute__((used)) static void on_stack(void) {
    char here;
    ran = (&here > stack && &here < stack + sizeof stack) ? 1 : 2;
}

/* clone3 whose child calls on_stack and exits: the C library's syscall()
 * cannot return on a new stack. */
static long clone3_on_stack(struct args *a, size_t size) {
    long r;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "call on_stack\n\t"
                     "mov $60, %%eax\n\t"
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "1:"
                     : "=a"(r)
                     : "0"((long)SYS_CLONE3), "D"(a), "S"(size)
                     : "rcx", "r11", "memory");
    return r;
}

int main(void) {
    signal(SIGUSR1, handler);
    signal(SIGUSR2, SIG_IGN);
    int pidfd = -1;
    show("plain", child(0, sizeof(struct args), NULL));
    show("CLONE_CLEAR_SIGHAND", child(CLONE_CLEAR_SIGHAND, sizeof(struct args), NULL));
    show("CLONE_CLEAR_SIGHAND with CLONE_SIGHAND",
         child(CLONE_CLEAR_SIGHAND | CLONE_SIGHAND | CLONE_VM, sizeof(struct args), NULL));
    long r = child(CLONE_PIDFD, sizeof(struct args), &pidfd);
    show("CLONE_PIDFD", r);
    printf("pidfd given: %d\n", pidfd > 2);
    if (pidfd >= 0)
        close(pidfd);
    show("the first version's size (64)", child(0, 64, NULL));
    show("a size below it", child(0, 56, NULL));
    show("a larger size, zero past ours", child(0, 128, NULL));
    show("a size past a page", child(0, 8192, NULL));
    show("an unknown flag", child(1ULL << 40, sizeof(struct args), NULL));
    show("a signal number in the flags", child(SIGCHLD, sizeof(struct args), NULL));
    show("CLONE_INTO_CGROUP of a descriptor that is no directory",
         child(CLONE_INTO_CGROUP, sizeof(struct args), NULL));
    {
        struct args a;
        memset(&a, 0, sizeof a);
        a.exit_signal = 65;
        errno = 0;
        show("an exit signal past 64", syscall(SYS_CLONE3, &a, sizeof a) < 0 ? -errno : 0);
        memset(&a, 0, sizeof a);
        a.stack = (uint64_t)(uintptr_t)stack;
        errno = 0;
        show("a stack without its size", syscall(SYS_CLONE3, &a, sizeof a) < 0 ? -errno : 0);
        errno = 0;
        show("no struct", syscall(SYS_CLONE3, NULL, sizeof a) < 0 ? -errno : 0);
    }
    /* A process sharing memory on a stack of its own, as a thread would:
     * the stack is given by its lowest address and its size. */
    {
        struct args a;
        memset(&a, 0, sizeof a);
        a.flags = CLONE_VM | CLONE_VFORK;
        a.exit_signal = SIGCHLD;
        a.stack = (uint64_t)(uintptr_t)stack;
        a.stack_size = sizeof stack;
        long pid = clone3_on_stack(&a, sizeof a);
        int st;
        waitpid(pid, &st, 0);
        printf("on its own stack: %s\n", ran == 1 ? "yes" : ran == 2 ? "another stack" : "did not run");
    }
    return 0;
}
