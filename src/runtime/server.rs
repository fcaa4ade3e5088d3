//! One server process: recovers the node from disk, binds the client port and runs the loop
//! that owns the `Node`, feeding it inputs and carrying out its effects.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::core::ids::{ConnId, ServerId};
use crate::core::io::{Effect, Input};
use crate::core::time::Now;
use crate::core::Node;
use crate::runtime::config::ServerConfig;
use crate::runtime::disk;
use crate::runtime::fourlw;
use crate::runtime::net::{accept_loop, ClientPort, FourLetterResponder, ToConn, ToNode};

/// Inputs the node's loop may hold before client readers wait.
const NODE_INPUT_QUEUE_MAX: usize = 8_192;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be read or recovered.
    #[error("recovering {dir}: {source}")]
    Disk {
        /// The directory.
        dir: String,
        /// What went wrong.
        source: disk::DiskError,
    },
    /// The recovered state is inconsistent.
    #[error("rebuilding the tree: {0}")]
    Recovery(#[from] crate::core::node::RecoveryError),
    /// The client port could not be bound.
    #[error("binding the client port {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct ServerHandle {
    /// The bound client address.
    pub client_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    node_loop: JoinHandle<()>,
    acceptor: JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, stops the node loop and waits for it.
    pub async fn shutdown(mut self) {
        self.acceptor.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.node_loop).await;
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) {
        let _ = self.node_loop.await;
    }
}

/// The node's clock: monotonic ms since start, and the wall clock.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Now { mono_ms: self.start.elapsed().as_millis() as u64, wall_ms }
    }

    fn instant(&self, mono_ms: u64) -> Instant {
        self.start + Duration::from_millis(mono_ms)
    }
}

/// Recovers, binds and starts serving as `server_id` (0 for a standalone server). Returns once
/// the client port is listening.
pub async fn start(config: ServerConfig, server_id: ServerId) -> Result<ServerHandle, ServerError> {
    let clock = Clock { start: Instant::now() };
    for warning in &config.warnings {
        warn!("{warning}");
    }
    for note in &config.notes {
        info!("{note}");
    }
    let disk_config = disk_config(&config);
    let disk_error =
        |source| ServerError::Disk { dir: disk_config.data_log_dir.display().to_string(), source };
    // Blocking file reads, once, before the server serves anything.
    let (disk, recovered) =
        disk::Disk::open(disk_config.clone(), disk::FileDisk::new()).map_err(disk_error)?;
    for warning in &recovered.warnings {
        warn!("{warning}");
    }
    let node_config = config.node_config(server_id, rand::random());
    let now = clock.now();
    let snapshot_body = recovered.snapshot.as_ref().map(|(_, body)| body.as_ref());
    let node = Node::recover(node_config, now, snapshot_body, recovered.txns)?
        .with_epochs(recovered.accepted_epoch.unwrap_or(0), recovered.current_epoch.unwrap_or(0));

    let addr = client_socket_addr(&config, server_id);
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
    let client_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
    info!(%client_addr, server = %server_id, "serving clients");

    let (to_node, from_clients) = mpsc::channel(NODE_INPUT_QUEUE_MAX);
    let writers: Arc<Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>> = Arc::default();
    let (disk_writer, persisted) = disk::spawn_writer(disk).map_err(disk_error)?;
    let port = Arc::new(ClientPort {
        to_node,
        writers: writers.clone(),
        frame_max_bytes: config.frame_max_bytes,
        max_client_cnxns: config.max_client_cnxns as usize,
        four_letter: four_letter_responder(
            Arc::new(config),
            server_id,
            clock,
            client_addr,
            &disk_config,
        ),
    });
    let acceptor = tokio::spawn(accept_loop(listener, port));
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let node_loop = tokio::spawn(run_node(
        node,
        clock,
        from_clients,
        persisted,
        disk_writer,
        writers,
        shutdown_rx,
    ));
    Ok(ServerHandle { client_addr, shutdown: Some(shutdown_tx), node_loop, acceptor })
}

