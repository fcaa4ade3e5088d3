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

use tracing::{debug, warn};

use crate::core::ids::ServerId;
use crate::core::io::{DurableWrite, Effect};
use crate::core::node::{AfterPersist, Node, Role, Wanted};
use crate::core::txn::Txn;
use crate::core::zab::PeerMsg;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
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
    pub(super) phase: Phase,
    pub(super) epoch: Option<u32>,
    pub(super) init_deadline_ms: u64,
    pub(super) last_heard_ms: u64,
    pub(super) resend_at_ms: u64,
    /// Canary `EpochBeforeLog`: synced txns held back until after currentEpoch is written.
    pub(super) deferred: Vec<Txn>,
    /// Canary `LastZxidBeforeLog`: a proposal still "being read" when the next message comes.
    pub(super) receiving: Option<Txn>,
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
    pub(super) fn learner_mut(&mut self) -> Option<&mut Learner> {
        match &mut self.role {
            Role::Learning(learner) => Some(learner),
            _ => None,
        }
    }

    pub(super) fn learner_ref(&self) -> Option<&Learner> {
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

    /// The link to the leader came (back) up before we registered: register now.
    pub(super) fn learner_link_up(&mut self, effects: &mut Vec<Effect>) {
        if self.learner_ref().is_some_and(|l| l.phase == Phase::Connecting) {
            self.learner_send_info(effects);
        }
    }

    pub(super) fn learner_tick(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        let sync_ms = self.sync_limit_ms();
        let Some(learner) = self.learner_ref() else {
            return self.wrong_role("learner_tick", Wanted::Learning);
        };
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
        let Some(learner) = self.learner_mut() else {
            return self.wrong_role("learner_on_message", Wanted::Learning);
        };
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
}
