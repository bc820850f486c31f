//! The shared-memory transport: components on the same host, the fast path.
//!
//! Each direction between two components is one ring, a file
//! `<src>-to-<dst>.ring` in `--shm-dir` (default /dev/shm/lego), mapped by
//! both: the sender appends whole frames and publishes them by advancing
//! `tail`; the receiver reads them and advances `head`. Single producer,
//! single consumer, no locks. Each component also has a doorbell,
//! `<id>.bell`, a futex word senders bump after publishing, so an idle
//! receiver sleeps instead of spinning.
//!
//! The receiver writes its pid into each ring it reads, so a sender to a
//! component that died is told at once, not after a timeout. A ring whose
//! bytes are not valid frames (a bug or another process scribbling) is
//! counted and skipped to its tail; it never crashes the reader.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lego_proto::frame::{ComponentId, Header, HEADER_LEN};

use super::{Event, Events, Stats};
use crate::error::{Result, VmmError};

const MAGIC: u64 = 0x474e_4952_4f47_454c; // "LEGORING"
const HEADER: usize = 4096;
/// Bytes of frames a ring holds.
const CAPACITY: u64 = 4 << 20;
// Header fields, each on its own cache line where both sides write.
const OFF_MAGIC: usize = 0;
const OFF_CAPACITY: usize = 8;
const OFF_TAIL: usize = 64;
const OFF_HEAD: usize = 128;
const OFF_READER_PID: usize = 192;
/// In a doorbell: the futex word at 0, its owner's pid here.
const BELL_OWNER_PID: usize = 8;
/// How long the reader polls after the last frame before it sleeps.
const POLL_WINDOW: Duration = Duration::from_micros(200);

