//! The self-test `lego-vmm --self-test` runs: the heap works, formatting
//! works, and the compute loop runs at native speed. The VMM times the loop
//! between the two hypercalls and checks the result.

use alloc::{boxed::Box, collections::BTreeMap, format, string::String, vec::Vec};

use lego_proto::boot::{BootInfo, Role};
use lego_proto::hypercall::{SelfTestReport, PORT_COMPUTE_BEGIN, PORT_SELFTEST_DONE};
use lego_proto::selftest::compute_loop;

use crate::{heap, hypercall, println};

/// What the heap check saw: the bytes the allocator's free count dropped
/// by while its allocations were held, and where they were.
pub struct HeapCheck {
    pub bytes: u64,
    pub low: u64,
    pub high: u64,
}

/// Allocates, fills and verifies a few collections from the guest's own
/// allocator, and measures what the allocator says it gave (the VMM checks
/// the figures against the RAM it gave the guest).
pub fn check_heap() -> HeapCheck {
    let free_before = heap::free();
    let n: u64 = 1 << 16;
    let v: Vec<u64> = (0..n).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
    let mut map = BTreeMap::new();
    for i in 0..1000u32 {
        map.insert(i, format!("value-{i}"));
    }
    let boxed = Box::new([7u8; 4096]);
    let free_during = heap::free();
    // Written before the map and the box were allocated: still intact?
    for (i, &x) in v.iter().enumerate() {
        assert_eq!(
            x,
            (i as u64).wrapping_mul(0x9e37_79b9),
            "heap vector lost data at {i}"
        );
    }
    assert_eq!(
        map.get(&999).map(String::as_str),
        Some("value-999"),
        "BTreeMap lookup failed"
    );
    assert!(boxed.iter().all(|&b| b == 7), "boxed page lost data");
    let spans = [
        (v.as_ptr() as u64, (v.len() * 8) as u64),
        (boxed.as_ptr() as u64, 4096),
    ];
    let low = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let high = spans.iter().map(|s| s.0 + s.1).max().unwrap_or(0);
    let (a, b) = (spans[0], spans[1]);
    assert!(
        a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0,
        "the allocator gave overlapping blocks"
    );
    drop((v, map, boxed));
    assert_eq!(
        heap::free(),
        free_before,
        "the heap did not get back what the check freed"
    );
    HeapCheck {
        bytes: free_before.saturating_sub(free_during) as u64,
        low: crate::cpu::virt_to_phys(low),
        high: crate::cpu::virt_to_phys(high),
    }
}

pub fn run(boot: &BootInfo, role: Role) {
    println!(
        "{} self-test: heap of {} MiB",
        role.name(),
        heap::size() >> 20
    );
    let heap = check_heap();

    hypercall::out(PORT_COMPUTE_BEGIN, 0);
    let result = compute_loop(boot.selftest_iterations);
    let report = SelfTestReport {
        iterations: boot.selftest_iterations,
        result,
        heap_bytes: heap.bytes,
        heap_low: heap.low,
        heap_high: heap.high,
    };
    hypercall::call_with(PORT_SELFTEST_DONE, &report);
}
