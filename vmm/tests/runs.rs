//! A processor that serves runs (`--control`): programs started over its
//! control address with their stdio streamed over the connection, several
//! at once, signalled, listed and killed; files copied to and from its
//! storage component; and garbage on the control socket.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use lego_control::*;

const BUSYBOX: &str = "/bin/busybox";

struct Rack {
    _memory: Process,
    _storage: Process,
    processor: Process,
    control: String,
    storage_addr: String,
    _dir: std::path::PathBuf,
}

fn vnode() -> VNode {
    VNode {
        name: DEFAULT_VNODE.into(),
        id: 1,
        storage: 3,
    }
}

fn web() -> VNode {
    VNode {
        name: "web".into(),
        id: 2,
        storage: 3,
    }
}

impl Rack {
    fn new(name: &str) -> Rack {
        let dir = scratch(name);
        let disk = dir.join("disk.img");
        let (memory, maddr) = memory_component(1, "512M", &[]);
        let (storage, saddr) = storage_component(3, &disk, &["--disk-size=256M"]);
        let (p1, p3) = (format!("1={maddr}"), format!("3={saddr}"));
        let mut processor = Process::start(&[
            "--role",
            "processor",
            "--vcpus",
            "2",
            "--excache",
            "32M",
            "--peer",
            &p1,
            "--peer",
            &p3,
            "--storage",
            "3",
            "--control",
            "127.0.0.1:0",
        ]);
        let line = processor.wait_for("serves runs on ");
        let control = line
            .split("serves runs on ")
            .nth(1)
            .expect("an address")
            .trim()
            .to_owned();
        processor.wait_for("processor monitor: serving runs");
        Rack {
            _memory: memory,
            _storage: storage,
            processor,
            control,
            storage_addr: saddr,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.control).expect("connect to the control address");
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        s
    }

    fn put(&self, path: &str, data: &[u8], mode: u32) {
        self.put_in(vnode(), path, data, mode)
    }

    fn put_in(&self, vnode: VNode, path: &str, data: &[u8], mode: u32) {
        let mut s = self.connect();
        send(
            &mut s,
            &ProcessorRequest::Put {
                vnode,
                path: path.as_bytes().to_vec(),
                mode,
            },
        );
        for chunk in data.chunks(1 << 20) {
            send(&mut s, &ProcessorRequest::Data(chunk.to_vec()));
        }
        send(&mut s, &ProcessorRequest::Data(Vec::new()));
        assert_eq!(recv(&mut s), ProcessorEvent::Done, "put {path}");
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        self.get_in(vnode(), path)
    }

