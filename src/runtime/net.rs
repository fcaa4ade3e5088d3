//! The client port: accepts TCP connections, answers four-letter words, splits the stream into
//! frames for the node and writes the node's frames back.
//!
//! Each connection has a reader task (bytes → `Input::ClientFrame`) and an outgoing buffer
//! ([`ConnWriter`]). The node's loop appends its frames to the buffer and, once per drain,
//! writes each touched buffer to its socket itself, without blocking: a reply costs one `send`
//! and no task wake-up. Only when a socket is full does the connection's writer task take over
//! until the buffer is empty again (it then waits on the socket with a real waker), and it
//! carries out the close. The node's input channel is bounded, so a flood of requests slows
//! the readers down instead of growing a queue without limit.
//!
//! Limits, all per connection unless said otherwise (see docs/operations.md, "Client
//! connection limits"):
//! - a deadline from accept until the first frame (the ConnectRequest) has arrived
//!   (`zookeeper.nio.sessionlessCnxnTimeout`); the core then bounds the rest of the handshake;
//! - the connection throttle (`connectionMaxTokens`, ...), checked on the ConnectRequest;
//! - reading pauses (ZooKeeper's `disableRecv`) while the connection has more than half its
//!   reply budget unsent, more than its request budget of unanswered requests, or
//!   unanswered requests while the server holds more than `globalOutstandingLimit`; requests
//!   wait while the server holds `requestThrottleLimit` of them;
//! - a connection whose unsent replies pass its reply budget, or whose next reply would take
//!   the unsent replies of all connections past the server's, is dropped as a slow reader.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::core::ids::ConnId;
use crate::core::io::Input;
use crate::core::report::{ServerReport, StatsReset};
use crate::runtime::config::ClientLimits;
use crate::runtime::fourlw::{FourLetterAnswer, FourLetterWord};
use crate::runtime::tls::{self, ClientStream, Rewind, TlsContext};
use crate::wire::frame::FrameDecoder;
use crate::wire::types::Id;

mod throttle;

pub use throttle::BlueThrottle;

/// Answers a four-letter word (with `stmk`'s 8-byte argument) from a report and the asking
/// address.
pub type FourLetterResponder = Arc<
    dyn Fn(&[u8; 4], Option<i64>, Option<ServerReport>, SocketAddr) -> FourLetterAnswer
        + Send
        + Sync,
>;

/// What connection tasks send to the node's loop.
pub enum ToNode {
    /// An input for `Node::step`.
    Input(Input),
    /// A request for a report (four-letter words).
    Report(oneshot::Sender<ServerReport>),
    /// Reset counters (`crst`, `srst`).
    ResetStats(StatsReset),
    /// A four-letter word arrived (`true`) or its answer was written (`false`): counted in
    /// the server's packets as ZooKeeper does.
    FourLetterPacket(bool),
}

/// The connection's unsent replies would pass its reply budget: the client does not read
/// them. Deviation: ZooKeeper queues replies without a bound (and runs out of heap).
#[derive(Debug)]
pub struct SlowReader {
    /// The client's address.
    pub addr: SocketAddr,
    /// Unsent bytes, counting the reply that did not fit.
    pub unsent_bytes: usize,
    /// The budget it passed.
    pub budget_bytes: usize,
}

/// The node loop's handle on a connection's outgoing side: [`ConnWriter::queue`] frames,
/// then [`ConnWriter::flush`] them. Dropping it closes the connection once the frames queued
/// before are written.
pub struct ConnWriter {
    out: Arc<ConnOut>,
}

