/* Calls that set or read attributes the system keeps as hints: a
 * thread's scheduling attributes through sched_setattr and
 * sched_getattr, its I/O priority (ioprio_set, ioprio_get; a fork child
 * inherits it), mincore, mlock2, madvise and sync_file_range, with the
 * errors Linux gives; MADV_WIPEONFORK either wipes the child's copy or is
 * refused, never taken and ignored. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static void show_attr(void)
{
    struct attr a;
    memset(&a, 0x55, sizeof a);
    long r = syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    printf("  getattr %ld: size %u policy %u flags %lu nice %d priority %u\n", r, a.size, a.policy,
           (unsigned long)a.flags, a.nice, a.prio);
}

static long setattr(uint32_t size, uint32_t policy, uint64_t flags, int nice, uint32_t prio)
{
    struct attr a = {0};
    a.size = size;
    a.policy = policy;
    a.flags = flags;
    a.nice = nice;
    a.prio = prio;
    return syscall(SYS_sched_setattr, 0, &a, 0);
}

static void sched_attrs(void)
{
    printf("sched_setattr and sched_getattr:\n");
    show_attr();
    struct attr a;
    memset(&a, 0x55, sizeof a);
    SHOW("  getattr of 48 bytes", syscall(SYS_sched_getattr, 0, &a, 48, 0));
    printf("  size %u, past it untouched: %s\n", a.size, a.util_min == 0x55555555 ? "yes" : "no");
    SHOW("  getattr of 40 bytes", syscall(SYS_sched_getattr, 0, &a, 40, 0));
    SHOW("  getattr with flags", syscall(SYS_sched_getattr, 0, &a, 56, 1));
    SHOW("  getattr past a page", syscall(SYS_sched_getattr, 0, &a, 4097, 0));
    SHOW("  getattr of no process", syscall(SYS_sched_getattr, 999999, &a, 56, 0));
    SHOW("  batch, nice 5", setattr(48, SCHED_BATCH, 0, 5, 0));
    show_attr();
    SHOW("  getpriority", getpriority(PRIO_PROCESS, 0));
    SHOW("  FIFO 10, reset on fork", setattr(48, SCHED_FIFO, 1, 0, 10));
    show_attr();
    SHOW("  sched_getscheduler", sched_getscheduler(0));
    memset(&a, 0, sizeof a);
    a.size = 20;
    SHOW("  a size of 20", syscall(SYS_sched_setattr, 0, &a, 0));
    printf("  the size written back: %u\n", a.size);
    SHOW("  a size of 0 (the first one's)", setattr(0, SCHED_OTHER, 0, 0, 0));
    SHOW("  an unknown flag", setattr(48, SCHED_OTHER, 0x80, 0, 0));
    SHOW("  policy 9", setattr(48, 9, 0, 0, 0));
    SHOW("  SCHED_OTHER with priority 3", setattr(48, SCHED_OTHER, 0, 0, 3));
    SHOW("  nice -30", setattr(48, SCHED_OTHER, 0, -30, 0));
    show_attr();
    SHOW("  keep the policy, nice 3", setattr(48, 7, 0x8, 3, 0));
    show_attr();
    SHOW("  keep the parameters, nice 9", setattr(48, SCHED_BATCH, 0x10, 9, 0));
    show_attr();
    SHOW("  pid -1", syscall(SYS_sched_setattr, -1, &a, 0));
    SHOW("  flags 1", syscall(SYS_sched_setattr, 0, &a, 1));
    char big[64] = {0};
    *(uint32_t *)big = 64;
    big[60] = 1;
    SHOW("  64 bytes, not zero past 56", syscall(SYS_sched_setattr, 0, big, 0));
    printf("  the size written back: %u\n", *(uint32_t *)big);
    *(uint32_t *)big = 64;
    big[60] = 0;
    SHOW("  64 bytes, zero past 56", syscall(SYS_sched_setattr, 0, big, 0));
    setattr(48, SCHED_OTHER, 0, 0, 0);
}

static void io_priorities(void)
{
    printf("ioprio_set and ioprio_get:\n");
    SHOW("  get", syscall(SYS_ioprio_get, 1, 0));
    SHOW("  set idle", syscall(SYS_ioprio_set, 1, 0, 3 << 13));
    SHOW("  get", syscall(SYS_ioprio_get, 1, 0));
    SHOW("  set best-effort 2", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 2));
    SHOW("  get", syscall(SYS_ioprio_get, 1, 0));
    SHOW("  get by id", syscall(SYS_ioprio_get, 1, getpid()));
    SHOW("  class 4", syscall(SYS_ioprio_set, 1, 0, 4 << 13));
    SHOW("  class none, level 3", syscall(SYS_ioprio_set, 1, 0, 3));
    SHOW("  real-time 0 (root)", syscall(SYS_ioprio_set, 1, 0, 1 << 13));
    SHOW("  get", syscall(SYS_ioprio_get, 1, 0));
    SHOW("  which 4", syscall(SYS_ioprio_get, 4, 0));
    SHOW("  no such process", syscall(SYS_ioprio_get, 1, 999999));
    syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 5);
    if (fork() == 0) {
        SHOW("  a fork child's", syscall(SYS_ioprio_get, 1, 0));
        _exit(0);
    }
    wait(0);
    SHOW("  set none", syscall(SYS_ioprio_set, 1, 0, 0));
    SHOW("  get", syscall(SYS_ioprio_get, 1, 0));
}

/* Without root: another user's process is not the caller's to change,
 * and its own nice value only goes up. */
