/* system() and popen(), which run /bin/sh: the host's own (Debian's
 * dash, dynamically linked), whose commands are the host's programs, not a
 * stand-in shell's built-in ones. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int main(void) {
    fflush(stdout);
    int status = system("echo from system; exit 3");
    printf("system: exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* GNU sort knows --version; busybox's sort applet, which busybox's
     * shell prefers to the host's program, does not. */
    status = system("sort --version > /dev/null 2>&1");
    printf("sort --version in system: exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    FILE *p = popen("for w in one two three; do echo $w; done | sort", "r");
    char line[64];
    while (p && fgets(line, sizeof line, p))
        printf("popen read: %s", line);
    printf("pclose: %d\n", p ? WEXITSTATUS(pclose(p)) : -1);
    p = popen("tr a-z A-Z", "w");
    if (p) {
        fputs("written to popen\n", p);
        fflush(stdout);
        printf("pclose: %d\n", WEXITSTATUS(pclose(p)));
    }
    return 0;
}
