//! POSIX per-process timers (timer_create, timer_settime, timer_gettime,
//! timer_getoverrun, timer_delete): a process's timers by id, what each
//! counts (the monotonic clock, on which wall-clock timers run too since
//! the wall clock cannot be set here, or the process's CPU time), how it
//! tells of an expiration, and Linux's checks of a `struct sigevent`.

use alloc::collections::BTreeMap;

use crate::events::TimerFd;

/// `sigev_notify` values.
pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

/// si_code of a timer's signal.
pub const SI_TIMER: i32 = -2;

/// The highest signal number.
const SIGRTMAX: u32 = 64;

/// Timers one process may hold (Linux bounds them by RLIMIT_SIGPENDING;
/// EAGAIN beyond).
pub const MAX_TIMERS: usize = 4096;

/// What a timer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// ns since boot (CLOCK_MONOTONIC, BOOTTIME, REALTIME, TAI, alarms).
    Monotonic,
    /// ns of its process's CPU time (CLOCK_PROCESS_CPUTIME_ID).
    CpuTime,
    /// ns of one thread's CPU time (CLOCK_THREAD_CPUTIME_ID, or the clock
    /// pthread_getcpuclockid gives).
    ThreadCpu(u32),
}

/// How an expiration is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// Not at all (timer_gettime shows it).
    Nothing,
    /// Signal `0` to the process.
    Process(u32),
    /// Signal `1` to thread `0` of the process.
    Thread(u32, u32),
}

/// A `struct sigevent` as a program gave it, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigEvent {
    pub value: u64,
    pub signo: u32,
    pub notify: i32,
    pub thread: u32,
}

impl SigEvent {
    /// Its bytes: sigev_value, sigev_signo, sigev_notify, then the thread
    /// id (sigev_notify_thread_id) at 16.
    pub fn decode(b: &[u8; 20]) -> SigEvent {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        SigEvent {
            value: u64::from(word(0)) | u64::from(word(4)) << 32,
            signo: word(8),
            notify: word(12) as i32,
            thread: word(16),
        }
    }

    /// Linux's `good_sigevent`: a signal number in range for the kinds
    /// that signal (SIGEV_THREAD is a library's matter: the kernel takes
    /// it as SIGEV_SIGNAL), any other kind EINVAL. Whether a thread id
    /// names a thread of the caller is the kernel's to check.
    pub fn notify(&self) -> Option<Notify> {
        let signal = (1..=SIGRTMAX).contains(&self.signo);
        match self.notify {
            SIGEV_NONE => Some(Notify::Nothing),
            SIGEV_SIGNAL | SIGEV_THREAD if signal => Some(Notify::Process(self.signo)),
            SIGEV_THREAD_ID if signal => Some(Notify::Thread(self.thread, self.signo)),
            _ => None,
        }
    }
}

/// One timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub base: Base,
    /// Its clock is the wall clock (an absolute time is the wall clock's).
    pub realtime: bool,
    pub notify: Notify,
    /// sigev_value, handed back in the signal's si_value.
    pub value: u64,
    /// When it expires next and its period, on `base`.
    pub clock: TimerFd,
    /// The overrun count of its last signal taken (timer_getoverrun).
    pub overrun_last: u32,
}

impl Timer {
    pub fn new(base: Base, realtime: bool, notify: Notify, value: u64) -> Timer {
        Timer {
            base,
            realtime,
            notify,
            value,
            clock: TimerFd::default(),
            overrun_last: 0,
        }
    }
}

/// A process's timers. Not given to a fork child and gone at execve, as
/// in Linux.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    by_id: BTreeMap<i32, Timer>,
    /// Where the search for a free id starts: ids are handed out in
    /// order from 0, as Linux does, wrapping at i32::MAX.
    next_id: i32,
}

impl Timers {
    /// A new timer's id; None when the process holds too many.
    pub fn create(&mut self, timer: Timer) -> Option<i32> {
        if self.by_id.len() >= MAX_TIMERS {
            return None;
        }
        let mut id = self.next_id;
        while self.by_id.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        self.next_id = id.checked_add(1).unwrap_or(0);
        self.by_id.insert(id, timer);
        Some(id)
    }

