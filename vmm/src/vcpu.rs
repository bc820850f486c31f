//! One thread per vCPU: run it, handle its exits, and tell the main thread
//! what happened through [`Event`]s. Each exit to us costs about 50 us under
//! PVM, so the loop counts them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use kvm_ioctls::{VcpuExit, VcpuFd};
use lego_proto::hypercall::*;
use vm_memory::{Bytes, GuestAddress};
use zerocopy::FromBytes;

use crate::debug::{Command, DebugLink, GuestRegs, StopEvent, StopKind};
use crate::error::VmmError;
use crate::loader::Symbols;
use crate::memory::GuestRam;
use crate::report::{self, Registers, Who};
use crate::stats::VcpuStats;

/// What every vCPU thread shares.
pub struct Shared {
    /// Processor: the user's program, when it runs one.
    pub program: Option<Arc<crate::program::Program>>,
    pub ram: GuestRam,
    /// Storage: its disk, with `--disk`.
    pub block: Option<Arc<crate::block::Block>>,
    /// This component's end of the fabric, with `--id`.
    pub fabric: Option<Arc<crate::fabric::Fabric>>,
    pub mem_size: u64,
    pub role: &'static str,
    pub image: String,
    pub image_path: std::path::PathBuf,
    pub debug_handler: Option<crate::loader::DebugHandler>,
    pub symbols: Symbols,
    /// Exits to this process, all vCPUs together.
    pub exits: AtomicU64,
    /// Every vCPU's KVM counters (for the report at a program's end).
    pub vcpu_stats: Vec<crate::stats::VcpuStats>,
    /// Processor: the ExCache that serves its processes' memory.
    pub excache: Option<Arc<crate::excache::ExCache>>,
    /// The VM runs under PVM (see `hypervisor::enable_pvm_native`).
    pub pvm: bool,
    /// Where process memory lies in guest-physical space (None when the
    /// CPU's addresses are too narrow for one).
    pub window: Option<lego_proto::process::Window>,
    pub tsc_khz: u32,
    /// The workload process's home memory component (for messages).
    pub workload_home: u32,
    /// Processor running a program: its storage component, 0 for none.
    pub storage: u32,
}

/// What a vCPU thread (or the signal thread) tells the main thread.
pub enum Event {
    Booted {
        cpu: u32,
        at: Instant,
    },
    ComputeBegin {
        at: Instant,
    },
    SelfTestDone {
        report: SelfTestReport,
        at: Instant,
        /// Instructions KVM emulated on this vCPU since it started.
        emulated: Option<u64>,
        kernel_exits: Option<u64>,
    },
    GuestExit {
        code: u32,
    },
    Halted {
        cpu: u32,
    },
    /// The guest failed; the text is the whole report.
    Failed(String),
    /// The built-in workload finished.
    WorkloadDone(lego_proto::process::WorkloadReport),
    /// The user's program is over.
    ProgramExit(lego_proto::program::ProgramExit, Vec<u8>),
    /// The VMM failed.
    Error(VmmError),
    Signal(i32),
}

pub struct VcpuThread {
    pub vcpu: VcpuFd,
    pub cpu: u32,
    pub shared: Arc<Shared>,
    pub events: Sender<Event>,
    pub stats: Option<VcpuStats>,
    /// Present when a debugger may attach (`--gdb`).
    pub debug: Option<DebugLink>,
    /// The trap frame of the last debug stop, for a vCPU caught on its way
    /// back out of the guest's debug handler.
    pub last_frame: Option<u64>,
    /// Where KVM last failed to emulate (a retry there is not retried again).
    pub last_emulation_failure: Option<u64>,
    /// The last KVM_RUN ended by a signal (a kick): only then was the vCPU
    /// possibly blocked on a fault the ExCache gave a verdict for.
    pub kicked: bool,
    /// Where the ExCache leaves word of a fault this vCPU waits on.
    pub mailbox: Option<Arc<crate::excache::Mailbox>>,
}

/// A vCPU's answers to `verdict::Where`, each an ioctl.
struct VcpuWhere<'a>(&'a VcpuThread);

impl crate::verdict::Where for VcpuWhere<'_> {
    fn kicked(&self) -> bool {
        self.0.kicked
    }
    fn in_process(&self) -> bool {
        self.0.runs_process()
    }
    fn may_wait(&self) -> bool {
        self.0.may_wait_on_process_memory()
    }
    fn exception_pending(&self) -> bool {
        self.0.exception_to_deliver()
    }
}

