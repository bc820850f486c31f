//! inotify instances (inotify(7)): their watches, the events queued for
//! them, and the bytes a read of one gives.
//!
//! A watch is on a file or directory, known by its path and, for the
//! monitor's own file systems (the tmpfs and storage), by its inode, so
//! that a change made through another name (a hard link) or an open
//! descriptor reaches it. The kernel reports what the processor's
//! programs do ([`Instance::deliver`]); changes made by another processor
//! to a storage file are not seen, as an NFS client's inotify sees only
//! its own changes.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;

/// Every event a watch can ask for.
pub const ALL_EVENTS: u32 = 0xfff;
/// The events a directory's watch hears of for its children.
const CHILD_EVENTS: u32 = IN_ACCESS
    | IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_CLOSE_NOWRITE
    | IN_OPEN
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE;
/// Every bit inotify_add_watch knows (Linux's ALL_INOTIFY_BITS): a mask
/// with another is EINVAL, and so is one with none of these.
const ALL_BITS: u32 = ALL_EVENTS
    | 0x2000 // IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ISDIR
    | IN_ONESHOT;

/// Linux's default /proc/sys/fs/inotify/max_user_instances.
pub const MAX_INSTANCES: usize = 128;
/// The most watches of all instances together (ENOSPC past it; Linux's
/// max_user_watches scales with memory, from 8192 up).
pub const MAX_WATCHES: usize = 65536;

/// dnotify's events (fcntl F_NOTIFY), which the monitor serves with an
/// inotify watch of its own (`kernel/syscall/dnotify.rs`).
pub const DN_ACCESS: u64 = 0x1;
pub const DN_MODIFY: u64 = 0x2;
pub const DN_CREATE: u64 = 0x4;
pub const DN_DELETE: u64 = 0x8;
pub const DN_RENAME: u64 = 0x10;
pub const DN_ATTRIB: u64 = 0x20;
pub const DN_EVENTS: u64 = 0x3f;
pub const DN_MULTISHOT: u64 = 0x8000_0000;

/// The inotify events that make up dnotify's `events`, as Linux maps
/// both onto fsnotify's (dnotify.c's convert_arg).
pub fn from_dnotify(events: u64) -> u32 {
    let mut m = 0;
    for (dn, inotify) in [
        (DN_ACCESS, IN_ACCESS),
        (DN_MODIFY, IN_MODIFY),
        (DN_CREATE, IN_CREATE | IN_MOVED_TO),
        (DN_DELETE, IN_DELETE | IN_MOVED_FROM),
        (DN_RENAME, IN_MOVED_FROM | IN_MOVED_TO),
        (DN_ATTRIB, IN_ATTRIB),
    ] {
        if events & dn != 0 {
            m |= inotify;
        }
    }
    m
}

/// inotify_add_watch's check of its mask's bits, made before it looks at
/// its descriptor, as Linux's.
pub fn check_bits(mask: u32) -> Result<(), i64> {
    if mask & ALL_BITS == 0 || mask & !ALL_BITS != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Its check that IN_MASK_ADD and IN_MASK_CREATE are not both given,
/// made once the descriptor is found.
pub fn check_mask(mask: u32) -> Result<(), i64> {
    check_bits(mask)?;
    if mask & (IN_MASK_ADD | IN_MASK_CREATE) == IN_MASK_ADD | IN_MASK_CREATE {
        return Err(EINVAL);
    }
    Ok(())
}

/// Linux's default /proc/sys/fs/inotify/max_queued_events.
pub const MAX_QUEUED: usize = 16384;
/// sizeof(struct inotify_event): a name is padded to a multiple of it.
pub const EVENT_SIZE: usize = 16;

const EINVAL: i64 = 22;
const EEXIST: i64 = 17;

/// Which inode a watch is on, where the monitor knows inodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Tmp(u64),
    Store(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Watch {
    wd: i32,
    mask: u32,
    path: Vec<u8>,
    key: Option<Key>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's bytes with its NUL, padded to a multiple of the event's
    /// size (0 without a name), as Linux lays them out.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_SIZE) * EVENT_SIZE
        }
    }

    fn size(&self) -> usize {
        EVENT_SIZE + self.name_len()
    }
}

