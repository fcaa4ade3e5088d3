//! The client port: accepts TCP connections, answers four-letter words, splits the stream into
//! frames for the node and writes the node's frames back.
//!
//! Each connection has a reader task (bytes → `Input::ClientFrame`) and a writer task (frames
//! from the node → socket, batched per wake-up). The node's input channel is bounded, so a flood
//! of requests slows the readers down instead of growing a queue without limit.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Frames a connection's writer may hold before the connection is dropped as too slow.
/// ZK compat: ZooKeeper closes a connection whose outgoing buffer overflows.
pub const CONN_OUT_QUEUE_MAX: usize = 16_384;

/// The node loop's handle on a connection's writer: length-prefixed frames to send. Dropping
/// it closes the connection once the frames queued before are written.
pub type ConnWriter = mpsc::Sender<Bytes>;

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

    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(CONN_OUT_QUEUE_MAX);
    port.writers.lock().expect("writer table lock").insert(conn, out_tx);
    if port.to_node.send(ToNode::Input(Input::ClientConnected { conn, addr })).await.is_err() {
        return;
    }
    let closed = Arc::new(Notify::new());
    let closed_by_writer = closed.clone();
    let writer_task = tokio::spawn(async move {
        // Everything queued at a wake-up goes out in one write; the loop ends when the node
        // drops its sender (close) and the queue is drained, or the socket fails.
        let mut batch = BytesMut::new();
        while let Some(frame) = out_rx.recv().await {
            batch.extend_from_slice(&frame);
            while let Ok(more) = out_rx.try_recv() {
                batch.extend_from_slice(&more);
            }
            // `flush` is a no-op on a real socket; madsim's socket delivers on it.
            let written = match writer.write_all(&batch).await {
                Ok(()) => writer.flush().await,
                Err(error) => Err(error),
            };
            if written.is_err() {
                break;
            }
            batch.clear();
        }
        let _ = writer.shutdown().await;
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
