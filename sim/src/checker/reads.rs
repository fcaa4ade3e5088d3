//! Replies agree with the committed history.
//!
//! ZooKeeper reads are served locally and may be stale, but never invented: the data, Stat and
//! children a read returns are exactly the state after every committed txn up to the reply's
//! zxid (the server's last applied zxid when it answered), and that zxid is committed. So the
//! checker replays the committed log through a fresh `DataTree` and, at each zxid, compares
//! the reads answered at that zxid. The same replay checks writes: a successful create,
//! setData or delete must show its effect right after its own txn (with the Stat the client
//! got), and a conditional failure (`NodeExists`, `NoNode`, `BadVersion`, `NotEmpty`,
//! `NoChildrenForEphemerals`) must be justified by the state just before its txn. Linear in the
//! log plus the history (after a sort).
//!
//! `sync` then read: a `sync` answered at zxid Z must have Z at least the zxid of every write
//! (success or conditional failure) whose reply came before the `sync` was sent; the read that
//! follows on the session is then at or past Z by session order. One exception is ZooKeeper's
//! own (ZOOKEEPER-1675/2136, and the 2019 note on Jepsen's analysis): `sync` is not a quorum
//! operation, so a leader deposed without noticing yet may still flush it, from an older epoch.
//! A `sync` answered in an epoch older than the write's is therefore not judged.

use std::fmt;

use ensemble::core::ids::Zxid;
use ensemble::core::tree::DataTree;
use ensemble::core::txn::NodeKind;
use ensemble::wire::proto::{Request, Response};
use ensemble::wire::types::{CreateMode, ErrorCode};

use crate::checker::Committed;
use crate::history::{self, History, OpId, OpOutcome, Operation};

/// A reply the committed history cannot explain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadViolation {
    /// A read returned something other than the state at its zxid.
    WrongRead {
        /// The operation.
        op: OpId,
        /// Its reply zxid.
        zxid: i64,
        /// The replayed state.
        expected: String,
        /// What the client got.
        got: String,
    },
    /// A reply carried a zxid the committed log does not reach: it saw uncommitted state.
    BeyondCommitted {
        /// The operation.
        op: OpId,
        /// Its reply zxid.
        zxid: i64,
        /// The last committed zxid.
        committed: Zxid,
    },
    /// A successful write's reply disagrees with the state right after its txn.
    WrongWriteResult {
        /// The operation.
        op: OpId,
        /// Its zxid.
        zxid: i64,
        /// The replayed state.
        expected: String,
        /// What the client got.
        got: String,
    },
    /// A `sync` answered below the zxid of a write that completed before it was sent.
    SyncMissedWrite {
        /// The sync.
        sync: OpId,
        /// Its reply zxid.
        sync_zxid: i64,
        /// The write.
        write: OpId,
        /// The write's zxid.
        write_zxid: i64,
    },
    /// A write failed with an error the state before its txn does not justify.
    ErrorContradicted {
        /// The operation.
        op: OpId,
        /// Its zxid.
        zxid: i64,
        /// The error.
        code: i32,
        /// The state that contradicts it.
        state: String,
    },
}

/// When, relative to the txn at a zxid, a reply is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Against the state before the txn (a failed write).
    Before,
    /// Against the state after it (a read at that zxid, a successful write).
    After,
}

/// Checks every read and every write reply of `history` against a replay of `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<ReadViolation> {
    let mut violations = Vec::new();
    let mut queries: Vec<(u64, Phase, OpId)> = Vec::new();
    for op in &history.ops {
        let (zxid, ok) = match op.outcome {
            OpOutcome::Ok { zxid, .. } => (zxid, true),
            OpOutcome::Fail { zxid, .. } => (zxid, false),
            _ => continue,
        };
        if zxid < 0 {
            continue;
        }
        if Zxid::from_wire(zxid) > committed.last_zxid() {
            violations.push(ReadViolation::BeyondCommitted {
                op: op.id,
                zxid,
                committed: committed.last_zxid(),
            });
            continue;
        }
        if op.is_write() {
            // Only writes whose txn is in the log at their zxid (the durability checker
            // reports the others).
            let own = committed
                .get(Zxid::from_wire(zxid))
                .is_some_and(|t| t.session == op.session && t.cxid == op.xid);
            if own {
                queries.push((zxid as u64, if ok { Phase::After } else { Phase::Before }, op.id));
            }
        } else if is_checked_read(&op.request) {
            queries.push((zxid as u64, Phase::After, op.id));
        }
    }
    queries.sort_unstable();
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    let mut next = 0;
    for txn in committed.txns() {
        let z = txn.zxid.0;
        while let Some(&(zxid, phase, id)) = queries.get(next) {
            if zxid > z || (zxid == z && phase == Phase::After) {
                break;
            }
            violations.extend(check_one(history.op(id), phase, &tree));
            next += 1;
        }
        tree.apply(txn, &mut events);
        events.clear();
    }
    for &(_, phase, id) in &queries[next..] {
        violations.extend(check_one(history.op(id), phase, &tree));
    }
    violations.extend(check_syncs(history, committed));
    violations
}

