//! One-shot watches fire at most once, in zxid order, and before the client sees newer state.
//!
//! The checker follows each connection's watches as the client saw them: a successful
//! `getData`/`exists` with `watch` arms a data watch (so does `exists` answered `NoNode`), a
//! successful `getChildren` with `watch` arms a child watch, each at the read's reply zxid. A
//! disconnect disarms everything of that connection (the client does not restore watches).
//! Then, per ZooKeeper's rules (`WatchManager`, protocol notes §7.3):
//! * a notification must match an armed watch — `NodeCreated`/`NodeDataChanged` a data watch,
//!   `NodeChildrenChanged` a child watch, `NodeDeleted` either — and disarms it: a second
//!   notification for the same registration is a violation;
//! * it must describe a real change: the committed log's replay produced that event at that
//!   zxid;
//! * a connection's notifications come in non-decreasing zxid order (across reconnects the
//!   next server may be behind the last one, as in ZooKeeper);
//! * once a watch is armed at zxid R, the client must get its notification before any reply
//!   with a zxid at or beyond the first triggering change (ZooKeeper sends the event before it
//!   answers anything that reflects the change).

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::ConnId;
use ensemble::core::tree::DataTree;
use ensemble::wire::proto::Request;
use ensemble::wire::types::{ErrorCode, EventType};

use crate::checker::Committed;
use crate::history::{self, Entry, History, OpOutcome};
use crate::workload::ClientId;

/// The kind of one-shot watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    /// getData / exists.
    Data,
    /// getChildren.
    Child,
}

/// A misbehaving watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchViolation {
    /// A notification with no armed watch to consume (fired twice, or never set).
    Unexpected {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// The notification's zxid.
        zxid: i64,
        /// Its event type.
        event_type: i32,
        /// Its path.
        path: String,
    },
    /// A notification for a change the committed log does not contain.
    Phantom {
        /// The client.
        client: ClientId,
        /// The notification's zxid.
        zxid: i64,
        /// Its event type.
        event_type: i32,
        /// Its path.
        path: String,
    },
    /// A notification older than one the connection already got.
    OutOfOrder {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// The newest zxid notified before.
        previous: i64,
        /// This notification's zxid.
        zxid: i64,
    },
    /// The client saw state at or after a change that should have fired its watch, without the
    /// notification.
    Missed {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// The watched path.
        path: String,
        /// The watch.
        kind: WatchKind,
        /// The zxid it was armed at.
        armed_at: i64,
        /// The change that should have fired it.
        change_zxid: u64,
        /// The zxid the client saw instead.
        seen_zxid: i64,
    },
}

/// Per path, the changes the committed log made: (zxid, event type).
type Changes = BTreeMap<String, Vec<(u64, EventType)>>;

/// Checks the notifications of `history` against the armed watches and `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<WatchViolation> {
    let changes = replay_changes(committed);
    let mut violations = Vec::new();
    let mut armed: BTreeMap<ConnId, BTreeMap<(String, WatchKind), i64>> = BTreeMap::new();
    let mut notified: BTreeMap<ConnId, i64> = BTreeMap::new();
    for (_, entry) in &history.entries {
        match entry {
            Entry::Return(id) => {
                let op = history.op(*id);
                let zxid = match &op.outcome {
                    OpOutcome::Ok { zxid, .. } | OpOutcome::Fail { zxid, .. } => *zxid,
                    _ => continue,
                };
                if let Some(watches) = armed.get_mut(&op.conn) {
                    missed(op.client, op.conn, watches, &changes, zxid, zxid, &mut violations);
                }
                if let Some((path, kind)) = arms(&op.request, &op.outcome) {
                    armed.entry(op.conn).or_default().entry((path, kind)).or_insert(zxid);
                }
            }
            Entry::Pong { client, conn, zxid, .. } => {
                if let Some(watches) = armed.get_mut(conn) {
                    missed(*client, *conn, watches, &changes, *zxid, *zxid, &mut violations);
                }
            }
            Entry::Notify(index) => {
                let n = &history.notifications[*index as usize];
                let path = n.event.path.clone();
                let last = notified.entry(n.conn).or_insert(n.zxid);
                if n.zxid < *last {
                    violations.push(WatchViolation::OutOfOrder {
                        client: n.client,
                        conn: n.conn,
                        previous: *last,
                        zxid: n.zxid,
                    });
                }
                *last = (*last).max(n.zxid);
                let event = EventType::from_code(n.event.event_type);
                let real = event.is_some_and(|e| {
                    changes.get(&path).is_some_and(|c| c.contains(&(n.zxid.max(0) as u64, e)))
                });
                if !real {
                    violations.push(WatchViolation::Phantom {
                        client: n.client,
                        zxid: n.zxid,
                        event_type: n.event.event_type,
                        path: path.clone(),
                    });
                }
                let watches = armed.entry(n.conn).or_default();
                // Changes before this notification's zxid must have been notified already.
                missed(n.client, n.conn, watches, &changes, n.zxid - 1, n.zxid, &mut violations);
                let consumed = event.map_or(&[][..], fired_kinds);
                let mut any = false;
                for kind in consumed {
                    any |= watches.remove(&(path.clone(), *kind)).is_some();
                }
                if !any {
                    violations.push(WatchViolation::Unexpected {
                        client: n.client,
                        conn: n.conn,
                        zxid: n.zxid,
                        event_type: n.event.event_type,
                        path,
                    });
                }
            }
            Entry::Disconnected { conn, .. } => {
                armed.remove(conn);
            }
            _ => {}
        }
    }
    violations
}

