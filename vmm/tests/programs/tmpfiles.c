/* Files in /tmp, as programs use them: a private directory from mkdtemp,
 * files made, written, pwritten, truncated, renamed, listed, mapped,
 * unlinked while open; tmpfile(); a named pipe; /proc/self/fd/N of a
 * file opened again (its own offset and flags, O_TRUNC, a memfd's seal);
 * and the errors Linux gives for the usual mistakes. Everything is
 * removed at the end. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "walks.h"

static char dir[64];

static const char *at(const char *name) {
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "yes" : "no"); }

static void fails(const char *what, int r, int expect) {
    printf("%s: %s\n", what, r == -1 && errno == expect ? strerror(expect) : "did not fail as expected");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "child"))
        return 3;
    strcpy(dir, "/tmp/lego-tmpfiles-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct stat st;
    check("mkdtemp made a private directory",
          stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);

    int fd = open(at("a"), O_CREAT | O_EXCL | O_RDWR, 0640);
    check("created", fd >= 0);
    fails("O_EXCL again", open(at("a"), O_CREAT | O_EXCL | O_RDWR, 0640), EEXIST);
    check("written", write(fd, "hello, world\n", 13) == 13);
    check("pwritten", pwrite(fd, "HELLO", 5, 0) == 5);
    check("offset kept by pwrite", lseek(fd, 0, SEEK_CUR) == 13);
    check("seek to the end", lseek(fd, 0, SEEK_END) == 13);
    /* A hole, then more. */
    check("written past the end", pwrite(fd, "!", 1, 20000) == 1);
    check("size with the hole", fstat(fd, &st) == 0 && st.st_size == 20001 && S_ISREG(st.st_mode) &&
                                    (st.st_mode & 0777) == 0640);
    char buf[32] = {0};
    check("hole reads zeros", pread(fd, buf, 4, 100) == 4 && !memcmp(buf, "\0\0\0\0", 4));
    check("truncated", ftruncate(fd, 12) == 0 && fstat(fd, &st) == 0 && st.st_size == 12);
    memset(buf, 0, sizeof buf);
    check("read back", pread(fd, buf, sizeof buf, 0) == 12 && !strcmp(buf, "HELLO, world"));
    fsync(fd);
    close(fd);

    fd = open(at("b"), O_WRONLY | O_CREAT | O_APPEND, 0600);
    write(fd, "one\n", 4);
    lseek(fd, 0, SEEK_SET);
    write(fd, "two\n", 4);
    close(fd);
    FILE *f = fopen(at("b"), "r");
    char line[64];
    printf("appended:");
    while (f && fgets(line, sizeof line, f))
        printf(" %.*s", (int)strlen(line) - 1, line);
    printf("\n");
    if (f)
        fclose(f);

    check("renamed over b", rename(at("a"), at("b")) == 0);
    fails("the old name", access(at("a"), F_OK), ENOENT);
    check("mkdir", mkdir(at("sub"), 0755) == 0);
    fails("mkdir again", mkdir(at("sub"), 0755), EEXIST);
    close(open(at("sub/inner"), O_CREAT | O_WRONLY, 0644));
    fails("rmdir of a full directory", rmdir(at("sub")), ENOTEMPTY);
    fails("unlink of a directory", unlink(at("sub")), EISDIR);
    fails("a directory opened for writing", open(at("sub"), O_WRONLY), EISDIR);
    fails("O_DIRECTORY on a file", open(at("b"), O_RDONLY | O_DIRECTORY), ENOTDIR);
    fails("a file as a directory", open(at("b/x"), O_RDONLY), ENOTDIR);
    fails("a missing directory", open(at("none/x"), O_CREAT | O_WRONLY, 0644), ENOENT);
    fails("rename into a missing directory", rename(at("b"), at("none/b")), ENOENT);
    fails("rename into a file as a directory", rename(at("b"), at("b/x")), ENOTDIR);
    fails("rename of a file to name/", rename(at("b"), at("c/")), ENOTDIR);
    fails("rename of file/", rename(at("b/"), at("c")), ENOTDIR);
    fails("rename of .", rename(at("."), at("c")), EBUSY);
    fails("rename of a missing file over one", rename(at("none"), at("b")), ENOENT);
    char longname[400];
    int cut = snprintf(longname, sizeof longname, "%s/", dir);
    memset(longname + cut, 'n', 256);
    longname[cut + 256] = 0;
    fails("rename to a name over NAME_MAX", rename(at("b"), longname), ENAMETOOLONG);
    fails("mkdir of a name over NAME_MAX", mkdir(longname, 0755), ENAMETOOLONG);
    fails("rmdir of a file", rmdir(at("b")), ENOTDIR);

    DIR *d = opendir(dir);
    char *names[16];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 16)
        names[n++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, by_name);
    printf("listed:");
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");

    check("chmod", chmod(at("b"), 0604) == 0 && stat(at("b"), &st) == 0 && (st.st_mode & 0777) == 0604);
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    check("utimensat", utimensat(AT_FDCWD, at("b"), times, 0) == 0 && stat(at("b"), &st) == 0 &&
                           st.st_mtim.tv_sec == 1234567890 && st.st_mtim.tv_nsec == 500);

    fd = open(at("b"), O_RDONLY);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    check("mapped", m != MAP_FAILED && !memcmp(m, "HELLO, world", 12) && m[12] == 0);
    if (m != MAP_FAILED)
        munmap(m, 4096);
    check("unlinked while open", unlink(at("b")) == 0);
    memset(buf, 0, sizeof buf);
    check("still readable", pread(fd, buf, 5, 0) == 5 && !strcmp(buf, "HELLO"));
    close(fd);

    char cwd[256];
    check("chdir into it", chdir(at("sub")) == 0 && getcwd(cwd, sizeof cwd) && !strcmp(cwd, at("sub")));
    check("relative names", access("inner", F_OK) == 0 && unlink("inner") == 0);
    chdir("/");

    /* sendfile from a file at an offset, then from the descriptor's own. */
    int exe = open("/proc/self/exe", O_RDONLY);
    int copy = open(at("copy"), O_CREAT | O_RDWR | O_TRUNC, 0600);
    off_t off = 0;
    ssize_t sent = sendfile(copy, exe, &off, 4096);
    sent += sendfile(copy, exe, NULL, 100);
    char a[4196], b[4196];
    pread(exe, a, sizeof a, 0);
    memcpy(a + 4096, a, 100);
    check("sendfile", sent == 4196 && off == 4096 && pread(copy, b, sizeof b, 0) == 4196 && !memcmp(a, b, sizeof a));
    struct statfs sf;
    check("fstatfs", fstatfs(copy, &sf) == 0 && sf.f_bsize > 0 && sf.f_namelen == 255);
    /* The whole program copied there runs. */
    off = 0;
    lseek(copy, 0, SEEK_SET);
    ftruncate(copy, 0);
    struct stat self;
    fstat(exe, &self);
    while (off < self.st_size && sendfile(copy, exe, &off, self.st_size - off) > 0) {
    }
    fchmod(copy, 0755);
    close(copy);
    close(exe);
    pid_t child = fork();
    if (child == 0) {
        execl(at("copy"), "copy", "child", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check("a program copied to /tmp runs", WIFEXITED(status) && WEXITSTATUS(status) == 3);
    unlink(at("copy"));
    struct sysinfo si;
    long memtotal = -1;
    FILE *mi = fopen("/proc/meminfo", "r");
    if (mi && fscanf(mi, "MemTotal: %ld kB", &memtotal) != 1)
        memtotal = -1;
    if (mi)
        fclose(mi);
    check("sysinfo agrees with /proc/meminfo",
          sysinfo(&si) == 0 && (long)(si.totalram * si.mem_unit / 1024) == memtotal);

    FILE *t = tmpfile();
    check("tmpfile", t && fputs("scratch", t) >= 0 && fseek(t, 0, SEEK_SET) == 0 && fgets(line, sizeof line, t) &&
                         !strcmp(line, "scratch"));
    if (t)
        fclose(t);

    /* A named pipe: a child writes, the parent reads to the end; the
     * reader opens first and waits for the writer. */
    check("mkfifo", mkfifo(at("fifo"), 0600) == 0);
    check("a FIFO by stat", stat(at("fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
    fails("mkfifo over it", mkfifo(at("fifo"), 0600), EEXIST);
    fails("a non-blocking writer with no reader", open(at("fifo"), O_WRONLY | O_NONBLOCK), ENXIO);
    pid_t w = fork();
    if (w == 0) {
        int fw = open(at("fifo"), O_WRONLY);
        for (int i = 0; i < 1000; i++)
            dprintf(fw, "line %d through the fifo\n", i);
        close(fw);
        _exit(0);
    }
    int fr = open(at("fifo"), O_RDONLY);
    check("opened for reading", fr >= 0);
    char big[4096];
    long total = 0, lines = 0;
    ssize_t got;
    while ((got = read(fr, big, sizeof big)) > 0) {
        total += got;
        for (ssize_t i = 0; i < got; i++)
            lines += big[i] == '\n';
    }
    printf("read through the fifo: %ld bytes, %ld lines, end %zd\n", total, lines, got);
    struct pollfd hup = {.fd = fr, .events = POLLIN};
    check("at its end poll says POLLHUP alone", poll(&hup, 1, 0) == 1 && hup.revents == POLLHUP);
    check("fstat says FIFO", fstat(fr, &st) == 0 && S_ISFIFO(st.st_mode));
    fails("truncate of a FIFO", truncate(at("fifo"), 0), EINVAL);
    close(fr);
    waitpid(w, &status, 0);
    check("writer done", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int rw = open(at("fifo"), O_RDWR);
    check("O_RDWR does not wait", rw >= 0 && write(rw, "loop", 4) == 4 && read(rw, big, 4) == 4 && !memcmp(big, "loop", 4));
    close(rw);
    int nb = open(at("fifo"), O_RDONLY | O_NONBLOCK);
    check("a non-blocking reader with no writer sees the end", nb >= 0 && read(nb, big, 4) == 0);
    struct pollfd pf = {.fd = nb, .events = POLLIN};
    check("and poll waits for a writer", poll(&pf, 1, 50) == 0);
    close(nb);
    /* A reader opened blocking, then made non-blocking, as Go opens a FIFO
     * to poll it: its open waited for the writer (which comes late), so
     * its first read is bytes or EAGAIN, never the end of the file. */
    w = fork();
    if (w == 0) {
        usleep(100000);
        int fw = open(at("fifo"), O_WRONLY);
        usleep(20000);
        _exit(fw >= 0 && write(fw, "late", 4) == 4 ? 0 : 1);
    }
    int br = open(at("fifo"), O_RDONLY);
    check("a blocking reader's open", br >= 0 && fcntl(br, F_SETFL, O_NONBLOCK) == 0);
    got = read(br, big, sizeof big);
    check("made non-blocking, its first read is not the end", got == 4 || (got < 0 && errno == EAGAIN));
    long late = got > 0 ? got : 0;
    while (late < 4 && poll(&(struct pollfd){.fd = br, .events = POLLIN}, 1, 5000) == 1 &&
           (got = read(br, big + late, sizeof big - late)) > 0)
        late += got;
    check("it reads what the late writer wrote", late == 4 && !memcmp(big, "late", 4));
    check("then the end, once the writer is gone",
          poll(&(struct pollfd){.fd = br, .events = POLLIN}, 1, 5000) == 1 && read(br, big, 4) == 0);
    close(br);
    waitpid(w, &status, 0);
    check("late writer done", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* A pipe in packet mode (O_DIRECT): writes stay apart, a short read
     * drops the rest of its packet, a long write is cut at PIPE_BUF. */
    int pk[2];
    check("pipe2 O_DIRECT", pipe2(pk, O_DIRECT | O_NONBLOCK) == 0 && (fcntl(pk[1], F_GETFL) & O_DIRECT) &&
                              !(fcntl(pk[0], F_GETFL) & O_DIRECT));
    check("two packets", write(pk[1], "abc", 3) == 3 && write(pk[1], "de", 2) == 2);
    check("one read, one packet", read(pk[0], big, sizeof big) == 3 && read(pk[0], big, 1) == 1 &&
                                      big[0] == 'd' && read(pk[0], big, sizeof big) < 0 && errno == EAGAIN);
    static char packet[PIPE_BUF + 10];
    check("a long write cut in two", write(pk[1], packet, sizeof packet) == (ssize_t)sizeof packet &&
                                         read(pk[0], big, sizeof big) == PIPE_BUF && read(pk[0], big, sizeof big) == 10);
    close(pk[1]);
    check("and the end", read(pk[0], big, sizeof big) == 0);
    close(pk[0]);
    check("mknod of a regular file", mknod(at("plain"), S_IFREG | 0644, 0) == 0 && stat(at("plain"), &st) == 0 &&
                                         S_ISREG(st.st_mode) && st.st_size == 0);
    check("fifo and plain unlinked", unlink(at("fifo")) == 0 && unlink(at("plain")) == 0);

    /* Symbolic links: to a file and a directory, relative and absolute,
     * into the host's files and /dev/shm; followed by open and stat, not
     * by lstat, readlink, unlink, rename or O_NOFOLLOW. */
    int tf = open(at("target"), O_CREAT | O_RDWR, 0644);
    check("target written", tf >= 0 && write(tf, "through the link\n", 17) == 17);
    close(tf);
    check("symlink", symlink("target", at("ln")) == 0);
    fails("symlink over a name", symlink("x", at("ln")), EEXIST);
    char lb[128] = {0};
    ssize_t ll = readlink(at("ln"), lb, sizeof lb - 1);
    printf("readlink: %zd [%s]\n", ll, ll > 0 ? lb : "");
    struct stat ls;
    check("lstat says a link of its target's length",
          lstat(at("ln"), &ls) == 0 && S_ISLNK(ls.st_mode) && ls.st_size == 6);
    check("stat follows it", stat(at("ln"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 17);
    int lf = open(at("ln"), O_RDONLY);
    memset(lb, 0, sizeof lb);
    check("open follows it", lf >= 0 && read(lf, lb, 17) == 17 && !strcmp(lb, "through the link\n"));
    close(lf);
    fails("O_NOFOLLOW", open(at("ln"), O_RDONLY | O_NOFOLLOW), ELOOP);
    fails("readlink of a file", (int)readlink(at("target"), lb, sizeof lb), EINVAL);
    check("mkdir sub for links", mkdir(at("sub"), 0755) == 0 || errno == EEXIST);
    check("a link to a directory", symlink(dir, at("dirln")) == 0);
    check("a path through it", stat(at("dirln/target"), &st) == 0 && st.st_size == 17);
    check("a relative link from below", symlink("../target", at("sub/up")) == 0 &&
                                           stat(at("sub/up"), &st) == 0 && st.st_size == 17);
    check("a link to the host's files", symlink("/bin", at("host")) == 0 && stat(at("host/sh"), &st) == 0);
    unlink(at("host"));
    check("a link into /dev/shm", symlink("/dev/shm", at("shm")) == 0 && stat(at("shm"), &st) == 0 &&
                                      S_ISDIR(st.st_mode));
    check("dangling", symlink("nothing-here", at("dangling")) == 0);
    fails("open of a dangling link", open(at("dangling"), O_RDONLY), ENOENT);
    int cf = open(at("dangling"), O_CREAT | O_WRONLY, 0600);
    check("O_CREAT through it makes the target", cf >= 0 && stat(at("nothing-here"), &st) == 0);
    close(cf);
    fails("O_CREAT|O_EXCL on a link", open(at("dangling"), O_CREAT | O_EXCL | O_WRONLY, 0600), EEXIST);
    check("a loop", symlink("loop2", at("loop1")) == 0 && symlink("loop1", at("loop2")) == 0);
    fails("open of a loop", open(at("loop1"), O_RDONLY), ELOOP);
    check("rename moves the link", rename(at("ln"), at("ln2")) == 0 && lstat(at("ln2"), &ls) == 0 &&
                                       S_ISLNK(ls.st_mode) && stat(at("target"), &st) == 0);
    DIR *ld = opendir(dir);
    int lnks = 0;
    struct dirent *lde;
    while (ld && (lde = readdir(ld)))
        lnks += lde->d_type == DT_LNK;
    if (ld) closedir(ld);
    printf("links listed as DT_LNK: %d\n", lnks);
    check("getcwd through a link is the real path", chdir(at("dirln")) == 0 && getcwd(lb, sizeof lb) &&
                                                        !strcmp(lb, dir) && chdir("/") == 0);
    const char *gone[] = {"ln2", "dirln", "sub/up", "shm", "dangling", "nothing-here", "loop1", "loop2", "target"};
    int left = 0;
    for (unsigned i = 0; i < sizeof gone / sizeof gone[0]; i++)
        left += unlink(at(gone[i])) != 0;
    check("links unlinked, not their targets", left == 0);

    /* Owners: chown keeps them (tar and cp -a as root give files theirs),
     * -1 leaves one, the set-user-ID bit goes, lchown names a link. */
    int of = open(at("owned"), O_CREAT | O_WRONLY, 0644);
    fchmod(of, 06755);
    check("chown", chown(at("owned"), 1000, 100) == 0);
    stat(at("owned"), &st);
    printf("owner %u, group %u, mode %o\n", st.st_uid, st.st_gid, st.st_mode & 07777);
    check("fchown keeping the owner", fchown(of, -1, 200) == 0);
    fstat(of, &st);
    printf("owner %u, group %u\n", st.st_uid, st.st_gid);
    symlink("owned", at("ownedln"));
    check("lchown", lchown(at("ownedln"), 7, 8) == 0);
    lstat(at("ownedln"), &st);
    struct stat target;
    stat(at("ownedln"), &target);
    printf("the link %u:%u, its target %u:%u\n", st.st_uid, st.st_gid, target.st_uid, target.st_gid);
    close(of);
    unlink(at("ownedln"));
    unlink(at("owned"));

    /* Reads and writes at every byte offset of a page-sized window of the
     * program's buffer, odd lengths: whatever the kernel's own buffer's
     * address, some of these copies run a few bytes behind or ahead of it
     * modulo 4 KiB (Lego's monitor copies those by quadwords). */
    {
        enum { LEN = 4999 };
        static unsigned char data[LEN], win[4096 + LEN];
        for (int i = 0; i < LEN; i++)
            data[i] = (unsigned char)(i * 7 + i / 251);
        int df = open(at("offsets"), O_CREAT | O_RDWR | O_TRUNC, 0600);
        int bad_reads = 0, bad_writes = 0;
        write(df, data, LEN);
        for (int off = 0; off < 4096; off++) {
            memset(win + off, 0, LEN);
            if (pread(df, win + off, LEN, 0) != LEN || memcmp(win + off, data, LEN))
                bad_reads++;
        }
        for (int off = 0; off < 4096; off += 3) {
            memcpy(win + off, data, LEN);
            win[off] = (unsigned char)off;
            unsigned char back[LEN];
            if (pwrite(df, win + off, LEN - off % 8, 0) != LEN - off % 8 ||
                pread(df, back, LEN - off % 8, 0) != LEN - off % 8 ||
                memcmp(back, win + off, LEN - off % 8))
                bad_writes++;
        }
        printf("copies at every offset: %d bad reads, %d bad writes\n", bad_reads, bad_writes);
        close(df);
        unlink(at("offsets"));
    }

    {
        /* /proc/self/fd/N opens the file again. */
        int fd = open(at("again"), O_CREAT | O_RDWR | O_TRUNC, 0600);
        write(fd, "hello", 5);
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        int r = open(p, O_RDONLY);
        char b[8] = {0};
        ssize_t n = read(r, b, 5);
        printf("opened again: reads %zd %s from 0, the first still at %ld\n", n, b,
               (long)lseek(fd, 0, SEEK_CUR));
        int w = open(p, O_WRONLY | O_APPEND);
        printf("  its own flags: %s\n", fcntl(w, F_GETFL) & O_APPEND ? "O_APPEND" : "none");
        int t = open(p, O_RDWR | O_TRUNC);
        printf("  O_TRUNC: size %ld\n", (long)lseek(fd, 0, SEEK_END));
        close(t), close(w), close(r), close(fd);
        unlink(at("again"));
        int m = memfd_create("sealed", MFD_ALLOW_SEALING);
        write(m, "x", 1);
        fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK);
        snprintf(p, sizeof p, "/proc/self/fd/%d", m);
        fails("  O_TRUNC of a memfd sealed against shrinking", open(p, O_RDWR | O_TRUNC), EPERM);
        close(m);
    }

    walk_errors(at);
    check("rmdir", rmdir(at("sub")) == 0 && rmdir(dir) == 0);
    fails("gone", stat(dir, &st), ENOENT);
    return 0;
}
