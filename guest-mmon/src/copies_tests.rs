//! Crash tests of two copies, with the monitor's own logic in-process:
//! a processor sends each change to a memory component and to its backup
//! (the backup's version of the request from `lego_proto`'s `for_backup`,
//! as the processor's ExCache makes it), one copy dies at every step of a
//! sequence (before the step reached it, or after it did but before the
//! answer was acknowledged), and the processor carries on at the other: a
//! take-over at a new epoch when the primary died, the backup dropped when
//! the backup died. The survivor must end up holding exactly what both
//! copies hold in a run without a crash (every mapping, every page), and
//! epochs must hold: a copy left behind refuses the new epoch and serves
//! no page at it, the survivor refuses the old one.
//!
//! Processes homed at one component; `spread_copies_tests` has those
//! whose vRegions are handed to other components.

use alloc::vec::Vec;

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::frames::VecFrames as Mem;
use crate::owner::Source;
use crate::service::{Monitor, NoPeers};
use crate::space::{PROT_READ, PROT_WRITE};

pub(crate) const PAGE_LEN: usize = crate::PAGE as usize;
pub(crate) const P: u64 = crate::PAGE;
pub(crate) const PID: u32 = 7;
pub(crate) const RW: u32 = PROT_READ | PROT_WRITE;
/// The processor, as the fabric vouches for it.
pub(crate) const PROCESSOR: Source = Source {
    id: 100,
    memory: false,
};

fn component(id: u32) -> Monitor<Mem> {
    Monitor::new(id, &[], Mem(alloc::vec![[0; PAGE_LEN]; 64]), 64)
}

/// One change a program makes; `map` is the index of an earlier mmap
/// (its address as the serving copy answered it).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    New,
    Mmap {
        pages: u64,
    },
    /// At `at` (MAP_FIXED).
    MmapAt {
        at: u64,
        pages: u64,
    },
    Write {
        map: usize,
        page: u64,
        fill: u8,
    },
    WriteMany {
        map: usize,
        page: u64,
        n: u64,
        fill: u8,
    },
    Munmap {
        map: usize,
        page: u64,
        pages: u64,
    },
    Mprotect {
        map: usize,
        page: u64,
        pages: u64,
        prot: u32,
    },
    Mremap {
        map: usize,
        from: u64,
        to: u64,
    },
    Discard {
        map: usize,
        page: u64,
    },
    Brk {
        grow: u64,
    },
    WriteBrk {
        page: u64,
        fill: u8,
    },
    Exit,
}

pub(crate) const BRK: u64 = 0x40_0000;

/// A program's changes: mappings made, written, cut, protected, moved
/// and discarded, and the break grown and written.
const STEPS: &[Step] = &[
    Step::New,
    Step::Mmap { pages: 8 },
    Step::Write {
        map: 0,
        page: 0,
        fill: 1,
    },
    Step::WriteMany {
        map: 0,
        page: 2,
        n: 4,
        fill: 2,
    },
    Step::Mmap { pages: 4 },
    Step::Write {
        map: 1,
        page: 3,
        fill: 3,
    },
    Step::Munmap {
        map: 0,
        page: 3,
        pages: 1,
    },
    Step::Mprotect {
        map: 0,
        page: 4,
        pages: 2,
        prot: PROT_READ,
    },
    Step::Mremap {
        map: 1,
        from: 4,
        to: 16,
    },
    Step::Write {
        map: 1,
        page: 12,
        fill: 4,
    },
    Step::Discard { map: 0, page: 0 },
    Step::Brk { grow: 3 },
    Step::WriteBrk { page: 2, fill: 5 },
    Step::Write {
        map: 0,
        page: 1,
        fill: 6,
    },
];

pub(crate) fn page_of(fill: u8, at: u64) -> [u8; PAGE_LEN] {
    let mut p = [fill; PAGE_LEN];
    p[..8].copy_from_slice(&at.to_le_bytes());
    p
}

pub(crate) fn head(op: u32, addr: u64, len: u64) -> MemRequest {
    MemRequest {
        op,
        pid: PID,
        addr,
        len,
        ..Default::default()
    }
}

/// The processor's side: where the mappings are, and which epoch it is at.
pub(crate) struct Processor {
    pub(crate) maps: Vec<u64>,
    pub(crate) epoch: u32,
    /// The next request to the serving copy takes the process over.
    pub(crate) take_over: bool,
}

impl Processor {
    pub(crate) fn new() -> Processor {
        Processor {
            maps: Vec::new(),
            epoch: 1,
            take_over: false,
        }
    }

