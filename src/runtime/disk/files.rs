//! The file systems under `Disk`: the real one and an in-memory one with a crash model, and
//! atomic file writing over either.

use super::*;
use std::io::Seek as _;
use std::os::unix::fs::FileExt as _;

/// Replaces `dir/name` with what `fill` writes so that a crash leaves the old or the new
/// contents: a `.tmp` file, fsync, rename, directory fsync.
pub(super) fn write_atomic_with<F: FileSystem>(
    fs: &mut F,
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<(), DiskError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    match fs.remove(&tmp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("remove", &tmp)(error));
        }
        _ => {}
    }
    let mut out = FsWriter { fs: &mut *fs, path: &tmp, created: false, unsynced: 0 };
    fill(&mut out).map_err(io_error("write", &tmp))?;
    if !out.created {
        fs.create(&tmp, &[]).map_err(io_error("create", &tmp))?;
    }
    fs.sync(&tmp).map_err(io_error("fsync", &tmp))?;
    fs.rename(&tmp, &path).map_err(io_error("rename", &path))?;
    fs.sync_dir(dir).map_err(io_error("fsync directory", dir))
}

/// Bytes a large file (a snapshot) may have unsynced before it is synced on the way. One
/// `fdatasync` of a whole 200 MB snapshot held the log's `fdatasync` behind it for 85–115 ms
/// (ext4 commits both in one journal transaction); in 4 MiB steps the log waits for at most
/// one step's writeback.
const SYNC_STEP_BYTES: usize = 4 << 20;

/// `io::Write` over a `FileSystem` file: the first write creates it, later ones append, and
/// every [`SYNC_STEP_BYTES`] are synced as they go.
struct FsWriter<'a, F: FileSystem> {
    fs: &'a mut F,
    path: &'a Path,
    created: bool,
    unsynced: usize,
}

impl<F: FileSystem> io::Write for FsWriter<'_, F> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.created {
            true => self.fs.append(self.path, bytes)?,
            false => self.fs.create(self.path, bytes)?,
        }
        self.created = true;
        self.unsynced += bytes.len();
        if self.unsynced >= SYNC_STEP_BYTES {
            self.fs.sync(self.path)?;
            self.unsynced = 0;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The real file system. Keeps the segment being appended to open between calls, and the
/// locks on the data directories for as long as it lives.
#[derive(Debug, Default)]
pub struct FileDisk {
    appender: Option<(PathBuf, File)>,
    locks: Vec<super::lock::DirLock>,
}

impl FileDisk {
    /// A file system with nothing open.
    pub fn new() -> FileDisk {
        FileDisk::default()
    }

    /// The open handle for `path`, opening it for writing if needed. Not `O_APPEND`: on
    /// Linux that would make `write_at` ignore its offset. `append` seeks to the end.
    fn appender(&mut self, path: &Path) -> io::Result<&mut File> {
        if self.appender.as_ref().is_none_or(|(open, _)| open != path) {
            let file = OpenOptions::new().write(true).open(path)?;
            self.appender = Some((path.to_owned(), file));
        }
        Ok(&mut self.appender.as_mut().expect("just opened").1)
    }

    /// Closes the handle for `path` before it is renamed, removed or cut.
    fn forget(&mut self, path: &Path) {
        if self.appender.as_ref().is_some_and(|(open, _)| open == path) {
            self.appender = None;
        }
    }
}

impl FileSystem for FileDisk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn background(&self) -> Option<FileDisk> {
        // Under madsim the writer is a simulated task: no real threads.
        match cfg!(madsim) {
            true => None,
            false => Some(FileDisk::new()),
        }
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 are not ours.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn create(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(bytes)?;
        self.appender = Some((path.to_owned(), file));
        Ok(())
    }

    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let file = self.appender(path)?;
        file.seek(io::SeekFrom::End(0))?;
        file.write_all(bytes)
    }

    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.appender(path)?.write_all_at(bytes, offset)
    }

    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let file = self.appender(path)?;
        let current = file.metadata()?.len();
        if current >= len {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{fallocate, FallocateFlags};
            match fallocate(&*file, FallocateFlags::empty(), current, len - current) {
                Ok(()) => return Ok(()),
                // File systems without fallocate get a sparse tail, as ZooKeeper's
                // `FilePadding` makes (it writes one byte at the new end).
                Err(rustix::io::Errno::OPNOTSUPP) => {}
                Err(error) => return Err(error.into()),
            }
        }
        file.set_len(len)
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.forget(path);
        OpenOptions::new().write(true).open(path)?.set_len(len)
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        match &self.appender {
            Some((open, file)) if open == path => file.sync_data(),
            _ => File::open(path)?.sync_data(),
        }
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(from, to)
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.forget(path);
        std::fs::remove_file(path)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock_dir(&mut self, dir: &Path) -> Result<(), DiskError> {
        // `dataLogDir` is often `dataDir`: one lock each, however they are spelled.
        let canonical = std::fs::canonicalize(dir).map_err(io_error("resolve", dir))?;
        if self.locks.iter().all(|lock| lock.dir != canonical) {
            self.locks.push(super::lock::lock_dir(&canonical)?);
        }
        Ok(())
    }
}

/// An in-memory file system that models what a crash keeps: file contents as of their last
/// `sync` and directory entries as of their directory's last `sync_dir`. Clones share the
/// same files, so a test can keep one to crash and inspect while a `Disk` owns another.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    state: Arc<Mutex<MemState>>,
}

