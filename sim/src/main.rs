//! `ensemble-sim`: run, replay and sweep seeds of the deterministic simulator.
//!
//! ```text
//! ensemble-sim run --seed 0x2a               # one seed: options, verdict, replay command
//! ensemble-sim replay --seed 0x2a --trace    # the same run, with its full event trace
//! ensemble-sim sweep --count 1000 --start 0  # many seeds; every failure with its command
//! ensemble-sim canaries --budget 2000 --jobs 2  # every canary caught (`--features canary`)
//! ```
//! The only wall-clock readings are the speed reports of sweeps and canary campaigns.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ensemble::core::canary::Canary;
use ensemble_sim::canaries::{Campaign, Hunt, Verdict};
use ensemble_sim::{replay_command_with, Options, Outcome, Simulator};

#[derive(Parser)]
#[command(name = "ensemble-sim", about = "Deterministic simulation of Ensemble")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and report the verdict.
    Run {
        /// The seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// Switch on a deliberate bug (needs `--features canary`); repeatable.
        #[arg(long, value_parser = parse_canary)]
        canary: Vec<Canary>,
    },
    /// Run one seed again, optionally printing its full trace.
    Replay {
        /// The seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// Print every event of the run.
        #[arg(long)]
        trace: bool,
        /// Switch on a deliberate bug (needs `--features canary`); repeatable.
        #[arg(long, value_parser = parse_canary)]
        canary: Vec<Canary>,
    },
    /// Run many consecutive seeds.
    Sweep {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// The first seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed, default_value = "0")]
        start: u64,
        /// Switch on a deliberate bug (needs `--features canary`); repeatable.
        #[arg(long, value_parser = parse_canary)]
        canary: Vec<Canary>,
        /// Print a line for every seed, not only for failures.
        #[arg(long)]
        verbose: bool,
    },
    /// Hunt every canary (needs `--features canary`): seeds with it on until a checker fails;
    /// then the correct build must pass every seed that caught one.
    Canaries {
        /// Seeds per canary before it counts as surviving.
        #[arg(long, default_value_t = 2000)]
        budget: u64,
        /// The first seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed, default_value = "0")]
        start: u64,
        /// Seeds run at once (threads; each run stays single-threaded).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Only this canary; repeatable.
        #[arg(long, value_parser = parse_canary)]
        only: Vec<Canary>,
    },
}

fn main() -> ExitCode {
    // Node panics are caught and reported as violations; keep the default hook's message out of
    // the way unless asked.
    if std::env::var_os("ENSEMBLE_SIM_PANIC_HOOK").is_none() {
        panic::set_hook(Box::new(|_| {}));
    }
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Run { seed, canary } => {
            let options = Options { canaries: canary, ..Options::from_seed(seed) };
            print!("{options}");
            let (outcome, _) = simulate(seed, options)?;
            report(&outcome);
            Ok(outcome.passed())
        }
        Command::Replay { seed, trace, canary } => {
            let options =
                Options { keep_trace: trace, canaries: canary, ..Options::from_seed(seed) };
            if !trace {
                print!("{options}");
            }
            let (outcome, text) = simulate(seed, options)?;
            if trace {
                print!("{text}");
            }
            report(&outcome);
            Ok(outcome.passed())
        }
        Command::Sweep { count, start, canary, verbose } => sweep(start, count, &canary, verbose),
        Command::Canaries { budget, start, jobs, only } => {
            let canaries = if only.is_empty() { Canary::ALL.to_vec() } else { only };
            canaries_campaign(Campaign { start, budget, jobs, canaries })
        }
    }
}

