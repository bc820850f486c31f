//! The guest's memory calls as the cache follows them (mmap, munmap,
//! mprotect, mremap, fork, a program's load, mapped files): pages written
//! back before, dropped or protected after.

use super::*;

impl ExCache {
    /// A memory call for the process in `slot`, made by the VMM on the
    /// guest's behalf so that the cache follows it: write-backs in flight
    /// land first (none can reach a range after it is unmapped and mapped
    /// again), pages a move copies are written back before, and pages the
    /// call unmaps or protects are dropped or protected after. Returns the
    /// reply head and what followed it.
    pub fn memory_call(
        &self,
        slot: u32,
        req: MemRequest,
        tail: &[u8],
    ) -> Result<(MemReply, ReplyBytes), Fault> {
        let s = slot as u64;
        let p = self.lock().processes.get(slot as usize).copied().flatten();
        let Some(p) = p else {
            return Err(Fault::host(
                "make a memory call",
                format!("no process runs in window slot {slot}"),
            ));
        };
        let range = page_range;
        // A mapped file's pages hold no frame at the memory component: a
        // call that would let them be written or move them has them
        // copied there first.
        if req.op == OP_MREMAP || (req.op == OP_MPROTECT && req.prot & PROT_WRITE != 0) {
            let (a, b) = range(req.addr, req.len);
            self.materialize(slot, a, b)?;
        }
        if req.op == OP_MREMAP {
            let (a, b) = range(req.addr, req.len);
            self.change_range(s, a, b, RangeChange::Flush)?;
        }
        if req.op == OP_EXIT {
            // Before the memory components forget it (see `State::ended`).
            self.lock().ended.insert(p.pid);
        }
        if req.op == OP_FORK {
            // The memory components copy what they hold: all of it first.
            self.change_range(s, 0, u64::MAX, RangeChange::Flush)?;
        }
        // A call that moves or ends mappings makes every fresh page of the
        // process unknown; the ranges others change are forgotten with
        // their cached pages (change_range), and a new anonymous mapping
        // is learnt after it is made.
        let follows_ranges = matches!(
            req.op,
            OP_MMAP | OP_MUNMAP | OP_MPROTECT | OP_DISCARD | OP_BRK | OP_FORK | OP_MAPS | OP_STATS
        );
        if !follows_ranges {
            self.lock().fresh.clear(s);
        }
        self.drain_writebacks()?;
        let mut bytes = zerocopy::IntoBytes::as_bytes(&req).to_vec();
        bytes.extend_from_slice(tail);
        let call_fault = |source| Fault::Page {
            pid: p.pid,
            va: req.addr,
            access: "memory call",
            source,
        };
        let reply = self.client.call(p.home, &bytes).map_err(call_fault)?;
        let (head, rest) = reply;
        if head.status != OK {
            return Ok((head, rest));
        }
        self.after_call(s, &req, &head)?;
        Ok((head, rest))
    }

    /// Several fixed mappings of the process in `slot` (an execve's), sent
    /// to its home together: one round trip where [`Self::memory_call`]
    /// takes one each (about 130 us here). Anything else, or ranges that
    /// meet (their order would matter), goes one call at a time.
    pub fn memory_calls(&self, slot: u32, reqs: &[MemRequest]) -> Result<Vec<MemReply>, Fault> {
        if !go_together(reqs) {
            return reqs
                .iter()
                .map(|r| self.memory_call(slot, *r, &[]).map(|(head, _)| head))
                .collect();
        }
        let p = self.lock().processes.get(slot as usize).copied().flatten();
        let Some(p) = p else {
            return Err(Fault::host(
                "make a memory call",
                format!("no process runs in window slot {slot}"),
            ));
        };
        self.drain_writebacks()?;
        let bytes: Vec<Vec<u8>> = reqs
            .iter()
            .map(|r| zerocopy::IntoBytes::as_bytes(r).to_vec())
            .collect();
        let replies = self.client.call_many(p.home, &bytes);
        let mut heads = Vec::with_capacity(reqs.len());
        for (req, reply) in reqs.iter().zip(replies) {
            let (head, _) = reply.map_err(|source| Fault::Page {
                pid: p.pid,
                va: req.addr,
                access: "memory call",
                source,
            })?;
            if head.status == OK {
                self.after_call(slot as u64, req, &head)?;
            }
            heads.push(head);
        }
        Ok(heads)
    }

