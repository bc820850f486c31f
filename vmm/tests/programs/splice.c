/* splice, tee and vmsplice as copy loops and proxies use them: a file
 * into a pipe and back at given offsets (the files' own left alone), a
 * socket into a pipe and a pipe into a socket, a pipe into another, tee
 * leaving its input's bytes, vmsplice both ways, and the errors Linux
 * gives for descriptors and offsets it does not take (or cannot write
 * back). Prints what it
 * saw, to compare with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok"; }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[] = "/tmp/splice-XXXXXX";
    int f = mkstemp(path);
    write(f, "0123456789abcdef", 16);
    lseek(f, 2, SEEK_SET);
    int p[2];
    pipe(p);

    loff_t off = 4;
    printf("file to pipe at 4: %zd\n", splice(f, &off, p[1], NULL, 6, 0));
    printf("offset now %lld, the file's own %lld\n", (long long)off,
           (long long)lseek(f, 0, SEEK_CUR));
    printf("file to pipe at its own: %zd\n", splice(f, NULL, p[1], NULL, 3, 0));
    printf("the file's own now %lld\n", (long long)lseek(f, 0, SEEK_CUR));
    char buf[64] = {0};
    printf("the pipe: %zd %s\n", read(p[0], buf, sizeof buf), buf);

    write(p[1], "XYZ", 3);
    off = 14;
    printf("pipe to file at 14: %zd\n", splice(p[0], NULL, f, &off, 3, 0));
    memset(buf, 0, sizeof buf);
    pread(f, buf, sizeof buf, 0);
    printf("the file: %s, offset %lld\n", buf, (long long)off);

    /* Errors. */
    int g = open(path, O_RDONLY);
    printf("file to file: %s\n", e(splice(g, NULL, f, NULL, 4, 0)));
    off = 0;
    printf("an offset on the pipe: %s\n", e(splice(f, NULL, p[1], &off, 4, 0)));
    printf("unknown flags: %s\n", e(splice(f, NULL, p[1], NULL, 4, 0x100)));
    printf("SPLICE_F_NONBLOCK on an empty pipe: %s\n",
           e(splice(p[0], NULL, f, NULL, 4, SPLICE_F_NONBLOCK)));
    printf("a closed descriptor: %s\n", e(splice(99, NULL, p[1], NULL, 4, 0)));
    int ap = open(path, O_WRONLY | O_APPEND);
    write(p[1], "q", 1);
    printf("to an O_APPEND file: %s\n", e(splice(p[0], NULL, ap, NULL, 1, 0)));
    read(p[0], buf, 1);
    close(ap);
    printf("nothing asked: %zd\n", splice(f, NULL, p[1], NULL, 0, 0));

    /* A socket into a pipe and a pipe into a socket. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "over the socket", 15);
    printf("socket to pipe: %zd\n", splice(sv[1], NULL, p[1], NULL, 64, 0));
    printf("pipe to socket: %zd\n", splice(p[0], NULL, sv[1], NULL, 64, 0));
    memset(buf, 0, sizeof buf);
    printf("back: %zd %s\n", read(sv[0], buf, sizeof buf), buf);

    /* A pipe into another, and tee. */
    int q[2];
    pipe(q);
    write(p[1], "teed bytes", 10);
    printf("tee: %zd\n", tee(p[0], q[1], 64, 0));
    memset(buf, 0, sizeof buf);
    printf("the copy: %zd %s\n", read(q[0], buf, sizeof buf), buf);
    printf("pipe to pipe: %zd\n", splice(p[0], NULL, q[1], NULL, 4, 0));
    memset(buf, 0, sizeof buf);
    printf("moved: %zd %s\n", read(q[0], buf, sizeof buf), buf);
    memset(buf, 0, sizeof buf);
    printf("left in the first: %zd %s\n", read(p[0], buf, sizeof buf), buf);
    printf("tee of one pipe: %s\n", e(tee(p[0], p[1], 4, 0)));
    printf("tee of a file: %s\n", e(tee(f, q[1], 4, 0)));
    printf("tee, empty, SPLICE_F_NONBLOCK: %s\n", e(tee(p[0], q[1], 4, SPLICE_F_NONBLOCK)));

    /* vmsplice: memory into a pipe and out of it. */
    struct iovec in[2] = {{"vm", 2}, {"splice", 6}};
    printf("vmsplice in: %zd\n", vmsplice(p[1], in, 2, 0));
    char a[3] = {0}, b[8] = {0};
    struct iovec out[2] = {{a, 2}, {b, 6}};
    printf("vmsplice out: %zd %s|%s\n", vmsplice(p[0], out, 2, 0), a, b);
    printf("vmsplice of a file: %s\n", e(vmsplice(f, in, 2, 0)));
    /* Twice what an empty pipe holds: it takes what fits and says so,
     * where a write would wait for the rest. */
    static char big[2 << 16] __attribute__((aligned(4096)));
    int v[2];
    pipe(v);
    struct iovec whole = {big, sizeof big};
    printf("vmsplice of twice a pipe's room: %zd\n", vmsplice(v[1], &whole, 1, 0));
    close(v[0]);
    close(v[1]);

    /* sendfile takes no pipe as its input (Linux's pipes have no
     * splice_read): EINVAL, empty or not, which Go's io.Copy from a pipe
     * to a TCP connection takes as "use read and write". A socket is
     * taken. */
    int so[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, so);
    printf("sendfile from an empty pipe: %s\n", e(sendfile(so[0], q[0], NULL, 10)));
    write(q[1], "xy", 2);
    printf("sendfile from a pipe: %s\n", e(sendfile(so[0], q[0], NULL, 10)));
    write(so[1], "zw", 2);
    printf("sendfile from a socket: %s\n", e(sendfile(q[1], so[0], NULL, 10)));
    close(so[0]);
    close(so[1]);

    /* The writers gone: the end of the file. */
    close(p[1]);
    printf("at the end: %zd\n", splice(p[0], NULL, q[1], NULL, 4, 0));

    /* sendfile writes its offset back whatever it moved: an offset in
     * read-only memory is EFAULT, at the end of the file too. */
    loff_t *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int t[2];
    pipe(t);
    for (int at = 0; at <= 16; at += 16) {
        *ro = at;
        mprotect(ro, 4096, PROT_READ);
        printf("sendfile at %d, its offset read-only: %s\n", at, e(sendfile(t[1], f, ro, 4)));
        mprotect(ro, 4096, PROT_READ | PROT_WRITE);
    }
    unlink(path);
    return 0;
}
