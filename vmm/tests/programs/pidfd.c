/* Process descriptors: pidfd_open, clone's CLONE_PIDFD, pidfd_send_signal,
 * pidfd_getfd, waitid(P_PIDFD), and a pidfd in poll, select and epoll. The
 * output is compared with the host's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int pidfd_getfd(int fd, int target, unsigned flags) { return syscall(SYS_pidfd_getfd, fd, target, flags); }

#define SHOW(what, call)                                                              \
    do {                                                                              \
        errno = 0;                                                                    \
        long r_ = (call);                                                             \
        printf("%s: %s\n", what, r_ < 0 ? strerror(errno) : (r_ == 0 ? "0" : "ok")); \
    } while (0)

/* A child that waits for a byte on `gate`, then exits with that byte. */
static pid_t waiting_child(int gate[2]) {
    pipe(gate);
    pid_t c = fork();
    if (c == 0) {
        close(gate[1]);
        char b = 0;
        read(gate[0], &b, 1);
        _exit(b);
    }
    close(gate[0]);
    return c;
}

static int ready(int fd, int timeout) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout);
    return r <= 0 ? r : p.revents;
}

static volatile int got_value = -1;
static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    got_value = si->si_code == SI_QUEUE ? si->si_value.sival_int : -2;
}

static volatile pid_t thread_id;
static void *idle_thread(void *arg) {
    thread_id = syscall(SYS_gettid);
    pause();
    return arg;
}

/* Whether directory `fd` lists `name`. */
static int lists(int fd, const char *name) {
    int d = dup(fd);
    DIR *dir = fdopendir(d);
    rewinddir(dir);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(dir)) != NULL)
        found |= strcmp(e->d_name, name) == 0;
    closedir(dir);
    return found;
}

/* /proc/PID opened as a directory: listed, a base for openat, and a
 * pidfd for pidfd_send_signal (not for waitid). */
