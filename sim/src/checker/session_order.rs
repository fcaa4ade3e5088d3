//! A session's view never goes back in time, and replies come in request order.
//!
//! ZooKeeper promises each session FIFO order and a single system image: a reply never
//! carries a zxid below one the session already got in a reply, even across reconnects to
//! another server (the ConnectRequest carries `last_zxid_seen`, and a server behind it must
//! refuse). Within one connection everything — replies, ping replies, notifications — comes
//! from one server in order, so its zxids never decrease. Ping replies and notifications do
//! not raise the session's floor across connections: the Java client does not take their zxid
//! as `lastZxid`, so a server behind them may legitimately take the session over. Replies on
//! one connection come back in request order; the client records any reply that does not
//! match its oldest outstanding request as an anomaly, and any undecodable frame too. Negative
//! zxids (ZooKeeper's "no zxid", e.g. -1 with `Unimplemented`) carry no order and are skipped.
//!
//! Read-your-writes is the special case the violation names on its own: when the floor a reply
//! went below was set by the session's own write, the session failed to see its write.

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::{ConnId, SessionId};

use crate::history::{AnomalyKind, Entry, History, OpId, OpOutcome};
use crate::time::SimTime;
use crate::workload::ClientId;

/// A session that saw time go backwards, or a protocol anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderViolation {
    /// A zxid lower than one the session had already seen.
    ZxidWentBack {
        /// The client.
        client: ClientId,
        /// The session.
        session: SessionId,
        /// The highest zxid seen before.
        previous: i64,
        /// The lower zxid seen now.
        zxid: i64,
        /// When.
        at: SimTime,
        /// In what (`reply to op #3`, `ping reply`, `notification`).
        what: String,
    },
    /// A reply after the session's own write carried a zxid below that write's: the session
    /// did not see its own write.
    StaleAfterOwnWrite {
        /// The client.
        client: ClientId,
        /// The session.
        session: SessionId,
        /// The write.
        write: OpId,
        /// Its zxid.
        write_zxid: i64,
        /// The reply that went back, and what it answered.
        what: String,
        /// Its zxid.
        zxid: i64,
        /// When.
        at: SimTime,
    },
    /// The client saw something a correct server never sends.
    Anomaly {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// When.
        at: SimTime,
        /// What.
        what: AnomalyKind,
    },
}

/// What a zxid arrived in; written out only for a violation (most entries are fine).
enum What {
    Reply(OpId),
    Ping,
    Notify(u32),
}

impl What {
    fn describe(&self, history: &History) -> String {
        match self {
            What::Reply(id) => format!("reply to op #{}", id.0),
            What::Ping => "ping reply".to_string(),
            What::Notify(index) => {
                format!("notification {}", history.notifications[*index as usize].event.path)
            }
        }
    }
}

/// Checks every session's zxids and every recorded anomaly.
pub fn check(history: &History) -> Vec<OrderViolation> {
    let mut violations = Vec::new();
    // The floor a session's replies may not go below (with the write that set it, if one
    // did), and the last zxid of each connection.
    let mut floor: BTreeMap<SessionId, (i64, Option<OpId>)> = BTreeMap::new();
    let mut on_conn: BTreeMap<ConnId, i64> = BTreeMap::new();
    for (at, entry) in &history.entries {
        let (client, session, conn, zxid, reply, what) = match entry {
            Entry::Return(id) => {
                let op = history.op(*id);
                let zxid = match op.outcome {
                    OpOutcome::Ok { zxid, .. } | OpOutcome::Fail { zxid, .. } => zxid,
                    _ => continue,
                };
                let write = op.is_write().then_some(*id);
                (op.client, op.session, op.conn, zxid, Some(write), What::Reply(*id))
            }
            Entry::Pong { client, session, conn, zxid } => {
                (*client, *session, *conn, *zxid, None, What::Ping)
            }
            Entry::Notify(index) => {
                let n = &history.notifications[*index as usize];
                (n.client, n.session, n.conn, n.zxid, None, What::Notify(*index))
            }
            Entry::Anomaly(index) => {
                let a = &history.anomalies[*index as usize];
                violations.push(OrderViolation::Anomaly {
                    client: a.client,
                    conn: a.conn,
                    at: a.at,
                    what: a.what.clone(),
                });
                continue;
            }
            _ => continue,
        };
        if zxid < 0 {
            continue;
        }
        let (session_floor, set_by) = floor.get(&session).copied().unwrap_or((0, None));
        let conn_last = on_conn.get(&conn).copied().unwrap_or(0);
        let previous = session_floor.max(conn_last);
        if zxid < previous {
            let what = what.describe(history);
            let violation = match set_by {
                Some(write) if zxid < session_floor && reply.is_some() => {
                    OrderViolation::StaleAfterOwnWrite {
                        client,
                        session,
                        write,
                        write_zxid: session_floor,
                        what,
                        zxid,
                        at: *at,
                    }
                }
                _ => {
                    OrderViolation::ZxidWentBack { client, session, previous, zxid, at: *at, what }
                }
            };
            violations.push(violation);
            continue;
        }
        on_conn.insert(conn, zxid);
        if let Some(write) = reply {
            floor.insert(session, (zxid, write));
        }
    }
    violations
}

