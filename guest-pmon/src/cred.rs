//! A process's user and group ids, and Linux's rules for changing them
//! (setuid(2), setreuid(2), setresuid(2), setfsuid(2) and their group
//! twins; credentials(7)). Every program starts as root, as the VMM's
//! user runs it; one that gives root up (a daemon dropping to `nobody`,
//! CPython's `subprocess(user=...)`) reads its new ids back and cannot
//! take root again, which such programs check. Decided: the ids are kept,
//! reported (`getuid`, `/proc/PID/status`), inherited, stamped on the files
//! a process makes in /tmp, and checked by `kill`; file access is not
//! checked against them (a process keeps root's reach over files, as if it
//! held CAP_DAC_OVERRIDE), and set-user-ID files do not change ids at
//! `execve`. Privilege is Linux's capabilities ([`crate::caps`]): a process
//! holding CAP_SETUID (CAP_SETGID) may set any user (group) id, and its
//! capabilities follow its user ids as Linux's do.

use crate::caps::{self, Caps};

/// Linux's EPERM.
pub const EPERM: i64 = 1;

/// One kind of id (user or group): real, effective, saved, file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub fs: u32,
}

/// "Leave it as it is" in the calls' arguments: (uid_t)-1.
const KEEP: u32 = u32::MAX;

impl Ids {
    /// Whether its real, effective and saved ids are all `id`.
    fn all(&self, id: u32) -> bool {
        self.real == id && self.effective == id && self.saved == id
    }

