//! Run options, derived from the seed in swarm-testing style and printed first in every trace.
//!
//! Swarm testing (Groce et al.; FoundationDB's BUGGIFY, TigerBeetle's VOPR) gives each seed its
//! own mix: some seeds crash nodes often and never pause them, some only skew clocks, some run
//! ten clients doing mostly conditional writes. Each fault class is switched on for about half
//! the seeds and then gets a random rate, so a sweep covers both "one fault in isolation" and
//! "everything at once". The options of a seed are a pure function of the seed (their own RNG
//! stream), so changing how faults are drawn never changes which options a seed gets.

use std::fmt;

use ensemble::core::canary::Canary;
use ensemble::core::ids::ServerId;
use ensemble::core::zab::PeerRole;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::Site;
use crate::recipes::RecipeOptions;
use crate::rng::{self, Stream};
use crate::workload::OpKind;

/// A workload whose clients together offer more operations per simulated second than this
/// (clients / mean think time) runs in bursts: see [`Options::bursts`].
pub const BURST_ABOVE_OPS_PER_S: u64 = 100;

/// Every knob of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The seed everything derives from.
    pub seed: u64,
    /// Voting servers (1: standalone).
    pub nodes: usize,
    /// Observers in addition to the voters (ensembles only): members that receive committed
    /// txns by INFORM, serve reads and forward writes, but never vote or acknowledge.
    pub observers: usize,
    /// Workload clients.
    pub clients: usize,
    /// Length of the safety phase (faults on).
    pub safety_ms: u64,
    /// Length of the liveness phase (faults healed, workload on).
    pub liveness_ms: u64,
    /// Within this long after healing, a write must complete.
    pub liveness_bound_ms: u64,
    /// Quiet time at the end: no new operations, in-flight ones may finish.
    pub drain_ms: u64,
    /// The server configuration knobs the simulator varies.
    pub server: ServerOptions,
    /// Network.
    pub net: NetOptions,
    /// Disk.
    pub disk: DiskOptions,
    /// Clocks.
    pub clock: ClockOptions,
    /// Fault rates.
    pub faults: FaultOptions,
    /// Client behaviour.
    pub workload: WorkloadOptions,
    /// BUGGIFY-style fault points (a crash or power loss at a protocol moment).
    pub buggify: BuggifyOptions,
    /// Keep every trace record in memory (for `replay --trace`); the hash is kept regardless.
    pub keep_trace: bool,
    /// Deliberate bugs switched on in every node (needs the `canary` feature).
    pub canaries: Vec<Canary>,
}

/// Server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// `tickTime`.
    pub tick_time_ms: u32,
    /// `snapCount`: txns between snapshots.
    pub snap_count: u64,
    /// The zxid counter a new leader starts its epoch from (ZooKeeper: 0). Near `u32::MAX` an
    /// epoch runs out of zxids after a few txns, so the counter roll-over is reached quickly.
    pub zxid_counter_start: u32,
}

/// Network behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetOptions {
    /// Lowest one-way delay, µs.
    pub delay_min_us: u64,
    /// Highest one-way delay, µs.
    pub delay_max_us: u64,
}

/// Disk behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskOptions {
    /// Fastest fsync, µs.
    pub fsync_min_us: u64,
    /// Slowest fsync, µs.
    pub fsync_max_us: u64,
    /// Chance that, at a crash, a random prefix of the unsynced writes made it to the platter
    /// anyway (the OS flushed them); otherwise every unsynced write is lost.
    pub crash_keep_unsynced: f64,
    /// Test-only defect: report writes durable as soon as they are submitted (the "ack before
    /// fsync" bug). The durability checker must catch it.
    pub lie_about_fsync: bool,
}

/// Clock behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockOptions {
    /// Largest wall-clock offset of a node from true time, ms (either sign).
    pub offset_max_ms: u64,
    /// Largest drift of a node's clock, parts per million (either sign).
    pub drift_max_ppm: u32,
}

