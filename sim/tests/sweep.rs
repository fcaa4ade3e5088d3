//! A short sweep on every `cargo test`: a window of swarm seeds must all pass, and running
//! seeds on several threads must not change any run.
//!
//! The window is small so the debug build stays within about a minute; CI runs thousands of
//! seeds in release (`.ci/run`), and `ensemble-sim sweep` runs any window by hand.

use ensemble_sim::sweep::in_seed_order;
use ensemble_sim::{run_seed, Outcome};

/// The window: seeds nobody hand-picked (the CI sweep starts at 1000).
const START: u64 = 0x51_0000;
const COUNT: u64 = 20;

#[test]
fn a_window_of_seeds_passes_on_two_threads_as_on_one() {
    let mut outcomes: Vec<Outcome> = Vec::new();
    in_seed_order(START..START + COUNT, 2, run_seed, |seed, outcome| {
        assert_eq!(outcome.seed, seed, "results come back in seed order");
        outcomes.push(outcome);
    });
    assert_eq!(outcomes.len() as u64, COUNT);
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| format!("{:#x}: {}\n  replay: {}", o.seed, o.violations[0], o.replay_command()))
        .collect();
    assert!(failures.is_empty(), "failing seeds:\n{}", failures.join("\n"));
    assert!(outcomes.iter().all(|o| o.ops_ok > 0), "every seed makes progress");
    // The same seeds on this one thread: the same runs, event for event.
    for outcome in outcomes.iter().take(3) {
        let again = run_seed(outcome.seed);
        assert_eq!(
            (again.trace_hash, again.events),
            (outcome.trace_hash, outcome.events),
            "seed {:#x} ran differently on another thread",
            outcome.seed
        );
    }
}