    /// The request for `step`, at this processor's epoch.
    pub(crate) fn request(&mut self, step: Step) -> Vec<u8> {
        let (mut r, tail): (MemRequest, Vec<u8>) = match step {
            Step::New => (head(OP_NEW, BRK, 0), Vec::new()),
            Step::Mmap { pages } => {
                let mut r = head(OP_MMAP, 0, pages * P);
                r.prot = RW;
                (r, Vec::new())
            }
            Step::MmapAt { at, pages } => {
                let mut r = head(OP_MMAP, at, pages * P);
                r.prot = RW;
                r.flags = FLAG_FIXED;
                (r, Vec::new())
            }
            Step::Write { map, page, fill } => {
                let at = self.maps[map] + page * P;
                let mut r = head(OP_WRITE, at, 0);
                r.flags = FLAG_WRITEBACK;
                (r, page_of(fill, at).to_vec())
            }
            Step::WriteMany { map, page, n, fill } => {
                let mut r = head(OP_WRITE_MANY, 0, n);
                r.flags = FLAG_WRITEBACK;
                let addrs: Vec<u64> = (0..n).map(|i| self.maps[map] + (page + i) * P).collect();
                let mut tail = Vec::new();
                for a in &addrs {
                    tail.extend_from_slice(&a.to_le_bytes());
                }
                for a in &addrs {
                    tail.extend_from_slice(&page_of(fill, *a));
                }
                (r, tail)
            }
            Step::Munmap { map, page, pages } => (
                head(OP_MUNMAP, self.maps[map] + page * P, pages * P),
                Vec::new(),
            ),
            Step::Mprotect {
                map,
                page,
                pages,
                prot,
            } => {
                let mut r = head(OP_MPROTECT, self.maps[map] + page * P, pages * P);
                r.prot = prot;
                (r, Vec::new())
            }
            Step::Mremap { map, from, to } => {
                let mut r = head(OP_MREMAP, self.maps[map], from * P);
                r.arg = to * P;
                r.flags = FLAG_MAYMOVE;
                (r, Vec::new())
            }
            Step::Discard { map, page } => {
                (head(OP_DISCARD, self.maps[map] + page * P, P), Vec::new())
            }
            Step::Brk { grow } => (head(OP_BRK, BRK + grow * P, 0), Vec::new()),
            Step::WriteBrk { page, fill } => {
                let at = BRK + page * P;
                let mut r = head(OP_WRITE, at, 0);
                r.flags = FLAG_WRITEBACK;
                (r, page_of(fill, at).to_vec())
            }
            Step::Exit => (head(OP_EXIT, 0, 0), Vec::new()),
        };
        r.epoch = self.epoch;
        if core::mem::take(&mut self.take_over) {
            r.flags |= FLAG_TAKEOVER;
        }
        let mut out = r.as_bytes().to_vec();
        out.extend_from_slice(&tail);
        out
    }

    /// Learns what an acknowledged answer to `step` says.
    pub(crate) fn acknowledged(&mut self, step: Step, answer: &[u8]) {
        let (status, value) = status_value(answer);
        assert_eq!(status, OK, "{step:?} refused");
        match step {
            Step::Mmap { .. } | Step::MmapAt { .. } => self.maps.push(value),
            Step::Mremap { map, .. } => {
                assert_ne!(self.maps[map], value, "the mremap was meant to move");
                self.maps[map] = value;
            }
            _ => {}
        }
    }
}

pub(crate) fn status_value(out: &[u8]) -> (u32, u64) {
    let (r, _) = MemReply::read_from_prefix(out).expect("a reply");
    (r.status, r.value)
}

/// `request` to `m`, and its reply's (status, value).
pub(crate) fn ask(m: &mut Monitor<Mem>, request: &[u8]) -> Vec<u8> {
    m.handle(PROCESSOR, request, &mut NoPeers)
}

/// Sends `step` to the serving copy and, when there is one, its backup;
/// both must answer alike.
fn both(
    p: &mut Processor,
    serving: &mut Monitor<Mem>,
    backup: Option<&mut Monitor<Mem>>,
    step: Step,
) {
    let request = p.request(step);
    let main = ask(serving, &request);
    if let Some(b) = backup {
        let (status, value) = status_value(&main);
        let chosen = (status == OK).then_some(value);
        let again = for_backup(&request, chosen);
        let theirs = ask(b, &again);
        // Byte for byte, as the processor's `mirror::settle` compares them
        // (epoch and per-page statuses included).
        assert_eq!(theirs, main, "the copies differ on {step:?}");
    }
    p.acknowledged(step, &main);
}

