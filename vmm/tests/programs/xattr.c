/* Extended attributes in /tmp as tar --xattrs, rsync -X and CPython's
 * os.*xattr use them: set, get, list and remove by path, by descriptor
 * and on a link itself, XATTR_CREATE and XATTR_REPLACE, the size query
 * and ERANGE, and the errors Linux's VFS gives (namespaces, names, sizes,
 * flags, user attributes on a symbolic link). Only the user namespace
 * is used: root's reach into trusted.* and security.* differs by host.
 * Prints what it saw, to compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"


static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names listxattr gives, sorted (file systems list in their own
 * order), without those a host's security module adds. */
static void show_list(const char *what, ssize_t n, char *buf)
{
    char *names[32];
    int k = 0;
    for (char *p = buf; n > 0 && p < buf + n && k < 32; p += strlen(p) + 1)
        if (strncmp(p, "security.", 9))
            names[k++] = p;
    qsort(names, k, sizeof names[0], by_name);
    printf("%s:", what);
    for (int i = 0; i < k; i++)
        printf(" %s", names[i]);
    printf("\n");
}

int main(void)
{
    char dir[] = "/tmp/xattr-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char f[64], l[64], d[64];
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(l, sizeof l, "%s/l", dir);
    snprintf(d, sizeof d, "%s/d", dir);
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    symlink("f", l);
    mkdir(d, 0755);

    char buf[256];
    SHOW("get before any", getxattr(f, "user.a", buf, sizeof buf));
    SHOW("list before any", listxattr(f, buf, sizeof buf));
    SHOW("set user.a", setxattr(f, "user.a", "one", 3, 0));
    SHOW("set user.a CREATE", setxattr(f, "user.a", "two", 3, XATTR_CREATE));
    SHOW("set user.b REPLACE", setxattr(f, "user.b", "two", 3, XATTR_REPLACE));
    SHOW("set user.a REPLACE", setxattr(f, "user.a", "three", 5, XATTR_REPLACE));
    SHOW("set user.b CREATE", setxattr(f, "user.b", "", 0, XATTR_CREATE));
    SHOW("get size of user.a", getxattr(f, "user.a", NULL, 0));
    SHOW("get user.a into 2 bytes", getxattr(f, "user.a", buf, 2));
    memset(buf, 0, sizeof buf);
    SHOW("get user.a", getxattr(f, "user.a", buf, sizeof buf));
    printf("user.a = %s\n", buf);
    SHOW("get user.b (empty)", getxattr(f, "user.b", buf, sizeof buf));
    SHOW("fget user.a", fgetxattr(fd, "user.a", buf, sizeof buf));
    SHOW("lget user.a through the link", lgetxattr(l, "user.a", buf, sizeof buf));
    SHOW("get user.a through the link", getxattr(l, "user.a", buf, sizeof buf));
    SHOW("lset user.a on the link", lsetxattr(l, "user.a", "x", 1, 0));
    SHOW("fset user.c", fsetxattr(fd, "user.c", "3", 1, 0));
    ssize_t n = listxattr(f, buf, sizeof buf);
    SHOW("list holds at least the three", n >= 21);
    show_list("names", n, buf);
    SHOW("list size query", listxattr(f, NULL, 0) >= 21);
    SHOW("list into 3 bytes", listxattr(f, buf, 3));
    n = flistxattr(fd, buf, sizeof buf);
    show_list("flist names", n, buf);
    SHOW("remove user.b", removexattr(f, "user.b"));
    SHOW("remove user.b again", removexattr(f, "user.b"));
    SHOW("fremove user.c", fremovexattr(fd, "user.c"));
    n = listxattr(l, buf, sizeof buf);
    show_list("names through the link", n, buf);

    SHOW("set on a directory", setxattr(d, "user.dir", "d", 1, 0));
    SHOW("get on the directory", getxattr(d, "user.dir", buf, sizeof buf));
    SHOW("unknown namespace", setxattr(f, "other.a", "x", 1, 0));
    SHOW("empty name in user", setxattr(f, "user.", "x", 1, 0));
    SHOW("empty name", setxattr(f, "", "x", 1, 0));
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[299] = 0;
    SHOW("name of 299 bytes", setxattr(f, longname, "x", 1, 0));
    SHOW("bad flags", setxattr(f, "user.a", "x", 1, 4));
    static char big[70000];
    SHOW("value past 64 KiB", setxattr(f, "user.big", big, sizeof big, 0));
    SHOW("missing file", getxattr("/tmp/no-such-file-xattr", "user.a", buf, sizeof buf));
    int p[2];
    if (pipe(p) == 0)
        SHOW("fget on a pipe", fgetxattr(p[0], "user.a", buf, sizeof buf));
    SHOW("fset on a pipe", fsetxattr(p[1], "user.a", "x", 1, 0));
    int opath = open(f, O_PATH);
    SHOW("fget on an O_PATH descriptor", fgetxattr(opath, "user.a", buf, sizeof buf));

    /* The attributes go with the file's name (rename) and with the file. */
    char g[64];
    snprintf(g, sizeof g, "%s/g", dir);
    rename(f, g);
    SHOW("get after rename", getxattr(g, "user.a", buf, sizeof buf));
    close(fd);
    close(opath);
    unlink(g);
    unlink(l);
    rmdir(d);
    rmdir(dir);
    return 0;
}
