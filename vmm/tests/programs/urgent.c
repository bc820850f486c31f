/* TCP urgent data (send and recv with MSG_OOB): poll's POLLPRI, select's
 * exceptional set and epoll's EPOLLPRI while it waits, SIOCATMARK and
 * FIONREAD around the mark, reads that stop at the mark and skip the
 * urgent byte, recv(MSG_OOB) taking it once (EINVAL after), recvmsg's
 * MSG_OOB flag, a byte passed by a read lost, a newer urgent byte putting
 * the older in line, SO_OOBINLINE, and EOPNOTSUPP on a datagram socket.
 * CPython's asyncore tests watch for urgent data with select. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>

#include "check.h"

static void tcp_pair(int *c, int *s)
{
    struct sockaddr_in a;
    int srv = tcp_listener(&a);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    connect(*c, (struct sockaddr *)&a, sizeof a);
    *s = accept(srv, 0, 0);
    close(srv);
}

static void state(int s)
{
    struct pollfd p = {s, POLLIN | POLLPRI, 0};
    poll(&p, 1, 0);
    fd_set ex;
    FD_ZERO(&ex);
    FD_SET(s, &ex);
    struct timeval tv = {0, 0};
    select(s + 1, 0, 0, &ex, &tv);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLPRI}, got = {0};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
    int n = epoll_wait(ep, &got, 1, 0);
    close(ep);
    int mark = -1, inq = -1;
    ioctl(s, SIOCATMARK, &mark);
    ioctl(s, FIONREAD, &inq);
    printf("  poll:%s%s  select except: %d  epoll:%s%s  at mark: %d  FIONREAD: %d\n",
           p.revents & POLLIN ? " in" : "", p.revents & POLLPRI ? " pri" : "",
           FD_ISSET(s, &ex) ? 1 : 0, n > 0 && got.events & EPOLLIN ? " in" : "",
           n > 0 && got.events & EPOLLPRI ? " pri" : "", mark, inq);
}

static void got(const char *what, ssize_t n, const char *b)
{
    if (n < 0)
        printf("  %s: -1 %s\n", what, strerror(errno));
    else
        printf("  %s: %zd \"%.*s\"\n", what, n, (int)n, b);
}

int main(void)
{
    char b[64];
    int c, s;

    printf("urgent byte apart:\n");
    tcp_pair(&c, &s);
    send(c, "abc", 3, MSG_OOB);
    usleep(20000);
    state(s);
    got("read", read(s, b, sizeof b), b);
    state(s);
    got("recv MSG_OOB|MSG_PEEK", recv(s, b, sizeof b, MSG_OOB | MSG_PEEK), b);
    struct iovec v = {b, sizeof b};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    ssize_t n = recvmsg(s, &m, MSG_OOB);
    got("recvmsg MSG_OOB", n, b);
    printf("  msg_flags has MSG_OOB: %d\n", (m.msg_flags & MSG_OOB) != 0);
    got("recv MSG_OOB again", recv(s, b, sizeof b, MSG_OOB), b);
    state(s);
    send(c, "de", 2, 0);
    usleep(20000);
    got("read", read(s, b, sizeof b), b);
    state(s);

    printf("urgent byte passed by a read:\n");
    send(c, "1", 1, MSG_OOB);
    send(c, "23", 2, 0);
    usleep(20000);
    state(s);
    got("read", read(s, b, sizeof b), b);
    got("recv MSG_OOB", recv(s, b, sizeof b, MSG_OOB), b);

    printf("a newer urgent byte puts the older in line:\n");
    send(c, "xy", 2, MSG_OOB);
    usleep(20000);
    send(c, "z", 1, MSG_OOB);
    usleep(20000);
    state(s);
    got("recv MSG_OOB", recv(s, b, sizeof b, MSG_OOB), b);
    got("read", read(s, b, sizeof b), b);
    state(s);
    close(c);
    close(s);

    printf("SO_OOBINLINE:\n");
    tcp_pair(&c, &s);
    int on = 1;
    setsockopt(s, SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
    send(c, "pq", 2, MSG_OOB);
    usleep(20000);
    send(c, "rs", 2, 0);
    usleep(20000);
    state(s);
    got("recv MSG_OOB", recv(s, b, sizeof b, MSG_OOB), b);
    got("read", read(s, b, sizeof b), b);
    state(s);
    got("read", read(s, b, sizeof b), b);
    state(s);
    close(c);
    close(s);

    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    SHOW("datagram send MSG_OOB", send(sv[0], "x", 1, MSG_OOB));
    close(sv[0]);
    close(sv[1]);
    return 0;
}
