//! Writes are linearizable, and the zxids clients were given witness it.
//!
//! ZooKeeper puts every write in one total order, the zxid order, and that order respects real
//! time (the ZooKeeper paper's "linearizable writes"). Because each reply carries its txn's
//! zxid, the check is linear rather than a search (the WGL checker in `wgl.rs` is the
//! independent second opinion):
//! * **real-time order**: if write A's reply arrived before write B was sent, A's zxid is lower.
//!   A write's zxid is that of its txn in the committed log, found by (session, cxid): a
//!   success or a conditional failure is an entry there, and so is an unknown write that took
//!   effect (which can only be the later of a pair, its completion being unknown). "Before" is
//!   the order of the history's entries, exact even within one instant.
//! * **exactly once, as asked**: a request is committed at most once; a conditional failure
//!   (`NodeExists`, `NoNode`, `BadVersion`, `NotEmpty`, `NoChildrenForEphemerals`) is an error
//!   txn committed at the zxid of its reply (ZooKeeper's `ErrorTxn`), so the client never learns
//!   an outcome decided against uncommitted state; a request's txn is the operation the client
//!   sent (same kind, path, data, ephemeral owner) and was committed after it was sent; and the
//!   log holds no txn of a client session under a cxid the client never used.
//! * **conditional outcomes**: replaying the log, each request's outcome is the one ZooKeeper's
//!   `PrepRequestProcessor` decides from the state just before its txn, checks in its order. A
//!   success needs the node absent (create) or present at the expected version and, for a
//!   delete, childless; a failure must carry exactly the first failing check's code; a
//!   sequential create is named after its parent's `cversion`. This catches a stale
//!   conditional success, which the replay of the reads checker cannot see (the txn carries
//!   the new version, not the expected one).
//! * **multi is all-or-nothing**: its results are all successes, or ZooKeeper's failure pattern
//!   (0 up to the failing op, its code, `RuntimeInconsistency` after); its txn holds all the ops
//!   or only errors; and sub-op by sub-op, on the state as the earlier sub-ops left it, the
//!   outcome is the one the replay predicts.
//!
//! The durability checker already requires an acknowledged write at the zxid of its reply, and
//! the reads checker the Stat a write reports; this one does not repeat them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::prep::is_special_path;
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{NodeKind, Txn, TxnOp};
use ensemble::wire::proto::{CreateRequest, MultiOp, OpResult, Request, Response};
use ensemble::wire::types::{CreateMode, ErrorCode};

use crate::checker::Committed;
use crate::history::{self, History, OpId, OpOutcome, Operation};
use crate::time::SimTime;

/// A write history that no linearization in zxid order explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteViolation {
    /// A write that began after another had completed got a lower zxid.
    RealTimeOrder {
        /// The write that completed first.
        earlier: OpId,
        /// Its zxid.
        earlier_zxid: Zxid,
        /// When its reply arrived.
        earlier_done: SimTime,
        /// The write sent after that reply.
        later: OpId,
        /// Its (lower) zxid.
        later_zxid: Zxid,
        /// When it was sent.
        later_invoked: SimTime,
    },
    /// One request committed more than once.
    Duplicated {
        /// The operation.
        op: OpId,
        /// Every zxid its txn was committed at.
        zxids: Vec<Zxid>,
    },
    /// A conditional failure whose error txn is not committed at the zxid of the reply.
    FailureNotCommitted {
        /// The operation.
        op: OpId,
        /// The reply's zxid.
        zxid: i64,
        /// The error the client got.
        code: i32,
        /// What the log holds at that zxid.
        found: String,
    },
    /// A committed txn of a client session under a cxid the client never sent.
    Invented {
        /// Where.
        zxid: Zxid,
        /// The session.
        session: SessionId,
        /// The cxid.
        cxid: i32,
        /// The txn, briefly.
        txn: String,
    },
    /// A request's txn is not the operation the client asked for.
    TxnMismatch {
        /// The operation.
        op: OpId,
        /// The txn's zxid.
        zxid: Zxid,
        /// The request, briefly.
        expected: String,
        /// The txn, briefly.
        found: String,
    },
    /// A request's txn was committed before the client sent the request.
    CommittedBeforeInvoked {
        /// The operation.
        op: OpId,
        /// Its zxid.
        zxid: Zxid,
        /// When it was committed.
        committed_at: SimTime,
        /// When it was sent.
        invoked_at: SimTime,
    },
    /// The outcome is not what the state before the txn decides.
    OutcomeContradicted {
        /// The operation.
        op: OpId,
        /// Its zxid.
        zxid: Zxid,
        /// The sub-op of a multi (None for a single write).
        sub_op: Option<usize>,
        /// What the client got.
        observed: String,
        /// What the replay decides.
        expected: String,
        /// The state of the paths involved, before the txn.
        state: String,
    },
    /// A multi that partly happened, or whose results mix success and failure.
    MultiNotAtomic {
        /// The operation.
        op: OpId,
        /// Its zxid (zero if unknown).
        zxid: Zxid,
        /// What is mixed.
        what: String,
    },
}

/// The error codes whose outcome depends only on the tree, so the replay can judge them.
const CONDITIONAL: [ErrorCode; 5] = [
    ErrorCode::NodeExists,
    ErrorCode::NoNode,
    ErrorCode::BadVersion,
    ErrorCode::NotEmpty,
    ErrorCode::NoChildrenForEphemerals,
];

fn is_conditional(code: i32) -> bool {
    CONDITIONAL.iter().any(|c| c.code() == code)
}

