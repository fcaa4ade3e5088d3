//! `ensemble-sim`: a deterministic simulator for Ensemble's sans-IO core.
//!
//! One thread, one seed, virtual time. The simulator runs real [`ensemble::core::Node`]s and
//! plays everything around them: a network of FIFO connections with delays, clogs and resets;
//! a disk per node whose writes are pending until a simulated fsync and are lost by a crash;
//! a drifting, jumping clock per node; and ZooKeeper clients speaking the real wire protocol.
//! Every happening is an [`event::Event`] in a queue keyed by (time, sequence number), and
//! every random choice comes from the seed, so a seed is a complete, replayable description
//! of a run:
//!
//! ```no_run
//! use ensemble_sim::{Options, Simulator};
//!
//! let seed = 0x2a;
//! let outcome = Simulator::new(seed, Options::from_seed(seed)).run();
//! for violation in &outcome.violations {
//!     eprintln!("{violation}");
//! }
//! assert!(outcome.passed(), "replay with: {}", outcome.replay_command());
//! ```
//!
//! A run has three phases: *safety* (faults on: crashes, pauses, clock jumps, disconnects,
//! clogs), *liveness* (everything healed; progress is required within a bound) and *drain*
//! (no new operations; in-flight ones may finish). Then the checkers in [`checker`] judge the
//! recorded [`history::History`] against the committed log. See `docs/simulation.md`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod canaries;
pub mod checker;
pub mod clock;
pub mod disk;
pub mod event;
pub mod faults;
pub mod history;
pub mod html;
pub mod net;
pub mod options;
mod peers;
pub mod recipes;
pub mod rng;
mod roles;
mod server;
mod simulator;
pub mod sweep;
pub mod time;
pub mod trace;
pub mod tracefmt;
pub mod workload;

pub use checker::Violation;
use ensemble::core::canary::Canary;
pub use options::Options;
pub use simulator::Simulator;
pub use time::SimTime;
pub use workload::ClientId;

/// The phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Faults are injected.
    Safety,
    /// Faults healed; progress is required.
    Liveness,
    /// No new operations; in-flight ones may finish.
    Drain,
    /// The run is over.
    Done,
}

/// What a run came to.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Every broken guarantee (empty: the run passed).
    pub violations: Vec<Violation>,
    /// Simulated time at the end.
    pub sim_time: SimTime,
    /// Events processed.
    pub events: u64,
    /// Fingerprint of the whole trace (equal for equal seeds).
    pub trace_hash: u64,
    /// Operations invoked.
    pub ops: usize,
    /// Operations that completed with a success reply.
    pub ops_ok: usize,
    /// Node crashes injected.
    pub crashes: u32,
    /// The deliberate bugs that were on.
    pub canaries: Vec<Canary>,
    /// What the checkers left unchecked without finding a violation (e.g. a path the WGL
    /// search gave up on).
    pub notes: Vec<String>,
}

impl Outcome {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one command that replays this run with its trace.
    pub fn replay_command(&self) -> String {
        replay_command_with(self.seed, &self.canaries)
    }
}

/// The command that replays `seed` with its full trace.
pub fn replay_command(seed: u64) -> String {
    replay_command_with(seed, &[])
}

/// The command that replays `seed` with these canaries switched on.
pub fn replay_command_with(seed: u64, canaries: &[Canary]) -> String {
    if canaries.is_empty() {
        return format!("cargo run -p ensemble-sim -- replay --seed {seed:#018x} --trace");
    }
    let flags: String = canaries.iter().map(|c| format!(" --canary {}", c.name())).collect();
    format!(
        "cargo run -p ensemble-sim --features canary -- replay --seed {seed:#018x} --trace{flags}"
    )
}

/// Runs `seed` with its swarm options.
pub fn run_seed(seed: u64) -> Outcome {
    Simulator::new(seed, Options::from_seed(seed)).run()
}
