//! One-shot watches fire at most once, in zxid order, and before the client sees newer state;
//! persistent watches deliver every change they cover.
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
//!   answers anything that reflects the change);
//! * a successful `addWatch` arms a persistent watch at its reply zxid (mode 0: data and child
//!   events of the path; mode 1, recursive: data events of the path and every descendant, no
//!   `NodeChildrenChanged`). It is never consumed: every change it covers after it was armed
//!   must reach the connection before the client sees a zxid at or past the change — missing
//!   one is a violation — and it justifies the notifications it covers;
//! * a connection gets each change at most once (ZooKeeper notifies a connection once per
//!   change, however many of its watches match), unless the txn made that change twice.

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::ConnId;
use ensemble::core::tree::DataTree;
use ensemble::wire::proto::Request;
use ensemble::wire::types::{AddWatchMode, ErrorCode, EventType};

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
    /// A persistent watch did not deliver a change it covers before the client saw state at
    /// or after it.
    PersistentMissed {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// The watched path.
        watch: String,
        /// Whether the watch is recursive.
        recursive: bool,
        /// The zxid it was armed at.
        armed_at: i64,
        /// The changed path.
        path: String,
        /// The change's event type.
        event_type: i32,
        /// The change.
        change_zxid: u64,
        /// The zxid the client saw instead.
        seen_zxid: i64,
    },
}

/// Per path, the changes the committed log made: (zxid, event type).
type Changes = BTreeMap<String, Vec<(u64, EventType)>>;

/// A persistent watch (addWatch) of one connection.
#[derive(Clone, Debug)]
struct Persistent<'c> {
    /// The watched path.
    path: String,
    /// The changes of that path (mode 0).
    own: &'c [(u64, EventType)],
    /// Mode 1: the path and every descendant, without child events.
    recursive: bool,
    /// The addWatch reply's zxid.
    armed_at: i64,
    /// The next change to check: an index into the path's changes (mode 0) or into the whole
    /// timeline (mode 1).
    next: usize,
}

impl Persistent<'_> {
    fn covers(&self, path: &str, event: EventType) -> bool {
        if self.recursive {
            event != EventType::NodeChildrenChanged && is_within(path, &self.path)
        } else {
            path == self.path
        }
    }
}

/// Whether `path` is `root` or below it.
fn is_within(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// What one connection has armed and received.
#[derive(Debug, Default)]
struct ConnWatches<'h> {
    /// One-shot watches: (path, kind) → (armed at, the first change that fires it).
    one_shot: BTreeMap<(String, WatchKind), (i64, Option<u64>)>,
    persistent: Vec<Persistent<'h>>,
    /// Notifications received: (zxid, path, event type) → how many.
    received: BTreeMap<(i64, &'h str, i32), u32>,
}

/// Checks the notifications of `history` against the armed watches and `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<WatchViolation> {
    let changes = replay_changes(committed);
    // Every change in zxid order, for recursive watches.
    let mut timeline: Vec<(u64, &str, EventType)> = changes
        .iter()
        .flat_map(|(path, list)| list.iter().map(move |(z, e)| (*z, path.as_str(), *e)))
        .collect();
    timeline.sort_by_key(|(zxid, _, _)| *zxid);
    // How often the log made `event` on `path` at `zxid` (a multi may make one twice).
    let occurrences = |zxid: i64, path: &str, event: EventType| -> u32 {
        let Some(list) = changes.get(path) else { return 0 };
        let from = list.partition_point(|(z, _)| (*z as i64) < zxid);
        let same = list[from..].iter().take_while(|(z, _)| *z as i64 == zxid);
        same.filter(|(_, e)| *e == event).count() as u32
    };
    let mut violations = Vec::new();
    let mut conns: BTreeMap<ConnId, ConnWatches> = BTreeMap::new();
    let mut notified: BTreeMap<ConnId, i64> = BTreeMap::new();
    for (_, entry) in &history.entries {
        match entry {
            Entry::Return(id) => {
                let op = history.op(*id);
                let zxid = match &op.outcome {
                    OpOutcome::Ok { zxid, .. } | OpOutcome::Fail { zxid, .. } => *zxid,
                    _ => continue,
                };
                if let Some(watches) = conns.get_mut(&op.conn) {
                    missed(op.client, op.conn, watches, &timeline, zxid, zxid, &mut violations);
                }
                if let Some((path, kind)) = arms(&op.request, &op.outcome) {
                    let watches = conns.entry(op.conn).or_default();
                    let fires_at = first_trigger(&changes, &path, kind, zxid);
                    watches.one_shot.entry((path, kind)).or_insert((zxid, fires_at));
                }
                let added =
                    adds_persistent(&op.request, &op.outcome).filter(|(path, recursive)| {
                        // Adding a watch the connection holds already changes nothing.
                        let held = conns.get(&op.conn).is_some_and(|w| {
                            w.persistent
                                .iter()
                                .any(|p| p.path == *path && p.recursive == *recursive)
                        });
                        !held
                    });
                if let Some((path, recursive)) = added {
                    let own = changes.get(&path).map_or(&[][..], Vec::as_slice);
                    let next = if recursive {
                        timeline.partition_point(|(z, _, _)| *z as i64 <= zxid)
                    } else {
                        own.partition_point(|(z, _)| *z as i64 <= zxid)
                    };
                    let watch = Persistent { path, own, recursive, armed_at: zxid, next };
                    conns.entry(op.conn).or_default().persistent.push(watch);
                }
            }
            Entry::Pong { client, conn, zxid, .. } => {
                if let Some(watches) = conns.get_mut(conn) {
                    missed(*client, *conn, watches, &timeline, *zxid, *zxid, &mut violations);
                }
            }
            Entry::Notify(index) => {
                let n = &history.notifications[*index as usize];
                let path = n.event.path.as_str();
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
                let happened = event.map_or(0, |e| occurrences(n.zxid, path, e));
                if happened == 0 {
                    violations.push(WatchViolation::Phantom {
                        client: n.client,
                        zxid: n.zxid,
                        event_type: n.event.event_type,
                        path: path.to_string(),
                    });
                }
                let watches = conns.entry(n.conn).or_default();
                let received =
                    watches.received.entry((n.zxid, path, n.event.event_type)).or_default();
                *received += 1;
                let duplicate = happened > 0 && *received > happened;
                // Changes before this notification's zxid must have been notified already.
                missed(n.client, n.conn, watches, &timeline, n.zxid - 1, n.zxid, &mut violations);
                let consumed = event.map_or(&[][..], fired_kinds);
                let mut any = false;
                for kind in consumed {
                    any |= watches.one_shot.remove(&(path.to_string(), *kind)).is_some();
                }
                let persistent = event.is_some_and(|e| {
                    watches.persistent.iter().any(|p| p.armed_at < n.zxid && p.covers(path, e))
                });
                if duplicate || !(any || persistent) {
                    violations.push(WatchViolation::Unexpected {
                        client: n.client,
                        conn: n.conn,
                        zxid: n.zxid,
                        event_type: n.event.event_type,
                        path: path.to_string(),
                    });
                }
            }
            Entry::Disconnected { conn, .. } => {
                conns.remove(conn);
            }
            _ => {}
        }
    }
    violations
}

