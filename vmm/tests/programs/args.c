/* argv, the environment Lego gives, the auxiliary vector libc reads, the
 * vDSO as dietlibc reads it, and a raw write to stdout. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* A vDSO symbol found as dietlibc finds it: through the section headers
 * (the first loaded string table, every .dynsym), not the dynamic section. */
static void *by_sections(const char *want) {
    const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (!base) return NULL;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    const char *strtab = NULL;
    for (int i = 0; i < eh->e_shnum && !strtab; i++)
        if (sh[i].sh_type == SHT_STRTAB && (sh[i].sh_flags & SHF_ALLOC))
            strtab = (const char *)base + sh[i].sh_offset;
    for (int i = 0; strtab && i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM) continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++)
            if (strcmp(strtab + sym[k].st_name, want) == 0 && sym[k].st_shndx < eh->e_shnum) {
                const Elf64_Shdr *in = &sh[sym[k].st_shndx];
                return (void *)(base + in->sh_offset + sym[k].st_value - in->sh_addr);
            }
    }
    return NULL;
}

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
    /* The parent, outside the processor on Lego, is there to ask after. Its session and group
     * are only said to be known: in a container they are 0 (their leaders are outside the pid
     * namespace). */
    int param = -1;
    long got_param = syscall(SYS_sched_getparam, getppid(), &param);
    printf("the parent: kill 0 %ld, scheduler %ld, param %ld (%d), session known %d, group known %d\n",
           (long)kill(getppid(), 0), syscall(SYS_sched_getscheduler, getppid()), got_param, param,
           getsid(getppid()) >= 0, getpgid(getppid()) >= 0);
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, getppid());
    printf("the parent's nice value read: %s\n", prio >= -20 && prio <= 19 && errno == 0 ? "yes" : "no");
    int (*tod)(struct timeval *, void *) = by_sections("__vdso_gettimeofday");
    struct timeval tv = {0, 0};
    printf("vdso gettimeofday by sections: %s\n",
           tod && tod(&tv, NULL) == 0 && tv.tv_sec > 1577836800 ? "yes" : "no");
    /* One write(2) of 8 KiB with a newline early: Linux takes it all. */
    fflush(stdout);
    static char big[8192];
    memset(big, 'x', sizeof big);
    big[10] = '\n';
    big[sizeof big - 1] = '\n';
    long n = write(1, big, sizeof big);
    printf("write of 8192 to stdout: %ld\n", n);
    return 7;
}
