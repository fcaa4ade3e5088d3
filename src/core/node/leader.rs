//! The leader side of Zab: discovery (choosing a new epoch), synchronisation of each learner
//! (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and broadcast (PROPOSAL → quorum of ACKs →
//! COMMIT, INFORM to observers). A standalone server is a leader whose quorum is itself.
//!
//! ZK compat: `Leader`, `LearnerHandler` (sync planning in `syncFollower`), `ProposalRequestProcessor`.
//! Ordering rules (see docs/protocol.md):
//! - the leader's own ACK of a proposal counts only once the txn is durable here;
//! - LEADERINFO goes out only once our acceptedEpoch is durable;
//! - the leader is established (serves writes) only when a quorum, itself included, has
//!   durably logged the synced history and the new currentEpoch (ACK of NEWLEADER);
//! - commits leave in zxid order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tracing::{debug, info};

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, SessionId, Zxid};
use crate::core::io::Effect;
use crate::core::node::{Node, Role, Wanted};
use crate::core::report::LearnerReport;
use crate::core::zab::PeerMsg;

/// Where a learner is in its leader's eyes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    /// Sent FOLLOWERINFO; waiting for the epoch.
    Info,
    /// Acknowledged the new epoch.
    AckedEpoch,
    /// The sync payload and NEWLEADER were sent; it receives new proposals from now on.
    Syncing,
    /// Acknowledged NEWLEADER.
    Synced,
    /// Sent UPTODATE: serving.
    UpToDate,
}

#[derive(Clone, Debug)]
pub(super) struct LearnerInfo {
    pub(super) observer: bool,
    pub(super) accepted_epoch: u32,
    pub(super) zxid_logged: Zxid,
    pub(super) zxid_applied: Zxid,
    pub(super) phase: Phase,
    pub(super) sync: &'static str,
    pub(super) last_heard_ms: u64,
    /// When its FOLLOWERINFO started this handshake: it must be synced within initLimit.
    pub(super) since_ms: u64,
}

impl LearnerInfo {
    /// Whether new proposals / commits / informs go to it.
    fn forwarding(&self) -> bool {
        self.phase >= Phase::Syncing
    }
}

/// A leader's state.
pub(super) struct Leader {
    pub(super) standalone: bool,
    pub(super) established: bool,
    pub(super) init_deadline_ms: u64,
    pub(super) epoch: Option<u32>,
    pub(super) epoch_durable: bool,
    pub(super) syncing_started: bool,
    pub(super) learners: BTreeMap<ServerId, LearnerInfo>,
    pub(super) acked_epoch: BTreeSet<ServerId>,
    pub(super) acked_new_leader: BTreeSet<ServerId>,
    /// Proposals not committed yet, with the members that ACKed them.
    pub(super) outstanding: BTreeMap<Zxid, BTreeSet<ServerId>>,
    /// Syncs waiting for everything proposed before them to commit: (zxid, learner or local).
    pub(super) pending_syncs: VecDeque<(Zxid, Option<ServerId>, SessionId, i32)>,
    pub(super) ping_at_ms: u64,
}

impl Leader {
    pub(super) fn new(now_ms: u64, init_ms: u64) -> Leader {
        Leader {
            standalone: false,
            established: false,
            init_deadline_ms: now_ms + init_ms,
            epoch: None,
            epoch_durable: false,
            syncing_started: false,
            learners: BTreeMap::new(),
            acked_epoch: BTreeSet::new(),
            acked_new_leader: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            pending_syncs: VecDeque::new(),
            ping_at_ms: now_ms + 1,
        }
    }

    /// A standalone server: established at once, its own write is its quorum.
    pub(super) fn standalone(now_ms: u64) -> Leader {
        Leader { standalone: true, established: true, ..Leader::new(now_ms, 0) }
    }

    pub(super) fn deadline(&self) -> Option<u64> {
        if self.standalone {
            None
        } else if self.established {
            Some(self.ping_at_ms)
        } else {
            Some(self.init_deadline_ms.min(self.ping_at_ms))
        }
    }

