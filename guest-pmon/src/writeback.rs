//! A shared file mapping's write-back: which bytes of the mapping go to
//! the file. With no dirty bits from the ExCache, the mapping is compared
//! with the file; every write to the file reaches every mapping of it at
//! once, so the bytes that differ are the ones the mapping changed.

use alloc::vec::Vec;

/// The runs [from, to) where `mine` differs from `file` (bytes past the
/// end of `file` count as different).
pub fn changed_runs(mine: &[u8], file: &[u8]) -> Vec<(usize, usize)> {
    let differs = |i: usize| file.get(i) != Some(&mine[i]);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < mine.len() {
        if !differs(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < mine.len() && differs(i) {
            i += 1;
        }
        runs.push((start, i));
    }
    runs
}

/// `runs` (sorted, apart) joined where less than `gap` bytes lie between
/// two: what goes to the file in one write (the bytes between are the
/// file's own already).
pub fn joined(runs: &[(usize, usize)], gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(from, to) in runs {
        match out.last_mut() {
            Some(last) if from - last.1 < gap => last.1 = to,
            _ => out.push((from, to)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{changed_runs, joined};

    #[test]
    fn close_runs_join() {
        let runs = [(0, 2), (5, 6), (100, 101)];
        assert_eq!(joined(&runs, 4), alloc::vec![(0, 6), (100, 101)]);
        assert_eq!(joined(&runs, 1), runs.to_vec());
        assert_eq!(joined(&[], 4), alloc::vec![]);
    }

    #[test]
    fn changed_runs_are_exact() {
        assert_eq!(changed_runs(b"abcdef", b"abcdef"), alloc::vec![]);
        assert_eq!(
            changed_runs(b"aXcdYY", b"abcdef"),
            alloc::vec![(1, 2), (4, 6)]
        );
        assert_eq!(changed_runs(b"abcdef", b"abc"), alloc::vec![(3, 6)]);
        assert_eq!(changed_runs(b"Xbc", b"abc"), alloc::vec![(0, 1)]);
    }
}
