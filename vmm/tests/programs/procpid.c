/* /proc/PID: stat, status, cmdline and comm of this process and of a
 * child, /proc listing both, and the child's entries gone once reaped
 * (what ps, top, pgrep and pidof read); the child's exe, cwd, root, fd
 * and maps (what ps names commands by and lsof reads); /proc/self/task
 * with a directory per thread (ps -L, top -H). Prints what holds, so the
 * host's and Lego's outputs compare. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    static char buf[1 << 20];
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

static int link_is(const char *path, const char *want)
{
    char got[4096];
    ssize_t n = readlink(path, got, sizeof got - 1);
    if (n < 0)
        return 0;
    got[n] = 0;
    return strcmp(got, want) == 0;
}

/* Another process's exe, cwd, root, fd and maps: as its own would be. */
static void child_entries(pid_t child, int rfd)
{
    char path[128], exe[4096] = "", cwd[4096] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
        exe[n] = 0;
    getcwd(cwd, sizeof cwd);
    snprintf(path, sizeof path, "/proc/%d/exe", child);
    printf("child exe: the same program %s\n", yes(n > 0 && link_is(path, exe)));
    snprintf(path, sizeof path, "/proc/%d/cwd", child);
    printf("child cwd: the working directory %s\n", yes(link_is(path, cwd)));
    snprintf(path, sizeof path, "/proc/%d/root", child);
    printf("child root: / %s\n", yes(link_is(path, "/")));
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/exe", child);
    printf("child exe followed: a regular file %s, lstat a link %s\n",
           yes(stat(path, &st) == 0 && S_ISREG(st.st_mode)),
           yes(lstat(path, &st) == 0 && S_ISLNK(st.st_mode)));
    snprintf(path, sizeof path, "/proc/%d/cwd/.", child);
    printf("child cwd followed: a directory %s\n", yes(stat(path, &st) == 0 && S_ISDIR(st.st_mode)));
    snprintf(path, sizeof path, "/proc/%d/fd", child);
    DIR *d = opendir(path);
    int has_rfd = 0, has_stdout = 0, links = 1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        has_rfd |= atoi(e->d_name) == rfd;
        has_stdout |= atoi(e->d_name) == 1;
        links &= e->d_type == DT_LNK;
    }
    if (d)
        closedir(d);
    printf("child fd listing: opens %s, its pipe %s, stdout %s, all links %s\n", yes(d != NULL),
           yes(has_rfd), yes(has_stdout), yes(links));
    snprintf(path, sizeof path, "/proc/%d/fd/%d", child, rfd);
    char target[256] = "";
    n = readlink(path, target, sizeof target - 1);
    if (n > 0)
        target[n] = 0;
    printf("child pipe: named pipe:[...] %s\n", yes(strncmp(target, "pipe:[", 6) == 0));
    int is_link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    printf("child pipe lstat: a link %s, read-only lr-x %s\n", yes(is_link),
           yes((st.st_mode & 0777) == 0500));
    printf("child pipe followed: a FIFO %s\n", yes(stat(path, &st) == 0 && S_ISFIFO(st.st_mode)));
    snprintf(path, sizeof path, "/proc/%d/fd/%d", child, 900);
    errno = 0;
    printf("child closed descriptor: %s\n", readlink(path, target, sizeof target) < 0 && errno == ENOENT ? "ENOENT" : "there");
    snprintf(path, sizeof path, "/proc/%d/maps", child);
    size_t len;
    char *maps = slurp(path, &len);
    printf("child maps: its program mapped %s\n", yes(maps && exe[0] && strstr(maps, exe)));
    snprintf(path, sizeof path, "/proc/%d", child);
    d = opendir(path);
    int seen = 0;
    while (d && (e = readdir(d)))
        seen += !strcmp(e->d_name, "exe") || !strcmp(e->d_name, "fd") || !strcmp(e->d_name, "cwd");
    if (d)
        closedir(d);
    printf("child directory: exe, cwd and fd listed %s\n", yes(seen == 3));
}

extern char **environ;

/* /proc/self/{environ,auxv,limits,statm,mountinfo} against what the
 * process knows of itself (the values differ by host; their agreement
 * does not). */
