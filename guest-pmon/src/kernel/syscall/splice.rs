//! Bytes moved between descriptors inside the monitor: sendfile, splice,
//! tee and vmsplice, with Linux's rules for which descriptors each takes
//! (sendfile: no pipe as input; splice: one end a pipe, offsets only for
//! the other; tee: two pipes,
//! the input's bytes left where they were; vmsplice: a pipe and the
//! caller's memory). Each moves at most 1 MiB a call, a short count as
//! Linux allows; bytes the output could not take go back to the input,
//! so none are lost. Pages are copied, not lent (SPLICE_F_GIFT and
//! SPLICE_F_MOVE are hints Linux may ignore too).

use super::*;

const SPLICE_F_MOVE: u64 = 1;
const SPLICE_F_NONBLOCK: u64 = 2;
const SPLICE_F_MORE: u64 = 4;
const SPLICE_F_GIFT: u64 = 8;
/// The most one call moves.
const MOST: usize = 1 << 20;

/// Where a transfer reads or writes a file.
#[derive(Clone, Copy)]
enum At {
    /// At the file's own offset (a pipe or socket: in order).
    Own,
    /// At `off`, which the caller's word at `ptr` held; it is advanced
    /// there by what moved, and the file's own offset is left alone.
    Ptr { ptr: u64, off: u64 },
}

fn is_pipe(f: &OpenFile) -> bool {
    matches!(f.kind, Kind::PipeRead(_) | Kind::PipeWrite(_))
}

impl Kernel {
    /// The offset a sendfile or splice pointer gives (`ptr` 0: none).
    fn at(&mut self, pid: Pid, ptr: u64) -> Result<At, Errno> {
        if ptr == 0 {
            return Ok(At::Own);
        }
        let off = uaccess::read_u64(self.space_mut(pid)?, ptr)?;
        if (off as i64) < 0 {
            return Err(EINVAL);
        }
        Ok(At::Ptr { ptr, off })
    }

    /// The input and output descriptors, readable and writable (EBADF).
    fn ends(
        &self,
        pid: Pid,
        in_fd: i64,
        out_fd: i64,
    ) -> Result<(Arc<OpenFile>, Arc<OpenFile>), Errno> {
        let input = self.file(pid, in_fd)?;
        let out = self.file(pid, out_fd)?;
        if !input.readable() || !out.writable() {
            return Err(EBADF);
        }
        Ok((input, out))
    }

    /// sendfile: up to `count` bytes from `in_fd` to `out_fd`. With
    /// `off_ptr`, read at that offset (advanced there) and leave the
    /// file's own alone.
    pub(super) fn sys_sendfile(
        &mut self,
        tid: Tid,
        out_fd: i64,
        in_fd: i64,
        off_ptr: u64,
        count: usize,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let (input, out) = match self.ends(pid, in_fd, out_fd) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        // Linux's pipes cannot be read by sendfile (no splice_read):
        // EINVAL, which Go's io.Copy from a pipe to a TCP connection takes
        // as "use read and write"; an EAGAIN here left it waiting on the
        // socket for good.
        if matches!(input.kind, Kind::PipeRead(_)) {
            return err(EINVAL);
        }
        match self.at(pid, off_ptr) {
            Ok(from) => self.transfer(tid, &input, from, &out, At::Own, count, false),
            Err(e) => err(e),
        }
    }

    /// splice: up to `len` bytes from one descriptor to another, one of
    /// them a pipe (EINVAL otherwise); an offset only for the end that is
    /// not a pipe (ESPIPE), none for an output opened O_APPEND (EINVAL).
    pub(super) fn sys_splice(
        &mut self,
        tid: Tid,
        (in_fd, off_in): (i64, u64),
        (out_fd, off_out): (i64, u64),
        len: usize,
        flags: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
            return err(EINVAL);
        }
        let (input, out) = match self.ends(pid, in_fd, out_fd) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if !is_pipe(&input) && !is_pipe(&out) {
            return err(EINVAL);
        }
        if (is_pipe(&input) && off_in != 0) || (is_pipe(&out) && off_out != 0) {
            return err(ESPIPE);
        }
        if out.flags.get() & O_APPEND != 0 {
            return err(EINVAL);
        }
        let ats = self
            .at(pid, off_in)
            .and_then(|from| Ok((from, self.at(pid, off_out)?)));
        let (from, to) = match ats {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if len == 0 {
            return Ret::Val(0);
        }
        let nonblocking = flags & SPLICE_F_NONBLOCK != 0;
        self.transfer(tid, &input, from, &out, to, len, nonblocking)
    }

