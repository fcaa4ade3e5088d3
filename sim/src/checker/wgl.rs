//! A second, independent opinion on the writes: a Wing–Gong linearizability search.
//!
//! The zxid-witnessed checkers trust the zxids the servers hand out and judge outcomes with the
//! core's own `DataTree`. This one trusts neither: it looks only at what clients sent, what
//! they heard back and when, and asks whether some order of the writes, each placed between
//! its invocation and its reply, explains every reply under a sequential model of a znode.
//! It is Porcupine's algorithm: Wing & Gong's backtracking search, Lowe's memoisation of
//! (linearized set as a bitset, model state), and Horn & Kroening's P-compositionality — the
//! history is split by path and each path is checked on its own (linearizability is
//! compositional, so a violation on one path is a violation of the whole).
//!
//! The model of one path is `Absent` or `Present { version, owner }`:
//! * create succeeds on an absent node (version 0, owned by the session if ephemeral); it fails
//!   with `NodeExists` on a present one, and may fail with `NoNode` or
//!   `NoChildrenForEphemerals` (parent missing or ephemeral) only on an absent one;
//! * setData, delete and a multi's check need the node present (else `NoNode`) at the expected
//!   version unless it is -1 (else `BadVersion`); setData bumps the version, delete removes the
//!   node, and a delete that passed those checks may still fail with `NotEmpty`;
//! * an ephemeral node may vanish at any moment (its session may close or expire without an
//!   operation on the path saying so).
//!
//! What crosses paths — a parent's existence, a node's children, a multi's atomicity, session
//! expiry — is left out, which only ever makes the model accept more, never less: the search
//! is sound (it never rejects a linearizable history), just weaker than the full ZooKeeper
//! semantics. A multi is projected onto each path it touches: its sub-ops there form one
//! compound step that succeeds as a whole, or a guard that must hold (the sub-ops before the
//! failing one succeeded, and the failing one failed with its code) without changing anything.
//!
//! Outcomes: an **ok** or **fail** operation must take effect (or not) at one point between its
//! invocation and its reply; an **unknown** one may take effect at any point after its
//! invocation, or never, with no upper bound. Failures that do not depend on the tree (e.g.
//! `SessionExpired`) had no effect and constrain nothing; sequential creates and the paths they
//! could have named are left out (their name is not known when the outcome is not). Times are
//! positions in the history's entries, so "A's reply came before B was sent" is exact.
//!
//! The search is bounded: a path with more operations than [`Limits::max_ops_per_path`] is
//! skipped, and one that needs more than [`Limits::steps_per_path`] search steps (or would
//! exceed the run's [`Limits::steps_total`]) is reported *inconclusive*, never failed, so the
//! checker cannot hang a sweep.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use ensemble::core::ids::SessionId;
use ensemble::wire::proto::{CreateRequest, MultiOp, OpResult, Request, Response};
use ensemble::wire::types::{CreateMode, ErrorCode, Stat};

use crate::history::{self, History, OpId, OpOutcome};

/// Bounds on the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Paths with more operations than this are not checked.
    pub max_ops_per_path: usize,
    /// Search steps (configurations expanded) allowed for one path.
    pub steps_per_path: u64,
    /// Search steps allowed for the whole run.
    pub steps_total: u64,
}

impl Default for Limits {
    /// Cheap enough to run on every seed of a sweep.
    fn default() -> Limits {
        Limits { max_ops_per_path: 5_000, steps_per_path: 60_000, steps_total: 300_000 }
    }
}

/// The state of one znode in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Znode {
    /// It does not exist.
    Absent,
    /// It exists.
    Present {
        /// Its data version.
        version: i32,
        /// Its ephemeral owner as a client sees it (0: persistent).
        owner: i64,
    },
}

/// One step an operation takes on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the node, owned by `owner` (0: persistent).
    Create {
        /// The session that owns it if it is ephemeral, else 0.
        owner: i64,
    },
    /// setData expecting `version` (-1: any).
    SetData {
        /// The expected version.
        version: i32,
    },
    /// delete expecting `version` (-1: any).
    Delete {
        /// The expected version.
        version: i32,
    },
    /// A multi's check of `version` (-1: any).
    Check {
        /// The expected version.
        version: i32,
    },
}

/// What a client learned of an operation on one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Every action succeeded; for each, the (version, owner) its reply reported, if any.
    Ok(Vec<Option<(i32, i64)>>),
    /// The actions before the last succeeded and the last failed with this code; nothing
    /// changed.
    Failed(ErrorCode),
    /// Every action would have succeeded, but nothing changed (a multi that failed on another
    /// path).
    Guard,
    /// No reply: it took effect with every action succeeding, or it never did.
    Unknown,
}

/// One operation of a path's sub-history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathOp {
    /// The history operation it comes from.
    pub id: OpId,
    /// When it was sent (any totally ordered clock; entry positions in a real history).
    pub invoked: u64,
    /// When its reply came (None: unknown, never).
    pub returned: Option<u64>,
    /// Its steps on this path, in order.
    pub actions: Vec<Action>,
    /// What the client learned.
    pub observed: Observed,
}

/// The verdict on one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order explains every reply.
    Linearizable,
    /// No order does.
    NotLinearizable {
        /// The most operations with a reply any explored order could place.
        linearized: usize,
        /// An operation that could not be placed after that many (the unplaced one whose reply
        /// came first).
        stuck: OpId,
        /// The model state at that point.
        state: Znode,
    },
    /// The step budget ran out first.
    Inconclusive {
        /// Steps taken.
        steps: u64,
    },
}

