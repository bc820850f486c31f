//! The fabric: this component's end of the network between components.
//!
//! The guest hands frames to the VMM through a transmit virtqueue and gets
//! frames through a receive virtqueue (the guest driver is in `images/`).
//! The device thread here polls the transmit ring while there is traffic
//! (and tells the guest not to kick, `VRING_USED_F_NO_NOTIFY`), sleeps on a
//! kick when idle, routes each frame (to itself, or to a peer through the
//! transport), and fills the receive ring with frames from peers.
//!
//! Why a thread and not an epoll loop (`event-manager`): guest memory has no
//! file descriptor to wait on, so the rings must be polled while busy; the
//! sockets are served by the transport's own threads, a handful per rack.
//!
//! Every request the guest sends to a peer gets an answer within
//! `--fabric-timeout-ms`: the peer's reply, or an error frame the VMM makes
//! (unreachable, unknown destination, too large, timeout).
//!
//! Between VMMs every frame is authenticated with the rack key
//! (`lego_wire::auth`); transports check it, and the source id a guest sees
//! is the one the sender's VMM sealed, which that VMM checked its own guest
//! did not forge. No frame can hold the device: one the guest cannot take
//! (too large for its buffers, or its ring full past the fabric timeout
//! while the guest does no work: see [`busy`]) is refused with an error
//! frame or dropped, and counted.

pub mod busy;
pub mod page_reads;
pub mod port;
// Used by the `rdma` feature; compiled and tested without it too.
#[cfg_attr(not(feature = "rdma"), allow(dead_code))]
pub mod qp_address;
#[cfg(feature = "rdma")]
pub mod rdma;
pub mod shm;
pub mod spin;
pub mod tcp;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lego_proto::frame::{
    self, ComponentId, ErrorCode, Header, Kind, FLAG_FROM_MEMORY, HEADER_LEN, MAX_PAYLOAD,
};
use lego_proto::hypercall::{FabricSetup, FABRIC_BUFFER, FABRIC_MEMORY_BUFFER, FABRIC_QUEUE_SIZE};
use lego_wire::auth::SenderRole;
use lego_wire::key::RackKey;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, VolatileSlice};

use crate::memory::GuestRam;

/// How long the device thread keeps polling after the last frame.
const POLL_WINDOW: Duration = Duration::from_micros(200);
/// Frames for the guest held while its receive ring is full.
const PENDING_LIMIT: usize = 4096;
/// How long an idle device thread sleeps when nothing is due: a guest kick
/// or a frame wakes it at once, so this only bounds a lost wake-up.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

/// The address that makes a peer a same-host, shared-memory peer.
pub const SHM: &str = "shm";

pub struct Config {
    pub id: ComponentId,
    pub listen: Option<String>,
    /// `listen` bound already (a rack member registers its address, port
    /// included, before the fabric starts).
    pub listener: Option<std::net::TcpListener>,
    /// Peer id -> `host:port` (TCP) or [`SHM`].
    pub peers: HashMap<ComponentId, String>,
    pub timeout: Duration,
    /// Where shared-memory rings and doorbells live.
    pub shm_dir: std::path::PathBuf,
    /// Where RDMA peers connect their queue pairs (feature `rdma`).
    pub rdma_listen: Option<String>,
    pub key: RackKey,
    /// What this component is, as its frames say to their receivers.
    pub role: SenderRole,
}

/// What every transport needs to know about this end of the fabric.
pub struct Local {
    pub id: ComponentId,
    pub role: SenderRole,
    pub key: RackKey,
    /// The largest frame this component's guest takes (it says so when it
    /// sets up its queues); told to peers, who refuse larger ones.
    pub max_frame: AtomicU32,
}

impl Local {
    pub fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed) as usize
    }
}

/// Why a transport could not send a frame.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("component {peer} takes frames of at most {max} bytes, and this one has {len}")]
    TooLarge {
        peer: ComponentId,
        len: usize,
        max: usize,
    },
    #[error("{0}")]
    Unreachable(String),
}

impl From<String> for SendError {
    fn from(why: String) -> SendError {
        SendError::Unreachable(why)
    }
}

impl From<&str> for SendError {
    fn from(why: &str) -> SendError {
        SendError::Unreachable(why.to_owned())
    }
}

/// One way of moving frames between components. Inbound frames go to the
/// device thread as [`Event::Inbound`]; `send` moves one whole frame. The
/// device thread and the VMM's own callers (ExCache misses, on vCPU
/// threads) send through the same transports.
pub trait Transport: Send + Sync {
    /// Whether frames to `peer` go this way: a peer configured for this
    /// transport, or one that reached us through it (and is answered there).
    fn reaches(&self, peer: ComponentId) -> bool;
    /// Seals and sends one frame to `peer`.
    fn send(&self, peer: ComponentId, frame: &Outgoing) -> Result<(), SendError>;
    /// Takes `peer` at `addr` as a peer from now on, if the address is
    /// this transport's and the peer is not one already: true if taken.
    fn learn(&self, _peer: ComponentId, _addr: &str) -> bool {
        false
    }
    /// `peer`, learned before at another address, is at `addr` now (it
    /// was started again and registered anew): frames go there from now
    /// on. True if the address changed. Peers named with `--peer` stand.
    fn relearn(&self, _peer: ComponentId, _addr: &str) -> bool {
        false
    }
    /// A call to `peer` got no answer in time: a transport whose link to
    /// it shows the path failing (not the peer slow) lets that link go, so
    /// the next frame opens a new one.
    fn suspect(&self, _peer: ComponentId) {}
}

/// A frame on its way out: the header bytes, and a payload that is still
/// in guest memory when it came from the guest. A transport copies it into
/// the VMM once ([`Outgoing::with_payload`]) and computes the frame's tag
/// over that copy: a tag computed over guest memory, which the guest may
/// still change, could vouch for other bytes than those sent.
pub struct Outgoing<'a> {
    pub header: [u8; HEADER_LEN],
    pub payload: Payload<'a>,
    /// The payload already hashed under the rack's key, when the same
    /// bytes go to several components: a transport that can seals with it
    /// instead of hashing them again.
    pub absorbed: Option<&'a lego_wire::auth::Absorbed>,
}

/// A payload and its hash under the rack's key ([`Fabric::share`]): the
/// two cannot part, so a frame is never sealed with another's hash.
pub struct Shared<'a> {
    payload: &'a [u8],
    absorbed: lego_wire::auth::Absorbed,
}

