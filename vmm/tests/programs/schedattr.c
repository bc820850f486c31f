/* What a process sets about itself and reads back, as `nice`, `chrt`,
 * `taskset`, daemons dropping groups and runtimes use it: nice values
 * (setpriority/getpriority by process, group and user), scheduling
 * policies and priorities with their errors, CPU affinity, supplementary
 * groups, pipe sizes (F_SETPIPE_SZ), O_PATH descriptors of symbolic
 * links, and poll past 1024 descriptors. Prints what it saw, to compare
 * with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok"; }

/* A call's outcome, then something read after it (printf's arguments
 * are evaluated in no set order). */
#define THEN(label, call, after)                                                 \
    do {                                                                         \
        const char *r_ = e(call);                                                \
        printf("%s: %s, now %d\n", label, r_, (int)(after));                     \
    } while (0)

static void nice_values(void)
{
    /* A group of its own, so that PRIO_PGRP changes no one else. */
    setpgid(0, 0);
    errno = 0;
    printf("nice at start: %d\n", getpriority(PRIO_PROCESS, 0));
    printf("setpriority 5: %s\n", e(setpriority(PRIO_PROCESS, 0, 5)));
    printf("now: %d\n", getpriority(PRIO_PROCESS, 0));
    printf("nice(3): %d\n", nice(3));
    THEN("setpriority 100 (clamped)", setpriority(PRIO_PROCESS, 0, 100),
         getpriority(PRIO_PROCESS, 0));
    THEN("setpriority -100 (clamped)", setpriority(PRIO_PROCESS, 0, -100),
         getpriority(PRIO_PROCESS, 0));
    setpriority(PRIO_PROCESS, 0, 2);
    pid_t child = fork();
    if (child == 0) {
        printf("a child inherits: %d\n", getpriority(PRIO_PROCESS, 0));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    THEN("by process group", setpriority(PRIO_PGRP, 0, 4), getpriority(PRIO_PGRP, 0));
    /* The user's best: at least this process's. */
    int mine = getpriority(PRIO_PROCESS, 0);
    printf("by user: %s\n", getpriority(PRIO_USER, 0) <= mine ? "at least mine" : "less");
    printf("no such process: %s\n", e(setpriority(PRIO_PROCESS, 999999, 1)));
    printf("bad which: %s\n", e(setpriority(7, 0, 1)));
    setpriority(PRIO_PROCESS, 0, 0);
}

static void policies(void)
{
    struct sched_param p = {0};
    printf("policy at start: %d\n", sched_getscheduler(0));
    THEN("SCHED_BATCH", sched_setscheduler(0, SCHED_BATCH, &p), sched_getscheduler(0));
    THEN("SCHED_IDLE", sched_setscheduler(0, SCHED_IDLE, &p), sched_getscheduler(0));
    p.sched_priority = 5;
    printf("SCHED_OTHER with a priority: %s\n", e(sched_setscheduler(0, SCHED_OTHER, &p)));
    p.sched_priority = 0;
    printf("policy 4: %s\n", e(sched_setscheduler(0, 4, &p)));
    printf("no such process: %s\n", e(sched_setscheduler(999999, SCHED_OTHER, &p)));
    printf("a negative pid: %s\n", e(sched_getscheduler(-1)));
    THEN("back to SCHED_OTHER", sched_setscheduler(0, SCHED_OTHER, &p), sched_getscheduler(0));
    p.sched_priority = -1;
    THEN("getparam", sched_getparam(0, &p), p.sched_priority);
    printf("setparam 1 under SCHED_OTHER: %s\n",
           e(sched_setparam(0, &(struct sched_param){.sched_priority = 1})));
    for (int pol = 0; pol <= 6; pol++) {
        errno = 0;
        int lo = sched_get_priority_min(pol), hi = sched_get_priority_max(pol);
        printf("policy %d: %d..%d %s\n", pol, lo, hi, lo < 0 ? strerror(errno) : "");
    }
    struct timespec ts = {-1, -1};
    const char *r = e(sched_rr_get_interval(0, &ts));
    printf("rr_get_interval: %s, %s\n", r,
           ts.tv_sec == 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000 ? "under a second"
                                                                          : "odd");
}

static void affinity(void)
{
    cpu_set_t set, got;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    printf("pin to CPU 0: %s\n", e(sched_setaffinity(0, sizeof set, &set)));
    CPU_ZERO(&got);
    sched_getaffinity(0, sizeof got, &got);
    printf("CPUs now: %d, CPU 0 %s\n", CPU_COUNT(&got), CPU_ISSET(0, &got) ? "in" : "out");
    pid_t child = fork();
    if (child == 0) {
        CPU_ZERO(&got);
        sched_getaffinity(0, sizeof got, &got);
        printf("a child inherits: %d\n", CPU_COUNT(&got));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    CPU_ZERO(&set);
    CPU_SET(63, &set);
    printf("only a CPU that is not there: %s\n", e(sched_setaffinity(0, sizeof set, &set)));
    printf("a negative pid: %s\n", e(sched_getaffinity(-1, sizeof got, &got)));
    printf("a short mask: %s\n", e(sched_getaffinity(0, 2, &got)));
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    CPU_SET(1, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void groups(void)
{
    printf("groups at start: %d\n", getgroups(0, NULL));
    gid_t set[] = {27, 4, 100};
    printf("setgroups: %s\n", e(setgroups(3, set)));
    gid_t got[8] = {0};
    int n = getgroups(8, got);
    printf("getgroups: %d: %d %d %d\n", n, got[0], got[1], got[2]);
    printf("count: %d\n", getgroups(0, NULL));
    printf("too small: %s\n", e(getgroups(1, got)));
    pid_t child = fork();
    if (child == 0) {
        printf("a child has %d\n", getgroups(0, NULL));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    THEN("none", setgroups(0, NULL), getgroups(0, NULL));
}

static void pipe_sizes(void)
{
    int p[2];
    pipe(p);
    printf("a pipe holds %d\n", fcntl(p[1], F_GETPIPE_SZ));
    printf("set 5000: %d\n", fcntl(p[1], F_SETPIPE_SZ, 5000));
    printf("now %d\n", fcntl(p[0], F_GETPIPE_SZ));
    static char buf[1 << 16];
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    printf("fills after %zd\n", write(p[1], buf, sizeof buf));
    printf("smaller than what it holds: %s\n", e(fcntl(p[1], F_SETPIPE_SZ, 4096)));
    printf("set 1 MiB: %d\n", fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
    printf("then takes %zd more\n", write(p[1], buf, sizeof buf));
    int null = open("/dev/null", O_RDONLY);
    printf("not a pipe: %s\n", e(fcntl(null, F_GETPIPE_SZ)));
    close(null);
    close(p[0]);
    close(p[1]);
}

static void path_descriptors(void)
{
    char dir[] = "/tmp/schedattr-XXXXXX";
    mkdtemp(dir);
    char link[64], file[64];
    snprintf(link, sizeof link, "%s/link", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    close(open(file, O_CREAT | O_WRONLY, 0644));
    symlink("nowhere", link);
    int fd = open(link, O_PATH | O_NOFOLLOW);
    struct stat st;
    int got = fstat(fd, &st);
    printf("O_PATH of a link: %s, %s\n", e(fd),
           got == 0 && S_ISLNK(st.st_mode) ? "the link itself" : "not the link");
    char b[4];
    printf("read it: %s\n", e(read(fd, b, sizeof b)));
    printf("F_GETFL has O_PATH: %s\n", fcntl(fd, F_GETFL) & O_PATH ? "yes" : "no");
    close(fd);
    printf("O_NOFOLLOW without O_PATH: %s\n", e(open(link, O_RDONLY | O_NOFOLLOW)));
    printf("chmod of the link itself: %s\n", e(fchmodat(AT_FDCWD, link, 0600, AT_SYMLINK_NOFOLLOW)));
    printf("chmod of a file, not following: %s\n",
           e(fchmodat(AT_FDCWD, file, 0600, AT_SYMLINK_NOFOLLOW)));
    stat(file, &st);
    printf("its mode: %o\n", st.st_mode & 0777);
    int d = open(dir, O_PATH | O_DIRECTORY);
    printf("O_PATH of the directory, then openat in it: %s\n", e(openat(d, "file", O_RDONLY)));
    printf("O_PATH|O_DIRECTORY of a file: %s\n", e(open(file, O_PATH | O_DIRECTORY)));
    unlink(link);
    unlink(file);
    rmdir(dir);
}

static void many_polled(void)
{
    struct rlimit r = {4096, 4096};
    setrlimit(RLIMIT_NOFILE, &r);
    static struct pollfd fds[5000];
    for (int i = 0; i < 5000; i++)
        fds[i] = (struct pollfd){.fd = i < 2 ? 1 : -1, .events = POLLOUT};
    printf("poll of 2000: %d\n", poll(fds, 2000, 0));
    printf("poll of 5000: %s\n", e(poll(fds, 5000, 0)));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    nice_values();
    policies();
    affinity();
    groups();
    pipe_sizes();
    path_descriptors();
    many_polled();
    return 0;
}
