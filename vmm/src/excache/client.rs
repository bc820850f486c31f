//! The processor's client of the memory service: page requests go to the
//! owner of the page's vRegion, learnt from the home's NOT_OWNER answers
//! and remembered, so each vRegion costs one redirect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::fabric::{CallReply, Fabric, PendingCall};

/// Why a page request got no page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("memory component {component} did not answer: {why}")]
    Unreachable { component: u32, why: String },
    #[error("memory component {component} answered with something that is not a memory reply")]
    BadReply { component: u32 },
    #[error("memory component {component} refused: {}", status_text(*.status))]
    Refused { component: u32, status: u32 },
    #[error("the owners of vRegion {vregion} kept redirecting (last: component {component})")]
    Redirects { component: u32, vregion: u64 },
}

/// What a memory status means, for sentences.
pub fn status_text(status: u32) -> String {
    match status {
        EFAULT => "the address is not mapped (EFAULT)".into(),
        EACCES => "the mapping does not allow this access (EACCES)".into(),
        ESRCH => "it does not know the process (ESRCH)".into(),
        ENOMEM => "out of memory (ENOMEM)".into(),
        OUT_OF_FRAMES => "it has no free page frame left".into(),
        BAD_REQUEST => "the request was malformed".into(),
        s => format!("status {s}"),
    }
}

fn parse(dst: u32, reply: CallReply) -> Result<(MemReply, Vec<u8>), PageError> {
    let body = reply.map_err(|why| PageError::Unreachable {
        component: dst,
        why,
    })?;
    let (head, rest) =
        MemReply::read_from_prefix(&body).map_err(|_| PageError::BadReply { component: dst })?;
    Ok((head, rest.to_vec()))
}

/// Whether the reply to a request sent without waiting says OK.
pub fn check_reply(dst: u32, reply: CallReply) -> Result<(), PageError> {
    match parse(dst, reply)? {
        (r, _) if r.status == OK => Ok(()),
        (r, _) => Err(PageError::Refused {
            component: dst,
            status: r.status,
        }),
    }
}

/// The per-page statuses of an OP_WRITE_MANY of `n` pages.
pub fn statuses(dst: u32, reply: CallReply, n: usize) -> Result<Vec<u32>, PageError> {
    let (head, rest) = parse(dst, reply)?;
    if head.status != OK {
        return Err(PageError::Refused {
            component: dst,
            status: head.status,
        });
    }
    let bytes = rest
        .get(..n * 4)
        .ok_or(PageError::BadReply { component: dst })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Shared by the ExCache's handler threads: what it learnt about owners
/// sits behind its own lock, never held across a round trip.
pub struct MemoryClient {
    fabric: Arc<Fabric>,
    owners: Mutex<HashMap<(u32, u64), u32>>,
    pub redirects: AtomicU64,
}

impl MemoryClient {
    pub fn new(fabric: Arc<Fabric>) -> MemoryClient {
        MemoryClient {
            fabric,
            owners: Mutex::new(HashMap::new()),
            redirects: AtomicU64::new(0),
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u64), u32>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The component that holds pid's page at `addr`, as far as we know.
    pub fn owner(&self, pid: u32, home: u32, addr: u64) -> u32 {
        self.owners()
            .get(&(pid, vregion(addr)))
            .copied()
            .unwrap_or(home)
    }

    /// Forgets what it learnt about pid (it exited).
    pub fn forget(&self, pid: u32) {
        self.owners().retain(|(p, _), _| *p != pid);
    }

    /// One request to `dst`: the reply head and what follows it.
    fn once(&self, dst: u32, request: &[u8]) -> Result<(MemReply, Vec<u8>), PageError> {
        parse(dst, self.fabric.call(dst, request))
    }

    /// A request that is not about one page (a memory call) to `dst`: the
    /// reply head, whatever its status, and what follows it.
    pub fn call(&self, dst: u32, request: &[u8]) -> Result<(MemReply, Vec<u8>), PageError> {
        self.once(dst, request)
    }

    /// Sends a page request to `dst` without waiting (no redirects).
    pub fn start(
        &self,
        dst: u32,
        req: MemRequest,
        page: Option<&[u8]>,
    ) -> Result<PendingCall, PageError> {
        let mut bytes = req.as_bytes().to_vec();
        if let Some(p) = page {
            bytes.extend_from_slice(p);
        }
        self.fabric
            .start_call(dst, &bytes)
            .map_err(|why| PageError::Unreachable {
                component: dst,
                why,
            })
    }

    /// The answer to a page request already sent to `dst` with
    /// [`Self::start`], redirects followed as [`Self::request`] follows them.
    pub fn finish(
        &self,
        home: u32,
        req: MemRequest,
        dst: u32,
        reply: CallReply,
    ) -> Result<(u32, MemReply, Vec<u8>), PageError> {
        self.follow(home, req, req.as_bytes(), dst, reply)
    }

    /// A page request for pid, following redirects; `page` follows the
    /// request. On success: the component that answered and what followed
    /// the reply head.
    pub fn request(
        &self,
        home: u32,
        req: MemRequest,
        page: Option<&[u8]>,
    ) -> Result<(u32, MemReply, Vec<u8>), PageError> {
        let mut bytes = req.as_bytes().to_vec();
        if let Some(p) = page {
            bytes.extend_from_slice(p);
        }
        let dst = self.owner(req.pid, home, req.addr);
        let reply = self.fabric.call(dst, &bytes);
        self.follow(home, req, &bytes, dst, reply)
    }

    /// Takes `reply` (to `bytes`, sent to `dst`) and, while it redirects,
    /// asks again where it points.
    fn follow(
        &self,
        home: u32,
        req: MemRequest,
        bytes: &[u8],
        mut dst: u32,
        mut reply: CallReply,
    ) -> Result<(u32, MemReply, Vec<u8>), PageError> {
        let region = vregion(req.addr);
        for _ in 0..4 {
            let (head, rest) = parse(dst, reply)?;
            match head.status {
                OK => return Ok((dst, head, rest)),
                NOT_OWNER => {
                    self.redirects.fetch_add(1, Ordering::Relaxed);
                    dst = head.value as u32;
                    self.owners().insert((req.pid, region), dst);
                }
                // A remembered owner that no longer holds the vRegion (it
                // was emptied and handed to another): ask the home again.
                EFAULT | ESRCH if dst != home && self.owners().contains_key(&(req.pid, region)) => {
                    self.owners().remove(&(req.pid, region));
                    dst = home;
                }
                status => {
                    return Err(PageError::Refused {
                        component: dst,
                        status,
                    })
                }
            }
            reply = self.fabric.call(dst, bytes);
        }
        Err(PageError::Redirects {
            component: dst,
            vregion: region,
        })
    }
}
