//! `ensemble-sim`: run, replay and sweep seeds of the deterministic simulator.
//!
//! ```text
//! ensemble-sim run --seed 0x2a               # one seed: options, verdict, replay command
//! ensemble-sim replay --seed 0x2a --trace    # the same run, with its full event trace
//! ensemble-sim replay --seed 0x2a --html run.html --from-ms 2000 --to-ms 3000
//! ensemble-sim sweep --count 1000 --start 0  # many seeds; every failure with its command
//! ```
//! The only wall-clock reading is the sweep's speed report.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ensemble::core::canary::Canary;
use ensemble_sim::html::Summary;
use ensemble_sim::tracefmt::Window;
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
    /// Run one seed again, optionally printing its trace or writing an HTML timeline.
    Replay {
        /// The seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// Print the event trace: time, actor, role, event (aligned columns).
        #[arg(long)]
        trace: bool,
        /// Write a standalone HTML timeline of the run to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Show only events from this simulated time on (ms; trace and HTML).
        #[arg(long, value_name = "MS")]
        from_ms: Option<u64>,
        /// Show only events up to this simulated time (ms; trace and HTML).
        #[arg(long, value_name = "MS")]
        to_ms: Option<u64>,
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
            let (outcome, ()) = simulate(seed, options, |_, _| ())?;
            report(&outcome);
            Ok(outcome.passed())
        }
        Command::Replay { seed, trace, html, from_ms, to_ms, canary } => {
            let keep_trace = trace || html.is_some();
            let options = Options { keep_trace, canaries: canary, ..Options::from_seed(seed) };
            if !trace {
                print!("{options}");
            }
            let window = Window::ms(from_ms, to_ms);
            let (outcome, (text, page)) = simulate(seed, options, |sim, outcome| {
                let text = trace.then(|| sim.trace_text_window(window));
                let page = html.as_ref().map(|_| sim.trace_html(window, &summary(outcome)));
                (text, page)
            })?;
            if let Some(text) = text {
                print!("{text}");
            }
            report(&outcome);
            if let (Some(path), Some(page)) = (html, page) {
                std::fs::write(&path, &page)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {} ({:.1} MB)", path.display(), page.len() as f64 / 1e6);
                if page.len() > HTML_LARGE && from_ms.is_none() && to_ms.is_none() {
                    println!("  a large page: --from-ms/--to-ms cut it to a window");
                }
            }
            Ok(outcome.passed())
        }
        Command::Sweep { count, start, canary, verbose } => sweep(start, count, &canary, verbose),
    }
}

/// Runs a seed, then `after` on the finished simulator; a panic in the simulator itself (not in
/// a node) becomes an error that still names the replay command.
fn simulate<T>(
    seed: u64,
    options: Options,
    after: impl FnOnce(&Simulator, &Outcome) -> T,
) -> anyhow::Result<(Outcome, T)> {
    let canaries = options.canaries.clone();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Simulator::new(seed, options);
        let outcome = sim.run();
        let extra = after(&sim, &outcome);
        (outcome, extra)
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

/// The verdict and violations, for the HTML page.
fn summary(outcome: &Outcome) -> Summary {
    Summary {
        verdict: format!(
            "{} after {} simulated, {} events, {} ops ({} ok), {} crashes",
            if outcome.passed() { "PASS" } else { "FAIL" },
            outcome.sim_time,
            outcome.events,
            outcome.ops,
            outcome.ops_ok,
            outcome.crashes
        ),
        violations: outcome.violations.iter().map(|v| v.to_string()).collect(),
    }
}

/// An HTML page above this many bytes gets a hint to cut it to a window.
const HTML_LARGE: usize = 30_000_000;

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
    for note in &outcome.notes {
        println!("  note: {note}");
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
        let members = match options.observers {
            0 => options.nodes.to_string(),
            observers => format!("{}+{observers}obs", options.nodes),
        };
        match simulate(seed, options, |_, _| ()) {
            Ok((outcome, ())) => {
                events += outcome.events;
                simulated_us += outcome.sim_time.0;
                if verbose && outcome.passed() {
                    println!(
                        "ok   {seed:#018x}: {} nodes, {} simulated, {} events, {} ops",
                        members, outcome.sim_time, outcome.events, outcome.ops
                    );
                }
                if !outcome.passed() {
                    failures += 1;
                    println!("FAIL {seed:#018x} ({members} nodes): {}", outcome.violations[0]);
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
