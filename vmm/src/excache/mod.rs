//! The processor's ExCache: the only memory its processes have, a bounded
//! cache of their pages. Process pages live in a guest-physical window
//! ([`lego_proto::process`]) that no memslot backs; a guest access to an
//! uncached page exits to the VMM as MMIO (one exit per miss), the VMM
//! fetches the page from the owning memory component, puts it in a frame
//! of host memory, maps that frame at the page's guest-physical address
//! with its own 4 KiB memslot, completes the access and resumes the vCPU.
//! Later accesses run natively until the page is evicted.
//!
//! Dirty pages: a write miss completes the write itself, so its page is
//! dirty and mapped writable; a read miss maps the page read-only
//! (`KVM_MEM_READONLY`), and the first write to it exits once more, which
//! makes it writable and dirty. Evicting a dirty page writes it back,
//! folded into the fetch (OP_READ_WRITE) when both pages belong to the same
//! memory component.
//!
//! Measured and rejected: KVM's dirty log on read-missed pages. Under PVM's
//! shadow paging, a page whose guest PTE is already dirty (every page the
//! process wrote before it was evicted) is mapped writable on a read fault
//! and logged as dirty, so every re-fetched page was written back: 7168 of
//! 7168 evictions in the 16 MiB pattern workload through a 4 MiB cache,
//! where half of them are clean.

pub mod client;
pub mod policy;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use kvm_bindings::{kvm_enable_cap, kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::VmFd;
use lego_proto::memory::*;
use lego_proto::process::{Window, MAX_SLOTS};

use self::client::{MemoryClient, PageError};
use self::policy::{Order, Policy};
use crate::fabric::{CallReply, Fabric, PendingCall};

/// Frame `i` is KVM memslot `FIRST_SLOT + i` (slot 0 is guest RAM).
const FIRST_SLOT: u32 = 1;
const PAGE_U64: u64 = PAGE as u64;
const PROT_WRITE: u32 = 2;
/// `KVM_CAP_DISABLE_QUIRKS2` and `KVM_X86_QUIRK_SLOT_ZAP_ALL`: without the
/// quirk, deleting a memslot drops only its own shadow entries (PVM.md:
/// 24 us instead of 115 us, and the other cached pages stay mapped).
const KVM_CAP_DISABLE_QUIRKS2: u32 = 213;
const KVM_X86_QUIRK_SLOT_ZAP_ALL: u64 = 1 << 7;
/// Miss latencies kept for percentiles: the most recent ones (the
/// histogram counts them all).
const MAX_SAMPLES: usize = 1 << 16;

/// Why a process's access could not be served; the process is stopped.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("no process runs in window slot {slot}")]
    NoProcess { slot: u64 },
    #[error("process {pid}: the {access} of {va:#x}: {source}")]
    Page {
        pid: u32,
        va: u64,
        access: &'static str,
        source: PageError,
    },
    #[error("KVM refused to {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
}

impl Fault {
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
}

/// One guest access that exited.
pub enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

#[derive(Clone, Copy)]
struct Process {
    pid: u32,
    home: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    slot: u64,
    vpage: u64,
    pid: u32,
    home: u32,
    /// The memory component the page came from (its owner).
    owner: u32,
    /// Written since it was fetched; also means mapped writable.
    dirty: bool,
    /// Its VMA allows writes (the memory component said so with the page).
    writable: bool,
}

/// A page from a memory component: who sent it, its VMA's protection, its bytes.
type Fetched = (u32, u32, Vec<u8>);

/// An evicted dirty page on its way back to its memory component.
type WriteBack = (Entry, Vec<u8>);

/// Host memory behind the frames.
struct HostFrames {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by the ExCache and only touched under its lock.
unsafe impl Send for HostFrames {}

impl HostFrames {
    fn map(len: usize) -> std::io::Result<HostFrames> {
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(HostFrames {
            base: base.cast(),
            len,
        })
    }

