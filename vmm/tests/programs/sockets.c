/* socketpair(AF_UNIX, SOCK_STREAM), as event loops and parent/child
 * pairs use it: both directions, send and recv flags, scatter/gather
 * messages, shutdown, a peer that is gone, poll, fork, and the errors
 * Linux gives for what is not served. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *e(int r) { return r < 0 ? strerror(errno) : "ok"; }

int main(void) {
    int sv[2];
    printf("socketpair: %s\n", e(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)));
    char buf[64] = {0};
    write(sv[0], "ping", 4);
    printf("read: %zd %.4s\n", read(sv[1], buf, sizeof buf), buf);
    send(sv[1], "pong", 4, 0);
    printf("recv: %zd %.4s\n", recv(sv[0], buf, sizeof buf, 0), buf);
    printf("empty, MSG_DONTWAIT: %s\n", e(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT)));
    struct iovec out[2] = {{"scat", 4}, {"ter", 3}};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 2};
    printf("sendmsg: %zd\n", sendmsg(sv[0], &m, 0));
    char a[3] = {0}, b[8] = {0};
    struct iovec in[2] = {{a, 3}, {b, 8}};
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
    ssize_t got = recvmsg(sv[1], &r, 0);
    printf("recvmsg: %zd %.3s|%.4s flags %d\n", got, a, b, r.msg_flags);
    struct pollfd p[2] = {{sv[0], POLLIN | POLLOUT, 0}, {sv[1], POLLIN, 0}};
    int ready = poll(p, 2, 0);
    printf("poll: %d, %#x %#x\n", ready, p[0].revents, p[1].revents);
    int type = 0;
    socklen_t len = sizeof type;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len);
    printf("SO_TYPE stream: %s\n", type == SOCK_STREAM ? "yes" : "no");
    struct stat st;
    fstat(sv[0], &st);
    printf("a socket: %s\n", S_ISSOCK(st.st_mode) ? "yes" : "no");

    /* shutdown: the peer reads the end; writing after it fails. */
    shutdown(sv[0], SHUT_WR);
    printf("after shutdown: read %zd\n", read(sv[1], buf, sizeof buf));
    printf("write after shutdown: %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);
    close(sv[1]);

    /* A parent and its child talk over one. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        char req[16] = {0};
        ssize_t n = read(sv[1], req, sizeof req);
        dprintf(sv[1], "child got %zd: %s", n, req);
        _exit(0);
    }
    close(sv[1]);
    write(sv[0], "hello", 5);
    memset(buf, 0, sizeof buf);
    ssize_t n = read(sv[0], buf, sizeof buf);
    printf("from the child: %.*s\n", (int)n, buf);
    waitpid(child, NULL, 0);
    printf("child gone, read: %zd\n", read(sv[0], buf, sizeof buf));
    printf("child gone, send: %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);

    /* Options a program sets read back as Linux gives them. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, &vl);
    printf("SO_REUSEADDR unset: %d\n", v);
    int on = 5, zero = 0, ten = 10;
    setsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    getsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
    printf("SO_KEEPALIVE set to 5 reads %d\n", v);
    getsockopt(sv[1], SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
    printf("the other end's: %d\n", v);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &v, &vl);
    printf("SO_RCVLOWAT unset: %d\n", v);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &zero, sizeof zero);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &v, &vl);
    printf("SO_RCVLOWAT set to 0 reads %d\n", v);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &ten, sizeof ten);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &v, &vl);
    printf("set to 10 reads %d\n", v);
    printf("a short value: %s\n", e(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &on, 2)));

    /* SO_RCVTIMEO and SO_SNDTIMEO end a wait with EAGAIN. */
    struct timeval tv = {0, 100000}, back = {0, 0};
    printf("SO_RCVTIMEO: %s\n", e(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)));
    socklen_t gl = sizeof back;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &back, &gl);
    printf("reads back %ld.%06ld, %u bytes\n", (long)back.tv_sec, (long)back.tv_usec, gl);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rv = recv(sv[0], buf, sizeof buf, 0);
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    errno = saved;
    /* Linux counts the time in jiffies and may end it a tick early. */
    printf("recv with nothing: %s, after %s\n", e(rv), ms >= 80 && ms < 2000 ? "about 100 ms" : "the wrong time");
    printf("read with nothing: %s\n", e(read(sv[0], buf, sizeof buf)));
    struct timeval bad = {0, 2000000};
    printf("2 000 000 us: %s\n", e(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad)));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    static char fill[4096];
    while (write(sv[1], fill, sizeof fill) > 0)
        ;
    fcntl(sv[1], F_SETFL, 0);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    printf("send into a full socket: %s\n", e(send(sv[1], fill, sizeof fill, 0)));
    close(sv[0]);
    close(sv[1]);

    printf("AF_INET pair: %s\n", e(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    printf("getpeername of a file: %s\n", e(getpeername(1, NULL, NULL)));
    return 0;
}
