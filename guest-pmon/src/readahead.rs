//! Read-ahead behind a program reading a storage file in order: which
//! piece of the file to ask the storage component for next, without
//! waiting for it, so that it is served while the program works on what
//! it has (as Linux's readahead keeps a window in flight ahead of a
//! sequential reader). The pieces in flight are tracked here; the kernel
//! starts and collects them (`PORT_STORAGE_FETCH`) and fills the file
//! cache with what comes back, if the file did not change meanwhile.

use alloc::collections::VecDeque;

use crate::filecache::CHUNK;

/// One piece asked for and not collected yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flight {
    pub id: u64,
    pub ino: u64,
    pub offset: u64,
    pub len: u64,
    /// The file cache's generation of the file when it was asked for: a
    /// piece whose file changed since is dropped, not cached.
    pub generation: u64,
}

impl Flight {
    fn covers(&self, ino: u64, offset: u64) -> bool {
        self.ino == ino && self.offset <= offset && offset < self.offset + self.len
    }
}

pub struct ReadAhead {
    /// Bytes kept in flight ahead of where a scan is.
    window: u64,
    /// Bytes asked for at once (a multiple of [`CHUNK`]).
    piece: u64,
    /// Pieces in flight at most.
    most: usize,
    flights: VecDeque<Flight>,
    next_id: u64,
    /// The file last looked at, its generation then and how far:
    /// everything before was cached or in flight, so a scan of a cached
    /// file does not look at its whole window on every read. A chunk
    /// evicted since is read when needed, as without read-ahead.
    looked: Option<(u64, u64, u64)>,
}

impl ReadAhead {
    /// Keeps up to `window` bytes in flight in pieces of `piece` bytes
    /// (both rounded to chunks). A window of 0 reads nothing ahead.
    pub fn new(window: u64, piece: u64) -> ReadAhead {
        let piece = piece.next_multiple_of(CHUNK).max(CHUNK);
        let window = window / CHUNK * CHUNK;
        ReadAhead {
            window,
            piece,
            most: window.div_ceil(piece) as usize,
            flights: VecDeque::new(),
            next_id: 1,
            looked: None,
        }
    }

    /// After a read of `ino` (`size` bytes, of the file cache's
    /// `generation`) that continued a scan and ended at `end`: the piece
    /// to ask for next, (offset, length), if the window ahead of `end` has
    /// a chunk that is neither cached (`holds`) nor in flight.
    pub fn next(
        &mut self,
        (ino, generation): (u64, u64),
        end: u64,
        size: u64,
        holds: impl Fn(u64) -> bool,
    ) -> Option<(u64, u64)> {
        if self.window == 0 || end >= size {
            return None;
        }
        let stop = size.min(end.saturating_add(self.window));
        let mut at = end / CHUNK * CHUNK;
        if let Some((.., upto)) = self
            .looked
            .filter(|&(i, g, upto)| (i, g) == (ino, generation) && upto <= stop)
        {
            at = at.max(upto);
        }
        while at < stop {
            let flying = self.flights.iter().any(|f| f.covers(ino, at));
            if !flying && !holds(at / CHUNK) {
                self.looked = Some((ino, generation, at));
                return Some((at, self.piece.min(size - at)));
            }
            at += CHUNK;
        }
        self.looked = Some((ino, generation, at));
        None
    }

    /// Whether a new piece leaves more than the most in flight, not
    /// counting `leaving` pieces about to be collected: then the oldest
    /// should go first ([`ReadAhead::oldest`]).
    pub fn full(&self, leaving: usize) -> bool {
        self.flights.len().saturating_sub(leaving) >= self.most
    }

    /// The piece in flight longest.
    pub fn oldest(&self) -> Option<Flight> {
        self.flights.front().copied()
    }

