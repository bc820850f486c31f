//! A thread's scheduling attributes as Linux keeps and checks them: the
//! policy (sched_setscheduler), its real-time priority (sched_setparam),
//! the nice value (setpriority), and the CPUs it may run on
//! (sched_setaffinity), all of these through sched_setattr and
//! sched_getattr too, and the I/O priority (ioprio_set), with the errors
//! Linux gives for bad values.
//!
//! Decided: they are kept, inherited by fork and clone (a policy with
//! SCHED_RESET_ON_FORK is not) and reported, with Linux's permission
//! rules (the kernel's `sched` calls check them), but the monitor's scheduler runs
//! every runnable thread in turn on any vCPU whatever they say: a program
//! that raises its priority or pins a thread runs as before. Programs and
//! tools (`nice`, `chrt`, `taskset`, runtimes sizing thread pools) see
//! what they set.

const EINVAL: i64 = 22;

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
/// Set only by sched_setattr, so sched_setscheduler refuses it, as
/// Linux's does; its priorities are 0. Decided: sched_setattr refuses it
/// too (EINVAL): its runtime, deadline and period would promise CPU time
/// the monitor's scheduler does not reserve.
pub const SCHED_DEADLINE: u32 = 6;
/// A flag on the policy: a child starts with SCHED_OTHER and a nice value
/// of at least 0.
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

/// The nice values Linux allows.
pub const NICE_MIN: i32 = -20;
pub const NICE_MAX: i32 = 19;

/// A thread's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sched {
    pub policy: u32,
    /// The real-time priority (1-99 for SCHED_FIFO and SCHED_RR, 0
    /// otherwise).
    pub priority: u32,
    pub reset_on_fork: bool,
    pub nice: i32,
    /// The CPUs it may run on, one bit each (the processor has at most 64
    /// vCPUs).
    pub affinity: u64,
    /// ioprio_set's value (class << 13 | hint << 3 | level; 0: none set).
    pub ioprio: u16,
}

/// `struct sched_attr`'s first size (SCHED_ATTR_SIZE_VER0) and the size
/// this monitor knows (VER1, with the utilization clamps).
pub const SCHED_ATTR_SIZE_VER0: usize = 48;
pub const SCHED_ATTR_LEN: usize = 56;

const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
/// Every flag Linux knows (the deadline and clamp ones are taken and
/// have nothing to act on here).
const SCHED_FLAG_ALL: u64 = 0x7f;

const IOPRIO_CLASS_NONE: u16 = 0;
const IOPRIO_CLASS_RT: u16 = 1;
const IOPRIO_CLASS_BE: u16 = 2;
const IOPRIO_CLASS_IDLE: u16 = 3;
/// A best-effort level of 4, which Linux takes for a thread that set none
/// when it compares them.
const IOPRIO_BE_NORM: u16 = IOPRIO_CLASS_BE << 13 | 4;

/// ioprio_set's value checked as Linux's `ioprio_check_cap`: a class of
/// none (level 0), real-time (root's: EPERM otherwise), best-effort or
/// idle; EINVAL for others.
pub fn check_ioprio(value: i64, privileged: bool) -> Result<u16, i64> {
    let value = u16::try_from(value).map_err(|_| EINVAL)?;
    match value >> 13 {
        IOPRIO_CLASS_RT if !privileged => Err(crate::cred::EPERM),
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE => Ok(value),
        IOPRIO_CLASS_NONE if value & 7 == 0 => Ok(value),
        _ => Err(EINVAL),
    }
}

/// The higher of two I/O priorities (ioprio_get of a group or a user),
/// none taken as best-effort level 4.
pub fn ioprio_best(a: u16, b: u16) -> u16 {
    let norm = |v: u16| {
        if v >> 13 == IOPRIO_CLASS_NONE {
            IOPRIO_BE_NORM
        } else {
            v
        }
    };
    norm(a).min(norm(b))
}

impl Sched {
    /// A first thread's: SCHED_OTHER, nice 0, any of `cpus` vCPUs.
    pub fn new(cpus: usize) -> Sched {
        Sched {
            policy: SCHED_OTHER,
            priority: 0,
            reset_on_fork: false,
            nice: 0,
            affinity: all_cpus(cpus),
            ioprio: 0,
        }
    }