pub enum Payload<'a> {
    Guest(VolatileSlice<'a>),
    Bytes(&'a [u8]),
}

impl Outgoing<'_> {
    pub fn len(&self) -> usize {
        HEADER_LEN
            + match &self.payload {
                Payload::Guest(s) => s.len(),
                Payload::Bytes(b) => b.len(),
            }
    }

    /// The whole frame in VMM memory (for loopback and the few transports
    /// that need it contiguous).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len()];
        v[..HEADER_LEN].copy_from_slice(&self.header);
        self.payload_into(&mut v[HEADER_LEN..]);
        v
    }

    /// Runs `f` on the payload in VMM memory: where it is, or copied out
    /// of the guest into this thread's buffer, which stays for the next
    /// frame (a fresh 64 KiB buffer each frame was cleared and freed each
    /// time: about 1% of a storage component's CPU serving reads).
    pub fn with_payload<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        thread_local! {
            static COPY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        match &self.payload {
            Payload::Bytes(b) => f(b),
            Payload::Guest(s) => COPY.with(|copy| {
                let mut copy = copy.borrow_mut();
                if copy.len() < s.len() {
                    copy.resize(s.len(), 0);
                }
                let bytes = &mut copy[..s.len()];
                s.copy_to(&mut bytes[..]);
                f(bytes)
            }),
        }
    }

    /// Copies the payload into `out`, which must be its length.
    pub fn payload_into(&self, out: &mut [u8]) {
        match &self.payload {
            Payload::Guest(s) => {
                s.copy_to(out);
            }
            Payload::Bytes(b) => out.copy_from_slice(b),
        }
    }
}

/// Counters, logged when the component stops.
#[derive(Default)]
pub struct Stats {
    pub from_guest: AtomicU64,
    pub to_guest: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub bad_from_guest: AtomicU64,
    pub bad_frames: AtomicU64,
    pub bad_connections: AtomicU64,
    pub refused_connections: AtomicU64,
    pub misrouted: AtomicU64,
    pub errors_made: AtomicU64,
    /// Frames the guest did not take: its ring stayed full past the fabric
    /// timeout, or the pending queue was full.
    pub guest_full_drops: AtomicU64,
    /// Frames larger than the guest's buffers (refused with an error frame).
    pub too_large: AtomicU64,
    /// Frames (and greetings) without a valid tag for the rack key.
    pub unauthenticated: AtomicU64,
    /// Frames with a valid tag seen before (or out of order).
    pub replayed: AtomicU64,
    /// Authenticated frames naming another source than their sender.
    pub forged_source: AtomicU64,
    /// Times one component id was answered by two processes at once.
    pub duplicate_ids: AtomicU64,
    /// Answers to this VMM's own calls that came after the call gave up.
    pub late_replies: AtomicU64,
    /// Fabric timeouts a late call waited on, its component at work.
    pub waited_on: AtomicU64,
    /// Page reads this VMM answered from the memory monitor's page index.
    pub reads_by_vmm: AtomicU64,
    /// Time spent answering them, sending included.
    pub reads_by_vmm_ns: AtomicU64,
}

impl Stats {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "fabric: {} frames from the guest, {} to it, {} sent to peers, {} received; dropped: {} bad from the guest, {} bad from peers ({} connections closed), {} connections refused, {} misrouted, {} for a full guest ring, {} too large for the guest, {} unauthenticated, {} replayed, {} with a forged source; {} error replies made; {} duplicate ids seen; {} answers after their call gave up; {} timeouts waited on for a component at work; {} page reads answered by the VMM ({:.1} us each, sending included)",
            g(&self.from_guest),
            g(&self.to_guest),
            g(&self.sent),
            g(&self.received),
            g(&self.bad_from_guest),
            g(&self.bad_frames),
            g(&self.bad_connections),
            g(&self.refused_connections),
            g(&self.misrouted),
            g(&self.guest_full_drops),
            g(&self.too_large),
            g(&self.unauthenticated),
            g(&self.replayed),
            g(&self.forged_source),
            g(&self.errors_made),
            g(&self.duplicate_ids),
            g(&self.late_replies),
            g(&self.waited_on),
            g(&self.reads_by_vmm),
            g(&self.reads_by_vmm_ns) as f64 / 1000.0 / g(&self.reads_by_vmm).max(1) as f64,
        )
    }

    /// The counters as the VMM answers a fabric stats request.
    pub fn snapshot(&self) -> lego_proto::fabric::FabricStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        lego_proto::fabric::FabricStats {
            from_guest: g(&self.from_guest),
            to_guest: g(&self.to_guest),
            sent: g(&self.sent),
            received: g(&self.received),
            bad_from_guest: g(&self.bad_from_guest),
            bad_frames: g(&self.bad_frames),
            bad_connections: g(&self.bad_connections),
            misrouted: g(&self.misrouted),
            errors_made: g(&self.errors_made),
            guest_full_drops: g(&self.guest_full_drops),
            too_large: g(&self.too_large),
            unauthenticated: g(&self.unauthenticated),
            replayed: g(&self.replayed),
            forged_source: g(&self.forged_source),
            duplicate_ids: g(&self.duplicate_ids),
            reads_by_vmm: g(&self.reads_by_vmm),
        }
    }
}

pub enum Event {
    Kick,
    /// A peer's process ended (or its connection did): requests to it that
    /// are still waiting will not be answered, so they fail now.
    PeerGone(ComponentId, String),
    /// A whole frame from a peer (header and payload), already
    /// authenticated, and the role its sender's VMM stated.
    Inbound(Vec<u8>, SenderRole),
}

/// The VMM's own calls waiting for their replies, by request id: where
/// each went, and who waits.
type Calls = Arc<Mutex<HashMap<u64, (ComponentId, Sender<CallReply>)>>>;

/// Where transports put what they receive: replies to the VMM's own calls
/// go straight to the waiting caller (no hop through the device thread,
/// which costs a thread wake-up per miss); everything else to the device.
#[derive(Clone)]
pub struct Events {
    tx: Sender<Event>,
    calls: Calls,
    stats: Arc<Stats>,
    /// A memory component's page reads, answered on the receiving thread.
    direct: Arc<std::sync::OnceLock<DirectReads>>,
    /// See [`Fabric::guard`]: a request it refuses is never answered
    /// directly; the device thread answers the refusal.
    guard: Arc<std::sync::OnceLock<VmmGuard>>,
}

/// Answers page reads from the memory monitor's page index on the thread
/// that received them (no hop through the device thread, and no guest).
struct DirectReads {
    id: ComponentId,
    reads: page_reads::PageReads,
    transports: Arc<Vec<Box<dyn Transport>>>,
    stats: Arc<Stats>,
}