    fn page(&mut self, frame: u32) -> &mut [u8] {
        let at = frame as usize * PAGE;
        assert!(at + PAGE <= self.len, "frame {frame} out of range");
        // SAFETY: inside the mapping; &mut self makes it exclusive here.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(at), PAGE) }
    }

    fn host_addr(&self, frame: u32) -> u64 {
        self.base as u64 + frame as u64 * PAGE_U64
    }
}

impl Drop for HostFrames {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

#[derive(Default)]
pub struct Stats {
    pub misses: u64,
    pub read_misses: u64,
    pub write_misses: u64,
    pub evictions: u64,
    pub writebacks: u64,
    /// First writes to read-missed pages (one exit each).
    pub upgrades: u64,
    /// Write-backs that travelled in the fetch's request.
    pub folded: u64,
    /// Pages fetched ahead, and misses they served without a round trip.
    pub prefetched: u64,
    pub prefetch_hits: u64,
    pub histogram: [u64; lego_proto::process::MISS_BUCKETS],
    /// Time spent in misses: all of it, in fabric calls, in memslot ioctls.
    pub miss_ns: u64,
    pub fetch_ns: u64,
    pub slot_ns: u64,
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
}

pub struct ExCache {
    vm: Arc<VmFd>,
    window: Window,
    host: HostFrames,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    map: HashMap<(u64, u64), u32>,
    order: Order,
    processes: [Option<Process>; MAX_SLOTS as usize],
    client: MemoryClient,
    pub stats: Stats,
    /// Pages fetched after each miss (`--excache-prefetch`).
    prefetch: u32,
    /// Prefetches sent and not yet answered, and answered ones waiting in
    /// the VMM for their miss: they hold no frame and no memslot, so a
    /// prefetched page that is never used costs nothing but its fetch.
    inflight: HashMap<(u64, u64), (u32, PendingCall)>,
    staged: HashMap<(u64, u64), Fetched>,
    staged_order: VecDeque<(u64, u64)>,
    /// Write-backs sent without waiting (a prefetched page's miss evicted a
    /// dirty page); checked at every miss and before a process ends.
    writebacks: Vec<(u32, u64, PendingCall)>,
}

impl ExCache {
    /// An ExCache of `pages` frames; checks that KVM has a memslot for each.
    pub fn new(
        kvm: &kvm_ioctls::Kvm,
        vm: Arc<VmFd>,
        fabric: Arc<Fabric>,
        window: Window,
        pages: u32,
        policy: Policy,
        prefetch: u32,
    ) -> Result<ExCache, String> {
        let slots = kvm.get_nr_memslots();
        if pages as usize + FIRST_SLOT as usize > slots {
            return Err(format!(
                "it needs one KVM memslot per page ({pages}), and this KVM has {slots}: use --excache {}M or less",
                ((slots as u64 - 1) * PAGE_U64) >> 20
            ));
        }
        let cap = kvm_enable_cap {
            cap: KVM_CAP_DISABLE_QUIRKS2,
            args: [KVM_X86_QUIRK_SLOT_ZAP_ALL, 0, 0, 0],
            ..Default::default()
        };
        if let Err(e) = vm.enable_cap(&cap) {
            log::warn!("excache: KVM keeps zapping every mapping when a memslot goes ({e}); evictions will cost more");
        }
        let host = HostFrames::map(pages as usize * PAGE)
            .map_err(|e| format!("cannot map {pages} page frames: {e}"))?;
        Ok(ExCache {
            vm,
            window,
            host,
            entries: vec![None; pages as usize],
            free: (0..pages).rev().collect(),
            map: HashMap::new(),
            order: Order::new(policy),
            processes: [None; MAX_SLOTS as usize],
            client: MemoryClient::new(fabric),
            stats: Stats::default(),
            prefetch,
            inflight: HashMap::new(),
            staged: HashMap::new(),
            staged_order: VecDeque::new(),
            writebacks: Vec::new(),
        })
    }

