/* inotify as file watchers use it (Node's fs.watch, tail -f, build
 * tools): a directory's watch hearing of its children being made, opened,
 * read, written, renamed, linked and removed, a file's watch hearing of
 * itself, one-shot watches, IN_IGNORED, renames paired by their cookie,
 * poll, FIONREAD, and the errors of bad watches. Works in a directory of
 * its own under /tmp (or the directory given, and "noexchange" after it
 * to leave RENAME_EXCHANGE out); prints names relative to it, to compare
 * with the host. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"


static int in;
static char dir[64];
/* Watch descriptors by the name the output gives them. */
static int wds[8];
static const char *wd_names[8];
static int nwds;

static void named(int wd, const char *name)
{
    wds[nwds] = wd;
    wd_names[nwds++] = name;
}

static const char *wd_name(int wd)
{
    for (int i = 0; i < nwds; i++)
        if (wds[i] == wd)
            return wd_names[i];
    return wd == -1 ? "-1" : "?";
}

static void mask_text(unsigned m, char *out)
{
    static const struct { unsigned bit; const char *name; } bits[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
    };
    out[0] = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (m & bits[i].bit) {
            if (out[0])
                strcat(out, "|");
            strcat(out, bits[i].name);
        }
}

/* Reads and prints every event queued now. */
static void drain(const char *after)
{
    char buf[4096] __attribute__((aligned(8)));
    static unsigned last_cookie;
    printf("-- %s\n", after);
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                printf("read: %s\n", strerror(errno));
            return;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            char m[160];
            mask_text(e->mask, m);
            const char *cookie = "";
            if (e->cookie) {
                cookie = e->cookie == last_cookie ? " (cookie as before)" : " (a cookie)";
                last_cookie = e->cookie;
            }
            printf("  %s %s %s%s\n", wd_name(e->wd), m, e->len ? e->name : "-", cookie);
            p += sizeof *e + e->len;
        }
    }
}

static void at(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *text, int flags)
{
    char p[128];
    at(p, name);
    int fd = open(p, O_WRONLY | O_CREAT | flags, 0644);
    if (write(fd, text, strlen(text)) < 0)
        perror("write");
    close(fd);
}

/* Watches that end with their file whatever they asked for, renames onto
 * the same file and over another's link, RENAME_EXCHANGE, and masks
 * checked before the descriptor. */
