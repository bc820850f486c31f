//! User and group ids: getuid and its kin, setuid, setreuid, setresuid,
//! setfsuid and their group twins, with Linux's rules ([`pmon::cred`]).

use pmon::caps;
use pmon::cred::Ids;

use super::*;

impl Kernel {
    pub(super) fn sys_ids(&mut self, pid: Pid, n: u64, a: [u64; 6]) -> Ret {
        let Some(cred) = self.procs.get(&pid).map(|p| p.cred) else {
            return err(ESRCH);
        };
        let id = |i: usize| a[i] as u32;
        // CAP_SETGID for group ids; user ids go through the credentials,
        // which move the capabilities with them.
        let setgid = cred.capable(caps::SETGID);
        let mut new = cred;
        let done = match n {
            nr::GETUID => return Ret::Val(cred.uid.real as i64),
            nr::GETEUID => return Ret::Val(cred.uid.effective as i64),
            nr::GETGID => return Ret::Val(cred.gid.real as i64),
            nr::GETEGID => return Ret::Val(cred.gid.effective as i64),
            nr::GETRESUID | nr::GETRESGID => {
                let ids: Ids = if n == nr::GETRESUID {
                    cred.uid
                } else {
                    cred.gid
                };
                let r = self.space_mut(pid).and_then(|s| {
                    for (at, v) in [(a[0], ids.real), (a[1], ids.effective), (a[2], ids.saved)] {
                        uaccess::write_u32(s, at, v)?;
                    }
                    Ok(0)
                });
                return val(r);
            }
            // The old id, whether or not it changed, as Linux's.
            nr::SETFSUID => Ok(new.change_fsuid(id(0))),
            nr::SETFSGID => Ok(new.gid.set_fs(id(0), setgid)),
            nr::SETUID => new.change_uid(|u, p| u.set(id(0), p)).map(|_| 0),
            nr::SETGID => new.gid.set(id(0), setgid).map(|_| 0),
            nr::SETREUID => new.change_uid(|u, p| u.set_re(id(0), id(1), p)).map(|_| 0),
            nr::SETREGID => new.gid.set_re(id(0), id(1), setgid).map(|_| 0),
            nr::SETRESUID => new
                .change_uid(|u, p| u.set_res(id(0), id(1), id(2), p))
                .map(|_| 0),
            nr::SETRESGID => new.gid.set_res(id(0), id(1), id(2), setgid).map(|_| 0),
            _ => return err(ENOSYS),
        };
        match done {
            Ok(v) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.cred = new;
                }
                Ret::Val(v as i64)
            }
            Err(e) => err(e),
        }
    }

    /// Files /tmp makes from now on belong to process `pid`'s file system
    /// ids (called before each node a process makes there).
    pub(super) fn tmp_made_by(&mut self, pid: Pid) {
        let (uid, gid) = self
            .procs
            .get(&pid)
            .map_or((0, 0), |p| (p.cred.uid.fs, p.cred.gid.fs));
        self.tmp.made_by(uid, gid);
    }
}
