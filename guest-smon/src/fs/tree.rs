//! The whole namespace and inode table, in memory. Records change it only
//! through [`Tree::apply`], the same code at run time and at log replay, so
//! what replay rebuilds is exactly what the running file system had.

use super::codec::{Dec, Enc, Malformed};
use super::layout::BLOCK;
use super::log::{BlockRef, Record};
use super::Kind;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use xxhash_rust::xxh3::xxh3_64;

pub const ROOT: u64 = 1;
pub const NAME_MAX: usize = 255;
/// Names one file may have, as ext4's limit: EMLINK beyond.
pub const LINK_MAX: usize = 65000;

/// The readdir cookie of a name: its position in the directory's order.
/// Hash order, not name order, so that a cookie stays meaningful however
/// the directory changes between two readdir calls; 1 and 2 are "." and "..".
pub fn name_key(name: &[u8]) -> u64 {
    3 + (xxh3_64(name) >> 2)
}

// The processor places the host's names after storage's, from here.
const _: () = assert!(3 + (u64::MAX >> 2) < lego_proto::storage::READDIR_COOKIE_END);

pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == b'/' || b == 0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub kind: Kind,
    /// Permission bits only; the type comes from `kind`.
    pub mode: u32,
    /// Owner and group (root's, 0, on disks from before owners were kept).
    pub uid: u32,
    pub gid: u32,
    /// The directory holding it (the root's is itself): its first name. A
    /// checkpoint stores the namespace as a list of inodes under their
    /// first names, then the other names of hard-linked files.
    pub parent: u64,
    pub name: Vec<u8>,
    /// A file's (or symlink's) other names, hard links: (directory, name).
    /// Directories have none.
    pub links: Vec<(u64, Vec<u8>)>,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    /// Bytes, for files and symlinks.
    pub size: u64,
    pub subdirs: u32,
    pub children: BTreeMap<(u64, Vec<u8>), u64>,
    /// File block number → where it lives; absent = hole.
    pub blocks: BTreeMap<u64, BlockRef>,
    pub target: Vec<u8>,
}

impl Inode {
    fn new(kind: Kind, mode: u32, parent: u64, name: Vec<u8>, time: u64) -> Self {
        Inode {
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            parent,
            name,
            links: Vec::new(),
            atime: time,
            mtime: time,
            ctime: time,
            size: 0,
            subdirs: 0,
            children: BTreeMap::new(),
            blocks: BTreeMap::new(),
            target: Vec::new(),
        }
    }
}

type Bad = &'static str;

