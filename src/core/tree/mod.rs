//! The data tree: znodes, Stat maintenance, ACL lists, the ephemeral index, and txn apply.
//!
//! ZK compat: `DataTree` (createNode, deleteNode, setData, setACL, processTxn, killSession,
//! getAllChildrenNumber, approximateDataSize), `DataNode`, `ContainerManager.getCandidates`
//! and the getEphemerals branch of `FinalRequestProcessor` (protocol reference §4.3, §5).
//!
//! Storage (`store`): every node is a slot in copy-on-write pages, found through a path index,
//! with per-parent child lists; [`DataTree::image`] shares the pages with a snapshot in
//! O(pages), so the node never stops to copy or encode the tree. Listings sort child names
//! when asked; ephemerals and reaping walk sorted indexes, so outputs never depend on hash
//! order or slot layout. Indexes by owner (session ephemerals, containers, TTL nodes) are kept
//! beside the table and rebuilt when a snapshot is loaded.
//!
//! Invariants (checked by [`DataTree::check_invariants`]):
//! - the store's own bookkeeping holds (slots, free list, index, child lists, arenas: `store`);
//! - every node but `/` has its parent in the table, and the parent lists its name;
//! - every listed child exists; session ephemerals have no children;
//! - the owner indexes hold exactly the nodes of each kind;
//! - `data_size` and `digest` equal a recomputation from scratch.
//!
//! Applying a txn is deterministic and never panics on an inconsistent txn: a txn that does not
//! fit the tree (missing parent, existing node, ...) is reported as `ApplyOutcome::Error` and
//! changes nothing. ZK compat: like `DataTree.processTxn`, the sub-ops of a multi are applied one
//! by one, so an inconsistent sub-op (which preparation never produces) does not undo earlier ones.
//!
//! Memory (64-bit, measured by `tests/tree_memory.rs`): a 96-byte slot per node, one
//! allocation for its path and data, about 10 bytes of index and 8 of child list.

