//! The TCP connection gdbstub talks through. Until the stub has answered a
//! valid packet, reads time out, so a client that connects and says nothing
//! (or only garbage) cannot hold the one gdb slot forever; once gdb is
//! talking, it may sit idle at its prompt as long as the user likes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gdbstub::conn::{Connection, ConnectionExt};

pub struct GdbConn {
    pub stream: TcpStream,
    greeted: bool,
}

impl GdbConn {
    /// `greeting`: how long the client has to send its first valid packet.
    pub fn new(stream: TcpStream, greeting: Duration) -> std::io::Result<GdbConn> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(greeting))?;
        Ok(GdbConn {
            stream,
            greeted: false,
        })
    }
}

impl Connection for GdbConn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        // The stub starts a reply packet only for a valid request.
        if byte == b'$' && !self.greeted {
            self.greeted = true;
            self.stream.set_read_timeout(None)?;
        }
        Write::write_all(&mut self.stream, &[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        if !self.greeted && buf.contains(&b'$') {
            self.greeted = true;
            self.stream.set_read_timeout(None)?;
        }
        Write::write_all(&mut self.stream, buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Write::flush(&mut self.stream)
    }
}

impl ConnectionExt for GdbConn {
    fn read(&mut self) -> Result<u8, Self::Error> {
        let mut byte = [0u8];
        Read::read_exact(&mut self.stream, &mut byte)?;
        Ok(byte[0])
    }

    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        let mut byte = [0u8];
        match self.stream.peek(&mut byte)? {
            0 => Ok(None),
            _ => Ok(Some(byte[0])),
        }
    }
}
