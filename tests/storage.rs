//! Integration tests of `runtime::disk` over real temporary directories (`FileDisk`) and the
//! in-memory crash model (`MemDisk`): restart, torn tails, snapshots and purging,
//! truncation, group commit, failure reporting, and crash consistency.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use ensemble::core::ids::{SessionId, WriteId, Zxid};
use ensemble::core::io::DurableWrite;
use ensemble::core::snapshot::SnapshotImage;
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::runtime::disk::{
    recover, spawn_writer, Disk, DiskConfig, DiskError, FileDisk, FileSystem, MemDisk, WriterError,
};
use ensemble::storage::names::{segment_file_name, snapshot_file_name};
use ensemble::wire::types::Acl;
use proptest::prelude::*;

fn txn(epoch: u32, counter: u32) -> Txn {
    Txn {
        zxid: Zxid::new(epoch, counter),
        session: SessionId(0x100),
        cxid: counter as i32,
        time_ms: 1_700_000_000_000,
        op: TxnOp::Create {
            path: format!("/node{counter:010}"),
            data: Some(Bytes::from(vec![counter as u8; 40])),
            acl: Vec::new().into(),
            ephemeral_owner: 0,
        },
    }
}

fn appends(epoch: u32, counters: std::ops::RangeInclusive<u32>) -> Vec<DurableWrite> {
    counters.map(|counter| DurableWrite::Append(txn(epoch, counter))).collect()
}

fn zxids(txns: &[Txn]) -> Vec<Zxid> {
    txns.iter().map(|txn| txn.zxid).collect()
}

fn config(root: &Path) -> DiskConfig {
    DiskConfig::new(root.join("data"), root.join("log"))
}

/// Opens `cfg`, applies `writes`, syncs, and closes.
fn write_all(cfg: &DiskConfig, writes: &[DurableWrite]) -> Disk<FileDisk> {
    let (mut disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    for write in writes {
        disk.write(write).expect("write");
    }
    disk.sync().expect("sync");
    disk
}

fn files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// A snapshot image whose tree holds a node naming `zxid`, so that images of different zxids
/// differ.
fn image(zxid: Zxid) -> SnapshotImage {
    let mut tree = DataTree::new();
    let path = format!("/at-{zxid}");
    let op = TxnOp::Create { path, data: None, acl: Acl::open_unsafe().into(), ephemeral_owner: 0 };
    tree.apply(&Txn { zxid, session: SessionId(1), cxid: 0, time_ms: 0, op }, &mut Vec::new());
    SnapshotImage::new(zxid, &tree, Vec::new())
}

/// A periodic snapshot of [`image`].
fn snapshot(zxid: Zxid) -> DurableWrite {
    DurableWrite::Snapshot { zxid, image: image(zxid), background: true }
}

#[test]
fn appends_and_epochs_survive_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    let mut writes = vec![DurableWrite::AcceptedEpoch(1), DurableWrite::CurrentEpoch(1)];
    writes.extend(appends(1, 1..=50));
    drop(write_all(&cfg, &writes));
    let recovered = recover(&cfg).expect("recover");
    assert_eq!(zxids(&recovered.txns), zxids(&(1..=50).map(|c| txn(1, c)).collect::<Vec<_>>()));
    assert_eq!(recovered.txns[7], txn(1, 8));
    assert_eq!((recovered.accepted_epoch, recovered.current_epoch), (Some(1), Some(1)));
    assert!(recovered.snapshot.is_none());
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);

    // A restart starts a new segment; both are read back.
    drop(write_all(&cfg, &appends(2, 1..=5)));
    let recovered = recover(&cfg).expect("recover again");
    assert_eq!(recovered.txns.len(), 55);
    assert_eq!(recovered.zxid_last(), Zxid::new(2, 5));
    assert_eq!(files(&cfg.data_log_dir, "log.").len(), 2);
}

