//! The replicated transaction.
//!
//! A `Txn` is what request preparation (`prep`) produces and what every member applies, in zxid
//! order, to its data tree. Preparation resolves everything that depends on state or on the
//! leader's clock (the sequence suffix, the new version, the stamped time, the ephemeral owner
//! encoding), so applying a txn is a pure, deterministic function of the tree.
//!
//! ZK compat: `TxnHeader` + `CreateTxn`/`DeleteTxn`/`SetDataTxn`/`SetACLTxn`/`CreateSessionTxn`/
//! `CloseSessionTxn`/`ErrorTxn`/`MultiTxn` of `zookeeper.jute`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::ids::{SessionId, Zxid};
use crate::wire::types::Acl;

/// One replicated transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Its position in the history.
    pub zxid: Zxid,
    /// The session that asked for it (0 for internal txns such as container reaping).
    pub session: SessionId,
    /// The client's xid of the request, for matching the reply.
    pub cxid: i32,
    /// Wall-clock ms of the leader when it prepared the txn; becomes ctime/mtime.
    pub time_ms: i64,
    /// What it does.
    pub op: TxnOp,
}

/// The operation of a txn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A new session. The password is chosen by the preparer so every member agrees on it.
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
        /// The 16-byte session password.
        password: [u8; 16],
    },
    /// Closes (or expires) `Txn::session`: deletes every ephemeral it owns, in path order.
    CloseSession,
    /// Creates a node. `path` is final (sequence suffix already appended).
    Create {
        /// Full path of the new node.
        path: String,
        /// Its data; `None` is ZooKeeper's null data.
        data: Option<Bytes>,
        /// Its ACL (already fixed up: `auth` ids expanded).
        acl: Vec<Acl>,
        /// Raw ephemeral owner: session id, `EPHEMERAL_CONTAINER`, or `TTL_MARKER | ttl`, or 0.
        ephemeral_owner: i64,
    },
    /// Deletes a node (also used for container and TTL reaping).
    Delete {
        /// Full path.
        path: String,
    },
    /// Replaces a node's data.
    SetData {
        /// Full path.
        path: String,
        /// New data.
        data: Option<Bytes>,
        /// The version after this change.
        version: i32,
    },
    /// Replaces a node's ACL.
    SetAcl {
        /// Full path.
        path: String,
        /// New ACL (fixed up).
        acl: Vec<Acl>,
        /// The aversion after this change.
        version: i32,
    },
    /// A version check inside a multi; changes nothing.
    Check {
        /// Full path.
        path: String,
    },
    /// An atomic group. On failure every element is `Error` (0 before the failing op, its
    /// code at it, `RuntimeInconsistency` after), as ZooKeeper records a failed multi.
    Multi(Vec<TxnOp>),
    /// A request that failed validation still takes a zxid. ZK compat: `ErrorTxn`.
    Error {
        /// The ZooKeeper error code.
        code: i32,
    },
}

/// `ephemeralOwner` of a container node. ZK compat: `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const EPHEMERAL_CONTAINER: i64 = i64::MIN;

/// Top byte marking a TTL node's `ephemeralOwner`; the low 40 bits hold the TTL in ms.
/// ZK compat: `EphemeralType.TTL` (extended types).
pub const TTL_MARKER: i64 = 0xFF00_0000_0000_0000_u64 as i64;

/// The largest TTL ZooKeeper accepts, 2^40 - 1 ms.
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// What kind of node a raw `ephemeral_owner` denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Plain persistent node.
    Persistent,
    /// Owned by a session.
    Ephemeral(SessionId),
    /// A container.
    Container,
    /// A TTL node with this TTL in ms.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes a raw `ephemeral_owner`.
    pub fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == EPHEMERAL_CONTAINER {
            NodeKind::Container
        } else if (owner as u64) >> 56 == 0xFF {
            NodeKind::Ttl(owner & TTL_MAX_MS)
        } else {
            NodeKind::Ephemeral(SessionId(owner))
        }
    }

    /// The `ephemeralOwner` a client sees: only session ephemerals report their owner.
    pub fn visible_owner(owner: i64) -> i64 {
        match NodeKind::from_owner(owner) {
            NodeKind::Ephemeral(session) => session.0,
            _ => 0,
        }
    }
}

impl Txn {
    /// Whether this txn changes the tree or the session table (an `Error` txn does not).
    pub fn is_error(&self) -> bool {
        matches!(self.op, TxnOp::Error { .. })
    }
}