/// What a copy holds of the process at `epoch`: its mappings, and every
/// page of them (read without taking frames).
pub(crate) fn holds(m: &mut Monitor<Mem>, epoch: u32) -> Vec<(VmaEntry, Vec<[u8; PAGE_LEN]>)> {
    let mut maps = head(OP_MAPS, 0, 0);
    maps.epoch = epoch;
    let out = ask(m, maps.as_bytes());
    let (status, n) = status_value(&out);
    assert_eq!(status, OK);
    let vmas = <[VmaEntry]>::ref_from_prefix_with_elems(&out[REPLY_LEN..], n as usize)
        .expect("VMAs")
        .0
        .to_vec();
    vmas.into_iter()
        .map(|v| {
            let pages = (v.start..v.end)
                .step_by(PAGE_LEN)
                .map(|at| {
                    let mut read = head(OP_READ, at, 0);
                    read.flags = FLAG_PEEK | FLAG_WRITEBACK;
                    read.epoch = epoch;
                    let out = ask(m, read.as_bytes());
                    assert_eq!(status_value(&out).0, OK, "reading {at:#x}");
                    out[REPLY_LEN..REPLY_LEN + PAGE_LEN]
                        .try_into()
                        .expect("a page")
                })
                .collect();
            (v, pages)
        })
        .collect()
}

/// Whether `m` holds nothing any more: no process, every frame free.
pub(crate) fn holds_nothing(m: &mut Monitor<Mem>) -> bool {
    let out = ask(m, head(OP_STATS, 0, 0).as_bytes());
    let s = MemStats::read_from_prefix(&out[REPLY_LEN..])
        .expect("stats")
        .0;
    s.processes == 0 && s.frames_free == s.frames_total
}

/// The frames a copy has free.
pub(crate) fn frames_free(m: &mut Monitor<Mem>) -> u64 {
    let out = ask(m, head(OP_STATS, 0, 0).as_bytes());
    MemStats::read_from_prefix(&out[REPLY_LEN..])
        .expect("stats")
        .0
        .frames_free
}

/// What both copies hold after every step, no crash (checked against what
/// the steps must leave), and their free frames.
struct Expected {
    held: Vec<(VmaEntry, Vec<[u8; PAGE_LEN]>)>,
    frames_free: u64,
}

fn undisturbed() -> Expected {
    let (mut a, mut b) = (component(1), component(2));
    let mut p = Processor::new();
    for &s in STEPS {
        both(&mut p, &mut a, Some(&mut b), s);
    }
    let held = holds(&mut a, 1);
    assert_eq!(held, holds(&mut b, 1), "the copies differ without a crash");
    // What the steps leave, as Linux would: the discarded page reads as
    // zeros, the moved mapping keeps its page, the break's page is there,
    // the unmapped page is gone.
    let page = |at: u64| {
        held.iter()
            .find(|(v, _)| v.start <= at && at < v.end)
            .map(|(v, pages)| pages[((at - v.start) / P) as usize])
    };
    assert_eq!(page(p.maps[0]), Some([0; PAGE_LEN]));
    assert_eq!(page(p.maps[0] + P), Some(page_of(6, p.maps[0] + P)));
    assert_eq!(page(p.maps[0] + 2 * P), Some(page_of(2, p.maps[0] + 2 * P)));
    assert_eq!(page(p.maps[0] + 3 * P), None);
    assert_eq!(page(p.maps[0] + 4 * P), Some(page_of(2, p.maps[0] + 4 * P)));
    // Written before the move: its content came along.
    let moved = page(p.maps[1] + 3 * P).expect("the moved page");
    assert!(moved[8..].iter().all(|&b| b == 3));
    assert_eq!(
        page(p.maps[1] + 12 * P),
        Some(page_of(4, p.maps[1] + 12 * P))
    );
    assert_eq!(page(BRK + 2 * P), Some(page_of(5, BRK + 2 * P)));
    let free = frames_free(&mut a);
    assert_eq!(free, frames_free(&mut b));
    Expected {
        held,
        frames_free: free,
    }
}

/// How the processor finds the primary gone at step k.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// Before sending it (the connection had ended): step k goes to the
    /// backup alone, at the new epoch, taking the process over.
    Known,
    /// Step k reached the primary alone, which died before answering: not
    /// acknowledged, so sent again to the backup as above.
    ReachedPrimary,
    /// Step k went to both in one round (the backup's version made
    /// without the primary's answer); the primary, which got it or not,
    /// never answered; the backup's answer stands, and the take-over comes
    /// with the next request.
    Mirrored { reached_primary: bool },
}

const DEATHS: [Death; 4] = [
    Death::Known,
    Death::ReachedPrimary,
    Death::Mirrored {
        reached_primary: false,
    },
    Death::Mirrored {
        reached_primary: true,
    },
];

/// Every step, then the exit.
fn with_exit() -> Vec<Step> {
    let mut all = STEPS.to_vec();
    all.push(Step::Exit);
    all
}

