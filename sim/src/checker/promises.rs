//! Zab's promises are durable before they are made, and a leader's zxids name its epoch.
//!
//! Several Zab messages are promises about a member's disk, and Zab is only correct if the
//! disk already holds what the message claims when it leaves (ZOOKEEPER-3608, -3911, -4646;
//! raft-rs's `persisted_messages`, openraft's `IOFlushed`). The simulator sees every message
//! a node sends and the node's disk, so it checks each promise as it is made, online:
//! * **LEADERINFO(e)** (NEWEPOCH) from a leader: its `acceptedEpoch` ≥ e is durable;
//! * **ACKEPOCH** from a learner, when it counts toward the epoch quorum: the `acceptedEpoch`
//!   it holds is durable (one that does not count, ZooKeeper's epoch -1, promises nothing);
//! * **ACK(NEWLEADER e)**: its `currentEpoch` ≥ e is durable (and, the disk being written in
//!   order, the history synced before it);
//! * **ACK(z)** of a proposal: txn z is in the durable log;
//! * **PROPOSAL(z)** from a leader of epoch e: z's epoch is e (`ZxidUtils.makeZxid(e, c)`); a
//!   leader whose counter would wrap into the next epoch's zxids must step down first
//!   (ZOOKEEPER-1277).
//!
//!
//! A durable `currentEpoch` is a promise too: after a restart the node's election vote is
//! (currentEpoch, last zxid), and currentEpoch e claims that the node accepted the history of
//! epoch e's leader (ZOOKEEPER-3608), which holds every txn committed by the time the node
//! took it. So whenever a node crashes, what survives must keep it: **durable currentEpoch
//! e ⇒ every txn that was committed when the node wrote e is in its durable log or a durable
//! snapshot** (ZOOKEEPER-4643: currentEpoch written before the synced txns, a crash in
//! between, and the node then wins an election it should lose). Txns committed later need
//! not be there: an epoch that never got established may be overtaken by a leader whose
//! history the node never saw.
//!
//! A broken promise may need an unlucky crash to turn into lost data; this checker sees the
//! message ones in every run, crash or not.

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::{ServerId, Zxid};
use ensemble::core::txn::Txn;
use ensemble::core::zab::PeerMsg;

use crate::disk::Durable;

/// A message that promised what the sender's disk did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromiseViolation {
    /// LEADERINFO or ACKEPOCH went out before the accepted epoch was durable.
    EpochNotDurable {
        /// The sender.
        server: ServerId,
        /// The message.
        message: &'static str,
        /// The epoch it accepts.
        epoch: u32,
        /// The durable `acceptedEpoch`.
        durable: Option<u32>,
    },
    /// ACK(NEWLEADER) went out before `currentEpoch` was durable.
    NewLeaderNotDurable {
        /// The sender.
        server: ServerId,
        /// The epoch acknowledged.
        epoch: u32,
        /// The durable `currentEpoch`.
        durable: Option<u32>,
    },
    /// ACK of a proposal that is not in the durable log.
    AckNotDurable {
        /// The sender.
        server: ServerId,
        /// The zxid acknowledged.
        zxid: Zxid,
    },
    /// After a crash, a node's durable currentEpoch claims a history its disk lacks.
    EpochWithoutHistory {
        /// The node.
        server: ServerId,
        /// Its durable currentEpoch.
        epoch: u32,
        /// A txn committed in an earlier epoch that its disk does not hold.
        missing: Zxid,
    },
    /// A leader proposed a zxid outside its own epoch.
    ZxidOutsideEpoch {
        /// The leader.
        server: ServerId,
        /// Its epoch.
        epoch: u32,
        /// The zxid proposed.
        zxid: Zxid,
    },
}

/// What the sender holds when it sends: its epochs in memory and its disk.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    /// The node.
    pub server: ServerId,
    /// Its (acceptedEpoch, currentEpoch) in memory.
    pub epochs: (u32, u32),
    /// Its durable state.
    pub durable: &'a Durable,
}

