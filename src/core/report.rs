//! A read-only summary of a node for the four-letter words, `ensemble status` and metrics.

use ::core::net::SocketAddr;

use crate::core::ids::{ConnId, ServerId, SessionId, Zxid};

/// The role a node is in, as `srvr` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A single server.
    Standalone,
    /// Ensemble leader.
    Leader,
    /// Ensemble follower.
    Follower,
    /// Ensemble observer.
    Observer,
    /// Electing a leader (not serving).
    Looking,
}

impl Mode {
    /// The word ZooKeeper prints after `Mode: `.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Looking => "looking",
        }
    }
}

/// One client connection, for `cons` and `stat`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionReport {
    /// The driver's id.
    pub conn: ConnId,
    /// Remote address.
    pub addr: SocketAddr,
    /// Requests waiting for an answer.
    pub queued: u64,
    /// Frames received.
    pub received: u64,
    /// Frames sent.
    pub sent: u64,
    /// The session, once established.
    pub session: Option<SessionId>,
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// Last opcode name (`GETD`, `SETD`, `PING`, ...).
    pub last_op: &'static str,
    /// Last client xid.
    pub last_cxid: i64,
    /// Last zxid replied.
    pub last_zxid: i64,
    /// Monotonic ms when established.
    pub established_mono_ms: u64,
    /// Latency of the last request and min/avg/max over the connection, ms.
    pub latency_last_ms: u64,
    /// Minimum latency.
    pub latency_min_ms: u64,
    /// Average latency.
    pub latency_avg_ms: f64,
    /// Maximum latency.
    pub latency_max_ms: u64,
}

/// One session, for `dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReport {
    /// The id.
    pub session: SessionId,
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// Its ephemerals, sorted.
    pub ephemerals: Vec<String>,
}

/// A learner as its leader sees it, for `srvr`, `mntr` and `ensemble status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnerReport {
    /// The learner's id.
    pub id: ServerId,
    /// Whether it observes (never votes).
    pub observer: bool,
    /// Where it is: `discovery`, `syncing`, `synced`, `broadcast`.
    pub state: &'static str,
    /// How it was synced: `DIFF`, `TRUNC`, `SNAP`, or `-` before sync.
    pub sync: &'static str,
    /// Its last logged zxid as last reported.
    pub zxid: Zxid,
}

/// A summary of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerReport {
    /// Role.
    pub mode: Mode,
    /// Whether the node is serving clients.
    pub serving: bool,
    /// Last applied zxid.
    pub zxid: Zxid,
    /// Current epoch.
    pub epoch: u32,
    /// Number of znodes.
    pub node_count: usize,
    /// Sum of path and data sizes.
    pub approximate_data_size: u64,
    /// Number of session ephemerals.
    pub ephemerals_count: usize,
    /// Live sessions.
    pub session_count: usize,
    /// Requests in flight.
    pub outstanding_requests: u64,
    /// Frames received from clients.
    pub packets_received: u64,
    /// Frames sent to clients.
    pub packets_sent: u64,
    /// Request latency, ms.
    pub latency_min_ms: u64,
    /// Average latency.
    pub latency_avg_ms: f64,
    /// Maximum latency.
    pub latency_max_ms: u64,
    /// Data-watch table: connections watching, distinct paths, total watches.
    pub watch_connections: usize,
    /// Distinct watched paths.
    pub watch_paths: usize,
    /// Total watches.
    pub watch_total: usize,
    /// Open client connections.
    pub connections: Vec<ConnectionReport>,
    /// Sessions with their ephemerals.
    pub sessions: Vec<SessionReport>,
    /// Size of the last proposal (leader only): last/min/max bytes.
    pub proposal_sizes: Option<(u64, u64, u64)>,
    /// On a leader: its learners.
    pub learners: Vec<LearnerReport>,
    /// Data watches by session (`wchc`), sorted.
    pub watches_by_session: Vec<(SessionId, Vec<String>)>,
    /// Data watches by path (`wchp`), sorted.
    pub watches_by_path: Vec<(String, Vec<SessionId>)>,
}

/// Counters a four-letter word resets. ZK compat: `crst` (`ServerCnxn.resetStats` on every
/// connection) and `srst` (`ServerStats.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsReset {
    /// Every connection's packets, latencies and last operation (`crst`).
    Connections,
    /// The server's packets and latencies (`srst`).
    Server,
}