/// A connection's outgoing side, shared by the node loop (through [`ConnWriter`]) and the
/// connection's writer task.
struct ConnOut {
    state: Mutex<OutState>,
    /// Wakes the writer task: the socket is full, broken, or the connection is to close.
    wake: Notify,
    /// Wakes the reader when it may have room again: bytes were written or a request answered.
    progress: Notify,
    /// The requests of every connection that the node has not answered yet.
    in_process: Arc<AtomicUsize>,
    /// The client's address (for the logs).
    addr: SocketAddr,
    /// The most unsent reply bytes before the client is dropped as a slow reader.
    reply_budget: usize,
    /// The unsent reply bytes of every connection.
    unsent_total: Arc<AtomicUsize>,
    /// The most of those before a connection with unsent replies is dropped.
    server_reply_budget: usize,
}

struct OutState {
    socket: WriteHalf<ClientStream>,
    /// Length-prefixed frames not yet written, in order.
    queued: BytesMut,
    /// The ConnectResponse went out: later frames are replies or notifications.
    handshake_answered: bool,
    /// Requests (xid > 0) handed to the node and not answered yet, with their sizes, in order.
    unanswered: VecDeque<(i32, usize)>,
    /// The sum of the sizes in `unanswered`.
    unanswered_bytes: usize,
    /// `queued.len()` as last added to the server's unsent total.
    counted: usize,
    /// The socket was full: the writer task writes until `queued` is empty, and nobody else
    /// touches the socket meanwhile (a write with the node loop's no-op waker would replace
    /// the task's waker, and the task would never wake).
    handed_over: bool,
    /// The node dropped its handle: close once `queued` is written.
    closing: bool,
    /// A write failed; nothing more is written.
    broken: bool,
}

/// What the writer task found when it finished writing.
enum Drained {
    /// Everything queued is written; wait for the next hand-over.
    Idle,
    /// Everything queued is written and the node closed the connection, or the socket failed.
    Done,
}

