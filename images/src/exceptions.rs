//! The IDT and the handlers for the 32 architectural exceptions.
//!
//! Every handler runs on the vCPU's exception stack (IST1 on ordinary KVM,
//! TSS RSP0 under PVM, both the same upper-half stack) and reports the vector,
//! error code, RIP, CR2 and registers to the VMM, which prints them and stops
//! the component. Nothing in a monitor is expected to fault.

use lego_proto::boot::SEL_CODE64;
use lego_proto::hypercall::{FaultReport, PORT_FAULT};

use crate::{cpu, hypercall};

#[repr(C)]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl IdtEntry {
    const MISSING: IdtEntry = IdtEntry {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn gate(handler: u64, dpl: u8) -> IdtEntry {
        IdtEntry {
            offset_low: handler as u16,
            selector: SEL_CODE64,
            ist: 1,
            // Present, 64-bit interrupt gate (interrupts stay off).
            type_attr: 0x8e | (dpl << 5),
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

#[repr(C, align(16))]
struct Idt([IdtEntry; 256]);

static mut IDT: Idt = Idt([IdtEntry::MISSING; 256]);

/// What the entry stubs leave on the stack: the registers they saved, the
/// vector and error code they pushed, and the CPU's interrupt frame.
#[repr(C)]
pub struct ExceptionFrame {
    pub gprs: [u64; 15],
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// One stub per vector: push a zero error code where the CPU pushes none, push
// the vector, save the registers in `GPR_NAMES` order and call the handler.
core::arch::global_asm!(
    ".macro LEGO_ISR n, err",
    ".align 16",
    "lego_isr_\\n:",
    ".if \\err == 0",
    "push 0",
    ".endif",
    "push \\n",
    "jmp lego_isr_common",
    ".endm",
    "LEGO_ISR 0,0", "LEGO_ISR 1,0", "LEGO_ISR 2,0", "LEGO_ISR 3,0",
    "LEGO_ISR 4,0", "LEGO_ISR 5,0", "LEGO_ISR 6,0", "LEGO_ISR 7,0",
    "LEGO_ISR 8,1", "LEGO_ISR 9,0", "LEGO_ISR 10,1", "LEGO_ISR 11,1",
    "LEGO_ISR 12,1", "LEGO_ISR 13,1", "LEGO_ISR 14,1", "LEGO_ISR 15,0",
    "LEGO_ISR 16,0", "LEGO_ISR 17,1", "LEGO_ISR 18,0", "LEGO_ISR 19,0",
    "LEGO_ISR 20,0", "LEGO_ISR 21,1", "LEGO_ISR 22,0", "LEGO_ISR 23,0",
    "LEGO_ISR 24,0", "LEGO_ISR 25,0", "LEGO_ISR 26,0", "LEGO_ISR 27,0",
    "LEGO_ISR 28,0", "LEGO_ISR 29,1", "LEGO_ISR 30,1", "LEGO_ISR 31,0",
    "lego_isr_common:",
    "push r15", "push r14", "push r13", "push r12", "push r11", "push r10",
    "push r9", "push r8", "push rbp", "push rdi", "push rsi", "push rdx",
    "push rcx", "push rbx", "push rax",
    "mov rdi, rsp",
    "cld",
    "and rsp, -16",
    "call {handler}",
    "ud2",
    ".section .rodata.lego_isr_table, \"a\"",
    ".align 8",
    ".global lego_isr_table",
    "lego_isr_table:",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    ".quad lego_isr_\\n",
    ".endr",
    ".text",
    handler = sym exception_handler,
);

extern "C" {
    static lego_isr_table: [u64; 32];
}

/// Fills the IDT. vCPU 0 only, before the others load it.
pub fn init() {
    // SAFETY: runs once on vCPU 0 before any other vCPU reads the IDT.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for (vector, entry) in idt.0.iter_mut().take(32).enumerate() {
        // SAFETY: the table is static data emitted by the asm above.
        let handler = unsafe { lego_isr_table[vector] };
        // int3 must be usable from any privilege level the guest runs at.
        let dpl = if vector == 3 { 3 } else { 0 };
        *entry = IdtEntry::gate(handler, dpl);
    }
}

/// Loads the IDT on this vCPU.
pub fn load_idt() {
    let pointer = IdtPointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: the IDT is a static that lives forever.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags))
    };
}

/// Loads an empty IDT, so that the next exception triple-faults. Tests only.
pub fn load_empty_idt() {
    let pointer = IdtPointer { limit: 0, base: 0 };
    // SAFETY: deliberately breaks exception delivery; the caller faults next.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags))
    };
}

extern "C" fn exception_handler(frame: &ExceptionFrame) -> ! {
    let report = FaultReport {
        vector: frame.vector,
        error_code: frame.error_code,
        rip: frame.rip,
        cs: frame.cs,
        rflags: frame.rflags,
        rsp: frame.rsp,
        ss: frame.ss,
        cr2: cpu::read_cr2(),
        cpu: cpu::current_cpu() as u64,
        gprs: frame.gprs,
    };
    hypercall::call_with(PORT_FAULT, &report);
    cpu::halt_forever()
}
