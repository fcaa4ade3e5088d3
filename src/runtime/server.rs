//! One server process: recovers the node from disk, binds the client port (and, for an
//! ensemble member, the quorum port) and runs the loop that owns the `Node`, feeding it inputs
//! and carrying out its effects.
//!
//! ZK compat: `QuorumPeerMain` / `ZooKeeperServerMain`. The client port listens from the start,
//! also while a member elects or syncs, so that four-letter words answer then. Until it serves,
//! the core holds a client's connect request briefly when a quorum of voters is in reach (it is
//! answered the moment the member serves), and otherwise closes the connection, as ZooKeeper
//! refuses them while `zkServer` is not running, so that clients move on to another member.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::core::canary::Canaries;
use crate::core::ids::{ConnId, ServerId};
use crate::core::io::{DurableWrite, Effect, Input};
use crate::core::report::ServerReport;
use crate::core::time::Now;
use crate::core::Node;
use crate::runtime::config::ServerConfig;
use crate::runtime::disk;
use crate::runtime::fourlw;
use crate::runtime::net::{
    accept_loop, BlueThrottle, ClientPort, ClientTls, ConnWriter, FourLetterResponder, ToNode,
    Transport,
};
use crate::runtime::peer::{
    PeerError, PeerEvent, PeerLinks, PeerNetwork, PeerNetworkConfig, PeerSecurity,
    PEER_EVENT_QUEUE_MAX,
};
use crate::runtime::slow::{self, Ms, SlowWatch, Verdict};

/// Inputs the node's loop may hold before client readers wait.
const NODE_INPUT_QUEUE_MAX: usize = 8_192;

/// The writers of live client connections, by id.
type Writers = Arc<Mutex<HashMap<ConnId, ConnWriter>>>;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another process uses the data directory (see `disk::DiskError::Locked`).
    #[error("{0}")]
    Locked(disk::DiskError),
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
    /// The client TLS settings or stores could not be used.
    #[error("client TLS: {0}")]
    Tls(#[from] crate::runtime::tls::TlsError),
    /// The quorum port could not be bound.
    #[error("starting the peer links of server {server}: {source}")]
    Peers {
        /// This server's id.
        server: ServerId,
        /// What went wrong.
        source: PeerError,
    },
}

/// Why a server stopped by itself.
#[derive(Debug, thiserror::Error)]
pub enum ServerFailure {
    /// A write to the data directories failed (or the disk writer died): the server stopped
    /// at once, as nothing after the failure may be acknowledged. Run by `ensemble server`,
    /// the process exits with [`EXIT_STORAGE_FAILURE`].
    #[error("storage failure: {0}")]
    Storage(disk::WriterError),
    /// The node loop panicked (a bug) or was cancelled.
    #[error("the node loop ended abnormally: {0}")]
    Aborted(String),
}

/// The exit code of `ensemble server` after a [`ServerFailure::Storage`]: a write or sync of
/// the log, a snapshot or an epoch file failed (`ENOSPC`, `EIO`, `EROFS`, ...).
/// ZK compat: ZooKeeper exits with 10 (`ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT`) when a snapshot
/// cannot be written; Ensemble exits with it for every storage failure.
pub const EXIT_STORAGE_FAILURE: i32 = 10;

/// The exit code of `ensemble server` when the data directories cannot be used at start-up:
/// locked by another process, unreadable, or not recoverable.
/// ZK compat: `ExitCode.UNABLE_TO_ACCESS_DATADIR`.
pub const EXIT_DATA_DIR_UNUSABLE: i32 = 3;

/// A running server.
pub struct ServerHandle {
    /// The id the server runs as (0 standalone).
    pub server_id: ServerId,
    /// The bound client address.
    pub client_addr: SocketAddr,
    /// The bound secure (TLS-only) client address, with `secureClientPort`.
    pub secure_client_addr: Option<SocketAddr>,
    /// The bound quorum address of an ensemble member.
    pub peer_addr: Option<SocketAddr>,
    to_node: mpsc::Sender<ToNode>,
    shutdown: Option<oneshot::Sender<()>>,
    node_loop: JoinHandle<Result<(), ServerFailure>>,
    acceptor: JoinHandle<()>,
    peers: Option<PeerNetwork>,
}

