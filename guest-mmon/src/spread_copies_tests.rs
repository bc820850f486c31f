//! Crash tests of copies when a process's vRegions are spread, with the
//! monitor's own logic in-process: a home (1) hands a vRegion to an owner
//! (2) and is backed up at 3, which holds the process whole (made with
//! FLAG_COPY it keeps every vRegion itself). The processor, as its ExCache
//! does, sends each change to where it goes (memory calls to the home,
//! write-backs to the vRegion's owner as the home names it) and to 3; when
//! the home or the owner does not answer, or the home cannot reach the
//! owner (PEER_FAILED), the process moves whole to 3 at a new epoch.
//!
//! The owner or the home dies before every step of a sequence (mmaps in
//! two vRegions, write-backs to both, mprotect, munmap, an mremap that
//! moves pages from the owner to the home, discard, brk, exit), or after
//! the step reached it but before its answer came. 3 must end up holding
//! what one component holds after the same steps (every mapping, every
//! page, as many frames), a home left behind must refuse the new epoch,
//! and after the exit nothing is left at 3.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

use lego_proto::memory::*;

use crate::copies_tests::{
    ask, frames_free, head, holds, holds_nothing, page_of, status_value, Processor, Step, BRK, P,
    PAGE_LEN, PROCESSOR,
};
use crate::frames::VecFrames as Mem;
use crate::owner::{Owner, Source};
use crate::service::{Monitor, NoPeers, Remote};
use crate::space::PROT_READ;

const G: u64 = VREGION_SIZE;
const HOME: u32 = 1;
const OWNER: u32 = 2;
const COPY: u32 = 3;

fn component(id: u32, peers: &[u32]) -> Monitor<Mem> {
    Monitor::new(id, peers, Mem(alloc::vec![[0; PAGE_LEN]; 64]), 64)
}

/// Mappings in two vRegions (the first stays at the home, the second goes
/// to the owner, with a page after it so that growing it must move it),
/// written; the owner's mapping moved to a new vRegion the home keeps,
/// then protected and cut; a discard; the break grown and written.
const STEPS: &[Step] = &[
    Step::New,
    Step::MmapAt { at: G, pages: 8 },
    Step::MmapAt {
        at: 2 * G,
        pages: 8,
    },
    Step::MmapAt {
        at: 2 * G + 8 * P,
        pages: 1,
    },
    Step::Write {
        map: 0,
        page: 0,
        fill: 1,
    },
    Step::Write {
        map: 1,
        page: 1,
        fill: 2,
    },
    Step::WriteMany {
        map: 1,
        page: 2,
        n: 4,
        fill: 3,
    },
    Step::Mremap {
        map: 1,
        from: 8,
        to: 16,
    },
    Step::Write {
        map: 1,
        page: 12,
        fill: 4,
    },
    Step::Mprotect {
        map: 1,
        page: 4,
        pages: 1,
        prot: PROT_READ,
    },
    Step::Munmap {
        map: 1,
        page: 3,
        pages: 1,
    },
    Step::Discard { map: 0, page: 0 },
    Step::Write {
        map: 2,
        page: 0,
        fill: 5,
    },
    Step::Brk { grow: 3 },
    Step::WriteBrk { page: 2, fill: 6 },
    Step::Write {
        map: 0,
        page: 1,
        fill: 7,
    },
    Step::Exit,
];

/// The home reaches the owner while it is up.
struct ToOwner<'a> {
    owner: &'a mut Monitor<Mem>,
    up: bool,
}

impl Remote<Mem> for ToOwner<'_> {
    fn call(&mut self, dst: u32, request: &[u8], _: &mut Owner<Mem>) -> Option<Vec<u8>> {
        let home = Source {
            id: HOME,
            memory: true,
        };
        (dst == OWNER && self.up).then(|| self.owner.handle(home, request, &mut NoPeers))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Home,
    Owner,
}

