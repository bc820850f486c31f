//! The owner side of the memory monitor: the pages of the vRegions this
//! component owns, for every process that has one here, whether the
//! process's home is this component or another. Page requests are checked
//! against the VMAs the home last synced for those vRegions.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::frames::{FrameStore, Frames, OutOfFrames, Pid};
use crate::space::{AddressSpace, MemError, Vma};

/// The user part of a process's address space: at most what a processor's
/// process window can map (`lego_proto::process`); each process's own top
/// comes with its OP_NEW.
pub const USER_LOW: u64 = lego_proto::process::USER_LOW;
pub const USER_HIGH: u64 = lego_proto::process::USER_TOP_MAX;

/// Who sent a request, as the fabric vouches for it: the frame's source id
/// (sealed by the sender's VMM, which checked its guest did not forge it)
/// and whether that VMM says it is a memory component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub id: u32,
    pub memory: bool,
}

pub struct Owner<S: FrameStore> {
    /// This component's id.
    id: u32,
    /// The home of each process this component holds anything for: itself
    /// for the processes homed here, else the memory component whose first
    /// OP_SYNC brought the process here. Only that one may claim
    /// FLAG_FROM_HOME for the process.
    homes: BTreeMap<Pid, u32>,
    pub(crate) refused_claims: u64,
    pub(crate) store: S,
    pub(crate) frames: Frames,
    /// Per process: the VMAs of the vRegions this component owns (a copy of
    /// its home's, for those vRegions only).
    spaces: BTreeMap<Pid, AddressSpace>,
    pub(crate) zero_fills: u64,
}

impl<S: FrameStore> Owner<S> {
    /// Processes homed at other components that this one holds vRegions of.
    pub fn held_for_others(&self) -> usize {
        self.homes.values().filter(|&&h| h != self.id).count()
    }
}

pub(crate) fn status(e: MemError) -> u32 {
    match e {
        MemError::Invalid => EINVAL,
        MemError::NoMemory => ENOMEM,
        MemError::NotMapped => EFAULT,
        MemError::Permission => EACCES,
    }
}

/// The status of a reply made by [`reply`].
fn status_of_reply(out: &[u8]) -> Option<u32> {
    MemReply::read_from_prefix(out).ok().map(|(h, _)| h.status)
}

/// A reply: its head, and a page or other bytes after it.
pub fn reply(status: u32, value: u64, tail: Option<&[u8]>) -> Vec<u8> {
    let head = MemReply {
        status,
        epoch: 0,
        value,
    };
    let mut out = Vec::with_capacity(REPLY_LEN + tail.map_or(0, |p| p.len()));
    out.extend_from_slice(head.as_bytes());
    if let Some(p) = tail {
        out.extend_from_slice(p);
    }
    out
}

impl<S: FrameStore> Owner<S> {
    pub fn new(id: u32, store: S, frames: u32) -> Owner<S> {
        Owner {
            id,
            homes: BTreeMap::new(),
            refused_claims: 0,
            store,
            frames: Frames::new(frames),
            spaces: BTreeMap::new(),
            zero_fills: 0,
        }
    }

    pub fn frames(&self) -> &Frames {
        &self.frames
    }

    pub fn frames_mut(&mut self) -> &mut Frames {
        &mut self.frames
    }

    /// Whether this component holds anything for `pid`.
    pub fn knows(&self, pid: Pid) -> bool {
        self.spaces.contains_key(&pid)
    }