#[test]
fn a_torn_tail_is_truncated_and_the_log_continues() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    drop(write_all(&cfg, &appends(1, 1..=10)));
    let segment = cfg.data_log_dir.join(segment_file_name(Zxid::new(1, 1)));
    let clean_len = logged_len(&segment);
    // Half of an eleventh record made it to disk before a crash, into the preallocated
    // zeros after the tenth.
    let mut bytes = std::fs::read(&segment).expect("read");
    assert_eq!(bytes.len() as u64, cfg.preallocate_bytes, "the segment is preallocated");
    let record = ensemble::storage::log::encode_record(&txn(1, 11)).expect("encode");
    let at = clean_len as usize;
    bytes[at..at + record.len() / 2].copy_from_slice(&record[..record.len() / 2]);
    std::fs::write(&segment, &bytes).expect("tear");

    let recovered = recover(&cfg).expect("a torn tail is not an error");
    assert_eq!(recovered.txns.len(), 10);
    assert_eq!(recovered.truncate, Some((segment_file_name(Zxid::new(1, 1)), clean_len)));
    assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
    assert_eq!(std::fs::metadata(&segment).expect("segment").len(), clean_len);

    drop(write_all(&cfg, &appends(1, 11..=12)));
    let recovered = recover(&cfg).expect("recover after repair");
    assert_eq!(recovered.zxid_last(), Zxid::new(1, 12));
    assert!(recovered.truncate.is_none());
}

/// The length of the records in a segment file (without its zero tail).
fn logged_len(segment: &Path) -> u64 {
    let bytes = std::fs::read(segment).expect("read");
    ensemble::storage::log::scan_segment(&bytes, true).expect("a valid segment").valid_len
}

#[test]
fn segments_are_preallocated_in_steps_and_read_back() {
    let root = tempfile::tempdir().expect("tempdir");
    // Records of about 90 bytes: steps of 1 KiB, segments closed at 4 KiB.
    let cfg =
        DiskConfig { preallocate_bytes: 1024, segment_bytes_max: 4096, ..config(root.path()) };
    let (mut disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    let mut lens = Vec::new();
    for write in appends(1, 1..=100) {
        disk.write(&write).expect("append");
        disk.sync().expect("sync");
        let newest = files(&cfg.data_log_dir, "log.").pop().expect("a segment");
        lens.push(std::fs::metadata(cfg.data_log_dir.join(newest)).expect("segment").len());
    }
    drop(disk);
    // Every file length is a whole step up to the segment limit, or (the write that
    // crossed the limit) just past it.
    assert!(lens.iter().all(|len| len % 1024 == 0 || *len > 4096), "{lens:?}");
    assert!(lens.contains(&1024) && lens.contains(&4096), "{lens:?}");
    let segments = files(&cfg.data_log_dir, "log.");
    assert!(segments.len() > 2, "{segments:?}");
    let recovered = recover(&cfg).expect("zero tails are not damage");
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    assert_eq!(recovered.truncate, None);
    assert_eq!(zxids(&recovered.txns), zxids(&(1..=100).map(|c| txn(1, c)).collect::<Vec<_>>()));

    // A restart starts a new, preallocated segment after them; no step at all when off.
    drop(write_all(&cfg, &appends(1, 101..=101)));
    let newest = cfg.data_log_dir.join(segment_file_name(Zxid::new(1, 101)));
    assert_eq!(std::fs::metadata(&newest).expect("segment").len(), 1024);
    let off = DiskConfig { preallocate_bytes: 0, ..cfg.clone() };
    drop(write_all(&off, &appends(1, 102..=102)));
    let newest = cfg.data_log_dir.join(segment_file_name(Zxid::new(1, 102)));
    assert_eq!(std::fs::metadata(&newest).expect("segment").len(), logged_len(&newest));
    assert_eq!(recover(&cfg).expect("recover").zxid_last(), Zxid::new(1, 102));
}

#[test]
fn truncation_cuts_a_preallocated_segment_and_appends_follow() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    let (mut disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    for write in appends(1, 1..=30) {
        disk.write(&write).expect("append");
    }
    disk.sync().expect("sync");
    let segment = cfg.data_log_dir.join(segment_file_name(Zxid::new(1, 1)));
    assert_eq!(std::fs::metadata(&segment).expect("segment").len(), cfg.preallocate_bytes);
    disk.write(&DurableWrite::Truncate { after: Zxid::new(1, 12) }).expect("truncate");
    for write in appends(2, 1..=2) {
        disk.write(&write).expect("append after truncation");
    }
    disk.sync().expect("sync");
    drop(disk);
    // The truncated segment ends at its last kept record; the next one is preallocated.
    assert_eq!(std::fs::metadata(&segment).expect("segment").len(), logged_len(&segment));
    let recovered = recover(&cfg).expect("recover");
    let mut expected: Vec<Zxid> = (1..=12).map(|c| Zxid::new(1, c)).collect();
    expected.extend((1..=2).map(|c| Zxid::new(2, c)));
    assert_eq!(zxids(&recovered.txns), expected);
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
}

#[test]
fn corruption_is_an_error_naming_the_file_and_offset() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    drop(write_all(&cfg, &appends(1, 1..=10)));
    drop(write_all(&cfg, &appends(1, 11..=12)));
    let first = cfg.data_log_dir.join(segment_file_name(Zxid::new(1, 1)));
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[100] ^= 0xff;
    std::fs::write(&first, &bytes).expect("corrupt");
    let error = recover(&cfg).expect_err("corrupt middle record");
    let DiskError::Recovery { dir, source } = &error else { panic!("{error}") };
    assert_eq!(dir, &cfg.data_log_dir);
    assert_eq!(source.file(), segment_file_name(Zxid::new(1, 1)));
    assert!(source.offset().is_some_and(|offset| offset <= 100), "{error}");
    assert!(error.to_string().contains("offset"), "{error}");
}

