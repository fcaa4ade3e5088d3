//! Hand-scheduled scenarios for the recipe workloads (`recipes.rs`): a lock holder, a leader
//! and queue clients meet faults placed at chosen moments, and the recipe checkers must pass.

use ensemble::core::ids::{ServerId, SessionId};
use ensemble::core::txn::TxnOp;
use ensemble::wire::proto::Request;
use ensemble_sim::history::Entry;
use ensemble_sim::recipes::{self, Loss, RecipeEvent, RecipeNote, RecipeOptions, Role};
use ensemble_sim::{ClientId, Options, SimTime, Simulator};

/// Session timeout of the scenarios: two ticks of the manual options' 2 s.
const TIMEOUT_MS: i32 = 4_000;

/// A calm run in which client `i` runs `roles[i]`.
fn run(seed: u64, nodes: usize, roles: &[Role], hold_mean_ms: u64) -> Simulator {
    let mut options = Options::manual(seed, roles.len());
    options.set_nodes(nodes);
    options.workload.generate = true;
    options.workload.session_timeout_ms = TIMEOUT_MS;
    options.workload.recipes = RecipeOptions {
        roles: roles.iter().enumerate().map(|(i, role)| (ClientId(i as u32), *role)).collect(),
        hold_mean_ms,
    };
    Simulator::new(seed, options)
}

/// The client that believes it holds the lock or leads, if one does.
fn holder(sim: &Simulator, clients: usize) -> Option<ClientId> {
    (0..clients as u32).map(ClientId).find(|c| sim.client(*c).recipe().is_some_and(|r| r.holds()))
}

fn notes(sim: &Simulator) -> &[RecipeNote] {
    &sim.history().recipes
}

/// When the closeSession of `session` was committed.
fn closed_at(sim: &Simulator, session: SessionId) -> Option<SimTime> {
    let committed = sim.committed();
    let index = committed
        .txns()
        .iter()
        .position(|t| t.session == session && t.op == TxnOp::CloseSession)?;
    committed.time(index)
}

fn assert_passes(sim: &mut Simulator) {
    let outcome = sim.finish();
    let violations: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
    assert!(outcome.passed(), "{}", violations.join("\n"));
}

/// A holder cut off from the server stops believing at its read timeout (2/3 of the session
/// timeout), before its session can expire; its node stays until the expiry commits, and only
/// then does the next client take the lock. Once back, the old holder learns that its session
/// expired and queues up again with a new one.
#[test]
fn the_next_lock_holder_takes_over_only_after_the_isolated_holders_session_expires() {
    let clients = 3;
    let mut sim = run(11, 1, &[Role::Lock; 3], 1_000_000);
    assert!(sim.run_until(10_000, |s| holder(s, clients).is_some()), "nobody took the lock");
    let first = holder(&sim, clients).expect("a holder");
    let session = sim.client(first).session().expect("a holder has a session");
    let isolated_at = sim.now();
    sim.isolate(first, 3 * TIMEOUT_MS as u64);
    let others = |s: &Simulator| holder(s, clients).is_some_and(|c| c != first);
    assert!(sim.run_until(20_000, others), "nobody took over from the isolated holder");
    let second = holder(&sim, clients).expect("a new holder");

    let expired = closed_at(&sim, session).expect("the isolated holder's session expired");
    let released = notes(&sim)
        .iter()
        .find(|n| n.client == first && matches!(n.event, RecipeEvent::Released { .. }))
        .expect("the isolated holder let go");
    assert!(matches!(released.event, RecipeEvent::Released { why: Loss::Disconnected, .. }));
    assert!(released.at > isolated_at && released.at < expired, "let go at its read timeout");
    let taken = notes(&sim)
        .iter()
        .filter(|n| n.client == second && matches!(n.event, RecipeEvent::Acquired { .. }))
        .last()
        .expect("the new holder's note");
    assert!(taken.at >= expired, "taken at {} before the expiry committed at {expired}", taken.at);

    sim.run_for(3 * TIMEOUT_MS as u64 + 5_000);
    let told = sim.history().entries.iter().any(|(_, e)| {
        matches!(e, Entry::SessionExpired { client, session: s } if *client == first && *s == session)
    });
    assert!(told, "back on the network, the old holder hears its session expired");
    let rejoined = sim.history().ops.iter().any(|op| {
        op.client == first
            && op.session != session
            && matches!(&op.request, Request::Create(_, c) if c.path.starts_with(recipes::LOCK))
    });
    assert!(rejoined, "it queues up again with a new session");
    assert_passes(&mut sim);
}

