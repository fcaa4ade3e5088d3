//! Recovery: from the files of a data directory to the state the core starts from, and the
//! purge plan that decides which files are no longer needed.
//!
//! Recovery picks the newest snapshot that decodes (falling back to an older one, with a
//! warning, when the newest is damaged), then replays, in order, the txns with a zxid above
//! the snapshot's from the segments that may hold them. It reads files lazily through a
//! callback, so a data directory with many large snapshots costs one snapshot read.
//!
//! It checks, and refuses to start on a violation of:
//! - every file decoding (a torn tail in the last segment is repaired instead, see `log`);
//! - each segment's header agreeing with its name, and zxids strictly increasing across
//!   segments;
//! - the replayed history continuing the snapshot with nothing missing: each zxid is the
//!   previous one's counter + 1 in the same epoch, or opens a newer epoch at counter 0 or 1
//!   (Zab's leaders number an epoch's proposals from 1). A hole means a purged or lost
//!   segment, or a snapshot that came from a leader (Zab SNAP) and is damaged, and
//!   replaying across it would build a tree that never existed.
//!
//! ZK compat: `FileTxnSnapLog.restore`, `FileSnap.deserialize` (newest valid snapshot first),
//! `FileTxnLog.getLogFiles` (the segment holding the snapshot zxid and every later one) and
//! `PurgeTxnLog.purgeOlderSnapshots` (retain N snapshots and the logs they need).

use std::collections::BTreeMap;

use bytes::Bytes;
use thiserror::Error;

use crate::core::ids::Zxid;
use crate::core::txn::Txn;
use crate::storage::epoch::{decode_epoch, EpochError};
use crate::storage::log::{scan_segment, LogError, SegmentTail};
use crate::storage::names::{parse_file_name, FileKind, ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
use crate::storage::snapshot::decode_snapshot;

/// What a read callback may fail with (the runtime passes `std::io::Error`).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// The state recovered from a data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The snapshot to load: the last zxid it covers and its body.
    pub snapshot: Option<(Zxid, Bytes)>,
    /// The txns after the snapshot, in zxid order, to apply on top of it.
    pub txns: Vec<Txn>,
    /// A repair the runtime must make before appending: cut the named segment to this many
    /// bytes. A length of 0 means the segment holds no txn and must be removed instead.
    pub truncate: Option<(String, u64)>,
    /// What was skipped or repaired, one sentence each, for the log.
    pub warnings: Vec<String>,
    /// The `acceptedEpoch` file, if present.
    pub accepted_epoch: Option<u32>,
    /// The `currentEpoch` file, if present.
    pub current_epoch: Option<u32>,
    /// Snapshots that did not decode. They are kept for inspection and never purged.
    pub damaged_snapshots: Vec<String>,
}

/// A data directory recovery refuses to start from.
#[derive(Debug, Error)]
pub enum RecoveryError {
    /// The callback could not read a file.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file's name.
        file: String,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// A segment is corrupt (the error names the offset).
    #[error("{file}: {source}")]
    Log {
        /// The segment's name.
        file: String,
        /// What is wrong at which offset.
        #[source]
        source: LogError,
    },
    /// An epoch file does not hold an epoch.
    #[error("{file}: {source}")]
    Epoch {
        /// The epoch file's name.
        file: String,
        /// What is wrong.
        #[source]
        source: EpochError,
    },
    /// A segment's header names another base zxid than its file name.
    #[error("{file}: header says base zxid {header}, the name says otherwise")]
    SegmentNameMismatch {
        /// The segment's name.
        file: String,
        /// The base zxid in its header.
        header: Zxid,
    },
    /// A segment's first txn is not after the previous segment's last.
    #[error(
        "{file}: txn {zxid} at offset {offset} is not after {prev}, the last txn of {prev_file}"
    )]
    ZxidNotIncreasing {
        /// The segment's name.
        file: String,
        /// Where its first record starts.
        offset: u64,
        /// The record's zxid.
        zxid: Zxid,
        /// The previous segment's last zxid.
        prev: Zxid,
        /// The previous segment's name.
        prev_file: String,
    },
    /// Txns are missing between `prev` (from the snapshot or an earlier record) and `zxid`.
    #[error(
        "{file}: txn {zxid} at offset {offset} does not continue {prev} (from {prev_source}): \
         txns are missing"
    )]
    ZxidGap {
        /// The segment's name.
        file: String,
        /// Where the record starts.
        offset: u64,
        /// The record's zxid.
        zxid: Zxid,
        /// The zxid it should continue.
        prev: Zxid,
        /// Where `prev` came from: a snapshot, a segment, or the empty initial tree.
        prev_source: String,
    },
}