    /// Process `pid`, homed at memory component `home`, runs in `slot`; pid
    /// 0 ends the slot's process and drops its pages (its memory is freed
    /// at the memory components, so nothing is written back).
    pub fn set_process(&mut self, slot: u32, pid: u32, home: u32) -> Result<(), String> {
        let s = slot as u64;
        if s >= MAX_SLOTS {
            return Err(format!("slot {slot} is not below {MAX_SLOTS}"));
        }
        if let Some(old) = self.processes[slot as usize].take() {
            self.reap_writebacks(true).map_err(|e| e.to_string())?;
            self.inflight.retain(|(sl, _), _| *sl != s);
            self.staged.retain(|(sl, _), _| *sl != s);
            self.staged_order.retain(|(sl, _)| *sl != s);
            let frames: Vec<u32> = self
                .map
                .iter()
                .filter(|((sl, _), _)| *sl == s)
                .map(|(_, f)| *f)
                .collect();
            for f in frames {
                self.unmap(f).map_err(|e| e.to_string())?;
                self.entries[f as usize] = None;
                self.free.push(f);
            }
            self.order.retain(|f| self.entries[f as usize].is_some());
            self.map.retain(|(sl, _), _| *sl != s);
            self.client.forget(old.pid);
        }
        if pid != 0 {
            self.processes[slot as usize] = Some(Process { pid, home });
        }
        Ok(())
    }

    /// The counters, as the fabric's stats request answers them.
    pub fn report(&self) -> lego_proto::process::ExCacheStats {
        let s = &self.stats;
        lego_proto::process::ExCacheStats {
            pages: self.entries.len() as u64,
            cached: self.map.len() as u64,
            misses: s.misses,
            read_misses: s.read_misses,
            write_misses: s.write_misses,
            upgrades: s.upgrades,
            evictions: s.evictions,
            writebacks: s.writebacks,
            folded: s.folded,
            prefetched: s.prefetched,
            prefetch_hits: s.prefetch_hits,
            miss_p50_us: s.miss_us(0.5) as u64,
            miss_p99_us: s.miss_us(0.99) as u64,
            miss_histogram: s.histogram,
        }
    }

    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "excache: {} misses ({} read, {} write), {} first writes after a read, {} evictions, {} write-backs ({} folded into the fetch), {} prefetched ({} used), {} owner redirects; miss p50 {:.0} us, p99 {:.0} us; per miss in the VMM {:.1} us, of which {:.1} us fetching and {:.1} us changing memslots",
            s.misses,
            s.read_misses,
            s.write_misses,
            s.upgrades,
            s.evictions,
            s.writebacks,
            s.folded,
            s.prefetched,
            s.prefetch_hits,
            self.client.redirects,
            s.miss_us(0.5),
            s.miss_us(0.99),
            s.miss_ns as f64 / 1000.0 / s.misses.max(1) as f64,
            s.fetch_ns as f64 / 1000.0 / s.misses.max(1) as f64,
            s.slot_ns as f64 / 1000.0 / s.misses.max(1) as f64,
        )
    }

