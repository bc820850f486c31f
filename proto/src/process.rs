//! How a processor component lays out process memory, and the built-in
//! workload both its guest and the host benchmark run.
//!
//! A process's pages live in a guest-physical *window* that no memslot
//! backs until a page is in the ExCache: the guest's page tables map the
//! process's virtual address `va` to `window base + (slot << slot shift) + va`,
//! so a miss tells the VMM the process (its slot) and the virtual page
//! without asking the guest.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The most address space a process can have (Linux's 47-bit user half).
/// A processor gives each process what its window slot holds
/// ([`Window::user_top`]) and tells the home memory component at OP_NEW.
pub const USER_TOP_MAX: u64 = 1 << 47;
/// The lowest user address (page 0 is never mapped).
pub const USER_LOW: u64 = 0x1000;
/// The processor monitor's own identity map occupies the first 512 GiB
/// of every address space for now (it is linked at 4 MiB, where Linux
/// programs put their text); process memory is mapped above it.
pub const PROCESS_LOW: u64 = 512 << 30;
/// The most processes one processor component runs at once (on a CPU
/// with 48 or more physical-address bits; [`Window::slots`] says how many
/// the CPU at hand allows).
pub const MAX_SLOTS: u64 = 128;
/// log2 of [`MAX_SLOTS`].
const MAX_SLOT_BITS: u32 = 7;
/// log2 of the fewest slots a window has (16).
const MIN_SLOT_BITS: u32 = 4;
/// log2 of the address space a process keeps when the window has room for
/// more than 16 slots: 1 TiB, above where Go's heap hints start (768 GiB).
const ROOMY_SLOT_SHIFT: u32 = 40;

/// Where a processor's process window lies in guest-physical space: from
/// the first slot boundary above guest RAM ([`crate::boot::MAX_MEM`]) to
/// the top of what the CPU can address, cut into equal slots, one per
/// process. A slot is as large as gives each process 1 TiB when half the
/// address space holds at least 16 of them (smaller on narrow CPUs), and
/// there are as many slots as fit, at most [`MAX_SLOTS`]. The window must
/// sit below the guest's physical-address width (CPUID 0x80000008), or the
/// CPU rejects the page-table entries that point into it (46 bits on the
/// Xeons here, 48 on others, 39 on many desktops), so both the VMM and the
/// guest derive it from that width. History: the window was the upper half
/// only, 16 slots of 2 TiB with 46 bits (a shell running jobs or `make -j`
/// ran out), then 32 of 1 TiB, and stress-ng's iomix (two instances of 11
/// processes, with stress-ng's own) still found fork EAGAIN there; the
/// lower half held nothing but guest RAM, so the window starts right above
/// it now: 63 slots with 46 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    base: u64,
    slot_shift: u32,
    slots: u64,
}

impl Window {
    /// The narrowest address width with room for guest RAM
    /// ([`crate::boot::MAX_MEM`], 64 GiB) below the window.
    pub const MIN_PHYS_BITS: u32 = 37;

    /// The window for a guest whose physical addresses have `bits` bits;
    /// None if they are too few (or more than x86-64 allows).
    pub const fn for_phys_bits(bits: u32) -> Option<Window> {
        if bits < Self::MIN_PHYS_BITS || bits > 52 {
            return None;
        }
        // The slot size is what cutting the upper half in 2^slot_bits
        // gives (1 TiB from 45 to 48 bits).
        let half = bits - 1;
        let roomy = half.saturating_sub(ROOMY_SLOT_SHIFT);
        let slot_bits = if roomy > MAX_SLOT_BITS {
            MAX_SLOT_BITS
        } else if roomy < MIN_SLOT_BITS {
            MIN_SLOT_BITS
        } else {
            roomy
        };
        let slot_shift = half - slot_bits;
        // The window starts where guest RAM's reach ends, or one slot up
        // when slots are larger: on a slot boundary either way, both being
        // powers of two.
        let base = if (1u64 << slot_shift) > crate::boot::MAX_MEM {
            1 << slot_shift
        } else {
            crate::boot::MAX_MEM
        };
        let fit = ((1u64 << bits) - base) >> slot_shift;
        Some(Window {
            base,
            slot_shift,
            slots: if fit > MAX_SLOTS { MAX_SLOTS } else { fit },
        })
    }

