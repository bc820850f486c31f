/* UDP on the loopback: datagrams whole with their sender, a connected
 * socket, recvmsg's MSG_TRUNC, SO_RCVTIMEO, poll, a forked sender, IPv6,
 * and a datagram to a port nobody has (sent, and lost; refused to a
 * connected sender). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static int port_of(int fd)
{
    struct sockaddr_in6 ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (void *)&ss, &len);
    return ntohs(ss.sin6_port);
}

static struct sockaddr_in lo(int port)
{
    struct sockaddr_in a = { AF_INET, htons(port), { htonl(INADDR_LOOPBACK) } };
    return a;
}

/* UDP-Lite (IPPROTO_UDPLITE): datagrams as UDP's, ports of its own, and
 * the checksum coverage options. */
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
static void udp_lite(void)
{
    char buf[64];
    int l = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
    SHOW("UDP-Lite socket", l >= 0);
    struct sockaddr_in any = lo(0);
    bind(l, (void *)&any, sizeof any);
    struct sockaddr_in at = lo(port_of(l));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("a UDP socket on the same port", bind(u, (void *)&at, sizeof at));
    int c = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
    SHOW("sendto from UDP-Lite", sendto(c, "lite", 4, 0, (void *)&at, sizeof at));
    SHOW("recv on the UDP-Lite socket", recv(l, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("recv on the UDP socket", recv(u, buf, sizeof buf, MSG_DONTWAIT));
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(l, SOL_SOCKET, SO_PROTOCOL, &v, &vl);
    printf("SO_PROTOCOL %d\n", v);
    int three = 3, twenty = 20, zero = 0;
    SHOW("send coverage 3", setsockopt(c, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &three, sizeof three));
    SHOW("get send coverage", getsockopt(c, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &v, &vl));
    printf("send coverage %d\n", v);
    SHOW("coverage on UDP", setsockopt(u, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &three, sizeof three));
    int minus = -5;
    SHOW("send coverage -5 at SOL_UDP", setsockopt(c, IPPROTO_UDP, UDPLITE_SEND_CSCOV, &minus, sizeof minus));
    SHOW("get it at SOL_UDP", getsockopt(c, IPPROTO_UDP, UDPLITE_SEND_CSCOV, &v, &vl));
    printf("send coverage %d\n", v);
    SHOW("receive coverage 20", setsockopt(l, IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, &twenty, sizeof twenty));
    char long_one[40] = {0};
    SHOW("sendto, 8 bytes covered", sendto(c, long_one, sizeof long_one, 0, (void *)&at, sizeof at));
    SHOW("recv (dropped: covers too little)", recv(l, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("send coverage 0 (all)", setsockopt(c, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &zero, sizeof zero));
    SHOW("sendto, all covered", sendto(c, long_one, sizeof long_one, 0, (void *)&at, sizeof at));
    SHOW("recv", recv(l, buf, sizeof buf, MSG_DONTWAIT));
    close(l);
    close(u);
    close(c);
}

/* 127.0.0.1 and ::1 are apart: a socket on each of one port, each
 * gets what is sent to its own address; IPv6's wildcard covers both. */
/* A connected socket whose datagram no socket took: the loopback's port
 * unreachable comes back as ECONNREFUSED at its next call (POLLERR
 * meanwhile), once per datagram; an IPv6 one too. A resolver with no
 * server on 127.0.0.1:53 (no /etc/resolv.conf) fails at once by it. */
static void refused(int v6)
{
    char buf[16];
    int c = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a4 = lo(9);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(9),
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    printf("%s:\n", v6 ? "IPv6" : "IPv4");
    SHOW("connect to a port nobody has", v6 ? connect(c, (void *)&a6, sizeof a6)
                                            : connect(c, (void *)&a4, sizeof a4));
    SHOW("send", send(c, "q", 1, 0));
    struct pollfd p = { c, POLLIN | POLLOUT, 0 };
    SHOW("poll", poll(&p, 1, 1000));
    printf("  revents %#x\n", p.revents);
    SHOW("recv", recv(c, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("recv again", recv(c, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("send", send(c, "q", 1, 0));
    SHOW("send again", send(c, "q", 1, 0));
    SHOW("write", write(c, "q", 1));
    int e = -1;
    socklen_t el = sizeof e;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el);
    printf("  SO_ERROR %d\n", e);
    getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el);
    printf("  SO_ERROR again %d\n", e);
    close(c);
}

static void loopbacks_apart(void)
{
    int v4 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in in = lo(0);
    bind(v4, (void *)&in, sizeof in);
    int port = port_of(v4);
    in = lo(port);
    int v6 = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    SHOW("loopbacks: ::1 on 127.0.0.1's port", bind(v6, (void *)&in6, sizeof in6));
    int c4 = socket(AF_INET, SOCK_DGRAM, 0), c6 = socket(AF_INET6, SOCK_DGRAM, 0);
    sendto(c4, "four", 4, 0, (void *)&in, sizeof in);
    sendto(c6, "six", 3, 0, (void *)&in6, sizeof in6);
    char b4[8] = { 0 }, b6[8] = { 0 };
    struct pollfd p[2] = { { v4, POLLIN, 0 }, { v6, POLLIN, 0 } };
    for (int i = 0; i < 20 && poll(p, 2, 100) >= 0 && !((p[0].revents & POLLIN) && (p[1].revents & POLLIN)); i++)
        ;
    recv(v4, b4, sizeof b4 - 1, 0);
    recv(v6, b6, sizeof b6 - 1, 0);
    printf("  127.0.0.1's socket got '%s', ::1's '%s'\n", b4, b6);
    int any6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 wild = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    SHOW("  [::] on that port", bind(any6, (void *)&wild, sizeof wild));
    int only = 1;
    int o6 = socket(AF_INET6, SOCK_DGRAM, 0);
    setsockopt(o6, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
    SHOW("  [::] v6-only on that port", bind(o6, (void *)&wild, sizeof wild));
    close(v6);
    SHOW("  [::] v6-only once ::1's is closed", bind(o6, (void *)&wild, sizeof wild));
    int fds[] = { v4, c4, c6, any6, o6 };
    for (unsigned i = 0; i < sizeof fds / sizeof *fds; i++)
        close(fds[i]);
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = { AF_INET };
    SHOW("bind", bind(s, (void *)&any, sizeof any));
    int port = port_of(s);
    printf("port is ephemeral: %s\n", port >= 32768 ? "yes" : "no");
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = lo(port);
    SHOW("sendto", sendto(c, "hello", 5, 0, (void *)&to, sizeof to));
    SHOW("sendto", sendto(c, "a longer datagram", 17, 0, (void *)&to, sizeof to));
    struct pollfd p = { s, POLLIN };
    int polled = poll(&p, 1, 1000);
    printf("poll: %d revents %d\n", polled, p.revents);
    char buf[64] = { 0 };
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    SHOW("recvfrom", recvfrom(s, buf, sizeof buf, 0, (void *)&from, &fl));
    printf("  \"%s\" from 127.0.0.1: %s, its port: %s\n", buf,
           from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "yes" : "no",
           ntohs(from.sin_port) == port_of(c) ? "the sender's" : "another");
    struct iovec iov = { buf, 6 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    memset(buf, 0, sizeof buf);
    SHOW("recvmsg into 6 bytes", recvmsg(s, &m, 0));
    printf("  \"%s\", MSG_TRUNC %s\n", buf, m.msg_flags & MSG_TRUNC ? "set" : "clear");

    struct timeval bad = { 0, 1000000 };
    SHOW("SO_RCVTIMEO of a million microseconds", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad));
    SHOW("SO_RCVTIMEO too short", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, 8));
    struct timeval tv = { 0, 20000 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SHOW("recv with SO_RCVTIMEO", recv(s, buf, sizeof buf, 0));
    SHOW("recv MSG_DONTWAIT", recv(s, buf, sizeof buf, MSG_DONTWAIT));

    /* Connected: send and write go to the peer. */
    SHOW("connect", connect(c, (void *)&to, sizeof to));
    SHOW("send", send(c, "via send", 8, 0));
    SHOW("write", write(c, "via write", 9));
    memset(buf, 0, sizeof buf);
    SHOW("read", read(s, buf, sizeof buf));
    printf("  \"%s\"\n", buf);
    memset(buf, 0, sizeof buf);
    SHOW("recv", recv(s, buf, sizeof buf, 0));
    printf("  \"%s\"\n", buf);

    /* A forked sender. */
    if (fork() == 0) {
        int k = socket(AF_INET, SOCK_DGRAM, 0);
        sendto(k, "from a child", 12, 0, (void *)&to, sizeof to);
        _exit(0);
    }
    tv.tv_usec = 0;
    tv.tv_sec = 5;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(buf, 0, sizeof buf);
    SHOW("recv from the child", recv(s, buf, sizeof buf, 0));
    printf("  \"%s\"\n", buf);
    wait(0);

    /* IPv6, and a port nobody has. */
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bind(s6, (void *)&a6, sizeof a6);
    a6.sin6_port = htons(port_of(s6));
    int c6 = socket(AF_INET6, SOCK_DGRAM, 0);
    SHOW("sendto ::1", sendto(c6, "six", 3, 0, (void *)&a6, sizeof a6));
    SHOW("recv on ::1", recv(s6, buf, sizeof buf, 0));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in nobody = lo(port_of(u) == 9 ? 10 : 9);
    SHOW("sendto a port nobody has", sendto(u, "lost", 4, 0, (void *)&nobody, sizeof nobody));
    SHOW("send unconnected", send(u, "x", 1, 0));
    int t = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("bind to a port in use", bind(t, (void *)&to, sizeof to));
    int v;
    socklen_t vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE %d\n", v);
    udp_lite();
    loopbacks_apart();
    refused(0);
    refused(1);
    return 0;
}
