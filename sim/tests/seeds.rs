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
        0x491,
        "a leader paused past syncLimit resumes and, stale, resumes a reconnecting session while \
         the new leader expires it (ZooKeeper does the same): a fault now excuses expiries for \
         two syncLimits after it (checker false positive)",
    ),
    (
        0x4af,
        "a new leader answered REVALIDATE from a follower of its previous leadership, which \
         then served the session while the leader heard none of its pings; the leader now \
         answers only its learners",
    ),
    (0x4ca, "a minority leader and its follower, stale after a clock jump (as 0x491)"),
    (0x67a, "session expired by a new leader while a stale server served it (as 0x491)"),
    (0x6d3, "session expired by a new leader while a stale server served it (as 0x491)"),
    (0x71a, "session expired by a new leader while a stale server served it (as 0x491)"),
    (0x763, "session expired by a new leader while a stale server served it (as 0x491)"),
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
