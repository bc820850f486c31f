//! C programs built static for the tests, and running a command to its
//! end with its input, output and exit code.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::scratch;

pub const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs");

/// What a run left: exit code (128+N for a signal, as a shell reports),
/// stdout and stderr.
pub struct Ran {
    pub code: i32,
    pub out: Vec<u8>,
    pub err: String,
}

impl Ran {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// Whether `tools` are installed. CI installs them (.ci/run), so there a
/// missing one fails the test; elsewhere the test is skipped with a note.
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{missing:?} missing on this CI machine (.ci/run installs them: gcc, musl-tools, busybox-static, bash-static, golang-go)");
    }
    eprintln!("skipping: {missing:?} not installed");
    false
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libc {
    Glibc,
    Musl,
}

/// `tests/programs/NAME.c` built static with one libc (once per test run).
pub fn build(name: &str, libc: Libc) -> PathBuf {
    build_linked(name, libc, &[])
}

/// The same, linked with `libs` too (e.g. `-lsqlite3`).
pub fn build_linked(name: &str, libc: Libc, libs: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, Libc), PathBuf>>> = OnceLock::new();
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("programs-bin"));
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("build table");
    if let Some(p) = built.get(&(name.to_owned(), libc)) {
        return p.clone();
    }
    let (cc, suffix) = match libc {
        Libc::Glibc => ("gcc", "glibc"),
        Libc::Musl => ("musl-gcc", "musl"),
    };
    let out = dir.join(format!("{name}-{suffix}"));
    let src = Path::new(SOURCES).join(format!("{name}.c"));
    let result = Command::new(cc)
        .args(["-static", "-O1", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(libs)
        .output()
        .unwrap_or_else(|e| panic!("run {cc}: {e}"));
    assert!(
        result.status.success(),
        "{cc} {}: {}",
        src.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert((name.to_owned(), libc), out.clone());
    out
}

/// Runs `cmd` to the end with `input` on stdin, within `limit`.
pub fn finish(mut cmd: Command, input: &[u8], limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the program");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // A program may exit without reading all of it: a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap_or_default();
            panic!(
                "{cmd:?} did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let out = out.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    Ran { code, out, err }
}
