//! A session does not expire while its client is being heard from, and its ephemerals live
//! exactly as long as it does.
//!
//! ZooKeeper expires a session only after the server has heard nothing from its client for the
//! whole negotiated timeout (measured on the server's *monotonic* clock; `SessionTrackerImpl`).
//! The client side sees when the server last answered it: every reply, ping reply and session
//! (re-)establishment means the server heard from the client shortly before. So if the
//! session's expiry (a closeSession txn with cxid 0, applied by a leader at a known time)
//! comes sooner than `timeout - slack` after the client was last answered, the server expired
//! a live session — unless something could legitimately have hidden the client from it: a
//! pause, a monotonic clock jump, a clog, a partition or a crash anywhere in the window (the
//! simulator lists those as *disturbances*). A wall-clock step is not a disturbance: expiry
//! must not depend on the wall clock (ZOOKEEPER-1366). Drift and offsets are no excuse either:
//! only the slack covers drift, so a session expired early on a node whose clock is fast or
//! far off is flagged.
//!
//! Ephemerals ([`check_ephemerals`]): the committed log alone, without the core's `DataTree`,
//! gives each ephemeral a lifetime — from its create to its delete or to the commit of its
//! owner's closeSession (client close or expiry). Then, ZOOKEEPER-2355's class of bug:
//! * a read answered at a zxid inside a lifetime must see the node (getData, exists, and the
//!   parent's getChildren), on whichever member answered: an ephemeral disappears only after
//!   its session's close commits;
//! * a read answered at or after the owner's close must not show the node with that owner;
//! * at the end, no serving member that has applied the close still holds one of the
//!   session's ephemerals.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use ensemble::core::ids::{ServerId, SessionId, Zxid};
use ensemble::core::txn::{NodeKind, TxnOp};
use ensemble::wire::proto::{Request, Response};
use ensemble::wire::types::ErrorCode;

use crate::checker::Committed;
use crate::history::{Entry, History, OpId, OpOutcome};
use crate::time::SimTime;
use crate::workload::ClientId;

/// A session expired while its client was alive and heard from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionViolation {
    /// The expiry came too soon after the client was last answered.
    PrematureExpiry {
        /// The session.
        session: SessionId,
        /// Its client.
        client: ClientId,
        /// When the client was last answered on it.
        heard_at: SimTime,
        /// When the expiry was applied.
        expired_at: SimTime,
        /// The expiry txn.
        zxid: Zxid,
        /// The session's timeout.
        timeout_ms: i32,
    },
    /// A read at or after the commit of a session's close still showed one of its ephemerals.
    EphemeralOutlivedSession {
        /// The read.
        op: OpId,
        /// The node.
        path: String,
        /// Its owner.
        owner: SessionId,
        /// Where the owner's close was committed.
        closed: Zxid,
        /// The read's reply zxid.
        zxid: i64,
    },
    /// A read inside an ephemeral's lifetime did not see it.
    EphemeralVanished {
        /// The read.
        op: OpId,
        /// The node.
        path: String,
        /// Its owner.
        owner: SessionId,
        /// Where it was created.
        created: Zxid,
        /// The read's reply zxid.
        zxid: i64,
    },
    /// At the end a member that applied a session's close still holds one of its ephemerals.
    EphemeralOnMember {
        /// The member.
        server: ServerId,
        /// The node.
        path: String,
        /// Its owner.
        owner: SessionId,
        /// Where the owner's close was committed.
        closed: Zxid,
        /// What the member has applied.
        applied: Zxid,
    },
}

/// What a serving member holds at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// The member.
    pub server: ServerId,
    /// The last zxid it applied.
    pub applied: Zxid,
    /// Its ephemerals: (owner, path).
    pub ephemerals: Vec<(SessionId, String)>,
}

/// One ephemeral's life in the committed log.
#[derive(Clone, Copy, Debug)]
struct Life {
    owner: SessionId,
    created: Zxid,
    /// Where it ended, and whether by its owner's close.
    ended: Option<(Zxid, bool)>,
}

impl Life {
    #[cfg(test)]
    /// Whether the node exists after applying every txn up to `zxid`.
    fn alive_at(&self, zxid: Zxid) -> bool {
        self.created <= zxid && self.ended.is_none_or(|(end, _)| end > zxid)
    }
}

