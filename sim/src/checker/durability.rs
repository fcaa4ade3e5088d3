//! Acknowledged writes are never lost.
//!
//! Every write a client got a success reply for must be in the committed log at the zxid of
//! the reply, as the txn of that very request (same session, same cxid), no matter how many
//! crashes and restarts happened after the reply. Conversely, a write the server answered with
//! an error must not have been applied: if the log holds its txn, it is an error txn. Every
//! session a client was told was created must have its createSession txn committed, or a
//! restart could forget it. Unknown outcomes are unconstrained: the write may or may not be
//! there.

use std::collections::BTreeSet;
use std::fmt;

use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::txn::TxnOp;

use crate::checker::Committed;
use crate::history::{Entry, History, OpId, OpOutcome};
use crate::workload::ClientId;

/// A lost or contradicted write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurabilityViolation {
    /// The client was told the write succeeded at `zxid`, and the log has no txn there.
    AckedWriteLost {
        /// The operation.
        op: OpId,
        /// Who was told.
        client: ClientId,
        /// The zxid of the reply.
        zxid: i64,
        /// The last committed zxid.
        committed: Zxid,
    },
    /// The log has a txn at the acknowledged zxid, but of another request.
    AckedWriteReplaced {
        /// The operation.
        op: OpId,
        /// The zxid of the reply.
        zxid: i64,
        /// The txn's session.
        found_session: SessionId,
        /// The txn's cxid.
        found_cxid: i32,
    },
    /// The client was told the write failed, yet its txn in the log is not an error txn: either
    /// the write happened, or preparation and apply disagree about it (the txn was prepared
    /// against a wrong view of the tree and failed only when applied).
    FailedWriteApplied {
        /// The operation.
        op: OpId,
        /// The zxid of the reply.
        zxid: i64,
        /// The error code the client got.
        code: i32,
    },
    /// A client was given a session whose createSession txn is not committed.
    SessionLost {
        /// The client.
        client: ClientId,
        /// The session.
        session: SessionId,
    },
}

/// Checks every write and every created session of `history` against `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<DurabilityViolation> {
    let mut violations = Vec::new();
    for op in history.ops.iter().filter(|op| op.is_write()) {
        match &op.outcome {
            OpOutcome::Ok { zxid, .. } => match committed.get(Zxid::from_wire(*zxid)) {
                None => violations.push(DurabilityViolation::AckedWriteLost {
                    op: op.id,
                    client: op.client,
                    zxid: *zxid,
                    committed: committed.last_zxid(),
                }),
                Some(txn) if txn.session != op.session || txn.cxid != op.xid => {
                    violations.push(DurabilityViolation::AckedWriteReplaced {
                        op: op.id,
                        zxid: *zxid,
                        found_session: txn.session,
                        found_cxid: txn.cxid,
                    })
                }
                Some(_) => {}
            },
            OpOutcome::Fail { zxid, code } => {
                let applied = committed.get(Zxid::from_wire(*zxid)).is_some_and(|txn| {
                    txn.session == op.session && txn.cxid == op.xid && changes_state(&txn.op)
                });
                if applied {
                    violations.push(DurabilityViolation::FailedWriteApplied {
                        op: op.id,
                        zxid: *zxid,
                        code: *code,
                    });
                }
            }
            OpOutcome::Pending | OpOutcome::Unknown(_) => {}
        }
    }
    let created: BTreeSet<SessionId> = committed
        .txns()
        .iter()
        .filter(|t| matches!(t.op, TxnOp::CreateSession { .. }))
        .map(|t| t.session)
        .collect();
    for (_, entry) in &history.entries {
        if let Entry::Connected { client, session, created: true, .. } = entry {
            if !created.contains(session) {
                violations
                    .push(DurabilityViolation::SessionLost { client: *client, session: *session });
            }
        }
    }
    violations
}

/// Whether a txn changed the tree or the sessions (an error txn, or a multi of errors, did not).
fn changes_state(op: &TxnOp) -> bool {
    match op {
        TxnOp::Error { .. } => false,
        TxnOp::Multi(ops) => ops.iter().any(changes_state),
        _ => true,
    }
}

