//! A process's capabilities and Linux's rules for them (capabilities(7)):
//! the effective, permitted, inheritable, bounding and ambient sets, how
//! capset(2) may change them, what a change of user id and execve do to
//! them, and prctl's bounding-set, ambient-set and keep-caps options.
//!
//! Decided: the sets are kept per process, not per thread (Linux keeps
//! them per thread; glibc and musl change ids on every thread at once, and
//! a capset on one thread of a threaded process is rare). What the
//! monitor checks, it checks against the effective set: CAP_SETUID and
//! CAP_SETGID for ids and groups, CAP_KILL for signals, CAP_SYS_PTRACE for
//! reaching into another process, CAP_SYS_NICE for scheduling and I/O
//! priorities, CAP_SYS_ADMIN for host names. File access is not checked
//! (every process keeps root's reach over files, `pmon::cred`), and there
//! are no file capabilities or set-user-ID files: execve applies Linux's
//! rule for a file without them, root's programs getting the bounding set.

/// Linux's EPERM and EINVAL.
const EPERM: i64 = 1;
const EINVAL: i64 = 22;

/// The highest capability this kernel knows (CAP_CHECKPOINT_RESTORE), as
/// /proc/sys/kernel/cap_last_cap says on Linux 5.9 and later.
pub const LAST_CAP: u32 = 40;
/// Every capability.
pub const ALL: u64 = (1 << (LAST_CAP + 1)) - 1;

pub const CHOWN: u32 = 0;
pub const DAC_OVERRIDE: u32 = 1;
pub const DAC_READ_SEARCH: u32 = 2;
pub const FOWNER: u32 = 3;
pub const FSETID: u32 = 4;
pub const KILL: u32 = 5;
pub const SETGID: u32 = 6;
pub const SETUID: u32 = 7;
pub const SETPCAP: u32 = 8;
pub const LINUX_IMMUTABLE: u32 = 9;
pub const NET_BIND_SERVICE: u32 = 10;
pub const NET_ADMIN: u32 = 12;
pub const NET_RAW: u32 = 13;
pub const IPC_LOCK: u32 = 14;
pub const IPC_OWNER: u32 = 15;
pub const SYS_CHROOT: u32 = 18;
pub const SYS_PTRACE: u32 = 19;
pub const SYS_ADMIN: u32 = 21;
pub const SYS_NICE: u32 = 23;
pub const SYS_RESOURCE: u32 = 24;
pub const MKNOD: u32 = 27;
pub const MAC_OVERRIDE: u32 = 32;

const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// The capabilities that follow the file system user id: dropped from the
/// effective set when it leaves 0, taken back from the permitted set when
/// it returns.
const FS_MASK: u64 = bit(CHOWN)
    | bit(DAC_OVERRIDE)
    | bit(DAC_READ_SEARCH)
    | bit(FOWNER)
    | bit(FSETID)
    | bit(LINUX_IMMUTABLE)
    | bit(MKNOD)
    | bit(MAC_OVERRIDE);

/// prctl(PR_CAP_AMBIENT)'s operations.
pub const AMBIENT_IS_SET: u64 = 1;
pub const AMBIENT_RAISE: u64 = 2;
pub const AMBIENT_LOWER: u64 = 3;
pub const AMBIENT_CLEAR_ALL: u64 = 4;

/// prctl(PR_GET_SECUREBITS)'s bit for keep-caps (SECBIT_KEEP_CAPS).
pub const SECBIT_KEEP_CAPS: u64 = 1 << 4;

/// One process's capability sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
    /// prctl(PR_SET_KEEPCAPS): the permitted set survives leaving root.
    pub keep: bool,
}

impl Default for Caps {
    /// Root's, as the first process of a run starts.
    fn default() -> Caps {
        Caps {
            effective: ALL,
            permitted: ALL,
            inheritable: 0,
            bounding: ALL,
            ambient: 0,
            keep: false,
        }
    }
}

/// The user ids a change of ids looks at: (real, effective, saved).
pub type Uids = (u32, u32, u32);

impl Caps {
    /// Whether the effective set holds `cap`.
    pub fn has(&self, cap: u32) -> bool {
        cap <= LAST_CAP && self.effective & bit(cap) != 0
    }

