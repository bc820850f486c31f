/* argv, the environment Lego gives, and the auxiliary vector libc reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]=[%s]\n", i, argv[i]);
    const char *keys[] = {"LEGO_TEST", "SPACES"};
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = getenv(keys[i]);
        printf("%s=%s\n", keys[i], v ? v : "(unset)");
    }
    printf("pagesz=%lu clktck=%lu uid=%lu euid=%lu gid=%lu egid=%lu secure=%lu\n",
           getauxval(AT_PAGESZ), getauxval(AT_CLKTCK), getauxval(AT_UID), getauxval(AT_EUID),
           getauxval(AT_GID), getauxval(AT_EGID), getauxval(AT_SECURE));
    unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; r && i < 16; i++) nonzero |= r[i];
    printf("random=%s phdr=%s entry=%s\n", r && nonzero ? "yes" : "no",
           getauxval(AT_PHDR) ? "yes" : "no", getauxval(AT_ENTRY) ? "yes" : "no");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("execfn matches argv[0]: %s\n", execfn && strcmp(execfn, argv[0]) == 0 ? "yes" : "no");
    printf("pid>0: %s ppid>0: %s\n", getpid() > 0 ? "yes" : "no", getppid() > 0 ? "yes" : "no");
    return 7;
}
