//! AF_UNIX stream sockets with addresses, between the processes of one
//! processor: which socket holds which name, which listen, and the
//! connections waiting to be accepted. The kernel makes each connection of
//! two of its pipes, as socketpair's ends are, so that once connected a
//! socket reads, writes, polls and ends as those do.
//!
//! Decided: names are the processor's own. A path under /tmp (the
//! processor's tmpfs) or on storage is made a socket file by bind, as on
//! Linux: `ls` shows it, chmod and unlink work on it, a second bind to it
//! is EADDRINUSE until it is unlinked, and a connect finds the socket by
//! that file (its node), so a connect to the file of a closed socket is
//! ECONNREFUSED and one to an unlinked name ENOENT. A path elsewhere (the
//! host's read-only files) is not made a file: it is a name in this table (`ls` does not show it, no
//! unlink is needed before the next bind, and a connect to the path a
//! closed socket had is ECONNREFUSED, as its file would make it). An
//! abstract name (a leading NUL) is what Linux has. A name's socket and
//! its connections are on one processor: a program and its clients run
//! together, as they do on a Linux host without a network between them.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

pub const EINVAL: i64 = 22;
pub const EADDRINUSE: i64 = 98;
pub const ECONNREFUSED: i64 = 111;
pub const ENOENT: i64 = 2;
pub const EAGAIN: i64 = 11;
pub const EISCONN: i64 = 106;
pub const EPROTOTYPE: i64 = 91;

/// Most connections a listener keeps waiting (Linux's SOMAXCONN).
pub const MAX_BACKLOG: usize = 4096;

/// A name as programs give it in a `sockaddr_un`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Name {
    /// An absolute, normalized path.
    Path(Vec<u8>),
    /// The bytes after the leading NUL.
    Abstract(Vec<u8>),
    /// An AF_INET or AF_INET6 socket's address on the loopback
    /// (`crate::inet`): listeners are found by its port alone.
    Inet(crate::inet::InetName),
}

impl Name {
    /// The `sun_path` bytes and the address length that name it.
    pub fn sockaddr(&self) -> Vec<u8> {
        if let Name::Inet(n) = self {
            return n.sockaddr();
        }
        let mut out = Vec::new();
        out.extend_from_slice(&1u16.to_le_bytes());
        match self {
            Name::Path(p) => {
                out.extend_from_slice(p);
                out.push(0);
            }
            Name::Abstract(a) => {
                out.push(0);
                out.extend_from_slice(a);
            }
            Name::Inet(_) => {}
        }
        out
    }

    /// What finds this name's socket: an address's port, or the name.
    fn key(&self) -> Name {
        match self {
            Name::Inet(n) => Name::Inet(n.key()),
            other => other.clone(),
        }
    }
}

/// The keys a socket bound to `name` is found by ([`UnixSockets::keys_of`]).
fn keys(name: &Name, v6only: bool) -> Vec<Name> {
    let Name::Inet(n) = name else {
        return alloc::vec![name.key()];
    };
    n.sides(v6only)
        .iter()
        .map(|&v6| side_key(n.port, v6))
        .collect()
}

/// The key of one side of an internet port: under its wildcard address.
fn side_key(port: u16, v6: bool) -> Name {
    use crate::inet::{Addr, InetName};
    let addr = if v6 { Addr::Any6 } else { Addr::Any4 };
    Name::Inet(InetName { port, addr })
}

/// What a `sockaddr_un` of `len` bytes says (`bytes` holds them): a name,
/// None for an address of just the family (autobind), or EINVAL.
pub fn parse_sockaddr(bytes: &[u8]) -> Result<Option<SockAddr>, i64> {
    if bytes.len() < 2 || u16::from_le_bytes([bytes[0], bytes[1]]) != 1 {
        return Err(EINVAL);
    }
    let path = &bytes[2..];
    if path.is_empty() {
        return Ok(None);
    }
    if path.len() > 108 {
        return Err(EINVAL);
    }
    if path[0] == 0 {
        return Ok(Some(SockAddr::Abstract(path[1..].to_vec())));
    }
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    Ok(Some(SockAddr::Path(path[..end].to_vec())))
}

/// A parsed address before a path is made absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// As given, perhaps relative to the working directory.
    Path(Vec<u8>),
    Abstract(Vec<u8>),
}

