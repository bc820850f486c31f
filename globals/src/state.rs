//! What the global managers know and decide, without sockets or disks.
//!
//! Every request becomes an [`Outcome`]: the reply and the [`Record`]s the
//! store must keep before that reply is sent (an id handed out, a vNode
//! made). The server applies the records; this module only decides, so its
//! rules are tested on the host with made-up clocks.
//!
//! Liveness is computed when read: a component is up while it was heard
//! from less than [`DOWN_AFTER_MS`] ago. Ids and vNodes come back from the
//! store after a restart; resources, load and liveness do not, so a
//! restored component stays down until it registers again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lego_control::{
    Component, GlobalsReply, GlobalsRequest, Grant, Load, Peer, Resources, Role, VNode,
    DOWN_AFTER_MS,
};

#[cfg(test)]
mod tests;

/// A decision that must be durable before the reply depending on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The id belongs to the component at this fabric address.
    Assign { id: u32, fabric: String, role: Role },
    /// The id no longer names anything (its address moved to another id).
    Forget { id: u32 },
    /// A vNode was made.
    VNode(VNode),
    /// A processor may act for a vNode at its storage component.
    Grant(Grant),
}

/// A request's answer and what to keep before sending it.
#[derive(Debug)]
pub struct Outcome {
    pub reply: GlobalsReply,
    pub records: Vec<Record>,
    /// A new grant the reply depends on: (the storage component, the
    /// grants version it must have been sent before the reply goes out).
    pub await_grant: Option<(u32, u64)>,
}

impl Outcome {
    fn reply(reply: GlobalsReply) -> Outcome {
        Outcome {
            reply,
            records: Vec::new(),
            await_grant: None,
        }
    }

    fn error(sentence: String) -> Outcome {
        Outcome::reply(GlobalsReply::Error(sentence))
    }
}

/// One component as known here.
#[derive(Debug, Clone)]
struct Entry {
    role: Role,
    fabric: String,
    control: Option<String>,
    resources: Resources,
    load: Load,
    host_pid: u32,
    /// Runs placed here since its last heartbeat (which will count them):
    /// placement adds them to the reported processes, so that runs placed
    /// in quick succession spread out.
    placed: u32,
    /// `None`: known from the store but not registered since the managers
    /// started (so heartbeats are refused until it registers).
    last_heard: Option<Instant>,
    /// Its going down has been logged (so it is logged once).
    reported_down: bool,
}

impl Entry {
    fn up(&self, now: Instant) -> bool {
        self.last_heard.is_some_and(|t| {
            now.saturating_duration_since(t) < Duration::from_millis(DOWN_AFTER_MS)
        })
    }
}

/// Everything the managers know.
#[derive(Debug, Clone)]
pub struct State {
    components: BTreeMap<u32, Entry>,
    vnodes: BTreeMap<String, VNode>,
    grants: BTreeSet<Grant>,
    /// Bumped by every new grant; what each storage component was last
    /// sent (with a heartbeat's answer).
    grants_version: u64,
    grants_sent: BTreeMap<u32, u64>,
    /// When the managers started: a restored component's silence counts
    /// from here.
    started: Instant,
    /// Copies of memory kept (`--copies`): 2 gives each memory component a
    /// backup.
    copies: u8,
    /// Each memory component's backup, once chosen (kept while both live:
    /// a primary's copy stays where it was made).
    backups: BTreeMap<u32, u32>,
}

