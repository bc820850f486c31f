/* User and group ids as a daemon dropping root uses them (and CPython's
 * subprocess(user=..., group=...)): the ids read back after each change,
 * Linux's rules for who may change what (no way back to root once every
 * id is given up; a saved root can be taken back), setfsuid's old id,
 * /proc/self/status, fork and exec keeping them, kill refused between
 * users, and the owner of a file made in /tmp. Run as root; prints what it
 * saw, to compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, expr)                                                     \
    do {                                                                     \
        errno = 0;                                                           \
        long r_ = (long)(expr);                                              \
        printf("%-36s %ld %s\n", what, r_, r_ < 0 ? strerror(errno) : "");   \
    } while (0)

/* The raw calls: glibc and musl apply an id change to every thread, and
 * this is one thread; the kernel's answer is what is compared. */
static long res_uid(long r, long e, long s) { return syscall(SYS_setresuid, r, e, s); }

static void ids(const char *when)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%s: uid %u %u %u gid %u %u %u fsuid %d\n", when, r, e, s, gr, ge, gs,
           setfsuid(-1));
}

static void status_lines(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4))
            fputs(line, stdout);
        else if (!strncmp(line, "CapEff:", 7))
            /* Which capabilities a host's root lacks differs by host. */
            printf("capabilities: %s\n", strtoull(line + 7, NULL, 16) ? "some" : "none");
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        /* Exec'd with ids given up: they came along. */
        ids("after exec");
        return 0;
    }
    ids("start");
    status_lines();

    /* Effective id only: the saved root lets it come back. */
    SHOW("setresuid(-1, 1000, -1)", res_uid(-1, 1000, -1));
    ids("effective 1000");
    status_lines();
    SHOW("setgroups while not root", setgroups(0, NULL));
    SHOW("seteuid(0) from the saved id", syscall(SYS_setresuid, -1, 0, -1));
    ids("root again");

    /* setreuid's saved-id rule, and setfsuid. */
    SHOW("setreuid(-1, 1000)", syscall(SYS_setreuid, -1, 1000));
    ids("after setreuid");
    SHOW("setuid(0): the real id", syscall(SYS_setuid, 0));
    ids("after setuid(0)");
    int old_fs = setfsuid(77);
    int now_fs = setfsuid(-1);
    printf("setfsuid(77) gave %d, now %d\n", old_fs, now_fs);
    setfsuid(0);

    /* A child gives up root for good, as subprocess(user=) does. */
    int pipefd[2];
    pipe(pipefd);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        if (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setresgid, 65534, 65534, 65534) != 0 ||
            syscall(SYS_setresuid, 65534, 65534, 65534) != 0) {
            printf("dropping failed: %s\n", strerror(errno));
            _exit(1);
        }
        ids("child dropped");
        SHOW("setuid(0) after dropping", syscall(SYS_setuid, 0));
        SHOW("setresuid back to root", res_uid(0, 0, 0));
        SHOW("setgid(0) after dropping", syscall(SYS_setgid, 0));
        SHOW("kill(parent, 0) as nobody", kill(getppid(), 0));
        SHOW("kill(self, 0)", kill(getpid(), 0));
        char name[64];
        snprintf(name, sizeof name, "/tmp/creds-%d", (int)getpid());
        int fd = open(name, O_CREAT | O_WRONLY | O_EXCL, 0600);
        struct stat st;
        fstat(fd, &st);
        printf("a file it made: owner %u group %u\n", st.st_uid, st.st_gid);
        close(fd);
        unlink(name);
        fflush(stdout);
        write(pipefd[1], "x", 1);
        char self[32];
        snprintf(self, sizeof self, "/proc/self/exe");
        execl(self, argv[0], "exec", (char *)NULL);
        _exit(2);
    }
    close(pipefd[1]);
    char c;
    read(pipefd[0], &c, 1);
    SHOW("kill(child, 0) as root", kill(child, 0));
    int st = 0;
    waitpid(child, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));

    /* A zombie exists until it is reaped: kill finds it. */
    pid_t z = fork();
    if (z == 0)
        _exit(0);
    siginfo_t si;
    waitid(P_PID, z, &si, WEXITED | WNOWAIT);
    SHOW("kill(zombie, 0)", kill(z, 0));
    SHOW("kill(zombie, SIGTERM)", kill(z, SIGTERM));
    waitpid(z, &st, 0);
    printf("zombie's status after SIGTERM: exit %d\n", WEXITSTATUS(st));
    SHOW("kill(reaped, 0)", kill(z, 0));

    SHOW("setuid(-1)", syscall(SYS_setuid, -1));
    ids("end");
    return 0;
}
