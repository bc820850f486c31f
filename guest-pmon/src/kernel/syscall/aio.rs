//! Linux's native asynchronous I/O: io_setup, io_destroy, io_submit,
//! io_getevents, io_pgetevents and io_cancel (`pmon::aio` says what is
//! decided). A context belongs to its address space, as Linux's to its mm:
//! a forked child has none of its parent's, and an exec or exit ends them.

use pmon::aio::{self, Iocb, IOCB_LEN};

use super::*;

/// A context: the events it was made for. Its ring, in the process's
/// memory at its id, is sized from them (`aio::ring_size`).
pub struct AioContext {
    events: u32,
}

impl Kernel {
    fn aio_space(&self, pid: Pid) -> Result<u32, Errno> {
        self.procs.get(&pid).map(|p| p.space).ok_or(ESRCH)
    }

    /// The events context `ctx` of `pid`'s address space was made for.
    fn aio_events(&self, pid: Pid, ctx: u64) -> Option<u32> {
        let space = self.aio_space(pid).ok()?;
        self.aio.get(&(space, ctx)).map(|c| c.events)
    }

    pub(super) fn sys_io_setup(&mut self, pid: Pid, nr_events: u64, ctxp: u64) -> Ret {
        let space = match self.aio_space(pid) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        let old = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, ctxp)) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let nr_events = nr_events as u32;
        // Linux doubles the count for its ring and refuses one past 2^28
        // bytes of events before it weighs the count against aio-max-nr.
        if old != 0 || nr_events == 0 || nr_events > (1 << 28) / 32 / 2 {
            return err(EINVAL);
        }
        let held: u64 = self.aio.values().map(|c| u64::from(c.events)).sum();
        if u64::from(nr_events) > aio::MAX_EVENTS || held + u64::from(nr_events) > aio::MAX_EVENTS {
            return err(EAGAIN);
        }
        let (bytes, slots) = aio::ring_size(nr_events);
        const MAP_PRIVATE_ANONYMOUS: u64 = 0x22;
        let ring = match self.sys_mmap(pid, 0, bytes, 3, MAP_PRIVATE_ANONYMOUS, -1, 0) {
            Ret::Val(v) if v >= 0 => v as u64,
            Ret::Val(_) => return err(EAGAIN),
            other => return other,
        };
        self.aio_ids = self.aio_ids.wrapping_add(1);
        let header = aio::ring_header(self.aio_ids, slots);
        let written = self.space_mut(pid).and_then(|s| {
            uaccess::write(s, ring, &header)?;
            uaccess::write(s, ctxp, &ring.to_le_bytes())
        });
        if let Err(e) = written {
            self.unmap_range(pid, ring, bytes);
            return err(e);
        }
        self.aio
            .insert((space, ring), AioContext { events: nr_events });
        Ret::Val(0)
    }

    pub(super) fn sys_io_destroy(&mut self, pid: Pid, ctx: u64) -> Ret {
        let Ok(space) = self.aio_space(pid) else {
            return err(EINVAL);
        };
        let Some(c) = self.aio.remove(&(space, ctx)) else {
            return err(EINVAL);
        };
        self.unmap_range(pid, ctx, aio::ring_size(c.events).0);
        // A thread waiting for its events returns (Linux: with EINVAL).
        self.wake_all(Wait::Any);
        Ret::Val(0)
    }

    /// Carries out the requests `iocbpp` names, in order, each completed
    /// in the ring; stops at the first that cannot be queued (its error
    /// is the answer when it is the first).
    pub(super) fn sys_io_submit(&mut self, tid: Tid, ctx: u64, nr: i64, iocbpp: u64) -> Ret {
        let pid = self.pid_of(tid);
        let Some(events) = self.aio_events(pid, ctx) else {
            return err(EINVAL);
        };
        let slots = aio::ring_size(events).1;
        if nr < 0 {
            return err(EINVAL);
        }
        // Linux takes at most the context's count in one call.
        let nr = (nr as u64).min(u64::from(events));
        let mut done = 0i64;
        for i in 0..nr {
            match self.aio_submit_one(tid, ctx, slots, iocbpp.wrapping_add(8 * i)) {
                Ok(()) => done += 1,
                Err(e) if done == 0 => return err(e),
                Err(_) => break,
            }
        }
        if done > 0 {
            self.wake_all(Wait::Any);
        }
        Ret::Val(done)
    }

    fn aio_submit_one(&mut self, tid: Tid, ctx: u64, slots: u32, at: u64) -> Result<(), Errno> {
        let pid = self.pid_of(tid);
        let space = self.space_mut(pid)?;
        let obj = uaccess::read_u64(space, at)?;
        let raw = uaccess::read_vec(space, obj, IOCB_LEN)?;
        let raw: [u8; IOCB_LEN] = raw
            .get(..IOCB_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(EFAULT)?;
        let iocb = Iocb::parse(&raw)?;
        let f = self.file(pid, iocb.fd as i32 as i64)?;
        let resfd = if iocb.flags & aio::IOCB_FLAG_RESFD != 0 {
            match self.file(pid, iocb.resfd as i32 as i64)?.kind {
                Kind::EventFd(id) if !self.timerfds.contains_key(&id) => Some(id),
                _ => return Err(EINVAL),
            }
        } else {
            None
        };
        // Linux's checks before the request is queued: the descriptor open
        // for the direction asked.
        let reads = matches!(iocb.opcode, aio::IOCB_CMD_PREAD | aio::IOCB_CMD_PREADV);
        let writes = matches!(iocb.opcode, aio::IOCB_CMD_PWRITE | aio::IOCB_CMD_PWRITEV);
        if (reads && !f.readable()) || (writes && !f.writable()) {
            return Err(EBADF);
        }
        let (head, tail) = self.aio_ends(pid, ctx)?;
        if !aio::has_room(head, tail, slots) {
            return Err(EAGAIN);
        }
        let fd = iocb.fd as i32 as i64;
        let ret = match iocb.opcode {
            aio::IOCB_CMD_PREAD => {
                self.sys_pread(tid, fd, iocb.buf, iocb.nbytes as usize, iocb.offset as u64)
            }
            aio::IOCB_CMD_PWRITE => {
                self.sys_pwrite(pid, fd, iocb.buf, iocb.nbytes as usize, iocb.offset as u64)
            }
            aio::IOCB_CMD_PREADV => {
                self.sys_preadv(tid, fd, (iocb.buf, iocb.nbytes as usize), iocb.offset, None)
            }
            aio::IOCB_CMD_PWRITEV => {
                self.sys_pwritev(tid, fd, (iocb.buf, iocb.nbytes as usize), iocb.offset, None)
            }
            _ => self.sys_fsync(pid, fd),
        };
        // Carried out here: positioned reads and writes and fsync never
        // park the thread (a stream answers ESPIPE before it would).
        let res = match ret {
            Ret::Val(v) => v,
            Ret::Block | Ret::NoReturn => -EAGAIN,
        };
        let event = aio::event(iocb.data, obj, res);
        let space = self.space_mut(pid)?;
        uaccess::write(space, aio::slot_at(ctx, tail), &event)?;
        uaccess::write(
            space,
            ctx + aio::TAIL_AT,
            &((tail + 1) % slots).to_le_bytes(),
        )?;
        if let Some(id) = resfd {
            if let Some(e) = self.eventfds.get_mut(&id) {
                // A counter at its top stays there, as Linux's
                // eventfd_signal leaves it.
                let _ = e.write(1);
                self.wake_all(Wait::EventFd(id));
            }
        }
        Ok(())
    }

    /// The ring's head and tail as the process's memory holds them.
    fn aio_ends(&mut self, pid: Pid, ctx: u64) -> Result<(u32, u32), Errno> {
        let b = uaccess::read_vec(self.space_mut(pid)?, ctx + aio::HEAD_AT, 8)?;
        let word = |at: usize| {
            b.get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or(EFAULT)
        };
        Ok((word(0)?, word(4)?))
    }

    /// io_getevents and io_pgetevents: between `min_nr` and `nr` events, or
    /// fewer when `timeout` (a timespec; 0: none) runs out.
    pub(super) fn sys_io_getevents(
        &mut self,
        tid: Tid,
        ctx: u64,
        (min_nr, nr): (i64, i64),
        out: u64,
        timeout: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let Some(slots) = self.aio_events(pid, ctx).map(|n| aio::ring_size(n).1) else {
            return err(EINVAL);
        };
        if min_nr < 0 || nr < 0 || min_nr > nr {
            return err(EINVAL);
        }
        let timeout_ns = if timeout == 0 {
            None
        } else {
            match self.read_timespec(pid, timeout) {
                Ok(ns) => Some(ns),
                Err(e) => return err(e),
            }
        };
        let (head, tail) = match self.aio_ends(pid, ctx) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let waiting = i64::from(aio::waiting(head, tail, slots));
        let deadline = self.wait_deadline(tid, timeout_ns);
        if waiting < min_nr && deadline.is_none_or(|d| d > self.now_ns()) {
            // Nothing is taken before the wait: the retry counts anew.
            self.block(tid, Wait::Any, deadline, None, OnWake::Retry);
            return Ret::Block;
        }
        let take = waiting.min(nr) as u32;
        let mut events = Vec::with_capacity(take as usize * aio::EVENT_LEN);
        let space = match self.space_mut(pid) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        for i in 0..take {
            match uaccess::read_vec(space, aio::slot_at(ctx, (head + i) % slots), aio::EVENT_LEN) {
                Ok(e) => events.extend_from_slice(&e),
                Err(e) => return err(e),
            }
        }
        if let Err(e) = uaccess::write(space, out, &events) {
            return err(e);
        }
        let head = (head + take) % slots;
        match uaccess::write(space, ctx + aio::HEAD_AT, &head.to_le_bytes()) {
            Ok(_) => Ret::Val(i64::from(take)),
            Err(e) => err(e),
        }
    }

    /// No request is ever in flight (each is carried out at io_submit):
    /// EFAULT for a control block that cannot be read, else EINVAL, as
    /// Linux answers for an unknown context or a request completed.
    pub(super) fn sys_io_cancel(&mut self, pid: Pid, iocb: u64) -> Ret {
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, iocb, IOCB_LEN))
        {
            Ok(_) => err(EINVAL),
            Err(e) => err(e),
        }
    }

    /// The contexts of address space `space`, which ends.
    pub(in crate::kernel) fn drop_aio(&mut self, space: u32) {
        self.aio.retain(|&(s, _), _| s != space);
    }
}