impl RecoveryError {
    /// The name of the file the error is about.
    pub fn file(&self) -> &str {
        match self {
            RecoveryError::Read { file, .. }
            | RecoveryError::Log { file, .. }
            | RecoveryError::Epoch { file, .. }
            | RecoveryError::SegmentNameMismatch { file, .. }
            | RecoveryError::ZxidNotIncreasing { file, .. }
            | RecoveryError::ZxidGap { file, .. } => file,
        }
    }

    /// The byte offset in that file, when the error is about one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RecoveryError::Log { source, .. } => source.offset(),
            RecoveryError::SegmentNameMismatch { .. } => Some(0),
            RecoveryError::ZxidNotIncreasing { offset, .. }
            | RecoveryError::ZxidGap { offset, .. } => Some(*offset),
            RecoveryError::Read { .. } | RecoveryError::Epoch { .. } => None,
        }
    }
}

impl Recovered {
    /// The last zxid the recovered state reflects (zero for an empty directory).
    pub fn zxid_last(&self) -> Zxid {
        let snapshot = self.snapshot.as_ref().map_or(Zxid::ZERO, |(zxid, _)| *zxid);
        self.txns.last().map_or(snapshot, |txn| txn.zxid.max(snapshot))
    }
}

/// Recovers from the files named `names` (file names, not paths; names that are not ours are
/// ignored), reading each one it needs through `read`.
pub fn recover(
    names: &[String],
    mut read: impl FnMut(&str) -> Result<Bytes, ReadError>,
) -> Result<Recovered, RecoveryError> {
    let listing = Listing::parse(names);
    let mut read = |file: &str| {
        read(file).map_err(|source| RecoveryError::Read { file: file.to_owned(), source })
    };
    let mut recovered = Recovered::default();
    for (file, epoch) in [
        (ACCEPTED_EPOCH_FILE, &mut recovered.accepted_epoch),
        (CURRENT_EPOCH_FILE, &mut recovered.current_epoch),
    ] {
        if listing.epochs.contains(&file) {
            let bytes = read(file)?;
            let decoded = decode_epoch(&bytes)
                .map_err(|source| RecoveryError::Epoch { file: file.to_owned(), source })?;
            *epoch = Some(decoded);
        }
    }
    for &(zxid, file) in listing.snapshots.iter().rev() {
        let bytes = read(file)?;
        let problem = match decode_snapshot(&bytes) {
            Ok((found, body)) if found == zxid => {
                recovered.snapshot = Some((zxid, body));
                break;
            }
            Ok((found, _)) => format!("holds zxid {found}, not the one its name says"),
            Err(error) => error.to_string(),
        };
        recovered.warnings.push(format!("{file}: {problem}; falling back to an older snapshot"));
        recovered.damaged_snapshots.push(file.to_owned());
    }
    let snapshot_source = match &recovered.snapshot {
        Some((zxid, _)) => crate::storage::names::snapshot_file_name(*zxid),
        None => "the empty initial tree".to_owned(),
    };
    replay_segments(&listing, &snapshot_source, &mut read, &mut recovered)?;
    Ok(recovered)
}

