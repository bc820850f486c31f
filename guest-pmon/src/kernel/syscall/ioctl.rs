//! ioctl: terminals, sockets' interface requests and the file ioctls Lego
//! serves, each checked as Linux checks it.

use super::*;

impl Kernel {
    /// An interface ioctl on a socket (`pmon::ifreq`): SIOCGIFCONF's
    /// `struct ifconf` at `arg`, or the `struct ifreq` there, read whole
    /// and written back whole, as Linux copies it.
    pub(super) fn interface_ioctl(&mut self, pid: Pid, req: u64, arg: u64) -> Result<i64, Errno> {
        use pmon::ifreq;
        let s = self.space_mut(pid)?;
        if req == ifreq::SIOCGIFCONF {
            let mut conf = [0u8; ifreq::IFCONF];
            uaccess::read(s, arg, &mut conf)?;
            let len = i32::from_le_bytes([conf[0], conf[1], conf[2], conf[3]]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&conf[8..16]);
            let buf = u64::from_le_bytes(at);
            let (records, len) = ifreq::conf(buf != 0, len);
            if !records.is_empty() {
                uaccess::write(s, buf, &records)?;
            }
            uaccess::write_u32(s, arg, len as u32)?;
            return Ok(0);
        }
        let mut ifr = [0u8; ifreq::IFREQ];
        uaccess::read(s, arg, &mut ifr)?;
        ifreq::answer(req, &mut ifr)?;
        uaccess::write(s, arg, &ifr)?;
        Ok(0)
    }

