//! How a guest calls its VMM.
//!
//! A hypercall is one `out dx, eax`: the port says which call, EAX carries a
//! small value or the guest-physical address of the call's argument struct
//! (all of which live below 4 GiB). Every hypercall is a VM exit, which costs
//! about 50 us on PVM hosts, so they are for rare events: console lines,
//! boot milestones, reports. The VMM reads argument structs with bounds
//! checks and treats anything malformed as a guest failure, never a crash.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// EAX = address of a [`ConsoleWrite`].
pub const PORT_CONSOLE: u16 = 0x600;
/// EAX = vCPU index: this vCPU finished booting (IDT, heap, console ready).
pub const PORT_BOOTED: u16 = 0x601;
/// EAX = 0: the self-test compute loop starts now.
pub const PORT_COMPUTE_BEGIN: u16 = 0x602;
/// EAX = address of a [`SelfTestReport`]: the self-test finished.
pub const PORT_SELFTEST_DONE: u16 = 0x603;
/// EAX = exit status: the guest is done (0 = success).
pub const PORT_EXIT: u16 = 0x604;
/// EAX = address of a [`PanicReport`].
pub const PORT_PANIC: u16 = 0x605;
/// EAX = address of a [`FaultReport`].
pub const PORT_FAULT: u16 = 0x606;

/// EAX = guest-physical address of a [`TrapFrame`]: a #DB or #BP was taken.
/// The VMM may change the frame (registers, RIP, the trap flag) before it
/// returns; the guest then restores it and `iretq`s. This is how a debugger
/// steps and breaks on PVM, where KVM's own guest debugging does not work
/// natively.
pub const PORT_DEBUG: u16 = 0x607;

/// EAX = address of a [`FabricSetup`]: the guest's two virtqueues. The VMM
/// writes `status` back before it returns.
pub const PORT_FABRIC_SETUP: u16 = 0x608;
/// EAX = 0: the transmit queue has new buffers. Only needed while the
/// device's used ring does not say `VRING_USED_F_NO_NOTIFY` (the VMM polls
/// while busy and sets it).
pub const PORT_FABRIC_KICK: u16 = 0x609;
/// EAX = the receive queue's used index the guest has seen (low 16 bits)
/// and a timeout in milliseconds (high 16 bits): return when the used index
/// differs or the time is up. The guest calls it only when idle.
pub const PORT_FABRIC_WAIT: u16 = 0x60a;

/// [`PORT_EXIT`] status of a storage component that cannot use its disk
/// (not a Lego disk, damaged beyond recovery): the guest said why on the
/// console; `lego-vmm` exits with status 2.
pub const EXIT_DISK_REFUSED: u32 = 2;

/// Does nothing: one VM exit, for measuring what an exit costs.
pub const PORT_NOP: u16 = 0x60b;
/// A process starts in a window slot: the address of a
/// [`ProcessStart`](crate::process::ProcessStart).
pub const PORT_PROCESS_START: u16 = 0x60c;
/// The built-in workload finished: the address of a
/// [`WorkloadReport`](crate::process::WorkloadReport).
pub const PORT_WORKLOAD_DONE: u16 = 0x60d;
/// The address of a [`VRegionMap`](crate::process::VRegionMap): give a
/// vRegion of a process its memslot before the guest maps it.
pub const PORT_VREGION: u16 = 0x60e;
/// The address of a [`MemoryCall`](crate::process::MemoryCall): a memory
/// call to a process's home, made by the VMM so that its ExCache follows.
pub const PORT_MEMORY_CALL: u16 = 0x60f;

/// The address of a [`UserAccess`](crate::process::UserAccess): the
/// processor monitor's instructions that touch a process's memory, named
/// once at boot.
pub const PORT_USER_ACCESS: u16 = 0x650;

/// The address of a [`MemoryCalls`](crate::process::MemoryCalls): several
/// new mappings of one process made in one exit (an execve's segments,
/// stack and vDSO), sent to its home together.
pub const PORT_MEMORY_CALLS: u16 = 0x651;