/// `recover` over files already in memory, as `(name, contents)` pairs.
pub fn recover_files(files: &[(String, Bytes)]) -> Result<Recovered, RecoveryError> {
    let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    let contents: BTreeMap<&str, &Bytes> =
        files.iter().rev().map(|(name, bytes)| (name.as_str(), bytes)).collect();
    recover(&names, |name| {
        contents.get(name).map(|bytes| (*bytes).clone()).ok_or_else(|| "no such file".into())
    })
}

/// The files to delete so that the newest `retain_count` snapshots, and every segment that
/// may hold a txn newer than the oldest of them, remain. Only our files are ever named.
///
/// A segment is needed when it is the last one or the next segment's first zxid is above
/// the oldest kept snapshot's. Without snapshots nothing is purged (the log is all there
/// is), and `retain_count == 0` disables purging. Pass only snapshots known to be good
/// (leave out `Recovered::damaged_snapshots`), or a damaged one may be counted as kept.
///
/// ZK compat: `PurgeTxnLog.purgeOlderSnapshots`.
pub fn purge_plan(names: &[String], retain_count: usize) -> Vec<String> {
    let listing = Listing::parse(names);
    if retain_count == 0 || listing.snapshots.is_empty() {
        return Vec::new();
    }
    let kept_from = listing.snapshots.len().saturating_sub(retain_count);
    let oldest_kept = listing.snapshots[kept_from].0;
    let mut plan: Vec<String> =
        listing.snapshots[..kept_from].iter().map(|(_, file)| (*file).to_owned()).collect();
    for pair in listing.segments.windows(2) {
        if pair[1].0 <= oldest_kept {
            plan.push(pair[0].1.to_owned());
        }
    }
    plan.sort();
    plan
}

