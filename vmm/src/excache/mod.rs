//! The processor's ExCache: the only memory its processes have, a bounded
//! cache of their pages, filled from the memory components on demand.
//!
//! Process pages live in a guest-physical window ([`lego_proto::process`]).
//! Each vRegion a process uses gets one memslot there, backed by a host
//! reservation registered with a userfaultfd ([`regions`], [`uffd`]). A
//! vCPU's first touch of a page that is not cached faults inside KVM; one
//! of our handler threads gets the fault, fetches the page from its owner
//! and installs it (`UFFDIO_COPY`), and the vCPU goes on. No instruction is
//! emulated on the way, so real programs' vector loads and stores can miss
//! like any other access (per-page MMIO memslots, the first design, could
//! not: KVM's emulator knows no AVX).
//!
//! Dirty pages: a write miss installs its page writable, and dirty. A
//! page fetched for a read (or read ahead) in a writable mapping is also
//! installed writable, with a keyed 128-bit hash of what it held
//! ([`ContentSum`]): at eviction it is written back only if its content
//! hashes differently now. A write-protected page is one more shadow-page
//! fault per page under PVM (KVM only maps ahead host pages that are
//! writable): about 6 us for each page a scan reads, against under 1 us
//! to hash it, twice. Pages of read-only mappings are installed
//! write-protected (a write is refused as on Linux); a page written back
//! by `mprotect` or a flush stays cached write-protected, and its first
//! write is a write-protect fault that makes it writable and dirty.
//! Evicting a page that may be dirty first write-protects it (so a write
//! from another vCPU waits instead of being lost), copies or hashes it,
//! drops it (`MADV_DONTNEED`; KVM's MMU notifier unmaps it from the guest)
//! and writes it back without waiting, victims batched (neighbours leave
//! with one write-protect and one `MADV_DONTNEED`; dirty pages travel up
//! to 16 to a request).
//!
//! Measured and rejected: KVM's dirty log. Under PVM's shadow paging, a
//! page whose guest PTE is already dirty is mapped writable on a read fault
//! and logged as dirty, so every re-fetched page was written back (7168 of
//! 7168 evictions in the 16 MiB pattern workload through a 4 MiB cache,
//! where half of them are clean).
//!
//! An access the memory component refuses (EFAULT, EACCES) is a fault for
//! the process: the handler kicks the faulting vCPU out of KVM with a
//! signal and leaves it a [`Verdict`]; the vCPU thread injects a page fault
//! into the guest at the faulting instruction (or, for the built-in
//! workload, stops the component with a sentence).
//!
//! Locking: one mutex over the cache's state, never held across a round
//! trip to a memory component. A page being fetched is `loading`; a dirty
//! page on its way back is `flushing` until its write-back is acknowledged,
//! and a miss on it waits for that, so a fetch never overtakes the write.

pub mod client;
mod copies;
pub mod filed;
pub mod fresh;
pub mod mirror;
mod pagemap;
pub mod policy;
pub mod port;
pub mod regions;
pub mod resync;
pub mod sample;
pub mod uffd;

// The cache's work, by what it serves.
mod calls;
mod evict;
mod miss;
mod prefetch;
mod scans;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use kvm_ioctls::VmFd;
use lego_proto::memory::*;
use lego_proto::process::{Window, MAX_SLOTS};

use self::client::{MemoryClient, PageError, Pending};
use self::filed::{Filed, Piece, Source};
use self::fresh::Fresh;
use self::policy::{Order, Policy};
use self::regions::Regions;
use self::uffd::Uffd;
use crate::fabric::spin::Spin;
use crate::fabric::{CallReply, Fabric, ReplyBytes};

const PAGE_U64: u64 = PAGE as u64;
const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;
/// Most fresh pages one miss installs (zeros, no round trip): the pages
/// after a fresh one are likely next, as with Linux's fault-around.
const FRESH_RUN: u64 = 32;
/// Most pages of a mapped file one miss reads and installs: 128 KiB, as
/// Linux reads around a fault on a file mapping.
const FILE_RUN: u64 = 32;
/// How far a write scan over fresh memory has its zeros installed ahead,
/// as a multiple of [`FRESH_RUN`] (at most a quarter of the cache).
const FRESH_AHEAD_GROWTH: u64 = 8;
/// The most pages a forked child's cache starts with (4 MiB of its
/// parent's clean ones, `seed_child`), and that a segment execve loads
/// leaves cached (`keep_loaded`): a shell's child touches a few hundred
/// pages; a large parent's many more are not worth copying for a child
/// that may exec at once.
const SEED_MAX: usize = 1024;
/// How much a scan's read-ahead window may grow, as a multiple of
/// `--excache-prefetch`.
const MAX_WINDOW_GROWTH: u64 = 16;
/// How soon a refused access must fault again for its refusal to stand
/// (a woken access retries within microseconds).
const CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Reports of one refused access, with its verdict left and the vCPU
/// not out of KVM to take it, that show KVM itself makes the access
/// ([`ExCache::fail`]).
const STUCK_REPORTS: u32 = 4;
/// How long the monitor has to kill a process that ran a memory component
/// out of frames ([`ExCache::oom_kill`]) before the processor stops
/// instead: its next tick, asked for at once, comes within milliseconds.
const OOM_KILL_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);
/// Zeros to install fresh pages from.
static ZEROS: [u8; FRESH_RUN as usize * PAGE] = [0; FRESH_RUN as usize * PAGE];
/// Miss latencies kept for percentiles: the most recent ones (the
/// histogram counts them all).
const MAX_SAMPLES: usize = 1 << 16;
/// `KVM_CAP_DISABLE_QUIRKS2` and `KVM_X86_QUIRK_SLOT_ZAP_ALL`: without the
/// quirk, deleting a memslot drops only its own shadow entries (PVM.md:
/// 24 us instead of 115 us, and the other cached pages stay mapped).
const KVM_CAP_DISABLE_QUIRKS2: u32 = 213;
const KVM_X86_QUIRK_SLOT_ZAP_ALL: u64 = 1 << 7;

/// A cached page: (process slot, page address).
type Key = (u64, u64);

/// Why a process's access could not be served.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("process {pid}: the {access} of {va:#x}: {source}")]
    Page {
        pid: u32,
        va: u64,
        access: &'static str,
        source: PageError,
    },
    #[error("the ExCache could not {what}: {why}")]
    Host { what: &'static str, why: String },
}

/// A prefetch that failed leaves its pages out (a miss fetches them); a
/// memory component out of frames is the demand miss's to report, as it
/// kills the process then (`ExCache::oom_kill`).
fn prefetch_failed(e: &Fault) {
    if e.is_out_of_memory() {
        log::debug!("excache: prefetch: {e}");
    } else {
        log::warn!("excache: prefetch: {e}");
    }
}

