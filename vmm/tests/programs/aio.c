/* Linux's native AIO through the raw system calls, as libaio makes them:
 * a context, writes and reads of a file (pwrite, preadv), fsync, an
 * eventfd told of completions, the ring's header, io_getevents' limits and
 * timeout, and the errors io_submit, io_getevents, io_cancel and
 * io_destroy give. Prints what it sees; the host's output must match. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* <linux/aio_abi.h>'s, which musl's headers do not carry. */
typedef unsigned long aio_context_t;
enum { IOCB_CMD_PREAD = 0, IOCB_CMD_PWRITE = 1, IOCB_CMD_FSYNC = 2, IOCB_CMD_FDSYNC = 3,
       IOCB_CMD_POLL = 5, IOCB_CMD_NOOP = 6, IOCB_CMD_PREADV = 7, IOCB_CMD_PWRITEV = 8 };
#define IOCB_FLAG_RESFD 1
struct io_event { uint64_t data, obj; int64_t res, res2; };
struct iocb {
    uint64_t aio_data;
    uint32_t aio_key, aio_rw_flags;
    uint16_t aio_lio_opcode;
    int16_t aio_reqprio;
    uint32_t aio_fildes;
    uint64_t aio_buf, aio_nbytes;
    int64_t aio_offset;
    uint64_t aio_reserved2;
    uint32_t aio_flags, aio_resfd;
};

static long setup(unsigned n, aio_context_t *c) { return syscall(SYS_io_setup, n, c); }
static long submit(aio_context_t c, long n, struct iocb **v) { return syscall(SYS_io_submit, c, n, v); }
static long getevents(aio_context_t c, long min, long n, struct io_event *e, struct timespec *t) {
    return syscall(SYS_io_getevents, c, min, n, e, t);
}
static long destroy(aio_context_t c) { return syscall(SYS_io_destroy, c); }
static void show(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : ""); }
#define SHOW(what, r) show(what, (long)(r))

