//! Pipes between processes on one processor: a bounded buffer with
//! Linux's semantics. A read of an empty pipe waits while a writer
//! exists and returns 0 (end of file) when none does; a write waits while
//! the pipe is full and fails with EPIPE (and SIGPIPE) when no reader
//! exists; writes of at most PIPE_BUF bytes are atomic.
//!
//! AF_UNIX sockets are made of the same pipes, one each way, and add two
//! things pipes lack. Descriptors sent with the bytes (SCM_RIGHTS) ride
//! with them: a stream read that reaches such bytes takes the descriptors
//! and stops at their end, as Linux's does. And SOCK_SEQPACKET and
//! SOCK_DGRAM pipes keep messages: a write is one message or nothing, and
//! a read takes one message, whatever of it fits.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::cmsg::Ucred;
use crate::fd::OpenFile;
use crate::unixsock::Name;

/// Linux's default pipe capacity.
pub const CAPACITY: usize = 65536;
/// The largest a pipe may be made (Linux's `/proc/sys/fs/pipe-max-size`).
pub const MAX_CAPACITY: usize = 1 << 20;
/// Writes this size or smaller are never interleaved with others.
pub const PIPE_BUF: usize = 4096;
/// What a message socket holds unsent to its reader (Linux's default
/// socket buffer, `wmem_default`).
pub const MESSAGE_CAPACITY: usize = 212_992;
/// The longest message (Linux: the send buffer less 32 bytes).
pub const MAX_MESSAGE: usize = MESSAGE_CAPACITY - 32;
/// The most messages one holds (Linux's `net.unix.max_dgram_qlen`).
pub const MAX_MESSAGES: usize = 512;

/// How a pipe keeps what is written to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Bytes: pipes and SOCK_STREAM sockets.
    #[default]
    Stream,
    /// SOCK_SEQPACKET: messages; the end of the file once no writer is
    /// left.
    Packets,
    /// SOCK_DGRAM: messages; a writer gone is no end of the file (reads
    /// wait, as on Linux, where a datagram socket may be sent to again).
    Datagrams,
}

/// Bytes sent in one write that a reader must see apart: a message, or
/// (in a stream) the bytes descriptors came with.
#[derive(Debug)]
struct Record {
    /// Where its first byte is: bytes ever written before it.
    start: u64,
    len: usize,
    rights: Vec<Arc<OpenFile>>,
    /// The sender's name (a named datagram socket's messages): what the
    /// reader's recvfrom gives; None for an unnamed sender.
    from: Option<Name>,
    /// Who sent it (SCM_CREDENTIALS): a message's sender, or the
    /// credentials a stream's send claimed; None in a stream otherwise.
    creds: Option<Ucred>,
}

#[derive(Debug, Default)]
pub struct Pipe {
    buf: VecDeque<u8>,
    cap: usize,
    mode: Mode,
    /// Messages (message modes), or sends that carried descriptors
    /// (streams), oldest first.
    records: VecDeque<Record>,
    /// Bytes ever taken out of `buf`.
    taken: u64,
    pub readers: u32,
    pub writers: u32,
    /// A named pipe opened for reading with no writer: reads wait for one
    /// to come rather than see the end of the file (Linux's open waits;
    /// here the first read does). Cleared when a writer opens it.
    pub awaits_writer: bool,
    /// Likewise for writing with no reader: writes wait, not EPIPE.
    pub awaits_reader: bool,
    /// The process at the sending end, as its reader's SO_PEERCRED gives
    /// it (sockets only).
    pub sender: u32,
    /// One direction of a TCP connection: once its reader has closed
    /// having read everything, the next send is taken and dropped, as
    /// Linux's is (the peer's kernel answers it with a reset), and only
    /// the sends after it fail.
    pub tcp: bool,
    /// That send has been taken, or the reader reset the connection.
    reset: bool,
    /// The other direction's reader closed with bytes unread, which resets
    /// a TCP connection (Linux sends a reset, not a FIN): this direction's
    /// reader has ECONNRESET pending, reported once by the first read past
    /// the bytes sent before (`take`, `Io::Reset`), its first send, or
    /// SO_ERROR; after that reads see the end and sends EPIPE.
    pub reset_by_peer: bool,
    /// The peer reset the connection at some time (it stays reset after
    /// the error is taken): a TCP socket has no peer any more (getpeername
    /// is ENOTCONN, Linux's CLOSE state).
    pub was_reset: bool,
    /// TCP only: the reader had closed, and its kernel answered a send
    /// with a reset (Linux's CLOSE_WAIT): EPIPE is pending for the
    /// writer, shown by POLLERR and SO_ERROR and taken by its next send,
    /// which fails with EPIPE anyway; its reads still see the end.
    pub writer_error: bool,
    /// Its socket was shut for reading (shutdown SHUT_RD): reads past what
    /// is buffered see the end, and an AF_UNIX peer's sends fail with
    /// EPIPE (Linux sets the peer's SEND_SHUTDOWN); a TCP peer's are still
    /// taken, as Linux's TCP keeps taking them.
    pub read_shut: bool,
    /// Urgent data (a stream send with MSG_OOB): where the last urgent
    /// byte sent is in the stream, until a read passes it.
    urgent: Option<Urgent>,
    /// The reader keeps urgent bytes in the stream (SO_OOBINLINE) rather
    /// than apart, as its socket's option says now.
    pub oob_inline: bool,
    /// A pipe made with O_DIRECT (Linux's packet mode, pipe(2)): each
    /// write of up to PIPE_BUF bytes is one packet (longer ones are cut
    /// into packets of PIPE_BUF), a read takes one packet and drops what
    /// its buffer had no room for, and the pipe holds as many packets as
    /// it has pages (Linux's slots).
    packet_pipe: bool,
}

