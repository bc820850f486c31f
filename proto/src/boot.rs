//! Guest-physical layout at boot, shared by the VMM (which writes it) and the
//! guest (which relies on it).
//!
//! The VMM starts every vCPU directly in 64-bit mode, as Firecracker does for
//! Linux: it writes identity page tables, a GDT with one TSS per vCPU, and a
//! [`BootInfo`] page at the fixed addresses below, then points each vCPU at
//! the image's ELF entry with its own stack. Fixed addresses keep the guest's
//! boot code free of discovery logic and of privileged instructions.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Guest-physical address of the [`BootInfo`] page.
pub const BOOT_INFO: u64 = 0x1000;
/// Guest-physical address of the GDT (one page).
pub const GDT: u64 = 0x2000;
/// Guest-physical address of the TSS array, [`TSS_STRIDE`] bytes per vCPU.
pub const TSS: u64 = 0x3000;
pub const TSS_STRIDE: u64 = 128;
/// Top-level page table. It must sit in an odd 4 KiB frame (CR3 bit 12 set):
/// measured on the PVM hosts, a PML4 at 0x1000, 0x3000, 0x5000, 0x21000 runs
/// natively, one at 0x0, 0x4000, 0x6000, 0x10000 has every instruction
/// emulated (bit 12 is where Linux's page-table isolation keeps the user half
/// of a PGD pair). Ordinary KVM does not care.
pub const PML4: u64 = 0x5000;
/// The one PDPT, shared by the identity map and the upper-half alias.
pub const PDPT: u64 = 0x6000;
/// Page directories, one page per GiB of guest RAM.
pub const PD: u64 = 0x7000;
/// The IDT (256 gates, one page), written by the VMM from the image's
/// [`ISR_TABLE_SYMBOL`] so that exceptions are reported from the first
/// instruction on, even while a debugger single-steps the boot code.
pub const IDT: u64 = PD + (MAX_MEM >> 30) * 4096;
/// The symbol of the image's table of 32 exception entry addresses.
pub const ISR_TABLE_SYMBOL: &str = "lego_isr_table";
/// Guest RAM is mapped with 2 MiB pages, so it comes in 2 MiB units.
pub const LARGE_PAGE: u64 = 2 << 20;
/// One page directory per GiB: 64 of them fit below [`EXCEPTION_STACKS`].
pub const MAX_MEM: u64 = 64 << 30;

/// Exception stacks (TSS RSP0 and IST1), one per vCPU.
pub const EXCEPTION_STACKS: u64 = 0x10_0000;
pub const EXCEPTION_STACK_SIZE: u64 = 32 << 10;
/// Ordinary kernel stacks, one per vCPU.
pub const STACKS: u64 = 0x20_0000;
pub const STACK_SIZE: u64 = 128 << 10;
/// The most vCPUs the fixed layout has stacks and TSS slots for.
pub const MAX_VCPUS: u32 = 16;
/// Guest images are loaded at this guest-physical address, and run at
/// [`UPPER_HALF`] + it (see `images/guest.ld`).
pub const IMAGE_BASE: u64 = 0x40_0000;

/// Under PVM the exception stack must be an upper-half address. PML4 slot
/// 511 aliases guest-physical memory there: `UPPER_HALF + phys` maps `phys`.
pub const UPPER_HALF: u64 = 0xffff_ff80_0000_0000;

/// GDT selectors, Linux layout (PVM.md fact 4).
pub const SEL_CODE32: u16 = 0x08;
pub const SEL_CODE64: u16 = 0x10;
pub const SEL_DATA: u16 = 0x18;
/// First TSS descriptor; vCPU `i` uses `SEL_TSS + 16 * i` (16-byte descriptors).
pub const SEL_TSS: u16 = 0x40;

