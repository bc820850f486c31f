//! I/O at an explicit offset, whatever kind of file: pread and pwrite and
//! their vector forms (preadv, pwritev, preadv2, pwritev2), the offsets
//! of sendfile and copy_file_range, and the calls that only advise or
//! reserve (posix_fadvise, readahead, fallocate). pread and pwrite and
//! their vector forms move all they are asked (to the end of the file),
//! 1 MiB at a time, as Linux does for a regular file; sendfile and
//! copy_file_range move at most 1 MiB a call, a short count as Linux
//! allows. The file's own offset is left alone unless the call says
//! otherwise.

use super::*;

const EOPNOTSUPP: Errno = 95;
pub(super) const EFBIG: Errno = 27;
/// The most one call moves.
const MOST: usize = 1 << 20;
/// The most bytes of a file fallocate zeroes (PUNCH_HOLE, ZERO_RANGE).
const ZERO_MOST: u64 = 64 << 20;

/// preadv2/pwritev2 flags Linux 6.18 knows: RWF_HIPRI, RWF_DSYNC,
/// RWF_SYNC, RWF_NOWAIT, RWF_APPEND, RWF_NOAPPEND, RWF_ATOMIC,
/// RWF_DONTCACHE. Polling, not waiting, atomicity (one call is one
/// storage request or less) and cache hints cost nothing to honour here;
/// DSYNC and SYNC sync, APPEND writes at the end.
const RWF_DSYNC: u64 = 2;
const RWF_SYNC: u64 = 4;
const RWF_APPEND: u64 = 0x10;
const RWF_NOAPPEND: u64 = 0x20;
const RWF_KNOWN: u64 = 0xff;

/// fallocate modes.
const FALLOC_FL_KEEP_SIZE: u64 = 1;
const FALLOC_FL_PUNCH_HOLE: u64 = 2;
const FALLOC_FL_ZERO_RANGE: u64 = 0x10;

/// Kinds that are streams, not files with offsets.
fn is_stream(k: Kind) -> bool {
    matches!(
        k,
        Kind::PipeRead(_)
            | Kind::PipeWrite(_)
            | Kind::Stdio(..)
            | Kind::Socket(..)
            | Kind::Unix(_)
            | Kind::UnixDgram(_)
            | Kind::Dgram(_)
            | Kind::PtyMaster(_)
            | Kind::PtySlave(_)
            | Kind::Epoll(_)
            | Kind::EventFd(_)
    )
}

/// Linux's checks of an I/O at `off` on `f`, in its order: a stream has
/// no offsets, a negative one is invalid, then the open's access mode
/// (`allowed`) decides.
fn usable_at(f: &OpenFile, off: u64, allowed: bool) -> Result<(), Errno> {
    // lego-vmm's stdio has offsets where the host's fd does (a file given
    // as stdin or stdout): the host decides, after the offset's check.
    if matches!(f.kind, Kind::Stdio(..)) {
        return if (off as i64) < 0 {
            Err(EINVAL)
        } else {
            Ok(())
        };
    }
    if is_stream(f.kind) {
        return Err(ESPIPE);
    }
    if (off as i64) < 0 {
        return Err(EINVAL);
    }
    if !allowed {
        return Err(EBADF);
    }
    Ok(())
}

