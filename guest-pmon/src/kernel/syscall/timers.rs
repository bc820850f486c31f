//! POSIX timers: timer_create, timer_settime, timer_gettime,
//! timer_getoverrun and timer_delete (`pmon::ptimer` keeps them), their
//! expirations (checked with the other deadlines, and CPU-time ones when
//! a thread comes back from user mode), and the overrun Linux counts: a
//! timer has at most one signal queued, and expirations while it waits
//! add to that signal's si_overrun.
//!
//! Decided: wall-clock and monotonic timers run on the monotonic clock
//! (the wall clock cannot be set here); CLOCK_THREAD_CPUTIME_ID and a
//! thread's clock count that thread's CPU time; the alarm
//! clocks are EOPNOTSUPP (nothing here wakes a suspended machine, as
//! Linux answers without an RTC); a timer on another process's CPU clock
//! is EINVAL.

use pmon::ptimer::{Base, Notify, SigEvent, Timer, SI_TIMER};

use super::*;

const TIMER_ABSTIME: u64 = 1;
const EOPNOTSUPP: Errno = 95;
/// The greatest overrun reported (DELAYTIMER_MAX).
const DELAYTIMER_MAX: u32 = i32::MAX as u32;

impl Kernel {
    pub(super) fn sys_timer_create(&mut self, tid: Tid, clock: u64, sevp: u64, out: u64) -> Ret {
        let pid = self.pid_of(tid);
        let event = if sevp == 0 {
            None
        } else {
            let mut raw = [0u8; 20];
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read(s, sevp, &mut raw))
            {
                Ok(()) => Some(SigEvent::decode(&raw)),
                Err(e) => return err(e),
            }
        };
        let id = clock as i32;
        let (base, realtime) = match id {
            0 | 11 => (Base::Monotonic, true),
            1 | 7 => (Base::Monotonic, false),
            2 => (Base::CpuTime, false),
            3 => (Base::ThreadCpu(tid), false),
            4..=6 | 8 | 9 => return err(EOPNOTSUPP),
            // A thread's CPU clock by number (pthread_getcpuclockid: Go
            // gives each of its threads a profiling timer so), one of this
            // process's.
            i if i < 0 && i & 4 != 0 => match self.thread_clock(pid, i) {
                Ok(t) => (Base::ThreadCpu(t), false),
                Err(e) => return err(e),
            },
            // Its own process's CPU clock by number (clock_getcpuclockid).
            i if i < 0 => match self.process_clock(pid, i) {
                Ok(p) if p == pid => (Base::CpuTime, false),
                Ok(_) => return err(EINVAL),
                Err(e) => return err(e),
            },
            _ => return err(EINVAL),
        };
        let (notify, value) = match event {
            // No sigevent: SIGALRM to the process, the timer's id its value.
            None => (Notify::Process(SIGALRM), None),
            Some(ev) => match ev.notify() {
                Some(Notify::Thread(t, _))
                    if self.threads.get(&t).is_none_or(|th| th.pid != pid) =>
                {
                    return err(EINVAL)
                }
                Some(n) => (n, Some(ev.value)),
                None => return err(EINVAL),
            },
        };
        let Some(p) = self.procs.get_mut(&pid) else {
            return err(ESRCH);
        };
        let Some(timer_id) =
            p.timers
                .create(Timer::new(base, realtime, notify, value.unwrap_or(0)))
        else {
            return err(EAGAIN);
        };
        if value.is_none() {
            if let Some(t) = p.timers.get_mut(timer_id) {
                t.value = timer_id as u64;
            }
        }
        let written = self
            .space_mut(pid)
            .and_then(|s| uaccess::write_u32(s, out, timer_id as u32));
        if let Err(e) = written {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.timers.remove(timer_id);
            }
            return err(e);
        }
        Ret::Val(0)
    }

    /// The time now on what timer `t` of process `pid` counts.
    fn timer_now(&self, pid: Pid, t: &Timer) -> u64 {
        match t.base {
            Base::Monotonic => self.now_ns(),
            Base::CpuTime => self.cpu_ns(pid).0,
            Base::ThreadCpu(t) => self.thread_cpu_ns(t),
        }
    }

    /// Timer `id`'s setting as a struct itimerspec (period, then value).
    fn timer_setting(&mut self, pid: Pid, id: i32) -> Result<[u8; 32], Errno> {
        let t = *self
            .procs
            .get(&pid)
            .and_then(|p| p.timers.get(id))
            .ok_or(EINVAL)?;
        let now = self.timer_now(pid, &t);
        let t = self
            .procs
            .get_mut(&pid)
            .and_then(|p| p.timers.silent_to(id, now))
            .ok_or(EINVAL)?;
        let (left, period) = t.clock.remaining(now);
        Ok(itimerspec(period, left))
    }

    pub(super) fn sys_timer_settime(
        &mut self,
        pid: Pid,
        id: u64,
        flags: u64,
        new: u64,
        old: u64,
    ) -> Ret {
        let id = id as i32;
        let previous = match self.timer_setting(pid, id) {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        if new == 0 {
            return err(EINVAL);
        }
        let (period, value) = match self.read_itimerspec(pid, new) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        let Some(t) = self.procs.get(&pid).and_then(|p| p.timers.get(id)).copied() else {
            return err(EINVAL);
        };
        let now = self.timer_now(pid, &t);
        let mut owed = 0;
        let first = (value > 0).then(|| {
            if flags & TIMER_ABSTIME == 0 {
                now.saturating_add(value)
            } else if t.realtime {
                // A wall-clock time, as monotonic ns. One already past
                // expires at once, with the periods since it as overruns
                // (Linux's; LTP timer_settime03 sets one 3 s back with a
                // period of 1 ns and expects the count capped).
                let at;
                (at, owed) = pmon::events::from_wall_clock(value, self.realtime_ns(), now, period);
                at
            } else {
                value
            }
        });
        if let Some(t) = self.procs.get_mut(&pid).and_then(|p| p.timers.get_mut(id)) {
            t.clock.arm(first, period);
            t.clock.owed = owed;
            t.overrun_last = 0;
        }
        self.drop_timer_signal(pid, id);
        // Due already (an absolute time past): it fires now, not at the
        // next tick.
        if first.is_some_and(|f| f <= now) {
            match t.base {
                Base::Monotonic => self.expire_due_timers(pid),
                Base::CpuTime => self.expire_cpu_timers(pid),
                Base::ThreadCpu(t) => self.expire_thread_cpu_timers(pid, t),
            }
        }
        if old != 0 {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, old, &previous))
            {
                return err(e);
            }
        }
        Ret::Val(0)
    }

    pub(super) fn sys_timer_gettime(&mut self, pid: Pid, id: u64, out: u64) -> Ret {
        let bytes = match self.timer_setting(pid, id as i32) {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, out, &bytes))
            .map(|_| 0))
    }

    pub(super) fn sys_timer_getoverrun(&mut self, pid: Pid, id: u64) -> Ret {
        match self.procs.get(&pid).and_then(|p| p.timers.get(id as i32)) {
            Some(t) => Ret::Val(t.overrun_last as i64),
            None => err(EINVAL),
        }
    }

    pub(super) fn sys_timer_delete(&mut self, pid: Pid, id: u64) -> Ret {
        match self
            .procs
            .get_mut(&pid)
            .and_then(|p| p.timers.remove(id as i32))
        {
            Some(_) => {
                self.drop_timer_signal(pid, id as i32);
                Ret::Val(0)
            }
            None => err(EINVAL),
        }
    }

    /// Timer `id` of process `pid` was deleted or set anew: a signal it
    /// queued and nobody took yet goes, as Linux (6.13 on) drops the
    /// signal of a deleted or re-armed timer rather than deliver it.
    fn drop_timer_signal(&mut self, pid: Pid, id: i32) {
        let mine = |i: &SigInfo| i.code == SI_TIMER && i.pid == id as u32;
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.pending.retain(|i| !mine(i));
        let threads = p.threads.clone();
        for tid in threads {
            if let Some(t) = self.threads.get_mut(&tid) {
                t.pending.retain(|i| !mine(i));
            }
        }
    }

    /// Process `pid`'s monotonic timers that are due, fired.
    fn expire_due_timers(&mut self, pid: Pid) {
        let now = self.now_ns();
        let due = self
            .procs
            .get_mut(&pid)
            .map_or(Vec::new(), |p| p.timers.expire(Base::Monotonic, now));
        for (id, n) in due {
            self.timer_expired(pid, id, n);
        }
    }

    /// Timer `id` of process `pid` expired `n` times: its signal is
    /// queued, or, while the one queued before waits, its overrun grows.
    pub(in crate::kernel) fn timer_expired(&mut self, pid: Pid, id: i32, n: u64) {
        let Some(t) = self.procs.get(&pid).and_then(|p| p.timers.get(id)).copied() else {
            return;
        };
        let (signo, thread) = match t.notify {
            Notify::Nothing => return,
            Notify::Process(s) => (s, None),
            // A thread that ended takes nothing, as in Linux.
            Notify::Thread(tid, s) => match self.threads.get(&tid) {
                Some(th) if th.pid == pid => (s, Some(tid)),
                _ => return,
            },
        };
        let more = n.min(DELAYTIMER_MAX as u64) as u32;
        let mine = |i: &SigInfo| i.code == SI_TIMER && i.pid == id as u32 && i.signo == signo;
        let queued = match thread {
            Some(tid) => self
                .threads
                .get_mut(&tid)
                .and_then(|th| th.pending.iter_mut().find(|i| mine(i))),
            None => self
                .procs
                .get_mut(&pid)
                .and_then(|p| p.pending.iter_mut().find(|i| mine(i))),
        };
        if let Some(info) = queued {
            info.uid = info.uid.saturating_add(more).min(DELAYTIMER_MAX);
            return;
        }
        let info = SigInfo {
            pid: id as u32,
            uid: more - 1,
            value: t.value,
            ..SigInfo::user(signo, SI_TIMER, 0)
        };
        match thread {
            Some(tid) => self.signal_thread(tid, info),
            None => self.signal_process(pid, info),
        }
    }

    /// A timer's signal was taken (delivered, or read by sigwaitinfo or a
    /// signalfd): its overrun is the one timer_getoverrun reports now.
    pub(in crate::kernel) fn timer_signal_taken(&mut self, pid: Pid, info: &SigInfo) {
        if info.code != SI_TIMER {
            return;
        }
        if let Some(t) = self
            .procs
            .get_mut(&pid)
            .and_then(|p| p.timers.get_mut(info.pid as i32))
        {
            t.overrun_last = info.uid;
        }
    }
}
