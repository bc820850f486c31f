//! Every failure the issue names is provoked on purpose; each gets a clear
//! sentence and its exit code (2: nothing could run; 3: the guest failed),
//! never a hang or a Rust backtrace.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn guest_test(kind: &str, needles: &[&str]) {
    if !kvm_available() {
        return;
    }
    let out = run(&["--role", "memory", "--guest-test", kind]);
    expect_failure(&out, 3, needles);
    assert!(
        stdout(&out).is_empty(),
        "nothing on stdout: {}",
        stdout(&out)
    );
}

#[test]
fn guest_panic_prints_message_and_location() {
    guest_test(
        "panic",
        &[
            "memory component's guest (guest-mmon) on vCPU 0 panicked at images/src/testfail.rs:",
            "deliberate panic requested by the VMM",
        ],
    );
}

#[test]
fn guest_page_fault_prints_vector_rip_cr2_registers() {
    guest_test(
        "page-fault",
        &[
            "page fault (#PF), vector 14",
            "cr2    0x0000004000000000",
            "rip    0x",
            "rsp    0x",
            "rax 0x",
            "r15 0x",
            // The calls that led there, from the return addresses on the stack.
            "on the stack (return addresses, newest first):",
            "lego_image::entry::image_entry+0x",
        ],
    );
}

#[test]
fn guest_divide_error_names_the_function() {
    guest_test(
        "divide-error",
        &[
            "divide error (#DE), vector 0",
            "in lego_image::testfail::run+0x",
        ],
    );
}

#[test]
fn guest_triple_fault_prints_last_state() {
    guest_test(
        "triple-fault",
        &[
            "triple-faulted",
            "KVM_EXIT_SHUTDOWN",
            "rip    0x",
            "cr2    0x",
            "rax 0x",
        ],
    );
}

#[test]
fn guest_bad_hypercall_is_a_guest_failure() {
    guest_test(
        "bad-hypercall",
        &[
            "bad hypercall on port 0x600",
            "0xfffff000, outside guest RAM",
        ],
    );
}

#[test]
fn guest_breakpoint_without_debugger_is_a_failure() {
    guest_test(
        "breakpoint",
        &[
            "breakpoint (#BP), vector 3",
            "none is attached",
            "--gdb ADDR",
            "in lego_image::testfail::run+0x",
        ],
    );
}

#[test]
fn image_for_another_role_is_refused_by_the_guest() {
    if !kvm_available() {
        return;
    }
    let pmon = image("guest-pmon");
    let out = run(&[
        "--role",
        "memory",
        "--image",
        pmon.to_str().unwrap(),
        "--self-test",
    ]);
    expect_failure(
        &out,
        3,
        &["this is the processor image but the VMM started it as the memory component"],
    );
}