    /// The processes this component holds pages or VMAs for.
    pub fn processes(&self) -> impl Iterator<Item = Pid> + '_ {
        self.spaces.keys().copied()
    }

    /// Starts holding pages for `pid`, whose home is this component.
    pub fn adopt_home(&mut self, pid: Pid) {
        self.homes.insert(pid, self.id);
        self.adopt(pid);
    }

    /// Starts holding pages for `pid`.
    fn adopt(&mut self, pid: Pid) {
        self.spaces
            .entry(pid)
            .or_insert_with(|| AddressSpace::new(USER_LOW, USER_HIGH, USER_HIGH));
    }

    /// Makes pid's VMAs in [start, end) exactly `vmas`, freeing the frames
    /// of pages no longer mapped. Returns the frames freed.
    pub fn sync(&mut self, pid: Pid, start: u64, end: u64, vmas: &[Vma]) -> u64 {
        self.adopt(pid);
        let Some(space) = self.spaces.get_mut(&pid) else {
            return 0;
        };
        // The VMM must not serve these pages with their old protection.
        self.frames.unpublish_range(pid, start, end);
        let gaps = space.replace(start, end, vmas);
        gaps.into_iter()
            .map(|(a, b)| self.frames.release(pid, a, b))
            .sum()
    }

    /// Moves pid's pages in [from, from + len) to `to` (mremap within this
    /// component); the caller syncs the VMAs.
    pub fn relocate(&mut self, pid: Pid, from: u64, to: u64, len: u64) {
        self.frames.relocate(pid, from, to, len);
    }

    /// Frees everything pid had here. The frames freed.
    pub fn exit(&mut self, pid: Pid) -> u64 {
        self.spaces.remove(&pid);
        self.homes.remove(&pid);
        self.frames.drop_epoch(pid);
        self.frames.release_process(pid)
    }

    /// Which pages of [start, start + len) hold a frame: one bit per page.
    pub fn present(&self, pid: Pid, start: u64, len: u64) -> Vec<u8> {
        let pages = len.div_ceil(crate::PAGE);
        let mut bits = alloc::vec![0u8; pages.div_ceil(8) as usize];
        for i in 0..pages {
            if self.frames.lookup(pid, start / crate::PAGE + i).is_some() {
                bits[(i / 8) as usize] |= 1 << (i % 8);
            }
        }
        bits
    }

    /// The frame behind (pid, addr) for an access, after the VMA check
    /// (`write`), or with only the mapping checked (`None`: from the home).
    /// A new frame is zeroed unless the caller `overwrites` it whole.
    fn frame_for(
        &mut self,
        pid: Pid,
        addr: u64,
        write: Option<bool>,
        overwrites: bool,
    ) -> Result<u32, u32> {
        let space = self.spaces.get(&pid).ok_or(ESRCH)?;
        match write {
            Some(w) => space.check(addr, w).map(|_| ()).map_err(status)?,
            None => space.find(addr).map(|_| ()).ok_or(EFAULT)?,
        }
        let vpage = addr / crate::PAGE;
        let fresh = self.frames.lookup(pid, vpage).is_none();
        let f = if overwrites {
            self.frames.touch_to_overwrite(pid, vpage)
        } else {
            self.frames.touch(pid, vpage, &mut self.store)
        }
        .map_err(|OutOfFrames| OUT_OF_FRAMES)?;
        if fresh {
            self.zero_fills += 1;
        }
        Ok(f)
    }

    /// The protection of the VMA holding `addr` (0 when none does).
    fn vma_prot(&self, pid: Pid, addr: u64) -> u32 {
        self.spaces
            .get(&pid)
            .and_then(|s| s.find(addr))
            .map_or(0, |v| v.prot)
    }

    fn read_page(&mut self, pid: Pid, addr: u64, write: Option<bool>, peek: bool) -> Vec<u8> {
        let prot = self.vma_prot(pid, addr) as u64;
        if peek && self.frames.lookup(pid, addr / crate::PAGE).is_none() {
            // Checked like a read, answered with zeros, nothing allocated.
            if let Some(space) = self.spaces.get(&pid) {
                if let Err(e) = space.check(addr, write.unwrap_or(false)) {
                    return reply(status(e), 0, None);
                }
                return reply(OK, prot, Some(&[0u8; PAGE]));
            }
        }
        match self.frame_for(pid, addr, write, false) {
            Ok(f) => {
                let mut page = [0u8; PAGE];
                self.store.read(f, &mut page);
                // Served here once, checked: the VMM may serve it from now on.
                self.frames.publish(pid, addr / crate::PAGE, prot as u32);
                reply(OK, prot, Some(&page))
            }
            Err(s) => reply(s, 0, None),
        }
    }

    /// An OP_READ of `len` bytes: the first page as a read, then the pages
    /// after it in the same VMA and vRegion (at most [`MAX_RUN`]), as peeks.
    fn read_run(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        write: Option<bool>,
        peek: bool,
    ) -> Vec<u8> {
        let mut out = self.read_page(pid, addr, write, peek);
        if status_of_reply(&out) != Some(OK) {
            return out;
        }
        let pages = len.div_ceil(crate::PAGE).min(MAX_RUN as u64);
        let Some((vma_end, prot)) = self
            .spaces
            .get(&pid)
            .and_then(|s| s.find(addr))
            .map(|v| (v.end, v.prot))
        else {
            return out;
        };
        let region_end = (vregion(addr) + 1) << VREGION_SHIFT;
        let end = addr
            .saturating_add(pages * crate::PAGE)
            .min(vma_end)
            .min(region_end);
        let mut a = (addr & !(crate::PAGE - 1)) + crate::PAGE;
        let mut page = [0u8; PAGE];
        while a < end {
            match self.frames.lookup(pid, a / crate::PAGE) {
                Some(f) => {
                    self.store.read(f, &mut page);
                    out.extend_from_slice(&page);
                    self.frames.publish(pid, a / crate::PAGE, prot);
                }
                None => out.extend_from_slice(&[0u8; PAGE]),
            }
            a += crate::PAGE;
        }
        out
    }

    /// OP_WRITE_MANY: each page written as an OP_WRITE with `write` would
    /// be, unless `instead` gives its status without writing it (another
    /// owner holds its vRegion, or a copy keeps the frame it has). The
    /// reply carries a status per page.
    pub fn write_many(
        &mut self,
        r: &MemRequest,
        rest: &[u8],
        write: Option<bool>,
        instead: &dyn Fn(u64) -> Option<u32>,
    ) -> Vec<u8> {
        let n = r.len as usize;
        if n == 0 || n > MAX_WRITE_RUN || rest.len() < n * (8 + PAGE) {
            return reply(BAD_REQUEST, 0, None);
        }
        let (addrs, pages) = rest.split_at(n * 8);
        let mut statuses = Vec::with_capacity(n * 4);
        let mut written = 0;
        for i in 0..n {
            let mut a = [0u8; 8];
            a.copy_from_slice(&addrs[i * 8..i * 8 + 8]);
            let addr = u64::from_le_bytes(a);
            let Some(page) = pages[i * PAGE..].first_chunk::<PAGE>() else {
                return reply(BAD_REQUEST, 0, None);
            };
            let status = match instead(addr) {
                Some(s) => s,
                None => {
                    let s = self.write_page(r.pid, addr, write, page);
                    if s == OK {
                        written += 1;
                    }
                    s
                }
            };
            statuses.extend_from_slice(&status.to_le_bytes());
        }
        reply(OK, written, Some(&statuses))
    }

    fn write_page(&mut self, pid: Pid, addr: u64, write: Option<bool>, page: &[u8; PAGE]) -> u32 {
        match self.frame_for(pid, addr, write, true) {
            Ok(f) => {
                let store: &mut dyn FrameStore = &mut self.store;
                let vpage = addr / crate::PAGE;
                self.frames.write_frame(pid, vpage, f, store, page);
                // Its next read (the writer's next miss) needs no guest.
                let prot = self.vma_prot(pid, addr);
                self.frames.publish(pid, vpage, prot);
                OK
            }
            Err(s) => s,
        }
    }

    /// Whether `from` may claim to be the home of process `pid` for `op`;
    /// the status to refuse it with otherwise. The first OP_SYNC of a
    /// process from a memory component makes that component its home here.
    fn check_home_claim(&mut self, pid: Pid, op: u32, from: Source) -> Result<(), u32> {
        match self.homes.get(&pid) {
            Some(&home) if home == from.id && home != self.id => Ok(()),
            None if from.memory && from.id != self.id && op == OP_SYNC => {
                self.homes.insert(pid, from.id);
                Ok(())
            }
            // Nothing here to protect, nothing to claim.
            None if from.memory && from.id != self.id => Err(ESRCH),
            _ => {
                self.refused_claims += 1;
                Err(NOT_HOME)
            }
        }
    }

    /// Serves a request that came over the fabric from `from`: its claim to
    /// be the process's home, if it makes one, is checked first.
    pub fn serve_from(&mut self, from: Source, r: &MemRequest, rest: &[u8]) -> Vec<u8> {
        if r.flags & FLAG_FROM_HOME != 0 {
            if let Err(status) = self.check_home_claim(r.pid, r.op, from) {
                return reply(status, 0, None);
            }
        }
        self.serve(r, rest)
    }

    /// Serves a page request or one from a home (OP_SYNC, OP_PRESENT,
    /// OP_EXIT with FLAG_FROM_HOME), already checked (or made here). `rest`
    /// is what followed the request.
    pub fn serve(&mut self, r: &MemRequest, rest: &[u8]) -> Vec<u8> {
        let from_home = r.flags & FLAG_FROM_HOME != 0;
        // From the home, the mapping is checked but not the protection.
        let access = |write: bool| (!from_home).then_some(write);
        let page = rest.first_chunk::<PAGE>();
        // A write-back needs the mapping, not the write permission.
        let write_back = if r.flags & FLAG_WRITEBACK != 0 {
            None
        } else {
            access(true)
        };
        // A read for a copy (FLAG_WRITEBACK) needs the mapping, not the
        // read permission: data behind PROT_NONE is copied too.
        let read = if r.flags & FLAG_WRITEBACK != 0 {
            None
        } else {
            access(r.flags & FLAG_FOR_WRITE != 0)
        };
        match r.op {
            OP_READ if r.len > crate::PAGE => {
                self.read_run(r.pid, r.addr, r.len, read, r.flags & FLAG_PEEK != 0)
            }
            OP_READ => self.read_page(r.pid, r.addr, read, r.flags & FLAG_PEEK != 0),
            OP_WRITE_MANY => self.write_many(r, rest, write_back, &|_| None),
            OP_WRITE => match page {
                Some(p) => reply(self.write_page(r.pid, r.addr, write_back, p), 0, None),
                None => reply(BAD_REQUEST, 0, None),
            },
            OP_READ_WRITE => {
                let Some(p) = page else {
                    return reply(BAD_REQUEST, 0, None);
                };
                // The write-back first: the read may be of the same page.
                match self.write_page(r.pid, r.arg, write_back, p) {
                    OK => {
                        self.read_page(r.pid, r.addr, access(r.flags & FLAG_FOR_WRITE != 0), false)
                    }
                    s => reply(s, 0, None),
                }
            }
            OP_SYNC if from_home => match sync_range(r) {
                Some((start, end)) => {
                    let Some(vmas) = decode_entries(rest, r.arg) else {
                        return reply(BAD_REQUEST, 0, None);
                    };
                    let freed = self.sync(r.pid, start, end, &vmas);
                    if self.homes.get(&r.pid) != Some(&self.id) {
                        // Its home's epoch holds here too.
                        self.frames.set_epoch(r.pid, r.epoch);
                    }
                    reply(OK, freed, None)
                }
                None => reply(BAD_REQUEST, 0, None),
            },
            OP_PRESENT if from_home => {
                if r.len == 0 || r.len > MAX_PRESENT_LEN || r.addr.checked_add(r.len).is_none() {
                    return reply(BAD_REQUEST, 0, None);
                }
                let bits = self.present(r.pid, r.addr, r.len);
                reply(OK, 0, Some(&bits))
            }
            OP_EXIT if from_home => {
                if !self.knows(r.pid) && self.frames.used_by(r.pid) == 0 {
                    return reply(ESRCH, 0, None);
                }
                reply(OK, self.exit(r.pid), None)
            }
            OP_FORK if from_home => {
                let child = r.arg as Pid;
                if !self.knows(r.pid) || child == r.pid {
                    return reply(ESRCH, 0, None);
                }
                self.adopt(child);
                if self.homes.get(&child) != Some(&self.id) {
                    self.frames.set_epoch(child, r.epoch);
                }
                reply(OK, self.frames.copy_process(r.pid, child), None)
            }
            OP_DISCARD if from_home => {
                let end = r.addr.saturating_add(r.len);
                reply(OK, self.frames.release(r.pid, r.addr, end), None)
            }
            _ => reply(BAD_REQUEST, 0, None),
        }
    }
}

