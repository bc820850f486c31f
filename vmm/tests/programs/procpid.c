/* /proc/PID: stat, status, cmdline and comm of this process and of a
 * child, /proc listing both, and the child's entries gone once reaped
 * (what ps, top, pgrep and pidof read). Prints what holds, so the host's
 * and Lego's outputs compare. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static int listed(pid_t pid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    char want[16];
    snprintf(want, sizeof want, "%d", pid);
    while (d && (e = readdir(d)))
        found |= strcmp(e->d_name, want) == 0;
    if (d)
        closedir(d);
    return found;
}

static const char *yes(int b)
{
    return b ? "yes" : "no";
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IONBF, 0);
    (void)argc;
    size_t n;
    char *s = slurp("/proc/self/stat", &n);
    int pid, ppid;
    char comm[64], state;
    sscanf(s, "%d (%63[^)]) %c %d", &pid, comm, &state, &ppid);
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    printf("stat: pid %s, ppid %s, comm %s, state %c\n", yes(pid == getpid()),
           yes(ppid == getppid()), yes(strncmp(comm, base, 15) == 0), state);
    int fields = 1;
    for (char *c = strchr(s, ')'); *c; c++)
        fields += *c == ' ';
    printf("stat fields: %d\n", fields);
    s = slurp("/proc/self/status", &n);
    char line[64];
    snprintf(line, sizeof line, "\nPid:\t%d\n", getpid());
    printf("status: Name first %s, Pid %s, State %s\n", yes(strncmp(s, "Name:\t", 6) == 0),
           yes(strstr(s, line) != 0), yes(strstr(s, "\nState:\tR (running)\n") != 0));
    s = slurp("/proc/self/cmdline", &n);
    printf("cmdline: argv[0] %s, length %s\n", yes(strcmp(s, argv[0]) == 0),
           yes(n == strlen(argv[0]) + 1));

    int go[2];
    pipe(go);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_NAME, "waiter");
        char c;
        read(go[0], &c, 1);
        _exit(0);
    }
    /* Until it waits on the pipe, named. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    for (int i = 0; i < 5000; i++) {
        s = slurp(path, &n);
        char *st = s ? strrchr(s, ')') : 0;
        if (st && st[2] == 'S')
            break;
        usleep(1000);
    }
    snprintf(path, sizeof path, "/proc/%d/comm", child);
    s = slurp(path, &n);
    printf("child comm: %s", s ? s : "missing\n");
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    s = slurp(path, &n);
    int cpid = 0, cppid = 0;
    char cstate = '?';
    if (s)
        sscanf(s, "%d (%63[^)]) %c %d", &cpid, comm, &cstate, &cppid);
    printf("child stat: pid %s, parent %s, state %c\n", yes(cpid == child), yes(cppid == getpid()),
           cstate);
    printf("listed: me %s, child %s\n", yes(listed(getpid())), yes(listed(child)));
    write(go[1], "x", 1);
    waitpid(child, 0, 0);
    printf("after reaping: listed %s, stat %s\n", yes(listed(child)),
           slurp(path, &n) ? "still there" : "gone");
    return 0;
}
