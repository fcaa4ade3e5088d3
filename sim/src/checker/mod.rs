//! Checkers: one file per guarantee, each returning typed violations with enough context to
//! debug (the operation, the zxids, what was expected and what was seen).
//!
//! Most checkers run once at the end over the [`History`] and the [`Committed`] log: the
//! sequence of txns the ensemble committed, in zxid order, which the agreement checker builds
//! online from what established leaders (or the standalone server) applied, and verifies every
//! leader keeps. The agreement and recovery checkers run online, after every step of every
//! node; so does the leaders checker, from what the nodes report.
//!
//! | file                    | guarantee                                                     |
//! |-------------------------|---------------------------------------------------------------|
//! | `agreement.rs`          | one committed history; no leader forgets it; servers agree on it |
//! | `durability.rs`         | an acknowledged write is in the committed log, at its zxid    |
//! | `recovery.rs`           | a node's tree equals the replay of its durable log            |
//! | `linearizable_writes.rs`| zxids respect real time; each request committed once, as asked; |
//! |                         | outcomes (conditional, multi) are what the replay decides     |
//! | `wgl.rs`                | independent: some order of the writes explains every reply (WGL |
//! |                         | search per path, bounded; "inconclusive" is a note, not a failure) |
//! | `session_order.rs`      | a session never sees zxids go back (nor below its own write); |
//! |                         | replies in request order                                      |
//! | `sessions.rs`           | a session is not expired while its client is being answered;  |
//! |                         | ephemerals live exactly until their session's close, everywhere |
//! | `reads.rs`              | a read returns the state of the committed log at its reply zxid; |
//! |                         | a sync is answered past every write completed before it      |
//! | `watches.rs`            | one-shot watches fire at most once, in order, before newer state; |
//! |                         | persistent watches deliver every change they cover            |
//! | `liveness.rs`           | after faults heal, writes complete within a bound             |
//! | `leaders.rs`            | one established leader per epoch, by a quorum; epochs only rise |
//! | `lock.rs`               | lock recipe: no two holders whose sessions are both live      |
//! | `election.rs`           | election recipe: at most one live leader; a leader after healing |
//! | `queue.rs`              | queue recipe: nothing lost or owned twice; deletes in FIFO order |
//! | `promises.rs`           | Zab promises (ACKEPOCH, ACK(NEWLEADER), ACK) are durable when sent; |
//! |                         | a durable currentEpoch keeps what was committed when it was taken |
//! | `flood.rs`              | no member sends peer messages without bound (a message loop)  |

pub mod agreement;
pub mod durability;
pub mod election;
pub mod flood;
pub mod leaders;
pub mod linearizable_writes;
pub mod liveness;
pub mod lock;
pub mod promises;
pub mod queue;
pub mod reads;
pub mod recovery;
pub mod session_order;
pub mod sessions;
pub mod watches;
pub mod wgl;

use std::fmt;

use ensemble::core::ids::{ServerId, Zxid};
use ensemble::core::txn::Txn;

use crate::disk::DiskError;
use crate::history::History;
use crate::time::SimTime;

/// A broken guarantee.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// Servers disagree on the committed history, or a leader lost part of it.
    Agreement(agreement::AgreementViolation),
    /// An acknowledged write went missing.
    Durability(durability::DurabilityViolation),
    /// A node's state is not the replay of its log.
    Recovery(recovery::RecoveryViolation),
    /// A session saw time go backwards, or a reply out of order.
    SessionOrder(session_order::OrderViolation),
    /// A live session was expired.
    Sessions(sessions::SessionViolation),
    /// A reply disagrees with the committed history.
    Reads(reads::ReadViolation),
    /// A watch misbehaved.
    Watches(watches::WatchViolation),
    /// The system stopped making progress after healing.
    Liveness(liveness::LivenessViolation),
    /// Two leaders in an epoch, a leader without a quorum, or epochs going back.
    Leaders(leaders::LeaderViolation),
    /// The lock recipe had two live holders.
    Lock(lock::LockViolation),
    /// The election recipe had two live leaders, or none after healing.
    Election(election::ElectionViolation),
    /// The queue recipe lost, duplicated or reordered an item.
    Queue(queue::QueueViolation),
    /// Writes are not linearizable in zxid order, or an outcome contradicts the replay.
    Writes(linearizable_writes::WriteViolation),
    /// The WGL search found a path whose writes no sequential order explains.
    Wgl(wgl::WglViolation),
    /// A node crashed on its own, failed to recover, or broke the disk contract.
    Node(NodeFailure),
    /// A Zab message promised what the sender's disk did not hold.
    Promise(promises::PromiseViolation),
    /// A member sent peer messages without bound.
    Flood(flood::FloodViolation),
}