/* libaio's view of the ring. */
struct ring { unsigned id, nr, head, tail, magic, compat, incompat, header_length; };

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/aio.dat";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror("open"); return 1; }
    aio_context_t ctx = 0;
    SHOW("setup 0 events", setup(0, &ctx));
    SHOW("setup", setup(64, &ctx));
    aio_context_t again = ctx;
    SHOW("setup on a set context", setup(64, &again));
    struct ring *r = (struct ring *)ctx;
    printf("ring magic %#x header %u head %u tail %u room %d\n", r->magic, r->header_length,
           r->head, r->tail, r->nr >= 64);

    char a[4096], b[4096];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    int efd = eventfd(0, 0);
    struct iocb w1 = { .aio_data = 11, .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
                       .aio_buf = (uintptr_t)a, .aio_nbytes = sizeof a, .aio_offset = 0,
                       .aio_flags = IOCB_FLAG_RESFD, .aio_resfd = efd };
    struct iocb w2 = { .aio_data = 12, .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
                       .aio_buf = (uintptr_t)b, .aio_nbytes = 100, .aio_offset = 8192,
                       .aio_flags = IOCB_FLAG_RESFD, .aio_resfd = efd };
    struct iocb s1 = { .aio_data = 13, .aio_lio_opcode = IOCB_CMD_FDSYNC, .aio_fildes = fd };
    struct iocb *v[3] = { &w1, &w2, &s1 };
    SHOW("submit 3", submit(ctx, 3, v));
    struct io_event ev[8];
    struct timespec zero = { 0, 0 };
    long n = getevents(ctx, 3, 8, ev, NULL);
    SHOW("getevents", n);
    /* Linux completes the fsync later, from a worker: in data order. */
    for (long i = 0; i < n; i++)
        for (long j = i + 1; j < n; j++)
            if (ev[j].data < ev[i].data) { struct io_event t = ev[i]; ev[i] = ev[j]; ev[j] = t; }
    for (long i = 0; i < n; i++)
        printf("  data %llu obj %s res %lld res2 %lld\n", (unsigned long long)ev[i].data,
               ev[i].obj == (uintptr_t)v[i] ? "ok" : "wrong", (long long)ev[i].res, (long long)ev[i].res2);
    uint64_t count = 0;
    SHOW("eventfd read", read(efd, &count, 8));
    printf("eventfd count %llu\n", (unsigned long long)count);
    printf("ring head and tail in it %d %d, equal %d\n", r->head < r->nr, r->tail < r->nr, r->head == r->tail);

    /* Read back through a vector, past the end of the file. */
    char x[6000], y[6000];
    struct iovec iov[2] = { { x, sizeof x }, { y, sizeof y } };
    struct iocb rv = { .aio_data = 21, .aio_lio_opcode = IOCB_CMD_PREADV, .aio_fildes = fd,
                       .aio_buf = (uintptr_t)iov, .aio_nbytes = 2, .aio_offset = 0 };
    struct iocb *pv = &rv;
    SHOW("submit readv", submit(ctx, 1, &pv));
    n = getevents(ctx, 1, 1, ev, NULL);
    SHOW("getevents", n);
    printf("  data %llu res %lld x[0] %c x[4095] %c x[4096] %d y[2192] %c y[2291] %c\n",
           (unsigned long long)ev[0].data, (long long)ev[0].res, x[0], x[4095], x[4096], y[2192], y[2291]);

    /* Nothing waits: a zero timeout returns at once, a short one after it. */
    SHOW("getevents, none, zero timeout", getevents(ctx, 1, 8, ev, &zero));
    struct timespec ms20 = { 0, 20 * 1000 * 1000 }, t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    n = getevents(ctx, 1, 8, ev, &ms20);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("getevents, none, 20 ms: %ld after at least 20 ms: %d\n", n, waited >= 19);
    SHOW("getevents min 0", getevents(ctx, 0, 8, ev, NULL));
    /* io_pgetevents: the same, under a signal mask given for the call. */
    unsigned long mask = 1ul << (SIGUSR1 - 1);
    struct { unsigned long *mask; size_t size; } usig = { &mask, 8 };
    SHOW("pgetevents, none, zero timeout", syscall(SYS_io_pgetevents, ctx, 1, 8, ev, &zero, &usig));
    SHOW("pgetevents, no mask", syscall(SYS_io_pgetevents, ctx, 0, 8, ev, NULL, NULL));
    usig.size = 4;
    SHOW("pgetevents, bad mask size", syscall(SYS_io_pgetevents, ctx, 0, 8, ev, NULL, &usig));

    /* Errors. */
    SHOW("getevents min > nr", getevents(ctx, 2, 1, ev, NULL));
    SHOW("getevents bad context", getevents(12345, 0, 1, ev, NULL));
    SHOW("submit negative", submit(ctx, -1, v));
    SHOW("submit bad context", submit(12345, 1, v));
    struct iocb bad = w1;
    bad.aio_fildes = 999;
    struct iocb *pb = &bad;
    SHOW("submit bad fd", submit(ctx, 1, &pb));
    bad = w1;
    bad.aio_lio_opcode = IOCB_CMD_NOOP;
    SHOW("submit noop", submit(ctx, 1, &pb));
    bad = w1;
    bad.aio_reserved2 = 1;
    SHOW("submit reserved", submit(ctx, 1, &pb));
    bad = w1;
    bad.aio_resfd = fd;
    SHOW("submit resfd not an eventfd", submit(ctx, 1, &pb));
    bad = s1;
    bad.aio_nbytes = 1;
    SHOW("submit fsync with a length", submit(ctx, 1, &pb));
    struct iocb *two[2] = { &w2, &bad };
    SHOW("submit good then bad", submit(ctx, 2, two));
    SHOW("getevents the good one", getevents(ctx, 1, 8, ev, NULL));
    SHOW("submit bad pointer", submit(ctx, 1, (struct iocb **)8));
    int ro = open(path, O_RDONLY);
    bad = w1;
    bad.aio_fildes = ro;
    bad.aio_flags = 0;
    SHOW("submit write to a read-only fd", submit(ctx, 1, &pb));
    struct io_event res;
    SHOW("cancel a completed request", syscall(SYS_io_cancel, ctx, &w1, &res));
    SHOW("destroy", destroy(ctx));
    SHOW("destroy again", destroy(ctx));
    SHOW("getevents after destroy", getevents(ctx, 0, 1, ev, NULL));

    /* A full ring: 1 event asked, as many submitted as fit, then EAGAIN. */
    aio_context_t small = 0;
    SHOW("setup 1", setup(1, &small));
    long fit = 0;
    for (int i = 0; i < 10000; i++) {
        struct iocb *one = &s1;
        long s = submit(small, 1, &one);
        if (s != 1) { printf("submit stops after some: %d, %s\n", fit > 0, strerror(errno)); break; }
        fit++;
    }
    static struct io_event all[10000];
    long got = getevents(small, fit, 10000, all, NULL);
    printf("all of them back: %d\n", got == fit);
    destroy(small);

    /* io_setup's limits: aio-max-nr (65536) is EAGAIN, a ring past 2^28
     * bytes EINVAL. */
    unsigned long counts[] = { 65536, 65537, 4194304, 4194305, 4294967295u };
    for (int i = 0; i < 5; i++) {
        aio_context_t c = 0;
        long s = setup(counts[i], &c);
        printf("setup %lu: %ld %s\n", counts[i], s, s ? strerror(errno) : "");
        if (s == 0) destroy(c);
    }
    unlink(path);
    return 0;
}
