//! Time as the core sees it: only what the driver hands in with each input.

use serde::{Deserialize, Serialize};

/// The instant at which the driver observed an input.
///
/// `mono_ms` is a monotonic clock (never goes backwards on one node; its origin is arbitrary)
/// and drives every timeout. `wall_ms` is wall-clock milliseconds since the Unix epoch and is
/// used only for the `ctime`/`mtime` a leader stamps into transactions, as ZooKeeper does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub wall_ms: i64,
}

impl Now {
    /// An instant `ms` milliseconds later on both clocks.
    pub fn plus_ms(self, ms: u64) -> Now {
        Now { mono_ms: self.mono_ms + ms, wall_ms: self.wall_ms + ms as i64 }
    }
}
