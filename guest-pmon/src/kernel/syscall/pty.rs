//! Pseudo-terminals for processes: `/dev/ptmx` makes one (posix_openpt,
//! openpty), `/dev/pts/N` opens its slave once unlocked, and the ioctls
//! terminals answer (termios, window size, TIOCGPTN, TIOCSPTLCK,
//! TIOCGPTPEER, process groups, the controlling terminal). The line
//! discipline is [`pmon::pty`]'s; this is its plumbing: reads and writes
//! that wait, poll, signals for the foreground group, hang-ups.

use pmon::pty::{Pty, Raised, Read, Termios};
use pmon::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH};

use super::*;

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCNOTTY: u64 = 0x5422;
const TIOCGSID: u64 = 0x5429;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTPEER: u64 = 0x5441;
const O_NOCTTY: u32 = 0o400;
const ENOSPC: Errno = 28;
/// The major numbers of Linux's ptmx (5, 2) and of its slaves.
const PTS_MAJOR: u64 = 136;

impl Kernel {
    /// open of /dev/ptmx: a new pseudo-terminal, its slave locked until
    /// unlockpt; the descriptor is its master.
    pub(super) fn open_ptmx(&mut self, pid: Pid, flags: u32, cloexec: bool) -> Ret {
        let id = self.next_pipe;
        self.next_pipe += 1;
        let number = (0u32..).find(|n| !self.ptys.values().any(|(m, _)| m == n));
        let Some(number) = number else {
            return err(ENOSPC);
        };
        let mut pty = Pty::new();
        pty.owner.0 = self.procs.get(&pid).map_or(0, |p| p.cred.uid.fs);
        self.ptys.insert(id, (number, pty));
        let file = OpenFile::with_path(
            Kind::PtyMaster(id),
            O_RDWR | (flags & O_NONBLOCK),
            b"/dev/ptmx".to_vec(),
        );
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, cloexec, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.ptys.remove(&id);
                err(e)
            }
        }
    }

    /// The pseudo-terminal whose slave is /dev/pts/`number`.
    pub(super) fn pty_numbered(&self, number: u32) -> Option<usize> {
        self.ptys
            .iter()
            .find(|(_, (n, _))| *n == number)
            .map(|(&id, _)| id)
    }

    /// open of a slave: EIO while locked. A session leader without a
    /// terminal that opens one without O_NOCTTY takes it as its
    /// controlling terminal, as on Linux.
    pub(super) fn open_pty_slave(&mut self, pid: Pid, id: usize, flags: u32, cloexec: bool) -> Ret {
        let Some((number, pty)) = self.ptys.get_mut(&id) else {
            return err(ENOENT);
        };
        if pty.locked {
            return err(EIO);
        }
        pty.slaves += 1;
        pty.slave_opened = true;
        let path = alloc::format!("/dev/pts/{number}").into_bytes();
        let file = OpenFile::with_path(
            Kind::PtySlave(id),
            flags & (O_ACCMODE | O_NONBLOCK | O_APPEND),
            path,
        );
        if flags & O_NOCTTY == 0 {
            let _ = self.take_terminal(pid, id, false);
        }
        let installed = self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file.clone(), cloexec, 0));
        match installed {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.release_file(file);
                err(e)
            }
        }
    }

    /// Pseudo-terminal `id` becomes the controlling terminal of `pid`'s
    /// session (it must lead one, EPERM; one that has a terminal, or a
    /// terminal another session has, is refused unless `steal`), its
    /// group the foreground one.
    fn take_terminal(&mut self, pid: Pid, id: usize, steal: bool) -> Result<(), Errno> {
        let (sid, pgid) = self.procs.get(&pid).map(|p| (p.sid, p.pgid)).ok_or(ESRCH)?;
        if sid != pid {
            return Err(EPERM);
        }
        let has_one = self
            .ptys
            .iter()
            .any(|(&other, (_, p))| other != id && p.session == Some(sid));
        let pty = &mut self.ptys.get_mut(&id).ok_or(ENOTTY)?.1;
        match pty.session {
            Some(s) if s == sid => return Ok(()),
            Some(_) if !steal => return Err(EPERM),
            _ if has_one => return Err(EPERM),
            _ => {}
        }
        pty.session = Some(sid);
        pty.foreground = Some(pgid);
        Ok(())
    }

    /// A read of either end; Ok(None): wait. The master reads EIO once
    /// the slave has hung up and its output is read.
    pub(super) fn pty_read(
        &mut self,
        f: &OpenFile,
        id: usize,
        master: bool,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let Some((_, pty)) = self.ptys.get_mut(&id) else {
            return Err(EIO);
        };
        let got = if master {
            match pty.master_read(len) {
                Some(d) => Some(d),
                None if pty.slave_gone() => return Err(EIO),
                None => None,
            }
        } else {
            match pty.slave_read(len) {
                Read::Data(d) => Some(d),
                Read::End => Some(Vec::new()),
                Read::Wait => None,
            }
        };
        match got {
            Some(d) => {
                self.pty_changed(id);
                Ok(Some(d))
            }
            None if f.nonblocking() => Err(EAGAIN),
            None => Ok(None),
        }
    }

    /// A write of either end; Ok(None): wait for room. What the master
    /// types may raise signals for the foreground group; the slave of a
    /// terminal whose master is gone writes EIO.
    pub(super) fn pty_write(
        &mut self,
        f: &OpenFile,
        id: usize,
        master: bool,
        data: &[u8],
    ) -> Result<Option<usize>, Errno> {
        let Some((_, pty)) = self.ptys.get_mut(&id) else {
            return Err(EIO);
        };
        let (n, raised, foreground) = if master {
            let (n, raised) = pty.master_write(data);
            (n, raised, pty.foreground)
        } else {
            if pty.masters == 0 {
                return Err(EIO);
            }
            (pty.slave_write(data), Vec::new(), None)
        };
        if let Some(group) = foreground {
            for r in raised {
                let sig = match r {
                    Raised::Interrupt => SIGINT,
                    Raised::Quit => SIGQUIT,
                    Raised::Suspend => SIGTSTP,
                };
                self.signal_tty_group(group, sig);
            }
        }
        self.pty_changed(id);
        match n {
            0 if !data.is_empty() && f.nonblocking() => Err(EAGAIN),
            0 if !data.is_empty() => Ok(None),
            n => Ok(Some(n)),
        }
    }

    /// A terminal's signal (^C, hang-up, resize) to a process group.
    fn signal_tty_group(&mut self, group: Pid, sig: u32) {
        self.signal_group(group, SigInfo::user(sig, SI_KERNEL, 0));
    }

    /// Its readers, writers and pollers look again.
    fn pty_changed(&mut self, id: usize) {
        *self.pipe_generation.entry(id).or_insert(0) += 1;
        self.wake_all(Wait::Pipe(id));
    }

    /// What poll sees: (readable, writable, hung up).
    pub(super) fn pty_ready(&self, id: usize, master: bool) -> (bool, bool, bool) {
        let Some((_, p)) = self.ptys.get(&id) else {
            return (true, true, true);
        };
        if master {
            (p.master_readable(), p.master_writable(), p.slave_gone())
        } else {
            let hup = p.masters == 0;
            (p.slave_readable(), p.slave_writable() || hup, hup)
        }
    }

    /// The last descriptor of one end closed. The master's hangs the
    /// terminal up: its foreground group gets SIGHUP, and the slave reads
    /// the end of the file; the slave's is read as EIO by the master.
    pub(in crate::kernel) fn close_pty(&mut self, id: usize, master: bool) {
        let Some((_, p)) = self.ptys.get_mut(&id) else {
            return;
        };
        let hangup = if master {
            p.masters = p.masters.saturating_sub(1);
            (p.masters == 0).then_some(p.foreground).flatten()
        } else {
            p.slaves = p.slaves.saturating_sub(1);
            None
        };
        let gone = p.masters == 0 && p.slaves == 0;
        if let Some(group) = hangup {
            self.signal_tty_group(group, SIGHUP);
        }
        self.pty_changed(id);
        if gone {
            self.ptys.remove(&id);
            self.pipe_generation.remove(&id);
        }
    }

    /// struct stat's mode, rdev and inode of either end.
    pub(super) fn pty_stat(&self, id: usize, master: bool) -> (u32, u64, u64) {
        let (number, perm) = self
            .ptys
            .get(&id)
            .map_or((0, 0o620), |(n, p)| (*n as u64, p.perm));
        if master {
            (S_IFCHR | 0o666, (5 << 8) | 2, 0x6000 + id as u64)
        } else {
            (S_IFCHR | perm, (PTS_MAJOR << 8) | number, 0x6800 + number)
        }
    }

    /// The owner and group of a terminal's slave (the master's are root's).
    pub(super) fn pty_owner(&self, id: usize, master: bool) -> (u32, u32) {
        match self.ptys.get(&id) {
            Some((_, p)) if !master => p.owner,
            _ => (0, 0),
        }
    }

    /// The terminal whose slave chown or chmod names: by a descriptor of
    /// it (`path` None) or by /dev/pts/N; None for any other file.
    pub(super) fn pty_target(
        &mut self,
        pid: Pid,
        named: &super::tmp::Named,
        follow: bool,
    ) -> Option<Result<usize, Errno>> {
        let full = match named {
            super::tmp::Named::Fd(fd) => {
                return match self.file(pid, *fd) {
                    Ok(f) => match f.kind {
                        Kind::PtySlave(id) => Some(Ok(id)),
                        _ => None,
                    },
                    Err(_) => None,
                };
            }
            super::tmp::Named::Path(full) => self.shown(pid, full),
        };
        let (_, name) = if follow {
            self.lookup_follow(pid, AT_FDCWD, &full).ok()?
        } else {
            self.lookup(pid, AT_FDCWD, &full).ok()?
        };
        match name {
            pmon::path::Name::Pts(n) => Some(self.pty_numbered(n).ok_or(ENOENT)),
            _ => None,
        }
    }

    /// The ioctls of a terminal.
    pub(super) fn pty_ioctl(
        &mut self,
        pid: Pid,
        id: usize,
        master: bool,
        req: u64,
        arg: u64,
    ) -> Ret {
        let Some((number, pty)) = self.ptys.get_mut(&id) else {
            return err(EIO);
        };
        let number = *number;
        match req {
            TCGETS => {
                let t = if master {
                    pty.master_termios
                } else {
                    pty.termios
                };
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &t.to_bytes()))
                    .map(|_| 0))
            }
            TCSETS | TCSETSW | TCSETSF => {
                let bytes = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, arg, 36))
                {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                let mut raw = [0u8; 36];
                raw.copy_from_slice(&bytes);
                let t = Termios::from_bytes(&raw);
                if let Some((_, pty)) = self.ptys.get_mut(&id) {
                    if master {
                        pty.master_termios = t;
                    } else {
                        if req == TCSETSF {
                            pty.flush_input();
                        }
                        pty.set_termios(t);
                    }
                }
                self.pty_changed(id);
                Ret::Val(0)
            }
            TIOCGWINSZ => {
                let bytes: Vec<u8> = pty.winsize.iter().flat_map(|v| v.to_le_bytes()).collect();
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &bytes))
                    .map(|_| 0))
            }
            TIOCSWINSZ => {
                let bytes = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, arg, 8))
                {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                let mut size = [0u16; 4];
                for (i, v) in size.iter_mut().enumerate() {
                    *v = u16::from_le_bytes([bytes[i * 2], bytes[i * 2 + 1]]);
                }
                let Some((_, pty)) = self.ptys.get_mut(&id) else {
                    return err(EIO);
                };
                let changed = pty.winsize != size;
                pty.winsize = size;
                if let (true, Some(group)) = (changed, pty.foreground) {
                    self.signal_tty_group(group, SIGWINCH);
                }
                Ret::Val(0)
            }
            TIOCGPTN if master => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, arg, number))
                .map(|_| 0)),
            TIOCSPTLCK if master => {
                let lock = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v != 0,
                    Err(e) => return err(e),
                };
                if let Some((_, pty)) = self.ptys.get_mut(&id) {
                    pty.locked = lock;
                }
                Ret::Val(0)
            }
            // The slave opened from its master (openpty's way), with
            // open's flags.
            TIOCGPTPEER if master => {
                let flags = arg as u32;
                self.open_pty_slave(pid, id, flags & !O_CLOEXEC, flags & O_CLOEXEC != 0)
            }
            FIONREAD | TIOCOUTQ => {
                let n = if master == (req == FIONREAD) {
                    pty.master_pending()
                } else {
                    pty.slave_pending()
                };
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, n as u32))
                    .map(|_| 0))
            }
            TCFLSH => {
                // 0: input, 1: output, 2: both (of the slave's view).
                match arg {
                    0 => pty.flush_input(),
                    1 => pty.flush_output(),
                    2 => {
                        pty.flush_input();
                        pty.flush_output();
                    }
                    _ => return err(EINVAL),
                }
                self.pty_changed(id);
                Ret::Val(0)
            }
            TCSBRK | TCXONC => Ret::Val(0),
            TIOCSCTTY => val(self.take_terminal(pid, id, arg == 1).map(|_| 0)),
            TIOCNOTTY => {
                let sid = self.procs.get(&pid).map_or(0, |p| p.sid);
                if pty.session != Some(sid) {
                    return err(ENOTTY);
                }
                pty.session = None;
                pty.foreground = None;
                Ret::Val(0)
            }
            TIOCGPGRP | TIOCGSID => {
                let sid = self.procs.get(&pid).map_or(0, |p| p.sid);
                // Only for the caller's own terminal, as Linux.
                if !master && pty.session != Some(sid) {
                    return err(ENOTTY);
                }
                let v = if req == TIOCGPGRP {
                    pty.foreground.unwrap_or(0)
                } else {
                    match pty.session {
                        Some(s) => s,
                        None => return err(ENOTTY),
                    }
                };
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, v))
                    .map(|_| 0))
            }
            TIOCSPGRP => {
                let group = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, arg)) {
                    Ok(v) => v,
                    Err(e) => return err(e),
                };
                let sid = self.procs.get(&pid).map_or(0, |p| p.sid);
                if self.ptys.get(&id).and_then(|(_, p)| p.session) != Some(sid) {
                    return err(ENOTTY);
                }
                if !self.procs.values().any(|p| p.pgid == group && p.sid == sid) {
                    return err(EPERM);
                }
                if let Some((_, pty)) = self.ptys.get_mut(&id) {
                    pty.foreground = Some(group);
                }
                Ret::Val(0)
            }
            _ => err(ENOTTY),
        }
    }
}
