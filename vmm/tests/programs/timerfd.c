/* timerfd as event loops use it: one-shot and periodic timers, missed
 * periods counted, absolute times on both clocks, a blocking read, poll
 * and epoll readiness, re-arming and disarming, gettime, and the errors
 * Linux gives. Prints only what does not depend on timing noise. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* The call first, then its errno (printf's arguments have no order). */
#define TRY(label, call)                                                   \
    do {                                                                   \
        errno = 0;                                                         \
        long r_ = (long)(call);                                            \
        printf("%s: %ld %s\n", label, r_, r_ < 0 ? strerror(errno) : ""); \
    } while (0)

static long ms_since(struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static struct itimerspec ms(long value, long interval) {
    struct itimerspec s;
    s.it_value.tv_sec = value / 1000;
    s.it_value.tv_nsec = (value % 1000) * 1000000;
    s.it_interval.tv_sec = interval / 1000;
    s.it_interval.tv_nsec = (interval % 1000) * 1000000;
    return s;
}

int main(void) {
    struct timespec t0;
    uint64_t n = 0;

    /* One shot: a blocking read waits for it, then there is nothing. */
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec s = ms(50, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("settime %d\n", timerfd_settime(t, 0, &s, NULL));
    ssize_t r = read(t, &n, sizeof n);
    long waited = ms_since(&t0);
    printf("one shot: read %zd, %llu expiration, waited >= 45 ms: %d, < 1000 ms: %d\n", r,
           (unsigned long long)n, waited >= 45, waited < 1000);
    struct itimerspec cur;
    timerfd_gettime(t, &cur);
    printf("after it: value %ld.%09ld interval %ld\n", (long)cur.it_value.tv_sec,
           cur.it_value.tv_nsec, (long)cur.it_interval.tv_sec);
    struct pollfd p = {t, POLLIN, 0};
    printf("poll after the read: %d\n", poll(&p, 1, 30));

    /* Periodic, read late: the missed periods are counted. */
    s = ms(20, 20);
    timerfd_settime(t, 0, &s, NULL);
    usleep(130000);
    read(t, &n, sizeof n);
    printf("periodic 20 ms read after 130 ms: at least 4: %d, at most 8: %d\n", n >= 4, n <= 8);
    timerfd_gettime(t, &cur);
    printf("gettime: interval %ld ms, value within it: %d\n", cur.it_interval.tv_nsec / 1000000,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
               cur.it_value.tv_nsec <= 20000000);

    /* Re-arming forgets what was not read; old_value tells the setting. */
    usleep(50000);
    struct itimerspec old;
    s = ms(10000, 0);
    timerfd_settime(t, 0, &s, &old);
    printf("old interval %ld ms\n", old.it_interval.tv_nsec / 1000000);
    p.revents = 0;
    printf("poll after re-arming for 10 s: %d\n", poll(&p, 1, 0));
    /* Disarmed: nothing, and gettime says 0. */
    s = ms(0, 0);
    timerfd_settime(t, 0, &s, NULL);
    timerfd_gettime(t, &cur);
    printf("disarmed: %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    /* Non-blocking, through epoll. */
    int tn = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    TRY("nonblocking read of an unarmed timer", read(tn, &n, sizeof n));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, tn, &ev);
    s = ms(30, 0);
    timerfd_settime(tn, 0, &s, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int k = epoll_wait(ep, &got, 1, 2000);
    waited = ms_since(&t0);
    printf("epoll: %d event(s), data %u, in: %d, waited >= 25 ms: %d\n", k, got.data.u32,
           (got.events & EPOLLIN) != 0, waited >= 25);
    read(tn, &n, sizeof n);
    printf("then read: %llu\n", (unsigned long long)n);

    /* Absolute times on both clocks; one already past fires at once. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s = ms(0, 0);
    s.it_value = now;
    s.it_value.tv_nsec += 20000000;
    if (s.it_value.tv_nsec >= 1000000000) {
        s.it_value.tv_sec++;
        s.it_value.tv_nsec -= 1000000000;
    }
    timerfd_settime(t, TFD_TIMER_ABSTIME, &s, NULL);
    read(t, &n, sizeof n);
    printf("absolute monotonic: %llu\n", (unsigned long long)n);
    int tr = timerfd_create(CLOCK_REALTIME, 0);
    clock_gettime(CLOCK_REALTIME, &now);
    s = ms(0, 0);
    s.it_value = now;
    s.it_value.tv_sec -= 5;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    timerfd_settime(tr, TFD_TIMER_ABSTIME, &s, NULL);
    read(tr, &n, sizeof n);
    printf("absolute realtime in the past: %llu, at once: %d\n", (unsigned long long)n,
           ms_since(&t0) < 500);

    /* Errors. */
    TRY("bad clock", timerfd_create(12345, 0));
    TRY("bad flags", timerfd_create(CLOCK_MONOTONIC, 0x4000));
    s = ms(10, 0);
    s.it_value.tv_nsec = 1000000000;
    TRY("bad nsec", timerfd_settime(t, 0, &s, NULL));
    s = ms(10, 0);
    s.it_interval.tv_sec = -1;
    TRY("negative seconds", timerfd_settime(t, 0, &s, NULL));
    s = ms(10, 0);
    TRY("bad settime flags", timerfd_settime(t, 0x100, &s, NULL));
    TRY("not a timerfd", timerfd_settime(ep, 0, &s, NULL));
    TRY("no descriptor", timerfd_gettime(99, &cur));
    n = 1;
    TRY("write", write(t, &n, sizeof n));
    char small[4];
    TRY("short read", read(t, small, sizeof small));
    TRY("bad pointer", timerfd_settime(t, 0, (void *)8, NULL));
    close(t);
    close(tn);
    close(tr);
    close(ep);
    return 0;
}
