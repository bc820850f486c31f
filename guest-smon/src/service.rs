//! The storage monitor's service: one request from the fabric
//! (`lego_proto::storage`) in, one reply out, against the file system.
//! Nothing here keeps state between requests except the file system
//! itself: open files, descriptors and offsets are the processors'.

use alloc::vec::Vec;

use lego_proto::storage::*;

use crate::block::BlockDevice;
use crate::fs::{Errno, Fs, Kind, Stat};

/// The storage monitor: the file system and its counters.
pub struct Service<D: BlockDevice> {
    pub fs: Fs<D>,
    pub stats: StoreStats,
}

/// What one request did: the reply's head fields and its data.
struct Done {
    value: u64,
    stat: Option<Stat>,
    data: Vec<u8>,
    /// `data` starts with [`REPLY_HEAD`] bytes left for the reply's head.
    after_head: bool,
}

impl Done {
    fn none() -> Done {
        Done {
            value: 0,
            stat: None,
            data: Vec::new(),
            after_head: false,
        }
    }

    fn stat(st: Stat) -> Done {
        Done {
            value: 0,
            stat: Some(st),
            data: Vec::new(),
            after_head: false,
        }
    }
}

impl<D: BlockDevice> Service<D> {
    pub fn new(fs: Fs<D>, replayed: u64) -> Service<D> {
        Service {
            fs,
            stats: StoreStats {
                replayed,
                ..Default::default()
            },
        }
    }

    /// Serves one request's bytes; the reply's bytes. A request that
    /// cannot be parsed is counted and answered EPROTO.
    pub fn handle(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.stats.requests += 1;
        if self.fs.broken() {
            return reply_error(EIO);
        }
        let r = match decode_request(bytes) {
            Ok(r) => r,
            Err(_) => {
                self.stats.malformed += 1;
                return reply_error(EPROTO);
            }
        };
        let served = match self.enter_vnode(&r) {
            Ok(()) => self.serve(&r),
            Err(e) => Err(e),
        };
        self.fs.leave();
        match served {
            Ok(d) => {
                let head = StoreReply {
                    value: d.value,
                    stat: d.stat.unwrap_or_default(),
                    ..Default::default()
                };
                if d.after_head {
                    encode_reply_in(&head, d.data)
                } else {
                    encode_reply(&head, &d.data)
                }
            }
            // An ENOENT past a link may lie off storage: the processor
            // asks where it led (OP_LEADS_TO) only then.
            Err(e) if e.0 == ENOENT && self.fs.past_link() => encode_reply(
                &StoreReply {
                    errno: e.0,
                    value: ENOENT_PAST_LINK,
                    ..Default::default()
                },
                &[],
            ),
            Err(e) => reply_error(e.0),
        }
    }

    /// Serves requests that arrived together, as one group of the file
    /// system ([`Fs::open_group`]): their disk writes go in one device
    /// call, and each reply is made only after it. If that call fails,
    /// every request of the group that changed something is answered EIO
    /// (it may not be on the disk), and so is everything after.
    pub fn handle_group(&mut self, requests: &[&[u8]]) -> Vec<Vec<u8>> {
        if let [one] = requests {
            return alloc::vec![self.handle(one)];
        }
        self.fs.open_group();
        // The reads among them take their blocks from the disk in one go.
        let reads: Vec<(u64, u64, usize)> = requests
            .iter()
            .filter_map(|r| decode_request(r).ok())
            .filter(|r| r.head.op == OP_READ)
            .map(|r| (r.head.ino, r.head.offset, (r.head.len as usize).min(MAX_IO)))
            .collect();
        self.fs.stage_reads(&reads);
        let mut changed = Vec::with_capacity(requests.len());
        let mut replies: Vec<Vec<u8>> = requests
            .iter()
            .map(|r| {
                let before = self.fs.held_count();
                let reply = self.handle(r);
                changed.push(self.fs.held_count() != before);
                reply
            })
            .collect();
        if self.fs.close_group().is_err() {
            for (reply, changed) in replies.iter_mut().zip(changed) {
                if changed {
                    *reply = reply_error(EIO);
                }
            }
        }
        replies
    }

