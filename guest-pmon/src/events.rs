//! epoll, eventfd and timerfd, as Linux defines them (epoll(7),
//! eventfd(2), timerfd_create(2)): the Go runtime cannot start a timer
//! without the first two, and event loops (libuv, tokio, nginx-style
//! servers, systemd-style daemons) are built on them.
//!
//! A timerfd is an eventfd whose counter the timer raises: a read returns
//! the expirations since the last read (and waits while there are none),
//! epoll and poll see it readable when it has some. [`TimerFd`] keeps when
//! it expires next and its period.
//!
//! An epoll instance is an interest list keyed by descriptor number. The
//! kernel tells [`Epoll::collect`] what each descriptor is now (which open
//! file, which of EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR hold, and a
//! generation that changes whenever the file's state may have changed);
//! level-triggered interests report whenever their events hold,
//! edge-triggered ones (EPOLLET) once per generation, and EPOLLONESHOT
//! ones once until EPOLL_CTL_MOD arms them again. An interest whose
//! descriptor was closed, or now leads to another file, is dropped (Linux
//! drops it when the file is closed).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub const EPOLLIN: u32 = 0x001;
pub const EPOLLPRI: u32 = 0x002;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLRDNORM: u32 = 0x040;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;

pub const ENOENT: i64 = 2;
pub const EEXIST: i64 = 17;
pub const EINVAL: i64 = 22;
pub const EAGAIN: i64 = 11;

/// The size of one `struct epoll_event` (packed on x86-64).
pub const EVENT_LEN: usize = 12;

/// What a descriptor is now, for [`Epoll::collect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState {
    /// Which open file it leads to (an identity never reused: an address
    /// is, and a new file on a closed one's descriptor then looked like
    /// the old one, so its EPOLL_CTL_ADD was EEXIST).
    pub file: usize,
    /// The EPOLL* conditions that hold.
    pub ready: u32,
    /// Changes whenever the conditions may have changed.
    pub generation: u64,
}

#[derive(Clone, Debug)]
struct Interest {
    file: usize,
    events: u32,
    data: u64,
    /// The generation last reported (edge-triggered).
    reported: Option<u64>,
    /// EPOLLONESHOT fired: silent until modified.
    spent: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Epoll {
    interests: BTreeMap<i32, Interest>,
    /// The descriptor a wait cut short at its `max` reported last: the
    /// next starts after it, so that descriptors kept ready all get their
    /// turn (Linux puts a reported one back at its ready list's end).
    cursor: Option<i32>,
}

impl Epoll {
    pub fn new() -> Epoll {
        Epoll::default()
    }

