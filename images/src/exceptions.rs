//! The exception entry points. The VMM builds the IDT from
//! `lego_isr_table` (see `lego_proto::boot::IDT`); this module provides what
//! the gates point at.
//!
//! Every entry runs on the vCPU's exception stack (IST1 on ordinary KVM,
//! TSS RSP0 under PVM; both are the same upper-half stack). #DB and #BP go
//! to the VMM's debugger and come back; every other exception is reported to
//! the VMM (vector, error code, RIP, CR2, registers), which stops the
//! component: nothing in a monitor is expected to fault.

use lego_proto::hypercall::{FaultReport, TrapFrame, PORT_FAULT};

use crate::{cpu, hypercall};

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

// One stub per vector: push a zero error code where the CPU pushes none, push
// the vector, save the registers in `GPR_NAMES` order (a `TrapFrame`).
// Vectors 1 (#DB) and 3 (#BP) hand the frame to the VMM's debugger with a
// PORT_DEBUG hypercall (0x607), then restore it (the debugger may have
// changed it) and return. The frame is on the upper-half exception stack, so
// its guest-physical address is RSP minus UPPER_HALF.
core::arch::global_asm!(
    ".macro LEGO_ISR n, err, common",
    ".align 16",
    "lego_isr_\\n:",
    ".if \\err == 0",
    "push 0",
    ".endif",
    "push \\n",
    "jmp \\common",
    ".endm",
    "LEGO_ISR 0,0,lego_isr_fatal", "LEGO_ISR 1,0,lego_isr_debug",
    "LEGO_ISR 2,0,lego_isr_fatal", "LEGO_ISR 3,0,lego_isr_debug",
    "LEGO_ISR 4,0,lego_isr_fatal", "LEGO_ISR 5,0,lego_isr_fatal",
    "LEGO_ISR 6,0,lego_isr_fatal", "LEGO_ISR 7,0,lego_isr_fatal",
    "LEGO_ISR 8,1,lego_isr_fatal", "LEGO_ISR 9,0,lego_isr_fatal",
    "LEGO_ISR 10,1,lego_isr_fatal", "LEGO_ISR 11,1,lego_isr_fatal",
    "LEGO_ISR 12,1,lego_isr_fatal", "LEGO_ISR 13,1,lego_isr_fatal",
    "LEGO_ISR 14,1,lego_isr_fatal", "LEGO_ISR 15,0,lego_isr_fatal",
    "LEGO_ISR 16,0,lego_isr_fatal", "LEGO_ISR 17,1,lego_isr_fatal",
    "LEGO_ISR 18,0,lego_isr_fatal", "LEGO_ISR 19,0,lego_isr_fatal",
    "LEGO_ISR 20,0,lego_isr_fatal", "LEGO_ISR 21,1,lego_isr_fatal",
    "LEGO_ISR 22,0,lego_isr_fatal", "LEGO_ISR 23,0,lego_isr_fatal",
    "LEGO_ISR 24,0,lego_isr_fatal", "LEGO_ISR 25,0,lego_isr_fatal",
    "LEGO_ISR 26,0,lego_isr_fatal", "LEGO_ISR 27,0,lego_isr_fatal",
    "LEGO_ISR 28,0,lego_isr_fatal", "LEGO_ISR 29,1,lego_isr_fatal",
    "LEGO_ISR 30,1,lego_isr_fatal", "LEGO_ISR 31,0,lego_isr_fatal",
    ".macro LEGO_SAVE",
    "push r15", "push r14", "push r13", "push r12", "push r11", "push r10",
    "push r9", "push r8", "push rbp", "push rdi", "push rsi", "push rdx",
    "push rcx", "push rbx", "push rax",
    ".endm",
    "lego_isr_fatal:",
    "LEGO_SAVE",
    "mov rdi, rsp",
    "cld",
    "and rsp, -16",
    "call {fatal}",
    "ud2",
    // The VMM must not stop a vCPU between these labels: it lets one before
    // the hypercall run on to it, and completes the return for one after.
    ".global lego_isr_1, lego_isr_3, lego_isr_debug, lego_isr_debug_resume, lego_isr_debug_end",
    "lego_isr_debug:",
    "LEGO_SAVE",
    "mov rax, rsp",
    "movabs rdx, {upper}",
    "sub rax, rdx",
    "mov edx, {port}",
    "out dx, eax",
    "lego_isr_debug_resume:",
    "pop rax", "pop rbx", "pop rcx", "pop rdx", "pop rsi", "pop rdi", "pop rbp",
    "pop r8", "pop r9", "pop r10", "pop r11", "pop r12", "pop r13", "pop r14", "pop r15",
    "add rsp, 16",
    "iretq",
    "lego_isr_debug_end:",
    ".section .rodata.lego_isr_table, \"a\"",
    ".align 8",
    ".global lego_isr_table",
    "lego_isr_table:",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    ".quad lego_isr_\\n",
    ".endr",
    ".text",
    fatal = sym exception_handler,
    upper = const lego_proto::boot::UPPER_HALF,
    port = const lego_proto::hypercall::PORT_DEBUG,
);

/// Loads an empty IDT, so that the next exception triple-faults. Tests only.
pub fn load_empty_idt() {
    let pointer = IdtPointer { limit: 0, base: 0 };
    // SAFETY: deliberately breaks exception delivery; the caller faults next.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags))
    };
}

extern "C" fn exception_handler(frame: &TrapFrame) -> ! {
    let report = FaultReport::from_frame(frame, cpu::read_cr2(), cpu::current_cpu() as u64);
    hypercall::call_with(PORT_FAULT, &report);
    cpu::halt_forever()
}
