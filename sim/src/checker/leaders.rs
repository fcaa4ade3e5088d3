//! At most one established leader per epoch, each one established by a quorum of voters, and
//! every member serving epochs in increasing order.
//!
//! Zab's central safety argument (Junqueira, Reed, Serafini: "Zab: High-performance broadcast
//! for primary-backup systems", the *primary uniqueness* and *primary order* properties;
//! ZooKeeper's `Leader.waitForNewLeaderAck`) rests on these. The checker is fed online, after
//! every step of every ensemble member, with what the node itself reports
//! ([`ServerReport`](ensemble::core::report::ServerReport): mode, serving, current epoch, and
//! on a leader its [`LearnerReport`]s), and with every member's durable currentEpoch:
//! * **quorum**: a leader is *established* (starts serving) only once a quorum of voters —
//!   itself included, observers never counted — acknowledged NEWLEADER of its epoch. The
//!   learners a not-yet-established leader reports in state `synced` or `broadcast` (it got
//!   their ACK of NEWLEADER) are collected step by step, because a learner that acknowledged
//!   and then disconnected still counts but disappears from the report. The leader's own
//!   acknowledgement is its currentEpoch being durable, and so is a voter's: when its leader
//!   counts its ACK of NEWLEADER, the voter's currentEpoch must already be on its disk
//!   (ZOOKEEPER-3911/4646 acknowledged before the synced state was durable).
//! * **one leader per epoch**: no two establishments share an epoch.
//! * **epochs only increase**: each member serves (as established leader, follower or
//!   observer) epochs in non-decreasing order, across crashes too; and it serves an epoch only
//!   under the leader established in it. A global "every establishment has a higher epoch than
//!   the one before it" is *not* a Zab property in real time: a leader paused between its
//!   quorum's ACKs and its own fsync may establish after a newer epoch did, as a stale leader
//!   that can commit nothing new (the agreement checker watches what it applies). What Zab
//!   orders is each member's view, which is what is checked.
//! * **roles**: an observer never leads or follows (it never votes), a voter never observes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ensemble::core::ids::ServerId;
use ensemble::core::report::{LearnerReport, Mode};
use ensemble::core::zab::PeerRole;

use crate::time::SimTime;

/// A break of leader uniqueness or epoch order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderViolation {
    /// A leader started serving without a quorum of voters acknowledging NEWLEADER.
    NoQuorum {
        /// The leader.
        leader: ServerId,
        /// Its epoch.
        epoch: u32,
        /// The voters known to have acknowledged (the leader included if it did).
        acked: Vec<ServerId>,
    },
    /// A voter's ACK of NEWLEADER was counted before its currentEpoch was durable.
    AckNotDurable {
        /// The voter.
        learner: ServerId,
        /// Its leader.
        leader: ServerId,
        /// The leader's epoch.
        epoch: u32,
        /// The currentEpoch on the voter's disk.
        durable: Option<u32>,
    },
    /// A leader started serving before its own currentEpoch was durable (its own ACK).
    OwnEpochNotDurable {
        /// The leader.
        leader: ServerId,
        /// Its epoch.
        epoch: u32,
        /// The currentEpoch on its disk.
        durable: Option<u32>,
    },
    /// Two establishments in one epoch.
    TwoLeaders {
        /// The epoch.
        epoch: u32,
        /// The leader established first.
        first: ServerId,
        /// When.
        first_at: SimTime,
        /// The second one.
        second: ServerId,
    },
    /// A member served an epoch lower than one it served before.
    EpochWentBack {
        /// The member.
        server: ServerId,
        /// The epoch it serves now.
        epoch: u32,
        /// The higher epoch it served before.
        previous: u32,
    },
    /// A learner serves an epoch no leader was established in, or under another leader.
    LearnerWithoutLeader {
        /// The learner.
        server: ServerId,
        /// Its epoch.
        epoch: u32,
        /// The leader it follows.
        follows: Option<ServerId>,
        /// The leader established in that epoch, if any.
        established: Option<ServerId>,
    },
    /// A member took a role its membership forbids.
    WrongRole {
        /// The member.
        server: ServerId,
        /// Its role in the configuration.
        member: PeerRole,
        /// The mode it reported.
        mode: &'static str,
    },
}

/// What a member reported after a step.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    /// Its mode.
    pub mode: Mode,
    /// Whether it serves clients (a leader: established).
    pub serving: bool,
    /// Its current epoch.
    pub epoch: u32,
    /// The leader it follows or is, once serving.
    pub leader: Option<ServerId>,
    /// On a leader: its learners; empty otherwise.
    pub learners: &'a [LearnerReport],
    /// On a leader that is not established yet: the currentEpoch on every member's disk
    /// (empty otherwise).
    pub durable_epochs: &'a [(ServerId, Option<u32>)],
}

