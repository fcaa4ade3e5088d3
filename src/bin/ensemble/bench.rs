//! `ensemble bench load | memory | compare`: throughput and latency under a closed-loop load,
//! resident memory per member with many znodes, and a side-by-side comparison with Apache
//! ZooKeeper on the same machine.
//!
//! - `load` drives any ZooKeeper-compatible servers with N clients, each on its own TCP
//!   connection and session with one request in flight (like a synchronous ZooKeeper client),
//!   spread round-robin across the listed servers. Each client works on its own znode, so
//!   writes never conflict. Latency is measured per request, from the write of the request to
//!   the read of its reply, for the requests started after the warm-up and finished before the
//!   end; throughput counts those requests over the measured window.
//! - `memory` starts a 3-member ensemble as processes (the `bench failover` helpers), creates
//!   N znodes through pipelined connections, waits until every member holds them, and reads
//!   each member's `VmRSS` from `/proc/<pid>/status`.
//! - `compare` runs both against Ensemble and ZooKeeper, then `bench failover` for each, and
//!   prints the ratios Ensemble/ZooKeeper against the project's targets.
//!
//! The client is our own async wire client (`wire::codec`'s client half over tokio), so both
//! servers see exactly the same bytes. It runs on `--threads` tokio workers (2 by default): on
//! a 2-core machine one thread is itself the bottleneck of Ensemble's getData figure.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use ensemble::wire;
use ensemble::wire::frame::{FrameDecoder, FRAME_LEN_MAX_DEFAULT};
use ensemble::wire::proto::{ConnectRequest, CreateKind, CreateRequest, ReplyHeader, Request};
use ensemble::wire::types::Acl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::failover::{self, Target, MEMBERS};

/// The operation each load client repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// `setData` of `--size` bytes on the client's own znode.
    #[value(name = "setdata")]
    SetData,
    /// `getData` of the client's own znode (created with `--size` bytes).
    #[value(name = "getdata")]
    GetData,
    /// `create` of a persistent sequential child of the client's own znode.
    #[value(name = "create")]
    Create,
    /// `getData` or `setData` on the client's own znode, `--reads` percent of them reads.
    #[value(name = "mixed")]
    Mixed,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::SetData => "setData",
            Op::GetData => "getData",
            Op::Create => "create",
            Op::Mixed => "mixed",
        }
    }
}

/// The knobs of `bench load`.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Client addresses of the servers; client i talks to server i mod len.
    pub servers: Vec<SocketAddr>,
    /// Concurrent clients (connections, sessions).
    pub clients: usize,
    /// The operation.
    pub op: Op,
    /// Payload size in bytes.
    pub size: usize,
    /// Percentage of reads in `mixed`.
    pub reads_percent: u8,
    /// The measured window.
    pub duration: Duration,
    /// Run before the window, not measured.
    pub warmup: Duration,
    /// Load generator threads (1: a single-threaded runtime).
    pub threads: usize,
}

/// What `bench load` measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Successful requests in the window.
    pub ops: u64,
    /// Requests in the window answered with an error code, plus broken connections and
    /// timeouts at any time.
    pub errors: u64,
    /// Error codes seen, with their counts.
    pub error_codes: BTreeMap<i32, u64>,
    /// The window.
    pub window: Duration,
    /// Latencies of the successful requests in the window, µs, sorted.
    pub(crate) latencies_us: Vec<u32>,
}

impl LoadReport {
    /// Successful requests per second over the window.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), in ms (0 without samples).
    pub fn latency_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }

    fn print(&self, options: &LoadOptions) {
        let what = match options.op {
            Op::Mixed => format!("mixed ({}% getData)", options.reads_percent),
            op => op.name().to_string(),
        };
        println!(
            "{what} {} B, {} clients on {} servers, {:.1} s after {:.1} s warm-up: \
             {:.0} ops/s",
            options.size,
            options.clients,
            options.servers.len(),
            self.window.as_secs_f64(),
            options.warmup.as_secs_f64(),
            self.ops_per_sec()
        );
        println!(
            "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.latency_ms(1.0)
        );
        let codes: Vec<String> =
            self.error_codes.iter().map(|(code, count)| format!("{code}: {count}")).collect();
        if codes.is_empty() {
            println!("  errors: {}", self.errors);
        } else {
            println!("  errors: {} (codes {})", self.errors, codes.join(", "));
        }
    }
}

/// Session timeout the clients ask for (servers clamp it to their limits).
pub(crate) const SESSION_TIMEOUT_MS: i32 = 30_000;
/// Bound on connecting and on one round trip.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Every client's znode lives under this one.
const LOAD_ROOT: &str = "/ensemble-bench";
/// The znodes of `bench memory` live under this one.
const MEMORY_ROOT: &str = "/ensemble-memory";
/// `NodeExists`.
const ERR_NODE_EXISTS: i32 = -110;
/// `PERSISTENT_SEQUENTIAL`.
const FLAG_SEQUENTIAL: i32 = 2;

