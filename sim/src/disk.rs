//! The disk of one node: writes are pending until a simulated fsync covers them.
//!
//! The node asks for durable writes (`Effect::Write`) with strictly increasing ids. The disk
//! queues them; when no fsync is running it starts one that covers *everything pending at that
//! moment* (group commit, like the runtime's writer and ZooKeeper's `SyncRequestProcessor`),
//! and when it completes the driver reports `Input::Persisted { up_to }`. A crash drops every
//! write no fsync has completed for. With probability `crash_keep_unsynced` the OS had already
//! flushed some of them: a random prefix (in id order) survives. A torn last record is modelled
//! as simply losing it, since the storage layer's torn-tail handling is tested on its own; the
//! log the node recovers from therefore always ends at a whole write.
//!
//! Durable state is what `Node::recover` reads back: the latest snapshot, every logged txn (the
//! simulator keeps the full log, so checkers can replay it from the start), and the epochs.
//!
//! For the checkers the disk also answers "which txns make up this node's history": its log,
//! except below a snapshot that a leader sent it (SNAP), where the history is the sender's —
//! the driver hands those txns over ([`Disk::snapped`]) — and the node's own older log
//! entries there no longer count.

use std::collections::VecDeque;

use bytes::Bytes;
use ensemble::core::ids::{WriteId, Zxid};
use ensemble::core::io::DurableWrite;
use ensemble::core::snapshot::SnapshotImage;
use ensemble::core::tree::TreeImage;
use ensemble::core::txn::Txn;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Snapshots kept on disk (ZooKeeper keeps the last few too; `Truncate` may need an older one).
const SNAPSHOTS_KEPT: usize = 3;

/// One node's disk.
#[derive(Debug, Default)]
pub struct Disk {
    pending: VecDeque<(WriteId, DurableWrite)>,
    syncing_up_to: Option<WriteId>,
    submitted_last: Option<WriteId>,
    durable: Durable,
    /// The history a snapshot from a leader (SNAP) stands for: its zxid and the sender's txns
    /// up to it, above what was committed when it was installed.
    snapped: Option<(Zxid, Vec<Txn>)>,
    /// Restarts so far (which decides how the next one reads its snapshot).
    restarts: u64,
    /// The tree the node last recovered to, while the durable state it came from is still
    /// there (see [`Disk::checkpoint`]).
    checkpoint: Option<Checkpoint>,
}

/// A recovered tree, and the durable state it was recovered from.
#[derive(Debug)]
struct Checkpoint {
    tree: TreeImage,
    log_generation: u64,
    snapshot_writes: u64,
}

/// Restarts between two that read the snapshot back as bytes (see [`Disk::recovery`]).
pub const BYTES_RESTORE_EVERY: u64 = 4;

/// The snapshot a restarting node reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Encoded, as a server reads its file: the node decodes it.
    Bytes(Bytes),
    /// The image the disk kept: the node restores its tree from it directly.
    Image(SnapshotImage),
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// Snapshots, oldest first: (last zxid covered, image). Kept as the node's frozen image
    /// and encoded only when a restart reads one back (the same bytes a server writes).
    pub snapshots: Vec<(Zxid, SnapshotImage)>,
    /// Every logged txn, in log order (zxid order unless the node misbehaves).
    pub txns: Vec<Txn>,
    /// The last `AcceptedEpoch` write.
    pub accepted_epoch: Option<u32>,
    /// The last `CurrentEpoch` write.
    pub current_epoch: Option<u32>,
    /// Bumped by every `Truncate`, so followers of the log know to start over.
    pub log_generation: u64,
    /// Snapshots made durable so far.
    pub snapshot_writes: u64,
}

/// What a crash did to the pending writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashLoss {
    /// Unsynced writes that reached the platter anyway.
    pub kept: u32,
    /// Unsynced writes that were lost.
    pub lost: u32,
}

