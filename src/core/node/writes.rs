//! Writes: a client's write on any member (forwarded to the leader by a learner), the leader
//! preparing it into a txn and proposing it (also session expiry and container / TTL reaping),
//! and the reply once the txn is applied.

use bytes::Bytes;
use tracing::{debug, warn};

use crate::core::ids::{ConnId, ServerId, SessionId, Zxid};
use crate::core::io::Effect;
use crate::core::node::clients::{MultiShape, Queued, Shape, QUEUED_PER_CONN_MAX};
use crate::core::node::{Node, Role};
use crate::core::prep::Prep;
use crate::core::prep::Write;
use crate::core::tree::ApplyOutcome;
use crate::core::txn::{Txn, TxnOp};
use crate::core::zab::{Forwarded, PeerMsg};
use crate::wire::proto::*;
use crate::wire::types::{ErrorCode, Id};
use crate::wire::{self};

impl Node {
    pub(super) fn leader_on_request(
        &mut self,
        from: ServerId,
        session: SessionId,
        cxid: i32,
        op: Forwarded,
        effects: &mut Vec<Effect>,
    ) {
        if !self.is_leader_established() {
            debug!(%from, "request before the leader is established");
            return;
        }
        match op {
            Forwarded::CreateSession { timeout_ms, password } => {
                self.sessions.add(session, timeout_ms, password, self.session_now());
                self.leader_propose(
                    session,
                    0,
                    TxnOp::CreateSession { timeout_ms, password },
                    effects,
                );
            }
            Forwarded::Sync => self.leader_sync(Some(from), session, cxid, effects),
            Forwarded::Write { frame, ids } => {
                let request = wire::decode_request_header(&frame)
                    .ok()
                    .and_then(|(header, body)| wire::decode_request(header.opcode, body).ok());
                match request {
                    Some(request) => self.leader_write(session, cxid, &request, &ids, effects),
                    None => {
                        // The follower decoded it; a leader that cannot is not a reason to
                        // stall the client: the request fails like any undecodable one.
                        let code = crate::wire::types::ErrorCode::MarshallingError.code();
                        self.leader_propose(session, cxid, TxnOp::Error { code }, effects);
                    }
                }
            }
        }
    }