    /// Up to `count` bytes of `input` (at `from`) written to `out` (at
    /// `to`); what `out` did not take goes back to `input`.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        tid: Tid,
        input: &Arc<OpenFile>,
        from: At,
        out: &Arc<OpenFile>,
        to: At,
        count: usize,
        nonblocking: bool,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let count = count.min(MOST);
        let data = match from {
            At::Ptr { off, .. } => match self.read_at(input, off, count) {
                Ok(b) => b,
                Err(e) => return err(e),
            },
            At::Own => match self.read_file(input, count) {
                Ok(Some(d)) => d,
                Ok(None) if nonblocking => return err(EAGAIN),
                Ok(None) => {
                    self.block(tid, self.wait_of(input, false), None, None, OnWake::Retry);
                    return Ret::Block;
                }
                Err(e) => return err(e),
            },
        };
        // Linux writes the offsets back whatever moved (EFAULT when it
        // cannot, even at the end of the file).
        let put_offsets = |k: &mut Kernel, n: usize| -> Result<(), Errno> {
            for at in [from, to] {
                if let At::Ptr { ptr, off } = at {
                    uaccess::write_u64(k.space_mut(pid)?, ptr, off + n as u64)?;
                }
            }
            Ok(())
        };
        if data.is_empty() {
            return match put_offsets(self, 0) {
                Ok(()) => Ret::Val(0),
                Err(e) => err(e),
            };
        }
        let give_back = |k: &mut Kernel, kept: usize| {
            if let At::Own = from {
                k.unread(input, &data[kept..]);
            }
        };
        let wrote = match to {
            At::Ptr { off, .. } => self.write_at(out, off, &data, false).map(|(_, n)| Some(n)),
            At::Own => self.write_file(tid, out, &data),
        };
        match wrote {
            Ok(Some(n)) => {
                give_back(self, n);
                match put_offsets(self, n) {
                    Ok(()) => Ret::Val(n as i64),
                    Err(e) => err(e),
                }
            }
            Ok(None) => {
                give_back(self, 0);
                if nonblocking {
                    return err(EAGAIN);
                }
                self.block(tid, self.wait_of(out, true), None, None, OnWake::Retry);
                Ret::Block
            }
            Err(e) => {
                give_back(self, 0);
                err(e)
            }
        }
    }

    /// tee: up to `len` bytes of one pipe copied into another, left in
    /// the first (EINVAL unless both are pipes, and different ones).
    pub(super) fn sys_tee(
        &mut self,
        tid: Tid,
        in_fd: i64,
        out_fd: i64,
        len: usize,
        flags: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let (input, out) = match self.ends(pid, in_fd, out_fd) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let (Kind::PipeRead(src), Kind::PipeWrite(dst)) = (input.kind, out.kind) else {
            return err(EINVAL);
        };
        if src == dst || flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE) != 0 {
            return err(EINVAL);
        }
        if len == 0 {
            return Ret::Val(0);
        }
        let nonblocking = flags & SPLICE_F_NONBLOCK != 0;
        let Some(p) = self.pipes.get_mut(&src) else {
            return Ret::Val(0);
        };
        let data = match p.take(len.min(MOST), true) {
            Ok(t) => t.data,
            Err(Io::Reset) => return err(ECONNRESET),
            Err(_) if nonblocking => return err(EAGAIN),
            Err(_) => {
                self.block(tid, Wait::Pipe(src), None, None, OnWake::Retry);
                return Ret::Block;
            }
        };
        if data.is_empty() {
            return Ret::Val(0);
        }
        match self.pipe_write(tid, dst, &data, nonblocking) {
            Ok(Some(n)) => Ret::Val(n as i64),
            Ok(None) => {
                self.block(tid, Wait::Pipe(dst), None, None, OnWake::Retry);
                Ret::Block
            }
            Err(e) => err(e),
        }
    }

    /// vmsplice: the caller's buffers into a pipe it may write (as
    /// writev), or a pipe's bytes into them (as readv); EBADF for any
    /// other descriptor.
    pub(super) fn sys_vmsplice(
        &mut self,
        tid: Tid,
        fd: i64,
        iov: u64,
        count: usize,
        flags: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
            return err(EINVAL);
        }
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let vecs = match self.iovecs(pid, iov, count) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let ready = |k: &Kernel, id: usize, write: bool| {
            k.pipes
                .get(&id)
                .is_none_or(|p| if write { p.writable() } else { p.readable() })
        };
        let nonblocking = flags & SPLICE_F_NONBLOCK != 0;
        match f.kind {
            Kind::PipeWrite(id) if f.writable() => {
                let room = ready(self, id, true);
                if nonblocking && !room {
                    return err(EAGAIN);
                }
                // As Linux's: it waits while the pipe is full, then moves
                // what fits and returns that count (vmsplice01 gives it
                // twice a pipe's size and splices out what each call took).
                self.write_from(tid, &f, &vecs, nonblocking || room)
            }
            Kind::PipeRead(id) if f.readable() => {
                if nonblocking && !ready(self, id, false) {
                    return err(EAGAIN);
                }
                self.read_into(tid, &f, &vecs)
            }
            _ => err(EBADF),
        }
    }
}
