//! One simulated server process — a `Node` with its clock, disk and timer — and the half of
//! the driver that talks to nodes: inputs in, effects out by kind, fsyncs, crashes, restarts
//! and pauses.
//!
//! A node only ever sees its local [`Now`]. Effects are carried out like the runtime does:
//! `SendClient`/`CloseClient` go on the connection's pipe, `Write` goes to the disk, and an
//! fsync covering everything pending starts whenever the disk is idle. After every step the
//! node's timer is re-armed at `deadline()` and the recovery checker compares its tree with
//! the replay of its durable log. A paused node takes no inputs: they queue and are delivered,
//! in order, when it resumes, its clock having run on meanwhile. A panic inside the core is
//! caught, reported as a violation, and ends the run.

use std::panic::{self, AssertUnwindSafe};

use ensemble::core::config::NodeConfig;
use ensemble::core::ids::{ServerId, WriteId, Zxid};
use ensemble::core::io::{DurableWrite, Effect, Input};
use ensemble::core::report::Mode;
use ensemble::core::snapshot::Restored;
use ensemble::core::tree::DataTree;
use ensemble::core::zab::{Membership, PeerMsg, PeerRole};
use ensemble::core::{Node, Now};
use rand::{Rng, RngCore};

use crate::checker::agreement::AgreementViolation;
use crate::checker::promises;
use crate::checker::recovery::{RecoveryViolation, Shadow};
use crate::checker::{NodeFailure, Violation};
use crate::clock::Clock;
use crate::disk::{Disk, Recovery};
use crate::event::Event;
use crate::net::{ClientWire, Dir};
use crate::options::Options;
use crate::rng::{self, Rngs};
use crate::simulator::Simulator;
use crate::trace::{EffectTrace, InputTrace, TraceEvent};

/// One server: the process (when up) and what outlives it.
pub(crate) struct ServerSlot {
    pub(crate) id: ServerId,
    pub(crate) config: NodeConfig,
    pub(crate) node: Option<Node>,
    /// Bumped at every crash; events of an older life are ignored.
    pub(crate) incarnation: u32,
    pub(crate) clock: Clock,
    pub(crate) disk: Disk,
    pub(crate) timer_at: Option<crate::time::SimTime>,
    pub(crate) paused: bool,
    pub(crate) backlog: Vec<Input>,
    pub(crate) shadow: Shadow,
    shadow_zxid: Option<u64>,
    /// Whether the node was an established leader after its last step.
    leading: bool,
    /// The applied zxid whose digest was last reported to the agreement checker.
    agreed_zxid: Option<Zxid>,
}

impl ServerSlot {
    pub(crate) fn new(
        id: ServerId,
        members: &[(ServerId, PeerRole)],
        options: &Options,
        rngs: &mut Rngs,
    ) -> ServerSlot {
        let offset_max = options.clock.offset_max_ms as i64;
        let drift_max = options.clock.drift_max_ppm as i32;
        let offset =
            if offset_max > 0 { rngs.clock.gen_range(-offset_max..=offset_max) } else { 0 };
        let drift = if drift_max > 0 { rngs.clock.gen_range(-drift_max..=drift_max) } else { 0 };
        let mut config = NodeConfig::standalone();
        config.server_id = id;
        config.tick_time_ms = options.server.tick_time_ms;
        config.session_timeout_min_ms = 2 * options.server.tick_time_ms as i32;
        config.session_timeout_max_ms = 20 * options.server.tick_time_ms as i32;
        config.snap_count = options.server.snap_count;
        config.rng_seed = rngs.nodes.next_u64();
        config.zxid_counter_start = options.server.zxid_counter_start;
        apply_canaries(&mut config, &options.canaries);
        if members.len() > 1 {
            config.membership = Membership { members: members.iter().copied().collect() };
        }
        ServerSlot {
            id,
            config,
            node: None,
            incarnation: 0,
            clock: Clock::new(offset, drift, crate::time::SimTime::ZERO),
            disk: Disk::new(),
            timer_at: None,
            paused: false,
            backlog: Vec::new(),
            shadow: Shadow::new(),
            shadow_zxid: None,
            leading: false,
            agreed_zxid: None,
        }
    }
}

