//! The short nemesis campaign CI runs: the `ensemble` binary as 3 real processes under every
//! fault kind this machine allows, then 5 processes briefly; every checker must pass, and
//! every allowed kind must actually have been injected.
//!
//! The binary is `$ENSEMBLE_BIN`, else the newer of `target/{release,debug}/ensemble` (`cargo
//! test --workspace` builds the debug one). Each run takes about its duration plus 45 s
//! (healing, a 25 s liveness phase, session expiry, the checks); timeouts inside are bounds,
//! not expectations.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ensemble_nemesis::faults::Kind;
use ensemble_nemesis::{run, Config, Report};

/// The runs share the machine's two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ENSEMBLE_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let candidates = [target.join("release/ensemble"), target.join("debug/ensemble")];
    let newest = candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max();
    match newest {
        Some((_, path)) => path,
        None => panic!("no ensemble binary under {}: cargo build --bin ensemble", target.display()),
    }
}

fn campaign(members: u64, seed: u64, seconds: u64) -> Report {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config {
        members,
        seed,
        duration: Duration::from_secs(seconds),
        binary: binary(),
        dir: std::env::temp_dir(),
        keep: false,
        liveness: Duration::from_secs(25),
        verbose: true,
        namespaces: true,
    };
    eprintln!("binary: {}", config.binary.display());
    let report = run(&config).expect("the harness itself failed");
    eprintln!("{report}");
    assert!(report.passed(), "violations:\n{}", report.violations.join("\n"));
    assert!(
        report.gaps.is_empty(),
        "the harness could not see all of the history: {:?}",
        report.gaps
    );
    assert_ne!(report.self_check, Some(false), "the checkers missed a removed txn");
    let (ok, _, _) = report.ops;
    assert!(ok > 100, "only {ok} operations succeeded");
    report
}

#[test]
fn three_members_under_every_fault_kind() {
    let report = campaign(3, 0x5eed, 60);
    let mut expected = vec![Kind::Kill, Kind::Pause, Kind::SnapshotKill];
    if report.network.starts_with("network namespaces") {
        expected.push(Kind::Partition);
    } else {
        eprintln!("partitions not checked: {}", report.network);
    }
    if report.tmpfs {
        expected.push(Kind::DiskFull);
    } else {
        eprintln!("disk-full not checked: no tmpfs");
    }
    for kind in expected {
        assert!(report.injected(kind) > 0, "no {} fault was injected", kind.name());
    }
}

#[test]
fn five_members_briefly() {
    let report = campaign(5, 0x5eed5, 30);
    assert!(report.tally.injected.values().sum::<u32>() > 0, "no fault was injected");
}