    /// epoll_ctl. `file` identifies the open file `fd` leads to.
    pub fn ctl(
        &mut self,
        op: u32,
        fd: i32,
        file: usize,
        events: u32,
        data: u64,
    ) -> Result<(), i64> {
        // EPOLLEXCLUSIVE is only for ADD, with no events but these (no
        // ONESHOT, no RDHUP or PRI), as Linux's EPOLLEXCLUSIVE_OK_BITS.
        const EXCLUSIVE_OK: u32 =
            EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
        if events & EPOLLEXCLUSIVE != 0 && (op != EPOLL_CTL_ADD || events & !EXCLUSIVE_OK != 0) {
            return Err(EINVAL);
        }
        let fresh = Interest {
            file,
            events,
            data,
            reported: None,
            spent: false,
        };
        match op {
            EPOLL_CTL_ADD => {
                if self.interests.get(&fd).is_some_and(|i| i.file == file) {
                    return Err(EEXIST);
                }
                self.interests.insert(fd, fresh);
            }
            EPOLL_CTL_MOD => match self.interests.get_mut(&fd) {
                // An exclusive interest cannot be changed, only deleted.
                Some(i) if i.file == file && i.events & EPOLLEXCLUSIVE != 0 => return Err(EINVAL),
                Some(i) if i.file == file => *i = fresh,
                _ => return Err(ENOENT),
            },
            EPOLL_CTL_DEL => match self.interests.get(&fd) {
                Some(i) if i.file == file => {
                    self.interests.remove(&fd);
                }
                _ => return Err(ENOENT),
            },
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// Descriptor `fd` leads to open file `to` now where it led to `from`
    /// (a socket that connected became a connection in its place): what
    /// was watched on it stays watched, as Linux's open file stays.
    pub fn rebind(&mut self, fd: i32, from: usize, to: usize) {
        if let Some(i) = self.interests.get_mut(&fd).filter(|i| i.file == from) {
            i.file = to;
            i.reported = None;
        }
    }

    /// The descriptors it watches.
    pub fn fds(&self) -> Vec<i32> {
        self.interests.keys().copied().collect()
    }

    /// Whether `collect` would report anything now (an epoll instance
    /// watched by another is readable then), changing nothing.
    pub fn any_ready(&self, state: impl Fn(i32) -> Option<FdState>) -> bool {
        self.interests.iter().any(|(&fd, i)| {
            state(fd).is_some_and(|s| {
                s.file == i.file
                    && s.ready & (i.events | EPOLLERR | EPOLLHUP) != 0
                    && !i.spent
                    && (i.events & EPOLLET == 0 || i.reported != Some(s.generation))
            })
        })
    }

    /// The events to report now, at most `max`, as (events, data); `state`
    /// says what each watched descriptor is (None: closed).
    pub fn collect(
        &mut self,
        max: usize,
        state: impl Fn(i32) -> Option<FdState>,
    ) -> Vec<(u32, u64)> {
        use core::ops::Bound::{Excluded, Unbounded};
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let order: Vec<i32> = match self.cursor {
            Some(c) => self
                .interests
                .range((Excluded(c), Unbounded))
                .chain(self.interests.range(..=c))
                .map(|(&fd, _)| fd)
                .collect(),
            None => self.interests.keys().copied().collect(),
        };
        let mut last = None;
        for fd in order {
            if out.len() == max {
                break;
            }
            let Some(i) = self.interests.get_mut(&fd) else {
                continue;
            };
            let Some(s) = state(fd).filter(|s| s.file == i.file) else {
                gone.push(fd);
                continue;
            };
            // Errors and hang-ups are reported whether asked for or not.
            let got = s.ready & (i.events | EPOLLERR | EPOLLHUP);
            if got == 0 || i.spent {
                continue;
            }
            if i.events & EPOLLET != 0 {
                if i.reported == Some(s.generation) {
                    continue;
                }
                i.reported = Some(s.generation);
            }
            if i.events & EPOLLONESHOT != 0 {
                i.spent = true;
            }
            out.push((got, i.data));
            last = Some(fd);
        }
        if out.len() == max && last.is_some() {
            self.cursor = last;
        }
        for fd in gone {
            self.interests.remove(&fd);
        }
        out
    }
}

/// The bytes of `struct epoll_event`s for `events`.
pub fn encode(events: &[(u32, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * EVENT_LEN);
    for (e, data) in events {
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&data.to_le_bytes());
    }
    out
}

/// An eventfd's counter.
#[derive(Clone, Debug)]
pub struct EventFd {
    count: u64,
    semaphore: bool,
    /// Changes with every read and write, for edge-triggered epoll.
    pub generation: u64,
}

impl EventFd {
    pub fn new(initial: u64, semaphore: bool) -> EventFd {
        EventFd {
            count: initial,
            semaphore,
            generation: 0,
        }
    }

    /// A read: the counter (or 1 for a semaphore), or EAGAIN while it is 0.
    pub fn read(&mut self) -> Result<u64, i64> {
        if self.count == 0 {
            return Err(EAGAIN);
        }
        let v = if self.semaphore { 1 } else { self.count };
        self.count -= v;
        self.generation += 1;
        Ok(v)
    }

    /// Expirations of the timer of a timerfd: counted, never refused (the
    /// count stops at the largest).
    pub fn add(&mut self, v: u64) {
        self.count = self.count.saturating_add(v).min(u64::MAX - 1);
        self.generation += 1;
    }

    /// timerfd_settime forgets the expirations not read.
    pub fn clear(&mut self) {
        self.count = 0;
        self.generation += 1;
    }

    /// A write of `v`: EAGAIN while it would pass the largest count
    /// (2^64 - 2); EINVAL for 2^64 - 1.
    pub fn write(&mut self, v: u64) -> Result<(), i64> {
        if v == u64::MAX {
            return Err(EINVAL);
        }
        if u64::MAX - 1 - self.count < v {
            return Err(EAGAIN);
        }
        self.count += v;
        self.generation += 1;
        Ok(())
    }

    pub fn readable(&self) -> bool {
        self.count > 0
    }

    pub fn writable(&self) -> bool {
        self.count < u64::MAX - 1
    }
}

/// A timerfd's timer: when it expires next (ns on the monotonic clock),
/// its period (0: once), and whether its clock is the wall clock (an
/// absolute time is then the wall clock's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerFd {
    pub next: Option<u64>,
    pub interval: u64,
    pub realtime: bool,
    /// Periods that passed before the monotonic clock's zero (an absolute
    /// wall-clock time further back than this processor's boot), counted
    /// with the first expiration.
    pub owed: u64,
}

/// An absolute wall-clock time `value` (ns) as an expiration on the
/// monotonic clock, which reads `now` while the wall clock reads `wall`;
/// and for a time before the monotonic clock's zero, the periods of
/// `interval` between the two, owed to the first expiration.
pub fn from_wall_clock(value: u64, wall: u64, now: u64, interval: u64) -> (u64, u64) {
    if value >= wall {
        return (now.saturating_add(value - wall), 0);
    }
    let back = wall - value;
    match back.checked_sub(now) {
        // Expirations fell at -before_zero + k * interval: those below 0
        // are owed, the next one is the first on the clock.
        Some(before_zero) if interval > 0 => {
            let owed = before_zero.div_ceil(interval);
            (owed.saturating_mul(interval) - before_zero, owed)
        }
        _ => (now.saturating_sub(back), 0),
    }
}

impl TimerFd {
    /// timerfd_settime: a `value` of 0 disarms; else it expires first at
    /// `first` (ns, monotonic) and then every `interval` ns.
    pub fn arm(&mut self, first: Option<u64>, interval: u64) {
        self.next = first;
        self.interval = if first.is_some() { interval } else { 0 };
        self.owed = 0;
    }

