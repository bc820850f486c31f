//! The scans one slot's demand misses follow, several at once.
//!
//! A program often walks more than one array in step: memcpy reads one
//! buffer and writes another, STREAM's triad reads two arrays and writes a
//! third, a merge reads its runs side by side. Their misses interleave,
//! so "the page after the previous miss" never holds and a single scan
//! detector reads nothing ahead: each page then costs a round trip. As
//! Linux keeps a readahead state per open file, each scan here keeps its
//! own last miss and window, in a small table per slot; a miss that
//! continues none of them starts a new one in place of the one missed
//! least recently. A scan may run down as well as up: glibc's memcpy
//! copies a large buffer from its end when source and destination sit at
//! the same offset in their pages (to avoid 4K aliasing), and loops run
//! backwards.

/// How many scans a slot follows at once. Eight covers a copy, STREAM's
/// three arrays and an eight-way merge; a random miss replaces one entry,
/// and matches one only if it lands just past one of the eight last.
pub const SCANS: usize = 8;

/// What to read ahead after a miss: `pages` past it (0: nothing), below
/// it when the scan runs down.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Ahead {
    pub pages: u64,
    pub down: bool,
}

#[derive(Clone, Copy, Default, Debug)]
struct Scan {
    /// The page of its last demand miss.
    last: u64,
    /// How many pages it reads ahead now (0: not a scan yet).
    window: u64,
    /// Where its next miss lands: the page past its read-ahead.
    end: u64,
    /// It runs down (known once it continued).
    down: bool,
    /// When it last missed, in misses of the slot (0: never).
    used: u64,
}

#[derive(Clone, Default, Debug)]
pub struct Scans {
    scans: [Scan; SCANS],
    clock: u64,
}