    /// How many processes the window holds at once.
    pub const fn slots(&self) -> u64 {
        self.slots
    }

    /// One past the highest address a process in this window can use.
    pub const fn user_top(&self) -> u64 {
        let slot = 1u64 << self.slot_shift;
        if slot < USER_TOP_MAX {
            slot
        } else {
            USER_TOP_MAX
        }
    }

    /// The guest-physical address of `va` in process slot `slot`.
    pub const fn gpa(&self, slot: u64, va: u64) -> u64 {
        self.base + (slot << self.slot_shift) + va
    }

    /// The (slot, virtual address) a guest-physical address stands for.
    pub const fn decode(&self, gpa: u64) -> Option<(u64, u64)> {
        if gpa < self.base {
            return None;
        }
        let off = gpa - self.base;
        let slot = off >> self.slot_shift;
        let va = off & ((1u64 << self.slot_shift) - 1);
        if slot >= self.slots() || va >= self.user_top() {
            return None;
        }
        Some((slot, va))
    }
}

/// PORT_PROCESS_START's argument: process `pid` now runs in `slot` (pid 0:
/// the slot's process ended); its memory calls go to its home memory
/// component `home`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ProcessStart {
    pub slot: u32,
    pub pid: u32,
    pub home: u32,
    /// Written by the VMM: 0, or why it refused.
    pub status: u32,
    /// [`PROCESS_FAULTS_TO_GUEST`], [`PROCESS_SHARED_HOLDER`].
    pub flags: u32,
}

/// The error-code bit of a page fault the VMM injects because a memory
/// component refused the access (bit 15, SGX's, which no guest here uses).
pub const PF_REFUSED: u32 = 1 << 15;

/// With [`PF_REFUSED`]: the access was made by KVM for the process (its
/// instruction emulator) and has completed, on a page of zeros the VMM put
/// there to end it; the process is past the instruction, and gets its
/// SIGSEGV there rather than a retry (bit 14, reserved in the CPU's code).
pub const PF_COMPLETED: u32 = 1 << 14;

/// An access the memory component refuses is delivered to the guest as a
/// page fault (a program gets SIGSEGV); without it, it stops the component
/// (the built-in workload, which runs in the monitor itself).
pub const PROCESS_FAULTS_TO_GUEST: u32 = 1;

/// The space is no process: it holds the processor's shared memory
/// (shared anonymous mappings, System V segments, shared file mappings),
/// whose pages processes map. A page of it that finds no frame at its
/// memory component kills the processes that map its object, not the
/// holder (`BootInfo::oom_kill_pages`).
pub const PROCESS_SHARED_HOLDER: u32 = 2;

/// The most instructions a [`UserAccess`] names.
pub const USER_ACCESS_MAX: usize = 8;

/// PORT_USER_ACCESS's argument: where the monitor's copies to and from a
/// process's memory make their access (each has a fixup that returns
/// EFAULT). A page fault for a process's address that its memory component
/// refused is given to monitor code only at one of these. Anywhere else the
/// vCPU cannot be waiting on that access: the refusal came after the vCPU
/// had left it (a tick took it into the monitor's trap entry, say), and an
/// exception there would overwrite the frame the entry is saving (PVM
/// delivers every exception on the TSS's RSP0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct UserAccess {
    /// How many of `rips` are used.
    pub count: u32,
    pub _pad: u32,
    pub rips: [u64; USER_ACCESS_MAX],
}

/// PORT_VREGION's argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VRegionMap {
    pub slot: u32,
    /// Written by the VMM: 0, or 1 when it refused (it logs why).
    pub status: u32,
    /// The vRegion: its address >> `VREGION_SHIFT`.
    pub index: u64,
}

/// PORT_MEMORY_CALL's argument: the request, and the reply the VMM writes
/// (`PEER_FAILED` when the home did not answer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MemoryCall {
    pub slot: u32,
    /// Room at `payload` for what follows the reply (OP_MAPS's entries);
    /// the VMM sets it to the bytes it wrote there.
    pub payload_len: u32,
    pub request: crate::memory::MemRequest,
    pub reply: crate::memory::MemReply,
    /// Guest-physical address for what follows the reply; 0 when the
    /// caller wants none.
    pub payload: u64,
}

