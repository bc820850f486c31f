//! The shared-memory transport: components on the same host, the fast path.
//! The rings and doorbells themselves are `lego_wire::shm`; this is the
//! component's use of them: its doorbell (which makes its id live on this
//! host, so a second process with the same id refuses to start), a writer
//! per peer, and a thread that reads every ring addressed to it.
//!
//! A sender to a component that died is told at once (from the pids in the
//! ring and doorbell), not after a timeout. A ring whose bytes are not
//! authentic frames is counted and skipped; it never crashes the reader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lego_proto::frame::ComponentId;
use lego_wire::auth::AuthError;
use lego_wire::shm::{self, Item, OwnBell, Refusal, ShmError};

use super::{Event, Events, Local, SendError, Stats};
use crate::error::{Result, VmmError};

/// How long the reader polls after the last frame before it sleeps.
const POLL_WINDOW: Duration = Duration::from_micros(200);
/// How often a reader that never sleeps still looks for new rings.
const SCAN_WHILE_BUSY: Duration = Duration::from_millis(100);
/// How often the reader sweeps the directory of files left by components
/// that are gone (`lego_wire::shm::sweep`).
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How long an idle reader sleeps: a new sender rings the doorbell before
/// its first frame, so this only bounds how late a ring is found if that
/// wake-up is lost.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

pub struct ShmTransport {
    dir: PathBuf,
    local: Arc<Local>,
    /// Peers configured as `ID=shm`.
    peers: Vec<ComponentId>,
    /// Rings we write, by destination. A writer holds its ring (no sweep
    /// removes it), so it goes when its peer's process ends.
    out: Arc<Mutex<HashMap<ComponentId, shm::Writer>>>,
    /// Components whose rings to us we read (they are answered here).
    seen: Arc<Mutex<Vec<ComponentId>>>,
    timeout: Duration,
    /// The process watched for each peer we send to, and whether it ended
    /// (a killed process may linger as a zombie, which signal 0 still
    /// finds, until its parent reaps it).
    watched: Mutex<HashMap<ComponentId, (u64, Arc<AtomicBool>)>>,
    events: Events,
}

impl ShmTransport {
    /// Takes this component's doorbell (refusing when another live process
    /// has it) and starts the reader.
    pub fn start(
        dir: &Path,
        local: Arc<Local>,
        peers: Vec<ComponentId>,
        timeout: Duration,
        events: Events,
        stats: Arc<Stats>,
    ) -> Result<ShmTransport> {
        std::fs::create_dir_all(dir).map_err(|e| VmmError::BadOption {
            option: "--shm-dir",
            why: format!("cannot use {}: {e}", dir.display()),
        })?;
        let id = local.id;
        let bell = OwnBell::take(dir, id).map_err(|e| match e {
            ShmError::Taken { .. } => VmmError::IdTaken(e.to_string()),
            other => VmmError::BadOption {
                option: "--shm-dir",
                why: other.to_string(),
            },
        })?;
        let seen: Arc<Mutex<Vec<ComponentId>>> = Arc::default();
        let reader = Reader {
            dir: dir.to_owned(),
            local: local.clone(),
            bell,
            rings: HashMap::new(),
            events: events.clone(),
            stats,
            seen: seen.clone(),
            max_frame: 0,
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
            local,
            peers,
            out: Arc::default(),
            seen,
            timeout,
            watched: Mutex::new(HashMap::new()),
            events,
        })
    }

    /// Makes sure the device hears at once when the process behind `peer`
    /// ends, so requests waiting for it fail then, not at their timeout.
    /// Returns false when that process is known to have ended.
    fn watch(&self, peer: ComponentId, pid: u64) -> bool {
        let Ok(mut watched) = self.watched.lock() else {
            return true;
        };
        if let Some((watched_pid, ended)) = watched.get(&peer) {
            if *watched_pid == pid {
                return !ended.load(Ordering::Acquire);
            }
        }
        let ended = Arc::new(AtomicBool::new(false));
        watched.insert(peer, (pid, ended.clone()));
        let events = self.events.clone();
        let out = self.out.clone();
        let spawned = std::thread::Builder::new()
            .name("fabric-watch".into())
            .spawn(move || {
                wait_for_exit(pid);
                ended.store(true, Ordering::Release);
                // Let its ring go (a sweep removes it); a later send to a
                // component with this id opens a ring again.
                if let Ok(mut out) = out.lock() {
                    out.remove(&peer);
                }
                let _ = events.send(Event::PeerGone(peer, format!("its process {pid} ended")));
            });
        if spawned.is_err() {
            log::warn!("fabric: no thread to watch component {peer}");
        }
        true
    }
}

/// Blocks until process `pid` has ended (a pidfd becomes readable then).
fn wait_for_exit(pid: u64) {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        // Gone already (ESRCH), or a kernel without pidfds: poll instead.
        while shm::pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the fd is ours and closed below.
    while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
    // SAFETY: closing the pidfd opened above.
    unsafe { libc::close(fd) };
}

impl super::Transport for ShmTransport {
    /// Configured as `ID=shm`, or it has written to us.
    fn reaches(&self, peer: ComponentId) -> bool {
        self.peers.contains(&peer) || self.seen.lock().is_ok_and(|s| s.contains(&peer))
    }

