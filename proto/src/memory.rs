//! The memory monitor's requests and replies, carried as the payload of
//! Data frames. A request is a [`MemRequest`] (and for writes, one page
//! after it); a reply is a [`MemReply`] (and for reads, one page after it).
//! Every request carries everything it needs (process, address, length).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const PAGE: usize = 4096;

/// Read the page at `addr` (zero-filled on first touch); `value` is the
/// protection of its VMA, so a cache knows whether it may be written.
/// With `len` more than a page (at most [`MAX_RUN`] pages): a run, the
/// pages from `addr` on that lie in the same VMA and vRegion, read like
/// [`FLAG_PEEK`] reads after the first (a page never touched is zeros and
/// takes no frame); the reply carries as many pages as the run holds.
pub const OP_READ: u32 = 1;
/// Write back the page at `addr`; the page follows the request.
pub const OP_WRITE: u32 = 2;
/// Write back the page at `arg` and read the page at `addr`, in one request
/// (an ExCache miss that evicts a dirty page); the page to write follows.
/// Still served; the ExCache sends the two apart (the read is then
/// answered by the memory component's VMM from its page index).
pub const OP_READ_WRITE: u32 = 3;
/// Start a process: its program break begins at `addr`; its address space
/// ends at `len` (what the processor's window holds; 0 means
/// [`USER_TOP_MAX`](crate::process::USER_TOP_MAX)); mmap without a fixed
/// address or a usable hint looks top-down from `arg` (Linux's mmap_base;
/// 0: from the end), leaving the room above to the main stack.
pub const OP_NEW: u32 = 4;
/// Anonymous mmap of `len` bytes at `addr` (a hint, or exact with
/// [`FLAG_FIXED`]) with protection `prot`; `value` is the address.
pub const OP_MMAP: u32 = 5;
pub const OP_MUNMAP: u32 = 6;
pub const OP_MPROTECT: u32 = 7;
/// Set the break to `addr`; `value` is the break in force. A processor
/// passes the break it knew in `arg` (its ExCache drops what a shrink gives
/// back); the memory component does not read it.
pub const OP_BRK: u32 = 8;
/// Remap `len` bytes at `addr` to `arg` bytes ([`FLAG_MAYMOVE`]); `value` is the address.
pub const OP_MREMAP: u32 = 9;
/// The process exited: free everything; `value` is the frames freed.
pub const OP_EXIT: u32 = 10;
/// Counters; the reply carries a [`MemStats`].
pub const OP_STATS: u32 = 11;
/// From a process's home to the owner of a vRegion: the VMAs in
/// [`addr`, `addr + len`) are now exactly the `arg` [`VmaEntry`]s that
/// follow (sorted, inside the range); frames of pages outside them are freed.
pub const OP_SYNC: u32 = 12;
/// From a home, or from a processor to the process's home: which pages of
/// [`addr`, `addr + len`) hold a frame here (`len` at most
/// [`MAX_PRESENT_LEN`]); the reply carries one bit per page.
pub const OP_PRESENT: u32 = 13;
/// fork: every mapping and page of process `pid` is copied to process
/// `arg` (made with OP_NEW at the same home, still empty), at every memory
/// component that owns a vRegion of it; `value` is the pages copied.
pub const OP_FORK: u32 = 14;
/// The pages of [`addr`, `addr + len`) are zero again, their frames freed
/// (MADV_DONTNEED); the mappings stay.
pub const OP_DISCARD: u32 = 15;
/// Set in the `value` of the home's answer to [`OP_DISCARD`] (beside the
/// pages freed) when part of the range is not mapped: the mapped parts are
/// discarded all the same, and Linux's madvise then says ENOMEM.
pub const DISCARD_PART_UNMAPPED: u64 = 1 << 63;
/// At a process's home: its VMAs that end above `addr`, in address order,
/// at most [`MAX_SYNC_ENTRIES`] of them; `value` is how many, and that
/// many [`VmaEntry`]s follow the reply (fewer than the most: the last).
/// For /proc/self/maps.
pub const OP_MAPS: u32 = 16;
/// Write back `len` pages (1 to [`MAX_WRITE_RUN`]), anywhere in the process: the
/// request is followed by their `len` addresses (u64 each), then the
/// pages. Each is written as an [`OP_WRITE`] with the request's flags
/// would be; the reply's `value` is how many were written, and `len`
/// statuses (u32 each, [`NOT_OWNER`] with no owner id) follow it.
pub const OP_WRITE_MANY: u32 = 17;
/// Which memory component keeps a copy of everything this one holds
/// (`--backup`): the reply's `value` is its id, 0 for none. Processors ask
/// before a process's first call (see the ExCache's client).
pub const OP_BACKUP: u32 = 18;
/// Most pages one run read carries.
pub const MAX_RUN: usize = 16;
/// Most pages one OP_WRITE_MANY carries. Larger than a read run: a
/// processor evicts in batches and each request costs its receiver a wake
/// of the memory guest whatever it carries, once at each copy when the
/// component has a backup (measured in the README's Copies section).
pub const MAX_WRITE_RUN: usize = 64;