static void not_root(void)
{
    printf("not root:\n");
    pid_t parent = getpid();
    if (fork() == 0) {
        setresuid(1000, 1000, 1000);
        SHOW("  setpriority of root's process", setpriority(PRIO_PROCESS, parent, 5));
        SHOW("  ioprio_set of root's process", syscall(SYS_ioprio_set, 1, parent, 3 << 13));
        struct attr other = {.size = 48};
        SHOW("  sched_setattr of root's process", syscall(SYS_sched_setattr, parent, &other, 0));
        struct sched_param sp = {1};
        SHOW("  SCHED_FIFO for itself", sched_setscheduler(0, SCHED_FIFO, &sp));
        SHOW("  nice 5 for itself", setpriority(PRIO_PROCESS, 0, 5));
        SHOW("  then nice 3", setpriority(PRIO_PROCESS, 0, 3));
        SHOW("  then nice 3 by sched_setattr", setattr(48, SCHED_OTHER, 0, 3, 0));
        SHOW("  nice 7 by sched_setattr", setattr(48, SCHED_OTHER, 0, 7, 0));
        SHOW("  its own I/O priority", syscall(SYS_ioprio_set, 1, 0, 3 << 13));
        SHOW("  real-time I/O priority", syscall(SYS_ioprio_set, 1, 0, 1 << 13));
        _exit(0);
    }
    wait(0);
}

static void memory(void)
{
    printf("mincore and mlock2:\n");
    unsigned char v[4] = {9, 9, 9, 9};
    char *m = mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    m[2 * 4096] = 1;
    SHOW("  mincore", mincore(m, 4 * 4096, v));
    printf("  touched pages resident: %d %d\n", v[0] & 1, v[2] & 1);
    SHOW("  of part of a page", mincore(m, 100, v));
    SHOW("  unaligned", mincore(m + 1, 4096, v));
    SHOW("  of nothing", mincore(m, 0, v));
    munmap(m + 4096, 4096);
    SHOW("  over a hole", mincore(m, 4 * 4096, v));
    SHOW("  a bad vector", mincore(m, 4096, (void *)8));
    SHOW("  mlock2", syscall(SYS_mlock2, m, 4096, 0));
    SHOW("  mlock2 MLOCK_ONFAULT", syscall(SYS_mlock2, m, 4096, 1));
    SHOW("  mlock2 flag 2", syscall(SYS_mlock2, m, 4096, 2));
    SHOW("  munlock", munlock(m, 4096));
    SHOW("  mlock2 over the hole", syscall(SYS_mlock2, m, 4 * 4096, 0));
    SHOW("  mlock over the hole", mlock(m + 100, 2 * 4096));
    SHOW("  mlock unaligned, mapped", mlock(m + 100, 100));
    SHOW("  munlock over the hole", munlock(m, 4 * 4096));
    SHOW("  mlockall(0)", mlockall(0));
    SHOW("  mlockall(MCL_ONFAULT)", mlockall(4));
    SHOW("  munlockall", munlockall());
}

static void file_ranges(void)
{
    printf("sync_file_range:\n");
    char path[64];
    snprintf(path, sizeof path, "/tmp/hints-%d", (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(fd, "hello", 5);
    SHOW("  start writing", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    SHOW("  write and wait", sync_file_range(fd, 0, 5, 7));
    SHOW("  flag 8", sync_file_range(fd, 0, 0, 8));
    SHOW("  a negative offset", sync_file_range(fd, -1, 0, 1));
    SHOW("  past the largest offset", sync_file_range(fd, 1, INT64_MAX, 1));
    SHOW("  no descriptor", sync_file_range(99, 0, 0, 1));
    int p[2];
    pipe(p);
    SHOW("  a pipe", sync_file_range(p[0], 0, 0, 1));
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    SHOW("  a directory", sync_file_range(dir, 0, 0, 1));
    close(fd);
    unlink(path);
}

static void advice(void)
{
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 7;
    SHOW("madvise of an advice Linux does not know", madvise(p, 4096, 99));
    SHOW("madvise MADV_DONTNEED", madvise(p, 4096, MADV_DONTNEED));
    printf("  reads back zero: %d\n", p[0] == 0);
    SHOW("madvise MADV_RANDOM", madvise(p, 8192, MADV_RANDOM));
    /* A range with a hole: ENOMEM, the mapped pages advised all the same. */
    char *q = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    q[0] = q[2 * 4096] = 5;
    munmap(q + 4096, 4096);
    SHOW("madvise MADV_DONTNEED over a hole", madvise(q, 3 * 4096, MADV_DONTNEED));
    printf("  both sides read back zero: %d\n", q[0] == 0 && q[2 * 4096] == 0);
    SHOW("madvise MADV_FREE of the hole alone", madvise(q + 4096, 4096, MADV_FREE));
    SHOW("madvise of nothing at the hole", madvise(q + 4096, 0, MADV_DONTNEED));
    SHOW("madvise of a length that wraps", madvise(q, (size_t)-4096, MADV_DONTNEED));
    p[0] = 9;
    int r = madvise(p, 4096, MADV_WIPEONFORK);
    int refused = r == -1 && errno == EINVAL;
    pid_t c = fork();
    if (c == 0)
        _exit(p[0]);
    int st = 0;
    waitpid(c, &st, 0);
    int wiped = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("MADV_WIPEONFORK honest (wiped or refused): %d\n", (r == 0 && wiped) || refused);
    printf("  the parent's page kept: %d\n", p[0] == 9);
    munmap(p, 8192);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    advice();
    sched_attrs();
    io_priorities();
    not_root();
    memory();
    file_ranges();
    return 0;
}
