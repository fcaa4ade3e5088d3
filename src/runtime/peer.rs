//! Peer links: one TCP connection between every pair of members, carrying `PeerMsg`s with the
//! semantics the core assumes (FIFO per link, nothing delivered after a break, a break always
//! reported).
//!
//! ZK compat: `QuorumCnxManager` (one connection per pair, the larger id dials, the dialer
//! introduces itself first) and the learner sockets of `Learner`/`LearnerHandler` (a link that
//! hears nothing for `syncLimit` ticks is dead). Ensemble carries election and Zab traffic on
//! the same link, on the quorum port of each `server.N` line; the election port is not used.
//!
//! Pieces:
//! - [`PeerNetwork`]: the tasks that own sockets. It listens on this member's quorum port and
//!   dials every member with a smaller id, reconnecting with jittered exponential backoff
//!   ([`BACKOFF_MIN`] to [`BACKOFF_MAX`]). Each established link reports [`PeerEvent`]s to the
//!   node's loop on one bounded channel.
//! - [`PeerLinks`]: the node loop's view of the links. It turns events into `Input`s and
//!   `Effect::SendPeer` into queued messages. A link's identity ([`LinkId`]) travels with every
//!   event, so a message from a link the node was already told is down can never reach it, and
//!   a message the node sends can only go to the link it was last told is up.
//! - The frame codec (`frame`): `u32` big-endian length, one version byte
//!   ([`PEER_PROTOCOL_VERSION`]), then the bincode of a [`LinkFrame`]; frames over
//!   [`PEER_FRAME_MAX_BYTES`] are refused.
//!
//! Handshake, in order (anything else is dropped and logged with `tracing::warn`):
//! 1. TLS ([`tls`], quorum TLS): with `sslQuorum` the dialer runs a TLS handshake first, both
//!    certificates verified. A port with `sslQuorum` or `portUnification` sniffs the first byte
//!    (a TLS record or a frame's length prefix) and takes plain text only with
//!    `portUnification`; a plain dialer refused there gets the reason as an `Auth { Error }`
//!    frame in plain text.
//! 2. `Hello`: the dialer sends `Hello { from, to }`; the acceptor checks that `from` is a
//!    configured member with a larger id than its own and that `to` is its own id, and answers
//!    with its own `Hello`.
//! 3. SASL ([`auth`], quorum SASL): the dialer (ZooKeeper's learner) sends `Auth` tokens if it
//!    requires SASL, or one `Heartbeat` to say it will not; an acceptor with SASL enabled reads
//!    that first frame and authenticates or refuses as `quorum.auth.*` say. Only then do both
//!    sides report the link up.
//!
//! The stream below the frames is a `PeerStream` (TCP, or TLS over it). Under madsim the
//! same code runs over the simulated TCP; the madsim tests use quorum SASL but not TLS.
//!
//! Invariants, for each peer: at most one link is current in [`PeerLinks`]; `Input::PeerLinkUp`
//! and `Input::PeerLinkDown` alternate, starting with up; every `Input::PeerMessage` from a peer
//! arrived on the link of the last `PeerLinkUp`, after it and before the matching
//! `PeerLinkDown`. When a link's send queue ([`PeerTiming::send_queue_max`] messages) is full,
//! the link is broken instead of blocking the node.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::core::ids::ServerId;
use crate::core::io::Input;
use crate::core::snapshot::SnapshotImage;
use crate::core::zab::{PeerMsg, SnapBody};
use crate::runtime::config::{ServerConfig, ServerSpec};
use crate::runtime::tls::TLS_HANDSHAKE_RECORD;

pub mod auth;
mod digest;
mod frame;
mod security;
pub mod tls;

pub use auth::{AuthStatus, PeerSasl};
use frame::decode_frame_within;
pub use frame::{
    decode_frame, encode_frame, FrameError, LinkFrame, PEER_FRAME_MAX_BYTES, PEER_PROTOCOL_VERSION,
    SNAP_CHUNK_BYTES, SNAP_MAX_BYTES,
};
pub use tls::PeerTls;

/// Events the links may queue for the node's loop before link tasks wait.
pub const PEER_EVENT_QUEUE_MAX: usize = 8_192;

