/* AF_UNIX sockets as servers, supervisors and worker pools use them:
 * descriptors passed with SCM_RIGHTS (to a forked child, over a named
 * connection, read back with room for fewer, with plain read, peeked),
 * where a stream read stops around them, SOCK_SEQPACKET and SOCK_DGRAM
 * pairs and a SOCK_SEQPACKET server keeping message boundaries, MSG_PEEK,
 * MSG_TRUNC, MSG_WAITALL, SO_PEERCRED, SCM_CREDENTIALS with SO_PASSCRED,
 * and the errors Linux gives for bad control data. Prints what it saw, to
 * compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok"; }

/* Sends `len` bytes of `data` with `n` descriptors. */
static long send_fds(int s, const char *data, size_t len, const int *fds, int n)
{
    char ctl[CMSG_SPACE(sizeof(int) * 300)];
    memset(ctl, 0, sizeof ctl);
    struct iovec io = {(void *)data, len};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    if (n > 0) {
        m.msg_control = ctl;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    /* The system call itself: musl's sendmsg refuses more than 1 KiB of
     * control data (ENOMEM) where Linux takes 253 descriptors. */
    return syscall(SYS_sendmsg, s, &m, 0);
}

/* Receives into `buf` with room for `room` descriptors; the descriptors
 * land in `fds` and their count in `*n`; `*flags` gets msg_flags. */
static long recv_fds(int s, char *buf, size_t len, int room, int *fds, int *n, int *flags,
                     int how)
{
    char ctl[CMSG_SPACE(sizeof(int) * 300)];
    struct iovec io = {buf, len};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    if (room > 0) {
        m.msg_control = ctl;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * room);
    }
    long r = recvmsg(s, &m, how);
    *n = 0;
    *flags = m.msg_flags;
    if (r < 0)
        return r;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + *n, CMSG_DATA(c), sizeof(int) * k);
            *n += k;
        }
    }
    return r;
}

/* Whether the read end `r` of a pipe sees the end of the file (no writer
 * left anywhere) rather than waiting. */
static const char *writers_left(int r)
{
    struct pollfd p = {r, POLLIN, 0};
    poll(&p, 1, 0);
    return (p.revents & POLLHUP) ? "none" : "some";
}

