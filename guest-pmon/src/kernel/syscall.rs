//! Linux's system calls, as the processor monitor serves them: decoding
//! each call's arguments from the frame, checking every pointer, and
//! answering with Linux's values and errno numbers. A call that must wait
//! parks its thread (see [`Kernel::block`]); a call Lego does not have
//! answers ENOSYS and is counted (listed when the program ends).

use alloc::sync::Arc;
use alloc::vec::Vec;

use lego_proto::memory::{
    MemRequest, DISCARD_PART_UNMAPPED, FLAG_FIXED, FLAG_MAYMOVE, OP_BRK, OP_DISCARD, OP_FORK,
    OP_MMAP, OP_MPROTECT, OP_MREMAP, OP_MUNMAP,
};
use pmon::fd::{
    Kind, OpenFile, O_ACCMODE, O_APPEND, O_CLOEXEC, O_DSYNC, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR,
    O_SYNC_ONLY, O_WRONLY,
};
use pmon::path::Name;
use pmon::pipe::{Io, Pipe};
use pmon::signal::*;
use pmon::sysno as nr;
use rand_core::RngCore;

use super::arch::UserContext;
use super::uaccess;
use super::*;

mod caps;
mod dnotify;
pub use dnotify::Dnotify;
pub use sigio::AsyncFile;
mod aio;
mod events;
mod fifo;
mod ids;
mod inotify;
mod ipc;
mod lock;
mod mlock;
mod mqueue;
mod netlink;
mod owner_futex;
mod pidfd;
mod positional;
mod procnet;
mod procpid;
mod pty;
mod remap;
mod sched;
mod seccomp;
use procpid::FD_DIR;
mod shared;
mod shared_anon;
mod sigio;
mod signalfd;
mod splice;
mod store;
mod sysv_msg;
mod sysv_sem;
mod sysv_shm;

pub use aio::AioContext;
use pmon::private_maps::PrivateMap;
pub use shared::SharedMap;
pub use shared_anon::{AnonHolder, FileRef};
pub use sysv_shm::Attach;
mod timers;
mod tmp;
mod udp;
mod unix;
mod vm_access;
mod xattr;

/// What a system call did.
pub enum Ret {
    /// Returns this (a value, or -errno).
    Val(i64),
    /// The thread was parked; its return value comes later.
    Block,
    /// The thread's registers were replaced (execve, rt_sigreturn), or it
    /// is gone (exit).
    NoReturn,
}

fn err(e: Errno) -> Ret {
    Ret::Val(-e)
}

fn val(r: Result<i64, Errno>) -> Ret {
    match r {
        Ok(v) => Ret::Val(v),
        Err(e) => Ret::Val(-e),
    }
}

const AT_FDCWD: i64 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const EROFS: Errno = 30;
const ENOSPC: Errno = 28;
const EMSGSIZE: Errno = 90;
const ECONNREFUSED: Errno = 111;
const ECONNRESET: Errno = 104;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;
const S_IFREG: u32 = 0o100000;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

const WNOHANG: u64 = 1;
/// (WSTOPPED for waitid.)
const WUNTRACED: u64 = 2;
const WCONTINUED: u64 = 8;
const WEXITED: u64 = 4;
const WNOWAIT: u64 = 0x0100_0000;

/// What a wait reports of a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Its wait status.
    Ended(i32),
    /// Stopped by this signal.
    Stopped(u32),
    Continued,
}

impl Kernel {
    fn space_mut(&mut self, pid: Pid) -> Result<&mut mm::Space, Errno> {
        self.space_of(pid).ok_or(ESRCH)
    }

    fn pid_of(&self, tid: Tid) -> Pid {
        self.threads.get(&tid).map_or(0, |t| t.pid)
    }

    fn proc_mut(&mut self, pid: Pid) -> Result<&mut Process, Errno> {
        self.procs.get_mut(&pid).ok_or(ESRCH)
    }