impl ServerHandle {
    /// The node's summary, or `None` once the node loop has stopped.
    pub async fn report(&self) -> Option<ServerReport> {
        let (tx, rx) = oneshot::channel();
        self.to_node.send(ToNode::Report(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Stops accepting clients and peers, stops the node loop (which closes the peer links)
    /// and waits for it.
    pub async fn shutdown(mut self) {
        self.acceptor.abort();
        self.peers.take();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.node_loop).await;
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(mut self) {
        let _ = self.stopped().await;
    }

    /// Waits until the server stops by itself, closes its ports and says why it stopped. It
    /// does not stop unless it fails; `Ok` only if its node loop ended otherwise (its input
    /// channel closed). Cancel-safe: a `select!` may drop it and call `shutdown` after.
    pub async fn stopped(&mut self) -> Result<(), ServerFailure> {
        let outcome = match (&mut self.node_loop).await {
            Ok(outcome) => outcome,
            Err(error) => Err(ServerFailure::Aborted(error.to_string())),
        };
        self.acceptor.abort();
        self.peers.take();
        outcome
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
/// the client port (and the quorum port of an ensemble member) is listening; the member then
/// links up with its peers and elects a leader on its own.
pub async fn start(config: ServerConfig, server_id: ServerId) -> Result<ServerHandle, ServerError> {
    start_with(config, server_id, Seams::new(disk::FileDisk::new())).await
}

/// What a test may swap in under a server; [`start`] uses the real file system and no canary.
pub struct Seams<F> {
    /// Where the data directories live: a [`disk::MemDisk`] for simulations (madsim does not
    /// simulate files, and a `MemDisk` can model a power loss when a simulated node is killed).
    pub fs: F,
    /// Deliberate protocol bugs to switch on (they exist only with the `canary` feature), so
    /// that a simulation can show its checks catch them.
    pub canaries: Canaries,
}

impl<F> Seams<F> {
    /// `fs` and no canary.
    pub fn new(fs: F) -> Seams<F> {
        Seams { fs, canaries: Canaries::NONE }
    }
}

/// Like [`start`], on the file system and with the canaries of `seams`.
pub async fn start_with<F: disk::FileSystem>(
    config: ServerConfig,
    server_id: ServerId,
    seams: Seams<F>,
) -> Result<ServerHandle, ServerError> {
    let clock = Clock { start: Instant::now() };
    for warning in &config.warnings {
        warn!("{warning}");
    }
    for note in &config.notes {
        info!("{note}");
    }
    for taken in &config.system_properties {
        info!("{taken}");
    }
    let slow_threshold = slow::threshold(config.slow_step_warn_ms);
    let mut disk_config = disk_config(&config);
    disk_config.slow_batch_warn = slow_threshold;
    let disk_error = |source| match source {
        locked @ disk::DiskError::Locked { .. } => ServerError::Locked(locked),
        source => ServerError::Disk { dir: disk_config.data_log_dir.display().to_string(), source },
    };
    // Blocking file reads, once, before the server serves anything.
    let reading = Instant::now();
    let (disk, recovered) = disk::Disk::open(disk_config.clone(), seams.fs).map_err(disk_error)?;
    for warning in &recovered.warnings {
        warn!("{warning}");
    }
    let read_ms = reading.elapsed().as_millis() as u64;
    let mut node_config = config.node_config(server_id, crate::runtime::random_u64());
    node_config.canaries = seams.canaries;
    let now = clock.now();
    let rebuilding = Instant::now();
    let snapshot_bytes = recovered.snapshot.as_ref().map_or(0, |(_, body)| body.len());
    let snapshot_body = recovered.snapshot.as_ref().map(|(_, body)| body.as_ref());
    let txns = recovered.txns.len();
    let node = Node::recover(node_config, now, snapshot_body, recovered.txns)?
        .with_epochs(recovered.accepted_epoch.unwrap_or(0), recovered.current_epoch.unwrap_or(0));
    drop(recovered.snapshot);
    let rebuild_ms = rebuilding.elapsed().as_millis() as u64;
    info!(
        read_ms,
        snapshot_bytes,
        txns,
        rebuild_ms,
        total_ms = clock.start.elapsed().as_millis() as u64,
        "start-up: data read (files, checksums), tree rebuilt (snapshot decoded, log replayed)"
    );

    let client_tls = client_tls(&config)?;
    let addr = client_socket_addr(&config, server_id);
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
    let client_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
    let transport = match &client_tls {
        Some(tls) if config.client_tls.port_unification => Transport::Unified(tls.clone()),
        _ => Transport::Plain,
    };
    let unified = matches!(transport, Transport::Unified(_));
    info!(%client_addr, server = %server_id, tls = unified, "serving clients");
    let secure = match (config.secure_client_port, &client_tls) {
        (Some(port), Some(tls)) => {
            let host = config.secure_client_port_address.as_deref().unwrap_or("0.0.0.0");
            let addr = resolve(host, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            let bound =
                listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
            info!(secure_client_addr = %bound, server = %server_id, "serving TLS clients");
            Some((listener, bound, Transport::Tls(tls.clone())))
        }
        _ => None,
    };
    let secure_client_addr = secure.as_ref().map(|(_, bound, _)| *bound);

    let (peer_tx, peer_events) = mpsc::channel(PEER_EVENT_QUEUE_MAX);
    let peers = match PeerNetworkConfig::from_server_config(&config, server_id) {
        Some(peer_config) => {
            let peers_error = |source| ServerError::Peers { server: server_id, source };
            let jaas = config.auth.jaas_file.as_ref().map(|(path, _)| path.as_path());
            let security = PeerSecurity::from_config(&config, jaas).map_err(peers_error)?;
            Some(
                PeerNetwork::start_secured(peer_config, security, peer_tx)
                    .await
                    .map_err(peers_error)?,
            )
        }
        None => None,
    };
    let peer_addr = peers.as_ref().map(|peers| peers.local_addr);

    let (to_node, from_clients) = mpsc::channel(NODE_INPUT_QUEUE_MAX);
    let writers: Writers = Arc::default();
    let (disk_writer, persisted) = disk::spawn_writer(disk).map_err(disk_error)?;
    let limits = config.client_limits.clone();
    let config_cert_reload = config.client_tls.cert_reload;
    let port = Arc::new(ClientPort {
        to_node: to_node.clone(),
        writers: writers.clone(),
        frame_max_bytes: config.frame_max_bytes,
        max_client_cnxns: config.max_client_cnxns as usize,
        handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        outstanding_limit: config.outstanding_max,
        conn_throttle: Mutex::new(BlueThrottle::new(&limits, 0)),
        limits,
        started: Instant::now(),
        in_process: Arc::default(),
        unsent_total: Arc::default(),
        next_conn: 1.into(),
        per_ip: Mutex::default(),
        four_letter: four_letter_responder(
            Arc::new(config),
            server_id,
            clock,
            client_addr,
            &disk_config,
        ),
    });
    let reload = client_tls.filter(|_| config_cert_reload).map(|tls| tls.context.clone());
    // One task for every listener (and the certificate reloader), so one abort stops them all.
    let acceptor = tokio::spawn(async move {
        let secure = async {
            if let Some((listener, _, transport)) = secure {
                accept_loop(listener, port.clone(), transport).await;
            }
        };
        let reload = async {
            if let Some(context) = reload {
                context.watch(CERT_RELOAD_POLL).await;
            }
        };
        tokio::join!(accept_loop(listener, port.clone(), transport), secure, reload);
    });
    let stop_accepting = acceptor.abort_handle();
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let node_loop = NodeLoop {
        node,
        clock,
        from_clients,
        peer_events: peers.is_some().then_some(peer_events),
        persisted,
        disk_writer,
        writers,
        touched: Vec::new(),
        links: PeerLinks::default(),
        pending: VecDeque::new(),
        slow: SlowWatch::new(slow_threshold),
        round: Round::default(),
        stop_accepting,
    };
    let node_loop = tokio::spawn(node_loop.run(shutdown_rx));
    Ok(ServerHandle {
        server_id,
        client_addr,
        secure_client_addr,
        peer_addr,
        to_node,
        shutdown: Some(shutdown_tx),
        node_loop,
        acceptor,
        peers,
    })
}

/// How often `client.certReload` looks at the store files.
const CERT_RELOAD_POLL: Duration = Duration::from_secs(1);

/// The client port's TLS, when a secure port or port unification asks for it: the stores are
/// read here, so a bad store stops the start with a clear error.
fn client_tls(
    config: &ServerConfig,
) -> Result<Option<Arc<ClientTls>>, crate::runtime::tls::TlsError> {
    if config.secure_client_port.is_none() && !config.client_tls.port_unification {
        return Ok(None);
    }
    let settings = config.client_tls.settings()?;
    let context =
        crate::runtime::tls::TlsContext::new(settings, crate::runtime::tls::Role::Server)?;
    info!(
        client_auth = ?context.settings().client_auth,
        cert_reload = config.client_tls.cert_reload,
        "client TLS ready (x509 auth provider on)"
    );
    Ok(Some(Arc::new(ClientTls {
        context,
        x509_super_user: config.client_tls.x509_super_user.clone(),
    })))
}

/// `host:port` as a socket address (the first the name resolves to; all interfaces if none).
fn resolve(host: &str, port: u16) -> SocketAddr {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], port))),
    }
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
    // ZK compat: `ZooTrace`'s mask is process-wide state that only `stmk` changes.
    let trace_mask = Arc::new(AtomicI64::new(fourlw::TRACE_MASK_DEFAULT));
    Arc::new(move |word, argument, report, requester| {
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
            trace_mask: trace_mask.load(Ordering::Relaxed),
            argument,
        };
        let answer = fourlw::answer(*word, &config.four_letter_words, report.as_ref(), &info);
        if let Some(mask) = answer.trace_mask {
            trace_mask.store(mask, Ordering::Relaxed);
        }
        answer
    })
}

fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The task that owns the `Node`: every input goes through `step`, every effect is carried out
/// here, in order.
struct NodeLoop {
    node: Node,
    clock: Clock,
    from_clients: mpsc::Receiver<ToNode>,
    /// Events of the peer links (`None` when standalone).
    peer_events: Option<mpsc::Receiver<PeerEvent>>,
    persisted: disk::PersistedReceiver,
    disk_writer: disk::WriterHandle,
    writers: Writers,
    /// Connections sent frames since the last flush.
    touched: Vec<ConnId>,
    links: PeerLinks,
    /// Inputs produced while carrying out effects or handling link events (a link broken
    /// because its queue overflowed, a link replaced by a newer one), fed before anything new.
    pending: VecDeque<Input>,
    /// Decides which rounds are slow enough to log.
    slow: SlowWatch,
    /// What the current round did so far, and when its phases ended.
    round: Round,
    /// Closes the client port when the disk fails.
    stop_accepting: tokio::task::AbortHandle,
}

/// One round of the node loop: the `step`s of a drain, then the carrying out of their effects
/// and the socket writes. Kept for the slow-round warning: a few `Instant` reads per round.
#[derive(Default)]
struct Round {
    /// When the first input was taken (`None` between rounds).
    started: Option<std::time::Instant>,
    /// When the last `step` returned.
    stepped: Option<std::time::Instant>,
    /// The loop thread's CPU time when the first input was taken. The drain has no `.await`,
    /// so the steps run on one thread: a step that took far longer than its CPU time waited
    /// for a core (or blocked in the kernel), it did not compute.
    cpu_started: Duration,
    /// The CPU time the steps of the drain took.
    step_cpu: Duration,
    /// What was stepped or handled.
    inputs: InputKinds,
    /// What was carried out.
    effects: EffectKinds,
}

