//! `ensemble bench scale`: Ensemble and Apache ZooKeeper side by side with many znodes
//! (issue #10): the fill, setData under a sync-client load with a per-second latency timeline,
//! a restart, and idle sessions.
//!
//! For each target in turn (Ensemble, then ZooKeeper) a standalone server or a 3-member
//! ensemble is started as processes on 127.0.0.1 (the `bench failover` helpers) with
//! `tickTime`, `snapCount`, `forceSync=yes` and `maxClientCnxns=0` in its `zoo.cfg`, and the
//! scenarios run in this order on the same data:
//!
//! 1. **fill**: N znodes of `--size` bytes, `ROOT/pNNNN/nNNNN` with `--fanout` children per
//!    parent, created through the pipelined creators of `bench memory` (8 connections, 64
//!    requests in flight each). The rate counts the N znodes over the time until the last one
//!    is acknowledged; then, once every member holds them and after a settle, each member's
//!    `VmRSS` and `VmHWM`.
//! 2. **setdata**: `--clients` clients, one connection and one request in flight each, do
//!    `setData` of `--size` bytes on `--hot` of the znodes (spread evenly over them; client i
//!    takes every `clients`-th one in turn) for `--duration`. Each request's latency is put in
//!    the second of the window in which its reply arrived. Every 100 ms a sampler reads each
//!    member's `VmRSS` and the lines its log gained that mention a snapshot (Ensemble logs
//!    `snapshot written` at info; ZooKeeper `Snapshotting: 0x… to …`), so stalls can be set
//!    against snapshots.
//! 3. **restart**: SIGKILL every member, start them again on the same data dirs, and time from
//!    the start of the processes until a new client session's `getData` of a znode succeeds
//!    (polled every 10 ms, trying the members in turn).
//! 4. **sessions**: after a baseline window without them, `--sessions` idle sessions that ping
//!    at a third of their negotiated timeout, as ZooKeeper's client does; the server CPU time
//!    (`utime + stime` of `/proc/<pid>/stat`, summed over the members) over `--duration`.
//!
//! `--scenario setdata` and `--scenario restart` fill first (and report the fill); `--scenario
//! sessions` alone runs on an empty tree. The end prints one table, Ensemble against ZooKeeper
//! with their ratio and the goal beside it.
//!
//! ZooKeeper runs with `--zk-jvm-flags` (by default `-Xmx1000m`, the heap Apache ZooKeeper's
//! `zkEnv.sh` gives a server; Debian's script sets none, which leaves the JVM's default of a
//! quarter of the machine's memory), the JVM's default collector (G1) with `-Xlog:gc` so that
//! its pauses can be set against the timeline, and logs at INFO with timestamps through
//! `slf4j-simple` when Debian's jar is there (without a binding it logs nothing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ensemble::wire;
use ensemble::wire::codec::XID_PING;
use ensemble::wire::proto::Request;

use crate::bench::{
    create_znodes, machine_line, member_rss, mib, wait_znode_count, Conn, JoinSet, LoadReport,
    Znodes, OP_TIMEOUT,
};
use crate::failover::{self, Ensemble, Layout, Target};

/// Which scenarios `bench scale` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Create the znodes; fill rate and memory.
    Fill,
    /// Fill, then setData on `--hot` of the znodes; latency timeline.
    #[value(name = "setdata")]
    SetData,
    /// Fill, then restart every member; time to the first read.
    Restart,
    /// Idle sessions; server CPU.
    Sessions,
    /// All four, in that order, on the same data.
    All,
}

impl Scenario {
    fn fills(self) -> bool {
        self != Scenario::Sessions
    }

    fn runs(self, scenario: Scenario) -> bool {
        self == Scenario::All || self == scenario
    }
}

/// Which servers `bench scale` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Targets {
    /// Ensemble, then ZooKeeper.
    Both,
    /// Ensemble only.
    Ensemble,
    /// ZooKeeper only.
    Zookeeper,
}

impl Targets {
    fn list(self) -> Vec<Target> {
        match self {
            Targets::Both => vec![Target::Ensemble, Target::Zookeeper],
            Targets::Ensemble => vec![Target::Ensemble],
            Targets::Zookeeper => vec![Target::Zookeeper],
        }
    }
}

/// The knobs of `bench scale`.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// The scenarios.
    pub scenario: Scenario,
    /// The servers measured.
    pub targets: Targets,
    /// 1 (standalone) or more.
    pub members: u64,
    /// Znodes of the fill.
    pub znodes: usize,
    /// Data bytes per znode and per setData.
    pub size: usize,
    /// Children per parent in the fill.
    pub fanout: usize,
    /// setData window, and idle-session window.
    pub duration: Duration,
    /// setData clients.
    pub clients: usize,
    /// Znodes the setData clients write.
    pub hot: usize,
    /// `snapCount` of every server.
    pub snap_count: u64,
    /// Idle sessions.
    pub sessions: usize,
    /// Session timeout the idle sessions ask for, ms.
    pub session_timeout_ms: i32,
    /// `tickTime`, ms.
    pub tick_time_ms: u32,
    /// Java class path of ZooKeeper.
    pub zk_classpath: String,
    /// ZooKeeper's JVM flags.
    pub zk_jvm_flags: Vec<String>,
    /// A file for `target<TAB>key<TAB>value` lines of the figures.
    pub summary: Option<PathBuf>,
    /// Keep the data dirs and server logs.
    pub keep: bool,
}

/// Where the znodes live.
const ROOT: &str = "/ensemble-scale";
/// A second whose worst write exceeds this is flagged.
const STALL_MS: f64 = 100.0;
/// RSS and log sampling period during setData.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Bound on a restart until the first read.
const RESTART_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on one read attempt during a restart.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read attempts at once during a restart.
const PROBES_IN_FLIGHT: u64 = 32;
/// Connections opening idle sessions at once.
const SESSION_OPENERS: usize = 64;
/// GC pauses at least this long are listed and marked in the timeline.
const GC_PAUSE_NOTED_MS: f64 = 20.0;
/// Debian's SLF4J binding that makes ZooKeeper log (at INFO, to stderr).
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// One member's memory, KiB.
#[derive(Clone, Debug)]
pub struct MemberRss {
    /// `myid`.
    pub id: u64,
    /// `VmRSS`.
    pub rss_kib: u64,
    /// `VmHWM`, the peak since the process started.
    pub hwm_kib: u64,
}

