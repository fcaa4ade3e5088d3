//! Workload clients: simulated ZooKeeper sessions that speak the real wire protocol.
//!
//! A client behaves like the Java client's `ClientCnxn`: it opens a connection, sends a
//! `ConnectRequest` (a new session, or the one it holds with its password and the last zxid it
//! saw), pings after `timeout / 3` of silence, gives up on a connection after `2/3 timeout`
//! without a byte (`readTimeout`), and reconnects after a random back-off — to another server
//! once there are several. Requests are pipelined (up to `pipeline_max`) and replies must come
//! back in request order. A server that declares the session expired makes the client start a
//! new one, as an application would with a fresh `ZooKeeper` handle.
//!
//! Operations come from a weighted mix over a small key space (`/k0 .. /kN` and children
//! `/kI/c0 .. c3`, sequential `/kI/s-…`) so that creates collide, versions conflict and deletes
//! race. Every written value is unique (`c<client>-<n>`), so a read reveals which write it saw.
//! Every operation and observation goes to the [`History`]; nothing here judges correctness.
//!
//! A client listed in `WorkloadOptions::recipes` runs a ZooKeeper recipe instead of the mix
//! (`recipes.rs`: lock, leader election, FIFO queue): the recipe picks each request, one at a
//! time, and hears every reply, notification, disconnect and session expiry; what it comes to
//! believe goes to the history as recipe notes.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;
use ensemble::core::ids::{ConnId, ServerId, SessionId};
use ensemble::wire::proto::{
    ConnectRequest, CreateKind, CreateRequest, MultiOp, OpResult, Request, Response,
};
use ensemble::wire::types::{Acl, AddWatchMode, ErrorCode, OpCode, Stat};
use ensemble::wire::{self, DecodeError, XID_NOTIFICATION, XID_PING};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::history::{
    Anomaly, AnomalyKind, Channel, Entry, History, Notification, OpId, OpOutcome, UnknownReason,
};
use crate::options::WorkloadOptions;
use crate::recipes::{Input, Recipe, RecipeEvent, RecipeNote};
use crate::rng;
use crate::time::SimTime;
use crate::trace::{CloseReason, Trace, TraceEvent};

/// A workload client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The kinds of operation in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// Persistent create (create or create2).
    Create,
    /// Ephemeral create.
    CreateEphemeral,
    /// Persistent sequential create.
    CreateSequential,
    /// Ephemeral sequential create.
    CreateEphemeralSequential,
    /// setData, any version.
    SetData,
    /// setData with the version last seen.
    SetDataVersioned,
    /// delete, any version.
    Delete,
    /// delete with the version last seen.
    DeleteVersioned,
    /// getData, maybe with a watch.
    GetData,
    /// exists, maybe with a watch.
    Exists,
    /// getChildren / getChildren2, maybe with a watch.
    GetChildren,
    /// sync.
    Sync,
    /// multi of 2-3 ops (create, setData, delete, check).
    Multi,
    /// closeSession (the client then starts a new session).
    CloseSession,
    /// addWatch, persistent or persistent-recursive (not in [`OpKind::ALL`]: its weight is
    /// drawn after every other option, so that adding it left older seeds' options alone).
    AddWatch,
}

impl OpKind {
    /// Every kind, in mix order.
    pub const ALL: [OpKind; 14] = [
        OpKind::Create,
        OpKind::CreateEphemeral,
        OpKind::CreateSequential,
        OpKind::CreateEphemeralSequential,
        OpKind::SetData,
        OpKind::SetDataVersioned,
        OpKind::Delete,
        OpKind::DeleteVersioned,
        OpKind::GetData,
        OpKind::Exists,
        OpKind::GetChildren,
        OpKind::Sync,
        OpKind::Multi,
        OpKind::CloseSession,
    ];

    /// The weight unit of a kind (closing sessions is rare, reads and writes common).
    pub fn base_weight(self) -> u32 {
        match self {
            OpKind::CloseSession => 1,
            OpKind::AddWatch => 2,
            OpKind::Sync | OpKind::Multi => 5,
            _ => 10,
        }
    }
}

/// What a client asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Open connection `conn` to `server`.
    Open {
        /// The new connection's id.
        conn: ConnId,
        /// The server.
        server: ServerId,
    },
    /// Send a length-prefixed frame.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Bytes,
    },
    /// Close the connection (the server sees it after what was sent before).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// What a client may touch while it runs.
