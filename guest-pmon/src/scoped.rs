//! openat2's path walk under its RESOLVE_* flags (openat2(2)): a walk
//! that asks of every name whether it is a symbolic link, a /proc "magic"
//! link, a directory or missing, so that it can refuse links
//! (RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS), keep a walk beneath its
//! starting directory (RESOLVE_BENEATH), treat that directory as the root
//! (RESOLVE_IN_ROOT) or stay on one file system (RESOLVE_NO_XDEV). Its
//! result names the file with no link on the way (the last name's too
//! when it is followed), for the ordinary open to finish.
//!
//! Paths here are as the process sees them (inside its root directory);
//! the caller asks its file systems through [`Ask`].

use alloc::vec::Vec;

use crate::path::{join, names};

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const RESOLVE_CACHED: u64 = 0x20;
/// The flags Linux knows: others are EINVAL.
pub const RESOLVE_ALL: u64 = 0x3f;

const ENOENT: i64 = 2;
const EXDEV: i64 = 18;
const ENOTDIR: i64 = 20;
const ELOOP: i64 = 40;

/// What the file systems say of one name (an absolute path with no link
/// before its last name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// No such name.
    Missing,
    /// A directory, on file system `dev`.
    Dir(u64),
    /// Anything else that is not a link, on file system `dev`.
    File(u64),
    /// A symbolic link to this target.
    Link(Vec<u8>),
    /// A link of /proc (a process's exe, cwd, root, or an open
    /// descriptor): to this directory if it leads to one, None for a
    /// file or an object with no name.
    Magic(Option<Vec<u8>>),
}

/// The caller's file systems: what `full` is.
pub type Ask<'a> = dyn FnMut(&[u8]) -> Result<Node, i64> + 'a;

