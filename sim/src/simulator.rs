//! The driver: owns every simulated part, pops events in (time, seq) order and routes them.
//!
//! The loop is the whole simulator: pop the earliest event, advance true time to it, hand it to
//! the part it names (a node, a client, a connection, the fault injector), and let that part
//! schedule what follows. Nodes are driven exactly as the runtime drives them — an input with
//! the node's local `Now`, effects dispatched by kind, a timer at `deadline()` — so the
//! simulator uses only the core's public API. Everything is addressed by [`ServerId`] and
//! [`ClientId`]; the node-facing half lives in `server.rs`, faults and phases in `faults.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ensemble::core::ids::{ConnId, ServerId};
use ensemble::core::io::{Effect, Input};
use ensemble::core::zab::PeerMsg;
use ensemble::core::Node;
use ensemble::wire::proto::Request;

use crate::checker::agreement::CommitLog;
use crate::checker::{self, liveness, Committed, RunFacts, Violation};
use crate::disk::Disk;
use crate::event::{Event, EventQueue};
use crate::faults::FaultKind;
use crate::history::{History, OpOutcome};
use crate::net::{self, ClientWire, Dir, Network, PeerNet};
use crate::options::Options;
use crate::rng::{self, Rngs};
use crate::roles::RoleWatch;
use crate::server::ServerSlot;
use crate::time::SimTime;
use crate::trace::{Trace, TraceEvent};
use crate::workload::{strip_length, Client, ClientAction, ClientCtx, ClientId};
use crate::{Outcome, Phase};
use rand::Rng;

/// Latest time a client makes its first connection attempt, ms.
const CLIENT_START_MAX_MS: u64 = 200;

/// A simulated ensemble with its clients.
pub struct Simulator {
    pub(crate) seed: u64,
    pub(crate) options: Options,
    pub(crate) now: SimTime,
    pub(crate) queue: EventQueue,
    pub(crate) rngs: Rngs,
    pub(crate) servers: Vec<ServerSlot>,
    pub(crate) clients: Vec<ClientSlot>,
    pub(crate) net: Network,
    pub(crate) peers: PeerNet<PeerMsg>,
    pub(crate) peer_connect_pending: BTreeSet<(ServerId, ServerId)>,
    /// (node, peer) → the link generation the node was last told is up.
    pub(crate) peer_told: BTreeMap<(ServerId, ServerId), u64>,
    pub(crate) conn_next: u64,
    pub(crate) commit_log: CommitLog,
    pub(crate) roles: RoleWatch,
    pub(crate) history: History,
    pub(crate) trace: Trace,
    pub(crate) phase: Phase,
    pub(crate) heal_at: Option<SimTime>,
    pub(crate) liveness_end: Option<SimTime>,
    pub(crate) effects: Vec<Effect>,
    pub(crate) actions: Vec<ClientAction>,
    pub(crate) violations: Vec<Violation>,
    /// What the end-of-run checkers left unchecked (not violations).
    pub(crate) notes: Vec<String>,
    /// Fault points (BUGGIFY) and peer-link stalls.
    pub(crate) fault_points: crate::faults::FaultPoints,
    /// Peer messages per member and window (the flood checker).
    pub(crate) flood: checker::flood::FloodMeter,
    /// What was committed when each node took each currentEpoch (the promise checker).
    pub(crate) epoch_writes: checker::promises::EpochWrites,
    /// Intervals in which a fault could hide a live client from the servers.
    pub(crate) disturbances: Vec<(SimTime, SimTime)>,
    pub(crate) events: u64,
    pub(crate) crashes: u32,
    pub(crate) halted: bool,
    finished: bool,
}

/// A client and its pending timer.
pub(crate) struct ClientSlot {
    pub(crate) client: Client,
    pub(crate) timer_at: Option<SimTime>,
    /// Until then the client is cut off from every server ([`Simulator::isolate`]).
    pub(crate) isolated_until: SimTime,
}

