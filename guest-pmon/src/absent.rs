//! Names storage said it lacks, kept for a short while: every look at a
//! name of the host's installation (`/usr/lib/python3.11/os.py`, `/etc/
//! hosts`) asks storage first, since storage's copy hides the host's, and
//! storage's answer is almost always that it has none. A python3 start
//! looks at hundreds of such names: a stat of one cost 270-375 us with
//! storage asked first, about 105 us without (the system call included,
//! under PVM).
//!
//! Every absence is forgotten when a call of this processor that may make
//! a name goes to storage (wherever: storage follows its own links, so a
//! name made at `/d/l/x` may be `/usr/local/bin/x`), and otherwise after
//! [`KEEP_NS`]: a name another processor (or `lego cp`) made in those
//! trees is seen here within that time, as an NFS client's cached lookups
//! may be stale for a few seconds.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// How long an absence is believed.
pub const KEEP_NS: u64 = 2_000_000_000;

/// The most absences kept, and the most bytes of their names; past
/// either the expired ones go, and if that is not enough, all (the next
/// looks ask storage again).
pub const MOST: usize = 4096;
pub const MOST_BYTES: usize = 256 * 1024;

/// Absences by vNode (each has its own files), then path.
#[derive(Debug, Default)]
pub struct Absent {
    until: BTreeMap<u32, BTreeMap<Vec<u8>, u64>>,
    count: usize,
    bytes: usize,
}

impl Absent {
    pub const fn new() -> Absent {
        Absent {
            until: BTreeMap::new(),
            count: 0,
            bytes: 0,
        }
    }

    /// Whether storage said lately (before `now` passed its keep) that
    /// vNode `vnode` has no `path`.
    pub fn lacks(&self, path: &[u8], vnode: u32, now: u64) -> bool {
        self.until
            .get(&vnode)
            .and_then(|names| names.get(path))
            .is_some_and(|&until| now < until)
    }

    /// Storage said at `now` that `vnode` has no `path`.
    pub fn note(&mut self, path: &[u8], vnode: u32, now: u64) {
        if self.count >= MOST || self.bytes + path.len() > MOST_BYTES {
            for names in self.until.values_mut() {
                names.retain(|_, until| now < *until);
            }
            self.recount();
            if self.count >= MOST || self.bytes + path.len() > MOST_BYTES {
                self.clear();
            }
        }
        let until = now.saturating_add(KEEP_NS);
        if self
            .until
            .entry(vnode)
            .or_default()
            .insert(path.to_vec(), until)
            .is_none()
        {
            self.count += 1;
            self.bytes += path.len();
        }
    }

    /// A call that may make a name went to storage: nothing is believed
    /// absent any more.
    pub fn clear(&mut self) {
        self.until.clear();
        self.count = 0;
        self.bytes = 0;
    }

    fn recount(&mut self) {
        self.until.retain(|_, names| !names.is_empty());
        let names = self.until.values().flat_map(|n| n.keys());
        (self.count, self.bytes) = names.fold((0, 0), |(c, b), p| (c + 1, b + p.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absence_is_kept_for_a_while_per_vnode() {
        let mut a = Absent::new();
        a.note(b"/usr/lib/x", 0, 100);
        assert!(a.lacks(b"/usr/lib/x", 0, 100));
        assert!(a.lacks(b"/usr/lib/x", 0, 100 + KEEP_NS - 1));
        assert!(!a.lacks(b"/usr/lib/x", 0, 100 + KEEP_NS));
        assert!(!a.lacks(b"/usr/lib/x", 7, 100));
        assert!(!a.lacks(b"/usr/lib/y", 0, 100));
    }

    #[test]
    fn a_name_made_forgets_all() {
        let mut a = Absent::new();
        a.note(b"/usr/lib/x", 0, 0);
        a.note(b"/etc/y", 3, 0);
        a.clear();
        assert!(!a.lacks(b"/usr/lib/x", 0, 1));
        assert!(!a.lacks(b"/etc/y", 3, 1));
    }

    #[test]
    fn it_stays_bounded() {
        let mut a = Absent::new();
        for i in 0..MOST {
            a.note(alloc::format!("/etc/{i}").as_bytes(), 0, 0);
        }
        // None expired: all go, and the new one stays.
        a.note(b"/etc/new", 0, 1);
        assert!(a.lacks(b"/etc/new", 0, 2));
        assert!(!a.lacks(b"/etc/0", 0, 2));
        assert_eq!((a.count, a.bytes), (1, 8));
        // Expired ones go first.
        a.note(b"/etc/new", 0, KEEP_NS);
        for i in 0..MOST - 1 {
            a.note(alloc::format!("/etc/{i}").as_bytes(), 0, 0);
        }
        a.note(b"/etc/late", 0, KEEP_NS + 5);
        assert!(a.lacks(b"/etc/new", 0, KEEP_NS + 5));
        assert!(a.lacks(b"/etc/late", 0, KEEP_NS + 5));
        assert_eq!((a.count, a.bytes), (2, 17));
    }

    #[test]
    fn long_names_are_bounded_by_bytes() {
        let mut a = Absent::new();
        let long = alloc::vec![b'a'; 4000];
        for i in 0..(MOST_BYTES / 4000) {
            let mut p = long.clone();
            p.extend_from_slice(alloc::format!("{i}").as_bytes());
            a.note(&p, 0, 0);
        }
        assert!(a.bytes <= MOST_BYTES);
        a.note(&long, 0, 1);
        assert!(a.bytes <= MOST_BYTES && a.lacks(&long, 0, 2));
    }
}
