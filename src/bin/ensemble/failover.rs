//! `ensemble bench failover`: how long an ensemble cannot take writes after its leader dies.
//!
//! Starts a 3-member ensemble on 127.0.0.1 as separate processes (Ensemble, or Apache
//! ZooKeeper's `QuorumPeerMain` from the same zoo.cfg files), keeps one client writing, SIGKILLs
//! the leader, and measures the time from the kill to the first successful write *sent after*
//! the kill. The killed member is restarted (same data dir) and the next run starts once the
//! ensemble is whole again. Prints each run and the median.
//!
//! The client is a minimal blocking ZooKeeper client (new session on every reconnect, one
//! `setData` at a time) so that both servers are measured with the very same client. Like a
//! real client it tries the members in turn until one serves.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use ensemble::wire;
use ensemble::wire::proto::{ConnectRequest, CreateKind, CreateRequest, Request};
use ensemble::wire::types::Acl;

/// Which server implementation to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// This repository's `ensemble server`.
    Ensemble,
    /// Apache ZooKeeper (`QuorumPeerMain`), e.g. the Debian `zookeeper` package.
    Zookeeper,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Ensemble => "Ensemble",
            Target::Zookeeper => "ZooKeeper",
        }
    }
}

/// The knobs of a measurement.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server implementation.
    pub target: Target,
    /// Leader kills to measure.
    pub runs: usize,
    /// `tickTime` in ms.
    pub tick_time_ms: u32,
    /// `initLimit` in ticks.
    pub init_limit: u32,
    /// `syncLimit` in ticks.
    pub sync_limit: u32,
    /// Java class path of ZooKeeper.
    pub zk_classpath: String,
    /// Keep the temp dir (configs, data, server logs) for inspection.
    pub keep: bool,
}

/// Members of the measured ensemble.
pub(crate) const MEMBERS: u64 = 3;
/// Bound on waiting for the ensemble to elect and serve (a JVM on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on one measured failover; beyond it the run fails.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one client round trip before the client moves to another member.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Writes that must succeed before the leader is killed.
const WARM_UP_WRITES: usize = 20;
/// The path the client writes.
const PATH: &str = "/failover";

/// Runs the measurement, prints the results and returns the figures, sorted.
pub fn run(options: &Options) -> Result<Vec<Duration>> {
    let dir = tempdir()?;
    let mut ensemble = Ensemble::create(options, &dir)?;
    println!(
        "failover of a {MEMBERS}-member {} ensemble on 127.0.0.1: tickTime={} initLimit={} \
         syncLimit={}; {} runs; data and logs in {}",
        options.target.name(),
        options.tick_time_ms,
        options.init_limit,
        options.sync_limit,
        options.runs,
        dir.display()
    );
    for id in 1..=MEMBERS {
        ensemble.spawn(id)?;
    }
    let mut client = Client::new(ensemble.client_addrs());
    ensemble.wait_whole()?;
    client.create(PATH)?;
    let mut figures = Vec::new();
    for run in 1..=options.runs {
        let leader = ensemble.wait_whole()?;
        let elapsed = measure_once(&mut ensemble, &mut client, leader)?;
        println!("run {run}: leader {leader} killed; first write after {} ms", millis(elapsed));
        figures.push(elapsed);
        ensemble.spawn(leader)?;
    }
    figures.sort();
    if let Some(median) = figures.get(figures.len() / 2) {
        let all: Vec<String> = figures.iter().map(|f| millis(*f)).collect();
        println!(
            "{}: median {} ms (sorted: {} ms)",
            options.target.name(),
            millis(*median),
            all.join(", ")
        );
    }
    drop(ensemble);
    if options.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(figures)
}