/// Where a vCPU is relative to the guest's debug handler.
enum HandlerPosition {
    Outside,
    BeforeHypercall,
    AfterHypercall,
}

/// What one exit means for the run loop.
enum Next {
    Continue,
    Stop,
}

impl VcpuThread {
    pub fn run(mut self) {
        self.mailbox = self.shared.excache.as_ref().map(|c| c.register_vcpu());
        if let Some(m) = &self.mailbox {
            m.kick.register(&mut self.vcpu.get_kvm_run().immediate_exit);
        }
        let preempt = self.shared.program.as_ref().map(|p| p.preempt.clone());
        if let Some(p) = &preempt {
            p.register(self.cpu, &mut self.vcpu.get_kvm_run().immediate_exit);
        }
        self.run_loop();
        if let Some(p) = &preempt {
            p.unregister(self.cpu);
        }
        if let Some(m) = &self.mailbox {
            m.kick.unregister();
        }
        if let Some(link) = &self.debug {
            link.alive.store(false, Ordering::Release);
        }
    }

    fn run_loop(&mut self) {
        let emulated_at_start = self.stats.as_ref().and_then(VcpuStats::insn_emulation);
        let preempt = self.shared.program.as_ref().map(|p| p.preempt.clone());
        loop {
            if self.stop_requested() {
                match self.handler_position() {
                    // It is about to stop in its handler's hypercall anyway.
                    HandlerPosition::BeforeHypercall => {}
                    HandlerPosition::AfterHypercall => {
                        self.finish_handler_return();
                        if let Next::Stop = self.debug_stop(StopKind::Requested, None) {
                            return;
                        }
                    }
                    HandlerPosition::Outside => {
                        if let Next::Stop = self.debug_stop(StopKind::Requested, None) {
                            return;
                        }
                    }
                }
            }
            // Cleared before looking for a verdict or a preemption: one
            // left from now on ends the next KVM_RUN at once (kick.rs).
            self.vcpu.get_kvm_run().immediate_exit = 0;
            if let Some(next) = self.take_verdict() {
                if let Next::Stop = next {
                    return;
                }
                continue;
            }
            if let Some(p) = &preempt {
                if p.take(self.cpu) {
                    self.interrupt_process(p);
                }
            }
            let exit = self.vcpu.run();
            self.kicked =
                matches!(&exit, Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN);
            self.shared.exits.fetch_add(1, Ordering::Relaxed);
            // A process may execute anything: under PVM even `out`, `hlt`
            // and `int n` at user privilege reach the VMM (PVM.md). Only
            // the monitor, in the upper half, speaks to the VMM; a process
            // doing so gets #GP, as on hardware.
            let next = match exit {
                Ok(VcpuExit::IoOut(port, data)) => {
                    let value = data
                        .iter()
                        .rev()
                        .fold(0u32, |acc, &b| (acc << 8) | b as u32);
                    if self.runs_process() {
                        self.refused_from_process("an out instruction")
                    } else {
                        self.hypercall(port, value, emulated_at_start)
                    }
                }
                Ok(VcpuExit::IoIn(port, data)) => {
                    // Nothing lives behind any port; reads see a floating bus.
                    data.fill(0xff);
                    if self.runs_process() {
                        self.refused_from_process("an in instruction")
                    } else {
                        log::debug!("vCPU {} read port {port:#x}; no device there", self.cpu);
                        Next::Continue
                    }
                }
                Ok(VcpuExit::Hlt) => {
                    if self.runs_process() {
                        self.refused_from_process("hlt")
                    } else {
                        self.halted()
                    }
                }
                Ok(VcpuExit::Shutdown) => self.fail_with_state_and_cause(
                    "triple-faulted (an exception occurred while the CPU could not deliver another; KVM_EXIT_SHUTDOWN), so the vector is unknown; last state",
                    self.program_may_be_why(),
                ),
                Ok(VcpuExit::MmioRead(addr, _)) | Ok(VcpuExit::MmioWrite(addr, _)) => {
                    let window = self.shared.window;
                    let what = if window.is_some_and(|w| w.decode(addr).is_some()) {
                        format!("accessed guest-physical address {addr:#x}, in the process window, where no vRegion was set up (PORT_VREGION)")
                    } else {
                        format!(
                        "accessed guest-physical address {addr:#x}, which is neither RAM (--mem is {:#x} bytes) nor a device",
                        self.shared.mem_size
                    )
                    };
                    self.fail_with_state(&what)
                }
                Ok(VcpuExit::X86Wrmsr(exit)) => {
                    let (index, data) = (exit.index, exit.data);
                    self.guarded_msr_write(index, data)
                }
                Ok(VcpuExit::FailEntry(reason, cpu)) => self.fail_with_state(&format!(
                    "could not be entered by KVM (hardware entry failure reason {reason:#x} on host CPU {cpu})"
                )),
                Ok(VcpuExit::InternalError) => {
                    if self.runs_process() {
                        self.process_emulation_failed()
                    } else {
                        match self.int3_under_emulation() {
                            Some(rip) if self.debug.is_some() => {
                                self.debug_stop(StopKind::Trap { vector: 3, rip }, None)
                            }
                            Some(_) => self.fail_with_state(
                                "stopped on an exception meant for a debugger, but none is attached (start lego-vmm with --gdb ADDR): breakpoint (#BP), vector 3, met while KVM was emulating; state at the int3",
                            ),
                            None => self.emulation_failed(),
                        }
                    }
                }
                Ok(other) => {
                    let what = format!("made an exit this VMM does not handle: {other:?}");
                    self.fail_with_state(&what)
                }
                // Kicked: by the debugger, or by the ExCache with a verdict
                // (taken at the top of the loop).
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Next::Continue,
                Err(e) => {
                    self.send(Event::Error(VmmError::Kvm {
                        what: "run the vCPU",
                        source: e,
                    }));
                    Next::Stop
                }
            };
            if let Next::Stop = next {
                return;
            }
        }
    }