impl fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderViolation::ZxidWentBack { client, session, previous, zxid, at, what } => write!(
                f,
                "{client} session {session} at {at}: {what} has zxid {zxid:#x} after it saw \
                 {previous:#x}"
            ),
            OrderViolation::StaleAfterOwnWrite {
                client,
                session,
                write,
                write_zxid,
                what,
                zxid,
                at,
            } => write!(
                f,
                "{client} session {session} at {at}: {what} has zxid {zxid:#x}, below its own \
                 write op #{} at {write_zxid:#x} (read-your-writes)",
                write.0
            ),
            OrderViolation::Anomaly { client, conn, at, what } => {
                write!(f, "{client} on {conn} at {at}: {what:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::wire::proto::{Request, Response};

    use super::*;
    use crate::checker::fixtures::*;
    use crate::history::Anomaly;

    fn read(history: &mut History, at_ms: u64, c: u32, xid: i32, zxid: u64) {
        let request = Request::Exists { path: "/a".into(), watch: false };
        op(history, at_ms, c, xid, request, ok(zxid, Response::Stat(Default::default())));
    }

    #[test]
    fn increasing_zxids_pass_and_sessions_are_independent() {
        let mut history = History::new();
        read(&mut history, 1, 0, 1, 5);
        read(&mut history, 2, 1, 1, 2);
        read(&mut history, 3, 0, 2, 5);
        read(&mut history, 4, 0, 3, 9);
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn a_zxid_going_back_is_flagged() {
        let mut history = History::new();
        read(&mut history, 1, 0, 1, 5);
        let c = channel(0);
        history.observe(
            SimTime::from_ms(3),
            Entry::Pong { client: c.client, session: c.session, conn: c.conn, zxid: 4 },
        );
        let violations = check(&history);
        assert!(
            matches!(&violations[..], [OrderViolation::ZxidWentBack { previous: 5, zxid: 4, .. }]),
            "{violations:?}"
        );
    }

    #[test]
    fn pings_and_notifications_bind_only_their_connection() {
        let mut history = History::new();
        read(&mut history, 1, 0, 1, 5);
        let c = channel(0);
        history.observe(
            SimTime::from_ms(2),
            Entry::Pong { client: c.client, session: c.session, conn: c.conn, zxid: 9 },
        );
        // The client moves to a server at zxid 6 (behind the ping, not behind the reply).
        let moved = crate::history::Channel { conn: ConnId(77), ..c };
        let id = history.invoke(
            SimTime::from_ms(3),
            moved,
            2,
            Request::Exists { path: "/a".into(), watch: false },
        );
        history.complete(SimTime::from_ms(4), id, ok(6, Response::Stat(Default::default())));
        assert_eq!(check(&history), vec![]);
        // Going below the reply floor is still flagged.
        let id = history.invoke(
            SimTime::from_ms(5),
            crate::history::Channel { conn: ConnId(78), ..c },
            3,
            Request::Exists { path: "/a".into(), watch: false },
        );
        history.complete(SimTime::from_ms(6), id, ok(4, Response::Stat(Default::default())));
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn anomalies_are_reported() {
        let mut history = History::new();
        history.anomaly(Anomaly {
            client: ClientId(2),
            conn: ConnId(3),
            at: SimTime(1),
            what: AnomalyKind::UnexpectedXid { expected: Some(4), got: 5 },
        });
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn a_read_that_misses_the_sessions_own_write_is_flagged() {
        let mut history = History::new();
        let set = Request::SetData { path: "/a".into(), data: None, version: -1 };
        let write = op(&mut history, 1, 0, 1, set, ok(7, Response::Stat(Default::default())));
        // The client reconnects to a server at zxid 5 (it should have been refused).
        let c = channel(0);
        let moved = crate::history::Channel { conn: ConnId(50), ..c };
        let id = history.invoke(
            SimTime::from_ms(3),
            moved,
            2,
            Request::Exists { path: "/a".into(), watch: false },
        );
        history.complete(SimTime::from_ms(4), id, ok(5, Response::Stat(Default::default())));
        let violations = check(&history);
        assert!(
            matches!(
                &violations[..],
                [OrderViolation::StaleAfterOwnWrite { write: w, write_zxid: 7, zxid: 5, .. }]
                    if *w == write
            ),
            "{violations:?}"
        );
    }
}
