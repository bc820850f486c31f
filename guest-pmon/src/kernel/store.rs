//! The storage component's file calls (`lego_proto::storage`), made
//! through the VMM (PORT_STORAGE_CALL, one exit each): the VMM carries the
//! request over the fabric and the reply back. A storage component that
//! does not answer within the fabric timeout is EIO for the call, never a
//! hang.

use alloc::vec::Vec;

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::program::{
    StorageBatch, StorageCall, PORT_STORAGE_BATCH, PORT_STORAGE_CALL, STORAGE_BATCH_MAX, STORAGE_OK,
};
use lego_proto::storage::*;

use super::Errno;

/// What a call gives back: the reply's head and what follows it.
pub struct Answer {
    pub value: u64,
    pub stat: StoreStat,
    pub data: Vec<u8>,
}

/// Room for the reply to `head`: its own head and the most data that
/// request may bring back (a read's length, a listing's room, a link's
/// target), so a stat does not clear 70 KiB and a batch of 32 reads no
/// more than it reads.
fn reply_room(head: &StoreRequest) -> usize {
    let data = match head.op {
        OP_READ | OP_READDIR => (head.len as usize).min(MAX_IO),
        OP_READLINK => PATH_MAX,
        OP_STATFS => core::mem::size_of::<StoreStatFs>(),
        OP_STATS => core::mem::size_of::<StoreStats>(),
        _ => 0,
    };
    core::mem::size_of::<StoreReply>() + data
}

/// The vNode of the process whose system call the kernel is serving:
/// every request carries it (the kernel serves calls one at a time,
/// under its lock, and sets it at each).
static VNODE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

pub fn set_vnode(v: u32) {
    VNODE.store(v, core::sync::atomic::Ordering::Relaxed);
}

pub fn vnode() -> u32 {
    VNODE.load(core::sync::atomic::Ordering::Relaxed)
}

/// A request's bytes, for the vNode of the call being served.
fn encode(head: &StoreRequest, path: &[u8], path2: &[u8], data: &[u8]) -> Vec<u8> {
    let head = StoreRequest {
        vnode: vnode(),
        ..*head
    };
    encode_request(&head, path, path2, data)
}

/// The VMM's view of one call: where its request and its reply room are.
fn storage_call(request: &[u8], reply: &mut [u8]) -> StorageCall {
    StorageCall {
        request: virt_to_phys(request.as_ptr() as u64),
        request_len: request.len() as u32,
        reply_room: reply.len() as u32,
        reply: virt_to_phys(reply.as_mut_ptr() as u64),
        reply_len: 0,
        status: 0,
    }
}

/// One request: `head`'s op and arguments, the paths and the data.
pub fn call(head: StoreRequest, path: &[u8], path2: &[u8], data: &[u8]) -> Result<Answer, Errno> {
    let request = encode(&head, path, path2, data);
    let mut reply = alloc::vec![0u8; reply_room(&head)];
    let c = storage_call(&request, &mut reply);
    hypercall::out(PORT_STORAGE_CALL, phys_of(&c) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let c = unsafe { core::ptr::read_volatile(&c) };
    answer(&c, &reply)
}

/// Data requests (`head`s, each with its data) sent together in one exit,
/// the storage component serving them back to back: their answers in
/// order.
fn batch(requests: &[(StoreRequest, &[u8])]) -> Vec<Result<Answer, Errno>> {
    let encoded: Vec<Vec<u8>> = requests
        .iter()
        .map(|(h, d)| encode(h, &[], &[], d))
        .collect();
    let mut replies: Vec<Vec<u8>> = requests
        .iter()
        .map(|(h, _)| alloc::vec![0u8; reply_room(h)])
        .collect();
    let mut calls: Vec<StorageCall> = encoded
        .iter()
        .zip(replies.iter_mut())
        .map(|(r, reply)| storage_call(r, reply))
        .collect();
    let b = StorageBatch {
        calls: virt_to_phys(calls.as_mut_ptr() as u64),
        count: calls.len() as u32,
        _pad: 0,
    };
    hypercall::out(PORT_STORAGE_BATCH, phys_of(&b) as u32);
    calls
        .iter()
        .zip(&replies)
        .map(|(c, reply)| {
            // SAFETY: the VMM wrote the calls during the hypercall.
            let c = unsafe { core::ptr::read_volatile(c) };
            answer(&c, reply)
        })
        .collect()
}

/// A call's answer, from its status and reply bytes.
fn answer(c: &StorageCall, reply: &[u8]) -> Result<Answer, Errno> {
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

/// Reads up to `len` bytes of `ino` at `offset`: pieces of at most
/// MAX_IO, up to STORAGE_BATCH_MAX of them in one exit; short only at the
/// end of the file (or at an error after some bytes, as read(2)).
pub fn read(ino: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let at = offset + out.len() as u64;
        let left = len - out.len();
        let pieces = left.div_ceil(MAX_IO).min(STORAGE_BATCH_MAX as usize);
        let requests: Vec<(StoreRequest, &[u8])> = (0..pieces)
            .map(|k| {
                let head = StoreRequest {
                    op: OP_READ,
                    ino,
                    offset: at + (k * MAX_IO) as u64,
                    len: (left - k * MAX_IO).min(MAX_IO) as u64,
                    ..Default::default()
                };
                (head, &[][..])
            })
            .collect();
        let answers = if pieces == 1 {
            alloc::vec![call(requests[0].0, &[], &[], &[])]
        } else {
            batch(&requests)
        };
        for ((head, _), a) in requests.iter().zip(answers) {
            match a {
                Ok(a) => {
                    let short = (a.data.len() as u64) < head.len;
                    out.extend_from_slice(&a.data);
                    if short {
                        return Ok(out);
                    }
                }
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => return Ok(out),
            }
        }
    }
    Ok(out)
}

/// Writes `data` to `ino` at `offset` (or at its end with `append`):
/// pieces of at most MAX_IO, sent together in one exit unless appending
/// (each append must land after the one before). Returns the offset the
/// first byte went to and the bytes written: fewer than asked after an
/// error (a piece after the failed one may have been written too, as a
/// disk may write past a failed sector).
pub fn write(
    ino: u64,
    offset: u64,
    data: &[u8],
    append: bool,
    now: u64,
) -> Result<(u64, usize, Option<StoreStat>), Errno> {
    let head = |at: u64| StoreRequest {
        op: OP_WRITE,
        ino,
        offset: at,
        flags: if append { FLAG_APPEND } else { 0 },
        now,
        ..Default::default()
    };
    let mut last = None;
    if append || data.len() <= MAX_IO {
        let mut first = None;
        let mut done = 0;
        for chunk in data.chunks(MAX_IO) {
            let a = match call(head(offset + done as u64), &[], &[], chunk) {
                Ok(a) => a,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            first.get_or_insert(a.value);
            last = Some(a.stat);
            done += chunk.len();
        }
        return Ok((first.unwrap_or(offset), done, last));
    }
    let mut done = 0;
    for group in data.chunks(MAX_IO * STORAGE_BATCH_MAX as usize) {
        let requests: Vec<(StoreRequest, &[u8])> = group
            .chunks(MAX_IO)
            .enumerate()
            .map(|(k, chunk)| (head(offset + (done + k * MAX_IO) as u64), chunk))
            .collect();
        for ((_, chunk), a) in requests.iter().zip(batch(&requests)) {
            match a {
                Ok(a) => {
                    done += chunk.len();
                    // The component serves the pieces in order: the last
                    // answer is the file after all of them.
                    last = Some(a.stat);
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => return Ok((offset, done, last)),
            }
        }
    }
    Ok((offset, done, last))
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
