//! The processor's client of the memory service: page requests go to the
//! owner of the page's vRegion, learnt from the home's NOT_OWNER answers
//! and remembered, so each vRegion costs one redirect.
//!
//! Copies ([`super::mirror`]): a memory component started with
//! `--backup B` says so (OP_BACKUP, asked before its first memory call);
//! from then on every request that changes what it holds is sent to both,
//! at once, and counts as done when both answered alike. When it stops
//! answering, its backup, which holds the same, serves its processes, and
//! the process goes on at the access that was pending. What the client
//! knows about copies, and the rules it decides by, are in
//! [`copies`](super::copies).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use super::copies::Copies;
use super::mirror::{self, Outcome};
use crate::fabric::{CallReply, Fabric, PendingCall, ReplyBytes};

/// Why a page request got no page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("memory component {component} did not answer: {why}")]
    Unreachable { component: u32, why: String },
    #[error("memory component {component} answered with something that is not a memory reply")]
    BadReply { component: u32 },
    #[error("memory component {component} refused: {}", status_text(*.status))]
    Refused { component: u32, status: u32 },
    #[error("the owners of vRegion {vregion} kept redirecting (last: component {component})")]
    Redirects { component: u32, vregion: u64 },
    /// Write-backs of a run of pages, from the fault's page to `last`,
    /// that found no frame (`OUT_OF_FRAMES`, each of them).
    #[error(
        "memory component {component} has no free page frame left for the pages up to {last:#x}"
    )]
    OutOfFrames { component: u32, last: u64 },
}

/// What a memory status means, for sentences.
/// [`MemoryClient::stamp`] with the copies' state held: the epoch and
/// FLAG_TAKEOVER decided together with where the request goes. Decided
/// apart, a fail-over in between stamped a request for the component it
/// replaced with the new epoch and no take-over, which the backup refused
/// as stale: both copies were then taken for lost.
fn stamp_in(c: &Copies, home: u32, dst: u32, bytes: &mut [u8]) {
    let Ok((req, _)) = MemRequest::read_from_prefix(bytes) else {
        return;
    };
    if req.pid == 0 {
        return;
    }
    let (epoch, takeover) = c.epoch(req.pid, home, dst);
    let flags = if takeover && req.op != OP_NEW {
        req.flags | FLAG_TAKEOVER
    } else {
        req.flags & !FLAG_TAKEOVER
    };
    let stamped = MemRequest {
        epoch,
        flags,
        ..req
    };
    bytes[..REQUEST_LEN].copy_from_slice(stamped.as_bytes());
}

pub fn status_text(status: u32) -> String {
    match status {
        EFAULT => "the address is not mapped (EFAULT)".into(),
        EACCES => "the mapping does not allow this access (EACCES)".into(),
        ESRCH => "it does not know the process (ESRCH)".into(),
        ENOMEM => "out of memory (ENOMEM)".into(),
        OUT_OF_FRAMES => "it has no free page frame left".into(),
        BAD_REQUEST => "the request was malformed".into(),
        s => format!("status {s}"),
    }
}

fn parse(dst: u32, reply: CallReply) -> Result<(MemReply, ReplyBytes), PageError> {
    let body = reply.map_err(|why| PageError::Unreachable {
        component: dst,
        why,
    })?;
    let (head, _) =
        MemReply::read_from_prefix(&body).map_err(|_| PageError::BadReply { component: dst })?;
    Ok((head, body.skip(size_of::<MemReply>())))
}

/// Whether the reply to a request sent without waiting says OK.
pub fn check_reply(dst: u32, reply: CallReply) -> Result<(), PageError> {
    match parse(dst, reply)? {
        (r, _) if r.status == OK => Ok(()),
        (r, _) => Err(PageError::Refused {
            component: dst,
            status: r.status,
        }),
    }
}

/// What follows an OP_WRITE_MANY request: the pages' addresses, then
/// the pages, in one order.
pub fn write_many_body(pages: &[(u64, &[u8])]) -> Vec<u8> {
    let mut body = Vec::with_capacity(pages.len() * (8 + PAGE));
    for (va, _) in pages {
        body.extend_from_slice(&va.to_le_bytes());
    }
    for (_, data) in pages {
        body.extend_from_slice(data);
    }
    body
}

