//! A small deterministic cluster of `Node`s for testing Zab inside the crate: FIFO links that
//! break on crash, a disk per node that loses unsynced writes on crash, and a client speaking
//! the real wire codec. The full fault-injecting simulator lives in `ensemble-sim`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ::core::net::SocketAddr;

use bytes::Bytes;

use crate::core::config::NodeConfig;
use crate::core::ids::{ConnId, ServerId, WriteId, Zxid};
use crate::core::io::{DurableWrite, Effect, Input};
use crate::core::report::Mode;
use crate::core::time::Now;
use crate::core::txn::Txn;
use crate::core::zab::{Membership, PeerRole};
use crate::core::Node;
use crate::wire;
use crate::wire::proto::*;
use crate::wire::types::Acl;

thread_local! {
    /// tickTime of the clusters this test thread builds.
    static TICK_MS: std::cell::Cell<u32> = const { std::cell::Cell::new(100) };
}

#[derive(Default, Clone)]
struct Disk {
    snapshot: Option<(Zxid, Bytes)>,
    txns: Vec<Txn>,
    accepted: u32,
    current: u32,
}

impl Disk {
    fn apply(&mut self, write: &DurableWrite) {
        match write {
            DurableWrite::Append(txn) => self.txns.push(txn.clone()),
            DurableWrite::Snapshot { zxid, image, .. } => {
                self.snapshot = Some((*zxid, image.encode()))
            }
            DurableWrite::Truncate { after } => self.txns.retain(|t| t.zxid <= *after),
            DurableWrite::AcceptedEpoch(e) => self.accepted = *e,
            DurableWrite::CurrentEpoch(e) => self.current = *e,
        }
    }
}

struct Cluster {
    members: Membership,
    nodes: BTreeMap<ServerId, Option<Node>>,
    disks: BTreeMap<ServerId, Disk>,
    unsynced: BTreeMap<ServerId, Vec<(WriteId, DurableWrite)>>,
    queue: VecDeque<(ServerId, Input)>,
    /// Frames each node sent to each client connection.
    client_frames: BTreeMap<(ServerId, ConnId), Vec<Bytes>>,
    closed: BTreeSet<(ServerId, ConnId)>,
    /// Pairs whose link is cut (both directions).
    cut: BTreeSet<(ServerId, ServerId)>,
    /// Per-node clock: (offset ms, extra ms per simulated second).
    skew: BTreeMap<ServerId, (i64, i64)>,
    now: Now,
}

fn config(id: u64, members: &Membership) -> NodeConfig {
    NodeConfig {
        server_id: ServerId(id),
        tick_time_ms: TICK_MS.with(|t| t.get()),
        session_timeout_min_ms: 400,
        session_timeout_max_ms: 10_000,
        membership: members.clone(),
        init_limit: 10,
        sync_limit: 5,
        rng_seed: id,
        ..NodeConfig::standalone()
    }
}