/// A path whose write history no sequential order explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WglViolation {
    /// The path.
    pub path: String,
    /// Operations on it.
    pub ops: usize,
    /// The most operations with a reply any explored order could place.
    pub linearized: usize,
    /// The operation that could not be placed next.
    pub stuck: OpId,
    /// That operation, briefly, with its outcome.
    pub stuck_op: String,
    /// The model state when it got stuck.
    pub state: Znode,
}

/// What a run's check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Paths checked to a verdict.
    pub checked: usize,
    /// Paths skipped for having too many operations (path, count).
    pub skipped: Vec<(String, usize)>,
    /// Paths whose search ran out of budget (path, operations).
    pub inconclusive: Vec<(String, usize)>,
    /// Search steps taken in all.
    pub steps: u64,
    /// Paths that are not linearizable.
    pub violations: Vec<WglViolation>,
}

/// Checks the write sub-history of `history`, path by path, within `limits`.
pub fn check(history: &History, limits: &Limits) -> Report {
    let mut report = Report::default();
    for (path, ops) in partition(history) {
        if ops.len() > limits.max_ops_per_path {
            report.skipped.push((path, ops.len()));
            continue;
        }
        let budget = limits.steps_per_path.min(limits.steps_total.saturating_sub(report.steps));
        let (verdict, steps) = search(&ops, Znode::Absent, budget);
        report.steps += steps;
        match verdict {
            Verdict::Linearizable => report.checked += 1,
            Verdict::Inconclusive { .. } => report.inconclusive.push((path, ops.len())),
            Verdict::NotLinearizable { linearized, stuck, state } => {
                report.checked += 1;
                let op = history.op(stuck);
                report.violations.push(WglViolation {
                    path,
                    ops: ops.len(),
                    linearized,
                    stuck,
                    stuck_op: format!(
                        "{} -> {}",
                        history::describe_request(&op.request),
                        op.outcome
                    ),
                    state,
                });
            }
        }
    }
    report
}

/// Splits the write sub-history by path (see the module docs for what is left out).
pub fn partition(history: &History) -> BTreeMap<String, Vec<PathOp>> {
    let sequential: BTreeSet<&str> = history
        .ops
        .iter()
        .flat_map(|op| creates(&op.request))
        .filter(|c| CreateMode::from_code(c.flags).is_some_and(|m| m.is_sequential()))
        .map(|c| c.path.as_str())
        .collect();
    let excluded = |path: &str| sequential.iter().any(|prefix| path.starts_with(prefix));
    let spans = history.spans();
    let mut paths: BTreeMap<String, Vec<PathOp>> = BTreeMap::new();
    for op in &history.ops {
        let span = spans[op.id.0 as usize];
        let returned = match op.outcome {
            OpOutcome::Ok { .. } | OpOutcome::Fail { .. } => span.returned.map(|p| p as u64),
            OpOutcome::Pending | OpOutcome::Unknown(_) => None,
        };
        for (path, actions, observed) in project(&op.request, &op.outcome, op.session) {
            if excluded(&path) {
                continue;
            }
            let path_op =
                PathOp { id: op.id, invoked: span.invoked as u64, returned, actions, observed };
            paths.entry(path).or_default().push(path_op);
        }
    }
    paths
}

