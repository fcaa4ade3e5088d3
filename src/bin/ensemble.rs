//! The `ensemble` command: run a server or a local ensemble, ask a server for its status,
//! measure failover, load, memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ensemble::core::report::Mode;
use ensemble::core::ServerId;
use ensemble::runtime::config::sysprops::SystemProperties;
use ensemble::runtime::config::ServerConfig;
use ensemble::runtime::ServerHandle;
use tracing_subscriber::EnvFilter;

// Beside this file rather than in `src/bin/`, where Cargo would take it for another binary.
#[path = "ensemble/bench.rs"]
mod bench;
#[path = "ensemble/failover.rs"]
mod failover;
#[path = "ensemble/scale.rs"]
mod scale;

#[derive(Parser)]
#[command(name = "ensemble", version, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server: on 127.0.0.1:2181 with data in ./ensemble-data, or from a zoo.cfg (an
    /// ensemble member when it has `server.N` lines and `myid` in its dataDir).
    Server {
        /// A ZooKeeper `zoo.cfg`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Threads running the server's tasks (the disk writer has its own). 1, the default,
        /// is a single-threaded runtime: the node loop is one task that does the protocol
        /// work and writes the replies itself, and a second worker mostly adds cross-thread
        /// wake-ups (about a third more CPU per write on a 2-core machine). More threads
        /// spread the connection readers over more cores.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        threads: u16,
    },
    /// Run an N-member ensemble on 127.0.0.1 in this process, with temporary data dirs.
    Local {
        /// Number of members.
        #[arg(default_value_t = 3)]
        members: u64,
        /// `tickTime` in ms.
        #[arg(long, default_value_t = 2000)]
        tick_time: u32,
        /// Keep the data dirs (and their zoo.cfg and myid) after Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// Print a server's mode (leader, follower, observer, standalone) like `zkServer.sh status`.
    Status {
        /// The server's client address.
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
    },
    /// Measurements.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Time from SIGKILL of the leader of a 3-member loopback ensemble to the first
    /// successful write after it.
    Failover {
        /// The implementation to measure.
        #[arg(long, value_enum, default_value = "ensemble")]
        target: failover::Target,
        /// Leader kills to measure.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[command(flatten)]
        ensembles: EnsembleArgs,
        /// `initLimit` in ticks.
        #[arg(long, default_value_t = 10)]
        init_limit: u32,
        /// `syncLimit` in ticks.
        #[arg(long, default_value_t = 5)]
        sync_limit: u32,
        /// Keep the configs, data and server logs.
        #[arg(long)]
        keep: bool,
    },
    /// Closed-loop load against running servers: N clients, one connection and one request
    /// in flight each, round-robin over the servers; prints ops/s, latency percentiles, errors.
    Load {
        /// Client addresses, comma-separated (`host:port,host:port`).
        #[arg(long)]
        servers: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// The operation every client repeats on its own znode.
        #[arg(long, value_enum, default_value = "setdata")]
        op: bench::Op,
        /// Data size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Percentage of getData in `--op mixed` (the rest is setData).
        #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
        reads: u8,
        /// Measured window (`20s`, `500ms`, `1m`).
        #[arg(long, default_value = "20s", value_parser = bench::parse_duration)]
        duration: Duration,
        /// Unmeasured run before the window.
        #[arg(long, default_value = "3s", value_parser = bench::parse_duration)]
        warmup: Duration,
        /// Load generator threads (1 = one single-threaded runtime). One thread caps
        /// Ensemble's getData figure on a 2-core machine; 2 matches this machine's cores.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Connect with TLS, presenting this key store (ZooKeeper's PEM: key and chain in one
        /// file; or PKCS12 without a password). Needs `--tls-trust-store`.
        #[arg(long, requires = "tls_trust_store")]
        tls_key_store: Option<String>,
        /// The CAs the servers' certificates must chain to (PEM bundle or PKCS12).
        #[arg(long, requires = "tls_key_store")]
        tls_trust_store: Option<String>,
    },
    /// RSS of each member of a 3-member loopback ensemble after creating N znodes.
    Memory {
        /// The implementation to measure.
        #[arg(long, value_enum, default_value = "ensemble")]
        target: failover::Target,
        /// Znodes to create.
        #[arg(long, default_value_t = 100_000)]
        znodes: usize,
        /// Data bytes per znode.
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[command(flatten)]
        ensembles: EnsembleArgs,
        /// Keep the configs, data and server logs.
        #[arg(long)]
        keep: bool,
    },
    /// setData and getData load, memory and failover for Ensemble and ZooKeeper, then a table
    /// of the ratios Ensemble/ZooKeeper.
    Compare {
        /// Concurrent load clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Data size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Measured window per operation.
        #[arg(long, default_value = "8s", value_parser = bench::parse_duration)]
        duration: Duration,
        /// Unmeasured run before each window.
        #[arg(long, default_value = "2s", value_parser = bench::parse_duration)]
        warmup: Duration,
        /// Load generator threads (1 = one single-threaded runtime). One thread caps
        /// Ensemble's getData figure on a 2-core machine; 2 matches this machine's cores.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Unmeasured setData and getData load on each ensemble before the rounds (JIT
        /// warm-up for ZooKeeper's JVM); 0s skips it.
        #[arg(long, default_value = "10s", value_parser = bench::parse_duration)]
        jvm_warmup: Duration,
        /// Load rounds (each: Ensemble then ZooKeeper); figures are medians over rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Znodes for the memory figure.
        #[arg(long, default_value_t = 100_000)]
        znodes: usize,
        /// Leader kills per implementation.
        #[arg(long, default_value_t = 5)]
        failover_runs: usize,
        #[command(flatten)]
        ensembles: EnsembleArgs,
    },
    /// Many znodes, Ensemble and ZooKeeper side by side (issue #10): fill rate and memory,
    /// setData latency per second with snapshots, restart time, idle-session CPU; then a
    /// table of the ratios against the goals. See docs/benchmarks.md, "Scale".
    Scale(ScaleArgs),
}

