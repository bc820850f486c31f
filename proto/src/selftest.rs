//! The self-test compute loop, one definition for the guest and the host.
//!
//! The VMM runs the very same machine code on the host to get the
//! compute ratio, and recomputes the result to check the guest's. The loop is
//! written in assembly so its instruction count per iteration is exact: that
//! count is the denominator of the "native" test (emulated instructions must
//! stay under 1% of the instructions run).

/// Iterations the self-test runs by default (the issue asks for at least 10^8).
pub const DEFAULT_ITERATIONS: u64 = 100_000_000;

/// Bytes the guest's heap check holds at once, at least (a vector of 2^16
/// u64 and a page); the heap's own count of free bytes must drop by as
/// much while they are held.
pub const HEAP_CHECK_MIN: u64 = (1 << 16) * 8 + 4096;

/// Instructions executed per loop iteration: imul, add, dec, jnz.
pub const INSNS_PER_ITERATION: u64 = 4;

const MULTIPLIER: u64 = 6_364_136_223_846_793_005;
const INCREMENT: u64 = 1_442_695_040_888_963_407;
const SEED: u64 = 0x4c45_474f;

/// A linear congruential generator stepped `iterations` times.
#[inline(never)]
pub fn compute_loop(iterations: u64) -> u64 {
    if iterations == 0 {
        return SEED;
    }
    let mut x = SEED;
    // SAFETY: pure register arithmetic; touches no memory.
    unsafe {
        core::arch::asm!(
            "2:",
            "imul {x}, {m}",
            "add {x}, {a}",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) x,
            m = in(reg) MULTIPLIER,
            a = in(reg) INCREMENT,
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
    x
}

/// The same recurrence in plain Rust, to check the assembly.
pub fn compute_reference(iterations: u64) -> u64 {
    let mut x = SEED;
    for _ in 0..iterations {
        x = x.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembly_matches_reference() {
        for n in [0, 1, 2, 3, 1000, 123_457] {
            assert_eq!(compute_loop(n), compute_reference(n), "n={n}");
        }
    }
}
