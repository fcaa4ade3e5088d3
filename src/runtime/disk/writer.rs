//! The writer thread: batches the core's durable writes, one `fdatasync` per batch, and
//! reports the highest durable `WriteId`.

use super::*;

/// Starts the writer for `disk`: a thread (a task under madsim) that takes writes from the
/// returned handle, makes each batch durable with one sync, and reports the highest durable
/// id to the returned receiver. Dropping the handle stops the writer once the queue drains.
pub fn spawn_writer<F: FileSystem>(
    mut disk: Disk<F>,
) -> Result<(WriterHandle, PersistedReceiver), DiskError> {
    let (queue, queued) = mpsc::channel(disk.cfg.queue_max.max(1));
    let (progress, progress_rx) = watch::channel(Progress::default());
    let progress = Arc::new(progress);
    let publisher = progress.clone();
    disk.set_on_fatal(Arc::new(move |error| {
        publisher.send_modify(|progress| {
            progress.failed.get_or_insert(error);
        })
    }));
    let stats = Arc::new(StatCells::default());
    let batch_max = disk.cfg.batch_max.max(1);
    let log_dir = disk.cfg.data_log_dir.clone();
    let slow = SlowWatch::new(disk.cfg.slow_batch_warn);
    let purge = Purging::start(&disk)?;
    let writer = Writer { disk, queued, progress, stats: stats.clone(), batch_max, slow, purge };
    #[cfg(not(madsim))]
    std::thread::Builder::new()
        .name("ensemble-disk".to_owned())
        .spawn(move || writer.run())
        .map_err(io_error("spawn the writer thread for", &log_dir))?;
    #[cfg(madsim)]
    {
        let _ = log_dir;
        tokio::spawn(writer.run());
    }
    let handle = WriterHandle { queue, id_last: None, stats, blocked: Duration::ZERO };
    Ok((handle, PersistedReceiver { progress: progress_rx, reported: None }))
}

/// The sending side of the writer.
pub struct WriterHandle {
    queue: mpsc::Sender<Queued>,
    id_last: Option<WriteId>,
    stats: Arc<StatCells>,
    /// Time `submit` spent waiting for room in the queue, since the last `take_blocked`.
    blocked: Duration,
}

/// A write in the writer's queue, with when it was submitted (for the queue wait of a slow
/// batch; the submitter passes a time it already read).
struct Queued {
    id: WriteId,
    write: DurableWrite,
    submitted: Instant,
}

/// Receives the writer's progress: `Input::Persisted { up_to }` for the core.
pub struct PersistedReceiver {
    progress: watch::Receiver<Progress>,
    reported: Option<WriteId>,
}

/// Why the writer no longer accepts or reports writes.
#[derive(Clone, Debug, Error)]
pub enum WriterError {
    /// A disk operation failed; no write after the last reported one is durable. The node
    /// must stop (ZK compat: `SyncRequestProcessor` exits the server on an I/O error).
    #[error("disk writer failed: {0}")]
    Failed(Arc<DiskError>),
    /// The writer finished (its handle was dropped) and everything was reported, or it
    /// panicked on a core bug (an append whose zxid does not increase).
    #[error("disk writer stopped")]
    Stopped,
}

/// Counters of the writer's work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes made durable.
    pub writes: u64,
    /// Batches (reports) made.
    pub batches: u64,
    /// Log syncs (`fdatasync` of appends): at most one per batch.
    pub log_syncs: u64,
}

impl WriterHandle {
    /// Queues a write, waiting while the queue is full. Ids must strictly increase (panics
    /// otherwise: a core bug). Fails once the writer has stopped or failed.
    pub async fn submit(&mut self, id: WriteId, write: DurableWrite) -> Result<(), WriterError> {
        self.submit_at(id, write, Instant::now()).await
    }

    /// [`Self::submit`], for a write submitted at `now` (a time the caller already read, so
    /// the writer can tell how long a batch waited in the queue).
    pub async fn submit_at(
        &mut self,
        id: WriteId,
        write: DurableWrite,
        now: Instant,
    ) -> Result<(), WriterError> {
        assert!(self.id_last < Some(id), "write id {id:?} after {:?}", self.id_last);
        self.id_last = Some(id);
        let queued = Queued { id, write, submitted: now };
        match self.queue.try_send(queued) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WriterError::Stopped),
            Err(mpsc::error::TrySendError::Full(queued)) => {
                // Back pressure: the node loop waits for the disk. Rare, and worth knowing.
                let started = Instant::now();
                let sent = self.queue.send(queued).await.map_err(|_| WriterError::Stopped);
                self.blocked += started.elapsed();
                sent
            }
        }
    }

    /// How long `submit` waited for room in a full queue since the last call.
    pub fn take_blocked(&mut self) -> Duration {
        std::mem::take(&mut self.blocked)
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            batches: self.stats.batches.load(Ordering::Relaxed),
            log_syncs: self.stats.log_syncs.load(Ordering::Relaxed),
        }
    }
}

impl PersistedReceiver {
    /// Waits until more writes are durable and returns the highest durable id (every write
    /// `<=` it is durable). Ids only grow. After a failure, returns the failure.
    pub async fn recv(&mut self) -> Result<WriteId, WriterError> {
        loop {
            if let Some(news) = self.news() {
                return news;
            }
            if self.progress.changed().await.is_err() {
                return self.news().unwrap_or(Err(WriterError::Stopped));
            }
        }
    }

    /// What [`Self::recv`] would return now, without waiting: `None` if nothing new is
    /// durable (and nothing failed).
    pub fn try_recv(&mut self) -> Option<Result<WriteId, WriterError>> {
        self.news()
    }