/// EAX = address of a [`BlockSetup`]: the guest's request queue for the
/// storage component's disk (`--disk`). The VMM writes `status`, and with
/// a disk `capacity_sectors`, `read_only` and `max_request`, before it
/// returns. Again later: a new queue replaces the old one.
pub const PORT_BLOCK_SETUP: u16 = 0x640;
/// EAX = 0: the block queue has new requests. The VMM serves every request
/// on the available ring before it returns (one exit per batch), so the
/// guest finds them all on the used ring right after.
pub const PORT_BLOCK_KICK: u16 = 0x641;

/// Virtqueue size of both fabric queues.
pub const FABRIC_QUEUE_SIZE: u16 = 64;
/// Bytes of each receive buffer, and the largest frame a guest sends:
/// a frame header and seventeen pages (a run of
/// [`MAX_RUN`](crate::memory::MAX_RUN) pages and what describes them).
pub const FABRIC_BUFFER: u32 = 32 + 17 * 4096;
/// Bytes of each receive buffer of a memory monitor, which takes
/// write-backs of up to [`MAX_WRITE_RUN`](crate::memory::MAX_WRITE_RUN)
/// pages in one frame: a frame header and sixty-five pages. Its VMM
/// offers frames this large from the start, before its guest sets up the
/// queues (a processor learns the size when it connects).
pub const FABRIC_MEMORY_BUFFER: u32 = 32 + 65 * 4096;

/// Bytes of each receive buffer of a component in `role`, and so the
/// largest frame it takes: [`FABRIC_MEMORY_BUFFER`] at a memory monitor,
/// [`FABRIC_BUFFER`] at the others. Its guest sets its queue up with
/// these, and its VMM offers frames this large from the start.
pub const fn fabric_rx_buffer(role: crate::boot::Role) -> u32 {
    match role {
        crate::boot::Role::Memory => FABRIC_MEMORY_BUFFER,
        _ => FABRIC_BUFFER,
    }
}

/// [`FabricSetup::status`] values.
pub const FABRIC_OK: u32 = 0;
/// This component was started without a fabric (`--id`).
pub const FABRIC_DISABLED: u32 = 1;
/// The queues are not valid (size, alignment, outside RAM).
pub const FABRIC_BAD_QUEUES: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct QueueAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FabricSetup {
    pub queue_size: u32,
    /// Written by the VMM.
    pub status: u32,
    /// Guest to VMM.
    pub tx: QueueAddrs,
    /// VMM to guest; the guest posts writable buffers of `rx_buffer` bytes.
    pub rx: QueueAddrs,
    /// Bytes of each receive buffer: the largest frame this guest takes.
    /// Larger frames for it are refused by its VMM with an error frame.
    pub rx_buffer: u32,
    pub _pad: u32,
}

/// The block device speaks virtio-blk (virtio 1.x, section 5.2.6): each
/// request is a chain of a device-readable [`BlockRequestHeader`], the
/// data descriptors (device-writable for [`BLOCK_T_IN`] and
/// [`BLOCK_T_GET_ID`], device-readable for [`BLOCK_T_OUT`]) and a 1-byte
/// device-writable status.
pub const BLOCK_SECTOR: u64 = 512;
/// Descriptors of the queue the guest driver sets up (three per request).
pub const BLOCK_QUEUE_SIZE: u16 = 64;
/// The largest queue the VMM takes (a power of two, as every size).
pub const BLOCK_QUEUE_MAX: u16 = 256;
/// The most data bytes one request carries; the VMM says so in
/// [`BlockSetup::max_request`] and fails larger ones with
/// [`BLOCK_S_IOERR`]. It bounds how long one exit serves a request.
pub const BLOCK_MAX_REQUEST: u32 = 1 << 20;
/// Bytes of the identifier a [`BLOCK_T_GET_ID`] request returns
/// (NUL-padded, not terminated when it fills all 20).
pub const BLOCK_ID_BYTES: usize = 20;

/// [`BlockRequestHeader::kind`] values.
pub const BLOCK_T_IN: u32 = 0;
pub const BLOCK_T_OUT: u32 = 1;
/// Everything written before is on the host's disk when it completes.
pub const BLOCK_T_FLUSH: u32 = 4;
pub const BLOCK_T_GET_ID: u32 = 8;

