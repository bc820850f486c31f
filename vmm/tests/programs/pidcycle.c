/* More address spaces over a program's life than Lego has ids for: a
 * parent that lives on while 800 children come and go, every other one
 * running execve (1200 spaces), as a shell running a long script does.
 * The ids wrap and must skip the parent's (its space at the memory
 * component kept its id: the 1023rd fork failed with EEXIST). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 800

int main(int argc, char **argv)
{
    if (argc > 1)
        return (int)strlen(argv[1]) & 0x7f;
    for (int i = 0; i < CHILDREN; i++) {
        char arg[16];
        snprintf(arg, sizeof arg, "%.*s", i % 10 + 1, "xxxxxxxxxx");
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (pid == 0) {
            if (i % 2) {
                execl("/proc/self/exe", "pidcycle", arg, (char *)0);
                _exit(100);
            }
            _exit(i % 10 + 1);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            printf("waitpid %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != i % 10 + 1) {
            printf("child %d: status %#x\n", i, status);
            return 1;
        }
    }
    printf("%d children, every other one through execve: ok\n", CHILDREN);
    return 0;
}
