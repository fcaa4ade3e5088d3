//! Canary campaigns: every deliberate bug in the core must be caught, and the correct build
//! must pass the seeds that caught them.
//!
//! The core carries twelve deliberate protocol bugs behind the `canary` feature
//! ([`ensemble::core::canary`]), each modelled on a real ZooKeeper defect. A campaign runs,
//! for each canary, consecutive seeds with that canary switched on in every node and the
//! seed's ordinary swarm options ([`Options::from_seed`]: no shaping for the canary), until a
//! checker fails or the budget is spent. Then it runs every first-failing seed again on the
//! correct build (canary off, the very same options): each must pass, or the catch was a bug
//! of the correct build or a checker's false alarm rather than the canary.
//!
//! Seeds run in parallel on `jobs` threads through [`crate::sweep`]; each run stays
//! single-threaded and deterministic. Verdicts are taken in seed order and a hunt stops at the
//! first failure, so the first failing seed (and the number of seeds up to it) does not depend
//! on `jobs` or on timing. Wall-clock time is read only to report it.

use std::ops::{ControlFlow, Range};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use ensemble::core::canary::Canary;

use crate::sweep::{in_seed_order, until_in_seed_order};
use crate::{Options, Simulator, Violation};

/// What one seed came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every checker passed.
    Pass,
    /// A checker failed; its first violation.
    Fail {
        /// The violation's kind, e.g. `Agreement::LeaderMissesCommitted`.
        kind: String,
        /// The violation as the checker words it.
        message: String,
    },
    /// The simulator itself (not a node) panicked.
    SimulatorPanic(String),
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// Runs `seed` with its swarm options and these canaries on.
pub fn run_seed(seed: u64, canaries: &[Canary]) -> Verdict {
    let options = Options { canaries: canaries.to_vec(), ..Options::from_seed(seed) };
    let result = panic::catch_unwind(AssertUnwindSafe(|| Simulator::new(seed, options).run()));
    match result {
        Ok(outcome) => match outcome.violations.first() {
            None => Verdict::Pass,
            Some(violation) => {
                Verdict::Fail { kind: kind(violation), message: violation.to_string() }
            }
        },
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string());
            Verdict::SimulatorPanic(message)
        }
    }
}

/// The kind of a violation: its checker and variant, e.g. `Agreement::LeaderMissesCommitted`.
pub fn kind(violation: &Violation) -> String {
    let debug = format!("{violation:?}");
    let (outer, rest) = debug.split_once('(').unwrap_or((debug.as_str(), ""));
    let inner: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if inner.is_empty() || inner == format!("{outer}Violation") {
        outer.to_string()
    } else {
        format!("{outer}::{inner}")
    }
}

/// The lowest seed in `seeds` whose verdict is not a pass, with that verdict, running `jobs`
/// seeds at a time. Deterministic: every seed below the returned one was run and passed.
pub fn first_failure(
    seeds: Range<u64>,
    jobs: usize,
    run: impl Fn(u64) -> Verdict + Sync,
) -> Option<(u64, Verdict)> {
    until_in_seed_order(seeds, jobs, run, |_, verdict| {
        if verdict.passed() {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(verdict)
        }
    })
}

/// Runs `run` on every item, `jobs` at a time; verdicts in the order of `items`.
pub fn run_all<T: Sync>(
    items: &[T],
    jobs: usize,
    run: impl Fn(&T) -> Verdict + Sync,
) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(items.len());
    in_seed_order(
        0..items.len() as u64,
        jobs,
        |at| run(&items[at as usize]),
        |_, verdict| verdicts.push(verdict),
    );
    verdicts
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The first seed of every canary's search.
    pub start: u64,
    /// Seeds per canary before it counts as surviving.
    pub budget: u64,
    /// Seeds run at once.
    pub jobs: usize,
    /// The canaries to hunt, in order.
    pub canaries: Vec<Canary>,
}

/// The search for one canary.
#[derive(Clone, Debug)]
pub struct Hunt {
    /// The canary.
    pub canary: Canary,
    /// The first failing seed and its verdict; `None`: the canary survived the budget.
    pub caught: Option<(u64, Verdict)>,
    /// Seeds up to and including the first failure (the budget if none).
    pub seeds: u64,
    /// Wall time of the search.
    pub wall: Duration,
}

