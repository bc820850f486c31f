//! The memory monitor's service: one request in, one reply out, for any
//! number of processes. Malformed requests, addresses outside every VMA
//! and accesses against the protection get a precise status, never a crash.
//!
//! A process's home is the component that got its OP_NEW. The home keeps
//! the process's whole address space (every VMA) and cuts it into vRegions:
//! the first vRegion the process uses is the home's own, the rest are handed
//! out round-robin, per process, over the static list of peers (`--vregion-peers`) and the
//! home itself. The owner of a vRegion holds its pages and a copy of its
//! VMAs, which the home sends (OP_SYNC) after every call that changes them.
//! Page requests go to the owner; the home answers a page request for a
//! vRegion it does not own with NOT_OWNER and the owner's id.
//!
//! With a backup (`--backup`), the backup holds each process homed here
//! whole (made with FLAG_COPY, it keeps every vRegion itself) while the
//! vRegions spread: processors send it every change, the write-backs to
//! the owners too. So the loss of the home or of any owner leaves one
//! component that holds all of the process, and the process moves there.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use lego_proto::memory::*;
use zerocopy::FromBytes;

use crate::frames::{FrameStore, Frames, Pid};
use crate::owner::{encode_sync, reply, status, Owner, Source};
use crate::space::{AddressSpace, MemError, Range};

pub use crate::owner::{USER_HIGH, USER_LOW};

/// How a home reaches the other memory components.
pub trait Remote<S: FrameStore> {
    /// Sends `request` to memory component `dst` and returns its reply's
    /// payload, or None if it did not answer. While it waits, requests
    /// from other homes (FLAG_FROM_HOME) must be served with `owner`, or
    /// two homes calling each other would wait for each other.
    fn call(&mut self, dst: u32, request: &[u8], owner: &mut Owner<S>) -> Option<Vec<u8>>;
}

/// A component without peers: every vRegion stays at the home.
pub struct NoPeers;

impl<S: FrameStore> Remote<S> for NoPeers {
    fn call(&mut self, _: u32, _: &[u8], _: &mut Owner<S>) -> Option<Vec<u8>> {
        None
    }
}

/// What the home keeps of a process.
struct Home {
    space: AddressSpace,
    /// vRegion index -> the component that owns it.
    regions: BTreeMap<u64, u32>,
    /// Every component that ever owned one of its vRegions (told at exit).
    owners: BTreeSet<u32>,
    /// Where the round-robin of its vRegions stands.
    next_peer: usize,
    /// A copy kept for another component: every vRegion stays here.
    keep_all: bool,
    /// The epoch this component holds the process at (see
    /// [`Monitor::check_epoch`]).
    epoch: u32,
}

pub struct Monitor<S: FrameStore> {
    id: u32,
    peers: Vec<u32>,
    owner: Owner<S>,
    homes: BTreeMap<Pid, Home>,
    requests: u64,
    errors: u64,
    peer_failures: u64,
    stale_refused: u64,
    takeovers: u64,
    /// The component processors also send this one's changes to
    /// (`--backup`), 0 for none.
    backup: u32,
    /// In a rack: the other memory components the managers offer as
    /// vRegion owners with their free memory as last reported, and what
    /// this one handed out since (see [`Monitor::set_rack_owners`]). None
    /// outside a rack: the static `peers` rule holds.
    rack_owners: Option<RackOwners>,
}

/// The managers' memory components and their free bytes, less a vRegion's
/// size for each vRegion handed to one since the list came (an empty
/// vRegion does not show in a component's use yet, and may fill up to its
/// size), so vRegions handed out between two lists spread by free memory
/// instead of all going to the component that had most.
struct RackOwners {
    others: Vec<(u32, u64)>,
    /// This component's memory, counted as the managers count the others'
    /// (its size less the frames holding pages), so the two compare.
    own_ram: u64,
    /// What this component handed to itself since the list came.
    own_debit: u64,
}

impl RackOwners {
    /// The component with the most free memory (another one on a tie,
    /// so that equal components share), debited a vRegion; this one, `me`,
    /// has `own_used` bytes of frames holding pages.
    fn pick(&mut self, me: u32, own_used: u64) -> u32 {
        let mine = self
            .own_ram
            .saturating_sub(own_used)
            .saturating_sub(self.own_debit);
        let best = self
            .others
            .iter_mut()
            .filter(|(id, _)| *id != me)
            .max_by_key(|(id, free)| (*free, core::cmp::Reverse(*id)));
        match best {
            Some((id, free)) if *free >= mine => {
                *free = free.saturating_sub(VREGION_SIZE);
                *id
            }
            _ => {
                self.own_debit = self.own_debit.saturating_add(VREGION_SIZE);
                me
            }
        }
    }
}

fn page_up(x: u64) -> u64 {
    x.saturating_add(crate::PAGE - 1) & !(crate::PAGE - 1)
}

/// The vRegions that [start, end) touches, each as (index, piece start, piece end).
fn pieces(start: u64, end: u64) -> impl Iterator<Item = (u64, u64, u64)> {
    let last = if end > start { vregion(end - 1) + 1 } else { 0 };
    (vregion(start)..last).map(move |i| {
        let base = i << VREGION_SHIFT;
        (
            i,
            start.max(base),
            end.min(base.saturating_add(VREGION_SIZE)),
        )
    })
}

fn status_of(bytes: &[u8]) -> Option<(u32, u64)> {
    MemReply::read_from_prefix(bytes)
        .ok()
        .map(|(r, _)| (r.status, r.value))
}

impl<S: FrameStore> Monitor<S> {
    /// Component `id` with `frames` frames in `store`, handing vRegions to `peers`.
    pub fn new(id: u32, peers: &[u32], store: S, frames: u32) -> Monitor<S> {
        Monitor {
            id,
            peers: peers.iter().copied().filter(|&p| p != id).collect(),
            owner: Owner::new(id, store, frames),
            homes: BTreeMap::new(),
            requests: 0,
            errors: 0,
            peer_failures: 0,
            stale_refused: 0,
            takeovers: 0,
            backup: 0,
            rack_owners: None,
        }
    }

    /// In a rack: the memory components (other than this one) the managers
    /// offer as vRegion owners, each with its free bytes. From now on a
    /// process's vRegions after its first go to the one with the most free
    /// memory, this one included (see [`RackOwners`]); a component with a
    /// backup keeps them all.
    pub fn set_rack_owners(&mut self, others: &[(u32, u64)], own_ram: u64) {
        self.rack_owners = Some(RackOwners {
            own_ram,
            others: others
                .iter()
                .copied()
                .filter(|&(id, _)| id != self.id)
                .collect(),
            own_debit: 0,
        });
    }

    /// The processes homed here, and those homed elsewhere whose vRegions
    /// this component owns.
    pub fn process_counts(&self) -> (u32, u32) {
        let held = self.owner.held_for_others();
        (self.homes.len() as u32, held as u32)
    }

    /// Names the component that keeps a copy of what this one holds.
    pub fn set_backup(&mut self, backup: u32) {
        self.backup = backup;
    }

    /// The component that keeps a copy of what this one holds, 0 for none.
    pub fn backup(&self) -> u32 {
        self.backup
    }

    pub fn frames(&self) -> &Frames {
        self.owner.frames()
    }

    /// The owner side, for serving other homes' requests while this one waits.
    pub fn owner_mut(&mut self) -> &mut Owner<S> {
        &mut self.owner
    }

    pub fn stats(&self) -> MemStats {
        let frames = self.owner.frames();
        MemStats {
            frames_total: frames.total() as u64,
            frames_free: frames.free_frames() as u64,
            processes: self.homes.len() as u64,
            requests: self.requests,
            errors: self.errors,
            zero_fills: self.owner.zero_fills,
            heap_free: self.owner.store.heap_free(),
            vregions_handed_out: self
                .homes
                .values()
                .map(|h| h.regions.values().filter(|&&o| o != self.id).count() as u64)
                .sum(),
            guests: self
                .owner
                .processes()
                .filter(|p| !self.homes.contains_key(p))
                .count() as u64,
            peer_failures: self.peer_failures,
            refused_claims: self.owner.refused_claims,
            stale_refused: self.stale_refused,
            takeovers: self.takeovers,
        }
    }

    /// Serves one request (its bytes as they came off the fabric) from
    /// `from`.
    pub fn handle(&mut self, from: Source, bytes: &[u8], remote: &mut dyn Remote<S>) -> Vec<u8> {
        self.requests += 1;
        let out = match MemRequest::read_from_prefix(bytes) {
            Ok((req, rest)) => {
                let mut out = self.serve(from, &req, rest, remote);
                // The reply names the epoch the process is held at here
                // (counters and the backup's name are no process's state).
                let epoch = match self.homes.get(&req.pid) {
                    Some(h) if !about_the_component(req.op) => h.epoch,
                    _ => req.epoch,
                };
                if let Some(e) = out.get_mut(4..8) {
                    e.copy_from_slice(&epoch.to_le_bytes());
                }
                out
            }
            Err(_) => reply(BAD_REQUEST, 0, None),
        };
        if status_of(&out).is_none_or(|(s, _)| s != OK) {
            self.errors += 1;
        }
        out
    }

