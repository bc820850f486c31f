//! Advisory file locks, with Linux's rules: POSIX record locks (fcntl
//! F_SETLK, F_SETLKW, F_GETLK) belong to a process and cover byte ranges,
//! which a new lock of the same owner merges with, splits or replaces;
//! open-file-description locks (F_OFD_*) have the same ranges but belong
//! to the open file; flock locks belong to the open file too, cover the
//! whole file, and live apart from record locks (they never conflict with
//! them). Two locks conflict when their owners differ, their ranges
//! overlap and one of them is a write lock.
//!
//! The locks of a processor's processes are kept by its monitor: the
//! storage component stays stateless, so a lock is held for the
//! processes of one processor (where every process of a program runs).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A process's POSIX record lock.
    Process(u32),
    /// An open file description's lock (F_OFD_* and flock): its id.
    File(usize),
}

/// Record locks and flock locks are separate spaces on the same file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Space {
    Record,
    Flock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    pub owner: Owner,
    pub start: u64,
    /// One past the last byte; u64::MAX: to the end of the file, however
    /// far it grows.
    pub end: u64,
    pub write: bool,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

/// Every lock held on every file, by a key naming the file.
#[derive(Default)]
pub struct Locks {
    held: BTreeMap<(u64, Space), Vec<Lock>>,
}

impl Locks {
    pub fn new() -> Locks {
        Locks::default()
    }

    /// The first lock that keeps `owner` from taking [start, end) (for
    /// writing when `write`), as F_GETLK reports it: Linux's list order,
    /// owners by their first lock, each owner's ranges by start.
    pub fn conflict(
        &self,
        file: u64,
        space: Space,
        owner: Owner,
        start: u64,
        end: u64,
        write: bool,
    ) -> Option<Lock> {
        self.held
            .get(&(file, space))?
            .iter()
            .copied()
            .find(|l| l.owner != owner && l.overlaps(start, end) && (write || l.write))
    }

