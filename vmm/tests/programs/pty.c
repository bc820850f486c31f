/* Pseudo-terminals as script, expect and CPython's pty module use them:
 * posix_openpt, grantpt, unlockpt, ptsname and the slave opened by name,
 * openpty, isatty and ttyname, the slave's default termios, canonical
 * lines with echo, erase and end-of-file, output as CRLF, raw mode, the
 * window size, ^C raising SIGINT in a child that took the terminal as its
 * controlling one, and the hang-ups (EIO at the master, the end of file
 * at the slave). Prints what it saw, to compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Reads from `fd` until `want` bytes came or a second passed: a host
 * delivers what the master types a moment later. */
static int read_for(int fd, char *buf, int want)
{
    int got = 0;
    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            break;
        int n = read(fd, buf + got, want - got);
        if (n <= 0)
            break;
        got += n;
    }
    buf[got] = 0;
    return got;
}

static void show(const char *what, const char *s, int n)
{
    printf("%s: %d \"", what, n);
    for (int i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("\"\n");
}

static volatile sig_atomic_t interrupted;
static void on_int(int sig) { interrupted = sig; }

int main(void)
{
    char buf[256];
    /* Unbuffered: the forked child's lines come in order. */
    setvbuf(stdout, NULL, _IONBF, 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    printf("posix_openpt: %s\n", m >= 0 ? "ok" : strerror(errno));
    char *name = ptsname(m);
    char path[64];
    snprintf(path, sizeof path, "%s", name ? name : "");
    printf("ptsname under /dev/pts/: %s\n", strncmp(path, "/dev/pts/", 9) == 0 ? "yes" : "no");
    int early = open(path, O_RDWR | O_NOCTTY);
    printf("open before unlockpt: %s\n", early < 0 ? strerror(errno) : "opened");
    if (early >= 0)
        close(early);
    printf("grantpt %d unlockpt %d\n", grantpt(m), unlockpt(m));
    int s = open(path, O_RDWR | O_NOCTTY);
    printf("open slave: %s\n", s >= 0 ? "ok" : strerror(errno));
    printf("isatty: master %d slave %d\n", isatty(m), isatty(s));
    char *tn = ttyname(s);
    printf("ttyname is ptsname: %s\n", tn && strcmp(tn, path) == 0 ? "yes" : "no");
    struct stat st, st2;
    fstat(s, &st);
    stat(path, &st2);
    printf("slave: char device %s, major %u, stat by name the same %s\n",
           S_ISCHR(st.st_mode) ? "yes" : "no", major(st.st_rdev),
           st.st_rdev == st2.st_rdev && st.st_ino == st2.st_ino ? "yes" : "no");
    /* sshd gives a login's terminal to its user, by name and by
     * descriptor; stat and fstat then say so (they failed: ENOENT). */
    int owned = chown(path, 1000, 1001) == 0 && chmod(path, 0600) == 0;
    stat(path, &st2);
    owned &= st2.st_uid == 1000 && st2.st_gid == 1001 && (st2.st_mode & 07777) == 0600;
    owned &= fchown(s, 0, 5) == 0 && fchmod(s, 0620) == 0;
    fstat(s, &st2);
    owned &= st2.st_uid == 0 && st2.st_gid == 5 && (st2.st_mode & 07777) == 0620;
    printf("slave's owner and mode changed by chown and chmod: %s\n", owned ? "yes" : "no");
    struct termios t;
    tcgetattr(s, &t);
    printf("termios: iflag %#o oflag %#o cflag %#o lflag %#o\n", t.c_iflag, t.c_oflag,
           t.c_cflag & ~(CBAUD | CBAUDEX), t.c_lflag);
    printf("cc: intr %d quit %d erase %d kill %d eof %d min %d susp %d\n", t.c_cc[VINTR],
           t.c_cc[VQUIT], t.c_cc[VERASE], t.c_cc[VKILL], t.c_cc[VEOF], t.c_cc[VMIN],
           t.c_cc[VSUSP]);

    /* A line typed at the master: the slave reads it, the master sees
     * it echoed with CRLF. */
    write(m, "hello\r", 6);
    show("slave reads", buf, read_for(s, buf, 6));
    show("master reads the echo", buf, read_for(m, buf, 7));
    write(s, "out\nput\n", 8);
    show("master reads the output", buf, read_for(m, buf, 10));
    write(m, "abx\x7f" "c\n", 6);
    show("erased", buf, read_for(s, buf, 4));
    show("its echo", buf, read_for(m, buf, 9));
    write(m, "\x04", 1);
    struct pollfd p = {s, POLLIN, 0};
    poll(&p, 1, 2000);
    printf("end of file: read %zd\n", read(s, buf, sizeof buf));
    show("EOF's echo (none)", buf, read_for(m, buf, 1));
    int n = 0;
    ioctl(s, FIONREAD, &n);
    printf("FIONREAD of an empty slave: %d\n", n);

    /* Raw mode: bytes pass at once, unechoed and unchanged. */
    struct termios raw = t;
    cfmakeraw(&raw);
    tcsetattr(s, TCSANOW, &raw);
    write(m, "\r\x03q", 3);
    show("raw reads", buf, read_for(s, buf, 3));
    write(s, "\n", 1);
    show("raw output", buf, read_for(m, buf, 1));
    tcsetattr(s, TCSANOW, &t);

    struct winsize ws = {.ws_row = 24, .ws_col = 80}, got = {0};
    ioctl(m, TIOCSWINSZ, &ws);
    ioctl(s, TIOCGWINSZ, &got);
    printf("window: %d x %d\n", got.ws_row, got.ws_col);

    /* ^C: SIGINT for the foreground group of the terminal's session. */
    pid_t child = fork();
    if (child == 0) {
        close(m);
        close(s);
        setsid();
        signal(SIGINT, on_int);
        int c = open(path, O_RDWR); /* becomes its controlling terminal */
        printf("child's terminal foreground is its group: %s\n",
               tcgetpgrp(c) == getpgrp() ? "yes" : "no");
        write(c, "ready\n", 6);
        while (!interrupted)
            pause();
        write(c, "interrupted\n", 12);
        _exit(0);
    }
    /* The parent's slave stays open until the child has its own: a
     * slave closed by all is a hang-up the master reads as EIO. */
    show("the child says", buf, read_for(m, buf, 7));
    close(s);
    write(m, "\x03", 1);
    show("then", buf, read_for(m, buf, 15));
    int status = 0;
    waitpid(child, &status, 0);
    printf("child exit %d\n", WEXITSTATUS(status));
    p.fd = m;
    p.events = POLLIN;
    int r = poll(&p, 1, 2000);
    printf("master after the slave closed: poll %d POLLHUP %s\n", r, p.revents & POLLHUP ? "yes" : "no");
    errno = 0;
    ssize_t rr = read(m, buf, sizeof buf);
    printf("master read: %zd %s\n", rr, strerror(errno));
    close(m);

    /* openpty, then the master goes: the slave reads its end. */
    int m2, s2;
    printf("openpty: %d\n", openpty(&m2, &s2, NULL, NULL, &ws));
    ioctl(s2, TIOCGWINSZ, &got);
    printf("its window: %d x %d\n", got.ws_row, got.ws_col);
    close(m2);
    printf("slave read after the master closed: %zd\n", read(s2, buf, sizeof buf));
    errno = 0;
    ssize_t wr = write(s2, "x", 1);
    printf("slave write: %zd %s\n", wr, strerror(errno));
    close(s2);
    return 0;
}
