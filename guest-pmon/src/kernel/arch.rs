//! How processes run at user privilege, isolated from the monitor, on this
//! KVM: page tables, the entry and exit trampolines, and copies to and
//! from user memory that survive bad pointers.
//!
//! Under PVM the monitor itself runs at hardware CPL3, and the U/S bit
//! denies an access from the monitor as much as one from a process
//! (measured: U/S=0 at any paging level faults both). So one page table
//! cannot hold both with the monitor protected; each vCPU has two, as
//! Linux's page-table isolation has:
//!
//! * the **kernel view** (`kpml4`): the monitor in the upper half (the
//!   alias of guest RAM in PML4 slot 511, where the image runs) plus the
//!   current process's user half, so the monitor reads and writes user
//!   memory directly;
//! * the **user view** (`upml4`): the process's user half, and in the upper
//!   half only what entering the monitor needs: the trampoline code, the
//!   GDT, TSS and IDT (read-only), this vCPU's exception stack, and two
//!   per-vCPU pages at a fixed address ([`PERCPU`]): one read-only (the
//!   kernel view's CR3, where the entry stack is) and one scratch page.
//!
//! A system call or exception from a process lands in the trampoline
//! (mapped at the same address in both views), which switches CR3 to the
//! kernel view, builds a [`TrapFrame`] on this vCPU's entry stack, saves
//! the process's extended (FPU/AVX) state and returns into the scheduler
//! loop, which called [`run_user`]. Going back is the same in reverse,
//! ending in `iretq` from the scratch page after CR3 is the user view.
//! Each CR3 write traps to the host here (about 7.5 us); the price of
//! isolation is two of them per system call.
//!
//! Every PML4 sits in an odd 4 KiB frame: with an even one, PVM emulates
//! every instruction (PVM.md).

use alloc::alloc::{alloc_zeroed, Layout};

use lego_image::cpu::virt_to_phys;
use lego_proto::boot::{upper, EXCEPTION_STACKS, EXCEPTION_STACK_SIZE, GDT, PDPT, TSS, UPPER_HALF};
use lego_proto::hypercall::TrapFrame;

const P: u64 = 1;
const W: u64 = 2;
const U: u64 = 4;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// The per-vCPU pages, at the same address in both views of each vCPU
/// (the top 2 MiB of the address space, so code can name them with a
/// sign-extended 32-bit absolute address).
pub const PERCPU: u64 = 0xffff_ffff_ffe0_0000;
/// Read-only in the user view: the kernel view's CR3, the user view's,
/// the top of the entry stack.
const RO: u64 = PERCPU;
const RO_KCR3: u64 = 0;
const RO_UCR3: u64 = 8;
const RO_ENTRY_TOP: u64 = 16;
/// Nonzero on a PVM host.
const RO_PVM: u64 = 24;
/// Writable in both, and readable by the process (it is its own data):
/// its stack pointer at a system call, and on the way out its registers
/// that SYSRET cannot carry (see `lego_user_stub`).
const RW: u64 = PERCPU + 0x1000;
const RW_USER_RSP: u64 = 0;
const RW_RAX: u64 = 8;
const RW_RIP: u64 = 16;
const RW_RFLAGS: u64 = 24;
const RW_RSP: u64 = 32;
const RW_RCX: u64 = 40;
const RW_R11: u64 = 48;
/// Nonzero: return through the stub (rcx and r11 must be the process's).
const RW_EXACT: u64 = 56;
/// The stub's own stack for its popfq.
const RW_STUB_STACK: u64 = 0x200;
/// Kernel view only: the entry stack (4 pages), the extended-state area
/// (3 pages), and the monitor's own per-vCPU words.
const ENTRY_STACK: u64 = PERCPU + 0x2000;
const ENTRY_TOP: u64 = PERCPU + 0x6000;
pub const XSAVE_AREA: u64 = PERCPU + 0x6000;
pub const XSAVE_MAX: usize = 0x3000;
const KPAGE: u64 = PERCPU + 0x9000;
const K_SCHED_RSP: u64 = 0;
const PERCPU_PAGES: u64 = 10;

/// The vector a system call is recorded with in a [`TrapFrame`].
pub const VECTOR_SYSCALL: u64 = 0x100;
/// The first vector of external interrupts (the VMM's timer).
pub const VECTOR_TIMER: u64 = 32;