    /// Takes [start, end) for `owner`, or Err(the conflicting lock). What
    /// `owner` held there before is replaced (a read lock becomes a write
    /// lock and back); touching ranges of the same kind merge.
    pub fn lock(
        &mut self,
        file: u64,
        space: Space,
        owner: Owner,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Lock> {
        if let Some(c) = self.conflict(file, space, owner, start, end, write) {
            return Err(c);
        }
        self.unlock(file, space, owner, start, end);
        let list = self.held.entry((file, space)).or_default();
        let mut new = Lock {
            owner,
            start,
            end,
            write,
        };
        // Merge with this owner's locks of the same kind that touch it.
        list.retain(|l| {
            let touches =
                l.owner == owner && l.write == write && l.start <= new.end && new.start <= l.end;
            if touches {
                new.start = new.start.min(l.start);
                new.end = new.end.max(l.end);
            }
            !touches
        });
        // Among the owner's own, by start; a new owner's go last. (Its
        // ranges stay together: each is inserted next to the others.)
        let at = match list.iter().rposition(|l| l.owner == owner) {
            None => list.len(),
            Some(last) => list[..=last]
                .iter()
                .position(|l| l.owner == owner && l.start > new.start)
                .unwrap_or(last + 1),
        };
        list.insert(at, new);
        Ok(())
    }

    /// Gives up [start, end) of what `owner` holds (F_UNLCK): locks
    /// covering part of it shrink or split. Whether anything was held.
    pub fn unlock(&mut self, file: u64, space: Space, owner: Owner, start: u64, end: u64) -> bool {
        let Some(list) = self.held.get_mut(&(file, space)) else {
            return false;
        };
        let mut changed = false;
        let mut kept = Vec::with_capacity(list.len() + 1);
        for l in list.drain(..) {
            if l.owner != owner || !l.overlaps(start, end) {
                kept.push(l);
                continue;
            }
            changed = true;
            if l.start < start {
                kept.push(Lock { end: start, ..l });
            }
            if end < l.end {
                kept.push(Lock { start: end, ..l });
            }
        }
        *list = kept;
        if list.is_empty() {
            self.held.remove(&(file, space));
        }
        changed
    }

    /// Drops every lock of `owner` on `file` (a process closing any
    /// descriptor of the file, as POSIX has it), or on every file when
    /// `file` is None (the process exits, the open file is closed).
    /// Whether anything was held.
    pub fn release(&mut self, file: Option<u64>, owner: Owner) -> bool {
        let mut changed = false;
        self.held.retain(|&(f, _), list| {
            if file.is_none_or(|want| want == f) {
                let before = list.len();
                list.retain(|l| l.owner != owner);
                changed |= list.len() != before;
            }
            !list.is_empty()
        });
        changed
    }

    /// Locks held in all (for tests and counters).
    pub fn count(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

/// Whether `waiter` waiting for a lock of `holder` would close a cycle of
/// processes each waiting for the next (F_SETLKW's EDEADLK), following
/// `waits_for` (whose lock a process waits for) as Linux's
/// posix_locks_deadlock does, and as it, at most 10 steps.
pub fn deadlock(waiter: u32, holder: u32, waits_for: impl Fn(u32) -> Option<u32>) -> bool {
    const MAX_STEPS: usize = 10;
    let mut at = holder;
    for _ in 0..=MAX_STEPS {
        if at == waiter {
            return true;
        }
        match waits_for(at) {
            Some(next) => at = next,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner = Owner::Process(1);
    const B: Owner = Owner::Process(2);
    const END: u64 = u64::MAX;

    #[test]
    fn readers_share_and_a_writer_excludes() {
        let mut l = Locks::new();
        assert!(l.lock(7, Space::Record, A, 0, 100, false).is_ok());
        assert!(l.lock(7, Space::Record, B, 50, 150, false).is_ok());
        let c = l
            .lock(7, Space::Record, B, 0, 10, true)
            .expect_err("A reads there");
        assert_eq!(c.owner, A);
        // Another file, or the flock space of the same file: no conflict.
        assert!(l.lock(8, Space::Record, B, 0, END, true).is_ok());
        assert!(l
            .lock(7, Space::Flock, Owner::File(9), 0, END, true)
            .is_ok());
        // Past A's range, B may write.
        assert!(l.lock(7, Space::Record, B, 100, 200, true).is_ok());
    }

    #[test]
    fn an_owner_replaces_splits_and_merges_its_own_ranges() {
        let mut l = Locks::new();
        l.lock(1, Space::Record, A, 0, 100, true).expect("free");
        // Its own write lock turned into a read lock in the middle.
        l.lock(1, Space::Record, A, 40, 60, false).expect("own");
        assert_eq!(l.count(), 3);
        assert!(l.conflict(1, Space::Record, B, 45, 46, false).is_none());
        assert!(l.conflict(1, Space::Record, B, 10, 11, false).is_some());
        // Unlock the middle of the first part: a split.
        assert!(l.unlock(1, Space::Record, A, 10, 20));
        assert!(l.conflict(1, Space::Record, B, 10, 20, true).is_none());
        assert!(l.conflict(1, Space::Record, B, 5, 6, true).is_some());
        // Adjacent ranges of one kind merge.
        let mut m = Locks::new();
        m.lock(1, Space::Record, A, 0, 10, true).expect("free");
        m.lock(1, Space::Record, A, 10, 20, true).expect("free");
        assert_eq!(m.count(), 1);
    }

    #[test]
    fn getlk_reports_an_owners_lowest_range_first() {
        let mut l = Locks::new();
        l.lock(1, Space::Record, A, 10, 15, true).expect("free");
        l.lock(1, Space::Record, A, 1, 6, false).expect("free");
        l.lock(1, Space::Record, B, 0, 1, false).expect("free");
        let c = l.conflict(1, Space::Record, Owner::Process(3), 0, END, true);
        assert_eq!(c.map(|c| (c.owner, c.start)), Some((A, 1)));
        let c = l.conflict(1, Space::Record, Owner::Process(3), 6, END, true);
        assert_eq!(c.map(|c| (c.start, c.write)), Some((10, true)));
        // A split keeps the order.
        l.unlock(1, Space::Record, A, 2, 3);
        let starts: Vec<u64> = l.held[&(1, Space::Record)]
            .iter()
            .map(|l| l.start)
            .collect();
        assert_eq!(starts, [1, 3, 10, 0]);
    }

    #[test]
    fn a_cycle_of_waiters_is_a_deadlock() {
        // 2 waits for 3, 3 for 4: 4 waiting for 2 closes the cycle.
        let waits = |p: u32| match p {
            2 => Some(3),
            3 => Some(4),
            _ => None,
        };
        assert!(deadlock(4, 2, waits));
        assert!(!deadlock(5, 2, waits));
        // A chain longer than Linux follows is not looked at to its end.
        assert!(!deadlock(0, 1, |p| (p < 30).then_some(p + 1)));
        assert!(deadlock(7, 1, |p| (p < 30).then_some(p + 1)));
    }

    #[test]
    fn release_drops_an_owners_locks() {
        let mut l = Locks::new();
        l.lock(1, Space::Record, A, 0, END, true).expect("free");
        l.lock(2, Space::Record, A, 0, END, true).expect("free");
        l.lock(1, Space::Flock, Owner::File(3), 0, END, false)
            .expect("free");
        assert!(l.release(Some(1), A));
        assert!(l.conflict(1, Space::Record, B, 0, END, true).is_none());
        assert!(l.conflict(2, Space::Record, B, 0, END, true).is_some());
        assert!(l.release(None, A));
        assert!(!l.release(None, A));
        assert_eq!(l.count(), 1);
    }
}
