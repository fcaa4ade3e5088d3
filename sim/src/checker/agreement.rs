//! Servers agree on one committed history, and no leader forgets any of it.
//!
//! The simulator builds the committed history online, from leaders: whenever an established
//! leader (or a standalone server) has applied beyond the last recorded zxid, the txns it
//! applied — taken from its own log — are appended. A txn a leader applied is committed, and in
//! Zab every later leader's history contains it. Three checks follow:
//! * **leader completeness**: a leader, once established, has applied at least every recorded
//!   txn (its log holds the whole committed history, ZooKeeper's "every committed txn is in
//!   every later leader's history");
//! * **state agreement**: any two serving servers that applied up to the same zxid have equal
//!   tree digests (their applied histories are prefixes of one sequence);
//! * **final state**: at the end, every serving server's tree is the replay of the committed
//!   history up to its zxid — which catches a committed txn lost without a conflicting one
//!   ever taking its zxid.
//!
//! Why leaders only: a follower may have been given a snapshot (SNAP) and keep stale, never
//! committed txns below it in its log files; a leader's txns above the recorded history are
//! exactly what it is about to commit, and everything below was recorded already.

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::{ServerId, Zxid};
use ensemble::core::tree::DataTree;
use ensemble::core::txn::Txn;

use crate::checker::Committed;
use crate::time::SimTime;

/// A break in agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgreementViolation {
    /// An established leader lacks committed txns.
    LeaderMissesCommitted {
        /// The leader.
        leader: ServerId,
        /// What it applied.
        applied: Zxid,
        /// The last committed zxid.
        committed: Zxid,
    },
    /// A leader's history has a different txn at a committed zxid.
    ConflictingTxn {
        /// The leader.
        leader: ServerId,
        /// The zxid.
        zxid: Zxid,
        /// The committed txn, briefly.
        committed: String,
        /// The leader's, briefly.
        found: String,
    },
    /// Two servers at the same zxid have different trees.
    DivergedState {
        /// The zxid.
        zxid: Zxid,
        /// The server that recorded the digest first.
        first: ServerId,
        /// Its digest.
        first_digest: u64,
        /// The server that disagrees.
        second: ServerId,
        /// Its digest.
        second_digest: u64,
    },
    /// At the end, a server's tree is not the replay of the committed history.
    FinalStateDiffers {
        /// The server.
        server: ServerId,
        /// Its last applied zxid.
        zxid: Zxid,
        /// Its digest.
        node_digest: u64,
        /// The replay's digest.
        replay_digest: u64,
    },
}

/// The committed history as it is being built, and the digests seen at each zxid.
#[derive(Debug, Default)]
pub struct CommitLog {
    txns: Vec<Txn>,
    times: Vec<SimTime>,
    digests: BTreeMap<Zxid, (ServerId, u64)>,
    epoch: u32,
}

impl CommitLog {
    /// Nothing committed yet.
    pub fn new() -> CommitLog {
        CommitLog::default()
    }

    /// The last committed zxid.
    pub fn last_zxid(&self) -> Zxid {
        self.txns.last().map_or(Zxid::ZERO, |t| t.zxid)
    }

    /// The highest epoch of a leader that extended the history.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The committed txn at `zxid`.
    pub fn get(&self, zxid: Zxid) -> Option<&Txn> {
        let at = self.txns.partition_point(|t| t.zxid < zxid);
        self.txns.get(at).filter(|t| t.zxid == zxid)
    }

    /// An established leader of `epoch` (not older than [`CommitLog::epoch`]) has applied up
    /// to `applied`; `logged` are the txns of its log above the last committed zxid, up to
    /// `applied`, in zxid order.
    pub fn leader_applied(
        &mut self,
        leader: ServerId,
        epoch: u32,
        applied: Zxid,
        logged: Vec<Txn>,
        now: SimTime,
    ) -> Option<AgreementViolation> {
        debug_assert!(epoch >= self.epoch, "a stale leader goes to stale_leader_applied");
        self.epoch = epoch;
        let committed = self.last_zxid();
        if applied < committed {
            return Some(AgreementViolation::LeaderMissesCommitted { leader, applied, committed });
        }
        for txn in logged {
            debug_assert!(txn.zxid > self.last_zxid() && txn.zxid <= applied);
            self.txns.push(txn);
            self.times.push(now);
        }
        None
    }

    /// A leader of an epoch older than [`CommitLog::epoch`] — one that has not noticed yet that
    /// the ensemble moved on — applied `logged`. It may still apply what its epoch committed,
    /// but nothing else: each txn must be the committed one at its zxid, and it may not apply
    /// past the committed history with a zxid the newer leaders skipped.
    pub fn stale_leader_applied(
        &self,
        leader: ServerId,
        logged: &[Txn],
    ) -> Option<AgreementViolation> {
        logged.iter().find_map(|txn| match self.get(txn.zxid) {
            Some(committed) if committed != txn => Some(AgreementViolation::ConflictingTxn {
                leader,
                zxid: txn.zxid,
                committed: brief(committed),
                found: brief(txn),
            }),
            Some(_) => None,
            None => Some(AgreementViolation::ConflictingTxn {
                leader,
                zxid: txn.zxid,
                committed: "nothing (the newer leaders skipped this zxid)".into(),
                found: brief(txn),
            }),
        })
    }