pub const USER_CS: u64 = 0x33;
pub const USER_SS: u64 = 0x2b;
/// RFLAGS bits a process may set: the arithmetic flags, TF, DF, AC, ID, RF.
const USER_FLAGS: u64 = 0x25_0dd5;
const RFLAGS_IF: u64 = 0x200;

const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_FS_BASE: u32 = 0xc000_0100;
/// PVM's "run natively" MSR (PVM.md). On an ordinary KVM the write is
/// refused with #GP; the monitor only writes it when the VMM said PVM.
const MSR_PVM_NATIVE: u32 = 0x4b56_4d10;
/// What SYSCALL clears in RFLAGS (as Linux does: IF off in the monitor).
const SYSCALL_MASK: u64 = 0x25_7fd5;

// i64 forms of the addresses, for sign-extended absolute operands in asm.
const RO_I: i64 = RO as i64;
const RW_I: i64 = RW as i64;
const KPAGE_I: i64 = KPAGE as i64;
const XSAVE_I: i64 = XSAVE_AREA as i64;

core::arch::global_asm!(
    // Everything a process's view maps of the monitor's code: one
    // page-aligned section, mapped at its own address in both views.
    ".section .text.lego_tramp, \"ax\"",
    ".balign 4096",
    ".global lego_tramp_start, lego_tramp_end, lego_syscall_entry, lego_run_user",
    "lego_tramp_start:",
    // SYSCALL from a process: rcx = its rip, r11 = its rflags, rsp = its
    // stack, CR3 = the user view.
    "lego_syscall_entry:",
    "mov [{rw} + {rw_user_rsp}], rsp",
    "mov rsp, [{ro} + {ro_kcr3}]",
    "mov cr3, rsp",
    "mov rsp, [{ro} + {ro_entry_top}]",
    "push {user_ss}",
    "push qword ptr [{rw} + {rw_user_rsp}]",
    "push r11",
    "push {user_cs}",
    "push rcx",
    "push 0",
    "push {vec_syscall}",
    "jmp lego_user_trap",
    // Exceptions and interrupts: the stub pushed the vector (and a zero
    // error code where the CPU pushes none) on the exception stack.
    "lego_trap_common:",
    "test byte ptr [rsp + 24], 3",
    "jz lego_kernel_trap",
    // PVM runs an exception handler emulated (about 1.2 us an
    // instruction) until it writes its "native" MSR: do that first.
    "push rax",
    "cmp qword ptr [{ro} + {ro_pvm}], 0",
    "je 3f",
    "push rcx",
    "push rdx",
    "mov ecx, {pvm_msr}",
    "mov eax, 1",
    "xor edx, edx",
    "wrmsr",
    "pop rdx",
    "pop rcx",
    "3:",
    // The process's direction flag is in the frame; the monitor's code
    // (every rep movs and rep stos in it) assumes it clear. An interrupt
    // or exception keeps it (SYSCALL clears it through SYSCALL_MASK): left
    // set, the copy of this very frame ran backwards over the heap.
    "cld",
    "mov rax, [{ro} + {ro_kcr3}]",
    "mov cr3, rax",
    // The exception stack is mapped in both views: copy the frame to the
    // entry stack, so a fault while the monitor handles this one cannot
    // overwrite it (PVM always delivers on the TSS's RSP0).
    "mov rax, rsp",
    "mov rsp, [{ro} + {ro_entry_top}]",
    "push qword ptr [rax + 56]",
    "push qword ptr [rax + 48]",
    "push qword ptr [rax + 40]",
    "push qword ptr [rax + 32]",
    "push qword ptr [rax + 24]",
    "push qword ptr [rax + 16]",
    "push qword ptr [rax + 8]",
    "mov rax, [rax]",
    // The entry stack holds vector .. ss; save the registers in
    // TrapFrame order, then the extended state, then go back to the
    // scheduler, which called lego_run_user, with the frame in rax.
    "lego_user_trap:",
    "push r15", "push r14", "push r13", "push r12", "push r11", "push r10",
    "push r9", "push r8", "push rbp", "push rdi", "push rsi", "push rdx",
    "push rcx", "push rbx", "push rax",
    "mov eax, {xmask}",
    "xor edx, edx",
    "xsave64 [{xsave}]",
    "mov rax, rsp",
    "mov rsp, [{kpage} + {k_sched_rsp}]",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "ret",
    // fn lego_run_user() -> *mut TrapFrame: runs the process whose frame
    // lies just below the entry stack's top until it traps back.
    "lego_run_user:",
    "push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
    "mov [{kpage} + {k_sched_rsp}], rsp",
    "mov eax, {xmask}",
    "xor edx, edx",
    "xrstor64 [{xsave}]",
    "mov rsp, [{ro} + {ro_entry_top}]",
    "sub rsp, {frame_size}",
    // What SYSRET does not carry goes to the scratch page (mapped in both
    // views), then every register but rax, rcx and r11 is restored.
    "mov rax, [rsp + 136]", "mov [{rw} + {rw_rip}], rax",
    "mov rax, [rsp + 152]", "mov [{rw} + {rw_rflags}], rax",
    "mov rax, [rsp + 160]", "mov [{rw} + {rw_rsp}], rax",
    "mov rax, [rsp + 16]", "mov [{rw} + {rw_rcx}], rax",
    "mov rax, [rsp + 80]", "mov [{rw} + {rw_r11}], rax",
    "mov rax, [rsp]", "mov [{rw} + {rw_rax}], rax",
    "add rsp, 8",
    "pop rbx", "pop rcx", "pop rdx", "pop rsi", "pop rdi", "pop rbp",
    "pop r8", "pop r9", "pop r10", "pop r11", "pop r12", "pop r13", "pop r14", "pop r15",
    "mov rsp, {rw} + {rw_stub_stack}",
    "mov rax, [{ro} + {ro_ucr3}]",
    "mov cr3, rax",
    // PVM knows a return to user mode only by SYSRET (an IRETQ to CPL3
    // leaves it believing the monitor still runs: measured). After a
    // system call SYSRET is the whole return (rcx and r11 are the
    // kernel's to clobber); after an exception or interrupt it returns to
    // a stub in user mode that restores rcx, r11 and the flags exactly.
    "cmp qword ptr [{rw} + {rw_exact}], 0",
    "jne 2f",
    "mov rcx, [{rw} + {rw_rip}]",
    "mov r11, [{rw} + {rw_rflags}]",
    "mov rax, [{rw} + {rw_rax}]",
    "mov rsp, [{rw} + {rw_rsp}]",
    "sysretq",
    "2:",
    "lea rcx, [rip + lego_user_stub]",
    "mov r11, 0x202",
    "mov rax, [{rw} + {rw_rax}]",
    "sysretq",
    // In user mode, on the scratch page's own stack: the process's flags,
    // rcx, r11, stack, and where it was. If a trap lands in here the
    // monitor finishes the job (see `in_user_stub`).
    ".global lego_user_stub, lego_user_stub_end",
    "lego_user_stub:",
    "push qword ptr [{rw} + {rw_rflags}]",
    "popfq",
    "mov rcx, [{rw} + {rw_rcx}]",
    "mov r11, [{rw} + {rw_r11}]",
    "mov rsp, [{rw} + {rw_rsp}]",
    "jmp qword ptr [{rw} + {rw_rip}]",
    "lego_user_stub_end:",
    // One stub per vector.
    ".macro LEGO_TRAP n, err",
    ".balign 16",
    "lego_trap_\\n:",
    ".if \\err == 0",
    "push 0",
    ".endif",
    "push \\n",
    "jmp lego_trap_common",
    ".endm",
    ".irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31,32,33,34,35,36,37,38,39",
    "LEGO_TRAP \\n, 0",
    ".endr",
    ".irp n, 8,10,11,12,13,14,17,21,29,30",
    "LEGO_TRAP \\n, 1",
    ".endr",
    // Exceptions in the monitor itself (a fault while it copies from a
    // process's memory, or a bug), on the exception stack. The kernel view
    // is loaded first: a fault on the way out to a process (in the user
    // view) must not run the monitor's handler where it is not mapped.
    "lego_kernel_trap:",
    "push rax",
    "mov rax, [{ro} + {ro_kcr3}]",
    "mov cr3, rax",
    "pop rax",
    "push r15", "push r14", "push r13", "push r12", "push r11", "push r10",
    "push r9", "push r8", "push rbp", "push rdi", "push rsi", "push rdx",
    "push rcx", "push rbx", "push rax",
    "mov rdi, rsp",
    "cld",
    "call {handler}",
    // Back to the monitor without IRETQ: after an exception in kernel mode
    // PVM emulates every instruction (about 1.2 us each) until the native
    // MSR is written, and a native IRETQ to CS 0x10 faults (PVM.md). So:
    // write the MSR, keep RIP, RFLAGS and RSP in the scratch page (free
    // while the monitor runs: the return to a process rewrites them), as
    // the frame may lie on the interrupted stack itself; restore, switch
    // stacks, popfq; ret (the monitor has no red zone).
    "cmp qword ptr [{ro} + {ro_pvm}], 0",
    "je 4f",
    "mov ecx, {pvm_msr}",
    "mov eax, 1",
    "xor edx, edx",
    "wrmsr",
    "4:",
    "mov rax, [rsp + 136]", "mov [{rw} + {rw_rip}], rax",
    "mov rax, [rsp + 152]", "mov [{rw} + {rw_rflags}], rax",
    "mov rax, [rsp + 160]", "mov [{rw} + {rw_rsp}], rax",
    "pop rax", "pop rbx", "pop rcx", "pop rdx", "pop rsi", "pop rdi", "pop rbp",
    "pop r8", "pop r9", "pop r10", "pop r11", "pop r12", "pop r13", "pop r14", "pop r15",
    "mov rsp, [{rw} + {rw_rsp}]",
    "push qword ptr [{rw} + {rw_rip}]",
    "push qword ptr [{rw} + {rw_rflags}]",
    "popfq",
    "ret",
    ".balign 4096",
    "lego_tramp_end:",
    // The table of stubs (read by `install_idt`).
    ".section .rodata.lego_trap_table, \"a\"",
    ".balign 8",
    ".global lego_trap_table",
    "lego_trap_table:",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39",
    ".quad lego_trap_\\n",
    ".endr",
    ".text",
    ro = const RO_I,
    rw = const RW_I,
    kpage = const KPAGE_I,
    xsave = const XSAVE_I,
    ro_kcr3 = const RO_KCR3,
    ro_ucr3 = const RO_UCR3,
    ro_entry_top = const RO_ENTRY_TOP,
    ro_pvm = const RO_PVM,
    rw_user_rsp = const RW_USER_RSP,
    rw_rax = const RW_RAX,
    rw_rip = const RW_RIP,
    rw_rflags = const RW_RFLAGS,
    rw_rsp = const RW_RSP,
    rw_rcx = const RW_RCX,
    rw_r11 = const RW_R11,
    rw_exact = const RW_EXACT,
    rw_stub_stack = const RW_STUB_STACK,
    k_sched_rsp = const K_SCHED_RSP,
    user_ss = const USER_SS,
    user_cs = const USER_CS,
    vec_syscall = const VECTOR_SYSCALL,
    xmask = const XSAVE_MASK,
    frame_size = const core::mem::size_of::<TrapFrame>(),
    handler = sym kernel_trap,
    pvm_msr = const MSR_PVM_NATIVE,
);

