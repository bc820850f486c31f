//! Demand misses: a page fetched from its owner (or made fresh here, or
//! read from a mapped file) and installed where the vCPU faulted.

use super::*;

impl ExCache {
    /// A demand miss: fetch the page (making room first), install it, and
    /// prefetch the next ones.
    pub(super) fn miss(&self, mut st: MutexGuard<'_, State>, key: Key, f: uffd::Fault) {
        let start = Instant::now();
        let (slot, vpage) = key;
        let Some(p) = st.processes[slot as usize].filter(|p| !st.ended.contains(&p.pid)) else {
            let _ = self.uffd.wake(f.addr, PAGE_U64);
            return;
        };
        let write = f.write;
        if let Some(prot) = st.fresh.prot_of(slot, vpage) {
            let allowed = if write {
                prot & PROT_WRITE != 0
            } else {
                prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
            };
            if allowed {
                return self.miss_fresh(st, key, p, f);
            }
        }
        // A write to a file's page is the memory component's to refuse:
        // these mappings do not allow writes.
        if !write {
            if let Some(piece) = st.filed.at(slot, vpage) {
                if piece.source.prot & (PROT_READ | PROT_EXEC) != 0 {
                    return self.miss_filed(st, key, p, f);
                }
            }
        }
        st.loading.insert(key, false);
        st.demand += 1;
        drop(st);

        let t = Instant::now();
        let fetched = self.fetch(p, vpage, write);
        let fetch_ns = t.elapsed().as_nanos() as u64;

        let mut st = self.lock();
        st.stats.fetch_ns += fetch_ns;
        let cancelled = end_demand(&mut st, key);
        let (owner, prot, page) = match fetched {
            Ok(v) => v,
            Err(fault) => {
                drop(st);
                // The vCPU stays blocked on the fault until the verdict's
                // kick interrupts it there: a wake would let it run on and
                // take the verdict at some later instruction.
                self.fail(f.tid, key, write, fault);
                return;
            }
        };
        if cancelled || st.processes[slot as usize] != Some(p) {
            drop(st);
            let _ = self.uffd.wake(f.addr, PAGE_U64);
            return;
        }
        let Some(bytes) = page.get(..PAGE) else {
            drop(st);
            let fault = Fault::Page {
                pid: p.pid,
                va: vpage,
                access: if write { "write" } else { "read" },
                source: PageError::BadReply { component: owner },
            };
            self.fail(f.tid, key, write, fault);
            return;
        };
        let writable = prot & PROT_WRITE != 0;
        if write && !writable {
            // The memory component checks FLAG_FOR_WRITE; this is belt and braces.
            drop(st);
            let fault = Fault::write_refused(p.pid, vpage, owner);
            self.fail(f.tid, key, write, fault);
            return;
        }
        let how = Installed {
            owner,
            writable,
            dirty: write,
            fresh: false,
        };
        if let Err(fault) = self.install(&mut st, key, p, how, bytes) {
            drop(st);
            self.fail(f.tid, key, write, fault);
            return;
        }
        st.stats.record_miss(write, start);
        // Read ahead only for a scan: a miss just past an earlier one or
        // past what was read ahead after it (`scans`: several interleaved
        // scans, as a copy makes). Random misses would only push useful
        // pages out. Each miss of a scan doubles its window (up to 16
        // times --excache-prefetch), as Linux's readahead does: a long
        // scan then waits for one round trip per 256 pages.
        let prefetch = self.prefetch as u64;
        let ahead = st.scans[slot as usize].on_miss(
            vpage,
            PAGE_U64,
            prefetch,
            prefetch * MAX_WINDOW_GROWTH,
        );
        let candidates = if ahead.pages > 0 {
            self.prefetch_candidates(&mut st, key, ahead)
        } else {
            Vec::new()
        };
        drop(st);
        self.prefetch(p, slot, candidates);
    }