/// Something that happened to a file or directory, as the kernel tells
/// every instance.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The object's absolute path.
    pub path: &'a [u8],
    pub key: Option<Key>,
    /// One event (with IN_ISDIR for a directory).
    pub mask: u32,
    pub cookie: u32,
    /// Whether the object's own watch hears of it.
    pub to_self: bool,
    /// Whether its directory's watch hears of it (with its name).
    pub to_parent: bool,
    /// It is an open file whose last name went: a directory's watch with
    /// IN_EXCL_UNLINK does not hear of it.
    pub unlinked: bool,
}

/// The directory part and the last name of an absolute path.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// One inotify instance.
#[derive(Clone, Debug, Default)]
pub struct Instance {
    watches: Vec<Watch>,
    queue: VecDeque<Event>,
    next_wd: i32,
    /// Moves each time an event is queued (epoll's edge).
    pub generation: u64,
}

impl Instance {
    /// inotify_add_watch on the object at `path` (`key`: its inode):
    /// its watch descriptor. A second watch on the same object is the
    /// same watch, its mask replaced (or added to, IN_MASK_ADD; EEXIST
    /// with IN_MASK_CREATE).
    pub fn add(&mut self, path: &[u8], key: Option<Key>, mask: u32) -> Result<i32, i64> {
        check_mask(mask)?;
        let kept = mask & (ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT);
        if let Some(w) = self.watches.iter_mut().find(|w| same(w, path, key)) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(EEXIST);
            }
            w.mask = if mask & IN_MASK_ADD != 0 {
                w.mask | kept
            } else {
                kept
            };
            return Ok(w.wd);
        }
        self.next_wd += 1;
        self.watches.push(Watch {
            wd: self.next_wd,
            mask: kept,
            path: path.to_vec(),
            key,
        });
        Ok(self.next_wd)
    }

    /// inotify_rm_watch: the watch goes, and IN_IGNORED says so.
    pub fn remove(&mut self, wd: i32) -> Result<(), i64> {
        let at = self.watches.iter().position(|w| w.wd == wd).ok_or(EINVAL)?;
        self.watches.remove(at);
        self.queue(wd, IN_IGNORED, 0, &[]);
        Ok(())
    }

    /// Queues an event: one identical to the last one queued is merged
    /// into it; past the queue's limit, one IN_Q_OVERFLOW stands for the
    /// rest.
    fn queue(&mut self, wd: i32, mask: u32, cookie: u32, name: &[u8]) {
        let e = Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        };
        if self.queue.back() == Some(&e) {
            return;
        }
        if self.queue.len() >= MAX_QUEUED {
            if self.queue.back().is_some_and(|l| l.mask != IN_Q_OVERFLOW) {
                self.queue.push_back(Event {
                    wd: -1,
                    mask: IN_Q_OVERFLOW,
                    cookie: 0,
                    name: Vec::new(),
                });
                self.generation += 1;
            }
            return;
        }
        self.queue.push_back(e);
        self.generation += 1;
    }

    /// Tells this instance of `c`: the watch of the object's directory
    /// first (with the object's name), then the object's own, as Linux
    /// orders them. A one-shot watch goes after its event; a watch whose
    /// object is gone (IN_DELETE_SELF) goes too.
    pub fn deliver(&mut self, c: &Change) {
        let event = c.mask & ALL_EVENTS;
        let (dir, name) = split(c.path);
        // (watch, heard as the parent, queued): a watch whose object went
        // (IN_DELETE_SELF) goes whatever it asked for, with IN_IGNORED.
        let mut heard: Vec<(usize, bool, bool)> = Vec::new();
        for (i, w) in self.watches.iter().enumerate() {
            let excluded = c.unlinked && w.mask & IN_EXCL_UNLINK != 0;
            if c.to_parent
                && !excluded
                && event & CHILD_EVENTS != 0
                && w.path == dir
                && w.mask & event != 0
            {
                heard.push((i, true, true));
            }
        }
        for (i, w) in self.watches.iter().enumerate() {
            let mine = match (w.key, c.key) {
                (Some(a), Some(b)) => a == b,
                _ => w.path == c.path,
            };
            if c.to_self && mine && (w.mask & event != 0 || event == IN_DELETE_SELF) {
                heard.push((i, false, w.mask & event != 0));
            }
        }
        let mut gone: Vec<i32> = Vec::new();
        for (i, parent, queued) in heard {
            let w = &self.watches[i];
            let (wd, oneshot) = (w.wd, w.mask & IN_ONESHOT != 0);
            if gone.contains(&wd) {
                continue;
            }
            if queued {
                let named: &[u8] = if parent { name } else { &[] };
                self.queue(wd, c.mask, c.cookie, named);
            }
            if (queued && oneshot) || (!parent && event == IN_DELETE_SELF) {
                gone.push(wd);
            }
        }
        for wd in gone {
            let _ = self.remove(wd);
        }
    }

    /// A rename moved `from` to `to`: watches on it, or below it, follow.
    pub fn renamed(&mut self, from: &[u8], to: &[u8]) {
        for w in self.watches.iter_mut() {
            if w.path == from {
                w.path = to.to_vec();
            } else if w.path.starts_with(from) && w.path.get(from.len()) == Some(&b'/') {
                let mut p = to.to_vec();
                p.extend_from_slice(&w.path[from.len()..]);
                w.path = p;
            }
        }
    }

    /// Whether any watch may hear of something at `path` or in it.
    pub fn watches_near(&self, path: &[u8], key: Option<Key>) -> bool {
        let (dir, _) = split(path);
        self.watches
            .iter()
            .any(|w| w.path == path || w.path == dir || (key.is_some() && w.key == key))
    }

    /// Whether a watch is on a storage inode (found by inode only after
    /// a look at storage).
    pub fn watches_storage(&self) -> bool {
        self.watches
            .iter()
            .any(|w| matches!(w.key, Some(Key::Store(_))))
    }

    /// How many watches it has.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// RENAME_EXCHANGE swapped `a` and `b`: their watches (and those below
    /// them) trade paths.
    pub fn exchanged(&mut self, a: &[u8], b: &[u8]) {
        let mut tmp = a.to_vec();
        tmp.extend_from_slice(b"\0exchanging");
        self.renamed(a, &tmp);
        self.renamed(b, a);
        self.renamed(&tmp, b);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The bytes queued (FIONREAD).
    pub fn pending_bytes(&self) -> usize {
        self.queue.iter().map(Event::size).sum()
    }

    /// A read of up to `len` bytes: the whole events that fit, taken off
    /// the queue. EINVAL if the first does not fit; empty if none is
    /// queued.
    pub fn read(&mut self, len: usize) -> Result<Vec<u8>, i64> {
        let mut out = Vec::new();
        while let Some(e) = self.queue.front() {
            if out.len() + e.size() > len {
                if out.is_empty() {
                    return Err(EINVAL);
                }
                break;
            }
            let name_len = e.name_len();
            out.extend_from_slice(&e.wd.to_le_bytes());
            out.extend_from_slice(&e.mask.to_le_bytes());
            out.extend_from_slice(&e.cookie.to_le_bytes());
            out.extend_from_slice(&(name_len as u32).to_le_bytes());
            out.extend_from_slice(&e.name);
            out.resize(out.len() + name_len - e.name.len(), 0);
            self.queue.pop_front();
        }
        Ok(out)
    }
}

