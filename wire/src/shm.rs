//! Shared-memory rings between components on one host, as both ends see
//! them: the file layout, the doorbell, and the two ends of a ring.
//!
//! Each direction between two components is one ring, a file
//! `<src>-to-<dst>.ring` in the shared-memory directory (default
//! /dev/shm/lego): the sender appends whole sealed frames (`auth`) and
//! publishes them by advancing `tail`; the receiver reads them and advances
//! `head`. Single producer, single consumer, no locks. Each component also
//! has a doorbell, `<id>.bell`, a futex word senders bump after publishing,
//! so an idle receiver sleeps instead of spinning.
//!
//! The doorbell's owner holds an exclusive lock on it for its lifetime:
//! that is what makes an id live on this host, and a second process asking
//! for the same id is told the first one's pid. A ring's writer holds a
//! shared lock on it for as long as it writes.
//!
//! Files of components that are gone are swept ([`sweep`]): a ring no
//! writer holds, once its reader has read it all or is gone itself, and a
//! doorbell no owner holds. Each ring is 4 MiB of the host's memory, and a
//! processor started without `--id` gets a new id every run, so without
//! this they piled up (thousands seen), and readers slowed down listing
//! them. A sweeper takes the file's lock before it unlinks it, and whoever
//! opens one checks, once it holds its lock, that the name still leads to
//! the file it locked (else it opens the new one). A ring's reader writes its
//! pid, the largest frame it takes and its nonce into the ring when it
//! attaches: a frame is sealed with the ring position as its sequence
//! number and that nonce, so it is valid once, at one place, for one reader.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lego_proto::frame::{ComponentId, Header, HEADER_LEN};

use crate::auth::{self, AuthError, Nonce, SenderRole, TRAILER_LEN};
use crate::key::RackKey;

const MAGIC: u64 = 0x324e_4952_4f47_454c; // "LEGORIN2"
const HEADER: usize = 4096;
/// Bytes of frames a ring holds.
pub const CAPACITY: u64 = 4 << 20;
// Header fields, each on its own cache line where both sides write.
const OFF_MAGIC: usize = 0;
const OFF_CAPACITY: usize = 8;
pub const OFF_TAIL: usize = 64;
const OFF_HEAD: usize = 128;
const OFF_READER_PID: usize = 192;
const OFF_READER_NONCE: usize = 256;
const OFF_READER_MAX: usize = 272;
/// Where a ring's data starts in its file.
pub const DATA_OFFSET: u64 = HEADER as u64;
/// In a doorbell: the futex word at 0, its owner's pid here.
const BELL_OWNER_PID: usize = 8;
const BELL_LEN: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("it is not running on this host (no {0})")]
    Absent(PathBuf),
    #[error("its process {0} is gone")]
    Gone(u64),
    #[error("it did not open its ring in time")]
    NotAttached,
    #[error("its ring stayed full")]
    Full,
    #[error("it takes frames of at most {max} bytes, and this one has {len}")]
    TooLarge { len: usize, max: usize },
    #[error("component {id} is already running on this host as process {pid} (its doorbell {path} is taken): stop it, or give this one another --id")]
    Taken {
        id: ComponentId,
        pid: u64,
        path: PathBuf,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One mapped file.
struct Mapping {
    base: *mut u8,
    len: usize,
    file: File,
}

// SAFETY: the mapping is shared memory used only through atomics and
// volatile-style copies; it lives as long as the Mapping.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn open(path: &Path, len: usize) -> std::io::Result<Mapping> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() < len as u64 {
            file.set_len(len as u64)?;
        }
        Mapping::map(file, len)
    }

    /// Maps the first `len` bytes of an existing file, never creating one.
    fn open_existing(path: &Path, len: usize) -> std::io::Result<Mapping> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() < len as u64 {
            return Err(std::io::Error::other("shorter than its header"));
        }
        Mapping::map(file, len)
    }

    fn map(file: File, len: usize) -> std::io::Result<Mapping> {
        // SAFETY: a shared mapping of a file we just sized; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            base: base as *mut u8,
            len,
            file,
        })
    }

    /// Takes `flock` `op` on the file; whether it was granted.
    fn lock(&self, op: libc::c_int) -> bool {
        // SAFETY: flock on the file this mapping keeps open; released when
        // the file is closed, also when the process dies.
        unsafe { libc::flock(self.file.as_raw_fd(), op) == 0 }
    }

    /// Whether `path` still names the file this maps (a sweep may have
    /// unlinked it between the open and the lock).
    fn still_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(path), self.file.metadata()) {
            (Ok(named), Ok(ours)) => named.dev() == ours.dev() && named.ino() == ours.ino(),
            _ => false,
        }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        // SAFETY: off is an aligned header field inside the mapping.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what open() mapped.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a word in shared memory (not FUTEX_PRIVATE).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            0,
            0,
            0,
        )
    };
}

fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a word in shared memory with a timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            0,
            0,
        )
    };
}

/// Whether process `pid` exists (0 is nobody).
pub fn pid_alive(pid: u64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid != 0
        && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

pub fn bell_path(dir: &Path, id: ComponentId) -> PathBuf {
    dir.join(format!("{id}.bell"))
}

pub fn ring_path(dir: &Path, src: ComponentId, dst: ComponentId) -> PathBuf {
    dir.join(format!("{src}-to-{dst}.ring"))
}

/// This process's own doorbell: owning it is being component `id` here.
pub struct OwnBell {
    map: Mapping,
}

impl OwnBell {
    /// Takes the doorbell of `id` in `dir`, or says who has it.
    pub fn take(dir: &Path, id: ComponentId) -> Result<OwnBell, ShmError> {
        let path = bell_path(dir, id);
        // A few tries: a sweep holds an ownerless doorbell's lock for a
        // moment before it unlinks it, and we may have opened that one.
        let mut tries = 0;
        loop {
            tries += 1;
            let map = Mapping::open(&path, BELL_LEN).map_err(|source| ShmError::Io {
                what: "cannot create the doorbell",
                path: path.clone(),
                source,
            })?;
            if !map.lock(libc::LOCK_EX | libc::LOCK_NB) {
                let pid = map.u64_at(BELL_OWNER_PID).load(Ordering::Acquire);
                if pid_alive(pid) || tries >= 50 {
                    return Err(ShmError::Taken { id, pid, path });
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            if !map.still_at(&path) {
                continue;
            }
            map.u64_at(BELL_OWNER_PID)
                .store(std::process::id() as u64, Ordering::Release);
            return Ok(OwnBell { map });
        }
    }

    /// The futex word's value now, to wait on.
    pub fn seen(&self) -> u32 {
        self.map.u32_at(0).load(Ordering::Acquire)
    }

    /// Sleeps until a sender rings after `seen`, or up to `timeout`.
    pub fn wait(&self, seen: u32, timeout: Duration) {
        futex_wait(self.map.u32_at(0), seen, timeout);
    }
}

/// A ring, seen from either end.
struct Ring {
    map: Mapping,
}

impl Ring {
    fn open(path: &Path) -> std::io::Result<Ring> {
        let map = Mapping::open(path, HEADER + CAPACITY as usize)?;
        // The first to open it initializes it; magic is written last.
        if map.u64_at(OFF_MAGIC).load(Ordering::Acquire) != MAGIC {
            map.u64_at(OFF_CAPACITY).store(CAPACITY, Ordering::Relaxed);
            map.u64_at(OFF_MAGIC).store(MAGIC, Ordering::Release);
        }
        if map.u64_at(OFF_CAPACITY).load(Ordering::Acquire) != CAPACITY {
            return Err(std::io::Error::other("ring of another size"));
        }
        Ok(Ring { map })
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data area follows the header.
        unsafe { self.map.base.add(HEADER) }
    }

    /// Copies `bytes` into the data area at stream position `pos`, wrapping.
    fn write_at(&self, pos: u64, bytes: &[u8]) {
        let start = (pos % CAPACITY) as usize;
        let first = bytes.len().min(CAPACITY as usize - start);
        // SAFETY: both pieces are inside the data area.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(start), first);
            std::ptr::copy_nonoverlapping(
                bytes[first..].as_ptr(),
                self.data(),
                bytes.len() - first,
            );
        }
    }

    fn read_at(&self, pos: u64, out: &mut [u8]) {
        let start = (pos % CAPACITY) as usize;
        let first = out.len().min(CAPACITY as usize - start);
        // SAFETY: both pieces are inside the data area.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data().add(start), out.as_mut_ptr(), first);
            let rest = out.len() - first;
            std::ptr::copy_nonoverlapping(self.data(), out[first..].as_mut_ptr(), rest);
        }
    }

    fn nonce(&self) -> Nonce {
        let a = self.map.u64_at(OFF_READER_NONCE).load(Ordering::Acquire);
        let b = self
            .map
            .u64_at(OFF_READER_NONCE + 8)
            .load(Ordering::Acquire);
        let mut n = [0u8; 16];
        n[..8].copy_from_slice(&a.to_le_bytes());
        n[8..].copy_from_slice(&b.to_le_bytes());
        n
    }
}

/// The sending end of the ring from this component to `peer`, with the
/// peer's doorbell.
pub struct Writer {
    ring: Ring,
    bell: Mapping,
}

impl Writer {
    /// Opens (creating if need be) the ring `me`-to-`peer`; the peer must
    /// be running here (its doorbell exists).
    pub fn open(dir: &Path, me: ComponentId, peer: ComponentId) -> Result<Writer, ShmError> {
        let bell = bell_path(dir, peer);
        if !bell.exists() {
            return Err(ShmError::Absent(bell));
        }
        let path = ring_path(dir, me, peer);
        let ring = loop {
            let ring = Ring::open(&path).map_err(|source| ShmError::Io {
                what: "cannot open its ring",
                path: path.clone(),
                source,
            })?;
            // Held while we write, so no sweep takes the ring away; one
            // that unlinked it before we locked makes us open a new one.
            if !ring.map.lock(libc::LOCK_SH) {
                return Err(ShmError::Io {
                    what: "cannot lock its ring",
                    path,
                    source: std::io::Error::last_os_error(),
                });
            }
            if ring.map.still_at(&path) {
                break ring;
            }
        };
        let bell = Mapping::open(&bell, BELL_LEN).map_err(|source| ShmError::Io {
            what: "cannot open its doorbell",
            path: bell,
            source,
        })?;
        Ok(Writer { ring, bell })
    }

    fn ring_bell(&self) {
        let word = self.bell.u32_at(0);
        word.fetch_add(1, Ordering::AcqRel);
        futex_wake(word);
    }

    /// The doorbell owner's pid, if it is alive.
    pub fn peer_alive(&self) -> Result<u64, ShmError> {
        let owner = self.bell.u64_at(BELL_OWNER_PID).load(Ordering::Acquire);
        if pid_alive(owner) {
            Ok(owner)
        } else {
            Err(ShmError::Gone(owner))
        }
    }

    /// Appends one sealed frame and rings the peer's doorbell. Refused at
    /// once when the peer is gone or the frame is larger than it takes;
    /// waits up to `timeout` for the peer to attach or make room.
    pub fn send(
        &self,
        key: &RackKey,
        role: SenderRole,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), ShmError> {
        self.peer_alive()?;
        let map = &self.ring.map;
        // A new ring: wake the peer so it finds it, and wait until it reads it.
        let attach_by = Instant::now() + timeout;
        while map.u64_at(OFF_READER_PID).load(Ordering::Acquire) == 0 {
            if Instant::now() > attach_by {
                return Err(ShmError::NotAttached);
            }
            self.ring_bell();
            std::thread::sleep(Duration::from_micros(200));
        }
        let frame_len = HEADER_LEN + payload.len();
        let max = map.u64_at(OFF_READER_MAX).load(Ordering::Acquire) as usize;
        if frame_len > max {
            return Err(ShmError::TooLarge {
                len: frame_len,
                max,
            });
        }
        let len = (frame_len + TRAILER_LEN) as u64;
        let tail = map.u64_at(OFF_TAIL).load(Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        loop {
            let head = map.u64_at(OFF_HEAD).load(Ordering::Acquire);
            if tail.wrapping_sub(head) + len <= CAPACITY {
                break;
            }
            let reader = map.u64_at(OFF_READER_PID).load(Ordering::Acquire);
            if !pid_alive(reader) {
                return Err(ShmError::Gone(reader));
            }
            if Instant::now() > deadline {
                return Err(ShmError::Full);
            }
            std::thread::yield_now();
        }
        let trailer = auth::seal(key, &self.ring.nonce(), tail, role, header, payload);
        self.ring.write_at(tail, header);
        self.ring.write_at(tail + HEADER_LEN as u64, payload);
        self.ring.write_at(tail + frame_len as u64, &trailer);
        map.u64_at(OFF_TAIL).store(tail + len, Ordering::Release);
        self.ring_bell();
        Ok(())
    }
}

/// Why a reader refused bytes in a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not frames: the ring was skipped to its tail.
    Garbage(String),
    /// Not sealed for this reader, or replayed.
    Auth(AuthError),
    /// A valid frame that names another source than the ring's writer.
    ClaimedSource(ComponentId),
    /// A valid frame for another component.
    Misrouted(ComponentId),
}

/// What a reader takes out of a ring.
pub enum Item {
    /// Header and payload (the trailer is gone), and the sender's role.
    Frame(Vec<u8>, SenderRole),
    Refused(Refusal),
}

/// The receiving end of the ring from `src` to this component.
pub struct Reader {
    ring: Ring,
    src: ComponentId,
    me: ComponentId,
    nonce: Nonce,
}

impl Reader {
    /// Attaches to a ring as its (only) reader: frames left from an earlier
    /// reader are stale and skipped; a fresh nonce makes anything sealed
    /// for an earlier reader invalid.
    pub fn attach(
        path: &Path,
        src: ComponentId,
        me: ComponentId,
        max_frame: u32,
    ) -> std::io::Result<Reader> {
        let ring = Ring::open(path)?;
        let nonce = auth::fresh_nonce();
        let map = &ring.map;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&nonce[i..i + 8]);
            u64::from_le_bytes(w)
        };
        map.u64_at(OFF_READER_NONCE)
            .store(word(0), Ordering::Release);
        map.u64_at(OFF_READER_NONCE + 8)
            .store(word(8), Ordering::Release);
        map.u64_at(OFF_READER_MAX)
            .store(max_frame as u64, Ordering::Release);
        let tail = map.u64_at(OFF_TAIL).load(Ordering::Acquire);
        map.u64_at(OFF_HEAD).store(tail, Ordering::Release);
        map.u64_at(OFF_READER_PID)
            .store(std::process::id() as u64, Ordering::Release);
        Ok(Reader {
            ring,
            src,
            me,
            nonce,
        })
    }

    pub fn src(&self) -> ComponentId {
        self.src
    }

    /// Updates the largest frame this reader takes (senders check it).
    pub fn set_max_frame(&self, max_frame: u32) {
        self.ring
            .map
            .u64_at(OFF_READER_MAX)
            .store(max_frame as u64, Ordering::Release);
    }

    /// Takes every published frame, checked, in order.
    pub fn take(&mut self, key: &RackKey, out: &mut impl FnMut(Item)) -> usize {
        let map = &self.ring.map;
        let head_word = map.u64_at(OFF_HEAD);
        let mut head = head_word.load(Ordering::Relaxed);
        let tail = map.u64_at(OFF_TAIL).load(Ordering::Acquire);
        let mut taken = 0;
        while head != tail {
            taken += 1;
            let available = tail.wrapping_sub(head);
            let mut bytes = [0u8; HEADER_LEN];
            let header = if available >= HEADER_LEN as u64 {
                self.ring.read_at(head, &mut bytes);
                Header::decode(&bytes).map_err(|e| e.to_string())
            } else {
                Err(format!("{available} stray bytes"))
            };
            let header = match header {
                Ok(h) => h,
                Err(why) => {
                    out(Item::Refused(Refusal::Garbage(why)));
                    head = tail;
                    break;
                }
            };
            let len = header.frame_len() + TRAILER_LEN;
            if len as u64 > available {
                out(Item::Refused(Refusal::Garbage(
                    "a frame runs past its tail".into(),
                )));
                head = tail;
                break;
            }
            let mut frame = vec![0u8; len];
            self.ring.read_at(head, &mut frame);
            let seq = head;
            head = head.wrapping_add(len as u64);
            match auth::open(key, &self.nonce, seq, &frame) {
                Ok(o) if header.src != self.src => {
                    let _ = o;
                    out(Item::Refused(Refusal::ClaimedSource(header.src)));
                }
                Ok(_) if header.dst != self.me => {
                    out(Item::Refused(Refusal::Misrouted(header.dst)));
                }
                Ok(o) => {
                    frame.truncate(header.frame_len());
                    out(Item::Frame(frame, o.role));
                }
                Err(e @ AuthError::Replayed { .. }) => out(Item::Refused(Refusal::Auth(e))),
                Err(e) => {
                    // Its length may be as false as its tag: nothing after
                    // it in this ring can be trusted to be framed right.
                    out(Item::Refused(Refusal::Auth(e)));
                    head = tail;
                    break;
                }
            }
        }
        head_word.store(head, Ordering::Release);
        taken
    }
}

