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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, warn};

use crate::core::ids::ConnId;
use crate::core::io::Input;
use crate::core::report::ServerReport;
use crate::runtime::fourlw::FourLetterWord;
use crate::wire::frame::FrameDecoder;

/// Answers a four-letter word from a report and the asking address.
pub type FourLetterResponder =
    Arc<dyn Fn(&[u8; 4], Option<ServerReport>, SocketAddr) -> String + Send + Sync>;

/// What connection tasks send to the node's loop.
pub enum ToNode {
    /// An input for `Node::step`.
    Input(Input),
    /// A request for a report (four-letter words).
    Report(oneshot::Sender<ServerReport>),
}

/// Frames a connection may have waiting (queued since its buffer was last empty) before the
/// connection is dropped as too slow. ZK compat: ZooKeeper closes a connection whose outgoing
/// buffer overflows.
pub const CONN_OUT_QUEUE_MAX: usize = 16_384;

/// The connection's outgoing buffer is over [`CONN_OUT_QUEUE_MAX`] frames: the client does
/// not read its replies.
#[derive(Debug)]
pub struct OutQueueFull;

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
}

struct OutState {
    socket: WriteHalf<TcpStream>,
    /// Length-prefixed frames not yet written, in order.
    queued: BytesMut,
    /// Frames queued since `queued` was last empty (the slow-client bound).
    frames: usize,
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
        self.frames = 0;
        Pin::new(&mut self.socket).poll_flush(cx)
    }
}

impl ConnWriter {
    /// Appends one length-prefixed frame to the outgoing buffer (written by the next
    /// [`Self::flush`]). Fails when the client has not read [`CONN_OUT_QUEUE_MAX`] frames.
    pub fn queue(&self, frame: &[u8]) -> Result<(), OutQueueFull> {
        let mut state = self.out.lock();
        if state.broken {
            // The reader sees the connection end and tells the node.
            return Ok(());
        }
        if state.frames >= CONN_OUT_QUEUE_MAX {
            return Err(OutQueueFull);
        }
        state.queued.extend_from_slice(frame);
        state.frames += 1;
        Ok(())
    }

    /// Writes what is queued without blocking. If the socket is full (or fails), the
    /// connection's writer task takes over.
    pub fn flush(&self) {
        let mut state = self.out.lock();
        if state.handed_over || state.broken || state.queued.is_empty() {
            return;
        }
        match state.write_queued(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => return,
            Poll::Ready(Err(error)) => {
                debug!(%error, "write failed");
                state.broken = true;
            }
            Poll::Pending => state.handed_over = true,
        }
        drop(state);
        self.out.wake.notify_one();
    }
}

impl Drop for ConnWriter {
    fn drop(&mut self) {
        self.out.lock().closing = true;
        self.out.wake.notify_one();
    }
}

/// The writer task of a connection: idle until the node loop hands it a full socket, a
/// failure or the close; returns once the connection is closed (everything queued written)
/// or broken.
async fn write_out(out: Arc<ConnOut>) {
    loop {
        out.wake.notified().await;
        let drained = std::future::poll_fn(|cx| {
            let mut state = out.lock();
            if !state.broken {
                match state.write_queued(cx) {
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
            Poll::Ready(if state.broken || state.closing { Drained::Done } else { Drained::Idle })
        })
        .await;
        if let Drained::Done = drained {
            break;
        }
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
    /// Four-letter words that may run.
    pub four_letter: FourLetterResponder,
}

/// Accepts connections until the listener fails or the task is dropped.
pub async fn accept_loop(listener: TcpListener, port: Arc<ClientPort>) {
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut next_conn = 1u64;
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                continue;
            }
        };
        if port.max_client_cnxns > 0 {
            let mut counts = per_ip.lock().expect("per-ip table lock");
            let count = counts.entry(addr.ip()).or_default();
            if *count >= port.max_client_cnxns {
                warn!(%addr, limit = port.max_client_cnxns, "too many connections from this address");
                continue;
            }
            *count += 1;
        }
        let conn = ConnId(next_conn);
        next_conn += 1;
        let _ = stream.set_nodelay(true);
        let port = port.clone();
        let per_ip = per_ip.clone();
        tokio::spawn(async move {
            serve_connection(conn, stream, addr, &port).await;
            if port.max_client_cnxns > 0 {
                let mut counts = per_ip.lock().expect("per-ip table lock");
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

async fn serve_connection(conn: ConnId, stream: TcpStream, addr: SocketAddr, port: &ClientPort) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buffer = BytesMut::with_capacity(4096);
    // A new connection may open with a four-letter word instead of a frame length.
    while buffer.len() < 4 {
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let first: [u8; 4] = [buffer[0], buffer[1], buffer[2], buffer[3]];
    if FourLetterWord::from_bytes(first).is_some() {
        let (tx, rx) = oneshot::channel();
        let report = match port.to_node.send(ToNode::Report(tx)).await {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        let text = (port.four_letter)(&first, report, addr);
        // `flush` is a no-op on a real socket; madsim's socket delivers on it.
        if writer.write_all(text.as_bytes()).await.is_ok() {
            let _ = writer.flush().await;
        }
        let _ = writer.shutdown().await;
        return;
    }

    let out = Arc::new(ConnOut {
        state: Mutex::new(OutState {
            socket: writer,
            queued: BytesMut::new(),
            frames: 0,
            handed_over: false,
            closing: false,
            broken: false,
        }),
        wake: Notify::new(),
    });
    port.writers.lock().expect("writer table lock").insert(conn, ConnWriter { out: out.clone() });
    if port.to_node.send(ToNode::Input(Input::ClientConnected { conn, addr })).await.is_err() {
        drop(port.writers.lock().expect("writer table lock").remove(&conn));
        return;
    }
    let closed = Arc::new(Notify::new());
    let closed_by_writer = closed.clone();
    let writer_task = tokio::spawn(async move {
        write_out(out).await;
        closed_by_writer.notify_one();
    });

    let mut decoder = FrameDecoder::new(port.frame_max_bytes);
    'read: loop {
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => {
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
        }
    }
    // Dropping our sender lets the writer finish what is queued and close.
    drop(port.writers.lock().expect("writer table lock").remove(&conn));
    let _ = port.to_node.send(ToNode::Input(Input::ClientClosed { conn })).await;
    let _ = writer_task.await;
}

#[cfg(all(test, not(madsim)))]
mod tests;