/// Every ephemeral's lives by path, and the zxid of each session's first close.
fn lives(committed: &Committed) -> (BTreeMap<String, Vec<Life>>, BTreeMap<SessionId, Zxid>) {
    let mut lives: BTreeMap<String, Vec<Life>> = BTreeMap::new();
    let mut open: BTreeMap<SessionId, Vec<String>> = BTreeMap::new();
    let mut closed: BTreeMap<SessionId, Zxid> = BTreeMap::new();
    for txn in committed.txns() {
        let ops = match &txn.op {
            TxnOp::Multi(ops) => ops.as_slice(),
            op => std::slice::from_ref(op),
        };
        for op in ops {
            match op {
                TxnOp::Create { path, ephemeral_owner, .. } => {
                    if let NodeKind::Ephemeral(owner) = NodeKind::from_owner(*ephemeral_owner) {
                        let life = Life { owner, created: txn.zxid, ended: None };
                        lives.entry(path.clone()).or_default().push(life);
                        open.entry(owner).or_default().push(path.clone());
                    }
                }
                TxnOp::Delete { path } => {
                    if let Some(life) = lives.get_mut(path).and_then(|l| l.last_mut()) {
                        if life.ended.is_none() {
                            life.ended = Some((txn.zxid, false));
                            if let Some(paths) = open.get_mut(&life.owner) {
                                paths.retain(|p| p != path);
                            }
                        }
                    }
                }
                TxnOp::CloseSession => {
                    closed.entry(txn.session).or_insert(txn.zxid);
                    for path in open.remove(&txn.session).unwrap_or_default() {
                        if let Some(life) = lives.get_mut(&path).and_then(|l| l.last_mut()) {
                            life.ended = Some((txn.zxid, true));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    (lives, closed)
}

/// A read the ephemeral check judges: its position in `history.ops`, the zxid it was answered
/// at, and what it saw (`None`: no node).
struct Read<'a> {
    index: usize,
    at: Zxid,
    zxid: i64,
    seen: Option<&'a Response>,
}

/// Every ephemeral alive at one zxid of the log, kept up to date as a sweep moves forward
/// through the committed log, so each read costs only what is alive when it was answered
/// (rather than every life its path or parent ever had).
#[derive(Default)]
struct Sweep<'a> {
    /// Paths with a live ephemeral, with the indices (into the path's lives) of the lives
    /// alive now: normally one, more only in a log that created a path twice.
    alive: BTreeMap<&'a str, BTreeSet<usize>>,
    /// By path and owner, the first life (index into the path's lives) that its owner's close
    /// has ended by now.
    closed: BTreeMap<(&'a str, SessionId), usize>,
}

/// Checks ephemerals' lifetimes against what reads saw and what `members` hold at the end.
///
/// The reads are judged in zxid order by a sweep over every life's start and end, so the cost
/// is O((reads + lives) log) plus what each read's answer lists; violations come out in
/// operation order, each read's as it finds them.
pub fn check_ephemerals(
    history: &History,
    committed: &Committed,
    members: &[Member],
) -> Vec<SessionViolation> {
    let (lives, closed) = lives(committed);
    let mut reads = Vec::new();
    for (index, op) in history.ops.iter().enumerate() {
        let (zxid, seen) = match (&op.request, &op.outcome) {
            (_, OpOutcome::Ok { zxid, response }) => (*zxid, Some(response)),
            (_, OpOutcome::Fail { zxid, code }) if *code == ErrorCode::NoNode.code() => {
                (*zxid, None)
            }
            _ => continue,
        };
        if zxid < 0 || Zxid::from_wire(zxid) > committed.last_zxid() {
            continue; // the reads checker reports replies beyond the log
        }
        let judged = matches!(
            (&op.request, seen),
            (Request::GetData { .. } | Request::Exists { .. }, _)
                | (Request::GetChildren { .. }, Some(_))
        );
        if judged {
            reads.push(Read { index, at: Zxid::from_wire(zxid), zxid, seen });
        }
    }
    reads.sort_by_key(|read| (read.at, read.index));
    // Every life's start (false) and end (true), in log order, a start before an end at the
    // same zxid (a life created and ended by one multi is never alive).
    let mut changes: Vec<(Zxid, bool, &str, usize)> = Vec::new();
    for (path, path_lives) in &lives {
        for (i, life) in path_lives.iter().enumerate() {
            changes.push((life.created, false, path.as_str(), i));
            if let Some((end, _)) = life.ended {
                changes.push((end, true, path.as_str(), i));
            }
        }
    }
    changes.sort_unstable();
    let mut changes = changes.into_iter().peekable();
    let mut sweep = Sweep::default();
    let mut found: Vec<(usize, SessionViolation)> = Vec::new();
    for read in reads {
        while let Some((_, ended, path, i)) = changes.next_if(|change| change.0 <= read.at) {
            if !ended {
                sweep.alive.entry(path).or_default().insert(i);
                continue;
            }
            if let Some(alive) = sweep.alive.get_mut(path) {
                alive.remove(&i);
                if alive.is_empty() {
                    sweep.alive.remove(path);
                }
            }
            let life = &lives[path][i];
            if life.ended.is_some_and(|(_, by_close)| by_close) {
                let first = sweep.closed.entry((path, life.owner)).or_insert(i);
                *first = (*first).min(i);
            }
        }
        let op = &history.ops[read.index];
        let zxid = read.zxid;
        // The first life of `path` alive at the read's zxid, if any.
        let alive_life = |path: &str| {
            sweep.alive.get(path).and_then(|alive| alive.first()).map(|&i| &lives[path][i])
        };
        let mut vanished = |path: &str, life: &Life| {
            found.push((
                read.index,
                SessionViolation::EphemeralVanished {
                    op: op.id,
                    path: path.to_string(),
                    owner: life.owner,
                    created: life.created,
                    zxid,
                },
            ));
        };
        match (&op.request, read.seen) {
            (Request::GetData { path, .. } | Request::Exists { path, .. }, None) => {
                if let Some(life) = alive_life(path) {
                    vanished(path, life);
                }
            }
            (
                Request::GetData { path, .. } | Request::Exists { path, .. },
                Some(Response::GetData { stat, .. } | Response::Stat(stat)),
            ) => {
                let NodeKind::Ephemeral(owner) = NodeKind::from_owner(stat.ephemeral_owner) else {
                    continue;
                };
                let path_lives = match lives.get(path) {
                    Some(path_lives) => path_lives,
                    None => continue,
                };
                let alive = sweep.alive.get(path.as_str());
                if alive.is_some_and(|alive| alive.iter().any(|&i| path_lives[i].owner == owner)) {
                    continue;
                }
                let outlived = sweep.closed.get(&(path.as_str(), owner)).map(|&i| &path_lives[i]);
                if let Some(&(end, _)) = outlived.and_then(|l| l.ended.as_ref()) {
                    found.push((
                        read.index,
                        SessionViolation::EphemeralOutlivedSession {
                            op: op.id,
                            path: path.clone(),
                            owner,
                            closed: end,
                            zxid,
                        },
                    ));
                }
            }
            (
                Request::GetChildren { path, .. },
                Some(Response::GetChildren { children } | Response::GetChildren2 { children, .. }),
            ) => {
                let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
                let mut listed: Option<HashSet<&str>> = None;
                for (&child, alive) in sweep.alive.range(prefix.as_str()..) {
                    let Some(name) = child.strip_prefix(&prefix) else { break };
                    if name.contains('/') {
                        continue;
                    }
                    let listed =
                        listed.get_or_insert_with(|| children.iter().map(String::as_str).collect());
                    if listed.contains(name) {
                        continue;
                    }
                    if let Some(&i) = alive.first() {
                        vanished(child, &lives[child][i]);
                    }
                }
            }
            _ => {}
        }
    }
    found.sort_by_key(|(index, _)| *index);
    let mut violations: Vec<SessionViolation> = found.into_iter().map(|(_, v)| v).collect();
    kept_after_close(members, &closed, &mut violations);
    violations
}

/// Flags every ephemeral a member still holds past its owner's committed close.
fn kept_after_close(
    members: &[Member],
    closed: &BTreeMap<SessionId, Zxid>,
    violations: &mut Vec<SessionViolation>,
) {
    for member in members {
        for (owner, path) in &member.ephemerals {
            let Some(&close) = closed.get(owner) else { continue };
            if close <= member.applied {
                violations.push(SessionViolation::EphemeralOnMember {
                    server: member.server,
                    path: path.clone(),
                    owner: *owner,
                    closed: close,
                    applied: member.applied,
                });
            }
        }
    }
}

/// Checks every expiry in `committed` (which must carry commit times) against when the
/// session's client was last answered. `disturbances` are true-time intervals in which a fault
/// could hide a live client from the servers; `slack_ms` covers message delays, tick rounding
/// and clock drift.
pub fn check(
    history: &History,
    committed: &Committed,
    disturbances: &[(SimTime, SimTime)],
    slack_ms: u64,
) -> Vec<SessionViolation> {
    let mut heard: BTreeMap<SessionId, Vec<(SimTime, ClientId)>> = BTreeMap::new();
    for (at, entry) in &history.entries {
        let (session, client) = match entry {
            Entry::Return(id) => {
                let op = history.op(*id);
                if !matches!(op.outcome, OpOutcome::Ok { .. } | OpOutcome::Fail { .. }) {
                    continue;
                }
                (op.session, op.client)
            }
            Entry::Pong { session, client, .. } | Entry::Connected { session, client, .. } => {
                (*session, *client)
            }
            _ => continue,
        };
        heard.entry(session).or_default().push((*at, client));
    }
    let mut timeouts: BTreeMap<SessionId, i32> = BTreeMap::new();
    let mut violations = Vec::new();
    for (index, txn) in committed.txns().iter().enumerate() {
        match txn.op {
            TxnOp::CreateSession { timeout_ms, .. } => {
                timeouts.insert(txn.session, timeout_ms);
            }
            TxnOp::CloseSession if txn.cxid == 0 => {
                let (Some(expired_at), Some(&timeout_ms)) =
                    (committed.time(index), timeouts.get(&txn.session))
                else {
                    continue;
                };
                let Some(times) = heard.get(&txn.session) else { continue };
                let before = times.partition_point(|(at, _)| *at <= expired_at);
                let Some(&(heard_at, client)) = before.checked_sub(1).map(|i| &times[i]) else {
                    continue;
                };
                let allowed_ms = (timeout_ms.max(0) as u64).saturating_sub(slack_ms);
                let window_start =
                    SimTime(heard_at.0.saturating_sub(timeout_ms.max(0) as u64 * 1_000));
                let disturbed = disturbances
                    .iter()
                    .any(|(start, end)| *start <= expired_at && *end >= window_start);
                if expired_at.since(heard_at) < allowed_ms * 1_000 && !disturbed {
                    violations.push(SessionViolation::PrematureExpiry {
                        session: txn.session,
                        client,
                        heard_at,
                        expired_at,
                        zxid: txn.zxid,
                        timeout_ms,
                    });
                }
            }
            _ => {}
        }
    }
    violations
}

impl fmt::Display for SessionViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionViolation::PrematureExpiry {
                session,
                client,
                heard_at,
                expired_at,
                zxid,
                timeout_ms,
            } => write!(
                f,
                "session {session} of {client} expired at {expired_at} (zxid {zxid}), only {} ms \
                 after the server last answered it at {heard_at}; its timeout is {timeout_ms} ms",
                expired_at.since(*heard_at) / 1_000
            ),
            SessionViolation::EphemeralOutlivedSession { op, path, owner, closed, zxid } => write!(
                f,
                "op #{} answered at zxid {zxid:#x} showed {path} owned by session {owner}, whose \
                 close was committed at {closed}",
                op.0
            ),
            SessionViolation::EphemeralVanished { op, path, owner, created, zxid } => write!(
                f,
                "op #{} answered at zxid {zxid:#x} did not see {path}, an ephemeral of session \
                 {owner} created at {created} and neither deleted nor closed by then",
                op.0
            ),
            SessionViolation::EphemeralOnMember { server, path, owner, closed, applied } => {
                write!(
                    f,
                    "n{server} has applied up to {applied}, past the close of session {owner} at \
                     {closed}, yet still holds its ephemeral {path}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::txn::TxnOp;

    use super::*;
    use crate::checker::fixtures::*;

    fn log(expired_ms: u64) -> Committed {
        Committed::with_times(
            vec![
                txn(1, 0, 0, TxnOp::CreateSession { timeout_ms: 10_000, password: [0; 16] }),
                txn(2, 0, 0, TxnOp::CloseSession),
            ],
            vec![SimTime::from_ms(100), SimTime::from_ms(expired_ms)],
        )
    }

    fn heard_at(ms: u64) -> History {
        let mut history = History::new();
        let c = channel(0);
        history.observe(
            SimTime::from_ms(ms),
            Entry::Pong { client: c.client, session: c.session, conn: c.conn, zxid: 1 },
        );
        history
    }

    #[test]
    fn an_expiry_after_the_timeout_passes() {
        assert_eq!(check(&heard_at(1_000), &log(11_500), &[], 1_000), vec![]);
    }

    #[test]
    fn an_expiry_of_a_client_just_answered_is_flagged() {
        let violations = check(&heard_at(1_000), &log(3_000), &[], 1_000);
        assert!(
            matches!(&violations[..], [SessionViolation::PrematureExpiry { .. }]),
            "{violations:?}"
        );
    }

    #[test]
    fn a_disturbance_excuses_an_early_expiry() {
        let pause = (SimTime::from_ms(1_500), SimTime::from_ms(2_500));
        assert_eq!(check(&heard_at(1_000), &log(3_000), &[pause], 1_000), vec![]);
    }

    #[test]
    fn a_client_close_is_not_an_expiry() {
        let committed = Committed::with_times(
            vec![
                txn(1, 0, 0, TxnOp::CreateSession { timeout_ms: 10_000, password: [0; 16] }),
                txn(2, 0, 7, TxnOp::CloseSession),
            ],
            vec![SimTime::from_ms(100), SimTime::from_ms(1_100)],
        );
        assert_eq!(check(&heard_at(1_000), &committed, &[], 1_000), vec![]);
    }

    fn ephemeral_log() -> Committed {
        use bytes::Bytes;
        use ensemble::wire::types::Acl;
        let create = TxnOp::Create {
            path: "/e".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: Acl::open_unsafe().into(),
            ephemeral_owner: session(0).0,
        };
        Committed::new(vec![
            txn(1, 0, 0, TxnOp::CreateSession { timeout_ms: 10_000, password: [0; 16] }),
            txn(2, 0, 1, create),
            create_txn(3, 1, 1, "/p", "y"),
            txn(4, 0, 0, TxnOp::CloseSession),
        ])
    }

    fn read_e(history: &mut History, zxid: u64, owner: i64) -> OpId {
        use ensemble::wire::proto::{Request, Response};
        use ensemble::wire::types::Stat;
        let stat = Stat { ephemeral_owner: owner, ..Stat::default() };
        let request = Request::Exists { path: "/e".into(), watch: false };
        op(history, zxid * 10, 1, zxid as i32, request, ok(zxid, Response::Stat(stat)))
    }

    fn absent_e(history: &mut History, zxid: u64) -> OpId {
        use ensemble::wire::proto::Request;
        let request = Request::GetData { path: "/e".into(), watch: false };
        let no_node = OpOutcome::Fail { zxid: zxid as i64, code: ErrorCode::NoNode.code() };
        op(history, zxid * 10 + 1, 1, 100 + zxid as i32, request, no_node)
    }

    #[test]
    fn an_ephemeral_seen_within_its_life_passes() {
        let mut history = History::new();
        absent_e(&mut history, 1);
        read_e(&mut history, 2, session(0).0);
        read_e(&mut history, 3, session(0).0);
        absent_e(&mut history, 4);
        assert_eq!(check_ephemerals(&history, &ephemeral_log(), &[]), vec![]);
    }

    #[test]
    fn an_ephemeral_seen_after_its_session_closed_is_flagged() {
        let mut history = History::new();
        let id = read_e(&mut history, 4, session(0).0);
        let violations = check_ephemerals(&history, &ephemeral_log(), &[]);
        assert_eq!(
            violations,
            vec![SessionViolation::EphemeralOutlivedSession {
                op: id,
                path: "/e".into(),
                owner: session(0),
                closed: Zxid(4),
                zxid: 4,
            }]
        );
    }

    #[test]
    fn an_ephemeral_missing_before_its_session_closed_is_flagged() {
        use ensemble::wire::proto::{Request, Response};
        let mut history = History::new();
        let id = absent_e(&mut history, 3);
        let violations = check_ephemerals(&history, &ephemeral_log(), &[]);
        assert!(
            matches!(
                &violations[..],
                [SessionViolation::EphemeralVanished { op, created: Zxid(2), zxid: 3, .. }]
                    if *op == id
            ),
            "{violations:?}"
        );
        // The root's children at zxid 3 must list it too.
        let mut history = History::new();
        let request = Request::GetChildren { path: "/".into(), watch: false, with_stat: false };
        let children = vec!["zookeeper".to_string(), "p".to_string()];
        op(&mut history, 1, 1, 1, request.clone(), ok(3, Response::GetChildren { children }));
        assert_eq!(check_ephemerals(&history, &ephemeral_log(), &[]).len(), 1);
        let children = vec!["zookeeper".to_string(), "p".to_string(), "e".to_string()];
        let mut history = History::new();
        op(&mut history, 1, 1, 1, request, ok(3, Response::GetChildren { children }));
        assert_eq!(check_ephemerals(&history, &ephemeral_log(), &[]), vec![]);
    }

    #[test]
    fn a_member_keeping_a_closed_sessions_ephemeral_is_flagged() {
        let member = |applied| Member {
            server: ServerId(2),
            applied: Zxid(applied),
            ephemerals: vec![(session(0), "/e".to_string())],
        };
        // Behind the close: fine.
        assert_eq!(check_ephemerals(&History::new(), &ephemeral_log(), &[member(3)]), vec![]);
        assert_eq!(
            check_ephemerals(&History::new(), &ephemeral_log(), &[member(4)]),
            vec![SessionViolation::EphemeralOnMember {
                server: ServerId(2),
                path: "/e".into(),
                owner: session(0),
                closed: Zxid(4),
                applied: Zxid(4),
            }]
        );
    }

    /// The ephemeral check as first written, a scan of every life per read: the oracle the
    /// sweep in [`check_ephemerals`] must agree with exactly.
    fn reference(
        history: &History,
        committed: &Committed,
        members: &[Member],
    ) -> Vec<SessionViolation> {
        use ensemble::wire::proto::{Request, Response};
        let (lives, closed) = lives(committed);
        let mut violations = Vec::new();
        for op in &history.ops {
            let (zxid, seen) = match (&op.request, &op.outcome) {
                (_, OpOutcome::Ok { zxid, response }) => (*zxid, Some(response)),
                (_, OpOutcome::Fail { zxid, code }) if *code == ErrorCode::NoNode.code() => {
                    (*zxid, None)
                }
                _ => continue,
            };
            if zxid < 0 || Zxid::from_wire(zxid) > committed.last_zxid() {
                continue;
            }
            let at = Zxid::from_wire(zxid);
            let vanished = |path: &str, violations: &mut Vec<SessionViolation>| {
                if let Some(life) = lives.get(path).and_then(|l| l.iter().find(|l| l.alive_at(at)))
                {
                    violations.push(SessionViolation::EphemeralVanished {
                        op: op.id,
                        path: path.to_string(),
                        owner: life.owner,
                        created: life.created,
                        zxid,
                    });
                }
            };
            match (&op.request, seen) {
                (Request::GetData { path, .. } | Request::Exists { path, .. }, None) => {
                    vanished(path, &mut violations)
                }
                (
                    Request::GetData { path, .. } | Request::Exists { path, .. },
                    Some(Response::GetData { stat, .. } | Response::Stat(stat)),
                ) => {
                    let NodeKind::Ephemeral(owner) = NodeKind::from_owner(stat.ephemeral_owner)
                    else {
                        continue;
                    };
                    let Some(path_lives) = lives.get(path) else { continue };
                    if path_lives.iter().any(|l| l.owner == owner && l.alive_at(at)) {
                        continue;
                    }
                    let outlived = path_lives.iter().find(|l| {
                        l.owner == owner
                            && l.created <= at
                            && l.ended.is_some_and(|(end, by_close)| by_close && end <= at)
                    });
                    if let Some(&(end, _)) = outlived.and_then(|l| l.ended.as_ref()) {
                        violations.push(SessionViolation::EphemeralOutlivedSession {
                            op: op.id,
                            path: path.clone(),
                            owner,
                            closed: end,
                            zxid,
                        });
                    }
                }
                (
                    Request::GetChildren { path, .. },
                    Some(
                        Response::GetChildren { children }
                        | Response::GetChildren2 { children, .. },
                    ),
                ) => {
                    let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
                    for (child, _) in lives.range(prefix.clone()..) {
                        let Some(name) = child.strip_prefix(&prefix) else { break };
                        if name.contains('/') || children.iter().any(|c| c == name) {
                            continue;
                        }
                        vanished(child, &mut violations);
                    }
                }
                _ => {}
            }
        }
        kept_after_close(members, &closed, &mut violations);
        violations
    }

    /// Random logs (including ones no correct leader would commit: a path created twice, a
    /// multi that creates and deletes a node, closes of unknown sessions) and random reads of
    /// them: the sweep finds exactly what the per-read scan finds, in the same order.
    #[test]
    fn the_sweep_agrees_with_the_scan() {
        use bytes::Bytes;
        use ensemble::wire::proto::{Request, Response};
        use ensemble::wire::types::{Acl, Stat};
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        const PATHS: [&str; 7] = ["/a", "/b", "/a/x", "/a/y", "/a/x/z", "/ab", "/c"];
        let mut found = 0;
        for seed in 0..300u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let create = |rng: &mut ChaCha8Rng| TxnOp::Create {
                path: PATHS[rng.gen_range(0..PATHS.len())].into(),
                data: Some(Bytes::from_static(b"x")),
                acl: Acl::open_unsafe().into(),
                ephemeral_owner: if rng.gen_bool(0.8) { session(rng.gen_range(0..3)).0 } else { 0 },
            };
            let delete = |rng: &mut ChaCha8Rng| TxnOp::Delete {
                path: PATHS[rng.gen_range(0..PATHS.len())].into(),
            };
            let mut txns = Vec::new();
            for zxid in 1..rng.gen_range(2..40u64) {
                let c = rng.gen_range(0..4);
                let op = match rng.gen_range(0..10) {
                    0..=3 => create(&mut rng),
                    4..=6 => delete(&mut rng),
                    7 => TxnOp::CloseSession,
                    8 => TxnOp::Multi(vec![create(&mut rng), delete(&mut rng), create(&mut rng)]),
                    _ => TxnOp::CreateSession { timeout_ms: 10_000, password: [0; 16] },
                };
                txns.push(txn(zxid, c, 0, op));
            }
            let last = txns.len() as u64;
            let committed = Committed::new(txns);
            let mut history = History::new();
            for xid in 0..rng.gen_range(0..30) {
                let path = PATHS[rng.gen_range(0..PATHS.len())].to_string();
                let zxid = rng.gen_range(0..last + 2);
                let outcome = match rng.gen_range(0..5) {
                    0 => OpOutcome::Fail { zxid: zxid as i64, code: ErrorCode::NoNode.code() },
                    1 | 2 => {
                        let owner =
                            if rng.gen_bool(0.9) { session(rng.gen_range(0..3)).0 } else { 0 };
                        let stat = Stat { ephemeral_owner: owner, ..Stat::default() };
                        if rng.gen_bool(0.5) {
                            ok(zxid, Response::Stat(stat))
                        } else {
                            ok(zxid, Response::GetData { data: None, stat })
                        }
                    }
                    _ => {
                        let children = ["a", "b", "x", "y", "z", "ab", "c"]
                            .into_iter()
                            .filter(|_| rng.gen_bool(0.5))
                            .map(String::from)
                            .collect();
                        ok(zxid, Response::GetChildren { children })
                    }
                };
                let request = match (&outcome, rng.gen_range(0..4)) {
                    (OpOutcome::Ok { response: Response::GetChildren { .. }, .. }, 0) => {
                        Request::GetChildren { path: "/".into(), watch: false, with_stat: false }
                    }
                    (OpOutcome::Ok { response: Response::GetChildren { .. }, .. }, _) => {
                        Request::GetChildren { path, watch: false, with_stat: false }
                    }
                    (_, 0) => Request::Exists { path, watch: false },
                    _ => Request::GetData { path, watch: false },
                };
                op(&mut history, xid as u64 * 10, rng.gen_range(0..3), xid, request, outcome);
            }
            let members = [Member {
                server: ServerId(1),
                applied: Zxid(rng.gen_range(0..last + 1)),
                ephemerals: vec![(session(1), "/a".into()), (session(2), "/b".into())],
            }];
            let expected = reference(&history, &committed, &members);
            found += expected.len();
            assert_eq!(check_ephemerals(&history, &committed, &members), expected, "seed {seed}");
        }
        assert!(found > 100, "the random cases find too little to compare: {found}");
    }
}