impl DirectReads {
    /// Whether `bytes` (a whole frame) was a page read, answered now.
    fn answer(&self, bytes: &[u8]) -> bool {
        let start = Instant::now();
        let Ok(h) = Header::decode(bytes) else {
            return false;
        };
        if h.is_reply() || h.kind != Kind::Data || h.dst != self.id {
            return false;
        }
        let Some(answer) = self
            .reads
            .answer(bytes.get(HEADER_LEN..).unwrap_or_default())
        else {
            return false;
        };
        let Some(t) = self.transports.iter().find(|t| t.reaches(h.src)) else {
            return false;
        };
        let reply = h.reply(Kind::Data, answer.len() as u32);
        let out = Outgoing {
            header: reply.encode(),
            payload: Payload::Bytes(&answer),
            absorbed: None,
        };
        // A reply that cannot be sent is lost like any other: the asker's
        // VMM times the request out.
        if t.send(h.src, &out).is_ok() {
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.reads_by_vmm.fetch_add(1, Ordering::Relaxed);
        self.stats
            .reads_by_vmm_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        true
    }
}

impl Events {
    pub fn send(&self, event: Event) -> Result<(), std::sync::mpsc::SendError<Event>> {
        let event = match event {
            Event::Inbound(bytes, role) => match vmm_reply_header(&bytes) {
                Some(h) => {
                    self.answer_call(vmm_reply(h, bytes));
                    return Ok(());
                }
                None => Event::Inbound(bytes, role),
            },
            other => other,
        };
        if let Event::Inbound(bytes, role) = &event {
            let refused = || {
                let (Ok(h), Some(payload)) = (Header::decode(bytes), bytes.get(HEADER_LEN..))
                else {
                    return false;
                };
                self.guard
                    .get()
                    .is_some_and(|g| g(h.src, *role, payload, false).is_some())
            };
            if let Some(d) = self.direct.get() {
                if !refused() && d.answer(bytes) {
                    return Ok(());
                }
            }
        }
        self.tx.send(event)
    }

