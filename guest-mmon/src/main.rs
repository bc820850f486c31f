//! guest-mmon: the memory monitor. It serves virtual memory once the fabric
//! and memory-monitor issues land; today it boots and waits.
#![no_std]
#![no_main]

use lego_image::{cpu, BootInfo, Role};

lego_image::guest!(Role::Memory, main);

fn main(_boot: &'static BootInfo) -> ! {
    lego_image::println!("memory monitor: nothing to serve yet; idle until stopped");
    cpu::halt_forever()
}
