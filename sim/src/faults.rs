//! The fault injector and the run's phases.
//!
//! Each fault class is its own Poisson process with the mean gap the options give (0: off),
//! drawn from the faults RNG stream, so switching one class off leaves the timing of the others
//! unchanged. Faults strike only in the safety phase:
//! * **crash**: a random live node dies — unsynced writes lost, connections reset — and
//!   restarts from its durable state after a random down time;
//! * **disconnect**: a random client's connection ends — the client closes it, or the network
//!   resets it under both ends — and the client reconnects after a back-off;
//! * **pause**: a random node stops taking inputs for a while (a GC or VM stall); its clock
//!   runs on, so when it resumes it sees time jump and deadlines long past;
//! * **clock jump**: a node's oscillator leaps forward: both its clocks jump;
//! * **wall step**: a node's wall clock alone is stepped either way, as NTP does (expiry and
//!   every timeout must not care);
//! * **clog**: a connection stops moving bytes for a while, without losing them;
//! * **partition** (ensembles): the servers split in two — one alone, or a random cut — and
//!   the links across break until the partition heals;
//! * **peer stall** (ensembles): one direction of a peer link stops moving bytes for a while
//!   (TCP keeps them: they arrive late, in order), so a follower can keep serving while it
//!   lags its leader, or give the leader up after syncLimit.
//!
//! Besides these Poisson processes, **fault points** (FoundationDB's BUGGIFY) strike at
//! protocol moments rather than at random times: the driver sees every input and effect of a
//! node, and when a step reaches a [`Site`] that is on for the seed (an epoch write, an
//! ACKEPOCH, a NEWLEADER acknowledgement, a truncation...), it may crash that node — or cut
//! the power of every node at once — right after the step or a little later. The windows that
//! matter for durability (between a promise and its fsync, between two writes of one step)
//! are microseconds wide; random crashes almost never land in them, fault points often do.
//!
//! When the safety phase ends everything heals at once: crashed nodes restart, paused ones
//! resume, clogs clear. The liveness phase then requires progress, and a short drain lets
//! in-flight operations finish before the checkers run.

use std::collections::BTreeMap;

use ensemble::core::ids::ServerId;
use ensemble::core::io::{DurableWrite, Effect, Input};
use ensemble::core::zab::PeerMsg;
use rand::Rng;

use crate::event::Event;
use crate::net::Dir;
use crate::options::FaultOptions;
use crate::rng;
use crate::simulator::Simulator;
use crate::time::SimTime;
use crate::trace::TraceEvent;
use crate::workload::ClientId;
use crate::Phase;

/// A class of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A node crashes and later restarts.
    Crash,
    /// A client drops its connection.
    Disconnect,
    /// A node pauses.
    Pause,
    /// A node's clocks leap forward (both).
    ClockJump,
    /// A node's wall clock alone is stepped, either way.
    WallStep,
    /// A connection clogs.
    Clog,
    /// The servers split into two sides.
    Partition,
    /// One direction of a peer link stalls.
    PeerStall,
    /// A fault point's crash lands (not a Poisson process: fault points schedule it).
    Buggify,
    /// A reconnecting client is routed to the member furthest behind (not a Poisson process:
    /// drawn at each reconnect; see `FaultOptions::reconnect_to_laggard_pct`).
    Laggard,
}

impl FaultKind {
    /// Every class.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Crash,
        FaultKind::Disconnect,
        FaultKind::Pause,
        FaultKind::ClockJump,
        FaultKind::WallStep,
        FaultKind::Clog,
        FaultKind::Partition,
        FaultKind::PeerStall,
        FaultKind::Buggify,
        FaultKind::Laggard,
    ];

    /// Mean gap between two faults of this class, ms (0: off).
    pub fn every_ms(self, faults: &FaultOptions) -> u64 {
        match self {
            FaultKind::Crash => faults.crash_every_ms,
            FaultKind::Disconnect => faults.disconnect_every_ms,
            FaultKind::Pause => faults.pause_every_ms,
            FaultKind::ClockJump => faults.clock_jump_every_ms,
            FaultKind::WallStep => faults.wall_step_every_ms,
            FaultKind::Clog => faults.clog_every_ms,
            FaultKind::Partition => faults.partition_every_ms,
            FaultKind::PeerStall => faults.peer_stall_every_ms,
            FaultKind::Buggify | FaultKind::Laggard => 0,
        }
    }
}

