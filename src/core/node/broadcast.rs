//! Zab broadcast, both sides: PROPOSAL → quorum of ACKs → COMMIT (INFORM to observers), in
//! zxid order; `sync` answered once everything proposed before it has committed.
//!
//! ZK compat: `Leader.propose`, `Leader.processAck`, `Follower.processPacket`,
//! `Observer.processPacket`. Ordering rules (see docs/protocol.md): the leader's own ACK of a
//! proposal counts only once the txn is durable here; a learner ACKs a proposal only once it is
//! durable; commits leave in zxid order.

use std::collections::BTreeSet;

use tracing::{debug, warn};

use crate::core::canary::Canary;
use crate::core::ids::{ServerId, SessionId, Zxid};
use crate::core::io::Effect;
use crate::core::node::{AfterPersist, Node, Wanted};
use crate::core::txn::{Txn, TxnOp};
use crate::core::zab::PeerMsg;

impl Node {
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_on_ack", Wanted::Leading);
        };
        if let Some(acks) = leader.outstanding.get_mut(&zxid) {
            acks.insert(from);
        }
        if let Some(learner) = leader.learners.get_mut(&from) {
            learner.zxid_logged = learner.zxid_logged.max(zxid);
        }
        self.leader_commit_ready(effects);
    }

    /// Commits, in order, every oldest outstanding proposal that has a quorum of ACKs.
    pub(super) fn leader_commit_ready(&mut self, effects: &mut Vec<Effect>) {
        loop {
            let Some(leader) = self.leader_ref() else {
                return self.wrong_role("leader_commit_ready", Wanted::Leading);
            };
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

    pub(super) fn leader_commit(&mut self, zxid: Zxid, effects: &mut Vec<Effect>) {
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
            let Some(leader) = self.leader_mut() else {
                return self.wrong_role("leader_commit", Wanted::Leading);
            };
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
        let Some(leader) = self.leader_mut() else {
            return self.wrong_role("leader_sync", Wanted::Leading);
        };
        if leader.outstanding.is_empty() {
            self.leader_sync_done(from, session, cxid, effects);
        } else {
            leader.pending_syncs.push_back((proposed, from, session, cxid));
        }
    }

    pub(super) fn leader_sync_done(
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

    pub(super) fn learner_on_proposal(
        &mut self,
        txn: Txn,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
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

    pub(super) fn learner_on_commit(
        &mut self,
        zxid: Zxid,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
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

    pub(super) fn learner_on_inform(
        &mut self,
        txn: Txn,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
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
