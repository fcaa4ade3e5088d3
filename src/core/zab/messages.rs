//! Messages between members. The runtime frames them (length prefix, version byte, bincode);
//! the simulator passes them as values.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::ids::{SessionId, Zxid};
use crate::core::snapshot::SnapshotImage;
use crate::core::txn::Txn;
use crate::wire::types::Id;

/// A SNAP's snapshot: the sender's frozen image, or its encoding (`core::snapshot`). It
/// serializes as the encoded bytes and deserializes as [`SnapBody::Encoded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapBody {
    /// The leader's state, frozen when it planned the sync; encoding it is the sender's driver's
    /// work, off the node loop.
    Image(SnapshotImage),
    /// The encoded body.
    Encoded(Bytes),
}

impl SnapBody {
    /// The encoded body (encoding the image if needed).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SnapBody::Image(image) => image.encode(),
            SnapBody::Encoded(bytes) => bytes.clone(),
        }
    }
}

impl Serialize for SnapBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for SnapBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bytes::deserialize(deserializer).map(SnapBody::Encoded)
    }
}

/// A member's state as announced in election notifications. ZK compat: `ServerState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PeerState {
    /// Electing.
    Looking,
    /// Following an established leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader.
    Observing,
}

/// A vote: who should lead, and the history that candidate is believed to have.
/// Ordered by (epoch, zxid, leader): the greatest vote wins. ZK compat:
/// `FastLeaderElection.totalOrderPredicate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// The candidate.
    pub leader: crate::core::ids::ServerId,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate's current epoch.
    pub epoch: u32,
}

impl Ord for Vote {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.epoch, self.zxid, self.leader).cmp(&(other.epoch, other.zxid, other.leader))
    }
}

impl PartialOrd for Vote {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What a follower forwards to the leader on behalf of a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forwarded {
    /// A write request: the raw request frame (header + body) and the connection's ids.
    Write {
        /// The request frame payload, as the client sent it.
        frame: Bytes,
        /// The connection's authenticated ids (ACL checks happen at the leader).
        ids: Vec<Id>,
    },
    /// A new session.
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
        /// The password the follower chose.
        password: [u8; 16],
    },
    /// A `sync`: answered once everything the leader proposed before it is committed.
    Sync,
}