/// The rings addressed to `me` in `dir`: (source, path) for each.
pub fn rings_to(dir: &Path, me: ComponentId) -> Vec<(ComponentId, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let (src, dst) = ring_ends(entry.file_name().to_str()?)?;
            (dst == me).then(|| (src, entry.path()))
        })
        .collect()
}

/// The two ends of the ring a file name [`ring_path`] made names.
fn ring_ends(name: &str) -> Option<(ComponentId, ComponentId)> {
    let (src, dst) = name.strip_suffix(".ring")?.split_once("-to-")?;
    Some((src.parse().ok()?, dst.parse().ok()?))
}

/// What a [`sweep`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Rings to the sweeping component, read to their end, whose writers
    /// are gone: the sweeper stops reading them.
    pub to_me: Vec<ComponentId>,
    /// Other rings removed: no writer, and a reader that is gone.
    pub others: usize,
    /// Doorbells no component owns.
    pub bells: usize,
}

/// Removes the files in `dir` of components that are gone (see the module
/// comment): rings to `me` with no writer that are read to their end,
/// other rings with no writer whose reader is gone, and doorbells with no
/// owner. Files it cannot judge are left.
pub fn sweep(dir: &Path, me: ComponentId) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return swept;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        if name.ends_with(".ring") {
            let Some((src, dst)) = ring_ends(name) else {
                continue;
            };
            let Ok(map) = Mapping::open_existing(&path, HEADER) else {
                continue;
            };
            // A writer holds it shared: still in use.
            if map.u64_at(OFF_MAGIC).load(Ordering::Acquire) != MAGIC
                || !map.lock(libc::LOCK_EX | libc::LOCK_NB)
            {
                continue;
            }
            let drained = map.u64_at(OFF_HEAD).load(Ordering::Acquire)
                == map.u64_at(OFF_TAIL).load(Ordering::Acquire);
            let reader = map.u64_at(OFF_READER_PID).load(Ordering::Acquire);
            let removable = if dst == me {
                drained
            } else {
                !pid_alive(reader) && !bell_owned(dir, dst)
            };
            if removable && map.still_at(&path) && std::fs::remove_file(&path).is_ok() {
                if dst == me {
                    swept.to_me.push(src);
                } else {
                    swept.others += 1;
                }
            }
        } else if let Some(id) = name.strip_suffix(".bell") {
            if id.parse::<ComponentId>().is_err() {
                continue;
            }
            let Ok(map) = Mapping::open_existing(&path, BELL_LEN) else {
                continue;
            };
            if map.lock(libc::LOCK_EX | libc::LOCK_NB)
                && map.still_at(&path)
                && std::fs::remove_file(&path).is_ok()
            {
                swept.bells += 1;
            }
        }
    }
    swept
}

