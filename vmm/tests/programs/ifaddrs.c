/* The network interfaces as programs learn them: getifaddrs (glibc and
 * musl ask the kernel over a NETLINK_ROUTE socket), if_nameindex,
 * if_nametoindex, and a raw RTM_GETLINK dump read back message by
 * message, as Go's net.Interfaces makes it; then the interface ioctls
 * (struct ifreq, SIOCGIFCONF) as ifconfig and net-tools ask. Prints the
 * loopback's lines only (a host has other interfaces; Lego's processes
 * have just lo). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Netlink's structures, written out: musl's tool chain has no kernel
 * headers. */
#define NETLINK_ROUTE 0
#define NLM_F_REQUEST 1
#define NLM_F_DUMP 0x300
#define NLMSG_ERROR 2
#define NLMSG_DONE 3
#define RTM_NEWLINK 16
#define RTM_GETLINK 18
#define IFLA_IFNAME 3
struct sockaddr_nl {
    unsigned short nl_family, nl_pad;
    unsigned nl_pid, nl_groups;
};
struct nlmsghdr {
    unsigned nlmsg_len;
    unsigned short nlmsg_type, nlmsg_flags;
    unsigned nlmsg_seq, nlmsg_pid;
};
struct rtgenmsg {
    unsigned char rtgen_family;
};
struct ifinfomsg {
    unsigned char ifi_family, pad;
    unsigned short ifi_type;
    int ifi_index;
    unsigned ifi_flags, ifi_change;
};
struct rtattr {
    unsigned short rta_len, rta_type;
};
#define ALIGN4(n) (((n) + 3) & ~3u)

static void ifreq_calls(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    char text[32];
#define ASK(req, name)                                                                      \
    (memset(&r, 0, sizeof r), strcpy(r.ifr_name, name), errno = 0,                          \
     ioctl(s, req, &r) == 0 ? "ok" : strerror(errno))
    /* Each answer is asked for before the printf that shows it. */
    const char *e = ASK(SIOCGIFFLAGS, "lo");
    printf("SIOCGIFFLAGS %s flags %#x\n", e,
           r.ifr_flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_BROADCAST));
    e = ASK(SIOCGIFADDR, "lo");
    inet_ntop(AF_INET, &((struct sockaddr_in *)&r.ifr_addr)->sin_addr, text, sizeof text);
    printf("SIOCGIFADDR %s family %d %s\n", e, r.ifr_addr.sa_family, text);
    e = ASK(SIOCGIFNETMASK, "lo");
    inet_ntop(AF_INET, &((struct sockaddr_in *)&r.ifr_netmask)->sin_addr, text, sizeof text);
    printf("SIOCGIFNETMASK %s %s\n", e, text);
    e = ASK(SIOCGIFBRDADDR, "lo");
    inet_ntop(AF_INET, &((struct sockaddr_in *)&r.ifr_broadaddr)->sin_addr, text, sizeof text);
    printf("SIOCGIFBRDADDR %s %s\n", e, text);
    e = ASK(SIOCGIFMTU, "lo");
    printf("SIOCGIFMTU %s %d\n", e, r.ifr_mtu);
    e = ASK(SIOCGIFHWADDR, "lo");
    printf("SIOCGIFHWADDR %s type %d zeros %d\n", e, r.ifr_hwaddr.sa_family,
           !memcmp(r.ifr_hwaddr.sa_data, "\0\0\0\0\0\0", 6));
    e = ASK(SIOCGIFTXQLEN, "lo");
    printf("SIOCGIFTXQLEN %s %d\n", e, r.ifr_qlen);
    e = ASK(SIOCGIFINDEX, "lo");
    printf("SIOCGIFINDEX %s %d\n", e, r.ifr_ifindex);
    e = ASK(SIOCGIFMETRIC, "lo");
    printf("SIOCGIFMETRIC %s %d\n", e, r.ifr_metric);
    printf("SIOCGIFFLAGS no-such-if: %s\n", ASK(SIOCGIFFLAGS, "no-such-if"));
    printf("SIOCGIFMTU no-such-if: %s\n", ASK(SIOCGIFMTU, "no-such-if"));
    printf("SIOCGIFADDR lo:7: %s\n", ASK(SIOCGIFADDR, "lo:7"));
    errno = 0;
    printf("SIOCGIFADDR at a bad address: %s\n",
           ioctl(s, SIOCGIFADDR, (void *)8) == 0 ? "ok" : strerror(errno));
    /* The list: its size first (no buffer), then into a buffer. */
    struct ifconf c = {0};
    errno = 0;
    int rc = ioctl(s, SIOCGIFCONF, &c);
    printf("SIOCGIFCONF size: %s, whole records %d, some %d\n", rc ? strerror(errno) : "ok",
           c.ifc_len % (int)sizeof r == 0, c.ifc_len > 0);
    struct ifreq list[64];
    c.ifc_len = sizeof list;
    c.ifc_req = list;
    rc = ioctl(s, SIOCGIFCONF, &c);
    int lo = 0;
    for (int i = 0; i < c.ifc_len / (int)sizeof r; i++) {
        struct sockaddr_in *a = (struct sockaddr_in *)&list[i].ifr_addr;
        if (!strcmp(list[i].ifr_name, "lo"))
            lo = a->sin_family == AF_INET && a->sin_addr.s_addr == htonl(0x7f000001);
    }
    printf("SIOCGIFCONF %s, lo listed with 127.0.0.1 %d\n", rc ? strerror(errno) : "ok", lo);
    c.ifc_len = sizeof r - 1;
    rc = ioctl(s, SIOCGIFCONF, &c);
    printf("SIOCGIFCONF into %d bytes: %d, length %d\n", (int)sizeof r - 1, rc, c.ifc_len);
    close(s);
}

