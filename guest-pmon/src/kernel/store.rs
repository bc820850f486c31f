//! The storage component's file calls (`lego_proto::storage`), made
//! through the VMM (PORT_STORAGE_CALL, one exit each): the VMM carries the
//! request over the fabric and the reply back. A storage component that
//! does not answer within the fabric timeout is EIO for the call, never a
//! hang, unless its VMM says it is at work (a slow disk): then the VMM
//! waits on, up to 120 s (`vmm/src/fabric/busy.rs`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::program::{
    StorageBatch, StorageCall, StorageFetch, StorageSettle, PORT_STORAGE_BATCH, PORT_STORAGE_CALL,
    PORT_STORAGE_FETCH, PORT_STORAGE_POST, PORT_STORAGE_SETTLE, STORAGE_BATCH_MAX, STORAGE_OK,
    STORAGE_UNREACHABLE,
};
use lego_proto::storage::*;

use super::{Errno, ENXIO};
use pmon::absent::Absent;
use pmon::gather::Gathered;
use zerocopy::FromBytes;

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
        OP_READLINK | OP_LEADS_TO => PATH_MAX,
        OP_STATFS => core::mem::size_of::<StoreStatFs>(),
        OP_STATS => core::mem::size_of::<StoreStats>(),
        _ => 0,
    };
    core::mem::size_of::<StoreReply>() + data
}

/// The vNode of the process whose system call the kernel is serving:
/// every request carries it (the kernel serves calls one at a time,
/// under its lock, and sets it at each), and the storage component that
/// holds it, where its path requests go (0: the processor's own).
static VNODE: AtomicU32 = AtomicU32::new(0);
/// The file-system user and group ids of the call being served (user in
/// the high half): what its requests make is theirs.
static CALLER: AtomicU64 = AtomicU64::new(0);
static ROUTE: AtomicU32 = AtomicU32::new(0);

/// The storage component of each vNode whose files are not on the
/// processor's own (told with each run's start; a vNode stays where it
/// was made).
static ELSEWHERE: spin::Mutex<BTreeMap<u32, u32>> = spin::Mutex::new(BTreeMap::new());

/// The processor's own storage component (`--storage`, or the rack's).
static OWN: AtomicU32 = AtomicU32::new(0);

/// A gathered write's file: the component it goes to, the vNode of the
/// call that made it, its number there, and its number here (the tag its
/// outcome is told by).
type FileKey = (u32, u32, u64, u64);

/// Small writes not sent yet (`pmon::gather`): they go, posted, before
/// anything else is asked of storage.
static GATHERED: spin::Mutex<Gathered<FileKey>> = spin::Mutex::new(Gathered::new(MAX_IO));

/// Calls were posted and their outcome not all collected ([`settle`]).
static POSTED: AtomicBool = AtomicBool::new(false);

/// A flush the kernel did not make itself (before another call) was told
/// of failed posted writes: the next gathered write says so, so that the
/// failure is collected and the file's next write reports it.
static FAILED_UNSEEN: AtomicBool = AtomicBool::new(false);

/// Whether writes are gathered or posted and not settled yet.
pub fn unsettled() -> bool {
    POSTED.load(Ordering::Relaxed) || !GATHERED.lock().is_empty()
}

/// Inode numbers of files on a storage component other than the
/// processor's own carry its id above this bit, so the file cache, the
/// locks and the shared mappings, which know files by inode number, never
/// take two components' files for one; an ino-carrying request goes where
/// its number says. The own component's numbers are as it gives them.
const TAG_SHIFT: u32 = 48;
const INO_MASK: u64 = (1 << TAG_SHIFT) - 1;

pub fn set_own_storage(id: u32) {
    OWN.store(id, Ordering::Relaxed);
}

/// A run of `vnode` starts: its files are on storage component `storage`
/// (0 or the own one: the processor's). None when the component's id does
/// not fit an inode number's tag.
pub fn place_vnode(vnode: u32, storage: u32) -> Result<(), Errno> {
    let mut m = ELSEWHERE.lock();
    if storage == 0 || storage == OWN.load(Ordering::Relaxed) || vnode == 0 {
        m.remove(&vnode);
    } else if storage >> (64 - TAG_SHIFT) != 0 {
        return Err(ENXIO);
    } else {
        m.insert(vnode, storage);
    }
    Ok(())
}