    pub(super) fn learner_report(&self) -> Vec<LearnerReport> {
        self.learners
            .iter()
            .map(|(id, l)| LearnerReport {
                id: *id,
                observer: l.observer,
                state: match l.phase {
                    Phase::Info | Phase::AckedEpoch => "discovery",
                    Phase::Syncing => "syncing",
                    Phase::Synced => "synced",
                    Phase::UpToDate => "broadcast",
                },
                sync: l.sync,
                zxid: l.zxid_logged,
            })
            .collect()
    }

    pub(super) fn forwarding(&self) -> impl Iterator<Item = (ServerId, &LearnerInfo)> + '_ {
        self.learners.iter().filter(|(_, l)| l.forwarding()).map(|(id, l)| (*id, l))
    }
}

impl Node {
    pub(super) fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            Role::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    pub(super) fn leader_ref(&self) -> Option<&Leader> {
        match &self.role {
            Role::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    pub(super) fn is_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        if self.canary(Canary::CommitWithoutQuorum) && ids.contains(&self.config.server_id) {
            return true;
        }
        match self.leader_ref() {
            Some(leader) if leader.standalone => ids.contains(&self.config.server_id),
            _ => self.config.membership.is_quorum(ids),
        }
    }

    /// Just elected: wait for learners (they send FOLLOWERINFO).
    pub(super) fn leader_started(&mut self, effects: &mut Vec<Effect>) {
        self.leader_maybe_choose_epoch(effects);
    }

    pub(super) fn leader_on_message(
        &mut self,
        from: ServerId,
        msg: PeerMsg,
        effects: &mut Vec<Effect>,
    ) {
        let now = self.now.mono_ms;
        if let Some(learner) = self.leader_mut().and_then(|l| l.learners.get_mut(&from)) {
            learner.last_heard_ms = now;
        }
        // ZK compat: requests, session pings and revalidations reach a ZooKeeper leader only
        // through the LearnerHandler of a learner it is syncing or has synced. A follower still
        // in an epoch this node led before (it left the role, then won again) is not one: it
        // must not renew sessions, revalidate clients or forward writes until it has rejoined
        // (sim seed 0x21b: such a follower revalidated a client and answered it while the new
        // epoch expired the session; found again as seed 0x4af).
        let current =
            self.leader_ref().and_then(|l| l.learners.get(&from)).is_some_and(|l| l.forwarding());
        if !current
            && matches!(
                msg,
                PeerMsg::Request { .. } | PeerMsg::Ping { .. } | PeerMsg::Revalidate { .. }
            )
        {
            debug!(%from, msg = msg.name(), "from a peer that is not a current learner");
            return;
        }
        match msg {
            PeerMsg::FollowerInfo { accepted_epoch, zxid_logged, zxid_applied, observer } => self
                .leader_on_follower_info(
                    from,
                    accepted_epoch,
                    zxid_logged,
                    zxid_applied,
                    observer,
                    effects,
                ),
            PeerMsg::AckEpoch { current_epoch, zxid_logged, counts } => {
                self.leader_on_ack_epoch(from, current_epoch, zxid_logged, counts, effects)
            }
            PeerMsg::AckNewLeader { epoch } => {
                if self.leader_ref().and_then(|l| l.epoch) == Some(epoch) {
                    self.leader_on_ack_new_leader(from, effects);
                }
            }
            PeerMsg::Ack { zxid } => {
                let counts = self
                    .leader_ref()
                    .and_then(|l| l.learners.get(&from))
                    .is_some_and(|l| l.forwarding() && !l.observer);
                if counts {
                    self.leader_on_ack(from, zxid, effects);
                }
            }
            PeerMsg::Request { session, cxid, op } => {
                self.leader_on_request(from, session, cxid, op, effects)
            }
            PeerMsg::Ping { sessions } => {
                for session in sessions {
                    self.sessions.touch(session, self.session_now());
                }
            }
            PeerMsg::Revalidate { session, timeout_ms } => {
                let valid = self.sessions.is_live(session);
                if valid {
                    self.sessions.set_timeout(session, timeout_ms, self.session_now());
                }
                effects.push(Effect::SendPeer {
                    to: from,
                    msg: PeerMsg::Revalidated { session, valid },
                });
            }
            other => debug!(%from, msg = other.name(), "unexpected at the leader"),
        }
    }

    /// A learner's link broke: forget it (it will come back through FOLLOWERINFO).
    pub(super) fn leader_lost_learner(&mut self, id: ServerId, _effects: &mut Vec<Effect>) {
        if let Some(leader) = self.leader_mut() {
            if leader.learners.remove(&id).is_some() {
                info!(learner = %id, "learner disconnected");
            }
        }
    }

    pub(super) fn leader_tick(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        let sync_ms = self.sync_limit_ms();
        let tick_ms = self.config.tick_time_ms.max(2) as u64;
        let me = self.config.server_id;
        let Some(leader) = self.leader_ref() else {
            return self.wrong_role("leader_tick", Wanted::Leading);
        };
        if leader.standalone {
            return;
        }
        if !leader.established && now >= leader.init_deadline_ms {
            self.become_looking("no quorum synced within initLimit", effects);
            return;
        }
        // ZK compat: a `LearnerHandler` reads with an initLimit timeout until its learner is
        // synced; one that is not by then is dropped (the learner gives up on its own side
        // after initLimit too, and starts over with a new FOLLOWERINFO).
        let init_ms = self.init_limit_ms();
        let stuck: Vec<ServerId> = leader
            .learners
            .iter()
            .filter(|(_, l)| l.phase < Phase::Synced && now >= l.since_ms + init_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            info!(learner = %id, "learner not synced within initLimit");
            if let Some(leader) = self.leader_mut() {
                leader.learners.remove(&id);
            }
        }
        let Some(leader) = self.leader_ref() else {
            return self.wrong_role("leader_tick", Wanted::Leading);
        };
        if now < leader.ping_at_ms {
            return;
        }
        if leader.established {
            // ZK compat: Leader.lead() checks every half tick that a quorum is still synced.
            let mut alive: BTreeSet<ServerId> = leader
                .learners
                .iter()
                .filter(|(_, l)| {
                    l.phase >= Phase::Synced && now.saturating_sub(l.last_heard_ms) <= sync_ms
                })
                .map(|(id, _)| *id)
                .collect();
            alive.insert(me);
            if !self.config.membership.is_quorum(&alive) {
                self.become_looking("lost contact with a quorum for syncLimit", effects);
                return;
            }
            if self.zxid_exhausted() {
                // ZK compat: the leader steps down before the zxid counter wraps.
                self.become_looking("zxid counter exhausted", effects);
                return;
            }
        }
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_tick", Wanted::Leading);
        };
        leader.ping_at_ms = now + tick_ms / 2;
        for (id, learner) in &leader.learners {
            if learner.phase >= Phase::Syncing {
                effects.push(Effect::SendPeer {
                    to: *id,
                    msg: PeerMsg::Ping { sessions: Vec::new() },
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::NodeConfig;
    use crate::core::io::DurableWrite;
    use crate::core::node::sync::SyncPlan;
    use crate::core::time::Now;
    use crate::core::txn::{Txn, TxnOp};

    fn txn(epoch: u32, counter: u32) -> Txn {
        Txn {
            zxid: Zxid::new(epoch, counter),
            session: SessionId(1),
            cxid: 0,
            time_ms: 0,
            op: TxnOp::Error { code: 0 },
        }
    }

    /// A node whose history is `applied` (in the tree) followed by `tail` (logged only).
    fn node_with(applied: &[(u32, u32)], tail: &[(u32, u32)]) -> Node {
        let txns: Vec<Txn> = applied.iter().map(|(e, c)| txn(*e, *c)).collect();
        let mut node =
            Node::recover(NodeConfig::standalone(), Now::default(), None, txns).expect("recovery");
        for (e, c) in tail {
            node.log.zxid_logged = Zxid::new(*e, *c);
            node.log.tail.push_back(txn(*e, *c));
        }
        node
    }

    /// A member of a three-voter ensemble (ids 1, 2, 3).
    fn voter(id: u64) -> Node {
        use crate::core::zab::{Membership, PeerRole};
        let mut membership = Membership::default();
        for member in 1..=3 {
            membership.members.insert(ServerId(member), PeerRole::Participant);
        }
        let config = NodeConfig { server_id: ServerId(id), membership, ..NodeConfig::standalone() };
        Node::new(config, Now::default())
    }

    fn ack_epochs(effects: &[Effect]) -> Vec<(ServerId, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SendPeer { to, msg: PeerMsg::AckEpoch { counts, .. } } => {
                    Some((*to, *counts))
                }
                _ => None,
            })
            .collect()
    }

    /// ZK compat: `Learner.registerWithLeader` answers a LEADERINFO of the epoch it already
    /// accepted with ACKEPOCH -1, which does not count: it may have acknowledged that epoch
    /// to another leader that proposed the same number.
    #[test]
    fn a_learner_acknowledges_an_epoch_it_accepted_before_without_counting() {
        use crate::core::node::learner::Learner;
        let mut node = voter(2);
        node.epoch_accepted = 5;
        node.role = Role::Learning(Box::new(Learner::new(ServerId(1), false, 10_000)));
        let mut effects = Vec::new();
        node.learner_on_message(PeerMsg::LeaderInfo { epoch: 5 }, &mut effects);
        assert_eq!(ack_epochs(&effects), vec![(ServerId(1), false)]);
        assert!(!effects.iter().any(|e| matches!(e, Effect::Write { .. })), "{effects:?}");

        // A newer epoch is accepted, written, and acknowledged (counting) once durable.
        let mut node = voter(2);
        node.epoch_accepted = 5;
        node.role = Role::Learning(Box::new(Learner::new(ServerId(1), false, 10_000)));
        let mut effects = Vec::new();
        node.learner_on_message(PeerMsg::LeaderInfo { epoch: 6 }, &mut effects);
        assert_eq!(ack_epochs(&effects), vec![], "not before the write is durable");
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Write { write: DurableWrite::AcceptedEpoch(6), .. })));
    }