fn same(w: &Watch, path: &[u8], key: Option<Key>) -> bool {
    match (w.key, key) {
        (Some(a), Some(b)) => a == b,
        _ => w.path == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &[u8], key: Option<Key>, mask: u32) -> Change<'_> {
        Change {
            path,
            key,
            mask,
            cookie: 0,
            to_self: true,
            to_parent: true,
            unlinked: false,
        }
    }

    fn events(i: &mut Instance) -> Vec<(i32, u32, u32, Vec<u8>)> {
        let bytes = i.read(1 << 20).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        while at < bytes.len() {
            let len = word(at + 12) as usize;
            let name: Vec<u8> = bytes[at + 16..at + 16 + len]
                .iter()
                .copied()
                .take_while(|&b| b != 0)
                .collect();
            out.push((word(at) as i32, word(at + 4), word(at + 8), name));
            at += 16 + len;
        }
        out
    }

    #[test]
    fn a_directory_hears_of_its_children_and_a_file_of_itself() {
        let mut i = Instance::default();
        let d = i.add(b"/tmp/d", Some(Key::Tmp(2)), ALL_EVENTS).unwrap();
        let f = i.add(b"/tmp/d/f", Some(Key::Tmp(3)), IN_MODIFY).unwrap();
        assert_eq!((d, f), (1, 2));
        i.deliver(&change(b"/tmp/d/f", Some(Key::Tmp(3)), IN_MODIFY));
        assert_eq!(
            events(&mut i),
            [
                (d, IN_MODIFY, 0, b"f".to_vec()),
                (f, IN_MODIFY, 0, Vec::new())
            ]
        );
        // The same event as the last one queued merges with it.
        i.deliver(&change(b"/tmp/d/g", None, IN_MODIFY));
        i.deliver(&change(b"/tmp/d/g", None, IN_MODIFY));
        assert_eq!(events(&mut i), [(d, IN_MODIFY, 0, b"g".to_vec())]);
        // Through another name of the same inode: the file's watch hears.
        i.deliver(&change(b"/tmp/other", Some(Key::Tmp(3)), IN_MODIFY));
        assert_eq!(events(&mut i), [(f, IN_MODIFY, 0, Vec::new())]);
        // The same object watched again: the same watch, its mask replaced.
        assert_eq!(i.add(b"/tmp/d/f", Some(Key::Tmp(3)), IN_ATTRIB), Ok(f));
        i.deliver(&change(b"/tmp/x/f", Some(Key::Tmp(3)), IN_MODIFY));
        assert!(i.is_empty());
        assert_eq!(
            i.add(b"/tmp/d/f", Some(Key::Tmp(3)), IN_ATTRIB | IN_MASK_CREATE),
            Err(EEXIST)
        );
    }

    #[test]
    fn excl_unlink_leaves_out_unlinked_children() {
        let mut i = Instance::default();
        let plain = i.add(b"/tmp", None, IN_MODIFY).unwrap();
        let mut j = Instance::default();
        j.add(b"/tmp", None, IN_MODIFY | IN_EXCL_UNLINK).unwrap();
        let c = Change {
            unlinked: true,
            ..change(b"/tmp/gone", None, IN_MODIFY)
        };
        i.deliver(&c);
        j.deliver(&c);
        assert_eq!(events(&mut i), [(plain, IN_MODIFY, 0, b"gone".to_vec())]);
        assert!(j.is_empty());
    }

    #[test]
    fn names_are_padded_and_a_short_buffer_is_einval() {
        let mut i = Instance::default();
        i.add(b"/tmp", None, IN_CREATE).unwrap();
        i.deliver(&change(b"/tmp/abcdefghijklmnop", None, IN_CREATE));
        assert_eq!(i.pending_bytes(), 16 + 32);
        assert_eq!(i.read(47), Err(EINVAL));
        let b = i.read(48).unwrap();
        assert_eq!(b.len(), 48);
        assert_eq!(&b[16..33], b"abcdefghijklmnop\0");
        assert!(b[33..].iter().all(|&x| x == 0));
    }

    #[test]
    fn oneshot_delete_self_and_removal_end_with_ignored() {
        let mut i = Instance::default();
        let a = i.add(b"/tmp/a", None, IN_OPEN | IN_ONESHOT).unwrap();
        i.deliver(&change(b"/tmp/a", None, IN_OPEN));
        i.deliver(&change(b"/tmp/a", None, IN_OPEN));
        assert_eq!(
            events(&mut i),
            [(a, IN_OPEN, 0, Vec::new()), (a, IN_IGNORED, 0, Vec::new())]
        );
        let b = i.add(b"/tmp/b", None, IN_DELETE_SELF).unwrap();
        i.deliver(&change(b"/tmp/b", None, IN_DELETE_SELF));
        assert_eq!(
            events(&mut i),
            [
                (b, IN_DELETE_SELF, 0, Vec::new()),
                (b, IN_IGNORED, 0, Vec::new())
            ]
        );
        // A watch that did not ask for IN_DELETE_SELF goes all the same.
        let m = i.add(b"/tmp/m", None, IN_MODIFY).unwrap();
        i.deliver(&change(b"/tmp/m", None, IN_DELETE_SELF));
        assert_eq!(events(&mut i), [(m, IN_IGNORED, 0, Vec::new())]);
        let c = i.add(b"/tmp/c", None, IN_OPEN).unwrap();
        assert_eq!(i.remove(c), Ok(()));
        assert_eq!(i.remove(c), Err(EINVAL));
        assert_eq!(events(&mut i), [(c, IN_IGNORED, 0, Vec::new())]);
    }

    #[test]
    fn bad_masks_are_einval_and_renames_carry_watches() {
        let mut i = Instance::default();
        assert_eq!(i.add(b"/x", None, 0), Err(EINVAL));
        // Bits Linux knows are taken, even without an event.
        assert!(i.add(b"/x", None, IN_OPEN | IN_IGNORED).is_ok());
        assert!(i.add(b"/y", None, IN_ONLYDIR).is_ok());
        assert_eq!(i.add(b"/x", None, IN_OPEN | 0x1_0000), Err(EINVAL));
        assert_eq!(
            i.add(b"/x", None, IN_OPEN | IN_MASK_ADD | IN_MASK_CREATE),
            Err(EINVAL)
        );
        let w = i.add(b"/tmp/d/sub", None, IN_CREATE).unwrap();
        i.renamed(b"/tmp/d", b"/tmp/e");
        i.deliver(&change(b"/tmp/e/sub/new", None, IN_CREATE));
        assert_eq!(events(&mut i), [(w, IN_CREATE, 0, b"new".to_vec())]);
        i.renamed(b"/tmp/e/su", b"/tmp/z");
        assert!(
            i.watches_near(b"/tmp/e/sub/x", None),
            "a prefix of a name is not its directory"
        );
    }

    #[test]
    fn the_queue_overflows_once() {
        let mut i = Instance::default();
        i.add(b"/tmp", None, IN_CREATE).unwrap();
        for n in 0..MAX_QUEUED + 10 {
            let name = alloc::format!("/tmp/{n}");
            i.deliver(&change(name.as_bytes(), None, IN_CREATE));
        }
        let all = events(&mut i);
        assert_eq!(all.len(), MAX_QUEUED + 1);
        assert_eq!(all.last().map(|e| (e.0, e.1)), Some((-1, IN_Q_OVERFLOW)));
    }

    #[test]
    fn each_dnotify_event_is_linuxs_inotify_events() {
        assert_eq!(from_dnotify(0), 0);
        assert_eq!(from_dnotify(DN_MULTISHOT), 0);
        assert_eq!(from_dnotify(DN_ACCESS), IN_ACCESS);
        assert_eq!(from_dnotify(DN_CREATE), IN_CREATE | IN_MOVED_TO);
        assert_eq!(
            from_dnotify(DN_DELETE | DN_ATTRIB),
            IN_DELETE | IN_MOVED_FROM | IN_ATTRIB
        );
    }
}
