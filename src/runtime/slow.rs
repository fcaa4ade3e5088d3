//! Stall warnings: a round of the node loop (its `Node::step` calls and the carrying out of
//! their effects) or a disk batch (writes and `fdatasync`) that takes longer than a threshold is
//! logged at WARN with what it was doing, so that a slow write seen by a client can be traced to
//! the step, the effect or the file operation that held it up.
//!
//! The threshold is `ensemble.slowStepWarnMs` in `zoo.cfg` (default 50 ms, 0 turns the
//! warnings off), overridden by the environment variable `ENSEMBLE_SLOW_STEP_WARN_MS`. The
//! decision lives in [`SlowWatch`], apart from any clock, so that it can be tested with made-up
//! durations; the callers read `std::time::Instant` a few times per round or batch (never per
//! request).

use std::fmt;
use std::time::{Duration, Instant};

/// The threshold when neither the configuration nor the environment gives one.
pub const SLOW_WARN_DEFAULT_MS: u64 = 50;

/// The environment variable that overrides `ensemble.slowStepWarnMs` (ms; 0 = off).
pub const SLOW_WARN_ENV: &str = "ENSEMBLE_SLOW_STEP_WARN_MS";

/// Warnings a watch logs per [`WARN_WINDOW`]; the rest are counted and the count is reported
/// with the next warning logged, so an overloaded machine cannot flood the log (and the logging
/// itself cannot become the stall).
pub const WARNINGS_PER_WINDOW: u32 = 10;

/// See [`WARNINGS_PER_WINDOW`].
pub const WARN_WINDOW: Duration = Duration::from_secs(1);

/// The threshold in force: the environment's value if it parses, else the configured one.
/// `None` when the warnings are off.
pub fn threshold(configured_ms: u64) -> Option<Duration> {
    let from_env = std::env::var(SLOW_WARN_ENV).ok().and_then(|text| text.trim().parse().ok());
    let ms = from_env.unwrap_or(configured_ms);
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// What [`SlowWatch::judge`] decided about one round or batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under the threshold (or the watch is off): nothing to log.
    Quiet,
    /// Over the threshold: log it, with the number of slow ones not logged since the last
    /// warning.
    Warn {
        /// Slow rounds or batches dropped by the rate limit since the last warning.
        suppressed: u64,
    },
    /// Over the threshold, but this window's warnings are used up: counted, not logged.
    Suppressed,
}

/// Decides which rounds or batches are slow enough to log: over the threshold, at most
/// [`WARNINGS_PER_WINDOW`] per [`WARN_WINDOW`].
#[derive(Clone, Debug)]
pub struct SlowWatch {
    threshold: Option<Duration>,
    window_start: Option<Instant>,
    warned_in_window: u32,
    suppressed: u64,
}

impl SlowWatch {
    /// A watch warning about anything longer than `threshold` (`None`: never).
    pub fn new(threshold: Option<Duration>) -> SlowWatch {
        SlowWatch { threshold, window_start: None, warned_in_window: 0, suppressed: 0 }
    }

    /// The threshold, if the watch is on.
    pub fn threshold(&self) -> Option<Duration> {
        self.threshold
    }

    /// Whether something that took `took` and ended at `now` is to be logged.
    pub fn judge(&mut self, now: Instant, took: Duration) -> Verdict {
        match self.threshold {
            Some(threshold) if took > threshold => {}
            _ => return Verdict::Quiet,
        }
        let window_over = self.window_start.is_none_or(|start| now >= start + WARN_WINDOW);
        if window_over {
            self.window_start = Some(now);
            self.warned_in_window = 0;
        }
        if self.warned_in_window >= WARNINGS_PER_WINDOW {
            self.suppressed += 1;
            return Verdict::Suppressed;
        }
        self.warned_in_window += 1;
        Verdict::Warn { suppressed: std::mem::take(&mut self.suppressed) }
    }
}

/// A duration in ms with µs precision, for log fields.
#[derive(Clone, Copy)]
pub struct Ms(pub Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0.as_secs_f64() * 1000.0)
    }
}

impl fmt::Debug for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn only_what_exceeds_the_threshold_is_logged() {
        let start = Instant::now();
        let mut watch = SlowWatch::new(Some(ms(50)));
        assert_eq!(watch.judge(start, ms(3)), Verdict::Quiet);
        assert_eq!(watch.judge(start, ms(50)), Verdict::Quiet);
        assert_eq!(watch.judge(start, ms(51)), Verdict::Warn { suppressed: 0 });
        assert_eq!(watch.judge(start, Duration::from_secs(2)), Verdict::Warn { suppressed: 0 });
    }

    #[test]
    fn a_watch_without_threshold_never_warns() {
        let mut watch = SlowWatch::new(None);
        assert_eq!(watch.judge(Instant::now(), Duration::from_secs(3600)), Verdict::Quiet);
    }

    #[test]
    fn warnings_are_rate_limited_and_the_dropped_ones_counted() {
        let start = Instant::now();
        let mut watch = SlowWatch::new(Some(ms(10)));
        for _ in 0..WARNINGS_PER_WINDOW {
            assert_eq!(watch.judge(start, ms(20)), Verdict::Warn { suppressed: 0 });
        }
        assert_eq!(watch.judge(start + ms(10), ms(20)), Verdict::Suppressed);
        assert_eq!(watch.judge(start + ms(20), ms(20)), Verdict::Suppressed);
        // Fast rounds neither use up the window nor reset the count.
        assert_eq!(watch.judge(start + ms(30), ms(1)), Verdict::Quiet);
        // A new window: the next slow one is logged with the count of those dropped.
        let later = start + WARN_WINDOW;
        assert_eq!(watch.judge(later, ms(20)), Verdict::Warn { suppressed: 2 });
        assert_eq!(watch.judge(later, ms(20)), Verdict::Warn { suppressed: 0 });
    }

    #[test]
    fn durations_print_as_milliseconds() {
        assert_eq!(Ms(Duration::from_micros(1_350_250)).to_string(), "1350.250");
        assert_eq!(Ms(Duration::ZERO).to_string(), "0.000");
    }
}