    /// Two leaders that propose the same epoch cannot both gather a quorum through one
    /// member: the leader counts an ACKEPOCH only when it is the member's first for the epoch.
    #[test]
    fn an_uncounted_epoch_acknowledgement_does_not_make_a_quorum() {
        let mut node = voter(1);
        node.role = Role::Leading(Box::new(Leader::new(0, 10_000)));
        let mut effects = Vec::new();
        for from in [2, 3] {
            let info = PeerMsg::FollowerInfo {
                accepted_epoch: 4,
                zxid_logged: Zxid::ZERO,
                zxid_applied: Zxid::ZERO,
                observer: false,
            };
            node.leader_on_message(ServerId(from), info, &mut effects);
        }
        node.leader_epoch_accepted(&mut effects); // as if acceptedEpoch 5 became durable
        assert_eq!(node.leader_ref().and_then(|l| l.epoch), Some(5));
        let started = |node: &Node| node.leader_ref().is_some_and(|l| l.syncing_started);

        let uncounted =
            PeerMsg::AckEpoch { current_epoch: 0, zxid_logged: Zxid::ZERO, counts: false };
        node.leader_on_message(ServerId(2), uncounted, &mut effects);
        assert!(!started(&node), "the leader and an uncounted ACKEPOCH are not a quorum");

        let counted = PeerMsg::AckEpoch { current_epoch: 0, zxid_logged: Zxid::ZERO, counts: true };
        node.leader_on_message(ServerId(3), counted, &mut effects);
        assert!(started(&node), "the leader and a counted ACKEPOCH are a quorum of three");
        let acked = node.leader_ref().map(|l| l.acked_epoch.clone()).unwrap_or_default();
        assert_eq!(acked, BTreeSet::from([ServerId(1), ServerId(3)]));
    }