/// One message between members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// Fast leader election notification.
    Notification {
        /// The sender's vote.
        vote: Vote,
        /// The sender's election round (`logicalclock`).
        round: u64,
        /// The sender's state.
        state: PeerState,
    },
    /// Learner → leader: discovery (CEPOCH). ZK compat: FOLLOWERINFO / OBSERVERINFO.
    FollowerInfo {
        /// The learner's accepted epoch.
        accepted_epoch: u32,
        /// Its last logged zxid.
        zxid_logged: Zxid,
        /// Its last applied zxid (its tree cannot be rolled back below this).
        zxid_applied: Zxid,
        /// Whether it is an observer.
        observer: bool,
    },
    /// Leader → learner: the new epoch (NEWEPOCH). ZK compat: LEADERINFO.
    LeaderInfo {
        /// The proposed epoch.
        epoch: u32,
    },
    /// Learner → leader, after `acceptedEpoch` is durable. ZK compat: ACKEPOCH.
    AckEpoch {
        /// The learner's current epoch.
        current_epoch: u32,
        /// Its last logged zxid.
        zxid_logged: Zxid,
        /// Whether the acknowledgement counts toward the leader's epoch quorum: false when the
        /// learner had accepted this epoch before this LEADERINFO (ZK compat: ACKEPOCH with
        /// epoch -1, `Learner.registerWithLeader`). It may have acknowledged the same epoch to
        /// another leader already; counting it twice could establish two leaders in one epoch.
        counts: bool,
    },
    /// Leader → learner: send the txns after the learner's last zxid (DIFF).
    Diff {
        /// The txns, in zxid order.
        txns: Vec<Txn>,
        /// Everything up to this zxid is committed.
        committed: Zxid,
    },
    /// Leader → learner: drop the logged txns after `zxid` (TRUNC), then the `txns` (DIFF).
    Trunc {
        /// The last txn to keep.
        zxid: Zxid,
        /// The txns that follow it in the leader's history.
        txns: Vec<Txn>,
        /// Everything up to this zxid is committed.
        committed: Zxid,
    },
    /// Leader → learner: replace everything with this snapshot (SNAP).
    Snap {
        /// The last txn the snapshot covers.
        zxid: Zxid,
        /// The snapshot body (`core::snapshot`): the leader's frozen image, which the runtime
        /// encodes off the node loop and sends in chunks; encoded bytes on arrival.
        body: SnapBody,
        /// The leader's logged txns after the snapshot.
        txns: Vec<Txn>,
        /// Everything up to this zxid is committed.
        committed: Zxid,
    },
    /// Leader → learner: the end of the sync payload (NEWLEADER).
    NewLeader {
        /// The new epoch.
        epoch: u32,
    },
    /// Learner → leader: the synced history and `currentEpoch` are durable.
    AckNewLeader {
        /// The epoch acknowledged.
        epoch: u32,
    },
    /// Leader → learner: the leader is established; start serving (UPTODATE).
    UpToDate {
        /// Everything up to this zxid is committed.
        committed: Zxid,
    },
    /// Leader → follower: a txn to log (PROPOSAL).
    Proposal(Txn),
    /// Follower → leader: `zxid` and everything before it are durable here (ACK).
    Ack {
        /// The zxid acknowledged.
        zxid: Zxid,
    },
    /// Leader → follower: `zxid` and everything before it are committed (COMMIT).
    Commit {
        /// The committed zxid.
        zxid: Zxid,
    },
    /// Leader → observer: a committed txn (INFORM).
    Inform(Txn),
    /// Follower → leader: a client request (REQUEST).
    Request {
        /// The client's session.
        session: SessionId,
        /// The client's xid.
        cxid: i32,
        /// What is asked.
        op: Forwarded,
    },
    /// Leader → follower: a `sync` is through (SYNC).
    SyncDone {
        /// The session that asked.
        session: SessionId,
        /// Its xid.
        cxid: i32,
    },
    /// Leader → learner heartbeat; learner → leader with the sessions it saw activity on.
    Ping {
        /// Sessions touched since the last ping (learner → leader).
        sessions: Vec<SessionId>,
    },
    /// Learner → leader: is this session alive? (a client reconnected here).
    Revalidate {
        /// The session.
        session: SessionId,
        /// Its new timeout.
        timeout_ms: i32,
    },
    /// Leader → learner: the answer.
    Revalidated {
        /// The session.
        session: SessionId,
        /// Whether it is alive.
        valid: bool,
    },
}

impl PeerMsg {
    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            PeerMsg::Notification { .. } => "NOTIFICATION",
            PeerMsg::FollowerInfo { .. } => "FOLLOWERINFO",
            PeerMsg::LeaderInfo { .. } => "LEADERINFO",
            PeerMsg::AckEpoch { .. } => "ACKEPOCH",
            PeerMsg::Diff { .. } => "DIFF",
            PeerMsg::Trunc { .. } => "TRUNC",
            PeerMsg::Snap { .. } => "SNAP",
            PeerMsg::NewLeader { .. } => "NEWLEADER",
            PeerMsg::AckNewLeader { .. } => "ACK(NEWLEADER)",
            PeerMsg::UpToDate { .. } => "UPTODATE",
            PeerMsg::Proposal(_) => "PROPOSAL",
            PeerMsg::Ack { .. } => "ACK",
            PeerMsg::Commit { .. } => "COMMIT",
            PeerMsg::Inform(_) => "INFORM",
            PeerMsg::Request { .. } => "REQUEST",
            PeerMsg::SyncDone { .. } => "SYNC",
            PeerMsg::Ping { .. } => "PING",
            PeerMsg::Revalidate { .. } => "REVALIDATE",
            PeerMsg::Revalidated { .. } => "REVALIDATED",
        }
    }
}