/* The messages of a dump on netlink socket `s`, each given to `each` with
 * `ctx`, until NLMSG_DONE or NLMSG_ERROR. */
static void each_message(int s, void (*each)(struct nlmsghdr *, void *), void *ctx)
{
    static char buf[32768] __attribute__((aligned(4)));
    for (int done = 0; !done;) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct nlmsghdr) <= n;) {
            struct nlmsghdr *h = (void *)(buf + at);
            if (h->nlmsg_len < sizeof *h || at + h->nlmsg_len > (size_t)n)
                break;
            at += ALIGN4(h->nlmsg_len);
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = 1;
                break;
            }
            each(h, ctx);
        }
    }
}

/* One RTM_NEWROUTE: printed if it is the loopback's. */
static void route_line(struct nlmsghdr *h, void *ctx)
{
    (void)ctx;
    if (h->nlmsg_type != 24 /* RTM_NEWROUTE */)
        return;
    unsigned char *rtm = (void *)(h + 1);
    char *a = (char *)rtm + 12, *end = (char *)h + h->nlmsg_len;
    int oif = 0;
    char dst[64] = "-";
    while (a + sizeof(struct rtattr) <= end) {
        struct rtattr *r = (void *)a;
        if (r->rta_len < sizeof *r)
            break;
        if (r->rta_type == 4 /* RTA_OIF */)
            memcpy(&oif, a + sizeof *r, 4);
        if (r->rta_type == 1 /* RTA_DST */)
            inet_ntop(rtm[0], a + sizeof *r, dst, sizeof dst);
        a += ALIGN4(r->rta_len);
    }
    if (oif == 1)
        printf("route: family %s %s/%d table %d protocol %d scope %d type %d\n",
               rtm[0] == AF_INET ? "inet" : "inet6", dst, rtm[1], rtm[4], rtm[5], rtm[6], rtm[7]);
}

/* A route dump (`ip route show table all`): the loopback's routes, which
 * Linux keeps in its local table (a host's other interfaces have more). */
static void routes(int s)
{
    struct {
        struct nlmsghdr h;
        unsigned char rtm[12];
    } req = {{sizeof req, 26 /* RTM_GETROUTE */, NLM_F_REQUEST | NLM_F_DUMP, 44, 0}, {0}};
    send(s, &req, sizeof req, 0);
    each_message(s, route_line, NULL);
}

/* What a sock_diag dump found: our listener (by port, address and
 * inode), and whether every entry was an IPv4 listener. */
struct diag_seen {
    struct sockaddr_in a;
    unsigned inode;
    int found, all_listen;
};

static void diag_entry(struct nlmsghdr *h, void *ctx)
{
    struct diag_seen *seen = ctx;
    unsigned char *m = (void *)(h + 1);
    unsigned short port;
    unsigned inode;
    memcpy(&port, m + 4, 2);
    memcpy(&inode, m + 68, 4);
    seen->all_listen &= h->nlmsg_type == 20 && m[0] == AF_INET && m[1] == 10;
    if (port == seen->a.sin_port && inode == seen->inode && !memcmp(m + 8, &seen->a.sin_addr, 4))
        seen->found = 1;
}

/* A NETLINK_SOCK_DIAG dump of IPv4 TCP listeners, as `ss -ltn` asks:
 * does it list ours, with its port and inode? */