    /// capset(2)'s rule: the inheritable set may grow only within the
    /// permitted set (or, with CAP_SETPCAP, anywhere) and never past the
    /// bounding set; the permitted set may only shrink; the effective set
    /// stays within the new permitted one. Ambient capabilities no longer
    /// both permitted and inheritable go. Bits past the last capability
    /// are dropped, as Linux does.
    pub fn set(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), i64> {
        let (effective, permitted, inheritable) =
            (effective & ALL, permitted & ALL, inheritable & ALL);
        let within = |a: u64, b: u64| a & !b == 0;
        if !self.has(SETPCAP) && !within(inheritable, self.inheritable | self.permitted) {
            return Err(EPERM);
        }
        if !within(inheritable, self.inheritable | self.bounding)
            || !within(permitted, self.permitted)
            || !within(effective, permitted)
        {
            return Err(EPERM);
        }
        self.effective = effective;
        self.permitted = permitted;
        self.inheritable = inheritable;
        self.ambient &= permitted & inheritable;
        Ok(())
    }

    /// After setuid, setreuid or setresuid changed the user ids from `old`
    /// to `new`: leaving root altogether clears the permitted and effective
    /// sets (the permitted one stays under keep-caps) and always the
    /// ambient one; an effective id leaving 0 clears the effective set and
    /// one coming back to 0 takes the permitted set.
    pub fn after_setuid(&mut self, old: Uids, new: Uids) {
        let any_root = |(r, e, s): Uids| r == 0 || e == 0 || s == 0;
        if any_root(old) && !any_root(new) {
            if !self.keep {
                self.permitted = 0;
                self.effective = 0;
            }
            self.ambient = 0;
        }
        if old.1 == 0 && new.1 != 0 {
            self.effective = 0;
        }
        if old.1 != 0 && new.1 == 0 {
            self.effective = self.permitted;
        }
    }

    /// After setfsuid changed the file system id from `old` to `new`.
    pub fn after_setfsuid(&mut self, old: u32, new: u32) {
        if old == 0 && new != 0 {
            self.effective &= !FS_MASK;
        }
        if old != 0 && new == 0 {
            self.effective |= self.permitted & FS_MASK;
        }
    }

    /// execve of a file without file capabilities, by a process with user
    /// ids `uids`: a process whose real or effective id is 0 is given the
    /// bounding set (with its inheritable one) as permitted, and as
    /// effective too if its effective id is 0; any other keeps only its
    /// ambient set, in both. Keep-caps is cleared.
    pub fn exec(&mut self, (real, effective, _): Uids) {
        let mut permitted = 0;
        if real == 0 || effective == 0 {
            permitted = self.bounding | self.inheritable;
        }
        self.permitted = permitted | self.ambient;
        self.effective = if effective == 0 {
            self.permitted
        } else {
            self.ambient
        };
        self.keep = false;
    }

    /// prctl(PR_CAPBSET_READ).
    pub fn bound(&self, cap: u64) -> Result<bool, i64> {
        if cap > LAST_CAP as u64 {
            return Err(EINVAL);
        }
        Ok(self.bounding & bit(cap as u32) != 0)
    }

    /// prctl(PR_CAPBSET_DROP): CAP_SETPCAP's.
    pub fn drop_bound(&mut self, cap: u64) -> Result<(), i64> {
        if cap > LAST_CAP as u64 {
            return Err(EINVAL);
        }
        if !self.has(SETPCAP) {
            return Err(EPERM);
        }
        self.bounding &= !bit(cap as u32);
        Ok(())
    }

