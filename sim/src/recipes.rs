//! Recipe clients: the classic ZooKeeper recipes, run as workloads by the simulated clients.
//!
//! A [`Recipe`] is the application half of a client: it decides which request goes out next and
//! reacts to replies, watch notifications, disconnects and session expiry. The client half
//! (`workload.rs`: session, pings, reconnects, history) is the same as for the random mix, so a
//! recipe meets every fault the swarm injects. Three recipes, modelled on Apache Curator (the
//! reference for how ZooKeeper recipes behave under ConnectionLoss):
//!
//! * **lock** (`/recipes/lock`, Curator's `InterProcessMutex`): create an EPHEMERAL_SEQUENTIAL
//!   node, list the children; the lowest holds the lock, any other sets an exists-watch on its
//!   predecessor and waits. A holder releases by deleting its node. A create whose outcome is
//!   unknown is found again by its *protected name* (Curator's `_c_<guid>-` prefix, here the
//!   client and attempt); nodes of ours we no longer own (such a create that committed late)
//!   are deleted. A client stops believing it holds the lock the moment its connection drops
//!   (Curator's SUSPENDED is to be treated as lost) or its session expires; after a reconnect
//!   with the same session it lists again and holds again only if its node is still lowest.
//! * **leader election** (`/recipes/election`, Curator's `LeaderLatch`): the same mechanics;
//!   the leader steps down after a term by deleting its node and rejoins at the back. On a
//!   disconnect a candidate gives up leadership and, once reconnected, deletes its node and
//!   rejoins (`LeaderLatch.reset`).
//! * **FIFO queue** (`/recipes/queue`, Curator's `DistributedQueue`): producers create
//!   PERSISTENT_SEQUENTIAL items with unique payloads (protected names, so an item whose create
//!   was lost in a disconnect is found instead of produced twice, as far as ZooKeeper allows);
//!   consumers list the children (with a watch), take the lowest: getData, then delete with the
//!   version read. The consumer whose delete succeeds owns the item; one that loses the race
//!   (NoNode) tries the next one of its listing.
//!
//! What a recipe comes to believe (holding, leading, produced, consumed) is recorded in the
//! history as [`RecipeEvent`]s; the checkers `lock.rs`, `election.rs` and `queue.rs` judge them
//! against the committed log. Nothing here judges correctness.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;
use ensemble::core::ids::SessionId;
use ensemble::wire::proto::{CreateKind, CreateRequest, Request, Response, WatcherEvent};
use ensemble::wire::types::{Acl, ErrorCode};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::history::OpOutcome;
use crate::rng;
use crate::time::SimTime;
use crate::workload::ClientId;

/// The parent of every recipe's node.
pub const ROOT: &str = "/recipes";
/// The lock's directory.
pub const LOCK: &str = "/recipes/lock";
/// The election's directory.
pub const ELECTION: &str = "/recipes/election";
/// The queue's directory.
pub const QUEUE: &str = "/recipes/queue";

/// Digits of a sequential node's suffix (ZooKeeper's `%010d`).
const SEQUENCE_DIGITS: usize = 10;
/// Shortest and longest time a waiter waits for its watch before it lists again, ms (Curator's
/// `acquire(time, unit)`; it also keeps a waiting client visibly alive).
const WAIT_MS: (u64, u64) = (500, 3_000);
/// Chance that a lock waiter whose wait timed out gives up: deletes its node and retries later.
const GIVE_UP: f64 = 0.25;

/// What a recipe client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Takes the lock, holds it a while, releases it, again and again.
    Lock,
    /// Runs for leader; a leader steps down after a term and rejoins.
    Election,
    /// Puts items into the queue.
    Producer,
    /// Takes items from the queue.
    Consumer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Lock, Role::Election, Role::Producer, Role::Consumer];

    /// The directory the role works in.
    pub fn base(self) -> &'static str {
        match self {
            Role::Lock => LOCK,
            Role::Election => ELECTION,
            Role::Producer | Role::Consumer => QUEUE,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Lock => "lock",
            Role::Election => "election",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        };
        f.write_str(name)
    }
}