    /// What the cache does once the home made a memory call (`head`'s
    /// status OK): ranges that changed are dropped or protected, new
    /// memory known fresh, a fork's child seeded.
    pub(super) fn after_call(
        &self,
        s: u64,
        req: &MemRequest,
        head: &MemReply,
    ) -> Result<(), Fault> {
        let range = page_range;
        let after = match req.op {
            OP_MUNMAP => Some((range(req.addr, req.len), RangeChange::Drop)),
            OP_MMAP => Some((range(head.value, req.len), RangeChange::Drop)),
            OP_MPROTECT => Some((range(req.addr, req.len), RangeChange::Protect(req.prot))),
            OP_DISCARD => Some((range(req.addr, req.len), RangeChange::Drop)),
            OP_MREMAP if head.value != req.addr => {
                Some((range(req.addr, req.len), RangeChange::Drop))
            }
            OP_MREMAP if req.arg < req.len => Some((
                range(req.addr + req.arg, req.len - req.arg),
                RangeChange::Drop,
            )),
            // A break that shrank: what lay between the new break and the
            // old one (the caller passes it in `arg`) is gone.
            OP_BRK if head.value < req.arg => Some((
                (
                    (head.value + PAGE_U64 - 1) & !(PAGE_U64 - 1),
                    (req.arg + PAGE_U64 - 1) & !(PAGE_U64 - 1),
                ),
                RangeChange::Drop,
            )),
            _ => None,
        };
        {
            // Before the cached pages go (change_range): a miss after this
            // asks the memory component.
            let mut st = self.lock();
            match (req.op, &after) {
                (OP_MPROTECT, Some(((a, b), _))) => st.filed.set_prot(s, *a, *b, req.prot & 7),
                (OP_DISCARD, _) => {} // The file's bytes again, as Linux.
                (OP_EXIT, _) => st.filed.clear(s),
                (_, Some(((a, b), _))) => st.filed.remove(s, *a, *b),
                _ => {}
            }
        }
        if let Some(((a, b), change)) = after {
            self.change_range(s, a, b, change)?;
        }
        if req.op == OP_MMAP {
            // A new anonymous mapping: no page of it holds a frame anywhere.
            let (a, b) = range(head.value, req.len);
            self.lock().fresh.insert(s, a, b, req.prot & 7);
        }
        if req.op == OP_BRK && head.value > req.arg {
            // A break that grew: the pages above the old break's page are
            // new to the heap's VMA, so none holds a frame (a shrink gave
            // its pages back), as with a new mapping. Programs whose malloc
            // grows the break (CPython's) then take their new heap without
            // a round trip a page.
            let (a, b) = (range(req.arg, 0).1, range(head.value, 0).1);
            self.lock().fresh.insert(s, a, b, PROT_READ | PROT_WRITE);
        }
        if req.op == OP_EXIT {
            self.drain_writebacks()?;
        }
        if req.op == OP_FORK {
            self.inherit_files(s, req.arg as u32);
            self.seed_child(s, req.arg as u32);
        }
        Ok(())
    }

    /// After a fork, the child's pages of mapped files are read from the
    /// same files: its memory component copied the parent's, which held
    /// no frame for them.
    pub(super) fn inherit_files(&self, parent: u64, child_pid: u32) {
        let mut st = self.lock();
        let child = st
            .processes
            .iter()
            .position(|p| p.is_some_and(|p| p.pid == child_pid));
        if let Some(child) = child {
            st.filed.inherit(parent, child as u64);
        }
    }