    pub fn get(&self, id: i32) -> Option<&Timer> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: i32) -> Option<&mut Timer> {
        self.by_id.get_mut(&id)
    }

    pub fn remove(&mut self, id: i32) -> Option<Timer> {
        self.by_id.remove(&id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The earliest expiration on `base` that tells anyone (a SIGEV_NONE
    /// timer is only read, so it wakes no vCPU: `silent_to` moves it).
    pub fn next(&self, base: Base) -> Option<u64> {
        self.by_id
            .values()
            .filter(|t| t.base == base && t.notify != Notify::Nothing)
            .filter_map(|t| t.clock.next)
            .min()
    }

    /// Timer `id`, a SIGEV_NONE one moved past its expirations up to
    /// `now` (timer_gettime reads it so).
    pub fn silent_to(&mut self, id: i32, now: u64) -> Option<&Timer> {
        let t = self.by_id.get_mut(&id)?;
        if t.notify == Notify::Nothing {
            t.clock.expire(now);
        }
        Some(t)
    }

    /// The timers on `base` due at `now`, each with its expirations (more
    /// than one when periods were missed: the overrun), each moved to its
    /// next expiration.
    pub fn expire(&mut self, base: Base, now: u64) -> alloc::vec::Vec<(i32, u64)> {
        self.by_id
            .iter_mut()
            .filter(|(_, t)| t.base == base && t.notify != Notify::Nothing)
            .filter_map(|(&id, t)| Some((id, t.clock.expire(now))).filter(|&(_, n)| n > 0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigevent(value: u64, signo: u32, notify: i32, thread: u32) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..8].copy_from_slice(&value.to_le_bytes());
        b[8..12].copy_from_slice(&signo.to_le_bytes());
        b[12..16].copy_from_slice(&notify.to_le_bytes());
        b[16..20].copy_from_slice(&thread.to_le_bytes());
        b
    }

    #[test]
    fn sigevents_are_checked_as_linux_checks_them() {
        let ev = |s, n, t| SigEvent::decode(&sigevent(7, s, n, t));
        assert_eq!(ev(10, SIGEV_SIGNAL, 0).notify(), Some(Notify::Process(10)));
        assert_eq!(ev(34, SIGEV_THREAD, 0).notify(), Some(Notify::Process(34)));
        assert_eq!(ev(0, SIGEV_NONE, 0).notify(), Some(Notify::Nothing));
        assert_eq!(
            ev(12, SIGEV_THREAD_ID, 55).notify(),
            Some(Notify::Thread(55, 12))
        );
        assert_eq!(ev(0, SIGEV_SIGNAL, 0).notify(), None);
        assert_eq!(ev(65, SIGEV_SIGNAL, 0).notify(), None);
        assert_eq!(ev(10, 3, 0).notify(), None);
        assert_eq!(ev(10, SIGEV_THREAD_ID | 1, 5).notify(), None);
        assert_eq!(
            SigEvent::decode(&sigevent(u64::MAX, 1, 0, 0)).value,
            u64::MAX
        );
    }

    #[test]
    fn ids_are_handed_out_in_order_and_reused_after_wrapping() {
        let t = Timer::new(Base::Monotonic, false, Notify::Nothing, 0);
        let mut ts = Timers::default();
        assert_eq!(ts.create(t), Some(0));
        assert_eq!(ts.create(t), Some(1));
        ts.remove(0);
        assert_eq!(ts.create(t), Some(2));
        ts.next_id = i32::MAX;
        assert_eq!(ts.create(t), Some(i32::MAX));
        // Wrapped: 0 is free again, 1 and 2 are not.
        assert_eq!(ts.create(t), Some(0));
        assert_eq!(ts.create(t), Some(3));
    }

    #[test]
    fn expirations_count_missed_periods_by_base() {
        let mut ts = Timers::default();
        let mut t = Timer::new(Base::Monotonic, false, Notify::Process(14), 0);
        t.clock.arm(Some(100), 10);
        let mut cpu = Timer::new(Base::CpuTime, false, Notify::Process(27), 0);
        cpu.clock.arm(Some(50), 0);
        let a = ts.create(t).unwrap_or(-1);
        let b = ts.create(cpu).unwrap_or(-1);
        assert_eq!(ts.next(Base::Monotonic), Some(100));
        assert!(ts.expire(Base::Monotonic, 99).is_empty());
        assert_eq!(ts.expire(Base::Monotonic, 125), alloc::vec![(a, 3)]);
        assert_eq!(ts.next(Base::Monotonic), Some(130));
        assert_eq!(ts.expire(Base::CpuTime, 60), alloc::vec![(b, 1)]);
        assert_eq!(ts.next(Base::CpuTime), None);
        // A SIGEV_NONE timer wakes nothing; read, it has moved on.
        let mut quiet = Timer::new(Base::Monotonic, false, Notify::Nothing, 0);
        quiet.clock.arm(Some(10), 1);
        let q = ts.create(quiet).unwrap_or(-1);
        assert_eq!(ts.next(Base::Monotonic), Some(130));
        assert!(ts.expire(Base::Monotonic, 129).is_empty());
        let moved = ts.silent_to(q, 1000).map(|t| t.clock.remaining(1000));
        assert_eq!(moved, Some((1, 1)));
    }

    #[test]
    fn a_process_holds_a_bounded_number() {
        let t = Timer::new(Base::Monotonic, false, Notify::Nothing, 0);
        let mut ts = Timers::default();
        for _ in 0..MAX_TIMERS {
            assert!(ts.create(t).is_some());
        }
        assert_eq!(ts.create(t), None);
    }
}
