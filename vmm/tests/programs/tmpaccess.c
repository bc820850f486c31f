/* access, faccessat and faccessat2 on the paths given: on Lego, files and
 * directories of the host's /tmp show through the processor's tmpfs and
 * are writable there (a write copies them up), so W_OK is answered by
 * their bits, as overlayfs answers for a lower file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

static void show(const char *what, long r)
{
    printf("  %s: %s\n", what, r == 0 ? "ok" : strerror(errno));
}

int main(int argc, char **argv)
{
    static const int modes[] = {F_OK, R_OK, W_OK, R_OK | W_OK, X_OK};
    static const char *names[] = {"F_OK", "R_OK", "W_OK", "R_OK|W_OK", "X_OK"};
    for (int i = 1; i < argc; i++) {
        for (unsigned m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            printf("%s %s\n", i == 1 ? "file" : "other", names[m]);
            errno = 0;
            show("access", access(argv[i], modes[m]));
            errno = 0;
            show("faccessat", faccessat(AT_FDCWD, argv[i], modes[m], 0));
            errno = 0;
            show("faccessat2 eaccess", syscall(SYS_faccessat2, AT_FDCWD, argv[i], modes[m], AT_EACCESS));
            errno = 0;
            show("faccessat2 nofollow",
                 syscall(SYS_faccessat2, AT_FDCWD, argv[i], modes[m], AT_SYMLINK_NOFOLLOW));
        }
    }
    return 0;
}
