//! setxattr, getxattr, listxattr and removexattr with their l- and
//! f-forms: the tmpfs keeps extended attributes ([`pmon::xattr`]);
//! storage and the host's files keep none (setting one is EOPNOTSUPP,
//! reading one ENODATA, a list empty).

use pmon::tmpfs::Ino;
use pmon::xattr::{self, Owner};

use super::*;

/// What an xattr call is about.
enum Target {
    /// A tmpfs node, which keeps them.
    Tmp(Ino),
    /// Anything else: nothing is kept.
    None(Owner),
}

const ENODATA: Errno = 61;
const EOPNOTSUPP: Errno = 95;
const ERANGE: Errno = 34;

impl Kernel {
    pub(super) fn sys_xattr(&mut self, pid: Pid, call: u64, a: [u64; 6]) -> Ret {
        let ino = match self.xattr_target(pid, call, a[0]) {
            Ok(ino) => ino,
            Err(e) => return err(e),
        };
        let set = matches!(call, nr::SETXATTR | nr::LSETXATTR | nr::FSETXATTR);
        let list = matches!(call, nr::LISTXATTR | nr::LLISTXATTR | nr::FLISTXATTR);
        let remove = matches!(call, nr::REMOVEXATTR | nr::LREMOVEXATTR | nr::FREMOVEXATTR);
        let admin = self
            .procs
            .get(&pid)
            .is_some_and(|p| p.cred.capable(pmon::caps::SYS_ADMIN));
        if list {
            let names = match ino {
                // A file system that keeps nothing lists nothing.
                Target::None(_) => return Ret::Val(0),
                Target::Tmp(ino) => match self.tmp.xattrs(ino) {
                    Ok(x) => x.list(admin),
                    Err(e) => return err(e),
                },
            };
            // XATTR_LIST_MAX: a larger buffer is as good as that one.
            let size = (a[2] as usize).min(xattr::SIZE_MAX);
            return self.give(pid, a[1], &names, size);
        }
        // setxattr's flags are checked before its name (Linux's order).
        if set && a[4] as u32 as u64 & !(xattr::XATTR_CREATE | xattr::XATTR_REPLACE) != 0 {
            return err(EINVAL);
        }
        let name = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, a[1], xattr::NAME_MAX))
        {
            Ok(n) => n,
            Err(ENAMETOOLONG) => return err(ERANGE),
            Err(e) => return err(e),
        };
        let owner = match ino {
            Target::Tmp(ino) => match self.tmp.xattr_owner(ino) {
                Ok(o) => o,
                Err(e) => return err(e),
            },
            Target::None(owner) => owner,
        };
        // The namespace's rules first (a pipe's user.* is EPERM), then a
        // file system that keeps nothing.
        if let Err(e) = xattr::check(&name, owner, set || remove, admin) {
            return err(e);
        }
        let Target::Tmp(ino) = ino else {
            return if set { err(EOPNOTSUPP) } else { err(ENODATA) };
        };
        let now = self.realtime_ns();
        if set {
            let size = a[3] as usize;
            if size > xattr::SIZE_MAX {
                return err(7);
            }
            let value = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, a[2], size))
            {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            let flags = a[4] as u32 as u64;
            return val(self
                .tmp
                .change_xattrs(ino, now, |x| x.set(&name, &value, flags))
                .map(|_| 0));
        }
        if remove {
            return val(self
                .tmp
                .change_xattrs(ino, now, |x| x.remove(&name))
                .map(|_| 0));
        }
        let value = match self.tmp.xattrs(ino).and_then(|x| x.get(&name)) {
            Ok(v) => v.to_vec(),
            Err(e) => return err(e),
        };
        self.give(pid, a[2], &value, (a[3] as usize).min(xattr::SIZE_MAX))
    }

    /// The tmpfs node an xattr call is about, or what else it is (which
    /// keeps none); ENOENT and EBADF as for any call on a path or
    /// descriptor. An O_PATH descriptor is EBADF.
    fn xattr_target(&mut self, pid: Pid, call: u64, target: u64) -> Result<Target, Errno> {
        if matches!(
            call,
            nr::FSETXATTR | nr::FGETXATTR | nr::FLISTXATTR | nr::FREMOVEXATTR
        ) {
            let f = self.file(pid, target as i32 as i64)?;
            if f.flags.get() & pmon::fd::O_PATH != 0 {
                return Err(EBADF);
            }
            return Ok(match f.kind {
                Kind::Tmp(ino) => Target::Tmp(ino),
                Kind::Store(_) | Kind::StoreDir(_) | Kind::Host(_) | Kind::HostDir(_) => {
                    Target::None(Owner::FileOrDir)
                }
                _ => Target::None(Owner::Other),
            });
        }
        let follow = !matches!(
            call,
            nr::LSETXATTR | nr::LGETXATTR | nr::LLISTXATTR | nr::LREMOVEXATTR
        );
        let full = self.path_arg(pid, AT_FDCWD, target)?;
        self.xattr_target_at(pid, full, follow)
    }

    /// [`Self::xattr_target`] of the resolved path `full`: past storage's
    /// links that lead off it, the file reached (a directory linked into
    /// /tmp keeps them).
    fn xattr_target_at(&mut self, pid: Pid, full: Vec<u8>, follow: bool) -> Result<Target, Errno> {
        if self.on_storage(&full) {
            match crate::kernel::store::stat(&full, follow) {
                Ok(_) => return Ok(Target::None(Owner::FileOrDir)),
                Err(ENOENT) => {
                    if let Some(to) = self.storage_leads_to(pid, &full, follow) {
                        return self.leaving_storage(&to, |k, to| {
                            let to = k.resolve(pid, AT_FDCWD, to)?;
                            k.xattr_target_at(pid, to, follow)
                        });
                    }
                    // A name of the host's installation storage lacks is
                    // the host's file: the look below.
                }
                Err(e) => return Err(e),
            }
        }
        self.stat_path_of(pid, AT_FDCWD, &self.shown(pid, &full), follow)?;
        let full = self.tmp_links(full, follow)?;
        Ok(match self.tmp_node(&full) {
            Some(ino) => Target::Tmp(ino),
            None => Target::None(Owner::FileOrDir),
        })
    }

    /// Answers a get or list with `bytes`: their length alone when `size`
    /// is 0, ERANGE when they do not fit, else copied to `buf`.
    fn give(&mut self, pid: Pid, buf: u64, bytes: &[u8], size: usize) -> Ret {
        match xattr::fits(bytes.len(), size) {
            Ok(false) => Ret::Val(bytes.len() as i64),
            Ok(true) => val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, buf, bytes).map(|_| bytes.len() as i64))),
            Err(e) => err(e),
        }
    }
}