/// Writes until warm, kills `leader`, and returns the time to the first write sent after it.
fn measure_once(ensemble: &mut Ensemble, client: &mut Client, leader: u64) -> Result<Duration> {
    let mut successes = 0;
    let warm_by = Instant::now() + READY_TIMEOUT;
    while successes < WARM_UP_WRITES {
        if client.set_data(PATH).is_ok() {
            successes += 1;
        } else if Instant::now() > warm_by {
            bail!("the ensemble does not take writes before the kill");
        }
    }
    let killed_at = Instant::now();
    ensemble.kill(leader);
    loop {
        let sent_at = Instant::now();
        if client.set_data(PATH).is_ok() {
            return Ok(Instant::now() - killed_at);
        }
        if sent_at - killed_at > FAILOVER_TIMEOUT {
            bail!("no write succeeded within {FAILOVER_TIMEOUT:?} of killing the leader");
        }
        // A member that refused us at once: try the next one without spinning.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1000.0)
}

/// A fresh directory under the system temp dir, named after `ensemble-failover`.
pub(crate) fn tempdir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir =
        std::env::temp_dir().join(format!("ensemble-failover-{}-{nanos:x}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// How [`Ensemble::create_with`] lays out and starts the servers, beyond [`Options`].
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Members: 1 is a standalone server (`clientPort`, no `server.N` lines).
    pub members: u64,
    /// More `zoo.cfg` lines, each ending in a newline.
    pub extra_config: String,
    /// The JVM flags of ZooKeeper's `java`, before `-cp`.
    pub zk_jvm_flags: Vec<String>,
    /// `RUST_LOG` of Ensemble's servers (inherited when `None`).
    pub ensemble_log: Option<String>,
}

impl Default for Layout {
    /// What `bench failover`, `memory` and `compare` use: 3 members, a 256 MiB serial-GC JVM.
    fn default() -> Layout {
        Layout {
            members: MEMBERS,
            extra_config: String::new(),
            zk_jvm_flags: ["-Xmx256m", "-XX:+UseSerialGC"].map(String::from).to_vec(),
            ensemble_log: None,
        }
    }
}

/// The member processes, killed on drop.
pub(crate) struct Ensemble {
    target: Target,
    dir: PathBuf,
    zk_classpath: String,
    layout: Layout,
    client_ports: Vec<u16>,
    children: Vec<Option<Child>>,
    logs: Vec<Option<PathBuf>>,
    starts: u32,
}

impl Ensemble {
    /// Writes `zoo.cfg` and `myid` for every member of a 3-member ensemble under `dir`.
    pub(crate) fn create(options: &Options, dir: &Path) -> Result<Ensemble> {
        Ensemble::create_with(options, dir, Layout::default())
    }

    /// Writes `zoo.cfg` and `myid` for every member of `layout` under `dir`.
    pub(crate) fn create_with(options: &Options, dir: &Path, layout: Layout) -> Result<Ensemble> {
        let members = layout.members.max(1);
        let ports = free_ports(3 * members as usize)?;
        let mut servers = String::new();
        for id in 1..=members {
            let base = 3 * (id as usize - 1);
            servers.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                ports[base + 1],
                ports[base + 2],
                ports[base]
            ));
        }
        if members == 1 {
            servers = format!("clientPort={}\nclientPortAddress=127.0.0.1\n", ports[0]);
        }
        for id in 1..=members {
            let data = dir.join(format!("member{id}"));
            fs::create_dir_all(&data)?;
            fs::write(data.join("myid"), format!("{id}\n"))?;
            let config = format!(
                "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n{}{servers}",
                options.tick_time_ms,
                options.init_limit,
                options.sync_limit,
                data.display(),
                layout.extra_config
            );
            fs::write(data.join("zoo.cfg"), config)?;
        }
        let client_ports = (0..members as usize).map(|i| ports[3 * i]).collect();
        Ok(Ensemble {
            target: options.target,
            dir: dir.to_path_buf(),
            zk_classpath: options.zk_classpath.clone(),
            layout,
            client_ports,
            children: (0..members).map(|_| None).collect(),
            logs: (0..members).map(|_| None).collect(),
            starts: 0,
        })
    }

    /// The number of members.
    pub(crate) fn members(&self) -> u64 {
        self.client_ports.len() as u64
    }

    /// The log file of member `id`'s latest start.
    pub(crate) fn log_path(&self, id: u64) -> Option<&Path> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.logs.get(index)?.as_deref()
    }

    pub(crate) fn client_addrs(&self) -> Vec<SocketAddr> {
        self.client_ports.iter().map(|port| SocketAddr::from(([127, 0, 0, 1], *port))).collect()
    }

    pub(crate) fn spawn(&mut self, id: u64) -> Result<()> {
        self.starts += 1;
        let data = self.dir.join(format!("member{id}"));
        let log_path = data.join(format!("server-{}.log", self.starts));
        let log = fs::File::create(&log_path)?;
        let mut command = match self.target {
            Target::Ensemble => {
                // `ENSEMBLE_BIN`: the server binary when this code runs in another executable
                // (`examples/failover_zk_client.rs`).
                let bin = match std::env::var_os("ENSEMBLE_BIN") {
                    Some(bin) => PathBuf::from(bin),
                    None => std::env::current_exe()?,
                };
                let mut command = Command::new(bin);
                command.arg("server").arg("--config").arg(data.join("zoo.cfg"));
                if let Some(filter) = &self.layout.ensemble_log {
                    command.env("RUST_LOG", filter);
                }
                command
            }
            Target::Zookeeper => {
                let mut command = Command::new("java");
                command.args(&self.layout.zk_jvm_flags);
                command.arg("-Dzookeeper.admin.enableServer=false");
                command.arg("-cp").arg(&self.zk_classpath);
                command.arg("org.apache.zookeeper.server.quorum.QuorumPeerMain");
                command.arg(data.join("zoo.cfg"));
                command
            }
        };
        command.current_dir(&data).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = command.spawn().with_context(|| format!("spawning {command:?}"))?;
        self.children[id as usize - 1] = Some(child);
        self.logs[id as usize - 1] = Some(log_path);
        Ok(())
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children[id as usize - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The OS process id of member `id`, while it runs.
    pub(crate) fn pid(&self, id: u64) -> Option<u32> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.children.get(index)?.as_ref().map(Child::id)
    }

    /// The client port of member `id`.
    pub(crate) fn client_port(&self, id: u64) -> Option<u16> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.client_ports.get(index).copied()
    }

    /// Waits until every member serves, one of them as leader (or the only member as
    /// standalone); returns the leader's id.
    pub(crate) fn wait_whole(&mut self) -> Result<u64> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let modes: Vec<Option<String>> = self
                .client_ports
                .iter()
                .map(|port| {
                    let srvr = four_letter(*port, "srvr").ok()?;
                    srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string)
                })
                .collect();
            let leaders: Vec<u64> = (1..=self.members())
                .filter(|id| {
                    matches!(modes[*id as usize - 1].as_deref(), Some("leader" | "standalone"))
                })
                .collect();
            if modes.iter().all(Option::is_some) && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            for (index, child) in self.children.iter_mut().enumerate() {
                if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    bail!("member {} exited: {status}", index + 1);
                }
            }
            if Instant::now() > deadline {
                bail!("no whole ensemble after {READY_TIMEOUT:?}: modes {modes:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for id in 1..=self.members() {
            self.kill(id);
        }
    }
}