impl Simulator {
    /// First start of a server: a fresh node, then a tick as the runtime gives it.
    pub(crate) fn start_server(&mut self, idx: usize) {
        let slot = &mut self.servers[idx];
        let now = slot.clock.now(self.now);
        slot.node = Some(Node::new(slot.config.clone(), now));
        let event =
            TraceEvent::NodeStart { server: slot.id, incarnation: slot.incarnation, zxid: 0 };
        self.trace.push(self.now, event);
        self.step_node(idx, Input::Tick);
    }

    /// Hands an input to a node (queued while it is paused; dropped while it is down).
    pub(crate) fn node_input(&mut self, idx: usize, input: Input) {
        let slot = &mut self.servers[idx];
        if slot.node.is_none() {
            return;
        }
        if slot.paused {
            slot.backlog.push(input);
            return;
        }
        self.step_node(idx, input);
    }

    /// One `Node::step`, its effects carried out, its timer re-armed, its state checked.
    pub(crate) fn step_node(&mut self, idx: usize, input: Input) {
        let ticked = input == Input::Tick;
        let server = self.servers[idx].id;
        if self.servers[idx].node.is_none() {
            return;
        }
        self.trace.push(self.now, TraceEvent::Input { server, input: input_trace(&input) });
        self.site_input(&input);
        if let Input::PeerMessage {
            msg:
                PeerMsg::Diff { committed, .. }
                | PeerMsg::Trunc { committed, .. }
                | PeerMsg::Snap { committed, .. },
            ..
        } = &input
        {
            self.epoch_writes.synced(server, *committed);
        }
        let snap = self.snap_history(&input);
        let slot = &mut self.servers[idx];
        let Some(node) = slot.node.as_mut() else { return };
        let now = slot.clock.now(self.now);
        let mut effects = std::mem::take(&mut self.effects);
        let stepped = panic::catch_unwind(AssertUnwindSafe(|| {
            node.step(now, input, &mut effects);
            // Debug builds of the core check after every step already.
            if !cfg!(debug_assertions) {
                node.check_invariants();
            }
        }));
        if let Err(payload) = stepped {
            effects.clear();
            self.effects = effects;
            self.node_panicked(idx, payload);
            return;
        }
        let mut last_write = None;
        for effect in effects.drain(..) {
            if let Effect::Write { id, .. } = &effect {
                last_write = Some(*id);
            }
            self.site_effect(&effect);
            self.check_effect(idx, &effect);
            let installs = match (&effect, &snap) {
                (
                    Effect::Write { write: DurableWrite::Snapshot { zxid, .. }, .. },
                    Some((at, _)),
                ) => zxid == at,
                _ => false,
            };
            self.dispatch(idx, effect);
            if let (true, Some((zxid, txns))) = (installs, &snap) {
                self.servers[idx].disk.snapped(*zxid, txns.clone());
            }
        }
        self.effects = effects;
        if self.halted {
            return;
        }
        if let (true, Some(up_to)) = (self.options.disk.lie_about_fsync, last_write) {
            let incarnation = self.servers[idx].incarnation;
            self.queue.push(self.now, Event::Persist { server, incarnation, up_to });
        }
        self.start_fsync(idx);
        self.check_shadow(idx);
        self.observe_commits(idx);
        self.observe_role(idx);
        self.reschedule_node_timer(idx, ticked);
        self.sites_fire(idx);
    }