/// The urgent mark of a stream, as Linux's TCP keeps it (and AF_UNIX's
/// MSG_OOB): the last byte of a send with MSG_OOB is urgent. Reads stop
/// before it; without SO_OOBINLINE they skip it, and recv with MSG_OOB
/// takes it (once); with it, it is read in line. A newer urgent byte
/// moves the mark, and the older one is read in line. A read past the
/// mark ends it.
#[derive(Clone, Copy, Debug)]
struct Urgent {
    /// Bytes ever written before it.
    at: u64,
    /// Taken with MSG_OOB already.
    taken: bool,
}

/// What a read or write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    /// Moved this many bytes (0 on a read: end of file).
    Done(usize),
    /// Nothing can move now; wait for the other end.
    Wait,
    /// A write with no reader left.
    Broken,
    /// A message longer than a message pipe takes (EMSGSIZE).
    TooBig,
    /// The connection was reset by the peer (ECONNRESET), reported once.
    Reset,
}

/// What one read took: the bytes, the whole length of the message they
/// are the start of (the bytes' length in a stream), and the descriptors
/// that came with them.
#[derive(Debug, Default)]
pub struct Taken {
    pub data: Vec<u8>,
    pub whole: usize,
    pub rights: Vec<Arc<OpenFile>>,
    /// The message's sender, where it had a name.
    pub from: Option<Name>,
    /// Who sent it, where the send said ([`Pipe::send_as`]).
    pub creds: Option<Ucred>,
}

impl Pipe {
    pub fn new() -> Pipe {
        Pipe {
            cap: CAPACITY,
            readers: 1,
            writers: 1,
            ..Pipe::default()
        }
    }

    /// A pipe in packet mode (pipe2 with O_DIRECT).
    pub fn packets() -> Pipe {
        Pipe {
            mode: Mode::Packets,
            packet_pipe: true,
            ..Pipe::new()
        }
    }

    /// One direction of an AF_UNIX socket of `mode`, with one end each
    /// way, whose writer is process `sender`.
    pub fn socket(mode: Mode, sender: u32) -> Pipe {
        Pipe {
            cap: if mode == Mode::Stream {
                CAPACITY
            } else {
                MESSAGE_CAPACITY
            },
            mode,
            sender,
            ..Pipe::new()
        }
    }

    /// Whether a send fails (EPIPE) for want of a reader: none is left,
    /// none is awaited, and it is not a TCP connection's first send after
    /// its reader closed (see `tcp`).
    pub fn refuses_send(&self) -> bool {
        (self.read_shut && !self.tcp)
            || (self.readers == 0
                && !self.awaits_reader
                && !(self.tcp && !self.reset && self.buf.is_empty()))
    }

    /// Whether a reader that finds nothing buffered sees the end: the
    /// writers have gone, or the reader's socket was shut for reading.
    pub fn ended(&self) -> bool {
        self.hung_up() || self.read_shut
    }

    /// A reader of a stream or packet socket's direction closed its end.
    /// The last one leaving bytes unread resets the connection (TCP sends
    /// a reset, not a FIN; AF_UNIX sets the peer's error the same way):
    /// true says so, and the caller marks the other direction
    /// `reset_by_peer`.
    pub fn socket_reader_left(&mut self) -> bool {
        self.readers = self.readers.saturating_sub(1);
        // A datagram socket's peer is never reset (Linux sets the error
        // for streams and packets only).
        if self.readers > 0 || self.buf.is_empty() || self.mode == Mode::Datagrams {
            return false;
        }
        self.reset_by_reader();
        true
    }

    /// The reader reset the connection: what was unread is dropped and
    /// sends fail from now on.
    pub fn reset_by_reader(&mut self) {
        self.taken += self.buf.len() as u64;
        self.buf.clear();
        self.records.clear();
        self.reset = true;
    }

    /// The peer reset the connection: this direction's reader has
    /// ECONNRESET pending.
    pub fn peer_reset(&mut self) {
        self.reset_by_peer = true;
        self.was_reset = true;
    }

    /// Whether this direction was reset: its reader reset the connection,
    /// or a TCP send after its reader closed was answered with a reset
    /// (Linux's connection is CLOSE then: poll says POLLHUP).
    pub fn is_reset(&self) -> bool {
        self.reset
    }