/// What the fill measured.
#[derive(Clone, Debug)]
pub struct FillReport {
    /// Znodes created (parents and root not counted).
    pub znodes: usize,
    /// Parents created before them.
    pub parents: usize,
    /// Until the last create was acknowledged.
    pub elapsed: Duration,
    /// Creator connections that broke and were opened again.
    pub reconnects: usize,
    /// Every member's memory once all of them hold the znodes.
    pub members: Vec<MemberRss>,
}

impl FillReport {
    /// Znodes per second.
    pub fn rate(&self) -> f64 {
        self.znodes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One second of the setData window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Second {
    /// Replies that arrived in this second.
    pub ops: u64,
    /// Their p99.9 latency, µs.
    pub p999_us: u32,
    /// Their worst latency, µs.
    pub max_us: u32,
    /// The largest member's largest `VmRSS` sample in this second, KiB (0 without a sample).
    pub rss_kib: u64,
    /// Snapshot lines logged in this second.
    pub snapshots: usize,
    /// The longest GC pause logged in this second, ms (ZooKeeper's JVM; 0 without one).
    pub gc_pause_ms: f64,
}

/// A log line that mentions a snapshot, or a JVM GC pause of at least [`GC_PAUSE_NOTED_MS`].
#[derive(Clone, Debug)]
pub struct LogEvent {
    /// Seconds from the start of the window (by when the sampler saw it).
    pub at: f64,
    /// The member that logged it.
    pub member: u64,
    /// The pause for a GC line, ms; `None` for a snapshot line.
    pub gc_pause_ms: Option<f64>,
    /// The line, shortened.
    pub line: String,
}

/// What the setData scenario measured.
#[derive(Clone, Debug)]
pub struct SetDataReport {
    /// ops, errors, latencies over the whole window.
    pub load: LoadReport,
    /// Per second of the window.
    pub timeline: Vec<Second>,
    /// Median of the largest member's `VmRSS` samples, KiB.
    pub rss_steady_kib: u64,
    /// The largest `VmRSS` sample, KiB.
    pub rss_peak_kib: u64,
    /// The largest member's `VmHWM` at the end, KiB.
    pub hwm_kib: u64,
    /// Snapshot lines and GC pauses of [`GC_PAUSE_NOTED_MS`] or more the members logged
    /// during the window, in time order.
    pub events: Vec<LogEvent>,
    /// GC pauses the members logged during the window: count, total ms, longest ms.
    pub gc_pauses: (usize, f64, f64),
}

/// What the restart measured.
#[derive(Clone, Debug)]
pub struct RestartReport {
    /// From starting the processes to the first successful `getData`.
    pub until_read: Duration,
    /// The largest member's `VmRSS` once whole again and settled, KiB.
    pub rss_kib: u64,
}

/// What the idle-sessions scenario measured.
#[derive(Clone, Debug)]
pub struct SessionsReport {
    /// Sessions asked for.
    pub requested: usize,
    /// Sessions opened.
    pub opened: usize,
    /// Time to open them.
    pub open_time: Duration,
    /// Negotiated session timeout of the first session, ms.
    pub timeout_ms: i32,
    /// Pings answered in the measured window.
    pub pings: u64,
    /// Sessions whose connection failed during the window.
    pub failures: u64,
    /// The measured window.
    pub window: Duration,
    /// Server CPU seconds over the window, all members.
    pub cpu_secs: f64,
    /// The baseline window, before the sessions.
    pub baseline_window: Duration,
    /// Server CPU seconds over the baseline window.
    pub baseline_cpu_secs: f64,
}

/// Everything measured on one target.
#[derive(Clone, Debug)]
pub struct TargetReport {
    /// The server.
    pub target: Target,
    /// The fill, if it ran.
    pub fill: Option<FillReport>,
    /// setData, if it ran.
    pub setdata: Option<SetDataReport>,
    /// The restart, if it ran.
    pub restart: Option<RestartReport>,
    /// Idle sessions, if they ran.
    pub sessions: Option<SessionsReport>,
}

/// `ensemble bench scale`: runs the scenarios on every target, prints the details and the
/// table, and returns the reports.
pub fn scale(options: &ScaleOptions) -> Result<Vec<TargetReport>> {
    if options.members == 0 || options.clients == 0 || options.znodes == 0 {
        bail!("bench scale needs at least one member, one client and one znode");
    }
    println!("{}", machine_line());
    println!(
        "scale: {} member(s), {} znodes of {} B ({} per parent), snapCount={}, tickTime={} ms, \
         forceSync=yes; setData: {} clients on {} znodes for {:.0} s; {} idle sessions",
        options.members,
        options.znodes,
        options.size,
        options.fanout,
        options.snap_count,
        options.tick_time_ms,
        options.clients,
        options.hot.min(options.znodes),
        options.duration.as_secs_f64(),
        options.sessions
    );
    let mut reports = Vec::new();
    for target in options.targets.list() {
        println!("\n== {} ({}) ==", target.name(), machine_line());
        let dir = failover::tempdir()?;
        let result = run_target(target, options, &dir)
            .with_context(|| format!("bench scale on {}", target.name()));
        if options.keep {
            println!("kept {}", dir.display());
        } else {
            let _ = fs::remove_dir_all(&dir);
        }
        reports.push(result?);
    }
    println!("\n{}", machine_line());
    print!("{}", table(options, &reports));
    if let Some(path) = &options.summary {
        fs::write(path, summary(&reports))
            .with_context(|| format!("writing the summary to {}", path.display()))?;
    }
    Ok(reports)
}

/// The class path ZooKeeper runs with: `--zk-classpath`, plus Debian's SLF4J binding so that
/// it logs its snapshots.
fn zk_classpath(classpath: &str) -> String {
    if !classpath.contains("slf4j") && Path::new(SLF4J_SIMPLE).exists() {
        format!("{classpath}:{SLF4J_SIMPLE}")
    } else {
        classpath.to_string()
    }
}

fn run_target(target: Target, options: &ScaleOptions, dir: &Path) -> Result<TargetReport> {
    let classpath = zk_classpath(&options.zk_classpath);
    // GC pauses to stdout (the server log), to set them against the timeline.
    let mut zk_jvm_flags = options.zk_jvm_flags.clone();
    zk_jvm_flags.push("-Xlog:gc".to_string());
    if classpath.contains(SLF4J_SIMPLE) {
        // Timestamps, to set the snapshots against the timeline.
        zk_jvm_flags.extend(
            [
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
            ]
            .map(String::from),
        );
    }
    let layout = Layout {
        members: options.members,
        extra_config: format!(
            "snapCount={}\nforceSync=yes\nmaxClientCnxns=0\n",
            options.snap_count
        ),
        zk_jvm_flags,
        ensemble_log: Some("info".to_string()),
    };
    if target == Target::Zookeeper {
        println!("ZooKeeper JVM flags: {}; class path {classpath}", layout.zk_jvm_flags.join(" "));
    }
    let failover_options = failover::Options {
        target,
        runs: 0,
        tick_time_ms: options.tick_time_ms,
        init_limit: 10,
        sync_limit: 5,
        zk_classpath: classpath,
        keep: options.keep,
    };
    let mut ensemble = Ensemble::create_with(&failover_options, dir, layout)?;
    for id in 1..=ensemble.members() {
        ensemble.spawn(id)?;
    }
    ensemble.wait_whole().context("waiting for the servers to serve")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let znodes = Znodes { root: ROOT.to_string(), count: options.znodes, fanout: options.fanout };
    let settle = settle_time(options.duration);
    let mut report =
        TargetReport { target, fill: None, setdata: None, restart: None, sessions: None };
    if options.scenario.fills() {
        report.fill = Some(fill(&ensemble, &runtime, &znodes, options.size, settle)?);
    }
    if options.scenario.runs(Scenario::SetData) {
        report.setdata = Some(setdata(&ensemble, &runtime, &znodes, options)?);
    }
    if options.scenario.runs(Scenario::Restart) {
        report.restart = Some(restart(&mut ensemble, &runtime, &znodes.path(0), settle)?);
    }
    if options.scenario.runs(Scenario::Sessions) {
        report.sessions = Some(sessions(&ensemble, &runtime, options, settle)?);
    }
    if options.keep {
        for id in 1..=ensemble.members() {
            if let Some(log) = ensemble.log_path(id) {
                println!("member {id} log: {}", log.display());
            }
        }
    }
    Ok(report)
}

/// Quiet time before memory is read or CPU is measured: a quarter of the window, 0.5–5 s.
fn settle_time(duration: Duration) -> Duration {
    (duration / 4).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

fn members_rss(ensemble: &Ensemble) -> Result<Vec<MemberRss>> {
    (1..=ensemble.members())
        .map(|id| {
            let (rss_kib, hwm_kib) = member_rss(ensemble, id)?;
            Ok(MemberRss { id, rss_kib, hwm_kib })
        })
        .collect()
}

fn fill(
    ensemble: &Ensemble,
    runtime: &tokio::runtime::Runtime,
    znodes: &Znodes,
    size: usize,
    settle: Duration,
) -> Result<FillReport> {
    let started = Instant::now();
    let reconnects = runtime
        .block_on(create_znodes(ensemble.client_addrs(), znodes, size))
        .context("creating the znodes")?;
    let elapsed = started.elapsed();
    wait_znode_count(ensemble, znodes.count + znodes.parents() + 1)?;
    std::thread::sleep(settle);
    let report = FillReport {
        znodes: znodes.count,
        parents: znodes.parents(),
        elapsed,
        reconnects,
        members: members_rss(ensemble)?,
    };
    println!(
        "fill: {} znodes (+{} parents) in {:.1} s: {:.0} znodes/s{}",
        report.znodes,
        report.parents,
        elapsed.as_secs_f64(),
        report.rate(),
        if reconnects == 0 {
            String::new()
        } else {
            format!(" ({reconnects} creator connection(s) broke and were opened again)")
        }
    );
    for m in &report.members {
        println!(
            "  member {}: RSS {:.1} MiB, peak (VmHWM) {:.1} MiB",
            m.id,
            mib(m.rss_kib),
            mib(m.hwm_kib)
        );
    }
    Ok(report)
}

/// The znodes the setData clients write: `hot` of them, evenly spread.
fn hot_paths(znodes: &Znodes, hot: usize) -> Vec<String> {
    let hot = hot.clamp(1, znodes.count);
    (0..hot).map(|k| znodes.path(k * znodes.count / hot)).collect()
}

/// What the setData clients share.
struct SetPlan {
    paths: Vec<String>,
    clients: usize,
    payload: Bytes,
    servers: Vec<SocketAddr>,
    start: Instant,
    end: Instant,
}

/// One setData client's results.
#[derive(Default)]
struct SetTally {
    /// (reply time from the window's start, latency), µs.
    samples: Vec<(u32, u32)>,
    errors: u64,
    error_codes: BTreeMap<i32, u64>,
}

fn setdata(
    ensemble: &Ensemble,
    runtime: &tokio::runtime::Runtime,
    znodes: &Znodes,
    options: &ScaleOptions,
) -> Result<SetDataReport> {
    let servers = ensemble.client_addrs();
    let conns = runtime.block_on(async {
        let mut conns = Vec::new();
        for index in 0..options.clients {
            conns.push(Conn::open(servers[index % servers.len()]).await?);
        }
        Ok::<_, anyhow::Error>(conns)
    })?;
    let watched: Vec<Watched> =
        (1..=ensemble.members()).map(|id| Watched::new(ensemble, id)).collect::<Result<_>>()?;
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Arc::new(SetPlan {
        paths: hot_paths(znodes, options.hot),
        clients: options.clients,
        payload: Bytes::from(vec![b's'; options.size]),
        servers,
        start,
        end: start + options.duration,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || sample(watched, start, &stop))
    };
    let tallies = runtime.block_on(async {
        let mut clients = JoinSet::new();
        for (index, conn) in conns.into_iter().enumerate() {
            clients.spawn(set_client(index, conn, plan.clone()));
        }
        let mut tallies = Vec::new();
        while let Some(joined) = clients.join_next().await {
            tallies.push(joined.context("setData client task")?);
        }
        Ok::<_, anyhow::Error>(tallies)
    });
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    let tallies = tallies?;
    let hwm_kib = members_rss(ensemble)?.iter().map(|m| m.hwm_kib).max().unwrap_or(0);
    let mut load = LoadReport {
        ops: 0,
        errors: 0,
        error_codes: BTreeMap::new(),
        window: options.duration,
        latencies_us: Vec::new(),
    };
    let mut all = Vec::new();
    for tally in tallies {
        load.errors += tally.errors;
        for (code, count) in tally.error_codes {
            *load.error_codes.entry(code).or_default() += count;
        }
        all.extend(tally.samples);
    }
    load.ops = all.len() as u64;
    load.latencies_us = all.iter().map(|(_, latency)| *latency).collect();
    load.latencies_us.sort_unstable();
    let timeline = timeline(&all, &samples.rss, &samples.events, options.duration);
    let gc_pauses = |events: &[LogEvent]| {
        let pauses: Vec<f64> = events.iter().filter_map(|e| e.gc_pause_ms).collect();
        (pauses.len(), pauses.iter().sum(), pauses.iter().copied().fold(0.0, f64::max))
    };
    let mut rss: Vec<u64> = samples.rss.iter().map(|(_, kib)| *kib).collect();
    rss.sort_unstable();
    let report = SetDataReport {
        load,
        timeline,
        rss_steady_kib: rss.get(rss.len() / 2).copied().unwrap_or(0),
        rss_peak_kib: rss.last().copied().unwrap_or(0),
        hwm_kib,
        gc_pauses: gc_pauses(&samples.events),
        events: samples
            .events
            .into_iter()
            .filter(|e| e.gc_pause_ms.is_none_or(|pause| pause >= GC_PAUSE_NOTED_MS))
            .collect(),
    };
    print_setdata(&report, options);
    Ok(report)
}

/// Repeats setData on the client's share of the hot znodes until the window closes.
async fn set_client(index: usize, mut conn: Conn, plan: Arc<SetPlan>) -> SetTally {
    let mut tally = SetTally::default();
    let mut next = index;
    let mut attempt = index;
    loop {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let path = plan.paths[next % plan.paths.len()].clone();
        next += plan.clients;
        let request = Request::SetData { path, data: Some(plan.payload.clone()), version: -1 };
        let outcome = conn.call(&request).await;
        // A request sent in the window counts even if its reply comes after the window (in
        // the last second), so a stall at the end of the window shows in full.
        let done = Instant::now();
        match outcome {
            Ok(header) if header.err == 0 => {
                if started >= plan.start {
                    tally.samples.push((micros(done - plan.start), micros(done - started)));
                }
            }
            Ok(header) => {
                tally.errors += 1;
                *tally.error_codes.entry(header.err).or_default() += 1;
            }
            Err(error) => {
                tally.errors += 1;
                tracing::warn!(client = index, %error, "setData failed; reconnecting");
                conn = loop {
                    attempt += 1;
                    if Instant::now() >= plan.end {
                        return tally;
                    }
                    match Conn::open(plan.servers[attempt % plan.servers.len()]).await {
                        Ok(conn) => break conn,
                        Err(_) if Instant::now() < plan.end => {
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

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// The nearest-rank quantile `q` of sorted `values` (0 when empty).
fn quantile(sorted: &[u32], q: f64) -> u32 {
    let n = sorted.len();
    if n == 0 {
        return 0;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// Buckets `(reply time, latency)` samples, RSS samples and snapshot lines by second.
fn timeline(
    samples: &[(u32, u32)],
    rss: &[(f64, u64)],
    events: &[LogEvent],
    window: Duration,
) -> Vec<Second> {
    let seconds = (window.as_secs_f64().ceil() as usize).max(1);
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); seconds];
    for (at, latency) in samples {
        let second = (*at / 1_000_000) as usize;
        latencies[second.min(seconds - 1)].push(*latency);
    }
    let bucket = |at: f64| -> Option<usize> { (at >= 0.0).then(|| (at as usize).min(seconds - 1)) };
    let mut timeline: Vec<Second> = latencies
        .into_iter()
        .map(|mut l| {
            l.sort_unstable();
            Second {
                ops: l.len() as u64,
                p999_us: quantile(&l, 0.999),
                max_us: l.last().copied().unwrap_or(0),
                rss_kib: 0,
                snapshots: 0,
                gc_pause_ms: 0.0,
            }
        })
        .collect();
    for (at, kib) in rss {
        if let Some(second) = bucket(*at) {
            timeline[second].rss_kib = timeline[second].rss_kib.max(*kib);
        }
    }
    for event in events {
        if let Some(second) = bucket(event.at) {
            match event.gc_pause_ms {
                None => timeline[second].snapshots += 1,
                Some(pause) => {
                    timeline[second].gc_pause_ms = timeline[second].gc_pause_ms.max(pause);
                }
            }
        }
    }
    timeline
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn print_setdata(report: &SetDataReport, options: &ScaleOptions) {
    let load = &report.load;
    println!(
        "setData: {} clients, {} B, {:.0} s: {:.0} ops/s, {} errors{}",
        options.clients,
        options.size,
        load.window.as_secs_f64(),
        load.ops_per_sec(),
        load.errors,
        if load.error_codes.is_empty() {
            String::new()
        } else {
            format!(" (codes {:?})", load.error_codes)
        }
    );
    println!(
        "  latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        load.latency_ms(0.5),
        load.latency_ms(0.99),
        load.latency_ms(0.999),
        load.latency_ms(1.0)
    );
    println!(
        "  RSS during the run (largest member): steady (median) {:.1} MiB, peak sample {:.1} \
         MiB, VmHWM {:.1} MiB",
        mib(report.rss_steady_kib),
        mib(report.rss_peak_kib),
        mib(report.hwm_kib)
    );
    print!("{}", timeline_text(&report.timeline));
    if !report.events.iter().any(|e| e.gc_pause_ms.is_none()) {
        println!("  no snapshot logged during the window");
    }
    let (count, total, longest) = report.gc_pauses;
    if count > 0 {
        println!("  GC pauses logged: {count}, {total:.0} ms in all, the longest {longest:.1} ms");
    }
    for event in &report.events {
        println!("  {:6.2} s member {}: {}", event.at, event.member, event.line);
    }
}

/// The timeline, three seconds to a line: `second ops p99.9/max ms RSS`, `S` for a second
/// with a snapshot line, `!` for a worst write over [`STALL_MS`].
fn timeline_text(timeline: &[Second]) -> String {
    let mut text = format!(
        "  per second (ops, p99.9/max ms, RSS MiB; S = snapshot logged, G = GC pause ≥ \
         {GC_PAUSE_NOTED_MS:.0} ms, ! = max > {STALL_MS:.0} ms):\n"
    );
    for (row, chunk) in timeline.chunks(3).enumerate() {
        text.push(' ');
        for (column, second) in chunk.iter().enumerate() {
            let index = row * 3 + column;
            let flag = format!(
                "{}{}{}",
                if second.snapshots > 0 { "S" } else { " " },
                if second.gc_pause_ms >= GC_PAUSE_NOTED_MS { "G" } else { " " },
                if ms(second.max_us) > STALL_MS { "!" } else { " " }
            );
            let _ = write!(
                text,
                " {index:>3}s {:>6} {:>7.1}/{:<8.1} {:>6.0}M {flag} |",
                second.ops,
                ms(second.p999_us),
                ms(second.max_us),
                mib(second.rss_kib)
            );
        }
        text.push('\n');
    }
    let stalls: Vec<String> = timeline
        .iter()
        .enumerate()
        .filter(|(_, s)| ms(s.max_us) > STALL_MS)
        .map(|(i, s)| format!("{i}s ({:.0} ms)", ms(s.max_us)))
        .collect();
    if stalls.is_empty() {
        let _ = writeln!(text, "  no second with a write over {STALL_MS:.0} ms");
    } else {
        let _ =
            writeln!(text, "  seconds with a write over {STALL_MS:.0} ms: {}", stalls.join(", "));
    }
    text
}

/// A member whose RSS and log the sampler follows.
struct Watched {
    id: u64,
    pid: u32,
    log: Option<(fs::File, String)>,
}

impl Watched {
    fn new(ensemble: &Ensemble, id: u64) -> Result<Watched> {
        let pid = ensemble.pid(id).with_context(|| format!("member {id} is not running"))?;
        let log = match ensemble.log_path(id) {
            Some(path) => {
                let mut file =
                    fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
                file.seek(SeekFrom::End(0))?;
                Some((file, String::new()))
            }
            None => None,
        };
        Ok(Watched { id, pid, log })
    }

    /// The snapshot and GC-pause lines logged since the last call (shortened), with the
    /// pause of the GC ones.
    fn new_lines(&mut self) -> Vec<(Option<f64>, String)> {
        let Some((file, partial)) = &mut self.log else { return Vec::new() };
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = partial.rfind('\n') else { return Vec::new() };
        let complete: String = partial.drain(..=end).collect();
        let mut lines = Vec::new();
        for line in complete.lines() {
            if let Some(pause) = gc_pause_ms(line) {
                lines.push((Some(pause), shorten(line)));
                continue;
            }
            let lower = line.to_ascii_lowercase();
            // Ensemble's purge lines name snapshot files; they are not snapshots.
            if lower.contains("snapshot") && !lower.contains("purge") {
                lines.push((None, shorten(line)));
            }
        }
        lines
    }
}

/// The pause of a JVM `-Xlog:gc` line (`[…][gc] GC(7) Pause Young (Normal) … 12.345ms`).
fn gc_pause_ms(line: &str) -> Option<f64> {
    if !line.contains("[gc") || !line.contains(" Pause ") {
        return None;
    }
    line.trim().rsplit(' ').next()?.strip_suffix("ms")?.parse().ok()
}

/// A log line without colours and package paths, at most 120 characters.
fn shorten(line: &str) -> String {
    let line = strip_ansi(line.trim())
        .replace("org.apache.zookeeper.server.", "")
        .replace("ensemble::", "");
    let mut short: String = line.chars().take(120).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// Drops terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the sampler saw.
struct Samples {
    /// (seconds from the window's start, the largest member's `VmRSS` KiB).
    rss: Vec<(f64, u64)>,
    events: Vec<LogEvent>,
}

/// Every [`SAMPLE_EVERY`] until `stop`: each member's RSS and new snapshot lines.
fn sample(mut watched: Vec<Watched>, start: Instant, stop: &AtomicBool) -> Samples {
    let mut samples = Samples { rss: Vec::new(), events: Vec::new() };
    let since = |now: Instant| {
        if now >= start {
            (now - start).as_secs_f64()
        } else {
            -(start - now).as_secs_f64()
        }
    };
    loop {
        let at = since(Instant::now());
        let rss = watched.iter().filter_map(|w| proc_status_kib(w.pid, "VmRSS:").ok()).max();
        if let Some(rss) = rss {
            samples.rss.push((at, rss));
        }
        for member in &mut watched {
            for (gc_pause_ms, line) in member.new_lines() {
                samples.events.push(LogEvent { at, member: member.id, gc_pause_ms, line });
            }
        }
        if stop.load(Ordering::Relaxed) {
            return samples;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("{field} {kib:?}"))
}

fn restart(
    ensemble: &mut Ensemble,
    runtime: &tokio::runtime::Runtime,
    path: &str,
    settle: Duration,
) -> Result<RestartReport> {
    for id in 1..=ensemble.members() {
        ensemble.kill(id);
    }
    let started = Instant::now();
    for id in 1..=ensemble.members() {
        ensemble.spawn(id)?;
    }
    let until_read = runtime
        .block_on(first_read(ensemble.client_addrs(), path.to_string(), started))
        .context("reading after the restart")?;
    ensemble.wait_whole().context("waiting for the restarted servers")?;
    std::thread::sleep(settle);
    let rss_kib = members_rss(ensemble)?.iter().map(|m| m.rss_kib).max().unwrap_or(0);
    println!(
        "restart (SIGKILL, same data dirs): first getData after {:.2} s; RSS {:.1} MiB once \
         whole (largest member)",
        until_read.as_secs_f64(),
        mib(rss_kib)
    );
    Ok(RestartReport { until_read, rss_kib })
}

/// Starts a probe every 10 ms (a new session on the next server, then `getData(path)`), each
/// bounded by [`PROBE_TIMEOUT`] but not waited for, until one succeeds; the time from
/// `started` to that success. Probes overlap so that one stuck on a server that accepted the
/// connection before it could serve does not hold the measurement back.
async fn first_read(servers: Vec<SocketAddr>, path: String, started: Instant) -> Result<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Duration, String>>();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut last_error = String::from("none");
    let mut next_probe = tokio::time::Instant::now();
    for attempt in 0usize.. {
        if started.elapsed() > RESTART_TIMEOUT {
            break;
        }
        tokio::select! {
            Some(outcome) = rx.recv() => match outcome {
                Ok(elapsed) => return Ok(elapsed),
                Err(error) => last_error = error,
            },
            _ = tokio::time::sleep_until(next_probe) => {
                next_probe += Duration::from_millis(10);
                if in_flight.load(Ordering::Relaxed) >= PROBES_IN_FLIGHT {
                    continue;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let server = servers[attempt % servers.len()];
                let request = Request::GetData { path: path.clone(), watch: false };
                let (tx, in_flight) = (tx.clone(), in_flight.clone());
                tokio::spawn(async move {
                    let probe = async {
                        let mut conn = Conn::open(server).await?;
                        let header = conn.call(&request).await?;
                        Ok::<_, anyhow::Error>((conn, header.err))
                    };
                    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                        Ok(Ok((conn, 0))) => {
                            let elapsed = started.elapsed();
                            conn.close().await;
                            Ok(elapsed)
                        }
                        Ok(Ok((_, err))) => Err(format!("getData: error {err}")),
                        Ok(Err(error)) => Err(format!("{error:#}")),
                        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
                    };
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send(outcome);
                });
            }
        }
    }
    bail!("no read within {RESTART_TIMEOUT:?} of the restart; last: {last_error}")
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 if that fails).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat: {stat:?}"))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Server CPU seconds summed over the members.
fn members_cpu_secs(ensemble: &Ensemble, ticks: f64) -> Result<f64> {
    let mut total = 0;
    for id in 1..=ensemble.members() {
        let pid = ensemble.pid(id).with_context(|| format!("member {id} is not running"))?;
        total += cpu_ticks(pid)?;
    }
    Ok(total as f64 / ticks)
}

fn sessions(
    ensemble: &Ensemble,
    runtime: &tokio::runtime::Runtime,
    options: &ScaleOptions,
    settle: Duration,
) -> Result<SessionsReport> {
    let ticks = clock_ticks();
    std::thread::sleep(settle);
    let baseline_window = (options.duration / 2).min(Duration::from_secs(10));
    let before = members_cpu_secs(ensemble, ticks)?;
    std::thread::sleep(baseline_window);
    let baseline_cpu_secs = members_cpu_secs(ensemble, ticks)? - before;
    let opening = Instant::now();
    let conns = runtime
        .block_on(open_sessions(
            ensemble.client_addrs(),
            options.sessions,
            options.session_timeout_ms,
        ))
        .context("opening the idle sessions")?;
    let open_time = opening.elapsed();
    let opened = conns.len();
    let timeout_ms = conns.first().map_or(0, |c| c.timeout_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let pings = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (index, conn) in conns.into_iter().enumerate() {
        let phase = index % 100;
        let (stop, pings, failures) = (stop.clone(), pings.clone(), failures.clone());
        tasks.push(runtime.spawn(idle_session(conn, phase, stop, pings, failures)));
    }
    std::thread::sleep(settle);
    let (pings_before, failures_before) =
        (pings.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    let before = members_cpu_secs(ensemble, ticks)?;
    let window_start = Instant::now();
    std::thread::sleep(options.duration);
    let cpu_secs = members_cpu_secs(ensemble, ticks)? - before;
    let window = window_start.elapsed();
    let report = SessionsReport {
        requested: options.sessions,
        opened,
        open_time,
        timeout_ms,
        pings: pings.load(Ordering::Relaxed) - pings_before,
        failures: failures.load(Ordering::Relaxed) - failures_before,
        window,
        cpu_secs,
        baseline_window,
        baseline_cpu_secs,
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    println!(
        "idle sessions: {} of {} opened in {:.1} s, timeout {} ms (a ping every {} ms); \
         {} pings answered in {:.1} s, {} failed sessions",
        report.opened,
        report.requested,
        report.open_time.as_secs_f64(),
        report.timeout_ms,
        report.timeout_ms / 3,
        report.pings,
        report.window.as_secs_f64(),
        report.failures
    );
    println!(
        "  server CPU: {:.2} s over {:.1} s with the sessions ({:.1}% of a core); without them \
         {:.2} s over {:.1} s ({:.1}%)",
        report.cpu_secs,
        report.window.as_secs_f64(),
        100.0 * report.cpu_secs / report.window.as_secs_f64(),
        report.baseline_cpu_secs,
        report.baseline_window.as_secs_f64(),
        100.0 * report.baseline_cpu_secs / report.baseline_window.as_secs_f64().max(1e-9)
    );
    Ok(report)
}

/// Opens `count` sessions, [`SESSION_OPENERS`] at a time, round-robin over `servers`.
async fn open_sessions(
    servers: Vec<SocketAddr>,
    count: usize,
    timeout_ms: i32,
) -> Result<Vec<Conn>> {
    let mut openers = JoinSet::new();
    for lane in 0..SESSION_OPENERS.min(count) {
        let servers = servers.clone();
        openers.spawn(async move {
            let mut conns = Vec::new();
            for index in (lane..count).step_by(SESSION_OPENERS) {
                let server = servers[index % servers.len()];
                conns.push(Conn::open_with_timeout(server, timeout_ms).await?);
            }
            Ok::<_, anyhow::Error>(conns)
        });
    }
    let mut conns = Vec::with_capacity(count);
    while let Some(joined) = openers.join_next().await {
        conns.extend(joined.context("session opener task")??);
    }
    Ok(conns)
}

/// Pings every third of the negotiated timeout (the first after `phase` hundredths of that),
/// as ZooKeeper's client does on an idle connection, until `stop`.
async fn idle_session(
    mut conn: Conn,
    phase: usize,
    stop: Arc<AtomicBool>,
    pings: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
) {
    let every = Duration::from_millis(u64::try_from(conn.timeout_ms / 3).unwrap_or(0))
        .max(Duration::from_millis(100));
    let ping = wire::encode_request(XID_PING, &Request::Ping);
    let mut next = tokio::time::Instant::now() + every * phase as u32 / 100;
    loop {
        tokio::time::sleep_until(next).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        next += every;
        let answered = async {
            conn.send_frame(&ping).await?;
            loop {
                let frame = conn.next_frame().await?;
                let (header, _) = wire::decode_reply_header(&frame)?;
                if header.xid == XID_PING {
                    return Ok::<_, anyhow::Error>(());
                }
            }
        };
        match tokio::time::timeout(OP_TIMEOUT, answered).await {
            Ok(Ok(())) => {
                pings.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// One row of the table.
struct Row {
    metric: String,
    values: [Option<f64>; 2],
    digits: usize,
    goal: &'static str,
    /// Whether Ensemble meets the goal, from (Ensemble, ZooKeeper).
    check: Option<fn(f64, f64) -> bool>,
}

fn rows(options: &ScaleOptions, reports: &[TargetReport]) -> Vec<Row> {
    let of = |target: Target| reports.iter().find(|r| r.target == target);
    let pick = |f: &dyn Fn(&TargetReport) -> Option<f64>| -> [Option<f64>; 2] {
        [of(Target::Ensemble).and_then(f), of(Target::Zookeeper).and_then(f)]
    };
    let row = |metric: &str, digits, goal, check, f: &dyn Fn(&TargetReport) -> Option<f64>| Row {
        metric: metric.to_string(),
        values: pick(f),
        digits,
        goal,
        check,
    };
    let largest = |members: &[MemberRss], f: fn(&MemberRss) -> u64| {
        mib(members.iter().map(f).max().unwrap_or(0))
    };
    let latency = |r: &TargetReport, q: f64| r.setdata.as_ref().map(|s| s.load.latency_ms(q));
    let per_member = if options.members > 1 { " (largest member)" } else { "" };
    vec![
        row("fill znodes/s", 0, "-", None, &|r| r.fill.as_ref().map(FillReport::rate)),
        row(
            &format!("RSS MiB after fill{per_member}"),
            1,
            "≤ 0.25",
            Some(|e, z| e <= 0.25 * z),
            &|r| r.fill.as_ref().map(|f| largest(&f.members, |m| m.rss_kib)),
        ),
        row(
            &format!("peak RSS MiB after fill (VmHWM){per_member}"),
            1,
            "≤ 0.25",
            Some(|e, z| e <= 0.25 * z),
            &|r| r.fill.as_ref().map(|f| largest(&f.members, |m| m.hwm_kib)),
        ),
        row("setData ops/s", 0, "≥ 2", Some(|e, z| e >= 2.0 * z), &|r| {
            r.setdata.as_ref().map(|s| s.load.ops_per_sec())
        }),
        row("setData p50 ms", 2, "-", None, &|r| latency(r, 0.5)),
        row("setData p99 ms", 2, "-", None, &|r| latency(r, 0.99)),
        row("setData p99.9 ms", 2, "≤ 1", Some(|e, z| e <= z), &|r| latency(r, 0.999)),
        row(
            "setData max ms",
            1,
            "≤ 100 ms and < ZK's",
            Some(|e, z| e <= STALL_MS && e < z),
            &|r| latency(r, 1.0),
        ),
        row("seconds with a write > 100 ms", 0, "0", Some(|e, _| e == 0.0), &|r| {
            r.setdata
                .as_ref()
                .map(|s| s.timeline.iter().filter(|s| ms(s.max_us) > STALL_MS).count() as f64)
        }),
        row(
            &format!("RSS MiB during setData, median{per_member}"),
            1,
            "≤ 0.25",
            Some(|e, z| e <= 0.25 * z),
            &|r| r.setdata.as_ref().map(|s| mib(s.rss_steady_kib)),
        ),
        row(
            &format!("RSS MiB during setData, peak (VmHWM){per_member}"),
            1,
            "≤ 0.25",
            Some(|e, z| e <= 0.25 * z),
            &|r| r.setdata.as_ref().map(|s| mib(s.hwm_kib)),
        ),
        row("restart s to first getData", 2, "≤ 0.5", Some(|e, z| e <= 0.5 * z), &|r| {
            r.restart.as_ref().map(|s| s.until_read.as_secs_f64())
        }),
        row(
            &format!("idle-session CPU s ({} sessions, all members)", options.sessions),
            2,
            "≤ 0.3",
            Some(|e, z| e <= 0.3 * z),
            &|r| r.sessions.as_ref().map(|s| s.cpu_secs),
        ),
    ]
}

/// The final table: metric, Ensemble, ZooKeeper, ratio, goal, met.
fn table(options: &ScaleOptions, reports: &[TargetReport]) -> String {
    let mut text = format!(
        "{} znodes of {} B, snapCount={}, {} member(s); setData: {} clients on {} znodes for \
         {:.0} s; {} idle sessions for {:.0} s\n",
        options.znodes,
        options.size,
        options.snap_count,
        options.members,
        options.clients,
        options.hot.min(options.znodes),
        options.duration.as_secs_f64(),
        options.sessions,
        options.duration.as_secs_f64()
    );
    text.push_str(
        "| metric | Ensemble | ZooKeeper | ratio | goal | met |\n|---|---:|---:|---:|---|---|\n",
    );
    for row in rows(options, reports) {
        if row.values.iter().all(Option::is_none) {
            continue;
        }
        let digits = row.digits;
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        let (ratio, met) = match row.values {
            [Some(e), Some(z)] => {
                let ratio = if z > 0.0 { format!("{:.2}", e / z) } else { "-".to_string() };
                let met = row.check.map_or("", |check| if check(e, z) { "yes" } else { "no" });
                (ratio, met)
            }
            _ => ("-".to_string(), ""),
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {ratio} | {} | {met} |",
            row.metric,
            cell(row.values[0]),
            cell(row.values[1]),
            row.goal
        );
    }
    text
}

/// `target<TAB>key<TAB>value` lines, for scripts and the test.
fn summary(reports: &[TargetReport]) -> String {
    let mut text = String::new();
    for report in reports {
        let name = match report.target {
            Target::Ensemble => "ensemble",
            Target::Zookeeper => "zookeeper",
        };
        let mut put = |key: &str, value: f64| {
            let _ = writeln!(text, "{name}\t{key}\t{value}");
        };
        if let Some(fill) = &report.fill {
            put("fill_znodes", fill.znodes as f64);
            put("fill_per_sec", fill.rate());
            put("fill_reconnects", fill.reconnects as f64);
            put("fill_rss_kib", fill.members.iter().map(|m| m.rss_kib).max().unwrap_or(0) as f64);
            put("fill_hwm_kib", fill.members.iter().map(|m| m.hwm_kib).max().unwrap_or(0) as f64);
        }
        if let Some(set) = &report.setdata {
            put("setdata_ops", set.load.ops as f64);
            put("setdata_errors", set.load.errors as f64);
            put("setdata_ops_per_sec", set.load.ops_per_sec());
            put("setdata_p50_ms", set.load.latency_ms(0.5));
            put("setdata_p99_ms", set.load.latency_ms(0.99));
            put("setdata_p999_ms", set.load.latency_ms(0.999));
            put("setdata_max_ms", set.load.latency_ms(1.0));
            put("setdata_seconds", set.timeline.len() as f64);
            let busy = set.timeline.iter().filter(|s| s.ops > 0).count();
            put("setdata_seconds_with_ops", busy as f64);
            let ops: u64 = set.timeline.iter().map(|s| s.ops).sum();
            put("setdata_timeline_ops", ops as f64);
            put("setdata_rss_samples_kib", set.rss_peak_kib as f64);
            let snapshots = set.events.iter().filter(|e| e.gc_pause_ms.is_none()).count();
            put("setdata_snapshots", snapshots as f64);
        }
        if let Some(restart) = &report.restart {
            put("restart_ms", restart.until_read.as_secs_f64() * 1000.0);
            put("restart_rss_kib", restart.rss_kib as f64);
        }
        if let Some(sessions) = &report.sessions {
            put("sessions_opened", sessions.opened as f64);
            put("sessions_pings", sessions.pings as f64);
            put("sessions_failures", sessions.failures as f64);
            put("sessions_cpu_s", sessions.cpu_secs);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_buckets_by_reply_second() {
        let samples = [(10, 1_000), (900_000, 3_000), (1_500_000, 150_000), (2_999_999, 7)];
        let rss = [(0.5, 100), (0.7, 300), (-0.2, 999), (2.1, 50)];
        let events = [
            LogEvent { at: 1.2, member: 1, gc_pause_ms: None, line: "snapshot written".into() },
            LogEvent { at: 2.5, member: 1, gc_pause_ms: Some(30.0), line: "[gc] Pause".into() },
        ];
        let timeline = timeline(&samples, &rss, &events, Duration::from_secs(3));
        assert_eq!(timeline.len(), 3);
        assert_eq!(
            timeline[0],
            Second {
                ops: 2,
                p999_us: 3_000,
                max_us: 3_000,
                rss_kib: 300,
                snapshots: 0,
                gc_pause_ms: 0.0
            }
        );
        assert_eq!(
            timeline[1],
            Second {
                ops: 1,
                p999_us: 150_000,
                max_us: 150_000,
                rss_kib: 0,
                snapshots: 1,
                gc_pause_ms: 0.0
            }
        );
        assert_eq!(timeline[2].ops, 1);
        assert_eq!(timeline[2].rss_kib, 50);
        assert_eq!(timeline[2].gc_pause_ms, 30.0);
        let text = timeline_text(&timeline);
        assert!(text.contains("seconds with a write over 100 ms: 1s (150 ms)"), "{text}");
        assert!(text.contains("S !"), "{text}");
        assert!(text.contains(" G "), "{text}");
    }

    #[test]
    fn stat_lines_give_utime_plus_stime() {
        let stat = "1234 (java thread) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    30 0 123 456 789";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn hot_znodes_spread_over_the_parents() {
        let znodes = Znodes { root: ROOT.into(), count: 10_000, fanout: 1_000 };
        let hot = hot_paths(&znodes, 1_000);
        assert_eq!(hot.len(), 1_000);
        assert_eq!(hot[0], "/ensemble-scale/p0000/n0000");
        assert_eq!(hot[1], "/ensemble-scale/p0000/n0010");
        assert_eq!(hot[999], "/ensemble-scale/p0009/n0990");
        assert_eq!(znodes.parents(), 10);
        let few = Znodes { root: ROOT.into(), count: 5, fanout: 1_000 };
        assert_eq!(hot_paths(&few, 1_000).len(), 5);
    }

    #[test]
    fn gc_lines_give_their_pause() {
        let line = "[12.345s][info][gc] GC(7) Pause Young (Normal) (G1 Evacuation Pause) \
                    512M->100M(1000M) 12.345ms";
        assert_eq!(gc_pause_ms(line), Some(12.345));
        assert_eq!(gc_pause_ms("[gc] GC(8) Concurrent Mark Cycle 80.1ms"), None);
        assert_eq!(gc_pause_ms("INFO ZooKeeperServer - Snapshot taken in 28 ms"), None);
    }

    #[test]
    fn log_lines_lose_colours() {
        assert_eq!(shorten("\u{1b}[2mts\u{1b}[0m  INFO snapshot"), "ts  INFO snapshot");
        assert_eq!(
            shorten("t [Snapshot Thread] INFO org.apache.zookeeper.server.ZooKeeperServer - x"),
            "t [Snapshot Thread] INFO ZooKeeperServer - x"
        );
    }
}