/// Checks the promise `msg` makes, if it makes one.
pub fn check(sender: Sender<'_>, msg: &PeerMsg) -> Option<PromiseViolation> {
    let Sender { server, epochs: (accepted, current), durable } = sender;
    let accepted_durable = |epoch: u32| durable.accepted_epoch.is_some_and(|d| d >= epoch);
    match msg {
        PeerMsg::LeaderInfo { epoch } if !accepted_durable(*epoch) => {
            Some(PromiseViolation::EpochNotDurable {
                server,
                message: "LEADERINFO",
                epoch: *epoch,
                durable: durable.accepted_epoch,
            })
        }
        // An ACKEPOCH that does not count (the epoch was accepted before) promises nothing.
        PeerMsg::AckEpoch { counts: true, .. } if !accepted_durable(accepted) => {
            Some(PromiseViolation::EpochNotDurable {
                server,
                message: "ACKEPOCH",
                epoch: accepted,
                durable: durable.accepted_epoch,
            })
        }
        PeerMsg::AckNewLeader { epoch } if durable.current_epoch.is_none_or(|d| d < *epoch) => {
            Some(PromiseViolation::NewLeaderNotDurable {
                server,
                epoch: *epoch,
                durable: durable.current_epoch,
            })
        }
        PeerMsg::Ack { zxid } if durable.txn(*zxid).is_none() => {
            Some(PromiseViolation::AckNotDurable { server, zxid: *zxid })
        }
        PeerMsg::Proposal(txn) if txn.zxid.epoch() != current => {
            Some(PromiseViolation::ZxidOutsideEpoch { server, epoch: current, zxid: txn.zxid })
        }
        _ => None,
    }
}

/// What each node promised to hold when it first wrote each `currentEpoch`: the committed
/// history up to a bound. A leader takes its epoch holding every committed txn, so its bound
/// is the committed history's end. A learner takes it at NEWLEADER, after the leader's sync
/// (DIFF, TRUNC or SNAP), which carries everything committed when the leader planned it; a
/// txn committed after that (by a quorum without this learner) comes behind NEWLEADER and
/// need not be there: the learner's vote (epoch, last zxid) then loses to every member of
/// that txn's quorum. So a learner's bound is the lower of the two.
#[derive(Debug, Default)]
pub struct EpochWrites {
    committed_at: BTreeMap<(ServerId, u32), Zxid>,
    /// The committed bound of the last sync each node received.
    synced: BTreeMap<ServerId, Zxid>,
}

impl EpochWrites {
    /// Nothing written yet.
    pub fn new() -> EpochWrites {
        EpochWrites::default()
    }

    /// `server` writes currentEpoch `epoch` while the committed history ends at `committed`
    /// (a repeated write of the same epoch keeps the first, weaker, bound); `learner`: it
    /// takes the epoch from a leader's sync, so the sync's bound caps it.
    pub fn written(&mut self, server: ServerId, epoch: u32, committed: Zxid, learner: bool) {
        let synced = self.synced.get(&server).copied().filter(|_| learner);
        let bound = synced.map_or(committed, |synced| synced.min(committed));
        self.committed_at.entry((server, epoch)).or_insert(bound);
    }

    /// `server` received a sync (DIFF, TRUNC or SNAP) saying everything up to `committed` is
    /// committed.
    pub fn synced(&mut self, server: ServerId, committed: Zxid) {
        self.synced.insert(server, committed);
    }

    /// Checks what survived a crash of `server`: its durable currentEpoch must come with every
    /// txn of `committed` (in zxid order) that was committed when it wrote that epoch.
    pub fn check_crash(
        &self,
        server: ServerId,
        durable: &Durable,
        committed: &[Txn],
    ) -> Option<PromiseViolation> {
        let epoch = durable.current_epoch?;
        let bound = *self.committed_at.get(&(server, epoch))?;
        let snapshot = durable.snapshots.iter().map(|(zxid, _)| *zxid).max().unwrap_or(Zxid::ZERO);
        let upto = committed.partition_point(|t| t.zxid <= bound);
        let missing = committed[..upto]
            .iter()
            .find(|t| t.zxid > snapshot && durable.txn(t.zxid).is_none())?;
        Some(PromiseViolation::EpochWithoutHistory { server, epoch, missing: missing.zxid })
    }
}