/// A first-failing seed run again on the correct build.
#[derive(Clone, Debug)]
pub struct Control {
    /// The canary whose seed it is.
    pub canary: Canary,
    /// The seed.
    pub seed: u64,
    /// Its verdict with no canary on.
    pub verdict: Verdict,
}

/// What a campaign found.
#[derive(Clone, Debug)]
pub struct Report {
    /// One search per canary, in the campaign's order.
    pub hunts: Vec<Hunt>,
    /// The correct build on every first-failing seed, in the same order.
    pub controls: Vec<Control>,
    /// Wall time of the control runs.
    pub controls_wall: Duration,
}

impl Report {
    /// Every canary was caught by a checker (not a simulator panic), and the correct build
    /// passed every seed that caught one.
    pub fn ok(&self) -> bool {
        let caught = self.hunts.iter().all(|h| matches!(h.caught, Some((_, Verdict::Fail { .. }))));
        caught && self.controls.iter().all(|c| c.verdict.passed())
    }
}

impl Campaign {
    /// Runs the campaign; `progress` hears of each canary's search as it ends.
    pub fn run(&self, mut progress: impl FnMut(&Hunt)) -> Report {
        let mut hunts = Vec::new();
        for &canary in &self.canaries {
            let began = Instant::now();
            let seeds = self.start..self.start.saturating_add(self.budget);
            let caught = first_failure(seeds, self.jobs, |seed| run_seed(seed, &[canary]));
            let tried = caught.as_ref().map_or(self.budget, |(seed, _)| seed - self.start + 1);
            let hunt = Hunt { canary, caught, seeds: tried, wall: began.elapsed() };
            progress(&hunt);
            hunts.push(hunt);
        }
        let began = Instant::now();
        let seeds: Vec<(Canary, u64)> = hunts
            .iter()
            .filter_map(|h| h.caught.as_ref().map(|(seed, _)| (h.canary, *seed)))
            .collect();
        let verdicts = run_all(&seeds, self.jobs, |(_, seed)| run_seed(*seed, &[]));
        let controls = seeds
            .into_iter()
            .zip(verdicts)
            .map(|((canary, seed), verdict)| Control { canary, seed, verdict })
            .collect();
        Report { hunts, controls, controls_wall: began.elapsed() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails_at(bad: &'static [u64]) -> impl Fn(u64) -> Verdict + Sync {
        move |seed| {
            if bad.contains(&seed) {
                Verdict::Fail { kind: "K".into(), message: format!("seed {seed}") }
            } else {
                Verdict::Pass
            }
        }
    }

    #[test]
    fn the_first_failure_is_the_lowest_whatever_the_jobs() {
        for jobs in [1, 2, 5] {
            let found = first_failure(10..100, jobs, fails_at(&[40, 17, 90]));
            assert_eq!(found.map(|(seed, _)| seed), Some(17), "jobs {jobs}");
            assert_eq!(first_failure(10..100, jobs, fails_at(&[5, 100])), None);
        }
    }

    #[test]
    fn run_all_keeps_the_order() {
        let seeds: Vec<u64> = (0..20).collect();
        let verdicts = run_all(&seeds, 3, |seed| fails_at(&[3, 11])(*seed));
        let failed: Vec<usize> =
            verdicts.iter().enumerate().filter(|(_, v)| !v.passed()).map(|(i, _)| i).collect();
        assert_eq!(failed, vec![3, 11]);
    }

    #[test]
    fn kinds_name_the_checker_and_the_variant() {
        use crate::checker::NodeFailure;
        use ensemble::core::ids::ServerId;
        let violation =
            Violation::Node(NodeFailure::Panicked { server: ServerId(1), message: "boom".into() });
        assert_eq!(kind(&violation), "Node::Panicked");
        let flood = Violation::Flood(crate::checker::flood::FloodViolation {
            server: ServerId(1),
            since: crate::SimTime(0),
            at: crate::SimTime(1),
            last: "PING",
        });
        assert_eq!(kind(&flood), "Flood");
    }
}
