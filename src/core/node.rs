//! `Node`: one Ensemble server as a deterministic state machine.
//!
//! The driver calls `step(now, input, &mut effects)` for every event it observes and wakes the
//! node again at `deadline()`. The node owns the data tree, the session table, the watch tables
//! and every client connection's protocol state; it never performs I/O itself.
//!
//! Write path (standalone: the node's own durable write is its quorum):
//! client frame → prep → `Txn` → `Effect::Write(Append)` → `Input::Persisted` → apply to the
//! tree → watch events → reply. Replies to one connection leave in request order: a read that
//! arrives while an earlier write of the same connection is in flight waits behind it, as in
//! ZooKeeper's `CommitProcessor`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ::core::net::SocketAddr;

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info, warn};

use crate::core::config::NodeConfig;
use crate::core::ids::{ConnId, SessionId, WriteId, Zxid};
use crate::core::io::{DurableWrite, Effect, Input};
use crate::core::prep::{Prep, Speculative, Write};
use crate::core::report::{ConnectionReport, Mode, ServerReport, SessionReport};
use crate::core::session::SessionTable;
use crate::core::snapshot::{self, SnapshotError};
use crate::core::time::Now;
use crate::core::tree::{acl, ApplyOutcome, DataTree, TreeEvent};
use crate::core::txn::{Txn, TxnOp};
use crate::core::watch::{WatchKind, WatchManager};
use crate::wire::proto::*;
use crate::wire::types::{perms, AddWatchMode, ErrorCode, Id, OpCode, WatcherType};
use crate::wire::{self, RequestError};

/// Frames a connection may send while its session is being created before it is cut off.
const HELD_FRAMES_MAX: usize = 1_000;
/// Requests one connection may have queued behind in-flight writes before it is cut off.
const QUEUED_PER_CONN_MAX: usize = 10_000;

/// One Ensemble server.
pub struct Node {
    config: NodeConfig,
    tree: DataTree,
    sessions: SessionTable,
    watches: WatchManager,
    speculative: Speculative,
    conns: BTreeMap<ConnId, Conn>,
    session_owner: BTreeMap<SessionId, ConnId>,
    connecting: BTreeMap<SessionId, Connecting>,
    handshake_deadlines: BTreeSet<(u64, ConnId)>,
    pending: VecDeque<Pending>,
    write_next: WriteId,
    zxid_last: Zxid,
    session_next: i64,
    rng: ChaCha8Rng,
    txns_since_snapshot: u64,
    snapshot_threshold: u64,
    snapshot_due: bool,
    reap_at_ms: u64,
    stats: Stats,
    now: Now,
}

struct Conn {
    addr: SocketAddr,
    state: ConnState,
    ids: Vec<Id>,
    queue: VecDeque<Queued>,
    held: VecDeque<Bytes>,
    timeout_ms: i32,
    established_ms: u64,
    received: u64,
    sent: u64,
    last_op: &'static str,
    last_cxid: i64,
    last_zxid: i64,
    latency: Latency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// Waiting for the ConnectRequest.
    Handshake,
    /// A createSession txn is in flight; later frames are held.
    Connecting,
    /// Serving requests for this session.
    Established(SessionId),
}

enum Queued {
    /// A write of this connection that has not been applied yet. It is matched with its txn by
    /// (session, cxid) when the txn commits, so a follower need not know the zxid in advance.
    Write { cxid: i32, shape: Shape, received_ms: u64 },
    /// A read that must wait for the writes ahead of it.
    Read { header: RequestHeader, request: Request, received_ms: u64 },
    /// An error reply that must wait for the writes ahead of it.
    Error { xid: i32, code: ErrorCode },
}

struct Pending {
    write: WriteId,
    txn: Txn,
}

/// A connection waiting for the createSession txn of its new session.
#[derive(Clone, Copy)]
struct Connecting {
    conn: ConnId,
    read_only: Option<bool>,
}

/// What the reply to a write looks like.
enum Shape {
    Create(CreateKind),
    Delete,
    SetData,
    SetAcl,
    Multi(Vec<MultiShape>),
    CloseSession,
}

#[derive(Clone, Copy)]
enum MultiShape {
    Create(CreateKind),
    Delete,
    SetData,
    Check,
}