/// Runs a canary campaign and prints one line per canary, then the correct build's verdicts.
fn canaries_campaign(campaign: Campaign) -> anyhow::Result<bool> {
    if !cfg!(feature = "canary") {
        bail!("canaries need the canary feature: cargo run -p ensemble-sim --features canary");
    }
    println!(
        "{:<29} {:>18} {:>6} {:>8}  caught by",
        "canary", "first failing seed", "seeds", "wall"
    );
    let report = campaign.run(|hunt: &Hunt| {
        let (seed, by) = match &hunt.caught {
            Some((seed, Verdict::Fail { kind, message })) => {
                (format!("{seed:#x}"), format!("{kind}: {message}"))
            }
            Some((seed, Verdict::SimulatorPanic(message))) => {
                (format!("{seed:#x}"), format!("SIMULATOR PANIC: {message}"))
            }
            Some((seed, Verdict::Pass)) => (format!("{seed:#x}"), "?".to_string()),
            None => ("-".to_string(), "SURVIVED".to_string()),
        };
        println!(
            "{:<29} {seed:>18} {:>6} {:>7.1}s  {by}",
            hunt.canary.name(),
            hunt.seeds,
            hunt.wall.as_secs_f64()
        );
    });
    for hunt in &report.hunts {
        if let Some((seed, _)) = &hunt.caught {
            println!(
                "  replay {}: {}",
                hunt.canary.name(),
                replay_command_with(*seed, &[hunt.canary])
            );
        }
    }
    let failed: Vec<_> = report.controls.iter().filter(|c| !c.verdict.passed()).collect();
    println!(
        "correct build on the {} first-failing seeds: {} passed, {} failed ({:.1}s)",
        report.controls.len(),
        report.controls.len() - failed.len(),
        failed.len(),
        report.controls_wall.as_secs_f64()
    );
    for control in failed {
        println!(
            "  FAIL {:#x} (seed of {}): {:?}",
            control.seed,
            control.canary.name(),
            control.verdict
        );
        println!("  replay: {}", replay_command_with(control.seed, &[]));
    }
    let survivors: Vec<&str> =
        report.hunts.iter().filter(|h| h.caught.is_none()).map(|h| h.canary.name()).collect();
    if !survivors.is_empty() {
        println!("survived {} seeds: {}", campaign.budget, survivors.join(", "));
    }
    println!("canaries: {}", if report.ok() { "OK" } else { "FAILED" });
    Ok(report.ok())
}

/// Runs a seed; a panic in the simulator itself (not in a node) becomes an error that still
/// names the replay command.
fn simulate(seed: u64, options: Options) -> anyhow::Result<(Outcome, String)> {
    let canaries = options.canaries.clone();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Simulator::new(seed, options);
        let outcome = sim.run();
        (outcome, sim.trace_text())
    }));
    match result {
        Ok(done) => Ok(done),
        Err(payload) => bail!(
            "the simulator panicked on seed {seed:#018x}: {}\nreplay: {}",
            panic_message(&payload),
            replay_command_with(seed, &canaries)
        ),
    }
}

fn report(outcome: &Outcome) {
    println!(
        "seed {:#018x}: {} after {} simulated, {} events, {} ops ({} ok), {} crashes, trace hash {:#018x}",
        outcome.seed,
        if outcome.passed() { "PASS" } else { "FAIL" },
        outcome.sim_time,
        outcome.events,
        outcome.ops,
        outcome.ops_ok,
        outcome.crashes,
        outcome.trace_hash
    );
    for violation in &outcome.violations {
        println!("  violation: {violation}");
    }
    if !outcome.passed() {
        println!("replay: {}", outcome.replay_command());
    }
}

fn sweep(start: u64, count: u64, canaries: &[Canary], verbose: bool) -> anyhow::Result<bool> {
    let began = Instant::now();
    let (mut failures, mut events, mut simulated_us) = (0u64, 0u64, 0u64);
    for seed in start..start.saturating_add(count) {
        let options = Options { canaries: canaries.to_vec(), ..Options::from_seed(seed) };
        match simulate(seed, options) {
            Ok((outcome, _)) => {
                events += outcome.events;
                simulated_us += outcome.sim_time.0;
                if verbose && outcome.passed() {
                    println!(
                        "ok   {seed:#018x}: {} simulated, {} events, {} ops",
                        outcome.sim_time, outcome.events, outcome.ops
                    );
                }
                if !outcome.passed() {
                    failures += 1;
                    println!("FAIL {seed:#018x}: {}", outcome.violations[0]);
                    println!("  replay: {}", outcome.replay_command());
                }
            }
            Err(error) => {
                failures += 1;
                println!("FAIL {seed:#018x}: {error:#}");
            }
        }
    }
    let wall = began.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{count} seeds from {start:#x}: {failures} failed; {:.1} s simulated in {wall:.2} s wall, \
         {:.0} events/s",
        simulated_us as f64 / 1e6,
        events as f64 / wall
    );
    Ok(failures == 0)
}

fn parse_canary(text: &str) -> anyhow::Result<Canary> {
    Canary::from_name(text).with_context(|| {
        let names: Vec<&str> = Canary::ALL.iter().map(|c| c.name()).collect();
        format!("unknown canary {text:?}; known: {}", names.join(", "))
    })
}

fn parse_seed(text: &str) -> anyhow::Result<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).context("a hex seed"),
        None => text.parse().context("a decimal seed"),
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".to_string())
}