/// Checks the write sub-history of `history` against `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<WriteViolation> {
    let mut violations = Vec::new();
    // (session, cxid) of every client write → the op (looked up only, never iterated).
    let mut by_request: HashMap<(SessionId, i32), OpId> = HashMap::new();
    let mut sessions = HashSet::new();
    for op in &history.ops {
        sessions.insert(op.session);
        if op.is_write() {
            by_request.insert((op.session, op.xid), op.id);
        }
    }
    // Per op, where its txn sits in the log (the first, if several).
    let mut zxid_of: Vec<Option<usize>> = vec![None; history.ops.len()];
    let mut again: BTreeMap<OpId, Vec<Zxid>> = BTreeMap::new();
    for (index, txn) in committed.txns().iter().enumerate() {
        if txn.cxid <= 0 || !sessions.contains(&txn.session) {
            continue; // createSession, expiry, internal txns
        }
        let Some(&id) = by_request.get(&(txn.session, txn.cxid)) else {
            violations.push(WriteViolation::Invented {
                zxid: txn.zxid,
                session: txn.session,
                cxid: txn.cxid,
                txn: brief_txn(&txn.op),
            });
            continue;
        };
        match zxid_of[id.0 as usize] {
            None => zxid_of[id.0 as usize] = Some(index),
            Some(first) => {
                again.entry(id).or_insert_with(|| vec![committed.txns()[first].zxid]).push(txn.zxid)
            }
        }
    }
    for (id, zxids) in again {
        violations.push(WriteViolation::Duplicated { op: id, zxids });
        zxid_of[id.0 as usize] = None;
    }
    for (id, index) in zxid_of.iter().enumerate().filter_map(|(i, z)| Some((i, (*z)?))) {
        let op = &history.ops[id];
        let txn = &committed.txns()[index];
        if let Some(found) = mismatch(&op.request, op.session, &txn.op) {
            violations.push(WriteViolation::TxnMismatch {
                op: op.id,
                zxid: txn.zxid,
                expected: history::describe_request(&op.request),
                found,
            });
        }
        if let Some(committed_at) = committed.time(index) {
            if committed_at < op.invoked_at {
                violations.push(WriteViolation::CommittedBeforeInvoked {
                    op: op.id,
                    zxid: txn.zxid,
                    committed_at,
                    invoked_at: op.invoked_at,
                });
            }
        }
    }
    for op in history.ops.iter().filter(|op| op.is_write()) {
        let OpOutcome::Fail { zxid, code } = op.outcome else { continue };
        if !is_conditional(code) {
            continue;
        }
        let own = committed.get(Zxid::from_wire(zxid)).filter(|t| {
            t.session == op.session && t.cxid == op.xid && matches!(t.op, TxnOp::Error { .. })
        });
        if own.is_none() {
            let found = committed.get(Zxid::from_wire(zxid)).map_or("nothing".to_string(), |t| {
                format!("session {} cxid {}: {}", t.session, t.cxid, brief_txn(&t.op))
            });
            violations.push(WriteViolation::FailureNotCommitted { op: op.id, zxid, code, found });
        }
    }
    violations.extend(real_time_order(history, committed, &zxid_of));
    violations.extend(replay(history, committed, &zxid_of));
    violations
}

/// Flags every write whose zxid is below that of a write completed before it was sent.
fn real_time_order(
    history: &History,
    committed: &Committed,
    zxid_of: &[Option<usize>],
) -> Vec<WriteViolation> {
    let spans = history.spans();
    let zxid = |id: &OpId| committed.txns()[zxid_of[id.0 as usize].expect("placed")].zxid;
    let placed =
        || zxid_of.iter().enumerate().filter(|(_, z)| z.is_some()).map(|(i, _)| OpId(i as u32));
    // Writes with a known completion, by the position of their return.
    let mut done: Vec<(usize, OpId)> = placed()
        .filter(|id| {
            matches!(history.op(*id).outcome, OpOutcome::Ok { .. } | OpOutcome::Fail { .. })
        })
        .filter_map(|id| spans[id.0 as usize].returned.map(|at| (at, id)))
        .collect();
    done.sort_unstable();
    let mut begun: Vec<(usize, OpId)> =
        placed().map(|id| (spans[id.0 as usize].invoked, id)).collect();
    begun.sort_unstable();
    let mut violations = Vec::new();
    let mut highest: Option<(Zxid, OpId)> = None;
    let mut next = 0;
    for (invoked, later) in begun {
        while let Some(&(returned, earlier)) = done.get(next) {
            if returned >= invoked {
                break;
            }
            if highest.is_none_or(|(z, _)| zxid(&earlier) > z) {
                highest = Some((zxid(&earlier), earlier));
            }
            next += 1;
        }
        let Some((earlier_zxid, earlier)) = highest else { continue };
        if earlier_zxid > zxid(&later) {
            let (a, b) = (history.op(earlier), history.op(later));
            violations.push(WriteViolation::RealTimeOrder {
                earlier,
                earlier_zxid,
                earlier_done: a.completed_at.unwrap_or_default(),
                later,
                later_zxid: zxid(&later),
                later_invoked: b.invoked_at,
            });
        }
    }
    violations
}

