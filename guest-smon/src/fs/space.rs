//! Free data blocks: a bitmap kept only in memory and rebuilt at mount from
//! the block maps, so it can never disagree with the metadata on disk.

use alloc::vec;
use alloc::vec::Vec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    words: Vec<u64>,
    total: u64,
    free: u64,
    /// Where the last allocation ended: the next one starts there, so that
    /// consecutive writes get consecutive blocks (one device write each).
    hint: u64,
}

impl Space {
    pub fn new(total: u64) -> Self {
        Space {
            words: vec![0; total.div_ceil(64) as usize],
            total,
            free: total,
            hint: 0,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn free(&self) -> u64 {
        self.free
    }

    pub fn is_used(&self, b: u64) -> bool {
        b < self.total && self.words[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    /// Marks `b` used; false if it is out of range or already used.
    pub fn mark(&mut self, b: u64) -> bool {
        if b >= self.total || self.is_used(b) {
            return false;
        }
        self.words[(b / 64) as usize] |= 1 << (b % 64);
        self.free -= 1;
        true
    }

    pub fn release(&mut self, b: u64) {
        if self.is_used(b) {
            self.words[(b / 64) as usize] &= !(1 << (b % 64));
            self.free += 1;
        }
    }

    /// The start of a run of `n` free blocks, searching from the hint.
    fn find_run(&self, n: u64) -> Option<u64> {
        for (lo, hi) in [(self.hint, self.total), (0, self.hint.min(self.total))] {
            let (mut start, mut b) = (lo, lo);
            while b < hi {
                let w = self.words[(b / 64) as usize];
                if b % 64 == 0 && w == u64::MAX {
                    b += 64;
                    start = b;
                    continue;
                }
                if b % 64 == 0 && w == 0 && b + 64 <= hi {
                    b += 64;
                } else if self.is_used(b) {
                    b += 1;
                    start = b;
                    continue;
                } else {
                    b += 1;
                }
                if b - start >= n {
                    return Some(start);
                }
            }
        }
        None
    }

    /// `n` free blocks, marked used, or None (and nothing marked) if fewer
    /// than `n` are free. Contiguous when a run is free anywhere, because a
    /// run is one device write and one read later.
    pub fn alloc(&mut self, n: u64) -> Option<Vec<u64>> {
        if n > self.free || self.total == 0 {
            return None;
        }
        if let Some(start) = self.find_run(n) {
            for b in start..start + n {
                self.mark(b);
            }
            self.hint = (start + n) % self.total;
            return Some((start..start + n).collect());
        }
        let mut out = Vec::with_capacity(n as usize);
        let mut b = self.hint % self.total;
        while (out.len() as u64) < n {
            if b % 64 == 0 && self.words[(b / 64) as usize] == u64::MAX {
                b = (b + 64) % self.total;
                continue;
            }
            if self.mark(b) {
                out.push(b);
            }
            b = (b + 1) % self.total;
        }
        self.hint = b;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_contiguously_and_wraps() {
        let mut s = Space::new(130);
        assert_eq!(s.alloc(3), Some(vec![0, 1, 2]));
        assert!(s.mark(64));
        assert!(!s.mark(64));
        assert!(!s.mark(130));
        // No run of 70 is free: scattered around the used block.
        assert!(s.find_run(70).is_none());
        assert_eq!(s.alloc(3), Some(vec![3, 4, 5]));
        assert_eq!(s.alloc(60), Some((65..125).collect()));
        assert_eq!(s.alloc(64), None);
        let got = s.alloc(63).unwrap();
        assert_eq!(got.len(), 63);
        assert!(!got.contains(&64));
        assert_eq!(s.free(), 0);
        assert_eq!(s.alloc(1), None);
        s.release(1);
        assert_eq!(s.alloc(1), Some(vec![1]));
    }
}
