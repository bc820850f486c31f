/* What a program gets back for bad requests: the errno Linux gives, never
 * a crash of the component. Each line is "what: result". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The errno's name, the same for glibc and musl (their strerror texts
 * differ). */
static const char *name(int e) {
    switch (e) {
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ESRCH: return "ESRCH";
    case EPIPE: return "EPIPE";
    case EAGAIN: return "EAGAIN";
    case ENOTSOCK: return "ENOTSOCK";
    case EPERM: return "EPERM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESTALE: return "ESTALE";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case ENOSPC: return "ENOSPC";
    default: return strerror(e);
    }
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, name(errno));
    else
        printf("%s: ok\n", what);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    show("write to fd 99", write(99, "x", 1));
    show("close fd 99", close(99));
    show("write from a bad pointer", syscall(SYS_write, 1, (void *)16, 8));
    show("open a bad path pointer", syscall(SYS_open, (void *)8, O_RDONLY));
    show("open a missing file", open("/no/such/file", O_RDONLY));
    /* Host files are read-only to programs until storage serves files. */
    show("write to a host file", open("/etc/hostname", O_WRONLY));
    /* O_CREAT of a name that exists opens it; only creating, writing or
     * truncating needs a writable file system (flock(1) opens so). */
    show("O_CREAT of a host file, read-only", open("/etc/hostname", O_RDONLY | O_CREAT, 0644));
    show("O_CREAT|O_EXCL of a host file", open("/etc/hostname", O_RDONLY | O_CREAT | O_EXCL, 0644));
    show("O_CREAT of a new host name", open("/etc/lego-no-such-file", O_RDONLY | O_CREAT, 0644));
    show("O_TRUNC of a host file", open("/etc/hostname", O_RDONLY | O_TRUNC));
    show("open of a host's device", open("/dev/kvm", O_RDONLY));
    void *huge = mmap(NULL, 1UL << 46, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("mmap 64 TiB", huge == MAP_FAILED ? -1 : 0);
    show("munmap unaligned", munmap((void *)4097, 4096));
    show("munmap past the user half", syscall(SYS_munmap, 0L, 1L << 47));
    show("unknown system call", syscall(1000));
    show("kill a missing pid", kill(99999, SIGTERM));
    /* Mounts are Lego's to make, as a container's without CAP_SYS_ADMIN. */
    show("mount a tmpfs", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, NULL));
    show("bind mount", syscall(SYS_mount, "/tmp", "/tmp", NULL, 4096L, NULL));
    show("umount /tmp", syscall(SYS_umount2, "/tmp", 0L));
    show("swapon", syscall(SYS_swapon, "/tmp/swapfile", 0L));
    show("swapoff", syscall(SYS_swapoff, "/tmp/swapfile"));
    /* Linux checks reboot's magic numbers before the caller's right. */
    show("reboot with a bad magic", syscall(SYS_reboot, 0L, 0L, 0x1234567L, NULL));
    show("reboot", syscall(SYS_reboot, 0xfee1deadL, 672274793L, 0xcdef0123L, NULL));
    /* The processor's kernel log is empty (dmesg prints nothing). */
    char klog[64];
    printf("syslog: read all %ld, buffer size %ld\n", syscall(SYS_syslog, 3, klog, (long)sizeof klog),
           syscall(SYS_syslog, 10, NULL, 0L));
    /* A process's own table and directory are its own already; no
     * namespaces are offered, as in a container. */
    show("unshare(CLONE_FILES | CLONE_FS)", syscall(SYS_unshare, 0x400L | 0x200L));
    show("unshare(CLONE_NEWUSER)", syscall(SYS_unshare, 0x10000000L));
    show("unshare(an unknown flag)", syscall(SYS_unshare, 0x1L));
    /* File handles: no file system here gives them out. */
    char handle[8 + 128] = {0};
    *(unsigned *)handle = 128;
    int mount_id;
    show("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/tmp", handle, &mount_id, 0L));
    show("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY));
    /* Protection keys, as on a CPU without them. */
    show("pkey_alloc", syscall(330, 0, 0));
    show("pkey_alloc with flags", syscall(330, 1, 0));
    show("pkey_free", syscall(331, 1));
    {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        show("pkey_mprotect with key -1", syscall(329, m, 4096, PROT_READ, -1));
        show("pkey_mprotect with key 1", syscall(329, m, 4096, PROT_READ, 1));
    }
    int fds[2];
    show("pipe", pipe(fds));
    write(fds[1], "12345678", 8);
    show("read into a bad pointer", syscall(SYS_read, fds[0], (void *)0xdead0000UL, 8));
    /* bash asks this of its stdin: anything but ENOTSOCK means a network. */
    show("getpeername of a pipe", syscall(SYS_getpeername, fds[0], NULL, NULL));
    show("getpeername of fd 99", syscall(SYS_getpeername, 99, NULL, NULL));
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    show("write to a pipe without readers", write(fds[1], "x", 1));
    /* A fork bomb that stops at the first refusal: the processor says
     * EAGAIN when it has no room for another process. */
    enum { MAX = 100000 };
    static pid_t kids[MAX];
    int made = 0, err = 0;
    for (;;) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) { err = errno; break; }
        kids[made++] = p;
        if (made == MAX) break;
    }
    printf("fork until refused: %s after %s\n", name(err), made > 10 ? "more than 10" : "few");
    for (int i = 0; i < made; i++) kill(kids[i], SIGTERM);
    int reaped = 0;
    while (wait(NULL) > 0) reaped++;
    printf("reaped all: %s\n", reaped == made ? "yes" : "no");
    return 0;
}
