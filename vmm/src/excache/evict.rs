//! Making room: victims chosen by the policy, dropped from the guest, and
//! the dirty ones written back to their owners in batches.

use super::*;

impl ExCache {
    /// Evicts pages until the cached ones, the demand misses in flight and
    /// `more` fit. The dirty victims are returned for the caller to write
    /// back (batched).
    pub(super) fn make_room(&self, st: &mut State, more: usize) -> Result<Vec<WriteBack>, Fault> {
        let mut need = (st.pages.len() + st.demand + more).saturating_sub(st.capacity);
        if need > 0 {
            // Make room for a few misses more while at it: their victims'
            // write-backs then share requests (a send costs about as much
            // as a 4 KiB page's round trip on these hosts, and a request
            // wakes the memory guest, at each copy).
            need = need.max((st.capacity / 64).clamp(1, MAX_WRITE_RUN));
        }
        let mut victims: Vec<Key> = Vec::with_capacity(need);
        while victims.len() < need {
            let Some(key) = st.order.victim(|_| false) else {
                break;
            };
            victims.push(key);
        }
        // Neighbours in one vRegion leave together (FIFO and LRU both
        // tend to pick pages in the order a scan cached them).
        let mut backs = Vec::new();
        let mut i = 0;
        while i < victims.len() {
            let (slot, va) = victims[i];
            let mut n = 1;
            while i + (n as usize) < victims.len()
                && victims[i + n as usize] == (slot, va + n * PAGE_U64)
                && vregion(va + n * PAGE_U64) == vregion(va)
            {
                n += 1;
            }
            backs.extend(self.evict_run(st, (slot, va), n)?);
            i += n as usize;
        }
        Ok(backs)
    }

    /// Takes one page out of the cache; a dirty one comes back with its
    /// bytes, and stays `flushing` until its write-back is acknowledged.
    pub(super) fn evict(&self, st: &mut State, key: Key) -> Result<Option<WriteBack>, Fault> {
        Ok(self.evict_run(st, key, 1)?.pop())
    }

