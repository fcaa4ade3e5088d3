//! `Node`: one Ensemble server as a deterministic state machine.
//!
//! The driver calls `step(now, input, &mut effects)` for every event it observes and wakes the
//! node again at `deadline()`. The node owns the data tree, the session table, the watch tables,
//! every client connection's protocol state and its Zab role; it never performs I/O itself.
//!
//! The node's history has three parts:
//! - the *tree*, which reflects every applied (committed) txn;
//! - the *log tail*: txns that are logged (or being logged) but not yet applied, in zxid order;
//! - the *history*: the most recent applied txns, kept so a leader can bring a learner up to
//!   date with a DIFF instead of a full snapshot.
//!
//! A standalone server is a leader whose quorum is itself: it takes the same write path
//! (prep → `Txn` → log → own ACK once `Persisted` → commit → apply → reply) without election.
//! Replies to one connection leave in request order: a read that arrives while an earlier write
//! of the same connection is in flight waits behind it, as in ZooKeeper's `CommitProcessor`.
//!
//! Files: `clients.rs` (connections, sessions, request dispatch), `writes.rs` (a write from
//! request to txn to reply; session expiry, reaping), `reads.rs`; the Zab phases, both sides of
//! each, in `discovery.rs`, `sync.rs` and `broadcast.rs`; `leader.rs` and `learner.rs` hold the
//! role state, its message dispatch and ticks. A step that finds the node in another role goes
//! through `Node::wrong_role`.

mod broadcast;
mod clients;
mod discovery;
mod leader;
mod learner;
mod reads;
mod sasl;
mod sync;
mod writes;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info};

use crate::core::canary::Canary;
use crate::core::config::NodeConfig;
use crate::core::ids::{ConnId, ServerId, SessionId, WriteId, Zxid};
use crate::core::io::{DurableWrite, Effect, Input};
use crate::core::prep::Speculative;
use crate::core::report::{ConnectionReport, Mode, ServerReport, SessionReport, StatsReset};
use crate::core::session::SessionTable;
use crate::core::snapshot::{self, SnapshotError, SnapshotImage};
use crate::core::time::Now;
use crate::core::tree::{acl, DataTree, TreeEvent};
use crate::core::txn::{Txn, TxnOp};
use crate::core::watch::WatchManager;
use crate::core::zab::election::{Decision, Election};
use crate::core::zab::{PeerMsg, PeerState, Vote};
use crate::wire;
use crate::wire::types::perms;

use clients::{Conn, Connecting, Revalidating};
use leader::Leader;
use learner::Learner;

/// Applied txns kept in memory for DIFF syncs. ZK compat: `commitLogCount` (500).
const HISTORY_MAX: usize = 1_000;

/// [`Node::check_invariants`] runs the tree's and the watch index's checks after every this
/// many steps (and before the first).
pub const DEEP_CHECK_EVERY: u64 = 128;

/// One Ensemble server.
pub struct Node {
    config: NodeConfig,
    tree: DataTree,
    sessions: SessionTable,
    watches: WatchManager,
    speculative: Speculative,
    // Clients.
    conns: BTreeMap<ConnId, Conn>,
    session_owner: BTreeMap<SessionId, ConnId>,
    connecting: BTreeMap<SessionId, Connecting>,
    revalidating: BTreeMap<SessionId, Revalidating>,
    handshake_deadlines: BTreeSet<(u64, ConnId)>,
    /// Members whose peer link the driver reported down (`PeerLinkDown`, no `PeerLinkUp`
    /// since). A member never reported either way counts as reachable.
    links_down: BTreeSet<ServerId>,
    /// Sessions with client activity since the last report to the leader.
    touched: BTreeSet<SessionId>,
    // History and durability.
    log: Log,
    epoch_accepted: u32,
    epoch_current: u32,
    write_next: WriteId,
    awaiting: VecDeque<(WriteId, AfterPersist)>,
    // Role.
    role: Role,
    /// Incremented on every role change; continuations queued under an older term are stale.
    term: u64,
    /// Inputs stepped so far: picks the steps that run the O(nodes) checks.
    steps: u64,
    election_round: u64,
    /// The vote of the election that made the current leader (answered to looking members).
    vote_current: Option<Vote>,
    /// Canary `EpochBeforeLog`: the commit point of a held-back sync payload.
    deferred_commit: Zxid,
    /// The last zxid this node handed out as leader.
    zxid_proposed: Zxid,
    // Misc.
    session_next: i64,
    rng: ChaCha8Rng,
    txns_since_snapshot: u64,
    snapshot_threshold: u64,
    snapshot_due: bool,
    reap_at_ms: u64,
    stats: Stats,
    now: Now,
}

/// What a member is doing.
enum Role {
    /// Not started yet (the first `step` decides).
    Starting,
    /// Electing a leader.
    Looking(Election),
    /// Leading (or standalone).
    Leading(Box<Leader>),
    /// Following or observing.
    Learning(Box<Learner>),
}