/// `ensemble bench load`: runs the load, prints and returns the figures.
pub fn load(options: &LoadOptions) -> Result<LoadReport> {
    if options.servers.is_empty() || options.clients == 0 {
        bail!("a load needs at least one server and one client");
    }
    let runtime = if options.threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?
    } else {
        runtime()?
    };
    let report = runtime.block_on(run_load(options))?;
    report.print(options);
    Ok(report)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// What every load client shares: the plan and the clock marks.
struct Plan {
    op: Op,
    reads_percent: u8,
    payload: Bytes,
    servers: Vec<SocketAddr>,
    measure_from: Instant,
    measure_to: Instant,
}

/// One client's counts.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    error_codes: BTreeMap<i32, u64>,
}

async fn run_load(options: &LoadOptions) -> Result<LoadReport> {
    let payload = Bytes::from(vec![b'x'; options.size]);
    let servers = options.servers.clone();
    // Phase 1: the root, then every client connects and creates its znode, so that the
    // window starts with all of them ready.
    let mut first = Conn::open(servers[0]).await?;
    first.create_tolerant(LOAD_ROOT, None).await?;
    first.close().await;
    let mut setup = JoinSet::new();
    for index in 0..options.clients {
        setup.spawn(prepare(index, servers[index % servers.len()], payload.clone()));
    }
    let mut conns: Vec<Option<Conn>> = (0..options.clients).map(|_| None).collect();
    while let Some(joined) = setup.join_next().await {
        let (index, conn) = joined.context("setup task")??;
        conns[index] = Some(conn);
    }
    // Phase 2: the load.
    let now = Instant::now();
    let measure_from = now + options.warmup;
    let plan = Arc::new(Plan {
        op: options.op,
        reads_percent: options.reads_percent,
        payload,
        servers,
        measure_from,
        measure_to: measure_from + options.duration,
    });
    let mut clients = JoinSet::new();
    for (index, conn) in conns.into_iter().enumerate() {
        let conn = conn.context("every client was prepared")?;
        clients.spawn(load_client(index, conn, plan.clone()));
    }
    let mut report = LoadReport {
        ops: 0,
        errors: 0,
        error_codes: BTreeMap::new(),
        window: options.duration,
        latencies_us: Vec::new(),
    };
    while let Some(joined) = clients.join_next().await {
        let tally = joined.context("load task")?;
        report.ops += tally.latencies_us.len() as u64;
        report.errors += tally.errors;
        for (code, count) in tally.error_codes {
            *report.error_codes.entry(code).or_default() += count;
        }
        report.latencies_us.extend(tally.latencies_us);
    }
    report.latencies_us.sort_unstable();
    Ok(report)
}

/// Opens client `index`'s session and creates its znode (or resets its data if it exists).
async fn prepare(index: usize, server: SocketAddr, payload: Bytes) -> Result<(usize, Conn)> {
    let mut conn = Conn::open(server).await?;
    let path = client_path(index);
    conn.create_tolerant(&path, Some(payload.clone())).await?;
    let header = conn
        .call(&Request::SetData { path: path.clone(), data: Some(payload), version: -1 })
        .await?;
    if header.err != 0 {
        bail!("setData {path}: error {}", header.err);
    }
    Ok((index, conn))
}

fn client_path(index: usize) -> String {
    format!("{LOAD_ROOT}/c{index}")
}

/// Repeats the plan's operation until the window closes.
async fn load_client(index: usize, mut conn: Conn, plan: Arc<Plan>) -> Tally {
    let path = client_path(index);
    let child = format!("{path}/n");
    let mut tally = Tally::default();
    // xorshift64 for the mixed load's read/write choice; any odd seed will do.
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut attempt = index;
    loop {
        let started = Instant::now();
        if started >= plan.measure_to {
            break;
        }
        let read = match plan.op {
            Op::GetData => true,
            Op::SetData | Op::Create => false,
            Op::Mixed => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % 100 < u64::from(plan.reads_percent)
            }
        };
        let request = if plan.op == Op::Create {
            create_request(&child, Some(plan.payload.clone()), FLAG_SEQUENTIAL)
        } else if read {
            Request::GetData { path: path.clone(), watch: false }
        } else {
            Request::SetData { path: path.clone(), data: Some(plan.payload.clone()), version: -1 }
        };
        let outcome = conn.call(&request).await;
        let done = Instant::now();
        let counted = started >= plan.measure_from && done <= plan.measure_to;
        match outcome {
            Ok(header) if header.err == 0 => {
                if counted {
                    let micros = (done - started).as_micros();
                    tally.latencies_us.push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
            }
            Ok(header) => {
                if counted {
                    tally.errors += 1;
                    *tally.error_codes.entry(header.err).or_default() += 1;
                }
            }
            Err(error) => {
                tally.errors += 1;
                tracing::warn!(client = index, %error, "request failed; reconnecting");
                // A new session on the next server, until one serves or the window closes.
                conn = loop {
                    attempt += 1;
                    let server = plan.servers[attempt % plan.servers.len()];
                    match Conn::open(server).await {
                        Ok(conn) => break conn,
                        Err(_) if Instant::now() < plan.measure_to => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => return tally,
                    }
                };
            }
        }
    }
    conn.close().await;
    tally
}