    /// Serves an access to the process window at `gpa` that exited.
    pub fn access(&mut self, gpa: u64, access: Access<'_>) -> Result<(), Fault> {
        let Some((slot, va)) = self.window.decode(gpa) else {
            return Err(Fault::NoProcess { slot: u64::MAX });
        };
        let vpage = va & !(PAGE_U64 - 1);
        let write = matches!(access, Access::Write(_));
        let frame = match self.map.get(&(slot, vpage)) {
            Some(&f) => f,
            None => self.miss(slot, vpage, write)?,
        };
        let entry = self.entries[frame as usize];
        if write && entry.is_some_and(|e| !e.writable) {
            let pid = self.processes[slot as usize].map_or(0, |p| p.pid);
            let owner = entry.map_or(0, |e| e.owner);
            return Err(Fault::Page {
                pid,
                va,
                access: "write",
                source: PageError::Refused {
                    component: owner,
                    status: EACCES,
                },
            });
        }
        let upgrade = write && entry.is_some_and(|e| !e.dirty);
        if upgrade {
            // The first write to a read-missed page: map it writable (KVM
            // cannot change a memslot's read-only flag in place).
            self.unmap(frame)?;
            self.set_slot(frame, self.window.gpa(slot, vpage), PAGE_U64, 0)?;
            self.order.touch(frame);
            self.stats.upgrades += 1;
        }
        let off = (va - vpage) as usize;
        let page = self.host.page(frame);
        match access {
            Access::Read(data) => {
                let n = data.len().min(PAGE - off);
                data[..n].copy_from_slice(&page[off..off + n]);
            }
            Access::Write(data) => {
                let n = data.len().min(PAGE - off);
                page[off..off + n].copy_from_slice(&data[..n]);
                if let Some(e) = self.entries[frame as usize].as_mut() {
                    e.dirty = true;
                }
            }
        }
        Ok(())
    }

    fn set_slot(&mut self, frame: u32, gpa: u64, size: u64, flags: u32) -> Result<(), Fault> {
        let t = Instant::now();
        let region = kvm_userspace_memory_region {
            slot: FIRST_SLOT + frame,
            flags,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: self.host.host_addr(frame),
        };
        // SAFETY: the frame's host memory lives as long as the ExCache,
        // which lives as long as the VM; the slot is removed before the
        // frame is reused.
        let r = unsafe { self.vm.set_user_memory_region(region) }.map_err(|source| Fault::Kvm {
            what: "change an ExCache memslot",
            source,
        });
        self.stats.slot_ns += t.elapsed().as_nanos() as u64;
        r
    }

    fn unmap(&mut self, frame: u32) -> Result<(), Fault> {
        self.set_slot(frame, 0, 0, 0)
    }

    /// A free frame, evicting one if needed. The victim's page is returned
    /// when it must be written back.
    fn take_frame(&mut self) -> Result<(u32, Option<WriteBack>), Fault> {
        if let Some(f) = self.free.pop() {
            return Ok((f, None));
        }
        let victim = self
            .order
            .victim()
            .expect("a full ExCache has frames in its order");
        let entry = self.entries[victim as usize]
            .take()
            .expect("every frame in the order holds a page");
        self.unmap(victim)?;
        self.map.remove(&(entry.slot, entry.vpage));
        self.stats.evictions += 1;
        let back = entry
            .dirty
            .then(|| (entry, self.host.page(victim).to_vec()));
        Ok((victim, back))
    }

