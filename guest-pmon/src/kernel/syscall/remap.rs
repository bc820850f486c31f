//! mremap with MREMAP_FIXED (to an address the caller names) and
//! MREMAP_DONTUNMAP (the old range left mapped and empty), with Linux's
//! checks and order: what lies at the target is unmapped first, a shrink
//! drops the old tail, the pages move, the old range goes.
//!
//! Decided: the pages are copied through the monitor, not moved by the
//! memory component (whose mremap picks the place itself), so a move
//! costs a read of each page and a write of each that is not all zeros
//! (those stay fresh); these flags are rare (allocators and runtimes move
//! with MREMAP_MAYMOVE alone, which stays a memory call). A move of more
//! than 1 GiB is ENOMEM, before anything changes, rather than a copy that
//! holds the monitor for seconds (a reservation of many GiB moved by a
//! program would fault every page in). Shared mappings (shared memory,
//! shared files) are not moved to a named place: EINVAL.

use super::*;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;
/// How much is copied at a time.
const CHUNK: u64 = 1 << 20;
/// The most a move copies.
const MAX_MOVE: u64 = 1 << 30;

impl Kernel {
    /// mremap of `[old, old + old_len)` to `new_len` bytes at `to`
    /// (MREMAP_FIXED), or anywhere with MREMAP_DONTUNMAP alone.
    pub(super) fn sys_mremap_to(
        &mut self,
        pid: Pid,
        (old, old_len): (u64, u64),
        new_len: u64,
        flags: u64,
        to: u64,
    ) -> Ret {
        const TASK_SIZE: u64 = lego_proto::process::USER_TOP_MAX - 4096;
        let fixed = flags & MREMAP_FIXED != 0;
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
            || flags & MREMAP_MAYMOVE == 0
            || old % 4096 != 0
        {
            return err(EINVAL);
        }
        let (Some(old_len), Some(new_len)) = (
            old_len.checked_next_multiple_of(4096),
            new_len.checked_next_multiple_of(4096),
        ) else {
            return err(EINVAL);
        };
        if new_len == 0 || old_len == 0 || (dontunmap && old_len != new_len) {
            return err(EINVAL);
        }
        let old_end = old.saturating_add(old_len);
        // The target's checks come first, as Linux's make them; its
        // alignment with MREMAP_DONTUNMAP alone too (glibc's wrapper passes
        // whatever its register holds then, and Linux 6.18 refuses an
        // unaligned one).
        if (fixed || dontunmap) && to % 4096 != 0 {
            return err(EINVAL);
        }
        if fixed
            && (new_len > TASK_SIZE
                || to > TASK_SIZE - new_len
                || (to < old_end && old < to + new_len))
        {
            return err(EINVAL);
        }
        if old_len.min(new_len) > MAX_MOVE {
            return err(ENOMEM);
        }
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        if self.meets_shared_anon(space, old, old_end) {
            return err(EINVAL);
        }
        // The old range must lie in one mapping (EFAULT otherwise).
        let prot = match self.space_mut(pid).and_then(|s| s.maps_in(old, old_end)) {
            Ok(v) => match v.iter().find(|m| m.start < old_end && old < m.end) {
                Some(m) if m.start <= old && m.end >= old_end => m.prot,
                _ => return err(EFAULT),
            },
            Err(e) => return err(e),
        };
        // Where it goes: the named place, or (DONTUNMAP alone) a free one.
        let to = if fixed {
            if let Ret::Val(e) = self.unmap_range(pid, to, new_len) {
                if e < 0 {
                    return Ret::Val(e);
                }
            }
            to
        } else {
            match self.mem(pid, OP_MMAP, 0, new_len, 0, 3, 0) {
                Ret::Val(a) if a >= 0 => a as u64,
                r => return r,
            }
        };
        if new_len < old_len {
            let _ = self.unmap_range(pid, old + new_len, old_len - new_len);
        }
        let moved = old_len.min(new_len);
        // Writable while the bytes come in; the old range readable.
        if let Ret::Val(e) = self.mem(pid, OP_MMAP, to, new_len, 0, prot | 3, FLAG_FIXED) {
            if e < 0 {
                return Ret::Val(e);
            }
        }
        if prot & 3 == 0 {
            let _ = self.mem(pid, OP_MPROTECT, old, moved, 0, 1, 0);
        }
        let mut at = 0;
        while at < moved {
            let n = (moved - at).min(CHUNK) as usize;
            let copied = self.space_mut(pid).and_then(|s| {
                let bytes = uaccess::read_vec(s, old + at, n)?;
                for (i, page) in bytes.chunks(4096).enumerate() {
                    if page.iter().any(|&b| b != 0) {
                        uaccess::write(s, to + at + i as u64 * 4096, page)?;
                    }
                }
                Ok(())
            });
            if let Err(e) = copied {
                return err(e);
            }
            at += n as u64;
        }
        if prot & 3 != 3 {
            let _ = self.mem(pid, OP_MPROTECT, to, new_len, 0, prot, 0);
        }
        // A private file mapping's range goes with its pages (the old
        // range, if left, is anonymous memory now).
        self.private_maps.remapped(space, old, moved, to, new_len);
        if dontunmap {
            // Left mapped, its pages gone: it reads zeros (anonymous
            // memory), as Linux's.
            let _ = self.mem(pid, OP_DISCARD, old, moved, 0, 0, 0);
            if prot & 3 == 0 {
                let _ = self.mem(pid, OP_MPROTECT, old, moved, 0, prot, 0);
            }
        } else {
            let _ = self.unmap_range(pid, old, moved);
        }
        self.relock_remapped(pid, old, moved, to, new_len);
        Ret::Val(to as i64)
    }

    /// munmap of `[addr, addr + len)` as the call does it: shared mappings
    /// written back, the range's pages and locks gone.
    pub(super) fn unmap_range(&mut self, pid: Pid, addr: u64, len: u64) -> Ret {
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        let end = range_end(addr, len);
        let _ = self.flush_shared(space, addr, end, true);
        let r = self.mem(pid, OP_MUNMAP, addr, len, 0, 0, 0);
        if matches!(r, Ret::Val(0)) {
            self.unshare_anon(space, addr, end);
            self.unlock_gone(pid, addr, end);
        }
        r
    }
}
