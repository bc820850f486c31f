//! The gdbstub `Target`: registers, memory (guest-virtual, through the
//! guest's page tables), software breakpoints, resume and single-step, for
//! every vCPU as a thread, in all-stop mode.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gdbstub::common::{Signal, Tid};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::MultiThreadStopReason;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use vm_memory::{Bytes, GuestAddress};

use crate::debug::{Command, GuestRegs, StopEvent, StopKind, VcpuHandle, KICK_SIGNAL};
use crate::paging;
use crate::vcpu::Shared;

const INT3: u8 = 0xcc;
/// How long a vCPU may take to answer or to stop before the session gives up.
const REPLY_LIMIT: Duration = Duration::from_secs(5);

pub struct Debugger {
    vcpus: Vec<VcpuHandle>,
    stops: Receiver<StopEvent>,
    shared: Arc<Shared>,
    stopped: Vec<bool>,
    /// Per vCPU: Some(true) step, Some(false) continue, None the default.
    actions: Vec<Option<bool>>,
    /// gdb's scheduler locking: vCPUs without an action stay stopped
    /// (gdb's `stepi` steps one thread and holds the others).
    locked: bool,
    /// Guest-virtual address -> (guest-physical address, original byte).
    breakpoints: HashMap<u64, (u64, u8)>,
    ended: bool,
    /// The guest's end, met while stopping the other vCPUs: gdb hears it
    /// instead of the stop that was being reported.
    pending_end: Option<MultiThreadStopReason<u64>>,
    /// Some session has let the guest run; until then it waits for gdb.
    resumed_once: bool,
}

fn tid(cpu: usize) -> Tid {
    Tid::new(cpu + 1).expect("cpu + 1 is never zero")
}

fn cpu_of(tid: Tid) -> usize {
    tid.get() - 1
}

impl Debugger {
    pub fn new(
        vcpus: Vec<VcpuHandle>,
        stops: Receiver<StopEvent>,
        shared: Arc<Shared>,
    ) -> Debugger {
        let n = vcpus.len();
        Debugger {
            vcpus,
            stops,
            shared,
            // Every vCPU starts with a stop requested but has not confirmed it.
            stopped: vec![false; n],
            actions: vec![None; n],
            locked: false,
            breakpoints: HashMap::new(),
            ended: false,
            pending_end: None,
            resumed_once: false,
        }
    }

    pub fn guest_ended(&self) -> bool {
        self.ended
    }

    fn alive(&self, cpu: usize) -> bool {
        self.vcpus[cpu].alive.load(Ordering::Acquire)
    }

    /// Asks vCPU `cpu` to stop and signals it out of KVM_RUN.
    fn kick(&self, cpu: usize) {
        let handle = &self.vcpus[cpu];
        handle.stop_requested.store(true, Ordering::Release);
        if let (Some(thread), true) = (handle.thread, self.alive(cpu)) {
            // SAFETY: main keeps every vCPU thread's JoinHandle (never
            // joined or detached), so the pthread_t stays valid even after
            // the thread ends; the signal has a no-op handler.
            unsafe { libc::pthread_kill(thread, KICK_SIGNAL) };
        }
    }

    /// Lets vCPU `cpu` run again; the flag is cleared first so that a
    /// later stop request is never undone by this resume.
    fn let_run(&mut self, cpu: usize, step: bool) -> Result<(), String> {
        self.vcpus[cpu]
            .stop_requested
            .store(false, Ordering::Release);
        self.stopped[cpu] = false;
        self.vcpus[cpu]
            .commands
            .send(Command::Resume { step })
            .map_err(|_| format!("vCPU {cpu} is gone"))
    }

