//! The monitor's one lock, around the kernel's state, for every vCPU.
//!
//! A vCPU that finds it held spins a little, then waits in the VMM
//! (`PORT_LOCK_WAIT`) until the holder lets go (`PORT_LOCK_WAKE`): a
//! futex-style mutex (free, held, held with waiters). The holder often
//! keeps the lock across exits (a memory call is 30 to 150 us), and a
//! waiter that spun through them took the host core the call's answer
//! needed: on two vCPUs a shell loop of pipelines spent half its time
//! spinning here, and ran slower than on one vCPU.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use lego_image::cpu::{phys_of, rdtsc};
use lego_image::hypercall;
use lego_proto::program::{LOCK_CONTENDED, PORT_LOCK_WAIT, PORT_LOCK_WAKE};

const FREE: u32 = 0;
const HELD: u32 = 1;
/// How long a vCPU spins before it waits in the VMM, in TSC cycles: 10 us
/// (less than the exit a wait costs) once [`set_tsc_khz`] has been told
/// the rate; until then, 10 us at 2 GHz. Timed by the TSC because a
/// PAUSE's length varies tenfold between CPUs.
static SPIN_CYCLES: AtomicU64 = AtomicU64::new(20_000);
const SPIN_MICROS: u64 = 10;

/// The TSC's rate, for the spin's length.
pub fn set_tsc_khz(khz: u64) {
    if khz > 0 {
        SPIN_CYCLES.store(khz * SPIN_MICROS / 1000, Ordering::Relaxed);
    }
}

pub struct KernelLock<T> {
    state: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, which only the holder
// of the lock has.
unsafe impl<T: Send> Sync for KernelLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a KernelLock<T>,
}

impl<T> KernelLock<T> {
    pub const fn new(data: T) -> KernelLock<T> {
        KernelLock {
            state: AtomicU32::new(FREE),
            data: UnsafeCell::new(data),
        }
    }

    fn try_take(&self) -> bool {
        self.state
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub fn lock(&self) -> Guard<'_, T> {
        if self.try_take() {
            return Guard { lock: self };
        }
        let until = rdtsc().saturating_add(SPIN_CYCLES.load(Ordering::Relaxed));
        while rdtsc() < until {
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == FREE && self.try_take() {
                return Guard { lock: self };
            }
        }
        // Taken as contended from here on: whoever lets go next wakes the
        // waiters, some of which may find it taken again and wait anew.
        while self.state.swap(LOCK_CONTENDED, Ordering::Acquire) != FREE {
            hypercall::out(PORT_LOCK_WAIT, phys_of(&self.state) as u32);
        }
        Guard { lock: self }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the lock's holder.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.lock.state.swap(FREE, Ordering::Release) == LOCK_CONTENDED {
            hypercall::out(PORT_LOCK_WAKE, 0);
        }
    }
}