    /// A read-only mapping of a host file in the process in `slot`:
    /// `filesz` bytes of `file` from `offset`, at `va` (a page), the rest
    /// of the last page zeros. Nothing is copied: a miss reads the file
    /// (see [`filed`]). Cached pages there, which held what was mapped
    /// before, go.
    pub fn map_file(
        &self,
        slot: u32,
        va: u64,
        file: Arc<std::fs::File>,
        offset: u64,
        filesz: u64,
        prot: u32,
    ) -> Result<(), Fault> {
        let s = slot as u64;
        let end = va.saturating_add(filesz).saturating_add(PAGE_U64 - 1) & !(PAGE_U64 - 1);
        {
            let mut st = self.lock();
            if st.processes.get(slot as usize).copied().flatten().is_none() {
                return Err(Fault::host(
                    "map a file",
                    format!("no process runs in window slot {slot}"),
                ));
            }
            let source = Source {
                file,
                offset,
                file_end: va.saturating_add(filesz),
                prot: prot & !PROT_WRITE,
            };
            st.filed.insert(s, va, end, source);
        }
        self.change_range(s, va, end, RangeChange::Drop)
    }

    /// Copies the pages of mapped files in [start, end) of `slot` to their
    /// memory components, which from then on hold them as any other page.
    pub(super) fn materialize(&self, slot: u32, start: u64, end: u64) -> Result<(), Fault> {
        let pieces = self.lock().filed.within(slot as u64, start, end);
        for piece in pieces {
            let mut at = piece.start;
            while at < piece.end {
                let to = (at + (1 << 20)).min(piece.end);
                let bytes = read_pieces(&piece, at, to)
                    .map_err(|e| Fault::host("read a page of a mapped file", e))?;
                let pages: Vec<LoadPage> = bytes
                    .chunks(PAGE)
                    .enumerate()
                    .map(|(i, c)| (at + i as u64 * PAGE_U64, c.to_vec()))
                    .collect();
                self.load(slot, &pages, piece.source.prot)?;
                at = to;
            }
        }
        Ok(())
    }

    /// After a fork, the child's cache starts with copies of the parent's
    /// cached clean pages (its program's code and constants, and its data,
    /// heap and stack as the fork wrote them back), as much as fits in free
    /// room, up to [`SEED_MAX`] pages: what the memory component now holds
    /// for the child (the fork shared the parent's frames), so the child
    /// runs without a miss a page it shares with its parent. Best effort:
    /// a vRegion the child cannot have (no room for its memslot) is left
    /// out.
    pub(super) fn seed_child(&self, parent: u64, child_pid: u32) {
        let st = self.lock();
        let Some(child) = st
            .processes
            .iter()
            .position(|p| p.is_some_and(|p| p.pid == child_pid))
        else {
            return;
        };
        let Some(cp) = st.processes[child] else {
            return;
        };
        let room = st
            .capacity
            .saturating_sub(st.pages.len() + st.demand)
            .min(SEED_MAX);
        // Pages write-protected since they were fetched or written back
        // (the fork's flush wrote back and protected them all): any write
        // since would have faulted and made the page dirty, under this
        // lock. So each holds what the memory component gave the child.
        let keys: Vec<(u64, bool)> = st
            .pages
            .range((parent, 0)..(parent + 1, 0))
            .filter(|(k, p)| !p.mapped_writable() && !st.sample.parked.contains_key(k))
            .map(|(k, p)| (k.1, p.writable))
            .take(room)
            .collect();
        drop(st);
        self.ensure_vregions(child as u32, keys.iter().map(|&(va, _)| va));
        let mut st = self.lock();
        let mut i = 0;
        while i < keys.len() {
            // A run of neighbours in one vRegion, of one protection: one
            // copy.
            let (va, writable) = keys[i];
            let mut n = 1;
            while i + n < keys.len()
                && keys[i + n] == (va + n as u64 * PAGE_U64, writable)
                && vregion(keys[i + n].0) == vregion(va)
            {
                n += 1;
            }
            i += n;
            let ckey = (child as u64, va);
            let Some(from) = st.regions.host_of(parent, va) else {
                continue;
            };
            // Still as they were at the parent, and nothing of the child's
            // there yet (the lock was let go meanwhile).
            let whole = (0..n as u64).all(|j| {
                let (pk, ck) = ((parent, va + j * PAGE_U64), (ckey.0, va + j * PAGE_U64));
                st.pages
                    .get(&pk)
                    .is_some_and(|p| !p.mapped_writable() && p.writable == writable)
                    && !st.sample.parked.contains_key(&pk)
                    && !st.pages.contains_key(&ck)
                    && !st.loading.contains_key(&ck)
            });
            if !whole {
                continue;
            }
            // SAFETY: cached pages of the parent's live reservation,
            // write-protected (a write waits for this lock), kept from
            // eviction by the lock while they are read.
            let bytes = unsafe { std::slice::from_raw_parts(from as *const u8, n * PAGE) };
            match self.install_clean(&mut st, ckey, cp, writable, bytes) {
                Ok(copied) => st.stats.seeded += copied,
                Err(e) => {
                    log::debug!("excache: seeding a forked child stopped: {e}");
                    return;
                }
            }
        }
    }