/// The three components, who is down, and the processor's view.
struct Rack {
    home: Monitor<Mem>,
    owner: Monitor<Mem>,
    copy: Monitor<Mem>,
    home_up: bool,
    owner_up: bool,
    p: Processor,
    /// vRegion -> its owner, as the home named it.
    owners: BTreeMap<u64, u32>,
    /// The process moved whole to the copy.
    moved: bool,
}

impl Rack {
    fn new() -> Rack {
        let mut home = component(HOME, &[OWNER]);
        home.set_backup(COPY);
        Rack {
            home,
            owner: component(OWNER, &[]),
            copy: component(COPY, &[]),
            home_up: true,
            owner_up: true,
            p: Processor::new(),
            owners: BTreeMap::new(),
            moved: false,
        }
    }

    /// `request` to `dst` as the processor sends it; None when it is down.
    fn to(&mut self, dst: u32, request: &[u8]) -> Option<Vec<u8>> {
        match dst {
            HOME if self.home_up => Some(self.home.handle(
                PROCESSOR,
                request,
                &mut ToOwner {
                    owner: &mut self.owner,
                    up: self.owner_up,
                },
            )),
            OWNER if self.owner_up => Some(ask(&mut self.owner, request)),
            COPY => Some(ask(&mut self.copy, request)),
            _ => None,
        }
    }

    /// The process moves whole to the copy: the next request takes it over.
    fn move_to_copy(&mut self) {
        self.moved = true;
        self.p.epoch = 2;
        self.p.take_over = true;
    }

    /// The page the write-back `step` is about, if it is one.
    fn written(&self, step: Step) -> Option<u64> {
        match step {
            Step::Write { map, page, .. } | Step::WriteMany { map, page, .. } => {
                Some(self.p.maps[map] + page * P)
            }
            Step::WriteBrk { page, .. } => Some(BRK + page * P),
            _ => None,
        }
    }

    /// Sends `step` as the processor does; `drop_answer`: the component it
    /// goes to takes it but dies before answering.
    fn step(&mut self, step: Step, drop_answer: Option<Victim>) {
        let request = self.p.request(step);
        if self.moved {
            let answer = self.to(COPY, &request).expect("the copy is up");
            self.p.acknowledged(step, &answer);
            return;
        }
        let page = self.written(step);
        let dst = page.map_or(HOME, |a| {
            self.owners.get(&vregion(a)).copied().unwrap_or(HOME)
        });
        let mut main = self.to(dst, &request);
        let victim = if dst == HOME {
            Victim::Home
        } else {
            Victim::Owner
        };
        if drop_answer == Some(victim) {
            main = None;
        }
        let chosen = main
            .as_ref()
            .map(|m| status_value(m))
            .and_then(|(s, v)| (s == OK).then_some(v));
        let theirs = self
            .to(COPY, &for_backup(&request, chosen))
            .expect("the copy is up");
        let Some(main) = main else {
            // No answer: the copy's stands.
            self.move_to_copy();
            self.p.acknowledged(step, &theirs);
            return;
        };
        let (status, value) = status_value(&main);
        if status == PEER_FAILED {
            assert_eq!((value, self.owner_up), (OWNER as u64, false));
            self.move_to_copy();
            self.p.acknowledged(step, &theirs);
            return;
        }
        if status == NOT_OWNER {
            // Sent on to the owner; the copy, holding all, took it.
            assert_eq!(status_value(&theirs).0, OK, "{step:?}");
            let a = page.expect("a page request");
            self.owners.insert(vregion(a), value as u32);
            match self.to(value as u32, &request) {
                Some(again) if drop_answer != Some(Victim::Owner) => {
                    assert_eq!(again, theirs, "{step:?} at the owner");
                    self.p.acknowledged(step, &again);
                }
                _ => {
                    self.move_to_copy();
                    self.p.acknowledged(step, &theirs);
                }
            }
            return;
        }
        assert_eq!(theirs, main, "the copy answers otherwise to {step:?}");
        self.p.acknowledged(step, &main);
    }
}

struct Expected {
    held: Vec<(VmaEntry, Vec<[u8; PAGE_LEN]>)>,
    frames_free: u64,
}

