//! The built-in workload: a process with a working set in the memory
//! components, run through the ExCache. It writes a pseudo-random pattern
//! over its memory, reads it all back and verifies every word, timing the
//! first access to each page (each one a miss once the working set is
//! bigger than the ExCache).

use alloc::vec::Vec;

use lego_image::{cpu, fabric, hypercall, BootInfo};
use lego_proto::hypercall::{PORT_MEMORY_CALL, PORT_PROCESS_START};
use lego_proto::memory::*;
use lego_proto::process::*;

use crate::window;

/// Where the workload's program break starts (as a Linux binary's would).
const BRK_START: u64 = 0x40_0000;
/// The most pages per latency class whose times are kept.
const MAX_SAMPLES: usize = 1 << 16;

/// A memory call to the process's home, made by the VMM so that its
/// ExCache follows: its value, or a status.
fn memory_call(slot: u32, req: MemRequest) -> Result<u64, u32> {
    let call = MemoryCall {
        slot,
        request: req,
        ..Default::default()
    };
    hypercall::out(PORT_MEMORY_CALL, cpu::phys_of(&call) as u32);
    // SAFETY: the VMM wrote the reply during the hypercall.
    let reply = unsafe { core::ptr::read_volatile(&call.reply) };
    match reply.status {
        OK => Ok(reply.value),
        s => Err(s),
    }
}

fn set_process(slot: u32, pid: u32, home: u32) -> u32 {
    let p = ProcessStart {
        slot,
        pid,
        home,
        status: 0,
        flags: 0,
    };
    hypercall::out(PORT_PROCESS_START, cpu::phys_of(&p) as u32);
    // SAFETY: the VMM wrote the status during the hypercall.
    unsafe { core::ptr::read_volatile(&p.status) }
}

/// Checks the page at `va` against the pattern; the report keeps the
/// count of wrong words and the first wrong address.
fn verify(report: &mut WorkloadReport, seed: u64, va: u64, page: &[u64]) {
    let wrong = check_page(seed, va, page);
    if wrong > 0 && report.wrong_words == 0 {
        report.first_bad = va
            + 8 * page
                .iter()
                .enumerate()
                .position(|(i, w)| *w != pattern_word(seed, va + 8 * i as u64))
                .unwrap_or(0) as u64;
    }
    report.wrong_words += wrong;
}

fn percentiles(samples: &mut [u64]) -> (u64, u64) {
    if samples.is_empty() {
        return (0, 0);
    }
    samples.sort_unstable();
    let at = |p: usize| samples[(samples.len() - 1) * p / 100];
    (at(50), at(99))
}

