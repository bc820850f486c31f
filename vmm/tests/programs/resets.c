/* A connection whose other end closed with bytes unread is reset, as
 * Linux resets it: AF_UNIX pairs (stream: what was sent before is read
 * first; seqpacket: the reset first), TCP on the loopback (the first send
 * reports the reset too), and listeners closed with connections queued.
 * poll shows POLLERR while the reset is pending; SO_ERROR takes it.
 * SO_LINGER at 0 resets a TCP connection at close. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "check.h"

static void revents(int fd)
{
    struct pollfd p = {fd, POLLIN | POLLOUT, 0};
    poll(&p, 1, 0);
    printf("  poll:%s%s%s%s\n", p.revents & POLLIN ? " in" : "", p.revents & POLLOUT ? " out" : "",
           p.revents & POLLERR ? " err" : "", p.revents & POLLHUP ? " hup" : "");
}

static void so_error(int fd)
{
    int e = -1;
    socklen_t l = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
    printf("  SO_ERROR: %s\n", e ? strerror(e) : "none");
}

static void pair(const char *what, int type)
{
    char b[8];
    int sv[2];
    printf("%s, closed with bytes unread:\n", what);
    socketpair(AF_UNIX, type, 0, sv);
    write(sv[1], "to-a", 4);
    write(sv[0], "to-b", 4);
    close(sv[0]);
    revents(sv[1]);
    SHOW("  read", read(sv[1], b, sizeof b));
    SHOW("  read", read(sv[1], b, sizeof b));
    SHOW("  send", send(sv[1], "x", 1, 0));
    SHOW("  read", read(sv[1], b, sizeof b));
    close(sv[1]);
    printf("%s, a send first:\n", what);
    socketpair(AF_UNIX, type, 0, sv);
    write(sv[1], "to-a", 4);
    close(sv[0]);
    SHOW("  send", send(sv[1], "x", 1, 0));
    so_error(sv[1]);
    SHOW("  read", read(sv[1], b, sizeof b));
    close(sv[1]);
    printf("%s, closed having read everything:\n", what);
    socketpair(AF_UNIX, type, 0, sv);
    close(sv[0]);
    revents(sv[1]);
    SHOW("  read", read(sv[1], b, sizeof b));
    close(sv[1]);
}

static void datagram_pair(void)
{
    char b[8];
    int sv[2];
    printf("datagram pair, closed with bytes unread (no reset):\n");
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    write(sv[1], "to-a", 4);
    write(sv[0], "to-b", 4);
    close(sv[0]);
    revents(sv[1]);
    SHOW("  recv", recv(sv[1], b, sizeof b, MSG_DONTWAIT));
    SHOW("  recv", recv(sv[1], b, sizeof b, MSG_DONTWAIT));
    so_error(sv[1]);
    SHOW("  send", send(sv[1], "x", 1, 0));
    close(sv[1]);
}

/* The peer's reset after it had sent its FIN (Linux's CLOSE_WAIT):
 * EPIPE waits, shown by poll and SO_ERROR; reads see the end. */
/* A connection to listener `l` at `in`: the client's end, and the
 * accepted one in *a. */
static int tcp_connection(int l, struct sockaddr_in *in, int *a)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)in, sizeof *in);
    *a = accept(l, 0, 0);
    return c;
}

static void tcp_close_wait(void)
{
    char b[8];
    struct sockaddr_in in;
    int l = tcp_listener(&in);
    printf("TCP, a send taken after the peer closed:\n");
    int a;
    int c = tcp_connection(l, &in, &a);
    close(a);
    usleep(20000);
    SHOW("  send", send(c, "x", 1, 0));
    usleep(20000);
    revents(c);
    SHOW("  read", read(c, b, sizeof b));
    so_error(c);
    revents(c);
    SHOW("  send", send(c, "x", 1, 0));
    close(c);
    printf("TCP, the peer shut down its side, then closed with bytes unread:\n");
    c = tcp_connection(l, &in, &a);
    write(c, "unread", 6);
    shutdown(a, SHUT_WR);
    usleep(20000);
    close(a);
    usleep(20000);
    revents(c);
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  send", send(c, "x", 1, 0));
    so_error(c);
    revents(c);
    close(c);
    close(l);
}

