/* TCP on the loopback between processes: IPv4 and IPv6 listeners, a v4
 * client of a v6 server, the names each end sees, poll on a listener,
 * a socket connected through one descriptor used through its duplicate
 * and a forked child's copy, and the errors Linux gives. Ports are the
 * ephemeral ones given. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef SIOCOUTQ
#define SIOCOUTQ 0x5411
#endif

static void name(const char *what, int fd, int peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(fd, (void *)&ss, &len) : getsockname(fd, (void *)&ss, &len);
    if (r) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    char text[64];
    int port;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        port = ntohs(in->sin_port);
    } else {
        struct sockaddr_in6 *in6 = (void *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        port = ntohs(in6->sin6_port);
    }
    printf("%s: family %d, %s, port %s, length %u\n", what, ss.ss_family, text,
           port == 0 ? "0" : port >= 32768 ? "ephemeral" : "fixed", len);
}

static int port_of(int fd)
{
    struct sockaddr_in6 ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (void *)&ss, &len);
    return ntohs(ss.sin6_port);
}

/* A forked client connects to port, sends a line, reads the echo. */
static void client(int family, const char *addr, int port)
{
    if (fork())
        return;
    int c = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss = { 0 };
    if (family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, addr, &in->sin_addr);
    } else {
        struct sockaddr_in6 *in6 = (void *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &in6->sin6_addr);
    }
    if (connect(c, (void *)&ss, family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6)))
        _exit(10);
    if (write(c, "ping\n", 5) != 5)
        _exit(11);
    char buf[16];
    ssize_t n = read(c, buf, sizeof buf);
    /* Printed before the server prints again (it waits for us). */
    name("  client's own name", c, 0);
    name("  client's peer", c, 1);
    _exit(n == 5 && memcmp(buf, "pong\n", 5) == 0 ? 0 : 12);
}

static void serve(const char *what, int family, const char *bind_to, int cfamily,
                  const char *caddr)
{
    printf("%s:\n", what);
    int s = socket(family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, bind_to, &in->sin_addr);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (void *)&ss;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, bind_to, &in6->sin6_addr);
        len = sizeof *in6;
    }
    SHOW("  bind", bind(s, (void *)&ss, len));
    SHOW("  listen", listen(s, 4));
    name("  listener", s, 0);
    struct pollfd p = { s, POLLIN };
    SHOW("  poll before a client", poll(&p, 1, 0));
    client(cfamily, caddr, port_of(s));
    int polled = poll(&p, 1, 5000);
    int a = accept(s, 0, 0);
    char buf[16];
    ssize_t n = read(a, buf, sizeof buf);
    ssize_t w = write(a, "pong\n", 5);
    int st;
    wait(&st);
    printf("  poll with a client: %d\n", polled);
    name("  accepted end's own name", a, 0);
    name("  accepted end's peer", a, 1);
    printf("  read %zd: %.4s, wrote %zd\n", n, buf, w);
    printf("  client exit status %d\n", WEXITSTATUS(st));
    int nodelay = 1;
    SHOW("  TCP_NODELAY", setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay));
    int v;
    socklen_t vl = sizeof v;
    getsockopt(a, SOL_SOCKET, SO_DOMAIN, &v, &vl);
    printf("  SO_DOMAIN %d\n", v);
    getsockopt(a, SOL_SOCKET, SO_PROTOCOL, &v, &vl);
    printf("  SO_PROTOCOL %d\n", v);
    getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
    printf("  TCP_NODELAY reads %d\n", v);
    getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &vl);
    printf("  the listener's SO_REUSEADDR %d\n", v);
    close(a);
    close(s);
}

/* A peer that closed: its FIN reads as the end, the first send is taken
 * (the peer's kernel answers with a reset), the next one fails. */
static void send_after_peer_closed(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = { AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    bind(l, (void *)&in, sizeof in);
    listen(l, 1);
    in.sin_port = htons(port_of(l));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&in, sizeof in);
    int a = accept(l, 0, 0);
    close(c);
    char b[4];
    printf("send after the peer closed:\n");
    SHOW("  read", read(a, b, sizeof b));
    SHOW("  first send", send(a, "late", 4, MSG_NOSIGNAL));
    usleep(100000); /* the reset's way back */
    SHOW("  second send", send(a, "late", 4, MSG_NOSIGNAL));
    close(a);
    close(l);
}

