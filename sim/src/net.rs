//! The network: FIFO pipes with delay, clogging and resets, for client connections now and
//! for peer links once Zab lands.
//!
//! Every connection is TCP-like: two [`Pipe`]s, one per direction, each delivering in order.
//! A message's arrival is `max(previous arrival, now + delay)`, so delay varies without ever
//! reordering within a connection. A *clog* stops a pipe without losing anything (TCP
//! retransmits): messages wait and flow again when it clears. Loss happens only by *resetting*
//! the connection, which drops everything in flight in both directions and tells each side.
//! Duplication and reordering therefore happen only across reconnects, as with TCP: a client
//! that resends after a reconnect, or a peer link that is re-established.
//!
//! Endpoints are addressed by [`ServerId`] and [`ClientId`], so going from one node to an
//! ensemble only adds [`PeerNet`] links between servers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use ensemble::core::ids::{ConnId, ServerId};
use rand_chacha::ChaCha8Rng;

use crate::options::NetOptions;
use crate::rng;
use crate::time::SimTime;
use crate::workload::ClientId;

/// A direction on a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

/// One direction of a connection: messages in flight, in order.
#[derive(Debug)]
pub struct Pipe<M> {
    queue: VecDeque<(Option<SimTime>, M)>,
    arrival_last: SimTime,
    clogged: bool,
}

impl<M> Default for Pipe<M> {
    fn default() -> Self {
        Pipe { queue: VecDeque::new(), arrival_last: SimTime::ZERO, clogged: false }
    }
}

impl<M> Pipe<M> {
    /// Sends `message` at `now` with the given delay. Returns when it arrives, or `None` if
    /// the pipe is clogged (it then waits for [`Pipe::unclog`]).
    pub fn send(&mut self, now: SimTime, delay_us: u64, message: M) -> Option<SimTime> {
        if self.clogged {
            self.queue.push_back((None, message));
            return None;
        }
        let arrival = now.plus_us(delay_us).max(self.arrival_last);
        self.arrival_last = arrival;
        self.queue.push_back((Some(arrival), message));
        Some(arrival)
    }

    /// Takes the head message if it has arrived by `now`.
    pub fn receive(&mut self, now: SimTime) -> Option<M> {
        match self.queue.front() {
            Some((Some(arrival), _)) if *arrival <= now => self.queue.pop_front().map(|(_, m)| m),
            _ => None,
        }
    }

    /// Stops the pipe: messages sent from now on wait. Messages already on the wire arrive.
    pub fn clog(&mut self) {
        self.clogged = true;
    }

    /// Lets waiting messages flow again; returns their arrival times, in order, to schedule.
    pub fn unclog(&mut self, now: SimTime, rng: &mut ChaCha8Rng, net: &NetOptions) -> Vec<SimTime> {
        self.clogged = false;
        let mut arrivals = Vec::new();
        for (arrival, _) in self.queue.iter_mut().filter(|(a, _)| a.is_none()) {
            let at = now.plus_us(delay(rng, net)).max(self.arrival_last);
            self.arrival_last = at;
            *arrival = Some(at);
            arrivals.push(at);
        }
        arrivals
    }

    /// Whether the pipe is clogged.
    pub fn is_clogged(&self) -> bool {
        self.clogged
    }

    /// Messages in flight or waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// What travels on a client connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientWire {
    /// The connection opens (the server's `accept`).
    Open,
    /// One length-prefixed frame.
    Frame(Bytes),
    /// The sender closed its end after everything before it.
    Close,
}

/// A client connection between a client and a server.
#[derive(Debug)]
pub struct ClientConn {
    /// The client end.
    pub client: ClientId,
    /// The server end.
    pub server: ServerId,
    /// Which life of the server it was opened to.
    pub incarnation: u32,
    /// Client to server.
    pub to_server: Pipe<ClientWire>,
    /// Server to client.
    pub to_client: Pipe<ClientWire>,
    /// The client still reads this connection.
    pub client_open: bool,
    /// The server still reads this connection.
    pub server_open: bool,
}

impl ClientConn {
    /// The pipe going `dir`.
    pub fn pipe(&mut self, dir: Dir) -> &mut Pipe<ClientWire> {
        match dir {
            Dir::ToServer => &mut self.to_server,
            Dir::ToClient => &mut self.to_client,
        }
    }
}

/// Every client connection of the run.
#[derive(Debug, Default)]
pub struct Network {
    conns: BTreeMap<ConnId, ClientConn>,
    conn_next: u64,
}

impl Network {
    /// No connections.
    pub fn new() -> Network {
        Network { conns: BTreeMap::new(), conn_next: 1 }
    }

