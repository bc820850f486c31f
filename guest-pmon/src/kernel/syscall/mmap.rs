//! A process's memory: brk, mmap, munmap, mprotect, mremap, madvise and
//! mincore, as requests to the process's home memory component.

use super::*;

impl Kernel {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mem(
        &mut self,
        pid: Pid,
        op: u32,
        addr: u64,
        len: u64,
        arg: u64,
        prot: u32,
        flags: u32,
    ) -> Ret {
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        if (op == OP_MUNMAP || op == OP_MPROTECT) && len == 0 {
            return Ret::Val(0);
        }
        let r = self.space_mut(pid).and_then(|s| {
            s.call(MemRequest {
                op,
                addr,
                len,
                arg,
                prot,
                flags,
                ..Default::default()
            })
        });
        match (op, r) {
            (OP_MUNMAP | OP_MPROTECT, Ok(_)) => Ret::Val(0),
            // mprotect of an unmapped range is ENOMEM on Linux.
            (OP_MPROTECT, Err(EFAULT)) => err(ENOMEM),
            (OP_MUNMAP, Err(EFAULT)) => Ret::Val(0),
            (OP_MREMAP, Err(EFAULT)) => err(EFAULT),
            (_, r) => val(r.map(|v| v as i64)),
        }
    }

    pub(super) fn sys_brk(&mut self, pid: Pid, addr: u64) -> Ret {
        let Ok(space) = self.space_mut(pid) else {
            return Ret::Val(0);
        };
        let current = space.brk;
        if addr == 0 {
            return Ret::Val(current as i64);
        }
        match space.call(MemRequest {
            op: OP_BRK,
            addr,
            arg: current,
            ..Default::default()
        }) {
            Ok(b) => {
                space.brk = b;
                let (old_end, new_end) = (current.div_ceil(4096) * 4096, b.div_ceil(4096) * 4096);
                if new_end < old_end {
                    self.unlock_gone(pid, new_end, old_end);
                } else if new_end > old_end && self.lock_new(pid, old_end, new_end, false).is_err()
                {
                    // Past RLIMIT_MEMLOCK under mlockall(MCL_FUTURE): the
                    // break stays, as Linux's.
                    if let Ok(space) = self.space_mut(pid) {
                        if let Ok(back) = space.call(MemRequest {
                            op: OP_BRK,
                            addr: current,
                            arg: b,
                            ..Default::default()
                        }) {
                            space.brk = back;
                        }
                    }
                    return Ret::Val(current as i64);
                }
                Ret::Val(b as i64)
            }
            Err(_) => Ret::Val(current as i64),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn sys_mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        off: u64,
    ) -> Ret {
        const MAP_SHARED: u64 = 1;
        const MAP_PRIVATE: u64 = 2;
        const MAP_FIXED: u64 = 0x10;
        const MAP_ANONYMOUS: u64 = 0x20;
        const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
        // Protection bits past PROT_EXEC mean nothing to mmap on Linux,
        // which takes them.
        let prot = prot & 7;
        // Linux's order: the offset, then the descriptor, then the rest.
        if off % 4096 != 0 {
            return err(EINVAL);
        }
        if flags & MAP_ANONYMOUS == 0 {
            if let Err(e) = self.file(pid, fd) {
                return err(e);
            }
        }
        if len == 0 {
            return err(EINVAL);
        }
        if flags & (MAP_SHARED | MAP_PRIVATE) == 0 {
            return err(EINVAL);
        }
        // MAP_SHARED_VALIDATE (both bits): a shared file mapping whose
        // flags are checked (EOPNOTSUPP for one Linux does not know, or
        // MAP_SYNC, which only DAX files take); never anonymous.
        if flags & (MAP_SHARED | MAP_PRIVATE) == MAP_SHARED | MAP_PRIVATE {
            // Linux's LEGACY_MAP_MASK, MAP_FIXED_NOREPLACE, and the huge
            // page size bits.
            const KNOWN: u64 = 0x7f933 | 0x10_0000 | 0x3f << 26;
            const EOPNOTSUPP: Errno = 95;
            if flags & MAP_ANONYMOUS != 0 {
                return err(EINVAL);
            }
            if flags & !KNOWN != 0 {
                return err(EOPNOTSUPP);
            }
        }
        // The file range must be one a file can have, as Linux checks.
        const EOVERFLOW: Errno = 75;
        if flags & MAP_ANONYMOUS == 0
            && len
                .checked_next_multiple_of(4096)
                .and_then(|l| off.checked_add(l))
                .is_none_or(|end| end > i64::MAX as u64)
        {
            return err(EOVERFLOW);
        }
        // A host file maps as a private copy (its pages written at the
        // memory components now); shared only when nothing may write it.
        let mut from_file = None;
        // A private copy of a tmpfs or storage file, filled after mapping.
        let mut private_file = None;
        let mut shared_map = None;
        // Shared anonymous memory: MAP_SHARED of /dev/zero is the same on
        // Linux.
        let mut shared_anon = flags & MAP_SHARED != 0 && flags & MAP_ANONYMOUS != 0;
        // A shared mapping that may never be made writable: of /dev/zero
        // open read-only, or of a memfd sealed against writes.
        let mut never_writable = false;
        if flags & MAP_ANONYMOUS == 0 {
            match self.file(pid, fd) {
                Ok(f) if f.kind == Kind::DevZero => {
                    // Linux's rules for a file: open for reading, and for
                    // writing if shared and writable (now or by mprotect).
                    if !f.readable() || (flags & MAP_SHARED != 0 && prot & 2 != 0 && !f.writable())
                    {
                        return err(EACCES);
                    }
                    shared_anon = flags & MAP_SHARED != 0;
                    never_writable = !f.writable();
                }
                Ok(f) => match f.kind {
                    Kind::Host(h) => {
                        if !f.readable() {
                            return err(EACCES);
                        }
                        if flags & MAP_SHARED != 0 && prot & 2 != 0 {
                            return err(EACCES);
                        }
                        let size = match host::stat_path(procpid::on_host(&f), true) {
                            Ok(st) => st.size,
                            Err(e) => return err(e),
                        };
                        from_file = Some((h, size));
                    }
                    // Private: a copy, written in after mapping. Shared:
                    // the file's object, as for storage files below.
                    Kind::Tmp(ino) if f.readable() && !self.tmp.is_directory(ino) => {
                        if flags & MAP_SHARED != 0 {
                            if prot & 2 != 0 && !f.writable() {
                                return err(EACCES);
                            }
                            // Sealed against writes (a memfd's F_SEAL_WRITE
                            // or F_SEAL_FUTURE_WRITE): not writable, now or
                            // by mprotect later.
                            let sealed = self.seals_of(ino) & 0x18 != 0;
                            if prot & 2 != 0 && sealed {
                                return err(EPERM);
                            }
                            never_writable |= sealed;
                            shared_map = Some((FileRef::Tmp(ino), f.writable()));
                        } else {
                            private_file = Some(FileRef::Tmp(ino));
                        }
                    }
                    // Shared: kept in step with the file (`shared`);
                    // writable only if the file is open for writing, as
                    // on Linux.
                    // A file of any kind must be open for reading.
                    Kind::Tmp(_) | Kind::Store(_) if !f.readable() => return err(EACCES),
                    Kind::Store(ino) if f.readable() => {
                        if flags & MAP_SHARED != 0 {
                            if prot & 2 != 0 && !f.writable() {
                                return err(EACCES);
                            }
                            shared_map = Some((FileRef::Store(ino), f.writable()));
                        } else {
                            private_file = Some(FileRef::Store(ino));
                        }
                    }
                    _ => return err(ENODEV),
                },
                Err(e) => return err(e),
            }
        }
        let fixed = flags & MAP_FIXED != 0;
        let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
        if (fixed || noreplace) && addr % 4096 != 0 {
            return err(EINVAL);
        }
        let hint = addr & !0xfff;
        // A private copy's bytes are written through the mapping: writable
        // until they are in. (A shared mapping shows the file's object,
        // not its own pages.)
        let first_prot = if private_file.is_some() {
            prot | 3
        } else {
            prot
        };
        // Past RLIMIT_MEMLOCK, a mapping to be locked is refused before
        // anything is replaced.
        const MAP_LOCKED: u64 = 0x2000;
        if let Err(e) = self.lock_room(pid, range_end(0, len), flags & MAP_LOCKED != 0) {
            return err(e);
        }
        // A fixed mapping replaces what is there: shared mappings of the
        // range are written back first, while they still hold their bytes.
        if fixed {
            let space = self.procs.get(&pid).map_or(0, |p| p.space);
            let _ = self.flush_shared(space, hint, range_end(hint, len), false);
        }
        let r = self.space_mut(pid).and_then(|s| {
            s.call(MemRequest {
                op: OP_MMAP,
                addr: hint,
                len,
                prot: first_prot as u32,
                flags: if fixed { FLAG_FIXED } else { 0 },
                ..Default::default()
            })
        });
        match r {
            Ok(a) if noreplace && a != hint => {
                let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                err(EEXIST)
            }
            Ok(a) => {
                if let Some((h, size)) = from_file {
                    let n = size.saturating_sub(off).min(len);
                    let slot = self.space_mut(pid).map_or(0, |s| s.slot);
                    if n > 0 {
                        let r = host::load(h, slot, off, n, a, first_prot as u32);
                        if r < 0 {
                            let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                            return err(-r);
                        }
                    }
                }
                let space = self.procs.get(&pid).map_or(0, |p| p.space);
                // What the new mapping replaced (written back above) stops
                // being shared.
                self.forget_shared(space, a, range_end(a, len));
                self.unshare_anon(space, a, range_end(a, len));
                if shared_anon {
                    if let Err(e) = self.map_shared_anon(space, a, len, prot as u32) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    if never_writable {
                        if let Some(e) = self.spaces.get_mut(&space) {
                            e.space.redirects.forbid_writes(a, range_end(a, len));
                        }
                    }
                }
                if let Some(file) = private_file {
                    if let Err(e) = self.fill_private(pid, file, off, a, len, prot) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    self.private_maps.add(PrivateMap {
                        space,
                        start: a,
                        end: range_end(a, len),
                        file,
                        offset: off,
                    });
                }
                if let Some((file, may_write)) = shared_map {
                    if let Err(e) = self.map_file_shared(space, a, len, file, off, prot as u32) {
                        let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
                        return err(e);
                    }
                    if never_writable {
                        if let Some(e) = self.spaces.get_mut(&space) {
                            e.space.redirects.forbid_writes(a, range_end(a, len));
                        }
                    }
                    self.add_shared_map(SharedMap {
                        space,
                        start: a,
                        end: range_end(a, len),
                        file,
                        offset: off,
                        writable: prot & 2 != 0,
                        may_write,
                    });
                }
                // What it replaced was unlocked; it is locked if asked
                // (MAP_LOCKED) or under mlockall(MCL_FUTURE), within the
                // limit asked above.
                let end = range_end(a, len);
                self.unlock_gone(pid, a, end);
                let _ = self.lock_new(pid, a, end, flags & MAP_LOCKED != 0);
                Ret::Val(a as i64)
            }
            Err(EINVAL) => err(EINVAL),
            Err(_) => err(ENOMEM),
        }
    }

    /// madvise: DONTNEED and FREE drop the pages (read back as zeros);
    /// the other hints Linux knows are taken and change nothing here.
    /// Decided: MADV_WIPEONFORK and MADV_KEEPONFORK are EINVAL, as from a
    /// Linux before 4.14, so that a library that relies on a wiped page to
    /// see a fork (BoringSSL's and LibreSSL's random state) falls back to
    /// its own check rather than believe a wipe that does not happen; an
    /// advice Linux does not know is EINVAL.
    pub(super) fn sys_madvise(&mut self, pid: Pid, addr: u64, len: u64, advice: u64) -> Ret {
        const MADV_DONTNEED: u64 = 4;
        const MADV_FREE: u64 = 8;
        const MADV_WIPEONFORK: u64 = 18;
        const MADV_KEEPONFORK: u64 = 19;
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        let known = matches!(advice, 0..=4 | 8..=17 | 20..=25 | 100 | 101);
        if !known || advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK {
            return err(EINVAL);
        }
        // As Linux: a length that wraps is EINVAL, an empty range does
        // nothing, and a discard over unmapped pages is ENOMEM (after the
        // mapped ones are discarded).
        let Some(len) = len.checked_next_multiple_of(4096) else {
            return err(EINVAL);
        };
        if addr.checked_add(len).is_none() {
            return err(EINVAL);
        }
        if len == 0 {
            return Ret::Val(0);
        }
        // Locked pages may not be dropped (MADV_REMOVE too), nor
        // (MADV_COLD, MADV_PAGEOUT) sent away, as Linux's VM_LOCKED rule.
        if matches!(advice, MADV_DONTNEED | MADV_FREE | 9 | 20 | 21)
            && self.locked_in(pid, addr, addr + len)
        {
            return err(EINVAL);
        }
        if advice == MADV_DONTNEED || advice == MADV_FREE {
            let r = self.space_mut(pid).and_then(|s| {
                s.call(MemRequest {
                    op: OP_DISCARD,
                    addr,
                    len,
                    ..Default::default()
                })
            });
            return match r {
                Ok(v) if v & DISCARD_PART_UNMAPPED != 0 => err(ENOMEM),
                Ok(_) => Ret::Val(0),
                Err(EFAULT) => err(ENOMEM),
                Err(e) => err(e),
            };
        }
        // Decided: advice that changes nothing here (the hints) is not
        // checked against the VMAs, so it is 0 even over a hole where
        // Linux says ENOMEM: checking costs a round trip to the home
        // (about 180 us, three times the call) and made stress-ng's madvise
        // stressor ten times slower.
        Ret::Val(0)
    }

    /// [addr, addr + len), widened to whole pages, is mapped without a
    /// hole: Ok(its end), else ENOMEM.
    pub(super) fn mapped_whole(&mut self, pid: Pid, addr: u64, len: u64) -> Result<u64, Errno> {
        let start = addr & !4095;
        let end = addr
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(4096))
            .ok_or(ENOMEM)?;
        if len == 0 {
            return Ok(end);
        }
        let maps = self.space_mut(pid)?.maps_in(start, end)?;
        let mut at = start;
        for v in maps.iter().filter(|v| v.end > start && v.start < end) {
            if v.start > at {
                break;
            }
            at = at.max(v.end);
        }
        if at < end {
            return Err(ENOMEM);
        }
        Ok(end)
    }

    /// mincore: one byte per page of a range that must be mapped whole
    /// (ENOMEM otherwise). Decided: every page is reported resident: a
    /// process's memory is held in its memory components' RAM, never
    /// swapped, and a page never touched costs no disk read either (Linux
    /// reports those 0).
    pub(super) fn sys_mincore(&mut self, pid: Pid, addr: u64, len: u64, vec: u64) -> Ret {
        if addr % 4096 != 0 {
            return err(EINVAL);
        }
        if len == 0 {
            return Ret::Val(0);
        }
        let end = match self.mapped_whole(pid, addr, len) {
            Ok(e) => e,
            Err(e) => return err(e),
        };
        let pages = ((end - addr) / 4096) as usize;
        let ones = alloc::vec![1u8; pages.min(1 << 20)];
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(ones.len());
            let r = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, vec + done as u64, &ones[..n]));
            if let Err(e) = r {
                return err(e);
            }
            done += n;
        }
        Ret::Val(0)
    }
}
