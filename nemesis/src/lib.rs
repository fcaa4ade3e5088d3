//! `ensemble-nemesis`: the release `ensemble` binary as 3 or 5 real processes, real clients
//! over TCP, real faults (SIGKILL and restart, SIGSTOP/SIGCONT, network partitions between
//! network namespaces, a log disk that fills up, the leader killed in the middle of a
//! snapshot), and the simulator's own checkers over the recorded history.
//!
//! A run, for one seed:
//! 1. the network ([`netns`]: a namespace per member, or loopback where that is not allowed),
//!    the members ([`cluster`]), a wait until one leads;
//! 2. the workload ([`driver`]: the simulator's workload clients, over TCP) runs while the
//!    nemesis ([`faults`]) works through the seeded schedule for `duration`;
//! 3. everything heals; the workload goes on for the liveness phase, then drains;
//! 4. the members converge and are stopped; the committed log is rebuilt from their
//!    directories ([`committed`]) and every end-of-run checker of the simulator judges the
//!    history against it: durability, linearizable writes (and the WGL search), session
//!    order, reads, watches, sessions and ephemerals, liveness, the recipes.
//!
//! The seed picks the schedule and the workload; real processes make timing differ between
//! runs, so a seed describes a run (it is printed with its schedule) rather than replays it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod committed;
pub mod driver;
pub mod faults;
pub mod netns;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ensemble::core::ids::{ServerId, Zxid};
use ensemble_sim::checker::{self, liveness, RunFacts};
use ensemble_sim::history::OpOutcome;
use ensemble_sim::rng::{self, Stream};
use ensemble_sim::SimTime;
use rand::Rng;

use crate::cluster::{Cluster, ClusterConfig};
use crate::faults::{Kind, Nemesis, Tally};
use crate::netns::Network;

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// 3 or 5.
    pub members: u64,
    /// Picks the schedule and the workload.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// The `ensemble` binary.
    pub binary: PathBuf,
    /// Where the run's directory goes (a fresh subdirectory is made).
    pub dir: PathBuf,
    /// Keep the run's directory even when it passes.
    pub keep: bool,
    /// The liveness phase after healing (a write must complete within 20 s of healing, and
    /// every client must complete an operation before it ends).
    pub liveness: Duration,
    /// Print faults as they happen.
    pub verbose: bool,
    /// Use network namespaces when the machine allows them (false: loopback, no partitions).
    pub namespaces: bool,
}

/// What a run came to.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Members.
    pub members: u64,
    /// Namespaces, or why not.
    pub network: String,
    /// Whether the log directories were tmpfs mounts (the disk-full fault needs them).
    pub tmpfs: bool,
    /// The schedule, one line per fault.
    pub schedule: Vec<String>,
    /// What the faults came to.
    pub tally: Tally,
    /// Operations: ok, failed, unknown.
    pub ops: (usize, usize, usize),
    /// Broken guarantees (empty: passed).
    pub violations: Vec<String>,
    /// Parts of the history the harness could not see (the verdict is weaker, not wrong).
    pub gaps: Vec<String>,
    /// Anything else worth printing.
    pub notes: Vec<String>,
    /// The run's directory (kept when the run failed or `keep` was set).
    pub dir: Option<PathBuf>,
    /// Whether the durability checker caught a txn removed on purpose (None: nothing to
    /// remove).
    pub self_check: Option<bool>,
}

impl Report {
    /// Whether nothing was violated.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Faults injected of `kind`.
    pub fn injected(&self, kind: Kind) -> u32 {
        self.tally.injected.get(&kind).copied().unwrap_or(0)
    }
}