    /// Writes whole pages into the process in `slot` at its memory
    /// components, whatever their protection (execve loading a writable
    /// data segment, a private writable mapping of a file, a file's pages
    /// an mprotect or mremap needs there: [`Self::materialize`]), many at
    /// a time: runs of
    /// up to [`MAX_RUN`] pages of one owner in one OP_WRITE_MANY, a few
    /// runs in flight (a dynamically linked program maps its libraries
    /// this way: page by page, libc's 1.9 MiB took 50 ms). Cached copies
    /// are dropped first. Pages of a readable, not writable segment
    /// (`prot`) are then cached too ([`Self::keep_loaded`]).
    pub fn load(&self, slot: u32, pages: &[LoadPage], prot: u32) -> Result<(), Fault> {
        const WINDOW: usize = 4;
        let p = self.lock().processes.get(slot as usize).copied().flatten();
        let Some(p) = p else {
            return Err(Fault::host(
                "load a program",
                format!("no process runs in window slot {slot}"),
            ));
        };
        for &(va, _) in pages {
            self.change_range(slot as u64, va, va + PAGE_U64, RangeChange::Drop)?;
        }
        let fault = |va, source| Fault::Page {
            pid: p.pid,
            va,
            access: "load",
            source,
        };
        // Runs of consecutive pages with one owner.
        let mut runs: Vec<(u32, &[LoadPage])> = Vec::new();
        let mut at = 0;
        while at < pages.len() {
            let dst = self.client.owner(p.pid, p.home, pages[at].0);
            let mut end = at + 1;
            while end < pages.len()
                && end - at < MAX_RUN
                && self.client.owner(p.pid, p.home, pages[end].0) == dst
            {
                end += 1;
            }
            runs.push((dst, &pages[at..end]));
            at = end;
        }
        let mut inflight: std::collections::VecDeque<(&[LoadPage], Pending)> =
            std::collections::VecDeque::new();
        // Pages another component owns (sent on through the home).
        let mut redirected: HashSet<u64> = HashSet::new();
        let mut next = runs.into_iter();
        loop {
            while inflight.len() < WINDOW {
                let Some((dst, run)) = next.next() else {
                    break;
                };
                let req = MemRequest {
                    op: OP_WRITE_MANY,
                    pid: p.pid,
                    len: run.len() as u64,
                    flags: FLAG_WRITEBACK,
                    ..Default::default()
                };
                let body: Vec<(u64, &[u8])> = run.iter().map(|(va, d)| (*va, &d[..])).collect();
                let body = client::write_many_body(&body);
                inflight.push_back((run, self.client.start(dst, req, Some(&body))));
            }
            let Some((run, call)) = inflight.pop_front() else {
                {
                    // The memory components hold these pages now, where a
                    // file's were read before.
                    let mut st = self.lock();
                    for &(va, _) in pages {
                        st.filed.remove(slot as u64, va, va + PAGE_U64);
                    }
                }
                // Readable and not writable only: a cached page can be
                // read (PROT_NONE would not fault) and must not change.
                if prot & (PROT_READ | PROT_WRITE) == PROT_READ {
                    self.keep_loaded(slot, p, pages, &redirected);
                }
                return Ok(());
            };
            let (dst, reply) = self.client.wait(call);
            let statuses =
                client::statuses(dst, reply, run.len()).map_err(|e| fault(run[0].0, e))?;
            for ((va, data), status) in run.iter().zip(statuses) {
                match status {
                    OK => {}
                    // Owned by another component: the home redirects.
                    NOT_OWNER => {
                        redirected.insert(*va);
                        let wb = MemRequest {
                            op: OP_WRITE,
                            pid: p.pid,
                            addr: *va,
                            flags: FLAG_WRITEBACK,
                            ..Default::default()
                        };
                        self.client
                            .request(p.home, wb, Some(data))
                            .map_err(|e| fault(*va, e))?;
                    }
                    status => {
                        return Err(fault(
                            *va,
                            PageError::Refused {
                                component: dst,
                                status,
                            },
                        ))
                    }
                }
            }
        }
    }

