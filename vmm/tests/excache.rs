//! The processor's ExCache against real memory components: the built-in
//! workload writes a pseudo-random pattern over a working set four times
//! the ExCache and verifies every byte, with FIFO and LRU, with one and
//! two memory components; random accesses to such a working set; a memory
//! component dies mid-run; an access outside every mapping; bad options.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Runs the workload; its exit code, stdout and stderr.
fn processor(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["--role", "processor"];
    all.extend_from_slice(args);
    let mut p = Process::start(&all);
    let (code, out) = p.wait(Duration::from_secs(120));
    (code, out, p.seen.join("\n"))
}

/// The `key=value` number in the workload's line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// The number before `after` in the ExCache's summary line.
fn count_before(err: &str, after: &str) -> u64 {
    let line = err
        .lines()
        .find(|l| l.contains("excache: "))
        .unwrap_or_else(|| panic!("no ExCache summary in {err}"));
    let at = line
        .find(after)
        .unwrap_or_else(|| panic!("no '{after}' in {line}"));
    line[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before '{after}' in {line}"))
}

/// 1 MiB of ExCache (256 pages) for a 4 MiB working set (1024 pages).
/// The write pass touches fresh memory: its pages are zeros installed by
/// the VMM without asking a memory component, a run of them per fault
/// and, as the pass goes on, more ahead of it.
/// The read pass brings every page back once, by a miss or, with
/// prefetching, read ahead in runs. Every written page is written back
/// exactly once, in batches.
fn check_quarter_cache_run(code: Option<i32>, out: &str, err: &str, prefetch: bool) {
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("workload ok "))
        .unwrap_or_else(|| panic!("no workload line in {out:?}; stderr: {err}"));
    assert_eq!(field(line, "bytes"), 4 << 20);
    assert_eq!(field(line, "writebacks"), 1024, "{line}");
    assert!(field(line, "miss_p50_us") > 0);
    // Every page brought in and not cached at the end was evicted; the
    // last eviction made room for a few misses more (at most 4 pages).
    let evictions = field(line, "evictions");
    assert!((2048 - 256..=2048 - 256 + 4).contains(&evictions), "{line}");
    let fresh = count_before(err, " fresh pages zero-filled here");
    let read_misses = count_before(err, " read,");
    let write_misses = count_before(err, " write)");
    let prefetched = count_before(err, " prefetched");
    let upgrades = count_before(err, " first writes after a read");
    let requests = count_before(err, " requests,");
    assert_eq!(fresh, 1024, "{err}");
    // A run of them per fault, and a write scan has the next runs
    // installed ahead of it (32 faults without).
    assert!(
        write_misses <= 1024 / 64,
        "a fault per run of fresh pages and more ahead: {err}"
    );
    assert_eq!(field(line, "misses"), read_misses + write_misses, "{line}");
    assert_eq!(read_misses + prefetched, 1024, "{err}");
    // Nothing fetched is written after: no write-protect fault at all.
    assert_eq!(upgrades, 0, "{err}");
    // Dirty victims leave together, several to a request.
    assert!(requests <= 1024 / 2, "{err}");
    if prefetch {
        assert!(
            read_misses < 300,
            "a sequential pass is mostly read ahead: {err}"
        );
    } else {
        assert_eq!(read_misses, 1024, "{err}");
    }
}

#[test]
fn pattern_through_a_quarter_size_excache_fifo_and_lru() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "64M", &[]);
    let peer = format!("1={addr}");
    // FIFO without prefetching, LRU with it (misses served from
    // prefetched pages).
    for (policy, prefetch) in [("fifo", "0"), ("lru", "4")] {
        let (code, out, err) = processor(&[
            "--excache",
            "1M",
            "--excache-policy",
            policy,
            "--excache-prefetch",
            prefetch,
            "--peer",
            &peer,
            "--run-workload",
            "pattern:4M",
        ]);
        check_quarter_cache_run(code, &out, &err, prefetch != "0");
    }
    assert_eq!(m.stop(), Some(0));
}

/// Random accesses to a working set four times the cache: every page
/// read is verified, three in four accesses miss, little is read ahead
/// (the misses do not look like a scan), and the memory component's VMM
/// answers the reads itself.
#[test]
fn random_accesses_through_a_quarter_size_excache() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "64M", &[]);
    let peer = format!("1={addr}");
    let (code, out, err) = processor(&[
        "--excache",
        "1M",
        "--peer",
        &peer,
        "--run-workload",
        "random:4M",
    ]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("workload ok bytes=4194304"), "{out}");
    let read_misses = count_before(&err, " read,");
    // 1024 accesses, of which about 3/4 miss (the page is not cached).
    assert!((600..=900).contains(&read_misses), "{err}");
    let prefetched = count_before(&err, " prefetched");
    // Only a miss that lands just past the previous one reads ahead (about
    // 17 in 1024 of them); reading ahead after each would bring thousands.
    assert!(
        prefetched < read_misses / 2,
        "random misses read ahead: {err}"
    );
    // Every page read was written back before (the write pass), and a
    // page written back is published: the memory component's VMM answered
    // the reads from its monitor's page index, without its guest.
    let stats = fabric_stats(&mut tcp_client(&addr, 100), 1);
    assert!(
        stats.reads_by_vmm * 10 >= read_misses * 9,
        "{} of {read_misses} reads answered by the VMM",
        stats.reads_by_vmm
    );
    assert_eq!(m.stop(), Some(0));
}