/// The knobs of `bench scale`.
#[derive(Args)]
struct ScaleArgs {
    /// Which scenarios: setdata and restart fill first; sessions alone runs on an empty tree.
    #[arg(long, value_enum, default_value = "all")]
    scenario: scale::Scenario,
    /// Which servers.
    #[arg(long, value_enum, default_value = "both")]
    target: scale::Targets,
    /// 1 for a standalone server, 3 for an ensemble.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=7))]
    members: u64,
    /// Znodes created by the fill.
    #[arg(long, default_value_t = 1_000_000)]
    znodes: usize,
    /// Data bytes per znode and per setData.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Znodes per parent (`/ensemble-scale/pNNNN/nNNNN`); 0 puts them all under one parent.
    #[arg(long, default_value_t = 1_000)]
    fanout: usize,
    /// setData window, and idle-sessions window.
    #[arg(long, default_value = "30s", value_parser = bench::parse_duration)]
    duration: Duration,
    /// setData clients, one request in flight each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Znodes the setData clients write (spread evenly over all of them).
    #[arg(long, default_value_t = 1_000)]
    hot: usize,
    /// `snapCount` of both servers.
    #[arg(long, default_value_t = 100_000)]
    snap_count: u64,
    /// Idle sessions.
    #[arg(long, default_value_t = 5_000)]
    sessions: usize,
    /// Session timeout the idle sessions ask for; they ping at a third of the negotiated one.
    #[arg(long, default_value = "30s", value_parser = bench::parse_duration)]
    session_timeout: Duration,
    /// `tickTime` in ms of both servers.
    #[arg(long, default_value_t = 2000)]
    tick_time: u32,
    /// Java class path of ZooKeeper (Debian's slf4j-simple is added so that it logs).
    #[arg(
        long,
        default_value = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar"
    )]
    zk_classpath: String,
    /// ZooKeeper's JVM flags, space-separated. The default is the heap of Apache ZooKeeper's
    /// own zkEnv.sh (`ZK_SERVER_HEAP=1000`); "" is the JVM's defaults (a quarter of the
    /// machine's memory), as Debian's zkServer.sh starts it.
    #[arg(long, default_value = "-Xmx1000m")]
    zk_jvm_flags: String,
    /// Also write the figures as `target<TAB>key<TAB>value` lines to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Keep the data dirs and server logs.
    #[arg(long)]
    keep: bool,
}

