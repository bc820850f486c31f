//! A processor that serves runs: its control address (`--control`) takes
//! `lego run`, `lego ps`, `lego kill` and `lego cp` connections
//! (`lego_control::ProcessorRequest`). Requests for the monitor are queued
//! here and handed to the guest at its next PORT_CONTROL_NEXT (the guest
//! is told through `BootInfo::control_pending` and a kick of vCPU 0);
//! each run's stdin is buffered here for the guest's reads and its output
//! is written to the run's connection as the guest writes it. File copies
//! do not involve the guest: the VMM talks to the vNode's storage
//! component itself (`store_files`).

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lego_control::{
    encode, read_message, ProcessInfo, ProcessorEvent, ProcessorRequest, RunStart, VNode,
};
use lego_proto::program::*;

/// How long a client waits for the monitor to take a request.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);

/// A request queued for the monitor.
#[derive(Default)]
struct Item {
    id: u32,
    kind: u32,
    home: u32,
    run: u32,
    pid: u32,
    signal: u32,
    vnode: u32,
    /// The storage component that holds the vNode.
    storage: u32,
    argc: u32,
    envc: u32,
    blob: Vec<u8>,
}

/// The monitor's answer to one item.
struct Done {
    result: i64,
    data: Vec<u8>,
}

/// One run: its client connection and its stdin.
struct Run {
    out: Arc<Mutex<TcpStream>>,
    stdin: VecDeque<u8>,
    stdin_end: bool,
    vnode: String,
    /// Its first process and the command line it was started with (for
    /// `lego ps`: the file it runs is a content-addressed name).
    leader: u32,
    command: String,
    /// Output could not be written: the client is gone.
    broken: bool,
    /// Started has been sent. Until then the program's output and exit,
    /// which can come before the start's answer is handled, are held here,
    /// so the client always sees Started first.
    announced: bool,
    held: Vec<ProcessorEvent>,
    /// The run ended before it was announced.
    ended: bool,
}

#[derive(Default)]
struct Inner {
    next_id: u32,
    next_run: u32,
    queue: VecDeque<Item>,
    answers: HashMap<u32, mpsc::Sender<Done>>,
    runs: HashMap<u32, Run>,
    started: u64,
}

pub struct Runs {
    inner: Mutex<Inner>,
    /// Rung when some run's stdin has bytes or ended (an idle vCPU waits
    /// on it as on lego-vmm's own stdin).
    stdin_ready: OwnedFd,
    /// Tells the monitor there are requests (set once the VM exists).
    notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The fabric, for file copies to and from storage components.
    fabric: OnceLock<Arc<crate::fabric::Fabric>>,
    /// This processor's component id (for messages; known once the
    /// fabric is set up, which may be after the control address).
    id: std::sync::atomic::AtomicU32,
}

fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(stream: &Mutex<TcpStream>, event: &ProcessorEvent) -> std::io::Result<()> {
    let mut s = stream.lock().unwrap_or_else(|p| p.into_inner());
    s.write_all(&encode(event))
}

fn recv(reader: &mut impl Read) -> Result<ProcessorRequest, String> {
    read_message(reader)
}

/// What an errno from starting a program means to the user.
fn start_failure(exe: &[u8], errno: i64) -> String {
    let what = match errno {
        2 => "it does not exist on the vNode's storage",
        13 => "it is not executable (or not readable)",
        8 => "it is not a static x86-64 executable Lego can run",
        21 => "it is a directory",
        7 => "its arguments and environment are too large",
        11 => "the processor has no room for another process now",
        12 => "its memory component is out of memory",
        5 => "its storage or memory component did not answer (the processor's log says which)",
        6 => "this processor has no storage component (none was up when it joined the rack): start it again once one is",
        _ => "loading it failed",
    };
    format!(
        "cannot run {}: {what} (errno {errno})",
        String::from_utf8_lossy(exe)
    )
}

impl Runs {
    pub fn new(id: u32) -> std::io::Result<Arc<Runs>> {
        Ok(Arc::new(Runs {
            inner: Mutex::new(Inner {
                next_id: 1,
                next_run: 1,
                ..Default::default()
            }),
            stdin_ready: eventfd()?,
            notify: OnceLock::new(),
            fabric: OnceLock::new(),
            id: std::sync::atomic::AtomicU32::new(id),
        }))
    }