/// One mapped file.
struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is shared memory used only through atomics and
// volatile copies; it lives as long as the Mapping.
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
        // SAFETY: a shared mapping of a file we just sized; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::unix::io::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            base: base as *mut u8,
            len,
        })
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

    /// Copies a frame's payload into the data area after its header,
    /// straight from guest memory when it is there.
    fn write_payload_at(&self, pos: u64, frame: &super::Outgoing) {
        let len = frame.len() - HEADER_LEN;
        let start = (pos % CAPACITY) as usize;
        let first = len.min(CAPACITY as usize - start);
        match &frame.payload {
            super::Payload::Bytes(b) => self.write_at(pos, b),
            super::Payload::Guest(slice) => {
                // SAFETY: both pieces are inside the data area, which only
                // this producer writes between head and tail.
                let (a, b) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(self.data().add(start), first),
                        std::slice::from_raw_parts_mut(self.data(), len - first),
                    )
                };
                slice.copy_to(a);
                if let Ok(rest) = slice.subslice(first, len - first) {
                    rest.copy_to(b);
                }
            }
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
fn pid_alive(pid: u64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid != 0
        && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

pub struct ShmTransport {
    dir: PathBuf,
    id: ComponentId,
    /// Peers configured as `ID=shm`.
    peers: Vec<ComponentId>,
    /// Rings we write, by destination.
    out: Mutex<HashMap<ComponentId, (Ring, Mapping)>>,
    /// Components whose rings to us we read (they are answered here).
    seen: Arc<Mutex<Vec<ComponentId>>>,
    timeout: Duration,
}

impl ShmTransport {
    pub fn start(
        dir: &Path,
        id: ComponentId,
        peers: Vec<ComponentId>,
        timeout: Duration,
        events: Events,
        stats: Arc<Stats>,
    ) -> Result<ShmTransport> {
        std::fs::create_dir_all(dir).map_err(|e| VmmError::BadOption {
            option: "--shm-dir",
            why: format!("cannot use {}: {e}", dir.display()),
        })?;
        let bell = Mapping::open(&dir.join(format!("{id}.bell")), 4096).map_err(|e| {
            VmmError::BadOption {
                option: "--shm-dir",
                why: format!("cannot create the doorbell in {}: {e}", dir.display()),
            }
        })?;
        bell.u64_at(BELL_OWNER_PID)
            .store(std::process::id() as u64, Ordering::Release);
        let seen: Arc<Mutex<Vec<ComponentId>>> = Arc::default();
        let reader = Reader {
            dir: dir.to_owned(),
            id,
            bell,
            rings: HashMap::new(),
            events,
            stats,
            seen: seen.clone(),
        };
        std::thread::Builder::new()
            .name("fabric-shm".into())
            .spawn(move || reader.run())
            .map_err(VmmError::Thread)?;
        log::info!(
            "fabric: component {id} reads shared-memory rings in {}",
            dir.display()
        );
        Ok(ShmTransport {
            dir: dir.to_owned(),
            id,
            peers,
            out: Mutex::new(HashMap::new()),
            seen,
            timeout,
        })
    }
}

impl super::Transport for ShmTransport {
    /// Configured as `ID=shm`, or it has written to us.
    fn reaches(&self, peer: ComponentId) -> bool {
        self.peers.contains(&peer) || self.seen.lock().is_ok_and(|s| s.contains(&peer))
    }

    /// Appends one whole frame to the ring to `peer` and rings its bell.
    fn send(&self, peer: ComponentId, frame: &super::Outgoing) -> std::result::Result<(), String> {
        let mut out = self.out.lock().map_err(|_| "transport lock poisoned")?;
        let (ring, bell) = match out.entry(peer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let bell_path = self.dir.join(format!("{peer}.bell"));
                if !bell_path.exists() {
                    return Err(format!(
                        "it is not running on this host (no {})",
                        bell_path.display()
                    ));
                }
                let ring = Ring::open(&self.dir.join(format!("{}-to-{peer}.ring", self.id)))
                    .map_err(|e| format!("its ring: {e}"))?;
                let bell =
                    Mapping::open(&bell_path, 4096).map_err(|e| format!("its doorbell: {e}"))?;
                e.insert((ring, bell))
            }
        };
        let (ring, bell) = (&*ring, &*bell);
        let owner = bell.u64_at(BELL_OWNER_PID).load(Ordering::Acquire);
        if !pid_alive(owner) {
            return Err(format!("its process {owner} is gone"));
        }
        // A new ring: wake the peer so it finds it, and wait until it reads it.
        let attach_by = Instant::now() + self.timeout;
        while ring.map.u64_at(OFF_READER_PID).load(Ordering::Acquire) == 0 {
            if Instant::now() > attach_by {
                return Err("it did not open its ring in time".into());
            }
            let word = bell.u32_at(0);
            word.fetch_add(1, Ordering::AcqRel);
            futex_wake(word);
            std::thread::sleep(Duration::from_micros(200));
        }
        let len = frame.len() as u64;
        let tail = ring.map.u64_at(OFF_TAIL).load(Ordering::Relaxed);
        let deadline = Instant::now() + self.timeout;
        loop {
            let head = ring.map.u64_at(OFF_HEAD).load(Ordering::Acquire);
            if tail.wrapping_sub(head) + len <= CAPACITY {
                break;
            }
            if Instant::now() > deadline
                || !pid_alive(ring.map.u64_at(OFF_READER_PID).load(Ordering::Acquire))
            {
                return Err("its ring stayed full".into());
            }
            std::thread::yield_now();
        }
        ring.write_at(tail, &frame.header);
        ring.write_payload_at(tail + HEADER_LEN as u64, frame);
        ring.map
            .u64_at(OFF_TAIL)
            .store(tail + len, Ordering::Release);
        let word = bell.u32_at(0);
        word.fetch_add(1, Ordering::AcqRel);
        futex_wake(word);
        Ok(())
    }
}

/// The receiving thread: reads every ring addressed to this component.
struct Reader {
    dir: PathBuf,
    id: ComponentId,
    bell: Mapping,
    rings: HashMap<ComponentId, Ring>,
    events: Events,
    stats: Arc<Stats>,
    seen: Arc<Mutex<Vec<ComponentId>>>,
}