    /// The expirations up to `now` (0 if none is due), the timer moved to
    /// its next one. Missed periods all count, as in Linux.
    pub fn expire(&mut self, now: u64) -> u64 {
        let Some(at) = self.next.filter(|&at| at <= now) else {
            return 0;
        };
        if self.interval == 0 {
            self.next = None;
            return 1;
        }
        let n = (now - at) / self.interval + 1;
        self.next = Some(at.saturating_add(n.saturating_mul(self.interval)));
        n.saturating_add(core::mem::take(&mut self.owed))
    }

    /// timerfd_gettime: the time until the next expiration (0: disarmed)
    /// and the period, in ns.
    pub fn remaining(&self, now: u64) -> (u64, u64) {
        match self.next {
            // A due expiration not yet counted: about to happen.
            Some(at) => (at.saturating_sub(now).max(1), self.interval),
            None => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ready: u32, generation: u64) -> Option<FdState> {
        Some(FdState {
            file: 7,
            ready,
            generation,
        })
    }

    #[test]
    fn descriptors_kept_ready_take_turns() {
        let mut e = Epoll::new();
        for fd in 0..5 {
            e.ctl(EPOLL_CTL_ADD, fd, 7, EPOLLIN, fd as u64)
                .expect("add");
        }
        let mut seen = [0; 5];
        for _ in 0..5 {
            for (_, d) in e.collect(2, |_| st(EPOLLIN, 0)) {
                seen[d as usize] += 1;
            }
        }
        assert_eq!(seen, [2; 5]);
        // All ready fit: each once.
        assert_eq!(e.collect(8, |_| st(EPOLLIN, 0)).len(), 5);
    }

    #[test]
    fn ctl_follows_linux() {
        let mut e = Epoll::new();
        assert_eq!(e.ctl(EPOLL_CTL_MOD, 3, 7, EPOLLIN, 1), Err(ENOENT));
        assert_eq!(e.ctl(EPOLL_CTL_DEL, 3, 7, 0, 0), Err(ENOENT));
        assert_eq!(e.ctl(EPOLL_CTL_ADD, 3, 7, EPOLLIN, 1), Ok(()));
        assert_eq!(e.ctl(EPOLL_CTL_ADD, 3, 7, EPOLLIN, 1), Err(EEXIST));
        assert_eq!(e.ctl(EPOLL_CTL_MOD, 3, 7, EPOLLOUT, 2), Ok(()));
        assert_eq!(e.ctl(9, 3, 7, 0, 0), Err(EINVAL));
        assert_eq!(
            e.ctl(EPOLL_CTL_MOD, 3, 7, EPOLLIN | EPOLLEXCLUSIVE, 0),
            Err(EINVAL)
        );
        assert_eq!(e.fds(), [3]);
        assert_eq!(e.ctl(EPOLL_CTL_DEL, 3, 7, 0, 0), Ok(()));
        // EPOLLEXCLUSIVE: only with EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP,
        // EPOLLWAKEUP and EPOLLET; and never modified after.
        for bad in [EPOLLONESHOT, EPOLLRDHUP, EPOLLPRI] {
            assert_eq!(
                e.ctl(EPOLL_CTL_ADD, 4, 8, EPOLLIN | EPOLLEXCLUSIVE | bad, 0),
                Err(EINVAL)
            );
        }
        let ok = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET;
        assert_eq!(e.ctl(EPOLL_CTL_ADD, 4, 8, ok | EPOLLEXCLUSIVE, 0), Ok(()));
        assert_eq!(e.ctl(EPOLL_CTL_MOD, 4, 8, EPOLLIN, 0), Err(EINVAL));
        assert_eq!(e.ctl(EPOLL_CTL_DEL, 4, 8, 0, 0), Ok(()));
        assert!(e.fds().is_empty());
    }

    #[test]
    fn a_watch_follows_a_socket_that_became_a_connection() {
        let mut e = Epoll::new();
        e.ctl(EPOLL_CTL_ADD, 4, 5, EPOLLOUT, 1).unwrap();
        e.ctl(EPOLL_CTL_ADD, 3, 5, EPOLLOUT, 2).unwrap();
        // File 5 at descriptor 4 became file 7 (`st`'s); only that watch
        // moves, and a rebind from another file moves nothing.
        e.rebind(4, 6, 8);
        e.rebind(4, 5, 7);
        assert_eq!(e.collect(8, |_| st(EPOLLOUT, 1)), vec![(EPOLLOUT, 1)]);
        assert_eq!(e.fds(), [4], "3 still led to file 5: dropped");
        assert_eq!(e.ctl(EPOLL_CTL_DEL, 4, 7, 0, 0), Ok(()));
    }

    #[test]
    fn level_edge_and_oneshot() {
        let mut e = Epoll::new();
        e.ctl(EPOLL_CTL_ADD, 1, 7, EPOLLIN, 10).unwrap();
        e.ctl(EPOLL_CTL_ADD, 2, 7, EPOLLIN | EPOLLET, 20).unwrap();
        e.ctl(EPOLL_CTL_ADD, 3, 7, EPOLLIN | EPOLLONESHOT, 30)
            .unwrap();
        let all = |_| st(EPOLLIN | EPOLLOUT, 5);
        // Only what was asked for (EPOLLOUT was not).
        assert_eq!(
            e.collect(16, all),
            [(EPOLLIN, 10), (EPOLLIN, 20), (EPOLLIN, 30)]
        );
        // Level: again; edge: not until the state changes; oneshot: spent.
        assert_eq!(e.collect(16, all), [(EPOLLIN, 10)]);
        assert_eq!(
            e.collect(16, |_| st(EPOLLIN, 6)),
            [(EPOLLIN, 10), (EPOLLIN, 20)]
        );
        e.ctl(EPOLL_CTL_MOD, 3, 7, EPOLLIN | EPOLLONESHOT, 31)
            .unwrap();
        assert_eq!(
            e.collect(16, |_| st(EPOLLIN, 6)),
            [(EPOLLIN, 10), (EPOLLIN, 31)]
        );
        // Hang-ups are reported unasked; at most `max`.
        assert_eq!(e.collect(1, |_| st(EPOLLHUP, 7)), [(EPOLLHUP, 10)]);
    }

    #[test]
    fn a_closed_or_replaced_descriptor_is_dropped() {
        let mut e = Epoll::new();
        e.ctl(EPOLL_CTL_ADD, 1, 7, EPOLLIN, 10).unwrap();
        e.ctl(EPOLL_CTL_ADD, 2, 7, EPOLLIN, 20).unwrap();
        let out = e.collect(16, |fd| match fd {
            1 => None,
            _ => Some(FdState {
                file: 8,
                ready: EPOLLIN,
                generation: 0,
            }),
        });
        assert!(out.is_empty());
        assert!(e.fds().is_empty());
    }

    #[test]
    fn events_are_packed_twelve_bytes() {
        let b = encode(&[(EPOLLIN, 0x1122334455667788)]);
        assert_eq!(b.len(), EVENT_LEN);
        assert_eq!(&b[..4], &1u32.to_le_bytes());
        assert_eq!(&b[4..], &0x1122334455667788u64.to_le_bytes());
    }

    #[test]
    fn eventfd_counts_and_blocks_as_linux() {
        let mut c = EventFd::new(0, false);
        assert_eq!(c.read(), Err(EAGAIN));
        c.write(3).unwrap();
        c.write(4).unwrap();
        assert_eq!(c.read(), Ok(7));
        assert!(!c.readable());
        assert_eq!(c.write(u64::MAX), Err(EINVAL));
        c.write(u64::MAX - 1).unwrap();
        assert!(!c.writable());
        assert_eq!(c.write(1), Err(EAGAIN));
        let mut s = EventFd::new(2, true);
        assert_eq!(s.read(), Ok(1));
        assert_eq!(s.read(), Ok(1));
        assert_eq!(s.read(), Err(EAGAIN));
        assert_eq!(s.generation, 2);
    }

    #[test]
    fn a_timerfd_counts_every_expiration_once() {
        let mut t = TimerFd::default();
        assert_eq!(t.expire(100), 0, "disarmed");
        t.arm(Some(1_000), 0);
        assert_eq!(t.expire(999), 0);
        assert_eq!(t.remaining(400), (600, 0));
        assert_eq!(t.expire(1_000), 1);
        assert_eq!(t.expire(5_000), 0, "once only");
        assert_eq!(t.remaining(5_000), (0, 0));
        // Periodic: the missed periods count, and it goes on from where
        // it should have been, not from now.
        t.arm(Some(1_000), 300);
        assert_eq!(t.expire(1_650), 3);
        assert_eq!(t.next, Some(1_900));
        assert_eq!(t.remaining(1_650), (250, 300));
        assert_eq!(t.expire(1_899), 0);
        assert_eq!(t.expire(1_900), 1);
        t.arm(None, 300);
        assert_eq!(t.expire(u64::MAX), 0);
        assert_eq!(t.remaining(0), (0, 0));
    }

    #[test]
    fn a_wall_clock_time_long_past_counts_its_periods_from_then() {
        // Wall clock 10_000 while the monotonic clock reads 500.
        assert_eq!(from_wall_clock(12_000, 10_000, 500, 7), (2_500, 0));
        assert_eq!(from_wall_clock(9_800, 10_000, 500, 7), (300, 0));
        // 3_000 back: 2_500 of it before the monotonic clock's zero.
        let (at, owed) = from_wall_clock(7_000, 10_000, 500, 100);
        assert_eq!((at, owed), (0, 25));
        let mut t = TimerFd::default();
        t.arm(Some(at), 100);
        t.owed = owed;
        assert_eq!(
            t.expire(500),
            25 + 6,
            "3_000 ns of periods of 100, and the one due"
        );
        assert_eq!(t.expire(600), 1, "owed once only");
        // Once only: nothing owed, it is due at once.
        assert_eq!(from_wall_clock(7_000, 10_000, 500, 0), (0, 0));
        // 2_550 before zero, every 100: 26 owed (at -2_550 .. -50), the
        // next at 50; by 500, 31 in all, as floor(3_050 / 100) + 1.
        let (at, owed) = from_wall_clock(6_950, 10_000, 500, 100);
        assert_eq!((at, owed), (50, 26));
        let mut t = TimerFd::default();
        t.arm(Some(at), 100);
        t.owed = owed;
        assert_eq!(t.expire(500), 31);
    }
}