/// How the benchmarks start their 3-member loopback ensembles, Ensemble's and ZooKeeper's.
#[derive(Args)]
struct EnsembleArgs {
    /// `tickTime` in ms of every ensemble started, for both servers.
    #[arg(long, default_value_t = 200)]
    tick_time: u32,
    /// Java class path of ZooKeeper (for ZooKeeper ensembles).
    #[arg(
        long,
        default_value = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar"
    )]
    zk_classpath: String,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Server { config, threads } => serve(config, threads.into()),
        Command::Local { members, tick_time, keep } => local(members, tick_time, keep),
        Command::Status { server } => status(&server),
        Command::Bench { bench } => match bench {
            Bench::Failover { target, runs, ensembles, init_limit, sync_limit, keep } => {
                failover::run(&failover::Options {
                    target,
                    runs,
                    tick_time_ms: ensembles.tick_time,
                    init_limit,
                    sync_limit,
                    zk_classpath: ensembles.zk_classpath,
                    keep,
                })
                .map(|_| ())
            }
            .map(|_| ()),
            Bench::Load {
                servers,
                clients,
                op,
                size,
                reads,
                duration,
                warmup,
                threads,
                tls_key_store,
                tls_trust_store,
            } => {
                if let (Some(key_store), Some(trust_store)) = (tls_key_store, tls_trust_store) {
                    bench::use_tls(&key_store, &trust_store)?;
                }
                bench::load(&bench::LoadOptions {
                    servers: bench::parse_servers(&servers)?,
                    clients,
                    op,
                    size,
                    reads_percent: reads,
                    duration,
                    warmup,
                    threads,
                })
                .map(|_| ())
            }
            Bench::Memory { target, znodes, size, ensembles, keep } => {
                bench::memory(&bench::MemoryOptions {
                    target,
                    znodes,
                    size,
                    tick_time_ms: ensembles.tick_time,
                    zk_classpath: ensembles.zk_classpath,
                    keep,
                })
                .map(|_| ())
            }
            Bench::Compare {
                clients,
                size,
                duration,
                warmup,
                jvm_warmup,
                threads,
                rounds,
                znodes,
                failover_runs,
                ensembles,
            } => bench::compare(&bench::CompareOptions {
                clients,
                size,
                duration,
                warmup,
                jvm_warmup,
                threads,
                rounds: rounds.max(1),
                znodes,
                failover_runs,
                tick_time_ms: ensembles.tick_time,
                zk_classpath: ensembles.zk_classpath,
            }),
            Bench::Scale(args) => scale::scale(&scale::ScaleOptions {
                scenario: args.scenario,
                targets: args.target,
                members: args.members,
                znodes: args.znodes,
                size: args.size,
                fanout: args.fanout,
                duration: args.duration,
                clients: args.clients,
                hot: args.hot,
                snap_count: args.snap_count,
                sessions: args.sessions,
                session_timeout_ms: i32::try_from(args.session_timeout.as_millis())
                    .context("--session-timeout is too long")?,
                tick_time_ms: args.tick_time,
                zk_classpath: args.zk_classpath,
                zk_jvm_flags: args.zk_jvm_flags.split_whitespace().map(String::from).collect(),
                summary: args.summary,
                keep: args.keep,
            })
            .map(|_| ()),
        },
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// The runtime of `ensemble server`: single-threaded for one thread, else `threads` workers.
fn server_runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build().context("starting the tokio runtime")
}

fn serve(config_path: Option<PathBuf>, threads: usize) -> Result<()> {
    let (config, server_id) = match &config_path {
        None => (ServerConfig::standalone_default(), ServerId(0)),
        Some(path) => {
            // ZK compat: zkServer.sh passes SERVER_JVMFLAGS/JVMFLAGS (and the java.env beside
            // zoo.cfg) to the JVM as system properties.
            let system = SystemProperties::from_environment(path.parent())
                .map_err(anyhow::Error::msg)
                .context("reading java.env")?;
            ServerConfig::load_with_system_properties(path, &system)
                .with_context(|| format!("loading {}", path.display()))?
        }
    };
    server_runtime(threads)?.block_on(async move {
        let mut server = match ensemble::runtime::start(config, server_id).await {
            Ok(server) => server,
            Err(
                error @ (ensemble::runtime::ServerError::Locked(_)
                | ensemble::runtime::ServerError::Disk { .. }
                | ensemble::runtime::ServerError::Recovery(_)),
            ) => {
                tracing::error!("cannot start: {error}");
                std::process::exit(ensemble::runtime::EXIT_DATA_DIR_UNUSABLE);
            }
            Err(error) => return Err(error).context("starting the server"),
        };
        let stopped = tokio::select! {
            interrupted = tokio::signal::ctrl_c() => {
                interrupted.context("waiting for Ctrl-C")?;
                None
            }
            outcome = server.stopped() => Some(outcome),
        };
        match stopped {
            None => {
                tracing::info!("interrupted; shutting down");
                server.shutdown().await;
                Ok(())
            }
            // The node loop logged the failure; its ports are closed. Exit at once with a code
            // of its own, so that a supervisor (systemd, Kubernetes) restarts the server.
            Some(Err(ensemble::runtime::ServerFailure::Storage(_))) => {
                std::process::exit(ensemble::runtime::EXIT_STORAGE_FAILURE)
            }
            Some(Err(failure)) => Err(failure).context("the server stopped"),
            Some(Ok(())) => bail!("the server stopped"),
        }
    })
}