/// Fault rates: the mean gap between two faults of a class, ms; 0 switches the class off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultOptions {
    /// Node crashes (losing unsynced writes).
    pub crash_every_ms: u64,
    /// Shortest time a crashed node stays down.
    pub down_min_ms: u64,
    /// Longest time a crashed node stays down.
    pub down_max_ms: u64,
    /// A client drops its connection.
    pub disconnect_every_ms: u64,
    /// A node stops processing for a while (GC pause, VM stall).
    pub pause_every_ms: u64,
    /// Longest pause.
    pub pause_max_ms: u64,
    /// A node's clocks jump forward (both of them).
    pub clock_jump_every_ms: u64,
    /// Largest jump.
    pub clock_jump_max_ms: u64,
    /// A node's wall clock alone is stepped, either way.
    pub wall_step_every_ms: u64,
    /// Largest step.
    pub wall_step_max_ms: u64,
    /// A client connection stops moving bytes for a while (TCP keeps them).
    pub clog_every_ms: u64,
    /// Longest clog.
    pub clog_max_ms: u64,
    /// Servers are split into two sides that cannot talk (ensembles only).
    pub partition_every_ms: u64,
    /// Longest partition.
    pub partition_max_ms: u64,
    /// One direction of a peer link stalls (TCP keeps the bytes; they arrive late, in order).
    pub peer_stall_every_ms: u64,
    /// Longest peer-link stall.
    pub peer_stall_max_ms: u64,
    /// The share of reconnects, in percent, (a client that holds a session opening a new connection) that
    /// the network routes to the serving member with the lowest last zxid instead of the one the
    /// client named, as a connect string, DNS name or load balancer may: the member must then
    /// refuse a client that has seen more than it has (`processConnectRequest`).
    pub reconnect_to_laggard_pct: u32,
}

/// BUGGIFY-style fault points (FoundationDB's `BUGGIFY`): instead of striking at a random
/// time, a fault strikes right when a node reaches a protocol moment the driver can see in
/// its inputs and effects (an epoch write, an ACKEPOCH, a NEWLEADER acknowledgement...). A
/// site is on for some seeds only, and then fires with its own chance each time it is reached.
#[derive(Clone, Debug, PartialEq)]
pub struct BuggifyOptions {
    /// For each [`Site`] (indexed by `Site as usize`), the chance that it fires when reached;
    /// 0: the site is off in this run.
    pub fire: [f64; Site::COUNT],
    /// Chance that a firing is a power loss (every node crashes at once, each restarting after
    /// its own down time) rather than a crash of the node at the site.
    pub power_loss: f64,
    /// The crash lands a uniform [0, this] µs after the step (0: at once, before an fsync or a
    /// message of that step can complete).
    pub delay_max_us: u64,
}

impl BuggifyOptions {
    /// Every site off.
    pub fn none() -> BuggifyOptions {
        BuggifyOptions { fire: [0.0; Site::COUNT], power_loss: 0.0, delay_max_us: 0 }
    }

    /// Whether any site is on.
    pub fn any(&self) -> bool {
        self.fire.iter().any(|p| *p > 0.0)
    }
}

/// Client behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Relative weight of each operation kind.
    pub mix: Vec<(OpKind, u32)>,
    /// Mean pause between two operations of one client, ms.
    pub think_mean_ms: u64,
    /// Operations one client may have in flight.
    pub pipeline_max: usize,
    /// Session timeout clients ask for, ms.
    pub session_timeout_ms: i32,
    /// Top-level keys `/k0 ..`.
    pub keys: u32,
    /// Whether clients pick operations themselves (off for hand-scheduled scenarios).
    pub generate: bool,
    /// Clients that run a ZooKeeper recipe instead of the mix (`recipes.rs`).
    pub recipes: RecipeOptions,
    /// Length of a burst, for a workload that runs in bursts (see [`Options::bursts`]).
    pub burst_ms: u64,
    /// The pause between two bursts.
    pub rest_ms: u64,
}