    /// A piece was asked for: its flight.
    pub fn started(&mut self, ino: u64, offset: u64, len: u64, generation: u64) -> Flight {
        let f = Flight {
            id: self.next_id,
            ino,
            offset,
            len,
            generation,
        };
        self.next_id += 1;
        self.flights.push_back(f);
        f
    }

    /// The piece in flight that holds byte `offset` of `ino`.
    pub fn covering(&self, ino: u64, offset: u64) -> Option<Flight> {
        self.flights.iter().find(|f| f.covers(ino, offset)).copied()
    }

    /// Pieces in flight for `ino`.
    pub fn of_file(&self, ino: u64) -> impl Iterator<Item = Flight> + '_ {
        self.flights.iter().filter(move |f| f.ino == ino).copied()
    }

    /// The piece is collected or dropped.
    pub fn ended(&mut self, id: u64) {
        self.flights.retain(|f| f.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_scan_keeps_the_window_in_flight_in_pieces() {
        let mut r = ReadAhead::new(2 * MIB, MIB);
        let nothing = |_| false;
        // The first piece starts where the read ended.
        assert_eq!(r.next((7, 0), MIB, 10 * MIB, nothing), Some((MIB, MIB)));
        r.started(7, MIB, MIB, 0);
        assert_eq!(r.next((7, 0), MIB, 10 * MIB, nothing), Some((2 * MIB, MIB)));
        r.started(7, 2 * MIB, MIB, 0);
        assert!(r.full(0));
        assert!(!r.full(1), "one about to be collected");
        assert_eq!(
            r.next((7, 0), MIB, 10 * MIB, nothing),
            None,
            "the window is full"
        );
        // Another file's pieces do not count as this one's.
        assert_eq!(r.next((8, 0), MIB, 10 * MIB, nothing), Some((MIB, MIB)));
        // Reading on: the piece holding the read is collected, and the
        // window moves.
        let f = r.covering(7, MIB + 5).expect("in flight");
        assert_eq!(f.offset, MIB);
        r.ended(f.id);
        assert_eq!(r.oldest().map(|f| f.offset), Some(2 * MIB));
        let cached = |c: u64| c < 2 * MIB / CHUNK;
        assert_eq!(
            r.next((7, 0), 2 * MIB, 10 * MIB, cached),
            Some((3 * MIB, MIB))
        );
        assert_eq!(r.of_file(7).count(), 1);
    }

    #[test]
    fn cached_chunks_and_the_end_of_the_file_are_not_asked_for() {
        let mut r = ReadAhead::new(4 * MIB, MIB);
        // Mid-chunk end: the chunk it is in comes first unless cached.
        assert_eq!(
            r.next((1, 0), CHUNK + 10, 10 * MIB, |_| false),
            Some((CHUNK, MIB))
        );
        assert_eq!(
            r.next((1, 0), CHUNK + 10, 10 * MIB, |c| c == 1),
            Some((2 * CHUNK, MIB))
        );
        // A short last piece, and nothing at or past the end.
        assert_eq!(
            r.next((1, 0), 3 * CHUNK, 3 * CHUNK + 100, |_| false),
            Some((3 * CHUNK, 100))
        );
        assert_eq!(
            r.next((1, 0), 3 * CHUNK + 100, 3 * CHUNK + 100, |_| false),
            None
        );
        // All of the window cached: nothing, and that is not looked at
        // again until the scan passes it or the file changes.
        assert_eq!(r.next((1, 0), 0, 10 * MIB, |_| true), None);
        let evicted = |c: u64| c != 20 && c < 4 * MIB / CHUNK;
        assert_eq!(r.next((1, 0), MIB, 10 * MIB, evicted), Some((4 * MIB, MIB)));
        // The file changed: all of the window is looked at again.
        assert_eq!(
            r.next((1, 1), MIB, 10 * MIB, evicted),
            Some((20 * CHUNK, MIB))
        );
        // No window, no read-ahead.
        assert_eq!(ReadAhead::new(0, MIB).next((1, 0), 0, MIB, |_| false), None);
    }
}
