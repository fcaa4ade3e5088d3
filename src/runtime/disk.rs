//! The disk: recovery from the data directories, and the writer that makes the core's
//! durable writes durable, in write-id order, with group commit. The only code in Ensemble
//! that touches the filesystem.
//!
//! Layers, bottom up:
//! - [`FileSystem`]: the seam. A handful of path-based file operations. [`FileDisk`] is the
//!   real one (`std::fs`); [`MemDisk`] keeps files in memory with a crash model (unsynced
//!   bytes and unsynced directory entries are lost) for tests and simulation.
//! - [`Disk`]: recovery ([`Disk::open`]) and the write logic over a `FileSystem`: segments,
//!   snapshots, truncation, epoch files, purging. Synchronous and deterministic.
//! - [`spawn_writer`]: runs a `Disk` on its own thread, drains the queue into batches and
//!   reports the highest durable `WriteId` through a [`PersistedReceiver`].
//!
//! Driving it:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ensemble::runtime::disk::{spawn_writer, Disk, DiskConfig, FileDisk};
//!
//! let cfg = DiskConfig::new("/var/lib/ensemble", "/var/lib/ensemble");
//! // Blocking: call it before the runtime starts (or in `spawn_blocking`).
//! let (disk, recovered) = Disk::open(cfg, FileDisk::new())?;
//! // ... build the node from `recovered.snapshot`, `recovered.txns` and the epochs ...
//! let (mut writer, mut persisted) = spawn_writer(disk)?;
//! // For each `Effect::Write { id, write }`: `writer.submit(id, write).await?`.
//! // In the select loop: `let up_to = persisted.recv().await?;` then
//! // `node.step(now, Input::Persisted { up_to }, &mut effects)`.
//! # let _ = (recovered, &mut writer, &mut persisted);
//! # Ok(())
//! # }
//! ```
//!
//! Why a dedicated thread rather than `tokio::fs`: `tokio::fs` runs every call on the
//! blocking pool, so one batch would hop threads per call and `fdatasync` would race with
//! appends from the next batch. One thread owning the files gives the exact order
//! write, write, ..., fdatasync, report, with one fdatasync per batch. Under madsim
//! (`--cfg madsim`) the same loop runs as a simulated task instead, so simulations stay
//! deterministic (use `MemDisk` there; madsim does not simulate files).
//!
//! Durability rules:
//! - appends are buffered and made durable together by one `fdatasync` per batch (plus a
//!   directory fsync when the batch created a segment);
//! - before a snapshot, truncation or epoch write, the pending appends are synced first, so
//!   writes become durable in id order; those writes are durable when they return
//!   (write a `.tmp` file, fsync it, rename it, fsync the directory);
//! - a new segment starts at the first append after startup, after a snapshot, after a
//!   truncation, and when the current one reaches `segment_bytes_max`;
//! - fail-stop: the first failed operation (a write, `fsync`, `fdatasync`, also of a
//!   background snapshot) fails the disk, and every later write and sync fails without
//!   touching a file. A failed `fsync` is never retried (the kernel may have dropped the
//!   unsynced pages and cleared the error); the server stops and its process exits;
//! - old snapshots and segments are deleted only by the purge timer
//!   (`DiskConfig::purge_interval`, off by default), never as part of a write;
//! - `FileDisk` holds an exclusive `flock` on each data directory (`disk/lock.rs`).
//!
//! ZK compat: `SyncRequestProcessor` (group commit, at most `zookeeper.maxBatchSize` = 1000
//! writes per flush, a new log after each snapshot), `FileTxnLog.commit` (`forceSync`),
//! `FileTxnSnapLog` (`dataDir` for snapshots and epochs, `dataLogDir` for the log),
//! `PurgeTxnLog`, `DatadirCleanupManager`, `AtomicFileWritingIdiom`. Unlike ZooKeeper we delete snapshots newer than
//! a truncation point, since they contain txns the truncation drops.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::core::ids::{WriteId, Zxid};
use crate::core::io::DurableWrite;
use crate::core::snapshot::SnapshotImage;
use crate::core::txn::Txn;
use crate::runtime::slow::{Ms, SlowWatch, Verdict};
use crate::storage::epoch::encode_epoch;
use crate::storage::log::{encode_header, encode_record, scan_segment, LogError};
use crate::storage::names::{
    parse_file_name, segment_file_name, snapshot_file_name, FileKind, ACCEPTED_EPOCH_FILE,
    CURRENT_EPOCH_FILE, TEMP_SUFFIX,
};
use crate::storage::recovery::{self, Recovered, RecoveryError};
use crate::storage::snapshot::write_snapshot;