impl Options {
    /// The swarm options of `seed`.
    pub fn from_seed(seed: u64) -> Options {
        let mut rng = rng::stream(seed, Stream::Options);
        let r = &mut rng;
        let tick_time_ms = *pick(r, &[200, 500, 1000, 2000]);
        let delay_min_us = rng::between(r, 50, 500);
        let fsync_min_us = rng::between(r, 100, 2_000);
        let server = ServerOptions {
            tick_time_ms,
            snap_count: *pick(r, &[4, 16, 64, 100_000]),
            zxid_counter_start: 0, // drawn last, below
        };
        let delay_spread = *pick(r, &[1_000, 5_000, 20_000]);
        let net = NetOptions {
            delay_min_us,
            delay_max_us: delay_min_us + rng::between(r, 0, delay_spread),
        };
        let fsync_spread = *pick(r, &[1_000, 10_000, 50_000]);
        let disk = DiskOptions {
            fsync_min_us,
            fsync_max_us: fsync_min_us + rng::between(r, 0, fsync_spread),
            crash_keep_unsynced: if r.gen_bool(0.5) { r.gen_range(0.1..0.9) } else { 0.0 },
            lie_about_fsync: false,
        };
        let clock = ClockOptions {
            offset_max_ms: if r.gen_bool(0.5) { rng::between(r, 1, 300_000) } else { 0 },
            drift_max_ppm: if r.gen_bool(0.5) { rng::between(r, 1, 500) as u32 } else { 0 },
        };
        let session_timeout_ms = rng::between(r, 2, 10) as i32 * tick_time_ms as i32;
        let faults = FaultOptions {
            crash_every_ms: swarm_rate(r, 3_000, 30_000),
            down_min_ms: 10,
            down_max_ms: rng::between(r, 100, 10_000),
            disconnect_every_ms: swarm_rate(r, 500, 10_000),
            pause_every_ms: swarm_rate(r, 3_000, 30_000),
            pause_max_ms: rng::between(r, 100, 3 * session_timeout_ms as u64),
            clock_jump_every_ms: swarm_rate(r, 2_000, 30_000),
            clock_jump_max_ms: rng::between(r, 10, 3 * session_timeout_ms as u64),
            wall_step_every_ms: 0, // drawn last, below, so older seeds keep their options
            wall_step_max_ms: 0,
            clog_every_ms: swarm_rate(r, 1_000, 20_000),
            clog_max_ms: rng::between(r, 10, 2 * session_timeout_ms as u64),
            partition_every_ms: swarm_rate(r, 2_000, 20_000),
            partition_max_ms: rng::between(r, 100, 20_000),
            peer_stall_every_ms: 0, // drawn last, below
            peer_stall_max_ms: 0,
            reconnect_to_laggard_pct: 0, // drawn last, below
        };
        let nodes = *pick(r, &[1, 1, 3, 3, 3, 5]);
        let workload = WorkloadOptions {
            mix: swarm_mix(r),
            think_mean_ms: *pick(r, &[0, 5, 50, 300]),
            pipeline_max: rng::between(r, 1, 4) as usize,
            session_timeout_ms,
            keys: rng::between(r, 2, 10) as u32,
            generate: true,
            recipes: RecipeOptions::default(), // drawn last, below
            burst_ms: 0,
            rest_ms: 0,
        };
        let mut options = Options {
            seed,
            nodes: 1,
            observers: 0,
            clients: rng::between(r, 1, 10) as usize,
            safety_ms: rng::between(r, 10_000, 60_000),
            liveness_ms: 0,
            liveness_bound_ms: 0,
            drain_ms: 3_000,
            server,
            net,
            disk,
            clock,
            faults,
            workload,
            buggify: BuggifyOptions::none(),
            keep_trace: false,
            canaries: Vec::new(),
        };
        options.set_nodes(nodes);
        // Knobs added later are drawn here, after all the others, so that adding one leaves
        // the options of every stored seed unchanged.
        options.faults.wall_step_every_ms = swarm_rate(r, 2_000, 30_000);
        options.faults.wall_step_max_ms = rng::between(r, 10, 3 * session_timeout_ms as u64);
        // A third of the ensembles get one or two observers beside their voters.
        if options.nodes > 1 && r.gen_bool(OBSERVER_SHARE) {
            options.observers = rng::between(r, 1, 2) as usize;
        }
        options.workload.recipes = RecipeOptions::swarm(r, &mut options.clients);
        let add_watch = if r.gen_bool(0.25) {
            0
        } else {
            rng::between(r, 1, 10) as u32 * OpKind::AddWatch.base_weight()
        };
        options.workload.mix.push((OpKind::AddWatch, add_watch));
        let period = rng::between(r, 1_000, 4_000);
        options.workload.burst_ms = period * rng::between(r, 10, 25) / 100;
        options.workload.rest_ms = period - options.workload.burst_ms;
        options.faults.peer_stall_every_ms = swarm_rate(r, 500, 10_000);
        // Up to past syncLimit (5 ticks), so a stalled follower sometimes gives up its leader
        // and sometimes keeps serving while it lags.
        options.faults.peer_stall_max_ms = rng::between(r, 10, 8 * tick_time_ms as u64);
        options.buggify = swarm_buggify(r);
        // A quarter of the seeds start every epoch a few hundred zxids before the counter
        // wraps, so leaders reach the roll-over (ZOOKEEPER-1277) and must step down.
        if r.gen_bool(0.25) {
            options.server.zxid_counter_start = u32::MAX - rng::between(r, 20, 2_000) as u32;
        }
        if r.gen_bool(0.5) {
            options.faults.reconnect_to_laggard_pct = rng::between(r, 20, 80) as u32;
        }
        options
    }

