/* Capabilities as libcap and daemons that drop root use them: capget's
 * version probe, capset's rules, a capability dropped from the effective
 * set refusing what it allowed (kill of another user's process) and taken
 * back, keep-caps across leaving root, the effective set following the
 * effective and file system ids, the bounding and ambient sets, and
 * execve giving a user its ambient capabilities. Run as root; prints
 * what it saw, to compare with the host.
 *
 * Which capabilities a host's root holds differs (a container drops
 * some), so the program first checks that it holds a common few and
 * narrows its sets to exactly those: every set printed after that is the
 * same on any Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"


#define BIT(c) (1ull << (c))
enum { CHOWN = 0, DAC_OVERRIDE = 1, FOWNER = 3, KILL = 5, SETGID = 6, SETUID = 7, SETPCAP = 8,
       SYS_ADMIN = 21 };
/* Held by root on a host and in a container's default set alike. */
static const uint64_t COMMON = BIT(CHOWN) | BIT(DAC_OVERRIDE) | BIT(FOWNER) | BIT(KILL) |
                               BIT(SETGID) | BIT(SETUID) | BIT(SETPCAP);

struct header { uint32_t version; int pid; };
struct data { uint32_t effective, permitted, inheritable; };
#define V3 0x20080522

struct sets { uint64_t e, p, i; };

static long get(int pid, struct sets *s)
{
    struct header h = {V3, pid};
    struct data d[2];
    long r = syscall(SYS_capget, &h, d);
    if (r == 0) {
        s->e = d[0].effective | (uint64_t)d[1].effective << 32;
        s->p = d[0].permitted | (uint64_t)d[1].permitted << 32;
        s->i = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    }
    return r;
}

static long set(int pid, uint64_t e, uint64_t p, uint64_t i)
{
    struct header h = {V3, pid};
    struct data d[2] = {{(uint32_t)e, (uint32_t)p, (uint32_t)i},
                        {(uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32)}};
    return syscall(SYS_capset, &h, d);
}

static void show(const char *when)
{
    struct sets s = {0, 0, 0};
    long r = get(0, &s);
    printf("%s: capget %ld effective %llx permitted %llx inheritable %llx ambient kill %d\n", when,
           r, (unsigned long long)s.e, (unsigned long long)s.p, (unsigned long long)s.i,
           prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, KILL, 0, 0));
}

static void status_lines(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapInh:", 7) || !strncmp(line, "CapPrm:", 7) ||
            !strncmp(line, "CapEff:", 7) || !strncmp(line, "CapAmb:", 7))
            fputs(line, stdout);
    if (f)
        fclose(f);
}