    /// Appends one sealed frame to the ring to `peer` and rings its bell.
    fn send(
        &self,
        peer: ComponentId,
        frame: &super::Outgoing,
    ) -> std::result::Result<(), SendError> {
        let mut out = self.out.lock().map_err(|_| "transport lock poisoned")?;
        let writer = match out.entry(peer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let w =
                    shm::Writer::open(&self.dir, self.local.id, peer).map_err(|e| e.to_string())?;
                e.insert(w)
            }
        };
        if let Ok(pid) = writer.peer_alive() {
            if !self.watch(peer, pid) {
                return Err(SendError::Unreachable(format!("its process {pid} ended")));
            }
        }
        frame
            .with_payload(|payload| {
                writer.send(
                    &self.local.key,
                    self.local.role,
                    &frame.header,
                    payload,
                    self.timeout,
                )
            })
            .map_err(|e| match e {
                ShmError::TooLarge { len, max } => SendError::TooLarge { peer, len, max },
                other => SendError::Unreachable(other.to_string()),
            })
    }
}

/// The receiving thread: reads every ring addressed to this component.
struct Reader {
    dir: PathBuf,
    local: Arc<Local>,
    bell: OwnBell,
    rings: HashMap<ComponentId, shm::Reader>,
    events: Events,
    stats: Arc<Stats>,
    seen: Arc<Mutex<Vec<ComponentId>>>,
    /// The largest frame the rings say this component takes.
    max_frame: usize,
}

impl Reader {
    fn run(mut self) {
        let mut last_busy = Instant::now();
        self.sweep();
        let mut last_sweep = Instant::now();
        self.scan();
        // Woken by the bell and not yet seen why.
        let mut woken = false;
        let mut last_scan = Instant::now();
        loop {
            let word = self.bell.seen();
            self.update_max_frame();
            let mut busy = false;
            let ids: Vec<ComponentId> = self.rings.keys().copied().collect();
            for src in ids {
                match self.drain(src) {
                    Ok(n) => busy |= n > 0,
                    Err(()) => return,
                }
            }
            if (woken && !busy) || last_scan.elapsed() > SCAN_WHILE_BUSY {
                // A ring we know did not ring: a new sender did (it rings
                // before it sends), or a busy reader looks now and then.
                // Only then is the directory read, which costs milliseconds
                // when it holds thousands of old rings; reading it after
                // every ring made each frame wait 2 ms.
                self.scan();
                last_scan = Instant::now();
            }
            if last_sweep.elapsed() > SWEEP_EVERY {
                self.sweep();
                last_sweep = Instant::now();
            }
            woken = false;
            if busy {
                last_busy = Instant::now();
            } else if last_busy.elapsed() > POLL_WINDOW {
                // Sleep until a sender rings, or a while.
                self.bell.wait(word, IDLE_SLEEP);
                woken = true;
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Tells the rings when the guest says it takes another size.
    fn update_max_frame(&mut self) {
        let max = self.local.max_frame();
        if max != self.max_frame {
            self.max_frame = max;
            for r in self.rings.values() {
                r.set_max_frame(max as u32);
            }
        }
    }

    /// Removes the files of components that are gone, and stops reading
    /// their rings to us.
    fn sweep(&mut self) {
        let swept = shm::sweep(&self.dir, self.local.id);
        for src in &swept.to_me {
            self.rings.remove(src);
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|id| !swept.to_me.contains(id));
        }
        if swept != shm::Swept::default() {
            log::debug!(
                "fabric: swept {} rings to us, {} other rings and {} doorbells left by components that are gone",
                swept.to_me.len(),
                swept.others,
                swept.bells
            );
        }
    }

    /// Opens rings to this component that appeared in the directory.
    fn scan(&mut self) {
        for (src, path) in shm::rings_to(&self.dir, self.local.id) {
            if self.rings.contains_key(&src) {
                continue;
            }
            match shm::Reader::attach(&path, src, self.local.id, self.local.max_frame() as u32) {
                Ok(ring) => {
                    self.rings.insert(src, ring);
                    if let Ok(mut seen) = self.seen.lock() {
                        seen.push(src);
                    }
                    log::info!("fabric: reading the ring from component {src}");
                }
                Err(e) => log::warn!("fabric: cannot open {}: {e}", path.display()),
            }
        }
    }

    /// Delivers the frames in the ring from `src`; Err when the fabric is gone.
    fn drain(&mut self, src: ComponentId) -> std::result::Result<usize, ()> {
        let Some(ring) = self.rings.get_mut(&src) else {
            return Ok(0);
        };
        let (stats, events) = (&self.stats, &self.events);
        let mut delivered = 0;
        let mut gone = false;
        ring.take(&self.local.key, &mut |item| match item {
            Item::Frame(frame, role) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                delivered += 1;
                if events.send(Event::Inbound(frame, role)).is_err() {
                    gone = true;
                }
            }
            Item::Refused(why) => {
                let counter = match &why {
                    Refusal::Garbage(_) => &stats.bad_frames,
                    Refusal::Auth(AuthError::Replayed { .. }) => &stats.replayed,
                    Refusal::Auth(_) => &stats.unauthenticated,
                    Refusal::ClaimedSource(_) => &stats.forged_source,
                    Refusal::Misrouted(_) => &stats.misrouted,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                log::warn!("fabric: skipped in the ring from component {src}: {why:?}");
            }
        });
        if gone {
            return Err(());
        }
        Ok(delivered)
    }
}
