//! Deliberate protocol bugs the simulator must catch (feature `canary`).
//!
//! Each `Canary` is modelled on a real ZooKeeper defect (see `docs/simulation.md` and
//! `../shared/docs/dst-and-zab.md` §4.6). A node's `NodeConfig::canaries` says which are on.
//! Without the `canary` feature `Canaries::on` is the constant `false`, so production builds
//! carry none of them: every injection point is dead code the compiler removes.

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Canary {
    /// ZOOKEEPER-1419: the vote comparison's server-id tie-break ignores the epoch, so the
    /// order is not total and an election may never settle.
    VoteOrderNotTotal,
    /// ZOOKEEPER-3911/4646: a learner ACKs NEWLEADER before the synced txns are durable.
    AckNewLeaderBeforeDurable,
    /// ZOOKEEPER-4643: a learner persists currentEpoch before the synced txns.
    EpochBeforeLog,
    /// ZOOKEEPER-3608: acceptedEpoch is not durable before ACKEPOCH / LEADERINFO.
    AckEpochBeforeDurable,
    /// ZOOKEEPER-2845: logged but uncommitted txns are applied when a member leaves its role.
    RetainUncommitted,
    /// ZOOKEEPER-2355: a follower advances its last zxid on receipt of a PROPOSAL, before it
    /// is logged; if the link breaks first, the txn is lost but the zxid is claimed.
    LastZxidBeforeLog,
    /// ZOOKEEPER-1154/1156: the leader never truncates a learner's divergent tail.
    WrongTrunc,
    /// Single system image: a client that has seen a newer zxid is accepted anyway.
    AcceptClientAhead,
    /// ZOOKEEPER-1366: sessions expire by the wall clock instead of a monotonic one.
    ExpiryWallClock,
    /// ZOOKEEPER-1277: the leader does not step down before the zxid counter wraps.
    ZxidRollover,
    /// A follower ACKs a proposal (and the leader counts its own ACK) before it is durable.
    AckBeforeFsync,
    /// The leader commits on its own ACK, without a quorum.
    CommitWithoutQuorum,
}

impl Canary {
    /// Every canary, in order.
    pub const ALL: [Canary; 12] = [
        Canary::VoteOrderNotTotal,
        Canary::AckNewLeaderBeforeDurable,
        Canary::EpochBeforeLog,
        Canary::AckEpochBeforeDurable,
        Canary::RetainUncommitted,
        Canary::LastZxidBeforeLog,
        Canary::WrongTrunc,
        Canary::AcceptClientAhead,
        Canary::ExpiryWallClock,
        Canary::ZxidRollover,
        Canary::AckBeforeFsync,
        Canary::CommitWithoutQuorum,
    ];

    /// A stable kebab-case name for command lines and reports.
    pub fn name(self) -> &'static str {
        match self {
            Canary::VoteOrderNotTotal => "vote-order-not-total",
            Canary::AckNewLeaderBeforeDurable => "ack-newleader-before-durable",
            Canary::EpochBeforeLog => "epoch-before-log",
            Canary::AckEpochBeforeDurable => "ackepoch-before-durable",
            Canary::RetainUncommitted => "retain-uncommitted",
            Canary::LastZxidBeforeLog => "last-zxid-before-log",
            Canary::WrongTrunc => "wrong-trunc",
            Canary::AcceptClientAhead => "accept-client-ahead",
            Canary::ExpiryWallClock => "expiry-wall-clock",
            Canary::ZxidRollover => "zxid-rollover",
            Canary::AckBeforeFsync => "ack-before-fsync",
            Canary::CommitWithoutQuorum => "commit-without-quorum",
        }
    }

    /// The canary with this name.
    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The set of canaries switched on for a node (empty by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Canaries {
    #[cfg(feature = "canary")]
    bits: u32,
}

impl Canaries {
    /// No canary.
    pub const NONE: Canaries = Canaries {
        #[cfg(feature = "canary")]
        bits: 0,
    };

    /// Whether `canary` is on. Always false without the `canary` feature.
    #[inline(always)]
    pub fn on(self, canary: Canary) -> bool {
        #[cfg(feature = "canary")]
        {
            self.bits & (1 << canary as u32) != 0
        }
        #[cfg(not(feature = "canary"))]
        {
            let _ = canary;
            false
        }
    }

    /// This set plus `canary`.
    #[cfg(feature = "canary")]
    pub fn with(self, canary: Canary) -> Canaries {
        Canaries { bits: self.bits | (1 << canary as u32) }
    }
}