    #[test]
    fn revalidate_from_a_server_that_is_not_a_learner_gets_no_answer() {
        use crate::core::io::Input;
        let mut node = Node::new(NodeConfig::standalone(), Now::default());
        let mut effects = Vec::new();
        node.step(Now::default(), Input::Tick, &mut effects);
        assert!(node.leader_ref().is_some(), "a standalone node leads");
        effects.clear();
        let revalidate = PeerMsg::Revalidate { session: SessionId(5), timeout_ms: 4_000 };
        node.leader_on_message(ServerId(2), revalidate, &mut effects);
        assert_eq!(effects, Vec::new());
    }

    #[test]
    fn a_leader_step_on_a_node_that_does_not_lead_is_dropped() {
        use crate::core::report::Mode;
        let mut node = voter(1);
        assert_eq!(node.mode(), Mode::Looking);
        let mut effects = Vec::new();
        node.leader_epoch_accepted(&mut effects);
        node.leader_tick(&mut effects);
        node.leader_on_ack(ServerId(2), Zxid::ZERO, &mut effects);
        node.leader_sync(Some(ServerId(2)), SessionId(5), 7, &mut effects);
        node.leader_sync_learner(ServerId(2), &mut effects);
        node.leader_on_ack_new_leader(ServerId(2), &mut effects);
        assert_eq!(effects, Vec::new());
        assert_eq!(node.mode(), Mode::Looking);
        assert!(node.leader_ref().is_none());
    }

