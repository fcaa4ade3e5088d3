//! The learner side of Zab (followers and observers): discovery (FOLLOWERINFO → LEADERINFO →
//! ACKEPOCH), synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and broadcast
//! (PROPOSAL → ACK once durable, COMMIT; INFORM for observers).
//!
//! ZK compat: `Learner.registerWithLeader`, `Learner.syncWithLeader`, `Follower.processPacket`,
//! `Observer.processPacket`. Ordering rules (see docs/protocol.md):
//! - ACKEPOCH only once the new acceptedEpoch is durable;
//! - ACK of NEWLEADER only once the synced history *and* the new currentEpoch are durable;
//! - ACK of a proposal only once it is durable;
//! - a txn is applied only once it is known to be committed.

use tracing::{debug, info, warn};

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, Zxid};
use crate::core::io::{DurableWrite, Effect};
use crate::core::node::{AfterPersist, Node, Role};
use crate::core::txn::Txn;
use crate::core::zab::PeerMsg;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    Connecting,
    /// ACKEPOCH sent (or on its way); waiting for the sync payload.
    Discovered,
    /// NEWLEADER received; waiting for UPTODATE.
    Synced,
    /// Serving.
    Broadcast,
}

/// A follower's or observer's state.
pub(super) struct Learner {
    pub(super) leader: ServerId,
    pub(super) observer: bool,
    phase: Phase,
    epoch: Option<u32>,
    init_deadline_ms: u64,
    last_heard_ms: u64,
    resend_at_ms: u64,
    /// Canary `EpochBeforeLog`: synced txns held back until after currentEpoch is written.
    deferred: Vec<Txn>,
    /// Canary `LastZxidBeforeLog`: a proposal still "being read" when the next message comes.
    receiving: Option<Txn>,
}

impl Learner {
    pub(super) fn new(leader: ServerId, observer: bool, init_deadline_ms: u64) -> Learner {
        Learner {
            leader,
            observer,
            phase: Phase::Connecting,
            epoch: None,
            init_deadline_ms,
            last_heard_ms: 0,
            resend_at_ms: 0,
            deferred: Vec::new(),
            receiving: None,
        }
    }

    pub(super) fn serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// When the learner must look at the clock again: always in the future of the last time
    /// it did, so a driver never spins on a deadline that has passed.
    pub(super) fn deadline(&self, sync_limit_ms: u64) -> u64 {
        match self.phase {
            Phase::Connecting => self.resend_at_ms.min(self.init_deadline_ms),
            Phase::Discovered | Phase::Synced => self.init_deadline_ms,
            // The leader is declared gone once it has been quiet for more than syncLimit.
            Phase::Broadcast => self.last_heard_ms + sync_limit_ms + 1,
        }
    }
}

impl Node {
    fn learner_mut(&mut self) -> Option<&mut Learner> {
        match &mut self.role {
            Role::Learning(learner) => Some(learner),
            _ => None,
        }
    }

    fn learner_ref(&self) -> Option<&Learner> {
        match &self.role {
            Role::Learning(learner) => Some(learner),
            _ => None,
        }
    }

    /// Whether `from` is the leader we follow and has answered our FOLLOWERINFO: a LOOKING
    /// notification from it then means it left its role since (it is sent after LEADERINFO
    /// on the same FIFO link).
    pub(super) fn is_answered_leader(&self, from: ServerId) -> bool {
        self.learner_ref().is_some_and(|l| l.leader == from && l.phase != Phase::Connecting)
    }

    /// Sends a message to our leader (dropped if we have none).
    pub(super) fn learner_send(&mut self, msg: PeerMsg, effects: &mut Vec<Effect>) {
        if let Some(learner) = self.learner_ref() {
            effects.push(Effect::SendPeer { to: learner.leader, msg });
        }
    }

    pub(super) fn learner_started(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        if let Some(learner) = self.learner_mut() {
            learner.last_heard_ms = now;
        }
        self.learner_send_info(effects);
    }