impl Cluster {
    fn new(voters: &[u64], observers: &[u64]) -> Cluster {
        let mut members = Membership::default();
        for v in voters {
            members.members.insert(ServerId(*v), PeerRole::Participant);
        }
        for o in observers {
            members.members.insert(ServerId(*o), PeerRole::Observer);
        }
        let now = Now { mono_ms: 0, wall_ms: 1_700_000_000_000 };
        let mut cluster = Cluster {
            members: members.clone(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            unsynced: BTreeMap::new(),
            queue: VecDeque::new(),
            client_frames: BTreeMap::new(),
            closed: BTreeSet::new(),
            cut: BTreeSet::new(),
            skew: BTreeMap::new(),
            now,
        };
        for id in members.members.keys() {
            cluster.nodes.insert(*id, Some(Node::new(config(id.0, &members), now)));
            cluster.disks.insert(*id, Disk::default());
        }
        for id in members.members.keys() {
            cluster.queue.push_back((*id, Input::Tick));
        }
        cluster
    }

    fn linked(&self, a: ServerId, b: ServerId) -> bool {
        let up = |id: ServerId| self.nodes.get(&id).is_some_and(|n| n.is_some());
        up(a) && up(b) && !self.cut.contains(&(a, b)) && !self.cut.contains(&(b, a))
    }

    fn step(&mut self, id: ServerId, input: Input) {
        let now = self.local_now(id);
        let Some(Some(node)) = self.nodes.get_mut(&id) else { return };
        let mut effects = Vec::new();
        node.step(now, input, &mut effects);
        node.check_invariants();
        node.check_deep_invariants();
        for effect in effects {
            match effect {
                Effect::SendPeer { to, msg } => {
                    if self.linked(id, to) {
                        self.queue.push_back((to, Input::PeerMessage { from: id, msg }));
                    }
                }
                Effect::Write { id: write, write: w } => {
                    self.unsynced.entry(id).or_default().push((write, w));
                }
                Effect::SendClient { conn, frame } => {
                    self.client_frames.entry((id, conn)).or_default().push(frame);
                }
                Effect::CloseClient { conn } => {
                    self.closed.insert((id, conn));
                }
            }
        }
    }

    /// A node's own clock: true time shifted by its offset and drift (never backwards).
    fn local_now(&self, id: ServerId) -> Now {
        let (offset, drift_per_s) = self.skew.get(&id).copied().unwrap_or((0, 0));
        let drift = self.now.mono_ms as i64 * drift_per_s / 1_000;
        let shift = offset + drift;
        Now {
            mono_ms: (self.now.mono_ms as i64 + shift).max(0) as u64,
            wall_ms: self.now.wall_ms + shift,
        }
    }

    /// Makes every node's pending writes durable.
    fn sync_disks(&mut self) {
        let ids: Vec<ServerId> = self.unsynced.keys().copied().collect();
        for id in ids {
            let writes = self.unsynced.remove(&id).unwrap_or_default();
            let Some(last) = writes.last().map(|(w, _)| *w) else { continue };
            let disk = self.disks.entry(id).or_default();
            for (_, write) in &writes {
                disk.apply(write);
            }
            self.queue.push_back((id, Input::Persisted { up_to: last }));
        }
    }

    /// Runs for `ms` of virtual time in 10 ms steps, delivering everything and syncing disks.
    fn run(&mut self, ms: u64) {
        let end = self.now.mono_ms + ms;
        while self.now.mono_ms < end {
            self.settle();
            self.now = self.now.plus_ms(10);
            let due: Vec<ServerId> = self
                .nodes
                .iter()
                .filter_map(|(id, n)| {
                    let local = self.local_now(*id).mono_ms;
                    n.as_ref().filter(|n| n.deadline().is_some_and(|d| d <= local)).map(|_| *id)
                })
                .collect();
            for id in due {
                self.step(id, Input::Tick);
                // A deadline that stays in the past would make a driver spin on ticks.
                let local = self.local_now(id).mono_ms;
                if let Some(Some(node)) = self.nodes.get(&id) {
                    let deadline = node.deadline().unwrap_or(u64::MAX);
                    assert!(deadline > local, "node {id} wants a tick at {deadline} <= {local}");
                }
            }
        }
    }

    /// Delivers everything queued and makes every write durable, without advancing time.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if let Some((id, input)) = self.queue.pop_front() {
                self.step(id, input);
                continue;
            }
            if self.unsynced.values().all(|w| w.is_empty()) {
                break;
            }
            self.sync_disks();
        }
    }

    /// Queues a connection to `server` and its ConnectRequest.
    fn connect_with(&mut self, server: u64, conn: u64, request: &ConnectRequest) -> ConnId {
        let (sid, conn) = (ServerId(server), ConnId(conn));
        let addr: SocketAddr = "127.0.0.1:5000".parse().expect("literal");
        self.queue.push_back((sid, Input::ClientConnected { conn, addr, auth: Vec::new() }));
        let frame = wire::encode_connect_request(request).slice(4..);
        self.queue.push_back((sid, Input::ClientFrame { conn, frame }));
        conn
    }

    /// The ConnectResponse `server` sent on `conn`, if any.
    fn connect_response(&self, server: u64, conn: ConnId) -> Option<ConnectResponse> {
        let frames = self.client_frames.get(&(ServerId(server), conn))?;
        wire::decode_connect_response(&frames.first()?.slice(4..)).ok()
    }

    fn crash(&mut self, id: u64) {
        let id = ServerId(id);
        self.nodes.insert(id, None);
        self.unsynced.remove(&id);
        self.queue.retain(|(to, _)| *to != id);
        let others: Vec<ServerId> = self.members.others(id).collect();
        for other in others {
            self.queue.push_back((other, Input::PeerLinkDown { peer: id }));
        }
    }

    fn restart(&mut self, id: u64) {
        let sid = ServerId(id);
        let disk = self.disks.get(&sid).cloned().unwrap_or_default();
        let snapshot_zxid = disk.snapshot.as_ref().map(|(z, _)| *z).unwrap_or_default();
        let body = disk.snapshot.as_ref().map(|(_, b)| b.clone());
        let txns: Vec<Txn> = disk.txns.iter().filter(|t| t.zxid > snapshot_zxid).cloned().collect();
        let node = Node::recover(config(id, &self.members), self.now, body.as_deref(), txns)
            .expect("recovery")
            .with_epochs(disk.accepted, disk.current);
        self.nodes.insert(sid, Some(node));
        self.queue.push_back((sid, Input::Tick));
        let others: Vec<ServerId> = self.members.others(sid).collect();
        for other in others {
            if self.linked(sid, other) {
                self.queue.push_back((other, Input::PeerLinkUp { peer: sid }));
                self.queue.push_back((sid, Input::PeerLinkUp { peer: other }));
            }
        }
    }

    fn partition(&mut self, a: u64, b: u64) {
        let (a, b) = (ServerId(a), ServerId(b));
        self.cut.insert((a, b));
        self.queue.push_back((a, Input::PeerLinkDown { peer: b }));
        self.queue.push_back((b, Input::PeerLinkDown { peer: a }));
    }

    fn heal(&mut self) {
        let cut: Vec<(ServerId, ServerId)> = std::mem::take(&mut self.cut).into_iter().collect();
        for (a, b) in cut {
            if self.linked(a, b) {
                self.queue.push_back((a, Input::PeerLinkUp { peer: b }));
                self.queue.push_back((b, Input::PeerLinkUp { peer: a }));
            }
        }
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes.get(&ServerId(id)).and_then(|n| n.as_ref()).expect("node is up")
    }

    fn leaders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| {
                n.as_ref().filter(|n| n.mode() == Mode::Leader && n.is_serving()).map(|_| id.0)
            })
            .collect()
    }

    /// Opens a session on `server` and returns the connection.
    fn connect(&mut self, server: u64, conn: u64) -> ConnId {
        let (sid, conn) = (ServerId(server), ConnId(conn));
        let addr: SocketAddr = "127.0.0.1:5000".parse().expect("literal");
        self.queue.push_back((sid, Input::ClientConnected { conn, addr, auth: Vec::new() }));
        let request = ConnectRequest::new_session(5_000);
        let frame = wire::encode_connect_request(&request).slice(4..);
        self.queue.push_back((sid, Input::ClientFrame { conn, frame }));
        self.run(200);
        conn
    }

    fn send(&mut self, server: u64, conn: ConnId, xid: i32, request: &Request) {
        let frame = wire::encode_request(xid, request).slice(4..);
        self.queue.push_back((ServerId(server), Input::ClientFrame { conn, frame }));
    }

    /// The reply header the client on `conn` got for `xid`, if any.
    fn reply(&self, server: u64, conn: ConnId, xid: i32) -> Option<(ReplyHeader, Bytes)> {
        let frames = self.client_frames.get(&(ServerId(server), conn))?;
        frames.iter().skip(1).find_map(|f| {
            let (h, body) = wire::decode_reply_header(&f.slice(4..)).ok()?;
            (h.xid == xid).then_some((h, body))
        })
    }
}