#[derive(Clone, Copy, Debug, Default)]
struct Latency {
    count: u64,
    total_ms: u64,
    min_ms: u64,
    max_ms: u64,
    last_ms: u64,
}

impl Latency {
    fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.total_ms += ms;
        self.last_ms = ms;
    }

    fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    received: u64,
    sent: u64,
    latency: Latency,
}

/// Why a node could not be rebuilt from its durable state.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The snapshot body does not decode.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A logged txn does not follow the history before it.
    #[error("txn {zxid} does not follow {previous}")]
    OutOfOrder {
        /// The offending txn.
        zxid: Zxid,
        /// The last txn before it.
        previous: Zxid,
    },
}

impl Node {
    /// A fresh node with an empty tree.
    pub fn new(config: NodeConfig, now: Now) -> Node {
        let tick_ms = config.tick_time_ms.max(1) as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let snapshot_threshold = snapshot_threshold(&mut rng, config.snap_count);
        // ZK compat: SessionTrackerImpl.initializeNextSessionId — server id in the top byte,
        // the wall clock in the middle bits so ids differ across restarts.
        let session_next =
            ((((now.wall_ms as u64) << 24) >> 8) | (config.server_id.0 << 56)) as i64;
        Node {
            reap_at_ms: now.mono_ms + config.container_check_interval_ms,
            sessions: SessionTable::new(tick_ms),
            tree: DataTree::new(),
            watches: WatchManager::default(),
            speculative: Speculative::default(),
            conns: BTreeMap::new(),
            session_owner: BTreeMap::new(),
            connecting: BTreeMap::new(),
            handshake_deadlines: BTreeSet::new(),
            pending: VecDeque::new(),
            write_next: WriteId(1),
            zxid_last: Zxid::ZERO,
            session_next,
            rng,
            txns_since_snapshot: 0,
            snapshot_threshold,
            snapshot_due: false,
            stats: Stats::default(),
            now,
            config,
        }
    }

    /// Rebuilds a node from its latest snapshot body and the logged txns that follow it.
    /// Sessions restored this way get a full timeout from `now`, as ZooKeeper does on load.
    pub fn recover(
        config: NodeConfig,
        now: Now,
        snapshot_body: Option<&[u8]>,
        txns: impl IntoIterator<Item = Txn>,
    ) -> Result<Node, RecoveryError> {
        let mut node = Node::new(config, now);
        if let Some(body) = snapshot_body {
            let restored = snapshot::decode(body)?;
            node.tree = restored.tree;
            for (id, timeout_ms, password) in restored.sessions {
                node.sessions.add(id, timeout_ms, password, now.mono_ms);
            }
            node.zxid_last = restored.zxid;
        }
        let mut replayed = 0u64;
        for txn in txns {
            if txn.zxid <= node.zxid_last {
                if replayed == 0 {
                    continue; // already covered by the snapshot
                }
                return Err(RecoveryError::OutOfOrder { zxid: txn.zxid, previous: node.zxid_last });
            }
            node.zxid_last = txn.zxid;
            let mut events = Vec::new();
            node.tree.apply(&txn, &mut events);
            node.apply_session_change(&txn);
            replayed += 1;
        }
        node.snapshot_due = replayed > 0;
        info!(zxid = %node.zxid_last, replayed, nodes = node.tree.node_count(), "recovered");
        Ok(node)
    }

    /// Feeds one input to the node; the effects it causes are appended to `effects` in order.
    pub fn step(&mut self, now: Now, input: Input, effects: &mut Vec<Effect>) {
        debug_assert!(now.mono_ms >= self.now.mono_ms, "monotonic time went backwards");
        self.now = now;
        if self.snapshot_due {
            self.snapshot_due = false;
            self.write_snapshot(effects);
        }
        match input {
            Input::Tick => self.on_tick(effects),
            Input::ClientConnected { conn, addr } => self.on_client_connected(conn, addr),
            Input::ClientFrame { conn, frame } => self.on_client_frame(conn, frame, effects),
            Input::ClientClosed { conn } => self.forget_conn(conn),
            Input::Persisted { up_to } => self.on_persisted(up_to, effects),
        }
    }

