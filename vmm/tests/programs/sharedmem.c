/* Shared anonymous memory between a process and its forked children:
 * MAP_SHARED|MAP_ANONYMOUS and MAP_SHARED of /dev/zero, atomics,
 * process-shared semaphores (futexes between processes), munmap and
 * mprotect on one side, and private memory staying private. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <semaphore.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile int segv_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    segv_code = si->si_code;
    siglongjmp(env, 1);
}

static void *shared(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap shared"); exit(1); }
    return p;
}

static int wait_child(pid_t c) {
    int st;
    if (waitpid(c, &st, 0) != c) { perror("waitpid"); exit(1); }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);

    /* Atomic counting from four processes at once. */
    long *counter = shared(4096);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (int i = 0; i < 20000; i++) __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
            _exit(0);
        }
    }
    for (int k = 0; k < 4; k++) wait_child(kids[k]);
    printf("counter after 4 x 20000 atomic adds: %ld\n", *counter);

    /* Ping-pong with process-shared semaphores: a futex wait in one
     * process woken by a post in the other. */
    struct pp { sem_t ping, pong; int value; } *pp = shared(sizeof *pp);
    if (sem_init(&pp->ping, 1, 0) || sem_init(&pp->pong, 1, 0)) { perror("sem_init"); return 1; }
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 300; i++) {
            sem_wait(&pp->ping);
            pp->value = pp->value * 3 + 1;
            sem_post(&pp->pong);
        }
        _exit(0);
    }
    unsigned sum = 0;
    for (int i = 0; i < 300; i++) {
        pp->value = i;
        sem_post(&pp->ping);
        sem_wait(&pp->pong);
        sum += (unsigned)pp->value;
    }
    printf("ping-pong: child exit %d, sum %u\n", wait_child(c), sum);

    /* A flag spun on, without any system call between. */
    volatile int *flag = shared(4096);
    c = fork();
    if (c == 0) {
        while (flag[0] != 1) {}
        flag[1] = 42;
        flag[0] = 2;
        _exit(0);
    }
    flag[0] = 1;
    while (flag[0] != 2) {}
    printf("spun: child wrote %d, exit %d\n", flag[1], wait_child(c));

    /* MAP_SHARED of /dev/zero is shared anonymous memory too. */
    int z = open("/dev/zero", O_RDWR);
    char *zp = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
    if (zp == MAP_FAILED) { perror("mmap /dev/zero"); return 1; }
    close(z);
    c = fork();
    if (c == 0) { strcpy(zp + 5000, "from the child via /dev/zero"); _exit(0); }
    wait_child(c);
    printf("/dev/zero: '%s', first byte %d\n", zp + 5000, zp[0]);

    /* Private memory stays private after a fork. */
    int *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    priv[0] = 7;
    c = fork();
    if (c == 0) { priv[0] = 99; _exit(priv[0] == 99 ? 0 : 1); }
    printf("private: child exit %d, parent still sees %d\n", wait_child(c), priv[0]);

    /* Several MiB, written by a grandchild, summed by the parent. */
    size_t big = 8 << 20;
    uint32_t *words = shared(big);
    c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (size_t i = 0; i < big / 4; i++) words[i] = (uint32_t)(i * 2654435761u);
            _exit(0);
        }
        _exit(wait_child(g));
    }
    printf("grandchild: exit %d\n", wait_child(c));
    uint64_t total = 0;
    int wrong = 0;
    for (size_t i = 0; i < big / 4; i++) {
        total += words[i];
        wrong += words[i] != (uint32_t)(i * 2654435761u);
    }
    printf("8 MiB: sum %llu, wrong words %d\n", (unsigned long long)total, wrong);

    /* The parent unmaps its view and the middle page of another; the
     * child keeps its own view of both. */
    int fds[2];
    if (pipe(fds)) { perror("pipe"); return 1; }
    char *gone = shared(4096);
    char *holed = shared(3 * 4096);
    strcpy(gone, "still here");
    c = fork();
    if (c == 0) {
        char b;
        if (read(fds[0], &b, 1) != 1) _exit(3);
        holed[4096] = 'm';
        holed[8192] = 'e';
        printf("child after the parent's munmap: '%s' %c%c\n", gone, holed[4096], holed[8192]);
        _exit(0);
    }
    munmap(gone, 4096);
    munmap(holed + 4096, 4096);
    if (write(fds[1], "x", 1) != 1) { perror("write"); return 1; }
    wait_child(c);
    printf("parent sees the end page: %c\n", holed[8192]);

    /* mprotect read-only in the child: a write is SIGSEGV (SEGV_ACCERR),
     * and the parent's view stays writable. */
    char *ro = shared(4096);
    c = fork();
    if (c == 0) {
        struct sigaction sa = {0};
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        ro[0] = 'a';
        mprotect(ro, 4096, PROT_READ);
        if (sigsetjmp(env, 1) == 0) {
            ro[1] = 'b';
            printf("child: the write to a read-only view went through\n");
        } else {
            printf("child: SIGSEGV, code %s\n", segv_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other");
        }
        mprotect(ro, 4096, PROT_READ | PROT_WRITE);
        ro[2] = 'c';
        _exit(0);
    }
    wait_child(c);
    ro[3] = 'd';
    printf("after mprotect: %c %c %c %c\n", ro[0], ro[1] ? ro[1] : '-', ro[2], ro[3]);

    /* /proc/self/maps names it as Linux does. */
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    while (maps && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= (unsigned long)counter &&
            (unsigned long)counter < hi) {
            line[strcspn(line, "\n")] = 0;
            printf("maps: %s, named %s\n", perms, strstr(line, "/dev/zero (deleted)") ? "/dev/zero (deleted)" : "otherwise");
        }
    }
    if (maps) fclose(maps);

    /* POSIX shared memory: /dev/shm, opened on its own by a child. */
    int so = shm_open("/lego-sharedmem-test", O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (so < 0 || ftruncate(so, 8192) != 0) { perror("shm_open"); return 1; }
    long *sp = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, so, 0);
    if (sp == MAP_FAILED) { perror("mmap shm"); return 1; }
    c = fork();
    if (c == 0) {
        int mine = shm_open("/lego-sharedmem-test", O_RDWR, 0);
        long *kp = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mine, 0);
        if (kp == MAP_FAILED) _exit(2);
        for (int i = 0; i < 10000; i++) __atomic_fetch_add(&kp[1000], 1, __ATOMIC_SEQ_CST);
        _exit(0);
    }
    for (int i = 0; i < 10000; i++) __atomic_fetch_add(&sp[1000], 1, __ATOMIC_SEQ_CST);
    int shm_child = wait_child(c);
    printf("shm: child exit %d, count %ld\n", shm_child, sp[1000]);
    struct stat sst;
    fstat(so, &sst);
    long back = 0;
    msync(sp, 8192, MS_SYNC);
    pread(so, &back, sizeof back, 1000 * sizeof(long));
    printf("shm: size %lld, read back %ld\n", (long long)sst.st_size, back);
    DIR *d = opendir("/dev/shm");
    int listed = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) listed += strcmp(de->d_name, "lego-sharedmem-test") == 0;
    if (d) closedir(d);
    printf("shm: listed in /dev/shm %d; unlink %d\n", listed, shm_unlink("/lego-sharedmem-test"));
    munmap(sp, 8192);
    close(so);

    /* A named semaphore (glibc links it into /dev/shm). */
    sem_t *ns = sem_open("/lego-sharedmem-sem", O_CREAT | O_EXCL, 0600, 0);
    if (ns == SEM_FAILED) { perror("sem_open"); return 1; }
    c = fork();
    if (c == 0) {
        sem_t *mine = sem_open("/lego-sharedmem-sem", 0);
        if (mine == SEM_FAILED) _exit(2);
        sem_post(mine);
        sem_post(mine);
        _exit(0);
    }
    sem_wait(ns);
    sem_wait(ns);
    int sval = -1;
    sem_getvalue(ns, &sval);
    printf("named semaphore: two posts taken, child exit %d, value %d, unlink %d\n", wait_child(c), sval,
           sem_unlink("/lego-sharedmem-sem"));
    sem_close(ns);

    /* A file in /tmp mapped shared and writable: write() shows in the
     * mapping, the mapping reaches the file at msync, a truncate zeroes. */
    int tf = open("/tmp/lego-sharedmem-file", O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (tf < 0 || ftruncate(tf, 4096) != 0) { perror("tmp file"); return 1; }
    char *tm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, tf, 0);
    if (tm == MAP_FAILED) { perror("mmap /tmp"); return 1; }
    pwrite(tf, "written", 7, 100);
    printf("tmp: the mapping shows pwrite: %.7s\n", tm + 100);
    c = fork();
    if (c == 0) { memcpy(tm + 200, "mapped", 6); _exit(0); }
    wait_child(c);
    memcpy(tm + 300, "stored", 6);
    char tb[7] = {0};
    pread(tf, tb, 6, 300);
    printf("tmp: read() sees a store not written back: %s\n", tb);
    msync(tm, 4096, MS_SYNC);
    memset(tb, 0, sizeof tb);
    pread(tf, tb, 6, 200);
    printf("tmp: the child's store reached the file: %s\n", tb);
    ftruncate(tf, 150);
    ftruncate(tf, 4096);
    printf("tmp: after a truncate to 150: [%.7s] [%d]\n", tm + 100, tm + 200 == 0 ? -1 : tm[200]);
    /* mremap moves and grows a shared file mapping: the same pages, and
     * the file's further in. */
    pwrite(tf, "third", 5, 8192);
    ftruncate(tf, 3 * 4096);
    char *grown = mremap(tm, 4096, 3 * 4096, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) { perror("mremap grow"); return 1; }
    memcpy(grown + 8200, "grown", 5);
    memset(tb, 0, sizeof tb);
    pread(tf, tb, 5, 8200);
    printf("tmp: after mremap: [%.7s] [%.5s] [%s]\n", grown + 100, grown + 8192, tb);
    munmap(grown, 3 * 4096);
    close(tf);
    unlink("/tmp/lego-sharedmem-file");

    /* Shared anonymous memory shrunk and grown back keeps its pages. */
    char *sg = shared(4 * 4096);
    strcpy(sg + 3 * 4096, "kept");
    char *sg1 = mremap(sg, 4 * 4096, 4096, 0);
    char *sg4 = mremap(sg1, 4096, 4 * 4096, MREMAP_MAYMOVE);
    printf("anon shrunk and grown: %s\n", sg4 == MAP_FAILED ? "failed" : sg4 + 3 * 4096);
    if (sg4 != MAP_FAILED) munmap(sg4, 4 * 4096);

    /* /dev/shm is another file system than /tmp. */
    int x = shm_open("/lego-sharedmem-x", O_CREAT | O_RDWR, 0600);
    close(x);
    int rn = rename("/dev/shm/lego-sharedmem-x", "/tmp/lego-sharedmem-x");
    printf("rename from /dev/shm to /tmp: %s\n", rn == 0 ? "done" : strerror(errno));
    shm_unlink("/lego-sharedmem-x");
    unlink("/tmp/lego-sharedmem-x");

    char cwd[256] = "", link[256] = "", proc[64];

    /* memfd_create: an anonymous file, shared through its mappings. */
    int mf = memfd_create("lego", MFD_CLOEXEC);
    if (mf < 0 || ftruncate(mf, 4096) != 0 || write(mf, "abc", 3) != 3) { perror("memfd"); return 1; }
    char *mm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
    if (mm == MAP_FAILED) { perror("mmap memfd"); return 1; }
    c = fork();
    if (c == 0) { mm[1] = 'X'; _exit(0); }
    wait_child(c);
    char mb[4] = {0};
    pread(mf, mb, 3, 0);
    struct stat mst;
    fstat(mf, &mst);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", mf);
    ssize_t ml = readlink(proc, link, sizeof link - 1);
    link[ml > 0 ? ml : 0] = 0;
    int seals = fcntl(mf, F_GET_SEALS);
    int added = fcntl(mf, F_ADD_SEALS, F_SEAL_SHRINK);
    printf("memfd: %s, size %lld, links %d, mode %o, %s, seals %d, add %d %s, cloexec %d\n", mb,
           (long long)mst.st_size, (int)mst.st_nlink, (unsigned)(mst.st_mode & 07777), link, seals, added,
           added ? strerror(errno) : "", fcntl(mf, F_GETFD));
    munmap(mm, 4096);
    close(mf);

    /* System V shared memory: a segment attached twice, inherited by a
     * child, kept after IPC_RMID while attached. */
    int sid = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    int *sv = shmat(sid, NULL, 0);
    if (sid < 0 || sv == (void *)-1) { perror("shmget/shmat"); return 1; }
    c = fork();
    if (c == 0) {
        int *k = shmat(sid, NULL, 0);
        if (k == (void *)-1) _exit(2);
        k[0] = 11;
        sv[1] = 22;
        _exit(shmdt(k) == 0 ? 0 : 3);
    }
    int svc = wait_child(c);
    struct shmid_ds ds;
    int st = shmctl(sid, IPC_STAT, &ds);
    printf("sysv: child %d, stat %d, size %zu, attached %lu, mode %o, words %d %d\n", svc, st,
           (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch, (unsigned)(ds.shm_perm.mode & 0777), sv[0], sv[1]);
    /* What ipcs reads: the limits, the use, and each segment by its
     * place in the table (SHM_STAT gives back its id). */
    struct shminfo si;
    int top = shmctl(0, IPC_INFO, (struct shmid_ds *)&si);
    printf("sysv: IPC_INFO %s, shmmin %lu, shmmax large %d\n", top >= 0 ? "ok" : strerror(errno),
           (unsigned long)si.shmmin, si.shmmax > (1UL << 40));
    struct shm_info su;
    int top2 = shmctl(0, SHM_INFO, (struct shmid_ds *)&su);
    printf("sysv: SHM_INFO %s, in use %d\n", top2 >= 0 ? "ok" : strerror(errno), su.used_ids >= 1);
    int found = 0;
    for (int i = 0; i <= top2; i++) {
        struct shmid_ds d;
        int got = shmctl(i, SHM_STAT, &d);
        if (got == sid)
            found = d.shm_segsz == 10000;
    }
    printf("sysv: SHM_STAT finds it: %d\n", found);
    int rm = shmctl(sid, IPC_RMID, NULL);
    int still = sv[0];
    int dt1 = shmdt(sv);
    int dt2 = shmdt(sv);
    printf("sysv: rmid %d, still there %d, detach %d, again %d (%s)\n", rm, still, dt1, dt2, strerror(errno));
    printf("sysv: stat after the last detach: %d\n", shmctl(sid, IPC_STAT, &ds));
    key_t key = 0x4c45474f;
    int k1 = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0644);
    int k2 = shmget(key, 4096, 0);
    int k3 = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0644);
    int e3 = errno;
    int k4 = shmget(key, 16384, 0);
    int e4 = errno;
    int k5 = shmget(IPC_PRIVATE, 0, IPC_CREAT);
    printf("sysv keys: same %d, excl %d %s, larger %d %s, zero %d\n", k1 == k2, k3, strerror(e3), k4, strerror(e4), k5);
    shmctl(k1, IPC_RMID, NULL);
    printf("sysv: after rmid the key is free: %d\n", shmget(key, 4096, 0) == -1 && errno == ENOENT);

    /* Seals on a memfd made to take them. */
    int sf = memfd_create("sealed", MFD_ALLOW_SEALING);
    ftruncate(sf, 8192);
    int g0 = fcntl(sf, F_GET_SEALS);
    int a1 = fcntl(sf, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    int t1 = ftruncate(sf, 4096), te1 = errno;
    int w1 = (int)pwrite(sf, "x", 1, 8192), we1 = errno;
    int w2 = (int)pwrite(sf, "y", 1, 100);
    char *sm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, sf, 0);
    int a2 = fcntl(sf, F_ADD_SEALS, F_SEAL_WRITE), ae2 = errno;
    munmap(sm, 8192);
    int a3 = fcntl(sf, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL);
    int w3 = (int)pwrite(sf, "z", 1, 100), we3 = errno;
    void *m3 = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, sf, 0);
    int me3 = errno;
    int a4 = fcntl(sf, F_ADD_SEALS, F_SEAL_SHRINK), ae4 = errno;
    printf("seals: %d %d; shrink %d %s; grow %d %s; inside %d; write seal while mapped %d %s; %d; write %d %s; "
           "map %s %s; more %d %s; now %d\n",
           g0, a1, t1, strerror(te1), w1, strerror(we1), w2, a2, strerror(ae2), a3, w3, strerror(we3),
           m3 == MAP_FAILED ? "refused" : "made", strerror(me3), a4, strerror(ae4), fcntl(sf, F_GET_SEALS));
    close(sf);

    /* A read-only System V attach stays read-only; a removed segment
     * says so while attached; /proc/self/maps names it. */
    int rid = shmget(0x4c45474e, 4096, IPC_CREAT | 0600);
    char *ra = shmat(rid, NULL, SHM_RDONLY);
    int mp = mprotect(ra, 4096, PROT_READ | PROT_WRITE), mpe = errno;
    char want[64], mline[512];
    int named = 0;
    snprintf(want, sizeof want, "/SYSV%08x (deleted)", 0x4c45474e);
    FILE *mf2 = fopen("/proc/self/maps", "r");
    while (mf2 && fgets(mline, sizeof mline, mf2)) {
        unsigned long lo, hi;
        if (sscanf(mline, "%lx-%lx", &lo, &hi) == 2 && lo <= (unsigned long)ra && (unsigned long)ra < hi)
            named = strstr(mline, want) != NULL && strstr(mline, " r--s ") != NULL;
    }
    if (mf2) fclose(mf2);
    shmctl(rid, IPC_RMID, NULL);
    struct shmid_ds rds;
    shmctl(rid, IPC_STAT, &rds);
    printf("sysv read-only: mprotect %d %s; named %d; removed mode %o\n", mp, strerror(mpe), named,
           (unsigned)(rds.shm_perm.mode & 01777));
    shmdt(ra);

    /* Sizes no mapping can have. */
    char *huge = shared(4096);
    void *mr = mremap(huge, 4096, ~0xfffUL, MREMAP_MAYMOVE);
    int mre = errno;
    void *sa = shmat(shmget(IPC_PRIVATE, 4096, 0600), (void *)~0xfffUL, SHM_REMAP);
    int sae = errno;
    printf("too large: mremap %s %s; shmat %s %s\n", mr == MAP_FAILED ? "failed" : "made", strerror(mre),
           sa == (void *)-1 ? "failed" : "made", strerror(sae));

    /* Its names as a program sees them. */

    if (chdir("/dev/shm") == 0 && getcwd(cwd, sizeof cwd)) {
        int y = open("lego-sharedmem-y", O_CREAT | O_RDWR, 0600);
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", y);
        ssize_t n = readlink(proc, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        close(y);
        unlink("lego-sharedmem-y");
        if (chdir("..") == 0 && getcwd(proc, sizeof proc))
            printf("in /dev/shm: cwd %s, fd %s, parent %s\n", cwd, link, proc);
    }

    /* mremap shrinks a shared mapping in place. */
    char *sh = shared(4 * 4096);
    sh[0] = 's';
    char *smaller = mremap(sh, 4 * 4096, 4096, 0);
    c = fork();
    if (c == 0) { smaller[1] = 't'; _exit(0); }
    wait_child(c);
    printf("mremap shrink: %s, '%.2s'\n", smaller == sh ? "in place" : "moved", smaller);
    return 0;
}