    /// Puts pages (`bytes`, whole pages from `key` on) in place and wakes
    /// whoever waits on them. Returns how many were installed: the copy
    /// stops at a page another fault installed meanwhile.
    pub(super) fn install(
        &self,
        st: &mut State,
        key: Key,
        p: Process,
        how: Installed,
        bytes: &[u8],
    ) -> Result<u64, Fault> {
        let Some(host) = st.regions.host_of(key.0, key.1) else {
            return Ok(0);
        };
        let t = Instant::now();
        let copied = self
            .uffd
            .copy(host, bytes, !how.writable)
            .map_err(|e| Fault::host("install a page", e))?
            / PAGE_U64;
        st.stats.install_ns += t.elapsed().as_nanos() as u64;
        for i in 0..copied {
            let k = (key.0, key.1 + i * PAGE_U64);
            if !how.fresh {
                // What the memory component sent counts from now on.
                st.fresh.remove(k.0, k.1, k.1 + PAGE_U64);
            }
            st.pages.insert(
                k,
                Page {
                    pid: p.pid,
                    home: p.home,
                    owner: how.owner,
                    dirty: how.dirty,
                    writable: how.writable,
                    fresh: how.fresh,
                    sum: (how.writable && !how.dirty).then(|| {
                        let at = i as usize * PAGE;
                        st.sums.of(&bytes[at..at + PAGE])
                    }),
                },
            );
            st.order.insert(k);
        }
        Ok(copied)
    }

