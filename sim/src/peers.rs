//! Peer links between servers, as the driver sees them: establishing, delivering, breaking
//! and partitioning.
//!
//! Every pair of servers has one link (one TCP connection, like `QuorumCnxManager`). The
//! driver establishes it whenever both ends are up and no partition separates them, after a
//! reconnect delay longer than any message delay: so an end always hears that the old link
//! went down (`PeerLinkDown`) before it hears that the new one is up (`PeerLinkUp`, the first
//! thing on each direction of the link). A crash or a partition resets the links of the
//! servers involved; what was in flight is lost and each live end is told.

use ensemble::core::ids::ServerId;
use ensemble::core::io::Input;
use ensemble::core::zab::PeerMsg;
use rand::Rng;

use crate::event::Event;
use crate::net::{self, PeerWire};
use crate::rng;
use crate::simulator::Simulator;
use crate::trace::TraceEvent;

/// Extra wait before (re-)establishing a link, beyond twice the largest message delay, µs.
const RECONNECT_EXTRA_MAX_US: u64 = 200_000;

impl Simulator {
    /// Schedules a connection attempt on every missing link of server `idx`.
    pub(crate) fn ensure_links(&mut self, idx: usize) {
        let me = self.servers[idx].id;
        let others: Vec<ServerId> =
            self.servers.iter().map(|s| s.id).filter(|id| *id != me).collect();
        for other in others {
            self.schedule_peer_connect(me, other);
        }
    }

    fn schedule_peer_connect(&mut self, a: ServerId, b: ServerId) {
        let key = if a < b { (a, b) } else { (b, a) };
        if self.peers.is_up(a, b) || self.peers.is_blocked(a, b) {
            return;
        }
        if !self.peer_connect_pending.insert(key) {
            return;
        }
        let floor = 2 * self.options.net.delay_max_us + 1_000;
        let delay = rng::between(&mut self.rngs.net, floor, floor + RECONNECT_EXTRA_MAX_US);
        self.queue.push(self.now.plus_us(delay), Event::PeerConnect { a: key.0, b: key.1 });
    }

    pub(crate) fn on_peer_connect(&mut self, a: ServerId, b: ServerId) {
        self.peer_connect_pending.remove(&(a, b));
        let up = |id: ServerId| self.servers.iter().any(|s| s.id == id && s.node.is_some());
        if !up(a) || !up(b) {
            return; // the restart of the down end asks again
        }
        let Some(generation) = self.peers.establish(a, b) else { return };
        self.trace.push(self.now, TraceEvent::LinkUp { a, b, generation });
        self.peer_send(a, b, PeerWire::Open);
        self.peer_send(b, a, PeerWire::Open);
    }

    /// A node's message to `to`: it goes out only on the link the node was last told is up
    /// (as the runtime's `PeerLinks` does); otherwise it is lost. Returns whether it went out.
    pub(crate) fn node_peer_send(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) -> bool {
        let told = self.peer_told.get(&(from, to)).copied();
        if told.is_none() || told != self.peers.generation(from, to) {
            return false;
        }
        self.peer_send(from, to, PeerWire::Msg(msg))
    }

    /// Puts a message on the link `from -> to`; false if the link is down (it is lost).
    pub(crate) fn peer_send(
        &mut self,
        from: ServerId,
        to: ServerId,
        wire: PeerWire<PeerMsg>,
    ) -> bool {
        let delay = net::delay(&mut self.rngs.net, &self.options.net)
            + self.fault_points.stall_us(from, to, self.now);
        match self.peers.send(from, to, self.now, delay, wire) {
            Some((at, generation)) => {
                self.queue.push(at, Event::PeerDeliver { from, to, generation });
                true
            }
            None => false,
        }
    }

    pub(crate) fn on_peer_deliver(&mut self, from: ServerId, to: ServerId, generation: u64) {
        let Some(wire) = self.peers.receive(from, to, generation, self.now) else { return };
        let Some(idx) = self.servers.iter().position(|s| s.id == to) else { return };
        let input = match wire {
            PeerWire::Open => {
                self.peer_told.insert((to, from), generation);
                Input::PeerLinkUp { peer: from }
            }
            PeerWire::Msg(msg) => Input::PeerMessage { from, msg },
        };
        self.node_input(idx, input);
    }

    pub(crate) fn on_peer_link_lost(&mut self, server: ServerId, incarnation: u32, peer: ServerId) {
        if let Some(idx) = self.live_index(server, incarnation) {
            self.peer_told.remove(&(server, peer));
            self.node_input(idx, Input::PeerLinkDown { peer });
        }
    }

    /// Breaks the link between `a` and `b` (and blocks it if `partition`); each live end hears
    /// of it after a message delay, and a reconnect is scheduled.
    pub(crate) fn break_peer_link(&mut self, a: ServerId, b: ServerId, partition: bool) {
        let was_up = if partition { self.peers.block(a, b) } else { self.peers.reset(a, b) };
        if partition {
            self.trace.push(self.now, TraceEvent::Partition { a, b });
        }
        if !was_up {
            return;
        }
        self.trace.push(self.now, TraceEvent::LinkReset { a, b });
        for (end, peer) in [(a, b), (b, a)] {
            let Some(slot) = self.servers.iter().find(|s| s.id == end && s.node.is_some()) else {
                continue;
            };
            let incarnation = slot.incarnation;
            let at = self.now.plus_us(net::delay(&mut self.rngs.net, &self.options.net));
            self.queue.push(at, Event::PeerLinkLost { server: end, incarnation, peer });
        }
        self.schedule_peer_connect(a, b);
    }

    /// Breaks every link of server `idx` (it crashed).
    pub(crate) fn break_links_of(&mut self, idx: usize) {
        let me = self.servers[idx].id;
        self.peer_told.retain(|(node, _), _| *node != me);
        let others: Vec<ServerId> =
            self.servers.iter().map(|s| s.id).filter(|id| *id != me).collect();
        for other in others {
            self.break_peer_link(me, other, false);
        }
    }

    /// Splits the servers in two: one random server alone, or a random cut.
    pub(crate) fn partition(&mut self, ms: u64) {
        let ids: Vec<ServerId> = self.servers.iter().map(|s| s.id).collect();
        if ids.len() < 2 {
            return;
        }
        let r = &mut self.rngs.faults[crate::faults::FaultKind::Partition as usize];
        let side: Vec<bool> = if r.gen_bool(0.5) {
            let alone = r.gen_range(0..ids.len());
            (0..ids.len()).map(|i| i == alone).collect()
        } else {
            let mut side: Vec<bool> = (0..ids.len()).map(|_| r.gen_bool(0.5)).collect();
            let first = side[0];
            if side.iter().all(|s| *s == first) {
                side[0] = !first;
            }
            side
        };
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                if side[i] != side[j] {
                    self.break_peer_link(ids[i], ids[j], true);
                }
            }
        }
        self.queue.push(self.now.plus_ms(ms), Event::PartitionEnd);
        self.disturbed_for(ms);
    }

    /// Lifts every partition and reconnects what is missing.
    pub(crate) fn heal_partitions(&mut self) {
        if self.peers.blocked().next().is_none() {
            return;
        }
        self.peers.heal();
        self.trace.push(self.now, TraceEvent::PartitionHeal);
        for idx in 0..self.servers.len() {
            if self.servers[idx].node.is_some() {
                self.ensure_links(idx);
            }
        }
    }
}
