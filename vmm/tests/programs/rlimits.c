/* Resource limits as Linux checks them: setrlimit's EINVAL and EPERM,
 * prlimit on a child, a thread and the parent, an unprivileged caller's
 * refusals, and a bad pointer that changes nothing. Compared with the
 * host; the host's limits differ from Lego's, so only what Linux decides
 * is printed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static long limit(pid_t pid, int res, const struct rlimit *set, struct rlimit *old)
{
    /* The raw call: the C libraries' wrappers differ on a bad pointer. */
    return syscall(SYS_prlimit64, pid, res, set, old);
}

static volatile pid_t thread_tid;
static int stop_pipe[2];

static void *thread(void *arg)
{
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    char c;
    if (read(stop_pipe[0], &c, 1) < 0)
        perror("read");
    return NULL;
}

static volatile sig_atomic_t xcpus;
static volatile rlim_t soft_after;
static void on_xcpu(int s)
{
    (void)s;
    struct rlimit r;
    getrlimit(RLIMIT_CPU, &r);
    soft_after = r.rlim_cur;
    xcpus++;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit r, mine;
    SHOW("getrlimit(NOFILE)", getrlimit(RLIMIT_NOFILE, &mine));
    printf("soft <= hard: %s\n", mine.rlim_cur <= mine.rlim_max ? "yes" : "no");

    r.rlim_cur = 64;
    r.rlim_max = mine.rlim_max;
    SHOW("lower the soft limit", setrlimit(RLIMIT_NOFILE, &r));
    getrlimit(RLIMIT_NOFILE, &r);
    printf("soft now: %lu\n", (unsigned long)r.rlim_cur);
    r.rlim_cur = 100;
    r.rlim_max = 50;
    SHOW("soft above hard", setrlimit(RLIMIT_NOFILE, &r));
    r.rlim_cur = 64;
    r.rlim_max = (1 << 20) + 1;
    SHOW("hard NOFILE above nr_open", setrlimit(RLIMIT_NOFILE, &r));
    SHOW("resource 99", limit(0, 99, NULL, &r));
    /* A new limit that cannot be read: EFAULT, and the old one stays. */
    struct rlimit before, after;
    getrlimit(RLIMIT_NOFILE, &before);
    SHOW("new limit at a bad address", limit(0, RLIMIT_NOFILE, (void *)8, &after));
    getrlimit(RLIMIT_NOFILE, &after);
    printf("unchanged: %s\n", before.rlim_cur == after.rlim_cur ? "yes" : "no");
    SHOW("old limit to a bad address", limit(0, RLIMIT_NOFILE, NULL, (void *)8));

    /* Another thread's id names its process. */
    if (pipe(stop_pipe))
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, thread, NULL);
    while (!thread_tid)
        usleep(1000);
    SHOW("prlimit(a thread)", limit(thread_tid, RLIMIT_NOFILE, NULL, &r));
    printf("the process's: %s\n", r.rlim_cur == before.rlim_cur ? "yes" : "no");
    if (write(stop_pipe[1], "x", 1) != 1)
        return 1;
    pthread_join(t, NULL);

    /* A child's limits, set from its parent; it reads them itself. */
    int go[2];
    if (pipe(go))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        struct rlimit c_r;
        getrlimit(RLIMIT_NOFILE, &c_r);
        printf("the child's own soft limit: %lu\n", (unsigned long)c_r.rlim_cur);
        _exit(0);
    }
    r.rlim_cur = 77;
    r.rlim_max = before.rlim_max;
    SHOW("prlimit(child, set 77)", limit(child, RLIMIT_NOFILE, &r, &after));
    printf("its old soft limit was ours: %s\n", after.rlim_cur == before.rlim_cur ? "yes" : "no");
    if (write(go[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    SHOW("prlimit(no such process)", limit(4000000, RLIMIT_NOFILE, NULL, &r));
    SHOW("prlimit(the parent, read)", limit(getppid(), RLIMIT_NOFILE, NULL, &r));

    /* Without privilege: the parent's limits are not ours to read, and a
     * hard limit only goes down. */
    child = fork();
    if (child == 0) {
        if (setuid(65534))
            _exit(1);
        SHOW("as nobody: prlimit(the parent, read)", limit(getppid(), RLIMIT_NOFILE, NULL, &r));
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_max = r.rlim_cur;
        SHOW("as nobody: lower the hard limit", setrlimit(RLIMIT_NOFILE, &r));
        r.rlim_max += 1;
        SHOW("as nobody: raise it again", setrlimit(RLIMIT_NOFILE, &r));
        _exit(0);
    }
    waitpid(child, NULL, 0);
    /* RLIMIT_CPU: SIGXCPU at the soft limit (which moves a second on),
     * SIGKILL at the hard one (LTP's setrlimit06). */
    int out[2];
    pipe(out);
    pid_t spin = fork();
    if (spin == 0) {
        signal(SIGXCPU, on_xcpu);
        struct rlimit cpu = { 1, 2 };
        setrlimit(RLIMIT_CPU, &cpu);
        alarm(120);
        while (!xcpus)
            ;
        char msg[2] = { (char)xcpus, (char)soft_after };
        write(out[1], msg, 2);
        for (;;)
            ;
    }
    close(out[1]);
    char msg[2] = { 0, 0 };
    read(out[0], msg, 2);
    int st;
    waitpid(spin, &st, 0);
    printf("RLIMIT_CPU 1 s, 2 s: SIGXCPU %s (soft limit then %d), then %s\n", msg[0] ? "yes" : "no",
           msg[1], WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "an exit");
    return 0;
}
