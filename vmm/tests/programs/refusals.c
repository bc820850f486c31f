/* Refused accesses while the VMM's ticks come: thousands of reads of a
 * page made PROT_NONE again each time (each one a fetch its memory
 * component refuses, so the refusal's answer can arrive while a tick has
 * taken the vCPU elsewhere), and writes from it, which the monitor copies
 * and must answer EFAULT. Every read must fault and every write fail, and
 * the process's state must survive (on Lego before the fix, a verdict
 * landing in the monitor's trap entry stopped the monitor or gave the
 * process SIGSEGV at a monitor address, and a read completed on a page of
 * zeros). Then copies by the monitor into and out of pages that its own
 * page tables refuse (before, each stopped the monitor). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile void *fault_addr;

static void segv(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    fault_addr = info->si_addr;
    siglongjmp(env, 1);
}

static void report(const char *what, ssize_t r) {
    printf("%s: %zd %s\n", what, r, r < 0 ? strerror(errno) : "");
}

/* Puts 16 bytes in the pipe and reads them into `to`; drains them when
 * the read failed, so the pipe stays empty. */
static ssize_t fill_and_read(int *pipefd, char *to) {
    char drain[16];
    write(pipefd[1], "0123456789abcdef", 16);
    ssize_t r = read(pipefd[0], to, 16);
    int saved = errno;
    if (r < 0)
        read(pipefd[0], drain, 16);
    errno = saved;
    return r;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int pipefd[2];
    if (page == MAP_FAILED || pipe(pipefd) != 0) {
        perror("setup");
        return 2;
    }
    memset(page, 'p', 4096);
    /* volatile: siglongjmp returns past the increments. */
    volatile int faults = 0, exact = 0, read_through = 0, efaults = 0, wrote = 0;
    volatile long sum = 0;
    for (int i = 0; i < n; i++) {
        volatile char *at = page + (i * 7) % 4096;
        mprotect(page, 4096, PROT_READ);
        mprotect(page, 4096, PROT_NONE);
        if (sigsetjmp(env, 1) == 0) {
            sum += *at;
            read_through++;
        } else {
            faults++;
            exact += fault_addr == (void *)at;
        }
        if (i % 8 == 0) {
            ssize_t w = write(pipefd[1], page, 16);
            if (w < 0 && errno == EFAULT)
                efaults++;
            else if (w > 0)
                wrote++;
        }
        sum += i;
    }
    printf("reads: %d faulted (%d at the exact address), %d read through\n", faults, exact,
           read_through);
    printf("writes from the page: %d EFAULT, %d written\n", efaults, wrote);
    printf("sum %ld\n", sum);
    mprotect(page, 4096, PROT_READ);
    printf("page still holds %c\n", page[4095]);

    /* The monitor's copies into pages the CPU refuses: a private page
     * whose write was refused, shared memory read-only and inaccessible. */
    if (sigsetjmp(env, 1) == 0) {
        page[9] = 'w';
        puts("write to a read-only page went through");
    } else {
        puts("write to a read-only page faulted");
    }
    report("read into the read-only page", fill_and_read(pipefd, page));
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared[0] = 's';
    mprotect(shared, 4096, PROT_READ);
    report("read into read-only shared memory", fill_and_read(pipefd, shared));
    report("write from read-only shared memory", write(pipefd[1], shared, 16));
    char drain[16];
    read(pipefd[0], drain, 16);
    mprotect(shared, 4096, PROT_NONE);
    report("read into inaccessible shared memory", fill_and_read(pipefd, shared));
    report("write from inaccessible shared memory", write(pipefd[1], shared, 16));
    return faults == n && efaults == (n + 7) / 8 ? 0 : 1;
}