    /// A miss on a fresh page: zeros for it and the fresh pages after it
    /// (one `UFFDIO_COPY`), no round trip. They are installed writable
    /// when their mapping allows writes, and counted dirty (a write to
    /// them is not seen); at eviction one still all zeros is not written
    /// back.
    ///
    /// A miss just past the fresh pages this slot got last is a write scan
    /// over fresh memory (a heap, a buffer or an array being filled): once
    /// its vCPU runs on, the next fresh pages go in ahead of it, twice as
    /// many at each such miss (up to [`FRESH_AHEAD_GROWTH`] runs), as a
    /// scan's read-ahead grows. Each run's copy wakes a fault that came
    /// meanwhile on it, so a vCPU that catches up waits for one run only.
    ///
    /// A miss just below the fresh pages this slot got last is a write
    /// scan running down (a loop counting down, a stack growing): its run
    /// is the fresh pages below the page and the page itself, so it too
    /// takes a fault per run, not per page.
    pub(super) fn miss_fresh<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        key: Key,
        p: Process,
        f: uffd::Fault,
    ) {
        let start = Instant::now();
        let (slot, va) = key;
        let s = slot as usize;
        let most = FRESH_RUN.min((st.capacity as u64 / 4).max(1));
        if va.checked_add(PAGE_U64) == Some(st.fresh_start[s]) {
            let from = fresh_below(&st, key, most);
            let n = (va - from) / PAGE_U64 + 1;
            let copied = match self.install_fresh(&mut st, (slot, from), p, n) {
                Ok(n) => n,
                Err(fault) => {
                    drop(st);
                    self.fail(f.tid, key, f.write, fault);
                    return;
                }
            };
            if copied > 0 {
                st.stats.record_miss(f.write, start);
                st.fresh_start[s] = from;
            }
            if copied < n {
                // The copy stopped below the page: its fault retries.
                drop(st);
                let _ = self.uffd.wake(f.addr, PAGE_U64);
            }
            return;
        }
        let copied = match self.install_fresh(&mut st, key, p, most) {
            Ok(n) => n,
            Err(fault) => {
                drop(st);
                self.fail(f.tid, key, f.write, fault);
                return;
            }
        };
        if copied == 0 {
            // Nothing installed here woke the fault: let it retry.
            drop(st);
            let _ = self.uffd.wake(f.addr, PAGE_U64);
            return;
        }
        st.stats.record_miss(f.write, start);
        st.fresh_start[s] = va;
        let end = va + copied * PAGE_U64;
        if va != st.fresh_end[s] {
            st.fresh_end[s] = end;
            st.fresh_window[s] = 0;
            return;
        }
        let window = (st.fresh_window[s].max(FRESH_RUN) * 2)
            .min(FRESH_RUN * FRESH_AHEAD_GROWTH)
            .min(st.capacity as u64 / 4);
        st.fresh_window[s] = window;
        let stop = end + window * PAGE_U64;
        let mut at = end;
        while at < stop {
            // Other vCPUs' faults get the lock between runs.
            drop(st);
            st = self.lock();
            if st.processes[s] != Some(p) || st.ended.contains(&p.pid) {
                return;
            }
            let most = most.min((stop - at) / PAGE_U64);
            match self.install_fresh(&mut st, (slot, at), p, most) {
                Ok(0) => break,
                Ok(n) => at += n * PAGE_U64,
                Err(e) => {
                    // Still fresh at the memory component; a miss gets them.
                    // A write-back that found no frame kills its process
                    // (`oom_kill`, which says so).
                    st.fresh_end[s] = at;
                    drop(st);
                    if !self.oom_kill(&e) {
                        log::warn!("excache: fresh pages ahead: {e}");
                    }
                    return;
                }
            }
        }
        st.fresh_end[s] = at;
    }

    /// Zeros for the fresh pages from `key` on: at most `most`, not past
    /// the vRegion, stopping at one that is not fresh, or is cached or on
    /// its way. Room is made first; the copy wakes faults waiting on the
    /// pages, then the victims go back. Returns how many went in.
    pub(super) fn install_fresh(
        &self,
        st: &mut State,
        key: Key,
        p: Process,
        most: u64,
    ) -> Result<u64, Fault> {
        let (slot, va) = key;
        let limit = (vregion(va) + 1) << VREGION_SHIFT;
        let n = free_run(st, key, most, limit, |q| {
            st.fresh.prot_of(slot, q).is_some()
        });
        if n == 0 {
            return Ok(0);
        }
        let Some(run) = st.fresh.take(slot, va, n, limit) else {
            return Ok(0);
        };
        let pages = (run.end - run.start) / PAGE_U64;
        let writable = run.prot & PROT_WRITE != 0;
        let mut backs = Vec::new();
        let room = self
            .make_room(st, pages as usize)
            .map(|b| backs = b)
            .and_then(|()| self.reap_writebacks(st));
        let how = Installed {
            owner: self.client.owner(p.pid, p.home, va),
            writable,
            dirty: writable,
            fresh: true,
        };
        let copied =
            room.and_then(|()| self.install(st, key, p, how, &ZEROS[..pages as usize * PAGE]));
        let copied = match copied {
            Ok(n) => n,
            Err(fault) => {
                // Still fresh at the memory component; the victims go back.
                st.fresh.insert(slot, run.start, run.end, run.prot);
                let _ = self.start_writebacks(st, backs);
                return Err(fault);
            }
        };
        if copied < pages {
            // Stopped at a page someone installed meanwhile (or the
            // vRegion went with its process): the rest stay fresh.
            let from = va + (copied + 1) * PAGE_U64;
            st.fresh.insert(slot, from, run.end, run.prot);
        }
        st.stats.fresh += copied;
        // The pages after the first are installed ahead of any access.
        for k in 1..copied {
            self.sample_ahead(st, (slot, va + k * PAGE_U64));
        }
        // The faults on them run on (the copy woke them) while the victims
        // go back.
        self.start_writebacks(st, backs)?;
        Ok(copied)
    }

    /// A read miss on a page of a mapped file: it and the file's pages
    /// after it (up to [`FILE_RUN`]) read from the file and installed
    /// write-protected, no round trip.
    pub(super) fn miss_filed<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        key: Key,
        p: Process,
        f: uffd::Fault,
    ) {
        let start = Instant::now();
        let most = FILE_RUN.min((st.capacity as u64 / 4).max(1));
        match self.install_filed(&mut st, key, p, most) {
            Ok(0) => {
                // Nothing installed here woke the fault: let it retry.
                drop(st);
                let _ = self.uffd.wake(f.addr, PAGE_U64);
            }
            Ok(_) => st.stats.record_miss(false, start),
            Err(fault) => {
                drop(st);
                self.fail(f.tid, key, false, fault);
            }
        }
    }

    /// The file's bytes for the pages from `key` on: at most `most`, not
    /// past the vRegion or the file's range, stopping at one that is
    /// cached or on its way. Read under the lock (a page-cache read of
    /// 128 KiB at most, as long as copying it in). Returns how many went in.
    pub(super) fn install_filed(
        &self,
        st: &mut State,
        key: Key,
        p: Process,
        most: u64,
    ) -> Result<u64, Fault> {
        let (slot, va) = key;
        let Some(piece) = st.filed.at(slot, va) else {
            return Ok(0);
        };
        let limit = ((vregion(va) + 1) << VREGION_SHIFT).min(piece.end);
        let n = free_run(st, key, most, limit, |_| true);
        if n == 0 {
            return Ok(0);
        }
        let bytes = read_pieces(&piece, va, va + n * PAGE_U64)
            .map_err(|e| Fault::host("read a page of a mapped file", e))?;
        let backs = self.make_room(st, n as usize)?;
        let how = Installed {
            owner: self.client.owner(p.pid, p.home, va),
            writable: false,
            dirty: false,
            fresh: false,
        };
        let copied = match self
            .reap_writebacks(st)
            .and_then(|()| self.install(st, key, p, how, &bytes))
        {
            Ok(n) => n,
            Err(fault) => {
                let _ = self.start_writebacks(st, backs);
                return Err(fault);
            }
        };
        st.stats.from_files += copied;
        for k in 1..copied {
            self.sample_ahead(st, (slot, va + k * PAGE_U64));
        }
        self.start_writebacks(st, backs)?;
        Ok(copied)
    }

    /// Fetches pid's page from the owner the client knows, following
    /// redirects; room for it is made, and the victims' write-backs sent,
    /// while the request is in flight.
    pub(super) fn fetch(&self, p: Process, vpage: u64, write: bool) -> Result<Fetched, Fault> {
        let read = MemRequest {
            op: OP_READ,
            pid: p.pid,
            addr: vpage,
            flags: if write { FLAG_FOR_WRITE } else { 0 },
            ..Default::default()
        };
        let fault = |source| Fault::Page {
            pid: p.pid,
            va: vpage,
            access: if write { "write" } else { "read" },
            source,
        };
        let dst = self.client.owner(p.pid, p.home, vpage);
        let call = self.client.start(dst, read, None);
        // Evicting (write-protect, hash, drop: 15-20 us a miss here) would
        // delay the fetch if done first. The write-backs are not waited
        // for: a memory component's VMM answers the fetch from its page
        // index while its guest takes them.
        let room = {
            let mut st = self.lock();
            self.make_room(&mut st, 0)
                .and_then(|backs| self.start_writebacks(&mut st, backs))
                .and_then(|()| self.reap_writebacks(&mut st))
        };
        let (dst, reply) = self.client.wait(call);
        room?;
        self.client
            .finish(p.home, read, dst, reply)
            .map(fetched)
            .map_err(fault)
    }
}

/// The lowest page of the run that ends at `key`'s page going down: at
/// most `most` pages, in its vRegion, each fresh and not [`held`]. The
/// page itself is assumed so (a fresh miss).
fn fresh_below(st: &State, key: Key, most: u64) -> u64 {
    let (slot, va) = key;
    let floor = vregion(va) << VREGION_SHIFT;
    let mut from = va;
    for _ in 1..most {
        let Some(q) = from.checked_sub(PAGE_U64).filter(|&q| q >= floor) else {
            break;
        };
        if held(st, &(slot, q)) || st.fresh.prot_of(slot, q).is_none() {
            break;
        }
        from = q;
    }
    from
}