/// Which clients run a recipe, and how long they keep what they take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipeOptions {
    /// The recipe of each recipe client; the other clients run the random mix.
    pub roles: BTreeMap<ClientId, Role>,
    /// Mean time a lock is held, ms (a leader's term is twice that; producers pause about as
    /// long between items).
    pub hold_mean_ms: u64,
}

impl RecipeOptions {
    /// The swarm draw: for about two seeds in five, 2–5 extra clients (ids from `*clients` on,
    /// which grows) run one recipe, or a mix of them.
    pub fn swarm(rng: &mut ChaCha8Rng, clients: &mut usize) -> RecipeOptions {
        if !rng.gen_bool(0.4) {
            return RecipeOptions::default();
        }
        let count = rng::between(rng, 2, 5) as usize;
        let kind = rng.gen_range(0..4);
        let hold_mean_ms = [20, 200, 1_000][rng.gen_range(0..3)];
        let mut roles = BTreeMap::new();
        for i in 0..count {
            let role = match kind {
                0 => Role::Lock,
                1 => Role::Election,
                2 if i % 2 == 0 => Role::Producer,
                2 => Role::Consumer,
                _ => Role::ALL[rng.gen_range(0..Role::ALL.len())],
            };
            roles.insert(ClientId((*clients + i) as u32), role);
        }
        *clients += count;
        RecipeOptions { roles, hold_mean_ms }
    }
}

impl fmt::Display for RecipeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (client, role)) in self.roles.iter().enumerate() {
            write!(f, "{}{client} {role}", if i == 0 { "" } else { ", " })?;
        }
        write!(f, "; hold {} ms", self.hold_mean_ms)
    }
}

/// What a recipe client came to believe, as recorded in the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipeEvent {
    /// It holds the lock / leads: its node (a child name) was the lowest when it listed.
    Acquired {
        /// Its node.
        node: String,
    },
    /// It no longer believes it holds the lock / leads.
    Released {
        /// Its node.
        node: String,
        /// Why.
        why: Loss,
    },
    /// An item it produced is in the queue (the create was acknowledged, or the item was found
    /// by its protected name after a disconnect).
    Produced {
        /// The item's full path.
        path: String,
        /// Its payload (unique per item).
        payload: Bytes,
    },
    /// It owns an item: it read it and its delete succeeded.
    Consumed {
        /// The item's full path.
        path: String,
        /// The payload it read.
        payload: Bytes,
    },
}

/// Why a holder or leader stopped believing it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Its hold or term was over; it is about to delete its node.
    Released,
    /// Its connection dropped: it cannot be sure any more.
    Disconnected,
    /// The server said its session expired.
    SessionExpired,
}

/// A [`RecipeEvent`] with who and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipeNote {
    /// The client.
    pub client: ClientId,
    /// The session the belief is tied to.
    pub session: SessionId,
    /// Its recipe.
    pub role: Role,
    /// When it came to believe it.
    pub at: SimTime,
    /// What.
    pub event: RecipeEvent,
}

impl fmt::Display for RecipeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        match self {
            RecipeEvent::Acquired { node } => write!(f, "ACQUIRED {node}"),
            RecipeEvent::Released { node, why } => write!(f, "RELEASED {node} ({why:?})"),
            RecipeEvent::Produced { path, payload } => {
                write!(f, "produced {path} {}", text(payload))
            }
            RecipeEvent::Consumed { path, payload } => {
                write!(f, "consumed {path} {}", text(payload))
            }
        }
    }
}

