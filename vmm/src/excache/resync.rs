//! Two copies again: when a memory component serves with the only copy
//! (its backup died, or it took over from a dead one), and the component
//! that should keep a copy answers again (restarted, or resumed), the
//! processor makes the copy anew while its programs run.
//!
//! For each of this processor's processes served there, with memory calls
//! held back: the process is made again at the new copy (a stale one from
//! before goes first), with the same break and the same mappings; then
//! every change goes to both (the copy is a backup again); the write-backs
//! sent before are waited for; and the pages that hold frames at the
//! survivor are copied over with `FLAG_IF_ABSENT`, so a page a newer
//! write-back put in the copy meanwhile is not overwritten by an older
//! one. Program pages keep being read and written the whole time; only
//! mmap, munmap and the like wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use super::client::{self, ask, status_text};
use super::ExCache;
use crate::fabric::ReplyBytes;

/// How often the copier looks for components left with the only copy.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How long a failed attempt waits before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(2);

impl ExCache {
    /// Starts the thread that brings one-copy components back to two.
    pub fn start_copier(self: &Arc<Self>) -> std::io::Result<()> {
        let cache = self.clone();
        std::thread::Builder::new()
            .name("excache-copies".into())
            .spawn(move || {
                let mut tried: HashMap<(u32, u32), Instant> = HashMap::new();
                loop {
                    std::thread::sleep(LOOK_EVERY);
                    for (survivor, copy) in cache.client.wanting_copy() {
                        let key = (survivor, copy);
                        if tried.get(&key).is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                            continue;
                        }
                        tried.insert(key, Instant::now());
                        // Not answering (yet): looked at again later.
                        if cache.client.raw(copy, &ask(OP_BACKUP, 0)).is_err() {
                            continue;
                        }
                        let started = Instant::now();
                        match cache.make_copy(survivor, copy) {
                            Ok(None) => {}
                            Ok(Some(pages)) => log::warn!(
                                "excache: component {copy} keeps a copy of what component {survivor} serves again ({pages} pages copied in {:.0} ms): two copies",
                                started.elapsed().as_secs_f64() * 1000.0
                            ),
                            Err(why) => {
                                cache.client.drop_new_backup(survivor, copy);
                                log::warn!(
                                    "excache: no new copy at component {copy} of what component {survivor} serves yet ({why}); one copy is left, trying again later"
                                );
                            }
                        }
                    }
                }
            })?;
        Ok(())
    }

    /// Asks memory component `dst` for its backup (see
    /// [`super::client::MemoryClient::learn_backup`]).
    pub fn learn_backup(&self, dst: u32) {
        self.client.learn_backup(dst);
    }

    /// Makes `copy` a backup of `survivor` for this processor's processes
    /// there (see the module comment); the pages copied, None when none of
    /// its processes is served there.
    fn make_copy(&self, survivor: u32, copy: u32) -> Result<Option<u64>, String> {
        let _calls = self.client.hold_calls();
        let pids: Vec<u32> = {
            let st = self.lock();
            st.processes
                .iter()
                .flatten()
                .filter(|p| self.client.serving(p.home) == survivor)
                .map(|p| p.pid)
                .collect()
        };
        if pids.is_empty() {
            // Nothing of ours to copy there: with the calls held no process
            // is being made, so every change from now on goes to both.
            if !self.client.serves_any(survivor) {
                self.client.adopt_backup(survivor, copy);
                log::info!(
                    "excache: memory component {survivor} is backed up at component {copy}: changes go to both"
                );
            }
            return Ok(None);
        }
        let mut maps = Vec::new();
        for pid in pids {
            let made = self
                .client
                .new_request(pid)
                .ok_or_else(|| format!("process {pid} was not made by this processor"))?;
            // What an earlier copy there held of it goes first.
            let _ = self.client.raw(copy, &ask(OP_EXIT, pid));
            let (mut req, tail) = MemRequest::read_from_prefix(&made)
                .map_err(|_| "a malformed record of a process".to_owned())?;
            req.flags |= FLAG_COPY;
            let mut again = req.as_bytes().to_vec();
            again.extend_from_slice(tail);
            self.ok(copy, &again, "making the process")?;
            let brk = |addr: u64| {
                MemRequest {
                    op: OP_BRK,
                    pid,
                    addr,
                    ..Default::default()
                }
                .as_bytes()
                .to_vec()
            };
            let now = self.ok(survivor, &brk(0), "reading the break")?.0;
            if self.ok(copy, &brk(now), "setting the break")?.0 != now {
                return Err(format!("the break of process {pid} could not be set"));
            }
            let vmas = self.vmas(survivor, pid)?;
            for v in &vmas {
                let map = MemRequest {
                    op: OP_MMAP,
                    pid,
                    addr: v.start,
                    len: v.end - v.start,
                    prot: v.prot,
                    flags: FLAG_FIXED,
                    ..Default::default()
                };
                if self.ok(copy, map.as_bytes(), "mapping")?.0 != v.start {
                    return Err(format!("a mapping of process {pid} landed elsewhere"));
                }
            }
            maps.push((pid, vmas));
        }
        // Every change from now on reaches both; those sent before land.
        self.client.add_backup(survivor, copy);
        self.drain_writebacks().map_err(|e| e.to_string())?;
        let mut pages = 0;
        for (pid, vmas) in maps {
            for v in vmas {
                pages += self.copy_pages(survivor, copy, pid, v.start, v.end)?;
            }
        }
        if !self.client.copy_complete(survivor, copy) {
            return Err(format!(
                "component {copy} was dropped as the new copy while it was made"
            ));
        }
        Ok(Some(pages))
    }

    /// A request answered OK: the reply's value and what followed it.
    fn ok(&self, dst: u32, request: &[u8], what: &str) -> Result<(u64, ReplyBytes), String> {
        let (head, rest) = self
            .client
            .raw(dst, request)
            .map_err(|e| format!("{what}: {e}"))?;
        if head.status != OK {
            return Err(format!(
                "{what} at component {dst}: {}",
                status_text(head.status)
            ));
        }
        Ok((head.value, rest))
    }

    /// Every mapping of `pid` at its home `dst`, in order.
    fn vmas(&self, dst: u32, pid: u32) -> Result<Vec<VmaEntry>, String> {
        let mut out: Vec<VmaEntry> = Vec::new();
        loop {
            let from = out.last().map_or(0, |v| v.end);
            let maps = MemRequest {
                op: OP_MAPS,
                pid,
                addr: from,
                ..Default::default()
            };
            let (n, rest) = self.ok(dst, maps.as_bytes(), "listing the mappings")?;
            let entries = <[VmaEntry]>::ref_from_prefix_with_elems(&rest, n as usize)
                .map_err(|_| format!("component {dst} listed mappings that do not parse"))?
                .0;
            out.extend_from_slice(entries);
            if (n as usize) < MAX_SYNC_ENTRIES {
                return Ok(out);
            }
        }
    }

    /// Copies the pages of [start, end) of `pid` that hold frames at
    /// `home` (or at the owner of their vRegion, where the home sends the
    /// listing on) to `to`, where they are missing; how many.
    fn copy_pages(
        &self,
        home: u32,
        to: u32,
        pid: u32,
        start: u64,
        end: u64,
    ) -> Result<u64, String> {
        let page = PAGE as u64;
        let mut copied = 0;
        let mut at = start;
        while at < end {
            // One vRegion at a time: each may be held elsewhere.
            let region_end = (vregion(at) + 1) << VREGION_SHIFT;
            let len = (end - at).min(MAX_PRESENT_LEN).min(region_end - at);
            let present = MemRequest {
                op: OP_PRESENT,
                pid,
                addr: at,
                len,
                ..Default::default()
            };
            let mut from = home;
            let (head, mut bits) = self
                .client
                .raw(from, present.as_bytes())
                .map_err(|e| format!("listing the pages: {e}"))?;
            if head.status == NOT_OWNER {
                from = head.value as u32;
                bits = self.ok(from, present.as_bytes(), "listing the pages")?.1;
            } else if head.status != OK {
                return Err(format!(
                    "listing the pages at component {from}: {}",
                    status_text(head.status)
                ));
            }
            let held: Vec<u64> = (0..len / page)
                .filter(|&i| {
                    bits.get((i / 8) as usize)
                        .is_some_and(|b| b >> (i % 8) & 1 == 1)
                })
                .map(|i| at + i * page)
                .collect();
            for run in runs(&held) {
                let read = MemRequest {
                    op: OP_READ,
                    pid,
                    addr: run[0],
                    len: if run.len() > 1 {
                        run.len() as u64 * page
                    } else {
                        0
                    },
                    flags: FLAG_WRITEBACK,
                    ..Default::default()
                };
                let (_, data) = self.ok(from, read.as_bytes(), "reading a page")?;
                let mut data = data.into_vec();
                // A run read may stop early (a page freed meanwhile): the
                // rest one by one.
                let mut got = data.len() / PAGE;
                while got < run.len() {
                    let one = MemRequest {
                        op: OP_READ,
                        pid,
                        addr: run[got],
                        flags: FLAG_WRITEBACK | FLAG_PEEK,
                        ..Default::default()
                    };
                    let (_, p) = self.ok(from, one.as_bytes(), "reading a page")?;
                    data.truncate(got * PAGE);
                    data.extend_from_slice(p.get(..PAGE).ok_or("a short page")?);
                    got += 1;
                }
                let write = MemRequest {
                    op: OP_WRITE_MANY,
                    pid,
                    len: run.len() as u64,
                    flags: FLAG_WRITEBACK | FLAG_IF_ABSENT,
                    ..Default::default()
                };
                let body: Vec<(u64, &[u8])> =
                    run.iter().copied().zip(data.chunks_exact(PAGE)).collect();
                let mut bytes = write.as_bytes().to_vec();
                bytes.extend_from_slice(&client::write_many_body(&body));
                let (_, statuses) = self.ok(to, &bytes, "writing pages")?;
                let refused = statuses
                    .chunks_exact(4)
                    .take(run.len())
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .find(|&s| s != OK);
                if let Some(s) = refused {
                    return Err(format!(
                        "writing a page at component {to}: {}",
                        status_text(s)
                    ));
                }
                copied += run.len() as u64;
            }
            at += len;
        }
        Ok(copied)
    }
}

/// Page addresses cut into runs of neighbours in one vRegion, at most
/// [`MAX_RUN`] long.
fn runs(pages: &[u64]) -> Vec<&[u64]> {
    let mut out = Vec::new();
    let mut first = 0;
    for i in 1..=pages.len() {
        let split = i == pages.len()
            || pages[i] != pages[i - 1] + PAGE as u64
            || vregion(pages[i]) != vregion(pages[first])
            || i - first == MAX_RUN;
        if split {
            out.push(&pages[first..i]);
            first = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_neighbours_in_one_vregion_sixteen_at_most() {
        let p = PAGE as u64;
        assert!(runs(&[]).is_empty());
        let a: Vec<u64> = (0..20).map(|i| 0x1000_0000 + i * p).collect();
        let r = runs(&a);
        assert_eq!(r.iter().map(|r| r.len()).collect::<Vec<_>>(), vec![16, 4]);
        let gap = [0x1000, 0x2000, 0x4000];
        assert_eq!(runs(&gap), vec![&gap[..2], &gap[2..]]);
        let edge = VREGION_SIZE;
        let across = [edge - p, edge];
        assert_eq!(runs(&across), vec![&across[..1], &across[1..]]);
    }
}