    /// Request preparation against the applied tree and the pending changes.
    pub(super) fn prep<'a>(
        &'a mut self,
        session: SessionId,
        ids: &'a [Id],
        zxid: Zxid,
    ) -> Prep<'a> {
        Prep {
            tree: &self.tree,
            speculative: &mut self.speculative,
            config: &self.config,
            session,
            ids,
            zxid,
            time_ms: self.now.wall_ms,
        }
    }

    /// Session expiry on the leader: a closeSession txn for it.
    pub(super) fn expire(&mut self, session: SessionId, effects: &mut Vec<Effect>) {
        let Some(zxid) = self.next_zxid() else { return };
        let mut prep = self.prep(session, &[], zxid);
        let op = prep.close_session();
        self.leader_propose_at(zxid, session, 0, op, effects);
    }

    /// Deletes empty containers and expired TTL nodes. ZK compat: `ContainerManager`.
    pub(super) fn reap(&mut self, effects: &mut Vec<Effect>) {
        let candidates =
            self.tree.reap_candidates(self.now.wall_ms, self.config.container_never_used_ms);
        let super_ids = [crate::wire::types::Id::new("super", "")];
        for path in candidates {
            if self.zxid_exhausted() {
                return;
            }
            let zxid = Zxid(self.zxid_proposed.0 + 1);
            let mut prep = self.prep(SessionId(0), &super_ids, zxid);
            let op = prep.write(Write::Delete { path: &path, version: -1 });
            if matches!(op, TxnOp::Error { .. }) {
                continue; // it gained a child or went away meanwhile
            }
            debug!(%path, "reaping");
            let Some(zxid) = self.next_zxid() else { return };
            self.leader_propose_at(zxid, SessionId(0), 0, op, effects);
        }
    }

    /// A write (or sync, or closeSession): prepared and proposed here if we lead, forwarded to
    /// the leader otherwise. The connection's queue remembers what the reply must look like.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        request: Request,
        frame: Bytes,
        received_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else { return };
        if conn.queue.len() >= QUEUED_PER_CONN_MAX {
            warn!(%conn_id, "too many queued requests");
            self.close_conn(conn_id, effects);
            return;
        }
        let ids = conn.ids.clone();
        let shape = match &request {
            Request::Create(kind, _) => Shape::Create(*kind),
            Request::Delete { .. } => Shape::Delete,
            Request::SetData { .. } => Shape::SetData,
            Request::SetAcl { .. } => Shape::SetAcl,
            Request::Multi(ops) => Shape::Multi(multi_shape(ops)),
            Request::CloseSession => Shape::CloseSession,
            Request::Sync { path } => Shape::Sync { path: path.clone() },
            _ => unreachable!("on_write is called for writes only"),
        };
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.queue.push_back(Queued::Write { cxid: xid, shape, received_ms });
        }
        match &self.role {
            Role::Leading(_) => match request {
                Request::Sync { .. } => self.leader_sync(None, session, xid, effects),
                request => self.leader_write(session, xid, &request, &ids, effects),
            },
            _ => {
                let op = match request {
                    Request::Sync { .. } => Forwarded::Sync,
                    _ => Forwarded::Write { frame, ids },
                };
                self.learner_send(PeerMsg::Request { session, cxid: xid, op }, effects);
            }
        }
    }

    /// A write whose body does not decode. ZK compat: `PrepRequestProcessor` gives a write its
    /// zxid before it decodes the body, so an undecodable one becomes an error txn and its
    /// `MarshallingError` reply carries that fresh zxid (a read's carries the last applied).
    /// A learner forwards the frame: the leader fails to decode it the same way.
    pub(super) fn on_undecodable_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        frame: Bytes,
        received_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        if conn.queue.len() >= QUEUED_PER_CONN_MAX {
            warn!(%conn_id, "too many queued requests");
            self.close_conn(conn_id, effects);
            return;
        }
        let ids = conn.ids.clone();
        conn.queue.push_back(Queued::Write { cxid: xid, shape: Shape::Undecodable, received_ms });
        if let Role::Leading(_) = &self.role {
            let op = TxnOp::Error { code: ErrorCode::MarshallingError.code() };
            self.leader_propose(session, xid, op, effects);
        } else {
            let op = Forwarded::Write { frame, ids };
            self.learner_send(PeerMsg::Request { session, cxid: xid, op }, effects);
        }
    }

    /// Prepares a client write on the leader and proposes the txn.
    pub(super) fn leader_write(
        &mut self,
        session: SessionId,
        cxid: i32,
        request: &Request,
        ids: &[Id],
        effects: &mut Vec<Effect>,
    ) {
        let Some(zxid) = self.next_zxid() else { return };
        if matches!(request, Request::CloseSession) {
            self.sessions.set_closing(session);
        } else if !self.sessions.is_live(session) {
            // ZK compat: PrepRequestProcessor checks the session (`checkSession`) before it
            // prepares any write. A write of a session that is closing or gone — one a learner
            // forwarded before the expiry and that arrives after it — fails with an error txn;
            // prepared, it would leave an ephemeral no close will ever delete (ZOOKEEPER-1208).
            let op = session_expired(request);
            self.leader_propose_at(zxid, session, cxid, op, effects);
            return;
        }
        let mut prep = self.prep(session, ids, zxid);
        let op = match request {
            Request::Create(kind, create) => prep.write(Write::Create(*kind, create)),
            Request::Delete { path, version } => {
                prep.write(Write::Delete { path, version: *version })
            }
            Request::SetData { path, data, version } => {
                prep.write(Write::SetData { path, data, version: *version })
            }
            Request::SetAcl { path, acl, version } => {
                prep.write(Write::SetAcl { path, acl, version: *version })
            }
            Request::Multi(ops) => prep.write(Write::Multi(ops)),
            Request::CloseSession => prep.close_session(),
            _ => TxnOp::Error { code: ErrorCode::MarshallingError.code() },
        };
        self.leader_propose_at(zxid, session, cxid, op, effects);
    }

    /// Replies to the local connection whose oldest outstanding write is this txn, if any.
    /// A closeSession that commits closes the session's connection whoever asked for it.
    pub(super) fn answer_write(
        &mut self,
        txn: &Txn,
        outcome: ApplyOutcome,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn_id) = self.session_owner.get(&txn.session).copied() else { return };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        let ours =
            matches!(conn.queue.front(), Some(Queued::Write { cxid, .. }) if *cxid == txn.cxid);
        let closing = matches!(txn.op, TxnOp::CloseSession);
        if !ours {
            if closing {
                self.close_conn(conn_id, effects);
            }
            return;
        }
        let Some(Queued::Write { shape, received_ms, .. }) = conn.queue.pop_front() else {
            return;
        };
        let (err, body) = write_response(&shape, outcome);
        let reply = ReplyHeader { xid: txn.cxid, zxid: txn.zxid.to_wire(), err: err.code() };
        self.reply(conn_id, reply, body.as_ref(), Some(received_ms), effects);
        if closing {
            self.close_conn(conn_id, effects);
            return;
        }
        self.drain_queue(conn_id, effects);
    }

    /// Answers a `sync` once the leader says everything before it is committed here.
    pub(super) fn answer_sync(&mut self, session: SessionId, cxid: i32, effects: &mut Vec<Effect>) {
        let Some(conn_id) = self.session_owner.get(&session).copied() else { return };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        let ours = matches!(
            conn.queue.front(),
            Some(Queued::Write { cxid: c, shape: Shape::Sync { .. }, .. }) if *c == cxid
        );
        if !ours {
            return;
        }
        let Some(Queued::Write { shape: Shape::Sync { path }, received_ms, .. }) =
            conn.queue.pop_front()
        else {
            return;
        };
        let zxid = self.tree.zxid_applied().to_wire();
        let reply = ReplyHeader { xid: cxid, zxid, err: 0 };
        self.reply(conn_id, reply, Some(&Response::Sync { path }), Some(received_ms), effects);
        self.drain_queue(conn_id, effects);
    }
}