    /// The monotonic instant at which the node wants `Input::Tick`, if any.
    pub fn deadline(&self) -> Option<u64> {
        let handshake = self.handshake_deadlines.first().map(|(at, _)| *at);
        let expiry = self.sessions.next_expiry_ms();
        [handshake, expiry, Some(self.reap_at_ms)].into_iter().flatten().min()
    }

    /// The data tree (read-only), for tests, the simulator and reports.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The last zxid this node assigned or recovered.
    pub fn zxid_last(&self) -> Zxid {
        self.zxid_last
    }

    /// A summary for the four-letter words and `ensemble status`.
    pub fn report(&self) -> ServerReport {
        let (watch_connections, watch_paths, watch_total) = self.watches.data_watch_summary();
        let connections = self
            .conns
            .iter()
            .map(|(id, c)| ConnectionReport {
                conn: *id,
                addr: c.addr,
                queued: c.queue.len() as u64,
                received: c.received,
                sent: c.sent,
                session: match c.state {
                    ConnState::Established(s) => Some(s),
                    _ => None,
                },
                timeout_ms: c.timeout_ms,
                last_op: c.last_op,
                last_cxid: c.last_cxid,
                last_zxid: c.last_zxid,
                established_mono_ms: c.established_ms,
                latency_last_ms: c.latency.last_ms,
                latency_min_ms: c.latency.min_ms,
                latency_avg_ms: c.latency.avg(),
                latency_max_ms: c.latency.max_ms,
            })
            .collect();
        let sessions = self
            .sessions
            .iter()
            .map(|(id, s)| SessionReport {
                session: id,
                timeout_ms: s.timeout_ms,
                ephemerals: self.tree.ephemerals(id),
            })
            .collect();
        ServerReport {
            mode: Mode::Standalone,
            serving: true,
            zxid: self.tree.zxid_applied(),
            epoch: self.zxid_last.epoch(),
            node_count: self.tree.node_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals_count: self.tree.ephemeral_count(),
            session_count: self.sessions.len(),
            outstanding_requests: self.pending.len() as u64,
            packets_received: self.stats.received,
            packets_sent: self.stats.sent,
            latency_min_ms: self.stats.latency.min_ms,
            latency_avg_ms: self.stats.latency.avg(),
            latency_max_ms: self.stats.latency.max_ms,
            watch_connections,
            watch_paths,
            watch_total,
            connections,
            sessions,
            proposal_sizes: None,
        }
    }

    // ---------------------------------------------------------------- connections

    fn on_client_connected(&mut self, conn: ConnId, addr: SocketAddr) {
        let deadline = self.now.mono_ms + self.config.handshake_timeout_ms;
        self.handshake_deadlines.insert((deadline, conn));
        let ip = Id::new("ip", &addr.ip().to_string());
        self.conns.insert(
            conn,
            Conn {
                addr,
                state: ConnState::Handshake,
                ids: vec![ip],
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
            },
        );
    }

