//! /proc/net's files made from this processor's sockets
//! ([`pmon::procnet`] writes them).

use pmon::path::NetFile;
use pmon::pipe::Mode;
use pmon::procnet::{self, InetSock, UnixSock};
use pmon::unixsock::Name as SockName;

use super::*;

impl Kernel {
    /// The text of /proc/net/`file`.
    pub(super) fn proc_net(&self, file: NetFile) -> Vec<u8> {
        match file {
            NetFile::Dev => procnet::dev(),
            NetFile::Route => procnet::route(),
            NetFile::IfInet6 => procnet::if_inet6(),
            NetFile::Arp => procnet::arp(),
            NetFile::Tcp | NetFile::Tcp6 => {
                procnet::tcp(&self.inet_sockets(true), file == NetFile::Tcp6)
            }
            NetFile::Udp | NetFile::Udp6 => {
                procnet::udp(&self.inet_sockets(false), file == NetFile::Udp6)
            }
            NetFile::Unix => procnet::unix(&self.unix_sockets()),
            NetFile::Sockstat | NetFile::Sockstat6 => procnet::sockstat(
                self.open_sockets().len(),
                &self.inet_sockets(true),
                &self.inet_sockets(false),
                file == NetFile::Sockstat6,
            ),
        }
    }

    /// Every socket open in a process here, once, with its owner's uid, in
    /// the order of their numbers.
    fn open_sockets(&self) -> BTreeMap<usize, (Kind, u32)> {
        let mut out = BTreeMap::new();
        for (&pid, p) in &self.procs {
            let uid = self.ucred_of(pid).uid;
            for (_, f) in p.fds.iter() {
                let id = match f.kind {
                    Kind::Socket(id, _)
                    | Kind::Unix(id)
                    | Kind::UnixDgram(id)
                    | Kind::Dgram(id) => id,
                    _ => continue,
                };
                out.entry(id).or_insert((f.kind, uid));
            }
        }
        out
    }

    /// The TCP (`tcp`) or UDP sockets that Linux lists: listeners and
    /// connections; bound UDP sockets.
    pub(super) fn inet_sockets(&self, tcp: bool) -> Vec<InetSock> {
        let mut out = Vec::new();
        for (id, (kind, uid)) in self.open_sockets() {
            let sock = |local, remote, state, rx_queue| InetSock {
                local,
                remote,
                state,
                tx_queue: 0,
                rx_queue,
                uid,
                inode: socket_ino(id),
            };
            match kind {
                Kind::Unix(id) if tcp && self.unix.is_listening(id) => {
                    let Some(v6) = self.unix.inet(id) else {
                        continue;
                    };
                    let local = match self.unix.name_of(id) {
                        Some(SockName::Inet(n)) => *n,
                        _ => pmon::dgram::unbound(v6),
                    };
                    out.push(sock(local, None, procnet::TCP_LISTEN, 0));
                }
                Kind::Socket(rx, _) if tcp => {
                    let Some((Some(SockName::Inet(own)), peer)) = self.unix_names.get(&rx) else {
                        continue;
                    };
                    let remote = match peer {
                        Some(SockName::Inet(p)) => Some(*p),
                        _ => None,
                    };
                    let (queued, ended) = self
                        .pipes
                        .get(&rx)
                        .map_or((0, true), |p| (p.len(), p.ended()));
                    let state = if ended {
                        procnet::TCP_CLOSE_WAIT
                    } else {
                        procnet::TCP_ESTABLISHED
                    };
                    out.push(sock(*own, remote, state, queued));
                }
                Kind::Dgram(id) if !tcp && self.dgrams.proto_of(id) == pmon::dgram::Proto::Udp => {
                    let Some(local) = self.dgrams.name_of(id) else {
                        continue;
                    };
                    let v6 = self.dgrams.is_v6(id);
                    let remote = self.dgrams.peer_of(id).map(|p| p.seen_from(v6));
                    let state = if remote.is_some() {
                        procnet::TCP_ESTABLISHED
                    } else {
                        procnet::UDP_UNCONNECTED
                    };
                    out.push(sock(local, remote, state, 0));
                }
                _ => {}
            }
        }
        out
    }

    /// The AF_UNIX sockets: named or not, listening, connected.
    fn unix_sockets(&self) -> Vec<UnixSock> {
        let shown = |n: Option<&SockName>| match n {
            Some(SockName::Path(p)) => p.clone(),
            Some(SockName::Abstract(a)) => {
                let mut v = b"@".to_vec();
                v.extend_from_slice(a);
                v
            }
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for (id, (kind, _)) in self.open_sockets() {
            let (name, ty, listening, connected) = match kind {
                Kind::Unix(id) if self.unix.inet(id).is_none() => (
                    shown(self.unix.name_of(id)),
                    if self.unix.packets(id) { 5 } else { 1 },
                    self.unix.is_listening(id),
                    false,
                ),
                // Both ends of one pipe: a named pipe opened O_RDWR.
                Kind::Socket(rx, tx) if rx == tx => continue,
                Kind::Socket(rx, _) => {
                    let own = self.unix_names.get(&rx).and_then(|(own, _)| own.as_ref());
                    if matches!(own, Some(SockName::Inet(_))) {
                        continue;
                    }
                    let ty = match self.pipes.get(&rx).map(|p| p.mode()) {
                        Some(Mode::Packets) => 5,
                        Some(Mode::Datagrams) => 2,
                        _ => 1,
                    };
                    (shown(own), ty, false, true)
                }
                Kind::UnixDgram(id) => (
                    shown(self.unix.name_of(id)),
                    2,
                    false,
                    self.unix.dgram_peer(id).is_some(),
                ),
                _ => continue,
            };
            out.push(UnixSock {
                name,
                ty,
                listening,
                connected,
                inode: socket_ino(id),
            });
        }
        out
    }
}