    /// `Some((burst_ms, period_ms))` if the clients generate operations only during the first
    /// `burst_ms` of every period, all in step (pings and session traffic go on in the rests).
    ///
    /// A fast workload does: one whose clients together would offer more than
    /// [`BURST_ABOVE_OPS_PER_S`] operations per simulated second on average. A client with a
    /// pipeline and no think time issues hundreds of requests per simulated second, which costs
    /// wall time in proportion and finds nothing that bursts of them do not; in a burst the
    /// contention is as high as the think time, pipeline and client count make it, while the
    /// mean rate, and so a seed's cost, is bounded.
    pub fn bursts(&self) -> Option<(u64, u64)> {
        let w = &self.workload;
        let offered = self.clients as u64 * 1_000 / w.think_mean_ms.max(1);
        let period = w.burst_ms + w.rest_ms;
        (w.burst_ms > 0 && w.rest_ms > 0 && offered > BURST_ABOVE_OPS_PER_S)
            .then_some((w.burst_ms, period))
    }

    /// Sets the number of voting servers (and no observers) and the liveness phase that goes
    /// with it: an ensemble needs time to elect and sync before it can make progress
    /// (initLimit and syncLimit are 10 and 5 ticks).
    pub fn set_nodes(&mut self, nodes: usize) {
        let election_ms = if nodes > 1 { 20 * self.server.tick_time_ms as u64 } else { 0 };
        self.nodes = nodes;
        self.observers = 0;
        self.liveness_ms = 20_000 + election_ms;
        self.liveness_bound_ms = 15_000 + election_ms;
    }

    /// The members of the run with their roles, in id order: a standalone server is `0`; an
    /// ensemble has voters `1..=nodes`, then its observers (observers need an ensemble).
    pub fn members(&self) -> Vec<(ServerId, PeerRole)> {
        if self.nodes <= 1 {
            return vec![(ServerId(0), PeerRole::Participant)];
        }
        let voters = (1..=self.nodes as u64).map(|id| (ServerId(id), PeerRole::Participant));
        let first_observer = self.nodes as u64 + 1;
        let observers = (first_observer..first_observer + self.observers as u64)
            .map(|id| (ServerId(id), PeerRole::Observer));
        voters.chain(observers).collect()
    }

    /// The standard configuration that `ensemble-sim bench` measures and the speed target is
    /// stated for: a 5-member ensemble, ten clients and one simulated minute of faults (every
    /// class on, at the seed's rate where the swarm drew one, else a middle rate), then the
    /// usual liveness phase and drain. Delays, clocks, the op mix and the rest come from the
    /// seed.
    pub fn standard(seed: u64) -> Options {
        let mut options = Options::from_seed(seed);
        options.set_nodes(5);
        options.clients = 10;
        options.safety_ms = 60_000;
        let f = &mut options.faults;
        for (rate, middle) in [
            (&mut f.crash_every_ms, 10_000),
            (&mut f.disconnect_every_ms, 3_000),
            (&mut f.pause_every_ms, 10_000),
            (&mut f.clock_jump_every_ms, 10_000),
            (&mut f.wall_step_every_ms, 10_000),
            (&mut f.clog_every_ms, 5_000),
            (&mut f.partition_every_ms, 8_000),
        ] {
            if *rate == 0 {
                *rate = middle;
            }
        }
        options
    }