/// The extended-state components saved for processes (XCR0 as the VMM
/// set it; see `vmm/src/hypervisor.rs`).
const XSAVE_MASK: u32 = 0xe7;

extern "C" {
    static lego_user_stub: u8;
    static lego_user_stub_end: u8;
    static lego_tramp_start: u8;
    static lego_tramp_end: u8;
    static lego_trap_table: [u64; 40];
    fn lego_syscall_entry();
    fn lego_run_user() -> *mut TrapFrame;
}

/// A fault in monitor code that touches process memory is resumed at its
/// fixup address with rax = -EFAULT; anything else is a monitor bug,
/// reported as before.
extern "C" fn kernel_trap(frame: &mut TrapFrame) {
    if frame.vector == 14 {
        if let Some(fixup) = super::uaccess::fixup(frame.rip) {
            frame.rip = fixup;
            frame.gprs[0] = (-14i64) as u64;
            return;
        }
        // A refusal the VMM delivered (its own error-code bit) for a
        // process address, met in monitor code that is no copy from
        // process memory: that code cannot have made the access, so the
        // verdict is a late duplicate (a fault the kernel reported twice to
        // the ExCache, after a tick re-ran the faulting instruction).
        // Resuming the monitor there is safe: the instruction did not
        // touch the page.
        let cr2 = lego_image::cpu::read_cr2();
        if frame.error_code & lego_proto::process::PF_REFUSED as u64 != 0
            && cr2 < lego_proto::boot::UPPER_HALF
            && frame.rip >= lego_proto::boot::UPPER_HALF
        {
            return;
        }
    }
    let report = lego_proto::hypercall::FaultReport::from_frame(
        frame,
        lego_image::cpu::read_cr2(),
        lego_image::cpu::current_cpu() as u64,
    );
    lego_image::hypercall::call_with(lego_proto::hypercall::PORT_FAULT, &report);
    lego_image::cpu::halt_forever()
}

