/* Thirty processes alive at once (a shell's background jobs, make -j):
 * each child says it is up, then waits for the parent to let go. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 30

int main(void)
{
    int up[2], go[2];
    if (pipe(up) || pipe(go)) {
        perror("pipe");
        return 1;
    }
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (pid == 0) {
            char c = 'u';
            close(go[1]);
            if (write(up[1], &c, 1) != 1)
                _exit(100);
            /* EOF once the parent closes its end. */
            while (read(go[0], &c, 1) > 0)
                ;
            _exit(i);
        }
    }
    close(up[1]);
    close(go[0]);
    int alive = 0;
    char c;
    while (alive < CHILDREN && read(up[0], &c, 1) == 1)
        alive++;
    printf("%d children alive at once\n", alive);
    close(go[1]);
    int reaped = 0, sum = 0, status;
    while (wait(&status) > 0) {
        reaped++;
        if (WIFEXITED(status))
            sum += WEXITSTATUS(status);
    }
    printf("reaped %d, exit statuses add up to %d\n", reaped, sum);
    /* No child left. */
    printf("wait: %s\n", wait(&status) < 0 ? strerror(errno) : "a child");
    return 0;
}
