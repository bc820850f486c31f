//! What semctl and msgctl share: the id SEM_STAT and MSG_STAT name by
//! index, a `*_ds` written back for IPC_STAT (0) or *_STAT (the id),
//! and IPC_SET's `*_ds` read from the caller.

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

    /// IPC_SET's `len`-byte `*_ds` from the caller.
    pub(super) fn ipc_set_ds(&mut self, pid: Pid, arg: u64, len: usize) -> Result<Vec<u8>, Errno> {
        uaccess::read_vec(self.space_mut(pid)?, arg, len)
    }
}
