/* AF_UNIX stream sockets with names, between a server and its forked
 * clients: a path name and an abstract one, bind, listen, connect,
 * accept and accept4, both ways through a connection, the end of a
 * connection, poll on a listener, names read back, and the errors Linux
 * gives for the usual mistakes. The output names no pid or path. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "yes" : "no"); }

static void fails(const char *what, long r, int expect) {
    int e = errno;
    if (r == -1 && e == expect)
        printf("%s: %s\n", what, strerror(expect));
    else
        printf("%s: did not fail as expected (%ld, %s)\n", what, r, strerror(e));
}

/* A path name (`abstract` 0) or an abstract one; its length. */
static socklen_t name(struct sockaddr_un *a, const char *text, int abstract) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        memcpy(a->sun_path + 1, text, strlen(text));
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(text);
    }
    strcpy(a->sun_path, text);
    return sizeof *a;
}

/* A client: connects, sends `msg`, prints nothing, exits 0 if the
 * server's answer was "ok:" + msg. */
static void client(const struct sockaddr_un *a, socklen_t len, const char *msg) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)a, len) != 0)
        _exit(2);
    if (write(c, msg, strlen(msg)) != (ssize_t)strlen(msg))
        _exit(3);
    shutdown(c, SHUT_WR);
    char buf[64] = {0};
    ssize_t n = 0, r;
    while ((r = read(c, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    _exit(n == (ssize_t)strlen(msg) + 3 && !strncmp(buf, "ok:", 3) && !strcmp(buf + 3, msg) ? 0 : 4);
}

/* Serves one connection: reads to the end, answers "ok:" + what came. */
static int serve(int l, int flags) {
    int s = flags ? accept4(l, 0, 0, flags) : accept(l, 0, 0);
    if (s < 0)
        return -1;
    char buf[64] = {0};
    ssize_t n = 0, r;
    while ((r = read(s, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    char out[80];
    int m = snprintf(out, sizeof out, "ok:%s", buf);
    int ok = write(s, out, m) == m;
    close(s);
    return ok ? (int)n : -1;
}

static int waited(pid_t p) {
    int st;
    return waitpid(p, &st, 0) == p && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    char path[80];
    snprintf(path, sizeof path, "/tmp/lego-unixsock-%d", (int)getpid());
    struct sockaddr_un a, b;
    socklen_t alen = name(&a, path, 0);

    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check("socket", l >= 0);
    fails("read before a connection", read(l, path, 1), EINVAL);
    fails("write before a connection", write(l, "x", 1), ENOTCONN);
    fails("accept before listen", accept(l, 0, 0), EINVAL);
    fails("connect to a name no one has", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, alen), ENOENT);
    check("bind", bind(l, (struct sockaddr *)&a, alen) == 0);
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    fails("bind of a name taken", bind(other, (struct sockaddr *)&a, alen), EADDRINUSE);
    /* A path that names a directory already ("//" is "/"): no socket
     * file can be made there. */
    struct sockaddr_un root = {.sun_family = AF_UNIX, .sun_path = "//"};
    fails("bind to a directory's path", bind(other, (struct sockaddr *)&root, sizeof root), EADDRINUSE);
    fails("connect before listen", connect(other, (struct sockaddr *)&a, alen), ECONNREFUSED);
    close(other);
    check("listen", listen(l, 8) == 0);
    int on = 0;
    socklen_t olen = sizeof on;
    check("SO_ACCEPTCONN", getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) == 0 && on == 1);
    struct sockaddr_un got;
    socklen_t glen = sizeof got;
    check("getsockname names the path",
          getsockname(l, (struct sockaddr *)&got, &glen) == 0 && got.sun_family == AF_UNIX &&
              !strcmp(got.sun_path, path) && glen == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);

    /* Nothing waiting: a non-blocking accept says so, poll shows nothing. */
    fcntl(l, F_SETFL, O_NONBLOCK);
    fails("accept with none waiting", accept(l, 0, 0), EAGAIN);
    struct pollfd pf = {l, POLLIN, 0};
    check("poll: nothing to accept", poll(&pf, 1, 0) == 0);
    fcntl(l, F_SETFL, 0);

    /* Three clients one after another; the server answers each. */
    const char *msgs[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        pid_t c = fork();
        if (c == 0)
            client(&a, alen, msgs[i]);
        if (i == 0) {
            check("poll: a connection to accept", poll(&pf, 1, 5000) == 1 && (pf.revents & POLLIN));
        }
        if (i == 2) {
            int ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, out;
            check("epoll: a connection to accept", ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) == 0 &&
                                                       epoll_wait(ep, &out, 1, 5000) == 1 && out.data.fd == l);
            close(ep);
        }
        int n = serve(l, i == 1 ? SOCK_CLOEXEC : 0);
        printf("served %s: %d bytes, client %d\n", msgs[i], n, waited(c));
    }

    /* A connection made before accept: it waits in the queue, and its
     * names read back on both sides. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    check("connect", connect(c, (struct sockaddr *)&a, alen) == 0);
    fails("connect again", connect(c, (struct sockaddr *)&a, alen), EISCONN);
    glen = sizeof got;
    check("the client's peer is the path",
          getpeername(c, (struct sockaddr *)&got, &glen) == 0 && !strcmp(got.sun_path, path));
    glen = sizeof got;
    check("the client is unnamed", getsockname(c, (struct sockaddr *)&got, &glen) == 0 &&
                                       glen == offsetof(struct sockaddr_un, sun_path));
    glen = sizeof got;
    int s = accept(l, (struct sockaddr *)&got, &glen);
    check("accept", s >= 0 && glen == offsetof(struct sockaddr_un, sun_path) && got.sun_family == AF_UNIX);
    glen = sizeof got;
    check("the server end is named by the path",
          getsockname(s, (struct sockaddr *)&got, &glen) == 0 && !strcmp(got.sun_path, path));
    char buf[16];
    check("server to client", write(s, "down", 4) == 4 && read(c, buf, 4) == 4 && !memcmp(buf, "down", 4));
    check("client to server", write(c, "up", 2) == 2 && read(s, buf, 2) == 2 && !memcmp(buf, "up", 2));
    check("send and recv", send(c, "x", 1, 0) == 1 && recv(s, buf, 1, 0) == 1 && buf[0] == 'x');
    close(c);
    check("the end of the connection", read(s, buf, 1) == 0);
    close(s);

    /* A closed listener refuses; its name can be bound again. */
    close(l);
    fails("connect after the listener closed", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, alen), ECONNREFUSED);
    unlink(path);

    /* An abstract name: no file; the same calls. */
    char abs[64];
    snprintf(abs, sizeof abs, "lego-unixsock-%d", (int)getpid());
    socklen_t blen = name(&b, abs, 1);
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    check("abstract bind and listen", bind(l, (struct sockaddr *)&b, blen) == 0 && listen(l, 1) == 0);
    glen = sizeof got;
    check("its name reads back", getsockname(l, (struct sockaddr *)&got, &glen) == 0 && glen == blen &&
                                     got.sun_path[0] == 0 && !memcmp(got.sun_path + 1, abs, strlen(abs)));
    pid_t p = fork();
    if (p == 0)
        client(&b, blen, "abstract");
    int n = serve(l, 0);
    printf("served abstract: %d bytes, client %d\n", n, waited(p));
    close(l);

    /* A bind of just the family gives a name of its own. */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    fails("listen unbound", listen(l, 1), EINVAL);
    struct sockaddr_un fam = {.sun_family = AF_UNIX};
    check("autobind", bind(l, (struct sockaddr *)&fam, sizeof(sa_family_t)) == 0 && listen(l, 1) == 0);
    glen = sizeof got;
    check("its name is abstract", getsockname(l, (struct sockaddr *)&got, &glen) == 0 &&
                           glen == offsetof(struct sockaddr_un, sun_path) + 6 && got.sun_path[0] == 0);
    p = fork();
    if (p == 0)
        client(&got, glen, "auto");
    n = serve(l, 0);
    printf("served auto: %d bytes, client %d\n", n, waited(p));
    close(l);

    return 0;
}
