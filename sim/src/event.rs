//! The event queue: every future happening of a run, ordered by (time, sequence number).
//!
//! Events are small `Copy` values naming *what* to look at (a connection, a node, a client),
//! never carrying payloads: a message waits in its connection's pipe, so an event costs a few
//! words in the heap and no allocation. Two events at the same instant run in the order they
//! were scheduled, which makes a run a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ensemble::core::ids::{ConnId, ServerId, WriteId};

use crate::faults::FaultKind;
use crate::net::Dir;
use crate::time::SimTime;
use crate::workload::ClientId;

/// Something that will happen at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node's deadline may have come: give it `Input::Tick`.
    NodeTimer {
        /// The node.
        server: ServerId,
        /// Which life of the node scheduled it (stale after a crash).
        incarnation: u32,
    },
    /// A simulated fsync finished.
    FsyncDone {
        /// The node.
        server: ServerId,
        /// Which life of the node started it.
        incarnation: u32,
        /// The last write it covers.
        up_to: WriteId,
    },
    /// The message at the head of a connection's pipe arrives.
    Deliver {
        /// The connection.
        conn: ConnId,
        /// Which way.
        dir: Dir,
    },
    /// A node learns that a client connection was reset (its side of a broken connection).
    NodeConnLost {
        /// The node.
        server: ServerId,
        /// Which life of the node owned the connection.
        incarnation: u32,
        /// The connection.
        conn: ConnId,
    },
    /// The message at the head of a peer link's `from -> to` pipe arrives.
    PeerDeliver {
        /// The sender.
        from: ServerId,
        /// The receiver.
        to: ServerId,
        /// The link generation it was sent on.
        generation: u64,
    },
    /// A node learns that its link to `peer` broke.
    PeerLinkLost {
        /// The node.
        server: ServerId,
        /// Which life of the node had the link.
        incarnation: u32,
        /// The other end.
        peer: ServerId,
    },
    /// Try to (re-)establish the link between two servers.
    PeerConnect {
        /// The lower id.
        a: ServerId,
        /// The higher id.
        b: ServerId,
    },
    /// A network partition between servers heals.
    PartitionEnd,
    /// A client learns that its connection was reset or refused.
    ClientConnLost {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
    },
    /// A client's timer (pings, timeouts, next operation, reconnect).
    ClientTimer {
        /// The client.
        client: ClientId,
    },
    /// A crashed node comes back.
    Restart {
        /// The node.
        server: ServerId,
    },
    /// A paused node runs again.
    Resume {
        /// The node.
        server: ServerId,
        /// Which life of the node was paused.
        incarnation: u32,
    },
    /// A clogged connection flows again.
    Unclog {
        /// The connection.
        conn: ConnId,
    },
    /// Deliver `Input::Persisted` (a disk that lies about fsync acknowledges at once).
    Persist {
        /// The node.
        server: ServerId,
        /// Which life of the node wrote it.
        incarnation: u32,
        /// The last write reported durable.
        up_to: WriteId,
    },
    /// The fault injector's next move in one fault class.
    Fault(FaultKind),
    /// A workload burst begins: the clients may generate operations again.
    BurstStart,
    /// The run moves to its next phase.
    PhaseEnd,
}

/// A min-queue of events keyed by (time, sequence number).
#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    seq_next: u64,
}

struct Scheduled {
    at: SimTime,
    seq: u64,
    event: Event,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> EventQueue {
        EventQueue::default()
    }

    /// Schedules `event` at `at`; events at the same instant keep their scheduling order.
    pub fn push(&mut self, at: SimTime, event: Event) {
        let seq = self.seq_next;
        self.seq_next += 1;
        self.heap.push(Scheduled { at, seq, event });
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<(SimTime, Event)> {
        self.heap.pop().map(|s| (s.at, s.event))
    }

    /// When the earliest event happens.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|s| s.at)
    }

    /// Number of scheduled events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_scheduling_order() {
        let mut queue = EventQueue::new();
        queue.push(SimTime(5), Event::Fault(FaultKind::Crash));
        queue.push(SimTime(3), Event::PhaseEnd);
        queue.push(SimTime(5), Event::ClientTimer { client: ClientId(1) });
        queue.push(SimTime(3), Event::ClientTimer { client: ClientId(2) });
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(
            order,
            vec![
                (SimTime(3), Event::PhaseEnd),
                (SimTime(3), Event::ClientTimer { client: ClientId(2) }),
                (SimTime(5), Event::Fault(FaultKind::Crash)),
                (SimTime(5), Event::ClientTimer { client: ClientId(1) }),
            ]
        );
    }
}
