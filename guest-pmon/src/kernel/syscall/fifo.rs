//! Named pipes (mkfifo, mknod with S_IFIFO) in the tmpfs: the node is the
//! tmpfs's, its bytes go through one of the kernel's pipes, made at the
//! first open and gone when the last end closes (as Linux's pipe inode).
//!
//! Linux's open of a FIFO waits for the other end; here the open returns
//! at once and the first read (or write) waits instead, until a writer (or
//! reader) has it open, which is what a program sees either way unless it
//! times the open. An end opened so and made non-blocking afterwards (Go
//! opens FIFOs blocking, then polls them) says EAGAIN until the other end
//! came, as Linux's open would not have returned yet: before, its reader
//! saw the end of the file at once (Go's os test `TestFifoEOF` hung).
//! Opened O_NONBLOCK: a reader's reads see the end of the file while no
//! writer has it open, and poll reports nothing until one came; a
//! writer's open fails with ENXIO while no reader does. O_RDWR never
//! waits (both ends at once, as on Linux).
//!
//! Known difference: whether reads wait for a writer is the pipe's, not
//! each open's. A reader that saw the end of the file waits again once a
//! second reader opens the pipe with no writer, where Linux keeps giving
//! it the end of the file (likewise for writers and EPIPE).
//! On storage a named pipe is a node with its name, mode and times (what
//! stat, getdents, rename and unlink see, and what survives a restart);
//! its bytes go through a pipe of the processor that opens it, as the
//! storage component keeps no open files. Decided: ends opened on two
//! processors are two pipes (Linux has one machine); a program and its
//! children share a processor.

use pmon::pipe::Pipe;

use super::*;

const S_IFMT: u64 = 0o170000;
const S_IFREG: u64 = 0o100000;
const S_IFIFO_MODE: u64 = 0o010000;
pub(super) const S_IFSOCK_MODE: u64 = 0o140000;

impl Kernel {
    /// mknod and mknodat: named pipes, sockets' files and regular files
    /// anywhere a file may be made (the tmpfs, storage); devices are
    /// EPERM, as for a process without CAP_MKNOD.
    pub(super) fn sys_mknodat(&mut self, pid: Pid, dirfd: i64, path: u64, mode: u64) -> Ret {
        if let Err(e) = self.check_last_name(pid, dirfd, path, super::tmp::NameUse::MakeOther) {
            return err(e);
        }
        match self.path_arg(pid, dirfd, path) {
            Ok(full) => self.mknod_at(pid, full, mode),
            Err(e) => err(e),
        }
    }

    /// mknod of `full` (resolved); made again where storage's links on
    /// the way lead off it (a directory linked into /tmp).
    fn mknod_at(&mut self, pid: Pid, full: Vec<u8>, mode: u64) -> Ret {
        let perm = mode as u32 & 0o7777 & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
        let made = match mode & S_IFMT {
            0 | S_IFREG => self.make_regular(pid, &full, perm),
            // A socket's file no socket has (a connect to it is refused),
            // as Linux lets anyone make.
            kind @ (S_IFIFO_MODE | S_IFSOCK_MODE) => {
                val(self.make_node(pid, &full, kind, perm).map(|_| 0))
            }
            0o020000 | 0o060000 => return err(EPERM),
            _ => return err(EINVAL),
        };
        self.or_off_storage(pid, &full, made, |k, full| k.mknod_at(pid, full, mode))
    }

    /// A new empty regular file at `full` (EEXIST if the name is taken).
    fn make_regular(&mut self, pid: Pid, full: &[u8], perm: u32) -> Ret {
        if self.on_storage(full) {
            let head = lego_proto::storage::StoreRequest {
                op: lego_proto::storage::OP_CREATE,
                flags: lego_proto::storage::FLAG_CREATE | lego_proto::storage::FLAG_EXCL,
                mode: perm,
                now: self.realtime_ns(),
                ..Default::default()
            };
            return val(self.store_make_new(head, full, &[], full).map(|_| 0));
        }
        if self.tmp_node(full).is_some() || host::stat_path(full, false).is_ok() {
            return err(EEXIST);
        }
        let Some(rel) = self.tmp_new_name(full) else {
            return err(self.cannot_make(full));
        };
        let now = self.realtime_ns();
        self.tmp_made_by(pid);
        val(self.tmp.create(rel, perm, true, now).map(|_| 0))
    }

    /// A named pipe or a socket's file (`kind`, S_IFIFO or S_IFSOCK) at
    /// `full`, in the tmpfs or on storage: its node (EEXIST if the name
    /// is taken).
    pub(super) fn make_node(
        &mut self,
        pid: Pid,
        full: &[u8],
        kind: u64,
        perm: u32,
    ) -> Result<SpecialNode, Errno> {
        if self.on_storage(full) {
            let head = lego_proto::storage::StoreRequest {
                op: lego_proto::storage::OP_MKNOD,
                mode: kind as u32 | perm,
                now: self.realtime_ns(),
                ..Default::default()
            };
            return self
                .store_make_new(head, full, &[], full)
                .map(|a| SpecialNode::Store(a.stat.ino));
        }
        if self.tmp_node(full).is_some() || host::stat_path(full, false).is_ok() {
            return Err(EEXIST);
        }
        let Some(rel) = self.tmp_new_name(full) else {
            return Err(self.cannot_make(full));
        };
        let now = self.realtime_ns();
        self.tmp_made_by(pid);
        let made = if kind == S_IFSOCK_MODE {
            self.tmp.mksock(rel, perm, now)
        } else {
            self.tmp.mkfifo(rel, perm, now)
        };
        made.map(SpecialNode::Tmp)
    }

    /// open of named pipe `node`: an end of its pipe.
    pub(super) fn fifo_open(
        &mut self,
        pid: Pid,
        node: SpecialNode,
        full: &[u8],
        flags: u32,
        cloexec: bool,
    ) -> Ret {
        let id = match self.fifos.get(&node) {
            Some(&id) if self.pipes.contains_key(&id) => id,
            _ => {
                let id = self.next_pipe;
                self.next_pipe += 1;
                self.pipes.insert(id, Pipe::named());
                self.fifos.insert(node, id);
                id
            }
        };
        let wait = flags & O_NONBLOCK == 0;
        let access = flags & O_ACCMODE;
        let Some(p) = self.pipes.get_mut(&id) else {
            return err(EIO);
        };
        let kind = match access {
            O_RDONLY => {
                p.open_reader();
                Kind::PipeRead(id)
            }
            O_WRONLY => {
                if !wait && p.readers == 0 {
                    self.pipe_changed(id);
                    return err(ENXIO);
                }
                p.open_writer(wait);
                Kind::PipeWrite(id)
            }
            _ => {
                p.open_reader();
                p.open_writer(false);
                Kind::Socket(id, id)
            }
        };
        // Only a reader's reads look at it (a writer's wait is the pipe's
        // `awaits_reader`).
        let waited = if wait && access == O_RDONLY {
            pmon::fd::WAITED_OPEN_FLAG
        } else {
            0
        };
        let file = OpenFile::with_path(
            kind,
            flags & (O_ACCMODE | O_NONBLOCK | O_APPEND) | waited,
            full.to_vec(),
        );
        let r = self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file.clone(), cloexec, 0));
        match r {
            Ok(fd) => {
                // The other end may be waiting for this one.
                self.pipe_changed(id);
                Ret::Val(fd)
            }
            Err(e) => {
                self.release_file(file);
                err(e)
            }
        }
    }
}
