//! Which address ranges map which file privately (MAP_PRIVATE of a tmpfs
//! or storage file), so that a truncation can drop their pages past the
//! file's new end as Linux does.
//!
//! Such a mapping is a copy here: the file's bytes are written into the
//! process's own pages at mmap. Linux keeps a private mapping tied to its
//! file until a page is written, and when the file shrinks it drops every
//! page of the mapping past the new end, the process's own copies too
//! (`truncate_pagecache` unmaps "even COWs"): a later access there faults,
//! and once the file has grown again reads its zeros (stress-ng's memfd
//! stressor checks this, after Linux commit 5abfd71d936a). Whole pages
//! only: the page holding the new end keeps its bytes.

use alloc::vec::Vec;

/// `[start, end)` of address space `space` maps `file` privately, `start`
/// showing file offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateMap<F> {
    pub space: u32,
    pub start: u64,
    pub end: u64,
    pub file: F,
    pub offset: u64,
}

impl<F: Copy> PrivateMap<F> {
    /// The part of the mapping in `[lo, hi)`, its offset moved with it.
    fn clip(&self, lo: u64, hi: u64) -> Option<PrivateMap<F>> {
        let start = self.start.max(lo);
        let end = self.end.min(hi);
        (start < end).then_some(PrivateMap {
            start,
            end,
            offset: self.offset + (start - self.start),
            ..*self
        })
    }

    /// The addresses that show file offsets at or past `cut`.
    fn past(&self, cut: u64) -> Option<(u64, u64)> {
        let lo = self.start.saturating_add(cut.saturating_sub(self.offset));
        (lo < self.end).then_some((lo, self.end))
    }
}

/// Page-aligned `addr + len`, saturating.
fn page_end(addr: u64, len: u64) -> u64 {
    len.checked_next_multiple_of(4096)
        .map_or(u64::MAX, |l| addr.saturating_add(l))
}

/// Every private file mapping of every address space.
#[derive(Debug)]
pub struct PrivateMaps<F> {
    maps: Vec<PrivateMap<F>>,
}

impl<F> Default for PrivateMaps<F> {
    fn default() -> Self {
        PrivateMaps { maps: Vec::new() }
    }
}

impl<F: Copy + PartialEq> PrivateMaps<F> {
    pub fn add(&mut self, map: PrivateMap<F>) {
        if map.start < map.end {
            self.maps.push(map);
        }
    }

    /// `[lo, hi)` of `space` maps no file privately any more (munmap, a
    /// mapping put over it, the space gone).
    pub fn forget(&mut self, space: u32, lo: u64, hi: u64) {
        if self.maps.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(self.maps.len() + 1);
        for m in self.maps.drain(..) {
            if m.space != space || m.end <= lo || hi <= m.start {
                kept.push(m);
                continue;
            }
            kept.extend(m.clip(0, lo));
            kept.extend(m.clip(hi, u64::MAX));
        }
        self.maps = kept;
    }

    /// A forked child `to` maps what its parent `from` maps.
    pub fn fork(&mut self, from: u32, to: u32) {
        let copies: Vec<PrivateMap<F>> = self
            .maps
            .iter()
            .filter(|m| m.space == from)
            .map(|m| PrivateMap { space: to, ..*m })
            .collect();
        self.maps.extend(copies);
    }

    /// mremap moved (or resized) `old_len` bytes at `old` of `space` to
    /// `new_len` at `new`: what they mapped goes with them, and a mapping
    /// that reached the old end reaches the new one (grown, it goes on in
    /// its file, as on Linux).
    pub fn remapped(&mut self, space: u32, old: u64, old_len: u64, new: u64, new_len: u64) {
        if self.maps.is_empty() {
            return;
        }
        let old_end = page_end(old, old_len);
        let new_end = page_end(new, new_len);
        let moved: Vec<PrivateMap<F>> = self
            .maps
            .iter()
            .filter(|m| m.space == space)
            .filter_map(|m| m.clip(old, old_end))
            .filter_map(|m| {
                let start = new + (m.start - old);
                let end = if m.end == old_end {
                    new_end
                } else {
                    new + (m.end - old)
                };
                PrivateMap { start, end, ..m }.clip(new, new_end)
            })
            .collect();
        self.forget(space, old, old_end);
        self.forget(space, new, new_end);
        self.maps.extend(moved);
    }

