//! One simulated run: start the ensemble, wait for a leader, run the write workload while
//! faults are injected for a bounded time, heal everything, then check liveness (writes are
//! acknowledged again, one leader, every member at the same zxid) and safety (every
//! acknowledged write is on every member with its data, nothing appears that was never
//! written or was refused, acknowledged zxids increase, read-backs found their znodes, and no
//! reply carried a zxid below one the client had already seen).
//!
//! The fault plan is drawn from a ChaCha generator seeded with the madsim seed, so a seed names
//! one run; the runtime's own randomness (election jitter, backoff, scheduling) comes from
//! madsim's generator, seeded the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ensemble::core::canary::Canaries;
use ensemble::wire::proto::{Request, Response};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::client::Client;
use crate::cluster::{Cluster, Status};
use crate::workload::{value_of, write_loop, WriteLog, PARENT};

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Ensemble size.
    pub members: usize,
    /// How long faults are injected (simulated time).
    pub fault_time: Duration,
    /// Deliberate protocol bugs switched on in every member (feature `canary`).
    pub canaries: Canaries,
    /// Quorum SASL (DIGEST-MD5, required both ways) between the members.
    pub quorum_sasl: bool,
}

impl Scenario {
    /// `members` under `fault_time` of faults, without canaries.
    pub const fn new(members: usize, fault_time: Duration) -> Scenario {
        Scenario { members, fault_time, canaries: Canaries::NONE, quorum_sasl: false }
    }

    /// The same with quorum SASL required between the members.
    pub const fn with_quorum_sasl(self) -> Scenario {
        Scenario { quorum_sasl: true, ..self }
    }
}

/// What a run produced: `summary` is deterministic for a seed (it is compared between two
/// runs of the same seed); `violations` is empty when every check passed.
#[derive(Clone, Debug)]
pub struct Report {
    /// One line of counts.
    pub summary: String,
    /// The faults and milestones, with simulated times.
    pub events: Vec<String>,
    /// Every check that failed.
    pub violations: Vec<String>,
}

/// Bound on reaching a first leader, and on converging after healing.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// Writes that must be acknowledged after healing.
const WRITES_AFTER_HEAL: usize = 5;
/// How long a member stays down, or a network fault lasts, at most.
const FAULT_MAX_MS: u64 = 5_000;

/// A fault in progress, ended at its time.
enum Pending {
    Restart(usize),
    Resume(usize),
    HealNetwork,
}

