//! Signals and the ends of threads and processes: queueing (to a thread,
//! or to a process, taken by any thread that does not block it), waking a
//! waiting thread (EINTR, or a restart under SA_RESTART), delivery on the
//! way back to user mode (a Linux frame on the stack, or the default
//! action), rt_sigreturn, and what dying does to a process: its threads,
//! descriptors, memory, children and parent.

use alloc::sync::Arc;
use alloc::vec::Vec;
use pmon::ptimer::SI_TIMER;

use pmon::fd::{Kind, OpenFile};
use pmon::signal::*;

use super::*;

/// Wait statuses, as wait4 reports them.
pub fn exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

pub fn killed(sig: u32, core: bool) -> i32 {
    sig as i32 | if core { 0x80 } else { 0 }
}

impl Kernel {
    /// Queues `info` for process `pid` and wakes a thread that can take it.
    /// Signals lego-vmm received (Ctrl-C at its terminal, a kill): each
    /// goes to the program's foreground process group, the first
    /// process's, as a terminal sends them to its foreground job.
    pub fn take_host_signals(&mut self) {
        let word = self.host_signals as *mut u64;
        // SAFETY: the word is in the boot information, which stays mapped
        // for the guest's life; the VMM only sets bits in it atomically.
        let pending = unsafe { core::sync::atomic::AtomicU64::from_ptr(word) }
            .swap(0, core::sync::atomic::Ordering::AcqRel);
        if pending == 0 {
            return;
        }
        let group = self.procs.get(&self.init).map_or(self.init, |p| p.pgid);
        for sig in (1..=64u32).filter(|s| pending & (1 << (s - 1)) != 0) {
            self.signal_group(group, SigInfo::user(sig, SI_USER, 0));
        }
    }

    /// Processes the VMM asks to be killed because a memory component had
    /// no frame for one of their pages (`BootInfo::oom_kills`): SIGKILL
    /// from the kernel, as Linux's OOM killer sends it. Named by the id
    /// their memory components know (their space's); for the holder of
    /// shared memory, by its pages: the processes that map the objects
    /// holding them (`oom_spaces`). The VMM logs why.
    pub fn take_oom_kills(&mut self) {
        use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        use lego_proto::boot::{OOM_KILLS, OOM_KILL_CLAIMED};
        let ids = self.oom_kills as *mut u32;
        let ranges = self.oom_kill_pages as *mut u64;
        for i in 0..OOM_KILLS {
            // SAFETY: entries of the boot information, which stays mapped
            // for the guest's life; the VMM fills only free ones (0), and
            // stores an entry's id after its pages.
            let id = unsafe { AtomicU32::from_ptr(ids.add(i)) };
            let gpid = id.load(Ordering::Acquire);
            if gpid == 0 || gpid == OOM_KILL_CLAIMED {
                continue;
            }
            // SAFETY: as above; the entry stays as it is until freed.
            let pages = unsafe {
                (
                    AtomicU64::from_ptr(ranges.add(2 * i)).load(Ordering::Relaxed),
                    AtomicU64::from_ptr(ranges.add(2 * i + 1)).load(Ordering::Relaxed),
                )
            };
            id.store(0, Ordering::Release);
            let spaces = self.oom_spaces(gpid, pages);
            let victims: Vec<Pid> = self
                .procs
                .values()
                .filter(|p| p.life == Life::Alive && spaces.contains(&p.space))
                .map(|p| p.pid)
                .collect();
            for pid in victims {
                self.signal_process(pid, SigInfo::user(SIGKILL, SI_KERNEL, 0));
            }
        }
    }

    /// `info` to every living member of process group `group`.
    pub fn signal_group(&mut self, group: Pid, info: SigInfo) {
        let members: Vec<Pid> = self
            .procs
            .values()
            .filter(|p| p.pgid == group && p.life == Life::Alive)
            .map(|p| p.pid)
            .collect();
        for pid in members {
            self.signal_process(pid, info);
        }
    }

