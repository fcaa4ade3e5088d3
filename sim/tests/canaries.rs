//! Every canary (a deliberate protocol bug in the core) is caught, and the catch is the
//! canary's doing: the seed that first caught it in the campaign (`ensemble-sim canaries`,
//! see `docs/simulation.md`) still fails with the canary on, by the same checker, and passes
//! on the correct build. The campaign searches; this test pins what it found, so a change
//! that blinds a checker or breaks a fault point fails here in seconds.
//!
//! Run with `cargo test -p ensemble-sim --features canary --test canaries`. A seed replays
//! exactly only on the commit that found it: when a change to the core or the simulator
//! sends a seed down another path, run the campaign again and update [`FIRST_CATCHES`] (and
//! the table in `docs/simulation.md`).

#![cfg(feature = "canary")]

use std::collections::BTreeSet;

use ensemble::core::canary::Canary;
use ensemble_sim::canaries::{run_seed, Verdict};

/// Each canary, the first seed of the campaign that caught it (from seed 0, swarm options),
/// and the kind of the violation that caught it.
const FIRST_CATCHES: &[(Canary, u64, &str)] = &[
    (Canary::VoteOrderNotTotal, 0x9, "Flood"),
    (Canary::AckNewLeaderBeforeDurable, 0x1, "Promise::NewLeaderNotDurable"),
    (Canary::EpochBeforeLog, 0x3, "Promise::EpochWithoutHistory"),
    (Canary::AckEpochBeforeDurable, 0x1, "Promise::EpochNotDurable"),
    (Canary::RetainUncommitted, 0x1, "Durability::AckedWriteLost"),
    (Canary::LastZxidBeforeLog, 0x17, "Agreement::DivergedState"),
    (Canary::WrongTrunc, 0x1, "Agreement::DivergedState"),
    (Canary::AcceptClientAhead, 0x4c9, "SessionOrder::ZxidWentBack"),
    (Canary::ExpiryWallClock, 0x5, "Sessions::PrematureExpiry"),
    (Canary::ZxidRollover, 0xc, "Promise::ZxidOutsideEpoch"),
    (Canary::AckBeforeFsync, 0x0, "Recovery::AppliedNotDurable"),
    (Canary::CommitWithoutQuorum, 0x1, "Leaders::NoQuorum"),
];

const STALE: &str = "re-run `ensemble-sim canaries` and update FIRST_CATCHES if the seed moved";

/// The canary's first catch still fails, by the same checker.
fn first_catch_holds(canary: Canary) {
    let (_, seed, expected) =
        FIRST_CATCHES.iter().find(|(c, _, _)| *c == canary).expect("every canary has a catch");
    match run_seed(*seed, &[canary]) {
        Verdict::Fail { kind, message } => assert_eq!(
            kind,
            *expected,
            "{} on seed {seed:#x} was caught by another checker: {message} ({STALE})",
            canary.name()
        ),
        other => panic!("{} survived seed {seed:#x}: {other:?} ({STALE})", canary.name()),
    }
}

/// The catches are the canaries' doing: without one, every catching seed passes.
#[test]
fn the_correct_build_passes_every_catching_seed() {
    let seeds: BTreeSet<u64> = FIRST_CATCHES.iter().map(|(_, seed, _)| *seed).collect();
    for seed in seeds {
        let verdict = run_seed(seed, &[]);
        assert!(verdict.passed(), "the correct build fails seed {seed:#x}: {verdict:?}");
    }
}

#[test]
fn every_canary_has_a_pinned_catch() {
    let pinned: Vec<Canary> = FIRST_CATCHES.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(pinned, Canary::ALL.to_vec());
}

macro_rules! catches {
    ($($test:ident: $canary:ident,)*) => {$(
        #[test]
        fn $test() {
            first_catch_holds(Canary::$canary);
        }
    )*};
}

catches! {
    vote_order_not_total: VoteOrderNotTotal,
    ack_newleader_before_durable: AckNewLeaderBeforeDurable,
    epoch_before_log: EpochBeforeLog,
    ackepoch_before_durable: AckEpochBeforeDurable,
    retain_uncommitted: RetainUncommitted,
    last_zxid_before_log: LastZxidBeforeLog,
    wrong_trunc: WrongTrunc,
    accept_client_ahead: AcceptClientAhead,
    expiry_wall_clock: ExpiryWallClock,
    zxid_rollover: ZxidRollover,
    ack_before_fsync: AckBeforeFsync,
    commit_without_quorum: CommitWithoutQuorum,
}
