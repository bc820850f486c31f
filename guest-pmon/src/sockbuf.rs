//! SO_SNDBUF and SO_RCVBUF of stream sockets (AF_UNIX and TCP on the
//! loopback): the values a program sets and reads back, as Linux keeps
//! them, and how much a connection holds in flight because of them.
//!
//! Linux stores twice the size asked for (half of it pays for its own
//! bookkeeping), within a floor and `net.core.wmem_max`/`rmem_max`
//! (212 992 by default), and `getsockopt` returns what it stored. How much
//! a connection then holds before a send blocks: on TCP about the sender's
//! send buffer plus the receiver's window, on an AF_UNIX stream the
//! sender's send buffer (the receive buffer is not used).
//!
//! Decided: a connection neither end sized holds [`pipe::CAPACITY`] each
//! way (what it held before these options were served); once an end sets
//! a size, a direction holds the sizes asked for: on TCP the sender's send
//! buffer plus the receiver's receive buffer (each the default where not
//! set), on AF_UNIX the sender's send buffer. Programs that shrink them to
//! see back-pressure early (CPython's asyncio sendfile tests set 4 KiB
//! each way) then see it as on Linux.

use crate::pipe;

pub const SO_SNDBUF: u64 = 7;
pub const SO_RCVBUF: u64 = 8;

/// Linux's default `net.core.wmem_max` and `net.core.rmem_max`.
const WMEM_MAX: u64 = 212_992;
/// SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF as this host's Linux reports them.
const MIN_SNDBUF: u64 = 4608;
const MIN_RCVBUF: u64 = 2304;

/// What `setsockopt(option, asked)` stores, and `getsockopt` reads back:
/// the size asked for (an int taken as unsigned, as Linux's `min_t(u32)`)
/// up to the maximum, doubled, and at least the floor.
pub fn stored(option: u64, asked: u32) -> u64 {
    let floor = if option == SO_SNDBUF {
        MIN_SNDBUF
    } else {
        MIN_RCVBUF
    };
    ((asked as u64).min(WMEM_MAX) * 2).max(floor)
}

/// What `getsockopt` says for a stream socket that set no size: Linux's
/// `tcp_wmem[1]` and `tcp_rmem[1]` for TCP, `wmem_default` and
/// `rmem_default` for AF_UNIX.
pub fn default(option: u64, tcp: bool) -> u64 {
    match (tcp, option) {
        (true, SO_SNDBUF) => 16_384,
        (true, _) => 131_072,
        (false, _) => WMEM_MAX,
    }
}

/// How many bytes one direction of a stream connection holds: `send` is
/// what its sender stored for SO_SNDBUF, `receive` what its receiver
/// stored for SO_RCVBUF (None where not set).
pub fn capacity(tcp: bool, send: Option<u64>, receive: Option<u64>) -> usize {
    // Half of a stored value is the size asked for.
    let asked = |v: u64| (v / 2) as usize;
    if tcp {
        if send.is_none() && receive.is_none() {
            return pipe::CAPACITY;
        }
        asked(send.unwrap_or(default(SO_SNDBUF, true)))
            + asked(receive.unwrap_or(default(SO_RCVBUF, true)))
    } else {
        send.map_or(pipe::CAPACITY, asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_are_doubled_within_linuxs_bounds() {
        assert_eq!(stored(SO_SNDBUF, 4096), 8192);
        assert_eq!(stored(SO_RCVBUF, 4096), 8192);
        assert_eq!(stored(SO_SNDBUF, 1), MIN_SNDBUF);
        assert_eq!(stored(SO_RCVBUF, 0), MIN_RCVBUF);
        assert_eq!(stored(SO_SNDBUF, 1 << 30), 2 * WMEM_MAX);
        // A negative int is a huge unsigned one.
        assert_eq!(stored(SO_RCVBUF, -5i32 as u32), 2 * WMEM_MAX);
    }

    #[test]
    fn an_unsized_connection_keeps_the_pipe_capacity() {
        assert_eq!(capacity(true, None, None), pipe::CAPACITY);
        assert_eq!(capacity(false, None, None), pipe::CAPACITY);
        // AF_UNIX streams do not use the receive buffer.
        assert_eq!(capacity(false, None, Some(8192)), pipe::CAPACITY);
    }

    #[test]
    fn sized_connections_hold_what_was_asked() {
        // 4 KiB asked each way (CPython's sendfile tests).
        assert_eq!(capacity(true, Some(8192), Some(8192)), 8192);
        assert_eq!(capacity(false, Some(8192), None), 4096);
        // One end sized: the other's default counts.
        assert_eq!(capacity(true, None, Some(8192)), 8192 + 4096);
        assert_eq!(capacity(true, Some(2 * WMEM_MAX), None), 212_992 + 65_536);
    }
}