    /// Acts on what the ExCache left for this vCPU, if anything: a page
    /// fault for the guest at the instruction that faulted (the vCPU left
    /// KVM right there, kicked out of the fault it waited on), or a stop
    /// (the rules: `verdict::decide`).
    fn take_verdict(&mut self) -> Option<Next> {
        use crate::verdict::Act;
        let verdict = self.mailbox.as_ref()?.take()?;
        let decision = crate::verdict::decide(verdict, &VcpuWhere(self));
        if let (Some((slot, va)), Some(c)) = (decision.end_scratch, &self.shared.excache) {
            c.end_scratch(slot, va);
        }
        Some(match decision.act {
            Act::Fail(text) => self.fail(text),
            Act::Nothing => Next::Continue,
            Act::Stale { va } => {
                log::debug!(
                    "vCPU {}: a stale verdict for {va:#x} dropped (the vCPU was not waiting on it)",
                    self.cpu
                );
                Next::Continue
            }
            Act::Inject(fault) => match self.inject_page_fault(&fault) {
                Ok(()) => Next::Continue,
                Err(e) => self.fail_with_state(&format!(
                    "could not be given the page fault of its access to {:#x} ({e})",
                    fault.va
                )),
            },
        })
    }

    /// Interrupts the process this vCPU runs, if it runs one (nothing is
    /// injected into monitor code, nor on top of a pending event).
    fn interrupt_process(&mut self, preempt: &crate::preempt::Preempt) {
        if !self.runs_process() {
            return;
        }
        let Ok(mut events) = self.vcpu.get_vcpu_events() else {
            return;
        };
        if events.exception.injected != 0
            || events.exception.pending != 0
            || events.interrupt.injected != 0
            || events.nmi.injected != 0
        {
            return;
        }
        events.interrupt.injected = 1;
        events.interrupt.nr = crate::preempt::VECTOR_TIMER;
        events.interrupt.soft = 0;
        events.interrupt.shadow = 0;
        if self.vcpu.set_vcpu_events(&events).is_ok() {
            preempt.restart_clock(self.cpu);
        }
    }

    /// Whether the vCPU can be waiting on an access to a process's memory
    /// where it is (`ExCache::may_wait_at`).
    fn may_wait_on_process_memory(&self) -> bool {
        match (self.vcpu.get_regs(), &self.shared.excache) {
            (Ok(regs), Some(c)) => c.may_wait_at(regs.rip),
            _ => true,
        }
    }

    /// Whether an exception waits to be delivered on the next entry.
    fn exception_to_deliver(&self) -> bool {
        self.vcpu
            .get_vcpu_events()
            .is_ok_and(|e| e.exception.injected != 0 || e.exception.pending != 0)
    }