#[test]
fn a_purge_keeps_the_retain_count_and_recovery_falls_back() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = DiskConfig { snap_retain_count: 2, ..config(root.path()) };
    let (mut disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    for round in 0..5u32 {
        for write in appends(1, round * 10 + 1..=round * 10 + 10) {
            disk.write(&write).expect("append");
        }
        // Snapshot a few txns behind the log, as a follower with uncommitted txns would.
        let zxid = Zxid::new(1, round * 10 + 7);
        disk.write(&snapshot(zxid)).expect("snapshot");
        disk.poll_snapshot(true).expect("background snapshot");
    }
    disk.sync().expect("sync");
    // Snapshots alone purge nothing (`autopurge.purgeInterval` is off by default).
    assert_eq!(files(&cfg.data_dir, "snapshot.").len(), 5);
    assert_eq!(files(&cfg.data_log_dir, "log.").len(), 5);
    assert_eq!(disk.purge(), 3 + 3);
    drop(disk);
    let snapshots = files(&cfg.data_dir, "snapshot.");
    let kept = [snapshot_file_name(Zxid::new(1, 37)), snapshot_file_name(Zxid::new(1, 47))];
    assert_eq!(snapshots, kept);
    // log.31 holds 37..40, which the oldest kept snapshot needs; log.41 the rest.
    let segments = files(&cfg.data_log_dir, "log.");
    let needed = [segment_file_name(Zxid::new(1, 31)), segment_file_name(Zxid::new(1, 41))];
    assert_eq!(segments, needed);

    let recovered = recover(&cfg).expect("recover");
    assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, 47)));
    assert_eq!(
        recovered.snapshot.as_ref().map(|(_, body)| body.clone()),
        Some(image(Zxid::new(1, 47)).encode())
    );
    assert_eq!(zxids(&recovered.txns), [Zxid::new(1, 48), Zxid::new(1, 49), Zxid::new(1, 50)]);

    // Damage the newest snapshot: recovery falls back to the older one and replays more.
    let newest = cfg.data_dir.join(&kept[1]);
    let mut bytes = std::fs::read(&newest).expect("read");
    bytes[30] ^= 1;
    std::fs::write(&newest, bytes).expect("damage");
    let recovered = recover(&cfg).expect("fall back");
    assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, 37)));
    assert_eq!(recovered.txns.len(), 13);
    assert_eq!(recovered.damaged_snapshots, [kept[1].clone()]);
}

