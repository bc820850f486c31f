//! Talking to a processor's control address: one connection per request
//! (the protocol's rule: a connection carries one run or one request).
//!
//! Files move in [`CHUNK`]-sized `Data` messages ending with an empty one.
//! A processor answers a `Put` once, after the empty `Data`; if it refuses
//! early and closes, sending fails and its answer is read anyway, so the
//! user sees the processor's sentence rather than "connection reset".

use std::io::{Read, Write};

use lego_control::{Component, ProcessInfo, ProcessorEvent, ProcessorRequest, RunStart, VNode};

use crate::client::ClientError;
use crate::conn::{Conn, ConnError};

/// The size of one `Data` message.
pub const CHUNK: usize = 1 << 20;

/// A processor, as the tool reaches it.
#[derive(Debug, Clone)]
pub struct Processor {
    pub id: u32,
    pub control: String,
}

impl Processor {
    /// The processor a component is, if it has a control address.
    pub fn of(c: &Component) -> Option<Processor> {
        Some(Processor {
            id: c.id,
            control: c.control.clone()?,
        })
    }

    /// "processor 4 (127.0.0.1:7004)", for sentences.
    pub fn name(&self) -> String {
        format!("processor {} ({})", self.id, self.control)
    }

    fn connect(&self) -> Result<Conn, ClientError> {
        Conn::connect(&self.control).map_err(|source| ClientError::Unreachable {
            who: self.name(),
            source,
        })
    }

    /// Whether `path` exists in the vNode's namespace.
    pub fn exists(&self, vnode: &VNode, path: &[u8]) -> Result<bool, ClientError> {
        let mut conn = self.connect()?;
        let req = ProcessorRequest::Exists {
            vnode: vnode.clone(),
            path: path.to_vec(),
        };
        match conn.request(&req)? {
            ProcessorEvent::Done => Ok(true),
            ProcessorEvent::Failed(_) => Ok(false),
            other => Err(unexpected(&conn, &other)),
        }
    }

    /// Creates or replaces `path` with everything `from` holds; the bytes
    /// sent.
    pub fn put(
        &self,
        vnode: &VNode,
        path: &[u8],
        mode: u32,
        from: &mut dyn Read,
    ) -> Result<u64, ClientError> {
        let mut conn = self.connect()?;
        let req = ProcessorRequest::Put {
            vnode: vnode.clone(),
            path: path.to_vec(),
            mode,
        };
        let sent = match send_file(&mut conn, &req, from) {
            Ok(n) => n,
            // The processor refused and closed: its answer says why.
            Err(ClientError::Conn(ConnError::Closed(_))) => 0,
            Err(e) => return Err(e),
        };
        match conn.recv()? {
            ProcessorEvent::Done => Ok(sent),
            ProcessorEvent::Failed(why) => Err(ClientError::Refused(why)),
            other => Err(unexpected(&conn, &other)),
        }
    }

    /// Writes `path`'s contents to `to`; the bytes received.
    pub fn get(&self, vnode: &VNode, path: &[u8], to: &mut dyn Write) -> Result<u64, ClientError> {
        let mut conn = self.connect()?;
        conn.send(&ProcessorRequest::Get {
            vnode: vnode.clone(),
            path: path.to_vec(),
        })?;
        let mut got = 0u64;
        loop {
            match conn.recv()? {
                ProcessorEvent::Data(d) if d.is_empty() => return Ok(got),
                ProcessorEvent::Data(d) => {
                    to.write_all(&d).map_err(ClientError::Local)?;
                    got += d.len() as u64;
                }
                ProcessorEvent::Failed(why) => return Err(ClientError::Refused(why)),
                other => return Err(unexpected(&conn, &other)),
            }
        }
    }

    /// (bytes, inodes) a vNode's files take at its storage component.
    pub fn usage(&self, vnode: &VNode) -> Result<(u64, u64), ClientError> {
        let mut conn = self.connect()?;
        match conn.request(&ProcessorRequest::Usage {
            vnode: vnode.clone(),
        })? {
            ProcessorEvent::Usage { bytes, files } => Ok((bytes, files)),
            ProcessorEvent::Failed(why) => Err(ClientError::Refused(why)),
            other => Err(unexpected(&conn, &other)),
        }
    }

    pub fn ps(&self) -> Result<Vec<ProcessInfo>, ClientError> {
        let mut conn = self.connect()?;
        match conn.request(&ProcessorRequest::Ps)? {
            ProcessorEvent::Ps(list) => Ok(list),
            ProcessorEvent::Failed(why) => Err(ClientError::Refused(why)),
            other => Err(unexpected(&conn, &other)),
        }
    }

    pub fn kill(&self, pid: u32, signal: i32) -> Result<(), ClientError> {
        let mut conn = self.connect()?;
        match conn.request(&ProcessorRequest::Kill { pid, signal })? {
            ProcessorEvent::Done => Ok(()),
            ProcessorEvent::Failed(why) => Err(ClientError::Refused(why)),
            other => Err(unexpected(&conn, &other)),
        }
    }

    /// Starts a run: the connection its events come back on (and its
    /// stdin and signals go out on), with no timeout (a program may be
    /// silent for as long as it likes).
    pub fn start_run(&self, start: RunStart) -> Result<Conn, ClientError> {
        let mut conn = self.connect()?;
        conn.send(&ProcessorRequest::Run(start))?;
        conn.set_timeout(None)?;
        Ok(conn)
    }
}

/// Sends the request, then the file in chunks and the empty ending chunk.
fn send_file(
    conn: &mut Conn,
    req: &ProcessorRequest,
    from: &mut dyn Read,
) -> Result<u64, ClientError> {
    conn.send(req)?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let n = read_full(from, &mut buf).map_err(ClientError::Local)?;
        conn.send(&ProcessorRequest::Data(buf[..n].to_vec()))?;
        if n == 0 {
            return Ok(sent);
        }
        sent += n as u64;
    }
}

/// Fills `buf` unless the reader ends first (so chunks are whole MiBs).
fn read_full(from: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn unexpected(conn: &Conn, e: &ProcessorEvent) -> ClientError {
    let what = match e {
        ProcessorEvent::Started { .. } => "Started",
        ProcessorEvent::Stdout(_) => "Stdout",
        ProcessorEvent::Stderr(_) => "Stderr",
        ProcessorEvent::Exited { .. } => "Exited",
        ProcessorEvent::Ps(_) => "Ps",
        ProcessorEvent::Data(_) => "Data",
        ProcessorEvent::Done => "Done",
        ProcessorEvent::Failed(_) => "Failed",
        ProcessorEvent::Usage { .. } => "Usage",
    };
    ClientError::Unexpected {
        peer: format!("the processor at {}", conn.peer()),
        what: what.to_string(),
    }
}
