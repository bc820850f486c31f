/* Signals: handlers with siginfo, masks, sigsuspend, kill to self,
 * an alternate stack, and a fault caught by a handler; SA_RESETHAND
 * resets the handler alone; a blocking waitpid whose child's exit also
 * brings a SIGCHLD handler (no SA_RESTART) returns the child. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_usr2, code_seen;
static volatile void *fault_addr;
static sigjmp_buf jump;
static char altstack[64 * 1024];
static volatile int on_alt;

static void noted(int sig) { (void)sig; }

static void usr1(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    got_usr1 = sig;
    code_seen = info->si_code;
}

static void usr2(int sig) {
    char probe;
    on_alt = (&probe >= altstack && &probe < altstack + sizeof altstack);
    got_usr2 = sig;
}

static void segv(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    fault_addr = info->si_addr;
    code_seen = info->si_code;
    siglongjmp(jump, 1);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    kill(getpid(), SIGUSR1);
    printf("usr1 handled: %d, si_code is SI_USER: %s\n", got_usr1, code_seen == SI_USER ? "yes" : "no");

    /* Blocked, then delivered by sigsuspend. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    got_usr1 = 0;
    raise(SIGUSR1);
    printf("while blocked: %d\n", got_usr1);
    sigset_t pending;
    sigpending(&pending);
    printf("pending: %d\n", sigismember(&pending, SIGUSR1));
    sigsuspend(&old);
    printf("after sigsuspend: %d\n", got_usr1);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* An alternate stack. */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    signal(SIGUSR2, usr2);
    struct sigaction sa2;
    memset(&sa2, 0, sizeof sa2);
    sa2.sa_handler = usr2;
    sa2.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa2, NULL);
    raise(SIGUSR2);
    printf("usr2 handled: %d on the alternate stack: %s\n", got_usr2, on_alt ? "yes" : "no");

    /* A fault, caught. */
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(jump, 1) == 0) {
        page[8] = 1;
        puts("no fault?");
        return 1;
    }
    printf("segv at the page: %s, SEGV_ACCERR: %s\n", fault_addr == page + 8 ? "yes" : "no",
           code_seen == SEGV_ACCERR ? "yes" : "no");
    /* Ignored signals are not delivered. */
    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    puts("ignored SIGUSR1 did nothing");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noted;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    printf("SA_RESETHAND: default again: %s, flags kept: %s\n", now.sa_handler == SIG_DFL ? "yes" : "no",
           now.sa_flags & SA_NODEFER ? "yes" : "no");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noted; /* no SA_RESTART */
    sigaction(SIGCHLD, &sa, NULL);
    int found = 0;
    for (int i = 0; i < 5; i++) {
        pid_t c = fork();
        if (c == 0) {
            usleep(10000);
            _exit(3);
        }
        int st = 0;
        pid_t r = waitpid(c, &st, 0);
        found += r == c && WIFEXITED(st) && WEXITSTATUS(st) == 3;
        if (r != c)
            waitpid(c, &st, 0);
    }
    printf("waitpid returned the child with SIGCHLD caught: %d of 5\n", found);
    return 0;
}
