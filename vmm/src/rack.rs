//! This component's membership in a rack run by the global managers
//! (`--globals`): registering before boot (`join`: the id, and the peers
//! the managers know), what the rack's decisions mean here (the home for
//! runs, the storage for their files), and once the VM exists, the
//! heartbeats with this component's load and the checks the managers'
//! grants call for (`keep_alive`). The protocol itself is `globals`.

use std::path::PathBuf;
use std::sync::Arc;

use core::mem::offset_of;

use lego_control::{Component, Role};
use lego_proto::boot::BootInfo;

use crate::cli::{self, Args};
use crate::error::{Result, VmmError};

pub struct Membership {
    pub id: u32,
    /// `--backup` was given (the managers' choice does not replace it).
    backup_given: bool,
    /// Every component the managers knew when this one registered.
    pub known: Vec<Component>,
    stream: std::net::TcpStream,
    registration: crate::globals::Registration,
}

/// Registers with the managers of `--globals`, if given; `control` is a
/// processor's bound control address, `bound` the fabric's.
pub fn join(
    args: &Args,
    control: Option<String>,
    bound: Option<String>,
) -> Result<Option<Membership>> {
    let Some(globals) = &args.globals else {
        return Ok(None);
    };
    let role = match args.role.role() {
        lego_proto::boot::Role::Processor => Role::Processor,
        lego_proto::boot::Role::Memory => Role::Memory,
        lego_proto::boot::Role::Storage => Role::Storage,
    };
    let fabric = args
        .advertise
        .clone()
        .or(bound)
        .or_else(|| args.listen.clone())
        .unwrap_or_default();
    let disk_bytes = match &args.disk {
        Some(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0).max(
            args.disk_size
                .as_deref()
                .map(cli::parse_disk_size)
                .transpose()?
                .unwrap_or(0),
        ),
        None => 0,
    };
    let excache_bytes = match &args.excache {
        Some(t) => cli::parse_excache(t)? as u64 * 4096,
        None if role == Role::Processor => 64 << 20,
        None => 0,
    };
    let mut registration = crate::globals::Registration {
        globals: globals.to_owned(),
        id: args.id.unwrap_or(0),
        role,
        fabric,
        control,
        resources: lego_control::Resources {
            mem_bytes: cli::parse_mem(&args.mem)?,
            vcpus: args.vcpus,
            excache_bytes,
            disk_bytes,
        },
    };
    let (id, known, stream) = crate::globals::join(&registration)?;
    registration.id = id;
    Ok(Some(Membership {
        id,
        backup_given: args.backup.is_some(),
        known,
        stream,
        registration,
    }))
}

impl Membership {
    /// `--peer` entries, with each other component that is up and that
    /// they do not name added as ID=ADDR.
    pub fn peer_texts(&self, given: &[String]) -> Vec<String> {
        let mut texts = given.to_vec();
        for c in self.known.iter().filter(|c| c.id != self.id && c.up) {
            let named = given.iter().any(|t| {
                t.split_once('=')
                    .is_some_and(|(i, _)| i.trim() == c.id.to_string())
            });
            if !named {
                texts.push(format!("{}={}", c.id, c.fabric));
            }
        }
        texts
    }

    /// The memory manager's rule for a home: the memory component with the
    /// most free memory (of those up when this one joined).
    pub fn home(&self) -> Option<u32> {
        self.known
            .iter()
            .filter(|c| c.role == Role::Memory && c.up)
            .max_by_key(|c| {
                let free = c.resources.mem_bytes.saturating_sub(c.load.used_bytes);
                (free, std::cmp::Reverse(c.id))
            })
            .map(|c| c.id)
    }

    /// The storage component a processor serving runs reaches (the first
    /// one up).
    pub fn storage(&self) -> Option<u32> {
        self.known
            .iter()
            .filter(|c| c.role == Role::Storage && c.up)
            .map(|c| c.id)
            .min()
    }