    fn serve(&mut self, r: &Request<'_>) -> Result<Done, Errno> {
        let h = &r.head;
        let now = h.now;
        self.fs.act_for(h.uid, h.gid);
        let fs = &mut self.fs;
        Ok(match h.op {
            OP_STAT => Done::stat(fs.stat(r.path, h.flags & FLAG_FOLLOW != 0)?),
            OP_STAT_INO => Done::stat(fs.stat_ino(h.ino)?),
            OP_CREATE => {
                let st = if h.flags & FLAG_CREATE != 0 {
                    fs.create(
                        r.path,
                        h.mode,
                        h.flags & FLAG_EXCL != 0,
                        h.flags & FLAG_TRUNC != 0,
                        now,
                    )?
                } else {
                    let st = fs.stat(r.path, true)?;
                    if h.flags & FLAG_TRUNC != 0 {
                        fs.truncate_ino(st.ino, 0, now)?;
                    }
                    fs.stat_ino(st.ino)?
                };
                Done::stat(st)
            }
            OP_MKDIR => Done::stat(fs.mkdir(r.path, h.mode, now)?),
            OP_MKNOD => {
                let kind = match h.mode & 0o170000 {
                    crate::fs::S_IFIFO => Kind::Fifo,
                    crate::fs::S_IFSOCK => Kind::Socket,
                    _ => return Err(Errno(EINVAL)),
                };
                Done::stat(fs.mknod(r.path, kind, h.mode & 0o7777, now)?)
            }
            OP_RMDIR => {
                fs.rmdir(r.path, now)?;
                Done::none()
            }
            OP_UNLINK => {
                fs.unlink(r.path, now)?;
                Done::none()
            }
            OP_RENAME => {
                fs.rename(r.path, r.path2, h.flags & FLAG_NOREPLACE != 0, now)?;
                Done::none()
            }
            OP_SYMLINK => Done::stat(fs.symlink(r.path2, r.path, now)?),
            OP_LINK => Done::stat(fs.link(r.path, h.flags & FLAG_FOLLOW != 0, r.path2, now)?),
            OP_READLINK => Done {
                data: fs.readlink(r.path)?,
                ..Done::none()
            },
            OP_LEADS_TO => Done {
                data: fs.leads_to(r.path, h.flags & FLAG_FOLLOW != 0)?,
                ..Done::none()
            },
            OP_CHMOD => {
                let ino = self.target(r, true)?;
                self.fs.chmod_ino(ino, h.mode, now)?;
                Done::none()
            }
            OP_CHOWN => {
                let ino = self.target(r, h.flags & FLAG_FOLLOW != 0)?;
                let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
                self.fs.chown_ino(ino, id(h.offset), id(h.len), now)?;
                Done::none()
            }
            OP_UTIMES => {
                let ino = self.target(r, h.flags & FLAG_FOLLOW != 0)?;
                let atime = (h.flags & FLAG_ATIME != 0).then_some(h.atime);
                let mtime = (h.flags & FLAG_MTIME != 0).then_some(h.mtime);
                let at = if h.flags & FLAG_KEEP_CTIME != 0 {
                    self.fs.stat_ino(ino)?.ctime
                } else {
                    now
                };
                self.fs.set_times_ino(ino, atime, mtime, at)?;
                Done::none()
            }
            OP_TRUNCATE => {
                fs.truncate_ino(h.ino, h.offset, now)?;
                Done::stat(fs.stat_ino(h.ino)?)
            }
            OP_READ => {
                let len = (h.len as usize).min(MAX_IO);
                let data = fs.read_ino_after(REPLY_HEAD, h.ino, h.offset, len)?;
                self.stats.bytes_read += (data.len() - REPLY_HEAD) as u64;
                Done {
                    data,
                    after_head: true,
                    ..Done::none()
                }
            }
            OP_WRITE => {
                let (at, _) =
                    fs.write_ino(h.ino, h.offset, r.data, h.flags & FLAG_APPEND != 0, now)?;
                self.stats.bytes_written += r.data.len() as u64;
                // The file after the write, for the processor's cache.
                Done {
                    value: at,
                    ..Done::stat(fs.stat_ino(h.ino)?)
                }
            }
            OP_READDIR => self.readdir(h.ino, h.offset, (h.len as usize).min(MAX_IO))?,
            OP_SYNC => {
                fs.sync()?;
                self.stats.syncs += 1;
                Done::none()
            }
            OP_STATFS => {
                let s = fs.statfs();
                let (ns_blocks, ns_files) = fs.namespace_usage();
                let wire = StoreStatFs {
                    block_size: s.block_size,
                    blocks: s.blocks,
                    blocks_free: s.blocks_free,
                    files: s.files,
                    ns_blocks,
                    ns_files,
                };
                Done {
                    data: zerocopy::IntoBytes::as_bytes(&wire).to_vec(),
                    ..Done::none()
                }
            }
            OP_STATS => Done {
                data: zerocopy::IntoBytes::as_bytes(&self.stats).to_vec(),
                ..Done::none()
            },
            _ => return Err(Errno(EINVAL)),
        })
    }

