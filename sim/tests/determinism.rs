//! A seed is a complete description of a run: the same seed gives the same trace, byte for
//! byte, and different seeds give different runs.

use ensemble_sim::{Options, Simulator};

/// The swarm options of `seed`, with short phases to keep the test quick (the verdict does
/// not matter here, only that it is reproduced).
fn short(seed: u64, keep_trace: bool) -> Options {
    let mut options = Options::from_seed(seed);
    options.safety_ms = options.safety_ms.min(6_000);
    options.liveness_ms = 3_000;
    options.drain_ms = 1_000;
    options.clients = options.clients.min(4);
    options.keep_trace = keep_trace;
    options
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [1, 0xdead_beef] {
        let mut first = Simulator::new(seed, short(seed, true));
        let a = first.run();
        let mut second = Simulator::new(seed, short(seed, true));
        let b = second.run();
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed:#x}");
        assert_eq!(a.events, b.events);
        assert_eq!(first.trace_text(), second.trace_text(), "seed {seed:#x}");
        // Keeping the records or not does not change the fingerprint.
        let c = Simulator::new(seed, short(seed, false)).run();
        assert_eq!(a.trace_hash, c.trace_hash);
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: std::collections::BTreeSet<u64> =
        (10..14).map(|seed| Simulator::new(seed, short(seed, false)).run().trace_hash).collect();
    assert_eq!(hashes.len(), 4);
}

#[test]
fn the_trace_starts_with_the_options() {
    let mut sim = Simulator::new(7, short(7, true));
    sim.run_for(500);
    let text = sim.trace_text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# seed                 = 0x0000000000000007"));
    assert!(text.contains("=== phase Safety ==="), "{}", &text[..text.len().min(2_000)]);
}