fn create(path: &str) -> Request {
    Request::Create(
        CreateKind::Create,
        CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"v")),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    )
}

#[test]
fn three_members_elect_one_leader_and_replicate_a_write_made_through_a_follower() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    assert_eq!(c.leaders(), vec![3], "the highest id wins among equal histories");
    for id in [1, 2] {
        assert_eq!(c.node(id).mode(), Mode::Follower);
        assert!(c.node(id).is_serving());
    }
    let conn = c.connect(1, 1);
    c.send(1, conn, 1, &create("/a"));
    c.run(500);
    let (header, _) = c.reply(1, conn, 1).expect("the follower answered");
    assert_eq!(header.err, 0);
    for id in [1, 2, 3] {
        assert!(c.node(id).tree().stat("/a").is_some(), "member {id} has /a");
        assert_eq!(c.node(id).tree().digest(), c.node(3).tree().digest());
    }
}

#[test]
fn an_acknowledged_write_survives_the_leader_crashing_and_the_old_leader_rejoins() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let conn = c.connect(1, 1);
    for i in 0..5 {
        c.send(1, conn, i + 1, &create(&format!("/n{i}")));
    }
    c.run(500);
    assert!((1..=5).all(|x| c.reply(1, conn, x).is_some_and(|(h, _)| h.err == 0)));
    c.crash(3);
    c.run(3_000);
    assert_eq!(c.leaders(), vec![2]);
    for i in 0..5 {
        assert!(c.node(2).tree().stat(&format!("/n{i}")).is_some());
    }
    let conn = c.connect(2, 2);
    c.send(2, conn, 1, &create("/after"));
    c.run(500);
    assert_eq!(c.reply(2, conn, 1).map(|(h, _)| h.err), Some(0));
    c.restart(3);
    c.run(3_000);
    assert_eq!(c.node(3).mode(), Mode::Follower, "the old leader follows the new one");
    assert!(c.node(3).is_serving());
    assert_eq!(c.node(3).tree().digest(), c.node(2).tree().digest());
    assert!(c.node(3).tree().stat("/after").is_some());
}