pub struct ClientCtx<'a> {
    /// True time.
    pub now: SimTime,
    /// The workload RNG.
    pub rng: &'a mut ChaCha8Rng,
    /// Where observations go.
    pub history: &'a mut History,
    /// The trace.
    pub trace: &'a mut Trace,
    /// Actions for the driver, in order.
    pub actions: &'a mut Vec<ClientAction>,
    /// The run-wide connection id counter.
    pub conn_next: &'a mut u64,
    /// Client options.
    pub options: &'a WorkloadOptions,
    /// Whether clients may start new generated operations (off while draining).
    pub generate: bool,
}

impl ClientCtx<'_> {
    fn observe(&mut self, entry: Entry) {
        self.history.observe(self.now, entry);
        self.trace_last_entry();
    }

    fn trace_last_entry(&mut self) {
        let index = self.history.entries.len() as u32 - 1;
        self.trace.push(self.now, TraceEvent::History(index));
    }
}

/// One simulated ZooKeeper client.
#[derive(Debug)]
pub struct Client {
    id: ClientId,
    servers: Vec<ServerId>,
    server_next: usize,
    link: Link,
    session: Option<SessionCreds>,
    last_zxid_seen: i64,
    xid_next: i32,
    inflight: VecDeque<InFlight>,
    versions: BTreeMap<String, i32>,
    /// Sequential nodes this client created and has not deleted yet, oldest first: a client
    /// consumes its own, so the tree stays small however long a run lasts.
    sequentials: VecDeque<String>,
    next_op_at: SimTime,
    scripted: VecDeque<Request>,
    values_written: u64,
    /// A closeSession is in flight on the current connection.
    closing: bool,
    /// The recipe this client runs instead of the mix, if any.
    recipe: Option<Recipe>,
    /// Whether `recipe` was looked up in the options yet (it is, at the first wake).
    recipe_checked: bool,
    /// Persistent watches added on the current connection (capped: each one notifies the
    /// client of every change it covers for as long as the connection lives).
    persistent_watches: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Idle { retry_at: SimTime },
    Handshake { conn: ConnId, server: ServerId, deadline: SimTime },
    Live { conn: ConnId, server: ServerId, last_recv: SimTime, last_send: SimTime },
}

#[derive(Clone, Debug)]
struct SessionCreds {
    id: SessionId,
    password: Bytes,
    timeout_ms: i32,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    xid: i32,
    op: OpId,
    opcode: i32,
    /// The recipe sent it (and hears its reply).
    recipe: bool,
}

/// Children per key the workload uses.
const CHILDREN: u32 = 4;
/// Sequential nodes a client keeps before it must delete the oldest instead of creating more.
const SEQUENTIALS_MAX: usize = 8;
/// Persistent watches a client adds on one connection at most.
const PERSISTENT_WATCHES_MAX: u32 = 2;
/// Longest back-off between reconnects, ms.
const BACKOFF_MAX_MS: u64 = 1_000;

