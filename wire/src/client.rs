//! A blocking fabric client for tools, tests, benchmarks and fuzzers: it
//! speaks to a component the way another component's VMM does (greeting,
//! sealed frames, replies matched by request id), over TCP or a shared
//! memory ring, without a guest of its own.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lego_proto::frame::{self, ComponentId, ErrorCode, Header, Kind, HEADER_LEN, MAX_PAYLOAD};

use crate::auth::{AuthError, Opener, Sealer, SenderRole, TRAILER_LEN};
use crate::hello::{self, Hello, HelloError, HELLO_LEN};
use crate::key::RackKey;
use crate::shm::{self, Item, OwnBell, ShmError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the greeting: {0}")]
    Hello(#[from] HelloError),
    #[error("a frame from the component: {0}")]
    Auth(#[from] AuthError),
    #[error("a frame from the component does not decode: {0}")]
    Decode(lego_proto::frame::DecodeError),
    #[error("shared memory: {0}")]
    Shm(#[from] ShmError),
    #[error("the component answered with an error: {detail} ({code:?})")]
    Remote { code: ErrorCode, detail: String },
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One frame received: its header and payload.
pub type Frame = (Header, Vec<u8>);

/// The payload of a Data reply, or the error frame's code and sentence.
pub fn data(reply: Frame) -> Result<Vec<u8>> {
    match reply.0.kind {
        Kind::Error => {
            let (code, detail) =
                frame::decode_error(&reply.1).unwrap_or((ErrorCode::BadRequest, "malformed"));
            Err(ClientError::Remote {
                code,
                detail: detail.to_owned(),
            })
        }
        _ => Ok(reply.1),
    }
}

/// One TCP connection to one component.
pub struct TcpClient {
    stream: TcpStream,
    key: RackKey,
    pub id: ComponentId,
    pub role: SenderRole,
    sealer: Sealer,
    opener: Opener,
    /// What the component said about itself.
    pub peer: Hello,
    next_request: u64,
}

impl TcpClient {
    /// Connects as component `id` and exchanges greetings.
    pub fn connect(
        addr: &str,
        id: ComponentId,
        role: SenderRole,
        key: &RackKey,
        timeout: Duration,
    ) -> Result<TcpClient> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let opener = Opener::new();
        let mine = Hello {
            role,
            component: id,
            max_frame: HEADER_LEN as u32 + MAX_PAYLOAD,
            pid: std::process::id(),
            instance: hello::instance(),
            nonce: opener.nonce,
        };
        stream.write_all(&mine.encode(key))?;
        let mut theirs = [0u8; HELLO_LEN];
        stream.read_exact(&mut theirs)?;
        let peer = Hello::decode(key, &theirs)?;
        Ok(TcpClient {
            stream,
            key: key.clone(),
            id,
            role,
            sealer: Sealer::new(peer.nonce),
            opener,
            peer,
            next_request: 1,
        })
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// The bytes of `header` and `payload` sealed as the next frame (the
    /// sequence number is used up whether or not they are sent).
    pub fn seal(&mut self, header: &[u8; HEADER_LEN], payload: &[u8]) -> Vec<u8> {
        let t = self.sealer.seal(&self.key, self.role, header, payload);
        [&header[..], payload, &t].concat()
    }

    /// Writes bytes as they are (sealed or not).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(self.stream.write_all(bytes)?)
    }

    pub fn send(&mut self, header: &Header, payload: &[u8]) -> Result<()> {
        let bytes = self.seal(&header.encode(), payload);
        self.write_raw(&bytes)
    }

    /// The next frame, checked.
    pub fn recv(&mut self) -> Result<Frame> {
        let mut head = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut head)?;
        let h = Header::decode(&head).map_err(ClientError::Decode)?;
        let mut frame = vec![0u8; h.frame_len() + TRAILER_LEN];
        frame[..HEADER_LEN].copy_from_slice(&head);
        self.stream.read_exact(&mut frame[HEADER_LEN..])?;
        self.opener.open(&self.key, &frame)?;
        frame.truncate(h.frame_len());
        frame.drain(..HEADER_LEN);
        Ok((h, frame))
    }

    /// Sends a request and returns its reply (frames that are not it are
    /// skipped).
    pub fn call(&mut self, dst: ComponentId, kind: Kind, payload: &[u8]) -> Result<Frame> {
        let id = self.next_id();
        let header = Header::request(kind, id, self.id, dst, payload.len() as u32);
        self.send(&header, payload)?;
        loop {
            let (h, p) = self.recv()?;
            if h.is_reply() && h.request_id == id {
                return Ok((h, p));
            }
        }
    }

    /// A Data request; the reply's payload (an error frame is an error).
    pub fn data(&mut self, dst: ComponentId, payload: &[u8]) -> Result<Vec<u8>> {
        data(self.call(dst, Kind::Data, payload)?)
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// A client on this host's shared-memory rings: it owns a doorbell as
/// component `id` (so no component of that id may run beside it), writes
/// rings to components and reads theirs back.
pub struct ShmClient {
    dir: PathBuf,
    key: RackKey,
    pub id: ComponentId,
    pub role: SenderRole,
    bell: OwnBell,
    writers: HashMap<ComponentId, shm::Writer>,
    readers: HashMap<ComponentId, shm::Reader>,
    timeout: Duration,
    next_request: u64,
    /// Frames that came while waiting for another.
    stash: Vec<Frame>,
}

impl ShmClient {
    pub fn open(
        dir: &Path,
        id: ComponentId,
        role: SenderRole,
        key: &RackKey,
        timeout: Duration,
    ) -> Result<ShmClient> {
        std::fs::create_dir_all(dir)?;
        let bell = OwnBell::take(dir, id)?;
        Ok(ShmClient {
            dir: dir.to_owned(),
            key: key.clone(),
            id,
            role,
            bell,
            writers: HashMap::new(),
            readers: HashMap::new(),
            timeout,
            next_request: 1,
            stash: Vec::new(),
        })
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    fn writer(&mut self, dst: ComponentId) -> Result<&shm::Writer> {
        if !self.writers.contains_key(&dst) {
            let w = shm::Writer::open(&self.dir, self.id, dst)?;
            self.writers.insert(dst, w);
        }
        self.writers
            .get(&dst)
            .ok_or(ClientError::Shm(ShmError::NotAttached))
    }

    pub fn send(&mut self, header: &Header, payload: &[u8]) -> Result<()> {
        let (key, role, timeout) = (self.key.clone(), self.role, self.timeout);
        let w = self.writer(header.dst)?;
        Ok(w.send(&key, role, &header.encode(), payload, timeout)?)
    }

    /// The path of the ring this client writes to `dst`, for tests that
    /// tamper with it.
    pub fn ring_to(&self, dst: ComponentId) -> PathBuf {
        shm::ring_path(&self.dir, self.id, dst)
    }

    fn poll(&mut self) -> usize {
        for (src, path) in shm::rings_to(&self.dir, self.id) {
            if !self.readers.contains_key(&src) {
                let max = HEADER_LEN as u32 + MAX_PAYLOAD;
                if let Ok(r) = shm::Reader::attach(&path, src, self.id, max) {
                    self.readers.insert(src, r);
                }
            }
        }
        let mut got = Vec::new();
        for r in self.readers.values_mut() {
            r.take(&self.key, &mut |item| {
                if let Item::Frame(bytes, _) = item {
                    if let Ok(h) = Header::decode(&bytes) {
                        got.push((h, bytes[HEADER_LEN..].to_vec()));
                    }
                }
            });
        }
        let n = got.len();
        self.stash.extend(got);
        n
    }

    /// Sends a request and waits for its reply.
    pub fn call(&mut self, dst: ComponentId, kind: Kind, payload: &[u8]) -> Result<Frame> {
        let id = self.next_id();
        let header = Header::request(kind, id, self.id, dst, payload.len() as u32);
        self.send(&header, payload)?;
        self.wait_reply(id)
    }

    pub fn wait_reply(&mut self, id: u64) -> Result<Frame> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let seen = self.bell.seen();
            self.poll();
            if let Some(i) = self
                .stash
                .iter()
                .position(|(h, _)| h.is_reply() && h.request_id == id)
            {
                return Ok(self.stash.swap_remove(i));
            }
            self.stash.clear();
            let now = Instant::now();
            if now > deadline {
                return Err(ClientError::Timeout(self.timeout));
            }
            self.bell
                .wait(seen, (deadline - now).min(Duration::from_millis(20)));
        }
    }

    pub fn data(&mut self, dst: ComponentId, payload: &[u8]) -> Result<Vec<u8>> {
        data(self.call(dst, Kind::Data, payload)?)
    }
}