pub const FLAG_FIXED: u32 = 1;
pub const FLAG_MAYMOVE: u32 = 2;
/// The request comes from the process's home component: on OP_READ and
/// OP_WRITE the protection is not checked (mremap moving pages between
/// owners), and OP_EXIT frees only this owner's part. A claim, checked by
/// the receiver against the frame's authenticated source: honoured only
/// from the memory component that is the process's home (the one whose
/// first OP_SYNC gave this owner the process), else [`NOT_HOME`].
pub const FLAG_FROM_HOME: u32 = 4;
/// On OP_READ and OP_READ_WRITE: the page is read for writing (an ExCache write miss), so
/// the mapping must allow writes (EACCES otherwise).
pub const FLAG_FOR_WRITE: u32 = 8;
/// On OP_READ: a page never touched reads as zeros without taking a frame
/// (prefetches, which may never be used).
pub const FLAG_PEEK: u32 = 16;
/// On OP_WRITE and OP_READ_WRITE: the page written back was written while
/// its mapping allowed it, so only the mapping is checked (an mprotect in
/// between must not lose the data, as on Linux).
pub const FLAG_WRITEBACK: u32 = 32;
/// On OP_NEW: this component keeps a copy of the process for another (its
/// processor sends it every change, see OP_BACKUP), so it keeps every
/// vRegion of the process itself: the copy must hold every page.
pub const FLAG_COPY: u32 = 64;
/// On OP_WRITE_MANY: pages that already hold a frame are left as they are
/// (status OK): bringing a new copy up to date must not overwrite what a
/// newer write put there meanwhile.
pub const FLAG_IF_ABSENT: u32 = 128;
/// The component takes over process `pid` from one that died (its copy
/// became the only one): its record's epoch rises to the request's. Only
/// processors set it, on requests to the copy they fail over to.
pub const FLAG_TAKEOVER: u32 = 256;

/// A process's address space is cut into vRegions of this size; each is
/// owned by exactly one memory component, which holds its pages.
pub const VREGION_SHIFT: u32 = 30;
pub const VREGION_SIZE: u64 = 1 << VREGION_SHIFT;
/// Most VMAs one OP_SYNC carries, so it fits a guest's fabric buffer
/// (8 KiB of payload); a home splits longer lists.
pub const MAX_SYNC_ENTRIES: usize = 256;
/// Most bytes of address space one OP_PRESENT asks about (a 4 KiB bitmap).
pub const MAX_PRESENT_LEN: u64 = 32768 * PAGE as u64;
/// Most memory components a home hands vRegions to (`--vregion-peers`).
pub const MAX_VREGION_PEERS: usize = 15;