/// The per-page statuses of an OP_WRITE_MANY of `n` pages.
pub fn statuses(dst: u32, reply: CallReply, n: usize) -> Result<Vec<u32>, PageError> {
    let (head, rest) = parse(dst, reply)?;
    if head.status != OK {
        return Err(PageError::Refused {
            component: dst,
            status: head.status,
        });
    }
    let bytes = rest
        .get(..n * 4)
        .ok_or(PageError::BadReply { component: dst })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A request on its way, to one component or to it and its backup.
pub struct Pending {
    dst: u32,
    /// Whose copy the mirror is: the component serving the process.
    of: u32,
    bytes: Vec<u8>,
    started: Instant,
    main: Slot,
    mirror: Option<(u32, Slot)>,
}

/// One of a [`Pending`]'s calls: sent (its answer not taken yet), or
/// answered (or failed to go out).
struct Slot {
    call: Option<PendingCall>,
    reply: Mutex<Option<CallReply>>,
}

impl Slot {
    fn new(sent: Result<PendingCall, String>) -> Slot {
        match sent {
            Ok(call) => Slot {
                call: Some(call),
                reply: Mutex::new(None),
            },
            Err(why) => Slot {
                call: None,
                reply: Mutex::new(Some(Err(why))),
            },
        }
    }

    fn reply(&self) -> std::sync::MutexGuard<'_, Option<CallReply>> {
        self.reply.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the answer is in, taking it if it came.
    fn ready(&self) -> bool {
        let mut r = self.reply();
        if r.is_none() {
            *r = self.call.as_ref().and_then(PendingCall::try_reply);
        }
        r.is_some()
    }

    fn wait(self) -> CallReply {
        match (
            self.reply.into_inner().unwrap_or_else(|p| p.into_inner()),
            self.call,
        ) {
            (Some(r), _) => r,
            (None, Some(call)) => call.wait(),
            (None, None) => Err("nothing was sent".into()),
        }
    }
}

/// The flags of the request in `bytes` (0 if it is not one).
fn req_flags(bytes: &[u8]) -> u32 {
    MemRequest::read_from_prefix(bytes).map_or(0, |(r, _)| r.flags)
}

/// A request with no more than an op and a process.
pub fn ask(op: u32, pid: u32) -> Vec<u8> {
    MemRequest {
        op,
        pid,
        ..Default::default()
    }
    .as_bytes()
    .to_vec()
}

/// How often a component that named no backup is asked again.
const ASK_UNBACKED_EVERY: Duration = Duration::from_secs(5);
/// How often a component left alone is asked for its backup.
const ASK_ALONE_EVERY: Duration = Duration::from_secs(2);

fn gave_up(dst: u32) -> String {
    format!("component {dst} was taken for dead")
}

/// Shared by the ExCache's handler threads: what it learnt about owners
/// and copies sits behind its own locks, never held across a round trip.
pub struct MemoryClient {
    fabric: Arc<Fabric>,
    owners: Mutex<HashMap<(u32, u64), u32>>,
    copies: Arc<Mutex<Copies>>,
    /// Held across a memory call sent to both copies.
    call_order: Mutex<()>,
    pub redirects: AtomicU64,
}

impl MemoryClient {
    pub fn new(fabric: Arc<Fabric>) -> MemoryClient {
        let copies: Arc<Mutex<Copies>> = Arc::default();
        // A component found gone while nothing waits on it (its
        // connection ended, its process exited) is taken for dead at once:
        // one started again with its id holds nothing of what it held.
        let on_gone = copies.clone();
        let _ = fabric.on_peer_gone.set(Box::new(move |peer, why| {
            let mut c = on_gone.lock().unwrap_or_else(|p| p.into_inner());
            c.gone(peer, why);
        }));
        MemoryClient {
            fabric,
            owners: Mutex::new(HashMap::new()),
            copies,
            call_order: Mutex::new(()),
            redirects: AtomicU64::new(0),
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u64), u32>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn copies(&self) -> std::sync::MutexGuard<'_, Copies> {
        self.copies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The component that holds pid's page at `addr`, as far as we know.
    pub fn owner(&self, pid: u32, home: u32, addr: u64) -> u32 {
        let known = self.owners().get(&(pid, vregion(addr))).copied();
        match known {
            Some(x) => self.at_owner(pid, home, x),
            None => self.serving_of(pid, home),
        }
    }

    /// Where pid's requests for a vRegion owned by `x` go: to `x` while it
    /// answers. Once `x` was taken for dead, the process moves to its
    /// home's whole backup ([`Copies::move_home`]), and so do they.
    fn at_owner(&self, pid: u32, home: u32, x: u32) -> u32 {
        self.copies().place(pid, home, x).0
    }

    /// Where requests for `dst` go: to it, or to the backup that serves
    /// for it since it died.
    pub fn route(&self, dst: u32) -> u32 {
        self.copies().route(dst)
    }

    /// Where the processes first homed at `home` are served now.
    pub fn serving(&self, home: u32) -> u32 {
        self.copies().serving(home)
    }

    /// Where process `pid` (homed at `home` when it is new) is served now.
    fn serving_of(&self, pid: u32, home: u32) -> u32 {
        let c = self.copies();
        c.serving(c.home_of(pid, home))
    }

    /// Whose copy a request about `pid` sent to `dst` mirrors: the
    /// component serving the process (its backup holds all of it, the
    /// vRegions handed to `dst` too); `dst`'s own for no process.
    fn copy_of(&self, pid: u32, dst: u32) -> u32 {
        if pid == 0 {
            return dst;
        }
        self.serving_of(pid, dst)
    }

    /// Writes process `pid`'s epoch into `bytes` (a request to `dst`; one
    /// about no process stays as it is), with FLAG_TAKEOVER while `dst`,
    /// the copy serving it, has not taken it over yet. `home`: where a
    /// new process goes.
    fn stamp(&self, home: u32, dst: u32, bytes: &mut [u8]) {
        stamp_in(&self.copies(), home, dst, bytes);
    }

    /// `bytes` for `dst`, stamped with the epoch as it is now.
    fn stamped(&self, home: u32, dst: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        self.stamp(home, dst, &mut out);
        out
    }

    /// The answer `reply` from `dst` to `bytes`, checked for its epoch: a
    /// refusal of an epoch this processor has moved past since (a
    /// fail-over happened while the request was on its way) is sent again
    /// as the epoch is now, once; a refusal of the current epoch (`dst`
    /// holds a copy left behind by a fail-over) and an answer for an
    /// epoch that is not the request's are no answer from `dst`, counted.
    fn vet(&self, dst: u32, bytes: &[u8], reply: CallReply, again: bool) -> CallReply {
        let (Ok(body), Ok((req, _))) = (&reply, MemRequest::read_from_prefix(bytes)) else {
            return reply;
        };
        let Ok((head, _)) = MemReply::read_from_prefix(body) else {
            return reply;
        };
        // Counters and the backup's name are not the process's state.
        if req.pid == 0 || about_the_component(req.op) {
            return reply;
        }
        if head.status == STALE_EPOCH {
            let (now, _) = self.copies().epoch(req.pid, dst, dst);
            if again && req.epoch < now {
                let resent = self.stamped(dst, dst, bytes);
                return self.vet(dst, &resent, self.fabric.call(dst, &resent), false);
            }
            self.copies().stale += 1;
            return Err(format!(
                "it holds process {} at epoch {}, not the epoch {} the request was of: a copy left behind by a fail-over, not used",
                req.pid, head.value, req.epoch
            ));
        }
        if head.status == OK && head.epoch != req.epoch {
            self.copies().stale += 1;
            return Err(format!(
                "it answered for epoch {} a request of epoch {}: a stale answer, refused",
                head.epoch, req.epoch
            ));
        }
        if head.status == OK {
            let mut c = self.copies();
            let seen = c.confirmed.entry((req.pid, dst)).or_insert(1);
            *seen = (*seen).max(req.epoch);
        }
        reply
    }

    /// `bytes` to `dst`, stamped, its answer vetted.
    fn send(&self, dst: u32, bytes: &[u8]) -> CallReply {
        let bytes = self.stamped(dst, dst, bytes);
        let reply = self.fabric.call(dst, &bytes);
        self.vet(dst, &bytes, reply, true)
    }

    /// Asks `dst` for its backup, once it answers. A backup that is itself dead (or
    /// is `dst`'s own replacement) does not count.
    pub fn learn_backup(&self, dst: u32) {
        if !self.copies().asked.insert(dst) {
            return;
        }
        let Ok((head, _)) = self.raw(dst, &ask(OP_BACKUP, 0)) else {
            // Asked again at the next call.
            self.copies().asked.remove(&dst);
            return;
        };
        let backup = head.value as u32;
        if head.status == OK && backup == 0 {
            self.copies().unbacked.insert(dst, Instant::now());
            return;
        }
        if head.status != OK || backup == dst {
            return;
        }
        let mut c = self.copies();
        if c.replaced.contains_key(&backup) {
            log::warn!(
                "excache: memory component {dst} names component {backup} as its backup, which stopped answering earlier: one copy of what {dst} holds is left"
            );
            c.unbacked.insert(dst, Instant::now());
            return;
        }
        if c.replaced
            .values()
            .chain(c.moved.values())
            .any(|&to| to == dst)
        {
            // It took over from a dead component: what it serves for it is
            // not at `backup` yet. The copier makes the copy (it is alone).
            return;
        }
        c.backups.insert(dst, backup);
        log::info!("excache: memory component {dst} is backed up at component {backup}: changes go to both");
    }

    /// Components left with the only copy, each with the component that
    /// should keep a copy again: its own backup as it names it now
    /// (OP_BACKUP: the managers may have named another since), else the
    /// backup it lost, else the one it replaced. Then components that
    /// named no backup and name one now (asked every [`ASK_UNBACKED_EVERY`]).
    pub fn wanting_copy(&self) -> Vec<(u32, u32)> {
        let (alone, lost, replaced, moved, unbacked) = {
            let mut c = self.copies();
            // Each alone component asked at most every [`ASK_ALONE_EVERY`].
            let now = Instant::now();
            let alone: Vec<u32> = c
                .alone()
                .into_iter()
                .filter(|s| {
                    c.alone_asked
                        .get(s)
                        .is_none_or(|t| now.duration_since(*t) >= ASK_ALONE_EVERY)
                })
                .collect();
            for s in &alone {
                c.alone_asked.insert(*s, now);
            }
            let due: Vec<u32> = c
                .unbacked
                .iter()
                .filter(|(s, t)| {
                    t.elapsed() >= ASK_UNBACKED_EVERY
                        && !c.backups.contains_key(s)
                        && !c.replaced.contains_key(s)
                })
                .map(|(&s, _)| s)
                .collect();
            (
                alone,
                c.lost.clone(),
                c.replaced.clone(),
                c.moved.clone(),
                due,
            )
        };
        let named = |s: u32| {
            self.raw(s, &ask(OP_BACKUP, 0))
                .ok()
                .filter(|(h, _)| h.status == OK)
                .map(|(h, _)| h.value as u32)
                .filter(|&b| b != 0 && b != s && !replaced.contains_key(&b))
        };
        let mut out = Vec::new();
        for s in alone {
            let again = named(s)
                .or_else(|| lost.iter().rev().find(|(p, _)| *p == s).map(|(_, b)| *b))
                .or_else(|| replaced.iter().find(|(_, &to)| to == s).map(|(&d, _)| d))
                .or_else(|| moved.iter().find(|(_, &to)| to == s).map(|(&h, _)| h));
            if let Some(b) = again {
                out.push((s, b));
            }
        }
        for s in unbacked {
            self.copies().unbacked.insert(s, Instant::now());
            if let Some(b) = named(s) {
                log::info!("excache: memory component {s} names component {b} as its backup now");
                out.push((s, b));
            }
        }
        out
    }

    /// One request to `dst` as it is: no routing, no copies.
    pub fn raw(&self, dst: u32, request: &[u8]) -> Result<(MemReply, ReplyBytes), PageError> {
        parse(dst, self.send(dst, request))
    }

    /// Holds memory calls back (the same lock that orders them at two
    /// copies) while a new copy is made.
    pub fn hold_calls(&self) -> std::sync::MutexGuard<'_, ()> {
        self.call_order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How process `pid` was made, if this client made it.
    pub fn new_request(&self, pid: u32) -> Option<Vec<u8>> {
        self.copies().news.get(&pid).cloned()
    }

    /// From now on `copy` gets every change `survivor` gets; it is not a
    /// backup to fail over to until [`Self::copy_complete`].
    pub fn add_backup(&self, survivor: u32, copy: u32) {
        let mut c = self.copies();
        c.backups.insert(survivor, copy);
        c.filling.insert(copy);
    }

    /// `copy` holds all of what `survivor` serves: two copies again. False
    /// when the new copy was dropped meanwhile (it refused a change, or
    /// stopped answering): `survivor` stays alone.
    pub fn copy_complete(&self, survivor: u32, copy: u32) -> bool {
        let mut c = self.copies();
        if c.backups.get(&survivor) != Some(&copy) {
            return false;
        }
        c.two_copies(survivor, copy);
        c.brought_back += 1;
        true
    }

    /// `copy` becomes `survivor`'s backup with nothing to copy (none of
    /// this processor's processes is served there; call with the calls
    /// held, so none is being made).
    pub fn adopt_backup(&self, survivor: u32, copy: u32) {
        let mut c = self.copies();
        c.backups.insert(survivor, copy);
        c.two_copies(survivor, copy);
    }

    /// Whether a live process this client made is served at `dst`.
    pub fn serves_any(&self, dst: u32) -> bool {
        let c = self.copies();
        c.homes.values().any(|&h| c.serving(h) == dst)
    }

    /// A new copy at `copy` failed half-way: `survivor` stays alone.
    pub fn drop_new_backup(&self, survivor: u32, copy: u32) {
        let mut c = self.copies();
        c.filling.remove(&copy);
        if c.backups.get(&survivor) == Some(&copy) {
            c.backups.remove(&survivor);
        }
        if !c.lost.contains(&(survivor, copy)) {
            c.lost.push((survivor, copy));
        }
    }

    /// (fail-overs, the last one's time in us, components holding the only
    /// copy of what they serve), for the stats request.
    pub fn copies_counts(&self) -> (u64, u64, u64) {
        let c = self.copies();
        let last = c.failovers.last().map_or(0, |f| f.2.as_micros() as u64);
        (c.failovers.len() as u64, last, c.alone().len() as u64)
    }

    /// What the fail-overs and lost copies were, for the summary line;
    /// None when no memory component had a backup.
    pub fn copies_summary(&self) -> Option<String> {
        let c = self.copies();
        if c.backups.is_empty() && c.failovers.is_empty() && c.lost.is_empty() {
            return None;
        }
        let mut out = format!("{} fail-overs", c.failovers.len());
        for (dead, to, took) in &c.failovers {
            out.push_str(&format!(
                " ({dead} -> {to} in {:.0} ms)",
                took.as_secs_f64() * 1000.0
            ));
        }
        if c.brought_back > 0 {
            out.push_str(&format!(", {} new copies made", c.brought_back));
        }
        if c.stale > 0 {
            out.push_str(&format!(", {} answers refused for their epoch", c.stale));
        }
        let alone: Vec<String> = c.alone().iter().map(u32::to_string).collect();
        if !alone.is_empty() {
            out.push_str(&format!(
                ", one copy left at component(s) {}",
                alone.join(", ")
            ));
        }
        Some(out)
    }

    /// The answers of a request sent to `dst` and maybe to the backup of
    /// `of` (the component serving the process, `dst` itself but for a
    /// vRegion handed to `dst`), made one: the backup's when `dst` is dead
    /// (it takes over), `dst`'s otherwise (a backup that failed or answered
    /// otherwise is dropped). A request that went to `dst` alone is sent
    /// again to the backup when `dst` is dead. When `dst` is not `of` (it
    /// owns a vRegion of the process) or `of` could not reach such a
    /// component (PEER_FAILED), the process moves to `of`'s backup, which
    /// holds all of it. Returns who answered.
    fn settle(
        &self,
        (dst, of): (u32, u32),
        bytes: &[u8],
        started: Instant,
        main: CallReply,
        mirror: Option<(u32, CallReply)>,
    ) -> (u32, CallReply) {
        let (op, pid) = MemRequest::read_from_prefix(bytes).map_or((0, 0), |(r, _)| (r.op, r.pid));
        if dst != of {
            let now_at = self.serving_of(pid, of);
            if now_at != of {
                // The process moved while this request to an owner was on
                // its way: what counts is the answer of the copy serving
                // it now (it got the request as the mirror), else that
                // copy's answer to it again.
                return match mirror {
                    Some((b, Ok(body))) if b == now_at => (b, Ok(body)),
                    _ => (now_at, self.send(now_at, bytes)),
                };
            }
        }
        // The owner of a vRegion of the process that is lost, if any.
        let mut lost_owner = (dst != of).then_some(dst);
        let main = match (&main, &mirror) {
            (Ok(body), Some((_, Ok(_)))) if dst == of => match MemReply::read_from_prefix(body) {
                Ok((h, _)) if h.status == PEER_FAILED => {
                    lost_owner = Some(h.value as u32);
                    Err(format!(
                        "component {dst}, its home, could not reach component {}, which holds vRegions of process {pid}",
                        h.value
                    ))
                }
                _ => main,
            },
            _ => main,
        };
        let move_home = |owner: u32, why: &str| {
            let mut c = self.copies();
            let home = c.home_of(pid, of);
            c.move_home((home, of), owner, why, started)
        };
        match mirror::settle(op, dst != of, main, mirror) {
            Outcome::Agreed(reply) => (dst, reply),
            Outcome::BackupLost { backup, why, reply } => {
                let mut c = self.copies();
                if c.backups.get(&of) == Some(&backup) {
                    c.backups.remove(&of);
                    c.lost.push((of, backup));
                    log::warn!(
                        "excache: backup {backup} of memory component {of} is dropped ({why}): one copy of what {of} holds is left"
                    );
                }
                (dst, reply)
            }
            Outcome::TakenOver { backup, why, .. } if self.copies().filling.contains(&backup) => (
                dst,
                Err(format!(
                    "{why}; component {backup} was still being brought up to date as its new copy: the only whole copy of its memory is lost"
                )),
            ),
            Outcome::TakenOver { backup, why, reply } => {
                match lost_owner {
                    Some(owner) => {
                        move_home(owner, &why);
                    }
                    None => self.fail_over(dst, backup, &why, started),
                }
                (backup, reply)
            }
            Outcome::Alone { why } if dst != of => match move_home(dst, &why) {
                Some(to) => (to, self.send(to, bytes)),
                None => {
                    let lost = self.copies().lost.iter().rev().find(|(p, _)| *p == of).map(|(_, b)| *b);
                    let copy = match lost {
                        Some(b) => format!("component {b}, which kept the whole copy of the processes served at component {of}, was lost before"),
                        None => format!("component {of}, which serves the process, keeps no whole copy of it"),
                    };
                    (
                        dst,
                        Err(format!(
                            "{why}; it held vRegions of process {pid} and {copy}: both copies of that memory are lost"
                        )),
                    )
                }
            },
            Outcome::Alone { why } => {
                let backup = self.copies().whole_backup(dst);
                let Some(backup) = backup else {
                    let replaced = self.route(dst);
                    if replaced != dst {
                        // Taken over meanwhile (another request found it
                        // dead first): ask its backup.
                        return (replaced, self.send(replaced, bytes));
                    }
                    return (dst, Err(self.last_copy_lost(dst, why)));
                };
                self.fail_over(dst, backup, &why, started);
                (backup, self.send(backup, bytes))
            }
            Outcome::BothLost {
                backup,
                why,
                backup_why,
            } => (
                dst,
                Err(format!(
                    "{why}; component {backup}, which kept its copy, did not answer either ({backup_why}): both copies of its memory are lost"
                )),
            ),
        }
    }

    /// Why `dst` is gone, naming the other copy when `dst` held the last
    /// one (it had taken over from a dead component, or lost its backup).
    fn last_copy_lost(&self, dst: u32, why: String) -> String {
        let c = self.copies();
        let other = c
            .replaced
            .iter()
            .find(|(_, &to)| to == dst)
            .map(|(&dead, _)| format!("it had taken over from component {dead}, which died before"))
            .or_else(|| {
                c.moved.iter().find(|(_, &to)| to == dst).map(|(&home, _)| {
                    format!("it had taken over the processes homed at component {home}, which lost a component holding part of them before")
                })
            })
            .or_else(|| {
                c.lost
                    .iter()
                    .find(|(p, _)| *p == dst)
                    .map(|(_, b)| format!("component {b}, which kept its copy, was lost before"))
            });
        match other {
            Some(other) => format!("{why}; {other}: both copies of its memory are lost"),
            None => why,
        }
    }

    /// `dead` stopped answering: its backup serves its processes from now
    /// on (it holds everything `dead` acknowledged).
    fn fail_over(&self, dead: u32, backup: u32, why: &str, started: Instant) {
        self.copies().fail_over(dead, backup, why, started);
    }

    /// Forgets what it learnt about pid (it exited).
    pub fn forget(&self, pid: u32) {
        self.owners().retain(|(p, _), _| *p != pid);
        let mut c = self.copies();
        c.news.remove(&pid);
        c.homes.remove(&pid);
        c.whole.remove(&pid);
        c.left.remove(&pid);
        c.confirmed.retain(|(p, _), _| *p != pid);
    }

    /// A request that is not about one page (a memory call) to `dst`: the
    /// reply head, whatever its status, and what follows it. A call that
    /// changes the process goes to the backup after `dst` has answered
    /// (an mmap then at the address `dst` chose), so both decide alike.
    pub fn call(&self, dst: u32, request: &[u8]) -> Result<(MemReply, ReplyBytes), PageError> {
        let home = dst;
        let dst = self.serving(dst);
        self.learn_backup(dst);
        let request = &self.stamped(home, dst, request)[..];
        let started = Instant::now();
        // Calls that change state reach both copies in one order: two
        // vCPUs' calls must not cross between the first copy and the
        // second.
        // And none crosses the copier making a new copy (it holds the
        // same lock), even while there is no backup to send to.
        let changes =
            MemRequest::read_from_prefix(request).is_ok_and(|(r, _)| mirror::changes_state(r.op));
        let _order = changes.then(|| self.hold_calls());
        let backup = self.copies().mirror_for(dst, dst, request);
        let main = self.vet(dst, request, self.fabric.call(dst, request), true);
        let mirror = backup.map(|b| {
            let mut again = mirror::for_backup(request, &main);
            self.stamp(home, b, &mut again);
            (b, self.vet(b, &again, self.fabric.call(b, &again), true))
        });
        let (by, reply) = self.settle((dst, dst), request, started, main, mirror);
        self.exit_left_behind(home, request);
        let parsed = parse(by, reply);
        if let (Ok((head, _)), Ok((req, _))) = (&parsed, MemRequest::read_from_prefix(request)) {
            if req.op == OP_NEW && head.status == OK {
                // Forgotten with the process (`forget`).
                let mut c = self.copies();
                c.news.insert(req.pid, request.to_vec());
                c.homes.insert(req.pid, home);
            }
        }
        parsed
    }

    /// Calls to `dst` sent together, their answers awaited together: one
    /// round trip in all where [`Self::call`] takes one each. Only for
    /// calls whose order cannot matter (fixed mappings over ranges that do
    /// not meet): the answers may come in any order. A component with a
    /// backup gets them one at a time through [`Self::call`], since its
    /// backup gets each after the component answered it.
    pub fn call_many(
        &self,
        dst: u32,
        requests: &[Vec<u8>],
    ) -> Vec<Result<(MemReply, ReplyBytes), PageError>> {
        let home = dst;
        let serving = self.serving(dst);
        self.learn_backup(serving);
        let order = self.hold_calls();
        let mirrored = requests
            .iter()
            .any(|r| self.copies().mirror_for(serving, serving, r).is_some());
        if mirrored {
            drop(order);
            return requests.iter().map(|r| self.call(home, r)).collect();
        }
        let stamped: Vec<Vec<u8>> = requests
            .iter()
            .map(|r| self.stamped(home, serving, r))
            .collect();
        let started = Instant::now();
        let sent: Vec<Result<PendingCall, String>> = stamped
            .iter()
            .map(|b| self.fabric.start_call(serving, b))
            .collect();
        let replies: Vec<CallReply> = sent
            .into_iter()
            .zip(&stamped)
            .map(|(s, bytes)| self.vet(serving, bytes, s.and_then(PendingCall::wait), true))
            .collect();
        // Settled in order, still holding the calls' order as `call` does
        // (a fail-over sends again to the copy that takes over).
        let settled = replies
            .into_iter()
            .zip(&stamped)
            .map(|(main, bytes)| {
                let (by, reply) = self.settle((serving, serving), bytes, started, main, None);
                parse(by, reply)
            })
            .collect();
        drop(order);
        settled
    }

    /// After the exit of a process that moved whole to its home's backup:
    /// the home, left behind alive, still holds it (at the old epoch, so
    /// the exit is let through) and tells the owners of its vRegions to
    /// drop it too. Not waited for: what it frees is not the program's.
    fn exit_left_behind(&self, home: u32, request: &[u8]) {
        let Ok((req, _)) = MemRequest::read_from_prefix(request) else {
            return;
        };
        if req.op != OP_EXIT {
            return;
        }
        let Some(h) = self.copies().take_left(req.pid, home) else {
            return;
        };
        let bytes = self.stamped(home, h, request);
        let fabric = self.fabric.clone();
        let _ = std::thread::Builder::new()
            .name("excache-exit".into())
            .spawn(move || {
                let _ = fabric.call(h, &bytes);
            });
    }

    /// Sends a page request to `dst` without waiting (no redirects); one
    /// that changes what `dst` holds goes to its backup too, at once.
    pub fn start(&self, dst: u32, req: MemRequest, page: Option<&[u8]>) -> Pending {
        let mut bytes = req.as_bytes().to_vec();
        if let Some(p) = page {
            bytes.extend_from_slice(p);
        }
        // Where, and the mirror, decided at once: a move in between would
        // leave the request without the copy that serves the process.
        let (dst, of, backup) = {
            let mut c = self.copies();
            let (dst, of) = c.place(req.pid, dst, dst);
            let backup = c.mirror_for(of, dst, &bytes);
            stamp_in(&c, dst, dst, &mut bytes);
            (dst, of, backup)
        };
        let started = Instant::now();
        // The same bytes to both copies are hashed for the fabric once (a
        // write-back's 64 KiB cost the handler thread about 12 us each).
        let takeover = req_flags(&bytes) & FLAG_TAKEOVER != 0;
        let shared = (backup.is_some() && !takeover).then(|| self.fabric.share(&bytes));
        let mirror = backup.map(|b| {
            let sent = match &shared {
                Some(s) => self.fabric.start_shared_call(b, s),
                // A take-over is the serving copy's alone.
                None => {
                    let mut copy = bytes.clone();
                    self.stamp(dst, b, &mut copy);
                    self.fabric.start_call(b, &copy)
                }
            };
            (b, Slot::new(sent))
        });
        let main = match &shared {
            Some(s) => self.fabric.start_shared_call(dst, s),
            None => self.fabric.start_call(dst, &bytes),
        };
        drop(shared);
        if let Err(why) = &main {
            // Taken for dead now, so the requests after this one go to its
            // backup instead of each finding out (a send to a component
            // that stopped reading waits a whole fabric timeout).
            let backup = self.copies().whole_backup(dst);
            if let Some(b) = backup {
                self.fail_over(dst, b, why, started);
            }
        }
        Pending {
            dst,
            of,
            started,
            main: Slot::new(main),
            mirror,
            bytes,
        }
    }

    /// Whether the answer of `dst` to a request about process `pid` is no
    /// longer waited for: it was taken for dead meanwhile, or it owns a
    /// vRegion of a process that moved whole to the copy `of` kept since.
    fn left_behind(&self, dst: u32, of: u32, bytes: &[u8]) -> bool {
        let pid = MemRequest::read_from_prefix(bytes).map_or(0, |(r, _)| r.pid);
        self.route(dst) != dst || (dst != of && self.serving_of(pid, of) != of)
    }

    /// The answer to `p` if all of it is in: who answered, and what.
    pub fn try_reply(&self, p: &Pending) -> Option<(u32, CallReply)> {
        let main_ready = p.main.ready() || self.left_behind(p.dst, p.of, &p.bytes);
        let mirror_ready = p.mirror.as_ref().is_none_or(|(_, s)| s.ready());
        if !(main_ready && mirror_ready) {
            return None;
        }
        let main = p.main.reply().take().unwrap_or_else(|| Err(gave_up(p.dst)));
        let mirror = match &p.mirror {
            Some((b, s)) => Some((*b, s.reply().take()?)),
            None => None,
        };
        Some(self.settle_page((p.dst, p.of), &p.bytes, p.started, main, mirror))
    }

    /// Waits for all of `p`'s answer: who answered, and what.
    pub fn wait(&self, p: Pending) -> (u32, CallReply) {
        let Pending {
            dst,
            of,
            bytes,
            started,
            main,
            mirror,
        } = p;
        let mirror = mirror.map(|(b, s)| (b, s.wait()));
        // Taken for dead by another request meanwhile: its answer, if it
        // ever comes, is not waited for (each wait would take a fabric
        // timeout); the backup's stands.
        let main = if self.left_behind(dst, of, &bytes) && !main.ready() {
            Err(gave_up(dst))
        } else {
            main.wait()
        };
        self.settle_page((dst, of), &bytes, started, main, mirror)
    }

    /// The answers to a page request sent to `dst` (and the backup of
    /// `of`, with the same bytes), vetted for their epoch and made one.
    fn settle_page(
        &self,
        (dst, of): (u32, u32),
        bytes: &[u8],
        started: Instant,
        main: CallReply,
        mirror: Option<(u32, CallReply)>,
    ) -> (u32, CallReply) {
        let main = self.vet(dst, bytes, main, true);
        let mirror = mirror.map(|(b, r)| (b, self.vet(b, bytes, r, true)));
        self.settle((dst, of), bytes, started, main, mirror)
    }

    /// The answer to a page request already sent to `dst` with
    /// [`Self::start`], redirects followed as [`Self::request`] follows them.
    pub fn finish(
        &self,
        home: u32,
        req: MemRequest,
        dst: u32,
        reply: CallReply,
    ) -> Result<(u32, MemReply, ReplyBytes), PageError> {
        self.follow(home, req, req.as_bytes(), dst, reply)
    }

    /// A page request for pid, following redirects; `page` follows the
    /// request. On success: the component that answered and what followed
    /// the reply head.
    pub fn request(
        &self,
        home: u32,
        req: MemRequest,
        page: Option<&[u8]>,
    ) -> Result<(u32, MemReply, ReplyBytes), PageError> {
        let mut bytes = req.as_bytes().to_vec();
        if let Some(p) = page {
            bytes.extend_from_slice(p);
        }
        let dst = self.owner(req.pid, home, req.addr);
        let (dst, reply) = self.wait(self.start(dst, req, page));
        self.follow(home, req, &bytes, dst, reply)
    }

    /// Takes `reply` (to `bytes`, sent to `dst`) and, while it redirects,
    /// asks again where it points.
    fn follow(
        &self,
        home: u32,
        req: MemRequest,
        bytes: &[u8],
        mut dst: u32,
        mut reply: CallReply,
    ) -> Result<(u32, MemReply, ReplyBytes), PageError> {
        let region = vregion(req.addr);
        for _ in 0..4 {
            if reply.is_err() {
                // Dead? Its backup, if it has one, answers instead (or,
                // for the owner of a vRegion, the copy of the whole process).
                let of = self.copy_of(req.pid, dst);
                (dst, reply) = self.settle((dst, of), bytes, Instant::now(), reply, None);
            }
            let (head, rest) = parse(dst, reply)?;
            match head.status {
                OK => return Ok((dst, head, rest)),
                NOT_OWNER => {
                    self.redirects.fetch_add(1, Ordering::Relaxed);
                    let owner = head.value as u32;
                    self.owners().insert((req.pid, region), owner);
                    dst = self.at_owner(req.pid, home, owner);
                }
                // A remembered owner that no longer holds the vRegion (it
                // was emptied and handed to another): ask the home again.
                EFAULT | ESRCH
                    if dst != self.serving_of(req.pid, home)
                        && self.owners().contains_key(&(req.pid, region)) =>
                {
                    self.owners().remove(&(req.pid, region));
                    dst = self.serving_of(req.pid, home);
                }
                status => {
                    return Err(PageError::Refused {
                        component: dst,
                        status,
                    })
                }
            }
            reply = self.send(dst, bytes);
        }
        Err(PageError::Redirects {
            component: dst,
            vregion: region,
        })
    }
}
