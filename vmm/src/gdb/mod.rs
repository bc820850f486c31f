//! The gdb remote-serial-protocol stub: `lego-vmm ... --gdb ADDR`, then
//! `gdb guest-mmon -ex 'target remote ADDR'`.
//!
//! One client at a time: a second one gets an error packet and is closed,
//! and the session in progress goes on. A session that ends (detach, a
//! dropped connection, or garbage the protocol layer cannot parse) removes
//! its breakpoints and lets the guest run on; the next client can attach.
//! Each vCPU is a gdb thread.

mod conn;
mod target;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gdbstub::stub::{DisconnectReason, GdbStub};

use crate::debug::{StopEvent, VcpuHandle};
use crate::error::{Result, VmmError};
use crate::vcpu::Shared;

pub use target::Debugger;

/// What the rest of the VMM keeps of the stub.
pub struct GdbServer {
    /// A client is attached (shared with the vCPUs' debug links).
    busy: Arc<AtomicBool>,
    /// The guest's end (exit or failure) has been reported to the client.
    end_reported: Arc<(Mutex<bool>, Condvar)>,
}

impl GdbServer {
    /// Listens on `addr` and serves debugger sessions on their own threads.
    pub fn start(
        addr: &str,
        greeting: Duration,
        busy: Arc<AtomicBool>,
        handles: Vec<VcpuHandle>,
        stops: Receiver<StopEvent>,
        shared: Arc<Shared>,
    ) -> Result<GdbServer> {
        let listener = TcpListener::bind(addr).map_err(|e| VmmError::BadOption {
            option: "--gdb",
            why: format!("cannot listen on {addr}: {e}"),
        })?;
        let local = listener
            .local_addr()
            .map_or(addr.to_owned(), |a| a.to_string());
        eprintln!(
            "lego-vmm: the {} component waits for gdb on {local}: gdb {} -ex 'target remote {local}'",
            shared.role,
            shared.image_path.display()
        );
        let end_reported = Arc::new((Mutex::new(false), Condvar::new()));
        let (conn_tx, conn_rx) = channel::<TcpStream>();

        let accept_busy = busy.clone();
        std::thread::Builder::new()
            .name("gdb-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(mut conn) = conn else { continue };
                    let peer = conn.peer_addr().map_or("?".into(), |a| a.to_string());
                    if accept_busy.swap(true, Ordering::AcqRel) {
                        log::warn!(
                            "refused a second gdb client from {peer}: one is attached already"
                        );
                        // An error reply to whatever it sends first, then close.
                        let _ = conn.write_all(b"$E01#a6");
                        let _ = conn.shutdown(std::net::Shutdown::Both);
                        continue;
                    }
                    log::info!("gdb client connected from {peer}");
                    if conn_tx.send(conn).is_err() {
                        return;
                    }
                }
            })
            .map_err(VmmError::Thread)?;

        let session_busy = busy.clone();
        let session_end = end_reported.clone();
        let mut debugger = Debugger::new(handles, stops, shared);
        std::thread::Builder::new()
            .name("gdb-session".into())
            .spawn(move || {
                for conn in conn_rx {
                    session(&mut debugger, conn, greeting, &session_busy);
                    if debugger.guest_ended() {
                        let (lock, cvar) = &*session_end;
                        if let Ok(mut done) = lock.lock() {
                            *done = true;
                            cvar.notify_all();
                        }
                    }
                    session_busy.store(false, Ordering::Release);
                }
            })
            .map_err(VmmError::Thread)?;
        Ok(GdbServer { busy, end_reported })
    }

    /// When the guest has ended and a client is attached, waits (a bounded
    /// time) until the client has been told, so gdb shows the exit.
    pub fn wait_end_reported(&self, limit: Duration) {
        if !self.busy.load(Ordering::Acquire) {
            return;
        }
        let (lock, cvar) = &*self.end_reported;
        if let Ok(done) = lock.lock() {
            let _ = cvar.wait_timeout_while(done, limit, |d| !*d);
        }
    }
}

/// `attached` is cleared before the guest is let go, so a vCPU that stops
/// right after knows no gdb is there to see it.
fn session(debugger: &mut Debugger, stream: TcpStream, greeting: Duration, attached: &AtomicBool) {
    let conn = match conn::GdbConn::new(stream, greeting) {
        Ok(c) => c,
        Err(e) => {
            // Free for the next client before saying so: whoever reads the
            // log may connect at once.
            attached.store(false, Ordering::Release);
            log::warn!("gdb client dropped: {e}");
            return;
        }
    };
    if let Err(e) = debugger.stop_all() {
        log::warn!("gdb session not started: {e}");
        attached.store(false, Ordering::Release);
        debugger.release();
        return;
    }
    let stub = GdbStub::new(conn);
    match stub.run_blocking::<target::EventLoop>(debugger) {
        Ok(DisconnectReason::Disconnect) => log::info!("gdb detached; the guest runs on"),
        Ok(DisconnectReason::TargetExited(code)) => {
            log::info!("told gdb the guest exited ({code})")
        }
        Ok(DisconnectReason::TargetTerminated(sig)) => {
            log::info!("told gdb the guest failed ({sig})")
        }
        Ok(DisconnectReason::Kill) => {
            eprintln!("lego-vmm: gdb killed the guest");
            std::process::exit(0);
        }
        Err(e) if !debugger.resumed_once() => {
            // Not a debugger we can talk to (a port scan, garbage): the
            // guest keeps waiting for a real one.
            debugger.remove_all_breakpoints();
            attached.store(false, Ordering::Release);
            log::warn!("gdb client dropped: {e}; the guest still waits for gdb");
            return;
        }
        Err(e) => log::warn!("gdb session ended: {e}; the guest runs on"),
    }
    attached.store(false, Ordering::Release);
    debugger.release();
}