pub fn set_vnode(v: u32) {
    VNODE.store(v, Ordering::Relaxed);
    let route = ELSEWHERE.lock().get(&v).copied().unwrap_or(0);
    ROUTE.store(route, Ordering::Relaxed);
}

pub fn vnode() -> u32 {
    VNODE.load(Ordering::Relaxed)
}

/// The calls from now on are made for a process whose file-system ids
/// are `uid` and `gid`.
pub fn set_caller(uid: u32, gid: u32) {
    CALLER.store(u64::from(uid) << 32 | u64::from(gid), Ordering::Relaxed);
}

/// Runs `f` with the calls made for `uid` and `gid`, then for the caller
/// again: what a copy-up makes belongs to the host's owner of what it
/// copies, not to the process that caused it.
pub fn as_owner<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    let caller = CALLER.load(Ordering::Relaxed);
    set_caller(uid, gid);
    let r = f();
    CALLER.store(caller, Ordering::Relaxed);
    r
}

/// Where a request goes and its inode number there: by the number's tag
/// when it has one, else the vNode's component.
fn route(head: &StoreRequest) -> (u32, u64) {
    if head.ino == 0 {
        return (ROUTE.load(Ordering::Relaxed), 0);
    }
    ((head.ino >> TAG_SHIFT) as u32, head.ino & INO_MASK)
}

/// An inode number from component `node` as the processor knows it.
fn tagged(node: u32, ino: u64) -> u64 {
    if node == 0 || ino == 0 {
        ino
    } else {
        u64::from(node) << TAG_SHIFT | (ino & INO_MASK)
    }
}

/// A request's bytes, for the vNode of the call being served, and the
/// component it goes to.
fn encode(head: &StoreRequest, path: &[u8], path2: &[u8], data: &[u8]) -> (Vec<u8>, u32) {
    let (node, ino) = route(head);
    let caller = CALLER.load(Ordering::Relaxed);
    let head = StoreRequest {
        vnode: vnode(),
        ino,
        uid: (caller >> 32) as u32,
        gid: caller as u32,
        ..*head
    };
    (encode_request(&head, path, path2, data), node)
}

/// The VMM's view of one call: where its request and its reply room are.
fn storage_call(request: &[u8], node: u32, reply: &mut [u8]) -> StorageCall {
    StorageCall {
        request: virt_to_phys(request.as_ptr() as u64),
        request_len: request.len() as u32,
        reply_room: reply.len() as u32,
        reply: virt_to_phys(reply.as_mut_ptr() as u64),
        reply_len: 0,
        status: 0,
        node,
        _pad: 0,
        tag: 0,
    }
}

