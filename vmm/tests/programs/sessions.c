/* Sessions and process groups as shells and daemons use them: setsid
 * refused to a group's leader and taken by a forked child, setpgid's
 * rules (a session leader, a missing group, a process not a child), and
 * getsid/getpgid. Prints what it saw, to compare with the host. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("setpgid(0, 0): %d\n", setpgid(0, 0));
    printf("now its group's leader: %s\n", getpgrp() == getpid() ? "yes" : "no");
    errno = 0;
    int r = setsid();
    printf("setsid as a group's leader: %d %s\n", r, strerror(errno));
    pid_t c = fork();
    if (c == 0) {
        int s = setsid();
        printf("the child's setsid: %s, it leads the session %s and its group %s\n",
               s == getpid() ? "its pid" : strerror(errno), getsid(0) == getpid() ? "yes" : "no",
               getpgid(0) == getpid() ? "yes" : "no");
        errno = 0;
        int r3 = setpgid(0, 0);
        printf("setpgid of a session leader: %d %s\n", r3, strerror(errno));
        _exit(0);
    }
    waitpid(c, 0, 0);
    pid_t d = fork();
    if (d == 0) {
        pause();
        _exit(0);
    }
    int r1 = setpgid(d, d);
    printf("setpgid(child, child): %d, its group %s\n", r1, getpgid(d) == d ? "its pid" : "other");
    int r2 = setpgid(d, getpgrp());
    printf("setpgid(child, ours): %d, %s\n", r2, getpgid(d) == getpgrp() ? "ours" : "other");
    errno = 0;
    int r4 = setpgid(d, 99999);
    printf("setpgid into a missing group: %d %s\n", r4, strerror(errno));
    errno = 0;
    int r5 = setpgid(-1, 0);
    printf("setpgid(-1, 0): %d %s\n", r5, strerror(errno));
    printf("getsid of the child is ours: %s\n", getsid(d) == getsid(0) ? "yes" : "no");
    kill(d, 9);
    waitpid(d, 0, 0);
    errno = 0;
    int r6 = getpgid(d);
    printf("getpgid of a reaped child: %d %s\n", r6, strerror(errno));
    return 0;
}
