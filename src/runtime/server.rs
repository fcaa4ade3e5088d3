//! One server process: recovers the node from disk, binds the client port and runs the loop
//! that owns the `Node`, feeding it inputs and carrying out its effects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info};

use crate::core::ids::{ConnId, ServerId, WriteId};
use crate::core::io::{Effect, Input};
use crate::core::time::Now;
use crate::core::Node;
use crate::runtime::config::ServerConfig;
use crate::runtime::disk;
use crate::runtime::fourlw;
use crate::runtime::net::{accept_loop, ClientPort, ToConn, ToNode};

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

/// Recovers, binds and starts serving. Returns once the client port is listening.
pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    let clock = Clock { start: Instant::now() };
    let disk_config = config.disk_config();
    let recovered = disk::recover(&disk_config).map_err(|source| ServerError::Disk {
        dir: disk_config.data_log_dir.display().to_string(),
        source,
    })?;
    let server_id = ServerId(config.server_id.unwrap_or(0));
    let node_config = config.node_config(server_id, rand::random());
    let now = clock.now();
    let snapshot_body = recovered.snapshot.as_ref().map(|(_, body)| body.as_ref());
    let node = Node::recover(node_config, now, snapshot_body, recovered.txns)?;

    let addr = config.client_addr();
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
    let client_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
    info!(%client_addr, "serving clients");

    let (to_node, from_clients) = mpsc::channel(NODE_INPUT_QUEUE_MAX);
    let writers: Arc<Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>> = Arc::default();
    let (disk_writer, persisted) = disk::spawn_writer(disk_config);
    let whitelist = config.four_letter_whitelist.clone();
    let info = fourlw::RuntimeInfo::from_config(&config);
    let port = Arc::new(ClientPort {
        to_node,
        writers: writers.clone(),
        frame_max_bytes: config.jute_max_buffer,
        max_client_cnxns: config.max_client_cnxns,
        four_letter: Arc::new(move |word, report| {
            fourlw::respond(*word, &whitelist, report.as_ref(), &info.refreshed())
        }),
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

async fn run_node(
    mut node: Node,
    clock: Clock,
    mut from_clients: mpsc::Receiver<ToNode>,
    mut persisted: mpsc::UnboundedReceiver<WriteId>,
    disk_writer: disk::DiskWriter,
    writers: Arc<Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut effects = Vec::new();
    // A fresh node may owe a snapshot (after replaying a log): give it a first tick.
    node.step(clock.now(), Input::Tick, &mut effects);
    loop {
        carry_out(&mut effects, &disk_writer, &writers);
        let deadline = node.deadline().map(|ms| clock.instant(ms));
        let input = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            up_to = persisted.recv() => match up_to {
                Some(up_to) => Input::Persisted { up_to },
                None => {
                    error!("the disk writer stopped; stopping the server");
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

fn carry_out(
    effects: &mut Vec<Effect>,
    disk_writer: &disk::DiskWriter,
    writers: &Mutex<HashMap<ConnId, mpsc::UnboundedSender<ToConn>>>,
) {
    if effects.is_empty() {
        return;
    }
    let mut writers = writers.lock().expect("writer table lock");
    for effect in effects.drain(..) {
        match effect {
            Effect::SendClient { conn, frame } => {
                if let Some(writer) = writers.get(&conn) {
                    let _ = writer.send(ToConn::Frame(frame));
                }
            }
            Effect::CloseClient { conn } => {
                if let Some(writer) = writers.remove(&conn) {
                    let _ = writer.send(ToConn::Close);
                }
            }
            Effect::Write { id, write } => disk_writer.submit(id, write),
            // A standalone node never talks to peers; peer links arrive with ensemble mode.
            Effect::SendPeer { .. } => {}
        }
    }
}