    /// Like [`Options::from_seed`] but with every fault switched off and perfect clocks: for
    /// tests that want a calm system (they may still inject faults by hand).
    pub fn quiet(seed: u64) -> Options {
        let mut options = Options::from_seed(seed);
        options.faults = FaultOptions::none();
        options.buggify = BuggifyOptions::none();
        options.clock = ClockOptions { offset_max_ms: 0, drift_max_ppm: 0 };
        options.disk.crash_keep_unsynced = 0.0;
        options
    }

    /// Calm options for hand-scheduled scenarios: faults off, clients idle until a test
    /// submits operations, fixed delays (network 1 ms, fsync 10 ms) so a test can aim at the
    /// window between "write submitted" and "fsync done".
    pub fn manual(seed: u64, clients: usize) -> Options {
        let mut options = Options::quiet(seed);
        options.clients = clients;
        options.safety_ms = 3_600_000;
        options.net = NetOptions { delay_min_us: 1_000, delay_max_us: 1_000 };
        options.disk.fsync_min_us = 10_000;
        options.disk.fsync_max_us = 10_000;
        options.server =
            ServerOptions { tick_time_ms: 2000, snap_count: 100_000, zxid_counter_start: 0 };
        options.set_nodes(1);
        options.workload.generate = false;
        options.workload.recipes = RecipeOptions::default();
        options.workload.session_timeout_ms = 30_000;
        options.workload.pipeline_max = 8;
        options
    }
}

impl FaultOptions {
    /// No faults at all.
    pub fn none() -> FaultOptions {
        FaultOptions {
            crash_every_ms: 0,
            down_min_ms: 10,
            down_max_ms: 1_000,
            disconnect_every_ms: 0,
            pause_every_ms: 0,
            pause_max_ms: 1_000,
            clock_jump_every_ms: 0,
            clock_jump_max_ms: 1_000,
            wall_step_every_ms: 0,
            wall_step_max_ms: 1_000,
            clog_every_ms: 0,
            clog_max_ms: 1_000,
            partition_every_ms: 0,
            partition_max_ms: 1_000,
            peer_stall_every_ms: 0,
            peer_stall_max_ms: 1_000,
            reconnect_to_laggard_pct: 0,
        }
    }
}