    /// Waits until the writer has ended and closed its files (and released the directory
    /// locks); it ends once its handle is dropped and the queue is drained, or after a
    /// failure. Progress not yet received is dropped.
    pub async fn closed(&mut self) {
        while self.progress.changed().await.is_ok() {}
    }

    fn news(&mut self) -> Option<Result<WriteId, WriterError>> {
        let progress = self.progress.borrow_and_update();
        if let Some(error) = &progress.failed {
            return Some(Err(WriterError::Failed(error.clone())));
        }
        let durable = progress.durable.filter(|&id| Some(id) > self.reported)?;
        self.reported = Some(durable);
        Some(Ok(durable))
    }
}

/// What the writer publishes after each batch.
#[derive(Clone, Debug, Default)]
struct Progress {
    durable: Option<WriteId>,
    failed: Option<Arc<DiskError>>,
}

#[derive(Debug, Default)]
struct StatCells {
    writes: AtomicU64,
    batches: AtomicU64,
    log_syncs: AtomicU64,
}

/// The writer loop's state. `disk` is declared first so the files close (and the directory
/// locks go) before the progress sender drops (a receiver seeing `Stopped` may reopen the
/// directory).
struct Writer<F: FileSystem> {
    disk: Disk<F>,
    queued: mpsc::Receiver<Queued>,
    progress: Arc<watch::Sender<Progress>>,
    stats: Arc<StatCells>,
    batch_max: usize,
    slow: SlowWatch,
    purge: Purging,
}

/// How the writer purges old files (`DiskConfig::purge_interval`).
enum Purging {
    /// Never (the default).
    Off,
    /// A thread of its own purges at start-up and then every interval; it stops when this
    /// sender drops with the writer.
    Thread { _stop: std::sync::mpsc::Sender<()> },
    /// In line, after the first batch that ends past `due` (file systems without a
    /// background handle: simulations).
    InLine { due: Instant, every: Duration },
}

impl Purging {
    fn start<F: FileSystem>(disk: &Disk<F>) -> Result<Purging, DiskError> {
        let Some(every) = disk.cfg.purge_interval else { return Ok(Purging::Off) };
        let Some(mut purger) = disk.purger() else {
            return Ok(Purging::InLine { due: Instant::now(), every });
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let dir = disk.cfg.data_dir.clone();
        std::thread::Builder::new()
            .name("ensemble-purge".to_owned())
            .spawn(move || loop {
                let purged = purger.purge();
                tracing::info!(purged, "purge done");
                // ZK compat: `DatadirCleanupManager` runs `PurgeTxnLog.purge` at a fixed rate
                // from start-up.
                match stopped.recv_timeout(every) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            })
            .map_err(io_error("spawn the purge thread for", &dir))?;
        Ok(Purging::Thread { _stop: stop })
    }
}

impl<F: FileSystem> Writer<F> {
    #[cfg(not(madsim))]
    fn run(mut self) {
        while let Some(first) = self.queued.blocking_recv() {
            let batch = self.drain(first);
            if !self.commit(&batch) {
                return;
            }
        }
        // The handle is gone: let a background snapshot finish before the disk goes.
        let _ = self.disk.poll_snapshot(true);
    }

    #[cfg(madsim)]
    async fn run(mut self) {
        while let Some(first) = self.queued.recv().await {
            let batch = self.drain(first);
            if !self.commit(&batch) {
                return;
            }
        }
    }

    /// `first` and whatever else is queued, up to `batch_max` writes.
    fn drain(&mut self, first: Queued) -> Vec<Queued> {
        let mut batch = vec![first];
        while batch.len() < self.batch_max {
            match self.queued.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        batch
    }

    /// Makes a batch durable and reports it. Returns false after a failure (the writer
    /// stops: nothing later may become durable before the failed write).
    fn commit(&mut self, batch: &[Queued]) -> bool {
        let started = Instant::now();
        let result = self
            .disk
            .poll_snapshot(false)
            .and_then(|()| batch.iter().try_for_each(|queued| self.disk.write(&queued.write)))
            .and_then(|()| self.disk.sync());
        if let Err(error) = result {
            // Fail-stop: nothing after this is written, and no sync is retried. The node loop
            // logs the error and stops the server.
            self.progress.send_modify(|progress| {
                progress.failed.get_or_insert(Arc::new(error));
            });
            return false;
        }
        let last = batch.last().expect("a batch holds at least its first write");
        self.stats.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.log_syncs.store(self.disk.log_sync_count(), Ordering::Relaxed);
        self.progress.send_modify(|progress| progress.durable = Some(last.id));
        let ended = Instant::now();
        let trace = self.disk.take_trace();
        if let Verdict::Warn { suppressed } = self.slow.judge(ended, ended - started) {
            let queued = started.saturating_duration_since(batch[0].submitted);
            tracing::warn!(
                took_ms = %Ms(ended - started),
                queued_ms = %Ms(queued),
                writes = batch.len(),
                appends = trace.appends,
                append_bytes = trace.append_bytes,
                append_writes = trace.append_writes,
                write_ms = %Ms(trace.write_time),
                fdatasyncs = trace.fdatasyncs,
                fdatasync_ms = %Ms(trace.fdatasync_time),
                segments_created = trace.segments_created,
                dir_fsync_ms = %Ms(trace.dir_fsync_time),
                snapshots = trace.snapshots,
                snapshot_ms = %Ms(trace.snapshot_time),
                other_writes = trace.other_writes,
                other_ms = %Ms(trace.other_time),
                suppressed,
                "slow disk batch"
            );
        }
        if let Purging::InLine { due, every } = &mut self.purge {
            if ended >= *due {
                self.disk.purge();
                *due = ended + *every;
            }
        }
        true
    }
}