    /// Hands the answer to a VMM call to whoever waits for it.
    fn answer_call(&self, (id, answer): (u64, CallReply)) {
        match self.calls.lock().ok().and_then(|mut c| c.remove(&id)) {
            Some((_, waiter)) => {
                let _ = waiter.send(answer);
            }
            // Its call gave up (timed out, or its peer was taken
            // for dead and replaced): a stale answer, dropped.
            None => {
                self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Whether `bytes` is a reply to one of the VMM's own calls: its header.
fn vmm_reply_header(bytes: &[u8]) -> Option<Header> {
    let h = Header::decode(bytes).ok()?;
    (h.is_reply() && h.request_id & VMM_REQUEST != 0).then_some(h)
}

/// A reply to one of the VMM's own calls, `frame` whose header is `h`:
/// its id and what it says.
fn vmm_reply(h: Header, bytes: Vec<u8>) -> (u64, CallReply) {
    let answer = match h.kind {
        Kind::Data => Ok(ReplyBytes::new(bytes, HEADER_LEN)),
        Kind::Error => Err(
            match frame::decode_error(bytes.get(HEADER_LEN..).unwrap_or_default()) {
                Some((code, detail)) => format!("{detail} ({code:?})"),
                None => "a malformed error reply".to_owned(),
            },
        ),
        other => Err(format!("a {other:?} reply")),
    };
    (h.request_id, answer)
}

/// A call of the VMM's own that has been sent; its entry in the call table
/// goes when it is dropped.
pub struct PendingCall {
    fabric: Arc<Fabric>,
    id: u64,
    dst: ComponentId,
    answer: Receiver<CallReply>,
    /// Waits past the timeout while `dst` is at work ([`busy`]).
    patient: bool,
    /// When it was sent: a patient call waits up to
    /// [`busy::most_patience`] from then.
    sent: Instant,
}

impl PendingCall {
    /// This call waits past the fabric timeout while its component says
    /// it is at work (a file call: see [`busy`]), up to
    /// [`busy::most_patience`].
    pub fn patient(mut self) -> PendingCall {
        self.patient = true;
        self
    }

    /// The reply, if it has come.
    pub fn try_reply(&self) -> Option<CallReply> {
        self.answer.try_recv().ok()
    }

    /// Waits for the reply, up to the fabric timeout (a patient call:
    /// longer while its component is at work, see [`busy`]).
    pub fn wait(self) -> CallReply {
        self.wait_ref()
    }

    /// [`wait`](Self::wait), leaving the call to be dropped by its owner.
    pub fn wait_ref(&self) -> CallReply {
        thread_local! {
            static SPIN: std::cell::Cell<spin::Spin> = std::cell::Cell::new(spin::Spin::default());
        }
        let mut s = SPIN.get();
        let start = std::time::Instant::now();
        let mut got = self.poll_first(&mut s, start);
        if got.is_none() {
            got = self.answer.recv_timeout(self.fabric.timeout).ok();
        }
        if got.is_some() {
            s.answered_after(start.elapsed().as_micros() as u64);
        }
        SPIN.set(s);
        if got.is_none() && self.patient {
            got = self.while_at_work();
        }
        if got.is_none() {
            for t in self.fabric.transports.iter() {
                t.suspect(self.dst);
            }
        }
        got.ok_or_else(|| {
            format!(
                "component {} did not answer within {} ms",
                self.dst,
                start
                    .elapsed()
                    .as_millis()
                    .max(self.fabric.timeout.as_millis())
            )
        })?
    }

    /// The answer of a late call, waited for while its component says it
    /// is at work: asked again each fabric timeout. A component found gone
    /// meanwhile (its connection ended) is the call's failure, as it would
    /// have been without the wait (posted writes are sent again on it).
    fn while_at_work(&self) -> Option<CallReply> {
        let timeout = self.fabric.timeout;
        let most = busy::most_patience(timeout);
        let mut first = true;
        loop {
            let asked = self
                .fabric
                .start_call(self.dst, &lego_proto::fabric::BUSY_REQUEST)
                .and_then(
                    |q| match q.answer.recv_timeout(busy::question_wait(timeout)) {
                        Ok(reply) => reply.map(Some),
                        Err(_) => Ok(None),
                    },
                );
            // The question's wait is the call's too: its answer may have
            // come meanwhile.
            if let Ok(reply) = self.answer.try_recv() {
                return Some(reply);
            }
            let busy = match asked {
                Err(why) if Fabric::is_unreachable(&why) => return Some(Err(why)),
                Err(_) | Ok(None) => None,
                Ok(Some(reply)) => {
                    <lego_proto::fabric::Busy as zerocopy::FromBytes>::read_from_bytes(&reply).ok()
                }
            };
            let left = most.saturating_sub(self.sent.elapsed());
            match busy {
                Some(b) if busy::at_work(&b, timeout) && !left.is_zero() => {
                    self.fabric.stats.waited_on.fetch_add(1, Ordering::Relaxed);
                    if first {
                        log::info!(
                            "component {} has not answered for {} ms but is at work (a disk request in flight for {} ms; its last work {} ms ago): waiting on",
                            self.dst,
                            self.sent.elapsed().as_millis(),
                            b.disk_ms,
                            b.idle_ms
                        );
                    }
                    first = false;
                }
                _ => return None,
            }
            if let Ok(reply) = self.answer.recv_timeout(timeout.min(left)) {
                return Some(reply);
            }
        }
    }

    /// The answer if it comes while this thread polls for it, when polling
    /// has paid off on this thread lately ([`spin`]), for as long as
    /// answers have taken lately.
    fn poll_first(&self, s: &mut spin::Spin, start: std::time::Instant) -> Option<CallReply> {
        if !s.should_poll() {
            return None;
        }
        let budget = Duration::from_micros(s.budget_us());
        let got = loop {
            if let Ok(reply) = self.answer.try_recv() {
                break Some(reply);
            }
            if start.elapsed() >= budget {
                break None;
            }
            std::hint::spin_loop();
        };
        s.polled(got.is_some());
        got
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let Ok(mut c) = self.fabric.calls.lock() {
            c.remove(&self.id);
        }
    }
}

/// What the failure of a call to a component that cannot be reached says
/// ([`Fabric::is_unreachable`]).
const UNREACHABLE: &str = "is unreachable";

/// Request ids of the VMM's own calls have this bit; the guest's never do.
pub const VMM_REQUEST: u64 = 1 << 63;

/// The payload of the Data reply to a VMM call, or why there is none.
pub type CallReply = Result<ReplyBytes, String>;

/// Bytes `start..` of a received frame: a reply's payload (or the part of
/// it after a head someone read), kept in the buffer the frame was read
/// into. Replies carry up to 256 KiB of pages or file data, and copying
/// each out of its frame was a tenth of a processor's fabric thread's time
/// when it streams a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyBytes {
    frame: Vec<u8>,
    start: usize,
}

impl ReplyBytes {
    /// Bytes `start..` of `frame` (none if it is shorter).
    pub fn new(frame: Vec<u8>, start: usize) -> ReplyBytes {
        let start = start.min(frame.len());
        ReplyBytes { frame, start }
    }

    /// What follows its first `n` bytes (nothing if it is shorter).
    pub fn skip(self, n: usize) -> ReplyBytes {
        let start = self.start.saturating_add(n).min(self.frame.len());
        ReplyBytes { start, ..self }
    }

    /// Keeps its first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.frame.truncate(self.start.saturating_add(len));
    }

    /// As a vector of its own (a copy unless it starts the frame).
    pub fn into_vec(self) -> Vec<u8> {
        if self.start == 0 {
            return self.frame;
        }
        self.frame[self.start..].to_vec()
    }
}

impl From<Vec<u8>> for ReplyBytes {
    fn from(frame: Vec<u8>) -> ReplyBytes {
        ReplyBytes { frame, start: 0 }
    }
}

impl std::ops::Deref for ReplyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.frame[self.start..]
    }
}

struct Queues {
    tx: Queue,
    rx: Queue,
}

pub struct Fabric {
    pub id: ComponentId,
    ram: GuestRam,
    queues: Mutex<Option<Queues>>,
    /// The receive ring's used index, for guests waiting in PORT_FABRIC_WAIT.
    rx_used: (Mutex<u16>, Condvar),
    events: Events,
    pub stats: Arc<Stats>,
    next_call: AtomicU64,
    timeout: Duration,
    transports: Arc<Vec<Box<dyn Transport>>>,
    calls: Calls,
    local: Arc<Local>,
    /// What the VMM answers itself on the fabric (the ExCache's stats).
    pub answers: std::sync::OnceLock<VmmAnswer>,
    /// Requests the VMM refuses before the guest sees them (a storage
    /// component's vNode grants): an answer in the guest's place, or None.
    pub guard: Arc<std::sync::OnceLock<VmmGuard>>,
    /// Told when a peer is found gone (its connection ended, its process
    /// exited), on the device thread: it must not wait.
    pub on_peer_gone: std::sync::OnceLock<PeerGoneHook>,
    /// A memory component's page reads answered from its monitor's page
    /// index (set once the monitor offers it).
    direct: Arc<std::sync::OnceLock<DirectReads>>,
    /// Peers are learned as the rack grows ([`Fabric::learn_peer`]).
    learns: AtomicBool,
    /// Components a call waited for in vain, and when.
    unknown: Mutex<HashMap<ComponentId, std::time::Instant>>,
    /// When the guest last worked, for peers whose calls are late.
    pub activity: Arc<busy::Activity>,
}

/// How long a call to a component not known yet waits for it to be
/// learned: a heartbeat's answer (every 500 ms) and some. The caller may
/// hold the ExCache's lock (a write-back), so the wait is short, and
/// once in vain it is not waited for again within [`LEARN_AGAIN`].
const LEARN_WAIT: Duration = Duration::from_millis(1500);
const LEARN_AGAIN: Duration = Duration::from_secs(10);

/// Makes the VMM's answer to a stats request. It runs on the device
/// thread, so it must answer from what it has, never wait.
pub type VmmAnswer = Box<dyn Fn() -> Vec<u8> + Send + Sync>;

/// See [`Fabric::guard`]: the request's (authenticated) source, the role
/// its VMM greeted with, and its payload. It runs on the device and the
/// receiving threads, so it must not wait.
/// The last argument: count and log a refusal (false when the receiving
/// thread only asks whether the page index may answer).
pub type VmmGuard = Box<dyn Fn(ComponentId, u8, &[u8], bool) -> Option<Vec<u8>> + Send + Sync>;

/// See [`Fabric::on_peer_gone`]: the peer and why.
pub type PeerGoneHook = Box<dyn Fn(ComponentId, &str) + Send + Sync>;

impl Fabric {
    /// Starts the transport and the device thread.
    pub fn start(cfg: Config, ram: GuestRam) -> crate::error::Result<Arc<Fabric>> {
        let (tx, inbox) = channel();
        let calls: Calls = Arc::default();
        let direct: Arc<std::sync::OnceLock<DirectReads>> = Arc::default();
        let guard: Arc<std::sync::OnceLock<VmmGuard>> = Arc::default();
        let stats = Arc::new(Stats::default());
        let events = Events {
            tx,
            calls: calls.clone(),
            direct: direct.clone(),
            guard: guard.clone(),
            stats: stats.clone(),
        };
        let local = Arc::new(Local {
            id: cfg.id,
            role: cfg.role,
            key: cfg.key.clone(),
            // What the guest's queue will take (a memory monitor's are
            // larger); peers learn it on connecting, maybe before the
            // guest is up.
            max_frame: AtomicU32::new(
                lego_proto::boot::Role::from_u32(cfg.role as u32)
                    .map_or(FABRIC_BUFFER, lego_proto::hypercall::fabric_rx_buffer),
            ),
        });
        let shm_peers = cfg
            .peers
            .iter()
            .filter(|(_, a)| a.as_str() == SHM)
            .map(|(id, _)| *id)
            .collect();
        let wants_rdma = cfg.rdma_listen.is_some()
            || cfg
                .peers
                .values()
                .any(|a| qp_address::parse_peer_addr(a).is_some());
        #[allow(unused_mut)]
        let mut transports: Vec<Box<dyn Transport>> = Vec::new();
        // Shared memory first: it claims this id on this host, and a
        // component whose id is taken must stop before it listens.
        let shm = shm::ShmTransport::start(
            &cfg.shm_dir,
            local.clone(),
            shm_peers,
            cfg.timeout,
            events.clone(),
            stats.clone(),
        )?;
        if wants_rdma {
            #[cfg(feature = "rdma")]
            transports.push(Box::new(rdma::RdmaTransport::start(
                &cfg,
                local.clone(),
                events.clone(),
                stats.clone(),
            )?));
            #[cfg(not(feature = "rdma"))]
            return Err(crate::error::VmmError::BadOption {
                option: "--peer/--rdma-listen",
                why: "RDMA was asked for, but this lego-vmm was built without it (cargo build --features rdma)".into(),
            });
        }
        transports.push(Box::new(shm));
        transports.push(Box::new(tcp::TcpTransport::start(
            &cfg,
            local.clone(),
            events.clone(),
            stats.clone(),
        )?));
        let transports = Arc::new(transports);
        let fabric = Arc::new(Fabric {
            id: cfg.id,
            ram,
            queues: Mutex::new(None),
            rx_used: (Mutex::new(0), Condvar::new()),
            events,
            stats,
            next_call: AtomicU64::new(1),
            timeout: cfg.timeout,
            transports: transports.clone(),
            calls,
            local,
            answers: std::sync::OnceLock::new(),
            guard,
            on_peer_gone: std::sync::OnceLock::new(),
            direct,
            learns: AtomicBool::new(false),
            unknown: Mutex::new(HashMap::new()),
            activity: Arc::default(),
        });
        let device = Device {
            fabric: fabric.clone(),
            transports,
            inbox,
            pending: VecDeque::new(),
            outstanding: HashMap::new(),
            timeout: cfg.timeout,
        };
        std::thread::Builder::new()
            .name("fabric".into())
            .spawn(move || device.run())
            .map_err(crate::error::VmmError::Thread)?;
        Ok(fabric)
    }

