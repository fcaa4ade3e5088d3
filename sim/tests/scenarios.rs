//! Hand-scheduled scenarios: faults placed at exact moments instead of drawn from the seed.

use bytes::Bytes;
use ensemble::core::ids::ServerId;
use ensemble::core::io::DurableWrite;
use ensemble::core::report::Mode;
use ensemble::core::txn::TxnOp;
use ensemble::wire::proto::{CreateKind, CreateRequest, Request, Response};
use ensemble::wire::types::Acl;
use ensemble_sim::checker::Violation;
use ensemble_sim::history::{Entry, OpOutcome, UnknownReason};
use ensemble_sim::{ClientId, Options, Simulator};

const SERVER: ServerId = ServerId(0);
const CLIENT: ClientId = ClientId(0);

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

/// A calm single-node run with one connected client.
fn connected(seed: u64, tweak: impl FnOnce(&mut Options)) -> Simulator {
    let mut options = Options::manual(seed, 1);
    tweak(&mut options);
    let mut sim = Simulator::new(seed, options);
    assert!(sim.run_until(5_000, |s| s.client(CLIENT).is_live()), "the client never connected");
    sim
}

fn pending_append_of(sim: &Simulator, path: &str) -> bool {
    sim.disk(SERVER).pending().any(|(_, write)| {
        matches!(write, DurableWrite::Append(txn)
            if matches!(&txn.op, TxnOp::Create { path: p, .. } if p == path))
    })
}

fn last_outcome(sim: &Simulator) -> OpOutcome {
    sim.history().ops.last().expect("an operation").outcome.clone()
}

fn node_has(sim: &Simulator, path: &str) -> bool {
    sim.node(SERVER).expect("the node is up").tree().stat(path).is_some()
}