impl Reader {
    fn run(mut self) {
        let mut last_scan = Instant::now() - Duration::from_secs(1);
        let mut last_busy = Instant::now();
        loop {
            if last_scan.elapsed() > Duration::from_millis(20) {
                self.scan();
                last_scan = Instant::now();
            }
            let word = self.bell.u32_at(0).load(Ordering::Acquire);
            let mut busy = false;
            let ids: Vec<ComponentId> = self.rings.keys().copied().collect();
            for src in ids {
                match self.drain(src) {
                    Ok(n) => busy |= n > 0,
                    Err(()) => return,
                }
            }
            if busy {
                last_busy = Instant::now();
            } else if last_busy.elapsed() > POLL_WINDOW {
                // Sleep until a sender rings (a new sender rings before it
                // sends, so look for new rings then), or a while.
                futex_wait(self.bell.u32_at(0), word, Duration::from_millis(20));
                self.scan();
                last_scan = Instant::now();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Opens rings to this component that appeared in the directory.
    fn scan(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let suffix = format!("-to-{}.ring", self.id);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(src) = name
                .to_str()
                .and_then(|n| n.strip_suffix(&suffix))
                .and_then(|s| s.parse::<ComponentId>().ok())
            else {
                continue;
            };
            if self.rings.contains_key(&src) {
                continue;
            }
            match Ring::open(&entry.path()) {
                Ok(ring) => {
                    ring.map
                        .u64_at(OFF_READER_PID)
                        .store(std::process::id() as u64, Ordering::Release);
                    // Frames left from an earlier life of this component are stale.
                    let tail = ring.map.u64_at(OFF_TAIL).load(Ordering::Acquire);
                    ring.map.u64_at(OFF_HEAD).store(tail, Ordering::Release);
                    self.rings.insert(src, ring);
                    if let Ok(mut seen) = self.seen.lock() {
                        seen.push(src);
                    }
                    log::info!("fabric: reading the ring from component {src}");
                }
                Err(e) => log::warn!("fabric: cannot open {}: {e}", entry.path().display()),
            }
        }
    }

    /// Delivers the frames in the ring from `src`; Err when the fabric is gone.
    fn drain(&mut self, src: ComponentId) -> std::result::Result<usize, ()> {
        let Some(ring) = self.rings.get(&src) else {
            return Ok(0);
        };
        let head_word = ring.map.u64_at(OFF_HEAD);
        let mut head = head_word.load(Ordering::Relaxed);
        let tail = ring.map.u64_at(OFF_TAIL).load(Ordering::Acquire);
        let mut delivered = 0;
        while head != tail {
            let available = tail.wrapping_sub(head);
            let mut bytes = [0u8; HEADER_LEN];
            let header = if available >= HEADER_LEN as u64 {
                ring.read_at(head, &mut bytes);
                Header::decode(&bytes).map_err(|e| e.to_string())
            } else {
                Err(format!("{available} stray bytes"))
            };
            let header = match header {
                Ok(h) => h,
                Err(why) => {
                    self.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                    log::warn!("fabric: skipped the ring from component {src} to its end: {why}");
                    head = tail;
                    break;
                }
            };
            if header.frame_len() as u64 > available {
                self.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "fabric: skipped the ring from component {src}: a frame runs past its tail"
                );
                head = tail;
                break;
            }
            let mut frame = vec![0u8; header.frame_len()];
            ring.read_at(head, &mut frame);
            head = head.wrapping_add(frame.len() as u64);
            if header.dst != self.id || header.src != src {
                self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.stats.received.fetch_add(1, Ordering::Relaxed);
            delivered += 1;
            if self.events.send(Event::Inbound(frame)).is_err() {
                return Err(());
            }
        }
        head_word.store(head, Ordering::Release);
        Ok(delivered)
    }
}
