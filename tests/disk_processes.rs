//! Real `ensemble server` processes on failing and shared data directories: a full disk
//! (a small tmpfs) and a read-only one stop the server with exit code 10 and one ERROR line,
//! and a restart once the disk is back serves every acknowledged write; a second server on a
//! locked `dataDir` refuses to start (exit code 3) naming the holder; purging follows
//! `autopurge.purgeInterval`.
//!
//! The disk cases mount file systems (`mount -t tmpfs`, `mount --bind -o ro`): they need
//! root, and say so and pass vacuously where mounting is not permitted.

#![cfg(not(madsim))]

use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

#[path = "common/process.rs"]
mod process;
use process::{free_ports, ServerProcess, OP_TIMEOUT, POLL, WAIT};
const EXIT_STORAGE_FAILURE: i32 = 10;
const EXIT_DATA_DIR_UNUSABLE: i32 = 3;

const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// One standalone server process: its zoo.cfg and logs in `dir`, its data in `data_dir`.
struct Server {
    port: u16,
    process: ServerProcess,
}

impl Deref for Server {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

impl Server {
    fn new(dir: &Path, data_dir: &Path, extra: &str) -> Server {
        let port = free_ports(1)[0];
        let cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\n4lw.commands.whitelist=*\n{extra}",
            data_dir.display()
        );
        fs::create_dir_all(dir).expect("server dir");
        fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
        Server { port, process: ServerProcess::new(dir) }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it answers `ruok`.
    fn start(&mut self) {
        self.spawn();
        let deadline = Instant::now() + WAIT;
        while four_letter(self.port, "ruok").as_deref() != Some("imok") {
            if let Some(status) = self.exited() {
                panic!("the server exited with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "the server never answered:\n{}", self.log());
            std::thread::sleep(POLL);
        }
    }

    fn log(&self) -> String {
        self.latest_log()
    }
}

/// A four-letter word's answer, `None` if the port does not answer.
fn four_letter(port: u16, word: &str) -> Option<String> {
    process::four_letter(port, word).ok()
}

async fn connect(server: &Server) -> zk::Client {
    let connect = zk::Client::connector().with_session_timeout(Duration::from_secs(10));
    tokio::time::timeout(WAIT, connect.connect(&server.addr()))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Runs a mount command; `false` if this machine does not allow it.
fn mount(args: &[&str]) -> bool {
    match Command::new("mount").args(args).stderr(Stdio::null()).status() {
        Ok(status) => status.success(),
        Err(_) => false,
    }
}

/// Unmounts on drop (lazily, so that a server still running cannot keep it mounted).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The one ERROR line of a storage failure names the file and the error.
fn assert_one_storage_error_line(log: &str, file_part: &str, error: &str) {
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one ERROR line, got:\n{log}");
    let line = errors[0];
    eprintln!("the storage failure line: {line}");
    assert!(line.contains("storage failure"), "{line}");
    assert!(line.contains(file_part), "names the file ({file_part}): {line}");
    assert!(line.contains(error), "names the error ({error}): {line}");
}

/// Writes `/w<N>` with `size` bytes each until a write fails; returns the acknowledged ones.
async fn write_until_failure(client: &zk::Client, from: usize, size: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for n in from.. {
        let path = format!("/w{n:06}");
        let data = vec![(n % 251) as u8; size];
        match tokio::time::timeout(OP_TIMEOUT, client.create(&path, &data, &PERSISTENT)).await {
            Ok(Ok(_)) => acked.push(path),
            // The write in flight fails (the connection closes); it does not hang.
            Ok(Err(_)) => return acked,
            Err(_) => panic!("a write got no answer within {OP_TIMEOUT:?}"),
        }
        assert!(n < from + 100_000, "the disk never filled up");
    }
    unreachable!()
}

async fn assert_all_served(server: &Server, acked: &[String], size: usize) {
    let client = connect(server).await;
    for path in acked {
        let n: usize = path[2..].parse().expect("numbered path");
        let (data, _) = tokio::time::timeout(OP_TIMEOUT, client.get_data(path))
            .await
            .expect("in time")
            .unwrap_or_else(|error| panic!("acknowledged {path} lost: {error}"));
        assert_eq!(data, vec![(n % 251) as u8; size], "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_server_and_a_restart_keeps_every_acknowledged_write() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    fs::create_dir_all(&data).expect("data dir");
    if !mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs", data.to_str().expect("utf-8")]) {
        eprintln!("SKIPPED: mounting a tmpfs is not permitted here (needs root)");
        return;
    }
    let _mounted = Mounted(data.clone());
    // Log segments preallocated in small steps, so the disk fills up write by write (the
    // default 64 MiB step would fail the first segment of this 8 MiB disk at once).
    let mut server = Server::new(&root.path().join("server"), &data, "preAllocSize=256\n");
    server.start();
    let size = 64 << 10;
    let client = connect(&server).await;
    let acked = write_until_failure(&client, 0, size).await;
    assert!(acked.len() > 10, "only {} writes before the disk filled", acked.len());
    let status = server.exit_status();
    assert_eq!(status.code(), Some(EXIT_STORAGE_FAILURE), "{status}:\n{}", server.log());
    assert_one_storage_error_line(&server.log(), data.to_str().expect("utf-8"), "No space left");
    assert!(four_letter(server.port, "ruok").is_none(), "the client port is closed");

    // Space is back: every acknowledged write is there, and writes work again.
    assert!(mount(&["-o", "remount,size=64m", data.to_str().expect("utf-8")]), "remount");
    server.start();
    assert_all_served(&server, &acked, size).await;
    let again = connect(&server).await;
    again.create("/after", b"", &PERSISTENT).await.expect("writes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_dir_stops_the_server_and_a_restart_keeps_every_acknowledged_write() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    fs::create_dir_all(&data).expect("data dir");
    // Snapshots every few writes: each opens a new file, which a read-only mount refuses.
    let mut server = Server::new(&root.path().join("server"), &data, "snapCount=4\n");
    server.start();
    let client = connect(&server).await;
    let mut acked = Vec::new();
    for n in 0..10 {
        let path = format!("/w{n:06}");
        client.create(&path, &[(n % 251) as u8; 100], &PERSISTENT).await.expect("create");
        acked.push(path);
    }
    let data_str = data.to_str().expect("utf-8");
    if !mount(&["--bind", "-o", "ro", data_str, data_str]) {
        eprintln!("SKIPPED: a read-only bind mount is not permitted here (needs root)");
        return;
    }
    let mounted = Mounted(data.clone());
    acked.extend(write_until_failure(&client, 10, 100).await);
    let status = server.exit_status();
    assert_eq!(status.code(), Some(EXIT_STORAGE_FAILURE), "{status}:\n{}", server.log());
    assert_one_storage_error_line(&server.log(), data_str, "Read-only file system");

    drop(mounted);
    server.start();
    assert_all_served(&server, &acked, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_a_data_dir_refuses_to_start_until_the_first_is_gone() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let mut first = Server::new(&root.path().join("first"), &data, "");
    first.start();
    let mut second = Server::new(&root.path().join("second"), &data, "");
    second.spawn();
    let status = second.exit_status();
    assert_eq!(status.code(), Some(EXIT_DATA_DIR_UNUSABLE), "{status}:\n{}", second.log());
    let log = second.log();
    let canonical = fs::canonicalize(&data).expect("canonical");
    assert!(log.contains(&canonical.display().to_string()), "names the directory:\n{log}");
    assert!(log.contains(&format!("pid {}", first.pid())), "names the holder:\n{log}");
    assert!(four_letter(second.port, "ruok").is_none());

    // A holder killed with SIGKILL leaves no lock behind.
    first.kill();
    second.start();
    let client = connect(&second).await;
    client.create("/mine", b"", &PERSISTENT).await.expect("serves");
}

fn count(dir: &Path, prefix: &str) -> usize {
    fs::read_dir(dir)
        .expect("list")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_purged_by_default_and_the_purge_timer_keeps_the_retained_snapshots() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let mut server = Server::new(&root.path().join("server"), &data, "snapCount=10\n");
    server.start();
    let client = connect(&server).await;
    let mut acked = Vec::new();
    // Until five snapshots landed (one due while another is written is skipped).
    for n in 0.. {
        let path = format!("/w{n:06}");
        client.create(&path, &[(n % 251) as u8; 100], &PERSISTENT).await.expect("create");
        acked.push(path);
        if count(&data, "snapshot.") >= 5 {
            break;
        }
        assert!(n < 20_000, "too few snapshots:\n{}", server.log());
    }
    drop(client);
    server.kill();
    let (snapshots, logs) = (count(&data, "snapshot."), count(&data, "log."));
    assert!(snapshots > 4, "{snapshots} snapshots:\n{}", server.log());
    assert!(logs >= snapshots, "{logs} logs for {snapshots} snapshots: purged");
    assert!(!server.log().contains("purged"), "{}", server.log());

    // With autopurge on, the purge at start-up keeps three snapshots and their logs.
    let mut server = Server::new(
        &root.path().join("purging"),
        &data,
        "snapCount=100000\nautopurge.purgeInterval=1\nautopurge.snapRetainCount=3\n",
    );
    server.start();
    let deadline = Instant::now() + WAIT;
    while count(&data, "snapshot.") > 3 {
        assert!(Instant::now() < deadline, "never purged:\n{}", server.log());
        std::thread::sleep(POLL);
    }
    assert!(count(&data, "log.") < logs, "no log purged");
    assert_all_served(&server, &acked, 100).await;
    // And a restart recovers from what the purge left.
    server.kill();
    server.start();
    assert_all_served(&server, &acked, 100).await;
}