pub mod acl;
mod node;
pub mod path;
mod snapshot;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use self::node::{client_stat, len_i32, AclTable};
use self::path::{is_builtin, name, parent, validate_path, CONFIG, QUOTA, ROOT, ZOOKEEPER};
pub use self::snapshot::{ImageEncoder, SnapshotError, TreeImage};
use self::store::{Node, Slot, Store};
use crate::core::ids::{SessionId, Zxid};
use crate::core::txn::{NodeKind, Txn, TxnOp};
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
pub struct DataTree {
    /// Every node.
    nodes: Store,
    /// Shared ACL lists.
    acl_cache: AclTable,
    /// Session ephemerals by owner. No empty sets.
    ephemerals: BTreeMap<SessionId, BTreeSet<Box<str>>>,
    /// Container nodes.
    containers: BTreeSet<Box<str>>,
    /// TTL nodes.
    ttls: BTreeSet<Box<str>>,
    /// Highest zxid applied (Error txns included).
    zxid_applied: Zxid,
    /// Sum over nodes of path length (Java chars) + data length. ZK compat: `nodeDataSize`.
    data_size: i64,
    /// Wrapping sum of every node's digest term.
    digest: u64,
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    ///
    /// ZK compat: the `DataTree` constructor and `addConfigNode`: every stat field is zero,
    /// data is empty (not null), the ACL is `world:anyone` ALL except `/zookeeper/config`, which
    /// gets READ only through a `setACL(..., -1)` and so reports `aversion = -1`. The children
    /// are attached without counting creations, so `/` reports cversion -1 and `/zookeeper` -2.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty();
        let open = Acl::open_unsafe();
        tree.insert_builtin(ROOT, &open, 0);
        tree.insert_builtin(ZOOKEEPER, &open, 0);
        tree.insert_builtin(QUOTA, &open, 0);
        tree.insert_builtin(CONFIG, &Acl::read_unsafe(), -1);
        tree
    }

    /// What preparation needs about `path`, if it exists.
    pub fn view(&self, path: &str) -> Option<NodeView> {
        let id = self.nodes.find(path)?;
        let slot = self.nodes.slot(id);
        Some(NodeView {
            stat: slot.stat,
            num_children: len_i32(self.nodes.child_count(id)),
            acl: Arc::clone(self.acl_cache.get(slot.acl)),
        })
    }

    /// The client-visible Stat of `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.find(path).map(|id| self.client_stat(id))
    }

    /// Data and Stat of `path` (the data copied out of the tree).
    pub fn data(&self, path: &str) -> Option<(Option<Bytes>, Stat)> {
        let id = self.nodes.find(path)?;
        let data = self.nodes.node(id).data().map(Bytes::copy_from_slice);
        Some((data, self.client_stat(id)))
    }

    /// ACL and Stat of `path`.
    pub fn acl(&self, path: &str) -> Option<(Arc<[Acl]>, Stat)> {
        let id = self.nodes.find(path)?;
        let acl = Arc::clone(self.acl_cache.get(self.nodes.slot(id).acl));
        Some((acl, self.client_stat(id)))
    }

    /// Child names of `path` in sorted order.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        Some(self.child_names(self.nodes.find(path)?))
    }

    /// Child names (sorted) and Stat of `path`, with one lookup (getChildren2).
    pub fn children_and_stat(&self, path: &str) -> Option<(Vec<String>, Stat)> {
        let id = self.nodes.find(path)?;
        Some((self.child_names(id), self.client_stat(id)))
    }

    /// Whether `path` exists.
    pub fn contains(&self, path: &str) -> bool {
        self.nodes.find(path).is_some()
    }

    /// A shared, immutable image of the tree as it is now, for a snapshot: O(pages), and the
    /// tree copies a page only when it next changes one the image still holds.
    pub fn image(&self) -> TreeImage {
        let (pages, acls) = (self.nodes.pages(), self.acl_cache.lists());
        TreeImage::new(pages, acls, self.nodes.len(), self.zxid_applied, self.digest)
    }

    fn client_stat(&self, id: u32) -> Stat {
        let slot = self.nodes.slot(id);
        client_stat(&slot.stat, len_i32(slot.data_len()), len_i32(self.nodes.child_count(id)))
    }

    /// Sorted child names of slot `id`.
    fn child_names(&self, id: u32) -> Vec<String> {
        let mut names: Vec<String> = self
            .nodes
            .children(id)
            .iter()
            .map(|&child| name(self.nodes.node(child).path()).to_string())
            .collect();
        names.sort_unstable();
        names
    }

    /// Applies a txn; pushes the watch events it causes, in order.
    ///
    /// Events: create → NodeCreated(path), NodeChildrenChanged(parent); delete (also each
    /// ephemeral of a closed session) → NodeDeleted(path), NodeChildrenChanged(parent); setData →
    /// NodeDataChanged(path); setACL, check, session txns and errors → none.
    pub fn apply(&mut self, txn: &Txn, events: &mut Vec<TreeEvent>) -> ApplyOutcome {
        let outcome = match &txn.op {
            TxnOp::Multi(ops) => ApplyOutcome::Multi(
                ops.iter().map(|op| self.apply_sub_op(txn, op, events)).collect(),
            ),
            op => self.apply_op(txn, op, events),
        };
        self.zxid_applied = self.zxid_applied.max(txn.zxid);
        outcome
    }

    /// The zxid of the last txn applied.
    pub fn zxid_applied(&self) -> Zxid {
        self.zxid_applied
    }

    /// Paths of the ephemerals `session` owns, sorted.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|paths| paths.iter().map(|path| path.to_string()).collect())
            .unwrap_or_default()
    }

    /// getEphemerals: the ephemerals `session` owns whose path starts with `prefix` (a plain
    /// string prefix), sorted; an empty, blank or `/` prefix returns all of them.
    /// ZK compat: `FinalRequestProcessor` (Java `trim()` strips characters up to U+0020).
    pub fn ephemerals_with_prefix(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let trimmed = prefix.trim_matches(|c: char| c <= ' ');
        let Some(paths) = self.ephemerals.get(&session) else {
            return Vec::new();
        };
        let all = trimmed.is_empty() || trimmed == ROOT;
        paths
            .iter()
            .filter(|path| all || path.starts_with(prefix))
            .map(|path| path.to_string())
            .collect()
    }

    /// Sessions owning at least one ephemeral, sorted.
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        self.ephemerals.keys().copied().collect()
    }

    /// Number of session ephemerals (`zk_ephemerals_count`).
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Number of descendants of `path` (all levels). For `/` this is every node but the root
    /// (the `/zookeeper` subtree included). ZK compat: `getAllChildrenNumber`.
    pub fn descendant_count(&self, path: &str) -> Option<i32> {
        let id = self.nodes.find(path)?;
        if path == ROOT {
            return Some(len_i32(self.nodes.len() - 1));
        }
        let mut count = 0usize;
        let mut pending: Vec<u32> = self.nodes.children(id).to_vec();
        while let Some(current) = pending.pop() {
            count += 1;
            pending.extend_from_slice(self.nodes.children(current));
        }
        Some(len_i32(count))
    }

    /// Number of nodes, root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `zk_approximate_data_size`: the sum over nodes of path length plus data length.
    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// Number of distinct ACL lists in use (ZK's `aclCacheSize`).
    pub fn acl_list_count(&self) -> usize {
        self.acl_cache.len()
    }

    /// Nodes the leader should delete now, sorted: containers without children that ever had
    /// one (internal cversion > 0), or that never had one and whose mtime is more than
    /// `never_used_ms` old (0 = never); TTL nodes without children whose mtime is more than
    /// their TTL old. ZK compat: `ContainerManager.getCandidates`.
    pub fn reap_candidates(&self, now_wall_ms: i64, never_used_ms: u64) -> Vec<String> {
        let never_used_ms = i64::try_from(never_used_ms).unwrap_or(i64::MAX);
        let elapsed = |slot: &Slot| now_wall_ms.saturating_sub(slot.stat.mtime);
        let leaf = |id: u32| self.nodes.child_count(id) == 0;
        let mut candidates = Vec::new();
        for path in &self.containers {
            let Some(id) = self.nodes.find(path) else {
                continue;
            };
            let node = self.nodes.slot(id);
            let used = node.stat.cversion > 0;
            let expired = never_used_ms != 0 && elapsed(node) > never_used_ms;
            if leaf(id) && (used || expired) {
                candidates.push(path.to_string());
            }
        }
        for path in &self.ttls {
            let Some(id) = self.nodes.find(path) else {
                continue;
            };
            let node = self.nodes.slot(id);
            if let NodeKind::Ttl(ttl) = NodeKind::from_owner(node.stat.ephemeral_owner) {
                if leaf(id) && ttl != 0 && elapsed(node) > ttl {
                    candidates.push(path.to_string());
                }
            }
        }
        candidates.sort_unstable();
        candidates
    }

    /// A deterministic 64-bit hash of the whole tree (paths, data, persisted stats, ACLs), kept
    /// up to date on every change. Replicas that applied the same txns have equal digests.
    ///
    /// ZK compat: like `DigestCalculator`, `/zookeeper/config` is left out, because each server
    /// writes its own configuration there outside any txn.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Stores the ensemble configuration in `/zookeeper/config` locally (not through a txn):
    /// data, version -1, mzxid = the config version, mtime = now. ZK compat:
    /// `ZKDatabase.initConfigInZKDatabase`. The node is outside the digest.
    pub fn set_config_local(&mut self, data: Bytes, config_version: i64, now_wall_ms: i64) {
        let id = self.nodes.find(CONFIG).expect("/zookeeper/config is built in");
        self.data_size += data.len() as i64 - self.nodes.slot(id).data_len() as i64;
        self.nodes.set_data(id, Some(&data));
        let node = self.nodes.slot_mut(id);
        node.stat.version = -1;
        node.stat.mzxid = config_version;
        node.stat.mtime = now_wall_ms;
    }

    /// Asserts every invariant listed in the module docs. O(n): for tests, the simulator and
    /// debug builds.
    pub fn check_invariants(&self) {
        self.nodes.check();
        let mut data_size = 0i64;
        let mut digest = 0u64;
        let mut ephemerals: BTreeMap<SessionId, BTreeSet<&str>> = BTreeMap::new();
        let (mut containers, mut ttls) = (BTreeSet::new(), BTreeSet::new());
        let mut count = 0;
        let mut acl_refs: BTreeMap<u32, u32> = BTreeMap::new();
        for (id, node) in self.nodes.live_nodes() {
            count += 1;
            let path = node.path();
            assert_eq!(self.nodes.find(path), Some(id), "{path} is indexed");
            data_size += path_len(path) + node.slot.data_len() as i64;
            digest = digest.wrapping_add(self.digest_term(node));
            *acl_refs.entry(node.slot.acl).or_default() += 1;
            let node = node.slot;
            if path != ROOT {
                let up = self.nodes.find(parent(path));
                assert_eq!(up, Some(node.parent), "{path} has its parent's slot");
                let listed = up.is_some_and(|up| self.nodes.children(up).contains(&id));
                assert!(listed, "{path} is not listed by its parent");
            }
            for &child in self.nodes.children(id) {
                let child = self.nodes.slot(child);
                assert!(child.is_live() && child.parent == id, "a child of {path} is stale");
            }
            match NodeKind::from_owner(node.stat.ephemeral_owner) {
                NodeKind::Ephemeral(session) => {
                    assert_eq!(self.nodes.child_count(id), 0, "ephemeral {path} has children");
                    ephemerals.entry(session).or_default().insert(path);
                }
                NodeKind::Container => _ = containers.insert(path),
                NodeKind::Ttl(_) => _ = ttls.insert(path),
                NodeKind::Persistent => {}
            }
        }
        assert_eq!(count, self.nodes.len(), "live count");
        for (&number, &refs) in &acl_refs {
            assert_eq!(self.acl_cache.refs(number), refs, "ACL list {number} reference count");
        }
        assert_eq!(self.acl_cache.len(), acl_refs.len(), "ACL lists in use");
        let index: BTreeMap<SessionId, BTreeSet<&str>> = self
            .ephemerals
            .iter()
            .map(|(session, paths)| (*session, paths.iter().map(|p| &**p).collect()))
            .collect();
        assert_eq!(index, ephemerals, "ephemeral index");
        assert!(self.containers.iter().map(|p| &**p).eq(containers), "container index");
        assert!(self.ttls.iter().map(|p| &**p).eq(ttls), "ttl index");
        assert_eq!(self.data_size, data_size, "approximate data size");
        assert_eq!(self.digest, digest, "digest");
        for builtin in [ROOT, ZOOKEEPER, QUOTA, CONFIG] {
            assert!(self.contains(builtin), "{builtin} missing");
        }
    }

    /// A table with no nodes at all (snapshot decoding starts here).
    fn empty() -> DataTree {
        DataTree {
            nodes: Store::new(),
            acl_cache: AclTable::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            zxid_applied: Zxid::ZERO,
            data_size: 0,
            digest: 0,
        }
    }

    fn insert_builtin(&mut self, path: &str, acl: &[Acl], aversion: i32) {
        let stat = StatPersisted { aversion, ..StatPersisted::default() };
        let acl = self.acl_cache.intern(acl);
        let id = self.insert_node(path, Some(&[]), stat, acl);
        if path != ROOT {
            let up = self.nodes.find(parent(path)).expect("built-ins are added parent first");
            self.nodes.attach(id, up);
        }
    }

    /// Adds a node to the table and to the size, digest and owner indexes (not to its parent),
    /// and returns its slot.
    fn insert_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        stat: StatPersisted,
        acl: u32,
    ) -> u32 {
        self.data_size += path_len(path) + data.map_or(0, |data| data.len() as i64);
        if path != CONFIG {
            let list = self.acl_cache.get(acl);
            self.digest = self.digest.wrapping_add(node::digest_term(path, &stat, list, data));
        }
        match NodeKind::from_owner(stat.ephemeral_owner) {
            NodeKind::Ephemeral(session) => {
                self.ephemerals.entry(session).or_default().insert(path.into());
            }
            NodeKind::Container => _ = self.containers.insert(path.into()),
            NodeKind::Ttl(_) => _ = self.ttls.insert(path.into()),
            NodeKind::Persistent => {}
        }
        self.nodes.insert(path, data, stat, acl)
    }

    /// Applies `change` to the stat or ACL number of the node in slot `id`, keeping the digest
    /// current, and returns the change's result. Data changes go through `set_data`, which
    /// also updates the data term and size.
    fn update<R>(&mut self, id: u32, change: impl FnOnce(&mut Slot) -> R) -> R {
        let term_before = self.meta_term(id);
        let result = change(self.nodes.slot_mut(id));
        self.digest = self.digest.wrapping_sub(term_before).wrapping_add(self.meta_term(id));
        result
    }

    /// A node's contribution to the digest (zero for `/zookeeper/config`).
    fn digest_term(&self, node: Node<'_>) -> u64 {
        match node.path() {
            CONFIG => 0,
            path => {
                let acl = self.acl_cache.get(node.slot.acl);
                node::digest_term(path, &node.slot.stat, acl, node.data())
            }
        }
    }

    /// The stat and ACL part of [`Self::digest_term`].
    fn meta_term(&self, id: u32) -> u64 {
        let node = self.nodes.node(id);
        match node.path() {
            CONFIG => 0,
            path => node::meta_term(path, &node.slot.stat, self.acl_cache.get(node.slot.acl)),
        }
    }

    /// The ACL list of the node in slot `id`, shared.
    fn acl_of(&self, id: u32) -> Arc<[Acl]> {
        Arc::clone(self.acl_cache.get(self.nodes.slot(id).acl))
    }

    fn apply_sub_op(&mut self, txn: &Txn, op: &TxnOp, events: &mut Vec<TreeEvent>) -> ApplyOutcome {
        match op {
            // Not valid inside a multi; preparation never puts them there.
            TxnOp::CreateSession { .. } | TxnOp::CloseSession => {
                ApplyOutcome::Error(ErrorCode::MarshallingError)
            }
            op => self.apply_op(txn, op, events),
        }
    }

    fn apply_op(&mut self, txn: &Txn, op: &TxnOp, events: &mut Vec<TreeEvent>) -> ApplyOutcome {
        let zxid = txn.zxid.to_wire();
        let result = match op {
            TxnOp::CreateSession { .. } => Ok(ApplyOutcome::SessionCreated),
            TxnOp::CloseSession => {
                self.close_session(txn.session, zxid, events);
                Ok(ApplyOutcome::SessionClosed)
            }
            TxnOp::Create { path, data, acl, ephemeral_owner } => {
                let new = NewNode { data, acl, owner: *ephemeral_owner, zxid, time: txn.time_ms };
                self.create(path, new, events)
            }
            TxnOp::Delete { path } => self.delete(path, zxid, events),
            TxnOp::SetData { path, data, version } => {
                self.set_data(path, data, *version, zxid, txn.time_ms, events)
            }
            TxnOp::SetAcl { path, acl, version } => self.set_acl(path, acl, *version),
            TxnOp::Check { path } => match self.contains(path) {
                true => Ok(ApplyOutcome::Checked),
                false => Err(ErrorCode::NoNode),
            },
            // Only a multi nested in a multi gets here; preparation never nests them.
            TxnOp::Multi(_) => Err(ErrorCode::MarshallingError),
            TxnOp::Error { code } => Err(error_code(*code)),
        };
        result.unwrap_or_else(ApplyOutcome::Error)
    }

    /// ZK compat: `DataTree.createNode`: the parent's creation count +1 and pzxid = zxid.
    fn create(
        &mut self,
        path: &str,
        new: NewNode<'_>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<ApplyOutcome, ErrorCode> {
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let parent_path = parent(path);
        let Some(up) = self.nodes.find(parent_path) else {
            return Err(ErrorCode::NoNode);
        };
        if self.contains(path) {
            return Err(ErrorCode::NodeExists);
        }
        let up_owner = self.nodes.slot(up).stat.ephemeral_owner;
        if let NodeKind::Ephemeral(_) = NodeKind::from_owner(up_owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.update(up, |up| {
            // ZK compat: Java int arithmetic; the counter wraps negative (ZOOKEEPER-4706).
            up.stat.cversion = up.stat.cversion.wrapping_add(1);
            up.stat.pzxid = new.zxid;
        });
        let parent_acl = self.acl_of(up);
        let stat = StatPersisted {
            czxid: new.zxid,
            mzxid: new.zxid,
            ctime: new.time,
            mtime: new.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: new.owner,
            pzxid: new.zxid,
        };
        let acl = self.acl_cache.intern(new.acl);
        let data = new.data.as_deref();
        let client_stat = client_stat(&stat, len_i32(data.map_or(0, <[u8]>::len)), 0);
        let id = self.insert_node(path, data, stat, acl);
        self.nodes.attach(id, up);
        let acl = self.acl_of(id);
        events.push(TreeEvent { event_type: EventType::NodeCreated, path: path.to_string(), acl });
        events.push(TreeEvent {
            event_type: EventType::NodeChildrenChanged,
            path: parent_path.to_string(),
            acl: parent_acl,
        });
        Ok(ApplyOutcome::Created { path: path.to_string(), stat: client_stat })
    }

    /// ZK compat: `DataTree.deleteNode`: the parent's pzxid rises to zxid (never falls) and its
    /// creation count is unchanged. Built-in nodes and nodes with children are refused.
    fn delete(
        &mut self,
        path: &str,
        zxid: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<ApplyOutcome, ErrorCode> {
        if is_builtin(path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = parent(path);
        let Some(up) = self.nodes.find(parent_path) else {
            return Err(ErrorCode::NoNode);
        };
        let Some(id) = self.nodes.find(path) else {
            return Err(ErrorCode::NoNode);
        };
        if self.nodes.child_count(id) != 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.digest = self.digest.wrapping_sub(self.digest_term(self.nodes.node(id)));
        let acl = self.acl_of(id);
        let node = self.nodes.remove(id);
        self.data_size -= path_len(path) + node.data_len() as i64;
        match NodeKind::from_owner(node.stat.ephemeral_owner) {
            NodeKind::Ephemeral(session) => {
                if let Some(paths) = self.ephemerals.get_mut(&session) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            NodeKind::Container => _ = self.containers.remove(path),
            NodeKind::Ttl(_) => _ = self.ttls.remove(path),
            NodeKind::Persistent => {}
        }
        self.update(up, |up| up.stat.pzxid = up.stat.pzxid.max(zxid));
        let parent_acl = self.acl_of(up);
        events.push(TreeEvent { event_type: EventType::NodeDeleted, path: path.to_string(), acl });
        events.push(TreeEvent {
            event_type: EventType::NodeChildrenChanged,
            path: parent_path.to_string(),
            acl: parent_acl,
        });
        self.acl_cache.release(node.acl);
        Ok(ApplyOutcome::Deleted)
    }

    /// ZK compat: `DataTree.setData`: data, mtime, mzxid, and the version the txn carries.
    fn set_data(
        &mut self,
        path: &str,
        data: &Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<ApplyOutcome, ErrorCode> {
        let Some(id) = self.nodes.find(path) else {
            return Err(ErrorCode::NoNode);
        };
        let data = data.as_deref();
        let node = self.nodes.node(id);
        let term_change = data_term(path, data).wrapping_sub(data_term(path, node.data()));
        self.digest = self.digest.wrapping_add(term_change);
        self.data_size += data.map_or(0, |data| data.len() as i64) - node.slot.data_len() as i64;
        self.nodes.set_data(id, data);
        self.update(id, |node| {
            node.stat.mtime = time;
            node.stat.mzxid = zxid;
            node.stat.version = version;
        });
        let acl = self.acl_of(id);
        let stat = self.client_stat(id);
        events.push(TreeEvent { event_type: EventType::NodeDataChanged, path: path.into(), acl });
        Ok(ApplyOutcome::DataSet(stat))
    }

    /// ZK compat: `DataTree.setACL`: the ACL and the aversion the txn carries; no watch fires.
    fn set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<ApplyOutcome, ErrorCode> {
        let Some(id) = self.nodes.find(path) else {
            return Err(ErrorCode::NoNode);
        };
        let shared = self.acl_cache.intern(acl);
        let old = self.update(id, |node| {
            node.stat.aversion = version;
            std::mem::replace(&mut node.acl, shared)
        });
        let stat = self.client_stat(id);
        self.acl_cache.release(old);
        Ok(ApplyOutcome::AclSet(stat))
    }

    /// Deletes every ephemeral of `session`, in path order. ZK compat: `killSession`, which
    /// skips paths that are already gone.
    fn close_session(&mut self, session: SessionId, zxid: i64, events: &mut Vec<TreeEvent>) {
        let Some(paths) = self.ephemerals.get(&session) else {
            return;
        };
        let paths: Vec<Box<str>> = paths.iter().cloned().collect();
        for path in paths {
            // Cannot fail on a consistent tree: ephemerals have no children and their parents
            // exist. On an inconsistent one the path is skipped, as ZooKeeper does.
            let _ = self.delete(&path, zxid, events);
        }
    }
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl fmt::Debug for DataTree {
    /// A summary; the node table itself is too large (and unordered) to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataTree")
            .field("nodes", &self.nodes.len())
            .field("zxid_applied", &self.zxid_applied)
            .field("digest", &format_args!("{:#018x}", self.digest))
            .finish_non_exhaustive()
    }
}

impl PartialEq for DataTree {
    /// Same nodes (paths, data, stats, ACL contents, children) and same zxid applied.
    fn eq(&self, other: &DataTree) -> bool {
        self.zxid_applied == other.zxid_applied
            && self.digest == other.digest
            && self.data_size == other.data_size
            && self.nodes.len() == other.nodes.len()
            && self.nodes.live_nodes().all(|(id, node)| {
                other.nodes.find(node.path()).is_some_and(|other_id| {
                    let theirs = other.nodes.node(other_id);
                    node.slot.stat == theirs.slot.stat
                        && node.data() == theirs.data()
                        && self.acl_of(id) == other.acl_of(other_id)
                        && self.nodes.child_count(id) == other.nodes.child_count(other_id)
                })
            })
            && self.ephemerals == other.ephemerals
            && self.containers == other.containers
            && self.ttls == other.ttls
    }
}

impl Eq for DataTree {}

/// The fields of a create txn the tree needs.
struct NewNode<'a> {
    data: &'a Option<Bytes>,
    acl: &'a [Acl],
    owner: i64,
    zxid: i64,
    time: i64,
}

/// The data part of [`DataTree::digest_term`].
fn data_term(path: &str, data: Option<&[u8]>) -> u64 {
    match path {
        CONFIG => 0,
        _ => node::data_term(path, data),
    }
}

/// Path length as Java counts it (UTF-16 units; valid paths are all in the BMP).
fn path_len(path: &str) -> i64 {
    path.chars().count() as i64
}

/// The code an Error txn carries; a code this build does not know becomes
/// `RuntimeInconsistency` (preparation only produces known codes).
fn error_code(code: i32) -> ErrorCode {
    ErrorCode::from_code(code).unwrap_or(ErrorCode::RuntimeInconsistency)
}

#[cfg(test)]
mod tests;
