/* A wild pointer: the process dies of SIGSEGV (a shell reports 139). */
#include <stdio.h>
int main(void) {
    volatile long *p = (long *)0x6f6f6f6f00;
    puts("about to write through a wild pointer");
    fflush(stdout);
    *p = 1;
    puts("survived?");
    return 0;
}
