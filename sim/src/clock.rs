//! Per-node clocks: an offset, a drift and occasional jumps over the simulator's true time.
//!
//! A node never sees true time. Its local oscillator runs at `1 + drift_ppm / 10^6` of true
//! speed and may jump forward (a VM stall, a long pause); its wall clock also carries a fixed
//! offset and NTP-style steps in either direction. The monotonic clock restarts from a fresh
//! origin at every process start (like `Instant` since start in the runtime) and never goes
//! backwards within one life: drift is bounded well below 100 % and jumps only go forward.
//! This follows TigerBeetle's `TimeSim` (linear drift plus steps).

use ensemble::core::Now;

use crate::time::SimTime;

/// The wall clock of true time zero: 2024-01-01T00:00:00Z in ms since the Unix epoch.
pub const WALL_EPOCH_MS: i64 = 1_704_067_200_000;

/// One node's view of time.
#[derive(Clone, Debug)]
pub struct Clock {
    drift_ppm: i64,
    wall_offset_ms: i64,
    wall_step_ms: i64,
    jump_us: u64,
    mono_origin_us: i64,
    mono_base_ms: u64,
    mono_last_ms: u64,
}

impl Clock {
    /// A clock with the given wall offset and drift, whose process starts at `start`.
    pub fn new(wall_offset_ms: i64, drift_ppm: i32, start: SimTime) -> Clock {
        assert!(drift_ppm.unsigned_abs() < 100_000, "drift {drift_ppm} ppm is not a clock");
        let mut clock = Clock {
            drift_ppm: drift_ppm as i64,
            wall_offset_ms,
            wall_step_ms: 0,
            jump_us: 0,
            mono_origin_us: 0,
            mono_base_ms: 0,
            mono_last_ms: 0,
        };
        clock.restart(start, 0);
        clock
    }

    /// A new process starts at `at`: the monotonic clock gets a new origin reading
    /// `mono_base_ms` then (wall time carries on).
    pub fn restart(&mut self, at: SimTime, mono_base_ms: u64) {
        self.mono_origin_us = self.local_us(at);
        self.mono_base_ms = mono_base_ms;
        self.mono_last_ms = mono_base_ms;
    }

    /// What the node reads at true time `at`. Monotonic time never decreases between calls.
    pub fn now(&mut self, at: SimTime) -> Now {
        let local = self.local_us(at);
        let mono_ms = self.mono_ms_of_local(local).max(self.mono_last_ms);
        self.mono_last_ms = mono_ms;
        let wall_ms =
            WALL_EPOCH_MS + self.wall_offset_ms + local.div_euclid(1_000) + self.wall_step_ms;
        Now { mono_ms, wall_ms }
    }

    /// The oscillator jumps `ms` forward: both clocks leap (a stalled VM catching up).
    pub fn jump(&mut self, ms: u64) {
        self.jump_us = self.jump_us.saturating_add(ms.saturating_mul(1_000));
    }

    /// The wall clock is stepped by `delta_ms` (either sign); monotonic time is unaffected.
    pub fn step_wall(&mut self, delta_ms: i64) {
        self.wall_step_ms += delta_ms;
    }

    /// The earliest true time at or after `not_before` at which the monotonic clock reads at
    /// least `mono_ms` (when to deliver a node's timer).
    pub fn when_mono(&self, mono_ms: u64, not_before: SimTime) -> SimTime {
        let target_local = (mono_ms.saturating_sub(self.mono_base_ms) as i128) * 1_000
            + self.mono_origin_us as i128;
        let scaled = target_local - self.jump_us as i128;
        // local = t * (10^6 + drift) / 10^6 + jump, solved for t and rounded up.
        let speed = 1_000_000 + self.drift_ppm as i128;
        let mut t = ((scaled * 1_000_000 + speed - 1) / speed).max(not_before.0 as i128) as u64;
        // Integer rounding can leave the estimate a few µs off either way.
        let reads = |t: u64| self.mono_ms_of_local(self.local_us(SimTime(t)));
        while reads(t) < mono_ms {
            t += 1;
        }
        while t > not_before.0 && reads(t - 1) >= mono_ms {
            t -= 1;
        }
        SimTime(t)
    }

    fn local_us(&self, at: SimTime) -> i64 {
        let t = at.0 as i128;
        (t + t * self.drift_ppm as i128 / 1_000_000 + self.jump_us as i128) as i64
    }

    fn mono_ms_of_local(&self, local_us: i64) -> u64 {
        self.mono_base_ms + ((local_us - self.mono_origin_us).max(0) / 1_000) as u64
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_perfect_clock_reads_true_time() {
        let mut clock = Clock::new(0, 0, SimTime::ZERO);
        let now = clock.now(SimTime::from_ms(1_500));
        assert_eq!(now, Now { mono_ms: 1_500, wall_ms: WALL_EPOCH_MS + 1_500 });
    }

    #[test]
    fn drift_and_offset_shift_the_reading() {
        let mut clock = Clock::new(-250, 1_000, SimTime::ZERO);
        let now = clock.now(SimTime::from_ms(10_000));
        assert_eq!(now.mono_ms, 10_010);
        assert_eq!(now.wall_ms, WALL_EPOCH_MS - 250 + 10_010);
    }

    #[test]
    fn jumps_move_both_clocks_and_wall_steps_only_the_wall() {
        let mut clock = Clock::new(0, 0, SimTime::ZERO);
        clock.jump(700);
        clock.step_wall(-5_000);
        let now = clock.now(SimTime::from_ms(100));
        assert_eq!(now.mono_ms, 800);
        assert_eq!(now.wall_ms, WALL_EPOCH_MS + 800 - 5_000);
    }

    #[test]
    fn restart_gives_a_new_monotonic_origin() {
        let mut clock = Clock::new(0, 0, SimTime::ZERO);
        assert_eq!(clock.now(SimTime::from_ms(9_000)).mono_ms, 9_000);
        clock.restart(SimTime::from_ms(10_000), 3);
        let now = clock.now(SimTime::from_ms(10_005));
        assert_eq!(now.mono_ms, 8);
        assert_eq!(now.wall_ms, WALL_EPOCH_MS + 10_005);
    }

    proptest! {
        #[test]
        fn monotonic_never_goes_back_and_when_mono_is_exact(
            drift in -50_000i32..50_000,
            offset in -1_000_000i64..1_000_000,
            steps in proptest::collection::vec((0u64..5_000_000, 0u64..2_000), 1..30),
        ) {
            let mut clock = Clock::new(offset, drift, SimTime::ZERO);
            let mut t = SimTime::ZERO;
            let mut last = clock.now(t).mono_ms;
            for (advance, jump) in steps {
                t = t.plus_us(advance);
                if jump % 3 == 0 {
                    clock.jump(jump);
                }
                let now = clock.now(t);
                prop_assert!(now.mono_ms >= last);
                last = now.mono_ms;
                let target = now.mono_ms + 1 + jump;
                let at = clock.when_mono(target, t);
                prop_assert!(at >= t);
                prop_assert!(clock.clone().now(at).mono_ms >= target);
                if at > t {
                    prop_assert!(clock.clone().now(SimTime(at.0 - 1)).mono_ms < target);
                }
            }
        }
    }
}