impl Kernel {
    /// Up to `len` bytes (at most 1 MiB) of `f` at `off`.
    pub(super) fn read_at(
        &mut self,
        f: &Arc<OpenFile>,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        usable_at(f, off, f.readable())?;
        let len = len.min(MOST);
        match f.kind {
            Kind::DevNull | Kind::DevZero | Kind::DevFull | Kind::DevUrandom => {
                self.read_file(f, len).map(Option::unwrap_or_default)
            }
            Kind::Host(h) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::read(h, off, &mut b);
                if n < 0 {
                    return Err(-n);
                }
                b.truncate(n as usize);
                Ok(b)
            }
            Kind::Tmp(ino) => self.file_bytes(FileRef::Tmp(ino), off, len),
            Kind::Store(ino) => {
                let b = self.file_bytes(FileRef::Store(ino), off, len)?;
                self.accessed(ino);
                Ok(b)
            }
            Kind::Generated => Ok(generated_at(f, off, len)),
            Kind::HostDir(_) | Kind::StoreDir(_) => Err(EISDIR),
            Kind::Stdio(fd, run) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::pread_stdio(run, fd, &mut b, off);
                if n < 0 {
                    return Err(-n as Errno);
                }
                b.truncate(n as usize);
                Ok(b)
            }
            _ => Err(ESPIPE),
        }
    }

    /// RLIMIT_FSIZE at a write of `len` bytes (or a truncate or
    /// fallocate to `at` + `len`) at the place `at` gives, as Linux's: how
    /// many of them may be written; at or past the limit, SIGXFSZ to the
    /// caller and EFBIG. Nothing, as nothing is written, is always allowed.
    /// The place is only asked for under a limit (an append's is the
    /// file's size: a storage request).
    pub(super) fn within_fsize(
        &mut self,
        len: usize,
        at: impl FnOnce(&Self) -> Result<u64, Errno>,
    ) -> Result<usize, Errno> {
        let Some(tid) = self.caller() else {
            return Ok(len);
        };
        let pid = self.pid_of(tid);
        let limit = self.procs.get(&pid).map_or(u64::MAX, |p| p.rlimits[1].0);
        if limit == u64::MAX || len == 0 {
            return Ok(len);
        }
        let at = at(self)?;
        if at >= limit {
            self.signal_thread(tid, SigInfo::user(SIGXFSZ, SI_USER, pid));
            return Err(EFBIG);
        }
        Ok(len.min((limit - at).min(usize::MAX as u64) as usize))
    }

    /// How many of `len` bytes a write to `f` at `off` (at its end with
    /// `append`) may take under RLIMIT_FSIZE (`within_fsize`).
    pub(super) fn write_room(
        &mut self,
        f: &OpenFile,
        off: u64,
        len: usize,
        append: bool,
    ) -> Result<usize, Errno> {
        self.within_fsize(len, |k| if append { k.file_size(f) } else { Ok(off) })
    }

    /// `data` to `f` at `off` (at its end with `append`): where it went
    /// and how much.
    pub(super) fn write_at(
        &mut self,
        f: &Arc<OpenFile>,
        off: u64,
        data: &[u8],
        append: bool,
    ) -> Result<(u64, usize), Errno> {
        usable_at(f, off, f.writable())?;
        match f.kind {
            Kind::DevNull | Kind::DevZero => Ok((off, data.len())),
            Kind::DevFull => Err(ENOSPC),
            // Storage places an append itself, after other processors'.
            Kind::Store(ino) => {
                let data = &data[..self.write_room(f, off, data.len(), append)?];
                let done = self.file_write(ino, off, data, append)?;
                self.sync_if_asked(f, ino)?;
                Ok(done)
            }
            Kind::Tmp(ino) => {
                let at = if append {
                    self.tmp.stat(ino)?.size
                } else {
                    off
                };
                let data = &data[..self.write_room(f, off, data.len(), append)?];
                self.tmp_write_at(ino, at, data).map(|n| (at, n))
            }
            Kind::Stdio(fd, run) => {
                let data = &data[..self.write_room(f, off, data.len(), append)?];
                let mut done = 0;
                // (The VMM takes at most 1 MiB a call.)
                for part in data.chunks(MOST) {
                    let n = host::pwrite_stdio(run, fd, part, off + done as u64);
                    if n < 0 {
                        return if done > 0 {
                            Ok((off, done))
                        } else {
                            Err(-n as Errno)
                        };
                    }
                    done += n as usize;
                    if (n as usize) < part.len() {
                        break;
                    }
                }
                Ok((off, done))
            }
            _ => Err(EBADF),
        }
    }

    pub(super) fn sys_pread(&mut self, tid: Tid, fd: i64, buf: u64, len: usize, off: u64) -> Ret {
        self.read_vecs_at(tid, fd, &[(buf, len)], off)
    }

    pub(super) fn sys_pwrite(&mut self, pid: Pid, fd: i64, buf: u64, len: usize, off: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        // Streams and bad offsets fail before the buffer is read.
        if let Err(e) = usable_at(&f, off, f.writable()) {
            return err(e);
        }
        // O_APPEND holds for pwrite too: Linux writes at the end whatever
        // the offset (pwritev2's RWF_NOAPPEND is the way out).
        let append = f.flags.get() & O_APPEND != 0;
        match self.write_vecs_at(pid, &f, &[(buf, len)], off, append) {
            Ok((_, n)) => Ret::Val(n as i64),
            Err(e) => err(e),
        }
    }

    /// The process's buffers `vecs` filled from `fd` at `off`, 1 MiB at a
    /// time, up to the end of the file; a bad buffer ends it, with what
    /// went before.
    fn read_vecs_at(&mut self, tid: Tid, fd: i64, vecs: &[(u64, usize)], off: u64) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let total = Self::io_total(vecs);
        let mut done = 0;
        loop {
            let ask = (total - done).min(MOST);
            let data = match self.read_at(&f, off.saturating_add(done as u64), ask) {
                Ok(d) => d,
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            };
            let got = data.len();
            if let Err((put, e)) = self.scatter(pid, vecs, done, &data) {
                return if done + put > 0 {
                    Ret::Val((done + put) as i64)
                } else {
                    err(e)
                };
            }
            done += got;
            if got < ask || done >= total {
                return Ret::Val(done as i64);
            }
        }
    }

    /// The process's buffers `vecs` written to `f` at `off` (each piece at
    /// the end with `append`), 1 MiB at a time: where the last byte
    /// written ended and the bytes written, fewer after a bad buffer or an
    /// error.
    fn write_vecs_at(
        &mut self,
        pid: Pid,
        f: &Arc<OpenFile>,
        vecs: &[(u64, usize)],
        off: u64,
        append: bool,
    ) -> Result<(u64, usize), Errno> {
        let total = Self::io_total(vecs);
        let (mut done, mut end) = (0, off);
        loop {
            let piece = (total - done).min(MOST);
            let data = match self.gather(pid, vecs, done, piece) {
                Ok(d) => d,
                Err(_) if done > 0 => return Ok((end, done)),
                Err(e) => return Err(e),
            };
            match self.write_at(f, off.saturating_add(done as u64), &data, append) {
                Ok((at, n)) => {
                    end = at + n as u64;
                    done += n;
                    if n < data.len() || done >= total {
                        return Ok((end, done));
                    }
                }
                Err(_) if done > 0 => return Ok((end, done)),
                Err(e) => return Err(e),
            }
        }
    }

    /// preadv, and preadv2 (`flags`; offset -1: at the file's offset, as
    /// readv).
    pub(super) fn sys_preadv(
        &mut self,
        tid: Tid,
        fd: i64,
        (iov, count): (u64, usize),
        off: i64,
        flags: Option<u64>,
    ) -> Ret {
        if flags.is_some_and(|fl| fl & !RWF_KNOWN != 0) {
            return err(EOPNOTSUPP);
        }
        if flags.is_some() && off == -1 {
            return self.sys_readv(tid, fd, iov, count);
        }
        let pid = self.pid_of(tid);
        let vecs = match self
            .file(pid, fd)
            .and_then(|_| self.iovecs(pid, iov, count))
        {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        self.read_vecs_at(tid, fd, &vecs, off as u64)
    }

    /// pwritev, and pwritev2 (`flags`; offset -1: at the file's offset,
    /// as writev; RWF_APPEND at its end; RWF_DSYNC and RWF_SYNC sync).
    pub(super) fn sys_pwritev(
        &mut self,
        tid: Tid,
        fd: i64,
        (iov, count): (u64, usize),
        off: i64,
        flags: Option<u64>,
    ) -> Ret {
        let fl = flags.unwrap_or(0);
        if fl & !RWF_KNOWN != 0 {
            return err(EOPNOTSUPP);
        }
        let pid = self.pid_of(tid);
        // pwritev2 at offset -1 is writev at the file's offset, which then
        // moves (to the end, with RWF_APPEND); plain pwritev's -1 is EINVAL.
        let at_offset = flags.is_some() && off == -1;
        if at_offset && self.file(pid, fd).is_ok_and(|f| is_stream(f.kind)) {
            return self.sys_writev(tid, fd, iov, count);
        }
        let (f, vecs) = match self
            .file(pid, fd)
            .and_then(|f| Ok((f, self.iovecs(pid, iov, count)?)))
        {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        // The open's O_APPEND holds at any offset, unless RWF_NOAPPEND.
        let append =
            fl & RWF_APPEND != 0 || (f.flags.get() & O_APPEND != 0 && fl & RWF_NOAPPEND == 0);
        let off = if at_offset {
            f.offset.get()
        } else {
            off as u64
        };
        if let Err(e) = usable_at(&f, off, f.writable()) {
            return err(e);
        }
        let n = match self.write_vecs_at(pid, &f, &vecs, off, append) {
            Ok((end, n)) => {
                if at_offset {
                    f.offset.set(end);
                }
                n
            }
            Err(e) => return err(e),
        };
        if let (true, Kind::Store(ino)) = (fl & (RWF_DSYNC | RWF_SYNC) != 0, f.kind) {
            if let Err(e) = self.store_sync(Some(ino)) {
                return err(e);
            }
        }
        Ret::Val(n as i64)
    }

    /// copy_file_range: up to `len` bytes (at most 1 MiB a call) from one
    /// regular file to another, at the offsets the pointers hold (advanced
    /// there) or at the files' own.
    pub(super) fn sys_copy_file_range(
        &mut self,
        pid: Pid,
        (in_fd, in_off): (i64, u64),
        (out_fd, out_off): (i64, u64),
        len: usize,
        flags: u64,
    ) -> Ret {
        if flags != 0 {
            return err(EINVAL);
        }
        let (input, out) = match self
            .file(pid, in_fd)
            .and_then(|i| Ok((i, self.file(pid, out_fd)?)))
        {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if !input.readable() || !out.writable() || out.flags.get() & O_APPEND != 0 {
            return err(EBADF);
        }
        let regular = |k: Kind| matches!(k, Kind::Host(_) | Kind::Tmp(_) | Kind::Store(_));
        for k in [input.kind, out.kind] {
            if matches!(k, Kind::HostDir(_) | Kind::StoreDir(_)) {
                return err(EISDIR);
            }
            if !regular(k) {
                return err(EINVAL);
            }
        }
        let at = |k: &mut Kernel, ptr: u64, f: &OpenFile| -> Result<u64, Errno> {
            if ptr == 0 {
                return Ok(f.offset.get());
            }
            let o = uaccess::read_u64(k.space_mut(pid)?, ptr)?;
            if (o as i64) < 0 {
                return Err(EINVAL);
            }
            Ok(o)
        };
        let (from, to) =
            match at(self, in_off, &input).and_then(|a| Ok((a, at(self, out_off, &out)?))) {
                Ok(v) => v,
                Err(e) => return err(e),
            };
        let len = len.min(MOST);
        // The same file: the ranges must not overlap, as Linux says.
        if input.kind == out.kind
            && from < to.saturating_add(len as u64)
            && to < from.saturating_add(len as u64)
        {
            return err(EINVAL);
        }
        let data = match self.read_at(&input, from, len) {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        let n = match self.write_at(&out, to, &data, false) {
            Ok((_, n)) => n,
            Err(e) => return err(e),
        };
        for (ptr, f, base) in [(in_off, &input, from), (out_off, &out, to)] {
            let next = base + n as u64;
            if ptr == 0 {
                f.offset.set(next);
            } else if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u64(s, ptr, next))
            {
                return err(e);
            }
        }
        Ret::Val(n as i64)
    }

    /// posix_fadvise and readahead: advice, which costs nothing to take;
    /// only the descriptor and the arguments are checked, as Linux does.
    pub(super) fn sys_fadvise(&mut self, pid: Pid, fd: i64, len: i64, advice: u64) -> Ret {
        match self.file(pid, fd) {
            Ok(f) if is_stream(f.kind) => err(ESPIPE),
            Ok(_) if len < 0 || advice > 5 => err(EINVAL),
            Ok(_) => Ret::Val(0),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_readahead(&mut self, pid: Pid, fd: i64) -> Ret {
        match self.file(pid, fd) {
            Ok(f) if !f.readable() => err(EBADF),
            // (A tmpfs directory is a Tmp too: EINVAL, as a directory.)
            Ok(f) if matches!(f.kind, Kind::Tmp(ino) if self.tmp.is_directory(ino)) => err(EINVAL),
            Ok(f) if matches!(f.kind, Kind::Host(_) | Kind::Tmp(_) | Kind::Store(_)) => Ret::Val(0),
            Ok(_) => err(EINVAL),
            Err(e) => err(e),
        }
    }

    /// fallocate of a regular file. Mode 0 grows the file to cover the
    /// range; FALLOC_FL_KEEP_SIZE alone changes nothing; PUNCH_HOLE (with
    /// KEEP_SIZE) and ZERO_RANGE make the range read as zeros (written as
    /// zeros, up to 64 MiB of the file's bytes: neither the tmpfs nor the
    /// storage protocol has a call that drops a range).
    /// Decided: no space is reserved ahead, so a later write can still
    /// get ENOSPC on a full disk. Other modes: EOPNOTSUPP.
    pub(super) fn sys_fallocate(
        &mut self,
        pid: Pid,
        fd: i64,
        mode: u64,
        off: i64,
        len: i64,
    ) -> Ret {
        let known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
        let punch = mode & FALLOC_FL_PUNCH_HOLE != 0;
        let zero = mode & FALLOC_FL_ZERO_RANGE != 0;
        if mode & !known != 0 || (punch && (zero || mode & FALLOC_FL_KEEP_SIZE == 0)) {
            return err(EOPNOTSUPP);
        }
        if off < 0 || len <= 0 {
            return err(EINVAL);
        }
        let Some(end) = off.checked_add(len) else {
            return err(EFBIG);
        };
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        if !f.writable() {
            return err(EBADF);
        }
        match f.kind {
            Kind::Store(_) | Kind::Tmp(_) => {}
            Kind::PipeRead(_) | Kind::PipeWrite(_) => return err(ESPIPE),
            Kind::HostDir(_) | Kind::StoreDir(_) => return err(EISDIR),
            _ => return err(ENODEV),
        }
        let (off, end) = (off as u64, end as u64);
        let size = match self.file_size(&f) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        // Zeroing is writing here, one storage request per MiB in the
        // system call: past ZERO_MOST a caller is told EOPNOTSUPP, as by a
        // file system without the mode, and writes zeros itself if it must.
        if (punch || zero) && end.min(size).saturating_sub(off) > ZERO_MOST {
            return err(EOPNOTSUPP);
        }
        if punch || zero {
            let zeros = alloc::vec![0u8; MOST];
            let mut at = off;
            while at < end.min(size) {
                let n = (end.min(size) - at).min(MOST as u64) as usize;
                match self.write_at(&f, at, &zeros[..n], false) {
                    Ok((_, w)) if w > 0 => at += w as u64,
                    Ok(_) => return err(EIO),
                    Err(e) => return err(e),
                }
            }
        }
        if mode & FALLOC_FL_KEEP_SIZE == 0 && end > size {
            if let Err(e) = self.within_fsize(1, |_| Ok(end - 1)) {
                return err(e);
            }
            return self.grow_to(&f, end);
        }
        Ret::Val(0)
    }

    /// ftruncate up to `size`, for fallocate.
    fn grow_to(&mut self, f: &OpenFile, size: u64) -> Ret {
        match f.kind {
            Kind::Store(ino) => {
                let head = lego_proto::storage::StoreRequest {
                    op: lego_proto::storage::OP_TRUNCATE,
                    ino,
                    offset: size,
                    ..Default::default()
                };
                self.store_change(head, &[])
            }
            Kind::Tmp(ino) => val(self.tmp_truncate(ino, size).map(|_| 0)),
            _ => err(EBADF),
        }
    }
}