    /// This component is in a rack: peers that join later are learned
    /// ([`Fabric::learn_peer`]), and a call to one not known yet waits a
    /// little for it.
    pub fn learns_peers(&self) {
        self.learns.store(true, Ordering::Relaxed);
    }

    /// A component the global managers told of after this one started
    /// (one that joined the rack since): frames to it go out from now on.
    /// True if it was not a peer yet.
    pub fn learn_peer(&self, peer: ComponentId, addr: &str) -> bool {
        if peer == self.id {
            return false;
        }
        if self.transports.iter().any(|t| t.relearn(peer, addr)) {
            return true;
        }
        if self.transports.iter().any(|t| t.reaches(peer)) {
            return false;
        }
        self.transports.iter().any(|t| t.learn(peer, addr))
    }

    /// PORT_PAGE_INDEX: from now on, page reads of the pages the memory
    /// monitor publishes are answered here. Once per guest.
    pub fn offer_page_index(&self, s: &lego_proto::index::PageIndexSetup) -> Result<(), String> {
        let reads = page_reads::PageReads::new(&self.ram, s)?;
        self.direct
            .set(DirectReads {
                id: self.id,
                reads,
                transports: self.transports.clone(),
                stats: self.stats.clone(),
            })
            .map_err(|_| "the page index was offered already".to_owned())
    }

    /// PORT_FABRIC_SETUP: takes the guest's queues. Returns a status for
    /// the guest; a malformed setup is the guest's error, not the VMM's.
    pub fn setup(&self, s: &FabricSetup) -> Result<(), String> {
        if s.queue_size != FABRIC_QUEUE_SIZE as u32 {
            return Err(format!(
                "queue size {} (expected {FABRIC_QUEUE_SIZE})",
                s.queue_size
            ));
        }
        let largest = HEADER_LEN as u32 + MAX_PAYLOAD;
        if !(HEADER_LEN as u32 + 64..=largest).contains(&s.rx_buffer) {
            return Err(format!(
                "receive buffers of {} bytes (from {} to {largest})",
                s.rx_buffer,
                HEADER_LEN + 64
            ));
        }
        let make = |a: &lego_proto::hypercall::QueueAddrs| -> Result<Queue, String> {
            let mut q = Queue::new(FABRIC_QUEUE_SIZE).map_err(|e| e.to_string())?;
            q.set_size(FABRIC_QUEUE_SIZE);
            q.set_desc_table_address(Some(a.desc as u32), Some((a.desc >> 32) as u32));
            q.set_avail_ring_address(Some(a.avail as u32), Some((a.avail >> 32) as u32));
            q.set_used_ring_address(Some(a.used as u32), Some((a.used >> 32) as u32));
            q.set_ready(true);
            if !q.is_valid(&self.ram) {
                return Err(format!(
                    "queue at {:#x}/{:#x}/{:#x} is misaligned or outside RAM",
                    a.desc, a.avail, a.used
                ));
            }
            Ok(q)
        };
        let mut tx = make(&s.tx)?;
        let rx = make(&s.rx)?;
        // The device thread polls from the start; it re-enables kicks when idle.
        tx.disable_notification(&self.ram)
            .map_err(|e| e.to_string())?;
        *self.queues.lock().map_err(|_| "fabric lock poisoned")? = Some(Queues { tx, rx });
        *self.rx_used.0.lock().map_err(|_| "fabric lock poisoned")? = 0;
        self.local.max_frame.store(s.rx_buffer, Ordering::Relaxed);
        let _ = self.events.send(Event::Kick);
        Ok(())
    }

    /// The fabric timeout (`--fabric-timeout-ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a call failed because its component could not be reached
    /// (its connection ended or could not be made), as opposed to not
    /// answering in time: the sentences made here and in [`Self::start_call`].
    pub fn is_unreachable(why: &str) -> bool {
        why.contains(UNREACHABLE)
    }

    /// A request from the VMM itself to component `dst`: the payload of
    /// its Data reply, or a sentence saying why there is none (the peer is
    /// unreachable or unknown, or did not answer within the fabric timeout;
    /// never patient).
    pub fn call(self: &Arc<Self>, dst: ComponentId, payload: &[u8]) -> CallReply {
        self.start_call(dst, payload)?.wait()
    }

    /// Sends a request from the VMM itself and returns without waiting, so
    /// several can be in flight (prefetches, write-backs); the replies come
    /// back in any order.
    pub fn start_call(
        self: &Arc<Self>,
        dst: ComponentId,
        payload: &[u8],
    ) -> Result<PendingCall, String> {
        self.start_call_absorbed(dst, payload, None)
    }

    /// [`Fabric::start_call`] of a call that waits past the timeout while
    /// `dst` says it is at work ([`PendingCall::patient`]): a file call.
    pub fn start_patient_call(
        self: &Arc<Self>,
        dst: ComponentId,
        payload: &[u8],
    ) -> Result<PendingCall, String> {
        self.start_call(dst, payload).map(PendingCall::patient)
    }

