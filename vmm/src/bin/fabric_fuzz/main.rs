//! lego-fabric-fuzz: a structure-aware fuzzer for whole components.
//!
//! It starts a real memory component (the `lego-vmm` next to it, a real
//! guest under /dev/kvm) with a rack key of its own, then sends it batches
//! of frames over TCP and over its shared-memory rings: headers that
//! decode, with random kinds, flags, request ids, sources and destinations,
//! lengths at and past every limit (the guest's buffers, the protocol's
//! 1 MiB), memory requests with fields at the monitor's edges, and frames
//! that are tampered with, replayed or not sealed at all. After each batch
//! a real client checks, over both transports, that the component still
//! serves it correctly (`check`). It stops at the first failure, printing
//! the seed that reproduces the run, or after `--seconds`.
//!
//! Unlike the decoder's cargo-fuzz target this is not coverage-guided: the
//! component runs in another process, so what guides it is the structure
//! of the frames. Runs are reproducible from the seed.

mod check;
mod gen;

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use clap::Parser;
use lego_proto::frame::{Header, Kind, HEADER_LEN};
use lego_wire::auth::{ROLE_TOOL, TRAILER_LEN};
use lego_wire::client::{ShmClient, TcpClient};
use lego_wire::key::RackKey;

use check::Caller;
use gen::{FuzzFrame, Seal};

/// The component's id, and the ids the fuzzer and the checkers use.
const TARGET: u32 = 1;
const CHECK_TCP: u32 = 2;
const CHECK_SHM: u32 = 3;
const FUZZ_TCP: u32 = 100;
const FUZZ_SHM: u32 = 101;
/// Processes the fuzz frames may touch; the checkers use others.
const FUZZ_PIDS: [u32; 4] = [1, 2, 3, 0xffff_ffff];

/// Fuzz a running memory component with structured frames over TCP and
/// shared memory, checking after each batch that it still serves.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// How long to run.
    #[arg(long, value_name = "S", default_value_t = 30)]
    seconds: u64,
    /// The seed of the run (printed; give it again to repeat a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Frames per batch, between two checks.
    #[arg(long, value_name = "N", default_value_t = 40)]
    batch: usize,
    /// The lego-vmm to start [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    vmm: Option<PathBuf>,
}

/// The component under test, killed (and its directory removed) when dropped.
struct Target {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    dir: PathBuf,
    addr: String,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Target {
    fn start(vmm: &Path, dir: &Path, key_file: &Path) -> Result<Target, String> {
        let mut child = Command::new(vmm)
            .args(["--role", "memory", "--id", "1", "--mem", "128M"])
            .args(["--listen", "127.0.0.1:0", "--fabric-timeout-ms", "500"])
            .arg("--shm-dir")
            .arg(dir)
            .arg("--rack-key")
            .arg(key_file)
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", vmm.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut t = Target {
            child,
            lines,
            seen: Vec::new(),
            dir: dir.to_owned(),
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok(line) = t.lines.recv_timeout(Duration::from_millis(100)) else {
                if t.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                continue;
            };
            if let Some(a) = line.split("listens on ").nth(1) {
                t.addr = a.trim().to_owned();
            }
            let serving = line.contains("fabric: component 1 serving");
            t.seen.push(line);
            if serving {
                return Ok(t);
            }
        }
        Err(format!(
            "the memory component did not start serving:\n{}",
            t.tail()
        ))
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// What it printed last.
    fn tail(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let from = self.seen.len().saturating_sub(30);
        self.seen[from..].join("\n")
    }
}

/// A connection the fuzz frames go on; what the component sends back is
/// read and thrown away, so it never waits on us.
struct FuzzTcp {
    client: TcpClient,
}

impl Drop for FuzzTcp {
    fn drop(&mut self) {
        // The drain thread holds a clone: close both for real.
        let _ = self.client.stream().shutdown(std::net::Shutdown::Both);
    }
}

impl FuzzTcp {
    fn open(addr: &str, key: &RackKey) -> Result<FuzzTcp, String> {
        let client = TcpClient::connect(addr, FUZZ_TCP, ROLE_TOOL, key, Duration::from_secs(10))
            .map_err(|e| format!("the fuzz connection: {e}"))?;
        let mut sink = client.stream().try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
        });
        Ok(FuzzTcp { client })
    }

    fn send(&mut self, f: &FuzzFrame, rng: &mut fastrand::Rng) {
        let bytes = match f.seal {
            Seal::Bare => [&f.head[..], &f.payload].concat(),
            _ => {
                let mut b = self.client.seal(&f.head, &f.payload);
                if f.seal == Seal::Tampered {
                    let i = rng.usize(0..b.len());
                    b[i] ^= 1 << rng.u8(0..8);
                }
                b
            }
        };
        let _ = self.client.write_raw(&bytes);
        if f.seal == Seal::Replayed {
            let _ = self.client.write_raw(&bytes);
        }
    }
}

