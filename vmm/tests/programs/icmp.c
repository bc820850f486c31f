/* ICMP echo on the loopback, as ping and ping6 use it: raw sockets (root)
 * read every ICMP message with IPv4's header in front, filtered by
 * ICMP_FILTER; ping sockets send echo requests only and read the replies
 * to their identifier. Lego's answers are printed, one line each (the
 * host's may refuse ping sockets by its ping_group_range). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

static const char *name(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return strerror(e);
    }
}

#define SHOW(what, expr)                                                     \
    do {                                                                     \
        errno = 0;                                                           \
        long r_ = (expr);                                                    \
        if (r_ < 0)                                                          \
            printf("%s: %s\n", what, name(errno));                           \
        else                                                                 \
            printf("%s: %ld\n", what, r_);                                   \
    } while (0)

static unsigned short sum(const void *data, int len)
{
    const unsigned char *p = data;
    unsigned long s = 0;
    for (int i = 0; i + 1 < len; i += 2)
        s += p[i] << 8 | p[i + 1];
    if (len & 1)
        s += p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (unsigned short)~s;
}

/* An echo request of type `type`, identifier `id`, sequence `seq` and
 * data "lego!", its checksum computed. */
static int echo(unsigned char *m, int type, int id, int seq)
{
    memset(m, 0, 8);
    m[0] = type;
    m[4] = id >> 8, m[5] = id;
    m[6] = seq >> 8, m[7] = seq;
    memcpy(m + 8, "lego!", 5);
    unsigned short c = sum(m, 13);
    m[2] = c >> 8, m[3] = c;
    return 13;
}

static void describe(const char *what, const unsigned char *m, long n, int ip)
{
    if (n < 0) {
        printf("%s: %s\n", what, name(errno));
        return;
    }
    const unsigned char *icmp = m + ip;
    printf("%s: %ld bytes, type %d, id %d, seq %d, data %s, sum %s", what, n, icmp[0],
           icmp[4] << 8 | icmp[5], icmp[6] << 8 | icmp[7],
           n - ip == 13 && !memcmp(icmp + 8, "lego!", 5) ? "kept" : "changed",
           ip && sum(icmp, (int)n - ip) ? "wrong" : "right");
    if (ip)
        printf(", ip header sum %s, protocol %d, ttl %d", sum(m, 20) ? "wrong" : "right", m[9], m[8]);
    printf("\n");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    unsigned char m[128], got[256];
    int type;
    socklen_t len = sizeof type;

    SHOW("raw socket of protocol 0", socket(AF_INET, SOCK_RAW, 0));
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    printf("raw ICMP socket: %s\n", raw >= 0 ? "yes" : name(errno));
    getsockopt(raw, SOL_SOCKET, SO_TYPE, &type, &len);
    printf("its type %d", type);
    getsockopt(raw, SOL_SOCKET, SO_PROTOCOL, &type, &len);
    struct sockaddr_in me;
    len = sizeof me;
    getsockname(raw, (struct sockaddr *)&me, &len);
    printf(", protocol %d, port %d\n", type, ntohs(me.sin_port));

    int n = echo(m, ICMP_ECHO, 0x1234, 1);
    SHOW("send an echo request", sendto(raw, m, n, 0, (struct sockaddr *)&lo, sizeof lo));
    struct sockaddr_in from;
    len = sizeof from;
    describe("read: the request", got, recvfrom(raw, got, sizeof got, 0, (struct sockaddr *)&from, &len), 20);
    printf("from 127.0.0.1: %s, port %d\n", from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "yes" : "no",
           ntohs(from.sin_port));
    describe("read: the reply", got, recv(raw, got, sizeof got, 0), 20);

    /* Only echo replies from now on. */
    unsigned int filter = ~(1u << ICMP_ECHOREPLY), back = 0;
    SHOW("ICMP_FILTER", setsockopt(raw, SOL_RAW, ICMP_FILTER, &filter, sizeof filter));
    len = sizeof back;
    getsockopt(raw, SOL_RAW, ICMP_FILTER, &back, &len);
    printf("read back: %s\n", back == filter ? "same" : "other");
    n = echo(m, ICMP_ECHO, 0x1234, 2);
    sendto(raw, m, n, 0, (struct sockaddr *)&lo, sizeof lo);
    describe("read: the reply only", got, recv(raw, got, sizeof got, MSG_DONTWAIT), 20);
    m[9] ^= 1; /* a wrong checksum: the loopback drops it */
    sendto(raw, m, n, 0, (struct sockaddr *)&lo, sizeof lo);
    describe("a damaged request's reply", got, recv(raw, got, sizeof got, MSG_DONTWAIT), 20);

    /* A ping socket: echo requests only; the kernel sets the identifier. */
    int ping = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    printf("ping socket: %s\n", ping >= 0 ? "yes" : name(errno));
    n = echo(m, ICMP_ECHOREPLY, 7, 1);
    SHOW("send an echo reply", sendto(ping, m, n, 0, (struct sockaddr *)&lo, sizeof lo));
    SHOW("send 4 bytes", sendto(ping, m, 4, 0, (struct sockaddr *)&lo, sizeof lo));
    SHOW("ICMP_FILTER on it", setsockopt(ping, SOL_RAW, ICMP_FILTER, &filter, sizeof filter));
    n = echo(m, ICMP_ECHO, 7, 3);
    m[2] = m[3] = 0; /* the kernel sums it */
    SHOW("send an echo request", sendto(ping, m, n, 0, (struct sockaddr *)&lo, sizeof lo));
    struct pollfd p = {.fd = ping, .events = POLLIN};
    SHOW("poll", poll(&p, 1, 1000));
    len = sizeof me;
    getsockname(ping, (struct sockaddr *)&me, &len);
    len = sizeof from;
    long r = recvfrom(ping, got, sizeof got, 0, (struct sockaddr *)&from, &len);
    describe("read", got, r, 0);
    printf("its identifier is the socket's port: %s; sum %s; from port %d\n",
           (got[4] << 8 | got[5]) == ntohs(me.sin_port) ? "yes" : "no", sum(got, (int)r) ? "wrong" : "right",
           ntohs(from.sin_port));
    describe("the raw socket read its reply", got, recv(raw, got, sizeof got, MSG_DONTWAIT), 20);

    /* ICMPv6: the kernel sums every message; no IP header is read. */
    int ping6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
    int raw6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    printf("ping6 and raw6 sockets: %s\n", ping6 >= 0 && raw6 >= 0 ? "yes" : name(errno));
    int one = 1;
    setsockopt(ping6, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
    n = echo(m, ICMP6_ECHO_REQUEST, 9, 4);
    SHOW("send an ICMPv6 echo request", sendto(ping6, m, n, 0, (struct sockaddr *)&lo6, sizeof lo6));
    char control[64];
    struct iovec v = {got, sizeof got};
    struct msghdr h = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    describe("read", got, recvmsg(ping6, &h, 0), 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&h);
    if (c && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)
        printf("hop limit %d\n", *(int *)CMSG_DATA(c));
    describe("raw6: the request", got, recv(raw6, got, sizeof got, MSG_DONTWAIT), 0);
    describe("raw6: the reply", got, recv(raw6, got, sizeof got, MSG_DONTWAIT), 0);
    describe("raw6: no more", got, recv(raw6, got, sizeof got, MSG_DONTWAIT), 0);

    /* Raw sockets need CAP_NET_RAW. */
    pid_t child = fork();
    if (child == 0) {
        if (setuid(65534))
            _exit(1);
        SHOW("as nobody: raw socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
        _exit(0);
    }
    waitpid(child, NULL, 0);
    return 0;
}