/// One request: `head`'s op and arguments, the paths and the data.
pub fn call(head: StoreRequest, path: &[u8], path2: &[u8], data: &[u8]) -> Result<Answer, Errno> {
    flush();
    // A call that may make a name: no absence is believed any more,
    // whether it succeeds or not. (Not only those at and below its paths:
    // storage follows its own links, so `/d/l/x` may make
    // `/usr/local/bin/x`.)
    if matches!(
        head.op,
        OP_CREATE | OP_MKDIR | OP_MKNOD | OP_SYMLINK | OP_LINK | OP_RENAME
    ) {
        ABSENT.lock().clear();
    }
    let (request, node) = encode(&head, path, path2, data);
    let mut reply = alloc::vec![0u8; reply_room(&head)];
    let c = storage_call(&request, node, &mut reply);
    hypercall::out(PORT_STORAGE_CALL, phys_of(&c) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let c = unsafe { core::ptr::read_volatile(&c) };
    answer(&c, head.op, &reply)
}

/// Hands `calls` to the VMM in one exit through `port` (a batch or a
/// post); the batch as the VMM left it.
fn exit_with(port: u16, calls: &mut [StorageCall]) -> StorageBatch {
    let b = StorageBatch {
        calls: virt_to_phys(calls.as_mut_ptr() as u64),
        count: calls.len() as u32,
        failed: 0,
    };
    hypercall::out(port, phys_of(&b) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    unsafe { core::ptr::read_volatile(&b) }
}

/// Data requests (`head`s, each with its data) sent together in one exit,
/// the storage component serving them back to back: their answers in
/// order.
fn batch(requests: &[(StoreRequest, &[u8])]) -> Vec<Result<Answer, Errno>> {
    flush();
    let encoded: Vec<(Vec<u8>, u32)> = requests
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
        .map(|((r, node), reply)| storage_call(r, *node, reply))
        .collect();
    exit_with(PORT_STORAGE_BATCH, &mut calls);
    calls
        .iter()
        .zip(&replies)
        .zip(requests)
        .map(|((c, reply), (head, _))| {
            // SAFETY: the VMM wrote the calls during the hypercall.
            let c = unsafe { core::ptr::read_volatile(c) };
            answer(&c, head.op, reply)
        })
        .collect()
}

/// A call's answer, from its status and reply bytes, its inode numbers
/// as the processor knows them.
fn answer(c: &StorageCall, op: u32, reply: &[u8]) -> Result<Answer, Errno> {
    let (head, data) = decoded(c, reply)?;
    let mut data = data.to_vec();
    if c.node != 0 && op == OP_READDIR {
        tag_entries(c.node, &mut data);
    }
    Ok(Answer {
        value: head.value,
        stat: StoreStat {
            ino: tagged(c.node, head.stat.ino),
            ..head.stat
        },
        data,
    })
}

/// A call's reply head and data, where the VMM wrote them; an error
/// reply is its errno, no reply EIO.
fn decoded<'a>(c: &StorageCall, reply: &'a [u8]) -> Result<(StoreReply, &'a [u8]), Errno> {
    if c.status != STORAGE_OK {
        return Err(EIO as Errno);
    }
    let got = reply.get(..c.reply_len as usize).ok_or(EIO as Errno)?;
    let (head, data) = decode_reply(got).map_err(|_| EIO as Errno)?;
    PAST_LINK.store(
        head.errno == ENOENT && head.value == ENOENT_PAST_LINK,
        Ordering::Relaxed,
    );
    if head.errno != OK {
        return Err(head.errno as Errno);
    }
    Ok((head, data))
}

/// Whether the last reply was an ENOENT past a symbolic link of storage
/// ([`ENOENT_PAST_LINK`]; the kernel serves one call at a time).
static PAST_LINK: AtomicBool = AtomicBool::new(false);

/// Whether the last storage reply was an ENOENT whose walk followed a
/// symbolic link: only then may the name lie off storage (`OP_LEADS_TO`).
pub fn enoent_past_link() -> bool {
    PAST_LINK.load(Ordering::Relaxed)
}

/// Tags the inode number of every entry of an OP_READDIR reply.
fn tag_entries(node: u32, data: &mut [u8]) {
    let mut at = 0;
    while let Some(rest) = data.get_mut(at..) {
        let Ok((head, _)) = DirEntryHead::read_from_prefix(rest) else {
            return;
        };
        let len = dir_entry_len(head.name_len as usize);
        if rest.len() < len {
            return;
        }
        let ino = tagged(node, head.ino).to_le_bytes();
        rest[..8].copy_from_slice(&ino);
        at += len;
    }
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

/// Names storage said lately that it lacks (`pmon::absent`).
static ABSENT: spin::Mutex<Absent> = spin::Mutex::new(Absent::new());

/// Whether storage lacks `path` itself (its lstat is ENOENT; past one of
/// its links too, which [`enoent_past_link`] then tells), asked at `now`
/// (ns since boot). A plain ENOENT is believed for a while
/// (`pmon::absent`), so the looks at the host's installation, which ask
/// storage first, do not each pay a round trip.
pub fn lacks(path: &[u8], now: u64) -> bool {
    let vnode = vnode();
    if ABSENT.lock().lacks(path, vnode, now) {
        PAST_LINK.store(false, Ordering::Relaxed);
        return true;
    }
    match stat(path, false) {
        Err(e) if e == ENOENT as Errno => {
            if !enoent_past_link() {
                ABSENT.lock().note(path, vnode, now);
            }
            true
        }
        _ => false,
    }
}

/// Whether storage itself has no `path` (its last link followed if
/// `follow`): ENOENT, and not past one of its links, which may lead to
/// where the name is (asked now, never from what [`lacks`] keeps).
pub fn missing(path: &[u8], follow: bool) -> bool {
    matches!(stat(path, follow), Err(e) if e == ENOENT as Errno) && !enoent_past_link()
}

/// Nothing storage said it lacks is believed any more.
pub fn forget_absences() {
    ABSENT.lock().clear();
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

/// Reads of a piece of a file started without waiting (read-ahead,
/// `PORT_STORAGE_FETCH`): the requests and the rooms for their replies
/// stay here, unmoved, until collected or dropped. The VMM writes a room
/// only in the exit that collects its call, so a fetch forgotten without
/// a word costs the VMM an entry (of at most STORAGE_FETCH_MAX), never
/// this memory.
pub struct Fetch {
    heads: Vec<StoreRequest>,
    calls: Vec<StorageCall>,
    _requests: Vec<Vec<u8>>,
    replies: Vec<Vec<u8>>,
}

/// A piece of a collected fetch: its offset in the file, the room its
/// reply came in, and where the reply's data is in it (None once a piece
/// before or this one failed or came short).
pub type Piece = (u64, Vec<u8>, Option<core::ops::Range<usize>>);

/// Tags of fetched calls: unique among those the VMM keeps.
static NEXT_FETCH_TAG: AtomicU64 = AtomicU64::new(1);

impl Fetch {
    /// The reads of `len` bytes (at most STORAGE_BATCH_MAX pieces of
    /// MAX_IO) of `ino` at `offset`, their reply rooms from `room`; not
    /// sent yet.
    pub fn new(ino: u64, offset: u64, len: usize, mut room: impl FnMut(usize) -> Vec<u8>) -> Fetch {
        let heads: Vec<StoreRequest> = (0..len.div_ceil(MAX_IO).min(STORAGE_BATCH_MAX as usize))
            .map(|k| StoreRequest {
                op: OP_READ,
                ino,
                offset: offset + (k * MAX_IO) as u64,
                len: (len - k * MAX_IO).min(MAX_IO) as u64,
                ..Default::default()
            })
            .collect();
        let requests: Vec<(Vec<u8>, u32)> =
            heads.iter().map(|h| encode(h, &[], &[], &[])).collect();
        let mut replies: Vec<Vec<u8>> = heads.iter().map(|h| room(reply_room(h))).collect();
        let calls = requests
            .iter()
            .zip(replies.iter_mut())
            .map(|((r, node), reply)| StorageCall {
                tag: NEXT_FETCH_TAG.fetch_add(1, Ordering::Relaxed),
                ..storage_call(r, *node, reply)
            })
            .collect();
        Fetch {
            heads,
            calls,
            _requests: requests.into_iter().map(|(r, _)| r).collect(),
            replies,
        }
    }

    /// Whether the storage component left one of its reads unanswered
    /// (it is dead or cut off: a read that needed it fails, not waits
    /// again).
    pub fn unanswered(&self) -> bool {
        self.calls.iter().any(|c| {
            // SAFETY: the VMM wrote the calls during the collecting exit.
            unsafe { core::ptr::read_volatile(c) }.status == STORAGE_UNREACHABLE
        })
    }

    /// Its pieces, once collected (or dropped: then no data is used).
    pub fn into_pieces(self) -> Vec<Piece> {
        let mut whole = true;
        let mut out = Vec::with_capacity(self.replies.len());
        for ((c, reply), head) in self.calls.iter().zip(self.replies).zip(&self.heads) {
            // SAFETY: the VMM wrote the calls during the collecting exit.
            let c = unsafe { core::ptr::read_volatile(c) };
            let data = match decoded(&c, &reply) {
                Ok((_, data)) if whole => {
                    let at = data.as_ptr() as usize - reply.as_ptr() as usize;
                    whole = data.len() as u64 == head.len;
                    Some(at..at + data.len())
                }
                _ => {
                    whole = false;
                    None
                }
            };
            out.push((head.offset, reply, data));
        }
        out
    }
}

/// One exit: the VMM starts `start`'s reads, then collects `collect`'s,
/// waiting for them (or, with `drop`, forgets them: their rooms are not
/// written again).
pub fn fetch_exit(start: Option<&mut Fetch>, collect: Option<&mut Fetch>, drop: bool) {
    if start.is_some() {
        // Reads asked now see the writes made before.
        flush();
    }
    let (start, start_count) = match start {
        Some(f) => (
            virt_to_phys(f.calls.as_mut_ptr() as u64),
            f.calls.len() as u32,
        ),
        None => (0, 0),
    };
    let (collect, collect_count) = match collect {
        Some(f) => (
            virt_to_phys(f.calls.as_mut_ptr() as u64),
            f.calls.len() as u32,
        ),
        None => (0, 0),
    };
    let f = StorageFetch {
        start,
        collect,
        start_count,
        collect_count,
        drop: drop as u32,
        _pad: 0,
    };
    hypercall::out(PORT_STORAGE_FETCH, phys_of(&f) as u32);
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

/// Writes `data` (more than MAX_IO bytes) at `offset` of `ino` without
/// waiting for the storage component's answers: the VMM sends the pieces
/// and keeps their outcome (write-behind). Returns how many posted writes
/// failed and were not collected yet ([`settle`]).
pub fn post(ino: u64, offset: u64, data: &[u8], now: u64) -> u32 {
    flush();
    let encoded: Vec<(Vec<u8>, u32, u64)> = data
        .chunks(MAX_IO)
        .enumerate()
        .map(|(k, chunk)| {
            let head = StoreRequest {
                op: OP_WRITE,
                ino,
                offset: offset + (k * MAX_IO) as u64,
                now,
                ..Default::default()
            };
            let (r, node) = encode(&head, &[], &[], chunk);
            (r, node, ino)
        })
        .collect();
    post_encoded(&encoded)
}

/// Posts encoded requests (each with its component and tag), up to
/// STORAGE_BATCH_MAX an exit. Returns how many posted calls failed and
/// were not collected yet.
fn post_encoded(encoded: &[(Vec<u8>, u32, u64)]) -> u32 {
    let mut calls: Vec<StorageCall> = encoded
        .iter()
        .map(|(r, node, tag)| StorageCall {
            request: virt_to_phys(r.as_ptr() as u64),
            request_len: r.len() as u32,
            node: *node,
            tag: *tag,
            ..Default::default()
        })
        .collect();
    POSTED.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for group in calls.chunks_mut(STORAGE_BATCH_MAX as usize) {
        failed = exit_with(PORT_STORAGE_POST, group).failed;
    }
    failed
}

/// Holds a write of at most MAX_IO bytes at `offset` of `ino` (made at
/// `now` on the wall clock, `at` on the monotonic one) until the next
/// call to storage, or sends it with the others gathered when enough
/// are. Returns how many posted writes failed and were not collected yet.
pub fn gather(ino: u64, offset: u64, data: &[u8], now: u64, at: u64) -> u32 {
    let (node, there) = route(&StoreRequest {
        ino,
        ..Default::default()
    });
    let full = GATHERED
        .lock()
        .add((node, vnode(), there, ino), offset, data, now, at);
    let failed = if full { flush() } else { 0 };
    failed.max(FAILED_UNSEEN.swap(false, Ordering::Relaxed) as u32)
}

/// Sends the gathered writes, posted, in one exit (for up to
/// STORAGE_BATCH_MAX). Returns how many posted writes failed and were not
/// collected yet.
pub fn flush() -> u32 {
    let held = GATHERED.lock().take();
    if held.is_empty() {
        return 0;
    }
    let failed = post_encoded(&encode_gathered(&held));
    if failed > 0 {
        FAILED_UNSEEN.store(true, Ordering::Relaxed);
    }
    failed
}

/// [`flush`] when the oldest gathered write is old enough (`at`,
/// monotonic): called from the monitor's timers.
pub fn flush_if_stale(at: u64) -> u32 {
    let stale = GATHERED.lock().stale(at);
    if stale {
        flush()
    } else {
        0
    }
}

/// The requests of gathered writes: each one's bytes, component and tag.
fn encode_gathered(held: &[pmon::gather::Held<FileKey>]) -> Vec<(Vec<u8>, u32, u64)> {
    held.iter()
        .map(|h| {
            let (node, vnode, ino, tag) = h.file;
            let head = StoreRequest {
                op: OP_WRITE,
                vnode,
                ino,
                offset: h.offset,
                now: h.now,
                ..Default::default()
            };
            (encode_request(&head, &[], &[], &h.data), node, tag)
        })
        .collect()
}

/// A sync at the storage component of `ino` (0: the vNode's), with the
/// gathered writes before it in the same exit, waited for: the component
/// serves them as one group (the writes' blocks and records and the flush
/// in one disk call), so a program's write and fsync cost one round trip.
/// Returns the writes that failed (file, errno) and the sync's outcome.
/// Writes posted before are served before these, so collecting them
/// after this does not wait ([`settle`]).
pub fn sync(ino: u64) -> (Vec<(u64, Errno)>, Result<(), Errno>) {
    let held = GATHERED.lock().take();
    let head = StoreRequest {
        op: OP_SYNC,
        ino,
        ..Default::default()
    };
    let mut encoded = encode_gathered(&held);
    let (r, node) = encode(&head, &[], &[], &[]);
    encoded.push((r, node, 0));
    let room = core::mem::size_of::<StoreReply>();
    let mut replies: Vec<Vec<u8>> = encoded.iter().map(|_| alloc::vec![0u8; room]).collect();
    let mut calls: Vec<StorageCall> = encoded
        .iter()
        .zip(replies.iter_mut())
        .map(|((r, node, _), reply)| storage_call(r, *node, reply))
        .collect();
    for group in calls.chunks_mut(STORAGE_BATCH_MAX as usize) {
        exit_with(PORT_STORAGE_BATCH, group);
    }
    let mut outcomes = calls.iter().zip(&replies).map(|(c, reply)| {
        // SAFETY: the VMM wrote the calls during the hypercalls.
        let c = unsafe { core::ptr::read_volatile(c) };
        decoded(&c, reply).map(drop)
    });
    let failed: Vec<(u64, Errno)> = (&mut outcomes)
        .take(held.len())
        .zip(&held)
        .filter_map(|(r, h)| r.err().map(|e| (h.file.3, e)))
        .collect();
    let synced = outcomes.next().unwrap_or(Err(EIO as Errno));
    (failed, synced)
}

/// Waits until at most `keep` posted writes are unanswered; the failures
/// not collected before, (file, errno) each, and whether any posted write
/// is still unanswered.
pub fn settle(keep: u32) -> (Vec<(u64, Errno)>, bool) {
    if keep < u32::MAX {
        // Waiting for the posted writes includes the gathered ones.
        flush();
    }
    let mut failures = Vec::new();
    let mut keep = keep;
    loop {
        let s = StorageSettle {
            keep,
            ..Default::default()
        };
        hypercall::out(PORT_STORAGE_SETTLE, phys_of(&s) as u32);
        // SAFETY: the VMM wrote it during the hypercall.
        let s = unsafe { core::ptr::read_volatile(&s) };
        if s.failed == 0 {
            POSTED.store(s.pending > 0, Ordering::Relaxed);
            // Every failure told so far is collected now.
            FAILED_UNSEEN.store(false, Ordering::Relaxed);
            return (failures, s.pending > 0);
        }
        failures.push((s.tag, s.errno as Errno));
        // The rest of the failures, without waiting again.
        keep = u32::MAX;
    }
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