impl Scans {
    /// A demand miss on `vpage` (pages of `page` bytes): what to read
    /// ahead after it, nothing when it continues no scan. A scan's first
    /// continued miss reads `first` pages ahead; each further one doubles
    /// the window, up to `most` (0: prefetching is off), as Linux's
    /// readahead grows.
    pub fn on_miss(&mut self, vpage: u64, page: u64, first: u64, most: u64) -> Ahead {
        self.clock += 1;
        let clock = self.clock;
        // The last miss of a scan this miss continues, going up or down.
        let before_if_up = vpage.checked_sub(page);
        let before_if_down = vpage.checked_add(page);
        let continued = self.scans.iter_mut().find_map(|s| {
            if s.used == 0 {
                return None;
            }
            // A scan's direction is set by its first continued miss.
            let going_up = s.window == 0 || !s.down;
            let going_down = s.window == 0 || s.down;
            let past_window = s.end != 0 && vpage == s.end;
            if going_up && (before_if_up == Some(s.last) || past_window) {
                Some((s, false))
            } else if going_down && (before_if_down == Some(s.last) || past_window) {
                Some((s, true))
            } else {
                None
            }
        });
        let Some((s, down)) = continued else {
            // A new scan, perhaps, in place of the one missed least recently.
            if let Some(s) = self.scans.iter_mut().min_by_key(|s| s.used) {
                *s = Scan {
                    last: vpage,
                    used: clock,
                    ..Scan::default()
                };
            }
            return Ahead::default();
        };
        let window = s.window.max((first / 2).max(1));
        let grown = (window * 2).min(most);
        let span = (grown + 1).saturating_mul(page);
        s.last = vpage;
        s.window = grown;
        s.down = down;
        // Where its next miss lands: just past the window (0 when that
        // would leave the address space; the scan then goes on only
        // page by page).
        s.end = if down {
            vpage.saturating_sub(span)
        } else {
            vpage.checked_add(span).unwrap_or(0)
        };
        s.used = clock;
        Ahead { pages: grown, down }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn up(pages: u64) -> Ahead {
        Ahead { pages, down: false }
    }

    fn down(pages: u64) -> Ahead {
        Ahead { pages, down: true }
    }

    const NONE: Ahead = Ahead {
        pages: 0,
        down: false,
    };

    #[test]
    fn one_scan_grows_its_window_and_is_seen_past_its_read_ahead() {
        let mut s = Scans::default();
        assert_eq!(s.on_miss(100 * P, P, 16, 256), NONE);
        assert_eq!(s.on_miss(101 * P, P, 16, 256), up(16));
        // Its next miss lands past the 16 pages read ahead.
        assert_eq!(s.on_miss(118 * P, P, 16, 256), up(32));
        assert_eq!(s.on_miss(151 * P, P, 16, 256), up(64));
        assert_eq!(s.on_miss(216 * P, P, 16, 256), up(128));
        assert_eq!(s.on_miss(345 * P, P, 16, 256), up(256));
        assert_eq!(s.on_miss(602 * P, P, 16, 256), up(256));
    }

    #[test]
    fn interleaved_scans_each_keep_their_window() {
        let mut s = Scans::default();
        let bases = [1_000 * P, 50_000 * P, 90_000 * P];
        for b in bases {
            assert_eq!(s.on_miss(b, P, 16, 256), NONE);
        }
        for b in bases {
            assert_eq!(s.on_miss(b + P, P, 16, 256), up(16));
        }
        for b in bases {
            assert_eq!(s.on_miss(b + 18 * P, P, 16, 256), up(32));
        }
    }

    #[test]
    fn random_misses_read_nothing_ahead_and_leave_a_scan_its_window_until_pushed_out() {
        let mut s = Scans::default();
        s.on_miss(10 * P, P, 16, 256);
        assert_eq!(s.on_miss(11 * P, P, 16, 256), up(16));
        // Fewer random misses than the table holds: the scan goes on.
        for r in [7_777u64, 3_131, 99_999, 42] {
            assert_eq!(s.on_miss(r * P, P, 16, 256), NONE);
        }
        assert_eq!(s.on_miss(28 * P, P, 16, 256), up(32));
        // Eight random misses push it out: its next miss starts over.
        for r in 0..SCANS as u64 {
            assert_eq!(s.on_miss((500_000 + 1_000 * r) * P, P, 16, 256), NONE);
        }
        assert_eq!(s.on_miss(61 * P, P, 16, 256), NONE);
    }

    #[test]
    fn a_scan_may_run_down_and_keeps_its_direction() {
        let mut s = Scans::default();
        assert_eq!(s.on_miss(1_000 * P, P, 16, 256), NONE);
        assert_eq!(s.on_miss(999 * P, P, 16, 256), down(16));
        // Its next miss lands below the 16 pages read ahead.
        assert_eq!(s.on_miss(982 * P, P, 16, 256), down(32));
        // Going down, the page just above its last miss is not its next.
        assert_eq!(s.on_miss(983 * P, P, 16, 256), NONE);
        assert_eq!(s.on_miss(949 * P, P, 16, 256), down(64));
        // A copy from the end: two scans down, interleaved.
        let mut s = Scans::default();
        for (a, b) in [(5_000u64, 9_000u64), (4_999, 8_999)] {
            s.on_miss(a * P, P, 16, 256);
            s.on_miss(b * P, P, 16, 256);
        }
        assert_eq!(s.on_miss(4_982 * P, P, 16, 256), down(32));
        assert_eq!(s.on_miss(8_982 * P, P, 16, 256), down(32));
        // A scan down near address 0 reads ahead what there is to read.
        let mut s = Scans::default();
        s.on_miss(3 * P, P, 16, 256);
        assert_eq!(s.on_miss(2 * P, P, 16, 256), down(16));
    }

    #[test]
    fn the_window_never_passes_its_most_and_a_most_of_zero_reads_nothing() {
        let mut s = Scans::default();
        s.on_miss(0, P, 0, 0);
        assert_eq!(s.on_miss(P, P, 0, 0), NONE);
        let mut s = Scans::default();
        s.on_miss(0, P, 16, 20);
        assert_eq!(s.on_miss(P, P, 16, 20), up(16));
        assert_eq!(s.on_miss(18 * P, P, 16, 20), up(20));
    }
}
