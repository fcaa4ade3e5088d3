//! The client protocol of a node: connections, handshakes, sessions, request dispatch, reads
//! and replies. Writes are in `writes.rs` (prepared and proposed on the leader, forwarded to it
//! by a learner; replies leave from `Node::apply` through `answer_write`), reads in `reads.rs`.

use std::collections::VecDeque;

use ::core::net::SocketAddr;

use bytes::Bytes;
use rand::RngCore;
use tracing::{debug, info, warn};

use crate::core::canary::Canary;
use crate::core::ids::{ConnId, ServerId, SessionId};
use crate::core::io::Effect;
use crate::core::node::{Latency, Node, Role};
use crate::core::tree::acl;
use crate::core::txn::TxnOp;
use crate::core::zab::{Forwarded, PeerMsg};
use crate::wire::proto::*;
use crate::wire::types::{ErrorCode, Id, OpCode};
use crate::wire::{self, RequestError};

/// Frames a connection may send while its session is being created before it is cut off.
const HELD_FRAMES_MAX: usize = 1_000;
/// A connect request waits for a member that does not serve yet for at most the client's
/// connect timeout (session timeout / servers) divided by this.
pub(super) const PARK_SHARE: u64 = 2;
/// Requests one connection may have queued behind in-flight writes before it is cut off.
pub(super) const QUEUED_PER_CONN_MAX: usize = 10_000;

/// One client connection.
pub(super) struct Conn {
    pub(super) addr: SocketAddr,
    pub(super) state: ConnState,
    pub(super) ids: Vec<Id>,
    pub(super) queue: VecDeque<Queued>,
    pub(super) held: VecDeque<Bytes>,
    pub(super) timeout_ms: i32,
    pub(super) established_ms: u64,
    pub(super) received: u64,
    pub(super) sent: u64,
    pub(super) last_op: &'static str,
    pub(super) last_cxid: i64,
    pub(super) last_zxid: i64,
    pub(super) latency: Latency,
    /// When the handshake must be done by (while `state` is `Handshake`).
    pub(super) handshake_at: u64,
    /// The SASL exchange in progress (see `node/sasl.rs`); `None` until a `sasl` request.
    pub(super) sasl: Option<Box<crate::core::auth::DigestMd5Server>>,
}