    pub fn signal_process(&mut self, pid: Pid, info: SigInfo) {
        // Only signals 1-64 are queued (the callers check what a program
        // asks for; this keeps a slip from indexing past the actions).
        if !(1..=64).contains(&info.signo) {
            return;
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.life != Life::Alive {
            return;
        }
        let sig = info.signo;
        let action = p.actions[(sig - 1) as usize];
        if self.job_control(pid, sig, &action, None) {
            return;
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        // A blocked signal is never ignored, as Linux's (its action may
        // change before it is unblocked, and sigwait or a signalfd may
        // take it): a blocked SIGCHLD is there to be read.
        let leader_blocks = p
            .threads
            .first()
            .and_then(|t| self.threads.get(t))
            .is_some_and(|t| t.sigmask & bit(sig) != 0);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let ignoring = sig != SIGKILL && sig != SIGSTOP && ignored(sig, &action);
        if ignoring && !leader_blocks {
            return;
        }
        // Standard signals are not queued twice; a timer's has a place of
        // its own, as in Linux (it is queued once per timer).
        if sig < 32 && info.code != SI_TIMER && p.pending.iter().any(|i| i.signo == sig) {
            return;
        }
        p.pending.push_back(info);
        let threads = p.threads.clone();
        self.signalfds_look_again();
        if sig == SIGKILL {
            self.kill_process(pid, killed(SIGKILL, false), None);
            return;
        }
        // A thread waiting for it in rt_sigtimedwait takes it first, as
        // Linux hands a signal to a thread that wants it.
        if let Some(&t) = threads.iter().find(|&&t| self.waits_for(t, sig)) {
            self.interrupt(t, sig);
            return;
        }
        // Kept only for sigwait and signalfd: it interrupts no one.
        if ignoring {
            return;
        }
        for t in threads {
            if self
                .threads
                .get(&t)
                .is_some_and(|th| th.sigmask & bit(sig) == 0)
            {
                self.interrupt(t, sig);
                break;
            }
        }
    }

    /// A signal was queued: while signalfds are open, the threads in
    /// poll, select and epoll_wait look again (one may watch a signalfd).
    fn signalfds_look_again(&mut self) {
        if !self.signalfds.is_empty() {
            self.wake_all(Wait::Any);
            self.wake_all(Wait::AnyStdin);
        }
    }

    /// ITIMER_VIRTUAL and ITIMER_PROF of process `pid` that its CPU time
    /// has reached: SIGVTALRM and SIGPROF, and each reloaded with its
    /// period (or disarmed).
    pub fn expire_cpu_timers(&mut self, pid: Pid) {
        let used = self.cpu_ns(pid).0;
        // ITIMER_VIRTUAL counts user time only, as Linux's.
        let user = self.times_ns(pid)[0];
        let mut fire = Vec::new();
        if let Some(p) = self.procs.get_mut(&pid) {
            let cpu = &mut p.rlimits[pmon::rlimit::RLIMIT_CPU];
            match pmon::rlimit::past_cpu_limit(used, *cpu) {
                Some(pmon::rlimit::CpuLimit::Kill) => fire.push(SIGKILL),
                Some(pmon::rlimit::CpuLimit::Xcpu { soft }) => {
                    cpu.0 = soft;
                    fire.push(SIGXCPU);
                }
                None => {}
            }
            for (i, timer) in p.cpu_timers.iter_mut().enumerate() {
                let Some((at, period)) = *timer else {
                    continue;
                };
                let used = if i == 0 { user } else { used };
                if used < at {
                    continue;
                }
                fire.push(if i == 0 { SIGVTALRM } else { SIGPROF });
                *timer = (period > 0).then(|| {
                    let next = at.saturating_add(period);
                    (
                        if next > used {
                            next
                        } else {
                            used.saturating_add(period)
                        },
                        period,
                    )
                });
            }
        }
        for sig in fire {
            self.signal_process(pid, SigInfo::user(sig, 0x80, 0));
        }
        let due = self.procs.get_mut(&pid).map_or(Vec::new(), |p| {
            p.timers.expire(pmon::ptimer::Base::CpuTime, used)
        });
        for (id, n) in due {
            self.timer_expired(pid, id, n);
        }
    }

    /// The POSIX timers on thread `tid`'s CPU clock that are due.
    pub fn expire_thread_cpu_timers(&mut self, pid: Pid, tid: Tid) {
        let used = self.thread_cpu_ns(tid);
        let due = self.procs.get_mut(&pid).map_or(Vec::new(), |p| {
            p.timers.expire(pmon::ptimer::Base::ThreadCpu(tid), used)
        });
        for (id, n) in due {
            self.timer_expired(pid, id, n);
        }
    }

    /// Whether thread `tid` waits for `sig` in rt_sigtimedwait.
    fn waits_for(&self, tid: Tid, sig: u32) -> bool {
        self.threads.get(&tid).is_some_and(|t| {
            matches!(t.state, State::Blocked { wait: Wait::Signals(m), .. } if m & bit(sig) != 0)
        })
    }

    /// Queues `info` for thread `tid` (tgkill) and wakes it if it can take it.
    pub fn signal_thread(&mut self, tid: Tid, info: SigInfo) {
        let Some(pid) = self.threads.get(&tid).map(|t| t.pid) else {
            return;
        };
        let sig = info.signo;
        if !(1..=64).contains(&sig) {
            return;
        }
        if sig == SIGKILL {
            self.kill_process(pid, killed(SIGKILL, false), None);
            return;
        }
        let action = self.procs.get(&pid).map(|p| p.actions[(sig - 1) as usize]);
        if let Some(a) = action {
            if self.job_control(pid, sig, &a, Some(tid)) {
                return;
            }
        }
        let blocked = self
            .threads
            .get(&tid)
            .is_some_and(|t| t.sigmask & bit(sig) != 0);
        let ignoring = action.is_some_and(|a| sig != SIGSTOP && ignored(sig, &a));
        if ignoring && !blocked {
            return;
        }
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        if sig < 32 && info.code != SI_TIMER && t.pending.iter().any(|i| i.signo == sig) {
            return;
        }
        t.pending.push_back(info);
        self.signalfds_look_again();
        let open = self
            .threads
            .get(&tid)
            .is_some_and(|t| t.sigmask & bit(sig) == 0);
        if (open && !ignoring) || self.waits_for(tid, sig) {
            self.interrupt(tid, sig);
        }
    }

    /// A thread that has just parked in a system call while a signal it
    /// takes is already pending is interrupted at once, as Linux checks
    /// for a pending signal before it sleeps. Such a signal came while the
    /// thread was not parked: during its call, or between a wake and its
    /// call made again (a child's exit closing pipes the parent's epoll
    /// watches wakes it just before SIGCHLD comes), when there was no wait
    /// to interrupt; without this it waited for the next wake, which may
    /// never come (Python's multiprocessing forkserver).
    pub fn interrupt_if_signalled(&mut self, tid: Tid) {
        let Some(t) = self.threads.get(&tid) else {
            return;
        };
        let (pid, mask) = (t.pid, t.sigmask);
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        let takes = |i: &&SigInfo| {
            i.signo == SIGKILL
                || (mask & bit(i.signo) == 0
                    && !ignored(i.signo, &p.actions[(i.signo - 1) as usize]))
        };
        let sig = t
            .pending
            .iter()
            .find(takes)
            .or_else(|| p.pending.iter().find(takes))
            .map(|i| i.signo);
        if let Some(sig) = sig {
            self.interrupt(tid, sig);
        }
    }

    /// A signal arrived for a thread that may be waiting: end the wait.
    fn interrupt(&mut self, tid: Tid, sig: u32) {
        let Some(t) = self.threads.get(&tid) else {
            return;
        };
        let State::Blocked {
            wait,
            interruptible: true,
            ..
        } = t.state
        else {
            // Running: it takes the signal when it next enters the monitor;
            // on a vCPU in user mode, the VMM interrupts it for that.
            if let State::Running(cpu) = t.state {
                host::kick(cpu);
            }
            return;
        };
        let pid = t.pid;
        // rt_sigtimedwait's thread takes a signal it waits for by making
        // its call again, which dequeues it (no handler runs).
        if let Wait::Signals(m) = wait {
            if m & bit(sig) != 0 {
                self.wake(tid, OnWake::Retry);
                return;
            }
        }
        // A write that wrote some of its bytes before it waited returns
        // their count: no EINTR, no restart.
        let written = self.threads.get(&tid).map_or(0, |t| t.written);
        if written > 0 {
            self.futexes.cancel(tid);
            self.wake(tid, OnWake::Return(written as i64));
            return;
        }
        // A PI lock's wait is made again whatever the handler's flags, as
        // Linux's is (it never fails with EINTR).
        let restart = wait == Wait::FutexPi
            || self
                .procs
                .get(&pid)
                .is_some_and(|p| p.actions[(sig - 1) as usize].flags & SA_RESTART != 0)
                && matches!(
                    wait,
                    Wait::Pipe(_) | Wait::Stdin | Wait::Child | Wait::Futex | Wait::Vfork(_)
                );
        self.futexes.cancel(tid);
        if restart {
            // Back to the `syscall` instruction: it runs again after the
            // handler returns (rax still holds the call's number).
            if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                ctx.frame.rip -= 2;
            }
            self.wake(tid, OnWake::Return(self.syscall_nr(tid) as i64));
        } else if wait == Wait::Sleep && !self.write_sleep_left(tid) {
            self.wake(tid, OnWake::Return(-EFAULT));
        } else {
            self.wake(tid, OnWake::Return(-EINTR));
        }
    }

    /// A relative nanosleep or clock_nanosleep ended by a signal writes
    /// the time left to its `rem` (when not null), as Linux; false when
    /// `rem` cannot be written (the call's EFAULT).
    fn write_sleep_left(&mut self, tid: Tid) -> bool {
        const NANOSLEEP: u64 = 35;
        const CLOCK_NANOSLEEP: u64 = 230;
        let Some(t) = self.threads.get(&tid) else {
            return true;
        };
        let (
            Some(ctx),
            State::Blocked {
                deadline: Some(end),
                ..
            },
        ) = (t.ctx.as_ref(), t.state)
        else {
            return true;
        };
        let g = &ctx.frame.gprs;
        // rdi, rsi, rdx, r10: gprs 5, 4, 3, 9.
        let (abs, rem) = match g[0] {
            NANOSLEEP => (false, g[4]),
            CLOCK_NANOSLEEP => (g[4] & 1 != 0, g[9]),
            _ => return true,
        };
        if abs || rem == 0 {
            return true;
        }
        let pid = t.pid;
        let left = end.saturating_sub(self.now_ns());
        let mut ts = [0u8; 16];
        ts[..8].copy_from_slice(&(left / 1_000_000_000).to_le_bytes());
        ts[8..].copy_from_slice(&(left % 1_000_000_000).to_le_bytes());
        // The sleeper's space, not the signaller's: user addresses mean
        // the loaded one.
        let Some(space) = self.procs.get(&pid).map(|p| p.space) else {
            return true;
        };
        self.in_space(space, |k| {
            k.space_of(pid)
                .is_some_and(|s| uaccess::write(s, rem, &ts).is_ok())
        })
    }

    fn syscall_nr(&self, tid: Tid) -> u64 {
        self.threads
            .get(&tid)
            .and_then(|t| t.ctx.as_ref())
            .map_or(0, |c| c.frame.gprs[0])
    }

    /// A fault the thread caused: delivered now; if it is blocked or
    /// ignored, the default action (as Linux forces it).
    pub fn force_signal(&mut self, tid: Tid, info: SigInfo, err: u64, vector: u64) {
        let Some(pid) = self.threads.get(&tid).map(|t| t.pid) else {
            return;
        };
        let sig = info.signo;
        let (blocked, action) = match (self.threads.get(&tid), self.procs.get(&pid)) {
            (Some(t), Some(p)) => (t.sigmask & bit(sig) != 0, p.actions[(sig - 1) as usize]),
            _ => return,
        };
        if blocked || action.handler == SIG_IGN {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.actions[(sig - 1) as usize] = SigAction::default();
            }
            if let Some(t) = self.threads.get_mut(&tid) {
                t.sigmask &= !bit(sig);
            }
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.pending.push_front(info);
        }
        self.deliver_one(tid, Some((err, vector)));
    }