static void sock_diag(void)
{
    struct diag_seen seen = {.a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)},
                             .all_listen = 1};
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t alen = sizeof seen.a;
    if (bind(l, (void *)&seen.a, sizeof seen.a) || listen(l, 4) ||
        getsockname(l, (void *)&seen.a, &alen)) {
        printf("sock_diag: listener: %s\n", strerror(errno));
        return;
    }
    struct stat st;
    fstat(l, &st);
    seen.inode = st.st_ino;
    int s = socket(AF_NETLINK, SOCK_DGRAM, 4 /* NETLINK_SOCK_DIAG */);
    printf("sock_diag socket: %s\n", s >= 0 ? "ok" : strerror(errno));
    struct {
        struct nlmsghdr h;
        unsigned char family, protocol, ext, pad;
        unsigned states;
        unsigned char id[48];
    } req = {{sizeof req, 20 /* SOCK_DIAG_BY_FAMILY */, NLM_F_REQUEST | NLM_F_DUMP, 45, 0},
             AF_INET, 6 /* TCP */, 0, 0, 1u << 10 /* LISTEN */, {0}};
    send(s, &req, sizeof req, 0);
    each_message(s, diag_entry, &seen);
    printf("sock_diag: our listener %s, every entry an IPv4 listener %d\n",
           seen.found ? "listed" : "missing", seen.all_listen);
    close(s);
    close(l);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct ifaddrs *all;
    if (getifaddrs(&all) != 0) {
        printf("getifaddrs: %s\n", strerror(errno));
    } else {
        for (struct ifaddrs *i = all; i; i = i->ifa_next) {
            if (strcmp(i->ifa_name, "lo"))
                continue;
            int family = i->ifa_addr ? i->ifa_addr->sa_family : -1;
            char text[64] = "-";
            if (family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof text);
            else if (family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, text, sizeof text);
            char mask[64] = "-";
            if (family == AF_INET && i->ifa_netmask)
                inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, mask, sizeof mask);
            printf("getifaddrs: lo family %s address %s netmask %s up %d loopback %d\n",
                   family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "packet", text, mask,
                   !!(i->ifa_flags & IFF_UP), !!(i->ifa_flags & IFF_LOOPBACK));
        }
        freeifaddrs(all);
    }
    struct if_nameindex *ni = if_nameindex();
    int lo = -1;
    for (struct if_nameindex *p = ni; p && p->if_index; p++)
        if (!strcmp(p->if_name, "lo"))
            lo = p->if_index;
    printf("if_nameindex: lo is %d\n", lo);
    char name[IF_NAMESIZE] = "";
    errno = 0;
    printf("if_nametoindex(lo) %u, if_indextoname(1) %s\n", if_nametoindex("lo"),
           if_indextoname(1, name) ? name : strerror(errno));
    errno = 0;
    unsigned none = if_nametoindex("no-such-if");
    printf("if_nametoindex(no-such-if) %u %s\n", none, strerror(errno));
    if (ni)
        if_freenameindex(ni);

    /* A raw dump. */
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    printf("socket %d bind %d\n", s >= 0, bind(s, (void *)&me, sizeof me));
    socklen_t len = sizeof me;
    getsockname(s, (void *)&me, &len);
    printf("port id set: %d, family %d, length %u\n", me.nl_pid != 0, me.nl_family, len);
    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
    } req = {{sizeof req, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 42, 0}, {AF_UNSPEC}};
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    printf("sendto %zd\n", sendto(s, &req, sizeof req, 0, (void *)&kernel, sizeof kernel));
    char buf[8192] __attribute__((aligned(4)));
    int done = 0, links = 0, saw_lo = 0, good_seq = 1;
    while (!done) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct nlmsghdr) <= n;) {
            struct nlmsghdr *h = (void *)(buf + at);
            if (h->nlmsg_len < sizeof *h || at + h->nlmsg_len > (size_t)n)
                break;
            at += ALIGN4(h->nlmsg_len);
            good_seq &= h->nlmsg_seq == 42 && h->nlmsg_pid == me.nl_pid;
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type != RTM_NEWLINK)
                continue;
            links++;
            struct ifinfomsg *ifi = (void *)(h + 1);
            char *a = (char *)(ifi + 1), *end = (char *)h + h->nlmsg_len;
            while (a + sizeof(struct rtattr) <= end) {
                struct rtattr *r = (void *)a;
                if (r->rta_len < sizeof *r)
                    break;
                if (r->rta_type == IFLA_IFNAME && !strcmp(a + sizeof *r, "lo"))
                    saw_lo = ifi->ifi_index == 1 && (ifi->ifi_flags & IFF_LOOPBACK);
                a += ALIGN4(r->rta_len);
            }
        }
    }
    printf("dump: done %d, some links %d, lo is index 1 %d, seq and port %d\n", done, links > 0,
           saw_lo, good_seq);
    /* A request the kernel does not serve this way: an error back. */
    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
    } bad = {{sizeof bad, 0x7f, NLM_F_REQUEST, 43, 0}, {AF_UNSPEC}};
    send(s, &bad, sizeof bad, 0);
    ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    struct nlmsghdr *h = (void *)buf;
    int code = 0;
    if (n >= (ssize_t)(sizeof *h + 4))
        memcpy(&code, h + 1, 4);
    printf("unknown request: %zd bytes, type error %d, errno %s\n", n,
           n > 0 && h->nlmsg_type == NLMSG_ERROR, n > 0 ? strerror(-code) : "-");
    errno = 0;
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    printf("nothing more: %zd %s\n", n, strerror(errno));
    routes(s);
    close(s);
    sock_diag();
    ifreq_calls();
    return 0;
}