#[test]
fn truncate_drops_later_txns_across_segments_and_snapshots() {
    let root = tempfile::tempdir().expect("tempdir");
    // Small segments, so the txns span many files.
    let cfg = DiskConfig { segment_bytes_max: 600, ..config(root.path()) };
    let (mut disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    for write in appends(1, 1..=20) {
        disk.write(&write).expect("append");
    }
    disk.write(&snapshot(Zxid::new(1, 10))).expect("snapshot");
    for write in appends(1, 21..=40) {
        disk.write(&write).expect("append");
    }
    disk.write(&snapshot(Zxid::new(1, 30))).expect("snapshot");
    assert!(files(&cfg.data_log_dir, "log.").len() > 4);
    disk.write(&DurableWrite::Truncate { after: Zxid::new(1, 25) }).expect("truncate");
    // The leader's new epoch continues the truncated history.
    for write in appends(2, 1..=3) {
        disk.write(&write).expect("append after truncation");
    }
    disk.sync().expect("sync");
    drop(disk);

    assert_eq!(files(&cfg.data_dir, "snapshot."), [snapshot_file_name(Zxid::new(1, 10))]);
    let recovered = recover(&cfg).expect("recover");
    assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, 10)));
    let mut expected: Vec<Zxid> = (11..=25).map(|c| Zxid::new(1, c)).collect();
    expected.extend((1..=3).map(|c| Zxid::new(2, c)));
    assert_eq!(zxids(&recovered.txns), expected);
}

#[tokio::test]
async fn the_writer_reports_every_write_in_order() {
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    let (disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
    let mut writes = vec![DurableWrite::AcceptedEpoch(3)];
    writes.extend(appends(3, 1..=100));
    writes.push(snapshot(Zxid::new(3, 60)));
    writes.push(DurableWrite::CurrentEpoch(3));
    writes.extend(appends(3, 101..=200));
    let last = WriteId(writes.len() as u64);
    for (i, write) in writes.into_iter().enumerate() {
        writer.submit(WriteId(i as u64 + 1), write).await.expect("submit");
    }
    let mut reports = Vec::new();
    while reports.last() != Some(&last) {
        reports.push(persisted.recv().await.expect("progress"));
    }
    assert!(reports.windows(2).all(|pair| pair[0] < pair[1]), "{reports:?}");
    let stats = writer.stats();
    assert_eq!(stats.writes, last.0);
    // One log sync per batch, plus one before each non-append write that found appends
    // pending (writes become durable in id order).
    assert!(stats.log_syncs <= stats.batches + 3, "{stats:?}");
    drop(writer);
    assert!(matches!(persisted.recv().await, Err(WriterError::Stopped)));

    let recovered = recover(&cfg).expect("recover");
    assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(3, 60)));
    assert_eq!(recovered.txns.first().map(|txn| txn.zxid), Some(Zxid::new(3, 61)));
    assert_eq!(recovered.zxid_last(), Zxid::new(3, 200));
    assert_eq!((recovered.accepted_epoch, recovered.current_epoch), (Some(3), Some(3)));
}

/// Delegates to another file system, but holds the first `sync` until released, so a test
/// can queue many writes behind one batch without depending on timing.
struct Gated<F> {
    inner: F,
    gate: Option<std_mpsc::Receiver<()>>,
}

