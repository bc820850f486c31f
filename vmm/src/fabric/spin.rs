//! Whether a thread about to sleep until something arrives (a call's
//! answer, the next userfaultfd fault) should poll for it a little first.
//!
//! An answer comes in on the connection's reader thread, which hands it to
//! the caller through a channel; a fault is read by an ExCache handler
//! thread from the userfaultfd. A thread asleep is woken across cores,
//! which under PVM costs about 25 us (measured: the random workload's miss
//! p50 was 54 or 80 us from run to run with callers sleeping at once, 55 us
//! every run with them polling first). Polling costs a core while it lasts,
//! and on a machine with few cores that core may be the one the awaited
//! thing needs (the memory component's threads, the reader): callers
//! polling 100 us at every wait took the pattern workload from 0.95x to
//! 1.29x Linux + zram. So a thread polls only while polling pays: each
//! poll that saw what it waited for raises its score, each that did not
//! lowers it by more, and a thread that stopped polling tries again now and
//! then, as adaptive mutexes spin only while spinning pays.

/// How long a wait for a call's answer polls before it sleeps, until the
/// thread has seen a few answers: longer than an answer from a memory
/// component's VMM takes (about 45 us on a quiet day here), shorter than
/// an answer that needs the memory component's guest.
pub const POLL_US: u64 = 60;
/// Once it has, it polls a quarter longer than the median of its last
/// [`RECENT`] answers took, within these bounds. These hosts drift: the
/// same answer took 45 us one day and 100 us another (an exit 27 us and
/// 55 us), and a fixed 60 us then let nearly every caller fall asleep
/// and be woken across cores. A median, not a mean, so the answers that
/// needed a guest (three times as long) do not stretch every poll.
const POLL_MIN_US: u64 = 30;
const POLL_MAX_US: u64 = 200;
const RECENT: usize = 16;

/// The most the score goes up to: a run of answers in time.
const HIGH: i32 = 8;
/// The least it goes down to.
const LOW: i32 = -8;
/// A thread that does not poll still tries once in this many waits, so it
/// finds out when answers come quickly again.
const PROBE_EVERY: u32 = 16;

/// One thread's record of whether its polls paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spin {
    score: i32,
    skipped: u32,
    /// How long recent answers took (us, saturated), oldest overwritten.
    recent: [u16; RECENT],
    /// Where the next goes, and how many there are (at most RECENT).
    next: u8,
    held: u8,
}

impl Spin {
    /// Whether the next wait should poll first.
    pub fn should_poll(&mut self) -> bool {
        if self.score >= 0 {
            return true;
        }
        self.skipped += 1;
        if self.skipped >= PROBE_EVERY {
            self.skipped = 0;
            return true;
        }
        false
    }

    /// How long the next poll may last.
    pub fn budget_us(&self) -> u64 {
        let n = usize::from(self.held);
        if n < RECENT / 4 {
            return POLL_US;
        }
        let mut r = self.recent;
        let r = &mut r[..n];
        r.sort_unstable();
        let median = u64::from(r[n / 2]);
        (median + median / 4).clamp(POLL_MIN_US, POLL_MAX_US)
    }

    /// An answer came `us` after the wait began (polled for or slept on).
    pub fn answered_after(&mut self, us: u64) {
        self.recent[usize::from(self.next)] = us.min(u64::from(u16::MAX)) as u16;
        self.next = (self.next + 1) % RECENT as u8;
        self.held = (self.held + 1).min(RECENT as u8);
    }

    /// A poll ended: its answer came while it polled (`in_time`), or not.
    pub fn polled(&mut self, in_time: bool) {
        self.score = if in_time {
            (self.score.max(-1) + 1).min(HIGH)
        } else {
            (self.score - 2).max(LOW)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_polls_while_answers_come_in_time() {
        let mut s = Spin::default();
        for _ in 0..100 {
            assert!(s.should_poll());
            s.polled(true);
        }
    }

    #[test]
    fn late_answers_stop_polling_but_for_a_probe_now_and_then() {
        let mut s = Spin::default();
        // A few late answers after a good run stop it.
        for _ in 0..20 {
            s.polled(true);
        }
        let mut polls = 0;
        for _ in 0..8 {
            if s.should_poll() {
                polls += 1;
                s.polled(false);
            }
        }
        assert!(polls <= 5, "{polls} polls");
        assert!(!s.should_poll());
        // From then on it polls once in PROBE_EVERY waits.
        let mut polls = 0;
        for _ in 0..(PROBE_EVERY * 10) {
            if s.should_poll() {
                polls += 1;
                s.polled(false);
            }
        }
        assert!((9..=11).contains(&polls), "{polls} polls in 160 waits");
    }

    #[test]
    fn a_probe_answered_in_time_starts_polling_again() {
        let mut s = Spin::default();
        for _ in 0..10 {
            s.polled(false);
        }
        while !s.should_poll() {}
        s.polled(true);
        assert!(s.should_poll(), "one answer in time is enough");
    }

    #[test]
    fn the_poll_lasts_a_quarter_longer_than_recent_answers_took() {
        let mut s = Spin::default();
        assert_eq!(s.budget_us(), POLL_US, "nothing seen yet");
        for _ in 0..RECENT {
            s.answered_after(100);
        }
        assert_eq!(s.budget_us(), 125);
        // A few slow answers (a guest woken) do not stretch it.
        for _ in 0..RECENT / 4 {
            s.answered_after(5000);
        }
        assert_eq!(s.budget_us(), 125);
        // Quick answers bring it down, to the floor at most.
        for _ in 0..RECENT {
            s.answered_after(4);
        }
        assert_eq!(s.budget_us(), POLL_MIN_US);
        for _ in 0..RECENT {
            s.answered_after(1_000_000);
        }
        assert_eq!(s.budget_us(), POLL_MAX_US);
    }
}