pub(crate) fn create_request(path: &str, data: Option<Bytes>, flags: i32) -> Request {
    Request::Create(
        CreateKind::Create,
        CreateRequest { path: path.into(), data, acl: Acl::open_unsafe(), flags, ttl: None },
    )
}

/// A bench connection's byte stream: TCP, or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// TLS for every bench connection, once `bench load --tls-*` set it. Process-wide rather
/// than threaded through every `Conn::open` caller (the failover and scale benches too): one
/// bench process measures one transport.
static TLS: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();

/// Makes every later connection TLS, with ZooKeeper-style stores: `key_store` (PEM key and
/// chain, or PKCS12 without a password) and `trust_store` (PEM bundle or PKCS12).
pub fn use_tls(key_store: &str, trust_store: &str) -> Result<()> {
    let props = [
        ("ssl.keyStore.location".to_string(), key_store.to_string()),
        ("ssl.trustStore.location".to_string(), trust_store.to_string()),
    ]
    .into_iter()
    .collect();
    let settings = ensemble::runtime::tls::TlsSettings::from_properties(&props, "ssl.")?;
    let config = ensemble::runtime::tls::client_config(&settings)?;
    let _ = TLS.set(std::sync::Arc::new(config));
    Ok(())
}

/// One client connection and session.
pub(crate) struct Conn {
    addr: SocketAddr,
    stream: Box<dyn Stream>,
    inbound: BytesMut,
    decoder: FrameDecoder,
    xid: i32,
    /// The session timeout the server negotiated, ms.
    pub(crate) timeout_ms: i32,
}

impl Conn {
    /// Connects and opens a new session.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Conn> {
        Conn::open_with_timeout(addr, SESSION_TIMEOUT_MS).await
    }

    /// Connects and opens a new session, asking for a session timeout of `timeout_ms`.
    pub(crate) async fn open_with_timeout(addr: SocketAddr, timeout_ms: i32) -> Result<Conn> {
        let stream = tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match TLS.get() {
            None => Box::new(stream),
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let connecting =
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream);
                Box::new(
                    tokio::time::timeout(OP_TIMEOUT, connecting)
                        .await
                        .with_context(|| format!("TLS handshake with {addr}: timed out"))?
                        .with_context(|| format!("TLS handshake with {addr}"))?,
                )
            }
        };
        let mut conn = Conn {
            addr,
            stream,
            inbound: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::new(FRAME_LEN_MAX_DEFAULT),
            xid: 0,
            timeout_ms: 0,
        };
        let request = ConnectRequest::new_session(timeout_ms);
        conn.stream.write_all(&wire::encode_connect_request(&request)).await?;
        let frame = tokio::time::timeout(OP_TIMEOUT, conn.next_frame())
            .await
            .with_context(|| format!("{addr} did not answer the handshake"))??;
        let response = wire::decode_connect_response(&frame)?;
        if response.session_id == 0 {
            bail!("{addr} refused the session");
        }
        conn.timeout_ms = response.timeout_ms;
        Ok(conn)
    }

    pub(crate) async fn next_frame(&mut self) -> Result<Bytes> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.inbound)? {
                return Ok(frame);
            }
            if self.stream.read_buf(&mut self.inbound).await? == 0 {
                bail!("{} closed the connection", self.addr);
            }
        }
    }

    /// Sends `request` with the next xid and returns that xid.
    pub(crate) async fn send(&mut self, request: &Request) -> Result<i32> {
        self.xid = self.xid.checked_add(1).unwrap_or(1);
        self.stream.write_all(&wire::encode_request(self.xid, request)).await?;
        Ok(self.xid)
    }

    /// Writes `frame`, an encoded request with its own xid (a ping's).
    pub(crate) async fn send_frame(&mut self, frame: &[u8]) -> Result<()> {
        self.stream.write_all(frame).await?;
        Ok(())
    }

    /// The next reply to a request of ours (notifications and pings skipped).
    pub(crate) async fn reply(&mut self) -> Result<ReplyHeader> {
        loop {
            let frame = self.next_frame().await?;
            let (header, _) = wire::decode_reply_header(&frame)?;
            if header.xid > 0 {
                return Ok(header);
            }
        }
    }

    /// One round trip.
    pub(crate) async fn call(&mut self, request: &Request) -> Result<ReplyHeader> {
        let xid = self.send(request).await?;
        let header = tokio::time::timeout(OP_TIMEOUT, self.reply())
            .await
            .with_context(|| format!("{} did not answer within {OP_TIMEOUT:?}", self.addr))??;
        if header.xid != xid {
            bail!("{} answered xid {} to xid {xid}", self.addr, header.xid);
        }
        Ok(header)
    }

    /// Creates `path`; an existing node is fine.
    pub(crate) async fn create_tolerant(&mut self, path: &str, data: Option<Bytes>) -> Result<()> {
        let header = self.call(&create_request(path, data, 0)).await?;
        match header.err {
            0 | ERR_NODE_EXISTS => Ok(()),
            err => bail!("create {path}: error {err}"),
        }
    }

    /// Closes the session, best effort (the server would expire it anyway).
    pub(crate) async fn close(mut self) {
        let _ =
            tokio::time::timeout(Duration::from_secs(1), self.call(&Request::CloseSession)).await;
    }
}

