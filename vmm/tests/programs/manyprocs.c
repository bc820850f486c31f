/* Forks until fork is refused: each child fills 1 MiB with its own
 * pattern, checks it and waits, so every process holds its memory at the
 * same time. Prints how many were made and verified, and the error that
 * ended it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 400
#define WORDS ((1 << 20) / 4)

int main(void) {
    static pid_t pids[MAX];
    int fds[2], n = 0, err = 0;
    if (pipe(fds)) {
        perror("pipe");
        return 1;
    }
    for (; n < MAX; n++) {
        pid_t p = fork();
        if (p < 0) {
            err = errno;
            break;
        }
        if (p == 0) {
            unsigned *b = malloc(WORDS * sizeof *b);
            int bad = !b;
            for (unsigned k = 0; !bad && k < WORDS; k++)
                b[k] = k * 2654435761u + (unsigned)n;
            for (unsigned k = 0; !bad && k < WORDS; k++)
                bad = b[k] != k * 2654435761u + (unsigned)n;
            char r = bad ? 'x' : '.';
            if (write(fds[1], &r, 1) != 1)
                _exit(1);
            pause();
            _exit(0);
        }
        pids[n] = p;
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char r;
        if (read(fds[0], &r, 1) == 1 && r == '.')
            ok++;
    }
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    int reaped = 0;
    for (int i = 0; i < n; i++)
        reaped += waitpid(pids[i], NULL, 0) == pids[i];
    printf("forked %d, %d verified, %d reaped, then %s\n", n, ok, reaped,
           err == EAGAIN ? "EAGAIN" : err ? strerror(err) : "no refusal");
    return 0;
}
