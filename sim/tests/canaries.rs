//! Every canary (a deliberate protocol bug in the core) must be caught by some checker within a
//! few seeds. A simulator that cannot catch them is not testing anything.
//!
//! Run with `cargo test -p ensemble-sim --features canary --test canaries`. Canaries not yet
//! caught are `#[ignore]`d (run them with `-- --ignored`); `zxid-rollover` needs 2^32 txns and
//! has no test.

#![cfg(feature = "canary")]

use ensemble::core::canary::Canary;
use ensemble_sim::{Options, Simulator};

/// Runs seeds from `start` with `canary` on and options shaped by `tweak`; returns the first
/// seed some checker failed, with its first violation.
fn caught(
    canary: Canary,
    start: u64,
    seeds: u64,
    tweak: impl Fn(&mut Options),
) -> Option<(u64, String)> {
    (start..start + seeds).find_map(|seed| {
        let mut options = Options::from_seed(seed);
        tweak(&mut options);
        options.canaries = vec![canary];
        let outcome = Simulator::new(seed, options).run();
        let first = outcome.violations.first().map(|v| (seed, v.to_string()));
        if let Some((seed, violation)) = &first {
            eprintln!("{} caught by seed {seed:#x}: {violation}", canary.name());
        }
        first
    })
}

/// A three-node ensemble whose members crash often, with slow fsyncs and nothing unsynced
/// surviving a crash: the shape that punishes acknowledging before durability.
fn crashy_ensemble(options: &mut Options) {
    options.set_nodes(3);
    options.safety_ms = 15_000;
    options.faults.crash_every_ms = 1_500;
    options.faults.down_min_ms = 10;
    options.faults.down_max_ms = 2_000;
    options.disk.fsync_min_us = 5_000;
    options.disk.fsync_max_us = 40_000;
    options.disk.crash_keep_unsynced = 0.0;
}

/// A three-node ensemble that keeps getting partitioned.
fn partitioned_ensemble(options: &mut Options) {
    options.set_nodes(3);
    options.safety_ms = 15_000;
    options.faults.partition_every_ms = 2_000;
    options.faults.partition_max_ms = 5_000;
}

#[test]
fn commit_without_quorum_is_caught() {
    let found = caught(Canary::CommitWithoutQuorum, 0, 8, partitioned_ensemble);
    assert!(found.is_some(), "no seed caught commit-without-quorum");
}

#[test]
fn ack_before_fsync_is_caught() {
    let found = caught(Canary::AckBeforeFsync, 0, 8, crashy_ensemble);
    assert!(found.is_some(), "no seed caught ack-before-fsync");
}

/// A three-node ensemble with crashes, partitions and client disconnects all at once.
fn stormy_ensemble(options: &mut Options) {
    crashy_ensemble(options);
    options.faults.partition_every_ms = 3_000;
    options.faults.partition_max_ms = 4_000;
    options.faults.disconnect_every_ms = 500;
}

/// A standalone server or ensemble whose wall clocks are stepped often and far, and no other
/// fault that could excuse an early expiry.
fn stepped_wall_clocks(options: &mut Options) {
    options.safety_ms = 15_000;
    options.faults = ensemble_sim::options::FaultOptions::none();
    options.faults.wall_step_every_ms = 1_000;
    options.faults.wall_step_max_ms = 3 * options.workload.session_timeout_ms as u64;
}

#[test]
#[ignore = "not caught yet within 8 seeds of these options: needs a sharper fault shape"]
fn ack_epoch_before_durable_is_caught() {
    let found = caught(Canary::AckEpochBeforeDurable, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught ackepoch-before-durable");
}

/// Caught by the leaders checker: the leader counts the ACK before the learner's fsync ends.
#[test]
fn ack_newleader_before_durable_is_caught() {
    let found = caught(Canary::AckNewLeaderBeforeDurable, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught ack-newleader-before-durable");
}

#[test]
#[ignore = "not caught yet within 8 seeds of these options: needs a sharper fault shape"]
fn epoch_before_log_is_caught() {
    let found = caught(Canary::EpochBeforeLog, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught epoch-before-log");
}

#[test]
fn retain_uncommitted_is_caught() {
    let found = caught(Canary::RetainUncommitted, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught retain-uncommitted");
}

#[test]
fn last_zxid_before_log_is_caught() {
    let found = caught(Canary::LastZxidBeforeLog, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught last-zxid-before-log");
}

#[test]
fn wrong_trunc_is_caught() {
    let found = caught(Canary::WrongTrunc, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught wrong-trunc");
}

#[test]
#[ignore = "not caught yet within 8 seeds of these options: needs a sharper fault shape"]
fn accept_client_ahead_is_caught() {
    let found = caught(Canary::AcceptClientAhead, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught accept-client-ahead");
}

#[test]
fn expiry_wall_clock_is_caught() {
    let found = caught(Canary::ExpiryWallClock, 0, 8, stepped_wall_clocks);
    assert!(found.is_some(), "no seed caught expiry-wall-clock");
}

#[test]
#[ignore = "not caught yet within 8 seeds of these options: needs a sharper fault shape"]
fn vote_order_not_total_is_caught() {
    let found = caught(Canary::VoteOrderNotTotal, 0, 8, stormy_ensemble);
    assert!(found.is_some(), "no seed caught vote-order-not-total");
}

/// A way to shape a seed's options.
type Shape = fn(&mut Options);

/// The shaped options catch canaries only because of the canaries: without one, they pass.
#[test]
fn the_shaped_options_pass_without_canaries() {
    let shapes: [(&str, Shape); 4] = [
        ("crashy", crashy_ensemble),
        ("partitioned", partitioned_ensemble),
        ("stormy", stormy_ensemble),
        ("stepped wall clocks", stepped_wall_clocks),
    ];
    for (name, shape) in shapes {
        for seed in 0..2 {
            let mut options = Options::from_seed(seed);
            shape(&mut options);
            let outcome = Simulator::new(seed, options).run();
            let violations: Vec<String> =
                outcome.violations.iter().map(|v| v.to_string()).collect();
            assert!(outcome.passed(), "{name} seed {seed}: {violations:?}");
        }
    }
}
