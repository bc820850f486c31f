//! Names storage said it lacks, kept for a short while: every look at a
//! name of the host's installation (`/usr/lib/python3.11/os.py`, `/etc/
//! hosts`) asks storage first, since storage's copy hides the host's, and
//! storage's answer is almost always that it has none. A python3 start
//! looks at hundreds of such names, each a round trip of about 200 us
//! here, where the host's own stat costs about 50 us.
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

/// The most absences kept; past it the expired ones go, and if none had
/// expired, all (the next looks ask storage again).
pub const MOST: usize = 4096;

/// Absences by (path, vNode): each vNode has its own files.
#[derive(Debug, Default)]
pub struct Absent {
    until: BTreeMap<(Vec<u8>, u32), u64>,
}

impl Absent {
    pub const fn new() -> Absent {
        Absent {
            until: BTreeMap::new(),
        }
    }

    /// Whether storage said lately (before `now` passed its keep) that
    /// vNode `vnode` has no `path`.
    pub fn lacks(&self, path: &[u8], vnode: u32, now: u64) -> bool {
        self.until
            .get(&(path.to_vec(), vnode))
            .is_some_and(|&until| now < until)
    }

    /// Storage said at `now` that `vnode` has no `path`.
    pub fn note(&mut self, path: &[u8], vnode: u32, now: u64) {
        if self.until.len() >= MOST {
            self.until.retain(|_, until| now < *until);
            if self.until.len() >= MOST {
                self.until.clear();
            }
        }
        self.until
            .insert((path.to_vec(), vnode), now.saturating_add(KEEP_NS));
    }

    /// A call that may make a name went to storage: nothing is believed
    /// absent any more.
    pub fn clear(&mut self) {
        self.until.clear();
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
        assert!(a.until.len() == 1);
        // Expired ones go first.
        a.note(b"/etc/new", 0, KEEP_NS);
        for i in 0..MOST - 1 {
            a.note(alloc::format!("/etc/{i}").as_bytes(), 0, 0);
        }
        a.note(b"/etc/late", 0, KEEP_NS + 5);
        assert!(a.lacks(b"/etc/new", 0, KEEP_NS + 5));
        assert!(a.lacks(b"/etc/late", 0, KEEP_NS + 5));
        assert_eq!(a.until.len(), 2);
    }
}