impl Inode {
    /// Name `from` of this inode becomes `to`, or goes (None; the inode
    /// keeps another name, its first name if `from` was that).
    fn rename_name(&mut self, from: (u64, &[u8]), to: Option<(u64, Vec<u8>)>) -> Result<(), Bad> {
        let first = self.parent == from.0 && self.name == from.1;
        let at = self
            .links
            .iter()
            .position(|(p, n)| *p == from.0 && n == from.1);
        match (first, at, to) {
            (true, _, Some((p, n))) => (self.parent, self.name) = (p, n),
            (true, _, None) => {
                if self.links.is_empty() {
                    return Err("last name of an inode");
                }
                (self.parent, self.name) = self.links.remove(0);
            }
            (false, Some(k), Some(to)) => self.links[k] = to,
            (false, Some(k), None) => {
                self.links.remove(k);
            }
            (false, None, _) => return Err("entry disagrees with the inode"),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub inodes: BTreeMap<u64, Inode>,
    pub next_ino: u64,
}

impl Tree {
    pub fn new(now: u64) -> Self {
        let mut inodes = BTreeMap::new();
        inodes.insert(ROOT, Inode::new(Kind::Dir, 0o755, ROOT, Vec::new(), now));
        Tree {
            inodes,
            next_ino: ROOT + 1,
        }
    }

    pub fn get(&self, ino: u64) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    pub fn lookup(&self, dir: u64, name: &[u8]) -> Option<u64> {
        self.inodes
            .get(&dir)?
            .children
            .get(&(name_key(name), name.to_vec()))
            .copied()
    }

    /// Whether `ino` is `anc` or lies below it (by any of its names).
    pub fn is_within(&self, ino: u64, anc: u64) -> bool {
        if let Some(i) = self.inodes.get(&ino) {
            if ino != anc && i.links.iter().any(|(p, _)| self.is_within_by(*p, anc)) {
                return true;
            }
        }
        self.is_within_by(ino, anc)
    }

    /// [`Tree::is_within`] by first names only.
    fn is_within_by(&self, mut ino: u64, anc: u64) -> bool {
        // Bounded: a cycle cannot exist, but a bug must not hang the monitor.
        for _ in 0..=self.inodes.len() {
            if ino == anc {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.inodes.get(&ino) {
                Some(i) => ino = i.parent,
                None => return false,
            }
        }
        false
    }

    fn dir(&self, ino: u64) -> Result<&Inode, Bad> {
        match self.inodes.get(&ino) {
            Some(i) if i.kind == Kind::Dir => Ok(i),
            _ => Err("parent is not a directory"),
        }
    }

    fn child(&self, parent: u64, name: &[u8]) -> Result<(u64, &Inode), Bad> {
        self.dir(parent)?;
        let ino = self.lookup(parent, name).ok_or("name not found")?;
        Ok((ino, self.inodes.get(&ino).ok_or("dangling entry")?))
    }

    /// Checks `rec` against the tree without changing anything.
    pub fn validate(&self, rec: &Record) -> Result<(), Bad> {
        match rec {
            Record::Create {
                parent,
                name,
                ino,
                kind,
                target,
                ..
            } => {
                self.dir(*parent)?;
                if !valid_name(name) {
                    return Err("bad name");
                }
                if self.lookup(*parent, name).is_some() {
                    return Err("name exists");
                }
                // Inode numbers are never reused.
                if *ino < self.next_ino || *ino == u64::MAX {
                    return Err("inode number reused");
                }
                if (*kind == Kind::Symlink) == target.is_empty() {
                    return Err("symlink target");
                }
            }
            Record::Unlink { parent, name, .. } => {
                if self.child(*parent, name)?.1.kind == Kind::Dir {
                    return Err("unlink of a directory");
                }
            }
            Record::Rmdir { parent, name, .. } => {
                let (_, c) = self.child(*parent, name)?;
                if c.kind != Kind::Dir || !c.children.is_empty() {
                    return Err("rmdir of a non-empty directory");
                }
            }
            Record::Rename {
                from_parent,
                from_name,
                to_parent,
                to_name,
                ..
            } => {
                let (src, s) = self.child(*from_parent, from_name)?;
                self.dir(*to_parent)?;
                if !valid_name(to_name) {
                    return Err("bad name");
                }
                if let Some(dst) = self.lookup(*to_parent, to_name) {
                    let d = self.inodes.get(&dst).ok_or("dangling entry")?;
                    if dst != src {
                        let ok = match (s.kind == Kind::Dir, d.kind == Kind::Dir) {
                            (true, true) => d.children.is_empty(),
                            (false, false) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err("rename over an incompatible target");
                        }
                    }
                }
                if s.kind == Kind::Dir && self.is_within(*to_parent, src) {
                    return Err("rename of a directory into itself");
                }
            }
            Record::Link {
                ino, parent, name, ..
            } => {
                let i = self.inodes.get(ino).ok_or("no such inode")?;
                if i.kind == Kind::Dir {
                    return Err("hard link to a directory");
                }
                if i.links.len() + 1 >= LINK_MAX {
                    return Err("too many links");
                }
                self.dir(*parent)?;
                if !valid_name(name) {
                    return Err("bad name");
                }
                if self.lookup(*parent, name).is_some() {
                    return Err("name exists");
                }
            }
            Record::SetMode { ino, .. }
            | Record::SetTimes { ino, .. }
            | Record::SetOwner { ino, .. } => {
                self.inodes.get(ino).ok_or("no such inode")?;
            }
            Record::SetSize {
                ino, size, tail, ..
            } => {
                self.file(*ino)?;
                if tail.is_some() && size % BLOCK as u64 == 0 {
                    return Err("tail block at a block boundary");
                }
            }
            Record::WriteBlocks {
                ino,
                first,
                refs,
                size,
                ..
            } => {
                self.file(*ino)?;
                let end = first
                    .checked_add(refs.len() as u64)
                    .ok_or("block number overflow")?;
                if refs.is_empty() || end > size.div_ceil(BLOCK as u64) {
                    return Err("blocks beyond the size");
                }
            }
        }
        Ok(())
    }

    fn file(&self, ino: u64) -> Result<&Inode, Bad> {
        match self.inodes.get(&ino) {
            Some(i) if i.kind == Kind::File => Ok(i),
            _ => Err("not a file"),
        }
    }

    fn get_mut(&mut self, ino: u64) -> Result<&mut Inode, Bad> {
        self.inodes.get_mut(&ino).ok_or("no such inode")
    }

    fn touch_dir(&mut self, ino: u64, time: u64, subdirs: i32) -> Result<(), Bad> {
        let d = self.get_mut(ino)?;
        d.mtime = time;
        d.ctime = time;
        d.subdirs = d
            .subdirs
            .checked_add_signed(subdirs)
            .ok_or("subdir count")?;
        Ok(())
    }

    /// Removes `parent/name` from the tree; returns the data blocks it held
    /// (none while the file has other names).
    fn remove(&mut self, parent: u64, name: &[u8], time: u64) -> Result<Vec<u64>, Bad> {
        let ino = self.lookup(parent, name).ok_or("name not found")?;
        let i = self.get_mut(ino)?;
        let freed = if i.links.is_empty() {
            let gone = self.inodes.remove(&ino).ok_or("dangling entry")?;
            let dir = gone.kind == Kind::Dir;
            self.touch_dir(parent, time, if dir { -1 } else { 0 })?;
            gone.blocks.values().map(|b| b.phys).collect()
        } else {
            i.rename_name((parent, name), None)?;
            i.ctime = time;
            self.touch_dir(parent, time, 0)?;
            Vec::new()
        };
        self.get_mut(parent)?
            .children
            .remove(&(name_key(name), name.to_vec()));
        Ok(freed)
    }

    /// Applies `rec`; returns the data blocks it stopped using, which the
    /// caller must not reuse until the record is durable.
    pub fn apply(&mut self, rec: &Record) -> Result<Vec<u64>, Bad> {
        self.validate(rec)?;
        let mut freed = Vec::new();
        match rec {
            Record::Create {
                parent,
                name,
                ino,
                kind,
                mode,
                uid,
                gid,
                time,
                target,
            } => {
                let mut i = Inode::new(*kind, *mode, *parent, name.clone(), *time);
                (i.uid, i.gid) = (*uid, *gid);
                if *kind == Kind::Symlink {
                    i.target = target.clone();
                    i.size = target.len() as u64;
                }
                self.inodes.insert(*ino, i);
                self.next_ino = ino + 1;
                let p = self.get_mut(*parent)?;
                p.children.insert((name_key(name), name.clone()), *ino);
                let sub = if *kind == Kind::Dir { 1 } else { 0 };
                self.touch_dir(*parent, *time, sub)?;
            }
            Record::Unlink { parent, name, time } | Record::Rmdir { parent, name, time } => {
                freed = self.remove(*parent, name, *time)?;
            }
            Record::Rename {
                from_parent,
                from_name,
                to_parent,
                to_name,
                time,
            } => {
                let src = self
                    .lookup(*from_parent, from_name)
                    .ok_or("name not found")?;
                if self.lookup(*to_parent, to_name) == Some(src) {
                    return Ok(freed);
                }
                if self.lookup(*to_parent, to_name).is_some() {
                    freed = self.remove(*to_parent, to_name, *time)?;
                }
                self.get_mut(*from_parent)?
                    .children
                    .remove(&(name_key(from_name), from_name.clone()));
                let s = self.get_mut(src)?;
                s.rename_name(
                    (*from_parent, from_name),
                    Some((*to_parent, to_name.clone())),
                )?;
                s.ctime = *time;
                let sub = if s.kind == Kind::Dir { 1 } else { 0 };
                self.touch_dir(*from_parent, *time, -sub)?;
                self.get_mut(*to_parent)?
                    .children
                    .insert((name_key(to_name), to_name.clone()), src);
                self.touch_dir(*to_parent, *time, sub)?;
            }
            Record::Link {
                ino,
                parent,
                name,
                time,
            } => {
                let i = self.get_mut(*ino)?;
                i.links.push((*parent, name.clone()));
                i.ctime = *time;
                self.get_mut(*parent)?
                    .children
                    .insert((name_key(name), name.clone()), *ino);
                self.touch_dir(*parent, *time, 0)?;
            }
            Record::SetMode { ino, mode, time } => {
                let i = self.get_mut(*ino)?;
                i.mode = mode & 0o7777;
                i.ctime = *time;
            }
            Record::SetOwner {
                ino,
                uid,
                gid,
                mode,
                time,
            } => {
                let i = self.get_mut(*ino)?;
                (i.uid, i.gid, i.mode) = (*uid, *gid, mode & 0o7777);
                i.ctime = *time;
            }
            Record::SetTimes {
                ino,
                atime,
                mtime,
                time,
            } => {
                let i = self.get_mut(*ino)?;
                if let Some(a) = atime {
                    i.atime = *a;
                }
                if let Some(m) = mtime {
                    i.mtime = *m;
                }
                i.ctime = *time;
            }
            Record::SetSize {
                ino,
                size,
                time,
                tail,
            } => {
                let i = self.get_mut(*ino)?;
                let keep = size.div_ceil(BLOCK as u64);
                let dropped = i.blocks.split_off(&keep);
                freed.extend(dropped.values().map(|b| b.phys));
                if let Some(t) = tail {
                    if let Some(old) = i.blocks.insert(size / BLOCK as u64, *t) {
                        freed.push(old.phys);
                    }
                }
                i.size = *size;
                i.mtime = *time;
                i.ctime = *time;
            }
            Record::WriteBlocks {
                ino,
                first,
                refs,
                size,
                time,
            } => {
                let i = self.get_mut(*ino)?;
                for (k, r) in refs.iter().enumerate() {
                    if let Some(old) = i.blocks.insert(first + k as u64, *r) {
                        freed.push(old.phys);
                    }
                }
                i.size = *size;
                i.mtime = *time;
                i.ctime = *time;
            }
        }
        Ok(freed)
    }

    /// The checkpoint payload: `next_ino`, the inode count, then every inode
    /// in pre-order (a parent before its children) so that loading can link
    /// each inode into an already-loaded directory.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u64(self.next_ino);
        e.u64(self.inodes.len() as u64);
        // An explicit stack: directory depth is up to the user, the
        // monitor's stack is small.
        let mut stack = alloc::vec![ROOT];
        while let Some(ino) = stack.pop() {
            let Some(i) = self.inodes.get(&ino) else {
                continue;
            };
            e.u64(ino);
            e.u64(i.parent);
            e.bytes(&i.name);
            e.u8(i.kind as u8);
            e.u32(i.mode);
            e.u64(i.atime);
            e.u64(i.mtime);
            e.u64(i.ctime);
            e.u64(i.size);
            match i.kind {
                Kind::File => {
                    e.u64(i.blocks.len() as u64);
                    for (fb, b) in &i.blocks {
                        e.u64(*fb);
                        e.u64(b.phys);
                        e.u64(b.hash);
                    }
                }
                Kind::Symlink => e.bytes(&i.target),
                Kind::Fifo | Kind::Socket => {}
                // Each inode once, under its first name.
                Kind::Dir => stack.extend(i.children.iter().rev().filter_map(|((_, n), c)| {
                    let ci = self.inodes.get(c)?;
                    (ci.parent == ino && &ci.name == n).then_some(*c)
                })),
            }
        }
        // Then the other names of hard-linked files: their directories may
        // come after the file above. Without any, the checkpoint ends here,
        // as one written before hard links did (which older builds read).
        let links: Vec<(u64, &(u64, Vec<u8>))> = self
            .inodes
            .iter()
            .flat_map(|(ino, i)| i.links.iter().map(move |l| (*ino, l)))
            .collect();
        // Then the owners of the inodes not root's, in the same way: a
        // checkpoint of root's files alone ends as one from before owners
        // were kept.
        let owned: Vec<(u64, &Inode)> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.uid != 0 || i.gid != 0)
            .map(|(ino, i)| (*ino, i))
            .collect();
        if links.is_empty() && owned.is_empty() {
            return e.0;
        }
        e.u64(links.len() as u64);
        for (ino, (parent, name)) in links {
            e.u64(ino);
            e.u64(*parent);
            e.bytes(name);
        }
        if owned.is_empty() {
            return e.0;
        }
        e.u64(owned.len() as u64);
        for (ino, i) in owned {
            e.u64(ino);
            e.u32(i.uid);
            e.u32(i.gid);
        }
        e.0
    }

    pub fn decode(b: &[u8]) -> Result<Tree, Bad> {
        let m = |e: Malformed| e.0;
        let mut d = Dec::new(b);
        let next_ino = d.u64().map_err(m)?;
        let count = d.u64().map_err(m)?;
        let mut t = Tree {
            inodes: BTreeMap::new(),
            next_ino,
        };
        for n in 0..count {
            let ino = d.u64().map_err(m)?;
            let parent = d.u64().map_err(m)?;
            let name = d.bytes().map_err(m)?.to_vec();
            let kind = Kind::from_u8(d.u8().map_err(m)?).ok_or("bad kind")?;
            let mode = d.u32().map_err(m)?;
            let mut i = Inode::new(kind, mode, parent, name, 0);
            i.atime = d.u64().map_err(m)?;
            i.mtime = d.u64().map_err(m)?;
            i.ctime = d.u64().map_err(m)?;
            i.size = d.u64().map_err(m)?;
            match kind {
                Kind::File => {
                    let nb = d.u64().map_err(m)?;
                    let limit = i.size.div_ceil(BLOCK as u64);
                    for _ in 0..nb {
                        let fb = d.u64().map_err(m)?;
                        let r = BlockRef {
                            phys: d.u64().map_err(m)?,
                            hash: d.u64().map_err(m)?,
                        };
                        if fb >= limit || i.blocks.insert(fb, r).is_some() {
                            return Err("checkpoint block map");
                        }
                    }
                }
                Kind::Symlink => {
                    i.target = d.bytes().map_err(m)?.to_vec();
                    if i.target.is_empty() {
                        return Err("checkpoint symlink");
                    }
                }
                Kind::Dir | Kind::Fifo | Kind::Socket => {}
            }
            if ino >= next_ino || t.inodes.contains_key(&ino) {
                return Err("checkpoint inode number");
            }
            if n == 0 {
                if ino != ROOT || kind != Kind::Dir || parent != ROOT {
                    return Err("checkpoint root");
                }
                t.inodes.insert(ino, i);
                continue;
            }
            if !valid_name(&i.name) {
                return Err("checkpoint name");
            }
            let key = (name_key(&i.name), i.name.clone());
            let p = t.inodes.get_mut(&parent).ok_or("checkpoint parent")?;
            if p.kind != Kind::Dir || p.children.insert(key, ino).is_some() {
                return Err("checkpoint entry");
            }
            if kind == Kind::Dir {
                p.subdirs += 1;
            }
            t.inodes.insert(ino, i);
        }
        if !d.done() {
            let links = d.u64().map_err(m)?;
            for _ in 0..links {
                let ino = d.u64().map_err(m)?;
                let parent = d.u64().map_err(m)?;
                let name = d.bytes().map_err(m)?.to_vec();
                let rec = Record::Link {
                    ino,
                    parent,
                    name: name.clone(),
                    time: 0,
                };
                t.validate(&rec).map_err(|_| "checkpoint link")?;
                let i = t.inodes.get_mut(&ino).ok_or("checkpoint link")?;
                i.links.push((parent, name.clone()));
                let p = t.inodes.get_mut(&parent).ok_or("checkpoint link")?;
                p.children.insert((name_key(&name), name), ino);
            }
        }
        if !d.done() {
            let owned = d.u64().map_err(m)?;
            for _ in 0..owned {
                let ino = d.u64().map_err(m)?;
                let i = t.inodes.get_mut(&ino).ok_or("checkpoint owner")?;
                i.uid = d.u32().map_err(m)?;
                i.gid = d.u32().map_err(m)?;
            }
        }
        if !d.done() || t.inodes.is_empty() {
            return Err("checkpoint length");
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(parent: u64, name: &str, ino: u64, kind: Kind) -> Record {
        Record::Create {
            parent,
            name: name.as_bytes().to_vec(),
            ino,
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            time: 1,
            target: if kind == Kind::Symlink {
                b"t".to_vec()
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn apply_validates_and_checkpoint_round_trips() {
        let mut t = Tree::new(0);
        t.apply(&create(1, "d", 2, Kind::Dir)).unwrap();
        t.apply(&create(2, "f", 3, Kind::File)).unwrap();
        t.apply(&create(1, "l", 4, Kind::Symlink)).unwrap();
        assert!(t.apply(&create(1, "d", 5, Kind::File)).is_err());
        assert!(t.apply(&create(1, "x", 3, Kind::File)).is_err());
        assert!(t.apply(&create(3, "x", 9, Kind::File)).is_err());
        assert!(t
            .apply(&Record::Rmdir {
                parent: 1,
                name: b"d".to_vec(),
                time: 2
            })
            .is_err());
        let w = Record::WriteBlocks {
            ino: 3,
            first: 0,
            refs: alloc::vec![BlockRef { phys: 7, hash: 1 }],
            size: 10,
            time: 3,
        };
        assert_eq!(t.apply(&w), Ok(Vec::new()));
        assert_eq!(t.apply(&w), Ok(alloc::vec![7]));
        assert!(t
            .apply(&Record::Rename {
                from_parent: 1,
                from_name: b"d".to_vec(),
                to_parent: 2,
                to_name: b"e".to_vec(),
                time: 4
            })
            .is_err());
        assert_eq!(t.get(1).unwrap().subdirs, 1);
        let back = Tree::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        // Without hard links, no list of them: as before them.
        let enc = t.encode();
        let mut listed = enc.clone();
        listed.extend_from_slice(&[0; 8]);
        assert_eq!(Tree::decode(&listed).unwrap(), t);

        // Hard links: to files and symlinks, not directories; the other
        // names come after the inodes and the file is encoded once.
        let link = |ino, parent, name: &str| Record::Link {
            ino,
            parent,
            name: name.as_bytes().to_vec(),
            time: 5,
        };
        assert!(t.apply(&link(2, 1, "dd")).is_err());
        assert!(t.apply(&link(3, 1, "l")).is_err());
        assert!(t.apply(&link(3, 3, "x")).is_err());
        t.apply(&link(3, 1, "h")).unwrap();
        t.apply(&link(3, 2, "g")).unwrap();
        t.apply(&link(4, 2, "l2")).unwrap();
        assert_eq!(t.get(3).unwrap().links.len(), 2);
        assert!(t.is_within(3, 1) && t.is_within(3, 2));
        let enc = t.encode();
        assert_eq!(Tree::decode(&enc).unwrap(), t);
        for cut in 0..enc.len() {
            assert!(Tree::decode(&enc[..cut]).map_or(true, |b| b != t));
        }
        // Its first name going promotes another; the last one frees it.
        let unlink = |parent, name: &str| Record::Unlink {
            parent,
            name: name.as_bytes().to_vec(),
            time: 6,
        };
        assert_eq!(t.apply(&unlink(2, "f")), Ok(Vec::new()));
        assert_eq!(
            (t.get(3).unwrap().parent, &t.get(3).unwrap().name[..]),
            (1, &b"h"[..])
        );
        assert_eq!(t.apply(&unlink(1, "h")), Ok(Vec::new()));
        assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        assert_eq!(t.apply(&unlink(2, "g")), Ok(alloc::vec![7]));
        assert!(t.get(3).is_none());
    }
}
