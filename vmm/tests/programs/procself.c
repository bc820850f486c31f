/* What a process learns about itself from the kernel: /proc/self/maps
 * names its stack and its program, pthread_getattr_np finds the main
 * thread's stack (glibc reads /proc/self/maps for it, musl probes with
 * mremap), and a stack that overflows faults at its limit (8 MiB) on the
 * alternate signal stack without running into memory mapped elsewhere.
 * With "cpus": how many processors sysconf counts. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LIMIT (8UL << 20)

static unsigned char *canary;
static size_t canary_len = 1 << 20;
static char *main_local;

static void say(const char *s) { write(1, s, strlen(s)); }

static void segv(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    char *at = info->si_addr;
    /* The kernel refuses to grow the stack past its limit, measured from
     * the top of the stack (a little above main's frame). */
    long below = main_local - at;
    say(below > (long)LIMIT - (256 << 10) && below < (long)LIMIT + (512 << 10)
            ? "overflow faulted at the stack's limit: yes\n"
            : "overflow faulted at the stack's limit: no\n");
    int intact = 1;
    for (size_t i = 0; i < canary_len; i++)
        intact &= canary[i] == (unsigned char)(i * 7);
    say(intact ? "other mappings intact: yes\n" : "other mappings intact: no\n");
    _exit(0);
}

static int depth(int n) {
    volatile char frame[1024];
    frame[0] = (char)n;
    frame[1023] = (char)n;
    return depth(n + 1) + frame[0] + frame[1023];
}

int main(int argc, char **argv) {
    char local;
    if (argc > 1 && strcmp(argv[1], "cpus") == 0) {
        /* The processor's vCPUs, not the host's CPUs. */
        printf("%ld online, %ld configured\n", sysconf(_SC_NPROCESSORS_ONLN),
               sysconf(_SC_NPROCESSORS_CONF));
        return 0;
    }
    main_local = &local;
    struct rlimit rl = {LIMIT, RLIM_INFINITY};
    getrlimit(RLIMIT_STACK, &rl);
    rl.rlim_cur = LIMIT;
    if (setrlimit(RLIMIT_STACK, &rl) != 0)
        perror("setrlimit");

    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) {
        perror("/proc/self/maps");
        return 1;
    }
    char exe[4096] = {0};
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0)
        perror("readlink");
    char line[8192];
    int stack_line = 0, program_line = 0, lines = 0, well_formed = 1;
    while (fgets(line, sizeof line, maps)) {
        unsigned long from, to;
        char perms[5];
        lines++;
        if (sscanf(line, "%lx-%lx %4s", &from, &to, perms) != 3 || from >= to)
            well_formed = 0;
        char *name = strchr(line, '\n');
        if (name)
            *name = 0;
        if (strstr(line, "[stack]") && from <= (unsigned long)&local && (unsigned long)&local < to)
            stack_line = 1;
        if (strstr(line, exe) && perms[2] == 'x' && from <= (unsigned long)&main &&
            (unsigned long)&main < to)
            program_line = 1;
    }
    fclose(maps);
    printf("maps well formed: %s\n", lines > 2 && well_formed ? "yes" : "no");
    printf("maps names the stack: %s\n", stack_line ? "yes" : "no");
    printf("maps names the program: %s\n", program_line ? "yes" : "no");

    pthread_attr_t attr;
    void *stack;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0 ||
        pthread_attr_getstack(&attr, &stack, &size) != 0) {
        printf("main stack known: no\n");
    } else {
        printf("main stack known: %s\n",
               (char *)stack <= &local && &local < (char *)stack + size ? "yes" : "no");
    }

    canary = malloc(canary_len);
    for (size_t i = 0; i < canary_len; i++)
        canary[i] = (unsigned char)(i * 7);
    stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {0};
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    fflush(stdout);
    return depth(0);
}