/// Runs `scenario` in the current madsim runtime.
pub async fn run(scenario: Scenario) -> Report {
    let seed = madsim::runtime::Handle::current().seed();
    let start = Instant::now();
    let at = move || format!("{:>8.3}s", start.elapsed().as_secs_f64());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut violations = Vec::new();
    let network = network_profile(&mut rng);
    events.push(format!("{} network: {network}", at()));
    let mut cluster =
        Cluster::start_with(scenario.members, canaries(scenario.canaries), scenario.quorum_sasl);

    match cluster.converged(CONVERGE_WITHIN).await {
        Ok((leader, zxid)) => {
            events.push(format!("{} server {} leads (zxid 0x{zxid:x})", at(), leader + 1))
        }
        Err(statuses) => {
            violations
                .push(format!("no first leader within {CONVERGE_WITHIN:?}: {}", show(&statuses)));
            return finish(seed, scenario, start, events, violations, None, &WriteLog::default());
        }
    }

    let log = Arc::new(Mutex::new(WriteLog::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workload = cluster.client.spawn(write_loop(
        cluster.client_addrs(),
        seed,
        log.clone(),
        stop.clone(),
        start,
    ));

    inject_faults(&mut cluster, &mut rng, scenario.fault_time, &at, &mut events).await;

    // Heal, then liveness.
    cluster.heal_all();
    events.push(format!("{} heal everything", at()));
    let healed = Instant::now();
    let acked_at_heal = log.lock().expect("log lock").acked.len();
    loop {
        let acked = log.lock().expect("log lock").acked.len();
        if acked >= acked_at_heal + WRITES_AFTER_HEAL {
            events.push(format!("{} {WRITES_AFTER_HEAL} writes acknowledged after healing", at()));
            break;
        }
        if healed.elapsed() > CONVERGE_WITHIN {
            violations.push(format!(
                "only {} writes acknowledged within {CONVERGE_WITHIN:?} after healing",
                acked - acked_at_heal
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    if workload.await.is_err() {
        violations.push("the workload task was lost".into());
    }
    let log = log.lock().expect("log lock").clone();
    events.extend(log.notes.iter().cloned());
    events.sort();
    let converged = match cluster.converged(CONVERGE_WITHIN).await {
        Ok((leader, zxid)) => {
            events.push(format!(
                "{} converged: server {} leads, zxid 0x{zxid:x}",
                at(),
                leader + 1
            ));
            Some((leader, zxid))
        }
        Err(statuses) => {
            violations.push(format!(
                "no convergence within {CONVERGE_WITHIN:?} after healing: {}",
                show(&statuses)
            ));
            None
        }
    };

    // Safety.
    check_history(&log, &mut violations);
    if let Some((_, zxid)) = converged {
        if let Some(last) = log.acked.last() {
            if last.zxid as u64 > zxid {
                violations.push(format!(
                    "acknowledged zxid 0x{:x} above the final zxid 0x{zxid:x}",
                    last.zxid
                ));
            }
        }
        let addrs = cluster.client_addrs();
        let contents = cluster
            .client
            .spawn(async move {
                let mut contents = Vec::new();
                for addr in addrs {
                    contents.push(read_all(addr).await);
                }
                contents
            })
            .await
            .expect("the read-back task is not killed");
        check_contents(&log, &contents, &mut violations);
    }
    finish(seed, scenario, start, events, violations, converged, &log)
}

/// Sets the seed's network: latency up to 10, 40 or 120 ms, a packet loss rate of 0, 1 or 5 %
/// (madsim's TCP resends a lost packet after a backoff, so loss delays and reorders nothing),
/// and madsim's buggify on half the seeds (a connect or bind then sometimes takes 1–5 s).
fn network_profile(rng: &mut ChaCha8Rng) -> String {
    let latency_max_ms = *[10u64, 40, 120].choose(rng).expect("a non-empty list");
    let loss = *[0.0, 0.01, 0.05].choose(rng).expect("a non-empty list");
    let buggify = rng.gen_bool(0.5);
    madsim::net::NetSim::current().update_config(|config| {
        config.send_latency = Duration::from_millis(1)..Duration::from_millis(latency_max_ms);
        config.packet_loss_rate = loss;
    });
    if buggify {
        madsim::buggify::enable();
    }
    format!(
        "latency 1-{latency_max_ms} ms, packet loss {}%, buggify {}",
        loss * 100.0,
        if buggify { "on" } else { "off" }
    )
}

/// Injects faults for `fault_time`: a new fault every 0.5–3 s, each lasting 0.2–5 s. Kills
/// (power loss, the leader half of the time) and pauses keep a majority up, except that one
/// fault in ten may take the quorum away; network faults (isolating a member, a partition, a
/// one-way link) run one at a time. Faults still running at the end are left for the heal.
async fn inject_faults(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    fault_time: Duration,
    at: &impl Fn() -> String,
    events: &mut Vec<String>,
) {
    let members = cluster.members.len();
    let fault_end = Instant::now() + fault_time;
    let mut pending: Vec<(Instant, Pending)> = Vec::new();
    let mut network_fault = false;
    let mut next_fault = Instant::now() + Duration::from_millis(rng.gen_range(500..3_000));
    loop {
        let due =
            pending.iter().map(|(when, _)| *when).min().map_or(next_fault, |w| w.min(next_fault));
        if due >= fault_end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let now = Instant::now();
        let (ended, later): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|(when, _)| *when <= now);
        pending = later;
        for (_, fault) in ended {
            match fault {
                Pending::Restart(p) => {
                    cluster.restart(p);
                    events.push(format!("{} restart server {}", at(), p + 1));
                }
                Pending::Resume(p) => {
                    cluster.resume(p);
                    events.push(format!("{} resume server {}", at(), p + 1));
                }
                Pending::HealNetwork => {
                    cluster.heal_network();
                    network_fault = false;
                    events.push(format!("{} heal the network", at()));
                }
            }
        }
        if now < next_fault {
            continue;
        }
        next_fault = now + Duration::from_millis(rng.gen_range(500..3_000));
        let lasting = Duration::from_millis(rng.gen_range(200..FAULT_MAX_MS));
        let until = now + lasting;
        let running: Vec<usize> = (0..members)
            .filter(|p| !cluster.members[*p].down && !cluster.members[*p].paused)
            .collect();
        let may_stop_one = members - running.len() < members / 2 || rng.gen_ratio(1, 10);
        match rng.gen_range(0..6) {
            // Kill a member (the leader half of the time), power-loss style, for a while.
            0 | 1 if may_stop_one => {
                let leader = if rng.gen_bool(0.5) { cluster.leader().await } else { None };
                let target =
                    leader.filter(|p| running.contains(p)).or_else(|| running.choose(rng).copied());
                if let Some(p) = target {
                    let torn = rng.gen_range(0..64);
                    cluster.kill(p, torn);
                    pending.push((until, Pending::Restart(p)));
                    let role = if leader == Some(p) { " (the leader)" } else { "" };
                    events.push(format!(
                        "{} kill server {}{role}, torn tail {torn} B, restart in {lasting:?}",
                        at(),
                        p + 1
                    ));
                }
            }
            // Freeze a member, as a long GC pause would.
            2 if may_stop_one => {
                if let Some(&p) = running.choose(rng) {
                    cluster.pause(p);
                    pending.push((until, Pending::Resume(p)));
                    events.push(format!("{} pause server {} for {lasting:?}", at(), p + 1));
                }
            }
            0..=2 => {}
            // Network faults, one at a time.
            _ if network_fault => {}
            3 => {
                let p = rng.gen_range(0..members);
                cluster.isolate(p);
                network_fault = true;
                pending.push((until, Pending::HealNetwork));
                events.push(format!("{} isolate server {} for {lasting:?}", at(), p + 1));
            }
            4 => {
                let mut order: Vec<usize> = (0..members).collect();
                order.shuffle(rng);
                let side: BTreeSet<usize> =
                    order[..rng.gen_range(1..=members / 2)].iter().copied().collect();
                cluster.partition(&side);
                network_fault = true;
                pending.push((until, Pending::HealNetwork));
                let names: Vec<String> = side.iter().map(|p| (p + 1).to_string()).collect();
                events.push(format!(
                    "{} partition {{{}}} from the rest for {lasting:?}",
                    at(),
                    names.join(",")
                ));
            }
            _ => {
                let from = rng.gen_range(0..members);
                let to = (from + rng.gen_range(1..members)) % members;
                cluster.clog_link(from, to);
                network_fault = true;
                pending.push((until, Pending::HealNetwork));
                events.push(format!(
                    "{} cut link {} -> {} for {lasting:?}",
                    at(),
                    from + 1,
                    to + 1
                ));
            }
        }
    }
    tokio::time::sleep_until(fault_end).await;
}

/// The scenario's canaries, plus the one `MADSIM_CANARY` names (feature `canary`), so that a
/// canary run can be replayed with any test.
fn canaries(canaries: Canaries) -> Canaries {
    #[cfg(feature = "canary")]
    if let Ok(name) = std::env::var("MADSIM_CANARY") {
        let canary = ensemble::core::canary::Canary::from_name(&name)
            .unwrap_or_else(|| panic!("MADSIM_CANARY={name} names no canary"));
        return canaries.with(canary);
    }
    canaries
}

fn finish(
    seed: u64,
    scenario: Scenario,
    start: Instant,
    events: Vec<String>,
    violations: Vec<String>,
    converged: Option<(usize, u64)>,
    log: &WriteLog,
) -> Report {
    let sim_time = start.elapsed();
    let mut summary = format!(
        "seed {seed}: {} members, {:?} of faults ({} events), {} writes acknowledged, {} unknown, \
         {} refused, {} sessions, {} read-backs",
        scenario.members,
        scenario.fault_time,
        events.len(),
        log.acked.len(),
        log.unknown.len(),
        log.failed.len(),
        log.sessions,
        log.reads,
    );
    if !log.refused.is_empty() {
        let _ = write!(summary, ", connections failed: {:?}", log.refused);
    }
    if let Some((leader, zxid)) = converged {
        let _ = write!(summary, ", final leader {} at zxid 0x{zxid:x}", leader + 1);
    }
    let _ = write!(summary, ", simulated {:.3}s", sim_time.as_secs_f64());
    Report { summary, events, violations }
}

/// Acknowledged zxids increase in acknowledgement order; read-backs found their znodes.
fn check_history(log: &WriteLog, violations: &mut Vec<String>) {
    for pair in log.acked.windows(2) {
        if pair[1].zxid <= pair[0].zxid {
            violations.push(format!(
                "{} acknowledged at zxid 0x{:x} after {} at 0x{:x}",
                pair[1].path, pair[1].zxid, pair[0].path, pair[0].zxid
            ));
        }
    }
    violations.extend(log.violations.iter().cloned());
}

/// Every member holds the same znodes under the parent; every acknowledged write is there with
/// its data; nothing refused or never attempted is there.
fn check_contents(
    log: &WriteLog,
    contents: &[Result<BTreeMap<String, Bytes>, String>],
    violations: &mut Vec<String>,
) {
    let attempted: BTreeSet<&str> = log
        .acked
        .iter()
        .map(|a| a.path.as_str())
        .chain(log.unknown.iter().map(String::as_str))
        .collect();
    let refused: BTreeSet<&str> = log.failed.iter().map(|(path, _)| path.as_str()).collect();
    let mut first: Option<&BTreeMap<String, Bytes>> = None;
    for (position, content) in contents.iter().enumerate() {
        let server = position + 1;
        let content = match content {
            Ok(content) => content,
            Err(error) => {
                violations.push(format!("reading server {server} back failed: {error}"));
                continue;
            }
        };
        for acked in &log.acked {
            match content.get(&acked.path) {
                Some(data) if *data == value_of(&acked.path) => {}
                Some(data) => {
                    violations.push(format!("server {server}: {} holds {data:?}", acked.path))
                }
                None => violations.push(format!(
                    "server {server} lost {} (acknowledged by server {} at zxid 0x{:x})",
                    acked.path,
                    acked.member + 1,
                    acked.zxid
                )),
            }
        }
        for path in content.keys() {
            if refused.contains(path.as_str()) {
                violations.push(format!("server {server} holds {path}, which was refused"));
            } else if !attempted.contains(path.as_str()) {
                violations.push(format!("server {server} holds {path}, which was never written"));
            }
        }
        match first {
            None => first = Some(content),
            Some(first) if first != content => {
                let a: BTreeSet<&String> = first.keys().collect();
                let b: BTreeSet<&String> = content.keys().collect();
                violations.push(format!(
                    "server {server} differs from server 1: only on 1: {:?}, only on {server}: {:?}",
                    a.difference(&b).collect::<Vec<_>>(),
                    b.difference(&a).collect::<Vec<_>>()
                ));
            }
            Some(_) => {}
        }
    }
}

/// Every child of the parent and its data, through one member, after a `sync`. Tries a few
/// times: under buggify a connect alone may take up to 8 s.
async fn read_all(addr: std::net::SocketAddr) -> Result<BTreeMap<String, Bytes>, String> {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match read_all_once(addr).await {
            Ok(content) => return Ok(content),
            Err(error) => failures.push(error),
        }
    }
    Err(failures.join("; "))
}

async fn read_all_once(addr: std::net::SocketAddr) -> Result<BTreeMap<String, Bytes>, String> {
    let deadline = Duration::from_secs(10);
    let mut client =
        Client::connect(addr, 0, 4_000, deadline).await.map_err(|e| format!("connect: {e}"))?;
    let reply = client.call(&Request::Sync { path: PARENT.into() }, deadline).await;
    reply.map_err(|e| format!("sync: {e}"))?;
    let request = Request::GetChildren { path: PARENT.into(), watch: false, with_stat: false };
    let reply = client.call(&request, deadline).await.map_err(|e| format!("getChildren: {e}"))?;
    let children = match reply.response {
        Some(Response::GetChildren { children }) => children,
        // No write was ever acknowledged, and the parent may not exist.
        None if reply.err == -101 => Vec::new(),
        other => return Err(format!("getChildren answered err {} {other:?}", reply.err)),
    };
    let mut content = BTreeMap::new();
    for child in children {
        let path = format!("{PARENT}/{child}");
        let request = Request::GetData { path: path.clone(), watch: false };
        let reply = client.call(&request, deadline).await.map_err(|e| format!("getData: {e}"))?;
        match reply.response {
            Some(Response::GetData { data, .. }) => {
                content.insert(path, data.unwrap_or_default());
            }
            other => return Err(format!("getData {path} answered err {} {other:?}", reply.err)),
        }
    }
    Ok(content)
}

fn show(statuses: &[Option<Status>]) -> String {
    let shown: Vec<String> = statuses
        .iter()
        .enumerate()
        .map(|(p, s)| match s {
            Some(s) => format!("server {}: {} 0x{:x}", p + 1, s.mode, s.zxid),
            None => format!("server {}: no answer", p + 1),
        })
        .collect();
    shown.join("; ")
}