fn page() -> *mut u64 {
    let layout = Layout::from_size_align(4096, 4096).unwrap_or_else(|_| unreachable!());
    // SAFETY: a non-zero-sized layout.
    let p = unsafe { alloc_zeroed(layout) } as *mut u64;
    assert!(!p.is_null(), "out of memory for page tables");
    p
}

/// A zeroed page in an odd 4 KiB frame, for a PML4 (PVM.md).
fn odd_page() -> *mut u64 {
    let layout = Layout::from_size_align(8192, 8192).unwrap_or_else(|_| unreachable!());
    // SAFETY: a non-zero-sized layout.
    let p = unsafe { alloc_zeroed(layout) };
    assert!(!p.is_null(), "out of memory for page tables");
    // SAFETY: inside the 8 KiB block; the first half stays unused.
    let odd = unsafe { p.add(4096) } as *mut u64;
    debug_assert!(virt_to_phys(odd as u64) & 0x1000 != 0);
    odd
}

fn phys(p: *mut u64) -> u64 {
    virt_to_phys(p as u64)
}

/// The table `table[index]` points at, made if absent.
fn next(table: *mut u64, index: u64) -> *mut u64 {
    // SAFETY: `table` is a live page-table page; index < 512.
    let e = unsafe { &mut *table.add(index as usize) };
    if *e & P != 0 {
        return upper(*e & ADDR) as *mut u64;
    }
    let t = page();
    *e = phys(t) | P | W | U;
    t
}

