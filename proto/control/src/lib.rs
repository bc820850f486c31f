//! The control plane: messages between host processes, the `lego` tool,
//! `lego-globals` (the global managers) and each `lego-vmm`. These travel
//! over plain TCP between host processes, never through a guest, so they
//! are serde types in postcard rather than fixed layouts (the fabric and
//! hypercall messages in the other modules are).
//!
//! A message on a stream is a 4-byte little-endian length, then that many
//! bytes of postcard. [`MAX_MESSAGE`] bounds the length so that a garbage
//! prefix cannot make a reader allocate gigabytes.
//!
//! A crate of its own (not a feature of `lego-proto`): the guest images
//! are built in the same workspace, and feature unification would link
//! serde's std into them.

use serde::de::DeserializeOwned;

use serde::{Deserialize, Serialize};

/// The largest body one control message may have.
pub const MAX_MESSAGE: u32 = 16 << 20;
/// How often a component sends a heartbeat to the global managers.
pub const HEARTBEAT_MS: u64 = 500;
/// After this much silence the managers mark a component down.
pub const DOWN_AFTER_MS: u64 = 3_000;
/// The vNode a run or a copy uses when none is named.
pub const DEFAULT_VNODE: &str = "default";
/// Where `lego run` keeps uploaded programs in a vNode's namespace, named
/// by the BLAKE3 hash of their contents (so a re-run uploads nothing).
pub const PROGRAM_DIR: &str = "/.lego/bin";

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Processor,
    Memory,
    Storage,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Processor => "processor",
            Role::Memory => "memory",
            Role::Storage => "storage",
        }
    }
}

/// What a component brings to the rack.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Guest RAM (memory components: what processes' pages may use).
    pub mem_bytes: u64,
    pub vcpus: u32,
    /// Processors: the ExCache size.
    pub excache_bytes: u64,
    /// Storage: the disk's size.
    pub disk_bytes: u64,
}

/// The ExCache's figures since the processor started.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcacheSummary {
    /// Of the pages processes touched in about the last 10 s, and since
    /// the start, the share found cached, in thousandths (sampled: hits
    /// never leave the guest); None before anything was sampled.
    pub hit_permille: Option<u32>,
    pub hit_permille_all: Option<u32>,
    pub misses: u64,
    /// Demand-miss latency: (upper bound in microseconds, count) per bucket,
    /// in increasing bounds; the last bound is u32::MAX (everything slower).
    pub histogram: Vec<(u32, u64)>,
}

/// What a component reports with each heartbeat.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    /// Processors: processes running now; memory: processes homed here.
    pub processes: u32,
    /// Memory: processes homed elsewhere whose vRegions it owns.
    pub held: u32,
    /// Memory: the component that keeps a copy of what it holds, 0 for
    /// none.
    pub backup: u32,
    /// Processors: runs started since the component started.
    pub runs: u64,
    /// Memory: bytes of processes' pages held; storage: bytes of disk used.
    pub used_bytes: u64,
    pub excache: Option<ExcacheSummary>,
}

/// One component as the managers know it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: u32,
    pub role: Role,
    /// Its fabric address (what other components put in `--peer`).
    pub fabric: String,
    /// Processors: the address `lego run`, `ps`, `kill` and `cp` talk to.
    pub control: Option<String>,
    pub resources: Resources,
    pub load: Load,
    pub up: bool,
    /// Milliseconds since the managers last heard from it.
    pub silent_ms: u64,
    /// The host process id of its `lego-vmm` (for `lego down` on one host).
    pub host_pid: u32,
}

/// Another component, as a heartbeat's answer tells it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u32,
    pub role: Role,
    pub fabric: String,
    /// Memory components: bytes free (their memory less what they hold,
    /// as of their last heartbeat); 0 for the others.
    pub free_bytes: u64,
}

/// A named virtual server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VNode {
    pub name: String,
    pub id: u32,
    /// The storage component that holds its files.
    pub storage: u32,
}