fn harness_stream(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The kinds this machine allows, and why the others are left out.
fn available(net: &Network, tmpfs: bool) -> (Vec<Kind>, Vec<String>) {
    let mut kinds = vec![Kind::Kill, Kind::Pause, Kind::SnapshotKill];
    let mut missing = Vec::new();
    match net {
        Network::Namespaces(_) => kinds.push(Kind::Partition),
        Network::Loopback { why } => {
            missing.push(format!("partitions skipped: no network namespaces ({why})"))
        }
    }
    if tmpfs {
        kinds.push(Kind::DiskFull);
    } else {
        missing.push("disk-full skipped: could not mount a tmpfs (needs root)".to_string());
    }
    kinds.sort();
    (kinds, missing)
}

/// Runs one seed.
pub fn run(config: &Config) -> Result<Report> {
    let start = Instant::now();
    let wall_us =
        || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let run_time = || SimTime(start.elapsed().as_micros() as u64);
    let wall_first = (run_time(), wall_us());
    let wall_start_ms = wall_first.1 / 1_000;
    let dir = config.dir.join(format!(
        "nemesis-{}-{:x}-{}",
        std::process::id(),
        config.seed,
        wall_start_ms % 1_000_000
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    // The harness's own draws (settings, schedule) come from a stream the simulator does not
    // use; the workload's from the simulator's workload stream.
    let mut rng = harness_stream(config.seed, 100);
    let tick_ms = 500;
    let sync_limit = 5;
    let snap_count = *[200u32, 500, 1_000].get(rng.gen_range(0..3)).unwrap_or(&500);
    let net = if config.namespaces {
        Network::setup(config.members)
    } else {
        Network::Loopback { why: "turned off (--no-netns)".to_string() }
    };
    let network = match &net {
        Network::Namespaces(_) => "network namespaces + bridge".to_string(),
        Network::Loopback { why } => format!("loopback only ({why})"),
    };
    let cluster_config = ClusterConfig {
        binary: config.binary.clone(),
        members: config.members,
        dir: dir.clone(),
        tick_ms,
        sync_limit,
        snap_count,
        log_tmpfs_mib: 64,
    };
    let mut cluster = Cluster::start(cluster_config, net)?;
    let tmpfs = cluster.members.iter().all(|m| m.tmpfs);
    let (kinds, missing) = available(&cluster.net, tmpfs);
    let mut notes = missing;
    notes.push(format!("tickTime={tick_ms} syncLimit={sync_limit} snapCount={snap_count}"));
    cluster.wait_serving(Duration::from_secs(90))?;

    // The workload: the simulator's swarm draw for this seed, in real time.
    let sim_options = ensemble_sim::Options::from_seed(config.seed);
    let mut workload = sim_options.workload.clone();
    let mut clients = 5usize;
    workload.recipes = ensemble_sim::recipes::RecipeOptions::swarm(&mut rng, &mut clients);
    workload.think_mean_ms = *[2u64, 10, 30].get(rng.gen_range(0..3)).unwrap_or(&10);
    workload.session_timeout_ms = 6_000;
    workload.generate = true;
    notes.push(format!(
        "clients={clients} ({} recipe) think={} ms pipeline={} session timeout={} ms",
        workload.recipes.roles.len(),
        workload.think_mean_ms,
        workload.pipeline_max,
        workload.session_timeout_ms
    ));
    let duration_ms = config.duration.as_millis() as u64;
    let schedule = faults::schedule(&mut rng, config.members, &kinds, duration_ms);
    let schedule_lines: Vec<String> = schedule.iter().map(ToString::to_string).collect();
    if config.verbose {
        eprintln!("seed {:#x}, {} members, {network}", config.seed, config.members);
        for line in &schedule_lines {
            eprintln!("  {line}");
        }
    }

    let servers: Vec<(ServerId, std::net::SocketAddr)> =
        cluster.members.iter().map(|m| (ServerId(m.id), m.client_addr)).collect();
    let phase = Arc::new(AtomicU8::new(driver::phase::RUN));
    let workload_rng = rng::stream(config.seed, Stream::Workload);
    let driver = {
        let phase = phase.clone();
        let workload = workload.clone();
        std::thread::spawn(move || {
            driver::run(start, servers, clients, workload, workload_rng, phase)
        })
    };

    let stale_ms = u64::from((sync_limit + 1) * tick_ms) + 5_000;
    let mut nemesis = Nemesis {
        cluster: &mut cluster,
        start,
        stale_ms,
        tally: Tally::default(),
        rng: harness_stream(config.seed, 101),
        verbose: config.verbose,
    };
    let fault_result = nemesis.run(&schedule, duration_ms);
    while (start.elapsed().as_millis() as u64) < duration_ms && fault_result.is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let healed = nemesis.heal();
    let heal_at = SimTime(start.elapsed().as_micros() as u64);
    let mut tally = nemesis.tally.clone();
    tally.disturbances.push((heal_at, heal_at.plus_ms(stale_ms)));
    let serving = cluster.wait_serving(Duration::from_secs(90));
    std::thread::sleep(config.liveness);
    let liveness_end = SimTime(start.elapsed().as_micros() as u64);
    phase.store(driver::phase::DRAIN, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4));
    phase.store(driver::phase::STOP, Ordering::Relaxed);
    let driven = driver.join().map_err(|_| anyhow::anyhow!("the workload thread panicked"))?;
    fault_result?;
    healed?;
    serving?;
    // The clients left without closing their sessions: let them expire (their closeSession
    // txns are the last writes), then wait until every member holds the same last zxid.
    std::thread::sleep(Duration::from_millis(workload.session_timeout_ms as u64 + 3_000));
    let final_zxid = cluster.wait_converged(Duration::from_secs(60))?;
    cluster.shutdown();

    let mut disks = Vec::new();
    for member in &cluster.members {
        disks.push(committed::read_member(member.id, &member.data_dir(), &member.log_dir())?);
    }
    let wall = committed::WallMap { first: wall_first, last: (run_time(), wall_us()) };
    let rebuilt = committed::rebuild(&disks, Zxid::from_wire(final_zxid), wall);
    let facts = RunFacts {
        liveness: Some(liveness::Window {
            heal_at,
            bound_ms: 20_000,
            end: liveness_end,
            clients: driven.clients.clone(),
        }),
        disturbances: tally.disturbances.clone(),
        session_slack_ms: 2 * u64::from(tick_ms) + 2_000,
        members: rebuilt.members.clone(),
        // One run, not a sweep of thousands: the WGL search may take longer than the
        // simulator's default, so long runs' busy paths are still searched.
        wgl: Some(checker::wgl::Limits {
            max_ops_per_path: 20_000,
            steps_per_path: 1_000_000,
            steps_total: 10_000_000,
        }),
    };
    let mut checker_notes = Vec::new();
    let found = judge(&driven.history, &rebuilt.committed, &facts, &mut checker_notes);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for violation in &found {
        let text = violation.to_string();
        let kind = text.split(':').next().unwrap_or("").to_string();
        *by_kind.entry(kind).or_insert(0) += 1;
    }
    if !by_kind.is_empty() {
        notes.push(format!("violations by checker: {by_kind:?}"));
    }
    let mut violations: Vec<String> = rebuilt.violations.clone();
    violations.extend(found.iter().map(ToString::to_string));
    for (id, status, tail) in &tally.unexpected_exits {
        if tail.contains("panicked") {
            violations.push(format!("member {id} panicked ({status}):\n{tail}"));
        } else {
            notes.push(format!("member {id} exited by itself ({status}); restarted"));
        }
    }
    notes.extend(rebuilt.notes.iter().cloned());
    notes.extend(checker_notes);
    let history = &driven.history;
    let ok = history.ops.iter().filter(|o| matches!(o.outcome, OpOutcome::Ok { .. })).count();
    let fail = history.ops.iter().filter(|o| matches!(o.outcome, OpOutcome::Fail { .. })).count();
    let unknown = history.ops.iter().filter(|o| matches!(o.outcome, OpOutcome::Unknown(_))).count();
    // Failures by error code: the checkers read a code outside the tree's own (NoNode,
    // BadVersion, ...) as "no effect", so a server that sends one for a write it applied shows
    // up here first.
    let mut by_code: BTreeMap<i32, usize> = BTreeMap::new();
    for op in &history.ops {
        if let OpOutcome::Fail { code, .. } = op.outcome {
            *by_code.entry(code).or_default() += 1;
        }
    }
    notes.push(format!("failures by error code: {by_code:?}"));
    // The checkers must see what the harness feeds them: without the txn of one acknowledged
    // write, the same history must fail the durability check.
    let self_check = self_check(&driven.history, &rebuilt.committed);
    if self_check == Some(false) {
        violations.push("self-check: dropping an acknowledged write's txn went unnoticed".into());
    }
    let passed = violations.is_empty() && rebuilt.gaps.is_empty();
    drop(cluster);
    if !passed {
        // The whole history, one operation a line, for the post-mortem.
        let lines: Vec<String> = history
            .ops
            .iter()
            .map(|op| {
                format!(
                    "#{} c{} s{:#x} m{} conn{} xid{} t{}..{:?} {:?} -> {:?}",
                    op.id.0,
                    op.client.0,
                    op.session.0,
                    op.server.0,
                    op.conn.0,
                    op.xid,
                    op.invoked_at.0,
                    op.completed_at.map(|t| t.0),
                    op.request,
                    op.outcome
                )
            })
            .collect();
        let _ = std::fs::write(dir.join("history.txt"), lines.join("\n"));
    }
    let kept = if passed && !config.keep {
        let _ = std::fs::remove_dir_all(&dir);
        None
    } else {
        Some(dir)
    };
    Ok(Report {
        seed: config.seed,
        members: config.members,
        network,
        tmpfs,
        schedule: schedule_lines,
        tally,
        ops: (ok, fail, unknown),
        violations,
        gaps: rebuilt.gaps,
        notes,
        dir: kept,
        self_check,
    })
}

/// Every end-of-run checker of the simulator, as `checker::check_history_noted` runs them,
/// with one difference: the linearizable-writes checker gets the log without commit times.
///
/// A real txn's time is the leader's wall clock read once per drain of its input queue
/// (`runtime/server.rs`), so a request that arrives during a drain, or while the leader is
/// stopped in the middle of one, is stamped before it was sent: the times are no bound for
/// "committed before invoked", which only the simulator's true clock can check. The session
/// checker (premature expiry: an early stamp can only make it stricter, and faults are
/// disturbances) and the lock checker (a holder's tenure ends at its session's close) keep
/// them. Keep this list in step with `check_history_noted`.
fn judge(
    history: &ensemble_sim::history::History,
    committed: &checker::Committed,
    facts: &RunFacts,
    notes: &mut Vec<String>,
) -> Vec<checker::Violation> {
    use checker::Violation;
    let untimed = checker::Committed::new(committed.txns().to_vec());
    let mut violations = Vec::new();
    violations.extend(
        checker::durability::check(history, committed).into_iter().map(Violation::Durability),
    );
    violations.extend(
        checker::linearizable_writes::check(history, &untimed).into_iter().map(Violation::Writes),
    );
    violations
        .extend(checker::session_order::check(history).into_iter().map(Violation::SessionOrder));
    violations.extend(checker::reads::check(history, committed).into_iter().map(Violation::Reads));
    violations
        .extend(checker::watches::check(history, committed).into_iter().map(Violation::Watches));
    let sessions =
        checker::sessions::check(history, committed, &facts.disturbances, facts.session_slack_ms);
    violations.extend(sessions.into_iter().map(Violation::Sessions));
    let ephemerals = checker::sessions::check_ephemerals(history, committed, &facts.members);
    violations.extend(ephemerals.into_iter().map(Violation::Sessions));
    if let Some(window) = &facts.liveness {
        violations.extend(liveness::check(history, window).into_iter().map(Violation::Liveness));
    }
    violations.extend(checker::lock::check(history, committed).into_iter().map(Violation::Lock));
    let election = checker::election::check(history, committed, facts.liveness.as_ref());
    violations.extend(election.into_iter().map(Violation::Election));
    violations.extend(checker::queue::check(history, committed).into_iter().map(Violation::Queue));
    if let Some(limits) = &facts.wgl {
        let report = checker::wgl::check(history, limits);
        for (path, ops) in &report.inconclusive {
            notes.push(format!("wgl: {path} inconclusive ({ops} writes, budget spent)"));
        }
        for (path, ops) in &report.skipped {
            notes.push(format!("wgl: {path} not checked ({ops} writes)"));
        }
        violations.extend(report.violations.into_iter().map(Violation::Wgl));
    }
    violations
}

/// Drops the txn of the last acknowledged create from `committed` and reports whether the
/// durability checker then complains (None: no acknowledged create to drop).
fn self_check(
    history: &ensemble_sim::history::History,
    committed: &checker::Committed,
) -> Option<bool> {
    let zxid = history.ops.iter().rev().find_map(|op| match (&op.request, &op.outcome) {
        (ensemble::wire::proto::Request::Create(..), OpOutcome::Ok { zxid, .. }) => {
            Some(Zxid::from_wire(*zxid))
        }
        _ => None,
    })?;
    let txns: Vec<_> = committed.txns().iter().filter(|t| t.zxid != zxid).cloned().collect();
    let damaged = checker::Committed::new(txns);
    Some(!checker::durability::check(history, &damaged).is_empty())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {:#x}: {} members, {}", self.seed, self.members, self.network)?;
        writeln!(f, "schedule ({} faults planned):", self.schedule.len())?;
        for line in &self.schedule {
            writeln!(f, "  {line}")?;
        }
        let by_kind: BTreeMap<&str, u32> =
            self.tally.injected.iter().map(|(k, n)| (k.name(), *n)).collect();
        writeln!(f, "faults injected: {by_kind:?}")?;
        writeln!(
            f,
            "  snapshot kills that caught a snapshot being written: {}; disk-full: {} exits, {} \
             stuck members restarted",
            self.tally.snapshot_caught, self.tally.disk_full_exited, self.tally.disk_full_stuck
        )?;
        for skipped in &self.tally.skipped {
            writeln!(f, "  skipped: {skipped}")?;
        }
        let (ok, fail, unknown) = self.ops;
        writeln!(
            f,
            "operations: {} (ok {ok}, fail {fail}, unknown {unknown})",
            ok + fail + unknown
        )?;
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        for gap in &self.gaps {
            writeln!(f, "GAP: {gap}")?;
        }
        if let Some(caught) = self.self_check {
            writeln!(f, "self-check (one acknowledged write's txn removed): caught={caught}")?;
        }
        writeln!(f, "violations: {}", self.violations.len())?;
        for violation in self.violations.iter().take(20) {
            writeln!(f, "  {violation}")?;
        }
        if let Some(dir) = &self.dir {
            writeln!(f, "run directory: {}", dir.display())?;
        }
        Ok(())
    }
}
