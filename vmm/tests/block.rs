//! The storage component's disk (`--disk`): it boots with one, one disk
//! has one owner, and the options are refused where they make no sense.

mod common;

use common::*;

#[test]
fn storage_boots_with_its_disk() {
    if !kvm_available() {
        return;
    }
    let dir = scratch("disk-boot");
    let disk = dir.join("disk.img");
    let path = disk.to_str().expect("UTF-8 path");
    let mut first = Process::start(&[
        "--role",
        "storage",
        "--disk",
        path,
        "--disk-size",
        "64M",
        "--log-level",
        "info",
    ]);
    first.wait_for("storage monitor: formatted a new disk of 64 MiB");
    assert_eq!(
        std::fs::metadata(&disk)
            .expect("the disk was created")
            .len(),
        64 << 20
    );

    // The disk is the first one's while it runs.
    let out = run(&["--role", "storage", "--disk", path]);
    expect_failure(
        &out,
        2,
        &[
            &format!(
                "disk {path} is in use by another lego-vmm (pid {})",
                first.child.id()
            ),
            "stop it first",
        ],
    );

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(first.child.id() as i32, libc::SIGTERM) };
    assert_eq!(first.wait(std::time::Duration::from_secs(10)).0, Some(0));
    assert!(
        first
            .seen
            .iter()
            .any(|l| l.contains("disk: ") && l.contains(" flushes")),
        "no disk counters at exit:\n{}",
        first.seen.join("\n")
    );

    // Once it is gone the disk is free, at its own size.
    let mut again = Process::start(&["--role", "storage", "--disk", path]);
    again.wait_for("storage monitor: mounted a disk of 64 MiB");
    assert_eq!(again.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn storage_without_a_disk_says_so() {
    if !kvm_available() {
        return;
    }
    let mut p = Process::start(&["--role", "storage"]);
    p.wait_for("storage monitor: no disk");
    assert_eq!(p.stop(), Some(0));
}

#[test]
fn disk_options_are_refused_where_they_make_no_sense() {
    let dir = scratch("disk-options");
    let disk = dir.join("disk.img");
    let path = disk.to_str().expect("UTF-8 path");

    let out = run(&["--role", "memory", "--disk", path]);
    expect_failure(&out, 2, &["--disk", "only a storage component has a disk"]);
    assert!(!disk.exists(), "a refused --disk must not create the file");

    for (size, needle) in [
        ("1000K", "a multiple of 4K and at least 64M"),
        ("32M", "a multiple of 4K and at least 64M"),
        ("big", "is not a size"),
    ] {
        let out = run(&["--role", "storage", "--disk", path, "--disk-size", size]);
        expect_failure(&out, 2, &["--disk-size", needle]);
        assert!(
            !disk.exists(),
            "a refused --disk-size must not create the file"
        );
    }

    // An existing disk keeps its size: another one is refused.
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(64 << 20))
        .expect("a 64 MiB disk");
    let out = run(&["--role", "storage", "--disk", path, "--disk-size", "128M"]);
    expect_failure(
        &out,
        2,
        &[
            &format!(
                "--disk-size 134217728 does not match the disk {path}, which has 67108864 bytes"
            ),
            "drop --disk-size",
        ],
    );
    assert_eq!(std::fs::metadata(&disk).expect("kept").len(), 64 << 20);

    // Not a file a disk can be.
    let out = run(&["--role", "storage", "--disk", dir.to_str().expect("UTF-8")]);
    expect_failure(&out, 2, &["cannot open the disk"]);
    let _ = std::fs::remove_dir_all(&dir);
}