impl Simulator {
    /// A run of `seed` with `options` (usually `Options::from_seed(seed)`). Nodes start at once;
    /// clients connect within the first 200 ms.
    pub fn new(seed: u64, options: Options) -> Simulator {
        assert!(options.nodes >= 1, "a run needs a node");
        let mut rngs = Rngs::new(seed);
        // Standalone is server 0, as ZooKeeper without myid; an ensemble's voters come first,
        // then its observers. Clients may connect to any member.
        let members = options.members();
        let ids: Vec<ServerId> = members.iter().map(|(id, _)| *id).collect();
        let servers =
            ids.iter().map(|&id| ServerSlot::new(id, &members, &options, &mut rngs)).collect();
        let clients = (0..options.clients as u32)
            .map(|c| {
                let start =
                    SimTime::from_ms(rng::between(&mut rngs.workload, 0, CLIENT_START_MAX_MS));
                let client = Client::new(ClientId(c), ids.clone(), start, &mut rngs.workload);
                ClientSlot { client, timer_at: None, isolated_until: SimTime::ZERO }
            })
            .collect();
        let mut sim = Simulator {
            seed,
            trace: Trace::new(options.keep_trace),
            options,
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            rngs,
            servers,
            clients,
            net: Network::new(),
            peers: PeerNet::new(),
            peer_connect_pending: BTreeSet::new(),
            peer_told: BTreeMap::new(),
            conn_next: 1,
            commit_log: CommitLog::new(),
            roles: RoleWatch::new(&members),
            history: History::new(),
            phase: Phase::Safety,
            heal_at: None,
            liveness_end: None,
            effects: Vec::new(),
            actions: Vec::new(),
            violations: Vec::new(),
            notes: Vec::new(),
            fault_points: Default::default(),
            flood: Default::default(),
            epoch_writes: Default::default(),
            disturbances: Vec::new(),
            events: 0,
            crashes: 0,
            halted: false,
            finished: false,
        };
        sim.trace.push(SimTime::ZERO, TraceEvent::Phase(Phase::Safety));
        for idx in 0..sim.servers.len() {
            sim.start_server(idx);
        }
        for idx in 0..sim.servers.len() {
            sim.ensure_links(idx);
        }
        for c in 0..sim.clients.len() {
            sim.reschedule_client(ClientId(c as u32));
        }
        sim.schedule_faults();
        if let Some((_, period)) = sim.options.bursts() {
            sim.queue.push(SimTime::from_ms(period), Event::BurstStart);
        }
        sim.queue.push(SimTime::from_ms(sim.options.safety_ms), Event::PhaseEnd);
        sim
    }

    /// Runs every phase to the end and checks the history.
    pub fn run(&mut self) -> Outcome {
        while self.step() {}
        self.finish()
    }

    /// Processes one event. Returns false once the run is over (or has halted on a violation).
    pub fn step(&mut self) -> bool {
        if self.halted {
            return false;
        }
        let Some((at, event)) = self.queue.pop() else {
            self.halted = true;
            return false;
        };
        debug_assert!(at >= self.now, "time went backwards: {at} < {}", self.now);
        self.now = at;
        self.events += 1;
        match event {
            Event::NodeTimer { server, incarnation } => self.on_node_timer(server, incarnation),
            Event::FsyncDone { server, incarnation, up_to } => {
                self.on_fsync_done(server, incarnation, up_to)
            }
            Event::Persist { server, incarnation, up_to } => {
                if let Some(idx) = self.live_index(server, incarnation) {
                    self.node_input(idx, Input::Persisted { up_to });
                }
            }
            Event::Deliver { conn, dir } => self.on_deliver(conn, dir),
            Event::NodeConnLost { server, incarnation, conn } => {
                if let Some(idx) = self.live_index(server, incarnation) {
                    self.node_input(idx, Input::ClientClosed { conn });
                }
            }
            Event::PeerDeliver { from, to, generation } => {
                self.on_peer_deliver(from, to, generation)
            }
            Event::PeerLinkLost { server, incarnation, peer } => {
                self.on_peer_link_lost(server, incarnation, peer)
            }
            Event::PeerConnect { a, b } => self.on_peer_connect(a, b),
            Event::PartitionEnd => self.heal_partitions(),
            Event::ClientConnLost { client, conn } => {
                self.with_client(client, |c, ctx| c.on_closed(ctx, conn))
            }
            Event::ClientTimer { client } => {
                let slot = &mut self.clients[client.0 as usize];
                if slot.timer_at == Some(at) {
                    slot.timer_at = None;
                    self.with_client(client, |c, ctx| c.on_wake(ctx));
                }
            }
            Event::Restart { server } => {
                let idx = self.server_index(server);
                self.restart_server(idx);
            }
            Event::Resume { server, incarnation } => self.resume_server(server, incarnation),
            Event::Unclog { conn } => self.on_unclog(conn),
            Event::Fault(kind) => self.on_fault(kind),
            Event::BurstStart => self.on_burst_start(),
            Event::PhaseEnd => self.on_phase_end(),
        }
        !self.halted
    }