/// A write the node issued that breaks the disk's contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// Write ids must increase strictly within one life of a node.
    #[error("write id {id:?} does not follow {previous:?}")]
    IdOutOfOrder {
        /// The offending id.
        id: WriteId,
        /// The last id before it.
        previous: WriteId,
    },
    /// Logged txns must have increasing zxids.
    #[error("append of {zxid} after {previous}")]
    AppendOutOfOrder {
        /// The offending txn.
        zxid: Zxid,
        /// The last logged txn.
        previous: Zxid,
    },
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Queues a write until an fsync covers it.
    pub fn submit(&mut self, id: WriteId, write: DurableWrite) -> Result<(), DiskError> {
        if let Some(previous) = self.submitted_last {
            if id <= previous {
                return Err(DiskError::IdOutOfOrder { id, previous });
            }
        }
        self.submitted_last = Some(id);
        if let (DurableWrite::Truncate { after }, Some((zxid, txns))) = (&write, &mut self.snapped)
        {
            if *after < *zxid {
                txns.retain(|t| t.zxid <= *after);
                *zxid = *after;
            }
        }
        self.pending.push_back((id, write));
        Ok(())
    }

    /// The snapshot at `zxid` just submitted came from a leader (SNAP): below it, the node's
    /// history is the sender's, whose txns above the committed history are `txns`.
    pub fn snapped(&mut self, zxid: Zxid, txns: Vec<Txn>) {
        self.snapped = Some((zxid, txns));
    }

    /// Starts an fsync if none is running and something is pending; returns the last write it
    /// covers. The driver schedules its completion.
    pub fn start_sync(&mut self) -> Option<WriteId> {
        if self.syncing_up_to.is_some() {
            return None;
        }
        let (last, _) = self.pending.back()?;
        self.syncing_up_to = Some(*last);
        Some(*last)
    }

    /// The running fsync covering `up_to` completed: those writes are durable.
    pub fn sync_done(&mut self, up_to: WriteId) -> Result<(), DiskError> {
        debug_assert_eq!(self.syncing_up_to, Some(up_to));
        self.syncing_up_to = None;
        while self.pending.front().is_some_and(|(id, _)| *id <= up_to) {
            let (_, write) = self.pending.pop_front().expect("front exists");
            self.durable.apply(write)?;
        }
        Ok(())
    }

    /// The process died: unsynced writes are lost, except a random prefix with probability
    /// `keep_unsynced`. Write ids start over with the next life.
    pub fn crash(
        &mut self,
        rng: &mut ChaCha8Rng,
        keep_unsynced: f64,
    ) -> Result<CrashLoss, DiskError> {
        let total = self.pending.len();
        let kept = if total > 0 && keep_unsynced > 0.0 && rng.gen_bool(keep_unsynced) {
            rng.gen_range(1..=total)
        } else {
            0
        };
        for (_, write) in self.pending.drain(..kept) {
            self.durable.apply(write)?;
        }
        self.pending.clear();
        self.syncing_up_to = None;
        self.submitted_last = None;
        if let Some((zxid, _)) = &self.snapped {
            if !self.durable.snapshots.iter().any(|(z, _)| z == zxid) {
                self.snapped = None; // the snapshot was lost: the node's own log is its history
            }
        }
        Ok(CrashLoss { kept: kept as u32, lost: (total - kept) as u32 })
    }

    /// What a restarting node reads back: the latest snapshot and the txns after it. The
    /// snapshot comes as the bytes a server would read (encoded, to be decoded) on this
    /// disk's first restart and every [`BYTES_RESTORE_EVERY`]th after it, and as the image
    /// itself otherwise: encoding and decoding a tree twice per restart was a fifth of the
    /// heaviest seeds, and the bytes path stays exercised on every seed that restarts a node.
    pub fn recovery(&mut self) -> (Option<Recovery>, Vec<Txn>) {
        let bytes = self.restarts.is_multiple_of(BYTES_RESTORE_EVERY);
        self.restarts += 1;
        let snapshot = self.durable.snapshots.last();
        let after = snapshot.map_or(Zxid::ZERO, |(zxid, _)| *zxid);
        let start = self.durable.txns.partition_point(|t| t.zxid <= after);
        let snapshot = snapshot.map(|(_, image)| match bytes {
            true => Recovery::Bytes(image.encode()),
            false => Recovery::Image(image.clone()),
        });
        (snapshot, self.durable.txns[start..].to_vec())
    }

    /// The tree the node recovered to at its last restart, if this restart reads the same
    /// snapshot and a log that only grew since (no truncation): that tree is what replaying
    /// the log up to its zxid gives again, so only the txns after it need applying. The
    /// restart that reads the snapshot as bytes replays the whole log instead.
    pub fn checkpoint(&self) -> Option<TreeImage> {
        let checkpoint = self.checkpoint.as_ref()?;
        let same = checkpoint.log_generation == self.durable.log_generation
            && checkpoint.snapshot_writes == self.durable.snapshot_writes;
        same.then(|| checkpoint.tree.clone())
    }

    /// Keeps the tree the node just recovered to (from the durable state as it is now).
    pub fn set_checkpoint(&mut self, tree: TreeImage) {
        self.checkpoint = Some(Checkpoint {
            tree,
            log_generation: self.durable.log_generation,
            snapshot_writes: self.durable.snapshot_writes,
        });
    }

    /// The durable state.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Writes submitted and not yet durable.
    pub fn pending(&self) -> impl Iterator<Item = &(WriteId, DurableWrite)> {
        self.pending.iter()
    }

    /// The txns of the node's history (durable or pending, truncations applied) with zxid in
    /// `(after, up_to]`, in zxid order: below a snapshot a leader sent, the sender's txns
    /// (those handed over), above it the node's log.
    pub fn logged_between(&self, after: Zxid, up_to: Zxid) -> Vec<Txn> {
        let Some((snapped, given)) = &self.snapped else {
            return self.log_between(after, up_to);
        };
        let mut txns: Vec<Txn> =
            given.iter().filter(|t| t.zxid > after && t.zxid <= up_to).cloned().collect();
        if up_to > *snapped {
            txns.extend(self.log_between(after.max(*snapped), up_to));
        }
        txns
    }

    /// The txns of the node's own log in `(after, up_to]`.
    fn log_between(&self, after: Zxid, up_to: Zxid) -> Vec<Txn> {
        let start = self.durable.txns.partition_point(|t| t.zxid <= after);
        let mut txns: Vec<Txn> =
            self.durable.txns[start..].iter().take_while(|t| t.zxid <= up_to).cloned().collect();
        for (_, write) in &self.pending {
            match write {
                DurableWrite::Append(txn) if txn.zxid > after && txn.zxid <= up_to => {
                    txns.retain(|t| t.zxid < txn.zxid);
                    txns.push(txn.clone());
                }
                DurableWrite::Truncate { after: keep } => txns.retain(|t| t.zxid <= *keep),
                _ => {}
            }
        }
        txns
    }

    /// The txn at `zxid` in the node's log (durable or pending), if any.
    pub fn logged_at(&self, zxid: Zxid) -> Option<Txn> {
        let before = Zxid(zxid.0.saturating_sub(1));
        self.logged_between(before, zxid).pop().filter(|t| t.zxid == zxid)
    }

    /// Whether an fsync is running.
    pub fn is_syncing(&self) -> bool {
        self.syncing_up_to.is_some()
    }
}