impl Report<'_> {
    fn durable_epoch(&self, server: ServerId) -> Option<u32> {
        self.durable_epochs.iter().find(|(id, _)| *id == server).and_then(|(_, e)| *e)
    }
}

/// A leader's term as seen so far: the voters that acknowledged NEWLEADER of its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    life: u32,
    epoch: u32,
    acked: BTreeSet<ServerId>,
}

/// What a member was doing after its last reported step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    life: u32,
    mode: Mode,
    serving: bool,
}

/// The leaders checker's state, fed online.
#[derive(Clone, Debug, Default)]
pub struct LeaderLog {
    roles: BTreeMap<ServerId, PeerRole>,
    terms: BTreeMap<ServerId, Term>,
    seen: BTreeMap<ServerId, Seen>,
    established: BTreeMap<u32, (ServerId, SimTime)>,
    served: BTreeMap<ServerId, u32>,
}

impl LeaderLog {
    /// A checker for an ensemble of `members` (a standalone server is never checked).
    pub fn new(members: &[(ServerId, PeerRole)]) -> LeaderLog {
        LeaderLog { roles: members.iter().copied().collect(), ..LeaderLog::default() }
    }

    /// Whether there is anything to check (an ensemble, not a standalone server).
    pub fn active(&self) -> bool {
        self.roles.len() > 1
    }

    /// Whether the driver must pass a leader's learners after its next step: while `server`
    /// leads without being established, and at the step it becomes established.
    pub fn wants_learners(&self, server: ServerId, life: u32, mode: Mode, serving: bool) -> bool {
        mode == Mode::Leader
            && (!serving
                || self
                    .seen
                    .get(&server)
                    .is_none_or(|s| s.life != life || s.mode != Mode::Leader || !s.serving))
    }

    /// The epochs established so far, with their leader and time.
    pub fn established(&self) -> &BTreeMap<u32, (ServerId, SimTime)> {
        &self.established
    }

    /// Member `server`, in its life `life`, reported `report` after a step at `now`.
    pub fn observe(
        &mut self,
        now: SimTime,
        server: ServerId,
        life: u32,
        report: &Report<'_>,
    ) -> Vec<LeaderViolation> {
        let mut violations = Vec::new();
        if !self.active() {
            return violations;
        }
        let now_seen = Seen { life, mode: report.mode, serving: report.serving };
        let before = self.seen.insert(server, now_seen);
        let changed = before != Some(now_seen);
        if changed {
            violations.extend(self.check_role(server, report.mode));
        }
        if report.mode == Mode::Leader {
            violations.extend(self.collect_acks(server, life, report));
        }
        let started_serving = report.serving
            && before.is_none_or(|b| b.life != life || b.mode != report.mode || !b.serving);
        if started_serving {
            violations.extend(self.started_serving(now, server, life, report));
        }
        violations
    }

    fn check_role(&self, server: ServerId, mode: Mode) -> Option<LeaderViolation> {
        let member = self.roles.get(&server).copied().unwrap_or(PeerRole::Observer);
        let fits = match mode {
            Mode::Looking => true,
            Mode::Leader | Mode::Follower => member == PeerRole::Participant,
            Mode::Observer => member == PeerRole::Observer,
            Mode::Standalone => false,
        };
        (!fits).then_some(LeaderViolation::WrongRole { server, member, mode: mode.as_str() })
    }

    /// Adds the voters a leader reports as having acknowledged NEWLEADER of its epoch; each
    /// must have its currentEpoch durable by then.
    fn collect_acks(
        &mut self,
        leader: ServerId,
        life: u32,
        report: &Report<'_>,
    ) -> Vec<LeaderViolation> {
        let mut violations = Vec::new();
        let term = self.terms.entry(leader).or_insert_with(|| Term {
            life,
            epoch: report.epoch,
            acked: BTreeSet::new(),
        });
        if term.life != life || term.epoch != report.epoch {
            *term = Term { life, epoch: report.epoch, acked: BTreeSet::new() };
        }
        for learner in report.learners {
            let acked = matches!(learner.state, "synced" | "broadcast");
            let voter = self.roles.get(&learner.id) == Some(&PeerRole::Participant);
            if acked && voter && term.acked.insert(learner.id) {
                let durable = report.durable_epoch(learner.id);
                if durable.is_none_or(|d| d < report.epoch) {
                    violations.push(LeaderViolation::AckNotDurable {
                        learner: learner.id,
                        leader,
                        epoch: report.epoch,
                        durable,
                    });
                }
            }
        }
        violations
    }