/// The status byte of a request.
pub const BLOCK_S_OK: u8 = 0;
pub const BLOCK_S_IOERR: u8 = 1;
pub const BLOCK_S_UNSUPP: u8 = 2;

/// [`BlockSetup::status`] values.
pub const BLOCK_OK: u32 = 0;
/// This component was started without `--disk`.
pub const BLOCK_NO_DISK: u32 = 1;
/// The queue is not valid (size, alignment, outside RAM).
pub const BLOCK_BAD_QUEUE: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BlockSetup {
    /// A power of two up to [`BLOCK_QUEUE_MAX`].
    pub queue_size: u32,
    /// Written by the VMM.
    pub status: u32,
    pub queue: QueueAddrs,
    /// Written by the VMM: the disk's size in [`BLOCK_SECTOR`]s.
    pub capacity_sectors: u64,
    /// Written by the VMM: 1 when the host file could only be opened for
    /// reading (writes fail with [`BLOCK_S_IOERR`]).
    pub read_only: u32,
    /// Written by the VMM: the most data bytes per request.
    pub max_request: u32,
    /// Written by the VMM: 1 when it made the disk for this run (a missing
    /// or empty file): the guest formats it. A disk that is not new is
    /// never formatted, whatever it holds.
    pub fresh: u32,
    pub _pad: u32,
}

/// The first 16 bytes of every request (virtio's `virtio_blk_req` head).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BlockRequestHeader {
    /// `type` in the specification: [`BLOCK_T_IN`] and the others.
    pub kind: u32,
    pub reserved: u32,
    /// Where the data starts, in [`BLOCK_SECTOR`]s (0 for a flush).
    pub sector: u64,
}

/// The most bytes one console hypercall may carry; longer lines are split.
pub const CONSOLE_MAX: u64 = 4096;
/// The most bytes of panic message and file name the VMM reads.
pub const PANIC_TEXT_MAX: u64 = 4096;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ConsoleWrite {
    /// Guest-physical address of the bytes (UTF-8, no trailing newline needed).
    pub addr: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SelfTestReport {
    /// Iterations the compute loop ran.
    pub iterations: u64,
    /// Its result; the VMM recomputes it on the host and compares.
    pub result: u64,
    /// Bytes the heap's free count dropped by while the heap check held
    /// its allocations (at least `selftest::HEAP_CHECK_MIN`).
    pub heap_bytes: u64,
    /// The lowest and highest guest address the check's allocations
    /// covered: the heap is RAM above the image, so they must be there.
    pub heap_low: u64,
    pub heap_high: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PanicReport {
    pub file_addr: u64,
    pub file_len: u64,
    pub line: u32,
    pub column: u32,
    pub msg_addr: u64,
    pub msg_len: u64,
    pub cpu: u32,
    pub _pad: u32,
}

/// General-purpose registers in the order the guest's exception entry saves them.
pub const GPR_NAMES: [&str; 15] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15",
];

/// What the guest's exception entry leaves on its stack: the registers it
/// saved (in [`GPR_NAMES`] order), the vector and error code, and the
/// CPU's interrupt frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TrapFrame {
    pub gprs: [u64; 15],
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FaultReport {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub cr2: u64,
    pub cpu: u64,
    /// In [`GPR_NAMES`] order.
    pub gprs: [u64; 15],
}

impl FaultReport {
    /// The report of the exception `frame` describes.
    pub fn from_frame(frame: &TrapFrame, cr2: u64, cpu: u64) -> FaultReport {
        FaultReport {
            vector: frame.vector,
            error_code: frame.error_code,
            rip: frame.rip,
            cs: frame.cs,
            rflags: frame.rflags,
            rsp: frame.rsp,
            ss: frame.ss,
            cr2,
            cpu,
            gprs: frame.gprs,
        }
    }
}

/// Exceptions that push an error code (so the guest's entry stubs know).
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The architectural name of an exception vector.
pub const fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "non-maskable interrupt (NMI)",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range exceeded (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack-segment fault (#SS)",
        13 => "general protection (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating-point (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating-point (#XM)",
        20 => "virtualization (#VE)",
        21 => "control protection (#CP)",
        _ => "reserved or external vector",
    }
}