#[test]
fn a_proposal_only_the_crashed_leader_logged_is_truncated_when_it_rejoins() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let conn = c.connect(3, 1);
    c.send(3, conn, 1, &create("/committed"));
    c.run(500);
    // Cut the leader off, let it log a proposal nobody else sees, make that durable, crash it.
    c.partition(3, 1);
    c.partition(3, 2);
    c.send(3, conn, 2, &create("/lost"));
    for _ in 0..10 {
        if let Some((id, input)) = c.queue.pop_front() {
            c.step(id, input);
        }
    }
    c.sync_disks();
    let divergent = c.disks[&ServerId(3)].txns.last().map(|t| t.zxid).expect("logged");
    assert!(c.reply(3, conn, 2).is_none(), "never acknowledged");
    c.crash(3);
    c.heal();
    c.run(3_000);
    assert_eq!(c.leaders(), vec![2]);
    let conn2 = c.connect(2, 2);
    c.send(2, conn2, 1, &create("/new-epoch"));
    c.run(500);
    c.restart(3);
    c.run(3_000);
    let node3 = c.node(3);
    assert!(node3.is_serving());
    assert!(node3.tree().stat("/lost").is_none(), "the divergent txn {divergent} is gone");
    assert!(node3.tree().stat("/committed").is_some());
    assert!(node3.tree().stat("/new-epoch").is_some());
    assert_eq!(node3.tree().digest(), c.node(2).tree().digest());
}