    fn started_serving(
        &mut self,
        now: SimTime,
        server: ServerId,
        life: u32,
        report: &Report<'_>,
    ) -> Vec<LeaderViolation> {
        let mut violations = Vec::new();
        let epoch = report.epoch;
        if report.mode == Mode::Leader {
            let mut acked: Vec<ServerId> = self
                .terms
                .get(&server)
                .filter(|t| t.life == life && t.epoch == epoch)
                .map(|t| t.acked.iter().copied().collect())
                .unwrap_or_default();
            let own_durable = report.durable_epoch(server);
            let own = own_durable.is_some_and(|d| d >= epoch);
            if own {
                acked.push(server);
                acked.sort();
            } else {
                violations.push(LeaderViolation::OwnEpochNotDurable {
                    leader: server,
                    epoch,
                    durable: own_durable,
                });
            }
            if !self.is_quorum(&acked) {
                violations.push(LeaderViolation::NoQuorum { leader: server, epoch, acked });
            }
            match self.established.get(&epoch) {
                Some(&(first, first_at)) => violations.push(LeaderViolation::TwoLeaders {
                    epoch,
                    first,
                    first_at,
                    second: server,
                }),
                None => {
                    self.established.insert(epoch, (server, now));
                }
            }
        } else {
            let established = self.established.get(&epoch).map(|(leader, _)| *leader);
            if established.is_none() || established != report.leader {
                violations.push(LeaderViolation::LearnerWithoutLeader {
                    server,
                    epoch,
                    follows: report.leader,
                    established,
                });
            }
        }
        if let Some(&previous) = self.served.get(&server) {
            if epoch < previous {
                violations.push(LeaderViolation::EpochWentBack { server, epoch, previous });
            }
        }
        let highest = self.served.entry(server).or_insert(epoch);
        *highest = (*highest).max(epoch);
        violations
    }

    /// Whether `ids` hold a strict majority of the voters (observers ignored).
    fn is_quorum(&self, ids: &[ServerId]) -> bool {
        let voters = self.roles.values().filter(|r| **r == PeerRole::Participant).count();
        let votes = ids
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|id| self.roles.get(id) == Some(&PeerRole::Participant))
            .count();
        2 * votes > voters
    }
}