    fn dispatch(&mut self, idx: usize, effect: Effect) {
        let (server, incarnation) = (self.servers[idx].id, self.servers[idx].incarnation);
        let trace = |effect: EffectTrace| TraceEvent::Effect { server, effect };
        match effect {
            Effect::SendClient { conn, frame } => {
                self.trace.push(self.now, trace(EffectTrace::Send(conn, frame.len() as u32)));
                let ours = self.net.get(conn).is_some_and(|c| {
                    c.server == server && c.incarnation == incarnation && c.server_open
                });
                if ours {
                    self.send_wire(conn, Dir::ToClient, ClientWire::Frame(frame));
                }
            }
            Effect::CloseClient { conn } => {
                self.trace.push(self.now, trace(EffectTrace::Close(conn)));
                let Some(c) = self.net.get(conn) else { return };
                if c.server != server || c.incarnation != incarnation || !c.server_open {
                    return;
                }
                c.server_open = false;
                if c.client_open {
                    self.send_wire(conn, Dir::ToClient, ClientWire::Close);
                } else {
                    self.net.remove(conn);
                }
            }
            Effect::SendPeer { to, msg } => {
                let name = msg.name();
                let sent = self.node_peer_send(server, to, msg);
                self.trace.push(self.now, trace(EffectTrace::Peer(to, name, sent)));
            }
            Effect::Write { id, write } => {
                self.trace.push(self.now, trace(write_trace(id, &write)));
                if let Err(error) = self.servers[idx].disk.submit(id, write) {
                    self.violations.push(Violation::Node(NodeFailure::Disk { server, error }));
                    self.halted = true;
                }
            }
        }
    }

    /// For a SNAP input: the snapshot's zxid and the sender's history up to it above the
    /// committed history, which the receiver's snapshot will stand for.
    fn snap_history(&self, input: &Input) -> Option<(Zxid, Vec<ensemble::core::txn::Txn>)> {
        let Input::PeerMessage { from, msg: PeerMsg::Snap { zxid, .. } } = input else {
            return None;
        };
        let sender = &self.servers[self.server_index(*from)].disk;
        Some((*zxid, sender.logged_between(self.commit_log.last_zxid(), *zxid)))
    }

    /// Online checks of an effect: a peer message claims only what the node's disk holds,
    /// and the node is not flooding its peers; a currentEpoch write is noted for the check of
    /// what survives a crash.
    fn check_effect(&mut self, idx: usize, effect: &Effect) {
        if let Effect::Write { write: DurableWrite::CurrentEpoch(epoch), .. } = effect {
            let server = self.servers[idx].id;
            let learner = self.servers[idx]
                .node
                .as_ref()
                .is_some_and(|n| matches!(n.mode(), Mode::Follower | Mode::Observer));
            self.epoch_writes.written(server, *epoch, self.commit_log.last_zxid(), learner);
        }
        let Effect::SendPeer { msg, .. } = effect else { return };
        let slot = &self.servers[idx];
        let Some(node) = slot.node.as_ref() else { return };
        let sender = promises::Sender {
            server: slot.id,
            epochs: node.epochs(),
            durable: slot.disk.durable(),
        };
        let violation = promises::check(sender, msg)
            .map(Violation::Promise)
            .or_else(|| self.flood.sent(slot.id, msg.name(), self.now).map(Violation::Flood));
        if let Some(violation) = violation {
            self.violations.push(violation);
            self.halted = true;
        }
    }

    /// Starts an fsync if the disk is idle and has pending writes.
    fn start_fsync(&mut self, idx: usize) {
        let slot = &mut self.servers[idx];
        let Some(up_to) = slot.disk.start_sync() else { return };
        let disk = &self.options.disk;
        let latency = rng::between(&mut self.rngs.disk, disk.fsync_min_us, disk.fsync_max_us);
        let (server, incarnation) = (slot.id, slot.incarnation);
        self.trace.push(self.now, TraceEvent::FsyncStart { server, up_to: up_to.0 });
        self.queue.push(self.now.plus_us(latency), Event::FsyncDone { server, incarnation, up_to });
    }

    pub(crate) fn on_fsync_done(&mut self, server: ServerId, incarnation: u32, up_to: WriteId) {
        // A crash in between already decided what the writes of that life became.
        let Some(idx) = self.live_index(server, incarnation) else { return };
        if let Err(error) = self.servers[idx].disk.sync_done(up_to) {
            self.violations.push(Violation::Node(NodeFailure::Disk { server, error }));
            self.halted = true;
            return;
        }
        self.trace.push(self.now, TraceEvent::FsyncDone { server, up_to: up_to.0 });
        if !self.options.disk.lie_about_fsync {
            self.node_input(idx, Input::Persisted { up_to });
        }
        if !self.halted {
            self.start_fsync(idx);
        }
    }