#[test]
fn a_partitioned_leader_steps_down_and_the_majority_elects_a_new_one() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    c.partition(3, 1);
    c.partition(3, 2);
    c.run(3_000);
    assert_eq!(c.node(3).mode(), Mode::Looking, "a leader without a quorum stops serving");
    assert_eq!(c.leaders(), vec![2]);
    c.heal();
    c.run(3_000);
    assert_eq!(c.node(3).mode(), Mode::Follower);
    assert!(c.node(3).is_serving());
}

#[test]
fn observers_learn_committed_txns_without_voting() {
    let mut c = Cluster::new(&[1, 2, 3], &[4]);
    c.run(2_000);
    assert_eq!(c.node(4).mode(), Mode::Observer);
    let conn = c.connect(4, 1);
    c.send(4, conn, 1, &create("/via-observer"));
    c.run(500);
    assert_eq!(c.reply(4, conn, 1).map(|(h, _)| h.err), Some(0));
    for id in [1, 2, 3, 4] {
        assert!(c.node(id).tree().stat("/via-observer").is_some());
    }
    // Two voters down: no quorum, even with the observer.
    c.crash(1);
    c.crash(2);
    c.run(2_000);
    assert!(c.leaders().is_empty());
}

#[test]
fn a_member_rejoins_while_writes_keep_flowing() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let conn = c.connect(3, 1);
    c.crash(1);
    let mut xid = 0;
    for round in 0..40 {
        xid += 1;
        c.send(3, conn, xid, &create(&format!("/w{round}")));
        if round == 5 {
            c.restart(1);
        }
        c.run(50);
    }
    c.run(1_000);
    assert!(c.node(1).is_serving(), "member 1 rejoined although every member's zxid kept moving");
    assert_eq!(c.node(1).tree().digest(), c.node(3).tree().digest());
    assert!((1..=xid).all(|x| c.reply(3, conn, x).is_some_and(|(h, _)| h.err == 0)));
}

#[test]
fn a_clock_skewed_follower_neither_breaks_the_ensemble_nor_expires_sessions() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    // Member 1 runs 30 s ahead and its clock runs 20% fast.
    c.skew.insert(ServerId(1), (30_000, 200));
    c.run(2_000);
    assert!(c.node(1).is_serving());
    let conn = c.connect(1, 1);
    let eph = CreateRequest {
        path: "/eph".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 1,
        ttl: None,
    };
    c.send(1, conn, 1, &Request::Create(CreateKind::Create, eph));
    // The client keeps pinging member 1 for far longer than its session timeout.
    for _ in 0..40 {
        c.send(1, conn, -2, &Request::Ping);
        c.run(500);
    }
    for id in [1, 2, 3] {
        let node = c.node(id);
        assert!(node.tree().stat("/eph").is_some(), "a pinging session keeps /eph on {id}");
    }
    c.send(1, conn, 2, &create("/from-skewed"));
    c.run(500);
    assert_eq!(c.reply(1, conn, 2).map(|(h, _)| h.err), Some(0));
    assert_eq!(c.node(1).tree().digest(), c.node(2).tree().digest());
}