    /// `payload` hashed under the rack's key once, for
    /// [`Fabric::start_shared_call`] to each component it goes to.
    pub fn share<'a>(&self, payload: &'a [u8]) -> Shared<'a> {
        Shared {
            payload,
            absorbed: lego_wire::auth::absorb(&self.local.key, payload),
        }
    }

    /// [`Fabric::start_call`] of a payload sent to several components,
    /// hashed once for all of them (over TCP; other transports hash it
    /// for each).
    pub fn start_shared_call(
        self: &Arc<Self>,
        dst: ComponentId,
        shared: &Shared<'_>,
    ) -> Result<PendingCall, String> {
        self.start_call_absorbed(dst, shared.payload, Some(&shared.absorbed))
    }

    fn start_call_absorbed(
        self: &Arc<Self>,
        dst: ComponentId,
        payload: &[u8],
        absorbed: Option<&lego_wire::auth::Absorbed>,
    ) -> Result<PendingCall, String> {
        // The largest frame any guest takes (a memory monitor's); the
        // transport refuses what is larger than `dst` itself takes.
        if payload.len() > FABRIC_MEMORY_BUFFER as usize - HEADER_LEN {
            return Err(format!(
                "a request of {} bytes to component {dst} is larger than the fabric carries ({} bytes of payload)",
                payload.len(),
                FABRIC_MEMORY_BUFFER as usize - HEADER_LEN
            ));
        }
        let id = VMM_REQUEST | self.next_call.fetch_add(1, Ordering::Relaxed);
        let header = Header::request(Kind::Data, id, self.id, dst, payload.len() as u32);
        // In a rack, a component that joined after this one is learned
        // from the next heartbeat's answer (every 500 ms): a call to it
        // (a page request a home redirected there) waits for that.
        // A component waited for in vain is not waited for again for a
        // while (a batch of calls to it would each wait).
        let now = std::time::Instant::now();
        let deadline = now + LEARN_WAIT;
        let waited_in_vain = self.unknown.lock().is_ok_and(|u| {
            u.get(&dst)
                .is_some_and(|&t| now.duration_since(t) < LEARN_AGAIN)
        });
        let t = loop {
            if let Some(t) = self.transports.iter().find(|t| t.reaches(dst)) {
                break t;
            }
            let learning = self.learns.load(Ordering::Relaxed) && !waited_in_vain;
            if !learning || std::time::Instant::now() >= deadline {
                if learning {
                    if let Ok(mut u) = self.unknown.lock() {
                        u.insert(dst, std::time::Instant::now());
                    }
                }
                return Err(format!(
                    "component {dst} is not a peer of component {} (add --peer {dst}=ADDR)",
                    self.id
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (reply, answer) = channel();
        self.calls
            .lock()
            .map_err(|_| "the fabric's call table is poisoned".to_owned())?
            .insert(id, (dst, reply));
        let pending = PendingCall {
            fabric: self.clone(),
            id,
            dst,
            answer,
            patient: false,
            sent: Instant::now(),
        };
        let out = Outgoing {
            header: header.encode(),
            payload: Payload::Bytes(payload),
            absorbed,
        };
        match t.send(dst, &out) {
            Ok(()) => {}
            Err(e @ SendError::TooLarge { .. }) => return Err(e.to_string()),
            Err(SendError::Unreachable(why)) => {
                return Err(format!("component {dst} {UNREACHABLE}: {why}"))
            }
        }
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        Ok(pending)
    }

    /// PORT_FABRIC_KICK.
    pub fn kick(&self) {
        let _ = self.events.send(Event::Kick);
    }

    /// PORT_FABRIC_WAIT: returns when the receive ring's used index is not
    /// `seen` any more, or after `timeout`.
    pub fn wait(&self, seen: u16, timeout: Duration) {
        let (lock, cvar) = &self.rx_used;
        if let Ok(used) = lock.lock() {
            let _ = cvar.wait_timeout_while(used, timeout, |u| *u == seen);
        }
    }
}

/// A frame waiting for room in the guest's receive ring.
struct ForGuest {
    bytes: Vec<u8>,
    /// Dropped (a request answered with an error) if not taken by then.
    deadline: Instant,
    /// When it came: it waits for a guest at work up to
    /// [`busy::most_patience`] from then.
    came: Instant,
    /// It came from a peer (which a refusal must answer), not from here.
    from_peer: bool,
}

/// The device thread's state.
struct Device {
    fabric: Arc<Fabric>,
    /// Tried in order; shared memory first.
    transports: Arc<Vec<Box<dyn Transport>>>,
    inbox: Receiver<Event>,
    /// Frames for the guest, oldest first.
    pending: VecDeque<ForGuest>,
    /// Requests sent to peers and not answered yet: (peer, request id) -> deadline.
    outstanding: HashMap<(ComponentId, u64), (Instant, Header)>,
    timeout: Duration,
}

impl Device {
    fn run(mut self) {
        let mut last_busy = Instant::now();
        loop {
            let mut busy = self.drain_tx();
            while let Ok(event) = self.inbox.try_recv() {
                self.on_event(event);
            }
            busy |= self.fill_rx();
            self.expire();
            if busy {
                last_busy = Instant::now();
                continue;
            }
            if last_busy.elapsed() < POLL_WINDOW {
                // Poll, but let the other threads of this host have the core.
                std::thread::yield_now();
                continue;
            }
            // Idle: let the guest kick again, then sleep until something
            // happens or a deadline is due.
            if self.set_kicks(true) {
                self.set_kicks(false);
                continue;
            }
            match self.inbox.recv_timeout(self.sleep_for()) {
                Ok(event) => self.on_event(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.set_kicks(false);
            last_busy = Instant::now();
        }
    }

    /// How long the idle device may sleep: until the next deadline.
    fn sleep_for(&self) -> Duration {
        let now = Instant::now();
        let next = self
            .outstanding
            .values()
            .map(|(d, _)| *d)
            .chain(self.pending.front().map(|f| f.deadline))
            .min();
        match next {
            Some(d) => d.saturating_duration_since(now).min(IDLE_SLEEP),
            None => IDLE_SLEEP,
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Kick => {}
            Event::PeerGone(peer, why) => self.peer_gone(peer, &why),
            Event::Inbound(mut bytes, role) => {
                let Ok(h) = Header::decode(&bytes) else {
                    return;
                };
                if h.is_reply() {
                    self.outstanding.remove(&(h.src, h.request_id));
                } else if let Some(answer) = self.vmm_answer(&h, role, &bytes[HEADER_LEN..]) {
                    let reply = h.reply(Kind::Data, answer.len() as u32);
                    self.route_frame(
                        reply,
                        &Outgoing {
                            header: reply.encode(),
                            payload: Payload::Bytes(&answer),
                            absorbed: None,
                        },
                    );
                    return;
                }
                // The guest learns what the sender's VMM vouched for, and
                // nothing a frame claims for itself.
                let flags = if role == lego_proto::boot::Role::Memory as u8 {
                    h.flags | FLAG_FROM_MEMORY
                } else {
                    h.flags & !FLAG_FROM_MEMORY
                };
                bytes[4..6].copy_from_slice(&flags.to_le_bytes());
                self.for_guest(bytes, true);
            }
        }
    }

    /// Fails at once every request still waiting for `peer`, the guest's
    /// and the VMM's own: their replies cannot come any more.
    fn peer_gone(&mut self, peer: ComponentId, why: &str) {
        if let Some(hook) = self.fabric.on_peer_gone.get() {
            hook(peer, why);
        }
        let detail = format!("component {peer} {UNREACHABLE}: {why}");
        let waiting: Vec<(ComponentId, u64)> = self
            .outstanding
            .keys()
            .filter(|(dst, _)| *dst == peer)
            .copied()
            .collect();
        for key in waiting {
            if let Some((_, header)) = self.outstanding.remove(&key) {
                self.error_reply(&header, ErrorCode::Unreachable, &detail);
            }
        }
        if let Ok(mut calls) = self.fabric.calls.lock() {
            calls.retain(|_, (dst, waiter)| {
                let keep = *dst != peer;
                if !keep {
                    let _ = waiter.send(Err(detail.clone()));
                }
                keep
            });
        }
    }

    /// A request the VMM itself answers (the fabric's or the ExCache's
    /// stats), if it is one.
    fn vmm_answer(&self, h: &Header, role: u8, payload: &[u8]) -> Option<Vec<u8>> {
        if h.kind != Kind::Data {
            return None;
        }
        // Before the guard: it tells nothing of any vNode's files.
        if payload == lego_proto::fabric::BUSY_REQUEST {
            return Some(zerocopy::IntoBytes::as_bytes(&self.fabric.activity.report()).to_vec());
        }
        if let Some(refusal) = self
            .fabric
            .guard
            .get()
            .and_then(|g| g(h.src, role, payload, true))
        {
            return Some(refusal);
        }
        if payload == lego_proto::fabric::FABRIC_STATS_REQUEST {
            return Some(zerocopy::IntoBytes::as_bytes(&self.fabric.stats.snapshot()).to_vec());
        }
        if payload != lego_proto::process::EXCACHE_STATS_REQUEST {
            return None;
        }
        let answer = self.fabric.answers.get()?;
        Some(answer())
    }

    /// Turns guest kicks on or off; when turning them on, returns whether
    /// buffers arrived meanwhile (then the caller polls again).
    fn set_kicks(&mut self, on: bool) -> bool {
        let Ok(mut guard) = self.fabric.queues.lock() else {
            return false;
        };
        let Some(q) = guard.as_mut() else {
            return false;
        };
        let ram = &self.fabric.ram;
        if on {
            q.tx.enable_notification(ram).unwrap_or(false)
        } else {
            let _ = q.tx.disable_notification(ram);
            false
        }
    }

    /// Takes every frame the guest offered and routes it.
    fn drain_tx(&mut self) -> bool {
        let mut busy = false;
        loop {
            // One chain at a time: its buffer stays the guest's until sent.
            let chain = {
                let Ok(mut guard) = self.fabric.queues.lock() else {
                    return busy;
                };
                let Some(q) = guard.as_mut() else {
                    return busy;
                };
                q.tx.pop_descriptor_chain(&self.fabric.ram).map(|chain| {
                    let head = chain.head_index();
                    let descs: Vec<(GuestAddress, u32)> =
                        chain.map(|d| (d.addr(), d.len())).collect();
                    (head, descs)
                })
            };
            let Some((head, descs)) = chain else {
                return busy;
            };
            if !busy {
                self.fabric.activity.worked();
            }
            busy = true;
            self.fabric.stats.from_guest.fetch_add(1, Ordering::Relaxed);
            self.route_guest(&descs);
            if let Ok(mut guard) = self.fabric.queues.lock() {
                if let Some(q) = guard.as_mut() {
                    let _ = q.tx.add_used(&self.fabric.ram, head, 0);
                }
            }
        }
    }

    /// Routes the frame in one guest buffer, leaving its payload in guest
    /// memory for the transport to take.
    fn route_guest(&mut self, descs: &[(GuestAddress, u32)]) {
        // The payload slice borrows guest memory, not the device.
        let fabric = self.fabric.clone();
        let ram = &fabric.ram;
        let &[(addr, len)] = descs else {
            // Not the one-buffer frame our guests send: gather it.
            let mut bytes = Vec::new();
            for &(a, l) in descs {
                let start = bytes.len();
                if start + l as usize > FABRIC_BUFFER as usize {
                    break;
                }
                bytes.resize(start + l as usize, 0);
                if ram.read_slice(&mut bytes[start..], a).is_err() {
                    break;
                }
            }
            self.route(&bytes);
            return;
        };
        let mut head = [0u8; HEADER_LEN];
        let header = ram
            .read_slice(&mut head, addr)
            .ok()
            .and_then(|_| Header::decode(&head).ok())
            .filter(|h| h.frame_len() == len as usize);
        let payload = header.and_then(|h| {
            ram.get_slice(GuestAddress(addr.0 + HEADER_LEN as u64), h.length as usize)
                .ok()
        });
        match (header, payload) {
            (Some(h), Some(p)) => self.route_frame(
                h,
                &Outgoing {
                    header: head,
                    payload: Payload::Guest(p),
                    absorbed: None,
                },
            ),
            _ => self.bad_from_guest("its header, length or buffer is wrong"),
        }
    }

    fn bad_from_guest(&self, why: &str) {
        self.fabric
            .stats
            .bad_from_guest
            .fetch_add(1, Ordering::Relaxed);
        log::warn!("fabric: dropped a malformed frame from the guest: {why}");
    }

    /// Routes a whole frame held in VMM memory.
    fn route(&mut self, bytes: &[u8]) {
        match frame::decode(bytes) {
            Ok((h, payload, used)) if used == bytes.len() => {
                let mut head = [0u8; HEADER_LEN];
                head.copy_from_slice(&bytes[..HEADER_LEN]);
                self.route_frame(
                    h,
                    &Outgoing {
                        header: head,
                        payload: Payload::Bytes(payload),
                        absorbed: None,
                    },
                )
            }
            other => self.bad_from_guest(&format!("{:?}", other.map(|r| r.0))),
        }
    }

    /// Where a frame from the guest (or made by the VMM for a peer) goes.
    fn route_frame(&mut self, header: Header, frame: &Outgoing) {
        if !header.is_reply() && header.request_id & VMM_REQUEST != 0 {
            self.bad_from_guest("it uses a request id reserved for the VMM");
            return;
        }
        if header.src != self.fabric.id {
            self.bad_from_guest(&format!("it claims to come from component {}", header.src));
            return;
        }
        if header.from_memory() {
            self.bad_from_guest("it claims a flag only the receiving VMM sets");
            return;
        }
        if header.dst == self.fabric.id {
            self.for_guest(frame.to_vec(), false);
            return;
        }
        let Some(t) = self.transports.iter().position(|t| t.reaches(header.dst)) else {
            self.error_reply(
                &header,
                ErrorCode::UnknownDestination,
                &format!(
                    "component {} is not a peer of component {}",
                    header.dst, self.fabric.id
                ),
            );
            return;
        };
        if !header.is_reply() {
            self.outstanding.insert(
                (header.dst, header.request_id),
                (Instant::now() + self.timeout, header),
            );
        }
        match self.transports[t].send(header.dst, frame) {
            Ok(()) => {
                self.fabric.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.outstanding.remove(&(header.dst, header.request_id));
                let (code, detail) = match e {
                    SendError::TooLarge { .. } => (ErrorCode::TooLarge, e.to_string()),
                    SendError::Unreachable(why) => (
                        ErrorCode::Unreachable,
                        format!("component {} is unreachable: {why}", header.dst),
                    ),
                };
                self.error_reply(&header, code, &detail);
            }
        }
    }

    /// Answers a guest request with an error frame (replies get none).
    fn error_reply(&mut self, request: &Header, code: ErrorCode, detail: &str) {
        if request.is_reply() {
            log::debug!(
                "fabric: a reply to component {} was lost: {detail}",
                request.dst
            );
            return;
        }
        let mut payload = [0u8; 256];
        let n = frame::encode_error(code, detail, &mut payload);
        let header = request.reply(Kind::Error, n as u32);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&payload[..n]);
        self.fabric
            .stats
            .errors_made
            .fetch_add(1, Ordering::Relaxed);
        self.for_guest(bytes, false);
    }

    /// Answers a peer's request that this component cannot deliver with an
    /// error frame, so the sender learns why at once (replies get none).
    fn refuse_inbound(&mut self, bytes: &[u8], code: ErrorCode, detail: &str) {
        let Ok(request) = Header::decode(bytes) else {
            return;
        };
        if request.is_reply() {
            return;
        }
        let mut payload = [0u8; 256];
        let n = frame::encode_error(code, detail, &mut payload);
        let reply = request.reply(Kind::Error, n as u32);
        self.fabric
            .stats
            .errors_made
            .fetch_add(1, Ordering::Relaxed);
        self.route_frame(
            reply,
            &Outgoing {
                header: reply.encode(),
                payload: Payload::Bytes(&payload[..n]),
                absorbed: None,
            },
        );
    }

    /// Requests past their deadline get a timeout error; frames the guest
    /// did not take in time are dropped (a peer's request is answered).
    fn expire(&mut self) {
        let now = Instant::now();
        if self.pending.front().is_some_and(|f| f.deadline <= now)
            && busy::at_work(&self.fabric.activity.report(), self.timeout)
        {
            // The guest is late, not gone (in a long flush, it takes
            // nothing from its ring: see `busy`): the frames wait on, up
            // to PENDING_LIMIT of them, each up to the most a late call
            // waits.
            let later = now + self.timeout;
            let most = busy::most_patience(self.timeout);
            for f in self.pending.iter_mut() {
                f.deadline = f.deadline.max(later.min(f.came + most));
            }
        }
        while self.pending.front().is_some_and(|f| f.deadline <= now) {
            let Some(f) = self.pending.pop_front() else {
                break;
            };
            self.fabric
                .stats
                .guest_full_drops
                .fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: dropped a frame the guest did not take within {} ms",
                self.timeout.as_millis()
            );
            if f.from_peer {
                let detail = format!(
                    "component {}'s guest did not take the frame within {} ms",
                    self.fabric.id,
                    self.timeout.as_millis()
                );
                self.refuse_inbound(&f.bytes, ErrorCode::NotTaken, &detail);
            }
        }
        if self.outstanding.is_empty() {
            return;
        }
        let late: Vec<(ComponentId, u64)> = self
            .outstanding
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in late {
            if let Some((_, header)) = self.outstanding.remove(&key) {
                for t in self.transports.iter() {
                    t.suspect(header.dst);
                }
                let ms = self.timeout.as_millis();
                self.error_reply(
                    &header,
                    ErrorCode::Timeout,
                    &format!("component {} did not answer within {ms} ms", header.dst),
                );
            }
        }
    }

    /// Queues a frame for the guest, unless it can never take it.
    fn for_guest(&mut self, bytes: Vec<u8>, from_peer: bool) {
        let max = self.fabric.local.max_frame();
        if bytes.len() > max {
            self.fabric.stats.too_large.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "fabric: refused a frame of {} bytes: the guest takes at most {max}",
                bytes.len()
            );
            if from_peer {
                let detail = format!(
                    "component {} takes frames of at most {max} bytes, and this one has {}",
                    self.fabric.id,
                    bytes.len()
                );
                self.refuse_inbound(&bytes, ErrorCode::TooLarge, &detail);
            }
            return;
        }
        if self.pending.len() >= PENDING_LIMIT {
            self.fabric
                .stats
                .guest_full_drops
                .fetch_add(1, Ordering::Relaxed);
            if from_peer {
                let detail = format!(
                    "component {}'s guest has {PENDING_LIMIT} frames waiting already",
                    self.fabric.id
                );
                self.refuse_inbound(&bytes, ErrorCode::NotTaken, &detail);
            }
            return;
        }
        let came = Instant::now();
        self.pending.push_back(ForGuest {
            bytes,
            deadline: came + self.timeout,
            came,
            from_peer,
        });
    }

    /// Moves pending frames into the guest's receive buffers.
    fn fill_rx(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let Ok(mut guard) = self.fabric.queues.lock() else {
            return false;
        };
        let Some(q) = guard.as_mut() else {
            return false;
        };
        let ram = &self.fabric.ram;
        let mut moved = false;
        while let Some(f) = self.pending.front() {
            let Some(mut chain) = q.rx.pop_descriptor_chain(ram) else {
                break;
            };
            let head = chain.head_index();
            let bytes = &f.bytes;
            let written = match chain.next() {
                Some(desc) if desc.is_write_only() && desc.len() as usize >= bytes.len() => ram
                    .write_slice(bytes, desc.addr())
                    .map(|_| bytes.len() as u32)
                    .unwrap_or(0),
                _ => 0,
            };
            let _ = q.rx.add_used(ram, head, written);
            // Delivered, or the guest gave a buffer it cannot be written
            // to: either way this frame is done, so the next one can go.
            self.pending.pop_front();
            if written > 0 {
                self.fabric.stats.to_guest.fetch_add(1, Ordering::Relaxed);
            } else {
                self.bad_from_guest("its receive buffer is smaller than it said, or not writable");
            }
            moved = true;
        }
        if moved {
            let (lock, cvar) = &self.fabric.rx_used;
            if let Ok(mut used) = lock.lock() {
                *used = q.rx.next_used();
                cvar.notify_all();
            }
        }
        moved
    }
}

/// Parses `--peer ID=ADDR`.
pub fn parse_peer(text: &str) -> Result<(ComponentId, String), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not ID=ADDR (e.g. 2=127.0.0.1:7002)"))?;
    let id: ComponentId = id
        .trim()
        .parse()
        .map_err(|_| format!("'{id}' in '{text}' is not a component id (a number from 1)"))?;
    if id == 0 {
        return Err(format!("component id 0 in '{text}' is reserved"));
    }
    if addr.trim().is_empty() {
        return Err(format!("'{text}' has no address"));
    }
    Ok((id, addr.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::ReplyBytes;

    #[test]
    fn reply_bytes_are_the_frame_past_their_start() {
        let frame: Vec<u8> = (0..10).collect();
        let r = ReplyBytes::new(frame.clone(), 3);
        assert_eq!(&*r, &frame[3..]);
        let mut past = r.clone().skip(4);
        assert_eq!(&*past, &frame[7..]);
        past.truncate(2);
        assert_eq!(&*past, &[7, 8]);
        assert_eq!(past.into_vec(), vec![7, 8]);
        // Past the end: nothing, never a panic.
        assert!(r.clone().skip(100).is_empty());
        assert!(ReplyBytes::new(frame.clone(), 50).is_empty());
        assert_eq!(ReplyBytes::from(frame.clone()).into_vec(), frame);
    }
}
