/* The control messages a UDP receiver asks for, as DNS servers and QUIC
 * libraries ask: IP_PKTINFO, IP_RECVTTL and IP_RECVTOS over IPv4,
 * IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT and IPV6_RECVTCLASS over IPv6, with
 * the sender's TTL, TOS, hop limit and traffic class from its socket
 * options or its sendmsg's own control data; a buffer too small for them
 * (MSG_CTRUNC); control data a send is refused for. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static void show(const char *what, int s, size_t room) {
    char data[16], control[256];
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = room};
    ssize_t n = recvmsg(s, &m, 0);
    printf("%s: %zd bytes, controllen %zu%s\n", what, n, (size_t)m.msg_controllen,
           m.msg_flags & MSG_CTRUNC ? ", MSG_CTRUNC" : "");
    if (n < 0)
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        unsigned char *d = CMSG_DATA(c);
        size_t len = c->cmsg_len - CMSG_LEN(0);
        printf("  level %d type %d len %zu:", c->cmsg_level, c->cmsg_type, len);
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && len >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo pi;
            memcpy(&pi, d, sizeof pi);
            char a[32], b[32];
            inet_ntop(AF_INET, &pi.ipi_spec_dst, a, sizeof a);
            inet_ntop(AF_INET, &pi.ipi_addr, b, sizeof b);
            printf(" ifindex %d spec_dst %s addr %s", pi.ipi_ifindex, a, b);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && len >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo pi;
            memcpy(&pi, d, sizeof pi);
            char a[64];
            inet_ntop(AF_INET6, &pi.ipi6_addr, a, sizeof a);
            printf(" addr %s ifindex %u", a, pi.ipi6_ifindex);
        } else if (len == 1) {
            printf(" %d", d[0]);
        } else if (len >= 4) {
            int v;
            memcpy(&v, d, 4);
            printf(" %d", v);
        }
        printf("\n");
    }
}

static int on = 1;

static void send_with(int s, int level, int type, int value) {
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {"hi", 2};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &value, sizeof value);
    errno = 0;
    long r = sendmsg(s, &m, 0);
    printf("sendmsg with level %d type %d = %d: %ld%s%s\n", level, type, value, r, r < 0 ? " " : "",
           r < 0 ? strerror(errno) : "");
}

int main(void) {
    /* IPv4 */
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &len);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "plain", 5, 0);
    show("nothing asked", r, sizeof(char[256]));
    setsockopt(r, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    setsockopt(r, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
    setsockopt(r, IPPROTO_IP, IP_RECVTOS, &on, sizeof on);
    send(s, "defaults", 8, 0);
    show("IPv4, the sender's defaults", r, 256);
    int ttl = 7, tos = 0x10;
    setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    setsockopt(s, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    send(s, "options", 7, 0);
    show("IPv4, the sender's options", r, 256);
    send_with(s, IPPROTO_IP, IP_TTL, 9);
    show("IPv4, a TTL in the send", r, 256);
    send_with(s, IPPROTO_IP, IP_TTL, 0);
    send(s, "cut", 3, 0);
    show("IPv4, room for one message and a half", r, CMSG_SPACE(sizeof(struct in_pktinfo)) + 20);
    send(s, "none", 4, 0);
    show("IPv4, room for less than a header", r, 8);
    close(r);
    close(s);

    /* IPv6 */
    r = socket(AF_INET6, SOCK_DGRAM, 0);
    s = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 b = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    len = sizeof b;
    bind(r, (struct sockaddr *)&b, sizeof b);
    getsockname(r, (struct sockaddr *)&b, &len);
    connect(s, (struct sockaddr *)&b, sizeof b);
    setsockopt(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
    setsockopt(r, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
    setsockopt(r, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof on);
    send(s, "defaults", 8, 0);
    show("IPv6, the sender's defaults", r, 256);
    int hops = 5, class = 0x20;
    setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &class, sizeof class);
    send(s, "options", 7, 0);
    show("IPv6, the sender's options", r, 256);
    send_with(s, IPPROTO_IPV6, IPV6_HOPLIMIT, 42);
    show("IPv6, a hop limit in the send", r, 256);
    send_with(s, IPPROTO_IPV6, IPV6_HOPLIMIT, -1);
    show("IPv6, the socket's hop limit asked in the send", r, 256);
    send_with(s, IPPROTO_IPV6, IPV6_TCLASS, 0x40);
    show("IPv6, a class in the send", r, 256);
    send_with(s, IPPROTO_IPV6, IPV6_HOPLIMIT, 256);
    close(r);
    close(s);
    return 0;
}
