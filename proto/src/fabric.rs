//! What a component's VMM answers about its own end of the fabric.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A Data request whose payload is exactly these bytes, sent to any
/// component, is answered by its VMM (not its guest) with a
/// [`FabricStats`]: how many frames it dropped, and why.
pub const FABRIC_STATS_REQUEST: [u8; 8] = *b"LGFSTATS";

/// A VMM's fabric counters since it started.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct FabricStats {
    pub from_guest: u64,
    pub to_guest: u64,
    pub sent: u64,
    pub received: u64,
    pub bad_from_guest: u64,
    /// Frames from peers whose header did not decode or that ended early.
    pub bad_frames: u64,
    pub bad_connections: u64,
    pub misrouted: u64,
    pub errors_made: u64,
    /// Frames the guest did not take within the fabric timeout.
    pub guest_full_drops: u64,
    /// Frames larger than the guest takes.
    pub too_large: u64,
    /// Frames or greetings without a valid tag for the rack key.
    pub unauthenticated: u64,
    pub replayed: u64,
    /// Authenticated frames naming another source than their sender.
    pub forged_source: u64,
    pub duplicate_ids: u64,
    /// Page reads a memory component's VMM answered from its page index.
    pub reads_by_vmm: u64,
}

/// A Data request whose payload is exactly these bytes is answered by the
/// component's VMM (not its guest) with a [`Busy`]: whether its guest is
/// at work. A caller whose request is late asks before it gives up (a
/// storage component flushing to a slow disk is late, not gone).
pub const BUSY_REQUEST: [u8; 8] = *b"LGFBUSY?";

/// What a VMM says of its guest's work when asked with [`BUSY_REQUEST`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Busy {
    /// Milliseconds since the guest last sent a frame or finished a disk
    /// request (`u64::MAX`: never).
    pub idle_ms: u64,
    /// Milliseconds the disk has been serving the guest's requests so far
    /// (one kick of its queue, which may hold many; 0: it is not).
    pub disk_ms: u64,
}
