//! The panic handler: the message and location go to the VMM, which prints
//! them and exits 3. Formatting uses a fixed buffer on the stack: no heap,
//! no console lock, so a panic inside either still gets reported.

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    use core::sync::atomic::{AtomicBool, Ordering};

    use lego_proto::hypercall::{PanicReport, PORT_PANIC};

    use crate::console::FixedText;
    use crate::cpu::{self, virt_to_phys};
    use crate::hypercall;

    static PANICKING: AtomicBool = AtomicBool::new(false);
    if PANICKING.swap(true, Ordering::AcqRel) {
        // A panic while reporting a panic (or on a second vCPU): the first report wins.
        cpu::halt_forever();
    }
    let mut msg = FixedText::<1024>::new();
    let _ = write!(msg, "{}", info.message());
    let (file, line, column) = match info.location() {
        Some(l) => (l.file(), l.line(), l.column()),
        None => ("<unknown>", 0, 0),
    };
    let report = PanicReport {
        file_addr: virt_to_phys(file.as_ptr() as u64),
        file_len: file.len() as u64,
        line,
        column,
        msg_addr: virt_to_phys(msg.as_bytes().as_ptr() as u64),
        msg_len: msg.as_bytes().len() as u64,
        cpu: cpu::current_cpu(),
        _pad: 0,
    };
    hypercall::call_with(PORT_PANIC, &report);
    cpu::halt_forever()
}

/// The prebuilt `core` and `alloc` of the stable toolchain were compiled with
/// unwinding and keep references to this symbol in their cleanup paths. The
/// images abort on panic, so those paths never run; the symbol only has to
/// exist.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::cpu::halt_forever()
}

/// Referenced by the same prebuilt unwind tables; never called.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