fn creates(request: &Request) -> Vec<&CreateRequest> {
    match request {
        Request::Create(_, create) => vec![create],
        Request::Multi(ops) => ops
            .iter()
            .filter_map(|op| match op {
                MultiOp::Create(_, create) => Some(create),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The conditional error codes, the only failures the model judges.
fn conditional(code: i32) -> Option<ErrorCode> {
    ErrorCode::from_code(code).filter(|c| {
        matches!(
            c,
            ErrorCode::NodeExists
                | ErrorCode::NoNode
                | ErrorCode::BadVersion
                | ErrorCode::NotEmpty
                | ErrorCode::NoChildrenForEphemerals
        )
    })
}

/// The path, action and reported (version, owner) of one write or sub-op, if it is modelled.
fn action_of(
    create: Option<&CreateRequest>,
    other: Option<(&str, Action)>,
    session: SessionId,
) -> Option<(String, Action)> {
    if let Some(create) = create {
        let mode = CreateMode::from_code(create.flags)?;
        if mode.is_sequential() || mode.is_ttl() || mode.is_container() {
            return None;
        }
        let owner = if mode.is_ephemeral() { session.0 } else { 0 };
        return Some((create.path.clone(), Action::Create { owner }));
    }
    other.map(|(path, action)| (path.to_string(), action))
}

fn request_action(request: &Request, session: SessionId) -> Option<(String, Action)> {
    match request {
        Request::Create(_, create) => action_of(Some(create), None, session),
        Request::SetData { path, version, .. } => {
            action_of(None, Some((path, Action::SetData { version: *version })), session)
        }
        Request::Delete { path, version } => {
            action_of(None, Some((path, Action::Delete { version: *version })), session)
        }
        _ => None,
    }
}

fn sub_op_action(op: &MultiOp, session: SessionId) -> Option<(String, Action)> {
    match op {
        MultiOp::Create(_, create) => action_of(Some(create), None, session),
        MultiOp::SetData { path, version, .. } => {
            action_of(None, Some((path, Action::SetData { version: *version })), session)
        }
        MultiOp::Delete { path, version } => {
            action_of(None, Some((path, Action::Delete { version: *version })), session)
        }
        MultiOp::Check { path, version } => {
            action_of(None, Some((path, Action::Check { version: *version })), session)
        }
    }
}

fn reported(stat: &Stat) -> Option<(i32, i64)> {
    Some((stat.version, stat.ephemeral_owner))
}

/// Projects one operation onto the paths it touches.
fn project(
    request: &Request,
    outcome: &OpOutcome,
    session: SessionId,
) -> Vec<(String, Vec<Action>, Observed)> {
    if let Request::Multi(ops) = request {
        return project_multi(ops, outcome, session);
    }
    let Some((path, action)) = request_action(request, session) else { return Vec::new() };
    let observed = match outcome {
        OpOutcome::Ok { response, .. } => Observed::Ok(vec![match response {
            Response::Create2 { stat, .. } | Response::Stat(stat) => reported(stat),
            _ => None,
        }]),
        OpOutcome::Fail { code, .. } => match conditional(*code) {
            Some(code) => Observed::Failed(code),
            None => return Vec::new(),
        },
        OpOutcome::Pending | OpOutcome::Unknown(_) => Observed::Unknown,
    };
    vec![(path, vec![action], observed)]
}

fn project_multi(
    ops: &[MultiOp],
    outcome: &OpOutcome,
    session: SessionId,
) -> Vec<(String, Vec<Action>, Observed)> {
    // Per path, its sub-ops as (index in the multi, action).
    let mut by_path: BTreeMap<String, Vec<(usize, Action)>> = BTreeMap::new();
    let mut unmodelled = false;
    for (index, op) in ops.iter().enumerate() {
        match sub_op_action(op, session) {
            Some((path, action)) => by_path.entry(path).or_default().push((index, action)),
            None => unmodelled = true,
        }
    }
    let actions = |steps: &[(usize, Action)]| steps.iter().map(|(_, a)| *a).collect::<Vec<_>>();
    match outcome {
        OpOutcome::Pending | OpOutcome::Unknown(_) => by_path
            .into_iter()
            .map(|(path, steps)| (path, actions(&steps), Observed::Unknown))
            .collect(),
        OpOutcome::Fail { .. } => Vec::new(),
        OpOutcome::Ok { response: Response::Multi(results), .. } if results.len() == ops.len() => {
            let codes: Vec<Option<i32>> = results
                .iter()
                .map(|r| match r {
                    OpResult::Error { err } => Some(*err),
                    _ => None,
                })
                .collect();
            if codes.iter().all(Option::is_none) {
                // Succeeded: every sub-op took effect.
                return by_path
                    .into_iter()
                    .map(|(path, steps)| {
                        let seen = steps
                            .iter()
                            .map(|(i, _)| match &results[*i] {
                                OpResult::Create2 { stat, .. } | OpResult::SetData { stat } => {
                                    reported(stat)
                                }
                                _ => None,
                            })
                            .collect();
                        (path, actions(&steps), Observed::Ok(seen))
                    })
                    .collect();
            }
            // Failed: ZooKeeper's pattern is 0 before the failing op, its code at it.
            let Some(failing) = codes.iter().position(|c| c.is_some_and(|c| c != 0)) else {
                return Vec::new();
            };
            if codes[..failing].iter().any(|c| *c != Some(0)) || unmodelled {
                return Vec::new(); // not ZooKeeper's pattern (the zxid checker says so)
            }
            let code = codes[failing].and_then(conditional);
            by_path
                .into_iter()
                .filter_map(|(path, steps)| {
                    let fails_here = steps.iter().any(|(i, _)| *i == failing);
                    let before: Vec<(usize, Action)> =
                        steps.iter().copied().filter(|(i, _)| *i < failing).collect();
                    match (fails_here, code) {
                        (true, Some(code)) => {
                            let upto: Vec<(usize, Action)> =
                                steps.iter().copied().filter(|(i, _)| *i <= failing).collect();
                            Some((path, actions(&upto), Observed::Failed(code)))
                        }
                        _ if before.is_empty() => None,
                        _ => Some((path, actions(&before), Observed::Guard)),
                    }
                })
                .collect()
        }
        OpOutcome::Ok { .. } => Vec::new(),
    }
}

/// The outcome of one action on a node: the state after success, or the error it must fail
/// with, plus errors it may fail with instead of succeeding (conditions on other paths).
fn act(state: Znode, action: Action) -> (Result<Znode, ErrorCode>, &'static [ErrorCode]) {
    let version_ok = |expected: i32, current: i32| expected == -1 || expected == current;
    match (action, state) {
        (Action::Create { owner }, Znode::Absent) => (
            Ok(Znode::Present { version: 0, owner }),
            &[ErrorCode::NoNode, ErrorCode::NoChildrenForEphemerals],
        ),
        (Action::Create { .. }, Znode::Present { .. }) => (Err(ErrorCode::NodeExists), &[]),
        (Action::SetData { .. } | Action::Delete { .. } | Action::Check { .. }, Znode::Absent) => {
            (Err(ErrorCode::NoNode), &[])
        }
        (Action::SetData { version }, Znode::Present { version: current, owner }) => {
            if !version_ok(version, current) {
                return (Err(ErrorCode::BadVersion), &[]);
            }
            let next = current.wrapping_add(1);
            let next = if next == -1 { 0 } else { next };
            (Ok(Znode::Present { version: next, owner }), &[])
        }
        (Action::Delete { version }, Znode::Present { version: current, .. }) => {
            if !version_ok(version, current) {
                return (Err(ErrorCode::BadVersion), &[]);
            }
            (Ok(Znode::Absent), &[ErrorCode::NotEmpty])
        }
        (Action::Check { version }, Znode::Present { version: current, .. }) => {
            if !version_ok(version, current) {
                return (Err(ErrorCode::BadVersion), &[]);
            }
            (Ok(state), &[])
        }
    }
}

/// Runs every action, all succeeding; returns the state after and each state in between.
fn run_all(state: Znode, actions: &[Action]) -> Option<Vec<Znode>> {
    let mut states = Vec::with_capacity(actions.len());
    let mut now = state;
    for action in actions {
        now = act(now, *action).0.ok()?;
        states.push(now);
    }
    Some(states)
}

/// The states the path may be in after `op` is linearized in `state` (none: it cannot be).
fn step(state: Znode, op: &PathOp, next: &mut Vec<Znode>) {
    next.clear();
    let mut starts = vec![state];
    if matches!(state, Znode::Present { owner, .. } if owner != 0) {
        starts.push(Znode::Absent); // its session closed or expired
    }
    for start in starts {
        let after = match &op.observed {
            Observed::Ok(seen) => run_all(start, &op.actions).filter(|states| {
                states.iter().zip(seen).all(|(state, seen)| match (state, seen) {
                    (_, None) => true,
                    (Znode::Present { version, owner }, Some((v, o))) => version == v && owner == o,
                    (Znode::Absent, Some(_)) => false,
                })
            }),
            Observed::Unknown => run_all(start, &op.actions),
            Observed::Guard => run_all(start, &op.actions).map(|_| vec![start]),
            Observed::Failed(code) => {
                let (last, before) = op.actions.split_last().expect("a projection has actions");
                run_all(start, before).and_then(|states| {
                    let there = states.last().copied().unwrap_or(start);
                    let (result, may_also) = act(there, *last);
                    let explained = result.err() == Some(*code) || may_also.contains(code);
                    explained.then(|| vec![start])
                })
            }
        };
        if let Some(after) = after {
            let end = after.last().copied().unwrap_or(start);
            if !next.contains(&end) {
                next.push(end);
            }
        }
    }
}

/// A set of operations, one bit each.
type Bits = Vec<u64>;

fn has(bits: &Bits, i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

fn with(bits: &Bits, i: usize) -> Bits {
    let mut more = bits.clone();
    more[i / 64] |= 1 << (i % 64);
    more
}

/// Searches for a linearization of `ops` from `init`, taking at most `budget` steps. Returns
/// the verdict and the steps taken.
pub fn search(ops: &[PathOp], init: Znode, budget: u64) -> (Verdict, u64) {
    let mut by_invoke: Vec<usize> = (0..ops.len()).collect();
    by_invoke.sort_by_key(|&i| (ops[i].invoked, i));
    let mut by_return: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].returned.is_some()).collect();
    by_return.sort_by_key(|&i| (ops[i].returned, i));
    let words = ops.len().div_ceil(64).max(1);
    let start = Config { bits: vec![0; words], state: init, placed: 0, lo_return: 0, lo_invoke: 0 };

    let mut seen: HashSet<(Bits, Znode)> = HashSet::new();
    seen.insert((start.bits.clone(), init));
    // Depth first, one child at a time: each frame holds a configuration and the moves out of
    // it not tried yet, answered operations first (unknown ones are rarely needed, and trying
    // them last keeps the common search linear).
    let mut stack: Vec<(Config, Vec<(usize, Znode)>)> = Vec::new();
    let mut steps = 0u64;
    // The configuration that placed the most answered operations, for the report.
    let mut deepest: (usize, Option<usize>, Znode) = (0, by_return.first().copied(), init);
    let mut next = Vec::new();
    let mut pending = Some(start);
    loop {
        if let Some(mut config) = pending.take() {
            if steps >= budget {
                return (Verdict::Inconclusive { steps }, steps);
            }
            steps += 1;
            // The first answered operation not placed yet: everything placed next must have
            // been sent before its reply. Everything before `lo_*` is placed (it only grows).
            while by_return.get(config.lo_return).is_some_and(|&i| has(&config.bits, i)) {
                config.lo_return += 1;
            }
            while by_invoke.get(config.lo_invoke).is_some_and(|&i| has(&config.bits, i)) {
                config.lo_invoke += 1;
            }
            let Some(&first) = by_return.get(config.lo_return) else {
                return (Verdict::Linearizable, steps);
            };
            if config.placed > deepest.0 || deepest.1.is_none() {
                deepest = (config.placed, Some(first), config.state);
            }
            let deadline = ops[first].returned.expect("answered");
            let (mut answered, mut unknown) = (Vec::new(), Vec::new());
            for &i in &by_invoke[config.lo_invoke..] {
                if ops[i].invoked > deadline {
                    break;
                }
                if has(&config.bits, i) {
                    continue;
                }
                step(config.state, &ops[i], &mut next);
                let moves = if ops[i].returned.is_some() { &mut answered } else { &mut unknown };
                moves.extend(next.iter().map(|&after| (i, after)));
            }
            // Popped from the end: answered ones in invocation order, then unknown ones.
            unknown.reverse();
            answered.reverse();
            unknown.extend(answered);
            stack.push((config, unknown));
        }
        let Some((config, moves)) = stack.last_mut() else { break };
        let Some((i, after)) = moves.pop() else {
            stack.pop();
            continue;
        };
        let bits = with(&config.bits, i);
        if seen.insert((bits.clone(), after)) {
            pending = Some(Config {
                bits,
                state: after,
                placed: config.placed + usize::from(ops[i].returned.is_some()),
                lo_return: config.lo_return,
                lo_invoke: config.lo_invoke,
            });
        }
    }
    let (linearized, stuck, state) = deepest;
    let stuck = ops[stuck.expect("a failed search leaves an answered op unplaced")].id;
    (Verdict::NotLinearizable { linearized, stuck, state }, steps)
}

/// A configuration of the search: which operations are placed, and the model state after them.
struct Config {
    bits: Bits,
    state: Znode,
    /// Answered operations placed.
    placed: usize,
    /// Every operation before this index of the return order is placed.
    lo_return: usize,
    /// Every operation before this index of the invocation order is placed.
    lo_invoke: usize,
}

impl fmt::Display for Znode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Znode::Absent => write!(f, "absent"),
            Znode::Present { version, owner: 0 } => write!(f, "present at version {version}"),
            Znode::Present { version, owner } => {
                write!(f, "present at version {version}, ephemeral of {owner:#x}")
            }
        }
    }
}

