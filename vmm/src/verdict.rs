//! What a vCPU does with the ExCache's verdict on a fault it may have been
//! waiting on (`excache::Verdict`), decided apart from the vCPU's ioctls
//! so that each rule is unit-tested: every one of them was a defect found
//! in CI (a fault injected where the vCPU was not waiting on it landed in
//! the monitor's trap entry or replaced an exception of its own).
//!
//! The vCPU answers the questions of [`Where`] (each an ioctl, asked only
//! when the rule needs it) and carries out the [`Decision`].

use crate::excache::Verdict;

/// Where the vCPU is, as far as a verdict needs to know.
pub trait Where {
    /// The last KVM_RUN ended by a kick: only then can it have been
    /// blocked on the access the verdict is for.
    fn kicked(&self) -> bool;
    /// It runs a process (lower-half code), not the monitor.
    fn in_process(&self) -> bool;
    /// It can be waiting on a process's memory where it is: in the
    /// process, or at one of the monitor's user copies
    /// (`ExCache::may_wait_at`).
    fn may_wait(&self) -> bool;
    /// An exception of its own waits to be delivered on the next entry.
    fn exception_pending(&self) -> bool;
}

/// A page fault to give the guest.
#[derive(Debug, PartialEq, Eq)]
pub struct Fault {
    pub va: u64,
    pub write: bool,
    /// The page is mapped, but not for this access.
    pub protection: bool,
    /// The access has completed (KVM made it for the process on a page
    /// of zeros): the monitor does not retry it.
    pub completed: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Act {
    /// Stop the component with this sentence.
    Fail(String),
    /// Nothing for the guest.
    Nothing,
    /// A verdict for a fault the vCPU was not waiting on: dropped (the
    /// access, if made again, is refused again).
    Stale {
        va: u64,
    },
    Inject(Fault),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    /// The scratch page (slot, address) that ended an access KVM made,
    /// to drop before anything else.
    pub end_scratch: Option<(u64, u64)>,
    pub act: Act,
}

pub fn decide(verdict: Verdict, at: &impl Where) -> Decision {
    match verdict {
        Verdict::Stop(text) => Decision {
            end_scratch: None,
            act: Act::Fail(text),
        },
        // KVM made the access for the process and it completed on a page
        // of zeros: that page goes now, and the process gets the fault
        // where it is (past the instruction), if it still runs here.
        Verdict::PageFault {
            va,
            write,
            protection,
            completed_in: Some(slot),
        } => Decision {
            end_scratch: Some((slot, va)),
            act: if at.in_process() {
                Act::Inject(Fault {
                    va,
                    write,
                    protection,
                    completed: true,
                })
            } else {
                Act::Nothing
            },
        },
        // The vCPU left KVM for something else (an exit it handled): it
        // was not blocked on that access, so the verdict is for a fault
        // already answered (the kernel may report one fault to userfaultfd
        // twice); injected now, it would land on whatever instruction
        // runs, such as the monitor's next hypercall. Or it left KVM at
        // monitor code that cannot have made the access, or with an
        // exception of its own to deliver (a #GP this VMM gave for a
        // process's `out`, which the page fault would replace).
        Verdict::PageFault {
            va,
            write,
            protection,
            completed_in: None,
        } => Decision {
            end_scratch: None,
            act: if !at.kicked() || !at.may_wait() || at.exception_pending() {
                Act::Stale { va }
            } else {
                Act::Inject(Fault {
                    va,
                    write,
                    protection,
                    completed: false,
                })
            },
        },
    }
}

/// The page fault's error code as the CPU gives it (present, write, user),
/// with PF_REFUSED (bit 15: the CPU sets it only for SGX, which guests here
/// never see) telling the monitor that a memory component refused the
/// access, so it makes the fault in its own page tables and the process
/// gets the exact address from the CPU; and PF_COMPLETED for an access not
/// to be retried.
pub fn error_code(fault: &Fault, user: bool) -> u32 {
    u32::from(fault.protection)
        | (u32::from(fault.write) << 1)
        | (u32::from(user) << 2)
        | lego_proto::process::PF_REFUSED
        | if fault.completed {
            lego_proto::process::PF_COMPLETED
        } else {
            0
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A vCPU's answers, and how many questions were asked.
    #[derive(Default)]
    struct At {
        kicked: bool,
        in_process: bool,
        may_wait: bool,
        exception_pending: bool,
        asked: Cell<u32>,
    }

    impl Where for At {
        fn kicked(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.kicked
        }
        fn in_process(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.in_process
        }
        fn may_wait(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.may_wait
        }
        fn exception_pending(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.exception_pending
        }
    }

    fn refused(completed_in: Option<u64>) -> Verdict {
        Verdict::PageFault {
            va: 0x7000,
            write: true,
            protection: false,
            completed_in,
        }
    }

    fn waiting() -> At {
        At {
            kicked: true,
            in_process: true,
            may_wait: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_waiting_vcpu_gets_the_fault() {
        let d = decide(refused(None), &waiting());
        assert_eq!(d.end_scratch, None);
        assert_eq!(
            d.act,
            Act::Inject(Fault {
                va: 0x7000,
                write: true,
                protection: false,
                completed: false
            })
        );
    }

    #[test]
    fn a_verdict_the_vcpu_was_not_waiting_on_is_dropped() {
        // Out of KVM for an exit of its own, not a kick.
        let at = At {
            kicked: false,
            ..waiting()
        };
        assert_eq!(decide(refused(None), &at).act, Act::Stale { va: 0x7000 });
        // Only the kick was asked about: each question is an ioctl.
        assert_eq!(at.asked.get(), 1);
        // In the monitor's trap entry, not at one of its user copies.
        let at = At {
            may_wait: false,
            ..waiting()
        };
        assert_eq!(decide(refused(None), &at).act, Act::Stale { va: 0x7000 });
        // With a #GP of its own to deliver.
        let at = At {
            exception_pending: true,
            ..waiting()
        };
        assert_eq!(decide(refused(None), &at).act, Act::Stale { va: 0x7000 });
    }

    #[test]
    fn a_completed_access_drops_its_scratch_page_wherever_the_vcpu_is() {
        let at = At {
            kicked: false,
            exception_pending: true,
            ..waiting()
        };
        let d = decide(refused(Some(3)), &at);
        assert_eq!(d.end_scratch, Some((3, 0x7000)));
        assert!(matches!(
            d.act,
            Act::Inject(Fault {
                completed: true,
                ..
            })
        ));
        let in_monitor = At::default();
        let d = decide(refused(Some(3)), &in_monitor);
        assert_eq!(d.end_scratch, Some((3, 0x7000)));
        assert_eq!(d.act, Act::Nothing);
    }

    #[test]
    fn a_stop_is_a_stop() {
        let d = decide(Verdict::Stop("gone".into()), &At::default());
        assert_eq!(d.act, Act::Fail("gone".into()));
    }

    #[test]
    fn the_error_code_is_the_cpus_and_ours() {
        let f = Fault {
            va: 0,
            write: true,
            protection: true,
            completed: false,
        };
        assert_eq!(
            error_code(&f, true),
            0b111 | lego_proto::process::PF_REFUSED
        );
        let f = Fault {
            write: false,
            protection: false,
            completed: true,
            ..f
        };
        assert_eq!(
            error_code(&f, false),
            lego_proto::process::PF_REFUSED | lego_proto::process::PF_COMPLETED
        );
    }
}