    /// Whether the vCPU is running a process (lower-half code) rather than
    /// the monitor.
    fn runs_process(&self) -> bool {
        self.vcpu
            .get_regs()
            .is_ok_and(|r| r.rip < lego_proto::boot::UPPER_HALF)
    }

    /// A process executed a privileged instruction: #GP(0), which its
    /// monitor turns into SIGSEGV. The instruction is not retried: RIP is
    /// where KVM left it (past an in/out/hlt).
    fn refused_from_process(&mut self, what: &str) -> Next {
        log::debug!("vCPU {}: a process executed {what}; #GP", self.cpu);
        match self.inject_exception(13, Some(0)) {
            Ok(()) => Next::Continue,
            Err(e) => {
                self.fail_with_state(&format!("could not give a process #GP for {what} ({e})"))
            }
        }
    }

    fn inject_exception(&mut self, nr: u8, error_code: Option<u32>) -> Result<(), String> {
        let mut events = self.vcpu.get_vcpu_events().map_err(|e| e.to_string())?;
        // A tick injected before this exit and not yet delivered would be
        // delivered together with it, mixed (PVM gave vector 32 the
        // exception's error code); the next tick comes anyway.
        events.interrupt.injected = 0;
        events.exception.injected = 1;
        events.exception.nr = nr;
        events.exception.has_error_code = u8::from(error_code.is_some());
        events.exception.error_code = error_code.unwrap_or(0);
        self.vcpu
            .set_vcpu_events(&events)
            .map_err(|e| e.to_string())
    }

    /// Injects #PF with CR2 = the fault's address and its error code
    /// (`verdict::error_code`).
    fn inject_page_fault(&mut self, fault: &crate::verdict::Fault) -> Result<(), String> {
        let mut sregs = self.vcpu.get_sregs().map_err(|e| e.to_string())?;
        let rip = self.vcpu.get_regs().map_err(|e| e.to_string())?.rip;
        // PVM runs the monitor at hardware CPL3 and, when a vCPU leaves
        // KVM_RUN while blocked on a host page fault in monitor code,
        // reports the hardware's user CS: writing that back would switch
        // PVM to user mode and deliver the fault through its (unset) user
        // event entry (measured: a jump to 0). Monitor code lies in the
        // upper half, processes in the lower.
        let user = rip < lego_proto::boot::UPPER_HALF;
        if !user && sregs.cs.selector & 3 == 3 {
            sregs.cs = crate::boot::segment(lego_proto::boot::SEL_CODE64, true);
            sregs.ss = crate::boot::segment(lego_proto::boot::SEL_DATA, false);
        }
        sregs.cr2 = fault.va;
        self.vcpu.set_sregs(&sregs).map_err(|e| e.to_string())?;
        let mut events = self.vcpu.get_vcpu_events().map_err(|e| e.to_string())?;
        // As in inject_exception: no undelivered tick along with it.
        events.interrupt.injected = 0;
        events.exception.injected = 1;
        events.exception.nr = 14;
        events.exception.has_error_code = 1;
        events.exception.error_code = crate::verdict::error_code(fault, user);
        self.vcpu
            .set_vcpu_events(&events)
            .map_err(|e| e.to_string())
    }

    /// After a single step (and around other emulated instructions) PVM
    /// goes on emulating for a while, and its emulator cannot execute int3:
    /// a breakpoint met then ends in KVM_EXIT_INTERNAL_ERROR instead of #BP.
    /// An internal error on an int3 byte is that #BP. Under a debugger, step
    /// RIP past it as the CPU would; without one, leave the state at the
    /// int3 for the report.
    fn int3_under_emulation(&self) -> Option<u64> {
        let mut regs = self.vcpu.get_regs().ok()?;
        let cr3 = self.vcpu.get_sregs().ok()?.cr3;
        let (phys, _) = crate::paging::translate(&self.shared.ram, cr3, regs.rip)?;
        let byte: u8 = self.shared.ram.read_obj(GuestAddress(phys)).ok()?;
        if byte != 0xcc {
            return None;
        }
        log::debug!(
            "vCPU {}: int3 at {:#x} met under emulation",
            self.cpu,
            regs.rip
        );
        if self.debug.is_some() {
            regs.rip = regs.rip.wrapping_add(1);
            self.vcpu.set_regs(&regs).ok()?;
        }
        Some(regs.rip)
    }