mod files;
mod lock;
mod purge;
mod writer;

use self::files::write_atomic_with;
pub use self::files::{FileDisk, MemDisk};
pub use self::lock::LOCK_FILE;
use self::purge::lock_ignoring_poison;
pub use self::writer::{spawn_writer, PersistedReceiver, WriterError, WriterHandle, WriterStats};

/// Where and how the disk keeps its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Snapshots and epoch files (`dataDir`).
    pub data_dir: PathBuf,
    /// Txn-log segments (`dataLogDir`; may equal `data_dir`).
    pub data_log_dir: PathBuf,
    /// Snapshots a purge keeps, with the log they need (`autopurge.snapRetainCount`).
    pub snap_retain_count: usize,
    /// How often old snapshots and logs are purged, the first time at start-up
    /// (`autopurge.purgeInterval`); `None`, the default, never purges.
    /// ZK compat: `DatadirCleanupManager` (a timer at a fixed rate from start-up).
    pub purge_interval: Option<Duration>,
    /// Whether appends are fdatasync'ed (`zookeeper.forceSync`). Snapshots, epochs and
    /// truncations are always synced.
    pub fsync: bool,
    /// A segment that reached this many bytes is closed and a new one started.
    pub segment_bytes_max: u64,
    /// Segments are preallocated (zero-filled, blocks reserved) in steps of this many bytes,
    /// up to `segment_bytes_max`, so that an append does not grow the file and its
    /// `fdatasync` need not commit a new size; 0: never. ZK compat: `zookeeper.preAllocSize`
    /// (`FilePadding`, 64 MiB).
    pub preallocate_bytes: u64,
    /// Most writes made durable under one sync (`zookeeper.maxBatchSize`).
    pub batch_max: usize,
    /// Writes queued to the writer before `WriterHandle::submit` waits (backpressure).
    pub queue_max: usize,
    /// A batch taking longer than this (from taking its first write off the queue to
    /// reporting it durable) is logged at WARN with what it held; `None`: never.
    pub slow_batch_warn: Option<Duration>,
}

impl DiskConfig {
    /// ZooKeeper's defaults for these directories.
    pub fn new(data_dir: impl Into<PathBuf>, data_log_dir: impl Into<PathBuf>) -> DiskConfig {
        DiskConfig {
            data_dir: data_dir.into(),
            data_log_dir: data_log_dir.into(),
            snap_retain_count: 3,
            purge_interval: None,
            fsync: true,
            segment_bytes_max: 64 << 20,
            preallocate_bytes: 64 << 20,
            batch_max: 1000,
            queue_max: 4096,
            slow_batch_warn: Some(Duration::from_millis(
                crate::runtime::slow::SLOW_WARN_DEFAULT_MS,
            )),
        }
    }
}

/// A disk operation that failed. Every variant names the file or directory.
#[derive(Debug, Error)]
pub enum DiskError {
    /// An operating-system error.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The data directory cannot be recovered (the source names the file and offset).
    #[error("{}: {source}", dir.display())]
    Recovery {
        /// The directory holding the file.
        dir: PathBuf,
        /// What is wrong.
        #[source]
        source: RecoveryError,
    },
    /// A segment could not be read back for truncation, or a txn could not be encoded.
    #[error("{}: {source}", path.display())]
    Log {
        /// The segment (or log directory).
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: LogError,
    },
    /// The thread writing a background snapshot ended without saying how it went.
    #[error("the snapshot thread died")]
    SnapshotThread,
    /// The background snapshot failed (the source names the file and the error).
    #[error("background snapshot: {0}")]
    Snapshot(Arc<DiskError>),
    /// An earlier write failed; the disk takes no more writes. A failed `fsync` is never
    /// retried: the kernel may have dropped the unsynced pages and cleared the error, so a
    /// second `fsync` could report success for data that is gone.
    #[error("an earlier disk write failed ({0}); no more writes")]
    Failed(String),
    /// Another process holds the directory's lock file.
    #[error(
        "{} is in use by another process ({}); it holds the lock on {}",
        dir.display(),
        holder.map_or("pid unknown".to_owned(), |pid| format!("pid {pid}")),
        lock_file.display()
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Its lock file.
        lock_file: PathBuf,
        /// The pid the holder wrote into the lock file.
        holder: Option<u32>,
    },
}