    /// prctl(PR_CAP_AMBIENT, op, cap): a capability may be raised only
    /// while both permitted and inheritable.
    pub fn ambient_op(&mut self, op: u64, cap: u64) -> Result<i64, i64> {
        if op == AMBIENT_CLEAR_ALL {
            if cap != 0 {
                return Err(EINVAL);
            }
            self.ambient = 0;
            return Ok(0);
        }
        if cap > LAST_CAP as u64 {
            return Err(EINVAL);
        }
        let b = bit(cap as u32);
        match op {
            AMBIENT_IS_SET => Ok((self.ambient & b != 0) as i64),
            AMBIENT_RAISE => {
                if self.permitted & b == 0 || self.inheritable & b == 0 {
                    return Err(EPERM);
                }
                self.ambient |= b;
                Ok(0)
            }
            AMBIENT_LOWER => {
                self.ambient &= !b;
                Ok(0)
            }
            _ => Err(EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capset_only_narrows_what_is_permitted() {
        let mut c = Caps::default();
        let kill = bit(KILL);
        // Dropping from the effective set keeps it permitted.
        c.set(ALL & !kill, ALL, 0).unwrap();
        assert!(!c.has(KILL));
        c.set(ALL, ALL, 0).unwrap();
        assert!(c.has(KILL), "taken back from the permitted set");
        // Once out of the permitted set, it cannot come back.
        c.set(ALL & !kill, ALL & !kill, 0).unwrap();
        assert_eq!(c.set(ALL, ALL, 0), Err(EPERM));
        assert_eq!(
            c.set(ALL, ALL & !kill, 0),
            Err(EPERM),
            "effective within permitted"
        );
        // Bits past the last capability are dropped, not refused.
        c.set(!kill, !kill, 0).unwrap();
        assert_eq!(c.permitted, ALL & !kill);
    }

    #[test]
    fn the_inheritable_set_grows_within_the_permitted_one_without_setpcap() {
        let mut c = Caps::default();
        let no_setpcap = ALL & !bit(SETPCAP) & !bit(KILL);
        c.set(no_setpcap, no_setpcap, 0).unwrap();
        assert_eq!(c.set(no_setpcap, no_setpcap, bit(KILL)), Err(EPERM));
        c.set(no_setpcap, no_setpcap, bit(CHOWN)).unwrap();
        // With CAP_SETPCAP, past the permitted set but not the bounding one.
        let mut r = Caps::default();
        r.set(bit(SETPCAP), bit(SETPCAP), bit(KILL)).unwrap();
        r.bounding &= !bit(CHOWN);
        assert_eq!(r.set(bit(SETPCAP), bit(SETPCAP), bit(CHOWN)), Err(EPERM));
    }

    #[test]
    fn leaving_root_clears_the_sets_unless_keep_caps() {
        let mut c = Caps::default();
        c.after_setuid((0, 0, 0), (1000, 1000, 1000));
        assert_eq!((c.effective, c.permitted), (0, 0));
        let mut k = Caps {
            keep: true,
            ..Caps::default()
        };
        k.after_setuid((0, 0, 0), (1000, 1000, 1000));
        assert_eq!((k.effective, k.permitted), (0, ALL));
        // Effective only: the saved id keeps the permitted set, and the
        // effective set comes back with the effective id.
        let mut e = Caps::default();
        e.after_setuid((0, 0, 0), (0, 1000, 0));
        assert_eq!((e.effective, e.permitted), (0, ALL));
        e.after_setuid((0, 1000, 0), (0, 0, 0));
        assert_eq!(e.effective, ALL);
    }

    #[test]
    fn the_file_system_id_takes_the_file_capabilities() {
        let mut c = Caps::default();
        c.after_setfsuid(0, 1000);
        assert!(!c.has(CHOWN) && !c.has(DAC_OVERRIDE) && !c.has(MKNOD));
        assert!(c.has(SETUID) && c.has(KILL));
        c.after_setfsuid(1000, 0);
        assert_eq!(c.effective, ALL);
    }

    #[test]
    fn execve_gives_root_the_bounding_set_and_others_their_ambient_set() {
        let mut c = Caps::default();
        c.set(bit(KILL), bit(KILL), 0).unwrap();
        c.exec((0, 0, 0));
        assert_eq!((c.effective, c.permitted), (ALL, ALL));
        // A user with an ambient capability keeps it across execve.
        let mut u = Caps {
            keep: true,
            ..Caps::default()
        };
        u.set(ALL, ALL, bit(KILL)).unwrap();
        u.ambient_op(AMBIENT_RAISE, KILL as u64).unwrap();
        u.after_setuid((0, 0, 0), (1000, 1000, 1000));
        assert_eq!(u.ambient, 0, "leaving root clears the ambient set");
        u.after_setuid((1000, 1000, 1000), (1000, 1000, 1000));
        u.set(bit(KILL), bit(KILL), bit(KILL)).unwrap();
        u.ambient_op(AMBIENT_RAISE, KILL as u64).unwrap();
        u.exec((1000, 1000, 1000));
        assert_eq!(
            (u.effective, u.permitted, u.keep),
            (bit(KILL), bit(KILL), false)
        );
        // Real root with another effective id: permitted, not effective.
        let mut s = Caps::default();
        s.exec((0, 1000, 1000));
        assert_eq!((s.effective, s.permitted), (0, ALL));
    }

    #[test]
    fn bounding_and_ambient_operations_check_their_arguments() {
        let mut c = Caps::default();
        assert_eq!(c.bound(KILL as u64), Ok(true));
        assert_eq!(c.bound(41), Err(EINVAL));
        c.drop_bound(KILL as u64).unwrap();
        assert_eq!(c.bound(KILL as u64), Ok(false));
        assert_eq!(
            c.ambient_op(AMBIENT_RAISE, KILL as u64),
            Err(EPERM),
            "not inheritable"
        );
        assert_eq!(c.ambient_op(AMBIENT_CLEAR_ALL, 1), Err(EINVAL));
        assert_eq!(c.ambient_op(9, 1), Err(EINVAL));
        let mut u = Caps {
            effective: 0,
            ..Caps::default()
        };
        assert_eq!(u.drop_bound(KILL as u64), Err(EPERM), "CAP_SETPCAP's");
    }
}