impl ConnOut {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        // The lock is only held across non-blocking socket calls and buffer copies.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OutState {
    /// Writes `queued` until it is empty (then flushes: a no-op on a real socket, but madsim's
    /// socket delivers on it) or the socket is full (`Pending`, with `cx`'s waker registered).
    fn write_queued(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.queued.is_empty() {
            match Pin::new(&mut self.socket).poll_write(cx, &self.queued) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(written)) => self.queued.advance(written),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    /// Counts a frame the node sends as the answer to the request it names, if it is one.
    /// Returns whether it was.
    fn note_answer(&mut self, frame: &[u8], in_process: &AtomicUsize) -> bool {
        if !self.handshake_answered {
            // The first frame is the ConnectResponse, which has no reply header.
            self.handshake_answered = true;
            return false;
        }
        let Some(xid) = frame.get(4..8).and_then(|b| b.first_chunk::<4>()) else { return false };
        let xid = i32::from_be_bytes(*xid);
        if xid <= 0 {
            return false;
        }
        let Some(at) = self.unanswered.iter().position(|(x, _)| *x == xid) else { return false };
        if let Some((_, len)) = self.unanswered.remove(at) {
            self.unanswered_bytes -= len;
            in_process.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Brings the server's unsent total up to date with `queued`.
    fn count_unsent(&mut self, total: &AtomicUsize) {
        let now = self.queued.len();
        if now > self.counted {
            total.fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            total.fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
    }

    /// Forgets the unanswered requests of a connection that is gone.
    fn forget_unanswered(&mut self, in_process: &AtomicUsize) {
        in_process.fetch_sub(self.unanswered.len(), Ordering::Relaxed);
        self.unanswered.clear();
        self.unanswered_bytes = 0;
    }
}

impl ConnWriter {
    /// Appends one length-prefixed frame to the outgoing buffer (written by the next
    /// [`Self::flush`]). Fails when the frame would take the unsent bytes past the reply
    /// budget (a frame alone in the buffer always fits); the caller then [`Self::abort`]s.
    pub fn queue(&self, frame: &[u8]) -> Result<(), SlowReader> {
        let mut state = self.out.lock();
        if state.broken {
            // The reader sees the connection end and tells the node.
            return Ok(());
        }
        let unsent_bytes = state.queued.len() + frame.len();
        if !state.queued.is_empty() {
            let server_unsent = self.out.unsent_total.load(Ordering::Relaxed) + frame.len();
            let budget_bytes = if unsent_bytes > self.out.reply_budget {
                Some(self.out.reply_budget)
            } else if server_unsent > self.out.server_reply_budget {
                Some(self.out.server_reply_budget)
            } else {
                None
            };
            if let Some(budget_bytes) = budget_bytes {
                return Err(SlowReader { addr: self.out.addr, unsent_bytes, budget_bytes });
            }
        }
        state.queued.extend_from_slice(frame);
        state.count_unsent(&self.out.unsent_total);
        let answered = state.note_answer(frame, &self.out.in_process);
        drop(state);
        if answered {
            self.out.progress.notify_one();
        }
        Ok(())
    }

    /// Closes the connection now, discarding what is unsent (a slow reader).
    pub fn abort(self) {
        let mut state = self.out.lock();
        state.queued = BytesMut::new();
        state.count_unsent(&self.out.unsent_total);
        state.broken = true;
        drop(state);
        // Dropping `self` marks the connection closing and wakes the writer, which closes it.
    }

    /// Writes what is queued without blocking. If the socket is full (or fails), the
    /// connection's writer task takes over.
    pub fn flush(&self) {
        let mut state = self.out.lock();
        if state.handed_over || state.broken || state.queued.is_empty() {
            return;
        }
        let written = state.write_queued(&mut Context::from_waker(Waker::noop()));
        state.count_unsent(&self.out.unsent_total);
        let drained = state.queued.is_empty();
        let done = matches!(written, Poll::Ready(Ok(())));
        match written {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => {
                debug!(%error, "write failed");
                state.broken = true;
            }
            Poll::Pending => state.handed_over = true,
        }
        drop(state);
        if drained {
            self.out.progress.notify_one();
        }
        if !done {
            self.out.wake.notify_one();
        }
    }
}

impl Drop for ConnWriter {
    fn drop(&mut self) {
        let mut state = self.out.lock();
        state.closing = true;
        // The node answers nothing more on this connection.
        state.forget_unanswered(&self.out.in_process);
        drop(state);
        self.out.wake.notify_one();
    }
}

/// The writer task of a connection: idle until the node loop hands it a full socket, a
/// failure or the close; returns once the connection is closed (everything queued written)
/// or broken.
async fn write_out(out: Arc<ConnOut>) {
    'idle: loop {
        out.wake.notified().await;
        loop {
            let writing = std::future::poll_fn(|cx| {
                let mut state = out.lock();
                if !state.broken {
                    let before = state.queued.len();
                    let written = state.write_queued(cx);
                    state.count_unsent(&out.unsent_total);
                    if state.queued.len() < before {
                        // The reader may be waiting for the unsent bytes to go down.
                        out.progress.notify_one();
                    }
                    match written {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(error)) => {
                            debug!(%error, "write failed");
                            state.broken = true;
                        }
                        Poll::Pending => {
                            state.handed_over = true;
                            return Poll::Pending;
                        }
                    }
                }
                state.handed_over = false;
                Poll::Ready(if state.broken || state.closing {
                    Drained::Done
                } else {
                    Drained::Idle
                })
            });
            // A wake-up while the socket is full may be an abort (a slow reader): look again.
            let drained = tokio::select! {
                biased;
                drained = writing => drained,
                _ = out.wake.notified() => continue,
            };
            match drained {
                Drained::Idle => continue 'idle,
                Drained::Done => break 'idle,
            }
        }
    }
    {
        // What a broken connection could not write no longer counts.
        let mut state = out.lock();
        state.queued = BytesMut::new();
        state.count_unsent(&out.unsent_total);
    }
    let _ = std::future::poll_fn(|cx| Pin::new(&mut out.lock().socket).poll_shutdown(cx)).await;
}

/// Shared by the acceptor and every connection.
pub struct ClientPort {
    /// The node's input channel.
    pub to_node: mpsc::Sender<ToNode>,
    /// Writers of live connections, by id.
    pub writers: Arc<Mutex<HashMap<ConnId, ConnWriter>>>,
    /// `jute.maxbuffer`.
    pub frame_max_bytes: usize,
    /// `maxClientCnxns` (0 = unlimited).
    pub max_client_cnxns: usize,
    /// `zookeeper.nio.sessionlessCnxnTimeout`: from accept to the ConnectRequest.
    pub handshake_timeout: Duration,
    /// `globalOutstandingLimit`.
    pub outstanding_limit: usize,
    /// Throttles and budgets.
    pub limits: ClientLimits,
    /// Four-letter words that may run.
    pub four_letter: FourLetterResponder,
    /// The connection throttle.
    pub conn_throttle: Mutex<BlueThrottle>,
    /// The connection throttle's clock.
    pub started: Instant,
    /// Requests (xid > 0) of every connection handed to the node and not answered yet.
    pub in_process: Arc<AtomicUsize>,
    /// Unsent reply bytes of every connection.
    pub unsent_total: Arc<AtomicUsize>,
    /// The next connection id (shared by the plain and the secure listener).
    pub next_conn: AtomicU64,
    /// Open connections per client address, for `maxClientCnxns` (both listeners).
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// What a listener speaks.
#[derive(Clone)]
pub enum Transport {
    /// Plain text only (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Arc<ClientTls>),
    /// Both, told apart by the first byte (`clientPort` with `client.portUnification`).
    Unified(Arc<ClientTls>),
}

/// TLS on the client port.
pub struct ClientTls {
    /// The configs, reloaded when `client.certReload` is on.
    pub context: Arc<TlsContext>,
    /// `X509AuthenticationProvider.superUser`.
    pub x509_super_user: Option<String>,
}

impl ClientPort {
    /// Whether the connection throttle lets one more connection in.
    fn admit_connection(&self) -> bool {
        let mut throttle = self.conn_throttle.lock().unwrap_or_else(|e| e.into_inner());
        if !throttle.enabled() {
            return true;
        }
        let now_ms = self.started.elapsed().as_millis() as u64;
        throttle.check_limit(1, now_ms, rand::random::<f64>())
    }
}

/// Why a connection's reader pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    /// Half its reply budget is unsent, or it has unsent replies and half the server's
    /// reply budget is unsent.
    Replies,
    /// Its unanswered requests fill its request budget.
    Requests,
    /// The server holds more than `globalOutstandingLimit` requests and some are ours.
    Outstanding,
    /// The server holds `requestThrottleLimit` requests (`RequestThrottler`'s stall).
    Stall,
}

/// Accepts connections until the listener fails or the task is dropped.
pub async fn accept_loop(listener: TcpListener, port: Arc<ClientPort>, transport: Transport) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                continue;
            }
        };
        let accepted = Instant::now();
        if port.max_client_cnxns > 0 {
            let mut counts = port.per_ip.lock().expect("per-ip table lock");
            let count = counts.entry(addr.ip()).or_default();
            if *count >= port.max_client_cnxns {
                warn!(%addr, limit = port.max_client_cnxns, "too many connections from this address");
                continue;
            }
            *count += 1;
        }
        let conn = ConnId(port.next_conn.fetch_add(1, Ordering::Relaxed));
        let _ = stream.set_nodelay(true);
        let port = port.clone();
        let transport = transport.clone();
        tokio::spawn(async move {
            serve_connection(conn, stream, addr, accepted, &port, &transport).await;
            if port.max_client_cnxns > 0 {
                let mut counts = port.per_ip.lock().expect("per-ip table lock");
                if let Some(count) = counts.get_mut(&addr.ip()) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(&addr.ip());
                    }
                }
            }
        });
    }
}

