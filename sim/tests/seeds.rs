//! Seeds that must pass: a spread of swarm configurations, plus every seed that ever found a
//! bug (each with a note on what it found). A failure prints the replay command.

use ensemble_sim::{run_seed, Outcome};

/// Seeds that once failed, with what they found. Keep them forever.
const REGRESSIONS: &[(u64, &str)] = &[
    (0x2, "a leader of an old epoch that has not noticed the new one (checker false positive)"),
    (0x3, "closeSession pipelined with other requests: replies out of order"),
    (
        0x7d6,
        "prep.close_session took the closing session's ephemerals from the applied tree, so a \
         node that a pending txn deleted and re-created was deleted in the speculative view",
    ),
    (
        0x81,
        "ZOOKEEPER-1208: writes a follower forwarded before a session expired were prepared by \
         the leader after the expiry committed, leaving ephemerals no close would delete (the \
         leader now checks the session, as PrepRequestProcessor.checkSession does)",
    ),
    (0xd4, "the same orphaned-ephemeral bug as 0x81, in another ensemble"),
];

/// Seeds that fail today because of a known bug in the core, with the bug. When it is fixed,
/// the seed moves to `REGRESSIONS`.
const KNOWN_BUGS: &[(u64, &str)] = &[];

/// A spread of ordinary seeds (1, 3 and 5 nodes; various fault mixes).
const SPREAD: &[u64] = &[0x1, 0x4, 0x5];

fn check(outcome: &Outcome) {
    let violations: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
    assert!(
        outcome.passed(),
        "seed {:#x} failed:\n  {}\nreplay: {}",
        outcome.seed,
        violations.join("\n  "),
        outcome.replay_command()
    );
    assert!(outcome.ops_ok > 0, "seed {:#x} made no progress at all", outcome.seed);
}

#[test]
fn regression_seeds_pass() {
    for (seed, _) in REGRESSIONS {
        check(&run_seed(*seed));
    }
}

#[test]
#[ignore = "known core bugs; see KNOWN_BUGS"]
fn known_bug_seeds_pass() {
    for (seed, _) in KNOWN_BUGS {
        check(&run_seed(*seed));
    }
}

#[test]
fn a_spread_of_seeds_passes() {
    for seed in SPREAD {
        check(&run_seed(*seed));
    }
}