impl fmt::Display for WglViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no order of the {} writes on {} explains their replies: after placing {} of them, \
             with the node {}, op #{} ({}) fits nowhere",
            self.ops, self.path, self.linearized, self.state, self.stuck.0, self.stuck_op
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PERSISTENT: i64 = 0;
    const BUDGET: u64 = 1_000_000;

    fn op(
        id: u32,
        invoked: u64,
        returned: Option<u64>,
        action: Action,
        observed: Observed,
    ) -> PathOp {
        PathOp { id: OpId(id), invoked, returned, actions: vec![action], observed }
    }

    fn create(id: u32, at: (u64, u64), observed: Observed) -> PathOp {
        op(id, at.0, Some(at.1), Action::Create { owner: PERSISTENT }, observed)
    }

    fn set(id: u32, at: (u64, u64), version: i32, observed: Observed) -> PathOp {
        op(id, at.0, Some(at.1), Action::SetData { version }, observed)
    }

    fn delete(id: u32, at: (u64, u64), version: i32, observed: Observed) -> PathOp {
        op(id, at.0, Some(at.1), Action::Delete { version }, observed)
    }

    fn ok_version(version: i32) -> Observed {
        Observed::Ok(vec![Some((version, PERSISTENT))])
    }

    fn ok() -> Observed {
        Observed::Ok(vec![None])
    }

    fn verdict(ops: &[PathOp]) -> Verdict {
        search(ops, Znode::Absent, BUDGET).0
    }

    fn rejected(ops: &[PathOp]) -> bool {
        matches!(verdict(ops), Verdict::NotLinearizable { .. })
    }

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        let ops = [
            create(0, (0, 1), ok()),
            set(1, (2, 3), 0, ok_version(1)),
            set(2, (4, 5), -1, ok_version(2)),
            delete(3, (6, 7), 2, ok()),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // Two concurrent setData; their versions say which went first.
        let ops = [
            create(0, (0, 1), ok()),
            set(1, (2, 10), -1, ok_version(2)),
            set(2, (3, 9), -1, ok_version(1)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_lost_write_is_rejected() {
        // Two acknowledged setData in sequence both report version 1: the first was lost.
        let ops = [
            create(0, (0, 1), ok()),
            set(1, (2, 3), -1, ok_version(1)),
            set(2, (4, 5), -1, ok_version(1)),
        ];
        assert!(rejected(&ops));
    }

    #[test]
    fn a_stale_conditional_success_is_rejected() {
        // setData expecting version 0 succeeds after another setData made it version 1.
        let ops = [
            create(0, (0, 1), ok()),
            set(1, (2, 3), -1, ok_version(1)),
            set(2, (4, 5), 0, ok_version(2)),
        ];
        let Verdict::NotLinearizable { stuck, linearized, state } = verdict(&ops) else {
            panic!("accepted a stale conditional success");
        };
        assert_eq!(
            (stuck, linearized, state),
            (OpId(2), 2, Znode::Present { version: 1, owner: 0 })
        );
        // Concurrent with the other setData it is fine.
        let ops = [
            create(0, (0, 1), ok()),
            set(1, (2, 6), -1, ok_version(2)),
            set(2, (4, 5), 0, ok_version(1)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_write_visible_before_it_was_invoked_is_rejected() {
        // setData on /a succeeds before the create of /a was sent.
        let ops = [set(1, (0, 1), -1, ok_version(1)), create(0, (2, 3), ok())];
        assert!(rejected(&ops));
    }

    #[test]
    fn two_creates_both_succeeding_are_rejected() {
        let ops = [create(0, (0, 5), ok()), create(1, (1, 6), ok())];
        assert!(rejected(&ops));
        // With a delete between them, they are fine.
        let ops = [create(0, (0, 2), ok()), delete(2, (3, 4), -1, ok()), create(1, (5, 6), ok())];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn failures_must_be_justified() {
        // NodeExists on a node that was never created.
        assert!(rejected(&[create(0, (0, 1), Observed::Failed(ErrorCode::NodeExists))]));
        // BadVersion with the right version.
        let ops =
            [create(0, (0, 1), ok()), set(1, (2, 3), 0, Observed::Failed(ErrorCode::BadVersion))];
        assert!(rejected(&ops));
        // NoNode for a setData on an existing node.
        let ops =
            [create(0, (0, 1), ok()), set(1, (2, 3), -1, Observed::Failed(ErrorCode::NoNode))];
        assert!(rejected(&ops));
        // NotEmpty is a condition on children: allowed on a present node at the right version.
        let ops =
            [create(0, (0, 1), ok()), delete(1, (2, 3), 0, Observed::Failed(ErrorCode::NotEmpty))];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // A create failing NoNode (no parent) is allowed on an absent node only.
        assert_eq!(
            verdict(&[create(0, (0, 1), Observed::Failed(ErrorCode::NoNode))]),
            Verdict::Linearizable
        );
        let ops = [create(0, (0, 1), ok()), create(1, (2, 3), Observed::Failed(ErrorCode::NoNode))];
        assert!(rejected(&ops));
    }

    #[test]
    fn unknown_operations_may_or_may_not_take_effect() {
        // An unknown create explains a later setData; an unknown setData explains version 2.
        let ops = [
            op(0, 0, None, Action::Create { owner: PERSISTENT }, Observed::Unknown),
            set(1, (5, 6), -1, ok_version(1)),
            op(2, 7, None, Action::SetData { version: -1 }, Observed::Unknown),
            set(3, (20, 21), -1, ok_version(3)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // ... or may never happen.
        let ops = [
            op(0, 0, None, Action::Create { owner: PERSISTENT }, Observed::Unknown),
            create(1, (5, 6), ok()),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // But an unknown operation cannot take effect before it was sent.
        let ops = [
            set(1, (0, 1), -1, Observed::Failed(ErrorCode::NoNode)),
            create(2, (2, 3), ok()),
            set(3, (4, 5), -1, ok_version(2)),
            op(0, 6, None, Action::SetData { version: -1 }, Observed::Unknown),
        ];
        assert!(rejected(&ops));
    }

    #[test]
    fn an_ephemeral_may_vanish_but_a_persistent_node_may_not() {
        let owner = 0x55;
        let ephemeral = [
            op(0, 0, Some(1), Action::Create { owner }, Observed::Ok(vec![Some((0, owner))])),
            create(1, (2, 3), ok()),
        ];
        assert_eq!(verdict(&ephemeral), Verdict::Linearizable);
        let persistent = [create(0, (0, 1), ok()), create(1, (2, 3), ok())];
        assert!(rejected(&persistent));
        // A setData reply names the owner the model knows.
        let ops = [
            op(0, 0, Some(1), Action::Create { owner }, ok()),
            set(1, (2, 3), -1, Observed::Ok(vec![Some((1, 0x66))])),
        ];
        assert!(rejected(&ops));
    }

    #[test]
    fn a_failed_multi_guards_without_effect() {
        // multi(check v0 on /a, ...) failed on another path: /a was at version 0 then.
        let guard = |id, at: (u64, u64), version| {
            op(id, at.0, Some(at.1), Action::Check { version }, Observed::Guard)
        };
        let ops = [create(0, (0, 1), ok()), guard(1, (2, 3), 0), set(2, (4, 5), 0, ok_version(1))];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        let ops = [create(0, (0, 1), ok()), guard(1, (2, 3), 5)];
        assert!(rejected(&ops));
        // A compound step: create then setData in one multi reports version 1.
        let multi = PathOp {
            id: OpId(1),
            invoked: 0,
            returned: Some(1),
            actions: vec![Action::Create { owner: 0 }, Action::SetData { version: 0 }],
            observed: Observed::Ok(vec![None, Some((1, 0))]),
        };
        assert_eq!(verdict(std::slice::from_ref(&multi)), Verdict::Linearizable);
        let wrong = PathOp { observed: Observed::Ok(vec![None, Some((0, 0))]), ..multi };
        assert!(rejected(&[wrong]));
    }

    #[test]
    fn the_budget_makes_it_inconclusive_not_failed() {
        // Many concurrent unknown setData: a large space, a budget of 10 steps.
        let mut ops = vec![create(0, (0, 1), ok())];
        for i in 1..30 {
            ops.push(op(i, 2, None, Action::SetData { version: -1 }, Observed::Unknown));
        }
        ops.push(set(30, (3, 100), -1, ok_version(25)));
        let (verdict, steps) = search(&ops, Znode::Absent, 10);
        assert_eq!(verdict, Verdict::Inconclusive { steps: 10 });
        assert_eq!(steps, 10);
    }

    mod from_history {
        //! The projection of a real history onto paths, end to end.

        use bytes::Bytes;
        use ensemble::wire::proto::{CreateKind, MultiOp, OpResult, Request, Response};
        use ensemble::wire::types::{Acl, Stat};

        use super::*;
        use crate::checker::fixtures::{create_request, ok, op};
        use crate::history::History;

        fn set(path: &str, version: i32) -> Request {
            Request::SetData { path: path.into(), data: Some(Bytes::from_static(b"v")), version }
        }

        fn stat(version: i32) -> Response {
            Response::Stat(Stat { version, ..Stat::default() })
        }

        #[test]
        fn a_lost_write_in_a_history_is_reported_on_its_path() {
            let mut history = History::new();
            op(
                &mut history,
                1,
                0,
                1,
                create_request("/a", "x"),
                ok(1, Response::Create { path: "/a".into() }),
            );
            op(&mut history, 3, 0, 2, set("/a", -1), ok(2, stat(1)));
            let lost = op(&mut history, 5, 1, 1, set("/a", -1), ok(3, stat(1)));
            op(
                &mut history,
                7,
                1,
                2,
                create_request("/b", "y"),
                ok(4, Response::Create { path: "/b".into() }),
            );
            let report = check(&history, &Limits::default());
            assert_eq!(report.checked, 2);
            assert!(
                matches!(&report.violations[..], [v] if v.path == "/a" && v.stuck == lost),
                "{report:?}"
            );
        }

        #[test]
        fn multis_sequentials_and_unjudged_failures_are_projected_soundly() {
            let mut history = History::new();
            let create_b = MultiOp::Create(
                CreateKind::Create,
                ensemble::wire::proto::CreateRequest {
                    path: "/b".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: None,
                },
            );
            op(
                &mut history,
                1,
                0,
                1,
                create_request("/a", "x"),
                ok(1, Response::Create { path: "/a".into() }),
            );
            // multi(create /b, setData /a v0) succeeded: /a is at version 1, /b exists.
            let multi = Request::Multi(vec![
                create_b.clone(),
                MultiOp::SetData { path: "/a".into(), data: None, version: 0 },
            ]);
            let results = vec![
                OpResult::Create { path: "/b".into() },
                OpResult::SetData { stat: Stat { version: 1, ..Stat::default() } },
            ];
            op(&mut history, 3, 0, 2, multi, ok(2, Response::Multi(results)));
            // A failed multi(check /a v1, create /b): NodeExists at /b; /a guarded at v1.
            let failed =
                Request::Multi(vec![MultiOp::Check { path: "/a".into(), version: 1 }, create_b]);
            let codes = vec![
                OpResult::Error { err: 0 },
                OpResult::Error { err: ErrorCode::NodeExists.code() },
            ];
            op(&mut history, 5, 1, 1, failed, ok(3, Response::Multi(codes)));
            // A sequential create and a SessionExpired write constrain nothing.
            let mut sequential = create_request("/a/s-", "z");
            if let Request::Create(_, c) = &mut sequential {
                c.flags = 2;
            }
            op(
                &mut history,
                7,
                1,
                2,
                sequential,
                ok(4, Response::Create { path: "/a/s-0000000000".into() }),
            );
            let expired = OpOutcome::Fail { zxid: 4, code: ErrorCode::SessionExpired.code() };
            op(&mut history, 9, 1, 3, set("/a", 7), expired);
            let paths = partition(&history);
            assert_eq!(paths.keys().collect::<Vec<_>>(), vec!["/a", "/b"]);
            assert_eq!(paths["/a"].len(), 3);
            assert_eq!(paths["/a"][2].observed, Observed::Guard);
            assert_eq!(paths["/b"][1].observed, Observed::Failed(ErrorCode::NodeExists));
            let report = check(&history, &Limits::default());
            assert_eq!((report.checked, report.violations.len()), (2, 0), "{report:?}");
        }

        #[test]
        fn a_path_over_the_limits_is_a_note_not_a_violation() {
            let mut history = History::new();
            op(
                &mut history,
                1,
                0,
                1,
                create_request("/a", "x"),
                ok(1, Response::Create { path: "/a".into() }),
            );
            op(&mut history, 3, 0, 2, set("/a", -1), ok(2, stat(7)));
            let tight = Limits { max_ops_per_path: 1, ..Limits::default() };
            let report = check(&history, &tight);
            assert_eq!(report.skipped, vec![("/a".to_string(), 2)]);
            assert!(report.violations.is_empty());
            let starved = Limits { steps_per_path: 1, ..Limits::default() };
            let report = check(&history, &starved);
            assert_eq!(report.inconclusive, vec![("/a".to_string(), 2)]);
            assert!(report.violations.is_empty());
        }
    }

    // ---------------------------------------------------------------- property tests

    /// A random sequential run of one path: actions with their true outcomes.
    fn arb_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (prop_oneof![Just(0i64), Just(0x77i64)]).prop_map(|owner| Action::Create { owner }),
            (-1i32..3).prop_map(|version| Action::SetData { version }),
            (-1i32..3).prop_map(|version| Action::Delete { version }),
        ]
    }

    /// Like [`arb_action`], without ephemerals (which the model lets vanish at any time).
    fn arb_persistent_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Create { owner: 0 }),
            (-1i32..3).prop_map(|version| Action::SetData { version }),
            (-1i32..3).prop_map(|version| Action::Delete { version }),
        ]
    }

    /// Runs `actions` sequentially from absent, giving each its true observation. Ephemeral
    /// owners never vanish here, so the model's truth is deterministic.
    fn truth(actions: &[Action]) -> Vec<Observed> {
        let mut state = Znode::Absent;
        actions
            .iter()
            .map(|action| match act(state, *action).0 {
                Ok(after) => {
                    state = after;
                    match (action, after) {
                        (Action::SetData { .. }, Znode::Present { version, owner }) => {
                            Observed::Ok(vec![Some((version, owner))])
                        }
                        _ => Observed::Ok(vec![None]),
                    }
                }
                Err(code) => Observed::Failed(code),
            })
            .collect()
    }

    /// Gives op `i` (linearized at time `10 * i + 5`) an interval around that point, stretched
    /// by the offsets; `hide` makes some unknown.
    fn intervals(
        actions: &[Action],
        observed: Vec<Observed>,
        stretch: &[(u64, u64, bool)],
    ) -> Vec<PathOp> {
        actions
            .iter()
            .zip(observed)
            .zip(stretch)
            .enumerate()
            .map(|(i, ((action, observed), (before, after, hide)))| {
                let point = 10 * i as u64 + 5;
                let invoked = point.saturating_sub(*before);
                let returned = point + after;
                let (returned, observed) =
                    if *hide { (None, Observed::Unknown) } else { (Some(returned), observed) };
                PathOp { id: OpId(i as u32), invoked, returned, actions: vec![*action], observed }
            })
            .collect()
    }

    /// Every order of `ops` allowed by real time, with unknown ones optional: the oracle.
    fn brute_force(ops: &[PathOp]) -> bool {
        fn go(ops: &[PathOp], placed: &mut Vec<bool>, state: Znode) -> bool {
            let first_return = ops
                .iter()
                .enumerate()
                .filter(|(i, o)| !placed[*i] && o.returned.is_some())
                .map(|(_, o)| o.returned.unwrap_or(u64::MAX))
                .min();
            let Some(deadline) = first_return else { return true };
            for i in 0..ops.len() {
                if placed[i] || ops[i].invoked > deadline {
                    continue;
                }
                let mut next = Vec::new();
                step(state, &ops[i], &mut next);
                for after in next {
                    placed[i] = true;
                    if go(ops, placed, after) {
                        return true;
                    }
                    placed[i] = false;
                }
            }
            false
        }
        go(ops, &mut vec![false; ops.len()], Znode::Absent)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Histories made by running the model sequentially and widening each operation's
        /// interval around its linearization point are accepted.
        #[test]
        fn generated_linearizable_histories_are_accepted(
            (actions, stretch) in (1usize..14).prop_flat_map(|n| (
                prop::collection::vec(arb_action(), n),
                prop::collection::vec((0u64..40, 0u64..40, prop::bool::weighted(0.15)), n),
            ))
        ) {
            let observed = truth(&actions);
            let ops = intervals(&actions, observed, &stretch);
            prop_assert_eq!(verdict(&ops), Verdict::Linearizable);
        }

        /// With intervals that do not overlap, the order is forced and the model (without
        /// ephemerals) is deterministic, so changing one reported outcome makes the history
        /// unexplainable.
        #[test]
        fn mutated_sequential_histories_are_rejected(
            (actions, victim, kind) in (1usize..12).prop_flat_map(|n| (
                prop::collection::vec(arb_persistent_action(), n),
                0..n,
                0u8..3,
            ))
        ) {
            let mut observed = truth(&actions);
            let stretch = vec![(1, 1, false); actions.len()];
            let mutated = match (&observed[victim], kind, actions[victim]) {
                // A success reported as a failure that this state cannot produce.
                (Observed::Ok(seen), 0, Action::SetData { .. }) => {
                    let Some((version, owner)) = seen[0] else { return Ok(()) };
                    Observed::Ok(vec![Some((version + 1, owner))])
                }
                (Observed::Ok(_), _, Action::Create { .. }) => Observed::Failed(ErrorCode::NodeExists),
                (Observed::Ok(_), _, Action::SetData { .. }) => Observed::Failed(ErrorCode::NoNode),
                (Observed::Ok(_), _, Action::Delete { .. }) => Observed::Failed(ErrorCode::NoNode),
                // A failure reported as a success.
                (Observed::Failed(_), _, Action::SetData { .. }) => Observed::Ok(vec![None]),
                (Observed::Failed(ErrorCode::NodeExists), _, Action::Create { .. }) => {
                    Observed::Ok(vec![None])
                }
                (Observed::Failed(_), _, Action::Delete { .. }) => Observed::Ok(vec![None]),
                _ => return Ok(()),
            };
            observed[victim] = mutated;
            let ops = intervals(&actions, observed, &stretch);
            prop_assert!(rejected(&ops), "accepted {:?}", ops);
        }

        /// On small random histories (random intervals and outcomes) the memoised search
        /// agrees with trying every order.
        #[test]
        fn the_search_agrees_with_brute_force(
            ops in prop::collection::vec(
                (arb_action(), 0u64..30, 1u64..15, 0u8..6, -1i32..3),
                1..7,
            )
        ) {
            let ops: Vec<PathOp> = ops
                .into_iter()
                .enumerate()
                .map(|(i, (action, invoked, length, outcome, version))| {
                    let (returned, observed) = match outcome {
                        0 => (None, Observed::Unknown),
                        1 => (Some(invoked + length), Observed::Failed(ErrorCode::NoNode)),
                        2 => (Some(invoked + length), Observed::Failed(ErrorCode::NodeExists)),
                        3 => (Some(invoked + length), Observed::Failed(ErrorCode::BadVersion)),
                        4 => (Some(invoked + length), Observed::Ok(vec![Some((version, 0))])),
                        _ => (Some(invoked + length), Observed::Ok(vec![None])),
                    };
                    // Distinct times, as entry positions are.
                    PathOp {
                        id: OpId(i as u32),
                        invoked: invoked * 16 + i as u64,
                        returned: returned.map(|r| r * 16 + 8 + i as u64),
                        actions: vec![action],
                        observed,
                    }
                })
                .collect();
            let expected = brute_force(&ops);
            let got = verdict(&ops);
            prop_assert_eq!(got == Verdict::Linearizable, expected, "{:?}", ops);
        }
    }
}