/// A protocol moment at which a fault point may strike. The driver recognises each from a
/// node's inputs and effects alone; nothing in the core knows about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Site {
    /// A node writes `acceptedEpoch` (it accepts a new epoch: NEWEPOCH/LEADERINFO).
    AcceptedEpochWritten,
    /// A node writes `currentEpoch` (it takes a new leader's history: NEWLEADER).
    CurrentEpochWritten,
    /// A leader sends LEADERINFO.
    LeaderInfoSent,
    /// A learner sends ACKEPOCH.
    AckEpochSent,
    /// A learner sends ACK(NEWLEADER).
    NewLeaderAckSent,
    /// A leader hears an ACK(NEWLEADER): it may now be established.
    NewLeaderAckReceived,
    /// A leader sends UPTODATE (the learner starts serving).
    UpToDateSent,
    /// A node writes a truncation of its log (TRUNC).
    TruncateWritten,
    /// A node writes a snapshot.
    SnapshotWritten,
}

impl Site {
    /// How many sites there are.
    pub const COUNT: usize = 9;

    /// Every site, in order.
    pub const ALL: [Site; Site::COUNT] = [
        Site::AcceptedEpochWritten,
        Site::CurrentEpochWritten,
        Site::LeaderInfoSent,
        Site::AckEpochSent,
        Site::NewLeaderAckSent,
        Site::NewLeaderAckReceived,
        Site::UpToDateSent,
        Site::TruncateWritten,
        Site::SnapshotWritten,
    ];

    /// A short name for options and traces.
    pub fn name(self) -> &'static str {
        match self {
            Site::AcceptedEpochWritten => "accepted-epoch-write",
            Site::CurrentEpochWritten => "current-epoch-write",
            Site::LeaderInfoSent => "leaderinfo-sent",
            Site::AckEpochSent => "ackepoch-sent",
            Site::NewLeaderAckSent => "newleader-ack-sent",
            Site::NewLeaderAckReceived => "newleader-ack-received",
            Site::UpToDateSent => "uptodate-sent",
            Site::TruncateWritten => "truncate-write",
            Site::SnapshotWritten => "snapshot-write",
        }
    }

    /// The site an effect reaches, if any.
    fn of_effect(effect: &Effect) -> Option<Site> {
        match effect {
            Effect::Write { write, .. } => match write {
                DurableWrite::AcceptedEpoch(_) => Some(Site::AcceptedEpochWritten),
                DurableWrite::CurrentEpoch(_) => Some(Site::CurrentEpochWritten),
                DurableWrite::Truncate { .. } => Some(Site::TruncateWritten),
                DurableWrite::Snapshot { .. } => Some(Site::SnapshotWritten),
                DurableWrite::Append(_) => None,
            },
            Effect::SendPeer { msg, .. } => match msg {
                PeerMsg::LeaderInfo { .. } => Some(Site::LeaderInfoSent),
                PeerMsg::AckEpoch { .. } => Some(Site::AckEpochSent),
                PeerMsg::AckNewLeader { .. } => Some(Site::NewLeaderAckSent),
                PeerMsg::UpToDate { .. } => Some(Site::UpToDateSent),
                _ => None,
            },
            Effect::SendClient { .. } | Effect::CloseClient { .. } => None,
        }
    }

    /// The site an input reaches, if any.
    fn of_input(input: &Input) -> Option<Site> {
        match input {
            Input::PeerMessage { msg: PeerMsg::AckNewLeader { .. }, .. } => {
                Some(Site::NewLeaderAckReceived)
            }
            _ => None,
        }
    }
}

/// What a fault point does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strike {
    /// The node at the site crashes (if still in the same life).
    Crash {
        /// The node.
        server: ServerId,
        /// The life that reached the site.
        incarnation: u32,
    },
    /// Every live node crashes at once.
    PowerLoss,
}

/// The run's fault-point state: the sites the current step reached, strikes waiting to land,
/// and peer-link stalls in progress.
#[derive(Debug, Default)]
pub(crate) struct FaultPoints {
    /// Bit `Site as usize` set: the current step reached that site.
    reached: u32,
    /// Strikes by (when, scheduling order).
    pending: BTreeMap<(SimTime, u64), Strike>,
    strikes_next: u64,
    /// (from, to) → the direction's stall ends then.
    stalls: BTreeMap<(ServerId, ServerId), SimTime>,
}