/// The watch a completed read leaves, if any.
fn arms(request: &Request, outcome: &OpOutcome) -> Option<(String, WatchKind)> {
    let ok = matches!(outcome, OpOutcome::Ok { .. });
    let no_node =
        matches!(outcome, OpOutcome::Fail { code, .. } if *code == ErrorCode::NoNode.code());
    match request {
        Request::GetData { path, watch: true } if ok => Some((path.clone(), WatchKind::Data)),
        // ZK compat: exists leaves a watch whether or not the node exists.
        Request::Exists { path, watch: true } if ok || no_node => {
            Some((path.clone(), WatchKind::Data))
        }
        Request::GetChildren { path, watch: true, .. } if ok => {
            Some((path.clone(), WatchKind::Child))
        }
        _ => None,
    }
}

/// The one-shot watches an event consumes on its path.
fn fired_kinds(event: EventType) -> &'static [WatchKind] {
    match event {
        EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data],
        EventType::NodeChildrenChanged => &[WatchKind::Child],
        EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Child],
        _ => &[],
    }
}

/// Flags (and disarms) every watch of `watches` whose first triggering change is at or before
/// `horizon`, given that the client now sees `seen`.
fn missed(
    client: ClientId,
    conn: ConnId,
    watches: &mut BTreeMap<(String, WatchKind), i64>,
    changes: &Changes,
    horizon: i64,
    seen: i64,
    violations: &mut Vec<WatchViolation>,
) {
    let mut fired = Vec::new();
    for ((path, kind), armed_at) in watches.iter() {
        let Some(path_changes) = changes.get(path) else { continue };
        let after = path_changes.partition_point(|(zxid, _)| *zxid as i64 <= *armed_at);
        let first =
            path_changes[after..].iter().find(|(_, event)| fired_kinds(*event).contains(kind));
        if let Some((change_zxid, _)) = first.filter(|(zxid, _)| *zxid as i64 <= horizon) {
            violations.push(WatchViolation::Missed {
                client,
                conn,
                path: path.clone(),
                kind: *kind,
                armed_at: *armed_at,
                change_zxid: *change_zxid,
                seen_zxid: seen,
            });
            fired.push((path.clone(), *kind));
        }
    }
    for key in fired {
        watches.remove(&key);
    }
}