    fn get_in(&self, vnode: VNode, path: &str) -> Result<Vec<u8>, String> {
        let mut s = self.connect();
        send(
            &mut s,
            &ProcessorRequest::Get {
                vnode,
                path: path.as_bytes().to_vec(),
            },
        );
        let mut out = Vec::new();
        loop {
            match recv(&mut s) {
                ProcessorEvent::Data(d) if d.is_empty() => return Ok(out),
                ProcessorEvent::Data(d) => out.extend(d),
                ProcessorEvent::Failed(why) => return Err(why),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Starts a run; the connection, after its Started event.
    fn start(&self, argv: &[&str]) -> (TcpStream, u32) {
        self.start_in(vnode(), argv)
    }

    fn start_in(&self, vnode: VNode, argv: &[&str]) -> (TcpStream, u32) {
        let mut s = self.connect();
        send(
            &mut s,
            &ProcessorRequest::Run(RunStart {
                vnode,
                home: 1,
                exe: argv[0].as_bytes().to_vec(),
                argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
                env: vec![b"PATH=/bin".to_vec()],
                cwd: b"/".to_vec(),
            }),
        );
        match recv(&mut s) {
            ProcessorEvent::Started { pid } => (s, pid),
            other => panic!("{argv:?} did not start: {other:?}"),
        }
    }

    fn ps(&self) -> Vec<ProcessInfo> {
        let mut s = self.connect();
        send(&mut s, &ProcessorRequest::Ps);
        match recv(&mut s) {
            ProcessorEvent::Ps(list) => list,
            other => panic!("ps: {other:?}"),
        }
    }
}

fn send(s: &mut TcpStream, req: &ProcessorRequest) {
    s.write_all(&encode(req)).expect("send");
}

fn recv(s: &mut TcpStream) -> ProcessorEvent {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("an event");
    let n = check_len(len).expect("a sane length");
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).expect("the event's body");
    decode(&body).expect("an event")
}

/// Everything a run printed, and how it ended.
fn finish(mut s: TcpStream) -> (String, String, i32, i32) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        match recv(&mut s) {
            ProcessorEvent::Stdout(d) => out.extend(d),
            ProcessorEvent::Stderr(d) => err.extend(d),
            ProcessorEvent::Exited { code, signal } => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    String::from_utf8_lossy(&err).into_owned(),
                    code,
                    signal,
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn ready() -> bool {
    kvm_available() && std::path::Path::new(BUSYBOX).exists()
}

#[test]
fn runs_stream_stdio_run_at_once_and_take_signals() {
    if !ready() {
        return;
    }
    let mut rack = Rack::new("runs-stdio");
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    rack.put("/bin/busybox", &busybox, 0o755);

    // stdin in, stdout and stderr apart, the exit status back.
    let (mut s, _) = rack.start(&[
        "/bin/busybox",
        "sh",
        "-c",
        "read x; echo got $x; echo oops >&2; exit 3",
    ]);
    send(&mut s, &ProcessorRequest::Stdin(b"hello\n".to_vec()));
    send(&mut s, &ProcessorRequest::StdinEnd);
    let (out, err, code, signal) = finish(s);
    assert_eq!(
        (out.as_str(), err.as_str(), code, signal),
        ("got hello\n", "oops\n", 3, 0)
    );

    // Three at once, each with its own stdin and output.
    let runs: Vec<(TcpStream, String)> = (0..3)
        .map(|i| {
            let (mut s, _) = rack.start(&["/bin/busybox", "tr", "a-z", "A-Z"]);
            let text = format!("run number {i}\n").repeat(1000 * (i + 1));
            send(&mut s, &ProcessorRequest::Stdin(text.clone().into_bytes()));
            (s, text)
        })
        .collect();
    let runs: Vec<(TcpStream, String)> = runs
        .into_iter()
        .map(|(mut s, text)| {
            send(&mut s, &ProcessorRequest::StdinEnd);
            (s, text)
        })
        .collect();
    for (s, text) in runs {
        let (out, _, code, _) = finish(s);
        assert_eq!(code, 0);
        assert!(
            out == text.to_uppercase(),
            "a concurrent run's output was mixed up: {} bytes, {:?}...",
            out.len(),
            &out[..out.len().min(80)]
        );
    }

    // Ctrl-C: SIGINT for the run's foreground group.
    let (mut s, _) = rack.start(&["/bin/busybox", "sleep", "60"]);
    send(&mut s, &ProcessorRequest::Signal(2));
    let (_, _, code, signal) = finish(s);
    assert_eq!((code, signal), (130, 2));

    // ps sees a running process; kill ends it.
    let (s, pid) = rack.start(&["/bin/busybox", "sleep", "60"]);
    let list = rack.ps();
    assert!(
        list.iter()
            .any(|p| p.pid == pid && p.command.contains("busybox")),
        "ps does not list pid {pid}: {list:?}"
    );
    let mut k = rack.connect();
    send(&mut k, &ProcessorRequest::Kill { pid, signal: 9 });
    assert_eq!(recv(&mut k), ProcessorEvent::Done);
    let (_, _, code, signal) = finish(s);
    assert_eq!((code, signal), (137, 9));
    let mut k = rack.connect();
    send(&mut k, &ProcessorRequest::Kill { pid, signal: 9 });
    assert!(matches!(recv(&mut k), ProcessorEvent::Failed(m) if m.contains("no process")));

    // A program that is not there: a sentence, not a hang.
    let mut s = rack.connect();
    send(
        &mut s,
        &ProcessorRequest::Run(RunStart {
            vnode: vnode(),
            home: 1,
            exe: b"/bin/nothing-here".to_vec(),
            argv: vec![b"nothing-here".to_vec()],
            env: vec![],
            cwd: b"/".to_vec(),
        }),
    );
    assert!(
        matches!(recv(&mut s), ProcessorEvent::Failed(m) if m.contains("does not exist")),
        "a missing program must be refused with a sentence"
    );

    // A client that goes away: its run is hung up, the processor goes on.
    let (s, pid) = rack.start(&["/bin/busybox", "sleep", "60"]);
    drop(s);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rack.ps().iter().any(|p| p.pid == pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "a run whose client left still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rack.processor.alive());
}

#[test]
fn files_are_copied_in_and_out_and_garbage_is_refused() {
    if !ready() {
        return;
    }
    let mut rack = Rack::new("runs-files");
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    rack.put("/bin/busybox", &busybox, 0o755);
    // A file bigger than one message, into a directory that is made.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    rack.put("/data/deep/in.bin", &data, 0o644);
    assert!(rack.get("/data/deep/in.bin").expect("get") == data);
    // What a run writes can be copied out.
    let (s, _) = rack.start(&[
        "/bin/busybox",
        "sh",
        "-c",
        "md5sum /data/deep/in.bin > /data/sum.txt",
    ]);
    assert_eq!(finish(s).2, 0);
    let sum = rack.get("/data/sum.txt").expect("get the sum");
    let host = std::process::Command::new("md5sum")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(&data)?;
            c.wait_with_output()
        })
        .expect("md5sum on the host");
    assert_eq!(
        String::from_utf8_lossy(&sum).split(' ').next(),
        String::from_utf8_lossy(&host.stdout).split(' ').next()
    );
    assert!(rack.get("/data/missing").is_err());

    // Garbage: a huge length, random bytes, a message out of place.
    for junk in [
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        (0..200u8).map(|i| i.wrapping_mul(37)).collect(),
        encode(&ProcessorRequest::StdinEnd),
    ] {
        let mut s = rack.connect();
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    // A program that writes and exits at once, before the start's answer
    // is handled: Started still comes first, then its output and exit.
    for _ in 0..20 {
        let (mut s, _) = rack.start(&["/bin/busybox", "echo", "still here"]);
        send(&mut s, &ProcessorRequest::StdinEnd);
        assert_eq!(finish(s).0, "still here\n");
    }
    assert!(rack.processor.alive());
}

#[test]
fn two_vnodes_cannot_reach_each_others_files_or_processes() {
    if !ready() {
        return;
    }
    let rack = Rack::new("runs-vnodes");
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    rack.put_in(vnode(), "/bin/busybox", &busybox, 0o755);
    rack.put_in(web(), "/bin/busybox", &busybox, 0o755);
    rack.put_in(vnode(), "/secret.txt", b"default's secret\n", 0o600);

    // The same path is another file in each vNode.
    assert_eq!(
        rack.get_in(vnode(), "/secret.txt").expect("get"),
        b"default's secret\n"
    );
    assert!(rack.get_in(web(), "/secret.txt").is_err());
    let (s, _) = rack.start_in(
        web(),
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "cat /secret.txt; ls -a /; cat /../../1/secret.txt /.vnodes/1/secret.txt",
        ],
    );
    let (out, err, code, _) = finish(s);
    assert_ne!(code, 0);
    assert!(
        !out.contains("secret") || !out.contains("default's"),
        "web read default's file: {out}"
    );
    assert!(err.contains("No such file"), "{err}");
    assert!(
        !out.contains(".vnodes"),
        "web sees the vNodes directory: {out}"
    );

    // Its processes cannot signal another vNode's.
    let (victim, pid) = rack.start_in(vnode(), &["/bin/busybox", "sleep", "30"]);
    let (s, _) = rack.start_in(web(), &["/bin/busybox", "kill", "-9", &pid.to_string()]);
    let (_, err, code, _) = finish(s);
    assert_ne!(code, 0, "web killed default's process");
    assert!(err.contains("No such process"), "{err}");
    assert!(rack.ps().iter().any(|p| p.pid == pid), "the victim is gone");
    drop(victim);

    // A hand-made fabric frame for vNode 2 naming vNode 1's inode: refused
    // as if the inode did not exist.
    use lego_proto::storage::*;
    let mut c = tcp_client(&rack.storage_addr, 92);
    let mut ask = |head: StoreRequest, path: &[u8]| {
        let body = c
            .data(3, &encode_request(&head, path, &[], &[]))
            .expect("an answer");
        let (reply, rest) = decode_reply(&body).expect("a storage reply");
        (reply, rest.to_vec())
    };
    let (st, _) = ask(
        StoreRequest {
            op: OP_STAT,
            vnode: 1,
            ..Default::default()
        },
        b"/secret.txt",
    );
    assert_eq!(st.errno, OK);
    let (r, data) = ask(
        StoreRequest {
            op: OP_READ,
            vnode: 2,
            ino: st.stat.ino,
            len: 100,
            ..Default::default()
        },
        &[],
    );
    assert_eq!((r.errno, data.len()), (ESTALE, 0));
}
