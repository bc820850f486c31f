//! The self-test `lego-vmm --self-test` runs: the heap works, formatting
//! works, and the compute loop runs at native speed. The VMM times the loop
//! between the two hypercalls and checks the result.

use alloc::{boxed::Box, collections::BTreeMap, format, string::String, vec::Vec};

use lego_proto::boot::{BootInfo, Role};
use lego_proto::hypercall::{SelfTestReport, PORT_COMPUTE_BEGIN, PORT_SELFTEST_DONE};
use lego_proto::selftest::compute_loop;

use crate::{heap, hypercall, println};

/// Allocates, fills and verifies a few collections; returns the bytes used.
pub fn check_heap() -> u64 {
    let n: u64 = 1 << 16;
    let v: Vec<u64> = (0..n).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
    let sum = v.iter().fold(0u64, |a, &x| a.wrapping_add(x));
    let expect = (0..n).fold(0u64, |a, i| a.wrapping_add(i.wrapping_mul(0x9e37_79b9)));
    assert_eq!(sum, expect, "heap vector lost data");

    let mut map = BTreeMap::new();
    for i in 0..1000u32 {
        map.insert(i, format!("value-{i}"));
    }
    assert_eq!(
        map.get(&999).map(String::as_str),
        Some("value-999"),
        "BTreeMap lookup failed"
    );

    let boxed = Box::new([7u8; 4096]);
    assert!(boxed.iter().all(|&b| b == 7), "boxed page lost data");
    let bytes = v.capacity() * 8 + 4096 + map.len() * 32;
    drop((v, map, boxed));
    bytes as u64
}

pub fn run(boot: &BootInfo, role: Role) {
    println!(
        "{} self-test: heap of {} MiB",
        role.name(),
        heap::size() >> 20
    );
    let heap_bytes = check_heap();

    hypercall::out(PORT_COMPUTE_BEGIN, 0);
    let result = compute_loop(boot.selftest_iterations);
    let report = SelfTestReport {
        iterations: boot.selftest_iterations,
        result,
        heap_bytes,
    };
    hypercall::call_with(PORT_SELFTEST_DONE, &report);
}

#[cfg(test)]
mod tests {
    #[test]
    fn heap_check_passes_on_a_working_allocator() {
        assert!(super::check_heap() > 512 * 1024);
    }
}
