//! Leader election by lowest sequence node elects at most one leader, and elects one again
//! once the faults heal.
//!
//! An election client (`recipes.rs`, Curator's `LeaderLatch`) believes it leads from the
//! listing that showed its EPHEMERAL_SEQUENTIAL node lowest until it steps down, loses its
//! connection or hears its session expired. Two guarantees:
//! * **safety**: at any time at most one client believes it leads among clients whose sessions
//!   are live (closeSession not yet committed); the argument and the check are the lock's
//!   (`lock.rs`);
//! * **liveness**: if the run has a liveness phase and election clients, some client becomes
//!   leader after the faults heal and before the phase ends (a leader steps down after a
//!   bounded term, and a dead candidate's node goes when its session expires, so a healed
//!   ensemble must elect again).

use std::fmt;

use crate::checker::liveness::Window;
use crate::checker::lock::{self, Inconsistent, Overlap};
use crate::checker::Committed;
use crate::history::History;
use crate::recipes::{RecipeEvent, Role, ELECTION};
use crate::time::SimTime;
use crate::workload::ClientId;

/// A broken election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionViolation {
    /// Two clients led at once, both sessions live.
    TwoLeaders(Overlap),
    /// A client's notes contradict each other.
    Inconsistent(Inconsistent),
    /// Nobody became leader between healing and the end of the liveness phase.
    NoLeaderAfterHealing {
        /// The clients that ran for leader.
        candidates: Vec<ClientId>,
        /// When the faults healed.
        heal_at: SimTime,
        /// When the liveness phase ended.
        end: SimTime,
    },
}

/// Checks the election notes in `history`; with a liveness `window`, also that a leader was
/// elected after healing.
pub fn check(
    history: &History,
    committed: &Committed,
    window: Option<&Window>,
) -> Vec<ElectionViolation> {
    let (tenures, inconsistent) = lock::tenures(history, committed, Role::Election);
    let mut violations: Vec<ElectionViolation> =
        inconsistent.into_iter().map(ElectionViolation::Inconsistent).collect();
    violations.extend(lock::overlaps(&tenures).into_iter().map(ElectionViolation::TwoLeaders));
    if let Some(window) = window {
        let mut candidates: Vec<ClientId> = history
            .ops
            .iter()
            .filter(|op| crate::checker::queue::request_path(&op.request).is_some_and(in_election))
            .map(|op| op.client)
            .collect();
        candidates.sort();
        candidates.dedup();
        let elected = history.recipes.iter().any(|note| {
            note.role == Role::Election
                && matches!(note.event, RecipeEvent::Acquired { .. })
                && note.at >= window.heal_at
                && note.at <= window.end
        });
        if !candidates.is_empty() && !elected {
            violations.push(ElectionViolation::NoLeaderAfterHealing {
                candidates,
                heal_at: window.heal_at,
                end: window.end,
            });
        }
    }
    violations
}

fn in_election(path: &str) -> bool {
    path == ELECTION || path.starts_with(&format!("{ELECTION}/"))
}

impl fmt::Display for ElectionViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElectionViolation::TwoLeaders(overlap) => write!(f, "two leaders: {overlap}"),
            ElectionViolation::Inconsistent(what) => write!(f, "election notes: {what}"),
            ElectionViolation::NoLeaderAfterHealing { candidates, heal_at, end } => {
                let names: Vec<String> = candidates.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "no leader elected between healing at {heal_at} and {end} (candidates {})",
                    names.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::wire::proto::Response;

    use super::*;
    use crate::checker::fixtures::*;
    use crate::checker::lock::tests::{closed_at, hold};

    /// Client `c` ran for leader (it created the election directory).
    fn candidate(history: &mut History, c: u32, ms: u64) {
        let created = ok(2, Response::Create { path: ELECTION.into() });
        op(history, ms, c, 1, create_request(ELECTION, ""), created);
    }

    #[test]
    fn one_leader_at_a_time_and_one_after_healing_passes() {
        let mut history = History::new();
        candidate(&mut history, 0, 1);
        candidate(&mut history, 1, 1);
        hold(&mut history, Role::Election, 0, "a", 10, Some(50));
        hold(&mut history, Role::Election, 1, "b", 60, Some(150));
        hold(&mut history, Role::Election, 0, "c", 200, None);
        assert_eq!(check(&history, &Committed::default(), Some(&window())), vec![]);
    }

    #[test]
    fn two_leaders_with_live_sessions_are_flagged() {
        let mut history = History::new();
        hold(&mut history, Role::Election, 0, "a", 10, Some(50));
        hold(&mut history, Role::Election, 1, "b", 40, Some(60));
        let violations = check(&history, &Committed::default(), None);
        assert!(matches!(&violations[..], [ElectionViolation::TwoLeaders(_)]), "{violations:?}");
        // The first leader's session expired before the second was elected: no violation.
        assert_eq!(check(&history, &closed_at(0, 35), None), vec![]);
    }

    #[test]
    fn no_leader_after_healing_is_flagged() {
        let mut history = History::new();
        candidate(&mut history, 0, 1);
        hold(&mut history, Role::Election, 0, "a", 10, None); // elected before healing only
        let violations = check(&history, &Committed::default(), Some(&window()));
        assert_eq!(
            violations,
            vec![ElectionViolation::NoLeaderAfterHealing {
                candidates: vec![ClientId(0)],
                heal_at: SimTime::from_ms(100),
                end: SimTime::from_ms(500),
            }]
        );
    }

    #[test]
    fn a_run_without_candidates_needs_no_leader() {
        assert_eq!(check(&History::new(), &Committed::default(), Some(&window())), vec![]);
    }
}
