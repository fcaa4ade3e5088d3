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
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
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
    if seeds.is_empty() {
        return;
    }
    let jobs = jobs.clamp(1, usize::try_from(seeds.end - seeds.start).unwrap_or(usize::MAX));
    if jobs == 1 {
        for seed in seeds {
            each(seed, run(seed));
        }
        return;
    }
    let next = AtomicU64::new(seeds.start);
    let (sender, results) = mpsc::channel::<(u64, R)>();
    thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, run, end) = (&next, &run, seeds.end);
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                if sender.send((seed, run(seed))).is_err() {
                    break; // the caller is gone (it panicked)
                }
            });
        }
        drop(sender);
        let mut early: BTreeMap<u64, R> = BTreeMap::new();
        let mut due = seeds.start;
        for (seed, result) in results {
            early.insert(seed, result);
            while let Some(result) = early.remove(&due) {
                each(due, result);
                due += 1;
            }
        }
    });
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
    fn an_empty_range_runs_nothing() {
        in_seed_order(5..5, 4, |_| panic!("nothing to run"), |_, ()| panic!("nothing to report"));
    }
}