static void own_files(void)
{
    size_t n = 0;
    char *env = slurp("/proc/self/environ", &n);
    size_t want = 0;
    int same = env != NULL;
    for (char **e = environ; *e && same; e++) {
        size_t l = strlen(*e) + 1;
        same = want + l <= n && memcmp(env + want, *e, l) == 0;
        want += l;
    }
    printf("environ: the environment %s\n", yes(same && want == n));
    char *aux = slurp("/proc/self/auxv", &n);
    int page = 0, entry = 0, ended = 0;
    for (size_t i = 0; aux && i + 16 <= n; i += 16) {
        unsigned long k, v;
        memcpy(&k, aux + i, 8);
        memcpy(&v, aux + i + 8, 8);
        page |= k == AT_PAGESZ && v == 4096;
        entry |= k == AT_ENTRY && v == getauxval(AT_ENTRY);
        ended |= k == AT_NULL && i + 16 == n;
    }
    printf("auxv: page size %s, entry %s, ends with AT_NULL %s\n", yes(page), yes(entry), yes(ended));
    char *lim = slurp("/proc/self/limits", &n);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    char row[128];
    snprintf(row, sizeof row, "\nMax open files            %-20lu ", (unsigned long)rl.rlim_cur);
    int lines = 0;
    for (size_t i = 0; lim && i < n; i++)
        lines += lim[i] == '\n';
    printf("limits: %d lines, open files as getrlimit %s\n", lines, yes(lim && strstr(lim, row)));
    char *statm = slurp("/proc/self/statm", &n);
    unsigned long f[7] = {0};
    int got = statm ? sscanf(statm, "%lu %lu %lu %lu %lu %lu %lu", f, f + 1, f + 2, f + 3, f + 4, f + 5, f + 6) : 0;
    printf("statm: %d fields, size over 64 KiB %s\n", got, yes(f[0] * 4096 > 65536));
    char *mi = slurp("/proc/self/mountinfo", &n);
    int root = 0, dashed = 1;
    for (char *line = mi; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        char at[256];
        if (sscanf(line, "%*d %*d %*s %*s %255s", at) == 1 && !strcmp(at, "/"))
            root = 1;
        dashed &= strstr(line, " - ") != NULL;
        line = end ? end + 1 : line + strlen(line);
    }
    printf("mountinfo: the root mounted %s, every line has its dash %s\n", yes(root), yes(dashed));
    /* /proc/mounts against statvfs: a mount that says ro is read-only to
     * statvfs, one that says rw is not (a program looking for a writable
     * file system in the table goes by what it says). */
    char *mt = slurp("/proc/mounts", &n);
    int agree = mt != NULL, checked = 0;
    for (char *line = mt; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        char at[256], opts[512];
        struct statvfs v;
        if (sscanf(line, "%*s %255s %*s %511s", at, opts) == 2 && statvfs(at, &v) == 0) {
            int ro = !strncmp(opts, "ro", 2) && (opts[2] == ',' || !opts[2]);
            agree &= ro == !!(v.f_flag & ST_RDONLY);
            checked++;
        }
        line = end ? end + 1 : line + strlen(line);
    }
    printf("mounts: ro and rw as statvfs says %s\n", yes(agree && checked > 1));
    /* /etc/mtab, on Debian a link to /proc/mounts (or ../proc/self/mounts),
     * reads as this process's mount table (glibc's _PATH_MOUNTED, which
     * getmntent users open). */
    static char mounts[1 << 16];
    size_t m = 0;
    char *own = slurp("/proc/self/mounts", &m);
    if (own)
        memcpy(mounts, own, m + 1);
    char target[256];
    ssize_t tl = readlink("/etc/mtab", target, sizeof target - 1);
    int mtab_same = 1;
    if (tl > 0) {
        target[tl] = 0;
        char *mtab = strstr(target, "proc/") ? slurp("/etc/mtab", &n) : NULL;
        mtab_same = mtab && n == m && !memcmp(mtab, mounts, n);
    }
    printf("mtab: this process's mount table %s\n", yes(mtab_same));
}

/* /proc/uptime on the clock CLOCK_BOOTTIME keeps, and /proc/stat's btime
 * with this process's start time (ticks since boot) the time it started:
 * what ps's STIME and top's uptime and %CPU are made of. */
