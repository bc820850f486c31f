//! Late or gone: whether a component that has not answered a call within
//! the fabric timeout is still at work.
//!
//! A storage component flushing to a slow host disk leaves every request
//! queued behind the flush unanswered for seconds (an fsync of 48 MiB on a
//! disk held to 4 MB/s took 11.8 s here), while a stopped or wedged one
//! never answers. Failing both alike turned a program's fsync into EIO
//! after one timeout on a disk that was only slow, though the write then
//! landed. So a caller that may wait (a file call: Linux's own fsync
//! waits for the disk) asks the late component's VMM, which answers on its
//! fabric thread whatever its guest is doing
//! ([`lego_proto::fabric::BUSY_REQUEST`]), and waits on while the guest is
//! at work: a disk request in flight, or a frame sent or a disk request
//! finished within the last timeout. A VMM that does not answer the
//! question (stopped, cut off), or a guest that has done nothing for a
//! timeout (wedged), is gone as before; and no call waits longer than
//! [`most_patience`], however busy the component looks.
//!
//! The same holds at the late component's own end: its guest takes nothing
//! from its receive ring while it waits for the disk, so frames that come
//! meanwhile wait in its VMM while [`at_work`] holds, instead of being
//! refused after one timeout as a wedged guest's are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lego_proto::fabric::Busy;

/// A disk request in flight longer than this is a stuck disk, not a slow
/// one (Linux reports a task blocked on one after 120 s).
pub const DISK_STUCK: Duration = Duration::from_secs(60);

/// How long a late call waits in all, at most: the longer of this and two
/// fabric timeouts.
const MOST_PATIENCE: Duration = Duration::from_secs(120);

/// How long the question waits for its answer: a VMM's fabric thread
/// answers within a round trip, so silence for this long means it is
/// stopped or cut off. Short, because the call has waited a timeout
/// already.
pub fn question_wait(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(250))
}

/// The longest a late call waits in all.
pub fn most_patience(timeout: Duration) -> Duration {
    MOST_PATIENCE.max(timeout.saturating_mul(2))
}

/// Whether a component whose VMM answered `busy` is at work, for a caller
/// whose fabric timeout is `timeout`.
pub fn at_work(busy: &Busy, timeout: Duration) -> bool {
    let disk = busy.disk_ms > 0 && busy.disk_ms < DISK_STUCK.as_millis() as u64;
    disk || busy.idle_ms < timeout.as_millis() as u64
}

/// When this VMM's guest last did something another component waits for,
/// kept by the fabric thread (frames the guest sent) and the disk (its
/// requests), read by the fabric thread when asked.
pub struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last work, plus one (0: never).
    last: AtomicU64,
    /// Milliseconds from `start` to the disk request in flight, plus one
    /// (0: none).
    disk_since: AtomicU64,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            disk_since: AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// The guest sent a frame.
    pub fn worked(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// The disk started serving the guest's requests.
    pub fn disk_started(&self) {
        self.disk_since.store(self.now(), Ordering::Release);
    }

    /// The disk served them.
    pub fn disk_done(&self) {
        // Work noted before the disk is idle, and read in the other order
        // (`report`): a report between the two stores still sees one.
        self.worked();
        self.disk_since.store(0, Ordering::Release);
    }

    /// What the VMM answers to [`lego_proto::fabric::BUSY_REQUEST`].
    pub fn report(&self) -> Busy {
        let disk = self.disk_since.load(Ordering::Acquire);
        let last = self.last.load(Ordering::Relaxed);
        let now = self.now();
        let since = |t: u64| now.saturating_sub(t);
        Busy {
            idle_ms: if last == 0 { u64::MAX } else { since(last) },
            disk_ms: if disk == 0 { 0 } else { since(disk).max(1) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_disk_at_work_or_a_guest_that_just_worked_is_waited_for() {
        let busy = |idle_ms, disk_ms| Busy { idle_ms, disk_ms };
        // A flush in flight for 5 s, with nothing sent meanwhile.
        assert!(at_work(&busy(5_000, 5_000), SECOND));
        // Frames sent lately (requests of others served).
        assert!(at_work(&busy(300, 0), SECOND));
        // Idle for the timeout, no disk request: wedged.
        assert!(!at_work(&busy(1_000, 0), SECOND));
        assert!(!at_work(&busy(u64::MAX, 0), SECOND));
        // A disk request in flight past DISK_STUCK: stuck.
        let stuck = DISK_STUCK.as_millis() as u64;
        assert!(!at_work(&busy(stuck, stuck), SECOND));
    }

    #[test]
    fn the_report_says_what_was_done_and_when() {
        let a = Activity::default();
        assert_eq!(
            a.report(),
            Busy {
                idle_ms: u64::MAX,
                disk_ms: 0
            }
        );
        a.disk_started();
        std::thread::sleep(Duration::from_millis(30));
        let r = a.report();
        assert!(r.disk_ms >= 30 && r.idle_ms == u64::MAX, "{r:?}");
        a.disk_done();
        let r = a.report();
        assert!(r.disk_ms == 0 && r.idle_ms < 30, "{r:?}");
        assert!(at_work(&r, SECOND));
    }

    #[test]
    fn the_question_is_short_and_patience_has_an_end() {
        assert_eq!(question_wait(SECOND), Duration::from_millis(250));
        assert_eq!(
            question_wait(Duration::from_millis(200)),
            Duration::from_millis(50)
        );
        assert_eq!(most_patience(SECOND), MOST_PATIENCE);
        assert_eq!(most_patience(SECOND * 100), SECOND * 200);
    }
}