/// `path` walked from directory `start` (absolute, as the process sees
/// it, with no link on it) under the `resolve` flags; `follow_last` says
/// whether a link as the last name is followed (not with O_NOFOLLOW, or
/// O_CREAT with O_EXCL). A missing last name is returned for the open to
/// make or refuse; a magic link as the last name, when allowed, is
/// returned as it is, for the open to follow. Linux's errors: EXDEV for a
/// way out of the start's tree or file system, ELOOP for a refused link
/// or past 40 links, ENOENT and ENOTDIR on the way.
pub fn walk(
    start: &[u8],
    path: &[u8],
    resolve: u64,
    follow_last: bool,
    ask: &mut Ask,
) -> Result<Vec<u8>, i64> {
    let beneath = resolve & RESOLVE_BENEATH != 0;
    let in_root = resolve & RESOLVE_IN_ROOT != 0;
    let scoped = beneath || in_root;
    let floor = names(start);
    // Where an absolute path or link starts: the process's root, or the
    // start itself under RESOLVE_IN_ROOT.
    let top: Vec<Vec<u8>> = if in_root { floor.clone() } else { Vec::new() };
    let mut out = floor.clone();
    if path.first() == Some(&b'/') {
        if beneath {
            return Err(EXDEV);
        }
        out = top.clone();
    }
    // RESOLVE_NO_XDEV: every name on one file system with where the walk
    // starts (an absolute path starts at the root, as Linux allows).
    let dev = |out: &[Vec<u8>], ask: &mut Ask| -> Result<Option<u64>, i64> {
        match ask(&join(out))? {
            Node::Dir(d) | Node::File(d) => Ok(Some(d)),
            _ => Ok(None),
        }
    };
    let home = if resolve & RESOLVE_NO_XDEV != 0 {
        dev(&out, ask)?
    } else {
        None
    };
    let same_dev = |d: u64| home.is_none() || home == Some(d);
    // Whether a jump (`..`, a magic link) left the start's file system.
    let left = |out: &[Vec<u8>], ask: &mut Ask| -> Result<bool, i64> {
        if home.is_none() {
            return Ok(false);
        }
        Ok(dev(out, ask)?.is_some_and(|d| !same_dev(d)))
    };
    // The names still to walk, the next last.
    let mut todo: Vec<Vec<u8>> = path
        .split(|&c| c == b'/')
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    // "name/" stays so for the open (a directory only, never made).
    let slash = path.len() > 1 && path.ends_with(b"/");
    let done = |out: &[Vec<u8>]| {
        let mut p = join(out);
        if slash && p != b"/" {
            p.push(b'/');
        }
        p
    };
    let mut links = 0;
    while let Some(name) = todo.pop() {
        match name.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if out.len() <= top.len() || (scoped && out.len() <= floor.len()) {
                    // At the root, `..` stays; beneath the start it may
                    // not leave it.
                    if beneath {
                        return Err(EXDEV);
                    }
                    continue;
                }
                out.pop();
                if left(&out, ask)? {
                    return Err(EXDEV);
                }
                continue;
            }
            _ => {}
        }
        // The last name, or one followed by slashes only (which follow it).
        let last = todo.iter().all(|n| n.is_empty());
        let follow = follow_last || !todo.is_empty();
        out.push(name);
        match ask(&join(&out))? {
            Node::Missing if last => return Ok(done(&out)),
            Node::Missing => return Err(ENOENT),
            Node::File(_) if !last => return Err(ENOTDIR),
            Node::Dir(d) | Node::File(d) => {
                if !same_dev(d) {
                    return Err(EXDEV);
                }
            }
            Node::Link(_) | Node::Magic(_) if last && !follow => return Ok(done(&out)),
            Node::Link(target) => {
                if resolve & RESOLVE_NO_SYMLINKS != 0 {
                    return Err(ELOOP);
                }
                links += 1;
                if links > 40 {
                    return Err(ELOOP);
                }
                out.pop();
                if target.first() == Some(&b'/') {
                    if beneath {
                        return Err(EXDEV);
                    }
                    out = top.clone();
                }
                todo.extend(target.split(|&c| c == b'/').rev().map(<[u8]>::to_vec));
            }
            Node::Magic(to) => {
                if resolve & RESOLVE_NO_MAGICLINKS != 0 {
                    return Err(ELOOP);
                }
                if scoped {
                    return Err(EXDEV);
                }
                if last {
                    return Ok(done(&out));
                }
                out = names(&to.ok_or(ENOTDIR)?);
                if left(&out, ask)? {
                    return Err(EXDEV);
                }
            }
        }
    }
    Ok(done(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// /s/a/b, /s/a/f, links /s/lnk -> a/f, /s/abs -> /etc/passwd,
    /// /s/up -> ../, /s/loop -> loop, /etc/passwd, /proc on another
    /// device with /proc/self/cwd -> /s/a and /proc/self/exe.
    fn fs() -> BTreeMap<Vec<u8>, Node> {
        let mut m = BTreeMap::new();
        for (p, n) in [
            ("/", Node::Dir(1)),
            ("/s", Node::Dir(1)),
            ("/s/a", Node::Dir(1)),
            ("/s/a/b", Node::Dir(1)),
            ("/s/a/f", Node::File(1)),
            ("/s/lnk", Node::Link(b"a/f".to_vec())),
            ("/s/dlnk", Node::Link(b"a/missing".to_vec())),
            ("/s/abs", Node::Link(b"/etc/passwd".to_vec())),
            ("/s/up", Node::Link(b"../".to_vec())),
            ("/s/loop", Node::Link(b"loop".to_vec())),
            ("/etc", Node::Dir(1)),
            ("/etc/passwd", Node::File(1)),
            ("/proc", Node::Dir(2)),
            ("/proc/self", Node::Link(b"7".to_vec())),
            ("/proc/7", Node::Dir(2)),
            ("/proc/7/status", Node::File(2)),
            ("/proc/7/cwd", Node::Magic(Some(b"/s/a".to_vec()))),
            ("/proc/7/exe", Node::Magic(None)),
        ] {
            m.insert(p.as_bytes().to_vec(), n);
        }
        m
    }

    fn run(start: &str, path: &str, resolve: u64, follow: bool) -> Result<String, i64> {
        let m = fs();
        let mut ask = |p: &[u8]| Ok(m.get(p).cloned().unwrap_or(Node::Missing));
        walk(start.as_bytes(), path.as_bytes(), resolve, follow, &mut ask)
            .map(|p| String::from_utf8(p).unwrap_or_default())
    }

    #[test]
    fn plain_walks_follow_links() {
        assert_eq!(run("/s", "lnk", 0, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "lnk", 0, false), Ok("/s/lnk".into()));
        assert_eq!(run("/s", "abs", 0, true), Ok("/etc/passwd".into()));
        assert_eq!(run("/s", "up/s/a/b/../f", 0, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "dlnk", 0, true), Ok("/s/a/missing".into()));
        assert_eq!(run("/s", "a/f/x", 0, true), Err(ENOTDIR));
        assert_eq!(run("/s", "nope/x", 0, true), Err(ENOENT));
        assert_eq!(run("/s", "loop", 0, true), Err(ELOOP));
        assert_eq!(run("/", "../../s/a", 0, true), Ok("/s/a".into()));
        // A trailing slash follows the last link, and stays.
        assert_eq!(run("/s", "up/", 0, false), Ok("/".into()));
        assert_eq!(run("/s", "lnk/", 0, false), Ok("/s/a/f/".into()));
        assert_eq!(run("/s", "a/", 0, false), Ok("/s/a/".into()));
    }

    #[test]
    fn beneath_keeps_the_walk_in_its_start() {
        let b = RESOLVE_BENEATH;
        assert_eq!(run("/s", "a/b/../f", b, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "lnk", b, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "..", b, true), Err(EXDEV));
        assert_eq!(run("/s", "/etc/passwd", b, true), Err(EXDEV));
        assert_eq!(run("/s", "abs", b, true), Err(EXDEV));
        assert_eq!(run("/s", "up", b, true), Err(EXDEV));
        // Not followed, a link is the name itself.
        assert_eq!(run("/s", "abs", b, false), Ok("/s/abs".into()));
        assert_eq!(run("/proc", "self/cwd/f", b, true), Err(EXDEV));
    }

    #[test]
    fn in_root_takes_the_start_as_the_root() {
        let r = RESOLVE_IN_ROOT;
        assert_eq!(run("/s", "/a/f", r, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "../../a/f", r, true), Ok("/s/a/f".into()));
        assert_eq!(run("/s", "abs", r, true), Err(ENOENT));
        assert_eq!(run("/s", "up/lnk", r, true), Ok("/s/a/f".into()));
    }

    #[test]
    fn links_refused_on_request() {
        assert_eq!(run("/s", "lnk", RESOLVE_NO_SYMLINKS, true), Err(ELOOP));
        assert_eq!(
            run("/s", "lnk", RESOLVE_NO_SYMLINKS, false),
            Ok("/s/lnk".into())
        );
        assert_eq!(
            run("/", "proc/self/exe", RESOLVE_NO_MAGICLINKS, true),
            Err(ELOOP)
        );
        assert_eq!(run("/", "proc/self/exe", 0, true), Ok("/proc/7/exe".into()));
        assert_eq!(run("/", "proc/self/cwd/f", 0, true), Ok("/s/a/f".into()));
        // /proc/self is an ordinary link.
        assert_eq!(
            run("/", "proc/self/status", RESOLVE_NO_MAGICLINKS, true),
            Ok("/proc/7/status".into())
        );
    }

    #[test]
    fn no_xdev_stays_on_one_file_system() {
        let x = RESOLVE_NO_XDEV;
        assert_eq!(run("/s", "/proc/self/status", x, true), Err(EXDEV));
        assert_eq!(run("/s", "/etc/passwd", x, true), Ok("/etc/passwd".into()));
        assert_eq!(run("/proc", "..", x, true), Err(EXDEV));
        assert_eq!(
            run("/proc", "7/status", x, true),
            Ok("/proc/7/status".into())
        );
    }
}
