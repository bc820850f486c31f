//! The TCP transport: works across hosts, the default.
//!
//! Each component listens (`--listen`) and opens one connection to each peer
//! it sends to (`--peer ID=ADDR`), on first use and again after any failure,
//! so a peer that restarts is reached again by itself. Incoming connections
//! are read by one thread each.
//!
//! Both ends of a connection first send a greeting (`lego_wire::hello`,
//! tagged with the rack key): who they are, the largest frame they take,
//! and the nonce the other end seals its frames with. A connection whose
//! greeting or any frame is not authentic, or that sends anything that is
//! not a frame, is closed and counted, and never affects the others; a
//! replayed frame, or one naming another source than the greeting did, is
//! dropped and counted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lego_proto::frame::{ComponentId, Header, HEADER_LEN};
use lego_wire::auth::{AuthError, Opener, Sealer, TRAILER_LEN};
use lego_wire::hello::{self, Hello, HelloError, HELLO_LEN};

use super::{Config, Event, Events, Local, SendError, Stats};
use crate::error::{Result, VmmError};

/// Incoming connections served at once. When all are taken, the oldest one
/// that has not yet sent a valid greeting is closed to make room, so a
/// flood of idle or garbage connections cannot lock real peers out; if
/// every one is a real peer, the newcomer is refused.
const MAX_INBOUND: usize = 64;
/// A new connection must greet within this time.
const FIRST_FRAME: Duration = Duration::from_secs(10);

/// One connection's sending end.
struct Conn {
    stream: TcpStream,
    sealer: Sealer,
    /// The largest frame the other end takes.
    max_frame: usize,
    serial: u64,
}

/// Which processes speak for which component id, by connection.
type Identities = Arc<Mutex<HashMap<ComponentId, Vec<(u64, Hello, TcpStream)>>>>;
/// Connections peers opened to us, newest last: a component is answered
/// on its newest, and on the one before when that closes.
type BackConns = Arc<Mutex<HashMap<ComponentId, Vec<Conn>>>>;

/// What the threads of the transport share.
#[derive(Clone)]
struct Shared {
    local: Arc<Local>,
    events: Events,
    stats: Arc<Stats>,
    back: BackConns,
    identities: Identities,
    timeout: Duration,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

pub struct TcpTransport {
    /// Those given at start, and those learned since ([`super::Transport::learn`]).
    peers: std::sync::RwLock<HashMap<ComponentId, String>>,
    /// Peers learned from the global managers (not named with `--peer`):
    /// their address follows what the managers say.
    learned: Mutex<std::collections::HashSet<ComponentId>>,
    conns: Mutex<HashMap<ComponentId, Conn>>,
    /// Peers that stopped reading, and until when a send to them fails at
    /// once (one fabric timeout): each send would otherwise wait a timeout
    /// of its own, and a new connection another for its greeting.
    stuck: Mutex<HashMap<ComponentId, std::time::Instant>>,
    shared: Shared,
}

impl TcpTransport {
    fn is_peer(&self, peer: ComponentId) -> bool {
        self.peers.read().is_ok_and(|p| p.contains_key(&peer))
    }

    /// Whether `peer` was found not reading within the last timeout.
    fn stuck_now(&self, peer: ComponentId) -> bool {
        self.stuck.lock().is_ok_and(|s| {
            s.get(&peer)
                .is_some_and(|until| std::time::Instant::now() < *until)
        })
    }

