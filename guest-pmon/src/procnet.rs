//! /proc/net's files, of this processor's own network: its loopback and
//! its processes' sockets, in the layouts Linux writes them (netstat,
//! ss's fallback, lsof, ifconfig and psutil parse them). The host's would
//! list the host's interfaces and sockets, which no program here can
//! reach: a script waiting for its server's port in /proc/net/tcp would
//! have found a host process's.
//!
//! Decided: the loopback's counters are not kept (0), and a connection's
//! queues are what waits unread (rx) and nothing in flight (tx), as the
//! bytes move between pipes of one monitor; timers and retransmits are 0.

use alloc::format;
use alloc::vec::Vec;

use crate::inet::{Addr, InetName};

/// Linux's TCP states, as /proc/net/tcp numbers them.
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_CLOSE_WAIT: u8 = 0x08;
pub const TCP_LISTEN: u8 = 0x0A;
/// A UDP socket with no peer (Linux's TCP_CLOSE, 7).
pub const UDP_UNCONNECTED: u8 = 0x07;

/// An AF_INET or AF_INET6 socket, as a /proc/net/{tcp,udp}[6] line shows it.
#[derive(Clone, Debug)]
pub struct InetSock {
    pub local: InetName,
    pub remote: Option<InetName>,
    pub state: u8,
    pub tx_queue: usize,
    pub rx_queue: usize,
    pub uid: u32,
    /// The number in its descriptors' `socket:[N]`.
    pub inode: u64,
}

/// An AF_UNIX socket, as a /proc/net/unix line shows it.
#[derive(Clone, Debug)]
pub struct UnixSock {
    /// Its name as Linux shows it: a path, `@` and an abstract name, or
    /// nothing.
    pub name: Vec<u8>,
    /// SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5.
    pub ty: u16,
    pub listening: bool,
    pub connected: bool,
    pub inode: u64,
}

/// The address's bytes in network order.
pub(crate) fn octets(a: Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        Addr::Any4 | Addr::Any6 => {}
        Addr::Loopback4 => b[..4].copy_from_slice(&[127, 0, 0, 1]),
        Addr::Loopback6 => b[15] = 1,
        Addr::Mapped4 => {
            b[10] = 0xff;
            b[11] = 0xff;
            b[12..].copy_from_slice(&[127, 0, 0, 1]);
        }
    }
    b
}

/// `ADDR:PORT` as Linux prints it: the address's 32-bit words in the
/// machine's order (127.0.0.1 is 0100007F), the port in hex.
fn endpoint(n: Option<&InetName>, v6: bool) -> Vec<u8> {
    let (b, port) = n.map_or(([0u8; 16], 0), |n| (octets(n.addr), n.port));
    let words = if v6 { 4 } else { 1 };
    let mut out = Vec::new();
    for w in b.chunks_exact(4).take(words) {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        out.extend_from_slice(format!("{v:08X}").as_bytes());
    }
    out.extend_from_slice(format!(":{port:04X}").as_bytes());
    out
}

/// Pads a line of /proc/net/tcp or udp to Linux's width (`width` bytes
/// before the newline).
fn padded(mut line: Vec<u8>, width: usize) -> Vec<u8> {
    while line.len() < width {
        line.push(b' ');
    }
    line.push(b'\n');
    line
}