#[test]
fn a_crash_before_fsync_loses_the_unacknowledged_write() {
    let mut sim = connected(1, |_| {});
    sim.submit(CLIENT, create("/before"));
    assert!(
        sim.run_until(1_000, |s| pending_append_of(s, "/before")),
        "the write never reached the disk"
    );
    sim.crash(SERVER);
    sim.run_for(100);
    assert_eq!(last_outcome(&sim), OpOutcome::Unknown(UnknownReason::Disconnected));
    sim.restart(SERVER);
    sim.run_for(3_000);
    assert!(!node_has(&sim, "/before"), "no unsynced write survives with crash_keep_unsynced = 0");
    assert!(sim.client(CLIENT).is_live(), "the session resumes on the restarted server");
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

#[test]
fn an_unsynced_write_may_survive_a_crash_without_having_been_acknowledged() {
    let mut sim = connected(2, |o| o.disk.crash_keep_unsynced = 1.0);
    sim.submit(CLIENT, create("/lucky"));
    assert!(sim.run_until(1_000, |s| pending_append_of(s, "/lucky")));
    sim.crash(SERVER);
    sim.run_for(100);
    assert!(!matches!(last_outcome(&sim), OpOutcome::Ok { .. }), "acknowledged before fsync");
    sim.restart(SERVER);
    sim.run_for(3_000);
    assert!(node_has(&sim, "/lucky"), "the OS flushed it: the restarted node has it");
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

#[test]
fn an_acknowledged_write_survives_a_crash() {
    let mut sim = connected(3, |_| {});
    sim.submit(CLIENT, create("/after"));
    assert!(sim.run_until(1_000, |s| matches!(last_outcome(s), OpOutcome::Ok { .. })));
    sim.crash(SERVER);
    sim.run_for(50);
    sim.restart(SERVER);
    sim.run_for(3_000);
    assert!(node_has(&sim, "/after"));
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

#[test]
fn a_disk_that_acknowledges_before_fsync_is_caught() {
    let mut sim = connected(4, |_| {});
    // From now on the disk reports writes durable as soon as they are submitted.
    sim.options_mut().disk.lie_about_fsync = true;
    sim.submit(CLIENT, create("/lost"));
    sim.run_for(1_000);
    let outcome = sim.finish();
    assert!(
        outcome.violations.iter().any(|v| matches!(v, Violation::Recovery(_))),
        "applying before fsync must be flagged: {:?}",
        outcome.violations
    );
}

#[test]
fn a_disk_that_lies_from_the_start_is_caught_at_the_first_session() {
    let mut options = Options::manual(5, 1);
    options.disk.lie_about_fsync = true;
    let mut sim = Simulator::new(5, options);
    sim.run_for(2_000);
    let outcome = sim.finish();
    assert!(!outcome.passed(), "the createSession txn was applied before it was durable");
}

#[test]
fn a_client_disconnect_makes_in_flight_operations_unknown() {
    let mut sim = connected(6, |_| {});
    sim.submit(CLIENT, create("/maybe"));
    sim.disconnect(CLIENT);
    assert_eq!(last_outcome(&sim), OpOutcome::Unknown(UnknownReason::Disconnected));
    sim.run_for(3_000);
    assert!(sim.client(CLIENT).is_live(), "the client reconnects");
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

#[test]
fn an_acknowledged_write_survives_the_leader_crash_in_an_ensemble() {
    let mut options = Options::manual(8, 1);
    options.set_nodes(3);
    let mut sim = Simulator::new(8, options);
    assert!(sim.run_until(60_000, |s| s.client(CLIENT).is_live()), "no leader was elected");
    sim.submit(CLIENT, create("/kept"));
    assert!(sim.run_until(5_000, |s| matches!(last_outcome(s), OpOutcome::Ok { .. })));
    let leader = sim
        .server_ids()
        .into_iter()
        .find(|id| sim.node(*id).and_then(|n| n.leader()) == Some(*id))
        .expect("an established leader");
    sim.crash(leader);
    let others: Vec<ServerId> = sim.server_ids().into_iter().filter(|id| *id != leader).collect();
    let serving =
        |s: &Simulator| others.iter().all(|id| s.node(*id).is_some_and(|n| n.is_serving()));
    assert!(sim.run_until(60_000, serving), "the survivors never elected a new leader");
    for id in &others {
        assert!(sim.node(*id).unwrap().tree().stat("/kept").is_some(), "n{id} lost the write");
    }
    sim.restart(leader);
    sim.run_for(30_000);
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

/// ZooKeeper answers the requests of a connection in order, including one pipelined behind a
/// closeSession (it fails with SessionExpired after the closeSession reply). Found by the
/// simulator: Ensemble used to answer it first, then close the connection.
#[test]
fn a_request_pipelined_behind_close_session_is_answered_in_order() {
    let mut sim = connected(9, |_| {});
    sim.submit(CLIENT, Request::CloseSession);
    sim.submit(CLIENT, create("/late"));
    sim.run_for(1_000);
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}

/// The server `client` last established its session on.
fn server_of(sim: &Simulator, client: ClientId) -> Option<ServerId> {
    sim.history().entries.iter().rev().find_map(|(_, entry)| match entry {
        Entry::Connected { client: c, server, .. } if *c == client => Some(*server),
        _ => None,
    })
}

/// Makes `client` reconnect until its session is live on `server` (clients go round the
/// servers in order).
fn move_to(sim: &mut Simulator, client: ClientId, server: ServerId) {
    for _ in 0..8 {
        let live = |s: &Simulator| s.client(client).is_live();
        assert!(sim.run_until(60_000, live), "c{} never reconnected", client.0);
        if server_of(sim, client) == Some(server) {
            return;
        }
        sim.disconnect(client);
    }
    panic!("c{} never got to n{server}", client.0);
}

/// Submits `request` on `client` and runs until it completes; returns its outcome.
fn call(sim: &mut Simulator, client: ClientId, request: Request) -> OpOutcome {
    let before = sim.history().ops.len();
    sim.submit(client, request);
    let done = |s: &Simulator| {
        s.history().ops.get(before).is_some_and(|op| op.outcome != OpOutcome::Pending)
    };
    assert!(sim.run_until(30_000, done), "the operation never completed");
    sim.history().ops[before].outcome.clone()
}

fn established_leader(sim: &Simulator) -> Option<ServerId> {
    sim.server_ids().into_iter().find(|id| sim.node(*id).and_then(|n| n.leader()) == Some(*id))
}

fn get(path: &str) -> Request {
    Request::GetData { path: path.into(), watch: false }
}

fn read_value(outcome: &OpOutcome) -> Option<Vec<u8>> {
    match outcome {
        OpOutcome::Ok { response: Response::GetData { data, .. }, .. } => {
            Some(data.as_ref().map_or(Vec::new(), |d| d.to_vec()))
        }
        _ => None,
    }
}

/// An observer (n4 beside voters n1–n3) serves reads and forwards writes, keeps doing so
/// under the next leader after the first one crashes, never acknowledges a proposal (it gets
/// INFORMs), and ends with the same committed history as the voters.
#[test]
fn an_observer_serves_reads_and_forwards_writes_across_a_leader_change() {
    const OBSERVER: ServerId = ServerId(4);
    const OTHER: ClientId = ClientId(1);
    let mut options = Options::manual(10, 2);
    options.set_nodes(3);
    options.observers = 1;
    options.keep_trace = true;
    let mut sim = Simulator::new(10, options);
    assert_eq!(sim.server_ids(), [1, 2, 3, 4].map(ServerId));
    let all_serving =
        |s: &Simulator| s.server_ids().iter().all(|id| s.node(*id).is_some_and(|n| n.is_serving()));
    assert!(sim.run_until(60_000, all_serving), "the ensemble never formed");
    assert_eq!(sim.node(OBSERVER).map(|n| n.mode()), Some(Mode::Observer));
    let first = established_leader(&sim).expect("an established leader");
    assert_ne!(first, OBSERVER);

    move_to(&mut sim, CLIENT, OBSERVER);
    assert!(matches!(call(&mut sim, CLIENT, create("/via-observer")), OpOutcome::Ok { .. }));
    assert_eq!(read_value(&call(&mut sim, CLIENT, get("/via-observer"))), Some(b"v".to_vec()));

    sim.crash(first);
    let next = |s: &Simulator| {
        established_leader(s).is_some_and(|l| l != first)
            && s.node(OBSERVER).is_some_and(|n| n.is_serving() && n.leader() != Some(first))
    };
    assert!(sim.run_until(60_000, next), "no new leader, or the observer never rejoined");
    let second = established_leader(&sim).expect("the new leader");

    // The observer's clients were moved off when it left its old leader; bring one back.
    move_to(&mut sim, CLIENT, OBSERVER);
    assert!(matches!(call(&mut sim, CLIENT, create("/after-change")), OpOutcome::Ok { .. }));
    assert_eq!(read_value(&call(&mut sim, CLIENT, get("/via-observer"))), Some(b"v".to_vec()));
    // A write through a voter reaches the observer too.
    move_to(&mut sim, OTHER, second);
    assert!(matches!(call(&mut sim, OTHER, create("/via-leader")), OpOutcome::Ok { .. }));
    assert!(sim.run_until(5_000, |s| s
        .node(OBSERVER)
        .is_some_and(|n| n.tree().stat("/via-leader").is_some())));

    sim.restart(first);
    assert!(sim.run_until(60_000, all_serving), "the old leader never rejoined");
    sim.run_for(2_000);
    let states: Vec<_> = sim
        .server_ids()
        .iter()
        .map(|id| {
            let tree = sim.node(*id).expect("up").tree();
            (tree.zxid_applied(), tree.digest())
        })
        .collect();
    assert!(states.windows(2).all(|w| w[0] == w[1]), "members differ: {states:?}");

    let trace = sim.trace_text();
    let observer_lines: Vec<&str> = trace.lines().filter(|l| l.contains("  n4  ")).collect();
    assert!(observer_lines.iter().any(|l| l.contains("input INFORM from")), "no INFORM");
    assert!(observer_lines.iter().any(|l| l.contains("role observer~ -> observer")));
    for line in &observer_lines {
        assert!(!line.contains("send ACK to") && !line.contains("send PROPOSAL"), "{line}");
        assert!(!line.contains("follower") && !line.contains("leader "), "{line}");
    }
    let outcome = sim.finish();
    assert!(outcome.passed(), "{:?}", outcome.violations);
}