    /// A fresh connection id (never reused within a run).
    pub fn allocate(&mut self) -> ConnId {
        let id = ConnId(self.conn_next);
        self.conn_next += 1;
        id
    }

    /// Registers an open connection.
    pub fn open(&mut self, conn: ConnId, client: ClientId, server: ServerId, incarnation: u32) {
        let previous = self.conns.insert(
            conn,
            ClientConn {
                client,
                server,
                incarnation,
                to_server: Pipe::default(),
                to_client: Pipe::default(),
                client_open: true,
                server_open: true,
            },
        );
        assert!(previous.is_none(), "{conn} opened twice");
    }

    /// The connection, if it is still up.
    pub fn get(&mut self, conn: ConnId) -> Option<&mut ClientConn> {
        self.conns.get_mut(&conn)
    }

    /// Removes a connection (after a reset or once both ends closed).
    pub fn remove(&mut self, conn: ConnId) -> Option<ClientConn> {
        self.conns.remove(&conn)
    }

    /// The connections to `server`, in id order.
    pub fn conns_of_server(&self, server: ServerId) -> Vec<ConnId> {
        self.conns.iter().filter(|(_, c)| c.server == server).map(|(id, _)| *id).collect()
    }

    /// Every connection id, in order.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }
}

/// A one-way delay drawn for one message.
pub fn delay(rng: &mut ChaCha8Rng, net: &NetOptions) -> u64 {
    rng::between(rng, net.delay_min_us, net.delay_max_us)
}

/// What travels on a peer link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerWire<M> {
    /// The link is established (the receiving end gets `PeerLinkUp`). It is the first thing in
    /// each direction, so no message of a link can overtake its announcement.
    Open,
    /// A message.
    Msg(M),
}

/// One peer link: a TCP connection between two servers, like ZooKeeper's
/// `QuorumCnxManager` keeps one per pair. Re-establishing it gives a new generation, so a
/// message of an old link can never be delivered on the new one.
#[derive(Debug)]
pub struct PeerLink<M> {
    /// Bumped every time the link is established.
    pub generation: u64,
    /// Whether it is established.
    pub up: bool,
    /// [lower id → higher id, higher id → lower id].
    pipes: [Pipe<PeerWire<M>>; 2],
}

impl<M> Default for PeerLink<M> {
    fn default() -> Self {
        PeerLink { generation: 0, up: false, pipes: [Pipe::default(), Pipe::default()] }
    }
}

/// The links between servers. A link is usable only if no partition separates its ends (a
/// one-way partition breaks a TCP connection too: its acknowledgements cannot flow back).
/// Loss happens only by resetting a link, which drops what it carried.
#[derive(Debug)]
pub struct PeerNet<M> {
    links: BTreeMap<(ServerId, ServerId), PeerLink<M>>,
    blocked: BTreeSet<(ServerId, ServerId)>,
}

impl<M> Default for PeerNet<M> {
    fn default() -> Self {
        PeerNet { links: BTreeMap::new(), blocked: BTreeSet::new() }
    }
}

/// The key of a pair and the pipe index for the direction `from -> to`.
fn pair(from: ServerId, to: ServerId) -> ((ServerId, ServerId), usize) {
    if from < to {
        ((from, to), 0)
    } else {
        ((to, from), 1)
    }
}

impl<M> PeerNet<M> {
    /// No links, no partitions.
    pub fn new() -> PeerNet<M> {
        PeerNet::default()
    }

    /// Establishes the link between `a` and `b` unless it is up or partitioned. Returns the
    /// new generation; the driver then sends [`PeerWire::Open`] both ways.
    pub fn establish(&mut self, a: ServerId, b: ServerId) -> Option<u64> {
        if self.is_blocked(a, b) {
            return None;
        }
        let link = self.links.entry(pair(a, b).0).or_default();
        if link.up {
            return None;
        }
        link.up = true;
        link.generation += 1;
        link.pipes = [Pipe::default(), Pipe::default()];
        Some(link.generation)
    }

    /// Puts `wire` on the link `from -> to`. Returns its arrival and the link generation, or
    /// `None` if the link is down (the message is lost) or clogged (it waits).
    pub fn send(
        &mut self,
        from: ServerId,
        to: ServerId,
        now: SimTime,
        delay_us: u64,
        wire: PeerWire<M>,
    ) -> Option<(SimTime, u64)> {
        let (key, dir) = pair(from, to);
        let link = self.links.get_mut(&key).filter(|l| l.up)?;
        let arrival = link.pipes[dir].send(now, delay_us, wire)?;
        Some((arrival, link.generation))
    }

