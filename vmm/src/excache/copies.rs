//! What a processor knows about the copies of memory components, and the
//! rules it follows with no I/O: where a process's requests go (its home,
//! the copy that replaced a dead one, or the whole copy it moved to when
//! a component holding part of it died), which epoch they carry, which
//! backup gets each change, and which components are left with the only
//! copy. [`super::client::MemoryClient`] does the talking.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use lego_proto::memory::*;
use zerocopy::FromBytes;

use super::mirror;

/// What the client knows about copies: who backs up whom, who died and
/// who serves for them since, and what it cost.
#[derive(Default)]
pub(super) struct Copies {
    /// Components asked for their backup.
    pub(super) asked: HashSet<u32>,
    /// Components that named no backup, with when they were last asked:
    /// asked again now and then, since one may be given one later (the
    /// managers name a backup once another memory component is up).
    pub(super) unbacked: HashMap<u32, Instant>,
    /// Components left alone, with when they were last asked for their
    /// backup (the copier looks every 500 ms).
    pub(super) alone_asked: HashMap<u32, Instant>,
    /// A component -> its backup, while both answer.
    pub(super) backups: HashMap<u32, u32>,
    /// A component that stopped answering -> the backup serving for it.
    pub(super) replaced: HashMap<u32, u32>,
    /// A home (as first named) -> the whole copy serving its processes
    /// since a component holding vRegions of one of them stopped answering
    /// while a live component served them: that component's backup, which
    /// holds every page of them (see [`Copies::move_home`]).
    pub(super) moved: HashMap<u32, u32>,
    /// Processes held whole where they are served: they moved (or failed
    /// over) to a copy, which keeps every vRegion itself, so the owners
    /// of their vRegions are not asked again, even when the requests come
    /// back to their first home.
    pub(super) whole: HashSet<u32>,
    /// Process -> the component it moved away from, alive, which still
    /// holds a stale copy of it (dropped at the process's exit).
    pub(super) left: HashMap<u32, u32>,
    /// (dead, backup, how long from the request that found it dead to its
    /// answer from the backup).
    pub(super) failovers: Vec<(u32, u32, Duration)>,
    /// Backups dropped (they stopped answering, or answered otherwise).
    pub(super) lost: Vec<(u32, u32)>,
    /// How each live process was made (its OP_NEW), to make it again at a
    /// new backup.
    pub(super) news: HashMap<u32, Vec<u8>>,
    /// New copies made while programs ran (two copies again).
    pub(super) brought_back: u64,
    /// Backups still being brought up to date: they get every change, but
    /// hold only part of the rest, so nothing fails over to them yet.
    pub(super) filling: HashSet<u32>,
    /// Each live process's home, as first named (before any fail-over).
    pub(super) homes: HashMap<u32, u32>,
    /// A home -> the epoch its processes are at: 1, raised at each
    /// fail-over of the component serving them (see `lego_proto::memory`'s
    /// [`STALE_EPOCH`]).
    pub(super) epochs: HashMap<u32, u32>,
    /// (process, component) -> the highest epoch the component answered
    /// it at: below its home's, a copy serving it has yet to take it over.
    pub(super) confirmed: HashMap<(u32, u32), u32>,
    /// Answers refused for their epoch (a stale copy's, or one that was
    /// not the request's).
    pub(super) stale: u64,
}

impl Copies {
    /// Where requests for `dst` go: to it, or to the backup that serves
    /// for it since it died.
    pub(super) fn route(&self, dst: u32) -> u32 {
        let mut at = dst;
        for _ in 0..8 {
            match self.replaced.get(&at) {
                Some(&next) => at = next,
                None => break,
            }
        }
        at
    }

    /// Where the processes first homed at `home` are served: at it, or
    /// at the copy that took them over.
    pub(super) fn serving(&self, home: u32) -> u32 {
        self.route(self.moved.get(&home).copied().unwrap_or(home))
    }

    /// Process `pid`'s home as first named (`home` when it is new).
    pub(super) fn home_of(&self, pid: u32, home: u32) -> u32 {
        self.homes.get(&pid).copied().unwrap_or(home)
    }

    /// Where a request about process `pid` (homed at `home` when it is
    /// new) for a vRegion owned by `x` goes, and whose copy its mirror is:
    /// to `x` while it answers and the process is spread, mirrored to the
    /// backup of the component serving it; to that component otherwise.
    /// An `x` taken for dead moves the process ([`Self::move_home`]).
    pub(super) fn place(&mut self, pid: u32, home: u32, x: u32) -> (u32, u32) {
        if pid == 0 {
            let dst = self.route(x);
            return (dst, dst);
        }
        let first = self.home_of(pid, home);
        let serving = self.serving(first);
        if x == first || x == serving || self.whole.contains(&pid) {
            return (serving, serving);
        }
        if self.route(x) == x {
            return (x, serving);
        }
        let why = "it was taken for dead";
        match self.move_home((first, serving), x, why, Instant::now()) {
            Some(to) => (to, to),
            None => (x, serving),
        }
    }