impl fmt::Display for DurabilityViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurabilityViolation::AckedWriteLost { op, client, zxid, committed } => write!(
                f,
                "op #{} of {client} was acknowledged at zxid {zxid:#x}, which the committed log \
                 (ending at {committed}) does not hold",
                op.0
            ),
            DurabilityViolation::AckedWriteReplaced { op, zxid, found_session, found_cxid } => {
                write!(
                    f,
                    "op #{} was acknowledged at zxid {zxid:#x}, but the log has session \
                     {found_session} cxid {found_cxid} there",
                    op.0
                )
            }
            DurabilityViolation::FailedWriteApplied { op, zxid, code } => write!(
                f,
                "op #{} failed with {} at zxid {zxid:#x}, yet its logged txn is not an error txn \
                 (the write happened, or prep and apply disagree)",
                op.0,
                crate::history::error_name(*code)
            ),
            DurabilityViolation::SessionLost { client, session } => {
                write!(f, "{client} was given session {session}, which was never committed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::txn::TxnOp;
    use ensemble::wire::proto::{Request, Response};

    use super::*;
    use crate::checker::fixtures::*;
    use crate::history::UnknownReason;
    use crate::time::SimTime;

    fn created(path: &str) -> Response {
        Response::Create { path: path.into() }
    }

    #[test]
    fn an_acknowledged_write_in_the_log_passes() {
        let mut history = History::new();
        op(&mut history, 1, 0, 7, create_request("/a", "x"), ok(3, created("/a")));
        let committed = Committed::new(vec![create_txn(3, 0, 7, "/a", "x")]);
        assert_eq!(check(&history, &committed), vec![]);
    }

    #[test]
    fn a_lost_acknowledged_write_is_flagged() {
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 7, create_request("/a", "x"), ok(3, created("/a")));
        let committed = Committed::new(vec![create_txn(2, 0, 6, "/b", "y")]);
        assert_eq!(
            check(&history, &committed),
            vec![DurabilityViolation::AckedWriteLost {
                op: id,
                client: ClientId(0),
                zxid: 3,
                committed: Zxid(2)
            }]
        );
    }

    #[test]
    fn a_replaced_acknowledged_write_is_flagged() {
        let mut history = History::new();
        let id = op(&mut history, 1, 0, 7, create_request("/a", "x"), ok(3, created("/a")));
        // After a crash lost the write, the restarted node reused zxid 3 for client 1.
        let committed = Committed::new(vec![create_txn(3, 1, 2, "/z", "other")]);
        let violations = check(&history, &committed);
        assert!(
            matches!(violations[..], [DurabilityViolation::AckedWriteReplaced { op, .. }] if op == id),
            "{violations:?}"
        );
    }

    #[test]
    fn unknown_writes_may_or_may_not_be_there() {
        let mut history = History::new();
        let unknown = OpOutcome::Unknown(UnknownReason::Disconnected);
        op(&mut history, 1, 0, 7, create_request("/a", "x"), unknown.clone());
        op(&mut history, 2, 0, 8, create_request("/b", "y"), unknown);
        let committed = Committed::new(vec![create_txn(3, 0, 7, "/a", "x")]);
        assert_eq!(check(&history, &committed), vec![]);
    }

    #[test]
    fn a_failed_write_that_was_applied_is_flagged() {
        let mut history = History::new();
        let fail = OpOutcome::Fail { zxid: 3, code: -110 };
        let id = op(&mut history, 1, 0, 7, create_request("/a", "x"), fail.clone());
        let applied = Committed::new(vec![create_txn(3, 0, 7, "/a", "x")]);
        assert_eq!(
            check(&history, &applied),
            vec![DurabilityViolation::FailedWriteApplied { op: id, zxid: 3, code: -110 }]
        );
        let error_txn = Committed::new(vec![txn(3, 0, 7, TxnOp::Error { code: -110 })]);
        assert_eq!(check(&history, &error_txn), vec![]);
    }

    #[test]
    fn a_forgotten_session_is_flagged() {
        let mut history = History::new();
        let c = channel(0);
        history.observe(
            SimTime(1),
            Entry::Connected {
                client: c.client,
                session: c.session,
                server: c.server,
                conn: c.conn,
                created: true,
            },
        );
        let empty = Committed::new(vec![]);
        assert_eq!(
            check(&history, &empty),
            vec![DurabilityViolation::SessionLost { client: c.client, session: c.session }]
        );
        let with_session = Committed::new(vec![txn(
            1,
            0,
            0,
            TxnOp::CreateSession { timeout_ms: 10_000, password: [0; 16] },
        )]);
        assert_eq!(check(&history, &with_session), vec![]);
        // Reads are not writes: a read "acknowledged" at a missing zxid is the reads
        // checker's business.
        op(
            &mut history,
            3,
            0,
            9,
            Request::Sync { path: "/".into() },
            ok(99, Response::Sync { path: "/".into() }),
        );
        assert_eq!(check(&history, &with_session), vec![]);
    }
}
