//! Copies of a memory component, kept by the processors that use it: the
//! rules by which a request and its two answers (from a component and from
//! its backup, `--backup`) become one, with no I/O here.
//!
//! Why processors send each change to both copies, rather than the memory
//! component forwarding it to its backup (LegoOS's way): here a memory
//! component's monitor is a guest, and a guest-to-guest round trip costs
//! 120-180 us where a host round trip costs 15-20 us (PVM.md and the
//! fabric benchmark), so a forwarded write-back would take a second
//! guest-to-guest trip in series before its answer; sent by the processor
//! to both at once, it costs the slower of two trips in parallel. The
//! processor holds every dirty page until it is acknowledged anyway, so
//! "acknowledged" means "both have it": nothing acknowledged is lost when
//! either dies. Two components that back up each other cannot wait for
//! each other. The price: a processor sends its write-backs twice.
//!
//! Both copies apply the same requests in the same order (the ExCache
//! sends a process's memory calls one at a time, after its write-backs in
//! flight land), so they decide alike; an mmap is sent to the backup at
//! the address its component chose, and answers that differ drop the
//! backup (with a warning that one copy is left), never the data.

use lego_proto::memory::*;
use zerocopy::FromBytes;

use crate::fabric::CallReply;

/// Whether a request changes what a memory component holds, so its
/// backup must get it too. Reads are not: a page never written reads as
/// zeros at either.
pub fn changes_state(op: u32) -> bool {
    matches!(
        op,
        OP_NEW
            | OP_EXIT
            | OP_MMAP
            | OP_MUNMAP
            | OP_MPROTECT
            | OP_BRK
            | OP_MREMAP
            | OP_FORK
            | OP_DISCARD
            | OP_WRITE
            | OP_WRITE_MANY
            | OP_READ_WRITE
    )
}

/// The request to send the backup once its component answered `main`
/// (see [`lego_proto::memory::for_backup`]).
pub fn for_backup(request: &[u8], main: &CallReply) -> Vec<u8> {
    let chosen = main
        .as_ref()
        .ok()
        .and_then(|body| MemReply::read_from_prefix(body).ok())
        .filter(|(head, _)| head.status == OK)
        .map(|(head, _)| head.value);
    lego_proto::memory::for_backup(request, chosen)
}

/// What became of a request sent to a component (and maybe its backup).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The component answered (and the backup alike, if it got it).
    Agreed(CallReply),
    /// The component answered, its backup failed or answered otherwise:
    /// the backup is dropped.
    BackupLost {
        backup: u32,
        why: String,
        reply: CallReply,
    },
    /// The component did not answer; its backup did, and takes over.
    TakenOver {
        backup: u32,
        why: String,
        reply: CallReply,
    },
    /// The component did not answer and the request went to it alone.
    Alone { why: String },
    /// Neither answered.
    BothLost {
        backup: u32,
        why: String,
        backup_why: String,
    },
}

/// Whether the answers of a component (`main`) and of the backup holding
/// the process (`copy`) to request `op` say the same: the same status,
/// value and what follows; or `main` sent the request (or, in an
/// OP_WRITE_MANY, some of its pages) on to the owner of a vRegion it
/// handed out (NOT_OWNER), or, `at_owner` (`main` owns a vRegion of the
/// process), no longer holds it (EFAULT, ESRCH: emptied and handed to
/// another since), and the backup, holding the whole process, took it.
/// The processor sends those again through the home.
pub fn alike(op: u32, at_owner: bool, main: &[u8], copy: &[u8]) -> bool {
    if main == copy {
        return true;
    }
    let (Ok((m, m_rest)), Ok((c, c_rest))) = (
        MemReply::read_from_prefix(main),
        MemReply::read_from_prefix(copy),
    ) else {
        return false;
    };
    let sent_on =
        |status: u32| status == NOT_OWNER || (at_owner && matches!(status, EFAULT | ESRCH));
    if sent_on(m.status) {
        return c.status == OK;
    }
    let statuses = |b: &[u8]| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    // The value is the pages written: the backup wrote the sent-on ones too.
    let (ms, cs) = (statuses(m_rest), statuses(c_rest));
    let elsewhere = ms
        .iter()
        .zip(&cs)
        .filter(|(&a, &b)| a != b && sent_on(a) && b == OK)
        .count() as u64;
    op == OP_WRITE_MANY
        && (m.status, m.epoch) == (c.status, c.epoch)
        && m.value.checked_add(elsewhere) == Some(c.value)
        && ms.len() == cs.len()
        && ms
            .iter()
            .zip(&cs)
            .all(|(&a, &b)| a == b || (sent_on(a) && b == OK))
}

