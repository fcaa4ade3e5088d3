//! A node's tree is the replay of its durable log.
//!
//! Online: after every step of a node, its tree must equal — by `DataTree::digest` — a shadow
//! tree built by applying that node's durable txns up to the node's last applied zxid. In a
//! standalone server every applied txn must already be durable (it applies on `Persisted`), so
//! in strict mode a node that applied beyond its durable log is flagged at once: that is "ack
//! before fsync". At every restart, the recovered node (snapshot + log tail) must equal a fresh
//! `Node::recover` from the whole log without any snapshot, which checks the snapshot path.

use std::fmt;

use ensemble::core::ids::{ServerId, Zxid};
use ensemble::core::tree::DataTree;
use ensemble::core::txn::Txn;

/// A node whose state is not its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryViolation {
    /// The node's tree differs from the replay of its durable log at the same zxid.
    Diverged {
        /// The node.
        server: ServerId,
        /// The zxid both are at.
        zxid: Zxid,
        /// The node's digest.
        node_digest: u64,
        /// The replay's digest.
        replay_digest: u64,
    },
    /// The node applied a txn that is not durable yet (strict mode: standalone).
    AppliedNotDurable {
        /// The node.
        server: ServerId,
        /// The node's last applied zxid.
        applied: Zxid,
        /// The last durable zxid.
        durable: Zxid,
    },
    /// A node recovered from snapshot + log differs from a replay of the whole log.
    RecoveredDiffers {
        /// The node.
        server: ServerId,
        /// The zxid it recovered to.
        zxid: Zxid,
        /// The recovered node's digest.
        recovered_digest: u64,
        /// The full replay's digest.
        replay_digest: u64,
    },
}

/// A tree that follows a node's durable log.
#[derive(Debug, Default)]
pub struct Shadow {
    tree: DataTree,
    applied: usize,
    zxid: Zxid,
    log_generation: u64,
}

impl Shadow {
    /// A shadow of an empty log.
    pub fn new() -> Shadow {
        Shadow::default()
    }

    /// Catches up with `node_tree` through `durable` and compares. `log_generation` changes
    /// whenever the log is truncated (the shadow then starts over). `strict`: the node may not
    /// be ahead of its durable log.
    pub fn check(
        &mut self,
        server: ServerId,
        node_tree: &DataTree,
        durable: &[Txn],
        log_generation: u64,
        strict: bool,
    ) -> Option<RecoveryViolation> {
        let target = node_tree.zxid_applied();
        if target < self.zxid || log_generation != self.log_generation {
            *self = Shadow { log_generation, ..Shadow::new() };
        }
        let mut events = Vec::new();
        while let Some(txn) = durable.get(self.applied).filter(|t| t.zxid <= target) {
            self.tree.apply(txn, &mut events);
            events.clear();
            self.applied += 1;
            self.zxid = txn.zxid;
        }
        if self.tree.zxid_applied() != target {
            return strict.then(|| RecoveryViolation::AppliedNotDurable {
                server,
                applied: target,
                durable: durable.last().map_or(Zxid::ZERO, |t| t.zxid),
            });
        }
        let (node_digest, replay_digest) = (node_tree.digest(), self.tree.digest());
        (node_digest != replay_digest).then_some(RecoveryViolation::Diverged {
            server,
            zxid: target,
            node_digest,
            replay_digest,
        })
    }
}

impl fmt::Display for RecoveryViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryViolation::Diverged { server, zxid, node_digest, replay_digest } => write!(
                f,
                "n{server} at zxid {zxid}: tree digest {node_digest:#x} but its log replays to \
                 {replay_digest:#x}"
            ),
            RecoveryViolation::AppliedNotDurable { server, applied, durable } => write!(
                f,
                "n{server} applied up to {applied} but only {durable} is durable (applied before \
                 fsync)"
            ),
            RecoveryViolation::RecoveredDiffers {
                server,
                zxid,
                recovered_digest,
                replay_digest,
            } => {
                write!(
                    f,
                    "n{server} recovered to {zxid} with digest {recovered_digest:#x}, but a full \
                     replay of its log gives {replay_digest:#x}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::fixtures::*;

    #[test]
    fn a_node_that_follows_its_log_passes() {
        let log = vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 0, 2, "/a", "y", 1)];
        let mut shadow = Shadow::new();
        assert_eq!(shadow.check(ServerId(0), &tree_of(&log[..1]), &log, 0, true), None);
        assert_eq!(shadow.check(ServerId(0), &tree_of(&log), &log, 0, true), None);
    }

    #[test]
    fn a_tree_that_differs_from_its_log_is_flagged() {
        let log = vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 0, 2, "/a", "y", 1)];
        // The node applied a different setData at zxid 2.
        let node = tree_of(&[log[0].clone(), set_txn(2, 0, 2, "/a", "zzz", 1)]);
        let violation = Shadow::new().check(ServerId(0), &node, &log, 0, true);
        assert!(
            matches!(violation, Some(RecoveryViolation::Diverged { zxid: Zxid(2), .. })),
            "{violation:?}"
        );
    }

    #[test]
    fn applying_beyond_the_durable_log_is_flagged_in_strict_mode() {
        let log = vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 0, 2, "/a", "y", 1)];
        let node = tree_of(&log);
        let durable = &log[..1];
        assert_eq!(
            Shadow::new().check(ServerId(0), &node, durable, 0, true),
            Some(RecoveryViolation::AppliedNotDurable {
                server: ServerId(0),
                applied: Zxid(2),
                durable: Zxid(1)
            })
        );
        assert_eq!(Shadow::new().check(ServerId(0), &node, durable, 0, false), None);
    }

    #[test]
    fn a_truncated_log_restarts_the_shadow() {
        let log = vec![create_txn(1, 0, 1, "/a", "x"), set_txn(2, 0, 2, "/a", "y", 1)];
        let mut shadow = Shadow::new();
        assert_eq!(shadow.check(ServerId(0), &tree_of(&log), &log, 0, true), None);
        let other = vec![log[0].clone(), set_txn(2, 1, 5, "/a", "q", 1)];
        assert_eq!(shadow.check(ServerId(0), &tree_of(&other), &other, 1, true), None);
    }
}
