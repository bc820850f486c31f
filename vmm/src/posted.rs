//! File writes a program's processor sent without waiting for their
//! answers (`PORT_STORAGE_POST`): the storage component serves them in
//! the order sent, behind the program, as Linux writes a page cache back.
//! What is kept here is only whether each succeeded; a failure is told to
//! the monitor once (`PORT_STORAGE_SETTLE`), which reports it at the
//! file's next write, fsync or close.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::fabric::{CallReply, PendingCall};

/// EIO: the component did not answer, or answered with garbage.
const EIO: u32 = 5;

#[derive(Default)]
pub struct Posted {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Unanswered, oldest first: (tag, the call).
    calls: VecDeque<(u64, PendingCall)>,
    /// Failed and not told yet: (tag, errno).
    failed: VecDeque<(u64, u32)>,
}

/// The errno a posted write's answer means (0: it was written).
fn outcome(reply: &CallReply) -> u32 {
    match reply {
        Ok(bytes) => match lego_proto::storage::decode_reply(bytes) {
            Ok((head, _)) if head.errno == 0 => 0,
            Ok((head, _)) => u32::try_from(head.errno).unwrap_or(EIO).max(1),
            Err(_) => EIO,
        },
        Err(_) => EIO,
    }
}

impl Posted {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call sent (or not: then it failed at once).
    pub fn add(&self, tag: u64, call: Result<PendingCall, String>) {
        let mut inner = self.lock();
        match call {
            Ok(c) => inner.calls.push_back((tag, c)),
            Err(why) => {
                log::warn!("a posted file write was not sent: {why}");
                inner.failed.push_back((tag, EIO));
            }
        }
    }

    /// Waits until at most `keep` calls are unanswered (answers that came
    /// already are taken first, without waiting). Once one call finds the
    /// component silent for the fabric timeout, the ones behind it are not
    /// waited for again: they failed too.
    pub fn settle(&self, keep: usize) {
        let mut silent = false;
        loop {
            let (tag, reply) = {
                let mut inner = self.lock();
                let over = inner.calls.len() > keep;
                let Some((tag, call)) = inner.calls.pop_front() else {
                    return;
                };
                match call.try_reply() {
                    Some(reply) => (tag, reply),
                    None if !over => {
                        inner.calls.push_front((tag, call));
                        return;
                    }
                    None => {
                        drop(inner);
                        let reply = if silent {
                            Err("the storage component is silent".into())
                        } else {
                            call.wait_ref()
                        };
                        (tag, reply)
                    }
                }
            };
            if let Err(why) = &reply {
                if !silent {
                    log::warn!("a posted file write was not answered: {why}");
                }
                silent = true;
            }
            let errno = outcome(&reply);
            if errno != 0 {
                self.lock().failed.push_back((tag, errno));
            }
        }
    }

    /// Unanswered calls.
    pub fn pending(&self) -> u32 {
        self.lock().calls.len() as u32
    }

    /// Failures not told yet.
    pub fn failures(&self) -> u32 {
        self.lock().failed.len() as u32
    }

    /// The oldest failure not told yet: (tag, errno), told now.
    pub fn take_failure(&self) -> Option<(u64, u32)> {
        self.lock().failed.pop_front()
    }
}
