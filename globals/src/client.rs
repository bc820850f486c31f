//! Talking to the global managers, as a component or as the tool: one
//! connection, typed requests, and the managers' error sentences as
//! [`ClientError::Refused`].

use lego_control::{Component, GlobalsReply, GlobalsRequest, Load, Resources, Role, VNode};

use crate::conn::{Conn, ConnError};

/// Why a request to the managers or a processor did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{who} does not answer ({source}); it may have just gone down (`lego status` shows the rack)")]
    Unreachable { who: String, source: ConnError },
    /// The other side's sentence saying what is wrong.
    #[error("{0}")]
    Refused(String),
    #[error("{peer} answered {what}, which does not answer that request")]
    Unexpected { peer: String, what: String },
    /// A file on this host could not be read or written.
    #[error("{0}")]
    Local(std::io::Error),
}

/// Where a run goes (or a vNode's files are reached through).
#[derive(Debug, Clone)]
pub struct Placement {
    pub processor: Component,
    /// The memory component homing the process (0 from `Locate` when none
    /// is up).
    pub home: u32,
    pub vnode: VNode,
}

/// A connection to `lego-globals`.
pub struct Globals {
    conn: Conn,
}

impl Globals {
    pub fn connect(addr: &str) -> Result<Globals, ConnError> {
        Ok(Globals {
            conn: Conn::connect(addr)?,
        })
    }

    pub fn addr(&self) -> &str {
        self.conn.peer()
    }

    /// One request; the managers' `Error` becomes [`ClientError::Refused`].
    pub fn request(&mut self, req: &GlobalsRequest) -> Result<GlobalsReply, ClientError> {
        match self.conn.request(req)? {
            GlobalsReply::Error(sentence) => Err(ClientError::Refused(sentence)),
            reply => Ok(reply),
        }
    }

    /// Registers a component; its id and every component known.
    pub fn register(
        &mut self,
        id: u32,
        role: Role,
        fabric: &str,
        control: Option<&str>,
        resources: Resources,
        host_pid: u32,
    ) -> Result<(u32, Vec<Component>), ClientError> {
        let req = GlobalsRequest::Register {
            id,
            role,
            fabric: fabric.to_string(),
            control: control.map(str::to_string),
            resources,
            host_pid,
        };
        match self.request(&req)? {
            GlobalsReply::Registered { id, peers } => Ok((id, peers)),
            other => Err(self.unexpected(&other)),
        }
    }

    pub fn heartbeat(&mut self, id: u32, load: Load) -> Result<(), ClientError> {
        match self.request(&GlobalsRequest::Heartbeat { id, load })? {
            GlobalsReply::Peers { .. } | GlobalsReply::Grants { .. } => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    pub fn status(&mut self) -> Result<(Vec<Component>, Vec<VNode>), ClientError> {
        match self.request(&GlobalsRequest::Status)? {
            GlobalsReply::Status { components, vnodes } => Ok((components, vnodes)),
            other => Err(self.unexpected(&other)),
        }
    }

    pub fn place_run(&mut self, vnode: &str) -> Result<Placement, ClientError> {
        let req = GlobalsRequest::PlaceRun {
            vnode: vnode.to_string(),
        };
        self.placed(&req)
    }

    pub fn locate(&mut self, vnode: &str) -> Result<Placement, ClientError> {
        let req = GlobalsRequest::Locate {
            vnode: vnode.to_string(),
        };
        self.placed(&req)
    }

    fn placed(&mut self, req: &GlobalsRequest) -> Result<Placement, ClientError> {
        match self.request(req)? {
            GlobalsReply::Placed {
                processor,
                home,
                vnode,
            } => Ok(Placement {
                processor,
                home,
                vnode,
            }),
            other => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, reply: &GlobalsReply) -> ClientError {
        ClientError::Unexpected {
            peer: format!("the global managers at {}", self.conn.peer()),
            what: reply_name(reply).to_string(),
        }
    }
}

fn reply_name(r: &GlobalsReply) -> &'static str {
    match r {
        GlobalsReply::Registered { .. } => "Registered",
        GlobalsReply::Peers { .. } => "Peers",
        GlobalsReply::Status { .. } => "Status",
        GlobalsReply::Placed { .. } => "Placed",
        GlobalsReply::Error(_) => "Error",
        GlobalsReply::Grants { .. } => "Grants",
    }
}