// The fixed layout must not overlap itself.
const _: () = assert!(IDT + 4096 <= EXCEPTION_STACKS);
const _: () = assert!(TSS + MAX_VCPUS as u64 * TSS_STRIDE <= PML4);
const _: () = assert!(
    PML4 & 0x1000 != 0,
    "PVM runs natively only with CR3 bit 12 set"
);
const _: () = assert!(SEL_TSS as u64 + 16 * MAX_VCPUS as u64 <= 4096);
const _: () = assert!(EXCEPTION_STACKS + MAX_VCPUS as u64 * EXCEPTION_STACK_SIZE <= STACKS);
const _: () = assert!(STACKS + MAX_VCPUS as u64 * STACK_SIZE <= IMAGE_BASE);

/// Top of vCPU `cpu`'s ordinary stack, as a guest-physical address.
pub const fn stack_top(cpu: u32) -> u64 {
    STACKS + (cpu as u64 + 1) * STACK_SIZE
}

/// The stack of the fixed layout that guest-physical `phys` lies in, a
/// vCPU's ordinary or exception stack: that vCPU and the stack's top
/// (guest-physical, exclusive).
pub const fn stack_at(phys: u64) -> Option<(u32, u64)> {
    let (base, size) = if phys >= EXCEPTION_STACKS && phys < STACKS {
        (EXCEPTION_STACKS, EXCEPTION_STACK_SIZE)
    } else if phys >= STACKS {
        (STACKS, STACK_SIZE)
    } else {
        return None;
    };
    let index = (phys - base) / size;
    if index >= MAX_VCPUS as u64 {
        return None;
    }
    Some((index as u32, base + (index + 1) * size))
}

/// The guest-virtual address of guest-physical `phys` in the upper-half
/// alias, where guest images run.
pub const fn upper(phys: u64) -> u64 {
    UPPER_HALF + phys
}

/// Top of vCPU `cpu`'s exception stack, as the upper-half address the TSS holds.
pub const fn exception_stack_top(cpu: u32) -> u64 {
    UPPER_HALF + EXCEPTION_STACKS + (cpu as u64 + 1) * EXCEPTION_STACK_SIZE
}

/// Which monitor an image is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Processor = 1,
    Memory = 2,
    Storage = 3,
}

impl Role {
    pub fn from_u32(v: u32) -> Option<Role> {
        match v {
            1 => Some(Role::Processor),
            2 => Some(Role::Memory),
            3 => Some(Role::Storage),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Role::Processor => "processor",
            Role::Memory => "memory",
            Role::Storage => "storage",
        }
    }
}

/// What the guest should do once booted.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serve as a monitor until stopped.
    Serve = 0,
    /// Run the self-test, report it, exit.
    SelfTest = 1,
    /// Misbehave on purpose so the tests can check the VMM's reports.
    Test = 2,
    /// Run a fabric exercise against a peer, report, exit.
    FabricTest = 3,
    /// Processor: run the built-in workload as a process, report, exit.
    Workload = 4,
    /// Processor: run the user's program (`lego-vmm ... -- PROG ARGS`) until
    /// it and its children are done; its exit status is lego-vmm's.
    Program = 5,
}

/// Deliberate failures a test can ask the guest for (`Mode::Test`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestTest {
    Panic = 1,
    PageFault = 2,
    DivideError = 3,
    TripleFault = 4,
    BadHypercall = 5,
    Breakpoint = 6,
}

impl GuestTest {
    pub fn from_u32(v: u32) -> Option<GuestTest> {
        match v {
            1 => Some(GuestTest::Panic),
            2 => Some(GuestTest::PageFault),
            3 => Some(GuestTest::DivideError),
            4 => Some(GuestTest::TripleFault),
            5 => Some(GuestTest::BadHypercall),
            6 => Some(GuestTest::Breakpoint),
            _ => None,
        }
    }
}