    /// `file` was cut to `size` bytes: the (space, start, end) ranges whose
    /// pages go, every page past the one holding the new end.
    pub fn truncated(&self, file: F, size: u64) -> Vec<(u32, u64, u64)> {
        let cut = page_end(0, size);
        self.maps
            .iter()
            .filter(|m| m.file == file)
            .filter_map(|m| m.past(cut).map(|(lo, hi)| (m.space, lo, hi)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(space: u32, start: u64, end: u64, offset: u64) -> PrivateMap<u8> {
        PrivateMap {
            space,
            start,
            end,
            file: 7,
            offset,
        }
    }

    #[test]
    fn a_cut_drops_whole_pages_past_the_end_in_every_space() {
        let mut maps = PrivateMaps::default();
        maps.add(map(1, 0x10000, 0x14000, 0));
        maps.add(map(2, 0x20000, 0x24000, 0x2000));
        maps.add(PrivateMap {
            file: 8,
            ..map(1, 0x30000, 0x34000, 0)
        });
        // The page holding byte 4096 + 10 keeps its bytes; space 2 maps
        // from 8 KiB, all of it past.
        assert_eq!(
            maps.truncated(7, 4096 + 10),
            [(1, 0x12000, 0x14000), (2, 0x20000, 0x24000)]
        );
        assert_eq!(
            maps.truncated(7, 0x3000),
            [(1, 0x13000, 0x14000), (2, 0x21000, 0x24000)]
        );
        assert_eq!(maps.truncated(7, 0x6000), []);
        assert_eq!(maps.truncated(8, 0), [(1, 0x30000, 0x34000)]);
    }

    #[test]
    fn unmapping_splits_and_fork_copies() {
        let mut maps = PrivateMaps::default();
        maps.add(map(1, 0x10000, 0x14000, 0x1000));
        maps.forget(1, 0x11000, 0x12000);
        maps.fork(1, 3);
        assert_eq!(
            maps.truncated(7, 0),
            [
                (1, 0x10000, 0x11000),
                (1, 0x12000, 0x14000),
                (3, 0x10000, 0x11000),
                (3, 0x12000, 0x14000)
            ]
        );
        // The piece left at 0x12000 still shows offset 0x3000.
        assert_eq!(
            maps.truncated(7, 0x4000),
            [(1, 0x13000, 0x14000), (3, 0x13000, 0x14000)]
        );
        maps.forget(1, 0, u64::MAX);
        maps.forget(3, 0, u64::MAX);
        assert_eq!(maps.truncated(7, 0), []);
    }

    #[test]
    fn a_remapped_mapping_takes_its_offsets_along() {
        let mut maps = PrivateMaps::default();
        maps.add(map(1, 0x10000, 0x12000, 0));
        // Moved and grown: it goes on in its file.
        maps.remapped(1, 0x10000, 0x2000, 0x50000, 0x4000);
        assert_eq!(maps.truncated(7, 0x1000), [(1, 0x51000, 0x54000)]);
        // Shrunk in place.
        maps.remapped(1, 0x50000, 0x4000, 0x50000, 0x1000);
        assert_eq!(maps.truncated(7, 0), [(1, 0x50000, 0x51000)]);
        // Another space's mapping at the same addresses stays.
        maps.add(map(2, 0x50000, 0x51000, 0));
        maps.remapped(1, 0x50000, 0x1000, 0x90000, 0x1000);
        assert_eq!(
            maps.truncated(7, 0),
            [(2, 0x50000, 0x51000), (1, 0x90000, 0x91000)]
        );
    }
}