impl fmt::Display for PromiseViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromiseViolation::EpochNotDurable { server, message, epoch, durable } => write!(
                f,
                "n{server} sent {message} for epoch {epoch} with acceptedEpoch {durable:?} on disk"
            ),
            PromiseViolation::NewLeaderNotDurable { server, epoch, durable } => write!(
                f,
                "n{server} acknowledged NEWLEADER {epoch} with currentEpoch {durable:?} on disk"
            ),
            PromiseViolation::AckNotDurable { server, zxid } => {
                write!(f, "n{server} acknowledged proposal {zxid} before it was durable")
            }
            PromiseViolation::EpochWithoutHistory { server, epoch, missing } => write!(
                f,
                "n{server} restarts with currentEpoch {epoch} on disk but without {missing}, \
                 committed before it took that epoch"
            ),
            PromiseViolation::ZxidOutsideEpoch { server, epoch, zxid } => {
                write!(f, "n{server}, leader of epoch {epoch}, proposed {zxid} of another epoch")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::ids::SessionId;
    use ensemble::core::snapshot::SnapshotImage;
    use ensemble::core::txn::TxnOp;

    use super::*;

    fn sender(durable: &Durable, epochs: (u32, u32)) -> Sender<'_> {
        Sender { server: ServerId(2), epochs, durable }
    }

    fn txn(zxid: Zxid) -> Txn {
        Txn {
            zxid,
            session: SessionId(1),
            cxid: 1,
            time_ms: 0,
            op: TxnOp::Delete { path: "/a".into() },
        }
    }

    #[test]
    fn epoch_promises_need_the_epoch_on_disk() {
        let mut disk =
            Durable { accepted_epoch: Some(3), current_epoch: Some(2), ..Default::default() };
        let info = PeerMsg::LeaderInfo { epoch: 4 };
        assert!(matches!(
            check(sender(&disk, (4, 2)), &info),
            Some(PromiseViolation::EpochNotDurable { epoch: 4, durable: Some(3), .. })
        ));
        let ack =
            PeerMsg::AckEpoch { current_epoch: 2, zxid_logged: Zxid::new(2, 5), counts: true };
        assert!(check(sender(&disk, (4, 2)), &ack).is_some());
        let uncounted =
            PeerMsg::AckEpoch { current_epoch: 2, zxid_logged: Zxid::new(2, 5), counts: false };
        assert_eq!(check(sender(&disk, (4, 2)), &uncounted), None);
        assert_eq!(check(sender(&disk, (3, 2)), &ack), None);
        disk.accepted_epoch = Some(4);
        assert_eq!(check(sender(&disk, (4, 2)), &info), None);
        assert_eq!(check(sender(&disk, (4, 2)), &ack), None);
    }

    #[test]
    fn a_newleader_ack_needs_the_current_epoch_on_disk() {
        let mut disk =
            Durable { accepted_epoch: Some(4), current_epoch: Some(3), ..Default::default() };
        let ack = PeerMsg::AckNewLeader { epoch: 4 };
        assert!(matches!(
            check(sender(&disk, (4, 4)), &ack),
            Some(PromiseViolation::NewLeaderNotDurable { epoch: 4, .. })
        ));
        disk.current_epoch = Some(4);
        assert_eq!(check(sender(&disk, (4, 4)), &ack), None);
    }

    #[test]
    fn a_proposal_ack_needs_the_txn_on_disk() {
        let mut disk = Durable::default();
        let zxid = Zxid::new(1, 7);
        let ack = PeerMsg::Ack { zxid };
        assert_eq!(
            check(sender(&disk, (1, 1)), &ack),
            Some(PromiseViolation::AckNotDurable { server: ServerId(2), zxid })
        );
        disk.txns.push(txn(zxid));
        assert_eq!(check(sender(&disk, (1, 1)), &ack), None);
    }

    #[test]
    fn a_durable_current_epoch_needs_what_was_committed_when_it_was_taken() {
        let committed: Vec<Txn> =
            [Zxid::new(1, 1), Zxid::new(1, 2), Zxid::new(2, 1)].into_iter().map(txn).collect();
        let mut writes = EpochWrites::new();
        writes.written(ServerId(3), 2, Zxid::new(1, 2), false);
        writes.written(ServerId(3), 2, Zxid::new(2, 1), false); // the first write's bound stays
        let mut disk = Durable { current_epoch: Some(2), ..Default::default() };
        disk.txns.push(txn(Zxid::new(1, 1)));
        assert_eq!(
            writes.check_crash(ServerId(3), &disk, &committed),
            Some(PromiseViolation::EpochWithoutHistory {
                server: ServerId(3),
                epoch: 2,
                missing: Zxid::new(1, 2)
            })
        );
        // What was committed after it took the epoch need not be there.
        disk.txns.push(txn(Zxid::new(1, 2)));
        assert_eq!(writes.check_crash(ServerId(3), &disk, &committed), None);
        // A snapshot covers what it includes; no epoch written, nothing promised.
        writes.written(ServerId(3), 3, Zxid::new(2, 1), false);
        let snapshotted = Durable {
            current_epoch: Some(3),
            snapshots: vec![(
                Zxid::new(2, 1),
                SnapshotImage::new(
                    Zxid::new(2, 1),
                    &ensemble::core::tree::DataTree::new(),
                    Vec::new(),
                ),
            )],
            ..Default::default()
        };
        assert_eq!(writes.check_crash(ServerId(3), &snapshotted, &committed), None);
        assert_eq!(writes.check_crash(ServerId(3), &Durable::default(), &committed), None);
    }

    /// A learner promises what its leader's sync said was committed, not what a quorum
    /// without it committed while the sync was on its way (sim seed 0xac8).
    #[test]
    fn a_learner_promises_what_its_sync_said_was_committed() {
        let committed: Vec<Txn> =
            [(1, 1), (1, 2), (2, 1)].map(|(e, c)| txn(Zxid::new(e, c))).to_vec();
        let mut disk = Durable { current_epoch: Some(2), ..Default::default() };
        disk.txns.push(txn(Zxid::new(1, 1)));
        disk.txns.push(txn(Zxid::new(1, 2)));
        let mut writes = EpochWrites::new();
        writes.synced(ServerId(4), Zxid::new(1, 2));
        writes.written(ServerId(4), 2, Zxid::new(2, 1), true);
        assert_eq!(writes.check_crash(ServerId(4), &disk, &committed), None);
        disk.txns.pop();
        assert_eq!(
            writes.check_crash(ServerId(4), &disk, &committed),
            Some(PromiseViolation::EpochWithoutHistory {
                server: ServerId(4),
                epoch: 2,
                missing: Zxid::new(1, 2)
            })
        );
        // A leader's bound is the whole committed history when it writes its epoch.
        let mut writes = EpochWrites::new();
        writes.synced(ServerId(4), Zxid::new(1, 1));
        writes.written(ServerId(4), 2, Zxid::new(1, 2), false);
        assert!(writes.check_crash(ServerId(4), &disk, &committed).is_some());
    }

    #[test]
    fn a_leader_proposes_only_in_its_epoch() {
        let disk = Durable::default();
        let wrapped = PeerMsg::Proposal(txn(Zxid::new(6, 0)));
        assert!(matches!(
            check(sender(&disk, (5, 5)), &wrapped),
            Some(PromiseViolation::ZxidOutsideEpoch { epoch: 5, .. })
        ));
        let last = PeerMsg::Proposal(txn(Zxid::new(5, u32::MAX)));
        assert_eq!(check(sender(&disk, (5, 5)), &last), None);
    }
}