static void clocks(void)
{
    size_t n;
    char *up = slurp("/proc/uptime", &n);
    double secs = up ? atof(up) : -1;
    struct timespec boot;
    clock_gettime(CLOCK_BOOTTIME, &boot);
    double diff = secs - (boot.tv_sec + boot.tv_nsec / 1e9);
    printf("uptime: CLOCK_BOOTTIME's %s\n", yes(diff > -1 && diff < 1));
    char *st = slurp("/proc/stat", &n);
    char *b = st ? strstr(st, "\nbtime ") : 0;
    long long btime = b ? atoll(b + 7) : 0;
    char *me = slurp("/proc/self/stat", &n);
    char *f = me ? strrchr(me, ')') : 0;
    unsigned long long start = 0;
    /* The 22nd field; the 3rd follows the name. */
    for (int field = 2; f && *f && field < 22; f++)
        if (*f == ' ' && ++field == 22)
            start = strtoull(f + 1, 0, 10);
    long long started = btime + (long long)(start / sysconf(_SC_CLK_TCK));
    long long now = time(0);
    printf("start time: btime and the start ticks give now %s\n", yes(started >= now - 3 && started <= now + 1));
    /* One cpuN line per CPU sysconf counts (libuv's os.cpus() and psutil
     * count the lines), the reader among the running, and a fork counted.
     * (slurp's buffer is one: read again.) */
    st = slurp("/proc/stat", &n);
    int lines = 0;
    for (char *l = st; l && (l = strstr(l, "\ncpu")); l++)
        lines++;
    printf("stat: a cpu line per online cpu %s\n", yes(lines == sysconf(_SC_NPROCESSORS_ONLN)));
    char *r = st ? strstr(st, "\nprocs_running ") : 0;
    printf("stat: the reader runs %s\n", yes(r && atoi(r + 15) >= 1));
    char *p = st ? strstr(st, "\nprocesses ") : 0;
    long long forks = p ? atoll(p + 11) : -1;
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, 0, 0);
    st = slurp("/proc/stat", &n);
    p = st ? strstr(st, "\nprocesses ") : 0;
    printf("stat: a fork counted %s\n", yes(p && atoll(p + 11) > forks && forks > 0));
}

static pthread_barrier_t named, done;
static pid_t tids[3];
static int self_seen[3];

/* /proc/thread-self is the calling thread's /proc/PID/task/TID: its link,
 * its comm and its stat's id are this thread's. */
static int thread_self_ok(const char *name)
{
    char link[64] = "", want[64], path[64];
    snprintf(want, sizeof want, "%d/task/%d", getpid(), gettid());
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    int ok = n > 0 && !strcmp(link, want);
    /* Threads read at once here: no shared buffer. */
    char comm[64] = "", stat[64] = "";
    int fd = open("/proc/thread-self/comm", O_RDONLY);
    ok &= fd >= 0 && read(fd, comm, sizeof comm - 1) > 0;
    close(fd);
    ok &= !strncmp(comm, name, strlen(name)) && comm[strlen(name)] == '\n';
    fd = open("/proc/thread-self/stat", O_RDONLY);
    ok &= fd >= 0 && read(fd, stat, sizeof stat - 1) > 0;
    close(fd);
    ok &= atoi(stat) == gettid();
    snprintf(path, sizeof path, "/proc/thread-self/fd/%d", 1);
    ok &= access(path, F_OK) == 0;
    return ok;
}

static void *worker(void *arg)
{
    long i = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "worker-%ld", i);
    prctl(PR_SET_NAME, name);
    tids[i] = gettid();
    self_seen[i] = thread_self_ok(name);
    pthread_barrier_wait(&named);
    pthread_barrier_wait(&done);
    return 0;
}

