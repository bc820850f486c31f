//! The options that only some roles take, checked against the role and
//! against each other before anything boots: a wrong one is a sentence
//! and exit 2 (`VmmError::BadOption`), never a guest that fails later.

use crate::block;
use crate::cli::{self, Args};
use crate::error::{Result, VmmError};
use crate::fabric;

/// `--storage`: a processor running a program, naming a known peer that
/// is not the program's memory. Returns the id, 0 for none.
pub fn check_storage(args: &Args, fabric: &Option<fabric::Config>, program: bool) -> Result<u32> {
    let Some(s) = args.storage else {
        return Ok(0);
    };
    let bad = |why: String| VmmError::BadOption {
        option: "--storage",
        why,
    };
    if !program {
        return Err(bad(
            "it serves a program's files: give a program after -- (on a processor)".into(),
        ));
    }
    match fabric {
        Some(f) if f.peers.contains_key(&s) => {}
        _ => {
            return Err(bad(format!(
                "component {s} has no address; add --peer {s}=ADDR"
            )))
        }
    }
    if args.memory == Some(s) {
        return Err(bad(format!(
            "component {s} cannot be both the program's memory (--memory) and its storage"
        )));
    }
    Ok(s)
}

/// `--disk` and `--disk-size`: the storage component's disk, opened and
/// locked for this process.
pub fn open_disk(args: &Args) -> Result<Option<block::Disk>> {
    let Some(path) = &args.disk else {
        return Ok(None);
    };
    if args.role.role() != lego_proto::boot::Role::Storage {
        return Err(VmmError::BadOption {
            option: "--disk",
            why: "only a storage component has a disk (--role storage)".into(),
        });
    }
    let size = args
        .disk_size
        .as_deref()
        .map(cli::parse_disk_size)
        .transpose()?;
    Ok(Some(block::Disk::open(path, size)?))
}

/// `--backup`: memory components only, another component.
pub fn check_backup(args: &Args, id: u32) -> Result<()> {
    let Some(b) = args.backup else {
        return Ok(());
    };
    let bad = |why: String| VmmError::BadOption {
        option: "--backup",
        why,
    };
    if args.role.role() != lego_proto::boot::Role::Memory {
        return Err(bad(
            "only a memory component has a backup (processors learn it from their memory components)".into(),
        ));
    }
    if b == id || b == 0 {
        return Err(bad(format!(
            "{b} cannot keep this component's copy: give another memory component's id"
        )));
    }
    if args.vregion_peers.contains(&b) {
        return Err(bad(format!(
            "component {b} cannot both keep this component's copy and own vRegions handed out by it (the copy holds each process whole): give --backup a component not in --vregion-peers"
        )));
    }
    Ok(())
}

/// `--vregion-peers`: memory components only, each a known peer, at most
/// [`MAX_VREGION_PEERS`](lego_proto::memory::MAX_VREGION_PEERS), no repeats.
pub fn check_vregion_peers<A>(
    args: &Args,
    id: u32,
    peers: &std::collections::HashMap<u32, A>,
) -> Result<()> {
    let bad = |why: String| VmmError::BadOption {
        option: "--vregion-peers",
        why,
    };
    let list = &args.vregion_peers;
    if list.is_empty() {
        return Ok(());
    }
    if args.role.role() != lego_proto::boot::Role::Memory {
        return Err(bad("only a memory component hands out vRegions".into()));
    }
    if list.len() > lego_proto::memory::MAX_VREGION_PEERS {
        return Err(bad(format!(
            "{} components given; at most {} are supported",
            list.len(),
            lego_proto::memory::MAX_VREGION_PEERS
        )));
    }
    for (i, p) in list.iter().enumerate() {
        if *p == id {
            return Err(bad(format!(
                "{p} is this component itself; it always owns a process's first vRegion"
            )));
        }
        if !peers.contains_key(p) {
            return Err(bad(format!(
                "component {p} has no address; add --peer {p}=ADDR"
            )));
        }
        if list[..i].contains(p) {
            return Err(bad(format!("component {p} is given twice")));
        }
    }
    Ok(())
}