    /// KVM could not emulate an instruction. Under PVM that happens when
    /// it is still emulating after a single step and meets an instruction
    /// its emulator lacks; asking for native execution again and retrying
    /// runs it on the CPU. A second failure at the same place is real.
    fn emulation_failed(&mut self) -> Next {
        let rip = self.vcpu.get_regs().map(|r| r.rip).ok();
        if rip.is_some() && rip != self.last_emulation_failure {
            self.last_emulation_failure = rip;
            if crate::hypervisor::enable_pvm_native(&self.vcpu).unwrap_or(false) {
                log::debug!(
                    "vCPU {}: emulation failed at {rip:x?}; retrying natively",
                    self.cpu
                );
                return Next::Continue;
            }
        }
        self.fail_with_state("hit a KVM internal error (KVM could not emulate an instruction)")
    }

    /// A write to one of the MSRs the VMM guards (hypervisor.rs): done for
    /// the monitor, #GP for a process.
    fn guarded_msr_write(&mut self, index: u32, data: u64) -> Next {
        let refused = if self.runs_process() {
            log::debug!("vCPU {}: a process wrote MSR {index:#x}; #GP", self.cpu);
            true
        } else {
            let entry = kvm_bindings::kvm_msr_entry {
                index,
                data,
                ..Default::default()
            };
            let done = kvm_bindings::Msrs::from_entries(&[entry])
                .ok()
                .and_then(|msrs| self.vcpu.set_msrs(&msrs).ok());
            done != Some(1)
        };
        // KVM injects #GP on the next entry when the exit says so.
        // SAFETY: the exit was KVM_EXIT_X86_WRMSR, so `msr` is the
        // union's live member until the next KVM_RUN.
        self.vcpu.get_kvm_run().__bindgen_anon_1.msr.error = u8::from(refused);
        Next::Continue
    }

    /// KVM could not run an instruction of a process (under PVM: `int n`
    /// for n other than 3, or anything its emulator lacks right after an
    /// emulated stretch): retried natively once, then #GP, so the process
    /// gets SIGSEGV and the component lives on.
    fn process_emulation_failed(&mut self) -> Next {
        let rip = self.vcpu.get_regs().map(|r| r.rip).ok();
        if rip.is_some() && rip != self.last_emulation_failure {
            self.last_emulation_failure = rip;
            if crate::hypervisor::enable_pvm_native(&self.vcpu).unwrap_or(false) {
                return Next::Continue;
            }
        }
        self.last_emulation_failure = None;
        self.refused_from_process("an instruction KVM cannot run (such as int n)")
    }

    fn handler_position(&self) -> HandlerPosition {
        let (Some(handler), Ok(regs)) = (&self.shared.debug_handler, self.vcpu.get_regs()) else {
            return HandlerPosition::Outside;
        };
        if handler
            .before_hypercall
            .iter()
            .any(|r| r.contains(&regs.rip))
        {
            HandlerPosition::BeforeHypercall
        } else if handler.after_hypercall.contains(&regs.rip) {
            HandlerPosition::AfterHypercall
        } else {
            HandlerPosition::Outside
        }
    }

    /// Does what the rest of the debug handler would: restore the
    /// registers from the trap frame and return to where the trap happened.
    fn finish_handler_return(&mut self) {
        let Some(addr) = self.last_frame else { return };
        let result = self
            .read_regs(Some(addr))
            .and_then(|regs| self.write_regs(None, &regs));
        if let Err(e) = result {
            log::warn!(
                "vCPU {}: cannot complete the debug handler's return: {e}",
                self.cpu
            );
        }
    }

    fn stop_requested(&self) -> bool {
        self.debug
            .as_ref()
            .is_some_and(|d| d.stop_requested.load(Ordering::Acquire))
    }

    /// A halted vCPU (HLT with interrupts off) has nothing to run. Without a
    /// debugger its thread ends; with one it waits until the debugger stops
    /// it, then runs again (the guest halts again at once unless the
    /// debugger moved it).
    fn halted(&mut self) -> Next {
        self.send(Event::Halted { cpu: self.cpu });
        if self.debug.is_none() {
            return Next::Stop;
        }
        while !self.stop_requested() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Next::Continue
    }