/// Replays the log and judges each write's outcome against the state just before its txn.
fn replay(
    history: &History,
    committed: &Committed,
    zxid_of: &[Option<usize>],
) -> Vec<WriteViolation> {
    let mut at_index: Vec<Option<OpId>> = vec![None; committed.txns().len()];
    for (id, index) in zxid_of.iter().enumerate() {
        if let Some(index) = index {
            at_index[*index] = Some(OpId(id as u32));
        }
    }
    let mut violations = Vec::new();
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    for (index, txn) in committed.txns().iter().enumerate() {
        if let Some(id) = at_index[index] {
            judge(history.op(id), txn, &tree, &mut violations);
        }
        tree.apply(txn, &mut events);
        events.clear();
    }
    violations
}

/// One sub-operation of a write, as preparation sees it.
#[derive(Clone, Copy, Debug)]
enum Step<'r> {
    Create(&'r CreateRequest),
    Delete { path: &'r str, version: i32 },
    SetData { path: &'r str, version: i32 },
    Check { path: &'r str, version: i32 },
}

impl<'r> Step<'r> {
    fn of_multi(op: &'r MultiOp) -> Step<'r> {
        match op {
            MultiOp::Create(_, create) => Step::Create(create),
            MultiOp::Delete { path, version } => Step::Delete { path, version: *version },
            MultiOp::SetData { path, version, .. } => Step::SetData { path, version: *version },
            MultiOp::Check { path, version } => Step::Check { path, version: *version },
        }
    }

    fn of_request(request: &'r Request) -> Option<Step<'r>> {
        Some(match request {
            Request::Create(_, create) => Step::Create(create),
            Request::Delete { path, version } => Step::Delete { path, version: *version },
            Request::SetData { path, version, .. } => Step::SetData { path, version: *version },
            _ => return None,
        })
    }

    /// The paths whose state decides this step: its parent and itself.
    fn paths(&self) -> (&'r str, &'r str) {
        let path = match *self {
            Step::Create(create) => create.path.as_str(),
            Step::Delete { path, .. } | Step::SetData { path, .. } | Step::Check { path, .. } => {
                path
            }
        };
        (parent(path), path)
    }
}

/// A snapshot of the nodes that decide a step, for a violation's message.
fn describe(snapshot: &[(&str, Option<Node>); 2]) -> String {
    let parts: Vec<String> = snapshot
        .iter()
        .enumerate()
        .filter(|(i, (path, _))| *i == 0 || *path != snapshot[0].0)
        .map(|(_, (path, node))| match node {
            None => format!("{path} absent"),
            Some(n) => format!(
                "{path} version {} cversion {} children {} owner {:#x}",
                n.version, n.cversion, n.children, n.owner
            ),
        })
        .collect();
    parts.join(", ")
}

/// What preparation decides for a step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    /// Success: the node created (create) and the data version after (create, setData).
    Ok { created: Option<String>, version: Option<i32> },
    /// Failure with this code.
    Err(ErrorCode),
    /// Something this checker does not model (TTL, containers, ACLs, bad paths).
    Unjudged,
}

/// The little of a node that preparation looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    version: i32,
    cversion: i32,
    children: i32,
    owner: i64,
}

/// The tree before a txn, with the changes of the earlier sub-ops of a multi on top.
struct Before<'t> {
    tree: &'t DataTree,
    overlay: BTreeMap<String, Option<Node>>,
}

impl Before<'_> {
    fn get(&self, path: &str) -> Option<Node> {
        match self.overlay.get(path) {
            Some(node) => *node,
            None => self.tree.view(path).map(|v| Node {
                version: v.stat.version,
                cversion: v.stat.cversion,
                children: v.num_children,
                owner: v.stat.ephemeral_owner,
            }),
        }
    }

    fn set(&mut self, path: &str, node: Option<Node>) {
        self.overlay.insert(path.to_string(), node);
    }

    /// The nodes that decide `step`, as they are now (formatted only if a violation needs it).
    fn snapshot<'s>(&self, step: Step<'s>) -> [(&'s str, Option<Node>); 2] {
        let (parent_path, path) = step.paths();
        [(parent_path, self.get(parent_path)), (path, self.get(path))]
    }

    /// Decides `step` for `session` as `PrepRequestProcessor` would, and applies its effect.
    fn decide(&mut self, step: Step<'_>, session: SessionId) -> Decision {
        match step {
            Step::Create(create) => {
                let Some(mode) = CreateMode::from_code(create.flags) else {
                    return Decision::Unjudged;
                };
                if mode.is_ttl() || mode.is_container() || !create.path.starts_with('/') {
                    return Decision::Unjudged;
                }
                let parent_path = parent(&create.path);
                let Some(parent) = self.get(parent_path) else {
                    return Decision::Err(ErrorCode::NoNode);
                };
                let path = if mode.is_sequential() {
                    format!("{}{:010}", create.path, parent.cversion)
                } else {
                    create.path.clone()
                };
                if self.get(&path).is_some() {
                    return Decision::Err(ErrorCode::NodeExists);
                }
                if matches!(NodeKind::from_owner(parent.owner), NodeKind::Ephemeral(_)) {
                    return Decision::Err(ErrorCode::NoChildrenForEphemerals);
                }
                let grown = Node {
                    cversion: parent.cversion.wrapping_add(1),
                    children: parent.children + 1,
                    ..parent
                };
                self.set(parent_path, Some(grown));
                let owner = if mode.is_ephemeral() { session.0 } else { 0 };
                self.set(&path, Some(Node { version: 0, cversion: 0, children: 0, owner }));
                Decision::Ok { created: Some(path), version: Some(0) }
            }
            Step::Delete { path, version } => {
                if is_special_path(path) || !path.starts_with('/') {
                    return Decision::Unjudged;
                }
                let parent_path = parent(path);
                let Some(parent) = self.get(parent_path) else {
                    return Decision::Err(ErrorCode::NoNode);
                };
                let Some(node) = self.get(path) else { return Decision::Err(ErrorCode::NoNode) };
                if version != -1 && version != node.version {
                    return Decision::Err(ErrorCode::BadVersion);
                }
                if node.children > 0 {
                    return Decision::Err(ErrorCode::NotEmpty);
                }
                self.set(parent_path, Some(Node { children: parent.children - 1, ..parent }));
                self.set(path, None);
                Decision::Ok { created: None, version: None }
            }
            Step::SetData { path, version } | Step::Check { path, version } => {
                let Some(node) = self.get(path) else { return Decision::Err(ErrorCode::NoNode) };
                if version != -1 && version != node.version {
                    return Decision::Err(ErrorCode::BadVersion);
                }
                if matches!(step, Step::Check { .. }) {
                    return Decision::Ok { created: None, version: None };
                }
                let next = node.version.wrapping_add(1);
                let next = if next == -1 { 0 } else { next };
                self.set(path, Some(Node { version: next, ..node }));
                Decision::Ok { created: None, version: Some(next) }
            }
        }
    }
}

/// What the client saw of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// Success, with the created path and the version after, where the reply tells.
    Ok { created: Option<String>, version: Option<i32> },
    /// Failure with this code.
    Err(i32),
    /// Nothing to judge (a sub-op after the failing one).
    Nothing,
}

