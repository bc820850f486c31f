//! fcntl's record locks (F_GETLK, F_SETLK, F_SETLKW and the F_OFD_
//! kinds) and flock, on the processor's lock table ([`pmon::locks`]).
//! A waiting lock (F_SETLKW, flock without LOCK_NB) parks the thread
//! until some lock is given up, then tries again; a signal interrupts it.

use pmon::locks::{Owner, Space};

use super::*;

pub(super) const F_GETLK: u64 = 5;
pub(super) const F_SETLK: u64 = 6;
pub(super) const F_SETLKW: u64 = 7;
pub(super) const F_OFD_GETLK: u64 = 36;
pub(super) const F_OFD_SETLK: u64 = 37;
pub(super) const F_OFD_SETLKW: u64 = 38;

const F_RDLCK: u16 = 0;
const F_WRLCK: u16 = 1;
const F_UNLCK: u16 = 2;
const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const LOCK_UN: u64 = 8;
const EDEADLK: Errno = 35;
/// struct flock: l_type, l_whence (shorts), l_start, l_len, l_pid.
const FLOCK_SIZE: usize = 32;

/// A storage file's key (lock table, running programs' identity).
pub(super) fn store_key(ino: u64) -> u64 {
    ino | 1 << 63
}

/// A tmpfs file's key.
pub(super) fn tmp_key(ino: u64) -> u64 {
    ino | 1 << 62
}

impl Kernel {
    /// Whether the file named `key` (as [`Self::lock_key`] names it) is
    /// open for writing somewhere, or mapped shared and writable: execve
    /// of it is then ETXTBSY, as Linux's deny_write_access.
    pub(in crate::kernel) fn open_for_writing(&self, key: u64) -> bool {
        let mapped = self.shared_maps.iter().any(|m| {
            m.writable
                && match m.file {
                    FileRef::Tmp(ino) => tmp_key(ino) == key,
                    FileRef::Store(ino) => store_key(ino) == key,
                }
        });
        mapped
            || self.procs.values().any(|p| {
                p.life == Life::Alive
                    && p.fds
                        .iter()
                        .any(|(_, f)| f.writable() && Self::lock_key(f) == Some(key))
            })
    }