impl Fault {
    /// A write to a page whose mapping does not allow it, as its memory
    /// component would refuse it (EACCES): a protection fault.
    fn write_refused(pid: u32, va: u64, owner: u32) -> Fault {
        Fault::Page {
            pid,
            va,
            access: "write",
            source: PageError::Refused {
                component: owner,
                status: EACCES,
            },
        }
    }

    /// Whether a memory component had no frame for the page (ENOMEM is
    /// a memory call's answer, about mappings, never a page's).
    pub fn is_out_of_memory(&self) -> bool {
        self.frames_refused().is_some()
    }

    /// The process, the pages `[first, end)` and the memory component of
    /// a fault that found no frame.
    fn frames_refused(&self) -> Option<(u32, (u64, u64), u32)> {
        match self {
            Fault::Page {
                pid,
                va,
                source:
                    PageError::Refused {
                        component,
                        status: OUT_OF_FRAMES,
                    },
                ..
            } => Some((*pid, (*va, va + PAGE_U64), *component)),
            Fault::Page {
                pid,
                va,
                source: PageError::OutOfFrames { component, last },
                ..
            } => Some((*pid, (*va, last + PAGE_U64), *component)),
            _ => None,
        }
    }

    /// Whether the memory component said the access is not allowed: the
    /// process gets SIGSEGV, as on Linux.
    pub fn is_segv(&self) -> bool {
        matches!(
            self,
            Fault::Page {
                source: PageError::Refused {
                    status: EFAULT | EACCES,
                    ..
                },
                ..
            }
        )
    }

    fn host(what: &'static str, e: impl std::fmt::Display) -> Fault {
        Fault::Host {
            what,
            why: e.to_string(),
        }
    }
}

/// What a vCPU blocked on a fault must do once kicked out of KVM.
#[derive(Debug)]
pub enum Verdict {
    /// Deliver a page fault to the guest at the faulting instruction.
    PageFault {
        va: u64,
        write: bool,
        /// The page is mapped, but not for this access (EACCES).
        protection: bool,
        /// The access was made by KVM for the process (an instruction its
        /// emulator carried out) and has completed on a page of zeros
        /// installed to end it, in this slot: the page is to be dropped
        /// ([`ExCache::end_scratch`]) and the fault given to the process
        /// where it is now.
        completed_in: Option<u64>,
    },
    /// Stop the component with this sentence.
    Stop(String),
}

/// A vCPU thread, as the handler threads reach it.
pub struct Mailbox {
    pub verdict: Mutex<Option<Verdict>>,
    /// How to get the vCPU out of KVM to take a verdict, even one left
    /// while its thread is between two KVM_RUNs (with the signal alone the
    /// vCPU went back to the access and reported it again and again, until
    /// the ExCache took it for KVM's own, `STUCK_REPORTS`).
    pub kick: crate::kick::Kick,
}

impl Mailbox {
    /// Leaves `verdict` and gets the vCPU out of KVM to take it.
    fn leave(&self, verdict: Verdict) {
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        self.kick.kick();
    }

    pub fn take(&self) -> Option<Verdict> {
        self.verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: u32,
    home: u32,
    /// Faults go to the guest (a program); otherwise they stop the
    /// component (the built-in workload runs in the monitor itself).
    faults_to_guest: bool,
    /// The holder of shared memory, which is no process
    /// (`PROCESS_SHARED_HOLDER`).
    shared_holder: bool,
}

#[derive(Clone, Copy)]
struct Page {
    pid: u32,
    home: u32,
    /// The memory component the page came from (its owner).
    owner: u32,
    /// Written since it was fetched; also means not write-protected.
    dirty: bool,
    /// Its VMA allows writes (the memory component said so with the page).
    writable: bool,
    /// Installed as fresh zeros (no frame at its memory component): if it
    /// is still all zeros when evicted, there is nothing to write back.
    fresh: bool,
    /// Mapped writable without a write seen: the hash of what it held
    /// then. Unchanged at eviction means clean.
    sum: Option<u128>,
}

/// How pages are installed: where they came from and what they may do.
#[derive(Clone, Copy)]
struct Installed {
    /// The memory component they came from.
    owner: u32,
    /// Their VMA allows writes.
    writable: bool,
    /// Counted written. Pages that are not are mapped writable all the
    /// same when `writable`, with their [`ContentSum`].
    dirty: bool,
    /// Zeros installed here for pages no memory component has a frame for.
    fresh: bool,
}

/// A page from a memory component: who sent it, its VMA's protection, its bytes.
type Fetched = (u32, u32, ReplyBytes);

/// An evicted dirty page on its way back to its memory component.
struct WriteBack {
    key: Key,
    page: Page,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct Stats {
    pub misses: u64,
    pub read_misses: u64,
    pub write_misses: u64,
    pub evictions: u64,
    pub writebacks: u64,
    /// First writes to write-protected pages of writable mappings (one
    /// write-protect fault each).
    pub upgrades: u64,
    /// Pages mapped writable that left the cache as they came (their
    /// content sum unchanged): no write-back.
    pub unchanged: u64,
    /// Requests that carried write-backs (several pages each, batched).
    pub writeback_requests: u64,
    /// Pages installed ahead of any access, and faults that found their
    /// page already on its way (a prefetch, or another vCPU's miss).
    pub prefetched: u64,
    pub prefetch_hits: u64,
    /// Fresh pages installed as zeros without asking a memory component,
    /// and evicted fresh pages still all zeros (no write-back needed).
    pub fresh: u64,
    pub fresh_unwritten: u64,
    /// Pages a forked child's cache started with: its parent's
    /// (`seed_child`).
    pub seeded: u64,
    /// Read-only pages a load wrote to the memory component, kept cached.
    pub kept_loaded: u64,
    /// Pages read from the file their mapping shows (a program's
    /// read-only segments, a host file's read-only mappings), no memory
    /// component asked.
    pub from_files: u64,
    pub histogram: [u64; lego_proto::process::MISS_BUCKETS],
    /// Time spent in misses: all of it, in fabric calls, installing pages
    /// and evicting. A miss evicts while its fetch is in flight, so the
    /// fetch and eviction times overlap and may add up to more than all.
    pub miss_ns: u64,
    pub fetch_ns: u64,
    pub install_ns: u64,
    samples_us: Vec<u32>,
}

impl Stats {
    /// The p-th percentile of miss latency in microseconds.
    pub fn miss_us(&self, p: f64) -> f64 {
        let mut s = self.samples_us.clone();
        if s.is_empty() {
            return 0.0;
        }
        s.sort_unstable();
        let i = ((s.len() - 1) as f64 * p).round() as usize;
        s[i] as f64
    }

