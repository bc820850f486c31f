/* seccomp as sandboxing programs use it: a filter's ERRNO, TRAP (SIGSYS
 * with the call's number, arch and address), TRACE with no tracer
 * (ENOSYS), KILL_PROCESS; filters kept by fork and execve and stacked
 * (the most restrictive wins); strict mode; the checks on a filter and on
 * who may install one (no_new_privs or CAP_SYS_ADMIN); and what
 * /proc/self/status and PR_GET_SECCOMP say. Prints what it saw, to
 * compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* <linux/filter.h>, <linux/seccomp.h> and <linux/audit.h>'s, which
 * musl's headers lack. */
struct sock_filter {
    unsigned short code;
    unsigned char jt, jf;
    unsigned int k;
};
struct sock_fprog {
    unsigned short len;
    struct sock_filter *filter;
};
#define BPF_STMT(code, k) { (unsigned short)(code), 0, 0, k }
#define BPF_JUMP(code, k, jt, jf) { (unsigned short)(code), jt, jf, k }
#define BPF_LD 0x00
#define BPF_W 0x00
#define BPF_ABS 0x20
#define BPF_JMP 0x05
#define BPF_JEQ 0x10
#define BPF_K 0x00
#define BPF_RET 0x06
#define SECCOMP_MODE_STRICT 1
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_GET_ACTION_AVAIL 2
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#define SECCOMP_RET_TRAP 0x00030000U
#define SECCOMP_RET_ERRNO 0x00050000U
#define SECCOMP_RET_TRACE 0x7ff00000U
#define SECCOMP_RET_LOG 0x7ffc0000U
#define SECCOMP_RET_ALLOW 0x7fff0000U
#define AUDIT_ARCH_X86_64 0xc000003eU
/* struct seccomp_data: nr, arch, instruction_pointer, args[6]. */
#define DATA_NR 0
#define DATA_ARCH 4

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_NR)
#define ON(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))

static long install(struct sock_filter *f, unsigned short len, unsigned flags)
{
    struct sock_fprog prog = { len, f };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static const char *result(long r)
{
    static char buf[64];
    if (r < 0)
        snprintf(buf, sizeof buf, "-1 %s", strerror(errno));
    else
        snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static volatile int trapped_nr = -1, trapped_errno = -1, trapped_arch_ok, trapped_addr_ok;

static void on_sys(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    trapped_nr = si->si_syscall;
    trapped_errno = si->si_errno;
    trapped_arch_ok = si->si_arch == AUDIT_ARCH_X86_64;
    trapped_addr_ok = si->si_call_addr != NULL && si->si_code == 1;
}

static void status_line(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Seccomp", 7))
            printf("  %s", line);
    if (f)
        fclose(f);
}

static void wait_child(pid_t c, const char *what)
{
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: killed by %s\n", what, strsignal(WTERMSIG(st)));
    else
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1) {
        /* Run by execve after the filter went on: it is still there. */
        errno = 0;
        long r = syscall(SYS_getppid);
        printf("after execve: getppid %s, PR_GET_SECCOMP %d\n", r < 0 ? strerror(errno) : "ran",
               prctl(PR_GET_SECCOMP));
        return 0;
    }
    printf("PR_GET_SECCOMP at start: %d\n", prctl(PR_GET_SECCOMP));

    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    pid_t c = fork();
    if (c == 0) {
        setresuid(65534, 65534, 65534);
        printf("  not root, without no_new_privs: %s\n", result(install(allow, 1, 0)));
        _exit(0);
    }
    wait_child(c, "not root");

    struct sock_filter out_of_range[] = {
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_filter unaligned[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    printf("a jump out of the filter: %s\n", result(install(out_of_range, 2, 0)));
    printf("an unaligned load: %s\n", result(install(unaligned, 2, 0)));
    printf("no instructions: %s\n", result(install(allow, 0, 0)));
    printf("a flag Linux lacks: %s\n", result(install(allow, 1, 1u << 30)));
    unsigned action = SECCOMP_RET_LOG;
    printf("GET_ACTION_AVAIL of LOG: %s\n",
           result(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action)));
    action = 0x12340000;
    printf("GET_ACTION_AVAIL of 0x12340000: %s\n",
           result(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action)));

    /* Strict mode: read and write go, anything else kills. */
    c = fork();
    if (c == 0) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) == 0)
            write(1, "  strict: write still works\n", 28);
        syscall(SYS_getpid);
        write(1, "  strict: getpid ran\n", 21);
        syscall(SYS_exit, 0);
    }
    wait_child(c, "strict, then getpid");

    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_sys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        LOAD_NR,
        ON(SYS_getppid, SECCOMP_RET_ERRNO | ENOSPC),
        ON(SYS_uname, SECCOMP_RET_TRAP | 42),
        ON(SYS_getuid, SECCOMP_RET_TRACE),
        ON(SYS_getpgid, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    printf("install: %s\n", result(install(filter, sizeof filter / sizeof filter[0], 0)));
    printf("PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));
    status_line();
    errno = 0;
    long r = syscall(SYS_getppid);
    printf("getppid: %s\n", result(r));
    struct utsname u;
    r = syscall(SYS_uname, &u);
    printf("uname: returned %ld; SIGSYS for call %d, data %d, arch %s, address %s\n", r, trapped_nr,
           trapped_errno, trapped_arch_ok ? "x86_64" : "wrong", trapped_addr_ok ? "given" : "none");
    printf("getuid (TRACE, no tracer): %s\n", result(syscall(SYS_getuid)));
    printf("getpid: %s\n", syscall(SYS_getpid) == getpid() ? "allowed" : "wrong");

    c = fork();
    if (c == 0) {
        errno = 0;
        r = syscall(SYS_getppid);
        printf("  a fork child: getppid %s\n", r < 0 ? strerror(errno) : "ran");
        /* A second filter: the most restrictive action wins. */
        struct sock_filter more[] = { LOAD_NR, ON(SYS_getppid, SECCOMP_RET_ERRNO | EPERM),
                                      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
        install(more, sizeof more / sizeof more[0], 0);
        status_line();
        errno = 0;
        r = syscall(SYS_getppid);
        printf("  with a second filter: getppid %s\n", r < 0 ? strerror(errno) : "ran");
        syscall(SYS_getpgid, 0);
        printf("  getpgid ran\n");
        _exit(0);
    }
    wait_child(c, "a child calling getpgid");

    c = fork();
    if (c == 0) {
        execl("/proc/self/exe", "seccomp", "again", (char *)0);
        _exit(99);
    }
    wait_child(c, "execve");
    return 0;
}