    /// Tells the debugger this vCPU stopped and serves its commands until it
    /// says resume. `frame` is the guest-physical address of the trap frame
    /// when the stop came from the guest's #DB/#BP handler.
    fn debug_stop(&mut self, kind: StopKind, frame: Option<u64>) -> Next {
        let Some(link) = self.debug.as_ref() else {
            return Next::Continue;
        };
        if let StopKind::Trap { vector, rip } = kind {
            if !link.attached.load(Ordering::Acquire) {
                eprintln!(
                    "lego-vmm: vCPU {} of the {} component stopped on {} at {rip:#x}; it waits for gdb to attach",
                    self.cpu,
                    self.shared.role,
                    exception_name(vector)
                );
            }
        }
        let _ = link.stops.send(StopEvent {
            cpu: self.cpu,
            kind,
        });
        loop {
            let Some(link) = self.debug.as_ref() else {
                return Next::Continue;
            };
            let Ok(command) = link.commands.recv() else {
                // The debugger is gone: run on.
                return Next::Continue;
            };
            match command {
                Command::ReadRegs(reply) => {
                    let _ = reply.send(self.read_regs(frame));
                }
                Command::WriteRegs(regs, reply) => {
                    let _ = reply.send(self.write_regs(frame, &regs));
                }
                Command::Cr3(reply) => {
                    let cr3 = self
                        .vcpu
                        .get_sregs()
                        .map_or(lego_proto::boot::PML4, |s| s.cr3);
                    let _ = reply.send(cr3);
                }
                Command::Resume { step } => {
                    if let Err(e) = self.set_trap_flag(frame, step) {
                        log::warn!(
                            "vCPU {}: cannot {} single-step: {e}",
                            self.cpu,
                            if step { "set" } else { "clear" }
                        );
                    }
                    let Some(link) = self.debug.as_ref() else {
                        return Next::Continue;
                    };
                    if link.stop_requested.load(Ordering::Acquire) {
                        // Stopped again before it ran: stay here, with the frame.
                        let _ = link.stops.send(StopEvent {
                            cpu: self.cpu,
                            kind: StopKind::Requested,
                        });
                        continue;
                    }
                    if frame.is_some() {
                        // Return from the guest's handler here instead of by
                        // its iretq: PVM may be emulating after a single
                        // step, and switching it back to native inside the
                        // handler breaks that iretq (#GP).
                        self.last_frame = frame;
                        self.finish_handler_return();
                        self.last_frame = None;
                    }
                    if !step {
                        // PVM emulates after a single step and stays
                        // emulating until told otherwise: back to native.
                        let _ = crate::hypervisor::enable_pvm_native(&self.vcpu);
                    }
                    return Next::Continue;
                }
            }
        }
    }

    fn read_frame(&self, addr: u64) -> Result<TrapFrame, String> {
        let mut buf = [0u8; std::mem::size_of::<TrapFrame>()];
        self.shared
            .ram
            .read_slice(&mut buf, GuestAddress(addr))
            .map_err(|e| format!("trap frame at {addr:#x} unreadable: {e}"))?;
        TrapFrame::read_from_bytes(&buf).map_err(|_| "malformed trap frame".to_owned())
    }

    fn write_frame(&self, addr: u64, frame: &TrapFrame) -> Result<(), String> {
        self.shared
            .ram
            .write_slice(zerocopy::IntoBytes::as_bytes(frame), GuestAddress(addr))
            .map_err(|e| format!("trap frame at {addr:#x} unwritable: {e}"))
    }

    /// The registers a debugger sees (`GuestRegs`: from the trap frame at
    /// `frame` when the vCPU stopped through the guest's handler).
    fn read_regs(&self, frame: Option<u64>) -> Result<GuestRegs, String> {
        let sregs = self.vcpu.get_sregs().map_err(|e| e.to_string())?;
        if let Some(addr) = frame {
            let data = [
                sregs.ds.selector,
                sregs.es.selector,
                sregs.fs.selector,
                sregs.gs.selector,
            ];
            return Ok(GuestRegs::from_frame(&self.read_frame(addr)?, data));
        }
        let r = self.vcpu.get_regs().map_err(|e| e.to_string())?;
        Ok(GuestRegs::from_kvm(&r, &sregs))
    }

    fn write_regs(&self, frame: Option<u64>, regs: &GuestRegs) -> Result<(), String> {
        if let Some(addr) = frame {
            let mut f = self.read_frame(addr)?;
            regs.into_frame(&mut f);
            return self.write_frame(addr, &f);
        }
        self.vcpu
            .set_regs(&regs.to_kvm())
            .map_err(|e| e.to_string())
    }

