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
//!   the links across break until the partition heals.
//!
//! When the safety phase ends everything heals at once: crashed nodes restart, paused ones
//! resume, clogs clear. The liveness phase then requires progress, and a short drain lets
//! in-flight operations finish before the checkers run.

use rand::Rng;

use crate::event::Event;
use crate::net::Dir;
use crate::options::FaultOptions;
use crate::rng;
use crate::simulator::Simulator;
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
}

impl FaultKind {
    /// Every class.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Crash,
        FaultKind::Disconnect,
        FaultKind::Pause,
        FaultKind::ClockJump,
        FaultKind::WallStep,
        FaultKind::Clog,
        FaultKind::Partition,
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
        }
    }
}

impl Simulator {
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
        self.heal_partitions();
    }
}