/// The inputs of a round by kind, plus the things the loop handled without the node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct InputKinds {
    tick: u32,
    connected: u32,
    frame: u32,
    closed: u32,
    peer_msg: u32,
    link_up: u32,
    link_down: u32,
    persisted: u32,
    /// Peer-link events turned into inputs (counted again as the inputs they became).
    peer_event: u32,
    /// Reports for four-letter words.
    report: u32,
}

impl InputKinds {
    fn count(&mut self, input: &Input) {
        let slot = match input {
            Input::Tick => &mut self.tick,
            Input::ClientConnected { .. } => &mut self.connected,
            Input::ClientFrame { .. } => &mut self.frame,
            Input::ClientClosed { .. } => &mut self.closed,
            Input::PeerMessage { .. } => &mut self.peer_msg,
            Input::PeerLinkUp { .. } => &mut self.link_up,
            Input::PeerLinkDown { .. } => &mut self.link_down,
            Input::Persisted { .. } => &mut self.persisted,
        };
        *slot += 1;
    }
}

impl fmt::Display for InputKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = [
            ("tick", self.tick),
            ("connected", self.connected),
            ("frame", self.frame),
            ("closed", self.closed),
            ("peer_msg", self.peer_msg),
            ("link_up", self.link_up),
            ("link_down", self.link_down),
            ("persisted", self.persisted),
            ("peer_event", self.peer_event),
            ("report", self.report),
        ];
        let mut first = true;
        for (name, count) in kinds.into_iter().filter(|(_, count)| *count > 0) {
            write!(f, "{}{name}={count}", if first { "" } else { " " })?;
            first = false;
        }
        if first {
            write!(f, "none")?;
        }
        Ok(())
    }
}