/// Maps the 4 KiB page at `va` to `pa` under the slot-511 table `pdpt`.
fn map(pdpt: *mut u64, va: u64, pa: u64, writable: bool) {
    let pd = next(pdpt, (va >> 30) & 511);
    let pt = next(pd, (va >> 21) & 511);
    // SAFETY: a page table made by `next`; index < 512.
    unsafe { *pt.add(((va >> 12) & 511) as usize) = pa | P | U | if writable { W } else { 0 } };
}

/// One vCPU's two views.
pub struct Views {
    pub kpml4: *mut u64,
    pub upml4: *mut u64,
}

// SAFETY: the tables are the vCPU's own; they move between vCPU threads
// only inside the kernel's lock.
unsafe impl Send for Views {}

/// Writes a model-specific register (a trapped instruction: setup only).
fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the registers written here are LSTAR, SFMASK and FS_BASE.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32,
            in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Builds this vCPU's views, its IDT (shared: built by vCPU 0) and its
/// SYSCALL entry, and switches to its kernel view. `idt` is the IDT page.
pub fn init_cpu(cpu: u32, idt: *mut u64, pvm: bool) -> Views {
    let kpml4 = odd_page();
    let upml4 = odd_page();
    // Kernel view: slot 511 is a copy of the VMM's alias of RAM, plus this
    // vCPU's pages at the top.
    let kpdpt = page();
    // SAFETY: the VMM's PDPT (one page) and our fresh one.
    unsafe { core::ptr::copy_nonoverlapping(upper(PDPT) as *const u64, kpdpt, 512) };
    let upper_pdpt = page();
    let percpu: [u64; PERCPU_PAGES as usize] = core::array::from_fn(|_| phys(page()));
    for (i, &pa) in percpu.iter().enumerate() {
        map(kpdpt, PERCPU + 4096 * i as u64, pa, true);
    }
    // User view: what entering the monitor touches.
    map(upper_pdpt, RO, percpu[0], false);
    map(upper_pdpt, RW, percpu[1], true);
    // SAFETY: linker-provided symbols bounding the trampoline section.
    let (start, end) = unsafe {
        (
            &lego_tramp_start as *const u8 as u64,
            &lego_tramp_end as *const u8 as u64,
        )
    };
    let mut va = start;
    while va < end {
        map(upper_pdpt, va, va - UPPER_HALF, false);
        va += 4096;
    }
    map(upper_pdpt, upper(GDT), GDT, false);
    map(upper_pdpt, upper(TSS), TSS, false);
    map(upper_pdpt, idt as u64, phys(idt), false);
    let stack = EXCEPTION_STACKS + cpu as u64 * EXCEPTION_STACK_SIZE;
    let mut s = stack;
    while s < stack + EXCEPTION_STACK_SIZE {
        map(upper_pdpt, upper(s), s, true);
        s += 4096;
    }
    // SAFETY: fresh PML4s.
    unsafe {
        *kpml4.add(511) = phys(kpdpt) | P | W | U;
        *upml4.add(511) = phys(upper_pdpt) | P | W | U;
    }
    // The read-only page, written through the RAM alias.
    let ro = upper(percpu[0]) as *mut u64;
    // SAFETY: our fresh page.
    unsafe {
        *ro.add((RO_KCR3 / 8) as usize) = phys(kpml4);
        *ro.add((RO_UCR3 / 8) as usize) = phys(upml4);
        *ro.add((RO_ENTRY_TOP / 8) as usize) = ENTRY_TOP;
        *ro.add((RO_PVM / 8) as usize) = pvm as u64;
    }
    let _ = ENTRY_STACK;
    // SAFETY: switching to a view that maps everything the monitor uses
    // (its image, heap and stacks live in the RAM alias).
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) phys(kpml4), options(nostack, preserves_flags));
        let pointer = IdtPointer {
            limit: 256 * 16 - 1,
            base: idt as u64,
        };
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags));
    }
    wrmsr(MSR_LSTAR, lego_syscall_entry as *const () as u64);
    wrmsr(MSR_SYSCALL_MASK, SYSCALL_MASK);
    Views { kpml4, upml4 }
}

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

