//! `ensemble-sim`: run, replay and sweep seeds of the deterministic simulator.
//!
//! ```text
//! ensemble-sim run --seed 0x2a               # one seed: options, verdict, replay command
//! ensemble-sim replay --seed 0x2a --trace    # the same run, with its full event trace
//! ensemble-sim replay --seed 0x2a --html run.html --from-ms 2000 --to-ms 3000
//! ensemble-sim sweep --count 1000 --start 0  # many seeds; every failure with its command
//! ensemble-sim bench --count 20              # the standard configuration: wall time per seed
//! ensemble-sim canaries --budget 2000 --jobs 2  # every canary caught (`--features canary`)
//! ```
//! The only wall-clock readings are the speed reports of `sweep`, `bench` and `canaries`. Each
//! runs seeds on `--jobs` threads (each seed on one) and prints per-seed lines in seed order, so
//! its output is the same for any number of jobs apart from the timing figures.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ensemble::core::canary::Canary;
use ensemble_sim::canaries::{Campaign, Hunt, Verdict};
use ensemble_sim::html::Summary;
use ensemble_sim::sweep::{default_jobs, in_seed_order};
use ensemble_sim::tracefmt::Window;
use ensemble_sim::{replay_command_with, Options, Outcome, Simulator};

/// mimalloc instead of glibc's malloc: a seed makes millions of small, short-lived allocations
/// (txns, frames, events, the checkers' keys), and glibc's `malloc`/`free` were a fifth of a
/// heavy seed's instructions. Allocation addresses reach no output, so runs are unchanged.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Seeds run at once, each on its own OS thread (default: available parallelism).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Run the standard configuration (5 voters, 10 clients, 60 s of faults, then liveness and
    /// drain) over consecutive seeds and report wall time per seed.
    Bench {
        /// How many seeds.
        #[arg(long, default_value_t = 20)]
        count: u64,
        /// The first seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed, default_value = "0")]
        start: u64,
        /// Seeds run at once (default 1, so that per-seed wall times are not inflated by
        /// sharing the machine with each other).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
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
        /// Seeds run at once, each on its own OS thread (default: available parallelism).
        #[arg(long)]
        jobs: Option<usize>,
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
        Command::Sweep { count, start, canary, verbose, jobs } => {
            let jobs = jobs.unwrap_or_else(default_jobs);
            sweep(start, count, &canary, verbose, jobs)
        }
        Command::Bench { count, start, jobs } => bench(start, count, jobs),
        Command::Canaries { budget, start, jobs, only } => {
            let canaries = if only.is_empty() { Canary::ALL.to_vec() } else { only };
            let jobs = jobs.unwrap_or_else(default_jobs);
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

/// Totals of a sweep, for its speed report.
#[derive(Default)]
struct Totals {
    seeds: u64,
    events: u64,
    simulated_us: u64,
    /// Failed seeds with their replay commands, in seed order.
    failures: Vec<(u64, String)>,
}

impl Totals {
    /// Counts one seed's result and prints its line (failures always, passes if `verbose`).
    fn add<T>(
        &mut self,
        seed: u64,
        members: &str,
        result: &anyhow::Result<(Outcome, T)>,
        verbose: bool,
    ) {
        self.seeds += 1;
        match result {
            Ok((outcome, _)) => {
                self.events += outcome.events;
                self.simulated_us += outcome.sim_time.0;
                if verbose && outcome.passed() {
                    println!(
                        "ok   {seed:#018x}: {} nodes, {} simulated, {} events, {} ops, trace hash \
                         {:#018x}",
                        members, outcome.sim_time, outcome.events, outcome.ops, outcome.trace_hash
                    );
                }
                if !outcome.passed() {
                    println!("FAIL {seed:#018x} ({members} nodes): {}", outcome.violations[0]);
                    println!("  replay: {}", outcome.replay_command());
                    self.failures.push((seed, outcome.replay_command()));
                }
            }
            Err(error) => {
                println!("FAIL {seed:#018x}: {error:#}");
                self.failures.push((seed, format!("{error:#}")));
            }
        }
    }

    /// The closing report: seeds, failures with their replay commands, simulated time and
    /// speed.
    fn report(&self, start: u64, jobs: usize, wall: Duration) {
        let wall = wall.as_secs_f64().max(1e-9);
        let simulated = self.simulated_us as f64 / 1e6;
        println!(
            "sweep: {} seeds from {start:#x} on {jobs} jobs, {} failed",
            self.seeds,
            self.failures.len()
        );
        for (seed, replay) in &self.failures {
            println!("  failed {seed:#018x}: {}", replay.lines().last().unwrap_or_default());
        }
        println!(
            "  simulated {:.2} h in {wall:.1} s wall: {:.0} simulated s per wall s, {:.0} events \
             per wall s, {:.3} s wall per seed",
            simulated / 3600.0,
            simulated / wall,
            self.events as f64 / wall,
            wall / self.seeds.max(1) as f64,
        );
    }
}

/// `5` or `3+1obs`: the voters and observers of a run.
fn members(options: &Options) -> String {
    match options.observers {
        0 => options.nodes.to_string(),
        observers => format!("{}+{observers}obs", options.nodes),
    }
}

fn sweep(
    start: u64,
    count: u64,
    canaries: &[Canary],
    verbose: bool,
    jobs: usize,
) -> anyhow::Result<bool> {
    let began = Instant::now();
    let mut totals = Totals::default();
    let run = |seed: u64| {
        let options = Options { canaries: canaries.to_vec(), ..Options::from_seed(seed) };
        let members = members(&options);
        (members, simulate(seed, options, |_, _| ()))
    };
    let tenth = (count / 10).max(1);
    in_seed_order(seed_range(start, count), jobs, run, |seed, (members, result)| {
        totals.add(seed, &members, &result, verbose);
        // Progress on stderr for long sweeps (CI logs), so stdout stays reproducible.
        if count >= 1_000 && totals.seeds % tenth == 0 && totals.seeds < count {
            let (done, failed) = (totals.seeds, totals.failures.len());
            let wall = began.elapsed().as_secs_f64();
            eprintln!("  ... {done}/{count} seeds, {failed} failed, {wall:.0} s");
        }
    });
    totals.report(start, jobs, began.elapsed());
    Ok(totals.failures.is_empty())
}

/// Runs [`Options::standard`] over `count` seeds and reports wall time per seed.
fn bench(start: u64, count: u64, jobs: usize) -> anyhow::Result<bool> {
    print!("{}", Options::standard(start));
    println!("(options of the first seed; each seed draws its own within the standard shape)");
    let began = Instant::now();
    let mut totals = Totals::default();
    let mut walls = Vec::new();
    let run = |seed: u64| {
        let began = Instant::now();
        let result = simulate(seed, Options::standard(seed), |_, _| ());
        (result, began.elapsed())
    };
    in_seed_order(seed_range(start, count), jobs.max(1), run, |seed, (result, wall)| {
        if let Ok((outcome, _)) = &result {
            println!(
                "seed {seed:#018x}: {:.3} s wall, {} simulated, {} events, {} ops",
                wall.as_secs_f64(),
                outcome.sim_time,
                outcome.events,
                outcome.ops
            );
        }
        totals.add(seed, &members(&Options::standard(seed)), &result, false);
        walls.push(wall.as_secs_f64());
    });
    let wall = began.elapsed();
    let mean = walls.iter().sum::<f64>() / walls.len().max(1) as f64;
    let max = walls.iter().copied().fold(0.0, f64::max);
    let busy: f64 = walls.iter().sum();
    println!(
        "bench: {} seeds of the standard configuration; wall per seed mean {mean:.3} s, max \
         {max:.3} s; {:.0} events per wall s",
        walls.len(),
        totals.events as f64 / busy.max(1e-9),
    );
    totals.report(start, jobs, wall);
    Ok(totals.failures.is_empty())
}

fn seed_range(start: u64, count: u64) -> std::ops::Range<u64> {
    start..start.saturating_add(count)
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