/// Leaders step down after their term and others take over; a leader cut off from the
/// ensemble gives up leadership at once, and nobody else leads until its session expires.
#[test]
fn an_isolated_leader_is_replaced_only_after_its_session_expires() {
    let clients = 3;
    let mut sim = run(12, 3, &[Role::Election; 3], 300);
    sim.run_for(60_000);
    let leaders: std::collections::BTreeSet<ClientId> = notes(&sim)
        .iter()
        .filter(|n| matches!(n.event, RecipeEvent::Acquired { .. }))
        .map(|n| n.client)
        .collect();
    assert!(leaders.len() >= 2, "leaders step down and others take over: {leaders:?}");

    assert!(sim.run_until(10_000, |s| holder(s, clients).is_some()), "no leader");
    let leader = holder(&sim, clients).expect("a leader");
    let session = sim.client(leader).session().expect("a session");
    let isolated_at = sim.now();
    sim.isolate(leader, 3 * TIMEOUT_MS as u64);
    sim.run_for(3 * TIMEOUT_MS as u64 + 10_000);
    let expired = closed_at(&sim, session).expect("the isolated leader's session expired");
    let next = notes(&sim)
        .iter()
        .find(|n| n.at > isolated_at && matches!(n.event, RecipeEvent::Acquired { .. }))
        .expect("a new leader");
    assert!(next.at >= expired, "a new leader at {} before the expiry at {expired}", next.at);
    assert_passes(&mut sim);
}

/// Two producers and one consumer, with disconnects and a server crash in the middle: the
/// queue checker passes, and the single consumer takes every producer's items in the order
/// they were produced.
#[test]
fn a_single_consumer_takes_each_producers_items_in_order_through_faults() {
    let consumer = ClientId(2);
    let mut sim = run(13, 1, &[Role::Producer, Role::Producer, Role::Consumer], 100);
    sim.run_for(3_000);
    for round in 0..6 {
        sim.disconnect(ClientId(round % 3));
        sim.run_for(700);
    }
    sim.crash(ServerId(0));
    sim.run_for(500);
    sim.restart(ServerId(0));
    sim.run_for(5_000);

    let mut consumed_by_producer: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut last_seq = None;
    for note in notes(&sim) {
        let RecipeEvent::Consumed { path, payload } = &note.event else { continue };
        assert_eq!(note.client, consumer);
        let seq = recipes::sequence(path).expect("a sequential item");
        assert!(last_seq < Some(seq), "{path} taken after a higher item");
        last_seq = Some(seq);
        let payload = String::from_utf8_lossy(payload).into_owned();
        let (producer, n) = payload.split_once('-').expect("payload <client>-<n>");
        consumed_by_producer
            .entry(producer.to_string())
            .or_default()
            .push(n.parse().expect("a number"));
    }
    assert_eq!(consumed_by_producer.len(), 2, "both producers' items were consumed");
    for (producer, ns) in &consumed_by_producer {
        assert!(ns.len() > 10, "{producer}: only {} items consumed", ns.len());
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{producer}'s items out of order: {ns:?}");
    }
    assert_passes(&mut sim);
}

/// The swarm options of `seed` with short phases, all clients kept.
fn short(seed: u64, keep_trace: bool) -> Options {
    let mut options = Options::from_seed(seed);
    options.safety_ms = options.safety_ms.min(6_000);
    options.keep_trace = keep_trace;
    options
}

/// Swarm seeds whose recipe clients run next to the mix, under that seed's faults: 5 (four lock
/// clients, standalone), 11 (elections, locks and a consumer on 3 voters and an observer),
/// 9 (a producer and a consumer on 5 voters and 2 observers). Each must pass, show
/// its recipe at work, and replay byte for byte.
#[test]
fn swarm_seeds_with_recipes_pass_and_replay_exactly() {
    for seed in [5, 11, 9] {
        let options = short(seed, true);
        assert!(!options.workload.recipes.roles.is_empty(), "seed {seed} has no recipe clients");
        let mut first = Simulator::new(seed, options);
        let outcome = first.run();
        let violations: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
        assert!(
            outcome.passed(),
            "seed {seed}: {}\n{}",
            violations.join("\n"),
            outcome.replay_command()
        );
        let notes = &first.history().recipes;
        assert!(
            notes.iter().any(|n| matches!(
                n.event,
                RecipeEvent::Acquired { .. } | RecipeEvent::Produced { .. }
            )),
            "seed {seed}: the recipe clients achieved nothing"
        );
        let mut second = Simulator::new(seed, short(seed, true));
        assert_eq!(outcome.trace_hash, second.run().trace_hash, "seed {seed}");
        assert_eq!(first.trace_text(), second.trace_text(), "seed {seed}");
    }
}