    /// Runs until true time `ms` later (or the run ends).
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now.plus_ms(ms);
        while !self.halted && self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if !self.halted {
            self.now = self.now.max(until);
        }
    }

    /// Runs until `done` holds (checked after every event) or `limit_ms` passes. Returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Simulator) -> bool) -> bool {
        let until = self.now.plus_ms(limit_ms);
        while !done(self) {
            if self.halted || self.queue.peek_time().is_none_or(|t| t > until) {
                return false;
            }
            self.step();
        }
        true
    }

    /// Ends the run: pending operations become unknown, the final state is checked, and the
    /// history goes through every checker. Calling it again returns the same verdict.
    pub fn finish(&mut self) -> Outcome {
        if !self.finished {
            self.finished = true;
            self.history.finish(self.now);
            let agreement = self.final_agreement_checks();
            for (idx, violation) in agreement.into_iter().enumerate() {
                self.final_recovery_check(idx);
                self.violations.extend(violation.map(Violation::Agreement));
            }
            let committed = self.committed();
            let facts = RunFacts {
                liveness: self.liveness_window(),
                disturbances: self.disturbances.clone(),
                session_slack_ms: self.session_slack_ms(),
                members: self.members(),
                wgl: Some(checker::wgl::Limits::default()),
            };
            let found =
                checker::check_history_noted(&self.history, &committed, &facts, &mut self.notes);
            self.violations.extend(found);
        }
        Outcome {
            seed: self.seed,
            violations: self.violations.clone(),
            sim_time: self.now,
            events: self.events,
            trace_hash: self.trace.hash(),
            ops: self.history.ops.len(),
            ops_ok: self
                .history
                .ops
                .iter()
                .filter(|o| matches!(o.outcome, OpOutcome::Ok { .. }))
                .count(),
            crashes: self.crashes,
            canaries: self.options.canaries.clone(),
            notes: self.notes.clone(),
        }
    }

    /// What each serving member holds at the end, for the checkers.
    fn members(&self) -> Vec<checker::sessions::Member> {
        let serving = self.servers.iter().filter_map(|s| Some((s.id, s.node.as_ref()?)));
        serving
            .filter(|(_, node)| node.is_serving())
            .map(|(server, node)| {
                let tree = node.tree();
                let ephemerals = tree
                    .sessions_with_ephemerals()
                    .into_iter()
                    .flat_map(|owner| tree.ephemerals(owner).into_iter().map(move |p| (owner, p)))
                    .collect();
                checker::sessions::Member { server, applied: tree.zxid_applied(), ephemerals }
            })
            .collect()
    }

    /// The committed history: what established leaders applied, in zxid order.
    pub fn committed(&self) -> Committed {
        self.commit_log.committed()
    }

    /// How much earlier than its timeout a session may expire without a fault to explain it:
    /// two ticks (expiry buckets, follower pings), two round trips and 0.1 % drift.
    fn session_slack_ms(&self) -> u64 {
        let tick = self.options.server.tick_time_ms as u64;
        let delays = 4 * self.options.net.delay_max_us / 1_000 + 1;
        let drift = self.options.workload.session_timeout_ms.max(0) as u64 / 1_000;
        2 * tick + delays + drift
    }

    /// Records that from now for `ms` a fault may hide clients from the servers.
    ///
    /// In an ensemble its effect outlasts it by [`Simulator::stale_window_ms`]: a fault that
    /// costs a leader its quorum (a pause, a clock jump, a partition, a crash) leaves servers
    /// that have not noticed yet — a leader notices after syncLimit (checked every half tick),
    /// a follower cut off from it after syncLimit too — and they go on answering clients
    /// (accepting a reconnecting session, replying to pings) while the new leader, which hears
    /// nothing of those clients, expires their sessions. ZooKeeper behaves the same (seeds
    /// 0x491, 0x4ca).
    pub(crate) fn disturbed_for(&mut self, ms: u64) {
        let until = self.now.plus_ms(ms + self.stale_window_ms());
        self.disturbances.push((self.now, until));
    }

    /// How long after a fault a server of an ensemble may still serve clients on a stale view
    /// of the leadership: one syncLimit and a tick. Followers still in touch with a leader that
    /// steps down do not add a second one: its LOOKING notification sends them looking at once
    /// (as ZooKeeper's closed learner sockets do).
    fn stale_window_ms(&self) -> u64 {
        if self.servers.len() < 2 {
            return 0;
        }
        let config = &self.servers[0].config;
        (u64::from(config.sync_limit) + 1) * u64::from(config.tick_time_ms)
    }

    fn liveness_window(&self) -> Option<liveness::Window> {
        if !self.options.workload.generate || self.options.clients == 0 {
            return None;
        }
        Some(liveness::Window {
            heal_at: self.heal_at?,
            bound_ms: self.options.liveness_bound_ms,
            end: self.liveness_end?,
            clients: self.clients.iter().map(|c| c.client.id()).collect(),
        })
    }

    // ------------------------------------------------------------------ accessors

    /// True time now.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The options of the run.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The options, to change a knob in the middle of a hand-scheduled scenario (for example
    /// to make the disk start lying about fsync once a session is established).
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What the clients observed so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The running node `server`, if it is up.
    pub fn node(&self, server: ServerId) -> Option<&Node> {
        self.servers.iter().find(|s| s.id == server)?.node.as_ref()
    }

    /// The disk of `server`.
    pub fn disk(&self, server: ServerId) -> &Disk {
        &self.servers[self.server_index(server)].disk
    }

    /// The ids of the servers.
    pub fn server_ids(&self) -> Vec<ServerId> {
        self.servers.iter().map(|s| s.id).collect()
    }

    /// A client.
    pub fn client(&self, client: ClientId) -> &Client {
        &self.clients[client.0 as usize].client
    }

    /// Violations found so far (online checks; the history checks run in `finish`).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The trace as text (options header, then one aligned line per record). Empty of records
    /// unless the options kept them.
    pub fn trace_text(&self) -> String {
        let mut text = String::new();
        self.trace.format(&self.options, &self.history, &mut text).expect("writing to a String");
        text
    }

    /// The rolling trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    // ------------------------------------------------------------------ hand-scheduled faults

    /// Queues `request` on `client`; it is sent as soon as the session is live.
    pub fn submit(&mut self, client: ClientId, request: Request) {
        self.with_client(client, |c, ctx| {
            c.submit(request);
            c.on_wake(ctx);
        });
    }

    /// Crashes `server` now (unsynced writes are lost as the disk options say). It stays down
    /// until [`Simulator::restart`].
    pub fn crash(&mut self, server: ServerId) {
        let idx = self.server_index(server);
        self.crash_server(idx, None);
    }

    /// Restarts a crashed `server` from its durable state.
    pub fn restart(&mut self, server: ServerId) {
        let idx = self.server_index(server);
        self.restart_server(idx);
    }

    /// Makes `client` drop its connection now.
    pub fn disconnect(&mut self, client: ClientId) {
        self.with_client(client, |c, ctx| c.disconnect(ctx));
    }

    /// Cuts `client` off from every server for `ms` (a partition around the client): its
    /// connection stops moving bytes until then, as with a clog, and every connection it opens
    /// meanwhile is refused. It notices only by its own timeouts.
    pub fn isolate(&mut self, client: ClientId, ms: u64) {
        let until = self.now.plus_ms(ms);
        self.clients[client.0 as usize].isolated_until = until;
        self.disturbed_for(ms);
        let Some(conn) = self.clients[client.0 as usize].client.conn() else { return };
        if let Some(c) = self.net.get(conn) {
            c.to_server.clog();
            c.to_client.clog();
            self.trace.push(self.now, TraceEvent::ConnClog { conn, ms });
            self.queue.push(until, Event::Unclog { conn });
        }
    }

    // ------------------------------------------------------------------ clients

    /// Runs `f` on a client with its context, then carries out the actions it asked for.
    pub(crate) fn with_client(
        &mut self,
        id: ClientId,
        f: impl FnOnce(&mut Client, &mut ClientCtx),
    ) {
        let mut actions = std::mem::take(&mut self.actions);
        let generate = self.generating();
        let slot = &mut self.clients[id.0 as usize];
        let mut ctx = ClientCtx {
            now: self.now,
            rng: &mut self.rngs.workload,
            history: &mut self.history,
            trace: &mut self.trace,
            actions: &mut actions,
            conn_next: &mut self.conn_next,
            options: &self.options.workload,
            generate,
        };
        f(&mut slot.client, &mut ctx);
        for action in actions.drain(..) {
            self.client_action(id, action);
        }
        self.actions = actions;
        self.reschedule_client(id);
    }

    fn generating(&self) -> bool {
        let in_burst = self
            .options
            .bursts()
            .is_none_or(|(burst, period)| self.now.0 % (period * 1_000) < burst * 1_000);
        self.options.workload.generate
            && in_burst
            && matches!(self.phase, Phase::Safety | Phase::Liveness)
    }

    /// A burst begins (bursts start at every multiple of the period): every client may send
    /// again, and the next burst is scheduled while the workload runs.
    fn on_burst_start(&mut self) {
        for c in 0..self.clients.len() {
            self.reschedule_client(ClientId(c as u32));
        }
        let bursts = self.options.bursts();
        if let (Some((_, period)), Phase::Safety | Phase::Liveness) = (bursts, self.phase) {
            self.queue.push(self.now.plus_ms(period), Event::BurstStart);
        }
    }

    pub(crate) fn reschedule_client(&mut self, id: ClientId) {
        let generate = self.generating();
        let slot = &mut self.clients[id.0 as usize];
        let Some(wake) = slot.client.wake_at(&self.options.workload, generate) else { return };
        let wake = wake.max(self.now);
        if slot.timer_at.is_none_or(|t| wake < t) {
            slot.timer_at = Some(wake);
            self.queue.push(wake, Event::ClientTimer { client: id });
        }
    }

    /// The member a new connection reaches: the one the client named, or, for a share of the
    /// reconnects (`FaultOptions::reconnect_to_laggard_pct`), the serving member furthest behind
    /// (lowest last zxid; the lowest id among equals), which the client is then told of.
    fn route(&mut self, client: ClientId, conn: ConnId, named: ServerId) -> ServerId {
        let share = self.options.faults.reconnect_to_laggard_pct;
        let slot = &self.clients[client.0 as usize];
        if share == 0 || slot.client.session().is_none() {
            return named;
        }
        if !self.rngs.faults[FaultKind::Laggard as usize].gen_ratio(share.min(100), 100) {
            return named;
        }
        let laggard = self
            .servers
            .iter()
            .filter_map(|s| {
                s.node.as_ref().filter(|n| n.is_serving()).map(|n| (n.zxid_last(), s.id))
            })
            .min()
            .map_or(named, |(_, id)| id);
        if laggard != named {
            self.clients[client.0 as usize].client.rerouted(conn, laggard);
        }
        laggard
    }

    fn client_action(&mut self, client: ClientId, action: ClientAction) {
        match action {
            ClientAction::Open { conn, server } => {
                let server = self.route(client, conn, server);
                let incarnation = self.servers[self.server_index(server)].incarnation;
                self.net.open(conn, client, server, incarnation);
                self.trace.push(self.now, TraceEvent::ConnOpen { client, server, conn });
                if self.clients[client.0 as usize].isolated_until > self.now {
                    // Refused: the server never hears of it, the client gets a reset.
                    if let Some(c) = self.net.get(conn) {
                        c.server_open = false;
                    }
                    self.reset_conn(conn);
                    return;
                }
                self.send_wire(conn, Dir::ToServer, ClientWire::Open);
            }
            ClientAction::Send { conn, frame } => {
                if self.net.get(conn).is_some_and(|c| c.client_open) {
                    self.send_wire(conn, Dir::ToServer, ClientWire::Frame(frame));
                }
            }
            ClientAction::Close { conn } => {
                let Some(c) = self.net.get(conn) else { return };
                if c.client_open {
                    c.client_open = false;
                    self.send_wire(conn, Dir::ToServer, ClientWire::Close);
                }
            }
        }
    }

    // ------------------------------------------------------------------ network

    /// Puts a message on a connection's pipe and schedules its arrival.
    pub(crate) fn send_wire(&mut self, conn: ConnId, dir: Dir, message: ClientWire) {
        let delay = net::delay(&mut self.rngs.net, &self.options.net);
        let Some(c) = self.net.get(conn) else { return };
        if let Some(at) = c.pipe(dir).send(self.now, delay, message) {
            self.queue.push(at, Event::Deliver { conn, dir });
        }
    }

    fn on_deliver(&mut self, conn: ConnId, dir: Dir) {
        let now = self.now;
        let Some(c) = self.net.get(conn) else { return };
        let Some(message) = c.pipe(dir).receive(now) else { return };
        match dir {
            Dir::ToServer => {
                if !c.server_open {
                    return;
                }
                let (server, incarnation, client) = (c.server, c.incarnation, c.client);
                if message == ClientWire::Close {
                    c.server_open = false;
                    if !c.client_open {
                        self.net.remove(conn);
                    }
                }
                let Some(idx) = self.live_index(server, incarnation) else {
                    // Nobody listens there (crashed, or a new life): the client gets a reset.
                    self.reset_conn(conn);
                    return;
                };
                let input = match message {
                    ClientWire::Open => Input::ClientConnected {
                        conn,
                        addr: client_addr(client, conn),
                        auth: Vec::new(),
                    },
                    ClientWire::Frame(frame) => match strip_length(&frame) {
                        Some(payload) => Input::ClientFrame { conn, frame: payload },
                        None => return,
                    },
                    ClientWire::Close => Input::ClientClosed { conn },
                };
                self.node_input(idx, input);
            }
            Dir::ToClient => {
                if !c.client_open {
                    return;
                }
                let client = c.client;
                match message {
                    ClientWire::Frame(frame) => {
                        self.with_client(client, |cl, ctx| cl.on_frame(ctx, conn, frame))
                    }
                    ClientWire::Close => {
                        c.client_open = false;
                        if !c.server_open {
                            self.net.remove(conn);
                        }
                        self.with_client(client, |cl, ctx| cl.on_closed(ctx, conn));
                    }
                    ClientWire::Open => {}
                }
            }
        }
    }

    /// Breaks a connection: in-flight messages are lost; each end still reading it hears of
    /// it after a network delay.
    pub(crate) fn reset_conn(&mut self, conn: ConnId) {
        let Some(c) = self.net.remove(conn) else { return };
        self.trace.push(self.now, TraceEvent::ConnReset { conn });
        let delay = net::delay(&mut self.rngs.net, &self.options.net);
        let at = self.now.plus_us(delay);
        if c.client_open {
            self.queue.push(at, Event::ClientConnLost { client: c.client, conn });
        }
        if c.server_open && self.live_index(c.server, c.incarnation).is_some() {
            let event = Event::NodeConnLost { server: c.server, incarnation: c.incarnation, conn };
            self.queue.push(at, event);
        }
    }

    /// The index of `server` in `servers`.
    pub(crate) fn server_index(&self, server: ServerId) -> usize {
        self.servers.iter().position(|s| s.id == server).expect("a known server id")
    }

    /// The index of `server` if it is up in life `incarnation`.
    pub(crate) fn live_index(&self, server: ServerId, incarnation: u32) -> Option<usize> {
        let idx = self.server_index(server);
        let slot = &self.servers[idx];
        (slot.node.is_some() && slot.incarnation == incarnation).then_some(idx)
    }
}

/// The address a client connects from: 10.0.x.y, one port per connection.
fn client_addr(client: ClientId, conn: ConnId) -> SocketAddr {
    let ip = Ipv4Addr::new(10, 0, (client.0 >> 8) as u8, client.0 as u8);
    SocketAddr::new(IpAddr::V4(ip), 40_000 + (conn.0 % 20_000) as u16)
}