    /// Handles the system call in thread `tid`'s frame.
    pub fn syscall(&mut self, tid: Tid) {
        self.caller = tid;
        let Some(frame) = self
            .threads
            .get(&tid)
            .and_then(|t| t.ctx.as_ref())
            .map(|c| c.frame)
        else {
            return;
        };
        let n = frame.gprs[0];
        let a = args(&frame);
        // Its storage calls are for its vNode's files (what they make is
        // its file-system ids'), and a space it makes (exec, fork) is
        // homed where its others are.
        let (vnode, home, fs_ids) = self
            .threads
            .get(&tid)
            .and_then(|t| self.procs.get(&t.pid))
            .map_or((0, 0, (0, 0)), |p| {
                (p.vnode, p.home, (p.cred.uid.fs, p.cred.gid.fs))
            });
        super::store::set_vnode(vnode);
        super::store::set_caller(fs_ids.0, fs_ids.1);
        self.home_now = home;
        // Only while some program watches files (inotify) does a call
        // look at what it will change.
        let ret = if let Some(r) = self.seccomp_check(tid, n, &a, frame.rip) {
            r
        } else if self.inotifies.is_empty() {
            self.dispatch(tid, n, a)
        } else {
            self.dispatch_watched(tid, n, a)
        };
        // A directory's owner, mode or name may have changed here.
        if matches!(
            n,
            nr::CHMOD
                | nr::FCHMOD
                | nr::FCHMODAT
                | nr::FCHMODAT2
                | nr::CHOWN
                | nr::FCHOWN
                | nr::LCHOWN
                | nr::FCHOWNAT
                | nr::RENAME
                | nr::RENAMEAT
                | nr::RENAMEAT2
                | nr::RMDIR
                | nr::UNLINK
                | nr::UNLINKAT
                | nr::SYMLINK
                | nr::SYMLINKAT
        ) && !self.dir_cache.borrow().is_empty()
        {
            self.dir_cache.borrow_mut().clear();
        }
        if !self.asyncs.is_empty() {
            self.async_news();
        }
        if self.trace {
            self.trace_syscall(tid, n, &a, &ret);
        }
        match ret {
            Ret::Val(v) => {
                if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                    ctx.frame.gprs[0] = v as u64;
                }
            }
            Ret::Block => self.interrupt_if_signalled(tid),
            Ret::NoReturn => {}
        }
    }

    /// `--strace`: one line per call, `[pid tid] name(args) = result`,
    /// with the arguments in hex (the monitor does not decode them).
    fn trace_syscall(&self, tid: Tid, n: u64, a: &[u64; 6], ret: &Ret) {
        let pid = self.threads.get(&tid).map_or(0, |t| t.pid);
        let result = match ret {
            Ret::Val(v) if (-4095..0).contains(v) => alloc::format!("-1 errno {}", -v),
            Ret::Val(v) => alloc::format!("{v:#x}"),
            Ret::Block => "? (waits)".into(),
            Ret::NoReturn => "? (no return)".into(),
        };
        lego_image::println!(
            "[{pid} {tid}] {}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {result}",
            syscall_name(n),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[5]
        );
    }

    fn dispatch(&mut self, tid: Tid, n: u64, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        if self.names_only(pid, n, &a) {
            return err(EBADF);
        }
        match n {
            nr::READ => self.sys_read(tid, a[0] as i32 as i64, a[1], a[2] as usize),
            nr::WRITE => self.sys_write(tid, a[0] as i32 as i64, a[1], a[2] as usize),
            nr::READV => self.sys_readv(tid, a[0] as i32 as i64, a[1], a[2] as usize),
            nr::WRITEV => self.sys_writev(tid, a[0] as i32 as i64, a[1], a[2] as usize),
            nr::PREAD64 => self.sys_pread(tid, a[0] as i32 as i64, a[1], a[2] as usize, a[3]),
            nr::PWRITE64 => self.sys_pwrite(pid, a[0] as i32 as i64, a[1], a[2] as usize, a[3]),
            nr::PREADV | nr::PREADV2 => self.sys_preadv(
                tid,
                a[0] as i32 as i64,
                (a[1], a[2] as usize),
                a[3] as i64,
                (n == nr::PREADV2).then_some(a[5]),
            ),
            nr::PWRITEV | nr::PWRITEV2 => self.sys_pwritev(
                tid,
                a[0] as i32 as i64,
                (a[1], a[2] as usize),
                a[3] as i64,
                (n == nr::PWRITEV2).then_some(a[5]),
            ),
            nr::COPY_FILE_RANGE => self.sys_copy_file_range(
                pid,
                (a[0] as i32 as i64, a[1]),
                (a[2] as i32 as i64, a[3]),
                a[4] as usize,
                a[5],
            ),
            nr::SPLICE => self.sys_splice(
                tid,
                (a[0] as i32 as i64, a[1]),
                (a[2] as i32 as i64, a[3]),
                a[4] as usize,
                a[5],
            ),
            nr::TEE => self.sys_tee(
                tid,
                a[0] as i32 as i64,
                a[1] as i32 as i64,
                a[2] as usize,
                a[3],
            ),
            nr::VMSPLICE => self.sys_vmsplice(tid, a[0] as i32 as i64, a[1], a[2] as usize, a[3]),
            nr::FADVISE64 => self.sys_fadvise(pid, a[0] as i32 as i64, a[2] as i64, a[3]),
            nr::READAHEAD => self.sys_readahead(pid, a[0] as i32 as i64),
            nr::FALLOCATE => self.sys_fallocate(
                pid,
                a[0] as i32 as i64,
                a[1] & 0xffff_ffff,
                a[2] as i64,
                a[3] as i64,
            ),
            nr::CLOSE => self.sys_close(pid, a[0] as i32 as i64),
            nr::CLOSE_RANGE => self.sys_close_range(pid, a[0] as u32, a[1] as u32, a[2]),
            nr::DUP => val(self.dup(pid, a[0] as i32 as i64, 0, false)),
            nr::DUP2 => {
                if a[0] == a[1] {
                    return val(self
                        .file(pid, a[0] as i32 as i64)
                        .map(|_| a[0] as i32 as i64));
                }
                val(self.dup_to(pid, a[0] as i32 as i64, a[1] as i32 as i64, false))
            }
            nr::DUP3 => {
                if a[0] == a[1] || a[2] & !(O_CLOEXEC as u64) != 0 {
                    return err(EINVAL);
                }
                val(self.dup_to(
                    pid,
                    a[0] as i32 as i64,
                    a[1] as i32 as i64,
                    a[2] & O_CLOEXEC as u64 != 0,
                ))
            }
            nr::PIPE => self.sys_pipe(pid, a[0], 0),
            nr::PIPE2 => self.sys_pipe(pid, a[0], a[1]),
            nr::FCNTL => match a[1] {
                lock::F_GETLK
                | lock::F_SETLK
                | lock::F_SETLKW
                | lock::F_OFD_GETLK
                | lock::F_OFD_SETLK
                | lock::F_OFD_SETLKW => self.sys_fcntl_lock(tid, a[0] as i32 as i64, a[1], a[2]),
                _ => self.sys_fcntl(pid, a[0] as i32 as i64, a[1], a[2]),
            },
            nr::FLOCK => self.sys_flock(tid, a[0] as i32 as i64, a[1]),
            nr::LSEEK => self.sys_lseek(pid, a[0] as i32 as i64, a[1] as i64, a[2]),
            // The request is an unsigned int: musl passes TIOCGPTN
            // sign-extended.
            nr::IOCTL => self.sys_ioctl(tid, pid, a[0] as i32 as i64, a[1] as u32 as u64, a[2]),
            nr::FSTAT => self.sys_fstat(pid, a[0] as i32 as i64, a[1]),
            nr::NEWFSTATAT => self.sys_newfstatat(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::SETXATTR..=nr::FREMOVEXATTR => self.sys_xattr(pid, n, a),
            nr::STAT => self.sys_newfstatat(pid, AT_FDCWD, a[0], a[1], 0),
            nr::LSTAT => self.sys_newfstatat(pid, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW),
            nr::STATX => self.sys_statx(pid, a[0] as i32 as i64, a[1], a[2], a[3] & 0xffff_ffff, a[4]),
            nr::OPEN => self.sys_openat(pid, AT_FDCWD, a[0], a[1], a[2]),
            nr::OPENAT => self.sys_openat(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::OPENAT2 => self.sys_openat2(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::MEMFD_CREATE => self.sys_memfd_create(pid, a[0], a[1]),
            nr::SHMGET => self.sys_shmget(pid, a[0] as i32, a[1], a[2]),
            nr::SHMAT => self.sys_shmat(pid, a[0] as i32, a[1], a[2]),
            nr::SHMDT => self.sys_shmdt(pid, a[0]),
            nr::SHMCTL => self.sys_shmctl(pid, a[0] as i32, a[1], a[2]),
            nr::SEMGET => self.sys_semget(pid, a[0] as i32, a[1], a[2]),
            nr::SEMOP => self.sys_semtimedop(tid, a[0] as i32, a[1], a[2], 0),
            nr::SEMTIMEDOP => self.sys_semtimedop(tid, a[0] as i32, a[1], a[2], a[3]),
            nr::SEMCTL => self.sys_semctl(pid, a[0] as i32, a[1], a[2], a[3]),
            nr::MQ_OPEN => self.sys_mq_open(pid, a[0], a[1], a[2], a[3]),
            nr::MQ_UNLINK => self.sys_mq_unlink(pid, a[0]),
            nr::MQ_TIMEDSEND => {
                self.sys_mq_timedsend(tid, a[0] as i32 as i64, a[1], a[2], a[3], a[4])
            }
            nr::MQ_TIMEDRECEIVE => {
                self.sys_mq_timedreceive(tid, a[0] as i32 as i64, a[1], a[2], a[3], a[4])
            }
            nr::MQ_NOTIFY => self.sys_mq_notify(pid, a[0] as i32 as i64, a[1]),
            nr::MQ_GETSETATTR => self.sys_mq_getsetattr(pid, a[0] as i32 as i64, a[1], a[2]),
            nr::MSGGET => self.sys_msgget(pid, a[0] as i32, a[1]),
            nr::MSGSND => self.sys_msgsnd(tid, a[0] as i32, a[1], a[2], a[3]),
            nr::MSGRCV => self.sys_msgrcv(tid, a[0] as i32, a[1], a[2], a[3] as i64, a[4]),
            nr::MSGCTL => self.sys_msgctl(pid, a[0] as i32, a[1], a[2]),
            nr::CREAT => self.sys_openat(pid, AT_FDCWD, a[0], 0o1101, a[1]),
            nr::ACCESS => self.sys_access(pid, AT_FDCWD, a[0], a[1]),
            // faccessat2's flags: AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_EMPTY_PATH.
            nr::FACCESSAT2 if a[3] & !0x1300 != 0 => err(EINVAL),
            nr::FACCESSAT2 if a[3] & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 => {
                self.sys_access_at(pid, a[0] as i32 as i64, a[1], a[2], a[3])
            }
            nr::FACCESSAT | nr::FACCESSAT2 => self.sys_access(pid, a[0] as i32 as i64, a[1], a[2]),
            nr::READLINK => self.sys_readlink(pid, AT_FDCWD, a[0], a[1], a[2] as usize),
            nr::READLINKAT => self.sys_readlink(pid, a[0] as i32 as i64, a[1], a[2], a[3] as usize),
            nr::POLL => self.sys_poll(tid, a[0], a[1] as usize, a[2] as i32 as i64),
            nr::PPOLL => {
                let timeout = if a[2] == 0 {
                    -1
                } else {
                    match self.read_timespec(pid, a[2]) {
                        Ok(ns) => (ns / 1_000_000) as i64,
                        Err(e) => return err(e),
                    }
                };
                self.with_call_mask(tid, a[3], a[4], |k| {
                    k.sys_poll(tid, a[0], a[1] as usize, timeout)
                })
            }
            nr::SELECT => self.sys_select(tid, a[0], a[1], a[2], a[3], a[4], false),
            nr::PSELECT6 => {
                // The sixth argument points at { sigset pointer, its size }.
                let (mask, size) = if a[5] == 0 {
                    (0, 0)
                } else {
                    match self.space_mut(pid).and_then(|s| {
                        Ok((uaccess::read_u64(s, a[5])?, uaccess::read_u64(s, a[5] + 8)?))
                    }) {
                        Ok(v) => v,
                        Err(e) => return err(e),
                    }
                };
                self.with_call_mask(tid, mask, size, |k| {
                    k.sys_select(tid, a[0], a[1], a[2], a[3], a[4], true)
                })
            }
            nr::GETDENTS64 => self.sys_getdents64(pid, a[0] as i32 as i64, a[1], a[2] as usize),
            nr::GETDENTS => err(ENOSYS),
            nr::EPOLL_CREATE if a[0] as i32 <= 0 => err(EINVAL),
            nr::EPOLL_CREATE => self.sys_epoll_create(pid, 0),
            nr::EPOLL_CREATE1 => self.sys_epoll_create(pid, a[0]),
            nr::EPOLL_CTL => {
                self.sys_epoll_ctl(pid, a[0] as i32 as i64, a[1], a[2] as i32 as i64, a[3])
            }
            nr::EPOLL_WAIT => self.sys_epoll_wait(
                tid,
                a[0] as i32 as i64,
                a[1],
                a[2] as i32 as i64,
                a[3] as i32 as i64,
            ),
            nr::EPOLL_PWAIT => self.with_call_mask(tid, a[4], a[5], |k| {
                k.sys_epoll_wait(
                    tid,
                    a[0] as i32 as i64,
                    a[1],
                    a[2] as i32 as i64,
                    a[3] as i32 as i64,
                )
            }),
            nr::EPOLL_PWAIT2 => {
                let timeout = if a[3] == 0 {
                    -1
                } else {
                    match self.read_timespec(pid, a[3]) {
                        Ok(ns) => ns.div_ceil(1_000_000) as i64,
                        Err(e) => return err(e),
                    }
                };
                self.with_call_mask(tid, a[4], a[5], |k| {
                    k.sys_epoll_wait(tid, a[0] as i32 as i64, a[1], a[2] as i32 as i64, timeout)
                })
            }
            nr::EVENTFD => self.sys_eventfd(pid, a[0], 0),
            nr::EVENTFD2 => self.sys_eventfd(pid, a[0], a[1]),
            nr::SIGNALFD => self.sys_signalfd(pid, a[0] as i32 as i64, a[1], a[2], 0),
            nr::SIGNALFD4 => self.sys_signalfd(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::TIMERFD_CREATE => self.sys_timerfd_create(pid, a[0], a[1]),
            nr::TIMERFD_SETTIME => self.sys_timerfd_settime(pid, a[0] as i64, a[1], a[2], a[3]),
            nr::TIMERFD_GETTIME => self.sys_timerfd_gettime(pid, a[0] as i64, a[1]),
            // Names in /tmp's tmpfs change; the host's files are seen
            // read-only until storage serves files (EROFS).
            nr::MKNOD => self.sys_mknodat(pid, AT_FDCWD, a[0], a[1]),
            nr::MKNODAT => self.sys_mknodat(pid, a[0] as i32 as i64, a[1], a[2]),
            nr::MKDIR => self.sys_mkdirat(pid, AT_FDCWD, a[0], a[1]),
            nr::MKDIRAT => self.sys_mkdirat(pid, a[0] as i32 as i64, a[1], a[2]),
            nr::RMDIR => self.sys_unlinkat(pid, AT_FDCWD, a[0], 0x200),
            nr::UNLINK => self.sys_unlinkat(pid, AT_FDCWD, a[0], 0),
            nr::UNLINKAT => self.sys_unlinkat(pid, a[0] as i32 as i64, a[1], a[2]),
            nr::RENAME => self.sys_renameat(pid, (AT_FDCWD, a[0]), (AT_FDCWD, a[1]), 0),
            nr::RENAMEAT => self.sys_renameat(
                pid,
                (a[0] as i32 as i64, a[1]),
                (a[2] as i32 as i64, a[3]),
                0,
            ),
            nr::RENAMEAT2 => self.sys_renameat(
                pid,
                (a[0] as i32 as i64, a[1]),
                (a[2] as i32 as i64, a[3]),
                a[4],
            ),
            nr::LINK => self.sys_linkat(pid, (AT_FDCWD, a[0]), (AT_FDCWD, a[1]), 0),
            nr::LINKAT => self.sys_linkat(
                pid,
                (a[0] as i32 as i64, a[1]),
                (a[2] as i32 as i64, a[3]),
                a[4],
            ),
            nr::SYMLINK => self.sys_symlinkat(pid, a[0], AT_FDCWD, a[1]),
            nr::SYMLINKAT => self.sys_symlinkat(pid, a[0], a[1] as i32 as i64, a[2]),
            nr::CHMOD => self.sys_chmod(pid, AT_FDCWD, Some(a[0]), a[1]),
            nr::FCHMOD => self.sys_chmod(pid, a[0] as i32 as i64, None, a[1]),
            nr::FCHMODAT => self.sys_chmod(pid, a[0] as i32 as i64, Some(a[1]), a[2]),
            nr::FCHMODAT2 => self.sys_fchmodat2(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::CHOWN => self.sys_chown(pid, AT_FDCWD, Some(a[0]), (a[1], a[2]), true, 0),
            nr::LCHOWN => self.sys_chown(pid, AT_FDCWD, Some(a[0]), (a[1], a[2]), false, 0),
            nr::FCHOWN => self.sys_chown(pid, a[0] as i32 as i64, None, (a[1], a[2]), true, 0),
            nr::FCHOWNAT => self.sys_chown(
                pid,
                a[0] as i32 as i64,
                Some(a[1]),
                (a[2], a[3]),
                true,
                a[4],
            ),
            nr::TRUNCATE => self.sys_truncate(pid, AT_FDCWD, Some(a[0]), a[1]),
            nr::FTRUNCATE => self.sys_truncate(pid, a[0] as i32 as i64, None, a[1]),
            nr::UTIMENSAT => self.sys_utimensat(pid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::UTIME => self.sys_utimes(pid, AT_FDCWD, a[0], a[1], false),
            nr::UTIMES => self.sys_utimes(pid, AT_FDCWD, a[0], a[1], true),
            nr::FUTIMESAT => self.sys_utimes(pid, a[0] as i32 as i64, a[1], a[2], true),
            // Only socketpair's ends are sockets (socket() itself is not
            // implemented): calls on anything else answer ENOTSOCK, as
            // Linux does for a file. bash, for one, asks getpeername
            // whether stdin is a network connection, and anything but
            // ENOTSOCK means yes.
            nr::CONNECT
            | nr::ACCEPT
            | nr::ACCEPT4
            | nr::SENDTO
            | nr::RECVFROM
            | nr::SENDMSG
            | nr::RECVMSG
            | nr::SHUTDOWN
            | nr::BIND
            | nr::LISTEN
            | nr::GETSOCKNAME
            | nr::GETPEERNAME
            | nr::SETSOCKOPT
            | nr::GETSOCKOPT => self.sys_socket_call(tid, n, a),
            nr::SENDMMSG => self.sys_mmsg(tid, nr::SENDMSG, a),
            nr::RECVMMSG => self.sys_mmsg(tid, nr::RECVMSG, a),
            nr::SOCKETPAIR => self.sys_socketpair(pid, a[0], a[1], a[2], a[3]),
            nr::SOCKET => self.sys_socket(pid, a[0], a[1], a[2]),
            // Nothing in Lego's file systems waits to be written.
            // sync(2) cannot fail; a storage component that does not
            // answer has lost nothing acknowledged that a retry would save.
            nr::SYNC => {
                if self.storage {
                    let _ = self.store_sync(None);
                }
                Ret::Val(0)
            }
            nr::SYNCFS => match self.file(pid, a[0] as i32 as i64) {
                Ok(f) if matches!(f.kind, Kind::Store(_) | Kind::StoreDir(_)) => {
                    val(self.store_sync(None))
                }
                r => val(r.map(|_| 0)),
            },
            nr::STATFS => self.sys_statfs(pid, Some(a[0]), -1, a[1]),
            nr::FSTATFS => self.sys_statfs(pid, None, a[0] as i32 as i64, a[1]),
            nr::SENDFILE => self.sys_sendfile(
                tid,
                a[0] as i32 as i64,
                a[1] as i32 as i64,
                a[2],
                a[3] as usize,
            ),
            nr::FSYNC | nr::FDATASYNC => self.sys_fsync(pid, a[0] as i32 as i64),
            nr::SYNC_FILE_RANGE => {
                self.sys_sync_file_range(pid, a[0] as i32 as i64, a[1], a[2], a[3] as u32 as u64)
            }

            nr::BRK => self.sys_brk(pid, a[0]),
            nr::MMAP => self.sys_mmap(pid, a[0], a[1], a[2], a[3], a[4] as i32 as i64, a[5]),
            nr::MUNMAP => {
                // Linux's bounds (its TASK_SIZE, a page below the top of
                // the user half): a range past them is EINVAL, not an
                // unmapping of what it covers.
                const TASK_SIZE: u64 = lego_proto::process::USER_TOP_MAX - 4096;
                if a[0] > TASK_SIZE || a[1] > TASK_SIZE - a[0] || a[1] == 0 {
                    return err(EINVAL);
                }
                self.unmap_range(pid, a[0], a[1])
            }
            nr::MSYNC => {
                const MS_ASYNC: u64 = 1;
                const MS_INVALIDATE: u64 = 2;
                const MS_SYNC: u64 = 4;
                if a[0] % 4096 != 0
                    || a[2] & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
                    || a[2] & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
                {
                    return err(EINVAL);
                }
                let space = self.procs.get(&pid).map_or(0, |p| p.space);
                let end = range_end(a[0], a[1]);
                // Locked pages are not thrown away (EBUSY, as Linux).
                if a[2] & MS_INVALIDATE != 0 && self.locked_in(pid, a[0], end) {
                    const EBUSY: Errno = 16;
                    return err(EBUSY);
                }
                if let Err(e) = self.flush_shared(space, a[0], end, false) {
                    return err(e);
                }
                // As Linux: the mapped parts are written, and a range that
                // is not all mapped is ENOMEM. Shared mappings are known
                // here; anything else is asked of the home.
                let shared = self
                    .spaces
                    .get(&space)
                    .is_some_and(|e| e.space.redirects.covers(a[0], end));
                if !shared {
                    if let Err(e) = self.mapped_whole(pid, a[0], a[1]) {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            // Memory protection keys, as on a CPU without them (the guest's
            // page tables carry none): no key to allocate (ENOSPC, after
            // Linux's checks of the arguments), none to free, and
            // pkey_mprotect with key -1 is mprotect.
            nr::PKEY_ALLOC if a[0] != 0 || a[1] & !3 != 0 => err(EINVAL),
            nr::PKEY_ALLOC => {
                const ENOSPC: Errno = 28;
                err(ENOSPC)
            }
            nr::PKEY_FREE => err(EINVAL),
            nr::PKEY_MPROTECT if a[3] as i32 != -1 => err(EINVAL),
            nr::MPROTECT | nr::PKEY_MPROTECT => {
                const PROT_GROWSDOWN: u64 = 0x0100_0000;
                // PROT_GROWSUP too: no mapping grows up on x86.
                if a[2] & !7 & !PROT_GROWSDOWN != 0 {
                    return err(EINVAL);
                }
                let mut a = a;
                if a[2] & PROT_GROWSDOWN != 0 {
                    // As Linux: only a mapping that grows down (the main
                    // stack) takes it, and the change reaches down to its
                    // start (glibc makes the stack executable so).
                    let (low, high) = match self.space_mut(pid) {
                        Ok(s) => s.layout.stack,
                        Err(e) => return err(e),
                    };
                    let end = range_end(a[0], a[1]);
                    if a[0] < low || end > high || a[0] % 4096 != 0 {
                        return err(EINVAL);
                    }
                    (a[0], a[1]) = (low, end - low);
                }
                let space = self.procs.get(&pid).map_or(0, |p| p.space);
                let end = range_end(a[0], a[1]);
                if let Err(e) = self.may_protect_shared(space, a[0], end, a[2]) {
                    return err(e);
                }
                if a[2] & 2 != 0
                    && (self.read_only_attach(space, a[0], end)
                        || self
                            .spaces
                            .get(&space)
                            .is_some_and(|e| e.space.redirects.writes_forbidden(a[0], end)))
                {
                    return err(EACCES);
                }
                let r = self.mem(pid, OP_MPROTECT, a[0], a[1], 0, (a[2] & 7) as u32, 0);
                if matches!(r, Ret::Val(0)) {
                    self.protected_shared(space, a[0], end, a[2]);
                    self.protect_shared_anon(space, a[0], end, (a[2] & 7) as u32);
                }
                r
            }
            nr::MREMAP => {
                // MREMAP_FIXED (2) and MREMAP_DONTUNMAP (4): `syscall/remap.rs`.
                if a[3] & 6 != 0 {
                    return self.sys_mremap_to(pid, (a[0], a[1]), a[2], a[3], a[4]);
                }
                if a[3] & !1 != 0 {
                    return err(EINVAL);
                }
                let flags = if a[3] & 1 != 0 { FLAG_MAYMOVE } else { 0 };
                let space = self.procs.get(&pid).map_or(0, |p| p.space);
                let end = range_end(a[0], a[1]);
                // Shared memory and shared file mappings move with their
                // object (`shared_anon`).
                if self.meets_shared_anon(space, a[0], end) {
                    return self.mremap_shared(pid, space, a[0], a[1], a[2], flags);
                }
                // An old length of 0 asks for a copy of a shared mapping;
                // a private one is EINVAL, as Linux.
                if a[1] == 0 && !self.meets_shared_anon(space, a[0], a[0].saturating_add(4096)) {
                    return err(EINVAL);
                }
                let r = self.mem(pid, OP_MREMAP, a[0], a[1], a[2], 0, flags);
                if let Ret::Val(new) = r {
                    if new >= 0 {
                        self.relock_remapped(pid, a[0], a[1], new as u64, a[2]);
                        self.private_maps
                            .remapped(space, a[0], a[1], new as u64, a[2]);
                    }
                }
                r
            }
            nr::MADVISE => self.sys_madvise(pid, a[0], a[1], a[2]),
            // Locks change no page here, but are kept (`syscall/mlock.rs`).
            nr::MLOCK => self.sys_mlock(pid, a[0], a[1]),
            nr::MUNLOCK => self.sys_munlock(pid, a[0], a[1]),
            // MLOCK_ONFAULT is its one flag.
            nr::MLOCK2 if a[2] as u32 & !1 != 0 => err(EINVAL),
            nr::MLOCK2 => self.sys_mlock(pid, a[0], a[1]),
            nr::MLOCKALL => self.sys_mlockall(pid, a[0] as u32 as u64),
            nr::MUNLOCKALL => self.sys_munlockall(pid),
            nr::MINCORE => self.sys_mincore(pid, a[0], a[1], a[2]),

            nr::GETPID => Ret::Val(pid as i64),
            nr::GETTID => Ret::Val(tid as i64),
            nr::GETPPID => Ret::Val(self.procs.get(&pid).map_or(0, |p| p.ppid) as i64),
            nr::GETUID
            | nr::GETEUID
            | nr::GETGID
            | nr::GETEGID
            | nr::SETUID
            | nr::SETGID
            | nr::SETREUID
            | nr::SETREGID
            | nr::SETRESUID
            | nr::SETRESGID
            | nr::SETFSUID
            | nr::SETFSGID
            | nr::GETRESUID
            | nr::GETRESGID => self.sys_ids(pid, n, a),
            nr::GETPGID => {
                let target = if a[0] == 0 { pid } else { a[0] as Pid };
                if self.is_outside(target) {
                    return Ret::Val(OUTSIDE as i64);
                }
                val(self.procs.get(&target).map(|p| p.pgid as i64).ok_or(ESRCH))
            }
            nr::GETPGRP => Ret::Val(self.procs.get(&pid).map_or(0, |p| p.pgid) as i64),
            nr::SETPGID => val(self.setpgid(pid, a[0] as i32, a[1] as i32).map(|_| 0)),
            nr::GETSID => {
                let target = if a[0] == 0 { pid } else { a[0] as Pid };
                if self.is_outside(target) {
                    return Ret::Val(OUTSIDE as i64);
                }
                val(self.procs.get(&target).map(|p| p.sid as i64).ok_or(ESRCH))
            }
            // A group's leader cannot leave it (EPERM), as Linux: a
            // daemon forks first.
            nr::SETSID if self.procs.values().any(|p| p.pgid == pid) => err(EPERM),
            nr::SETSID => match self.procs.get_mut(&pid) {
                Some(p) => {
                    p.sid = pid;
                    p.pgid = pid;
                    Ret::Val(pid as i64)
                }
                None => err(ESRCH),
            },
            nr::UNAME => self.sys_uname(pid, a[0]),
            nr::SETHOSTNAME => self.sys_set_uts_name(pid, 0, a[0], a[1]),
            nr::SETDOMAINNAME => self.sys_set_uts_name(pid, 1, a[0], a[1]),
            nr::CLOCK_GETTIME => self.sys_clock_gettime(pid, a[0], a[1]),
            // The wall clock is the host's: setting it takes a privilege no
            // process here has (Linux's answer without CAP_SYS_TIME); the
            // other clocks cannot be set at all.
            nr::CLOCK_SETTIME => match a[0] as i32 {
                0 | 11 => err(EPERM),
                _ => err(EINVAL),
            },
            nr::SETTIMEOFDAY => err(EPERM),
            nr::CLOCK_GETRES => {
                if let Err(e) = self.clock_ns(pid, a[0]) {
                    return err(e);
                }
                if a[1] == 0 {
                    return Ret::Val(0);
                }
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, a[1], &timespec(1)).map(|_| 0)))
            }
            nr::GETTIMEOFDAY => {
                let ns = self.realtime_ns();
                let mut tv = [0u8; 16];
                tv[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
                tv[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
                // The time zone is UTC's (minutes west 0, no DST), written
                // when asked for, as Linux writes sys_tz.
                val(self.space_mut(pid).and_then(|s| {
                    if a[0] != 0 {
                        uaccess::write(s, a[0], &tv)?;
                    }
                    if a[1] != 0 {
                        uaccess::write(s, a[1], &[0u8; 8])?;
                    }
                    Ok(0)
                }))
            }
            nr::TIME => {
                let t = (self.realtime_ns() / 1_000_000_000) as i64;
                if a[0] != 0 {
                    if let Err(e) = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::write_u64(s, a[0], t as u64))
                    {
                        return err(e);
                    }
                }
                Ret::Val(t)
            }
            nr::NANOSLEEP => self.sys_nanosleep(tid, 1, 0, a[0], a[1]),
            // Past CLOCK_TAI, or the obsolete CLOCK_SGI_CYCLE: no clock.
            nr::CLOCK_NANOSLEEP if matches!(a[0] as i32, 10 | 12..) => err(EINVAL),
            nr::CLOCK_NANOSLEEP => self.sys_nanosleep(tid, a[0], a[1], a[2], a[3]),
            nr::SYSINFO => self.sys_sysinfo(pid, a[0]),
            nr::TIMES => self.sys_times(pid, a[0]),
            nr::ALARM => self.sys_alarm(pid, a[0]),
            nr::TIMER_CREATE => self.sys_timer_create(tid, a[0], a[1], a[2]),
            nr::TIMER_SETTIME => self.sys_timer_settime(pid, a[0], a[1], a[2], a[3]),
            nr::TIMER_GETTIME => self.sys_timer_gettime(pid, a[0], a[1]),
            nr::TIMER_GETOVERRUN => self.sys_timer_getoverrun(pid, a[0]),
            nr::TIMER_DELETE => self.sys_timer_delete(pid, a[0]),
            nr::SETITIMER => self.sys_setitimer(pid, a[0], a[1], a[2]),
            nr::GETITIMER => self.sys_setitimer(pid, a[0], 0, a[1]),
            nr::GETRUSAGE => self.sys_getrusage(pid, a[0] as i32 as i64, a[1]),

            nr::ARCH_PRCTL => self.sys_arch_prctl(tid, a[0], a[1]),
            nr::SET_TID_ADDRESS => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.clear_child_tid = a[0];
                }
                Ret::Val(tid as i64)
            }
            nr::SET_ROBUST_LIST => self.sys_set_robust_list(tid, a[0], a[1]),
            nr::GET_ROBUST_LIST => self.sys_get_robust_list(tid, a[0], a[1], a[2]),
            nr::PRLIMIT64 => self.sys_prlimit(pid, a[0] as Pid, a[1], a[2], a[3]),
            nr::GETRLIMIT => self.sys_prlimit(pid, 0, a[0], 0, a[1]),
            nr::SETRLIMIT => self.sys_prlimit(pid, 0, a[0], a[1], 0),
            // GRND_NONBLOCK, GRND_RANDOM and GRND_INSECURE, the last two
            // not together.
            nr::GETRANDOM if a[2] & !7 != 0 || a[2] & 6 == 6 => err(EINVAL),
            nr::GETRANDOM => {
                let len = (a[1] as usize).min(1 << 20);
                let mut buf = alloc::vec![0u8; len];
                self.rng.fill_bytes(&mut buf);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, a[0], &buf).map(|_| len as i64)))
            }
            nr::PRCTL if matches!(a[0], 21 | 22) => self.prctl_seccomp(tid, a[0], &a),
            nr::PRCTL => self.sys_prctl(tid, a),
            nr::SECCOMP => self.sys_seccomp(tid, a[0], a[1], a[2]),
            nr::CAPGET => self.sys_capget(tid, a[0], a[1]),
            nr::PROCESS_VM_READV => self.sys_process_vm(tid, false, a),
            nr::PROCESS_VM_WRITEV => self.sys_process_vm(tid, true, a),
            nr::INOTIFY_INIT => self.sys_inotify_init(pid, 0),
            nr::INOTIFY_INIT1 => self.sys_inotify_init(pid, a[0]),
            nr::INOTIFY_ADD_WATCH => {
                self.sys_inotify_add_watch(pid, a[0] as i32 as i64, a[1], a[2])
            }
            nr::INOTIFY_RM_WATCH => self.sys_inotify_rm_watch(pid, a[0] as i32 as i64, a[1]),
            nr::CAPSET => self.sys_capset(tid, a[0], a[1]),
            // 0xffffffff asks without changing it.
            nr::PERSONALITY => match self.procs.get_mut(&pid) {
                Some(p) => {
                    let old = p.personality;
                    if a[0] as u32 != u32::MAX {
                        p.personality = a[0] as u32;
                    }
                    Ret::Val(i64::from(old))
                }
                None => err(ESRCH),
            },
            nr::UMASK => match self.procs.get_mut(&pid) {
                Some(p) => {
                    let old = p.umask;
                    p.umask = (a[0] & 0o777) as u32;
                    Ret::Val(old as i64)
                }
                None => err(ESRCH),
            },
            nr::GETCWD => self.sys_getcwd(pid, a[0], a[1] as usize),
            nr::CHDIR => match self.directory_arg(pid, a[0]) {
                Ok(path) => {
                    // With its links followed, as getcwd gives it on Linux
                    // (`cd /lib` is in /usr/lib); a chrooted process keeps
                    // the name it gave.
                    let chrooted = self.procs.get(&pid).is_some_and(|p| p.root != b"/");
                    let path = match chrooted {
                        true => path,
                        false => pmon::path::walk(b"/", b"/", &path, true, &mut |prefix| {
                            self.link_of(pid, prefix)
                        })
                        .unwrap_or(path),
                    };
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.cwd = pmon::path::dev_shm_shown(path);
                    }
                    Ret::Val(0)
                }
                Err(e) => err(e),
            },
            // The root directory paths resolve in from now on (absolute
            // paths and `..` stop there), for this process and the
            // children it makes. CAP_SYS_CHROOT, as Linux.
            nr::CHROOT => {
                let path = match self.directory_arg(pid, a[0]) {
                    Ok(p) => p,
                    Err(e) => return err(e),
                };
                match self.procs.get_mut(&pid) {
                    Some(p) if !p.cred.capable(pmon::caps::SYS_CHROOT) => err(EPERM),
                    Some(p) => {
                        p.root = path;
                        Ret::Val(0)
                    }
                    None => err(ESRCH),
                }
            }
            nr::FCHDIR => match self.file(pid, a[0] as i32 as i64) {
                Ok(f)
                    if matches!(
                        f.kind,
                        Kind::HostDir(_) | Kind::StoreDir(_) | Kind::ProcDir(..)
                    ) || matches!(f.kind, Kind::Tmp(i) if self.tmp.is_directory(i)) =>
                {
                    // Search permission on it, as chdir's (not for /proc's),
                    // asked of the open file (its name may have gone).
                    if !matches!(f.kind, Kind::ProcDir(..)) && !self.overrides(pid) {
                        let owned = self.stat_of(&f).map(|st| stat_owned(&st));
                        if let Err(e) = owned.and_then(|o| self.may_enter(pid, o)) {
                            return err(e);
                        }
                    }
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.cwd = pmon::path::dev_shm_shown(f.path.clone());
                    }
                    Ret::Val(0)
                }
                Ok(_) => err(ENOTDIR),
                Err(e) => err(e),
            },
            nr::SCHED_YIELD => {
                if let Some(t) = self.threads.get(&tid) {
                    if t.state == State::Runnable && !self.runq.is_empty() {
                        // Let the others go first.
                        self.yield_now(tid);
                    }
                }
                Ret::Val(0)
            }
            nr::SCHED_SETSCHEDULER
            | nr::SCHED_SETPARAM
            | nr::SCHED_GETSCHEDULER
            | nr::SCHED_GETPARAM
            | nr::SCHED_GET_PRIORITY_MAX
            | nr::SCHED_GET_PRIORITY_MIN
            | nr::SCHED_RR_GET_INTERVAL
            | nr::SCHED_SETAFFINITY
            | nr::SCHED_GETAFFINITY
            | nr::GETPRIORITY
            | nr::SETPRIORITY
            | nr::SCHED_SETATTR
            | nr::SCHED_GETATTR
            | nr::IOPRIO_SET
            | nr::IOPRIO_GET
            | nr::SETGROUPS
            | nr::GETGROUPS => self.sys_sched(tid, n, a),
            nr::GETCPU => {
                let cpu = lego_image::cpu::current_cpu();
                let r = self.space_mut(pid).and_then(|s| {
                    if a[0] != 0 {
                        uaccess::write_u32(s, a[0], cpu)?;
                    }
                    if a[1] != 0 {
                        uaccess::write_u32(s, a[1], 0)?;
                    }
                    Ok(0)
                });
                val(r)
            }

            nr::RT_SIGACTION => self.sys_sigaction(pid, a[0] as u32, a[1], a[2], a[3]),
            nr::RT_SIGPROCMASK => self.sys_sigprocmask(tid, a[0], a[1], a[2], a[3]),
            nr::RT_SIGRETURN => match self.sigreturn(tid) {
                Ok(()) => Ret::NoReturn,
                Err(()) => {
                    self.force_signal(tid, SigInfo::fault(SIGSEGV, 0x80, 0), 0, 0);
                    Ret::NoReturn
                }
            },
            nr::RT_SIGPENDING => {
                let set = self
                    .threads
                    .get(&tid)
                    .map_or(0, |t| t.pending.iter().fold(0, |s, i| s | bit(i.signo)))
                    | self
                        .procs
                        .get(&pid)
                        .map_or(0, |p| p.pending.iter().fold(0, |s, i| s | bit(i.signo)));
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u64(s, a[0], set).map(|_| 0)))
            }
            nr::RT_SIGSUSPEND => {
                let mask = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, a[0])) {
                    Ok(m) => m,
                    Err(e) => return err(e),
                };
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.saved_mask = Some(t.sigmask);
                    t.sigmask = mask & !UNBLOCKABLE;
                }
                if self.signal_deliverable(tid) {
                    return err(EINTR);
                }
                self.block(tid, Wait::Signal, None, None, OnWake::Return(-EINTR));
                Ret::Block
            }
            nr::RT_SIGTIMEDWAIT => self.sys_sigtimedwait(tid, a[0], a[1], a[2], a[3]),
            nr::PAUSE => {
                if self.signal_deliverable(tid) {
                    return err(EINTR);
                }
                self.block(tid, Wait::Signal, None, None, OnWake::Return(-EINTR));
                Ret::Block
            }
            nr::SIGALTSTACK => self.sys_sigaltstack(tid, pid, a[0], a[1]),
            nr::KILL => self.sys_kill(pid, a[0] as i32 as i64, a[1] as u32),
            nr::PIDFD_OPEN => self.sys_pidfd_open(pid, a[0] as i32 as i64, a[1] as u32 as u64),
            nr::PIDFD_SEND_SIGNAL => self.sys_pidfd_send_signal(
                tid,
                a[0] as i32 as i64,
                a[1] as u32 as u64,
                a[2],
                a[3] as u32 as u64,
            ),
            nr::PIDFD_GETFD => self.sys_pidfd_getfd(
                pid,
                a[0] as i32 as i64,
                a[1] as i32 as i64,
                a[2] as u32 as u64,
            ),
            // A thread id or group id of 0 or less names none.
            nr::TGKILL if a[0] as i32 <= 0 || a[1] as i32 <= 0 => err(EINVAL),
            nr::TKILL if a[0] as i32 <= 0 => err(EINVAL),
            nr::TGKILL => self.sys_tkill(pid, a[0] as i32 as i64, a[1] as Tid, a[2] as u32),
            nr::TKILL => self.sys_tkill(pid, -1, a[0] as Tid, a[1] as u32),
            nr::RT_SIGQUEUEINFO => self.sys_sigqueueinfo(pid, a[0] as i32 as i64, None, a[1], a[2]),
            nr::RT_TGSIGQUEUEINFO => {
                self.sys_sigqueueinfo(pid, a[0] as i32 as i64, Some(a[1] as Tid), a[2], a[3])
            }

            nr::CLONE => self.sys_clone(tid, a[0], a[1], a[2], a[3], a[4]),
            nr::CLONE3 => self.sys_clone3(tid, a[0], a[1]),
            nr::FORK => self.sys_clone(tid, SIGCHLD as u64, 0, 0, 0, 0),
            nr::VFORK => self.sys_clone(tid, CLONE_VM | CLONE_VFORK | SIGCHLD as u64, 0, 0, 0, 0),
            nr::EXECVE => self.sys_execve(tid, a[0], a[1], a[2]),
            nr::EXECVEAT => self.sys_execveat(
                tid,
                a[0] as i32 as i64,
                a[1],
                a[2],
                a[3],
                a[4] as u32 as u64,
            ),
            nr::EXIT => {
                self.exit_thread(tid, a[0] as i32);
                Ret::NoReturn
            }
            nr::EXIT_GROUP => {
                self.kill_process(pid, signals::exited(a[0] as i32), None);
                Ret::NoReturn
            }
            nr::WAIT4 => self.sys_wait4(tid, a[0] as i32 as i64, a[1], a[2], a[3]),
            nr::WAITID => self.sys_waitid(tid, a[0], a[1] as i32 as i64, a[2], a[3]),
            nr::FUTEX => {
                self.sys_futex(tid, a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32)
            }

            nr::REMAP_FILE_PAGES => {
                self.sys_remap_file_pages(pid, (a[0], a[1]), a[2], a[3])
            }
            nr::IO_SETUP => self.sys_io_setup(pid, a[0] & 0xffff_ffff, a[1]),
            nr::IO_DESTROY => self.sys_io_destroy(pid, a[0]),
            nr::IO_SUBMIT => self.sys_io_submit(tid, a[0], a[1] as i64, a[2]),
            nr::IO_GETEVENTS => {
                self.sys_io_getevents(tid, a[0], (a[1] as i64, a[2] as i64), a[3], a[4])
            }
            nr::IO_PGETEVENTS => {
                // The last argument: { const sigset_t *sigmask; size_t size; }.
                let (mask, size) = if a[5] == 0 {
                    (0, 0)
                } else {
                    match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_u64s::<2>(s, a[5]))
                    {
                        Ok([mask, size]) => (mask, size),
                        Err(e) => return err(e),
                    }
                };
                self.with_call_mask(tid, mask, size, |k| {
                    k.sys_io_getevents(tid, a[0], (a[1] as i64, a[2] as i64), a[3], a[4])
                })
            }
            nr::IO_CANCEL => self.sys_io_cancel(pid, a[1]),
            nr::RSEQ | nr::MEMBARRIER | nr::IO_URING_SETUP => err(ENOSYS),
            // Lego's mounts are set when it starts (its tmpfs, /proc,
            // storage or the host's files): no file system type can be
            // mounted (ENODEV, as from a kernel built without it), and the
            // other changes are refused as in a container without
            // CAP_SYS_ADMIN (Docker's default). Programs read both and go
            // on; ENOSYS made stress-ng's binderfs stressor fail.
            nr::MOUNT | nr::FSOPEN => {
                const ENODEV: Errno = 19;
                // MS_REMOUNT, MS_BIND, MS_MOVE and the propagation flags.
                const CHANGES: u64 = 32 | 4096 | 8192 | 0xf << 17;
                let change = n == nr::MOUNT && a[3] & CHANGES != 0;
                err(if change { EPERM } else { ENODEV })
            }
            nr::UMOUNT2
            | nr::PIVOT_ROOT
            | nr::OPEN_TREE
            | nr::MOVE_MOUNT
            | nr::FSCONFIG
            | nr::FSMOUNT
            | nr::FSPICK
            | nr::MOUNT_SETATTR
            // No swap either: a processor's memory is its ExCache and the
            // memory components; swapon and swapoff are refused as in a
            // container (ENOSYS failed stress-ng's swap stressor).
            | nr::SWAPON
            | nr::SWAPOFF => err(EPERM),
            // A process cannot restart or power off its processor (nor
            // the rack), as a container without CAP_SYS_BOOT; Linux checks
            // the magic numbers first (EINVAL), and stress-ng's reboot
            // stressor checks that order.
            nr::REBOOT => {
                const MAGIC1: u64 = 0xfee1_dead;
                const MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
                let magic_ok = a[0] as u32 as u64 == MAGIC1 && MAGIC2.contains(&(a[1] as u32 as u64));
                err(if magic_ok { EPERM } else { EINVAL })
            }
            nr::UNSHARE => self.sys_unshare(pid, a[0]),
            nr::SYSLOG => self.sys_syslog(tid, a[0] as i32, a[2] as i32),
            // File handles: no file system here gives them out, as a Linux
            // file system without export operations answers; so no handle
            // is valid.
            nr::NAME_TO_HANDLE_AT => {
                const EOPNOTSUPP: Errno = 95;
                err(EOPNOTSUPP)
            }
            nr::OPEN_BY_HANDLE_AT => {
                const ESTALE: Errno = 116;
                err(ESTALE)
            }
            other => {
                *self.missing.entry(other).or_insert(0) += 1;
                err(ENOSYS)
            }
        }
    }

    /// unshare(2). A process's descriptor table, working directory, root,
    /// umask and System V undo list are its own here, not shared with
    /// other processes, so CLONE_FILES, CLONE_FS and CLONE_SYSVSEM change
    /// nothing for a process of one thread, and CLONE_THREAD, CLONE_SIGHAND
    /// and CLONE_VM are allowed only there, as Linux allows them. Decided:
    /// the threads of a process share these here, so a thread of several
    /// cannot take its own (EINVAL); namespaces are not offered (EPERM, as
    /// in a container without CAP_SYS_ADMIN: `unshare -r` and sandboxes
    /// that try one fall back). Unknown flags are EINVAL.
    fn sys_unshare(&mut self, pid: Pid, flags: u64) -> Ret {
        const CLONE_VM: u64 = 0x100;
        const CLONE_FS: u64 = 0x200;
        const CLONE_FILES: u64 = 0x400;
        const CLONE_SIGHAND: u64 = 0x800;
        const CLONE_THREAD: u64 = 0x1_0000;
        const CLONE_SYSVSEM: u64 = 0x4_0000;
        // NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
        const NAMESPACES: u64 = 0x80
            | 0x2_0000
            | 0x200_0000
            | 0x400_0000
            | 0x800_0000
            | 0x1000_0000
            | 0x2000_0000
            | 0x4000_0000;
        const PER_THREAD: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
        if flags & !(PER_THREAD | CLONE_SYSVSEM | NAMESPACES) != 0 {
            return err(EINVAL);
        }
        let alone = self.procs.get(&pid).is_some_and(|p| p.threads.len() <= 1);
        if flags & PER_THREAD != 0 && !alone {
            return err(EINVAL);
        }
        if flags & NAMESPACES != 0 {
            return err(EPERM);
        }
        Ret::Val(0)
    }

    /// rt_sigtimedwait (sigwait, sigwaitinfo, sigtimedwait): takes a
    /// pending signal of the set, or waits for one (the set is normally
    /// blocked, so it stays pending rather than run a handler); a signal
    /// outside the set that a handler takes ends the wait with EINTR, the
    /// timeout with EAGAIN.
    fn sys_sigtimedwait(&mut self, tid: Tid, set: u64, info: u64, timeout: u64, size: u64) -> Ret {
        let pid = self.pid_of(tid);
        if size != 8 {
            return err(EINVAL);
        }
        let mask = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, set)) {
            Ok(m) => m & !UNBLOCKABLE,
            Err(e) => return err(e),
        };
        let timeout_ns = match self.read_timeout(pid, timeout) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        if let Some(got) = self.take_pending(tid, mask) {
            if info != 0 {
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, info, &got.encode()))
                {
                    return err(e);
                }
            }
            return Ret::Val(got.signo as i64);
        }
        let deadline = self.wait_deadline(tid, timeout_ns);
        if deadline.is_some_and(|d| d <= self.now_ns()) {
            return err(EAGAIN);
        }
        // Another deliverable signal ends the wait at once.
        if self.signal_deliverable(tid) {
            return err(EINTR);
        }
        self.block(
            tid,
            Wait::Signals(mask),
            deadline,
            Some(-EAGAIN),
            OnWake::Retry,
        );
        Ret::Block
    }

    fn yield_now(&mut self, tid: Tid) {
        // The trap handler queues it at the back, after the others.
        if let Some(t) = self.threads.get_mut(&tid) {
            t.yielded = true;
        }
    }

    // ---- descriptors -------------------------------------------------

    /// Whether call `n` would use an O_PATH descriptor as an open file,
    /// which Linux refuses (EBADF): such a descriptor only names its file,
    /// for fstat, fstatfs, fchdir, dup, close, F_GETFL and F_SETFD, a
    /// directory to start from, readlinkat and the /proc/self/fd link.
    fn names_only(&self, pid: Pid, n: u64, a: &[u64; 6]) -> bool {
        const MAP_ANONYMOUS: u64 = 0x20;
        // fcntl's F_DUPFD, F_GETFD, F_SETFD, F_GETFL and F_DUPFD_CLOEXEC.
        const NAMING_FCNTLS: [u64; 5] = [0, 1, 2, 3, 1030];
        let fd = match n {
            nr::FSYNC
            | nr::FDATASYNC
            | nr::FLOCK
            | nr::FCHMOD
            | nr::FCHOWN
            | nr::FTRUNCATE
            | nr::FALLOCATE
            | nr::FADVISE64
            | nr::READAHEAD
            | nr::LSEEK
            | nr::GETDENTS64
            | nr::SYNC_FILE_RANGE
            | nr::IOCTL
            | nr::SYNCFS => a[0],
            nr::FCNTL if !NAMING_FCNTLS.contains(&(a[1] & 0xffff_ffff)) => a[0],
            nr::MMAP if a[3] & MAP_ANONYMOUS == 0 => a[4],
            // futimens: utimensat of no path.
            nr::UTIMENSAT if a[1] == 0 && a[0] as i32 as i64 != AT_FDCWD => a[0],
            _ => return false,
        };
        self.file(pid, fd as i32 as i64)
            .is_ok_and(|f| f.flags.get() & O_PATH != 0)
    }

    fn file(&self, pid: Pid, fd: i64) -> Result<Arc<OpenFile>, Errno> {
        self.procs.get(&pid).ok_or(ESRCH)?.fds.get(fd).cloned()
    }

    fn dup(&mut self, pid: Pid, fd: i64, from: usize, cloexec: bool) -> Result<i64, Errno> {
        self.proc_mut(pid)?.fds.dup(fd, from, cloexec)
    }

    fn dup_to(&mut self, pid: Pid, old: i64, new: i64, cloexec: bool) -> Result<i64, Errno> {
        let replaced = self.proc_mut(pid)?.fds.dup_to(old, new, cloexec)?;
        if let Some(f) = replaced {
            self.descriptor_closed(pid, &f);
            self.release_file(f);
        }
        Ok(new)
    }

    /// close_range(first, last, flags): every open descriptor in
    /// [first, last] closed, or with CLOSE_RANGE_CLOEXEC marked close-on-exec.
    /// CLOSE_RANGE_UNSHARE asks for a table of the caller's own first; a
    /// process's table is its own here (threads share it as CLONE_FILES
    /// does, and unsharing it is not offered), so the range is applied to it.
    fn sys_close_range(&mut self, pid: Pid, first: u32, last: u32, flags: u64) -> Ret {
        const CLOSE_RANGE_UNSHARE: u64 = 1 << 1;
        const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;
        if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
            return err(EINVAL);
        }
        let fds: Vec<i64> = match self.procs.get(&pid) {
            Some(p) => p
                .fds
                .iter()
                .map(|(fd, _)| fd)
                .filter(|&fd| fd >= first as i64 && fd <= last as i64)
                .collect(),
            None => return err(ESRCH),
        };
        for fd in fds {
            if flags & CLOSE_RANGE_CLOEXEC != 0 {
                if let Some(p) = self.procs.get_mut(&pid) {
                    let _ = p.fds.set_cloexec(fd, true);
                }
            } else {
                // close_range reports no write-back error of a file: the
                // descriptors are gone all the same, as close says.
                let _ = self.sys_close(pid, fd);
            }
        }
        Ret::Val(0)
    }

    /// What a close of one of process `pid`'s descriptors of `f` ends
    /// whether or not it was `f`'s last (Linux's flush): the process's
    /// record locks on the file and its notification on a message queue.
    pub(in crate::kernel) fn descriptor_closed(&mut self, pid: Pid, f: &OpenFile) {
        self.close_drops_locks(pid, f);
        if let Kind::MQueue(id) = f.kind {
            self.mq_descriptor_closed(pid, id);
        }
    }

    fn sys_close(&mut self, pid: Pid, fd: i64) -> Ret {
        match self.proc_mut(pid).and_then(|p| p.fds.close(fd)) {
            Ok(f) => {
                self.descriptor_closed(pid, &f);
                let file = match f.kind {
                    Kind::Store(ino) => Some(ino),
                    _ => None,
                };
                self.release_file(f);
                // A write-back error is told at close too (as NFS does):
                // the descriptor is gone all the same.
                if let Some(ino) = file {
                    self.settle_posted(0);
                    if let Some(e) = self.write_errors.remove(&ino) {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    fn sys_pipe(&mut self, pid: Pid, fds_ptr: u64, flags: u64) -> Ret {
        const O_DIRECT: u32 = 0o40000;
        if flags & !((O_CLOEXEC | O_NONBLOCK | O_DIRECT) as u64) != 0 {
            return err(EINVAL);
        }
        let id = self.next_pipe;
        self.next_pipe += 1;
        let packets = flags & O_DIRECT as u64 != 0;
        self.pipes.insert(
            id,
            if packets {
                Pipe::packets()
            } else {
                Pipe::new()
            },
        );
        let nb = (flags as u32) & O_NONBLOCK;
        let cloexec = flags & O_CLOEXEC as u64 != 0;
        let r = OpenFile::new(Kind::PipeRead(id), O_RDONLY | nb);
        // F_GETFL shows O_DIRECT on the write end only, as Linux's (its
        // writes make the packets; reads take what they find).
        let w = OpenFile::new(
            Kind::PipeWrite(id),
            O_WRONLY | nb | (flags as u32 & O_DIRECT),
        );
        self.install_pair(pid, [r, w], cloexec, fds_ptr, &[id])
    }

    /// Installs two new open files as the lowest free descriptors and
    /// writes their numbers (two ints) at `out`; on failure nothing is
    /// left: the descriptors are closed and the `pipes` made for them go.
    fn install_pair(
        &mut self,
        pid: Pid,
        [first, second]: [Arc<OpenFile>; 2],
        cloexec: bool,
        out: u64,
        pipes: &[usize],
    ) -> Ret {
        let installed = self.proc_mut(pid).and_then(|p| {
            let a = p.fds.install(first, cloexec, 0)?;
            match p.fds.install(second, cloexec, 0) {
                Ok(b) => Ok((a, b)),
                Err(e) => {
                    let _ = p.fds.close(a);
                    Err(e)
                }
            }
        });
        let (a, b) = match installed {
            Ok(v) => v,
            Err(e) => {
                for id in pipes {
                    self.pipes.remove(id);
                }
                return err(e);
            }
        };
        let mut fds = [0u8; 8];
        fds[..4].copy_from_slice(&(a as i32).to_le_bytes());
        fds[4..].copy_from_slice(&(b as i32).to_le_bytes());
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, out, &fds))
        {
            Ok(()) => Ret::Val(0),
            Err(e) => {
                for fd in [a, b] {
                    if let Ok(f) = self.proc_mut(pid).and_then(|p| p.fds.close(fd)) {
                        self.release_file(f);
                    }
                }
                err(e)
            }
        }
    }

    fn sys_fcntl(&mut self, pid: Pid, fd: i64, cmd: u64, arg: u64) -> Ret {
        const F_GETLEASE: u64 = 1025;
        const F_DUPFD: u64 = 0;
        const F_GETFD: u64 = 1;
        const F_SETFD: u64 = 2;
        const F_GETFL: u64 = 3;
        const F_SETFL: u64 = 4;
        const F_DUPFD_CLOEXEC: u64 = 1030;
        const F_GETPIPE_SZ: u64 = 1032;
        const F_SETPIPE_SZ: u64 = 1031;
        const F_ADD_SEALS: u64 = 1033;
        const F_GET_SEALS: u64 = 1034;
        const F_SETOWN: u64 = 8;
        const F_GETOWN: u64 = 9;
        const F_SETSIG: u64 = 10;
        const F_GETSIG: u64 = 11;
        const F_SETOWN_EX: u64 = 15;
        const F_GETOWN_EX: u64 = 16;
        const F_NOTIFY: u64 = 1026;
        match cmd {
            F_NOTIFY => return self.sys_fcntl_notify(pid, fd, arg),
            F_SETFL => {
                let f = match self.file(pid, fd) {
                    Ok(f) => f,
                    Err(e) => return err(e),
                };
                let keep = f.flags.get() & !(O_APPEND | O_NONBLOCK);
                f.flags.set(keep | (arg as u32 & (O_APPEND | O_NONBLOCK)));
                self.set_async(&f, fd, arg as u32 & sigio::O_ASYNC != 0);
                return Ret::Val(0);
            }
            F_SETOWN_EX | F_GETOWN_EX => {
                return self.fcntl_owner_ex(pid, fd, cmd == F_SETOWN_EX, arg)
            }
            _ => {}
        }
        let Ok(p) = self.proc_mut(pid) else {
            return err(ESRCH);
        };
        match cmd {
            // Who hears of the descriptor by signal (dnotify's and
            // O_ASYNC's, `sigio`): a pid, or a process group as its
            // negation.
            F_SETOWN => val(p.fds.get(fd).map(|f| {
                let who = arg as i32;
                f.owner.set(if who < 0 {
                    (pmon::fd::F_OWNER_PGRP, who.wrapping_neg())
                } else {
                    (pmon::fd::F_OWNER_PID, who)
                });
                0
            })),
            F_GETOWN => val(p.fds.get(fd).map(|f| match f.owner.get() {
                (pmon::fd::F_OWNER_PGRP, g) => -i64::from(g),
                (_, id) => i64::from(id),
            })),
            F_SETSIG if arg > 64 => err(EINVAL),
            F_SETSIG => val(p.fds.get(fd).map(|f| {
                f.sig.set(arg as u32);
                0
            })),
            F_GETSIG => val(p.fds.get(fd).map(|f| i64::from(f.sig.get()))),
            F_DUPFD | F_DUPFD_CLOEXEC => val(p.fds.dup(fd, arg as usize, cmd == F_DUPFD_CLOEXEC)),
            F_GETFD => val(p.fds.cloexec(fd).map(|c| c as i64)),
            F_SETFD => val(p.fds.set_cloexec(fd, arg & 1 != 0).map(|_| 0)),
            // Without the monitor's own bits (a socket shut down or
            // connecting), which no program set.
            F_GETFL => val(p
                .fds
                .get(fd)
                .map(|f| (f.flags.get() & !pmon::fd::STATUS_BITS) as i64)),
            // Seals: on tmpfs files (memfd's `tmp::sys_memfd_create`).
            F_GET_SEALS | F_ADD_SEALS => match p.fds.get(fd).map(|f| (f.kind, f.writable())) {
                Ok((Kind::Tmp(ino), writable)) => {
                    if cmd == F_GET_SEALS {
                        Ret::Val(self.seals_of(ino) as i64)
                    } else {
                        val(self.add_seals(ino, writable, arg as u32).map(|_| 0))
                    }
                }
                Ok(_) => err(EINVAL),
                Err(e) => err(e),
            },
            F_GETPIPE_SZ | F_SETPIPE_SZ => match p.fds.get(fd).map(|f| f.kind) {
                Ok(Kind::PipeRead(id) | Kind::PipeWrite(id)) => {
                    let Some(pipe) = self.pipes.get_mut(&id) else {
                        return err(EBADF);
                    };
                    if cmd == F_GETPIPE_SZ {
                        return Ret::Val(pipe.capacity() as i64);
                    }
                    let r = pipe.set_capacity(arg);
                    // Writers waiting for room look again.
                    self.pipe_changed(id);
                    val(r.map(|n| n as i64))
                }
                Ok(_) => err(EBADF),
                Err(e) => err(e),
            },
            // No leases are given (F_SETLEASE is EINVAL), so none is
            // held.
            F_GETLEASE => val(p.fds.get(fd).map(|_| 2)),
            // Record locks are `lock::sys_fcntl_lock`'s.
            _ => err(EINVAL),
        }
    }

    /// One read from a file, into a kernel buffer; Ok(None): wait.
    fn read_file(&mut self, f: &Arc<OpenFile>, len: usize) -> Result<Option<Vec<u8>>, Errno> {
        if !f.readable() {
            return Err(EBADF);
        }
        match f.kind {
            Kind::DevNull => Ok(Some(Vec::new())),
            Kind::DevZero | Kind::DevFull => Ok(Some(alloc::vec![0u8; len])),
            Kind::DevUrandom => {
                let mut b = alloc::vec![0u8; len];
                self.rng.fill_bytes(&mut b);
                Ok(Some(b))
            }
            Kind::Stdio(0, run) if self.stdin_back.get(&run).is_some_and(|b| !b.is_empty()) => {
                let back = self.stdin_back.entry(run).or_default();
                let n = len.min(back.len());
                Ok(Some(back.drain(..n).collect()))
            }
            Kind::Stdio(0, run) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::read_stdin(run, &mut b);
                if n == -lego_proto::program::EAGAIN {
                    return if f.nonblocking() {
                        Err(EAGAIN)
                    } else {
                        Ok(None)
                    };
                }
                if n < 0 {
                    return Err(-n);
                }
                b.truncate(n as usize);
                Ok(Some(b))
            }
            Kind::Stdio(..) => Err(EBADF),
            Kind::PipeRead(id) | Kind::Socket(id, _) | Kind::UnixDgram(id) => {
                let waited_open = f.flags.get() & pmon::fd::WAITED_OPEN_FLAG != 0;
                self.pipe_read(id, len, f.nonblocking(), waited_open)
            }
            // As Linux reads an unconnected stream socket.
            Kind::Unix(_) => Err(EINVAL),
            Kind::Dgram(id) => self.udp_read(f, id, len),
            Kind::PtyMaster(id) => self.pty_read(f, id, true, len),
            Kind::PtySlave(id) => self.pty_read(f, id, false, len),
            Kind::PipeWrite(_) => Err(EBADF),
            Kind::Host(h) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::read(h, f.offset.get(), &mut b);
                if n < 0 {
                    return Err(-n);
                }
                b.truncate(n as usize);
                f.offset.set(f.offset.get() + n as u64);
                Ok(Some(b))
            }
            Kind::HostDir(_) => Err(EISDIR),
            Kind::Generated => {
                let b = generated_at(f, f.offset.get(), len);
                f.offset.set(f.offset.get() + b.len() as u64);
                Ok(Some(b))
            }
            Kind::Tmp(ino) => self.tmp_read(f, ino, len).map(Some),
            Kind::Store(ino) => self.store_read(f, ino, len).map(Some),
            Kind::StoreDir(_) => Err(EISDIR),
            Kind::EventFd(id) => self.eventfd_read(f, id, len),
            Kind::SignalFd(id) => match self.caller() {
                Some(tid) => self.signalfd_read(tid, f, id, len),
                None => Err(EINVAL),
            },
            Kind::Inotify(id) => self.inotify_read(f, id, len),
            Kind::Netlink(id) => self.netlink_read(f, id, len),
            Kind::MQueue(id) => self.mq_read(f, id, len).map(Some),
            Kind::Epoll(_) | Kind::PidFd(..) => Err(EINVAL),
            Kind::ProcDir(..) => Err(EISDIR),
        }
    }

    fn sys_lseek(&mut self, pid: Pid, fd: i64, off: i64, whence: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match f.kind {
            Kind::DevNull | Kind::DevZero | Kind::DevFull | Kind::DevUrandom => Ret::Val(0),
            Kind::Host(_)
            | Kind::HostDir(_)
            | Kind::Generated
            | Kind::Tmp(_)
            | Kind::Store(_)
            | Kind::StoreDir(_)
            | Kind::ProcDir(..) => {
                const SEEK_DATA: u64 = 3;
                const SEEK_HOLE: u64 = 4;
                let size = || -> Result<i64, Errno> { self.file_size(&f).map(|s| s as i64) };
                let base = match whence {
                    0 => 0,
                    1 => f.offset.get() as i64,
                    2 => match size() {
                        Ok(s) => s,
                        Err(e) => return err(e),
                    },
                    // As Linux's generic answer for a file system that
                    // does not report holes: all of the file is data, and
                    // its end is the one hole.
                    SEEK_DATA | SEEK_HOLE => {
                        let end = match size() {
                            Ok(s) => s,
                            Err(e) => return err(e),
                        };
                        if off < 0 || off >= end {
                            return err(ENXIO);
                        }
                        let at = if whence == SEEK_DATA { off } else { end };
                        f.offset.set(at as u64);
                        return Ret::Val(at);
                    }
                    _ => return err(EINVAL),
                };
                let Some(new) = base.checked_add(off).filter(|&n| n >= 0) else {
                    return err(EINVAL);
                };
                f.offset.set(new as u64);
                Ret::Val(new)
            }
            _ => err(ESPIPE),
        }
    }

    fn sys_getdents64(&mut self, pid: Pid, fd: i64, buf: u64, len: usize) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        if let Kind::Tmp(ino) = f.kind {
            return self.tmp_getdents(pid, &f, ino, buf, len);
        }
        if let Kind::StoreDir(ino) = f.kind {
            return self.store_getdents(pid, &f, ino, buf, len);
        }
        if let Kind::ProcDir(target, started) = f.kind {
            if f.path.ends_with(b"/task") {
                return self.task_dir_getdents(pid, &f, target, started, buf, len);
            }
            return self.proc_dir_getdents(pid, &f, target, started, buf, len);
        }
        let Kind::HostDir(h) = f.kind else {
            return err(ENOTDIR);
        };
        if f.path == b"/proc" {
            return self.proc_getdents(pid, &f, h, buf, len);
        }
        if let Some(target) = pmon::path::fd_dir_of(&f.path) {
            return self.fd_getdents(pid, target, &f, (buf, len), procpid::DT_LNK);
        }
        if let Some(target) = pmon::path::fdinfo_dir_of(&f.path) {
            return self.fd_getdents(pid, target, &f, (buf, len), procpid::DT_REG);
        }
        match host::readdir(h, f.offset.get(), len) {
            Ok((bytes, next)) => {
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, buf, &bytes))
                {
                    return err(e);
                }
                f.offset.set(next);
                Ret::Val(bytes.len() as i64)
            }
            Err(e) => err(e),
        }
    }

    /// A path argument that must name a directory (chdir, chroot), made
    /// absolute with its links followed: ENOTDIR for anything else.
    /// The directory chdir or chroot names: it must be one (ENOTDIR) the
    /// caller may search (EACCES).
    fn directory_arg(&mut self, pid: Pid, ptr: u64) -> Result<Vec<u8>, Errno> {
        let path = self
            .path_arg(pid, AT_FDCWD, ptr)
            .and_then(|p| self.follow(p))?;
        self.may_enter(pid, self.owned_at(&path)?)?;
        Ok(path)
    }

    /// ENOTDIR unless `f` is a directory's, EACCES unless `pid` may search
    /// it (chdir, fchdir, chroot).
    fn may_enter(&self, pid: Pid, f: pmon::cred::Owned) -> Result<(), Errno> {
        if f.mode & 0o170000 != 0o040000 {
            return Err(ENOTDIR);
        }
        self.may(pid, f, pmon::cred::MAY_EXEC)
    }

    /// Which file of the tmpfs or storage `full` names now (its inode,
    /// tagged as the lock table tags them), or None (the host's, or none).
    pub(in crate::kernel) fn file_identity(&self, full: &[u8]) -> Option<u64> {
        match self.tmp_node(full) {
            Some(ino) => Some(lock::tmp_key(ino)),
            None if self.on_storage(full) => super::store::stat(full, true)
                .ok()
                .map(|st| lock::store_key(st.ino)),
            None => None,
        }
    }

    /// The owner, group and mode of the file at `full` (absolute,
    /// followed): the tmpfs's, storage's or the host's.
    pub(super) fn owned_at(&self, full: &[u8]) -> Result<pmon::cred::Owned, Errno> {
        match self.tmp_node(full) {
            Some(ino) => self.tmp.stat(ino).map(|st| pmon::cred::Owned::from(&st)),
            None if self.on_storage_to_look(full) => {
                super::store::stat(full, true).map(|st| pmon::cred::Owned::from(&st))
            }
            None => host::stat_path(full, true).map(|st| pmon::cred::Owned::from(&st)),
        }
    }

    /// EACCES unless process `pid` may search every directory a walk of
    /// `full` from `from` looks a name up in (`pmon::search`), as Linux's
    /// walk; nothing is asked of a process with CAP_DAC_OVERRIDE or
    /// CAP_DAC_READ_SEARCH. A directory missing, or a file where one
    /// should be, ends the checks: the call says ENOENT or ENOTDIR.
    fn may_search(&self, pid: Pid, full: &[u8], from: &[u8], relative: bool) -> Result<(), Errno> {
        match self.procs.get(&pid) {
            Some(p) if self.searches(pid) => self.may_search_walk(p, full, from, relative, 0),
            _ => Ok(()),
        }
    }

    /// Whether `pid`'s walks are checked: it has neither CAP_DAC_OVERRIDE
    /// nor CAP_DAC_READ_SEARCH.
    fn searches(&self, pid: Pid) -> bool {
        self.procs.get(&pid).is_some_and(|p| {
            !p.cred.capable(pmon::caps::DAC_OVERRIDE)
                && !p.cred.capable(pmon::caps::DAC_READ_SEARCH)
        })
    }

    /// `may_search`'s walk. A symbolic link of storage or the host on
    /// the way (which the walk here leaves to them to follow) has its
    /// target's directories checked too, as Linux's walk passes them.
    fn may_search_walk(
        &self,
        p: &Process,
        full: &[u8],
        from: &[u8],
        relative: bool,
        links: u32,
    ) -> Result<(), Errno> {
        // Past Linux's 40 links the call's own walk says ELOOP.
        const MAX_LINKS: u32 = 40;
        let now = self.now_ns();
        for dir in pmon::search::walked_dirs(full, from, relative) {
            // /proc, /sys and /dev answer for themselves.
            if [&b"/proc"[..], b"/sys", b"/dev"]
                .iter()
                .any(|top| dir.starts_with(top) && matches!(dir.get(top.len()), None | Some(b'/')))
            {
                continue;
            }
            let kept = self.dir_cache.borrow().get(p.vnode, dir, now);
            let (owned, link) = match kept {
                Some(k) => k,
                None => match self.dir_entry(dir) {
                    Ok(k) => {
                        // (The tmpfs's are the monitor's own: not kept.)
                        if self.tmp_node(dir).is_none() {
                            self.dir_cache
                                .borrow_mut()
                                .put(p.vnode, dir, k.clone(), now);
                        }
                        k
                    }
                    Err(_) => return Ok(()),
                },
            };
            if let Some(target) = link {
                if links >= MAX_LINKS {
                    return Ok(());
                }
                let parent = &dir[..dir.iter().rposition(|&c| c == b'/').unwrap_or(0).max(1)];
                let mut to = pmon::path::resolve(parent, &target);
                to.extend_from_slice(b"/.");
                self.may_search_walk(p, &to, b"/", false, links + 1)?;
                continue;
            }
            if owned.mode & 0o170000 != 0o040000 {
                return Ok(());
            }
            if !p.cred.may_access(&p.groups, owned, pmon::cred::MAY_EXEC) {
                return Err(EACCES);
            }
        }
        Ok(())
    }

    /// The owner, group and mode of the name `full` itself (a link not
    /// followed), and a link's target.
    fn dir_entry(&self, full: &[u8]) -> Result<pmon::search::Entry, Errno> {
        const S_IFLNK: u32 = 0o120000;
        let (owned, link) = match self.tmp_node(full) {
            Some(ino) => {
                let st = self.tmp.stat(ino)?;
                let link = self.tmp.readlink(ino).ok().map(<[u8]>::to_vec);
                (pmon::cred::Owned::from(&st), link)
            }
            None if self.on_storage_to_look(full) => {
                let st = super::store::stat(full, false)?;
                let link = (st.mode & 0o170000 == S_IFLNK)
                    .then(|| self.store_readlink(full).ok())
                    .flatten();
                (pmon::cred::Owned::from(&st), link)
            }
            None => {
                let st = host::stat_path(full, false)?;
                let link = (st.mode & 0o170000 == S_IFLNK)
                    .then(|| host::readlink(full).ok())
                    .flatten();
                (pmon::cred::Owned::from(&st), link)
            }
        };
        Ok((owned, link))
    }

    /// A path argument, made absolute against the working directory or a
    /// directory descriptor.
    fn path_arg(&mut self, pid: Pid, dirfd: i64, ptr: u64) -> Result<Vec<u8>, Errno> {
        let p = uaccess::read_cstr(self.space_mut(pid)?, ptr, pmon::path::PATH_MAX - 1)?;
        self.resolve(pid, dirfd, &p)
    }

    fn resolve(&self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<Vec<u8>, Errno> {
        if p.is_empty() {
            return Err(ENOENT);
        }
        let root = self.root_of(pid);
        let base = if p.first() == Some(&b'/') || dirfd == AT_FDCWD {
            self.procs
                .get(&pid)
                .map(|pr| pr.cwd.clone())
                .unwrap_or_else(|| b"/".to_vec())
        } else {
            let f = self.file(pid, dirfd)?;
            if !self.is_directory_file(&f) {
                return Err(ENOTDIR);
            }
            pmon::path::dev_shm_shown(f.path.clone())
        };
        // A `..` is taken after the links before it (a directory
        // descriptor's path may hold some; a working directory does not).
        let mut link = |prefix: &[u8]| self.link_of(pid, prefix);
        let base = if dirfd != AT_FDCWD && p.first() != Some(&b'/') && pmon::path::has_dot_dot(p) {
            pmon::path::walk(b"/", b"/", &base, true, &mut link)?
        } else {
            base
        };
        let mut walked = pmon::path::walk(&root, &base, p, false, &mut link)?;
        // Past a link of /proc or /dev/fd (/proc/self/cwd/x, /dev/fd/3/x):
        // the links before the last name are followed, as Linux's walk.
        if pmon::path::through_magic_link(&walked) {
            let last = pmon::path::split_last(&walked);
            let mut dir = pmon::path::walk(&root, b"/", last.dir, true, &mut link)?;
            if dir.last() != Some(&b'/') {
                dir.push(b'/');
            }
            dir.extend_from_slice(last.name);
            walked = dir;
        }
        // The tmpfs's symbolic links on the way are followed here; the
        // last name is the caller's to follow (`follow`).
        let relative = p.first() != Some(&b'/');
        let walked = pmon::path::dev_shm_alias(pmon::path::thread_self(walked, pid, self.caller));
        // (Kept only for a caller whose search is checked: root's paths
        // are not copied.)
        let kept = self.searches(pid).then(|| walked.clone());
        let full = match self.tmp_links(walked, false) {
            Ok(full) => full,
            // A file or a long name on the way in the tmpfs: a directory
            // before it the caller may not search says EACCES first, as
            // Linux's walk asks may_lookup before each lookup.
            Err(e) => {
                if let Some(walked) = kept {
                    self.may_search(pid, &walked, if relative { &base } else { &root }, relative)?;
                }
                return Err(e);
            }
        };
        // Decided: requests to storage and to the host's files carry the
        // whole path, which Linux bounds by PATH_MAX, so a path whose
        // absolute form is longer is ENAMETOOLONG there, even where Linux
        // would reach it relative to a deep working directory. The tmpfs
        // (/tmp, /dev/shm) is the monitor's own and takes any depth.
        if full.len() >= pmon::path::PATH_MAX && tmp::below_tmp(&full).is_none() {
            return Err(ENAMETOOLONG);
        }
        self.may_search(pid, &full, if relative { &base } else { &root }, relative)?;
        Ok(full)
    }

    /// What a path walk asks of `full` (absolute, no link before its
    /// last name) before a `..` leaves it ([`pmon::path::walk`]): the
    /// target if it is a symbolic link of the tmpfs, storage or the host,
    /// or /proc's self, thread-self and a process's cwd and root; a
    /// missing name (ENOENT) or one under a file (ENOTDIR) ends the walk
    /// there, as on Linux.
    fn link_of(&self, pid: Pid, full: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
        let full = pmon::path::dev_shm_alias(full.to_vec());
        let ends = |e: Errno| match e {
            ENOENT | ENOTDIR => Err(e),
            _ => Ok(None),
        };
        match self.task_name(pid, pmon::path::name(&full, pid)) {
            Name::SelfDir if full == b"/proc/thread-self" => Ok(Some(
                alloc::format!("{pid}/task/{}", self.caller).into_bytes(),
            )),
            Name::SelfDir => Ok(Some(alloc::format!("{pid}").into_bytes())),
            name @ (Name::Cwd(_) | Name::Root(_)) => Ok(self.link_target(pid, name).ok()),
            // An open directory's name; names cannot go on past a file.
            Name::Fd(t, n) => match self.fd_file(pid, t, n) {
                Ok(f) if self.is_directory_file(&f) && f.path.first() == Some(&b'/') => {
                    Ok(Some(pmon::path::dev_shm_shown(f.path.clone())))
                }
                Ok(_) => Err(ENOTDIR),
                Err(e) => Err(e),
            },
            Name::Host => match self.tmp_node(&full) {
                Some(ino) if self.tmp.is_symlink(ino) => {
                    Ok(self.tmp.readlink(ino).ok().map(<[u8]>::to_vec))
                }
                Some(_) => Ok(None),
                None if self.on_storage_to_look(&full) => {
                    self.store_readlink(&full).map(Some).or_else(ends)
                }
                None => host::readlink(&full).map(Some).or_else(ends),
            },
            _ => Ok(None),
        }
    }

    /// Whether open file `f` is a directory (one a path may start from).
    fn is_directory_file(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::HostDir(_) | Kind::ProcDir(..) | Kind::StoreDir(_) => true,
            Kind::Tmp(ino) => self.tmp.is_directory(ino),
            _ => false,
        }
    }

    /// A resolved path with its last name followed too, if it is a
    /// symbolic link of the tmpfs (storage follows its own).
    fn follow(&self, full: Vec<u8>) -> Result<Vec<u8>, Errno> {
        self.tmp_links(full, true)
    }

    /// One write; Ok(None): wait.
    fn write_file(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        data: &[u8],
    ) -> Result<Option<usize>, Errno> {
        if !f.writable() {
            return Err(EBADF);
        }
        match f.kind {
            Kind::DevNull | Kind::DevZero | Kind::DevUrandom => Ok(Some(data.len())),
            Kind::DevFull => Err(ENOSPC),
            Kind::Stdio(fd @ (1 | 2), run) => {
                let n = host::write(run, fd, data);
                if n == -lego_proto::program::EPIPE {
                    self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                    return Err(EPIPE);
                }
                if n < 0 {
                    return Err(-n);
                }
                Ok(Some(n as usize))
            }
            Kind::Stdio(..) => Err(EBADF),
            Kind::PipeWrite(id) => self.pipe_write(tid, id, data, f.nonblocking()),
            Kind::Socket(rx, tx) if self.send_takes_reset(rx, tx) => Err(ECONNRESET),
            Kind::Socket(..) if pmon::fd::shut_for_writing(f) => {
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
            Kind::Socket(_, id) => self.pipe_write(tid, id, data, f.nonblocking()),
            // (A TCP socket's write as its send: a refused connect's
            // error, else EPIPE and SIGPIPE.)
            Kind::Unix(id) if self.unix.inet(id).is_some() => {
                if let Some(e) = self.take_connect_error(id) {
                    return Err(e);
                }
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
            Kind::Unix(_) => Err(unix::ENOTCONN),
            Kind::UnixDgram(id) => self.unix_dgram_write(tid, f, id, data),
            Kind::PtyMaster(id) => self.pty_write(f, id, true, data),
            Kind::PtySlave(id) => self.pty_write(f, id, false, data),
            Kind::Dgram(id) => self.udp_write(id, data),
            Kind::PipeRead(_) => Err(EBADF),
            Kind::Generated => self.proc_write(tid, f, data).map(Some),
            Kind::Host(_) | Kind::HostDir(_) => Err(EBADF),
            Kind::Tmp(ino) => {
                let append = f.flags.get() & O_APPEND != 0;
                let data = &data[..self.write_room(f, f.offset.get(), data.len(), append)?];
                self.tmp_write(f, ino, data).map(Some)
            }
            Kind::Store(ino) => {
                let append = f.flags.get() & O_APPEND != 0;
                let data = &data[..self.write_room(f, f.offset.get(), data.len(), append)?];
                self.store_write(f, ino, data).map(Some)
            }
            Kind::StoreDir(_) => Err(EBADF),
            Kind::EventFd(id) => self.eventfd_write(f, id, data),
            Kind::SignalFd(_) | Kind::Inotify(_) => Err(EINVAL),
            Kind::Netlink(id) => match self.netlink_send(id, data) {
                Ret::Val(n) if n < 0 => Err(-n),
                Ret::Val(n) => Ok(Some(n as usize)),
                _ => Ok(Some(data.len())),
            },
            // Linux's mqueue files have no write.
            Kind::Epoll(_) | Kind::PidFd(..) | Kind::MQueue(_) => Err(EINVAL),
            Kind::ProcDir(..) => Err(EBADF),
        }
    }

    /// A pipe's bytes (a pipe's read end, a socket's receiving pipe: one
    /// message of a message socket); Ok(None): wait. Descriptors sent with
    /// them are closed: a read has no room for them. `waited_open`: a
    /// named pipe's reader opened without O_NONBLOCK (`WAITED_OPEN_FLAG`).
    fn pipe_read(
        &mut self,
        id: usize,
        len: usize,
        nonblocking: bool,
        waited_open: bool,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Ok(Some(Vec::new()));
        };
        let stream = p.mode() == pmon::pipe::Mode::Stream;
        match p.take(len, false) {
            Ok(t) => {
                if t.whole > 0 || !stream {
                    self.pipe_changed(id);
                }
                for f in t.rights {
                    self.release_file(f);
                }
                Ok(Some(t.data))
            }
            // A named pipe no writer has opened yet, opened O_NONBLOCK:
            // Linux's read says end of file (its poll says nothing, which
            // `readable` keeps). Opened blocking, Linux's open would still
            // be waiting for a writer: EAGAIN below.
            Err(Io::Wait) if nonblocking && p.writers == 0 && stream && !waited_open => {
                Ok(Some(Vec::new()))
            }
            Err(Io::Wait) if nonblocking => Err(EAGAIN),
            Err(Io::Wait) => Ok(None),
            Err(Io::Reset) => Err(ECONNRESET),
            Err(_) => Err(EPIPE),
        }
    }

    /// Bytes into a pipe (a pipe's write end, a socket's sending pipe);
    /// Ok(None): wait. No reader left: SIGPIPE and EPIPE.
    fn pipe_write(
        &mut self,
        tid: Tid,
        id: usize,
        data: &[u8],
        nonblocking: bool,
    ) -> Result<Option<usize>, Errno> {
        self.pipe_send(tid, id, data, Vec::new(), nonblocking, None, None)
    }

    /// [`Self::pipe_write`] with descriptors going along (SCM_RIGHTS), by
    /// a sender named `from` (a named datagram socket). A datagram
    /// socket whose peer is gone refuses, without SIGPIPE, as Linux's
    /// does.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pipe_send(
        &mut self,
        tid: Tid,
        id: usize,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        nonblocking: bool,
        from: Option<pmon::unixsock::Name>,
        creds: Option<pmon::cmsg::Ucred>,
    ) -> Result<Option<usize>, Errno> {
        // A message always says who sent it; a stream's bytes only when
        // the send claimed credentials (`Pipe::send_as`).
        let message = self
            .pipes
            .get(&id)
            .is_some_and(|p| p.mode() != pmon::pipe::Mode::Stream);
        let creds = match creds {
            None if message => Some(self.ucred_of(self.pid_of(tid))),
            c => c,
        };
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(EPIPE);
        };
        let datagrams = p.mode() == pmon::pipe::Mode::Datagrams;
        match p.send_as(data, rights, from, creds) {
            Io::Done(n) => {
                self.pipe_changed(id);
                Ok(Some(n))
            }
            Io::Wait if nonblocking => Err(EAGAIN),
            Io::Wait => Ok(None),
            Io::TooBig => Err(EMSGSIZE),
            Io::Reset => Err(ECONNRESET),
            Io::Broken if datagrams => Err(ECONNREFUSED),
            Io::Broken => {
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
        }
    }

    /// What a thread that must wait to read (or write) `f` waits for.
    fn wait_of(&self, f: &Arc<OpenFile>, write: bool) -> Wait {
        match f.kind {
            Kind::SignalFd(id) => Wait::Signals(self.signalfd_mask(id)),
            Kind::Dgram(id) => Wait::Dgram(id),
            Kind::Socket(rx, tx) => Wait::Pipe(if write { tx } else { rx }),
            // A writer waits for room at its peer.
            Kind::UnixDgram(id) => Wait::Pipe(match self.unix.dgram_peer(id) {
                Some((peer, _)) if write => peer,
                _ => id,
            }),
            Kind::PipeRead(id) | Kind::PipeWrite(id) => Wait::Pipe(id),
            Kind::PtyMaster(id) | Kind::PtySlave(id) => Wait::Pipe(id),
            Kind::EventFd(id) | Kind::Inotify(id) => Wait::EventFd(id),
            Kind::Netlink(id) => Wait::Dgram(id),
            _ => Wait::Stdin,
        }
    }

    /// Gives back bytes [`Self::read_file`] took that the reader could not
    /// store (a bad buffer): no data is lost to an EFAULT, as in Linux.
    fn unread(&mut self, f: &Arc<OpenFile>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match f.kind {
            Kind::Stdio(0, run) => {
                let mut back = data.to_vec();
                let old = self.stdin_back.entry(run).or_default();
                back.append(old);
                *old = back;
            }
            Kind::PipeRead(id) | Kind::Socket(id, _) | Kind::UnixDgram(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.unread(data);
                }
            }
            Kind::EventFd(id) => {
                if let (Some(e), Ok(b)) = (self.eventfds.get_mut(&id), data.try_into()) {
                    let _ = e.write(u64::from_le_bytes(b));
                }
            }
            Kind::Host(_) | Kind::Generated | Kind::Tmp(_) | Kind::Store(_) => f
                .offset
                .set(f.offset.get().saturating_sub(data.len() as u64)),
            _ => {}
        }
    }

    fn sys_read(&mut self, tid: Tid, fd: i64, buf: u64, len: usize) -> Ret {
        match self.file(self.pid_of(tid), fd) {
            Ok(f) => self.read_into(tid, &f, &[(buf, len)]),
            Err(e) => err(e),
        }
    }

    fn sys_write(&mut self, tid: Tid, fd: i64, buf: u64, len: usize) -> Ret {
        match self.file(self.pid_of(tid), fd) {
            Ok(f) => self.write_from(tid, &f, &[(buf, len)], false),
            Err(e) => err(e),
        }
    }

    fn sys_readv(&mut self, tid: Tid, fd: i64, iov: u64, count: usize) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match self.iovecs(pid, iov, count) {
            Ok(vecs) => self.read_into(tid, &f, &vecs),
            Err(e) => err(e),
        }
    }

    fn sys_writev(&mut self, tid: Tid, fd: i64, iov: u64, count: usize) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match self.iovecs(pid, iov, count) {
            Ok(vecs) => self.write_from(tid, &f, &vecs, false),
            Err(e) => err(e),
        }
    }

    fn iovecs(&mut self, pid: Pid, iov: u64, count: usize) -> Result<Vec<(u64, usize)>, Errno> {
        if count > 1024 {
            return Err(EINVAL);
        }
        let raw = uaccess::read_vec(self.space_mut(pid)?, iov, count * 16)?;
        let vecs: Vec<(u64, usize)> = raw
            .chunks_exact(16)
            .map(|c| {
                let base = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
                let len = u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
                (base, len as usize)
            })
            .collect();
        // A length that is negative as an ssize_t is EINVAL, as Linux's.
        if vecs.iter().any(|&(_, len)| len > isize::MAX as usize) {
            return Err(EINVAL);
        }
        Ok(vecs)
    }

    /// read/readv of `f` scattered over `vecs`, 1 MiB at a time: a regular
    /// file fills the buffers up to its end in one call, as on Linux (a
    /// pipe, socket or terminal gives what it has). A buffer that turns out
    /// bad keeps what was stored before it and gives the rest back to the
    /// file (EFAULT if nothing was stored); no data means the thread waits
    /// until the file has some.
    fn read_into(&mut self, tid: Tid, f: &Arc<OpenFile>, vecs: &[(u64, usize)]) -> Ret {
        let regular = matches!(
            f.kind,
            Kind::Store(_) | Kind::Tmp(_) | Kind::Host(_) | Kind::Generated
        );
        let total = Self::io_total(vecs);
        let mut done = 0;
        loop {
            let ask = (total - done).min(1 << 20);
            let data = match self.read_file(f, ask) {
                Ok(Some(d)) => d,
                Ok(None) if done > 0 => return Ret::Val(done as i64),
                Ok(None) => {
                    let (deadline, on_timeout) = match self.io_deadline(tid, f, false) {
                        Ok(d) => d,
                        Err(e) => return err(e),
                    };
                    self.block(
                        tid,
                        self.wait_of(f, false),
                        deadline,
                        on_timeout,
                        OnWake::Retry,
                    );
                    return Ret::Block;
                }
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            };
            let got = data.len();
            if let Err((put, e)) = self.scatter(self.pid_of(tid), vecs, done, &data) {
                self.unread(f, &data[put..]);
                return if done + put > 0 {
                    Ret::Val((done + put) as i64)
                } else {
                    err(e)
                };
            }
            done += got;
            if !regular || got < ask || done >= total {
                return Ret::Val(done as i64);
            }
        }
    }

    /// Copies `data` into the process's buffers `vecs` from byte `skip` of
    /// them on; on a fault, the bytes copied before it and the error.
    pub(super) fn scatter(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        skip: usize,
        data: &[u8],
    ) -> Result<(), (usize, Errno)> {
        let (mut at, mut start) = (0, 0usize);
        for &(base, vlen) in vecs {
            if at == data.len() {
                break;
            }
            let end = start.saturating_add(vlen);
            if end > skip {
                let from = skip.saturating_sub(start);
                let n = (vlen - from).min(data.len() - at);
                self.space_mut(pid)
                    .and_then(|s| uaccess::write(s, base + from as u64, &data[at..at + n]))
                    .map_err(|e| (at, e))?;
                at += n;
            }
            start = end;
        }
        Ok(())
    }

    /// statfs and fstatfs: the tmpfs's, or the host file system's marked
    /// read-only (as Lego sees it); pipes, epoll and eventfds get their
    /// pseudo file systems' magic numbers.
    fn sys_statfs(&mut self, pid: Pid, path: Option<u64>, fd: i64, buf: u64) -> Ret {
        const ST_RDONLY: u64 = 1;
        let host_of = |p: &[u8]| {
            host::statfs(p).map(|mut w| {
                w[10] |= ST_RDONLY;
                w
            })
        };
        let pseudo = |magic: u64| {
            let mut w = [0u64; 15];
            (w[0], w[1], w[8], w[9]) = (magic, 4096, 255, 4096);
            w
        };
        let words = match path {
            Some(p) => match self
                .path_arg(pid, AT_FDCWD, p)
                .and_then(|p| self.lookup_follow(pid, AT_FDCWD, &p))
            {
                // (/proc/PID/{exe,cwd,root} are followed.)
                Ok((full, name)) => match name {
                    Name::Hidden => Err(ENOENT),
                    Name::Fd(t, n) => match self.fd_file(pid, t, n) {
                        Ok(f) => self.statfs_of(&f, host_of, pseudo),
                        Err(e) => Err(e),
                    },
                    Name::Maps(..)
                    | Name::MemInfo
                    | Name::SelfDir
                    | Name::FdDir(_)
                    | Name::FdInfoDir(_)
                    | Name::FdInfo(..)
                    | Name::Proc(..)
                    | Name::ProcDir(_)
                    | Name::TaskDir(_)
                    | Name::Task(..)
                    | Name::TaskFile(..) => host_of(b"/proc"),
                    _ if self.tmp_node(&full).is_some() => Ok(self.tmp_statfs()),
                    // The name must be there (ENOENT, ENOTDIR) as on Linux.
                    _ if self.on_storage(&full) => {
                        super::store::stat(&full, true).and_then(|_| self.store_statfs())
                    }
                    _ => host_of(&full),
                },
                Err(e) => Err(e),
            },
            None => match self.file(pid, fd) {
                Ok(f) => self.statfs_of(&f, host_of, pseudo),
                Err(e) => Err(e),
            },
        };
        match words {
            Ok(w) => {
                let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, buf, &bytes).map(|_| 0)))
            }
            Err(e) => err(e),
        }
    }

    fn statfs_of(
        &self,
        f: &OpenFile,
        host_of: impl Fn(&[u8]) -> Result<[u64; 15], Errno>,
        pseudo: impl Fn(u64) -> [u64; 15],
    ) -> Result<[u64; 15], Errno> {
        match f.kind {
            Kind::Tmp(_) => Ok(self.tmp_statfs()),
            Kind::Store(_) | Kind::StoreDir(_) => self.store_statfs(),
            Kind::Host(_) | Kind::HostDir(_) => host_of(procpid::on_host(f)),
            Kind::Generated | Kind::ProcDir(..) => host_of(b"/proc"),
            Kind::DevNull | Kind::DevZero | Kind::DevFull | Kind::DevUrandom => host_of(b"/dev"),
            // DEVPTS_SUPER_MAGIC.
            Kind::PtyMaster(_) | Kind::PtySlave(_) => Ok(pseudo(0x1cd1)),
            // PIPEFS_MAGIC and ANON_INODE_FS_MAGIC.
            Kind::PipeRead(_) | Kind::PipeWrite(_) | Kind::Stdio(..) => Ok(pseudo(0x5049_5045)),
            // SOCKFS_MAGIC.
            Kind::Socket(..)
            | Kind::Unix(_)
            | Kind::UnixDgram(_)
            | Kind::Dgram(_)
            | Kind::Netlink(_) => Ok(pseudo(0x534f_434b)),
            Kind::Epoll(_)
            | Kind::EventFd(_)
            | Kind::SignalFd(_)
            | Kind::Inotify(_)
            | Kind::PidFd(..) => Ok(pseudo(0x0904_1934)),
            // MQUEUE_MAGIC.
            Kind::MQueue(_) => Ok(pseudo(0x1980_0202)),
        }
    }

    /// Linux's most bytes one read or write moves (INT_MAX rounded down to
    /// a page).
    const MAX_RW_COUNT: usize = 0x7fff_f000;

    /// The bytes a call on the buffers `vecs` moves at most.
    pub(super) fn io_total(vecs: &[(u64, usize)]) -> usize {
        vecs.iter()
            .fold(0usize, |t, &(_, len)| t.saturating_add(len))
            .min(Self::MAX_RW_COUNT)
    }

    /// write/writev of `f` gathered from `vecs`: the bytes are copied from
    /// the process 1 MiB at a time; a regular file takes them all in one
    /// call, as on Linux, and so does a blocking pipe or stream socket,
    /// waiting for room (a terminal or datagram takes what its write
    /// takes); a full pipe makes the thread wait. `dont_wait`: a send with
    /// MSG_DONTWAIT (or a non-blocking vmsplice) on a blocking descriptor.
    pub(super) fn write_from(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        vecs: &[(u64, usize)],
        dont_wait: bool,
    ) -> Ret {
        let regular = matches!(f.kind, Kind::Store(_) | Kind::Tmp(_));
        // A blocking write to a pipe or stream socket writes everything,
        // waiting for room as often as it takes (a signal or a send
        // timeout ends it with the count written so far).
        let whole = !(f.nonblocking() || dont_wait)
            && matches!(f.kind, Kind::PipeWrite(_) | Kind::Socket(..));
        let total = Self::io_total(vecs);
        let mut done = match self.threads.get(&tid) {
            Some(t) if t.retrying && whole => t.written.min(total),
            _ => 0,
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            t.written = 0;
        }
        loop {
            let data = match self.gather(self.pid_of(tid), vecs, done, (total - done).min(1 << 20))
            {
                Ok(d) => d,
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            };
            match self.write_file(tid, f, &data) {
                Ok(Some(n)) => {
                    done += n;
                    if done >= total || !(regular || whole) || (regular && n < data.len()) {
                        return Ret::Val(done as i64);
                    }
                }
                Ok(None) if done > 0 && !whole => return Ret::Val(done as i64),
                Ok(None) => {
                    let (deadline, mut on_timeout) = match self.io_deadline(tid, f, true) {
                        Ok(d) => d,
                        Err(_) if done > 0 => return Ret::Val(done as i64),
                        Err(e) => return err(e),
                    };
                    if done > 0 {
                        on_timeout = Some(done as i64);
                        if let Some(t) = self.threads.get_mut(&tid) {
                            t.written = done;
                        }
                    }
                    self.block(
                        tid,
                        self.wait_of(f, true),
                        deadline,
                        on_timeout,
                        OnWake::Retry,
                    );
                    return Ret::Block;
                }
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            }
        }
    }

    /// `len` bytes of the process's buffers `vecs`, from byte `skip` of
    /// them on, copied once.
    pub(super) fn gather(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        skip: usize,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut data = alloc::vec![0u8; len];
        let (mut at, mut start) = (0, 0usize);
        for &(base, vlen) in vecs {
            if at == len {
                break;
            }
            let end = start.saturating_add(vlen);
            if end > skip {
                let from = skip.saturating_sub(start);
                let n = (vlen - from).min(len - at);
                let s = self.space_mut(pid)?;
                uaccess::read(s, base + from as u64, &mut data[at..at + n])?;
                at += n;
            }
            start = end;
        }
        Ok(data)
    }

    /// An interface ioctl on a socket (`pmon::ifreq`): SIOCGIFCONF's
    /// `struct ifconf` at `arg`, or the `struct ifreq` there, read whole
    /// and written back whole, as Linux copies it.
    fn interface_ioctl(&mut self, pid: Pid, req: u64, arg: u64) -> Result<i64, Errno> {
        use pmon::ifreq;
        let s = self.space_mut(pid)?;
        if req == ifreq::SIOCGIFCONF {
            let mut conf = [0u8; ifreq::IFCONF];
            uaccess::read(s, arg, &mut conf)?;
            let len = i32::from_le_bytes([conf[0], conf[1], conf[2], conf[3]]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&conf[8..16]);
            let buf = u64::from_le_bytes(at);
            let (records, len) = ifreq::conf(buf != 0, len);
            if !records.is_empty() {
                uaccess::write(s, buf, &records)?;
            }
            uaccess::write_u32(s, arg, len as u32)?;
            return Ok(0);
        }
        let mut ifr = [0u8; ifreq::IFREQ];
        uaccess::read(s, arg, &mut ifr)?;
        ifreq::answer(req, &mut ifr)?;
        uaccess::write(s, arg, &ifr)?;
        Ok(0)
    }

    fn sys_ioctl(&mut self, tid: Tid, pid: Pid, fd: i64, req: u64, arg: u64) -> Ret {
        const TCGETS: u64 = 0x5401;
        const TIOCGWINSZ: u64 = 0x5413;
        const TIOCGPGRP: u64 = 0x540f;
        const FIONREAD: u64 = 0x541b;
        const SIOCOUTQ: u64 = 0x5411;
        // Whether the next read starts at the urgent mark.
        const SIOCATMARK: u64 = 0x8905;
        const FIONBIO: u64 = 0x5421;
        const FIOCLEX: u64 = 0x5451;
        const FIONCLEX: u64 = 0x5450;
        const FIOASYNC: u64 = 0x5452;
        const RNDGETENTCNT: u64 = 0x8004_5200;
        const RNDADDTOENTCNT: u64 = 0x4004_5201;
        const RNDADDENTROPY: u64 = 0x4008_5203;
        const RNDZAPENTCNT: u64 = 0x5204;
        const RNDCLEARPOOL: u64 = 0x5206;
        const RNDRESEEDCRNG: u64 = 0x5207;
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let _ = tid;
        if let (Kind::PtyMaster(id) | Kind::PtySlave(id), false) = (
            f.kind,
            matches!(req, FIONBIO | FIOCLEX | FIONCLEX | FIOASYNC),
        ) {
            let master = matches!(f.kind, Kind::PtyMaster(_));
            return self.pty_ioctl(pid, id, master, req, arg);
        }
        match (req, f.kind) {
            (TCGETS | TIOCGWINSZ, Kind::Stdio(n, run)) => {
                let size = if req == TCGETS { 60 } else { 8 };
                let mut buf = alloc::vec![0u8; size];
                let r = host::ioctl(run, n, req, &mut buf);
                if r < 0 {
                    return Ret::Val(r);
                }
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &buf).map(|_| 0)))
            }
            (TIOCGPGRP, Kind::Stdio(..)) => err(ENOTTY),
            // random(4)'s ioctls: the entropy count (RNDGETENTCNT) is a
            // full pool's, as a Linux 5.18+ kernel that has been seeded
            // says; those that feed or reset the pool take CAP_SYS_ADMIN
            // and change nothing (the pool is the host's).
            (RNDGETENTCNT, Kind::DevUrandom) => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, arg, 256).map(|_| 0))),
            (
                RNDADDTOENTCNT | RNDADDENTROPY | RNDZAPENTCNT | RNDCLEARPOOL | RNDRESEEDCRNG,
                Kind::DevUrandom,
            ) => {
                let admin = self
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.cred.capable(pmon::caps::SYS_ADMIN));
                if !admin {
                    return err(EPERM);
                }
                if !matches!(req, RNDADDTOENTCNT | RNDADDENTROPY) {
                    return Ret::Val(0);
                }
                // The count (and RNDADDENTROPY's struct rand_pool_info: the
                // count, the buffer's size, the buffer) is read as Linux
                // reads it: EFAULT, or EINVAL for a negative number.
                let space = match self.space_mut(pid) {
                    Ok(s) => s,
                    Err(e) => return err(e),
                };
                let count = match uaccess::read_u32(space, arg) {
                    Ok(c) => c as i32,
                    Err(e) => return err(e),
                };
                if count < 0 {
                    return err(EINVAL);
                }
                if req == RNDADDENTROPY {
                    let size = match uaccess::read_u32(space, arg + 4) {
                        Ok(n) => n as i32,
                        Err(e) => return err(e),
                    };
                    if size < 0 {
                        return err(EINVAL);
                    }
                    if let Err(e) = uaccess::read_vec(space, arg + 8, (size as usize).min(1 << 16))
                    {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            // The interface ioctls on a socket (if_indextoname,
            // if_nametoindex, ifconfig): the one interface, lo.
            (
                req,
                Kind::Socket(..)
                | Kind::Unix(_)
                | Kind::UnixDgram(_)
                | Kind::Dgram(_)
                | Kind::Netlink(_),
            ) if pmon::ifreq::is_interface_request(req) => val(self.interface_ioctl(pid, req, arg)),
            (FIONREAD, Kind::Inotify(id)) => {
                let n = self.inotifies.get(&id).map_or(0, |i| i.pending_bytes()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            // (A FIFO open for reading and writing is a Socket whose two
            // pipes are one: no socket to ask.)
            (SIOCATMARK, Kind::Unix(id)) if self.unix.inet(id).is_some() => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, arg, 0).map(|_| 0))),
            (SIOCATMARK, Kind::Socket(id, tx)) if id != tx => {
                let at = self.pipes.get(&id).is_some_and(|p| p.at_mark()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, at).map(|_| 0)))
            }
            // A pipe's write end says what its read end would (Linux
            // answers the same on both).
            (
                FIONREAD,
                Kind::PipeRead(id)
                | Kind::PipeWrite(id)
                | Kind::Socket(id, _)
                | Kind::UnixDgram(id),
            ) => {
                let n = self.pipes.get(&id).map_or(0, |p| p.pending()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            // Bytes sent and not yet taken by the peer: on the loopback a
            // TCP connection's are acknowledged at once (Linux counts
            // unacknowledged bytes), an AF_UNIX socket's wait in its
            // peer's queue.
            (SIOCOUTQ, Kind::Socket(rx, tx)) if rx != tx => {
                let tcp = self.pipes.get(&rx).is_some_and(|p| p.tcp);
                let n = if tcp {
                    0
                } else {
                    self.pipes.get(&tx).map_or(0, |p| p.pending()) as u32
                };
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            (FIONBIO, _) => {
                let on = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v != 0,
                    Err(e) => return err(e),
                };
                let flags = f.flags.get();
                f.flags.set(if on {
                    flags | O_NONBLOCK
                } else {
                    flags & !O_NONBLOCK
                });
                Ret::Val(0)
            }
            (FIOASYNC, _) => {
                let on = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v != 0,
                    Err(e) => return err(e),
                };
                self.set_async(&f, fd, on);
                Ret::Val(0)
            }
            (FIOCLEX | FIONCLEX, _) => val(self
                .proc_mut(pid)
                .and_then(|p| p.fds.set_cloexec(fd, req == FIOCLEX))
                .map(|_| 0)),
            // random(4) answers what it does not know with EINVAL.
            (_, Kind::DevUrandom) => err(EINVAL),
            _ => err(ENOTTY),
        }
    }

    /// struct stat for an open file.
    fn stat_of(&mut self, f: &Arc<OpenFile>) -> Result<[u8; 144], Errno> {
        let (mode, size, rdev, ino, dev, blksize) = match f.kind {
            Kind::Stdio(n, run) => {
                let st = host::stat(run, n).map_err(|e| -e)?;
                (st.mode, st.size, st.rdev, st.ino, st.dev, st.blksize)
            }
            Kind::PipeRead(id) | Kind::PipeWrite(id) => {
                (S_IFIFO | 0o600, 0, 0, pipe_ino(id), 0xc, 4096)
            }
            // A named pipe opened for reading and writing.
            Kind::Socket(rx, tx) if rx == tx => (S_IFIFO | 0o600, 0, 0, pipe_ino(rx), 0xc, 4096),
            Kind::Socket(id, _)
            | Kind::Unix(id)
            | Kind::UnixDgram(id)
            | Kind::Dgram(id)
            | Kind::Netlink(id) => (0o140777, 0, 0, socket_ino(id), 0x8, 4096),
            Kind::DevNull => (S_IFCHR | 0o666, 0, (1 << 8) | 3, 5, 5, 4096),
            Kind::DevZero => (S_IFCHR | 0o666, 0, (1 << 8) | 5, 6, 5, 4096),
            Kind::DevFull => (S_IFCHR | 0o666, 0, (1 << 8) | 7, 8, 5, 4096),
            Kind::DevUrandom => (S_IFCHR | 0o666, 0, (1 << 8) | 9, 7, 5, 4096),
            Kind::PtyMaster(id) | Kind::PtySlave(id) => {
                let master = matches!(f.kind, Kind::PtyMaster(_));
                let (mode, rdev, ino) = self.pty_stat(id, master);
                let mut st = stat_bytes(mode, 0, rdev, ino, 6, 1024, self.realtime_ns());
                // st_uid and st_gid.
                let (uid, gid) = self.pty_owner(id, master);
                st[28..32].copy_from_slice(&uid.to_le_bytes());
                st[32..36].copy_from_slice(&gid.to_le_bytes());
                return Ok(st);
            }
            // As procfs: a regular file of size 0, read to its end.
            Kind::Generated => (S_IFREG | 0o444, 0, 0, 0x2000, 0x16, 1024),
            // As Linux's mqueue file system: the status line's size.
            Kind::MQueue(id) => {
                let mode = self.mqueues.queues.get(&id).map_or(0, |q| q.mode);
                (S_IFREG | mode, 80, 0, 0x6000 + id as u64, 0x13, 4096)
            }
            // Any process's directory is lego-vmm's own, for its fstat.
            Kind::ProcDir(..) => {
                return host::stat_path(b"/proc/self", true).map(|st| file_stat_bytes(&st));
            }
            Kind::Host(_) | Kind::HostDir(_) => {
                return host::stat_path(procpid::on_host(f), true).map(|st| file_stat_bytes(&st));
            }
            Kind::Tmp(ino) => return self.tmp_stat(ino),
            Kind::Store(ino) | Kind::StoreDir(ino) => return self.store_stat_ino(ino),
            // Anonymous inodes, as Linux's.
            Kind::Epoll(id) | Kind::EventFd(id) | Kind::SignalFd(id) | Kind::Inotify(id) => {
                (0o600, 0, 0, 0x3000 + id as u64, 0xe, 4096)
            }
            // One inode per process, as Linux's pidfs gives (two pidfds of
            // one process compare equal).
            Kind::PidFd(_, started) => (0o600, 0, 0, (1 << 63) | started, 0xe, 4096),
        };
        Ok(stat_bytes(
            mode,
            size,
            rdev,
            ino,
            dev,
            blksize,
            self.realtime_ns(),
        ))
    }

    fn sys_fstat(&mut self, pid: Pid, fd: i64, buf: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let st = match self.stat_of(&f) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &st).map(|_| 0)))
    }

    /// A path resolved and classified (pmon::path::name): the monitor's
    /// devices and the calling process's /proc and /dev/fd entries are
    /// answered here, the rest by the host.
    fn lookup(&self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<(Vec<u8>, Name), Errno> {
        let full = self.resolve(pid, dirfd, p)?;
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        Ok((full, name))
    }

    /// [`Self::lookup`], following the last name if it is a symbolic link
    /// of the tmpfs or /proc/PID/{exe,cwd,root}.
    fn lookup_follow(&self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<(Vec<u8>, Name), Errno> {
        let full = self.follow(self.resolve(pid, dirfd, p)?)?;
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        match name {
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => {
                let to = self.follow(self.link_target(pid, name)?)?;
                let name = self.task_name(pid, pmon::path::name(&to, pid));
                Ok((to, name))
            }
            _ => Ok((full, name)),
        }
    }

    fn device(name: Name) -> Option<Kind> {
        match name {
            Name::Null => Some(Kind::DevNull),
            Name::Zero => Some(Kind::DevZero),
            Name::Full => Some(Kind::DevFull),
            Name::Urandom => Some(Kind::DevUrandom),
            _ => None,
        }
    }

    /// (total, free) bytes of the home memory component of process `pid`.
    fn memory_of(&mut self, pid: Pid) -> Result<(u64, u64), Errno> {
        let st = self.space_mut(pid)?.home_stats()?;
        Ok((st.frames_total * 4096, st.frames_free * 4096))
    }

    /// /proc/self/maps of process `pid`, as its home lists the mappings now.
    fn maps_of(&mut self, pid: Pid, which: pmon::path::MapsFile) -> Result<Vec<u8>, Errno> {
        let exe = self.exe_of(pid);
        let space = self.space_mut(pid)?;
        // Cut where locking starts or ends, as Linux's VMAs are.
        let vmas: Vec<lego_proto::memory::VmaEntry> = space
            .maps()?
            .into_iter()
            .flat_map(|v| {
                space
                    .locked
                    .pieces(v.start, v.end)
                    .into_iter()
                    .map(move |(start, end)| lego_proto::memory::VmaEntry { start, end, ..v })
            })
            .collect();
        let pieces: Vec<pmon::anon::Piece> =
            self.space_mut(pid)?.redirects.pieces().copied().collect();
        // Named as Linux names them: a System V segment, or anonymous
        // memory (an object with no file); a file's mapping is not named.
        let shared: Vec<(u64, u64, Option<Vec<u8>>)> = pieces
            .iter()
            .map(|p| {
                let anonymous = self
                    .anon
                    .as_ref()
                    .and_then(|h| h.objects.get(&p.object))
                    .is_some_and(|o| o.file.is_none());
                let name = self
                    .segment_name(p.object)
                    .or_else(|| anonymous.then(|| b"/dev/zero (deleted)".to_vec()));
                (p.start, p.end, name)
            })
            .collect();
        let space = self.space_mut(pid)?;
        let maps = pmon::procfs::maps(&vmas, &space.layout, space.brk, &exe, &shared);
        let locked = |start, end| space.locked.within(start, end);
        Ok(match which {
            pmon::path::MapsFile::Maps => maps,
            pmon::path::MapsFile::Smaps => pmon::procfs::smaps(&maps, locked, false),
            pmon::path::MapsFile::Rollup => pmon::procfs::smaps(&maps, locked, true),
        })
    }

    /// The program process `pid` runs, as an absolute path.
    fn exe_of(&self, pid: Pid) -> Vec<u8> {
        self.procs
            .get(&pid)
            .map(|pr| pmon::path::resolve(&pr.cwd, &pr.exe))
            .unwrap_or_default()
    }

    /// What readlink of /proc/self/fd/N says of a descriptor's file.
    fn describe(f: &OpenFile) -> Vec<u8> {
        match f.kind {
            Kind::Host(_)
            | Kind::HostDir(_)
            | Kind::Generated
            | Kind::Store(_)
            | Kind::StoreDir(_)
            | Kind::PtyMaster(_)
            | Kind::PtySlave(_) => f.path.clone(),
            Kind::Tmp(_) => pmon::path::dev_shm_shown(f.path.clone()),
            // The numbers fstat gives, as Linux's links name the inode.
            Kind::PipeRead(id) | Kind::PipeWrite(id) => {
                alloc::format!("pipe:[{}]", pipe_ino(id)).into_bytes()
            }
            Kind::Socket(rx, tx) if rx == tx => {
                alloc::format!("pipe:[{}]", pipe_ino(rx)).into_bytes()
            }
            Kind::Socket(id, _)
            | Kind::Unix(id)
            | Kind::UnixDgram(id)
            | Kind::Dgram(id)
            | Kind::Netlink(id) => alloc::format!("socket:[{}]", socket_ino(id)).into_bytes(),
            Kind::DevNull => b"/dev/null".to_vec(),
            Kind::DevZero => b"/dev/zero".to_vec(),
            Kind::DevFull => b"/dev/full".to_vec(),
            Kind::DevUrandom => b"/dev/urandom".to_vec(),
            Kind::Epoll(_) => b"anon_inode:[eventpoll]".to_vec(),
            Kind::EventFd(_) => b"anon_inode:[eventfd]".to_vec(),
            Kind::SignalFd(_) => b"anon_inode:[signalfd]".to_vec(),
            Kind::Inotify(_) => b"anon_inode:inotify".to_vec(),
            Kind::PidFd(..) => b"anon_inode:[pidfd]".to_vec(),
            Kind::MQueue(_) => f.path.clone(),
            // /proc/PID, or its task directory or a thread's in it.
            Kind::ProcDir(..) => f.path.clone(),
            // lego-vmm's own stdio: the monitor does not know its name.
            Kind::Stdio(n, _) => alloc::format!("/dev/lego-stdio/{n}").into_bytes(),
        }
    }

    /// struct stat of a path (a device, the program itself, or a host file).
    fn stat_path(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        flags: u64,
    ) -> Result<[u8; 144], Errno> {
        // A null path with AT_EMPTY_PATH is the descriptor's, as since
        // Linux 6.11.
        let p = if path == 0 && flags & AT_EMPTY_PATH != 0 {
            Vec::new()
        } else {
            uaccess::read_cstr(self.space_mut(pid)?, path, pmon::path::PATH_MAX - 1)?
        };
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(ENOENT);
            }
            let f = self.file(pid, dirfd)?;
            return self.stat_of(&f);
        }
        // "name/" names a directory (through a symlink): anything else
        // is ENOTDIR, as Linux.
        if ends_in_slash(&p) {
            let st = self.stat_path_of(pid, dirfd, &p, true)?;
            if !stat_is_dir(&st) {
                return Err(ENOTDIR);
            }
            return Ok(st);
        }
        self.stat_path_of(pid, dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)
    }

    fn stat_path_of(
        &mut self,
        pid: Pid,
        dirfd: i64,
        p: &[u8],
        follow: bool,
    ) -> Result<[u8; 144], Errno> {
        let (full, name) = if follow {
            self.lookup_follow(pid, dirfd, p)?
        } else {
            self.lookup(pid, dirfd, p)?
        };
        if let Some(kind) = Self::device(name) {
            return self.stat_of(&OpenFile::new(kind, O_RDWR));
        }
        let st = match name {
            Name::Fd(t, n) => {
                let f = self.fd_file(pid, t, n)?;
                if follow || !full.starts_with(b"/proc/") {
                    return self.stat_of(&f);
                }
                // lstat of /proc/PID/fd/N: the link, its permission bits
                // the descriptor's access (lr-x, l-wx or lrwx), as Linux.
                let mut st = host::stat_path(b"/proc/self/exe", false)?;
                let access = f.flags.get() & O_ACCMODE;
                st.mode = 0o120000
                    | if access != O_WRONLY { 0o500 } else { 0o100 }
                    | if access != O_RDONLY { 0o200 } else { 0 };
                st.size = 64;
                st
            }
            Name::Ptmx => return self.stat_of(&OpenFile::new(Kind::PtyMaster(usize::MAX), 0)),
            Name::Pts(n) => {
                let id = self.pty_numbered(n).ok_or(ENOENT)?;
                return self.stat_of(&OpenFile::new(Kind::PtySlave(id), 0));
            }
            // Not followed (lookup_follow follows them): the links.
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => {
                self.link_target(pid, name)?;
                host::stat_path(b"/proc/self/exe", false)?
            }
            Name::SelfDir => host::stat_path(b"/proc/self", follow)?,
            Name::FdDir(t) | Name::FdInfoDir(t) => {
                self.reach(pid, t)?;
                host::stat_path(FD_DIR, true)?
            }
            Name::FdInfo(t, n) => {
                self.fd_file(pid, t, n)?;
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::Maps(t, _) => {
                self.reach(pid, t)?;
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            n if n.is_generated() => {
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::Proc(p, _) if self.sees_process(pid, p) => {
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::ProcDir(p) if self.sees_process(pid, p) => host::stat_path(b"/proc/self", true)?,
            Name::Proc(..) | Name::ProcDir(_) => return Err(ENOENT),
            // (Checked by `task_name`.)
            Name::TaskDir(_) | Name::Task(..) => host::stat_path(b"/proc/self", true)?,
            Name::TaskFile(..) => return self.stat_of(&OpenFile::generated(full, Vec::new())),
            Name::Hidden => return Err(ENOENT),
            _ if self.on_storage_to_look(&full) => return self.store_stat_path(&full, follow),
            _ => match self.tmp_node(&full) {
                Some(ino) => return self.tmp_stat(ino),
                None => host::stat_path(&full, follow)?,
            },
        };
        Ok(file_stat_bytes(&st))
    }

    /// The extended-attribute calls, on a file system that keeps none:
    /// the file must exist (ENOENT, EBADF as Linux), a get or remove finds
    /// no attribute (ENODATA), a list is empty, a set is refused
    /// (EOPNOTSUPP, as a file system without them answers). GNU ls -l
    /// asks for ACLs this way and reports ENOSYS as an error.
    fn sys_newfstatat(&mut self, pid: Pid, dirfd: i64, path: u64, buf: u64, flags: u64) -> Ret {
        const AT_NO_AUTOMOUNT: u64 = 0x800;
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
            return err(EINVAL);
        }
        let st = match self.stat_path(pid, dirfd, path, flags) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &st).map(|_| 0)))
    }

    fn sys_statx(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        flags: u64,
        mask: u64,
        buf: u64,
    ) -> Ret {
        const AT_NO_AUTOMOUNT: u64 = 0x800;
        const AT_STATX_SYNC_TYPE: u64 = 0x6000;
        const STATX_RESERVED: u64 = 0x8000_0000;
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE)
            != 0
            || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
            || mask & STATX_RESERVED != 0
        {
            return err(EINVAL);
        }
        let st = match self.stat_path(pid, dirfd, path, flags) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        // struct stat -> struct statx (the fields programs read).
        let word = |at: usize| u64::from_le_bytes(st[at..at + 8].try_into().unwrap_or([0; 8]));
        let mode = stat_mode(&st);
        let mut x = [0u8; 256];
        x[0..4].copy_from_slice(&0x7ffu32.to_le_bytes()); // stx_mask: the basic stats
        x[4..8].copy_from_slice(&(word(56) as u32).to_le_bytes()); // blksize
        x[16..20].copy_from_slice(&(word(16) as u32).to_le_bytes()); // nlink
        x[28..30].copy_from_slice(&(mode as u16).to_le_bytes());
        x[32..40].copy_from_slice(&word(8).to_le_bytes()); // ino
        x[40..48].copy_from_slice(&word(48).to_le_bytes()); // size
        x[48..56].copy_from_slice(&word(64).to_le_bytes()); // blocks
                                                            // uid and gid.
        x[20..28].copy_from_slice(&st[28..36]);
        // atime, ctime, mtime: seconds and nanoseconds (btime is not
        // offered: the mask leaves it out).
        for (to, from) in [(64, 72), (96, 104), (112, 88)] {
            x[to..to + 8].copy_from_slice(&word(from).to_le_bytes());
            x[to + 8..to + 12].copy_from_slice(&(word(from + 8) as u32).to_le_bytes());
        }
        // rdev and dev as Linux's old encoding splits them (major above
        // the low 8 bits, minor in them).
        for (to, from) in [(128, 40), (136, 0)] {
            let d = word(from);
            x[to..to + 4].copy_from_slice(&(((d >> 8) & 0xfff) as u32).to_le_bytes());
            x[to + 4..to + 8]
                .copy_from_slice(&(((d & 0xff) | ((d >> 12) & !0xff)) as u32).to_le_bytes());
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &x).map(|_| 0)))
    }

    fn sys_openat(&mut self, pid: Pid, dirfd: i64, path: u64, flags: u64, mode: u64) -> Ret {
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => self.openat_path(pid, dirfd, &p, flags as u32, mode as u32),
            Err(e) => err(e),
        }
    }

    /// openat of path `p`. O_PATH gives a descriptor that only names the file (the
    /// other flags but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW ignored, as
    /// Linux ignores them): it opens a symbolic link itself with
    /// O_NOFOLLOW (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) looks at it so),
    /// and a named pipe or socket without opening either.
    fn openat_path(&mut self, pid: Pid, dirfd: i64, p: &[u8], flags: u32, mode: u32) -> Ret {
        if flags & O_PATH == 0 {
            return self.open_path(pid, dirfd, p, flags, mode);
        }
        const KEPT: u32 = O_CLOEXEC | 0o200000 | 0o400000;
        let r = self.open_path(pid, dirfd, p, flags & (KEPT | O_PATH), 0);
        if let Ret::Val(fd) = r {
            if let Ok(f) = self.file(pid, fd) {
                // F_GETFL shows O_NOFOLLOW and O_DIRECTORY as asked.
                const SHOWN: u32 = 0o200000 | 0o400000;
                f.flags
                    .set((f.flags.get() & !O_ACCMODE) | O_PATH | (flags & SHOWN));
            }
        }
        r
    }

    /// A call's extensible struct (openat2's open_how, clone3's
    /// clone_args): `size` bytes at `at`, of which this kernel knows the
    /// first `known`, as Linux's copy_struct_from_user takes them: EINVAL
    /// below `min` bytes, E2BIG past a page or for a newer program's field
    /// set past ours.
    fn read_extensible(
        &mut self,
        pid: Pid,
        at: u64,
        size: u64,
        min: u64,
        known: usize,
    ) -> Result<Vec<u8>, Errno> {
        if size < min {
            return Err(EINVAL);
        }
        if size > 4096 {
            return Err(E2BIG);
        }
        let raw = uaccess::read_vec(self.space_mut(pid)?, at, size as usize)?;
        if raw
            .get(known..)
            .is_some_and(|tail| tail.iter().any(|&b| b != 0))
        {
            return Err(E2BIG);
        }
        Ok(raw)
    }

    /// openat2: openat with its `struct open_how` checked as Linux checks
    /// it (unknown flags, a mode without O_CREAT, a larger struct whose
    /// tail is not zero) and the path walked under its RESOLVE_* flags
    /// (`pmon::scoped`); the open itself is openat's. It was ENOSYS, which
    /// a program may take for a kernel older than the 6.1 that uname
    /// names.
    fn sys_openat2(&mut self, pid: Pid, dirfd: i64, path: u64, how: u64, size: u64) -> Ret {
        use pmon::scoped::{RESOLVE_ALL, RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT};
        const O_CREAT: u64 = 0o100;
        const O_EXCL: u64 = 0o200;
        const O_TRUNC: u64 = 0o1000;
        const O_NOFOLLOW: u64 = 0o400000;
        const O_TMPFILE: u64 = 0o20000000;
        // Every flag openat knows (O_ACCMODE to __O_TMPFILE, FASYNC and
        // O_LARGEFILE among them).
        const VALID: u64 = 0o37777703;
        let raw = match self.read_extensible(pid, how, size, 24, 24) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let (flags, mode, resolve) = (word_at(&raw, 0), word_at(&raw, 1), word_at(&raw, 2));
        if flags & !VALID != 0 || resolve & !RESOLVE_ALL != 0 {
            return err(EINVAL);
        }
        let makes = flags & (O_CREAT | O_TMPFILE) != 0;
        if (makes && mode & !0o7777 != 0) || (!makes && mode != 0) {
            return err(EINVAL);
        }
        if resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
            return err(EINVAL);
        }
        // RESOLVE_CACHED is never refused for want of a cache here, but
        // Linux refuses what would write.
        if resolve & RESOLVE_CACHED != 0 && flags & (O_CREAT | O_TRUNC | O_TMPFILE) != 0 {
            return err(EAGAIN);
        }
        let p = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        let scoped = resolve & !RESOLVE_CACHED;
        if scoped == 0 || p.is_empty() {
            return self.openat_path(pid, dirfd, &p, flags as u32, mode as u32);
        }
        let follow_last = flags & O_NOFOLLOW == 0 && flags & (O_CREAT | O_EXCL) != O_CREAT | O_EXCL;
        let walked = self.resolve(pid, dirfd, b".").and_then(|start| {
            let start = pmon::path::shown_in(&self.root_of(pid), &start);
            pmon::scoped::walk(&start, &p, scoped, follow_last, &mut |full| {
                self.scoped_node(pid, full)
            })
        });
        match walked {
            Ok(full) => self.openat_path(pid, AT_FDCWD, &full, flags as u32, mode as u32),
            Err(e) => err(e),
        }
    }

    /// The root directory of process `pid` (its chroot).
    fn root_of(&self, pid: Pid) -> Vec<u8> {
        self.procs
            .get(&pid)
            .map_or_else(|| b"/".to_vec(), |pr| pr.root.clone())
    }

    /// What openat2's walk finds at `shown` (absolute as process `pid`
    /// sees it, no link before its last name).
    fn scoped_node(&mut self, pid: Pid, shown: &[u8]) -> Result<pmon::scoped::Node, Errno> {
        use pmon::scoped::Node;
        let full = self.resolve(pid, AT_FDCWD, shown)?;
        let root = self.root_of(pid);
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        match name {
            Name::Exe(_) => return Ok(Node::Magic(None)),
            Name::Cwd(_) | Name::Root(_) | Name::Fd(..) => {
                let to = match self.link_of(pid, &full) {
                    Ok(Some(t)) => Some(pmon::path::shown_in(&root, &t)),
                    Ok(None) | Err(ENOTDIR) => None,
                    Err(e) => return Err(e),
                };
                return Ok(Node::Magic(to));
            }
            _ => {}
        }
        match self.link_of(pid, &full) {
            Ok(Some(t)) => Ok(Node::Link(t)),
            Ok(None) => match self.stat_path_of(pid, AT_FDCWD, shown, false) {
                Ok(st) => {
                    let dev = word_at(&st, 0);
                    Ok(if stat_is_dir(&st) {
                        Node::Dir(dev)
                    } else {
                        Node::File(dev)
                    })
                }
                Err(ENOENT) => Ok(Node::Missing),
                Err(e) => Err(e),
            },
            Err(ENOENT) => Ok(Node::Missing),
            Err(e) => Err(e),
        }
    }

    /// open of path `p`.
    fn open_path(&mut self, pid: Pid, dirfd: i64, p: &[u8], flags: u32, mode: u32) -> Ret {
        const O_CREAT: u32 = 0o100;
        const O_TRUNC: u32 = 0o1000;
        const O_DIRECTORY: u32 = 0o200000;
        const O_TMPFILE: u32 = 0o20000000;
        const EOPNOTSUPP: Errno = 95;
        let mut flags = flags;
        let path_only = flags & O_PATH != 0;
        // Unnamed files: neither the tmpfs nor storage makes them, and
        // EOPNOTSUPP is what a Linux file system without them answers,
        // which glibc's tmpfile() and programs take as "use a name".
        // O_CREAT with O_DIRECTORY (O_TMPFILE's among them) is EINVAL
        // since Linux 6.4, which made it stop creating regular files.
        if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY {
            return err(EINVAL);
        }
        if flags & O_TMPFILE != 0 {
            return err(EOPNOTSUPP);
        }
        // "name/" opens a directory only, and never makes a file.
        if ends_in_slash(p) {
            if flags & O_CREAT != 0 {
                return err(EISDIR);
            }
            flags |= O_DIRECTORY;
        }
        let cloexec = flags & O_CLOEXEC != 0;
        // The last name is followed unless O_NOFOLLOW, or O_CREAT with
        // O_EXCL (which must make it), as Linux.
        const O_EXCL: u32 = 0o200;
        const O_NOFOLLOW: u32 = 0o400000;
        let no_follow = flags & O_NOFOLLOW != 0 || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
        let looked = if no_follow {
            self.lookup(pid, dirfd, p)
        } else {
            self.lookup_follow(pid, dirfd, p)
        };
        let (full, name) = match looked {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if let (true, Some(ino)) = (path_only, self.tmp_node(&full)) {
            return self.tmp_path_open(pid, ino, full, flags, cloexec);
        }
        // A program some process is running is not opened for writing
        // (ETXTBSY), as Linux's deny_write_access: `cp` over a running
        // program fails, an installer's unlink and rename do not.
        const ETXTBSY: Errno = 26;
        if (flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0) && !path_only {
            let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
            let on_storage = self.on_storage(&full);
            // By name first (nothing to ask in the usual case), then by
            // the file now there: a new file made in a running program's
            // place (`ld -o`, `install`) is not the one running.
            let running: Vec<u64> = self
                .procs
                .values()
                .filter(|p| p.life == Life::Alive && p.exe == full)
                .filter(|p| !on_storage || p.vnode == vnode)
                .filter_map(|p| p.exe_ino)
                .collect();
            if !running.is_empty()
                && self
                    .file_identity(&full)
                    .is_some_and(|now| running.contains(&now))
            {
                return err(ETXTBSY);
            }
        }
        // O_NOATIME only by the file's owner or with CAP_FOWNER (EPERM).
        const O_NOATIME: u32 = 0o1000000;
        let fowner = self
            .procs
            .get(&pid)
            .is_none_or(|p| p.cred.capable(pmon::caps::FOWNER));
        if flags & O_NOATIME != 0 && !path_only && !fowner {
            if let (Some(p), Ok(o)) = (self.procs.get(&pid), self.owned_at(&full)) {
                if p.cred.uid.fs != o.uid {
                    return err(EPERM);
                }
            }
        }
        // (Storage's links are `store_open`'s: its stat tells them.)
        if no_follow
            && self
                .tmp_node(&full)
                .is_some_and(|ino| self.tmp.is_symlink(ino))
        {
            return err(if flags & O_EXCL != 0 { EEXIST } else { ELOOP });
        }
        if let Some(kind) = Self::device(name) {
            let file = OpenFile::new(kind, flags & (O_ACCMODE | O_NONBLOCK | O_APPEND));
            return val(self
                .proc_mut(pid)
                .and_then(|pr| pr.fds.install(file, cloexec, 0)));
        }
        match name {
            // Linux opens the file again. A tmpfs file (a memfd) is: its
            // own offset and flags, and O_TRUNC (LTP memfd_create01). For
            // the rest, sharing the open file is what matters (pipes:
            // bash's process substitution).
            Name::Fd(t, n) if t == pid => {
                return match self.fd_file(pid, t, n) {
                    Ok(f) => match f.kind {
                        Kind::Tmp(ino) if !self.tmp.is_fifo(ino) && !self.tmp.is_socket(ino) => {
                            self.tmp_reopen(pid, ino, f.path.clone(), flags, cloexec)
                        }
                        _ => val(self.dup(pid, n as i64, 0, cloexec)),
                    },
                    Err(e) => err(e),
                };
            }
            // Another process's: its open file, as pidfd_getfd gives it
            // (a tmpfs file opened again, as above).
            Name::Fd(t, n) => {
                return match self.fd_file(pid, t, n) {
                    Ok(f) => match f.kind {
                        Kind::Tmp(ino) => self.tmp_reopen(pid, ino, f.path.clone(), flags, cloexec),
                        _ => val(self
                            .proc_mut(pid)
                            .and_then(|p| p.fds.install(f, cloexec, 0))),
                    },
                    Err(e) => err(e),
                };
            }
            Name::Ptmx => return self.open_ptmx(pid, flags, cloexec),
            Name::Pts(n) => {
                return match self.pty_numbered(n) {
                    Some(id) => self.open_pty_slave(pid, id, flags, cloexec),
                    None => err(ENOENT),
                }
            }
            // Symbolic links, not followed (O_NOFOLLOW): lookup_follow
            // follows them.
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => return err(ELOOP),
            // /proc/self is a symbolic link to /proc/PID.
            Name::SelfDir if no_follow => return err(ELOOP),
            Name::ProcDir(p) if !self.sees_process(pid, p) => return err(ENOENT),
            Name::SelfDir | Name::ProcDir(_) | Name::TaskDir(_) | Name::Task(..)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EISDIR)
            }
            Name::SelfDir => return self.open_proc_dir(pid, pid, None, flags, cloexec),
            Name::ProcDir(p) => return self.open_proc_dir(pid, p, None, flags, cloexec),
            Name::TaskDir(p) => return self.open_proc_dir(pid, p, Some(None), flags, cloexec),
            Name::Task(p, t) => return self.open_proc_dir(pid, p, Some(Some(t)), flags, cloexec),
            Name::Hidden => return err(ENOENT),
            Name::FdDir(_) if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 => {
                return err(EISDIR)
            }
            Name::FdDir(t) => {
                if let Err(e) = self.reach(pid, t) {
                    return err(e);
                }
                return self.open_fd_dir(pid, t, flags, cloexec, false);
            }
            Name::FdInfoDir(_)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EISDIR)
            }
            Name::FdInfoDir(t) => {
                if let Err(e) = self.reach(pid, t) {
                    return err(e);
                }
                return self.open_fd_dir(pid, t, flags, cloexec, true);
            }
            Name::FdInfo(..)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EACCES)
            }
            Name::FdInfo(t, n) => {
                let data = match self.fd_file(pid, t, n) {
                    Ok(f) => self.fdinfo(t, n, &f),
                    Err(e) => return err(e),
                };
                let file = OpenFile::generated(full, data);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            Name::Proc(p, file) | Name::TaskFile(p, _, file)
                if (flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0)
                    && !(file.writable() && self.may_write_proc(pid, p)) =>
            {
                return err(EACCES)
            }
            Name::Proc(p, file) | Name::TaskFile(p, _, file) => {
                let tid = match name {
                    Name::TaskFile(_, t, _) => t,
                    _ => p,
                };
                let data = match self.proc_file(pid, p, tid, file) {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                let file = OpenFile::generated(full, data);
                file.flags.set(flags & O_ACCMODE);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            n if n.is_generated() => {
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 {
                    return err(EACCES);
                }
                let data = match name {
                    Name::Maps(t, which) => {
                        match self.reach(pid, t).and_then(|()| self.maps_of(t, which)) {
                            Ok(d) => d,
                            Err(e) => return err(e),
                        }
                    }
                    Name::MemInfo => match self.memory_of(pid) {
                        Ok((total, free)) => pmon::procfs::meminfo(total, free),
                        Err(e) => return err(e),
                    },
                    Name::LoadAvg => {
                        let running = self.running_threads(true);
                        self.sample_load(true);
                        let last = self.ids.last();
                        self.load.text(running, self.threads.len() as u64, last)
                    }
                    Name::Uptime => {
                        let idle = self.cpus.iter().map(|c| c.idle_ns).sum();
                        pmon::procfs::uptime(self.now_ns(), idle)
                    }
                    Name::Stat => {
                        let up_ns = self.now_ns();
                        let cpus: Vec<_> = self
                            .cpus
                            .iter()
                            .map(|c| pmon::procfs::CpuTimes {
                                user_ns: self.cycles_ns(c.user_cycles),
                                idle_ns: c.idle_ns,
                                up_ns,
                            })
                            .collect();
                        let running = self.running_threads(true);
                        let counts = pmon::procfs::StatCounts {
                            // Rounded once, so that it does not move.
                            btime: self.realtime_ns().saturating_sub(up_ns) / 1_000_000_000,
                            ctxt: self.cpus.iter().map(|c| c.switches).sum(),
                            forks: self.forks,
                            running,
                        };
                        pmon::procfs::stat_file(&cpus, &counts)
                    }
                    Name::CpuInfo => match host::slurp(b"/proc/cpuinfo", 1 << 22) {
                        Ok(text) => pmon::procfs::cpuinfo(&text, self.cpus.len() as u32),
                        Err(e) => return err(e),
                    },
                    Name::Mounts => match host::slurp(b"/proc/mounts", 1 << 22) {
                        Ok(text) => pmon::procfs::mounts(&text, self.storage),
                        Err(e) => return err(e),
                    },
                    Name::MountInfo => match host::slurp(b"/proc/mounts", 1 << 22) {
                        Ok(text) => {
                            let storage = self.storage;
                            // What stat gives at each mount point: the
                            // tmpfs's and storage's own devices, else the
                            // host's.
                            let dev = |at: &[u8]| match at {
                                b"/tmp" | b"/dev/shm" => 0xfa,
                                b"/" if storage => 0xfb,
                                _ => host::stat_path(at, true).map_or(0, |st| st.dev),
                            };
                            pmon::procfs::mountinfo(&pmon::procfs::mounts(&text, storage), dev)
                        }
                        Err(e) => return err(e),
                    },
                    Name::Net(f) => self.proc_net(f),
                    Name::SysvIpc(f) => self.proc_sysvipc(f),
                    Name::UtsName(which) => {
                        let mut name = self.uts_name(pid, which).to_vec();
                        name.push(b'\n');
                        name
                    }
                    _ => pmon::procfs::cpu_list(self.cpus.len() as u32),
                };
                let file = OpenFile::generated(full, data);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            _ => {}
        }
        // O_CREAT by a process without CAP_DAC_OVERRIDE: a new name needs
        // write and search permission on its directory; a file there (bar
        // O_EXCL's EEXIST) its own bits, asked here, before storage's
        // create, which truncates in the same request (a link on storage:
        // its target's; O_NOFOLLOW's ELOOP comes later). One look at the
        // name serves both.
        if flags & O_CREAT != 0 && !self.overrides(pid) {
            let checked = match self.owner_of_name(&full) {
                None => self.may_change_in(pid, &full, None),
                Some(f) if flags & O_EXCL == 0 => {
                    let f = if f.mode & 0o170000 != 0o120000 {
                        Some(f)
                    } else if flags & O_NOFOLLOW == 0 {
                        super::store::stat(&full, true)
                            .ok()
                            .map(|st| pmon::cred::Owned::from(&st))
                    } else {
                        None
                    };
                    f.map_or(Ok(()), |f| self.may(pid, f, open_wants(flags)))
                }
                Some(_) => Ok(()),
            };
            if let Err(e) = checked {
                return err(e);
            }
        }
        if let Some(r) = self.tmp_open(pid, &full, flags, mode, cloexec) {
            return r;
        }
        let looks = flags & O_ACCMODE == O_RDONLY && flags & (O_CREAT | O_TRUNC) == 0;
        let stored = if looks {
            self.on_storage_to_look(&full)
        } else {
            self.on_storage(&full)
        };
        if stored {
            return self.store_open(pid, full, flags, mode, cloexec);
        }
        // The host's files, read-only until storage serves files. As in
        // Linux's do_open and may_open: O_CREAT on an existing name is
        // EEXIST with O_EXCL, EISDIR for a directory, and otherwise opens
        // it (flock(1) opens its lock file so); only a write, a truncate
        // or a new name is the file system's EROFS.
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        if writes || flags & O_CREAT != 0 {
            let exclusive = flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
            match host::stat_path(&full, !exclusive) {
                Ok(_) if exclusive => return err(EEXIST),
                Ok(st) if st.mode & 0o170000 == 0o040000 => return err(EISDIR),
                Ok(_) if writes => return err(EROFS),
                Ok(_) => {}
                Err(ENOENT) if flags & O_CREAT != 0 => return err(self.cannot_make(&full)),
                Err(e) => return err(e),
            }
        }
        use lego_proto::program::{ELSEWHERE, OPEN_READ, OPEN_SAY_ELSEWHERE};
        let (handle, st) = match host::open_as(&full, OPEN_READ | OPEN_SAY_ELSEWHERE) {
            Ok(v) => v,
            // A link of the host's leads into /proc, /sys, /dev or /tmp:
            // what is there is Lego's (/etc/mtab, a link to /proc/mounts,
            // lists Lego's mounts). The target is in one of those trees,
            // which the VMM never answers so: this recurses once.
            Err(e) if e == ELSEWHERE as i64 => {
                return match pmon::path::leaves_host(&full, |l| host::readlink(l).ok()) {
                    Some(to) => self.open_path(pid, AT_FDCWD, &to, flags, mode),
                    // Changed on the host meanwhile.
                    None => err(ENOENT),
                };
            }
            Err(e) => return err(e),
        };
        let is_dir = st.mode & 0o170000 == 0o040000;
        if flags & O_DIRECTORY != 0 && !is_dir {
            host::close(handle);
            return err(ENOTDIR);
        }
        if !path_only && !self.overrides(pid) {
            if let Err(e) = self.may(pid, pmon::cred::Owned::from(&st), open_wants(flags)) {
                host::close(handle);
                return err(e);
            }
        }
        let kind = if is_dir {
            Kind::HostDir(handle)
        } else {
            Kind::Host(handle)
        };
        let file = OpenFile::with_path(kind, flags & (O_ACCMODE | O_NONBLOCK | O_APPEND), full);
        self.install_host(pid, handle, file, cloexec)
    }

    /// A descriptor for `file`, open on the host as `handle` (closed
    /// there when no descriptor is left for it).
    fn install_host(&mut self, pid: Pid, handle: u32, file: Arc<OpenFile>, cloexec: bool) -> Ret {
        match self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file, cloexec, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                host::close(handle);
                err(e)
            }
        }
    }

    /// EACCES unless process `pid` may `want` (`pmon::cred`'s MAY_ bits)
    /// of a file owned as `f`, by its file-system ids and capabilities.
    pub(in crate::kernel) fn may(
        &self,
        pid: Pid,
        f: pmon::cred::Owned,
        want: u32,
    ) -> Result<(), Errno> {
        match self.procs.get(&pid) {
            Some(p) if !p.cred.may_access(&p.groups, f, want) => Err(EACCES),
            _ => Ok(()),
        }
    }

    /// Whether `pid` passes any read or write check without a look at the
    /// file (CAP_DAC_OVERRIDE): root, the usual caller, asks nothing more.
    pub(in crate::kernel) fn overrides(&self, pid: Pid) -> bool {
        self.procs
            .get(&pid)
            .is_none_or(|p| p.cred.capable(pmon::caps::DAC_OVERRIDE))
    }

    fn sys_access(&mut self, pid: Pid, dirfd: i64, path: u64, mode: u64) -> Ret {
        const W_OK: u64 = 2;
        const X_OK: u64 = 1;
        if mode & !0o7 != 0 {
            return err(EINVAL);
        }
        let p = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        let (full, name) = match self.lookup_follow(pid, dirfd, &p) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let full = match name {
            Name::Null | Name::Zero | Name::Full | Name::Urandom | Name::Ptmx => {
                return Ret::Val(0)
            }
            Name::Pts(n) => return val(self.pty_numbered(n).map(|_| 0).ok_or(ENOENT)),
            Name::Fd(t, n) => return val(self.fd_file(pid, t, n).map(|_| 0)),
            Name::Hidden => return err(ENOENT),
            // (Followed by lookup_follow.)
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => return err(ENOENT),
            Name::SelfDir => b"/proc/self".to_vec(),
            Name::FdInfo(t, n) if mode & X_OK != 0 => {
                return val(self.fd_file(pid, t, n).and(Err(EACCES)))
            }
            Name::FdInfo(t, n) => return val(self.fd_file(pid, t, n).map(|_| 0)),
            Name::Maps(t, _) | Name::FdDir(t) | Name::FdInfoDir(t) if t != pid => {
                return val(self.reach(pid, t).map(|()| 0))
            }
            Name::Maps(..)
            | Name::CpuList
            | Name::MemInfo
            | Name::Uptime
            | Name::LoadAvg
            | Name::Stat
            | Name::CpuInfo
            | Name::Mounts
            | Name::MountInfo
            | Name::Net(_)
            | Name::SysvIpc(_)
            | Name::UtsName(_) => {
                return if mode & X_OK != 0 {
                    err(EACCES)
                } else {
                    Ret::Val(0)
                }
            }
            Name::Proc(p, _) | Name::ProcDir(p) if !self.sees_process(pid, p) => {
                return err(ENOENT)
            }
            Name::Proc(..) | Name::TaskFile(..) if mode & X_OK != 0 => return err(EACCES),
            Name::Proc(..)
            | Name::ProcDir(_)
            | Name::FdDir(_)
            | Name::FdInfoDir(_)
            | Name::TaskDir(_)
            | Name::Task(..)
            | Name::TaskFile(..) => return Ret::Val(0),
            Name::Host => full,
        };
        // "name/" is a directory's, as in stat.
        if ends_in_slash(&p) {
            match self.stat_path_of(pid, dirfd, &p, true) {
                Ok(st) if !stat_is_dir(&st) => return err(ENOTDIR),
                Ok(_) => {}
                Err(e) => return err(e),
            }
        }
        // The file's bits as the caller's real ids and their capabilities
        // let it (`Cred::for_access`): root may read and write anything
        // and execute what has an execute bit.
        let allowed = |k: &Self, f: pmon::cred::Owned| match k.procs.get(&pid) {
            Some(p) if !p.cred.for_access().may_access(&p.groups, f, mode as u32) => err(EACCES),
            _ => Ret::Val(0),
        };
        if let Some(ino) = self.tmp_node(&full) {
            return match self.tmp.stat(ino) {
                Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
                Err(e) => err(e),
            };
        }
        if self.on_storage_to_look(&full) {
            return match super::store::stat(&full, true) {
                Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
                Err(e) => err(e),
            };
        }
        // A host file that shows through /tmp is writable there: a write
        // copies it up (`tmp_copy_up`), as overlayfs answers access for a
        // lower file. stress-ng refused a `--temp-path` in the host's /tmp.
        let copies_up = tmp::below_tmp(&full).is_some();
        match host::stat_path(&full, true) {
            Ok(_) if mode & W_OK != 0 && !copies_up => err(EROFS),
            Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
            Err(e) => err(e),
        }
    }

    /// faccessat2 with AT_SYMLINK_NOFOLLOW (a symbolic link answers for
    /// itself: it exists, and its bits are all set) or AT_EMPTY_PATH (the
    /// file `dirfd` is open on). Before, the flags were checked and then
    /// not looked at: a link to a missing file was ENOENT.
    fn sys_access_at(&mut self, pid: Pid, dirfd: i64, path: u64, mode: u64, flags: u64) -> Ret {
        const W_OK: u64 = 2;
        const X_OK: u64 = 1;
        if mode & !0o7 != 0 {
            return err(EINVAL);
        }
        let p = if path == 0 && flags & AT_EMPTY_PATH != 0 {
            Vec::new()
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
            {
                Ok(p) => p,
                Err(e) => return err(e),
            }
        };
        // Written where the file is the host's: its file systems are
        // read-only here.
        let (st, host) = if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return err(ENOENT);
            }
            let f = match self.file(pid, dirfd) {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            let host = matches!(f.kind, Kind::Host(_) | Kind::HostDir(_));
            match self.stat_of(&f) {
                Ok(st) => (st, host),
                Err(e) => return err(e),
            }
        } else {
            if flags & AT_SYMLINK_NOFOLLOW == 0 {
                return self.sys_access(pid, dirfd, path, mode);
            }
            let st = match self.stat_path(pid, dirfd, path, AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) => return err(e),
            };
            if stat_mode(&st) & 0o170000 != 0o120000 {
                return self.sys_access(pid, dirfd, path, mode);
            }
            let host = match self.lookup(pid, dirfd, &p) {
                Ok((full, Name::Host)) => {
                    self.tmp_node(&full).is_none()
                        && !self.on_storage(&full)
                        && tmp::below_tmp(&full).is_none()
                }
                Ok(_) => false,
                Err(e) => return err(e),
            };
            (st, host)
        };
        if mode & W_OK != 0 && host {
            return err(EROFS);
        }
        if mode & X_OK != 0 && stat_mode(&st) & 0o111 == 0 {
            return err(EACCES);
        }
        Ret::Val(0)
    }

    fn sys_readlink(&mut self, pid: Pid, dirfd: i64, path: u64, buf: u64, size: usize) -> Ret {
        let p = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        if size == 0 {
            return err(EINVAL);
        }
        // An empty path: the symbolic link an O_PATH descriptor names.
        let p = if p.is_empty() {
            // (The working directory is no link: ENOENT, as Linux.)
            if dirfd == AT_FDCWD {
                return err(ENOENT);
            }
            match self.file(pid, dirfd) {
                Ok(f) if f.flags.get() & O_PATH != 0 && !f.path.is_empty() => f.path.clone(),
                Ok(_) => return err(ENOENT),
                Err(e) => return err(e),
            }
        } else {
            p
        };
        let (full, name) = match self.lookup(pid, dirfd, &p) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let target = match name {
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => match self.link_target(pid, name) {
                Ok(t) => t,
                Err(e) => return err(e),
            },
            Name::SelfDir if full == b"/proc/thread-self" => {
                alloc::format!("{pid}/task/{}", self.caller).into_bytes()
            }
            Name::SelfDir => alloc::format!("{pid}").into_bytes(),
            Name::Fd(t, n) => match self.fd_file(pid, t, n) {
                Ok(f) => Self::describe(&f),
                Err(e) => return err(e),
            },
            Name::Hidden => return err(ENOENT),
            Name::Null
            | Name::Zero
            | Name::Full
            | Name::Urandom
            | Name::Ptmx
            | Name::Pts(_)
            | Name::Maps(..)
            | Name::CpuList
            | Name::MemInfo
            | Name::Uptime
            | Name::LoadAvg
            | Name::Stat
            | Name::CpuInfo
            | Name::Mounts
            | Name::MountInfo
            | Name::Net(_)
            | Name::SysvIpc(_)
            | Name::UtsName(_)
            | Name::Proc(..)
            | Name::ProcDir(_)
            | Name::TaskDir(_)
            | Name::Task(..)
            | Name::TaskFile(..)
            | Name::FdDir(_)
            | Name::FdInfoDir(_) => return err(EINVAL),
            Name::FdInfo(t, n) => {
                return err(self.fd_file(pid, t, n).err().unwrap_or(EINVAL));
            }
            Name::Host if self.tmp_node(&full).is_some() => {
                match self
                    .tmp_node(&full)
                    .map(|ino| self.tmp.readlink(ino).map(<[u8]>::to_vec))
                {
                    Some(Ok(t)) => t,
                    _ => return err(EINVAL),
                }
            }
            Name::Host if self.on_storage_to_look(&full) => match self.store_readlink(&full) {
                Ok(t) => t,
                Err(e) => return err(e),
            },
            Name::Host => match host::readlink(&full) {
                Ok(t) => t,
                Err(e) => return err(e),
            },
        };
        let n = target.len().min(size);
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &target[..n]).map(|_| n as i64)))
    }

    fn sys_poll(&mut self, tid: Tid, fds: u64, n: usize, timeout_ms: i64) -> Ret {
        const POLLIN: u16 = 1;
        const POLLPRI: u16 = 2;
        const POLLOUT: u16 = 4;
        const POLLERR: u16 = 8;
        const POLLHUP: u16 = 16;
        const POLLNVAL: u16 = 32;
        const POLLRDNORM: u16 = 0x40;
        const POLLWRNORM: u16 = 0x100;
        const POLLRDHUP: u16 = 0x2000;
        let pid = self.pid_of(tid);
        // Linux's bound: the descriptors a process may have.
        if n > self.procs.get(&pid).map_or(0, |p| p.fds.limit) {
            return err(EINVAL);
        }
        let mut raw = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, fds, n * 8))
        {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let mut ready = 0;
        let mut stdin = false;
        for c in raw.chunks_exact_mut(8) {
            let fd = i32::from_le_bytes(c[..4].try_into().unwrap_or([0; 4]));
            let events = u16::from_le_bytes(c[4..6].try_into().unwrap_or([0; 2]));
            let revents = if fd < 0 {
                0
            } else {
                match self.file(pid, fd as i64) {
                    Err(_) => POLLNVAL,
                    Ok(f) => {
                        stdin |= matches!(f.kind, Kind::Stdio(0, _));
                        let (r, w, hup) = self.readiness(&f);
                        let mut e = 0;
                        if r {
                            e |= events & (POLLIN | POLLRDNORM);
                        }
                        if w {
                            e |= events & (POLLOUT | POLLWRNORM);
                        }
                        if events & POLLPRI != 0 && self.urgent(&f) {
                            e |= POLLPRI;
                        }
                        if events & POLLRDHUP != 0 && self.read_shut_down(&f) {
                            e |= POLLRDHUP;
                        }
                        if hup {
                            e |= POLLHUP;
                        }
                        if self.has_error(&f) {
                            e |= POLLERR;
                        }
                        e
                    }
                }
            };
            c[6..8].copy_from_slice(&revents.to_le_bytes());
            if revents != 0 {
                ready += 1;
            }
        }
        let deadline = self.wait_deadline(
            tid,
            (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000),
        );
        if ready > 0 || deadline.is_some_and(|d| d <= self.now_ns()) {
            return val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, fds, &raw).map(|_| ready)));
        }
        self.park_until_ready(tid, deadline, stdin);
        Ret::Block
    }

    /// The monitor's deadline for an absolute time `at` (ns) on the wall
    /// clock (`realtime`) or CLOCK_MONOTONIC.
    pub(super) fn absolute_deadline(&self, at: u64, realtime: bool) -> u64 {
        let now_clock = if realtime {
            self.realtime_ns()
        } else {
            self.now_ns()
        };
        self.now_ns() + at.saturating_sub(now_clock)
    }

    /// The deadline of a poll-like call that waits `timeout_ns` (None:
    /// for ever). A call made again after a wake keeps its first deadline,
    /// so that activity elsewhere cannot postpone its timeout; once it has
    /// passed the call looks one last time and returns.
    fn wait_deadline(&mut self, tid: Tid, timeout_ns: Option<u64>) -> Option<u64> {
        let fresh = timeout_ns.map(|t| self.now_ns().saturating_add(t));
        match self.threads.get_mut(&tid) {
            Some(t) if t.retrying => t.wait_deadline.unwrap_or(fresh),
            Some(t) => {
                t.wait_deadline = Some(fresh);
                fresh
            }
            None => fresh,
        }
    }

    /// Parks a thread of poll, select or epoll_wait until something it may
    /// be waiting for changes (a pipe, an eventfd, stdin if it watches it)
    /// or its deadline: either way it looks again.
    fn park_until_ready(&mut self, tid: Tid, deadline: Option<u64>, stdin: bool) {
        let wait = if stdin { Wait::AnyStdin } else { Wait::Any };
        self.block(tid, wait, deadline, None, OnWake::Retry);
    }

    /// Whether `f` is a socket whose receiving side is shut (poll's
    /// POLLRDHUP): by this end (SHUT_RD), by its peer's end of writing,
    /// or by a failed connect. Never a pipe's: Linux reports POLLRDHUP for
    /// sockets only.
    pub(super) fn read_shut_down(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::Socket(rx, _) => self.pipes.get(&rx).is_none_or(|p| p.ended()),
            Kind::Unix(id) => self.connect_failed(id) || self.unix.reading_shut(id),
            Kind::Dgram(id) => self.dgrams.read_shut(id),
            _ => false,
        }
    }

    /// Whether `f` holds an error condition (poll's POLLERR, epoll's
    /// EPOLLERR): a pipe's write end whose readers are gone, a TCP
    /// connect that failed after EINPROGRESS, a UDP socket's pending error.
    pub(super) fn has_error(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::PipeWrite(id) => self.pipes.get(&id).is_none_or(|p| p.readers == 0),
            Kind::Unix(id) => self.connect_failed(id),
            Kind::Dgram(id) => self.dgrams.has_error(id),
            Kind::Socket(rx, tx) => {
                self.pipes.get(&rx).is_some_and(|p| p.reset_by_peer)
                    || self.pipes.get(&tx).is_some_and(|p| p.writer_error)
            }
            _ => false,
        }
    }

    /// Whether `id` names the parent outside ([`OUTSIDE`]): no process or
    /// thread here has that id.
    pub(super) fn is_outside(&self, id: u32) -> bool {
        id == OUTSIDE && !self.procs.contains_key(&id) && !self.threads.contains_key(&id)
    }

    /// Whether a send on TCP or SOCK_SEQPACKET connection (rx, tx)
    /// reports its peer's reset now (taking it): Linux's send reports a
    /// pending socket error before EPIPE, without SIGPIPE. An AF_UNIX
    /// stream's send does not: it fails with EPIPE and leaves the error to
    /// the next read or SO_ERROR.
    pub(super) fn send_takes_reset(&mut self, rx: usize, tx: usize) -> bool {
        if !self
            .pipes
            .get(&tx)
            .is_some_and(|p| p.tcp || p.mode() == pmon::pipe::Mode::Packets)
        {
            return false;
        }
        self.pipes.get_mut(&rx).is_some_and(|p| p.take_reset())
    }

    /// Whether a socket holds urgent data not taken (POLLPRI).
    pub(super) fn urgent(&self, f: &Arc<OpenFile>) -> bool {
        match f.kind {
            Kind::Socket(rx, _) => self.pipes.get(&rx).is_some_and(|p| p.urgent_pending()),
            _ => false,
        }
    }

    /// (readable, writable, hung up) for poll and select.
    fn readiness(&mut self, f: &Arc<OpenFile>) -> (bool, bool, bool) {
        match f.kind {
            Kind::PipeRead(id) => match self.pipes.get(&id) {
                Some(p) => (p.holds_data(), false, p.writers == 0 && !p.awaits_writer),
                None => (true, false, true),
            },
            Kind::PipeWrite(id) => match self.pipes.get(&id) {
                Some(p) => (false, p.writable(), false),
                None => (false, true, false),
            },
            Kind::Stdio(0, run) if self.stdin_back.get(&run).is_some_and(|b| !b.is_empty()) => {
                (true, false, false)
            }
            Kind::Stdio(0, run) => {
                let mut probe = [0u8; 0];
                // A zero-byte read tells whether stdin has something (or ended).
                let n = host::read_stdin(run, &mut probe);
                (n != -lego_proto::program::EAGAIN, false, false)
            }
            Kind::Stdio(..) => (false, true, false),
            Kind::Socket(rx, tx) => {
                // SO_RCVLOWAT: a TCP socket is readable with that many
                // bytes (Linux's tcp_poll; AF_UNIX's poll ignores it).
                let lowat = self
                    .sock_option(rx, unix::SOL_SOCKET, unix::SO_RCVLOWAT)
                    .map_or(1, |v| v as usize);
                let (r, ended, tcp, reset) = match self.pipes.get(&rx) {
                    Some(p) => {
                        let r = if p.tcp && lowat > 1 {
                            p.pending() >= lowat || p.ended()
                        } else {
                            p.readable()
                        };
                        (r, p.ended(), p.tcp, p.was_reset)
                    }
                    None => (true, true, false, false),
                };
                let (w, peer_shut, sent_reset) = match self.pipes.get(&tx) {
                    Some(p) => (
                        p.writable() || p.readers == 0,
                        p.readers == 0 || p.read_shut,
                        p.is_reset(),
                    ),
                    None => (true, true, false),
                };
                // Linux's POLLHUP: both directions shut. TCP counts only
                // this end's shutdowns (a peer's close is a FIN: readable,
                // POLLRDHUP) and a reset; AF_UNIX counts the peer's too.
                let sent_shut = f.flags.get() & pmon::fd::SHUT_WR_FLAG != 0;
                let hup = if tcp {
                    reset || sent_reset || (ended && sent_shut)
                } else {
                    ended && (sent_shut || peer_shut)
                };
                (r || ended, w, hup)
            }
            Kind::EventFd(id) => match self.eventfds.get(&id) {
                Some(e) => (e.readable(), e.writable(), false),
                None => (false, false, true),
            },
            // A listener is readable with a connection to accept; a
            // socket that neither listens nor is connected is hung up,
            // as Linux polls an unconnected stream socket.
            Kind::Unix(id) if self.unix.is_listening(id) => (self.unix.ready(id), false, false),
            // A TCP connect that failed after EINPROGRESS.
            Kind::Unix(id) if self.connect_failed(id) => (true, true, true),
            // Writable and hung up, as Linux polls a closed stream socket.
            Kind::Unix(id) => (self.unix.reading_shut(id), true, true),
            Kind::Dgram(id) => (
                self.dgrams.readable(id) || self.dgrams.read_shut(id),
                true,
                self.dgrams.shut_both(id),
            ),
            Kind::Netlink(id) => (
                self.netlinks.get(&id).is_some_and(|(s, _)| s.readable()),
                true,
                false,
            ),
            Kind::UnixDgram(id) => {
                let (r, w) = self.unix_dgram_ready(id);
                (r, w, false)
            }
            Kind::PtyMaster(id) => self.pty_ready(id, true),
            Kind::PtySlave(id) => self.pty_ready(id, false),
            Kind::SignalFd(id) => {
                let mask = self.signalfd_mask(id);
                let ready = self.caller().is_some_and(|t| self.pending_in(t, mask));
                (ready, false, false)
            }
            // Taken out of the table while it is looked at, so an
            // instance met again (a loop ELOOP did not stop) is not ready.
            Kind::Epoll(id) => (self.epoll_readable(id), false, false),
            Kind::Inotify(id) => match self.inotifies.get(&id) {
                Some(i) => (!i.is_empty(), false, false),
                None => (false, false, true),
            },
            Kind::PidFd(target, started) => self.pidfd_readiness(target, started),
            Kind::MQueue(id) => match self.mqueues.queues.get(&id) {
                Some(q) => (q.readable(), q.writable(), false),
                None => (false, false, true),
            },
            _ => (true, true, false),
        }
    }

    /// ppoll, pselect6 and epoll_pwait(2) with a signal mask (`mask`, a
    /// user pointer to `size` bytes; 0: none): the thread waits under
    /// that mask, as Linux's set_user_sigmask, so that a signal blocked
    /// until the call (make's SIGCHLD around its jobserver's pselect)
    /// ends the wait with EINTR and its handler runs, the frame keeping
    /// the mask from before. Returning otherwise, the mask from before
    /// comes back at once. A call made again after a wake keeps the mask
    /// saved the first time.
    fn with_call_mask(
        &mut self,
        tid: Tid,
        mask: u64,
        size: u64,
        call: impl FnOnce(&mut Kernel) -> Ret,
    ) -> Ret {
        if mask == 0 {
            return call(self);
        }
        if size != 8 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let new = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, mask)) {
            Ok(m) => m & !UNBLOCKABLE,
            Err(e) => return err(e),
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.saved_mask.is_none() {
                t.saved_mask = Some(t.sigmask);
            }
            t.sigmask = new;
        }
        // Ready at once, it returns so (a signal pending stays so, under
        // the mask from before); about to wait, a signal pending and open
        // under the new mask ends the wait (`interrupt_if_signalled`).
        let r = call(self);
        match r {
            Ret::Block | Ret::NoReturn => {}
            Ret::Val(v) if v == -EINTR => {}
            Ret::Val(_) => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    if let Some(m) = t.saved_mask.take() {
                        t.sigmask = m;
                    }
                }
            }
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn sys_select(
        &mut self,
        tid: Tid,
        n: u64,
        rd: u64,
        wr: u64,
        ex: u64,
        tv: u64,
        pselect: bool,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let n = n as usize;
        if n > 1024 {
            return err(EINVAL);
        }
        let bytes = n.div_ceil(64) * 8;
        let read_set = |k: &mut Kernel, p: u64| -> Result<Vec<u8>, Errno> {
            if p == 0 {
                Ok(alloc::vec![0u8; bytes])
            } else {
                uaccess::read_vec(k.space_mut(pid)?, p, bytes)
            }
        };
        let (r_in, w_in, x_in) = match (read_set(self, rd), read_set(self, wr), read_set(self, ex))
        {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return err(e),
        };
        let mut r_out = alloc::vec![0u8; bytes];
        let mut w_out = alloc::vec![0u8; bytes];
        let mut x_out = alloc::vec![0u8; bytes];
        let mut ready = 0i64;
        let mut stdin = false;
        for fd in 0..n {
            let (want_r, want_w, want_x) = (
                r_in[fd / 8] & (1 << (fd % 8)) != 0,
                w_in[fd / 8] & (1 << (fd % 8)) != 0,
                x_in[fd / 8] & (1 << (fd % 8)) != 0,
            );
            if !want_r && !want_w && !want_x {
                continue;
            }
            let f = match self.file(pid, fd as i64) {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            stdin |= matches!(f.kind, Kind::Stdio(0, _));
            let (r, w, hup) = self.readiness(&f);
            // Linux's select counts an error condition as both readable
            // and writable (POLLIN_SET and POLLOUT_SET hold EPOLLERR):
            // asyncio learns that a child closed its stdin pipe by
            // watching the pipe's write end for reading.
            let error = self.has_error(&f);
            if want_r && (r || hup || error) {
                r_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
            if want_w && (w || error) {
                w_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
            // The exceptional condition: urgent data (POLLPRI).
            if want_x && self.urgent(&f) {
                x_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
        }
        let timeout_ns = if tv == 0 {
            None
        } else if pselect {
            match self.read_timespec(pid, tv) {
                Ok(ns) => Some(ns),
                Err(e) => return err(e),
            }
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, tv, 16))
            {
                Ok(b) => {
                    let s = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
                    let us = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
                    Some(s.saturating_mul(1_000_000_000).saturating_add(us * 1000))
                }
                Err(e) => return err(e),
            }
        };
        let deadline = self.wait_deadline(tid, timeout_ns);
        let now = self.now_ns();
        if ready > 0 || deadline.is_some_and(|d| d <= now) {
            // As Linux: the timeout is left holding the time not waited.
            let left = deadline.map_or(0, |d| d.saturating_sub(now));
            let (sec, frac) = if pselect {
                (left / 1_000_000_000, left % 1_000_000_000)
            } else {
                (left / 1_000_000_000, left % 1_000_000_000 / 1000)
            };
            // Unless the process's personality has STICKY_TIMEOUTS.
            const STICKY_TIMEOUTS: u32 = 0x0400_0000;
            let sticky = self
                .procs
                .get(&pid)
                .is_some_and(|p| p.personality & STICKY_TIMEOUTS != 0);
            let r = self.space_mut(pid).and_then(|s| {
                if rd != 0 {
                    uaccess::write(s, rd, &r_out)?;
                }
                if wr != 0 {
                    uaccess::write(s, wr, &w_out)?;
                }
                if ex != 0 {
                    uaccess::write(s, ex, &x_out)?;
                }
                if tv != 0 && !sticky {
                    uaccess::write_u64(s, tv, sec)?;
                    uaccess::write_u64(s, tv + 8, frac)?;
                }
                Ok(ready)
            });
            return val(r);
        }
        // At the deadline the retry finds it passed, clears the sets and
        // returns 0, as Linux does.
        self.park_until_ready(tid, deadline, stdin);
        Ret::Block
    }

    // ---- memory --------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn mem(
        &mut self,
        pid: Pid,
        op: u32,
        addr: u64,
        len: u64,
        arg: u64,
        prot: u32,
        flags: u32,
    ) -> Ret {
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        if (op == OP_MUNMAP || op == OP_MPROTECT) && len == 0 {
            return Ret::Val(0);
        }
        let r = self.space_mut(pid).and_then(|s| {
            s.call(MemRequest {
                op,
                addr,
                len,
                arg,
                prot,
                flags,
                ..Default::default()
            })
        });
        match (op, r) {
            (OP_MUNMAP | OP_MPROTECT, Ok(_)) => Ret::Val(0),
            // mprotect of an unmapped range is ENOMEM on Linux.
            (OP_MPROTECT, Err(EFAULT)) => err(ENOMEM),
            (OP_MUNMAP, Err(EFAULT)) => Ret::Val(0),
            (OP_MREMAP, Err(EFAULT)) => err(EFAULT),
            (_, r) => val(r.map(|v| v as i64)),
        }
    }

    fn sys_brk(&mut self, pid: Pid, addr: u64) -> Ret {
        let Ok(space) = self.space_mut(pid) else {
            return Ret::Val(0);
        };
        let current = space.brk;
        if addr == 0 {
            return Ret::Val(current as i64);
        }
        match space.call(MemRequest {
            op: OP_BRK,
            addr,
            arg: current,
            ..Default::default()
        }) {
            Ok(b) => {
                space.brk = b;
                let (old_end, new_end) = (current.div_ceil(4096) * 4096, b.div_ceil(4096) * 4096);
                if new_end < old_end {
                    self.unlock_gone(pid, new_end, old_end);
                } else if new_end > old_end && self.lock_new(pid, old_end, new_end, false).is_err()
                {
                    // Past RLIMIT_MEMLOCK under mlockall(MCL_FUTURE): the
                    // break stays, as Linux's.
                    if let Ok(space) = self.space_mut(pid) {
                        if let Ok(back) = space.call(MemRequest {
                            op: OP_BRK,
                            addr: current,
                            arg: b,
                            ..Default::default()
                        }) {
                            space.brk = back;
                        }
                    }
                    return Ret::Val(current as i64);
                }
                Ret::Val(b as i64)
            }
            Err(_) => Ret::Val(current as i64),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sys_mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        off: u64,
    ) -> Ret {
        const MAP_SHARED: u64 = 1;
        const MAP_PRIVATE: u64 = 2;
        const MAP_FIXED: u64 = 0x10;
        const MAP_ANONYMOUS: u64 = 0x20;
        const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
        // Protection bits past PROT_EXEC mean nothing to mmap on Linux,
        // which takes them.
        let prot = prot & 7;
        // Linux's order: the offset, then the descriptor, then the rest.
        if off % 4096 != 0 {
            return err(EINVAL);
        }
        if flags & MAP_ANONYMOUS == 0 {
            if let Err(e) = self.file(pid, fd) {
                return err(e);
            }
        }
        if len == 0 {
            return err(EINVAL);
        }
        if flags & (MAP_SHARED | MAP_PRIVATE) == 0 {
            return err(EINVAL);
        }
        // MAP_SHARED_VALIDATE (both bits): a shared file mapping whose
        // flags are checked (EOPNOTSUPP for one Linux does not know, or
        // MAP_SYNC, which only DAX files take); never anonymous.
        if flags & (MAP_SHARED | MAP_PRIVATE) == MAP_SHARED | MAP_PRIVATE {
            // Linux's LEGACY_MAP_MASK, MAP_FIXED_NOREPLACE, and the huge
            // page size bits.
            const KNOWN: u64 = 0x7f933 | 0x10_0000 | 0x3f << 26;
            const EOPNOTSUPP: Errno = 95;
            if flags & MAP_ANONYMOUS != 0 {
                return err(EINVAL);
            }
            if flags & !KNOWN != 0 {
                return err(EOPNOTSUPP);
            }
        }
        // The file range must be one a file can have, as Linux checks.
        const EOVERFLOW: Errno = 75;
        if flags & MAP_ANONYMOUS == 0
            && len
                .checked_next_multiple_of(4096)
                .and_then(|l| off.checked_add(l))
                .is_none_or(|end| end > i64::MAX as u64)
        {
            return err(EOVERFLOW);
        }
        // A host file maps as a private copy (its pages written at the
        // memory components now); shared only when nothing may write it.
        let mut from_file = None;
        let mut from_tmp = None;
        let mut from_store = None;
        let mut shared_map = None;
        // Shared anonymous memory: MAP_SHARED of /dev/zero is the same on
        // Linux.
        let mut shared_anon = flags & MAP_SHARED != 0 && flags & MAP_ANONYMOUS != 0;
        // A shared mapping that may never be made writable: of /dev/zero
        // open read-only, or of a memfd sealed against writes.
        let mut never_writable = false;
        if flags & MAP_ANONYMOUS == 0 {
            match self.file(pid, fd) {
                Ok(f) if f.kind == Kind::DevZero => {
                    // Linux's rules for a file: open for reading, and for
                    // writing if shared and writable (now or by mprotect).
                    if !f.readable() || (flags & MAP_SHARED != 0 && prot & 2 != 0 && !f.writable())
                    {
                        return err(EACCES);
                    }
                    shared_anon = flags & MAP_SHARED != 0;
                    never_writable = !f.writable();
                }
                Ok(f) => match f.kind {
                    Kind::Host(h) => {
                        if !f.readable() {
                            return err(EACCES);
                        }
                        if flags & MAP_SHARED != 0 && prot & 2 != 0 {
                            return err(EACCES);
                        }
                        let size = match host::stat_path(procpid::on_host(&f), true) {
                            Ok(st) => st.size,
                            Err(e) => return err(e),
                        };
                        from_file = Some((h, size));
                    }
                    // Private: a copy, written in after mapping. Shared:
                    // the file's object, as for storage files below.
                    Kind::Tmp(ino) if f.readable() && !self.tmp.is_directory(ino) => {
                        if flags & MAP_SHARED != 0 {
                            if prot & 2 != 0 && !f.writable() {
                                return err(EACCES);
                            }
                            // Sealed against writes (a memfd's F_SEAL_WRITE
                            // or F_SEAL_FUTURE_WRITE): not writable, now or
                            // by mprotect later.
                            let sealed = self.seals_of(ino) & 0x18 != 0;
                            if prot & 2 != 0 && sealed {
                                return err(EPERM);
                            }
                            never_writable |= sealed;
                            shared_map = Some((FileRef::Tmp(ino), f.writable()));
                        } else {
                            from_tmp = Some(ino);
                        }
                    }
                    // Shared: kept in step with the file (`shared`);
                    // writable only if the file is open for writing, as
                    // on Linux.
                    // A file of any kind must be open for reading.
                    Kind::Tmp(_) | Kind::Store(_) if !f.readable() => return err(EACCES),
                    Kind::Store(ino) if f.readable() => {
                        if flags & MAP_SHARED != 0 {
                            if prot & 2 != 0 && !f.writable() {
                                return err(EACCES);
                            }
                            shared_map = Some((FileRef::Store(ino), f.writable()));
                        }
                        from_store = Some(ino);
                    }
                    _ => return err(ENODEV),
                },
                Err(e) => return err(e),
            }
        }
        let fixed = flags & MAP_FIXED != 0;
        let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
        if (fixed || noreplace) && addr % 4096 != 0 {
            return err(EINVAL);
        }
        let hint = addr & !0xfff;
        // A tmpfs file's bytes are written through the mapping: writable
        // until they are in.
        // A shared mapping of a storage file shows the file's object, not
        // its own pages.
        if shared_map.is_some() {
            from_store = None;
        }
        let first_prot = if from_tmp.is_some() || from_store.is_some() {
            prot | 3
        } else {
            prot
        };
        // Past RLIMIT_MEMLOCK, a mapping to be locked is refused before
        // anything is replaced.
        const MAP_LOCKED: u64 = 0x2000;
        if let Err(e) = self.lock_room(pid, range_end(0, len), flags & MAP_LOCKED != 0) {
            return err(e);
        }
        // A fixed mapping replaces what is there: shared mappings of the
        // range are written back first, while they still hold their bytes.
        if fixed {
            let space = self.procs.get(&pid).map_or(0, |p| p.space);
            let _ = self.flush_shared(space, hint, range_end(hint, len), false);
        }
        let r = self.space_mut(pid).and_then(|s| {
            s.call(MemRequest {
                op: OP_MMAP,
                addr: hint,
                len,
                prot: first_prot as u32,
                flags: if fixed { FLAG_FIXED } else { 0 },
                ..Default::default()
            })
        });
        match r {
            Ok(a) if noreplace && a != hint => {
                let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                err(EEXIST)
            }
            Ok(a) => {
                if let Some((h, size)) = from_file {
                    let n = size.saturating_sub(off).min(len);
                    let slot = self.space_mut(pid).map_or(0, |s| s.slot);
                    if n > 0 {
                        let r = host::load(h, slot, off, n, a, first_prot as u32);
                        if r < 0 {
                            let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                            return err(-r);
                        }
                    }
                }
                let space = self.procs.get(&pid).map_or(0, |p| p.space);
                // What the new mapping replaced (written back above) stops
                // being shared.
                self.forget_shared(space, a, range_end(a, len));
                self.unshare_anon(space, a, range_end(a, len));
                if shared_anon {
                    if let Err(e) = self.map_shared_anon(space, a, len, prot as u32) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    if never_writable {
                        if let Some(e) = self.spaces.get_mut(&space) {
                            e.space.redirects.forbid_writes(a, range_end(a, len));
                        }
                    }
                }
                if let Some(ino) = from_store {
                    if let Err(e) = self.fill_private(pid, FileRef::Store(ino), off, a, len, prot) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    self.private_maps.add(PrivateMap {
                        space,
                        start: a,
                        end: range_end(a, len),
                        file: FileRef::Store(ino),
                        offset: off,
                    });
                }
                if let Some((file, may_write)) = shared_map {
                    if let Err(e) = self.map_file_shared(space, a, len, file, off, prot as u32) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    if never_writable {
                        if let Some(e) = self.spaces.get_mut(&space) {
                            e.space.redirects.forbid_writes(a, range_end(a, len));
                        }
                    }
                    self.add_shared_map(SharedMap {
                        space,
                        start: a,
                        end: range_end(a, len),
                        file,
                        offset: off,
                        writable: prot & 2 != 0,
                        may_write,
                    });
                }
                if let Some(ino) = from_tmp {
                    if let Err(e) = self.fill_private(pid, FileRef::Tmp(ino), off, a, len, prot) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    self.private_maps.add(PrivateMap {
                        space,
                        start: a,
                        end: range_end(a, len),
                        file: FileRef::Tmp(ino),
                        offset: off,
                    });
                }
                // What it replaced was unlocked; it is locked if asked
                // (MAP_LOCKED) or under mlockall(MCL_FUTURE), within the
                // limit asked above.
                let end = range_end(a, len);
                self.unlock_gone(pid, a, end);
                let _ = self.lock_new(pid, a, end, flags & MAP_LOCKED != 0);
                Ret::Val(a as i64)
            }
            Err(EINVAL) => err(EINVAL),
            Err(_) => err(ENOMEM),
        }
    }

    /// madvise: DONTNEED and FREE drop the pages (read back as zeros);
    /// the other hints Linux knows are taken and change nothing here.
    /// Decided: MADV_WIPEONFORK and MADV_KEEPONFORK are EINVAL, as from a
    /// Linux before 4.14, so that a library that relies on a wiped page to
    /// see a fork (BoringSSL's and LibreSSL's random state) falls back to
    /// its own check rather than believe a wipe that does not happen; an
    /// advice Linux does not know is EINVAL.
    fn sys_madvise(&mut self, pid: Pid, addr: u64, len: u64, advice: u64) -> Ret {
        const MADV_DONTNEED: u64 = 4;
        const MADV_FREE: u64 = 8;
        const MADV_WIPEONFORK: u64 = 18;
        const MADV_KEEPONFORK: u64 = 19;
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        let known = matches!(advice, 0..=4 | 8..=17 | 20..=25 | 100 | 101);
        if !known || advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK {
            return err(EINVAL);
        }
        // As Linux: a length that wraps is EINVAL, an empty range does
        // nothing, and a discard over unmapped pages is ENOMEM (after the
        // mapped ones are discarded).
        let Some(len) = len.checked_next_multiple_of(4096) else {
            return err(EINVAL);
        };
        if addr.checked_add(len).is_none() {
            return err(EINVAL);
        }
        if len == 0 {
            return Ret::Val(0);
        }
        // Locked pages may not be dropped (MADV_REMOVE too), nor
        // (MADV_COLD, MADV_PAGEOUT) sent away, as Linux's VM_LOCKED rule.
        if matches!(advice, MADV_DONTNEED | MADV_FREE | 9 | 20 | 21)
            && self.locked_in(pid, addr, addr + len)
        {
            return err(EINVAL);
        }
        if advice == MADV_DONTNEED || advice == MADV_FREE {
            let r = self.space_mut(pid).and_then(|s| {
                s.call(MemRequest {
                    op: OP_DISCARD,
                    addr,
                    len,
                    ..Default::default()
                })
            });
            return match r {
                Ok(v) if v & DISCARD_PART_UNMAPPED != 0 => err(ENOMEM),
                Ok(_) => Ret::Val(0),
                Err(EFAULT) => err(ENOMEM),
                Err(e) => err(e),
            };
        }
        // Decided: advice that changes nothing here (the hints) is not
        // checked against the VMAs, so it is 0 even over a hole where
        // Linux says ENOMEM: checking costs a round trip to the home
        // (about 180 us, three times the call) and made stress-ng's madvise
        // stressor ten times slower.
        Ret::Val(0)
    }

    /// fsync and fdatasync: a storage file's writes (and its shared
    /// mappings' stores) are at the storage component when it returns.
    fn sys_fsync(&mut self, pid: Pid, fd: i64) -> Ret {
        match self.file(pid, fd) {
            Ok(f) if matches!(f.kind, Kind::Store(_) | Kind::StoreDir(_)) => {
                let mut file = None;
                if let Kind::Store(ino) = f.kind {
                    if let Err(e) = self.flush_file_maps(FileRef::Store(ino)) {
                        return err(e);
                    }
                    file = Some(ino);
                }
                val(self.store_sync(file))
            }
            // Nothing here is durable (tmpfs) or changes (the host's);
            // a tmpfs file's shared mappings reach it.
            Ok(f) if matches!(f.kind, Kind::Tmp(_) | Kind::Host(_) | Kind::HostDir(_)) => {
                if let Kind::Tmp(ino) = f.kind {
                    if let Err(e) = self.flush_file_maps(FileRef::Tmp(ino)) {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            Ok(_) => err(EINVAL),
            Err(e) => err(e),
        }
    }

    /// sync_file_range, with Linux's checks: SYNC_FILE_RANGE_WAIT_AFTER
    /// waits for the range to be written, which here is an fdatasync of
    /// the file (writes reach the storage component whole, not by range);
    /// without it the call only starts what the monitor's write-behind
    /// starts anyway. ESPIPE for what is not a file or directory.
    fn sys_sync_file_range(&mut self, pid: Pid, fd: i64, offset: u64, len: u64, flags: u64) -> Ret {
        const WAIT_AFTER: u64 = 4;
        let end = (offset as i64).checked_add(len as i64);
        if flags & !7 != 0 || (offset as i64) < 0 || end.is_none_or(|e| e < 0) {
            // A bad descriptor is told first, as Linux's.
            return err(self.file(pid, fd).err().unwrap_or(EINVAL));
        }
        match self.file(pid, fd) {
            Ok(f) if flags & WAIT_AFTER != 0 && matches!(f.kind, Kind::Store(_) | Kind::Tmp(_)) => {
                self.sys_fsync(pid, fd)
            }
            Ok(f)
                if matches!(
                    f.kind,
                    Kind::Host(_)
                        | Kind::HostDir(_)
                        | Kind::Tmp(_)
                        | Kind::Store(_)
                        | Kind::StoreDir(_)
                        | Kind::Generated
                        | Kind::ProcDir(..)
                ) =>
            {
                Ret::Val(0)
            }
            Ok(_) => err(ESPIPE),
            Err(e) => err(e),
        }
    }

    /// mincore: one byte per page of a range that must be mapped whole
    /// (ENOMEM otherwise). Decided: every page is reported resident: a
    /// process's memory is held in its memory components' RAM, never
    /// swapped, and a page never touched costs no disk read either (Linux
    /// reports those 0).
    /// [addr, addr + len), widened to whole pages, is mapped without a
    /// hole: Ok(its end), else ENOMEM.
    fn mapped_whole(&mut self, pid: Pid, addr: u64, len: u64) -> Result<u64, Errno> {
        let start = addr & !4095;
        let end = addr
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(4096))
            .ok_or(ENOMEM)?;
        if len == 0 {
            return Ok(end);
        }
        let maps = self.space_mut(pid)?.maps_in(start, end)?;
        let mut at = start;
        for v in maps.iter().filter(|v| v.end > start && v.start < end) {
            if v.start > at {
                break;
            }
            at = at.max(v.end);
        }
        if at < end {
            return Err(ENOMEM);
        }
        Ok(end)
    }

    fn sys_mincore(&mut self, pid: Pid, addr: u64, len: u64, vec: u64) -> Ret {
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        if len == 0 {
            return Ret::Val(0);
        }
        let end = match self.mapped_whole(pid, addr, len) {
            Ok(e) => e,
            Err(e) => return err(e),
        };
        let pages = ((end - addr) / 4096) as usize;
        let ones = alloc::vec![1u8; pages.min(1 << 20)];
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(ones.len());
            let r = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, vec + done as u64, &ones[..n]));
            if let Err(e) = r {
                return err(e);
            }
            done += n;
        }
        Ret::Val(0)
    }

    // ---- identity, time, limits -----------------------------------------

    /// What uname says for `pid`: the host name (`which` 0) or domain name
    /// (1) of its run, the system (2), its release (3) or version (4), as
    /// /proc/sys/kernel names them.
    fn uts_name(&self, pid: Pid, which: usize) -> &[u8] {
        let run = self.procs.get(&pid).map_or(0, |p| p.run);
        match (which, self.uts_names.get(&run)) {
            (0 | 1, Some(names)) => &names[which],
            (0, None) => b"lego",
            (1, None) => b"(none)",
            (2, _) => b"Linux",
            (3, _) => b"6.1.0-lego",
            _ => b"#1 SMP Lego splitkernel",
        }
    }

    fn sys_uname(&mut self, pid: Pid, buf: u64) -> Ret {
        let mut u = [0u8; 6 * 65];
        let fields: [&[u8]; 6] = [
            self.uts_name(pid, 2),
            self.uts_name(pid, 0),
            self.uts_name(pid, 3),
            self.uts_name(pid, 4),
            b"x86_64",
            self.uts_name(pid, 1),
        ];
        for (i, f) in fields.iter().enumerate() {
            u[i * 65..i * 65 + f.len()].copy_from_slice(f);
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &u).map(|_| 0)))
    }

    /// sethostname (`which` 0) and setdomainname (1): root's (Linux asks
    /// CAP_SYS_ADMIN), up to 64 bytes, taken as they are (no NUL needed).
    fn sys_set_uts_name(&mut self, pid: Pid, which: usize, name: u64, len: u64) -> Ret {
        let len = len as i32;
        if !self
            .procs
            .get(&pid)
            .is_some_and(|p| p.cred.capable(pmon::caps::SYS_ADMIN))
        {
            return err(EPERM);
        }
        if !(0..=64).contains(&len) {
            return err(EINVAL);
        }
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, name, len as usize))
        {
            Ok(bytes) => {
                let run = self.procs.get(&pid).map_or(0, |p| p.run);
                self.uts_names
                    .entry(run)
                    .or_insert_with(|| [b"lego".to_vec(), b"(none)".to_vec()])[which] = bytes;
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    /// Process `pid`'s CPU clock (Linux's CLOCK_PROCESS_CPUTIME_ID: user
    /// and system time), and that of its waited-for children, in ns.
    pub(in crate::kernel) fn cpu_ns(&self, pid: Pid) -> (u64, u64) {
        let [user, sys, child_user, child_sys] = self.times_ns(pid);
        (user + sys, child_user + child_sys)
    }

    /// Process `pid`'s user and system time, and its waited-for
    /// children's, in ns. User time is the TSC's count in user mode;
    /// system time the monitor's on its calls and faults, the exits to
    /// the VMM they take included (a memory call's round trip keeps the
    /// vCPU busy, as a disk wait would not on Linux).
    pub(in crate::kernel) fn times_ns(&self, pid: Pid) -> [u64; 4] {
        self.procs.get(&pid).map_or([0; 4], |p| {
            [p.cycles, p.sys_cycles, p.child_cycles, p.child_sys_cycles].map(|c| self.cycles_ns(c))
        })
    }

    /// Thread `tid`'s CPU clock (user and system time), in ns.
    pub(in crate::kernel) fn thread_cpu_ns(&self, tid: Tid) -> u64 {
        let (user, sys) = self.thread_times_ns(tid);
        user + sys
    }

    /// Thread `tid`'s user and system time, in ns.
    pub(in crate::kernel) fn thread_times_ns(&self, tid: Tid) -> (u64, u64) {
        self.threads.get(&tid).map_or((0, 0), |t| {
            (self.cycles_ns(t.cycles), self.cycles_ns(t.sys_cycles))
        })
    }

    /// TSC cycles in ns.
    fn cycles_ns(&self, cycles: u64) -> u64 {
        (cycles as u128 * 1_000_000 / self.tsc_khz.max(1) as u128) as u64
    }

    /// A child is reaped: its CPU time joins its parent's children's.
    fn reap_child(&mut self, parent: Pid, child: Pid) {
        if let Some(c) = self.procs.remove(&child) {
            if let Some(p) = self.procs.get_mut(&parent) {
                p.child_cycles += c.cycles + c.child_cycles;
                p.child_sys_cycles += c.sys_cycles + c.child_sys_cycles;
            }
        }
        // A pidfd of the child hangs up now: its pollers look again.
        self.wake_all(Wait::Any);
    }

    fn clock_ns(&self, pid: Pid, clock: u64) -> Result<u64, Errno> {
        let id = clock as i32;
        if id < 0 {
            return self.cpu_clock_ns(pid, id);
        }
        match id {
            0 | 5 | 8 | 11 => Ok(self.realtime_ns()),
            1 | 4 | 6 | 7 | 9 => Ok(self.now_ns()),
            2 => Ok(self.cpu_ns(pid).0),
            3 => Ok(self.thread_cpu_ns(self.caller)),
            _ => Err(EINVAL),
        }
    }

    /// A CPU-time clock of a process or thread by id, as
    /// clock_getcpuclockid and pthread_getcpuclockid make them (`~id << 3`,
    /// bit 2 for a thread, the low bits the kind): the process's or the
    /// thread's time in user mode. EINVAL for no such process, a thread of
    /// another process, or a kind Linux lacks, as Linux answers.
    fn cpu_clock_ns(&self, pid: Pid, id: i32) -> Result<u64, Errno> {
        if id & 4 != 0 {
            return self.thread_clock(pid, id).map(|t| self.thread_cpu_ns(t));
        }
        self.process_clock(pid, id).map(|p| self.cpu_ns(p).0)
    }

    /// The thread a thread CPU clock id names (0: the caller), if it is
    /// one of `pid`'s; EINVAL otherwise.
    fn thread_clock(&self, pid: Pid, id: i32) -> Result<Tid, Errno> {
        if id & 3 == 3 || id & 4 == 0 {
            return Err(EINVAL);
        }
        match !(id >> 3) as u32 {
            0 => Ok(self.caller),
            t => self
                .threads
                .get(&t)
                .filter(|th| th.pid == pid)
                .map(|_| t)
                .ok_or(EINVAL),
        }
    }

    /// The process a process CPU clock id names (0: the caller's).
    fn process_clock(&self, pid: Pid, id: i32) -> Result<Pid, Errno> {
        if id & 3 == 3 || id & 4 != 0 {
            return Err(EINVAL);
        }
        match !(id >> 3) as u32 {
            0 => Ok(pid),
            p if self.procs.contains_key(&p) => Ok(p),
            _ => Err(EINVAL),
        }
    }

    fn sys_clock_gettime(&mut self, pid: Pid, clock: u64, tp: u64) -> Ret {
        let ns = match self.clock_ns(pid, clock) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, tp, &timespec(ns)).map(|_| 0)))
    }

    /// A timeout argument: None for a null pointer (wait for ever).
    fn read_timeout(&mut self, pid: Pid, at: u64) -> Result<Option<u64>, Errno> {
        if at == 0 {
            return Ok(None);
        }
        self.read_timespec(pid, at).map(Some)
    }

    fn read_timespec(&mut self, pid: Pid, at: u64) -> Result<u64, Errno> {
        let b = uaccess::read_vec(self.space_mut(pid)?, at, 16)?;
        let s = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let ns = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return Err(EINVAL);
        }
        Ok((s as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ns as u64))
    }

    /// A `struct itimerspec` at `at`: (period, value) in ns.
    fn read_itimerspec(&mut self, pid: Pid, at: u64) -> Result<(u64, u64), Errno> {
        let period = self.read_timespec(pid, at)?;
        Ok((period, self.read_timespec(pid, at.wrapping_add(16))?))
    }

    /// nanosleep and clock_nanosleep. A sleep a handled signal ends writes
    /// what was left of it to `rem` (relative sleeps only): see
    /// `write_sleep_left`, at the interruption.
    fn sys_nanosleep(&mut self, tid: Tid, clock: u64, flags: u64, req: u64, _rem: u64) -> Ret {
        const EOPNOTSUPP: Errno = 95;
        let pid = self.pid_of(tid);
        // Linux's clocks without a sleep: the thread CPU clocks, the raw
        // and the coarse ones; unknown ones EINVAL.
        match clock as i32 {
            3..=6 => return err(EOPNOTSUPP),
            id if id < 0 && id & 4 != 0 => return err(EOPNOTSUPP),
            id if id < 0 => {
                if let Err(e) = self.cpu_clock_ns(pid, id) {
                    return err(e);
                }
            }
            0..=11 if clock != 10 => {}
            _ => return err(EINVAL),
        }
        let ns = match self.read_timespec(pid, req) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        let deadline = if flags & 1 != 0 {
            // TIMER_ABSTIME against the clock asked for.
            let now_clock = match self.clock_ns(pid, clock) {
                Ok(n) => n,
                Err(e) => return err(e),
            };
            self.now_ns() + ns.saturating_sub(now_clock)
        } else {
            self.now_ns().saturating_add(ns)
        };
        self.block(
            tid,
            Wait::Sleep,
            Some(deadline),
            Some(0),
            OnWake::Return(-EINTR),
        );
        Ret::Block
    }

    /// alarm: the seconds left of the previous alarm (rounded as Linux
    /// does: to nearest, at least 1 while one is set).
    fn sys_alarm(&mut self, pid: Pid, secs: u64) -> Ret {
        let now = self.now_ns();
        let Some(p) = self.procs.get_mut(&pid) else {
            return err(ESRCH);
        };
        let left = p.alarm.map_or(0, |(at, _)| {
            let ns = at.saturating_sub(now);
            ((ns + 500_000_000) / 1_000_000_000).max(1)
        });
        let secs = secs & 0xffff_ffff;
        p.alarm = (secs > 0).then(|| (now + secs * 1_000_000_000, 0));
        Ret::Val(left as i64)
    }

    /// setitimer (with `new` 0: getitimer): ITIMER_REAL on the clock,
    /// ITIMER_VIRTUAL on the process's user time, ITIMER_PROF on its user
    /// and system time.
    fn sys_setitimer(&mut self, pid: Pid, which: u64, new: u64, old: u64) -> Ret {
        if which > 2 {
            return err(EINVAL);
        }
        let now = match which {
            0 => self.now_ns(),
            1 => self.times_ns(pid)[0],
            _ => self.cpu_ns(pid).0,
        };
        let to_tv = |ns: u64| [ns / 1_000_000_000, (ns % 1_000_000_000) / 1000];
        let current = self.procs.get(&pid).and_then(|p| match which {
            0 => p.alarm,
            w => p.cpu_timers[w as usize - 1],
        });
        let mut desc = [0u64; 4];
        if let Some((at, period)) = current {
            let [a, b] = to_tv(period);
            let [c, d] = to_tv(at.saturating_sub(now).max(1000));
            desc = [a, b, c, d];
        }
        let wanted = if new != 0 {
            let f = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_u64s::<4>(s, new))
            {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            let ns = |sec: u64, usec: u64| -> Result<u64, Errno> {
                if sec > i64::MAX as u64 || usec >= 1_000_000 {
                    return Err(EINVAL);
                }
                Ok(sec
                    .saturating_mul(1_000_000_000)
                    .saturating_add(usec * 1000))
            };
            match (ns(f[0], f[1]), ns(f[2], f[3])) {
                (Ok(period), Ok(value)) => Some((value, period)),
                _ => return err(EINVAL),
            }
        } else {
            None
        };
        if old != 0 {
            let bytes: Vec<u8> = desc.iter().flat_map(|v| v.to_le_bytes()).collect();
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, old, &bytes))
            {
                return err(e);
            }
        }
        if let Some((value, period)) = wanted {
            if let Some(p) = self.procs.get_mut(&pid) {
                let timer = (value > 0).then(|| (now.saturating_add(value), period));
                match which {
                    0 => p.alarm = timer,
                    w => p.cpu_timers[w as usize - 1] = timer,
                }
            }
        }
        Ret::Val(0)
    }

    fn sys_sysinfo(&mut self, pid: Pid, buf: u64) -> Ret {
        let mut s = [0u8; 112];
        let up = self.now_ns() / 1_000_000_000;
        s[0..8].copy_from_slice(&up.to_le_bytes());
        // A process's memory is its home memory component's.
        let (total, free) = match self.memory_of(pid) {
            Ok(m) => m,
            Err(e) => return err(e),
        };
        s[32..40].copy_from_slice(&total.to_le_bytes());
        s[40..48].copy_from_slice(&free.to_le_bytes());
        self.sample_load(true);
        for (i, l) in self.load.loads().into_iter().enumerate() {
            s[8 + 8 * i..16 + 8 * i].copy_from_slice(&l.to_le_bytes());
        }
        s[80..82].copy_from_slice(&(self.procs.len() as u16).to_le_bytes());
        s[104..108].copy_from_slice(&1u32.to_le_bytes());
        val(self
            .space_mut(pid)
            .and_then(|sp| uaccess::write(sp, buf, &s).map(|_| 0)))
    }

    fn sys_times(&mut self, pid: Pid, buf: u64) -> Ret {
        let ticks = |ns: u64| ns / 10_000_000;
        if buf != 0 {
            // tms_utime, tms_stime, tms_cutime, tms_cstime.
            let mut t = [0u8; 32];
            for (i, ns) in self.times_ns(pid).into_iter().enumerate() {
                t[i * 8..i * 8 + 8].copy_from_slice(&ticks(ns).to_le_bytes());
            }
            if let Err(e) = self.space_mut(pid).and_then(|s| uaccess::write(s, buf, &t)) {
                return err(e);
            }
        }
        Ret::Val(ticks(self.now_ns()) as i64 + 1)
    }

    fn sys_getrusage(&mut self, pid: Pid, who: i64, buf: u64) -> Ret {
        if !(-1..=1).contains(&who) {
            return err(EINVAL);
        }
        // RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD (the caller's).
        let [user, sys, child_user, child_sys] = self.times_ns(pid);
        let (user, sys) = match who {
            -1 => (child_user, child_sys),
            1 => self.thread_times_ns(self.caller),
            _ => (user, sys),
        };
        let r = rusage_of(user, sys);
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &r).map(|_| 0)))
    }

    fn sys_arch_prctl(&mut self, tid: Tid, code: u64, addr: u64) -> Ret {
        const ARCH_SET_FS: u64 = 0x1002;
        const ARCH_GET_FS: u64 = 0x1003;
        let pid = self.pid_of(tid);
        match code {
            ARCH_SET_FS => {
                if addr >= self.window.user_top() {
                    return err(EPERM);
                }
                if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                    ctx.fs_base = addr;
                }
                Ret::Val(0)
            }
            ARCH_GET_FS => {
                let fs = self
                    .threads
                    .get(&tid)
                    .and_then(|t| t.ctx.as_ref())
                    .map_or(0, |c| c.fs_base);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u64(s, addr, fs).map(|_| 0)))
            }
            // GS, CET, AMX permissions: not offered.
            _ => err(EINVAL),
        }
    }

    /// prlimit64 (and getrlimit, setrlimit on the caller): a new limit is
    /// read and checked before the old one is written back, as Linux does.
    /// `target` may name a thread (its process's limits) or the parent
    /// outside the processor, whose limits are a first process's and read
    /// only to root (decided: it may not be changed, EPERM).
    fn sys_prlimit(&mut self, pid: Pid, target: Pid, res: u64, new: u64, old: u64) -> Ret {
        use pmon::rlimit;
        let new = if new == 0 {
            None
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, new, 16))
            {
                Ok(b) => {
                    let word =
                        |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
                    Some((word(0), word(8)))
                }
                Err(e) => return err(e),
            }
        };
        let Some(me) = self.procs.get(&pid).map(|p| p.cred) else {
            return err(ESRCH);
        };
        let target = match target {
            0 => pid,
            t if self.procs.contains_key(&t) => t,
            t => match self.threads.contains_key(&t) {
                true => self.pid_of(t),
                false if self.is_outside(t) => {
                    if new.is_some() || !me.capable(pmon::caps::SYS_RESOURCE) {
                        return err(EPERM);
                    }
                    return match rlimit::initial(super::exec::STACK_SIZE).get(res as usize) {
                        Some(&limit) => self.write_rlimit(pid, old, limit),
                        None => err(EINVAL),
                    };
                }
                false => return err(ESRCH),
            },
        };
        let Some(p) = self.procs.get(&target) else {
            return err(ESRCH);
        };
        if target != pid && !me.may_prlimit(&p.cred) {
            return err(EPERM);
        }
        let Some(&current) = p.rlimits.get(res as usize) else {
            return err(EINVAL);
        };
        if let Some(limit) = new {
            let may_raise = me.capable(pmon::caps::SYS_RESOURCE);
            if let Err(e) = rlimit::check(res as usize, current, limit, may_raise) {
                return err(e);
            }
            if let Some(p) = self.procs.get_mut(&target) {
                p.rlimits[res as usize] = limit;
                if res as usize == rlimit::RLIMIT_NOFILE {
                    p.fds.limit = (limit.0 as usize).min(pmon::fd::MAX_LIMIT);
                }
            }
        }
        self.write_rlimit(pid, old, current)
    }

    /// Writes `limit` as a struct rlimit64 at `addr` of `pid`, unless 0.
    fn write_rlimit(&mut self, pid: Pid, addr: u64, limit: (u64, u64)) -> Ret {
        if addr == 0 {
            return Ret::Val(0);
        }
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&limit.0.to_le_bytes());
        b[8..].copy_from_slice(&limit.1.to_le_bytes());
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, addr, &b))
            .map(|_| 0))
    }

    /// prctl: the options programs use on their own process and thread.
    fn sys_prctl(&mut self, tid: Tid, a: [u64; 6]) -> Ret {
        const PR_SET_PDEATHSIG: u64 = 1;
        const PR_GET_PDEATHSIG: u64 = 2;
        const PR_GET_DUMPABLE: u64 = 3;
        const PR_SET_DUMPABLE: u64 = 4;
        const PR_SET_NAME: u64 = 15;
        const PR_GET_NAME: u64 = 16;
        const PR_SET_CHILD_SUBREAPER: u64 = 36;
        const PR_GET_CHILD_SUBREAPER: u64 = 37;
        const PR_SET_NO_NEW_PRIVS: u64 = 38;
        const PR_SET_TIMERSLACK: u64 = 29;
        const PR_GET_TIMERSLACK: u64 = 30;
        const PR_GET_NO_NEW_PRIVS: u64 = 39;
        let pid = self.pid_of(tid);
        if let Some(r) = self.prctl_caps(pid, a) {
            return r;
        }
        let (option, arg) = (a[0], a[1]);
        match option {
            PR_SET_PDEATHSIG if arg <= 64 => val(self
                .proc_mut(pid)
                .map(|p| p.pdeath_signal = arg as u32)
                .map(|_| 0)),
            PR_SET_CHILD_SUBREAPER => val(self
                .proc_mut(pid)
                .map(|p| p.subreaper = arg != 0)
                .map(|_| 0)),
            PR_GET_CHILD_SUBREAPER => {
                let v = self.procs.get(&pid).is_some_and(|p| p.subreaper) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, v).map(|_| 0)))
            }
            PR_GET_PDEATHSIG => {
                let sig = self.procs.get(&pid).map_or(0, |p| p.pdeath_signal);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, sig).map(|_| 0)))
            }
            PR_GET_DUMPABLE => Ret::Val(self.procs.get(&pid).is_some_and(|p| p.dumpable) as i64),
            PR_SET_DUMPABLE if arg <= 1 => {
                val(self.proc_mut(pid).map(|p| p.dumpable = arg == 1).map(|_| 0))
            }
            PR_SET_NO_NEW_PRIVS if arg == 1 && a[2..5] == [0, 0, 0] => {
                val(self.proc_mut(pid).map(|p| p.no_new_privs = true).map(|_| 0))
            }
            // 0 gives back the default, as Linux (an unsigned long).
            PR_SET_TIMERSLACK => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.timer_slack.0 = if arg == 0 { t.timer_slack.1 } else { arg };
                }
                Ret::Val(0)
            }
            PR_GET_TIMERSLACK => Ret::Val(
                self.threads
                    .get(&tid)
                    .map_or(DEFAULT_TIMER_SLACK, |t| t.timer_slack.0) as i64,
            ),
            PR_GET_NO_NEW_PRIVS => {
                Ret::Val(self.procs.get(&pid).is_some_and(|p| p.no_new_privs) as i64)
            }
            PR_SET_NAME => {
                // A longer name is cut to 15 bytes, as Linux.
                let name = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_cstr_cut(s, arg, 15))
                {
                    Ok(n) => n,
                    Err(e) => return err(e),
                };
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.name = [0; 16];
                    t.name[..name.len()].copy_from_slice(&name);
                }
                Ret::Val(0)
            }
            PR_GET_NAME => {
                let mut name = [0u8; 16];
                let comm = self.comm_of(tid);
                name[..comm.len()].copy_from_slice(&comm);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &name).map(|_| 0)))
            }
            _ => err(EINVAL),
        }
    }

    /// getcwd: the working directory as the process's root shows it; one
    /// outside that root (a chroot that did not chdir) is
    /// "(unreachable)" and its whole name, as Linux's, which glibc's
    /// getcwd and realpath turn into ENOENT (CVE-2018-1000001).
    fn sys_getcwd(&mut self, pid: Pid, buf: u64, size: usize) -> Ret {
        let mut cwd = self
            .procs
            .get(&pid)
            .map(|p| {
                let inside = p.root == b"/"
                    || p.cwd == p.root
                    || p.cwd
                        .strip_prefix(&p.root[..])
                        .is_some_and(|r| r.starts_with(b"/"));
                if inside {
                    pmon::path::shown_in(&p.root, &p.cwd)
                } else {
                    [&b"(unreachable)"[..], &p.cwd].concat()
                }
            })
            .unwrap_or_default();
        cwd.push(0);
        if size < cwd.len() {
            return err(ERANGE);
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &cwd).map(|_| cwd.len() as i64)))
    }

    // ---- signals --------------------------------------------------------

    fn sys_sigaction(&mut self, pid: Pid, sig: u32, act: u64, oact: u64, size: u64) -> Ret {
        if size != 8 || sig == 0 || sig > NSIG {
            return err(EINVAL);
        }
        let Some(old) = self.procs.get(&pid).map(|p| p.actions[(sig - 1) as usize]) else {
            return err(ESRCH);
        };
        let new = if act != 0 {
            if sig == SIGKILL || sig == SIGSTOP {
                return err(EINVAL);
            }
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, act, 32))
            {
                Ok(b) => match <SigAction as zerocopy::FromBytes>::read_from_bytes(&b) {
                    Ok(a) => Some(a),
                    Err(_) => return err(EFAULT),
                },
                Err(e) => return err(e),
            }
        } else {
            None
        };
        if oact != 0 {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, oact, zerocopy::IntoBytes::as_bytes(&old)))
            {
                return err(e);
            }
        }
        if let Some(mut a) = new {
            a.mask &= !UNBLOCKABLE;
            if let Some(p) = self.procs.get_mut(&pid) {
                p.actions[(sig - 1) as usize] = a;
                // Setting SIG_IGN (or a default that ignores) drops what is pending.
                if a.handler == SIG_IGN {
                    p.pending.retain(|i| i.signo != sig);
                }
            }
        }
        Ret::Val(0)
    }

    fn sys_sigprocmask(&mut self, tid: Tid, how: u64, set: u64, oset: u64, size: u64) -> Ret {
        if size != 8 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let old = self.threads.get(&tid).map_or(0, |t| t.sigmask);
        if oset != 0 {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u64(s, oset, old))
            {
                return err(e);
            }
        }
        if set != 0 {
            let s = match self
                .space_mut(pid)
                .and_then(|sp| uaccess::read_u64(sp, set))
            {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            let new = match how {
                0 => old | s,
                1 => old & !s,
                2 => s,
                _ => return err(EINVAL),
            };
            if let Some(t) = self.threads.get_mut(&tid) {
                t.sigmask = new & !UNBLOCKABLE;
            }
        }
        Ret::Val(0)
    }

    fn sys_sigaltstack(&mut self, tid: Tid, pid: Pid, ss: u64, oss: u64) -> Ret {
        let Some(cur) = self.threads.get(&tid).map(|t| t.altstack) else {
            return err(ESRCH);
        };
        let rsp = self
            .threads
            .get(&tid)
            .and_then(|t| t.ctx.as_ref())
            .map_or(0, |c| c.frame.rsp);
        let on = cur.flags & SS_DISABLE == 0 && rsp.wrapping_sub(cur.sp) < cur.size;
        if oss != 0 {
            let report = AltStack {
                flags: if on { SS_ONSTACK } else { cur.flags },
                ..cur
            };
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, oss, zerocopy::IntoBytes::as_bytes(&report)))
            {
                return err(e);
            }
        }
        if ss != 0 {
            if on {
                return err(EPERM);
            }
            let b = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, ss, 24))
            {
                Ok(b) => b,
                Err(e) => return err(e),
            };
            let Ok(new) = <AltStack as zerocopy::FromBytes>::read_from_bytes(&b) else {
                return err(EFAULT);
            };
            if new.flags & !(SS_DISABLE | 0x8000_0000) != 0 {
                return err(EINVAL);
            }
            if new.flags & SS_DISABLE == 0 && new.size < 2048 {
                return err(libc_enomem());
            }
            if let Some(t) = self.threads.get_mut(&tid) {
                t.altstack = new;
            }
        }
        Ret::Val(0)
    }

    /// setpgid with Linux's checks: the caller or a child of its (ESRCH),
    /// a child in the caller's session (EPERM) that has not run execve
    /// (EACCES), not a session leader (EPERM), into a
    /// new group of its own or an existing one of that session (EPERM).
    fn setpgid(&mut self, pid: Pid, target: i32, pgid: i32) -> Result<(), Errno> {
        if target < 0 || pgid < 0 {
            return Err(EINVAL);
        }
        let target = if target == 0 { pid } else { target as Pid };
        let pgid = if pgid == 0 { target } else { pgid as Pid };
        let sid = self.procs.get(&pid).map(|p| p.sid).ok_or(ESRCH)?;
        let t = self.procs.get(&target).ok_or(ESRCH)?;
        if target != pid && t.ppid != pid {
            return Err(ESRCH);
        }
        if target != pid && t.sid != sid {
            return Err(EPERM);
        }
        if target != pid && t.execed {
            return Err(EACCES);
        }
        if t.sid == target || t.sid != sid {
            return Err(EPERM);
        }
        if pgid != target && !self.procs.values().any(|p| p.pgid == pgid && p.sid == sid) {
            return Err(EPERM);
        }
        if let Some(t) = self.procs.get_mut(&target) {
            t.pgid = pgid;
        }
        Ok(())
    }

    fn sys_kill(&mut self, pid: Pid, target: i64, sig: u32) -> Ret {
        if sig > NSIG {
            return err(EINVAL);
        }
        // The parent outside (root's, as the first process starts): who
        // may signal root may ask whether it is there.
        if target == OUTSIDE as i64 && self.is_outside(OUTSIDE) {
            let root = pmon::cred::Cred::default();
            let may = self
                .procs
                .get(&pid)
                .is_some_and(|p| p.cred.may_signal(&root));
            return if sig == 0 && may {
                Ret::Val(0)
            } else {
                err(pmon::cred::EPERM)
            };
        }
        let targets: Vec<Pid> = match target {
            // (Any thread's id names its process, as Linux's PIDTYPE_PID.)
            t if t > 0 => alloc::vec![self.process_named(t as Pid)],
            0 => {
                let g = self.procs.get(&pid).map_or(0, |p| p.pgid);
                self.procs
                    .values()
                    .filter(|p| p.pgid == g)
                    .map(|p| p.pid)
                    .collect()
            }
            // Every process but the caller, as Linux's.
            -1 => self.procs.keys().copied().filter(|&p| p != pid).collect(),
            t => self
                .procs
                .values()
                .filter(|p| p.pgid == (-t) as Pid)
                .map(|p| p.pid)
                .collect(),
        };
        self.kill_targets(pid, targets, SigInfo::user(sig, SI_USER, pid), false)
    }

    /// Sends `info` from `pid` to those of `targets` it may signal (to the
    /// leading thread of each if `thread`): ESRCH when none exists, EPERM
    /// when none may be signalled; signal 0 only asks.
    fn kill_targets(&mut self, pid: Pid, targets: Vec<Pid>, info: SigInfo, thread: bool) -> Ret {
        let sig = info.signo;
        // Another vNode's processes do not exist for this one. A zombie
        // does until it is reaped, as on Linux: the signal is lost on it,
        // and the call succeeds.
        let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
        let targets: Vec<Pid> = targets
            .into_iter()
            .filter(|p| self.procs.get(p).is_some_and(|pr| pr.vnode == vnode))
            .collect();
        if targets.is_empty() {
            return err(ESRCH);
        }
        // Those the caller may signal (its own user's, or any for root;
        // SIGCONT within its session): EPERM when none is.
        let (me, session) = self
            .procs
            .get(&pid)
            .map_or((Default::default(), 0), |p| (p.cred, p.sid));
        let targets: Vec<Pid> = targets
            .into_iter()
            .filter(|t| {
                self.procs
                    .get(t)
                    .is_some_and(|p| me.may_signal(&p.cred) || (sig == SIGCONT && p.sid == session))
            })
            .collect();
        if targets.is_empty() {
            return err(pmon::cred::EPERM);
        }
        if sig == 0 {
            return Ret::Val(0);
        }
        for t in targets {
            // A process's leading thread has its id; once it has ended
            // the process takes the signal.
            let leader = self
                .threads
                .get(&t)
                .is_some_and(|th| th.state != State::Dead);
            if thread && leader {
                self.signal_thread(t, info);
            } else {
                self.signal_process(t, info);
            }
        }
        Ret::Val(0)
    }

    fn sys_tkill(&mut self, pid: Pid, tgid: i64, tid: Tid, sig: u32) -> Ret {
        if sig > NSIG {
            return err(EINVAL);
        }
        let Some(t) = self.threads.get(&tid) else {
            return err(ESRCH);
        };
        if t.state == State::Dead || (tgid >= 0 && t.pid as i64 != tgid) {
            return err(ESRCH);
        }
        if sig != 0 {
            self.signal_thread(tid, SigInfo::user(sig, SI_TKILL, pid));
        }
        Ret::Val(0)
    }

    /// rt_sigqueueinfo and rt_tgsigqueueinfo (sigqueue,
    /// pthread_sigqueue): `sig` with the caller's siginfo (its code, pid,
    /// uid and value) for process `tgid` or its thread `tid`. As Linux, a
    /// process may claim to be the kernel (a code of 0 or more) or tkill
    /// only to itself (EPERM otherwise).
    fn sys_sigqueueinfo(
        &mut self,
        pid: Pid,
        tgid: i64,
        tid: Option<Tid>,
        sig: u64,
        at: u64,
    ) -> Ret {
        if sig > NSIG as u64 {
            return err(EINVAL);
        }
        let info = match self.user_siginfo(pid, at, sig) {
            Ok((info, _)) => info,
            Err(e) => return err(e),
        };
        if info.claims_kernel() && tgid != pid as i64 {
            return err(EPERM);
        }
        // rt_sigqueueinfo by a thread's id: its process.
        let tgid = match tid {
            None if tgid > 0 => self.process_named(tgid as Pid) as i64,
            _ => tgid,
        };
        let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
        let alive = |k: &Kernel, p: Pid| {
            k.procs
                .get(&p)
                .is_some_and(|pr| pr.life == Life::Alive && pr.vnode == vnode)
        };
        if tgid <= 0 || !alive(self, tgid as Pid) {
            return err(ESRCH);
        }
        if let Some(t) = tid {
            if self
                .threads
                .get(&t)
                .is_none_or(|th| th.state == State::Dead || th.pid as i64 != tgid)
            {
                return err(ESRCH);
            }
        }
        if sig == 0 {
            return Ret::Val(0);
        }
        match tid {
            Some(t) => self.signal_thread(t, info),
            None => self.signal_process(tgid as Pid, info),
        }
        Ret::Val(0)
    }

    /// The process an id names: itself, or the process of the thread
    /// with that id (kill and rt_sigqueueinfo take either, as Linux's).
    fn process_named(&self, id: Pid) -> Pid {
        if self.procs.contains_key(&id) {
            return id;
        }
        self.threads.get(&id).map_or(id, |t| t.pid)
    }

    /// A siginfo a program gives (rt_sigqueueinfo, pidfd_send_signal) for
    /// signal `sig`: its code, pid, uid and value, and the signal number it
    /// names itself (si_signo).
    fn user_siginfo(&mut self, pid: Pid, at: u64, sig: u64) -> Result<(SigInfo, i32), Errno> {
        let bytes = uaccess::read_vec(self.space_mut(pid)?, at, 32)?;
        let word = |i: usize| i32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or([0; 4]));
        let info = SigInfo {
            pid: word(16) as u32,
            uid: word(20) as u32,
            value: u64::from_le_bytes(bytes[24..32].try_into().unwrap_or([0; 8])),
            ..SigInfo::user(sig as u32, word(8), 0)
        };
        Ok((info, word(0)))
    }

    // ---- threads and processes ------------------------------------------

    fn sys_clone(
        &mut self,
        tid: Tid,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
    ) -> Ret {
        // clone's CLONE_PIDFD writes the pidfd where CLONE_PARENT_SETTID
        // writes the id: both is EINVAL, as Linux.
        const CLONE_DETACHED: u64 = 0x40_0000;
        if flags & CLONE_PIDFD != 0 && flags & (CLONE_PARENT_SETTID | CLONE_DETACHED) != 0 {
            return err(EINVAL);
        }
        let pidfd = (flags & CLONE_PIDFD != 0).then_some(ptid);
        self.clone_task(tid, flags, stack, ptid, ctid, tls, pidfd, false)
    }

    /// clone3: `struct clone_args` (`size` bytes at `at`, checked as
    /// Linux checks it) made into clone's arguments. CLONE_CLEAR_SIGHAND
    /// gives the child default handlers; decided: set_tid (which asks for
    /// chosen process ids, CRIU's) is EPERM, as for a caller without
    /// CAP_CHECKPOINT_RESTORE, and CLONE_INTO_CGROUP, with no cgroups
    /// here, needs only an open directory. It was ENOSYS, which glibc
    /// falls back from but a program calling it itself may not.
    fn sys_clone3(&mut self, tid: Tid, at: u64, size: u64) -> Ret {
        const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
        const CLONE_INTO_CGROUP: u64 = 1 << 33;
        const CLONE_DETACHED: u64 = 0x40_0000;
        let pid = self.pid_of(tid);
        // The first version is 64 bytes; this kernel knows 88.
        let raw = match self.read_extensible(pid, at, size, 64, 88) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let field = |i: usize| word_at(&raw, i);
        let (flags, pidfd, ctid, ptid, exit_signal) =
            (field(0), field(1), field(2), field(3), field(4));
        let (stack, stack_size, tls, set_tid, set_tid_size, cgroup) =
            (field(5), field(6), field(7), field(8), field(9), field(10));
        // The exit signal is a field of its own: of clone's low byte only
        // CLONE_NEWTIME (0x80) is a flag.
        if flags & !(0xffff_ff80 | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
            || flags & CLONE_DETACHED != 0
            || exit_signal >= 64
            || (flags & (CLONE_THREAD | CLONE_PARENT) != 0 && exit_signal != 0)
            || (flags & CLONE_CLEAR_SIGHAND != 0 && flags & CLONE_SIGHAND != 0)
            || (stack == 0) != (stack_size == 0)
            || (set_tid == 0) != (set_tid_size == 0)
        {
            return err(EINVAL);
        }
        if set_tid_size != 0 {
            return err(EPERM);
        }
        if flags & CLONE_INTO_CGROUP != 0
            && !self
                .file(pid, cgroup as i32 as i64)
                .is_ok_and(|f| self.is_directory_file(&f))
        {
            return err(EBADF);
        }
        // The stack is given by its lowest address and size; clone takes
        // its top.
        let top = if stack != 0 {
            stack.saturating_add(stack_size)
        } else {
            0
        };
        let pidfd = (flags & CLONE_PIDFD != 0).then_some(pidfd);
        let clear_sighand = flags & CLONE_CLEAR_SIGHAND != 0;
        let flags = (flags & 0xffff_ff00) | exit_signal;
        self.clone_task(tid, flags, top, ptid, ctid, tls, pidfd, clear_sighand)
    }

    /// A new thread or process, as clone's `flags` say; `pidfd_at` is
    /// where CLONE_PIDFD's descriptor is written, and `clear_sighand`
    /// gives the child default handlers (clone3's CLONE_CLEAR_SIGHAND).
    #[allow(clippy::too_many_arguments)]
    fn clone_task(
        &mut self,
        tid: Tid,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
        pidfd_at: Option<u64>,
        clear_sighand: bool,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let thread = flags & CLONE_THREAD != 0;
        const CLONE_NEWNS: u64 = 0x20000;
        // As Linux's copy_process: shared handlers need the shared memory,
        // a thread the shared handlers; a new mount namespace cannot share
        // the file-system information.
        if (thread && flags & CLONE_SIGHAND == 0)
            || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
            || flags & (CLONE_FS | CLONE_NEWNS) == CLONE_FS | CLONE_NEWNS
        {
            return err(EINVAL);
        }
        // A thread has no pidfd (before Linux 6.9): EINVAL, as Linux. Its
        // descriptor must be had before the child is made.
        let pidfd_at = if let Some(at) = pidfd_at {
            if thread {
                return err(EINVAL);
            }
            // Its number is written first: a bad pointer is EFAULT with no
            // child made, as Linux.
            let fd = match self.proc_mut(pid).and_then(|p| p.fds.lowest_free(0)) {
                Ok(fd) => fd,
                Err(e) => return err(e),
            };
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, at, fd as u32))
            {
                return err(e);
            }
            Some(fd)
        } else {
            None
        };
        let Some(new) = self.alloc_id() else {
            return err(EAGAIN);
        };
        let Some(parent_ctx) = self.threads.get(&tid).and_then(|t| t.ctx.as_ref()) else {
            return err(ESRCH);
        };
        let mut ctx = UserContext {
            frame: parent_ctx.frame,
            fs_base: parent_ctx.fs_base,
            xsave: parent_ctx.xsave.clone(),
            exact: false,
        };
        ctx.frame.gprs[0] = 0;
        if stack != 0 {
            ctx.frame.rsp = stack;
        }
        if flags & CLONE_SETTLS != 0 {
            ctx.fs_base = tls;
        }
        let sigmask = self.threads.get(&tid).map_or(0, |t| t.sigmask);
        let sched = self
            .threads
            .get(&tid)
            .map_or(pmon::sched::Sched::new(self.cpus.len()), |t| {
                t.sched.for_child()
            });
        let altstack = self
            .threads
            .get(&tid)
            .map_or(AltStack::default(), |t| t.altstack);
        let child_pid = if thread {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.threads.push(new);
            }
            pid
        } else {
            let Some(parent) = self.procs.get(&pid) else {
                return err(ESRCH);
            };
            let mut actions = parent.actions;
            if clear_sighand {
                pmon::signal::reset_handlers(&mut actions);
            }
            let (space, fds, cwd, root, umask, exe, exe_on_host, bias, rlimits, pgid, sid) = (
                parent.space,
                parent.fds.clone(),
                parent.cwd.clone(),
                parent.root.clone(),
                parent.umask,
                parent.exe.clone(),
                parent.exe_on_host,
                parent.bias,
                parent.rlimits,
                parent.pgid,
                parent.sid,
            );
            let (cmdline, args) = (parent.cmdline.clone(), parent.args);
            let (environ, auxv) = (parent.environ.clone(), parent.auxv.clone());
            let groups = parent.groups.clone();
            let cred = parent.cred;
            let personality = parent.personality;
            let oom_score_adj = parent.oom_score_adj;
            let (dumpable, no_new_privs, run, vnode, home) = (
                parent.dumpable,
                parent.no_new_privs,
                parent.run,
                parent.vnode,
                parent.home,
            );
            let space = if flags & CLONE_VM != 0 {
                if let Some(e) = self.spaces.get_mut(&space) {
                    e.users += 1;
                }
                space
            } else {
                match self.fork_space(space) {
                    Ok(s) => s,
                    Err(e) => return err(e),
                }
            };
            let ppid = if flags & CLONE_PARENT != 0 {
                self.procs.get(&pid).map_or(pid, |p| p.ppid)
            } else {
                pid
            };
            self.procs.insert(
                new,
                Process {
                    pid: new,
                    ppid,
                    pgid,
                    sid,
                    space,
                    fds,
                    actions,
                    pending: VecDeque::new(),
                    threads: alloc::vec![new],
                    life: Life::Alive,
                    cwd,
                    root,
                    umask,
                    personality,
                    exe,
                    exe_on_host,
                    bias,
                    exit_signal: (flags & 0xff) as u32,
                    vfork_parent: (flags & CLONE_VFORK != 0).then_some(tid),
                    rlimits,
                    groups,
                    cred,
                    cycles: 0,
                    child_cycles: 0,
                    sys_cycles: 0,
                    child_sys_cycles: 0,
                    alarm: None,
                    // Not inherited by a forked child, as Linux's.
                    cpu_timers: [None; 2],
                    timers: Default::default(),
                    cmdline,
                    environ,
                    auxv,
                    args,
                    started: self.now_ns(),
                    pdeath_signal: 0,
                    subreaper: false,
                    execed: false,
                    exe_ino: None,
                    dumpable,
                    no_new_privs,
                    oom_score_adj,
                    job: JobState::default(),
                    run,
                    vnode,
                    home,
                },
            );
            new
        };
        let _ = (CLONE_FS, CLONE_FILES);
        self.forks += 1;
        self.threads.insert(
            new,
            Thread {
                tid: new,
                pid: child_pid,
                ctx: Some(alloc::boxed::Box::new(ctx)),
                state: State::Runnable,
                sigmask,
                pending: VecDeque::new(),
                altstack: if thread {
                    AltStack {
                        flags: SS_DISABLE,
                        ..Default::default()
                    }
                } else {
                    altstack
                },
                clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                    ctid
                } else {
                    0
                },
                robust_list: 0,
                restart: false,
                saved_mask: None,
                yielded: false,
                retrying: false,
                written: 0,
                name: [0; 16],
                timer_slack: {
                    let now = self
                        .threads
                        .get(&tid)
                        .map_or(DEFAULT_TIMER_SLACK, |t| t.timer_slack.0);
                    (now, now)
                },
                wait_deadline: None,
                sched,
                cycles: 0,
                sys_cycles: 0,
                seccomp_mode: self.threads.get(&tid).map_or(0, |t| t.seccomp_mode),
                seccomp: self
                    .threads
                    .get(&tid)
                    .map(|t| t.seccomp.clone())
                    .unwrap_or_default(),
                fault_retries: (0, 0),
            },
        );
        if let Some(fd) = pidfd_at {
            // The slot found free above: nothing has run since.
            let started = self.procs.get(&child_pid).map_or(0, |p| p.started);
            let file = OpenFile::new(Kind::PidFd(child_pid, started), O_RDWR);
            if let Some(p) = self.procs.get_mut(&pid) {
                let _ = p.fds.install_at(fd, file, true);
            }
        }
        // The tid words: the parent's in its space, the child's in the
        // child's (the same space for threads and vfork).
        if flags & CLONE_PARENT_SETTID != 0 {
            if let Some(s) = self.space_of(pid) {
                let _ = uaccess::write_u32(s, ptid, new);
            }
        }
        // A forked child's was skipped once: glibc caches the TID it finds
        // there, and its child then locked mutexes (and robust ones) with
        // its parent's TID.
        if flags & CLONE_CHILD_SETTID != 0 {
            let child_space = self.procs.get(&child_pid).map_or(0, |p| p.space);
            self.in_space(child_space, |k| {
                if let Some(s) = k.space_of(child_pid) {
                    let _ = uaccess::write_u32(s, ctid, new);
                }
            });
        }
        self.runq.push_back(new);
        self.kick_idle();
        if flags & CLONE_VFORK != 0 {
            // The parent waits until the child execs or exits.
            if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                ctx.frame.gprs[0] = new as u64;
            }
            self.block(
                tid,
                Wait::Vfork(new),
                None,
                None,
                OnWake::Return(new as i64),
            );
            if let Some(t) = self.threads.get_mut(&tid) {
                if let State::Blocked { interruptible, .. } = &mut t.state {
                    *interruptible = false;
                }
            }
            return Ret::Block;
        }
        Ret::Val(new as i64)
    }

    /// A copy of space `from` for a forked child: its dirty pages are
    /// written back first (the VMM does that for OP_FORK), then the memory
    /// components copy every mapping and page.
    fn fork_space(&mut self, from: u32) -> Result<u32, Errno> {
        let (brk, from_gpid, layout, home) = match self.spaces.get(&from) {
            Some(e) => (
                e.space.brk,
                e.space.gpid,
                e.space.layout.clone(),
                e.space.home,
            ),
            None => return Err(ESRCH),
        };
        // The child's memory is copied at the parent's home.
        self.home_now = home;
        let to = self.new_space(brk)?;
        let child_gpid = match self.spaces.get_mut(&to) {
            Some(e) => {
                e.space.layout = layout;
                e.space.gpid
            }
            None => 0,
        };
        let r = self.spaces.get_mut(&from).map(|e| {
            e.space.call(MemRequest {
                op: OP_FORK,
                arg: child_gpid as u64,
                ..Default::default()
            })
        });
        let _ = from_gpid;
        match r {
            Some(Ok(_)) => {
                self.fork_shared_maps(from, to);
                self.fork_shared_anon(from, to);
                self.fork_attaches(from, to);
                Ok(to)
            }
            Some(Err(e)) => {
                self.drop_space(to);
                Err(e)
            }
            None => {
                self.drop_space(to);
                Err(ESRCH)
            }
        }
    }

    fn sys_execve(&mut self, tid: Tid, path: u64, argv: u64, envp: u64) -> Ret {
        self.sys_execveat(tid, AT_FDCWD, path, argv, envp, 0)
    }

    /// The file an open descriptor executes (fexecve, /proc/self/fd/N,
    /// execveat's AT_EMPTY_PATH): a file of the host, the tmpfs or
    /// storage, by the path it was opened by (and whether it is the
    /// host's); EACCES for a directory or anything else. Linux runs the
    /// open file itself; the loader here reads a program by its path, so
    /// a tmpfs or storage file that no longer has that name (renamed,
    /// removed, a memfd) is ENOENT rather than whatever has the name now.
    fn exec_of_fd(&mut self, pid: Pid, fd: i64) -> Result<(Vec<u8>, bool), Errno> {
        let f = self.file(pid, fd)?;
        match f.kind {
            Kind::Host(_) => Ok((f.path.clone(), true)),
            Kind::Store(ino) => {
                let now = self.store_stat_path(&f.path, false).ok();
                // struct stat's st_ino.
                let same = now.is_some_and(|st| st[8..16] == ino.to_le_bytes());
                if same {
                    Ok((f.path.clone(), false))
                } else {
                    Err(ENOENT)
                }
            }
            Kind::Tmp(ino) if !self.tmp.is_directory(ino) => {
                let full = pmon::path::dev_shm_alias(f.path.clone());
                let now = tmp::below_tmp(&full).and_then(|rel| self.tmp.lookup(rel).ok());
                if now == Some(ino) {
                    return Ok((f.path.clone(), false));
                }
                // No name leads to it (a memfd, a deleted file): the load
                // reads the inode, and the program's /proc/self/exe says
                // so, as Linux's.
                self.exec_inode = Some(ino);
                let mut shown = f.path.clone();
                if !shown.ends_with(b" (deleted)") {
                    shown.extend_from_slice(b" (deleted)");
                }
                Ok((shown, false))
            }
            _ => Err(EACCES),
        }
    }

    /// execveat: execve of a path relative to `dirfd`, or with
    /// AT_EMPTY_PATH of the file `dirfd` is open on (glibc's and musl's
    /// fexecve); AT_SYMLINK_NOFOLLOW refuses a symbolic link (ELOOP).
    fn sys_execveat(
        &mut self,
        tid: Tid,
        dirfd: i64,
        path: u64,
        argv: u64,
        envp: u64,
        flags: u64,
    ) -> Ret {
        if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let strings = self.space_mut(pid).and_then(|s| {
            let p = uaccess::read_cstr(s, path, 4095)?;
            let a = uaccess::read_strings(s, argv, pmon::stack::MAX_ARGS_BYTES)?;
            let e = uaccess::read_strings(s, envp, pmon::stack::MAX_ARGS_BYTES)?;
            Ok((p, a, e))
        });
        let (mut p, mut a, e) = match strings {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        // No arguments at all: the program gets one empty one, as Linux
        // (5.18 on) gives it, so that argv[0] is never NULL.
        if a.is_empty() {
            a.push(Vec::new());
        }
        // The new program's name (comm) is the last part of the name it
        // was run by, as Linux's: "exe" for /proc/self/exe (busybox then
        // names itself for its applet), a link's own name, not its target's.
        let mut comm = pmon::path::last(&p).to_vec();
        // The name it runs by (AT_EXECFN, and the script's name an
        // interpreter is given), as Linux's: as given, or by the
        // descriptor it was found from (/dev/fd/N, /dev/fd/N/NAME).
        let execfn = if p.is_empty() {
            alloc::format!("/dev/fd/{dirfd}").into_bytes()
        } else if dirfd != AT_FDCWD && p.first() != Some(&b'/') {
            [alloc::format!("/dev/fd/{dirfd}/").as_bytes(), &p].concat()
        } else {
            p.clone()
        };
        let mut on_host = false;
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return err(ENOENT);
            }
            match self.exec_of_fd(pid, dirfd) {
                Ok((file, host)) => (p, on_host) = (file, host),
                Err(e) => return err(e),
            }
            // fexecve: the file's own name (Linux 6.13 on; "N" of
            // /dev/fd/N before).
            comm = pmon::path::last(&p).to_vec();
        } else if dirfd != AT_FDCWD && p.first() != Some(&b'/') {
            match self.resolve(pid, dirfd, &p) {
                Ok(full) => p = full,
                Err(e) => return err(e),
            }
        }
        if flags & AT_SYMLINK_NOFOLLOW != 0 {
            match self.resolve(pid, AT_FDCWD, &p) {
                Ok(full) if self.follow(full.clone()).is_ok_and(|f| f != full) => {
                    return err(ELOOP)
                }
                Ok(_) => {}
                Err(e) => return err(e),
            }
        }
        // The program re-executing itself (busybox runs its applets so),
        // or fexecve's /proc/self/fd/N: the file it names, even where
        // storage has one of the same name since. A symbolic link of the
        // tmpfs to one of them is followed first: the host's /proc must
        // never answer (its /proc/self/exe is lego-vmm).
        let followed = self
            .resolve(pid, AT_FDCWD, &p)
            .and_then(|full| self.follow(full))
            .map(|full| self.task_name(pid, pmon::path::name(&full, pid)));
        match followed {
            Ok(Name::Exe(t)) => match self.link_target(pid, Name::Exe(t)) {
                Ok(exe) => {
                    p = exe;
                    on_host = self.procs.get(&t).is_some_and(|pr| pr.exe_on_host);
                }
                Err(e) => return err(e),
            },
            Ok(Name::Fd(t, n)) if t != pid => match self.reach(pid, t) {
                Ok(()) => match self.exec_of_fd(t, n as i64) {
                    Ok((file, host)) => (p, on_host) = (file, host),
                    Err(e) => return err(e),
                },
                Err(e) => return err(e),
            },
            Ok(Name::Fd(_, n)) => match self.exec_of_fd(pid, n as i64) {
                Ok((file, host)) => (p, on_host) = (file, host),
                Err(e) => return err(e),
            },
            Ok(Name::Hidden | Name::SelfDir) => return err(ENOENT),
            Ok(
                Name::Null
                | Name::Zero
                | Name::Full
                | Name::Urandom
                | Name::Cwd(_)
                | Name::Root(_)
                | Name::FdDir(_)
                | Name::FdInfoDir(_)
                | Name::FdInfo(..)
                | Name::Maps(..)
                | Name::Proc(..)
                | Name::ProcDir(_)
                | Name::TaskDir(_)
                | Name::Task(..)
                | Name::TaskFile(..),
            ) => return err(EACCES),
            _ => {}
        }
        let done = self.execve(tid, (p, execfn), a, e, on_host, &comm);
        // Taken by the load, or left by a failure before it.
        self.exec_inode = None;
        match done {
            Ok(()) => Ret::NoReturn,
            Err(e) => err(e),
        }
    }

    /// A child of `pid` that wait4's `target` matches, and what a wait
    /// with `options` reports of it: its end (WEXITED), its stop
    /// (WUNTRACED, WSTOPPED) or its continuing (WCONTINUED). As Linux's, a
    /// "clone" child (whose exit signal is not SIGCHLD) is waited for only
    /// with __WCLONE, the others only without it, all with __WALL.
    fn find_child(&self, pid: Pid, target: i64, options: u64) -> (bool, Option<(Pid, Change)>) {
        const WCLONE: u64 = 0x8000_0000;
        const WALL: u64 = 0x4000_0000;
        let pgid = self.procs.get(&pid).map_or(0, |p| p.pgid);
        let matches = |c: &Process| {
            c.ppid == pid
                && (options & WALL != 0 || (c.exit_signal != SIGCHLD) == (options & WCLONE != 0))
                && match target {
                    t if t > 0 => c.pid == t as Pid,
                    -1 => true,
                    0 => c.pgid == pgid,
                    t => c.pgid == (-t) as Pid,
                }
        };
        let mut any = false;
        for c in self.procs.values().filter(|c| matches(c)) {
            any = true;
            match (c.life, c.job) {
                (Life::Zombie(status), _) if options & WEXITED != 0 => {
                    return (true, Some((c.pid, Change::Ended(status))));
                }
                (
                    Life::Alive,
                    JobState {
                        stop_report: Some(sig),
                        ..
                    },
                ) if options & WUNTRACED != 0 => {
                    return (true, Some((c.pid, Change::Stopped(sig))))
                }
                (
                    Life::Alive,
                    JobState {
                        cont_report: true, ..
                    },
                ) if options & WCONTINUED != 0 => return (true, Some((c.pid, Change::Continued))),
                _ => {}
            }
        }
        (any, None)
    }

    /// A wait took `change` of `child` (not WNOWAIT): an ended child is
    /// reaped, a stop or a continue is reported once.
    fn waited(&mut self, parent: Pid, child: Pid, change: Change) {
        match change {
            Change::Ended(_) => self.reap_child(parent, child),
            Change::Stopped(_) => {
                if let Some(c) = self.procs.get_mut(&child) {
                    c.job.stop_report = None;
                }
            }
            Change::Continued => {
                if let Some(c) = self.procs.get_mut(&child) {
                    c.job.cont_report = false;
                }
            }
        }
    }

    fn sys_wait4(&mut self, tid: Tid, target: i64, status: u64, options: u64, rusage: u64) -> Ret {
        let pid = self.pid_of(tid);
        if options & !(WNOHANG | WUNTRACED | WCONTINUED | 0x8000_0000 | 0x4000_0000 | 0x2000_0000)
            != 0
        {
            return err(EINVAL);
        }
        // (-INT_MIN is no process group.)
        if target == i32::MIN as i64 {
            return err(ESRCH);
        }
        match self.find_child(pid, target, options | WEXITED) {
            (false, _) => err(ECHILD),
            (true, Some((child, change))) => {
                let st = match change {
                    Change::Ended(st) => st,
                    Change::Stopped(sig) => ((sig as i32) << 8) | 0x7f,
                    Change::Continued => 0xffff,
                };
                // The child's times, with those of the children it waited
                // for, as Linux's wait4 gives them.
                let [user, sys, child_user, child_sys] = self.times_ns(child);
                let usage = rusage_of(user + child_user, sys + child_sys);
                let r = self.space_mut(pid).and_then(|s| {
                    if status != 0 {
                        uaccess::write_u32(s, status, st as u32)?;
                    }
                    if rusage != 0 {
                        uaccess::write(s, rusage, &usage)?;
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    return err(e);
                }
                self.waited(pid, child, change);
                Ret::Val(child as i64)
            }
            (true, None) if options & WNOHANG != 0 => Ret::Val(0),
            (true, None) => {
                self.block(tid, Wait::Child, None, None, OnWake::Retry);
                Ret::Block
            }
        }
    }

    /// waitid's report of `change` in `child`: its siginfo at `infop`,
    /// then, unless WNOWAIT, the child reaped (an end) or the report used
    /// up (a stop, a continue).
    fn waitid_report(
        &mut self,
        pid: Pid,
        infop: u64,
        options: u64,
        child: Pid,
        change: Change,
    ) -> Ret {
        let (code, status) = match change {
            Change::Ended(st) => child_ended(st),
            Change::Stopped(sig) => (CLD_STOPPED, sig as i32),
            Change::Continued => (CLD_CONTINUED, SIGCONT as i32),
        };
        let mut info = SigInfo::user(SIGCHLD, code, child);
        info.status = status;
        if infop != 0 {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, infop, &info.encode()))
            {
                return err(e);
            }
        }
        if options & WNOWAIT == 0 {
            self.waited(pid, child, change);
        }
        Ret::Val(0)
    }

    fn sys_waitid(&mut self, tid: Tid, idtype: u64, id: i64, infop: u64, options: u64) -> Ret {
        let pid = self.pid_of(tid);
        if options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
            return err(EINVAL);
        }
        // A wait on a non-blocking pidfd that would block is EAGAIN.
        let mut nonblock = false;
        let target = match idtype {
            0 => -1,  // P_ALL
            1 => id,  // P_PID
            2 => -id, // P_PGID
            3 if id < 0 => return err(EINVAL),
            3 => match self.pidfd_wait_target(pid, id) {
                Ok((t, nb)) => {
                    nonblock = nb;
                    t as i64
                }
                Err(e) => return err(e),
            },
            _ => return err(EINVAL),
        };
        match self.find_child(pid, target, options) {
            (false, _) => err(ECHILD),
            (true, Some((child, change))) => self.waitid_report(pid, infop, options, child, change),
            (true, None) if nonblock && options & WNOHANG == 0 => err(EAGAIN),
            (true, None) if options & WNOHANG != 0 => {
                if infop != 0 {
                    if let Err(e) = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::zero(s, infop, 128))
                    {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            (true, None) => {
                self.block(tid, Wait::Child, None, None, OnWake::Retry);
                Ret::Block
            }
        }
    }

    /// A shared futex's page must be there (Linux looks it up: EFAULT
    /// when unmapped or PROT_NONE); a private one's key is its address
    /// alone, asked nothing.
    fn shared_futex_there(&mut self, pid: Pid, op: u32, at: u64) -> Result<(), Errno> {
        if op & pmon::futex::FUTEX_PRIVATE_FLAG != 0 {
            return Ok(());
        }
        uaccess::read_u32(self.space_mut(pid)?, at).map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    fn sys_futex(
        &mut self,
        tid: Tid,
        uaddr: u64,
        op: u32,
        v: u32,
        timeout: u64,
        uaddr2: u64,
        v3: u32,
    ) -> Ret {
        use pmon::futex::*;
        let pid = self.pid_of(tid);
        if uaddr % 4 != 0 {
            return err(EINVAL);
        }
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        let cmd = op & FUTEX_CMD_MASK;
        let key = self.futex_key(space, uaddr);
        let key2 = self.futex_key(space, uaddr2);
        match cmd {
            FUTEX_WAIT | FUTEX_WAIT_BITSET => {
                let bitset = if cmd == FUTEX_WAIT {
                    FUTEX_BITSET_MATCH_ANY
                } else {
                    v3
                };
                if bitset == 0 {
                    return err(EINVAL);
                }
                let cur = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, uaddr))
                {
                    Ok(c) => c,
                    Err(e) => return err(e),
                };
                if cur != v {
                    return err(EAGAIN);
                }
                let deadline = match self.read_timeout(pid, timeout) {
                    Ok(None) => None,
                    Ok(Some(ns)) if cmd == FUTEX_WAIT => Some(self.now_ns().saturating_add(ns)),
                    // WAIT_BITSET's timeout is absolute, on CLOCK_MONOTONIC
                    // or (FUTEX_CLOCK_REALTIME) the wall clock.
                    Ok(Some(ns)) => {
                        Some(self.absolute_deadline(ns, op & FUTEX_CLOCK_REALTIME != 0))
                    }
                    Err(e) => return err(e),
                };
                self.futexes.wait(key, tid, bitset);
                self.block(
                    tid,
                    Wait::Futex,
                    deadline,
                    Some(-ETIMEDOUT),
                    OnWake::Return(0),
                );
                Ret::Block
            }
            FUTEX_WAKE | FUTEX_WAKE_BITSET => {
                let bitset = if cmd == FUTEX_WAKE {
                    FUTEX_BITSET_MATCH_ANY
                } else {
                    v3
                };
                if bitset == 0 {
                    return err(EINVAL);
                }
                if let Err(e) = self.shared_futex_there(pid, op, uaddr) {
                    return err(e);
                }
                let woken = self.futexes.wake(key, v, bitset);
                let n = woken.len();
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n as i64)
            }
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
                // Negative counts are EINVAL (CVE-2018-6927's fix).
                if (v as i32) < 0 || (timeout as u32 as i32) < 0 {
                    return err(EINVAL);
                }
                if let Err(e) = self.shared_futex_there(pid, op, uaddr2) {
                    return err(e);
                }
                if cmd == FUTEX_CMP_REQUEUE {
                    let cur = match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_u32(s, uaddr))
                    {
                        Ok(c) => c,
                        Err(e) => return err(e),
                    };
                    if cur != v3 {
                        return err(EAGAIN);
                    }
                }
                let (woken, moved) = self.futexes.requeue(key, key2, v, timeout as u32);
                let n = woken.len() as i64;
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n + moved as i64)
            }
            FUTEX_WAKE_OP => {
                let old = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, uaddr2))
                {
                    Ok(o) => o,
                    Err(e) => return err(e),
                };
                let Some((new, wake2)) = wake_op(v3, old) else {
                    return err(EINVAL);
                };
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, uaddr2, new))
                {
                    return err(e);
                }
                let mut woken = self.futexes.wake(key, v, FUTEX_BITSET_MATCH_ANY);
                if wake2 {
                    woken.extend(
                        self.futexes
                            .wake(key2, timeout as u32, FUTEX_BITSET_MATCH_ANY),
                    );
                }
                let n = woken.len();
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n as i64)
            }
            FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI | FUTEX_UNLOCK_PI => {
                self.sys_futex_pi(tid, uaddr, op, timeout)
            }
            _ => err(ENOSYS),
        }
    }
}

