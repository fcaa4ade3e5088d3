//! The client-observed history: what every client asked, what it heard back, and when.
//!
//! Each operation is invoked once and completes at most once, as `Ok` (the reply header's zxid
//! and the decoded response), `Fail` (an error code and zxid) or `Unknown`. An operation whose
//! connection broke, whose client timed out, or that was still in flight when the run ended is
//! *unknown*, never failed: it may or may not have taken effect, and checkers must accept both.
//! Besides operations the history keeps, in arrival order per client, every watch notification,
//! ping reply, session establishment and protocol anomaly, so checkers can walk a session's
//! view of the world in the order the client saw it. Recipe clients add what they came to
//! believe (holding a lock, leading, producing or consuming an item) as [`RecipeNote`]s.

use std::fmt;

use ensemble::core::ids::{ConnId, ServerId, SessionId};
use ensemble::wire::proto::{Request, Response, WatcherEvent};
use ensemble::wire::types::{ErrorCode, EventType};

use crate::recipes::RecipeNote;
use crate::time::SimTime;
use crate::workload::ClientId;

/// Index of an operation in [`History::ops`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u32);

/// One client operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Its index.
    pub id: OpId,
    /// Who sent it.
    pub client: ClientId,
    /// The session it was sent in.
    pub session: SessionId,
    /// The server it was sent to.
    pub server: ServerId,
    /// The connection it was sent on.
    pub conn: ConnId,
    /// The request xid.
    pub xid: i32,
    /// The request itself.
    pub request: Request,
    /// When it was sent.
    pub invoked_at: SimTime,
    /// When its outcome became known (None while pending).
    pub completed_at: Option<SimTime>,
    /// What came of it.
    pub outcome: OpOutcome,
}

/// What came of an operation.
#[derive(Clone, Debug, PartialEq)]
pub enum OpOutcome {
    /// No answer yet.
    Pending,
    /// Success (a multi whose ops failed is `Ok` with error results, as on the wire).
    Ok {
        /// The reply header's zxid.
        zxid: i64,
        /// The decoded body.
        response: Response,
    },
    /// The server answered with an error.
    Fail {
        /// The reply header's zxid.
        zxid: i64,
        /// The error code.
        code: i32,
    },
    /// No answer will come: the operation may or may not have happened.
    Unknown(UnknownReason),
}

/// Why an operation's outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnknownReason {
    /// The connection closed or was reset before the reply.
    Disconnected,
    /// The client gave up waiting (no traffic for 2/3 of the session timeout).
    Timeout,
    /// The run ended first.
    RunEnded,
}

/// One happening in the order clients observed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An operation was sent.
    Invoke(OpId),
    /// An operation completed (ok, fail or unknown).
    Return(OpId),
    /// A watch notification arrived (index into [`History::notifications`]).
    Notify(u32),
    /// A ping reply arrived.
    Pong {
        /// The client.
        client: ClientId,
        /// Its session.
        session: SessionId,
        /// The connection.
        conn: ConnId,
        /// The reply header's zxid.
        zxid: i64,
    },
    /// A session was established on a connection.
    Connected {
        /// The client.
        client: ClientId,
        /// The session.
        session: SessionId,
        /// The server.
        server: ServerId,
        /// The connection.
        conn: ConnId,
        /// A new session (rather than a resumed one).
        created: bool,
    },
    /// A connection ended (any reason); its watches are gone.
    Disconnected {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
    },
    /// The server said the session is expired or unknown.
    SessionExpired {
        /// The client.
        client: ClientId,
        /// The lost session.
        session: SessionId,
    },
    /// The client saw something the protocol forbids (index into [`History::anomalies`]).
    Anomaly(u32),
    /// A recipe client came to believe something (index into [`History::recipes`]).
    Recipe(u32),
}

/// A watch notification as a client received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The client.
    pub client: ClientId,
    /// Its session.
    pub session: SessionId,
    /// The connection it came on.
    pub conn: ConnId,
    /// The reply header's zxid (the triggering txn).
    pub zxid: i64,
    /// The event.
    pub event: WatcherEvent,
    /// When it arrived.
    pub at: SimTime,
}

/// Something a client saw that a correct server never sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The client.
    pub client: ClientId,
    /// The connection.
    pub conn: ConnId,
    /// When.
    pub at: SimTime,
    /// What.
    pub what: AnomalyKind,
}

