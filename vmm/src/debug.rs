//! The link between a debugger and the vCPU threads.
//!
//! A stopped vCPU thread sits in [`crate::vcpu::VcpuThread`]'s debug stop,
//! answering [`Command`]s until told to resume. It stops when the guest takes
//! #DB or #BP (the guest's handlers hand their [`TrapFrame`] to the VMM; this
//! works natively on PVM, where `KVM_SET_GUEST_DEBUG` does not, and equally
//! on ordinary KVM), or when the debugger asks it to (a flag plus a signal
//! that kicks it out of `KVM_RUN`). Registers come from the trap frame when
//! there is one, else from KVM.
//!
//! [`TrapFrame`]: lego_proto::hypercall::TrapFrame

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// Registers as a debugger sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegs {
    /// rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8..r15 (gdb's order).
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    /// cs, ss, ds, es, fs, gs selectors.
    pub segments: [u16; 6],
}

/// Why a vCPU stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The debugger asked (attach, Ctrl-C, or to stop every vCPU).
    Requested,
    /// The guest took exception `vector` (1 = #DB, 3 = #BP); `rip` is where
    /// it resumes (after the int3 for #BP).
    Trap { vector: u64, rip: u64 },
    /// The guest exited with this status.
    Exited(u32),
    /// The guest failed (panic, fault, triple fault).
    Failed,
}

#[derive(Debug)]
pub struct StopEvent {
    pub cpu: u32,
    pub kind: StopKind,
}

pub enum Command {
    ReadRegs(Sender<Result<GuestRegs, String>>),
    WriteRegs(GuestRegs, Sender<Result<(), String>>),
    /// The page-table root this vCPU uses, for guest-virtual memory access.
    Cr3(Sender<u64>),
    Resume {
        step: bool,
    },
}

/// The vCPU thread's end.
pub struct DebugLink {
    pub commands: Receiver<Command>,
    pub stops: Sender<StopEvent>,
    /// Set by the debugger to stop the vCPU, cleared by the debugger before
    /// it resumes it (never by the vCPU: a stale resume must not cancel a
    /// newer stop).
    pub stop_requested: Arc<AtomicBool>,
    /// Cleared when the vCPU thread ends.
    pub alive: Arc<AtomicBool>,
    /// A gdb client is attached.
    pub attached: Arc<AtomicBool>,
}

/// The debugger's end, one per vCPU.
pub struct VcpuHandle {
    pub commands: Sender<Command>,
    pub stop_requested: Arc<AtomicBool>,
    pub alive: Arc<AtomicBool>,
    /// Set once the thread runs; signalled to kick it out of KVM_RUN.
    pub thread: Option<libc::pthread_t>,
}

/// The signal that kicks a vCPU thread out of KVM_RUN (a no-op handler is
/// installed, so KVM_RUN returns EINTR).
pub const KICK_SIGNAL: i32 = libc::SIGUSR1;

/// Links for `vcpus` vCPUs. Every vCPU starts with a stop requested: under a
/// debugger the guest waits for it before its first instruction.
/// `attached` is the gdb server's "a client is attached" flag.
pub fn links(
    vcpus: u32,
    attached: &Arc<AtomicBool>,
) -> (Vec<DebugLink>, Vec<VcpuHandle>, Receiver<StopEvent>) {
    let (stop_tx, stop_rx) = channel();
    let mut links = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..vcpus {
        let (cmd_tx, cmd_rx) = channel();
        let flag = Arc::new(AtomicBool::new(true));
        let alive = Arc::new(AtomicBool::new(true));
        links.push(DebugLink {
            commands: cmd_rx,
            stops: stop_tx.clone(),
            stop_requested: flag.clone(),
            alive: alive.clone(),
            attached: attached.clone(),
        });
        handles.push(VcpuHandle {
            commands: cmd_tx,
            stop_requested: flag,
            alive,
            thread: None,
        });
    }
    (links, handles, stop_rx)
}

/// Installs the no-op handler for [`KICK_SIGNAL`].
pub fn install_kick_handler() -> std::io::Result<()> {
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { signal_hook::low_level::register(KICK_SIGNAL, || {}) }.map(|_| ())
}
