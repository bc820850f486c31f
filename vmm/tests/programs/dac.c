/* File permissions as Linux checks them against a process's ids: a
 * process that gave up root opens, truncates, executes and access()es
 * only what its owner, group and other bits let it, and makes and removes
 * names only in directories it may write (in a sticky one, only its own);
 * root reads and writes anything and executes what has an execute bit;
 * a walk needs search permission on each directory it looks a name up in
 * (not on the working directory's parents). (Every process
 * had root's reach over files: nobody read /etc/shadow.) Run as root,
 * on the host and on Lego, in a directory it makes (argv[1], else one in
 * /tmp), which must not exist. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

static const char *at(const char *name)
{
    static char path[2][128];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", dir, name);
    return path[which];
}

static void make(const char *name, const char *text, mode_t mode, uid_t uid, gid_t gid)
{
    int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write(fd, text, strlen(text));
    close(fd);
    chown(at(name), uid, gid);
    chmod(at(name), mode);
}

/* A directory of `mode` (chmod after mkdir: the umask takes bits off). */
static void make_dir(const char *name, mode_t mode)
{
    mkdir(at(name), mode);
    chmod(at(name), mode);
}

static void try_open(const char *what, const char *path, int flags)
{
    int fd = open(path, flags);
    printf("  %s: %s\n", what, fd >= 0 ? "opened" : strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void try_exec(const char *what, const char *path)
{
    pid_t c = fork();
    if (c == 0) {
        execl(path, path, (char *)0);
        _exit(errno == EACCES ? 40 : 41);
    }
    int st;
    waitpid(c, &st, 0);
    printf("  %s: %s\n", what,
           WEXITSTATUS(st) == 40 ? "EACCES" : WEXITSTATUS(st) == 0 ? "ran" : "other");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else
        snprintf(dir, sizeof dir, "/tmp/dac-%d", getpid());
    mkdir(dir, 0755);
    make("root-private", "secret\n", 0600, 0, 0);
    make("root-public", "public\n", 0644, 0, 0);
    make("group-read", "group\n", 0640, 0, 4242);
    make("owner-none", "mine\n", 0070, 65534, 65534);
    make("script", "#!/bin/sh\necho script ran\n", 0644, 0, 0);
    make("root-only-x", "#!/bin/sh\nexit 0\n", 0700, 0, 0);
    make("all-x", "#!/bin/sh\nexit 0\n", 0755, 0, 0);
    make_dir("open", 0777);
    make_dir("sticky", 01777);
    make("sticky/roots", "r\n", 0666, 0, 0);
    make("open/roots", "r\n", 0644, 0, 0);
    make_dir("closed", 0700);
    make_dir("closed/inner", 0755);
    make("closed/inner/f", "inner\n", 0644, 0, 0);

    printf("root:\n");
    try_open("a file of mode 000 of another's, read", at("owner-none"), O_RDONLY);
    try_exec("a file without an execute bit", at("script"));
    try_exec("its own 0700 program", at("root-only-x"));
    printf("  access X_OK of 0644: %s\n", access(at("script"), X_OK) ? strerror(errno) : "ok");
    printf("  access R_OK|W_OK of 0000: %s\n", access(at("owner-none"), R_OK | W_OK) ? strerror(errno) : "ok");

    /* A listening socket of root's that others may not write. */
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "/tmp/dac-sock-%d", getpid());
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(ls, (struct sockaddr *)&sun, sizeof sun);
    listen(ls, 4);
    chmod(sun.sun_path, 0755);

    pid_t c = fork();
    if (c == 0) {
        gid_t g[] = { 4242 };
        setgroups(1, g);
        /* Its working directory is under one it may not search. */
        int outer = open(at("closed"), O_RDONLY | O_DIRECTORY);
        chdir(at("closed/inner"));
        if (setgid(65534) || setuid(65534)) {
            printf("cannot become nobody\n");
            _exit(1);
        }
        printf("nobody (in group 4242):\n");
        try_open("a file under root's 0700 directory", at("closed/inner/f"), O_RDONLY);
        struct stat st;
        SHOW("  stat of it", stat(at("closed/inner/f"), &st));
        SHOW("  stat of the 0700 directory itself", stat(at("closed"), &st));
        SHOW("  stat of a name under a file there", stat(at("closed/inner/f/x"), &st));
        SHOW("  access of the file", access(at("closed/inner/f"), F_OK));
        try_open("the same file from the working directory under it", "f", O_RDONLY);
        SHOW("  chdir into the 0700 directory", chdir(at("closed")));
        SHOW("  fchdir into it", fchdir(outer));
        SHOW("  truncate of root's 0644 file", truncate(at("root-public"), 0));
        SHOW("  O_NOATIME open of root's 0644 file", open(at("root-public"), O_RDONLY | O_NOATIME));
        int cs = socket(AF_UNIX, SOCK_STREAM, 0);
        SHOW("  connect to root's 0755 socket", connect(cs, (struct sockaddr *)&sun, sizeof sun));
        /* (Where the host lets anyone bind low ports, as a container's
         * ip_unprivileged_port_start of 0 does, Lego still asks.) */
        FILE *ports = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
        int first = 1024;
        if (ports) {
            if (fscanf(ports, "%d", &first) != 1)
                first = 1024;
            fclose(ports);
        }
        int tcp = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in low = { .sin_family = AF_INET, .sin_port = htons(80) };
        if (first == 1024)
            SHOW("  bind to port 80", bind(tcp, (struct sockaddr *)&low, sizeof low));
        else
            printf("  bind to port 80: -1 Permission denied\n");
        try_open("root's 0600 file, read", at("root-private"), O_RDONLY);
        try_open("root's 0644 file, read", at("root-public"), O_RDONLY);
        try_open("root's 0644 file, write", at("root-public"), O_WRONLY);
        try_open("root's 0644 file, O_CREAT|O_TRUNC", at("root-public"), O_WRONLY | O_CREAT | O_TRUNC);
        char buf[16] = "";
        int fd = open(at("root-public"), O_RDONLY);
        read(fd, buf, sizeof buf - 1);
        close(fd);
        printf("  root's 0644 file kept: %s", buf);
        try_open("0640 of its group, read", at("group-read"), O_RDONLY);
        try_open("its own 0070 file (the owner's bits count)", at("owner-none"), O_RDONLY);
        /* One of the host's files (storage has none of them). */
        if (argc == 1)
            try_open("/etc/shadow, read", "/etc/shadow", O_RDONLY);
        try_open("root's 0644 file, O_PATH", at("root-private"), O_PATH);
        try_exec("root's 0700 program", at("root-only-x"));
        try_exec("a 0755 program", at("all-x"));
        printf("  access R_OK of root's 0600: %s\n", access(at("root-private"), R_OK) ? strerror(errno) : "ok");
        printf("  access R_OK of 0640 of its group: %s\n", access(at("group-read"), R_OK) ? strerror(errno) : "ok");
        printf("  access X_OK of 0755: %s\n", access(at("all-x"), X_OK) ? strerror(errno) : "ok");
        /* Names in directories: write and search permission on the
         * directory, and a sticky one's names only their owners remove. */
        SHOW("  a new file in root's 0755 directory", open(at("new"), O_WRONLY | O_CREAT, 0644));
        SHOW("  mkdir there", mkdir(at("newdir"), 0755));
        SHOW("  symlink there", symlink("x", at("newlink")));
        SHOW("  unlink of root's file there", unlink(at("root-public")));
        SHOW("  rename there", rename(at("root-public"), at("moved")));
        SHOW("  mkdir of a name there already", mkdir(at("open"), 0755));
        SHOW("  unlink of a name not there", unlink(at("gone")));
        int nf = open(at("open/mine"), O_WRONLY | O_CREAT, 0644);
        printf("  a new file in a 0777 directory: %s\n", nf >= 0 ? "made" : strerror(errno));
        close(nf);
        SHOW("  unlink of root's file in a 0777 directory", unlink(at("open/roots")));
        SHOW("  rename of its own file out to root's directory", rename(at("open/mine"), at("mine")));
        nf = open(at("sticky/mine"), O_WRONLY | O_CREAT, 0644);
        close(nf);
        SHOW("  unlink of root's file in a sticky directory", unlink(at("sticky/roots")));
        SHOW("  rename of root's file there", rename(at("sticky/roots"), at("sticky/x")));
        SHOW("  unlink of its own file there", unlink(at("sticky/mine")));
        _exit(0);
    }
    waitpid(c, 0, 0);
    const char *names[] = { "root-private", "root-public", "group-read", "owner-none",
                            "script", "root-only-x", "all-x", "open/roots", "open/mine",
                            "sticky/roots", "sticky/mine", "moved", "mine" };
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        unlink(at(names[i]));
    unlink(sun.sun_path);
    unlink(at("closed/inner/f"));
    rmdir(at("closed/inner"));
    rmdir(at("closed"));
    rmdir(at("open"));
    rmdir(at("sticky"));
    rmdir(dir);
    return 0;
}