impl fmt::Display for Options {
    /// One `key = value` line per knob, the header of every trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self;
        writeln!(f, "seed                 = {:#018x}", o.seed)?;
        if o.observers > 0 {
            let members = format!("{} + {} observers", o.nodes, o.observers);
            writeln!(f, "nodes, clients       = {members}, {}", o.clients)?;
        } else {
            writeln!(f, "nodes, clients       = {}, {}", o.nodes, o.clients)?;
        }
        if !o.canaries.is_empty() {
            let names: Vec<&str> = o.canaries.iter().map(|c| c.name()).collect();
            writeln!(f, "CANARIES             = {}", names.join(", "))?;
        }
        writeln!(
            f,
            "phases ms            = safety {}, liveness {} (bound {}), drain {}",
            o.safety_ms, o.liveness_ms, o.liveness_bound_ms, o.drain_ms
        )?;
        writeln!(
            f,
            "server               = tickTime {} ms, snapCount {}{}",
            o.server.tick_time_ms,
            o.server.snap_count,
            match o.server.zxid_counter_start {
                0 => String::new(),
                start => format!(", zxid counter starts at {start:#x}"),
            }
        )?;
        writeln!(f, "net delay µs         = {}..={}", o.net.delay_min_us, o.net.delay_max_us)?;
        writeln!(
            f,
            "disk                 = fsync {}..={} µs, crash keeps unsynced p={:.2}{}",
            o.disk.fsync_min_us,
            o.disk.fsync_max_us,
            o.disk.crash_keep_unsynced,
            if o.disk.lie_about_fsync { ", LIES ABOUT FSYNC" } else { "" }
        )?;
        writeln!(
            f,
            "clock                = offset ±{} ms, drift ±{} ppm",
            o.clock.offset_max_ms, o.clock.drift_max_ppm
        )?;
        let fo = &o.faults;
        writeln!(
            f,
            "faults every ms      = crash {} (down {}..={}), disconnect {}, pause {} (max {}), \
             clock jump {} (max {}), wall step {} (max {}), clog {} (max {}), partition {} (max {}), \
             peer stall {} (max {}); reconnects to the laggard {}%",
            fo.crash_every_ms,
            fo.down_min_ms,
            fo.down_max_ms,
            fo.disconnect_every_ms,
            fo.pause_every_ms,
            fo.pause_max_ms,
            fo.clock_jump_every_ms,
            fo.clock_jump_max_ms,
            fo.wall_step_every_ms,
            fo.wall_step_max_ms,
            fo.clog_every_ms,
            fo.clog_max_ms,
            fo.partition_every_ms,
            fo.partition_max_ms,
            fo.peer_stall_every_ms,
            fo.peer_stall_max_ms,
            fo.reconnect_to_laggard_pct
        )?;
        let b = &o.buggify;
        if b.any() {
            write!(f, "buggify              =")?;
            for site in Site::ALL {
                let p = b.fire[site as usize];
                if p > 0.0 {
                    write!(f, " {}:{p:.2}", site.name())?;
                }
            }
            writeln!(f, "; power loss p={:.2}, delay ≤{} µs", b.power_loss, b.delay_max_us)?;
        }
        let w = &o.workload;
        write!(f, "workload mix         =")?;
        for (kind, weight) in &w.mix {
            write!(f, " {kind:?}:{weight}")?;
        }
        writeln!(f)?;
        write!(
            f,
            "workload             = think {} ms, pipeline {}, session timeout {} ms, keys {}{}",
            w.think_mean_ms,
            w.pipeline_max,
            w.session_timeout_ms,
            w.keys,
            if w.generate { "" } else { ", manual" }
        )?;
        if let Some((burst, period)) = o.bursts() {
            write!(f, ", bursts of {burst} ms every {period} ms")?;
        }
        writeln!(f)?;
        if !w.recipes.roles.is_empty() {
            writeln!(f, "recipes              = {}", w.recipes)?;
        }
        Ok(())
    }
}

/// The share of ensembles that get observers.
const OBSERVER_SHARE: f64 = 1.0 / 3.0;

/// A rate that is off for half the seeds and otherwise a mean gap in `[low, high]` ms.
fn swarm_rate(rng: &mut ChaCha8Rng, low: u64, high: u64) -> u64 {
    if rng.gen_bool(0.5) {
        rng::between(rng, low, high)
    } else {
        0
    }
}

/// Fault points for half the seeds; each site is then on with probability 0.3 (FoundationDB
/// activates a quarter of its sites per run) and fires with its own chance.
fn swarm_buggify(rng: &mut ChaCha8Rng) -> BuggifyOptions {
    let mut buggify = BuggifyOptions::none();
    if !rng.gen_bool(0.5) {
        return buggify;
    }
    for fire in buggify.fire.iter_mut() {
        if rng.gen_bool(0.3) {
            *fire = rng.gen_range(0.1..0.6);
        }
    }
    buggify.power_loss = if rng.gen_bool(0.5) { rng.gen_range(0.2..1.0) } else { 0.0 };
    buggify.delay_max_us = *pick(rng, &[0, 0, 5_000, 50_000]);
    buggify
}

