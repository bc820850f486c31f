//! Calls into the VMM (ABI in `lego_proto::hypercall`). Each is one VM exit.

use crate::cpu::phys_of;

/// One `out dx, eax`. Not `nomem`: the VMM reads memory the guest wrote just
/// before, so the compiler must not move stores past it.
pub fn out(port: u16, value: u32) {
    // SAFETY: port I/O to the VMM's hypercall ports has no effect on guest state.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags))
    };
}

/// A hypercall whose argument is a struct the VMM reads.
pub fn call_with<T>(port: u16, arg: &T) {
    let phys = phys_of(arg);
    // Arguments live in the image, its heap or its stacks: all below 4 GiB in
    // any layout this VMM builds. Anything else is a bug worth a panic.
    let phys = u32::try_from(phys).expect("hypercall argument above 4 GiB");
    out(port, phys);
}