/// The role a role-specific step needs (see `Node::wrong_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    /// `Role::Leading`.
    Leading,
    /// `Role::Learning`.
    Learning,
}

/// The txns this node has logged but not applied, and the recent ones it applied.
#[derive(Default)]
struct Log {
    tail: VecDeque<Txn>,
    history: VecDeque<Txn>,
    /// The zxid just before `history[0]`: txns up to it exist only inside the tree.
    history_base: Zxid,
    /// The last txn logged (durable or on its way).
    zxid_logged: Zxid,
}

impl Log {
    /// The txns after `zxid`, if the history reaches back that far and `zxid` is on it.
    fn after(&self, zxid: Zxid) -> Option<Vec<Txn>> {
        let known = zxid == self.history_base
            || self.history.iter().chain(self.tail.iter()).any(|t| t.zxid == zxid);
        if !known {
            return None;
        }
        Some(
            self.history
                .iter()
                .chain(self.tail.iter())
                .filter(|t| t.zxid > zxid)
                .cloned()
                .collect(),
        )
    }

    /// The last zxid in the history (or its base) that is below `zxid`.
    fn last_before(&self, zxid: Zxid) -> Zxid {
        self.history
            .iter()
            .chain(self.tail.iter())
            .map(|t| t.zxid)
            .filter(|z| *z < zxid)
            .max()
            .unwrap_or(self.history_base)
    }

    fn remember(&mut self, txn: Txn) {
        self.history.push_back(txn);
        while self.history.len() > HISTORY_MAX {
            if let Some(old) = self.history.pop_front() {
                self.history_base = old.zxid;
            }
        }
    }
}

/// What to do once a durable write is covered by `Persisted`.
#[derive(Clone, Debug)]
enum AfterPersist {
    /// Nothing (observer logs, sync payloads, snapshots).
    Nothing,
    /// Leader: count our own ACK of this proposal.
    OwnAck(Zxid),
    /// Follower: ACK this proposal to the leader.
    SendAck { term: u64, zxid: Zxid },
    /// Leader: our acceptedEpoch is durable; tell the learners the new epoch.
    EpochAccepted { term: u64 },
    /// Learner: our acceptedEpoch is durable; ACKEPOCH.
    SendAckEpoch { term: u64 },
    /// Leader: our currentEpoch is durable; that is our own NEWLEADER ack.
    OwnNewLeaderAck { term: u64 },
    /// Learner: the synced history and currentEpoch are durable; ACK NEWLEADER.
    SendAckNewLeader { term: u64, epoch: u32 },
}

#[derive(Clone, Copy, Debug, Default)]
struct Latency {
    count: u64,
    total_ms: u64,
    min_ms: u64,
    max_ms: u64,
    last_ms: u64,
}

impl Latency {
    fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.total_ms += ms;
        self.last_ms = ms;
    }

    fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    received: u64,
    sent: u64,
    latency: Latency,
}

/// Why a node could not be rebuilt from its durable state.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The snapshot body does not decode.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A logged txn does not follow the history before it.
    #[error("txn {zxid} does not follow {previous}")]
    OutOfOrder {
        /// The offending txn.
        zxid: Zxid,
        /// The last txn before it.
        previous: Zxid,
    },
}

impl Node {
    /// A fresh node with an empty tree.
    pub fn new(config: NodeConfig, now: Now) -> Node {
        let tick_ms = config.tick_time_ms.max(1) as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let snapshot_threshold = snapshot_threshold(&mut rng, config.snap_count);
        // ZK compat: SessionTrackerImpl.initializeNextSessionId — server id in the top byte,
        // the wall clock in the middle bits so ids differ across restarts.
        let session_next =
            ((((now.wall_ms as u64) << 24) >> 8) | (config.server_id.0 << 56)) as i64;
        Node {
            reap_at_ms: now.mono_ms + config.container_check_interval_ms,
            sessions: SessionTable::new(tick_ms),
            tree: DataTree::new(),
            watches: WatchManager::default(),
            speculative: Speculative::default(),
            conns: BTreeMap::new(),
            session_owner: BTreeMap::new(),
            connecting: BTreeMap::new(),
            revalidating: BTreeMap::new(),
            handshake_deadlines: BTreeSet::new(),
            links_down: BTreeSet::new(),
            touched: BTreeSet::new(),
            log: Log::default(),
            epoch_accepted: 0,
            epoch_current: 0,
            write_next: WriteId(1),
            awaiting: VecDeque::new(),
            role: Role::Starting,
            term: 0,
            steps: 0,
            election_round: 0,
            vote_current: None,
            deferred_commit: Zxid::ZERO,
            zxid_proposed: Zxid::ZERO,
            session_next,
            rng,
            txns_since_snapshot: 0,
            snapshot_threshold,
            snapshot_due: false,
            stats: Stats::default(),
            now,
            config,
        }
    }

