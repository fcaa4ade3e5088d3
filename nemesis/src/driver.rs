//! Drives the simulator's own workload clients (`ensemble_sim::workload::Client`: the same
//! operation mix, sessions, pipelining, watches and recipes, speaking the real wire protocol)
//! over real TCP connections, in real time.
//!
//! One thread owns every client, the history and the workload RNG; it is the only writer of
//! the history. Each connection has a thread that connects (with a bound) and then reads
//! length-prefixed frames into one channel. The owner records an invocation before its bytes
//! are written and a return after its reply was read, so every recorded interval contains the
//! real one: real-time order in the history is sound for the checkers. Times are
//! microseconds since the run's start, as [`SimTime`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::core::ids::{ConnId, ServerId};
use ensemble_sim::history::History;
use ensemble_sim::options::WorkloadOptions;
use ensemble_sim::trace::Trace;
use ensemble_sim::workload::{Client, ClientAction, ClientCtx, ClientId};
use ensemble_sim::SimTime;
use rand_chacha::ChaCha8Rng;

/// The workload's phase, set by the harness.
pub mod phase {
    /// Clients generate operations.
    pub const RUN: u8 = 0;
    /// No new operations; in-flight ones may finish.
    pub const DRAIN: u8 = 1;
    /// Stop and hand back the history.
    pub const STOP: u8 = 2;
}

/// Largest frame a client accepts (the server's default `jute.maxbuffer` is about 1 MiB).
const FRAME_MAX: usize = 16 << 20;

enum Event {
    Opened(ConnId, TcpStream),
    Frame(ConnId, Bytes),
    Closed(ConnId),
}

struct Conn {
    client: usize,
    stream: Option<TcpStream>,
    /// Frames sent before the connection was open.
    queued: Vec<Bytes>,
}

/// What the workload thread hands back.
pub struct Driven {
    /// Everything the clients observed.
    pub history: History,
    /// The client ids (for the liveness window).
    pub clients: Vec<ClientId>,
}

