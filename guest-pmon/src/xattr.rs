//! Extended attributes of the tmpfs's files (xattr(7)), with Linux's
//! rules: the namespaces a tmpfs serves (user, trusted, security), who
//! may read and write each, XATTR_CREATE and XATTR_REPLACE, and the sizes
//! and errors of setxattr, getxattr, listxattr and removexattr.
//!
//! Decided: security.capability (file capabilities) is EOPNOTSUPP,
//! since execve here applies no file capabilities and storing them would
//! promise what does not happen; system.* (POSIX ACLs) is EOPNOTSUPP; an
//! inode holds at most [`MAX_TOTAL`] bytes of names and values (ENOSPC),
//! as Linux's tmpfs bounds the space its xattrs take.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const EPERM: i64 = 1;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const ENOSPC: i64 = 28;
const ERANGE: i64 = 34;
const ENODATA: i64 = 61;
const EOPNOTSUPP: i64 = 95;
const E2BIG: i64 = 7;

/// XATTR_NAME_MAX and XATTR_SIZE_MAX.
pub const NAME_MAX: usize = 255;
pub const SIZE_MAX: usize = 65536;
/// The most one inode holds, names and values together.
pub const MAX_TOTAL: usize = 128 * 1024;

pub const XATTR_CREATE: u64 = 1;
pub const XATTR_REPLACE: u64 = 2;

/// What the attribute's owner is, as the rules tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A regular file or a directory.
    FileOrDir,
    /// Anything else (a symbolic link, a pipe, a socket).
    Other,
}

/// Whether a process may read (`write` false) or change the attribute
/// `name` of an object: Linux's xattr_permission and the tmpfs's
/// handlers. `admin`: it holds CAP_SYS_ADMIN.
pub fn check(name: &[u8], owner: Owner, write: bool, admin: bool) -> Result<(), i64> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(ERANGE);
    }
    let prefix = [&b"user."[..], b"trusted.", b"security."]
        .into_iter()
        .find(|p| name.starts_with(p));
    let Some(prefix) = prefix else {
        return Err(EOPNOTSUPP);
    };
    if name.len() == prefix.len() {
        return Err(EINVAL);
    }
    let refused = if write { EPERM } else { ENODATA };
    match prefix {
        b"trusted." if !admin => Err(refused),
        b"user." if owner == Owner::Other => Err(refused),
        b"security." if name == b"security.capability" => Err(EOPNOTSUPP),
        b"security." if write && !admin => Err(EPERM),
        _ => Ok(()),
    }
}

/// One inode's extended attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xattrs {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Xattrs {
    /// The bytes of its names and values.
    pub fn bytes(&self) -> usize {
        self.total()
    }

    fn total(&self) -> usize {
        self.values.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// setxattr (after [`check`]).
    pub fn set(&mut self, name: &[u8], value: &[u8], flags: u64) -> Result<(), i64> {
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(EINVAL);
        }
        if value.len() > SIZE_MAX {
            return Err(E2BIG);
        }
        let old = self.values.get(name);
        if flags & XATTR_CREATE != 0 && old.is_some() {
            return Err(EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && old.is_none() {
            return Err(ENODATA);
        }
        let freed = old.map_or(0, |v| name.len() + v.len());
        if self.total() - freed + name.len() + value.len() > MAX_TOTAL {
            return Err(ENOSPC);
        }
        self.values.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    /// getxattr: the value.
    pub fn get(&self, name: &[u8]) -> Result<&[u8], i64> {
        self.values.get(name).map(Vec::as_slice).ok_or(ENODATA)
    }

    /// listxattr: the names (NUL after each) the caller may see.
    pub fn list(&self, admin: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for name in self.values.keys() {
            if name.starts_with(b"trusted.") && !admin {
                continue;
            }
            out.extend_from_slice(name);
            out.push(0);
        }
        out
    }

    /// removexattr.
    pub fn remove(&mut self, name: &[u8]) -> Result<(), i64> {
        self.values.remove(name).map(|_| ()).ok_or(ENODATA)
    }
}

/// What a get or list of `len` bytes answers a caller with room for
/// `size`: the length alone when asked with 0, ERANGE when it does not
/// fit.
pub fn fits(len: usize, size: usize) -> Result<bool, i64> {
    if size == 0 {
        Ok(false)
    } else if len > size {
        Err(ERANGE)
    } else {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_linuxs_rules() {
        let f = Owner::FileOrDir;
        assert_eq!(check(b"user.a", f, true, false), Ok(()));
        assert_eq!(check(b"user.", f, true, false), Err(EINVAL));
        assert_eq!(check(b"", f, true, false), Err(ERANGE));
        assert_eq!(check(&[b'u'; 256], f, true, false), Err(ERANGE));
        assert_eq!(check(b"other.a", f, true, true), Err(EOPNOTSUPP));
        assert_eq!(
            check(b"system.posix_acl_access", f, true, true),
            Err(EOPNOTSUPP)
        );
        assert_eq!(check(b"user.a", Owner::Other, true, true), Err(EPERM));
        assert_eq!(check(b"user.a", Owner::Other, false, true), Err(ENODATA));
        assert_eq!(check(b"trusted.a", f, true, false), Err(EPERM));
        assert_eq!(check(b"trusted.a", f, false, false), Err(ENODATA));
        assert_eq!(check(b"trusted.a", f, true, true), Ok(()));
        assert_eq!(check(b"security.selinux", f, true, false), Err(EPERM));
        assert_eq!(check(b"security.selinux", f, false, false), Ok(()));
        assert_eq!(
            check(b"security.capability", f, true, true),
            Err(EOPNOTSUPP)
        );
    }

    #[test]
    fn create_replace_sizes_and_lists() {
        let mut x = Xattrs::default();
        assert_eq!(x.set(b"user.a", b"1", XATTR_REPLACE), Err(ENODATA));
        x.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(x.set(b"user.a", b"2", XATTR_CREATE), Err(EEXIST));
        x.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        assert_eq!(x.get(b"user.a"), Ok(&b"22"[..]));
        assert_eq!(x.set(b"user.a", b"", 4), Err(EINVAL));
        assert_eq!(x.set(b"user.big", &[0; SIZE_MAX + 1], 0), Err(E2BIG));
        x.set(b"trusted.t", b"", 0).unwrap();
        assert_eq!(x.list(false), b"user.a\0");
        assert_eq!(x.list(true), b"trusted.t\0user.a\0");
        assert_eq!(x.remove(b"user.a"), Ok(()));
        assert_eq!(x.remove(b"user.a"), Err(ENODATA));
        assert_eq!(x.get(b"user.a"), Err(ENODATA));
        x.set(b"user.1", &[0; SIZE_MAX], 0).unwrap();
        assert_eq!(x.set(b"user.2", &[0; SIZE_MAX], 0), Err(ENOSPC));
        x.set(b"user.1", &[0; SIZE_MAX - 10], 0).unwrap();
        assert_eq!(fits(5, 0), Ok(false));
        assert_eq!(fits(5, 4), Err(ERANGE));
        assert_eq!(fits(5, 5), Ok(true));
    }
}
