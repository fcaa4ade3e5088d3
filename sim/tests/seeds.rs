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
        0x10,
        "zxid counter near the roll-over: a leader proposed twice between two ping ticks and \
         hit the counter-overflow assertion; it now drops the request and steps down",
    ),
    (
        0x125,
        "checker: a node that installed a SNAP in an epoch that never got established later \
         led from that snapshot; its log lacked the txns below it (now the sender's history)",
    ),
    (
        0x173,
        "a leader that stepped down (zxid counter used up) and was re-elected without a \
         follower kept it as a zombie: sessions on it expired; a LOOKING notification from the \
         leader now sends the learner looking",
    ),
    (
        0x181,
        "checker: a currentEpoch of an epoch never established need not come with txns \
         committed later by another leader",
    ),
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