/// A node that failed outright.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeFailure {
    /// `step` or `recover` panicked (an assertion in the core).
    Panicked {
        /// The node.
        server: ServerId,
        /// The panic message.
        message: String,
    },
    /// `Node::recover` rejected the durable state.
    RecoveryFailed {
        /// The node.
        server: ServerId,
        /// Its error.
        error: String,
    },
    /// A durable write broke the disk contract (ids or zxids out of order).
    Disk {
        /// The node.
        server: ServerId,
        /// The complaint.
        error: DiskError,
    },
}

/// The committed history: txns in strictly increasing zxid order, with the true time each
/// was first applied by a leader when known.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    txns: Vec<Txn>,
    times: Vec<SimTime>,
}

impl Committed {
    /// The log `txns`, which must be in increasing zxid order (a disk guarantees it).
    pub fn new(txns: Vec<Txn>) -> Committed {
        Committed::with_times(txns, Vec::new())
    }

    /// The log `txns` with the time each was committed (`times` may be empty: unknown).
    pub fn with_times(txns: Vec<Txn>, times: Vec<SimTime>) -> Committed {
        debug_assert!(txns.windows(2).all(|w| w[0].zxid < w[1].zxid), "log out of order");
        debug_assert!(times.is_empty() || times.len() == txns.len());
        Committed { txns, times }
    }

    /// When the `index`-th txn was committed, if known.
    pub fn time(&self, index: usize) -> Option<SimTime> {
        self.times.get(index).copied()
    }

    /// The txn with this zxid.
    pub fn get(&self, zxid: Zxid) -> Option<&Txn> {
        let at = self.txns.partition_point(|t| t.zxid < zxid);
        self.txns.get(at).filter(|t| t.zxid == zxid)
    }

    /// Every txn, in order.
    pub fn txns(&self) -> &[Txn] {
        &self.txns
    }

    /// The last committed zxid (zero if none).
    pub fn last_zxid(&self) -> Zxid {
        self.txns.last().map_or(Zxid::ZERO, |t| t.zxid)
    }
}

/// What the end-of-run checkers need besides the history and the committed log.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    /// The liveness phase, if the run had one with a workload.
    pub liveness: Option<liveness::Window>,
    /// Intervals of true time in which faults could hide a live client from the servers.
    pub disturbances: Vec<(SimTime, SimTime)>,
    /// Allowance for the session checker: message delays, tick rounding, drift.
    pub session_slack_ms: u64,
    /// What each serving member holds at the end, for the per-member ephemeral check.
    pub members: Vec<sessions::Member>,
    /// Bounds for the WGL search (None: do not run it).
    pub wgl: Option<wgl::Limits>,
}

/// Runs every end-of-run checker over the history.
pub fn check_history(history: &History, committed: &Committed, facts: &RunFacts) -> Vec<Violation> {
    check_history_noted(history, committed, facts, &mut Vec::new())
}