/// Facts the VMM hands the guest at [`BOOT_INFO`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BootInfo {
    /// [`BOOT_MAGIC`], so a guest started by something else notices.
    pub magic: u64,
    /// Bytes of guest RAM, starting at guest-physical 0.
    pub mem_size: u64,
    /// First free guest-physical byte after the loaded image.
    pub image_end: u64,
    /// [`Role`] as u32.
    pub role: u32,
    /// Number of vCPUs started.
    pub vcpus: u32,
    /// [`Mode`] as u32.
    pub mode: u32,
    /// [`GuestTest`] as u32 when `mode` is `Test`, else 0.
    pub test: u32,
    /// Iterations of the self-test compute loop.
    pub selftest_iterations: u64,
    /// This component's id on the fabric; 0 if it has none.
    pub component_id: u32,
    /// [`FabricTest`] as u32 when `mode` is `FabricTest`.
    pub fabric_test: u32,
    /// The fabric test's peer and size (messages or bytes).
    pub fabric_peer: u32,
    /// The guest's TSC frequency in kHz (0 if unknown), for timing.
    pub tsc_khz: u32,
    pub fabric_amount: u64,
    /// Memory role: the components this one hands vRegions to
    /// (`--vregion-peers`), the first `vregion_peer_count` entries.
    pub vregion_peer_count: u32,
    pub vregion_peers: [u32; crate::memory::MAX_VREGION_PEERS],
    /// Processor, `Mode::Workload`: the [`Workload`](crate::process::Workload),
    /// its size in bytes, its process id and home memory component, and
    /// the ExCache's size in pages (to tell which misses evict).
    pub workload: u32,
    pub workload_pid: u32,
    pub workload_bytes: u64,
    pub workload_home: u32,
    pub excache_pages: u32,
    /// Width of guest-physical addresses (CPUID 0x80000008), which places
    /// the processor's process window ([`crate::process::Window`]).
    pub phys_bits: u32,
    /// Processor, `Mode::Program`: the base of the process ids this
    /// processor gives its processes at their memory components (unique
    /// per lego-vmm on a host: its pid, shifted).
    pub pid_base: u32,
    /// The host's wall clock (ns since 1970) and the guest's TSC at the
    /// same moment, so the guest tells the time without exits.
    pub realtime_ns: u64,
    pub realtime_tsc: u64,
    /// Entropy from the host, for AT_RANDOM and getrandom.
    pub seed: [u64; 4],
    /// 1 on a PVM host (PVM.md): the guest may write PVM's "native" MSR.
    pub pvm: u32,
    /// Processor running a program: 1 to print every system call
    /// (`--strace`).
    pub trace_syscalls: u32,
    /// Processor running a program: signals lego-vmm received (SIGINT from
    /// a terminal's Ctrl-C, SIGTERM, SIGHUP, SIGQUIT), bit N-1 for signal
    /// N, for the program's foreground processes. The VMM sets bits
    /// atomically while the guest runs and kicks vCPU 0; the guest takes
    /// them with an atomic swap. Guest memory, so no exit is needed.
    pub host_signals: u64,
    /// Memory role: the component that keeps a copy of what this one
    /// holds (`--backup`), 0 for none; answered to OP_BACKUP.
    pub backup: u32,
    /// Processor running a program: the storage component that serves its
    /// files (`--storage`), 0 for none (the host's files, read-only).
    pub storage: u32,
    /// Processor: 1 when it serves runs (`lego run`) rather than one
    /// program after `--`.
    pub serve_runs: u32,
    pub _pad2: u32,
    /// Processor serving runs: nonzero when the VMM has requests for the
    /// monitor (PORT_CONTROL_NEXT). Set like `host_signals`, with vCPU 0
    /// kicked; the guest takes it with an atomic swap.
    pub control_pending: u64,
    /// Memory: bytes of page frames holding processes' pages, written by
    /// the guest now and then (every 256 requests and when idle) for the
    /// VMM's heartbeats to the managers.
    pub mem_used: u64,
    /// Memory, written with `mem_used`: the processes homed here, and the
    /// processes homed elsewhere whose vRegions this component owns.
    pub processes_homed: u32,
    pub processes_held: u32,
    /// Memory: the backup the monitor names now (`backup`, or one the
    /// managers gave since, see `owner_seq`), written with `mem_used`.
    pub backup_in_use: u32,
    pub _pad3: u32,
    /// Memory in a rack: the other memory components the managers offer
    /// as vRegion owners, each `id << 32 | free MiB`, the first
    /// `owner_count`. The VMM rewrites them with each heartbeat's answer
    /// under `owner_seq` (odd while it writes: a seqlock), and the monitor
    /// reads them when the number changes. `owner_seq` 0: no list (the
    /// static `vregion_peers` rule holds). Under the same number the VMM
    /// also writes `backup` when the managers give this component one.
    pub owner_seq: u32,
    pub owner_count: u32,
    pub owners: [u64; crate::memory::MAX_VREGION_PEERS],
    /// Processor: processes to kill with SIGKILL because a memory
    /// component had no frame for one of their pages (Linux's OOM killer),
    /// by the id their memory components know them by, 0 for a free
    /// entry. The VMM claims a free entry atomically
    /// ([`OOM_KILL_CLAIMED`]), writes its pages, stores the id (release)
    /// and kicks vCPU 0; the guest takes each entry that holds an id at
    /// its next tick and frees it (0).
    pub oom_kills: [u32; OOM_KILLS],
    /// The pages `[first, end)` of each entry's address space that found
    /// no frame. For a process's own space they are not needed (the
    /// process is killed); for the holder of shared memory they name the
    /// objects whose mappers are killed.
    pub oom_kill_pages: [[u64; 2]; OOM_KILLS],
}