    /// Takes the head of `from -> to` if the link is still in `generation` and it arrived.
    pub fn receive(
        &mut self,
        from: ServerId,
        to: ServerId,
        generation: u64,
        now: SimTime,
    ) -> Option<PeerWire<M>> {
        let (key, dir) = pair(from, to);
        let link = self.links.get_mut(&key).filter(|l| l.up && l.generation == generation)?;
        link.pipes[dir].receive(now)
    }

    /// Breaks the link: everything in flight is lost. Returns whether it was up.
    pub fn reset(&mut self, a: ServerId, b: ServerId) -> bool {
        match self.links.get_mut(&pair(a, b).0) {
            Some(link) if link.up => {
                link.up = false;
                link.pipes = [Pipe::default(), Pipe::default()];
                true
            }
            _ => false,
        }
    }

    /// Partitions `a` from `b` and breaks their link. Returns whether it was up.
    pub fn block(&mut self, a: ServerId, b: ServerId) -> bool {
        self.blocked.insert(pair(a, b).0);
        self.reset(a, b)
    }

    /// Lifts every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Whether a partition separates `a` and `b`.
    pub fn is_blocked(&self, a: ServerId, b: ServerId) -> bool {
        self.blocked.contains(&pair(a, b).0)
    }

    /// The generation of the link between `a` and `b`, if it is established.
    pub fn generation(&self, a: ServerId, b: ServerId) -> Option<u64> {
        self.links.get(&pair(a, b).0).filter(|l| l.up).map(|l| l.generation)
    }

    /// Whether the link between `a` and `b` is established.
    pub fn is_up(&self, a: ServerId, b: ServerId) -> bool {
        self.links.get(&pair(a, b).0).is_some_and(|l| l.up)
    }

    /// Every pair currently partitioned.
    pub fn blocked(&self) -> impl Iterator<Item = &(ServerId, ServerId)> {
        self.blocked.iter()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_pipe_is_fifo_even_when_delays_shrink() {
        let mut pipe = Pipe::default();
        let a = pipe.send(SimTime(0), 500, 'a').unwrap();
        let b = pipe.send(SimTime(10), 100, 'b').unwrap();
        assert_eq!((a, b), (SimTime(500), SimTime(500)));
        assert_eq!(pipe.receive(SimTime(499)), None);
        assert_eq!(pipe.receive(SimTime(500)), Some('a'));
        assert_eq!(pipe.receive(SimTime(500)), Some('b'));
    }

    #[test]
    fn a_clog_delays_without_losing_or_reordering() {
        let net = NetOptions { delay_min_us: 10, delay_max_us: 10 };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut pipe = Pipe::default();
        pipe.send(SimTime(0), 10, 1);
        pipe.clog();
        assert_eq!(pipe.send(SimTime(1), 10, 2), None);
        assert_eq!(pipe.send(SimTime(2), 10, 3), None);
        assert_eq!(pipe.receive(SimTime(10)), Some(1), "already on the wire");
        assert_eq!(pipe.receive(SimTime(1_000)), None);
        let arrivals = pipe.unclog(SimTime(1_000), &mut rng, &net);
        assert_eq!(arrivals, vec![SimTime(1_010), SimTime(1_010)]);
        assert_eq!(pipe.receive(SimTime(1_010)), Some(2));
        assert_eq!(pipe.receive(SimTime(1_010)), Some(3));
    }

    #[test]
    fn peer_links_lose_messages_only_by_breaking() {
        let (a, b) = (ServerId(1), ServerId(2));
        let mut net = PeerNet::new();
        assert_eq!(net.send(a, b, SimTime(0), 5, PeerWire::Msg("early")), None);
        let g1 = net.establish(a, b).unwrap();
        assert_eq!(net.establish(b, a), None, "one link per pair");
        assert_eq!(net.send(a, b, SimTime(0), 5, PeerWire::Msg("m1")), Some((SimTime(5), g1)));
        assert_eq!(net.send(b, a, SimTime(0), 7, PeerWire::Msg("r1")), Some((SimTime(7), g1)));
        assert!(net.reset(a, b));
        let g2 = net.establish(a, b).unwrap();
        assert_ne!(g1, g2);
        assert_eq!(net.receive(a, b, g1, SimTime(5)), None, "lost with the old link");
        net.send(a, b, SimTime(6), 5, PeerWire::Msg("m2"));
        assert_eq!(net.receive(a, b, g2, SimTime(11)), Some(PeerWire::Msg("m2")));
        assert!(net.block(b, a));
        assert!(!net.is_up(a, b));
        assert_eq!(net.establish(a, b), None, "partitioned");
        net.heal();
        assert!(net.establish(a, b).is_some());
    }
}
