//! Deliberate failures, so the tests can check what the VMM reports.
//! Reached only with `lego-vmm --guest-test KIND` (hidden from `--help`).

use lego_proto::boot::GuestTest;

use crate::{cpu, exceptions, hypercall};

/// An address no page table maps: the PDPT holds entries only for guest RAM.
const UNMAPPED: u64 = 0x40_0000_0000;

pub fn run(test: GuestTest) -> ! {
    match test {
        GuestTest::Panic => panic!("deliberate panic requested by the VMM (--guest-test panic)"),
        GuestTest::PageFault => {
            // SAFETY: not safe at all: this read is meant to fault.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            panic!("read of unmapped {UNMAPPED:#x} returned {v:#x} instead of faulting");
        }
        GuestTest::DivideError => {
            // SAFETY: meant to raise #DE; the handler never returns.
            unsafe {
                core::arch::asm!("xor edx, edx", "xor eax, eax", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            };
            panic!("division by zero did not fault");
        }
        GuestTest::TripleFault => {
            exceptions::load_empty_idt();
            // SAFETY: meant to fault with no IDT: #UD, #GP, #DF, shutdown.
            unsafe { core::arch::asm!("ud2") };
            panic!("ud2 with an empty IDT did not triple-fault");
        }
        GuestTest::Breakpoint => {
            // SAFETY: int3 goes to the VMM's debugger, or is reported as a failure.
            unsafe { core::arch::asm!("int3") };
            panic!("int3 returned: a debugger let the guest go on past --guest-test breakpoint");
        }
        GuestTest::BadHypercall => {
            // A console write whose argument lies far outside guest RAM.
            hypercall::out(lego_proto::hypercall::PORT_CONSOLE, 0xffff_f000);
            cpu::halt_forever()
        }
    }
}