static void rights(void)
{
    int sv[2], p[2], q[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    pipe(q);
    /* Two descriptors in one message; the sender closes its own. */
    int two[2] = {p[1], q[0]};
    printf("send two: %ld\n", send_fds(sv[0], "x", 1, two, 2));
    close(p[1]);
    close(q[0]);
    char buf[64] = {0};
    int got[300], n, flags;
    long r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("received: %ld %.1s, %d descriptors, flags %#x\n", r, buf, n, flags);
    printf("new numbers: %s\n", n == 2 && got[0] != got[1] && got[0] > 2 ? "yes" : "no");
    printf("close-on-exec: %d\n", fcntl(got[0], F_GETFD));
    /* The passed ends are the same pipes. */
    write(got[0], "through", 7);
    memset(buf, 0, sizeof buf);
    printf("read from the pipe: %zd %s\n", read(p[0], buf, sizeof buf), buf);
    write(q[1], "back", 4);
    memset(buf, 0, sizeof buf);
    printf("read the passed end: %zd %s\n", read(got[1], buf, sizeof buf), buf);
    close(got[0]);
    close(got[1]);
    printf("writers of p after closing it: %s\n", writers_left(p[0]));
    close(p[0]);
    close(q[1]);

    /* MSG_CMSG_CLOEXEC. */
    int fd = open("/dev/null", O_RDONLY);
    send_fds(sv[0], "y", 1, &fd, 1);
    recv_fds(sv[1], buf, sizeof buf, 1, got, &n, &flags, MSG_CMSG_CLOEXEC);
    printf("MSG_CMSG_CLOEXEC: %d %s\n", n, fcntl(got[0], F_GETFD) == FD_CLOEXEC ? "set" : "not set");
    /* Said back in msg_flags, as Linux's recvmsg keeps it (Go checks). */
    printf("  msg_flags has it: %s\n", flags & MSG_CMSG_CLOEXEC ? "yes" : "no");
    close(got[0]);

    /* Room for two of three (Linux counts what fits after one header):
     * MSG_CTRUNC, and the third is closed. */
    pipe(p);
    int three[3] = {p[1], p[1], p[1]};
    send_fds(sv[0], "z", 1, three, 3);
    close(p[1]);
    r = recv_fds(sv[1], buf, sizeof buf, 1, got, &n, &flags, 0);
    printf("room for one: %ld, %d descriptors, MSG_CTRUNC %s\n", r, n,
           flags & MSG_CTRUNC ? "set" : "not set");
    printf("writers left with them kept: %s\n", writers_left(p[0]));
    for (int i = 0; i < n; i++)
        close(got[i]);
    printf("writers left after it: %s\n", writers_left(p[0]));
    close(p[0]);

    /* A plain read takes the bytes and closes what came with them. */
    pipe(p);
    send_fds(sv[0], "w", 1, &p[1], 1);
    close(p[1]);
    printf("plain read: %zd\n", read(sv[1], buf, sizeof buf));
    printf("writers left after a plain read: %s\n", writers_left(p[0]));
    close(p[0]);

    /* A stream read stops after the bytes that carried descriptors, and
     * takes them with the bytes before them. */
    fd = open("/dev/null", O_RDONLY);
    write(sv[0], "AAA", 3);
    send_fds(sv[0], "BBB", 3, &fd, 1);
    write(sv[0], "CCC", 3);
    memset(buf, 0, sizeof buf);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("read across: %ld %s with %d\n", r, buf, n);
    close(got[0]);
    memset(buf, 0, sizeof buf);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("then: %ld %s with %d\n", r, buf, n);
    send_fds(sv[0], "DDD", 3, &fd, 1);
    write(sv[0], "EEE", 3);
    memset(buf, 0, sizeof buf);
    r = recv_fds(sv[1], buf, 2, 4, got, &n, &flags, 0);
    printf("part of it: %ld %s with %d\n", r, buf, n);
    close(got[0]);
    memset(buf, 0, sizeof buf);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("the rest: %ld %s with %d\n", r, buf, n);

    /* Peeking shows the descriptors and leaves them queued. */
    send_fds(sv[0], "P", 1, &fd, 1);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, MSG_PEEK);
    printf("peek: %ld with %d\n", r, n);
    close(got[0]);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("after the peek: %ld with %d\n", r, n);
    close(got[0]);

    /* Bad control data. */
    int bad = 999;
    printf("a bad descriptor: %s\n", e(send_fds(sv[0], "x", 1, &bad, 1)));
    int many[300];
    for (int i = 0; i < 300; i++)
        many[i] = fd;
    printf("254 descriptors: %s\n", e(send_fds(sv[0], "x", 1, many, 254)));
    printf("253 descriptors: %s\n", e(send_fds(sv[0], "x", 1, many, 253)));
    r = recv_fds(sv[1], buf, sizeof buf, 300, got, &n, &flags, 0);
    printf("received %ld with %d\n", r, n);
    for (int i = 0; i < n; i++)
        close(got[i]);
    char ctl[64] = {0};
    struct iovec io = {"x", 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl};
    struct cmsghdr *c = (struct cmsghdr *)ctl;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = 200;
    m.msg_controllen = 24;
    printf("cmsg_len past the buffer: %s\n", e(sendmsg(sv[0], &m, 0)));
    c->cmsg_len = 8;
    printf("cmsg_len too short: %s\n", e(sendmsg(sv[0], &m, 0)));
    c->cmsg_len = CMSG_LEN(4);
    c->cmsg_type = 77;
    printf("an unknown type: %s\n", e(sendmsg(sv[0], &m, 0)));
    c->cmsg_level = 6;
    printf("another level: %s\n", e(sendmsg(sv[0], &m, 0)));
    printf("read it: %zd\n", read(sv[1], buf, sizeof buf));
    printf("no bytes with a descriptor: %ld\n", send_fds(sv[0], "", 0, &fd, 1));
    printf("then nothing: %s\n", e(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    close(fd);

    /* SO_PEERCRED of a pair: this process. */
    struct ucred cr;
    socklen_t len = sizeof cr;
    printf("SO_PEERCRED: %s\n", e(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len)));
    printf("peer is me: %s, len %u\n",
           cr.pid == getpid() && cr.uid == getuid() && cr.gid == getgid() ? "yes" : "no", len);
    close(sv[0]);
    close(sv[1]);
}

/* A forked worker gets a file opened after the fork, writes to it, and
 * sends back a pipe of its own. */
static void to_a_child(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        char b[8];
        int got[4], n, flags;
        recv_fds(sv[1], b, sizeof b, 4, got, &n, &flags, 0);
        dprintf(got[0], "written by the child\n");
        close(got[0]);
        int p[2];
        pipe(p);
        send_fds(sv[1], "p", 1, &p[0], 1);
        write(p[1], "from the child's pipe", 21);
        _exit(0);
    }
    close(sv[1]);
    char path[] = "/tmp/passfd-XXXXXX";
    int fd = mkstemp(path);
    send_fds(sv[0], "f", 1, &fd, 1);
    char b[64] = {0};
    int got[4], n, flags;
    recv_fds(sv[0], b, sizeof b, 4, got, &n, &flags, 0);
    memset(b, 0, sizeof b);
    printf("the child's pipe: %zd %s\n", read(got[0], b, sizeof b), b);
    int status;
    waitpid(child, &status, 0);
    memset(b, 0, sizeof b);
    pread(fd, b, sizeof b, 0);
    printf("the file: %s", b);
    printf("its pipe after it ended: %zd\n", read(got[0], b, sizeof b));
    unlink(path);
    close(fd);
    close(got[0]);
    close(sv[0]);
}

