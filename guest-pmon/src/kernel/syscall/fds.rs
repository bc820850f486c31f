//! The descriptor table's own calls: dup, dup2/dup3, close, close_range,
//! pipe and fcntl, and the lookup of a descriptor's open file.

use super::*;

impl Kernel {
    pub(super) fn file(&self, pid: Pid, fd: i64) -> Result<Arc<OpenFile>, Errno> {
        self.procs.get(&pid).ok_or(ESRCH)?.fds.get(fd).cloned()
    }

    pub(super) fn dup(
        &mut self,
        pid: Pid,
        fd: i64,
        from: usize,
        cloexec: bool,
    ) -> Result<i64, Errno> {
        self.proc_mut(pid)?.fds.dup(fd, from, cloexec)
    }

    pub(super) fn dup_to(
        &mut self,
        pid: Pid,
        old: i64,
        new: i64,
        cloexec: bool,
    ) -> Result<i64, Errno> {
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
    pub(super) fn sys_close_range(&mut self, pid: Pid, first: u32, last: u32, flags: u64) -> Ret {
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

    pub(super) fn sys_close(&mut self, pid: Pid, fd: i64) -> Ret {
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

    pub(super) fn sys_pipe(&mut self, pid: Pid, fds_ptr: u64, flags: u64) -> Ret {
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
    pub(super) fn install_pair(
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

    pub(super) fn sys_fcntl(&mut self, pid: Pid, fd: i64, cmd: u64, arg: u64) -> Ret {
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
}