    pub fn start(
        cfg: &Config,
        local: Arc<Local>,
        events: Events,
        stats: Arc<Stats>,
    ) -> Result<TcpTransport> {
        let shared = Shared {
            local,
            events,
            stats,
            back: Arc::default(),
            identities: Arc::default(),
            timeout: cfg.timeout,
        };
        if let Some(addr) = &cfg.listen {
            let bound = match &cfg.listener {
                Some(l) => l.try_clone(),
                None => TcpListener::bind(addr),
            };
            let listener = bound.map_err(|e| VmmError::BadOption {
                option: "--listen",
                why: format!("cannot listen on {addr}: {e}"),
            })?;
            let local = listener
                .local_addr()
                .map_or(addr.clone(), |a| a.to_string());
            log::info!("fabric: component {} listens on {local}", cfg.id);
            eprintln!("lego-vmm: component {} listens on {local}", cfg.id);
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fabric-accept".into())
                .spawn(move || accept(listener, shared))
                .map_err(VmmError::Thread)?;
        }
        Ok(TcpTransport {
            peers: std::sync::RwLock::new(
                cfg.peers
                    .iter()
                    .filter(|(_, a)| a.as_str() != super::SHM)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect(),
            ),
            learned: Mutex::new(std::collections::HashSet::new()),
            conns: Mutex::new(HashMap::new()),
            stuck: Mutex::new(HashMap::new()),
            shared,
        })
    }
}

impl super::Transport for TcpTransport {
    /// A configured TCP peer, or one connected to us.
    fn reaches(&self, peer: ComponentId) -> bool {
        self.is_peer(peer) || self.shared.back.lock().is_ok_and(|m| m.contains_key(&peer))
    }

    /// A `host:port` address (not shared memory, not an RDMA queue pair).
    fn learn(&self, peer: ComponentId, addr: &str) -> bool {
        if addr == super::SHM || super::qp_address::parse_peer_addr(addr).is_some() {
            return false;
        }
        let Ok(mut peers) = self.peers.write() else {
            return false;
        };
        if peers.contains_key(&peer) {
            return false;
        }
        peers.insert(peer, addr.to_string());
        if let Ok(mut l) = self.learned.lock() {
            l.insert(peer);
        }
        true
    }

    /// A call to `peer` timed out. If the connection's data is being
    /// retransmitted (no acknowledgement for a retransmission timeout or
    /// more: a network cut, not a slow or stopped peer, whose kernel still
    /// acknowledges or advertises a shut window), it is ended here: after
    /// a cut healed, frames sent during it waited in the old connection's
    /// retransmission queue behind a timer backed off to seconds, and the
    /// first requests after the heal timed out (a run placed on a memory
    /// component right after its partition healed failed so, about one CI
    /// run in four). The next send opens a new connection.
    fn suspect(&self, peer: ComponentId) {
        // Not waited for: a send holding the table may be blocked on a
        // full connection for a fabric timeout, and this caller's own
        // timeout is over already (that send's failure deals with it).
        let Ok(mut conns) = self.conns.try_lock() else {
            return;
        };
        let cut = conns.get(&peer).is_some_and(|c| retransmitting(&c.stream));
        if cut {
            if let Some(c) = conns.remove(&peer) {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                log::info!(
                    "fabric: the connection to component {peer} is being retransmitted on; a new one will be opened"
                );
            }
        }
    }

    fn relearn(&self, peer: ComponentId, addr: &str) -> bool {
        if !self.learned.lock().is_ok_and(|l| l.contains(&peer)) {
            return false;
        }
        let Ok(mut peers) = self.peers.write() else {
            return false;
        };
        match peers.get(&peer) {
            Some(old) if old != addr => {
                log::info!("fabric: component {peer} moved from {old} to {addr}");
                peers.insert(peer, addr.to_string());
            }
            _ => return false,
        }
        drop(peers);
        // The connection to the old address, if one is still open, leads
        // to a component that is gone: the next frame dials the new one.
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&peer);
        }
        if let Ok(mut s) = self.stuck.lock() {
            s.remove(&peer);
        }
        true
    }

    fn send(
        &self,
        peer: ComponentId,
        frame: &super::Outgoing,
    ) -> std::result::Result<(), SendError> {
        self.send_frame(peer, frame)
    }
}

impl Shared {
    fn hello(&self, opener: &Opener) -> [u8; HELLO_LEN] {
        Hello {
            role: self.local.role,
            component: self.local.id,
            max_frame: self.local.max_frame() as u32,
            pid: std::process::id(),
            instance: hello::instance(),
            nonce: opener.nonce,
        }
        .encode(&self.local.key)
    }

