//! PORT_MEMORY_CALL: a process's memory call (mmap, munmap, mprotect,
//! mremap, brk, fork, OP_MAPS...) made at its home through the ExCache,
//! so the cache follows what changed. The argument and the reply travel
//! in guest RAM.

use lego_proto::memory::{MemReply, BAD_REQUEST, PEER_FAILED};
use lego_proto::process::MemoryCall;

use super::ExCache;
use crate::guest_args::GuestArgs;

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
