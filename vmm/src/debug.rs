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

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use lego_proto::hypercall::TrapFrame;

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

/// A stopped vCPU's registers are in the trap frame its guest's handler
/// saved, when it stopped through one, else in KVM. The frame's general
/// registers leave out rsp (it is the frame's own), so gdb's order and the
/// frame's differ from r8 on.
impl GuestRegs {
    /// From a trap frame; `data` is ds, es, fs, gs (from KVM's sregs).
    pub fn from_frame(f: &TrapFrame, data: [u16; 4]) -> Self {
        let g = f.gprs;
        GuestRegs {
            gprs: [
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], f.rsp, g[7], g[8], g[9], g[10], g[11],
                g[12], g[13], g[14],
            ],
            rip: f.rip,
            rflags: f.rflags,
            segments: [f.cs as u16, f.ss as u16, data[0], data[1], data[2], data[3]],
        }
    }

    /// Into a trap frame (its vector, error code and segments kept).
    pub fn into_frame(self, f: &mut TrapFrame) {
        let g = self.gprs;
        f.gprs = [
            g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
            g[14], g[15],
        ];
        f.rsp = g[7];
        f.rip = self.rip;
        f.rflags = self.rflags;
    }

    pub fn from_kvm(r: &kvm_bindings::kvm_regs, s: &kvm_bindings::kvm_sregs) -> Self {
        GuestRegs {
            gprs: [
                r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
                r.r12, r.r13, r.r14, r.r15,
            ],
            rip: r.rip,
            rflags: r.rflags,
            segments: [
                s.cs.selector,
                s.ss.selector,
                s.ds.selector,
                s.es.selector,
                s.fs.selector,
                s.gs.selector,
            ],
        }
    }

    /// KVM's general registers (segments are not written: gdb's writes of
    /// them are not carried out).
    pub fn to_kvm(self) -> kvm_bindings::kvm_regs {
        let g = self.gprs;
        kvm_bindings::kvm_regs {
            rax: g[0],
            rbx: g[1],
            rcx: g[2],
            rdx: g[3],
            rsi: g[4],
            rdi: g[5],
            rbp: g[6],
            rsp: g[7],
            r8: g[8],
            r9: g[9],
            r10: g[10],
            r11: g[11],
            r12: g[12],
            r13: g[13],
            r14: g[14],
            r15: g[15],
            rip: self.rip,
            rflags: self.rflags,
        }
    }

    /// With the CPU's trap flag set or cleared: single-stepping is the
    /// guest running one instruction and taking #DB.
    pub fn with_trap_flag(mut self, step: bool) -> Self {
        const TF: u64 = 1 << 8;
        self.rflags = if step {
            self.rflags | TF
        } else {
            self.rflags & !TF
        };
        self
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counted() -> GuestRegs {
        let mut gprs = [0u64; 16];
        for (i, g) in gprs.iter_mut().enumerate() {
            *g = 0x100 + i as u64;
        }
        GuestRegs {
            gprs,
            rip: 0xffff_ff80_0040_1000,
            rflags: 0x246,
            segments: [0x10, 0x18, 0x18, 0x18, 0, 0],
        }
    }

    #[test]
    fn a_trap_frame_keeps_rsp_apart() {
        let regs = counted();
        let mut f = TrapFrame {
            vector: 3,
            error_code: 0,
            cs: 0x10,
            ss: 0x18,
            ..Default::default()
        };
        regs.into_frame(&mut f);
        assert_eq!(f.rsp, 0x107, "gdb's rsp is its eighth register");
        assert_eq!(f.gprs[7], 0x108, "the frame's eighth is r8");
        assert_eq!(f.gprs[14], 0x10f);
        assert_eq!((f.vector, f.cs), (3, 0x10), "the rest of the frame is kept");
        assert_eq!(GuestRegs::from_frame(&f, [0x18, 0x18, 0, 0]), regs);
    }

    #[test]
    fn kvm_registers_round_trip() {
        let regs = counted();
        let k = regs.to_kvm();
        assert_eq!((k.rsp, k.r8, k.r15, k.rip), (0x107, 0x108, 0x10f, regs.rip));
        let mut s = kvm_bindings::kvm_sregs::default();
        s.cs.selector = 0x10;
        s.ss.selector = 0x18;
        s.ds.selector = 0x18;
        s.es.selector = 0x18;
        assert_eq!(GuestRegs::from_kvm(&k, &s), regs);
    }

    #[test]
    fn the_trap_flag_is_bit_8() {
        let r = counted().with_trap_flag(true);
        assert_eq!(r.rflags, 0x346);
        assert_eq!(r.with_trap_flag(false).rflags, 0x246);
    }
}