/// How one of /proc/net's socket tables is laid out.
struct Table {
    /// The header: IPv4's (padded to `width`) and IPv6's.
    header: [&'static [u8]; 2],
    /// IPv4's lines are padded to this many bytes, IPv6's are not.
    width: usize,
    /// The slot number's width.
    slot: usize,
    /// What follows the inode: the reference count, the socket's address
    /// (hidden as Linux shows it to a reader without the right) and the
    /// protocol's own fields.
    tail: fn(&InetSock) -> &'static str,
}

/// One of /proc/net's socket tables: the sockets of `socks` of IPv6 (`v6`)
/// or IPv4.
fn table(t: &Table, socks: &[InetSock], v6: bool) -> Vec<u8> {
    let mut out = if v6 {
        let mut h = t.header[1].to_vec();
        h.push(b'\n');
        h
    } else {
        padded(t.header[0].to_vec(), t.width)
    };
    for (i, s) in socks.iter().filter(|s| s.local.v6() == v6).enumerate() {
        let mut line = format!("{i:w$}: ", w = t.slot).into_bytes();
        line.extend(endpoint(Some(&s.local), v6));
        line.push(b' ');
        line.extend(endpoint(s.remote.as_ref(), v6));
        line.extend_from_slice(
            format!(
                " {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {} {}",
                s.state,
                s.tx_queue,
                s.rx_queue,
                s.uid,
                0,
                s.inode,
                (t.tail)(s)
            )
            .as_bytes(),
        );
        if v6 {
            line.push(b'\n');
            out.extend(line);
        } else {
            out.extend(padded(line, t.width));
        }
    }
    out
}

/// /proc/net/tcp (IPv4 sockets) or tcp6: listeners and connections.
pub fn tcp(socks: &[InetSock], v6: bool) -> Vec<u8> {
    const TCP: Table = Table {
        header: [
            b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            b"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        ],
        width: 149,
        slot: 4,
        tail: |s| {
            if s.state == TCP_LISTEN {
                "1 0000000000000000 100 0 0 10 0"
            } else {
                "1 0000000000000000 20 4 30 10 -1"
            }
        },
    };
    table(&TCP, socks, v6)
}

/// /proc/net/udp or udp6: bound UDP sockets.
pub fn udp(socks: &[InetSock], v6: bool) -> Vec<u8> {
    const UDP: Table = Table {
        header: [
            b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
            b"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
        ],
        width: 127,
        slot: 5,
        tail: |_| "2 0000000000000000 0",
    };
    table(&UDP, socks, v6)
}

/// /proc/net/unix.
pub fn unix(socks: &[UnixSock]) -> Vec<u8> {
    let mut out = b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec();
    for s in socks {
        // __SO_ACCEPTCON marks a listener; St is SS_UNCONNECTED (1) or
        // SS_CONNECTED (3).
        let flags = if s.listening { 0x10000 } else { 0 };
        let st = if s.connected { 3 } else { 1 };
        out.extend_from_slice(
            format!(
                "0000000000000000: 00000002 00000000 {flags:08X} {:04X} {st:02X} {:5}",
                s.ty, s.inode
            )
            .as_bytes(),
        );
        if !s.name.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&s.name);
        }
        out.push(b'\n');
    }
    out
}

/// /proc/net/sockstat (`v6` false: `used` sockets of every family, then
/// IPv4's) or sockstat6: how many TCP and UDP sockets are in use (`ss -s`
/// reads them). Decided: memory, orphans and TIME_WAIT are 0 (a closed
/// connection here is gone at once).
pub fn sockstat(used: usize, tcp: &[InetSock], udp: &[InetSock], v6: bool) -> Vec<u8> {
    let count = |socks: &[InetSock]| socks.iter().filter(|s| s.local.v6() == v6).count();
    let (t, u) = (count(tcp), count(udp));
    if v6 {
        format!("TCP6: inuse {t}\nUDP6: inuse {u}\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n")
            .into_bytes()
    } else {
        format!(
            "sockets: used {used}\nTCP: inuse {t} orphan 0 tw 0 alloc {} mem 0\nUDP: inuse {u} mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
            tcp.len()
        )
        .into_bytes()
    }
}

/// /proc/net/dev: the loopback alone.
pub fn dev() -> Vec<u8> {
    let mut out = b"Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n".to_vec();
    out.extend_from_slice(b"    lo:");
    for _ in 0..8 {
        out.extend_from_slice(b"       0");
    }
    for _ in 0..8 {
        out.extend_from_slice(b"        0");
    }
    out.push(b'\n');
    out
}

/// /proc/net/if_inet6: the loopback's ::1.
pub fn if_inet6() -> Vec<u8> {
    b"00000000000000000000000000000001 01 80 10 80       lo\n".to_vec()
}

