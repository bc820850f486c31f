//! The storage component's file calls (`lego_proto::storage`), made
//! through the VMM (PORT_STORAGE_CALL, one exit each): the VMM carries the
//! request over the fabric and the reply back. A storage component that
//! does not answer within the fabric timeout is EIO for the call, never a
//! hang.

use alloc::vec::Vec;

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::program::{StorageCall, PORT_STORAGE_CALL, STORAGE_OK};
use lego_proto::storage::*;

use super::Errno;

/// What a call gives back: the reply's head and what follows it.
pub struct Answer {
    pub value: u64,
    pub stat: StoreStat,
    pub data: Vec<u8>,
}

/// Room for any reply: its head and the most data one carries.
const REPLY_ROOM: usize = core::mem::size_of::<StoreReply>() + MAX_IO + 2 * PATH_MAX;

/// One request: `head`'s op and arguments, the paths and the data.
pub fn call(head: StoreRequest, path: &[u8], path2: &[u8], data: &[u8]) -> Result<Answer, Errno> {
    let request = encode_request(&head, path, path2, data);
    let mut reply = alloc::vec![0u8; REPLY_ROOM];
    let c = StorageCall {
        request: virt_to_phys(request.as_ptr() as u64),
        request_len: request.len() as u32,
        reply_room: reply.len() as u32,
        reply: virt_to_phys(reply.as_mut_ptr() as u64),
        reply_len: 0,
        status: 0,
    };
    hypercall::out(PORT_STORAGE_CALL, phys_of(&c) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let c = unsafe { core::ptr::read_volatile(&c) };
    if c.status != STORAGE_OK {
        return Err(EIO as Errno);
    }
    let got = reply.get(..c.reply_len as usize).ok_or(EIO as Errno)?;
    let (head, data) = decode_reply(got).map_err(|_| EIO as Errno)?;
    if head.errno != OK {
        return Err(head.errno as Errno);
    }
    Ok(Answer {
        value: head.value,
        stat: head.stat,
        data: data.to_vec(),
    })
}

/// A request with only an op, a path and flags set.
pub fn on_path(op: u32, path: &[u8], flags: u32, now: u64) -> Result<Answer, Errno> {
    call(
        StoreRequest {
            op,
            flags,
            now,
            ..Default::default()
        },
        path,
        &[],
        &[],
    )
}

pub fn stat(path: &[u8], follow: bool) -> Result<StoreStat, Errno> {
    on_path(OP_STAT, path, if follow { FLAG_FOLLOW } else { 0 }, 0).map(|a| a.stat)
}

pub fn stat_ino(ino: u64) -> Result<StoreStat, Errno> {
    call(
        StoreRequest {
            op: OP_STAT_INO,
            ino,
            ..Default::default()
        },
        &[],
        &[],
        &[],
    )
    .map(|a| a.stat)
}

/// Reads up to `len` bytes of `ino` at `offset`, in as many calls as it
/// takes (each carries at most MAX_IO); short only at the end of the file.
pub fn read(ino: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let want = (len - out.len()).min(MAX_IO);
        let a = call(
            StoreRequest {
                op: OP_READ,
                ino,
                offset: offset + out.len() as u64,
                len: want as u64,
                ..Default::default()
            },
            &[],
            &[],
            &[],
        )?;
        let n = a.data.len();
        out.extend_from_slice(&a.data);
        if n < want {
            break;
        }
    }
    Ok(out)
}

/// Writes `data` to `ino` at `offset` (or at its end with `append`), in
/// calls of at most MAX_IO; returns the offset the first byte went to.
pub fn write(ino: u64, offset: u64, data: &[u8], append: bool, now: u64) -> Result<u64, Errno> {
    let mut first = None;
    let mut at = offset;
    for chunk in data.chunks(MAX_IO) {
        let a = call(
            StoreRequest {
                op: OP_WRITE,
                ino,
                offset: at,
                flags: if append { FLAG_APPEND } else { 0 },
                now,
                ..Default::default()
            },
            &[],
            &[],
            chunk,
        )?;
        first.get_or_insert(a.value);
        at = a.value + chunk.len() as u64;
    }
    Ok(first.unwrap_or(offset))
}

pub fn simple(op: u32, ino: u64, offset: u64, now: u64) -> Result<Answer, Errno> {
    call(
        StoreRequest {
            op,
            ino,
            offset,
            now,
            ..Default::default()
        },
        &[],
        &[],
        &[],
    )
}
