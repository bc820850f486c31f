//! The command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use lego_proto::boot::{GuestTest, Role, LARGE_PAGE, MAX_MEM, MAX_VCPUS};

use crate::error::{Result, VmmError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Processor,
    Memory,
    Storage,
}

impl RoleArg {
    pub fn role(self) -> Role {
        match self {
            RoleArg::Processor => Role::Processor,
            RoleArg::Memory => Role::Memory,
            RoleArg::Storage => Role::Storage,
        }
    }

    /// The image file a role boots by default.
    pub fn image_name(self) -> &'static str {
        match self {
            RoleArg::Processor => "guest-pmon",
            RoleArg::Memory => "guest-mmon",
            RoleArg::Storage => "guest-smon",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GuestTestArg {
    Panic,
    PageFault,
    DivideError,
    TripleFault,
    BadHypercall,
    Breakpoint,
}

impl GuestTestArg {
    pub fn test(self) -> GuestTest {
        match self {
            GuestTestArg::Panic => GuestTest::Panic,
            GuestTestArg::PageFault => GuestTest::PageFault,
            GuestTestArg::DivideError => GuestTest::DivideError,
            GuestTestArg::TripleFault => GuestTest::TripleFault,
            GuestTestArg::BadHypercall => GuestTest::BadHypercall,
            GuestTestArg::Breakpoint => GuestTest::Breakpoint,
        }
    }
}

/// lego-vmm: one Lego hardware component (processor, memory or storage
/// monitor) in a KVM virtual machine.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Which component this process is.
    #[arg(long, value_enum)]
    pub role: RoleArg,

    /// The guest image to boot [default: guest-pmon, guest-mmon or guest-smon next to lego-vmm].
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,

    /// Guest RAM, e.g. 128M or 8G (binary units, a multiple of 2M).
    #[arg(long, value_name = "SIZE", default_value = "128M")]
    pub mem: String,

    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub vcpus: u32,

    /// Boot, run the guest's self-test, print one `ready ...` line and exit.
    #[arg(long)]
    pub self_test: bool,

    /// Iterations of the self-test compute loop.
    #[arg(long, value_name = "N", default_value_t = lego_proto::selftest::DEFAULT_ITERATIONS, hide = true)]
    pub self_test_iterations: u64,

    /// Logging of the VMM itself: off, error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: log::LevelFilter,

    /// This component's id on the fabric (stable across restarts); without
    /// it the component has no fabric.
    #[arg(long, value_name = "N")]
    pub id: Option<u32>,

    /// Listen for fabric connections from peers, e.g. 127.0.0.1:7001.
    /// Needs --id, or --globals (which gives one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// The global managers (`lego-globals --listen ADDR`): register there
    /// on start (role, --listen address, resources; an id is given when
    /// --id is not), learn the peers from them, and send heartbeats. --peer
    /// entries are added to what they give.
    #[arg(long, value_name = "ADDR", requires = "listen")]
    pub globals: Option<String>,

    /// The fabric address to register with the global managers, when
    /// peers reach this component at another address than --listen (a
    /// relay, NAT, a container's published port).
    #[arg(long, value_name = "ADDR", requires = "globals")]
    pub advertise: Option<String>,

    /// Processor: serve runs (`lego run`, `ps`, `kill`, `cp`) on this
    /// address instead of running one program after `--`.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["run_workload", "program"])]
    pub control: Option<String>,

    /// A peer component and its address: --peer 2=127.0.0.1:7002 for TCP,
    /// --peer 2=shm for a component on this host, --peer 2=rdma:HOST:PORT
    /// for RDMA (its --rdma-listen address). Repeat for each peer. Without
    /// --id, a component that only calls out gets an id of its own.
    #[arg(long, value_name = "ID=ADDR")]
    pub peer: Vec<String>,

    /// Processor: the ExCache, the only memory its processes have (e.g.
    /// 16M, up to the host's memory); each page is fetched from a memory
    /// component on first touch.
    #[arg(long, value_name = "SIZE")]
    pub excache: Option<String>,

    /// Processor: which cached page to evict when the ExCache is full.
    #[arg(long, value_enum, default_value = "fifo", value_name = "POLICY")]
    pub excache_policy: crate::excache::policy::Policy,

    /// Processor: pages after a missed one (in its vRegion) to fetch ahead
    /// of use and install before they are touched, once misses look
    /// sequential (a miss just past the previous one or its read-ahead);
    /// the window doubles with each miss of a scan, up to 16 times this
    /// (at most 512). 0 turns prefetching off.
    #[arg(long, value_name = "PAGES", default_value_t = 16)]
    pub excache_prefetch: u32,

    /// Processor: run a built-in workload as a process instead of serving,
    /// print one line and exit: pattern:SIZE writes a pseudo-random pattern
    /// over SIZE bytes and verifies it (e.g. pattern:64M). Needs --excache.
    #[arg(long, value_name = "KIND:SIZE", requires = "excache")]
    pub run_workload: Option<String>,

    /// Processor: the memory component that is home to the workload's
    /// process (default: the lowest-numbered --peer).
    #[arg(long, value_name = "ID")]
    pub memory: Option<u32>,

    /// Processor running a program: the storage component (its id, also
    /// given with --peer) that serves the program's files. Without it,
    /// the program reads the host's files and may not change them.
    #[arg(long, value_name = "ID")]
    pub storage: Option<u32>,

    /// Memory role: the memory components (their ids, each also given with
    /// --peer) that this one hands vRegions of the processes homed here to,
    /// e.g. --vregion-peers 2,3. Without it, the home keeps every vRegion.
    #[arg(long, value_name = "ID,ID..", value_delimiter = ',', requires = "id")]
    pub vregion_peers: Vec<u32>,

    /// Memory role: the memory component that keeps a copy of everything
    /// this one holds (its processes' pages and mappings). Processors send
    /// every change to both and go on with the backup if this one dies.
    #[arg(long, value_name = "ID", requires = "id")]
    pub backup: Option<u32>,

    /// Storage role: the disk, a host file or block device the guest's file
    /// system lives on (the VMM never reads what is in it). A missing file
    /// is created, sparse, with --disk-size bytes; an existing one keeps
    /// its size. One component at a time may use a disk.
    #[arg(long, value_name = "PATH")]
    pub disk: Option<PathBuf>,

    /// Storage role: the size of a disk --disk creates, e.g. 4G (binary
    /// units, a multiple of 4K, at least 64M) [default: 1G].
    #[arg(long, value_name = "SIZE", requires = "disk")]
    pub disk_size: Option<String>,

    /// Where same-host peers (`--peer ID=shm`) keep their shared-memory
    /// rings; every component of one rack on a host must use the same one.
    #[arg(long, value_name = "DIR", default_value = "/dev/shm/lego")]
    pub shm_dir: PathBuf,

    /// The rack's key (64 hexadecimal digits, readable by its owner only):
    /// every frame on the fabric is authenticated with it, and frames
    /// without it are dropped. Every component of a rack needs the same.
    /// [default: ~/.config/lego/rack.key, created on first use]
    #[arg(long, value_name = "FILE")]
    pub rack_key: Option<PathBuf>,

    /// Accept RDMA queue-pair connections here (builds with `--features rdma`).
    #[arg(long, value_name = "ADDR", requires = "id")]
    pub rdma_listen: Option<String>,

    /// A request to a peer that gets no answer within this time gets an
    /// error reply.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub fabric_timeout_ms: u64,

    /// Run a fabric exercise instead of serving (for the tests):
    /// pingpong:PEER:COUNT, stream:PEER:BYTES, rtt:PEER:COUNT or
    /// flood:PEER:COUNT.
    #[arg(long, value_name = "KIND:PEER:AMOUNT", hide = true, requires = "id")]
    pub fabric_test: Option<String>,

    /// Serve gdb on this address (e.g. 127.0.0.1:1234); the guest waits for
    /// gdb before its first instruction.
    #[arg(long, value_name = "ADDR")]
    pub gdb: Option<String>,

    /// Seconds a new gdb client has to send its first valid packet.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, hide = true)]
    pub gdb_greeting_secs: u64,

    /// The KVM device to open.
    #[arg(long, value_name = "PATH", default_value = "/dev/kvm")]
    pub kvm_device: PathBuf,

    /// Make the guest fail on purpose (for the VMM's own tests).
    #[arg(long, value_enum, hide = true)]
    pub guest_test: Option<GuestTestArg>,

    /// Processor running a program: an environment variable it gets, on
    /// top of PATH, HOME, TERM and the locale and time zone from the
    /// caller. Repeat for each.
    #[arg(long, value_name = "K=V", value_parser = lego_control::env_assignment)]
    pub env: Vec<String>,

    /// Processor running a program: print each system call its processes
    /// make, with arguments and result, on stderr (as `strace -f` does).
    #[arg(long)]
    pub strace: bool,

    /// Processor: a static x86-64 Linux program (a host path) and its
    /// arguments, after `--`. Its stdin, stdout and stderr are lego-vmm's;
    /// lego-vmm exits with its status (128+N when a signal killed it).
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<std::ffi::OsString>,
}

/// Bytes of a component's two fabric queues: `FABRIC_QUEUE_SIZE` buffers
/// to send, of `FABRIC_BUFFER` bytes, and as many to receive, of its
/// role's size (larger at a memory monitor, for its write-backs).
const fn fabric_queue_bytes(role: lego_proto::boot::Role) -> u64 {
    use lego_proto::hypercall::{fabric_rx_buffer, FABRIC_BUFFER, FABRIC_QUEUE_SIZE};
    FABRIC_QUEUE_SIZE as u64 * (FABRIC_BUFFER as u64 + fabric_rx_buffer(role) as u64)
}

/// Guest RAM a component on the fabric needs at least: its queues (8.5
/// MiB; 20.5 MiB at a memory component), with room beside them for the
/// image, stacks and the rest of the heap.
pub const fn fabric_min_mem(role: lego_proto::boot::Role) -> u64 {
    match role {
        lego_proto::boot::Role::Memory => 40 << 20,
        _ => 16 << 20,
    }
}
const _: () = assert!(
    fabric_queue_bytes(lego_proto::boot::Role::Processor)
        <= fabric_min_mem(lego_proto::boot::Role::Processor) * 3 / 5
        && fabric_queue_bytes(lego_proto::boot::Role::Storage)
            <= fabric_min_mem(lego_proto::boot::Role::Storage) * 3 / 5
        && fabric_queue_bytes(lego_proto::boot::Role::Memory)
            <= fabric_min_mem(lego_proto::boot::Role::Memory) * 3 / 5
);

/// `--mem` of a component on the fabric: enough for its queues.
pub fn check_fabric_mem(role: lego_proto::boot::Role, text: &str, bytes: u64) -> Result<()> {
    let least = fabric_min_mem(role);
    if bytes < least {
        let queues = fabric_queue_bytes(role);
        return Err(VmmError::BadOption {
            option: "--mem",
            why: format!(
                "'{text}' is too little for a component on the fabric: its queues alone take {:.1} MiB; give it at least {}M",
                queues as f64 / (1 << 20) as f64,
                least >> 20
            ),
        });
    }
    Ok(())
}

/// A validated `--mem`, in bytes.
pub fn parse_mem(text: &str) -> Result<u64> {
    let bad = |why: String| VmmError::BadOption {
        option: "--mem",
        why,
    };
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|e| {
            bad(format!(
                "'{text}' is not a size ({e}); write it like 128M or 8G"
            ))
        })?;
    if bytes == 0 || bytes % LARGE_PAGE != 0 {
        return Err(bad(format!(
            "'{text}' is not a positive multiple of 2M (guest RAM is mapped in 2 MiB pages)"
        )));
    }
    if bytes > MAX_MEM {
        return Err(bad(format!(
            "'{text}' is more than the {} GiB this VMM maps",
            MAX_MEM >> 30
        )));
    }
    Ok(bytes)
}