static void wait_child(const char *what, pid_t c)
{
    int st = 0;
    waitpid(c, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %d\n", what, WTERMSIG(st));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "root")) {
        /* Exec'd by root narrowed to CAP_KILL: the bounding set again. */
        struct sets r = {0, 0, 0};
        get(0, &r);
        printf("after root's exec: permitted holds the common ones %s, effective is permitted %s\n",
               (r.p & COMMON) == COMMON ? "yes" : "no", r.e == r.p ? "yes" : "no");
        return 0;
    }
    if (argc > 1) {
        /* Exec'd as user 1000 with CAP_KILL ambient. */
        show("after exec as a user");
        printf("uid %d keepcaps %d\n", getuid(), prctl(PR_GET_KEEPCAPS));
        status_lines();
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The version probe libcap makes: no data, an unknown version. */
    struct header h = {0xdead, 0};
    SHOW("capget(bad version, NULL)", syscall(SYS_capget, &h, NULL));
    printf("version written back: %x\n", h.version);
    struct data d[2];
    memset(d, 0, sizeof d);
    h.version = 0xdead;
    SHOW("capget(bad version, data)", syscall(SYS_capget, &h, d));
    h.version = 0xdead;
    SHOW("capset(bad version)", syscall(SYS_capset, &h, d));
    printf("version written back: %x\n", h.version);

    struct sets s;
    SHOW("capget(self)", get(0, &s));
    printf("root holds the common ones: %s, permitted is effective: %s\n",
           (s.e & COMMON) == COMMON ? "yes" : "no", s.e == s.p ? "yes" : "no");
    SHOW("narrowed to the common ones", set(0, COMMON, COMMON, 0));
    SHOW("ambient cleared", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    show("start");
    status_lines();

    /* Version 1 carries the low 32 bits. */
    struct header h1 = {0x19980330, 0};
    struct data d1[2] = {{0, 0, 0}, {7, 7, 7}};
    SHOW("capget(version 1)", syscall(SYS_capget, &h1, d1));
    printf("version 1: effective %x, second triple untouched %d\n", d1[0].effective,
           d1[1].effective == 7);

    /* capset's rules. */
    SHOW("capset(more permitted)", set(0, COMMON, COMMON | BIT(SYS_ADMIN), 0));
    SHOW("capset(effective not permitted)", set(0, COMMON | BIT(SYS_ADMIN), COMMON, 0));
    SHOW("capset(the parent)", set(getppid(), COMMON, COMMON, 0));
    SHOW("capset(own pid)", set(getpid(), COMMON, COMMON, 0));
    SHOW("capget(the parent)", get(getppid(), &s));
    SHOW("capget(-5)", get(-5, &s));

    /* CAP_KILL out of the effective set: another user's process cannot be
     * signalled; back in, it can. */
    int ready[2];
    if (pipe(ready))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        close(ready[0]);
        syscall(SYS_setresuid, 1000, 1000, 1000);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char b;
    if (read(ready[0], &b, 1) != 1)
        return 1;
    struct sets cs = {0, 0, 0};
    SHOW("capget(the child as user 1000)", get(c, &cs));
    printf("the child's sets: %llx %llx %llx\n", (unsigned long long)cs.e,
           (unsigned long long)cs.p, (unsigned long long)cs.i);
    SHOW("CAP_KILL dropped from effective", set(0, COMMON & ~BIT(KILL), COMMON, 0));
    SHOW("kill(user's child, SIGTERM)", kill(c, SIGTERM));
    SHOW("CAP_KILL taken back", set(0, COMMON, COMMON, 0));
    SHOW("kill(user's child, SIGTERM)", kill(c, SIGTERM));
    wait_child("the child", c);
    SHOW("capget(a reaped child)", get(c, &s));

    /* The bounding set. */
    SHOW("PR_CAPBSET_READ(CAP_SETUID)", prctl(PR_CAPBSET_READ, SETUID, 0, 0, 0));
    SHOW("PR_CAPBSET_READ(64)", prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
    c = fork();
    if (c == 0) {
        SHOW("child: PR_CAPBSET_DROP(CAP_SYS_ADMIN)", prctl(PR_CAPBSET_DROP, SYS_ADMIN, 0, 0, 0));
        SHOW("child: PR_CAPBSET_READ(CAP_SYS_ADMIN)", prctl(PR_CAPBSET_READ, SYS_ADMIN, 0, 0, 0));
        set(0, COMMON & ~BIT(SETPCAP), COMMON, 0);
        SHOW("child: PR_CAPBSET_DROP without SETPCAP", prctl(PR_CAPBSET_DROP, KILL, 0, 0, 0));
        _exit(0);
    }
    wait_child("bounding child", c);

    /* Keep-caps: leaving root keeps the permitted set, not the effective
     * one; an effective root again takes the permitted set. */
    c = fork();
    if (c == 0) {
        SHOW("child: PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS));
        SHOW("child: PR_SET_KEEPCAPS(1)", prctl(PR_SET_KEEPCAPS, 1));
        SHOW("child: PR_SET_KEEPCAPS(2)", prctl(PR_SET_KEEPCAPS, 2));
        SHOW("child: PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS));
        SHOW("child: setresuid(1000, 1000, 1000)", syscall(SYS_setresuid, 1000, 1000, 1000));
        show("child: keep-caps, user 1000");
        SHOW("child: setuid(0) without CAP_SETUID", syscall(SYS_setuid, 0));
        SHOW("child: CAP_SETUID made effective", set(0, BIT(SETUID), COMMON, 0));
        SHOW("child: setresuid(0, 0, 0)", syscall(SYS_setresuid, 0, 0, 0));
        show("child: root again");
        _exit(0);
    }
    wait_child("keep-caps child", c);
    c = fork();
    if (c == 0) {
        SHOW("child: setuid(1000)", syscall(SYS_setuid, 1000));
        show("child: user 1000");
        SHOW("child: setuid(0)", syscall(SYS_setuid, 0));
        status_lines();
        _exit(0);
    }
    wait_child("user child", c);

    /* Effective id alone: the effective set goes and comes back. */
    c = fork();
    if (c == 0) {
        SHOW("child: seteuid(1000)", syscall(SYS_setresuid, -1, 1000, -1));
        show("child: effective 1000");
        SHOW("child: seteuid(0)", syscall(SYS_setresuid, -1, 0, -1));
        show("child: effective 0");
        _exit(0);
    }
    wait_child("effective child", c);

    /* The file system id takes the file capabilities with it. */
    setfsuid(1000);
    show("fsuid 1000");
    setfsuid(0);
    show("fsuid 0");

    /* Ambient capabilities carry CAP_KILL into a user's program. */
    c = fork();
    if (c == 0) {
        SHOW("child: raise ambient (not inheritable)",
             prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, KILL, 0, 0));
        SHOW("child: inheritable KILL|SETUID", set(0, COMMON, COMMON, BIT(KILL) | BIT(SETUID)));
        SHOW("child: raise ambient KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, KILL, 0, 0));
        SHOW("child: raise ambient CHOWN", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CHOWN, 0, 0));
        SHOW("child: ambient op 9", prctl(PR_CAP_AMBIENT, 9, KILL, 0, 0));
        SHOW("child: clear all with a capability",
             prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, KILL, 0, 0));
        prctl(PR_SET_KEEPCAPS, 1);
        SHOW("child: setresuid(1000, 1000, 1000)", syscall(SYS_setresuid, 1000, 1000, 1000));
        show("child: user 1000 with keep-caps");
        SHOW("child: raise ambient KILL again",
             prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, KILL, 0, 0));
        execl(argv[0], argv[0], "ambient", (char *)NULL);
        _exit(127);
    }
    wait_child("ambient child", c);

    /* Root's execve: the bounding set comes back as permitted. */
    SHOW("narrowed to CAP_KILL", set(0, BIT(KILL), BIT(KILL), 0));
    c = fork();
    if (c == 0) {
        execl(argv[0], argv[0], "root", (char *)NULL);
        _exit(127);
    }
    wait_child("root's exec", c);
    return 0;
}