impl fmt::Display for LeaderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |ids: &[ServerId]| {
            let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
            format!("[{}]", names.join(", "))
        };
        match self {
            LeaderViolation::NoQuorum { leader, epoch, acked } => write!(
                f,
                "n{leader} was established in epoch {epoch} with NEWLEADER acknowledged only by \
                 {}, not a quorum of voters",
                ids(acked)
            ),
            LeaderViolation::AckNotDurable { learner, leader, epoch, durable } => write!(
                f,
                "n{leader} counted n{learner}'s ACK of NEWLEADER for epoch {epoch} while \
                 n{learner}'s durable currentEpoch was {durable:?}"
            ),
            LeaderViolation::OwnEpochNotDurable { leader, epoch, durable } => write!(
                f,
                "n{leader} was established in epoch {epoch} while its durable currentEpoch was \
                 {durable:?}"
            ),
            LeaderViolation::TwoLeaders { epoch, first, first_at, second } => write!(
                f,
                "two leaders established in epoch {epoch}: n{first} at {first_at}, then n{second}"
            ),
            LeaderViolation::EpochWentBack { server, epoch, previous } => {
                write!(f, "n{server} serves epoch {epoch} after having served epoch {previous}")
            }
            LeaderViolation::LearnerWithoutLeader { server, epoch, follows, established } => {
                let name = |id: &Option<ServerId>| id.map_or("none".into(), |id| format!("n{id}"));
                write!(
                    f,
                    "n{server} serves epoch {epoch} following {}, but the leader established in \
                     it is {}",
                    name(follows),
                    name(established)
                )
            }
            LeaderViolation::WrongRole { server, member, mode } => {
                write!(f, "n{server}, a configured {member:?}, reported mode {mode}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: ServerId = ServerId(1);
    const N2: ServerId = ServerId(2);
    const N3: ServerId = ServerId(3);
    const N4: ServerId = ServerId(4);

    /// Three voters and observer n4.
    fn log() -> LeaderLog {
        LeaderLog::new(&[
            (N1, PeerRole::Participant),
            (N2, PeerRole::Participant),
            (N3, PeerRole::Participant),
            (N4, PeerRole::Observer),
        ])
    }

    fn learner(id: ServerId, state: &'static str, observer: bool) -> LearnerReport {
        LearnerReport { id, observer, state, sync: "DIFF", zxid: Default::default() }
    }

    /// Every member's currentEpoch is durable, whatever epoch a test is at.
    const DURABLE: &[(ServerId, Option<u32>)] =
        &[(N1, Some(99)), (N2, Some(99)), (N3, Some(99)), (N4, Some(99))];

    fn leader(epoch: u32, serving: bool, learners: &[LearnerReport]) -> Report<'_> {
        Report {
            mode: Mode::Leader,
            serving,
            epoch,
            leader: None,
            learners,
            durable_epochs: DURABLE,
        }
    }

    fn follower(mode: Mode, epoch: u32, leader: ServerId) -> Report<'static> {
        Report {
            mode,
            serving: true,
            epoch,
            leader: Some(leader),
            learners: &[],
            durable_epochs: &[],
        }
    }

    fn at(ms: u64) -> SimTime {
        SimTime::from_ms(ms)
    }

    /// Leader `id` syncs `acked` and is established in `epoch`.
    fn establish(log: &mut LeaderLog, ms: u64, id: ServerId, epoch: u32, acked: &[ServerId]) {
        let synced: Vec<LearnerReport> =
            acked.iter().map(|a| learner(*a, "synced", false)).collect();
        assert_eq!(log.observe(at(ms), id, 0, &leader(epoch, false, &synced)), vec![]);
        let violations = log.observe(at(ms + 1), id, 0, &leader(epoch, true, &synced));
        assert_eq!(violations, vec![]);
    }

    #[test]
    fn an_orderly_succession_of_leaders_passes() {
        let mut log = log();
        establish(&mut log, 10, N1, 1, &[N2]);
        assert_eq!(log.observe(at(12), N2, 0, &follower(Mode::Follower, 1, N1)), vec![]);
        assert_eq!(log.observe(at(12), N4, 0, &follower(Mode::Observer, 1, N1)), vec![]);
        establish(&mut log, 50, N3, 2, &[N2]);
        assert_eq!(log.observe(at(52), N2, 0, &follower(Mode::Follower, 2, N3)), vec![]);
        assert_eq!(log.observe(at(52), N1, 1, &follower(Mode::Follower, 2, N3)), vec![]);
        assert_eq!(log.established().len(), 2);
    }

    #[test]
    fn an_acknowledgement_counts_after_the_learner_disconnects() {
        let mut log = log();
        let synced = [learner(N2, "synced", false)];
        assert_eq!(log.observe(at(1), N1, 0, &leader(3, false, &synced)), vec![]);
        // n2 is gone from the report by the time the leader's own ack makes it established.
        assert_eq!(log.observe(at(2), N1, 0, &leader(3, true, &[])), vec![]);
    }

    #[test]
    fn a_leader_established_without_a_quorum_is_rejected() {
        let mut log = log();
        // The observer acknowledged, but observers never count; n2 only got as far as syncing.
        let learners = [learner(N4, "synced", true), learner(N2, "syncing", false)];
        log.observe(at(1), N1, 0, &leader(1, false, &learners));
        let violations = log.observe(at(2), N1, 0, &leader(1, true, &learners));
        assert_eq!(
            violations,
            vec![LeaderViolation::NoQuorum { leader: N1, epoch: 1, acked: vec![N1] }]
        );
    }

    #[test]
    fn acknowledgements_of_an_earlier_epoch_do_not_count() {
        let mut log = log();
        log.observe(at(1), N1, 0, &leader(1, false, &[learner(N2, "synced", false)]));
        log.observe(at(2), N1, 0, &leader(2, false, &[]));
        let violations = log.observe(at(3), N1, 0, &leader(2, true, &[]));
        assert!(matches!(violations[..], [LeaderViolation::NoQuorum { epoch: 2, .. }]));
    }

    #[test]
    fn a_leader_whose_own_epoch_is_not_durable_is_rejected() {
        let mut log = log();
        let synced = [learner(N2, "synced", false), learner(N3, "broadcast", false)];
        let durable = [(N1, Some(3)), (N2, Some(4)), (N3, Some(4))];
        let report = Report { durable_epochs: &durable, ..leader(4, true, &synced) };
        let violations = log.observe(at(1), N1, 0, &report);
        assert_eq!(
            violations,
            vec![LeaderViolation::OwnEpochNotDurable { leader: N1, epoch: 4, durable: Some(3) }]
        );
    }

    #[test]
    fn an_acknowledgement_counted_before_the_voter_made_its_epoch_durable_is_rejected() {
        let mut log = log();
        // n2's currentEpoch 6 is still in flight to its disk when n1 counts its ACK; the
        // observer's is too, but observers do not count.
        let durable = [(N1, Some(6)), (N2, Some(5)), (N4, None)];
        let synced = [learner(N2, "synced", false), learner(N4, "synced", true)];
        let report = Report { durable_epochs: &durable, ..leader(6, false, &synced) };
        let violations = log.observe(at(1), N1, 0, &report);
        assert_eq!(
            violations,
            vec![LeaderViolation::AckNotDurable {
                learner: N2,
                leader: N1,
                epoch: 6,
                durable: Some(5)
            }]
        );
        // It is reported once, not at every step.
        assert_eq!(log.observe(at(2), N1, 0, &report), vec![]);
    }

    #[test]
    fn two_leaders_in_one_epoch_are_rejected() {
        let mut log = log();
        establish(&mut log, 10, N1, 5, &[N2]);
        let synced = [learner(N2, "synced", false)];
        log.observe(at(20), N3, 0, &leader(5, false, &synced));
        let violations = log.observe(at(21), N3, 0, &leader(5, true, &synced));
        assert_eq!(
            violations,
            vec![LeaderViolation::TwoLeaders { epoch: 5, first: N1, first_at: at(11), second: N3 }]
        );
    }

    #[test]
    fn a_member_going_back_to_an_older_epoch_is_rejected() {
        let mut log = log();
        establish(&mut log, 10, N1, 1, &[N2]);
        establish(&mut log, 20, N3, 2, &[N2]);
        assert_eq!(log.observe(at(22), N2, 0, &follower(Mode::Follower, 2, N3)), vec![]);
        log.observe(at(30), N2, 0, &Report { serving: false, ..follower(Mode::Looking, 2, N3) });
        // n2 serves under the epoch-1 leader again: its epochs went back.
        let violations = log.observe(at(31), N2, 0, &follower(Mode::Follower, 1, N1));
        assert_eq!(
            violations,
            vec![LeaderViolation::EpochWentBack { server: N2, epoch: 1, previous: 2 }]
        );
        // The same holds for a leader, and across a restart (a new life).
        let violations = log.observe(at(40), N3, 1, &leader(1, true, &[]));
        assert!(violations.contains(&LeaderViolation::EpochWentBack {
            server: N3,
            epoch: 1,
            previous: 2
        }));
    }

    #[test]
    fn a_learner_serving_without_its_leader_established_is_rejected() {
        let mut log = log();
        let violations = log.observe(at(1), N2, 0, &follower(Mode::Follower, 7, N1));
        assert!(matches!(
            violations[..],
            [LeaderViolation::LearnerWithoutLeader { epoch: 7, established: None, .. }]
        ));
        establish(&mut log, 10, N1, 8, &[N2]);
        let violations = log.observe(at(12), N4, 0, &follower(Mode::Observer, 8, N3));
        assert!(matches!(
            violations[..],
            [LeaderViolation::LearnerWithoutLeader { established: Some(N1), .. }]
        ));
    }

    #[test]
    fn an_observer_that_follows_or_leads_is_rejected() {
        let mut log = log();
        establish(&mut log, 10, N1, 1, &[N2]);
        let violations = log.observe(at(12), N4, 0, &follower(Mode::Follower, 1, N1));
        assert!(matches!(
            violations[..],
            [LeaderViolation::WrongRole { server: N4, member: PeerRole::Observer, .. }]
        ));
        let violations = log.observe(at(13), N2, 0, &follower(Mode::Observer, 1, N1));
        assert!(matches!(
            violations[..],
            [LeaderViolation::WrongRole { server: N2, member: PeerRole::Participant, .. }]
        ));
    }

    #[test]
    fn learners_are_wanted_until_the_leader_is_established() {
        let mut log = log();
        assert!(log.wants_learners(N1, 0, Mode::Leader, false));
        assert!(log.wants_learners(N1, 0, Mode::Leader, true), "the establishing step");
        establish(&mut log, 1, N1, 1, &[N2]);
        assert!(!log.wants_learners(N1, 0, Mode::Leader, true));
        assert!(log.wants_learners(N1, 1, Mode::Leader, true), "a new life");
        assert!(!log.wants_learners(N2, 0, Mode::Follower, true));
    }
}