/// A validated `--run-workload`: the workload and its size in bytes.
pub fn parse_workload(text: &str) -> Result<(lego_proto::process::Workload, u64)> {
    use lego_proto::process::Workload;
    let bad = |why: String| VmmError::BadOption {
        option: "--run-workload",
        why,
    };
    let (kind, size) = text.split_once(':').ok_or_else(|| {
        bad(format!(
            "'{text}' is not KIND:SIZE; write it like pattern:64M"
        ))
    })?;
    let kind = match kind {
        "pattern" => Workload::Pattern,
        "outside" => Workload::Outside,
        "readonly" => Workload::ReadOnly,
        "random" => Workload::Random,
        other => {
            return Err(bad(format!(
                "'{other}' is no workload; the ones there are: pattern, random"
            )))
        }
    };
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(size)
        .map_err(|e| bad(format!("'{size}' is not a size ({e})")))?;
    if !(4096..=1 << 40).contains(&bytes) {
        return Err(bad(format!("'{size}' must be between 4K and 1T")));
    }
    Ok((kind, bytes.div_ceil(4096) * 4096))
}

/// A validated `--excache`, in pages.
pub fn parse_excache(text: &str) -> Result<u32> {
    let bad = |why: String| VmmError::BadOption {
        option: "--excache",
        why,
    };
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|e| bad(format!("'{text}' is not a size ({e}); write it like 16M")))?;
    if bytes < 4096 * 4 || bytes % 4096 != 0 {
        return Err(bad(format!(
            "'{text}' must be a multiple of 4K and at least 16K"
        )));
    }
    // The cache holds host pages only for what is cached, so any size up
    // to the host's memory works; beyond it the host would swap the cache.
    if let Some(host) = host_memory() {
        if bytes > host {
            return Err(bad(format!(
                "{text} is more than this host's {} MiB of memory: use --excache {}M or less",
                host >> 20,
                host >> 20
            )));
        }
    }
    u32::try_from(bytes / 4096)
        .map_err(|_| bad(format!("{text} is more than 16T, the most it takes")))
}

