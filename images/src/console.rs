//! The guest console: lines go to the VMM, which prints them on stderr
//! prefixed with the component's role. One hypercall per line (or per
//! [`LINE_MAX`] bytes), never per character: each costs a VM exit.

use core::fmt;

use lego_proto::hypercall::{ConsoleWrite, PORT_CONSOLE};
use spin::Mutex;

use crate::{cpu::virt_to_phys, hypercall};

pub const LINE_MAX: usize = 240;

/// Accumulates bytes and hands complete lines to a sink.
pub struct LineBuffer {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl LineBuffer {
    pub const fn new() -> Self {
        LineBuffer {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Appends `bytes`, calling `sink` with each finished line (without its newline).
    pub fn push(&mut self, bytes: &[u8], sink: &mut dyn FnMut(&[u8])) {
        for &b in bytes {
            if b == b'\n' {
                sink(&self.buf[..self.len]);
                self.len = 0;
                continue;
            }
            if self.len == LINE_MAX {
                sink(&self.buf[..self.len]);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

static CONSOLE: Mutex<LineBuffer> = Mutex::new(LineBuffer::new());

fn send_line(line: &[u8]) {
    let arg = ConsoleWrite {
        addr: virt_to_phys(line.as_ptr() as u64),
        len: line.len() as u64,
    };
    hypercall::call_with(PORT_CONSOLE, &arg);
}

struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        CONSOLE.lock().push(s.as_bytes(), &mut send_line);
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _ = fmt::Write::write_fmt(&mut Writer, args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// A fixed-size text buffer for places that must not allocate or lock
/// (the panic handler). Output beyond its size is cut off.
pub struct FixedText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedText<N> {
    pub const fn new() -> Self {
        FixedText {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn lines_are_split_on_newlines_and_length() {
        let mut lb = LineBuffer::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        lb.push(b"ab\ncd", &mut |l| out.push(l.to_vec()));
        assert_eq!(out, vec![b"ab".to_vec()]);
        lb.push(b"\n\n", &mut |l| out.push(l.to_vec()));
        assert_eq!(out, vec![b"ab".to_vec(), b"cd".to_vec(), b"".to_vec()]);
        let long = [b'x'; LINE_MAX + 5];
        out.clear();
        lb.push(&long, &mut |l| out.push(l.to_vec()));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), LINE_MAX);
    }

    #[test]
    fn fixed_text_truncates() {
        let mut t = FixedText::<4>::new();
        fmt::Write::write_str(&mut t, "hello").unwrap();
        assert_eq!(t.as_bytes(), b"hell");
    }
}
