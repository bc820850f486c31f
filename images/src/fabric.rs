//! The guest's fabric API: send a message to a component id, receive, and
//! call (send a request and wait for its reply). Messages travel through
//! two virtqueues to the VMM, which is this component's NIC.
//!
//! Exits are expensive (about 50 us under PVM): sending kicks the VMM only
//! when its used ring says it is not polling, and receiving polls the ring
//! before it waits in the VMM with one hypercall.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use lego_proto::boot::BootInfo;
use lego_proto::frame::{self, ComponentId, ErrorCode, Header, Kind, HEADER_LEN};
use lego_proto::hypercall::{
    FabricSetup, FABRIC_BUFFER, FABRIC_DISABLED, FABRIC_OK, FABRIC_QUEUE_SIZE, PORT_FABRIC_KICK,
    PORT_FABRIC_SETUP, PORT_FABRIC_WAIT,
};
use spin::Mutex;

use crate::hypercall;
use crate::virtq::SplitQueue;

/// How long to poll the receive ring before waiting in the VMM. Short: on a
/// host with few cores a spinning vCPU takes the core the VMM threads that
/// move the frames need.
const SPIN_MICROS: u64 = 20;
/// Polls instead, when the TSC frequency is unknown.
const SPIN_POLLS_FALLBACK: u32 = 2_000;

#[derive(Debug)]
pub enum FabricError {
    /// The component was started without `--id`.
    Disabled,
    /// The VMM refused the queues.
    Refused(u32),
    /// The payload does not fit in one frame of [`FABRIC_BUFFER`] bytes.
    TooLarge(usize),
    /// No reply within the time asked for.
    Timeout,
    /// The request was answered with an error frame.
    Remote(ErrorCode, String),
    /// A reply that is not a valid frame.
    Malformed,
}

pub struct Message {
    pub header: Header,
    pub payload: Vec<u8>,
}

struct Fabric {
    id: ComponentId,
    /// TSC cycles to poll before waiting (0: count polls instead).
    spin_cycles: u64,
    /// TSC cycles per millisecond (0: unknown).
    cycles_per_ms: u64,
    tx: SplitQueue,
    rx: SplitQueue,
    /// Messages received while waiting for a particular reply.
    stash: VecDeque<Message>,
    next_request: u64,
}

static FABRIC: Mutex<Option<Fabric>> = Mutex::new(None);

/// Sets up the queues with the VMM, with receive buffers as large as the
/// component's role takes (`fabric_rx_buffer`: a memory monitor's hold
/// its write-backs). Fails with `Disabled` when the component has no
/// fabric.
pub fn init(boot: &BootInfo) -> Result<(), FabricError> {
    if boot.component_id == 0 {
        return Err(FabricError::Disabled);
    }
    let rx_buffer = lego_proto::boot::Role::from_u32(boot.role)
        .map_or(FABRIC_BUFFER, lego_proto::hypercall::fabric_rx_buffer);
    let tx = SplitQueue::new(FABRIC_QUEUE_SIZE, FABRIC_BUFFER);
    let mut rx = SplitQueue::new(FABRIC_QUEUE_SIZE, rx_buffer);
    rx.post_all();
    let setup = FabricSetup {
        queue_size: FABRIC_QUEUE_SIZE as u32,
        status: u32::MAX,
        tx: tx.addrs(),
        rx: rx.addrs(),
        rx_buffer,
        _pad: 0,
    };
    hypercall::call_with(PORT_FABRIC_SETUP, &setup);
    // SAFETY: the VMM wrote `status` during the hypercall.
    let status = unsafe { core::ptr::read_volatile(&setup.status) };
    match status {
        FABRIC_OK => {}
        FABRIC_DISABLED => return Err(FabricError::Disabled),
        other => return Err(FabricError::Refused(other)),
    }
    *FABRIC.lock() = Some(Fabric {
        id: boot.component_id,
        spin_cycles: boot.tsc_khz as u64 * SPIN_MICROS / 1000,
        cycles_per_ms: boot.tsc_khz as u64,
        tx,
        rx,
        stash: VecDeque::new(),
        next_request: 1,
    });
    Ok(())
}