    fn is(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// setuid: a privileged caller sets all four; another may set its
    /// effective (and file system) id to its real or saved one.
    pub fn set(&mut self, id: u32, privileged: bool) -> Result<(), i64> {
        if id == KEEP {
            return Err(22);
        }
        if privileged {
            *self = Ids {
                real: id,
                effective: id,
                saved: id,
                fs: id,
            };
        } else if id == self.real || id == self.saved {
            self.effective = id;
            self.fs = id;
        } else {
            return Err(EPERM);
        }
        Ok(())
    }

    /// setreuid: a new real id must be the real or effective one, a new
    /// effective one any of the three, unless privileged; the saved id
    /// follows the effective one when the real one is set or the
    /// effective one becomes other than the old real one.
    pub fn set_re(&mut self, real: u32, effective: u32, privileged: bool) -> Result<(), i64> {
        let old = *self;
        if !privileged {
            if real != KEEP && real != old.real && real != old.effective {
                return Err(EPERM);
            }
            if effective != KEEP && !old.is(effective) {
                return Err(EPERM);
            }
        }
        if real != KEEP {
            self.real = real;
        }
        if effective != KEEP {
            self.effective = effective;
        }
        if real != KEEP || (effective != KEEP && effective != old.real) {
            self.saved = self.effective;
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setresuid: each id given must be one of the three unless
    /// privileged.
    pub fn set_res(
        &mut self,
        real: u32,
        effective: u32,
        saved: u32,
        privileged: bool,
    ) -> Result<(), i64> {
        if !privileged
            && [real, effective, saved]
                .iter()
                .any(|&i| i != KEEP && !self.is(i))
        {
            return Err(EPERM);
        }
        for (slot, id) in [
            (&mut self.real, real),
            (&mut self.effective, effective),
            (&mut self.saved, saved),
        ] {
            if id != KEEP {
                *slot = id;
            }
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setfsuid: the old file system id, whether or not it changed (a
    /// privileged caller, or one of the caller's ids).
    pub fn set_fs(&mut self, id: u32, privileged: bool) -> u32 {
        let old = self.fs;
        if id != KEEP && (privileged || self.is(id) || id == self.fs) {
            self.fs = id;
        }
        old
    }

    /// execve: the saved id becomes the effective one.
    pub fn exec(&mut self) {
        self.saved = self.effective;
    }
}

/// A process's credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    pub uid: Ids,
    pub gid: Ids,
    pub caps: Caps,
}

impl Cred {
    /// Whether its effective capabilities hold `cap` ([`crate::caps`]).
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.has(cap)
    }

    /// Whether it may send `uid` and `gid` as its own in SCM_CREDENTIALS
    /// (Linux's `scm_check_creds`: one of its real, effective and saved
    /// ids, or CAP_SETUID and CAP_SETGID; the pid is the caller's to check).
    pub fn may_claim(&self, uid: u32, gid: u32) -> bool {
        let own = |ids: &Ids, id: u32| ids.real == id || ids.effective == id || ids.saved == id;
        (own(&self.uid, uid) || self.capable(crate::caps::SETUID))
            && (own(&self.gid, gid) || self.capable(crate::caps::SETGID))
    }

    fn uids(&self) -> crate::caps::Uids {
        (self.uid.real, self.uid.effective, self.uid.saved)
    }

    /// Changes the user ids with `change` (given whether CAP_SETUID is
    /// held) and the capabilities with them, as setuid, setreuid and
    /// setresuid do.
    pub fn change_uid<T>(
        &mut self,
        change: impl FnOnce(&mut Ids, bool) -> Result<T, i64>,
    ) -> Result<T, i64> {
        let old = self.uids();
        let privileged = self.capable(caps::SETUID);
        let v = change(&mut self.uid, privileged)?;
        let new = self.uids();
        self.caps.after_setuid(old, new);
        Ok(v)
    }

    /// setfsuid: the old file system id.
    pub fn change_fsuid(&mut self, id: u32) -> u32 {
        let old = self.uid.set_fs(id, self.capable(caps::SETUID));
        self.caps.after_setfsuid(old, self.uid.fs);
        old
    }

    /// execve of a file with no set-user-ID bit or file capabilities.
    pub fn exec(&mut self) {
        self.uid.exec();
        self.gid.exec();
        let uids = self.uids();
        self.caps.exec(uids);
    }

    /// Whether it may give a file owned by `owner` (user, group) the user
    /// `uid` and the group `gid` (None: unchanged), as Linux's chown_ok
    /// and chgrp_ok decide: with CAP_CHOWN anything; else only the
    /// file's owner (by file-system id), keeping the owner, and giving a
    /// group it is in (`groups`: its supplementary groups).
    pub fn may_chown(
        &self,
        groups: &[u32],
        owner: (u32, u32),
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> bool {
        if self.capable(caps::CHOWN) {
            return true;
        }
        let owns = self.uid.fs == owner.0;
        let uid_ok = uid.is_none_or(|u| owns && u == owner.0);
        let gid_ok =
            gid.is_none_or(|g| owns && (g == owner.1 || g == self.gid.fs || groups.contains(&g)));
        uid_ok && gid_ok
    }

    /// Whether a process with these credentials may send a signal to one
    /// with `target`'s (kill(2)): privileged, or its real or effective
    /// user id is the target's real or saved one (CAP_KILL).
    pub fn may_signal(&self, target: &Cred) -> bool {
        self.capable(caps::KILL)
            || [self.uid.real, self.uid.effective]
                .iter()
                .any(|&u| u == target.uid.real || u == target.uid.saved)
    }

    /// Whether a process with these credentials may read or set the
    /// resource limits of one with `target`'s (prlimit(2) on another
    /// process): its real user and group ids are each of the target's real,
    /// effective and saved ones, or it holds CAP_SYS_RESOURCE.
    pub fn may_prlimit(&self, target: &Cred) -> bool {
        self.capable(caps::SYS_RESOURCE)
            || (target.uid.all(self.uid.real) && target.gid.all(self.gid.real))
    }

    /// Whether a process with these credentials may reach into one with
    /// `target`'s (ptrace's PTRACE_MODE_REALCREDS, as pidfd_getfd asks):
    /// privileged, or its real user and group ids are every one of the
    /// target's user and group ids, the target is `dumpable`, and it holds
    /// no permitted capability the caller lacks.
    pub fn may_trace(&self, target: &Cred, dumpable: bool) -> bool {
        // Without CAP_SYS_PTRACE, also none of the target's permitted
        // capabilities may be beyond the caller's (cap_ptrace_access_check).
        self.capable(caps::SYS_PTRACE)
            || (dumpable
                && target.uid.all(self.uid.real)
                && target.gid.all(self.gid.real)
                && target.caps.permitted & !self.caps.permitted == 0)
    }
}

/// What a caller asks of a file, as Linux's MAY_ bits (and access(2)'s
/// R_OK, W_OK, X_OK).
pub const MAY_READ: u32 = 4;
pub const MAY_WRITE: u32 = 2;
pub const MAY_EXEC: u32 = 1;

/// A file's owner, group and mode (type bits included), for a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owned {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl From<&crate::tmpfs::Stat> for Owned {
    fn from(st: &crate::tmpfs::Stat) -> Owned {
        Owned {
            uid: st.uid,
            gid: st.gid,
            mode: st.mode,
        }
    }
}

impl From<&lego_proto::storage::StoreStat> for Owned {
    fn from(st: &lego_proto::storage::StoreStat) -> Owned {
        Owned {
            uid: st.uid,
            gid: st.gid,
            mode: st.mode,
        }
    }
}

impl From<&lego_proto::program::FileStat> for Owned {
    fn from(st: &lego_proto::program::FileStat) -> Owned {
        Owned {
            uid: st.uid,
            gid: st.gid,
            mode: st.mode,
        }
    }
}

impl Cred {
    /// Whether the caller may `want` (MAY_ bits) of a file `f`, as Linux's
    /// `generic_permission`: the owner's bits if its file-system uid owns
    /// it, else the group's if its file-system gid or one of `groups` is
    /// the file's, else the others'; CAP_DAC_OVERRIDE passes any read and
    /// write, and an execute where some execute bit is set or of a
    /// directory; CAP_DAC_READ_SEARCH passes a read, and a directory's
    /// search.
    pub fn may_access(&self, groups: &[u32], f: Owned, want: u32) -> bool {
        let want = want & (MAY_READ | MAY_WRITE | MAY_EXEC);
        let dir = f.mode & 0o170000 == 0o040000;
        let bits = if self.uid.fs == f.uid {
            f.mode >> 6
        } else if self.gid.fs == f.gid || groups.contains(&f.gid) {
            f.mode >> 3
        } else {
            f.mode
        } & 0o7;
        if want & !bits == 0 {
            return true;
        }
        if (want & MAY_EXEC == 0 || f.mode & 0o111 != 0 || dir) && self.capable(caps::DAC_OVERRIDE)
        {
            return true;
        }
        let search_only = if dir {
            want & !(MAY_READ | MAY_EXEC) == 0
        } else {
            want == MAY_READ
        };
        search_only && self.capable(caps::DAC_READ_SEARCH)
    }

    /// The credentials access(2) and faccessat(2) check with: the real
    /// ids in place of the file-system ones, and a real uid other than
    /// root's has no capabilities (root's has its permitted set), as
    /// Linux's `access_override_creds`.
    pub fn for_access(&self) -> Cred {
        let mut c = *self;
        c.uid.fs = self.uid.real;
        c.gid.fs = self.gid.real;
        c.caps.effective = if self.uid.real == 0 {
            self.caps.permitted
        } else {
            0
        };
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_access_follows_the_owner_group_and_other_bits() {
        let ids = |id| Ids {
            real: id,
            effective: id,
            saved: id,
            fs: id,
        };
        let mut c = Cred {
            uid: ids(1000),
            gid: ids(100),
            ..Cred::default()
        };
        c.caps.effective = 0;
        let f = |uid: u32, gid: u32, mode: u32| Owned {
            uid,
            gid,
            mode: 0o100000 | mode,
        };
        // /etc/shadow (root:42 0640): no read for others.
        assert!(!c.may_access(&[], f(0, 42, 0o640), MAY_READ));
        assert!(c.may_access(&[42], f(0, 42, 0o640), MAY_READ));
        assert!(!c.may_access(&[42], f(0, 42, 0o640), MAY_WRITE));
        // The owner class only, even where the group's bits would allow.
        assert!(!c.may_access(&[], f(1000, 100, 0o070), MAY_READ));
        assert!(c.may_access(&[], f(1000, 100, 0o600), MAY_READ | MAY_WRITE));
        assert!(!c.may_access(&[], f(1000, 100, 0o600), MAY_EXEC));
        // Root: any read and write; an execute needs some x bit.
        let root = Cred::default();
        assert!(root.may_access(&[], f(1000, 100, 0o000), MAY_READ | MAY_WRITE));
        assert!(!root.may_access(&[], f(1000, 100, 0o644), MAY_EXEC));
        assert!(root.may_access(&[], f(1000, 100, 0o100), MAY_EXEC));
        let dir = Owned {
            uid: 1000,
            gid: 100,
            mode: 0o040000,
        };
        assert!(root.may_access(&[], dir, MAY_EXEC));
        // CAP_DAC_READ_SEARCH alone: reads, and a directory's search.
        let mut reader = c;
        reader.caps.effective = 1 << caps::DAC_READ_SEARCH;
        assert!(reader.may_access(&[], f(0, 0, 0), MAY_READ));
        assert!(!reader.may_access(&[], f(0, 0, 0), MAY_WRITE));
        assert!(reader.may_access(
            &[],
            Owned {
                uid: 0,
                gid: 0,
                mode: 0o040000
            },
            MAY_EXEC
        ));
        // access(2) checks the real ids: a set-user-ID root program run
        // by a user is the user there.
        let mut suid = c;
        suid.uid.effective = 0;
        suid.uid.fs = 0;
        suid.caps.effective = u64::MAX;
        let a = suid.for_access();
        assert_eq!((a.uid.fs, a.caps.effective), (1000, 0));
        assert!(!a.may_access(&[], f(0, 0, 0o600), MAY_READ));
    }

    fn ids(real: u32, effective: u32, saved: u32) -> Ids {
        Ids {
            real,
            effective,
            saved,
            fs: effective,
        }
    }

    #[test]
    fn tracing_needs_every_id_of_the_target_or_root() {
        let user = |u: Ids, g: Ids| {
            let mut c = Cred::default();
            c.change_uid(|ids, p| ids.set_res(u.real, u.effective, u.saved, p))
                .unwrap();
            c.gid = g;
            c
        };
        let me = user(ids(1000, 1000, 1000), ids(100, 100, 100));
        assert!(me.may_trace(&me, true));
        assert!(!me.may_trace(&me, false), "not dumpable");
        // A set-user-id program run by the same user keeps another id.
        assert!(!me.may_trace(&user(ids(1000, 0, 0), ids(100, 100, 100)), true));
        assert!(!me.may_trace(&user(ids(1000, 1000, 1000), ids(100, 5, 100)), true));
        let root = Cred::default();
        assert!(root.may_trace(&me, false));
        assert!(!me.may_trace(&root, true));
    }

    #[test]
    fn chown_as_linux_allows_it() {
        let mut me = Cred::default();
        me.change_uid(|ids, p| ids.set(1000, p)).unwrap();
        me.gid = ids(100, 100, 100);
        let mine = (1000, 100);
        assert!(me.may_chown(&[], mine, None, None));
        assert!(me.may_chown(&[], mine, Some(1000), Some(100)));
        assert!(!me.may_chown(&[], mine, Some(1001), None), "giving it away");
        assert!(me.may_chown(&[7], mine, None, Some(7)), "a group it is in");
        assert!(!me.may_chown(&[7], mine, None, Some(8)));
        assert!(!me.may_chown(&[7], (0, 100), None, Some(7)), "not its file");
        assert!(!me.may_chown(&[], (0, 0), Some(0), None));
        let root = Cred::default();
        assert!(root.may_chown(&[], (5, 5), Some(6), Some(7)));
    }

    #[test]
    fn limits_of_another_process_need_its_ids_or_root() {
        let user = |uid: u32| {
            let mut c = Cred::default();
            c.change_uid(|ids, p| ids.set(uid, p)).unwrap();
            c.gid = ids(100, 100, 100);
            c
        };
        let (me, other) = (user(1000), user(1001));
        assert!(me.may_prlimit(&me));
        assert!(!me.may_prlimit(&other));
        assert!(!me.may_prlimit(&Cred::default()));
        assert!(Cred::default().may_prlimit(&other));
    }

    #[test]
    fn root_dropping_to_a_user_cannot_come_back() {
        let mut u = Ids::default();
        u.set(65534, true).unwrap();
        assert_eq!(u, ids(65534, 65534, 65534));
        assert_eq!(u.set(0, false), Err(EPERM));
        assert_eq!(u.set_re(0, KEEP, false), Err(EPERM));
        assert_eq!(u.set_res(KEEP, 0, KEEP, false), Err(EPERM));
        assert_eq!(u.set_fs(0, false), 65534);
        assert_eq!(u.fs, 65534, "not changed");
    }

    #[test]
    fn a_saved_root_can_be_taken_back() {
        let mut u = Ids::default();
        // Effective only: the saved id stays root.
        u.set_res(KEEP, 1000, KEEP, true).unwrap();
        assert_eq!(u, ids(0, 1000, 0));
        assert_eq!(u.set(0, false), Ok(()));
        assert_eq!(u, ids(0, 0, 0));
        // setreuid with a new effective id other than the real one moves
        // the saved id.
        u.set_re(KEEP, 1000, true).unwrap();
        assert_eq!(u, ids(0, 1000, 1000));
        assert_eq!(u.set(0, false), Ok(()), "the real id");
        // Swapping real and effective, as programs do for a moment.
        let mut v = ids(1000, 0, 0);
        v.set_re(0, 1000, true).unwrap();
        assert_eq!(v, ids(0, 1000, 1000));
        v.set_re(1000, 0, false).unwrap();
        assert_eq!(v, ids(1000, 0, 0));
    }

    #[test]
    fn an_unprivileged_caller_moves_among_its_own_ids() {
        let mut u = ids(1000, 1001, 1002);
        assert_eq!(u.set_res(1002, 1000, 1001, false), Ok(()));
        assert_eq!(u, ids(1002, 1000, 1001));
        assert_eq!(u.set_res(7, KEEP, KEEP, false), Err(EPERM));
        assert_eq!(u.set(1001, false), Ok(()));
        assert_eq!((u.effective, u.fs), (1001, 1001));
        assert_eq!(u.set_fs(1002, false), 1001);
        assert_eq!(u.fs, 1002);
        u.exec();
        assert_eq!(u.saved, u.effective);
        assert_eq!(u.set(KEEP, true), Err(22));
    }

    #[test]
    fn signals_go_to_the_same_user_or_from_root() {
        let root = Cred::default();
        let mut nobody = Cred::default();
        nobody.change_uid(|u, p| u.set(65534, p)).unwrap();
        let mut other = Cred::default();
        other.change_uid(|u, p| u.set(1000, p)).unwrap();
        assert!(root.may_signal(&nobody));
        assert!(nobody.may_signal(&nobody));
        assert!(!nobody.may_signal(&root));
        assert!(!nobody.may_signal(&other));
        // A set-user-ID-like process: real 1000, effective root.
        let mut mixed = Cred::default();
        mixed.change_uid(|u, p| u.set_res(1000, 0, 0, p)).unwrap();
        assert!(other.may_signal(&mixed), "its real id is the sender's");
    }
}
