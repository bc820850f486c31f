/* A program reading a file in order, which Lego reads ahead of it.
 *   scan write FILE MIB   writes MIB MiB of a pattern and fsyncs it;
 *   scan read FILE        reads it back 256 KiB at a time, writing ahead of
 *                         where it is (a small write, a large one, a
 *                         child's) after 1 MiB and truncating it after
 *                         5 MiB: every byte must be as last written;
 *   scan wait FILE        reads 1 MiB, says "waiting", reads a line from
 *                         stdin, then reads on until the end or an error,
 *                         and says which and how long the failing read took.
 * Runs on the host print the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STEP (256 << 10)
#define MIB (1 << 20)

static char byte_at(size_t i) { return (char)(i * 131 + (i >> 16)); }

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int write_file(const char *path, size_t mib) {
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    char *b = malloc(MIB);
    for (size_t m = 0; m < mib; m++) {
        for (size_t i = 0; i < MIB; i++)
            b[i] = byte_at(m * MIB + i);
        if (write(fd, b, MIB) != MIB) {
            perror("write");
            return 1;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        perror("fsync");
        return 1;
    }
    printf("wrote %zu MiB\n", mib);
    return 0;
}

static int read_file(const char *path) {
    int rd = open(path, O_RDONLY), wr = open(path, O_WRONLY);
    off_t size = lseek(rd, 0, SEEK_END);
    lseek(rd, 0, SEEK_SET);
    char *want = malloc(size), *piece = malloc(STEP);
    for (off_t i = 0; i < size; i++)
        want[i] = byte_at(i);
    size_t off = 0, bad = 0;
    while (1) {
        ssize_t k = read(rd, piece, STEP);
        if (k < 0)
            perror("read");
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            bad += piece[i] != want[off + i];
        off += k;
        if (off == MIB) {
            memset(want + 2 * MIB + 100, 'w', 3000);
            pwrite(wr, want + 2 * MIB + 100, 3000, 2 * MIB + 100);
            memset(want + 3 * MIB, 'L', MIB);
            pwrite(wr, want + 3 * MIB, MIB, 3 * MIB);
            pid_t c = fork();
            if (c == 0)
                _exit(pwrite(wr, "child was", 10, 4 * MIB + 7) == 10 ? 0 : 1);
            int status;
            waitpid(c, &status, 0);
            memcpy(want + 4 * MIB + 7, "child was", 10);
            printf("wrote ahead: %s\n", status == 0 ? "yes" : "no");
        }
        if (off == 5 * MIB)
            printf("truncated ahead: %d\n", ftruncate(wr, 6 * MIB + 5));
    }
    printf("read %zu bytes, %zu of them not as last written\n", off, bad);
    return bad != 0;
}

static int wait_file(const char *path) {
    int rd = open(path, O_RDONLY);
    char *piece = malloc(STEP), line[16];
    size_t off = 0;
    while (off < MIB) {
        ssize_t k = read(rd, piece, STEP);
        if (k <= 0)
            return 1;
        off += k;
    }
    printf("waiting\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    while (1) {
        double t = now_ms();
        ssize_t k = read(rd, piece, STEP);
        if (k < 0) {
            printf("read failed: %s after %.0f ms\n", strerror(errno), now_ms() - t);
            return 0;
        }
        if (k == 0)
            break;
        off += k;
    }
    printf("read to the end: %zu bytes\n", off);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "write"))
        return write_file(argv[2], atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "read"))
        return read_file(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "wait"))
        return wait_file(argv[2]);
    fprintf(stderr, "usage: scan write FILE MIB | scan read FILE | scan wait FILE\n");
    return 2;
}
