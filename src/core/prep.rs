//! Request preparation: turns a client write into the `TxnOp` every member will apply.
//!
//! ZK compat: `PrepRequestProcessor`. Writes are validated in ZooKeeper's order (first failure
//! wins, see the protocol reference §6.2) against a *speculative* view of the tree: the applied
//! tree overlaid with the changes of txns that were prepared but not applied yet
//! (`Speculative`, ZooKeeper's `outstandingChanges`). A failed validation still becomes a txn
//! (`TxnOp::Error`), exactly as ZooKeeper turns it into an `ErrorTxn`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::core::config::NodeConfig;
use crate::core::ids::{SessionId, Zxid};
use crate::core::tree::{acl, path, DataTree, NodeView, StatPersisted};
use crate::core::txn::{NodeKind, TxnOp, EPHEMERAL_CONTAINER, TTL_MARKER, TTL_MAX_MS};
use crate::wire::proto::{CreateKind, CreateRequest, MultiOp};
use crate::wire::types::{perms, Acl, CreateMode, ErrorCode, Id};

/// Changes of prepared-but-unapplied txns, by path. `None` means "deleted".
#[derive(Clone, Debug, Default)]
pub struct Speculative {
    changes: BTreeMap<String, (Zxid, Option<NodeView>)>,
    by_zxid: BTreeMap<Zxid, Vec<String>>,
}

impl Speculative {
    /// The node at `path` as the next txn will find it.
    pub fn view(&self, tree: &DataTree, path: &str) -> Option<NodeView> {
        match self.changes.get(path) {
            Some((_, view)) => view.clone(),
            None => tree.view(path),
        }
    }

    /// The tree has applied every txn `<= zxid`: forget the changes they made.
    pub fn applied(&mut self, zxid: Zxid) {
        while let Some(entry) = self.by_zxid.first_entry() {
            if *entry.key() > zxid {
                break;
            }
            let (at, paths) = entry.remove_entry();
            for path in paths {
                if self.changes.get(&path).is_some_and(|(z, _)| *z == at) {
                    self.changes.remove(&path);
                }
            }
        }
    }

    /// Forgets everything (the pending txns were abandoned).
    pub fn clear(&mut self) {
        self.changes.clear();
        self.by_zxid.clear();
    }

    /// Number of paths with a pending change.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether no change is pending.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn record(&mut self, zxid: Zxid, local: BTreeMap<String, Option<NodeView>>) {
        if local.is_empty() {
            return;
        }
        let paths = self.by_zxid.entry(zxid).or_default();
        for (path, view) in local {
            paths.push(path.clone());
            self.changes.insert(path, (zxid, view));
        }
    }
}

/// Who is asking, and the txn header being built.
pub struct Prep<'a> {
    /// The applied tree.
    pub tree: &'a DataTree,
    /// Pending changes.
    pub speculative: &'a mut Speculative,
    /// Node configuration (ACL switches, extended types).
    pub config: &'a NodeConfig,
    /// The requesting session.
    pub session: SessionId,
    /// The connection's authenticated ids.
    pub ids: &'a [Id],
    /// The zxid the txn will get.
    pub zxid: Zxid,
    /// The txn time.
    pub time_ms: i64,
}