#[test]
fn a_session_moves_between_members_and_keeps_its_ephemerals() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let conn = c.connect(1, 1);
    let response = {
        let frames = c.client_frames.get(&(ServerId(1), conn)).expect("frames");
        wire::decode_connect_response(&frames[0].slice(4..)).expect("connect response")
    };
    let mine = CreateRequest {
        path: "/mine".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 1,
        ttl: None,
    };
    c.send(1, conn, 1, &Request::Create(CreateKind::Create, mine));
    c.run(300);
    assert_eq!(c.reply(1, conn, 1).map(|(h, _)| h.err), Some(0));
    c.queue.push_back((ServerId(1), Input::ClientClosed { conn }));
    // The client resumes the same session on member 2.
    let moved = ConnId(2);
    let addr: SocketAddr = "127.0.0.1:5001".parse().expect("literal");
    c.queue
        .push_back((ServerId(2), Input::ClientConnected { conn: moved, addr, auth: Vec::new() }));
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: c.node(1).zxid_applied().to_wire(),
        timeout_ms: 5_000,
        session_id: response.session_id,
        password: response.password.clone(),
        read_only: Some(false),
    };
    let frame = wire::encode_connect_request(&request).slice(4..);
    c.queue.push_back((ServerId(2), Input::ClientFrame { conn: moved, frame }));
    c.run(300);
    let resumed = c.client_frames.get(&(ServerId(2), moved)).expect("member 2 answered");
    let resumed = wire::decode_connect_response(&resumed[0].slice(4..)).expect("response");
    assert_eq!(resumed.session_id, response.session_id, "same session on another member");
    // Long past the timeout, with pings to member 2 only, the ephemeral is still there.
    for _ in 0..30 {
        c.send(2, moved, -2, &Request::Ping);
        c.run(500);
    }
    assert!(c.node(3).tree().stat("/mine").is_some());
    c.send(2, moved, 2, &Request::CloseSession);
    c.run(500);
    for id in [1, 2, 3] {
        assert!(c.node(id).tree().stat("/mine").is_none(), "closed on every member ({id})");
    }
}

#[test]
fn a_write_forwarded_before_its_session_expired_fails_when_it_arrives_after() {
    // ZOOKEEPER-1208 (found by the simulator, seed 0x81): a follower forwards an ephemeral
    // create, the session expires before the leader prepares it; the leader must not create a
    // node that no close will ever delete.
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let leader = c.leaders()[0];
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).expect("a follower");
    let conn = c.connect(follower, 1);
    let session = {
        let frames = c.client_frames.get(&(ServerId(follower), conn)).expect("frames");
        let response = wire::decode_connect_response(&frames[0].slice(4..)).expect("response");
        crate::core::ids::SessionId(response.session_id)
    };
    // No pings: the session expires and its close commits everywhere.
    c.run(8_000);
    assert!(c.node(leader).tree().zxid_applied() > Zxid::ZERO);
    let ephemeral = CreateRequest {
        path: "/late".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 1,
        ttl: None,
    };
    let frame = wire::encode_request(7, &Request::Create(CreateKind::Create, ephemeral)).slice(4..);
    let op = crate::core::zab::Forwarded::Write { frame, ids: Vec::new() };
    let msg = crate::core::zab::PeerMsg::Request { session, cxid: 7, op };
    c.queue.push_back((ServerId(leader), Input::PeerMessage { from: ServerId(follower), msg }));
    c.run(500);
    for id in [1, 2, 3] {
        assert!(c.node(id).tree().stat("/late").is_none(), "no orphan ephemeral on {id}");
    }
    let logged =
        c.disks[&ServerId(leader)].txns.iter().find(|t| t.session == session && t.cxid == 7);
    assert!(
        matches!(logged.map(|t| &t.op), Some(crate::core::txn::TxnOp::Error { code })
            if *code == crate::wire::types::ErrorCode::SessionExpired.code()),
        "{logged:?}"
    );
}

#[test]
fn with_zookeepers_default_tick_no_member_spins_and_writes_commit() {
    TICK_MS.with(|t| t.set(2_000));
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(20_000);
    assert_eq!(c.leaders().len(), 1);
    let follower = [1, 2, 3].into_iter().find(|id| c.node(*id).mode() == Mode::Follower);
    let follower = follower.expect("a follower");
    let conn = c.connect(follower, 1);
    c.send(follower, conn, 1, &create("/slow-tick"));
    c.run(1_000);
    assert_eq!(c.reply(follower, conn, 1).map(|(h, _)| h.err), Some(0));
    c.run(30_000);
    assert_eq!(c.leaders().len(), 1, "no re-election while everyone is healthy");
}

/// The serving followers of a three-member ensemble.
fn followers(c: &Cluster) -> Vec<u64> {
    [1, 2, 3]
        .into_iter()
        .filter(|id| c.node(*id).mode() == Mode::Follower && c.node(*id).is_serving())
        .collect()
}

