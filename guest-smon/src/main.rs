//! guest-smon: the storage monitor. It serves files once the storage issue
//! lands; today it boots and waits.
#![no_std]
#![no_main]

use lego_image::{cpu, BootInfo, Role};

lego_image::guest!(Role::Storage, main);

fn main(_boot: &'static BootInfo) -> ! {
    lego_image::println!("storage monitor: nothing to serve yet; idle until stopped");
    cpu::halt_forever()
}