/// Reads until `buffer` holds `len` bytes; false on EOF or an error.
async fn read_at_least<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    len: usize,
) -> bool {
    while buffer.len() < len {
        match reader.read_buf(buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    true
}

async fn serve_connection(
    conn: ConnId,
    stream: TcpStream,
    addr: SocketAddr,
    accepted: Instant,
    port: &ClientPort,
    transport: &Transport,
) {
    // ZK compat: NIOServerCnxnFactory expires a connection without a session after
    // `zookeeper.nio.sessionlessCnxnTimeout` (10 s). Ours runs from accept, whatever trickles
    // in, until the ConnectRequest has arrived whole; the core bounds the rest of the handshake.
    // The TLS handshake counts against the same deadline.
    let handshake_deadline = accepted + port.handshake_timeout;
    let mut buffer = BytesMut::with_capacity(4096);
    let Some((stream, auth)) =
        open_transport(conn, stream, addr, handshake_deadline, transport, &mut buffer).await
    else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    // A new connection may open with a four-letter word instead of a frame length.
    let opened = tokio::select! {
        biased;
        opened = read_at_least(&mut reader, &mut buffer, 4) => Some(opened),
        _ = tokio::time::sleep_until(handshake_deadline) => None,
    };
    match opened {
        Some(true) => {}
        Some(false) => return,
        None => {
            info!(%conn, %addr, bytes = buffer.len(), "no handshake in time; closing connection");
            return;
        }
    }
    let first: [u8; 4] = [buffer[0], buffer[1], buffer[2], buffer[3]];
    if let Some(word) = FourLetterWord::from_bytes(first) {
        // ZK compat: `stmk` is followed by the new mask, a big-endian long.
        let mut argument = None;
        if word == FourLetterWord::Stmk {
            let arrived = tokio::select! {
                biased;
                arrived = read_at_least(&mut reader, &mut buffer, 12) => arrived,
                _ = tokio::time::sleep_until(handshake_deadline) => false,
            };
            if arrived {
                let mut mask = [0u8; 8];
                mask.copy_from_slice(&buffer[4..12]);
                argument = Some(i64::from_be_bytes(mask));
            }
        }
        let _ = port.to_node.send(ToNode::FourLetterPacket(true)).await;
        let (tx, rx) = oneshot::channel();
        let report = match port.to_node.send(ToNode::Report(tx)).await {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        let FourLetterAnswer { text, reset, .. } =
            (port.four_letter)(&first, argument, report, addr);
        if let Some(which) = reset {
            // Queued before the answer is written, so whatever the client asks next sees it.
            let _ = port.to_node.send(ToNode::ResetStats(which)).await;
        }
        // `flush` is a no-op on a real socket; madsim's socket delivers on it.
        if writer.write_all(text.as_bytes()).await.is_ok() {
            let _ = writer.flush().await;
            // Counted before the close, so a client that reads to the end and asks again
            // sees it. ZK compat: an empty answer sends nothing.
            if !text.is_empty() {
                let _ = port.to_node.send(ToNode::FourLetterPacket(false)).await;
            }
        }
        let _ = writer.shutdown().await;
        return;
    }

    let out = Arc::new(ConnOut {
        state: Mutex::new(OutState {
            socket: writer,
            queued: BytesMut::new(),
            handshake_answered: false,
            unanswered: VecDeque::new(),
            unanswered_bytes: 0,
            counted: 0,
            handed_over: false,
            closing: false,
            broken: false,
        }),
        wake: Notify::new(),
        progress: Notify::new(),
        in_process: port.in_process.clone(),
        addr,
        reply_budget: port.limits.reply_budget_bytes,
        unsent_total: port.unsent_total.clone(),
        server_reply_budget: port.limits.server_reply_budget_bytes,
    });
    port.writers.lock().expect("writer table lock").insert(conn, ConnWriter { out: out.clone() });
    if port.to_node.send(ToNode::Input(Input::ClientConnected { conn, addr, auth })).await.is_err()
    {
        drop(port.writers.lock().expect("writer table lock").remove(&conn));
        return;
    }
    let closed = Arc::new(Notify::new());
    let closed_by_writer = closed.clone();
    let out_for_writer = out.clone();
    let writer_task = tokio::spawn(async move {
        write_out(out_for_writer).await;
        closed_by_writer.notify_one();
    });

    let mut decoder = FrameDecoder::new(port.frame_max_bytes);
    let mut handshake_received = false;
    'read: loop {
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => {
                    if !handshake_received {
                        handshake_received = true;
                        if !port.admit_connection() {
                            // ZK compat: processConnectRequest throws ClientCnxnLimitException
                            // and the connection is closed.
                            info!(%conn, %addr, "connection throttled (connectionMaxTokens); closing");
                            break 'read;
                        }
                    } else if !request_admitted(port, &out, &closed, conn, &frame).await {
                        break 'read;
                    }
                    let input = Input::ClientFrame { conn, frame };
                    if port.to_node.send(ToNode::Input(input)).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // ZK compat: NIOServerCnxn closes the connection on a bad length.
                    info!(%conn, %addr, %error, "closing connection");
                    break 'read;
                }
            }
        }
        tokio::select! {
            // Deterministic order, so madsim runs replay (tokio's random order is not seeded
            // by the simulation).
            biased;
            read = reader.read_buf(&mut buffer) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    debug!(%conn, %error, "read failed");
                    break;
                }
            },
            _ = closed.notified() => break,
            _ = tokio::time::sleep_until(handshake_deadline), if !handshake_received => {
                info!(%conn, %addr, bytes = buffer.len(), "no handshake in time; closing connection");
                break;
            }
        }
    }
    // Dropping our sender lets the writer finish what is queued and close.
    drop(port.writers.lock().expect("writer table lock").remove(&conn));
    out.lock().forget_unanswered(&port.in_process);
    let _ = port.to_node.send(ToNode::Input(Input::ClientClosed { conn })).await;
    let _ = writer_task.await;
}