/// A write request, borrowed from the decoded client request.
#[derive(Clone, Copy, Debug)]
pub enum Write<'r> {
    /// create / create2 / createContainer / createTTL.
    Create(CreateKind, &'r CreateRequest),
    /// delete.
    Delete {
        /// Path.
        path: &'r str,
        /// Expected version.
        version: i32,
    },
    /// setData.
    SetData {
        /// Path.
        path: &'r str,
        /// New data.
        data: &'r Option<bytes::Bytes>,
        /// Expected version.
        version: i32,
    },
    /// setACL.
    SetAcl {
        /// Path.
        path: &'r str,
        /// New ACL.
        acl: &'r [Acl],
        /// Expected aversion.
        version: i32,
    },
    /// multi.
    Multi(&'r [MultiOp]),
}

impl Prep<'_> {
    /// Prepares one write. The speculative view is updated only if the write succeeds.
    pub fn write(&mut self, write: Write<'_>) -> TxnOp {
        let mut layer = BTreeMap::new();
        let op = match write {
            Write::Multi(ops) => self.multi(ops, &mut layer),
            single => match self.single(single, &mut layer) {
                Ok(op) => op,
                Err(code) => {
                    layer.clear();
                    TxnOp::Error { code: code.code() }
                }
            },
        };
        self.speculative.record(self.zxid, layer);
        op
    }

    /// Prepares the closing of `self.session`: every ephemeral it owns, applied or pending,
    /// is marked deleted in the speculative view.
    pub fn close_session(&mut self) -> TxnOp {
        let mut owned: Vec<String> = self.tree.ephemerals(self.session);
        let session = self.session;
        for (path, (_, view)) in &self.speculative.changes {
            match view {
                Some(v)
                    if NodeKind::from_owner(v.stat.ephemeral_owner)
                        == NodeKind::Ephemeral(session) =>
                {
                    owned.push(path.clone())
                }
                _ => {}
            }
        }
        owned.sort();
        owned.dedup();
        let mut layer = BTreeMap::new();
        for node in owned {
            // Only what is, as the next txn will find it, an ephemeral of this session: a pending
            // txn may have deleted the applied node and someone else re-created the path.
            let ours = self.view(&layer, &node).is_some_and(|v| {
                NodeKind::from_owner(v.stat.ephemeral_owner) == NodeKind::Ephemeral(session)
            });
            if !ours {
                continue;
            }
            let parent = parent_of(&node);
            if let Some(mut pv) = self.view(&layer, parent) {
                pv.num_children -= 1;
                pv.stat.pzxid = self.zxid.to_wire();
                layer.insert(parent.to_string(), Some(pv));
            }
            layer.insert(node, None);
        }
        self.speculative.record(self.zxid, layer);
        TxnOp::CloseSession
    }

    fn multi(&mut self, ops: &[MultiOp], layer: &mut BTreeMap<String, Option<NodeView>>) -> TxnOp {
        let mut txns = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let write = match op {
                MultiOp::Create(kind, request) => Write::Create(*kind, request),
                MultiOp::Delete { path, version } => Write::Delete { path, version: *version },
                MultiOp::SetData { path, data, version } => {
                    Write::SetData { path, data, version: *version }
                }
                MultiOp::Check { path, version } => match self.check(layer, path, *version) {
                    Ok(op) => {
                        txns.push(op);
                        continue;
                    }
                    Err(code) => return failed_multi(ops.len(), index, code, layer),
                },
            };
            match self.single(write, layer) {
                Ok(op) => txns.push(op),
                Err(code) => return failed_multi(ops.len(), index, code, layer),
            }
        }
        TxnOp::Multi(txns)
    }

    fn single(
        &self,
        write: Write<'_>,
        layer: &mut BTreeMap<String, Option<NodeView>>,
    ) -> Result<TxnOp, ErrorCode> {
        match write {
            Write::Create(kind, request) => self.create(layer, kind, request),
            Write::Delete { path, version } => self.delete(layer, path, version),
            Write::SetData { path, data, version } => self.set_data(layer, path, data, version),
            Write::SetAcl { path, acl, version } => self.set_acl(layer, path, acl, version),
            Write::Multi(_) => Err(ErrorCode::MarshallingError),
        }
    }

    fn create(
        &self,
        layer: &mut BTreeMap<String, Option<NodeView>>,
        kind: CreateKind,
        request: &CreateRequest,
    ) -> Result<TxnOp, ErrorCode> {
        let mode = CreateMode::from_code(request.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.config.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl = if kind == CreateKind::Ttl { request.ttl.unwrap_or(-1) } else { -1 };
        if mode.is_ttl() {
            if ttl <= 0 || ttl > TTL_MAX_MS {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        let requested = request.path.as_str();
        let last_slash = requested.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if requested.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup(&request.acl, self.ids, &self.config.auth)?;
        let parent_path = if last_slash == 0 { "/" } else { &requested[..last_slash] };
        let mut parent = self.view(layer, parent_path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&parent.acl, perms::CREATE)?;
        let path = if mode.is_sequential() {
            format!("{requested}{}", path::sequence_suffix(parent.stat.cversion))
        } else {
            requested.to_string()
        };
        path::validate_path(&path).map_err(|_| ErrorCode::BadArguments)?;
        if self.view(layer, &path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(NodeKind::from_owner(parent.stat.ephemeral_owner), NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let ephemeral_owner = if mode.is_container() {
            EPHEMERAL_CONTAINER
        } else if mode.is_ttl() {
            TTL_MARKER | ttl
        } else if mode.is_ephemeral() {
            self.session.0
        } else {
            0
        };
        let zxid = self.zxid.to_wire();
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = zxid;
        parent.num_children += 1;
        layer.insert(parent_path.to_string(), Some(parent));
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: self.time_ms,
            mtime: self.time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        };
        let acl: Arc<[Acl]> = acl.into();
        layer.insert(path.clone(), Some(NodeView { stat, num_children: 0, acl: acl.clone() }));
        Ok(TxnOp::Create { path, data: request.data.clone(), acl, ephemeral_owner })
    }

    fn delete(
        &self,
        layer: &mut BTreeMap<String, Option<NodeView>>,
        path: &str,
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') || is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 { "/" } else { &path[..last_slash] };
        let mut parent = self.view(layer, parent_path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&parent.acl, perms::DELETE)?;
        let node = self.view(layer, path).ok_or(ErrorCode::NoNode)?;
        next_version(node.stat.version, version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        parent.num_children -= 1;
        parent.stat.pzxid = self.zxid.to_wire();
        layer.insert(parent_path.to_string(), Some(parent));
        layer.insert(path.to_string(), None);
        Ok(TxnOp::Delete { path: path.to_string() })
    }

    fn set_data(
        &self,
        layer: &mut BTreeMap<String, Option<NodeView>>,
        path: &str,
        data: &Option<bytes::Bytes>,
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        path::validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.view(layer, path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&node.acl, perms::WRITE)?;
        let new_version = next_version(node.stat.version, version)?;
        node.stat.version = new_version;
        node.stat.mzxid = self.zxid.to_wire();
        node.stat.mtime = self.time_ms;
        layer.insert(path.to_string(), Some(node));
        Ok(TxnOp::SetData { path: path.to_string(), data: data.clone(), version: new_version })
    }

    fn set_acl(
        &self,
        layer: &mut BTreeMap<String, Option<NodeView>>,
        path: &str,
        requested: &[Acl],
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        path::validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fixup(requested, self.ids, &self.config.auth)?;
        let mut node = self.view(layer, path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&node.acl, perms::ADMIN)?;
        let new_version = next_version(node.stat.aversion, version)?;
        node.stat.aversion = new_version;
        let acl: Arc<[Acl]> = acl.into();
        node.acl = acl.clone();
        layer.insert(path.to_string(), Some(node));
        Ok(TxnOp::SetAcl { path: path.to_string(), acl, version: new_version })
    }

    fn check(
        &self,
        layer: &BTreeMap<String, Option<NodeView>>,
        path: &str,
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        path::validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.view(layer, path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&node.acl, perms::READ)?;
        next_version(node.stat.version, version)?;
        Ok(TxnOp::Check { path: path.to_string() })
    }

    fn view(&self, layer: &BTreeMap<String, Option<NodeView>>, path: &str) -> Option<NodeView> {
        match layer.get(path) {
            Some(view) => view.clone(),
            None => self.speculative.view(self.tree, path),
        }
    }

    fn check_acl(&self, node_acl: &[Acl], needed: i32) -> Result<(), ErrorCode> {
        if acl::check(node_acl, needed, self.ids, self.config.skip_acl, &self.config.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }
}

/// ZooKeeper's `checkAndIncVersion`: -1 matches anything; the next version skips -1.
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

fn failed_multi(
    count: usize,
    failed_at: usize,
    code: ErrorCode,
    layer: &mut BTreeMap<String, Option<NodeView>>,
) -> TxnOp {
    layer.clear();
    let codes = (0..count).map(|i| {
        let code = match i.cmp(&failed_at) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => code.code(),
            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
        };
        TxnOp::Error { code }
    });
    TxnOp::Multi(codes.collect())
}

/// The built-in nodes that can never be deleted. ZK compat: `DataTree.isSpecialPath`.
pub fn is_special_path(path: &str) -> bool {
    matches!(path, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}