/* 127.0.0.1 and ::1 are apart: one port, a listener on each, each
 * reached by its own family's clients; a wildcard covers them. */
static void loopbacks_apart(void)
{
    int v4 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in in = { AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    bind(v4, (void *)&in, sizeof in);
    int port = port_of(v4);
    int v6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    printf("loopbacks: ::1 on 127.0.0.1's port: %s\n",
           bind(v6, (void *)&in6, sizeof in6) ? strerror(errno) : "ok");
    listen(v4, 4);
    listen(v6, 4);
    in.sin_port = htons(port);
    int c4 = socket(AF_INET, SOCK_STREAM, 0), c6 = socket(AF_INET6, SOCK_STREAM, 0);
    printf("  connect to 127.0.0.1: %s\n", connect(c4, (void *)&in, sizeof in) ? strerror(errno) : "ok");
    printf("  connect to ::1: %s\n", connect(c6, (void *)&in6, sizeof in6) ? strerror(errno) : "ok");
    struct pollfd p[2] = { { v4, POLLIN, 0 }, { v6, POLLIN, 0 } };
    poll(p, 2, 2000);
    int a4 = accept(v4, 0, 0), a6 = accept(v6, 0, 0);
    int more4 = accept(v4, 0, 0), more6 = accept(v6, 0, 0);
    printf("  the IPv4 listener took %d, the IPv6 one %d\n", (a4 >= 0) + (more4 >= 0),
           (a6 >= 0) + (more6 >= 0));
    name("  the IPv6 one's client", a6, 1);
    int any6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 wild = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    SHOW("  [::] on that port", bind(any6, (void *)&wild, sizeof wild));
    int any4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in wild4 = { AF_INET, htons(port), { 0 } };
    SHOW("  0.0.0.0 on that port", bind(any4, (void *)&wild4, sizeof wild4));
    int fds[] = { v4, v6, c4, c6, a4, a6, any6, any4 };
    for (unsigned i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* An endpoint of /proc/net/tcp, its port hidden unless it is one of
 * the fixed ones below (an ephemeral port differs from run to run). */
static void endpoint(const char *e)
{
    const char *port = strrchr(e, ':');
    if (port && strcmp(port, ":B813") && strcmp(port, ":B814") && strcmp(port, ":0000"))
        printf(" %.*s:eph", (int)(port - e), e);
    else
        printf(" %s", e);
}

/* The line of /proc/net/`file` for the socket open as `fd` (found by
 * its inode, as netstat -p and lsof match them), or "none": its
 * endpoints, state and (`queue`) bytes unread; for unix, its flags,
 * type, state and whether its path is `path`. */
static void net_line(const char *what, const char *file, int fd, int queue, const char *path)
{
    struct stat st;
    char name[64], line[512];
    fstat(fd, &st);
    snprintf(name, sizeof name, "/proc/net/%s", file);
    FILE *f = fopen(name, "r");
    if (!f) {
        printf("%s: %s %s\n", what, name, strerror(errno));
        return;
    }
    int unix_file = !strcmp(file, "unix");
    while (fgets(line, sizeof line, f)) {
        char *fields[24];
        int n = 0;
        for (char *t = strtok(line, " \n"); t && n < 24; t = strtok(NULL, " \n"))
            fields[n++] = t;
        int at = unix_file ? 6 : 9;
        if (n > at && strtoul(fields[at], NULL, 10) == st.st_ino) {
            printf("%s:", what);
            if (unix_file) {
                printf(" %s %s %s", fields[3], fields[4], fields[5]);
                printf(" path %s", n > 7 && path && !strcmp(fields[7], path) ? "as bound" : n > 7 ? fields[7] : "none");
            } else {
                endpoint(fields[1]);
                endpoint(fields[2]);
                printf(" %s", fields[3]);
                if (queue)
                    printf(" %s", strchr(fields[4], ':') + 1);
            }
            printf("\n");
            fclose(f);
            return;
        }
    }
    printf("%s: none\n", what);
    fclose(f);
}

/* /proc/net/{tcp,tcp6,unix,dev} list the sockets of this system, with
 * the inode their descriptors link to. */
static void proc_net(void)
{
    printf("/proc/net:\n");
    struct sockaddr_in in = { AF_INET, htons(47123), { htonl(INADDR_LOOPBACK) } };
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(l, (void *)&in, sizeof in) || listen(l, 1)) {
        printf("  port 47123 is taken\n");
        return;
    }
    net_line("  a listener in tcp", "tcp", l, 0, 0);
    net_line("  not in tcp6", "tcp6", l, 0, 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&in, sizeof in);
    int a = accept(l, 0, 0);
    write(c, "hello", 5);
    usleep(20000);
    net_line("  the client", "tcp", c, 0, 0);
    net_line("  the accepted end, 5 bytes unread", "tcp", a, 1, 0);
    close(c);
    usleep(20000);
    net_line("  its peer closed", "tcp", a, 0, 0);
    close(a);
    close(l);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(47124), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    bind(l6, (void *)&in6, sizeof in6);
    listen(l6, 1);
    net_line("  an IPv6 listener in tcp6", "tcp6", l6, 0, 0);
    close(l6);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof un.sun_path, "/tmp/inet-test-%d", (int)getpid());
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(u, (void *)&un, sizeof un);
    listen(u, 1);
    net_line("  an AF_UNIX listener in unix", "unix", u, 0, un.sun_path);
    unlink(un.sun_path);
    close(u);
    int sp[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp);
    net_line("  a socketpair's end", "unix", sp[0], 0, 0);
    close(sp[0]);
    close(sp[1]);
    FILE *d = fopen("/proc/net/dev", "r");
    char line[512];
    int lo = 0;
    while (d && fgets(line, sizeof line, d))
        lo |= strstr(line, " lo:") != NULL;
    printf("  lo in /proc/net/dev: %s\n", lo ? "yes" : "no");
    if (d)
        fclose(d);
}

static int opt(int s, int level, int name)
{
    int v = -1;
    socklen_t n = sizeof v;
    return getsockopt(s, level, name, &v, &n) ? -errno : v;
}

/* TCP's options as Linux keeps them, TCP_INFO, and sendmmsg/recvmmsg on
 * a connection. */
/* IP-level options and the socket-level ones Linux has as it answers
 * them: sshd drops a connection whose IP_OPTIONS are not empty (they read
 * as 4 zero bytes), an option Linux lacks is ENOPROTOOPT, a buffer shorter
 * than an int gets one byte, never four. */
static void ip_options(void)
{
    printf("IP options:\n");
    struct sockaddr_in in = { AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    int l = tcp_listener(&in);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    unsigned char b[48];
    socklen_t n = sizeof b;
    SHOW("  IP_MTU unconnected", getsockopt(c, IPPROTO_IP, IP_MTU, b, &n));
    connect(c, (void *)&in, sizeof in);
    int a = accept(l, 0, 0);
    n = sizeof b;
    SHOW("  IP_OPTIONS of an accepted socket", getsockopt(a, IPPROTO_IP, IP_OPTIONS, b, &n));
    printf("  length %u\n", n);
    printf("  IP_TTL %d, IP_MULTICAST_TTL %d, IP_MULTICAST_LOOP %d\n", opt(c, IPPROTO_IP, IP_TTL),
           opt(c, IPPROTO_IP, IP_MULTICAST_TTL), opt(c, IPPROTO_IP, IP_MULTICAST_LOOP));
    unsigned char one[4] = { 0xee, 0xee, 0xee, 0xee };
    n = 1;
    getsockopt(c, IPPROTO_IP, IP_TTL, one, &n);
    printf("  IP_TTL into one byte: length %u, %d %#x\n", n, one[0], one[1]);
    int v = 0;
    SHOW("  IP_TTL 0", setsockopt(c, IPPROTO_IP, IP_TTL, &v, sizeof v));
    v = 9;
    setsockopt(c, IPPROTO_IP, IP_TTL, &v, sizeof v);
    printf("  IP_TTL 9 read back %d\n", opt(c, IPPROTO_IP, IP_TTL));
    v = -1;
    setsockopt(c, IPPROTO_IP, IP_TTL, &v, sizeof v);
    printf("  IP_TTL -1 read back %d\n", opt(c, IPPROTO_IP, IP_TTL));
    SHOW("  IP_OPTIONS a no-op", setsockopt(c, IPPROTO_IP, IP_OPTIONS, "\x01\x01\x01", 3));
    n = sizeof b;
    getsockopt(c, IPPROTO_IP, IP_OPTIONS, b, &n);
    printf("  read back length %u: %d %d %d %d\n", n, b[0], b[1], b[2], b[3]);
    n = sizeof b;
    SHOW("  an IP option Linux lacks", getsockopt(c, IPPROTO_IP, 9999, b, &n));
    n = sizeof b;
    SHOW("  a TCP option Linux lacks", getsockopt(c, IPPROTO_TCP, 9999, b, &n));
    n = sizeof b;
    SHOW("  IPv6's level of an IPv4 socket", getsockopt(c, IPPROTO_IPV6, IPV6_UNICAST_HOPS, b, &n));
    SHOW("  SO_BINDTODEVICE lo", setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3));
    SHOW("  SO_BINDTODEVICE nosuch0", setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, "nosuch0", 8));
    char dev[16] = "";
    n = sizeof dev;
    getsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, dev, &n);
    printf("  bound to [%s] length %u\n", dev, n);
    unsigned long long k1 = 0, k2 = 0;
    n = sizeof k1;
    getsockopt(c, SOL_SOCKET, SO_COOKIE, &k1, &n);
    n = sizeof k2;
    getsockopt(a, SOL_SOCKET, SO_COOKIE, &k2, &n);
    printf("  SO_COOKIE: set and apart %s\n", k1 && k2 && k1 != k2 ? "yes" : "no");
    n = sizeof b;
    SHOW("  SO_PASSCRED of a TCP socket", getsockopt(c, SOL_SOCKET, SO_PASSCRED, b, &n));
    close(a);
    close(c);
    close(l);
}

