//! Reads: answered from the local applied tree, in order with the connection's writes.

use tracing::warn;

use crate::core::ids::{ConnId, SessionId};
use crate::core::io::Effect;
use crate::core::node::Node;
use crate::core::tree::acl;
use crate::core::watch::WatchKind;
use crate::wire::proto::*;
use crate::wire::types::{perms, AddWatchMode, ErrorCode, Id, WatcherType};
use crate::wire::{self};

impl Node {
    pub(super) fn answer_read(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        header: RequestHeader,
        request: Request,
        received_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let mut notifications = Vec::new();
        let result = self.read(conn_id, session, request, &mut notifications);
        for event in notifications {
            self.send(conn_id, wire::encode_notification(-1, &event), effects);
        }
        let zxid = self.tree.zxid_applied().to_wire();
        match result {
            Ok(body) => {
                let reply = ReplyHeader { xid: header.xid, zxid, err: 0 };
                self.reply(conn_id, reply, Some(&body), Some(received_ms), effects);
            }
            Err(code) => {
                let reply = ReplyHeader { xid: header.xid, zxid, err: code.code() };
                self.reply(conn_id, reply, None, Some(received_ms), effects);
            }
        }
    }

    /// Serves a read from the applied tree. ZK compat: `FinalRequestProcessor`.
    pub(super) fn read(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        request: Request,
        notifications: &mut Vec<WatcherEvent>,
    ) -> Result<Response, ErrorCode> {
        let ids = self.conns.get(&conn_id).map(|c| c.ids.clone()).unwrap_or_default();
        let can = |acl: &[crate::wire::types::Acl], needed: i32| {
            acl::check(acl, needed, &ids, self.config.skip_acl, &self.config.auth)
        };
        match request {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if let Some((node_acl, _)) = self.tree.acl(&path) {
                    if !can(&node_acl, perms::READ) {
                        return Err(ErrorCode::NoAuth);
                    }
                }
                if watch {
                    self.watches.add(conn_id, &path, WatchKind::Data);
                }
                self.tree.stat(&path).map(Response::Stat).ok_or(ErrorCode::NoNode)
            }
            Request::GetData { path, watch } => {
                let (node_acl, _) = self.tree.acl(&path).ok_or(ErrorCode::NoNode)?;
                if !can(&node_acl, perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                if watch {
                    self.watches.add(conn_id, &path, WatchKind::Data);
                }
                let (data, stat) = self.tree.data(&path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::GetData { data, stat })
            }
            Request::GetChildren { path, watch, with_stat } => {
                let (node_acl, stat) = self.tree.acl(&path).ok_or(ErrorCode::NoNode)?;
                if !can(&node_acl, perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                if watch {
                    self.watches.add(conn_id, &path, WatchKind::Child);
                }
                let children = self.tree.children(&path).unwrap_or_default();
                Ok(if with_stat {
                    Response::GetChildren2 { children, stat }
                } else {
                    Response::GetChildren { children }
                })
            }
            Request::GetAcl { path } => {
                let (node_acl, stat) = self.tree.acl(&path).ok_or(ErrorCode::NoNode)?;
                if !can(&node_acl, perms::READ | perms::ADMIN) {
                    return Err(ErrorCode::NoAuth);
                }
                let acl = if can(&node_acl, perms::ADMIN) {
                    node_acl.to_vec()
                } else {
                    acl::mask_digests(&node_acl)
                };
                Ok(Response::GetAcl { acl, stat })
            }
            Request::GetAllChildrenNumber { path } => {
                let (node_acl, _) = self.tree.acl(&path).ok_or(ErrorCode::NoNode)?;
                if !can(&node_acl, perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                let count = self.tree.descendant_count(&path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::AllChildrenNumber(count))
            }
            Request::GetEphemerals { prefix } => {
                Ok(Response::Ephemerals(self.tree.ephemerals_with_prefix(session, &prefix)))
            }
            Request::WhoAmI => {
                let auth = &self.config.auth;
                Ok(Response::WhoAmI(ids.iter().map(|id| who_am_i(id, auth)).collect()))
            }
            Request::Sync { path } => Ok(Response::Sync { path }),
            Request::SetWatches(set) => {
                let tree = &self.tree;
                let lookup = |p: &str| tree.stat(p).map(|s| (s.mzxid, s.pzxid));
                self.watches.set_watches(conn_id, &set, &lookup, notifications);
                Ok(Response::Empty)
            }
            Request::AddWatch { path, mode } => {
                let kind = match AddWatchMode::from_code(mode) {
                    Some(AddWatchMode::Persistent) => WatchKind::Persistent,
                    Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                    None => return Err(ErrorCode::MarshallingError),
                };
                self.watches.add(conn_id, &path, kind);
                Ok(Response::ErrorBody { err: 0 })
            }
            Request::CheckWatches { path, watcher_type, remove } => {
                let kind =
                    WatcherType::from_code(watcher_type).ok_or(ErrorCode::MarshallingError)?;
                let found = if remove {
                    self.watches.remove(conn_id, &path, kind)
                } else {
                    self.watches.contains(conn_id, &path, kind)
                };
                if found {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                let mut data_bytes = 0usize;
                for op in ops {
                    let result = self.read_one(&ids, op);
                    data_bytes += match &result {
                        OpResult::GetData { data, .. } => data.as_ref().map_or(0, |d| d.len()),
                        OpResult::GetChildren { children } => {
                            children.iter().map(|c| c.len() + 4).sum()
                        }
                        _ => 0,
                    };
                    results.push(result);
                    if data_bytes > self.config.frame_max_bytes {
                        // Too large to send (`reply` closes the connection): stop copying
                        // node data into it.
                        break;
                    }
                }
                Ok(Response::Multi(results))
            }
            other => {
                warn!(?other, "not a read");
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    pub(super) fn read_one(&self, ids: &[Id], op: ReadOp) -> OpResult {
        let (path, is_data) = match &op {
            ReadOp::GetData { path } => (path, true),
            ReadOp::GetChildren { path } => (path, false),
        };
        let Some((node_acl, stat)) = self.tree.acl(path) else {
            return OpResult::Error { err: ErrorCode::NoNode.code() };
        };
        if !acl::check(&node_acl, perms::READ, ids, self.config.skip_acl, &self.config.auth) {
            return OpResult::Error { err: ErrorCode::NoAuth.code() };
        }
        if is_data {
            match self.tree.data(path) {
                Some((data, stat)) => OpResult::GetData { data, stat },
                None => OpResult::Error { err: ErrorCode::NoNode.code() },
            }
        } else {
            let _ = stat;
            OpResult::GetChildren { children: self.tree.children(path).unwrap_or_default() }
        }
    }
}

/// ZK compat: `AuthUtil.getUser`: the provider's user name, empty (null) for a scheme without
/// a registered provider (`super`, or `sasl` without `SASLAuthenticationProvider`).
fn who_am_i(id: &Id, auth: &crate::core::auth::AuthConfig) -> (String, String) {
    let user = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
        scheme if auth.providers.has(scheme) => id.id.clone(),
        _ => String::new(),
    };
    (id.scheme.clone(), user)
}