/// The sequence number of a sequential node's name: its last ten characters, all digits.
pub fn sequence(name: &str) -> Option<u64> {
    let start = name.len().checked_sub(SEQUENCE_DIGITS)?;
    let digits = name.get(start..)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The last component of a path.
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What a recipe hears from its client.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The reply to the recipe's request in flight.
    Reply {
        /// The request.
        request: &'a Request,
        /// What came of it (never `Unknown`: that arrives as `Disconnected`).
        outcome: &'a OpOutcome,
    },
    /// A watch notification.
    Watch(&'a WatcherEvent),
    /// The connection dropped; the request in flight, if any, has an unknown outcome, and every
    /// watch is gone.
    Disconnected,
    /// The session is gone with every ephemeral node it owned.
    SessionExpired,
}

/// What the recipe does next, or the request in flight (when `awaiting`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Create `/recipes` (level 0), then the role's directory (level 1).
    Setup(u8),
    /// Nothing until then.
    Rest { until: SimTime },
    /// Contender: create a node with a fresh protected name.
    Join,
    /// Contender, producer: list to find a node whose create's outcome is unknown.
    Find,
    /// List the children (contender: where am I; consumer: what is queued).
    List,
    /// Contender: set an exists-watch on the predecessor (a full path).
    Watch { pred: String },
    /// Wait for a notification on `on` (a full path), but list again at `until`.
    Wait { on: String, until: SimTime },
    /// Contender: hold the lock / lead until then.
    Hold { until: SimTime },
    /// Contender: delete our node.
    Leave,
    /// Producer: create the current item.
    Produce,
    /// Consumer: read an item (a child name).
    Read { item: String },
    /// Consumer: delete an item we read.
    Take { item: String, payload: Bytes, version: i32 },
}

/// The request in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Awaiting {
    /// The request of the current step.
    Step,
    /// Deleting a node of ours we no longer own (a child name).
    Ghost(String),
}

/// One recipe client's application state.
#[derive(Debug)]
pub struct Recipe {
    role: Role,
    client: ClientId,
    hold_mean_ms: u64,
    step: Step,
    awaiting: Option<Awaiting>,
    /// Contender: our node's name while we have one.
    node: Option<String>,
    /// Contender: attempts made; producer: items produced. Part of the protected names.
    made: u64,
    /// Contender: nodes of ours we do not own any more, to delete.
    ghosts: Vec<String>,
    /// Consumer: the rest of the listing, lowest first.
    batch: VecDeque<String>,
}