/// `ensemble local`: every member gets a directory with its zoo.cfg, myid and data, so a
/// member could also be run alone with `ensemble server --config <dir>/zoo.cfg`.
fn local(members: u64, tick_time_ms: u32, keep: bool) -> Result<()> {
    if !(1..=255).contains(&members) {
        bail!("an ensemble has 1 to 255 members");
    }
    let base = std::env::temp_dir().join(format!("ensemble-local-{}", std::process::id()));
    let configs = local_configs(&base, members, tick_time_ms)?;
    let result = tokio_runtime()?.block_on(async move {
        let mut servers = Vec::new();
        for (config, id) in configs {
            servers.push(ensemble::runtime::start(config, id).await.context("starting a member")?);
        }
        let connect: Vec<String> = servers.iter().map(|s| s.client_addr.to_string()).collect();
        println!("{}", connect.join(","));
        let outcome = tokio::select! {
            leader = wait_for_leader(&servers) => match leader {
                Some(leader) => {
                    tracing::info!(%leader, "the ensemble serves; Ctrl-C stops it");
                    tokio::signal::ctrl_c().await
                }
                None => Ok(()),
            },
            interrupted = tokio::signal::ctrl_c() => interrupted,
        };
        tracing::info!("shutting down");
        for server in servers {
            server.shutdown().await;
        }
        outcome.context("waiting for Ctrl-C")
    });
    if keep {
        eprintln!("data kept in {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

/// Writes `<base>/member<N>/{zoo.cfg,myid}` on free loopback ports and loads them back.
fn local_configs(
    base: &Path,
    members: u64,
    tick_time_ms: u32,
) -> Result<Vec<(ServerConfig, ServerId)>> {
    // Bind every port at once so that they differ, then let them go for the members.
    let listeners: Vec<std::net::TcpListener> = (0..3 * members)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("finding free ports")?;
    let ports: Vec<u16> =
        listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?;
    drop(listeners);
    let mut servers = String::new();
    for id in 1..=members {
        let at = 3 * (id as usize - 1);
        let (client, quorum, election) = (ports[at], ports[at + 1], ports[at + 2]);
        // The election port is part of the grammar; Ensemble elects over the quorum port.
        servers
            .push_str(&format!("server.{id}=127.0.0.1:{quorum}:{election};127.0.0.1:{client}\n"));
    }
    let mut configs = Vec::new();
    for id in 1..=members {
        let dir = base.join(format!("member{id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("myid"), format!("{id}\n"))?;
        let text = format!(
            "tickTime={tick_time_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             4lw.commands.whitelist=*\nstandaloneEnabled=false\n{servers}",
            dir.display()
        );
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, text)?;
        configs.push(
            ServerConfig::load(&path).with_context(|| format!("loading {}", path.display()))?,
        );
    }
    Ok(configs)
}

/// Polls the members until one leads and every other one serves; `None` if a member stopped.
async fn wait_for_leader(servers: &[ServerHandle]) -> Option<ServerId> {
    loop {
        let mut leader = None;
        let mut serving = 0;
        for server in servers {
            let report = server.report().await?;
            serving += usize::from(report.serving);
            if report.serving && matches!(report.mode, Mode::Leader | Mode::Standalone) {
                leader = Some(server.server_id);
            }
        }
        if serving == servers.len() {
            if let Some(leader) = leader {
                return Some(leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `zkServer.sh status`: the mode from `srvr`.
fn status(server: &str) -> Result<()> {
    let mut stream =
        TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"srvr")?;
    let mut text = String::new();
    stream.read_to_string(&mut text).context("reading the srvr answer")?;
    println!("Client address: {server}");
    if text.contains("not currently serving") {
        bail!("{server} is not currently serving requests (electing a leader or syncing)");
    }
    let Some(mode) = text.lines().find_map(|l| l.strip_prefix("Mode: ")) else {
        bail!("{server} did not report a mode:\n{text}");
    };
    println!("Mode: {mode}");
    Ok(())
}
