//! Preempting processes. A process that computes without system calls
//! never gives its vCPU back to the processor monitor; without help a
//! thread spinning on one vCPU starves the others queued there, and a
//! signal or `exit_group` for it waits forever. The VMM is the timer: a
//! ticker thread asks every vCPU that has run for a tick without an
//! interrupt for one, and the monitor asks for one on another vCPU when it
//! has news for the thread there (`PORT_KICK`). Asked, the vCPU thread
//! leaves KVM_RUN (KVM's `immediate_exit`, then a signal) and, if a process
//! is running (lower-half RIP), injects interrupt [`VECTOR_TIMER`]: the
//! monitor's trap path then runs its scheduler. In monitor code nothing is
//! injected: the monitor looks at its queues itself before it returns to a
//! process.
//!
//! Each tick costs a process about one exception round trip (tens of
//! microseconds under PVM) per [`TICK`]: well under 1% of a CPU.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interrupt the monitor takes as a tick (guest-pmon's `VECTOR_TIMER`).
pub const VECTOR_TIMER: u8 = 32;

/// How long a process runs before the monitor gets its vCPU back.
pub const TICK: Duration = Duration::from_millis(10);

struct Cpu {
    kick: crate::kick::Kick,
    /// Somebody wants this vCPU's process interrupted.
    wanted: AtomicBool,
    /// When the vCPU last went to the monitor by a tick or idled (ns since
    /// `start`); 0 while it is outside the guest.
    running_since: AtomicU64,
}

pub struct Preempt {
    cpus: Vec<Cpu>,
    start: Instant,
    stop: AtomicBool,
}

impl Preempt {
    pub fn new(vcpus: u32) -> Arc<Preempt> {
        Arc::new(Preempt {
            cpus: (0..vcpus)
                .map(|_| Cpu {
                    kick: crate::kick::Kick::default(),
                    wanted: AtomicBool::new(false),
                    running_since: AtomicU64::new(0),
                })
                .collect(),
            start: Instant::now(),
            stop: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        (self.start.elapsed().as_nanos() as u64).max(1)
    }

    /// Called on the vCPU's own thread with its `immediate_exit` field.
    pub fn register(&self, cpu: u32, immediate_exit: &mut u8) {
        if let Some(c) = self.cpus.get(cpu as usize) {
            c.kick.register(immediate_exit);
            c.running_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Before the vCPU's VcpuFd goes: nobody touches its kvm_run after.
    pub fn unregister(&self, cpu: u32) {
        if let Some(c) = self.cpus.get(cpu as usize) {
            c.kick.unregister();
        }
    }

    /// Asks for vCPU `cpu`'s process to be interrupted soon.
    pub fn request(&self, cpu: u32) {
        let Some(c) = self.cpus.get(cpu as usize) else {
            return;
        };
        c.wanted.store(true, Ordering::Release);
        c.kick.kick();
    }

    /// On the vCPU thread, before KVM_RUN: whether to interrupt now. The
    /// caller has cleared `immediate_exit` first, so a request after this
    /// still ends the next KVM_RUN at once.
    pub fn take(&self, cpu: u32) -> bool {
        self.cpus
            .get(cpu as usize)
            .is_some_and(|c| c.wanted.swap(false, Ordering::AcqRel))
    }

    /// The monitor got the vCPU back (a tick was delivered, or it idles):
    /// the next tick is due a [`TICK`] from now.
    pub fn restart_clock(&self, cpu: u32) {
        if let Some(c) = self.cpus.get(cpu as usize) {
            c.running_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// The vCPU sleeps in the VMM (idle): no ticks until it runs again.
    pub fn pause_clock(&self, cpu: u32) {
        if let Some(c) = self.cpus.get(cpu as usize) {
            c.running_since.store(0, Ordering::Relaxed);
        }
    }

    /// Runs the ticker until [`Preempt::stop`].
    pub fn start_ticker(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("preempt-ticker".into())
            .spawn(move || {
                let tick = TICK.as_nanos() as u64;
                while !me.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK / 2);
                    let now = me.now();
                    for (i, c) in me.cpus.iter().enumerate() {
                        let since = c.running_since.load(Ordering::Relaxed);
                        if since != 0 && now.saturating_sub(since) >= tick {
                            // Counted from now: a vCPU in monitor code,
                            // which gets nothing injected, is asked again
                            // a tick later.
                            c.running_since.store(now, Ordering::Relaxed);
                            me.request(i as u32);
                        }
                    }
                }
            })
    }

    /// Ends the ticker (the VMM's ticker runs for the life of the process).
    #[cfg(test)]
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_raises_immediate_exit_and_is_taken_once() {
        let p = Preempt::new(2);
        let mut field = 0u8;
        crate::debug::install_kick_handler().expect("kick handler");
        p.register(1, &mut field);
        p.request(1);
        assert_eq!(unsafe { std::ptr::read_volatile(&field) }, 1);
        assert!(p.take(1));
        assert!(!p.take(1));
        assert!(!p.take(0));
        p.unregister(1);
        field = 0;
        p.request(1);
        assert_eq!(field, 0, "an unregistered vCPU's kvm_run is not touched");
        assert!(p.take(1), "the request is still remembered");
        p.request(7); // no such vCPU: ignored
    }

    #[test]
    fn the_ticker_asks_a_running_vcpu_and_leaves_a_paused_one() {
        let p = Preempt::new(2);
        crate::debug::install_kick_handler().expect("kick handler");
        p.restart_clock(0);
        p.pause_clock(1);
        let ticker = p.start_ticker().expect("ticker");
        std::thread::sleep(TICK * 4);
        p.stop();
        ticker.join().expect("ticker ends");
        assert!(p.take(0), "a vCPU running for ticks is asked");
        assert!(!p.take(1), "an idle vCPU is not");
    }
}
