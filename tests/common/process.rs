//! One `ensemble server --config` child process for the process-level tests: spawned with its
//! log in a file per start, SIGKILLed on drop, frozen with SIGSTOP, and waited for with bounds
//! (never a fixed sleep). Included with `#[path]` by each test file that runs real servers.

#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Bound on an election, a sync, a start or an exit: generous for a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);
/// Bound on one client call.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(50);

/// A server process whose `zoo.cfg` and logs (`server-<start>.log`) live in `dir`.
pub struct ServerProcess {
    /// The directory of `zoo.cfg` and the logs.
    pub dir: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// How many times it was spawned (the number of the latest log).
    pub starts: u32,
}

impl ServerProcess {
    pub fn new(dir: &Path) -> ServerProcess {
        ServerProcess { dir: dir.to_owned(), child: None, starts: 0 }
    }

    /// Starts `ensemble server --config <dir>/zoo.cfg` with a fresh log file. The Java-style
    /// environment (`SERVER_JVMFLAGS`, `JVMFLAGS`) is cleared: the server reads it.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let log = fs::File::create(self.log_path(self.starts)).expect("create log");
        let err = log.try_clone().expect("clone log");
        let child = Command::new(env!("CARGO_BIN_EXE_ensemble"))
            .arg("server")
            .arg("--config")
            .arg(self.dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .env_remove("SERVER_JVMFLAGS")
            .env_remove("JVMFLAGS")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn ensemble server");
        self.child = Some(child);
    }

    /// SIGKILL (`Child::kill`), then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The exit status if the process has exited by itself (reaped; `child` becomes `None`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn exit_status(&mut self) -> ExitStatus {
        assert!(self.child.is_some(), "not running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit:\n{}", self.latest_log());
            std::thread::sleep(POLL);
        }
    }

    /// Freezes the process with SIGSTOP (kill(1)) and waits until Linux reports every one of
    /// its threads stopped (a thread in the middle of an fsync stops only when it returns).
    pub fn freeze(&self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-STOP", &pid]).status();
        assert!(status.expect("run kill").success(), "kill -STOP {pid}");
        let deadline = Instant::now() + WAIT;
        let tasks = PathBuf::from(format!("/proc/{pid}/task"));
        while !fs::read_dir(&tasks).expect("/proc/<pid>/task").flatten().all(|task| {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesized command name: `T` is stopped.
            stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()) == Some('T')
        }) {
            assert!(Instant::now() < deadline, "process {pid} never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn log_path(&self, start: u32) -> PathBuf {
        self.dir.join(format!("server-{start}.log"))
    }

    /// The log of one start. A log file is not a terminal, so it carries no colour codes.
    pub fn log(&self, start: u32) -> String {
        fs::read_to_string(self.log_path(start)).unwrap_or_default()
    }

    pub fn latest_log(&self) -> String {
        self.log(self.starts)
    }

    /// Every log this process wrote, oldest first.
    pub fn all_logs(&self) -> String {
        (1..=self.starts).map(|start| self.log(start)).collect()
    }

    /// The last `lines` lines of the latest log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.latest_log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `count` distinct free ports below the kernel's ephemeral range (32768+), so outgoing
/// connections of concurrently running tests cannot take one between our check and the
/// server's bind. Each test binary starts at its own base (from the pid).
pub fn free_ports(count: usize) -> Vec<u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 400) * 30;
    let mut ports = Vec::with_capacity(count);
    let mut held = Vec::with_capacity(count);
    while ports.len() < count {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000;
        let port = (base + offset) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
            ports.push(port);
        }
    }
    ports
}

/// Sends a four-letter word to 127.0.0.1:`port` and reads the answer to the end.
pub fn four_letter(port: u16, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(word.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// `fut`, or a panic naming `what` after [`OP_TIMEOUT`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {OP_TIMEOUT:?}: {what}"),
    }
}