fn with<R>(f: impl FnOnce(&mut Fabric) -> R) -> Result<R, FabricError> {
    let mut guard = FABRIC.lock();
    let fabric = guard.as_mut().ok_or(FabricError::Disabled)?;
    Ok(f(fabric))
}

impl Fabric {
    fn send(&mut self, header: &Header, payload: &[u8]) -> Result<(), FabricError> {
        if HEADER_LEN + payload.len() > FABRIC_BUFFER as usize {
            return Err(FabricError::TooLarge(payload.len()));
        }
        let head = header.encode();
        while !self.tx.push(&[&head, payload]) {
            // Every buffer is in flight: make sure the VMM knows, then wait.
            exit_out(PORT_FABRIC_KICK, 0);
            core::hint::spin_loop();
        }
        if self.tx.device_wants_kick() {
            exit_out(PORT_FABRIC_KICK, 0);
        }
        Ok(())
    }

    /// Polls the receive ring for a while; true if something arrived.
    fn poll(&mut self) -> bool {
        if self.spin_cycles == 0 {
            for _ in 0..SPIN_POLLS_FALLBACK {
                if self.rx.has_used() {
                    return true;
                }
                core::hint::spin_loop();
            }
            return false;
        }
        let until = crate::cpu::rdtsc() + self.spin_cycles;
        loop {
            if self.rx.has_used() {
                return true;
            }
            if crate::cpu::rdtsc() > until {
                return false;
            }
            core::hint::spin_loop();
        }
    }

    fn take(&mut self) -> Option<Message> {
        let (id, len) = self.rx.pop_used()?;
        let message = frame::decode(self.rx.received(id, len))
            .ok()
            .map(|(header, payload, _)| Message {
                header,
                payload: payload.to_vec(),
            });
        self.rx.repost(id);
        // A frame the VMM already checked cannot be malformed; skip it if it is.
        message
    }

    /// The TSC value `ms` from now, if the TSC frequency is known.
    fn deadline(&self, ms: u16) -> Option<u64> {
        (self.cycles_per_ms != 0).then(|| crate::cpu::rdtsc() + ms as u64 * self.cycles_per_ms)
    }

    /// Waits in the VMM until the receive ring moves or up to `ms`. The
    /// VMM may return early (its view of the ring can lag the guest's), so
    /// callers loop on their own deadline. False once the deadline passed.
    fn wait(&mut self, deadline: Option<u64>, ms: u16) -> bool {
        let ms = match deadline {
            Some(d) => {
                let now = crate::cpu::rdtsc();
                if now >= d {
                    return false;
                }
                ((d - now) / self.cycles_per_ms).clamp(1, u16::MAX as u64) as u16
            }
            None => ms,
        };
        exit_out(
            PORT_FABRIC_WAIT,
            self.rx.last_used() as u32 | (ms as u32) << 16,
        );
        // Without a clock, one wait is the whole timeout.
        deadline.is_some()
    }

    /// The next message: stashed ones first, then the ring; waits in the
    /// VMM up to `timeout_ms` when there is none.
    fn recv(&mut self, timeout_ms: u16) -> Option<Message> {
        if let Some(m) = self.stash.pop_front() {
            return Some(m);
        }
        let deadline = self.deadline(timeout_ms);
        loop {
            while self.poll() {
                // A frame that does not decode is skipped, not "nothing".
                if let Some(m) = self.take() {
                    return Some(m);
                }
            }
            if !self.wait(deadline, timeout_ms) {
                return self.take();
            }
        }
    }
}

/// This component's id.
pub fn id() -> Option<ComponentId> {
    FABRIC.lock().as_ref().map(|f| f.id)
}

/// Sends one frame.
pub fn send(header: &Header, payload: &[u8]) -> Result<(), FabricError> {
    with(|f| f.send(header, payload))?
}

/// The next message, or None after about `timeout_ms` without one.
pub fn recv(timeout_ms: u16) -> Result<Option<Message>, FabricError> {
    with(|f| f.recv(timeout_ms))
}

