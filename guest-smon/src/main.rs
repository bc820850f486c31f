//! guest-smon: the storage monitor. Its logic is the `smon` library (the
//! file system and the service); this shell mounts the file system on the
//! component's virtual disk and serves the fabric with it.
#![no_std]
#![no_main]

extern crate alloc;

use lego_image::block::{self, BlockError, Disk};
use lego_image::{fabric, hypercall, BootInfo, Role};
use lego_proto::hypercall::{EXIT_DISK_REFUSED, PORT_EXIT};
use smon::block::{BlockDevice, IoError};
use smon::fs::{Fs, MountError};
use smon::service::Service;

lego_image::guest!(Role::Storage, main);

/// The virtual disk as the file system's block device.
struct VirtioDisk(Disk);

impl BlockDevice for VirtioDisk {
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.0.read(sector, buf).map_err(|_| IoError)
    }

    fn read_many(&mut self, reads: &mut [(u64, &mut [u8])]) -> Result<(), IoError> {
        self.0.read_many(reads).map_err(|_| IoError)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.0.write(sector, buf).map_err(|_| IoError)
    }

    fn write_many(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        self.0.write_many(writes).map_err(|_| IoError)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().map_err(|_| IoError)
    }

    fn write_many_and_flush(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        self.0.write_many_and_flush(writes).map_err(|_| IoError)
    }
}

/// Says why the disk cannot be used and stops the component (the VMM
/// exits with status 2).
fn refuse(why: core::fmt::Arguments<'_>) -> ! {
    lego_image::println!("storage monitor: {why}");
    hypercall::out(PORT_EXIT, EXIT_DISK_REFUSED);
    lego_image::cpu::halt_forever()
}

fn mount(disk: Disk, now: u64) -> (Fs<VirtioDisk>, u64) {
    let mib = disk.sectors() >> 11;
    if disk.fresh() {
        return match Fs::format(VirtioDisk(disk), now) {
            Ok(fs) => {
                lego_image::println!("storage monitor: formatted a new disk of {mib} MiB");
                (fs, 0)
            }
            Err(e) => refuse(format_args!("cannot format the new disk: {e:?}")),
        };
    }
    match Fs::mount(VirtioDisk(disk)) {
        Ok((fs, r)) => {
            lego_image::println!(
                "storage monitor: mounted a disk of {mib} MiB: {} files, {} log records replayed",
                r.files,
                r.records_replayed
            );
            // Every block used once, link counts and free space agree.
            match fs.check() {
                Ok(c) => lego_image::println!(
                    "storage monitor: file system check: clean ({} files, {} directories, {} blocks used)",
                    c.files,
                    c.dirs,
                    c.used_blocks
                ),
                Err(why) => refuse(format_args!(
                    "the disk's file system does not check clean ({why}); it was not changed"
                )),
            }
            (fs, r.records_replayed)
        }
        Err(MountError::NotLego) => refuse(format_args!(
            "the disk is not a Lego disk (no Lego file system at its start); it was not written to. Give a new path or an empty file to make one"
        )),
        Err(MountError::Version(v)) => refuse(format_args!(
            "the disk holds a Lego file system of version {v}, which this lego-vmm does not read; it was not written to"
        )),
        Err(MountError::TooSmall) => refuse(format_args!(
            "the disk is too small for a Lego file system (64 MiB at least)"
        )),
        Err(MountError::Damaged(what)) => refuse(format_args!(
            "the disk's file system is damaged beyond recovery ({what}); it was not changed"
        )),
        Err(MountError::Io) => refuse(format_args!("the disk failed a read while mounting")),
    }
}

fn main(boot: &'static BootInfo) -> ! {
    let disk = match block::open() {
        Ok(d) => d,
        Err(BlockError::NoDisk) => {
            // Without a disk the component has no files: it only answers
            // the fabric's exercises (echo), as every monitor does.
            lego_image::println!("storage monitor: no disk (--disk): no files to serve");
            fabric::serve_or_idle(boot, fabric::echo)
        }
        Err(e) => refuse(format_args!("the disk cannot be used: {e:?}")),
    };
    if disk.read_only() {
        lego_image::println!("storage monitor: the disk is read-only: writes will fail with EIO");
    }
    let (fs, replayed) = mount(disk, boot.realtime_ns);
    let mut service = Service::new(fs, replayed);
    fabric::serve_grouped_or_idle(boot, move |requests| {
        service
            .handle_group(requests)
            .into_iter()
            .map(Some)
            .collect()
    })
}
