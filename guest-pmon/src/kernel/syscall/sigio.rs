//! O_ASYNC (`fcntl(F_SETFL)` or `ioctl(FIOASYNC)`): the owner of a pipe,
//! socket, pseudo-terminal, eventfd, inotify or message queue descriptor
//! (F_SETOWN) hears by signal that it became readable or writable: SIGIO,
//! or the F_SETSIG signal with the descriptor, the reason (POLL_IN,
//! POLL_OUT, ...) and its band, as Linux's `kill_fasync`. nginx's master
//! sets it on the channel to each worker and gives up on a worker when it
//! cannot.
//!
//! Linux signals from the code that changes the file (a pipe's write
//! signals its readers); here the files with O_ASYNC are looked at after
//! every system call while any exists, since every change to these files
//! is some system call's. A look signals when a condition (readable,
//! writable, urgent data, error, hang-up) starts to hold, and again while a
//! file stays readable after it changed (more data came, as each write
//! signals a Linux reader; also after a read that left some, where Linux
//! would not: a spare SIGIO, which its handlers take as a hint to look). A pipe's reason is POLL_IN for its readers and
//! POLL_OUT for its writers, whatever changed. Files of other kinds keep the flag (F_GETFL
//! shows it) and signal nothing, as Linux's files without `fasync`.

use alloc::sync::Weak;

use pmon::events::{EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLPRI};
use pmon::fd::{F_OWNER_PGRP, F_OWNER_TID};

use super::*;

/// fcntl's O_ASYNC (Linux's FASYNC).
pub(super) const O_ASYNC: u32 = 0o20000;

/// si_code of a F_SETSIG signal, by reason; `si_band` as Linux's
/// `band_table`.
const POLL_IN: (i32, i64) = (1, 0x1 | 0x40);
const POLL_OUT: (i32, i64) = (2, 0x4 | 0x100 | 0x200);
const POLL_ERR: (i32, i64) = (4, 0x8);
const POLL_PRI: (i32, i64) = (5, 0x2 | 0x80);
const POLL_HUP: (i32, i64) = (6, 0x10 | 0x8);

/// One file with O_ASYNC, as last looked at.
pub struct AsyncFile {
    file: Weak<OpenFile>,
    /// The descriptor it was set on (the signal's `si_fd`).
    fd: i64,
    ready: u32,
    generation: u64,
}

impl Kernel {
    /// O_ASYNC set or cleared on descriptor `fd`'s file (F_SETFL,
    /// FIOASYNC); setting it again changes nothing.
    pub(super) fn set_async(&mut self, f: &Arc<OpenFile>, fd: i64, on: bool) {
        let flags = f.flags.get();
        if on == (flags & O_ASYNC != 0) {
            return;
        }
        f.flags.set(if on {
            flags | O_ASYNC
        } else {
            flags & !O_ASYNC
        });
        let this = Arc::as_ptr(f);
        self.asyncs.retain(|a| a.file.as_ptr() != this);
        let signals = matches!(
            f.kind,
            Kind::PipeRead(_)
                | Kind::PipeWrite(_)
                | Kind::Socket(..)
                | Kind::Unix(_)
                | Kind::UnixDgram(_)
                | Kind::Dgram(_)
                | Kind::PtyMaster(_)
                | Kind::PtySlave(_)
                | Kind::EventFd(_)
                | Kind::Inotify(_)
                | Kind::MQueue(_)
        );
        if on && signals {
            // What holds already is no news.
            let now = self.epoll_state(f);
            self.asyncs.push(AsyncFile {
                file: Arc::downgrade(f),
                fd,
                ready: now.ready,
                generation: now.generation,
            });
        }
    }

    /// After a system call: signals the owners of the O_ASYNC files whose
    /// state it changed.
    pub(super) fn async_news(&mut self) {
        let mut i = 0;
        while i < self.asyncs.len() {
            let Some(f) = self.asyncs[i]
                .file
                .upgrade()
                .filter(|f| f.flags.get() & O_ASYNC != 0)
            else {
                self.asyncs.swap_remove(i);
                continue;
            };
            let now = self.epoll_state(&f);
            let a = &mut self.asyncs[i];
            let rising = now.ready & !a.ready;
            let more = now.ready & EPOLLIN != 0 && now.generation != a.generation;
            let fd = a.fd;
            a.ready = now.ready;
            a.generation = now.generation;
            i += 1;
            // A pipe tells its readers POLL_IN and its writers POLL_OUT,
            // whatever happened (a hang-up too), as Linux's pipe code.
            let reason = if rising == 0 && !more {
                continue;
            } else if matches!(f.kind, Kind::PipeRead(_)) {
                POLL_IN
            } else if matches!(f.kind, Kind::PipeWrite(_)) {
                POLL_OUT
            } else if rising & EPOLLERR != 0 {
                POLL_ERR
            } else if rising & EPOLLHUP != 0 {
                POLL_HUP
            } else if rising & EPOLLPRI != 0 {
                POLL_PRI
            } else if rising & EPOLLIN != 0 || more {
                POLL_IN
            } else if rising & EPOLLOUT != 0 {
                POLL_OUT
            } else {
                continue;
            };
            self.signal_owner(&f, fd, reason);
        }
    }

    /// Signals the owner of `file` (descriptor `fd`) for `reason` (si_code
    /// and si_band), as Linux's send_sigio: SIGIO, or the F_SETSIG signal
    /// with the descriptor.
    pub(super) fn signal_owner(&mut self, file: &OpenFile, fd: i64, reason: (i32, i64)) {
        let info = match file.sig.get() {
            0 => SigInfo::user(SIGIO, SI_KERNEL, 0),
            sig => SigInfo::poll(sig, reason.0, reason.1, fd as i32),
        };
        match file.owner.get() {
            (_, 0) => {}
            (F_OWNER_TID, tid) => self.signal_thread(tid as Tid, info),
            (F_OWNER_PGRP, group) => self.signal_group(group as Pid, info),
            (_, pid) => self.signal_process(pid as Pid, info),
        }
    }
}