/// To `lego-globals`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum GlobalsRequest {
    /// A component starting. `id` 0 asks the managers for one (a component
    /// that registers again from the same fabric address gets its old id).
    Register {
        id: u32,
        role: Role,
        fabric: String,
        control: Option<String>,
        resources: Resources,
        host_pid: u32,
    },
    Heartbeat {
        id: u32,
        load: Load,
    },
    /// The tool: everything the managers know.
    Status,
    /// The tool: where a new process of this vNode should run (made on
    /// first use).
    PlaceRun {
        vnode: String,
    },
    /// The tool: the vNode, made on first use, and a processor to reach
    /// its files through.
    Locate {
        vnode: String,
    },
}

/// From `lego-globals`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum GlobalsReply {
    /// The component's id and every component known, up or down.
    Registered { id: u32, peers: Vec<Component> },
    /// The answer to a processor's or memory component's heartbeat: the
    /// other components up now, so those that joined after it registered
    /// become its peers, and a memory component knows which others have
    /// room for vRegions.
    Peers {
        peers: Vec<Peer>,
        /// A memory component's backup, when the managers keep two copies
        /// (`lego-globals --copies 2`): the component that keeps a copy of
        /// what it holds; 0 for none.
        backup: u32,
    },
    Status {
        components: Vec<Component>,
        vnodes: Vec<VNode>,
    },
    /// The processor to run on (the least loaded that is up), the memory
    /// component to be the process's home (the one with most free memory)
    /// and the vNode with its storage component.
    Placed {
        processor: Component,
        home: u32,
        vnode: VNode,
    },
    /// A sentence saying what is wrong and what to do.
    Error(String),
    /// The answer to a storage component's heartbeat: which processors
    /// may send requests for which of its vNodes (all of them, each time;
    /// `version` grows with every grant the managers make).
    Grants { version: u64, grants: Vec<Grant> },
}

/// A processor may act for a vNode at its storage component: the managers
/// grant it when they place a run of the vNode there (or a copy through
/// it), and the storage component refuses requests for a vNode from any
/// processor it was not granted to.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub vnode: u32,
    pub processor: u32,
}

/// Starting a program on a processor.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    pub vnode: VNode,
    /// The memory component to home the process on.
    pub home: u32,
    /// The program's path in the vNode's namespace.
    pub exe: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
}

/// Whether a variable of the caller's environment goes with a program to
/// wherever it runs (`lego run`, `lego-vmm -- PROGRAM`): the locale and the
/// time zone (LANG, LANGUAGE, LC_*, TZ, what Debian's sshd accepts), so that
/// `sort`, `ls` and `date` order and print as the user's own shell does.
/// The rest of the environment stays behind: a program should behave the
/// same wherever the rack places it.
pub fn goes_with_program(name: &str) -> bool {
    matches!(name, "LANG" | "LANGUAGE" | "TZ") || name.starts_with("LC_")
}

/// A `--env` argument of `lego run` and `lego-vmm`: `K=V` with a name
/// (a value may be empty or hold `=`), as clap's value parser.
pub fn env_assignment(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(text.to_string()),
        _ => Err(format!("{text:?} is not K=V")),
    }
}

/// The caller's variables that [`goes_with_program`] names, as `K=V`.
/// A variable that is not UTF-8 is left behind.
pub fn callers_locale() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| goes_with_program(k))
        .collect()
}

/// One process on a processor, for `lego ps`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub vnode: String,
    /// The run it belongs to (its first process's pid).
    pub run: u32,
    pub command: String,
}