/// The knobs of `bench memory`.
#[derive(Clone, Debug)]
pub struct MemoryOptions {
    /// Which server to measure.
    pub target: Target,
    /// Znodes to create.
    pub znodes: usize,
    /// Data bytes per znode.
    pub size: usize,
    /// `tickTime` in ms.
    pub tick_time_ms: u32,
    /// Java class path of ZooKeeper.
    pub zk_classpath: String,
    /// Keep the temp dir.
    pub keep: bool,
}

/// One member's memory.
#[derive(Clone, Debug)]
pub struct MemberMemory {
    /// `myid`.
    pub id: u64,
    /// Mode from `srvr` at the end.
    pub mode: String,
    /// `VmRSS` once serving, before the znodes, KiB.
    pub rss_before_kib: u64,
    /// `VmRSS` after the znodes, KiB.
    pub rss_after_kib: u64,
    /// `VmHWM` (peak RSS) after the znodes, KiB.
    pub hwm_kib: u64,
}

/// Pipelined creators in `bench memory`.
const CREATE_CONNECTIONS: usize = 8;
/// Requests in flight per creator.
const CREATE_DEPTH: usize = 64;
/// Bound on the members catching up with the creates.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Quiet time before RSS is read.
const SETTLE: Duration = Duration::from_secs(3);

