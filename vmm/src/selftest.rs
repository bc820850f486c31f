//! The host half of `--self-test`: time the same compute loop on the host,
//! check the guest's result, decide `native=yes|no`, and print the `ready`
//! line.

use std::time::{Duration, Instant};

use lego_proto::hypercall::SelfTestReport;
use lego_proto::selftest::{compute_loop, INSNS_PER_ITERATION};

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