impl State {
    /// The state a store held: ids with their addresses and roles, and the
    /// vNodes.
    pub fn restore(
        ids: Vec<(u32, String, Role)>,
        vnodes: Vec<VNode>,
        grants: Vec<Grant>,
        now: Instant,
    ) -> State {
        let components = ids
            .into_iter()
            .map(|(id, fabric, role)| {
                let entry = Entry {
                    role,
                    fabric,
                    control: None,
                    resources: Resources::default(),
                    load: Load::default(),
                    host_pid: 0,
                    placed: 0,
                    last_heard: None,
                    reported_down: true,
                };
                (id, entry)
            })
            .collect();
        let vnodes = vnodes.into_iter().map(|v| (v.name.clone(), v)).collect();
        let grants: BTreeSet<Grant> = grants.into_iter().collect();
        State {
            components,
            vnodes,
            grants_version: grants.len() as u64,
            grants,
            grants_sent: BTreeMap::new(),
            started: now,
            copies: 1,
            backups: BTreeMap::new(),
        }
    }

    /// Components and vNodes known (for the start-up line).
    pub fn counts(&self) -> (usize, usize) {
        (self.components.len(), self.vnodes.len())
    }

    /// Whether answering `req` may change what the store keeps (the server
    /// snapshots the state before such a request, to undo it if the store
    /// fails).
    pub fn may_record(req: &GlobalsRequest) -> bool {
        matches!(
            req,
            GlobalsRequest::Register { .. }
                | GlobalsRequest::PlaceRun { .. }
                | GlobalsRequest::Locate { .. }
        )
    }

    pub fn handle(&mut self, req: GlobalsRequest, now: Instant) -> Outcome {
        match req {
            GlobalsRequest::Register {
                id,
                role,
                fabric,
                control,
                resources,
                host_pid,
            } => self.register(
                id,
                now,
                Entry {
                    role,
                    fabric,
                    control,
                    resources,
                    load: Load::default(),
                    host_pid,
                    placed: 0,
                    last_heard: Some(now),
                    reported_down: false,
                },
            ),
            GlobalsRequest::Heartbeat { id, load } => self.heartbeat(id, load, now),
            GlobalsRequest::Status => {
                let mut vnodes: Vec<VNode> = self.vnodes.values().cloned().collect();
                vnodes.sort_by_key(|v| v.id);
                Outcome::reply(GlobalsReply::Status {
                    components: self.components(now),
                    vnodes,
                })
            }
            GlobalsRequest::PlaceRun { vnode } => self.place(&vnode, true, now),
            GlobalsRequest::Locate { vnode } => self.place(&vnode, false, now),
        }
    }

    /// The grants version storage component `id` was last sent.
    pub fn grants_sent(&self, id: u32) -> u64 {
        self.grants_sent.get(&id).copied().unwrap_or(0)
    }

    /// Every component known, by id, as the protocol shows it.
    pub fn components(&self, now: Instant) -> Vec<Component> {
        self.components
            .iter()
            .map(|(&id, e)| self.view(id, e, now))
            .collect()
    }

    /// Marks the components that fell silent since the last sweep, logging
    /// each once; returns their ids.
    pub fn sweep(&mut self, now: Instant) -> Vec<u32> {
        let mut fell = Vec::new();
        for (&id, e) in self.components.iter_mut() {
            if !e.reported_down && !e.up(now) {
                e.reported_down = true;
                fell.push(id);
                let silent = e
                    .last_heard
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
                log::info!(
                    "component {id} ({} at {}) is down: nothing heard for {silent:.1} s",
                    e.role.name(),
                    e.fabric
                );
            }
        }
        fell
    }

    fn view(&self, id: u32, e: &Entry, now: Instant) -> Component {
        let since = e.last_heard.unwrap_or(self.started);
        Component {
            id,
            role: e.role,
            fabric: e.fabric.clone(),
            control: e.control.clone(),
            resources: e.resources.clone(),
            load: e.load.clone(),
            up: e.up(now),
            silent_ms: now.saturating_duration_since(since).as_millis() as u64,
            host_pid: e.host_pid,
        }
    }

    /// The smallest id no component holds.
    fn free_id(&self) -> u32 {
        let mut id = 1;
        for &held in self.components.keys() {
            if held != id {
                break;
            }
            id += 1;
        }
        id
    }

