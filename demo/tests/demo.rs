//! Runs the built lego-demo: its results, its refusals, and that cargo built
//! it as a static executable (Lego runs no other kind).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const DEMO: &str = env!("CARGO_BIN_EXE_lego-demo");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(DEMO)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lego-demo runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Standard output of a run that must succeed, after checking that standard
/// error is only the time taken.
fn stdout_of(args: &[&str], stdin: &[u8]) -> String {
    let out = run(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {}\n{stderr}", out.status);
    assert!(
        stderr.starts_with("took ") && stderr.ends_with(" s\n") && stderr.lines().count() == 1,
        "{args:?}: stderr {stderr:?}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn primes_by_default() {
    // The counts are the well-known pi(10^k); pi(2^27) = 7603553.
    let expected = "\
lego-demo primes: a sieve of Eratosthenes in 64 MiB of memory, one byte per odd number
primes below        10:         4
primes below       100:        25
primes below      1000:       168
primes below     10000:      1229
primes below    100000:      9592
primes below   1000000:     78498
primes below  10000000:    664579
primes below 100000000:   5761455
primes below 134217728:   7603553
largest of them: 134217689
sum of them: 494848669845962
memory: wrote 64 MiB (16384 pages of 4 KiB), read it all back and counted the same 7603553 primes
";
    assert_eq!(stdout_of(&[], b""), expected);
    assert_eq!(stdout_of(&["primes", "--mem", "64M"], b""), expected);
}

#[test]
fn primes_in_a_megabyte() {
    let out = stdout_of(&["--mem=1M"], b"");
    assert!(out.contains("in 1 MiB of memory"), "{out}");
    assert!(out.contains("primes below 1000000:   78498\n"), "{out}");
    assert!(out.contains("primes below 2097152:  155611\n"), "{out}");
    assert!(out.contains("largest of them: 2097143\n"), "{out}");
    assert!(out.contains("(256 pages of 4 KiB)"), "{out}");
}

#[test]
fn wordfreq_on_stdin() {
    let text = "The cat sat on the mat.\nThe dog didn’t sit; the cat did!\n";
    let table = [
        ("the", 4),
        ("cat", 2),
        ("did", 1),
        ("didn't", 1),
        ("dog", 1),
        ("mat", 1),
        ("on", 1),
        ("sat", 1),
        ("sit", 1),
    ];
    // FNV-1a, 64 bits, over the whole table as "word count" lines.
    let mut checksum: u64 = 0xcbf2_9ce4_8422_2325;
    for b in table
        .iter()
        .flat_map(|(w, n)| format!("{w} {n}\n").into_bytes())
    {
        checksum = (checksum ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let out = stdout_of(&["wordfreq", "--top", "3"], text.as_bytes());
    assert_eq!(
        out,
        format!(
            "\
lego-demo wordfreq: 59 bytes, 2 lines, 13 words, 9 different
the 3 most frequent:
  4  the
  2  cat
  1  did
checksum of all 9 words and their counts: {checksum:016x}
memory: about 550 bytes (the text and the table)
"
        )
    );
    let empty = stdout_of(&["wordfreq"], b"");
    assert!(empty.starts_with("lego-demo wordfreq: 0 bytes, 0 lines, 0 words, 0 different\n"));
}

#[test]
fn refuses_bad_arguments() {
    for args in [
        &["sort"][..],
        &["--mem"],
        &["--mem", "12Q"],
        &["--mem", "100"],
        &["wordfreq", "--mem", "1G"],
        &["--frobnicate"],
    ] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("lego-demo: ") && stderr.contains("usage: "),
            "{args:?}: {stderr}"
        );
    }
    let help = run(&["--help"], b"");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: lego-demo"));
}

#[test]
fn cargo_built_it_static() {
    // ELF64 little-endian: the program headers' offset, size and number in
    // the file header; each header's type in its first four bytes.
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const ET_EXEC: u16 = 2;
    let elf = std::fs::read(DEMO).unwrap();
    assert_eq!(&elf[..5], b"\x7fELF\x02", "{DEMO}: not a 64-bit ELF");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36) as usize, u16_at(0x38));
    let types: Vec<u32> = (0..usize::from(phnum))
        .map(|i| {
            let at = phoff + i * phentsize;
            u32::from_le_bytes(elf[at..at + 4].try_into().unwrap())
        })
        .collect();
    let hint = "the workspace's .cargo/config.toml runs demo/rustc-wrapper.sh to link lego-demo \
                statically; was it missing, or RUSTC_WORKSPACE_WRAPPER set?";
    assert!(
        !types.contains(&PT_INTERP),
        "{DEMO} asks for a dynamic loader: {hint}"
    );
    assert!(
        !types.contains(&PT_DYNAMIC),
        "{DEMO} has a dynamic section: {hint}"
    );
    assert_eq!(
        u16_at(0x10),
        ET_EXEC,
        "{DEMO}: not a plain (non-PIE) executable: {hint}"
    );
}