    fn record_miss(&mut self, write: bool, start: Instant) {
        self.misses += 1;
        if write {
            self.write_misses += 1;
        } else {
            self.read_misses += 1;
        }
        let us = start.elapsed().as_micros() as u64;
        let bucket = (63 - us.max(1).leading_zeros() as usize).min(self.histogram.len() - 1);
        self.histogram[bucket] += 1;
        self.miss_ns += start.elapsed().as_nanos() as u64;
        let sample = us.min(u32::MAX as u64) as u32;
        if self.samples_us.len() < MAX_SAMPLES {
            self.samples_us.push(sample);
        } else {
            let i = (self.misses as usize) % MAX_SAMPLES;
            self.samples_us[i] = sample;
        }
    }
}

struct State {
    regions: Regions,
    pages: BTreeMap<Key, Page>,
    /// Pages being fetched; true once an invalidation cancelled the fetch
    /// (its page must not be installed).
    loading: HashMap<Key, bool>,
    /// Demand misses in flight: each has room kept for its page (pages
    /// read ahead make room only once they arrive).
    demand: usize,
    /// Dirty pages evicted whose write-back is not acknowledged yet.
    flushing: HashSet<Key>,
    order: Order<Key>,
    capacity: usize,
    processes: [Option<Process>; MAX_SLOTS as usize],
    /// Write-backs sent without waiting, one request each holding one page
    /// or several, with their data (a redirected one is sent again).
    writebacks: Vec<(Vec<WriteBack>, Pending)>,
    /// Pages known to read as zeros at their memory component.
    fresh: Fresh,
    /// Pages that hold a host file's bytes and no frame anywhere.
    filed: Filed,
    sums: ContentSum,
    /// Accesses refused once, by thread and page, waiting for their second
    /// report (see [`ExCache::fail`]).
    refused: HashMap<(u32, Key), Instant>,
    /// Reports of refused accesses whose verdict was left and not taken
    /// yet, by thread and page.
    unanswered: HashMap<(u32, Key), u32>,
    /// Pages of zeros installed to end an access KVM made and could not be
    /// interrupted in, until their vCPU has left KVM.
    scratch: HashSet<Key>,
    /// Processes whose end (OP_EXIT) was asked of their memory components
    /// while they still hold their slot. A process killed on one vCPU can
    /// be inside a fault there while its parent, on another, reaps it:
    /// that fault then fails (the memory component no longer knows the
    /// process) and must be dropped, not stop the run.
    ended: HashSet<u32>,
    /// Kills the monitor was asked for because a memory component had no
    /// frame for a page, and when: by process (page 0), and for the holder
    /// of shared memory by process and first page (each names other
    /// victims: the mappers of the pages' objects).
    oom_killed: HashMap<(u32, u64), Instant>,
    /// The scans each slot's demand misses follow, and how far each
    /// reads ahead now.
    scans: [scans::Scans; MAX_SLOTS as usize],
    /// The page past the fresh pages last installed for each slot (where a
    /// write scan over fresh memory faults next), and how many it
    /// installs ahead now.
    fresh_end: [u64; MAX_SLOTS as usize],
    /// The first page of the fresh run last installed for each slot (where
    /// a write scan running down faults next, a page below).
    fresh_start: [u64; MAX_SLOTS as usize],
    fresh_window: [u64; MAX_SLOTS as usize],
    stats: Stats,
    /// The hit-ratio sample: pages taken away this period ([`sample`]).
    sample: sample::Sampler,
}

/// A page [`ExCache::load`] writes: its address and its 4 KiB.
pub type LoadPage = (u64, Vec<u8>);

pub struct ExCache {
    uffd: Uffd,
    client: MemoryClient,
    state: Mutex<State>,
    /// Signalled when a flushing page's write-back is done.
    flushed: Condvar,
    /// The vCPU threads by their thread id, for verdicts.
    vcpus: Mutex<HashMap<u32, Arc<Mailbox>>>,
    /// The hit ratios last computed ([`ExCache::hit_ratio`]).
    last_ratio: Mutex<(Option<f64>, Option<f64>)>,
    /// Pages fetched after each miss (`--excache-prefetch`).
    prefetch: u32,
    /// The monitor's instructions that touch a process's memory, once its
    /// guest has named them (PORT_USER_ACCESS, [`port::user_access`]).
    user_access: std::sync::OnceLock<Vec<u64>>,
    /// Asks the monitor to kill a process by the id its memory components
    /// know it by ([`ExCache::on_out_of_memory`]); false if it cannot.
    oom_killer: std::sync::OnceLock<OomKiller>,
}

/// How the ExCache asks the monitor to kill a process that ran a memory
/// component out of frames (`program::post_oom_kill`).
/// Its arguments: the id, and the pages `[first, end)` that found no
/// frame.
pub type OomKiller = Box<dyn Fn(u32, (u64, u64)) -> bool + Send + Sync>;

/// How an access range changes, from a memory call the guest made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeChange {
    /// Unmapped or discarded: cached pages go without a write-back.
    Drop,
    /// Protection changed to `prot`: pages that may no longer be written
    /// are write-protected (dirty ones stay dirty and are written back
    /// later); with no access at all they are written back and dropped.
    Protect(u32),
    /// Dirty pages are written back and stay cached, clean (before the
    /// memory components copy or move the range).
    Flush,
}

impl ExCache {
    /// An ExCache of `pages` pages. Fails with a sentence when the host
    /// cannot serve faults inside KVM.
    pub fn new(
        kvm: &kvm_ioctls::Kvm,
        vm: Arc<VmFd>,
        fabric: Arc<Fabric>,
        window: Window,
        pages: u32,
        policy: Policy,
        prefetch: u32,
    ) -> Result<ExCache, String> {
        let uffd = Uffd::new().map_err(|e| e.to_string())?;
        let cap = kvm_bindings::kvm_enable_cap {
            cap: KVM_CAP_DISABLE_QUIRKS2,
            args: [KVM_X86_QUIRK_SLOT_ZAP_ALL, 0, 0, 0],
            ..Default::default()
        };
        if let Err(e) = vm.enable_cap(&cap) {
            log::warn!("excache: KVM keeps zapping every mapping when a memslot goes ({e}); process exits will cost more");
        }
        let memslots = kvm.get_nr_memslots() as u32;
        let parking = parking_area(&uffd);
        if let Err(why) = &parking {
            log::info!("excache: no hit-ratio sampling: {why}");
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ok(ExCache {
            uffd,
            client: MemoryClient::new(fabric),
            state: Mutex::new(State {
                regions: Regions::new(vm, window, memslots),
                pages: BTreeMap::new(),
                loading: HashMap::new(),
                demand: 0,
                flushing: HashSet::new(),
                order: Order::new(policy),
                capacity: pages.max(1) as usize,
                processes: [None; MAX_SLOTS as usize],
                writebacks: Vec::new(),
                fresh: Fresh::default(),
                filed: Filed::default(),
                scans: std::array::from_fn(|_| scans::Scans::default()),
                fresh_end: [0; MAX_SLOTS as usize],
                fresh_start: [0; MAX_SLOTS as usize],
                fresh_window: [0; MAX_SLOTS as usize],
                sums: ContentSum::new(),
                refused: HashMap::new(),
                unanswered: HashMap::new(),
                scratch: HashSet::new(),
                ended: HashSet::new(),
                oom_killed: HashMap::new(),
                stats: Stats::default(),
                sample: sample::Sampler::new(parking, seed),
            }),
            flushed: Condvar::new(),
            vcpus: Mutex::new(HashMap::new()),
            last_ratio: Mutex::new((None, None)),
            prefetch,
            user_access: std::sync::OnceLock::new(),
            oom_killer: std::sync::OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `n` threads serving the processes' faults.
    pub fn start_handlers(self: &Arc<Self>, n: u32) -> std::io::Result<()> {
        for i in 0..n.max(1) {
            let cache = self.clone();
            std::thread::Builder::new()
                .name(format!("excache{i}"))
                .spawn(move || {
                    let mut spin = Spin::default();
                    let mut next = None;
                    // When the last fault was served: how long the next
                    // took to come tells how long to poll for one.
                    let mut served: Option<Instant> = None;
                    loop {
                        let fault = match next.take() {
                            Some(f) => f,
                            None => match cache.uffd.next(1000) {
                                Ok(Some(f)) => f,
                                Ok(None) => continue,
                                Err(e) => {
                                    log::warn!("excache: {e}");
                                    continue;
                                }
                            },
                        };
                        if let Some(at) = served.take() {
                            spin.answered_after(at.elapsed().as_micros() as u64);
                        }
                        cache.serve(fault);
                        let at = Instant::now();
                        served = Some(at);
                        if spin.should_poll() {
                            next = cache.poll_fault(at, spin.budget_us());
                            spin.polled(next.is_some());
                        }
                    }
                })?;
        }
        let cache = self.clone();
        std::thread::Builder::new()
            .name("excache-sample".into())
            .spawn(move || loop {
                std::thread::sleep(sample::PERIOD);
                cache.sample_tick();
            })?;
        Ok(())
    }

    /// The next fault if one comes within `budget_us` of `start` (a
    /// quarter longer than the next fault took to come lately, within
    /// 30-200 us: [`Spin::budget_us`]; it was a fixed 40 us): a process that
    /// missed often misses again soon after its page came (the random
    /// workload: within about 20 us), and a handler asleep in `poll` is
    /// woken across cores, about 25 us under PVM.
    fn poll_fault(&self, start: Instant, budget_us: u64) -> Option<uffd::Fault> {
        let budget = std::time::Duration::from_micros(budget_us);
        loop {
            if let Ok(Some(f)) = self.uffd.next(0) {
                return Some(f);
            }
            if start.elapsed() >= budget {
                return None;
            }
            std::hint::spin_loop();
        }
    }

    /// Ends a sampling period: brings back the sampled pages not touched,
    /// and takes a new sample ([`sample`]).
    fn sample_tick(&self) {
        let mut st = self.lock();
        if st.sample.off.is_some() {
            return;
        }
        let left: Vec<Key> = st.sample.parked.keys().copied().collect();
        for key in left {
            if let Err(e) = self.unpark(&mut st, key, false) {
                log::warn!("excache: {e}; hit-ratio sampling stops");
                st.sample.off = Some(e.to_string());
                return;
            }
        }
        let misses = st.stats.misses + st.stats.prefetch_hits;
        let cached = st.pages.len();
        st.sample.next_period(cached, misses);
        // Pages mapped writable only: a write-protected one would come
        // back without its protection.
        let mut tries = sample::SAMPLE * 8;
        while tries > 0 && st.sample.parked.len() < sample::SAMPLE {
            tries -= 1;
            let r = st.sample.random();
            let Some(key) = st.order.pick(r) else {
                continue;
            };
            let Some(writable) = st.pages.get(&key).map(|p| p.mapped_writable()) else {
                continue;
            };
            st.sample.drawn(writable);
            if !writable
                || st.sample.parked.contains_key(&key)
                || st.flushing.contains(&key)
                || st.loading.contains_key(&key)
            {
                continue;
            }
            let Some(host) = st.regions.host_of(key.0, key.1) else {
                continue;
            };
            if !self.park(&mut st, key, host, false) {
                break;
            }
        }
    }

    /// Moves the page of `key` (at `host`) to a parking place, taken by
    /// the period's sample (`ahead`: as it was installed ahead). False
    /// when no place is free; a page the kernel will not move stays.
    fn park(&self, st: &mut State, key: Key, host: u64, ahead: bool) -> bool {
        let Some(at) = st.sample.place() else {
            return false;
        };
        match self.uffd.move_page(at, host) {
            Ok(()) if ahead => st.sample.parked_ahead(key, at),
            Ok(()) => st.sample.parked_at(key, at),
            Err(e) => {
                st.sample.release(at);
                log::debug!("excache: a page stays out of the sample: {e}");
            }
        }
        true
    }

    /// A page just installed ahead of any access (read ahead, or fresh
    /// zeros after the faulting page): parked now if the sample takes it.
    fn sample_ahead(&self, st: &mut State, key: Key) {
        if !st.sample.installed_ahead() || !st.pages.get(&key).is_some_and(|p| p.mapped_writable())
        {
            return;
        }
        if let Some(host) = st.regions.host_of(key.0, key.1) {
            self.park(st, key, host, true);
        }
    }

    /// Brings a sampled page back where it was (the guest touched it, its
    /// period ended, or the cache is about to read or drop it), counted
    /// touched if `touched`. Moved back; if the kernel will not, copied
    /// back (its place here still holds it).
    fn unpark(&self, st: &mut State, key: Key, touched: bool) -> Result<(), Fault> {
        let Some(&(at, _)) = st.sample.parked.get(&key) else {
            return Ok(());
        };
        let back = match st.regions.host_of(key.0, key.1) {
            Some(host) => self.uffd.move_page(host, at).or_else(|_| {
                // SAFETY: the parking place is ours and holds the page.
                let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, PAGE) };
                self.uffd.copy(host, bytes, false).map(|_| ())
            }),
            None => Ok(()),
        };
        if let Err(e) = back {
            // The page stays parked, whole: the process that touches it
            // is stopped with this, and nothing reads its empty place.
            return Err(Fault::host("bring back a sampled page", e));
        }
        if touched {
            st.sample.touched(key);
            st.order.touch(key);
        } else {
            st.sample.untouched(key);
        }
        // SAFETY: one page of our own parking area, empty or a copy now.
        unsafe { libc::madvise(at as *mut libc::c_void, PAGE, libc::MADV_DONTNEED) };
        st.sample.release(at);
        Ok(())
    }

    /// The share of pages touched recently (about 10 s) that were found
    /// cached, and over the whole run; None while nothing was touched or
    /// without sampling.
    /// Never waits for the cache's lock (a heartbeat asks): while it is
    /// held, the last figures are given again.
    pub fn hit_ratio(&self) -> (Option<f64>, Option<f64>) {
        let mut last = self.last_ratio.lock().unwrap_or_else(|p| p.into_inner());
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return *last,
        };
        if st.sample.off.is_some() {
            return (None, None);
        }
        let misses = st.stats.misses + st.stats.prefetch_hits;
        *last = (st.sample.recent(misses), st.sample.total(misses));
        *last
    }

    /// The calling vCPU thread registers itself for verdicts.
    pub fn register_vcpu(&self) -> Arc<Mailbox> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() as u32 };
        let mailbox = Arc::new(Mailbox {
            verdict: Mutex::new(None),
            kick: crate::kick::Kick::default(),
        });
        self.vcpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tid, mailbox.clone());
        mailbox
    }

    /// Whether vCPU thread `tid` still has a page-fault verdict for `va`
    /// that it has not taken (it has not left KVM since).
    fn verdict_waits(&self, tid: u32, va: u64) -> bool {
        let vcpus = self.vcpus.lock().unwrap_or_else(|p| p.into_inner());
        vcpus.get(&tid).is_some_and(|m| {
            matches!(
                *m.verdict.lock().unwrap_or_else(|p| p.into_inner()),
                Some(Verdict::PageFault { va: v, .. }) if v == va
            )
        })
    }

    /// Ends an access KVM makes for the process and cannot be interrupted
    /// in: a page of zeros under it, and the verdict left for its vCPU
    /// says the access has completed.
    fn complete_in_kvm(&self, st: &mut State, tid: u32, key: Key) {
        let Some(host) = st.regions.host_of(key.0, key.1) else {
            return;
        };
        log::debug!(
            "excache: KVM's access to {:#x} (slot {}) for thread {tid} was refused and cannot be interrupted: completed on a page of zeros",
            key.1,
            key.0
        );
        st.scratch.insert(key);
        let vcpus = self.vcpus.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = vcpus.get(&tid) {
            let mut v = m.verdict.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(Verdict::PageFault { completed_in, .. }) = v.as_mut() {
                *completed_in = Some(key.0);
            }
        }
        drop(vcpus);
        // Writable: an instruction may read and then write it.
        if let Err(e) = self.uffd.copy(host, &ZEROS[..PAGE], false) {
            log::warn!("excache: {e}");
        }
    }

    /// Drops the page of zeros that ended KVM's access at `va` in `slot`
    /// (its vCPU is out of KVM): the address faults again from now on.
    pub fn end_scratch(&self, slot: u64, va: u64) {
        let mut st = self.lock();
        st.unanswered.retain(|(_, k), _| *k != (slot, va));
        if !st.scratch.remove(&(slot, va)) {
            return;
        }
        if let Some(host) = st.regions.host_of(slot, va) {
            // SAFETY: one page of the slot's own host memory.
            unsafe { libc::madvise(host as *mut libc::c_void, PAGE, libc::MADV_DONTNEED) };
        }
    }

    /// Leaves a verdict for the vCPU thread `tid` and kicks it out of KVM.
    fn deliver(&self, tid: u32, verdict: Verdict) {
        let vcpus = self.vcpus.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mailbox) = vcpus.get(&tid) else {
            log::warn!("excache: a fault of thread {tid}, which is no vCPU: {verdict:?}");
            return;
        };
        mailbox.leave(verdict);
    }

    /// Process `pid`, homed at memory component `home`, runs in `slot`; pid
    /// 0 ends the slot's process and drops its pages (its memory is freed
    /// at the memory components, so nothing is written back); its memslots
    /// stay for the slot's next process (`Regions::empty_slot`).
    pub fn set_process(
        &self,
        slot: u32,
        pid: u32,
        home: u32,
        faults_to_guest: bool,
        shared_holder: bool,
    ) -> Result<(), String> {
        let s = slot as u64;
        let slots = self.lock().regions.window().slots();
        if s >= slots {
            return Err(format!("slot {slot} is not below {slots}"));
        }
        self.drain_writebacks().map_err(|e| e.to_string())?;
        let (gone, vm) = {
            let mut st = self.lock();
            let mut gone = Vec::new();
            if let Some(old) = st.processes[slot as usize].take() {
                st.ended.remove(&old.pid);
                st.oom_killed.retain(|k, _| k.0 != old.pid);
                let keys: Vec<Key> = st
                    .pages
                    .range((s, 0)..(s + 1, 0))
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    st.pages.remove(&k);
                    st.order.remove(k);
                    // Its memory goes with it: a sampled page is dropped
                    // where it is parked.
                    if let Some(at) = st.sample.untouched(k) {
                        // SAFETY: one page of our own parking area.
                        unsafe {
                            libc::madvise(at as *mut libc::c_void, PAGE, libc::MADV_DONTNEED)
                        };
                        st.sample.release(at);
                    }
                }
                for (k, cancelled) in st.loading.iter_mut() {
                    if k.0 == s {
                        *cancelled = true;
                    }
                }
                // (Its scratch pages go with the slot's host pages below.)
                st.scratch.retain(|k| k.0 != s);
                st.unanswered.retain(|(_, k), _| k.0 != s);
                if !st.regions.empty_slot(s) {
                    gone = st.regions.take_slot(s);
                }
                self.client.forget(old.pid);
            }
            st.fresh.clear(s);
            st.filed.clear(s);
            if pid != 0 {
                st.processes[slot as usize] = Some(Process {
                    pid,
                    home,
                    faults_to_guest,
                    shared_holder,
                });
            }
            (gone, st.regions.vm.clone())
        };
        // Outside the lock: KVM waits for vCPUs blocked on faults, which
        // wait for handler threads, which need the lock.
        for r in &gone {
            r.remove(&vm);
        }
        if !gone.is_empty() {
            self.lock().regions.recycle(&gone);
        }
        Ok(())
    }

    /// Gives vRegion `index` of the process in `slot` its memslot, so the
    /// guest may map it. The memslot is installed outside the lock (see
    /// `regions`); the guest maps the vRegion only after this returns, so
    /// no fault can come for it meanwhile.
    pub fn ensure_vregion(&self, slot: u32, index: u64) -> Result<(), String> {
        let (region, vm) = {
            let mut st = self.lock();
            if st.processes.get(slot as usize).copied().flatten().is_none() {
                return Err(format!("no process runs in window slot {slot}"));
            }
            let region = st.regions.reserve(&self.uffd, slot as u64, index)?;
            (region, st.regions.vm.clone())
        };
        let Some(region) = region else {
            return Ok(());
        };
        if let Err(e) = region.install(&vm) {
            self.lock().regions.unreserve(slot as u64, index);
            return Err(e);
        }
        Ok(())
    }

    /// The counters, as the fabric's stats request answers them, or None
    /// when the cache's lock is taken at this instant (the caller must not
    /// wait). The percentiles are computed after the lock is let go.
    pub fn try_report(&self) -> Option<lego_proto::process::ExCacheStats> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let s = &st.stats;
        let mut report = lego_proto::process::ExCacheStats {
            pages: st.capacity as u64,
            cached: st.pages.len() as u64,
            misses: s.misses,
            read_misses: s.read_misses,
            write_misses: s.write_misses,
            upgrades: s.upgrades,
            evictions: s.evictions,
            writebacks: s.writebacks,
            prefetched: s.prefetched,
            prefetch_hits: s.prefetch_hits,
            miss_histogram: s.histogram,
            ..Default::default()
        };
        let samples = Stats {
            samples_us: s.samples_us.clone(),
            ..Default::default()
        };
        drop(st);
        (report.failovers, report.last_failover_us, report.alone) = self.client.copies_counts();
        report.miss_p50_us = samples.miss_us(0.5) as u64;
        report.miss_p99_us = samples.miss_us(0.99) as u64;
        Some(report)
    }

    /// (misses, evictions, write-backs, miss p50 in us).
    pub fn headline(&self) -> (u64, u64, u64, f64) {
        let st = self.lock();
        let s = &st.stats;
        (s.misses, s.evictions, s.writebacks, s.miss_us(0.5))
    }

    /// How to ask the monitor to kill a process that ran a memory component
    /// out of frames; without it such a process stops the processor.
    pub fn on_out_of_memory(&self, kill: OomKiller) {
        let _ = self.oom_killer.set(kill);
    }

    /// Ends, at their home memory components, the processes that still
    /// hold a slot, and returns how many were ended. For a processor that
    /// stops on a failure (its monitor broken, a memory component that
    /// refused a page): its processes end with it, and what they held at
    /// the memory components would otherwise stay taken until those
    /// restart (found with stress-ng's `stream` stressor, which filled a
    /// memory component and left it full for every later program). A
    /// clean stop has ended each process already; this is best effort,
    /// and an unanswered call is left to the fabric's timeout.
    pub fn release_all(&self) -> usize {
        let live: Vec<Process> = {
            let mut st = self.lock();
            let live: Vec<Process> = st
                .processes
                .iter()
                .flatten()
                .filter(|p| !st.ended.contains(&p.pid))
                .copied()
                .collect();
            // Faults still on their way for these are dropped, not taken
            // for failures of their own.
            st.ended.extend(live.iter().map(|p| p.pid));
            live
        };
        let mut ended = 0;
        for p in live {
            let req = MemRequest {
                op: OP_EXIT,
                pid: p.pid,
                ..Default::default()
            };
            match self
                .client
                .call(p.home, zerocopy::IntoBytes::as_bytes(&req))
            {
                Ok(_) => ended += 1,
                Err(e) => log::warn!(
                    "excache: process {} could not be ended at memory component {}: {e}",
                    p.pid,
                    p.home
                ),
            }
        }
        ended
    }

    pub fn summary(&self) -> String {
        let hits = match self.hit_ratio() {
            (_, Some(r)) => format!(
                "; hit ratio {:.1}% (sampled: of the pages touched, the share found cached)",
                r * 100.0
            ),
            (_, None) => match &self.lock().sample.off {
                Some(why) => format!("; hit ratio not sampled ({why})"),
                None => "; hit ratio not sampled yet".into(),
            },
        };
        let st = self.lock();
        let s = &st.stats;
        format!(
            "excache: {} misses ({} read, {} write), {} first writes after a read, {} evictions ({} unchanged), {} write-backs in {} requests, {} prefetched ({} faults found their page on its way), {} fresh pages zero-filled here ({} evicted unwritten), {} pages given to forked children, {} loaded read-only kept, {} read from mapped files, {} owner redirects; miss p50 {:.0} us, p99 {:.0} us; per miss in the VMM {:.1} us, including {:.1} us fetching and {:.1} us installing and evicting (which overlap)",
            s.misses,
            s.read_misses,
            s.write_misses,
            s.upgrades,
            s.evictions,
            s.unchanged,
            s.writebacks,
            s.writeback_requests,
            s.prefetched,
            s.prefetch_hits,
            s.fresh,
            s.fresh_unwritten,
            s.seeded,
            s.kept_loaded,
            s.from_files,
            self.client.redirects.load(Ordering::Relaxed),
            s.miss_us(0.5),
            s.miss_us(0.99),
            s.miss_ns as f64 / 1000.0 / s.misses.max(1) as f64,
            s.fetch_ns as f64 / 1000.0 / s.misses.max(1) as f64,
            s.install_ns as f64 / 1000.0 / s.misses.max(1) as f64,
        ) + &hits
            + &self
                .client
                .copies_summary()
                .map(|c| format!("; copies: {c}"))
                .unwrap_or_default()
    }

    /// Serves one fault a vCPU is blocked on.
    fn serve(&self, f: uffd::Fault) {
        let mut st = self.lock();
        let Some(key) = st.regions.page_of(f.addr) else {
            // Its vRegion went away with its process: let it retry.
            let _ = self.uffd.wake(f.addr, PAGE_U64);
            return;
        };
        if st.sample.parked.contains_key(&key) {
            // A sampled page touched: back at once, no fetch.
            match self.unpark(&mut st, key, true) {
                Ok(()) => {
                    let _ = self.uffd.wake(f.addr, PAGE_U64);
                }
                Err(fault) => {
                    drop(st);
                    self.fail(f.tid, key, f.write, fault);
                }
            }
            return;
        }
        loop {
            if let Some(page) = st.pages.get_mut(&key) {
                if f.protected || f.write {
                    if !page.writable {
                        let (pid, owner) = (page.pid, page.owner);
                        drop(st);
                        let fault = Fault::write_refused(pid, key.1, owner);
                        self.fail(f.tid, key, true, fault);
                        return;
                    }
                    if !page.dirty {
                        page.dirty = true;
                        page.sum = None;
                        st.stats.upgrades += 1;
                        st.order.touch(key);
                    }
                    let t = Instant::now();
                    if let Err(e) = self.uffd.protect(f.addr, PAGE_U64, false) {
                        log::warn!("excache: {e}");
                    }
                    st.stats.install_ns += t.elapsed().as_nanos() as u64;
                    return;
                }
                // Installed meanwhile by another fault.
                let _ = self.uffd.wake(f.addr, PAGE_U64);
                return;
            }
            if st.loading.contains_key(&key) {
                // On its way (a prefetch or another vCPU's miss): its
                // install wakes this fault.
                st.stats.prefetch_hits += 1;
                return;
            }
            if !st.flushing.contains(&key) {
                break;
            }
            // Its write-back must land before it is read again.
            drop(st);
            if let Err(fault) = self.drain_writebacks() {
                self.fail(f.tid, key, f.write, fault);
                return;
            }
            st = self.lock();
            // Its write-back may not be sent yet (a miss sends its victims'
            // after its own page is in): wait until it is, or is answered.
            while st.flushing.contains(&key) && st.writebacks.is_empty() {
                st = self.flushed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        self.miss(st, key, f);
    }

    /// Tells the faulting vCPU what became of its access. The fault is not
    /// woken: the kick ends its wait at the faulting instruction, where the
    /// verdict applies.
    ///
    /// A refused access (SIGSEGV) is confirmed first: the kernel may report
    /// one fault to userfaultfd twice, and a verdict for a report whose
    /// access was already served would land on whatever instruction the
    /// vCPU runs by then (a spurious SIGSEGV). So the first refusal of an
    /// access only wakes it; a real one faults again at once, and its
    /// second report (within [`CONFIRM_WITHIN`]) gets the verdict.
    fn fail(&self, tid: u32, key: Key, write: bool, fault: Fault) {
        if self.oom_kill(&fault) {
            // Made again: served once there is room, or ended by the kill
            // (its tick interrupts the vCPU, which is not left blocked).
            if let Some(host) = self.lock().regions.host_of(key.0, key.1) {
                let _ = self.uffd.wake(host, PAGE_U64);
            }
            return;
        }
        let to_guest = {
            let mut st = self.lock();
            // The process ended meanwhile: its vCPU is being taken back by
            // the guest, and nothing of it is to be served any more.
            if let Fault::Page { pid, .. } = fault {
                let holder = st.processes[key.0 as usize].map(|p| p.pid);
                if st.ended.contains(&pid) || holder != Some(pid) {
                    if let Some(host) = st.regions.host_of(key.0, key.1) {
                        let _ = self.uffd.wake(host, PAGE_U64);
                    }
                    return;
                }
            }
            if fault.is_segv() && self.verdict_waits(tid, key.1) {
                // The vCPU has not left KVM to take its verdict: the access
                // is KVM's own, made for the process in its instruction
                // emulator (PVM emulates descriptor-table instructions,
                // string I/O and far transfers through LDT selectors), which
                // retries a host page fault until it is resolved and heeds
                // no signal but a fatal one. A refusal can never end it, so
                // a page of zeros does; the fault is the process's once its
                // vCPU is out (`end_scratch`).
                let n = st.unanswered.entry((tid, key)).or_insert(0);
                *n += 1;
                if *n >= STUCK_REPORTS {
                    st.unanswered.remove(&(tid, key));
                    self.complete_in_kvm(&mut st, tid, key);
                } else if let Some(host) = st.regions.host_of(key.0, key.1) {
                    let _ = self.uffd.wake(host, PAGE_U64);
                }
                return;
            }
            if fault.is_segv() && !st.confirm_refusal(tid, key) {
                if let Some(host) = st.regions.host_of(key.0, key.1) {
                    let _ = self.uffd.wake(host, PAGE_U64);
                }
                return;
            }
            // A new verdict: reports of an earlier one no longer count.
            st.unanswered.remove(&(tid, key));
            st.processes[key.0 as usize].is_some_and(|p| p.faults_to_guest)
        };
        let verdict = if fault.is_segv() && to_guest {
            let protection = matches!(
                fault,
                Fault::Page {
                    source: PageError::Refused { status: EACCES, .. },
                    ..
                }
            );
            Verdict::PageFault {
                va: key.1,
                write,
                protection,
                completed_in: None,
            }
        } else if fault.is_segv() {
            Verdict::Stop(format!(
                "{fault}.\nThe process got SIGSEGV and was stopped."
            ))
        } else {
            Verdict::Stop(format!(
                "{fault}.\nThe process was stopped: its memory cannot be reached."
            ))
        };
        self.deliver(tid, verdict);
    }

    /// Has the monitor kill the process a memory component had no frame
    /// for (a fetch of a page never written, or a write-back), as Linux's
    /// OOM killer kills a process rather than the machine: true when asked
    /// now or shortly before. Decided: the process whose page found no
    /// frame is the one killed (Linux picks the largest); its memory is
    /// freed at its exit and the others go on. Before, the whole processor
    /// stopped. A page of shared memory (the holder's, which is no
    /// process) kills the processes that map its object, which the
    /// monitor finds from the pages: the page's contents are lost, and no
    /// process that could read it is left. A process that is no program's
    /// (the built-in workload), or a kill the monitor does not carry out
    /// within [`OOM_KILL_WITHIN`], stops the processor as before.
    fn oom_kill(&self, fault: &Fault) -> bool {
        let Some((pid, pages, component)) = fault.frames_refused() else {
            return false;
        };
        let Some(kill) = self.oom_killer.get() else {
            return false;
        };
        let mut st = self.lock();
        let Some(p) = st
            .processes
            .iter()
            .flatten()
            .find(|p| p.pid == pid && p.faults_to_guest)
            .copied()
        else {
            return false;
        };
        if st.ended.contains(&pid) {
            return false;
        }
        let asked = (pid, if p.shared_holder { pages.0 } else { 0 });
        if let Some(at) = st.oom_killed.get(&asked) {
            let waited = at.elapsed();
            if waited < OOM_KILL_WITHIN {
                return true;
            }
            // Refused on and on since: the kill did not end it. Refused
            // again long after: the holder's addresses hold another object
            // now, with other mappers.
            if waited < 2 * OOM_KILL_WITHIN || !p.shared_holder {
                return false;
            }
        }
        if !kill(pid, pages) {
            return false;
        }
        st.oom_killed.insert(asked, Instant::now());
        if p.shared_holder {
            log::warn!(
                "{fault}: memory component {component} is out of memory; the processes that map shared memory at {:#x}..{:#x} are killed (SIGKILL), as Linux's OOM killer would kill them",
                pages.0,
                pages.1
            );
        } else {
            log::warn!(
                "{fault}: memory component {component} is out of memory; process {pid} is killed (SIGKILL), as Linux's OOM killer would"
            );
        }
        true
    }
}

impl State {
    /// Whether the access of thread `tid` to `key` was refused just before
    /// (then this is its second report, and the refusal stands); otherwise
    /// remembers this one.
    fn confirm_refusal(&mut self, tid: u32, key: Key) -> bool {
        let now = Instant::now();
        self.refused
            .retain(|_, at| now.duration_since(*at) < CONFIRM_WITHIN);
        if self.refused.remove(&(tid, key)).is_some() {
            return true;
        }
        self.refused.insert((tid, key), now);
        false
    }
}

/// The sampler's parking area: [`sample::SAMPLE`] pages of anonymous
/// memory registered with the userfaultfd (a page can only be moved into
/// a registered range); never freed, like the cache.
fn parking_area(uffd: &Uffd) -> Result<u64, String> {
    if !uffd.moves() {
        return Err("this kernel cannot move pages (UFFDIO_MOVE, Linux 6.8)".into());
    }
    let len = sample::SAMPLE * PAGE;
    // SAFETY: a fresh anonymous mapping that nothing else refers to.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(format!(
            "no parking area: {}",
            std::io::Error::last_os_error()
        ));
    }
    uffd.register(at as u64, len as u64)
        .map_err(|e| e.to_string())?;
    Ok(at as u64)
}