    /// Whether a signal is pending for the thread that its mask lets in.
    pub fn signal_deliverable(&self, tid: Tid) -> bool {
        let Some(t) = self.threads.get(&tid) else {
            return false;
        };
        // A signal its action ignores (queued while blocked) ends no wait:
        // Linux drops it on the way out and makes the call again.
        let actions = self.procs.get(&t.pid).map(|p| p.actions);
        let open = |i: &SigInfo| {
            i.signo == SIGKILL
                || (t.sigmask & bit(i.signo) == 0
                    && !actions.is_some_and(|a| ignored(i.signo, &a[(i.signo - 1) as usize])))
        };
        t.pending.iter().any(open)
            || self
                .procs
                .get(&t.pid)
                .is_some_and(|p| p.pending.iter().any(open))
    }

    /// Takes the pending signal of `mask` that Linux would hand out first
    /// to thread `tid` (rt_sigtimedwait, signalfd): its own before its
    /// process's, the lowest number first, the oldest of a number first.
    pub fn take_pending(&mut self, tid: Tid, mask: u64) -> Option<SigInfo> {
        let pid = self.threads.get(&tid)?.pid;
        let info = self.take_pending_of(tid, pid, mask)?;
        self.timer_signal_taken(pid, &info);
        Some(info)
    }

    fn take_pending_of(&mut self, tid: Tid, pid: Pid, mask: u64) -> Option<SigInfo> {
        let lowest = |q: &VecDeque<SigInfo>| {
            q.iter()
                .enumerate()
                .filter(|(_, i)| mask & bit(i.signo) != 0)
                .min_by_key(|(at, i)| (i.signo, *at))
                .map(|(at, i)| (i.signo, at))
        };
        let own = self.threads.get(&tid).and_then(|t| lowest(&t.pending));
        let shared = self.procs.get(&pid).and_then(|p| lowest(&p.pending));
        match (own, shared) {
            (Some((a, at)), Some((b, _))) if a <= b => {
                self.threads.get_mut(&tid)?.pending.remove(at)
            }
            (Some((_, at)), None) => self.threads.get_mut(&tid)?.pending.remove(at),
            (_, Some((_, at))) => self.procs.get_mut(&pid)?.pending.remove(at),
            (None, None) => None,
        }
    }