/// The file operations the disk needs: the seam between `Disk` and the operating system.
/// Paths are those `Disk` builds from `DiskConfig`; names returned by `list` are file names.
pub trait FileSystem: Send + 'static {
    /// Creates a directory and its parents (no error if it exists).
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// The names of the files in a directory, sorted.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>>;
    /// A whole file.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates a file that must not exist yet, holding `bytes` (not synced).
    fn create(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Appends to a file (not synced).
    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Writes `bytes` at `offset` of a file, which grows if they end past it (not synced).
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes a file at least `len` bytes long; the bytes added read as zeros and, where the
    /// file system can, have their blocks reserved (`fallocate`). Not synced.
    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// Cuts (or zero-extends) a file to `len` bytes (not synced).
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes a file's contents durable (`fdatasync`).
    fn sync(&mut self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing any file at `to` (durable after `sync_dir`).
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable after `sync_dir`).
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on a directory (which exists) for as long as this file system
    /// lives, so that no other process uses it meanwhile. In-memory file systems have nothing
    /// to lock.
    fn lock_dir(&mut self, dir: &Path) -> Result<(), DiskError> {
        let _ = dir;
        Ok(())
    }
    /// Another handle on the same files for a background snapshot thread, or `None` where
    /// snapshots must be written in line (simulated file systems: no threads there).
    fn background(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Recovery plus the write logic over a `FileSystem`. Blocking; run it off the async
/// runtime (`spawn_writer` does).
pub struct Disk<F: FileSystem> {
    fs: F,
    cfg: DiskConfig,
    /// The segment appends go to, if one is open.
    segment: Option<OpenSegment>,
    /// Encoded appends not yet handed to the file system (always for `segment`).
    pending: Vec<u8>,
    /// The highest zxid logged or covered by a snapshot; appends must exceed it.
    zxid_last: Zxid,
    /// Snapshots that failed to decode at recovery: never counted or purged.
    damaged_snapshots: BTreeSet<String>,
    /// How many times appends were made durable (one per batch that appended).
    log_syncs: u64,
    /// The periodic snapshot being written in the background, if any.
    snapshot_job: Option<SnapshotJob>,
    /// Set by the first failed write: no file operation follows it (see `DiskError::Failed`).
    failed: Option<String>,
    /// Told at once when a background snapshot fails (the writer may be idle meanwhile).
    on_fatal: Option<FatalHook>,
    /// Held while purging and while truncating, so that a purge working from an older listing
    /// never runs into a truncation that removes newer snapshots.
    files_lock: Arc<Mutex<()>>,
    /// What the current batch did and where its time went (for the slow-batch warning).
    trace: BatchTrace,
}

/// What one batch of the writer did, and how long its file operations took: logged when the
/// batch is slow. Filled by [`Disk`] (a few clock reads per batch, none per append).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchTrace {
    /// Txns appended.
    pub appends: u32,
    /// Bytes handed to the log (records and segment headers).
    pub append_bytes: u64,
    /// `write`s of buffered appends.
    pub append_writes: u32,
    /// Segments created (a new file, then a directory fsync).
    pub segments_created: u32,
    /// Log `fdatasync`s.
    pub fdatasyncs: u32,
    /// Snapshots written in line (periodic ones are written by their own thread).
    pub snapshots: u32,
    /// Truncations and epoch files.
    pub other_writes: u32,
    /// Time in the `write`s of appends (and segment creation).
    pub write_time: Duration,
    /// Time in the log's `fdatasync`s.
    pub fdatasync_time: Duration,
    /// Time in directory fsyncs of new segments.
    pub dir_fsync_time: Duration,
    /// Time writing snapshots (temp file, write, fsync, rename, directory fsync).
    pub snapshot_time: Duration,
    /// Time in truncations and epoch files.
    pub other_time: Duration,
}

/// Called with the error of a background snapshot that failed.
pub(crate) type FatalHook = Arc<dyn Fn(Arc<DiskError>) + Send + Sync>;

/// A periodic snapshot being written on its own thread.
struct SnapshotJob {
    name: String,
    zxid: Zxid,
    done: std::sync::mpsc::Receiver<Result<(), Arc<DiskError>>>,
}

/// The segment being appended to.
struct OpenSegment {
    path: PathBuf,
    /// Its length including `Disk::pending`.
    len: u64,
    /// Bytes handed to the file system (`len` without `Disk::pending`): where the next
    /// write goes.
    written: u64,
    /// The file's preallocated length (0 if none): writes below it do not grow the file.
    allocated: u64,
    /// How far zeros were written over the preallocation (see [`ZERO_AHEAD_BYTES`]).
    zeroed: u64,
    /// Whether the file exists (it is created by the first flush).
    created: bool,
    /// Bytes were written since the last sync.
    unsynced: bool,
    /// The file was created since the last directory sync.
    dir_unsynced: bool,
}

impl<F: FileSystem> Disk<F> {
    /// Recovers the data directories (creating them if missing), repairs a torn log tail,
    /// removes leftover `.tmp` files, and returns the disk ready to write plus what the core
    /// starts from. Errors name the file and, for corruption, the offset.
    pub fn open(cfg: DiskConfig, mut fs: F) -> Result<(Disk<F>, Recovered), DiskError> {
        for dir in [&cfg.data_dir, &cfg.data_log_dir] {
            fs.create_dir_all(dir).map_err(io_error("create directory", dir))?;
            fs.lock_dir(dir)?;
        }
        let mut disk = Disk {
            fs,
            cfg,
            segment: None,
            pending: Vec::new(),
            zxid_last: Zxid::ZERO,
            damaged_snapshots: BTreeSet::new(),
            log_syncs: 0,
            snapshot_job: None,
            failed: None,
            on_fatal: None,
            files_lock: Arc::default(),
            trace: BatchTrace::default(),
        };
        let names = disk.listing()?;
        for name in &names {
            if parse_file_name(name) == Some(FileKind::Temp) {
                let path = disk.path_of(name);
                tracing::info!(path = %path.display(), "removing an interrupted atomic write");
                disk.fs.remove(&path).map_err(io_error("remove", &path))?;
            }
        }
        let (dirs, fs) = ((&disk.cfg.data_dir, &disk.cfg.data_log_dir), &mut disk.fs);
        let recovered = recovery::recover(&names, |name| {
            let path = dir_of(dirs, name).join(name);
            fs.read(&path).map(Bytes::from).map_err(|error| error.into())
        })
        .map_err(|source| DiskError::Recovery {
            dir: dir_of(dirs, source.file()).to_owned(),
            source,
        })?;
        for warning in &recovered.warnings {
            tracing::warn!("recovery: {warning}");
        }
        if let Some((name, valid_len)) = &recovered.truncate {
            disk.repair_tail(name, *valid_len)?;
        }
        disk.zxid_last = recovered.zxid_last();
        disk.damaged_snapshots = recovered.damaged_snapshots.iter().cloned().collect();
        tracing::info!(
            snapshot = ?recovered.snapshot.as_ref().map(|(zxid, _)| zxid.to_string()),
            txns = recovered.txns.len(),
            zxid_last = %disk.zxid_last,
            "recovered"
        );
        Ok((disk, recovered))
    }

    /// Carries out one write. Appends are buffered until `sync`; every other write first
    /// syncs the buffered appends, then is durable when this returns.
    ///
    /// Panics if an append does not have a zxid above every txn logged so far (a core bug).
    ///
    /// After a write fails, every later `write` and `sync` fails without touching a file.
    pub fn write(&mut self, write: &DurableWrite) -> Result<(), DiskError> {
        self.checked(|disk| disk.write_unchecked(write))
    }

    /// Runs `op` unless an earlier one failed, and remembers its failure.
    fn checked(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<(), DiskError>,
    ) -> Result<(), DiskError> {
        if let Some(first) = &self.failed {
            return Err(DiskError::Failed(first.clone()));
        }
        let result = op(self);
        if let Err(error) = &result {
            self.failed = Some(error.to_string());
        }
        result
    }

    fn write_unchecked(&mut self, write: &DurableWrite) -> Result<(), DiskError> {
        match write {
            DurableWrite::Append(txn) => self.append(txn),
            DurableWrite::Snapshot { zxid, image, background } => {
                self.sync_log()?;
                self.segment = None;
                self.zxid_last = self.zxid_last.max(*zxid);
                if *background {
                    return self.start_snapshot(*zxid, image);
                }
                // It replaces the history: no older snapshot may land after it.
                self.poll_snapshot(true)?;
                let started = Instant::now();
                self.write_snapshot(*zxid, image)?;
                self.trace.snapshots += 1;
                self.trace.snapshot_time += started.elapsed();
                Ok(())
            }
            DurableWrite::Truncate { after } => {
                // A snapshot still being written may hold txns the truncation drops.
                self.poll_snapshot(true)?;
                self.sync_log()?;
                self.segment = None;
                self.timed_other(|disk| disk.truncate(*after))
            }
            DurableWrite::AcceptedEpoch(epoch) => {
                self.sync_log()?;
                let dir = self.cfg.data_dir.clone();
                self.timed_other(|disk| {
                    disk.write_atomic(&dir, ACCEPTED_EPOCH_FILE, &encode_epoch(*epoch))
                })
            }
            DurableWrite::CurrentEpoch(epoch) => {
                self.sync_log()?;
                let dir = self.cfg.data_dir.clone();
                self.timed_other(|disk| {
                    disk.write_atomic(&dir, CURRENT_EPOCH_FILE, &encode_epoch(*epoch))
                })
            }
        }
    }

    fn timed_other(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<(), DiskError>,
    ) -> Result<(), DiskError> {
        let started = Instant::now();
        let result = write(self);
        self.trace.other_writes += 1;
        self.trace.other_time += started.elapsed();
        result
    }

    /// What the writes since the last call did and how long their file operations took.
    pub fn take_trace(&mut self) -> BatchTrace {
        std::mem::take(&mut self.trace)
    }

    /// Makes every append so far durable: one write of the buffered records and one
    /// `fdatasync` (plus a directory fsync if the segment is new). After a failure, fails
    /// without touching a file (a failed `fdatasync` is never retried).
    pub fn sync(&mut self) -> Result<(), DiskError> {
        self.checked(Self::sync_log)
    }

    fn sync_log(&mut self) -> Result<(), DiskError> {
        self.flush()?;
        let Some(segment) = self.segment.as_mut() else {
            return Ok(());
        };
        if segment.unsynced {
            if self.cfg.fsync {
                let started = Instant::now();
                self.fs.sync(&segment.path).map_err(io_error("fdatasync", &segment.path))?;
                self.trace.fdatasync_time += started.elapsed();
                self.trace.fdatasyncs += 1;
            }
            segment.unsynced = false;
            self.log_syncs += 1;
        }
        if segment.dir_unsynced {
            if self.cfg.fsync {
                let started = Instant::now();
                let dir = &self.cfg.data_log_dir;
                self.fs.sync_dir(dir).map_err(io_error("fsync directory", dir))?;
                self.trace.dir_fsync_time += started.elapsed();
            }
            segment.dir_unsynced = false;
        }
        Ok(())
    }

    /// How many times appends were made durable since `open`.
    pub fn log_sync_count(&self) -> u64 {
        self.log_syncs
    }

    /// The file system, e.g. to crash a `MemDisk` after dropping the `Disk`.
    pub fn into_file_system(self) -> F {
        self.fs
    }

    fn append(&mut self, txn: &Txn) -> Result<(), DiskError> {
        assert!(txn.zxid > self.zxid_last, "append of {} after {}", txn.zxid, self.zxid_last);
        let record = encode_record(txn)
            .map_err(|source| DiskError::Log { path: self.cfg.data_log_dir.clone(), source })?;
        if self.segment.as_ref().is_some_and(|s| s.len >= self.cfg.segment_bytes_max) {
            self.sync_log()?;
            self.segment = None;
        }
        let segment = self.segment.get_or_insert_with(|| OpenSegment {
            path: self.cfg.data_log_dir.join(segment_file_name(txn.zxid)),
            len: 0,
            written: 0,
            allocated: 0,
            zeroed: 0,
            created: false,
            unsynced: false,
            dir_unsynced: false,
        });
        if segment.len == 0 {
            let header = encode_header(txn.zxid);
            self.pending.extend_from_slice(&header);
            segment.len += header.len() as u64;
        }
        self.pending.extend_from_slice(&record);
        segment.len += record.len() as u64;
        self.zxid_last = txn.zxid;
        self.trace.appends += 1;
        if self.pending.len() >= PENDING_FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the buffered appends to the file system (without syncing).
    fn flush(&mut self) -> Result<(), DiskError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let segment = self.segment.as_mut().expect("pending bytes belong to the open segment");
        let started = Instant::now();
        let end = segment.written + self.pending.len() as u64;
        // Past the preallocated part, reserve the next step (after creating the file, which
        // starts with the header).
        let allocate = preallocation(end, segment.allocated, &self.cfg);
        if segment.created {
            if let Some(len) = allocate {
                self.fs
                    .preallocate(&segment.path, len)
                    .map_err(io_error("preallocate", &segment.path))?;
            }
            self.fs
                .write_at(&segment.path, segment.written, &self.pending)
                .map_err(io_error("append", &segment.path))?;
        } else {
            self.fs
                .create(&segment.path, &self.pending)
                .map_err(io_error("create", &segment.path))?;
            segment.created = true;
            segment.dir_unsynced = true;
            self.trace.segments_created += 1;
            if let Some(len) = allocate {
                self.fs
                    .preallocate(&segment.path, len)
                    .map_err(io_error("preallocate", &segment.path))?;
            }
        }
        segment.allocated = allocate.unwrap_or(segment.allocated);
        segment.written = end;
        // Keep real zeros written ahead of the appends, inside the preallocation.
        let ahead = ZERO_AHEAD_BYTES as u64;
        if segment.allocated > segment.zeroed && end + ahead / 2 > segment.zeroed {
            let from = segment.zeroed.max(end);
            let to = segment.allocated.min(from + ahead);
            let zeros = &ZEROS[..(to - from) as usize];
            self.fs
                .write_at(&segment.path, from, zeros)
                .map_err(io_error("zero", &segment.path))?;
            segment.zeroed = to;
        }
        self.trace.write_time += started.elapsed();
        self.trace.append_writes += 1;
        self.trace.append_bytes += self.pending.len() as u64;
        self.pending.clear();
        segment.unsynced = true;
        Ok(())
    }

    /// Writes a snapshot here, in order: durable when this returns.
    fn write_snapshot(&mut self, zxid: Zxid, image: &SnapshotImage) -> Result<(), DiskError> {
        let name = snapshot_file_name(zxid);
        store_snapshot(&mut self.fs, &self.cfg.data_dir, &name, zxid, image)?;
        self.damaged_snapshots.remove(&name);
        Ok(())
    }

    /// Starts writing a periodic snapshot on a thread of its own (inline where the file
    /// system has no background handle, as under simulation). The log is already rolled, so
    /// the write counts as done at once; if the snapshot then fails, the disk fails (the
    /// `on_fatal` hook hears of it at once, the next write returns the error).
    /// ZK compat: `SyncRequestProcessor` snapshots on its own thread and skips a snapshot
    /// while the previous one is still being written ("Too busy to snap, skipping"); a
    /// snapshot that cannot be written exits the server (`ZooKeeperServer.takeSnapshot`,
    /// `ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT`).
    fn start_snapshot(&mut self, zxid: Zxid, image: &SnapshotImage) -> Result<(), DiskError> {
        self.poll_snapshot(false)?;
        if let Some(job) = &self.snapshot_job {
            tracing::warn!(%zxid, writing = %job.zxid, "a snapshot is still being written; skipping this one");
            return Ok(());
        }
        let Some(mut fs) = self.fs.background() else {
            return self.write_snapshot(zxid, image);
        };
        let name = snapshot_file_name(zxid);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (job_image, job_name, dir) = (image.clone(), name.clone(), self.cfg.data_dir.clone());
        let on_fatal = self.on_fatal.clone();
        let spawned =
            std::thread::Builder::new().name("ensemble-snapshot".to_owned()).spawn(move || {
                lower_priority();
                let result = store_snapshot(&mut fs, &dir, &job_name, zxid, &job_image);
                drop(job_image); // the pages this snapshot alone still held go here
                let result = result.map_err(|error| {
                    let error = Arc::new(error);
                    if let Some(on_fatal) = &on_fatal {
                        on_fatal(error.clone());
                    }
                    error
                });
                let _ = done_tx.send(result);
            });
        match spawned {
            Ok(_) => self.snapshot_job = Some(SnapshotJob { name, zxid, done }),
            Err(error) => {
                tracing::warn!(%error, "no thread for the snapshot; writing it in line");
                self.write_snapshot(zxid, image)?;
            }
        }
        Ok(())
    }

    /// Takes in a finished background snapshot (waiting for it if `wait`). A failed one
    /// fails the disk: returns its error, and every later write fails too.
    pub fn poll_snapshot(&mut self, wait: bool) -> Result<(), DiskError> {
        let Some(job) = &self.snapshot_job else {
            return Ok(());
        };
        let result = match wait {
            true => job.done.recv().unwrap_or(Err(Arc::new(DiskError::SnapshotThread))),
            false => match job.done.try_recv() {
                Ok(result) => result,
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    Err(Arc::new(DiskError::SnapshotThread))
                }
            },
        };
        let job = self.snapshot_job.take().expect("checked above");
        match result {
            Ok(()) => {
                self.damaged_snapshots.remove(&job.name);
                Ok(())
            }
            Err(error) => {
                let error = DiskError::Snapshot(error);
                self.failed.get_or_insert_with(|| error.to_string());
                Err(error)
            }
        }
    }

    /// Tells `on_fatal` at once when a background snapshot fails.
    pub(crate) fn set_on_fatal(&mut self, on_fatal: FatalHook) {
        self.on_fatal = Some(on_fatal);
    }

    /// Drops every txn `> after`: newer snapshots, then whole segments (newest first, each
    /// removal made durable so a crash leaves a prefix of the log), then the tail of the
    /// segment holding `after`.
    fn truncate(&mut self, after: Zxid) -> Result<(), DiskError> {
        let files_lock = self.files_lock.clone();
        let _no_purge = lock_ignoring_poison(&files_lock);
        let names = self.listing()?;
        let mut snapshots = Vec::new();
        let mut segments = Vec::new();
        for name in names {
            match parse_file_name(&name) {
                Some(FileKind::Snapshot(zxid)) => snapshots.push((zxid, name)),
                Some(FileKind::Segment(base)) => segments.push((base, name)),
                _ => {}
            }
        }
        let (data_dir, log_dir) = (self.cfg.data_dir.clone(), self.cfg.data_log_dir.clone());
        for (_, name) in snapshots.iter().rev().filter(|(zxid, _)| *zxid > after) {
            self.remove_durably(&data_dir, name)?;
            self.damaged_snapshots.remove(name);
        }
        for (_, name) in segments.iter().rev().filter(|(base, _)| *base > after) {
            self.remove_durably(&log_dir, name)?;
        }
        if let Some((_, name)) = segments.iter().rev().find(|(base, _)| *base <= after) {
            let path = log_dir.join(name);
            let bytes = self.fs.read(&path).map_err(io_error("read", &path))?;
            let scan = scan_segment(&bytes, true)
                .map_err(|source| DiskError::Log { path: path.clone(), source })?;
            let cut = scan.offset_after(after);
            if cut < bytes.len() as u64 {
                self.fs.set_len(&path, cut).map_err(io_error("truncate", &path))?;
                self.fs.sync(&path).map_err(io_error("fdatasync", &path))?;
            }
        }
        self.zxid_last = self.zxid_last.min(after);
        tracing::info!(after = %after, "log truncated");
        Ok(())
    }

    /// Cuts the torn last segment found by recovery (or removes it if it holds no txn).
    fn repair_tail(&mut self, name: &str, valid_len: u64) -> Result<(), DiskError> {
        let path = self.path_of(name);
        tracing::warn!(path = %path.display(), valid_len, "repairing the log tail");
        if valid_len == 0 {
            let dir = self.cfg.data_log_dir.clone();
            return self.remove_durably(&dir, name);
        }
        self.fs.set_len(&path, valid_len).map_err(io_error("truncate", &path))?;
        self.fs.sync(&path).map_err(io_error("fdatasync", &path))
    }

    fn remove_durably(&mut self, dir: &Path, name: &str) -> Result<(), DiskError> {
        let path = dir.join(name);
        self.fs.remove(&path).map_err(io_error("remove", &path))?;
        self.fs.sync_dir(dir).map_err(io_error("fsync directory", dir))
    }

    /// Replaces `dir/name` with `bytes` so that a crash leaves the old or the new contents.
    fn write_atomic(&mut self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        write_atomic_with(&mut self.fs, dir, name, |out| out.write_all(bytes))
    }

    /// Our files: snapshots, epochs and temporaries from `data_dir`, segments from
    /// `data_log_dir`.
    fn listing(&mut self) -> Result<Vec<String>, DiskError> {
        list_files(&mut self.fs, &self.cfg)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        dir_of((&self.cfg.data_dir, &self.cfg.data_log_dir), name).join(name)
    }
}