    /// Confines the request to its vNode's namespace (made on first use):
    /// its paths start there, and an inode outside it is as if it did not
    /// exist (ESTALE), so no request can reach another vNode's files.
    fn enter_vnode(&mut self, r: &Request<'_>) -> Result<(), Errno> {
        let v = r.head.vnode;
        if v == 0 {
            return Ok(());
        }
        let mut dir = VNODES_DIR.to_vec();
        let root = match self.fs.stat(&dir, false) {
            Ok(st) => st.ino,
            Err(_) => self.fs.mkdir(&dir, 0o700, r.head.now)?.ino,
        };
        let _ = root;
        dir.extend_from_slice(alloc::format!("/{v}").as_bytes());
        let root = match self.fs.stat(&dir, false) {
            Ok(st) if st.mode & 0o170000 == 0o040000 => st.ino,
            Ok(_) => return Err(Errno(EIO)),
            Err(_) => self.fs.mkdir(&dir, 0o755, r.head.now)?.ino,
        };
        self.fs.enter(root)?;
        let by_ino = match r.head.op {
            OP_STAT_INO | OP_TRUNCATE | OP_READ | OP_WRITE | OP_READDIR => true,
            OP_CHMOD | OP_UTIMES | OP_CHOWN => r.path.is_empty(),
            _ => false,
        };
        if by_ino && !self.fs.in_namespace(r.head.ino) {
            return Err(Errno(ESTALE));
        }
        Ok(())
    }

    /// The inode a chmod, chown or utimes names: its path's (following a final
    /// link, as chmod does), or `ino` when it has no path (fchmod).
    fn target(&self, r: &Request<'_>, follow: bool) -> Result<u64, Errno> {
        if r.path.is_empty() {
            Ok(r.head.ino)
        } else {
            Ok(self.fs.stat(r.path, follow)?.ino)
        }
    }

    /// Entries of directory `ino` from `cookie`, as many as fit `room`.
    fn readdir(&self, ino: u64, cookie: u64, room: usize) -> Result<Done, Errno> {
        let most = room / dir_entry_len(0).max(1);
        let (entries, _) = self.fs.readdir(ino, cookie, most.max(1))?;
        let mut data = Vec::new();
        for e in &entries {
            if data.len() + dir_entry_len(e.name.len()) > room {
                break;
            }
            push_dir_entry(&mut data, e.ino, e.next, e.kind.d_type(), &e.name);
        }
        Ok(Done {
            data,
            ..Done::none()
        })
    }
}