    /// Takes the cached pages of a run of `n` neighbours from `first` (one
    /// vRegion) out of the cache with one write-protect and one
    /// `MADV_DONTNEED` for all of them; the dirty ones come back with their
    /// bytes, and stay `flushing` until their write-back is acknowledged.
    pub(super) fn evict_run(
        &self,
        st: &mut State,
        first: Key,
        n: u64,
    ) -> Result<Vec<WriteBack>, Fault> {
        let (slot, va) = first;
        for i in 0..n {
            self.unpark(st, (slot, va + i * PAGE_U64), false)?;
        }
        let mut taken = Vec::new();
        for i in 0..n {
            let key = (slot, va + i * PAGE_U64);
            if let Some(page) = st.pages.remove(&key) {
                st.stats.evictions += 1;
                taken.push((key, page));
            }
        }
        let Some(host) = st.regions.host_of(slot, va) else {
            return Ok(Vec::new());
        };
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let len = n * PAGE_U64;
        let t = Instant::now();
        if taken.iter().any(|(_, p)| p.mapped_writable()) {
            // Writes from now on wait for us; those before are in the copy.
            self.uffd
                .protect(host, len, true)
                .map_err(|e| Fault::host("write-protect a victim", e))?;
        }
        let mut backs = Vec::new();
        for (key, page) in taken {
            if !page.mapped_writable() {
                continue;
            }
            let at = host + (key.1 - va);
            // SAFETY: a page of a live reservation, not changing now.
            let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, PAGE) };
            if !page.dirty && page.sum == Some(st.sums.of(bytes)) {
                st.stats.unchanged += 1;
                continue;
            }
            if page.fresh && bytes.iter().all(|&b| b == 0) {
                // Never written: its memory component still has no frame,
                // which reads as these zeros.
                st.stats.fresh_unwritten += 1;
                let prot = PROT_READ | if page.writable { PROT_WRITE } else { 0 };
                st.fresh.insert(key.0, key.1, key.1 + PAGE_U64, prot);
                continue;
            }
            st.flushing.insert(key);
            backs.push(WriteBack {
                key,
                page,
                data: bytes.to_vec(),
            });
        }
        // SAFETY: pages of our own reservation.
        let r =
            unsafe { libc::madvise(host as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(Fault::host(
                "drop an evicted page",
                std::io::Error::last_os_error(),
            ));
        }
        st.stats.install_ns += t.elapsed().as_nanos() as u64;
        Ok(backs)
    }

    /// The request that writes `wb` back.
    pub(super) fn writeback_request(wb: &WriteBack) -> MemRequest {
        MemRequest {
            op: OP_WRITE,
            pid: wb.page.pid,
            addr: wb.key.1,
            flags: FLAG_WRITEBACK,
            ..Default::default()
        }
    }

    /// Writes dirty pages back without waiting for the answers, as few
    /// requests as they fit in (one per owner and process, at most
    /// [`MAX_WRITE_RUN`] pages each); they stay `flushing` until
    /// [`Self::reap_writebacks`] sees the answers.
    pub(super) fn start_writebacks(
        &self,
        st: &mut State,
        backs: Vec<WriteBack>,
    ) -> Result<(), Fault> {
        let mut groups: Vec<(u32, u32, Vec<WriteBack>)> = Vec::new();
        for wb in backs {
            let dst = self.client.owner(wb.page.pid, wb.page.home, wb.key.1);
            match groups
                .iter_mut()
                .find(|g| g.0 == dst && g.1 == wb.page.pid && g.2.len() < MAX_WRITE_RUN)
            {
                Some(g) => g.2.push(wb),
                None => groups.push((dst, wb.page.pid, vec![wb])),
            }
        }
        for (dst, pid, pages) in groups {
            let call = if let [one] = &pages[..] {
                self.client
                    .start(dst, Self::writeback_request(one), Some(&one.data))
            } else {
                let req = MemRequest {
                    op: OP_WRITE_MANY,
                    pid,
                    len: pages.len() as u64,
                    flags: FLAG_WRITEBACK,
                    ..Default::default()
                };
                let body: Vec<(u64, &[u8])> =
                    pages.iter().map(|wb| (wb.key.1, &wb.data[..])).collect();
                self.client
                    .start(dst, req, Some(&client::write_many_body(&body)))
            };
            st.stats.writebacks += pages.len() as u64;
            st.stats.writeback_requests += 1;
            st.writebacks.push((pages, call));
            // A miss waiting for one of these pages can drain it now.
            self.flushed.notify_all();
        }
        Ok(())
    }

    /// Settles the write-backs that have been answered. One the owner
    /// redirected (its vRegion moved) is sent again, waiting, through the
    /// same routing as a fetch.
    pub(super) fn reap_writebacks(&self, st: &mut State) -> Result<(), Fault> {
        let mut i = 0;
        while i < st.writebacks.len() {
            let Some((dst, reply)) = self.client.try_reply(&st.writebacks[i].1) else {
                i += 1;
                continue;
            };
            let (pages, _) = st.writebacks.swap_remove(i);
            let keys: Vec<Key> = pages.iter().map(|wb| wb.key).collect();
            let settled = self.settle_writebacks(pages, dst, reply);
            for key in keys {
                st.flushing.remove(&key);
            }
            self.flushed.notify_all();
            match settled {
                // An ended process's pages went with it.
                Err(Fault::Page { pid, .. }) if st.ended.contains(&pid) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Waits for every write-back in flight (outside the lock).
    pub(super) fn drain_writebacks(&self) -> Result<(), Fault> {
        let pending: Vec<(Vec<WriteBack>, Pending)> = std::mem::take(&mut self.lock().writebacks);
        let mut failed = Vec::new();
        let mut done = Vec::new();
        for (pages, call) in pending {
            done.extend(pages.iter().map(|wb| wb.key));
            let (dst, reply) = self.client.wait(call);
            if let Err(f) = self.settle_writebacks(pages, dst, reply) {
                failed.push(f);
            }
        }
        {
            let mut st = self.lock();
            for k in done {
                st.flushing.remove(&k);
            }
            self.flushed.notify_all();
            // An ended process's pages went with it: an exit must not
            // fail on them (it did, and the process was never ended at
            // its memory component, whose frames stayed taken).
            failed.retain(|f| !matches!(f, Fault::Page { pid, .. } if st.ended.contains(pid)));
        }
        // A process whose page found no frame is killed; the call that
        // waited goes on.
        failed.retain(|f| !self.oom_kill(f));
        failed.pop().map_or(Ok(()), Err)
    }

    /// Settles the answer to one write-back request, of one page or many.
    pub(super) fn settle_writebacks(
        &self,
        mut pages: Vec<WriteBack>,
        dst: u32,
        reply: CallReply,
    ) -> Result<(), Fault> {
        if pages.len() == 1 {
            let wb = pages.remove(0);
            let r = client::check_reply(dst, reply);
            return self.settle_writeback(wb, dst, r);
        }
        let statuses = match client::statuses(dst, reply, pages.len()) {
            Ok(s) => s,
            Err(source) => {
                return Err(Fault::Page {
                    pid: pages[0].page.pid,
                    va: pages[0].key.1,
                    access: "write-back",
                    source,
                })
            }
        };
        let mut result = Ok(());
        // The pages that found no frame, as one run from the first to the
        // last (one kill covers them all: `oom_kill`).
        let mut refused: Option<(u32, u64, u64, u32)> = None;
        for (wb, status) in pages.into_iter().zip(statuses) {
            let r = if status == OK {
                Ok(())
            } else {
                Err(PageError::Refused {
                    component: dst,
                    status,
                })
            };
            if let Err(f) = self.settle_writeback(wb, dst, r) {
                match f.frames_refused() {
                    Some((pid, (va, _), component)) => {
                        let run = refused.get_or_insert((pid, va, va, component));
                        run.1 = run.1.min(va);
                        run.2 = run.2.max(va);
                    }
                    None => result = Err(f),
                }
            }
        }
        match (result, refused) {
            (Ok(()), Some((pid, first, last, component))) => Err(Fault::Page {
                pid,
                va: first,
                access: "write-back",
                source: PageError::OutOfFrames { component, last },
            }),
            (result, _) => result,
        }
    }

    pub(super) fn settle_writeback(
        &self,
        wb: WriteBack,
        dst: u32,
        answer: Result<(), PageError>,
    ) -> Result<(), Fault> {
        let fault = |source| Fault::Page {
            pid: wb.page.pid,
            va: wb.key.1,
            access: "write-back",
            source,
        };
        let gone = |r: Result<(), PageError>| match r {
            // The page was unmapped (or its process ended) since it was
            // evicted: its data went with the mapping, as on Linux.
            Err(PageError::Refused {
                status: EFAULT | ESRCH,
                ..
            }) => Ok(()),
            other => other,
        };
        match answer {
            Ok(()) => Ok(()),
            Err(PageError::Refused { status, .. })
                if status == NOT_OWNER
                    || (dst != wb.page.home && matches!(status, EFAULT | ESRCH)) =>
            {
                // Sent to the home of a vRegion another component owns (a
                // fresh page's first write-back: no fetch learnt the
                // owner), or the owner we knew no longer holds it: the
                // home knows who does.
                gone(
                    self.client
                        .request(wb.page.home, Self::writeback_request(&wb), Some(&wb.data))
                        .map(|_| ()),
                )
                .map_err(fault)
            }
            r => gone(r).map_err(fault),
        }
    }
}