/* /proc/self/task: each thread's directory, its comm, stat and status. */
static void tasks(void)
{
    pthread_t t[2];
    tids[0] = gettid();
    pthread_barrier_init(&named, 0, 3);
    pthread_barrier_init(&done, 0, 3);
    for (long i = 1; i <= 2; i++)
        pthread_create(&t[i - 1], 0, worker, (void *)i);
    size_t len;
    char *own = slurp("/proc/self/comm", &len);
    if (own && strchr(own, '\n'))
        *strchr(own, '\n') = 0;
    self_seen[0] = thread_self_ok(own ? own : "?");
    pthread_barrier_wait(&named);
    printf("/proc/thread-self: each thread's own %s %s %s\n", yes(self_seen[0]), yes(self_seen[1]),
           yes(self_seen[2]));
    DIR *d = opendir("/proc/self/task");
    int count = 0, found = 0, dots = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') {
            dots++;
            continue;
        }
        count++;
        for (int i = 0; i < 3; i++)
            found += atoi(e->d_name) == tids[i] && e->d_type == DT_DIR;
    }
    printf("task listing: %d threads, %d of ours, %d dot entries\n", count, found, dots);
    int taskfd = d ? dirfd(d) : -1;
    for (int i = 0; i < 3; i++) {
        char path[128], comm[64] = "";
        size_t n;
        snprintf(path, sizeof path, "/proc/%d/task/%d/comm", getpid(), tids[i]);
        char *s = slurp(path, &n);
        printf("thread %d comm: %s", i, s ? s : "missing\n");
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", tids[i]);
        s = slurp(path, &n);
        int id = 0;
        char state = '?';
        if (s)
            sscanf(s, "%d (%63[^)]) %c", &id, comm, &state);
        printf("thread %d stat: own id %s, name %s\n", i, id == tids[i] ? "yes" : "no", comm);
        /* status through the task directory's descriptor. */
        snprintf(path, sizeof path, "%d/status", tids[i]);
        int fd = openat(taskfd, path, O_RDONLY);
        char buf[4096] = "";
        if (fd >= 0) {
            read(fd, buf, sizeof buf - 1);
            close(fd);
        }
        char want[64];
        snprintf(want, sizeof want, "\nTgid:\t%d\n", getpid());
        char *pid_line = strstr(buf, "\nPid:\t");
        printf("thread %d status: tgid %s, pid %s\n", i, strstr(buf, want) ? "yes" : "no",
               pid_line && atoi(pid_line + 6) == tids[i] ? "yes" : "no");
        snprintf(path, sizeof path, "/proc/self/task/%d", tids[i]);
        DIR *td = opendir(path);
        int has_stat = 0;
        while (td && (e = readdir(td)))
            has_stat += strcmp(e->d_name, "stat") == 0 || strcmp(e->d_name, "status") == 0;
        printf("thread %d directory: %s, stat and status listed %s\n", i, td ? "opens" : "missing",
               has_stat == 2 ? "yes" : "no");
        if (td)
            closedir(td);
    }
    if (d)
        closedir(d);
    char path[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", 999999);
    errno = 0;
    printf("a thread not there: %s\n", open(path, O_RDONLY) < 0 && errno == ENOENT ? "ENOENT" : "opened");
    printf("writing a thread's comm file: %s\n",
           open("/proc/self/task/1/comm", O_WRONLY) < 0 ? "refused" : "opened");
    /* Another thread named by its comm file, as glibc's and musl's
     * pthread_setname_np do; the process's own, as `echo x >` does (Linux
     * keeps the newline). */
    printf("pthread_setname_np of another thread: %d\n", pthread_setname_np(t[0], "renamed"));
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tids[1]);
    size_t cl;
    char *cs = slurp(path, &cl);
    printf("its comm now: %s", cs ? cs : "missing\n");
    int cw = open("/proc/self/comm", O_WRONLY);
    printf("write to /proc/self/comm: %zd\n", cw >= 0 ? write(cw, "procpid-x\n", 10) : -1L);
    close(cw);
    cs = slurp("/proc/self/comm", &cl);
    printf("read back: %zu bytes, %s", cl, cs ? cs : "missing\n");
    prctl(PR_SET_NAME, own ? own : "procpid");
    /* oom_score_adj: kept, bounded, inherited. */
    cs = slurp("/proc/self/oom_score_adj", &cl);
    printf("oom_score_adj: %s", cs ? cs : "missing\n");
    int ow = open("/proc/self/oom_score_adj", O_WRONLY);
    printf("set 500: %zd, set 2000: ", ow >= 0 ? write(ow, "500\n", 4) : -1L);
    errno = 0;
    printf("%s\n", write(ow, "2000", 4) < 0 && errno == EINVAL ? "EINVAL" : "taken");
    close(ow);
    pid_t oc = fork();
    if (oc == 0) {
        cs = slurp("/proc/self/oom_score_adj", &cl);
        printf("a child's: %s", cs ? cs : "missing\n");
        _exit(0);
    }
    waitpid(oc, 0, 0);
    pthread_barrier_wait(&done);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], 0);
    d = opendir("/proc/self/task");
    count = 0;
    while (d && (e = readdir(d)))
        count += e->d_name[0] != '.';
    printf("after joining: %d thread(s)\n", count);
    if (d)
        closedir(d);
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
    child_entries(child, go[0]);
    write(go[1], "x", 1);
    waitpid(child, 0, 0);
    printf("after reaping: listed %s, stat %s\n", yes(listed(child)),
           slurp(path, &n) ? "still there" : "gone");
    snprintf(path, sizeof path, "/proc/%d/exe", child);
    char link[64];
    errno = 0;
    printf("after reaping: exe %s\n", readlink(path, link, sizeof link) < 0 && errno == ENOENT ? "ENOENT" : "there");
    own_files();
    clocks();
    tasks();
    return 0;
}