pub(super) fn multi_shape(ops: &[MultiOp]) -> Vec<MultiShape> {
    ops.iter()
        .map(|op| match op {
            MultiOp::Create(kind, _) => MultiShape::Create(*kind),
            MultiOp::Delete { .. } => MultiShape::Delete,
            MultiOp::SetData { .. } => MultiShape::SetData,
            MultiOp::Check { .. } => MultiShape::Check,
        })
        .collect()
}

/// The reply to an applied write: header error code and optional body.
/// The error txn of a write whose session expired: a multi fails at its first op, as
/// ZooKeeper's multi records a failed sub-op (the rest `RuntimeInconsistency`).
fn session_expired(request: &Request) -> TxnOp {
    let expired = ErrorCode::SessionExpired.code();
    match request {
        Request::Multi(ops) if !ops.is_empty() => TxnOp::Multi(
            (0..ops.len())
                .map(|i| TxnOp::Error {
                    code: if i == 0 { expired } else { ErrorCode::RuntimeInconsistency.code() },
                })
                .collect(),
        ),
        _ => TxnOp::Error { code: expired },
    }
}

pub(super) fn write_response(
    shape: &Shape,
    outcome: ApplyOutcome,
) -> (ErrorCode, Option<Response>) {
    if let ApplyOutcome::Error(code) = outcome {
        if !matches!(shape, Shape::Multi(_)) {
            return (code, None);
        }
    }
    let body = match (shape, outcome) {
        (Shape::Create(CreateKind::Create), ApplyOutcome::Created { path, .. }) => {
            Response::Create { path }
        }
        (Shape::Create(_), ApplyOutcome::Created { path, stat }) => {
            Response::Create2 { path, stat }
        }
        (Shape::Delete, _) | (Shape::CloseSession, _) => Response::Empty,
        (Shape::SetData, ApplyOutcome::DataSet(stat)) => Response::Stat(stat),
        (Shape::SetAcl, ApplyOutcome::AclSet(stat)) => Response::Stat(stat),
        (Shape::Multi(shapes), ApplyOutcome::Multi(outcomes)) => {
            Response::Multi(multi_results(shapes, outcomes))
        }
        (Shape::Multi(shapes), ApplyOutcome::Error(code)) => {
            // A multi that failed as a whole at apply: report the code on every op.
            Response::Multi(shapes.iter().map(|_| OpResult::Error { err: code.code() }).collect())
        }
        (_, other) => {
            warn!(?other, "apply outcome does not match the request");
            return (ErrorCode::MarshallingError, None);
        }
    };
    (ErrorCode::Ok, Some(body))
}

fn multi_results(shapes: &[MultiShape], outcomes: Vec<ApplyOutcome>) -> Vec<OpResult> {
    let failed = outcomes.iter().any(|o| matches!(o, ApplyOutcome::Error(_)));
    shapes
        .iter()
        .zip(outcomes)
        .map(|(shape, outcome)| match (shape, outcome) {
            (_, ApplyOutcome::Error(code)) => OpResult::Error { err: code.code() },
            // ZK compat: in a failed multi, the ops before the failing one report error 0.
            _ if failed => OpResult::Error { err: 0 },
            (MultiShape::Create(CreateKind::Create), ApplyOutcome::Created { path, .. }) => {
                OpResult::Create { path }
            }
            (MultiShape::Create(_), ApplyOutcome::Created { path, stat }) => {
                OpResult::Create2 { path, stat }
            }
            (MultiShape::Delete, _) => OpResult::Delete,
            (MultiShape::SetData, ApplyOutcome::DataSet(stat)) => OpResult::SetData { stat },
            (MultiShape::Check, _) => OpResult::Check,
            _ => OpResult::Error { err: ErrorCode::MarshallingError.code() },
        })
        .collect()
}