impl<F: FileSystem> FileSystem for Gated<F> {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn create(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.inner.create(path, bytes)
    }
    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.inner.append(path, bytes)
    }
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_at(path, offset, bytes)
    }
    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.preallocate(path, len)
    }
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.set_len(path, len)
    }
    fn sync(&mut self, path: &Path) -> io::Result<()> {
        if let Some(gate) = self.gate.take() {
            gate.recv().map_err(|_| io::Error::other("gate dropped"))?;
        }
        self.inner.sync(path)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        if path.to_string_lossy().contains("fail") {
            return Err(io::Error::other("injected failure"));
        }
        self.inner.remove(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

// Under madsim the writer is a task on the test's own thread, so the gate would block it.
#[cfg(not(madsim))]
#[tokio::test]
async fn group_commit_syncs_once_per_batch_not_once_per_write() {
    let root = tempfile::tempdir().expect("tempdir");
    let (release, gate) = std_mpsc::channel();
    let fs = Gated { inner: FileDisk::new(), gate: Some(gate) };
    let (disk, _) = Disk::open(config(root.path()), fs).expect("open");
    let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
    // The first batch's sync waits at the gate while the other 999 writes queue up behind it.
    for (i, write) in appends(1, 1..=1000).into_iter().enumerate() {
        writer.submit(WriteId(i as u64 + 1), write).await.expect("submit");
    }
    release.send(()).expect("writer waits at the gate");
    while persisted.recv().await.expect("progress") < WriteId(1000) {}
    let stats = writer.stats();
    assert_eq!(stats.writes, 1000);
    assert!(stats.log_syncs <= 2, "1000 queued appends took {} syncs", stats.log_syncs);
    assert_eq!(stats.log_syncs, stats.batches);
    drop(writer);
    let recovered = recover(&config(root.path())).expect("recover");
    assert_eq!(recovered.txns.len(), 1000);
}

#[tokio::test]
async fn a_failed_write_stops_the_writer_and_is_reported() {
    let root = tempfile::tempdir().expect("tempdir");
    // The snapshot's leftover `.tmp` removal fails, for a directory named "fail".
    let cfg = DiskConfig::new(root.path().join("fail"), root.path().join("log"));
    let fs = Gated { inner: FileDisk::new(), gate: None };
    let (disk, _) = Disk::open(cfg, fs).expect("open");
    let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
    writer.submit(WriteId(1), appends(1, 1..=1).remove(0)).await.expect("submit");
    assert_eq!(persisted.recv().await.expect("durable"), WriteId(1));
    let zxid = Zxid::new(1, 1);
    let snapshot = DurableWrite::Snapshot { zxid, image: image(zxid), background: false };
    writer.submit(WriteId(2), snapshot).await.expect("submit");
    let error = persisted.recv().await.expect_err("the snapshot fails");
    assert!(matches!(&error, WriterError::Failed(e) if e.to_string().contains("injected")));
    // Nothing after a failed write becomes durable, and submitting eventually fails.
    let mut id = 3;
    while writer.submit(WriteId(id), appends(1, 2..=2).remove(0)).await.is_ok() {
        id += 1;
        assert!(id < 10_000, "the writer stopped taking writes");
    }
    assert!(matches!(persisted.recv().await, Err(WriterError::Failed(_))));
}

/// One step of a random workload against `Disk` over `MemDisk`.
#[derive(Clone, Debug)]
enum Step {
    Append(u8),
    Sync,
    Snapshot,
    /// Truncate to this fraction (0..=255 / 255) of the txns after the newest snapshot, then
    /// open a new epoch, as a follower told TRUNC by a new leader.
    Truncate(u8),
    Epoch(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1u8..20).prop_map(Step::Append),
        3 => Just(Step::Sync),
        1 => Just(Step::Snapshot),
        1 => any::<u8>().prop_map(Step::Truncate),
        1 => (0u32..5).prop_map(Step::Epoch),
    ]
}

/// What the model expects on disk.
#[derive(Default)]
struct Model {
    /// Every txn currently in the log (after truncations).
    history: Vec<Txn>,
    /// How many of `history` are durable.
    durable: usize,
    snapshot: Option<Zxid>,
    epoch: u32,
    accepted_epoch: Option<u32>,
}

impl Model {
    fn next_zxid(&self) -> Zxid {
        match self.history.last() {
            Some(txn) if txn.zxid.epoch() == self.epoch => Zxid(txn.zxid.0 + 1),
            _ => Zxid::new(self.epoch, 1),
        }
    }
}

fn mem_config() -> DiskConfig {
    DiskConfig { segment_bytes_max: 2000, snap_retain_count: 2, ..DiskConfig::new("/d", "/l") }
}

/// Delegates to a `MemDisk` until a budget of mutating operations runs out, then fails every
/// operation: the process lost power in the middle of whatever it was doing.
struct PowerCut {
    inner: MemDisk,
    budget: usize,
}

impl PowerCut {
    fn spend(&mut self) -> io::Result<()> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| io::Error::other("power cut"))?;
        Ok(())
    }
}

