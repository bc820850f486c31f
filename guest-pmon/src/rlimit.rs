//! Resource limits (getrlimit(2), setrlimit(2), prlimit(2)): what a first
//! process starts with, and Linux's checks of a new limit. The limits are
//! inherited across fork and kept across execve; Lego enforces the ones
//! its monitor has a counter for (open files, file size, locked memory,
//! message queues, the stack's size) and keeps the rest for programs to
//! read back, as a host without those counters would.

/// How many resources Linux has (RLIM_NLIMITS).
pub const COUNT: usize = 16;

/// Soft and hard limit of each resource, in Linux's order.
pub type Limits = [(u64, u64); COUNT];

pub const RLIMIT_CPU: usize = 0;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_CORE: usize = 4;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_MSGQUEUE: usize = 12;
pub const RLIMIT_NICE: usize = 13;
pub const RLIMIT_RTPRIO: usize = 14;

/// RLIM_INFINITY.
pub const INFINITY: u64 = u64::MAX;

/// Linux's `fs.nr_open` default: no hard RLIMIT_NOFILE may be above it.
pub const NR_OPEN: u64 = 1 << 20;

const EPERM: i64 = 1;
const EINVAL: i64 = 22;

/// The limits of a program's first process (and of the parent outside the
/// processor that programs see as process 1): Linux's defaults for the
/// ones it bounds, no bound for the rest.
pub fn initial(stack: u64) -> Limits {
    let mut l = [(INFINITY, INFINITY); COUNT];
    l[RLIMIT_STACK] = (stack, INFINITY);
    // No core files by default; no raised priority without privilege
    // (what the scheduling calls check, `kernel::syscall::sched`).
    l[RLIMIT_CORE] = (0, INFINITY);
    l[RLIMIT_NICE] = (0, 0);
    l[RLIMIT_RTPRIO] = (0, 0);
    l[RLIMIT_NOFILE] = (crate::fd::DEFAULT_LIMIT as u64, crate::fd::MAX_LIMIT as u64);
    l[RLIMIT_MSGQUEUE] = (819_200, 819_200);
    // Linux's default since 5.16.
    l[RLIMIT_MEMLOCK] = (8 << 20, 8 << 20);
    l
}

/// Linux's checks of `new` for `resource`, whose limits are `old`, in its
/// order (do_prlimit): an unknown resource or a soft limit above the hard
/// one is EINVAL; a hard RLIMIT_NOFILE above `NR_OPEN`, or a hard limit
/// raised without CAP_SYS_RESOURCE (`may_raise`), is EPERM.
pub fn check(
    resource: usize,
    old: (u64, u64),
    new: (u64, u64),
    may_raise: bool,
) -> Result<(), i64> {
    if resource >= COUNT || new.0 > new.1 {
        return Err(EINVAL);
    }
    if resource == RLIMIT_NOFILE && new.1 > NR_OPEN {
        return Err(EPERM);
    }
    if new.1 > old.1 && !may_raise {
        return Err(EPERM);
    }
    Ok(())
}

/// What RLIMIT_CPU does to a process that has used `used_ns` of CPU
/// time, as Linux's check_process_timers: past the hard limit SIGKILL;
/// past the soft one SIGXCPU, and the soft limit moves a second on (so
/// one comes each second until the hard limit), which getrlimit shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuLimit {
    Kill,
    Xcpu { soft: u64 },
}

pub fn past_cpu_limit(used_ns: u64, (soft, hard): (u64, u64)) -> Option<CpuLimit> {
    const NS: u64 = 1_000_000_000;
    if soft == INFINITY {
        return None;
    }
    if hard != INFINITY && used_ns >= hard.saturating_mul(NS) {
        return Some(CpuLimit::Kill);
    }
    if used_ns >= soft.saturating_mul(NS) {
        let soft = if soft < hard { soft + 1 } else { soft };
        return Some(CpuLimit::Xcpu { soft });
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_past_the_limits() {
        const S: u64 = 1_000_000_000;
        assert_eq!(past_cpu_limit(5 * S, (INFINITY, INFINITY)), None);
        assert_eq!(past_cpu_limit(S - 1, (1, 2)), None);
        assert_eq!(past_cpu_limit(S, (1, 2)), Some(CpuLimit::Xcpu { soft: 2 }));
        assert_eq!(past_cpu_limit(2 * S, (2, 2)), Some(CpuLimit::Kill));
        // No hard limit: a SIGXCPU a second, for ever.
        assert_eq!(
            past_cpu_limit(3 * S, (3, INFINITY)),
            Some(CpuLimit::Xcpu { soft: 4 })
        );
    }

    use super::*;

    #[test]
    fn a_first_process_starts_with_linuxs_defaults() {
        let l = initial(8 << 20);
        assert_eq!(l[RLIMIT_STACK], (8 << 20, INFINITY));
        assert_eq!(l[RLIMIT_NOFILE], (1024, 65536));
        assert_eq!(l[RLIMIT_MEMLOCK], (8 << 20, 8 << 20));
        assert_eq!(l[RLIMIT_NICE], (0, 0));
        assert_eq!(l[0], (INFINITY, INFINITY));
    }

    #[test]
    fn new_limits_are_checked_in_linuxs_order() {
        let old = (1024, 4096);
        assert_eq!(check(16, old, (1, 2), true), Err(EINVAL));
        assert_eq!(check(RLIMIT_NOFILE, old, (10, 5), false), Err(EINVAL));
        assert_eq!(
            check(RLIMIT_NOFILE, old, (10, NR_OPEN + 1), true),
            Err(EPERM)
        );
        assert_eq!(check(RLIMIT_NOFILE, old, (10, NR_OPEN), true), Ok(()));
        // Lowering needs no privilege, raising the hard limit does.
        assert_eq!(check(RLIMIT_NOFILE, old, (10, 20), false), Ok(()));
        assert_eq!(check(RLIMIT_NOFILE, old, (4096, 4096), false), Ok(()));
        assert_eq!(check(RLIMIT_NOFILE, old, (10, 4097), false), Err(EPERM));
        assert_eq!(check(0, old, (INFINITY, INFINITY), true), Ok(()));
    }
}