impl Page {
    /// Mapped writable: written, or maybe (see [`Page::sum`]).
    fn mapped_writable(&self) -> bool {
        self.dirty || self.sum.is_some()
    }
}

/// Keyed 128-bit hashes of page contents, to tell at eviction whether a
/// page mapped writable still holds what its memory component sent.
/// The key is drawn at start and never leaves this process, so a program
/// cannot aim for a collision; by chance one is 2^-128 per eviction.
struct ContentSum {
    seed: u64,
}

impl ContentSum {
    fn new() -> ContentSum {
        ContentSum {
            seed: crate::vm::host_seed()[0],
        }
    }

    fn of(&self, page: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128_with_seed(page, self.seed)
    }
}

/// Whether memory calls may be sent together, their answers taken in
/// any order: fixed mappings whose pages do not meet (each replaces what
/// it covers, so two that meet must be made in order).
fn go_together(reqs: &[MemRequest]) -> bool {
    let fixed_maps = reqs
        .iter()
        .all(|r| r.op == OP_MMAP && r.flags & FLAG_FIXED != 0 && r.len > 0);
    let mut ranges: Vec<(u64, u64)> = reqs.iter().map(|r| page_range(r.addr, r.len)).collect();
    ranges.sort_unstable();
    fixed_maps && ranges.windows(2).all(|w| w[0].1 <= w[1].0)
}