/// Builds the IDT every vCPU loads: the trampoline's stubs for vectors
/// 0..40 (int3 allowed from user mode), interrupt gates on IST1 (ordinary
/// KVM; PVM always uses RSP0, the same stack).
pub fn build_idt() -> *mut u64 {
    let idt = page();
    // SAFETY: a linker-provided table of 40 addresses.
    let table = unsafe { &lego_trap_table };
    for (v, &handler) in table.iter().enumerate() {
        let dpl: u64 = if v == 3 { 3 } else { 0 };
        // SAFETY: our fresh page; 2 * v + 1 < 512.
        unsafe {
            *idt.add(2 * v) = (handler & 0xffff)
                | (0x10 << 16)
                | (1 << 32)
                | ((0x8e | (dpl << 5)) << 40)
                | (((handler >> 16) & 0xffff) << 48);
            *idt.add(2 * v + 1) = handler >> 32;
        }
    }
    idt
}

/// Makes the user half of both views the process's: `entries` are its
/// PML4 entries for slots 0.. (its top-level tables). Reloads CR3, so no
/// translation of the process that ran before survives.
///
/// Only entries that differ are written: the PML4s are shadowed by KVM
/// under shadow paging (PVM), so each write to one is a page fault and an
/// emulated instruction, about 5 us; clearing all 256 entries of both
/// views when a process ended took 3 ms of each fork, exit and wait.
pub fn switch_user_half(views: &Views, entries: &[u64]) {
    for (i, &e) in entries.iter().enumerate().take(256) {
        for pml4 in [views.kpml4, views.upml4] {
            // SAFETY: this vCPU's own PML4s; i < 256.
            unsafe {
                let slot = pml4.add(i);
                if core::ptr::read_volatile(slot) != e {
                    core::ptr::write_volatile(slot, e);
                }
            }
        }
    }
    // SAFETY: the kernel view maps everything the monitor uses.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) phys(views.kpml4), options(nostack, preserves_flags))
    };
}