pub fn run(boot: &BootInfo) -> WorkloadReport {
    let mut report = WorkloadReport::default();
    if fabric::init(boot).is_err() {
        report.status = WORKLOAD_NO_FABRIC;
        return report;
    }
    let (pid, home, bytes) = (boot.workload_pid, boot.workload_home, boot.workload_bytes);
    let kind = Workload::from_u32(boot.workload).unwrap_or(Workload::Pattern);
    let fail = |mut r: WorkloadReport, status| {
        r.status = WORKLOAD_MEMORY_CALL;
        r.mem_status = status;
        r
    };
    let Some(win) = Window::for_phys_bits(boot.phys_bits) else {
        panic!(
            "the VMM started a workload with {}-bit guest-physical addresses, too few for a process window",
            boot.phys_bits
        );
    };
    let status = set_process(0, pid, home);
    assert!(status == 0, "the VMM refused the process (status {status})");
    let new = MemRequest {
        op: OP_NEW,
        pid,
        addr: BRK_START,
        len: win.user_top(),
        ..Default::default()
    };
    if let Err(s) = memory_call(0, new) {
        set_process(0, 0, 0);
        return fail(report, s);
    }
    // Two mappings, the second at least a vRegion below the first, so a
    // rack whose home hands out vRegions spreads the working set over
    // several memory components (the first vRegion stays at the home).
    let second_len = (bytes / 2) & !0xfff;
    let first_len = bytes - second_len;
    let mmap = |addr: u64, len: u64| MemRequest {
        op: OP_MMAP,
        pid,
        addr,
        len,
        prot: 3,
        ..Default::default()
    };
    let first = match memory_call(0, mmap(0, first_len)) {
        Ok(a) => a,
        Err(s) => return fail(report, s),
    };
    let mut ranges = [(first, first_len), (0, 0)];
    if second_len > 0 {
        let hint = (first & !(VREGION_SIZE - 1)).saturating_sub(VREGION_SIZE);
        match memory_call(0, mmap(hint, second_len)) {
            Ok(a) => ranges[1] = (a, second_len),
            Err(s) => return fail(report, s),
        }
    }
    let last = if ranges[1].1 > 0 { 1 } else { 0 };
    for (i, &(base, len)) in ranges.iter().enumerate().take(last + 1) {
        // One page more than the last mapping for the `outside` workload.
        let extra = if kind == Workload::Outside && i == last {
            4096
        } else {
            0
        };
        if let Err(e) = window::map(win, 0, base, len + extra) {
            panic!("cannot map the workload's memory at {base:#x}: {e:?}");
        }
    }
    lego_image::println!(
        "workload: process {pid}, {} MiB at {first:#x} and {:#x}, home memory component {home}",
        bytes >> 20,
        ranges[1].0
    );
    let page_va = |p: u64| {
        let in_first = first_len / 4096;
        if p < in_first {
            first + p * 4096
        } else {
            ranges[1].0 + (p - in_first) * 4096
        }
    };

    let pages = bytes / 4096;
    let cache = boot.excache_pages as u64;
    let seed = pid as u64;
    let mut samples: [Vec<u64>; CLASSES] = Default::default();
    let mut record = |class: usize, cycles: u64| {
        if samples[class].len() < MAX_SAMPLES {
            samples[class].push(cycles);
        }
    };
    let start = cpu::rdtsc();
    for p in 0..pages {
        let va = page_va(p);
        // SAFETY: both ranges are mapped to the window above.
        let page = unsafe { core::slice::from_raw_parts_mut(va as *mut u64, 512) };
        let t0 = cpu::rdtsc();
        // SAFETY: as above; volatile so the timed first touch is this one.
        unsafe { core::ptr::write_volatile(&mut page[0], pattern_word(seed, va)) };
        let t1 = cpu::rdtsc();
        write_page(seed, va, page);
        let class = if p < cache {
            CLASS_WRITE_MISS
        } else {
            CLASS_WRITE_MISS_DIRTY_EVICT
        };
        record(class, t1 - t0);
    }
    if kind == Workload::ReadOnly {
        for &(base, len) in ranges.iter().take(last + 1) {
            let protect = MemRequest {
                op: OP_MPROTECT,
                pid,
                addr: base,
                len,
                prot: 1,
                ..Default::default()
            };
            if let Err(s) = memory_call(0, protect) {
                return fail(report, s);
            }
        }
    }
    if kind == Workload::Random {
        let mut state = seed | 1;
        for _ in 0..pages {
            let (p, write) = random_step(&mut state, pages);
            let va = page_va(p);
            // SAFETY: as above.
            let page = unsafe { core::slice::from_raw_parts_mut(va as *mut u64, 512) };
            let t0 = cpu::rdtsc();
            // SAFETY: as above.
            let first = unsafe { core::ptr::read_volatile(&page[0]) };
            let t1 = cpu::rdtsc();
            core::hint::black_box(first);
            record(CLASS_RANDOM, t1 - t0);
            if write {
                write_page(seed, va, page);
                continue;
            }
            verify(&mut report, seed, va, page);
        }
    }
    for p in (0..pages).filter(|_| kind != Workload::Random) {
        let va = page_va(p);
        // SAFETY: as above.
        let page = unsafe { core::slice::from_raw_parts(va as *const u64, 512) };
        let t0 = cpu::rdtsc();
        // SAFETY: as above.
        let first = unsafe { core::ptr::read_volatile(&page[0]) };
        let t1 = cpu::rdtsc();
        core::hint::black_box(first);
        verify(&mut report, seed, va, page);
        // Only a working set bigger than the cache misses on the way back.
        if pages > cache {
            let class = if p < cache {
                CLASS_READ_MISS_DIRTY_EVICT
            } else {
                CLASS_READ_MISS
            };
            record(class, t1 - t0);
        }
    }
    report.cycles = cpu::rdtsc() - start;
    report.bytes = bytes;
    for (i, s) in samples.iter_mut().enumerate() {
        report.samples[i] = s.len() as u64;
        report.total[i] = s.iter().sum();
        (report.p50[i], report.p99[i]) = percentiles(s);
    }
    if report.wrong_words > 0 {
        report.status = WORKLOAD_WRONG_DATA;
    }
    if kind == Workload::ReadOnly {
        // The last page read is cached read-only: the VMM must refuse.
        let va = page_va(pages - 1);
        // SAFETY: mapped to the window above.
        unsafe { core::ptr::write_volatile(va as *mut u64, 1) };
        report.status = WORKLOAD_WRONG_DATA;
        report.first_bad = va;
        report.wrong_words = 1;
    }
    if kind == Workload::Outside {
        // The memory component has no VMA here: the VMM must stop us.
        let past = ranges[last].0 + ranges[last].1;
        // SAFETY: mapped to the window above (on purpose, past the mmap).
        let v = unsafe { core::ptr::read_volatile(past as *const u64) };
        core::hint::black_box(v);
        report.status = WORKLOAD_WRONG_DATA;
        report.first_bad = past;
        report.wrong_words = 1;
    }
    let exit = MemRequest {
        op: OP_EXIT,
        pid,
        ..Default::default()
    };
    let exited = memory_call(0, exit);
    set_process(0, 0, 0);
    if let Err(s) = exited {
        if report.status == WORKLOAD_OK {
            return fail(report, s);
        }
    }
    report
}