impl FaultPoints {
    /// Extra delay for a message sent on `from -> to` now: it waits for the stall to end.
    pub(crate) fn stall_us(&self, from: ServerId, to: ServerId, now: SimTime) -> u64 {
        match self.stalls.get(&(from, to)) {
            Some(end) if *end > now => end.0 - now.0,
            _ => 0,
        }
    }
}

impl Simulator {
    /// Fault points: notes the site a node's input reaches (before the node steps).
    pub(crate) fn site_input(&mut self, input: &Input) {
        if let Some(site) = Site::of_input(input) {
            self.fault_points.reached |= 1 << site as u32;
        }
    }

    /// Fault points: notes the site one of the node's effects reaches.
    pub(crate) fn site_effect(&mut self, effect: &Effect) {
        if let Some(site) = Site::of_effect(effect) {
            self.fault_points.reached |= 1 << site as u32;
        }
    }

    /// Fault points: after a step of node `idx`, each site it reached may fire (at most one
    /// strike per step). Only in the safety phase.
    pub(crate) fn sites_fire(&mut self, idx: usize) {
        let reached = std::mem::take(&mut self.fault_points.reached);
        if reached == 0 || self.phase != Phase::Safety || self.halted {
            return;
        }
        let buggify = &self.options.buggify;
        let r = &mut self.rngs.faults[FaultKind::Buggify as usize];
        let Some(site) = Site::ALL.into_iter().find(|site| {
            let p = buggify.fire[*site as usize];
            reached & (1 << *site as u32) != 0 && p > 0.0 && r.gen_bool(p)
        }) else {
            return;
        };
        let power_loss = buggify.power_loss > 0.0 && r.gen_bool(buggify.power_loss);
        let delay_us = rng::between(r, 0, buggify.delay_max_us);
        let slot = &self.servers[idx];
        let (server, incarnation) = (slot.id, slot.incarnation);
        let strike =
            if power_loss { Strike::PowerLoss } else { Strike::Crash { server, incarnation } };
        self.trace.push(self.now, TraceEvent::Buggify { server, site, power_loss, delay_us });
        let points = &mut self.fault_points;
        let at = self.now.plus_us(delay_us);
        points.pending.insert((at, points.strikes_next), strike);
        points.strikes_next += 1;
        self.queue.push(at, Event::Fault(FaultKind::Buggify));
    }

    /// The earliest pending strike of a fault point lands.
    fn strike(&mut self) {
        let Some((_, strike)) = self.fault_points.pending.pop_first() else { return };
        let (down_min, down_max) =
            (self.options.faults.down_min_ms, self.options.faults.down_max_ms);
        let victims: Vec<usize> = match strike {
            Strike::Crash { server, incarnation } => {
                self.live_index(server, incarnation).into_iter().collect()
            }
            Strike::PowerLoss => {
                (0..self.servers.len()).filter(|i| self.servers[*i].node.is_some()).collect()
            }
        };
        for idx in victims {
            let r = &mut self.rngs.faults[FaultKind::Buggify as usize];
            let down_ms = rng::between(r, down_min, down_max);
            self.crash_server(idx, Some(down_ms));
        }
    }

    /// Schedules the first fault of every enabled class.
    pub(crate) fn schedule_faults(&mut self) {
        for kind in FaultKind::ALL {
            self.schedule_fault(kind);
        }
    }

    fn schedule_fault(&mut self, kind: FaultKind) {
        let mean_ms = kind.every_ms(&self.options.faults);
        if mean_ms == 0 || (kind == FaultKind::Partition && self.servers.len() < 2) {
            return;
        }
        let gap_us = rng::exponential(&mut self.rngs.faults[kind as usize], mean_ms * 1_000).max(1);
        self.queue.push(self.now.plus_us(gap_us), Event::Fault(kind));
    }