/// A process's state while the monitor holds it: its registers in a
/// TrapFrame, its FS base, its extended state.
pub struct UserContext {
    pub frame: TrapFrame,
    pub fs_base: u64,
    pub xsave: alloc::boxed::Box<[u8]>,
    /// rcx and r11 must come back exactly (after an exception, an
    /// interrupt or rt_sigreturn); after a system call they need not.
    pub exact: bool,
}

impl UserContext {
    pub fn new(xsave_size: usize) -> UserContext {
        let mut xsave = alloc::vec![0u8; xsave_size].into_boxed_slice();
        // A clean x87/SSE state: FCW 0x37f, MXCSR 0x1f80 (as Linux starts
        // a program).
        xsave[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        xsave[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        UserContext {
            frame: TrapFrame {
                cs: USER_CS,
                ss: USER_SS,
                rflags: RFLAGS_IF | 2,
                ..Default::default()
            },
            fs_base: 0,
            xsave,
            exact: false,
        }
    }
}

/// Runs the process in `ctx` on this vCPU (whose user half must be its)
/// until it makes a system call, faults or is interrupted; `ctx` then
/// holds its state at that point.
pub fn run_user(ctx: &mut UserContext) {
    let f = &mut ctx.frame;
    f.cs = USER_CS;
    f.ss = USER_SS;
    f.rflags = (f.rflags & USER_FLAGS) | RFLAGS_IF | 2;
    let n = ctx.xsave.len().min(XSAVE_MAX);
    // SAFETY: this vCPU's own pages, mapped in the kernel view at fixed
    // addresses: the frame goes just below the entry stack's top, the
    // extended state into the XSAVE area.
    unsafe {
        let at = (ENTRY_TOP as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame;
        at.write(*f);
        core::ptr::copy_nonoverlapping(ctx.xsave.as_ptr(), XSAVE_AREA as *mut u8, n);
        ((RW + RW_EXACT) as *mut u64).write(ctx.exact as u64);
        write_fs_base(ctx.fs_base);
        let back = lego_run_user();
        ctx.frame = *back;
        core::ptr::copy_nonoverlapping(XSAVE_AREA as *const u8, ctx.xsave.as_mut_ptr(), n);
    }
    ctx.fs_base = read_fs_base();
    if ctx.frame.vector == VECTOR_SYSCALL {
        ctx.exact = false;
    } else {
        ctx.exact = true;
        finish_stub(&mut ctx.frame);
    }
}

/// A trap that caught the process inside `lego_user_stub` (before it
/// reached its own code again): what the stub would have done, done, so
/// the thread resumes where it was meant to even if another thread uses
/// this vCPU's scratch page first.
fn finish_stub(f: &mut TrapFrame) {
    // SAFETY: linker-provided labels; this vCPU's scratch page, which
    // still holds this thread's values (nothing ran here since).
    unsafe {
        let (start, end) = (
            &lego_user_stub as *const u8 as u64,
            &lego_user_stub_end as *const u8 as u64,
        );
        if !(start..end).contains(&f.rip) {
            return;
        }
        let rw = |off: u64| ((RW + off) as *const u64).read();
        f.rip = rw(RW_RIP);
        f.rflags = rw(RW_RFLAGS);
        f.rsp = rw(RW_RSP);
        f.gprs[2] = rw(RW_RCX);
        f.gprs[10] = rw(RW_R11);
    }
}

/// Whether the CPU has RDFSBASE/WRFSBASE (CPUID.7.0:EBX bit 0), checked once.
fn fsgsbase() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let has = core::arch::x86_64::__cpuid_count(7, 0).ebx & 1 != 0;
            KNOWN.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
    }
}

fn write_fs_base(v: u64) {
    if fsgsbase() {
        // SAFETY: writes FS's base (the process's TLS pointer).
        unsafe { core::arch::asm!("wrfsbase {}", in(reg) v, options(nostack, preserves_flags)) };
    } else {
        wrmsr(MSR_FS_BASE, v);
    }
}

fn read_fs_base() -> u64 {
    if fsgsbase() {
        let v: u64;
        // SAFETY: reads FS's base.
        unsafe { core::arch::asm!("rdfsbase {}", out(reg) v, options(nostack, preserves_flags)) };
        return v;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: reads FS_BASE.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") MSR_FS_BASE, out("eax") lo, out("edx") hi,
            options(nostack, preserves_flags))
    };
    (hi as u64) << 32 | lo as u64
}