/// To a processor's control address. A connection carries either one run
/// (`Run`, then `Stdin`/`StdinEnd`/`Signal` for it) or one request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ProcessorRequest {
    Run(RunStart),
    Stdin(Vec<u8>),
    StdinEnd,
    /// A signal for the run's process group (Ctrl-C is SIGINT).
    Signal(i32),
    Ps,
    Kill {
        pid: u32,
        signal: i32,
    },
    /// Create or replace a file in a vNode's namespace; the data follows
    /// as `Data` messages and an empty `Data` ends it.
    Put {
        vnode: VNode,
        path: Vec<u8>,
        mode: u32,
    },
    Data(Vec<u8>),
    /// A file's contents, answered with `Data` messages ending with an
    /// empty one.
    Get {
        vnode: VNode,
        path: Vec<u8>,
    },
    /// Whether a file exists (`Done` or `Failed`).
    Exists {
        vnode: VNode,
        path: Vec<u8>,
    },
    /// What a vNode's files take at its storage component (`Usage`).
    Usage {
        vnode: VNode,
    },
}

/// From a processor's control address.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ProcessorEvent {
    Started {
        pid: u32,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The run's first process ended: its exit code, or the signal that
    /// killed it (then `code` is 128 + signal, as a shell reports it).
    Exited {
        code: i32,
        signal: i32,
    },
    Ps(Vec<ProcessInfo>),
    Data(Vec<u8>),
    Done,
    Failed(String),
    /// A vNode's files: bytes of data blocks, and inodes.
    Usage {
        bytes: u64,
        files: u64,
    },
}

/// Why a control message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLong(u32),
    Malformed,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooLong(n) => write!(
                f,
                "a control message claims {n} bytes, more than the {MAX_MESSAGE} allowed"
            ),
            DecodeError::Malformed => write!(f, "a control message is not well formed"),
        }
    }
}

/// The bytes of one message on a stream: length, then body.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // postcard cannot fail on these types (no maps with non-string keys,
    // no unsized sequences); an empty body would be refused by `decode`.
    let body = postcard::to_allocvec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checks a length prefix before its body is read.
pub fn check_len(prefix: [u8; 4]) -> Result<usize, DecodeError> {
    let n = u32::from_le_bytes(prefix);
    if n == 0 {
        return Err(DecodeError::Malformed);
    }
    if n > MAX_MESSAGE {
        return Err(DecodeError::TooLong(n));
    }
    Ok(n as usize)
}

/// Reads one whole message from a stream: a sentence when the stream
/// ends, or what came is not a message.
pub fn read_message<T: DeserializeOwned>(r: &mut impl std::io::Read) -> Result<T, String> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .map_err(|e| format!("the connection ended: {e}"))?;
    let n = check_len(len).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)
        .map_err(|e| format!("the connection ended inside a message: {e}"))?;
    decode(&body).map_err(|e| e.to_string())
}

/// A message from its body (the bytes after the length prefix).
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DecodeError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(DecodeError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_its_encoding() {
        let m = ProcessorRequest::Run(RunStart {
            vnode: VNode {
                name: "web".into(),
                id: 2,
                storage: 3,
            },
            home: 1,
            exe: b"/bin/x".to_vec(),
            argv: vec![b"x".to_vec()],
            env: vec![],
            cwd: b"/".to_vec(),
        });
        let bytes = encode(&m);
        let n = check_len(bytes[..4].try_into().unwrap()).unwrap();
        assert_eq!(n, bytes.len() - 4);
        assert_eq!(decode::<ProcessorRequest>(&bytes[4..]).unwrap(), m);
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(check_len([0, 0, 0, 0]), Err(DecodeError::Malformed));
        assert!(matches!(check_len([0xff; 4]), Err(DecodeError::TooLong(_))));
        assert!(decode::<GlobalsRequest>(&[0xff, 0xff, 0xff]).is_err());
        // Trailing bytes after a whole message are refused too.
        let mut b = encode(&GlobalsRequest::Status);
        b.push(0);
        assert!(decode::<GlobalsRequest>(&b[4..]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(b in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode::<GlobalsRequest>(&b);
            let _ = decode::<GlobalsReply>(&b);
            let _ = decode::<ProcessorRequest>(&b);
            let _ = decode::<ProcessorEvent>(&b);
        }
    }
}