    /// Reads and checks the other end's greeting. A greeting that is not
    /// one is counted (and its connection too); a connection that closes
    /// or says nothing is not.
    fn greeting(&self, conn: &mut TcpStream) -> std::result::Result<Hello, String> {
        let mut theirs = [0u8; HELLO_LEN];
        conn.read_exact(&mut theirs)
            .map_err(|e| format!("no greeting: {e}"))?;
        Hello::decode(&self.local.key, &theirs).map_err(|e| {
            let counter = match e {
                HelloError::BadTag => &self.stats.unauthenticated,
                _ => &self.stats.bad_frames,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.stats.bad_connections.fetch_add(1, Ordering::Relaxed);
            e.to_string()
        })
    }

    /// Notes that connection `serial` speaks for `hello.component`; says so
    /// when another live process already does.
    fn register(&self, serial: u64, hello: &Hello, conn: &TcpStream) {
        let Ok(mut ids) = self.identities.lock() else {
            return;
        };
        let seen = ids.entry(hello.component).or_default();
        // A connection whose reader has not seen its end yet is not a
        // second process: a restarted peer reconnects while the old
        // connection's end is still on its way.
        seen.retain(|(_, _, c)| open(c));
        if let Some((_, other, _)) = seen.iter().find(|(_, h, _)| h.instance != hello.instance) {
            self.stats.duplicate_ids.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: component {} is answered by two processes, pid {} and pid {} (on this or another host): two components were started with --id {}; stop one",
                hello.component,
                other.pid,
                hello.pid,
                hello.component
            );
            eprintln!(
                "lego-vmm: component {} is answered by two processes, pid {} and pid {}: two components were started with --id {}; stop one",
                hello.component, other.pid, hello.pid, hello.component
            );
        }
        if let Ok(c) = conn.try_clone() {
            seen.push((serial, *hello, c));
        }
    }

    fn forget(&self, serial: u64, id: ComponentId) {
        if let Ok(mut ids) = self.identities.lock() {
            if let Some(seen) = ids.get_mut(&id) {
                seen.retain(|(s, _, _)| *s != serial);
                if seen.is_empty() {
                    ids.remove(&id);
                }
            }
        }
        if let Ok(mut back) = self.back.lock() {
            if let Some(conns) = back.get_mut(&id) {
                conns.retain(|c| c.serial != serial);
                if conns.is_empty() {
                    back.remove(&id);
                }
            }
        }
    }
}

