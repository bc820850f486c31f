//! guest-smon: the storage monitor. It serves files once the storage issue
//! lands; today it boots and waits.
#![no_std]
#![no_main]

use lego_image::{fabric, BootInfo, Role};

lego_image::guest!(Role::Storage, main);

fn main(boot: &'static BootInfo) -> ! {
    lego_image::println!("storage monitor: nothing to serve yet; serving the fabric if it has one");
    fabric::serve_or_idle(boot, fabric::echo)
}