/// Whether component `id`'s doorbell names a live owner (read, not
/// locked: trying its lock could make its owner's start fail).
fn bell_owned(dir: &Path, id: ComponentId) -> bool {
    Mapping::open_existing(&bell_path(dir, id), BELL_LEN)
        .is_ok_and(|m| pid_alive(m.u64_at(BELL_OWNER_PID).load(Ordering::Acquire)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lego-shm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("a test directory");
        d
    }

    fn files(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_ring_in_use_stays_and_a_ring_left_behind_goes() {
        let d = dir("sweep");
        let _me = OwnBell::take(&d, 1).expect("my bell");
        let peer = OwnBell::take(&d, 2).expect("a peer's bell");
        let writer = Writer::open(&d, 2, 1).expect("a ring from 2 to 1");
        let reader = Reader::attach(&ring_path(&d, 2, 1), 2, 1, 8192).expect("attach");
        assert_eq!(
            sweep(&d, 1),
            Swept::default(),
            "all in use: {:?}",
            files(&d)
        );
        drop(writer);
        drop(peer);
        // The writer and the peer are gone, the ring is read to its end.
        let swept = sweep(&d, 1);
        assert_eq!(swept.to_me, vec![2]);
        assert_eq!(swept.bells, 1);
        assert_eq!(files(&d), vec!["1.bell".to_owned()]);
        drop(reader);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unread_frames_keep_their_ring_until_read() {
        let d = dir("unread");
        let key = RackKey::from_bytes([7; 32]);
        let _me = OwnBell::take(&d, 1).expect("my bell");
        let peer = OwnBell::take(&d, 2).expect("a peer's bell");
        let writer = Writer::open(&d, 2, 1).expect("a ring");
        let mut reader = Reader::attach(&ring_path(&d, 2, 1), 2, 1, 8192).expect("attach");
        let header = Header {
            kind: lego_proto::frame::Kind::Ping,
            flags: 0,
            length: 0,
            request_id: 1,
            src: 2,
            dst: 1,
        }
        .encode();
        writer
            .send(&key, auth::ROLE_TOOL, &header, b"", Duration::from_secs(1))
            .expect("send");
        drop(writer);
        drop(peer);
        assert!(sweep(&d, 1).to_me.is_empty(), "a frame is still to be read");
        assert_eq!(reader.take(&key, &mut |_| {}), 1);
        assert_eq!(sweep(&d, 1).to_me, vec![2]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_ring_to_a_component_that_is_gone_goes_once_its_writer_does() {
        let d = dir("gone");
        let _me = OwnBell::take(&d, 1).expect("my bell");
        let other = OwnBell::take(&d, 3).expect("another's bell");
        let writer = Writer::open(&d, 1, 3).expect("a ring from 1 to 3");
        drop(other);
        // Its reader (never attached) is gone, but we still hold it; the
        // reader's doorbell goes.
        let swept = sweep(&d, 9);
        assert_eq!((swept.others, swept.bells), (0, 1), "{:?}", files(&d));
        drop(writer);
        let swept = sweep(&d, 9);
        assert_eq!((swept.others, swept.bells), (1, 0), "{:?}", files(&d));
        assert_eq!(files(&d), vec!["1.bell".to_owned()]);
        // A writer after the sweep gets a new ring, not the unlinked one.
        let _again = OwnBell::take(&d, 3).expect("3 again");
        let w = Writer::open(&d, 1, 3).expect("a new ring");
        assert!(w.ring.map.still_at(&ring_path(&d, 1, 3)));
        let _ = std::fs::remove_dir_all(&d);
    }
}