static void tcp_options(void)
{
    printf("TCP options:\n");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    printf("  keepalive defaults: idle %d interval %d count %d; segment %d\n", opt(s, IPPROTO_TCP, TCP_KEEPIDLE),
           opt(s, IPPROTO_TCP, TCP_KEEPINTVL), opt(s, IPPROTO_TCP, TCP_KEEPCNT), opt(s, IPPROTO_TCP, TCP_MAXSEG));
    int v = 30;
    SHOW("  TCP_KEEPIDLE 30", setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v));
    printf("  read back %d\n", opt(s, IPPROTO_TCP, TCP_KEEPIDLE));
    v = 0;
    SHOW("  TCP_KEEPCNT 0", setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v));
    v = 40000;
    SHOW("  TCP_KEEPINTVL 40000", setsockopt(s, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v));
    SHOW("  TCP_CONGESTION reno (no NUL)", setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
    char cc[32] = {0};
    socklen_t ccl = sizeof cc;
    getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl);
    printf("  read back [%s] length %u\n", cc, ccl);
    SHOW("  TCP_CONGESTION nosuch", setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "nosuch", 6));
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    printf("  TCP_INFO unconnected: state %d, length %s\n", ti.tcpi_state, tl >= 104 ? "whole" : "short");
    struct sockaddr_in in = { AF_INET, htons(47125), { htonl(INADDR_LOOPBACK) } };
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (void *)&in, sizeof in);
    listen(l, 1);
    getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    printf("  listening: state %d\n", ti.tcpi_state);
    connect(s, (void *)&in, sizeof in);
    int a = accept(l, 0, 0);
    getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    printf("  connected: state %d, segment sizes %s\n", ti.tcpi_state,
           ti.tcpi_snd_mss > 536 && ti.tcpi_rcv_mss > 0 ? "set" : "unset");
    v = 1;
    SHOW("  TCP_FASTOPEN once connected", setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN, &v, sizeof v));
    struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three", 5 } };
    struct mmsghdr mm[3] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
                             { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } },
                             { .msg_hdr = { .msg_iov = &iov[2], .msg_iovlen = 1 } } };
    SHOW("  sendmmsg of 3", sendmmsg(s, mm, 3, 0));
    printf("  lengths %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    int q = -1;
    SHOW("  SIOCOUTQ", ioctl(s, SIOCOUTQ, &q));
    printf("  unsent %d\n", q);
    usleep(20000);
    char b1[4] = {0}, b2[16] = {0};
    struct iovec r1 = { b1, 4 }, r2 = { b2, 16 };
    struct mmsghdr rm[2] = { { .msg_hdr = { .msg_iov = &r1, .msg_iovlen = 1 } },
                             { .msg_hdr = { .msg_iov = &r2, .msg_iovlen = 1 } } };
    SHOW("  recvmmsg of 2", recvmmsg(a, rm, 2, MSG_WAITFORONE, NULL));
    printf("  [%.4s] %u [%s] %u\n", b1, rm[0].msg_len, b2, rm[1].msg_len);
    v = 4;
    SHOW("  SO_RCVLOWAT 4", setsockopt(a, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
    struct pollfd pl = { a, POLLIN, 0 };
    send(s, "ab", 2, 0);
    usleep(20000);
    printf("  2 bytes: poll %d\n", poll(&pl, 1, 0));
    send(s, "cd", 2, 0);
    usleep(20000);
    printf("  4 bytes: poll %d\n", poll(&pl, 1, 0));
    close(s);
    usleep(20000);
    getsockopt(a, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    printf("  its peer closed: state %d\n", ti.tcpi_state);
    close(a);
    close(l);

    /* SO_REUSEPORT: listeners sharing a port take its connections
     * between them (which one is the kernel's choice); a socket without
     * it may not bind there; the port stays while one is left. */
    struct sockaddr_in rp = { AF_INET, htons(47126), { htonl(INADDR_LOOPBACK) } };
    int r[2], one = 1;
    for (int i = 0; i < 2; i++) {
        r[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(r[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        int b = bind(r[i], (void *)&rp, sizeof rp);
        printf("  SO_REUSEPORT listener %d: bind %d listen %d\n", i, b, listen(r[i], 8));
    }
    int plain = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("  a socket without it", bind(plain, (void *)&rp, sizeof rp));
    close(plain);
    int cl[4];
    for (int i = 0; i < 4; i++) {
        cl[i] = socket(AF_INET, SOCK_STREAM, 0);
        connect(cl[i], (void *)&rp, sizeof rp);
    }
    usleep(20000);
    int taken = 0;
    for (int i = 0; i < 2; i++)
        for (int c; (c = accept(r[i], 0, 0)) >= 0; taken++)
            close(c);
    printf("  4 connections accepted between them: %d\n", taken);
    close(r[0]);
    int late = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("  with one closed, a connect", connect(late, (void *)&rp, sizeof rp));
    usleep(20000);
    int c2 = accept(r[1], 0, 0);
    printf("  the other accepts it: %s\n", c2 >= 0 ? "yes" : strerror(errno));
    close(c2);
    close(late);
    for (int i = 0; i < 4; i++)
        close(cl[i]);
    close(r[1]);
}

/* One open file: connected through `s`, the socket is connected through
 * its duplicate and in a child forked before (Lego's connect changed `s`
 * alone, and the child's read waited for ever). */
static void connected_everywhere(void)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    socklen_t len;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int d = dup(s);
    int go[2];
    pipe(go);
    pid_t child = fork();
    if (child == 0) {
        char b[8];
        read(go[0], b, 1);
        ssize_t n = read(s, b, sizeof b);
        printf("the child's copy reads %zd\n", n);
        _exit(0);
    }
    SHOW("connect through one descriptor", connect(s, (struct sockaddr *)&a, sizeof a));
    int c = accept(l, NULL, NULL);
    SHOW("write through its duplicate", write(d, "hi", 2));
    char b[8] = {0};
    SHOW("the peer reads", read(c, b, sizeof b));
    struct sockaddr_in p;
    len = sizeof p;
    SHOW("getpeername of the duplicate", getpeername(d, (struct sockaddr *)&p, &len));
    write(c, "yo", 2);
    write(go[1], "g", 1);
    waitpid(child, NULL, 0);
    close(c);
    close(d);
    close(s);
    close(l);
    close(go[0]);
    close(go[1]);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    connected_everywhere();
    serve("IPv4", AF_INET, "127.0.0.1", AF_INET, "127.0.0.1");
    serve("IPv4 on the wildcard", AF_INET, "0.0.0.0", AF_INET, "127.0.0.1");
    serve("IPv6", AF_INET6, "::1", AF_INET6, "::1");
    serve("IPv6 wildcard, IPv4 client", AF_INET6, "::", AF_INET, "127.0.0.1");
    send_after_peer_closed();
    loopbacks_apart();
    proc_net();
    tcp_options();
    ip_options();

    printf("errors:\n");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    name("  an unbound socket", s, 0);
    name("  its peer", s, 1);
    struct sockaddr_in in = { AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    bind(s, (void *)&in, sizeof in);
    in.sin_port = htons(port_of(s));
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("  connect to a port bound but not listening", connect(t, (void *)&in, sizeof in));
    listen(s, 1);
    int u = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("  bind to a port in use", bind(u, (void *)&in, sizeof in));
    struct sockaddr_in far = { AF_INET, htons(80), { htonl(0x0a000001) } };
    SHOW("  bind to an address not this host's", bind(u, (void *)&far, sizeof far));
    SHOW("  bind with a short address", bind(u, (void *)&in, 4));
    int fl = SOCK_NONBLOCK;
    int nb = socket(AF_INET, SOCK_STREAM | fl, 0);
    bind(nb, (void *)&(struct sockaddr_in){ AF_INET, 0, { htonl(INADDR_LOOPBACK) } }, sizeof in);
    listen(nb, 1);
    SHOW("  accept with none waiting, non-blocking", accept(nb, 0, 0));
    SHOW("  listen without bind", listen(u, 1));
    name("  then its name", u, 0);

    /* A non-blocking connect is in progress, then done (asyncio, libuv
     * and Go connect so); one refused says so by SO_ERROR and poll. */
    struct sockaddr_in to = { AF_INET, htons(port_of(nb)), { htonl(INADDR_LOOPBACK) } };
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SHOW("non-blocking connect", connect(c, (void *)&to, sizeof to));
    printf("  F_GETFL is O_RDWR|O_NONBLOCK: %s\n",
           fcntl(c, F_GETFL) == (O_RDWR | O_NONBLOCK) ? "yes" : "no");
    struct pollfd p = { c, POLLOUT, 0 };
    int pr = poll(&p, 1, 2000);
    printf("  poll %d, POLLOUT %s\n", pr, p.revents & POLLOUT ? "yes" : "no");
    int soerr = -1;
    socklen_t sl = sizeof soerr;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    printf("  SO_ERROR %d\n", soerr);
    SHOW("  connect again", connect(c, (void *)&to, sizeof to));
    SHOW("  and again", connect(c, (void *)&to, sizeof to));
    int a = accept(nb, 0, 0);
    printf("  accepted: %s\n", a >= 0 ? "yes" : strerror(errno));
    close(s);
    int r = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SHOW("non-blocking connect to a closed port", connect(r, (void *)&in, sizeof in));
    p.fd = r;
    pr = poll(&p, 1, 2000);
    printf("  poll %d, POLLOUT %s, POLLERR %s\n", pr, p.revents & POLLOUT ? "yes" : "no",
           p.revents & POLLERR ? "yes" : "no");
    getsockopt(r, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    printf("  SO_ERROR %s\n", strerror(soerr));
    getsockopt(r, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    printf("  then SO_ERROR %d\n", soerr);

    /* IPV6_V6ONLY: an IPv6 socket on an IPv4 socket's port, as asyncio's
     * create_server binds both families. */
    int l4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any4 = { AF_INET, 0, { htonl(INADDR_ANY) } };
    bind(l4, (void *)&any4, sizeof any4);
    listen(l4, 4);
    int port = port_of(l4);
    struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
    int both = socket(AF_INET6, SOCK_STREAM, 0);
    SHOW("an IPv6 socket taking both families, on that port", bind(both, (void *)&any6, sizeof any6));
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    SHOW("a v6-only one", bind(l6, (void *)&any6, sizeof any6));
    listen(l6, 4);
    struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    struct sockaddr_in lo4 = { AF_INET, htons(port), { htonl(INADDR_LOOPBACK) } };
    int c6 = socket(AF_INET6, SOCK_STREAM, 0), c4 = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("  an IPv6 client", connect(c6, (void *)&lo6, sizeof lo6));
    SHOW("  an IPv4 client", connect(c4, (void *)&lo4, sizeof lo4));
    int a6 = accept(l6, 0, 0), a4 = accept(l4, 0, 0);
    printf("  each on its own listener: %s\n", a6 >= 0 && a4 >= 0 ? "yes" : "no");
    close(l6);
    int c6b = socket(AF_INET6, SOCK_STREAM, 0);
    SHOW("  an IPv6 client with only the IPv4 listener", connect(c6b, (void *)&lo6, sizeof lo6));

    /* The errors of calls made wrong (LTP's sendto01, sendmsg01, recv01,
     * recvmsg01, getsockname01, socketpair01, sockioctl01). */
    signal(SIGPIPE, SIG_IGN);
    int never = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("write on a TCP socket never connected", write(never, "x", 1));
    SHOW("send with MSG_NOSIGNAL on it", send(never, "x", 1, MSG_NOSIGNAL));
    SHOW("recv on it", recv(never, &one, 1, MSG_DONTWAIT));
    int minus = -1;
    SHOW("getsockname with a negative length", getsockname(c4, (void *)&lo4, (socklen_t *)&minus));
    struct iovec many[1025];
    for (int i = 0; i < 1025; i++)
        many[i] = (struct iovec){ &one, 1 };
    struct msghdr mh = { .msg_iov = many, .msg_iovlen = 1025 };
    SHOW("recvmsg of 1025 vectors", recvmsg(a4, &mh, MSG_DONTWAIT));
    mh = (struct msghdr){ .msg_name = &lo4, .msg_namelen = -1, .msg_iov = many, .msg_iovlen = 1 };
    SHOW("recvmsg with a negative name length", recvmsg(a4, &mh, MSG_DONTWAIT));
    SHOW("recv of the error queue of a TCP socket", recv(c4, &one, 1, MSG_ERRQUEUE));
    int pair[2];
    SHOW("socketpair of TCP sockets", socketpair(AF_INET, SOCK_STREAM, 0, pair));
    SHOW("socketpair of type 75", socketpair(AF_INET, 75, 0, pair));
    SHOW("socketpair of TCP datagrams", socketpair(AF_INET, SOCK_DGRAM, IPPROTO_TCP, pair));
    int ud = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("UDP sendto with MSG_OOB", sendto(ud, "x", 1, MSG_OOB, (void *)&lo4, sizeof lo4));
    SHOW("UDP recv of the error queue", recv(ud, &one, 1, MSG_ERRQUEUE));
    static char huge[70000];
    struct iovec halves[2] = { { huge, 35000 }, { huge, 35000 } };
    mh = (struct msghdr){ .msg_name = &lo4, .msg_namelen = sizeof lo4, .msg_iov = halves, .msg_iovlen = 2 };
    SHOW("UDP sendmsg of 70000 bytes in two vectors", sendmsg(ud, &mh, 0));
    SHOW("SIOCATMARK on a TCP socket never connected", ioctl(never, SIOCATMARK, &one));
    char fifo[] = "/tmp/inet-fifo-XXXXXX";
    close(mkstemp(fifo));
    unlink(fifo);
    mkfifo(fifo, 0600);
    int ff = open(fifo, O_RDWR);
    SHOW("SIOCATMARK on a FIFO", ioctl(ff, SIOCATMARK, &one));
    unlink(fifo);
    return 0;
}