    /// sched_getattr's `struct sched_attr` (its size field is the
    /// caller's to fill): the policy, the reset-on-fork flag, the nice
    /// value of a normal policy or the priority of a real-time one.
    pub fn attr(&self) -> [u8; SCHED_ATTR_LEN] {
        let mut b = [0u8; SCHED_ATTR_LEN];
        b[4..8].copy_from_slice(&self.policy.to_le_bytes());
        let flags = if self.reset_on_fork {
            SCHED_FLAG_RESET_ON_FORK
        } else {
            0
        };
        b[8..16].copy_from_slice(&flags.to_le_bytes());
        if self.priority == 0 {
            b[16..20].copy_from_slice(&self.nice.to_le_bytes());
        }
        b[20..24].copy_from_slice(&self.priority.to_le_bytes());
        b
    }

    /// sched_setattr with `struct sched_attr` `a` (its size already
    /// checked): the policy (kept with SCHED_FLAG_KEEP_POLICY), its
    /// priority, and for a normal policy the nice value (clamped, as
    /// Linux does); with SCHED_FLAG_KEEP_PARAMS only the reset-on-fork
    /// flag, as Linux's.
    pub fn set_attr(&mut self, a: &[u8; SCHED_ATTR_LEN]) -> Result<(), i64> {
        let word = |at: usize| u32::from_le_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]]);
        let policy = word(4);
        let flags = u64::from(word(8)) | u64::from(word(12)) << 32;
        let nice = word(16) as i32;
        let priority = word(20);
        if (policy as i32) < 0 || flags & !SCHED_FLAG_ALL != 0 {
            return Err(EINVAL);
        }
        let policy = if flags & SCHED_FLAG_KEEP_POLICY != 0 {
            self.policy
        } else {
            policy
        };
        if policy == SCHED_DEADLINE {
            return Err(EINVAL);
        }
        let priority = if flags & SCHED_FLAG_KEEP_PARAMS != 0 {
            self.priority
        } else {
            priority
        };
        let (min, max) = priority_range(policy)?;
        if priority < min || priority > max {
            return Err(EINVAL);
        }
        // KEEP_POLICY keeps the reset-on-fork flag too; KEEP_PARAMS
        // checks the thread's own parameters against the policy asked
        // for, then keeps the policy as well, as Linux's does.
        if flags & SCHED_FLAG_KEEP_POLICY == 0 {
            self.reset_on_fork = flags & SCHED_FLAG_RESET_ON_FORK != 0;
        }
        if flags & SCHED_FLAG_KEEP_PARAMS != 0 {
            return Ok(());
        }
        if max == 0 {
            self.set_nice(nice as i64);
        }
        self.policy = policy;
        self.priority = priority;
        Ok(())
    }

    /// sched_getscheduler's answer.
    pub fn scheduler(&self) -> u32 {
        self.policy
            | if self.reset_on_fork {
                SCHED_RESET_ON_FORK
            } else {
                0
            }
    }

    /// sched_setscheduler (`policy` None: sched_setparam, which keeps the
    /// policy).
    pub fn set(&mut self, policy: Option<i64>, priority: i64) -> Result<(), i64> {
        let (policy, reset) = match policy {
            None => (self.policy, self.reset_on_fork),
            Some(p) if p < 0 => return Err(EINVAL),
            Some(p) => {
                let p = p as u64;
                let reset = p & SCHED_RESET_ON_FORK as u64 != 0;
                let p = p & !(SCHED_RESET_ON_FORK as u64);
                (u32::try_from(p).map_err(|_| EINVAL)?, reset)
            }
        };
        if policy == SCHED_DEADLINE {
            return Err(EINVAL);
        }
        let (min, max) = priority_range(policy)?;
        if priority < min as i64 || priority > max as i64 {
            return Err(EINVAL);
        }
        self.policy = policy;
        self.priority = priority as u32;
        self.reset_on_fork = reset;
        Ok(())
    }

    /// setpriority: Linux clamps the value into the nice range.
    pub fn set_nice(&mut self, nice: i64) {
        self.nice = nice.clamp(NICE_MIN as i64, NICE_MAX as i64) as i32;
    }

    /// getpriority's raw answer (`20 - nice`, so it is never negative;
    /// libc turns it back).
    pub fn priority_value(&self) -> i64 {
        20 - self.nice as i64
    }

    /// sched_rr_get_interval: the time slice, `tick_ns` (how often the
    /// monitor takes a vCPU back from a thread), none for SCHED_FIFO, which
    /// has no slice.
    pub fn interval_ns(&self, tick_ns: u64) -> u64 {
        if self.policy == SCHED_FIFO {
            0
        } else {
            tick_ns
        }
    }

    /// sched_setaffinity with `mask` (bytes, CPU 0 first) on a processor of
    /// `cpus` vCPUs: EINVAL if it names none of them.
    pub fn set_affinity(&mut self, mask: &[u8], cpus: usize) -> Result<(), i64> {
        let mut bits = 0u64;
        for (i, b) in mask.iter().take(8).enumerate() {
            bits |= (*b as u64) << (8 * i);
        }
        let bits = bits & all_cpus(cpus);
        if bits == 0 {
            return Err(EINVAL);
        }
        self.affinity = bits;
        Ok(())
    }

    /// A new thread's or child's: the same, unless SCHED_RESET_ON_FORK.
    pub fn for_child(&self) -> Sched {
        if !self.reset_on_fork {
            return *self;
        }
        Sched {
            policy: SCHED_OTHER,
            priority: 0,
            reset_on_fork: false,
            nice: self.nice.max(0),
            affinity: self.affinity,
            ioprio: self.ioprio,
        }
    }
}

