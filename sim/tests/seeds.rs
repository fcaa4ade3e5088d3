//! Seeds that must pass: a spread of swarm configurations, plus every seed that ever found a
//! bug, read from `sim/regressions.txt` (each with a note on what it found). A failure prints
//! the replay command.

use ensemble::core::canary::Canary;
use ensemble_sim::{Options, Outcome, Simulator};

/// The regression list, read at compile time so the test needs no working directory.
const REGRESSIONS: &str = include_str!("../regressions.txt");

/// A spread of ordinary seeds (1, 3 and 5 nodes; various fault mixes).
const SPREAD: &[u64] = &[0x1, 0x4, 0x5];

/// One line of `regressions.txt`.
#[derive(Debug, PartialEq)]
struct Regression {
    seed: u64,
    canaries: Vec<Canary>,
    known_bug: bool,
    note: String,
}

/// Parses the regression list; an error names the line.
fn parse(text: &str) -> Result<Vec<Regression>, String> {
    let mut regressions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = |why: String| format!("regressions.txt line {}: {why}", index + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (seed_text, mut rest) = split_word(line);
        let hex = seed_text
            .strip_prefix("0x")
            .ok_or_else(|| at(format!("the seed {seed_text:?} is not 0x-hex")))?;
        let seed = u64::from_str_radix(&hex.replace('_', ""), 16)
            .map_err(|e| at(format!("the seed {seed_text:?}: {e}")))?;
        let mut canaries = Vec::new();
        let mut known_bug = false;
        loop {
            let (word, after) = split_word(rest);
            if let Some(names) = word.strip_prefix("canaries=") {
                for name in names.split(',').filter(|n| !n.is_empty()) {
                    let canary = Canary::from_name(name)
                        .ok_or_else(|| at(format!("unknown canary {name:?}")))?;
                    canaries.push(canary);
                }
            } else if word == "known-bug" {
                known_bug = true;
            } else {
                break;
            }
            rest = after;
        }
        let note = rest.trim().to_string();
        if note.is_empty() {
            return Err(at(format!("seed {seed:#x} has no note on what it found")));
        }
        regressions.push(Regression { seed, canaries, known_bug, note });
    }
    Ok(regressions)
}

/// The first whitespace-separated word of `text` and what follows it.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    text.split_at(text.find(char::is_whitespace).unwrap_or(text.len()))
}

fn regressions() -> Vec<Regression> {
    parse(REGRESSIONS).unwrap_or_else(|e| panic!("{e}"))
}

fn run(regression: &Regression) -> Outcome {
    let options =
        Options { canaries: regression.canaries.clone(), ..Options::from_seed(regression.seed) };
    Simulator::new(regression.seed, options).run()
}

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

/// Replays every line: a plain seed must pass, a canary seed must still be caught.
#[test]
fn regression_seeds_pass() {
    for regression in regressions().iter().filter(|r| !r.known_bug) {
        if regression.canaries.is_empty() {
            check(&run(regression));
        } else if cfg!(feature = "canary") {
            let outcome = run(regression);
            assert!(
                !outcome.passed(),
                "seed {:#x} no longer catches {:?} ({})",
                regression.seed,
                regression.canaries,
                regression.note
            );
        } else {
            eprintln!("seed {:#x} skipped: its canaries need --features canary", regression.seed);
        }
    }
}

#[test]
#[ignore = "known core bugs; see the `known-bug` lines of sim/regressions.txt"]
fn known_bug_seeds_pass() {
    for regression in regressions().iter().filter(|r| r.known_bug) {
        check(&run(regression));
    }
}

#[test]
fn a_spread_of_seeds_passes() {
    for seed in SPREAD {
        check(&Simulator::new(*seed, Options::from_seed(*seed)).run());
    }
}

#[test]
fn the_regression_list_parses_and_keeps_its_seeds() {
    let list = regressions();
    let seeds: Vec<u64> = list.iter().map(|r| r.seed).collect();
    for kept in [0x2, 0x3, 0x7d6] {
        assert!(seeds.contains(&kept), "seed {kept:#x} left the regression list");
    }
    assert!(list.iter().all(|r| !r.note.is_empty()));
}

#[test]
fn the_parser_reads_canaries_marks_and_notes_and_rejects_bad_lines() {
    let text =
        "# a comment\n\n0x1f  a plain note\n0xAB canaries=commit-without-quorum,wrong-trunc \
                known-bug  caught  twice\n";
    let parsed = parse(text).expect("a valid list");
    assert_eq!(
        parsed,
        [
            Regression {
                seed: 0x1f,
                canaries: vec![],
                known_bug: false,
                note: "a plain note".into()
            },
            Regression {
                seed: 0xab,
                canaries: vec![Canary::CommitWithoutQuorum, Canary::WrongTrunc],
                known_bug: true,
                note: "caught  twice".into(),
            },
        ]
    );
    assert!(parse("12 decimal seed").unwrap_err().contains("line 1"));
    assert!(parse("0x1\n0x2").unwrap_err().contains("line 1: seed 0x1 has no note"));
    assert!(parse("0x5 canaries=nope note").unwrap_err().contains("unknown canary"));
    assert!(parse("0xzz note").is_err());
}