/// Our files: snapshots, epochs and temporaries from `data_dir`, segments from `data_log_dir`.
fn list_files<F: FileSystem>(fs: &mut F, cfg: &DiskConfig) -> Result<Vec<String>, DiskError> {
    let mut names = BTreeSet::new();
    for dir in [&cfg.data_dir, &cfg.data_log_dir] {
        let listed = fs.list(dir).map_err(io_error("list", dir))?;
        let dirs = (&cfg.data_dir, &cfg.data_log_dir);
        names.extend(
            listed.into_iter().filter(|name| {
                parse_file_name(name).is_some() && dir_of(dirs, name) == dir.as_path()
            }),
        );
    }
    Ok(names.into_iter().collect())
}

/// The directory a file of ours lives in: segments in the log directory, the rest in the
/// data directory.
fn dir_of<'a>((data_dir, log_dir): (&'a PathBuf, &'a PathBuf), name: &str) -> &'a Path {
    match parse_file_name(name) {
        Some(FileKind::Segment(_)) => log_dir,
        _ => data_dir,
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DiskError + 'a {
    move |source| DiskError::Io { op, path: path.to_owned(), source }
}

/// The length to preallocate a segment to before writing up to `end`, if the write would
/// grow it: the next multiple of the step, at most `segment_bytes_max` (the segment is closed
/// there; a write past it just grows the file).
fn preallocation(end: u64, allocated: u64, cfg: &DiskConfig) -> Option<u64> {
    let step = cfg.preallocate_bytes;
    if step == 0 || end <= allocated || end >= cfg.segment_bytes_max {
        return None;
    }
    Some(end.div_ceil(step).saturating_mul(step).min(cfg.segment_bytes_max))
}

/// Zeros written over the preallocated space ahead of the appends, a step at a time. A
/// `fallocate`d block is "unwritten" until written: the first write into it changes the
/// file's extent map, so the `fdatasync` after it commits the journal, as a size change
/// does. Into blocks that already hold written zeros, an append is a pure overwrite and its
/// `fdatasync` only writes data: on this project's ext4 disk, 108–171 µs (p50) against
/// 161–208 µs into fallocated blocks. The step's own zeros go out with one batch's sync,
/// once per MiB of log.
const ZERO_AHEAD_BYTES: usize = 1 << 20;

/// A step of zeros.
static ZEROS: [u8; ZERO_AHEAD_BYTES] = [0; ZERO_AHEAD_BYTES];

/// Buffered appends beyond this are written out before the batch ends (memory bound).
const PENDING_FLUSH_BYTES: usize = 1 << 20;

/// Recovers the data directories on the real file system (see `Disk::open`).
pub fn recover(cfg: &DiskConfig) -> Result<Recovered, DiskError> {
    Disk::open(cfg.clone(), FileDisk::new()).map(|(_, recovered)| recovered)
}

/// Makes the calling thread (a background snapshot's) yield to the node loop and the log
/// writer when cores are short: encoding a million znodes takes a core for most of a second.
/// (On Linux, `setpriority(PRIO_PROCESS, 0, …)` sets the calling thread's nice value.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(%error, "the snapshot thread keeps its priority");
    }
}

/// Writes a snapshot file atomically (temporary file, fsync, rename, directory fsync),
/// encoding the image as it goes.
fn store_snapshot<F: FileSystem>(
    fs: &mut F,
    dir: &Path,
    name: &str,
    zxid: Zxid,
    image: &SnapshotImage,
) -> Result<(), DiskError> {
    let started = std::time::Instant::now();
    let body = image.encoder();
    let bytes = body.len();
    write_atomic_with(fs, dir, name, |out| write_snapshot(zxid, &body, out))?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(%zxid, bytes, nodes = image.node_count(), elapsed_ms, "snapshot written");
    Ok(())
}