/// The bits of `cpus` vCPUs.
fn all_cpus(cpus: usize) -> u64 {
    if cpus >= 64 {
        u64::MAX
    } else {
        (1u64 << cpus) - 1
    }
}

/// sched_get_priority_min and _max of `policy`.
pub fn priority_range(policy: u32) -> Result<(u32, u32), i64> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_attr_sets_and_reads_what_setscheduler_and_nice_do() {
        let mut s = Sched::new(2);
        let mut a = [0u8; SCHED_ATTR_LEN];
        a[4] = SCHED_BATCH as u8;
        a[16..20].copy_from_slice(&5i32.to_le_bytes());
        assert_eq!(s.set_attr(&a), Ok(()));
        assert_eq!((s.policy, s.nice), (SCHED_BATCH, 5));
        assert_eq!(&s.attr()[4..24], &a[4..24]);
        // FIFO 10 with reset-on-fork: the nice value stays, unreported.
        let mut rt = [0u8; SCHED_ATTR_LEN];
        rt[4] = SCHED_FIFO as u8;
        rt[8] = 1;
        rt[20] = 10;
        assert_eq!(s.set_attr(&rt), Ok(()));
        assert_eq!(s.scheduler(), SCHED_FIFO | SCHED_RESET_ON_FORK);
        assert_eq!(&s.attr()[4..24], &rt[4..24]);
        // Kept policy, a nice value past the range clamped.
        let mut keep = [0u8; SCHED_ATTR_LEN];
        keep[4] = 7;
        keep[8] = 0x08;
        keep[16..20].copy_from_slice(&(-30i32).to_le_bytes());
        assert_eq!(s.set_attr(&keep), Err(EINVAL), "FIFO with priority 0");
        s.set(Some(SCHED_OTHER as i64), 0).ok();
        assert_eq!(s.set_attr(&keep), Ok(()));
        assert_eq!((s.policy, s.nice), (SCHED_OTHER, NICE_MIN));
        let mut params = [0u8; SCHED_ATTR_LEN];
        params[4] = SCHED_BATCH as u8;
        params[8] = 0x10;
        params[16] = 9;
        assert_eq!(s.set_attr(&params), Ok(()));
        assert_eq!((s.policy, s.nice), (SCHED_OTHER, NICE_MIN));
        let mut bad = [0u8; SCHED_ATTR_LEN];
        bad[8] = 0x80;
        assert_eq!(s.set_attr(&bad), Err(EINVAL));
        bad[8] = 0;
        bad[4] = SCHED_DEADLINE as u8;
        assert_eq!(s.set_attr(&bad), Err(EINVAL));
    }

    #[test]
    fn io_priorities_are_checked_as_linux_checks_them() {
        assert_eq!(check_ioprio(3 << 13, false), Ok(3 << 13));
        assert_eq!(check_ioprio(2 << 13 | 2, false), Ok(2 << 13 | 2));
        assert_eq!(check_ioprio(1 << 13, false), Err(crate::cred::EPERM));
        assert_eq!(check_ioprio(1 << 13, true), Ok(1 << 13));
        assert_eq!(check_ioprio(4 << 13, true), Err(EINVAL));
        assert_eq!(check_ioprio(3, true), Err(EINVAL));
        assert_eq!(check_ioprio(-1, true), Err(EINVAL));
        assert_eq!(ioprio_best(0, 3 << 13), IOPRIO_BE_NORM);
        assert_eq!(ioprio_best(1 << 13 | 7, 0), 1 << 13 | 7);
    }

    #[test]
    fn policies_and_priorities_are_checked_as_linux_checks_them() {
        let mut s = Sched::new(2);
        assert_eq!(s.set(Some(SCHED_FIFO as i64), 0), Err(EINVAL));
        assert_eq!(s.set(Some(SCHED_FIFO as i64), 100), Err(EINVAL));
        assert_eq!(s.set(Some(SCHED_OTHER as i64), 1), Err(EINVAL));
        assert_eq!(s.set(Some(4), 0), Err(EINVAL), "SCHED_ISO is not Linux's");
        assert_eq!(s.set(Some(-1), 0), Err(EINVAL));
        assert_eq!(s.set(Some(SCHED_DEADLINE as i64), 0), Err(EINVAL));
        assert_eq!(s, Sched::new(2), "nothing changed");
        s.set(Some(SCHED_RR as i64), 50).unwrap();
        assert_eq!((s.scheduler(), s.priority), (SCHED_RR, 50));
        s.set(None, 7).unwrap();
        assert_eq!((s.policy, s.priority), (SCHED_RR, 7));
        assert_eq!(s.set(None, 0), Err(EINVAL), "RR needs a priority");
        assert_eq!(s.interval_ns(10_000_000), 10_000_000);
        s.set(Some(SCHED_FIFO as i64), 1).unwrap();
        assert_eq!(s.interval_ns(10_000_000), 0);
        assert_eq!(priority_range(SCHED_IDLE), Ok((0, 0)));
        assert_eq!(priority_range(9), Err(EINVAL));
    }

    #[test]
    fn reset_on_fork_gives_children_the_default_policy() {
        let mut s = Sched::new(4);
        s.set(Some((SCHED_FIFO | SCHED_RESET_ON_FORK) as i64), 10)
            .unwrap();
        s.set_nice(-5);
        assert_eq!(s.scheduler(), SCHED_FIFO | SCHED_RESET_ON_FORK);
        let c = s.for_child();
        assert_eq!((c.scheduler(), c.priority, c.nice), (SCHED_OTHER, 0, 0));
        s.set(Some(SCHED_BATCH as i64), 0).unwrap();
        s.set_nice(3);
        assert_eq!(s.for_child(), s);
    }

    #[test]
    fn nice_is_clamped_and_affinity_must_name_a_vcpu() {
        let mut s = Sched::new(2);
        s.set_nice(-100);
        assert_eq!((s.nice, s.priority_value()), (-20, 40));
        s.set_nice(100);
        assert_eq!((s.nice, s.priority_value()), (19, 1));
        assert_eq!(s.affinity, 0b11);
        assert_eq!(s.set_affinity(&[0b100], 2), Err(EINVAL), "no such vCPU");
        s.set_affinity(&[0b110, 0xff], 2).unwrap();
        assert_eq!(s.affinity, 0b10);
        assert_eq!(Sched::new(64).affinity, u64::MAX);
    }
}
