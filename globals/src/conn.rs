//! One control-plane connection: whole messages over a blocking TCP stream.
//!
//! Every host process of the control plane (the managers, the tool, and
//! each `lego-vmm`) frames messages the same way, with
//! [`lego_control::encode`], [`check_len`] and [`decode`]; this type
//! is that framing plus timeouts, so that no caller reads bytes by hand and
//! a peer that goes quiet cannot hang one forever.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use lego_control::{check_len, decode, encode, DecodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long connecting to a control address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a request may wait for its reply. The managers answer from
/// memory and one store transaction; a processor may wait up to 30 s for
/// its guest to take a request (`ps`, `kill`, a file), and its own
/// sentence about that should arrive before this gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(35);

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("{addr} is not an address (host:port): {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("{0} closed the connection")]
    Closed(String),
    #[error("{0} did not answer in time")]
    TimedOut(String),
    #[error("talking to {peer}: {source}")]
    Io { peer: String, source: io::Error },
    #[error("{peer} sent something that is not a control message: {why}")]
    Decode { peer: String, why: DecodeError },
}

/// A connection that carries whole control messages.
pub struct Conn {
    stream: TcpStream,
    peer: String,
}

impl Conn {
    /// Connects to `addr` (host:port, resolved; each address tried in turn).
    pub fn connect(addr: &str) -> Result<Conn, ConnError> {
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| ConnError::BadAddress {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let mut conn = Conn {
                        stream,
                        peer: addr.to_string(),
                    };
                    conn.set_timeout(Some(REPLY_TIMEOUT))?;
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(ConnError::Connect {
            addr: addr.to_string(),
            source: last,
        })
    }

    /// Wraps an accepted stream; `peer` names it in errors.
    pub fn from_stream(stream: TcpStream, peer: String) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn { stream, peer }
    }

    /// Who is at the other end, as errors name it.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Bounds each read and each write (`None`: wait forever, as a running
    /// program's output stream must).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ConnError> {
        self.stream
            .set_read_timeout(timeout)
            .and_then(|()| self.stream.set_write_timeout(timeout))
            .map_err(|e| self.io(e))
    }

    /// A second handle on the same connection, so that one thread can send
    /// while another receives.
    pub fn try_clone(&self) -> Result<Conn, ConnError> {
        let stream = self.stream.try_clone().map_err(|e| self.io(e))?;
        Ok(Conn {
            stream,
            peer: self.peer.clone(),
        })
    }

    /// Ends both directions (a thread blocked receiving wakes up).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), ConnError> {
        let bytes = encode(msg);
        self.stream.write_all(&bytes).map_err(|e| self.io(e))
    }

    /// The next message. A peer that closes between messages is
    /// [`ConnError::Closed`]; one that closes inside a message is an I/O
    /// error.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, ConnError> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < prefix.len() {
            match self.stream.read(&mut prefix[got..]) {
                Ok(0) if got == 0 => return Err(ConnError::Closed(self.peer.clone())),
                Ok(0) => {
                    return Err(self.io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection ended inside a message",
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        let len = check_len(prefix).map_err(|why| ConnError::Decode {
            peer: self.peer.clone(),
            why,
        })?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).map_err(|e| self.io(e))?;
        decode(&body).map_err(|why| ConnError::Decode {
            peer: self.peer.clone(),
            why,
        })
    }

    /// Sends one message and receives the answer.
    pub fn request<Q: Serialize, A: DeserializeOwned>(&mut self, msg: &Q) -> Result<A, ConnError> {
        self.send(msg)?;
        self.recv()
    }

    fn io(&self, e: io::Error) -> ConnError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ConnError::TimedOut(self.peer.clone())
            }
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                ConnError::Closed(self.peer.clone())
            }
            _ => ConnError::Io {
                peer: self.peer.clone(),
                source: e,
            },
        }
    }
}