/// Appends raw bytes to a ring as if they were frames (what another
/// process with write access to the directory could do).
fn scribble(ring: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use lego_wire::shm::{CAPACITY, DATA_OFFSET, OFF_TAIL};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ring)?;
    let mut t = [0u8; 8];
    f.read_exact_at(&mut t, OFF_TAIL as u64)?;
    let tail = u64::from_le_bytes(t);
    let start = tail % CAPACITY;
    let first = (bytes.len() as u64).min(CAPACITY - start) as usize;
    f.write_all_at(&bytes[..first], DATA_OFFSET + start)?;
    f.write_all_at(&bytes[first..], DATA_OFFSET)?;
    f.write_all_at(&(tail + bytes.len() as u64).to_le_bytes(), OFF_TAIL as u64)
}

impl Caller for TcpClient {
    fn call(&mut self, kind: Kind, payload: &[u8]) -> Result<(Kind, Vec<u8>), String> {
        TcpClient::call(self, TARGET, kind, payload)
            .map(|(h, p)| (h.kind, p))
            .map_err(|e| format!("over TCP: {e}"))
    }
}

impl Caller for ShmClient {
    fn call(&mut self, kind: Kind, payload: &[u8]) -> Result<(Kind, Vec<u8>), String> {
        ShmClient::call(self, TARGET, kind, payload)
            .map(|(h, p)| (h.kind, p))
            .map_err(|e| format!("over shared memory: {e}"))
    }
}

#[derive(Default)]
struct Tally {
    frames: u64,
    bytes: u64,
    tcp: u64,
    shm: u64,
    refused_at_sender: u64,
    reconnects: u64,
}