    pub fn set_id(&self, id: u32) {
        self.id.store(id, std::sync::atomic::Ordering::Relaxed);
    }

    fn id(&self) -> u32 {
        self.id.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wires the runs to the VM once it exists: how to tell the monitor,
    /// and the fabric for file copies.
    pub fn connect(
        &self,
        notify: Box<dyn Fn() + Send + Sync>,
        fabric: Option<Arc<crate::fabric::Fabric>>,
    ) {
        let _ = self.notify.set(notify);
        // Requests that came before the VM was up.
        if !self.lock().queue.is_empty() {
            if let Some(n) = self.notify.get() {
                n();
            }
        }
        if let Some(f) = fabric {
            let _ = self.fabric.set(f);
        }
    }

    pub fn stdin_fd(&self) -> i32 {
        self.stdin_ready.as_raw_fd()
    }

    pub fn drain_stdin_ready(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local from our eventfd (non-blocking).
        unsafe { libc::read(self.stdin_ready.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    fn ring_stdin(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.stdin_ready.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// (processes' runs now, runs started so far), for the heartbeat.
    pub fn load(&self) -> (u32, u64) {
        let inner = self.lock();
        (inner.runs.len() as u32, inner.started)
    }

    /// Queues an item for the monitor; the receiver gets its answer.
    fn ask(&self, mut item: Item) -> mpsc::Receiver<Done> {
        let (tx, rx) = mpsc::channel();
        {
            let mut inner = self.lock();
            item.id = inner.next_id;
            inner.next_id = inner.next_id.wrapping_add(1).max(1);
            inner.answers.insert(item.id, tx);
            inner.queue.push_back(item);
        }
        if let Some(n) = self.notify.get() {
            n();
        }
        rx
    }

    // ---- the monitor's side (hypercalls) ----

    /// PORT_CONTROL_NEXT: the next item, if its strings fit `buf_len`
    /// (else it stays queued and `needed` says how much room it takes).
    pub fn next(&self, buf_len: u64) -> (ControlNext, Vec<u8>) {
        let mut inner = self.lock();
        let Some(item) = inner.queue.front() else {
            return (ControlNext::default(), Vec::new());
        };
        let head = ControlNext {
            needed: item.blob.len() as u64,
            kind: item.kind,
            id: item.id,
            run: item.run,
            pid: item.pid,
            signal: item.signal,
            vnode: item.vnode,
            argc: item.argc,
            envc: item.envc,
            home: item.home,
            storage: item.storage,
            ..Default::default()
        };
        if item.blob.len() as u64 > buf_len {
            return (head, Vec::new());
        }
        let blob = inner.queue.pop_front().map(|i| i.blob).unwrap_or_default();
        (head, blob)
    }

    /// PORT_CONTROL_DONE.
    pub fn done(&self, id: u32, result: i64, data: Vec<u8>) {
        let tx = self.lock().answers.remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(Done { result, data });
        }
    }

    /// PORT_RUN_EXIT: the run's first process ended with wait status
    /// `status`; its client learns and the run is forgotten.
    pub fn exited(&self, run: u32, status: u32) {
        let (code, signal) = if status & 0x7f == 0 {
            (((status >> 8) & 0xff) as i32, 0)
        } else {
            let sig = (status & 0x7f) as i32;
            (128 + sig, sig)
        };
        let event = ProcessorEvent::Exited { code, signal };
        let r = {
            let mut inner = self.lock();
            match inner.runs.get_mut(&run) {
                Some(r) if !r.announced => {
                    r.held.push(event);
                    r.ended = true;
                    return;
                }
                Some(_) => inner.runs.remove(&run),
                None => None,
            }
        };
        let Some(r) = r else {
            return;
        };
        let _ = send(&r.out, &event);
        let s = r.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = s.shutdown(std::net::Shutdown::Write);
    }

    /// A run's output: bytes written or -errno (-EPIPE once the client is
    /// gone, which gives the writer SIGPIPE as a closed pipe would).
    pub fn write(&self, run: u32, fd: u32, bytes: &[u8]) -> i64 {
        let event = if fd == 2 {
            ProcessorEvent::Stderr(bytes.to_vec())
        } else {
            ProcessorEvent::Stdout(bytes.to_vec())
        };
        let out = {
            let mut inner = self.lock();
            match inner.runs.get_mut(&run) {
                Some(r) if r.broken => return -EPIPE,
                Some(r) if !r.announced => {
                    r.held.push(event);
                    return bytes.len() as i64;
                }
                Some(r) => r.out.clone(),
                None => return -EPIPE,
            }
        };
        match send(&out, &event) {
            Ok(()) => bytes.len() as i64,
            Err(_) => {
                if let Some(r) = self.lock().runs.get_mut(&run) {
                    r.broken = true;
                }
                -EPIPE
            }
        }
    }

    /// A run's stdin without waiting: bytes, 0 at its end, -EAGAIN.
    pub fn read_stdin(&self, run: u32, len: usize) -> Result<Vec<u8>, i64> {
        let mut inner = self.lock();
        let Some(r) = inner.runs.get_mut(&run) else {
            return Ok(Vec::new());
        };
        if r.stdin.is_empty() {
            return if r.stdin_end {
                Ok(Vec::new())
            } else {
                Err(-EAGAIN)
            };
        }
        let n = len.min(r.stdin.len());
        Ok(r.stdin.drain(..n).collect())
    }

    // ---- the clients' side ----

    /// Listens on `addr` for clients, a thread per connection.
    pub fn listen(self: &Arc<Self>, addr: &str) -> std::io::Result<std::net::SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let runs = self.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let runs = runs.clone();
                    let _ = std::thread::Builder::new()
                        .name("control-client".into())
                        .spawn(move || runs.serve_client(conn));
                }
            })?;
        Ok(local)
    }