    fn miss(&mut self, slot: u64, vpage: u64, write: bool) -> Result<u32, Fault> {
        let start = Instant::now();
        let Some(p) = self.processes[slot as usize] else {
            return Err(Fault::NoProcess { slot });
        };
        let fault = |source| Fault::Page {
            pid: p.pid,
            va: vpage,
            access: if write { "write" } else { "read" },
            source,
        };
        self.reap_writebacks(false)?;
        self.reap_prefetches();
        let (frame, back) = self.take_frame()?;
        let key = (slot, vpage);
        let t = Instant::now();
        let ready = match self.staged.remove(&key) {
            Some(got) => Some(got),
            None => self
                .inflight
                .remove(&key)
                .and_then(|(dst, call)| prefetched_page(dst, call.wait())),
        };
        self.stats.fetch_ns += t.elapsed().as_nanos() as u64;
        // A prefetched page was read without the write check.
        let ready = ready.filter(|(_, prot, _)| !write || prot & PROT_WRITE != 0);
        let fetched = match ready {
            Some(got) => {
                self.stats.prefetch_hits += 1;
                match back {
                    Some(wb) => match self.start_writeback(wb) {
                        Ok(()) => Ok(got),
                        Err(f) => {
                            self.free.push(frame);
                            return Err(f);
                        }
                    },
                    None => Ok(got),
                }
            }
            None => {
                let t = Instant::now();
                let r = self.fetch(p, vpage, write, back);
                self.stats.fetch_ns += t.elapsed().as_nanos() as u64;
                r
            }
        };
        let (owner, prot, page) = match fetched {
            Ok(v) => v,
            Err(e) => {
                self.free.push(frame);
                return Err(fault(e));
            }
        };
        let Some(bytes) = page.get(..PAGE) else {
            self.free.push(frame);
            return Err(fault(PageError::BadReply { component: owner }));
        };
        self.host.page(frame).copy_from_slice(bytes);
        // A write miss is dirty already and mapped writable; a read miss is
        // mapped read-only until its first write.
        let flags = if write { 0 } else { KVM_MEM_READONLY };
        self.set_slot(frame, self.window.gpa(slot, vpage), PAGE_U64, flags)?;
        self.entries[frame as usize] = Some(Entry {
            slot,
            vpage,
            pid: p.pid,
            home: p.home,
            owner,
            dirty: write,
            writable: prot & PROT_WRITE != 0,
        });
        self.map.insert((slot, vpage), frame);
        self.order.insert(frame);
        self.prefetch_after(p, slot, vpage);
        let s = &mut self.stats;
        s.misses += 1;
        if write {
            s.write_misses += 1;
        } else {
            s.read_misses += 1;
        }
        let us = start.elapsed().as_micros() as u64;
        let bucket = (63 - us.max(1).leading_zeros() as usize).min(s.histogram.len() - 1);
        s.histogram[bucket] += 1;
        s.miss_ns += start.elapsed().as_nanos() as u64;
        let sample = us.min(u32::MAX as u64) as u32;
        if s.samples_us.len() < MAX_SAMPLES {
            s.samples_us.push(sample);
        } else {
            let i = (s.misses as usize) % MAX_SAMPLES;
            s.samples_us[i] = sample;
        }
        Ok(frame)
    }

    /// Sends reads of the pages after `vpage` in its vRegion that are not
    /// cached, staged or on their way, up to the prefetch depth.
    fn prefetch_after(&mut self, p: Process, slot: u64, vpage: u64) {
        let limit = 4 * self.prefetch as usize;
        let dst = self.client.owner(p.pid, p.home, vpage);
        for k in 1..=self.prefetch as u64 {
            let q = vpage + k * PAGE_U64;
            if vregion(q) != vregion(vpage) || self.inflight.len() >= limit {
                break;
            }
            let key = (slot, q);
            if self.map.contains_key(&key)
                || self.staged.contains_key(&key)
                || self.inflight.contains_key(&key)
            {
                continue;
            }
            // A peek: a page never touched costs the memory component no
            // frame. The reply's protection says whether a write miss may
            // use it.
            let read = MemRequest {
                op: OP_READ,
                pid: p.pid,
                addr: q,
                flags: FLAG_PEEK,
                ..Default::default()
            };
            match self.client.start(dst, read, None) {
                Ok(call) => {
                    self.inflight.insert(key, (dst, call));
                    self.stats.prefetched += 1;
                }
                Err(_) => break,
            }
        }
    }

    /// Moves answered prefetches to the staging area (bounded: the oldest
    /// staged pages are dropped first).
    fn reap_prefetches(&mut self) {
        let done: Vec<((u64, u64), u32, CallReply)> = self
            .inflight
            .iter()
            .filter_map(|(k, (dst, call))| call.try_reply().map(|r| (*k, *dst, r)))
            .collect();
        for (key, dst, reply) in done {
            self.inflight.remove(&key);
            if let Some(got) = prefetched_page(dst, reply) {
                self.staged.insert(key, got);
                self.staged_order.push_back(key);
            }
        }
        let limit = 4 * self.prefetch as usize;
        while self.staged.len() > limit {
            match self.staged_order.pop_front() {
                Some(k) => {
                    self.staged.remove(&k);
                }
                None => break,
            }
        }
        if self.staged_order.len() > 2 * limit + 64 {
            let staged = &self.staged;
            self.staged_order.retain(|k| staged.contains_key(k));
        }
    }

