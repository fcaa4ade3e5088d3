//! Zab discovery, both sides: a learner's FOLLOWERINFO, the leader choosing the new epoch once
//! a quorum has connected (LEADERINFO), and the learners' ACKEPOCH.
//!
//! ZK compat: `Leader.getEpochToPropose`, `Leader.waitForEpochAck`, `Learner.registerWithLeader`.
//! Ordering rules (see docs/protocol.md): LEADERINFO goes out only once the leader's
//! acceptedEpoch is durable; ACKEPOCH only once the learner's new acceptedEpoch is.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, Zxid};
use crate::core::io::{DurableWrite, Effect};
use crate::core::node::leader::{LearnerInfo, Phase};
use crate::core::node::learner::Phase as LearnerPhase;
use crate::core::node::{AfterPersist, Node, Wanted};
use crate::core::zab::PeerMsg;

impl Node {
    pub(super) fn leader_on_follower_info(
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_on_follower_info", Wanted::Leading);
        };
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
    pub(super) fn leader_maybe_choose_epoch(&mut self, effects: &mut Vec<Effect>) {
        let me = self.config.server_id;
        let own_accepted = self.epoch_accepted;
        let Some(leader) = self.leader_ref() else {
            return self.wrong_role("leader_maybe_choose_epoch", Wanted::Leading);
        };
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_epoch_accepted", Wanted::Leading);
        };
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

    pub(super) fn leader_on_ack_epoch(
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_on_ack_epoch", Wanted::Leading);
        };
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

    pub(super) fn learner_send_info(&mut self, effects: &mut Vec<Effect>) {
        // The leader drops a FOLLOWERINFO that arrives before it has decided, so resend soon.
        let resend = self.now.mono_ms + (self.config.tick_time_ms as u64).clamp(1, 50);
        let Some(learner) = self.learner_mut() else {
            return self.wrong_role("learner_send_info", Wanted::Learning);
        };
        learner.resend_at_ms = resend;
        let observer = learner.observer;
        let msg = PeerMsg::FollowerInfo {
            accepted_epoch: self.epoch_accepted,
            zxid_logged: self.log.zxid_logged,
            zxid_applied: self.tree.zxid_applied(),
            observer,
        };
        self.learner_send(msg, effects);
    }

    pub(super) fn learner_on_leader_info(
        &mut self,
        epoch: u32,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        if epoch < self.epoch_accepted {
            return Err(format!(
                "LEADERINFO epoch {epoch} < acceptedEpoch {}",
                self.epoch_accepted
            ));
        }
        if let Some(learner) = self.learner_mut() {
            learner.epoch = Some(epoch);
            learner.phase = LearnerPhase::Discovered;
        }
        if epoch > self.epoch_accepted && self.canary(Canary::AckEpochBeforeDurable) {
            self.epoch_accepted = epoch;
            self.write(DurableWrite::AcceptedEpoch(epoch), AfterPersist::Nothing, effects);
            let msg = PeerMsg::AckEpoch {
                current_epoch: self.epoch_current,
                zxid_logged: self.log.zxid_logged,
                counts: true,
            };
            self.learner_send(msg, effects);
        } else if epoch > self.epoch_accepted {
            self.epoch_accepted = epoch;
            let term = self.term;
            self.write(
                DurableWrite::AcceptedEpoch(epoch),
                AfterPersist::SendAckEpoch { term },
                effects,
            );
        } else {
            // We accepted this epoch before, perhaps from another leader that proposed the same
            // number: Zab lets a member acknowledge an epoch once, so this answer only lets the
            // handshake go on and does not count toward the epoch's quorum. It promises nothing
            // either, so it need not wait for an acceptedEpoch write still in flight.
            let msg = PeerMsg::AckEpoch {
                current_epoch: self.epoch_current,
                zxid_logged: self.log.zxid_logged,
                counts: false,
            };
            self.learner_send(msg, effects);
        }
        Ok(())
    }
}