/// Where to listen for clients: the configured address, or 127.0.0.1:2181.
fn client_socket_addr(config: &ServerConfig, server_id: ServerId) -> SocketAddr {
    let fallback = SocketAddr::from(([127, 0, 0, 1], 2181));
    let Some(hp) = config.client_address(server_id) else { return fallback };
    let host = if hp.host.is_empty() { "0.0.0.0".to_string() } else { hp.host };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, hp.port),
        Err(_) => (host.as_str(), hp.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or(fallback),
    }
}

fn four_letter_responder(
    config: Arc<ServerConfig>,
    server_id: ServerId,
    clock: Clock,
    client_addr: SocketAddr,
    disk: &disk::DiskConfig,
) -> FourLetterResponder {
    let host = Arc::new(fourlw::HostEnvironment::detect());
    let snap_dir = absolute(&disk.data_dir);
    let log_dir = absolute(&disk.data_log_dir);
    Arc::new(move |word, report, requester| {
        let now = clock.now();
        let info = fourlw::RuntimeInfo {
            config: &config,
            server_id,
            now,
            uptime_ms: now.mono_ms,
            client_port: Some(client_addr.port()),
            snap_dir: snap_dir.display().to_string(),
            log_dir: log_dir.display().to_string(),
            snap_dir_bytes: fourlw::dir_size(&snap_dir),
            log_dir_bytes: fourlw::dir_size(&log_dir),
            open_fds: fourlw::open_fd_count(),
            max_fds: fourlw::max_fd_count(),
            requester: Some(requester),
            host: &host,
        };
        fourlw::respond(*word, &config.four_letter_words, report.as_ref(), &info)
    })
}

fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

async fn run_node(
    mut node: Node,
    clock: Clock,
    mut from_clients: mpsc::Receiver<ToNode>,
    mut persisted: disk::PersistedReceiver,
    mut disk_writer: disk::WriterHandle,
    writers: Arc<Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut effects = Vec::new();
    // A fresh node may owe a snapshot (after replaying a log): give it a first tick.
    node.step(clock.now(), Input::Tick, &mut effects);
    loop {
        if let Err(error) = carry_out(&mut effects, &mut disk_writer, &writers).await {
            error!(%error, "the disk writer failed; stopping the server");
            break;
        }
        let deadline = node.deadline().map(|ms| clock.instant(ms));
        let input = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            up_to = persisted.recv() => match up_to {
                Ok(up_to) => Input::Persisted { up_to },
                Err(error) => {
                    // ZK compat: SyncRequestProcessor stops the server on a disk error; acking
                    // anything after it could lose acknowledged writes.
                    error!(%error, "stopping the server");
                    break;
                }
            },
            message = from_clients.recv() => match message {
                Some(ToNode::Input(input)) => input,
                Some(ToNode::Report(reply)) => {
                    let _ = reply.send(node.report());
                    continue;
                }
                None => break,
            },
            _ = sleep_until(deadline) => Input::Tick,
        };
        node.step(clock.now(), input, &mut effects);
    }
    info!("node loop stopped");
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn carry_out(
    effects: &mut Vec<Effect>,
    disk_writer: &mut disk::WriterHandle,
    writers: &Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>,
) -> Result<(), disk::WriterError> {
    for effect in effects.drain(..) {
        match effect {
            Effect::SendClient { conn, frame } => {
                let writers = writers.lock().expect("writer table lock");
                if let Some(writer) = writers.get(&conn) {
                    let _ = writer.send(ToConn::Frame(frame));
                }
            }
            Effect::CloseClient { conn } => {
                let removed = writers.lock().expect("writer table lock").remove(&conn);
                if let Some(writer) = removed {
                    let _ = writer.send(ToConn::Close);
                }
            }
            Effect::Write { id, write } => disk_writer.submit(id, write).await?,
            // A standalone node never talks to peers; peer links arrive with ensemble mode.
            Effect::SendPeer { .. } => {}
        }
    }
    Ok(())
}

/// The disk layout and policy from the configuration.
fn disk_config(config: &ServerConfig) -> disk::DiskConfig {
    let mut disk = disk::DiskConfig::new(&config.data_dir, &config.data_log_dir);
    disk.snap_retain_count = config.snap_retain_count as usize;
    disk
}