/// Our files among a directory listing, sorted by zxid.
struct Listing<'a> {
    /// Oldest first.
    snapshots: Vec<(Zxid, &'a str)>,
    /// Oldest first.
    segments: Vec<(Zxid, &'a str)>,
    /// The epoch files present.
    epochs: Vec<&'static str>,
}

impl<'a> Listing<'a> {
    fn parse(names: &'a [String]) -> Listing<'a> {
        let mut listing = Listing { snapshots: Vec::new(), segments: Vec::new(), epochs: vec![] };
        for name in names {
            match parse_file_name(name) {
                Some(FileKind::Snapshot(zxid)) => listing.snapshots.push((zxid, name)),
                Some(FileKind::Segment(zxid)) => listing.segments.push((zxid, name)),
                Some(FileKind::AcceptedEpoch) => listing.epochs.push(ACCEPTED_EPOCH_FILE),
                Some(FileKind::CurrentEpoch) => listing.epochs.push(CURRENT_EPOCH_FILE),
                Some(FileKind::Temp) | None => {}
            }
        }
        for files in [&mut listing.snapshots, &mut listing.segments] {
            files.sort_unstable();
            files.dedup_by_key(|(zxid, _)| *zxid);
        }
        listing
    }
}

/// Replays the segments that may hold txns after the recovered snapshot.
fn replay_segments(
    listing: &Listing<'_>,
    snapshot_source: &str,
    read: &mut impl FnMut(&str) -> Result<Bytes, RecoveryError>,
    recovered: &mut Recovered,
) -> Result<(), RecoveryError> {
    let from = recovered.snapshot.as_ref().map_or(Zxid::ZERO, |(zxid, _)| *zxid);
    let segments = &listing.segments;
    let first_needed = (0..segments.len())
        .find(|&i| segments.get(i + 1).is_none_or(|next| next.0 > from))
        .unwrap_or(segments.len());
    let mut seen_last: Option<(Zxid, &str)> = None;
    let mut replayed = (from, snapshot_source.to_owned());
    for (i, &(name_zxid, file)) in segments.iter().enumerate().skip(first_needed) {
        let is_last = i + 1 == segments.len();
        let bytes = read(file)?;
        let scan = scan_segment(&bytes, is_last)
            .map_err(|source| RecoveryError::Log { file: file.to_owned(), source })?;
        if let Some(header) = scan.base.filter(|&base| base != name_zxid) {
            return Err(RecoveryError::SegmentNameMismatch { file: file.to_owned(), header });
        }
        if let (Some(first), Some((prev, prev_file))) = (scan.txns.first(), seen_last) {
            if first.zxid <= prev {
                return Err(RecoveryError::ZxidNotIncreasing {
                    file: file.to_owned(),
                    offset: scan.offsets[0],
                    zxid: first.zxid,
                    prev,
                    prev_file: prev_file.to_owned(),
                });
            }
        }
        if is_last && scan.txns.is_empty() {
            recovered.truncate = Some((file.to_owned(), 0));
            recovered.warnings.push(format!("{file}: holds no txn; removing it"));
        } else if scan.tail == SegmentTail::Torn {
            let dropped = bytes.len() as u64 - scan.valid_len;
            recovered.truncate = Some((file.to_owned(), scan.valid_len));
            recovered.warnings.push(format!(
                "{file}: torn tail at offset {} ({dropped} bytes of an unsynced write); \
                 truncating",
                scan.valid_len
            ));
        }
        if let Some(last) = scan.txns.last() {
            seen_last = Some((last.zxid, file));
        }
        for (txn, &offset) in scan.txns.into_iter().zip(&scan.offsets) {
            if txn.zxid <= from {
                continue;
            }
            if !continues(replayed.0, txn.zxid) {
                return Err(RecoveryError::ZxidGap {
                    file: file.to_owned(),
                    offset,
                    zxid: txn.zxid,
                    prev: replayed.0,
                    prev_source: replayed.1,
                });
            }
            replayed = (txn.zxid, file.to_owned());
            recovered.txns.push(txn);
        }
    }
    Ok(())
}

/// Whether `next` can directly follow `prev` in a Zab history.
fn continues(prev: Zxid, next: Zxid) -> bool {
    if next.epoch() == prev.epoch() {
        next.0 == prev.0 + 1
    } else {
        next.epoch() > prev.epoch() && next.counter() <= 1
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use proptest::prelude::*;

    use super::*;
    use crate::core::ids::SessionId;
    use crate::core::txn::TxnOp;
    use crate::storage::epoch::encode_epoch;
    use crate::storage::log::tests::segment;
    use crate::storage::log::SEGMENT_HEADER_LEN;
    use crate::storage::names::{segment_file_name, snapshot_file_name};
    use crate::storage::snapshot::encode_snapshot;

    fn txn(epoch: u32, counter: u32) -> Txn {
        Txn {
            zxid: Zxid::new(epoch, counter),
            session: SessionId(1),
            cxid: counter as i32,
            time_ms: 0,
            op: TxnOp::SetData { path: "/a".into(), data: None, version: counter as i32 },
        }
    }

    fn history(epoch: u32, counters: std::ops::RangeInclusive<u32>) -> Vec<Txn> {
        counters.map(|counter| txn(epoch, counter)).collect()
    }

    fn seg(txns: &[Txn]) -> (String, Bytes) {
        (segment_file_name(txns[0].zxid), Bytes::from(segment(txns).0))
    }

    fn snap(zxid: Zxid) -> (String, Bytes) {
        (snapshot_file_name(zxid), Bytes::from(encode_snapshot(zxid, &zxid.0.to_be_bytes())))
    }

    fn zxids(txns: &[Txn]) -> Vec<Zxid> {
        txns.iter().map(|txn| txn.zxid).collect()
    }

    #[test]
    fn empty_directory_recovers_nothing() {
        let files = vec![("myid".to_owned(), Bytes::from_static(b"1"))];
        assert_eq!(recover_files(&files).expect("empty"), Recovered::default());
    }

    #[test]
    fn replays_only_txns_after_the_newest_snapshot_reading_only_needed_files() {
        let all = history(1, 1..=30);
        let files = [
            seg(&all[0..10]),
            seg(&all[10..20]),
            seg(&all[20..30]),
            snap(Zxid::new(1, 5)),
            snap(Zxid::new(1, 12)),
            (ACCEPTED_EPOCH_FILE.to_owned(), Bytes::from(encode_epoch(1))),
            (CURRENT_EPOCH_FILE.to_owned(), Bytes::from(encode_epoch(1))),
        ];
        let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
        let reads = RefCell::new(Vec::new());
        let recovered = recover(&names, |name| {
            reads.borrow_mut().push(name.to_owned());
            Ok(files.iter().find(|(n, _)| n == name).expect("listed").1.clone())
        })
        .expect("recovers");
        assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, 12)));
        assert_eq!(recovered.txns, all[12..]);
        assert_eq!(recovered.zxid_last(), Zxid::new(1, 30));
        assert_eq!((recovered.accepted_epoch, recovered.current_epoch), (Some(1), Some(1)));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        let reads = reads.into_inner();
        assert!(!reads.contains(&files[0].0), "the first segment is not needed: {reads:?}");
        assert!(!reads.contains(&files[3].0), "the older snapshot is not needed: {reads:?}");
    }

    #[test]
    fn falls_back_to_an_older_snapshot_when_the_newest_is_damaged() {
        let all = history(2, 1..=20);
        let mut damaged = snap(Zxid::new(2, 15));
        damaged.1 = damaged.1.slice(..damaged.1.len() - 1);
        let misnamed = (snapshot_file_name(Zxid::new(2, 18)), snap(Zxid::new(2, 17)).1);
        let files = vec![seg(&all[..]), snap(Zxid::new(2, 4)), damaged, misnamed];
        let recovered = recover_files(&files).expect("falls back");
        assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(2, 4)));
        assert_eq!(recovered.txns, all[4..]);
        assert_eq!(recovered.damaged_snapshots, [files[3].0.clone(), files[2].0.clone()]);
        assert_eq!(recovered.warnings.len(), 2, "{:?}", recovered.warnings);
    }

    #[test]
    fn a_torn_last_segment_is_truncated_and_an_empty_one_removed() {
        let all = history(1, 1..=6);
        let (mut bytes, offsets) = segment(&all[3..]);
        bytes.truncate(bytes.len() - 2);
        let last = segment_file_name(all[3].zxid);
        let files = vec![seg(&all[..3]), (last.clone(), Bytes::from(bytes))];
        let recovered = recover_files(&files).expect("torn tail");
        assert_eq!(recovered.txns, all[..5]);
        assert_eq!(recovered.truncate, Some((last, offsets[2])));
        assert_eq!(recovered.warnings.len(), 1);

        let (bytes, _) = segment(&all[3..4]);
        let empty = segment_file_name(all[3].zxid);
        let files = vec![seg(&all[..3]), (empty.clone(), Bytes::copy_from_slice(&bytes[..30]))];
        let recovered = recover_files(&files).expect("torn first record");
        assert_eq!(recovered.txns, all[..3]);
        assert_eq!(recovered.truncate, Some((empty, 0)));
    }

    #[test]
    fn corruption_names_file_and_offset() {
        let all = history(1, 1..=9);
        let (mut bytes, offsets) = segment(&all[3..6]);
        bytes[offsets[1] as usize + 20] ^= 0x40;
        let middle = segment_file_name(all[3].zxid);
        let files = vec![seg(&all[..3]), (middle.clone(), Bytes::from(bytes)), seg(&all[6..])];
        let error = recover_files(&files).expect_err("corrupt");
        assert_eq!((error.file(), error.offset()), (middle.as_str(), Some(offsets[1])));
        assert!(error.to_string().contains(&format!("offset {}", offsets[1])), "{error}");

        // A torn tail anywhere but in the last segment is corruption too.
        let (bytes, offsets) = segment(&all[3..6]);
        let cut = Bytes::copy_from_slice(&bytes[..bytes.len() - 1]);
        let files = vec![seg(&all[..3]), (middle.clone(), cut), seg(&all[6..])];
        let error = recover_files(&files).expect_err("damaged middle");
        assert_eq!((error.file(), error.offset()), (middle.as_str(), Some(offsets[2])));
    }

    #[test]
    fn detects_missing_and_backward_txns() {
        let all = history(1, 1..=9);
        // A missing middle segment.
        let files = vec![seg(&all[..3]), seg(&all[6..])];
        let error = recover_files(&files).expect_err("gap");
        assert!(matches!(error, RecoveryError::ZxidGap { zxid, .. } if zxid == all[6].zxid));
        // A snapshot not bridged by the log.
        let files = vec![snap(Zxid::new(1, 2)), seg(&all[4..])];
        let error = recover_files(&files).expect_err("gap after snapshot");
        assert!(error.to_string().contains("snapshot.0000000100000002"), "{error}");
        // No snapshot and a log that does not start at the beginning.
        let error = recover_files(&[seg(&all[1..])]).expect_err("gap from empty");
        assert!(matches!(error, RecoveryError::ZxidGap { prev: Zxid::ZERO, .. }), "{error}");
        // Overlapping segments.
        let files = vec![seg(&all[..5]), seg(&all[3..])];
        let error = recover_files(&files).expect_err("backwards");
        assert!(matches!(error, RecoveryError::ZxidNotIncreasing { .. }), "{error}");
        // A segment renamed.
        let files = vec![(segment_file_name(Zxid::new(1, 1)), seg(&all[2..]).1)];
        let error = recover_files(&files).expect_err("misnamed");
        assert!(matches!(error, RecoveryError::SegmentNameMismatch { .. }), "{error}");
    }

    #[test]
    fn new_epochs_continue_the_history() {
        let mut all = history(1, 1..=3);
        all.extend(history(3, 1..=2));
        all.extend(history(4, 0..=1));
        let recovered = recover_files(&[seg(&all[..4]), seg(&all[4..])]).expect("continues");
        assert_eq!(zxids(&recovered.txns), zxids(&all));
        // SNAP from a leader: a snapshot ahead of the stale log, then the leader's txns.
        let files =
            vec![seg(&history(1, 1..=3)), snap(Zxid::new(2, 40)), seg(&history(2, 41..=42))];
        let recovered = recover_files(&files).expect("snapshot bridges");
        assert_eq!(zxids(&recovered.txns), [Zxid::new(2, 41), Zxid::new(2, 42)]);
        // An epoch change that skips counters means txns are missing.
        let mut holey = history(1, 1..=3);
        holey.extend(history(2, 5..=6));
        assert!(recover_files(&[seg(&holey)]).is_err());
    }

    #[test]
    fn bad_epoch_files_are_errors_and_foreign_files_are_ignored() {
        let files = vec![
            (CURRENT_EPOCH_FILE.to_owned(), Bytes::from_static(b"x")),
            ("zoo.cfg".to_owned(), Bytes::from_static(b"tickTime=2000")),
        ];
        let error = recover_files(&files).expect_err("bad epoch");
        assert_eq!(error.file(), CURRENT_EPOCH_FILE);
        let files = vec![
            ("snapshot.0000000000000001.tmp".to_owned(), Bytes::from_static(b"partial")),
            ("log.1".to_owned(), Bytes::from_static(b"zookeeper's")),
        ];
        assert_eq!(recover_files(&files).expect("ignored"), Recovered::default());
    }

    #[test]
    fn purge_keeps_retained_snapshots_and_the_segments_they_need() {
        let names: Vec<String> = [
            segment_file_name(Zxid(1)),
            segment_file_name(Zxid(10)),
            segment_file_name(Zxid(20)),
            segment_file_name(Zxid(30)),
            snapshot_file_name(Zxid(9)),
            snapshot_file_name(Zxid(19)),
            snapshot_file_name(Zxid(25)),
            snapshot_file_name(Zxid(35)),
            "myid".to_owned(),
        ]
        .into();
        // Keeping snapshots 19, 25, 35: log.10 may hold 19 and later; log.1 cannot.
        assert_eq!(
            purge_plan(&names, 3),
            [segment_file_name(Zxid(1)), snapshot_file_name(Zxid(9))]
        );
        assert_eq!(
            purge_plan(&names, 1),
            [
                segment_file_name(Zxid(1)),
                segment_file_name(Zxid(10)),
                segment_file_name(Zxid(20)),
                snapshot_file_name(Zxid(9)),
                snapshot_file_name(Zxid(19)),
                snapshot_file_name(Zxid(25)),
            ]
        );
        assert!(purge_plan(&names, 0).is_empty());
        assert!(purge_plan(&names[..4], 1).is_empty(), "without snapshots the log is all");
    }

    /// A history of `count` txns in epoch 1, split into segments at `cuts`, with snapshots at
    /// `snaps` (counters).
    fn directory(count: u32, cuts: &[u32], snaps: &[u32]) -> Vec<(String, Bytes)> {
        let all = history(1, 1..=count);
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c as usize).collect();
        bounds.extend([0, all.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut files: Vec<_> = bounds.windows(2).map(|b| seg(&all[b[0]..b[1]])).collect();
        files.extend(snaps.iter().map(|&counter| snap(Zxid::new(1, counter))));
        files
    }

    proptest! {
        #[test]
        fn purging_never_changes_what_recovery_finds(
            count in 1u32..40,
            cuts in proptest::collection::vec(1u32..40, 0..6),
            snaps in proptest::collection::btree_set(0u32..40, 0..6),
            retain in 1usize..4,
        ) {
            let cuts: Vec<u32> = cuts.into_iter().filter(|&c| c < count).collect();
            let snaps: Vec<u32> = snaps.into_iter().filter(|&s| s <= count).collect();
            let files = directory(count, &cuts, &snaps);
            let before = recover_files(&files).expect("complete directory");
            let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
            let plan = purge_plan(&names, retain);
            let kept: Vec<(String, Bytes)> =
                files.iter().filter(|(name, _)| !plan.contains(name)).cloned().collect();
            prop_assert_eq!(&recover_files(&kept).expect("purged directory"), &before);
            // Every kept snapshot can still be the one recovery falls back to.
            let kept_snaps = snaps.len().min(retain);
            prop_assert_eq!(plan.iter().filter(|n| n.starts_with("snapshot.")).count(), snaps.len() - kept_snaps);
            if let Some(&oldest) = snaps.iter().rev().nth(kept_snaps.saturating_sub(1)) {
                let oldest_name = snapshot_file_name(Zxid::new(1, oldest));
                let only_oldest: Vec<(String, Bytes)> = kept
                    .iter()
                    .filter(|(name, _)| !name.starts_with("snapshot.") || *name == oldest_name)
                    .cloned()
                    .collect();
                let fallback = recover_files(&only_oldest).expect("oldest kept snapshot suffices");
                prop_assert_eq!(fallback.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, oldest)));
                prop_assert_eq!(fallback.zxid_last(), Zxid::new(1, count));
            }
        }

        #[test]
        fn arbitrary_files_never_panic(
            files in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("log.0000000000000001".to_owned()),
                        Just("log.0000000100000001".to_owned()),
                        Just("snapshot.0000000000000005".to_owned()),
                        Just(ACCEPTED_EPOCH_FILE.to_owned()),
                        Just(CURRENT_EPOCH_FILE.to_owned()),
                    ],
                    proptest::collection::vec(any::<u8>(), 0..128),
                ),
                0..6,
            ),
            header: bool,
        ) {
            let files: Vec<(String, Bytes)> = files
                .into_iter()
                .map(|(name, mut bytes)| {
                    if header && name.starts_with("log.") {
                        let mut prefixed = segment(&[txn(0, 1)]).0[..SEGMENT_HEADER_LEN].to_vec();
                        prefixed.append(&mut bytes);
                        bytes = prefixed;
                    }
                    (name, Bytes::from(bytes))
                })
                .collect();
            if let Ok(recovered) = recover_files(&files) {
                prop_assert!(recovered.txns.windows(2).all(|w| w[0].zxid < w[1].zxid));
            }
        }
    }
}
