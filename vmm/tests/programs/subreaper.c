/* prctl PR_SET_CHILD_SUBREAPER: a process below the first that sets it
 * adopts its grandchildren when their parent dies (tini -s, supervisors),
 * rather than the first process; its children do not inherit it. */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void reaper(void)
{
    int v = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    printf("subreaper before: %d\n", v);
    printf("set: %d\n", prctl(PR_SET_CHILD_SUBREAPER, 1));
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    printf("subreaper after: %d\n", v);
    int up[2];
    pipe(up);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t orphan = fork();
        if (orphan == 0) {
            /* The grandchild: waits for its parent to go, then ends. */
            while (getppid() == mid)
                usleep(1000);
            _exit(7);
        }
        write(up[1], &orphan, sizeof orphan);
        _exit(0);
    }
    close(up[1]);
    int st;
    waitpid(mid, &st, 0);
    pid_t orphan = 0;
    read(up[0], &orphan, sizeof orphan);
    /* Only a parent can wait for it: the subreaper, not the first process. */
    pid_t got = wait(&st);
    printf("it reaped the orphan: %s, status %d\n", got == orphan ? "yes" : "no",
           WEXITSTATUS(st));
    if (fork() == 0) {
        v = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &v);
        _exit(v);
    }
    wait(&st);
    printf("a child inherits it: %s\n", WEXITSTATUS(st) ? "yes" : "no");
}

/* Without a subreaper, an orphan goes to init (outside the program, as
 * on a host): not to the first process, which has no child left to
 * wait for. */
static void no_reaper(void)
{
    int up[2];
    pipe(up);
    pid_t me = getpid();
    pid_t mid = fork();
    if (mid == 0) {
        if (fork() == 0) {
            while (getppid() == mid)
                usleep(1000);
            pid_t now = getppid();
            write(up[1], &now, sizeof now);
            _exit(0);
        }
        _exit(0);
    }
    close(up[1]);
    waitpid(mid, 0, 0);
    pid_t heir = 0;
    read(up[0], &heir, sizeof heir);
    printf("without a subreaper, the orphan's parent is the first process: %s\n",
           heir == me ? "yes" : "no");
    errno = 0;
    pid_t got = wait(0);
    printf("the first process waits: %d, %s\n", (int)got, errno == ECHILD ? "ECHILD" : "?");
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (fork() == 0) {
        reaper();
        _exit(0);
    }
    wait(0);
    no_reaper();
    return 0;
}