    pub(crate) fn on_node_timer(&mut self, server: ServerId, incarnation: u32) {
        let Some(idx) = self.live_index(server, incarnation) else { return };
        let slot = &mut self.servers[idx];
        if slot.paused || slot.timer_at != Some(self.now) {
            return; // stale: re-armed since, or the resume will tick
        }
        slot.timer_at = None;
        self.step_node(idx, Input::Tick);
    }

    /// Arms the node's timer at its deadline (converted through its clock). Right after a tick
    /// it is at least a millisecond away, so a node that keeps a past deadline cannot spin.
    pub(crate) fn reschedule_node_timer(&mut self, idx: usize, ticked: bool) {
        let slot = &mut self.servers[idx];
        if slot.paused {
            return;
        }
        let Some(deadline) = slot.node.as_ref().and_then(|n| n.deadline()) else { return };
        let mono_now = slot.clock.now(self.now).mono_ms;
        let due = if ticked { deadline.max(mono_now + 1) } else { deadline };
        let at = slot.clock.when_mono(due, self.now);
        if slot.timer_at.is_none_or(|t| at < t) {
            slot.timer_at = Some(at);
            let event = Event::NodeTimer { server: slot.id, incarnation: slot.incarnation };
            self.queue.push(at, event);
        }
    }

    /// Online recovery check (standalone): the node's tree against the replay of its durable
    /// log. In an ensemble a follower's tree may come from a leader's snapshot rather than its
    /// own log, so there the agreement checker does this job.
    fn check_shadow(&mut self, idx: usize) {
        if self.servers.len() > 1 {
            return;
        }
        let strict = true;
        let slot = &mut self.servers[idx];
        let Some(node) = slot.node.as_ref() else { return };
        let applied = node.tree().zxid_applied().0;
        if slot.shadow_zxid == Some(applied) {
            return;
        }
        slot.shadow_zxid = Some(applied);
        let durable = slot.disk.durable();
        if let Some(violation) =
            slot.shadow.check(slot.id, node.tree(), &durable.txns, durable.log_generation, strict)
        {
            self.violations.push(Violation::Recovery(violation));
            self.halted = true;
        }
    }

    /// Kills a server: its process state and unsynced writes are gone, its connections reset.
    pub(crate) fn crash_server(&mut self, idx: usize, restart_after_ms: Option<u64>) {
        let keep = self.options.disk.crash_keep_unsynced;
        let slot = &mut self.servers[idx];
        if slot.node.is_none() {
            return;
        }
        let server = slot.id;
        slot.node = None;
        slot.incarnation += 1;
        slot.paused = false;
        slot.backlog.clear();
        slot.timer_at = None;
        slot.shadow_zxid = None;
        slot.leading = false;
        slot.agreed_zxid = None;
        self.crashes += 1;
        match slot.disk.crash(&mut self.rngs.disk, keep) {
            Ok(loss) => {
                let event = TraceEvent::NodeCrash { server, kept: loss.kept, lost: loss.lost };
                self.trace.push(self.now, event);
                let durable = slot.disk.durable();
                if let Some(violation) =
                    self.epoch_writes.check_crash(server, durable, self.commit_log.txns())
                {
                    self.violations.push(Violation::Promise(violation));
                    self.halted = true;
                }
            }
            Err(error) => {
                self.violations.push(Violation::Node(NodeFailure::Disk { server, error }));
                self.halted = true;
            }
        }
        for conn in self.net.conns_of_server(server) {
            self.reset_conn(conn);
        }
        self.break_links_of(idx);
        self.disturbed_for(restart_after_ms.unwrap_or(0));
        if let Some(ms) = restart_after_ms {
            self.queue.push(self.now.plus_ms(ms), Event::Restart { server });
        }
    }

