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

use tracing::{debug, info, warn};

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, SessionId, Zxid};
use crate::core::io::{DurableWrite, Effect};
use crate::core::node::{AfterPersist, Node, Role};
use crate::core::prep::{Prep, Write};
use crate::core::report::LearnerReport;
use crate::core::txn::{Txn, TxnOp};
use crate::core::zab::{Forwarded, PeerMsg, SnapBody};
use crate::wire;
use crate::wire::types::Id;

/// Where a learner is in its leader's eyes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
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
struct LearnerInfo {
    observer: bool,
    accepted_epoch: u32,
    zxid_logged: Zxid,
    zxid_applied: Zxid,
    phase: Phase,
    sync: &'static str,
    last_heard_ms: u64,
    /// When its FOLLOWERINFO started this handshake: it must be synced within initLimit.
    since_ms: u64,
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
    init_deadline_ms: u64,
    epoch: Option<u32>,
    epoch_durable: bool,
    syncing_started: bool,
    learners: BTreeMap<ServerId, LearnerInfo>,
    acked_epoch: BTreeSet<ServerId>,
    acked_new_leader: BTreeSet<ServerId>,
    /// Proposals not committed yet, with the members that ACKed them.
    pub(super) outstanding: BTreeMap<Zxid, BTreeSet<ServerId>>,
    /// Syncs waiting for everything proposed before them to commit: (zxid, learner or local).
    pending_syncs: VecDeque<(Zxid, Option<ServerId>, SessionId, i32)>,
    ping_at_ms: u64,
}

/// How to bring a learner up to date.
#[derive(Debug, PartialEq, Eq)]
enum SyncPlan {
    Diff(Vec<Txn>),
    Trunc(Zxid, Vec<Txn>),
    Snap,
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

    fn forwarding(&self) -> impl Iterator<Item = (ServerId, &LearnerInfo)> + '_ {
        self.learners.iter().filter(|(_, l)| l.forwarding()).map(|(id, l)| (*id, l))
    }
}