static void proc_dirs(void) {
    int self = open("/proc/self", O_RDONLY | O_DIRECTORY);
    struct stat st;
    fstat(self, &st);
    printf("/proc/self as a directory: %s, S_ISDIR %d, lists stat %d and fd %d\n", self >= 0 ? "ok" : strerror(errno),
           S_ISDIR(st.st_mode), lists(self, "stat"), lists(self, "fd"));
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", self);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    char want[64];
    snprintf(want, sizeof want, "/proc/%d", getpid());
    printf("its link is /proc/PID: %d\n", strcmp(link, want) == 0);
    int stat_fd = openat(self, "stat", O_RDONLY);
    char buf[64] = {0};
    n = read(stat_fd, buf, sizeof buf - 1);
    char mine[16];
    snprintf(mine, sizeof mine, "%d (", getpid());
    printf("openat(it, \"stat\") starts with the pid: %d\n", n > 0 && strncmp(buf, mine, strlen(mine)) == 0);
    close(stat_fd);
    SHOW("signal 0 through it", pidfd_send_signal(self, 0, NULL, 0));
    siginfo_t si;
    SHOW("waitid(P_PIDFD) of it", waitid(P_PIDFD, self, &si, WEXITED));
    close(self);
    SHOW("/proc/self for writing", open("/proc/self", O_WRONLY));
    SHOW("/proc/self with O_NOFOLLOW", open("/proc/self", O_RDONLY | O_NOFOLLOW));
    SHOW("/proc of no process", open("/proc/4000000", O_RDONLY | O_DIRECTORY));
    int gate[2];
    pid_t child = waiting_child(gate);
    snprintf(path, sizeof path, "/proc/%d", child);
    int dir = open(path, O_RDONLY | O_DIRECTORY);
    printf("a child's directory: %s, lists status %d\n", dir >= 0 ? "ok" : strerror(errno), lists(dir, "status"));
    SHOW("SIGKILL through it", pidfd_send_signal(dir, SIGKILL, NULL, 0));
    int status;
    waitpid(child, &status, 0);
    printf("the child: killed by %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    SHOW("signal through it once reaped", pidfd_send_signal(dir, 0, NULL, 0));
    lseek(dir, 0, SEEK_SET);
    char ents[512];
    SHOW("listing it once reaped", syscall(SYS_getdents64, dir, ents, sizeof ents));
    close(dir);
    close(gate[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int self = pidfd_open(getpid(), 0);
    printf("own pidfd: %s, close-on-exec %d, flags O_RDWR %d\n", self >= 0 ? "ok" : strerror(errno),
           (fcntl(self, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(self, F_GETFL) & O_ACCMODE) == O_RDWR);
    char link[64], path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", self);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("its link: %s\n", link);
    int again = pidfd_open(getpid(), 0);
    struct stat a, b;
    fstat(self, &a);
    fstat(again, &b);
    printf("two pidfds of one process, one inode: %d\n", a.st_ino == b.st_ino);
    close(again);
    SHOW("signal 0 to itself", pidfd_send_signal(self, 0, NULL, 0));
    SHOW("pidfd_open with bad flags", pidfd_open(getpid(), 1));
    SHOW("pidfd_open of no process", pidfd_open(4000000, 0));
    SHOW("pidfd_open of -1", pidfd_open(-1, 0));
    pthread_t th;
    pthread_create(&th, NULL, idle_thread, NULL);
    while (thread_id == 0)
        usleep(1000);
    /* EINVAL before Linux 6.15 or so, ENOENT since: refused either way. */
    printf("pidfd_open of a thread that does not lead: refused %d\n", pidfd_open(thread_id, 0) < 0);
    char c;
    SHOW("read of a pidfd", read(self, &c, 1));
    SHOW("send_signal with bad flags", pidfd_send_signal(self, 0, NULL, 8));
    SHOW("send_signal on stdout", pidfd_send_signal(1, 0, NULL, 0));
    SHOW("send_signal of signal 99", pidfd_send_signal(self, 99, NULL, 0));

    /* A child killed through its pidfd, seen in poll, select and epoll. */
    int gate[2];
    pid_t child = waiting_child(gate);
    int fd = pidfd_open(child, 0);
    printf("child alive: poll %d\n", ready(fd, 0));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    printf("child alive: epoll %d\n", epoll_wait(ep, &out, 1, 0));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = 0; /* claims the kernel: only to itself */
    SHOW("a kernel siginfo to another", pidfd_send_signal(fd, SIGUSR1, &si, 0));
    si.si_code = SI_QUEUE;
    si.si_signo = SIGUSR2;
    SHOW("a siginfo naming another signal", pidfd_send_signal(fd, SIGUSR1, &si, 0));
    SHOW("SIGTERM to the child", pidfd_send_signal(fd, SIGTERM, NULL, 0));
    printf("child killed: poll %#x\n", ready(fd, 5000));
    int r = epoll_wait(ep, &out, 1, 5000);
    printf("child killed: epoll %d events %#x data %u\n", r, r == 1 ? out.events : 0, out.data.u32);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {5, 0};
    r = select(fd + 1, &rd, NULL, NULL, &tv);
    printf("child killed: select %d readable %d\n", r, FD_ISSET(fd, &rd) != 0);
    memset(&si, 0, sizeof si);
    r = waitid(P_PIDFD, fd, &si, WEXITED);
    printf("waitid(P_PIDFD): %d, pid is the child %d, code %s, status %d\n", r, si.si_pid == child,
           si.si_code == CLD_KILLED ? "CLD_KILLED" : "other", si.si_status);
    close(gate[1]);
    SHOW("signal to a reaped child", pidfd_send_signal(fd, SIGTERM, NULL, 0));
    SHOW("waitid of a reaped child", waitid(P_PIDFD, fd, &si, WEXITED));
    printf("reaped: poll has POLLIN %d\n", (ready(fd, 0) & POLLIN) != 0);
    SHOW("pidfd_open of the reaped child", pidfd_open(child, 0));
    close(ep);
    close(fd);

    /* A non-blocking pidfd: a wait that would block is EAGAIN. */
    child = waiting_child(gate);
    fd = pidfd_open(child, O_NONBLOCK);
    SHOW("waitid on a non-blocking pidfd", waitid(P_PIDFD, fd, &si, WEXITED));
    memset(&si, 0, sizeof si);
    SHOW("the same with WNOHANG", waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG));
    printf("  si_pid %d\n", si.si_pid);
    write(gate[1], "\x05", 1);
    close(gate[1]);
    memset(&si, 0, sizeof si);
    fcntl(fd, F_SETFL, 0);
    r = waitid(P_PIDFD, fd, &si, WEXITED);
    printf("blocking waitid: %d, code %s, status %d\n", r, si.si_code == CLD_EXITED ? "CLD_EXITED" : "other",
           si.si_status);
    close(fd);

    /* A siginfo with a value reaches a child's SA_SIGINFO handler. */
    int done[2];
    pipe(done);
    child = fork();
    if (child == 0) {
        struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
        sigaction(SIGUSR1, &sa, NULL);
        write(done[1], "r", 1);
        while (got_value == -1)
            pause();
        _exit(got_value);
    }
    read(done[0], &c, 1);
    fd = pidfd_open(child, 0);
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 42;
    SHOW("SI_QUEUE with a value to the child", pidfd_send_signal(fd, SIGUSR1, &si, 0));
    int status;
    waitpid(child, &status, 0);
    printf("the child's handler saw value %d\n", WEXITSTATUS(status));
    close(fd);

    /* pidfd_getfd: a copy of a child's descriptor. */
    int secret[2];
    pipe(secret);
    child = waiting_child(gate);
    fd = pidfd_open(child, 0);
    SHOW("getfd with flags", pidfd_getfd(fd, secret[1], 1));
    SHOW("getfd of a closed descriptor", pidfd_getfd(fd, 900, 0));
    int copy = pidfd_getfd(fd, secret[1], 0);
    printf("getfd: %s, close-on-exec %d\n", copy >= 0 ? "ok" : strerror(errno),
           copy >= 0 && (fcntl(copy, F_GETFD) & FD_CLOEXEC) != 0);
    close(secret[1]);
    write(copy, "via the copy", 12);
    close(copy);
    char buf[32] = {0};
    n = read(secret[0], buf, sizeof buf - 1);
    printf("read through it: %s\n", n > 0 ? buf : "nothing");
    close(gate[1]);
    waitpid(child, &status, 0);
    close(fd);

    /* clone(CLONE_PIDFD): the pidfd is written where the parent's tid
     * would be. */
    int cfd = -1;
    long cr = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &cfd, 0, 0);
    if (cr == 0)
        _exit(3);
    printf("clone(CLONE_PIDFD): %s, a pidfd %d\n", cr > 0 ? "ok" : strerror(errno), cfd > 2);
    memset(&si, 0, sizeof si);
    r = waitid(P_PIDFD, cfd, &si, WEXITED);
    printf("its waitid: %d, pid matches %d, status %d\n", r, si.si_pid == cr, si.si_status);
    close(cfd);
    SHOW("clone(CLONE_PIDFD | CLONE_PARENT_SETTID)",
         syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &cfd, 0, 0));
    SHOW("waitid(P_PIDFD) on stdout", waitid(P_PIDFD, 1, &si, WEXITED));
    SHOW("clone(CLONE_PIDFD) with a bad pointer", syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, (void *)8, 0, 0));
    SHOW("  and no child was made", waitpid(-1, &status, WNOHANG));

    /* A child whose exit signal is no signal (200, or 0): its end sends
     * nothing, and only __WALL waits for it. */
    for (int sig = 0; sig <= 200; sig += 200) {
        long c = syscall(SYS_clone, (long)sig, 0, 0, 0, 0);
        if (c == 0)
            _exit(4);
        usleep(50 * 1000);
        r = waitpid((pid_t)c, &status, WNOHANG);
        printf("exit signal %d: a plain waitpid: %s\n", sig, r < 0 ? strerror(errno) : "found it");
        r = waitpid((pid_t)c, &status, __WALL);
        printf("  __WALL: %s, status %d\n", r == c ? "reaped" : strerror(errno),
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }

    /* An exited child's descriptors are gone. */
    child = waiting_child(gate);
    fd = pidfd_open(child, 0);
    close(gate[1]);
    ready(fd, 5000);
    SHOW("getfd of an exited child", pidfd_getfd(fd, 0, 0));
    SHOW("getfd of its own process", pidfd_getfd(self, 1, 0) >= 0 ? 1 : -1);
    waitpid(child, &status, 0);
    close(fd);

    /* PIDFD_SIGNAL_PROCESS_GROUP: the group the pidfd's id leads. */
    child = waiting_child(gate);
    setpgid(child, child);
    fd = pidfd_open(child, 0);
    SHOW("SIGTERM to the child's group", pidfd_send_signal(fd, SIGTERM, NULL, 4));
    waitpid(child, &status, 0);
    printf("the child: killed by %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    SHOW("to its group once reaped", pidfd_send_signal(fd, 0, NULL, 4));
    SHOW("two scopes at once", pidfd_send_signal(fd, 0, NULL, 3));
    close(fd);
    close(gate[1]);
    proc_dirs();
    return 0;
}
