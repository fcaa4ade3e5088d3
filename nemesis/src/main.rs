//! `ensemble-nemesis`: runs the `ensemble` binary as real processes under faults and judges
//! the clients' history with the simulator's checkers. See `docs/simulation.md`, "The
//! nemesis".
//!
//! ```text
//! ensemble-nemesis --members 3 --seed 7 --duration 60
//! ensemble-nemesis --members 5 --seed 100 --duration 120 --runs 5    # seeds 100..=104
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use ensemble_nemesis::faults::Kind;
use ensemble_nemesis::{run, Config};

#[derive(Parser, Debug)]
#[command(
    name = "ensemble-nemesis",
    about = "Real processes, real faults, the simulator's checkers"
)]
struct Args {
    /// Ensemble members (3 or 5).
    #[arg(long, default_value_t = 3)]
    members: u64,
    /// Seed of the first run (decimal or 0x hex).
    #[arg(long, default_value = "1", value_parser = parse_seed)]
    seed: u64,
    /// Seconds of faults per run (then healing, a liveness phase and the checks).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Runs, with seeds `seed`, `seed + 1`, ...
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// The `ensemble` binary (default: target/release/ensemble beside this binary).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Where run directories go.
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Keep every run's directory (failed runs' are always kept).
    #[arg(long)]
    keep: bool,
    /// Seconds of the liveness phase after healing.
    #[arg(long, default_value_t = 25)]
    liveness: u64,
    /// Print only the summary, not each fault as it happens.
    #[arg(long)]
    quiet: bool,
    /// Do not use network namespaces (loopback only, no partitions).
    #[arg(long)]
    no_netns: bool,
}

fn parse_seed(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ensemble-nemesis: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<bool> {
    let args = Args::parse();
    if args.members != 3 && args.members != 5 {
        bail!("--members must be 3 or 5");
    }
    let binary = match args.binary {
        Some(binary) => binary,
        None => std::env::current_exe()?.with_file_name("ensemble"),
    };
    if !binary.exists() {
        bail!("no ensemble binary at {} (cargo build --release --bin ensemble)", binary.display());
    }
    let mut injected: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut ok, mut fail, mut unknown, mut violations, mut failed_seeds) =
        (0, 0, 0, 0, Vec::new());
    for seed in args.seed..args.seed + args.runs {
        let config = Config {
            members: args.members,
            seed,
            duration: Duration::from_secs(args.duration),
            binary: binary.clone(),
            dir: args.dir.clone(),
            keep: args.keep,
            liveness: Duration::from_secs(args.liveness),
            verbose: !args.quiet,
            namespaces: !args.no_netns,
        };
        let report = run(&config)?;
        println!("{report}");
        for kind in Kind::ALL {
            *injected.entry(kind.name()).or_insert(0) += report.injected(kind);
        }
        ok += report.ops.0;
        fail += report.ops.1;
        unknown += report.ops.2;
        violations += report.violations.len();
        if !report.passed() || !report.gaps.is_empty() {
            failed_seeds.push(seed);
        }
    }
    if args.runs > 1 {
        println!(
            "== campaign: {} runs of {} s, {} members",
            args.runs, args.duration, args.members
        );
        println!("faults injected: {injected:?}");
        println!("operations: {} (ok {ok}, fail {fail}, unknown {unknown})", ok + fail + unknown);
        println!("violations: {violations}; failed seeds: {failed_seeds:?}");
    }
    Ok(failed_seeds.is_empty())
}