    /// Rebuilds a node from its latest snapshot body and the logged txns that follow it.
    /// Every logged txn is applied, as ZooKeeper's `ZKDatabase.loadDataBase` does; a leader
    /// will TRUNC or SNAP this node if some of them were never committed. Sessions restored
    /// this way get a full timeout from `now`.
    pub fn recover(
        config: NodeConfig,
        now: Now,
        snapshot_body: Option<&[u8]>,
        txns: impl IntoIterator<Item = Txn>,
    ) -> Result<Node, RecoveryError> {
        let restored = snapshot_body.map(snapshot::decode).transpose()?;
        Node::recover_restored(config, now, restored, txns)
    }

    /// [`Node::recover`] from a snapshot already decoded (or restored from a
    /// [`snapshot::SnapshotImage`] the driver kept). The tree may have applied more than
    /// the snapshot's `zxid` (a checkpoint of the same log): txns up to the tree's own
    /// `zxid_applied` are then not applied to it again, and everything else is as if it
    /// had been rebuilt from the snapshot.
    pub fn recover_restored(
        config: NodeConfig,
        now: Now,
        restored: Option<snapshot::Restored>,
        txns: impl IntoIterator<Item = Txn>,
    ) -> Result<Node, RecoveryError> {
        let mut node = Node::new(config, now);
        if let Some(restored) = restored {
            node.tree = restored.tree;
            for (id, timeout_ms, password) in restored.sessions {
                node.sessions.add(id, timeout_ms, password, now.mono_ms);
            }
            node.log.history_base = restored.zxid;
            node.log.zxid_logged = restored.zxid;
        }
        let mut replayed = 0u64;
        for txn in txns {
            if txn.zxid <= node.log.zxid_logged {
                if replayed == 0 {
                    continue; // already covered by the snapshot
                }
                return Err(RecoveryError::OutOfOrder {
                    zxid: txn.zxid,
                    previous: node.log.zxid_logged,
                });
            }
            node.log.zxid_logged = txn.zxid;
            // A tree restored from a later checkpoint than the snapshot (the simulator keeps
            // one per restart) already holds the txns up to its own zxid; the sessions and
            // the log still take every txn after the snapshot.
            if txn.zxid > node.tree.zxid_applied() {
                node.tree.apply(&txn, &mut Vec::new());
            }
            node.apply_session_change(&txn);
            node.log.remember(txn);
            replayed += 1;
        }
        node.zxid_proposed = node.log.zxid_logged;
        node.epoch_current = node.log.zxid_logged.epoch();
        node.epoch_accepted = node.epoch_current;
        // A short log since the last snapshot is cheaper to replay again than to snapshot
        // now; a long one counts toward the next periodic snapshot like live txns do.
        node.txns_since_snapshot = replayed;
        node.snapshot_due = replayed >= node.snapshot_threshold;
        info!(zxid = %node.log.zxid_logged, replayed, nodes = node.tree.node_count(), "recovered");
        Ok(node)
    }

    /// Sets the durable epochs read from disk (`acceptedEpoch`, `currentEpoch`). Call before
    /// the first `step`. Values below what the log implies are raised to it.
    pub fn with_epochs(mut self, accepted: u32, current: u32) -> Node {
        self.epoch_current = self.epoch_current.max(current);
        self.epoch_accepted = self.epoch_accepted.max(accepted).max(self.epoch_current);
        self
    }