#[test]
fn pattern_over_two_memory_components() {
    if !kvm_available() {
        return;
    }
    // The home (1) hands the workload's second vRegion to component 2.
    let (m2, a2) = memory_component(2, "64M", &[]);
    let p2 = format!("2={a2}");
    let (m1, a1) = memory_component(1, "64M", &["--peer", &p2, "--vregion-peers", "2"]);
    let p1 = format!("1={a1}");
    for policy in ["fifo", "lru"] {
        let (code, out, err) = processor(&[
            "--excache",
            "1M",
            "--excache-policy",
            policy,
            "--peer",
            &p1,
            "--peer",
            &p2,
            "--run-workload",
            "pattern:4M",
        ]);
        check_quarter_cache_run(code, &out, &err, true);
        assert!(
            err.contains("1 owner redirects"),
            "the second vRegion was found at component 2: {err}"
        );
    }
    assert_eq!(m1.stop(), Some(0));
    assert_eq!(m2.stop(), Some(0));
}

#[test]
fn a_memory_component_killed_mid_run_stops_the_process_with_a_clear_error() {
    if !kvm_available() {
        return;
    }
    // A run long enough to be cut: 64 MiB took 0.2 s through a 1 MiB
    // ExCache here, finishing before the kill on a quiet host.
    let (m, addr) = memory_component(1, "640M", &[]);
    let peer = format!("1={addr}");
    let mut p = Process::start(&[
        "--role",
        "processor",
        "--excache",
        "1M",
        "--peer",
        &peer,
        "--fabric-timeout-ms",
        "1000",
        "--run-workload",
        "pattern:256M",
    ]);
    p.wait_for("workload: process");
    std::thread::sleep(Duration::from_millis(100));
    drop(m);
    let killed = Instant::now();
    let (code, out) = p.wait(Duration::from_secs(30));
    let err = p.seen.join("\n");
    assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
    assert!(
        err.contains("memory component 1") && err.contains("cannot be reached"),
        "{err}"
    );
    assert!(!out.contains("workload ok"));
}

#[test]
fn an_access_outside_every_mapping_is_a_fault_report() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "64M", &[]);
    let peer = format!("1={addr}");
    let (code, out, err) = processor(&[
        "--excache",
        "1M",
        "--peer",
        &peer,
        "--run-workload",
        "outside:64K",
    ]);
    assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("not mapped (EFAULT)") && err.contains("SIGSEGV"),
        "{err}"
    );
    // A write to memory made read-only (the page cached read-only).
    let (code, out, err) = processor(&[
        "--excache",
        "64K",
        "--peer",
        &peer,
        "--run-workload",
        "readonly:256K",
    ]);
    assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("the write of") && err.contains("(EACCES)") && err.contains("SIGSEGV"),
        "{err}"
    );
    // The memory component is fine.
    assert!(m.stop() == Some(0));
}

#[test]
fn excache_options_are_checked() {
    for (args, option, needle) in [
        (
            &["--role", "memory", "--excache", "1M"][..],
            "--excache",
            "only a processor",
        ),
        (
            &[
                "--role",
                "processor",
                "--excache",
                "1M",
                "--run-workload",
                "pattern:4M",
            ][..],
            "--run-workload",
            "add --peer",
        ),
        (
            &[
                "--role",
                "processor",
                "--excache",
                "3K",
                "--peer",
                "1=127.0.0.1:9",
            ][..],
            "--excache",
            "multiple of 4K",
        ),
        (
            &[
                "--role",
                "processor",
                "--excache",
                "1M",
                "--peer",
                "1=127.0.0.1:9",
                "--run-workload",
                "sort:4M",
            ][..],
            "--run-workload",
            "no workload",
        ),
        (
            &[
                "--role",
                "processor",
                "--excache",
                "1M",
                "--peer",
                "1=127.0.0.1:9",
                "--memory",
                "5",
                "--run-workload",
                "pattern:4M",
            ][..],
            "--memory",
            "add --peer 5=ADDR",
        ),
        (
            &[
                "--role",
                "processor",
                "--excache",
                "1T",
                "--peer",
                "1=127.0.0.1:9",
            ][..],
            "--excache",
            "more than this host's",
        ),
    ] {
        expect_failure(&run(args), 2, &[option, needle]);
    }
}

/// The ExCache's counters are readable on the fabric while it runs.
#[test]
fn excache_stats_are_answered_on_the_fabric() {
    if !kvm_available() {
        return;
    }
    // Asked while the run goes on: long enough not to have ended first
    // (64 MiB took 0.2 s here).
    let (_m, addr) = memory_component(1, "640M", &[]);
    let peer = format!("1={addr}");
    let mut p = Process::start(&[
        "--role",
        "processor",
        "--id",
        "50",
        "--listen",
        "127.0.0.1:0",
        "--excache",
        "1M",
        "--peer",
        &peer,
        "--run-workload",
        "pattern:256M",
    ]);
    let me = p.listen_address();
    p.wait_for("workload: process");
    std::thread::sleep(Duration::from_millis(100));
    let mut conn = tcp_client(&me, 100);
    let stats = excache_stats(&mut conn, 50);
    assert_eq!(stats.pages, 256);
    assert!(stats.misses > 0 && stats.cached > 0, "{stats:?}");
    assert_eq!(stats.miss_histogram.iter().sum::<u64>(), stats.misses);
    assert_eq!(stats.read_misses + stats.write_misses, stats.misses);
}