    fn learner_send_info(&mut self, effects: &mut Vec<Effect>) {
        // The leader drops a FOLLOWERINFO that arrives before it has decided, so resend soon.
        let resend = self.now.mono_ms + (self.config.tick_time_ms as u64).clamp(1, 50);
        let Some(learner) = self.learner_mut() else { return };
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

    /// The link to the leader came (back) up before we registered: register now.
    pub(super) fn learner_link_up(&mut self, effects: &mut Vec<Effect>) {
        if self.learner_ref().is_some_and(|l| l.phase == Phase::Connecting) {
            self.learner_send_info(effects);
        }
    }

    pub(super) fn learner_tick(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        let sync_ms = self.sync_limit_ms();
        let Some(learner) = self.learner_ref() else { return };
        match learner.phase {
            Phase::Broadcast if now.saturating_sub(learner.last_heard_ms) > sync_ms => {
                self.become_looking("the leader went quiet for syncLimit", effects)
            }
            Phase::Broadcast => {}
            _ if now >= learner.init_deadline_ms => {
                self.become_looking("no sync with the leader within initLimit", effects)
            }
            Phase::Connecting if now >= learner.resend_at_ms => self.learner_send_info(effects),
            _ => {}
        }
    }

    pub(super) fn learner_on_message(&mut self, msg: PeerMsg, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        let Some(learner) = self.learner_mut() else { return };
        learner.last_heard_ms = now;
        let phase = learner.phase;
        if let Some(txn) = learner.receiving.take() {
            let zxid = txn.zxid;
            let term = self.term;
            self.log.tail.push_back(txn.clone());
            self.write(DurableWrite::Append(txn), AfterPersist::SendAck { term, zxid }, effects);
        }
        let result = match msg {
            PeerMsg::LeaderInfo { epoch } if phase == Phase::Connecting => {
                self.learner_on_leader_info(epoch, effects)
            }
            // The leader answers a FOLLOWERINFO with LEADERINFO before anything else, so until
            // then its messages belong to our previous handshake with it (we left the role on
            // a link that stayed up): pings, proposals, commits on their way when it heard
            // our FOLLOWERINFO. ZK compat: they went down the old socket, which the learner
            // closed. Answering them would keep that handshake alive in the leader's eyes;
            // taking them for a protocol violation would start us over again and again (sim
            // seed 0x4ca).
            other if phase == Phase::Connecting => {
                debug!(msg = other.name(), "from the leader before it answered FOLLOWERINFO");
                Ok(())
            }
            // A second answer to a resent FOLLOWERINFO.
            PeerMsg::LeaderInfo { epoch }
                if self.learner_ref().and_then(|l| l.epoch) == Some(epoch) =>
            {
                Ok(())
            }
            PeerMsg::Diff { txns, committed } if phase == Phase::Discovered => {
                self.learner_sync(None, None, txns, committed, effects)
            }
            PeerMsg::Trunc { zxid, txns, committed } if phase == Phase::Discovered => {
                self.learner_sync(Some(zxid), None, txns, committed, effects)
            }
            PeerMsg::Snap { zxid, body, txns, committed } if phase == Phase::Discovered => {
                self.learner_sync(Some(zxid), Some(body.to_bytes()), txns, committed, effects)
            }
            PeerMsg::NewLeader { epoch } if phase == Phase::Discovered => {
                self.learner_on_new_leader(epoch, effects)
            }
            PeerMsg::UpToDate { committed } if phase == Phase::Synced => {
                self.learner_on_up_to_date(committed, effects)
            }
            PeerMsg::Proposal(txn) if phase >= Phase::Synced => {
                self.learner_on_proposal(txn, effects)
            }
            PeerMsg::Commit { zxid } if phase >= Phase::Synced => {
                self.learner_on_commit(zxid, effects)
            }
            PeerMsg::Inform(txn) if phase >= Phase::Synced => self.learner_on_inform(txn, effects),
            PeerMsg::SyncDone { session, cxid } => {
                self.answer_sync(session, cxid, effects);
                Ok(())
            }
            PeerMsg::Ping { .. } => {
                let sessions = std::mem::take(&mut self.touched).into_iter().collect();
                self.learner_send(PeerMsg::Ping { sessions }, effects);
                Ok(())
            }
            PeerMsg::Revalidated { session, valid } => {
                if let Some(waiting) = self.revalidating.remove(&session) {
                    if valid {
                        self.sessions.set_timeout(session, waiting.timeout_ms, self.session_now());
                        self.establish(
                            waiting.conn,
                            session,
                            waiting.timeout_ms,
                            waiting.read_only,
                            effects,
                        );
                    } else {
                        self.refuse_session(waiting.conn, session, waiting.read_only, effects);
                    }
                }
                Ok(())
            }
            other => Err(format!("{} in phase {phase:?}", other.name())),
        };
        if let Err(violation) = result {
            // ZK compat: a learner that gets a packet it cannot place drops the leader.
            warn!(%violation, "protocol violation by the leader");
            self.become_looking("unexpected message from the leader", effects);
        }
    }

    fn learner_on_leader_info(
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
            learner.phase = Phase::Discovered;
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

    /// Applies a sync payload: optional truncation point, optional snapshot, then txns.
    fn learner_sync(
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

    fn log_synced(&mut self, txns: Vec<Txn>, committed: Zxid, effects: &mut Vec<Effect>) {
        for txn in txns {
            if txn.zxid <= self.log.zxid_logged {
                continue; // we have it already (same zxid, same txn)
            }
            self.log_txn(txn, AfterPersist::Nothing, effects);
        }
        self.apply_committed(committed, effects);
    }

    fn learner_on_new_leader(
        &mut self,
        epoch: u32,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let expected = self.learner_ref().and_then(|l| l.epoch);
        if expected != Some(epoch) {
            return Err(format!("NEWLEADER for epoch {epoch}, expected {expected:?}"));
        }
        if let Some(learner) = self.learner_mut() {
            learner.phase = Phase::Synced;
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

    fn learner_on_up_to_date(
        &mut self,
        committed: Zxid,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.apply_committed(committed, effects);
        let leader = match self.learner_mut() {
            Some(learner) => {
                learner.phase = Phase::Broadcast;
                learner.leader
            }
            None => return Ok(()),
        };
        info!(server = %self.config.server_id, %leader, zxid = %self.tree.zxid_applied(), "serving");
        self.serve_waiting_connections(effects);
        Ok(())
    }

    fn learner_on_proposal(&mut self, txn: Txn, effects: &mut Vec<Effect>) -> Result<(), String> {
        if self.learner_ref().is_some_and(|l| l.observer) {
            return Err("PROPOSAL to an observer".into());
        }
        if txn.zxid <= self.log.zxid_logged {
            return Err(format!("PROPOSAL {} not after {}", txn.zxid, self.log.zxid_logged));
        }
        // NEWLEADER set our current epoch to the leader's; its proposals carry it.
        if txn.zxid.epoch() != self.epoch_current {
            return Err(format!("PROPOSAL {} in epoch {}", txn.zxid, self.epoch_current));
        }
        let zxid = txn.zxid;
        let term = self.term;
        if self.canary(Canary::LastZxidBeforeLog) {
            self.log.zxid_logged = zxid;
            if let Some(learner) = self.learner_mut() {
                learner.receiving = Some(txn);
            }
            return Ok(());
        }
        if self.canary(Canary::AckBeforeFsync) {
            self.log_txn(txn, AfterPersist::Nothing, effects);
            self.learner_send(PeerMsg::Ack { zxid }, effects);
            return Ok(());
        }
        self.log_txn(txn, AfterPersist::SendAck { term, zxid }, effects);
        Ok(())
    }

    fn learner_on_commit(&mut self, zxid: Zxid, effects: &mut Vec<Effect>) -> Result<(), String> {
        if zxid <= self.tree.zxid_applied() {
            return Ok(());
        }
        if zxid > self.log.zxid_logged {
            return Err(format!(
                "COMMIT {zxid} of a txn never proposed here (logged {})",
                self.log.zxid_logged
            ));
        }
        self.apply_committed(zxid, effects);
        Ok(())
    }

    fn learner_on_inform(&mut self, txn: Txn, effects: &mut Vec<Effect>) -> Result<(), String> {
        let zxid = txn.zxid;
        if zxid <= self.tree.zxid_applied() {
            return Ok(());
        }
        if zxid > self.log.zxid_logged {
            self.log_txn(txn, AfterPersist::Nothing, effects);
        }
        self.apply_committed(zxid, effects);
        debug!(%zxid, "informed");
        Ok(())
    }
}