    /// Feeds one input to the node; the effects it causes are appended to `effects` in order.
    pub fn step(&mut self, now: Now, input: Input, effects: &mut Vec<Effect>) {
        debug_assert!(now.mono_ms >= self.now.mono_ms, "monotonic time went backwards");
        self.now = now;
        self.steps += 1;
        if matches!(self.role, Role::Starting) {
            self.start(effects);
        }
        if self.snapshot_due {
            self.snapshot_due = false;
            self.write_snapshot(effects);
        }
        match input {
            Input::Tick => self.on_tick(effects),
            Input::ClientConnected { conn, addr, auth } => {
                self.on_client_connected(conn, addr, auth, effects)
            }
            Input::ClientFrame { conn, frame } => self.on_client_frame(conn, frame, effects),
            Input::ClientClosed { conn } => self.forget_conn(conn),
            Input::Persisted { up_to } => self.on_persisted(up_to, effects),
            Input::PeerMessage { from, msg } => self.on_peer_message(from, msg, effects),
            Input::PeerLinkUp { peer } => self.on_link_up(peer, effects),
            Input::PeerLinkDown { peer } => self.on_link_down(peer, effects),
        }
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// The monotonic instant at which the node wants `Input::Tick`, if any.
    pub fn deadline(&self) -> Option<u64> {
        let handshake = self.handshake_deadlines.first().map(|(at, _)| *at);
        let expiry = if self.owns_expiry() {
            self.sessions.next_expiry_ms().map(|at| self.session_deadline_mono(at))
        } else {
            None
        };
        let role = match &self.role {
            Role::Starting => Some(self.now.mono_ms),
            Role::Looking(election) => Some(election.deadline()),
            Role::Leading(leader) => leader.deadline(),
            Role::Learning(learner) => Some(learner.deadline(self.sync_limit_ms())),
        };
        let reap = self.is_leader_established().then_some(self.reap_at_ms);
        [handshake, expiry, role, reap].into_iter().flatten().min()
    }

    /// The data tree (read-only), for tests, the simulator and reports.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The last zxid this node logged.
    pub fn zxid_last(&self) -> Zxid {
        self.log.zxid_logged
    }

    /// The last zxid applied to the tree (committed, as far as this node knows).
    pub fn zxid_applied(&self) -> Zxid {
        self.tree.zxid_applied()
    }

    /// The durable epochs: (accepted, current).
    pub fn epochs(&self) -> (u32, u32) {
        (self.epoch_accepted, self.epoch_current)
    }

    /// The node's role as `srvr` reports it.
    pub fn mode(&self) -> Mode {
        match &self.role {
            Role::Leading(leader) if leader.standalone => Mode::Standalone,
            Role::Leading(_) => Mode::Leader,
            Role::Learning(learner) if learner.observer => Mode::Observer,
            Role::Learning(_) => Mode::Follower,
            Role::Looking(_) | Role::Starting => Mode::Looking,
        }
    }

    /// Whether the node answers clients now.
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(leader) => leader.established,
            Role::Learning(learner) => learner.serving(),
            _ => false,
        }
    }

    /// The leader this node follows or is, once established.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(leader) if leader.established => Some(self.config.server_id),
            Role::Learning(learner) if learner.serving() => Some(learner.leader),
            _ => None,
        }
    }

    /// A summary for the four-letter words and `ensemble status`.
    pub fn report(&self) -> ServerReport {
        let (watch_connections, watch_paths, watch_total) = self.watches.data_watch_summary();
        let connections = self
            .conns
            .iter()
            .map(|(id, c)| ConnectionReport {
                conn: *id,
                addr: c.addr,
                queued: c.queue.len() as u64,
                received: c.received,
                sent: c.sent,
                session: c.session(),
                timeout_ms: c.timeout_ms,
                last_op: c.last_op,
                last_cxid: c.last_cxid,
                last_zxid: c.last_zxid,
                established_mono_ms: c.established_ms,
                latency_last_ms: c.latency.last_ms,
                latency_min_ms: c.latency.min_ms,
                latency_avg_ms: c.latency.avg(),
                latency_max_ms: c.latency.max_ms,
            })
            .collect();
        let sessions = self
            .sessions
            .iter()
            .map(|(id, s)| SessionReport {
                session: id,
                timeout_ms: s.timeout_ms,
                ephemerals: self.tree.ephemerals(id),
            })
            .collect();
        let outstanding = match &self.role {
            Role::Leading(leader) => leader.outstanding.len() as u64,
            _ => self.log.tail.len() as u64,
        };
        ServerReport {
            mode: self.mode(),
            serving: self.is_serving(),
            // ZK compat: after an election the server reports (epoch, 0) until the first write.
            zxid: self.tree.zxid_applied().max(
                if self.is_serving() && !self.config.is_standalone() {
                    Zxid::new(self.epoch_current, 0)
                } else {
                    Zxid::ZERO
                },
            ),
            epoch: self.epoch_current,
            node_count: self.tree.node_count(),
            approximate_data_size: self.tree.approximate_data_size().max(0) as u64,
            ephemerals_count: self.tree.ephemeral_count(),
            session_count: self.sessions.len(),
            outstanding_requests: outstanding,
            packets_received: self.stats.received,
            packets_sent: self.stats.sent,
            latency_min_ms: self.stats.latency.min_ms,
            latency_avg_ms: self.stats.latency.avg(),
            latency_max_ms: self.stats.latency.max_ms,
            watch_connections,
            watch_paths,
            watch_total,
            connections,
            sessions,
            proposal_sizes: None,
            learners: match &self.role {
                Role::Leading(leader) => leader.learner_report(),
                _ => Vec::new(),
            },
            watches_by_session: self.watches_by_session(),
            watches_by_path: self.watches_by_path(),
        }
    }

    /// Resets the counters `crst` or `srst` name. Counters only: no state the protocol
    /// depends on. ZK compat: `ServerCnxn.resetStats` (packets, latencies, `lop=NA`,
    /// `lcxid`/`lzxid` -1) and `ServerStats.reset` (packets, latencies).
    pub fn reset_stats(&mut self, which: StatsReset) {
        match which {
            StatsReset::Connections => {
                for conn in self.conns.values_mut() {
                    conn.received = 0;
                    conn.sent = 0;
                    conn.latency = Latency::default();
                    conn.last_op = "NA";
                    conn.last_cxid = -1;
                    conn.last_zxid = -1;
                }
            }
            StatsReset::Server => self.stats = Stats::default(),
        }
    }

    /// Counts a four-letter word (`received`) or its answer in the server's packets. ZK
    /// compat: `NIOServerCnxn.checkFourLetterWord` calls `packetReceived(4)`, and writing the
    /// answer counts a packet sent.
    pub fn count_four_letter_packet(&mut self, received: bool) {
        if received {
            self.stats.received += 1;
        } else {
            self.stats.sent += 1;
        }
    }

    fn session_of(&self, conn: ConnId) -> Option<SessionId> {
        self.conns.get(&conn).and_then(|c| c.session())
    }

    fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        let mut by_session: BTreeMap<SessionId, Vec<String>> = BTreeMap::new();
        for (conn, paths) in self.watches.by_connection() {
            if let Some(session) = self.session_of(conn) {
                by_session.entry(session).or_default().extend(paths);
            }
        }
        by_session.into_iter().collect()
    }

    fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.watches
            .by_path()
            .into_iter()
            .map(|(path, conns)| {
                let mut sessions: Vec<SessionId> =
                    conns.into_iter().filter_map(|c| self.session_of(c)).collect();
                sessions.sort();
                (path, sessions)
            })
            .collect()
    }

    /// Checks the node's internal invariants; panics on a violation (a bug). The simulator
    /// calls it after every step; debug builds do too.
    ///
    /// Every call checks the node's own state (log order, epochs, pending writes). Every
    /// [`DEEP_CHECK_EVERY`]th step also runs the tree's checks (store bookkeeping, ACL
    /// reference counts, owner indexes, size, digest) and the watch index's: those are
    /// O(nodes + watches): after every step they made a simulator sweep six times slower;
    /// every 128th costs about 4% (docs/simulation.md). The step count is a function of
    /// the inputs only, so which steps are checked is deterministic, and a corruption that
    /// persists is caught within that many steps.
    pub fn check_invariants(&self) {
        self.check_own_invariants();
        if self.steps % DEEP_CHECK_EVERY == 0 {
            self.check_deep_invariants();
        }
    }

    /// The O(nodes + watches) part of [`Node::check_invariants`], whatever the step count.
    pub fn check_deep_invariants(&self) {
        self.tree.check_invariants();
        self.watches.check_invariants();
    }

    fn check_own_invariants(&self) {
        let applied = self.tree.zxid_applied();
        assert!(
            applied <= self.log.zxid_logged,
            "applied {applied} > logged {}",
            self.log.zxid_logged
        );
        let mut previous = applied;
        for txn in &self.log.tail {
            assert!(txn.zxid > previous, "log tail out of order: {} after {previous}", txn.zxid);
            previous = txn.zxid;
        }
        if let Some(last) = self.log.tail.back() {
            if !self.canary(Canary::LastZxidBeforeLog) {
                assert_eq!(last.zxid, self.log.zxid_logged, "tail end != zxid_logged");
            }
        }
        assert!(
            self.epoch_accepted >= self.epoch_current,
            "acceptedEpoch {} < currentEpoch {}",
            self.epoch_accepted,
            self.epoch_current
        );
        for pair in self.awaiting.iter().zip(self.awaiting.iter().skip(1)) {
            assert!(pair.0 .0 < pair.1 .0, "awaiting writes out of order");
        }
    }

    // ---------------------------------------------------------------- roles

    /// The decision for a role-specific step (a peer message, a durable write completing, a
    /// tick) that finds this node in another role: it left the role since the step was set off
    /// (an election, a clock jump, a lost quorum), so the step belongs to a role that is over
    /// and is dropped. Logged at debug so that a dropped step is visible in a trace.
    fn wrong_role(&self, step: &'static str, wanted: Wanted) {
        debug!(server = %self.config.server_id, step, ?wanted, mode = ?self.mode(), "step for another role dropped");
    }

    fn start(&mut self, effects: &mut Vec<Effect>) {
        if self.config.is_standalone() {
            info!(zxid = %self.log.zxid_logged, "standalone");
            self.role = Role::Leading(Box::new(Leader::standalone(self.now.mono_ms)));
            self.zxid_proposed = self.log.zxid_logged;
            self.restart_session_timers();
        } else {
            self.become_looking("start", effects);
        }
    }

    /// Drops whatever role the node had and starts an election.
    fn become_looking(&mut self, reason: &str, effects: &mut Vec<Effect>) {
        info!(server = %self.config.server_id, reason, zxid = %self.log.zxid_logged, "looking");
        if self.canary(Canary::RetainUncommitted) {
            self.apply_committed(self.log.zxid_logged, effects);
        }
        self.leave_role(effects);
        let vote = Vote {
            leader: self.config.server_id,
            zxid: self.log.zxid_logged,
            epoch: self.epoch_current,
        };
        let mut out = Vec::new();
        let mut election = Election::start(
            self.config.server_id,
            self.election_round,
            vote,
            self.now.mono_ms,
            &self.config.membership,
            &mut out,
        );
        election.set_canaries(self.config.canaries);
        election.set_unreachable(self.links_down.clone());
        self.election_round = election.round();
        self.role = Role::Looking(election);
        send_all(out, effects);
    }

    /// Everything a role change discards: client connections (clients move on to another
    /// member, as with ZooKeeper), speculative prep state and role continuations.
    fn leave_role(&mut self, effects: &mut Vec<Effect>) {
        self.term += 1;
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close_conn(conn, effects);
        }
        self.speculative.clear();
        self.revalidating.clear();
        self.touched.clear();
    }

    fn on_election_decided(&mut self, decision: Decision, effects: &mut Vec<Effect>) {
        let round = self.election_round;
        if let Role::Looking(election) = &self.role {
            self.vote_current = election.decided_vote();
        }
        match decision {
            Decision::Lead => {
                info!(server = %self.config.server_id, round, "leading");
                self.term += 1;
                let init_ms = self.init_limit_ms();
                self.role = Role::Leading(Box::new(Leader::new(self.now.mono_ms, init_ms)));
                self.leader_started(effects);
            }
            Decision::Learn { leader } => {
                let observer = !self.config.membership.is_voter(self.config.server_id);
                info!(server = %self.config.server_id, %leader, observer, round, "learning");
                self.term += 1;
                let deadline = self.now.mono_ms + self.init_limit_ms();
                self.role = Role::Learning(Box::new(Learner::new(leader, observer, deadline)));
                self.learner_started(effects);
            }
        }
    }

    fn on_peer_message(&mut self, from: ServerId, msg: PeerMsg, effects: &mut Vec<Effect>) {
        if !self.config.membership.members.contains_key(&from) || from == self.config.server_id {
            debug!(%from, msg = msg.name(), "message from a stranger");
            return;
        }
        if let PeerMsg::Notification { vote, round, state } = msg {
            self.on_notification(from, vote, round, state, effects);
            return;
        }
        match &self.role {
            Role::Leading(_) => self.leader_on_message(from, msg, effects),
            Role::Learning(learner) if learner.leader == from => {
                self.learner_on_message(msg, effects)
            }
            _ => debug!(%from, msg = msg.name(), "ignored in this role"),
        }
    }

    fn on_notification(
        &mut self,
        from: ServerId,
        vote: Vote,
        round: u64,
        state: PeerState,
        effects: &mut Vec<Effect>,
    ) {
        if state == PeerState::Looking && self.is_answered_leader(from) {
            // ZK compat: a leader that shuts down closes its learners' connections, and they
            // look for a new one. Our link to it stays up (it carries elections too), so its
            // LOOKING notification is the news; without it we would keep following a leader
            // that, re-elected, no longer counts us (sessions on us would expire).
            self.become_looking("the leader is looking", effects);
        }
        let Role::Looking(election) = &mut self.role else {
            // ZK compat: a member that is not looking answers a looking one with the leader
            // it follows, so a rejoining member finds the established ensemble.
            if state == PeerState::Looking {
                if let Some(msg) = self.established_notification() {
                    effects.push(Effect::SendPeer { to: from, msg });
                }
            }
            return;
        };
        let mut out = Vec::new();
        let members = &self.config.membership;
        let decided =
            election.on_notification(from, vote, round, state, self.now.mono_ms, members, &mut out);
        self.election_round = election.round();
        send_all(out, effects);
        if let Some(decision) = decided {
            self.on_election_decided(decision, effects);
        }
    }

    /// Our notification while following or leading.
    fn established_notification(&self) -> Option<PeerMsg> {
        let (leader, state) = match &self.role {
            Role::Leading(leader) if !leader.standalone => {
                (self.config.server_id, PeerState::Leading)
            }
            Role::Learning(learner) => (
                learner.leader,
                if learner.observer { PeerState::Observing } else { PeerState::Following },
            ),
            _ => return None,
        };
        let vote = Vote { leader, zxid: self.log.zxid_logged, epoch: self.epoch_current };
        Some(PeerMsg::Notification { vote, round: self.election_round, state })
    }

    fn on_link_up(&mut self, peer: ServerId, effects: &mut Vec<Effect>) {
        self.links_down.remove(&peer);
        match &mut self.role {
            Role::Looking(election) => {
                let mut out = Vec::new();
                election.on_link_up(peer, &mut out);
                send_all(out, effects);
            }
            Role::Learning(learner) if learner.leader == peer => self.learner_link_up(effects),
            _ => {}
        }
    }

    fn on_link_down(&mut self, peer: ServerId, effects: &mut Vec<Effect>) {
        self.links_down.insert(peer);
        match &mut self.role {
            Role::Looking(election) => {
                let decided =
                    election.on_link_down(peer, self.now.mono_ms, &self.config.membership);
                if let Some(decision) = decided {
                    self.on_election_decided(decision, effects);
                }
            }
            Role::Leading(_) => self.leader_lost_learner(peer, effects),
            Role::Learning(learner) if learner.leader == peer => {
                self.become_looking("lost the leader's link", effects)
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now.mono_ms;
        while let Some(&(at, conn)) = self.handshake_deadlines.first() {
            if at > now {
                break;
            }
            self.handshake_deadlines.remove(&(at, conn));
            debug!(%conn, "no handshake in time");
            self.close_conn(conn, effects);
        }
        match &mut self.role {
            Role::Starting => {}
            Role::Looking(election) => {
                let mut out = Vec::new();
                let decided = election.on_tick(now, &self.config.membership, &mut out);
                send_all(out, effects);
                if let Some(decision) = decided {
                    self.on_election_decided(decision, effects);
                }
            }
            Role::Leading(_) => self.leader_tick(effects),
            Role::Learning(_) => self.learner_tick(effects),
        }
        if self.is_leader_established() {
            for session in self.sessions.take_expired(self.session_now()) {
                info!(%session, "session expired");
                if let Some(conn) = self.session_owner.get(&session).copied() {
                    self.close_conn(conn, effects);
                }
                self.expire(session, effects);
            }
            if now >= self.reap_at_ms {
                self.reap_at_ms = now + self.config.container_check_interval_ms.max(1);
                self.reap(effects);
            }
        }
    }

    fn is_leader_established(&self) -> bool {
        matches!(&self.role, Role::Leading(leader) if leader.established)
    }

    /// Only an established leader expires sessions; learners report activity to it.
    fn owns_expiry(&self) -> bool {
        self.is_leader_established()
    }

    /// Every session's timeout starts over (a new leader, or a recovered standalone server).
    /// ZK compat: the new leader's `SessionTrackerImpl` is built from the snapshot's sessions.
    fn restart_session_timers(&mut self) {
        let ids: Vec<SessionId> = self.sessions.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.sessions.touch(id, self.session_now());
        }
    }

    /// Whether a deliberate bug is switched on (always false without the `canary` feature).
    fn canary(&self, canary: Canary) -> bool {
        self.config.canaries.on(canary)
    }

    /// The clock sessions expire by: monotonic (ZK compat: ZOOKEEPER-1366 moved ZooKeeper off
    /// the wall clock).
    fn session_now(&self) -> u64 {
        if self.canary(Canary::ExpiryWallClock) {
            self.now.wall_ms.max(0) as u64
        } else {
            self.now.mono_ms
        }
    }

    /// A session-clock instant as a monotonic deadline.
    fn session_deadline_mono(&self, at: u64) -> u64 {
        (at + self.now.mono_ms).saturating_sub(self.session_now())
    }

    fn init_limit_ms(&self) -> u64 {
        self.config.init_limit.max(1) as u64 * self.config.tick_time_ms.max(1) as u64
    }

    fn sync_limit_ms(&self) -> u64 {
        self.config.sync_limit.max(1) as u64 * self.config.tick_time_ms.max(1) as u64
    }

    // ---------------------------------------------------------------- durability

    /// Requests a durable write; `then` runs once it is covered by `Persisted`.
    fn write(&mut self, write: DurableWrite, then: AfterPersist, effects: &mut Vec<Effect>) {
        let id = self.write_next;
        self.write_next = WriteId(id.0 + 1);
        effects.push(Effect::Write { id, write });
        self.awaiting.push_back((id, then));
    }

    /// Logs a txn at the end of the log tail.
    fn log_txn(&mut self, txn: Txn, then: AfterPersist, effects: &mut Vec<Effect>) {
        assert!(
            txn.zxid > self.log.zxid_logged,
            "logging {} after {}",
            txn.zxid,
            self.log.zxid_logged
        );
        self.log.zxid_logged = txn.zxid;
        self.log.tail.push_back(txn.clone());
        self.write(DurableWrite::Append(txn), then, effects);
    }

    fn on_persisted(&mut self, up_to: WriteId, effects: &mut Vec<Effect>) {
        while self.awaiting.front().is_some_and(|(id, _)| *id <= up_to) {
            let Some((_, then)) = self.awaiting.pop_front() else { break };
            self.after_persist(then, effects);
        }
    }

    fn after_persist(&mut self, then: AfterPersist, effects: &mut Vec<Effect>) {
        let term = self.term;
        match then {
            AfterPersist::Nothing => {}
            AfterPersist::OwnAck(zxid) => self.leader_on_ack(self.config.server_id, zxid, effects),
            AfterPersist::SendAck { term: t, zxid } if t == term => {
                self.learner_send(PeerMsg::Ack { zxid }, effects)
            }
            AfterPersist::EpochAccepted { term: t } if t == term => {
                self.leader_epoch_accepted(effects)
            }
            AfterPersist::SendAckEpoch { term: t } if t == term => {
                let msg = PeerMsg::AckEpoch {
                    current_epoch: self.epoch_current,
                    zxid_logged: self.log.zxid_logged,
                    counts: true,
                };
                self.learner_send(msg, effects);
            }
            AfterPersist::OwnNewLeaderAck { term: t } if t == term => {
                self.leader_on_ack_new_leader(self.config.server_id, effects)
            }
            AfterPersist::SendAckNewLeader { term: t, epoch } if t == term => {
                self.learner_send(PeerMsg::AckNewLeader { epoch }, effects)
            }
            stale => debug!(?stale, "continuation of an older role"),
        }
    }

    // ---------------------------------------------------------------- commit and apply

    /// Applies every logged txn up to `zxid` (they are committed).
    fn apply_committed(&mut self, zxid: Zxid, effects: &mut Vec<Effect>) {
        while self.log.tail.front().is_some_and(|t| t.zxid <= zxid) {
            let Some(txn) = self.log.tail.pop_front() else { break };
            self.apply(txn, effects);
        }
    }

    /// Applies one committed txn and answers whoever waits for it on this node.
    fn apply(&mut self, txn: Txn, effects: &mut Vec<Effect>) {
        // Only our own log feeds this (a peer's COMMIT is checked against it first), so a
        // txn out of order is our bug.
        assert!(
            txn.zxid > self.tree.zxid_applied(),
            "applying {} after {}",
            txn.zxid,
            self.tree.zxid_applied()
        );
        let mut events = Vec::new();
        let outcome = self.tree.apply(&txn, &mut events);
        self.speculative.applied(txn.zxid);
        self.apply_session_change(&txn);
        self.notify(&events, txn.zxid, effects);
        match txn.op {
            TxnOp::CreateSession { timeout_ms, .. } => {
                if let Some(waiting) = self.connecting.remove(&txn.session) {
                    self.establish(
                        waiting.conn,
                        txn.session,
                        timeout_ms,
                        waiting.read_only,
                        effects,
                    );
                }
            }
            _ => self.answer_write(&txn, outcome, effects),
        }
        self.log.remember(txn);
        self.txns_since_snapshot += 1;
        if self.txns_since_snapshot >= self.snapshot_threshold {
            self.write_snapshot(effects);
        }
    }

    fn apply_session_change(&mut self, txn: &Txn) {
        match &txn.op {
            TxnOp::CreateSession { timeout_ms, password }
                if self.sessions.get(txn.session).is_none() =>
            {
                self.sessions.add(txn.session, *timeout_ms, *password, self.session_now());
            }
            TxnOp::CloseSession => {
                self.sessions.remove(txn.session);
            }
            _ => {}
        }
    }

    fn notify(&mut self, events: &[TreeEvent], zxid: Zxid, effects: &mut Vec<Effect>) {
        if events.is_empty() || self.conns.is_empty() {
            return;
        }
        let mut out = Vec::new();
        let conns = &self.conns;
        let (skip_acl, auth) = (self.config.skip_acl, &self.config.auth);
        let mut can_read = |conn: ConnId, node_acl: &[crate::wire::types::Acl]| {
            let ids = |c: &clients::Conn| acl::check(node_acl, perms::READ, &c.ids, skip_acl, auth);
            conns.get(&conn).is_some_and(ids)
        };
        for event in events {
            self.watches.trigger(event, &mut can_read, &mut out);
        }
        for (conn, event) in out {
            self.send(conn, wire::encode_notification(zxid.to_wire(), &event), effects);
        }
    }

    /// The tree and session table as they are now, frozen (O(pages); no encoding here).
    fn snapshot_image(&self) -> SnapshotImage {
        let sessions: Vec<_> =
            self.sessions.iter().map(|(id, s)| (id, s.timeout_ms, s.password)).collect();
        SnapshotImage::new(self.tree.zxid_applied(), &self.tree, sessions)
    }

    /// Hands the driver a periodic snapshot to store in the background.
    fn write_snapshot(&mut self, effects: &mut Vec<Effect>) {
        let zxid = self.tree.zxid_applied();
        let image = self.snapshot_image();
        self.txns_since_snapshot = 0;
        self.snapshot_threshold = snapshot_threshold(&mut self.rng, self.config.snap_count);
        info!(%zxid, nodes = image.node_count(), "snapshot");
        let write = DurableWrite::Snapshot { zxid, image, background: true };
        self.write(write, AfterPersist::Nothing, effects);
    }

    /// Replaces the tree and session table with a leader's snapshot (SNAP).
    fn install_snapshot(&mut self, zxid: Zxid, body: &[u8]) -> Result<(), SnapshotError> {
        let restored = snapshot::decode(body)?;
        self.tree = restored.tree;
        self.sessions = SessionTable::new(self.config.tick_time_ms.max(1) as u64);
        for (id, timeout_ms, password) in restored.sessions {
            self.sessions.add(id, timeout_ms, password, self.session_now());
        }
        self.log.tail.clear();
        self.log.history.clear();
        self.log.history_base = zxid;
        self.log.zxid_logged = zxid;
        self.speculative.clear();
        Ok(())
    }
}

fn send_all(out: Vec<(ServerId, PeerMsg)>, effects: &mut Vec<Effect>) {
    effects.extend(out.into_iter().map(|(to, msg)| Effect::SendPeer { to, msg }));
}

/// ZK compat: SyncRequestProcessor rolls a snapshot after a random count in
/// [snapCount/2, snapCount] so members of an ensemble do not snapshot at once.
fn snapshot_threshold(rng: &mut ChaCha8Rng, snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.next_u64() % (snap_count - half + 1).max(1)
}
