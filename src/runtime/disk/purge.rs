//! Purging old snapshots and log segments: only on the `autopurge.purgeInterval` timer (see
//! `writer.rs`), never as part of a write, so that nothing depends on it for correctness.
//!
//! ZK compat: `DatadirCleanupManager` (the timer), `PurgeTxnLog.purge` (keep the newest
//! `snapRetainCount` valid snapshots and the logs they need; see `storage::recovery::purge_plan`).

use super::*;
use crate::storage::recovery::purge_plan;

impl<F: FileSystem> Disk<F> {
    /// Deletes the snapshots and segments `purge_plan` no longer needs (keeping the newest
    /// `snap_retain_count` good snapshots and the log they need) and returns how many. Best
    /// effort: a file that cannot be removed is only logged. Nothing else calls it: purging
    /// is the operator's choice (`autopurge.purgeInterval`), never needed for correctness.
    pub fn purge(&mut self) -> u32 {
        let files_lock = self.files_lock.clone();
        let _purging = lock_ignoring_poison(&files_lock);
        purge_files(&mut self.fs, &self.cfg, &self.damaged_snapshots)
    }

    /// A purge to run on another thread (`None` without a background file handle).
    pub(crate) fn purger(&self) -> Option<Purger<F>> {
        Some(Purger {
            fs: self.fs.background()?,
            cfg: self.cfg.clone(),
            damaged: self.damaged_snapshots.clone(),
            files_lock: self.files_lock.clone(),
        })
    }
}

/// [`Disk::purge`] on a thread of its own: the snapshots found damaged at recovery are left
/// alone, and a truncation waits for it (and it for a truncation).
pub(crate) struct Purger<F> {
    fs: F,
    cfg: DiskConfig,
    damaged: BTreeSet<String>,
    files_lock: Arc<Mutex<()>>,
}

impl<F: FileSystem> Purger<F> {
    /// Purges once; returns how many files went.
    pub(crate) fn purge(&mut self) -> u32 {
        let _purging = lock_ignoring_poison(&self.files_lock);
        purge_files(&mut self.fs, &self.cfg, &self.damaged)
    }
}

/// A lock that guards no data: a panic while holding it leaves nothing inconsistent.
pub(super) fn lock_ignoring_poison(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Deletes the snapshots and segments `purge_plan` no longer needs, and returns how many.
/// Best effort: a file that cannot be removed is only logged, the snapshot is already durable.
fn purge_files<F: FileSystem>(
    fs: &mut F,
    cfg: &DiskConfig,
    damaged_snapshots: &BTreeSet<String>,
) -> u32 {
    let names = match list_files(fs, cfg) {
        Ok(names) => names,
        Err(error) => {
            tracing::warn!(%error, "purge skipped");
            return 0;
        }
    };
    let candidates: Vec<String> =
        names.into_iter().filter(|name| !damaged_snapshots.contains(name)).collect();
    let mut purged = 0;
    for name in purge_plan(&candidates, cfg.snap_retain_count) {
        let path = dir_of((&cfg.data_dir, &cfg.data_log_dir), &name).join(&name);
        match fs.remove(&path) {
            Ok(()) => {
                purged += 1;
                tracing::info!(path = %path.display(), "purged");
            }
            Err(error) => tracing::warn!(path = %path.display(), %error, "purge failed"),
        }
    }
    purged
}