#[test]
fn a_follower_that_left_its_leader_on_a_link_that_stayed_up_rejoins_it() {
    // Sim seed 0x4ca: a learner that leaves its role (here its clock leaps past syncLimit)
    // and comes back to the same leader over the same link sends a fresh FOLLOWERINFO. The
    // leader used to take it for a resent copy and ignore it, pinging the learner as if it
    // were still synced; the learner never rejoined.
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let leader = c.leaders();
    assert_eq!(leader.len(), 1);
    let follower = followers(&c)[0];
    let conn = c.connect(follower, 1);
    assert!(!c.closed.contains(&(ServerId(follower), conn)));
    c.skew.insert(ServerId(follower), (2_000, 0));
    c.run(20);
    assert!(
        c.closed.contains(&(ServerId(follower), conn)),
        "the leap sent the follower looking (it closed its clients)"
    );
    // Within two initLimits (1 s each) it is back, under the same leader.
    c.run(2_000);
    assert_eq!(c.leaders(), leader, "the leader kept its role");
    assert_eq!(c.node(follower).mode(), Mode::Follower);
    assert!(c.node(follower).is_serving(), "the follower rejoined its leader");
    let conn = c.connect(follower, 2);
    c.send(follower, conn, 1, &create("/after-rejoin"));
    c.run(500);
    assert_eq!(c.reply(follower, conn, 1).map(|(h, _)| h.err), Some(0));
}

#[test]
fn followers_stop_serving_as_soon_as_their_leader_steps_down() {
    // ZK compat: a leader that shuts down closes its learners' sockets and they look at once.
    // Our links stay up (they carry elections too), so the leader's LOOKING notification is
    // the news: a follower must not go on serving clients until its own syncLimit timeout.
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let leader = c.leaders()[0];
    let conns: Vec<(u64, ConnId)> = followers(&c)
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, c.connect(f, 10 + i as u64)))
        .collect();
    assert_eq!(conns.len(), 2);
    let on_leader = c.connect(leader, 20);
    // The leader's clock leaps past syncLimit: it finds its quorum quiet and steps down.
    c.skew.insert(ServerId(leader), (2_000, 0));
    c.run(20);
    // (It may well be elected again at once: it has the longest history.)
    assert!(c.closed.contains(&(ServerId(leader), on_leader)), "the leader stepped down");
    for (follower, conn) in conns {
        // 20 ms is far below syncLimit (500 ms): only the leader's notice explains it.
        assert!(c.closed.contains(&(ServerId(follower), conn)), "follower {follower} left at once");
    }
}

/// The first member in id order that is a serving follower.
fn a_follower(c: &Cluster) -> u64 {
    followers(c).first().copied().expect("a serving follower")
}

#[test]
fn after_the_leader_dies_the_survivors_serve_again_without_waiting_for_a_timer() {
    // Issue #10 item 5. The survivors see the leader's link go down, so its vote cannot come:
    // the election must not sit out the finalize wait for it, and nothing on the way back to
    // serving (election, discovery, sync) may wait for a tick (here ZooKeeper's 2 s). The
    // harness advances no time at all here: only messages and fsyncs.
    TICK_MS.with(|t| t.set(2_000));
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(20_000);
    let old = c.leaders();
    assert_eq!(old.len(), 1);
    let at = c.now.mono_ms;
    c.crash(old[0]);
    c.settle();
    assert_eq!(c.now.mono_ms, at);
    let new = c.leaders();
    assert_eq!(new.len(), 1, "a new leader serves at the instant the old one died");
    assert_ne!(new, old);
    let other = [1, 2, 3].into_iter().find(|id| *id != old[0] && *id != new[0]).expect("three");
    assert_eq!(c.node(other).mode(), Mode::Follower);
    assert!(c.node(other).is_serving(), "and so does the other survivor");
}