    /// Starts a crashed server from its durable state, and checks the recovery against a
    /// snapshot-free replay of the whole log.
    pub(crate) fn restart_server(&mut self, idx: usize) {
        let mono_base = rng::between(&mut self.rngs.clock, 0, 1_000_000);
        let seed = self.rngs.nodes.next_u64();
        let slot = &mut self.servers[idx];
        if slot.node.is_some() {
            return;
        }
        let server = slot.id;
        slot.clock.restart(self.now, mono_base);
        slot.config.rng_seed = seed;
        let now = slot.clock.now(self.now);
        let (snapshot, txns) = slot.disk.recovery();
        let config = slot.config.clone();
        let (accepted, current) =
            (slot.disk.durable().accepted_epoch, slot.disk.durable().current_epoch);
        let checkpoint = match snapshot {
            Some(Recovery::Bytes(_)) => None,
            _ => slot.disk.checkpoint(),
        };
        let recovered = panic::catch_unwind(AssertUnwindSafe(|| {
            let node = match (snapshot, checkpoint) {
                (Some(Recovery::Bytes(bytes)), _) => Node::recover(config, now, Some(&bytes), txns),
                (snapshot, Some(tree)) => {
                    let (zxid, sessions) = match snapshot {
                        Some(Recovery::Image(image)) => (image.zxid(), image.sessions().to_vec()),
                        _ => (Zxid::ZERO, Vec::new()),
                    };
                    let tree = DataTree::from_image(&tree);
                    let restored = Restored { zxid, sessions, tree };
                    Node::recover_restored(config, now, Some(restored), txns)
                }
                (Some(Recovery::Image(image)), None) => {
                    Node::recover_restored(config, now, Some(image.restore()), txns)
                }
                (None, None) => Node::recover(config, now, None, txns),
            };
            node.map(|node| node.with_epochs(accepted.unwrap_or(0), current.unwrap_or(0)))
        }));
        let node = match recovered {
            Ok(Ok(node)) => node,
            Ok(Err(error)) => {
                let error = error.to_string();
                self.violations
                    .push(Violation::Node(NodeFailure::RecoveryFailed { server, error }));
                self.halted = true;
                return;
            }
            Err(payload) => return self.node_panicked(idx, payload),
        };
        if let Some(violation) = self.full_replay_differs(idx, &node, now) {
            self.violations.push(Violation::Recovery(violation));
            self.halted = true;
            return;
        }
        let slot = &mut self.servers[idx];
        let zxid = node.zxid_last().0;
        slot.disk.set_checkpoint(node.tree().image());
        slot.node = Some(node);
        self.disturbances.push((self.now, self.now));
        let event = TraceEvent::NodeStart { server, incarnation: slot.incarnation, zxid };
        self.trace.push(self.now, event);
        self.step_node(idx, Input::Tick);
        self.ensure_links(idx);
    }

    /// Compares `node` with a node recovered from the whole durable log and no snapshot
    /// (standalone only: an ensemble member's log may start after a leader's snapshot).
    fn full_replay_differs(&self, idx: usize, node: &Node, now: Now) -> Option<RecoveryViolation> {
        if self.servers.len() > 1 {
            return None;
        }
        let slot = &self.servers[idx];
        let txns = slot.disk.durable().txns.clone();
        let config = slot.config.clone();
        let full = panic::catch_unwind(AssertUnwindSafe(|| Node::recover(config, now, None, txns)));
        let (recovered_digest, zxid) = (node.tree().digest(), node.tree().zxid_applied());
        let replay_digest = match full {
            Ok(Ok(full)) => full.tree().digest(),
            // The full log itself does not replay: report it as a difference from the replay.
            _ => !recovered_digest,
        };
        (replay_digest != recovered_digest).then_some(RecoveryViolation::RecoveredDiffers {
            server: slot.id,
            zxid,
            recovered_digest,
            replay_digest,
        })
    }