impl Recipe {
    /// A recipe client that first makes sure its directory exists.
    pub fn new(role: Role, client: ClientId, options: &RecipeOptions) -> Recipe {
        Recipe {
            role,
            client,
            hold_mean_ms: options.hold_mean_ms.max(1),
            step: Step::Setup(0),
            awaiting: None,
            node: None,
            made: 0,
            ghosts: Vec::new(),
            batch: VecDeque::new(),
        }
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether it believes it holds the lock or leads.
    pub fn holds(&self) -> bool {
        matches!(self.step, Step::Hold { .. })
    }

    /// When it next wants to send, if it is not waiting for a reply (`SimTime::ZERO`: now).
    pub fn wake_at(&self) -> Option<SimTime> {
        if self.awaiting.is_some() {
            return None;
        }
        match &self.step {
            Step::Rest { until } | Step::Wait { until, .. } | Step::Hold { until } => Some(*until),
            _ => Some(SimTime::ZERO),
        }
    }

    /// The next request, if one is due at `now`; beliefs that end go to `notes`.
    pub fn next_request(
        &mut self,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        notes: &mut Vec<RecipeEvent>,
    ) -> Option<Request> {
        if self.awaiting.is_some() {
            return None;
        }
        match &self.step {
            Step::Rest { until } | Step::Wait { until, .. } | Step::Hold { until }
                if now < *until =>
            {
                return None
            }
            Step::Rest { .. } => self.step = self.after_rest(),
            Step::Wait { .. } => {
                self.step = if self.role == Role::Lock && rng.gen_bool(GIVE_UP) {
                    Step::Leave
                } else {
                    Step::List
                };
            }
            Step::Hold { .. } => {
                let node = self.node.clone().unwrap_or_default();
                notes.push(RecipeEvent::Released { node, why: Loss::Released });
                self.step = Step::Leave;
            }
            _ => {}
        }
        if self.step == Step::Leave && self.node.is_none() {
            self.step = self.after_leave(now, rng);
            if let Step::Rest { until } = self.step {
                if now < until {
                    return None;
                }
                self.step = self.after_rest();
            }
        }
        let base = self.role.base();
        if let Some(ghost) = self.ghosts.first().cloned() {
            if matches!(self.step, Step::Join | Step::Find | Step::List | Step::Leave) {
                self.awaiting = Some(Awaiting::Ghost(ghost.clone()));
                return Some(Request::Delete { path: format!("{base}/{ghost}"), version: -1 });
            }
        }
        let request = match &self.step {
            Step::Setup(level) => {
                let path = if *level == 0 { ROOT } else { base };
                create(path.to_string(), None, 0)
            }
            Step::Join => {
                self.made += 1;
                let path = format!("{base}/{}lock-", self.protected_prefix(self.made));
                create(path, None, 3)
            }
            Step::Find | Step::List => {
                let watch = self.role == Role::Consumer;
                Request::GetChildren { path: base.to_string(), watch, with_stat: false }
            }
            Step::Watch { pred } => Request::Exists { path: pred.clone(), watch: true },
            Step::Leave => {
                let node = self.node.as_ref().expect("Leave without a node was skipped above");
                Request::Delete { path: format!("{base}/{node}"), version: -1 }
            }
            Step::Produce => {
                let path = format!("{base}/{}item-", self.protected_prefix(self.made));
                create(path, Some(self.payload()), 2)
            }
            Step::Read { item } => {
                Request::GetData { path: format!("{base}/{item}"), watch: false }
            }
            Step::Take { item, version, .. } => {
                Request::Delete { path: format!("{base}/{item}"), version: *version }
            }
            Step::Rest { .. } | Step::Wait { .. } | Step::Hold { .. } => return None,
        };
        self.awaiting = Some(Awaiting::Step);
        Some(request)
    }

    /// Reacts to what the client heard; new beliefs go to `notes`.
    pub fn on(
        &mut self,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        input: Input,
        notes: &mut Vec<RecipeEvent>,
    ) {
        match input {
            Input::Reply { outcome, .. } => self.on_reply(now, rng, outcome, notes),
            Input::Watch(event) => {
                if let Step::Wait { on, .. } = &self.step {
                    if *on == event.path {
                        self.step = Step::List;
                    }
                }
            }
            Input::Disconnected => self.on_disconnected(notes),
            Input::SessionExpired => self.on_session_expired(notes),
        }
    }

    fn on_reply(
        &mut self,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        outcome: &OpOutcome,
        notes: &mut Vec<RecipeEvent>,
    ) {
        let Some(awaiting) = self.awaiting.take() else { return };
        let code = match outcome {
            OpOutcome::Ok { .. } => 0,
            OpOutcome::Fail { code, .. } => *code,
            OpOutcome::Pending | OpOutcome::Unknown(_) => return,
        };
        if code == ErrorCode::SessionExpired.code() {
            return; // the session is gone: SessionExpired follows
        }
        if let Awaiting::Ghost(ghost) = awaiting {
            self.ghosts.retain(|g| *g != ghost);
            return;
        }
        let response = match outcome {
            OpOutcome::Ok { response, .. } => Some(response),
            _ => None,
        };
        let no_node = code == ErrorCode::NoNode.code();
        match self.step.clone() {
            Step::Setup(level) => {
                if code == 0 || code == ErrorCode::NodeExists.code() {
                    self.step = if level == 0 { Step::Setup(1) } else { self.first_step() };
                }
            }
            Step::Join => match response {
                Some(Response::Create { path } | Response::Create2 { path, .. }) => {
                    self.node = Some(name_of(path).to_string());
                    self.step = Step::List;
                }
                _ if no_node => self.step = Step::Setup(0),
                _ => self.step = self.rest(now, rng, self.hold_mean_ms / 2),
            },
            Step::Find | Step::List => match response {
                Some(
                    Response::GetChildren { children } | Response::GetChildren2 { children, .. },
                ) => self.on_children(now, rng, children, notes),
                _ if no_node => self.step = Step::Setup(0),
                _ => {}
            },
            Step::Watch { pred } => {
                self.step = if code == 0 {
                    Step::Wait { on: pred, until: wait_until(now, rng) }
                } else {
                    Step::List
                };
            }
            Step::Leave => {
                if code == 0 || no_node {
                    self.node = None;
                    self.step = self.after_leave(now, rng);
                }
            }
            Step::Produce => match response {
                Some(Response::Create { path } | Response::Create2 { path, .. }) => {
                    notes.push(RecipeEvent::Produced {
                        path: path.clone(),
                        payload: self.payload(),
                    });
                    self.made += 1;
                    self.step = self.rest(now, rng, self.hold_mean_ms);
                }
                _ if no_node => self.step = Step::Setup(0),
                _ => self.step = self.rest(now, rng, self.hold_mean_ms),
            },
            Step::Read { item } => match response {
                Some(Response::GetData { data, stat }) => {
                    let payload = data.clone().unwrap_or_default();
                    self.step = Step::Take { item, payload, version: stat.version };
                }
                _ => self.step = self.next_item(now, rng),
            },
            Step::Take { item, payload, .. } => {
                if code == 0 {
                    let path = format!("{}/{item}", self.role.base());
                    notes.push(RecipeEvent::Consumed { path, payload });
                    self.batch.clear();
                    self.step = self.rest(now, rng, self.hold_mean_ms / 4);
                } else {
                    self.step = self.next_item(now, rng);
                }
            }
            Step::Rest { .. } | Step::Wait { .. } | Step::Hold { .. } => {}
        }
    }

    /// A listing of the role's directory arrived.
    fn on_children(
        &mut self,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        children: &[String],
        notes: &mut Vec<RecipeEvent>,
    ) {
        let mut ordered: Vec<&String> = children.iter().filter(|c| sequence(c).is_some()).collect();
        ordered.sort_by_key(|c| sequence(c));
        match self.role {
            Role::Producer => {
                let current = self.protected_prefix(self.made);
                match ordered.iter().find(|c| c.starts_with(&current)) {
                    Some(found) => {
                        let path = format!("{}/{found}", self.role.base());
                        notes.push(RecipeEvent::Produced { path, payload: self.payload() });
                        self.made += 1;
                        self.step = self.rest(now, rng, self.hold_mean_ms);
                    }
                    None => self.step = Step::Produce,
                }
            }
            Role::Consumer => {
                self.batch = ordered.into_iter().cloned().collect();
                self.step = self.next_item(now, rng);
            }
            Role::Lock | Role::Election => {
                if self.node.is_none() && self.step == Step::Find {
                    let current = self.protected_prefix(self.made);
                    self.node =
                        ordered.iter().find(|c| c.starts_with(&current)).map(|c| c.to_string());
                }
                let ours = format!("_c_{}-", self.client);
                self.ghosts = children
                    .iter()
                    .filter(|c| c.starts_with(&ours) && Some(*c) != self.node.as_ref())
                    .cloned()
                    .collect();
                if !self.ghosts.is_empty() {
                    self.step = Step::List; // delete them first, then look again
                    return;
                }
                let Some(node) = self.node.clone() else {
                    self.step = Step::Join;
                    return;
                };
                match ordered.iter().position(|c| **c == node) {
                    None => {
                        // Our node is gone (our session lost it): start a new attempt.
                        self.node = None;
                        self.step = Step::Join;
                    }
                    Some(0) => {
                        let mean =
                            self.hold_mean_ms * if self.role == Role::Election { 2 } else { 1 };
                        let hold = rng::exponential(rng, mean * 1_000).min(5 * mean * 1_000);
                        self.step = Step::Hold { until: now.plus_us(hold) };
                        notes.push(RecipeEvent::Acquired { node });
                    }
                    Some(at) => {
                        let pred = format!("{}/{}", self.role.base(), ordered[at - 1]);
                        self.step = Step::Watch { pred };
                    }
                }
            }
        }
    }

    fn on_disconnected(&mut self, notes: &mut Vec<RecipeEvent>) {
        let in_flight = self.awaiting.take() == Some(Awaiting::Step);
        if let Step::Hold { .. } = self.step {
            let node = self.node.clone().unwrap_or_default();
            notes.push(RecipeEvent::Released { node, why: Loss::Disconnected });
        }
        self.step = match (self.role, self.step.clone()) {
            (_, Step::Setup(level)) => Step::Setup(level),
            // The create may have happened: find it by its protected name.
            (Role::Lock | Role::Election, Step::Join) if in_flight => Step::Find,
            (Role::Producer, Step::Produce) if in_flight => Step::Find,
            (Role::Lock | Role::Election, Step::Find) => Step::Find,
            // LeaderLatch.reset: a candidate that lost its connection starts over.
            (Role::Election, _) if self.node.is_some() => Step::Leave,
            (Role::Lock, Step::Leave) => Step::Leave,
            (Role::Lock | Role::Election, Step::Rest { until }) => Step::Rest { until },
            // Waiters lost their watch, holders their certainty: look again.
            (Role::Lock | Role::Election, _) => Step::List,
            (Role::Producer, step) => step,
            // A take whose outcome is unknown is given up (at most once, as in Curator).
            (Role::Consumer, _) => Step::List,
        };
        self.batch.clear();
    }

    fn on_session_expired(&mut self, notes: &mut Vec<RecipeEvent>) {
        let in_flight = self.awaiting.take() == Some(Awaiting::Step);
        if let Step::Hold { .. } = self.step {
            let node = self.node.clone().unwrap_or_default();
            notes.push(RecipeEvent::Released { node, why: Loss::SessionExpired });
        }
        // Every ephemeral of the session is gone with it.
        self.node = None;
        self.ghosts.clear();
        self.batch.clear();
        self.step = match (self.role, self.step.clone()) {
            (_, Step::Setup(level)) => Step::Setup(level),
            (Role::Lock | Role::Election, _) => Step::Join,
            // A persistent item may have been created before the session went.
            (Role::Producer, Step::Produce) if in_flight => Step::Find,
            (Role::Producer, step) => step,
            (Role::Consumer, _) => Step::List,
        };
    }

    fn first_step(&self) -> Step {
        match self.role {
            Role::Lock | Role::Election => Step::Join,
            Role::Producer => Step::Produce,
            Role::Consumer => Step::List,
        }
    }

    fn after_rest(&self) -> Step {
        self.first_step()
    }

    fn after_leave(&self, now: SimTime, rng: &mut ChaCha8Rng) -> Step {
        match self.role {
            Role::Election => Step::Join,
            _ => self.rest(now, rng, self.hold_mean_ms / 2),
        }
    }

    fn rest(&self, now: SimTime, rng: &mut ChaCha8Rng, mean_ms: u64) -> Step {
        let pause = rng::exponential(rng, mean_ms * 1_000).min(5 * mean_ms * 1_000);
        Step::Rest { until: now.plus_us(pause) }
    }

    /// Consumer: the next item of the listing, or wait for the queue to change.
    fn next_item(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Step {
        match self.batch.pop_front() {
            Some(item) => Step::Read { item },
            None => Step::Wait { on: self.role.base().to_string(), until: wait_until(now, rng) },
        }
    }

    /// Curator's protected name, `_c_<id>-`, with the client and attempt as the id.
    fn protected_prefix(&self, attempt: u64) -> String {
        format!("_c_{}-{attempt}-", self.client)
    }

    /// Producer: the payload of the current item.
    fn payload(&self) -> Bytes {
        Bytes::from(format!("{}-{}", self.client, self.made))
    }
}

fn create(path: String, data: Option<Bytes>, flags: i32) -> Request {
    Request::Create(
        CreateKind::Create,
        CreateRequest { path, data, acl: Acl::open_unsafe(), flags, ttl: None },
    )
}

fn wait_until(now: SimTime, rng: &mut ChaCha8Rng) -> SimTime {
    now.plus_ms(rng::between(rng, WAIT_MS.0, WAIT_MS.1))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::options::Options;

    #[test]
    fn sequence_numbers_are_the_last_ten_digits() {
        assert_eq!(sequence("_c_c3-17-lock-0000000042"), Some(42));
        assert_eq!(sequence("item-2147483647"), Some(2_147_483_647));
        assert_eq!(sequence("lock-00000x0042"), None);
        assert_eq!(sequence("short"), None);
        assert_eq!(sequence("ünïcödé-00"), None);
    }

    #[test]
    fn the_swarm_adds_recipe_clients_after_the_mix_clients() {
        let options: Vec<Options> = (0..64).map(Options::from_seed).collect();
        let with: Vec<&Options> =
            options.iter().filter(|o| !o.workload.recipes.roles.is_empty()).collect();
        assert!(!with.is_empty() && with.len() < options.len(), "{} of 64", with.len());
        for o in with {
            let roles = &o.workload.recipes.roles;
            let first_recipe = (o.clients - roles.len()) as u32;
            assert!(roles.keys().all(|c| c.0 >= first_recipe && (c.0 as usize) < o.clients));
            let has = |r: Role| roles.values().any(|x| *x == r);
            if has(Role::Producer) && !has(Role::Lock) && !has(Role::Election) {
                assert!(has(Role::Consumer), "a queue seed without a consumer: {roles:?}");
            }
        }
    }

    fn ok(response: Response) -> OpOutcome {
        OpOutcome::Ok { zxid: 1, response }
    }

    fn children(names: &[&str]) -> OpOutcome {
        ok(Response::GetChildren { children: names.iter().map(|n| n.to_string()).collect() })
    }

    /// Feeds the reply to the request `recipe` sends next; returns the request.
    fn answer(recipe: &mut Recipe, rng: &mut ChaCha8Rng, outcome: OpOutcome) -> Request {
        let mut notes = Vec::new();
        let request = recipe.next_request(SimTime::ZERO, rng, &mut notes).expect("a request");
        recipe.on(
            SimTime::ZERO,
            rng,
            Input::Reply { request: &request, outcome: &outcome },
            &mut notes,
        );
        request
    }

    fn lock_client(rng: &mut ChaCha8Rng) -> Recipe {
        let options = RecipeOptions { roles: BTreeMap::new(), hold_mean_ms: 100 };
        let mut recipe = Recipe::new(Role::Lock, ClientId(3), &options);
        answer(&mut recipe, rng, ok(Response::Create { path: ROOT.into() }));
        answer(&mut recipe, rng, ok(Response::Create { path: LOCK.into() }));
        recipe
    }

    #[test]
    fn a_lock_client_holds_only_when_lowest_and_lets_go_on_disconnect() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut recipe = lock_client(&mut rng);
        let created = ok(Response::Create { path: format!("{LOCK}/_c_c3-1-lock-0000000005") });
        let request = answer(&mut recipe, &mut rng, created);
        assert!(
            matches!(request, Request::Create(_, ref c) if c.flags == 3
            && c.path == "/recipes/lock/_c_c3-1-lock-"),
            "{request:?}"
        );
        let listing = children(&["_c_c3-1-lock-0000000005", "_c_c1-4-lock-0000000004"]);
        answer(&mut recipe, &mut rng, listing);
        assert!(!recipe.holds());
        let watch = answer(&mut recipe, &mut rng, ok(Response::Stat(Default::default())));
        assert_eq!(
            watch,
            Request::Exists { path: format!("{LOCK}/_c_c1-4-lock-0000000004"), watch: true }
        );
        let mut notes = Vec::new();
        let deleted = WatcherEvent {
            event_type: 2,
            state: 3,
            path: format!("{LOCK}/_c_c1-4-lock-0000000004"),
        };
        recipe.on(SimTime::ZERO, &mut rng, Input::Watch(&deleted), &mut notes);
        answer(&mut recipe, &mut rng, children(&["_c_c3-1-lock-0000000005"]));
        assert!(recipe.holds());
        recipe.on(SimTime::ZERO, &mut rng, Input::Disconnected, &mut notes);
        assert!(!recipe.holds());
        assert!(matches!(&notes[..], [RecipeEvent::Released { why: Loss::Disconnected, .. }]));
    }

    #[test]
    fn a_lost_create_is_found_by_its_protected_name_and_strays_are_deleted() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut recipe = lock_client(&mut rng);
        let mut notes = Vec::new();
        let create = recipe.next_request(SimTime::ZERO, &mut rng, &mut notes).expect("create");
        assert!(matches!(create, Request::Create(..)));
        recipe.on(SimTime::ZERO, &mut rng, Input::Disconnected, &mut notes);
        // After the reconnect it lists, adopts its node, and deletes a stray one of its own.
        let listing = children(&["_c_c3-0-lock-0000000001", "_c_c3-1-lock-0000000002"]);
        let find = answer(&mut recipe, &mut rng, listing);
        assert!(matches!(find, Request::GetChildren { .. }));
        let stray = answer(&mut recipe, &mut rng, ok(Response::Empty));
        assert_eq!(
            stray,
            Request::Delete { path: format!("{LOCK}/_c_c3-0-lock-0000000001"), version: -1 }
        );
        answer(&mut recipe, &mut rng, children(&["_c_c3-1-lock-0000000002"]));
        assert!(recipe.holds(), "it adopted the node its lost create made");
        assert!(matches!(&notes[..], []), "{notes:?}");
    }