impl FileSystem for PowerCut {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn create(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inner.create(path, bytes)
    }
    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inner.append(path, bytes)
    }
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inner.write_at(path, offset, bytes)
    }
    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.spend()?;
        self.inner.preallocate(path, len)
    }
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.spend()?;
        self.inner.set_len(path, len)
    }
    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.spend()?;
        self.inner.sync(path)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.spend()?;
        self.inner.rename(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.spend()?;
        self.inner.remove(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.spend()?;
        self.inner.sync_dir(dir)
    }
}

/// What recovery may find after the power failed during a step.
struct Allowance {
    /// Txns that may be on disk: the model's history, plus a txn being appended.
    history: Vec<Txn>,
    /// How many of `history` must be on disk.
    durable: usize,
    /// The snapshots recovery may pick.
    snapshots: Vec<Option<Zxid>>,
}

/// Runs `steps` until one fails (the power was cut); returns what recovery may then find.
fn run(disk: &mut Disk<PowerCut>, model: &mut Model, steps: Vec<Step>) -> Allowance {
    for step in steps {
        let mut allowance = Allowance {
            history: model.history.clone(),
            durable: model.durable,
            snapshots: vec![model.snapshot],
        };
        let result = match step {
            Step::Append(count) => (0..count).try_for_each(|_| {
                let zxid = model.next_zxid();
                let txn = txn(zxid.epoch(), zxid.counter());
                allowance.history.push(txn.clone());
                disk.write(&DurableWrite::Append(txn.clone()))?;
                model.history.push(txn);
                Ok(())
            }),
            Step::Sync => disk.sync().map(|()| model.durable = model.history.len()),
            Step::Snapshot => {
                let Some(last) = model.history.last().map(|txn| txn.zxid) else {
                    continue;
                };
                allowance.snapshots.push(Some(last));
                disk.write(&snapshot(last)).map(|()| {
                    model.durable = model.history.len();
                    model.snapshot = Some(last);
                })
            }
            Step::Truncate(fraction) => {
                let floor = model.snapshot.unwrap_or(Zxid::ZERO);
                let after_floor = model.history.iter().filter(|t| t.zxid > floor).count();
                let kept =
                    model.history.len() - after_floor + after_floor * fraction as usize / 255;
                let after = kept.checked_sub(1).map_or(floor, |i| model.history[i].zxid.max(floor));
                allowance.durable = allowance.durable.min(kept);
                disk.write(&DurableWrite::Truncate { after }).map(|()| {
                    model.history.truncate(kept);
                    model.durable = model.history.len();
                    model.epoch += 1;
                })
            }
            Step::Epoch(offset) => {
                let epoch = model.epoch + offset;
                disk.write(&DurableWrite::AcceptedEpoch(epoch)).map(|()| {
                    model.durable = model.history.len();
                    model.accepted_epoch = Some(epoch);
                })
            }
        };
        if result.is_err() {
            return allowance;
        }
    }
    Allowance {
        history: model.history.clone(),
        durable: model.durable,
        snapshots: vec![model.snapshot],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After a crash at any point, even in the middle of a snapshot, truncation or epoch
    /// write, recovery succeeds and finds every durable txn, possibly followed by some
    /// unsynced ones, never anything else; and the disk keeps working.
    #[test]
    fn a_crash_loses_only_unsynced_appends(
        steps in proptest::collection::vec(step(), 1..60),
        budget in proptest::option::weighted(0.7, 0usize..150),
        keep in 0usize..400,
    ) {
        let fs = MemDisk::new();
        let power = PowerCut { inner: fs.clone(), budget: budget.unwrap_or(usize::MAX) };
        let (mut disk, _) = Disk::open(mem_config(), power).expect("open empty");
        let mut model = Model { epoch: 1, ..Model::default() };
        let allowance = run(&mut disk, &mut model, steps);
        drop(disk);
        fs.crash(keep);

        let (mut disk, recovered) =
            Disk::open(mem_config(), fs.clone()).expect("recovery after a crash");
        let snapshot = recovered.snapshot.as_ref().map(|(zxid, _)| *zxid);
        prop_assert!(allowance.snapshots.contains(&snapshot), "{snapshot:?}");
        let floor = snapshot.unwrap_or(Zxid::ZERO);
        let after_floor = |txns: &[Txn]| txns.iter().filter(|txn| txn.zxid > floor).count();
        let possible: Vec<&Txn> = allowance.history.iter().filter(|t| t.zxid > floor).collect();
        let durable = after_floor(&allowance.history[..allowance.durable]);
        prop_assert!(recovered.txns.len() >= durable, "lost durable txns");
        prop_assert!(recovered.txns.len() <= possible.len());
        for (got, want) in recovered.txns.iter().zip(&possible) {
            prop_assert_eq!(got, *want);
        }
        if budget.is_none() {
            prop_assert_eq!(recovered.accepted_epoch, model.accepted_epoch);
        }

        // The recovered disk takes more writes and recovers them.
        let next = Zxid::new(model.epoch + 1, 1);
        let append = DurableWrite::Append(txn(next.epoch(), next.counter()));
        disk.write(&append).expect("append after crash");
        disk.sync().expect("sync");
        drop(disk);
        let (_, again) = Disk::open(mem_config(), fs).expect("second recovery");
        prop_assert_eq!(again.zxid_last(), next);
        prop_assert_eq!(again.txns.len(), recovered.txns.len() + 1);
    }
}

#[test]
fn mem_disk_loses_unsynced_directory_entries_and_bytes() {
    let mut fs = MemDisk::new();
    let dir = PathBuf::from("/d");
    fs.create_dir_all(&dir).expect("dir");
    let (a, b) = (dir.join("a"), dir.join("b"));
    fs.create(&a, b"synced").expect("create");
    fs.sync(&a).expect("sync");
    fs.sync_dir(&dir).expect("sync dir");
    fs.append(&a, b" and not").expect("append");
    fs.create(&b, b"never durable").expect("create");
    fs.sync(&b).expect("sync b, but not its directory entry");
    fs.crash(4);
    assert_eq!(fs.contents(&a), Some(b"synced and".to_vec()));
    assert_eq!(fs.contents(&b), None);
    assert_eq!(fs.list(&dir).expect("list"), ["a"]);

    // A write into preallocated zeros: a prefix of it may survive, the zeros after it stay.
    fs.preallocate(&a, 20).expect("preallocate");
    fs.sync(&a).expect("sync");
    fs.write_at(&a, 10, b"-torn").expect("write");
    fs.crash(3);
    assert_eq!(fs.contents(&a), Some(b"synced and-to\0\0\0\0\0\0\0".to_vec()));
}

/// `purge_interval` purges on a timer of its own (at start-up, then every interval), keeping
/// the newest `snap_retain_count` snapshots and the log they need; recovery still works.
/// Without it (the default), nothing is ever purged.
#[cfg(not(madsim))]
#[tokio::test]
async fn the_purge_timer_keeps_the_retained_snapshots_and_the_log_they_need() {
    async fn run(cfg: &DiskConfig) {
        let (disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
        let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
        let mut id = 0;
        for round in 0..6u32 {
            for write in appends(1, round * 10 + 1..=round * 10 + 10) {
                id += 1;
                writer.submit(WriteId(id), write).await.expect("append");
            }
            id += 1;
            // In line, so that none is skipped for being due while another is written.
            let zxid = Zxid::new(1, round * 10 + 7);
            let snapshot = DurableWrite::Snapshot { zxid, image: image(zxid), background: false };
            writer.submit(WriteId(id), snapshot).await.expect("snapshot");
        }
        while persisted.recv().await.expect("progress") < WriteId(id) {}
        drop(writer);
        persisted.closed().await;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let cfg = config(root.path());
    run(&cfg).await;
    assert_eq!(files(&cfg.data_dir, "snapshot.").len(), 6, "the default never purges");
    assert_eq!(files(&cfg.data_log_dir, "log.").len(), 6);

    let root = tempfile::tempdir().expect("tempdir");
    let purge_interval = Some(std::time::Duration::from_millis(10));
    let cfg = DiskConfig { purge_interval, ..config(root.path()) };
    run(&cfg).await;
    // The last snapshot may have landed after the last purge: purge once more by restarting.
    let (disk, _) = Disk::open(cfg.clone(), FileDisk::new()).expect("open");
    let (writer, mut persisted) = spawn_writer(disk).expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while files(&cfg.data_dir, "snapshot.").len() > 3 {
        assert!(std::time::Instant::now() < deadline, "never purged");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(writer);
    persisted.closed().await;
    let kept: Vec<String> = [37, 47, 57].map(|c| snapshot_file_name(Zxid::new(1, c))).into();
    assert_eq!(files(&cfg.data_dir, "snapshot."), kept);
    // log.31 holds 37..40, which the oldest kept snapshot needs; the later ones the rest.
    let needed: Vec<String> = [31, 41, 51].map(|c| segment_file_name(Zxid::new(1, c))).into();
    assert_eq!(files(&cfg.data_log_dir, "log."), needed);
    let recovered = recover(&cfg).expect("recover");
    assert_eq!(recovered.snapshot.as_ref().map(|(zxid, _)| *zxid), Some(Zxid::new(1, 57)));
    assert_eq!(zxids(&recovered.txns), [58, 59, 60].map(|c| Zxid::new(1, c)));
}

/// Each data directory is locked once, however it is spelled, and a directory another `Disk`
/// holds (here the log directory) is refused, named, until that `Disk` is gone.
#[cfg(not(madsim))]
#[test]
fn a_locked_log_directory_is_refused_and_one_directory_is_locked_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let (data, log) = (root.path().join("data"), root.path().join("log"));
    let same = DiskConfig::new(&data, data.join("."));
    let (first, _) = Disk::open(same, FileDisk::new()).expect("one directory, two spellings");
    drop(first);
    let (holder, _) = Disk::open(DiskConfig::new(&data, &log), FileDisk::new()).expect("open");
    let other = DiskConfig::new(root.path().join("other"), &log);
    match Disk::open(other.clone(), FileDisk::new()) {
        Err(DiskError::Locked { dir, holder, lock_file }) => {
            assert_eq!(dir, std::fs::canonicalize(&log).expect("canonical"));
            assert_eq!(holder, Some(std::process::id()));
            assert_eq!(lock_file, dir.join(ensemble::runtime::disk::LOCK_FILE));
        }
        Err(error) => panic!("expected Locked, got {error}"),
        Ok(_) => panic!("two disks on one log directory"),
    }
    drop(holder);
    Disk::open(other, FileDisk::new()).expect("free once the holder is gone");
}
