//! Server harness: starts the server under test as a subprocess on 127.0.0.1 and talks to it
//! only over TCP.
//!
//! The target comes from the environment:
//! * default: Ensemble, `ensemble server --config <dir>/zoo.cfg` (the binary Cargo built for
//!   this package);
//! * `ENSEMBLE_TEST_TARGET=zookeeper`: Apache ZooKeeper as the reference,
//!   `java -cp <jars> org.apache.zookeeper.server.ZooKeeperServerMain <dir>/zoo.cfg`, with the
//!   jars of the Debian `zookeeper` package (override with `ENSEMBLE_TEST_ZK_CLASSPATH`).
//!
//! Both targets read the very same zoo.cfg. ZooKeeper turns unknown zoo.cfg keys into system
//! properties named `zookeeper.<key>`, which is how `extendedTypesEnabled`,
//! `DigestAuthenticationProvider.superDigest` and `4lw.commands.whitelist` take effect there.
//! The container reaper's knobs (`znode.container.*`) are read by ZooKeeper *without* the
//! `zookeeper.` prefix, so for the ZooKeeper target the harness also passes them as `-D` flags.
//!
//! Readiness is polled with the `ruok` four-letter word (then `srvr` until it stops saying "not
//! currently serving"), with a bounded number of retries. The process is killed (SIGKILL, via
//! `Child::kill`) on drop; `kill` + `restart` reuse the data dir and port for recovery tests.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Which server implementation the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The server of this repository.
    Ensemble,
    /// Apache ZooKeeper from the Debian package: the reference implementation.
    ZooKeeper,
}

/// The target selected by `ENSEMBLE_TEST_TARGET` (`zookeeper` or unset/`ensemble`).
pub fn target() -> Target {
    match std::env::var("ENSEMBLE_TEST_TARGET").as_deref() {
        Ok("zookeeper") | Ok("zk") => Target::ZooKeeper,
        Ok("") | Ok("ensemble") | Err(_) => Target::Ensemble,
        Ok(other) => panic!("ENSEMBLE_TEST_TARGET={other}: expected `ensemble` or `zookeeper`"),
    }
}

/// Returns true (and says so) when the running test only makes sense for Ensemble.
pub fn skip_unless_ensemble(why: &str) -> bool {
    if target() == Target::ZooKeeper {
        eprintln!("skipped under ENSEMBLE_TEST_TARGET=zookeeper: {why}");
        return true;
    }
    false
}

/// How long we wait for a server to come up. Generous: a JVM on a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on any single client operation or awaited event in the tests.
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Session timeout the crate clients ask for; the base zoo.cfg allows it.
pub const CLIENT_SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Tick of every test server; session timeouts are bounded by 2 and 120 ticks.
pub const TICK_MS: u32 = 500;

/// The super digest for `super:test` used by the ACL tests.
pub const SUPER_DIGEST_LINE: &str =
    "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

/// Per-test server settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra zoo.cfg lines, e.g. `extendedTypesEnabled=true`.
    pub extra: Vec<String>,
    /// Value of `4lw.commands.whitelist`; `None` leaves the line out (ZooKeeper's default).
    pub whitelist: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { extra: Vec::new(), whitelist: Some("*".to_string()) }
    }
}

impl Options {
    /// Default options plus the given zoo.cfg lines.
    pub fn with_lines(lines: &[&str]) -> Options {
        Options { extra: lines.iter().map(|line| line.to_string()).collect(), ..Options::default() }
    }
}

/// A running (or killed) server process with its own temp dir, data dir and port.
pub struct Server {
    target: Target,
    dir: tempfile::TempDir,
    port: u16,
    options: Options,
    child: Option<Child>,
    starts: u32,
    /// ZooKeeper's version from `srvr` (ZooKeeper target only).
    zk_version: Option<(u32, u32, u32)>,
}

impl Server {
    /// Starts a server with the default options and waits until it serves.
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    /// Starts a server with `options` and waits until it serves.
    pub fn start_with(options: Options) -> Server {
        let dir = tempfile::Builder::new().prefix("ensemble-clients-").tempdir().expect("tempdir");
        let port = free_port();
        let mut server = Server {
            target: target(),
            dir,
            port,
            options,
            child: None,
            starts: 0,
            zk_version: None,
        };
        fs::create_dir_all(server.data_dir()).expect("create dataDir");
        fs::write(server.config_path(), server.config_text()).expect("write zoo.cfg");
        server.spawn();
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The dataDir of this server.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Path of the zoo.cfg both targets read.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    /// Whether the server implements the behaviour of ZooKeeper `major.minor.patch` or later.
    ///
    /// Ensemble follows the newest reference behaviour (3.9), so this is always true for it.
    /// The Debian reference is 3.8.0, which predates a few fixes and 3.9 changes; tests use this
    /// to keep asserting the newer behaviour for Ensemble while passing on the older reference.
    pub fn behaves_like_at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        match (self.target, self.zk_version) {
            (Target::Ensemble, _) => true,
            (Target::ZooKeeper, Some(version)) => version >= (major, minor, patch),
            (Target::ZooKeeper, None) => false,
        }
    }

    /// Kills the process with SIGKILL (no shutdown hook runs) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data dir, config and port; waits until it serves.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Connects a `zookeeper-client` session with the suite's session timeout.
    pub async fn client(&self) -> zk::Client {
        self.connect(zk::Client::connector()).await
    }

    /// Connects a `zookeeper-client` session after adding `digest` credentials `user:password`.
    pub async fn client_with_digest(&self, user_password: &str) -> zk::Client {
        self.connect(zk::Client::connector().with_auth("digest", user_password.as_bytes())).await
    }