    fn serve_client(self: Arc<Self>, conn: TcpStream) {
        let _ = conn.set_nodelay(true);
        let peer = conn
            .peer_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string());
        let Ok(write_half) = conn.try_clone() else {
            return;
        };
        let out = Arc::new(Mutex::new(write_half));
        let mut reader = BufReader::new(conn);
        let first = match recv(&mut reader) {
            Ok(r) => r,
            Err(why) => {
                log::info!("control: a client at {peer} sent no request: {why}");
                let _ = send(&out, &ProcessorEvent::Failed(why));
                return;
            }
        };
        let reply = match first {
            ProcessorRequest::Run(start) => return self.run(start, out, reader),
            ProcessorRequest::Ps => self.ps(),
            ProcessorRequest::Kill { pid, signal } => self.kill(pid, signal),
            ProcessorRequest::Put { vnode, path, mode } => {
                self.put(&vnode, &path, mode, &mut reader)
            }
            ProcessorRequest::Get { vnode, path } => self.get(&vnode, &path, &out),
            ProcessorRequest::Exists { vnode, path } => self.exists(&vnode, &path),
            ProcessorRequest::Usage { vnode } => self
                .files(&vnode)
                .and_then(|f| f.usage())
                .map(|(bytes, files)| ProcessorEvent::Usage { bytes, files }),
            other => Err(format!(
                "{other:?} must follow a Run on the same connection"
            )),
        };
        let event = match reply {
            Ok(e) => e,
            Err(why) => ProcessorEvent::Failed(why),
        };
        let _ = send(&out, &event);
    }

    fn run(
        self: &Arc<Self>,
        start: RunStart,
        out: Arc<Mutex<TcpStream>>,
        mut reader: BufReader<TcpStream>,
    ) {
        let mut blob = Vec::new();
        for s in start.argv.iter().chain(&start.env) {
            if s.contains(&0) {
                let _ = send(
                    &out,
                    &ProcessorEvent::Failed(
                        "an argument or environment string holds a NUL byte".into(),
                    ),
                );
                return;
            }
            blob.extend_from_slice(s);
            blob.push(0);
        }
        for s in [&start.cwd, &start.exe] {
            blob.extend(s.iter().copied().filter(|&b| b != 0));
            blob.push(0);
        }
        let run = {
            let mut inner = self.lock();
            let run = inner.next_run;
            inner.next_run = inner.next_run.wrapping_add(1).max(1);
            inner.started += 1;
            inner.runs.insert(
                run,
                Run {
                    out: out.clone(),
                    stdin: VecDeque::new(),
                    stdin_end: false,
                    vnode: start.vnode.name.clone(),
                    leader: 0,
                    command: start
                        .argv
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" "),
                    broken: false,
                    announced: false,
                    held: Vec::new(),
                    ended: false,
                },
            );
            run
        };
        let answer = self.ask(Item {
            kind: CONTROL_START,
            home: start.home,
            run,
            vnode: start.vnode.id,
            storage: start.vnode.storage,
            argc: start.argv.len() as u32,
            envc: start.env.len() as u32,
            blob,
            ..Default::default()
        });
        let pid = match answer.recv_timeout(MONITOR_TIMEOUT) {
            Ok(d) if d.result > 0 => d.result as u32,
            Ok(d) => {
                self.lock().runs.remove(&run);
                let _ = send(
                    &out,
                    &ProcessorEvent::Failed(start_failure(&start.exe, -d.result)),
                );
                return;
            }
            Err(_) => {
                self.lock().runs.remove(&run);
                let _ = send(
                    &out,
                    &ProcessorEvent::Failed(format!(
                        "processor {} did not start the program within {} s",
                        self.id(),
                        MONITOR_TIMEOUT.as_secs()
                    )),
                );
                return;
            }
        };
        log::info!(
            "run {run}: {} started as pid {pid} (vNode {})",
            String::from_utf8_lossy(&start.exe),
            start.vnode.name
        );
        // Started, then what was held, with the stream locked throughout:
        // a writer that finds the run announced waits on the stream, so
        // nothing overtakes the held events.
        let gone = {
            let mut stream = out.lock().unwrap_or_else(|p| p.into_inner());
            let (held, ended) = {
                let mut inner = self.lock();
                match inner.runs.get_mut(&run) {
                    Some(r) => {
                        r.leader = pid;
                        r.announced = true;
                        let held = std::mem::take(&mut r.held);
                        let ended = r.ended;
                        if ended {
                            inner.runs.remove(&run);
                        }
                        (held, ended)
                    }
                    None => (Vec::new(), true),
                }
            };
            let mut failed = stream
                .write_all(&encode(&ProcessorEvent::Started { pid }))
                .is_err();
            for event in &held {
                failed = failed || stream.write_all(&encode(event)).is_err();
            }
            if ended {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            } else if failed {
                if let Some(r) = self.lock().runs.get_mut(&run) {
                    r.broken = true;
                }
            }
            failed && !ended
        };
        if gone {
            self.signal(run, 1);
        }
        // The client's side: stdin and signals, until it goes.
        loop {
            let req = recv(&mut reader);
            match req {
                Ok(ProcessorRequest::Stdin(bytes)) => {
                    match self.lock().runs.get_mut(&run) {
                        Some(r) => r.stdin.extend(bytes),
                        None => break,
                    }
                    self.ring_stdin();
                }
                Ok(ProcessorRequest::StdinEnd) => {
                    if let Some(r) = self.lock().runs.get_mut(&run) {
                        r.stdin_end = true;
                    }
                    self.ring_stdin();
                }
                Ok(ProcessorRequest::Signal(sig)) if (1..=64).contains(&sig) => {
                    self.signal(run, sig as u32);
                }
                Ok(other) => {
                    log::info!("run {run}: the client sent {other:?} in a run; ignored");
                }
                Err(_) => {
                    // The client is gone (or sent garbage): the run is
                    // hung up, as a process whose terminal closed.
                    let live = {
                        let mut inner = self.lock();
                        match inner.runs.get_mut(&run) {
                            Some(r) => {
                                r.stdin_end = true;
                                r.broken = true;
                                true
                            }
                            None => false,
                        }
                    };
                    if live {
                        self.ring_stdin();
                        self.signal(run, 1);
                    }
                    break;
                }
            }
        }
    }

    fn signal(&self, run: u32, sig: u32) {
        let _ = self.ask(Item {
            kind: CONTROL_SIGNAL,
            run,
            signal: sig,
            ..Default::default()
        });
    }

    fn ps(&self) -> Result<ProcessorEvent, String> {
        let answer = self.ask(Item {
            kind: CONTROL_PS,
            ..Default::default()
        });
        let d = answer
            .recv_timeout(MONITOR_TIMEOUT)
            .map_err(|_| format!("processor {} did not answer", self.id()))?;
        let text = String::from_utf8_lossy(&d.data).into_owned();
        let runs: HashMap<u32, (String, u32, String)> = self
            .lock()
            .runs
            .iter()
            .map(|(&id, r)| (id, (r.vnode.clone(), r.leader, r.command.clone())))
            .collect();
        let list = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let pid = parts.next()?.parse().ok()?;
                let run: u32 = parts.next()?.parse().ok()?;
                let exe = parts.next().unwrap_or("").to_owned();
                let (vnode, command) = match runs.get(&run) {
                    Some((v, leader, cmd)) if *leader == pid => (v.clone(), cmd.clone()),
                    Some((v, _, _)) => (v.clone(), exe),
                    None => (String::new(), exe),
                };
                Some(ProcessInfo {
                    pid,
                    vnode,
                    run,
                    command,
                })
            })
            .collect();
        Ok(ProcessorEvent::Ps(list))
    }

    fn kill(&self, pid: u32, signal: i32) -> Result<ProcessorEvent, String> {
        if !(1..=64).contains(&signal) {
            return Err(format!("{signal} is not a signal (1 to 64)"));
        }
        let answer = self.ask(Item {
            kind: CONTROL_KILL,
            pid,
            signal: signal as u32,
            ..Default::default()
        });
        let d = answer
            .recv_timeout(MONITOR_TIMEOUT)
            .map_err(|_| format!("processor {} did not answer", self.id()))?;
        if d.result < 0 {
            return Err(format!("no process {pid} on processor {}", self.id()));
        }
        Ok(ProcessorEvent::Done)
    }

    fn files(&self, vnode: &VNode) -> Result<crate::store_files::StoreFiles<'_>, String> {
        // A copy that comes while the VM still boots (the control address
        // is up before it) waits for it.
        let deadline = std::time::Instant::now() + MONITOR_TIMEOUT;
        while self.notify.get().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let fabric = self
            .fabric
            .get()
            .ok_or_else(|| format!("processor {} has no fabric to reach storage", self.id()))?;
        Ok(crate::store_files::StoreFiles {
            fabric,
            id: vnode.storage,
            vnode: vnode.id,
        })
    }

    fn put(
        &self,
        vnode: &VNode,
        path: &[u8],
        mode: u32,
        reader: &mut BufReader<TcpStream>,
    ) -> Result<ProcessorEvent, String> {
        let files = self.files(vnode)?;
        files.put(path, mode, || match recv(reader)? {
            ProcessorRequest::Data(d) if d.is_empty() => Ok(None),
            ProcessorRequest::Data(d) => Ok(Some(d)),
            other => Err(format!("expected file data, got {other:?}")),
        })?;
        Ok(ProcessorEvent::Done)
    }

    fn get(
        &self,
        vnode: &VNode,
        path: &[u8],
        out: &Mutex<TcpStream>,
    ) -> Result<ProcessorEvent, String> {
        let files = self.files(vnode)?;
        files.get(path, |piece| {
            send(out, &ProcessorEvent::Data(piece.to_vec()))
                .map_err(|e| format!("the client went away: {e}"))
        })?;
        Ok(ProcessorEvent::Data(Vec::new()))
    }

    fn exists(&self, vnode: &VNode, path: &[u8]) -> Result<ProcessorEvent, String> {
        match self.files(vnode)?.stat(path)? {
            Some(_) => Ok(ProcessorEvent::Done),
            None => Err(format!("{}: no such file", String::from_utf8_lossy(path))),
        }
    }
}
