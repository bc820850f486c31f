/* prctl as programs use it: the thread's name, dumpable, no_new_privs,
 * and the parent-death signal a grandchild asks for when its parent ends;
 * personality kept and inherited; getrandom's, tkill's and
 * clock_nanosleep's checks. */
#include <errno.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>

#include "check.h"
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int got;
static void h(int s) { got = s; }
int main(void) {
    char name[16] = {0};
    prctl(PR_GET_NAME, name);
    printf("name: %s\n", name);
    prctl(PR_SET_NAME, "worker-1");
    prctl(PR_GET_NAME, name);
    printf("renamed: %s\n", name);
    /* A longer name is cut to 15 bytes, not refused (LTP's prctl05). */
    int named = prctl(PR_SET_NAME, "a-name-of-twenty-bytes");
    prctl(PR_GET_NAME, name);
    printf("a long name: %d, reads %s\n", named, name);
    prctl(PR_SET_NAME, "worker-1");
    printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE));
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    printf("no_new_privs: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    int p[2];
    pipe(p);
    /* FIONREAD on either end of a pipe (LTP's pipe12). */
    int queued = -1;
    write(p[1], "abc", 3);
    ioctl(p[1], FIONREAD, &queued);
    printf("FIONREAD on the write end: %d\n", queued);
    read(p[0], name, 3);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t leaf = fork();
        if (leaf == 0) {
            signal(SIGUSR1, h);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            int s = 0;
            prctl(PR_GET_PDEATHSIG, &s);
            write(p[1], "r", 1);
            while (!got) usleep(1000);
            dprintf(p[1], "leaf got signal %d (pdeathsig %d)\n", got, s);
            _exit(0);
        }
        char c;
        read(p[0], &c, 1);
        _exit(0);
    }
    waitpid(mid, NULL, 0);
    char buf[64] = {0};
    close(p[1]);
    int n = read(p[0], buf, sizeof buf - 1);
    printf("%.*s", n, buf);

    printf("personality: %#x\n", personality(0xffffffff));
    personality(PER_LINUX | ADDR_NO_RANDOMIZE);
    printf("personality set: %#x\n", personality(0xffffffff));
    pid_t kid = fork();
    if (kid == 0)
        _exit(personality(0xffffffff) == (PER_LINUX | ADDR_NO_RANDOMIZE));
    int st = 0;
    waitpid(kid, &st, 0);
    printf("a child inherits it: %d\n", WEXITSTATUS(st));
    personality(PER_LINUX);
    char r[8];
    SHOW("getrandom with a flag Linux has not", getrandom(r, 8, 0x100));
    SHOW("getrandom GRND_RANDOM|GRND_INSECURE", getrandom(r, 8, GRND_RANDOM | 4));
    SHOW("tkill of thread -1", syscall(SYS_tkill, -1, 0));
    SHOW("tgkill of group 0", syscall(SYS_tgkill, 0, getpid(), 0));
    struct timespec ts = {0, 1};
    printf("clock_nanosleep on no clock: %s\n", strerror(clock_nanosleep(99, 0, &ts, NULL)));
    return 0;
}