    fn on_client_frame(&mut self, conn_id: ConnId, frame: Bytes, effects: &mut Vec<Effect>) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        conn.received += 1;
        self.stats.received += 1;
        match conn.state {
            ConnState::Handshake => self.on_connect_request(conn_id, &frame, effects),
            ConnState::Connecting => {
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

    fn on_connect_request(&mut self, conn_id: ConnId, frame: &[u8], effects: &mut Vec<Effect>) {
        let Ok(request) = wire::decode_connect_request(frame) else {
            debug!(%conn_id, "undecodable connect request");
            self.close_conn(conn_id, effects);
            return;
        };
        let conn_deadline = self.conn_handshake_deadline(conn_id);
        if let Some(key) = conn_deadline {
            self.handshake_deadlines.remove(&key);
        }
        let applied = self.tree.zxid_applied();
        if request.last_zxid_seen > applied.to_wire() {
            // ZK compat: ZooKeeperServer.processConnectRequest — the client has seen a newer
            // state than ours; it must try another server.
            info!(%conn_id, client = request.last_zxid_seen, ours = %applied, "client is ahead");
            self.close_conn(conn_id, effects);
            return;
        }
        let timeout_ms = request
            .timeout_ms
            .clamp(self.config.session_timeout_min_ms, self.config.session_timeout_max_ms);
        if request.session_id == 0 {
            self.create_session(conn_id, timeout_ms, request.read_only, effects);
        } else {
            self.reattach_session(conn_id, &request, timeout_ms, effects);
        }
    }

    fn create_session(
        &mut self,
        conn_id: ConnId,
        timeout_ms: i32,
        read_only: Option<bool>,
        effects: &mut Vec<Effect>,
    ) {
        let session = self.allocate_session_id();
        let mut password = [0u8; 16];
        self.rng.fill_bytes(&mut password);
        // ZK compat: the tracker knows the session from prep on, so it can expire even if the
        // createSession txn is slow.
        self.sessions.add(session, timeout_ms, password, self.now.mono_ms);
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.state = ConnState::Connecting;
            conn.timeout_ms = timeout_ms;
        }
        self.connecting.insert(session, Connecting { conn: conn_id, read_only });
        let op = TxnOp::CreateSession { timeout_ms, password };
        self.propose(session, 0, op, effects);
    }

    fn reattach_session(
        &mut self,
        conn_id: ConnId,
        request: &ConnectRequest,
        timeout_ms: i32,
        effects: &mut Vec<Effect>,
    ) {
        let session = SessionId(request.session_id);
        let valid = self
            .sessions
            .get(session)
            .is_some_and(|s| !s.closing && s.password.as_slice() == request.password.as_ref());
        if !valid {
            info!(%conn_id, %session, "reconnect to an expired or unknown session");
            let response = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                password: Bytes::from_static(&[0; 16]),
                read_only: request.read_only.map(|_| false),
            };
            self.send(conn_id, wire::encode_connect_response(&response), effects);
            self.close_conn(conn_id, effects);
            return;
        }
        if let Some(previous) = self.session_owner.get(&session).copied() {
            if previous != conn_id {
                debug!(%session, %previous, "session moved to a new connection");
                self.close_conn(previous, effects);
            }
        }
        self.sessions.set_timeout(session, timeout_ms, self.now.mono_ms);
        self.establish(conn_id, session, timeout_ms, request.read_only, effects);
    }

    fn establish(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        timeout_ms: i32,
        read_only: Option<bool>,
        effects: &mut Vec<Effect>,
    ) {
        let Some(password) = self.sessions.get(session).map(|s| s.password) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        conn.state = ConnState::Established(session);
        conn.timeout_ms = timeout_ms;
        conn.established_ms = self.now.mono_ms;
        let held = std::mem::take(&mut conn.held);
        self.session_owner.insert(session, conn_id);
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

    fn allocate_session_id(&mut self) -> SessionId {
        loop {
            let id = self.session_next;
            self.session_next = self.session_next.wrapping_add(1);
            // ZK compat: Long.MIN_VALUE marks containers and 0 means "no session".
            if id != 0 && id != i64::MIN && self.sessions.get(SessionId(id)).is_none() {
                return SessionId(id);
            }
        }
    }

    fn conn_handshake_deadline(&self, conn: ConnId) -> Option<(u64, ConnId)> {
        self.handshake_deadlines.iter().find(|(_, c)| *c == conn).copied()
    }

    /// Closes a connection from our side.
    fn close_conn(&mut self, conn: ConnId, effects: &mut Vec<Effect>) {
        if self.conns.contains_key(&conn) {
            effects.push(Effect::CloseClient { conn });
            self.forget_conn(conn);
        }
    }

    /// Drops every trace of a connection; its session lives on until it expires.
    fn forget_conn(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(key) = self.conn_handshake_deadline(conn) {
            self.handshake_deadlines.remove(&key);
        }
        match state.state {
            ConnState::Established(session) => {
                if self.session_owner.get(&session) == Some(&conn) {
                    self.session_owner.remove(&session);
                }
            }
            ConnState::Connecting => self.connecting.retain(|_, c| c.conn != conn),
            ConnState::Handshake => {}
        }
        self.watches.remove_conn(conn);
    }

    fn send(&mut self, conn_id: ConnId, frame: Bytes, effects: &mut Vec<Effect>) {
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.sent += 1;
            self.stats.sent += 1;
            effects.push(Effect::SendClient { conn: conn_id, frame });
        }
    }

    fn reply(
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
        self.send(conn_id, wire::encode_reply(header, body), effects);
    }

