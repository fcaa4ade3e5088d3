//! The data tree: znodes, Stat maintenance, ACL lists, ephemeral index, and txn apply.
//! OWNER: tree helper. Stub signatures only.

pub mod acl;
pub mod path;

use std::sync::Arc;

use bytes::Bytes;

use crate::core::ids::{SessionId, Zxid};
use crate::core::txn::Txn;
use crate::wire::types::{Acl, ErrorCode, EventType, Stat};

/// The persisted part of a node's Stat. `cversion` counts child *creations* (internal value);
/// the client sees `2 * cversion - num_children`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatPersisted {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Create time.
    pub ctime: i64,
    /// Last setData time.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child creations so far (drives sequence suffixes).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Raw owner (session id, container marker, TTL marker | ttl, or 0).
    pub ephemeral_owner: i64,
    /// zxid of the last child create/delete.
    pub pzxid: i64,
}

/// What preparation needs to know about a node (a cheap copy; the ACL is shared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Persisted stat.
    pub stat: StatPersisted,
    /// Current child count.
    pub num_children: i32,
    /// The node's ACL.
    pub acl: Arc<[Acl]>,
}

/// A change the tree made, for the watch manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEvent {
    /// NodeCreated, NodeDeleted, NodeDataChanged or NodeChildrenChanged.
    pub event_type: EventType,
    /// The node (for NodeChildrenChanged: the parent; the root is "/").
    pub path: String,
    /// ACL deciding delivery: the node's, or for NodeChildrenChanged the parent's.
    pub acl: Arc<[Acl]>,
}

/// What applying one (sub-)operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// A node was created.
    Created {
        /// Its path.
        path: String,
        /// Its Stat.
        stat: Stat,
    },
    /// A node was deleted.
    Deleted,
    /// Data was set; the Stat after.
    DataSet(Stat),
    /// ACL was set; the Stat after.
    AclSet(Stat),
    /// A check passed.
    Checked,
    /// A session was created.
    SessionCreated,
    /// A session was closed; the ephemerals it lost.
    SessionClosed,
    /// The txn (or sub-op) carried or met this error.
    Error(ErrorCode),
    /// Per-op outcomes of a multi.
    Multi(Vec<ApplyOutcome>),
}

/// The tree.
#[derive(Debug)]
pub struct DataTree {}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        todo!()
    }

    /// What preparation needs about `path`, if it exists.
    pub fn view(&self, _path: &str) -> Option<NodeView> {
        todo!()
    }

    /// The client-visible Stat of `path`.
    pub fn stat(&self, _path: &str) -> Option<Stat> {
        todo!()
    }

    /// Data and Stat of `path`.
    pub fn data(&self, _path: &str) -> Option<(Option<Bytes>, Stat)> {
        todo!()
    }

    /// ACL and Stat of `path`.
    pub fn acl(&self, _path: &str) -> Option<(Arc<[Acl]>, Stat)> {
        todo!()
    }

    /// Child names of `path` in sorted order.
    pub fn children(&self, _path: &str) -> Option<Vec<String>> {
        todo!()
    }

    /// Applies a txn; pushes the watch events it causes, in order.
    pub fn apply(&mut self, _txn: &Txn, _events: &mut Vec<TreeEvent>) -> ApplyOutcome {
        todo!()
    }

    /// The zxid of the last txn applied.
    pub fn zxid_applied(&self) -> Zxid {
        todo!()
    }

    /// Paths of the ephemerals `session` owns, sorted.
    pub fn ephemerals(&self, _session: SessionId) -> Vec<String> {
        todo!()
    }

    /// Number of descendants of `path` (all levels).
    pub fn descendant_count(&self, _path: &str) -> Option<i32> {
        todo!()
    }

    /// Number of nodes, root included.
    pub fn node_count(&self) -> usize {
        todo!()
    }
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// Why a snapshot of the tree could not be decoded. (stub)
#[derive(Debug, thiserror::Error)]
#[error("tree snapshot: {0}")]
pub struct SnapshotError(pub String);

#[allow(missing_docs)]
impl DataTree {
    pub fn ephemeral_count(&self) -> usize {
        todo!()
    }
    pub fn approximate_data_size(&self) -> u64 {
        todo!()
    }
    pub fn reap_candidates(&self, _now_wall_ms: i64, _never_used_ms: u64) -> Vec<String> {
        todo!()
    }
    pub fn encode_snapshot(&self) -> Vec<u8> {
        todo!()
    }
    pub fn decode_snapshot(_bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        todo!()
    }
    pub fn digest(&self) -> u64 {
        todo!()
    }
}