/// The effects of a round by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct EffectKinds {
    client_frames: u32,
    client_bytes: u64,
    closes: u32,
    peer_msgs: u32,
    appends: u32,
    /// Snapshots handed to the disk writer (frozen images; encoded by the disk thread).
    snapshots: u32,
    other_writes: u32,
    /// Connections written to after the effects.
    flushed: u32,
}

impl EffectKinds {
    fn total(&self) -> u32 {
        self.client_frames
            + self.closes
            + self.peer_msgs
            + self.appends
            + self.snapshots
            + self.other_writes
    }
}

/// Where a round's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RoundTimes {
    /// The `step` calls (and the polling of the input channels between them).
    step: Duration,
    /// Of `step`, the loop thread's CPU time; the rest it waited for a core or in the kernel.
    step_cpu: Duration,
    /// Carrying out the effects, including any wait for room in the disk queue.
    effects: Duration,
    /// Of `effects`, the wait for room in the disk writer's queue.
    disk_wait: Duration,
    /// Writing the replies to the client sockets.
    flush: Duration,
}

impl RoundTimes {
    fn total(&self) -> Duration {
        self.step + self.effects + self.flush
    }

    /// The phase that took the longest, to name in the warning.
    fn slowest_phase(&self) -> &'static str {
        if self.disk_wait * 2 > self.effects && self.effects >= self.step.max(self.flush) {
            "disk queue full"
        } else if self.step >= self.effects && self.step >= self.flush {
            "step"
        } else if self.effects >= self.flush {
            "effects"
        } else {
            "socket writes"
        }
    }
}

/// What the loop does next.
enum Next {
    /// Feed this to the node.
    Step(Input),
    /// Handled without the node; look again.
    Again,
    /// Stop the server.
    Stop,
    /// Stop the server: the disk failed.
    Fail(disk::WriterError),
}

/// Inputs the loop steps, when they are already waiting, before it carries out the effects of
/// the first. Under load a burst of requests then costs one round of sends and disk submissions
/// (proposals and replies leave together, the disk writer sees one batch) instead of one per
/// request; the bound keeps replies to earlier requests from waiting behind an endless burst.
const DRAIN_MAX: usize = 64;

impl NodeLoop {
    async fn run(mut self, shutdown: oneshot::Receiver<()>) -> Result<(), ServerFailure> {
        let outcome = self.serve(shutdown).await;
        if let Err(failure) = &outcome {
            // Fail-stop: one line that names the file and the error; no client hears anything
            // more from this server (its pending requests see the connection close).
            error!("{failure}; the server stops");
            self.stop_accepting.abort();
            self.writers.lock().expect("writer table lock").clear();
            return outcome;
        }
        // Wait for the writer to drain, close the files and release the directory locks, so
        // that a server started on them next (in this process too) finds them free.
        let NodeLoop { disk_writer, mut persisted, .. } = self;
        drop(disk_writer);
        persisted.closed().await;
        info!("node loop stopped");
        outcome
    }