/// The little-endian 64-bit word `i` of `raw` (0 past its end).
fn word_at(raw: &[u8], i: usize) -> u64 {
    raw.get(i * 8..i * 8 + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// st_mode of a struct stat as the monitor makes them (`stat_of`).
pub(super) fn stat_mode(st: &[u8; 144]) -> u32 {
    u32::from_le_bytes([st[24], st[25], st[26], st[27]])
}

/// Whether a struct stat is a directory's.
/// A `struct stat`'s owner, group and mode (at 28, 32 and 24).
fn stat_owned(st: &[u8; 144]) -> pmon::cred::Owned {
    let word = |i: usize| u32::from_le_bytes([st[i], st[i + 1], st[i + 2], st[i + 3]]);
    pmon::cred::Owned {
        mode: stat_mode(st),
        uid: word(28),
        gid: word(32),
    }
}

pub(super) fn stat_is_dir(st: &[u8; 144]) -> bool {
    stat_mode(st) & 0o170000 == 0o040000
}

/// Whether a path names a directory by its trailing slash ("/" aside).
pub(super) fn ends_in_slash(p: &[u8]) -> bool {
    p.len() > 1 && p.ends_with(b"/")
}

/// The end of `len` bytes from `addr` rounded up to a page, u64::MAX for
/// a length that goes past the top (the call then fails on its own).
fn range_end(addr: u64, len: u64) -> u64 {
    len.checked_next_multiple_of(4096)
        .map_or(u64::MAX, |l| addr.saturating_add(l))
}

fn generated_at(f: &OpenFile, offset: u64, len: usize) -> Vec<u8> {
    let start = (offset as usize).min(f.data.len());
    let end = start.saturating_add(len).min(f.data.len());
    f.data[start..end].to_vec()
}

fn libc_enomem() -> Errno {
    ENOMEM
}

/// A `struct itimerspec`: the period, then the time left.
fn itimerspec(period: u64, left: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&timespec(period));
    b[16..].copy_from_slice(&timespec(left));
    b
}

fn timespec(ns: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    t[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    t
}

/// struct stat from a host file's.
/// struct stat of a file the monitor or storage keeps (times in ns since
/// 1970), on device `dev`.
fn stat_bytes_ns(dev: u64, st: &lego_proto::storage::StoreStat) -> [u8; 144] {
    let split = |ns: u64| (ns / 1_000_000_000, ns % 1_000_000_000);
    let ((a, an), (m, mn), (c, cn)) = (split(st.atime), split(st.mtime), split(st.ctime));
    file_stat_bytes(&lego_proto::program::FileStat {
        dev,
        ino: st.ino,
        nlink: st.nlink as u64,
        mode: st.mode,
        blksize: 4096,
        size: st.size,
        blocks: st.blocks,
        atime: a,
        atime_ns: an,
        mtime: m,
        mtime_ns: mn,
        ctime: c,
        ctime_ns: cn,
        uid: st.uid,
        gid: st.gid,
        ..Default::default()
    })
}

fn file_stat_bytes(st: &lego_proto::program::FileStat) -> [u8; 144] {
    let mut s = [0u8; 144];
    let put =
        |s: &mut [u8; 144], at: usize, v: u64| s[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut s, 0, st.dev);
    put(&mut s, 8, st.ino);
    put(&mut s, 16, st.nlink);
    s[24..28].copy_from_slice(&st.mode.to_le_bytes());
    s[28..32].copy_from_slice(&st.uid.to_le_bytes());
    s[32..36].copy_from_slice(&st.gid.to_le_bytes());
    put(&mut s, 40, st.rdev);
    put(&mut s, 48, st.size);
    put(&mut s, 56, st.blksize);
    put(&mut s, 64, st.blocks);
    put(&mut s, 72, st.atime);
    put(&mut s, 80, st.atime_ns);
    put(&mut s, 88, st.mtime);
    put(&mut s, 96, st.mtime_ns);
    put(&mut s, 104, st.ctime);
    put(&mut s, 112, st.ctime_ns);
    s
}

/// What an open with `flags` asks of the file: its access mode's read
/// and write, and a write for O_TRUNC (Linux's `may_open`).
pub(super) fn open_wants(flags: u32) -> u32 {
    use pmon::cred::{MAY_READ, MAY_WRITE};
    let access = match flags & 3 {
        0 => MAY_READ,
        1 => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & 0o1000 != 0 {
        access | MAY_WRITE
    } else {
        access
    }
}

/// struct stat (x86-64, 144 bytes).
fn stat_bytes(
    mode: u32,
    size: u64,
    rdev: u64,
    ino: u64,
    dev: u64,
    blksize: u64,
    now_ns: u64,
) -> [u8; 144] {
    let mut s = [0u8; 144];
    let put =
        |s: &mut [u8; 144], at: usize, v: u64| s[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut s, 0, dev);
    put(&mut s, 8, ino);
    put(&mut s, 16, 1); // nlink
    s[24..28].copy_from_slice(&mode.to_le_bytes());
    put(&mut s, 40, rdev);
    put(&mut s, 48, size);
    put(&mut s, 56, blksize);
    put(&mut s, 64, size.div_ceil(512));
    let (sec, ns) = (now_ns / 1_000_000_000, now_ns % 1_000_000_000);
    for at in [72, 88, 104] {
        put(&mut s, at, sec);
        put(&mut s, at + 8, ns);
    }
    let _ = S_IFREG;
    s
}

/// The inode number fstat gives pipe `id` (and /proc/PID/fd's link).
pub(super) fn pipe_ino(id: usize) -> u64 {
    0x1000 + id as u64
}

/// The inode number fstat gives socket `id` (its `socket:[N]` link, and
/// /proc/net's inode column).
pub(super) fn socket_ino(id: usize) -> u64 {
    0x5000 + id as u64
}

/// A struct rusage with its user and system times (ns) and nothing else
/// (no memory of a process is resident here; faults and switches are not
/// counted).
fn rusage_of(user_ns: u64, sys_ns: u64) -> [u8; 144] {
    let mut r = [0u8; 144];
    for (i, ns) in [user_ns, sys_ns].into_iter().enumerate() {
        r[i * 16..i * 16 + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        r[i * 16 + 8..i * 16 + 16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    }
    r
}