impl Node {
    fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            Role::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    fn leader_ref(&self) -> Option<&Leader> {
        match &self.role {
            Role::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    fn is_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
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

    fn leader_on_follower_info(
        &mut self,
        from: ServerId,
        accepted_epoch: u32,
        zxid_logged: Zxid,
        zxid_applied: Zxid,
        observer: bool,
        effects: &mut Vec<Effect>,
    ) {
        let observer = observer || !self.config.membership.is_voter(from);
        let now = self.now.mono_ms;
        let Some(leader) = self.leader_mut() else { return };
        // Learners resend FOLLOWERINFO until LEADERINFO arrives, so a copy may cross our
        // answer; it still finds the learner in `Info` (links are FIFO and the learner sends
        // ACKEPOCH only after the answer, so every copy arrives before it) and is answered
        // again, which the learner ignores. A FOLLOWERINFO from a learner past `Info` is
        // therefore no copy: the learner left its role (a clock jump, a quiet syncLimit, an
        // unexpected message) and came back on a link that stayed up. ZK compat: it connects
        // anew and gets a fresh `LearnerHandler`, so it starts over here too (sim seed 0x4ca:
        // ignoring it kept the learner out for good while the leader went on pinging it).
        let since_ms = match leader.learners.get(&from) {
            Some(old) if old.phase > Phase::Info => {
                info!(learner = %from, phase = ?old.phase, "learner restarted its handshake");
                now
            }
            Some(old) => old.since_ms,
            None => now,
        };
        let info = LearnerInfo {
            observer,
            accepted_epoch,
            zxid_logged,
            zxid_applied,
            phase: Phase::Info,
            sync: "-",
            last_heard_ms: now,
            since_ms,
        };
        leader.learners.insert(from, info);
        match (leader.epoch, leader.epoch_durable) {
            (Some(epoch), true) => {
                effects.push(Effect::SendPeer { to: from, msg: PeerMsg::LeaderInfo { epoch } })
            }
            _ => self.leader_maybe_choose_epoch(effects),
        }
    }

    /// Once a quorum (us included) has connected, the new epoch is one above every accepted
    /// epoch we heard of. ZK compat: `Leader.getEpochToPropose`.
    fn leader_maybe_choose_epoch(&mut self, effects: &mut Vec<Effect>) {
        let me = self.config.server_id;
        let own_accepted = self.epoch_accepted;
        let Some(leader) = self.leader_ref() else { return };
        if leader.epoch.is_some() {
            return;
        }
        let mut connected: BTreeSet<ServerId> =
            leader.learners.iter().filter(|(_, l)| !l.observer).map(|(id, _)| *id).collect();
        connected.insert(me);
        if !self.config.membership.is_quorum(&connected) {
            return;
        }
        let highest = leader.learners.values().map(|l| l.accepted_epoch).max().unwrap_or(0);
        let epoch = highest.max(own_accepted) + 1;
        info!(%me, epoch, "proposing a new epoch");
        if let Some(leader) = self.leader_mut() {
            leader.epoch = Some(epoch);
        }
        self.epoch_accepted = epoch;
        let term = self.term;
        if self.canary(Canary::AckEpochBeforeDurable) {
            self.write(DurableWrite::AcceptedEpoch(epoch), AfterPersist::Nothing, effects);
            self.leader_epoch_accepted(effects);
            return;
        }
        self.write(
            DurableWrite::AcceptedEpoch(epoch),
            AfterPersist::EpochAccepted { term },
            effects,
        );
    }

    /// Our acceptedEpoch is durable: send LEADERINFO to everyone connected.
    pub(super) fn leader_epoch_accepted(&mut self, effects: &mut Vec<Effect>) {
        let me = self.config.server_id;
        let Some(leader) = self.leader_mut() else { return };
        let Some(epoch) = leader.epoch else { return };
        leader.epoch_durable = true;
        leader.acked_epoch.insert(me);
        for (id, learner) in &leader.learners {
            if learner.phase == Phase::Info {
                effects.push(Effect::SendPeer { to: *id, msg: PeerMsg::LeaderInfo { epoch } });
            }
        }
        self.leader_maybe_start_sync(effects);
    }

    fn leader_on_ack_epoch(
        &mut self,
        from: ServerId,
        current_epoch: u32,
        zxid_logged: Zxid,
        counts: bool,
        effects: &mut Vec<Effect>,
    ) {
        let ours = (self.epoch_current, self.log.zxid_logged);
        if (current_epoch, zxid_logged) > ours {
            // ZK compat: Leader.waitForEpochAck — a learner with a newer history than ours
            // means we should not lead.
            warn!(%from, current_epoch, %zxid_logged, "a learner is ahead of the leader");
            self.become_looking("a learner has a newer history", effects);
            return;
        }
        let Some(leader) = self.leader_mut() else { return };
        let Some(learner) = leader.learners.get_mut(&from) else { return };
        if learner.phase != Phase::Info {
            return;
        }
        learner.phase = Phase::AckedEpoch;
        learner.zxid_logged = zxid_logged;
        // ZK compat: `Leader.waitForEpochAck` counts a voter only if its ACKEPOCH carries an
        // epoch (not -1, "accepted before").
        if counts && !learner.observer {
            leader.acked_epoch.insert(from);
        }
        if leader.syncing_started {
            self.leader_sync_learner(from, effects);
        } else {
            self.leader_maybe_start_sync(effects);
        }
    }

    /// A quorum acknowledged the new epoch: adopt it as current and sync every learner.
    fn leader_maybe_start_sync(&mut self, effects: &mut Vec<Effect>) {
        let Some(leader) = self.leader_ref() else { return };
        let Some(epoch) = leader.epoch else { return };
        if leader.syncing_started || !leader.epoch_durable || !self.is_quorum(&leader.acked_epoch) {
            return;
        }
        let waiting: Vec<ServerId> = leader
            .learners
            .iter()
            .filter(|(_, l)| l.phase == Phase::AckedEpoch)
            .map(|(id, _)| *id)
            .collect();
        if let Some(leader) = self.leader_mut() {
            leader.syncing_started = true;
        }
        self.epoch_current = epoch;
        self.zxid_proposed = Zxid::new(epoch, self.config.zxid_counter_start);
        let term = self.term;
        self.write(
            DurableWrite::CurrentEpoch(epoch),
            AfterPersist::OwnNewLeaderAck { term },
            effects,
        );
        for id in waiting {
            self.leader_sync_learner(id, effects);
        }
    }

    /// Chooses DIFF, TRUNC (+DIFF) or SNAP for a learner from its last logged and applied zxids.
    /// ZK compat: `LearnerHandler.syncFollower`.
    fn plan_sync(&self, logged: Zxid, applied: Zxid) -> SyncPlan {
        let last = self.log.zxid_logged;
        if logged == last {
            return SyncPlan::Diff(Vec::new());
        }
        if self.canary(Canary::WrongTrunc) && logged >= self.log.history_base {
            // The bug: never truncate; send whatever we have after the learner's zxid.
            let after = self.log.history.iter().chain(self.log.tail.iter());
            return SyncPlan::Diff(after.filter(|t| t.zxid > logged).cloned().collect());
        }
        if logged > last {
            return if applied <= last {
                SyncPlan::Trunc(last, Vec::new())
            } else {
                SyncPlan::Snap
            };
        }
        if let Some(txns) = self.log.after(logged) {
            return SyncPlan::Diff(txns);
        }
        if logged < self.log.history_base {
            return SyncPlan::Snap;
        }
        // The learner has a tail we never had (a proposal of a leader that died before
        // committing it): cut back to the last zxid we share, then DIFF from there.
        let common = self.log.last_before(logged);
        match self.log.after(common) {
            Some(txns) if applied <= common => SyncPlan::Trunc(common, txns),
            _ => SyncPlan::Snap,
        }
    }

    fn leader_sync_learner(&mut self, id: ServerId, effects: &mut Vec<Effect>) {
        let Some(leader) = self.leader_ref() else { return };
        let Some(epoch) = leader.epoch else { return };
        let Some(learner) = leader.learners.get(&id).cloned() else { return };
        // Before the leader is established its whole log is about to be committed; after, only
        // what is committed is, and observers must get nothing else (they get INFORMs later).
        let committed =
            if leader.established { self.tree.zxid_applied() } else { self.log.zxid_logged };
        let keep = |txns: Vec<Txn>| -> Vec<Txn> {
            if learner.observer {
                txns.into_iter().filter(|t| t.zxid <= committed).collect()
            } else {
                txns
            }
        };
        let plan = self.plan_sync(learner.zxid_logged, learner.zxid_applied);
        let (msg, name) = match plan {
            SyncPlan::Diff(txns) => (PeerMsg::Diff { txns: keep(txns), committed }, "DIFF"),
            SyncPlan::Trunc(zxid, txns) => {
                (PeerMsg::Trunc { zxid, txns: keep(txns), committed }, "TRUNC")
            }
            SyncPlan::Snap => {
                let zxid = self.tree.zxid_applied();
                let txns: Vec<Txn> = keep(self.log.tail.iter().cloned().collect());
                let body = SnapBody::Image(self.snapshot_image());
                (PeerMsg::Snap { zxid, body, txns, committed }, "SNAP")
            }
        };
        info!(learner = %id, sync = name, learner_zxid = %learner.zxid_logged, leader_zxid = %self.log.zxid_logged, "syncing");
        effects.push(Effect::SendPeer { to: id, msg });
        effects.push(Effect::SendPeer { to: id, msg: PeerMsg::NewLeader { epoch } });
        let synced_to = self.log.zxid_logged;
        if let Some(learner) = self.leader_mut().and_then(|l| l.learners.get_mut(&id)) {
            learner.phase = Phase::Syncing;
            learner.sync = name;
            learner.zxid_logged = synced_to;
        }
    }

    pub(super) fn leader_on_ack_new_leader(&mut self, from: ServerId, effects: &mut Vec<Effect>) {
        let me = self.config.server_id;
        let Some(leader) = self.leader_mut() else { return };
        if from != me {
            let Some(learner) = leader.learners.get_mut(&from) else { return };
            if learner.phase != Phase::Syncing {
                return;
            }
            learner.phase = Phase::Synced;
            if learner.observer {
                if leader.established {
                    self.leader_send_up_to_date(from, effects);
                }
                return;
            }
            // Its ACK of NEWLEADER says its log durably holds our history up to the point it
            // was synced to, so it acknowledges every proposal outstanding up to there (it will
            // never ACK them individually: they came inside the sync, or before a reconnect).
            let synced_to = learner.zxid_logged;
            for (_, acks) in leader.outstanding.range_mut(..=synced_to) {
                acks.insert(from);
            }
            let established = leader.established;
            if established {
                leader.acked_new_leader.insert(from);
                self.leader_send_up_to_date(from, effects);
                self.leader_commit_ready(effects);
                return;
            }
        }
        leader.acked_new_leader.insert(from);
        if leader.established {
            self.leader_send_up_to_date(from, effects);
            return;
        }
        let ready = leader.acked_new_leader.contains(&me)
            && self.is_quorum(
                &self.leader_ref().map(|l| l.acked_new_leader.clone()).unwrap_or_default(),
            );
        if ready {
            self.leader_establish(effects);
        }
    }

    /// A quorum has the new history durably: commit it all and start serving.
    fn leader_establish(&mut self, effects: &mut Vec<Effect>) {
        let last = self.log.zxid_logged;
        info!(server = %self.config.server_id, epoch = self.epoch_current, zxid = %last, "leader established");
        let observers: Vec<ServerId> = self
            .leader_ref()
            .map(|l| l.forwarding().filter(|(_, i)| i.observer).map(|(id, _)| id).collect())
            .unwrap_or_default();
        for txn in self.log.tail.iter() {
            for id in &observers {
                effects.push(Effect::SendPeer { to: *id, msg: PeerMsg::Inform(txn.clone()) });
            }
        }
        self.apply_committed(last, effects);
        let synced: Vec<ServerId> = match self.leader_mut() {
            Some(leader) => {
                leader.established = true;
                leader
                    .learners
                    .iter()
                    .filter(|(_, l)| l.phase == Phase::Synced)
                    .map(|(id, _)| *id)
                    .collect()
            }
            None => return,
        };
        for id in synced {
            self.leader_send_up_to_date(id, effects);
        }
        self.restart_session_timers();
        self.reap_at_ms = self.now.mono_ms + self.config.container_check_interval_ms;
        self.serve_waiting_connections(effects);
    }

    fn leader_send_up_to_date(&mut self, id: ServerId, effects: &mut Vec<Effect>) {
        let committed = self.tree.zxid_applied();
        if let Some(learner) = self.leader_mut().and_then(|l| l.learners.get_mut(&id)) {
            learner.phase = Phase::UpToDate;
            effects.push(Effect::SendPeer { to: id, msg: PeerMsg::UpToDate { committed } });
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
        let Some(leader) = self.leader_ref() else { return };
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
        let Some(leader) = self.leader_ref() else { return };
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
        let Some(leader) = self.leader_mut() else { return };
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

    // ---------------------------------------------------------------- broadcast

    /// Whether this epoch's zxid counter is used up. ZK compat: `Leader.propose` never
    /// proposes a counter of 0xffffffff; it forces a re-election instead (ZOOKEEPER-1277),
    /// which the next ping tick does here.
    pub(super) fn zxid_exhausted(&self) -> bool {
        self.zxid_proposed.counter() >= u32::MAX - 1 && !self.canary(Canary::ZxidRollover)
    }

    /// The zxid of the next proposal; `None` once the counter is used up: the request is
    /// dropped, and the leader steps down at its next tick, closing every connection.
    pub(super) fn next_zxid(&mut self) -> Option<Zxid> {
        if self.zxid_exhausted() {
            return None;
        }
        let zxid = Zxid(self.zxid_proposed.0 + 1);
        if !self.canary(Canary::ZxidRollover) {
            assert!(zxid.counter() != 0, "zxid counter overflow at {}", self.zxid_proposed);
        }
        assert!(
            zxid > self.log.zxid_logged,
            "proposing {zxid} after logging {}",
            self.log.zxid_logged
        );
        self.zxid_proposed = zxid;
        Some(zxid)
    }

    /// Proposes a txn with the next zxid.
    pub(super) fn leader_propose(
        &mut self,
        session: SessionId,
        cxid: i32,
        op: TxnOp,
        effects: &mut Vec<Effect>,
    ) {
        let Some(zxid) = self.next_zxid() else { return };
        self.leader_propose_at(zxid, session, cxid, op, effects);
    }

    /// Logs a prepared txn and sends it to the followers.
    pub(super) fn leader_propose_at(
        &mut self,
        zxid: Zxid,
        session: SessionId,
        cxid: i32,
        op: TxnOp,
        effects: &mut Vec<Effect>,
    ) {
        if !self.canary(Canary::ZxidRollover) {
            assert_eq!(zxid.epoch(), self.epoch_current, "proposing {zxid} in another epoch");
        }
        let txn = Txn { zxid, session, cxid, time_ms: self.now.wall_ms, op };
        if let Some(leader) = self.leader_mut() {
            leader.outstanding.insert(zxid, BTreeSet::new());
            for (id, learner) in leader.forwarding() {
                if !learner.observer {
                    effects.push(Effect::SendPeer { to: id, msg: PeerMsg::Proposal(txn.clone()) });
                }
            }
        }
        if self.canary(Canary::AckBeforeFsync) {
            self.log_txn(txn, AfterPersist::Nothing, effects);
            self.leader_on_ack(self.config.server_id, zxid, effects);
            return;
        }
        self.log_txn(txn, AfterPersist::OwnAck(zxid), effects);
    }

    /// Counts an ACK and commits every proposal, in order, that now has a quorum.
    pub(super) fn leader_on_ack(&mut self, from: ServerId, zxid: Zxid, effects: &mut Vec<Effect>) {
        if zxid > self.zxid_proposed {
            // ZK compat: `Leader.processAck` ignores an ACK of a "future proposal". Counted,
            // it would also raise what the leader believes the learner has logged.
            warn!(%from, %zxid, proposed = %self.zxid_proposed, "ACK of a zxid never proposed");
            return;
        }
        let Some(leader) = self.leader_mut() else { return };
        if let Some(acks) = leader.outstanding.get_mut(&zxid) {
            acks.insert(from);
        }
        if let Some(learner) = leader.learners.get_mut(&from) {
            learner.zxid_logged = learner.zxid_logged.max(zxid);
        }
        self.leader_commit_ready(effects);
    }

    /// Commits, in order, every oldest outstanding proposal that has a quorum of ACKs.
    fn leader_commit_ready(&mut self, effects: &mut Vec<Effect>) {
        loop {
            let Some(leader) = self.leader_ref() else { return };
            let Some((&first, acks)) = leader.outstanding.first_key_value() else { return };
            if !self.is_quorum(acks) {
                return;
            }
            if let Some(leader) = self.leader_mut() {
                leader.outstanding.remove(&first);
            }
            self.leader_commit(first, effects);
        }
    }

    fn leader_commit(&mut self, zxid: Zxid, effects: &mut Vec<Effect>) {
        // Commits come from `outstanding`, which only our own proposals of this epoch enter,
        // oldest first: anything else is our bug.
        assert!(zxid <= self.zxid_proposed, "committing {zxid}, never proposed");
        assert!(zxid > self.tree.zxid_applied(), "committing {zxid} out of order or twice");
        if !self.canary(Canary::ZxidRollover) {
            assert_eq!(zxid.epoch(), self.epoch_current, "committing {zxid} of another epoch");
        }
        let txn = self.log.tail.front().filter(|t| t.zxid == zxid).cloned();
        let Some(txn) = txn else {
            panic!(
                "committing {zxid} but the log tail starts at {:?}",
                self.log.tail.front().map(|t| t.zxid)
            );
        };
        if let Some(leader) = self.leader_ref() {
            for (id, learner) in leader.forwarding() {
                let msg = if learner.observer {
                    PeerMsg::Inform(txn.clone())
                } else {
                    PeerMsg::Commit { zxid }
                };
                effects.push(Effect::SendPeer { to: id, msg });
            }
        }
        self.apply_committed(zxid, effects);
        loop {
            let Some(leader) = self.leader_mut() else { return };
            match leader.pending_syncs.front() {
                Some((at, ..)) if *at <= zxid => {}
                _ => return,
            }
            let Some((_, learner, session, cxid)) = leader.pending_syncs.pop_front() else {
                return;
            };
            self.leader_sync_done(learner, session, cxid, effects);
        }
    }

    /// A `sync` is answered once everything proposed before it has committed.
    pub(super) fn leader_sync(
        &mut self,
        from: Option<ServerId>,
        session: SessionId,
        cxid: i32,
        effects: &mut Vec<Effect>,
    ) {
        let proposed = self.zxid_proposed;
        let Some(leader) = self.leader_mut() else { return };
        if leader.outstanding.is_empty() {
            self.leader_sync_done(from, session, cxid, effects);
        } else {
            leader.pending_syncs.push_back((proposed, from, session, cxid));
        }
    }

    fn leader_sync_done(
        &mut self,
        learner: Option<ServerId>,
        session: SessionId,
        cxid: i32,
        effects: &mut Vec<Effect>,
    ) {
        match learner {
            None => self.answer_sync(session, cxid, effects),
            Some(to) => {
                effects.push(Effect::SendPeer { to, msg: PeerMsg::SyncDone { session, cxid } })
            }
        }
    }

    fn leader_on_request(
        &mut self,
        from: ServerId,
        session: SessionId,
        cxid: i32,
        op: Forwarded,
        effects: &mut Vec<Effect>,
    ) {
        if !self.is_leader_established() {
            debug!(%from, "request before the leader is established");
            return;
        }
        match op {
            Forwarded::CreateSession { timeout_ms, password } => {
                self.sessions.add(session, timeout_ms, password, self.session_now());
                self.leader_propose(
                    session,
                    0,
                    TxnOp::CreateSession { timeout_ms, password },
                    effects,
                );
            }
            Forwarded::Sync => self.leader_sync(Some(from), session, cxid, effects),
            Forwarded::Write { frame, ids } => {
                let request = wire::decode_request_header(&frame)
                    .ok()
                    .and_then(|(header, body)| wire::decode_request(header.opcode, body).ok());
                match request {
                    Some(request) => self.leader_write(session, cxid, &request, &ids, effects),
                    None => {
                        // The follower decoded it; a leader that cannot is not a reason to
                        // stall the client: the request fails like any undecodable one.
                        let code = crate::wire::types::ErrorCode::MarshallingError.code();
                        self.leader_propose(session, cxid, TxnOp::Error { code }, effects);
                    }
                }
            }
        }
    }

    /// Request preparation against the applied tree and the pending changes.
    pub(super) fn prep<'a>(
        &'a mut self,
        session: SessionId,
        ids: &'a [Id],
        zxid: Zxid,
    ) -> Prep<'a> {
        Prep {
            tree: &self.tree,
            speculative: &mut self.speculative,
            config: &self.config,
            session,
            ids,
            zxid,
            time_ms: self.now.wall_ms,
        }
    }

    /// Session expiry on the leader: a closeSession txn for it.
    pub(super) fn expire(&mut self, session: SessionId, effects: &mut Vec<Effect>) {
        let Some(zxid) = self.next_zxid() else { return };
        let mut prep = self.prep(session, &[], zxid);
        let op = prep.close_session();
        self.leader_propose_at(zxid, session, 0, op, effects);
    }

    /// Deletes empty containers and expired TTL nodes. ZK compat: `ContainerManager`.
    pub(super) fn reap(&mut self, effects: &mut Vec<Effect>) {
        let candidates =
            self.tree.reap_candidates(self.now.wall_ms, self.config.container_never_used_ms);
        let super_ids = [crate::wire::types::Id::new("super", "")];
        for path in candidates {
            if self.zxid_exhausted() {
                return;
            }
            let zxid = Zxid(self.zxid_proposed.0 + 1);
            let mut prep = self.prep(SessionId(0), &super_ids, zxid);
            let op = prep.write(Write::Delete { path: &path, version: -1 });
            if matches!(op, TxnOp::Error { .. }) {
                continue; // it gained a child or went away meanwhile
            }
            debug!(%path, "reaping");
            let Some(zxid) = self.next_zxid() else { return };
            self.leader_propose_at(zxid, SessionId(0), 0, op, effects);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::NodeConfig;
    use crate::core::time::Now;

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