/// The host's physical memory in bytes, if the kernel says.
fn host_memory() -> Option<u64> {
    // SAFETY: sysinfo fills the struct we own.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    Some(info.totalram as u64 * info.mem_unit as u64)
}

/// A validated `--disk-size`, in bytes.
pub fn parse_disk_size(text: &str) -> Result<u64> {
    let bad = |why: String| VmmError::BadOption {
        option: "--disk-size",
        why,
    };
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|e| bad(format!("'{text}' is not a size ({e}); write it like 4G")))?;
    if !crate::block::valid_size(bytes) {
        return Err(bad(format!(
            "'{text}' must be a multiple of 4K and at least {}M",
            crate::block::MIN_SIZE >> 20
        )));
    }
    Ok(bytes)
}

pub fn check_vcpus(n: u32) -> Result<u32> {
    if n == 0 || n > MAX_VCPUS {
        return Err(VmmError::BadOption {
            option: "--vcpus",
            why: format!("{n} is outside 1..={MAX_VCPUS}"),
        });
    }
    Ok(n)
}

/// A parsed `--fabric-test`.
pub fn parse_fabric_test(text: &str) -> Result<(lego_proto::boot::FabricTest, u32, u64)> {
    let bad = |why: String| VmmError::BadOption {
        option: "--fabric-test",
        why,
    };
    let parts: Vec<&str> = text.split(':').collect();
    let [kind, peer, amount] = parts[..] else {
        return Err(bad(format!("'{text}' is not KIND:PEER:AMOUNT")));
    };
    let kind = match kind {
        "pingpong" => lego_proto::boot::FabricTest::PingPong,
        "stream" => lego_proto::boot::FabricTest::Stream,
        "rtt" => lego_proto::boot::FabricTest::Rtt,
        "flood" => lego_proto::boot::FabricTest::Flood,
        "survive" => lego_proto::boot::FabricTest::Survive,
        other => {
            return Err(bad(format!(
                "unknown exercise '{other}' (pingpong, stream, rtt, flood or survive)"
            )))
        }
    };
    let peer = peer
        .parse()
        .map_err(|_| bad(format!("'{peer}' is not a component id")))?;
    let amount = parse_size::Config::new()
        .with_binary()
        .parse_size(amount)
        .map_err(|e| bad(format!("'{amount}' is not an amount ({e})")))?;
    Ok((kind, peer, amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_sizes() {
        assert_eq!(parse_mem("128M").unwrap(), 128 << 20);
        assert_eq!(parse_mem("8G").unwrap(), 8 << 30);
        assert_eq!(parse_mem("2097152").unwrap(), 2 << 20);
        for bad in ["", "abc", "0", "3M", "1K", "65G", "-2M"] {
            let err = parse_mem(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.to_string().contains("--mem"), "{err}");
        }
    }

    #[test]
    fn disk_sizes() {
        assert_eq!(parse_disk_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_disk_size("4G").unwrap(), 4 << 30);
        for bad in ["", "1G2", "0", "32M", "65M1K", "100000001"] {
            let err = parse_disk_size(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.to_string().contains("--disk-size"), "{err}");
        }
    }

    #[test]
    fn vcpu_counts() {
        assert!(check_vcpus(1).is_ok());
        assert!(check_vcpus(MAX_VCPUS).is_ok());
        assert!(check_vcpus(0).is_err());
        assert!(check_vcpus(MAX_VCPUS + 1).is_err());
    }
}