impl Seen {
    fn of_response(response: &Response) -> Seen {
        match response {
            Response::Create { path } => Seen::Ok { created: Some(path.clone()), version: None },
            Response::Create2 { path, stat } => {
                Seen::Ok { created: Some(path.clone()), version: Some(stat.version) }
            }
            Response::Stat(stat) => Seen::Ok { created: None, version: Some(stat.version) },
            _ => Seen::Ok { created: None, version: None },
        }
    }

    fn of_result(result: &OpResult) -> Seen {
        match result {
            OpResult::Create { path } => Seen::Ok { created: Some(path.clone()), version: None },
            OpResult::Create2 { path, stat } => {
                Seen::Ok { created: Some(path.clone()), version: Some(stat.version) }
            }
            OpResult::SetData { stat } => Seen::Ok { created: None, version: Some(stat.version) },
            OpResult::Error { err } => Seen::Err(*err),
            _ => Seen::Ok { created: None, version: None },
        }
    }

    /// Whether the decision explains what was seen.
    fn agrees(&self, decision: &Decision) -> bool {
        match (self, decision) {
            (_, Decision::Unjudged) | (Seen::Nothing, _) => true,
            (Seen::Err(code), _) if !is_conditional(*code) => true,
            (Seen::Err(code), Decision::Err(expected)) => *code == expected.code(),
            (
                Seen::Ok { created, version },
                Decision::Ok { created: expected_path, version: expected_version },
            ) => {
                (created.is_none() || created == expected_path)
                    && (version.is_none()
                        || expected_version.is_none()
                        || version == expected_version)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Ok { created, version } => write_ok(f, created, version),
            Seen::Err(code) => write!(f, "{}", history::error_name(*code)),
            Seen::Nothing => write!(f, "nothing"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Ok { created, version } => write_ok(f, created, version),
            Decision::Err(code) => write!(f, "{code:?}"),
            Decision::Unjudged => write!(f, "anything"),
        }
    }
}

fn write_ok(
    f: &mut fmt::Formatter<'_>,
    created: &Option<String>,
    version: &Option<i32>,
) -> fmt::Result {
    write!(f, "ok")?;
    if let Some(path) = created {
        write!(f, " created {path}")?;
    }
    if let Some(version) = version {
        write!(f, " version {version}")?;
    }
    Ok(())
}

/// Judges one write whose txn is `txn`, against `tree`, the state just before it.
fn judge(op: &Operation, txn: &Txn, tree: &DataTree, violations: &mut Vec<WriteViolation>) {
    let mut before = Before { tree, overlay: BTreeMap::new() };
    let contradicted =
        |sub_op, seen: &Seen, decision: &Decision, state: [(&str, Option<Node>); 2]| {
            WriteViolation::OutcomeContradicted {
                op: op.id,
                zxid: txn.zxid,
                sub_op,
                observed: seen.to_string(),
                expected: decision.to_string(),
                state: describe(&state),
            }
        };
    match (&op.request, &op.outcome) {
        (Request::Multi(ops), outcome) => {
            let steps: Vec<Step> = ops.iter().map(Step::of_multi).collect();
            let txn_ops = match &txn.op {
                TxnOp::Multi(txn_ops) => txn_ops.as_slice(),
                _ => &[], // a mismatch, reported already
            };
            let errors = txn_ops.iter().filter(|t| matches!(t, TxnOp::Error { .. })).count();
            if errors != 0 && errors != txn_ops.len() {
                violations.push(WriteViolation::MultiNotAtomic {
                    op: op.id,
                    zxid: txn.zxid,
                    what: format!("its txn holds {errors} errors among {} ops", txn_ops.len()),
                });
                return;
            }
            let (seen, failed) = match outcome {
                OpOutcome::Ok { response: Response::Multi(results), .. } => {
                    match multi_seen(results, steps.len()) {
                        Ok(seen) => seen,
                        Err(what) => {
                            violations.push(WriteViolation::MultiNotAtomic {
                                op: op.id,
                                zxid: txn.zxid,
                                what,
                            });
                            return;
                        }
                    }
                }
                _ => return,
            };
            if failed != (errors > 0) && !txn_ops.is_empty() {
                let what = if failed {
                    "the client was told it failed, but its txn applies its ops"
                } else {
                    "the client was told it succeeded, but its txn is an error"
                };
                violations.push(WriteViolation::MultiNotAtomic {
                    op: op.id,
                    zxid: txn.zxid,
                    what: what.to_string(),
                });
                return;
            }
            for (index, (step, seen)) in steps.iter().zip(&seen).enumerate() {
                if *seen == Seen::Nothing {
                    break;
                }
                let state = before.snapshot(*step);
                let decision = before.decide(*step, op.session);
                if !seen.agrees(&decision) {
                    violations.push(contradicted(Some(index), seen, &decision, state));
                    return;
                }
                if matches!(seen, Seen::Err(_)) {
                    break;
                }
            }
        }
        (request, OpOutcome::Ok { response, .. }) => {
            let Some(step) = Step::of_request(request) else { return };
            let seen = Seen::of_response(response);
            let state = before.snapshot(step);
            let decision = before.decide(step, op.session);
            if !seen.agrees(&decision) {
                violations.push(contradicted(None, &seen, &decision, state));
            }
        }
        (request, OpOutcome::Fail { code, .. }) => {
            let Some(step) = Step::of_request(request) else { return };
            let seen = Seen::Err(*code);
            let state = before.snapshot(step);
            let decision = before.decide(step, op.session);
            if !seen.agrees(&decision) {
                violations.push(contradicted(None, &seen, &decision, state));
            }
        }
        _ => {}
    }
}

/// What a multi's results say per op: all successes, or ZooKeeper's failure pattern (0 before
/// the failing op, its code, `RuntimeInconsistency` after; or, for a multi that failed as a
/// whole, the same code everywhere). Anything else is not atomic. Also says whether it failed.
fn multi_seen(results: &[OpResult], ops: usize) -> Result<(Vec<Seen>, bool), String> {
    if results.len() != ops {
        return Err(format!("{} results for {ops} ops", results.len()));
    }
    let errors: Vec<Option<i32>> = results
        .iter()
        .map(|r| match r {
            OpResult::Error { err } => Some(*err),
            _ => None,
        })
        .collect();
    let error_count = errors.iter().flatten().count();
    if error_count == 0 {
        return Ok((results.iter().map(Seen::of_result).collect(), false));
    }
    if error_count != ops {
        return Err(format!("{error_count} error results among {ops}: {results:?}"));
    }
    let codes: Vec<i32> = errors.into_iter().flatten().collect();
    if codes.iter().all(|c| *c == codes[0] && *c != 0) {
        return Ok((vec![Seen::Nothing; ops], true)); // failed as a whole at apply
    }
    let Some(failing) = codes.iter().position(|c| *c != 0) else {
        return Err("every result is an error 0".to_string());
    };
    let runtime = ErrorCode::RuntimeInconsistency.code();
    if codes[failing + 1..].iter().any(|c| *c != runtime) {
        return Err(format!("error results out of ZooKeeper's pattern: {codes:?}"));
    }
    let seen = (0..ops)
        .map(|i| match i.cmp(&failing) {
            std::cmp::Ordering::Less => Seen::Ok { created: None, version: None },
            std::cmp::Ordering::Equal => Seen::Err(codes[i]),
            std::cmp::Ordering::Greater => Seen::Nothing,
        })
        .collect();
    Ok((seen, true))
}

/// Whether `op`, a txn of a request by `session`, is what `request` asks for (None) or not.
fn mismatch(request: &Request, session: SessionId, op: &TxnOp) -> Option<String> {
    let fits = match (request, op) {
        (Request::Multi(ops), TxnOp::Multi(txns)) => {
            // Errors mixed with ops are the business of the atomicity check.
            ops.len() == txns.len()
                && ops
                    .iter()
                    .zip(txns)
                    .all(|(o, t)| matches!(t, TxnOp::Error { .. }) || sub_op_fits(o, session, t))
        }
        (Request::CloseSession, TxnOp::CloseSession) => true,
        (Request::Multi(_) | Request::CloseSession, _) => false,
        (_, TxnOp::Error { .. }) => true,
        (Request::Create(_, create), op) => create_fits(create, session, op),
        (Request::Delete { path, .. }, TxnOp::Delete { path: p }) => path == p,
        (Request::SetData { path, data, .. }, TxnOp::SetData { path: p, data: d, .. }) => {
            path == p && data == d
        }
        (Request::SetAcl { path, .. }, TxnOp::SetAcl { path: p, .. }) => path == p,
        _ => false,
    };
    (!fits).then(|| brief_txn(op))
}

fn sub_op_fits(op: &MultiOp, session: SessionId, txn: &TxnOp) -> bool {
    match (op, txn) {
        (MultiOp::Create(_, create), txn) => create_fits(create, session, txn),
        (MultiOp::Delete { path, .. }, TxnOp::Delete { path: p }) => path == p,
        (MultiOp::SetData { path, data, .. }, TxnOp::SetData { path: p, data: d, .. }) => {
            path == p && data == d
        }
        (MultiOp::Check { path, .. }, TxnOp::Check { path: p }) => path == p,
        _ => false,
    }
}

fn create_fits(create: &CreateRequest, session: SessionId, txn: &TxnOp) -> bool {
    let TxnOp::Create { path, data, ephemeral_owner, .. } = txn else { return false };
    let Some(mode) = CreateMode::from_code(create.flags) else { return true };
    let named = if mode.is_sequential() {
        path.strip_prefix(create.path.as_str()).is_some_and(|suffix| suffix.len() == 10)
    } else {
        *path == create.path
    };
    let owner_fits = match NodeKind::from_owner(*ephemeral_owner) {
        NodeKind::Ephemeral(owner) => mode.is_ephemeral() && owner == session,
        NodeKind::Persistent => !mode.is_ephemeral() && !mode.is_container() && !mode.is_ttl(),
        NodeKind::Container => mode.is_container(),
        NodeKind::Ttl(_) => mode.is_ttl(),
    };
    named && *data == create.data && owner_fits
}

/// A one-line summary of a txn.
pub(crate) fn brief_txn(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { timeout_ms, .. } => format!("createSession timeout={timeout_ms}"),
        TxnOp::CloseSession => "closeSession".to_string(),
        TxnOp::Create { path, data, ephemeral_owner, .. } => format!(
            "create {path} {} owner={ephemeral_owner:#x}",
            data.as_ref().map_or("null".into(), |d| String::from_utf8_lossy(d).into_owned())
        ),
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData { path, data, version } => format!(
            "setData {path} {} -> version {version}",
            data.as_ref().map_or("null".into(), |d| String::from_utf8_lossy(d).into_owned())
        ),
        TxnOp::SetAcl { path, version, .. } => format!("setACL {path} -> aversion {version}"),
        TxnOp::Check { path } => format!("check {path}"),
        TxnOp::Multi(ops) => {
            let parts: Vec<String> = ops.iter().map(brief_txn).collect();
            format!("multi [{}]", parts.join("; "))
        }
        TxnOp::Error { code } => format!("error {}", history::error_name(*code)),
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(at) => &path[..at],
    }
}

impl fmt::Display for WriteViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteViolation::RealTimeOrder {
                earlier,
                earlier_zxid,
                earlier_done,
                later,
                later_zxid,
                later_invoked,
            } => write!(
                f,
                "op #{} was sent at {later_invoked}, after op #{} completed at {earlier_done} \
                 with zxid {earlier_zxid}, yet got the lower zxid {later_zxid}",
                later.0, earlier.0
            ),
            WriteViolation::Duplicated { op, zxids } => {
                let zxids: Vec<String> = zxids.iter().map(|z| z.to_string()).collect();
                write!(
                    f,
                    "op #{} was committed {} times: at {}",
                    op.0,
                    zxids.len(),
                    zxids.join(", ")
                )
            }
            WriteViolation::FailureNotCommitted { op, zxid, code, found } => write!(
                f,
                "op #{} failed with {} at zxid {zxid:#x}, but its error txn is not committed \
                 there (the log has {found})",
                op.0,
                history::error_name(*code)
            ),
            WriteViolation::Invented { zxid, session, cxid, txn } => write!(
                f,
                "the log has {txn} at {zxid} for session {session} cxid {cxid}, which its client \
                 never sent"
            ),
            WriteViolation::TxnMismatch { op, zxid, expected, found } => {
                write!(f, "op #{} asked for {expected}, but its txn at {zxid} is {found}", op.0)
            }
            WriteViolation::CommittedBeforeInvoked { op, zxid, committed_at, invoked_at } => {
                write!(
                    f,
                    "op #{} was sent at {invoked_at}, but its txn {zxid} was committed at \
                     {committed_at}",
                    op.0
                )
            }
            WriteViolation::OutcomeContradicted { op, zxid, sub_op, observed, expected, state } => {
                let which = sub_op.map_or(String::new(), |i| format!(" (sub-op {i})"));
                write!(
                    f,
                    "op #{}{which} at zxid {zxid} got {observed}, but before its txn {state}, \
                     so it should get {expected}",
                    op.0
                )
            }
            WriteViolation::MultiNotAtomic { op, zxid, what } => {
                write!(f, "multi op #{} at zxid {zxid} is not all-or-nothing: {what}", op.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ensemble::wire::proto::CreateKind;
    use ensemble::wire::types::{Acl, Stat};

    use super::*;
    use crate::checker::fixtures::*;
    use crate::history::UnknownReason;

    fn set(path: &str, data: &str, version: i32) -> Request {
        Request::SetData {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            version,
        }
    }

    fn stat(version: i32) -> Response {
        Response::Stat(Stat { version, ..Stat::default() })
    }

    fn created(path: &str) -> Response {
        Response::Create { path: path.into() }
    }

    #[test]
    fn writes_in_real_time_order_pass() {
        let mut history = History::new();
        op(&mut history, 1, 0, 1, create_request("/a", "x"), ok(1, created("/a")));
        op(&mut history, 3, 1, 1, set("/a", "y", 0), ok(2, stat(1)));
        let committed =
            Committed::new(vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 1, 1, "/a", "y", 1)]);
        assert_eq!(check(&history, &committed), vec![]);
    }