/// Ports that were free a moment ago (all bound at once, so they differ).
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

pub(crate) fn four_letter(port: u16, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(OP_TIMEOUT))?;
    stream.write_all(word.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// A blocking client with at most one request in flight.
struct Client {
    members: Vec<SocketAddr>,
    next_member: usize,
    connection: Option<TcpStream>,
    xid: i32,
}

impl Client {
    fn new(members: Vec<SocketAddr>) -> Client {
        Client { members, next_member: 0, connection: None, xid: 0 }
    }

    /// Creates `path` (an existing node is fine), retrying until the ensemble serves.
    fn create(&mut self, path: &str) -> Result<()> {
        let request = Request::Create(
            CreateKind::Create,
            CreateRequest {
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // 0 = created, -110 = NodeExists (a retry after a lost reply).
            match self.call(&request) {
                Ok(0) | Ok(-110) => return Ok(()),
                Ok(err) => bail!("create {path}: error {err}"),
                Err(_) if Instant::now() < deadline => continue,
                Err(error) => return Err(error).context("creating the test node"),
            }
        }
    }

    /// One `setData`; Ok only when the server acknowledged it.
    fn set_data(&mut self, path: &str) -> Result<()> {
        let data = Some(Bytes::from_static(b"x"));
        match self.call(&Request::SetData { path: path.into(), data, version: -1 })? {
            0 => Ok(()),
            err => bail!("setData: error {err}"),
        }
    }

    /// Sends `request` on the current connection (connecting first if needed) and returns the
    /// reply's error code. Any failure drops the connection, so the next call tries the next
    /// member.
    fn call(&mut self, request: &Request) -> Result<i32> {
        let result = self.call_once(request);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn call_once(&mut self, request: &Request) -> Result<i32> {
        if self.connection.is_none() {
            self.connection = Some(self.connect()?);
        }
        self.xid += 1;
        let xid = self.xid;
        let stream = self.connection.as_mut().context("connected")?;
        stream.write_all(&wire::encode_request(xid, request))?;
        loop {
            let frame = read_frame(stream)?;
            let (header, _) = wire::decode_reply_header(&frame)?;
            if header.xid == xid {
                return Ok(header.err);
            }
        }
    }

    /// Opens a new session on the next member in turn.
    fn connect(&mut self) -> Result<TcpStream> {
        let addr = self.members[self.next_member % self.members.len()];
        self.next_member += 1;
        let mut stream = TcpStream::connect_timeout(&addr, OP_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(OP_TIMEOUT))?;
        let request = ConnectRequest::new_session(4_000);
        stream.write_all(&wire::encode_connect_request(&request))?;
        let response = wire::decode_connect_response(&read_frame(&mut stream)?)?;
        if response.session_id == 0 {
            bail!("{addr} refused the session");
        }
        Ok(stream)
    }
}

/// Reads one length-prefixed frame (without the prefix).
fn read_frame(stream: &mut TcpStream) -> Result<Bytes> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length > 1 << 20 {
        bail!("a {length}-byte reply is not what this client expects");
    }
    let mut frame = BytesMut::zeroed(length);
    stream.read_exact(&mut frame)?;
    Ok(frame.freeze())
}