    // ---------------------------------------------------------------- requests

    fn on_request_frame(
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
        if !self.sessions.touch(session, self.now.mono_ms) {
            let reply = ReplyHeader {
                xid: header.xid,
                zxid: self.tree.zxid_applied().to_wire(),
                err: ErrorCode::SessionExpired.code(),
            };
            self.reply(conn_id, reply, None, None, effects);
            self.close_conn(conn_id, effects);
            return;
        }
        let request = match wire::decode_request(header.opcode, body) {
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
                self.answer_error(conn_id, header.xid, ErrorCode::MarshallingError, effects);
                return;
            }
            Ok(request) => request,
        };
        match request {
            Request::Ping => {
                let reply =
                    ReplyHeader { xid: -2, zxid: self.tree.zxid_applied().to_wire(), err: 0 };
                self.reply(conn_id, reply, None, None, effects);
            }
            Request::Auth { scheme, auth, .. } => {
                self.on_auth(conn_id, header.xid, &scheme, &auth, effects)
            }
            Request::Create(..)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Multi(_)
            | Request::CloseSession => {
                self.on_write(conn_id, session, header.xid, request, received_ms, effects)
            }
            read => {
                let Some(conn) = self.conns.get_mut(&conn_id) else {
                    return;
                };
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

    /// Replies with an error in request order (after any write still in flight).
    fn answer_error(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        code: ErrorCode,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if conn.queue.is_empty() {
            let reply =
                ReplyHeader { xid, zxid: self.tree.zxid_applied().to_wire(), err: code.code() };
            self.reply(conn_id, reply, None, None, effects);
        } else {
            conn.queue.push_back(Queued::Error { xid, code });
        }
    }

    fn on_auth(
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
            "digest" => acl::parse_digest_auth(auth).map(|id| {
                let mut ids = vec![id.clone()];
                if self.config.super_digest.as_deref() == Some(id.id.as_str()) {
                    ids.push(Id::new("super", ""));
                }
                ids
            }),
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

    fn on_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        request: Request,
        received_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if conn.queue.len() >= QUEUED_PER_CONN_MAX {
            warn!(%conn_id, "too many queued requests");
            self.close_conn(conn_id, effects);
            return;
        }
        let ids = conn.ids.clone();
        let zxid = self.next_zxid();
        let mut prep = Prep {
            tree: &self.tree,
            speculative: &mut self.speculative,
            config: &self.config,
            session,
            ids: &ids,
            zxid,
            time_ms: self.now.wall_ms,
        };
        let (op, shape) = match &request {
            Request::Create(kind, create) => {
                (prep.write(Write::Create(*kind, create)), Shape::Create(*kind))
            }
            Request::Delete { path, version } => {
                (prep.write(Write::Delete { path, version: *version }), Shape::Delete)
            }
            Request::SetData { path, data, version } => {
                (prep.write(Write::SetData { path, data, version: *version }), Shape::SetData)
            }
            Request::SetAcl { path, acl, version } => {
                (prep.write(Write::SetAcl { path, acl, version: *version }), Shape::SetAcl)
            }
            Request::Multi(ops) => (prep.write(Write::Multi(ops)), Shape::Multi(multi_shape(ops))),
            Request::CloseSession => {
                self.sessions.set_closing(session);
                (prep.close_session(), Shape::CloseSession)
            }
            _ => unreachable!("on_write is called for writes only"),
        };
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.queue.push_back(Queued::Write { cxid: xid, shape, received_ms });
        }
        self.append(Txn { zxid, session, cxid: xid, time_ms: self.now.wall_ms, op }, effects);
    }

    fn answer_read(
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
    fn read(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        request: Request,
        notifications: &mut Vec<WatcherEvent>,
    ) -> Result<Response, ErrorCode> {
        let ids = self.conns.get(&conn_id).map(|c| c.ids.clone()).unwrap_or_default();
        let can = |acl: &[crate::wire::types::Acl], needed: i32| {
            acl::check(acl, needed, &ids, self.config.skip_acl)
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
                let all = self.tree.ephemerals(session);
                let all_of_them = prefix.is_empty() || prefix.trim().is_empty() || prefix == "/";
                Ok(Response::Ephemerals(
                    all.into_iter().filter(|p| all_of_them || p.starts_with(&prefix)).collect(),
                ))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(ids.iter().map(who_am_i).collect())),
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
                let results = ops.into_iter().map(|op| self.read_one(&ids, op)).collect();
                Ok(Response::Multi(results))
            }
            other => {
                warn!(?other, "not a read");
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    fn read_one(&self, ids: &[Id], op: ReadOp) -> OpResult {
        let (path, is_data) = match &op {
            ReadOp::GetData { path } => (path, true),
            ReadOp::GetChildren { path } => (path, false),
        };
        let Some((node_acl, stat)) = self.tree.acl(path) else {
            return OpResult::Error { err: ErrorCode::NoNode.code() };
        };
        if !acl::check(&node_acl, perms::READ, ids, self.config.skip_acl) {
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

    // ---------------------------------------------------------------- txns

    fn next_zxid(&mut self) -> Zxid {
        let zxid = Zxid(self.zxid_last.0 + 1);
        assert!(zxid.counter() != 0, "zxid counter overflow at {}", self.zxid_last);
        self.zxid_last = zxid;
        zxid
    }

    fn propose(&mut self, session: SessionId, cxid: i32, op: TxnOp, effects: &mut Vec<Effect>) {
        let zxid = self.next_zxid();
        self.append(Txn { zxid, session, cxid, time_ms: self.now.wall_ms, op }, effects);
    }

    fn append(&mut self, txn: Txn, effects: &mut Vec<Effect>) {
        let write = self.write_next;
        self.write_next = WriteId(write.0 + 1);
        effects.push(Effect::Write { id: write, write: DurableWrite::Append(txn.clone()) });
        self.pending.push_back(Pending { write, txn });
    }

    fn on_persisted(&mut self, up_to: WriteId, effects: &mut Vec<Effect>) {
        while self.pending.front().is_some_and(|p| p.write <= up_to) {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            self.commit(pending, effects);
        }
    }

    /// Applies a durable txn and answers whoever waits for it on this node.
    fn commit(&mut self, pending: Pending, effects: &mut Vec<Effect>) {
        let txn = pending.txn;
        let mut events = Vec::new();
        let outcome = self.tree.apply(&txn, &mut events);
        self.speculative.applied(txn.zxid);
        self.apply_session_change(&txn);
        self.notify(&events, txn.zxid, effects);
        match txn.op {
            TxnOp::CreateSession { timeout_ms, .. } => {
                if let Some(waiting) = self.connecting.remove(&txn.session) {
                    self.establish(
                        waiting.conn,
                        txn.session,
                        timeout_ms,
                        waiting.read_only,
                        effects,
                    );
                }
            }
            _ => self.answer_write(&txn, outcome, effects),
        }
        self.txns_since_snapshot += 1;
        if self.txns_since_snapshot >= self.snapshot_threshold {
            self.write_snapshot(effects);
        }
    }

    fn apply_session_change(&mut self, txn: &Txn) {
        match &txn.op {
            TxnOp::CreateSession { timeout_ms, password } => {
                if self.sessions.get(txn.session).is_none() {
                    self.sessions.add(txn.session, *timeout_ms, *password, self.now.mono_ms);
                }
            }
            TxnOp::CloseSession => {
                self.sessions.remove(txn.session);
            }
            _ => {}
        }
    }

    fn notify(&mut self, events: &[TreeEvent], zxid: Zxid, effects: &mut Vec<Effect>) {
        if events.is_empty() {
            return;
        }
        let mut out = Vec::new();
        let conns = &self.conns;
        let skip_acl = self.config.skip_acl;
        let mut can_read = |conn: ConnId, node_acl: &[crate::wire::types::Acl]| {
            conns.get(&conn).is_some_and(|c| acl::check(node_acl, perms::READ, &c.ids, skip_acl))
        };
        for event in events {
            self.watches.trigger(event, &mut can_read, &mut out);
        }
        for (conn, event) in out {
            self.send(conn, wire::encode_notification(zxid.to_wire(), &event), effects);
        }
    }

    /// Replies to the local connection whose oldest outstanding write is this txn, if any.
    /// A closeSession that commits closes the session's connection whoever asked for it.
    fn answer_write(&mut self, txn: &Txn, outcome: ApplyOutcome, effects: &mut Vec<Effect>) {
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

    /// Answers the reads and errors that waited behind a write that just completed.
    fn drain_queue(&mut self, conn_id: ConnId, effects: &mut Vec<Effect>) {
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
                Some(Queued::Error { xid, code }) => {
                    let zxid = self.tree.zxid_applied().to_wire();
                    let reply = ReplyHeader { xid, zxid, err: code.code() };
                    self.reply(conn_id, reply, None, None, effects);
                }
                _ => return,
            }
        }
    }

    fn write_snapshot(&mut self, effects: &mut Vec<Effect>) {
        let zxid = self.tree.zxid_applied();
        let sessions: Vec<_> =
            self.sessions.iter().map(|(id, s)| (id, s.timeout_ms, s.password)).collect();
        let body = snapshot::encode(zxid, &self.tree, &sessions);
        self.txns_since_snapshot = 0;
        self.snapshot_threshold = snapshot_threshold(&mut self.rng, self.config.snap_count);
        let write = self.write_next;
        self.write_next = WriteId(write.0 + 1);
        info!(%zxid, bytes = body.len(), "snapshot");
        effects.push(Effect::Write { id: write, write: DurableWrite::Snapshot { zxid, body } });
    }

    // ---------------------------------------------------------------- timers

    fn on_tick(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        while let Some(&(at, conn)) = self.handshake_deadlines.first() {
            if at > now {
                break;
            }
            self.handshake_deadlines.remove(&(at, conn));
            debug!(%conn, "no handshake in time");
            self.close_conn(conn, effects);
        }
        for session in self.sessions.take_expired(now) {
            info!(%session, "session expired");
            if let Some(conn) = self.session_owner.get(&session).copied() {
                self.close_conn(conn, effects);
            }
            self.expire(session, effects);
        }
        if now >= self.reap_at_ms {
            self.reap_at_ms = now + self.config.container_check_interval_ms.max(1);
            self.reap(effects);
        }
    }

    fn expire(&mut self, session: SessionId, effects: &mut Vec<Effect>) {
        let zxid = self.next_zxid();
        let mut prep = Prep {
            tree: &self.tree,
            speculative: &mut self.speculative,
            config: &self.config,
            session,
            ids: &[],
            zxid,
            time_ms: self.now.wall_ms,
        };
        let op = prep.close_session();
        let txn = Txn { zxid, session, cxid: 0, time_ms: self.now.wall_ms, op };
        self.append(txn, effects);
    }

    /// Deletes empty containers and expired TTL nodes. ZK compat: `ContainerManager`.
    fn reap(&mut self, effects: &mut Vec<Effect>) {
        let candidates =
            self.tree.reap_candidates(self.now.wall_ms, self.config.container_never_used_ms);
        let super_ids = [Id::new("super", "")];
        for path in candidates {
            let zxid = Zxid(self.zxid_last.0 + 1);
            let mut prep = Prep {
                tree: &self.tree,
                speculative: &mut self.speculative,
                config: &self.config,
                session: SessionId(0),
                ids: &super_ids,
                zxid,
                time_ms: self.now.wall_ms,
            };
            let op = prep.write(Write::Delete { path: &path, version: -1 });
            if matches!(op, TxnOp::Error { .. }) {
                continue; // it gained a child or went away meanwhile
            }
            debug!(%path, "reaping");
            self.propose(SessionId(0), 0, op, effects);
        }
    }
}

fn multi_shape(ops: &[MultiOp]) -> Vec<MultiShape> {
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
fn write_response(shape: &Shape, outcome: ApplyOutcome) -> (ErrorCode, Option<Response>) {
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

fn who_am_i(id: &Id) -> (String, String) {
    let user = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
        "super" => String::new(),
        _ => id.id.clone(),
    };
    (id.scheme.clone(), user)
}

/// ZK compat: SyncRequestProcessor rolls a snapshot after a random count in
/// [snapCount/2, snapCount] so members of an ensemble do not snapshot at once.
fn snapshot_threshold(rng: &mut ChaCha8Rng, snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.next_u64() % (snap_count - half + 1).max(1)
}

/// The four-letter name ZooKeeper's `cons` shows for an opcode.
fn op_name(opcode: i32) -> &'static str {
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
