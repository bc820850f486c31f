//! The TCP transport: works across hosts, the default.
//!
//! Each component listens (`--listen`) and opens one connection to each peer
//! it sends to (`--peer ID=ADDR`), on first use and again after any failure,
//! so a peer that restarts is reached again by itself. Incoming connections
//! are read by one thread each; a connection that sends anything that is not
//! a valid frame is closed and counted, and never affects the others.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lego_proto::frame::{ComponentId, Header, HEADER_LEN};

use super::{Config, Event, Events, Stats};
use crate::error::{Result, VmmError};

/// Incoming connections served at once. When all are taken, the oldest one
/// that has not yet sent a valid frame is closed to make room, so a flood of
/// idle or garbage connections cannot lock real peers out; if every one is
/// a real peer, the newcomer is refused.
const MAX_INBOUND: usize = 64;
/// A new connection must deliver its first frame within this time.
const FIRST_FRAME: Duration = Duration::from_secs(10);

pub struct TcpTransport {
    peers: HashMap<ComponentId, String>,
    conns: Mutex<HashMap<ComponentId, TcpStream>>,
    /// Connections peers opened to us, by the id their frames carry: a
    /// component that is not one of our `--peer`s is answered on these.
    inbound: Arc<Mutex<HashMap<ComponentId, TcpStream>>>,
    timeout: Duration,
    id: ComponentId,
    events: Events,
    stats: Arc<Stats>,
}

impl TcpTransport {
    pub fn start(cfg: &Config, inbound: Events, stats: Arc<Stats>) -> Result<TcpTransport> {
        let back: Arc<Mutex<HashMap<ComponentId, TcpStream>>> = Arc::default();
        if let Some(addr) = &cfg.listen {
            let listener = TcpListener::bind(addr).map_err(|e| VmmError::BadOption {
                option: "--listen",
                why: format!("cannot listen on {addr}: {e}"),
            })?;
            let local = listener
                .local_addr()
                .map_or(addr.clone(), |a| a.to_string());
            log::info!("fabric: component {} listens on {local}", cfg.id);
            eprintln!("lego-vmm: component {} listens on {local}", cfg.id);
            let id = cfg.id;
            let (back, inbound, stats) = (back.clone(), inbound.clone(), stats.clone());
            let timeout = cfg.timeout;
            std::thread::Builder::new()
                .name("fabric-accept".into())
                .spawn(move || accept(listener, id, inbound, stats, back, timeout))
                .map_err(VmmError::Thread)?;
        }
        Ok(TcpTransport {
            peers: cfg
                .peers
                .iter()
                .filter(|(_, a)| a.as_str() != super::SHM)
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            conns: Mutex::new(HashMap::new()),
            inbound: back,
            timeout: cfg.timeout,
            id: cfg.id,
            events: inbound,
            stats,
        })
    }
}

impl super::Transport for TcpTransport {
    /// A configured TCP peer, or one connected to us.
    fn reaches(&self, peer: ComponentId) -> bool {
        self.peers.contains_key(&peer) || self.inbound.lock().is_ok_and(|m| m.contains_key(&peer))
    }

    fn send(&self, peer: ComponentId, frame: &super::Outgoing) -> std::result::Result<(), String> {
        self.send_frame(peer, frame)
    }
}

impl TcpTransport {
    fn connect(&self, peer: ComponentId) -> std::result::Result<TcpStream, String> {
        let addr = self.peers.get(&peer).ok_or("not a peer")?;
        let targets: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .collect();
        let mut last = format!("{addr} resolves to nothing");
        for target in targets {
            match TcpStream::connect_timeout(&target, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_write_timeout(Some(self.timeout));
                    // Replies come back on this connection: read it too.
                    let reader = s.try_clone().map_err(|e| format!("{target}: {e}"))?;
                    let (id, events, stats, back, timeout) = (
                        self.id,
                        self.events.clone(),
                        self.stats.clone(),
                        self.inbound.clone(),
                        self.timeout,
                    );
                    std::thread::Builder::new()
                        .name("fabric-conn".into())
                        .spawn(move || {
                            read_frames(reader, id, &events, &stats, &back, timeout, false, &|| {})
                        })
                        .map_err(|e| format!("no thread for the connection: {e}"))?;
                    return Ok(s);
                }
                Err(e) => last = format!("{target}: {e}"),
            }
        }
        Err(last)
    }

    /// Sends one whole frame to `peer`; one fresh connection is tried if the
    /// old one failed (the peer may have restarted).
    fn send_frame(
        &self,
        peer: ComponentId,
        frame: &super::Outgoing,
    ) -> std::result::Result<(), String> {
        if !self.peers.contains_key(&peer) {
            // Not a configured peer: answer on the connection it opened.
            let mut back = self.inbound.lock().map_err(|_| "transport lock poisoned")?;
            let stream = back.get_mut(&peer).ok_or("no connection from it")?;
            return write_frame(stream, frame).map_err(|e| {
                back.remove(&peer);
                format!("sending on its connection: {e}")
            });
        }
        let mut conns = self.conns.lock().map_err(|_| "transport lock poisoned")?;
        if let Some(stream) = conns.get_mut(&peer) {
            if write_frame(stream, frame).is_ok() {
                return Ok(());
            }
            conns.remove(&peer);
        }
        let mut stream = self.connect(peer)?;
        write_frame(&mut stream, frame).map_err(|e| format!("sending: {e}"))?;
        conns.insert(peer, stream);
        Ok(())
    }
}