/// The pages `addr..addr + len` touch: (first, end).
fn page_range(addr: u64, len: u64) -> (u64, u64) {
    let start = addr & !(PAGE_U64 - 1);
    (
        start,
        addr.saturating_add(len).saturating_add(PAGE_U64 - 1) & !(PAGE_U64 - 1),
    )
}

/// A demand miss is over: its page is no longer loading. Whether an
/// invalidation cancelled it.
/// Whether a page is cached, on its way in or on its way back.
fn held(st: &State, c: &Key) -> bool {
    st.pages.contains_key(c) || st.loading.contains_key(c) || st.flushing.contains(c)
}

/// How many pages from `key` on, at most `most` and below `limit`, are
/// not [`held`] and pass `also` (given each page's address): a run to
/// install at once.
fn free_run(st: &State, key: Key, most: u64, limit: u64, also: impl Fn(u64) -> bool) -> u64 {
    let (slot, va) = key;
    let mut n = 0;
    while n < most {
        let q = va + n * PAGE_U64;
        if q >= limit || held(st, &(slot, q)) || !also(q) {
            break;
        }
        n += 1;
    }
    n
}

/// The bytes of the pages [from, to) of a mapped file's piece: the file's
/// where it has them, zeros past its end (a segment's last page, a file
/// that shrank since).
fn read_pieces(piece: &Piece, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; (to - from) as usize];
    let (offset, _) = piece.file_part(from);
    let want = piece.source.file_end.clamp(from, to) - from;
    let mut done = 0usize;
    while (done as u64) < want {
        match piece
            .source
            .file
            .read_at(&mut bytes[done..want as usize], offset + done as u64)
        {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(bytes)
}

fn end_demand(st: &mut State, key: Key) -> bool {
    st.demand = st.demand.saturating_sub(1);
    st.loading.remove(&key).unwrap_or(true)
}

fn fetched((dst, reply, rest): (u32, MemReply, ReplyBytes)) -> Fetched {
    (dst, reply.value as u32, rest)
}

/// The pages a run read brought, if it brought any.
fn prefetched_run(dst: u32, reply: CallReply) -> Option<Fetched> {
    let body = reply.ok()?;
    let (head, rest) = <MemReply as zerocopy::FromBytes>::read_from_prefix(&body).ok()?;
    let whole = rest.len() / PAGE * PAGE;
    let mut pages = body.skip(size_of::<MemReply>());
    pages.truncate(whole);
    (head.status == OK && whole > 0).then_some((dst, head.value as u32, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(addr: u64, len: u64) -> MemRequest {
        MemRequest {
            op: OP_MMAP,
            addr,
            len,
            flags: FLAG_FIXED,
            ..Default::default()
        }
    }

    #[test]
    fn only_fixed_mappings_apart_go_together() {
        assert!(go_together(&[]));
        assert!(go_together(&[
            fixed(0x40_0000, 0x1000),
            fixed(0x7f_0000, 0x80_0000),
            fixed(0x40_1000, 0x7a_000),
        ]));
        // Two segments in one page: made in order, one at a time.
        assert!(!go_together(&[
            fixed(0x40_0000, 0x1800),
            fixed(0x40_1800, 0x100)
        ]));
        assert!(!go_together(&[
            fixed(0x40_0000, 0x2000),
            fixed(0x40_0000, 0x1000)
        ]));
        let mut brk = fixed(0x40_0000, 0x1000);
        brk.op = OP_BRK;
        assert!(!go_together(&[brk]));
        let mut anywhere = fixed(0x40_0000, 0x1000);
        anywhere.flags = 0;
        assert!(!go_together(&[anywhere]));
        assert!(!go_together(&[fixed(0x40_0000, 0)]));
    }
}
