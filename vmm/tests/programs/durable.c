/* Acknowledged writes: `durable write FILE [KIB [dsync]]` writes records
 * of KIB KiB (16 unless given), each filled from its number, one after
 * another, fsyncs after each (or, with `dsync`, opens the file O_DSYNC and
 * does not) and prints "acked N" once that returned; it stops at
 * the first error (printing it) or after 100000 records. `durable check
 * FILE N [KIB]` checks that records 0..N are all there, whole, and prints
 * "ok N". `durable fill FILE [KIB]` writes writes of KIB KiB (1024 unless
 * given) until the disk is full and says which call told it (a write, the
 * fsync or the close: where a write-back error may surface), then removes
 * FILE and checks that the space came back with a 2 MiB file written,
 * synced and read back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1 << 20)

static long RECORD = 16384;

static void fill(unsigned char *b, long n) {
    unsigned long x = (unsigned long)n * 0x9e3779b97f4a7c15ul + 1;
    for (long i = 0; i < RECORD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)x;
    }
}

/* Fills the disk with FILE; 0 if the disk said ENOSPC and gave the space
 * back once FILE was removed. */
static int fill_disk(const char *file, long size) {
    unsigned char *b = malloc(2 * MIB), *c = malloc(2 * MIB);
    memset(b, 0x5a, 2 * MIB);
    int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    const char *where = 0;
    int err = 0;
    long n = 0;
    for (; n < 4096L * MIB / size; n++) {
        if (write(fd, b, size) != size) {
            where = "a write", err = errno;
            break;
        }
    }
    if (fsync(fd) != 0 && !where)
        where = "the fsync", err = errno;
    if (close(fd) != 0 && !where)
        where = "the close", err = errno;
    if (!where) {
        printf("%ld MiB written and no error\n", n * size / MIB);
        return 1;
    }
    printf("full: %s said %s\n", where, strerror(err));
    if (unlink(file) != 0) {
        printf("unlink: %s\n", strerror(errno));
        return 1;
    }
    char again[4096];
    snprintf(again, sizeof again, "%s.again", file);
    fd = open(again, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || write(fd, b, 2 * MIB) != 2 * MIB || fsync(fd) != 0 ||
        pread(fd, c, 2 * MIB, 0) != 2 * MIB || memcmp(b, c, 2 * MIB) || close(fd) != 0) {
        printf("after the unlink: %s\n", strerror(errno));
        return 1;
    }
    printf("space back\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "fill"))
        return fill_disk(argv[2], argc == 4 ? atol(argv[3]) * 1024 : MIB);
    int dsync = argc == 5 && !strcmp(argv[1], "write") && !strcmp(argv[4], "dsync");
    if ((argc == 4 && !strcmp(argv[1], "write")) || dsync)
        RECORD = atol(argv[3]) * 1024;
    if (argc == 5 && !strcmp(argv[1], "check"))
        RECORD = atol(argv[4]) * 1024;
    if (RECORD <= 0 || RECORD > 64 * MIB) {
        fprintf(stderr, "durable: a record is 1 KiB to 64 MiB\n");
        return 2;
    }
    unsigned char *want = malloc(RECORD), *got = malloc(RECORD);
    if ((argc == 3 || argc == 4 || dsync) && !strcmp(argv[1], "write")) {
        int fd = open(argv[2], O_CREAT | O_WRONLY | O_TRUNC | (dsync ? O_DSYNC : 0), 0644);
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
            if (!dsync && fsync(fd) != 0) {
                printf("fsync %ld: %s\n", n, strerror(errno));
                return 1;
            }
            printf("acked %ld\n", n);
        }
        return 0;
    }
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "check")) {
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
    fprintf(stderr, "usage: durable write FILE [KIB [dsync]] | durable check FILE N [KIB] | durable fill FILE\n");
    return 2;
}
