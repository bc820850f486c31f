/* Acknowledged writes: `durable write FILE` writes 16 KiB records, each
 * filled from its number, one after another, fsyncs after each and prints
 * "acked N" once fsync returned; it stops at the first error (printing
 * it) or after 100000 records. `durable check FILE N` checks that records
 * 0..N are all there, whole, and prints "ok N". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD 16384

static void fill(unsigned char *b, long n) {
    unsigned long x = (unsigned long)n * 0x9e3779b97f4a7c15ul + 1;
    for (int i = 0; i < RECORD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)x;
    }
}

int main(int argc, char **argv) {
    static unsigned char want[RECORD], got[RECORD];
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "write")) {
        int fd = open(argv[2], O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || fsync(fd) != 0) {
            printf("open: %s\n", strerror(errno));
            return 1;
        }
        for (long n = 0; n < 100000; n++) {
            fill(want, n);
            if (pwrite(fd, want, RECORD, n * RECORD) != RECORD) {
                printf("write %ld: %s\n", n, strerror(errno));
                return 1;
            }
            if (fsync(fd) != 0) {
                printf("fsync %ld: %s\n", n, strerror(errno));
                return 1;
            }
            printf("acked %ld\n", n);
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "check")) {
        long n = atol(argv[3]);
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
            printf("open: %s\n", strerror(errno));
            return 1;
        }
        for (long i = 0; i < n; i++) {
            fill(want, i);
            if (pread(fd, got, RECORD, i * RECORD) != RECORD || memcmp(want, got, RECORD)) {
                printf("record %ld is wrong or missing (%s)\n", i, strerror(errno));
                return 1;
            }
        }
        printf("ok %ld\n", n);
        return 0;
    }
    fprintf(stderr, "usage: durable write FILE | durable check FILE N\n");
    return 2;
}
