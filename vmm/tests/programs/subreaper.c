/* prctl PR_SET_CHILD_SUBREAPER: a process below the first that sets it
 * adopts its grandchildren when their parent dies (tini -s, supervisors),
 * rather than the first process; its children do not inherit it. */
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

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (fork() == 0) {
        reaper();
        _exit(0);
    }
    wait(0);
    return 0;
}
