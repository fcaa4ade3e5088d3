//! Zab synchronisation, both sides: the leader plans DIFF / TRUNC / SNAP for each learner and
//! sends NEWLEADER; learners apply the payload and ACK NEWLEADER; the leader is established once
//! a quorum has, and sends UPTODATE.
//!
//! ZK compat: `LearnerHandler.syncFollower`, `Leader.waitForNewLeaderAck`,
//! `Learner.syncWithLeader`. Ordering rules (see docs/protocol.md): the leader is established
//! (serves writes) only when a quorum, itself included, has durably logged the synced history
//! and the new currentEpoch (ACK of NEWLEADER).

use tracing::info;

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, Zxid};
use crate::core::io::{DurableWrite, Effect};
use crate::core::node::leader::Phase;
use crate::core::node::learner::Phase as LearnerPhase;
use crate::core::node::{AfterPersist, Node, Wanted};
use crate::core::txn::Txn;
use crate::core::zab::{PeerMsg, SnapBody};

/// How to bring a learner up to date.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SyncPlan {
    Diff(Vec<Txn>),
    Trunc(Zxid, Vec<Txn>),
    Snap,
}

impl Node {
    /// A quorum acknowledged the new epoch: adopt it as current and sync every learner.
    pub(super) fn leader_maybe_start_sync(&mut self, effects: &mut Vec<Effect>) {
        let Some(leader) = self.leader_ref() else {
            return self.wrong_role("leader_maybe_start_sync", Wanted::Leading);
        };
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
    pub(super) fn plan_sync(&self, logged: Zxid, applied: Zxid) -> SyncPlan {
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

    pub(super) fn leader_sync_learner(&mut self, id: ServerId, effects: &mut Vec<Effect>) {
        let Some(leader) = self.leader_ref() else {
            return self.wrong_role("leader_sync_learner", Wanted::Leading);
        };
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_on_ack_new_leader", Wanted::Leading);
        };
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
    pub(super) fn leader_establish(&mut self, effects: &mut Vec<Effect>) {
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
            None => return self.wrong_role("leader_establish", Wanted::Leading),
        };
        for id in synced {
            self.leader_send_up_to_date(id, effects);
        }
        self.restart_session_timers();
        self.reap_at_ms = self.now.mono_ms + self.config.container_check_interval_ms;
        self.serve_waiting_connections(effects);
    }

    pub(super) fn leader_send_up_to_date(&mut self, id: ServerId, effects: &mut Vec<Effect>) {
        let committed = self.tree.zxid_applied();
        if let Some(learner) = self.leader_mut().and_then(|l| l.learners.get_mut(&id)) {
            learner.phase = Phase::UpToDate;
            effects.push(Effect::SendPeer { to: id, msg: PeerMsg::UpToDate { committed } });
        }
    }

    /// Applies a sync payload: optional truncation point, optional snapshot, then txns.
    pub(super) fn learner_sync(
        &mut self,
        truncate_to: Option<Zxid>,
        snapshot: Option<bytes::Bytes>,
        txns: Vec<Txn>,
        committed: Zxid,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        if let Some(zxid) = truncate_to {
            if snapshot.is_none() && self.tree.zxid_applied() > zxid {
                return Err(format!("TRUNC to {zxid} below applied {}", self.tree.zxid_applied()));
            }
            self.log.tail.retain(|t| t.zxid <= zxid);
            self.log.zxid_logged =
                self.log.tail.back().map_or(self.tree.zxid_applied(), |t| t.zxid);
            self.write(DurableWrite::Truncate { after: zxid }, AfterPersist::Nothing, effects);
        }
        if let Some(body) = snapshot {
            let zxid = truncate_to.unwrap_or_default();
            self.install_snapshot(zxid, &body).map_err(|e| format!("SNAP: {e}"))?;
            let image = self.snapshot_image();
            let write = DurableWrite::Snapshot { zxid, image, background: false };
            self.write(write, AfterPersist::Nothing, effects);
        }
        if self.canary(Canary::EpochBeforeLog) {
            if let Some(learner) = self.learner_mut() {
                learner.deferred = txns;
            }
            self.deferred_commit = committed;
            return Ok(());
        }
        self.log_synced(txns, committed, effects);
        Ok(())
    }

    pub(super) fn log_synced(
        &mut self,
        txns: Vec<Txn>,
        committed: Zxid,
        effects: &mut Vec<Effect>,
    ) {
        for txn in txns {
            if txn.zxid <= self.log.zxid_logged {
                continue; // we have it already (same zxid, same txn)
            }
            self.log_txn(txn, AfterPersist::Nothing, effects);
        }
        self.apply_committed(committed, effects);
    }

    pub(super) fn learner_on_new_leader(
        &mut self,
        epoch: u32,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let expected = self.learner_ref().and_then(|l| l.epoch);
        if expected != Some(epoch) {
            return Err(format!("NEWLEADER for epoch {epoch}, expected {expected:?}"));
        }
        if let Some(learner) = self.learner_mut() {
            learner.phase = LearnerPhase::Synced;
        }
        self.epoch_current = epoch;
        let term = self.term;
        if self.canary(Canary::AckNewLeaderBeforeDurable) {
            self.write(DurableWrite::CurrentEpoch(epoch), AfterPersist::Nothing, effects);
            self.learner_send(PeerMsg::AckNewLeader { epoch }, effects);
            return Ok(());
        }
        let then = AfterPersist::SendAckNewLeader { term, epoch };
        self.write(DurableWrite::CurrentEpoch(epoch), then, effects);
        if self.canary(Canary::EpochBeforeLog) {
            let deferred =
                self.learner_mut().map(|l| std::mem::take(&mut l.deferred)).unwrap_or_default();
            let committed = self.deferred_commit;
            self.log_synced(deferred, committed, effects);
        }
        Ok(())
    }

    pub(super) fn learner_on_up_to_date(
        &mut self,
        committed: Zxid,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.apply_committed(committed, effects);
        let leader = match self.learner_mut() {
            Some(learner) => {
                learner.phase = LearnerPhase::Broadcast;
                learner.leader
            }
            None => {
                self.wrong_role("learner_on_up_to_date", Wanted::Learning);
                return Ok(());
            }
        };
        info!(server = %self.config.server_id, %leader, zxid = %self.tree.zxid_applied(), "serving");
        self.serve_waiting_connections(effects);
        Ok(())
    }
}
