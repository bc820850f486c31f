//! Search permission on a path's directories, as Linux's walk asks it
//! (`may_lookup`: execute permission on each directory a name is looked
//! up in): which directories a walk passes through, and a short-lived
//! cache of their owners and modes.
//!
//! Only a process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH asks
//! (root's walks cost nothing more). A directory's owner and mode come
//! from the tmpfs, the storage component (a round trip) or the host (an
//! exit), so they are kept for a few seconds, as an NFS client keeps
//! attributes (`acdirmin`, 30 s there): a processor's own changes (chmod,
//! chown, rename, rmdir) clear the cache at once; another processor's
//! chmod of a shared storage directory is seen within `TTL_NS`, the same
//! close-to-open kind of promise storage files have.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::cred::Owned;

/// How long a directory's owner and mode are believed.
pub const TTL_NS: u64 = 3_000_000_000;
/// Directories kept at most (the cache is dropped whole past this).
const MAX_KEPT: usize = 4096;

/// The directories a walk of `full` (absolute, resolved) looks names up
/// in, starting from `from` (the root for an absolute path, the working
/// or given directory for a relative one): `from` and each directory
/// below it on the way to `full`'s last name. A walk that left `from`
/// (through `..` or a link) is taken as one from `/`. An absolute walk
/// of `/` itself looks nothing up.
pub fn walked_dirs<'a>(full: &'a [u8], from: &[u8], relative: bool) -> Vec<&'a [u8]> {
    let from = if from.len() > 1 && from.ends_with(b"/") {
        &from[..from.len() - 1]
    } else {
        from
    };
    let below = from == b"/"
        || full == from
        || (full.len() > from.len() && full.starts_with(from) && full[from.len()] == b'/');
    let start: &[u8] = if below { from } else { b"/" };
    let mut dirs = Vec::new();
    if full == start {
        // "." from the working directory looks "." up in it.
        if relative {
            dirs.push(&full[..start.len()]);
        }
        return dirs;
    }
    dirs.push(&full[..start.len()]);
    // Every '/' past the start ends a directory; the last one's is the
    // name's own directory.
    let last_slash = full.iter().rposition(|&c| c == b'/').unwrap_or(0);
    for (i, &c) in full.iter().enumerate().skip(start.len() + 1) {
        if c == b'/' && i <= last_slash && i > 0 {
            dirs.push(&full[..i]);
        }
    }
    dirs
}

/// A name's owner and mode, and a symbolic link's target.
pub type Entry = (Owned, Option<Vec<u8>>);

/// Owners and modes of directories (and the links on the way), each
/// believed for `TTL_NS`, by vNode (each has its own storage files).
#[derive(Default)]
pub struct DirCache {
    kept: BTreeMap<(u32, Vec<u8>), (Entry, u64)>,
}

impl DirCache {
    pub fn new() -> DirCache {
        DirCache::default()
    }

    /// `dir`'s entry in `vnode`, if looked at less than `TTL_NS` ago.
    pub fn get(&self, vnode: u32, dir: &[u8], now: u64) -> Option<Entry> {
        self.kept
            .get(&(vnode, dir.to_vec()))
            .filter(|(_, until)| now < *until)
            .map(|(e, _)| e.clone())
    }

    pub fn put(&mut self, vnode: u32, dir: &[u8], entry: Entry, now: u64) {
        if self.kept.len() >= MAX_KEPT {
            self.kept.clear();
        }
        self.kept
            .insert((vnode, dir.to_vec()), (entry, now.saturating_add(TTL_NS)));
    }

    /// Forgets everything (a change of some directory's owner, mode or
    /// name on this processor).
    pub fn clear(&mut self) {
        self.kept.clear();
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(full: &str, from: &str, relative: bool) -> Vec<&'static str> {
        let full: &'static str = alloc::boxed::Box::leak(full.into());
        walked_dirs(full.as_bytes(), from.as_bytes(), relative)
            .into_iter()
            .map(|d| core::str::from_utf8(d).expect("utf-8"))
            .collect()
    }

    #[test]
    fn an_absolute_walk_looks_in_every_directory_on_the_way() {
        assert_eq!(dirs("/a/b/c", "/", false), ["/", "/a", "/a/b"]);
        assert_eq!(dirs("/a", "/", false), ["/"]);
        assert!(dirs("/", "/", false).is_empty());
    }

    #[test]
    fn a_relative_walk_starts_at_its_directory() {
        // The working directory's own parents are not looked in.
        assert_eq!(
            dirs("/home/u/x/f", "/home/u", true),
            ["/home/u", "/home/u/x"]
        );
        assert_eq!(dirs("/home/u/f", "/home/u/", true), ["/home/u"]);
        assert_eq!(dirs("/home/u", "/home/u", true), ["/home/u"]);
        // Out of it through `..`: from the root.
        assert_eq!(
            dirs("/home/v/f", "/home/u", true),
            ["/", "/home", "/home/v"]
        );
        // A name that only starts like the directory is not below it.
        assert_eq!(
            dirs("/home/uu/f", "/home/u", true),
            ["/", "/home", "/home/uu"]
        );
    }

    #[test]
    fn kept_owners_expire_and_clear() {
        let o = Owned {
            uid: 1,
            gid: 2,
            mode: 0o040700,
        };
        let mut c = DirCache::new();
        c.put(0, b"/d", (o, None), 10);
        assert_eq!(c.get(0, b"/d", 10 + TTL_NS - 1), Some((o, None)));
        assert_eq!(c.get(0, b"/d", 10 + TTL_NS), None);
        assert_eq!(c.get(0, b"/e", 10), None);
        // Another vNode's /d is another directory.
        assert_eq!(c.get(1, b"/d", 10), None);
        c.clear();
        assert!(c.is_empty());
    }
}
