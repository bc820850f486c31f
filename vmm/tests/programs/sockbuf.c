/* SO_SNDBUF and SO_RCVBUF of stream sockets: the defaults, what a set
 * stores (twice the size asked for, within Linux's floor), and that a
 * connection whose ends asked for small buffers holds little before a
 * send would block; a TCP peer that read a little and closed resets the
 * sender, and a send after a peer closed having read everything takes
 * what the send buffer holds, not all it is given. Sizes that depend on
 * the host's tuning (autotuned TCP, wmem_max) are not printed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "check.h"

static int get(int fd, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_SOCKET, opt, &v, &l);
    return v;
}

static void set(int fd, int opt, int v)
{
    if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v) != 0)
        perror("setsockopt");
}

/* Bytes a non-blocking send loop gets in before EAGAIN. */
static long fill(int fd)
{
    static char buf[1024];
    long n = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        ssize_t r = send(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return n;
        n += r;
        if (n > (1 << 22))
            return n;
    }
}

static const char *bounded(long n)
{
    return n >= 1024 && n < 32768 ? "between 1 KiB and 32 KiB" : "out of bounds";
}

/* A TCP connection: listener sized first (an accepted socket takes its
 * options), the client sized after connect. */
static void tcp_pair(int rcvbuf, int sndbuf, int *c, int *s)
{
    struct sockaddr_in a;
    int srv = tcp_listener(&a);
    if (rcvbuf)
        set(srv, SO_RCVBUF, rcvbuf);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    connect(*c, (struct sockaddr *)&a, sizeof a);
    *s = accept(srv, 0, 0);
    if (sndbuf)
        set(*c, SO_SNDBUF, sndbuf);
    close(srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    printf("tcp defaults: sndbuf %d rcvbuf %d\n", get(t, SO_SNDBUF), get(t, SO_RCVBUF));
    set(t, SO_SNDBUF, 4096);
    set(t, SO_RCVBUF, 4096);
    printf("tcp 4096 asked: sndbuf %d rcvbuf %d\n", get(t, SO_SNDBUF), get(t, SO_RCVBUF));
    set(t, SO_SNDBUF, 1);
    set(t, SO_RCVBUF, 0);
    printf("tcp 1 and 0 asked: sndbuf %d rcvbuf %d\n", get(t, SO_SNDBUF), get(t, SO_RCVBUF));
    close(t);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("unix defaults: sndbuf %d rcvbuf %d\n", get(u, SO_SNDBUF), get(u, SO_RCVBUF));
    set(u, SO_SNDBUF, 10000);
    printf("unix 10000 asked: sndbuf %d\n", get(u, SO_SNDBUF));
    close(u);

    int c, s;
    char buf[1024];
    tcp_pair(4096, 4096, &c, &s);
    printf("accepted socket's rcvbuf (its listener's): %d\n", get(s, SO_RCVBUF));
    long n = fill(c);
    printf("tcp, 4 KiB each way: %s in flight\n", bounded(n));
    SHOW("read a little", read(s, buf, 1000));
    close(s);
    usleep(50000);
    /* The peer closed with bytes unread: reset. */
    SHOW("send after the reset", send(c, buf, 10, 0));
    close(c);

    tcp_pair(0, 4096, &c, &s);
    SHOW("send", send(c, buf, 100, 0));
    SHOW("read it all", read(s, buf, sizeof buf));
    close(s);
    usleep(50000);
    static char big[200000];
    n = send(c, big, sizeof big, MSG_DONTWAIT);
    /* Linux takes its send buffer's worth (an skb may overshoot it). */
    printf("a 200000-byte send after the peer closed: %s\n",
           n > 0 && n < (long)sizeof big ? "part of it taken" : "all or nothing");
    SHOW("the next send", send(c, buf, 10, 0));
    close(c);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[0], SO_SNDBUF, 4096);
    printf("unix pair, 4 KiB send buffer: %s in flight\n", bounded(fill(sv[0])));
    close(sv[0]);
    close(sv[1]);
    return 0;
}
