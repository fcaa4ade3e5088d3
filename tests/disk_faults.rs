//! Fail-stop on storage errors, in process: a file system that fails chosen operations under
//! the disk, its writer and a whole server. A failed `fdatasync` is never retried, nothing
//! after a failure is reported durable, a failed background snapshot stops the writer even
//! while it is idle, and the server stops with a `ServerFailure::Storage`.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ensemble::core::ids::{SessionId, WriteId, Zxid};
use ensemble::core::io::DurableWrite;
use ensemble::core::snapshot::SnapshotImage;
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::runtime::disk::{
    spawn_writer, Disk, DiskConfig, DiskError, FileDisk, FileSystem, MemDisk, WriterError,
};

/// Which operations fail, and a log of the operations tried.
#[derive(Default)]
struct Plan {
    /// `(operation, a substring of the path)`: fails with `errno` from then on.
    fail: Option<(&'static str, &'static str, i32)>,
    /// Every operation tried, as `op path`.
    calls: Vec<String>,
}

/// Delegates to another file system, except for the operations its plan fails (with a real
/// OS error, as `ENOSPC` or `EIO`). Background handles share the plan.
struct Faulty<F> {
    inner: F,
    plan: Arc<Mutex<Plan>>,
}

impl<F> Faulty<F> {
    fn check(&self, op: &'static str, path: &Path) -> io::Result<()> {
        let mut plan = self.plan.lock().expect("plan");
        plan.calls.push(format!("{op} {}", path.display()));
        match plan.fail {
            Some((fail_op, part, errno))
                if fail_op == op && path.to_string_lossy().contains(part) =>
            {
                Err(io::Error::from_raw_os_error(errno))
            }
            _ => Ok(()),
        }
    }
}