    /// The vRegions of `vas` (in order) reserved for `slot`, for pages the
    /// cache installs before the guest maps them. Best effort: one with no
    /// room for its memslot stays out, and so do its pages.
    pub(super) fn ensure_vregions(&self, slot: u32, vas: impl Iterator<Item = u64>) {
        let mut vregions: Vec<u64> = vas.map(vregion).collect();
        vregions.dedup();
        for index in vregions {
            if let Err(e) = self.ensure_vregion(slot, index) {
                log::debug!("excache: pages of vRegion {index} are not installed ahead: {e}");
            }
        }
    }

    /// Installs `bytes` at `key` as clean pages, as the memory component
    /// holds them (copies for a forked child, a segment execve loaded), of
    /// a mapping that allows writes or not: writable ones with a hash of
    /// their content, as a page fetched for a read.
    pub(super) fn install_clean(
        &self,
        st: &mut State,
        key: Key,
        p: Process,
        writable: bool,
        bytes: &[u8],
    ) -> Result<u64, Fault> {
        let how = Installed {
            owner: self.client.owner(p.pid, p.home, key.1),
            writable,
            dirty: false,
            fresh: false,
        };
        self.install(st, key, p, how, bytes)
    }

    /// After a load of read-only pages (a file's, copied to the memory
    /// component for an mremap), they stay cached (clean, write-protected:
    /// what its memory component now holds), as many as fit in free room,
    /// at most [`SEED_MAX`] for each load. Best effort: a vRegion with no room for its memslot is
    /// left out, and pages another component owns are not kept.
    pub(super) fn keep_loaded(
        &self,
        slot: u32,
        p: Process,
        pages: &[LoadPage],
        redirected: &HashSet<u64>,
    ) {
        let room = {
            let st = self.lock();
            st.capacity
                .saturating_sub(st.pages.len() + st.demand)
                .min(SEED_MAX)
        };
        let pages = &pages[..pages.len().min(room)];
        self.ensure_vregions(slot, pages.iter().map(|&(va, _)| va));
        let s = slot as u64;
        let mut st = self.lock();
        let free = |st: &State, va: u64| {
            let key = (s, va);
            !redirected.contains(&va)
                && !st.pages.contains_key(&key)
                && !st.loading.contains_key(&key)
                && !st.flushing.contains(&key)
        };
        let mut i = 0;
        while i < pages.len() {
            let va = pages[i].0;
            if !free(&st, va) {
                i += 1;
                continue;
            }
            // A run of neighbours in one vRegion: one copy.
            let mut n = 1;
            while i + n < pages.len()
                && pages[i + n].0 == va + n as u64 * PAGE_U64
                && vregion(pages[i + n].0) == vregion(va)
                && free(&st, pages[i + n].0)
            {
                n += 1;
            }
            let run: Vec<u8> = pages[i..i + n]
                .iter()
                .map(|(_, d)| d.as_slice())
                .collect::<Vec<_>>()
                .concat();
            i += n;
            match self.install_clean(&mut st, (s, va), p, false, &run) {
                Ok(n) => st.stats.kept_loaded += n,
                Err(e) => {
                    log::debug!("excache: keeping a loaded segment stopped: {e}");
                    return;
                }
            }
        }
    }

