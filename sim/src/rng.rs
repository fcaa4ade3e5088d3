//! Randomness: one seed, one ChaCha8 stream per subsystem.
//!
//! Every random draw of a run comes from the seed. Each subsystem (options, network, disk,
//! clocks, workload, faults, node seeds) reads its own ChaCha8 stream of the same key, so
//! adding a draw in one subsystem does not shift the values another one sees: a change to the
//! workload generator leaves the fault schedule of a seed alone. ChaCha8 is named and pinned
//! (`rand_chacha` 0.3) so a seed replays across `rand` upgrades, which `StdRng` does not promise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The per-subsystem generators of one run.
pub struct Rngs {
    /// Message delays.
    pub net: ChaCha8Rng,
    /// Fsync latency, what survives a crash.
    pub disk: ChaCha8Rng,
    /// Clock offsets, drift, jumps.
    pub clock: ChaCha8Rng,
    /// Client operations, think times, reconnect choices.
    pub workload: ChaCha8Rng,
    /// When and where faults strike: one generator per fault class (indexed by
    /// `FaultKind as usize`), so adding or switching off a class leaves the others' schedules
    /// alone.
    pub faults: Vec<ChaCha8Rng>,
    /// Seeds of the nodes' own RNGs (session passwords, snapshot jitter).
    pub nodes: ChaCha8Rng,
}

/// The stream numbers; never renumber them, or every stored seed replays differently.
#[derive(Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// `Options::from_seed`.
    Options = 1,
    /// `Rngs::net`.
    Net = 2,
    /// `Rngs::disk`.
    Disk = 3,
    /// `Rngs::clock`.
    Clock = 4,
    /// `Rngs::workload`.
    Workload = 5,
    /// Unused since fault classes got a stream each (kept so numbers are never reused).
    Faults = 6,
    /// `Rngs::nodes`.
    Nodes = 7,
    /// The first of the per-class fault streams: class `k` uses `FaultClasses + k`.
    FaultClasses = 16,
}

/// How many fault classes get their own stream (room to grow without renumbering).
pub const FAULT_STREAMS: u64 = 32;

/// The generator of fault class `class` for `seed`.
pub fn fault_stream(seed: u64, class: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(Stream::FaultClasses as u64 + class as u64);
    rng
}

/// The generator of `stream` for `seed`.
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

impl Rngs {
    /// All generators of a run.
    pub fn new(seed: u64) -> Rngs {
        Rngs {
            net: stream(seed, Stream::Net),
            disk: stream(seed, Stream::Disk),
            clock: stream(seed, Stream::Clock),
            workload: stream(seed, Stream::Workload),
            faults: (0..FAULT_STREAMS as usize).map(|class| fault_stream(seed, class)).collect(),
            nodes: stream(seed, Stream::Nodes),
        }
    }
}

/// A uniform draw in `[low, high]` that tolerates `low >= high` (returns `low`).
pub fn between(rng: &mut ChaCha8Rng, low: u64, high: u64) -> u64 {
    if high <= low {
        low
    } else {
        rng.gen_range(low..=high)
    }
}

/// An exponentially distributed delay with the given mean (a Poisson process's gaps), capped
/// at 20 means so one unlucky draw cannot stall a run.
pub fn exponential(rng: &mut ChaCha8Rng, mean: u64) -> u64 {
    if mean == 0 {
        return 0;
    }
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let draw = -(u.ln()) * mean as f64;
    (draw as u64).min(mean.saturating_mul(20))
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut a = Rngs::new(7);
        let mut b = Rngs::new(7);
        assert_eq!(a.net.next_u64(), b.net.next_u64());
        // Drawing more from the workload stream of `a` leaves its fault stream alone.
        a.workload.next_u64();
        a.workload.next_u64();
        assert_eq!(a.faults[0].next_u64(), b.faults[0].next_u64());
        assert_ne!(Rngs::new(7).faults[0].next_u64(), Rngs::new(7).faults[1].next_u64());
        assert_ne!(Rngs::new(7).net.next_u64(), Rngs::new(7).disk.next_u64());
        assert_ne!(Rngs::new(7).net.next_u64(), Rngs::new(8).net.next_u64());
    }

    #[test]
    fn between_handles_empty_ranges() {
        let mut rng = stream(1, Stream::Net);
        assert_eq!(between(&mut rng, 5, 5), 5);
        assert_eq!(between(&mut rng, 9, 3), 9);
        for _ in 0..100 {
            let v = between(&mut rng, 3, 9);
            assert!((3..=9).contains(&v), "{v}");
        }
    }
}
