//! Which pages of a host range hold memory (`PAGEMAP_SCAN` on
//! `/proc/self/pagemap`, Linux 6.7 on).
//!
//! Emptying a vRegion for the slot's next process with one MADV_DONTNEED
//! over its whole GiB cost about 0.5 ms per vRegion under PVM, however
//! little of it was used: the kernel tells KVM's MMU notifier the whole
//! range, and the shadow MMU walks its reverse maps for every page of it.
//! Dropping only the runs that hold pages costs what was used.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::sync::OnceLock;

/// `struct pm_scan_arg` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Default)]
struct ScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 3 << 30
    | (std::mem::size_of::<ScanArg>() as libc::c_ulong) << 16
    | (b'f' as libc::c_ulong) << 8
    | 16;

/// Runs the output holds per call; a range with more takes more calls.
const RUNS: usize = 64;

fn pagemap() -> Option<&'static File> {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    FILE.get_or_init(|| File::open("/proc/self/pagemap").ok())
        .as_ref()
}

/// The runs of [start, end) that hold a page (in memory or swapped out),
/// in order; None when this kernel cannot say (the caller then treats
/// the whole range as used).
pub fn populated(start: u64, end: u64) -> Option<Vec<(u64, u64)>> {
    let file = pagemap()?;
    let mut out = Vec::new();
    let mut from = start;
    while from < end {
        let mut runs = [PageRegion::default(); RUNS];
        let mut arg = ScanArg {
            size: std::mem::size_of::<ScanArg>() as u64,
            start: from,
            end,
            vec: runs.as_mut_ptr() as u64,
            vec_len: RUNS as u64,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            ..Default::default()
        };
        // SAFETY: PAGEMAP_SCAN reads the argument and writes at most
        // vec_len regions into `runs`, which outlives the call.
        let n = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
        if n < 0 {
            return None;
        }
        let n = (n as usize).min(RUNS);
        out.extend(runs[..n].iter().map(|r| (r.start, r.end)));
        // The walk stops early only when the output is full.
        if arg.walk_end <= from || n < RUNS {
            break;
        }
        from = arg.walk_end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reservation of `len` bytes with `pages` touched, as the ExCache
    /// reserves a vRegion (`hugepages` false: none may form).
    struct Reservation {
        base: u64,
        len: usize,
    }

    impl Reservation {
        fn new(len: usize, pages: &[u64], hugepages: bool) -> Reservation {
            // SAFETY: a fresh anonymous reservation, unmapped at drop.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            if !hugepages {
                // SAFETY: our reservation.
                unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
            }
            let base = p as u64;
            for &page in pages {
                // SAFETY: inside the reservation.
                unsafe { *((base + page * 4096) as *mut u8) = 1 };
            }
            Reservation { base, len }
        }

        fn runs(&self) -> Option<Vec<(u64, u64)>> {
            populated(self.base, self.base + self.len as u64)
        }
    }

    impl Drop for Reservation {
        fn drop(&mut self) {
            // SAFETY: our reservation.
            unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        }
    }

    #[test]
    fn finds_the_touched_pages_of_a_reservation() {
        let touched = [0u64, 1, 2, 700, 16383];
        let r = Reservation::new(64 << 20, &touched, true);
        let Some(runs) = r.runs() else {
            eprintln!("this kernel has no PAGEMAP_SCAN; nothing to check");
            return;
        };
        let pages: Vec<u64> = runs
            .iter()
            .flat_map(|&(a, b)| (a..b).step_by(4096))
            .map(|a| (a - r.base) / 4096)
            .collect();
        // A transparent huge page may hold more than was touched; never
        // less.
        for page in touched {
            assert!(pages.contains(&page), "page {page} missing from {runs:x?}");
        }
        assert!(pages.len() < 2048, "{} pages reported", pages.len());
    }

    #[test]
    fn more_runs_than_one_call_holds_are_all_found() {
        const LEN: usize = 4 << 20;
        // Every other page: each its own run.
        let every_other: Vec<u64> = (0..(LEN as u64 / 4096)).step_by(2).collect();
        let r = Reservation::new(LEN, &every_other, false);
        let Some(runs) = r.runs() else {
            return;
        };
        assert_eq!(runs.len(), every_other.len());
        assert!(runs
            .iter()
            .zip(&every_other)
            .all(|(&(a, b), &page)| a == r.base + page * 4096 && b == a + 4096));
    }
}