    fn register(&mut self, asked: u32, now: Instant, entry: Entry) -> Outcome {
        if entry.fabric.is_empty() || entry.fabric.chars().any(char::is_whitespace) {
            return Outcome::error(format!(
                "{:?} is not a fabric address; register with the host:port other components reach this one at",
                entry.fabric
            ));
        }
        let previous = self
            .components
            .iter()
            .find(|(_, e)| e.fabric == entry.fabric)
            .map(|(&id, _)| id);
        let id = if asked == 0 {
            previous.unwrap_or_else(|| self.free_id())
        } else {
            if let Some(holder) = self.components.get(&asked) {
                if holder.fabric != entry.fabric && holder.up(now) {
                    return Outcome::error(format!(
                        "id {asked} belongs to the {} component at {}, which is up; \
                         start this one without --id (the managers assign one) or with a free id",
                        holder.role.name(),
                        holder.fabric
                    ));
                }
            }
            asked
        };
        let mut records = Vec::new();
        // One id per fabric address: an address that moves to an asked-for
        // id leaves its old one.
        if let Some(old) = previous.filter(|&old| old != id) {
            self.components.remove(&old);
            records.push(Record::Forget { id: old });
        }
        let kept = self.components.get(&id);
        if kept.is_none_or(|k| k.fabric != entry.fabric || k.role != entry.role) {
            records.push(Record::Assign {
                id,
                fabric: entry.fabric.clone(),
                role: entry.role,
            });
        }
        if let Some(k) = kept.filter(|k| k.role != entry.role) {
            log::warn!(
                "component {id} at {} was a {} component and is now a {} one",
                entry.fabric,
                k.role.name(),
                entry.role.name()
            );
        }
        log::info!(
            "component {id} registered: {} at {}{}, {}",
            entry.role.name(),
            entry.fabric,
            entry
                .control
                .as_deref()
                .map(|c| format!(" (control {c})"))
                .unwrap_or_default(),
            describe(&entry.resources)
        );
        self.components.insert(id, entry);
        Outcome {
            reply: GlobalsReply::Registered {
                id,
                peers: self.components(now),
            },
            records,
            await_grant: None,
        }
    }

    /// Keeps `copies` copies of memory (1 or 2): with 2, each memory
    /// component gets a backup as soon as another is up.
    pub fn with_copies(mut self, copies: u8) -> State {
        self.copies = copies;
        self
    }

    /// Memory component `id`'s backup: the one chosen before while it is
    /// up, else (with two copies) another memory component up, one that
    /// backs up no one yet if there is one, then the one with the fewest it
    /// backs up and the most free memory. A backup that is down is kept
    /// until another can take its place (processors make the copy anew
    /// there). 0 for none.
    fn backup_of(&mut self, id: u32, now: Instant) -> u32 {
        if self.copies < 2 {
            return 0;
        }
        let up_memory = |s: &State, b: u32| {
            s.components
                .get(&b)
                .is_some_and(|e| e.role == Role::Memory && e.up(now))
        };
        // After a restart of the managers: the backup it reports using,
        // if that one is up, so the copies stay where processors made them.
        let reported = self.components.get(&id).map_or(0, |e| e.load.backup);
        if !self.backups.contains_key(&id) && reported != id && up_memory(self, reported) {
            self.backups.insert(id, reported);
        }
        let before = self.backups.get(&id).copied();
        if let Some(b) = before {
            if up_memory(self, b) {
                return b;
            }
        }
        let load = |b: u32| self.backups.values().filter(|&&x| x == b).count();
        let chosen = self
            .components
            .iter()
            .filter(|(&other, e)| other != id && e.role == Role::Memory && e.up(now))
            .min_by_key(|(&other, e)| {
                let free = e.resources.mem_bytes.saturating_sub(e.load.used_bytes);
                (load(other), std::cmp::Reverse(free), other)
            })
            .map(|(&other, _)| other);
        match (chosen, before) {
            (Some(b), None) => {
                log::info!("memory component {id} is backed up at memory component {b}");
                self.backups.insert(id, b);
                b
            }
            (Some(b), Some(down)) => {
                log::warn!(
                    "memory component {id}'s backup {down} is down: it is backed up at memory component {b} from now on"
                );
                self.backups.insert(id, b);
                b
            }
            (None, before) => before.unwrap_or(0),
        }
    }

