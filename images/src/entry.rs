//! `_start` and the boot sequence every image shares.

use lego_proto::boot::{BootInfo, GuestTest, Mode, Role, BOOT_MAGIC};
use lego_proto::hypercall::{PORT_BOOTED, PORT_EXIT};

use crate::{cpu, heap, hypercall, println, selftest, testfail};

// The VMM has set RSP, RDI (BootInfo) and RSI (vCPU index). Backtraces in
// gdb end here: the call-frame information says there is no caller (the
// return address is undefined, as in the C library's _start), and RBP is
// cleared for unwinders that follow frame pointers.
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    ".type _start, @function",
    "_start:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "xor ebp, ebp",
    "call {entry}",
    "ud2",
    ".cfi_endproc",
    ".size _start, . - _start",
    entry = sym image_entry,
);

extern "Rust" {
    fn lego_guest_role() -> Role;
    fn lego_guest_main(boot: &'static BootInfo) -> !;
    fn lego_guest_secondary(boot: &'static BootInfo, cpu: u32) -> !;
}

/// Stops the guest with a panic the VMM reports: the boot facts are not
/// what this image expects.
fn boot_mismatch(what: core::fmt::Arguments) -> ! {
    panic!("boot information is wrong: {what}");
}

extern "C" fn image_entry(boot: *const BootInfo, cpu: u32) -> ! {
    // SAFETY: the VMM maps the BootInfo page for the guest's whole life and never changes it.
    let boot: &'static BootInfo = unsafe { &*boot };
    // The VMM has loaded the IDT already (lego_proto::boot::IDT).
    if cpu != 0 {
        hypercall::out(PORT_BOOTED, cpu);
        if boot.mode == Mode::Serve as u32 || boot.mode == Mode::Program as u32 {
            // SAFETY: defined by the guest! macro in the image.
            unsafe { lego_guest_secondary(boot, cpu) }
        }
        cpu::halt_forever();
    }

    // The heap must exist before the first panic message can be formatted
    // with allocation-free code; so the checks that may panic come after.
    heap::init(boot);
    // SAFETY: lego_guest_role is defined by the guest! macro in the image.
    let role = unsafe { lego_guest_role() };
    if boot.magic != BOOT_MAGIC {
        boot_mismatch(format_args!("magic {:#x}", boot.magic));
    }
    if boot.role != role as u32 {
        boot_mismatch(format_args!(
            "this is the {} image but the VMM started it as the {} component",
            role.name(),
            Role::from_u32(boot.role).map_or("unknown", Role::name)
        ));
    }
    hypercall::out(PORT_BOOTED, 0);

    match boot.mode {
        m if m == Mode::SelfTest as u32 => {
            selftest::run(boot, role);
            hypercall::out(PORT_EXIT, 0);
            cpu::halt_forever();
        }
        m if m == Mode::FabricTest as u32 => {
            let status = crate::fabrictest::run(boot);
            hypercall::out(PORT_EXIT, status);
            cpu::halt_forever();
        }
        m if m == Mode::Test as u32 => match GuestTest::from_u32(boot.test) {
            Some(test) => testfail::run(test),
            None => boot_mismatch(format_args!("unknown guest test {}", boot.test)),
        },
        m if m == Mode::Program as u32 => {
            // The program's stderr is the user's: the monitor stays quiet.
            // SAFETY: lego_guest_main is defined by the guest! macro in the image.
            unsafe { lego_guest_main(boot) }
        }
        m if m == Mode::Serve as u32 || m == Mode::Workload as u32 => {
            println!(
                "{} monitor booted: {} MiB RAM, {} vCPU(s)",
                role.name(),
                boot.mem_size >> 20,
                boot.vcpus
            );
            // SAFETY: lego_guest_main is defined by the guest! macro in the image.
            unsafe { lego_guest_main(boot) }
        }
        other => boot_mismatch(format_args!("unknown mode {other}")),
    }
}