#[derive(Debug, Default)]
struct MemState {
    dirs: BTreeSet<PathBuf>,
    /// Directory entries now.
    names: BTreeMap<PathBuf, u64>,
    /// Directory entries as of the last `sync_dir` of their directory.
    durable_names: BTreeMap<PathBuf, u64>,
    files: BTreeMap<u64, MemFile>,
    next_inode: u64,
}

#[derive(Debug, Default)]
struct MemFile {
    /// Contents up to the last byte written; a preallocated tail past it is not held in
    /// memory (it reads as the end of the file, as zeros would to the log's reader).
    data: Vec<u8>,
    synced: Vec<u8>,
    /// Length reserved by `preallocate` (0 if none). Kept apart so that a simulated disk
    /// does not hold, and clone at every sync, 64 MiB of zeros per segment.
    allocated: usize,
}

impl MemDisk {
    /// An empty file system.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// Simulates a power loss: every unsynced directory change is undone and every file goes
    /// back to its synced contents, except that up to `keep_unsynced` bytes appended after the
    /// last sync survive (a torn write).
    pub fn crash(&self, keep_unsynced: usize) {
        let mut state = self.lock();
        state.names = state.durable_names.clone();
        let live: BTreeSet<u64> = state.names.values().copied().collect();
        state.files.retain(|inode, _| live.contains(inode));
        for file in state.files.values_mut() {
            // Writes since the last sync that only grew the file or wrote over its tail (a
            // preallocated one) can leave their first bytes behind; a file that was cut
            // goes back to its synced contents.
            let mut kept = file.synced.clone();
            if file.data.len() >= file.synced.len() {
                let changed = file.data.iter().zip(&file.synced).position(|(a, b)| a != b);
                let from = changed.unwrap_or(file.synced.len());
                let to = file.data.len().min(from.saturating_add(keep_unsynced));
                if kept.len() < to {
                    kept.resize(to, 0);
                }
                kept[from..to].copy_from_slice(&file.data[from..to]);
            }
            file.data = kept.clone();
            file.synced = kept;
        }
    }

    /// A file's current contents, with its preallocated tail as zeros (what `ls -l` and a
    /// reader of the whole file would see).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        state.names.get(path).map(|inode| {
            let file = &state.files[inode];
            let mut data = file.data.clone();
            if data.len() < file.allocated {
                data.resize(file.allocated, 0);
            }
            data
        })
    }

    /// A file's contents up to its last written byte: the preallocated zeros after it are
    /// left out, which a log reader cannot tell apart (zeros end the log), and which would
    /// otherwise cost a simulated member 64 MiB per segment at every restart.
    fn written(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        state.names.get(path).map(|inode| state.files[inode].data.clone())
    }

    /// Changes a file's contents durably, as a disk fault would.
    pub fn corrupt(&self, path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut state = self.lock();
        let inode = *state.names.get(path).ok_or_else(not_found)?;
        let file = state.files.get_mut(&inode).expect("named inodes exist");
        change(&mut file.data);
        file.synced = file.data.clone();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock can only come from a bug in this module; the state
        // it leaves is still consistent enough for tests to inspect.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn file_mut<'a>(state: &'a mut MemState, path: &Path) -> io::Result<&'a mut MemFile> {
        let inode = *state.names.get(path).ok_or_else(not_found)?;
        Ok(state.files.get_mut(&inode).expect("named inodes exist"))
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl FileSystem for MemDisk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.lock().dirs.insert(dir.to_owned());
        Ok(())
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found());
        }
        let names = state.names.keys().filter(|path| path.parent() == Some(dir));
        Ok(names.filter_map(|path| path.file_name()?.to_str().map(str::to_owned)).collect())
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        self.written(path).ok_or_else(not_found)
    }

    fn create(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if !path.parent().is_some_and(|dir| state.dirs.contains(dir)) {
            return Err(not_found());
        }
        if state.names.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let inode = state.next_inode;
        state.next_inode += 1;
        state.files.insert(inode, MemFile { data: bytes.to_vec(), ..MemFile::default() });
        state.names.insert(path.to_owned(), inode);
        Ok(())
    }

    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        MemDisk::file_mut(&mut self.lock(), path)?.data.extend_from_slice(bytes);
        Ok(())
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut state = self.lock();
        let file = MemDisk::file_mut(&mut state, path)?;
        file.data.resize(len, 0);
        file.allocated = file.allocated.min(len);
        Ok(())
    }

    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let at =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut state = self.lock();
        let data = &mut MemDisk::file_mut(&mut state, path)?.data;
        let end = at + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[at..end].copy_from_slice(bytes);
        Ok(())
    }

    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut state = self.lock();
        let file = MemDisk::file_mut(&mut state, path)?;
        file.allocated = file.allocated.max(len);
        Ok(())
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let file = MemDisk::file_mut(&mut state, path)?;
        file.synced = file.data.clone();
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.names.remove(from).ok_or_else(not_found)?;
        state.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.lock().names.remove(path).map(|_| ()).ok_or_else(not_found)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let state = &mut *state;
        state.durable_names.retain(|path, _| path.parent() != Some(dir));
        for (path, inode) in &state.names {
            if path.parent() == Some(dir) {
                state.durable_names.insert(path.clone(), *inode);
            }
        }
        Ok(())
    }
}