    /// Stops every running vCPU and waits until each has. Trap events that
    /// arrive meanwhile are parked: a hit breakpoint is rewound so the vCPU
    /// hits it again when resumed.
    pub fn stop_all(&mut self) -> Result<(), String> {
        for cpu in 0..self.vcpus.len() {
            if !self.stopped[cpu] {
                self.vcpus[cpu]
                    .stop_requested
                    .store(true, Ordering::Release);
            }
        }
        let deadline = Instant::now() + REPLY_LIMIT;
        loop {
            // A vCPU whose thread ended (the guest exited or failed) stays put.
            for cpu in 0..self.vcpus.len() {
                if !self.alive(cpu) {
                    self.stopped[cpu] = true;
                }
            }
            if self.stopped.iter().all(|&s| s) {
                return Ok(());
            }
            match self.stops.recv_timeout(Duration::from_millis(5)) {
                Ok(event) => self.park(event)?,
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline {
                        return Err("a vCPU did not stop within 5 s".into());
                    }
                    // A kick that landed just before KVM_RUN is lost: repeat.
                    for cpu in 0..self.vcpus.len() {
                        if !self.stopped[cpu] {
                            self.kick(cpu);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the vCPU threads are gone".into())
                }
            }
        }
    }

    fn park(&mut self, event: StopEvent) -> Result<(), String> {
        let cpu = event.cpu as usize;
        match event.kind {
            StopKind::Exited(code) => {
                self.ended = true;
                self.pending_end = Some(MultiThreadStopReason::Exited(code.min(255) as u8));
            }
            StopKind::Failed => {
                self.ended = true;
                self.pending_end = Some(MultiThreadStopReason::Terminated(Signal::SIGSEGV));
            }
            StopKind::Trap { vector: 3, rip }
                if self.breakpoints.contains_key(&rip.wrapping_sub(1)) =>
            {
                self.stopped[cpu] = true;
                self.rewind(cpu)?;
            }
            _ => {}
        }
        if cpu < self.stopped.len() {
            self.stopped[cpu] = true;
        }
        Ok(())
    }

    /// Puts RIP back on the int3 of a breakpoint the vCPU just hit.
    fn rewind(&self, cpu: usize) -> Result<(), String> {
        let mut regs = self.regs(cpu)?;
        regs.rip = regs.rip.wrapping_sub(1);
        self.set_regs(cpu, regs)
    }

    /// The stop gdb hears about: this vCPU's, after all others stopped too.
    fn primary_stop(&mut self, event: StopEvent) -> Result<MultiThreadStopReason<u64>, String> {
        let cpu = event.cpu as usize;
        self.stopped[cpu] = true;
        let reason = match event.kind {
            StopKind::Exited(code) => {
                self.ended = true;
                return Ok(MultiThreadStopReason::Exited(code.min(255) as u8));
            }
            StopKind::Failed => {
                self.ended = true;
                return Ok(MultiThreadStopReason::Terminated(Signal::SIGSEGV));
            }
            StopKind::Trap { vector: 3, rip }
                if self.breakpoints.contains_key(&rip.wrapping_sub(1)) =>
            {
                self.rewind(cpu)?;
                MultiThreadStopReason::SwBreak(tid(cpu))
            }
            StopKind::Trap { .. } => MultiThreadStopReason::SignalWithThread {
                tid: tid(cpu),
                signal: Signal::SIGTRAP,
            },
            StopKind::Requested => MultiThreadStopReason::SignalWithThread {
                tid: tid(cpu),
                signal: Signal::SIGINT,
            },
        };
        self.stop_all()?;
        Ok(self.pending_end.take().unwrap_or(reason))
    }

    /// What vCPU `tid` does on the next resume: step or continue.
    fn set_action(&mut self, tid: Tid, step: bool) {
        if let Some(a) = self.actions.get_mut(cpu_of(tid)) {
            *a = Some(step);
        }
    }

    /// Whether the guest has been let run by some session.
    pub fn resumed_once(&self) -> bool {
        self.resumed_once
    }

    /// Ends a session: every vCPU stopped (a breakpoint hit meanwhile is
    /// rewound), breakpoints out, every vCPU running without single-step.
    pub fn release(&mut self) {
        if let Err(e) = self.stop_all() {
            log::warn!("ending the gdb session: {e}");
        }
        self.remove_all_breakpoints();
        if self.ended {
            return;
        }
        for cpu in 0..self.vcpus.len() {
            if self.stopped[cpu] && self.alive(cpu) {
                let _ = self.let_run(cpu, false);
            }
        }
    }

    pub fn remove_all_breakpoints(&mut self) {
        let bps: Vec<u64> = self.breakpoints.keys().copied().collect();
        for addr in bps {
            if let Err(e) = self.remove(addr) {
                log::warn!("cannot remove the breakpoint at {addr:#x}: {e}");
            }
        }
    }

    fn ask<T>(
        &self,
        cpu: usize,
        make: impl FnOnce(std::sync::mpsc::Sender<T>) -> Command,
    ) -> Result<T, String> {
        let (tx, rx) = channel();
        let handle = self
            .vcpus
            .get(cpu)
            .ok_or_else(|| format!("no vCPU {cpu}"))?;
        handle
            .commands
            .send(make(tx))
            .map_err(|_| format!("vCPU {cpu} is gone"))?;
        rx.recv_timeout(REPLY_LIMIT)
            .map_err(|_| format!("vCPU {cpu} did not answer"))
    }

    fn regs(&self, cpu: usize) -> Result<GuestRegs, String> {
        self.ask(cpu, Command::ReadRegs)?
    }

    fn set_regs(&self, cpu: usize, regs: GuestRegs) -> Result<(), String> {
        self.ask(cpu, |tx| Command::WriteRegs(regs, tx))?
    }

    fn cr3(&self, cpu: usize) -> u64 {
        self.ask(cpu, Command::Cr3)
            .unwrap_or(lego_proto::boot::PML4)
    }

    /// Guest-physical address of a guest-virtual byte, as `cpu` sees it.
    fn phys(&self, cpu: usize, vaddr: u64) -> Option<(u64, u64)> {
        paging::translate(&self.shared.ram, self.cr3(cpu), vaddr)
    }

    fn remove(&mut self, addr: u64) -> Result<bool, String> {
        let Some((phys, original)) = self.breakpoints.remove(&addr) else {
            return Ok(false);
        };
        self.shared
            .ram
            .write_obj(original, GuestAddress(phys))
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

impl Target for Debugger {
    type Arch = gdbstub_arch::x86::X86_64_SSE;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

fn non_fatal<T>(r: Result<T, String>) -> TargetResult<T, Debugger> {
    r.map_err(|e| {
        log::warn!("gdb request failed: {e}");
        TargetError::NonFatal
    })
}

impl MultiThreadBase for Debugger {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let r = non_fatal(self.regs(cpu_of(tid)))?;
        regs.regs = r.gprs;
        regs.rip = r.rip;
        regs.eflags = r.rflags as u32;
        let s = r.segments.map(u32::from);
        regs.segments.cs = s[0];
        regs.segments.ss = s[1];
        regs.segments.ds = s[2];
        regs.segments.es = s[3];
        regs.segments.fs = s[4];
        regs.segments.gs = s[5];
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let cpu = cpu_of(tid);
        let mut r = non_fatal(self.regs(cpu))?;
        r.gprs = regs.regs;
        r.rip = regs.rip;
        r.rflags = (r.rflags & !0xffff_ffff) | u64::from(regs.eflags);
        non_fatal(self.set_regs(cpu, r))
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let cpu = cpu_of(tid);
        let mut done = 0usize;
        while done < data.len() {
            let vaddr = start.wrapping_add(done as u64);
            let Some((phys, room)) = self.phys(cpu, vaddr) else {
                break;
            };
            let n = (room as usize).min(data.len() - done);
            if self
                .shared
                .ram
                .read_slice(&mut data[done..done + n], GuestAddress(phys))
                .is_err()
            {
                break;
            }
            done += n;
        }
        if done == 0 {
            return Err(TargetError::NonFatal);
        }
        // Show the original bytes, not our int3s.
        for (&addr, &(_, original)) in &self.breakpoints {
            if let Some(i) = addr.checked_sub(start) {
                if (i as usize) < done {
                    data[i as usize] = original;
                }
            }
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let cpu = cpu_of(tid);
        let mut done = 0usize;
        while done < data.len() {
            let vaddr = start.wrapping_add(done as u64);
            let (phys, room) = self.phys(cpu, vaddr).ok_or(TargetError::NonFatal)?;
            let n = (room as usize).min(data.len() - done);
            for (i, &byte) in data[done..done + n].iter().enumerate() {
                let addr = vaddr + i as u64;
                // Writing over a breakpoint changes what it restores.
                if let Some(bp) = self.breakpoints.get_mut(&addr) {
                    bp.1 = byte;
                    continue;
                }
                self.shared
                    .ram
                    .write_obj(byte, GuestAddress(phys + i as u64))
                    .map_err(|_| TargetError::NonFatal)?;
            }
            done += n;
        }
        Ok(())
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        for cpu in 0..self.vcpus.len() {
            thread_is_active(tid(cpu));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadResume for Debugger {
    fn resume(&mut self) -> Result<(), Self::Error> {
        self.resumed_once = true;
        for cpu in 0..self.vcpus.len() {
            let step = match self.actions[cpu] {
                Some(step) => step,
                None if self.locked => continue,
                None => false,
            };
            if self.alive(cpu) {
                self.let_run(cpu, step)?;
            }
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.iter_mut().for_each(|a| *a = None);
        self.locked = false;
        Ok(())
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.set_action(tid, false);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for Debugger {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.set_action(tid, true);
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for Debugger {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.locked = true;
        Ok(())
    }
}

impl Breakpoints for Debugger {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for Debugger {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.breakpoints.contains_key(&addr) {
            return Ok(true);
        }
        let Some((phys, _)) = self.phys(0, addr) else {
            return Ok(false);
        };
        let original: u8 = self
            .shared
            .ram
            .read_obj(GuestAddress(phys))
            .map_err(|_| TargetError::NonFatal)?;
        self.shared
            .ram
            .write_obj(INT3, GuestAddress(phys))
            .map_err(|_| TargetError::NonFatal)?;
        self.breakpoints.insert(addr, (phys, original));
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        non_fatal(self.remove(addr))
    }
}

pub enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = Debugger;
    type Connection = super::conn::GdbConn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut Debugger,
        conn: &mut super::conn::GdbConn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, std::io::Error>> {
        let conn = &mut conn.stream;
        loop {
            match target.stops.recv_timeout(Duration::from_millis(2)) {
                Ok(event) => {
                    let reason = target
                        .primary_stop(event)
                        .map_err(WaitForStopReasonError::Target)?;
                    return Ok(Event::TargetStopped(reason));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(WaitForStopReasonError::Target(
                        "the vCPU threads are gone".into(),
                    ))
                }
            }
            // Anything from gdb while the guest runs (usually Ctrl-C)?
            conn.set_nonblocking(true)
                .map_err(WaitForStopReasonError::Connection)?;
            let mut byte = [0u8];
            let peeked = conn.peek(&mut byte);
            conn.set_nonblocking(false)
                .map_err(WaitForStopReasonError::Connection)?;
            match peeked {
                Ok(0) => {
                    return Err(WaitForStopReasonError::Connection(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ))
                }
                Ok(_) => {
                    conn.read_exact(&mut byte)
                        .map_err(WaitForStopReasonError::Connection)?;
                    return Ok(Event::IncomingData(byte[0]));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(WaitForStopReasonError::Connection(e)),
            }
        }
    }

    fn on_interrupt(target: &mut Debugger) -> Result<Option<Self::StopReason>, String> {
        target.stop_all()?;
        Ok(Some(target.pending_end.take().unwrap_or(
            MultiThreadStopReason::SignalWithThread {
                tid: tid(0),
                signal: Signal::SIGINT,
            },
        )))
    }
}