#[derive(Debug, Default)]
struct Sock {
    /// Some(is IPv6) for an AF_INET or AF_INET6 socket.
    inet: Option<bool>,
    /// An AF_INET6 socket with IPV6_V6ONLY when it was bound: its port is
    /// apart from IPv4's.
    v6only: bool,
    name: Option<Name>,
    /// Listening, with at most this many connections waiting.
    listening: Option<usize>,
    /// SOCK_SEQPACKET (its connections keep messages), not SOCK_STREAM.
    packets: bool,
    /// A SOCK_DGRAM socket (its id is its receiving pipe's), and the
    /// socket it is connected to, if any, with that one's name then.
    dgram: Option<Option<(usize, Option<Name>)>>,
    /// The process that made it listen: its connections' clients see it
    /// in SO_PEERCRED, as on Linux.
    owner: u32,
    /// The tmpfs node its path name made, which connects find it by.
    node: Option<u64>,
    /// Connections waiting for accept: the pipes of the server's end
    /// (receive, send) and the name of the client (None: unnamed).
    waiting: VecDeque<(usize, usize, Option<Name>)>,
    /// Shut for reading while unconnected (Linux's AF_UNIX shutdown needs
    /// no peer): poll says readable and POLLRDHUP.
    read_shut: bool,
    /// Its path name was unlinked ([`UnixSockets::unlink_path`]): no
    /// longer anyone's to find, nor a stale one when it closes.
    unlinked: bool,
    /// SO_REUSEPORT when it was bound: an internet port it may share with
    /// other sockets that had it too.
    reuseport: bool,
}

/// Every AF_UNIX socket of the processor not yet connected, by id.
#[derive(Debug, Default)]
pub struct UnixSockets {
    socks: BTreeMap<usize, Sock>,
    names: BTreeMap<Name, usize>,
    /// The sockets sharing a side of a port by SO_REUSEPORT, by its key,
    /// in the order they bound; the first is the one `names` has.
    groups: BTreeMap<Name, Vec<usize>>,
    /// Sockets by the file their name made (paths in the tmpfs).
    nodes: BTreeMap<u64, usize>,
    /// Path names of sockets closed since (bounded: forgetting one turns
    /// ECONNREFUSED into ENOENT).
    former: BTreeSet<Name>,
    next_auto: u32,
    next_port: u32,
}

impl UnixSockets {
    /// A new socket `id` (unique among the kernel's pipe and socket ids).
    pub fn open(&mut self, id: usize) {
        self.socks.insert(id, Sock::default());
    }

    /// A new AF_UNIX SOCK_SEQPACKET socket `id`.
    pub fn open_packets(&mut self, id: usize) {
        self.socks.insert(
            id,
            Sock {
                packets: true,
                ..Default::default()
            },
        );
    }

    /// A new AF_UNIX SOCK_DGRAM socket `id`: the id of the pipe its
    /// messages queue in. Unlike a stream socket it stays in this table
    /// until it closes, named or not, connected or not.
    pub fn open_dgram(&mut self, id: usize) {
        self.socks.insert(
            id,
            Sock {
                dgram: Some(None),
                ..Default::default()
            },
        );
    }

