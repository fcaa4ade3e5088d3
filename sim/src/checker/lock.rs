//! The lock recipe gives mutual exclusion among live sessions.
//!
//! A lock client (`recipes.rs`, Curator's `InterProcessMutex`) believes it holds the lock from
//! the listing that showed its EPHEMERAL_SEQUENTIAL node lowest until it sends the delete that
//! releases it, loses its connection or hears that its session expired. ZooKeeper cannot stop
//! a client from *believing* it still holds the lock after its session died (a client that is
//! cut off learns of it only at its read timeout, and a stalled one later still), so the
//! guarantee is about live sessions: **no two clients believe they hold the lock at
//! overlapping times while both their sessions are live**, a session being live until its
//! closeSession txn (a close or an expiry) is committed (`Committed` carries the commit times).
//!
//! Why it holds for a correct server: B sees its node lowest only after A's node is gone. A's
//! node goes only by A's delete (sent after A stopped believing) or by the closeSession of A's
//! session, which a leader applied before B's server did and so before B's listing came back.
//! A violation therefore means a stale or wrong listing, a lost ephemeral, or sequence numbers
//! out of commit order. The same check serves the election recipe (`election.rs`).

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::SessionId;
use ensemble::core::txn::TxnOp;

use crate::checker::Committed;
use crate::history::History;
use crate::recipes::{RecipeEvent, Role};
use crate::time::SimTime;
use crate::workload::ClientId;

/// Most overlaps reported per run (one is enough to debug; thousands drown the report).
const REPORT_MAX: usize = 10;

/// One client's belief that it held the lock (or led), as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenure {
    /// The client.
    pub client: ClientId,
    /// Its session.
    pub session: SessionId,
    /// Its node (a child name).
    pub node: String,
    /// When it came to believe it.
    pub from: SimTime,
    /// When it stopped (None: still at the end of the run).
    pub to: Option<SimTime>,
    /// When its session's closeSession txn was committed (None: never, or time unknown).
    pub session_closed: Option<SimTime>,
}

impl Tenure {
    /// The end of the part of the tenure in which the session was live.
    pub fn live_end(&self) -> SimTime {
        let to = self.to.unwrap_or(SimTime(u64::MAX));
        self.session_closed.map_or(to, |closed| closed.min(to))
    }
}

/// Two tenures of different clients that overlap while both sessions are live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The one that began first.
    pub first: Tenure,
    /// The other.
    pub second: Tenure,
    /// Start of the overlap.
    pub from: SimTime,
    /// End of the overlap.
    pub to: SimTime,
}

/// Notes of one client that contradict each other (a recipe bug, not a server bug).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconsistent {
    /// The client.
    pub client: ClientId,
    /// When.
    pub at: SimTime,
    /// What.
    pub what: &'static str,
}

/// A broken lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockViolation {
    /// Two clients held the lock at once, both sessions live.
    TwoHolders(Overlap),
    /// A client's notes contradict each other.
    Inconsistent(Inconsistent),
}

/// Checks the lock recipe's notes in `history` against the sessions closed in `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<LockViolation> {
    let (tenures, inconsistent) = tenures(history, committed, Role::Lock);
    let mut violations: Vec<LockViolation> =
        inconsistent.into_iter().map(LockViolation::Inconsistent).collect();
    violations.extend(overlaps(&tenures).into_iter().map(LockViolation::TwoHolders));
    violations
}

/// The tenures of the clients in `role`, sorted by start, with the commit time of each one's
/// session close; and the notes that do not pair up.
pub fn tenures(
    history: &History,
    committed: &Committed,
    role: Role,
) -> (Vec<Tenure>, Vec<Inconsistent>) {
    let mut closed: BTreeMap<SessionId, SimTime> = BTreeMap::new();
    for (index, txn) in committed.txns().iter().enumerate() {
        if txn.op == TxnOp::CloseSession {
            if let Some(at) = committed.time(index) {
                closed.entry(txn.session).or_insert(at);
            }
        }
    }
    let mut open: BTreeMap<ClientId, Tenure> = BTreeMap::new();
    let mut done = Vec::new();
    let mut inconsistent = Vec::new();
    for note in history.recipes.iter().filter(|n| n.role == role) {
        match &note.event {
            RecipeEvent::Acquired { node } => {
                let tenure = Tenure {
                    client: note.client,
                    session: note.session,
                    node: node.clone(),
                    from: note.at,
                    to: None,
                    session_closed: closed.get(&note.session).copied(),
                };
                if let Some(mut previous) = open.insert(note.client, tenure) {
                    let what = "acquired again without releasing";
                    inconsistent.push(Inconsistent { client: note.client, at: note.at, what });
                    previous.to = Some(note.at);
                    done.push(previous);
                }
            }
            RecipeEvent::Released { .. } => match open.remove(&note.client) {
                Some(mut tenure) => {
                    tenure.to = Some(note.at);
                    done.push(tenure);
                }
                None => {
                    let what = "released without holding";
                    inconsistent.push(Inconsistent { client: note.client, at: note.at, what });
                }
            },
            RecipeEvent::Produced { .. } | RecipeEvent::Consumed { .. } => {}
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|t| (t.from, t.client));
    (done, inconsistent)
}

/// Every pair of tenures (of different clients) that overlap while both sessions are live.
pub fn overlaps(tenures: &[Tenure]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (i, first) in tenures.iter().enumerate() {
        let first_end = first.live_end();
        for second in &tenures[i + 1..] {
            if second.from >= first_end {
                break; // sorted by start: no later tenure overlaps `first` either
            }
            if second.client == first.client {
                continue;
            }
            let to = first_end.min(second.live_end());
            if second.from < to {
                found.push(Overlap {
                    first: first.clone(),
                    second: second.clone(),
                    from: second.from,
                    to,
                });
                if found.len() >= REPORT_MAX {
                    return found;
                }
            }
        }
    }
    found
}

impl fmt::Display for Tenure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (session {}) held {} from {}",
            self.client, self.session, self.node, self.from
        )?;
        match self.to {
            Some(to) => write!(f, " to {to}")?,
            None => write!(f, " to the end")?,
        }
        match self.session_closed {
            Some(closed) => write!(f, ", session closed at {closed}"),
            None => write!(f, ", session never closed"),
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; and {}; both live from {} to {}",
            self.first, self.second, self.from, self.to
        )
    }
}

