//! The memory monitor's requests and replies, carried as the payload of
//! Data frames. A request is a [`MemRequest`] (and for writes, one page
//! after it); a reply is a [`MemReply`] (and for reads, one page after it).
//! Every request carries everything it needs (process, address, length).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const PAGE: usize = 4096;

/// Read the page at `addr` (zero-filled on first touch).
pub const OP_READ: u32 = 1;
/// Write back the page at `addr`; the page follows the request.
pub const OP_WRITE: u32 = 2;
/// Write back the page at `arg` and read the page at `addr`, in one request
/// (an ExCache miss that evicts a dirty page); the page to write follows.
pub const OP_READ_WRITE: u32 = 3;
/// Start a process: its program break begins at `addr`.
pub const OP_NEW: u32 = 4;
/// Anonymous mmap of `len` bytes at `addr` (a hint, or exact with
/// [`FLAG_FIXED`]) with protection `prot`; `value` is the address.
pub const OP_MMAP: u32 = 5;
pub const OP_MUNMAP: u32 = 6;
pub const OP_MPROTECT: u32 = 7;
/// Set the break to `addr`; `value` is the break in force.
pub const OP_BRK: u32 = 8;
/// Remap `len` bytes at `addr` to `arg` bytes ([`FLAG_MAYMOVE`]); `value` is the address.
pub const OP_MREMAP: u32 = 9;
/// The process exited: free everything; `value` is the frames freed.
pub const OP_EXIT: u32 = 10;
/// Counters; the reply carries a [`MemStats`].
pub const OP_STATS: u32 = 11;

pub const FLAG_FIXED: u32 = 1;
pub const FLAG_MAYMOVE: u32 = 2;

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
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MemReply {
    pub status: u32,
    pub _pad: u32,
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
}

pub const REQUEST_LEN: usize = core::mem::size_of::<MemRequest>();
pub const REPLY_LEN: usize = core::mem::size_of::<MemReply>();
