/* Paths deeper than PATH_MAX: a chain of directories in /tmp reached one
 * chdir at a time (the tmpfs takes any depth, and a relative name below a
 * deep working directory works, as on Linux; the monitor stopped on it
 * before, Go's os tests found it), made, written, stat'ed and removed. A
 * directory opened for writing, with O_CREAT or with O_TRUNC is EISDIR,
 * also where Lego keeps the host's files read-only (EROFS was first). */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"

#define DEPTH 48

int main(void)
{
    char name[101], base[64];
    memset(name, 'd', 100);
    name[100] = 0;
    snprintf(base, sizeof base, "/tmp/deeppath.%d", (int)getpid());
    SHOW("mkdir base", mkdir(base, 0700));
    SHOW("chdir base", chdir(base));
    int ok = 1;
    for (int i = 0; i < DEPTH && ok; i++)
        ok = mkdir(name, 0700) == 0 && chdir(name) == 0;
    printf("%d levels of 100-byte names: %s\n", DEPTH, ok ? "made" : strerror(errno));
    int fd = open("file", O_CREAT | O_WRONLY, 0600);
    SHOW("write at the bottom", write(fd, "deep\n", 5));
    close(fd);
    struct stat st = {0};
    SHOW("stat it", stat("file", &st));
    printf("size %ld\n", (long)st.st_size);
    SHOW("unlink it", unlink("file"));
    for (int i = 0; i < DEPTH && ok; i++)
        ok = chdir("..") == 0 && rmdir(name) == 0;
    printf("climbed back and removed: %s\n", ok ? "yes" : strerror(errno));
    SHOW("chdir /", chdir("/"));
    SHOW("rmdir base", rmdir(base));
    SHOW("open /etc O_WRONLY", open("/etc", O_WRONLY));
    SHOW("open /etc O_RDWR", open("/etc", O_RDWR));
    SHOW("open /etc O_RDONLY|O_CREAT", open("/etc", O_RDONLY | O_CREAT, 0600));
    SHOW("open /etc O_RDONLY|O_TRUNC", open("/etc", O_RDONLY | O_TRUNC));
    return 0;
}