/// /proc/net/route: no route leaves the loopback (Linux lists the
/// loopback's routes in its local table, not here).
pub fn route() -> Vec<u8> {
    b"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       \n".to_vec()
}

/// /proc/net/arp: no neighbours.
pub fn arp() -> Vec<u8> {
    b"IP address       HW type     Flags       HW address            Mask     Device\n".to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn sock(local: InetName, remote: Option<InetName>, state: u8) -> InetSock {
        InetSock {
            local,
            remote,
            state,
            tx_queue: 0,
            rx_queue: 5,
            uid: 1000,
            inode: 42,
        }
    }

    #[test]
    fn tcp_lines_read_as_linux_writes_them() {
        let l4 = InetName {
            port: 8080,
            addr: Addr::Loopback4,
        };
        let any6 = InetName {
            port: 22,
            addr: Addr::Any6,
        };
        let mapped = InetName {
            port: 40000,
            addr: Addr::Mapped4,
        };
        let socks = [
            sock(l4, None, TCP_LISTEN),
            sock(any6, None, TCP_LISTEN),
            sock(
                InetName {
                    port: 22,
                    addr: Addr::Loopback6,
                },
                Some(mapped),
                TCP_ESTABLISHED,
            ),
        ];
        let t4 = String::from_utf8(tcp(&socks, false)).unwrap();
        let lines: Vec<&str> = t4.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == 149));
        assert!(lines[1].starts_with("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000  1000        0 42 1 "));
        let t6 = String::from_utf8(tcp(&socks, true)).unwrap();
        let lines: Vec<&str> = t6.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with(
            "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A "
        ));
        assert!(lines[2].starts_with(
            "   1: 00000000000000000000000001000000:0016 0000000000000000FFFF00000100007F:9C40 01 "
        ));
    }

    #[test]
    fn sockstat_counts_each_family() {
        let name = |addr| InetName { port: 1, addr };
        let tcp = [
            sock(name(Addr::Loopback4), None, TCP_LISTEN),
            sock(name(Addr::Any6), None, TCP_LISTEN),
            sock(
                name(Addr::Loopback4),
                Some(name(Addr::Loopback4)),
                TCP_ESTABLISHED,
            ),
        ];
        let udp = [sock(name(Addr::Any6), None, UDP_UNCONNECTED)];
        assert_eq!(
            String::from_utf8(sockstat(9, &tcp, &udp, false)).unwrap(),
            "sockets: used 9\nTCP: inuse 2 orphan 0 tw 0 alloc 3 mem 0\nUDP: inuse 0 mem 0\n\
             UDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
        );
        assert!(String::from_utf8(sockstat(9, &tcp, &udp, true))
            .unwrap()
            .starts_with("TCP6: inuse 1\nUDP6: inuse 1\n"));
    }

    #[test]
    fn udp_unix_and_the_loopback() {
        let u = sock(
            InetName {
                port: 53,
                addr: Addr::Any4,
            },
            None,
            UDP_UNCONNECTED,
        );
        let text = String::from_utf8(udp(&[u], false)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().all(|l| l.len() == 127));
        assert!(lines[1].starts_with("    0: 00000000:0035 00000000:0000 07 "));
        let x = unix(&[
            UnixSock {
                name: b"/tmp/s".to_vec(),
                ty: 1,
                listening: true,
                connected: false,
                inode: 7,
            },
            UnixSock {
                name: Vec::new(),
                ty: 5,
                listening: false,
                connected: true,
                inode: 8,
            },
        ]);
        assert_eq!(
            String::from_utf8(x).unwrap(),
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000000000000: 00000002 00000000 00010000 0001 01     7 /tmp/s\n\
             0000000000000000: 00000002 00000000 00000000 0005 03     8\n"
        );
        let d = String::from_utf8(dev()).unwrap();
        assert_eq!(d.lines().count(), 3);
        let lo: Vec<&str> = d.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!((lo[0], lo.len()), ("lo:", 17));
    }
}