    pub(crate) fn on_fault(&mut self, kind: FaultKind) {
        if self.phase != Phase::Safety {
            self.fault_points.pending.clear();
            return;
        }
        let faults = self.options.faults.clone();
        let servers = self.servers.len();
        let r = &mut self.rngs.faults[kind as usize];
        match kind {
            FaultKind::Crash => {
                let idx = r.gen_range(0..servers);
                let down_ms = rng::between(r, faults.down_min_ms, faults.down_max_ms);
                self.crash_server(idx, Some(down_ms));
            }
            FaultKind::Disconnect => {
                if !self.clients.is_empty() {
                    let client = ClientId(r.gen_range(0..self.clients.len()) as u32);
                    let reset = r.gen_bool(0.5);
                    match self.clients[client.0 as usize].client.conn() {
                        // The network breaks the connection: both ends hear a reset.
                        Some(conn) if reset => self.reset_conn(conn),
                        // The client closes it.
                        _ => self.disconnect(client),
                    }
                }
            }
            FaultKind::Pause => {
                let idx = r.gen_range(0..servers);
                let ms = rng::between(r, 1, faults.pause_max_ms);
                self.pause_server(idx, ms);
            }
            FaultKind::ClockJump => {
                let idx = r.gen_range(0..servers);
                let forward_ms = rng::between(r, 1, faults.clock_jump_max_ms);
                self.jump_clock(idx, forward_ms, 0);
            }
            FaultKind::WallStep => {
                let idx = r.gen_range(0..servers);
                let step = faults.wall_step_max_ms as i64;
                let wall_ms = r.gen_range(-step..=step);
                self.jump_clock(idx, 0, wall_ms);
            }
            FaultKind::Clog => {
                let conns = self.net.conn_ids();
                if !conns.is_empty() {
                    let conn = conns[r.gen_range(0..conns.len())];
                    let ms = rng::between(r, 1, faults.clog_max_ms);
                    if let Some(c) = self.net.get(conn) {
                        c.to_server.clog();
                        c.to_client.clog();
                        self.trace.push(self.now, TraceEvent::ConnClog { conn, ms });
                        self.disturbed_for(ms);
                        self.queue.push(self.now.plus_ms(ms), Event::Unclog { conn });
                    }
                }
            }
            FaultKind::Partition => {
                if self.peers.blocked().next().is_none() {
                    let ms = rng::between(r, 1, faults.partition_max_ms);
                    self.partition(ms);
                }
            }
            FaultKind::PeerStall => {
                if servers >= 2 {
                    let from = r.gen_range(0..servers);
                    let to = (from + r.gen_range(1..servers)) % servers;
                    let ms = rng::between(r, 1, faults.peer_stall_max_ms);
                    let (from, to) = (self.servers[from].id, self.servers[to].id);
                    let end = self.now.plus_ms(ms);
                    let stall = self.fault_points.stalls.entry((from, to)).or_insert(end);
                    *stall = (*stall).max(end);
                    self.trace.push(self.now, TraceEvent::PeerStall { from, to, ms });
                    self.disturbed_for(ms);
                }
            }
            FaultKind::Buggify => self.strike(),
            FaultKind::Laggard => {}
        }
        self.schedule_fault(kind);
    }

    /// A clogged connection flows again.
    pub(crate) fn on_unclog(&mut self, conn: ensemble::core::ids::ConnId) {
        let Some(c) = self.net.get(conn) else { return };
        if !c.to_server.is_clogged() && !c.to_client.is_clogged() {
            return;
        }
        for dir in [Dir::ToServer, Dir::ToClient] {
            let arrivals = c.pipe(dir).unclog(self.now, &mut self.rngs.net, &self.options.net);
            for at in arrivals {
                self.queue.push(at, Event::Deliver { conn, dir });
            }
        }
        self.trace.push(self.now, TraceEvent::ConnUnclog { conn });
    }

    /// Safety → liveness (heal everything) → drain (no new operations) → done.
    pub(crate) fn on_phase_end(&mut self) {
        let next = match self.phase {
            Phase::Safety => Phase::Liveness,
            Phase::Liveness => Phase::Drain,
            Phase::Drain | Phase::Done => Phase::Done,
        };
        self.phase = next;
        self.trace.push(self.now, TraceEvent::Phase(next));
        match next {
            Phase::Liveness => {
                self.heal();
                self.heal_at = Some(self.now);
                self.queue.push(self.now.plus_ms(self.options.liveness_ms), Event::PhaseEnd);
            }
            Phase::Drain => {
                self.liveness_end = Some(self.now);
                self.queue.push(self.now.plus_ms(self.options.drain_ms), Event::PhaseEnd);
            }
            Phase::Done => self.halted = true,
            Phase::Safety => {}
        }
    }

    /// Ends every fault in progress.
    fn heal(&mut self) {
        for idx in 0..self.servers.len() {
            if self.servers[idx].node.is_none() {
                self.restart_server(idx);
            }
            let slot = &self.servers[idx];
            if slot.paused {
                let (server, incarnation) = (slot.id, slot.incarnation);
                self.resume_server(server, incarnation);
            }
        }
        for conn in self.net.conn_ids() {
            self.on_unclog(conn);
        }
        self.fault_points.stalls.clear();
        self.heal_partitions();
    }
}