    /// Writes a dirty victim back without waiting for the answer. The
    /// memory component serves one peer's requests in order, so a later
    /// fetch of the page sees the write.
    fn start_writeback(&mut self, (victim, data): WriteBack) -> Result<(), Fault> {
        let wb = MemRequest {
            op: OP_WRITE,
            pid: victim.pid,
            addr: victim.vpage,
            flags: FLAG_WRITEBACK,
            ..Default::default()
        };
        let call = self
            .client
            .start(victim.owner, wb, Some(&data))
            .map_err(|source| Fault::Page {
                pid: victim.pid,
                va: victim.vpage,
                access: "write-back",
                source,
            })?;
        self.writebacks.push((victim.pid, victim.vpage, call));
        self.stats.writebacks += 1;
        Ok(())
    }

    /// Checks the answers of write-backs sent without waiting (all of
    /// them, waiting, with `all`). A failed one stops its process.
    fn reap_writebacks(&mut self, all: bool) -> Result<(), Fault> {
        let mut i = 0;
        while i < self.writebacks.len() {
            let reply = if all {
                Some(self.writebacks[i].2.wait_ref())
            } else {
                self.writebacks[i].2.try_reply()
            };
            let Some(reply) = reply else {
                i += 1;
                continue;
            };
            let (pid, va, call) = self.writebacks.swap_remove(i);
            if let Err(source) = client::check_reply(call.dst(), reply) {
                return Err(Fault::Page {
                    pid,
                    va,
                    access: "write-back",
                    source,
                });
            }
        }
        Ok(())
    }

    /// Fetches pid's page, writing `back` back first (in the same request
    /// when one component owns both).
    fn fetch(
        &mut self,
        p: Process,
        vpage: u64,
        write: bool,
        back: Option<WriteBack>,
    ) -> Result<Fetched, PageError> {
        let read = MemRequest {
            op: OP_READ,
            pid: p.pid,
            addr: vpage,
            flags: if write { FLAG_FOR_WRITE } else { 0 },
            ..Default::default()
        };
        let Some((victim, data)) = back else {
            return self.client.request(p.home, read, None, true).map(fetched);
        };
        let same = victim.pid == p.pid && victim.owner == self.client.owner(p.pid, p.home, vpage);
        if same {
            let both = MemRequest {
                op: OP_READ_WRITE,
                arg: victim.vpage,
                flags: read.flags | FLAG_WRITEBACK,
                ..read
            };
            match self.client.request(victim.owner, both, Some(&data), false) {
                Ok(out) => {
                    self.stats.writebacks += 1;
                    self.stats.folded += 1;
                    return Ok(fetched(out));
                }
                // Redirected: the pages have different owners after all.
                Err(PageError::Refused {
                    status: NOT_OWNER, ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let wb = MemRequest {
            op: OP_WRITE,
            pid: victim.pid,
            addr: victim.vpage,
            flags: FLAG_WRITEBACK,
            ..Default::default()
        };
        self.client.request(victim.home, wb, Some(&data), true)?;
        self.stats.writebacks += 1;
        self.client.request(p.home, read, None, true).map(fetched)
    }
}

/// The page a prefetch brought, if it brought one.
fn prefetched_page(dst: u32, reply: CallReply) -> Option<Fetched> {
    let body = reply.ok()?;
    let (head, rest) = <MemReply as zerocopy::FromBytes>::read_from_prefix(&body).ok()?;
    (head.status == OK && rest.len() >= PAGE)
        .then(|| (dst, head.value as u32, rest[..PAGE].to_vec()))
}

fn fetched((dst, head, rest): (u32, MemReply, Vec<u8>)) -> Fetched {
    (dst, head.value as u32, rest)
}