    #[test]
    fn a_consumer_that_loses_a_race_tries_the_next_item() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let options = RecipeOptions { roles: BTreeMap::new(), hold_mean_ms: 100 };
        let mut recipe = Recipe::new(Role::Consumer, ClientId(4), &options);
        answer(&mut recipe, &mut rng, ok(Response::Create { path: ROOT.into() }));
        answer(&mut recipe, &mut rng, ok(Response::Create { path: QUEUE.into() }));
        answer(
            &mut recipe,
            &mut rng,
            children(&["_c_c1-0-item-0000000009", "_c_c2-0-item-0000000003"]),
        );
        let no_node = OpOutcome::Fail { zxid: 1, code: ErrorCode::NoNode.code() };
        let read = answer(&mut recipe, &mut rng, no_node);
        assert_eq!(
            read,
            Request::GetData { path: format!("{QUEUE}/_c_c2-0-item-0000000003"), watch: false }
        );
        let stat = ensemble::wire::types::Stat { version: 0, ..Default::default() };
        let data = ok(Response::GetData { data: Some(Bytes::from_static(b"c1-0")), stat });
        answer(&mut recipe, &mut rng, data);
        let mut notes = Vec::new();
        let take = recipe.next_request(SimTime::ZERO, &mut rng, &mut notes).expect("delete");
        assert_eq!(
            take,
            Request::Delete { path: format!("{QUEUE}/_c_c1-0-item-0000000009"), version: 0 }
        );
        // Its outcome is unknown: the item is given up, not claimed.
        recipe.on(SimTime::ZERO, &mut rng, Input::Disconnected, &mut notes);
        assert!(notes.is_empty());
    }
}