    /// A newly established leader's log agrees with the committed history where both have the
    /// txn (`logged` gives the leader's txn at a zxid, if its log still holds it).
    pub fn leader_established(
        &self,
        leader: ServerId,
        applied: Zxid,
        logged: impl Fn(Zxid) -> Option<Txn>,
    ) -> Option<AgreementViolation> {
        let committed = self.last_zxid();
        if applied < committed {
            return Some(AgreementViolation::LeaderMissesCommitted { leader, applied, committed });
        }
        self.txns.iter().rev().take(LEADER_CHECK_DEPTH).find_map(|txn| {
            let found = logged(txn.zxid)?;
            (found != *txn).then(|| AgreementViolation::ConflictingTxn {
                leader,
                zxid: txn.zxid,
                committed: brief(txn),
                found: brief(&found),
            })
        })
    }

    /// A serving server is at `applied` with tree digest `digest`.
    pub fn server_at(
        &mut self,
        server: ServerId,
        applied: Zxid,
        digest: u64,
    ) -> Option<AgreementViolation> {
        match self.digests.get(&applied) {
            Some(&(first, first_digest)) if first_digest != digest => {
                Some(AgreementViolation::DivergedState {
                    zxid: applied,
                    first,
                    first_digest,
                    second: server,
                    second_digest: digest,
                })
            }
            Some(_) => None,
            None => {
                self.digests.insert(applied, (server, digest));
                None
            }
        }
    }

    /// End of run: `tree` (of a serving server) against the replay of the history up to it.
    pub fn final_state(&self, server: ServerId, tree: &DataTree) -> Option<AgreementViolation> {
        self.final_states(&[(server, tree)]).pop().flatten()
    }

    /// [`CommitLog::final_state`] for each of `trees`, in their order, with one replay of the
    /// history taken past each tree's applied zxid in turn (rather than one replay per tree).
    pub fn final_states(&self, trees: &[(ServerId, &DataTree)]) -> Vec<Option<AgreementViolation>> {
        let mut order: Vec<usize> = (0..trees.len()).collect();
        order.sort_by_key(|&i| trees[i].1.zxid_applied());
        let mut found = vec![None; trees.len()];
        let mut replay = DataTree::new();
        let mut events = Vec::new();
        let mut next = 0;
        for i in order {
            let (server, tree) = trees[i];
            let zxid = tree.zxid_applied();
            while let Some(txn) = self.txns.get(next).filter(|t| t.zxid <= zxid) {
                replay.apply(txn, &mut events);
                events.clear();
                next += 1;
            }
            let (node_digest, replay_digest) = (tree.digest(), replay.digest());
            found[i] =
                (node_digest != replay_digest).then_some(AgreementViolation::FinalStateDiffers {
                    server,
                    zxid,
                    node_digest,
                    replay_digest,
                });
        }
        found
    }

    /// The committed txns so far, in zxid order (without copying them).
    pub fn txns(&self) -> &[Txn] {
        &self.txns
    }

    /// The committed history, for the end-of-run checkers.
    pub fn committed(&self) -> Committed {
        Committed::with_times(self.txns.clone(), self.times.clone())
    }
}

/// How many of the latest committed txns a new leader's log is compared against.
const LEADER_CHECK_DEPTH: usize = 64;

fn brief(txn: &Txn) -> String {
    format!("session {} cxid {} {:?}", txn.session, txn.cxid, txn.op)
}