static void tcp(void)
{
    char b[8];
    struct sockaddr_in in;
    int l = tcp_listener(&in);
    printf("TCP, closed with bytes unread:\n");
    int a;
    int c = tcp_connection(l, &in, &a);
    write(c, "unread", 6);
    write(a, "ok", 2);
    usleep(20000);
    close(a);
    usleep(20000);
    revents(c);
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  send", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);
    printf("TCP, a send first:\n");
    c = tcp_connection(l, &in, &a);
    write(c, "unread", 6);
    usleep(20000);
    close(a);
    usleep(20000);
    SHOW("  send", send(c, "x", 1, 0));
    SHOW("  send", send(c, "x", 1, 0));
    SHOW("  read", read(c, b, sizeof b));
    close(c);
    printf("TCP, SO_ERROR takes it:\n");
    c = tcp_connection(l, &in, &a);
    write(c, "unread", 6);
    usleep(20000);
    close(a);
    usleep(20000);
    so_error(c);
    so_error(c);
    SHOW("  read", read(c, b, sizeof b));
    close(c);
    printf("TCP, the listener closed with the connection queued:\n");
    c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&in, sizeof in);
    close(l);
    usleep(20000);
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  send", send(c, "x", 1, 0));
    close(c);
}

static void unix_listener(void)
{
    char b[8];
    struct sockaddr_un un = {AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "/tmp/resets-%d.sock", (int)getpid());
    unlink(un.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (void *)&un, sizeof un);
    listen(l, 4);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c, (void *)&un, sizeof un);
    close(l);
    printf("AF_UNIX, the listener closed with the connection queued:\n");
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  read", read(c, b, sizeof b));
    SHOW("  send", send(c, "x", 1, 0));
    close(c);
    unlink(un.sun_path);
}

/* SO_LINGER at 0 seconds: close resets the connection at once (an
 * abortive close), even with nothing unread; the peer reads what came
 * before, then ECONNRESET, and has no peer name any more. */
static void tcp_linger(void)
{
    char b[64];
    struct sockaddr_in in;
    int l = tcp_listener(&in);
    int a;
    int c = tcp_connection(l, &in, &a);
    struct linger lg = {1, 0}, got = {7, 7};
    socklen_t len = sizeof got;
    printf("TCP, closed with SO_LINGER {1, 0}:\n");
    SHOW("  setsockopt SO_LINGER", setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    SHOW("  getsockopt SO_LINGER", getsockopt(c, SOL_SOCKET, SO_LINGER, &got, &len));
    printf("  linger: on %d, %d s, %d bytes\n", got.l_onoff != 0, got.l_linger, (int)len);
    SHOW("  setsockopt SO_LINGER short", setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, 4));
    /* Turned off, it keeps its seconds. */
    struct linger five = {1, 5}, off = {0, 10};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &five, sizeof five);
    setsockopt(c, SOL_SOCKET, SO_LINGER, &off, sizeof off);
    len = sizeof got;
    getsockopt(c, SOL_SOCKET, SO_LINGER, &got, &len);
    printf("  after {1, 5} then {0, 10}: on %d, %d s\n", got.l_onoff != 0, got.l_linger);
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    SHOW("  send", send(c, "before", 6, 0));
    SHOW("  getpeername before", getpeername(a, (void *)&in, &len));
    close(c);
    struct sockaddr_in peer;
    len = sizeof peer;
    SHOW("  getpeername after", getpeername(a, (void *)&peer, &len));
    revents(a);
    SHOW("  recv", recv(a, b, sizeof b, MSG_DONTWAIT));
    SHOW("  recv", recv(a, b, sizeof b, MSG_DONTWAIT));
    SHOW("  recv", recv(a, b, sizeof b, MSG_DONTWAIT));
    SHOW("  send", send(a, "x", 1, MSG_NOSIGNAL));
    close(a);
    close(l);
}

/* UDP keeps the SOL_SOCKET flags a program sets, as TCP does. */
static void udp_options(void)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int v = -1, one = 1;
    socklen_t len = sizeof v;
    printf("UDP options:\n");
    SHOW("  getsockopt SO_BROADCAST", getsockopt(u, SOL_SOCKET, SO_BROADCAST, &v, &len));
    printf("  SO_BROADCAST %d\n", v);
    SHOW("  setsockopt SO_BROADCAST", setsockopt(u, SOL_SOCKET, SO_BROADCAST, &one, sizeof one));
    SHOW("  getsockopt SO_BROADCAST", getsockopt(u, SOL_SOCKET, SO_BROADCAST, &v, &len));
    printf("  SO_BROADCAST %d\n", v);
    SHOW("  getsockopt SO_REUSEPORT", getsockopt(u, SOL_SOCKET, SO_REUSEPORT, &v, &len));
    printf("  SO_REUSEPORT %d\n", v);
    SHOW("  getsockopt SO_TYPE", getsockopt(u, SOL_SOCKET, SO_TYPE, &v, &len));
    printf("  SO_TYPE %d\n", v);
    close(u);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    pair("stream pair", SOCK_STREAM);
    pair("seqpacket pair", SOCK_SEQPACKET);
    datagram_pair();
    tcp();
    tcp_close_wait();
    unix_listener();
    tcp_linger();
    udp_options();
    return 0;
}
