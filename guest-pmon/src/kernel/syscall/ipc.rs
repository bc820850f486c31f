//! What semctl and msgctl share: the id SEM_STAT and MSG_STAT name by
//! index, a `*_ds` written back for IPC_STAT (0) or *_STAT (the id),
//! and IPC_SET's `*_ds` read from the caller. And what all three kinds
//! of object share: their owners' and creators' ids and modes, checked
//! against the caller's as Linux's `ipcperms` and `ipcctl_obtain_check`
//! check them ([`pmon::sysv::Perm`]).

use super::*;

impl Kernel {
    /// `ds` to the caller's `arg`: IPC_STAT answers 0, SEM_STAT and
    /// MSG_STAT the id.
    pub(super) fn ipc_stat(
        &mut self,
        pid: Pid,
        arg: u64,
        ds: &[u8],
        ipc_stat: bool,
        id: i32,
    ) -> Ret {
        match self.space_mut(pid).and_then(|s| uaccess::write(s, arg, ds)) {
            Ok(()) if ipc_stat => Ret::Val(0),
            Ok(()) => Ret::Val(id as i64),
            Err(e) => err(e),
        }
    }

    /// A new object's owner, creator and mode: the caller's effective ids,
    /// the low nine bits of the get's flags.
    pub(super) fn ipc_new_perm(&self, pid: Pid, flags: u64) -> pmon::sysv::Perm {
        let cred = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
        pmon::sysv::Perm::new(&cred, flags)
    }

    /// A get that found object `id` (with `perm`): its id, or EACCES when
    /// the flags' permission bits ask for more than the caller may have.
    pub(super) fn ipc_found(
        &self,
        pid: Pid,
        id: i32,
        perm: Option<pmon::sysv::Perm>,
        flags: u64,
    ) -> Ret {
        match perm {
            Some(p) if !self.ipc_allows(pid, &p, flags as u32 & 0o777) => err(EACCES),
            _ => Ret::Val(id as i64),
        }
    }

    /// Whether process `pid` may have `want` of an object (EACCES if not).
    pub(super) fn ipc_allows(&self, pid: Pid, perm: &pmon::sysv::Perm, want: u32) -> bool {
        self.procs
            .get(&pid)
            .is_some_and(|p| perm.allows(&p.cred, &p.groups, want))
    }

    /// Whether process `pid` may change or remove an object (EPERM if not).
    pub(super) fn ipc_may_change(&self, pid: Pid, perm: &pmon::sysv::Perm) -> bool {
        self.procs
            .get(&pid)
            .is_some_and(|p| perm.may_change(&p.cred))
    }

    /// IPC_SET's `len`-byte `*_ds` from the caller.
    pub(super) fn ipc_set_ds(&mut self, pid: Pid, arg: u64, len: usize) -> Result<Vec<u8>, Errno> {
        uaccess::read_vec(self.space_mut(pid)?, arg, len)
    }

    /// /proc/sysvipc/FILE: this processor's queues, semaphore sets or
    /// segments, as Linux lists them (ipcs reads these).
    pub(super) fn proc_sysvipc(&mut self, file: pmon::path::IpcFile) -> Vec<u8> {
        use pmon::path::IpcFile;
        match file {
            IpcFile::Msg => pmon::sysv_msg::proc_list(&self.msgs),
            IpcFile::Sem => pmon::sysv_sem::proc_list(&self.sems),
            IpcFile::Shm => {
                self.prune_attaches();
                let attaches = &self.sysv_attaches;
                pmon::sysv::proc_list(&self.sysv, |id| {
                    attaches.iter().filter(|a| a.id == id).count() as u64
                })
            }
        }
    }
}