    /// End of run: the live node's tree against a fresh replay of its log up to what it
    /// applied.
    pub(crate) fn final_recovery_check(&mut self, idx: usize) {
        if self.servers.len() > 1 {
            return;
        }
        let slot = &self.servers[idx];
        let Some(node) = slot.node.as_ref() else { return };
        let applied = node.tree().zxid_applied();
        let txns: Vec<_> =
            slot.disk.durable().txns.iter().filter(|t| t.zxid <= applied).cloned().collect();
        let mut config = slot.config.clone();
        config.rng_seed = 0;
        let replay = panic::catch_unwind(AssertUnwindSafe(|| {
            Node::recover(config, Now::default(), None, txns)
        }));
        let node_digest = node.tree().digest();
        let replay_digest = match replay {
            Ok(Ok(replayed)) => replayed.tree().digest(),
            _ => !node_digest,
        };
        if node_digest != replay_digest {
            self.violations.push(Violation::Recovery(RecoveryViolation::Diverged {
                server: slot.id,
                zxid: applied,
                node_digest,
                replay_digest,
            }));
        }
    }

    /// Feeds the agreement checker after a step: an established leader of the newest epoch
    /// extends the committed history with what it applied, a stale one must stay on it, and
    /// every serving node reports its digest.
    fn observe_commits(&mut self, idx: usize) {
        let slot = &mut self.servers[idx];
        let Some(node) = slot.node.as_ref() else { return };
        let serving = node.is_serving();
        let leading = serving && matches!(node.mode(), Mode::Leader | Mode::Standalone);
        let applied = node.zxid_applied();
        let epoch = node.epochs().1;
        let log = &mut self.commit_log;
        let mut violation = None;
        if leading && epoch >= log.epoch() {
            if !slot.leading {
                let disk = &slot.disk;
                violation = log.leader_established(slot.id, applied, |z| disk.logged_at(z));
            }
            if violation.is_none() && applied != log.last_zxid() {
                let logged = slot.disk.logged_between(log.last_zxid(), applied);
                violation = log.leader_applied(slot.id, epoch, applied, logged, self.now);
            }
        } else if leading && slot.agreed_zxid.is_some_and(|z| z < applied) {
            let from = slot.agreed_zxid.unwrap_or_default();
            violation = log.stale_leader_applied(slot.id, &slot.disk.logged_between(from, applied));
        }
        slot.leading = leading;
        if violation.is_none() && serving && slot.agreed_zxid != Some(applied) {
            slot.agreed_zxid = Some(applied);
            violation = log.server_at(slot.id, applied, node.tree().digest());
        }
        if let Some(violation) = violation {
            self.violations.push(Violation::Agreement(violation));
            self.halted = true;
        }
    }

    /// End of run: each serving node's tree against the replay of the committed history up to
    /// it, by server index (`None` for a server not serving or in agreement).
    pub(crate) fn final_agreement_checks(&self) -> Vec<Option<AgreementViolation>> {
        let serving: Vec<(usize, ServerId, &DataTree)> = (self.servers.iter().enumerate())
            .filter_map(|(idx, slot)| {
                let node = slot.node.as_ref().filter(|n| n.is_serving())?;
                Some((idx, slot.id, node.tree()))
            })
            .collect();
        let trees: Vec<(ServerId, &DataTree)> =
            serving.iter().map(|&(_, server, tree)| (server, tree)).collect();
        let mut found = vec![None; self.servers.len()];
        for (&(idx, _, _), violation) in serving.iter().zip(self.commit_log.final_states(&trees)) {
            found[idx] = violation;
        }
        found
    }

    /// Stops a server from processing for `ms` (its inputs queue up).
    pub(crate) fn pause_server(&mut self, idx: usize, ms: u64) {
        let slot = &mut self.servers[idx];
        if slot.node.is_none() || slot.paused {
            return;
        }
        slot.paused = true;
        slot.timer_at = None;
        let (server, incarnation) = (slot.id, slot.incarnation);
        self.trace.push(self.now, TraceEvent::NodePause { server, ms });
        self.disturbed_for(ms);
        self.queue.push(self.now.plus_ms(ms), Event::Resume { server, incarnation });
    }

