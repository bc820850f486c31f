//! dnotify (`fcntl(F_NOTIFY)`), Linux's older way to hear of a
//! directory's changes: a signal to the descriptor's owner (SIGIO, or the
//! F_SETSIG signal with the descriptor in `si_fd`) when a name in it is
//! made, removed, renamed, or a file in it is read, written or changed.
//!
//! Each registration is an inotify instance of the monitor's own with one
//! watch on the directory ([`pmon::inotify`]), so the changes the
//! processor's programs make reach it as they reach inotify's; the
//! instance has no descriptor, and is dropped with the registration: at
//! F_NOTIFY with no events, after its one signal without DN_MULTISHOT, or
//! when a change finds its descriptor closed (Linux drops it at close).

use alloc::sync::Weak;

use pmon::fd::{F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID};
use pmon::inotify::{self, Instance, DN_EVENTS, DN_MULTISHOT};

use super::*;

/// `si_code` of a dnotify signal with F_SETSIG, and its `si_band`
/// (POLLIN | POLLRDNORM | POLLMSG).
const POLL_MSG: i32 = 3;
const BAND_MSG: i64 = 0x1 | 0x40 | 0x400;

/// One directory's registration.
pub struct Dnotify {
    pid: Pid,
    fd: i64,
    file: Weak<OpenFile>,
    /// The DN_ events asked for.
    events: u64,
    multishot: bool,
}

impl Kernel {
    /// fcntl(fd, F_NOTIFY, arg).
    pub(super) fn sys_fcntl_notify(&mut self, pid: Pid, fd: i64, arg: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let dir = match f.kind {
            Kind::HostDir(_) | Kind::StoreDir(_) => true,
            Kind::Tmp(ino) => self.tmp.is_directory(ino),
            _ => false,
        };
        if !dir {
            return err(ENOTDIR);
        }
        let mine =
            |d: &Dnotify| d.pid == pid && d.file.upgrade().is_some_and(|g| Arc::ptr_eq(&g, &f));
        let old = self
            .dnotifies
            .iter()
            .find(|(_, d)| mine(d))
            .map(|(id, d)| (*id, d.events));
        if let Some((id, _)) = old {
            self.drop_dnotify(id);
        }
        let events = arg & DN_EVENTS;
        if events == 0 {
            return Ret::Val(0);
        }
        // A second F_NOTIFY on the same descriptor adds to the first.
        let events = events | old.map_or(0, |(_, e)| e);
        let mut instance = Instance::default();
        let key = self.key_and_dir(&f.path).0;
        if let Err(e) = instance.add(&f.path, key, inotify::from_dnotify(events)) {
            return err(e);
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.inotifies.insert(id, instance);
        self.dnotifies.insert(
            id,
            Dnotify {
                pid,
                fd,
                file: Arc::downgrade(&f),
                events,
                multishot: arg & DN_MULTISHOT != 0,
            },
        );
        // Linux makes the caller the owner, if it has none.
        if f.owner.get().1 == 0 {
            f.owner.set((F_OWNER_PID, pid as i32));
        }
        Ret::Val(0)
    }

    fn drop_dnotify(&mut self, id: usize) {
        self.dnotifies.remove(&id);
        self.inotifies.remove(&id);
    }

    /// The instances `woken` heard of a change: those that are dnotify
    /// registrations signal their owner (and forget the events).
    pub(super) fn dnotify_heard(&mut self, woken: &[usize]) {
        for &id in woken {
            let Some(d) = self.dnotifies.get(&id) else {
                continue;
            };
            let (pid, fd, multishot) = (d.pid, d.fd, d.multishot);
            let file = d.file.upgrade().filter(|f| {
                self.procs
                    .get(&pid)
                    .and_then(|p| p.fds.get(fd).ok())
                    .is_some_and(|g| Arc::ptr_eq(g, f))
            });
            let Some(file) = file else {
                self.drop_dnotify(id);
                continue;
            };
            if let Some(i) = self.inotifies.get_mut(&id) {
                let _ = i.read(i.pending_bytes());
            }
            self.signal_owner(&file, fd, (POLL_MSG, BAND_MSG));
            if !multishot {
                self.drop_dnotify(id);
            }
        }
    }

    /// F_SETOWN_EX (`set`) or F_GETOWN_EX: a `struct f_owner_ex` (kind,
    /// id) at `at`.
    pub(super) fn fcntl_owner_ex(&mut self, pid: Pid, fd: i64, set: bool, at: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let space = match self.space_mut(pid) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        if !set {
            let (kind, id) = f.owner.get();
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&kind.to_le_bytes());
            b[4..].copy_from_slice(&id.to_le_bytes());
            return val(uaccess::write(space, at, &b).map(|_| 0));
        }
        let mut b = [0u8; 8];
        if let Err(e) = uaccess::read(space, at, &mut b) {
            return err(e);
        }
        let kind = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let id = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if !matches!(kind, F_OWNER_TID | F_OWNER_PID | F_OWNER_PGRP) {
            return err(EINVAL);
        }
        f.owner.set((kind, id));
        Ret::Val(0)
    }
}