/// Sends a request of `kind` to `dst` and returns its reply. An error
/// reply (the peer is unreachable, timed out, ...) becomes `Remote`.
pub fn call(
    dst: ComponentId,
    kind: Kind,
    payload: &[u8],
    timeout_ms: u16,
) -> Result<Message, FabricError> {
    let id = start(dst, kind, payload)?;
    wait_reply(id, timeout_ms)
}

/// Sends a request without waiting; returns its request id.
pub fn start(dst: ComponentId, kind: Kind, payload: &[u8]) -> Result<u64, FabricError> {
    with(|f| {
        let id = f.next_request;
        f.next_request += 1;
        let header = Header::request(kind, id, f.id, dst, payload.len() as u32);
        f.send(&header, payload).map(|_| id)
    })?
}

/// Waits for the reply to request `id`; other messages are kept for `recv`.
pub fn wait_reply(id: u64, timeout_ms: u16) -> Result<Message, FabricError> {
    let is_it = |m: &Message| m.header.is_reply() && m.header.request_id == id;
    let reply = with(|f| {
        if let Some(i) = f.stash.iter().position(is_it) {
            return f.stash.remove(i).ok_or(FabricError::Malformed);
        }
        let deadline = f.deadline(timeout_ms);
        loop {
            while f.poll() {
                while let Some(m) = f.take() {
                    if is_it(&m) {
                        return Ok(m);
                    }
                    f.stash.push_back(m);
                }
            }
            // Nothing for us while polling: wait in the VMM (one exit).
            if !f.wait(deadline, timeout_ms) && !f.rx.has_used() {
                return Err(FabricError::Timeout);
            }
        }
    })??;
    match reply.header.kind {
        Kind::Error => match frame::decode_error(&reply.payload) {
            Some((code, detail)) => Err(FabricError::Remote(code, String::from(detail))),
            None => Err(FabricError::Malformed),
        },
        _ => Ok(reply),
    }
}

/// The most requests handed to a grouped handler at once.
const GROUP_MAX: usize = 32;

/// Serves requests forever: Ping is answered with Pong (same bytes); the
/// Data requests that are waiting together (up to 32) are handed to
/// `handler` at once, which answers each, in order (an answer is sent back
/// as a Data reply). The handler
/// reads them where they arrived, in the receive ring (a storage write is
/// 64 KiB: not copied once more); it runs with the fabric held, so it must
/// not use the fabric itself.
pub fn serve_grouped(mut handler: impl FnMut(&[&[u8]]) -> Vec<Option<Vec<u8>>>) -> ! {
    loop {
        let Ok(served) = with(|f| f.serve_some(1000, &mut handler)) else {
            continue;
        };
        for (header, reply) in served {
            let Some((kind, payload)) = reply else {
                continue;
            };
            reply_to(&header, kind, &payload);
        }
    }
}

/// Sends the reply of `kind` to the request `header`; a reply larger than
/// this guest sends becomes an error reply with a sentence (a memory
/// monitor takes larger frames than any guest sends, so a Ping that large
/// is answered, not left to the caller's timeout).
pub fn reply_to(header: &Header, kind: Kind, payload: &[u8]) {
    let out = header.reply(kind, payload.len() as u32);
    match send(&out, payload) {
        Ok(()) => {}
        Err(FabricError::TooLarge(n)) => {
            let detail = alloc::format!(
                "the reply of {n} bytes is larger than component {} sends ({} bytes of payload)",
                header.dst,
                FABRIC_BUFFER as usize - HEADER_LEN
            );
            let mut err = [0u8; 256];
            let len = frame::encode_error(ErrorCode::TooLarge, &detail, &mut err);
            let _ = send(&header.reply(Kind::Error, len as u32), &err[..len]);
        }
        Err(e) => {
            crate::println!("fabric: cannot reply to component {}: {e:?}", header.src);
        }
    }
}

/// A request's header and the reply to send, if any.
type Served = (Header, Option<(Kind, Vec<u8>)>);

