//! The RDMA verbs transport (cargo feature `rdma`): one reliable-connected
//! queue pair per peer, frames carried by SEND/RECV. (One-sided READ/WRITE
//! for pages comes with the ExCache.)
//!
//! **It has not run against an RDMA device**: the machines this project is
//! built and tested on have none and no `rdma_rxe` module. What runs here:
//! the build (CI builds the feature with Debian's rdma-core packages), the
//! queue-pair address encoding (`qp_address`), and the refusal to start
//! without a device, with a sentence.
//!
//! Queue pairs are connected by exchanging [`QpAddress`]es and greetings
//! (`lego_wire::hello`, with the nonces each end seals its frames with)
//! over a TCP side channel: the component that lists `--peer
//! ID=rdma:HOST:PORT` connects to the peer's `--rdma-listen` address. Every
//! frame carries the same authentication trailer as on TCP and is checked
//! the same way. Verbs objects are not `Send`, so one thread owns all of
//! them; `send` hands it frames over a channel.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lego_proto::frame::{ComponentId, Header};
use lego_proto::hypercall::FABRIC_MEMORY_BUFFER;
use lego_wire::auth::{AuthError, Opener, Sealer, TRAILER_LEN};
use lego_wire::hello::{self, Hello, HELLO_LEN};
use sideway::ibverbs::address::{AddressHandleAttribute, Gid};
use sideway::ibverbs::completion::{GenericCompletionQueue, WorkCompletionStatus};
use sideway::ibverbs::device::DeviceList;
use sideway::ibverbs::device_context::Mtu;
use sideway::ibverbs::queue_pair::{
    PostSendGuard, QueuePair, QueuePairAttribute, QueuePairState, SetScatterGatherEntry,
    WorkRequestFlags,
};
use sideway::ibverbs::AccessFlags;

use super::qp_address::{self, QpAddress};
use super::{Config, Event, Events, Local, SendError, Stats};
use crate::error::{Result, VmmError};

const PORT: u8 = 1;
const GID_INDEX: u32 = 0;
const RECV_DEPTH: usize = 32;
const SEND_ID: u64 = u64::MAX;
/// A receive slot: the largest frame an RDMA peer may send, sealed (a
/// write-back to a memory component, the largest frame any guest takes).
const SLOT: usize = FABRIC_MEMORY_BUFFER as usize + TRAILER_LEN;

enum Cmd {
    Send {
        peer: ComponentId,
        frame: Vec<u8>,
        done: SyncSender<std::result::Result<(), SendError>>,
    },
    Accept(TcpStream),
}

pub struct RdmaTransport {
    /// Peers reached by RDMA: id -> side-channel address.
    peers: HashMap<ComponentId, String>,
    connected: Arc<Mutex<Vec<ComponentId>>>,
    cmds: Sender<Cmd>,
    timeout: Duration,
}