impl Conn {
    pub(super) fn session(&self) -> Option<SessionId> {
        match self.state {
            ConnState::Established(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnState {
    /// Waiting for the ConnectRequest.
    Handshake,
    /// The ConnectRequest (first in `held`) arrived while this member did not serve; it is
    /// handled as soon as the member serves, or the connection closes at `handshake_at`.
    Waiting,
    /// A createSession txn (or a revalidation) is in flight; later frames are held.
    Connecting,
    /// Serving requests for this session.
    Established(SessionId),
}

pub(super) enum Queued {
    /// A write (or sync) of this connection that has not completed yet. It is matched by
    /// (session, cxid) when its txn commits, so a follower need not know the zxid in advance.
    Write { cxid: i32, shape: Shape, received_ms: u64 },
    /// A read that must wait for the writes ahead of it.
    Read { header: RequestHeader, request: Request, received_ms: u64 },
    /// An error reply that must wait for the writes ahead of it.
    /// `multi_body`: the empty `MultiResponse` follows the header (see `answer_error_with`).
    Error { xid: i32, code: ErrorCode, multi_body: bool },
}

/// A connection waiting for the createSession txn of its new session.
#[derive(Clone, Copy)]
pub(super) struct Connecting {
    pub(super) conn: ConnId,
    pub(super) read_only: Option<bool>,
}

/// A connection waiting for the leader to confirm the session it resumes.
#[derive(Clone, Copy)]
pub(super) struct Revalidating {
    pub(super) conn: ConnId,
    pub(super) read_only: Option<bool>,
    pub(super) timeout_ms: i32,
}

/// What the reply to a write looks like.
pub(super) enum Shape {
    Create(CreateKind),
    Delete,
    SetData,
    SetAcl,
    Multi(Vec<MultiShape>),
    CloseSession,
    Sync {
        path: String,
    },
    /// A write whose body did not decode: its txn is a `MarshallingError`.
    Undecodable,
}

#[derive(Clone, Copy)]
pub(super) enum MultiShape {
    Create(CreateKind),
    Delete,
    SetData,
    Check,
}

impl Node {
    // ---------------------------------------------------------------- connections

    pub(super) fn on_client_connected(
        &mut self,
        conn: ConnId,
        addr: SocketAddr,
        auth: Vec<Id>,
        effects: &mut Vec<Effect>,
    ) {
        if !self.is_serving() && !self.may_serve_soon() {
            // ZK compat: a server that is not serving closes new connections at once, so the
            // client tries another member. One that is electing or syncing with a quorum in
            // reach keeps the connection instead (see `park_connect_request`).
            effects.push(Effect::CloseClient { conn });
            return;
        }
        let deadline = self.now.mono_ms + self.config.handshake_timeout_ms;
        self.handshake_deadlines.insert((deadline, conn));
        let ip = Id::new("ip", &addr.ip().to_string());
        self.conns.insert(
            conn,
            Conn {
                addr,
                state: ConnState::Handshake,
                ids: std::iter::once(ip).chain(auth).collect(),
                queue: VecDeque::new(),
                held: VecDeque::new(),
                timeout_ms: 0,
                established_ms: self.now.mono_ms,
                received: 0,
                sent: 0,
                last_op: "NA",
                last_cxid: -1,
                last_zxid: -1,
                latency: Latency::default(),
                handshake_at: deadline,
                sasl: None,
            },
        );
    }

    pub(super) fn on_client_frame(
        &mut self,
        conn_id: ConnId,
        frame: Bytes,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        conn.received += 1;
        self.stats.received += 1;
        match conn.state {
            ConnState::Handshake => self.on_connect_request(conn_id, &frame, effects),
            ConnState::Connecting | ConnState::Waiting => {
                if conn.held.len() >= HELD_FRAMES_MAX {
                    warn!(%conn_id, "too many requests before the session was established");
                    self.close_conn(conn_id, effects);
                } else {
                    conn.held.push_back(frame);
                }
            }
            ConnState::Established(session) => {
                self.on_request_frame(conn_id, session, frame, effects)
            }
        }
    }

    pub(super) fn on_connect_request(
        &mut self,
        conn_id: ConnId,
        frame: &[u8],
        effects: &mut Vec<Effect>,
    ) {
        let Ok(request) = wire::decode_connect_request(frame) else {
            debug!(%conn_id, "undecodable connect request");
            self.close_conn(conn_id, effects);
            return;
        };
        if !self.is_serving() {
            self.park_connect_request(conn_id, &request, frame, effects);
            return;
        }
        if let Some(key) = self.conn_handshake_deadline(conn_id) {
            self.handshake_deadlines.remove(&key);
        }
        let applied = self.tree.zxid_applied();
        if request.last_zxid_seen > applied.to_wire() && !self.canary(Canary::AcceptClientAhead) {
            // ZK compat: ZooKeeperServer.processConnectRequest — the client has seen a newer
            // state than ours; it must try another server.
            info!(%conn_id, client = request.last_zxid_seen, ours = %applied, "client is ahead");
            self.close_conn(conn_id, effects);
            return;
        }
        let timeout_ms = request
            .timeout_ms
            .clamp(self.config.session_timeout_min_ms, self.config.session_timeout_max_ms);
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.state = ConnState::Connecting;
            conn.timeout_ms = timeout_ms;
        }
        if request.session_id == 0 {
            self.create_session(conn_id, timeout_ms, request.read_only, effects);
        } else {
            self.reattach_session(conn_id, &request, timeout_ms, effects);
        }
    }

    /// Whether this member, not serving now, may serve soon: it is electing, syncing or
    /// leading, and a quorum of voters (itself included) is not known to be out of reach. A
    /// member whose links to a majority are down (partitioned away, or the rest of the
    /// ensemble is down) cannot serve until that changes.
    pub(super) fn may_serve_soon(&self) -> bool {
        let members = &self.config.membership;
        let reachable: Vec<ServerId> =
            members.voters().filter(|id| !self.links_down.contains(id)).collect();
        !matches!(self.role, Role::Starting) && members.is_quorum(&reachable)
    }

    /// A ConnectRequest that arrives while this member does not serve waits for it to serve,
    /// for at most 1/[`PARK_SHARE`] of the client's connect timeout.
    ///
    /// ZK compat: ZooKeeper closes such a connection ("ZooKeeperServer not running") and the
    /// client tries the next member. During a failover every member is electing, so a client
    /// goes through its whole list in a millisecond and then backs off for longer than the
    /// election takes: the Java client 1 s (`StaticHostProvider` spin delay) plus up to 1 s of
    /// random delay per reconnect, the `zookeeper-client` crate 300–400 ms. A client kept
    /// here is answered the moment this member serves. The wait is bounded well below the
    /// client's own connect timeout (session timeout / number of servers in the Java client),
    /// so a member that does not serve in time still lets the client move on, and a member
    /// without a quorum in reach closes at once as before.
    fn park_connect_request(
        &mut self,
        conn_id: ConnId,
        request: &ConnectRequest,
        frame: &[u8],
        effects: &mut Vec<Effect>,
    ) {
        if !self.may_serve_soon() {
            self.close_conn(conn_id, effects);
            return;
        }
        let timeout_ms = request
            .timeout_ms
            .clamp(self.config.session_timeout_min_ms, self.config.session_timeout_max_ms);
        let servers = self.config.membership.members.len().max(1) as u64;
        let wait_ms = timeout_ms.max(0) as u64 / (PARK_SHARE * servers);
        let key = self.conn_handshake_deadline(conn_id);
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        let deadline = conn.handshake_at.min(self.now.mono_ms + wait_ms);
        conn.state = ConnState::Waiting;
        conn.handshake_at = deadline;
        conn.held.push_front(Bytes::copy_from_slice(frame));
        if let Some(key) = key {
            self.handshake_deadlines.remove(&key);
        }
        self.handshake_deadlines.insert((deadline, conn_id));
        debug!(%conn_id, wait_ms, "connect request waits for this member to serve");
    }

    /// This member just started serving: handle the connect requests that waited for it, in
    /// the order of their connections.
    pub(super) fn serve_waiting_connections(&mut self, effects: &mut Vec<Effect>) {
        let waiting: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == ConnState::Waiting)
            .map(|(id, _)| *id)
            .collect();
        for conn_id in waiting {
            let Some(key) = self.conn_handshake_deadline(conn_id) else { continue };
            self.handshake_deadlines.remove(&key);
            let Some(conn) = self.conns.get_mut(&conn_id) else { continue };
            conn.state = ConnState::Handshake;
            let Some(frame) = conn.held.pop_front() else { continue };
            self.on_connect_request(conn_id, &frame, effects);
        }
    }

    pub(super) fn create_session(
        &mut self,
        conn_id: ConnId,
        timeout_ms: i32,
        read_only: Option<bool>,
        effects: &mut Vec<Effect>,
    ) {
        let session = self.allocate_session_id();
        let mut password = [0u8; 16];
        self.rng.fill_bytes(&mut password);
        self.connecting.insert(session, Connecting { conn: conn_id, read_only });
        let op = TxnOp::CreateSession { timeout_ms, password };
        match &self.role {
            Role::Leading(_) => {
                // ZK compat: the tracker knows the session from prep on, so it can expire even
                // if the createSession txn is slow.
                self.sessions.add(session, timeout_ms, password, self.session_now());
                self.leader_propose(session, 0, op, effects);
            }
            _ => {
                let forwarded = Forwarded::CreateSession { timeout_ms, password };
                let msg = PeerMsg::Request { session, cxid: 0, op: forwarded };
                self.learner_send(msg, effects);
            }
        }
    }

    pub(super) fn reattach_session(
        &mut self,
        conn_id: ConnId,
        request: &ConnectRequest,
        timeout_ms: i32,
        effects: &mut Vec<Effect>,
    ) {
        let session = SessionId(request.session_id);
        // ZK compat: ZooKeeperServer.processConnectRequest closes the session's current
        // connection before it checks the password.
        if let Some(previous) = self.session_owner.get(&session).copied() {
            if previous != conn_id {
                self.close_conn(previous, effects);
            }
        }
        let valid = self
            .sessions
            .get(session)
            .is_some_and(|s| !s.closing && s.password.as_slice() == request.password.as_ref());
        if !valid {
            self.refuse_session(conn_id, session, request.read_only, effects);
            return;
        }
        if matches!(self.role, Role::Learning(_)) {
            // ZK compat: Learner.validateSession — only the leader knows whether the session
            // is still alive.
            let waiting = Revalidating { conn: conn_id, read_only: request.read_only, timeout_ms };
            self.revalidating.insert(session, waiting);
            self.learner_send(PeerMsg::Revalidate { session, timeout_ms }, effects);
            return;
        }
        self.sessions.set_timeout(session, timeout_ms, self.session_now());
        self.establish(conn_id, session, timeout_ms, request.read_only, effects);
    }

    /// Tells a client its session is gone (timeout 0, id 0) and closes the connection.
    pub(super) fn refuse_session(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        read_only: Option<bool>,
        effects: &mut Vec<Effect>,
    ) {
        info!(%conn_id, %session, "reconnect to an expired or unknown session");
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: Bytes::from_static(&[0; 16]),
            read_only: read_only.map(|_| false),
        };
        self.send(conn_id, wire::encode_connect_response(&response), effects);
        self.close_conn(conn_id, effects);
    }

    pub(super) fn establish(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        timeout_ms: i32,
        read_only: Option<bool>,
        effects: &mut Vec<Effect>,
    ) {
        if let Some(previous) = self.session_owner.get(&session).copied() {
            if previous != conn_id {
                debug!(%session, %previous, "session moved to a new connection");
                self.close_conn(previous, effects);
            }
        }
        let Some(password) = self.sessions.get(session).map(|s| s.password) else {
            self.refuse_session(conn_id, session, read_only, effects);
            return;
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        conn.state = ConnState::Established(session);
        conn.timeout_ms = timeout_ms;
        conn.established_ms = self.now.mono_ms;
        let held = std::mem::take(&mut conn.held);
        self.session_owner.insert(session, conn_id);
        self.touched.insert(session);
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id: session.0,
            password: Bytes::copy_from_slice(&password),
            read_only: read_only.map(|_| false),
        };
        self.send(conn_id, wire::encode_connect_response(&response), effects);
        for frame in held {
            if !self.conns.contains_key(&conn_id) {
                break;
            }
            self.on_request_frame(conn_id, session, frame, effects);
        }
    }

    /// The handshake deadline entry of a connection still in its handshake.
    fn conn_handshake_deadline(&self, conn: ConnId) -> Option<(u64, ConnId)> {
        let c = self.conns.get(&conn)?;
        matches!(c.state, ConnState::Handshake | ConnState::Waiting)
            .then_some((c.handshake_at, conn))
    }

    /// Closes a connection from our side.
    pub(super) fn close_conn(&mut self, conn: ConnId, effects: &mut Vec<Effect>) {
        if self.conns.contains_key(&conn) {
            effects.push(Effect::CloseClient { conn });
            self.forget_conn(conn);
        }
    }

    /// Drops every trace of a connection; its session lives on until it expires.
    pub(super) fn forget_conn(&mut self, conn: ConnId) {
        if let Some(key) = self.conn_handshake_deadline(conn) {
            self.handshake_deadlines.remove(&key);
        }
        let Some(state) = self.conns.remove(&conn) else { return };
        match state.state {
            ConnState::Established(session) => {
                if self.session_owner.get(&session) == Some(&conn) {
                    self.session_owner.remove(&session);
                }
            }
            ConnState::Connecting => {
                self.connecting.retain(|_, c| c.conn != conn);
                self.revalidating.retain(|_, c| c.conn != conn);
            }
            ConnState::Handshake | ConnState::Waiting => {}
        }
        self.watches.remove_conn(conn);
    }

    // ---------------------------------------------------------------- requests

    pub(super) fn on_request_frame(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        frame: Bytes,
        effects: &mut Vec<Effect>,
    ) {
        let received_ms = self.now.mono_ms;
        let Ok((header, body)) = wire::decode_request_header(&frame) else {
            debug!(%conn_id, "undecodable request header");
            self.close_conn(conn_id, effects);
            return;
        };
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.last_op = op_name(header.opcode);
            conn.last_cxid = header.xid as i64;
        }
        self.touched.insert(session);
        if !self.sessions.touch(session, self.session_now()) {
            let behind_writes = self.conns.get(&conn_id).is_some_and(|c| !c.queue.is_empty());
            if behind_writes {
                // E.g. pipelined behind this session's closeSession: answer in order (in
                // practice never, since the connection closes with the closeSession reply).
                self.answer_error(conn_id, header.xid, ErrorCode::SessionExpired, effects);
                return;
            }
            let reply = ReplyHeader {
                xid: header.xid,
                zxid: self.tree.zxid_applied().to_wire(),
                err: ErrorCode::SessionExpired.code(),
            };
            self.reply(conn_id, reply, None, None, effects);
            self.close_conn(conn_id, effects);
            return;
        }
        // ZK compat: `processPacket` checks enforce.auth on everything but auth and sasl.
        let auth_opcodes = [OpCode::Auth.code(), OpCode::Sasl.code()];
        if !auth_opcodes.contains(&header.opcode)
            && !self.enforce_auth(conn_id, header.xid, effects)
        {
            return;
        }
        if header.opcode == OpCode::Reconfig.code() {
            // ZK compat: PrepRequestProcessor refuses reconfig first when `reconfigEnabled` is
            // false (the default); otherwise a standalone server cannot reconfigure. Ensemble
            // does not implement dynamic reconfiguration in an ensemble either.
            let code = if self.config.reconfig_enabled {
                ErrorCode::Unimplemented
            } else {
                ErrorCode::ReconfigDisabled
            };
            self.answer_error(conn_id, header.xid, code, effects);
            return;
        }
        // ZK compat: Request.isValid — check (13) is only valid inside a multi, whatever its body.
        let invalid = header.opcode == OpCode::Check.code();
        let request = match wire::decode_request(header.opcode, body.clone()) {
            _ if invalid => {
                let reply =
                    ReplyHeader { xid: header.xid, zxid: -1, err: ErrorCode::Unimplemented.code() };
                self.reply(conn_id, reply, None, None, effects);
                self.close_conn(conn_id, effects);
                return;
            }
            Ok(Request::Check { .. }) | Err(RequestError::Unimplemented(_)) => {
                // ZK compat: UnimplementedRequestProcessor answers -6 with zxid -1 and the
                // connection is closed.
                let reply =
                    ReplyHeader { xid: header.xid, zxid: -1, err: ErrorCode::Unimplemented.code() };
                self.reply(conn_id, reply, None, None, effects);
                self.close_conn(conn_id, effects);
                return;
            }
            Err(RequestError::Marshalling(error)) => {
                debug!(%conn_id, %error, "undecodable request body");
                if OpCode::from_code(header.opcode).is_some_and(OpCode::is_prepared_write) {
                    self.on_undecodable_write(
                        conn_id,
                        session,
                        header.xid,
                        frame,
                        received_ms,
                        effects,
                    );
                } else if header.opcode == OpCode::MultiRead.code() {
                    // ZK compat: a multiRead of write ops (nothing else mixes) decodes, and
                    // fails at its first op with the empty MultiResponse after the header.
                    let writes = wire::decode_request(OpCode::Multi.code(), body).is_ok();
                    let code = ErrorCode::MarshallingError;
                    self.answer_error_with(conn_id, header.xid, code, writes, effects);
                } else {
                    self.answer_error(conn_id, header.xid, ErrorCode::MarshallingError, effects);
                }
                return;
            }
            Ok(request) => request,
        };
        match request {
            Request::Sasl { token } => self.on_sasl(conn_id, session, header.xid, &token, effects),
            Request::Ping => {
                let reply =
                    ReplyHeader { xid: -2, zxid: self.tree.zxid_applied().to_wire(), err: 0 };
                self.reply(conn_id, reply, None, None, effects);
            }
            Request::Auth { scheme, auth, .. } => {
                self.on_auth(conn_id, header.xid, &scheme, &auth, effects)
            }
            request if request.is_ordered() => {
                self.on_write(conn_id, session, header.xid, request, frame, received_ms, effects)
            }
            read => {
                let Some(conn) = self.conns.get_mut(&conn_id) else { return };
                if conn.queue.is_empty() {
                    self.answer_read(conn_id, session, header, read, received_ms, effects);
                } else if conn.queue.len() >= QUEUED_PER_CONN_MAX {
                    warn!(%conn_id, "too many queued requests");
                    self.close_conn(conn_id, effects);
                } else {
                    conn.queue.push_back(Queued::Read { header, request: read, received_ms });
                }
            }
        }
    }