/// `ensemble bench memory`: prints and returns every member's memory.
pub fn memory(options: &MemoryOptions) -> Result<Vec<MemberMemory>> {
    let dir = failover::tempdir()?;
    let result = memory_in(options, &dir);
    if options.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn memory_in(options: &MemoryOptions, dir: &std::path::Path) -> Result<Vec<MemberMemory>> {
    let mut ensemble = failover::Ensemble::create(&ensemble_options(options.target, options), dir)?;
    for id in 1..=MEMBERS {
        ensemble.spawn(id)?;
    }
    ensemble.wait_whole()?;
    let mut before = Vec::new();
    for id in 1..=MEMBERS {
        before.push(member_rss(&ensemble, id)?.0);
    }
    let started = Instant::now();
    runtime()?.block_on(create_many(ensemble.client_addrs(), options.znodes, options.size))?;
    let created_in = started.elapsed();
    wait_znode_count(&ensemble, options.znodes)?;
    std::thread::sleep(SETTLE);
    let mut members = Vec::new();
    for id in 1..=MEMBERS {
        let (rss, hwm) = member_rss(&ensemble, id)?;
        let port = ensemble.client_port(id).context("member port")?;
        let mode = match failover::four_letter(port, "srvr") {
            Ok(text) => match text.lines().find_map(|l| l.strip_prefix("Mode: ")) {
                Some(mode) => mode.to_string(),
                None => text.trim().to_string(),
            },
            Err(error) => format!("srvr: {error}"),
        };
        members.push(MemberMemory {
            id,
            mode,
            rss_before_kib: before[id as usize - 1],
            rss_after_kib: rss,
            hwm_kib: hwm,
        });
    }
    println!(
        "{} members after {} znodes of {} B (created in {:.1} s):",
        options.target.name(),
        options.znodes,
        options.size,
        created_in.as_secs_f64()
    );
    for m in &members {
        println!(
            "  member {} ({:8}): RSS {:7.1} MiB (empty {:6.1} MiB, +{:6.1} MiB), peak {:7.1} MiB",
            m.id,
            m.mode,
            mib(m.rss_after_kib),
            mib(m.rss_before_kib),
            mib(m.rss_after_kib.saturating_sub(m.rss_before_kib)),
            mib(m.hwm_kib)
        );
    }
    Ok(members)
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The `bench failover` options that start an ensemble for the other benches.
fn ensemble_options(target: Target, memory: &MemoryOptions) -> failover::Options {
    failover::Options {
        target,
        runs: 0,
        tick_time_ms: memory.tick_time_ms,
        init_limit: 10,
        sync_limit: 5,
        zk_classpath: memory.zk_classpath.clone(),
        keep: memory.keep,
    }
}

/// `(VmRSS, VmHWM)` of member `id`, KiB.
pub(crate) fn member_rss(ensemble: &failover::Ensemble, id: u64) -> Result<(u64, u64)> {
    let pid = ensemble.pid(id).with_context(|| format!("member {id} is not running"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib = line.trim().trim_end_matches("kB").trim();
        kib.parse().with_context(|| format!("{name} {kib:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Waits until every member's `mntr` reports at least `znodes` znodes.
pub(crate) fn wait_znode_count(ensemble: &failover::Ensemble, znodes: usize) -> Result<()> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let mut counts = Vec::new();
        for id in 1..=ensemble.members() {
            let port = ensemble.client_port(id).context("member port")?;
            let count = failover::four_letter(port, "mntr").ok().and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("zk_znode_count"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            counts.push(count);
        }
        if counts.iter().all(|c| c.is_some_and(|c| c >= znodes)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the members did not reach {znodes} znodes: {counts:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates `MEMORY_ROOT/n<i>` for i in 0..count through pipelined connections.
async fn create_many(servers: Vec<SocketAddr>, count: usize, size: usize) -> Result<()> {
    let znodes = Znodes { root: MEMORY_ROOT.to_string(), count, fanout: 0 };
    create_znodes(servers, &znodes, size).await.map(|_| ())
}

/// A set of znodes under one root: `root/n<i>` (7 digits) when `fanout` is 0, else
/// `root/p<i / fanout>/n<i % fanout>` (4 digits each), so that no parent holds more than
/// `fanout` children.
#[derive(Clone, Debug)]
pub(crate) struct Znodes {
    /// The root, created first.
    pub root: String,
    /// The znodes, not counting the root and the parents.
    pub count: usize,
    /// Children per parent; 0 puts them all under the root.
    pub fanout: usize,
}

impl Znodes {
    /// The path of znode `index`.
    pub(crate) fn path(&self, index: usize) -> String {
        match self.fanout {
            0 => format!("{}/n{index:07}", self.root),
            fanout => format!("{}/p{:04}/n{:04}", self.root, index / fanout, index % fanout),
        }
    }

    /// The parents between the root and the znodes.
    pub(crate) fn parents(&self) -> usize {
        match self.fanout {
            0 => 0,
            fanout => self.count.div_ceil(fanout),
        }
    }

    fn parent_path(&self, parent: usize) -> String {
        format!("{}/p{parent:04}", self.root)
    }
}

/// Creates the root, the parents and the znodes of `znodes` (each of `size` bytes) through
/// [`CREATE_CONNECTIONS`] connections with [`CREATE_DEPTH`] requests in flight each, round-robin
/// over `servers`. Existing znodes are fine. Returns how many times a creator's connection
/// broke and was opened again.
pub(crate) async fn create_znodes(
    servers: Vec<SocketAddr>,
    znodes: &Znodes,
    size: usize,
) -> Result<usize> {
    let mut first = Conn::open(servers[0]).await?;
    first.create_tolerant(&znodes.root, None).await?;
    first.close().await;
    let parents = znodes.clone();
    let parent_path = Arc::new(move |i| parents.parent_path(i));
    let parents = create_pipelined(&servers, znodes.parents(), parent_path, Bytes::new()).await?;
    let children = znodes.clone();
    let path = Arc::new(move |i| children.path(i));
    let payload = Bytes::from(vec![b'm'; size]);
    Ok(parents + create_pipelined(&servers, znodes.count, path, payload).await?)
}

/// The path of the i-th znode of a pipelined create.
type PathOf = Arc<dyn Fn(usize) -> String + Send + Sync>;

/// Bound on getting a creator's connection back after it broke (an election, say).
const CREATE_RECONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates `path(i)` for i in 0..count with `payload` through pipelined connections. A lane
/// whose connection breaks (or goes unanswered) opens a new session on the next server and
/// sends its unacknowledged creates again (`NodeExists` is fine); returns how many times
/// that happened.
async fn create_pipelined(
    servers: &[SocketAddr],
    count: usize,
    path_of: PathOf,
    payload: Bytes,
) -> Result<usize> {
    let mut creators = JoinSet::new();
    for lane in 0..CREATE_CONNECTIONS {
        let servers = servers.to_vec();
        let payload = payload.clone();
        let path_of = path_of.clone();
        creators.spawn(async move {
            let mut attempt = lane;
            let mut conn = Conn::open(servers[attempt % servers.len()]).await?;
            let mut reconnects = 0;
            let mut next = lane;
            // (xid, index) of the creates sent and not yet answered.
            let mut in_flight: VecDeque<(i32, usize)> = VecDeque::new();
            while next < count || !in_flight.is_empty() {
                let step = async {
                    while next < count && in_flight.len() < CREATE_DEPTH {
                        let request = create_request(&path_of(next), Some(payload.clone()), 0);
                        in_flight.push_back((conn.send(&request).await?, next));
                        next += CREATE_CONNECTIONS;
                    }
                    tokio::time::timeout(OP_TIMEOUT, conn.reply())
                        .await
                        .context("a create was not answered in time")?
                };
                let header = match step.await {
                    Ok(header) => header,
                    Err(error) => {
                        reconnects += 1;
                        tracing::warn!(lane, error = %format!("{error:#}"), "create lane reconnects");
                        if let Some((_, index)) = in_flight.front() {
                            next = *index;
                        }
                        in_flight.clear();
                        let deadline = Instant::now() + CREATE_RECONNECT_TIMEOUT;
                        conn = loop {
                            attempt += 1;
                            match Conn::open(servers[attempt % servers.len()]).await {
                                Ok(conn) => break conn,
                                Err(error) if Instant::now() > deadline => {
                                    return Err(error.context(format!(
                                        "create lane {lane}: no session within \
                                         {CREATE_RECONNECT_TIMEOUT:?}"
                                    )));
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                            }
                        };
                        continue;
                    }
                };
                if in_flight.pop_front().map(|(xid, _)| xid) != Some(header.xid) {
                    bail!("reply to xid {} out of order", header.xid);
                }
                if header.err != 0 && header.err != ERR_NODE_EXISTS {
                    bail!("create: error {}", header.err);
                }
            }
            conn.close().await;
            Ok::<_, anyhow::Error>(reconnects)
        });
    }
    let mut reconnects = 0;
    while let Some(joined) = creators.join_next().await {
        reconnects += joined.context("create task")??;
    }
    Ok(reconnects)
}

/// The knobs of `bench compare`.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Load clients.
    pub clients: usize,
    /// Payload bytes.
    pub size: usize,
    /// Measured window per op.
    pub duration: Duration,
    /// Warm-up per op.
    pub warmup: Duration,
    /// Load rounds; each round runs setData then getData on Ensemble, then on ZooKeeper.
    pub rounds: usize,
    /// Unmeasured load per op and target before the rounds.
    pub jvm_warmup: Duration,
    /// Load generator threads.
    pub threads: usize,
    /// Znodes for the memory figure.
    pub znodes: usize,
    /// Leader kills per target.
    pub failover_runs: usize,
    /// `tickTime` of every ensemble.
    pub tick_time_ms: u32,
    /// Java class path of ZooKeeper.
    pub zk_classpath: String,
}

/// One target's figures.
#[derive(Clone, Debug, Default)]
struct Figures {
    set_ops: f64,
    set_p99_ms: f64,
    get_ops: f64,
    get_p99_ms: f64,
    rss_max_mib: f64,
    failover_ms: f64,
}

const TARGETS: [Target; 2] = [Target::Ensemble, Target::Zookeeper];

/// `ensemble bench compare`: the same benches against both servers, then the table.
///
/// The machine may be shared, so the load runs are interleaved: both ensembles run side by
/// side (the idle one costs little) and every round measures Ensemble then ZooKeeper, so a
/// burst of outside load hits both alike. Each figure is the median over the rounds.
pub fn compare(options: &CompareOptions) -> Result<()> {
    println!("{}", machine_line());
    let mut figures = [Figures::default(), Figures::default()];
    let rounds = compare_load(options)?;
    let paired = |e: &[LoadReport], z: &[LoadReport], f: fn(&LoadReport) -> f64| -> String {
        let ratios: Vec<String> =
            e.iter().zip(z).map(|(e, z)| format!("{:.2}", f(e) / f(z))).collect();
        ratios.join(" ")
    };
    let ops = |r: &LoadReport| r.ops_per_sec();
    let p99 = |r: &LoadReport| r.latency_ms(0.99);
    let [(set_e, get_e), (set_z, get_z)] = &rounds;
    let per_round = format!(
        "per-round ratios Ensemble/ZooKeeper: setData ops/s {}; setData p99 {}; getData ops/s {}",
        paired(set_e, set_z, ops),
        paired(set_e, set_z, p99),
        paired(get_e, get_z, ops)
    );
    println!("\n{per_round}");
    for (figures, (set, get)) in figures.iter_mut().zip(rounds) {
        figures.set_ops = median(set.iter().map(LoadReport::ops_per_sec));
        figures.set_p99_ms = median(set.iter().map(|r| r.latency_ms(0.99)));
        figures.get_ops = median(get.iter().map(LoadReport::ops_per_sec));
        figures.get_p99_ms = median(get.iter().map(|r| r.latency_ms(0.99)));
    }
    for (index, target) in TARGETS.into_iter().enumerate() {
        println!("\n== {}: memory ==", target.name());
        let members = memory(&memory_options(target, options))?;
        figures[index].rss_max_mib =
            members.iter().map(|m| mib(m.rss_after_kib)).fold(0.0, f64::max);
    }
    for (index, target) in TARGETS.into_iter().enumerate() {
        println!("\n== {}: failover ==", target.name());
        let failovers = failover::run(&failover::Options {
            target,
            runs: options.failover_runs,
            tick_time_ms: options.tick_time_ms,
            init_limit: 10,
            sync_limit: 5,
            zk_classpath: options.zk_classpath.clone(),
            keep: false,
        })?;
        let median = failovers.get(failovers.len() / 2).context("no failover run")?;
        figures[index].failover_ms = median.as_secs_f64() * 1000.0;
    }
    let [ens, zk] = &figures;
    println!("\n{}", machine_line());
    println!(
        "{} clients, {} B, {} round(s) of {:.0} s per op after {:.0} s warm-up (medians), \
         after {:.0} s of unmeasured load per op; tickTime={} ms",
        options.clients,
        options.size,
        options.rounds,
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.jvm_warmup.as_secs_f64(),
        options.tick_time_ms
    );
    println!("{per_round}");
    println!(
        "| metric | Ensemble | ZooKeeper | Ensemble/ZooKeeper | target |\n|---|---:|---:|---:|---|"
    );
    let row = |name: &str, e: f64, z: f64, digits: usize, target: &str| {
        let ratio = if z > 0.0 { format!("{:.2}", e / z) } else { "-".to_string() };
        println!("| {name} | {e:.digits$} | {z:.digits$} | {ratio} | {target} |");
    };
    row("setData ops/s", ens.set_ops, zk.set_ops, 0, "≥ 2");
    row("setData p99 ms", ens.set_p99_ms, zk.set_p99_ms, 1, "≤ 0.5");
    row("getData ops/s", ens.get_ops, zk.get_ops, 0, "≥ 2");
    row("getData p99 ms", ens.get_p99_ms, zk.get_p99_ms, 1, "-");
    row(
        &format!("RSS MiB, {}k znodes (largest member)", options.znodes / 1000),
        ens.rss_max_mib,
        zk.rss_max_mib,
        1,
        "< 50 MiB",
    );
    row("failover ms (median)", ens.failover_ms, zk.failover_ms, 0, "≤ 0.5");
    Ok(())
}

/// The setData and getData reports of every round, per target (Ensemble first).
type LoadRounds = [(Vec<LoadReport>, Vec<LoadReport>); 2];

/// Starts both ensembles and runs the interleaved load rounds.
fn compare_load(options: &CompareOptions) -> Result<LoadRounds> {
    let dirs = [failover::tempdir()?, failover::tempdir()?];
    let result = (|| -> Result<LoadRounds> {
        let mut ensembles = Vec::new();
        for (target, dir) in TARGETS.into_iter().zip(&dirs) {
            let ensemble = failover::Ensemble::create(&failover_options(target, options), dir)?;
            ensembles.push(ensemble);
        }
        for ensemble in &mut ensembles {
            for id in 1..=MEMBERS {
                ensemble.spawn(id)?;
            }
        }
        for (target, ensemble) in TARGETS.into_iter().zip(&mut ensembles) {
            let leader = ensemble.wait_whole()?;
            println!("{} ensemble whole, leader {leader}", target.name());
        }
        // Unmeasured: lets the JVM compile its hot paths (ZooKeeper's first seconds of load
        // run at a fraction of its warm throughput) and both fill their caches.
        if !options.jvm_warmup.is_zero() {
            for (index, target) in TARGETS.into_iter().enumerate() {
                println!("\n== warm-up, not counted: {} ==", target.name());
                for op in [Op::SetData, Op::GetData] {
                    load(&LoadOptions {
                        servers: ensembles[index].client_addrs(),
                        clients: options.clients,
                        op,
                        size: options.size,
                        reads_percent: 0,
                        duration: options.jvm_warmup,
                        warmup: Duration::ZERO,
                        threads: options.threads,
                    })?;
                }
            }
        }
        let mut rounds: LoadRounds = Default::default();
        for round in 1..=options.rounds {
            for (index, target) in TARGETS.into_iter().enumerate() {
                println!("\n== round {round}: {} ({}) ==", target.name(), machine_line());
                let mut load_options = LoadOptions {
                    servers: ensembles[index].client_addrs(),
                    clients: options.clients,
                    op: Op::SetData,
                    size: options.size,
                    reads_percent: 0,
                    duration: options.duration,
                    warmup: options.warmup,
                    threads: options.threads,
                };
                rounds[index].0.push(load(&load_options)?);
                load_options.op = Op::GetData;
                rounds[index].1.push(load(&load_options)?);
            }
        }
        Ok(rounds)
    })();
    for dir in &dirs {
        let _ = fs::remove_dir_all(dir);
    }
    result
}

fn memory_options(target: Target, options: &CompareOptions) -> MemoryOptions {
    MemoryOptions {
        target,
        znodes: options.znodes,
        size: options.size,
        tick_time_ms: options.tick_time_ms,
        zk_classpath: options.zk_classpath.clone(),
        keep: false,
    }
}

fn failover_options(target: Target, options: &CompareOptions) -> failover::Options {
    ensemble_options(target, &memory_options(target, options))
}

/// The median of `values` (the mean of the middle two of an even count); 0 without values.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Cores and load average, for the record.
pub(crate) fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("machine: {cores} cores, load average {}", load.join(" "))
}

/// Parses `--servers host:port,host:port`.
pub fn parse_servers(text: &str) -> Result<Vec<SocketAddr>> {
    let mut servers = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addr = part
            .to_socket_addrs()
            .with_context(|| format!("resolving {part}"))?
            .next()
            .with_context(|| format!("{part} resolves to no address"))?;
        servers.push(addr);
    }
    if servers.is_empty() {
        bail!("no server in {text:?}");
    }
    Ok(servers)
}

/// Parses `20s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// A minimal join set (madsim's tokio shim has no `tokio::task::JoinSet`): tasks are awaited
/// in spawn order, which is all the bench needs.
pub(crate) struct JoinSet<T> {
    handles: std::collections::VecDeque<tokio::task::JoinHandle<T>>,
}

impl<T: Send + 'static> JoinSet<T> {
    pub(crate) fn new() -> Self {
        JoinSet { handles: std::collections::VecDeque::new() }
    }

    pub(crate) fn spawn(&mut self, task: impl std::future::Future<Output = T> + Send + 'static) {
        self.handles.push_back(tokio::spawn(task));
    }

    pub(crate) async fn join_next(
        &mut self,
    ) -> Option<<tokio::task::JoinHandle<T> as std::future::Future>::Output> {
        let handle = self.handles.pop_front()?;
        Some(handle.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("s").is_err());
    }

    /// A standalone server on a free loopback port, with its data in `dir`. It runs as long as
    /// the returned runtime lives.
    fn standalone(
        dir: &std::path::Path,
    ) -> (tokio::runtime::Runtime, ensemble::runtime::ServerHandle) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
            dir.display()
        );
        let path = dir.join("zoo.cfg");
        fs::write(&path, config).expect("write zoo.cfg");
        let (config, id) =
            ensemble::runtime::config::ServerConfig::load(&path).expect("a valid zoo.cfg");
        let server_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let handle = server_runtime
            .block_on(ensemble::runtime::start(config, id))
            .expect("the server starts");
        (server_runtime, handle)
    }

    #[test]
    fn every_load_op_runs_without_errors_against_a_server() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (_runtime, server) = standalone(dir.path());
        let addr = server.client_addr;
        for op in [Op::SetData, Op::GetData, Op::Create, Op::Mixed] {
            let options = LoadOptions {
                servers: vec![addr],
                clients: 3,
                op,
                size: 100,
                reads_percent: 50,
                duration: Duration::from_millis(300),
                warmup: Duration::from_millis(50),
                threads: 1,
            };
            let report = load(&options).expect("the load runs");
            assert!(report.ops > 0, "{op:?}: no successful request");
            assert_eq!(report.errors, 0, "{op:?}: {:?}", report.error_codes);
            assert_eq!(report.latencies_us.len() as u64, report.ops);
            assert!(report.latencies_us.windows(2).all(|w| w[0] <= w[1]), "sorted");
        }
    }

    #[test]
    fn create_many_creates_exactly_the_requested_znodes() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (_runtime, server) = standalone(dir.path());
        let addr = server.client_addr;
        let count = 1_000;
        let rt = runtime().expect("a runtime");
        rt.block_on(create_many(vec![addr], count, 10)).expect("creates");
        // Again: every create now answers NodeExists, which create_many accepts.
        rt.block_on(create_many(vec![addr], count, 10)).expect("creates again");
        let children = rt.block_on(async {
            let mut conn = Conn::open(addr).await.expect("connect");
            let request = Request::GetAllChildrenNumber { path: MEMORY_ROOT.to_string() };
            let xid = conn.send(&request).await.expect("send");
            let frame = conn.next_frame().await.expect("reply");
            let (header, body) = wire::decode_reply_header(&frame).expect("header");
            assert_eq!((header.xid, header.err), (xid, 0));
            wire::decode_response(request.opcode().code(), body).expect("body")
        });
        assert_eq!(children, ensemble::wire::proto::Response::AllChildrenNumber(count as i32));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let report = LoadReport {
            ops: 100,
            errors: 0,
            error_codes: BTreeMap::new(),
            window: Duration::from_secs(10),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
        };
        assert_eq!(report.ops_per_sec(), 10.0);
        assert_eq!(report.latency_ms(0.5), 50.0);
        assert_eq!(report.latency_ms(0.99), 99.0);
        assert_eq!(report.latency_ms(0.999), 100.0);
        assert_eq!(report.latency_ms(1.0), 100.0);
        assert_eq!(report.latency_ms(0.0), 1.0);
    }
}
