//! `lego-globals`' TCP service: one thread per connection, each serving
//! any number of requests in turn (a component keeps one connection open
//! for its heartbeats; the tool opens one per command).
//!
//! All connections share one [`State`] and one [`Store`] under a mutex: a
//! request is answered from memory plus at most one store transaction, so
//! the lock is never held for long and the order of decisions is simple.
//! A connection that sends something that is not a request is closed; the
//! others carry on.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lego_control::{GlobalsReply, GlobalsRequest, HEARTBEAT_MS};

use crate::conn::{Conn, ConnError};
use crate::state::State;
use crate::store::Store;

/// How long a connection may stay silent before it is closed: far longer
/// than a heartbeat period, so only dead or idle peers are dropped.
const IDLE: Duration = Duration::from_secs(60);
/// At most this many connections at once; more are closed at accept (a
/// rack has tens of components, and each tool command uses one).
const MAX_CONNECTIONS: usize = 1024;

struct Shared {
    state: State,
    store: Store,
}

/// The managers, ready to serve.
pub struct Server {
    shared: Arc<Mutex<Shared>>,
    listener: TcpListener,
    connections: Arc<AtomicUsize>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic aborts the process (panic = "abort"), so a poisoned lock
    // cannot be seen; take the guard either way.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    pub fn new(listener: TcpListener, state: State, store: Store) -> Server {
        Server {
            shared: Arc::new(Mutex::new(Shared { state, store })),
            listener,
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub fn run(self) {
        let sweeper = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("sweep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(HEARTBEAT_MS));
                lock(&sweeper).state.sweep(Instant::now());
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the thread that logs components going down: {e}");
        }
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors or an aborted handshake: the
                    // listener itself is fine.
                    log::warn!("accepting a connection: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if self.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                log::warn!("{MAX_CONNECTIONS} connections open: refusing another");
                continue;
            }
            self.connections.fetch_add(1, Ordering::Relaxed);
            let shared = Arc::clone(&self.shared);
            let count = Arc::clone(&self.connections);
            let spawned = std::thread::Builder::new()
                .name("conn".into())
                .spawn(move || {
                    serve(stream, &shared);
                    count.fetch_sub(1, Ordering::Relaxed);
                });
            if let Err(e) = spawned {
                log::warn!("cannot start a thread for a connection: {e}");
                self.connections.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Answers one connection's requests until it closes or misbehaves.
fn serve(stream: TcpStream, shared: &Mutex<Shared>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "a peer".to_string());
    let mut conn = Conn::from_stream(stream, peer);
    if let Err(e) = conn.set_timeout(Some(IDLE)) {
        log::debug!("{e}");
        return;
    }
    loop {
        let req: GlobalsRequest = match conn.recv() {
            Ok(r) => r,
            Err(ConnError::Closed(_)) => return,
            Err(e @ ConnError::Decode { .. }) => {
                log::warn!("{e}; closing that connection");
                let _ = conn.send(&GlobalsReply::Error(
                    "that was not a global managers' request; closing the connection".into(),
                ));
                return;
            }
            Err(e) => {
                log::debug!("{e}; closing that connection");
                return;
            }
        };
        let reply = answer(shared, req);
        if let Err(e) = conn.send(&reply) {
            log::debug!("{e}");
            return;
        }
    }
}

/// Waits (a little more than a heartbeat at most) until storage component
/// `storage` has been sent grants `version`, so that a processor's first
/// request for a newly granted vNode is not refused. A storage component
/// that is slow to answer only delays the placement, and its refusals say
/// what happened.
fn await_grant(shared: &Mutex<Shared>, storage: u32, version: u64) {
    let deadline = Instant::now() + Duration::from_millis(3 * HEARTBEAT_MS);
    while Instant::now() < deadline {
        if lock(shared).state.grants_sent(storage) >= version {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    log::warn!(
        "storage component {storage} did not take grants version {version} within {} ms",
        3 * HEARTBEAT_MS
    );
}

/// One request's reply, its decisions stored first. If the store fails the
/// decisions are undone and the requester is told why.
fn answer(shared: &Mutex<Shared>, req: GlobalsRequest) -> GlobalsReply {
    let mut guard = lock(shared);
    let sh = &mut *guard;
    let before = State::may_record(&req).then(|| sh.state.clone());
    let outcome = sh.state.handle(req, Instant::now());
    if outcome.records.is_empty() {
        return outcome.reply;
    }
    match sh.store.write(&outcome.records) {
        Ok(()) => {
            drop(guard);
            if let Some((storage, version)) = outcome.await_grant {
                await_grant(shared, storage, version);
            }
            outcome.reply
        }
        Err(e) => {
            log::error!("{e}");
            if let Some(before) = before {
                sh.state = before;
            }
            GlobalsReply::Error(format!(
                "the global managers could not keep their decision: {e}"
            ))
        }
    }
}
