//! Getting a vCPU thread out of KVM_RUN from another thread: its kvm_run's
//! `immediate_exit` raised, which KVM reads on entry, so a kick that comes
//! while the thread is between two KVM_RUNs is not lost; and the kick
//! signal, which ends a KVM_RUN under way (the signal alone would be spent
//! in user space in the first case). The vCPU thread clears the field
//! before it looks at what it was kicked for.

use std::sync::Mutex;

/// A vCPU thread, while its VcpuFd lives.
#[derive(Clone, Copy)]
struct Target {
    /// `&mut kvm_run.immediate_exit` of the vCPU, as an address.
    immediate_exit: usize,
    thread: libc::pthread_t,
}

/// Where to kick one vCPU thread, once it has registered.
#[derive(Default)]
pub struct Kick {
    target: Mutex<Option<Target>>,
}

impl Kick {
    /// Called on the vCPU's own thread with its `immediate_exit` field,
    /// which lives until [`Kick::unregister`].
    pub fn register(&self, immediate_exit: &mut u8) {
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() };
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(Target {
            immediate_exit: immediate_exit as *mut u8 as usize,
            thread,
        });
    }

    /// Before the vCPU's VcpuFd goes: nobody touches its kvm_run after.
    pub fn unregister(&self) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Ends the thread's KVM_RUN under way, or its next one; nothing while
    /// it is not registered.
    pub fn kick(&self) {
        let guard = self.target.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = *guard {
            // SAFETY: the field lives while registered (the lock is held).
            unsafe { std::ptr::write_volatile(t.immediate_exit as *mut u8, 1) };
            // SAFETY: the thread is alive while registered; the kick signal
            // has a no-op handler (debug::install_kick_handler).
            unsafe { libc::pthread_kill(t.thread, crate::debug::KICK_SIGNAL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kick_raises_immediate_exit_only_while_registered() {
        crate::debug::install_kick_handler().expect("kick handler");
        let k = Kick::default();
        let mut field = 0u8;
        k.kick();
        assert_eq!(field, 0, "not registered yet");
        k.register(&mut field);
        k.kick();
        assert_eq!(unsafe { std::ptr::read_volatile(&field) }, 1);
        k.unregister();
        field = 0;
        k.kick();
        assert_eq!(field, 0, "an unregistered vCPU's kvm_run is not touched");
    }
}
