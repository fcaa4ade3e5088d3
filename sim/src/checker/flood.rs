//! No member floods its peers: a bounded number of peer messages per window of true time.
//!
//! Zab's traffic is bounded by the work it does: a few messages per proposal and learner, a
//! ping per half tick, a notification per peer when a vote changes. A member that sends
//! without bound is in a message loop — typically an election whose votes chase each other
//! forever because the vote order is not total (ZOOKEEPER-1419: "leader election never
//! settles"). In the simulator such a loop also stops true time (the messages all arrive
//! within microseconds) and would exhaust memory long before the liveness phase could judge
//! it, so this is checked online: more than [`MESSAGES_PER_WINDOW`] peer messages from one
//! member within [`WINDOW_US`] of true time is a violation. The busiest legitimate runs send
//! well under a tenth of that.

use std::collections::BTreeMap;
use std::fmt;

use ensemble::core::ids::ServerId;

use crate::time::SimTime;

/// The window, µs of true time.
pub const WINDOW_US: u64 = 100_000;

/// Peer messages one member may send within a window.
pub const MESSAGES_PER_WINDOW: u64 = 100_000;

/// A member sent too many peer messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodViolation {
    /// The sender.
    pub server: ServerId,
    /// The window's start.
    pub since: SimTime,
    /// When the bound was passed.
    pub at: SimTime,
    /// The message that passed the bound (by name): the loop's.
    pub last: &'static str,
}

/// Counts each member's peer messages per window.
#[derive(Debug, Default)]
pub struct FloodMeter {
    windows: BTreeMap<ServerId, Window>,
}

#[derive(Debug, Default)]
struct Window {
    since: SimTime,
    sent: u64,
}

impl FloodMeter {
    /// A meter with nothing counted.
    pub fn new() -> FloodMeter {
        FloodMeter::default()
    }

    /// `server` sends a peer message named `name` at `now`.
    pub fn sent(
        &mut self,
        server: ServerId,
        name: &'static str,
        now: SimTime,
    ) -> Option<FloodViolation> {
        let window = self.windows.entry(server).or_default();
        if now.0 >= window.since.0 + WINDOW_US {
            *window = Window { since: now, ..Window::default() };
        }
        window.sent += 1;
        (window.sent > MESSAGES_PER_WINDOW).then_some(FloodViolation {
            server,
            since: window.since,
            at: now,
            last: name,
        })
    }
}

impl fmt::Display for FloodViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{} sent more than {MESSAGES_PER_WINDOW} peer messages between {} and {} \
             (the last a {}): a message loop",
            self.server, self.since, self.at, self.last
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_caught_and_steady_traffic_is_not() {
        let mut meter = FloodMeter::new();
        // Steady: one message per µs... for a window, then a new window starts.
        for i in 0..MESSAGES_PER_WINDOW {
            assert_eq!(meter.sent(ServerId(1), "PING", SimTime(i)), None);
        }
        assert_eq!(meter.sent(ServerId(1), "PING", SimTime(WINDOW_US)), None);
        // A loop: everything at one instant.
        let mut found = None;
        for _ in 0..=MESSAGES_PER_WINDOW {
            found = found.or(meter.sent(ServerId(2), "NOTIFICATION", SimTime(5)));
        }
        let violation = found.expect("a flood");
        assert_eq!(violation.server, ServerId(2));
        assert_eq!(violation.last, "NOTIFICATION");
    }
}
