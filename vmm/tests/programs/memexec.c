/* fexecve of a file no name leads to, as programs run code they made in
 * memory: a memfd holding a copy of this program, and a file deleted
 * after it was opened (read-only: one open for writing is ETXTBSY on
 * Linux); /proc/self/exe of what runs says what it is; a memfd without
 * execute permission is refused. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
static int run(int fd, const char *how) {
    pid_t c = fork();
    if (c == 0) {
        char *av[] = {"prog", (char *)how, NULL};
        char *ev[] = {NULL};
        fexecve(fd, av, ev);
        dprintf(1, "%s: fexecve: %s\n", how, strerror(errno));
        _exit(1);
    }
    int st; waitpid(c, &st, 0);
    return WEXITSTATUS(st);
}
int main(int argc, char **argv) {
    if (argc > 1) {
        char exe[256] = {0};
        readlink("/proc/self/exe", exe, sizeof exe - 1);
        printf("%s: running, exe %s\n", argv[1], strncmp(exe, "/memfd:", 7) == 0 ? "a memfd" : strstr(exe, "(deleted)") ? "deleted" : "named");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    char copy[64];
    snprintf(copy, sizeof copy, "/tmp/memexec-%d", (int)getpid());
    int src = open("/proc/self/exe", O_RDONLY);
    int m = memfd_create("prog", 0);
    char buf[65536]; ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) write(m, buf, n);
    printf("memfd: status %d\n", run(m, "memfd"));
    int d = open(copy, O_RDWR | O_CREAT | O_TRUNC, 0755);
    lseek(src, 0, SEEK_SET);
    while ((n = read(src, buf, sizeof buf)) > 0) write(d, buf, n);
    close(d);
    d = open(copy, O_RDONLY);
    unlink(copy);
    printf("deleted: status %d\n", run(d, "deleted"));
    int nx = memfd_create("noexec", 0);
    write(nx, "data", 4);
    fchmod(nx, 0644);
    printf("not executable: status %d\n", run(nx, "not executable"));
    return 0;
}