/// The first change after `armed_at` that fires a one-shot watch of `kind` on `path`.
fn first_trigger(changes: &Changes, path: &str, kind: WatchKind, armed_at: i64) -> Option<u64> {
    let path_changes = changes.get(path)?;
    let after = path_changes.partition_point(|(zxid, _)| *zxid as i64 <= armed_at);
    let first = path_changes[after..].iter().find(|(_, event)| fired_kinds(*event).contains(&kind));
    first.map(|(zxid, _)| *zxid)
}

/// The persistent watch a completed addWatch leaves: (path, recursive).
fn adds_persistent(request: &Request, outcome: &OpOutcome) -> Option<(String, bool)> {
    let Request::AddWatch { path, mode } = request else { return None };
    if !matches!(outcome, OpOutcome::Ok { .. }) {
        return None;
    }
    match AddWatchMode::from_code(*mode)? {
        AddWatchMode::Persistent => Some((path.clone(), false)),
        AddWatchMode::PersistentRecursive => Some((path.clone(), true)),
    }
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

/// Flags (and disarms) every one-shot watch of `watches` whose first triggering change is at or
/// before `horizon`, and every change up to `horizon` a persistent watch covers but the
/// connection was not notified of, given that the client now sees `seen`.
fn missed(
    client: ClientId,
    conn: ConnId,
    watches: &mut ConnWatches<'_>,
    timeline: &[(u64, &str, EventType)],
    horizon: i64,
    seen: i64,
    violations: &mut Vec<WatchViolation>,
) {
    let mut fired = Vec::new();
    for ((path, kind), (armed_at, fires_at)) in watches.one_shot.iter() {
        if let Some(change_zxid) = fires_at.filter(|zxid| *zxid as i64 <= horizon) {
            violations.push(WatchViolation::Missed {
                client,
                conn,
                path: path.clone(),
                kind: *kind,
                armed_at: *armed_at,
                change_zxid,
                seen_zxid: seen,
            });
            fired.push((path.clone(), *kind));
        }
    }
    for key in fired {
        watches.one_shot.remove(&key);
    }
    for watch in &mut watches.persistent {
        loop {
            let (zxid, path, event) = if watch.recursive {
                match timeline.get(watch.next) {
                    Some(&(zxid, path, event)) => (zxid, path, event),
                    None => break,
                }
            } else {
                match watch.own.get(watch.next) {
                    Some(&(zxid, event)) => (zxid, watch.path.as_str(), event),
                    None => break,
                }
            };
            if zxid as i64 > horizon {
                break;
            }
            watch.next += 1;
            if !watch.covers(path, event) {
                continue;
            }
            if !watches.received.contains_key(&(zxid as i64, path, event.code())) {
                violations.push(WatchViolation::PersistentMissed {
                    client,
                    conn,
                    watch: watch.path.clone(),
                    recursive: watch.recursive,
                    armed_at: watch.armed_at,
                    path: path.to_string(),
                    event_type: event.code(),
                    change_zxid: zxid,
                    seen_zxid: seen,
                });
            }
        }
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
            WatchViolation::PersistentMissed {
                client,
                conn,
                watch,
                recursive,
                armed_at,
                path,
                event_type,
                change_zxid,
                seen_zxid,
            } => write!(
                f,
                "{client} on {conn}: persistent{} watch on {watch} armed at {armed_at:#x} did not \
                 deliver {} {path} at {change_zxid:#x} before the client saw {seen_zxid:#x}",
                if *recursive { " recursive" } else { "" },
                history::event_name(*event_type)
            ),
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

    fn add_watch(history: &mut History, path: &str, mode: AddWatchMode, zxid: u64) {
        let request = Request::AddWatch { path: path.into(), mode: mode.code() };
        op(
            history,
            zxid * 10 + 1,
            1,
            200 + zxid as i32,
            request,
            ok(zxid, Response::ErrorBody { err: 0 }),
        );
    }

    fn notify_path(history: &mut History, zxid: i64, event_type: EventType, path: &str) {
        notify(history, zxid, event_type);
        let last = history.notifications.len() - 1;
        history.notifications[last].event.path = path.into();
    }

    #[test]
    fn a_persistent_watch_that_delivers_every_change_passes() {
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::Persistent, 1);
        notify(&mut history, 2, EventType::NodeDataChanged);
        notify(&mut history, 3, EventType::NodeDataChanged);
        sync(&mut history, 3);
        assert_eq!(check(&history, &log()), vec![]);
    }

    #[test]
    fn a_persistent_watch_that_skips_a_change_is_flagged() {
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::Persistent, 1);
        notify(&mut history, 3, EventType::NodeDataChanged);
        let violations = check(&history, &log());
        assert!(
            matches!(
                &violations[..],
                [WatchViolation::PersistentMissed { change_zxid: 2, seen_zxid: 3, .. }]
            ),
            "{violations:?}"
        );
        // Also when the client just reads past it.
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::Persistent, 1);
        sync(&mut history, 2);
        assert!(matches!(
            &check(&history, &log())[..],
            [WatchViolation::PersistentMissed { change_zxid: 2, seen_zxid: 2, .. }]
        ));
    }

    #[test]
    fn a_recursive_watch_sees_descendants_but_not_child_events() {
        // /a at 1; /a/b created at 2 (NodeCreated /a/b, NodeChildrenChanged /a).
        let committed = Committed::new(vec![
            create_txn(1, 0, 1, "/a", "x"),
            create_txn(2, 0, 2, "/a/b", "y"),
            set_txn(3, 0, 3, "/a/b", "z", 1),
        ]);
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::PersistentRecursive, 1);
        notify_path(&mut history, 2, EventType::NodeCreated, "/a/b");
        notify_path(&mut history, 3, EventType::NodeDataChanged, "/a/b");
        sync(&mut history, 3);
        assert_eq!(check(&history, &committed), vec![]);
        // NodeChildrenChanged is not for recursive watches.
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::PersistentRecursive, 1);
        notify_path(&mut history, 2, EventType::NodeCreated, "/a/b");
        notify_path(&mut history, 2, EventType::NodeChildrenChanged, "/a");
        let violations = check(&history, &committed);
        assert!(
            matches!(&violations[..], [WatchViolation::Unexpected { zxid: 2, .. }]),
            "{violations:?}"
        );
        // A missing descendant change is flagged.
        let mut history = History::new();
        add_watch(&mut history, "/", AddWatchMode::PersistentRecursive, 1);
        notify_path(&mut history, 3, EventType::NodeDataChanged, "/a/b");
        let violations = check(&history, &committed);
        assert!(
            matches!(
                &violations[..],
                [WatchViolation::PersistentMissed { change_zxid: 2, event_type, .. }]
                    if *event_type == EventType::NodeCreated.code()
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn a_change_notified_twice_on_one_connection_is_flagged() {
        let mut history = History::new();
        add_watch(&mut history, "/a", AddWatchMode::Persistent, 1);
        notify(&mut history, 2, EventType::NodeDataChanged);
        notify(&mut history, 2, EventType::NodeDataChanged);
        let violations = check(&history, &log());
        assert!(
            matches!(&violations[..], [WatchViolation::Unexpected { zxid: 2, .. }]),
            "{violations:?}"
        );
    }
}