/// Operation weights: each kind is dropped for a quarter of the seeds, but at least one
/// unconditional write and one read always stay so that every run makes visible progress.
fn swarm_mix(rng: &mut ChaCha8Rng) -> Vec<(OpKind, u32)> {
    OpKind::ALL
        .iter()
        .map(|&kind| {
            let essential = matches!(kind, OpKind::SetData | OpKind::GetData | OpKind::Create);
            let weight = if !essential && rng.gen_bool(0.25) {
                0
            } else {
                rng::between(rng, 1, 10) as u32 * kind.base_weight()
            };
            (kind, weight)
        })
        .collect()
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, values: &'a [T]) -> &'a T {
    &values[rng.gen_range(0..values.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_a_function_of_the_seed() {
        assert_eq!(Options::from_seed(42), Options::from_seed(42));
        let distinct = (0..20).map(Options::from_seed).filter(|o| *o != Options::from_seed(0));
        assert_eq!(distinct.count(), 19);
    }

    #[test]
    fn swarm_switches_fault_classes_on_and_off() {
        let options: Vec<_> = (0..64).map(Options::from_seed).collect();
        assert!(options.iter().any(|o| o.faults.crash_every_ms == 0));
        assert!(options.iter().any(|o| o.faults.crash_every_ms > 0));
        // Recipe clients (`recipes.rs`) come on top of the 1-10 clients of the mix.
        let mix = |o: &Options| o.clients - o.workload.recipes.roles.len();
        assert!(options.iter().any(|o| mix(o) == 1));
        assert!(options.iter().all(|o| mix(o) >= 1 && mix(o) <= 10));
        for o in &options {
            let weight = |k: OpKind| o.workload.mix.iter().find(|(x, _)| *x == k).map(|x| x.1);
            assert!(weight(OpKind::SetData) > Some(0));
            assert!(weight(OpKind::GetData) > Some(0));
        }
    }

    #[test]
    fn some_ensembles_get_observers_and_standalone_servers_never_do() {
        let options: Vec<_> = (0..200).map(Options::from_seed).collect();
        assert!(options.iter().all(|o| o.nodes > 1 || o.observers == 0));
        assert!(options.iter().all(|o| o.observers <= 2));
        assert!(options.iter().any(|o| o.observers == 1));
        assert!(options.iter().any(|o| o.observers == 2));
        assert!(options.iter().any(|o| o.nodes > 1 && o.observers == 0));
        let with = options.iter().find(|o| o.nodes == 3 && o.observers == 2).expect("such a seed");
        let roles: Vec<(u64, PeerRole)> = with.members().iter().map(|(id, r)| (id.0, *r)).collect();
        assert_eq!(
            roles,
            [
                (1, PeerRole::Participant),
                (2, PeerRole::Participant),
                (3, PeerRole::Participant),
                (4, PeerRole::Observer),
                (5, PeerRole::Observer),
            ]
        );
        assert!(with.to_string().contains("nodes, clients       = 3 + 2 observers,"));
        let mut standalone = with.clone();
        standalone.set_nodes(1);
        assert_eq!(standalone.members(), [(ServerId(0), PeerRole::Participant)]);
    }

    #[test]
    fn only_fast_workloads_run_in_bursts() {
        let mut options = Options::from_seed(3);
        options.clients = 2;
        options.workload.think_mean_ms = 0;
        let (burst, period) = options.bursts().expect("no think time: bursts");
        assert!((1_000..=4_000).contains(&period) && burst * 4 <= period, "{burst}/{period}");
        assert!(options.to_string().contains(&format!("bursts of {burst} ms every {period}")));
        options.workload.think_mean_ms = 50;
        assert_eq!(options.bursts(), None, "2 clients at 50 ms offer 40 ops/s");
        options.clients = 10;
        assert!(options.bursts().is_some(), "10 clients at 50 ms offer 200 ops/s");
    }

    #[test]
    fn the_standard_configuration_has_every_fault_on() {
        for seed in 0..16 {
            let o = Options::standard(seed);
            assert_eq!((o.nodes, o.clients, o.safety_ms), (5, 10, 60_000));
            let f = &o.faults;
            let rates = [
                f.crash_every_ms,
                f.disconnect_every_ms,
                f.pause_every_ms,
                f.clock_jump_every_ms,
                f.wall_step_every_ms,
                f.clog_every_ms,
                f.partition_every_ms,
            ];
            assert!(rates.iter().all(|r| *r > 0), "seed {seed}: {rates:?}");
        }
    }

    #[test]
    fn display_starts_with_the_seed() {
        let text = Options::from_seed(0xabc).to_string();
        assert!(text.starts_with("seed                 = 0x0000000000000abc"), "{text}");
    }
}