impl Durable {
    fn apply(&mut self, write: DurableWrite) -> Result<(), DiskError> {
        match write {
            DurableWrite::Append(txn) => {
                if let Some(previous) = self.txns.last() {
                    if txn.zxid <= previous.zxid {
                        return Err(DiskError::AppendOutOfOrder {
                            zxid: txn.zxid,
                            previous: previous.zxid,
                        });
                    }
                }
                self.txns.push(txn);
            }
            // Periodic and SNAP snapshots alike are durable in order here: the simulated disk
            // makes no use of the freedom a periodic one has.
            DurableWrite::Snapshot { zxid, image, .. } => {
                self.snapshots.push((zxid, image));
                self.snapshot_writes += 1;
                if self.snapshots.len() > SNAPSHOTS_KEPT {
                    self.snapshots.remove(0);
                }
            }
            DurableWrite::Truncate { after } => {
                self.txns.retain(|t| t.zxid <= after);
                self.snapshots.retain(|(zxid, _)| *zxid <= after);
                self.log_generation += 1;
            }
            DurableWrite::AcceptedEpoch(epoch) => self.accepted_epoch = Some(epoch),
            DurableWrite::CurrentEpoch(epoch) => self.current_epoch = Some(epoch),
        }
        Ok(())
    }

    /// The logged txn with this zxid.
    pub fn txn(&self, zxid: Zxid) -> Option<&Txn> {
        let at = self.txns.partition_point(|t| t.zxid < zxid);
        self.txns.get(at).filter(|t| t.zxid == zxid)
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::ids::SessionId;
    use ensemble::core::txn::TxnOp;
    use rand::SeedableRng;

    use super::*;

    fn append(zxid: u64) -> DurableWrite {
        DurableWrite::Append(Txn {
            zxid: Zxid(zxid),
            session: SessionId(1),
            cxid: zxid as i32,
            time_ms: 0,
            op: TxnOp::Delete { path: format!("/n{zxid}") },
        })
    }

    fn image(zxid: u64) -> SnapshotImage {
        SnapshotImage::new(Zxid(zxid), &ensemble::core::tree::DataTree::new(), Vec::new())
    }

    fn snapshot(image: &SnapshotImage) -> DurableWrite {
        DurableWrite::Snapshot { zxid: image.zxid(), image: image.clone(), background: true }
    }

    fn zxids(disk: &Disk) -> Vec<u64> {
        disk.durable().txns.iter().map(|t| t.zxid.0).collect()
    }

    #[test]
    fn an_fsync_covers_what_was_pending_when_it_started() {
        let mut disk = Disk::new();
        disk.submit(WriteId(1), append(1)).unwrap();
        disk.submit(WriteId(2), append(2)).unwrap();
        assert_eq!(disk.start_sync(), Some(WriteId(2)));
        disk.submit(WriteId(3), append(3)).unwrap();
        assert_eq!(disk.start_sync(), None, "one fsync at a time");
        disk.sync_done(WriteId(2)).unwrap();
        assert_eq!(zxids(&disk), vec![1, 2]);
        assert_eq!(disk.start_sync(), Some(WriteId(3)));
    }

    #[test]
    fn a_crash_loses_unsynced_writes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut disk = Disk::new();
        disk.submit(WriteId(1), append(1)).unwrap();
        disk.start_sync();
        disk.sync_done(WriteId(1)).unwrap();
        disk.submit(WriteId(2), append(2)).unwrap();
        disk.start_sync();
        disk.submit(WriteId(3), append(3)).unwrap();
        let loss = disk.crash(&mut rng, 0.0).unwrap();
        assert_eq!(loss, CrashLoss { kept: 0, lost: 2 });
        assert_eq!(zxids(&disk), vec![1]);
        // The next life numbers its writes from 1 again.
        disk.submit(WriteId(1), append(2)).unwrap();
    }