    /// The key that names `f`'s file in the lock table, or None for what
    /// has no file behind it (pipes, sockets, devices).
    fn lock_key(f: &OpenFile) -> Option<u64> {
        match f.kind {
            Kind::Store(ino) | Kind::StoreDir(ino) => Some(store_key(ino)),
            Kind::Tmp(ino) => Some(tmp_key(ino)),
            // The host's files: by name (they cannot change under Lego).
            Kind::Host(_) | Kind::HostDir(_) => Some(
                f.path.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
                }) >> 3
                    | 1 << 61,
            ),
            _ => None,
        }
    }

    /// A descriptor's close drops its process's record locks on the file,
    /// whichever descriptor took them (POSIX).
    pub(super) fn close_drops_locks(&mut self, pid: Pid, f: &OpenFile) {
        if let Some(key) = Self::lock_key(f) {
            if self.locks.release(Some(key), Owner::Process(pid)) {
                self.wake_all(Wait::Lock);
            }
        }
    }

    /// fcntl's lock commands; `arg` points at a struct flock.
    pub(super) fn sys_fcntl_lock(&mut self, tid: Tid, fd: i64, cmd: u64, arg: u64) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let raw = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, arg, FLOCK_SIZE))
        {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let half = |at: usize| u16::from_le_bytes([raw[at], raw[at + 1]]);
        let word = |at: usize| i64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
        let (kind, whence, start, len) = (half(0), half(2), word(8), word(16));
        let lpid = i32::from_le_bytes(raw[24..28].try_into().unwrap_or([0; 4]));
        let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
        if ofd && lpid != 0 {
            return err(EINVAL);
        }
        let Some(key) = Self::lock_key(&f) else {
            return err(EINVAL);
        };
        let base = match whence {
            0 => 0,
            1 => f.offset.get() as i64,
            2 => match self.file_size(&f) {
                Ok(s) => s as i64,
                Err(e) => return err(e),
            },
            _ => return err(EINVAL),
        };
        // l_len 0: to the end of the file, however far; negative: the
        // bytes before l_start.
        let Some(from) = base.checked_add(start) else {
            return err(EINVAL);
        };
        let (lo, hi) = match len {
            0 => (from, None),
            n if n > 0 => (from, from.checked_add(n)),
            n => (from + n, Some(from)),
        };
        if lo < 0 {
            return err(EINVAL);
        }
        let (lo, hi) = (lo as u64, hi.map_or(u64::MAX, |h| h as u64));
        let owner = if ofd {
            Owner::File(Arc::as_ptr(&f) as usize)
        } else {
            Owner::Process(pid)
        };
        match cmd {
            F_GETLK | F_OFD_GETLK => {
                if kind != F_RDLCK && kind != F_WRLCK {
                    return err(EINVAL);
                }
                let mut out = raw.clone();
                match self
                    .locks
                    .conflict(key, Space::Record, owner, lo, hi, kind == F_WRLCK)
                {
                    None => out[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
                    Some(l) => {
                        let t = if l.write { F_WRLCK } else { F_RDLCK };
                        out[0..2].copy_from_slice(&t.to_le_bytes());
                        out[2..4].copy_from_slice(&0u16.to_le_bytes());
                        out[8..16].copy_from_slice(&(l.start as i64).to_le_bytes());
                        let n = if l.end == u64::MAX {
                            0
                        } else {
                            (l.end - l.start) as i64
                        };
                        out[16..24].copy_from_slice(&n.to_le_bytes());
                        let who = match l.owner {
                            Owner::Process(p) => p as i32,
                            Owner::File(_) => -1,
                        };
                        out[24..28].copy_from_slice(&who.to_le_bytes());
                    }
                }
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &out).map(|_| 0)))
            }
            _ => {
                let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
                match kind {
                    F_UNLCK => {
                        if self.locks.unlock(key, Space::Record, owner, lo, hi) {
                            self.wake_all(Wait::Lock);
                        }
                        Ret::Val(0)
                    }
                    F_RDLCK if !f.readable() => err(EBADF),
                    F_WRLCK if !f.writable() => err(EBADF),
                    F_RDLCK | F_WRLCK => self.take_lock(
                        tid,
                        key,
                        Space::Record,
                        owner,
                        (lo, hi),
                        kind == F_WRLCK,
                        wait,
                    ),
                    _ => err(EINVAL),
                }
            }
        }
    }

    /// flock(fd, op): the whole file, shared or exclusive, held by the
    /// open file.
    pub(super) fn sys_flock(&mut self, tid: Tid, fd: i64, op: u64) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let Some(key) = Self::lock_key(&f) else {
            return err(EINVAL);
        };
        let owner = Owner::File(Arc::as_ptr(&f) as usize);
        let wait = op & LOCK_NB == 0;
        match op & !LOCK_NB {
            LOCK_UN => {
                if self.locks.unlock(key, Space::Flock, owner, 0, u64::MAX) {
                    self.wake_all(Wait::Lock);
                }
                Ret::Val(0)
            }
            LOCK_SH | LOCK_EX => {
                let write = op & LOCK_EX != 0;
                self.take_lock(tid, key, Space::Flock, owner, (0, u64::MAX), write, wait)
            }
            // LOCK_MAND (Samba's old mandatory locks): Linux has ignored
            // it since 5.15 and answers 0.
            o if o & 32 != 0 => Ret::Val(0),
            _ => err(EINVAL),
        }
    }

    /// Takes a lock, or parks the thread to try again when one is given
    /// up (`wait`), or EAGAIN. A process's record lock that would wait
    /// for a process waiting (through others) for it is EDEADLK, as
    /// Linux; open files' locks (OFD, flock) are not checked, as Linux.
    #[allow(clippy::too_many_arguments)]
    fn take_lock(
        &mut self,
        tid: Tid,
        key: u64,
        space: Space,
        owner: Owner,
        (lo, hi): (u64, u64),
        write: bool,
        wait: bool,
    ) -> Ret {
        self.lock_waits.remove(&tid);
        match self.locks.lock(key, space, owner, lo, hi, write) {
            Ok(()) => Ret::Val(0),
            Err(held) if wait => {
                if let (Owner::Process(me), Owner::Process(holder)) = (owner, held.owner) {
                    if pmon::locks::deadlock(me, holder, |p| self.lock_waited_by(p)) {
                        return err(EDEADLK);
                    }
                    self.lock_waits.insert(tid, (me, holder));
                }
                self.block(tid, Wait::Lock, None, None, OnWake::Retry);
                Ret::Block
            }
            Err(_) => err(EAGAIN),
        }
    }

    /// The process whose record lock a thread of `pid` waits for.
    fn lock_waited_by(&self, pid: Pid) -> Option<Pid> {
        self.lock_waits.iter().find_map(|(tid, &(p, holder))| {
            let waiting = self.threads.get(tid).is_some_and(|t| {
                matches!(
                    t.state,
                    State::Blocked {
                        wait: Wait::Lock,
                        ..
                    }
                )
            });
            (p == pid && waiting).then_some(holder)
        })
    }

    /// A file's size (SEEK_END, and locks relative to it).
    pub(super) fn file_size(&self, f: &OpenFile) -> Result<u64, Errno> {
        match f.kind {
            Kind::Store(ino) | Kind::StoreDir(ino) => self.store_size(ino),
            Kind::Tmp(ino) => self.tmp.stat(ino).map(|st| st.size),
            Kind::Generated => Ok(f.data.len() as u64),
            _ => host::stat_path(super::procpid::on_host(f), true).map(|st| st.size),
        }
    }
}