    pub(super) fn sys_ioctl(&mut self, tid: Tid, pid: Pid, fd: i64, req: u64, arg: u64) -> Ret {
        const TCGETS: u64 = 0x5401;
        const TIOCGWINSZ: u64 = 0x5413;
        const TIOCGPGRP: u64 = 0x540f;
        const FIONREAD: u64 = 0x541b;
        const SIOCOUTQ: u64 = 0x5411;
        // Whether the next read starts at the urgent mark.
        const SIOCATMARK: u64 = 0x8905;
        const FIONBIO: u64 = 0x5421;
        const FIOCLEX: u64 = 0x5451;
        const FIONCLEX: u64 = 0x5450;
        const FIOASYNC: u64 = 0x5452;
        const RNDGETENTCNT: u64 = 0x8004_5200;
        const RNDADDTOENTCNT: u64 = 0x4004_5201;
        const RNDADDENTROPY: u64 = 0x4008_5203;
        const RNDZAPENTCNT: u64 = 0x5204;
        const RNDCLEARPOOL: u64 = 0x5206;
        const RNDRESEEDCRNG: u64 = 0x5207;
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let _ = tid;
        if let (Kind::PtyMaster(id) | Kind::PtySlave(id), false) = (
            f.kind,
            matches!(req, FIONBIO | FIOCLEX | FIONCLEX | FIOASYNC),
        ) {
            let master = matches!(f.kind, Kind::PtyMaster(_));
            return self.pty_ioctl(pid, id, master, req, arg);
        }
        match (req, f.kind) {
            (TCGETS | TIOCGWINSZ, Kind::Stdio(n, run)) => {
                let size = if req == TCGETS { 60 } else { 8 };
                let mut buf = alloc::vec![0u8; size];
                let r = host::ioctl(run, n, req, &mut buf);
                if r < 0 {
                    return Ret::Val(r);
                }
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &buf).map(|_| 0)))
            }
            (TIOCGPGRP, Kind::Stdio(..)) => err(ENOTTY),
            // random(4)'s ioctls: the entropy count (RNDGETENTCNT) is a
            // full pool's, as a Linux 5.18+ kernel that has been seeded
            // says; those that feed or reset the pool take CAP_SYS_ADMIN
            // and change nothing (the pool is the host's).
            (RNDGETENTCNT, Kind::DevUrandom) => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, arg, 256).map(|_| 0))),
            (
                RNDADDTOENTCNT | RNDADDENTROPY | RNDZAPENTCNT | RNDCLEARPOOL | RNDRESEEDCRNG,
                Kind::DevUrandom,
            ) => {
                let admin = self
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.cred.capable(pmon::caps::SYS_ADMIN));
                if !admin {
                    return err(EPERM);
                }
                if !matches!(req, RNDADDTOENTCNT | RNDADDENTROPY) {
                    return Ret::Val(0);
                }
                // The count (and RNDADDENTROPY's struct rand_pool_info: the
                // count, the buffer's size, the buffer) is read as Linux
                // reads it: EFAULT, or EINVAL for a negative number.
                let space = match self.space_mut(pid) {
                    Ok(s) => s,
                    Err(e) => return err(e),
                };
                let count = match uaccess::read_u32(space, arg) {
                    Ok(c) => c as i32,
                    Err(e) => return err(e),
                };
                if count < 0 {
                    return err(EINVAL);
                }
                if req == RNDADDENTROPY {
                    let size = match uaccess::read_u32(space, arg + 4) {
                        Ok(n) => n as i32,
                        Err(e) => return err(e),
                    };
                    if size < 0 {
                        return err(EINVAL);
                    }
                    if let Err(e) = uaccess::read_vec(space, arg + 8, (size as usize).min(1 << 16))
                    {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            // The interface ioctls on a socket (if_indextoname,
            // if_nametoindex, ifconfig): the one interface, lo.
            (
                req,
                Kind::Socket(..)
                | Kind::Unix(_)
                | Kind::UnixDgram(_)
                | Kind::Dgram(_)
                | Kind::Netlink(_),
            ) if pmon::ifreq::is_interface_request(req) => val(self.interface_ioctl(pid, req, arg)),
            (FIONREAD, Kind::Inotify(id)) => {
                let n = self.inotifies.get(&id).map_or(0, |i| i.pending_bytes()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            // (A FIFO open for reading and writing is a Socket whose two
            // pipes are one: no socket to ask.)
            (SIOCATMARK, Kind::Unix(id)) if self.unix.inet(id).is_some() => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, arg, 0).map(|_| 0))),
            (SIOCATMARK, Kind::Socket(id, tx)) if id != tx => {
                let at = self.pipes.get(&id).is_some_and(|p| p.at_mark()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, at).map(|_| 0)))
            }
            // A pipe's write end says what its read end would (Linux
            // answers the same on both).
            (
                FIONREAD,
                Kind::PipeRead(id)
                | Kind::PipeWrite(id)
                | Kind::Socket(id, _)
                | Kind::UnixDgram(id),
            ) => {
                let n = self.pipes.get(&id).map_or(0, |p| p.pending()) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            // Bytes sent and not yet taken by the peer: on the loopback a
            // TCP connection's are acknowledged at once (Linux counts
            // unacknowledged bytes), an AF_UNIX socket's wait in its
            // peer's queue.
            (SIOCOUTQ, Kind::Socket(rx, tx)) if rx != tx => {
                let tcp = self.pipes.get(&rx).is_some_and(|p| p.tcp);
                let n = if tcp {
                    0
                } else {
                    self.pipes.get(&tx).map_or(0, |p| p.pending()) as u32
                };
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n).map(|_| 0)))
            }
            (FIONBIO, _) => {
                let on = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v != 0,
                    Err(e) => return err(e),
                };
                let flags = f.flags.get();
                f.flags.set(if on {
                    flags | O_NONBLOCK
                } else {
                    flags & !O_NONBLOCK
                });
                Ret::Val(0)
            }
            (FIOASYNC, _) => {
                let on = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v != 0,
                    Err(e) => return err(e),
                };
                self.set_async(&f, fd, on);
                Ret::Val(0)
            }
            (FIOCLEX | FIONCLEX, _) => val(self
                .proc_mut(pid)
                .and_then(|p| p.fds.set_cloexec(fd, req == FIOCLEX))
                .map(|_| 0)),
            // random(4) answers what it does not know with EINVAL.
            (_, Kind::DevUrandom) => err(EINVAL),
            _ => err(ENOTTY),
        }
    }
}