    /// A paused server runs again: the queued inputs, in order, then a tick.
    pub(crate) fn resume_server(&mut self, server: ServerId, incarnation: u32) {
        let Some(idx) = self.live_index(server, incarnation) else { return };
        let slot = &mut self.servers[idx];
        if !slot.paused {
            return;
        }
        slot.paused = false;
        let backlog = std::mem::take(&mut slot.backlog);
        let inputs = backlog.len() as u32;
        self.trace.push(self.now, TraceEvent::NodeResume { server, inputs });
        for input in backlog {
            if self.halted || self.servers[idx].node.is_none() {
                return;
            }
            self.step_node(idx, input);
        }
        self.step_node(idx, Input::Tick);
    }

    /// The server's clocks jump `forward_ms` forward, and its wall clock by `wall_ms` more.
    pub(crate) fn jump_clock(&mut self, idx: usize, forward_ms: u64, wall_ms: i64) {
        let slot = &mut self.servers[idx];
        slot.clock.jump(forward_ms);
        slot.clock.step_wall(wall_ms);
        slot.timer_at = None;
        let server = slot.id;
        self.trace.push(self.now, TraceEvent::ClockJump { server, forward_ms, wall_ms });
        if forward_ms > 0 {
            // Monotonic time leaps: deadlines (session expiry among them) come due at once, as
            // after a pause of that length, and with the same after-effects: a follower that
            // gives up on its leader starts an election, and the new leader restarts every
            // session's clock while clients of the stale leader are still answered by it
            // (seed 0x173).
            self.disturbed_for(forward_ms);
        }
        self.reschedule_node_timer(idx, false);
    }

    fn node_panicked(&mut self, idx: usize, payload: Box<dyn std::any::Any + Send>) {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".to_string());
        let server = self.servers[idx].id;
        self.servers[idx].node = None;
        self.violations.push(Violation::Node(NodeFailure::Panicked { server, message }));
        self.halted = true;
    }
}

/// Switches the run's canaries on in a node's configuration.
#[cfg(feature = "canary")]
fn apply_canaries(config: &mut NodeConfig, canaries: &[ensemble::core::canary::Canary]) {
    for canary in canaries {
        config.canaries = config.canaries.with(*canary);
    }
}

#[cfg(not(feature = "canary"))]
fn apply_canaries(_config: &mut NodeConfig, canaries: &[ensemble::core::canary::Canary]) {
    assert!(canaries.is_empty(), "canaries need `--features canary`");
}

fn input_trace(input: &Input) -> InputTrace {
    match input {
        Input::Tick => InputTrace::Tick,
        Input::ClientConnected { conn, .. } => InputTrace::Connected(*conn),
        Input::ClientFrame { conn, frame } => InputTrace::Frame(*conn, frame.len() as u32),
        Input::ClientClosed { conn } => InputTrace::Closed(*conn),
        Input::Persisted { up_to } => InputTrace::Persisted(up_to.0),
        Input::PeerMessage { from, msg } => InputTrace::Peer(*from, msg.name()),
        Input::PeerLinkUp { peer } => InputTrace::LinkUp(*peer),
        Input::PeerLinkDown { peer } => InputTrace::LinkDown(*peer),
    }
}

fn write_trace(id: WriteId, write: &DurableWrite) -> EffectTrace {
    match write {
        DurableWrite::Append(txn) => EffectTrace::Append(id.0, txn.zxid.0),
        DurableWrite::Snapshot { zxid, .. } => EffectTrace::Snapshot(id.0, zxid.0),
        DurableWrite::Truncate { after } => EffectTrace::Truncate(id.0, after.0),
        DurableWrite::AcceptedEpoch(epoch) => EffectTrace::Epoch(id.0, *epoch, true),
        DurableWrite::CurrentEpoch(epoch) => EffectTrace::Epoch(id.0, *epoch, false),
    }
}
