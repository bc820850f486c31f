//! Signal calls: sigaction, sigprocmask, sigaltstack, sigtimedwait, kill,
//! tkill/tgkill and rt_sigqueueinfo (delivery itself is `kernel::signals`).

use super::*;

impl Kernel {
    /// rt_sigtimedwait (sigwait, sigwaitinfo, sigtimedwait): takes a
    /// pending signal of the set, or waits for one (the set is normally
    /// blocked, so it stays pending rather than run a handler); a signal
    /// outside the set that a handler takes ends the wait with EINTR, the
    /// timeout with EAGAIN.
    pub(super) fn sys_sigtimedwait(
        &mut self,
        tid: Tid,
        set: u64,
        info: u64,
        timeout: u64,
        size: u64,
    ) -> Ret {
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

    pub(super) fn sys_sigaction(
        &mut self,
        pid: Pid,
        sig: u32,
        act: u64,
        oact: u64,
        size: u64,
    ) -> Ret {
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

    pub(super) fn sys_sigprocmask(
        &mut self,
        tid: Tid,
        how: u64,
        set: u64,
        oset: u64,
        size: u64,
    ) -> Ret {
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

    pub(super) fn sys_sigaltstack(&mut self, tid: Tid, pid: Pid, ss: u64, oss: u64) -> Ret {
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

    pub(super) fn sys_kill(&mut self, pid: Pid, target: i64, sig: u32) -> Ret {
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
    pub(super) fn kill_targets(
        &mut self,
        pid: Pid,
        targets: Vec<Pid>,
        info: SigInfo,
        thread: bool,
    ) -> Ret {
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

    pub(super) fn sys_tkill(&mut self, pid: Pid, tgid: i64, tid: Tid, sig: u32) -> Ret {
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
    pub(super) fn sys_sigqueueinfo(
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
    pub(super) fn process_named(&self, id: Pid) -> Pid {
        if self.procs.contains_key(&id) {
            return id;
        }
        self.threads.get(&id).map_or(id, |t| t.pid)
    }

    /// A siginfo a program gives (rt_sigqueueinfo, pidfd_send_signal) for
    /// signal `sig`: its code, pid, uid and value, and the signal number it
    /// names itself (si_signo).
    pub(super) fn user_siginfo(
        &mut self,
        pid: Pid,
        at: u64,
        sig: u64,
    ) -> Result<(SigInfo, i32), Errno> {
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
}
