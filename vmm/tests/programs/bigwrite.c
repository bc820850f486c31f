/* Blocking writes larger than a pipe or stream socket holds: Linux writes
 * all of it, waiting for the reader as often as it takes; a signal that
 * ends the wait after some bytes went returns their count (not EINTR, and
 * not restarted under SA_RESTART); a non-blocking write gives what fits. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

enum { BIG = 1 << 20 };
static unsigned char out[BIG], in[BIG];

struct reader { int fd; size_t want; size_t got; };

static void *drain(void *arg) {
    struct reader *r = arg;
    usleep(30000);
    while (r->got < r->want) {
        ssize_t n = read(r->fd, in + r->got, 4000);
        if (n <= 0) break;
        r->got += (size_t)n;
        if (r->got % 65536 < 4000) usleep(1000);
    }
    return NULL;
}

static void *take_one(void *arg) {
    char c;
    usleep(20000);
    if (read(*(int *)arg, &c, 1) != 1) puts("reader: no byte");
    return NULL;
}

static void alarm_handler(int sig) { (void)sig; }

static void whole(const char *what, int wfd, int rfd, int vectored) {
    struct reader r = { rfd, BIG, 0 };
    pthread_t t;
    pthread_create(&t, NULL, drain, &r);
    ssize_t n;
    if (vectored == 2) {
        n = send(wfd, out, BIG, 0);
    } else if (vectored) {
        struct iovec iov[2] = { { out, BIG / 2 }, { out + BIG / 2, BIG / 2 } };
        n = writev(wfd, iov, 2);
    } else {
        n = write(wfd, out, BIG);
    }
    pthread_join(t, NULL);
    printf("%s: wrote %zd of %d, read %zu, same bytes: %s\n", what, n, BIG, r.got,
           r.got == BIG && memcmp(in, out, BIG) == 0 ? "yes" : "no");
}

static void interrupted(int restart) {
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_handler;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    pthread_t t;
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    pthread_create(&t, NULL, take_one, &p[0]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 150000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    ssize_t n = write(p[1], out, BIG);
    int e = errno;
    pthread_join(t, NULL);
    printf("interrupted%s: returned a count: %s, some but not all: %s, EINTR: %s\n",
           restart ? " (SA_RESTART)" : "", n >= 0 ? "yes" : "no",
           n > 0 && n < BIG ? "yes" : "no", n < 0 && e == EINTR ? "yes" : "no");
    close(p[0]);
    close(p[1]);
}

int main(void) {
    for (size_t i = 0; i < BIG; i++) out[i] = (unsigned char)(i * 7 + (i >> 12));
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    whole("pipe write", p[1], p[0], 0);
    whole("pipe writev", p[1], p[0], 1);
    close(p[0]);
    close(p[1]);
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) { perror("socketpair"); return 1; }
    whole("stream socket write", s[0], s[1], 0);
    whole("stream socket writev", s[0], s[1], 1);
    whole("stream socket send", s[0], s[1], 2);
    /* MSG_DONTWAIT on a blocking socket: what fits, then EAGAIN. */
    ssize_t some = send(s[0], out, BIG, MSG_DONTWAIT);
    errno = 0;
    ssize_t more = send(s[0], out, BIG, MSG_DONTWAIT);
    printf("MSG_DONTWAIT: some but not all: %s, then EAGAIN: %s\n",
           some > 0 && some < BIG ? "yes" : "no", more < 0 && errno == EAGAIN ? "yes" : "no");
    close(s[0]);
    close(s[1]);
    interrupted(0);
    interrupted(1);
    /* Non-blocking: what fits, then EAGAIN. */
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    ssize_t n = write(p[1], out, BIG);
    errno = 0;
    ssize_t again = write(p[1], out, BIG);
    printf("non-blocking: some but not all: %s, then EAGAIN: %s\n",
           n > 0 && n < BIG ? "yes" : "no", again < 0 && errno == EAGAIN ? "yes" : "no");
    return 0;
}