/// The kinds of protocol anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A reply whose xid is not that of the oldest outstanding request (replies must come in
    /// request order).
    UnexpectedXid {
        /// The xid the client waited for, if any.
        expected: Option<i32>,
        /// The xid that came.
        got: i32,
    },
    /// A frame that does not decode.
    Undecodable {
        /// Which record.
        record: &'static str,
        /// The decoder's complaint.
        error: String,
    },
}

/// Everything the clients observed.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every operation, by id.
    pub ops: Vec<Operation>,
    /// Every observation, in the order it happened (and with it, per-client order).
    pub entries: Vec<(SimTime, Entry)>,
    /// Watch notifications.
    pub notifications: Vec<Notification>,
    /// Protocol anomalies.
    pub anomalies: Vec<Anomaly>,
    /// What recipe clients came to believe (`recipes.rs`), in time order.
    pub recipes: Vec<RecipeNote>,
}

/// Where an operation was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The client.
    pub client: ClientId,
    /// Its session.
    pub session: SessionId,
    /// The server.
    pub server: ServerId,
    /// The connection.
    pub conn: ConnId,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records that `request` was sent with `xid` on `channel` at `at`.
    pub fn invoke(&mut self, at: SimTime, channel: Channel, xid: i32, request: Request) -> OpId {
        let id = OpId(self.ops.len() as u32);
        self.ops.push(Operation {
            id,
            client: channel.client,
            session: channel.session,
            server: channel.server,
            conn: channel.conn,
            xid,
            request,
            invoked_at: at,
            completed_at: None,
            outcome: OpOutcome::Pending,
        });
        self.entries.push((at, Entry::Invoke(id)));
        id
    }

    /// Records the outcome of a pending operation.
    pub fn complete(&mut self, at: SimTime, id: OpId, outcome: OpOutcome) {
        let op = &mut self.ops[id.0 as usize];
        assert_eq!(op.outcome, OpOutcome::Pending, "op {id:?} completed twice");
        assert!(outcome != OpOutcome::Pending, "completing op {id:?} with Pending");
        op.outcome = outcome;
        op.completed_at = Some(at);
        self.entries.push((at, Entry::Return(id)));
    }

    /// Records a notification.
    pub fn notify(&mut self, notification: Notification) {
        let at = notification.at;
        self.entries.push((at, Entry::Notify(self.notifications.len() as u32)));
        self.notifications.push(notification);
    }

    /// Records an observation that needs no side table.
    pub fn observe(&mut self, at: SimTime, entry: Entry) {
        self.entries.push((at, entry));
    }

    /// Records a protocol anomaly.
    pub fn anomaly(&mut self, anomaly: Anomaly) {
        let at = anomaly.at;
        self.entries.push((at, Entry::Anomaly(self.anomalies.len() as u32)));
        self.anomalies.push(anomaly);
    }

    /// Records what a recipe client came to believe.
    pub fn recipe(&mut self, note: RecipeNote) {
        self.entries.push((note.at, Entry::Recipe(self.recipes.len() as u32)));
        self.recipes.push(note);
    }

    /// Marks every still-pending operation unknown (the run is over).
    pub fn finish(&mut self, at: SimTime) {
        let pending: Vec<OpId> =
            self.ops.iter().filter(|op| op.outcome == OpOutcome::Pending).map(|op| op.id).collect();
        for id in pending {
            self.complete(at, id, OpOutcome::Unknown(UnknownReason::RunEnded));
        }
    }

    /// The operation with this id.
    pub fn op(&self, id: OpId) -> &Operation {
        &self.ops[id.0 as usize]
    }

    /// For every operation, by id, where its invocation and its return sit in
    /// [`History::entries`]. Positions order happenings exactly, even within one instant of
    /// simulated time: an operation whose return comes before another's invocation really
    /// completed before the other began (its client may have sent the second upon the reply).
    pub fn spans(&self) -> Vec<Span> {
        let mut spans = vec![Span { invoked: usize::MAX, returned: None }; self.ops.len()];
        for (position, (_, entry)) in self.entries.iter().enumerate() {
            match entry {
                Entry::Invoke(id) => spans[id.0 as usize].invoked = position,
                Entry::Return(id) => spans[id.0 as usize].returned = Some(position),
                _ => {}
            }
        }
        spans
    }
}