    async fn serve(&mut self, mut shutdown: oneshot::Receiver<()>) -> Result<(), ServerFailure> {
        let mut effects = Vec::new();
        // A fresh node may owe a snapshot (after replaying a log): give it a first tick.
        self.round.started = Some(std::time::Instant::now());
        self.round.cpu_started = thread_cpu();
        self.round.inputs.tick += 1;
        self.node.step(self.clock.now(), Input::Tick, &mut effects);
        self.round.stepped = Some(std::time::Instant::now());
        self.round.step_cpu = thread_cpu().saturating_sub(self.round.cpu_started);
        loop {
            if let Err(error) = self.carry_out(&mut effects).await {
                return Err(ServerFailure::Storage(error));
            }
            let input = match self.pending.pop_front() {
                Some(input) => input,
                None => match self.next(&mut shutdown).await {
                    Next::Step(input) => input,
                    Next::Again => continue,
                    Next::Stop => return Ok(()),
                    Next::Fail(error) => return Err(ServerFailure::Storage(error)),
                },
            };
            // One clock reading per drain: the inputs of a drain arrive within microseconds of
            // each other, and the clock (two `clock_gettime`s) was a visible cost per input.
            self.round.started = Some(std::time::Instant::now());
            self.round.cpu_started = thread_cpu();
            let now = self.clock.now();
            self.round.inputs.count(&input);
            self.node.step(now, input, &mut effects);
            let mut looked = 0;
            while looked < DRAIN_MAX {
                looked += 1;
                let input = match self.pending.pop_front() {
                    Some(input) => input,
                    None => match self.try_next(now) {
                        Some(Next::Step(input)) => input,
                        Some(Next::Again) => continue,
                        Some(Next::Stop) => return Ok(()),
                        Some(Next::Fail(error)) => return Err(ServerFailure::Storage(error)),
                        None => break,
                    },
                };
                self.round.inputs.count(&input);
                self.node.step(now, input, &mut effects);
            }
            self.round.stepped = Some(std::time::Instant::now());
            self.round.step_cpu = thread_cpu().saturating_sub(self.round.cpu_started);
        }
    }