impl fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.client, self.at, self.what)
    }
}

impl fmt::Display for LockViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockViolation::TwoHolders(overlap) => write!(f, "two holders: {overlap}"),
            LockViolation::Inconsistent(what) => write!(f, "lock notes: {what}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ensemble::core::txn::TxnOp;

    use super::*;
    use crate::checker::fixtures::*;
    use crate::recipes::{Loss, RecipeNote};

    /// A note of client `c` (session `session(c)`) at `ms`.
    pub fn note(history: &mut History, role: Role, c: u32, ms: u64, event: RecipeEvent) {
        history.recipe(RecipeNote {
            client: ClientId(c),
            session: session(c),
            role,
            at: SimTime::from_ms(ms),
            event,
        });
    }

    /// Client `c` holds `node` from `from` to `to` ms (None: to the end).
    pub fn hold(history: &mut History, role: Role, c: u32, node: &str, from: u64, to: Option<u64>) {
        note(history, role, c, from, RecipeEvent::Acquired { node: node.into() });
        if let Some(to) = to {
            let why = Loss::Released;
            note(history, role, c, to, RecipeEvent::Released { node: node.into(), why });
        }
    }

    /// A log in which the session of client `c` is closed at `ms`.
    pub fn closed_at(c: u32, ms: u64) -> Committed {
        Committed::with_times(vec![txn(9, c, 0, TxnOp::CloseSession)], vec![SimTime::from_ms(ms)])
    }

    #[test]
    fn holders_one_after_another_pass() {
        let mut history = History::new();
        hold(&mut history, Role::Lock, 0, "a", 10, Some(20));
        hold(&mut history, Role::Lock, 1, "b", 20, Some(30));
        hold(&mut history, Role::Lock, 0, "c", 31, None);
        assert_eq!(check(&history, &Committed::default()), vec![]);
    }

    #[test]
    fn two_live_holders_at_once_are_flagged() {
        let mut history = History::new();
        hold(&mut history, Role::Lock, 0, "a", 10, Some(25));
        hold(&mut history, Role::Lock, 1, "b", 20, None);
        let violations = check(&history, &Committed::default());
        match &violations[..] {
            [LockViolation::TwoHolders(overlap)] => {
                assert_eq!(overlap.first.client, ClientId(0));
                assert_eq!(overlap.second.client, ClientId(1));
                assert_eq!(
                    (overlap.from, overlap.to),
                    (SimTime::from_ms(20), SimTime::from_ms(25))
                );
            }
            other => panic!("expected one overlap, got {other:?}"),
        }
    }

    #[test]
    fn a_holder_whose_session_is_closed_does_not_count() {
        // c0 still believes at 40 ms, but its session expired at 15 ms: c1's tenure from 20 ms
        // is legitimate (the classic paused-holder case the recipe cannot prevent).
        let mut history = History::new();
        hold(&mut history, Role::Lock, 0, "a", 10, Some(40));
        hold(&mut history, Role::Lock, 1, "b", 20, Some(30));
        assert_eq!(check(&history, &closed_at(0, 15)), vec![]);
        // Had the expiry committed only at 25 ms, the two overlap from 20 to 25.
        let violations = check(&history, &closed_at(0, 25));
        assert!(
            matches!(&violations[..], [LockViolation::TwoHolders(o)]
            if o.to == SimTime::from_ms(25)),
            "{violations:?}"
        );
    }

    #[test]
    fn contradictory_notes_are_flagged() {
        let mut history = History::new();
        hold(&mut history, Role::Lock, 0, "a", 10, None);
        hold(&mut history, Role::Lock, 0, "b", 20, None);
        let why = Loss::Disconnected;
        note(&mut history, Role::Lock, 1, 30, RecipeEvent::Released { node: "x".into(), why });
        let violations = check(&history, &Committed::default());
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations.iter().all(|v| matches!(v, LockViolation::Inconsistent(_))));
    }

    #[test]
    fn election_notes_are_not_lock_notes() {
        let mut history = History::new();
        hold(&mut history, Role::Election, 0, "a", 10, None);
        hold(&mut history, Role::Lock, 1, "b", 20, None);
        assert_eq!(check(&history, &Committed::default()), vec![]);
    }
}