    /// The components up other than `id`, with memory components' free
    /// memory: what a heartbeat's answer tells.
    fn peers_of(&self, id: u32, now: Instant) -> Vec<Peer> {
        self.components
            .iter()
            .filter(|(&other, e)| other != id && e.up(now))
            .map(|(&other, e)| Peer {
                id: other,
                role: e.role,
                fabric: e.fabric.clone(),
                free_bytes: if e.role == Role::Memory {
                    e.resources.mem_bytes.saturating_sub(e.load.used_bytes)
                } else {
                    0
                },
            })
            .collect()
    }

    fn heartbeat(&mut self, id: u32, load: Load, now: Instant) -> Outcome {
        match self.components.get_mut(&id) {
            Some(e) if e.last_heard.is_some() => {
                if e.reported_down {
                    log::info!(
                        "component {id} ({} at {}) is up again",
                        e.role.name(),
                        e.fabric
                    );
                    e.reported_down = false;
                }
                e.load = load;
                e.placed = 0;
                e.last_heard = Some(now);
                if e.role != Role::Storage {
                    let memory = e.role == Role::Memory;
                    let backup = if memory { self.backup_of(id, now) } else { 0 };
                    return Outcome::reply(GlobalsReply::Peers {
                        peers: self.peers_of(id, now),
                        backup,
                    });
                }
                // A storage component learns who may use its vNodes.
                let mine: BTreeSet<u32> = self
                    .vnodes
                    .values()
                    .filter(|v| v.storage == id)
                    .map(|v| v.id)
                    .collect();
                let grants = self
                    .grants
                    .iter()
                    .filter(|g| mine.contains(&g.vnode))
                    .copied()
                    .collect();
                self.grants_sent.insert(id, self.grants_version);
                Outcome::reply(GlobalsReply::Grants {
                    version: self.grants_version,
                    grants,
                })
            }
            _ => Outcome::error(format!(
                "component {id} is not registered with these global managers \
                 (they may have restarted); register first"
            )),
        }
    }