/// Replays the log and collects, per path, every tree event with its zxid.
fn replay_changes(committed: &Committed) -> Changes {
    let mut changes = Changes::new();
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    for txn in committed.txns() {
        tree.apply(txn, &mut events);
        for event in events.drain(..) {
            changes.entry(event.path).or_default().push((txn.zxid.0, event.event_type));
        }
    }
    changes
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchViolation::Unexpected { client, conn, zxid, event_type, path } => write!(
                f,
                "{client} on {conn} got {} {path} at zxid {zxid:#x} without an armed watch \
                 (fired twice or never set)",
                history::event_name(*event_type)
            ),
            WatchViolation::Phantom { client, zxid, event_type, path } => write!(
                f,
                "{client} got {} {path} at zxid {zxid:#x}, a change the committed log does not make",
                history::event_name(*event_type)
            ),
            WatchViolation::OutOfOrder { client, conn, previous, zxid } => write!(
                f,
                "{client} on {conn} got a notification at {zxid:#x} after one at {previous:#x}"
            ),
            WatchViolation::Missed { client, conn, path, kind, armed_at, change_zxid, seen_zxid } => {
                write!(
                    f,
                    "{client} on {conn}: {kind:?} watch on {path} armed at {armed_at:#x} should \
                     have fired at {change_zxid:#x}, but the client saw {seen_zxid:#x} without it"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::ids::{ConnId, SessionId};
    use ensemble::wire::proto::{Request, Response, WatcherEvent};
    use ensemble::wire::types::{Stat, KEEPER_STATE_SYNC_CONNECTED};

    use super::*;
    use crate::checker::fixtures::*;
    use crate::history::Notification;
    use crate::time::SimTime;

    fn log() -> Committed {
        Committed::new(vec![
            create_txn(1, 0, 1, "/a", "x"),
            set_txn(2, 0, 2, "/a", "y", 1),
            set_txn(3, 0, 3, "/a", "z", 2),
        ])
    }

    fn watch_a(history: &mut History, zxid: u64) {
        let request = Request::GetData { path: "/a".into(), watch: true };
        let response = Response::GetData { data: None, stat: Stat::default() };
        op(history, zxid * 10, 1, zxid as i32, request, ok(zxid, response));
    }

    fn notify(history: &mut History, zxid: i64, event_type: EventType) {
        let c = channel(1);
        history.notify(Notification {
            client: c.client,
            session: c.session,
            conn: c.conn,
            zxid,
            event: WatcherEvent {
                event_type: event_type.code(),
                state: KEEPER_STATE_SYNC_CONNECTED,
                path: "/a".into(),
            },
            at: SimTime(zxid as u64 * 10_000 + 5),
        });
    }

    fn sync(history: &mut History, zxid: u64) {
        let request = Request::Sync { path: "/".into() };
        op(
            history,
            zxid * 10 + 5,
            1,
            100 + zxid as i32,
            request,
            ok(zxid, Response::Sync { path: "/".into() }),
        );
    }

    #[test]
    fn a_watch_that_fires_once_in_time_passes() {
        let mut history = History::new();
        watch_a(&mut history, 1);
        notify(&mut history, 2, EventType::NodeDataChanged);
        sync(&mut history, 3);
        assert_eq!(check(&history, &log()), vec![]);
    }

    #[test]
    fn a_watch_that_fires_twice_is_flagged() {
        let mut history = History::new();
        watch_a(&mut history, 1);
        notify(&mut history, 2, EventType::NodeDataChanged);
        notify(&mut history, 3, EventType::NodeDataChanged);
        let violations = check(&history, &log());
        assert!(
            matches!(&violations[..], [WatchViolation::Unexpected { zxid: 3, .. }]),
            "{violations:?}"
        );
    }

    #[test]
    fn a_missed_notification_is_flagged() {
        let mut history = History::new();
        watch_a(&mut history, 1);
        sync(&mut history, 3);
        let violations = check(&history, &log());
        assert!(
            matches!(
                &violations[..],
                [WatchViolation::Missed { change_zxid: 2, seen_zxid: 3, .. }]
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn a_phantom_or_out_of_order_notification_is_flagged() {
        let mut history = History::new();
        watch_a(&mut history, 1);
        notify(&mut history, 2, EventType::NodeDeleted);
        let violations = check(&history, &log());
        assert!(
            matches!(&violations[..], [WatchViolation::Phantom { zxid: 2, .. }]),
            "{violations:?}"
        );

        let mut history = History::new();
        watch_a(&mut history, 1);
        notify(&mut history, 3, EventType::NodeDataChanged);
        watch_a(&mut history, 3);
        notify(&mut history, 2, EventType::NodeDataChanged);
        let violations = check(&history, &log());
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, WatchViolation::OutOfOrder { previous: 3, zxid: 2, .. })),
            "{violations:?}"
        );
    }

    #[test]
    fn a_disconnect_disarms_the_connection() {
        let mut history = History::new();
        watch_a(&mut history, 1);
        history.observe(SimTime(15), Entry::Disconnected { client: ClientId(1), conn: ConnId(2) });
        sync(&mut history, 3);
        assert_eq!(check(&history, &log()), vec![]);
        let _ = SessionId(0);
    }
}
