//! Linux's system calls, as the processor monitor serves them: decoding
//! each call's arguments from the frame, checking every pointer, and
//! answering with Linux's values and errno numbers. A call that must wait
//! parks its thread (see [`Kernel::block`]); a call Lego does not have
//! answers ENOSYS and is counted (listed when the program ends).
//!
//! This file holds the entry (`Kernel::syscall`), the table from call
//! numbers to handlers (`dispatch`) and the helpers they share; the
//! handlers live in the submodules, one per kind of call (descriptors,
//! reading and writing, paths, memory, signals, processes, ...).

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

// The common calls, by what they serve (the modules above are the rarer
// families: System V IPC, AIO, inotify, ...).
mod fds;
mod futex;
mod ioctl;
mod lookup;
mod mmap;
mod open;
mod poll;
mod process;
mod rw;
mod signal;
mod stat;
mod system;

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
                        p.cwd_gone = false;
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
                        p.cwd_gone = false;
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

    fn yield_now(&mut self, tid: Tid) {
        // The trap handler queues it at the back, after the others.
        if let Some(t) = self.threads.get_mut(&tid) {
            t.yielded = true;
        }
    }

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
