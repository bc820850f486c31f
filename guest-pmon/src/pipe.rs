//! Pipes between processes on one processor: a bounded buffer with
//! Linux's semantics. A read of an empty pipe waits while a writer
//! exists and returns 0 (end of file) when none does; a write waits while
//! the pipe is full and fails with EPIPE (and SIGPIPE) when no reader
//! exists; writes of at most PIPE_BUF bytes are atomic.

use alloc::collections::VecDeque;

/// Linux's default pipe capacity.
pub const CAPACITY: usize = 65536;
/// Writes this size or smaller are never interleaved with others.
pub const PIPE_BUF: usize = 4096;

#[derive(Debug, Default)]
pub struct Pipe {
    buf: VecDeque<u8>,
    pub readers: u32,
    pub writers: u32,
    /// A named pipe opened for reading with no writer: reads wait for one
    /// to come rather than see the end of the file (Linux's open waits;
    /// here the first read does). Cleared when a writer opens it.
    pub awaits_writer: bool,
    /// Likewise for writing with no reader: writes wait, not EPIPE.
    pub awaits_reader: bool,
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
}

impl Pipe {
    pub fn new() -> Pipe {
        Pipe {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
            awaits_writer: false,
            awaits_reader: false,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Free room.
    pub fn room(&self) -> usize {
        CAPACITY - self.buf.len()
    }

    pub fn read(&mut self, out: &mut [u8]) -> Io {
        if out.is_empty() {
            return Io::Done(0);
        }
        if self.buf.is_empty() {
            return if self.writers == 0 && !self.awaits_writer {
                Io::Done(0)
            } else {
                Io::Wait
            };
        }
        let n = out.len().min(self.buf.len());
        for (o, b) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = b;
        }
        Io::Done(n)
    }

    /// Puts bytes taken by [`Pipe::read`] back in front, as if never read
    /// (the reader could not take them: its buffer was bad).
    pub fn unread(&mut self, data: &[u8]) {
        for &b in data.iter().rev() {
            self.buf.push_front(b);
        }
    }

    /// Writes what fits of `data` (all of it or nothing when it is at most
    /// PIPE_BUF bytes, so small writes stay whole).
    pub fn write(&mut self, data: &[u8]) -> Io {
        if self.readers == 0 {
            return if self.awaits_reader {
                Io::Wait
            } else {
                Io::Broken
            };
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
        Io::Done(n)
    }

    /// Whether a read would not wait (data, or end of file).
    pub fn readable(&self) -> bool {
        !self.buf.is_empty() || (self.writers == 0 && !self.awaits_writer)
    }

    /// Whether a write would not wait (room for PIPE_BUF bytes, or no reader).
    pub fn writable(&self) -> bool {
        if self.readers == 0 {
            // No reader: EPIPE at once, or a wait for the first one.
            return !self.awaits_reader;
        }
        self.room() >= PIPE_BUF
    }

    /// A named pipe with no ends yet (mkfifo's, before its first open).
    pub fn named() -> Pipe {
        Pipe {
            readers: 0,
            writers: 0,
            ..Pipe::default()
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
                        Io::Broken => unreachable!(),
                    }
                }
            }
            let mut out = [0u8; 4096];
            while let Io::Done(n) = p.read(&mut out) { if n == 0 { break; } got.extend_from_slice(&out[..n]); }
            proptest::prop_assert_eq!(sent, got);
        }
    }
}
