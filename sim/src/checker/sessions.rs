//! A session does not expire while its client is being heard from.
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
//! must not depend on the wall clock (ZOOKEEPER-1366).

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::txn::TxnOp;

use crate::checker::Committed;
use crate::history::{Entry, History, OpOutcome};
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
}