/// Writes a frame; a payload in guest memory goes to the socket from there.
fn write_frame(stream: &mut TcpStream, frame: &super::Outgoing) -> std::io::Result<()> {
    match &frame.payload {
        super::Payload::Bytes(b) => {
            let mut all = Vec::with_capacity(frame.len());
            all.extend_from_slice(&frame.header);
            all.extend_from_slice(b);
            stream.write_all(&all)
        }
        super::Payload::Guest(slice) => {
            stream.write_all(&frame.header)?;
            vm_memory::WriteVolatile::write_all_volatile(stream, slice)
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
    }
}

type BackConns = Arc<Mutex<HashMap<ComponentId, TcpStream>>>;
/// Connections that have not sent a valid frame yet, oldest first.
type Unproven = Arc<Mutex<std::collections::VecDeque<(u64, TcpStream)>>>;

fn accept(
    listener: TcpListener,
    id: ComponentId,
    inbound: Events,
    stats: Arc<Stats>,
    back: BackConns,
    timeout: Duration,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let unproven: Unproven = Arc::default();
    let mut serial = 0u64;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if active.load(Ordering::Acquire) >= MAX_INBOUND {
            // Make room by closing the oldest connection that proved nothing.
            let oldest = unproven.lock().ok().and_then(|mut u| u.pop_front());
            stats.refused_connections.fetch_add(1, Ordering::Relaxed);
            match oldest {
                Some((_, old)) => {
                    let _ = old.shutdown(std::net::Shutdown::Both);
                    log::warn!(
                        "fabric: {MAX_INBOUND} connections open: closed the oldest that sent no frame"
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
        serial += 1;
        let me = serial;
        if let (Ok(mut u), Ok(c)) = (unproven.lock(), conn.try_clone()) {
            u.push_back((me, c));
        }
        let (active, inbound, stats, back, unproven) = (
            active.clone(),
            inbound.clone(),
            stats.clone(),
            back.clone(),
            unproven.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("fabric-conn".into())
            .spawn(move || {
                let proven = || {
                    if let Ok(mut u) = unproven.lock() {
                        u.retain(|(n, _)| *n != me);
                    }
                };
                read_frames(conn, id, &inbound, &stats, &back, timeout, true, &proven);
                proven();
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            log::warn!("fabric: no thread for a new connection");
        }
    }
}

/// `accepted`: a connection a peer opened (answered on, and it must send
/// its first frame soon); otherwise one we opened, read for its replies.
/// `proven` is called once the first valid frame has arrived.
#[allow(clippy::too_many_arguments)]
fn read_frames(
    mut conn: TcpStream,
    id: ComponentId,
    inbound: &Events,
    stats: &Stats,
    back: &BackConns,
    timeout: Duration,
    accepted: bool,
    proven: &dyn Fn(),
) {
    let peer = conn.peer_addr().map_or("?".into(), |a| a.to_string());
    if accepted {
        let _ = conn.set_read_timeout(Some(FIRST_FRAME));
    }
    let mut first = true;
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
            Err(e) => {
                stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                stats.bad_connections.fetch_add(1, Ordering::Relaxed);
                log::warn!("fabric: closed the connection from {peer}: {e}");
                return;
            }
        };
        let mut frame = Vec::with_capacity(header.frame_len());
        frame.extend_from_slice(&head);
        frame.resize(header.frame_len(), 0);
        if let Err(e) = conn.read_exact(&mut frame[HEADER_LEN..]) {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            log::warn!("fabric: connection from {peer} ended inside a frame: {e}");
            return;
        }
        if first {
            first = false;
            let _ = conn.set_read_timeout(None);
            proven();
        }
        if header.dst != id {
            stats.misrouted.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: dropped a frame for component {} from {peer}: this is component {id}",
                header.dst
            );
            continue;
        }
        // The newest connection from a component is the one to answer it on.
        if let (true, Ok(mut map), Ok(w)) = (accepted, back.lock(), conn.try_clone()) {
            let same = map
                .get(&header.src)
                .is_some_and(|s| s.peer_addr().ok() == w.peer_addr().ok());
            if !same {
                let _ = w.set_write_timeout(Some(timeout));
                let _ = w.set_nodelay(true);
                map.insert(header.src, w);
            }
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        if inbound.send(Event::Inbound(frame)).is_err() {
            return;
        }
    }
}