/// The most calls a [`MemoryCalls`] carries.
pub const MEMORY_CALLS_MAX: usize = 16;

/// PORT_MEMORY_CALLS's argument: `count` fixed mappings (OP_MMAP with
/// FLAG_FIXED, over ranges that do not meet) of the process in `slot`,
/// which its home makes in the order given; the VMM writes each one's
/// reply (`PEER_FAILED` for all when the home did not answer).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MemoryCalls {
    pub slot: u32,
    pub count: u32,
    pub requests: [crate::memory::MemRequest; MEMORY_CALLS_MAX],
    pub replies: [crate::memory::MemReply; MEMORY_CALLS_MAX],
}

impl Default for MemoryCalls {
    fn default() -> MemoryCalls {
        MemoryCalls {
            slot: 0,
            count: 0,
            requests: [Default::default(); MEMORY_CALLS_MAX],
            replies: [Default::default(); MEMORY_CALLS_MAX],
        }
    }
}

/// The built-in workloads (`--run-workload KIND:SIZE`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Write a pseudo-random pattern over SIZE bytes, read it all back and
    /// verify every byte.
    Pattern = 1,
    /// Like Pattern, then touch one page past its mapping: the memory
    /// component says it is not mapped, and the process must be stopped
    /// with a fault report.
    Outside = 2,
    /// Like Pattern, but the memory is made read-only (mprotect at the
    /// home) before it is read back, and then written once: the process
    /// must be stopped with a fault report.
    ReadOnly = 3,
    /// Write the pattern over SIZE bytes, then make SIZE/4096 accesses to
    /// pages picked at random: half read the whole page and verify it,
    /// half write it again (the same pattern, so it stays verifiable).
    Random = 4,
}

impl Workload {
    pub fn from_u32(v: u32) -> Option<Workload> {
        match v {
            1 => Some(Workload::Pattern),
            2 => Some(Workload::Outside),
            3 => Some(Workload::ReadOnly),
            4 => Some(Workload::Random),
            _ => None,
        }
    }
}

/// Latency classes the workload measures, one page's first access each.
pub const CLASS_WRITE_MISS: usize = 0;
pub const CLASS_WRITE_MISS_DIRTY_EVICT: usize = 1;
pub const CLASS_READ_MISS_DIRTY_EVICT: usize = 2;
pub const CLASS_READ_MISS: usize = 3;
/// The random workload's accesses, hits and misses alike (with a working
/// set four times the cache, three in four miss, so the median is a miss).
pub const CLASS_RANDOM: usize = 4;
pub const CLASSES: usize = 5;

/// The random workload's page sequence: the next state of a xorshift64
/// (start from any nonzero seed), the page index it picks among `pages`,
/// and whether the access writes.
pub fn random_step(state: &mut u64, pages: u64) -> (u64, bool) {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    (x % pages.max(1), (x >> 40) & 1 == 1)
}

/// PORT_WORKLOAD_DONE's argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct WorkloadReport {
    /// 0: verified; otherwise a `WORKLOAD_*` failure.
    pub status: u32,
    /// The memory component's status for a failed memory call.
    pub mem_status: u32,
    pub bytes: u64,
    /// The first address whose contents were wrong.
    pub first_bad: u64,
    pub wrong_words: u64,
    /// TSC cycles of the write and verify passes together.
    pub cycles: u64,
    /// Per class: p50 and p99 in TSC cycles, and the sample count.
    pub p50: [u64; CLASSES],
    pub p99: [u64; CLASSES],
    pub samples: [u64; CLASSES],
    /// Per class: the sum of the samples, in TSC cycles (their mean says
    /// what the tail costs, which p50 and p99 hide).
    pub total: [u64; CLASSES],
}

/// A Data request whose payload is exactly these bytes, sent to a
/// processor component, is answered by its VMM with an [`ExCacheStats`].
pub const EXCACHE_STATS_REQUEST: [u8; 8] = *b"LGXSTATS";

/// Buckets of the miss-latency histogram: bucket `i` counts misses that
/// took [2^i, 2^(i+1)) microseconds (bucket 0 also counts 0 us).
pub const MISS_BUCKETS: usize = 16;

