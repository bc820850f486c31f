//! The few CPU operations a guest needs, and where this vCPU is.

use lego_proto::boot::UPPER_HALF;

/// Guest-physical address of a guest-virtual one. Lower-half memory is
/// identity-mapped and the upper half aliases guest-physical memory at
/// [`UPPER_HALF`] (the exception stacks live there).
pub fn virt_to_phys(addr: u64) -> u64 {
    if addr >= UPPER_HALF {
        addr - UPPER_HALF
    } else {
        addr
    }
}

/// Guest-physical address of `value`, as a hypercall argument.
pub fn phys_of<T>(value: &T) -> u64 {
    virt_to_phys(value as *const T as u64)
}

/// Which vCPU owns the stack that `rsp` points into, if any.
pub fn cpu_of_stack(rsp: u64) -> Option<u32> {
    lego_proto::boot::stack_at(virt_to_phys(rsp)).map(|(cpu, _)| cpu)
}

/// The index of the vCPU running this code, found from its stack.
pub fn current_cpu() -> u32 {
    cpu_of_stack(read_rsp()).unwrap_or(u32::MAX)
}

pub fn read_rsp() -> u64 {
    let rsp: u64;
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    rsp
}

/// The time-stamp counter (unprivileged; runs natively under PVM).
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reads the TSC.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (hi as u64) << 32 | lo as u64
}

/// CR2, the faulting address of the last page fault. Privileged: under PVM
/// this traps and is emulated, so it belongs on the fault path only.
pub fn read_cr2() -> u64 {
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags))
    };
    cr2
}

/// What a vCPU other than the first does in an image that gives them no
/// work: nothing.
pub fn secondary_halts(_boot: &'static lego_proto::boot::BootInfo, _cpu: u32) -> ! {
    halt_forever()
}

/// Stops this vCPU for good: HLT with interrupts off exits to the VMM,
/// which does not resume a halted vCPU.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: halting has no memory effects.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_map_to_their_vcpu() {
        assert_eq!(cpu_of_stack(lego_proto::boot::stack_top(0) - 8), Some(0));
        assert_eq!(cpu_of_stack(lego_proto::boot::stack_top(3) - 8), Some(3));
        assert_eq!(
            cpu_of_stack(lego_proto::boot::exception_stack_top(5) - 8),
            Some(5)
        );
        assert_eq!(cpu_of_stack(0x1000), None);
        assert_eq!(cpu_of_stack(lego_proto::boot::IMAGE_BASE + 8), None);
    }
}
