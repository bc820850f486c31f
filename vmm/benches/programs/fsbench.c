/* File I/O as the storage benchmark measures it, in DIR: a sequential
 * write of SIZE MiB in 1 MiB writes with an fsync at the end, its read
 * back in 1 MiB reads, COUNT random 4 KiB preads, and the median of COUNT
 * 4 KiB write + fsync pairs. Prints key=value times in ms (the fsync
 * median in us), timed with clock_gettime inside the program. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: fsbench DIR SIZE_MIB COUNT\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fsbench.dat", argv[1]);
    long mib = atol(argv[2]), count = atol(argv[3]);
    size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (char)(i * 31 + 7);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    double t0 = now_ms();
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, chunk) != (ssize_t)chunk) {
            perror("write");
            return 1;
        }
    if (fsync(fd)) {
        perror("fsync");
        return 1;
    }
    double t1 = now_ms();
    lseek(fd, 0, SEEK_SET);
    long got = 0;
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n <= 0)
            break;
        got += n;
    }
    double t2 = now_ms();
    if (got != mib << 20) {
        fprintf(stderr, "read back %ld bytes\n", got);
        return 1;
    }
    unsigned x = 1;
    for (long i = 0; i < count; i++) {
        x = x * 1103515245 + 12345;
        off_t at = (off_t)(x % (unsigned)(mib * 256)) * 4096;
        if (pread(fd, buf, 4096, at) != 4096) {
            perror("pread");
            return 1;
        }
    }
    double t3 = now_ms();
    double *lat = malloc(count * sizeof *lat);
    for (long i = 0; i < count; i++) {
        double a = now_ms();
        if (pwrite(fd, buf, 4096, (off_t)(i % 64) * 4096) != 4096 || fdatasync(fd)) {
            perror("pwrite+fdatasync");
            return 1;
        }
        lat[i] = (now_ms() - a) * 1000;
    }
    qsort(lat, count, sizeof *lat, cmp);
    close(fd);
    unlink(path);
    printf("seq_write_ms=%.1f seq_read_ms=%.1f rand_read_ms=%.1f fsync_us=%.1f\n", t1 - t0,
           t2 - t1, t3 - t2, lat[count / 2]);
    return 0;
}