impl Client {
    /// A client that may connect to `servers` and makes its first attempt at `start`.
    pub fn new(
        id: ClientId,
        servers: Vec<ServerId>,
        start: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> Client {
        assert!(!servers.is_empty(), "a client needs a server");
        let server_next = rng.gen_range(0..servers.len());
        Client {
            id,
            servers,
            server_next,
            link: Link::Idle { retry_at: start },
            session: None,
            last_zxid_seen: 0,
            xid_next: 1,
            inflight: VecDeque::new(),
            versions: BTreeMap::new(),
            sequentials: VecDeque::new(),
            next_op_at: start,
            scripted: VecDeque::new(),
            values_written: 0,
            closing: false,
            recipe: None,
            recipe_checked: false,
            persistent_watches: 0,
        }
    }

    /// The client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The session it holds, if any.
    pub fn session(&self) -> Option<SessionId> {
        self.session.as_ref().map(|s| s.id)
    }

    /// The connection it currently uses, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match self.link {
            Link::Idle { .. } => None,
            Link::Handshake { conn, .. } | Link::Live { conn, .. } => Some(conn),
        }
    }

    /// Whether a session is established on a live connection.
    pub fn is_live(&self) -> bool {
        matches!(self.link, Link::Live { .. })
    }

    /// The recipe the client runs, if any.
    pub fn recipe(&self) -> Option<&Recipe> {
        self.recipe.as_ref()
    }

    /// Operations sent and not answered.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Queues a hand-picked request; it goes out once the session is live.
    pub fn submit(&mut self, request: Request) {
        self.scripted.push_back(request);
    }

    /// When the client next needs [`Client::on_wake`].
    pub fn wake_at(&self, options: &WorkloadOptions, generate: bool) -> Option<SimTime> {
        match &self.link {
            Link::Idle { retry_at } => Some(*retry_at),
            Link::Handshake { deadline, .. } => Some(*deadline),
            Link::Live { last_recv, last_send, .. } => {
                let timeout = self.timeout_ms(options);
                let read_deadline = last_recv.plus_ms(read_timeout_ms(timeout));
                let ping_at = last_send.plus_ms(ping_interval_ms(timeout));
                let mut wake = read_deadline.min(ping_at);
                if let Some(recipe) = &self.recipe {
                    if generate && self.inflight.is_empty() {
                        wake = wake.min(recipe.wake_at().unwrap_or(wake));
                    }
                } else if self.can_send_op(options, generate) {
                    wake = wake.min(self.next_op_at);
                }
                Some(wake)
            }
        }
    }

    /// Timers: reconnect, handshake and read timeouts, pings, next operation.
    pub fn on_wake(&mut self, ctx: &mut ClientCtx) {
        if !self.recipe_checked {
            self.recipe_checked = true;
            let recipes = &ctx.options.recipes;
            self.recipe =
                recipes.roles.get(&self.id).map(|&role| Recipe::new(role, self.id, recipes));
        }
        let now = ctx.now;
        match self.link.clone() {
            Link::Idle { retry_at } if now >= retry_at => self.connect(ctx),
            Link::Idle { .. } => {}
            Link::Handshake { conn, deadline, .. } => {
                if now >= deadline {
                    self.close(ctx, conn, CloseReason::HandshakeTimeout);
                }
            }
            Link::Live { conn, last_recv, last_send, server } => {
                let timeout = self.timeout_ms(ctx.options);
                if now >= last_recv.plus_ms(read_timeout_ms(timeout)) {
                    self.close(ctx, conn, CloseReason::ReadTimeout);
                    return;
                }
                self.send_ops(ctx, conn, server);
                if let Link::Live { last_send: sent, .. } = self.link {
                    if sent == last_send && now >= last_send.plus_ms(ping_interval_ms(timeout)) {
                        let frame = wire::encode_request(XID_PING, &Request::Ping);
                        self.send(ctx, conn, frame);
                    }
                }
            }
        }
    }

    /// A frame arrived from the server on `conn`.
    pub fn on_frame(&mut self, ctx: &mut ClientCtx, conn: ConnId, frame: Bytes) {
        if self.conn() != Some(conn) {
            return; // a straggler from a connection we already gave up on
        }
        let Some(payload) = strip_length(&frame) else {
            self.anomaly(
                ctx,
                conn,
                "frame length",
                DecodeError::Invalid { offset: 0, what: "bad length prefix" },
            );
            return;
        };
        match self.link.clone() {
            Link::Handshake { server, .. } => self.on_connect_response(ctx, conn, server, payload),
            Link::Live { server, .. } => {
                if let Link::Live { last_recv, .. } = &mut self.link {
                    *last_recv = ctx.now;
                }
                self.on_reply(ctx, conn, server, payload);
            }
            Link::Idle { .. } => {}
        }
    }

    /// The connection closed or was reset under the client.
    pub fn on_closed(&mut self, ctx: &mut ClientCtx, conn: ConnId) {
        if self.conn() != Some(conn) {
            return;
        }
        self.drop_link(ctx, conn, UnknownReason::Disconnected);
    }

    /// The fault injector makes the client drop its connection.
    pub fn disconnect(&mut self, ctx: &mut ClientCtx) {
        if let Some(conn) = self.conn() {
            self.close(ctx, conn, CloseReason::Fault);
        }
    }

    // ------------------------------------------------------------------ connection

    /// The network took connection `conn` to `server` instead of the member the client named.
    pub fn rerouted(&mut self, conn: ConnId, server: ServerId) {
        if let Link::Handshake { conn: c, server: s, .. } = &mut self.link {
            if *c == conn {
                *s = server;
            }
        }
    }

    fn connect(&mut self, ctx: &mut ClientCtx) {
        let conn = ConnId(*ctx.conn_next);
        *ctx.conn_next += 1;
        let server = self.servers[self.server_next % self.servers.len()];
        self.server_next = (self.server_next + 1) % self.servers.len();
        ctx.actions.push(ClientAction::Open { conn, server });
        let (session_id, password, timeout_ms) = match &self.session {
            Some(s) => (s.id, s.password.clone(), s.timeout_ms),
            None => (SessionId(0), Bytes::from_static(&[0; 16]), ctx.options.session_timeout_ms),
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid_seen,
            timeout_ms,
            session_id: session_id.0,
            password,
            read_only: Some(false),
        };
        ctx.trace.push(
            ctx.now,
            TraceEvent::Connect {
                client: self.id,
                conn,
                session: session_id,
                last_zxid: self.last_zxid_seen,
            },
        );
        ctx.actions
            .push(ClientAction::Send { conn, frame: wire::encode_connect_request(&request) });
        // ZK compat: ClientCnxn's connectTimeout = sessionTimeout / number of servers.
        let connect_timeout = (timeout_ms.max(1) as u64) / self.servers.len() as u64;
        let deadline = ctx.now.plus_ms(connect_timeout.max(1));
        self.link = Link::Handshake { conn, server, deadline };
        self.persistent_watches = 0;
    }

    fn on_connect_response(
        &mut self,
        ctx: &mut ClientCtx,
        conn: ConnId,
        server: ServerId,
        payload: Bytes,
    ) {
        let response = match wire::decode_connect_response(&payload) {
            Ok(response) => response,
            Err(error) => {
                self.anomaly(ctx, conn, "ConnectResponse", error);
                return;
            }
        };
        if response.timeout_ms <= 0 {
            // ZK compat: ClientCnxn.onConnected — a non-positive timeout means the session
            // expired; the application must start over with a new session.
            if let Some(lost) = self.session.take() {
                ctx.observe(Entry::SessionExpired { client: self.id, session: lost.id });
                self.recipe_input(ctx, Input::SessionExpired, lost.id);
            }
            self.close(ctx, conn, CloseReason::SessionExpired);
            self.link = Link::Idle { retry_at: ctx.now };
            return;
        }
        let id = SessionId(response.session_id);
        let created = self.session.as_ref().is_none_or(|s| s.id != id);
        self.session =
            Some(SessionCreds { id, password: response.password, timeout_ms: response.timeout_ms });
        self.link = Link::Live { conn, server, last_recv: ctx.now, last_send: ctx.now };
        ctx.observe(Entry::Connected { client: self.id, session: id, server, conn, created });
        self.send_ops(ctx, conn, server);
    }

    /// Closes our end: in-flight operations become unknown, the back-off starts.
    fn close(&mut self, ctx: &mut ClientCtx, conn: ConnId, why: CloseReason) {
        ctx.trace.push(ctx.now, TraceEvent::ClientClose { client: self.id, conn, why });
        ctx.actions.push(ClientAction::Close { conn });
        let reason = match why {
            CloseReason::ReadTimeout | CloseReason::HandshakeTimeout => UnknownReason::Timeout,
            _ => UnknownReason::Disconnected,
        };
        self.drop_link(ctx, conn, reason);
    }

    fn drop_link(&mut self, ctx: &mut ClientCtx, conn: ConnId, reason: UnknownReason) {
        for inflight in std::mem::take(&mut self.inflight) {
            ctx.history.complete(ctx.now, inflight.op, OpOutcome::Unknown(reason));
            ctx.trace_last_entry();
        }
        ctx.observe(Entry::Disconnected { client: self.id, conn });
        let session = self.session.as_ref().map_or(SessionId(0), |s| s.id);
        self.recipe_input(ctx, Input::Disconnected, session);
        self.closing = false;
        let backoff = rng::between(ctx.rng, 10, BACKOFF_MAX_MS);
        self.link = Link::Idle { retry_at: ctx.now.plus_ms(backoff) };
    }

    fn anomaly(
        &mut self,
        ctx: &mut ClientCtx,
        conn: ConnId,
        record: &'static str,
        error: DecodeError,
    ) {
        let what = AnomalyKind::Undecodable { record, error: error.to_string() };
        self.record_anomaly(ctx, conn, what);
    }

    fn record_anomaly(&mut self, ctx: &mut ClientCtx, conn: ConnId, what: AnomalyKind) {
        ctx.history.anomaly(Anomaly { client: self.id, conn, at: ctx.now, what });
        ctx.trace_last_entry();
        self.close(ctx, conn, CloseReason::Anomaly);
    }

    // ------------------------------------------------------------------ replies

    fn on_reply(&mut self, ctx: &mut ClientCtx, conn: ConnId, server: ServerId, payload: Bytes) {
        let (header, body) = match wire::decode_reply_header(&payload) {
            Ok(decoded) => decoded,
            Err(error) => return self.anomaly(ctx, conn, "ReplyHeader", error),
        };
        let session = self.session.as_ref().map_or(SessionId(0), |s| s.id);
        match header.xid {
            XID_NOTIFICATION => match wire::decode_notification(body) {
                Ok(event) => {
                    ctx.history.notify(Notification {
                        client: self.id,
                        session,
                        conn,
                        zxid: header.zxid,
                        event: event.clone(),
                        at: ctx.now,
                    });
                    ctx.trace_last_entry();
                    if self.recipe.is_some() {
                        self.recipe_input(ctx, Input::Watch(&event), session);
                        self.send_ops(ctx, conn, server);
                    }
                }
                Err(error) => self.anomaly(ctx, conn, "WatcherEvent", error),
            },
            XID_PING => {
                ctx.observe(Entry::Pong { client: self.id, session, conn, zxid: header.zxid })
            }
            xid => {
                let Some(front) = self.inflight.front().copied().filter(|f| f.xid == xid) else {
                    let expected = self.inflight.front().map(|f| f.xid);
                    return self.record_anomaly(
                        ctx,
                        conn,
                        AnomalyKind::UnexpectedXid { expected, got: xid },
                    );
                };
                self.inflight.pop_front();
                let outcome = if header.err != 0 {
                    OpOutcome::Fail { zxid: header.zxid, code: header.err }
                } else {
                    match wire::decode_response(front.opcode, body) {
                        Ok(response) => OpOutcome::Ok { zxid: header.zxid, response },
                        Err(error) => {
                            ctx.history.complete(
                                ctx.now,
                                front.op,
                                OpOutcome::Unknown(UnknownReason::Disconnected),
                            );
                            ctx.trace_last_entry();
                            return self.anomaly(ctx, conn, "response body", error);
                        }
                    }
                };
                // ZK compat: ClientCnxn.readResponse takes the zxid of every reply > 0.
                if header.zxid > 0 {
                    self.last_zxid_seen = header.zxid;
                }
                let request = ctx.history.op(front.op).request.clone();
                ctx.history.complete(ctx.now, front.op, outcome.clone());
                ctx.trace_last_entry();
                if front.recipe {
                    self.recipe_input(
                        ctx,
                        Input::Reply { request: &request, outcome: &outcome },
                        session,
                    );
                } else {
                    self.learn(request, &outcome);
                }
                self.after_reply(ctx, conn, server, header.err, &outcome, front.op);
            }
        }
    }

    fn after_reply(
        &mut self,
        ctx: &mut ClientCtx,
        conn: ConnId,
        server: ServerId,
        err: i32,
        outcome: &OpOutcome,
        op: OpId,
    ) {
        let closed_session = matches!(ctx.history.op(op).request, Request::CloseSession)
            && matches!(outcome, OpOutcome::Ok { .. });
        if err == ErrorCode::SessionExpired.code() || closed_session {
            if let Some(lost) = self.session.take() {
                if !closed_session {
                    ctx.observe(Entry::SessionExpired { client: self.id, session: lost.id });
                }
                self.recipe_input(ctx, Input::SessionExpired, lost.id);
            }
            self.close(ctx, conn, CloseReason::SessionExpired);
            return;
        }
        self.send_ops(ctx, conn, server);
    }

    /// Remembers versions seen, for conditional operations.
    fn learn(&mut self, request: Request, outcome: &OpOutcome) {
        let OpOutcome::Ok { response, .. } = outcome else { return };
        let mut seen = |path: &str, stat: &Stat| {
            self.versions.insert(path.to_string(), stat.version);
        };
        match (&request, response) {
            (Request::GetData { path, .. }, Response::GetData { stat, .. })
            | (Request::Exists { path, .. }, Response::Stat(stat))
            | (Request::SetData { path, .. }, Response::Stat(stat)) => seen(path, stat),
            (Request::Create(..), Response::Create2 { path, stat }) => {
                seen(path, stat);
                self.remember_sequential(path);
            }
            (Request::Create(..), Response::Create { path }) => self.remember_sequential(path),
            (Request::Delete { path, .. }, _) => {
                self.versions.remove(path);
                self.sequentials.retain(|p| p != path);
            }
            (Request::Multi(_), Response::Multi(results)) => {
                for result in results {
                    if let OpResult::Create2 { path, stat } = result {
                        self.versions.insert(path.clone(), stat.version);
                    }
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ requests

    fn can_send_op(&self, options: &WorkloadOptions, generate: bool) -> bool {
        // Like the Java client's close(), the workload sends nothing after a closeSession on its
        // connection; hand-scheduled requests go out regardless.
        self.inflight.len() < options.pipeline_max
            && (!self.scripted.is_empty() || (generate && !self.closing))
    }

    fn send_ops(&mut self, ctx: &mut ClientCtx, conn: ConnId, server: ServerId) {
        if self.recipe.is_some() {
            return self.send_recipe_ops(ctx, conn, server);
        }
        while self.is_live() && self.can_send_op(ctx.options, ctx.generate) {
            let Some(request) = self.scripted.pop_front().or_else(|| {
                (ctx.now >= self.next_op_at).then(|| self.generate(ctx.rng, ctx.options))
            }) else {
                return;
            };
            if !self.send_op(ctx, conn, server, request, false) {
                return;
            }
            let think = rng::exponential(ctx.rng, ctx.options.think_mean_ms * 1_000);
            self.next_op_at = ctx.now.plus_us(think);
        }
    }

    /// A recipe client sends hand-scheduled requests first, then its recipe's, one at a time.
    fn send_recipe_ops(&mut self, ctx: &mut ClientCtx, conn: ConnId, server: ServerId) {
        while self.is_live() && self.inflight.len() < ctx.options.pipeline_max {
            let Some(session) = self.session.as_ref().map(|s| s.id) else { return };
            if let Some(request) = self.scripted.pop_front() {
                self.send_op(ctx, conn, server, request, false);
                continue;
            }
            if !ctx.generate || !self.inflight.is_empty() {
                return;
            }
            let mut notes = Vec::new();
            let recipe = self.recipe.as_mut().expect("only recipe clients get here");
            let next = recipe.next_request(ctx.now, ctx.rng, &mut notes);
            self.record_notes(ctx, notes, session);
            let Some(request) = next else { return };
            self.send_op(ctx, conn, server, request, true);
        }
    }

    fn send_op(
        &mut self,
        ctx: &mut ClientCtx,
        conn: ConnId,
        server: ServerId,
        request: Request,
        recipe: bool,
    ) -> bool {
        let Some(session) = self.session.as_ref().map(|s| s.id) else { return false };
        let xid = self.xid_next;
        self.xid_next = self.xid_next.wrapping_add(1).max(1);
        let frame = wire::encode_request(xid, &request);
        let opcode = request.opcode().code();
        let channel = Channel { client: self.id, session, server, conn };
        let op = ctx.history.invoke(ctx.now, channel, xid, request);
        ctx.trace_last_entry();
        self.closing = opcode == OpCode::CloseSession.code();
        self.inflight.push_back(InFlight { xid, op, opcode, recipe });
        self.send(ctx, conn, frame);
        true
    }

    /// Hands `input` to the recipe, if the client runs one, and records what it came to
    /// believe under `session`.
    fn recipe_input(&mut self, ctx: &mut ClientCtx, input: Input, session: SessionId) {
        let Some(recipe) = self.recipe.as_mut() else { return };
        let mut notes = Vec::new();
        recipe.on(ctx.now, ctx.rng, input, &mut notes);
        self.record_notes(ctx, notes, session);
    }

    fn record_notes(&mut self, ctx: &mut ClientCtx, notes: Vec<RecipeEvent>, session: SessionId) {
        let Some(recipe) = self.recipe.as_ref() else { return };
        for event in notes {
            let note =
                RecipeNote { client: self.id, session, role: recipe.role(), at: ctx.now, event };
            ctx.history.recipe(note);
            ctx.trace_last_entry();
        }
    }

    fn send(&mut self, ctx: &mut ClientCtx, conn: ConnId, frame: Bytes) {
        ctx.actions.push(ClientAction::Send { conn, frame });
        if let Link::Live { last_send, .. } = &mut self.link {
            *last_send = ctx.now;
        }
    }

    fn timeout_ms(&self, options: &WorkloadOptions) -> i32 {
        self.session.as_ref().map_or(options.session_timeout_ms, |s| s.timeout_ms)
    }

    /// Picks the next operation from the mix.
    fn generate(&mut self, rng: &mut ChaCha8Rng, options: &WorkloadOptions) -> Request {
        let total: u32 = options.mix.iter().map(|(_, w)| w).sum();
        let mut draw = rng.gen_range(0..total.max(1));
        let mut kind = OpKind::GetData;
        for (k, weight) in &options.mix {
            if draw < *weight {
                kind = *k;
                break;
            }
            draw -= weight;
        }
        let sequential =
            matches!(kind, OpKind::CreateSequential | OpKind::CreateEphemeralSequential);
        let deletes = matches!(kind, OpKind::Delete | OpKind::DeleteVersioned);
        if (sequential && self.sequentials.len() >= SEQUENTIALS_MAX)
            || (deletes && !self.sequentials.is_empty() && rng.gen_bool(0.5))
        {
            let path = self.sequentials.pop_front().expect("checked non-empty");
            return Request::Delete { path, version: -1 };
        }
        let keys = options.keys.max(1);
        let key = |rng: &mut ChaCha8Rng| format!("/k{}", rng.gen_range(0..keys));
        let child = |rng: &mut ChaCha8Rng| {
            format!("/k{}/c{}", rng.gen_range(0..keys), rng.gen_range(0..CHILDREN))
        };
        let any = |rng: &mut ChaCha8Rng| if rng.gen_bool(0.5) { key(rng) } else { child(rng) };
        let create = |path: String, data: Option<Bytes>, flags: i32, rng: &mut ChaCha8Rng| {
            let kind = if rng.gen_bool(0.5) { CreateKind::Create } else { CreateKind::Create2 };
            Request::Create(
                kind,
                CreateRequest { path, data, acl: Acl::open_unsafe(), flags, ttl: None },
            )
        };
        match kind {
            OpKind::Create => {
                let path = any(rng);
                let data = self.value(rng);
                create(path, data, 0, rng)
            }
            OpKind::CreateEphemeral => {
                let path = any(rng);
                let data = self.value(rng);
                create(path, data, 1, rng)
            }
            OpKind::CreateSequential | OpKind::CreateEphemeralSequential => {
                let path = format!("{}/s-", key(rng));
                let data = self.value(rng);
                let flags = if kind == OpKind::CreateSequential { 2 } else { 3 };
                create(path, data, flags, rng)
            }
            OpKind::SetData => {
                let path = any(rng);
                Request::SetData { path, data: self.value(rng), version: -1 }
            }
            OpKind::SetDataVersioned => {
                let path = any(rng);
                let version = self.version_guess(&path, rng);
                Request::SetData { path, data: self.value(rng), version }
            }
            OpKind::Delete => Request::Delete { path: any(rng), version: -1 },
            OpKind::DeleteVersioned => {
                let path = any(rng);
                let version = self.version_guess(&path, rng);
                Request::Delete { path, version }
            }
            OpKind::GetData => Request::GetData { path: any(rng), watch: rng.gen_bool(0.5) },
            OpKind::Exists => Request::Exists { path: any(rng), watch: rng.gen_bool(0.5) },
            OpKind::GetChildren => {
                let path = if rng.gen_bool(0.2) { "/".to_string() } else { key(rng) };
                Request::GetChildren {
                    path,
                    watch: rng.gen_bool(0.5),
                    with_stat: rng.gen_bool(0.5),
                }
            }
            OpKind::Sync => Request::Sync { path: key(rng) },
            OpKind::Multi => {
                let count = rng.gen_range(2..=3);
                let ops = (0..count).map(|_| self.multi_op(rng, &key, &child)).collect();
                Request::Multi(ops)
            }
            OpKind::CloseSession => Request::CloseSession,
            OpKind::AddWatch if self.persistent_watches >= PERSISTENT_WATCHES_MAX => {
                Request::GetData { path: any(rng), watch: true }
            }
            OpKind::AddWatch => {
                self.persistent_watches += 1;
                // Not recursive on "/": every change would notify every such connection.
                let recursive = rng.gen_bool(0.5);
                let path = if recursive { key(rng) } else { any(rng) };
                let mode = if recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                };
                Request::AddWatch { path, mode: mode.code() }
            }
        }
    }

    fn multi_op(
        &mut self,
        rng: &mut ChaCha8Rng,
        key: &dyn Fn(&mut ChaCha8Rng) -> String,
        child: &dyn Fn(&mut ChaCha8Rng) -> String,
    ) -> MultiOp {
        match rng.gen_range(0..4) {
            0 => {
                let kind = if rng.gen_bool(0.5) { CreateKind::Create } else { CreateKind::Create2 };
                let path = child(rng);
                let data = self.value(rng);
                MultiOp::Create(
                    kind,
                    CreateRequest { path, data, acl: Acl::open_unsafe(), flags: 0, ttl: None },
                )
            }
            1 => {
                let path = key(rng);
                let version = if rng.gen_bool(0.5) { -1 } else { self.version_guess(&path, rng) };
                MultiOp::SetData { path, data: self.value(rng), version }
            }
            2 => MultiOp::Delete { path: child(rng), version: -1 },
            _ => {
                let path = key(rng);
                let version = self.version_guess(&path, rng);
                MultiOp::Check { path, version }
            }
        }
    }

    fn remember_sequential(&mut self, path: &str) {
        if path.contains("/s-") && self.sequentials.len() < 4 * SEQUENTIALS_MAX {
            self.sequentials.push_back(path.to_string());
        }
    }

    /// The version last seen for `path`, or a small guess.
    fn version_guess(&self, path: &str, rng: &mut ChaCha8Rng) -> i32 {
        match self.versions.get(path) {
            Some(v) if rng.gen_bool(0.8) => *v,
            _ => rng.gen_range(0..3),
        }
    }

    /// A value no other write uses (one in ten is ZooKeeper's null data).
    fn value(&mut self, rng: &mut ChaCha8Rng) -> Option<Bytes> {
        self.values_written += 1;
        if rng.gen_bool(0.1) {
            return None;
        }
        Some(Bytes::from(format!("c{}-{}", self.id.0, self.values_written)))
    }
}

/// ZK compat: `ClientCnxn`'s readTimeout is 2/3 of the negotiated session timeout.
fn read_timeout_ms(timeout_ms: i32) -> u64 {
    (timeout_ms.max(3) as u64) * 2 / 3
}

/// ZK compat: a ping goes out after half the read timeout without sending.
fn ping_interval_ms(timeout_ms: i32) -> u64 {
    (read_timeout_ms(timeout_ms) / 2).max(1)
}

/// The payload of a length-prefixed frame, if the prefix matches.
pub fn strip_length(frame: &Bytes) -> Option<Bytes> {
    let prefix: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    let len = i32::from_be_bytes(prefix);
    (len >= 0 && len as usize == frame.len() - 4).then(|| frame.slice(4..))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::options::Options;

    #[test]
    fn strip_length_checks_the_prefix() {
        assert_eq!(
            strip_length(&Bytes::from_static(&[0, 0, 0, 2, 7, 8])),
            Some(Bytes::from_static(&[7, 8]))
        );
        assert_eq!(strip_length(&Bytes::from_static(&[0, 0, 0, 3, 7, 8])), None);
        assert_eq!(strip_length(&Bytes::from_static(&[0, 0])), None);
    }

    #[test]
    fn timeouts_follow_the_java_client() {
        assert_eq!(read_timeout_ms(30_000), 20_000);
        assert_eq!(ping_interval_ms(30_000), 10_000);
    }

    #[test]
    fn the_mix_produces_every_enabled_kind_and_unique_values() {
        let options = Options::from_seed(3).workload;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut client = Client::new(ClientId(1), vec![ServerId(0)], SimTime::ZERO, &mut rng);
        let mut values = std::collections::BTreeSet::new();
        let mut writes = 0;
        for _ in 0..500 {
            let request = client.generate(&mut rng, &options);
            if let Request::SetData { data: Some(d), .. } = &request {
                assert!(values.insert(d.clone()), "value {d:?} written twice");
                writes += 1;
            }
        }
        assert!(writes > 0);
    }
}