/// An OP_SYNC's range, if it is page-aligned and inside user space.
fn sync_range(r: &MemRequest) -> Option<(u64, u64)> {
    let end = r.addr.checked_add(r.len)?;
    let aligned = r.addr % crate::PAGE == 0 && r.len % crate::PAGE == 0;
    (aligned && r.len > 0 && r.addr >= USER_LOW && end <= USER_HIGH).then_some((r.addr, end))
}

/// `count` VMA entries from `bytes`; None if they are not all there.
fn decode_entries(bytes: &[u8], count: u64) -> Option<Vec<Vma>> {
    if count > MAX_SYNC_ENTRIES as u64 {
        return None;
    }
    let n = count as usize;
    let body = bytes.get(..n * VMA_ENTRY_LEN)?;
    body.chunks_exact(VMA_ENTRY_LEN)
        .map(|c| {
            let e = VmaEntry::read_from_bytes(c).ok()?;
            let aligned = e.start % crate::PAGE == 0 && e.end % crate::PAGE == 0;
            (aligned && e.start < e.end).then_some(Vma {
                start: e.start,
                end: e.end,
                prot: e.prot,
            })
        })
        .collect()
}

/// The bytes of an OP_SYNC for pid's [start, end) carrying `vmas`, from
/// a home that holds the process at `epoch`.
pub fn encode_sync(pid: Pid, epoch: u32, start: u64, end: u64, vmas: &[Vma]) -> Vec<u8> {
    let head = MemRequest {
        op: OP_SYNC,
        pid,
        addr: start,
        len: end - start,
        arg: vmas.len() as u64,
        prot: 0,
        flags: FLAG_FROM_HOME,
        epoch,
        _pad: 0,
    };
    let mut out = Vec::with_capacity(REQUEST_LEN + vmas.len() * VMA_ENTRY_LEN);
    out.extend_from_slice(head.as_bytes());
    for v in vmas {
        let e = VmaEntry {
            start: v.start,
            end: v.end,
            prot: v.prot,
            _pad: 0,
        };
        out.extend_from_slice(e.as_bytes());
    }
    out
}
