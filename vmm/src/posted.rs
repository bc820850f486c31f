//! File writes a program's processor sent without waiting for their
//! answers (`PORT_STORAGE_POST`): the storage component serves them in
//! the order sent, behind the program, as Linux writes a page cache back.
//! What is kept here is each request until it is answered, and then only
//! whether it succeeded; a failure is told to the monitor once
//! (`PORT_STORAGE_SETTLE`), which reports it at the file's next write,
//! fsync or close.
//!
//! A storage component that dies and is started again on its disk loses
//! the posted writes it had not served; the program was told they were
//! done. So, as an NFS client sends its unstable writes again to a server
//! that restarted, a posted write whose component's connection ended is
//! sent again, in order, until it is answered or the fabric timeout has
//! passed since it failed (then it is EIO). A write served twice leaves
//! the same bytes: each carries its absolute offset. Before any other call
//! to storage, the failed ones go again first ([`Posted::resend_failed`]),
//! so nothing asked later overtakes them. A component that is up but does
//! not answer within the timeout and is not at work (stopped) is not asked
//! again: that would make each of its calls wait twice.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fabric::{CallReply, Fabric, PendingCall};

/// EIO: the component did not answer, or answered with garbage.
const EIO: u32 = 5;

/// How long to wait before sending again to a component that is not
/// reachable yet (being started again).
const AGAIN_AFTER: Duration = Duration::from_millis(50);

#[derive(Default)]
pub struct Posted {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Not settled, oldest first.
    calls: VecDeque<Entry>,
    /// Failed and not told yet: (tag, errno).
    failed: VecDeque<(u64, u32)>,
}

struct Entry {
    tag: u64,
    /// The storage component and the request, to send again.
    id: u32,
    request: Vec<u8>,
    state: State,
    /// Until when it may be sent again (set at its first failure).
    deadline: Option<Instant>,
}

enum State {
    Sent(PendingCall),
    /// Answered, or failed to go out (`Err`).
    Done(CallReply),
}

impl Entry {
    /// Its reply if it has come (kept in the entry), without waiting.
    fn poll(&mut self) -> Option<&CallReply> {
        if let State::Sent(call) = &self.state {
            let reply = call.try_reply()?;
            self.state = State::Done(reply);
        }
        match &self.state {
            State::Done(reply) => Some(reply),
            State::Sent(_) => None,
        }
    }

    /// Whether it failed because its component's connection ended or
    /// could not be made (not a refusal, not a silence).
    fn lost(&mut self) -> bool {
        matches!(self.poll(), Some(Err(why)) if Fabric::is_unreachable(why))
    }

    /// Sends it again, waiting for the component to come back until the
    /// deadline (the fabric timeout after its first failure). False if it
    /// could not be sent by then: it failed for good.
    fn send_again(&mut self, fabric: &Arc<Fabric>) -> bool {
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + fabric.timeout());
        loop {
            match fabric.start_patient_call(self.id, &self.request) {
                Ok(call) => {
                    self.state = State::Sent(call);
                    return true;
                }
                Err(why) if Instant::now() + AGAIN_AFTER < deadline => {
                    log::debug!("a posted file write waits for component {}: {why}", self.id);
                    std::thread::sleep(AGAIN_AFTER);
                }
                Err(why) => {
                    self.state = State::Done(Err(why));
                    return false;
                }
            }
        }
    }

    /// Whether it may be sent again now.
    fn may_go_again(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }
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

    /// A call sent to component `id` (or not: then it is sent again as a
    /// failed one is).
    pub fn add(
        &self,
        fabric: &Arc<Fabric>,
        tag: u64,
        id: u32,
        request: Vec<u8>,
        call: Result<PendingCall, String>,
    ) {
        let mut e = Entry {
            tag,
            id,
            request,
            state: match call {
                Ok(c) => State::Sent(c),
                Err(why) => State::Done(Err(why)),
            },
            deadline: None,
        };
        if e.lost() && !e.send_again(fabric) {
            log::warn!("a posted file write was not sent: {}", why_of(&e));
        }
        self.lock().calls.push_back(e);
    }

    /// A call that could not be sent at all (no storage component): EIO.
    pub fn fail(&self, tag: u64) {
        self.lock().failed.push_back((tag, EIO));
    }

    /// Sends again, in order, the calls whose component's connection
    /// ended, before another call to storage goes out.
    pub fn resend_failed(&self, fabric: &Arc<Fabric>) {
        let mut inner = self.lock();
        for e in inner.calls.iter_mut() {
            if e.lost() && e.may_go_again() && !e.send_again(fabric) {
                log::warn!("a posted file write was not sent again: {}", why_of(e));
            }
        }
    }

    /// Waits until at most `keep` calls are unsettled (answers that came
    /// already are taken first, without waiting). A call whose component's
    /// connection ended is sent again (see the module's comment). Once one
    /// call finds the component silent (for the fabric timeout, and not at
    /// work), the ones behind it are not waited for again: they failed
    /// too.
    pub fn settle(&self, fabric: &Arc<Fabric>, keep: usize) {
        let mut silent = false;
        loop {
            let (tag, reply) = {
                let mut inner = self.lock();
                let over = inner.calls.len() > keep;
                let Some(mut e) = inner.calls.pop_front() else {
                    return;
                };
                if e.poll().is_none() {
                    if !over {
                        inner.calls.push_front(e);
                        return;
                    }
                    drop(inner);
                    let reply = match &e.state {
                        State::Sent(_) if silent => Err("the storage component is silent".into()),
                        State::Sent(call) => call.wait_ref(),
                        State::Done(_) => unreachable!("polled above"),
                    };
                    e.state = State::Done(reply);
                    inner = self.lock();
                }
                if !silent && e.lost() && e.may_go_again() && e.send_again(fabric) {
                    inner.calls.push_front(e);
                    continue;
                }
                let reply = match e.state {
                    State::Done(reply) => reply,
                    State::Sent(_) => unreachable!("answered above"),
                };
                (e.tag, reply)
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

    /// Unsettled calls.
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

fn why_of(e: &Entry) -> &str {
    match &e.state {
        State::Done(Err(why)) => why,
        _ => "",
    }
}