    pub(super) fn send(&mut self, conn_id: ConnId, frame: Bytes, effects: &mut Vec<Effect>) {
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.sent += 1;
            self.stats.sent += 1;
            effects.push(Effect::SendClient { conn: conn_id, frame });
        }
    }

    pub(super) fn reply(
        &mut self,
        conn_id: ConnId,
        header: ReplyHeader,
        body: Option<&Response>,
        received_ms: Option<u64>,
        effects: &mut Vec<Effect>,
    ) {
        if let (Some(conn), Some(at)) = (self.conns.get_mut(&conn_id), received_ms) {
            let ms = self.now.mono_ms.saturating_sub(at);
            conn.latency.record(ms);
            conn.last_zxid = header.zxid;
            self.stats.latency.record(ms);
        }
        let len = wire::reply_payload_len(header, body);
        if len > self.config.frame_max_bytes {
            // ZK compat: ZooKeeper sends it, and its client (same `jute.maxbuffer`) refuses
            // it ("Packet len is out of range") and drops the connection. We close the
            // connection before building the reply, which could be a multiRead of hundreds
            // of MiB.
            warn!(%conn_id, len, max = self.config.frame_max_bytes, "reply larger than \
                  jute.maxbuffer; closing the connection");
            self.close_conn(conn_id, effects);
            return;
        }
        self.send(conn_id, wire::encode_reply(header, body), effects);
    }

    /// Replies with an error in request order (after any write still in flight).
    pub(super) fn answer_error(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        code: ErrorCode,
        effects: &mut Vec<Effect>,
    ) {
        self.answer_error_with(conn_id, xid, code, false, effects);
    }

    /// [`Self::answer_error`], with the empty `MultiResponse` after the header when
    /// `multi_body`. ZK compat: `FinalRequestProcessor` builds a multiRead's `MultiResponse`
    /// before it meets a sub-op that is not a read, and sends it with the `MarshallingError`.
    fn answer_error_with(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        code: ErrorCode,
        multi_body: bool,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if conn.queue.is_empty() {
            let reply =
                ReplyHeader { xid, zxid: self.tree.zxid_applied().to_wire(), err: code.code() };
            self.error_reply(conn_id, reply, multi_body, effects);
        } else {
            conn.queue.push_back(Queued::Error { xid, code, multi_body });
        }
    }

    fn error_reply(
        &mut self,
        conn_id: ConnId,
        reply: ReplyHeader,
        multi_body: bool,
        effects: &mut Vec<Effect>,
    ) {
        if multi_body {
            self.send(
                conn_id,
                wire::encode_error_reply(reply, &Response::Multi(Vec::new())),
                effects,
            );
        } else {
            self.reply(conn_id, reply, None, None, effects);
        }
    }

    pub(super) fn on_auth(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        scheme: &str,
        auth: &[u8],
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let added: Option<Vec<Id>> = match scheme {
            "digest" => Some(acl::digest_auth_ids(auth, self.config.super_digest.as_deref())),
            "ip" => Some(vec![Id::new("ip", &conn.addr.ip().to_string())]),
            _ => None,
        };
        match added {
            Some(ids) => {
                for id in ids {
                    if !conn.ids.contains(&id) {
                        conn.ids.push(id);
                    }
                }
                self.reply(conn_id, ReplyHeader { xid, zxid: 0, err: 0 }, None, None, effects);
            }
            None => {
                info!(%conn_id, scheme, "authentication failed");
                let err = ErrorCode::AuthFailed.code();
                self.reply(conn_id, ReplyHeader { xid, zxid: 0, err }, None, None, effects);
                self.close_conn(conn_id, effects);
            }
        }
    }

    /// Answers the reads and errors that waited behind a write that just completed.
    pub(super) fn drain_queue(&mut self, conn_id: ConnId, effects: &mut Vec<Effect>) {
        loop {
            let Some(conn) = self.conns.get_mut(&conn_id) else {
                return;
            };
            let ConnState::Established(session) = conn.state else {
                return;
            };
            match conn.queue.front() {
                None | Some(Queued::Write { .. }) => return,
                Some(_) => {}
            }
            match conn.queue.pop_front() {
                Some(Queued::Read { header, request, received_ms }) => {
                    self.answer_read(conn_id, session, header, request, received_ms, effects)
                }
                Some(Queued::Error { xid, code, multi_body }) => {
                    let zxid = self.tree.zxid_applied().to_wire();
                    let reply = ReplyHeader { xid, zxid, err: code.code() };
                    self.error_reply(conn_id, reply, multi_body, effects);
                }
                _ => return,
            }
        }
    }

    pub(super) fn allocate_session_id(&mut self) -> SessionId {
        loop {
            let id = self.session_next;
            self.session_next = self.session_next.wrapping_add(1);
            // ZK compat: Long.MIN_VALUE marks containers and 0 means "no session".
            if id != 0 && id != i64::MIN && self.sessions.get(SessionId(id)).is_none() {
                return SessionId(id);
            }
        }
    }
}