fn image_error(name: &str, bytes: &[u8], needles: &[&str]) {
    if !kvm_available() {
        return;
    }
    let dir = scratch(name);
    let path = dir.join("image");
    std::fs::write(&path, bytes).unwrap();
    let out = run(&[
        "--role",
        "storage",
        "--image",
        path.to_str().unwrap(),
        "--self-test",
    ]);
    expect_failure(&out, 2, needles);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn garbage_image_is_not_elf() {
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    image_error(
        "garbage",
        &garbage,
        &["is not an x86-64 ELF executable", "ELF magic"],
    );
}

#[test]
fn truncated_elf_is_refused() {
    let real = std::fs::read(image("guest-smon")).unwrap();
    image_error(
        "truncated",
        &real[..40],
        &["is not an x86-64 ELF executable", "corrupt"],
    );
}

#[test]
fn elf_with_segments_past_its_end_is_refused() {
    // A real image cut after its headers: the segments point past the file.
    let real = std::fs::read(image("guest-smon")).unwrap();
    image_error("cut", &real[..4096], &["is not an x86-64 ELF executable"]);
}

#[test]
fn elf_for_another_machine_is_refused() {
    let mut real = std::fs::read(image("guest-smon")).unwrap();
    real[18] = 183; // e_machine = EM_AARCH64
    image_error("aarch64", &real, &["built for", "not x86-64"]);
}

#[test]
fn host_program_is_not_a_guest_image() {
    let exe = std::fs::read(VMM).unwrap();
    image_error("host", &exe, &["not a static executable"]);
}

#[test]
fn missing_image_says_how_to_build_it() {
    if !kvm_available() {
        return;
    }
    let out = run(&[
        "--role",
        "memory",
        "--image",
        "/nonexistent/guest-mmon",
        "--self-test",
    ]);
    expect_failure(
        &out,
        2,
        &[
            "/nonexistent/guest-mmon does not exist",
            "cargo build --workspace",
        ],
    );
}

#[test]
fn image_larger_than_mem_is_refused() {
    if !kvm_available() {
        return;
    }
    let out = run(&["--role", "memory", "--mem", "4M", "--self-test"]);
    expect_failure(
        &out,
        2,
        &["does not fit in guest RAM", "--mem gives 4.0 MiB"],
    );
    // 6M holds the image and the minimum heap: the smallest guest boots.
    let out = run(&["--role", "memory", "--mem", "6M", "--self-test"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_options_get_a_sentence() {
    let cases: [(&[&str], &str); 6] = [
        (&["--mem", "3M"], "not a positive multiple of 2M"),
        (&["--mem", "lots"], "is not a size"),
        (&["--vcpus", "0"], "--vcpus: 0 is outside 1..=16"),
        (&["--vcpus", "17"], "--vcpus: 17 is outside 1..=16"),
        // (An --env without a name or `=` used to be dropped in silence.)
        (&["--env", "NOEQ"], "\"NOEQ\" is not K=V"),
        (&["--env", "=v"], "\"=v\" is not K=V"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["--role", "memory", "--self-test"];
        all.extend_from_slice(args);
        let out = run(&all);
        expect_failure(&out, 2, &[needle]);
    }
    // A component on the fabric needs room for its queues.
    let out = run(&["--role", "memory", "--id", "1", "--mem", "32M"]);
    expect_failure(
        &out,
        2,
        &["too little for a component on the fabric", "at least 40M"],
    );
    let out = run(&["--role", "storage", "--id", "1", "--mem", "8M"]);
    expect_failure(
        &out,
        2,
        &["too little for a component on the fabric", "at least 16M"],
    );
    let out = run(&["--role", "graphics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'graphics'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_kvm_device_is_named() {
    let out = run(&[
        "--role",
        "memory",
        "--kvm-device",
        "/dev/no-such-kvm",
        "--self-test",
    ]);
    expect_failure(
        &out,
        2,
        &["/dev/no-such-kvm does not exist", "this host has no KVM"],
    );
}

#[test]
fn kvm_without_permission_is_named() {
    if !kvm_available() {
        return;
    }
    // Root opens anything: run lego-vmm as nobody with setpriv (util-linux).
    // In CI (root, setpriv installed by .ci/run) this test must run.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = std::path::Path::new("/usr/bin/setpriv").exists();
    if !root || !setpriv {
        let why = format!("needs root (here: {root}) and /usr/bin/setpriv (here: {setpriv}) to run lego-vmm as another user");
        if std::env::var_os("CI").is_some() {
            panic!("this CI machine cannot run the permission test: it {why}");
        }
        eprintln!("skipping: {why}");
        return;
    }
    // A copy nobody can execute, whatever the permissions of the build tree.
    let dir = scratch("perm");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("lego-vmm");
    std::fs::copy(VMM, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The KVM device behind a directory only root may enter: nobody is
    // refused whatever the permissions of /dev/kvm on this host, and
    // nothing about /dev/kvm changes for anyone else.
    let private = dir.join("root-only");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let hidden = private.join("kvm");
    std::os::unix::fs::symlink("/dev/kvm", &hidden).unwrap();
    let mut devices = vec![hidden.clone()];
    // /dev/kvm itself too, where it is closed to others (as on most hosts).
    let kvm_mode = std::fs::metadata("/dev/kvm").unwrap().permissions().mode();
    if kvm_mode & 0o006 != 0o006 {
        devices.push("/dev/kvm".into());
    }
    for device in devices {
        let child = std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .args(["--role", "memory", "--self-test", "--kvm-device"])
            .arg(&device)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start setpriv");
        let out = wait_with_timeout(child, std::time::Duration::from_secs(30), &["setpriv"]);
        let needle = format!("no permission to open {}", device.display());
        expect_failure(&out, 2, &[&needle, "group that owns it"]);
    }
    // The same device, as root: it works, so the refusal above was the
    // permission and nothing else.
    let out = run(&[
        "--role",
        "memory",
        "--self-test",
        "--kvm-device",
        &hidden.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}