/// Makes one outcome of a component's answer `main` to request `op` and
/// the backup's (see [`alike`] for `at_owner`). An `Err` is an answer that
/// never came (the fabric's error: unreachable, timed out); a memory
/// status, even a refusal, is an answer.
pub fn settle(
    op: u32,
    at_owner: bool,
    main: CallReply,
    mirror: Option<(u32, CallReply)>,
) -> Outcome {
    match (main, mirror) {
        (Ok(body), None) => Outcome::Agreed(Ok(body)),
        (Ok(body), Some((backup, Ok(copy)))) => {
            if alike(op, at_owner, &body, &copy) {
                Outcome::Agreed(Ok(body))
            } else {
                Outcome::BackupLost {
                    backup,
                    why: format!(
                        "it answered otherwise: {} where its component said {}",
                        describe(&copy),
                        describe(&body)
                    ),
                    reply: Ok(body),
                }
            }
        }
        (Ok(body), Some((backup, Err(why)))) => Outcome::BackupLost {
            backup,
            why,
            reply: Ok(body),
        },
        (Err(why), Some((backup, Ok(copy)))) => Outcome::TakenOver {
            backup,
            why,
            reply: Ok(copy),
        },
        (Err(why), Some((backup, Err(backup_why)))) => Outcome::BothLost {
            backup,
            why,
            backup_why,
        },
        (Err(why), None) => Outcome::Alone { why },
    }
}