    /// Takes a pending `reset_by_peer` (a send or SO_ERROR reports it).
    pub fn take_reset(&mut self) -> bool {
        core::mem::take(&mut self.reset_by_peer)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// What FIONREAD says: the bytes waiting, or a datagram socket's next
    /// message's length.
    pub fn pending(&self) -> usize {
        match self.mode {
            Mode::Datagrams => self.records.front().map_or(0, |r| r.len),
            // Up to the urgent mark, unless it is kept in line (Linux's
            // SIOCINQ).
            Mode::Stream => match self.urgent {
                Some(u) if !self.oob_inline && u.at >= self.taken => (u.at - self.taken) as usize,
                _ => self.buf.len(),
            },
            _ => self.buf.len(),
        }
    }

    /// Its size (F_GETPIPE_SZ, SO_SNDBUF).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// F_SETPIPE_SZ: the capacity becomes `bytes` rounded up to a power of
    /// two of pages (one page at least), at most [`MAX_CAPACITY`] (EPERM
    /// past it, Linux's `pipe-max-size`), and never less than what it
    /// holds (EBUSY). The new capacity.
    pub fn set_capacity(&mut self, bytes: u64) -> Result<usize, i64> {
        const EPERM: i64 = 1;
        const EBUSY: i64 = 16;
        const EINVAL: i64 = 22;
        // Linux takes the size as an unsigned int and has no pipe past
        // 2^31 bytes.
        let bytes = bytes & 0xffff_ffff;
        if bytes > 1 << 31 {
            return Err(EINVAL);
        }
        let want = bytes.max(PIPE_BUF as u64);
        if want > MAX_CAPACITY as u64 {
            return Err(EPERM);
        }
        let cap = (want as usize).next_power_of_two();
        if cap < self.buf.len() {
            return Err(EBUSY);
        }
        self.cap = cap;
        Ok(cap)
    }

    /// A stream socket's direction holds `bytes` from now on (SO_SNDBUF,
    /// SO_RCVBUF: `crate::sockbuf`); what it holds already stays, and a
    /// writer waits until it has drained below.
    pub fn hold(&mut self, bytes: usize) {
        self.cap = bytes.max(1);
    }

    /// Free room.
    pub fn room(&self) -> usize {
        self.cap.saturating_sub(self.buf.len())
    }

    /// Whether the writers have all gone for good: the end of the file for
    /// a reader, a hang-up for poll. Never for a datagram socket.
    pub fn hung_up(&self) -> bool {
        self.writers == 0 && self.mode != Mode::Datagrams
    }

    /// What a reader with nothing to read gets: the end of the file, or a
    /// wait.
    fn nothing(&self) -> Result<Taken, Io> {
        if self.ended() && !self.awaits_writer {
            Ok(Taken::default())
        } else {
            Err(Io::Wait)
        }
    }

    /// One read of at most `len` bytes; `peek` leaves them (and the
    /// descriptors, which are then shared) where they were.
    pub fn take(&mut self, len: usize, peek: bool) -> Result<Taken, Io> {
        if self.mode != Mode::Stream {
            // A packet socket reports a reset before what it holds, as
            // Linux's seqpacket receive does.
            if self.reset_by_peer {
                self.reset_by_peer = false;
                return Err(Io::Reset);
            }
            let Some(r) = self.records.front() else {
                return self.nothing();
            };
            let whole = r.len;
            let data: Vec<u8> = self.buf.iter().take(whole.min(len)).copied().collect();
            if peek {
                return Ok(Taken {
                    data,
                    whole,
                    rights: r.rights.clone(),
                    from: r.from.clone(),
                    creds: r.creds,
                });
            }
            let (rights, from, creds) = self
                .records
                .pop_front()
                .map(|r| (r.rights, r.from, r.creds))
                .unwrap_or_default();
            self.buf.drain(..whole);
            self.taken += whole as u64;
            return Ok(Taken {
                data,
                whole,
                rights,
                from,
                creds,
            });
        }
        if len == 0 {
            return Ok(Taken::default());
        }
        // Urgent data: a read stops at the mark, and skips the urgent
        // byte there unless it is kept in line.
        // A peek leaves the skipped byte where it is and looks past it.
        let mut skip = 0;
        let mut limit = len;
        match self.urgent {
            Some(u) if u.at == self.taken && !self.oob_inline && !self.buf.is_empty() => {
                if peek {
                    skip = 1;
                } else {
                    self.buf.pop_front();
                    self.taken += 1;
                    self.urgent = None;
                }
            }
            Some(u) if u.at > self.taken => limit = limit.min((u.at - self.taken) as usize),
            _ => {}
        }
        if self.buf.len() <= skip {
            // Reported even to a peek, as Linux's sock_error takes it.
            if self.reset_by_peer && self.hung_up() {
                self.reset_by_peer = false;
                return Err(Io::Reset);
            }
            return self.nothing();
        }
        let mut n = limit.min(self.buf.len() - skip);
        let mut rights = Vec::new();
        let mut creds = None;
        // The first record not yet read is the only one a read can reach:
        // it ends the read, which takes its descriptors.
        if let Some(r) = self.records.front() {
            if r.start < self.taken + n as u64 {
                n = n.min((r.start + r.len as u64 - self.taken) as usize);
                creds = r.creds;
                rights = if peek {
                    r.rights.clone()
                } else {
                    self.records
                        .pop_front()
                        .map(|r| r.rights)
                        .unwrap_or_default()
                };
            }
        }
        let data: Vec<u8> = if peek {
            self.buf.iter().skip(skip).take(n).copied().collect()
        } else {
            self.taken += n as u64;
            if self.urgent.is_some_and(|u| u.at < self.taken) {
                self.urgent = None;
            }
            self.buf.drain(..n).collect()
        };
        Ok(Taken {
            data,
            whole: n,
            rights,
            from: None,
            creds,
        })
    }

    pub fn read(&mut self, out: &mut [u8]) -> Io {
        match self.take(out.len(), false) {
            Ok(t) => {
                out[..t.data.len()].copy_from_slice(&t.data);
                Io::Done(t.data.len())
            }
            Err(io) => io,
        }
    }

    /// Puts bytes taken by [`Pipe::take`] back in front, as if never read
    /// (the reader could not take them: its buffer was bad). A message is
    /// lost, as Linux loses a datagram it could not copy out.
    pub fn unread(&mut self, data: &[u8]) {
        if self.mode != Mode::Stream {
            return;
        }
        for &b in data.iter().rev() {
            self.buf.push_front(b);
        }
        self.taken -= data.len() as u64;
    }

    /// Writes what fits of `data` (all of it or nothing when it is at most
    /// PIPE_BUF bytes, so small writes stay whole).
    pub fn write(&mut self, data: &[u8]) -> Io {
        self.send(data, Vec::new())
    }

    /// Writes `data` with descriptors `rights`, which go with the first
    /// bytes written (a stream) or the message. Nothing written (a wait, no
    /// reader, or nothing to send in a stream) drops them: they are the
    /// sender's copies.
    pub fn send(&mut self, data: &[u8], rights: Vec<Arc<OpenFile>>) -> Io {
        self.send_from(data, rights, None)
    }

    /// [`Self::send`] by a sender named `from`, which a message keeps for
    /// its reader (a stream keeps no sender).
    pub fn send_from(&mut self, data: &[u8], rights: Vec<Arc<OpenFile>>, from: Option<Name>) -> Io {
        self.send_as(data, rights, from, None)
    }

    /// [`Self::send_from`] with the sender's credentials: a message keeps
    /// them; in a stream, bytes sent with them are read apart from others
    /// (a read stops at their end, as Linux's does not glue sends of other
    /// credentials), so only credentials a send claimed explicitly are
    /// given here for a stream.
    pub fn send_as(
        &mut self,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        from: Option<Name>,
        creds: Option<Ucred>,
    ) -> Io {
        if self.read_shut && !self.tcp {
            return Io::Broken;
        }
        if self.readers == 0 {
            return if self.awaits_reader {
                Io::Wait
            } else if self.refuses_send() {
                self.writer_error = false;
                Io::Broken
            } else {
                // Linux queues what its send buffer takes before the
                // peer's reset comes back, and no more.
                self.reset = true;
                self.writer_error = true;
                Io::Done(data.len().min(self.cap))
            };
        }
        if self.packet_pipe {
            return self.write_packets(data);
        }
        let start = self.taken + self.buf.len() as u64;
        if self.mode != Mode::Stream {
            if data.len() > MAX_MESSAGE {
                return Io::TooBig;
            }
            if self.room() < data.len() || self.records.len() >= MAX_MESSAGES {
                return Io::Wait;
            }
            self.buf.extend(data);
            self.records.push_back(Record {
                start,
                len: data.len(),
                rights,
                from,
                creds,
            });
            return Io::Done(data.len());
        }
        if data.is_empty() {
            return Io::Done(0);
        }
        let room = self.room();
        if room == 0 || (data.len() <= PIPE_BUF && room < data.len()) {
            return Io::Wait;
        }
        let n = data.len().min(room);
        self.buf.extend(&data[..n]);
        if !rights.is_empty() || creds.is_some() {
            self.records.push_back(Record {
                start,
                len: n,
                rights,
                from: None,
                creds,
            });
        }
        Io::Done(n)
    }

    /// A packet pipe's write: packets of at most PIPE_BUF bytes while
    /// there are room and slots for them (nothing written waits; an empty
    /// write is no packet).
    fn write_packets(&mut self, data: &[u8]) -> Io {
        let slots = self.cap / PIPE_BUF;
        let mut done = 0;
        for chunk in data.chunks(PIPE_BUF) {
            if self.room() < chunk.len() || self.records.len() >= slots {
                break;
            }
            self.records.push_back(Record {
                start: self.taken + self.buf.len() as u64,
                len: chunk.len(),
                rights: Vec::new(),
                from: None,
                creds: None,
            });
            self.buf.extend(chunk);
            done += chunk.len();
        }
        if done == 0 && !data.is_empty() {
            return Io::Wait;
        }
        Io::Done(done)
    }

    /// The descriptors in flight, taken out (the reader is gone: they go
    /// with it, as the files of a socket's queue do on Linux).
    pub fn drop_rights(&mut self) -> Vec<Arc<OpenFile>> {
        self.records
            .iter_mut()
            .flat_map(|r| core::mem::take(&mut r.rights))
            .collect()
    }

    /// The last byte written is urgent (a send with MSG_OOB): the mark
    /// moves to it. Nothing written, nothing marked.
    pub fn mark_urgent(&mut self) {
        if self.mode == Mode::Stream && !self.buf.is_empty() {
            self.urgent = Some(Urgent {
                at: self.taken + self.buf.len() as u64 - 1,
                taken: false,
            });
        }
    }

    /// recv with MSG_OOB: the urgent byte, taken once unless `peek`; None
    /// when there is none to take (none sent, taken already, passed by a
    /// read, or kept in line: Linux's EINVAL).
    pub fn take_urgent(&mut self, peek: bool) -> Option<u8> {
        let u = self.urgent.as_mut()?;
        if u.taken || self.oob_inline || u.at < self.taken {
            return None;
        }
        let b = self.buf.get((u.at - self.taken) as usize).copied()?;
        if !peek {
            u.taken = true;
        }
        Some(b)
    }

    /// Urgent data not yet taken (POLLPRI, select's exceptional set).
    pub fn urgent_pending(&self) -> bool {
        self.urgent.is_some_and(|u| !u.taken)
    }

    /// The next read starts at the urgent mark (SIOCATMARK).
    pub fn at_mark(&self) -> bool {
        self.urgent.is_some_and(|u| u.at == self.taken)
    }

    /// Whether a read would not wait (data, or end of file).
    pub fn readable(&self) -> bool {
        self.holds_data() || (self.ended() && !self.awaits_writer)
    }

    /// Whether bytes (or a record) wait to be read: a pipe's POLLIN, where
    /// its end of file is POLLHUP alone, as Linux's pipe_poll.
    pub fn holds_data(&self) -> bool {
        let hidden = match self.urgent {
            Some(u) if u.at == self.taken && !self.oob_inline => 1,
            _ => 0,
        };
        match self.mode {
            Mode::Stream => self.buf.len() > hidden,
            _ => !self.records.is_empty(),
        }
    }

    /// Whether a write would not wait (room for PIPE_BUF bytes, or no reader).
    pub fn writable(&self) -> bool {
        if self.read_shut && !self.tcp {
            return true;
        }
        if self.readers == 0 {
            // No reader: EPIPE at once, or a wait for the first one.
            return !self.awaits_reader;
        }
        self.room() >= PIPE_BUF && self.records.len() < MAX_MESSAGES
    }

    /// A named pipe with no ends yet (mkfifo's, before its first open).
    pub fn named() -> Pipe {
        Pipe {
            readers: 0,
            writers: 0,
            ..Pipe::new()
        }
    }

    /// A named pipe opened for reading: with no writer yet, its reads wait
    /// for one (a non-blocking one sees the end of the file: the kernel's
    /// part) and poll reports nothing.
    pub fn open_reader(&mut self) {
        self.readers += 1;
        self.awaits_reader = false;
        if self.writers == 0 {
            self.awaits_writer = true;
        }
    }

    /// A named pipe opened for writing (`wait`: a blocking open).
    pub fn open_writer(&mut self, wait: bool) {
        self.writers += 1;
        self.awaits_writer = false;
        if self.readers == 0 && wait {
            self.awaits_reader = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_pipe_keeps_writes_apart_and_cuts_long_ones() {
        let mut p = Pipe::packets();
        assert_eq!(p.write(b"abc"), Io::Done(3));
        assert_eq!(p.write(b""), Io::Done(0));
        assert_eq!(p.write(b"de"), Io::Done(2));
        let mut out = [0u8; 100];
        assert_eq!(p.read(&mut out), Io::Done(3));
        // A short read drops the rest of its packet.
        assert_eq!(p.read(&mut out[..1]), Io::Done(1));
        assert_eq!(p.read(&mut out), Io::Wait);
        assert_eq!(p.write(&[7u8; PIPE_BUF + 10]), Io::Done(PIPE_BUF + 10));
        let mut big = [0u8; 2 * PIPE_BUF];
        assert_eq!(p.read(&mut big), Io::Done(PIPE_BUF));
        assert_eq!(p.read(&mut big), Io::Done(10));
        // Sixteen slots of a 64 KiB pipe, however small the packets.
        for _ in 0..16 {
            assert_eq!(p.write(b"x"), Io::Done(1));
        }
        assert_eq!(p.write(b"x"), Io::Wait);
        p.writers = 0;
        for _ in 0..16 {
            assert_eq!(p.read(&mut out), Io::Done(1));
        }
        assert_eq!(p.read(&mut out), Io::Done(0));
    }

    #[test]
    fn bytes_come_out_in_order_and_eof_follows_the_last_writer() {
        let mut p = Pipe::new();
        assert_eq!(p.write(b"hello "), Io::Done(6));
        assert_eq!(p.write(b"world"), Io::Done(5));
        let mut out = [0u8; 8];
        assert_eq!(p.read(&mut out), Io::Done(8));
        assert_eq!(&out, b"hello wo");
        assert_eq!(p.read(&mut out), Io::Done(3));
        assert_eq!(p.read(&mut out), Io::Wait);
        p.writers = 0;
        assert_eq!(p.read(&mut out), Io::Done(0));
    }

    #[test]
    fn a_full_pipe_waits_and_small_writes_stay_whole() {
        let mut p = Pipe::new();
        let big = alloc::vec![1u8; CAPACITY - 100];
        assert_eq!(p.write(&big), Io::Done(CAPACITY - 100));
        // 200 bytes do not fit in 100: a small write waits rather than split.
        assert_eq!(p.write(&[2u8; 200]), Io::Wait);
        // A large one takes what fits.
        assert_eq!(p.write(&[3u8; 5000]), Io::Done(100));
        assert_eq!(p.write(&[3u8; 1]), Io::Wait);
        assert!(!p.writable());
        p.readers = 0;
        assert_eq!(p.write(&[3u8; 1]), Io::Broken);
    }

    fn read_all(p: &mut Pipe) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(t) = p.take(100, false) {
            if t.data.is_empty() {
                break;
            }
            out.extend(t.data);
        }
        out
    }

    #[test]
    fn urgent_data_is_apart_from_the_stream_and_reads_stop_at_its_mark() {
        let mut p = Pipe::socket(Mode::Stream, 1);
        p.write(b"ab");
        p.write(b"cd");
        p.mark_urgent();
        p.write(b"ef");
        assert!(p.urgent_pending());
        assert!(!p.at_mark());
        assert_eq!(p.pending(), 3);
        // A read stops before the urgent byte; a peek too.
        assert_eq!(p.take(100, true).map(|t| t.data), Ok(b"abc".to_vec()));
        assert_eq!(p.take(100, false).map(|t| t.data), Ok(b"abc".to_vec()));
        assert!(p.at_mark());
        assert_eq!(p.take_urgent(true), Some(b'd'));
        assert_eq!(p.take_urgent(false), Some(b'd'));
        assert_eq!(p.take_urgent(false), None);
        assert!(!p.urgent_pending());
        // The next read skips it.
        assert_eq!(p.take(100, true).map(|t| t.data), Ok(b"ef".to_vec()));
        assert_eq!(read_all(&mut p), b"ef".to_vec());
        assert!(!p.at_mark());
    }

    #[test]
    fn an_urgent_byte_not_taken_is_lost_to_a_read_past_it() {
        let mut p = Pipe::socket(Mode::Stream, 1);
        p.write(b"x");
        p.mark_urgent();
        // Only the hidden byte: nothing to read.
        assert!(!p.readable());
        p.write(b"yz");
        assert!(p.readable());
        assert_eq!(read_all(&mut p), b"yz".to_vec());
        assert_eq!(p.take_urgent(false), None);
    }

    #[test]
    fn a_newer_urgent_byte_puts_the_older_in_line_and_oobinline_keeps_both() {
        let mut p = Pipe::socket(Mode::Stream, 1);
        p.write(b"1");
        p.mark_urgent();
        p.write(b"2");
        p.mark_urgent();
        assert_eq!(p.take_urgent(true), Some(b'2'));
        assert_eq!(read_all(&mut p), b"1".to_vec());
        let mut q = Pipe::socket(Mode::Stream, 1);
        q.oob_inline = true;
        q.write(b"ab");
        q.mark_urgent();
        q.write(b"c");
        assert!(q.urgent_pending());
        assert_eq!(q.take_urgent(false), None);
        assert_eq!(q.take(100, false).map(|t| t.data), Ok(b"a".to_vec()));
        assert!(q.at_mark());
        assert_eq!(read_all(&mut q), b"bc".to_vec());
        assert!(!q.urgent_pending());
    }

    #[test]
    fn a_tcp_send_after_the_peer_closed_is_taken_once() {
        let mut p = Pipe::socket(Mode::Stream, 1);
        p.tcp = true;
        p.readers = 0;
        assert_eq!(p.write(b"lost"), Io::Done(4));
        assert_eq!(p.write(b"x"), Io::Broken);
        // As much as the connection holds, not all of a large send.
        let mut big = Pipe::socket(Mode::Stream, 1);
        big.tcp = true;
        big.readers = 0;
        assert_eq!(big.write(&[0u8; CAPACITY + 1]), Io::Done(CAPACITY));
        // A peer that closed with bytes unread reset the connection at
        // once: no send is taken.
        let mut q = Pipe::socket(Mode::Stream, 1);
        q.tcp = true;
        assert_eq!(q.write(b"unread"), Io::Done(6));
        q.readers = 0;
        assert_eq!(q.write(b"x"), Io::Broken);
    }

    #[test]
    fn a_tcp_reader_closing_with_bytes_unread_resets_the_connection() {
        let mut there = Pipe::socket(Mode::Stream, 1);
        there.tcp = true;
        assert_eq!(there.write(b"unread"), Io::Done(6));
        assert!(there.socket_reader_left());
        assert_eq!(there.len(), 0);
        assert_eq!(there.write(b"x"), Io::Broken);
        // The way back: what was sent before the reset is read, then the
        // reset once (a peek takes it too), then the end.
        let mut back = Pipe::socket(Mode::Stream, 2);
        back.tcp = true;
        assert_eq!(back.write(b"ok"), Io::Done(2));
        back.writers = 0;
        back.reset_by_peer = true;
        let mut b = [0u8; 8];
        assert_eq!(back.read(&mut b), Io::Done(2));
        assert!(matches!(back.take(8, true), Err(Io::Reset)));
        assert_eq!(back.read(&mut b), Io::Done(0));
        // A reader that read everything closes with a FIN, no reset.
        let mut read_all = Pipe::socket(Mode::Stream, 1);
        read_all.tcp = true;
        assert!(!read_all.socket_reader_left());
    }

    #[test]
    fn a_named_pipe_waits_for_its_other_end() {
        let mut p = Pipe::named();
        let mut out = [0u8; 4];
        // A reader with no writer yet waits, not end of file.
        p.open_reader();
        assert_eq!(p.read(&mut out), Io::Wait);
        assert!(!p.readable());
        p.open_writer(true);
        assert_eq!(p.write(b"hi"), Io::Done(2));
        p.writers = 0;
        assert_eq!(p.read(&mut out), Io::Done(2));
        // The writer went: end of file for the reader that saw it.
        assert_eq!(p.read(&mut out), Io::Done(0));
        // A writer with no reader waits, not EPIPE.
        let mut q = Pipe::named();
        q.open_writer(true);
        assert_eq!(q.write(b"x"), Io::Wait);
        assert!(!q.writable());
        q.open_reader();
        assert!(q.writable());
        assert_eq!(q.write(b"x"), Io::Done(1));
        // Until a writer comes, poll says nothing either.
        let mut r = Pipe::named();
        r.open_reader();
        assert!(!r.readable());
        r.open_writer(false);
        r.writers = 0;
        assert!(r.readable());
        assert_eq!(r.read(&mut out), Io::Done(0));
    }

    #[test]
    fn a_pipe_is_resized_in_powers_of_two_of_pages() {
        let mut p = Pipe::new();
        assert_eq!(p.set_capacity(0), Ok(4096));
        assert_eq!(p.set_capacity(5000), Ok(8192));
        assert_eq!(p.write(&[1u8; 8192]), Io::Done(8192));
        assert_eq!(p.write(&[1u8; 1]), Io::Wait, "full at its new size");
        assert_eq!(p.set_capacity(4096), Err(16), "holds more than that");
        assert_eq!(p.set_capacity(MAX_CAPACITY as u64), Ok(MAX_CAPACITY));
        assert_eq!(p.set_capacity(MAX_CAPACITY as u64 + 1), Err(1));
        assert_eq!(p.capacity(), MAX_CAPACITY);
    }

    fn file() -> Arc<OpenFile> {
        OpenFile::new(crate::fd::Kind::DevNull, 0)
    }

    #[test]
    fn a_stream_read_stops_after_the_bytes_descriptors_came_with() {
        let mut p = Pipe::socket(Mode::Stream, 7);
        assert_eq!(p.write(b"AAA"), Io::Done(3));
        assert_eq!(p.send(b"BBB", alloc::vec![file(), file()]), Io::Done(3));
        assert_eq!(p.write(b"CCC"), Io::Done(3));
        // A peek sees them and leaves them.
        let t = p.take(100, true).unwrap();
        assert_eq!((t.data.as_slice(), t.rights.len()), (&b"AAABBB"[..], 2));
        let t = p.take(100, false).unwrap();
        assert_eq!((t.data.as_slice(), t.rights.len()), (&b"AAABBB"[..], 2));
        let t = p.take(100, false).unwrap();
        assert_eq!((t.data.as_slice(), t.rights.len()), (&b"CCC"[..], 0));
        // A read of part of them takes the descriptors; the rest of their
        // bytes then read on into what follows.
        p.send(b"DDD", alloc::vec![file()]);
        p.write(b"EEE");
        let t = p.take(2, false).unwrap();
        assert_eq!((t.data.as_slice(), t.rights.len()), (&b"DD"[..], 1));
        let t = p.take(100, false).unwrap();
        assert_eq!((t.data.as_slice(), t.rights.len()), (&b"DEEE"[..], 0));
        // Bytes given back keep their place; nothing is sent without bytes.
        p.write(b"xyz");
        let t = p.take(2, false).unwrap();
        p.unread(&t.data);
        assert_eq!(p.send(b"", alloc::vec![file()]), Io::Done(0));
        assert_eq!(p.take(100, false).unwrap().data, b"xyz");
        assert_eq!(p.sender, 7);
    }

    #[test]
    fn message_pipes_keep_boundaries_and_their_descriptors() {
        for mode in [Mode::Packets, Mode::Datagrams] {
            let mut p = Pipe::socket(mode, 1);
            p.write(b"hello");
            p.write(b"");
            p.send(b"0123456789", alloc::vec![file()]);
            assert_eq!(p.pending(), if mode == Mode::Datagrams { 5 } else { 15 });
            let t = p.take(4, true).unwrap();
            assert_eq!((t.data.as_slice(), t.whole), (&b"hell"[..], 5));
            let t = p.take(4, false).unwrap();
            assert_eq!((t.data.as_slice(), t.whole), (&b"hell"[..], 5));
            let t = p.take(4, false).unwrap();
            assert_eq!((t.data.len(), t.whole), (0, 0));
            assert!(p.readable(), "a message is left");
            let t = p.take(100, false).unwrap();
            assert_eq!((t.data.as_slice(), t.rights.len()), (&b"0123456789"[..], 1));
            assert_eq!(p.take(100, false).unwrap_err(), Io::Wait);
            assert_eq!(p.write(&alloc::vec![0; MAX_MESSAGE + 1]), Io::TooBig);
            assert_eq!(p.write(&alloc::vec![0; MAX_MESSAGE]), Io::Done(MAX_MESSAGE));
            assert_eq!(p.write(&alloc::vec![0; 100]), Io::Wait, "full");
            p.take(0, false).unwrap();
            // The writer goes: the end of a seqpacket's file, but a
            // datagram socket's reader waits.
            p.writers = 0;
            if mode == Mode::Packets {
                assert_eq!(p.take(10, false).unwrap().whole, 0);
                assert!(p.readable() && p.hung_up());
            } else {
                assert_eq!(p.take(10, false).unwrap_err(), Io::Wait);
                assert!(!p.readable() && !p.hung_up());
            }
        }
        let mut p = Pipe::socket(Mode::Datagrams, 1);
        for _ in 0..MAX_MESSAGES {
            assert_eq!(p.write(b"m"), Io::Done(1));
        }
        assert!(!p.writable());
        assert_eq!(p.write(b"m"), Io::Wait);
        // A named datagram socket's messages keep their senders.
        let mut d = Pipe::socket(Mode::Datagrams, 1);
        let name = Name::Abstract(b"c".to_vec());
        d.send_from(b"one", Vec::new(), Some(name.clone()));
        d.send(b"two", Vec::new());
        assert_eq!(d.take(9, true).unwrap().from.as_ref(), Some(&name));
        assert_eq!(d.take(9, false).unwrap().from, Some(name));
        assert_eq!(d.take(9, false).unwrap().from, None);
        let mut q = Pipe::socket(Mode::Packets, 1);
        q.send(b"r", alloc::vec![file(), file()]);
        assert_eq!(q.drop_rights().len(), 2);
        assert_eq!(q.take(1, false).unwrap().rights.len(), 0);
    }

    proptest::proptest! {
        #[test]
        fn what_goes_in_comes_out(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..9000), 0..20)) {
            let mut p = Pipe::new();
            let mut sent = alloc::vec::Vec::new();
            let mut got = alloc::vec::Vec::new();
            for c in &chunks {
                let mut off = 0;
                while off < c.len() {
                    match p.write(&c[off..]) {
                        Io::Done(n) => { sent.extend_from_slice(&c[off..off + n]); off += n; }
                        Io::Wait => {
                            let mut out = [0u8; 3000];
                            if let Io::Done(n) = p.read(&mut out) { got.extend_from_slice(&out[..n]); }
                        }
                        Io::Broken | Io::TooBig | Io::Reset => unreachable!(),
                    }
                }
            }
            let mut out = [0u8; 4096];
            while let Io::Done(n) = p.read(&mut out) { if n == 0 { break; } got.extend_from_slice(&out[..n]); }
            proptest::prop_assert_eq!(sent, got);
        }
    }

    #[test]
    fn a_socket_shut_for_reading_ends_after_what_it_holds() {
        let mut p = Pipe::socket(Mode::Stream, 1);
        assert_eq!(p.write(b"abc"), Io::Done(3));
        p.read_shut = true;
        assert!(p.readable());
        let mut out = [0u8; 8];
        assert_eq!(p.read(&mut out), Io::Done(3));
        assert_eq!(p.read(&mut out), Io::Done(0));
        // AF_UNIX: the peer's sends are refused; TCP: still taken.
        assert!(p.refuses_send());
        assert_eq!(p.write(b"x"), Io::Broken);
        p.tcp = true;
        assert!(!p.refuses_send());
        assert_eq!(p.write(b"x"), Io::Done(1));
    }
}