    /// Single-stepping is the CPU's trap flag: the guest runs one instruction
    /// and takes #DB, which its handler reports as a [`StopKind::Trap`].
    fn set_trap_flag(&self, frame: Option<u64>, step: bool) -> Result<(), String> {
        let regs = self.read_regs(frame)?;
        let want = regs.with_trap_flag(step);
        if want != regs {
            self.write_regs(frame, &want)?;
        }
        Ok(())
    }

    fn send(&self, event: Event) {
        // The main thread only goes away when the process exits.
        let _ = self.events.send(event);
    }

    fn who(&self) -> Who<'_> {
        Who {
            role: self.shared.role,
            image: &self.shared.image,
            cpu: self.cpu as u64,
        }
    }

    /// Lets an attached debugger see the guest end.
    fn tell_debugger(&self, kind: StopKind) {
        if let Some(link) = &self.debug {
            let _ = link.stops.send(StopEvent {
                cpu: self.cpu,
                kind,
            });
        }
    }

    fn fail(&self, text: String) -> Next {
        self.tell_debugger(StopKind::Failed);
        self.send(Event::Failed(text));
        Next::Stop
    }

    /// The words of a guest stack from `rsp` to its top (4 KiB at most),
    /// for a report: only the upper-half stacks of the fixed layout are
    /// read, and nothing if `rsp` points elsewhere or cannot be read.
    fn stack_words(&self, rsp: u64) -> Vec<u64> {
        let Some(phys) = rsp.checked_sub(lego_proto::boot::UPPER_HALF) else {
            return Vec::new();
        };
        let Some((_, top)) = lego_proto::boot::stack_at(phys) else {
            return Vec::new();
        };
        (phys..top.min(phys + 4096))
            .step_by(8)
            .map_while(|at| self.shared.ram.read_obj::<u64>(GuestAddress(at)).ok())
            .collect()
    }

    /// What else may have stopped a processor's monitor: under PVM, a
    /// program's privileged instruction (`lgdt`, `lidt`, `mov` to CR3...)
    /// is carried out by KVM as if the monitor had made it (README,
    /// isolation), and can leave the monitor's tables or memory broken.
    fn program_may_be_why(&self) -> &'static str {
        if self.shared.pvm && self.shared.program.is_some() {
            "Under PVM the program itself can do this: KVM carries out a program's privileged instructions, such as lgdt, lidt or a move to CR3, as if the monitor had made them (see the README on isolation)."
        } else {
            ""
        }
    }

    /// Reads the vCPU's registers and reports `what` with them.
    fn fail_with_state(&self, what: &str) -> Next {
        self.fail_with_state_and_cause(what, "")
    }

    /// The same, with a sentence on what else may have done it.
    fn fail_with_state_and_cause(&self, what: &str, cause: &str) -> Next {
        let headline = format!("{} {what}", self.who());
        let regs = self.vcpu.get_regs();
        let sregs = self.vcpu.get_sregs();
        let text = match (regs, sregs) {
            (Ok(r), Ok(s)) => {
                let gprs = [
                    ("rax", r.rax),
                    ("rbx", r.rbx),
                    ("rcx", r.rcx),
                    ("rdx", r.rdx),
                    ("rsi", r.rsi),
                    ("rdi", r.rdi),
                    ("rbp", r.rbp),
                    ("r8", r.r8),
                    ("r9", r.r9),
                    ("r10", r.r10),
                    ("r11", r.r11),
                    ("r12", r.r12),
                    ("r13", r.r13),
                    ("r14", r.r14),
                    ("r15", r.r15),
                ];
                report::vcpu_state(
                    &headline,
                    &Registers {
                        rip: r.rip,
                        rsp: r.rsp,
                        rflags: r.rflags,
                        cr2: s.cr2,
                        cs: s.cs.selector as u64,
                        ss: s.ss.selector as u64,
                        gprs: &gprs,
                    },
                    &self.shared.symbols,
                    cause,
                )
            }
            (Err(e), _) | (_, Err(e)) => format!("{headline} (registers unreadable: {e})"),
        };
        self.fail(text)
    }

    /// The hypercall arguments in guest RAM.
    fn args(&self) -> crate::guest_args::GuestArgs<'_> {
        crate::guest_args::GuestArgs(&self.shared.ram)
    }

    fn read_arg<T: FromBytes>(&self, what: &str, addr: u32) -> Result<T, String> {
        self.args().read_arg(what, addr)
    }

    fn read_text(&self, what: &str, addr: u64, len: u64, max: u64) -> Result<String, String> {
        self.args().read_text(what, addr, len, max)
    }

    fn hypercall(&mut self, port: u16, value: u32, emulated_at_start: Option<u64>) -> Next {
        match self.try_hypercall(port, value, emulated_at_start) {
            Ok(next) => next,
            Err(why) => self.fail(format!(
                "{} made a bad hypercall on port {port:#x}: it {why}.\nThe component has stopped. This is a bug in the guest image.",
                self.who()
            )),
        }
    }

    fn try_hypercall(
        &mut self,
        port: u16,
        value: u32,
        emulated_at_start: Option<u64>,
    ) -> Result<Next, String> {
        let shared = &*self.shared;
        let bus = crate::ports::Bus {
            ram: &shared.ram,
            role: shared.role,
            fabric: shared.fabric.as_ref(),
            block: shared.block.as_deref(),
            excache: shared.excache.as_deref(),
            program: shared.program.as_deref(),
            storage: shared.storage,
            cpu: self.cpu,
        };
        if let Some(served) = bus.serve(port, value) {
            return Ok(match served? {
                crate::ports::Served::Continue => Next::Continue,
                crate::ports::Served::Finish(event) => {
                    self.send(*event);
                    Next::Stop
                }
            });
        }
        // The vCPU's own ports: its life, its reports and its debugger.
        match port {
            PORT_BOOTED => self.send(Event::Booted {
                cpu: value,
                at: Instant::now(),
            }),
            PORT_COMPUTE_BEGIN => self.send(Event::ComputeBegin { at: Instant::now() }),
            PORT_SELFTEST_DONE => {
                let at = Instant::now();
                let report: SelfTestReport = self.read_arg("self-test report", value)?;
                let stats = self.stats.as_ref();
                let emulated = stats
                    .and_then(VcpuStats::insn_emulation)
                    .zip(emulated_at_start)
                    .map(|(now, start)| now - start);
                self.send(Event::SelfTestDone {
                    report,
                    at,
                    emulated,
                    kernel_exits: stats.and_then(VcpuStats::exits),
                });
            }
            PORT_EXIT => {
                self.tell_debugger(StopKind::Exited(value));
                self.send(Event::GuestExit { code: value });
                return Ok(Next::Stop);
            }
            PORT_DEBUG => {
                let addr = value as u64;
                let frame = self
                    .read_frame(addr)
                    .map_err(|e| format!("passed a bad debug trap frame ({e})"))?;
                if self.debug.is_none() {
                    let report = FaultReport::from_frame(&frame, 0, self.cpu as u64);
                    let stack = self.stack_words(frame.rsp);
                    let text = report::exception(&self.who(), &report, &stack, &self.shared.symbols, "")
                        .replace("it does not handle", "meant for a debugger, but none is attached (start lego-vmm with --gdb ADDR)");
                    return Ok(self.fail(text));
                }
                log::debug!(
                    "vCPU {}: vector {} at {:#x} through the guest's handler",
                    self.cpu,
                    frame.vector,
                    frame.rip
                );
                let kind = StopKind::Trap {
                    vector: frame.vector,
                    rip: frame.rip,
                };
                return Ok(self.debug_stop(kind, Some(addr)));
            }
            PORT_PANIC => {
                let p: PanicReport = self.read_arg("panic report", value)?;
                let file =
                    self.read_text("panic file name", p.file_addr, p.file_len, PANIC_TEXT_MAX)?;
                let msg = self.read_text("panic message", p.msg_addr, p.msg_len, PANIC_TEXT_MAX)?;
                let who = Who {
                    cpu: p.cpu as u64,
                    ..self.who()
                };
                return Ok(self.fail(format!(
                    "{who} panicked at {file}:{}:{}:\n  {msg}\nThe component has stopped. This is a bug in the guest image.",
                    p.line, p.column
                )));
            }
            PORT_FAULT => {
                let f: FaultReport = self.read_arg("fault report", value)?;
                let who = Who {
                    cpu: f.cpu,
                    ..self.who()
                };
                let cause = self.program_may_be_why();
                let stack = self.stack_words(f.rsp);
                return Ok(self.fail(report::exception(
                    &who,
                    &f,
                    &stack,
                    &self.shared.symbols,
                    cause,
                )));
            }
            other => {
                return Err(format!(
                    "wrote {value:#x} to port {other:#x}, which is no hypercall"
                ))
            }
        }
        Ok(Next::Continue)
    }
}