/// Entries of [`BootInfo::oom_kills`].
/// A memory component out of frames refuses a burst of write-backs,
/// up to 64 pages each, and each refused run is one entry.
pub const OOM_KILLS: usize = 32;

/// An entry of [`BootInfo::oom_kills`] the VMM is writing: not taken.
pub const OOM_KILL_CLAIMED: u32 = u32::MAX;

/// Fabric exercises a guest runs for the tests (`--fabric-test`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FabricTest {
    /// Ping the peer `amount` times; every Pong must carry its Ping's bytes.
    PingPong = 1,
    /// Send `amount` bytes of a pseudo-random stream in page-sized Data
    /// requests; the peer echoes each; verify content and order.
    Stream = 2,
    /// `amount` round trips of a 64-byte request and a 4 KiB reply, timed
    /// with the TSC; also times one VM exit. Reports p50/p99.
    Rtt = 3,
    /// `amount` one-way 4 KiB messages as fast as possible, then one round
    /// trip so all have arrived. Reports messages per second and exits per
    /// message.
    Flood = 4,
    /// Ping until `amount` pings succeeded; after a failure wait 100 ms and
    /// go on (the peer may be restarting). Gives up after 300 failures.
    Survive = 5,
}

impl FabricTest {
    pub fn from_u32(v: u32) -> Option<FabricTest> {
        match v {
            1 => Some(FabricTest::PingPong),
            2 => Some(FabricTest::Stream),
            3 => Some(FabricTest::Rtt),
            4 => Some(FabricTest::Flood),
            5 => Some(FabricTest::Survive),
            _ => None,
        }
    }
}

pub const BOOT_MAGIC: u64 = 0x4c45_474f_424f_4f54; // "LEGOBOOT"

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_information_fits_below_the_gdt() {
        assert!(core::mem::size_of::<BootInfo>() as u64 <= GDT - BOOT_INFO);
    }

    #[test]
    fn stack_at_names_the_vcpu_and_the_top() {
        assert_eq!(stack_at(stack_top(2) - 8), Some((2, stack_top(2))));
        assert_eq!(stack_at(STACKS), Some((0, stack_top(0))));
        let exc = exception_stack_top(3) - UPPER_HALF;
        assert_eq!(stack_at(exc - 1), Some((3, exc)));
        assert_eq!(stack_at(EXCEPTION_STACKS - 1), None);
        assert_eq!(stack_at(stack_top(MAX_VCPUS - 1)), None);
    }
}