/// Every `sync` must be answered at or past every write completed before it was sent (unless a
/// leader of an older epoch flushed it; see the module docs).
fn check_syncs(history: &History, committed: &Committed) -> Vec<ReadViolation> {
    let spans = history.spans();
    let mut writes: Vec<(usize, i64, OpId)> = history
        .ops
        .iter()
        .filter(|op| op.is_write())
        .filter_map(|op| {
            let zxid = match op.outcome {
                OpOutcome::Ok { zxid, .. } | OpOutcome::Fail { zxid, .. } => zxid,
                _ => return None,
            };
            let own = committed
                .get(Zxid::from_wire(zxid))
                .is_some_and(|t| t.session == op.session && t.cxid == op.xid);
            Some((spans[op.id.0 as usize].returned?, zxid, op.id)).filter(|_| own)
        })
        .collect();
    writes.sort_unstable();
    let mut syncs: Vec<(usize, OpId)> = history
        .ops
        .iter()
        .filter(|op| matches!(op.request, Request::Sync { .. }))
        .filter(|op| matches!(op.outcome, OpOutcome::Ok { .. }))
        .map(|op| (spans[op.id.0 as usize].invoked, op.id))
        .collect();
    syncs.sort_unstable();
    let mut violations = Vec::new();
    let mut highest: Option<(i64, OpId)> = None;
    let mut next = 0;
    for (invoked, sync) in syncs {
        while let Some(&(returned, zxid, write)) = writes.get(next) {
            if returned >= invoked {
                break;
            }
            if highest.is_none_or(|(z, _)| zxid > z) {
                highest = Some((zxid, write));
            }
            next += 1;
        }
        let Some((write_zxid, write)) = highest else { continue };
        let OpOutcome::Ok { zxid: sync_zxid, .. } = history.op(sync).outcome else { continue };
        let older_epoch = Zxid::from_wire(sync_zxid).epoch() < Zxid::from_wire(write_zxid).epoch();
        if sync_zxid < write_zxid && !older_epoch {
            violations.push(ReadViolation::SyncMissedWrite { sync, sync_zxid, write, write_zxid });
        }
    }
    violations
}

fn is_checked_read(request: &Request) -> bool {
    matches!(
        request,
        Request::GetData { .. } | Request::Exists { .. } | Request::GetChildren { .. }
    )
}

fn check_one(op: &Operation, phase: Phase, tree: &DataTree) -> Option<ReadViolation> {
    match (&op.outcome, phase) {
        (OpOutcome::Ok { zxid, response }, Phase::After) if op.is_write() => {
            check_write(op, *zxid, response, tree)
        }
        (OpOutcome::Ok { zxid, response }, _) => check_read(op, *zxid, Some(response), tree),
        (OpOutcome::Fail { zxid, code }, Phase::Before) => check_error(op, *zxid, *code, tree),
        (OpOutcome::Fail { zxid, code }, _) if *code == ErrorCode::NoNode.code() => {
            check_read(op, *zxid, None, tree)
        }
        _ => None,
    }
}

