/* dnotify (fcntl F_NOTIFY) and a descriptor's owner and signal (F_SETOWN,
 * F_SETOWN_EX, F_SETSIG), run on Lego and on the host: the output must be
 * the same. Needs a writable directory in argv[1] (or /tmp). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static void touch(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
}

/* The signal that came within 200 ms (0: none), its descriptor. */
static int waited(sigset_t *set, int *fd)
{
    siginfo_t si;
    struct timespec t = {0, 200 * 1000 * 1000};
    int s = sigtimedwait(set, &si, &t);
    *fd = s > 0 ? si.si_fd : -1;
    return s > 0 ? s : 0;
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "%s/dnotify-%d", argc > 1 ? argv[1] : "/tmp", getpid());
    if (mkdir(dir, 0755) != 0) {
        perror("mkdir");
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGIO);
    sigprocmask(SIG_BLOCK, &set, 0);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    int got, fd;

    /* The owner and signal of a descriptor. */
    printf("owner at first: %d, signal %d\n", fcntl(d, F_GETOWN), fcntl(d, F_GETSIG));
    int r = fcntl(d, F_SETOWN, getpid());
    printf("F_SETOWN self: %d, read back ours %s\n", r, fcntl(d, F_GETOWN) == getpid() ? "yes" : "no");
    struct f_owner_ex ex = {F_OWNER_PGRP, getpgrp()}, back = {0, 0};
    r = fcntl(d, F_SETOWN_EX, &ex);
    fcntl(d, F_GETOWN_EX, &back);
    printf("F_SETOWN_EX group: %d, back as group %s, ", r,
           back.type == F_OWNER_PGRP && back.pid == getpgrp() ? "yes" : "no");
    printf("F_GETOWN negative %s\n", fcntl(d, F_GETOWN) == -getpgrp() ? "yes" : "no");
    ex.type = 7;
    errno = 0;
    r = fcntl(d, F_SETOWN_EX, &ex);
    printf("F_SETOWN_EX bad kind: %d errno %s\n", r, errno == EINVAL ? "EINVAL" : "?");
    errno = 0;
    r = fcntl(d, F_SETSIG, 65);
    printf("F_SETSIG 65: %d errno %s\n", r, errno == EINVAL ? "EINVAL" : "?");
    /* Back to this process alone: F_NOTIFY keeps an owner already set
     * (the group would hear of it). */
    fcntl(d, F_SETOWN, getpid());

    /* F_NOTIFY with F_SETSIG: the signal carries the descriptor. */
    fcntl(d, F_SETSIG, SIGRTMIN + 1);
    printf("F_NOTIFY create, multishot: %d\n", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    touch("a");
    got = waited(&set, &fd);
    printf("after a create: %s, its descriptor %s\n", got == SIGRTMIN + 1 ? "the F_SETSIG signal" : got ? "another signal" : "nothing",
           fd == d ? "yes" : "no");
    touch("b");
    got = waited(&set, &fd);
    printf("after another: %s\n", got == SIGRTMIN + 1 ? "signalled again" : "nothing");
    char p[512];
    snprintf(p, sizeof p, "%s/a", dir);
    unlink(p);
    got = waited(&set, &fd);
    printf("after an unlink (not asked for): %s\n", got ? "signalled" : "nothing");
    /* No events: the registration goes. */
    printf("F_NOTIFY nothing: %d\n", fcntl(d, F_NOTIFY, 0));
    touch("c");
    got = waited(&set, &fd);
    printf("after a create: %s\n", got ? "signalled" : "nothing");

    /* One shot, plain SIGIO. */
    fcntl(d, F_SETSIG, 0);
    printf("F_NOTIFY delete, one shot: %d\n", fcntl(d, F_NOTIFY, DN_DELETE));
    snprintf(p, sizeof p, "%s/b", dir);
    unlink(p);
    got = waited(&set, &fd);
    printf("after an unlink: %s\n", got == SIGIO ? "SIGIO" : got ? "another signal" : "nothing");
    snprintf(p, sizeof p, "%s/c", dir);
    unlink(p);
    got = waited(&set, &fd);
    printf("after another: %s\n", got ? "signalled" : "nothing (one shot)");

    /* Closed: nothing more. */
    fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
    close(d);
    touch("e");
    got = waited(&set, &fd);
    printf("after close and a create: %s\n", got ? "signalled" : "nothing");

    /* Not a directory; a bad descriptor. */
    snprintf(p, sizeof p, "%s/e", dir);
    int f = open(p, O_RDONLY);
    errno = 0;
    r = fcntl(f, F_NOTIFY, DN_CREATE);
    printf("F_NOTIFY on a file: %d errno %s\n", r, errno == ENOTDIR ? "ENOTDIR" : "?");
    close(f);
    errno = 0;
    r = fcntl(f, F_NOTIFY, DN_CREATE);
    printf("F_NOTIFY on a closed descriptor: %d errno %s\n", r, errno == EBADF ? "EBADF" : "?");
    /* A new descriptor's F_NOTIFY makes the caller its owner. */
    d = open(dir, O_RDONLY | O_DIRECTORY);
    fcntl(d, F_NOTIFY, DN_DELETE);
    printf("owner after F_NOTIFY: ours %s\n", fcntl(d, F_GETOWN) == getpid() ? "yes" : "no");
    close(d);
    unlink(p);
    rmdir(dir);
    return 0;
}