    /// A run's placement (`home` wanted) or a vNode's location (`home` 0
    /// when no memory component is up: files need none).
    fn place(&mut self, name: &str, want_home: bool, now: Instant) -> Outcome {
        if let Err(why) = check_vnode_name(name) {
            return Outcome::error(why);
        }
        let existing = self.vnodes.get(name).cloned();
        if let Some(v) = &existing {
            match self.components.get(&v.storage) {
                None => {
                    return Outcome::error(format!(
                        "vNode {name}'s files are on storage component {}, which the managers no longer know",
                        v.storage
                    ))
                }
                Some(s) if s.role != Role::Storage => {
                    return Outcome::error(format!(
                        "vNode {name}'s files were on component {} ({}), which is now a {} component",
                        v.storage,
                        s.fabric,
                        s.role.name()
                    ))
                }
                Some(s) if !s.up(now) => {
                    return Outcome::error(format!(
                        "storage component {} ({}) is down; vNode {name}'s files are there",
                        v.storage, s.fabric
                    ))
                }
                Some(_) => {}
            }
        }
        let up = |role: Role| {
            self.components
                .iter()
                .filter(move |(_, e)| e.role == role && e.up(now))
        };
        let Some((&pid, processor)) = up(Role::Processor)
            .filter(|(_, e)| e.control.is_some())
            .min_by_key(|(&id, e)| (e.load.processes.saturating_add(e.placed), id))
        else {
            return Outcome::error(
                "no processor is up to run on; start one: `lego up` on this machine, or \
                 `lego-vmm --role processor --globals ADDR --control ADDR` on a processor host"
                    .to_string(),
            );
        };
        let processor = self.view(pid, processor, now);
        let home = up(Role::Memory)
            .max_by_key(|(&id, e)| {
                let free = e.resources.mem_bytes.saturating_sub(e.load.used_bytes);
                (free, std::cmp::Reverse(id))
            })
            .map(|(&id, _)| id);
        let home = match home {
            Some(id) => id,
            None if !want_home => 0,
            None => {
                return Outcome::error(
                    "no memory component is up to hold the process's memory; start one: \
                     `lego up` on this machine, or `lego-vmm --role memory --globals ADDR` on a memory host"
                        .to_string(),
                )
            }
        };
        let mut records = Vec::new();
        let vnode = match existing {
            Some(v) => v,
            None => {
                // Most free disk; on a tie, the fewest vNodes.
                let held = |id: u32| self.vnodes.values().filter(|v| v.storage == id).count();
                let storage = up(Role::Storage)
                    .max_by_key(|(&id, e)| {
                        let free = e.resources.disk_bytes.saturating_sub(e.load.used_bytes);
                        (free, std::cmp::Reverse(held(id)), std::cmp::Reverse(id))
                    })
                    .map(|(&id, _)| id);
                let Some(storage) = storage else {
                    return Outcome::error(format!(
                        "no storage component is up to hold vNode {name}'s files; start one: \
                         `lego up` on this machine, or `lego-vmm --role storage --globals ADDR --disk PATH`"
                    ));
                };
                let id = self.vnodes.values().map(|v| v.id).max().unwrap_or(0) + 1;
                let v = VNode {
                    name: name.to_string(),
                    id,
                    storage,
                };
                log::info!("vNode {name} made: id {id}, files on storage component {storage}");
                self.vnodes.insert(name.to_string(), v.clone());
                records.push(Record::VNode(v.clone()));
                v
            }
        };
        if want_home {
            if let Some(p) = self.components.get_mut(&pid) {
                p.placed = p.placed.saturating_add(1);
            }
        }
        // The processor may now act for the vNode; its storage component
        // must know before the processor's first request for it.
        let grant = Grant {
            vnode: vnode.id,
            processor: pid,
        };
        let mut await_grant = None;
        if self.grants.insert(grant) {
            self.grants_version += 1;
            records.push(Record::Grant(grant));
            log::info!("processor {pid} may act for vNode {name}");
            await_grant = Some((vnode.storage, self.grants_version));
        }
        Outcome {
            reply: GlobalsReply::Placed {
                processor,
                home,
                vnode,
            },
            records,
            await_grant,
        }
    }
}

/// A vNode name is a short word: it appears in paths, logs and tables.
pub fn check_vnode_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(ok_char)
        || name.starts_with(['.', '-'])
    {
        return Err(format!(
            "{name:?} is not a vNode name: use 1 to 64 letters, digits, '-', '_' or '.', \
             not starting with '.' or '-'"
        ));
    }
    Ok(())
}

/// Resources in a few words, for the log.
fn describe(r: &Resources) -> String {
    let mib = |b: u64| b >> 20;
    let mut parts = Vec::new();
    if r.mem_bytes > 0 {
        parts.push(format!("{} MiB", mib(r.mem_bytes)));
    }
    if r.vcpus > 0 {
        parts.push(format!("{} vCPU(s)", r.vcpus));
    }
    if r.excache_bytes > 0 {
        parts.push(format!("ExCache {} MiB", mib(r.excache_bytes)));
    }
    if r.disk_bytes > 0 {
        parts.push(format!("disk {} MiB", mib(r.disk_bytes)));
    }
    if parts.is_empty() {
        "no resources reported".to_string()
    } else {
        parts.join(", ")
    }
}