static void more(const char *base, int exchange)
{
    snprintf(dir, sizeof dir, "%s%sinotify2-XXXXXX", base,
             base[strlen(base) - 1] == '/' ? "" : "/");
    if (!mkdtemp(dir))
        return;
    nwds = 0;
    char p[128], q[128], r[128];
    at(p, "p");
    at(q, "q");
    at(r, "r");
    write_file("p", "p", 0);
    write_file("q", "q", 0);
    named(inotify_add_watch(in, dir, IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_CREATE), "dir2");
    named(inotify_add_watch(in, p, IN_MODIFY), "p");
    named(inotify_add_watch(in, q, IN_ALL_EVENTS), "q");
    SHOW("rename p onto itself", rename(p, p));
    drain("renamed onto itself");
    link(q, r);
    drain("q linked as r");
    SHOW("rename r onto q (the same file)", rename(r, q));
    drain("renamed onto another name of itself");
    unlink(r);
    drain("r unlinked");
    /* Storage on Lego does not exchange (EINVAL): its run skips this. */
    if (exchange) {
        SHOW("exchange p and q", syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, q, 2));
        drain("exchanged");
    } else {
        rename(p, r);
        rename(q, p);
        rename(r, q);
        drain("swapped by three renames");
    }
    write_file("q", "more", O_APPEND);
    drain("q (once p) written");
    unlink(p);
    drain("p (once q) unlinked");
    unlink(q);
    drain("q unlinked: its watch asked only for IN_MODIFY");
    /* IN_EXCL_UNLINK: a child written after its last name went is not
     * heard of by the directory. */
    char u[128];
    at(u, "u");
    int ufd = open(u, O_WRONLY | O_CREAT, 0600);
    drain("u made");
    inotify_add_watch(in, dir, IN_MODIFY | IN_EXCL_UNLINK | IN_MASK_ADD);
    if (write(ufd, "1", 1) != 1)
        perror("write");
    unlink(u);
    if (write(ufd, "2", 1) != 1)
        perror("write");
    close(ufd);
    drain("u written, unlinked, written again");
    SHOW("IN_ONLYDIR alone", inotify_add_watch(in, dir, IN_ONLYDIR) > 0);
    SHOW("ADD and CREATE on a bad fd", inotify_add_watch(99, "/no/such", IN_MASK_ADD | IN_MASK_CREATE));
    rmdir(dir);
    drain("the second directory removed");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Another directory than /tmp may be given (on Lego, one on storage). */
    const char *base = argc > 1 ? argv[1] : "/tmp";
    snprintf(dir, sizeof dir, "%s%sinotify-XXXXXX", base,
             base[strlen(base) - 1] == '/' ? "" : "/");
    if (!mkdtemp(dir))
        return 1;
    char a[128], b[128], c[128], sub[128], sym[128], x[128];
    at(a, "a");
    at(b, "b");
    at(c, "c");
    at(sub, "sub");
    at(sym, "link");
    at(x, "sub/x");

    in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    SHOW("inotify_init1", in >= 0);
    char buf[64];
    SHOW("read with nothing queued", read(in, buf, sizeof buf));
    SHOW("inotify_init1(bad flag)", inotify_init1(1));

    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    named(wd, "dir");
    SHOW("watch dir", wd > 0);
    SHOW("the same again", inotify_add_watch(in, dir, IN_ALL_EVENTS) == wd);
    SHOW("IN_MASK_CREATE on it", inotify_add_watch(in, dir, IN_CREATE | IN_MASK_CREATE));

    write_file("a", "hello", O_TRUNC);
    drain("a made and written");

    int wa = inotify_add_watch(in, a, IN_ALL_EVENTS);
    named(wa, "a");
    int fd = open(a, O_RDONLY);
    SHOW("read a", read(fd, buf, sizeof buf));
    close(fd);
    drain("a read");

    struct pollfd pfd = {in, POLLIN, 0};
    SHOW("poll with nothing queued", poll(&pfd, 1, 0));
    chmod(a, 0600);
    SHOW("poll after chmod", poll(&pfd, 1, 0));
    int queued = -1;
    SHOW("FIONREAD", ioctl(in, FIONREAD, &queued));
    printf("FIONREAD bytes: %d\n", queued);
    SHOW("read into 10 bytes", read(in, buf, 10));
    drain("a chmod");

    write_file("a", " again", O_APPEND);
    truncate(a, 2);
    drain("a appended and truncated");

    mkdir(sub, 0755);
    DIR *d = opendir(sub);
    while (d && readdir(d))
        ;
    if (d)
        closedir(d);
    drain("sub made and listed");

    rename(a, b);
    drain("a renamed to b");
    link(b, c);
    drain("b linked as c");
    unlink(c);
    drain("c unlinked");
    symlink("b", sym);
    unlink(sym);
    drain("a symbolic link made and unlinked");

    int wsub = inotify_add_watch(in, sub, IN_CREATE | IN_ONESHOT);
    named(wsub, "sub");
    write_file("sub/x", "1", 0);
    write_file("sub/y", "2", 0);
    drain("two files made in sub, watched once");

    fd = open(b, O_RDONLY);
    unlink(b);
    drain("b unlinked while open");
    close(fd);
    drain("b closed");

    SHOW("rm_watch(gone)", inotify_rm_watch(in, wa));
    SHOW("watch a missing file", inotify_add_watch(in, b, IN_ALL_EVENTS));
    SHOW("IN_ONLYDIR on a file", inotify_add_watch(in, x, IN_ALL_EVENTS | IN_ONLYDIR));
    SHOW("mask 0", inotify_add_watch(in, dir, 0));
    SHOW("watch with a pipe", inotify_add_watch(0, dir, IN_ALL_EVENTS));
    SHOW("watch with a bad fd", inotify_add_watch(99, dir, IN_ALL_EVENTS));
    int wx = inotify_add_watch(in, x, IN_MODIFY);
    named(wx, "x");
    SHOW("rm_watch(x)", inotify_rm_watch(in, wx));
    SHOW("rm_watch(x) again", inotify_rm_watch(in, wx));
    drain("x watched and unwatched");

    char y[128];
    at(y, "sub/y");
    unlink(x);
    unlink(y);
    rmdir(sub);
    drain("sub emptied and removed");
    rmdir(dir);
    drain("the directory removed");
    more(base, !(argc > 2 && !strcmp(argv[2], "noexchange")));
    close(in);
    return 0;
}