/// The replies to `requests` (header and payload each): Pong for a Ping,
/// the handler's answers for the Data ones (asked together), nothing for
/// the rest.
fn answer_all(
    requests: &[(Header, &[u8])],
    handler: &mut impl FnMut(&[&[u8]]) -> Vec<Option<Vec<u8>>>,
) -> Vec<Served> {
    let is_data = |h: &Header| !h.is_reply() && h.kind == Kind::Data;
    let data: Vec<&[u8]> = requests
        .iter()
        .filter(|(h, _)| is_data(h))
        .map(|(_, p)| *p)
        .collect();
    let mut answers = if data.is_empty() {
        Vec::new()
    } else {
        handler(&data)
    }
    .into_iter();
    requests
        .iter()
        .map(|(h, p)| {
            let reply = if is_data(h) {
                answers.next().flatten().map(|r| (Kind::Data, r))
            } else if !h.is_reply() && h.kind == Kind::Ping {
                Some((Kind::Pong, p.to_vec()))
            } else {
                None
            };
            (*h, reply)
        })
        .collect()
}

impl Fabric {
    /// Waits up to about `timeout_ms` for messages and serves those
    /// waiting together, in place; empty when nothing came.
    fn serve_some(
        &mut self,
        timeout_ms: u16,
        handler: &mut impl FnMut(&[&[u8]]) -> Vec<Option<Vec<u8>>>,
    ) -> Vec<Served> {
        if let Some(m) = self.stash.pop_front() {
            return answer_all(&[(m.header, &m.payload[..])], handler);
        }
        let deadline = self.deadline(timeout_ms);
        loop {
            if self.poll() {
                let mut taken = Vec::new();
                while taken.len() < GROUP_MAX {
                    match self.rx.pop_used() {
                        Some(t) => taken.push(t),
                        None => break,
                    }
                }
                // A frame the VMM already checked cannot be malformed; skip
                // it if it is.
                let requests: Vec<(Header, &[u8])> = taken
                    .iter()
                    .filter_map(|&(id, len)| {
                        frame::decode(self.rx.received(id, len))
                            .ok()
                            .map(|(header, payload, _)| (header, payload))
                    })
                    .collect();
                let served = answer_all(&requests, handler);
                for &(id, _) in &taken {
                    self.rx.repost(id);
                }
                if !served.is_empty() {
                    return served;
                }
            }
            if !self.wait(deadline, timeout_ms) && !self.rx.has_used() {
                return Vec::new();
            }
        }
    }
}

/// What a monitor does once booted: serve the fabric if it has one (with
/// `handler` for Data requests), else idle until stopped.
pub fn serve_or_idle(boot: &BootInfo, mut handler: impl FnMut(&[u8]) -> Option<Vec<u8>>) -> ! {
    serve_grouped_or_idle(boot, move |requests| {
        requests.iter().map(|r| handler(r)).collect()
    })
}

/// [`serve_or_idle`] with a grouped handler ([`serve_grouped`]).
pub fn serve_grouped_or_idle(
    boot: &BootInfo,
    handler: impl FnMut(&[&[u8]]) -> Vec<Option<Vec<u8>>>,
) -> ! {
    match init(boot) {
        Ok(()) => {
            crate::println!("fabric: component {} serving", boot.component_id);
            serve_grouped(handler)
        }
        Err(FabricError::Disabled) => crate::cpu::halt_forever(),
        Err(e) => panic!("the VMM refused the fabric queues: {e:?}"),
    }
}

/// The Data handler every monitor uses until its own protocol lands (see
/// `lego_proto::pattern::GIVE`): the request's bytes come back, or n bytes
/// for a `GIVE` n request.
pub fn echo(payload: &[u8]) -> Option<Vec<u8>> {
    match lego_proto::pattern::parse_give(payload) {
        Some(n) => {
            let n = (n as usize).min(FABRIC_BUFFER as usize - HEADER_LEN);
            let mut reply = alloc::vec![0u8; n];
            lego_proto::pattern::fill(0, &mut reply);
            Some(reply)
        }
        None => Some(payload.to_vec()),
    }
}

/// Hypercalls the fabric made (kicks and waits): each is a VM exit.
pub fn exits() -> u64 {
    EXITS.load(core::sync::atomic::Ordering::Relaxed)
}

static EXITS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn exit_out(port: u16, value: u32) {
    EXITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    hypercall::out(port, value);
}