    #[test]
    fn a_later_write_with_a_lower_zxid_is_flagged() {
        let mut history = History::new();
        // /b is created at zxid 2 and acknowledged; then /a is created at zxid 1?
        let b = op(&mut history, 1, 0, 1, create_request("/b", "x"), ok(2, created("/b")));
        let a = op(&mut history, 5, 1, 1, create_request("/a", "y"), ok(1, created("/a")));
        let committed =
            Committed::new(vec![create_txn(1, 1, 1, "/a", "y"), create_txn(2, 0, 1, "/b", "x")]);
        let violations = check(&history, &committed);
        assert!(
            matches!(
                &violations[..],
                [WriteViolation::RealTimeOrder { earlier, later, .. }] if *earlier == b && *later == a
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn concurrent_writes_may_take_either_order() {
        let mut history = History::new();
        let c0 = history.invoke(SimTime::from_ms(1), channel(0), 1, create_request("/b", "x"));
        let c1 = history.invoke(SimTime::from_ms(2), channel(1), 1, create_request("/a", "y"));
        history.complete(SimTime::from_ms(3), c0, ok(2, created("/b")));
        history.complete(SimTime::from_ms(4), c1, ok(1, created("/a")));
        let committed =
            Committed::new(vec![create_txn(1, 1, 1, "/a", "y"), create_txn(2, 0, 1, "/b", "x")]);
        assert_eq!(check(&history, &committed), vec![]);
    }

    #[test]
    fn an_unknown_write_that_took_effect_is_ordered_too() {
        let mut history = History::new();
        op(&mut history, 1, 0, 1, create_request("/b", "x"), ok(2, created("/b")));
        let lost = OpOutcome::Unknown(UnknownReason::Disconnected);
        let late = op(&mut history, 5, 1, 1, create_request("/a", "y"), lost);
        let committed =
            Committed::new(vec![create_txn(1, 1, 1, "/a", "y"), create_txn(2, 0, 1, "/b", "x")]);
        let violations = check(&history, &committed);
        assert!(
            matches!(&violations[..], [WriteViolation::RealTimeOrder { later, .. }] if *later == late),
            "{violations:?}"
        );
    }

    #[test]
    fn a_request_committed_twice_is_flagged() {
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 1, set("/a", "y", -1), ok(2, stat(1)));
        let committed = Committed::new(vec![
            create_txn(1, 1, 1, "/a", "x"),
            set_txn(2, 0, 1, "/a", "y", 1),
            set_txn(3, 0, 1, "/a", "y", 2),
        ]);
        assert_eq!(
            check(&history, &committed),
            vec![WriteViolation::Duplicated { op: id, zxids: vec![Zxid(2), Zxid(3)] }]
        );
    }

    #[test]
    fn a_conditional_failure_must_be_a_committed_error_txn() {
        let mut history = History::new();
        let exists = OpOutcome::Fail { zxid: 1, code: ErrorCode::NodeExists.code() };
        let id = op(&mut history, 1, 0, 2, create_request("/a", "y"), exists);
        // The log has someone else's create at zxid 1 and nothing of op #0.
        let committed = Committed::new(vec![create_txn(1, 1, 1, "/a", "x")]);
        let violations = check(&history, &committed);
        assert!(
            matches!(&violations[..], [WriteViolation::FailureNotCommitted { op, .. }] if *op == id),
            "{violations:?}"
        );
        // Other failures (e.g. SessionExpired) take no txn.
        let mut history = History::new();
        let expired = OpOutcome::Fail { zxid: 1, code: ErrorCode::SessionExpired.code() };
        op(&mut history, 1, 0, 2, create_request("/a", "y"), expired);
        assert_eq!(check(&history, &committed), vec![]);
    }

    #[test]
    fn an_invented_or_mismatched_txn_is_flagged() {
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 1, set("/a", "mine", -1), ok(2, stat(1)));
        let committed = Committed::new(vec![
            create_txn(1, 1, 1, "/a", "x"),
            set_txn(2, 0, 1, "/a", "not mine", 1),
            set_txn(3, 0, 9, "/a", "never sent", 2),
        ]);
        let violations = check(&history, &committed);
        assert!(
            violations.contains(&WriteViolation::Invented {
                zxid: Zxid(3),
                session: session(0),
                cxid: 9,
                txn: "setData /a never sent -> version 2".into()
            }),
            "{violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, WriteViolation::TxnMismatch { op, .. } if *op == id)),
            "{violations:?}"
        );
    }

    #[test]
    fn a_txn_committed_before_its_request_was_sent_is_flagged() {
        let mut history = History::new();
        let id = op(&mut history, 50, 0, 1, create_request("/a", "x"), ok(1, created("/a")));
        let committed =
            Committed::with_times(vec![create_txn(1, 0, 1, "/a", "x")], vec![SimTime::from_ms(10)]);
        let violations = check(&history, &committed);
        assert!(
            matches!(&violations[..], [WriteViolation::CommittedBeforeInvoked { op, .. }] if *op == id),
            "{violations:?}"
        );
    }

    #[test]
    fn a_stale_conditional_success_is_flagged() {
        // /a is at version 1 when op #1's setData expecting version 0 is committed.
        let mut history = History::new();
        op(&mut history, 1, 1, 1, create_request("/a", "x"), ok(1, created("/a")));
        op(&mut history, 3, 1, 2, set("/a", "y", -1), ok(2, stat(1)));
        let stale = op(&mut history, 5, 0, 1, set("/a", "z", 0), ok(3, stat(2)));
        let committed = Committed::new(vec![
            create_txn(1, 1, 1, "/a", "x"),
            set_txn(2, 1, 2, "/a", "y", 1),
            set_txn(3, 0, 1, "/a", "z", 2),
        ]);
        let violations = check(&history, &committed);
        assert!(
            matches!(
                &violations[..],
                [WriteViolation::OutcomeContradicted { op, expected, .. }]
                    if *op == stale && expected == "BadVersion"
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn a_failure_must_carry_the_first_failing_check() {
        use ensemble::core::txn::TxnOp;
        let bad_version = ErrorCode::BadVersion.code();
        let mut history = History::new();
        // delete /b (absent) with a version: ZooKeeper says NoNode before looking at versions.
        let request = Request::Delete { path: "/b".into(), version: 3 };
        let id = op(&mut history, 1, 0, 1, request, OpOutcome::Fail { zxid: 1, code: bad_version });
        let committed = Committed::new(vec![txn(1, 0, 1, TxnOp::Error { code: bad_version })]);
        let violations = check(&history, &committed);
        assert!(
            matches!(
                &violations[..],
                [WriteViolation::OutcomeContradicted { op, expected, .. }]
                    if *op == id && expected == "NoNode"
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn a_sequential_create_is_named_after_the_parent_cversion() {
        let mut request = create_request("/s-", "x");
        if let Request::Create(_, create) = &mut request {
            create.flags = CreateMode::PersistentSequential.code();
        }
        // The persisted cversion counts creations (the client Stat reports another number).
        let root_cversion = DataTree::new().view("/").unwrap().stat.cversion;
        let right = format!("/s-{root_cversion:010}");
        let wrong = format!("/s-{:010}", root_cversion + 5);
        for (name, expect_ok) in [(&right, true), (&wrong, false)] {
            let mut history = History::new();
            let id = op(&mut history, 1, 0, 1, request.clone(), ok(1, created(name)));
            let committed = Committed::new(vec![create_txn(1, 0, 1, name, "x")]);
            let violations = check(&history, &committed);
            if expect_ok {
                assert_eq!(violations, vec![], "{name}");
            } else {
                assert!(
                    matches!(&violations[..], [WriteViolation::OutcomeContradicted { op, .. }] if *op == id),
                    "{violations:?}"
                );
            }
        }
    }

    fn multi_create(path: &str) -> MultiOp {
        MultiOp::Create(
            CreateKind::Create,
            CreateRequest {
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        )
    }

    fn multi_create_txn(path: &str) -> TxnOp {
        TxnOp::Create {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe().into(),
            ephemeral_owner: 0,
        }
    }

    #[test]
    fn a_multi_is_all_or_nothing() {
        let ops = vec![multi_create("/a"), MultiOp::Check { path: "/a".into(), version: 0 }];
        let request = Request::Multi(ops);
        let good = vec![OpResult::Create { path: "/a".into() }, OpResult::Check];
        let txn_ok = txn(
            1,
            0,
            1,
            TxnOp::Multi(vec![multi_create_txn("/a"), TxnOp::Check { path: "/a".into() }]),
        );
        let mut history = History::new();
        op(&mut history, 1, 0, 1, request.clone(), ok(1, Response::Multi(good)));
        assert_eq!(check(&history, &Committed::new(vec![txn_ok.clone()])), vec![]);

        // Results that mix a success and a failure.
        let mixed = vec![
            OpResult::Create { path: "/a".into() },
            OpResult::Error { err: ErrorCode::BadVersion.code() },
        ];
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 1, request.clone(), ok(1, Response::Multi(mixed)));
        let violations = check(&history, &Committed::new(vec![txn_ok]));
        assert!(
            matches!(&violations[..], [WriteViolation::MultiNotAtomic { op, .. }] if *op == id),
            "{violations:?}"
        );

        // A txn that applies one op and fails the other.
        let half =
            txn(1, 0, 1, TxnOp::Multi(vec![multi_create_txn("/a"), TxnOp::Error { code: -103 }]));
        let failed =
            vec![OpResult::Error { err: 0 }, OpResult::Error { err: ErrorCode::BadVersion.code() }];
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 1, request, ok(1, Response::Multi(failed)));
        let violations = check(&history, &Committed::new(vec![half]));
        assert!(
            matches!(&violations[..], [WriteViolation::MultiNotAtomic { op, .. }] if *op == id),
            "{violations:?}"
        );
    }

    #[test]
    fn a_failed_multi_must_fail_where_the_replay_says() {
        // multi(create /a, check /a v0): nothing fails, yet the client was told check failed.
        let ops = vec![multi_create("/a"), MultiOp::Check { path: "/a".into(), version: 0 }];
        let failed =
            vec![OpResult::Error { err: 0 }, OpResult::Error { err: ErrorCode::BadVersion.code() }];
        let error_txn =
            txn(1, 0, 1, TxnOp::Multi(vec![TxnOp::Error { code: 0 }, TxnOp::Error { code: -103 }]));
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 1, Request::Multi(ops), ok(1, Response::Multi(failed)));
        let violations = check(&history, &Committed::new(vec![error_txn.clone()]));
        assert!(
            matches!(
                &violations[..],
                [WriteViolation::OutcomeContradicted { op, sub_op: Some(1), .. }] if *op == id
            ),
            "{violations:?}"
        );
        // multi(check /a v0, create /a): /a is absent, so NoNode at sub-op 0 is right.
        let ops = vec![MultiOp::Check { path: "/a".into(), version: 0 }, multi_create("/a")];
        let failed = vec![
            OpResult::Error { err: ErrorCode::NoNode.code() },
            OpResult::Error { err: ErrorCode::RuntimeInconsistency.code() },
        ];
        let mut history = History::new();
        op(&mut history, 1, 0, 1, Request::Multi(ops), ok(1, Response::Multi(failed)));
        let error_txn = txn(
            1,
            0,
            1,
            TxnOp::Multi(vec![TxnOp::Error { code: -101 }, TxnOp::Error { code: -2 }]),
        );
        assert_eq!(check(&history, &Committed::new(vec![error_txn])), vec![]);
    }
}
