//! signalfd and signalfd4: a descriptor that reads the caller's pending
//! signals of a set as `struct signalfd_siginfo` records (the set is
//! normally blocked, so they wait there rather than run a handler); a
//! read with none waits for one (EAGAIN if non-blocking), and poll,
//! select and epoll see it readable while one is pending.
//!
//! Decided: readiness is the polling thread's, as Linux's (its own
//! pending signals and its process's); a signal queued anywhere wakes the
//! processor's pollers to look again while any signalfd is open.

use super::*;

/// `struct signalfd_siginfo`'s size.
const SIGNALFD_SIGINFO_LEN: usize = 128;

impl Kernel {
    /// signalfd4(fd, mask, sizemask, flags); fd -1 makes one, a signalfd's
    /// own fd changes its set.
    pub(super) fn sys_signalfd(
        &mut self,
        pid: Pid,
        fd: i64,
        mask: u64,
        size: u64,
        flags: u64,
    ) -> Ret {
        if size != 8 || flags & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
            return err(EINVAL);
        }
        let set = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, mask)) {
            Ok(m) => m & !UNBLOCKABLE,
            Err(e) => return err(e),
        };
        if fd != -1 {
            let f = match self.file(pid, fd) {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            return match f.kind {
                Kind::SignalFd(id) => {
                    self.signalfds.insert(id, set);
                    Ret::Val(fd)
                }
                _ => err(EINVAL),
            };
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.signalfds.insert(id, set);
        let file = OpenFile::new(Kind::SignalFd(id), O_RDONLY | (flags as u32 & O_NONBLOCK));
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, flags & O_CLOEXEC as u64 != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.signalfds.remove(&id);
                err(e)
            }
        }
    }

    /// A read of signalfd `id` by thread `tid`: as many records as fit;
    /// Ok(None): wait.
    pub(super) fn signalfd_read(
        &mut self,
        tid: Tid,
        f: &OpenFile,
        id: usize,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        if len < SIGNALFD_SIGINFO_LEN {
            return Err(EINVAL);
        }
        let mask = self.signalfds.get(&id).copied().unwrap_or(0);
        let mut out = Vec::new();
        while out.len() + SIGNALFD_SIGINFO_LEN <= len {
            let Some(info) = self.take_pending(tid, mask) else {
                break;
            };
            out.extend_from_slice(&signalfd_siginfo(&info));
        }
        if !out.is_empty() {
            return Ok(Some(out));
        }
        if f.nonblocking() {
            return Err(EAGAIN);
        }
        Ok(None)
    }

    /// The set signalfd `id` reads.
    pub(super) fn signalfd_mask(&self, id: usize) -> u64 {
        self.signalfds.get(&id).copied().unwrap_or(0)
    }

    /// The thread whose system call the monitor is making (reads and
    /// polls of a signalfd are that thread's).
    pub(super) fn caller(&self) -> Option<Tid> {
        Some(self.caller).filter(|&t| t != 0)
    }
}

/// `struct signalfd_siginfo` of a signal: signo, errno, code, pid, uid,
/// fd, tid, band, overrun, trapno, status, int, ptr, utime, stime, addr.
fn signalfd_siginfo(i: &SigInfo) -> [u8; SIGNALFD_SIGINFO_LEN] {
    let mut b = [0u8; SIGNALFD_SIGINFO_LEN];
    b[0..4].copy_from_slice(&i.signo.to_le_bytes());
    b[4..8].copy_from_slice(&i.errno.to_le_bytes());
    b[8..12].copy_from_slice(&i.code.to_le_bytes());
    if i.code == pmon::ptimer::SI_TIMER {
        // A timer's: its id in ssi_tid, its overrun in ssi_overrun.
        b[24..28].copy_from_slice(&i.pid.to_le_bytes());
        b[32..36].copy_from_slice(&i.uid.to_le_bytes());
    } else {
        b[12..16].copy_from_slice(&i.pid.to_le_bytes());
        b[16..20].copy_from_slice(&i.uid.to_le_bytes());
    }
    if i.signo == SIGCHLD {
        b[40..44].copy_from_slice(&i.status.to_le_bytes());
    }
    b[44..48].copy_from_slice(&(i.value as u32).to_le_bytes());
    b[48..56].copy_from_slice(&i.value.to_le_bytes());
    b[72..80].copy_from_slice(&i.addr.to_le_bytes());
    b
}