/// First reconnect delay after a failed dial (and the pause after a link breaks).
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How often the quorum key and trust stores are checked with `sslQuorumReloadCertFiles`.
const CERT_RELOAD_POLL: Duration = Duration::from_secs(1);

/// Bytes of queued messages a link writes in one go.
const WRITE_BATCH_BYTES: usize = 1 << 20;

/// The largest handshake frame: a `Hello` is a few bytes and a SASL token a few hundred, so a
/// stranger cannot make us buffer a large frame before it has said who it is.
const HELLO_FRAME_MAX_BYTES: usize = 4_096;

/// Connections that may be in their handshake at once; more are dropped (a peer port open to
/// strangers must not let them hold unbounded tasks and buffers).
const HANDSHAKES_MAX: usize = 64;

/// Why a link could not be established or why it ended.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// Nothing arrived (not even a heartbeat) for too long.
    #[error("nothing received for {0:?}")]
    Idle(Duration),
    /// A frame could not be decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The handshake was not what the configuration allows.
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// A `Hello` arrived after the handshake.
    #[error("unexpected hello after the handshake")]
    UnexpectedHello,
    /// Quorum TLS refused the connection (handshake, certificate, plain text on a TLS-only
    /// port).
    #[error("quorum TLS: {0}")]
    Tls(String),
    /// The quorum TLS or SASL configuration cannot be used (stores, JAAS file, flags).
    #[error("quorum security: {0}")]
    Security(String),
    /// Quorum SASL refused the link (or the peer refused ours).
    #[error("quorum authentication: {0}")]
    Auth(String),
    /// The node's loop dropped the link (replaced or overflowing) or stopped.
    #[error("dropped by the node")]
    Dropped,
    /// Encoding a SNAP's snapshot failed (its thread panicked); the learner syncs again on a
    /// new link.
    #[error("encoding a SNAP failed")]
    SnapEncode,
}

/// Timing and bounds of the links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTiming {
    /// A link with nothing to send for this long sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// A link that receives nothing for this long is broken; also bounds a dial and a
    /// handshake.
    pub idle_timeout: Duration,
    /// Messages queued per link before the link is broken.
    pub send_queue_max: usize,
}

impl PeerTiming {
    /// ZooKeeper's timing for `tickTime` and `syncLimit`: heartbeats every half tick (as the
    /// leader pings), and a link is dead after `syncLimit` ticks of silence (as the learner's
    /// socket timeout).
    pub fn from_ticks(tick_time_ms: u32, sync_limit: u32) -> PeerTiming {
        let tick = Duration::from_millis(u64::from(tick_time_ms.max(1)));
        PeerTiming {
            heartbeat_interval: (tick / 2).max(Duration::from_millis(1)),
            idle_timeout: tick * sync_limit.max(2),
            send_queue_max: 16_384,
        }
    }
}

/// A member's quorum address as configured (`host:quorumPort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddress {
    /// Host name or IP literal.
    pub host: String,
    /// The quorum port.
    pub port: u16,
}

/// What the peer network needs: who we are, where we listen, whom we link to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerNetworkConfig {
    /// This member.
    pub me: ServerId,
    /// Our own quorum address, to listen on.
    pub listen: PeerAddress,
    /// Every other member.
    pub peers: BTreeMap<ServerId, PeerAddress>,
    /// Heartbeats, timeouts and queue bounds.
    pub timing: PeerTiming,
}

impl PeerNetworkConfig {
    /// The links of member `me` of a quorum configuration; `None` for a standalone server or an
    /// id without a `server.N` line.
    pub fn from_server_config(config: &ServerConfig, me: ServerId) -> Option<PeerNetworkConfig> {
        if !config.is_quorum() {
            return None;
        }
        let address =
            |spec: &ServerSpec| PeerAddress { host: spec.host.clone(), port: spec.quorum_port };
        let listen = address(config.servers.get(&me.0)?);
        let peers = config
            .servers
            .iter()
            .filter(|(id, _)| **id != me.0)
            .map(|(id, spec)| (ServerId(*id), address(spec)))
            .collect();
        let timing = PeerTiming::from_ticks(config.tick_time_ms, config.sync_limit);
        Some(PeerNetworkConfig { me, listen, peers, timing })
    }