    /// Whether a request only needs the owner side (so it can be served
    /// while this component waits for another).
    pub fn is_from_home(bytes: &[u8]) -> bool {
        MemRequest::read_from_prefix(bytes).is_ok_and(|(r, _)| r.flags & FLAG_FROM_HOME != 0)
    }

    fn serve(
        &mut self,
        from: Source,
        r: &MemRequest,
        rest: &[u8],
        remote: &mut dyn Remote<S>,
    ) -> Vec<u8> {
        let pid = r.pid;
        let from_home = r.flags & FLAG_FROM_HOME != 0;
        if !from_home {
            if let Some(refused) = self.check_epoch(r) {
                return refused;
            }
        }
        match r.op {
            OP_READ | OP_WRITE | OP_READ_WRITE if !from_home => {
                if let Some(home) = self.homes.get(&pid) {
                    let addrs = [Some(r.addr), (r.op == OP_READ_WRITE).then_some(r.arg)];
                    for a in addrs.into_iter().flatten() {
                        match home.regions.get(&vregion(a)) {
                            Some(&o) if o != self.id => return reply(NOT_OWNER, o as u64, None),
                            _ => {}
                        }
                    }
                }
                self.owner.serve(r, rest)
            }
            OP_WRITE_MANY if !from_home => {
                let id = self.id;
                // Pages that hold a frame, when asked to leave them: decided
                // before writing (a request may name a page twice).
                let kept: Vec<u64> = if r.flags & FLAG_IF_ABSENT != 0 {
                    let frames = self.owner.frames();
                    (0..(r.len as usize).min(MAX_WRITE_RUN))
                        .filter_map(|i| {
                            let b: [u8; 8] = rest.get(i * 8..i * 8 + 8)?.try_into().ok()?;
                            let addr = u64::from_le_bytes(b);
                            frames.lookup(pid, addr / crate::PAGE).map(|_| addr)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let instead = |a: u64| {
                    let elsewhere = self
                        .homes
                        .get(&pid)
                        .and_then(|h| h.regions.get(&vregion(a)))
                        .is_some_and(|&o| o != id);
                    if elsewhere {
                        Some(NOT_OWNER)
                    } else {
                        kept.contains(&a).then_some(OK)
                    }
                };
                let write = (r.flags & FLAG_WRITEBACK == 0).then_some(true);
                self.owner.write_many(r, rest, write, &instead)
            }
            OP_PRESENT if !from_home => {
                // A processor bringing a new copy of the process up to
                // date asks which pages hold frames: its home, which sends
                // it on to the owner of a vRegion handed out, and owners.
                if !self.homes.contains_key(&pid) && !self.owner.knows(pid) {
                    return reply(ESRCH, 0, None);
                }
                if r.len == 0 || r.len > MAX_PRESENT_LEN || r.addr.checked_add(r.len).is_none() {
                    return reply(BAD_REQUEST, 0, None);
                }
                if let Some(o) = self.owner_of(pid, r.addr).filter(|&o| o != self.id) {
                    return reply(NOT_OWNER, o as u64, None);
                }
                reply(OK, 0, Some(&self.owner.present(pid, r.addr, r.len)))
            }
            OP_NEW => {
                if self.homes.contains_key(&pid) || self.owner.knows(pid) {
                    return reply(EEXIST, 0, None);
                }
                let top = match r.len {
                    0 => USER_HIGH,
                    t if t & (crate::PAGE - 1) == 0 && t > USER_LOW && t <= USER_HIGH => t,
                    _ => return reply(EINVAL, 0, None),
                };
                let brk = r.addr.clamp(USER_LOW, top);
                let mut space = AddressSpace::new(USER_LOW, top, brk);
                if r.arg != 0 {
                    space.set_mmap_base(r.arg);
                }
                let home = Home {
                    space,
                    regions: BTreeMap::new(),
                    owners: BTreeSet::new(),
                    next_peer: 0,
                    keep_all: r.flags & FLAG_COPY != 0,
                    epoch: r.epoch,
                };
                self.homes.insert(pid, home);
                self.owner.adopt_home(pid);
                self.owner.frames_mut().set_epoch(pid, r.epoch);
                reply(OK, brk, None)
            }
            OP_EXIT if !from_home => self.exit(pid, remote),
            OP_STATS => {
                let s = self.stats();
                reply(OK, 0, Some(zerocopy::IntoBytes::as_bytes(&s)))
            }
            OP_BACKUP => reply(OK, self.backup as u64, None),
            OP_MMAP | OP_MUNMAP | OP_MPROTECT | OP_BRK | OP_MREMAP if !from_home => {
                self.memory_call(r, remote)
            }
            OP_FORK if !from_home => self.fork(pid, r.arg as Pid, remote),
            OP_DISCARD if !from_home => self.discard(pid, r.addr, r.len, remote),
            OP_MAPS if !from_home => self.maps(pid, r.addr),
            _ => self.owner.serve_from(from, r, rest),
        }
    }

    /// Whether a processor's request for a process homed here comes at the
    /// epoch the process is held at; the refusal if not. Epochs are how
    /// copies tell current from stale: processors start a process at
    /// epoch 1 at both its copies and raise it when they fail over, with
    /// [`FLAG_TAKEOVER`] on the requests to the copy that takes over.
    /// So a request of an older epoch comes from a sender that missed a
    /// fail-over, and one of a newer epoch without the flag finds this
    /// copy left behind by one (it was stopped or cut off and replaced):
    /// both are refused ([`STALE_EPOCH`], counted), and a stale copy never
    /// serves or takes a page. The exit of a stale copy is let through:
    /// a processor making a new copy here drops it first. Processes homed
    /// elsewhere are not checked here: a fail-over never lands at the
    /// owner of a vRegion handed out (the home's backup holds the whole
    /// process and it moves there whole), so their epochs never change
    /// while they are spread (their home's epoch still comes with its
    /// OP_SYNC, for the VMM's check).
    fn check_epoch(&mut self, r: &MemRequest) -> Option<Vec<u8>> {
        if r.op == OP_NEW || about_the_component(r.op) {
            return None;
        }
        let home = self.homes.get_mut(&r.pid)?;
        if r.epoch == home.epoch || (r.epoch > home.epoch && r.op == OP_EXIT) {
            return None;
        }
        if r.epoch > home.epoch && r.flags & FLAG_TAKEOVER != 0 {
            home.epoch = r.epoch;
            self.takeovers += 1;
            self.owner.frames_mut().set_epoch(r.pid, r.epoch);
            return None;
        }
        self.stale_refused += 1;
        Some(reply(STALE_EPOCH, home.epoch as u64, None))
    }

    /// A request to the owner `dst` (this component or another); the
    /// reply, or Err(dst) if it did not answer.
    fn ask_owner(
        &mut self,
        dst: u32,
        request: &[u8],
        remote: &mut dyn Remote<S>,
    ) -> Result<Vec<u8>, u32> {
        if dst == self.id {
            return match MemRequest::read_from_prefix(request) {
                Ok((r, rest)) => Ok(self.owner.serve(&r, rest)),
                Err(_) => Ok(reply(BAD_REQUEST, 0, None)),
            };
        }
        match remote.call(dst, request, &mut self.owner) {
            Some(out) if status_of(&out).is_some() => Ok(out),
            _ => {
                self.peer_failures += 1;
                Err(dst)
            }
        }
    }

    fn exit(&mut self, pid: Pid, remote: &mut dyn Remote<S>) -> Vec<u8> {
        let Some(home) = self.homes.remove(&pid) else {
            return reply(ESRCH, 0, None);
        };
        let mut freed = self.owner.exit(pid);
        let mut failed = None;
        let request = MemRequest {
            op: OP_EXIT,
            pid,
            flags: FLAG_FROM_HOME,
            ..Default::default()
        };
        let me = self.id;
        for o in home.owners.into_iter().filter(|&o| o != me) {
            match self.ask_owner(o, zerocopy::IntoBytes::as_bytes(&request), remote) {
                Ok(out) => match status_of(&out) {
                    Some((OK, n)) => freed += n,
                    // It never got a page of this process.
                    Some((ESRCH, _)) => {}
                    _ => failed = Some(o),
                },
                Err(o) => failed = Some(o),
            }
        }
        match failed {
            Some(o) => reply(PEER_FAILED, o as u64, None),
            None => reply(OK, freed, None),
        }
    }

    /// fork: `child` (made by OP_NEW here, still empty) gets a copy of
    /// `parent`'s mappings, and every owner of a vRegion of the parent
    /// copies its pages for the child.
    fn fork(&mut self, parent: Pid, child: Pid, remote: &mut dyn Remote<S>) -> Vec<u8> {
        let Some(p) = self.homes.get(&parent) else {
            return reply(ESRCH, 0, None);
        };
        let (space, regions, owners, next_peer) = (
            p.space.clone(),
            p.regions.clone(),
            p.owners.clone(),
            p.next_peer,
        );
        match self.homes.get_mut(&child) {
            Some(c) if c.space.is_empty() && c.regions.is_empty() && child != parent => {
                c.space = space;
                c.regions = regions;
                c.owners = owners.clone();
                c.next_peer = next_peer;
            }
            Some(_) => return reply(EEXIST, 0, None),
            None => return reply(ESRCH, 0, None),
        }
        let ranges: Vec<Range> = self
            .homes
            .get(&child)
            .map(|c| c.space.vmas().map(|v| (v.start, v.end)).collect())
            .unwrap_or_default();
        let mut failed = self.sync(child, &ranges, remote);
        let mut copied = 0;
        let request = MemRequest {
            op: OP_FORK,
            pid: parent,
            arg: child as u64,
            flags: FLAG_FROM_HOME,
            epoch: self.homes.get(&child).map_or(0, |c| c.epoch),
            ..Default::default()
        };
        for o in owners {
            match self.ask_owner(o, zerocopy::IntoBytes::as_bytes(&request), remote) {
                Ok(out) => match status_of(&out) {
                    Some((OK, n)) => copied += n,
                    Some((OUT_OF_FRAMES, _)) => return reply(OUT_OF_FRAMES, 0, None),
                    Some((ESRCH, _)) => {}
                    _ => failed = Some(o),
                },
                Err(o) => failed = Some(o),
            }
        }
        match failed {
            Some(o) => reply(PEER_FAILED, o as u64, None),
            None => reply(OK, copied, None),
        }
    }

    /// The VMAs of `pid` that end above `from`: one chunk of a listing.
    fn maps(&self, pid: Pid, from: u64) -> Vec<u8> {
        let Some(home) = self.homes.get(&pid) else {
            return reply(ESRCH, 0, None);
        };
        let mut out = Vec::new();
        let mut n = 0;
        for v in home
            .space
            .vmas()
            .filter(|v| v.end > from)
            .take(MAX_SYNC_ENTRIES)
        {
            let e = VmaEntry {
                start: v.start,
                end: v.end,
                prot: v.prot,
                _pad: 0,
            };
            out.extend_from_slice(zerocopy::IntoBytes::as_bytes(&e));
            n += 1;
        }
        reply(OK, n, Some(&out))
    }

    /// MADV_DONTNEED: the owners free the frames of [addr, addr + len).
    fn discard(&mut self, pid: Pid, addr: u64, len: u64, remote: &mut dyn Remote<S>) -> Vec<u8> {
        let Some(home) = self.homes.get(&pid) else {
            return reply(ESRCH, 0, None);
        };
        if addr % crate::PAGE != 0 {
            return reply(EINVAL, 0, None);
        }
        // Past the space's top nothing is mapped: the walk over vRegions
        // stops there, however long the range a request names (an
        // unbounded one walked 2^34 vRegion indices, and the component
        // answered nothing more).
        let asked = addr.saturating_add(page_up(len));
        let end = asked.min(home.space.high());
        let unmapped = if end == asked && home.space.covers(addr, end) {
            0
        } else {
            DISCARD_PART_UNMAPPED
        };
        let mut asks = Vec::new();
        for (i, ps, pe) in pieces(addr, end) {
            if let Some(&o) = home.regions.get(&i) {
                asks.push((o, ps, pe));
            }
        }
        let mut freed = 0;
        for (o, ps, pe) in asks {
            let request = MemRequest {
                op: OP_DISCARD,
                pid,
                addr: ps,
                len: pe - ps,
                flags: FLAG_FROM_HOME,
                ..Default::default()
            };
            match self.ask_owner(o, zerocopy::IntoBytes::as_bytes(&request), remote) {
                Ok(out) => match status_of(&out) {
                    Some((OK, n)) => freed += n,
                    _ => return reply(PEER_FAILED, o as u64, None),
                },
                Err(o) => return reply(PEER_FAILED, o as u64, None),
            }
        }
        reply(OK, freed | unmapped, None)
    }

    /// mmap, munmap, mprotect, brk and mremap: applied to the home's
    /// space, then synced to the owners of the vRegions they touched.
    fn memory_call(&mut self, r: &MemRequest, remote: &mut dyn Remote<S>) -> Vec<u8> {
        let pid = r.pid;
        let Some(home) = self.homes.get_mut(&pid) else {
            return reply(ESRCH, 0, None);
        };
        let space = &mut home.space;
        // What changed: ranges to sync before pages move, the move, and
        // ranges to sync after it (the old place of moved pages).
        let mut before: Vec<Range> = Vec::new();
        let mut moved = None;
        let mut after: Vec<Range> = Vec::new();
        let result: Result<u64, MemError> = match r.op {
            OP_MMAP => space
                .mmap(r.addr, r.len, r.prot, r.flags & FLAG_FIXED != 0)
                .inspect(|&a| before.push((a, a + page_up(r.len)))),
            OP_MUNMAP => space.munmap(r.addr, r.len).map(|freed| {
                before = freed;
                0
            }),
            OP_MPROTECT => space.mprotect(r.addr, r.len, r.prot).map(|_| {
                before.push((r.addr, r.addr.saturating_add(page_up(r.len))));
                0
            }),
            OP_BRK => {
                let old = page_up(space.brk_now());
                let (now, _) = space.brk(r.addr);
                let new = page_up(now);
                if new != old {
                    before.push((old.min(new), old.max(new)));
                }
                Ok(now)
            }
            OP_MREMAP => space
                .mremap(r.addr, r.len, r.arg, r.flags & FLAG_MAYMOVE != 0)
                .map(|m| {
                    let (old_len, new_len) = (page_up(r.len), page_up(r.arg));
                    match m.moved {
                        Some(mv) => {
                            before.push((m.addr, m.addr + new_len));
                            moved = Some(mv);
                            after.push((r.addr, r.addr + old_len));
                        }
                        None => before.push((r.addr, r.addr + old_len.max(new_len))),
                    }
                    m.addr
                }),
            _ => return reply(BAD_REQUEST, 0, None),
        };
        let value = match result {
            Ok(v) => v,
            Err(e) => return reply(status(e), 0, None),
        };
        let touched: Vec<Range> = before.iter().chain(&after).copied().collect();
        self.assign(pid, &touched);
        let mut failed = self.sync(pid, &before, remote);
        if let Some(mv) = moved {
            failed = self.move_pages(pid, mv, remote).or(failed);
        }
        failed = self.sync(pid, &after, remote).or(failed);
        self.release_empty(pid, &touched);
        match failed {
            Some(o) => reply(PEER_FAILED, o as u64, None),
            None => reply(OK, value, None),
        }
    }

    /// Gives an owner to every vRegion in `ranges` that has a VMA and none.
    fn assign(&mut self, pid: Pid, ranges: &[Range]) {
        let frames = self.owner.frames();
        let own_used = (frames.total() - frames.free_frames()) as u64 * crate::PAGE;
        let Some(home) = self.homes.get_mut(&pid) else {
            return;
        };
        for &(a, b) in ranges {
            for (i, ps, pe) in pieces(a, b) {
                if home.regions.contains_key(&i) || !home.space.overlaps(ps, pe) {
                    continue;
                }
                // The home owns the first; in a rack the rest go by free
                // memory, else round the static list.
                // With a backup in a rack every vRegion stays here too
                // (the managers' copies are whole components); with the
                // static list, the backup keeps a whole copy of each
                // process (FLAG_COPY) while its vRegions spread.
                let rack_copy = self.backup != 0 && self.rack_owners.is_some();
                let owner = if home.regions.is_empty() || home.keep_all || rack_copy {
                    self.id
                } else if let Some(rack) = self.rack_owners.as_mut() {
                    rack.pick(self.id, own_used)
                } else if self.peers.is_empty() {
                    self.id
                } else {
                    let n = self.peers.len() + 1;
                    let k = home.next_peer % n;
                    home.next_peer = home.next_peer.wrapping_add(1);
                    self.peers.get(k).copied().unwrap_or(self.id)
                };
                home.regions.insert(i, owner);
                home.owners.insert(owner);
            }
        }
    }

    /// vRegions in `ranges` left without a VMA lose their owner.
    fn release_empty(&mut self, pid: Pid, ranges: &[Range]) {
        let Some(home) = self.homes.get_mut(&pid) else {
            return;
        };
        for &(a, b) in ranges {
            for (i, _, _) in pieces(a, b) {
                let base = i << VREGION_SHIFT;
                if home.regions.contains_key(&i)
                    && !home.space.overlaps(base, base.saturating_add(VREGION_SIZE))
                {
                    home.regions.remove(&i);
                }
            }
        }
    }

    /// Sends the owners of the vRegions in `ranges` the home's VMAs there.
    /// The id of an owner that did not take them, if any.
    fn sync(&mut self, pid: Pid, ranges: &[Range], remote: &mut dyn Remote<S>) -> Option<u32> {
        let mut messages = Vec::new();
        let home = self.homes.get(&pid)?;
        let epoch = home.epoch;
        for &(a, b) in ranges {
            for (i, ps, pe) in pieces(a, b) {
                let Some(&owner) = home.regions.get(&i) else {
                    continue;
                };
                let vmas = home.space.clipped(ps, pe);
                let mut at = ps;
                let chunks = vmas.chunks(MAX_SYNC_ENTRIES);
                let count = chunks.len();
                for (k, chunk) in chunks.enumerate() {
                    let end = match chunk.last() {
                        Some(v) if k + 1 < count => v.end,
                        _ => pe,
                    };
                    messages.push((owner, encode_sync(pid, epoch, at, end, chunk)));
                    at = end;
                }
                if vmas.is_empty() {
                    messages.push((owner, encode_sync(pid, epoch, ps, pe, &[])));
                }
            }
        }
        let mut failed = None;
        for (owner, m) in messages {
            match self.ask_owner(owner, &m, remote).map(|out| status_of(&out)) {
                Ok(Some((OK, _))) => {}
                _ => failed = Some(owner),
            }
        }
        failed
    }

    fn owner_of(&self, pid: Pid, addr: u64) -> Option<u32> {
        self.homes.get(&pid)?.regions.get(&vregion(addr)).copied()
    }

    /// mremap moved pid's pages [from, from + len) to `to`: frames move
    /// within this component, pages are copied between components.
    fn move_pages(
        &mut self,
        pid: Pid,
        (from, to, len): (u64, u64, u64),
        remote: &mut dyn Remote<S>,
    ) -> Option<u32> {
        let next = |a: u64| ((vregion(a) + 1) << VREGION_SHIFT) - a;
        let mut failed = None;
        let mut done = 0;
        while done < len {
            let (src, dst) = (from + done, to + done);
            let step = (len - done)
                .min(next(src))
                .min(next(dst))
                .min(MAX_PRESENT_LEN);
            done += step;
            let (Some(x), Some(y)) = (self.owner_of(pid, src), self.owner_of(pid, dst)) else {
                continue;
            };
            if x == self.id && y == self.id {
                self.owner.relocate(pid, src, dst, step);
                continue;
            }
            if let Err(o) = self.copy_pages(pid, (x, src), (y, dst), step, remote) {
                failed = Some(o);
            }
        }
        failed
    }

    /// Copies the pages of [src, src + len) that component `x` holds to
    /// [dst, ...) at component `y`.
    fn copy_pages(
        &mut self,
        pid: Pid,
        (x, src): (u32, u64),
        (y, dst): (u32, u64),
        len: u64,
        remote: &mut dyn Remote<S>,
    ) -> Result<(), u32> {
        let ask = |op, addr, len| MemRequest {
            op,
            pid,
            addr,
            len,
            flags: FLAG_FROM_HOME,
            ..Default::default()
        };
        let out = self.ask_owner(
            x,
            zerocopy::IntoBytes::as_bytes(&ask(OP_PRESENT, src, len)),
            remote,
        )?;
        let bits = match status_of(&out) {
            Some((OK, _)) => out[REPLY_LEN..].to_vec(),
            _ => return Err(x),
        };
        for i in 0..len / crate::PAGE {
            if bits
                .get((i / 8) as usize)
                .is_none_or(|b| b & (1 << (i % 8)) == 0)
            {
                continue;
            }
            let off = i * crate::PAGE;
            let read = ask(OP_READ, src + off, 0);
            let page = self.ask_owner(x, zerocopy::IntoBytes::as_bytes(&read), remote)?;
            if status_of(&page).map(|s| s.0) != Some(OK) || page.len() < REPLY_LEN + PAGE {
                return Err(x);
            }
            let mut write = zerocopy::IntoBytes::as_bytes(&ask(OP_WRITE, dst + off, 0)).to_vec();
            write.extend_from_slice(&page[REPLY_LEN..REPLY_LEN + PAGE]);
            let out = self.ask_owner(y, &write, remote)?;
            if status_of(&out).map(|s| s.0) != Some(OK) {
                return Err(y);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{PROT_READ, PROT_WRITE};
    use zerocopy::IntoBytes;

    use crate::frames::VecFrames as Mem;

    fn req(op: u32, pid: u32, addr: u64, len: u64, prot: u32, flags: u32) -> Vec<u8> {
        MemRequest {
            op,
            pid,
            addr,
            len,
            arg: 0,
            prot,
            flags,
            ..Default::default()
        }
        .as_bytes()
        .to_vec()
    }

    /// A processor, as the fabric vouches for it.
    const CLIENT: Source = Source {
        id: 100,
        memory: false,
    };
    /// Memory component 1, the home in the tests with a rack.
    const HOME: Source = Source {
        id: 1,
        memory: true,
    };

    fn solo(m: &mut Monitor<Mem>, bytes: &[u8]) -> Vec<u8> {
        m.handle(CLIENT, bytes, &mut NoPeers)
    }

    fn status_value(out: &[u8]) -> (u32, u64) {
        let (r, _) = MemReply::read_from_prefix(out).unwrap();
        (r.status, r.value)
    }

    #[test]
    fn a_process_gets_the_address_space_its_processor_can_map() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0; PAGE]; 8]), 8);
        let top = 2u64 << 40;
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_NEW, 7, 0x40_0000, top, 0, 0))).0,
            OK
        );
        // Top-down mmap starts under the process's own top, not the rack's.
        let (s, a) = status_value(&solo(
            &mut m,
            &req(OP_MMAP, 7, 0, 8192, PROT_READ | PROT_WRITE, 0),
        ));
        assert_eq!((s, a), (OK, top - 8192));
        let fixed_above = req(OP_MMAP, 7, top, 4096, PROT_READ, FLAG_FIXED);
        assert_eq!(status_value(&solo(&mut m, &fixed_above)).0, ENOMEM);
        // A top that is not a page boundary, or beyond the rack's, is refused.
        for bad in [top + 1, USER_HIGH + 4096] {
            let out = solo(&mut m, &req(OP_NEW, 8, 0x40_0000, bad, 0, 0));
            assert_eq!(status_value(&out).0, EINVAL);
        }
    }

    #[test]
    fn the_maps_are_listed_in_order_and_in_chunks() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0; PAGE]; 4]), 4);
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_MAPS, 7, 0, 0, 0, 0))).0,
            ESRCH
        );
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0))).0,
            OK
        );
        // 300 mappings that cannot merge: every other page, alternating
        // protections.
        let base = 0x1000_0000u64;
        let count = 300u64;
        for i in 0..count {
            let prot = if i % 2 == 0 {
                PROT_READ
            } else {
                PROT_READ | PROT_WRITE
            };
            let at = base + i * 2 * 4096;
            let out = solo(&mut m, &req(OP_MMAP, 7, at, 4096, prot, FLAG_FIXED));
            assert_eq!(status_value(&out), (OK, at));
        }
        let mut seen: Vec<VmaEntry> = Vec::new();
        let mut from = 0;
        loop {
            let out = solo(&mut m, &req(OP_MAPS, 7, from, 0, 0, 0));
            let (status, n) = status_value(&out);
            assert_eq!(status, OK);
            assert!(n as usize <= MAX_SYNC_ENTRIES);
            let body = &out[REPLY_LEN..];
            assert_eq!(body.len(), n as usize * VMA_ENTRY_LEN);
            for chunk in body.chunks(VMA_ENTRY_LEN) {
                seen.push(VmaEntry::read_from_bytes(chunk).unwrap());
            }
            if (n as usize) < MAX_SYNC_ENTRIES {
                break;
            }
            from = seen.last().unwrap().end;
        }
        assert_eq!(seen.len() as u64, count);
        for (i, v) in seen.iter().enumerate() {
            let at = base + i as u64 * 2 * 4096;
            assert_eq!((v.start, v.end), (at, at + 4096));
            assert_eq!(v.prot & PROT_WRITE != 0, i % 2 == 1);
        }
    }

    #[test]
    fn fork_copies_every_page_and_discard_zeroes() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0; PAGE]; 16]), 16);
        let rw = PROT_READ | PROT_WRITE;
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0))).0,
            OK
        );
        let (s, a) = status_value(&solo(&mut m, &req(OP_MMAP, 7, 0, 3 * 4096, rw, 0)));
        assert_eq!(s, OK);
        for i in 0..2u8 {
            let mut w = req(OP_WRITE, 7, a + i as u64 * 4096, 0, 0, 0);
            w.extend_from_slice(&[i + 1; PAGE]);
            assert_eq!(status_value(&solo(&mut m, &w)).0, OK);
        }
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_NEW, 8, 0x40_0000, 0, 0, 0))).0,
            OK
        );
        let mut fork = req(OP_FORK, 7, 0, 0, 0, 0);
        fork[24..32].copy_from_slice(&8u64.to_le_bytes());
        assert_eq!(
            status_value(&solo(&mut m, &fork)),
            (OK, 2),
            "two pages were touched"
        );
        // The child reads the parent's bytes; its writes stay its own.
        let out = solo(&mut m, &req(OP_READ, 8, a + 4096, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 2));
        let mut w = req(OP_WRITE, 8, a, 0, 0, 0);
        w.extend_from_slice(&[9; PAGE]);
        assert_eq!(status_value(&solo(&mut m, &w)).0, OK);
        let out = solo(&mut m, &req(OP_READ, 7, a, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 1));
        // A fork into a process that has mappings is refused.
        assert_eq!(status_value(&solo(&mut m, &fork)).0, EEXIST);
        // MADV_DONTNEED: zeros again, the frame freed.
        let free = m.frames().free_frames();
        let d = req(OP_DISCARD, 7, a, 4096, 0, 0);
        assert_eq!(status_value(&solo(&mut m, &d)), (OK, 1));
        assert_eq!(m.frames().free_frames(), free + 1);
        let out = solo(&mut m, &req(OP_READ, 7, a, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 0));
    }

    #[test]
    fn ranges_without_end_are_answered_at_once() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0x55; PAGE]; 8]), 8);
        solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0));
        let a = 0x4000_0000;
        solo(
            &mut m,
            &req(OP_MMAP, 7, a, 4096, PROT_READ | PROT_WRITE, FLAG_FIXED),
        );
        for len in [u64::MAX, u64::MAX - 4095, 1 << 62] {
            for op in [
                OP_DISCARD,
                OP_MUNMAP,
                OP_MPROTECT,
                OP_MMAP,
                OP_MREMAP,
                OP_BRK,
                OP_PRESENT,
                OP_MAPS,
                OP_READ,
            ] {
                let started = std::time::Instant::now();
                let mut r = req(op, 7, a, len, PROT_READ, 0);
                // (MREMAP's new length, BRK's old break.)
                r[24..32].copy_from_slice(&len.to_le_bytes());
                let (s, v) = status_value(&solo(&mut m, &r));
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(1),
                    "op {op} of {len:#x} bytes took {:?}",
                    started.elapsed()
                );
                if op == OP_DISCARD {
                    assert_eq!((s, v & DISCARD_PART_UNMAPPED), (OK, DISCARD_PART_UNMAPPED));
                }
            }
        }
    }

    #[test]
    fn a_discard_over_a_hole_says_so_and_frees_the_rest() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0x55; PAGE]; 8]), 8);
        solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0));
        let rw = PROT_READ | PROT_WRITE;
        let a = 0x4000_0000;
        solo(&mut m, &req(OP_MMAP, 7, a, 3 * 4096, rw, FLAG_FIXED));
        for page in [a, a + 2 * 4096] {
            let mut w = req(OP_WRITE, 7, page, 0, 0, 0);
            w.extend_from_slice(&[9u8; PAGE]);
            assert_eq!(status_value(&solo(&mut m, &w)).0, OK);
        }
        // Whole: two pages freed, no flag.
        let (s, v) = status_value(&solo(&mut m, &req(OP_DISCARD, 7, a, 3 * 4096, 0, 0)));
        assert_eq!((s, v & DISCARD_PART_UNMAPPED), (OK, 0));
        let mut w = req(OP_WRITE, 7, a + 2 * 4096, 0, 0, 0);
        w.extend_from_slice(&[9u8; PAGE]);
        assert_eq!(status_value(&solo(&mut m, &w)).0, OK);
        solo(&mut m, &req(OP_MUNMAP, 7, a + 4096, 4096, 0, 0));
        // With a hole: flagged, and the page after it is freed all the same.
        let (s, v) = status_value(&solo(&mut m, &req(OP_DISCARD, 7, a, 3 * 4096, 0, 0)));
        assert_eq!((s, v & DISCARD_PART_UNMAPPED), (OK, DISCARD_PART_UNMAPPED));
        let out = solo(&mut m, &req(OP_READ, 7, a + 2 * 4096, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 0));
        // Past the last VMA: flagged too.
        let (_, v) = status_value(&solo(
            &mut m,
            &req(OP_DISCARD, 7, a + 2 * 4096, 2 * 4096, 0, 0),
        ));
        assert_eq!(v & DISCARD_PART_UNMAPPED, DISCARD_PART_UNMAPPED);
    }

    #[test]
    fn a_process_lives_and_dies() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0x55; PAGE]; 8]), 8);
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0))),
            (OK, 0x40_0000)
        );
        let (s, a) = status_value(&solo(
            &mut m,
            &req(
                OP_MMAP,
                7,
                0x4000_0000,
                3 * 4096,
                PROT_READ | PROT_WRITE,
                FLAG_FIXED,
            ),
        ));
        assert_eq!((s, a), (OK, 0x4000_0000));
        // First touch reads zeros.
        let out = solo(&mut m, &req(OP_READ, 7, a + 4096, 0, 0, 0));
        assert_eq!(status_value(&out).0, OK);
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 0));
        // Write, read back.
        let mut w = req(OP_WRITE, 7, a, 0, 0, 0);
        w.extend_from_slice(&[9u8; PAGE]);
        assert_eq!(status_value(&solo(&mut m, &w)).0, OK);
        let out = solo(&mut m, &req(OP_READ, 7, a, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 9));
        // Precise errors.
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_READ, 7, 0x9000_0000, 0, 0, 0))).0,
            EFAULT
        );
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_MPROTECT, 7, a, 4096, PROT_READ, 0))).0,
            OK
        );
        assert_eq!(status_value(&solo(&mut m, &w)).0, EACCES);
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_READ, 8, a, 0, 0, 0))).0,
            ESRCH
        );
        assert_eq!(status_value(&solo(&mut m, &[1, 2, 3])).0, BAD_REQUEST);
        assert_eq!(
            status_value(&solo(&mut m, &req(77, 7, 0, 0, 0, 0))).0,
            BAD_REQUEST
        );
        assert_eq!(m.frames().used_by(7), 2);
        // Exit frees every frame.
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_EXIT, 7, 0, 0, 0, 0))),
            (OK, 2)
        );
        assert_eq!(m.stats().frames_free, 8);
    }

    #[test]
    fn running_out_of_frames_is_an_error_not_a_crash() {
        let mut m = Monitor::new(1, &[], Mem(vec![[0; PAGE]; 2]), 2);
        solo(&mut m, &req(OP_NEW, 1, 0x40_0000, 0, 0, 0));
        solo(
            &mut m,
            &req(OP_MMAP, 1, 0x1000_0000, 8 * 4096, PROT_READ, FLAG_FIXED),
        );
        for i in 0..2 {
            assert_eq!(
                status_value(&solo(
                    &mut m,
                    &req(OP_READ, 1, 0x1000_0000 + i * 4096, 0, 0, 0)
                ))
                .0,
                OK
            );
        }
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_READ, 1, 0x1000_2000, 0, 0, 0))).0,
            OUT_OF_FRAMES
        );
        // Still serving: pages it has are readable.
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_READ, 1, 0x1000_0000, 0, 0, 0))).0,
            OK
        );
        // munmap gives frames back.
        assert_eq!(
            status_value(&solo(&mut m, &req(OP_MUNMAP, 1, 0x1000_0000, 4096, 0, 0))).0,
            OK
        );
        assert_eq!(m.stats().frames_free, 1);
    }

    /// What a processor uses to bring a new copy of a process up to date:
    /// which pages hold frames at its home, reads past the protection, and
    /// writes that leave pages already there alone.
    #[test]
    fn a_new_copy_is_filled_without_overwriting_newer_pages() {
        let mut m = Monitor::new(1, &[], frames(8), 8);
        solo(&mut m, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0));
        let rw = PROT_READ | PROT_WRITE;
        let at = 0x1000_0000;
        let map = req(OP_MMAP, 7, at, 4 * 4096, rw, FLAG_FIXED);
        assert_eq!(status_value(&solo(&mut m, &map)).0, OK);
        for (i, byte) in [(0u64, 1u8), (2, 3)] {
            let w = solo(&mut m, &write_req(7, at + i * 4096, byte));
            assert_eq!(status_value(&w).0, OK);
        }
        let present = solo(&mut m, &req(OP_PRESENT, 7, at, 4 * 4096, 0, 0));
        assert_eq!(status_value(&present).0, OK);
        assert_eq!(present[REPLY_LEN], 0b0101, "pages 0 and 2 hold frames");
        // Unknown process, bad length: refused.
        let unknown = solo(&mut m, &req(OP_PRESENT, 8, at, 4096, 0, 0));
        assert_eq!(status_value(&unknown).0, ESRCH);
        let huge = solo(
            &mut m,
            &req(OP_PRESENT, 7, at, MAX_PRESENT_LEN + 4096, 0, 0),
        );
        assert_eq!(status_value(&huge).0, BAD_REQUEST);
        // PROT_NONE: a plain read is refused, a copy's read is not.
        let none = req(OP_MPROTECT, 7, at, 4096, 0, 0);
        assert_eq!(status_value(&solo(&mut m, &none)).0, OK);
        let plain = solo(&mut m, &req(OP_READ, 7, at, 0, 0, 0));
        assert_eq!(status_value(&plain).0, EACCES);
        let copy = solo(&mut m, &req(OP_READ, 7, at, 0, 0, FLAG_WRITEBACK));
        assert_eq!(status_value(&copy).0, OK);
        assert_eq!(copy[REPLY_LEN], 1);
        // Pages 0 (has a frame) and 1 (has none), old bytes 9: only page 1
        // takes them.
        let mut many = req(OP_WRITE_MANY, 7, 0, 2, 0, FLAG_WRITEBACK | FLAG_IF_ABSENT);
        many.extend_from_slice(&at.to_le_bytes());
        many.extend_from_slice(&(at + 4096).to_le_bytes());
        many.extend_from_slice(&[9u8; 2 * PAGE]);
        let out = solo(&mut m, &many);
        assert_eq!(status_value(&out), (OK, 1));
        let read = |m: &mut Monitor<Mem>, a: u64| {
            solo(m, &req(OP_READ, 7, a, 0, 0, FLAG_WRITEBACK))[REPLY_LEN]
        };
        assert_eq!(read(&mut m, at), 1, "kept");
        assert_eq!(read(&mut m, at + 4096), 9, "filled");
    }

    /// Other memory components, reached directly; a missing one is down.    /// Other memory components, reached directly; a missing one is down.
    struct Rack(BTreeMap<u32, Monitor<Mem>>);

    impl Remote<Mem> for Rack {
        fn call(&mut self, dst: u32, request: &[u8], _: &mut Owner<Mem>) -> Option<Vec<u8>> {
            Some(self.0.get_mut(&dst)?.handle(HOME, request, &mut NoPeers))
        }
    }

    fn frames(n: usize) -> Mem {
        Mem(vec![[0x55; PAGE]; n])
    }

    fn write_req(pid: u32, addr: u64, byte: u8) -> Vec<u8> {
        let mut w = req(OP_WRITE, pid, addr, 0, 0, 0);
        w.extend_from_slice(&[byte; PAGE]);
        w
    }

    /// In a rack the managers' list decides: vRegions after the first go
    /// to the component with the most free memory, this one included, each
    /// counting as a whole vRegion until the next list; a component the
    /// list gives no memory gets none; a component with a backup keeps all.
    #[test]
    fn rack_owners_go_by_free_memory() {
        const G: u64 = VREGION_SIZE;
        let rw = PROT_READ | PROT_WRITE;
        // This one has 256 KiB and holds nothing; 2 has 2.5 GiB free, 3
        // none.
        let mut home = Monitor::new(1, &[], frames(64), 64);
        home.set_rack_owners(&[(2, 5 * G / 2), (3, 0), (1, 100 * G)], 64 * 4096);
        let mut rack = Rack(BTreeMap::from([
            (2, Monitor::new(2, &[], frames(64), 64)),
            (3, Monitor::new(3, &[], frames(64), 64)),
        ]));
        let new = home.handle(CLIENT, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0), &mut rack);
        assert_eq!(status_value(&new).0, OK);
        for i in 1..=5 {
            let r = home.handle(
                CLIENT,
                &req(OP_MMAP, 7, i * G, 4096, rw, FLAG_FIXED),
                &mut rack,
            );
            assert_eq!(status_value(&r), (OK, i * G));
        }
        let owner_of = |home: &mut Monitor<Mem>, rack: &mut Rack, i: u64| match status_value(
            &home.handle(CLIENT, &req(OP_READ, 7, i * G, 0, 0, 0), rack),
        ) {
            (NOT_OWNER, o) => o as u32,
            (OK, _) => 1,
            other => panic!("{other:?}"),
        };
        // 1: the home's first. 2, 3 and 4: component 2 (2.5, 1.5 and then
        // 0.5 GiB free, against this one's 256 KiB). 5: 2 has none left
        // by the count, so the home keeps it.
        let owners: Vec<u32> = (1..=5).map(|i| owner_of(&mut home, &mut rack, i)).collect();
        assert_eq!(owners, [1, 2, 2, 2, 1]);
        // A new list resets what was counted.
        home.set_rack_owners(&[(3, 4 * G), (2, 0)], 64 * 4096);
        let r = home.handle(
            CLIENT,
            &req(OP_MMAP, 7, 6 * G, 4096, rw, FLAG_FIXED),
            &mut rack,
        );
        assert_eq!(status_value(&r), (OK, 6 * G));
        assert_eq!(owner_of(&mut home, &mut rack, 6), 3);
        assert_eq!(home.process_counts(), (1, 0));
        assert_eq!(rack.0.get(&3).map(|m| m.process_counts()), Some((0, 1)));
        // Equal free memory: the next vRegion goes to the other, the one
        // after (the other debited) stays.
        let mut even = Monitor::new(1, &[], frames(64), 64);
        even.set_rack_owners(&[(2, 64 * 4096)], 64 * 4096);
        let mut two = Rack(BTreeMap::from([(2, Monitor::new(2, &[], frames(64), 64))]));
        even.handle(CLIENT, &req(OP_NEW, 9, 0x40_0000, 0, 0, 0), &mut two);
        for i in 1..=3 {
            let r = even.handle(
                CLIENT,
                &req(OP_MMAP, 9, i * G, 4096, rw, FLAG_FIXED),
                &mut two,
            );
            assert_eq!(status_value(&r), (OK, i * G));
        }
        assert_eq!(even.stats().vregions_handed_out, 1);
        // With a backup, every vRegion stays at the home.
        let mut kept = Monitor::new(1, &[], frames(64), 64);
        kept.set_backup(9);
        kept.set_rack_owners(&[(2, 100 * G)], 64 * 4096);
        let mut none = Rack(BTreeMap::new());
        kept.handle(CLIENT, &req(OP_NEW, 8, 0x40_0000, 0, 0, 0), &mut none);
        for i in 1..=3 {
            let r = kept.handle(
                CLIENT,
                &req(OP_MMAP, 8, i * G, 4096, rw, FLAG_FIXED),
                &mut none,
            );
            assert_eq!(status_value(&r), (OK, i * G));
        }
        assert_eq!(kept.stats().vregions_handed_out, 0);
    }

    /// A home (1) handing vRegions to a peer (2): the peer holds their
    /// pages and checks their VMAs; the home redirects page requests; moves
    /// copy pages across; exit frees every frame on both.
    #[test]
    fn vregions_across_two_components() {
        const G: u64 = VREGION_SIZE;
        let mut home = Monitor::new(1, &[2], frames(64), 64);
        let mut rack = Rack(BTreeMap::from([(2, Monitor::new(2, &[], frames(64), 64))]));
        let rw = PROT_READ | PROT_WRITE;
        let at_home = |m: &mut Monitor<Mem>, rack: &mut Rack, b: &[u8]| m.handle(CLIENT, b, rack);
        assert_eq!(
            status_value(&at_home(
                &mut home,
                &mut rack,
                &req(OP_NEW, 7, 0x40_0000, 0, 0, 0)
            ))
            .0,
            OK
        );
        // Regions 1, 2, 3, 4 in turn: home, peer, home, peer.
        for i in 1..=4 {
            let r = at_home(
                &mut home,
                &mut rack,
                &req(OP_MMAP, 7, i * G, 4 * 4096, rw, FLAG_FIXED),
            );
            assert_eq!(status_value(&r), (OK, i * G));
        }
        assert_eq!(home.stats().vregions_handed_out, 2);
        // The home redirects a page of region 2 to its owner.
        assert_eq!(
            status_value(&at_home(
                &mut home,
                &mut rack,
                &req(OP_READ, 7, 2 * G, 0, 0, 0)
            )),
            (NOT_OWNER, 2)
        );
        let peer =
            |rack: &mut Rack, b: &[u8]| rack.0.get_mut(&2).unwrap().handle(CLIENT, b, &mut NoPeers);
        assert_eq!(
            status_value(&peer(&mut rack, &write_req(7, 2 * G + 4096, 0xab))).0,
            OK
        );
        let out = peer(&mut rack, &req(OP_READ, 7, 2 * G + 4096, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 0xab));
        assert_eq!(
            status_value(&at_home(&mut home, &mut rack, &write_req(7, G, 0x11))).0,
            OK
        );
        // The owner knows the VMAs: outside them, against their protection.
        assert_eq!(
            status_value(&peer(
                &mut rack,
                &req(OP_READ, 7, 2 * G + 8 * 4096, 0, 0, 0)
            ))
            .0,
            EFAULT
        );
        let r = at_home(
            &mut home,
            &mut rack,
            &req(OP_MPROTECT, 7, 2 * G, 4 * 4096, PROT_READ, 0),
        );
        assert_eq!(status_value(&r).0, OK);
        assert_eq!(
            status_value(&peer(&mut rack, &write_req(7, 2 * G, 1))).0,
            EACCES
        );
        assert_eq!(rack.0[&2].stats().guests, 1);
        // munmap at the home frees the owner's frames.
        let r = at_home(
            &mut home,
            &mut rack,
            &req(OP_MUNMAP, 7, 2 * G, 4 * 4096, 0, 0),
        );
        assert_eq!(status_value(&r).0, OK);
        assert_eq!(rack.0[&2].frames().used_by(7), 0);
        assert_eq!(
            status_value(&peer(&mut rack, &req(OP_READ, 7, 2 * G + 4096, 0, 0, 0))).0,
            EFAULT
        );
        // mremap moves region 1's mapping to the top of the address space:
        // a region handed out next, so its pages are copied to that owner.
        let mut grow = req(OP_MREMAP, 7, G, 4 * 4096, 0, 0);
        grow[24..32].copy_from_slice(&(G + 64).to_le_bytes());
        grow[36..40].copy_from_slice(&FLAG_MAYMOVE.to_le_bytes());
        // Region 5 is the home's turn, so the moved mapping's is the peer's.
        at_home(
            &mut home,
            &mut rack,
            &req(OP_MMAP, 7, 5 * G, 4096, rw, FLAG_FIXED),
        );
        // Something right after it, so it cannot grow in place.
        at_home(
            &mut home,
            &mut rack,
            &req(OP_MMAP, 7, G + 4 * 4096, 4096, rw, FLAG_FIXED),
        );
        let (s, new) = status_value(&at_home(&mut home, &mut rack, &grow));
        assert_eq!(s, OK);
        assert_ne!(new, G);
        let owner = match status_value(&at_home(
            &mut home,
            &mut rack,
            &req(OP_READ, 7, new, 0, 0, 0),
        )) {
            (NOT_OWNER, o) => o as u32,
            (OK, _) => 1,
            other => panic!("{other:?}"),
        };
        assert_eq!(owner, 2, "copied across components");
        let out = if owner == 1 {
            at_home(&mut home, &mut rack, &req(OP_READ, 7, new, 0, 0, 0))
        } else {
            peer(&mut rack, &req(OP_READ, 7, new, 0, 0, 0))
        };
        assert_eq!(status_value(&out).0, OK);
        assert!(
            out[REPLY_LEN..].iter().all(|&b| b == 0x11),
            "the page moved with its mapping"
        );
        assert_eq!(home.frames().used_by(7) + rack.0[&2].frames().used_by(7), 1);
        // Exit frees everything, on both.
        let r = at_home(&mut home, &mut rack, &req(OP_EXIT, 7, 0, 0, 0, 0));
        assert_eq!(status_value(&r).0, OK);
        assert_eq!(home.stats().frames_free, 64);
        assert_eq!(rack.0[&2].stats().frames_free, 64);
        assert_eq!(rack.0[&2].stats().guests, 0);
    }

    /// A peer that is down: the call takes effect at the home and says
    /// which component did not answer.
    #[test]
    fn a_peer_that_does_not_answer_is_named() {
        let mut home = Monitor::new(1, &[2], frames(8), 8);
        let mut rack = Rack(BTreeMap::new());
        home.handle(CLIENT, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0), &mut rack);
        let rw = PROT_READ | PROT_WRITE;
        let first = home.handle(
            CLIENT,
            &req(OP_MMAP, 7, VREGION_SIZE, 4096, rw, FLAG_FIXED),
            &mut rack,
        );
        assert_eq!(status_value(&first).0, OK);
        let second = home.handle(
            CLIENT,
            &req(OP_MMAP, 7, 2 * VREGION_SIZE, 4096, rw, FLAG_FIXED),
            &mut rack,
        );
        assert_eq!(status_value(&second), (PEER_FAILED, 2));
        assert_eq!(home.stats().peer_failures, 1);
        // Garbage claiming to come from a home gets an error, not a crash.
        let mut sync = req(OP_SYNC, 7, 0x1000, 4096, 0, FLAG_FROM_HOME);
        sync[24..32].copy_from_slice(&5u64.to_le_bytes());
        let other = Source {
            id: 3,
            memory: true,
        };
        assert_eq!(
            status_value(&home.handle(other, &sync, &mut NoPeers)).0,
            NOT_HOME
        );
    }

    /// A process made as a copy for another component (FLAG_COPY) keeps
    /// every vRegion at this one, peers or not: its pages all land here.
    #[test]
    fn a_copy_keeps_every_vregion() {
        let mut home = Monitor::new(1, &[2], frames(8), 8);
        let mut rack = Rack(BTreeMap::new());
        let new = req(OP_NEW, 7, 0x40_0000, 0, 0, FLAG_COPY);
        assert_eq!(status_value(&home.handle(CLIENT, &new, &mut rack)).0, OK);
        let rw = PROT_READ | PROT_WRITE;
        for i in 1..4 {
            let out = home.handle(
                CLIENT,
                &req(OP_MMAP, 7, i * VREGION_SIZE, 4096, rw, FLAG_FIXED),
                &mut rack,
            );
            assert_eq!(status_value(&out), (OK, i * VREGION_SIZE));
        }
        assert_eq!(home.stats().vregions_handed_out, 0);
        assert_eq!(home.stats().peer_failures, 0);
        let w = home.handle(CLIENT, &write_req(7, 3 * VREGION_SIZE, 9), &mut rack);
        assert_eq!(status_value(&w).0, OK);
    }

    /// FLAG_FROM_HOME is a claim: honoured only from the memory component
    /// that is the process's home, refused and counted from anyone else,
    /// and nothing changes.
    #[test]
    fn home_claims_are_checked_against_the_sender() {
        const G: u64 = VREGION_SIZE;
        let mut home = Monitor::new(1, &[2], frames(16), 16);
        let mut rack = Rack(BTreeMap::from([(2, Monitor::new(2, &[], frames(16), 16))]));
        let rw = PROT_READ | PROT_WRITE;
        home.handle(CLIENT, &req(OP_NEW, 7, 0x40_0000, 0, 0, 0), &mut rack);
        // Region 1 stays home; region 2 goes to component 2, read-only.
        for (i, prot) in [(1, rw), (2, PROT_READ)] {
            let r = home.handle(
                CLIENT,
                &req(OP_MMAP, 7, i * G, 4096, prot, FLAG_FIXED),
                &mut rack,
            );
            assert_eq!(status_value(&r), (OK, i * G));
        }
        let peer = rack.0.get_mut(&2).unwrap();
        let read = peer.handle(CLIENT, &req(OP_READ, 7, 2 * G, 0, 0, 0), &mut NoPeers);
        assert_eq!(status_value(&read).0, OK);
        let mut forged_write = write_req(7, 2 * G, 9);
        forged_write[36..40].copy_from_slice(&FLAG_FROM_HOME.to_le_bytes());
        let stranger = Source {
            id: 3,
            memory: true,
        };
        // A processor claiming to be the home, to write a read-only page.
        let r = peer.handle(CLIENT, &forged_write, &mut NoPeers);
        assert_eq!(status_value(&r).0, NOT_HOME);
        // Another memory component claiming it, to wipe the VMAs.
        let wipe = encode_sync(7, 0, 2 * G, 3 * G, &[]);
        let r = peer.handle(stranger, &wipe, &mut NoPeers);
        assert_eq!(status_value(&r).0, NOT_HOME);
        // A processor claiming it at the home itself.
        let mut at_home = write_req(7, G, 9);
        at_home[36..40].copy_from_slice(&FLAG_FROM_HOME.to_le_bytes());
        assert_eq!(status_value(&solo(&mut home, &at_home)).0, NOT_HOME);
        // Nothing changed: the page reads as before, the VMA is there.
        let peer = rack.0.get_mut(&2).unwrap();
        let again = peer.handle(CLIENT, &req(OP_READ, 7, 2 * G, 0, 0, 0), &mut NoPeers);
        assert_eq!(again, read);
        assert_eq!(peer.stats().refused_claims, 2);
        assert_eq!(home.stats().refused_claims, 1);
        // The real home is honoured.
        let present = req(OP_PRESENT, 7, 2 * G, 4096, 0, FLAG_FROM_HOME);
        let r = peer.handle(HOME, &present, &mut NoPeers);
        assert_eq!(status_value(&r).0, OK);
        // A process this owner never heard of: only a memory component's
        // OP_SYNC brings it here, and that component is its home from then on.
        let fresh = encode_sync(9, 0, G, 2 * G, &[]);
        let r = peer.handle(CLIENT, &fresh, &mut NoPeers);
        assert_eq!(status_value(&r).0, NOT_HOME);
        let r = peer.handle(stranger, &fresh, &mut NoPeers);
        assert_eq!(status_value(&r).0, OK);
        let r = peer.handle(HOME, &fresh, &mut NoPeers);
        assert_eq!(status_value(&r).0, NOT_HOME);
    }

    /// What an ExCache relies on: reads say the protection, peeks take no
    /// frame, write-backs survive an mprotect.
    #[test]
    fn peeks_protections_and_write_backs() {
        let mut m = Monitor::new(1, &[], frames(8), 8);
        solo(&mut m, &req(OP_NEW, 3, 0x40_0000, 0, 0, 0));
        let rw = PROT_READ | PROT_WRITE;
        solo(&mut m, &req(OP_MMAP, 3, 1 << 30, 4 * 4096, rw, FLAG_FIXED));
        let peek = solo(&mut m, &req(OP_READ, 3, 1 << 30, 0, 0, FLAG_PEEK));
        assert_eq!(status_value(&peek), (OK, rw as u64));
        assert!(peek[REPLY_LEN..].iter().all(|&b| b == 0));
        assert_eq!(m.frames().used_by(3), 0, "a peek takes no frame");
        assert_eq!(status_value(&solo(&mut m, &write_req(3, 1 << 30, 5))).0, OK);
        solo(
            &mut m,
            &req(OP_MPROTECT, 3, 1 << 30, 4 * 4096, PROT_READ, 0),
        );
        assert_eq!(
            status_value(&solo(&mut m, &write_req(3, 1 << 30, 6))).0,
            EACCES
        );
        let mut wb = write_req(3, 1 << 30, 7);
        wb[36..40].copy_from_slice(&FLAG_WRITEBACK.to_le_bytes());
        assert_eq!(
            status_value(&solo(&mut m, &wb)).0,
            OK,
            "dirty data survives mprotect"
        );
        let read = solo(&mut m, &req(OP_READ, 3, 1 << 30, 0, 0, 0));
        assert_eq!(status_value(&read), (OK, PROT_READ as u64));
        assert!(read[REPLY_LEN..].iter().all(|&b| b == 7));
        let for_write = solo(&mut m, &req(OP_READ, 3, 1 << 30, 0, 0, FLAG_FOR_WRITE));
        assert_eq!(status_value(&for_write).0, EACCES);
        // Outside the mapping, even a write-back fails.
        let mut wb = write_req(3, 2 << 30, 7);
        wb[36..40].copy_from_slice(&FLAG_WRITEBACK.to_le_bytes());
        assert_eq!(status_value(&solo(&mut m, &wb)).0, EFAULT);
    }

    /// Runs: one read brings the pages of a run (stopping at the VMA's
    /// end, peeking: no frame for untouched pages); one OP_WRITE_MANY
    /// writes pages anywhere, with a status for each.
    #[test]
    fn run_reads_and_many_writes() {
        let mut m = Monitor::new(1, &[], frames(16), 16);
        solo(&mut m, &req(OP_NEW, 3, 0x40_0000, 0, 0, 0));
        let rw = PROT_READ | PROT_WRITE;
        let a = 1u64 << 30;
        solo(&mut m, &req(OP_MMAP, 3, a, 4 * 4096, rw, FLAG_FIXED));
        solo(
            &mut m,
            &req(OP_MMAP, 3, a + 4 * 4096, 4096, PROT_READ, FLAG_FIXED),
        );
        // Pages 1 and 3 written; 0 and 2 never touched; 5 unmapped.
        let addrs = [a + 4096, a + 3 * 4096, a + 5 * 4096];
        let mut many = req(OP_WRITE_MANY, 3, 0, addrs.len() as u64, 0, FLAG_WRITEBACK);
        for x in addrs {
            many.extend_from_slice(&x.to_le_bytes());
        }
        for i in 0..addrs.len() {
            many.extend_from_slice(&[i as u8 + 1; PAGE]);
        }
        let out = solo(&mut m, &many);
        assert_eq!(status_value(&out), (OK, 2));
        let statuses: Vec<u32> = out[REPLY_LEN..]
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(statuses, [OK, OK, EFAULT]);
        assert_eq!(m.frames().used_by(3), 2);
        // A run of 8 from page 0 stops at the end of the first VMA.
        let run = solo(&mut m, &req(OP_READ, 3, a, 8 * 4096, 0, FLAG_PEEK));
        assert_eq!(status_value(&run), (OK, rw as u64));
        let pages: Vec<&[u8]> = run[REPLY_LEN..].chunks(PAGE).collect();
        assert_eq!(pages.len(), 4);
        for (i, want) in [0u8, 1, 0, 2].into_iter().enumerate() {
            assert!(pages[i].iter().all(|&b| b == want), "page {i}");
        }
        assert_eq!(m.frames().used_by(3), 2, "peeks take no frame");
        // A short or oversized OP_WRITE_MANY is refused whole.
        let short = req(OP_WRITE_MANY, 3, 0, 2, 0, FLAG_WRITEBACK);
        assert_eq!(status_value(&solo(&mut m, &short)).0, BAD_REQUEST);
        let huge = req(
            OP_WRITE_MANY,
            3,
            0,
            MAX_WRITE_RUN as u64 + 1,
            0,
            FLAG_WRITEBACK,
        );
        assert_eq!(status_value(&solo(&mut m, &huge)).0, BAD_REQUEST);
    }

    /// The page index the VMM answers reads from: a page is published once
    /// written or read here, with its VMA's protection, and unpublished
    /// before its VMA changes or its frame goes.
    #[test]
    fn the_page_index_follows_vmas_and_frames() {
        let mut m = Monitor::new(1, &[], frames(8), 8);
        solo(&mut m, &req(OP_NEW, 3, 0x40_0000, 0, 0, 0));
        let rw = PROT_READ | PROT_WRITE;
        let a = 1u64 << 30;
        solo(&mut m, &req(OP_MMAP, 3, a, 4 * 4096, rw, FLAG_FIXED));
        let vpage = a / 4096;
        let index = |m: &Monitor<Mem>, p: u64| m.frames().index().lookup(3, p).map(|f| f.prot);
        assert_eq!(index(&m, vpage), None, "nothing published before a write");
        assert_eq!(status_value(&solo(&mut m, &write_req(3, a, 5))).0, OK);
        assert_eq!(index(&m, vpage), Some(rw));
        solo(&mut m, &req(OP_READ, 3, a + 4096, 0, 0, 0));
        assert_eq!(index(&m, vpage + 1), Some(rw), "a read publishes too");
        solo(&mut m, &req(OP_MPROTECT, 3, a, 4096, PROT_READ, 0));
        assert_eq!(index(&m, vpage), None, "mprotect unpublishes first");
        assert_eq!(index(&m, vpage + 1), Some(rw), "outside the range stays");
        solo(&mut m, &req(OP_READ, 3, a, 0, 0, 0));
        assert_eq!(index(&m, vpage), Some(PROT_READ));
        solo(&mut m, &req(OP_MUNMAP, 3, a, 2 * 4096, 0, 0));
        assert_eq!(index(&m, vpage), None);
        assert_eq!(index(&m, vpage + 1), None, "munmap unpublishes");
        // What stays is the process's epoch slot, which goes at its exit.
        assert_eq!(m.frames().index().live(), 1);
        solo(&mut m, &req(OP_EXIT, 3, 0, 0, 0, 0));
        assert_eq!(m.frames().index().live(), 0);
    }

    fn at_epoch(op: u32, pid: u32, addr: u64, flags: u32, epoch: u32) -> Vec<u8> {
        let mut r = MemRequest::read_from_bytes(&req(op, pid, addr, 0, 0, flags)[..REQUEST_LEN])
            .expect("a request");
        r.epoch = epoch;
        r.as_bytes().to_vec()
    }

    fn reply_epoch(out: &[u8]) -> (u32, u32, u64) {
        let (r, _) = MemReply::read_from_prefix(out).expect("a reply");
        (r.status, r.epoch, r.value)
    }

    /// A copy serves only requests of the epoch it holds the process at:
    /// an older one comes from a sender that missed a fail-over, a newer
    /// one without FLAG_TAKEOVER finds a copy that was replaced. The copy
    /// that takes over rises to the new epoch; a stale copy may still be
    /// dropped (OP_EXIT), and the VMM's epoch slot follows.
    #[test]
    fn epochs_keep_stale_copies_out() {
        let rw = PROT_READ | PROT_WRITE;
        let a = 1u64 << 30;
        let mut m = Monitor::new(2, &[], frames(8), 8);
        let mut new = MemRequest::read_from_bytes(&req(OP_NEW, 4, 0x40_0000, 0, 0, 0)[..])
            .expect("a request");
        new.epoch = 1;
        assert_eq!(reply_epoch(&solo(&mut m, new.as_bytes())).0, OK);
        let mut mmap = MemRequest::read_from_bytes(&req(OP_MMAP, 4, a, 4096, rw, FLAG_FIXED)[..])
            .expect("a request");
        mmap.epoch = 1;
        assert_eq!(reply_epoch(&solo(&mut m, mmap.as_bytes())), (OK, 1, a));
        let slot = |m: &Monitor<Mem>| {
            m.frames()
                .index()
                .lookup(4, lego_proto::index::EPOCH_VPAGE)
                .map(|f| f.frame)
        };
        assert_eq!(slot(&m), Some(1));
        // A newer epoch without the flag: this copy was left behind.
        assert_eq!(
            reply_epoch(&solo(&mut m, &at_epoch(OP_READ, 4, a, 0, 2))),
            (STALE_EPOCH, 1, 1)
        );
        // The copy that takes over rises to it, and serves.
        assert_eq!(
            reply_epoch(&solo(&mut m, &at_epoch(OP_READ, 4, a, FLAG_TAKEOVER, 2))).0,
            OK
        );
        assert_eq!(slot(&m), Some(2), "the VMM serves epoch 2 only");
        assert_eq!(
            reply_epoch(&solo(&mut m, &at_epoch(OP_READ, 4, a, 0, 2))),
            (OK, 2, rw as u64)
        );
        // The old epoch is refused now, even with the flag.
        for flags in [0, FLAG_TAKEOVER] {
            assert_eq!(
                reply_epoch(&solo(&mut m, &at_epoch(OP_WRITE, 4, a, flags, 1))).0,
                STALE_EPOCH
            );
        }
        let s = m.stats();
        assert_eq!((s.stale_refused, s.takeovers), (3, 1));
        // A stale copy can be dropped by a newer epoch, to be made anew.
        assert_eq!(
            reply_epoch(&solo(&mut m, &at_epoch(OP_EXIT, 4, 0, 0, 3))).0,
            OK
        );
        assert_eq!(slot(&m), None);
        // Processes homed elsewhere and requests with no process are not
        // checked here.
        assert_eq!(
            reply_epoch(&solo(&mut m, &at_epoch(OP_STATS, 0, 0, 0, 9))).0,
            OK
        );
    }
}