    /// Whether a signal of `mask` is pending for thread `tid`.
    pub fn pending_in(&self, tid: Tid, mask: u64) -> bool {
        let Some(t) = self.threads.get(&tid) else {
            return false;
        };
        let hit = |i: &SigInfo| mask & bit(i.signo) != 0;
        t.pending.iter().any(hit)
            || self
                .procs
                .get(&t.pid)
                .is_some_and(|p| p.pending.iter().any(hit))
    }

    /// Before a thread returns to user mode: its deliverable signals. A
    /// mask sigsuspend replaced comes back once no handler took it along
    /// in its frame.
    pub fn deliver_signals(&mut self, tid: Tid) {
        for _ in 0..64 {
            if !self.deliver_one(tid, None) {
                break;
            }
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            if let Some(m) = t.saved_mask.take() {
                t.sigmask = m;
            }
        }
    }

    /// Takes one deliverable signal; whether there was one.
    fn deliver_one(&mut self, tid: Tid, fault: Option<(u64, u64)>) -> bool {
        let Some(t) = self.threads.get(&tid) else {
            return false;
        };
        if t.state != State::Runnable {
            return false;
        }
        let (pid, mask) = (t.pid, t.sigmask);
        let takes =
            |i: &SigInfo| i.signo == SIGKILL || i.signo == SIGSTOP || mask & bit(i.signo) == 0;
        let info = {
            let t = match self.threads.get_mut(&tid) {
                Some(t) => t,
                None => return false,
            };
            match t.pending.iter().position(takes) {
                Some(i) => t.pending.remove(i),
                None => None,
            }
        };
        let info = match info {
            Some(i) => i,
            None => {
                let Some(p) = self.procs.get_mut(&pid) else {
                    return false;
                };
                match p.pending.iter().position(takes) {
                    Some(i) => match p.pending.remove(i) {
                        Some(i) => i,
                        None => return false,
                    },
                    None => return false,
                }
            }
        };
        self.timer_signal_taken(pid, &info);
        let sig = info.signo;
        let Some(action) = self.procs.get(&pid).map(|p| p.actions[(sig - 1) as usize]) else {
            return false;
        };
        if action.handler == SIG_DFL || sig == SIGKILL || sig == SIGSTOP {
            match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => {}
                // Blocked when it was sent, taken now: it stops the
                // process now (`job_control` stops it when sent).
                DefaultAction::Stop => self.stop_process(pid, sig),
                DefaultAction::Terminate => self.kill_process(pid, killed(sig, false), Some(info)),
                DefaultAction::Core => self.kill_process(pid, killed(sig, true), Some(info)),
            }
            return true;
        }
        if action.handler == SIG_IGN {
            return true;
        }
        if let Err(()) = self.build_frame(tid, &info, &action, fault) {
            // The stack cannot take the frame: the process dies of SIGSEGV.
            self.kill_process(
                pid,
                killed(SIGSEGV, true),
                Some(SigInfo::fault(SIGSEGV, SEGV_MAPERR, 0)),
            );
            return true;
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            // Linux resets the handler alone: the flags and mask stay
            // (sigaction then reads them back).
            if action.flags & SA_RESETHAND != 0 {
                p.actions[(sig - 1) as usize].handler = SigAction::default().handler;
            }
        }
        true
    }

    /// Sets the thread up to run `action`'s handler on a Linux frame.
    fn build_frame(
        &mut self,
        tid: Tid,
        info: &SigInfo,
        action: &SigAction,
        fault: Option<(u64, u64)>,
    ) -> Result<(), ()> {
        let xstate = self.xstate;
        let Some(t) = self.threads.get_mut(&tid) else {
            return Err(());
        };
        let pid = t.pid;
        let Some(ctx) = t.ctx.as_mut() else {
            return Err(());
        };
        let f = &ctx.frame;
        let on_alt = t.altstack.flags & SS_DISABLE == 0
            && f.rsp.wrapping_sub(t.altstack.sp) < t.altstack.size;
        let top = if action.flags & SA_ONSTACK != 0 && t.altstack.flags & SS_DISABLE == 0 && !on_alt
        {
            t.altstack.sp + t.altstack.size
        } else {
            f.rsp
        };
        let g = f.gprs;
        let regs = UserRegs {
            rax: g[0],
            rbx: g[1],
            rcx: g[2],
            rdx: g[3],
            rsi: g[4],
            rdi: g[5],
            rbp: g[6],
            r8: g[7],
            r9: g[8],
            r10: g[9],
            r11: g[10],
            r12: g[11],
            r13: g[12],
            r14: g[13],
            r15: g[14],
            rip: f.rip,
            rsp: f.rsp,
            rflags: f.rflags,
        };
        let (err, trapno) = fault.unwrap_or((0, 0));
        let altstack = AltStack {
            flags: if on_alt { SS_ONSTACK } else { t.altstack.flags },
            ..t.altstack
        };
        // After sigsuspend, the frame restores the mask it replaced.
        let frame_mask = t.saved_mask.take().unwrap_or(t.sigmask);
        let d = Delivery {
            regs,
            info: *info,
            mask: frame_mask,
            altstack,
            restorer: action.restorer,
            xsave: &ctx.xsave,
            err,
            trapno,
            cr2: if info.signo == SIGSEGV { info.addr } else { 0 },
        };
        let frame = pmon::signal::build(top, &d, xstate);
        let mut new_mask = t.sigmask | action.mask;
        if action.flags & SA_NODEFER == 0 {
            new_mask |= bit(info.signo);
        }
        new_mask &= !UNBLOCKABLE;
        let space_id = self.procs.get(&pid).map(|p| p.space).ok_or(())?;
        let space = &mut self.spaces.get_mut(&space_id).ok_or(())?.space;
        uaccess::write(space, frame.sp, &frame.bytes).map_err(|_| ())?;
        let Some(t) = self.threads.get_mut(&tid) else {
            return Err(());
        };
        let Some(ctx) = t.ctx.as_mut() else {
            return Err(());
        };
        t.sigmask = new_mask;
        let f = &mut ctx.frame;
        f.rip = action.handler;
        f.rsp = frame.sp;
        f.gprs[5] = info.signo as u64; // rdi
        f.gprs[4] = frame.sp + INFO_OFFSET; // rsi
        f.gprs[3] = frame.sp + UC_OFFSET; // rdx
        f.gprs[0] = 0;
        // The handler starts with TF, DF and RF clear, as Linux's
        // setup_rt_frame leaves them (the ABI wants DF clear at a call),
        // and with a clean FPU.
        f.rflags &= !(RFLAGS_TF | RFLAGS_DF | RFLAGS_RF);
        let n = ctx.xsave.len();
        ctx.xsave.iter_mut().for_each(|b| *b = 0);
        if n >= 28 {
            ctx.xsave[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
            ctx.xsave[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        }
        Ok(())
    }

    /// rt_sigreturn: the frame below the stack pointer comes back.
    pub fn sigreturn(&mut self, tid: Tid) -> Result<(), ()> {
        let xstate = self.xstate;
        let Some(t) = self.threads.get(&tid) else {
            return Err(());
        };
        let pid = t.pid;
        let sp = t.ctx.as_ref().ok_or(())?.frame.rsp.wrapping_sub(8);
        let space_id = self.procs.get(&pid).map(|p| p.space).ok_or(())?;
        let space = &mut self.spaces.get_mut(&space_id).ok_or(())?.space;
        let bytes = uaccess::read_vec(space, sp, FRAME_SIZE as usize).map_err(|_| ())?;
        let r = parse(&bytes).ok_or(())?;
        let mut xsave = None;
        if let Some(fp) = r.fpstate {
            let img = uaccess::read_vec(space, fp, xstate.size as usize + 4).map_err(|_| ())?;
            if !xsave_valid(&img, xstate) || !xsave_header_ok(&img, xstate) {
                return Err(());
            }
            xsave = Some(img);
        }
        let t = self.threads.get_mut(&tid).ok_or(())?;
        let ctx = t.ctx.as_mut().ok_or(())?;
        let f = &mut ctx.frame;
        let g = &r.regs;
        f.gprs = [
            g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, g.r8, g.r9, g.r10, g.r11, g.r12,
            g.r13, g.r14, g.r15,
        ];
        f.rip = g.rip;
        f.rsp = g.rsp;
        f.rflags = g.rflags;
        if let Some(img) = xsave {
            let n = ctx.xsave.len();
            ctx.xsave.copy_from_slice(&img[..n]);
        }
        ctx.exact = true;
        t.sigmask = r.mask;
        if r.altstack.flags & SS_DISABLE == 0 && r.altstack.size > 0 {
            t.altstack = AltStack {
                flags: 0,
                ..r.altstack
            };
        }
        Ok(())
    }

    /// A thread stops existing (its process may go on).
    pub fn end_thread(&mut self, tid: Tid) {
        self.futexes.cancel(tid);
        let running = match self.threads.get(&tid).map(|t| t.state) {
            Some(State::Running(cpu)) => {
                // Out of user mode at once: its vCPU sees it is dead.
                host::kick(cpu);
                true
            }
            _ => false,
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            if let State::Blocked {
                wait: Wait::Stdin | Wait::AnyStdin,
                ..
            } = t.state
            {
                self.stdin_waiters = self.stdin_waiters.saturating_sub(1);
            }
            t.state = State::Dead;
        }
        if !running {
            self.threads.remove(&tid);
        }
        self.lock_waits.remove(&tid);
        self.runq.retain(|&t| t != tid);
    }

    /// One thread exits (exit): CLONE_CHILD_CLEARTID is honoured; the last
    /// thread's exit ends the process with `code`.
    pub fn exit_thread(&mut self, tid: Tid, code: i32) {
        let Some(t) = self.threads.get(&tid) else {
            return;
        };
        let (pid, clear) = (t.pid, t.clear_child_tid);
        let last = self.procs.get(&pid).is_none_or(|p| p.threads.len() <= 1);
        if last {
            self.kill_process(pid, exited(code), None);
            return;
        }
        // As Linux: its robust locks first, then CLONE_CHILD_CLEARTID.
        self.release_robust_list(tid);
        if clear != 0 {
            if let Some(space) = self.space_of(pid) {
                let _ = uaccess::write_u32(space, clear, 0);
            }
            let space_id = self.procs.get(&pid).map_or(0, |p| p.space);
            let key = self.futex_key(space_id, clear);
            let woken = self.futexes.wake(key, 1, u32::MAX);
            for w in woken {
                self.wake(w, OnWake::Return(0));
            }
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.threads.retain(|&t| t != tid);
        }
        self.end_thread(tid);
    }

    /// A process ends with wait status `status` (all its threads).
    /// `fatal` is the signal that killed it, if one did.
    pub fn kill_process(&mut self, pid: Pid, status: i32, fatal: Option<SigInfo>) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.life != Life::Alive {
            return;
        }
        // Its threads' robust locks, while its memory is still there (a
        // lock in memory shared with another process matters to it).
        let holders = p.threads.clone();
        for t in holders {
            self.release_robust_list(t);
        }
        // Its message queue registrations (Linux's exit drops them).
        self.mq_forget_process(pid);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.life = Life::Zombie(status);
        // Its timers end with it (Linux's exit_itimers), not when it is
        // reaped: a zombie's would go on waking an idle vCPU.
        p.timers = Default::default();
        p.alarm = None;
        p.cpu_timers = [None; 2];
        // What it leaves behind (shared file mappings written back) goes
        // to its own vNode's files, whoever's call ends it.
        let caller_vnode = super::store::vnode();
        super::store::set_vnode(p.vnode);
        let threads = core::mem::take(&mut p.threads);
        let files = p.fds.clear();
        let space = p.space;
        let ppid = p.ppid;
        let exit_signal = p.exit_signal;
        let vfork_parent = p.vfork_parent.take();
        let exe = p.exe.clone();
        let bias = p.bias;
        // The fault's place, for the VMM's line about the program's death.
        let fault_rip = threads
            .first()
            .and_then(|t| self.threads.get(t))
            .and_then(|t| t.ctx.as_ref())
            .map_or(0, |c| c.frame.rip);
        for t in threads {
            self.end_thread(t);
        }
        for f in files {
            self.release_file(f);
        }
        self.sem_exit(pid);
        if self.locks.release(None, pmon::locks::Owner::Process(pid)) {
            self.wake_all(Wait::Lock);
        }
        self.drop_space(space);
        super::store::set_vnode(caller_vnode);
        if let Some(parent) = vfork_parent {
            self.wake(parent, OnWake::Return(pid as i64));
        }
        if pid == self.init {
            self.program_over(status, fatal, fault_rip, &exe, bias);
        }
        self.run_member_ended(pid, status);
        // Orphans go to the nearest living ancestor that is a subreaper
        // (prctl PR_SET_CHILD_SUBREAPER), else to init, outside the
        // program ([`OUTSIDE`], as on a host: the first process is not
        // process 1 and no shell or test runner expects another's
        // grandchildren), which reaps them; those that asked for it
        // (prctl PR_SET_PDEATHSIG) get their signal.
        let mut heir = OUTSIDE;
        let mut a = ppid;
        for _ in 0..ID_LIMIT {
            match self.procs.get(&a) {
                Some(p) if p.life == Life::Alive && p.subreaper => {
                    heir = a;
                    break;
                }
                Some(p) if p.ppid != a => a = p.ppid,
                _ => break,
            }
        }
        let mut bereaved = Vec::new();
        let mut zombies = Vec::new();
        for c in self.procs.values_mut() {
            if c.ppid == pid {
                c.ppid = heir;
                if c.life != Life::Alive {
                    zombies.push(c.pid);
                }
                if c.pdeath_signal != 0 && c.life == Life::Alive {
                    bereaved.push((c.pid, c.pdeath_signal));
                }
            }
        }
        if heir == OUTSIDE {
            // Init reaps them at once.
            for z in zombies {
                self.procs.remove(&z);
            }
        } else if !zombies.is_empty() {
            // Its new parent's wait may reap them now.
            self.wake_all(Wait::Child);
        }
        for (child, sig) in bereaved {
            self.signal_process(child, SigInfo::user(sig, SI_USER, pid));
        }
        // The parent learns: SIGCHLD and a wake of its waits, or, when it
        // does not want zombies, nothing left behind.
        let reap = self.procs.get(&ppid).is_none_or(|pp| {
            let a = pp.actions[(SIGCHLD - 1) as usize];
            a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0
        });
        // Its waits look again before SIGCHLD comes: a wait that finds
        // this child returns it, as Linux's, rather than end in EINTR for
        // the signal the same exit sent (a SIGCHLD handler without
        // SA_RESTART made every blocking waitpid fail).
        self.wake_child_waiters(ppid);
        if reap {
            self.procs.remove(&pid);
        } else if (1..=64).contains(&exit_signal) {
            // clone's exit signal may be any byte; Linux sends only a
            // valid one, and 0 means none.
            let (code, st) = child_ended(status);
            let mut info = SigInfo::user(exit_signal, code, pid);
            info.status = st;
            self.signal_process(ppid, info);
        }
    }

    /// A child of `ppid` changed (ended, stopped, continued): its waits
    /// look again, and so do the threads in poll, select and epoll_wait
    /// (one may watch the child's pidfd).
    fn wake_child_waiters(&mut self, ppid: Pid) {
        let waiters: Vec<Tid> = self
            .procs
            .get(&ppid)
            .map(|pp| pp.threads.clone())
            .unwrap_or_default();
        for w in waiters {
            if matches!(
                self.threads.get(&w).map(|t| t.state),
                Some(State::Blocked {
                    wait: Wait::Child,
                    ..
                })
            ) {
                self.wake(w, OnWake::Retry);
            }
        }
        self.wake_all(Wait::Any);
    }

    /// Job control at the moment `sig` is sent to process `pid` (to its
    /// thread `thread` for tgkill), as Linux's prepare_signal: SIGCONT
    /// continues a stopped process and drops its pending stop signals,
    /// whatever its action, then goes on as any signal; a stop signal
    /// drops a pending SIGCONT, and one that stops (SIGSTOP, or another
    /// neither caught nor blocked) stops the process at once instead of
    /// being queued, so that no system call of it ends with EINTR. SIGTSTP,
    /// SIGTTIN and SIGTTOU to a process of an orphaned group are dropped.
    /// True when nothing more is to be done with the signal.
    fn job_control(&mut self, pid: Pid, sig: u32, action: &SigAction, thread: Option<Tid>) -> bool {
        if sig == SIGCONT {
            self.continue_process(pid);
            return false;
        }
        if STOP_SIGNALS & bit(sig) == 0 {
            return false;
        }
        self.drop_pending(pid, bit(SIGCONT));
        if sig != SIGSTOP && action.handler != SIG_DFL {
            return false;
        }
        let threads = match thread {
            Some(t) => alloc::vec![t],
            None => self
                .procs
                .get(&pid)
                .map(|p| p.threads.clone())
                .unwrap_or_default(),
        };
        let blocked = threads.iter().all(|t| {
            self.threads
                .get(t)
                .is_some_and(|t| t.sigmask & bit(sig) != 0)
        });
        if sig != SIGSTOP && blocked {
            // Queued; it stops the process when taken (`deliver_one`).
            return false;
        }
        self.stop_process(pid, sig);
        true
    }

    /// Drops the signals of `mask` pending for process `pid` and its threads.
    fn drop_pending(&mut self, pid: Pid, mask: SigSet) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.pending.retain(|i| mask & bit(i.signo) == 0);
        for t in p.threads.clone() {
            if let Some(t) = self.threads.get_mut(&t) {
                t.pending.retain(|i| mask & bit(i.signo) == 0);
            }
        }
    }

    /// Stops process `pid` (a stop signal `sig`'s default action): none of
    /// its threads runs until SIGCONT (`pick` passes them by; one running
    /// on another vCPU is kicked into the monitor), and its parent learns:
    /// SIGCHLD with CLD_STOPPED unless it set SA_NOCLDSTOP, and waits with
    /// WUNTRACED report it once. SIGKILL still ends it. SIGTSTP, SIGTTIN
    /// and SIGTTOU do not stop a process of an orphaned group (Linux drops
    /// them: no one is left to continue it).
    pub fn stop_process(&mut self, pid: Pid, sig: u32) {
        if sig != SIGSTOP && self.group_orphaned(pid) {
            return;
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.life != Life::Alive || p.job.stopped {
            return;
        }
        p.job = JobState {
            stopped: true,
            stop_report: Some(sig),
            cont_report: false,
        };
        for t in p.threads.clone() {
            if let Some(State::Running(cpu)) = self.threads.get(&t).map(|t| t.state) {
                host::kick(cpu);
            }
        }
        self.tell_parent_of_job(pid, CLD_STOPPED, sig);
    }

    /// SIGCONT to process `pid`: its pending stop signals go and, if it was
    /// stopped, its threads run again and its parent learns (SIGCHLD with
    /// CLD_CONTINUED unless SA_NOCLDSTOP; WCONTINUED waits).
    pub fn continue_process(&mut self, pid: Pid) {
        self.drop_pending(pid, STOP_SIGNALS);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if !p.job.stopped {
            return;
        }
        p.job = JobState {
            stopped: false,
            stop_report: None,
            cont_report: true,
        };
        for t in p.threads.clone() {
            if self
                .threads
                .get(&t)
                .is_some_and(|t| t.state == State::Runnable)
            {
                self.runq.push_back(t);
            }
        }
        self.kick_idle();
        self.tell_parent_of_job(pid, CLD_CONTINUED, SIGCONT);
    }

    fn tell_parent_of_job(&mut self, pid: Pid, code: i32, sig: u32) {
        let Some(ppid) = self.procs.get(&pid).map(|p| p.ppid) else {
            return;
        };
        let quiet = self
            .procs
            .get(&ppid)
            .is_none_or(|pp| pp.actions[(SIGCHLD - 1) as usize].flags & SA_NOCLDSTOP != 0);
        // The waits first, as for an exit (`wake_child_waiters`).
        self.wake_child_waiters(ppid);
        if !quiet {
            let mut info = SigInfo::user(SIGCHLD, code, pid);
            info.status = sig as i32;
            self.signal_process(ppid, info);
        }
    }

    /// Whether the process group of `pid` is orphaned: no member has a
    /// parent in another group of its session (the parent outside the
    /// processor, whoever ran lego-vmm, counts as one, as the shell that
    /// ran it would).
    fn group_orphaned(&self, pid: Pid) -> bool {
        let Some(pgid) = self.procs.get(&pid).map(|p| p.pgid) else {
            return true;
        };
        !self
            .procs
            .values()
            .filter(|m| m.pgid == pgid && m.life == Life::Alive)
            .any(|m| match self.procs.get(&m.ppid) {
                Some(q) => q.pgid != pgid && q.sid == m.sid,
                None => true,
            })
    }

    /// The first process ended: so does the program, with its status.
    fn program_over(
        &mut self,
        status: i32,
        fatal: Option<SigInfo>,
        rip: u64,
        exe: &[u8],
        bias: u64,
    ) -> ! {
        use core::fmt::Write;
        use lego_proto::program::*;
        // Writes still on their way are served before lego-vmm goes.
        self.settle_posted(0);
        let mut missing = alloc::string::String::new();
        for (nr, n) in &self.missing {
            let _ = writeln!(missing, "{} ({nr}): {n} time(s)", super::syscall_name(*nr));
        }
        let e = if status & 0x7f == 0 {
            ProgramExit {
                how: EXIT_STATUS,
                code: ((status >> 8) & 0xff) as u32,
                ..Default::default()
            }
        } else {
            let fault =
                fatal.filter(|i| matches!(i.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP));
            ProgramExit {
                how: EXIT_SIGNAL,
                code: (status & 0x7f) as u32,
                addr: fault.map_or(0, |i| i.addr),
                rip,
                fault: fault.is_some() as u32,
                bias,
                ..Default::default()
            }
        };
        host::exit(e, exe, missing.as_bytes())
    }

    /// The last descriptor of an open file closed: a pipe end goes.
    pub fn release_file(&mut self, f: Arc<OpenFile>) {
        if Arc::strong_count(&f) > 1 {
            return;
        }
        // Its watchers hear it closed.
        let closed = if f.writable() {
            pmon::inotify::IN_CLOSE_WRITE
        } else {
            pmon::inotify::IN_CLOSE_NOWRITE
        };
        self.notify_open_file(&f, closed);
        if !self.doomed.is_empty() {
            self.notify_last_close(&f);
        }
        // The open file's own locks (F_OFD_*, flock) go with it.
        let id = Arc::as_ptr(&f) as usize;
        if self.locks.release(None, pmon::locks::Owner::File(id)) {
            self.wake_all(Wait::Lock);
        }
        match f.kind {
            Kind::PipeRead(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.readers = p.readers.saturating_sub(1);
                }
                self.pipe_changed(id);
            }
            Kind::PipeWrite(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.writers = p.writers.saturating_sub(1);
                }
                self.pipe_changed(id);
            }
            Kind::Host(h) | Kind::HostDir(h) => host::close(h),
            Kind::Tmp(ino) => self.tmp.release(ino),
            Kind::Store(ino) => {
                // Close-to-open: what was written is at the storage
                // component when the last descriptor goes (another
                // processor, or `lego cp`, may read it next).
                self.settle_posted(0);
                // What was read ahead of it is not wanted now.
                self.drop_ahead_of(ino);
                if !self.unlinked.is_empty() {
                    drop(f);
                    self.store_closed(ino);
                }
            }
            Kind::Socket(rx, tx) => {
                // SO_LINGER at 0 seconds: an abortive close.
                let abort = self.linger_aborts(rx);
                self.unix_names.remove(&rx);
                self.sock_options.remove(&rx);
                // A named pipe opened read-write (rx == tx) keeps what it
                // holds for its next reader, as a pipe does.
                let (reset, tcp) = match self.pipes.get_mut(&rx) {
                    Some(p) if tx == rx => {
                        p.readers = p.readers.saturating_sub(1);
                        (false, false)
                    }
                    // A TCP connection closed abortively is reset whatever
                    // was read (Linux sends RST at once).
                    Some(p) if abort && p.tcp => {
                        p.readers = p.readers.saturating_sub(1);
                        p.reset_by_reader();
                        (true, true)
                    }
                    Some(p) => (p.socket_reader_left(), p.tcp),
                    None => (false, false),
                };
                // Closed with bytes unread: the peer has ECONNRESET to
                // report, but for a TCP peer that already had this side's
                // FIN (shutdown), whose reads see the end (Linux's
                // CLOSE_WAIT takes a reset as EPIPE).
                if reset && (abort || !(tcp && pmon::fd::shut_for_writing(&f))) {
                    if let Some(p) = self.pipes.get_mut(&tx) {
                        p.peer_reset();
                    }
                } else if reset {
                    // The peer had this side's FIN: EPIPE waits for it.
                    if let Some(p) = self.pipes.get_mut(&rx) {
                        p.writer_error = true;
                    }
                }
                if !pmon::fd::shut_for_writing(&f) {
                    if let Some(p) = self.pipes.get_mut(&tx) {
                        p.writers = p.writers.saturating_sub(1);
                    }
                }
                self.pipe_changed(rx);
                // A named pipe opened read-write is one pipe both ways.
                if tx != rx {
                    self.pipe_changed(tx);
                }
            }
            Kind::UnixDgram(id) => self.close_unix_dgram(id),
            Kind::PtyMaster(id) => self.close_pty(id, true),
            Kind::PtySlave(id) => self.close_pty(id, false),
            Kind::Dgram(id) => {
                self.dgrams.close(id);
                self.udp_timeouts.remove(&id);
                self.sock_options.remove(&id);
            }
            Kind::Unix(id) => {
                self.sock_options.remove(&id);
                let waiting = self.unix.close(id);
                self.reset_waiting(waiting);
                // Its waiters look again (and find it gone); its id was
                // never a pipe, so nothing of it is kept.
                self.pipe_changed(id);
                self.pipe_generation.remove(&id);
            }
            Kind::Epoll(id) => {
                self.epolls.remove(&id);
            }
            Kind::EventFd(id) => {
                self.eventfds.remove(&id);
                self.timerfds.remove(&id);
            }
            Kind::SignalFd(id) => {
                self.signalfds.remove(&id);
            }
            Kind::Inotify(id) => {
                self.inotifies.remove(&id);
            }
            Kind::Netlink(id) => {
                self.netlinks.remove(&id);
            }
            Kind::MQueue(id) => self.mqueues.close(id),
            _ => {}
        }
    }

    /// Something happened to a pipe: its waiters look again; a pipe with
    /// no ends left goes.
    /// Connections a listener had waiting for accept end as it closes or
    /// is shut down: Linux resets them (TCP and AF_UNIX alike), so their
    /// clients' first read (or a TCP client's first send) is ECONNRESET,
    /// then EPIPE. `waiting`: the server ends' pipes (receive, send).
    pub fn reset_waiting(&mut self, waiting: Vec<(usize, usize)>) {
        for (rx, tx) in waiting {
            if let Some(p) = self.pipes.get_mut(&rx) {
                p.readers = p.readers.saturating_sub(1);
                p.reset_by_reader();
            }
            if let Some(p) = self.pipes.get_mut(&tx) {
                p.writers = p.writers.saturating_sub(1);
                p.peer_reset();
            }
            self.unix_names.remove(&rx);
            self.pipe_changed(rx);
            self.pipe_changed(tx);
        }
    }

    pub fn pipe_changed(&mut self, id: usize) {
        // Descriptors sent to a reader that is gone go with it (each may
        // be the last of its file: released as a close would).
        let orphans = match self.pipes.get_mut(&id) {
            Some(p) if p.readers == 0 => p.drop_rights(),
            _ => Vec::new(),
        };
        for f in orphans {
            self.release_file(f);
        }
        if self
            .pipes
            .get(&id)
            .is_some_and(|p| p.readers == 0 && p.writers == 0)
        {
            self.pipes.remove(&id);
            self.pipe_generation.remove(&id);
            self.fifos.retain(|_, p| *p != id);
        } else {
            *self.pipe_generation.entry(id).or_insert(0) += 1;
        }
        self.wake_all(Wait::Pipe(id));
    }
}

/// Whether `sig` under action `a` would do nothing when delivered: SIGCONT
/// by default too (it continued the process when it was sent), as Linux's
/// sig_handler_ignored: it interrupts no system call.
fn ignored(sig: u32, a: &SigAction) -> bool {
    a.handler == SIG_IGN
        || (a.handler == SIG_DFL
            && matches!(
                default_action(sig),
                DefaultAction::Ignore | DefaultAction::Continue
            ))
}

/// The XSAVE header of an image a program hands back must be one `xrstor`
/// takes without a fault: only the saved features, standard format, zero
/// reserved bytes, and an MXCSR without reserved bits.
fn xsave_header_ok(img: &[u8], x: Xstate) -> bool {
    let word = |at: usize| u64::from_le_bytes(img[at..at + 8].try_into().unwrap_or([0xff; 8]));
    let mxcsr = u32::from_le_bytes(img[24..28].try_into().unwrap_or([0xff; 4]));
    let xstate_bv = word(512);
    let xcomp_bv = word(520);
    let reserved = (528..576).step_by(8).all(|at| word(at) == 0);
    xstate_bv & !x.features == 0 && xcomp_bv == 0 && reserved && mxcsr & !0xffff == 0
}