#[test]
fn the_primary_dies_at_every_step_and_the_backup_holds_all() {
    let expected = undisturbed();
    let all = with_exit();
    for k in 0..all.len() {
        for death in DEATHS {
            let at = format!("the primary died at step {k} ({:?}, {death:?})", all[k]);
            let (mut primary, mut backup) = (component(1), component(2));
            let mut p = Processor::new();
            for &s in &all[..k] {
                both(&mut p, &mut primary, Some(&mut backup), s);
            }
            let step = all[k];
            match death {
                Death::Known | Death::ReachedPrimary => {
                    if matches!(death, Death::ReachedPrimary) {
                        let request = p.request(step);
                        ask(&mut primary, &request);
                    }
                    p.epoch = 2;
                    p.take_over = true;
                    both(&mut p, &mut backup, None, step);
                }
                Death::Mirrored { reached_primary } => {
                    let request = p.request(step);
                    if reached_primary {
                        ask(&mut primary, &request);
                    }
                    let theirs = ask(&mut backup, &for_backup(&request, None));
                    p.acknowledged(step, &theirs);
                    p.epoch = 2;
                    p.take_over = true;
                }
            }
            for &s in &all[k + 1..] {
                if matches!(s, Step::Exit) {
                    break;
                }
                both(&mut p, &mut backup, None, s);
            }
            if matches!(step, Step::Exit) {
                assert!(holds_nothing(&mut backup), "{at}");
                continue;
            }
            if core::mem::take(&mut p.take_over) {
                // The last step went to both: the take-over comes with
                // the processor's next request, a listing here.
                let mut maps = head(OP_MAPS, 0, 0);
                maps.epoch = 2;
                maps.flags = FLAG_TAKEOVER;
                assert_eq!(
                    status_value(&ask(&mut backup, maps.as_bytes())).0,
                    OK,
                    "{at}"
                );
            }
            assert_eq!(holds(&mut backup, 2), expected.held, "{at}");
            assert_eq!(frames_free(&mut backup), expected.frames_free, "{at}");
            // The survivor refuses the old epoch, and changes nothing.
            let mut stale = head(OP_WRITE, p.maps[0], 0);
            stale.epoch = 1;
            stale.flags = FLAG_WRITEBACK;
            let mut bytes = stale.as_bytes().to_vec();
            bytes.extend_from_slice(&[0xee; PAGE_LEN]);
            assert_eq!(
                status_value(&ask(&mut backup, &bytes)),
                (STALE_EPOCH, 2),
                "{at}"
            );
            assert_eq!(holds(&mut backup, 2), expected.held, "{at}");
            // The primary, left behind (stopped, not dead), serves nothing
            // at the new epoch and takes no write.
            let primary_has_it = k > 0
                || matches!(
                    death,
                    Death::ReachedPrimary
                        | Death::Mirrored {
                            reached_primary: true
                        }
                );
            if primary_has_it {
                let mut read = head(OP_READ, p.maps[0], 0);
                read.epoch = 2;
                assert_eq!(
                    status_value(&ask(&mut primary, read.as_bytes())).0,
                    STALE_EPOCH,
                    "{at}"
                );
                let mut write = stale;
                write.epoch = 2;
                let mut bytes = write.as_bytes().to_vec();
                bytes.extend_from_slice(&[0xee; PAGE_LEN]);
                assert_eq!(
                    status_value(&ask(&mut primary, &bytes)).0,
                    STALE_EPOCH,
                    "{at}"
                );
            }
            // The process exits at the survivor: nothing is left there.
            both(&mut p, &mut backup, None, Step::Exit);
            assert!(holds_nothing(&mut backup), "{at}, then the exit");
        }
    }
}

#[test]
fn the_backup_dies_at_every_step_and_the_primary_holds_all() {
    let expected = undisturbed();
    let all = with_exit();
    for k in 0..all.len() {
        for reached in [false, true] {
            let at = format!(
                "the backup died at step {k} ({:?}, reached: {reached})",
                all[k]
            );
            let (mut primary, mut backup) = (component(1), component(2));
            let mut p = Processor::new();
            for &s in &all[..k] {
                both(&mut p, &mut primary, Some(&mut backup), s);
            }
            // The step reaches the primary; the backup dies with or
            // without it, and is dropped: the primary goes on alone, at
            // the same epoch.
            let request = p.request(all[k]);
            let main = ask(&mut primary, &request);
            if reached {
                let (status, value) = status_value(&main);
                ask(
                    &mut backup,
                    &for_backup(&request, (status == OK).then_some(value)),
                );
            }
            p.acknowledged(all[k], &main);
            if matches!(all[k], Step::Exit) {
                assert!(holds_nothing(&mut primary), "{at}");
                continue;
            }
            for &s in &all[k + 1..all.len() - 1] {
                both(&mut p, &mut primary, None, s);
            }
            assert_eq!(holds(&mut primary, 1), expected.held, "{at}");
            assert_eq!(frames_free(&mut primary), expected.frames_free, "{at}");
            both(&mut p, &mut primary, None, Step::Exit);
            assert!(holds_nothing(&mut primary), "{at}, then the exit");
        }
    }
}
