//! The replicated transaction.
//!
//! A `Txn` is what request preparation (`prep`) produces and what every member applies, in zxid
//! order, to its data tree. Preparation resolves everything that depends on state or on the
//! leader's clock (the sequence suffix, the new version, the stamped time, the ephemeral owner
//! encoding), so applying a txn is a pure, deterministic function of the tree.
//!
//! ZK compat: `TxnHeader` + `CreateTxn`/`DeleteTxn`/`SetDataTxn`/`SetACLTxn`/`CreateSessionTxn`/
//! `CloseSessionTxn`/`ErrorTxn`/`MultiTxn` of `zookeeper.jute`.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use crate::core::ids::{SessionId, Zxid};
use crate::wire::types::Acl;

/// A fixed-up ACL list as a txn carries it. Shared, not copied: a txn is cloned several times
/// between preparation and apply, and each `Vec<Acl>` copy cost an allocation per
/// id string. Serialised exactly as a `Vec<Acl>` (serde's `rc` feature), so logs, snapshots
/// and peer messages keep their bytes.
pub type AclList = Arc<[Acl]>;

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
        acl: AclList,
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
        acl: AclList,
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
    /// Never nested: decoding rejects a multi inside a multi (see [`SubOp`]).
    Multi(#[serde(deserialize_with = "deserialize_sub_ops")] Vec<TxnOp>),
    /// A request that failed validation still takes a zxid. ZK compat: `ErrorTxn`.
    Error {
        /// The ZooKeeper error code.
        code: i32,
    },
}

/// Decodes the elements of a multi as [`SubOp`]s, which cannot hold another multi.
fn deserialize_sub_ops<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<TxnOp>, D::Error> {
    let ops = Vec::<SubOp>::deserialize(deserializer)?;
    Ok(ops.into_iter().map(TxnOp::from).collect())
}

/// What a multi may hold, for decoding only: `TxnOp` variant for variant, in the same order
/// (bincode identifies a variant by its index), except that `Multi` rejects its contents.
///
/// ZooKeeper's `MultiTxn` holds plain txns, and `prep` never nests a multi, but the derived
/// decoder of a recursive enum recurses once per level, and bincode has no depth limit: a log
/// record or peer message of a few tens of KiB nesting `Multi` thousands deep would overflow
/// the stack (the process aborts, it cannot be caught). Refusing the second level bounds the
/// recursion at two.
#[derive(Deserialize)]
#[serde(rename = "TxnOp")]
enum SubOp {
    CreateSession { timeout_ms: i32, password: [u8; 16] },
    CloseSession,
    Create { path: String, data: Option<Bytes>, acl: AclList, ephemeral_owner: i64 },
    Delete { path: String },
    SetData { path: String, data: Option<Bytes>, version: i32 },
    SetAcl { path: String, acl: AclList, version: i32 },
    Check { path: String },
    Multi(NestedMulti),
    Error { code: i32 },
}

/// The contents of a multi inside a multi: never accepted.
enum NestedMulti {}

impl<'de> Deserialize<'de> for NestedMulti {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("a multi cannot contain a multi"))
    }
}

impl From<SubOp> for TxnOp {
    fn from(op: SubOp) -> TxnOp {
        match op {
            SubOp::CreateSession { timeout_ms, password } => {
                TxnOp::CreateSession { timeout_ms, password }
            }
            SubOp::CloseSession => TxnOp::CloseSession,
            SubOp::Create { path, data, acl, ephemeral_owner } => {
                TxnOp::Create { path, data, acl, ephemeral_owner }
            }
            SubOp::Delete { path } => TxnOp::Delete { path },
            SubOp::SetData { path, data, version } => TxnOp::SetData { path, data, version },
            SubOp::SetAcl { path, acl, version } => TxnOp::SetAcl { path, acl, version },
            SubOp::Check { path } => TxnOp::Check { path },
            SubOp::Multi(never) => match never {},
            SubOp::Error { code } => TxnOp::Error { code },
        }
    }
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

#[cfg(test)]
mod tests {
    use bincode::Options as _;

    use super::*;
    use crate::wire::types::Id;

    fn options() -> impl bincode::Options {
        bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes()
    }

    /// One op of every kind but `Multi`. The match makes adding a `TxnOp` variant a compile
    /// error here, as a reminder to add it to `SubOp` too.
    fn every_leaf_op() -> Vec<TxnOp> {
        let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        let ops = vec![
            TxnOp::CreateSession { timeout_ms: 30_000, password: [7; 16] },
            TxnOp::CloseSession,
            TxnOp::Create {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"x")),
                acl: acl.clone().into(),
                ephemeral_owner: TTL_MARKER | 5,
            },
            TxnOp::Delete { path: "/b".into() },
            TxnOp::SetData { path: "/c".into(), data: None, version: 3 },
            TxnOp::SetAcl { path: "/d".into(), acl: acl.into(), version: 4 },
            TxnOp::Check { path: "/e".into() },
            TxnOp::Error { code: -101 },
        ];
        for op in &ops {
            match op {
                TxnOp::CreateSession { .. }
                | TxnOp::CloseSession
                | TxnOp::Create { .. }
                | TxnOp::Delete { .. }
                | TxnOp::SetData { .. }
                | TxnOp::SetAcl { .. }
                | TxnOp::Check { .. }
                | TxnOp::Error { .. } => {}
                TxnOp::Multi(_) => unreachable!("leaf ops only"),
            }
        }
        ops
    }

    #[test]
    fn every_op_round_trips_alone_and_inside_a_multi() {
        let leaves = every_leaf_op();
        let mut ops = leaves.clone();
        ops.push(TxnOp::Multi(leaves));
        ops.push(TxnOp::Multi(Vec::new()));
        for op in ops {
            let bytes = options().serialize(&op).expect("serializes");
            let decoded: TxnOp = options().deserialize(&bytes).expect("decodes");
            assert_eq!(decoded, op);
        }
    }

    #[test]
    fn a_multi_inside_a_multi_is_rejected() {
        for inner in [Vec::new(), vec![TxnOp::CloseSession]] {
            let nested = TxnOp::Multi(vec![TxnOp::CloseSession, TxnOp::Multi(inner)]);
            let bytes = options().serialize(&nested).expect("serializes");
            let error = options().deserialize::<TxnOp>(&bytes).expect_err("nested multi");
            assert!(error.to_string().contains("a multi cannot contain a multi"), "{error}");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_at_the_second_level() {
        // Multi (tag 7) holding one Multi, 10k levels deep: would overflow the stack if the
        // decoder recursed, and must fail after reading only the first two levels.
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            bytes.extend_from_slice(&7u32.to_le_bytes());
            bytes.extend_from_slice(&1u64.to_le_bytes());
        }
        assert!(options().deserialize::<TxnOp>(&bytes).is_err());
    }
}