    /// What [`Self::next`] would return if it is ready at `now`, in the same order of
    /// preference; `None` if nothing is.
    fn try_next(&mut self, now: Now) -> Option<Next> {
        if let Some(news) = self.persisted.try_recv() {
            return Some(match news {
                Ok(up_to) => Next::Step(Input::Persisted { up_to }),
                Err(error) => Next::Fail(error),
            });
        }
        if self.node.deadline().is_some_and(|ms| ms <= now.mono_ms) {
            return Some(Next::Step(Input::Tick));
        }
        if let Some(events) = &mut self.peer_events {
            match events.try_recv() {
                Ok(event) => {
                    self.round.inputs.peer_event += 1;
                    self.links.on_event(event, &mut self.pending);
                    return Some(Next::Again);
                }
                Err(mpsc::error::TryRecvError::Disconnected) => self.peer_events = None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
        match self.from_clients.try_recv() {
            Ok(ToNode::Input(input)) => Some(Next::Step(input)),
            Ok(ToNode::Report(reply)) => {
                self.round.inputs.report += 1;
                let _ = reply.send(self.node.report());
                Some(Next::Again)
            }
            Ok(ToNode::ResetStats(which)) => {
                self.node.reset_stats(which);
                Some(Next::Again)
            }
            Ok(ToNode::FourLetterPacket(received)) => {
                self.node.count_four_letter_packet(received);
                Some(Next::Again)
            }
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Next::Stop),
        }
    }

    /// Waits for the next thing to do. The order matters under load: a due timer goes before
    /// new traffic (so pings and timeouts are never starved), peer traffic before client
    /// traffic.
    async fn next(&mut self, shutdown: &mut oneshot::Receiver<()>) -> Next {
        let deadline = self.node.deadline().map(|ms| self.clock.instant(ms));
        tokio::select! {
            biased;
            _ = shutdown => Next::Stop,
            up_to = self.persisted.recv() => match up_to {
                Ok(up_to) => Next::Step(Input::Persisted { up_to }),
                // ZK compat: SyncRequestProcessor stops the server on a disk error; acking
                // anything after it could lose acknowledged writes.
                Err(error) => Next::Fail(error),
            },
            _ = sleep_until(deadline) => Next::Step(Input::Tick),
            event = next_peer_event(&mut self.peer_events) => {
                match event {
                    Some(event) => self.links.on_event(event, &mut self.pending),
                    None => self.peer_events = None,
                }
                Next::Again
            },
            message = self.from_clients.recv() => match message {
                Some(ToNode::Input(input)) => Next::Step(input),
                Some(ToNode::Report(reply)) => {
                    let _ = reply.send(self.node.report());
                    Next::Again
                }
                Some(ToNode::ResetStats(which)) => {
                    self.node.reset_stats(which);
                    Next::Again
                }
                Some(ToNode::FourLetterPacket(received)) => {
                    self.node.count_four_letter_packet(received);
                    Next::Again
                }
                None => Next::Stop,
            },
        }
    }

    async fn carry_out(&mut self, effects: &mut Vec<Effect>) -> Result<(), disk::WriterError> {
        let effects_started = self.round.stepped.unwrap_or_else(std::time::Instant::now);
        let mut result = Ok(());
        let kinds = &mut self.round.effects;
        for effect in effects.drain(..) {
            match effect {
                Effect::SendClient { conn, frame } => {
                    kinds.client_frames += 1;
                    kinds.client_bytes += frame.len() as u64;
                    let mut writers = self.writers.lock().expect("writer table lock");
                    let Some(writer) = writers.get(&conn) else { continue };
                    match writer.queue(&frame) {
                        Ok(()) => self.touched.push(conn),
                        Err(slow) => {
                            // A client that does not read its replies is cut off instead of
                            // growing our memory; it sees a closed connection and reconnects.
                            // The node forgets it at once, so that what it already asked for
                            // is not answered into the void.
                            warn!(
                                %conn,
                                addr = %slow.addr,
                                unsent_bytes = slow.unsent_bytes,
                                budget_bytes = slow.budget_bytes,
                                "slow reader: the client does not read its replies; closing \
                                 its connection (ensemble.connReplyBudgetBytes, \
                                 ensemble.replyBudgetBytes)"
                            );
                            if let Some(writer) = writers.remove(&conn) {
                                writer.abort();
                            }
                            self.pending.push_back(Input::ClientClosed { conn });
                        }
                    }
                }
                Effect::CloseClient { conn } => {
                    kinds.closes += 1;
                    // Dropping the writer closes the connection after the queued frames.
                    drop(self.writers.lock().expect("writer table lock").remove(&conn));
                }
                Effect::Write { id, write } => {
                    match &write {
                        DurableWrite::Append(_) => kinds.appends += 1,
                        DurableWrite::Snapshot { .. } => kinds.snapshots += 1,
                        _ => kinds.other_writes += 1,
                    }
                    let submitted = self.disk_writer.submit_at(id, write, effects_started).await;
                    if let Err(error) = submitted {
                        result = Err(error);
                        break;
                    }
                }
                Effect::SendPeer { to, msg } => {
                    kinds.peer_msgs += 1;
                    self.links.send(to, msg, &mut self.pending);
                }
            }
        }
        let effects_done = std::time::Instant::now();
        // One non-blocking write per connection for everything this drain sent it.
        self.touched.sort_unstable();
        self.touched.dedup();
        let writers = self.writers.lock().expect("writer table lock");
        for conn in self.touched.drain(..) {
            if let Some(writer) = writers.get(&conn) {
                kinds.flushed += 1;
                writer.flush();
            }
        }
        drop(writers);
        // Between rounds (the loop handled a peer event or a report without the node) there
        // is nothing to time.
        let Some(started) = self.round.started else { return result };
        let ended = std::time::Instant::now();
        let stepped = self.round.stepped.unwrap_or(started);
        let times = RoundTimes {
            step: stepped.saturating_duration_since(started),
            step_cpu: self.round.step_cpu,
            effects: effects_done.saturating_duration_since(stepped),
            disk_wait: self.disk_writer.take_blocked(),
            flush: ended.saturating_duration_since(effects_done),
        };
        let round = std::mem::take(&mut self.round);
        if let Verdict::Warn { suppressed } = self.slow.judge(ended, times.total()) {
            warn_slow_round(&round, &times, suppressed);
        }
        result
    }
}

/// CPU time of the calling thread (zero where the clock is missing): the slow-round warning
/// tells computing from waiting with it.
fn thread_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The warning for a round that took longer than the threshold.
fn warn_slow_round(round: &Round, times: &RoundTimes, suppressed: u64) {
    let effects = &round.effects;
    warn!(
        took_ms = %Ms(times.total()),
        slowest = times.slowest_phase(),
        step_ms = %Ms(times.step),
        step_cpu_ms = %Ms(times.step_cpu),
        effects_ms = %Ms(times.effects),
        disk_wait_ms = %Ms(times.disk_wait),
        flush_ms = %Ms(times.flush),
        inputs = %round.inputs,
        effects = effects.total(),
        client_frames = effects.client_frames,
        client_bytes = effects.client_bytes,
        closes = effects.closes,
        peer_msgs = effects.peer_msgs,
        appends = effects.appends,
        snapshots = effects.snapshots,
        other_writes = effects.other_writes,
        flushed_conns = effects.flushed,
        suppressed,
        "slow node-loop round"
    );
}

async fn next_peer_event(events: &mut Option<mpsc::Receiver<PeerEvent>>) -> Option<PeerEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The disk layout and policy from the configuration.
fn disk_config(config: &ServerConfig) -> disk::DiskConfig {
    let mut disk = disk::DiskConfig::new(&config.data_dir, &config.data_log_dir);
    disk.snap_retain_count = config.snap_retain_count as usize;
    disk.purge_interval = (config.purge_interval_hours > 0)
        .then(|| Duration::from_secs(3600 * u64::from(config.purge_interval_hours)));
    disk.preallocate_bytes = config.pre_alloc_size_bytes;
    disk.fsync = config.force_sync;
    disk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// `forceSync=no`, and only it, turns the txn log's `fdatasync` off.
    #[test]
    fn force_sync_reaches_the_disk_writer() {
        let config = |line: &str| {
            let text = format!("dataDir=/tmp/d\nclientPort=2181\n{line}\n");
            ServerConfig::parse(&text).expect("valid")
        };
        assert!(disk_config(&config("")).fsync);
        assert!(disk_config(&config("forceSync=yes")).fsync);
        assert!(!disk_config(&config("forceSync=no")).fsync);
    }

    #[test]
    fn a_round_names_its_inputs_by_kind() {
        let mut kinds = InputKinds::default();
        assert_eq!(kinds.to_string(), "none");
        kinds.count(&Input::Tick);
        kinds.count(&Input::Persisted { up_to: crate::core::ids::WriteId(3) });
        kinds.count(&Input::Persisted { up_to: crate::core::ids::WriteId(4) });
        kinds.report += 1;
        assert_eq!(kinds.to_string(), "tick=1 persisted=2 report=1");
    }

    #[test]
    fn the_warning_names_the_phase_that_took_the_time() {
        let times = |step, effects, disk_wait, flush| RoundTimes {
            step: ms(step),
            step_cpu: ms(step),
            effects: ms(effects),
            disk_wait: ms(disk_wait),
            flush: ms(flush),
        };
        assert_eq!(times(80, 1, 0, 2).slowest_phase(), "step");
        assert_eq!(times(1, 80, 0, 2).slowest_phase(), "effects");
        assert_eq!(times(1, 80, 70, 2).slowest_phase(), "disk queue full");
        assert_eq!(times(1, 2, 0, 80).slowest_phase(), "socket writes");
        assert_eq!(times(30, 20, 0, 15).total(), ms(65));
    }
}