    /// Connects with a caller-prepared connector (session timeout is set here).
    pub async fn connect(&self, connector: zk::Connector) -> zk::Client {
        let connector = connector.with_session_timeout(CLIENT_SESSION_TIMEOUT);
        let addr = self.addr();
        let connecting = connector.connect(&addr);
        match tokio::time::timeout(OP_TIMEOUT, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => panic!("connect to {}: {err}\n{}", self.addr(), self.log_tail()),
            Err(_) => panic!("connect to {} timed out\n{}", self.addr(), self.log_tail()),
        }
    }

    /// Sends a four-letter word and returns the whole text answer.
    pub fn four_letter(&self, word: &str) -> String {
        four_letter(self.port, word).unwrap_or_else(|err| panic!("4lw {word}: {err}"))
    }

    /// Sends arbitrary bytes as a four-letter request (`stmk` with its mask).
    pub fn four_letter_bytes(&self, bytes: &[u8]) -> String {
        four_letter_bytes(self.port, bytes).unwrap_or_else(|err| panic!("4lw {bytes:?}: {err}"))
    }

    /// The start and the end of the server's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let path = self.log_path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let shown = if lines.len() <= 50 {
            lines.join("\n")
        } else {
            let (head, tail) = (&lines[..20], &lines[lines.len() - 30..]);
            format!("{}\n[...]\n{}", head.join("\n"), tail.join("\n"))
        };
        format!("--- server output ({}) ---\n{shown}", path.display())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    fn config_text(&self) -> String {
        let mut text = format!(
            "tickTime={TICK_MS}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             maxSessionTimeout={}\n",
            self.data_dir().display(),
            self.port,
            TICK_MS * 120,
        );
        if let Some(whitelist) = &self.options.whitelist {
            text.push_str(&format!("4lw.commands.whitelist={whitelist}\n"));
        }
        for line in &self.options.extra {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn command(&self) -> Command {
        match self.target {
            Target::Ensemble => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_ensemble"));
                cmd.arg("server").arg("--config").arg(self.config_path());
                cmd
            }
            Target::ZooKeeper => {
                let classpath = std::env::var("ENSEMBLE_TEST_ZK_CLASSPATH").unwrap_or_else(|_| {
                    "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar".to_string()
                });
                let mut cmd = Command::new("java");
                cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]);
                cmd.arg("-Dzookeeper.admin.enableServer=false");
                // Read by ZooKeeper without the `zookeeper.` prefix (ContainerManager).
                for line in &self.options.extra {
                    // The JAAS file: a JVM flag for ZooKeeper (Ensemble also reads zoo.cfg).
                    if line.starts_with("znode.container.")
                        || line.starts_with("java.security.auth.login.config=")
                    {
                        cmd.arg(format!("-D{line}"));
                    }
                }
                cmd.arg("-cp").arg(classpath);
                cmd.arg("org.apache.zookeeper.server.ZooKeeperServerMain");
                cmd.arg(self.config_path());
                cmd
            }
        }
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = fs::File::create(self.log_path()).expect("create server log");
        let log_err = log.try_clone().expect("clone log handle");
        let mut cmd = self.command();
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd.spawn().unwrap_or_else(|err| panic!("spawn {cmd:?}: {err}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{:?} server exited early: {status}\n{}", self.target, self.log_tail());
                }
            }
            match four_letter(self.port, "ruok") {
                // Without a whitelist only `srvr` runs; the refusal still proves we are up.
                Ok(answer) if answer == "imok" || answer.contains("whitelist") => {
                    match four_letter(self.port, "srvr") {
                        Ok(srvr) if !srvr.contains("not currently serving") => {
                            self.zk_version = parse_version(&srvr);
                            return;
                        }
                        Ok(srvr) => last = srvr,
                        Err(err) => last = err.to_string(),
                    }
                }
                Ok(answer) => last = answer,
                Err(err) => last = err.to_string(),
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "{:?} server on port {} not ready after {READY_TIMEOUT:?} (last: {last:?})\n{}",
                    self.target,
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a four-letter word to 127.0.0.1:`port` and reads the answer until the server closes.
pub fn four_letter(port: u16, word: &str) -> std::io::Result<String> {
    four_letter_bytes(port, word.as_bytes())
}

/// [`four_letter`] with arbitrary bytes (`stmk` and its 8-byte mask).
pub fn four_letter_bytes(port: u16, bytes: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(bytes)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// `3.8.0` from `Zookeeper version: 3.8.0-<rev>, built on ...`.
fn parse_version(srvr: &str) -> Option<(u32, u32, u32)> {
    let rest = srvr.strip_prefix("Zookeeper version: ")?;
    let version = rest.split(['-', ',']).next()?;
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// A port that is free now, below the kernel's ephemeral range (32768 and up), so that an
/// outgoing connection of a concurrently running test cannot take it between this check and the
/// server's bind (binding port 0 hands out ports from exactly that range). Each test process
/// starts at its own offset in 10000..20000 (`tests/ensemble_processes.rs` uses 20000 and up).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = 10_000 + (std::process::id() % 400) * 25;
    for _ in 0..10_000 {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 10_000 + (base - 10_000 + offset) % 10_000;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port in 10000..20000");
}

/// Awaits `fut` for at most [`OP_TIMEOUT`], panicking with `what` if it does not finish.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {OP_TIMEOUT:?}: {what}"),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
/// Only for time-based behaviour (session expiry, container/TTL reaping).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("not true after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every file under `dir` (recursively) whose name starts with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_with_prefix(&path, prefix));
        } else if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path);
        }
    }
    found.sort();
    found
}