    #[test]
    fn a_crash_may_keep_a_prefix_of_unsynced_writes() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = Disk::new();
            for id in 1..=3 {
                disk.submit(WriteId(id), append(id)).unwrap();
            }
            let loss = disk.crash(&mut rng, 0.5).unwrap();
            assert_eq!(loss.kept + loss.lost, 3);
            let kept = zxids(&disk);
            assert_eq!(kept, (1..=loss.kept as u64).collect::<Vec<_>>(), "a prefix survives");
            seen.insert(loss.kept);
        }
        assert_eq!(seen.len(), 4, "0, 1, 2 and 3 kept writes all happen: {seen:?}");
    }

    #[test]
    fn recovery_reads_the_latest_snapshot_and_the_txns_after_it() {
        let mut disk = Disk::new();
        for id in 1..=4 {
            disk.submit(WriteId(id), append(id)).unwrap();
        }
        let image = image(2);
        disk.submit(WriteId(5), snapshot(&image)).unwrap();
        disk.start_sync();
        disk.sync_done(WriteId(5)).unwrap();
        let (snapshot, txns) = disk.recovery();
        assert_eq!(snapshot, Some(Recovery::Bytes(image.encode())));
        assert_eq!(txns.iter().map(|t| t.zxid.0).collect::<Vec<_>>(), vec![3, 4]);
        // Later restarts get the image itself, and every `BYTES_RESTORE_EVERY`th the bytes.
        for restart in 1..=2 * BYTES_RESTORE_EVERY {
            let expected = match restart % BYTES_RESTORE_EVERY {
                0 => Recovery::Bytes(image.encode()),
                _ => Recovery::Image(image.clone()),
            };
            assert_eq!(disk.recovery().0, Some(expected));
        }
    }

    #[test]
    fn truncate_drops_later_txns_and_snapshots() {
        let mut disk = Disk::new();
        for id in 1..=4 {
            disk.submit(WriteId(id), append(id)).unwrap();
        }
        disk.submit(WriteId(5), snapshot(&image(3))).unwrap();
        disk.submit(WriteId(6), DurableWrite::Truncate { after: Zxid(2) }).unwrap();
        disk.submit(WriteId(7), DurableWrite::AcceptedEpoch(4)).unwrap();
        disk.start_sync();
        disk.sync_done(WriteId(7)).unwrap();
        assert_eq!(zxids(&disk), vec![1, 2]);
        assert!(disk.durable().snapshots.is_empty());
        assert_eq!(disk.durable().accepted_epoch, Some(4));
    }

    #[test]
    fn the_logged_view_includes_pending_writes_and_truncations() {
        let mut disk = Disk::new();
        for id in 1..=3 {
            disk.submit(WriteId(id), append(id)).unwrap();
        }
        disk.start_sync();
        disk.sync_done(WriteId(3)).unwrap();
        disk.submit(WriteId(4), DurableWrite::Truncate { after: Zxid(1) }).unwrap();
        disk.submit(WriteId(5), append(5)).unwrap();
        let zxids: Vec<u64> =
            disk.logged_between(Zxid(0), Zxid(9)).iter().map(|t| t.zxid.0).collect();
        assert_eq!(zxids, vec![1, 5]);
        assert_eq!(disk.logged_at(Zxid(2)), None);
        assert_eq!(disk.logged_at(Zxid(5)).map(|t| t.zxid), Some(Zxid(5)));
    }

    #[test]
    fn below_a_leaders_snapshot_the_history_is_the_senders() {
        let mut disk = Disk::new();
        for id in 1..=3 {
            disk.submit(WriteId(id), append(id)).unwrap();
        }
        disk.start_sync();
        disk.sync_done(WriteId(3)).unwrap();
        // SNAP at 5: the node keeps its own 1..3 in the log, but its history is the sender's.
        let theirs = |zxid: u64| match append(zxid) {
            DurableWrite::Append(txn) => Txn { cxid: 100, ..txn },
            _ => unreachable!(),
        };
        disk.submit(WriteId(4), DurableWrite::Truncate { after: Zxid(5) }).unwrap();
        disk.submit(WriteId(5), snapshot(&image(5))).unwrap();
        disk.snapped(Zxid(5), vec![theirs(3), theirs(5)]);
        disk.submit(WriteId(6), append(6)).unwrap();
        let history = |disk: &Disk| -> Vec<(u64, i32)> {
            disk.logged_between(Zxid(1), Zxid(9)).iter().map(|t| (t.zxid.0, t.cxid)).collect()
        };
        assert_eq!(history(&disk), vec![(3, 100), (5, 100), (6, 6)]);
        assert_eq!(disk.logged_at(Zxid(2)), None);
        // A later TRUNC below the snapshot cuts the sender's part too.
        disk.submit(WriteId(7), DurableWrite::Truncate { after: Zxid(4) }).unwrap();
        assert_eq!(history(&disk), vec![(3, 100)]);
        // A crash that loses the snapshot leaves the node's own log as its history.
        disk.crash(&mut ChaCha8Rng::seed_from_u64(1), 0.0).unwrap();
        assert_eq!(history(&disk), vec![(2, 2), (3, 3)]);
    }

    #[test]
    fn out_of_order_writes_are_reported() {
        let mut disk = Disk::new();
        disk.submit(WriteId(2), append(5)).unwrap();
        assert!(matches!(disk.submit(WriteId(2), append(6)), Err(DiskError::IdOutOfOrder { .. })));
        disk.submit(WriteId(3), append(4)).unwrap();
        disk.start_sync();
        assert!(matches!(disk.sync_done(WriteId(3)), Err(DiskError::AppendOutOfOrder { .. })));
    }
}
