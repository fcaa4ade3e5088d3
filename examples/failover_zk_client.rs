//! Failover as an application sees it: `ensemble bench failover` with the `zookeeper-client`
//! crate as the writer instead of the bench's raw client. The crate keeps its session across
//! reconnects (a member revalidates it with the leader) and rotates through the members with its
//! own backoff: no delay within the first pass over the members, then 300–400 ms before the
//! first member again (`IterableEndpoints::timeout`), 50–100 ms before the second, ...
//!
//! ```text
//! cargo build --release --bin ensemble --example failover_zk_client
//! target/release/examples/failover_zk_client [ensemble|zookeeper] [runs] [tickTime] [initLimit] [syncLimit]
//! ```
//!
//! `ENSEMBLE_BIN` overrides the server binary (default: `ensemble` next to `examples/`);
//! `KEEP=1` keeps the data and server logs; `RUST_LOG=zookeeper_client=debug` shows the
//! client's connection attempts.

#[path = "../src/bin/ensemble/failover.rs"]
#[allow(dead_code)]
mod failover;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use failover::{Options, Target};
use zookeeper_client as zk;

const PATH: &str = "/failover";
const WARM_UP_WRITES: usize = 20;
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().collect();
    let target = match args.get(1).map(String::as_str) {
        Some("zookeeper") => Target::Zookeeper,
        Some("ensemble") | None => Target::Ensemble,
        Some(other) => bail!("unknown target {other}"),
    };
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let tick_time_ms: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let init_limit: u32 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let sync_limit: u32 = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(5);
    if std::env::var_os("ENSEMBLE_BIN").is_none() {
        let exe = std::env::current_exe()?;
        let bin = exe.parent().and_then(|p| p.parent()).context("exe dir")?.join("ensemble");
        std::env::set_var("ENSEMBLE_BIN", bin);
    }
    let options = Options {
        target,
        runs,
        tick_time_ms,
        init_limit,
        sync_limit,
        zk_classpath: std::env::var("ZK_CLASSPATH").unwrap_or_else(|_| {
            "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar".into()
        }),
        keep: std::env::var_os("KEEP").is_some(),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let dir = failover::tempdir()?;
    let mut ensemble = failover::Ensemble::create(&options, &dir)?;
    println!(
        "failover of a 3-member {} ensemble, zookeeper-client writer: tickTime={tick_time_ms} \
         initLimit={init_limit} syncLimit={sync_limit}; {runs} runs; data and logs in {}",
        target.name(),
        dir.display()
    );
    for id in 1..=failover::MEMBERS {
        ensemble.spawn(id)?;
    }
    ensemble.wait_whole()?;
    let cluster: Vec<String> = ensemble.client_addrs().iter().map(|a| a.to_string()).collect();
    let client = runtime.block_on(zk::Client::connect(&cluster.join(",")))?;
    println!("session timeout {:?}", client.session_timeout());
    let create = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match runtime.block_on(client.create(PATH, b"", &create)) {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(error) => bail!("create: {error}"),
    }
    let mut figures = Vec::new();
    for run in 1..=runs {
        let leader = ensemble.wait_whole()?;
        let mut successes = 0;
        while successes < WARM_UP_WRITES {
            if runtime.block_on(client.set_data(PATH, b"x", None)).is_ok() {
                successes += 1;
            }
        }
        let killed_at = Instant::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        ensemble.kill(leader);
        let mut failures = 0;
        let elapsed = loop {
            let sent_at = Instant::now();
            match runtime.block_on(client.set_data(PATH, b"x", None)) {
                Ok(_) => break Instant::now() - killed_at,
                Err(_) => failures += 1,
            }
            if sent_at - killed_at > FAILOVER_TIMEOUT {
                bail!("no write within {FAILOVER_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        println!(
            "run {run}: leader {leader} killed at {wall:.6}; first write after {:.0} ms \
             ({failures} failed calls)",
            elapsed.as_secs_f64() * 1000.0
        );
        figures.push(elapsed);
        ensemble.spawn(leader)?;
    }
    figures.sort();
    let all: Vec<String> =
        figures.iter().map(|f| format!("{:.0}", f.as_secs_f64() * 1000.0)).collect();
    if let Some(median) = figures.get(figures.len() / 2) {
        println!(
            "{} (zookeeper-client): median {:.0} ms (sorted: {} ms)",
            target.name(),
            median.as_secs_f64() * 1000.0,
            all.join(", ")
        );
    }
    drop(client);
    drop(ensemble);
    if options.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
