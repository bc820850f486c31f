/* AF_UNIX datagram sockets with names, as syslog daemons, sd_notify and
 * asyncio's datagram endpoints use them: bind (a socket file in /tmp, an
 * abstract name, autobind), sendto and recvfrom with the sender's name,
 * connect and its rules (EPERM from a stranger, AF_UNSPEC), write and read,
 * message boundaries, MSG_TRUNC, MSG_PEEK, poll, a full queue, SCM_RIGHTS,
 * a forked sender, a closed receiver (ECONNREFUSED, then ENOTCONN), and
 * the errors Linux gives. Prints what it saw, to compare with the host;
 * names carry the pid, since the host's are shared. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, expr)                                                     \
    do {                                                                     \
        errno = 0;                                                           \
        long r_ = (long)(expr);                                              \
        printf("%-40s %ld %s\n", what, r_, r_ < 0 ? strerror(errno) : "");   \
    } while (0)

static socklen_t path_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path + 1, name);
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

int main(void)
{
    char path[64], other[64], cname[64], buf[256];
    snprintf(path, sizeof path, "/tmp/udg-%d", (int)getpid());
    snprintf(other, sizeof other, "/tmp/udg-%d-stream", (int)getpid());
    snprintf(cname, sizeof cname, "udg-%d-client", (int)getpid());
    unlink(path);
    unlink(other);

    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("socket: %s\n", srv >= 0 ? "ok" : strerror(errno));
    int type = 0;
    socklen_t tl = sizeof type;
    getsockopt(srv, SOL_SOCKET, SO_TYPE, &type, &tl);
    printf("SO_TYPE is SOCK_DGRAM: %s\n", type == SOCK_DGRAM ? "yes" : "no");
    struct sockaddr_un sa, ca, got;
    socklen_t slen = path_addr(&sa, path);
    SHOW("bind to a path in /tmp", bind(srv, (void *)&sa, slen));
    struct stat st;
    SHOW("stat of it", stat(path, &st));
    printf("  a socket file: %s\n", S_ISSOCK(st.st_mode) ? "yes" : "no");
    SHOW("bind again", bind(srv, (void *)&sa, slen));
    socklen_t gl = sizeof got;
    SHOW("getsockname", getsockname(srv, (void *)&got, &gl));
    printf("  its path: %s\n", gl == slen && strcmp(got.sun_path, path) == 0 ? "yes" : "no");
    SHOW("getpeername unconnected", getpeername(srv, (void *)&got, &gl));
    SHOW("listen", listen(srv, 5));

    /* An unnamed sender: the receiver sees an empty address. */
    int anon = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    SHOW("send unconnected", send(anon, "x", 1, 0));
    SHOW("write unconnected", write(anon, "x", 1));
    SHOW("sendto the path", sendto(anon, "hello", 5, 0, (void *)&sa, slen));
    SHOW("sendto, two", sendto(anon, "a longer datagram", 17, 0, (void *)&sa, slen));
    int queued = 0;
    ioctl(srv, FIONREAD, &queued);
    printf("FIONREAD: %d\n", queued);
    gl = sizeof got;
    memset(buf, 0, sizeof buf);
    long n = recvfrom(srv, buf, sizeof buf, 0, (void *)&got, &gl);
    printf("recvfrom: %ld \"%s\" from an address of %d bytes\n", n, buf, (int)gl);
    /* A short buffer cuts the message; the rest is gone. */
    memset(buf, 0, sizeof buf);
    struct iovec iov = {buf, 6};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(srv, &m, 0);
    printf("recvmsg into 6: %ld \"%s\" MSG_TRUNC %s\n", n, buf,
           m.msg_flags & MSG_TRUNC ? "set" : "clear");
    SHOW("recv MSG_DONTWAIT on empty", recv(srv, buf, sizeof buf, MSG_DONTWAIT));

    /* A named sender (abstract): the receiver sees its name. */
    int cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t clen = abstract_addr(&ca, cname);
    SHOW("bind abstract", bind(cli, (void *)&ca, clen));
    SHOW("sendto from a named socket", sendto(cli, "named", 5, 0, (void *)&sa, slen));
    memset(buf, 0, sizeof buf);
    gl = sizeof got;
    n = recvfrom(srv, buf, sizeof buf, MSG_PEEK, (void *)&got, &gl);
    printf("peeked: %ld \"%s\"\n", n, buf);
    memset(&got, 0, sizeof got);
    gl = sizeof got;
    n = recvfrom(srv, buf, sizeof buf, 0, (void *)&got, &gl);
    printf("recvfrom: %ld, the sender's name: %s\n", n,
           gl == clen && memcmp(&got, &ca, clen) == 0 ? "yes" : "no");
    /* Answer to the name recvfrom gave. */
    SHOW("reply to it", sendto(srv, "reply", 5, 0, (void *)&got, gl));
    memset(buf, 0, sizeof buf);
    gl = sizeof got;
    n = recvfrom(cli, buf, sizeof buf, 0, (void *)&got, &gl);
    printf("client got: %ld \"%s\" from the server's path: %s\n", n, buf,
           gl == slen && strcmp(got.sun_path, path) == 0 ? "yes" : "no");

    /* Connected: send and write go to the peer; others are refused. */
    SHOW("connect", connect(cli, (void *)&sa, slen));
    gl = sizeof got;
    SHOW("getpeername", getpeername(cli, (void *)&got, &gl));
    printf("  the server's path: %s\n", strcmp(got.sun_path, path) == 0 ? "yes" : "no");
    SHOW("send", send(cli, "via send", 8, 0));
    SHOW("write", write(cli, "via write", 9));
    memset(buf, 0, sizeof buf);
    SHOW("read", read(srv, buf, sizeof buf));
    printf("  \"%s\"\n", buf);
    memset(buf, 0, sizeof buf);
    SHOW("read", read(srv, buf, sizeof buf));
    printf("  \"%s\"\n", buf);
    SHOW("server connects back", connect(srv, (void *)&ca, clen));
    SHOW("a stranger sends to it", sendto(anon, "no", 2, 0, (void *)&sa, slen));
    struct sockaddr_un unspec = {.sun_family = AF_UNSPEC};
    SHOW("connect AF_UNSPEC", connect(srv, (void *)&unspec, sizeof unspec));
    SHOW("a stranger sends again", sendto(anon, "yes", 3, 0, (void *)&sa, slen));
    SHOW("recv it", recv(srv, buf, sizeof buf, 0));
    SHOW("send after AF_UNSPEC", send(srv, "x", 1, 0));

    /* poll: readable with a message, writable. */
    struct pollfd p = {srv, POLLIN | POLLOUT, 0};
    SHOW("poll empty", poll(&p, 1, 0));
    printf("  revents %#x\n", p.revents);
    send(cli, "poke", 4, 0);
    SHOW("poll with one", poll(&p, 1, 0));
    printf("  revents %#x\n", p.revents);
    recv(srv, buf, sizeof buf, 0);

    /* Wrong kinds and names. */
    int st_srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un oa;
    socklen_t olen = path_addr(&oa, other);
    bind(st_srv, (void *)&oa, olen);
    listen(st_srv, 1);
    SHOW("sendto a stream socket", sendto(anon, "x", 1, 0, (void *)&oa, olen));
    int st_cli = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("stream connect to a datagram name", connect(st_cli, (void *)&sa, slen));
    struct sockaddr_un none;
    socklen_t nlen = path_addr(&none, "/tmp/udg-nobody-here");
    SHOW("sendto a missing path", sendto(anon, "x", 1, 0, (void *)&none, nlen));
    static char big[300000];
    SHOW("a message too long", sendto(anon, big, sizeof big, 0, (void *)&sa, slen));

    /* Descriptors pass in a datagram. */
    int fds[2];
    pipe(fds);
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec io = {"fd", 2};
    struct msghdr sm = {.msg_name = &sa, .msg_namelen = slen, .msg_iov = &io,
                        .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&sm);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fds[1], sizeof(int));
    SHOW("sendmsg with a descriptor", sendmsg(anon, &sm, 0));
    close(fds[1]);
    char rctl[CMSG_SPACE(sizeof(int))];
    struct iovec rio = {buf, sizeof buf};
    struct msghdr rm = {.msg_name = &got, .msg_namelen = sizeof got, .msg_iov = &rio,
                        .msg_iovlen = 1, .msg_control = rctl,
                        .msg_controllen = sizeof rctl};
    SHOW("recvmsg it", recvmsg(srv, &rm, 0));
    printf("  address %d bytes, control %s\n", (int)rm.msg_namelen,
           rm.msg_controllen > 0 ? "present" : "absent");
    int passed = -1;
    if (rm.msg_controllen > 0)
        memcpy(&passed, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof(int));
    SHOW("write through it", write(passed, "via the passed end", 18));
    close(passed);
    memset(buf, 0, sizeof buf);
    SHOW("read the pipe", read(fds[0], buf, sizeof buf));
    printf("  \"%s\"\n", buf);

    /* A full receiver: a non-blocking send says EAGAIN in the end. */
    int sent = 0, last = 0;
    for (int i = 0; i < 100000; i++) {
        if (sendto(anon, buf, 100, MSG_DONTWAIT, (void *)&sa, slen) < 0) {
            last = errno;
            break;
        }
        sent++;
    }
    printf("a full queue: %s after some sends\n", last == EAGAIN ? "EAGAIN" : strerror(last));
    while (recv(srv, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;

    /* A forked sender, as a program logging to its daemon. */
    pid_t child = fork();
    if (child == 0) {
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        usleep(50000);
        sendto(s, "from the child", 14, 0, (void *)&sa, slen);
        _exit(0);
    }
    memset(buf, 0, sizeof buf);
    SHOW("a blocking recv of the child's", recv(srv, buf, sizeof buf, 0));
    printf("  \"%s\"\n", buf);
    waitpid(child, 0, 0);

    /* The receiver goes: its connected sender is refused once, then
     * unconnected; its file stays and refuses; unlinked, it is gone. */
    close(srv);
    SHOW("send to a closed peer", send(cli, "x", 1, 0));
    SHOW("send again", send(cli, "x", 1, 0));
    SHOW("sendto the closed one's file", sendto(anon, "x", 1, 0, (void *)&sa, slen));
    SHOW("unlink the file", unlink(path));
    SHOW("sendto it now", sendto(anon, "x", 1, 0, (void *)&sa, slen));

    /* Autobind: a bind of just the family names the socket. */
    int ab = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam = {.sun_family = AF_UNIX};
    SHOW("bind just the family", bind(ab, (void *)&fam, sizeof(sa_family_t)));
    gl = sizeof got;
    getsockname(ab, (void *)&got, &gl);
    printf("autobound: %d bytes, abstract %s\n", (int)gl, got.sun_path[0] == 0 ? "yes" : "no");
    SHOW("sendto its own name", sendto(anon, "self", 4, 0, (void *)&got, gl));
    SHOW("recv", recv(ab, buf, sizeof buf, 0));

    SHOW("shutdown SHUT_WR", shutdown(anon, SHUT_WR));
    SHOW("sendto after shutdown", sendto(anon, "x", 1, MSG_NOSIGNAL, (void *)&got, gl));
    unlink(other);
    return 0;
}