impl<F: FileSystem> FileSystem for Faulty<F> {
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
        self.check("create", path)?;
        self.inner.create(path, bytes)
    }
    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.check("append", path)?;
        self.inner.append(path, bytes)
    }
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        // Appends into a preallocated segment are positioned writes: the same fault point.
        self.check("append", path)?;
        self.inner.write_at(path, offset, bytes)
    }
    fn preallocate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.check("preallocate", path)?;
        self.inner.preallocate(path, len)
    }
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.check("set_len", path)?;
        self.inner.set_len(path, len)
    }
    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.check("sync", path)?;
        self.inner.sync(path)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.check("rename", to)?;
        self.inner.rename(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.check("remove", path)?;
        self.inner.remove(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.check("sync_dir", dir)?;
        self.inner.sync_dir(dir)
    }
    fn background(&self) -> Option<Self> {
        Some(Faulty { inner: self.inner.background()?, plan: self.plan.clone() })
    }
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn append(counter: u32) -> DurableWrite {
    DurableWrite::Append(Txn {
        zxid: Zxid::new(1, counter),
        session: SessionId(0x100),
        cxid: counter as i32,
        time_ms: 1_700_000_000_000,
        op: TxnOp::Create {
            path: format!("/n{counter}"),
            data: Some(Bytes::from_static(b"data")),
            acl: Vec::new().into(),
            ephemeral_owner: 0,
        },
    })
}

fn syncs_of(plan: &Mutex<Plan>, part: &str) -> usize {
    let plan = plan.lock().expect("plan");
    plan.calls.iter().filter(|call| call.starts_with("sync ") && call.contains(part)).count()
}

#[test]
fn a_failed_fdatasync_is_never_retried_and_every_later_write_fails() {
    let plan = Arc::new(Mutex::new(Plan::default()));
    let fs = Faulty { inner: MemDisk::new(), plan: plan.clone() };
    let (mut disk, _) = Disk::open(DiskConfig::new("/d", "/l"), fs).expect("open");
    disk.write(&append(1)).expect("append");
    disk.sync().expect("the first sync works");
    plan.lock().expect("plan").fail = Some(("sync", "/l/log.", EIO));
    disk.write(&append(2)).expect("buffered");
    let error = disk.sync().expect_err("fdatasync fails");
    assert!(matches!(&error, DiskError::Io { op: "fdatasync", .. }), "{error}");
    assert!(error.to_string().contains("/l/log."), "names the file: {error}");
    assert!(error.to_string().contains("Input/output error"), "names the error: {error}");
    let failed_syncs = syncs_of(&plan, "/l/log.");
    // The disk heals, but the disk must not find out: the page cache may have dropped the
    // unsynced pages, and a second fdatasync could then report success for lost data.
    plan.lock().expect("plan").fail = None;
    let again = disk.sync().expect_err("no retry");
    assert!(matches!(again, DiskError::Failed(_)), "{again}");
    assert!(disk.write(&append(3)).is_err(), "no write after a failure");
    let zxid = Zxid::new(1, 2);
    let image = SnapshotImage::new(zxid, &DataTree::new(), Vec::new());
    let snapshot = DurableWrite::Snapshot { zxid, image, background: false };
    assert!(disk.write(&snapshot).is_err());
    assert_eq!(syncs_of(&plan, "/"), failed_syncs, "a file was synced after the failure");
}

#[tokio::test]
async fn the_writer_stops_at_a_failed_fdatasync_without_retrying_it() {
    let plan = Arc::new(Mutex::new(Plan::default()));
    let fs = Faulty { inner: MemDisk::new(), plan: plan.clone() };
    let (disk, _) = Disk::open(DiskConfig::new("/d", "/l"), fs).expect("open");
    let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
    writer.submit(WriteId(1), append(1)).await.expect("submit");
    assert_eq!(persisted.recv().await.expect("durable"), WriteId(1));
    plan.lock().expect("plan").fail = Some(("sync", "/l/log.", ENOSPC));
    writer.submit(WriteId(2), append(2)).await.expect("submit");
    let error = persisted.recv().await.expect_err("the sync fails");
    assert!(matches!(&error, WriterError::Failed(e) if e.to_string().contains("No space")));
    // Later writes are refused or never reported, and the writer ends on its own.
    for id in 3..10 {
        let _ = writer.submit(WriteId(id), append(id as u32)).await;
    }
    drop(writer);
    persisted.closed().await;
    assert_eq!(syncs_of(&plan, "/l/log."), 2, "one good sync and the failed one");
}

// The snapshot thread is a real thread: not under madsim.
#[cfg(not(madsim))]
#[tokio::test]
async fn a_failed_background_snapshot_stops_an_idle_writer() {
    let root = tempfile::tempdir().expect("tmp");
    let plan = Arc::new(Mutex::new(Plan::default()));
    plan.lock().expect("plan").fail = Some(("create", "snapshot.", ENOSPC));
    let fs = Faulty { inner: FileDisk::new(), plan: plan.clone() };
    let cfg = DiskConfig::new(root.path().join("data"), root.path().join("log"));
    let (disk, _) = Disk::open(cfg, fs).expect("open");
    let (mut writer, mut persisted) = spawn_writer(disk).expect("spawn");
    writer.submit(WriteId(1), append(1)).await.expect("submit");
    let zxid = Zxid::new(1, 1);
    let image = SnapshotImage::new(zxid, &DataTree::new(), Vec::new());
    let snapshot = DurableWrite::Snapshot { zxid, image, background: true };
    writer.submit(WriteId(2), snapshot).await.expect("submit");
    // No further write: the failure must come from the snapshot thread itself.
    let failure = loop {
        let news = tokio::time::timeout(Duration::from_secs(60), persisted.recv())
            .await
            .expect("the failure is reported while the writer is idle");
        match news {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    let text = failure.to_string();
    assert!(text.contains("snapshot.") && text.contains("No space left"), "{text}");
    assert!(writer.submit(WriteId(3), append(2)).await.is_err() || persisted.recv().await.is_err());
}

/// A whole standalone server over a file system that fails: it stops by itself and says why.
#[cfg(not(madsim))]
#[tokio::test]
async fn a_server_whose_log_cannot_be_synced_stops() {
    use ensemble::runtime::{config::ServerConfig, start_with, Seams, ServerFailure};
    let plan = Arc::new(Mutex::new(Plan::default()));
    let fs = Faulty { inner: MemDisk::new(), plan: plan.clone() };
    let config = ServerConfig::parse("tickTime=2000\ndataDir=/d\nclientPort=0\n").expect("cfg");
    let mut server =
        start_with(config, ensemble::core::ServerId(0), Seams::new(fs)).await.expect("start");
    let addr = server.client_addr;
    let client = zookeeper_client::Client::connect(&addr.to_string()).await.expect("connect");
    let options =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    client.create("/before", b"x", &options).await.expect("create before the fault");
    plan.lock().expect("plan").fail = Some(("sync", "/d/log.", EIO));
    // The write in flight gets no answer but a closed connection.
    let write =
        tokio::time::timeout(Duration::from_secs(60), client.create("/after", b"", &options));
    assert!(write.await.expect("an answer or a closed connection").is_err());
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.stopped())
        .await
        .expect("the server stops by itself");
    match stopped {
        Err(ServerFailure::Storage(error)) => {
            assert!(error.to_string().contains("/d/log."), "{error}")
        }
        other => panic!("expected a storage failure, got {other:?}"),
    }
    // Its client port is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// `forceSync=no` (`DiskConfig.fsync == false`) skips the log's `fdatasync`, and only then:
/// the default syncs every batch.
#[test]
fn the_log_is_fdatasynced_unless_force_sync_is_off() {
    let log_syncs = |fsync: bool| {
        let plan = Arc::new(Mutex::new(Plan::default()));
        let fs = Faulty { inner: MemDisk::new(), plan: plan.clone() };
        let mut config = DiskConfig::new("/d", "/l");
        config.fsync = fsync;
        let (mut disk, _) = Disk::open(config, fs).expect("open");
        for counter in 1..=3 {
            disk.write(&append(counter)).expect("append");
            disk.sync().expect("sync");
        }
        syncs_of(&plan, "/l/log.")
    };
    assert_eq!(log_syncs(true), 3, "one fdatasync per batch by default");
    assert_eq!(log_syncs(false), 0, "forceSync=no never fdatasyncs the log");
}
