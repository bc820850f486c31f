//! Membership in a rack run by the global managers (`--globals ADDR`):
//! register before booting (which gives this component its id and the
//! peers to reach), then a heartbeat every `HEARTBEAT_MS` carrying the
//! load. A restarted `lego-globals` forgets who is up: its answer to a
//! heartbeat is then an error, and the component registers again (the
//! managers give the same id to the same fabric address).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use lego_control::{
    encode, read_message, Component, GlobalsReply, GlobalsRequest, Load, Resources, Role,
    HEARTBEAT_MS,
};

use crate::error::{Result, VmmError};

/// What registering asks for, kept to register again.
#[derive(Clone)]
pub struct Registration {
    pub globals: String,
    pub id: u32,
    pub role: Role,
    pub fabric: String,
    pub control: Option<String>,
    pub resources: Resources,
}

fn call(stream: &mut TcpStream, req: &GlobalsRequest) -> std::result::Result<GlobalsReply, String> {
    stream
        .write_all(&encode(req))
        .map_err(|e| format!("cannot send: {e}"))?;
    read_message(stream)
}

fn connect(addr: &str) -> std::result::Result<TcpStream, String> {
    use std::net::ToSocketAddrs;
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("'{addr}' is not an address: {e}"))?
        .next()
        .ok_or_else(|| format!("'{addr}' names no address"))?;
    let s = TcpStream::connect_timeout(&target, Duration::from_secs(3))
        .map_err(|e| format!("cannot reach the global managers at {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    Ok(s)
}

fn register(
    stream: &mut TcpStream,
    r: &Registration,
) -> std::result::Result<(u32, Vec<Component>), String> {
    let req = GlobalsRequest::Register {
        id: r.id,
        role: r.role,
        fabric: r.fabric.clone(),
        control: r.control.clone(),
        resources: r.resources.clone(),
        host_pid: std::process::id(),
    };
    match call(stream, &req)? {
        GlobalsReply::Registered { id, peers } => Ok((id, peers)),
        GlobalsReply::Error(why) => Err(why),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// Registers; the id given and every component the managers know.
pub fn join(r: &Registration) -> Result<(u32, Vec<Component>, TcpStream)> {
    let fail = |why: String| VmmError::BadOption {
        option: "--globals",
        why,
    };
    let mut stream = connect(&r.globals).map_err(fail)?;
    let (id, peers) = register(&mut stream, r).map_err(fail)?;
    log::info!(
        "registered with the global managers at {} as component {id}",
        r.globals
    );
    Ok((id, peers, stream))
}

/// Sends heartbeats for the life of the process; `load` is asked each time.
pub fn keep_alive(
    mut r: Registration,
    stream: TcpStream,
    load: impl Fn() -> Load + Send + 'static,
    on_grants: impl Fn(&[lego_control::Grant]) + Send + 'static,
    on_peers: impl Fn(&[lego_control::Peer], u32) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            let mut stream = Some(stream);
            let mut told = false;
            loop {
                std::thread::sleep(Duration::from_millis(HEARTBEAT_MS));
                let s = match stream.as_mut() {
                    Some(s) => s,
                    None => match connect(&r.globals) {
                        Ok(s) => stream.insert(s),
                        Err(why) => {
                            if !told {
                                log::warn!("{why}; trying again every {HEARTBEAT_MS} ms");
                                told = true;
                            }
                            continue;
                        }
                    },
                };
                let beat = GlobalsRequest::Heartbeat {
                    id: r.id,
                    load: load(),
                };
                match call(s, &beat) {
                    Ok(GlobalsReply::Peers { peers, backup }) => {
                        told = false;
                        on_peers(&peers, backup);
                    }
                    Ok(GlobalsReply::Grants { grants, .. }) => {
                        told = false;
                        on_grants(&grants);
                    }
                    Ok(GlobalsReply::Error(why)) => {
                        log::info!("the global managers said: {why}; registering again");
                        match register(s, &r) {
                            Ok((id, _)) if id == r.id => {}
                            Ok((id, _)) => {
                                // Peers know this component by its old id.
                                log::warn!(
                                    "the global managers now call this component {id}, not {}",
                                    r.id
                                );
                                r.id = id;
                            }
                            Err(why) => log::warn!("registering again failed: {why}"),
                        }
                    }
                    Ok(_) | Err(_) => stream = None,
                }
            }
        })
        .map(|_| ())
}