    /// ZK compat: `QuorumCnxManager` keeps the connection initiated by the larger id.
    pub fn dials(&self, peer: ServerId) -> bool {
        self.me > peer
    }
}

/// One established connection, named uniquely within a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// The node loop's handle on a link: its queue, and the switch that closes it when dropped.
#[derive(Debug)]
pub struct LinkSender {
    link: LinkId,
    queue: mpsc::Sender<PeerMsg>,
    // Dropping this ends the link's task at once, even in the middle of a blocked write.
    _close: oneshot::Sender<()>,
}

/// What link tasks tell the node's loop, in order per link.
#[derive(Debug)]
pub enum PeerEvent {
    /// A link to `peer` completed its handshake.
    Up {
        /// The member.
        peer: ServerId,
        /// Its queue.
        sender: LinkSender,
    },
    /// A message arrived on `link`.
    Message {
        /// The sender.
        peer: ServerId,
        /// The link it came on.
        link: LinkId,
        /// The message.
        msg: PeerMsg,
    },
    /// `link` ended.
    Down {
        /// The member.
        peer: ServerId,
        /// The link.
        link: LinkId,
    },
}

/// The node loop's table of current links (see the module docs for its invariants).
#[derive(Debug, Default)]
pub struct PeerLinks {
    links: BTreeMap<ServerId, LinkSender>,
}

impl PeerLinks {
    /// Applies an event from the links; the inputs it causes for the node go to `inputs`.
    pub fn on_event(&mut self, event: PeerEvent, inputs: &mut VecDeque<Input>) {
        match event {
            PeerEvent::Up { peer, sender } => {
                if let Some(old) = self.links.insert(peer, sender) {
                    // A newer connection (the peer restarted before we noticed the old one
                    // die) replaces the old one, which closes when `old` drops.
                    info!(%peer, old = old.link.0, "a new link replaces the current one");
                    inputs.push_back(Input::PeerLinkDown { peer });
                }
                inputs.push_back(Input::PeerLinkUp { peer });
            }
            PeerEvent::Message { peer, link, msg } => {
                if self.current(peer) == Some(link) {
                    inputs.push_back(Input::PeerMessage { from: peer, msg });
                }
            }
            PeerEvent::Down { peer, link } => {
                if self.current(peer) == Some(link) {
                    self.links.remove(&peer);
                    inputs.push_back(Input::PeerLinkDown { peer });
                }
            }
        }
    }

    /// Queues `msg` on the current link to `to`; drops it if there is none. A full queue
    /// breaks the link and puts `Input::PeerLinkDown` in `inputs`.
    pub fn send(&mut self, to: ServerId, msg: PeerMsg, inputs: &mut VecDeque<Input>) {
        let Some(sender) = self.links.get(&to) else { return };
        match sender.queue.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                warn!(peer = %to, msg = msg.name(), "peer send queue full; breaking the link");
                self.links.remove(&to);
                inputs.push_back(Input::PeerLinkDown { peer: to });
            }
            // The link's task ended and its `Down` is on the way; TCP would drop this too.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// The current link to `peer`.
    pub fn current(&self, peer: ServerId) -> Option<LinkId> {
        self.links.get(&peer).map(|sender| sender.link)
    }

    /// The peers with a current link, in id order.
    pub fn connected(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.links.keys().copied()
    }
}