fn run(args: &Args, seed: u64) -> Result<Tally, String> {
    let vmm = match &args.vmm {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("lego-vmm"),
    };
    let dir = PathBuf::from(format!("/dev/shm/lego-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // A rack of its own: its key is nobody else's.
    let key_file = dir.join("rack.key");
    let key = RackKey::load_or_create(&key_file).map_err(|e| e.to_string())?;
    let mut target = Target::start(&vmm, &dir, &key_file)?;
    let timeout = Duration::from_secs(5);
    let check_tcp = TcpClient::connect(&target.addr, CHECK_TCP, ROLE_TOOL, &key, timeout);
    let mut check_tcp = check_tcp.map_err(|e| format!("the checking client: {e}"))?;
    let mut check_shm = ShmClient::open(&dir, CHECK_SHM, ROLE_TOOL, &key, timeout)
        .map_err(|e| format!("the checking client on shared memory: {e}"))?;
    let mut fuzz_tcp = FuzzTcp::open(&target.addr, &key)?;
    let mut fuzz_shm = ShmClient::open(&dir, FUZZ_SHM, ROLE_TOOL, &key, timeout)
        .map_err(|e| format!("the fuzz client on shared memory: {e}"))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        let mut last = Vec::new();
        for _ in 0..args.batch {
            let over_tcp = rng.bool();
            let src = if over_tcp { FUZZ_TCP } else { FUZZ_SHM };
            let f = gen::frame(&mut rng, src, TARGET, &FUZZ_PIDS);
            tally.frames += 1;
            tally.bytes += (HEADER_LEN + f.payload.len()) as u64;
            if over_tcp {
                tally.tcp += 1;
                fuzz_tcp.send(&f, &mut rng);
                if f.ends_connection() {
                    fuzz_tcp = FuzzTcp::open(&target.addr, &key)?;
                    tally.reconnects += 1;
                }
            } else {
                tally.shm += 1;
                if f.seal == Seal::Proper && Header::decode(&f.head).is_ok() {
                    if fuzz_shm.send(&f.header, &f.payload).is_err() {
                        tally.refused_at_sender += 1;
                    }
                } else if fuzz_shm.ring_to(TARGET).exists() {
                    let mut junk = [&f.head[..], &f.payload].concat();
                    junk.extend_from_slice(&[0u8; TRAILER_LEN]);
                    let _ = scribble(&fuzz_shm.ring_to(TARGET), &junk);
                }
            }
            last.push(format!(
                "{} {:?} {:?} flags {:#x} id {:#x} {}->{} {} bytes",
                if over_tcp { "tcp" } else { "shm" },
                f.seal,
                f.header.kind,
                f.header.flags,
                f.header.request_id,
                f.header.src,
                f.header.dst,
                f.payload.len()
            ));
        }
        // The fuzz processes go, so their frames come back: the checks
        // must not find the component out of frames because of them.
        for pid in FUZZ_PIDS {
            let exit = lego_proto::memory::MemRequest {
                op: lego_proto::memory::OP_EXIT,
                pid,
                ..Default::default()
            };
            let _ = check_tcp.call(TARGET, Kind::Data, zerocopy::IntoBytes::as_bytes(&exit));
        }
        // Replies to the fuzz frames in its rings are taken off them.
        let _ = fuzz_shm.call(TARGET, Kind::Ping, b"drain");
        let pid = 1_000_000 + round as u32;
        let checked = check::serves(&mut check_tcp, pid, round)
            .and_then(|_| check::serves(&mut check_shm, pid + 500_000, round));
        if let Err(why) = checked {
            let alive = target.alive();
            return Err(format!(
                "after batch {round} (seed {seed}), the component {}: {why}\nthe batch:\n  {}\nits last words:\n{}",
                if alive { "no longer serves correctly" } else { "died" },
                last.join("\n  "),
                target.tail()
            ));
        }
    }
    let stats = check_tcp
        .data(TARGET, &lego_proto::fabric::FABRIC_STATS_REQUEST)
        .map_err(|e| e.to_string())?;
    let stats = <lego_proto::fabric::FabricStats as zerocopy::FromBytes>::read_from_bytes(&stats)
        .map_err(|_| "a malformed FabricStats")?;
    println!(
        "lego-fabric-fuzz: the component counted {} frames to its guest, {} too large, {} not authentic, {} replayed, {} with a forged source, {} misrouted, {} bad ({} connections closed), {} bad from its guest",
        stats.to_guest,
        stats.too_large,
        stats.unauthenticated,
        stats.replayed,
        stats.forged_source,
        stats.misrouted,
        stats.bad_frames,
        stats.bad_connections,
        stats.bad_from_guest
    );
    let _ = std::io::stdout().flush();
    println!("lego-fabric-fuzz: {round} batches checked");
    Ok(tally)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    println!(
        "lego-fabric-fuzz: seed {seed}, {} s, {} frames per batch",
        args.seconds, args.batch
    );
    match run(&args, seed) {
        Ok(t) => {
            println!(
                "lego-fabric-fuzz ok: {} frames ({} bytes; {} over TCP, {} over shared memory, {} refused at the sender), {} reconnects; the component served every check",
                t.frames, t.bytes, t.tcp, t.shm, t.refused_at_sender, t.reconnects
            );
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("lego-fabric-fuzz: FAILED: {why}\nrepeat with: lego-fabric-fuzz --seed {seed} --seconds {} --batch {}", args.seconds, args.batch);
            ExitCode::FAILURE
        }
    }
}
