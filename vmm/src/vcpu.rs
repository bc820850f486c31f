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

use crate::error::VmmError;
use crate::loader::Symbols;
use crate::memory::GuestRam;
use crate::report::{self, Registers, Who};
use crate::stats::VcpuStats;

/// What every vCPU thread shares.
pub struct Shared {
    pub ram: GuestRam,
    pub mem_size: u64,
    pub role: &'static str,
    pub image: String,
    pub symbols: Symbols,
    /// Exits to this process, all vCPUs together.
    pub exits: AtomicU64,
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
}

/// What one exit means for the run loop.
enum Next {
    Continue,
    Stop,
}

impl VcpuThread {
    pub fn run(mut self) {
        let emulated_at_start = self.stats.as_ref().and_then(VcpuStats::insn_emulation);
        loop {
            let exit = self.vcpu.run();
            self.shared.exits.fetch_add(1, Ordering::Relaxed);
            let next = match exit {
                Ok(VcpuExit::IoOut(port, data)) => {
                    let value = data
                        .iter()
                        .rev()
                        .fold(0u32, |acc, &b| (acc << 8) | b as u32);
                    let (port, value) = (port, value);
                    self.hypercall(port, value, emulated_at_start)
                }
                Ok(VcpuExit::IoIn(port, data)) => {
                    // Nothing lives behind any port; reads see a floating bus.
                    log::debug!("vCPU {} read port {port:#x}; no device there", self.cpu);
                    data.fill(0xff);
                    Next::Continue
                }
                Ok(VcpuExit::Hlt) => {
                    self.send(Event::Halted { cpu: self.cpu });
                    Next::Stop
                }
                Ok(VcpuExit::Shutdown) => self.fail_with_state(
                    "triple-faulted (an exception occurred while the CPU could not deliver another; KVM_EXIT_SHUTDOWN), so the vector is unknown; last state",
                ),
                Ok(VcpuExit::MmioRead(addr, _)) | Ok(VcpuExit::MmioWrite(addr, _)) => {
                    let what = format!(
                        "accessed guest-physical address {addr:#x}, which is neither RAM (--mem is {:#x} bytes) nor a device",
                        self.shared.mem_size
                    );
                    self.fail_with_state(&what)
                }
                Ok(VcpuExit::FailEntry(reason, cpu)) => self.fail_with_state(&format!(
                    "could not be entered by KVM (hardware entry failure reason {reason:#x} on host CPU {cpu})"
                )),
                Ok(VcpuExit::InternalError) => {
                    self.fail_with_state("hit a KVM internal error (KVM could not emulate an instruction)")
                }
                Ok(other) => {
                    let what = format!("made an exit this VMM does not handle: {other:?}");
                    self.fail_with_state(&what)
                }
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

    fn fail(&self, text: String) -> Next {
        self.send(Event::Failed(text));
        Next::Stop
    }

    /// Reads the vCPU's registers and reports `what` with them.
    fn fail_with_state(&self, what: &str) -> Next {
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
                )
            }
            (Err(e), _) | (_, Err(e)) => format!("{headline} (registers unreadable: {e})"),
        };
        self.fail(text)
    }

    /// Reads a hypercall argument struct from guest RAM, bounds-checked.
    fn read_arg<T: FromBytes>(&self, what: &str, addr: u32) -> Result<T, String> {
        let mut buf = vec![0u8; std::mem::size_of::<T>()];
        self.shared
            .ram
            .read_slice(&mut buf, GuestAddress(addr as u64))
            .map_err(|_| format!("passed a {what} argument at {addr:#x}, outside guest RAM"))?;
        T::read_from_bytes(&buf).map_err(|_| format!("passed a malformed {what} argument"))
    }

    /// Reads `len` bytes of guest text (console line, panic message).
    fn read_text(&self, what: &str, addr: u64, len: u64, max: u64) -> Result<String, String> {
        if len > max {
            return Err(format!("sent a {what} of {len} bytes; the limit is {max}"));
        }
        let mut buf = vec![0u8; len as usize];
        self.shared
            .ram
            .read_slice(&mut buf, GuestAddress(addr))
            .map_err(|_| format!("sent a {what} at {addr:#x}+{len}, outside guest RAM"))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn hypercall(&self, port: u16, value: u32, emulated_at_start: Option<u64>) -> Next {
        match self.try_hypercall(port, value, emulated_at_start) {
            Ok(next) => next,
            Err(why) => self.fail(format!(
                "{} made a bad hypercall on port {port:#x}: it {why}.\nThe component has stopped. This is a bug in the guest image.",
                self.who()
            )),
        }
    }

    fn try_hypercall(
        &self,
        port: u16,
        value: u32,
        emulated_at_start: Option<u64>,
    ) -> Result<Next, String> {
        match port {
            PORT_CONSOLE => {
                let arg: ConsoleWrite = self.read_arg("console", value)?;
                let line = self.read_text("console line", arg.addr, arg.len, CONSOLE_MAX)?;
                eprintln!(
                    "[{}] {}",
                    self.shared.role,
                    line.trim_end_matches(['\r', '\n'])
                );
            }
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
                self.send(Event::GuestExit { code: value });
                return Ok(Next::Stop);
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
                return Ok(self.fail(report::exception(&who, &f, &self.shared.symbols)));
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