    /// The backup a request to `dst` that changes what it holds also goes
    /// to: `of`'s (a component id as it is, not routed: a component that
    /// came back after a fail-over keeps the copy of its replacement).
    pub(super) fn mirror_for(&self, of: u32, dst: u32, request: &[u8]) -> Option<u32> {
        let op = MemRequest::read_from_prefix(request).ok()?.0.op;
        if !mirror::changes_state(op) {
            return None;
        }
        let b = *self.backups.get(&of)?;
        (b != dst && b != of).then_some(b)
    }

    /// The component process `pid` (homed at `home` when it is new) moved
    /// away from, alive and holding a stale copy of it, to send its exit
    /// to; forgotten once taken. None when it serves the process again or
    /// keeps its copy now (the exit reached those in order), or is dead.
    pub(super) fn take_left(&mut self, pid: u32, home: u32) -> Option<u32> {
        let serving = self.serving(self.home_of(pid, home));
        self.left
            .remove(&pid)
            .filter(|&x| x != serving && self.backups.get(&serving) != Some(&x))
            .filter(|&x| self.route(x) == x)
    }

    /// The live processes served at `at` now: held whole once they move.
    pub(super) fn served_at(&self, at: u32) -> Vec<u32> {
        self.homes
            .iter()
            .filter(|(_, &h)| self.serving(h) == at)
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// The homes (as first named) whose processes are served at `at`:
    /// those of live processes, those with an epoch, and `also`.
    fn homes_served_at(&self, at: u32, also: &[u32]) -> HashSet<u32> {
        self.homes
            .values()
            .chain(self.epochs.keys())
            .chain(also)
            .copied()
            .filter(|&h| self.serving(h) == at)
            .collect()
    }

    /// The epoch of process `pid` (homed at `home` when it is new), and
    /// whether a request to `dst` must carry FLAG_TAKEOVER: `dst` serves
    /// the process now (its home, or the copy that replaced it) and has
    /// not answered it at this epoch yet. Never to a backup: a copy left
    /// behind must refuse the new epoch, not rise to it.
    pub(super) fn epoch(&self, pid: u32, home: u32, dst: u32) -> (u32, bool) {
        let home = self.home_of(pid, home);
        let epoch = self.epochs.get(&home).copied().unwrap_or(1);
        let confirmed = self.confirmed.get(&(pid, dst)).copied().unwrap_or(1);
        (epoch, dst == self.serving(home) && epoch > confirmed)
    }

    /// A component `owner` holding vRegions of a process first homed at
    /// `home` stopped answering, found by a request while `from` served
    /// the process: every process `from` serves moves, at a new epoch, to
    /// `from`'s whole backup, which holds every page and mapping of them
    /// (it got every change, the write-backs to owners too), and is held
    /// whole there from then on. `from`, alive, is left behind with them.
    /// The component serving the process now (already moved when `from`
    /// no longer serves it), or None when `from` has no whole backup (the
    /// pages `owner` held are lost).
    pub(super) fn move_home(
        &mut self,
        (home, from): (u32, u32),
        owner: u32,
        why: &str,
        started: Instant,
    ) -> Option<u32> {
        let serving = self.serving(home);
        if serving != from {
            return Some(serving);
        }
        let backup = self.whole_backup(from)?;
        let pids = self.served_at(from);
        for &pid in &pids {
            self.left.insert(pid, from);
        }
        self.whole.extend(pids);
        let keys = self.homes_served_at(from, &[home, from]);
        // Alive: no longer routed to the component that replaced it once.
        self.replaced.remove(&backup);
        for h in keys {
            self.moved.insert(h, backup);
            *self.epochs.entry(h).or_insert(1) += 1;
        }
        // It serves them now: no longer the backup of the one left behind.
        self.backups.remove(&from);
        self.failovers.push((owner, backup, started.elapsed()));
        log::warn!(
            "excache: memory component {owner}, which holds vRegions of processes served at component {from}, stopped answering ({why}); component {backup}, {from}'s backup, holds all of their memory and serves them from now on. One copy of it is left"
        );
        Some(backup)
    }

    /// `dst`'s backup if it holds all of what `dst` holds (not still being
    /// brought up to date).
    pub(super) fn whole_backup(&self, dst: u32) -> Option<u32> {
        self.backups
            .get(&dst)
            .copied()
            .filter(|b| !self.filling.contains(b))
    }

    /// `dead` stopped answering: `backup`, which holds everything `dead`
    /// acknowledged, serves its processes from now on.
    pub(super) fn fail_over(&mut self, dead: u32, backup: u32, why: &str, started: Instant) {
        if self.replaced.contains_key(&dead) {
            return;
        }
        let pids = self.served_at(dead);
        self.whole.extend(pids);
        // The processes `dead` served move on to a new epoch: the copy it
        // leaves behind refuses what comes after (and takes nothing).
        // `dead` itself too: a process made there next (or whose OP_NEW
        // was in flight) starts at the new epoch, so that a copy left
        // behind holding it at the old one is fenced as well.
        for h in self.homes_served_at(dead, &[dead]) {
            *self.epochs.entry(h).or_insert(1) += 1;
        }
        self.backups.remove(&dead);
        // A component that came back (and kept a copy) is alive again.
        self.replaced.remove(&backup);
        self.replaced.insert(dead, backup);
        self.failovers.push((dead, backup, started.elapsed()));
        log::warn!(
            "excache: memory component {dead} stopped answering ({why}); component {backup}, its backup, serves its processes from now on. One copy of their memory is left"
        );
    }

    /// `peer` is gone: if it was a primary with a whole backup, the backup
    /// takes over; if it kept a copy, the copy is lost.
    pub(super) fn gone(&mut self, peer: u32, why: &str) {
        self.unbacked.remove(&peer);
        if let Some(b) = self.whole_backup(peer) {
            self.fail_over(peer, b, why, Instant::now());
        }
        let kept: Vec<u32> = self
            .backups
            .iter()
            .filter(|(_, &b)| b == peer)
            .map(|(&p, _)| p)
            .collect();
        for p in kept {
            self.backups.remove(&p);
            self.filling.remove(&peer);
            self.lost.push((p, peer));
            log::warn!(
                "excache: backup {peer} of memory component {p} is gone ({why}): one copy of what {p} holds is left"
            );
        }
    }

    /// `copy` is `survivor`'s whole backup: neither alone nor still
    /// being filled.
    pub(super) fn two_copies(&mut self, survivor: u32, copy: u32) {
        self.filling.remove(&copy);
        self.lost.retain(|(p, _)| *p != survivor);
        self.unbacked.remove(&survivor);
    }

    /// Components serving what has one copy left: replacements of dead
    /// ones, and components whose backup was lost; none with a backup now.
    pub(super) fn alone(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .replaced
            .values()
            .chain(self.moved.values())
            .copied()
            .chain(self.lost.iter().map(|(p, _)| *p))
            .filter(|s| !self.backups.contains_key(s) && !self.replaced.contains_key(s))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fail-over moves the processes of the dead component's homes (and
    /// of homes it had taken over) to a new epoch, to be taken over at the
    /// backup; other homes stay where they are.
    /// A home with no process recorded yet (its first OP_NEW was the
    /// request that found it dead) moves on as well.
    #[test]
    fn a_fail_over_raises_the_epoch_of_a_home_with_no_process_yet() {
        let mut c = Copies::default();
        c.fail_over(1, 2, "gone", Instant::now());
        assert_eq!(c.epoch(7, 1, 2), (2, true));
        assert_eq!(c.epoch(7, 1, 1), (2, false));
    }

    /// An owner of a vRegion of a process dies: the process's home, alive,
    /// moves whole to its backup at a new epoch, and is fenced; other homes
    /// stay; the backup serving them is alone until it gets a copy.
    #[test]
    fn losing_an_owner_moves_the_home_to_its_whole_backup() {
        let mut c = Copies::default();
        c.homes.insert(7, 1);
        c.homes.insert(8, 4);
        c.backups.insert(1, 3);
        assert_eq!(c.move_home((1, 1), 2, "gone", Instant::now()), Some(3));
        assert_eq!(c.serving(1), 3);
        assert!(c.whole.contains(&7) && !c.whole.contains(&8));
        assert_eq!(c.epoch(7, 1, 3), (2, true));
        assert_eq!(c.epoch(7, 1, 1), (2, false), "the home left behind");
        assert_eq!(c.epoch(8, 4, 4), (1, false));
        assert_eq!(c.alone(), vec![3]);
        // Found again by another request: nothing more moves.
        assert_eq!(c.move_home((1, 1), 2, "gone", Instant::now()), Some(3));
        assert_eq!((c.epoch(7, 1, 3).0, c.failovers.len()), (2, 1));
        // The copy dies in turn, backed up itself: the processes follow.
        c.backups.insert(3, 5);
        c.fail_over(3, 5, "gone", Instant::now());
        assert_eq!(c.serving(1), 5);
        assert_eq!(c.epoch(7, 1, 5), (3, true));
        // A home without a whole backup cannot move.
        assert_eq!(c.move_home((4, 4), 2, "gone", Instant::now()), None);
    }

    /// A process that moved whole is not sent to the owners of its
    /// vRegions again, even when its first home serves it again (holding
    /// it whole, as the new copy made there); one made since spreads.
    #[test]
    fn a_process_held_whole_never_goes_back_to_owners() {
        let mut c = Copies::default();
        c.homes.insert(7, 1);
        c.backups.insert(1, 3);
        assert_eq!(c.place(7, 1, 2), (2, 1), "at the owner, mirrored to 1's");
        assert_eq!(c.place(7, 1, 1), (1, 1));
        c.move_home((1, 1), 2, "gone", Instant::now());
        assert_eq!(c.place(7, 1, 2), (3, 3));
        assert!(!c.backups.contains_key(&1), "3 is no backup of 1 now");
        // The new copy is made at 1, left behind; then 3 dies.
        c.backups.insert(3, 1);
        c.fail_over(3, 1, "gone", Instant::now());
        assert_eq!(c.serving(1), 1);
        assert_eq!(c.place(7, 1, 2), (1, 1), "held whole at 1");
        c.homes.insert(8, 1);
        assert_eq!(c.place(8, 1, 2), (2, 1));
        // An owner taken for dead moves a spread process at once.
        c.backups.insert(1, 4);
        c.replaced.insert(2, 5);
        assert_eq!(c.place(8, 1, 2), (4, 4));
    }

    /// A component that came back and is the home's copy again takes its
    /// processes when they move: it is no longer routed to the component
    /// that once replaced it. Only the processes that moved leave a stale
    /// copy behind.
    #[test]
    fn a_move_to_a_component_that_came_back_lands_there() {
        let mut c = Copies::default();
        c.homes.insert(7, 1);
        c.replaced.insert(3, 1);
        c.backups.insert(1, 3);
        assert_eq!(c.move_home((1, 1), 2, "gone", Instant::now()), Some(3));
        assert_eq!(c.serving(1), 3);
        assert_eq!(c.place(7, 1, 2), (3, 3));
        assert_eq!(c.left.get(&7), Some(&1));
        c.homes.insert(8, 1);
        assert_eq!(c.take_left(8, 1), None, "made after the move");
        // 1, left behind, is made 3's copy: the exit reaches it in order.
        c.backups.insert(3, 1);
        assert_eq!(c.take_left(7, 1), None);
        c.left.insert(7, 1);
        c.backups.remove(&3);
        assert_eq!(c.take_left(7, 1), Some(1), "its stale copy is dropped");
        assert_eq!(c.take_left(7, 1), None, "once");
        // Dead since: nothing to send.
        c.left.insert(7, 1);
        c.replaced.insert(1, 3);
        assert_eq!(c.take_left(7, 1), None);
    }

    #[test]
    fn a_fail_over_raises_the_epoch_of_what_moved() {
        let mut c = Copies::default();
        // Process 7 homed at 1, 8 at 2, 9 at 3.
        for (pid, home) in [(7, 1), (8, 2), (9, 3)] {
            c.homes.insert(pid, home);
        }
        assert_eq!(c.epoch(7, 1, 1), (1, false));
        c.fail_over(1, 2, "gone", Instant::now());
        assert_eq!(c.epoch(7, 1, 2), (2, true), "7 moves on, to be taken over");
        assert_eq!(c.epoch(8, 2, 2), (1, false), "2's own stay");
        // Only the copy serving it takes it over: not the one it left,
        // nor a new copy that answered first.
        assert_eq!(c.epoch(7, 1, 1), (2, false));
        c.confirmed.insert((7, 1), 2);
        assert_eq!(c.epoch(7, 1, 2), (2, true));
        c.confirmed.insert((7, 2), 2);
        assert_eq!(c.epoch(7, 1, 2), (2, false), "taken over");
        // 2 dies in turn: 1's processes and its own move on.
        c.fail_over(2, 3, "gone", Instant::now());
        assert_eq!(c.epoch(7, 1, 3), (3, true));
        assert_eq!(c.epoch(8, 2, 3), (2, true));
        assert_eq!(c.epoch(9, 3, 3), (1, false));
        // A new process at a home that moved starts at its epoch.
        assert_eq!(c.epoch(10, 1, 3).0, 3);
    }
}