/// Runs `clients` workload clients against `servers` until `phase` says stop.
pub fn run(
    start: Instant,
    servers: Vec<(ServerId, SocketAddr)>,
    clients: usize,
    options: WorkloadOptions,
    mut rng: ChaCha8Rng,
    phase: Arc<AtomicU8>,
) -> Driven {
    let now = || SimTime(start.elapsed().as_micros() as u64);
    let ids: Vec<ServerId> = servers.iter().map(|(id, _)| *id).collect();
    let addrs: BTreeMap<ServerId, SocketAddr> = servers.into_iter().collect();
    let mut workers: Vec<Client> = (0..clients)
        .map(|i| Client::new(ClientId(i as u32), ids.clone(), now(), &mut rng))
        .collect();
    let mut history = History::new();
    let mut trace = Trace::new(false);
    let mut conn_next = 1u64;
    let mut conns: BTreeMap<ConnId, Conn> = BTreeMap::new();
    let (tx, rx): (Sender<Event>, Receiver<Event>) = mpsc::channel();
    let mut actions = Vec::new();
    loop {
        let current = phase.load(Ordering::Relaxed);
        if current == phase::STOP {
            break;
        }
        let generate = current == phase::RUN;
        let at = now();
        let next_wake = workers.iter().filter_map(|c| c.wake_at(&options, generate)).min();
        let wait = next_wake.map_or(Duration::from_millis(50), |wake| {
            Duration::from_micros(wake.0.saturating_sub(at.0)).min(Duration::from_millis(50))
        });
        let event = match rx.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        };
        let at = now();
        // What a workload client gets for one callback: the driver's state, lent anew each
        // time (a closure could not hand out these mutable borrows more than once).
        macro_rules! client_ctx {
            () => {
                ClientCtx {
                    now: at,
                    rng: &mut rng,
                    history: &mut history,
                    trace: &mut trace,
                    actions: &mut actions,
                    conn_next: &mut conn_next,
                    options: &options,
                    generate,
                }
            };
        }
        match event {
            Some(Event::Opened(conn, stream)) => {
                if let Some(c) = conns.get_mut(&conn) {
                    let mut stream = stream;
                    let mut ok = true;
                    for frame in c.queued.drain(..) {
                        ok &= stream.write_all(&frame).is_ok();
                    }
                    c.stream = Some(stream);
                    if !ok {
                        let client = c.client;
                        close_conn(&mut conns, conn);
                        let mut ctx = client_ctx!();
                        workers[client].on_closed(&mut ctx, conn);
                    }
                } else {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Some(Event::Frame(conn, frame)) => {
                if let Some(client) = conns.get(&conn).map(|c| c.client) {
                    let mut ctx = client_ctx!();
                    workers[client].on_frame(&mut ctx, conn, frame);
                }
            }
            Some(Event::Closed(conn)) => {
                if let Some(client) = conns.get(&conn).map(|c| c.client) {
                    close_conn(&mut conns, conn);
                    let mut ctx = client_ctx!();
                    workers[client].on_closed(&mut ctx, conn);
                }
            }
            None => {}
        }
        // Timers, then whatever the clients asked for; repeat while actions come (a failed
        // send closes a connection, which the client hears at once).
        for (index, worker) in workers.iter_mut().enumerate() {
            if worker.wake_at(&options, generate).is_some_and(|wake| wake <= at) {
                let mut ctx = client_ctx!();
                worker.on_wake(&mut ctx);
            }
            let mut failed = Vec::new();
            for action in actions.drain(..) {
                match action {
                    ClientAction::Open { conn, server } => {
                        conns
                            .insert(conn, Conn { client: index, stream: None, queued: Vec::new() });
                        let addr = addrs[&server];
                        let tx = tx.clone();
                        std::thread::spawn(move || connect_and_read(conn, addr, tx));
                    }
                    ClientAction::Send { conn, frame } => {
                        let Some(c) = conns.get_mut(&conn) else { continue };
                        match &mut c.stream {
                            Some(stream) => {
                                if stream.write_all(&frame).is_err() {
                                    failed.push(conn);
                                }
                            }
                            None => c.queued.push(frame),
                        }
                    }
                    ClientAction::Close { conn } => close_conn(&mut conns, conn),
                }
            }
            for conn in failed {
                close_conn(&mut conns, conn);
                let mut ctx = client_ctx!();
                worker.on_closed(&mut ctx, conn);
                // Its reconnect comes at the next wake; anything else it asked is moot.
                actions.retain(|a| !matches!(a, ClientAction::Send { conn: c, .. } if *c == conn));
                for action in actions.drain(..) {
                    if let ClientAction::Close { conn } = action {
                        close_conn(&mut conns, conn);
                    }
                }
            }
        }
    }
    for conn in conns.keys().copied().collect::<Vec<_>>() {
        close_conn(&mut conns, conn);
    }
    history.finish(now());
    Driven { history, clients: workers.iter().map(Client::id).collect() }
}

fn close_conn(conns: &mut BTreeMap<ConnId, Conn>, conn: ConnId) {
    if let Some(c) = conns.remove(&conn) {
        if let Some(stream) = c.stream {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Connects (3 s bound), hands the write half over, then reads frames until the connection
/// ends. Every outcome ends in `Closed`.
fn connect_and_read(conn: ConnId, addr: SocketAddr, tx: Sender<Event>) {
    let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(stream) => stream,
        Err(_) => {
            let _ = tx.send(Event::Closed(conn));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    // A write that cannot finish in 5 s (a stopped or cut-off member with full buffers) fails
    // and closes the connection rather than stalling every client.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(_) => {
            let _ = tx.send(Event::Closed(conn));
            return;
        }
    };
    if tx.send(Event::Opened(conn, stream)).is_err() {
        return;
    }
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).is_err() {
            break;
        }
        let len = i32::from_be_bytes(prefix);
        if len < 0 || len as usize > FRAME_MAX {
            break;
        }
        let mut frame = vec![0u8; 4 + len as usize];
        frame[..4].copy_from_slice(&prefix);
        if reader.read_exact(&mut frame[4..]).is_err() {
            break;
        }
        if tx.send(Event::Frame(conn, Bytes::from(frame))).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::Closed(conn));
}