static void packets(int type, const char *name)
{
    int sv[2];
    printf("-- %s\n", name);
    printf("socketpair: %s\n", e(socketpair(AF_UNIX, type, 0, sv)));
    int t = 0;
    socklen_t len = sizeof t;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &t, &len);
    printf("SO_TYPE: %s\n", t == type ? "same" : "other");
    send(sv[0], "hello", 5, 0);
    send(sv[0], "", 0, 0);
    write(sv[0], "0123456789", 10);
    int avail = -1;
    ioctl(sv[1], FIONREAD, &avail);
    printf("FIONREAD: %d\n", avail);
    char buf[64] = {0};
    int got[4], n, flags;
    long r = recv_fds(sv[1], buf, 4, 0, got, &n, &flags, MSG_PEEK);
    printf("peek 4: %ld %.4s MSG_TRUNC %s\n", r, buf, flags & MSG_TRUNC ? "set" : "not set");
    r = recv_fds(sv[1], buf, 4, 0, got, &n, &flags, 0);
    printf("recv 4: %ld %.4s MSG_TRUNC %s\n", r, buf, flags & MSG_TRUNC ? "set" : "not set");
    printf("empty one: %zd\n", recv(sv[1], buf, sizeof buf, 0));
    printf("MSG_TRUNC: %zd\n", recv(sv[1], buf, 2, MSG_TRUNC));
    printf("none left: %s\n", e(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    /* Descriptors go with their message. */
    int fd = open("/dev/null", O_RDONLY);
    send_fds(sv[0], "m1", 2, &fd, 1);
    send_fds(sv[0], "m2", 2, NULL, 0);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("m1: %ld with %d\n", r, n);
    close(got[0]);
    r = recv_fds(sv[1], buf, sizeof buf, 4, got, &n, &flags, 0);
    printf("m2: %ld with %d\n", r, n);
    close(fd);
    static char big[300000];
    printf("300000 bytes: %s\n", e(send(sv[0], big, sizeof big, 0)));
    printf("100000 bytes: %ld\n", (long)send(sv[0], big, 100000, 0));
    printf("received: %zd\n", recv(sv[1], big, sizeof big, 0));
    /* A forked child's messages come whole. */
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 5; i++) {
            char m[32];
            int k = snprintf(m, sizeof m, "message %d%.*s", i, i, "!!!!!");
            send(sv[1], m, k, 0);
        }
        _exit(0);
    }
    for (int i = 0; i < 5; i++) {
        memset(buf, 0, sizeof buf);
        printf("from the child: %zd %s\n", recv(sv[0], buf, sizeof buf, 0), buf);
    }
    waitpid(child, NULL, 0);
    close(sv[1]);
    struct pollfd p = {sv[0], POLLIN | POLLOUT, 0};
    int ready = poll(&p, 1, 0);
    printf("poll, peer closed: %d %#x\n", ready, p.revents);
    printf("recv, peer closed: %s\n", e(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT)));
    printf("send, peer closed: %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);
}

/* A SOCK_SEQPACKET server and a forked client: messages stay whole,
 * the client passes a descriptor, and each side sees the other in
 * SO_PEERCRED. */
