//! Exclusive data directories: an OS file lock (`flock`) on a lock file in each directory,
//! held for as long as the `FileDisk` that took it (the server's life). The kernel drops the
//! lock when the holder exits, however it exits (SIGKILL included), so a crashed holder never
//! blocks a restart; the holder's pid is written into the file only to name it in the error.
//!
//! Ensemble addition: ZooKeeper 3.8 takes no such lock, and two servers started on one
//! `dataDir` both acknowledge writes and leave a directory that no longer loads.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use super::DiskError;

/// The lock file's name in `dataDir` and `dataLogDir`.
pub const LOCK_FILE: &str = "ensemble.lock";

/// A held lock on one directory; dropping it (closing the file) releases it.
#[derive(Debug)]
pub(super) struct DirLock {
    /// The directory, canonical, to tell two spellings of one directory apart.
    pub(super) dir: PathBuf,
    _file: File,
}

/// Locks `dir` (which exists) for this process, or says who holds it.
pub(super) fn lock_dir(dir: &Path) -> Result<DirLock, DiskError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| DiskError::Io { op, path, source }
    };
    let canonical = std::fs::canonicalize(dir).map_err(io("resolve", dir))?;
    let path = canonical.join(LOCK_FILE);
    // Not truncated on open: a holder's pid must survive a refused contender.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("open lock file", &path))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text.trim().parse().ok();
            return Err(DiskError::Locked { dir: canonical, lock_file: path, holder });
        }
        Err(errno) => return Err(io("lock", &path)(io::Error::from(errno))),
    }
    let pid = std::process::id();
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(format!("{pid}\n").as_bytes()))
        .map_err(io("write lock file", &path))?;
    Ok(DirLock { dir: canonical, _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_directory_names_the_holder_and_a_released_one_is_free_again() {
        let root = tempfile::tempdir().expect("tmp");
        let held = lock_dir(root.path()).expect("first lock");
        match lock_dir(root.path()) {
            Err(DiskError::Locked { dir, holder, .. }) => {
                assert_eq!(dir, held.dir);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        lock_dir(root.path()).expect("free after release");
    }
}