/// A processor's ExCache counters. Hits are invisible (they never exit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ExCacheStats {
    pub pages: u64,
    pub cached: u64,
    pub misses: u64,
    pub read_misses: u64,
    pub write_misses: u64,
    /// First writes to read-missed pages (their mapping is upgraded).
    pub upgrades: u64,
    pub evictions: u64,
    pub writebacks: u64,
    /// Pages fetched ahead of a miss, and those later used.
    pub prefetched: u64,
    pub prefetch_hits: u64,
    pub miss_p50_us: u64,
    pub miss_p99_us: u64,
    pub miss_histogram: [u64; MISS_BUCKETS],
    /// Memory components this processor took for dead and replaced by
    /// their backups, the time the last fail-over took (from the request
    /// that found its component gone to its answer from the backup), and
    /// the components that hold the only copy of what they serve.
    pub failovers: u64,
    pub last_failover_us: u64,
    pub alone: u64,
}

pub const WORKLOAD_OK: u32 = 0;
pub const WORKLOAD_WRONG_DATA: u32 = 1;
pub const WORKLOAD_MEMORY_CALL: u32 = 2;
pub const WORKLOAD_NO_FABRIC: u32 = 3;

/// The value of the 8-byte word at `va` in the pattern of `seed`.
pub const fn pattern_word(seed: u64, va: u64) -> u64 {
    let mut x = (va ^ seed.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

/// Writes the pattern into one page at `va` (whose words are `page`).
pub fn write_page(seed: u64, va: u64, page: &mut [u64]) {
    for (i, w) in page.iter_mut().enumerate() {
        *w = pattern_word(seed, va + 8 * i as u64);
    }
}

/// Counts the words of the page at `va` that differ from the pattern.
pub fn check_page(seed: u64, va: u64, page: &[u64]) -> u64 {
    page.iter()
        .enumerate()
        .filter(|(i, w)| **w != pattern_word(seed, va + 8 * *i as u64))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_round_trips() {
        for bits in 37..=52 {
            let w = Window::for_phys_bits(bits).unwrap();
            let top = w.user_top();
            let last = w.slots() - 1;
            for (slot, va) in [(0, USER_LOW), (3, 0x40_1234), (last, top - 8)] {
                let gpa = w.gpa(slot, va);
                assert!(gpa < 1 << bits, "{bits} bits: {gpa:#x}");
                assert!(gpa >= crate::boot::MAX_MEM);
                assert_eq!(w.decode(gpa), Some((slot, va)));
            }
            assert_eq!(w.decode(0x1000), None);
            assert_eq!(w.decode(w.gpa(w.slots(), 0)), None);
            assert!(w.slots() >= 16 && w.slots() <= MAX_SLOTS);
        }
        // These Xeons: 63 processes of 1 TiB (16 of 2 TiB, then 32 of 1
        // TiB in the upper half only, before).
        let w = Window::for_phys_bits(46).unwrap();
        assert_eq!((w.slots(), w.user_top()), (63, 1 << 40));
        assert_eq!(w.gpa(0, 0), 1 << 40);
        // 48 bits: 128 of 1 TiB (64 of 2 TiB were too few for CPython's
        // multiprocessing tests, which start 100 processes at once).
        let w = Window::for_phys_bits(48).unwrap();
        assert_eq!((w.slots(), w.user_top()), (128, 1 << 40));
        // Narrow CPUs have smaller slots, above 64 GiB of guest RAM.
        let w = Window::for_phys_bits(39).unwrap();
        assert_eq!((w.slots(), w.user_top()), (28, 1 << 34));
        assert_eq!(w.gpa(0, 0), crate::boot::MAX_MEM);
        let w = Window::for_phys_bits(37).unwrap();
        assert_eq!((w.slots(), w.user_top()), (16, 1 << 32));
        let w = Window::for_phys_bits(52).unwrap();
        assert_eq!((w.slots(), w.user_top()), (128, 16 << 40));
        assert_eq!(Window::for_phys_bits(36), None);
    }

    #[test]
    fn the_pattern_detects_a_wrong_word() {
        let mut page = [0u64; 512];
        write_page(7, 0x1000, &mut page);
        assert_eq!(check_page(7, 0x1000, &page), 0);
        page[3] ^= 1;
        assert_eq!(check_page(7, 0x1000, &page), 1);
        assert_eq!(check_page(8, 0x1000, &page), 512);
    }
}
