//! Pages fetched ahead of the vCPU, installed as they arrive.

use super::scans::Ahead;
use super::*;

impl ExCache {
    /// The pages after `key` (before it for a scan running down) in its
    /// vRegion worth fetching ahead, nearest first: not cached, loading or
    /// flushing. They are marked loading here, under the lock; each makes
    /// room for itself when it arrives.
    pub(super) fn prefetch_candidates(&self, st: &mut State, key: Key, ahead: Ahead) -> Vec<Key> {
        let (slot, vpage) = key;
        let mut out = Vec::new();
        for k in 1..=ahead.pages {
            let q = if ahead.down {
                vpage.checked_sub(k * PAGE_U64)
            } else {
                vpage.checked_add(k * PAGE_U64)
            };
            let Some(q) = q.filter(|&q| vregion(q) == vregion(vpage)) else {
                break;
            };
            let c = (slot, q);
            // Fresh pages and a file's are not the memory component's to
            // send.
            if held(st, &c) || st.fresh.prot_of(slot, q).is_some() || st.filed.at(slot, q).is_some()
            {
                continue;
            }
            // Read ahead no more than a quarter of the cache.
            if 4 * (out.len() + 1) > st.capacity {
                break;
            }
            st.loading.insert(c, false);
            out.push(c);
        }
        out
    }

    /// Reads the candidates ahead, one request per run of neighbours
    /// (peeks: a page never touched costs its memory component no frame),
    /// and installs each run write-protected as it arrives, the run
    /// nearest the scan first.
    pub(super) fn prefetch(&self, p: Process, slot: u64, candidates: Vec<Key>) {
        // The candidates come nearest first, so the runs do too.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &(_, q) in &candidates {
            match runs.last_mut() {
                Some((a, n)) if (*n as usize) < MAX_RUN && *a + *n * PAGE_U64 == q => *n += 1,
                // A scan running down: its run grows at the low end.
                Some((a, n)) if (*n as usize) < MAX_RUN && q + PAGE_U64 == *a => {
                    *a = q;
                    *n += 1;
                }
                _ => runs.push((q, 1)),
            }
        }
        let mut calls = Vec::new();
        for (a, n) in runs {
            let dst = self.client.owner(p.pid, p.home, a);
            let read = MemRequest {
                op: OP_READ,
                pid: p.pid,
                addr: a,
                len: n * PAGE_U64,
                flags: FLAG_PEEK,
                ..Default::default()
            };
            calls.push((a, n, self.client.start(dst, read, None)));
        }
        for (a, n, call) in calls {
            let (dst, reply) = self.client.wait(call);
            let got = prefetched_run(dst, reply);
            self.install_prefetched(p, slot, a, n as usize, got);
        }
    }

    /// Installs what a run read brought: the pages an invalidation did not
    /// cancel meanwhile. Pages left out are woken (a fault waiting on them
    /// retries and misses).
    pub(super) fn install_prefetched(
        &self,
        p: Process,
        slot: u64,
        a: u64,
        n: usize,
        got: Option<Fetched>,
    ) {
        let mut st = self.lock();
        let wanted: Vec<bool> = (0..n as u64)
            .map(|i| !st.loading.remove(&(slot, a + i * PAGE_U64)).unwrap_or(true))
            .collect();
        let live = st.processes[slot as usize] == Some(p);
        let (owner, prot, bytes) = match got {
            Some(g) if live => g,
            _ => (0, 0, ReplyBytes::default()),
        };
        let have = (bytes.len() / PAGE).min(n);
        let count = wanted[..have].iter().filter(|&&w| w).count();
        let mut backs = Vec::new();
        let room = self.make_room(&mut st, count).map(|b| backs = b);
        if let Err(e) = &room {
            prefetch_failed(e);
        }
        let writable = prot & PROT_WRITE != 0;
        let mut i = 0;
        while i < n {
            if room.is_err() || i >= have || !wanted[i] {
                self.wake_page(&st, (slot, a + i as u64 * PAGE_U64));
                i += 1;
                continue;
            }
            let mut j = i;
            while j < have && wanted[j] {
                j += 1;
            }
            let key = (slot, a + i as u64 * PAGE_U64);
            let how = Installed {
                owner,
                writable,
                dirty: false,
                fresh: false,
            };
            let installed = self
                .install(&mut st, key, p, how, &bytes[i * PAGE..j * PAGE])
                .unwrap_or_else(|e| {
                    // The pages stay out; a later miss fetches them.
                    prefetch_failed(&e);
                    0
                });
            st.stats.prefetched += installed;
            for k in 0..installed {
                self.sample_ahead(&mut st, (slot, key.1 + k * PAGE_U64));
            }
            for k in i + installed as usize + 1..j {
                self.wake_page(&st, (slot, a + k as u64 * PAGE_U64));
            }
            i = j;
        }
        // The pages are in (their waiters woken): now the victims go back.
        if let Err(e) = self.start_writebacks(&mut st, backs) {
            prefetch_failed(&e);
        }
    }

    pub(super) fn wake_page(&self, st: &State, key: Key) {
        if let Some(h) = st.regions.host_of(key.0, key.1) {
            let _ = self.uffd.wake(h, PAGE_U64);
        }
    }
}