    /// The cached pages of [start, end) of `slot` follow a memory call
    /// (see [`RangeChange`]). Waits for what it writes back.
    pub(super) fn change_range(
        &self,
        s: u64,
        start: u64,
        end: u64,
        change: RangeChange,
    ) -> Result<(), Fault> {
        let mut st = self.lock();
        let keys: Vec<Key> = st
            .pages
            .range((s, start)..(s, end))
            .map(|(k, _)| *k)
            .collect();
        if change != RangeChange::Flush {
            // Unmapped, discarded, written by a load or reprotected: what
            // was fresh there is no longer known to be.
            st.fresh.remove(s, start, end);
            for (k, cancelled) in st.loading.iter_mut() {
                if k.0 == s && k.1 >= start && k.1 < end {
                    *cancelled = true;
                }
            }
        }
        let mut backs = Vec::new();
        for key in keys {
            self.unpark(&mut st, key, false)?;
            let Some(host) = st.regions.host_of(key.0, key.1) else {
                continue;
            };
            let page = st.pages[&key];
            match change {
                RangeChange::Drop => {
                    st.pages.remove(&key);
                    st.order.remove(key);
                    // SAFETY: one page of our own reservation.
                    unsafe { libc::madvise(host as *mut libc::c_void, PAGE, libc::MADV_DONTNEED) };
                }
                RangeChange::Protect(prot) if prot & 3 == 0 => {
                    // No access at all: the next touch must fault, and the
                    // data must survive (written back now).
                    st.order.remove(key);
                    if let Some(wb) = self.evict(&mut st, key)? {
                        backs.push(wb);
                    }
                }
                RangeChange::Protect(prot) => {
                    let writable = prot & PROT_WRITE != 0;
                    if !writable && page.mapped_writable() {
                        // Written back now and write-protected: the next
                        // write faults and finds the page not writable.
                        backs.extend(self.clean(&mut st, key, host, page)?);
                    }
                    if let Some(pg) = st.pages.get_mut(&key) {
                        pg.writable = writable;
                    }
                }
                RangeChange::Flush => {
                    if page.mapped_writable() {
                        backs.extend(self.clean(&mut st, key, host, page)?);
                    }
                }
            }
        }
        self.start_writebacks(&mut st, backs)?;
        drop(st);
        self.drain_writebacks()
    }

    /// Write-protects a page mapped writable; if it was written (or its
    /// content changed), returns its write-back, and it stays `flushing`
    /// until the write-back is answered. It stays cached, clean.
    pub(super) fn clean(
        &self,
        st: &mut State,
        key: Key,
        host: u64,
        page: Page,
    ) -> Result<Option<WriteBack>, Fault> {
        self.uffd
            .protect(host, PAGE_U64, true)
            .map_err(|e| Fault::host("write-protect a page", e))?;
        // SAFETY: a page of a live reservation, protected now.
        let bytes = unsafe { std::slice::from_raw_parts(host as *const u8, PAGE) };
        let unchanged = !page.dirty && page.sum == Some(st.sums.of(bytes));
        if let Some(pg) = st.pages.get_mut(&key) {
            pg.dirty = false;
            pg.sum = None;
            if !unchanged {
                // Its memory component has a frame for it now.
                pg.fresh = false;
            }
        }
        if unchanged {
            return Ok(None);
        }
        let data = bytes.to_vec();
        st.flushing.insert(key);
        Ok(Some(WriteBack { key, page, data }))
    }
}