/// The tasks that own the peer sockets. Dropping it stops listening and dialing; established
/// links end when the node loop drops their [`LinkSender`]s.
pub struct PeerNetwork {
    /// The address the quorum port is bound to.
    pub local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl PeerNetwork {
    /// Binds the quorum port and starts accepting and dialing, with no TLS or SASL. Events go
    /// to `events`.
    pub async fn start(
        config: PeerNetworkConfig,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<PeerNetwork, PeerError> {
        PeerNetwork::start_secured(config, PeerSecurity::default(), events).await
    }

    /// Like [`PeerNetwork::start`], with quorum TLS and SASL as `security` says.
    pub async fn start_secured(
        config: PeerNetworkConfig,
        security: PeerSecurity,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<PeerNetwork, PeerError> {
        let listener = TcpListener::bind((config.listen.host.as_str(), config.listen.port))
            .await
            .map_err(|source| PeerError::Io { op: "binding the quorum port", source })?;
        PeerNetwork::with_listener_secured(config, security, listener, events)
    }

    /// Starts on an already bound listener (for a caller that picked a free port).
    pub fn with_listener(
        config: PeerNetworkConfig,
        listener: TcpListener,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<PeerNetwork, PeerError> {
        PeerNetwork::with_listener_secured(config, PeerSecurity::default(), listener, events)
    }

    /// Like [`PeerNetwork::with_listener`], with quorum TLS and SASL as `security` says.
    pub fn with_listener_secured(
        config: PeerNetworkConfig,
        security: PeerSecurity,
        listener: TcpListener,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<PeerNetwork, PeerError> {
        let local_addr = listener
            .local_addr()
            .map_err(|source| PeerError::Io { op: "reading the quorum address", source })?;
        info!(me = %config.me, %local_addr, ?security, "listening for peers");
        let shared = Arc::new(Shared { config, security, events, next_link: AtomicU64::new(1) });
        let mut tasks = vec![tokio::spawn(accept_loop(shared.clone(), listener))];
        if let Some(tls) = shared.security.tls.as_ref().filter(|tls| tls.reload) {
            tasks.push(tokio::spawn(tls.context.clone().watch(CERT_RELOAD_POLL)));
        }
        for (peer, address) in &shared.config.peers {
            if shared.config.dials(*peer) {
                tasks.push(tokio::spawn(dial_loop(shared.clone(), *peer, address.clone())));
            }
        }
        Ok(PeerNetwork { local_addr, tasks })
    }
}

impl Drop for PeerNetwork {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A peer connection after TLS (if any) is set up.
pub(crate) type PeerStream = Box<dyn PeerIo>;

/// What a peer connection is: plain TCP or TLS over it.
pub(crate) trait PeerIo:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> PeerIo for T {}

/// Quorum TLS and SASL as this member runs them (nothing by default).
#[derive(Clone, Debug, Default)]
pub struct PeerSecurity {
    /// Quorum SASL; `None` when `quorum.auth.enableSasl` is false.
    pub sasl: Option<PeerSasl>,
    /// Quorum TLS; `None` when neither `sslQuorum` nor `portUnification` is set.
    pub tls: Option<PeerTls>,
}

/// What every link task of one member shares.
struct Shared {
    config: PeerNetworkConfig,
    security: PeerSecurity,
    events: mpsc::Sender<PeerEvent>,
    next_link: AtomicU64,
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    warn!(%addr, "too many peer handshakes in progress; dropping a connection");
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let handshake = accept_handshake(&shared, stream, addr).await;
                    drop(permit);
                    match handshake {
                        Ok((peer, stream, buffer, secure)) => {
                            run_link(&shared, peer, stream, buffer, secure).await
                        }
                        Err(error) => warn!(%addr, %error, "refusing a peer connection"),
                    }
                });
            }
            Err(error) => {
                warn!(%error, "accepting a peer connection failed");
                tokio::time::sleep(BACKOFF_MIN).await;
            }
        }
    }
}

/// Reads the dialer's `Hello`, checks it against the configuration and answers it, then
/// authenticates the dialer if quorum SASL is enabled.
async fn accept_handshake(
    shared: &Shared,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<(ServerId, PeerStream, BytesMut, bool), PeerError> {
    let _ = stream.set_nodelay(true);
    let config = &shared.config;
    let timeout = config.timing.idle_timeout;
    let (mut stream, mut buffer, secure) =
        tls::accept(shared.security.tls.as_ref(), stream, addr, timeout).await?;
    let hello = match read_frame(&mut stream, &mut buffer, timeout).await {
        Err(PeerError::Frame(_)) if !secure && buffer.first() == Some(&TLS_HANDSHAKE_RECORD) => {
            return Err(PeerError::Tls(format!(
                "a TLS connection from {addr}, but this quorum port takes plain text only \
                 (neither sslQuorum nor portUnification is set here)"
            )));
        }
        hello => hello?,
    };
    let LinkFrame::Hello { from, to } = hello else {
        return Err(PeerError::Handshake("the first frame is not a hello".into()));
    };
    if to != config.me {
        return Err(PeerError::Handshake(format!(
            "server {from} at {addr} dialed server {to}, but this is server {}",
            config.me
        )));
    }
    if !config.peers.contains_key(&from) {
        return Err(PeerError::Handshake(format!("server {from} is not in the configuration")));
    }
    if config.dials(from) {
        return Err(PeerError::Handshake(format!(
            "server {from} dialed, but the larger id dials (this is server {})",
            config.me
        )));
    }
    write_frame(&mut stream, &LinkFrame::Hello { from: config.me, to: from }).await?;
    if let Some(sasl) = &shared.security.sasl {
        if let Some(first) = auth::serve(sasl, &mut stream, &mut buffer, from, timeout).await? {
            // A dialer that does not authenticate may start with a message: keep it for the
            // link, in front of whatever followed it.
            let mut front = BytesMut::new();
            encode_frame(&first, &mut front)?;
            front.extend_from_slice(&buffer);
            buffer = front;
        }
    }
    Ok((from, stream, buffer, secure))
}

async fn dial_loop(shared: Arc<Shared>, peer: ServerId, address: PeerAddress) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match dial(&shared, peer, &address).await {
            Ok((stream, buffer, secure)) => {
                backoff = BACKOFF_MIN;
                run_link(&shared, peer, stream, buffer, secure).await;
            }
            Err(PeerError::Handshake(reason)) => {
                warn!(%peer, %reason, "peer refused by handshake");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(PeerError::Auth(reason)) => {
                warn!(%peer, %reason, "quorum authentication failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(PeerError::Tls(reason)) => {
                warn!(%peer, %reason, "quorum TLS failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(error) => {
                debug!(%peer, %error, "dialing failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        tokio::time::sleep(jittered(backoff)).await;
    }
}

/// Connects to `peer`, introduces ourselves, checks who answers, and authenticates if quorum
/// SASL requires it.
async fn dial(
    shared: &Shared,
    peer: ServerId,
    address: &PeerAddress,
) -> Result<(PeerStream, BytesMut, bool), PeerError> {
    let config = &shared.config;
    let timeout = config.timing.idle_timeout;
    let connect = TcpStream::connect((address.host.as_str(), address.port));
    let stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| PeerError::Idle(timeout))?
        .map_err(|source| PeerError::Io { op: "connecting", source })?;
    let _ = stream.set_nodelay(true);
    let (mut stream, secure) =
        tls::dial(shared.security.tls.as_ref(), stream, &address.host, timeout).await?;
    write_frame(&mut stream, &LinkFrame::Hello { from: config.me, to: peer }).await?;
    let mut buffer = BytesMut::with_capacity(256);
    match read_frame(&mut stream, &mut buffer, timeout).await? {
        LinkFrame::Hello { from, to } if from == peer && to == config.me => {}
        LinkFrame::Hello { from, to } => {
            return Err(PeerError::Handshake(format!(
                "expected server {peer} at {}:{}, found server {from} (which thinks we are {to})",
                address.host, address.port
            )))
        }
        LinkFrame::Auth { status: AuthStatus::Error, token } => {
            return Err(PeerError::Handshake(format!(
                "server {peer} refused the connection: {}",
                String::from_utf8_lossy(&token)
            )))
        }
        _ => return Err(PeerError::Handshake("the answer is not a hello".into())),
    }
    auth::learn(shared.security.sasl.as_ref(), &mut stream, &mut buffer, peer, timeout).await?;
    Ok((stream, buffer, secure))
}

/// Delay in [d/2, d], so members that lost a peer together do not redial in lockstep.
fn jittered(delay: Duration) -> Duration {
    let unit = (crate::runtime::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(0.5 + unit * 0.5)
}

/// Reports the link up, carries it until it breaks, reports it down.
async fn run_link(
    shared: &Shared,
    peer: ServerId,
    stream: PeerStream,
    buffer: BytesMut,
    secure: bool,
) {
    let link = LinkId(shared.next_link.fetch_add(1, Ordering::Relaxed));
    let (queue, outgoing) = mpsc::channel(shared.config.timing.send_queue_max.max(1));
    let (close, closed) = oneshot::channel();
    let sender = LinkSender { link, queue, _close: close };
    if shared.events.send(PeerEvent::Up { peer, sender }).await.is_err() {
        return;
    }
    info!(me = %shared.config.me, %peer, link = link.0, tls = secure, "peer link up");
    let (reader, writer) = tokio::io::split(stream);
    let timing = shared.config.timing;
    // `biased` everywhere in the runtime: tokio's random branch order is seeded per process
    // (not per madsim seed), so it would make simulations irreproducible.
    let end = tokio::select! {
        biased;
        end = read_messages(reader, buffer, peer, link, &shared.events, timing.idle_timeout) => end,
        end = write_messages(writer, outgoing, timing.heartbeat_interval) => end,
        _ = closed => PeerError::Dropped,
    };
    match end {
        PeerError::Auth(_) => {
            warn!(me = %shared.config.me, %peer, link = link.0, reason = %end, "peer link down");
        }
        _ => info!(me = %shared.config.me, %peer, link = link.0, reason = %end, "peer link down"),
    }
    let _ = shared.events.send(PeerEvent::Down { peer, link }).await;
}

/// Forwards messages to the node until the link breaks; returns why it broke.
async fn read_messages(
    mut reader: tokio::io::ReadHalf<PeerStream>,
    mut buffer: BytesMut,
    peer: ServerId,
    link: LinkId,
    events: &mpsc::Sender<PeerEvent>,
    idle_timeout: Duration,
) -> PeerError {
    let mut snap = SnapAssembly::default();
    loop {
        loop {
            match decode_frame(&mut buffer) {
                Ok(None) => break,
                Ok(Some(LinkFrame::Heartbeat)) => {}
                Ok(Some(LinkFrame::SnapChunk(chunk))) => {
                    if let Err(error) = snap.add(&chunk) {
                        return error;
                    }
                }
                Ok(Some(LinkFrame::Message(msg))) => {
                    let msg = snap.complete(msg);
                    if events.send(PeerEvent::Message { peer, link, msg }).await.is_err() {
                        return PeerError::Dropped;
                    }
                }
                Ok(Some(LinkFrame::Hello { .. })) => return PeerError::UnexpectedHello,
                Ok(Some(LinkFrame::Auth { status: AuthStatus::Error, token })) => {
                    let reason = String::from_utf8_lossy(&token);
                    return PeerError::Auth(format!("server {peer} refused the link: {reason}"));
                }
                // Only a member with quorum SASL disabled lets a link up without reading the
                // dialer's first frame; an `Auth` there means the dialer requires SASL.
                Ok(Some(LinkFrame::Auth { .. })) => {
                    return PeerError::Auth(format!(
                        "server {peer} tried to authenticate, but quorum.auth.enableSasl is \
                         false on this server"
                    ));
                }
                Err(error) => return error.into(),
            }
        }
        if let Err(error) = read_more(&mut reader, &mut buffer, idle_timeout).await {
            return error;
        }
    }
}

/// The chunks of a SNAP body received so far.
#[derive(Default)]
struct SnapAssembly {
    parts: BytesMut,
}

impl SnapAssembly {
    fn add(&mut self, chunk: &[u8]) -> Result<(), PeerError> {
        if self.parts.len() + chunk.len() > SNAP_MAX_BYTES {
            return Err(FrameError::TooLarge {
                len: self.parts.len() + chunk.len(),
                max: SNAP_MAX_BYTES,
            }
            .into());
        }
        self.parts.extend_from_slice(chunk);
        Ok(())
    }

    /// A SNAP with an empty body takes the chunks that came before it.
    fn complete(&mut self, msg: PeerMsg) -> PeerMsg {
        match msg {
            PeerMsg::Snap { zxid, body: SnapBody::Encoded(body), txns, committed }
                if body.is_empty() && !self.parts.is_empty() =>
            {
                let body = SnapBody::Encoded(self.parts.split().freeze());
                PeerMsg::Snap { zxid, body, txns, committed }
            }
            msg => msg,
        }
    }
}

/// Encodes a SNAP's image on the blocking pool, never on the node's thread.
async fn encode_snap(image: SnapshotImage) -> Result<Bytes, PeerError> {
    tokio::task::spawn_blocking(move || image.encode()).await.map_err(|error| {
        tracing::error!(%error, "encoding a SNAP failed; the link is closed");
        PeerError::SnapEncode
    })
}

/// Writes queued messages (batched) and heartbeats until the queue closes or a write fails.
async fn write_messages(
    mut writer: tokio::io::WriteHalf<PeerStream>,
    mut outgoing: mpsc::Receiver<PeerMsg>,
    heartbeat_interval: Duration,
) -> PeerError {
    let mut batch = BytesMut::new();
    loop {
        let first = tokio::select! {
            biased;
            msg = outgoing.recv() => match msg {
                Some(msg) => LinkFrame::Message(msg),
                None => return PeerError::Dropped,
            },
            _ = tokio::time::sleep(heartbeat_interval) => LinkFrame::Heartbeat,
        };
        let mut next = Some(first);
        while let Some(mut frame) = next.take() {
            if let LinkFrame::Message(PeerMsg::Snap {
                zxid,
                body: SnapBody::Image(image),
                txns,
                committed,
            }) = frame
            {
                let body = match encode_snap(image).await {
                    Ok(body) => body,
                    Err(error) => return error,
                };
                for chunk in chunks(&body, SNAP_CHUNK_BYTES) {
                    if let Err(error) = encode_frame(&LinkFrame::SnapChunk(chunk), &mut batch) {
                        return error.into();
                    }
                    if let Err(source) = write_flushed(&mut writer, &batch).await {
                        return PeerError::Io { op: "writing to the peer", source };
                    }
                    batch.clear();
                }
                // The SNAP itself follows its chunks with an empty body.
                let body = SnapBody::Encoded(Bytes::new());
                frame = LinkFrame::Message(PeerMsg::Snap { zxid, body, txns, committed });
            }
            if let Err(error) = encode_frame(&frame, &mut batch) {
                return error.into();
            }
            if batch.len() < WRITE_BATCH_BYTES {
                next = outgoing.try_recv().ok().map(LinkFrame::Message);
            }
        }
        // `flush` is a no-op on a real socket; madsim's socket delivers on it.
        if let Err(source) = write_flushed(&mut writer, &batch).await {
            return PeerError::Io { op: "writing to the peer", source };
        }
        batch.clear();
    }
}

/// `body` in pieces of at most `size` bytes, sharing its buffer.
fn chunks(body: &Bytes, size: usize) -> impl Iterator<Item = Bytes> + '_ {
    (0..body.len())
        .step_by(size)
        .map(move |start| body.slice(start..(start + size).min(body.len())))
}

async fn write_frame(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    frame: &LinkFrame,
) -> Result<(), PeerError> {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out)?;
    write_flushed(stream, &out)
        .await
        .map_err(|source| PeerError::Io { op: "writing to the peer", source })
}

/// Writes all of `bytes` and flushes: a no-op on a real socket, but madsim's simulated socket
/// delivers nothing until it is flushed.
async fn write_flushed(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Reads one handshake frame.
async fn read_frame(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    buffer: &mut BytesMut,
    idle_timeout: Duration,
) -> Result<LinkFrame, PeerError> {
    loop {
        if let Some(frame) = decode_frame_within(buffer, HELLO_FRAME_MAX_BYTES)? {
            return Ok(frame);
        }
        read_more(stream, buffer, idle_timeout).await?;
    }
}

async fn read_more(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    buffer: &mut BytesMut,
    idle_timeout: Duration,
) -> Result<(), PeerError> {
    match tokio::time::timeout(idle_timeout, reader.read_buf(buffer)).await {
        Err(_) => Err(PeerError::Idle(idle_timeout)),
        Ok(Ok(0)) => Err(PeerError::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(PeerError::Io { op: "reading from the peer", source }),
    }
}

#[cfg(test)]
mod tests;