/// What one component alone holds after the steps (but the exit); the
/// copy of an undisturbed run holds the same, and the vRegions did spread.
fn expected() -> Expected {
    let mut alone = component(9, &[]);
    let mut p = Processor::new();
    for &s in &STEPS[..STEPS.len() - 1] {
        let request = p.request(s);
        let answer = ask(&mut alone, &request);
        p.acknowledged(s, &answer);
    }
    let held = holds(&mut alone, 1);
    let free = frames_free(&mut alone);
    // The moved mapping kept its pages.
    let page = |at: u64| {
        held.iter()
            .find(|(v, _)| v.start <= at && at < v.end)
            .map(|(v, pages)| pages[((at - v.start) / P) as usize])
    };
    assert!(p.maps[1] != 2 * G, "the mremap moved the mapping");
    assert_eq!(page(p.maps[1] + P), Some(page_of(2, 2 * G + P)));
    assert_eq!(page(p.maps[1] + 3 * P), None, "unmapped");
    assert_eq!(page(p.maps[0]), Some([0; PAGE_LEN]), "discarded");

    let mut rack = Rack::new();
    for &s in &STEPS[..STEPS.len() - 1] {
        rack.step(s, None);
    }
    assert!(!rack.moved);
    assert_eq!(
        rack.owners.get(&2),
        Some(&OWNER),
        "a vRegion was handed out"
    );
    assert!(rack.home.stats().vregions_handed_out >= 1);
    assert_eq!(holds(&mut rack.copy, 1), held, "the copy holds it whole");
    assert_eq!(frames_free(&mut rack.copy), free);
    assert!(
        frames_free(&mut rack.owner) < 64,
        "the owner holds pages of it"
    );
    Expected {
        held,
        frames_free: free,
    }
}

#[test]
fn the_home_or_an_owner_dies_at_every_step_and_the_copy_holds_all() {
    let expected = expected();
    for k in 0..STEPS.len() {
        for victim in [Victim::Home, Victim::Owner] {
            for reached in [false, true] {
                let at = format!(
                    "{victim:?} died at step {k} ({:?}, reached: {reached})",
                    STEPS[k]
                );
                let mut rack = Rack::new();
                for &s in &STEPS[..k] {
                    rack.step(s, None);
                }
                if reached {
                    rack.step(STEPS[k], Some(victim));
                }
                match victim {
                    Victim::Home => rack.home_up = false,
                    Victim::Owner => rack.owner_up = false,
                }
                let from = if reached { k + 1 } else { k };
                for &s in STEPS[..STEPS.len() - 1].iter().skip(from) {
                    rack.step(s, None);
                }
                let last = STEPS.len() - 1;
                if k < last {
                    let epoch = rack.p.epoch;
                    if core::mem::take(&mut rack.p.take_over) {
                        let mut maps = head(OP_MAPS, 0, 0);
                        maps.epoch = epoch;
                        maps.flags = FLAG_TAKEOVER;
                        let out = ask(&mut rack.copy, zerocopy::IntoBytes::as_bytes(&maps));
                        assert_eq!(status_value(&out).0, OK, "{at}");
                    }
                    assert_eq!(holds(&mut rack.copy, epoch), expected.held, "{at}");
                    assert_eq!(frames_free(&mut rack.copy), expected.frames_free, "{at}");
                    if rack.moved && rack.home_up && k > 0 {
                        // The home, left behind alive, serves nothing at
                        // the new epoch.
                        let mut read = head(OP_READ, rack.p.maps[0], 0);
                        read.epoch = 2;
                        let out = rack.to(HOME, zerocopy::IntoBytes::as_bytes(&read));
                        assert_eq!(out.map(|o| status_value(&o).0), Some(STALE_EPOCH), "{at}");
                    }
                }
                if !(reached && k == last) {
                    rack.step(Step::Exit, None);
                }
                assert!(holds_nothing(&mut rack.copy), "{at}, then the exit");
                assert!(
                    rack.moved || (rack.home_up && victim == Victim::Owner),
                    "{at}: the process moved to the copy"
                );
            }
        }
    }
}
