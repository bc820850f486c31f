//! The host half of `--self-test`: time the same compute loop on the host,
//! check the guest's result, decide `native=yes|no`, and print the `ready`
//! line.

use std::time::{Duration, Instant};

use lego_proto::hypercall::SelfTestReport;
use lego_proto::selftest::{compute_loop, HEAP_CHECK_MIN, INSNS_PER_ITERATION};

use crate::error::VmmError;

/// Emulated instructions must stay below this share of those the self-test ran.
const NATIVE_LIMIT: f64 = 0.01;

pub struct Outcome {
    pub role: &'static str,
    /// The iterations the VMM asked for; the guest's report must match.
    pub iterations: u64,
    pub boot: Duration,
    pub guest_compute: Duration,
    pub report: SelfTestReport,
    pub emulated: Option<u64>,
    pub exits: u64,
    /// Guest-physical [start, end) of the guest's heap: RAM above the image.
    pub heap: (u64, u64),
}

/// Whether the guest's heap check is believable: its allocator's free count
/// dropped by at least what the check held, within the heap, and its
/// blocks lay in the heap.
pub fn check_heap_report(r: &SelfTestReport, (start, end): (u64, u64)) -> Result<(), String> {
    if r.heap_bytes < HEAP_CHECK_MIN {
        return Err(format!(
            "its allocator's free bytes dropped by {} while the heap check held at least {HEAP_CHECK_MIN}",
            r.heap_bytes
        ));
    }
    if r.heap_bytes > end.saturating_sub(start) {
        return Err(format!(
            "its allocator gave {} bytes from a heap of {}",
            r.heap_bytes,
            end.saturating_sub(start)
        ));
    }
    if r.heap_low < start || r.heap_high > end || r.heap_low >= r.heap_high {
        return Err(format!(
            "its allocator gave memory at {:#x}..{:#x}, outside the heap {start:#x}..{end:#x}",
            r.heap_low, r.heap_high
        ));
    }
    Ok(())
}

impl Outcome {
    /// Runs the host half and returns the `ready` line.
    pub fn finish(&self) -> Result<String, VmmError> {
        if self.report.iterations != self.iterations {
            return Err(VmmError::Guest(format!(
                "the {} component's self-test reports {} iterations, but {} were asked for",
                self.role, self.report.iterations, self.iterations
            )));
        }
        let start = Instant::now();
        let host_result = compute_loop(self.iterations);
        let host_time = start.elapsed();
        if host_result != self.report.result {
            return Err(VmmError::Guest(format!(
                "the {} component's self-test computed {:#x} after {} iterations, but the host computed {:#x}: the guest does not execute correctly",
                self.role, self.report.result, self.report.iterations, host_result
            )));
        }
        check_heap_report(&self.report, self.heap).map_err(|why| {
            VmmError::Guest(format!(
                "the {} component's heap check failed: {why}",
                self.role
            ))
        })?;
        // The loop alone is a lower bound on what the self-test ran.
        let ran = self.iterations.saturating_mul(INSNS_PER_ITERATION);
        let native = match self.emulated {
            Some(emulated) => {
                log::info!(
                    "emulated instructions: {emulated} of at least {ran} run ({:.4}%)",
                    100.0 * emulated as f64 / ran.max(1) as f64
                );
                (emulated as f64) < NATIVE_LIMIT * ran as f64
            }
            None => {
                log::warn!("no emulation counter on this KVM: reporting native=no");
                false
            }
        };
        let ratio = self.guest_compute.as_secs_f64() / host_time.as_secs_f64().max(1e-9);
        log::info!(
            "compute loop: guest {:?}, host {:?}; heap check {} bytes",
            self.guest_compute,
            host_time,
            self.report.heap_bytes
        );
        Ok(format!(
            "ready role={} native={} boot_ms={:.2} compute_ratio={:.3} exits={}",
            self.role,
            if native { "yes" } else { "no" },
            self.boot.as_secs_f64() * 1e3,
            ratio,
            self.exits
        ))
    }
}

/// Resident memory of this process beyond the pages of guest RAM, in KiB:
/// the VMM's own footprint. Read from /proc/self/smaps.
pub fn vmm_rss_kib(guest_ram_host_addr: u64) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (mut total, mut guest) = (0u64, 0u64);
    let mut in_guest = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((start, _)) = range.split_once('-') {
                if let Ok(start) = u64::from_str_radix(start, 16) {
                    in_guest = start == guest_ram_host_addr;
                    continue;
                }
            }
        }
        if let Some(rest) = line.strip_prefix("Rss:") {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            total += kib;
            if in_guest {
                guest += kib;
            }
        }
    }
    Some(total - guest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(bytes: u64, low: u64, high: u64) -> SelfTestReport {
        SelfTestReport {
            heap_bytes: bytes,
            heap_low: low,
            heap_high: high,
            ..Default::default()
        }
    }

    #[test]
    fn a_heap_check_that_did_not_allocate_or_strayed_is_refused() {
        let heap = (0x20_0000, 0x800_0000);
        let good = report(HEAP_CHECK_MIN + 4096, 0x30_0000, 0x3a_0000);
        assert_eq!(check_heap_report(&good, heap), Ok(()));
        let none = report(0, 0x30_0000, 0x3a_0000);
        assert!(check_heap_report(&none, heap)
            .unwrap_err()
            .contains("dropped by 0"));
        let below = report(HEAP_CHECK_MIN, 0x1000, 0x3a_0000);
        assert!(check_heap_report(&below, heap)
            .unwrap_err()
            .contains("outside the heap"));
        let above = report(HEAP_CHECK_MIN, 0x30_0000, 0x900_0000);
        assert!(check_heap_report(&above, heap).is_err());
        let huge = report(1 << 40, 0x30_0000, 0x3a_0000);
        assert!(check_heap_report(&huge, heap).is_err());
    }
}