/// [`MemReply::status`] values: 0, or the errno Linux would give, or ours.
pub const OK: u32 = 0;
pub const ESRCH: u32 = 3;
pub const ENOMEM: u32 = 12;
pub const EACCES: u32 = 13;
pub const EFAULT: u32 = 14;
pub const EEXIST: u32 = 17;
pub const EINVAL: u32 = 22;
/// This component has no free frame left.
pub const OUT_OF_FRAMES: u32 = 1000;
/// The request could not be parsed.
pub const BAD_REQUEST: u32 = 1001;
/// A page request sent to a process's home for a vRegion another memory
/// component owns; `value` is that component's id. Ask it instead.
pub const NOT_OWNER: u32 = 1002;
/// The home could not reach the owner of a vRegion the call touched;
/// `value` is that component's id. The call took effect at the home.
pub const PEER_FAILED: u32 = 1003;
/// The request claims [`FLAG_FROM_HOME`], but its sender is not the
/// process's home memory component. Refused and counted
/// ([`MemStats::refused_claims`]); nothing changed.
pub const NOT_HOME: u32 = 1004;
/// The request's epoch is not the one this component holds the process
/// at (`value`): an older one (the sender has not seen a fail-over this
/// component took part in), or a newer one without [`FLAG_TAKEOVER`]
/// (this copy was replaced while it was away, so what it holds may be
/// stale). Nothing changed; counted ([`MemStats::stale_refused`]).
pub const STALE_EPOCH: u32 = 1005;

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MemRequest {
    pub op: u32,
    pub pid: u32,
    pub addr: u64,
    pub len: u64,
    pub arg: u64,
    pub prot: u32,
    pub flags: u32,
    /// Which copy of the process's memory the sender takes as current:
    /// processors start at 1 and raise it at each fail-over, so a copy
    /// left behind by one refuses what comes after ([`STALE_EPOCH`]).
    pub epoch: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MemReply {
    pub status: u32,
    /// The epoch the component holds the process at (the request's, for a
    /// process it keeps no epoch for).
    pub epoch: u32,
    pub value: u64,
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MemStats {
    pub frames_total: u64,
    pub frames_free: u64,
    pub processes: u64,
    pub requests: u64,
    pub errors: u64,
    pub zero_fills: u64,
    /// Bytes of this component's heap still free (page table and VMAs
    /// grow into it), for measuring their overhead.
    pub heap_free: u64,
    /// vRegions of the processes homed here that other components own.
    pub vregions_handed_out: u64,
    /// Processes homed elsewhere that this component holds vRegions for.
    pub guests: u64,
    /// Calls to other memory components that got no answer.
    pub peer_failures: u64,
    /// Requests refused with [`NOT_HOME`].
    pub refused_claims: u64,
    /// Requests refused with [`STALE_EPOCH`].
    pub stale_refused: u64,
    /// Processes taken over from a dead component ([`FLAG_TAKEOVER`]).
    pub takeovers: u64,
}

/// One VMA in an [`OP_SYNC`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VmaEntry {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub _pad: u32,
}

/// The vRegion holding `addr`.
pub const fn vregion(addr: u64) -> u64 {
    addr >> VREGION_SHIFT
}

/// Whether requests of `op` are about the component itself (its counters,
/// its backup's name), not about the process they may name: no process's
/// owner or epoch is checked for them, and their answers carry none.
pub const fn about_the_component(op: u32) -> bool {
    matches!(op, OP_STATS | OP_BACKUP)
}

/// The request a backup gets for `request` once the component it copies
/// answered with `chosen` (the reply's `value` when its status was OK): an
/// mmap goes at the address the component chose (fixed), a new process as
/// a copy ([`FLAG_COPY`]: the backup hands none of its vRegions to other
/// components), the rest as they were. Both copies then decide alike, as
/// they hold the same state and apply the same requests in one order.
pub fn for_backup(request: &[u8], chosen: Option<u64>) -> alloc::vec::Vec<u8> {
    let Ok((mut req, rest)) = MemRequest::read_from_prefix(request) else {
        return request.to_vec();
    };
    match chosen {
        Some(addr) if req.op == OP_MMAP => {
            req.addr = addr;
            req.flags |= FLAG_FIXED;
        }
        _ if req.op == OP_NEW => req.flags |= FLAG_COPY,
        _ => return request.to_vec(),
    }
    let mut out = req.as_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

pub const REQUEST_LEN: usize = core::mem::size_of::<MemRequest>();
pub const REPLY_LEN: usize = core::mem::size_of::<MemReply>();
pub const VMA_ENTRY_LEN: usize = core::mem::size_of::<VmaEntry>();

// The largest page run fits a guest's fabric buffer, and the largest
// write-back a memory monitor's.
const _: () = assert!(
    crate::frame::HEADER_LEN + REQUEST_LEN + MAX_RUN * (8 + PAGE)
        <= crate::hypercall::FABRIC_BUFFER as usize
);
const _: () = assert!(
    crate::frame::HEADER_LEN + REQUEST_LEN + MAX_WRITE_RUN * (8 + PAGE)
        <= crate::hypercall::FABRIC_MEMORY_BUFFER as usize
);