    #[test]
    fn a_learner_step_on_a_leader_is_dropped() {
        use crate::core::io::Input;
        use crate::core::report::Mode;
        let mut node = Node::new(NodeConfig::standalone(), Now::default());
        let mut effects = Vec::new();
        node.step(Now::default(), Input::Tick, &mut effects);
        assert_eq!(node.mode(), Mode::Standalone);
        effects.clear();
        node.learner_tick(&mut effects);
        node.learner_on_message(PeerMsg::Ping { sessions: Vec::new() }, &mut effects);
        node.learner_send_info(&mut effects);
        assert_eq!(effects, Vec::new());
        assert_eq!(node.mode(), Mode::Standalone);
    }

    fn zxids(txns: &[Txn]) -> Vec<(u32, u32)> {
        txns.iter().map(|t| (t.zxid.epoch(), t.zxid.counter())).collect()
    }

    #[test]
    fn a_learner_that_is_behind_on_the_same_history_gets_a_diff() {
        let node = node_with(&[(1, 1), (1, 2), (1, 3)], &[(2, 1)]);
        match node.plan_sync(Zxid::new(1, 1), Zxid::new(1, 1)) {
            SyncPlan::Diff(txns) => assert_eq!(zxids(&txns), vec![(1, 2), (1, 3), (2, 1)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(node.plan_sync(Zxid::new(2, 1), Zxid::new(1, 3)), SyncPlan::Diff(vec![]));
    }

    #[test]
    fn a_divergent_uncommitted_tail_is_truncated_to_the_common_prefix() {
        let node = node_with(&[(1, 1), (1, 2), (2, 1), (2, 2)], &[]);
        // The learner logged (1,3), which the old leader never got committed.
        match node.plan_sync(Zxid::new(1, 3), Zxid::new(1, 2)) {
            SyncPlan::Trunc(common, txns) => {
                assert_eq!(common, Zxid::new(1, 2));
                assert_eq!(zxids(&txns), vec![(2, 1), (2, 2)]);
            }
            other => panic!("{other:?}"),
        }
        // If it already applied the divergent txn, only a snapshot can fix its tree.
        assert_eq!(node.plan_sync(Zxid::new(1, 3), Zxid::new(1, 3)), SyncPlan::Snap);
    }

    #[test]
    fn a_learner_ahead_of_the_leader_is_truncated_and_one_too_far_behind_gets_a_snapshot() {
        let mut node = node_with(&[(1, 1), (1, 2)], &[]);
        assert_eq!(
            node.plan_sync(Zxid::new(1, 5), Zxid::new(1, 2)),
            SyncPlan::Trunc(Zxid::new(1, 2), vec![])
        );
        node.log.history.pop_front();
        node.log.history_base = Zxid::new(1, 1);
        assert_eq!(node.plan_sync(Zxid::ZERO, Zxid::ZERO), SyncPlan::Snap);
    }
}
