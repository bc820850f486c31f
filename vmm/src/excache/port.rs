//! The ExCache's hypercalls. PORT_PROCESS_START and PORT_VREGION: a
//! process given a window slot, and a vRegion of it that the VMM must back.
//! PORT_MEMORY_CALL: a process's memory call
//! (mmap, munmap, mprotect, mremap, brk, fork, OP_MAPS...) made at its home
//! through the ExCache, so the cache follows what changed; the argument and
//! the reply travel in guest RAM; PORT_MEMORY_CALLS: several (an
//! execve's mappings) in one exit. PORT_USER_ACCESS: where the monitor
//! touches a process's memory, so that a refusal's page fault lands only
//! there.

use lego_proto::boot::UPPER_HALF;
use lego_proto::memory::{MemReply, BAD_REQUEST, PEER_FAILED};
use lego_proto::process::{
    MemoryCall, MemoryCalls, ProcessStart, UserAccess, VRegionMap, MEMORY_CALLS_MAX,
    PROCESS_FAULTS_TO_GUEST, PROCESS_SHARED_HOLDER,
};

use super::ExCache;
use crate::guest_args::GuestArgs;

/// Takes the [`ProcessStart`] at guest-physical `at`: status 0 when the
/// ExCache serves the process's slot, 1 without an ExCache, 2 when it
/// refused (logged).
pub fn process_start(cache: Option<&ExCache>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let mut p: ProcessStart = args.read_arg("process start", at)?;
    let to_guest = p.flags & PROCESS_FAULTS_TO_GUEST != 0;
    let holder = p.flags & PROCESS_SHARED_HOLDER != 0;
    p.status = match cache {
        None => 1,
        Some(c) => match c.set_process(p.slot, p.pid, p.home, to_guest, holder) {
            Ok(()) => 0,
            Err(why) => {
                log::warn!("excache: process {} in slot {}: {why}", p.pid, p.slot);
                2
            }
        },
    };
    args.write_arg("process start", at, &p)
}

/// Backs the vRegion the [`VRegionMap`] at `at` names: status 0, or 1
/// when there is no ExCache or it refused (logged).
pub fn vregion(cache: Option<&ExCache>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let mut r: VRegionMap = args.read_arg("vRegion map", at)?;
    r.status = match cache {
        None => 1,
        Some(c) => match c.ensure_vregion(r.slot, r.index) {
            Ok(()) => 0,
            Err(why) => {
                log::warn!("excache: vRegion {} of slot {}: {why}", r.index, r.slot);
                1
            }
        },
    };
    args.write_arg("vRegion map", at, &r)
}

/// Serves the call whose [`MemoryCall`] is at guest-physical `at`: the
/// reply, and what follows it (OP_MAPS's entries) in the caller's payload
/// buffer, are written back there. Without an ExCache the call is a bad
/// request; an unreachable home is PEER_FAILED (logged).
pub fn memory_call(cache: Option<&ExCache>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let mut call: MemoryCall = args.read_arg("memory call", at)?;
    let room = call.payload_len as usize;
    call.payload_len = 0;
    call.reply = match cache {
        None => MemReply {
            status: BAD_REQUEST,
            ..Default::default()
        },
        Some(c) => match c.memory_call(call.slot, call.request, &[]) {
            Ok((head, rest)) => {
                if call.payload != 0 && !rest.is_empty() {
                    let n = rest.len().min(room);
                    args.write_bytes("memory call's payload buffer", call.payload, &rest[..n])?;
                    call.payload_len = n as u32;
                }
                head
            }
            Err(fault) => {
                log::warn!("excache: {fault}");
                MemReply {
                    status: PEER_FAILED,
                    ..Default::default()
                }
            }
        },
    };
    args.write_arg("memory call", at, &call)
}

