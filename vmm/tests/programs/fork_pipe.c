/* fork with a pipe, and waitpid exit statuses. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); return 1; }
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        char buf[64];
        for (int i = 0; i < 1000; i++) {
            int n = snprintf(buf, sizeof buf, "line %d\n", i);
            if (write(fds[1], buf, n) != n) _exit(2);
        }
        _exit(42);
    }
    close(fds[1]);
    long lines = 0, bytes = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        bytes += n;
        for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
    }
    int status;
    pid_t w = waitpid(child, &status, 0);
    printf("read %ld lines, %ld bytes; child exited=%d code=%d (waited the right one: %s)\n",
           lines, bytes, WIFEXITED(status), WEXITSTATUS(status), w == child ? "yes" : "no");
    /* A child killed by a signal. */
    pid_t c2 = fork();
    if (c2 == 0) { raise(SIGTERM); _exit(0); }
    waitpid(c2, &status, 0);
    printf("second child signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));
    /* Several children, reaped in any order. */
    for (int i = 0; i < 5; i++) if (fork() == 0) _exit(i);
    int codes = 0;
    for (int i = 0; i < 5; i++) { wait(&status); codes += WEXITSTATUS(status); }
    printf("codes sum=%d, no more children: %s\n", codes, wait(&status) == -1 ? "yes" : "no");
    return 0;
}