/// A read answered at `zxid` with `response` (None: NoNode).
fn check_read(
    op: &Operation,
    zxid: i64,
    response: Option<&Response>,
    tree: &DataTree,
) -> Option<ReadViolation> {
    // Compared as values, and written out only when they differ: the derived `Debug` of these
    // types is injective, so this gives the verdicts the string comparison gave.
    let wrong = |expected: &Option<Response>, got: Option<&Response>| {
        let (expected, got) = (format!("{expected:?}"), format!("{:?}", got.cloned()));
        Some(ReadViolation::WrongRead { op: op.id, zxid, expected, got })
    };
    match (&op.request, response) {
        (Request::GetData { path, .. }, got) => {
            let expected = tree.data(path).map(|(data, stat)| Response::GetData { data, stat });
            if expected.as_ref() != got {
                return wrong(&expected, got);
            }
        }
        (Request::Exists { path, .. }, got) => {
            let expected = tree.stat(path).map(Response::Stat);
            if expected.as_ref() != got {
                return wrong(&expected, got);
            }
        }
        (Request::GetChildren { path, with_stat, .. }, got) => {
            let expected = tree.children(path).map(|mut children| {
                children.sort();
                match (with_stat, tree.stat(path)) {
                    (true, Some(stat)) => Response::GetChildren2 { children, stat },
                    _ => Response::GetChildren { children },
                }
            });
            let sorted = |children: &[String]| children.is_sorted();
            let got_sorted = match got {
                Some(
                    Response::GetChildren { children } | Response::GetChildren2 { children, .. },
                ) if !sorted(children) => got.cloned().map(|r| match r {
                    Response::GetChildren { mut children } => {
                        children.sort();
                        Response::GetChildren { children }
                    }
                    Response::GetChildren2 { mut children, stat } => {
                        children.sort();
                        Response::GetChildren2 { children, stat }
                    }
                    other => other,
                }),
                _ => None,
            };
            let got = got_sorted.as_ref().or(got);
            if expected.as_ref() != got {
                return wrong(&expected, got);
            }
        }
        _ => {}
    }
    None
}

/// A write that succeeded at `zxid`: its effect must be visible right after its txn.
fn check_write(
    op: &Operation,
    zxid: i64,
    response: &Response,
    tree: &DataTree,
) -> Option<ReadViolation> {
    let wrong = |expected: String, got: String| {
        Some(ReadViolation::WrongWriteResult { op: op.id, zxid, expected, got })
    };
    match (&op.request, response) {
        (Request::Create(..), Response::Create { path }) if tree.stat(path).is_none() => {
            return wrong("absent".into(), format!("created {path}"));
        }
        (Request::Create(..), Response::Create2 { path, stat }) => {
            let expected = tree.stat(path);
            if expected != Some(*stat) {
                return wrong(format!("{path} {expected:?}"), format!("{path} {stat:?}"));
            }
        }
        (Request::SetData { path, .. }, Response::Stat(stat)) => {
            let expected = tree.stat(path);
            if expected != Some(*stat) {
                return wrong(format!("{path} {expected:?}"), format!("{path} {stat:?}"));
            }
        }
        (Request::Delete { path, .. }, _) => {
            if let Some(stat) = tree.stat(path) {
                return wrong(format!("{path} still there: {stat:?}"), "deleted".into());
            }
        }
        _ => {}
    }
    None
}

/// A write that failed at `zxid` with `code`: the state before its txn must justify it.
fn check_error(op: &Operation, zxid: i64, code: i32, tree: &DataTree) -> Option<ReadViolation> {
    let error = ErrorCode::from_code(code)?;
    let state = |path: &str| match tree.view(path) {
        Some(view) => format!(
            "{path} exists (version {}, {} children, owner {:#x})",
            view.stat.version, view.num_children, view.stat.ephemeral_owner
        ),
        None => format!("{path} is absent"),
    };
    let justified = match (&op.request, error) {
        (Request::Create(_, create), ErrorCode::NodeExists) => {
            let sequential =
                CreateMode::from_code(create.flags).is_some_and(|mode| mode.is_sequential());
            if sequential {
                return None;
            }
            (tree.stat(&create.path).is_some(), state(&create.path))
        }
        (Request::Create(_, create), ErrorCode::NoNode) => {
            let parent = parent(&create.path);
            (tree.stat(parent).is_none(), state(parent))
        }
        (Request::Create(_, create), ErrorCode::NoChildrenForEphemerals) => {
            let parent = parent(&create.path);
            let ephemeral = tree.view(parent).is_some_and(|v| {
                matches!(NodeKind::from_owner(v.stat.ephemeral_owner), NodeKind::Ephemeral(_))
            });
            (ephemeral, state(parent))
        }
        (Request::SetData { path, .. } | Request::Delete { path, .. }, ErrorCode::NoNode) => {
            (tree.stat(path).is_none(), state(path))
        }
        (
            Request::SetData { path, version, .. } | Request::Delete { path, version },
            ErrorCode::BadVersion,
        ) => {
            let mismatch = tree.stat(path).is_some_and(|s| *version != -1 && s.version != *version);
            (mismatch, state(path))
        }
        (Request::Delete { path, .. }, ErrorCode::NotEmpty) => {
            (tree.stat(path).is_some_and(|s| s.num_children > 0), state(path))
        }
        _ => return None,
    };
    match justified {
        (true, _) => None,
        (false, state) => Some(ReadViolation::ErrorContradicted { op: op.id, zxid, code, state }),
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(at) => &path[..at],
    }
}

