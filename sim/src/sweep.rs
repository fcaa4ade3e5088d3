//! Running many seeds on several OS threads, with the results handed back in seed order.
//!
//! Each seed still runs on one thread from start to end, so a run stays a pure function of its
//! seed; only *which* thread runs it varies. Workers take the next seed from a shared counter
//! and send `(seed, result)` back; the caller's thread holds early results until every seed
//! before them is in, so whatever it prints comes out in seed order and a sweep's output is the
//! same for any number of jobs (apart from timing figures the caller adds).
//!
//! This module reads no clock: the caller measures wall time, inside `run` if it wants it per
//! seed.

use std::collections::BTreeMap;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

/// Runs `run(seed)` for every seed of `seeds` on `jobs` threads (at least one) and calls
/// `each(seed, result)` on the calling thread for every seed, in seed order, as soon as the
/// results up to it are in.
///
/// A panic in `run` propagates once the other workers have finished their current seeds.
pub fn in_seed_order<R: Send>(
    seeds: Range<u64>,
    jobs: usize,
    run: impl Fn(u64) -> R + Sync,
    mut each: impl FnMut(u64, R),
) {
    until_in_seed_order(seeds, jobs, run, |seed, result| {
        each(seed, result);
        ControlFlow::<()>::Continue(())
    });
}

/// [`in_seed_order`] that stops at the first seed for which `each` breaks: no seed after it is
/// reported (workers start no new seed, and results of seeds above it already running are
/// dropped). Returns that seed and the break value, or `None` when every seed was reported.
/// Which seed stops the run does not depend on `jobs`: every seed below it was reported.
pub fn until_in_seed_order<R: Send, B>(
    seeds: Range<u64>,
    jobs: usize,
    run: impl Fn(u64) -> R + Sync,
    mut each: impl FnMut(u64, R) -> ControlFlow<B>,
) -> Option<(u64, B)> {
    if seeds.is_empty() {
        return None;
    }
    let jobs = jobs.clamp(1, usize::try_from(seeds.end - seeds.start).unwrap_or(usize::MAX));
    if jobs == 1 {
        for seed in seeds {
            if let ControlFlow::Break(value) = each(seed, run(seed)) {
                return Some((seed, value));
            }
        }
        return None;
    }
    let next = AtomicU64::new(seeds.start);
    let stopped = AtomicBool::new(false);
    let (sender, results) = mpsc::channel::<(u64, R)>();
    thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, stopped, run, end) = (&next, &stopped, &run, seeds.end);
            scope.spawn(move || loop {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                if sender.send((seed, run(seed))).is_err() {
                    break; // the caller is gone (it panicked, or it stopped)
                }
            });
        }
        drop(sender);
        let mut early: BTreeMap<u64, R> = BTreeMap::new();
        let mut due = seeds.start;
        for (seed, result) in &results {
            early.insert(seed, result);
            while let Some(result) = early.remove(&due) {
                if let ControlFlow::Break(value) = each(due, result) {
                    stopped.store(true, Ordering::Relaxed);
                    return Some((due, value));
                }
                due += 1;
            }
        }
        None
    })
}

/// The number of jobs to use when none is asked for: the machine's available parallelism.
pub fn default_jobs() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_seed_order_whatever_the_jobs() {
        for jobs in [1, 2, 3, 8, 100] {
            let mut seen = Vec::new();
            // Later seeds finish first: the order must still be the seeds'.
            in_seed_order(
                10..30,
                jobs,
                |seed| {
                    std::thread::sleep(std::time::Duration::from_micros((30 - seed) * 50));
                    seed * 2
                },
                |seed, doubled| seen.push((seed, doubled)),
            );
            let expected: Vec<_> = (10..30).map(|s| (s, s * 2)).collect();
            assert_eq!(seen, expected, "jobs {jobs}");
        }
    }

    #[test]
    fn a_stop_is_the_lowest_breaking_seed_whatever_the_jobs() {
        for jobs in [1, 2, 5] {
            let mut seen = Vec::new();
            let stop = until_in_seed_order(
                10..100,
                jobs,
                |seed| [40, 17, 90].contains(&seed),
                |seed, bad| {
                    seen.push(seed);
                    if bad {
                        ControlFlow::Break(seed * 10)
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            );
            assert_eq!(stop, Some((17, 170)), "jobs {jobs}");
            assert_eq!(seen, (10..=17).collect::<Vec<_>>(), "jobs {jobs}");
            let none =
                until_in_seed_order(10..20, jobs, |_| (), |_, ()| ControlFlow::<()>::Continue(()));
            assert_eq!(none, None);
        }
    }

    #[test]
    fn an_empty_range_runs_nothing() {
        in_seed_order(5..5, 4, |_| panic!("nothing to run"), |_, ()| panic!("nothing to report"));
    }
}