/// The four-letter name ZooKeeper's `cons` shows for an opcode.
pub(super) fn op_name(opcode: i32) -> &'static str {
    match OpCode::from_code(opcode) {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            "CREA"
        }
        Some(OpCode::Delete) => "DELE",
        Some(OpCode::Exists) => "EXIS",
        Some(OpCode::GetData) => "GETD",
        Some(OpCode::SetData) => "SETD",
        Some(OpCode::GetAcl) => "GETA",
        Some(OpCode::SetAcl) => "SETA",
        Some(OpCode::GetChildren) => "GETC",
        Some(OpCode::GetChildren2) => "GETC",
        Some(OpCode::Sync) => "SYNC",
        Some(OpCode::Ping) => "PING",
        Some(OpCode::Multi) => "MULT",
        Some(OpCode::MultiRead) => "MLTR",
        Some(OpCode::Auth) => "AUTH",
        Some(OpCode::SetWatches | OpCode::SetWatches2) => "SETW",
        Some(OpCode::AddWatch) => "ADDW",
        Some(OpCode::CheckWatches) => "CHKW",
        Some(OpCode::RemoveWatches) => "REMW",
        Some(OpCode::GetEphemerals) => "GETE",
        Some(OpCode::GetAllChildrenNumber) => "GETACN",
        Some(OpCode::WhoAmI) => "HOMI",
        Some(OpCode::CloseSession) => "CLOS",
        _ => "UNKN",
    }
}