fn describe(body: &[u8]) -> String {
    match MemReply::read_from_prefix(body) {
        Ok((h, _)) => format!("status {} value {:#x}", h.status, h.value),
        Err(_) => "no memory reply".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    fn answer(status: u32, value: u64) -> CallReply {
        Ok(MemReply {
            status,
            epoch: 0,
            value,
        }
        .as_bytes()
        .to_vec()
        .into())
    }

    #[test]
    fn reads_and_lookups_go_to_one_copy_changes_to_both() {
        for op in [OP_READ, OP_STATS, OP_MAPS, OP_BACKUP, OP_PRESENT] {
            assert!(!changes_state(op), "op {op}");
        }
        for op in [
            OP_WRITE,
            OP_WRITE_MANY,
            OP_MMAP,
            OP_MUNMAP,
            OP_NEW,
            OP_EXIT,
            OP_FORK,
        ] {
            assert!(changes_state(op), "op {op}");
        }
    }

    #[test]
    fn an_mmap_goes_to_the_backup_where_its_component_put_it() {
        let req = MemRequest {
            op: OP_MMAP,
            pid: 7,
            addr: 0,
            len: 8192,
            prot: 3,
            ..Default::default()
        };
        let mut bytes = req.as_bytes().to_vec();
        bytes.extend_from_slice(b"tail");
        let out = for_backup(&bytes, &answer(OK, 0x7f00_0000));
        let (got, rest) = MemRequest::read_from_prefix(&out).expect("a request");
        assert_eq!(
            (got.addr, got.flags & FLAG_FIXED),
            (0x7f00_0000, FLAG_FIXED)
        );
        assert_eq!((got.pid, got.len, got.prot), (7, 8192, 3));
        assert_eq!(rest, b"tail");
        // Refused, or not an mmap: as it was.
        assert_eq!(for_backup(&bytes, &answer(ENOMEM, 0)), bytes);
        assert_eq!(for_backup(&bytes, &Err("gone".into())), bytes);
        let write = MemRequest {
            op: OP_WRITE,
            addr: 0x1000,
            ..Default::default()
        };
        assert_eq!(
            for_backup(write.as_bytes(), &answer(OK, 5)),
            write.as_bytes()
        );
        let new = MemRequest {
            op: OP_NEW,
            pid: 7,
            ..Default::default()
        };
        let out = for_backup(new.as_bytes(), &answer(OK, 0));
        let (got, _) = MemRequest::read_from_prefix(&out).expect("a request");
        assert_eq!((got.op, got.pid, got.flags), (OP_NEW, 7, FLAG_COPY));
    }

    #[test]
    fn two_answers_make_one() {
        assert_eq!(
            settle(OP_WRITE, false, answer(OK, 1), Some((2, answer(OK, 1)))),
            Outcome::Agreed(answer(OK, 1))
        );
        assert_eq!(
            settle(OP_WRITE, false, answer(EFAULT, 0), None),
            Outcome::Agreed(answer(EFAULT, 0))
        );
        // A refusal both make is an answer, agreed.
        assert_eq!(
            settle(
                OP_WRITE,
                false,
                answer(EFAULT, 0),
                Some((2, answer(EFAULT, 0)))
            ),
            Outcome::Agreed(answer(EFAULT, 0))
        );
        assert!(matches!(
            settle(OP_WRITE, false, answer(OK, 1), Some((2, answer(OUT_OF_FRAMES, 0)))),
            Outcome::BackupLost { backup: 2, reply, .. } if reply == answer(OK, 1)
        ));
        assert!(matches!(
            settle(OP_WRITE, false, answer(OK, 1), Some((2, Err("timed out".into())))),
            Outcome::BackupLost { backup: 2, reply, .. } if reply == answer(OK, 1)
        ));
        assert!(matches!(
            settle(OP_WRITE, false, Err("reset".into()), Some((2, answer(OK, 1)))),
            Outcome::TakenOver { backup: 2, reply, .. } if reply == answer(OK, 1)
        ));
        assert!(matches!(
            settle(OP_WRITE, false, Err("reset".into()), None),
            Outcome::Alone { .. }
        ));
        assert!(matches!(
            settle(
                OP_WRITE,
                false,
                Err("reset".into()),
                Some((2, Err("reset".into())))
            ),
            Outcome::BothLost { backup: 2, .. }
        ));
    }

    /// A home sends a write-back on to the owner of the page's vRegion;
    /// its backup holds the whole process and takes it: alike.
    #[test]
    fn a_redirect_where_the_backup_took_the_page_is_alike() {
        let body = |status: u32, value: u64, pages: &[u32]| {
            let mut b = MemReply {
                status,
                epoch: 1,
                value,
            }
            .as_bytes()
            .to_vec();
            for s in pages {
                b.extend_from_slice(&s.to_le_bytes());
            }
            b
        };
        assert!(alike(
            OP_WRITE,
            false,
            &body(NOT_OWNER, 3, &[]),
            &body(OK, 0, &[])
        ));
        assert!(!alike(
            OP_WRITE,
            false,
            &body(NOT_OWNER, 3, &[]),
            &body(OUT_OF_FRAMES, 0, &[])
        ));
        // The value counts the pages written.
        let main = body(OK, 2, &[OK, NOT_OWNER, OK]);
        assert!(alike(
            OP_WRITE_MANY,
            false,
            &main,
            &body(OK, 3, &[OK, OK, OK])
        ));
        assert!(!alike(
            OP_WRITE_MANY,
            false,
            &main,
            &body(OK, 2, &[OK, OK, OK])
        ));
        // Not the other way round, nor another refusal, nor another op.
        assert!(!alike(
            OP_WRITE_MANY,
            false,
            &body(OK, 3, &[OK, OK, OK]),
            &main
        ));
        assert!(!alike(
            OP_WRITE_MANY,
            false,
            &body(OK, 2, &[OK, EFAULT, OK]),
            &body(OK, 3, &[OK, OK, OK])
        ));
        assert!(!alike(
            OP_READ_WRITE,
            false,
            &main,
            &body(OK, 3, &[OK, OK, OK])
        ));
        assert!(!alike(
            OP_WRITE,
            false,
            &body(EFAULT, 0, &[]),
            &body(OK, 0, &[])
        ));
        // From an owner that no longer holds the vRegion: sent again
        // through the home.
        assert!(alike(
            OP_WRITE,
            true,
            &body(EFAULT, 0, &[]),
            &body(OK, 0, &[])
        ));
        let stale = body(OK, 1, &[ESRCH, OK]);
        assert!(alike(OP_WRITE_MANY, true, &stale, &body(OK, 2, &[OK, OK])));
        assert!(!alike(
            OP_WRITE_MANY,
            false,
            &stale,
            &body(OK, 2, &[OK, OK])
        ));
    }
}