/// [`check_history`], also noting in `notes` what was left unchecked without being a violation
/// (WGL paths skipped for size or inconclusive for budget).
pub fn check_history_noted(
    history: &History,
    committed: &Committed,
    facts: &RunFacts,
    notes: &mut Vec<String>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    violations.extend(durability::check(history, committed).into_iter().map(Violation::Durability));
    let writes = linearizable_writes::check(history, committed);
    violations.extend(writes.into_iter().map(Violation::Writes));
    violations.extend(session_order::check(history).into_iter().map(Violation::SessionOrder));
    violations.extend(reads::check(history, committed).into_iter().map(Violation::Reads));
    violations.extend(watches::check(history, committed).into_iter().map(Violation::Watches));
    let sessions = sessions::check(history, committed, &facts.disturbances, facts.session_slack_ms);
    violations.extend(sessions.into_iter().map(Violation::Sessions));
    let ephemerals = sessions::check_ephemerals(history, committed, &facts.members);
    violations.extend(ephemerals.into_iter().map(Violation::Sessions));
    if let Some(window) = &facts.liveness {
        violations.extend(liveness::check(history, window).into_iter().map(Violation::Liveness));
    }
    violations.extend(lock::check(history, committed).into_iter().map(Violation::Lock));
    let election = election::check(history, committed, facts.liveness.as_ref());
    violations.extend(election.into_iter().map(Violation::Election));
    violations.extend(queue::check(history, committed).into_iter().map(Violation::Queue));
    if let Some(limits) = &facts.wgl {
        let report = wgl::check(history, limits);
        for (path, ops) in &report.inconclusive {
            notes.push(format!("wgl: {path} inconclusive ({ops} writes, budget spent)"));
        }
        for (path, ops) in &report.skipped {
            notes.push(format!("wgl: {path} not checked ({ops} writes)"));
        }
        violations.extend(report.violations.into_iter().map(Violation::Wgl));
    }
    violations
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement(v) => write!(f, "agreement: {v}"),
            Violation::Durability(v) => write!(f, "durability: {v}"),
            Violation::Recovery(v) => write!(f, "recovery: {v}"),
            Violation::SessionOrder(v) => write!(f, "session order: {v}"),
            Violation::Sessions(v) => write!(f, "sessions: {v}"),
            Violation::Reads(v) => write!(f, "reads: {v}"),
            Violation::Watches(v) => write!(f, "watches: {v}"),
            Violation::Liveness(v) => write!(f, "liveness: {v}"),
            Violation::Leaders(v) => write!(f, "leaders: {v}"),
            Violation::Lock(v) => write!(f, "lock recipe: {v}"),
            Violation::Election(v) => write!(f, "election recipe: {v}"),
            Violation::Queue(v) => write!(f, "queue recipe: {v}"),
            Violation::Writes(v) => write!(f, "linearizable writes: {v}"),
            Violation::Wgl(v) => write!(f, "wgl: {v}"),
            Violation::Node(v) => write!(f, "node: {v}"),
            Violation::Promise(v) => write!(f, "promise: {v}"),
            Violation::Flood(v) => write!(f, "flood: {v}"),
        }
    }
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeFailure::Panicked { server, message } => write!(f, "n{server} panicked: {message}"),
            NodeFailure::RecoveryFailed { server, error } => {
                write!(f, "n{server} could not recover: {error}")
            }
            NodeFailure::Disk { server, error } => {
                write!(f, "n{server} broke the disk contract: {error}")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-made histories and logs for the checkers' unit tests.

    use bytes::Bytes;
    use ensemble::core::ids::{ConnId, ServerId, SessionId, Zxid};
    use ensemble::core::txn::{Txn, TxnOp};
    use ensemble::wire::proto::{CreateKind, CreateRequest, Request, Response};
    use ensemble::wire::types::Acl;

    use crate::history::{Channel, History, OpId, OpOutcome};
    use crate::time::SimTime;
    use crate::workload::ClientId;

    /// The tree after applying `txns` in order to an empty one.
    pub fn tree_of(txns: &[Txn]) -> ensemble::core::tree::DataTree {
        let mut tree = ensemble::core::tree::DataTree::new();
        let mut events = Vec::new();
        for txn in txns {
            tree.apply(txn, &mut events);
        }
        tree
    }

    /// A liveness window for two clients: healed at 100 ms, a 50 ms bound, the run over at
    /// 500 ms.
    pub fn window() -> crate::checker::liveness::Window {
        crate::checker::liveness::Window {
            heal_at: SimTime::from_ms(100),
            bound_ms: 50,
            end: SimTime::from_ms(500),
            clients: vec![ClientId(0), ClientId(1)],
        }
    }

    /// Session of client `c`.
    pub fn session(c: u32) -> SessionId {
        SessionId(0x100 + c as i64)
    }

    /// The channel of client `c` (connection `c + 1`).
    pub fn channel(c: u32) -> Channel {
        Channel {
            client: ClientId(c),
            session: session(c),
            server: ServerId(0),
            conn: ConnId(c as u64 + 1),
        }
    }

    /// A txn of client `c` with this cxid.
    pub fn txn(zxid: u64, c: u32, cxid: i32, op: TxnOp) -> Txn {
        Txn { zxid: Zxid(zxid), session: session(c), cxid, time_ms: 1_000 + zxid as i64, op }
    }

    /// A persistent create txn.
    pub fn create_txn(zxid: u64, c: u32, cxid: i32, path: &str, data: &str) -> Txn {
        txn(
            zxid,
            c,
            cxid,
            TxnOp::Create {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data.as_bytes())),
                acl: Acl::open_unsafe().into(),
                ephemeral_owner: 0,
            },
        )
    }

    /// A setData txn.
    pub fn set_txn(zxid: u64, c: u32, cxid: i32, path: &str, data: &str, version: i32) -> Txn {
        txn(
            zxid,
            c,
            cxid,
            TxnOp::SetData {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data.as_bytes())),
                version,
            },
        )
    }

    /// A create request.
    pub fn create_request(path: &str, data: &str) -> Request {
        Request::Create(
            CreateKind::Create,
            CreateRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data.as_bytes())),
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        )
    }

    /// Invokes and completes an op in one go.
    pub fn op(
        history: &mut History,
        at_ms: u64,
        c: u32,
        xid: i32,
        request: Request,
        outcome: OpOutcome,
    ) -> OpId {
        let id = history.invoke(SimTime::from_ms(at_ms), channel(c), xid, request);
        history.complete(SimTime::from_ms(at_ms + 1), id, outcome);
        id
    }

    /// An Ok outcome.
    pub fn ok(zxid: u64, response: Response) -> OpOutcome {
        OpOutcome::Ok { zxid: zxid as i64, response }
    }
}
