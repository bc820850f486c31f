//! Ids handed out in turn, as Linux hands out pids: the one after the last,
//! wrapping at the limit, skipping those still in use. The monitor keeps
//! two such cycles: process and thread ids, and address-space ids, which
//! the memory components know as `pid_base | id`: handing out one still in
//! use made the home refuse the new space (EEXIST), so a shell's 1023rd
//! fork failed while the shell lived.

/// A cycle of ids in `first..limit`.
#[derive(Debug, Clone)]
pub struct Cycle {
    first: u32,
    limit: u32,
    next: u32,
}

impl Cycle {
    /// The ids `first..limit`, handed out from `first`.
    pub const fn new(first: u32, limit: u32) -> Cycle {
        Cycle {
            first,
            limit,
            next: first,
        }
    }

    /// The next id that is not `in_use`, or `None` when every one is.
    pub fn take(&mut self, in_use: impl Fn(u32) -> bool) -> Option<u32> {
        for _ in self.first..self.limit {
            let id = self.next;
            self.next = if id + 1 >= self.limit {
                self.first
            } else {
                id + 1
            };
            if !in_use(id) {
                return Some(id);
            }
        }
        None
    }

    /// The id handed out last: the one before the next to try (the range's
    /// last before any was).
    pub fn last(&self) -> u32 {
        match self.next {
            n if n > self.first => n - 1,
            _ if self.limit > self.first => self.limit - 1,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_go_in_turn_and_wrap() {
        let mut c = Cycle::new(2, 6);
        let got: Vec<u32> = (0..6).filter_map(|_| c.take(|_| false)).collect();
        assert_eq!(got, [2, 3, 4, 5, 2, 3]);
        assert_eq!(c.last(), 3);
        let mut w = Cycle::new(2, 6);
        let got: Vec<u32> = (0..4).filter_map(|_| w.take(|_| false)).collect();
        assert_eq!((got.last().copied(), w.last()), (Some(5), 5));
    }

    #[test]
    fn an_id_in_use_is_skipped_after_a_wrap() {
        // A long-lived holder of the first id, and many short-lived ones
        // after it: the wrap must not hand out the holder's id again.
        let mut c = Cycle::new(1, 1024);
        let mut live = BTreeSet::new();
        let holder = c.take(|id| live.contains(&id)).unwrap();
        live.insert(holder);
        for _ in 0..5000 {
            let id = c.take(|id| live.contains(&id)).unwrap();
            assert_ne!(id, holder);
        }
    }

    #[test]
    fn none_when_all_are_taken() {
        let mut c = Cycle::new(1, 4);
        assert_eq!(c.take(|id| id != 3), Some(3));
        assert_eq!(c.take(|_| true), None);
    }
}
