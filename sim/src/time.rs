//! Simulated time: one global, virtual clock in microseconds.
//!
//! Nothing in the simulator reads the host's clock. Every event happens at a `SimTime`; a node
//! sees that instant only through its own drifting, jumping [`crate::clock::Clock`].

use std::fmt;

/// An instant of simulated time, in microseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);

    /// `ms` milliseconds after the start.
    pub fn from_ms(ms: u64) -> SimTime {
        SimTime(ms * 1_000)
    }

    /// This instant plus `us` microseconds.
    pub fn plus_us(self, us: u64) -> SimTime {
        SimTime(self.0.saturating_add(us))
    }

    /// This instant plus `ms` milliseconds.
    pub fn plus_ms(self, ms: u64) -> SimTime {
        self.plus_us(ms.saturating_mul(1_000))
    }

    /// Whole milliseconds since the start.
    pub fn as_ms(self) -> u64 {
        self.0 / 1_000
    }

    /// Microseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for SimTime {
    /// Seconds with six decimals, e.g. `12.000345s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_seconds() {
        assert_eq!(SimTime(12_000_345).to_string(), "12.000345s");
        assert_eq!(SimTime::from_ms(1).plus_us(2).to_string(), "0.001002s");
    }
}