fn reply_error(errno: i32) -> Vec<u8> {
    encode_reply(
        &StoreReply {
            errno,
            ..Default::default()
        },
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDisk;

    fn service() -> Service<MemDisk> {
        let fs = Fs::format(MemDisk::new(64 << 11), 1).expect("format");
        Service::new(fs, 0)
    }

    fn ask(
        s: &mut Service<MemDisk>,
        head: StoreRequest,
        path: &[u8],
        path2: &[u8],
        data: &[u8],
    ) -> (StoreReply, Vec<u8>) {
        let reply = s.handle(&encode_request(&head, path, path2, data));
        let (h, d) = decode_reply(&reply).expect("a reply");
        (h, d.to_vec())
    }

    fn req(op: u32, vnode: u32) -> StoreRequest {
        StoreRequest {
            op,
            vnode,
            now: 5,
            ..Default::default()
        }
    }

    #[test]
    fn a_group_is_answered_after_its_disk_write_and_eio_if_it_failed() {
        let mut s = service();
        let create = |path: &[u8]| {
            encode_request(
                &StoreRequest {
                    flags: FLAG_CREATE,
                    mode: 0o644,
                    ..req(OP_CREATE, 0)
                },
                path,
                &[],
                &[],
            )
        };
        let stat = encode_request(&req(OP_STAT, 0), b"/", &[], &[]);
        let errnos = |replies: Vec<Vec<u8>>| -> Vec<i32> {
            replies
                .iter()
                .map(|r| decode_reply(r).expect("a reply").0.errno)
                .collect()
        };
        let calls = s.fs.device().write_calls();
        let (a, b) = (create(b"/a"), create(b"/b"));
        assert_eq!(errnos(s.handle_group(&[&a, &stat, &b])), [OK, OK, OK]);
        assert_eq!(s.fs.device().write_calls(), calls + 1, "one disk write");
        // The disk fails the next group's write: its changes are EIO, the
        // stat that changed nothing is answered, and nothing is after.
        let w = s.fs.device().writes();
        s.fs.device_mut().fail_writes_after(Some(w));
        let (c, d) = (create(b"/c"), create(b"/d"));
        assert_eq!(errnos(s.handle_group(&[&c, &stat, &d])), [EIO, OK, EIO]);
        s.fs.device_mut().fail_writes_after(None);
        assert_eq!(errnos(alloc::vec![s.handle(&stat)]), [EIO]);
    }

    #[test]
    fn a_vnode_sees_only_its_own_files() {
        let mut s = service();
        let create = |vnode| StoreRequest {
            flags: FLAG_CREATE,
            mode: 0o644,
            ..req(OP_CREATE, vnode)
        };
        let (h, _) = ask(&mut s, create(1), b"/secret", &[], &[]);
        assert_eq!(h.errno, OK);
        let ino = h.stat.ino;
        let (h, _) = ask(
            &mut s,
            StoreRequest {
                ino,
                ..req(OP_WRITE, 1)
            },
            &[],
            &[],
            b"one's data",
        );
        assert_eq!(h.errno, OK);
        // vNode 2: no such path, and the inode is as if it did not exist,
        // whatever the request (a forged one too).
        assert_eq!(
            ask(&mut s, req(OP_STAT, 2), b"/secret", &[], &[]).0.errno,
            ENOENT
        );
        for op in [
            OP_READ,
            OP_STAT_INO,
            OP_WRITE,
            OP_TRUNCATE,
            OP_READDIR,
            OP_CHMOD,
        ] {
            let (h, _) = ask(
                &mut s,
                StoreRequest {
                    ino,
                    len: 100,
                    ..req(op, 2)
                },
                &[],
                &[],
                b"x",
            );
            assert_eq!(h.errno, ESTALE, "op {op} reached another vNode's inode");
        }
        // A symbolic link cannot lead out: its absolute target and its
        // ".." stay inside the vNode.
        let (h, _) = ask(&mut s, req(OP_SYMLINK, 2), b"/up", b"../../1/secret", &[]);
        assert_eq!(h.errno, OK);
        let (h, _) = ask(
            &mut s,
            req(OP_SYMLINK, 2),
            b"/abs",
            b"/.vnodes/1/secret",
            &[],
        );
        assert_eq!(h.errno, OK);
        for (link, led) in [
            (&b"/up"[..], &b"/1/secret"[..]),
            (b"/abs", b"/.vnodes/1/secret"),
        ] {
            let st = StoreRequest {
                flags: FLAG_FOLLOW,
                ..req(OP_STAT, 2)
            };
            let (h, _) = ask(&mut s, st, link, &[], &[]);
            assert_eq!((h.errno, h.value), (ENOENT, ENOENT_PAST_LINK));
            // Where it led is a name of the vNode's own tree, which the
            // processor leaves to storage.
            let leads = StoreRequest {
                flags: FLAG_FOLLOW,
                ..req(OP_LEADS_TO, 2)
            };
            let (h, d) = ask(&mut s, leads, link, &[], &[]);
            assert_eq!((h.errno, d.as_slice()), (OK, led));
        }
        // A name missing with no link on the way says nothing more.
        let (h, _) = ask(&mut s, req(OP_STAT, 2), b"/none", &[], &[]);
        assert_eq!((h.errno, h.value), (ENOENT, 0));
        // Its root cannot be removed or renamed away.
        assert_ne!(ask(&mut s, req(OP_RMDIR, 2), b"/", &[], &[]).0.errno, OK);
        assert_ne!(ask(&mut s, req(OP_RENAME, 2), b"/", b"/x", &[]).0.errno, OK);
        // vNode 1 reads its file; the whole disk (vNode 0) holds both.
        let (h, d) = ask(
            &mut s,
            StoreRequest {
                ino,
                len: 100,
                ..req(OP_READ, 1)
            },
            &[],
            &[],
            &[],
        );
        assert_eq!((h.errno, d.as_slice()), (OK, &b"one's data"[..]));
        assert_eq!(
            ask(&mut s, req(OP_STAT, 0), b"/.vnodes/1/secret", &[], &[])
                .0
                .errno,
            OK
        );
        assert_eq!(
            ask(&mut s, req(OP_STAT, 0), b"/.vnodes/2/up", &[], &[])
                .0
                .errno,
            OK
        );
    }
}