impl TcpTransport {
    fn connect(&self, peer: ComponentId) -> std::result::Result<Conn, String> {
        let addr = self
            .peers
            .read()
            .ok()
            .and_then(|p| p.get(&peer).cloned())
            .ok_or("not a peer")?;
        let targets: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .collect();
        let shared = &self.shared;
        let mut last = format!("{addr} resolves to nothing");
        for target in targets {
            let mut s = match TcpStream::connect_timeout(&target, shared.timeout) {
                Ok(s) => s,
                Err(e) => {
                    last = format!("{target}: {e}");
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            let _ = s.set_write_timeout(Some(shared.timeout));
            let _ = s.set_read_timeout(Some(shared.timeout));
            let opener = Opener::new();
            s.write_all(&shared.hello(&opener))
                .map_err(|e| format!("{target}: {e}"))?;
            let theirs = shared
                .greeting(&mut s)
                .map_err(|e| format!("{target}: {e}"))?;
            if theirs.component != peer {
                return Err(format!(
                    "{target} is component {}, not {peer}",
                    theirs.component
                ));
            }
            let _ = s.set_read_timeout(None);
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            shared.register(serial, &theirs, &s);
            // Replies come back on this connection: read it too.
            let reader = s.try_clone().map_err(|e| format!("{target}: {e}"))?;
            let sh = shared.clone();
            std::thread::Builder::new()
                .name("fabric-conn".into())
                .spawn(move || {
                    read_frames(reader, opener, &theirs, &sh);
                    sh.forget(serial, theirs.component);
                    // Replies to what was sent on it can only come on it.
                    let _ = sh.events.send(Event::PeerGone(
                        theirs.component,
                        "its connection closed".into(),
                    ));
                })
                .map_err(|e| format!("no thread for the connection: {e}"))?;
            return Ok(Conn {
                stream: s,
                sealer: Sealer::new(theirs.nonce),
                max_frame: theirs.max_frame as usize,
                serial,
            });
        }
        Err(last)
    }

    /// Sends one whole frame to `peer`; one fresh connection is tried if the
    /// old one failed (the peer may have restarted).
    fn send_frame(
        &self,
        peer: ComponentId,
        frame: &super::Outgoing,
    ) -> std::result::Result<(), SendError> {
        let local = &self.shared.local;
        if !self.is_peer(peer) {
            // Not a configured peer: answer on the connection it opened.
            let mut back = self
                .shared
                .back
                .lock()
                .map_err(|_| "transport lock poisoned")?;
            let conns = back.get_mut(&peer).ok_or("no connection from it")?;
            let conn = conns.last_mut().ok_or("no connection from it")?;
            return write_frame(conn, peer, local, frame, self.shared.timeout).map_err(|e| {
                if !matches!(e, WriteError::TooLarge(_)) {
                    conns.pop();
                }
                e.into()
            });
        }
        let mut conns = self.conns.lock().map_err(|_| "transport lock poisoned")?;
        // Checked once the lock is ours: the send that held it may have
        // found the peer stuck meanwhile.
        if self.stuck_now(peer) {
            return Err(SendError::Unreachable(format!(
                "{STUCK} (a send to it found its connection full lately)"
            )));
        }
        // A connection the peer ended (it exited, or was restarted) still
        // takes one write, which is then lost: a fresh one instead.
        if conns.get(&peer).is_some_and(|c| !open(&c.stream)) {
            conns.remove(&peer);
        }
        if let Some(conn) = conns.get_mut(&peer) {
            match write_frame(conn, peer, local, frame, self.shared.timeout) {
                Ok(()) => return Ok(()),
                Err(e @ WriteError::TooLarge(_)) => return Err(e.into()),
                Err(WriteError::Stuck(why)) => {
                    // Alive but not reading (stopped, or wedged): a new
                    // connection would wait a fabric timeout more for its
                    // greeting.
                    conns.remove(&peer);
                    if let Ok(mut s) = self.stuck.lock() {
                        s.insert(peer, std::time::Instant::now() + self.shared.timeout);
                    }
                    return Err(SendError::Unreachable(why));
                }
                Err(WriteError::Failed(_)) => {
                    conns.remove(&peer);
                }
            }
        }
        let mut conn = self.connect(peer)?;
        write_frame(&mut conn, peer, local, frame, self.shared.timeout)?;
        conns.insert(peer, conn);
        Ok(())
    }
}

/// Whether a connection's data waits for retransmission: the kernel has
/// seen a retransmission timeout without an acknowledgement (TCP_INFO's
/// `tcpi_retransmits`). Probes of a shut window (a peer that does not
/// read) are not counted there.
fn retransmitting(conn: &TcpStream) -> bool {
    // SAFETY: an all-zero tcp_info is valid; getsockopt writes at most
    // `len` bytes of it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt into a struct we own, its size in `len`.
    let r = unsafe {
        libc::getsockopt(
            std::os::unix::io::AsRawFd::as_raw_fd(conn),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    r == 0 && info.tcpi_retransmits > 0
}

/// Whether the other end of a connection has not closed it (a peek that
/// neither blocks nor takes anything: 0 bytes means it ended).
fn open(conn: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: recv into a one-byte buffer we own, on a socket we own.
    let n = unsafe {
        libc::recv(
            std::os::unix::io::AsRawFd::as_raw_fd(conn),
            byte.as_mut_ptr() as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0 || (n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock)
}

/// Seals and writes a frame, header, payload and trailer in one write.
fn write_frame(
    conn: &mut Conn,
    peer: ComponentId,
    local: &Local,
    frame: &super::Outgoing,
    timeout: Duration,
) -> std::result::Result<(), WriteError> {
    let len = frame.len();
    if len > conn.max_frame {
        return Err(WriteError::TooLarge(SendError::TooLarge {
            peer,
            len,
            max: conn.max_frame,
        }));
    }
    // The payload is read once: bytes the VMM holds are sent from where
    // they are; guest memory is copied out once (the tag must cover the
    // bytes sent, which the guest could change meanwhile).
    frame
        .with_payload(|payload| {
            let trailer = match (frame.absorbed, &frame.payload) {
                // Only bytes the VMM holds: a guest's could change between
                // the hash and the send.
                (Some(absorbed), super::Payload::Bytes(_)) => {
                    conn.sealer
                        .seal_absorbed(absorbed, local.role, &frame.header)
                }
                _ => conn
                    .sealer
                    .seal(&local.key, local.role, &frame.header, payload),
            };
            let parts = [&frame.header[..], payload, &trailer[..]];
            write_within(&mut conn.stream, &parts, timeout)
        })
        .map_err(|e| match (e.raw_os_error(), e.kind()) {
            // The kernel ended the connection (its retransmissions or
            // keep-alives went unanswered): the path to the peer failed,
            // and the next send opens a new one.
            (Some(libc::ETIMEDOUT), _) => {
                WriteError::Failed(format!("sending: the connection timed out ({e})"))
            }
            (_, std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                WriteError::Stuck(format!(
                    "{STUCK} (its connection stayed full for the fabric timeout)"
                ))
            }
            _ => WriteError::Failed(format!("sending: {e}")),
        })
}

/// Why a frame was not written on a connection.
enum WriteError {
    /// Larger than the other end takes (the connection is fine).
    TooLarge(SendError),
    /// The other end did not read it within the fabric timeout.
    Stuck(String),
    /// The connection failed.
    Failed(String),
}

impl From<WriteError> for SendError {
    fn from(e: WriteError) -> SendError {
        match e {
            WriteError::TooLarge(e) => e,
            WriteError::Stuck(why) | WriteError::Failed(why) => SendError::Unreachable(why),
        }
    }
}

/// How a send to a peer that stopped reading begins.
const STUCK: &str = "it stopped reading";

/// Writes all of `parts`, in order, within `timeout` in all (the socket's
/// write timeout alone bounds each partial write, so a slow reader could
/// make one frame take many timeouts).
fn write_within(stream: &mut TcpStream, parts: &[&[u8]], timeout: Duration) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut slices: Vec<std::io::IoSlice<'_>> =
        parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    let mut at = 0;
    let mut shortened = false;
    let result = loop {
        if bufs.is_empty() {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Err(std::io::ErrorKind::TimedOut.into());
        }
        if at > 0 {
            let _ = stream.set_write_timeout(Some(left));
            shortened = true;
        }
        match stream.write_vectored(bufs) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                at += n;
                std::io::IoSlice::advance_slices(&mut bufs, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if shortened {
        let _ = stream.set_write_timeout(Some(timeout));
    }
    result
}

/// Connections that have not greeted yet, oldest first.
type Unproven = Arc<Mutex<std::collections::VecDeque<(u64, TcpStream)>>>;

fn accept(listener: TcpListener, shared: Shared) {
    let active = Arc::new(AtomicUsize::new(0));
    let unproven: Unproven = Arc::default();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if active.load(Ordering::Acquire) >= MAX_INBOUND {
            // Make room by closing the oldest connection that proved nothing.
            let oldest = unproven.lock().ok().and_then(|mut u| u.pop_front());
            shared
                .stats
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            match oldest {
                Some((_, old)) => {
                    let _ = old.shutdown(std::net::Shutdown::Both);
                    log::warn!(
                        "fabric: {MAX_INBOUND} connections open: closed the oldest that sent no greeting"
                    );
                }
                None => {
                    log::warn!(
                        "fabric: refused a connection: {MAX_INBOUND} peers are connected already"
                    );
                    drop(conn);
                    continue;
                }
            }
        }
        active.fetch_add(1, Ordering::AcqRel);
        let me = SERIAL.fetch_add(1, Ordering::Relaxed);
        if let (Ok(mut u), Ok(c)) = (unproven.lock(), conn.try_clone()) {
            u.push_back((me, c));
        }
        let (active, shared, unproven) = (active.clone(), shared.clone(), unproven.clone());
        let spawned = std::thread::Builder::new()
            .name("fabric-conn".into())
            .spawn(move || {
                let proven = || {
                    if let Ok(mut u) = unproven.lock() {
                        u.retain(|(n, _)| *n != me);
                    }
                };
                serve_accepted(conn, me, &shared, &proven);
                proven();
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            log::warn!("fabric: no thread for a new connection");
        }
    }
}

/// A connection a peer opened: greetings, then its frames; it is the one
/// to answer that peer on.
fn serve_accepted(mut conn: TcpStream, serial: u64, shared: &Shared, proven: &dyn Fn()) {
    let peer = conn.peer_addr().map_or("?".into(), |a| a.to_string());
    let _ = conn.set_read_timeout(Some(FIRST_FRAME));
    let opener = Opener::new();
    if conn.write_all(&shared.hello(&opener)).is_err() {
        return;
    }
    let theirs = match shared.greeting(&mut conn) {
        Ok(h) => h,
        Err(why) => {
            log::warn!("fabric: closed the connection from {peer}: {why}");
            return;
        }
    };
    let _ = conn.set_read_timeout(None);
    proven();
    shared.register(serial, &theirs, &conn);
    if let (Ok(mut back), Ok(w)) = (shared.back.lock(), conn.try_clone()) {
        let _ = w.set_write_timeout(Some(shared.timeout));
        let _ = w.set_nodelay(true);
        // The newest connection from a component is the one to answer it on.
        back.entry(theirs.component).or_default().push(Conn {
            stream: w,
            sealer: Sealer::new(theirs.nonce),
            max_frame: theirs.max_frame as usize,
            serial,
        });
    }
    read_frames(conn, opener, &theirs, shared);
    shared.forget(serial, theirs.component);
}

/// Reads frames from a connection whose other end greeted as `theirs`.
fn read_frames(mut conn: TcpStream, mut opener: Opener, theirs: &Hello, shared: &Shared) {
    let peer = conn.peer_addr().map_or("?".into(), |a| a.to_string());
    let stats = &shared.stats;
    let id = shared.local.id;
    let close = |counter: &AtomicU64, why: String| {
        counter.fetch_add(1, Ordering::Relaxed);
        stats.bad_connections.fetch_add(1, Ordering::Relaxed);
        log::warn!("fabric: closed the connection from {peer}: {why}");
    };
    loop {
        let mut head = [0u8; HEADER_LEN];
        match conn.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                log::info!("fabric: connection from {peer} ended: {e}");
                return;
            }
        }
        let header = match Header::decode(&head) {
            Ok(h) => h,
            Err(e) => return close(&stats.bad_frames, e.to_string()),
        };
        let whole = header.frame_len() + TRAILER_LEN;
        let mut frame = Vec::with_capacity(whole);
        frame.extend_from_slice(&head);
        // Read into the room as it is (no zeroing first): a frame is up to
        // a MiB, and every byte of it is written by the read.
        let rest = (whole - HEADER_LEN) as u64;
        let read = (&mut conn).take(rest).read_to_end(&mut frame);
        if let Err(e) = read.and_then(|n| {
            if n as u64 == rest {
                Ok(())
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            }
        }) {
            // Without its trailer a frame is not authentic either.
            stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
            log::warn!("fabric: connection from {peer} ended inside a frame: {e}");
            return;
        }
        let role = match opener.open(&shared.local.key, &frame) {
            Ok(o) => o.role,
            Err(e @ AuthError::Replayed { .. }) => {
                stats.replayed.fetch_add(1, Ordering::Relaxed);
                log::warn!("fabric: dropped a frame from {peer}: {e}");
                continue;
            }
            // The length it carried cannot be trusted either, so nothing
            // after it can be read as frames.
            Err(e) => return close(&stats.unauthenticated, e.to_string()),
        };
        frame.truncate(header.frame_len());
        if header.src != theirs.component {
            stats.forged_source.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: dropped a frame from {peer} that claims to come from component {}: the connection is component {}'s",
                header.src,
                theirs.component
            );
            continue;
        }
        if header.dst != id {
            stats.misrouted.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: dropped a frame for component {} from {peer}: this is component {id}",
                header.dst
            );
            continue;
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        if shared.events.send(Event::Inbound(frame, role)).is_err() {
            return;
        }
    }
}