    /// Once the VM exists: the checks the managers' decisions call for (a
    /// storage component's vNode grants, a memory component's process
    /// owners) and the heartbeats, for the life of the process.
    pub fn keep_alive(
        self,
        shared: &Arc<crate::vcpu::Shared>,
        runs: Option<Arc<crate::runs::Runs>>,
        disk: Option<PathBuf>,
    ) -> Result<()> {
        let grants = Arc::new(crate::grants::Grants::default());
        match (&shared.fabric, self.registration.role) {
            (Some(f), Role::Storage) => {
                let g = grants.clone();
                let _ = f.guard.set(Box::new(move |src, _, payload, record| {
                    g.check(src, payload, record)
                }));
            }
            (Some(f), Role::Memory) => {
                let owners = crate::process_owners::ProcessOwners::default();
                let _ = f.guard.set(Box::new(move |src, role, payload, record| {
                    owners.check(src, role, payload, record)
                }));
            }
            _ => {}
        }
        if let Some(f) = &shared.fabric {
            f.learns_peers();
        }
        let used = used_bytes(disk, shared);
        let cache = shared.excache.clone();
        let ram = shared.ram.clone();
        let memory = shared.role == "memory";
        let has_backup = self.backup_given;
        let fabric = shared.fabric.clone();
        let owners = Owners {
            ram: shared.ram.clone(),
            seq: 0,
        };
        let owners = std::sync::Mutex::new(owners);
        crate::globals::keep_alive(
            self.registration,
            self.stream,
            move || {
                let (processes, held) = if memory {
                    (
                        boot_word::<u32>(&ram, offset_of!(BootInfo, processes_homed)),
                        boot_word::<u32>(&ram, offset_of!(BootInfo, processes_held)),
                    )
                } else {
                    (runs.as_ref().map_or(0, |r| r.load().0), 0)
                };
                lego_control::Load {
                    processes,
                    held,
                    backup: if memory {
                        boot_word::<u32>(&ram, offset_of!(BootInfo, backup_in_use))
                    } else {
                        0
                    },
                    runs: runs.as_ref().map_or(0, |r| r.load().1),
                    used_bytes: used(),
                    excache: cache.as_ref().map(|c| excache_summary(c)),
                }
            },
            move |list| grants.replace(list),
            move |peers, backup| {
                let Some(f) = &fabric else {
                    return;
                };
                for p in peers {
                    if f.learn_peer(p.id, &p.fabric) {
                        log::info!(
                            "the global managers told of {} {} at {}: a peer from now on",
                            p.role.name(),
                            p.id,
                            p.fabric
                        );
                    }
                }
                if memory {
                    if let Ok(mut o) = owners.lock() {
                        // A --backup given by hand stands; else the
                        // managers' latest (with --copies 2).
                        o.post(peers, if has_backup { 0 } else { backup });
                    }
                }
            },
        )
        .map_err(VmmError::Thread)
    }
}

/// A word the monitor publishes in its boot information.
fn boot_word<T: vm_memory::ByteValued + Default>(
    ram: &crate::memory::GuestRam,
    offset: usize,
) -> T {
    use vm_memory::{Bytes, GuestAddress};
    ram.read_obj::<T>(GuestAddress(lego_proto::boot::BOOT_INFO + offset as u64))
        .unwrap_or_default()
}

/// A memory component's vRegion owners: the other memory components the
/// managers told of, most free memory first, written into the monitor's
/// boot information under a seqlock (`BootInfo::owner_seq`).
struct Owners {
    ram: crate::memory::GuestRam,
    seq: u32,
}

impl Owners {
    fn post(&mut self, peers: &[lego_control::Peer], backup: u32) {
        use std::sync::atomic::{fence, Ordering};
        use vm_memory::{Bytes, GuestAddress};
        let mut memory: Vec<&lego_control::Peer> =
            peers.iter().filter(|p| p.role == Role::Memory).collect();
        memory.sort_by_key(|p| (std::cmp::Reverse(p.free_bytes), p.id));
        memory.truncate(lego_proto::memory::MAX_VREGION_PEERS);
        let at = |offset: usize| GuestAddress(lego_proto::boot::BOOT_INFO + offset as u64);
        let write_seq = |seq: u32| {
            let _ = self.ram.write_obj(seq, at(offset_of!(BootInfo, owner_seq)));
        };
        write_seq(self.seq.wrapping_add(1) | 1);
        fence(Ordering::SeqCst);
        for (i, p) in memory.iter().enumerate() {
            let word = u64::from(p.id) << 32 | (p.free_bytes >> 20).min(u64::from(u32::MAX));
            let _ = self
                .ram
                .write_obj(word, at(offset_of!(BootInfo, owners) + 8 * i));
        }
        let _ = self
            .ram
            .write_obj(memory.len() as u32, at(offset_of!(BootInfo, owner_count)));
        if backup != 0 {
            let _ = self.ram.write_obj(backup, at(offset_of!(BootInfo, backup)));
        }
        fence(Ordering::SeqCst);
        // Even and never 0 (0: no list).
        self.seq = (self.seq.wrapping_add(1) | 1).wrapping_add(1).max(2);
        write_seq(self.seq);
    }
}

/// What a heartbeat reports as used. Storage: the bytes of its disk file
/// the host has allocated (the file is sparse, so this is what the file
/// system has written). Memory: the page frames holding pages, as the
/// monitor publishes them in its boot information.
fn used_bytes(
    disk: Option<PathBuf>,
    shared: &Arc<crate::vcpu::Shared>,
) -> impl Fn() -> u64 + Send + 'static {
    use std::os::unix::fs::MetadataExt;
    let ram = shared.ram.clone();
    let memory = shared.role == "memory";
    move || {
        if memory {
            return boot_word::<u64>(&ram, offset_of!(BootInfo, mem_used));
        }
        disk.as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.blocks() * 512)
    }
}

/// The ExCache's figures for a heartbeat: misses and the miss-latency
/// histogram, and the sampled hit ratio.
fn excache_summary(cache: &crate::excache::ExCache) -> lego_control::ExcacheSummary {
    let Some(s) = cache.try_report() else {
        return lego_control::ExcacheSummary::default();
    };
    let histogram = s
        .miss_histogram
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let bound = if i + 1 == s.miss_histogram.len() {
                u32::MAX
            } else {
                2u32 << i
            };
            (bound, n)
        })
        .collect();
    let (recent, all) = cache.hit_ratio();
    lego_control::ExcacheSummary {
        hit_permille: recent.map(|r| (r * 1000.0).round() as u32),
        hit_permille_all: all.map(|r| (r * 1000.0).round() as u32),
        misses: s.misses,
        histogram,
    }
}