static void seqpacket_server(void)
{
    printf("-- seqpacket server\n");
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path + 1, "lego-passfd-test");
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen("lego-passfd-test");
    printf("bind: %s\n", e(bind(s, (struct sockaddr *)&a, alen)));
    printf("listen: %s\n", e(listen(s, 4)));
    pid_t child = fork();
    if (child == 0) {
        int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        if (connect(c, (struct sockaddr *)&a, alen) < 0)
            _exit(1);
        send(c, "first", 5, 0);
        send(c, "second message", 14, 0);
        int p[2];
        pipe(p);
        send_fds(c, "pipe", 4, &p[1], 1);
        close(p[1]);
        char b[8];
        read(p[0], b, sizeof b);
        struct ucred cr;
        socklen_t len = sizeof cr;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len);
        char m[32];
        snprintf(m, sizeof m, "%s", cr.pid == getppid() ? "server is parent" : "other");
        send(c, m, strlen(m), 0);
        _exit(0);
    }
    int c = accept(s, NULL, NULL);
    int t = 0;
    socklen_t len = sizeof t;
    getsockopt(c, SOL_SOCKET, SO_TYPE, &t, &len);
    printf("accepted a seqpacket: %s\n", t == SOCK_SEQPACKET ? "yes" : "no");
    char buf[64];
    int got[4], n, flags;
    for (int i = 0; i < 3; i++) {
        memset(buf, 0, sizeof buf);
        long r = recv_fds(c, buf, sizeof buf, 4, got, &n, &flags, 0);
        printf("message: %ld %s with %d\n", r, buf, n);
    }
    write(got[0], "go", 2);
    close(got[0]);
    memset(buf, 0, sizeof buf);
    printf("message: %zd %s\n", recv(c, buf, sizeof buf, 0), buf);
    struct ucred cr;
    len = sizeof cr;
    getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len);
    printf("peer is the child: %s\n", cr.pid == child ? "yes" : "no");
    waitpid(child, NULL, 0);
    printf("after the client: %zd\n", recv(c, buf, sizeof buf, 0));
    close(c);
    close(s);
}

/* A path name under /tmp is a socket file, as servers that chmod or
 * unlink theirs expect (Python's multiprocessing forkserver chmods its). */
static void socket_files(void)
{
    printf("-- socket files\n");
    char path[64];
    snprintf(path, sizeof path, "/tmp/lego-passfd-%d.sock", (int)getpid());
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind: %s\n", e(bind(s, (struct sockaddr *)&a, sizeof a)));
    struct stat st;
    printf("stat: %s\n", e(stat(path, &st)));
    printf("a socket: %s, mode %o\n", S_ISSOCK(st.st_mode) ? "yes" : "no", st.st_mode & 0777);
    printf("chmod: %s\n", e(chmod(path, 0600)));
    stat(path, &st);
    printf("mode now %o\n", st.st_mode & 0777);
    printf("open: %s\n", e(open(path, O_RDONLY)));
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind again: %s\n", e(bind(t, (struct sockaddr *)&a, sizeof a)));
    listen(s, 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect: %s\n", e(connect(c, (struct sockaddr *)&a, sizeof a)));
    close(c);
    int q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    printf("a seqpacket to a stream: %s\n", e(connect(q, (struct sockaddr *)&a, sizeof a)));
    close(q);
    close(s);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect after close: %s\n", e(connect(c, (struct sockaddr *)&a, sizeof a)));
    close(c);
    printf("the file stays: %s\n", e(access(path, F_OK)));
    printf("unlink: %s\n", e(unlink(path)));
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect after unlink: %s\n", e(connect(c, (struct sockaddr *)&a, sizeof a)));
    close(c);
    printf("bind after unlink: %s\n", e(bind(t, (struct sockaddr *)&a, sizeof a)));
    unlink(path);
    close(t);
    strcpy(a.sun_path, "/tmp/no-such-dir/x.sock");
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind in no directory: %s\n", e(bind(t, (struct sockaddr *)&a, sizeof a)));
    close(t);
}

/* MSG_WAITALL on a stream: the whole buffer, from two writes. */
static void waitall(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t child = fork();
    if (child == 0) {
        write(sv[1], "12345", 5);
        usleep(50000);
        write(sv[1], "67890", 5);
        _exit(0);
    }
    char buf[16] = {0};
    printf("MSG_WAITALL: %zd %s\n", recv(sv[0], buf, 10, MSG_WAITALL), buf);
    waitpid(child, NULL, 0);
    close(sv[0]);
    close(sv[1]);
}

/* Sends `len` bytes on `fd`, claiming `cred` if given (and passing `pass`
 * if not -1); the send's result. */
static long send_creds(int fd, const char *data, size_t len, const struct ucred *cred, int pass)
{
    char control[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = {(void *)data, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control};
    size_t used = 0;
    if (cred) {
        struct cmsghdr *c = (struct cmsghdr *)control;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof *cred);
        memcpy(CMSG_DATA(c), cred, sizeof *cred);
        used = CMSG_SPACE(sizeof *cred);
    }
    if (pass >= 0) {
        struct cmsghdr *c = (struct cmsghdr *)(control + used);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass, sizeof(int));
        used += CMSG_SPACE(sizeof(int));
    }
    m.msg_controllen = used;
    if (!used)
        m.msg_control = 0;
    return sendmsg(fd, &m, 0);
}