impl RdmaTransport {
    /// Opens the first RDMA device; fails with a sentence when there is none.
    pub fn start(
        cfg: &Config,
        local: Arc<Local>,
        events: Events,
        stats: Arc<Stats>,
    ) -> Result<RdmaTransport> {
        let peers: HashMap<ComponentId, String> = cfg
            .peers
            .iter()
            .filter_map(|(id, a)| qp_address::parse_peer_addr(a).map(|r| (*id, r.to_owned())))
            .collect();
        let (cmds, inbox) = channel();
        let (ready_tx, ready_rx) = sync_channel(1);
        let connected: Arc<Mutex<Vec<ComponentId>>> = Arc::default();
        let (timeout, conn) = (cfg.timeout, connected.clone());
        let peer_addrs = peers.clone();
        std::thread::Builder::new()
            .name("fabric-rdma".into())
            .spawn(move || match Verbs::open(local) {
                Ok(verbs) => {
                    let _ = ready_tx.send(Ok(()));
                    verbs.run(inbox, events, stats, peer_addrs, conn, timeout);
                }
                Err(why) => {
                    let _ = ready_tx.send(Err(why));
                }
            })
            .map_err(VmmError::Thread)?;
        ready_rx
            .recv()
            .unwrap_or_else(|_| Err("the RDMA thread ended".into()))
            .map_err(|why| VmmError::BadOption {
                option: "--peer/--rdma-listen",
                why: format!("RDMA was asked for, but {why}"),
            })?;
        if let Some(addr) = &cfg.rdma_listen {
            let listener = TcpListener::bind(addr).map_err(|e| VmmError::BadOption {
                option: "--rdma-listen",
                why: format!("cannot listen on {addr}: {e}"),
            })?;
            let cmds = cmds.clone();
            std::thread::Builder::new()
                .name("fabric-rdma-accept".into())
                .spawn(move || {
                    for conn in listener.incoming().flatten() {
                        if cmds.send(Cmd::Accept(conn)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(VmmError::Thread)?;
        }
        Ok(RdmaTransport {
            peers,
            connected,
            cmds,
            timeout: cfg.timeout,
        })
    }
}

impl super::Transport for RdmaTransport {
    fn reaches(&self, peer: ComponentId) -> bool {
        self.peers.contains_key(&peer) || self.connected.lock().is_ok_and(|c| c.contains(&peer))
    }

    fn send(
        &self,
        peer: ComponentId,
        frame: &super::Outgoing,
    ) -> std::result::Result<(), SendError> {
        let (done, result) = sync_channel(1);
        // The verbs thread owns the registered buffer: one copy to get there.
        self.cmds
            .send(Cmd::Send {
                peer,
                frame: frame.to_vec(),
                done,
            })
            .map_err(|_| "the RDMA thread is gone")?;
        result
            .recv_timeout(self.timeout)
            .map_err(|_| SendError::from("the RDMA send did not complete in time"))?
    }
}

/// A queue pair to one peer and its registered buffers.
struct Link {
    /// The peer, in the high half of every receive work-request id (all
    /// links share one completion queue).
    peer: ComponentId,
    qp: sideway::ibverbs::queue_pair::ExtendedQueuePair,
    send_buf: Vec<u8>,
    send_mr: Arc<sideway::ibverbs::memory_region::MemoryRegion>,
    recv_buf: Vec<u8>,
    recv_mr: Arc<sideway::ibverbs::memory_region::MemoryRegion>,
    /// Seals with the peer's nonce; opens with ours.
    sealer: Sealer,
    opener: Opener,
    /// What the peer said in its greeting.
    theirs: Hello,
}

/// Everything verbs, owned by the RDMA thread.
struct Verbs {
    id: ComponentId,
    local: Arc<Local>,
    /// Kept open for as long as the objects made from it.
    _context: Arc<sideway::ibverbs::device_context::DeviceContext>,
    pd: Arc<sideway::ibverbs::protection_domain::ProtectionDomain>,
    cq: Arc<sideway::ibverbs::completion::ExtendedCompletionQueue>,
    gid: Gid,
}

impl Verbs {
    fn open(local: Arc<Local>) -> std::result::Result<Verbs, String> {
        let id = local.id;
        let list = DeviceList::new()
            .map_err(|e| format!("this host has no RDMA device (listing them failed: {e})"))?;
        let device = list
            .iter()
            .next()
            .ok_or("this host has no RDMA device (ibv_get_device_list found none)")?;
        let context = device
            .open()
            .map_err(|e| format!("the RDMA device cannot be opened ({e})"))?;
        let pd = context
            .alloc_pd()
            .map_err(|e| format!("no protection domain ({e})"))?;
        let gid = context
            .query_gid(PORT, GID_INDEX)
            .map_err(|e| format!("no GID on port {PORT} ({e})"))?;
        let cq = context
            .create_cq_builder()
            .setup_cqe(RECV_DEPTH as u32 * 16)
            .build_ex()
            .map_err(|e| format!("no completion queue ({e})"))?;
        Ok(Verbs {
            id,
            local,
            _context: context,
            pd,
            cq,
            gid,
        })
    }

    fn link(
        &self,
        peer: ComponentId,
        opener: Opener,
        theirs: Hello,
    ) -> std::result::Result<(Link, u32), String> {
        let cqh = GenericCompletionQueue::from(Arc::clone(&self.cq));
        let mut qp = self
            .pd
            .create_qp_builder()
            .setup_send_cq(cqh.clone())
            .setup_recv_cq(cqh)
            .setup_max_send_wr(1)
            .setup_max_recv_wr(RECV_DEPTH as u32)
            .build_ex()
            .map_err(|e| format!("no queue pair ({e})"))?;
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::Init)
            .setup_pkey_index(0)
            .setup_port(PORT)
            .setup_access_flags(AccessFlags::LocalWrite | AccessFlags::RemoteWrite);
        qp.modify(&attr)
            .map_err(|e| format!("queue pair to Init ({e})"))?;
        let send_buf = vec![0u8; SLOT];
        let recv_buf = vec![0u8; SLOT * RECV_DEPTH];
        // SAFETY: the buffers live in the Link next to their registrations.
        let send_mr = unsafe {
            self.pd.reg_mr(
                send_buf.as_ptr() as _,
                send_buf.len(),
                AccessFlags::LocalWrite,
            )
        }
        .map_err(|e| format!("cannot register memory ({e})"))?;
        // SAFETY: as above.
        let recv_mr = unsafe {
            self.pd.reg_mr(
                recv_buf.as_ptr() as _,
                recv_buf.len(),
                AccessFlags::LocalWrite,
            )
        }
        .map_err(|e| format!("cannot register memory ({e})"))?;
        let psn = (std::process::id() ^ self.id.rotate_left(8)) & 0x00ff_ffff;
        let mut link = Link {
            peer,
            qp,
            send_buf,
            send_mr,
            recv_buf,
            recv_mr,
            sealer: Sealer::new(theirs.nonce),
            opener,
            theirs,
        };
        for slot in 0..RECV_DEPTH {
            post_recv(&mut link, slot)?;
        }
        Ok((link, psn))
    }

    /// Exchanges greetings on the side channel: our nonce for their frames,
    /// theirs for ours.
    fn greet(&self, stream: &mut TcpStream) -> std::result::Result<(Opener, Hello), String> {
        let opener = Opener::new();
        let mine = Hello {
            role: self.local.role,
            component: self.id,
            max_frame: (self.local.max_frame() as u32).min(FABRIC_MEMORY_BUFFER),
            pid: std::process::id(),
            instance: hello::instance(),
            nonce: opener.nonce,
        };
        stream
            .write_all(&mine.encode(&self.local.key))
            .map_err(|e| e.to_string())?;
        let mut theirs = [0u8; HELLO_LEN];
        stream.read_exact(&mut theirs).map_err(|e| e.to_string())?;
        let hello = Hello::decode(&self.local.key, &theirs).map_err(|e| e.to_string())?;
        Ok((opener, hello))
    }

    fn local(&self, link: &Link, psn: u32) -> QpAddress {
        QpAddress {
            component: self.id,
            qp_number: link.qp.qp_number(),
            psn,
            gid: self.gid.raw,
        }
    }

    /// Init -> ready to receive -> ready to send, towards `remote`.
    fn connect(
        &self,
        link: &mut Link,
        psn: u32,
        remote: &QpAddress,
    ) -> std::result::Result<(), String> {
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToReceive)
            .setup_path_mtu(Mtu::Mtu1024)
            .setup_dest_qp_num(remote.qp_number)
            .setup_rq_psn(remote.psn)
            .setup_max_dest_read_atomic(0)
            .setup_min_rnr_timer(12);
        let mut ah = AddressHandleAttribute::new();
        let gid = Gid { raw: remote.gid };
        ah.setup_dest_lid(1)
            .setup_port(PORT)
            .setup_service_level(0)
            .setup_grh_src_gid_index(GID_INDEX as u8)
            .setup_grh_dest_gid(&gid)
            .setup_grh_hop_limit(1);
        attr.setup_address_vector(&ah);
        link.qp
            .modify(&attr)
            .map_err(|e| format!("queue pair to RTR ({e})"))?;
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToSend)
            .setup_sq_psn(psn)
            .setup_timeout(12)
            .setup_retry_cnt(7)
            .setup_rnr_retry(7)
            .setup_max_read_atomic(0);
        link.qp
            .modify(&attr)
            .map_err(|e| format!("queue pair to RTS ({e})"))
    }

    fn run(
        self,
        inbox: Receiver<Cmd>,
        events: Events,
        stats: Arc<Stats>,
        peers: HashMap<ComponentId, String>,
        connected: Arc<Mutex<Vec<ComponentId>>>,
        timeout: Duration,
    ) {
        let mut links: HashMap<ComponentId, Link> = HashMap::new();
        loop {
            match inbox.recv_timeout(Duration::from_micros(100)) {
                Ok(Cmd::Send { peer, frame, done }) => {
                    let result = self.send(&mut links, &peers, &connected, peer, &frame, timeout);
                    let _ = done.send(result);
                }
                Ok(Cmd::Accept(stream)) => match self.accept(stream) {
                    Ok((peer, link)) => {
                        links.insert(peer, link);
                        if let Ok(mut c) = connected.lock() {
                            c.push(peer);
                        }
                    }
                    Err(why) => log::warn!("fabric: an RDMA connection failed: {why}"),
                },
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
            self.poll_receives(&mut links, &events, &stats);
        }
    }

    fn accept(&self, mut stream: TcpStream) -> std::result::Result<(ComponentId, Link), String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let (opener, hello) = self.greet(&mut stream)?;
        let mut theirs = [0u8; qp_address::LEN];
        stream.read_exact(&mut theirs).map_err(|e| e.to_string())?;
        let remote = QpAddress::decode(&theirs)?;
        if hello.component != remote.component {
            return Err(format!(
                "its greeting names component {}, its queue pair {}",
                hello.component, remote.component
            ));
        }
        let (mut link, psn) = self.link(remote.component, opener, hello)?;
        stream
            .write_all(&self.local(&link, psn).encode())
            .map_err(|e| e.to_string())?;
        self.connect(&mut link, psn, &remote)?;
        log::info!(
            "fabric: RDMA queue pair from component {}",
            remote.component
        );
        Ok((remote.component, link))
    }

    fn send(
        &self,
        links: &mut HashMap<ComponentId, Link>,
        peers: &HashMap<ComponentId, String>,
        connected: &Arc<Mutex<Vec<ComponentId>>>,
        peer: ComponentId,
        frame: &[u8],
        timeout: Duration,
    ) -> std::result::Result<(), SendError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = links.entry(peer) {
            let addr = peers.get(&peer).ok_or("no RDMA connection from it")?;
            let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
            stream
                .set_read_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            // Greetings first: the link needs the peer's nonce.
            let (opener, hello) = self.greet(&mut stream)?;
            if hello.component != peer {
                return Err(format!("{addr} is component {}, not {peer}", hello.component).into());
            }
            let (mut link, psn) = self.link(peer, opener, hello)?;
            stream
                .write_all(&self.local(&link, psn).encode())
                .map_err(|e| e.to_string())?;
            let mut theirs = [0u8; qp_address::LEN];
            stream.read_exact(&mut theirs).map_err(|e| e.to_string())?;
            let remote = QpAddress::decode(&theirs)?;
            self.connect(&mut link, psn, &remote)?;
            slot.insert(link);
            if let Ok(mut c) = connected.lock() {
                c.push(peer);
            }
        }
        let link = links.get_mut(&peer).ok_or("no link")?;
        let max = (link.theirs.max_frame as usize).min(SLOT - TRAILER_LEN);
        if frame.len() > max {
            return Err(SendError::TooLarge {
                peer,
                len: frame.len(),
                max,
            });
        }
        let Some(header) = frame.first_chunk::<{ lego_proto::frame::HEADER_LEN }>() else {
            return Err("a frame shorter than its header".into());
        };
        let trailer = link.sealer.seal(
            &self.local.key,
            self.local.role,
            header,
            &frame[lego_proto::frame::HEADER_LEN..],
        );
        link.send_buf[..frame.len()].copy_from_slice(frame);
        link.send_buf[frame.len()..frame.len() + TRAILER_LEN].copy_from_slice(&trailer);
        let frame_len = frame.len() + TRAILER_LEN;
        let mut guard = link.qp.start_post_send();
        let wr = guard
            .construct_wr(SEND_ID, WorkRequestFlags::Signaled)
            .setup_send();
        // SAFETY: the send buffer is registered and lives in the Link.
        unsafe {
            wr.setup_sge(
                link.send_mr.lkey(),
                link.send_buf.as_ptr() as _,
                frame_len as u32,
            )
        };
        guard.post().map_err(|e| format!("post send ({e})"))?;
        // Wait for this send's completion (receives seen meanwhile are kept).
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(mut poller) = self.cq.start_poll() {
                for wc in poller.by_ref() {
                    if wc.wr_id() == SEND_ID {
                        return if wc.status() == WorkCompletionStatus::Success as u32 {
                            Ok(())
                        } else {
                            Err(format!("send completed with status {}", wc.status()).into())
                        };
                    }
                }
            }
        }
        Err("the send did not complete".into())
    }

    fn poll_receives(
        &self,
        links: &mut HashMap<ComponentId, Link>,
        events: &Events,
        stats: &Stats,
    ) {
        let Ok(mut poller) = self.cq.start_poll() else {
            return;
        };
        let mut done = Vec::new();
        for wc in poller.by_ref() {
            if wc.wr_id() != SEND_ID {
                done.push((wc.wr_id(), wc.status(), wc.byte_len()));
            }
        }
        drop(poller);
        for (wr_id, status, len) in done {
            let (peer, slot) = ((wr_id >> 32) as ComponentId, (wr_id & 0xffff_ffff) as usize);
            let Some(link) = links.get_mut(&peer) else {
                continue;
            };
            if status == WorkCompletionStatus::Success as u32 {
                let start = slot * SLOT;
                let bytes = &link.recv_buf[start..start + (len as usize).min(SLOT)];
                match Header::decode(bytes) {
                    Ok(h) if h.frame_len() + TRAILER_LEN == bytes.len() => {
                        match link.opener.open(&self.local.key, bytes) {
                            Ok(_) if h.src != link.theirs.component => {
                                stats.forged_source.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) if h.dst != self.id => {
                                stats.misrouted.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(o) => {
                                stats.received.fetch_add(1, Ordering::Relaxed);
                                let frame = bytes[..h.frame_len()].to_vec();
                                let _ = events.send(Event::Inbound(frame, o.role));
                            }
                            Err(AuthError::Replayed { .. }) => {
                                stats.replayed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {
                        stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = post_recv(link, slot);
        }
    }
}

/// Offers receive slot `slot` of `link` to the device.
fn post_recv(link: &mut Link, slot: usize) -> std::result::Result<(), String> {
    let wr_id = (link.peer as u64) << 32 | slot as u64;
    let mut guard = link.qp.start_post_recv();
    let wr = guard.construct_wr(wr_id);
    let start = slot * SLOT;
    // SAFETY: the slot is inside the registered receive buffer.
    unsafe {
        wr.setup_sge(
            link.recv_mr.lkey(),
            link.recv_buf[start..].as_mut_ptr() as _,
            SLOT as u32,
        )
    };
    guard.post().map_err(|e| format!("post receive ({e})"))
}