/// Where an operation's invocation and return sit in [`History::entries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Position of its `Invoke` entry.
    pub invoked: usize,
    /// Position of its `Return` entry (None while pending).
    pub returned: Option<usize>,
}

impl Operation {
    /// Whether the request changes state (and so takes a zxid when it succeeds).
    pub fn is_write(&self) -> bool {
        self.request.is_write()
    }
}

impl fmt::Display for OpOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpOutcome::Pending => write!(f, "pending"),
            OpOutcome::Ok { zxid, response } => write!(f, "ok zxid={zxid:#x} {}", brief(response)),
            OpOutcome::Fail { zxid, code } => {
                write!(f, "fail zxid={zxid:#x} {}", error_name(*code))
            }
            OpOutcome::Unknown(reason) => write!(f, "unknown ({reason:?})"),
        }
    }
}

/// The name of an error code (`NoNode`), or the number.
pub fn error_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(known) => format!("{known:?}"),
        None => code.to_string(),
    }
}

/// A one-line summary of a request.
pub fn describe_request(request: &Request) -> String {
    fn data(d: &Option<bytes::Bytes>) -> String {
        match d {
            None => "null".to_string(),
            Some(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
    match request {
        Request::Create(_, c) => format!("create {} {} flags={}", c.path, data(&c.data), c.flags),
        Request::Delete { path, version } => format!("delete {path} v={version}"),
        Request::SetData { path, data: d, version } => {
            format!("setData {path} {} v={version}", data(d))
        }
        Request::GetData { path, watch } => format!("getData {path}{}", watch_flag(*watch)),
        Request::Exists { path, watch } => format!("exists {path}{}", watch_flag(*watch)),
        Request::GetChildren { path, watch, .. } => {
            format!("getChildren {path}{}", watch_flag(*watch))
        }
        Request::Sync { path } => format!("sync {path}"),
        Request::Multi(ops) => format!("multi of {}", ops.len()),
        Request::CloseSession => "closeSession".to_string(),
        Request::AddWatch { path, mode } => format!("addWatch {path} mode={mode}"),
        other => format!("{other:?}"),
    }
}

fn watch_flag(watch: bool) -> &'static str {
    if watch {
        " watch"
    } else {
        ""
    }
}

fn brief(response: &Response) -> String {
    match response {
        Response::Create { path } | Response::Create2 { path, .. } => format!("path={path}"),
        Response::Stat(stat) => format!("version={}", stat.version),
        Response::GetData { data, stat } => format!(
            "data={} version={}",
            data.as_ref().map_or("null".into(), |d| String::from_utf8_lossy(d).into_owned()),
            stat.version
        ),
        Response::GetChildren { children } | Response::GetChildren2 { children, .. } => {
            format!("children={children:?}")
        }
        Response::Multi(results) => format!("{} results", results.len()),
        Response::Empty => String::new(),
        other => format!("{other:?}"),
    }
}

/// The event type name of a notification.
pub fn event_name(event_type: i32) -> String {
    match EventType::from_code(event_type) {
        Some(known) => format!("{known:?}"),
        None => event_type.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> Channel {
        Channel { client: ClientId(0), session: SessionId(9), server: ServerId(0), conn: ConnId(1) }
    }

    #[test]
    fn finish_turns_pending_into_unknown_never_failed() {
        let mut history = History::new();
        let a = history.invoke(SimTime(1), channel(), 1, Request::Sync { path: "/".into() });
        let b = history.invoke(SimTime(2), channel(), 2, Request::Sync { path: "/".into() });
        history.complete(SimTime(3), a, OpOutcome::Fail { zxid: 4, code: -101 });
        history.finish(SimTime(10));
        assert_eq!(history.op(b).outcome, OpOutcome::Unknown(UnknownReason::RunEnded));
        assert_eq!(history.op(a).outcome, OpOutcome::Fail { zxid: 4, code: -101 });
        assert_eq!(history.entries.len(), 4);
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn an_operation_completes_once() {
        let mut history = History::new();
        let a = history.invoke(SimTime(1), channel(), 1, Request::CloseSession);
        history.complete(SimTime(2), a, OpOutcome::Unknown(UnknownReason::Timeout));
        history.complete(SimTime(3), a, OpOutcome::Unknown(UnknownReason::Timeout));
    }
}