/// Starts the connection's transport: plain, or a TLS handshake when the listener takes TLS
/// and the client opens with one. `None` when the connection is to close (each reason logged
/// once). Returns the ids the handshake authenticated; bytes read while sniffing plain text
/// are left in `buffer`.
async fn open_transport(
    conn: ConnId,
    mut stream: TcpStream,
    addr: SocketAddr,
    deadline: Instant,
    transport: &Transport,
    buffer: &mut BytesMut,
) -> Option<(ClientStream, Vec<Id>)> {
    let (tls, unified) = match transport {
        Transport::Plain => return Some((ClientStream::Plain(stream), Vec::new())),
        Transport::Tls(tls) => (tls, false),
        Transport::Unified(tls) => (tls, true),
    };
    let sniffed = tokio::select! {
        biased;
        read = read_at_least(&mut stream, buffer, 1) => read,
        _ = tokio::time::sleep_until(deadline) => {
            info!(%conn, %addr, "no handshake in time; closing connection");
            return None;
        }
    };
    if !sniffed {
        return None;
    }
    if !tls::looks_like_tls(buffer[0]) {
        if unified {
            return Some((ClientStream::Plain(stream), Vec::new()));
        }
        // ZK compat: Netty's SslHandler fails the handshake on a record that is not TLS.
        warn!(%conn, %addr, "plain-text client on the TLS-only port (secureClientPort); closing connection");
        return None;
    }
    let config = tls.context.server_config()?;
    let sniffed = std::mem::replace(buffer, BytesMut::with_capacity(4096));
    let rewound = Rewind::new(sniffed, stream);
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(rewound);
    let stream = tokio::select! {
        biased;
        done = handshake => match done {
            Ok(stream) => stream,
            Err(error) => {
                // ZK compat: "Unsuccessful handshake" (NettyServerCnxnFactory.CertificateVerifier).
                warn!(%conn, %addr, %error, "TLS handshake failed; closing connection");
                return None;
            }
        },
        _ = tokio::time::sleep_until(deadline) => {
            info!(%conn, %addr, "TLS handshake not finished in time; closing connection");
            return None;
        }
    };
    let session = stream.get_ref().1;
    if tls.context.settings().client_hostname_verification {
        // ZK compat: ZKTrustManager checks the client's address against its certificate when
        // `ssl.clientHostnameVerification` is on (off by default on the client port).
        let cert = session.peer_certificates().and_then(|certs| certs.first());
        if cert.is_some_and(|cert| !tls::verify_peer_address(cert, addr.ip())) {
            warn!(%conn, %addr, "TLS client certificate is not valid for the client's address; closing connection");
            return None;
        }
    }
    let auth = x509_ids(tls::peer_subject(session), tls.x509_super_user.as_deref());
    if let Some(id) = auth.last() {
        debug!(%conn, %addr, id = %id.id, "authenticated by its TLS certificate (x509)");
    }
    Some((ClientStream::Tls(Box::new(stream)), auth))
}