/// Serves the calls of the [`MemoryCalls`] at guest-physical `at`: each
/// one's reply written back there. More than [`MEMORY_CALLS_MAX`] is a
/// refusal; without an ExCache each is a bad request; an unreachable home
/// makes each PEER_FAILED (logged).
pub fn memory_calls(cache: Option<&ExCache>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let mut calls: MemoryCalls = args.read_arg("memory calls", at)?;
    let n = calls.count as usize;
    let Some(requests) = calls.requests.get(..n) else {
        return Err(format!(
            "{n} memory calls at once, more than {MEMORY_CALLS_MAX}"
        ));
    };
    let failed = |status| {
        vec![
            MemReply {
                status,
                ..Default::default()
            };
            n
        ]
    };
    let replies = match cache {
        None => failed(BAD_REQUEST),
        Some(c) => c
            .memory_calls(calls.slot, requests)
            .unwrap_or_else(|fault| {
                log::warn!("excache: {fault}");
                failed(PEER_FAILED)
            }),
    };
    for (slot, reply) in calls.replies.iter_mut().zip(replies) {
        *slot = reply;
    }
    args.write_arg("memory calls", at, &calls)
}

/// Takes the monitor's user-access instructions from the [`UserAccess`] at
/// guest-physical `at` (named once; the same again is accepted). Without
/// an ExCache no fault is ever given, so there is nothing to keep.
pub fn user_access(cache: Option<&ExCache>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let arg: UserAccess = args.read_arg("user access", at)?;
    let rips = named(&arg)?;
    let Some(c) = cache else {
        return Ok(());
    };
    if c.user_access.set(rips.to_vec()).is_err()
        && c.user_access.get().map(Vec::as_slice) != Some(rips)
    {
        return Err("named other user-access instructions than it named before".into());
    }
    Ok(())
}

/// The instructions a [`UserAccess`] names, if they are monitor code.
fn named(arg: &UserAccess) -> Result<&[u64], String> {
    let rips = arg.rips.get(..arg.count as usize).ok_or_else(|| {
        format!(
            "named {} user-access instructions, more than {}",
            arg.count,
            arg.rips.len()
        )
    })?;
    match rips.iter().find(|&&rip| rip < UPPER_HALF) {
        Some(rip) => Err(format!(
            "named a user-access instruction at {rip:#x}, outside monitor code"
        )),
        None => Ok(rips),
    }
}

/// Whether a vCPU at `rip` can be waiting on an access to a process's
/// memory: in the process, or in monitor code at one of the instructions
/// `named` (all monitor code while none are).
fn may_wait_at(rip: u64, named: Option<&[u64]>) -> bool {
    rip < UPPER_HALF || named.is_none_or(|rips| rips.contains(&rip))
}

impl ExCache {
    /// Whether a refusal's page fault may be given to a vCPU at `rip`
    /// (see [`UserAccess`]).
    pub fn may_wait_at(&self, rip: u64) -> bool {
        may_wait_at(rip, self.user_access.get().map(Vec::as_slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(rips: &[u64]) -> UserAccess {
        let mut a = UserAccess {
            count: rips.len() as u32,
            ..Default::default()
        };
        a.rips[..rips.len()].copy_from_slice(rips);
        a
    }

    #[test]
    fn only_monitor_code_is_named() {
        let copy = UPPER_HALF + 0x1000;
        assert_eq!(named(&arg(&[copy, copy + 8])), Ok(&[copy, copy + 8][..]));
        assert!(named(&arg(&[copy, 0x401000])).is_err());
        let mut too_many = arg(&[copy]);
        too_many.count = 9;
        assert!(named(&too_many).is_err());
    }

    #[test]
    fn a_fault_lands_in_the_process_or_at_a_named_copy() {
        let copy = UPPER_HALF + 0x1000;
        assert!(may_wait_at(0x401000, Some(&[copy])));
        assert!(may_wait_at(copy, Some(&[copy])));
        assert!(!may_wait_at(copy + 2, Some(&[copy])), "a trap entry, say");
        assert!(may_wait_at(copy + 2, None), "nothing named yet");
    }
}
