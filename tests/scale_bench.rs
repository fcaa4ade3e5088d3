//! `ensemble bench scale` end to end against a standalone Ensemble with a tiny tree: every
//! scenario runs and its figures are sane (no timing is asserted).

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on the whole run (it takes a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn every_scale_scenario_reports_sane_figures_on_a_standalone_server() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let summary = dir.path().join("summary.tsv");
    let stdout = dir.path().join("stdout.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["bench", "scale", "--target", "ensemble", "--members", "1"])
        .args(["--znodes", "2000", "--fanout", "300", "--duration", "2s", "--clients", "4"])
        .args(["--hot", "100", "--snap-count", "1000", "--sessions", "100"])
        .args(["--session-timeout", "2s", "--tick-time", "500"])
        .arg("--summary")
        .arg(&summary)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ensemble bench scale");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench scale did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let printed = std::fs::read_to_string(&stdout).expect("stdout");
    assert!(status.success(), "bench scale failed: {status}\n{printed}");

    let text = std::fs::read_to_string(&summary).expect("the summary file");
    let mut figures = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "line {line:?}");
        assert_eq!(fields[0], "ensemble", "only Ensemble was asked for: {line:?}");
        let value: f64 = fields[2].parse().expect("a number");
        figures.insert(fields[1].to_string(), value);
    }
    let get = |key: &str| -> f64 {
        *figures.get(key).unwrap_or_else(|| panic!("no {key} in the summary:\n{text}"))
    };
    // fill
    assert_eq!(get("fill_znodes"), 2000.0);
    assert!(get("fill_per_sec") > 0.0);
    assert!(get("fill_rss_kib") > 0.0 && get("fill_hwm_kib") >= get("fill_rss_kib"));
    // setdata: requests succeeded, all of them are in the timeline, the timeline covers the
    // window.
    assert!(get("setdata_ops") > 0.0, "{printed}");
    assert_eq!(get("setdata_errors"), 0.0, "{printed}");
    assert_eq!(get("setdata_seconds"), 2.0);
    assert!(get("setdata_seconds_with_ops") >= 1.0);
    assert_eq!(get("setdata_timeline_ops"), get("setdata_ops"));
    let (p50, p99, p999, max) = (
        get("setdata_p50_ms"),
        get("setdata_p99_ms"),
        get("setdata_p999_ms"),
        get("setdata_max_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{p50} {p99} {p999} {max}");
    assert!(get("setdata_rss_samples_kib") > 0.0);
    // restart: a read succeeded after it.
    assert!(get("restart_ms") > 0.0);
    assert!(get("restart_rss_kib") > 0.0);
    // sessions: all opened and kept.
    assert_eq!(get("sessions_opened"), 100.0);
    assert_eq!(get("sessions_failures"), 0.0);
    assert!(get("sessions_cpu_s") >= 0.0);
    // The table names every scenario's rows.
    for row in ["fill znodes/s", "setData p99.9 ms", "restart s", "idle-session CPU"] {
        assert!(printed.contains(row), "no {row:?} row in:\n{printed}");
    }
    assert!(printed.contains("per second (ops"), "no timeline in:\n{printed}");
}