impl fmt::Display for AgreementViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgreementViolation::LeaderMissesCommitted { leader, applied, committed } => write!(
                f,
                "leader n{leader} is established at {applied}, behind the committed {committed}"
            ),
            AgreementViolation::ConflictingTxn { leader, zxid, committed, found } => {
                write!(f, "leader n{leader} has {found} at {zxid}, where {committed} was committed")
            }
            AgreementViolation::DivergedState {
                zxid,
                first,
                first_digest,
                second,
                second_digest,
            } => {
                write!(
                    f,
                    "at {zxid}, n{first} has digest {first_digest:#x} but n{second} has \
                     {second_digest:#x}"
                )
            }
            AgreementViolation::FinalStateDiffers { server, zxid, node_digest, replay_digest } => {
                write!(
                    f,
                    "n{server} ends at {zxid} with digest {node_digest:#x}, but the committed \
                     history replays to {replay_digest:#x}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::fixtures::*;

    #[test]
    fn a_leader_that_keeps_the_history_passes() {
        let t1 = create_txn(1, 0, 1, "/a", "x");
        let t2 = set_txn(2, 0, 2, "/a", "y", 1);
        let mut log = CommitLog::new();
        assert_eq!(
            log.leader_applied(ServerId(1), 0, Zxid(1), vec![t1.clone()], SimTime::ZERO),
            None
        );
        assert_eq!(
            log.leader_applied(ServerId(1), 0, Zxid(2), vec![t2.clone()], SimTime::ZERO),
            None
        );
        let logged = |z: Zxid| [t1.clone(), t2.clone()].into_iter().find(|t| t.zxid == z);
        assert_eq!(log.leader_established(ServerId(2), Zxid(2), logged), None);
        assert_eq!(log.final_state(ServerId(2), &tree_of(&[t1, t2])), None);
    }

    #[test]
    fn a_leader_behind_the_committed_history_is_flagged() {
        let mut log = CommitLog::new();
        log.leader_applied(
            ServerId(1),
            1,
            Zxid(2),
            vec![create_txn(1, 0, 1, "/a", "x"), create_txn(2, 0, 2, "/b", "x")],
            SimTime::ZERO,
        );
        assert!(matches!(
            log.leader_established(ServerId(2), Zxid(1), |_| None),
            Some(AgreementViolation::LeaderMissesCommitted { .. })
        ));
        assert!(matches!(
            log.leader_applied(ServerId(2), 1, Zxid(1), vec![], SimTime::ZERO),
            Some(AgreementViolation::LeaderMissesCommitted { .. })
        ));
    }

    #[test]
    fn a_leader_with_another_txn_at_a_committed_zxid_is_flagged() {
        let mut log = CommitLog::new();
        log.leader_applied(
            ServerId(1),
            0,
            Zxid(1),
            vec![create_txn(1, 0, 1, "/a", "x")],
            SimTime::ZERO,
        );
        let other = create_txn(1, 3, 9, "/z", "q");
        let violation = log.leader_established(ServerId(2), Zxid(1), |_| Some(other.clone()));
        assert!(
            matches!(violation, Some(AgreementViolation::ConflictingTxn { .. })),
            "{violation:?}"
        );
    }

    #[test]
    fn a_stale_leader_may_only_apply_committed_txns() {
        let t1 = create_txn(1, 0, 1, "/a", "x");
        let mut log = CommitLog::new();
        log.leader_applied(ServerId(2), 2, Zxid(1), vec![t1.clone()], SimTime::ZERO);
        assert_eq!(log.stale_leader_applied(ServerId(1), &[t1]), None);
        let other = create_txn(1, 3, 9, "/z", "q");
        assert!(log.stale_leader_applied(ServerId(1), &[other]).is_some());
        let skipped = create_txn(0, 3, 9, "/z", "q");
        assert!(log.stale_leader_applied(ServerId(1), &[skipped]).is_some());
    }

    #[test]
    fn diverged_servers_and_a_lost_txn_are_flagged() {
        let mut log = CommitLog::new();
        assert_eq!(log.server_at(ServerId(1), Zxid(3), 0xaa), None);
        assert_eq!(log.server_at(ServerId(2), Zxid(3), 0xaa), None);
        assert!(matches!(
            log.server_at(ServerId(3), Zxid(3), 0xbb),
            Some(AgreementViolation::DivergedState { .. })
        ));

        let t1 = create_txn(1, 0, 1, "/a", "x");
        let t2 = create_txn(2, 0, 2, "/b", "x");
        let mut log = CommitLog::new();
        log.leader_applied(ServerId(1), 0, Zxid(2), vec![t1.clone(), t2], SimTime::ZERO);
        // A server that lost /b but took a later txn at a higher zxid.
        let t3 = create_txn(3, 0, 3, "/c", "x");
        let violation = log.final_state(ServerId(1), &tree_of(&[t1, t3]));
        assert!(
            matches!(violation, Some(AgreementViolation::FinalStateDiffers { .. })),
            "{violation:?}"
        );
    }

    #[test]
    fn one_replay_judges_every_tree_as_its_own_replay_would() {
        let txns: Vec<Txn> =
            (1..=4).map(|z| create_txn(z, 0, z as i32, &format!("/n{z}"), "x")).collect();
        let mut log = CommitLog::new();
        log.leader_applied(ServerId(1), 0, Zxid(4), txns.clone(), SimTime::ZERO);
        let behind = tree_of(&txns[..1]);
        let ahead = tree_of(&txns);
        let wrong = tree_of(&[txns[0].clone(), txns[2].clone()]);
        let empty = tree_of(&[]);
        // Out of zxid order, with a diverged tree between two good ones.
        let trees = [
            (ServerId(1), &ahead),
            (ServerId(2), &wrong),
            (ServerId(3), &behind),
            (ServerId(4), &empty),
        ];
        let one_by_one: Vec<_> =
            trees.iter().map(|&(server, tree)| log.final_state(server, tree)).collect();
        assert!(matches!(
            one_by_one[..],
            [None, Some(AgreementViolation::FinalStateDiffers { zxid: Zxid(3), .. }), None, None]
        ));
        assert_eq!(log.final_states(&trees), one_by_one);
    }
}