/// The ids a verified client certificate gives a connection. ZK compat:
/// `X509AuthenticationProvider.handleAuthentication`: `super:<dn>` first when the subject is
/// the configured super user, then `x509:<dn>`.
pub fn x509_ids(subject: Option<String>, super_user: Option<&str>) -> Vec<Id> {
    let Some(dn) = subject else { return Vec::new() };
    let mut ids = Vec::with_capacity(2);
    if super_user == Some(dn.as_str()) {
        ids.push(Id::new("super", &dn));
    }
    ids.push(Id::new("x509", &dn));
    ids
}

/// Waits until the connection may hand `frame` (a request after the handshake) to the node,
/// then counts it as unanswered. False when the connection closed meanwhile: the request is
/// dropped (ZK compat: `RequestThrottler` drops stale requests).
async fn request_admitted(
    port: &ClientPort,
    out: &ConnOut,
    closed: &Notify,
    conn: ConnId,
    frame: &[u8],
) -> bool {
    let xid = frame.first_chunk::<4>().map_or(0, |b| i32::from_be_bytes(*b));
    let mut paused: Option<Pause> = None;
    loop {
        let pause = {
            let state = out.lock();
            if state.broken {
                return false;
            }
            let in_process = port.in_process.load(Ordering::Relaxed);
            let ours = !state.unanswered.is_empty();
            let throttle_limit = port.limits.request_throttle_limit as usize;
            let server_unsent = port.unsent_total.load(Ordering::Relaxed);
            if state.queued.len() > port.limits.reply_budget_bytes / 2
                || (!state.queued.is_empty()
                    && server_unsent > port.limits.server_reply_budget_bytes / 2)
            {
                Some(Pause::Replies)
            } else if ours
                && state.unanswered_bytes + frame.len() > port.limits.request_budget_bytes
            {
                Some(Pause::Requests)
            } else if ours && in_process > port.outstanding_limit {
                // ZK compat: ServerCnxn.incrOutstandingAndCheckThrottle / shouldThrottle.
                Some(Pause::Outstanding)
            } else if throttle_limit > 0 && in_process >= throttle_limit {
                Some(Pause::Stall)
            } else {
                None
            }
        };
        let Some(pause) = pause else { break };
        if paused != Some(pause) {
            debug!(%conn, addr = %out.addr, ?pause, "not reading from the connection for now");
            paused = Some(pause);
        }
        let stall = Duration::from_millis(u64::from(port.limits.request_throttle_stall_ms));
        tokio::select! {
            biased;
            _ = closed.notified() => return false,
            _ = out.progress.notified() => {}
            _ = tokio::time::sleep(stall), if pause == Pause::Stall => {}
        }
    }
    if xid > 0 {
        let mut state = out.lock();
        state.unanswered.push_back((xid, frame.len()));
        state.unanswered_bytes += frame.len();
        port.in_process.fetch_add(1, Ordering::Relaxed);
    }
    true
}

#[cfg(all(test, not(madsim)))]
mod tests;
