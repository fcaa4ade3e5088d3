//! After the faults heal, the system makes progress within a bound.
//!
//! Safety alone is easy: a server that answers nothing never lies. So every run ends with a
//! liveness phase (TigerBeetle VOPR style): crashed nodes restart, pauses end, connections
//! unclog, no new faults. From the moment of healing, some write must complete (ok or a
//! definite error; both mean the write path works) within `bound`, and every client must
//! complete at least one operation before the phase ends — a client that can never reconnect,
//! or a session that hangs, is a liveness bug even if others progress.

use std::fmt;

use crate::history::{History, OpOutcome};
use crate::time::SimTime;
use crate::workload::ClientId;

/// The liveness phase of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// When the faults healed.
    pub heal_at: SimTime,
    /// A write must complete by `heal_at + bound_ms`.
    pub bound_ms: u64,
    /// When the phase ended.
    pub end: SimTime,
    /// The clients that must each complete an operation.
    pub clients: Vec<ClientId>,
}

/// No progress after healing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LivenessViolation {
    /// No write completed within the bound.
    NoWriteCompleted {
        /// When the faults healed.
        heal_at: SimTime,
        /// The bound.
        bound_ms: u64,
    },
    /// A client completed nothing in the whole phase.
    ClientStuck {
        /// The client.
        client: ClientId,
        /// When the faults healed.
        heal_at: SimTime,
        /// When the phase ended.
        end: SimTime,
    },
}

/// Checks progress in `window`.
pub fn check(history: &History, window: &Window) -> Vec<LivenessViolation> {
    let deadline = window.heal_at.plus_ms(window.bound_ms);
    let answered =
        |outcome: &OpOutcome| matches!(outcome, OpOutcome::Ok { .. } | OpOutcome::Fail { .. });
    let mut violations = Vec::new();
    let write_done = history.ops.iter().any(|op| {
        op.is_write()
            && op.invoked_at >= window.heal_at
            && answered(&op.outcome)
            && op.completed_at.is_some_and(|at| at <= deadline)
    });
    if !write_done {
        violations.push(LivenessViolation::NoWriteCompleted {
            heal_at: window.heal_at,
            bound_ms: window.bound_ms,
        });
    }
    for &client in &window.clients {
        let progressed = history.ops.iter().any(|op| {
            op.client == client
                && op.invoked_at >= window.heal_at
                && answered(&op.outcome)
                && op.completed_at.is_some_and(|at| at <= window.end)
        });
        if !progressed {
            violations.push(LivenessViolation::ClientStuck {
                client,
                heal_at: window.heal_at,
                end: window.end,
            });
        }
    }
    violations
}

impl fmt::Display for LivenessViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LivenessViolation::NoWriteCompleted { heal_at, bound_ms } => {
                write!(f, "no write completed within {bound_ms} ms of healing at {heal_at}")
            }
            LivenessViolation::ClientStuck { client, heal_at, end } => {
                write!(f, "{client} completed no operation between {heal_at} and {end}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::wire::proto::{Request, Response};

    use super::*;
    use crate::checker::fixtures::*;
    use crate::history::UnknownReason;

    #[test]
    fn progress_after_healing_passes() {
        let mut history = History::new();
        let created = ok(5, Response::Create { path: "/a".into() });
        op(&mut history, 120, 0, 1, create_request("/a", "x"), created);
        op(
            &mut history,
            300,
            1,
            1,
            Request::Sync { path: "/".into() },
            ok(5, Response::Sync { path: "/".into() }),
        );
        assert_eq!(check(&history, &window()), vec![]);
    }

    #[test]
    fn no_progress_is_flagged() {
        let mut history = History::new();
        // A write before healing, a late one, and one that never got an answer.
        op(
            &mut history,
            90,
            0,
            1,
            create_request("/a", "x"),
            ok(5, Response::Create { path: "/a".into() }),
        );
        op(
            &mut history,
            200,
            0,
            2,
            create_request("/b", "x"),
            ok(6, Response::Create { path: "/b".into() }),
        );
        let unknown = OpOutcome::Unknown(UnknownReason::Timeout);
        op(&mut history, 110, 1, 1, create_request("/c", "x"), unknown);
        assert_eq!(
            check(&history, &window()),
            vec![
                LivenessViolation::NoWriteCompleted {
                    heal_at: SimTime::from_ms(100),
                    bound_ms: 50
                },
                LivenessViolation::ClientStuck {
                    client: ClientId(1),
                    heal_at: SimTime::from_ms(100),
                    end: SimTime::from_ms(500)
                },
            ]
        );
    }
}
