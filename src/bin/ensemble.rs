//! The `ensemble` command: run a server, ask a server for its status.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ensemble::core::ServerId;
use ensemble::runtime::config::ServerConfig;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "ensemble", version, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server: on 127.0.0.1:2181 with data in ./ensemble-data, or from a zoo.cfg.
    Server {
        /// A ZooKeeper `zoo.cfg`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a server's mode (leader, follower, observer, standalone) like `zkServer.sh status`.
    Status {
        /// The server's client address.
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Server { config } => serve(config),
        Command::Status { server } => status(&server),
    }
}

fn serve(config_path: Option<PathBuf>) -> Result<()> {
    let (config, server_id) = match &config_path {
        None => (ServerConfig::standalone_default(), ServerId(0)),
        Some(path) => {
            ServerConfig::load(path).with_context(|| format!("loading {}", path.display()))?
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let server =
            ensemble::runtime::start(config, server_id).await.context("starting the server")?;
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        tracing::info!("interrupted; shutting down");
        server.shutdown().await;
        Ok(())
    })
}

fn status(server: &str) -> Result<()> {
    let mut stream =
        TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"srvr")?;
    let mut text = String::new();
    stream.read_to_string(&mut text).context("reading the srvr answer")?;
    let Some(mode) = text.lines().find_map(|l| l.strip_prefix("Mode: ")) else {
        bail!("{server} did not report a mode:\n{text}");
    };
    println!("Client address: {server}");
    println!("Mode: {mode}");
    Ok(())
}