impl fmt::Display for ReadViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadViolation::WrongRead { op, zxid, expected, got } => write!(
                f,
                "op #{} answered at zxid {zxid:#x} returned {got}, but the state there is {expected}",
                op.0
            ),
            ReadViolation::BeyondCommitted { op, zxid, committed } => write!(
                f,
                "op #{} was answered at zxid {zxid:#x}, beyond the committed log (ends at \
                 {committed})",
                op.0
            ),
            ReadViolation::WrongWriteResult { op, zxid, expected, got } => write!(
                f,
                "write op #{} at zxid {zxid:#x} reported {got}, but after its txn the state is \
                 {expected}",
                op.0
            ),
            ReadViolation::SyncMissedWrite { sync, sync_zxid, write, write_zxid } => write!(
                f,
                "sync op #{} was answered at zxid {sync_zxid:#x}, below write op #{} at \
                 {write_zxid:#x}, which completed before the sync was sent",
                sync.0, write.0
            ),
            ReadViolation::ErrorContradicted { op, zxid, code, state } => write!(
                f,
                "write op #{} failed with {} at zxid {zxid:#x}, but before it {state}",
                op.0,
                history::error_name(*code)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ensemble::wire::proto::{Request, Response};

    use super::*;
    use crate::checker::fixtures::*;

    fn get(path: &str) -> Request {
        Request::GetData { path: path.into(), watch: false }
    }

    fn log() -> Committed {
        Committed::new(vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 0, 2, "/a", "y", 1)])
    }

    fn state_at(txns: usize) -> DataTree {
        let mut tree = DataTree::new();
        let mut events = Vec::new();
        for txn in &log().txns()[..txns] {
            tree.apply(txn, &mut events);
        }
        tree
    }

    fn data_of(tree: &DataTree, path: &str) -> Response {
        let (data, stat) = tree.data(path).unwrap();
        Response::GetData { data, stat }
    }

    #[test]
    fn reads_of_the_state_at_their_zxid_pass() {
        let mut history = History::new();
        op(&mut history, 1, 1, 1, get("/a"), ok(1, data_of(&state_at(1), "/a")));
        op(&mut history, 2, 1, 2, get("/a"), ok(2, data_of(&state_at(2), "/a")));
        let absent = OpOutcome::Fail { zxid: 2, code: ErrorCode::NoNode.code() };
        op(&mut history, 3, 1, 3, get("/b"), absent);
        assert_eq!(check(&history, &log()), vec![]);
    }

    #[test]
    fn a_stale_value_at_a_newer_zxid_is_flagged() {
        let mut history = History::new();
        // Value "x" (before zxid 2) returned with reply zxid 2.
        let id = op(&mut history, 1, 1, 1, get("/a"), ok(2, data_of(&state_at(1), "/a")));
        let violations = check(&history, &log());
        assert!(
            matches!(&violations[..], [ReadViolation::WrongRead { op, zxid: 2, .. }] if *op == id),
            "{violations:?}"
        );
    }

    #[test]
    fn a_read_beyond_the_committed_log_is_flagged() {
        let mut history = History::new();
        let (_, stat) = state_at(2).data("/a").unwrap();
        let response = Response::GetData { data: Some(Bytes::from_static(b"z")), stat };
        let id = op(&mut history, 1, 1, 1, get("/a"), ok(3, response));
        assert_eq!(
            check(&history, &log()),
            vec![ReadViolation::BeyondCommitted { op: id, zxid: 3, committed: Zxid(2) }]
        );
    }

    #[test]
    fn a_nonode_for_an_existing_node_is_flagged() {
        let mut history = History::new();
        let absent = OpOutcome::Fail { zxid: 1, code: ErrorCode::NoNode.code() };
        op(&mut history, 1, 1, 1, get("/a"), absent);
        assert_eq!(check(&history, &log()).len(), 1);
    }

    #[test]
    fn a_write_result_that_disagrees_with_the_replay_is_flagged() {
        let mut history = History::new();
        let mut stat = state_at(2).stat("/a").unwrap();
        let set = Request::SetData { path: "/a".into(), data: None, version: -1 };
        op(&mut history, 1, 0, 2, set.clone(), ok(2, Response::Stat(stat)));
        assert_eq!(check(&history, &log()), vec![]);
        stat.version += 5;
        let mut wrong = History::new();
        op(&mut wrong, 1, 0, 2, set, ok(2, Response::Stat(stat)));
        assert!(matches!(&check(&wrong, &log())[..], [ReadViolation::WrongWriteResult { .. }]));
    }

    #[test]
    fn an_unjustified_error_is_flagged() {
        use ensemble::core::txn::TxnOp;
        // zxid 3 is this client's failed create of /a: NodeExists is justified.
        let mut txns = log().txns().to_vec();
        txns.push(txn(3, 2, 9, TxnOp::Error { code: ErrorCode::NodeExists.code() }));
        let committed = Committed::new(txns.clone());
        let mut history = History::new();
        let exists = OpOutcome::Fail { zxid: 3, code: ErrorCode::NodeExists.code() };
        op(&mut history, 1, 2, 9, create_request("/a", "v"), exists.clone());
        assert_eq!(check(&history, &committed), vec![]);
        // The same error for /b, which does not exist, is not.
        let mut wrong = History::new();
        op(&mut wrong, 1, 2, 9, create_request("/b", "v"), exists);
        assert!(matches!(
            &check(&wrong, &committed)[..],
            [ReadViolation::ErrorContradicted { .. }]
        ));
        // A BadVersion on a matching version is not either.
        txns[2] = txn(3, 2, 9, TxnOp::Error { code: ErrorCode::BadVersion.code() });
        let committed = Committed::new(txns);
        let mut wrong = History::new();
        let bad_version = OpOutcome::Fail { zxid: 3, code: ErrorCode::BadVersion.code() };
        let set = Request::SetData { path: "/a".into(), data: None, version: 1 };
        op(&mut wrong, 1, 2, 9, set, bad_version);
        assert!(matches!(
            &check(&wrong, &committed)[..],
            [ReadViolation::ErrorContradicted { .. }]
        ));
    }

    #[test]
    fn a_sync_must_see_every_write_completed_before_it() {
        let sync = |history: &mut History, at_ms, zxid: u64| {
            let request = Request::Sync { path: "/".into() };
            op(history, at_ms, 1, 7, request, ok(zxid, Response::Sync { path: "/".into() }))
        };
        let set = Request::SetData { path: "/a".into(), data: None, version: -1 };
        let stat = state_at(2).stat("/a").unwrap();
        let mut history = History::new();
        let write = op(&mut history, 1, 0, 2, set.clone(), ok(2, Response::Stat(stat)));
        sync(&mut history, 5, 2);
        assert_eq!(check(&history, &log()), vec![]);
        let mut history = History::new();
        op(&mut history, 1, 0, 2, set.clone(), ok(2, Response::Stat(stat)));
        let stale = sync(&mut history, 5, 1);
        assert_eq!(
            check(&history, &log()),
            vec![ReadViolation::SyncMissedWrite {
                sync: stale,
                sync_zxid: 1,
                write,
                write_zxid: 2
            }]
        );
        // A sync sent before the write completed may be answered before it.
        let mut history = History::new();
        let s = history.invoke(
            crate::time::SimTime::from_ms(1),
            channel(1),
            7,
            Request::Sync { path: "/".into() },
        );
        op(&mut history, 2, 0, 2, set, ok(2, Response::Stat(stat)));
        history.complete(
            crate::time::SimTime::from_ms(9),
            s,
            ok(1, Response::Sync { path: "/".into() }),
        );
        assert_eq!(check(&history, &log()), vec![]);
    }
}
