//! Process descriptors: pidfd_open, clone's CLONE_PIDFD, pidfd_send_signal,
//! pidfd_getfd and waitid(P_PIDFD), and a pidfd's readiness in poll,
//! select and epoll (readable once the process has exited, hung up once it
//! is reaped).
//!
//! A pidfd names a process by its id and its start time: once the process
//! is reaped and its id given to another, the descriptor does not follow
//! the id (Linux holds the process's `struct pid` for the same reason), and
//! its calls answer ESRCH or ECHILD.

use super::*;

const PIDFD_NONBLOCK: u64 = O_NONBLOCK as u64;
const PIDFD_SIGNAL_THREAD: u64 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u64 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u64 = 4;

/// Where the process a pidfd names is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PidFdState {
    Alive,
    /// Exited, not yet reaped.
    Exited,
    Reaped,
}

impl Kernel {
    pub(super) fn sys_pidfd_open(&mut self, pid: Pid, target: i64, flags: u64) -> Ret {
        if flags & !PIDFD_NONBLOCK != 0 || target <= 0 || target > Pid::MAX as i64 {
            return err(EINVAL);
        }
        let target = target as Pid;
        let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
        let started = match self.procs.get(&target) {
            Some(p) if p.vnode == vnode => p.started,
            // A thread that does not lead its process: ENOENT, as Linux
            // 6.18 answers (older ones said EINVAL). A thread's pidfd,
            // PIDFD_THREAD, is Linux 6.9's and not served here.
            _ if self
                .threads
                .get(&target)
                .is_some_and(|t| t.state != State::Dead && t.pid != target) =>
            {
                return err(ENOENT)
            }
            _ => return err(ESRCH),
        };
        val(self.install_pidfd(pid, target, started, flags & PIDFD_NONBLOCK != 0))
    }

    /// A new descriptor of `pid` for process `target` (close-on-exec, as
    /// every pidfd is).
    pub(super) fn install_pidfd(
        &mut self,
        pid: Pid,
        target: Pid,
        started: u64,
        nonblock: bool,
    ) -> Result<i64, Errno> {
        let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
        let file = OpenFile::new(Kind::PidFd(target, started), flags);
        self.proc_mut(pid)?.fds.install(file, true, 0)
    }

    /// The process pidfd `fd` of `pid` names (EBADF for another kind of
    /// descriptor, as Linux), and whether the pidfd is non-blocking.
    /// `proc_dir`: an open /proc/PID stands for a pidfd too (only
    /// pidfd_send_signal takes one, as Linux).
    fn pidfd_of(&self, pid: Pid, fd: i64, proc_dir: bool) -> Result<(Pid, u64, bool), Errno> {
        let f = self.file(pid, fd)?;
        match f.kind {
            Kind::PidFd(target, started) => Ok((target, started, f.nonblocking())),
            Kind::ProcDir(target, started) if proc_dir => Ok((target, started, false)),
            _ => Err(EBADF),
        }
    }

    pub(super) fn pidfd_state(&self, target: Pid, started: u64) -> PidFdState {
        match self.procs.get(&target) {
            Some(p) if p.started == started && p.life == Life::Alive => PidFdState::Alive,
            Some(p) if p.started == started => PidFdState::Exited,
            _ => PidFdState::Reaped,
        }
    }

    /// (readable, writable, hung up) of a pidfd for poll, select and epoll.
    pub(super) fn pidfd_readiness(&self, target: Pid, started: u64) -> (bool, bool, bool) {
        match self.pidfd_state(target, started) {
            PidFdState::Alive => (false, false, false),
            PidFdState::Exited => (true, false, false),
            PidFdState::Reaped => (true, false, true),
        }
    }

    pub(super) fn sys_pidfd_send_signal(
        &mut self,
        tid: Tid,
        fd: i64,
        sig: u64,
        info: u64,
        flags: u64,
    ) -> Ret {
        let scopes = PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP;
        if flags & !scopes != 0 || flags.count_ones() > 1 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let (target, started, _) = match self.pidfd_of(pid, fd, true) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        let group = flags & PIDFD_SIGNAL_PROCESS_GROUP != 0;
        let info = if info == 0 {
            // As tgkill's, to one thread.
            let code = if flags & PIDFD_SIGNAL_THREAD != 0 {
                SI_TKILL
            } else {
                SI_USER
            };
            SigInfo::user(sig as u32, code, pid)
        } else {
            let (info, signo) = match self.user_siginfo(pid, info, sig) {
                Ok(i) => i,
                Err(e) => return err(e),
            };
            if signo as u64 != sig {
                return err(EINVAL);
            }
            // Only to itself may a process claim to be the kernel: the
            // calling thread must be the one the pidfd names (its
            // process's leader), as Linux.
            if (target != tid || group) && info.claims_kernel() {
                return err(pmon::cred::EPERM);
            }
            info
        };
        // Linux's order: a reaped process before a bad signal number. A
        // group is the one the pidfd's id names, which outlives its
        // leader; but not once the id is another process's.
        let reused = self
            .procs
            .get(&target)
            .is_some_and(|p| p.started != started);
        let state = self.pidfd_state(target, started);
        if reused || (!group && state == PidFdState::Reaped) {
            return err(ESRCH);
        }
        if sig > NSIG as u64 {
            return err(EINVAL);
        }
        if group {
            let members = self
                .procs
                .values()
                .filter(|p| p.pgid == target)
                .map(|p| p.pid)
                .collect();
            return self.kill_targets(pid, members, info, false);
        }
        let thread = flags & PIDFD_SIGNAL_THREAD != 0;
        self.kill_targets(pid, alloc::vec![target], info, thread)
    }

    pub(super) fn sys_pidfd_getfd(&mut self, pid: Pid, fd: i64, target_fd: i64, flags: u64) -> Ret {
        if flags != 0 {
            return err(EINVAL);
        }
        let (target, started, _) = match self.pidfd_of(pid, fd, false) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        // An exited process has no files to give: ESRCH, as Linux 6.9 on
        // (EBADF before).
        if self.pidfd_state(target, started) != PidFdState::Alive {
            return err(ESRCH);
        }
        let me = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
        let Some(p) = self.procs.get(&target) else {
            return err(ESRCH);
        };
        // Its own process a caller may always reach.
        if target != pid && !me.may_trace(&p.cred, p.dumpable) {
            return err(pmon::cred::EPERM);
        }
        let file = match p.fds.get(target_fd) {
            Ok(f) => f.clone(),
            Err(e) => return err(e),
        };
        val(self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, true, 0)))
    }

    /// waitid(P_PIDFD)'s target: the pid, or ECHILD once reaped; `nonblock`
    /// says whether the pidfd is O_NONBLOCK (a wait that would block is
    /// EAGAIN then, since Linux 5.10).
    pub(super) fn pidfd_wait_target(&self, pid: Pid, fd: i64) -> Result<(Pid, bool), Errno> {
        let (target, started, nonblock) = self.pidfd_of(pid, fd, false)?;
        if self.pidfd_state(target, started) == PidFdState::Reaped {
            return Err(ECHILD);
        }
        Ok((target, nonblock))
    }
}