#[test]
fn a_client_that_reconnects_during_the_failover_waits_for_the_member_instead_of_being_refused() {
    // A client resuming its session on a member that is electing used to be closed at once
    // (as ZooKeeper does); it then went through every member in a millisecond and backed off
    // for longer than the whole failover (zookeeper-client: 300-400 ms). It now waits there
    // and is answered when the member serves.
    TICK_MS.with(|t| t.set(2_000));
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(20_000);
    let leader = c.leaders()[0];
    let follower = a_follower(&c);
    let first = c.connect(follower, 1);
    let session = c.connect_response(follower, first).expect("a session");
    assert_ne!(session.session_id, 0);
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 6_000,
        session_id: session.session_id,
        password: session.password.clone(),
        read_only: Some(false),
    };
    // The leader dies; the client's connection drops when the follower starts looking, and
    // its reconnect reaches the follower in the middle of the election.
    c.crash(leader);
    let second = c.connect_with(follower, 2, &request);
    // Deliver the two link-down reports and the reconnect, nothing else.
    for _ in 0..4 {
        let (id, input) = c.queue.pop_front().expect("queued");
        c.step(id, input);
    }
    assert!(c.closed.contains(&(ServerId(follower), first)), "the member left its role");
    assert!(!c.node(follower).is_serving(), "the reconnect came during the election");
    assert!(!c.closed.contains(&(ServerId(follower), second)), "refused while electing");
    c.settle();
    assert!(!c.closed.contains(&(ServerId(follower), second)), "refused during the failover");
    let resumed = c.connect_response(follower, second).expect("answered once serving");
    assert_eq!(resumed.session_id, session.session_id);
    assert!(resumed.timeout_ms > 0, "the session is still valid");
}

#[test]
fn a_waiting_connect_request_is_closed_in_time_if_the_member_does_not_serve() {
    // The wait is bounded well below the client's connect timeout (session timeout / number
    // of servers): a member that does not get to serve lets the client move on.
    let members = Cluster::new(&[1, 2, 3], &[]).members;
    let mut node = Node::new(config(1, &members), Now::default());
    let mut effects = Vec::new();
    let now = |ms| Now { mono_ms: ms, wall_ms: 0 };
    node.step(now(0), Input::Tick, &mut effects);
    assert_eq!(node.mode(), Mode::Looking);
    let addr: SocketAddr = "127.0.0.1:5000".parse().expect("literal");
    node.step(
        now(1),
        Input::ClientConnected { conn: ConnId(1), addr, auth: Vec::new() },
        &mut effects,
    );
    let frame = wire::encode_connect_request(&ConnectRequest::new_session(6_000)).slice(4..);
    node.step(now(2), Input::ClientFrame { conn: ConnId(1), frame }, &mut effects);
    let closed = |effects: &[Effect]| {
        effects.iter().any(|e| matches!(e, Effect::CloseClient { conn } if *conn == ConnId(1)))
    };
    assert!(!closed(&effects), "a member that may serve soon keeps the client");
    // 6 s / 3 servers / 2 = 1 s after the request.
    assert!(node.deadline().is_some_and(|d| d <= 1_002), "{:?}", node.deadline());
    effects.clear();
    node.step(now(1_001), Input::Tick, &mut effects);
    assert!(!closed(&effects), "closed early");
    effects.clear();
    node.step(now(1_002), Input::Tick, &mut effects);
    assert!(closed(&effects), "closed once the wait is over");
}

#[test]
fn a_member_without_a_quorum_in_reach_still_refuses_clients_at_once() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run(2_000);
    let follower = a_follower(&c);
    for other in [1, 2, 3].into_iter().filter(|id| *id != follower) {
        c.partition(follower, other);
    }
    c.settle();
    assert!(!c.node(follower).is_serving());
    let conn = c.connect_with(follower, 7, &ConnectRequest::new_session(6_000));
    c.settle();
    assert!(c.closed.contains(&(ServerId(follower), conn)), "closed at once");
    assert_eq!(c.connect_response(follower, conn), None);
}
