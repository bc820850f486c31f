/* shutdown(2) as servers use it to stop their own threads and to half-close
 * a connection: a thread asleep in recv or accept is woken by another
 * thread's shutdown of the same socket, reads after SHUT_RD see the end
 * once what was buffered is read, an AF_UNIX peer of a socket shut for
 * reading gets EPIPE, poll reports the shut sides, and the errors Linux
 * gives. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

static int sleeper_fd;
static volatile int sleeping;

static void *recv_thread(void *arg) {
    char buf[16];
    sleeping = 1;
    errno = 0;
    long n = recv(sleeper_fd, buf, sizeof buf, 0);
    printf("%s: %ld%s%s\n", (const char *)arg, n, n < 0 ? " " : "", n < 0 ? strerror(errno) : "");
    return NULL;
}

static void *accept_thread(void *arg) {
    sleeping = 1;
    errno = 0;
    long n = accept(sleeper_fd, NULL, NULL);
    printf("%s: %ld%s%s\n", (const char *)arg, n < 0 ? n : 0, n < 0 ? " " : "", n < 0 ? strerror(errno) : "");
    return NULL;
}

/* Runs `fn` on a thread that sleeps on `fd`, then shuts `fd` with `how`
 * from this one. */
static void woken_by_shutdown(void *(*fn)(void *), int fd, int how, const char *what) {
    pthread_t t;
    sleeper_fd = fd;
    sleeping = 0;
    pthread_create(&t, NULL, fn, (void *)what);
    while (!sleeping)
        usleep(1000);
    usleep(100000);
    errno = 0;
    long r = shutdown(fd, how);
    int e = errno;
    pthread_join(t, NULL);
    /* After the thread's line, whichever ran first. */
    printf("  its shutdown: %ld%s%s\n", r, r < 0 ? " " : "", r < 0 ? strerror(e) : "");
}

static void tcp_pair(int *listener, int *client, int *server) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    bind(*listener, (struct sockaddr *)&a, sizeof a);
    listen(*listener, 4);
    getsockname(*listener, (struct sockaddr *)&a, &len);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    connect(*client, (struct sockaddr *)&a, sizeof a);
    *server = accept(*listener, NULL, NULL);
}

static void show_poll(const char *what, int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    int n = poll(&p, 1, 0);
    printf("%s: %d%s%s%s%s\n", what, n, p.revents & POLLIN ? " IN" : "", p.revents & POLLOUT ? " OUT" : "",
           p.revents & POLLRDHUP ? " RDHUP" : "", p.revents & POLLHUP ? " HUP" : "");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    char buf[16];
    int l, c, s;

    puts("TCP");
    tcp_pair(&l, &c, &s);
    woken_by_shutdown(recv_thread, s, SHUT_RDWR, "  recv after SHUT_RDWR");
    show_poll("  poll after SHUT_RDWR", s);
    SHOW("  peer reads the end", recv(c, buf, sizeof buf, 0));
    SHOW("  send after it", send(s, "x", 1, MSG_NOSIGNAL));
    close(c);
    close(s);
    woken_by_shutdown(accept_thread, l, SHUT_RDWR, "  accept after the listener's shutdown");
    show_poll("  listener's poll", l);
    close(l);

    tcp_pair(&l, &c, &s);
    woken_by_shutdown(recv_thread, s, SHUT_RD, "  recv after SHUT_RD");
    SHOW("  peer still sends", send(c, "late", 4, MSG_NOSIGNAL));
    show_poll("  poll after SHUT_RD", s);
    SHOW("  own send after SHUT_RD", send(s, "ok", 2, MSG_NOSIGNAL));
    SHOW("  peer gets it", recv(c, buf, sizeof buf, 0));
    close(c);
    close(s);
    close(l);

    tcp_pair(&l, &c, &s);
    send(c, "abc", 3, 0);
    usleep(50000);
    SHOW("  SHUT_RD with data buffered", shutdown(s, SHUT_RD));
    SHOW("  then recv", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("  and recv again", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    SHOW("  SHUT_RD twice", shutdown(s, SHUT_RD));
    SHOW("  a bad how", shutdown(s, 3));
    close(c);
    close(s);
    close(l);
    int lone = socket(AF_INET, SOCK_STREAM, 0);
    show_poll("  an unconnected socket's poll", lone);
    SHOW("  unconnected", shutdown(lone, SHUT_RDWR));
    close(lone);
    SHOW("  not a socket", shutdown(0, SHUT_RDWR));

    puts("AF_UNIX stream");
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    woken_by_shutdown(recv_thread, sv[0], SHUT_RD, "  recv after SHUT_RD");
    SHOW("  peer's send", send(sv[1], "x", 1, MSG_NOSIGNAL));
    show_poll("  poll after SHUT_RD", sv[0]);
    show_poll("  peer's poll", sv[1]);
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[1], "abc", 3, 0);
    SHOW("  SHUT_RD with data buffered", shutdown(sv[0], SHUT_RD));
    SHOW("  then recv", recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    SHOW("  and recv again", recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    woken_by_shutdown(recv_thread, sv[0], SHUT_RDWR, "  recv after SHUT_RDWR");
    SHOW("  peer reads the end", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    close(sv[0]);
    close(sv[1]);

    puts("AF_UNIX listener");
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "/tmp/shutdown-test-%d", (int)getpid());
    unlink(un.sun_path);
    bind(ul, (struct sockaddr *)&un, sizeof un);
    listen(ul, 4);
    woken_by_shutdown(accept_thread, ul, SHUT_RDWR, "  accept after the listener's shutdown");
    int uc = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("  connect to it", connect(uc, (struct sockaddr *)&un, sizeof un));
    int lone_unix = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("  an unconnected one", shutdown(lone_unix, SHUT_RDWR));
    show_poll("  its poll", lone_unix);
    close(lone_unix);
    close(uc);
    close(ul);
    unlink(un.sun_path);

    puts("AF_UNIX datagrams");
    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    send(d[1], "one", 3, 0);
    woken_by_shutdown(recv_thread, d[0], SHUT_RD, "  recv after SHUT_RD takes what was queued");
    woken_by_shutdown(recv_thread, d[0], SHUT_RD, "  then recv");
    SHOW("  peer's send", send(d[1], "two", 3, MSG_NOSIGNAL));
    show_poll("  poll after SHUT_RD", d[0]);
    close(d[0]);
    close(d[1]);

    puts("UDP");
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("  unconnected", shutdown(u, SHUT_RDWR));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(u, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(u, (struct sockaddr *)&a, &len);
    connect(u, (struct sockaddr *)&a, sizeof a);
    woken_by_shutdown(recv_thread, u, SHUT_RD, "  recv after SHUT_RD");
    SHOW("  send after SHUT_WR", (shutdown(u, SHUT_WR), send(u, "x", 1, 0)));
    close(u);
    return 0;
}