    /// Whether socket `id` is a SOCK_DGRAM one.
    pub fn is_dgram(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.dgram.is_some())
    }

    /// connect of datagram socket `id`: `peer` (None: disconnect, as
    /// connect with AF_UNSPEC or a send that finds the peer gone) becomes
    /// where its sends without an address go.
    pub fn dgram_connect(&mut self, id: usize, peer: Option<usize>) {
        let name = peer.and_then(|p| self.name_of(p).cloned());
        if let Some(Sock { dgram: Some(d), .. }) = self.socks.get_mut(&id) {
            *d = peer.map(|p| (p, name));
        }
    }

    /// The socket datagram socket `id` is connected to, and its name then.
    pub fn dgram_peer(&self, id: usize) -> Option<(usize, Option<Name>)> {
        self.socks.get(&id)?.dgram.clone().flatten()
    }

    /// Where datagram socket `from` may send to socket `to`: EPROTOTYPE
    /// when `to` is no datagram socket, EPERM when it is connected to
    /// another (Linux's `unix_may_send`), ECONNREFUSED when it is gone.
    pub fn may_send(&self, from: usize, to: usize) -> Result<usize, i64> {
        const EPERM: i64 = 1;
        let s = self.socks.get(&to).ok_or(ECONNREFUSED)?;
        match &s.dgram {
            None => Err(EPROTOTYPE),
            Some(Some((peer, _))) if *peer != from => Err(EPERM),
            Some(_) => Ok(to),
        }
    }

    /// Whether socket `id` is a SOCK_SEQPACKET one.
    pub fn packets(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.packets)
    }

    /// The process that made listener `id` listen.
    pub fn owner(&self, id: usize) -> u32 {
        self.socks.get(&id).map_or(0, |s| s.owner)
    }

    /// A new AF_INET (`v6` false) or AF_INET6 socket `id`.
    pub fn open_inet(&mut self, id: usize, v6: bool) {
        self.socks.insert(
            id,
            Sock {
                inet: Some(v6),
                ..Default::default()
            },
        );
    }

    /// Some(is IPv6) for an AF_INET or AF_INET6 socket.
    pub fn inet(&self, id: usize) -> Option<bool> {
        self.socks.get(&id).and_then(|s| s.inet)
    }

    /// IPV6_V6ONLY of AF_INET6 socket `id`, as it binds.
    pub fn set_v6only(&mut self, id: usize, on: bool) {
        if let Some(s) = self.socks.get_mut(&id).filter(|s| s.inet == Some(true)) {
            s.v6only = on;
        }
    }

    /// What finds socket `id` by its name `name`: its name, or for an
    /// internet socket each side of its port it takes
    /// ([`crate::inet::InetName::sides`]), under that side's wildcard.
    fn keys_of(&self, id: usize, name: &Name) -> Vec<Name> {
        keys(name, self.socks.get(&id).is_some_and(|s| s.v6only))
    }

    /// SO_REUSEPORT of socket `id`, as it binds.
    pub fn set_reuseport(&mut self, id: usize, on: bool) {
        if let Some(s) = self.socks.get_mut(&id).filter(|s| s.inet.is_some()) {
            s.reuseport = on;
        }
    }

    fn reuses(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.reuseport)
    }

    /// Whether `name` may be bound by socket `id`: none of the families'
    /// ports it would take is another socket's, unless they all asked
    /// for SO_REUSEPORT (Linux also asks for one owner; decided: the
    /// processes of a processor are one user's here).
    fn taken(&self, id: usize, name: &Name) -> bool {
        self.keys_of(id, name).iter().any(|k| {
            self.names
                .get(k)
                .is_some_and(|&holder| !(self.reuses(id) && self.reuses(holder)))
        })
    }

    pub fn exists(&self, id: usize) -> bool {
        self.socks.contains_key(&id)
    }

    /// bind: `name` (None: an abstract name of Linux's autobind form,
    /// five hex digits; an address with port 0: a free port of Linux's
    /// ephemeral range) becomes socket `id`'s.
    pub fn bind(&mut self, id: usize, name: Option<Name>) -> Result<(), i64> {
        let bound = self.socks.get(&id).ok_or(EINVAL)?.name.is_some();
        if bound {
            return Err(EINVAL);
        }
        let name = match name {
            Some(Name::Inet(n)) if n.port == 0 => Name::Inet(crate::inet::InetName {
                port: self.free_port()?,
                ..n
            }),
            Some(n) => n,
            None => self.auto_name()?,
        };
        if self.taken(id, &name) {
            return Err(EADDRINUSE);
        }
        self.former.remove(&name);
        for key in self.keys_of(id, &name) {
            match self.names.get(&key) {
                Some(&holder) => self
                    .groups
                    .entry(key)
                    .or_insert_with(|| alloc::vec![holder])
                    .push(id),
                None => {
                    self.names.insert(key, id);
                }
            }
        }
        if let Some(s) = self.socks.get_mut(&id) {
            s.name = Some(name);
        }
        Ok(())
    }

    /// bind to path `name` whose socket file the kernel made: node
    /// `node` of the tmpfs. The file, not the path, finds it from now on.
    pub fn bind_node(&mut self, id: usize, name: Name, node: u64) -> Result<(), i64> {
        let s = self.socks.get_mut(&id).ok_or(EINVAL)?;
        if s.name.is_some() {
            return Err(EINVAL);
        }
        s.name = Some(name);
        s.node = Some(node);
        self.nodes.insert(node, id);
        Ok(())
    }

    /// A port no socket has, taken in turn from the ephemeral range.
    fn free_port(&mut self) -> Result<u16, i64> {
        let names = &self.names;
        crate::inet::free_port(&mut self.next_port, |port| {
            [crate::inet::Addr::Any4, crate::inet::Addr::Any6]
                .iter()
                .any(|&addr| names.contains_key(&Name::Inet(crate::inet::InetName { port, addr })))
        })
        .ok_or(EADDRINUSE)
    }

    fn auto_name(&mut self) -> Result<Name, i64> {
        for _ in 0..0x10_0000 {
            self.next_auto = (self.next_auto + 1) & 0xf_ffff;
            let n = Name::Abstract(alloc::format!("{:05x}", self.next_auto).into_bytes());
            if !self.names.contains_key(&n) {
                return Ok(n);
            }
        }
        Err(EADDRINUSE)
    }

    /// listen: socket `id` takes connections, up to `backlog` waiting, for
    /// process `owner`. It must have a name (EINVAL, as Linux: no
    /// listening on an unbound socket; a bind of just the family gives it
    /// one).
    pub fn listen(&mut self, id: usize, backlog: i32, owner: u32) -> Result<(), i64> {
        if self.socks.get(&id).ok_or(EINVAL)?.name.is_none() {
            return Err(EINVAL);
        }
        let most = (backlog.max(1) as usize).min(MAX_BACKLOG);
        if let Some(s) = self.socks.get_mut(&id) {
            s.listening = Some(most);
            s.owner = owner;
        }
        Ok(())
    }

    pub fn is_listening(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.listening.is_some())
    }

    pub fn name_of(&self, id: usize) -> Option<&Name> {
        self.socks.get(&id).and_then(|s| s.name.as_ref())
    }

    /// Where a connection to `name` goes: its listener's id. ENOENT when
    /// no socket has the name (Linux: no such file, or ECONNREFUSED for
    /// an abstract one), then as [`Self::accepting`] says.
    pub fn listener(&self, name: &Name, packets: bool) -> Result<usize, i64> {
        self.accepting(self.named(name)?, packets)
    }

    /// The socket that has `name`, listening or not: ENOENT or
    /// ECONNREFUSED when none does, as [`Self::listener`] says.
    pub fn named(&self, name: &Name) -> Result<usize, i64> {
        // A client to ::1 reaches the socket that took the port's IPv6
        // side, one to 127.0.0.1 (or IPv4 mapped into IPv6) its IPv4
        // side ([`Self::keys_of`]).
        let found = match name {
            Name::Inet(n) => self.names.get(&side_key(n.port, n.reaches_v6())),
            _ => self.names.get(&name.key()),
        };
        match found {
            Some(&id) => Ok(id),
            None => Err(match name {
                Name::Path(_) if !self.former.contains(name) => ENOENT,
                _ => ECONNREFUSED,
            }),
        }
    }

    /// Whether path `name` (outside the tmpfs, where no socket file is
    /// made) stands for a socket file Linux would have: a socket's here,
    /// or one closed since (a stale file, which an unlink removes).
    pub fn has_path(&self, name: &Name) -> bool {
        matches!(name, Name::Path(_))
            && (self.names.contains_key(name) || self.former.contains(name))
    }

    /// unlink of path `name` outside the tmpfs: the socket file it stands
    /// for goes. A socket bound to it keeps it as its own name
    /// (getsockname), but no connect finds it, as on Linux once the file
    /// is removed. Whether there was one.
    pub fn unlink_path(&mut self, name: &Name) -> bool {
        if !matches!(name, Name::Path(_)) {
            return false;
        }
        if let Some(id) = self.names.remove(name) {
            if let Some(s) = self.socks.get_mut(&id) {
                s.unlinked = true;
            }
            return true;
        }
        self.former.remove(name)
    }

    /// The socket whose name made tmpfs node `node`: ECONNREFUSED if it
    /// has closed, as a socket file with no socket is on Linux.
    pub fn at_node(&self, node: u64) -> Result<usize, i64> {
        self.nodes.get(&node).copied().ok_or(ECONNREFUSED)
    }

    /// Socket `id` if it takes a connection from a client of its type
    /// (`packets`: SOCK_SEQPACKET) now: EPROTOTYPE for the other type,
    /// ECONNREFUSED when it does not listen, EAGAIN when its backlog is
    /// full.
    pub fn accepting(&self, id: usize, packets: bool) -> Result<usize, i64> {
        let s = self.socks.get(&id).ok_or(ECONNREFUSED)?;
        if s.packets != packets || s.dgram.is_some() {
            return Err(EPROTOTYPE);
        }
        match s.listening {
            None => Err(ECONNREFUSED),
            Some(most) if s.waiting.len() >= most => Err(EAGAIN),
            Some(_) => Ok(id),
        }
    }

    /// The listener a connection to `name` goes to, `holder` being the
    /// socket [`Self::named`] found: with SO_REUSEPORT, the one of the
    /// port's sockets that listen with the fewest connections waiting
    /// (Linux spreads them by a hash of the addresses); else as
    /// [`Self::accepting`] says of `holder`.
    pub fn spread(&self, holder: usize, name: &Name, packets: bool) -> Result<usize, i64> {
        let group = match name {
            Name::Inet(n) => self.groups.get(&side_key(n.port, n.reaches_v6())),
            _ => None,
        };
        let Some(group) = group else {
            return self.accepting(holder, packets);
        };
        let best = group
            .iter()
            .filter(|&&m| self.accepting(m, packets).is_ok())
            .min_by_key(|&&m| self.socks.get(&m).map_or(0, |s| s.waiting.len()))
            .copied();
        best.map_or_else(|| self.accepting(holder, packets), Ok)
    }

    /// A connection for listener `id` to accept: the server end's pipes.
    pub fn queue(&mut self, id: usize, rx: usize, tx: usize, client: Option<Name>) {
        if let Some(s) = self.socks.get_mut(&id) {
            s.waiting.push_back((rx, tx, client));
        }
    }

    /// Whether listener `id` has a connection waiting.
    pub fn ready(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| !s.waiting.is_empty())
    }

    /// accept: the oldest connection waiting for `id`.
    pub fn accept(&mut self, id: usize) -> Option<(usize, usize, Option<Name>)> {
        self.socks.get_mut(&id)?.waiting.pop_front()
    }

    /// shutdown(SHUT_RD) of AF_UNIX socket `id`, neither connected nor
    /// listening.
    pub fn shut_reading(&mut self, id: usize) {
        if let Some(s) = self.socks.get_mut(&id) {
            s.read_shut = true;
        }
    }

    /// Whether [`Self::shut_reading`] was done to `id`.
    pub fn reading_shut(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.read_shut)
    }

    /// shutdown(SHUT_RD) of listener `id`: it takes no more connections
    /// (connects are refused, accept is EINVAL, as Linux's listener
    /// becomes a closed socket) and keeps its name. The connections it had
    /// waiting, whose pipes the kernel resets. Linux's AF_UNIX listener
    /// would still hand those out to accept; here they end for both
    /// families, as TCP's do.
    pub fn stop_listening(&mut self, id: usize) -> Vec<(usize, usize)> {
        let Some(s) = self.socks.get_mut(&id) else {
            return Vec::new();
        };
        s.listening = None;
        s.waiting.drain(..).map(|(rx, tx, _)| (rx, tx)).collect()
    }

    /// Socket `id` connected (its descriptor is a connection now) or
    /// closed: its name goes, and the connections it had waiting, whose
    /// pipes the kernel closes.
    pub fn close(&mut self, id: usize) -> Vec<(usize, usize)> {
        let Some(s) = self.socks.remove(&id) else {
            return Vec::new();
        };
        if let Some(node) = s.node {
            // The file stays; the socket it leads to is gone.
            self.nodes.remove(&node);
            return s.waiting.into_iter().map(|(rx, tx, _)| (rx, tx)).collect();
        }
        if let Some(n) = s.name {
            for key in keys(&n, s.v6only) {
                // A port shared by SO_REUSEPORT stays the others'.
                let mut next = None;
                if let Some(g) = self.groups.get_mut(&key) {
                    g.retain(|&m| m != id);
                    next = g.first().copied();
                    if g.len() <= 1 {
                        self.groups.remove(&key);
                    }
                }
                if self.names.get(&key) == Some(&id) {
                    match next {
                        Some(other) => self.names.insert(key, other),
                        None => self.names.remove(&key),
                    };
                }
            }
            if matches!(n, Name::Path(_)) && !s.unlinked {
                if self.former.len() >= 4096 {
                    self.former.clear();
                }
                self.former.insert(n);
            }
        }
        s.waiting.into_iter().map(|(rx, tx, _)| (rx, tx)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Name {
        Name::Path(p.as_bytes().to_vec())
    }

    #[test]
    fn an_unlinked_path_name_is_found_by_no_one_and_bound_again() {
        let mut u = UnixSockets::default();
        u.open(1);
        u.bind(1, Some(path("/srv/s"))).unwrap();
        u.listen(1, 1, 0).unwrap();
        assert!(u.has_path(&path("/srv/s")));
        assert!(u.unlink_path(&path("/srv/s")));
        assert!(!u.has_path(&path("/srv/s")));
        assert_eq!(u.listener(&path("/srv/s"), false), Err(ENOENT));
        assert_eq!(u.name_of(1), Some(&path("/srv/s")), "still its own name");
        u.open(2);
        u.bind(2, Some(path("/srv/s"))).unwrap();
        // The first closing leaves the second's name, and no stale one.
        u.close(1);
        assert_eq!(u.named(&path("/srv/s")), Ok(2));
        u.close(2);
        assert!(u.has_path(&path("/srv/s")), "a stale socket file");
        assert_eq!(u.named(&path("/srv/s")), Err(ECONNREFUSED));
        assert!(u.unlink_path(&path("/srv/s")));
        assert_eq!(u.named(&path("/srv/s")), Err(ENOENT));
        assert!(!u.unlink_path(&path("/srv/s")));
    }

    #[test]
    fn sockets_with_so_reuseport_share_a_port() {
        use crate::inet::{Addr, InetName};
        let at = |port| {
            Name::Inet(InetName {
                port,
                addr: Addr::Loopback4,
            })
        };
        let mut u = UnixSockets::default();
        for id in 1..=4 {
            u.open(id);
            u.socks.get_mut(&id).unwrap().inet = Some(false);
        }
        u.set_reuseport(1, true);
        u.set_reuseport(2, true);
        u.bind(1, Some(at(5000))).unwrap();
        // Without it on both, EADDRINUSE.
        assert_eq!(u.bind(3, Some(at(5000))), Err(EADDRINUSE));
        u.bind(2, Some(at(5000))).unwrap();
        u.set_reuseport(4, true);
        u.bind(4, Some(at(5000))).unwrap();
        u.listen(1, 8, 0).unwrap();
        u.listen(2, 8, 0).unwrap();
        // 4 does not listen: connections go to 1 and 2, the less busy.
        let holder = u.named(&at(5000)).unwrap();
        assert_eq!(holder, 1);
        assert_eq!(u.spread(holder, &at(5000), false), Ok(1));
        u.queue(1, 10, 11, None);
        assert_eq!(u.spread(holder, &at(5000), false), Ok(2));
        // The first closing leaves the port to the others.
        u.close(1);
        let holder = u.named(&at(5000)).unwrap();
        assert_eq!(holder, 2);
        assert_eq!(u.spread(holder, &at(5000), false), Ok(2));
        u.close(2);
        u.close(4);
        assert_eq!(u.named(&at(5000)), Err(ECONNREFUSED));
        u.bind(3, Some(at(5000))).unwrap();
    }

    #[test]
    fn a_listener_takes_connections_in_order_up_to_its_backlog() {
        let mut u = UnixSockets::default();
        u.open(1);
        assert_eq!(u.listener(&path("/tmp/s"), false), Err(ENOENT));
        u.bind(1, Some(path("/tmp/s"))).unwrap();
        assert_eq!(
            u.listener(&path("/tmp/s"), false),
            Err(ECONNREFUSED),
            "not listening"
        );
        u.listen(1, 2, 0).unwrap();
        assert_eq!(u.listener(&path("/tmp/s"), false), Ok(1));
        assert_eq!(
            u.listener(&path("/tmp/s"), true),
            Err(EPROTOTYPE),
            "a SOCK_SEQPACKET client of a stream listener"
        );
        assert!(!u.ready(1));
        u.queue(1, 10, 11, None);
        u.queue(1, 12, 13, Some(Name::Abstract(b"c".to_vec())));
        assert_eq!(
            u.listener(&path("/tmp/s"), false),
            Err(EAGAIN),
            "backlog full"
        );
        assert!(u.ready(1));
        assert_eq!(u.accept(1), Some((10, 11, None)));
        assert_eq!(u.accept(1).map(|c| c.0), Some(12));
        assert_eq!(u.accept(1), None);
    }

    #[test]
    fn names_are_unique_and_go_with_their_socket() {
        let mut u = UnixSockets::default();
        u.open(1);
        u.open(2);
        u.bind(1, Some(Name::Abstract(b"x".to_vec()))).unwrap();
        assert_eq!(
            u.bind(2, Some(Name::Abstract(b"x".to_vec()))),
            Err(EADDRINUSE)
        );
        assert_eq!(u.bind(1, Some(path("/a"))), Err(EINVAL), "bound already");
        u.listen(1, 5, 0).unwrap();
        u.queue(1, 7, 8, None);
        assert_eq!(u.close(1), vec![(7, 8)]);
        u.bind(2, Some(path("/p"))).unwrap();
        u.close(2);
        assert_eq!(
            u.listener(&path("/p"), false),
            Err(ECONNREFUSED),
            "its file would stay"
        );
        u.open(2);
        assert_eq!(
            u.listener(&Name::Abstract(b"x".to_vec()), false),
            Err(ECONNREFUSED)
        );
        u.bind(2, Some(Name::Abstract(b"x".to_vec()))).unwrap();
    }

    #[test]
    fn datagram_sockets_send_to_their_kind_and_respect_connections() {
        let mut u = UnixSockets::default();
        u.open_dgram(1);
        u.open_dgram(2);
        u.open_dgram(3);
        u.open(4);
        u.bind(1, Some(path("/s"))).unwrap();
        u.bind(4, Some(path("/stream"))).unwrap();
        u.listen(4, 1, 0).unwrap();
        assert_eq!(u.named(&path("/s")), Ok(1));
        assert_eq!(u.may_send(2, 1), Ok(1));
        assert_eq!(u.may_send(2, 4), Err(EPROTOTYPE), "a stream listener");
        assert_eq!(
            u.listener(&path("/s"), false),
            Err(EPROTOTYPE),
            "a stream client of a datagram socket"
        );
        // 1 connected to 2 takes messages from 2 only.
        u.dgram_connect(1, Some(2));
        assert_eq!(u.may_send(2, 1), Ok(1));
        assert_eq!(u.may_send(3, 1), Err(1), "EPERM: connected to 2");
        u.dgram_connect(3, Some(1));
        assert_eq!(u.dgram_peer(3), Some((1, Some(path("/s")))));
        u.dgram_connect(1, None);
        assert_eq!(u.may_send(3, 1), Ok(1));
        // Closed: its name refuses, and so does its id.
        u.close(1);
        assert_eq!(u.may_send(3, 1), Err(ECONNREFUSED));
        assert_eq!(u.named(&path("/s")), Err(ECONNREFUSED));
        assert!(u.is_dgram(2) && !u.is_dgram(4) && !u.is_dgram(1));
    }

    #[test]
    fn a_bind_without_a_name_gives_an_abstract_one() {
        let mut u = UnixSockets::default();
        u.open(3);
        assert_eq!(u.listen(3, 0, 0), Err(EINVAL), "unbound");
        u.bind(3, None).unwrap();
        u.listen(3, 0, 0).unwrap();
        let name = u.name_of(3).cloned().unwrap();
        assert!(matches!(&name, Name::Abstract(a) if a.len() == 5));
        assert_eq!(u.listener(&name, false), Ok(3));
    }

    #[test]
    fn ports_are_names_whatever_the_family() {
        use crate::inet::{Addr, InetName};
        let at = |port, addr| Name::Inet(InetName { port, addr });
        let mut u = UnixSockets::default();
        u.open(1);
        u.open(2);
        u.open(3);
        u.bind(1, Some(at(8080, Addr::Any6))).unwrap();
        u.listen(1, 5, 0).unwrap();
        // An IPv4 connection reaches the IPv6 listener; the port is taken.
        assert_eq!(u.listener(&at(8080, Addr::Loopback4), false), Ok(1));
        assert_eq!(u.bind(2, Some(at(8080, Addr::Loopback4))), Err(EADDRINUSE));
        assert_eq!(
            u.listener(&at(8081, Addr::Loopback4), false),
            Err(ECONNREFUSED)
        );
        // Port 0: one of the ephemeral range, a different one each time.
        u.bind(2, Some(at(0, Addr::Any4))).unwrap();
        u.bind(3, Some(at(0, Addr::Loopback4))).unwrap();
        let port = |id| match u.name_of(id) {
            Some(Name::Inet(n)) => n.port,
            _ => 0,
        };
        assert!(crate::inet::EPHEMERAL.contains(&port(2)));
        assert_ne!(port(2), port(3));
        u.close(1);
        assert_eq!(
            u.listener(&at(8080, Addr::Loopback6), false),
            Err(ECONNREFUSED)
        );
    }

    #[test]
    fn a_v6_only_socket_shares_its_port_with_ipv4() {
        use crate::inet::{Addr, InetName};
        let at = |port, addr| Name::Inet(InetName { port, addr });
        let mut u = UnixSockets::default();
        u.open_inet(1, false);
        u.open_inet(2, true);
        u.open_inet(3, true);
        u.set_v6only(2, true);
        u.bind(1, Some(at(8080, Addr::Any4))).unwrap();
        u.bind(2, Some(at(8080, Addr::Any6))).unwrap();
        assert_eq!(
            u.bind(3, Some(at(8080, Addr::Any6))),
            Err(EADDRINUSE),
            "both families taken"
        );
        u.listen(1, 5, 0).unwrap();
        u.listen(2, 5, 0).unwrap();
        assert_eq!(u.listener(&at(8080, Addr::Loopback4), false), Ok(1));
        assert_eq!(u.listener(&at(8080, Addr::Loopback6), false), Ok(2));
        u.close(2);
        assert_eq!(
            u.listener(&at(8080, Addr::Loopback6), false),
            Err(ECONNREFUSED),
            "an IPv4 listener takes no IPv6 client"
        );
        u.bind(3, Some(at(8080, Addr::Any6))).unwrap_err();
        u.close(1);
        u.bind(3, Some(at(8080, Addr::Any6))).unwrap();
        u.listen(3, 5, 0).unwrap();
        assert_eq!(
            u.listener(&at(8080, Addr::Loopback4), false),
            Ok(3),
            "dual stack"
        );
    }

    #[test]
    fn loopbacks_of_the_two_families_are_apart() {
        use crate::inet::{Addr, InetName};
        let at = |port, addr| Name::Inet(InetName { port, addr });
        let mut u = UnixSockets::default();
        for id in 1..=5 {
            u.open_inet(id, id % 2 == 0);
        }
        // 127.0.0.1 and ::1 on one port: two sockets, each its clients.
        u.bind(1, Some(at(9000, Addr::Loopback4))).unwrap();
        u.bind(2, Some(at(9000, Addr::Loopback6))).unwrap();
        u.listen(1, 5, 0).unwrap();
        u.listen(2, 5, 0).unwrap();
        assert_eq!(u.listener(&at(9000, Addr::Loopback4), false), Ok(1));
        assert_eq!(u.listener(&at(9000, Addr::Mapped4), false), Ok(1));
        assert_eq!(u.listener(&at(9000, Addr::Loopback6), false), Ok(2));
        // A wildcard covers its family's loopback, IPv6's both.
        assert_eq!(u.bind(3, Some(at(9000, Addr::Any4))), Err(EADDRINUSE));
        assert_eq!(u.bind(4, Some(at(9000, Addr::Any6))), Err(EADDRINUSE));
        u.close(2);
        assert_eq!(
            u.bind(4, Some(at(9000, Addr::Any6))),
            Err(EADDRINUSE),
            "IPv4's side is still 1's"
        );
        u.set_v6only(4, true);
        u.bind(4, Some(at(9000, Addr::Any6))).unwrap();
        u.close(1);
        assert_eq!(
            u.listener(&at(9000, Addr::Loopback4), false),
            Err(ECONNREFUSED)
        );
        u.bind(3, Some(at(9000, Addr::Any4))).unwrap();
        assert_eq!(u.bind(5, Some(at(9000, Addr::Loopback4))), Err(EADDRINUSE));
    }

    #[test]
    fn addresses_parse_as_linux_reads_them() {
        assert_eq!(parse_sockaddr(&[1, 0]), Ok(None));
        assert_eq!(
            parse_sockaddr(b"\x01\x00/tmp/s\0junk"),
            Ok(Some(SockAddr::Path(b"/tmp/s".to_vec())))
        );
        assert_eq!(
            parse_sockaddr(b"\x01\x00\0ab\0c"),
            Ok(Some(SockAddr::Abstract(b"ab\0c".to_vec())))
        );
        assert_eq!(parse_sockaddr(b"\x02\x00/x"), Err(EINVAL));
        assert_eq!(parse_sockaddr(&[1]), Err(EINVAL));
        assert_eq!(path("/tmp/s").sockaddr(), b"\x01\x00/tmp/s\0".to_vec());
        assert_eq!(
            Name::Abstract(b"q".to_vec()).sockaddr(),
            b"\x01\x00\0q".to_vec()
        );
    }
}
