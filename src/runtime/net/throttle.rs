//! The connection throttle: a token bucket with optional random drops (BLUE).
//!
//! ZK compat: a port of `BlueThrottle` (ZooKeeper 3.6+), checked once per ConnectRequest like
//! `ZooKeeperServer.processConnectRequest` does (one token per connection; ZooKeeper's
//! optional per-session-type weights are not implemented). The bucket holds `maxTokens`,
//! refills `fillCount` tokens every `fillTime` ms, and a connection that finds it empty is
//! closed. With `freezeTime` set, a drop chance also rises by `dropIncrease` every
//! `freezeTime` ms while the bucket is empty and falls by `dropDecrease` while it is at most
//! `decreaseRatio` × `maxTokens` short, and connections are refused at random with that chance.

use crate::runtime::config::ClientLimits;

/// The throttle's state. Time is passed in (ms on a monotonic clock) and so is the random
/// sample, so that the arithmetic is testable.
#[derive(Debug)]
pub struct BlueThrottle {
    max_tokens: i64,
    fill_time: i64,
    fill_count: i64,
    freeze_time: i64,
    drop_increase: f64,
    drop_decrease: f64,
    decrease_point: f64,
    tokens: i64,
    last_time: u64,
    last_freeze: u64,
    drop: f64,
}

impl BlueThrottle {
    /// A full bucket at `now_ms`.
    pub fn new(limits: &ClientLimits, now_ms: u64) -> BlueThrottle {
        BlueThrottle {
            max_tokens: i64::from(limits.connection_max_tokens),
            fill_time: i64::from(limits.connection_fill_time_ms.max(1)),
            fill_count: i64::from(limits.connection_fill_count),
            freeze_time: limits.connection_freeze_time_ms,
            drop_increase: limits.connection_drop_increase,
            drop_decrease: limits.connection_drop_decrease,
            decrease_point: limits.connection_decrease_ratio,
            tokens: i64::from(limits.connection_max_tokens),
            last_time: now_ms,
            last_freeze: now_ms,
            drop: 0.0,
        }
    }

    /// Whether the throttle is on (`maxTokens` > 0).
    pub fn enabled(&self) -> bool {
        self.max_tokens > 0
    }

    /// Whether a connection may go ahead at `now_ms`; takes `need` tokens if so. `sample` is
    /// uniform in `[0, 1)`.
    pub fn check_limit(&mut self, need: i64, now_ms: u64, sample: f64) -> bool {
        if self.max_tokens == 0 {
            return true;
        }
        let diff = now_ms.saturating_sub(self.last_time) as i64;
        if diff > self.fill_time {
            let refill = diff.saturating_mul(self.fill_count) / self.fill_time;
            self.tokens = self.tokens.saturating_add(refill).min(self.max_tokens);
            self.last_time = now_ms;
        }
        if self.freeze_time != -1 && !self.check_blue(now_ms, sample) {
            return false;
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    fn check_blue(&mut self, now_ms: u64, sample: f64) -> bool {
        let length = self.max_tokens - self.tokens;
        let limit = self.max_tokens;
        let diff = now_ms.saturating_sub(self.last_freeze) as i64;
        let threshold = (self.max_tokens as f64 * self.decrease_point).round() as i64;
        if diff > self.freeze_time {
            if length == limit && self.drop < 1.0 {
                self.drop = (self.drop + self.drop_increase).min(1.0);
            } else if length <= threshold && self.drop > 0.0 {
                self.drop = (self.drop - self.drop_decrease).max(0.0);
            }
            self.last_freeze = now_ms;
        }
        sample >= self.drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tokens: u32, fill_time: u32, fill_count: u32) -> ClientLimits {
        ClientLimits {
            connection_max_tokens: tokens,
            connection_fill_time_ms: fill_time,
            connection_fill_count: fill_count,
            ..ClientLimits::default()
        }
    }

    #[test]
    fn zero_tokens_means_no_throttle() {
        let mut throttle = BlueThrottle::new(&ClientLimits::default(), 0);
        assert!(!throttle.enabled());
        assert!((0..10_000).all(|_| throttle.check_limit(1, 0, 0.0)));
    }

    #[test]
    fn the_bucket_empties_and_refills_at_its_rate() {
        // 3 tokens, one more every 100 ms.
        let mut throttle = BlueThrottle::new(&limits(3, 100, 1), 1_000);
        assert!((0..3).all(|_| throttle.check_limit(1, 1_000, 0.5)));
        assert!(!throttle.check_limit(1, 1_000, 0.5), "the bucket is empty");
        assert!(!throttle.check_limit(1, 1_100, 0.5), "no refill until fillTime has passed");
        assert!(throttle.check_limit(1, 1_201, 0.5), "two tokens after 201 ms");
        assert!(throttle.check_limit(1, 1_201, 0.5));
        assert!(!throttle.check_limit(1, 1_201, 0.5));
        assert!((0..3).all(|_| throttle.check_limit(1, 60_000, 0.5)), "refills cap at max");
        assert!(!throttle.check_limit(1, 60_000, 0.5));
    }

    #[test]
    fn blue_raises_the_drop_chance_while_the_bucket_is_empty_and_lowers_it_after() {
        let mut config = limits(2, 1_000_000, 1);
        config.connection_freeze_time_ms = 10;
        config.connection_drop_increase = 0.5;
        config.connection_drop_decrease = 0.5;
        let mut throttle = BlueThrottle::new(&config, 0);
        assert!(throttle.check_limit(1, 1, 0.01));
        assert!(throttle.check_limit(1, 2, 0.01));
        // Empty bucket for more than freezeTime: the drop chance climbs to 0.5.
        assert!(!throttle.check_limit(1, 20, 0.4), "dropped at random (sample < 0.5)");
        assert!(!throttle.check_limit(1, 20, 0.9), "no token either");
        // Refilled (the fill time passed): the bucket is full, the chance falls back to 0.
        assert!(throttle.check_limit(1, 3_000_000, 0.01));
    }
}