/* Receives on `fd` with a control buffer of `room` bytes and says what
 * came: the bytes, the credentials (whose they are), descriptors, flags. */
static void recv_creds(const char *what, int fd, size_t room)
{
    char control[256], data[16] = {0};
    memset(control, 0, sizeof control);
    struct iovec iov = {data, sizeof data - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = room};
    long n = recvmsg(fd, &m, MSG_DONTWAIT);
    printf("%s: %ld bytes '%s',", what, n, n > 0 ? data : "");
    int any = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        any = 1;
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(c), sizeof u);
            printf(" credentials (pid %s, uid %s, gid %s)", u.pid == getpid() ? "mine" : "other",
                   u.uid == getuid() ? "mine" : "other", u.gid == getgid() ? "mine" : "other");
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int got;
            memcpy(&got, CMSG_DATA(c), sizeof got);
            printf(" a descriptor");
            close(got);
        } else {
            printf(" a message of type %d, %zu bytes", c->cmsg_type, (size_t)c->cmsg_len);
        }
    }
    printf("%s%s\n", any ? "" : " no control data",
           m.msg_flags & MSG_CTRUNC ? ", MSG_CTRUNC" : "");
}

/* SCM_CREDENTIALS: given by the kernel to a receiver that set SO_PASSCRED
 * (the sender's own, or what it claimed and may claim), before any
 * descriptors; refused (EPERM) when not the sender's. */
static void credentials(void)
{
    int one = 1;
    struct ucred me = {getpid(), getuid(), getgid()};
    for (int ty = 0; ty < 2; ty++) {
        int type = ty ? SOCK_DGRAM : SOCK_STREAM;
        const char *name = ty ? "datagram" : "stream";
        char what[64];
        int sv[2];
        socketpair(AF_UNIX, type, 0, sv);
        snprintf(what, sizeof what, "%s without SO_PASSCRED", name);
        send_creds(sv[1], "a", 1, &me, -1);
        recv_creds(what, sv[0], 256);
        setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
        snprintf(what, sizeof what, "%s, claimed", name);
        printf("%s: send %s\n", what, e(send_creds(sv[1], "b", 1, &me, -1)));
        recv_creds(what, sv[0], 256);
        snprintf(what, sizeof what, "%s, not claimed", name);
        send_creds(sv[1], "c", 1, 0, -1);
        recv_creds(what, sv[0], 256);
        snprintf(what, sizeof what, "%s, with a descriptor", name);
        send_creds(sv[1], "d", 1, &me, sv[1]);
        recv_creds(what, sv[0], 256);
        snprintf(what, sizeof what, "%s, no room", name);
        send_creds(sv[1], "e", 1, &me, -1);
        recv_creds(what, sv[0], 8);
        if (type == SOCK_DGRAM) {
            send_creds(sv[1], "", 0, &me, -1);
            recv_creds("datagram, empty", sv[0], 256);
        }
        struct ucred other = me;
        other.pid = getpid() + 100000;
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            /* Without privileges: only one's own may be claimed. */
            if (getuid() == 0 && (setgid(65534) || setuid(65534)))
                _exit(1);
            struct ucred root = {getpid(), 0, 0};
            printf("%s: claiming root %s\n", name, e(send_creds(sv[1], "f", 1, &root, -1)));
            printf("%s: claiming another pid %s\n", name, e(send_creds(sv[1], "f", 1, &other, -1)));
            struct ucred own = {getpid(), getuid(), getgid()};
            printf("%s: claiming its own %s\n", name, e(send_creds(sv[1], "g", 1, &own, -1)));
            fflush(stdout);
            _exit(0);
        }
        waitpid(child, 0, 0);
        snprintf(what, sizeof what, "%s, from the child", name);
        recv_creds(what, sv[0], 256);
        close(sv[0]);
        close(sv[1]);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rights();
    to_a_child();
    packets(SOCK_SEQPACKET, "seqpacket pair");
    packets(SOCK_DGRAM, "datagram pair");
    seqpacket_server();
    socket_files();
    waitall();
    credentials();
    fflush(stdout);
    return 0;
}
