//! Four-letter words: the plain-text admin commands a client may send instead of a
//! `ConnectRequest`, and their exact ZooKeeper output.
//!
//! ZK compat: `FourLetterCommands` (names, whitelist), `NIOServerCnxn.checkFourLetterWord`
//! (the whitelist refusal), `command/*Command.java`, `ServerStats.toString`,
//! `ServerCnxn.dumpConnectionInfo`, `ZooKeeperServer.dumpConf`,
//! `QuorumZooKeeperServer.dumpConf`, `WatchManager.toString`, `DataTree.dumpEphemerals`,
//! `Environment.list` and the gauges `mntr` prints. Expected outputs in the tests were checked
//! against a running ZooKeeper 3.8.0 in the same state.
//!
//! Everything here is a pure function of a [`ServerReport`] (the core's summary) and a
//! [`RuntimeInfo`] (what only the runtime knows), except the small probes at the end
//! ([`HostEnvironment::detect`], [`open_fd_count`], [`max_fd_count`], [`dir_size`]) that the
//! runtime calls to fill `RuntimeInfo`.
//!
//! Deviations, each forced by data ZooKeeper has and the report does not:
//! - `dump` groups sessions and connections by timeout (`N expire within Tms:`) instead of by
//!   expiry bucket (`N expire at <date>:`);
//! - `cons` prints `lresp=0` (no last-response time in [`ConnectionReport`]) and interest ops
//!   `1` for every client connection (`0` for the connection asking, as in ZooKeeper);
//! - `envi` prints `<NA>` for the `java.*` and memory keys, as ZooKeeper does for an absent
//!   property;
//! - `mntr` prints the gauges Ensemble has, in the order ZooKeeper 3.8 prints them, and none
//!   of the hundreds of processor-pipeline summaries;
//! - `hash` prints an empty digest history, as ZooKeeper with `zookeeper.digest.enabled=false`
//!   (Ensemble keeps no ZooKeeper-compatible tree digest);
//! - `gtmk`/`stmk` keep and print the trace mask, which Ensemble's logging does not consult.
//!
//! `crst`, `srst`, `gtmk`, `stmk` and `hash` live in [`control`].
//!
//! Additions, on quorum members only (a standalone server answers exactly as ZooKeeper):
//! - `srvr` and `stat` end with `Epoch: N` and, on the leader, `Learners: N` and one
//!   `Learner <id>: <follower|observer>, state <s>, sync <DIFF|TRUNC|SNAP|->, zxid 0x..` line
//!   per learner;
//! - `mntr` ends with ZooKeeper's quorum gauges (`zk_quorum_size`; on the leader
//!   `zk_learners`, `zk_synced_followers`, `zk_synced_non_voting_followers`,
//!   `zk_synced_observers`) and Ensemble's `zk_epoch`, `zk_last_zxid` and, on the leader,
//!   `zk_learner_<id>_state`, `zk_learner_<id>_sync`, `zk_learner_<id>_zxid`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::core::ids::ServerId;
use crate::core::report::{ConnectionReport, Mode, ServerReport};
use crate::core::time::Now;
use crate::runtime::config::ServerConfig;

/// The version ZooKeeper tools see. The `3.9.3` prefix is the ZooKeeper release whose
/// behaviour Ensemble follows: `zkServer.sh`, kazoo and exporters parse it. There is no build
/// date, so builds are reproducible.
pub const VERSION: &str =
    concat!("3.9.3-ensemble-", env!("CARGO_PKG_VERSION"), ", built on reproducible-build");

/// The answer of most words while the server is not serving (electing, syncing, stopped).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The telnet "interrupt process" sequence, which ZooKeeper also recognises on a new
/// connection. The runtime closes the connection without answering.
pub const TELNET_CLOSE: [u8; 4] = [0xff, 0xf4, 0xff, 0xfd];

/// A four-letter word ZooKeeper knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FourLetterWord {
    /// Configuration.
    Conf,
    /// Connections in detail.
    Cons,
    /// Reset connection statistics.
    Crst,
    /// Data and log directory sizes.
    Dirs,
    /// Sessions, ephemerals, connections.
    Dump,
    /// Environment.
    Envi,
    /// Get the trace mask.
    Gtmk,
    /// `imok`.
    Ruok,
    /// Set the trace mask (followed by 8 bytes: the mask).
    Stmk,
    /// Server summary.
    Srvr,
    /// Reset server statistics.
    Srst,
    /// Server summary with connections.
    Stat,
    /// Watches by session.
    Wchc,
    /// Watches by path.
    Wchp,
    /// Watch summary.
    Wchs,
    /// Metrics.
    Mntr,
    /// Read-only or read-write.
    Isro,
    /// Digest history (empty: see [`control`]).
    Hash,
}

impl FourLetterWord {
    /// Every word, in `Ord` order.
    pub const ALL: [FourLetterWord; 18] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srvr,
        FourLetterWord::Srst,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::Hash,
    ];

    /// The word for the first four bytes of a connection, if they are one. Anything else is
    /// the length prefix of a `ConnectRequest`.
    pub fn from_bytes(bytes: [u8; 4]) -> Option<FourLetterWord> {
        std::str::from_utf8(&bytes).ok().and_then(FourLetterWord::from_name)
    }

    /// The word for its name (`"ruok"`), case-sensitive as in ZooKeeper.
    pub fn from_name(name: &str) -> Option<FourLetterWord> {
        FourLetterWord::ALL.into_iter().find(|word| word.as_str() == name)
    }

    /// The four letters.
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Hash => "hash",
        }
    }
}

/// `4lw.commands.whitelist`: the words a server answers. Always holds `srvr`, which
/// `zkServer.sh status` needs (ZK compat: `FourLetterCommands.isEnabled`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    words: BTreeSet<FourLetterWord>,
}

impl Default for FourLetterWhitelist {
    /// ZooKeeper's default: `srvr` only.
    fn default() -> FourLetterWhitelist {
        FourLetterWhitelist { words: BTreeSet::from([FourLetterWord::Srvr]) }
    }
}

impl FourLetterWhitelist {
    /// Every known word (`*`).
    pub fn all() -> FourLetterWhitelist {
        FourLetterWhitelist { words: FourLetterWord::ALL.into_iter().collect() }
    }

    /// The given words plus `srvr`.
    pub fn from_words(words: &[FourLetterWord]) -> FourLetterWhitelist {
        let mut whitelist = FourLetterWhitelist::default();
        whitelist.words.extend(words.iter().copied());
        whitelist
    }

    /// Parses a comma-separated list; `*` anywhere means every word. Returns the names that
    /// are not four-letter words (ZooKeeper keeps them silently; the caller warns).
    pub fn parse(list: &str) -> (FourLetterWhitelist, Vec<String>) {
        let mut whitelist = FourLetterWhitelist::default();
        let mut unknown = Vec::new();
        for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            if name == "*" {
                whitelist = FourLetterWhitelist::all();
            } else if let Some(word) = FourLetterWord::from_name(name) {
                whitelist.words.insert(word);
            } else {
                unknown.push(name.to_string());
            }
        }
        (whitelist, unknown)
    }

    /// Whether `word` is answered.
    pub fn contains(&self, word: FourLetterWord) -> bool {
        self.words.contains(&word)
    }

    /// The words, sorted.
    pub fn words(&self) -> impl Iterator<Item = FourLetterWord> + '_ {
        self.words.iter().copied()
    }
}

/// The operating-system facts `envi` prints; `None` prints `<NA>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostEnvironment {
    /// `host.name`.
    pub host_name: Option<String>,
    /// `os.name`, in Java's spelling (`Linux`).
    pub os_name: Option<String>,
    /// `os.arch`, in Java's spelling (`amd64`).
    pub os_arch: Option<String>,
    /// `os.version` (the kernel release).
    pub os_version: Option<String>,
    /// `user.name`.
    pub user_name: Option<String>,
    /// `user.home`.
    pub user_home: Option<String>,
    /// `user.dir`: the working directory.
    pub user_dir: Option<String>,
    /// `java.io.tmpdir`.
    pub tmp_dir: Option<String>,
}

/// What the four-letter words need that only the runtime knows.
#[derive(Clone, Debug)]
pub struct RuntimeInfo<'a> {
    /// The configuration the server runs with.
    pub config: &'a ServerConfig,
    /// The id the server runs as (0 standalone).
    pub server_id: ServerId,
    /// The instant of the request, to turn monotonic times into wall-clock times.
    pub now: Now,
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// The client port actually bound (-1 is printed when none).
    pub client_port: Option<u16>,
    /// The snapshot directory, absolute, as `conf` prints it (ZooKeeper: `<dataDir>/version-2`).
    pub snap_dir: String,
    /// The txn-log directory, absolute, as `conf` prints it.
    pub log_dir: String,
    /// Bytes under `snap_dir`.
    pub snap_dir_bytes: u64,
    /// Bytes under `log_dir`.
    pub log_dir_bytes: u64,
    /// Open file descriptors of the process (-1 is printed when unknown).
    pub open_fds: Option<u64>,
    /// The descriptor limit of the process (-1 is printed when unknown).
    pub max_fds: Option<u64>,
    /// The connection asking. ZooKeeper lists it among the connections (in `stat`, `cons`,
    /// `dump` and the connection counts), so it must not also be in the report.
    pub requester: Option<SocketAddr>,
    /// Facts for `envi`.
    pub host: &'a HostEnvironment,
    /// The trace mask `gtmk` prints.
    pub trace_mask: i64,
    /// The 8-byte argument that followed `stmk`, if it arrived.
    pub argument: Option<i64>,
}

/// The answer to the four bytes `word` sent on a new connection. The runtime writes it and
/// closes the connection.
///
/// `report` is `None` when there is no running server (ZooKeeper's `zkServer == null`);
/// a report with `serving == false` is treated the same way. Bytes that are not a known word
/// get an empty answer: the runtime must check [`FourLetterWord::from_bytes`] first and treat
/// anything else as the length of a `ConnectRequest`.
pub fn respond(
    word: [u8; 4],
    whitelist: &FourLetterWhitelist,
    report: Option<&ServerReport>,
    info: &RuntimeInfo<'_>,
) -> String {
    answer(word, whitelist, report, info).text
}

/// [`respond`] with what the runtime must do besides writing the text: reset counters
/// (`crst`, `srst`) or change the trace mask (`stmk`).
pub fn answer(
    word: [u8; 4],
    whitelist: &FourLetterWhitelist,
    report: Option<&ServerReport>,
    info: &RuntimeInfo<'_>,
) -> FourLetterAnswer {
    let Some(word) = FourLetterWord::from_bytes(word) else {
        return FourLetterAnswer::text(String::new());
    };
    if !whitelist.contains(word) {
        return FourLetterAnswer::text(not_whitelisted(word));
    }
    if let Some(answer) = control::control(word, report, info) {
        return answer;
    }
    FourLetterAnswer::text(describe(word, report, info))
}

/// The words that only describe the server.
fn describe(word: FourLetterWord, report: Option<&ServerReport>, info: &RuntimeInfo<'_>) -> String {
    let answer: fn(&ServerReport, &RuntimeInfo<'_>) -> String = match word {
        FourLetterWord::Ruok => return "imok".to_string(),
        FourLetterWord::Isro => {
            let serving = report.is_some_and(|report| report.serving);
            return if serving { "rw" } else { "null" }.to_string();
        }
        FourLetterWord::Envi => return envi(info),
        FourLetterWord::Crst
        | FourLetterWord::Srst
        | FourLetterWord::Stmk
        | FourLetterWord::Gtmk
        | FourLetterWord::Hash => return String::new(),
        FourLetterWord::Srvr => |report, info| stat(report, info, false),
        FourLetterWord::Stat => |report, info| stat(report, info, true),
        FourLetterWord::Cons => cons,
        FourLetterWord::Conf => |_, info| conf(info),
        FourLetterWord::Mntr => mntr,
        FourLetterWord::Wchs => |report, _| wchs(report),
        FourLetterWord::Wchc => |report, _| wchc(report),
        FourLetterWord::Wchp => |report, _| wchp(report),
        FourLetterWord::Dump => dump,
        FourLetterWord::Dirs => |_, info| dirs(info),
    };
    match report.filter(|report| report.serving) {
        Some(report) => answer(report, info),
        None => NOT_SERVING.to_string(),
    }
}

/// ZK compat: the `NopCommand` of `checkFourLetterWord` for a known word off the whitelist.
pub fn not_whitelisted(word: FourLetterWord) -> String {
    format!("{} is not executed because it is not in the whitelist.\n", word.as_str())
}

/// `srvr` and `stat`. ZK compat: `StatCommand` and `ServerStats.toString`.
pub fn stat(report: &ServerReport, info: &RuntimeInfo<'_>, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {VERSION}\n");
    if with_clients {
        out.push_str("Clients:\n");
        for connection in &report.connections {
            push_connection(&mut out, connection, info, true);
            out.push('\n');
        }
        push_requester(&mut out, info);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        report.latency_min_ms,
        java_double(round_half_up_4(report.latency_avg_ms)),
        report.latency_max_ms
    );
    let _ = writeln!(out, "Received: {}", report.packets_received);
    let _ = writeln!(out, "Sent: {}", report.packets_sent);
    let _ = writeln!(out, "Connections: {}", connection_count(report, info));
    let _ = writeln!(out, "Outstanding: {}", report.outstanding_requests);
    let _ = writeln!(out, "Zxid: 0x{:x}", report.zxid.0);
    let _ = writeln!(out, "Mode: {}", report.mode.as_str());
    let _ = writeln!(out, "Node count: {}", report.node_count);
    if report.mode == Mode::Leader {
        let (last, min, max) = proposal_sizes(report);
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
    if info.config.is_quorum() {
        push_quorum_state(&mut out, report);
    }
    out
}

/// Ensemble's addition to `srvr` and `stat` on a quorum member: the epoch and, on the
/// leader, each learner with how it was synced. `key: value` lines after ZooKeeper's, so
/// tools that parse `srvr` line by line (`zkServer.sh status`, exporters) are unaffected.
fn push_quorum_state(out: &mut String, report: &ServerReport) {
    let _ = writeln!(out, "Epoch: {}", report.epoch);
    if report.mode != Mode::Leader {
        return;
    }
    let _ = writeln!(out, "Learners: {}", report.learners.len());
    for learner in &report.learners {
        let _ = writeln!(
            out,
            "Learner {}: {}, state {}, sync {}, zxid 0x{:x}",
            learner.id,
            if learner.observer { "observer" } else { "follower" },
            learner.state,
            learner.sync,
            learner.zxid.0
        );
    }
}

/// `cons`. ZK compat: `ConsCommand` and `ServerCnxn.dumpConnectionInfo(pw, false)`.
pub fn cons(report: &ServerReport, info: &RuntimeInfo<'_>) -> String {
    let mut out = String::new();
    for connection in &report.connections {
        push_connection(&mut out, connection, info, false);
        out.push('\n');
    }
    push_requester(&mut out, info);
    out.push('\n');
    out
}

/// `conf`. ZK compat: `ZooKeeperServer.dumpConf`, plus `QuorumZooKeeperServer.dumpConf` for a
/// quorum member (which ends without a newline after `version=`).
pub fn conf(info: &RuntimeInfo<'_>) -> String {
    let config = info.config;
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", info.client_port.map_or(-1, i32::from));
    let _ = writeln!(out, "secureClientPort={}", config.secure_client_port.map_or(-1, i32::from));
    let _ = writeln!(out, "dataDir={}", info.snap_dir);
    // ZK compat: the sizes are swapped as in `dirs`.
    let _ = writeln!(out, "dataDirSize={}", info.log_dir_bytes);
    let _ = writeln!(out, "dataLogDir={}", info.log_dir);
    let _ = writeln!(out, "dataLogSize={}", info.snap_dir_bytes);
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", config.session_timeout_min_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", config.session_timeout_max_ms);
    let _ = writeln!(out, "clientPortListenBacklog={}", config.client_port_listen_backlog);
    let _ = writeln!(out, "serverId={}", info.server_id);
    if !config.is_quorum() {
        return out;
    }
    let own = config.servers.get(&info.server_id.0);
    let _ = writeln!(out, "initLimit={}", config.init_limit);
    let _ = writeln!(out, "syncLimit={}", config.sync_limit);
    out.push_str("electionAlg=3\n");
    let _ = writeln!(
        out,
        "electionPort={}",
        own.map_or(String::new(), |s| s.election_port.to_string())
    );
    let _ =
        writeln!(out, "quorumPort={}", own.map_or(String::new(), |s| s.quorum_port.to_string()));
    let _ = writeln!(out, "peerType={}", config.peer_type.ordinal());
    out.push_str("membership: \n");
    for spec in config.servers.values() {
        let _ = write!(
            out,
            "server.{}={}:{}:{}:{}",
            spec.id,
            java_host(&spec.host),
            spec.quorum_port,
            spec.election_port,
            spec.peer_type.as_str()
        );
        if let Some(client) = &spec.client {
            let _ = write!(out, ";{}:{}", java_host(&client.host), client.port);
        }
        out.push('\n');
    }
    let _ = write!(out, "version={:x}", config.membership_version);
    out
}

/// `mntr`. ZK compat: `MonitorCommand`: `zk_version` and `zk_server_state` first, then
/// `zk_peer_state` for a quorum member, then the gauges of `ZooKeeperServer.registerMetrics`
/// and, on a leader, the proposal sizes of `LeaderZooKeeperServer.registerMetrics`.
pub fn mntr(report: &ServerReport, info: &RuntimeInfo<'_>) -> String {
    let mut lines: Vec<(&str, String)> =
        vec![("version", VERSION.to_string()), ("server_state", report.mode.as_str().to_string())];
    if info.config.is_quorum() {
        let state = match report.mode {
            Mode::Leader => "leading - broadcast",
            Mode::Observer => "observing - broadcast",
            Mode::Looking => "looking",
            Mode::Follower | Mode::Standalone => "following - broadcast",
        };
        lines.push(("peer_state", state.to_string()));
    }
    let fd = |count: Option<u64>| count.map_or("-1".to_string(), |n| n.to_string());
    lines.extend([
        ("ephemerals_count", report.ephemerals_count.to_string()),
        ("num_alive_connections", connection_count(report, info).to_string()),
        ("avg_latency", java_double(round_half_up_4(report.latency_avg_ms))),
        ("outstanding_requests", report.outstanding_requests.to_string()),
        ("znode_count", report.node_count.to_string()),
        ("global_sessions", report.session_count.to_string()),
        ("packets_sent", report.packets_sent.to_string()),
        ("packets_received", report.packets_received.to_string()),
        ("watch_count", report.watch_total.to_string()),
        ("min_latency", report.latency_min_ms.to_string()),
        ("max_file_descriptor_count", fd(info.max_fds)),
        ("approximate_data_size", report.approximate_data_size.to_string()),
        ("open_file_descriptor_count", fd(info.open_fds)),
        ("local_sessions", "0".to_string()),
        ("uptime", info.uptime_ms.to_string()),
        ("max_latency", report.latency_max_ms.to_string()),
    ]);
    if report.mode == Mode::Leader {
        let (last, min, max) = proposal_sizes(report);
        lines.extend([
            ("last_proposal_size", last.to_string()),
            ("max_proposal_size", max.to_string()),
            ("min_proposal_size", min.to_string()),
        ]);
    }
    let mut out = String::new();
    for (key, value) in lines {
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
    if info.config.is_quorum() {
        push_quorum_gauges(&mut out, report, info.config);
    }
    out
}

/// The quorum gauges of `mntr`. ZK compat: `QuorumZooKeeperServer` (`quorum_size`) and
/// `LeaderZooKeeperServer.registerMetrics` (learner counts). A learner counts as synced once it
/// acknowledged NEWLEADER. Ensemble adds `zk_epoch`, `zk_last_zxid` and, on the leader, three
/// lines per learner (`zk_learner_<id>_state`, `_sync`, `_zxid`).
fn push_quorum_gauges(out: &mut String, report: &ServerReport, config: &ServerConfig) {
    let mut lines: Vec<(String, String)> = vec![
        ("quorum_size".into(), config.participants().count().to_string()),
        ("epoch".into(), report.epoch.to_string()),
        ("last_zxid".into(), format!("0x{:x}", report.zxid.0)),
    ];
    if report.mode == Mode::Leader {
        let synced = |observer: bool| {
            let count = report
                .learners
                .iter()
                .filter(|l| l.observer == observer && matches!(l.state, "synced" | "broadcast"))
                .count();
            count.to_string()
        };
        lines.extend([
            ("learners".into(), report.learners.len().to_string()),
            ("synced_followers".into(), synced(false)),
            ("synced_non_voting_followers".into(), "0".into()),
            ("synced_observers".into(), synced(true)),
        ]);
        for learner in &report.learners {
            let id = learner.id;
            lines.extend([
                (format!("learner_{id}_state"), learner.state.to_string()),
                (format!("learner_{id}_sync"), learner.sync.to_string()),
                (format!("learner_{id}_zxid"), format!("0x{:x}", learner.zxid.0)),
            ]);
        }
    }
    for (key, value) in lines {
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
}

/// `wchc`: data watches by session. ZK compat: `WatchManager.dumpWatches(byPath = false)`
/// plus the empty line `WatchCommand` prints after it.
pub fn wchc(report: &ServerReport) -> String {
    let mut out = String::new();
    for (session, paths) in &report.watches_by_session {
        out.push_str(&format!("0x{:x}\n", session.0));
        for path in paths {
            out.push_str(&format!("\t{path}\n"));
        }
    }
    out.push('\n');
    out
}

/// `wchp`: data watches by path. ZK compat: `WatchManager.dumpWatches(byPath = true)` plus
/// the empty line `WatchCommand` prints after it.
pub fn wchp(report: &ServerReport) -> String {
    let mut out = String::new();
    for (path, sessions) in &report.watches_by_path {
        out.push_str(path);
        out.push('\n');
        for session in sessions {
            out.push_str(&format!("\t0x{:x}\n", session.0));
        }
    }
    out.push('\n');
    out
}

/// `wchs`. ZK compat: `WatchManager.toString` plus the newline of `WatchCommand`.
pub fn wchs(report: &ServerReport) -> String {
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        report.watch_connections, report.watch_paths, report.watch_total
    )
}

/// `dump`. ZK compat: `DumpCommand`, `SessionTrackerImpl.dumpSessions`,
/// `DataTree.dumpEphemerals`, `NIOServerCnxnFactory.dumpConnections`; grouped by timeout
/// (see the module docs).
pub fn dump(report: &ServerReport, info: &RuntimeInfo<'_>) -> String {
    let mut out = String::from("SessionTracker dump:\nSession ");
    let mut sessions: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for session in &report.sessions {
        sessions.entry(session.timeout_ms).or_default().push(session.session.to_string());
    }
    push_expiry_sets(&mut out, &sessions);
    out.push_str("ephemeral nodes dump:\n");
    let owners: Vec<_> = report.sessions.iter().filter(|s| !s.ephemerals.is_empty()).collect();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
    for session in owners {
        let _ = writeln!(out, "{}:", session.session);
        for path in &session.ephemerals {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push_str("Connections dump:\nConnections ");
    let handshake_timeout_ms = i32::try_from(info.config.handshake_timeout_ms).unwrap_or(i32::MAX);
    let mut connections: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for connection in &report.connections {
        let (timeout_ms, session) = match connection.session {
            Some(session) => (connection.timeout_ms, session.to_string()),
            None => (handshake_timeout_ms, "0x0".to_string()),
        };
        let line = format!("ip: {} sessionId: {session}", java_socket_addr(connection.addr));
        connections.entry(timeout_ms).or_default().push(line);
    }
    if let Some(requester) = info.requester {
        let line = format!("ip: {} sessionId: 0x0", java_socket_addr(requester));
        connections.entry(handshake_timeout_ms).or_default().push(line);
    }
    push_expiry_sets(&mut out, &connections);
    out
}

/// `dirs`. ZK compat: `DirsCommand`, with `ZooKeeperServer.getDataDirSize` measuring the
/// txn-log directory (`FileTxnSnapLog.getDataDir`) and `getLogDirSize` the snapshot directory
/// (`getSnapDir`): the names are swapped in ZooKeeper, and scripts see ZooKeeper's numbers.
/// Equal whenever `dataLogDir` is not set.
pub fn dirs(info: &RuntimeInfo<'_>) -> String {
    format!("datadir_size: {}\nlogdir_size: {}\n", info.log_dir_bytes, info.snap_dir_bytes)
}

/// `envi`. ZK compat: `EnvCommand` and `Environment.list` (3.9 key names).
pub fn envi(info: &RuntimeInfo<'_>) -> String {
    let host = info.host;
    let entries: [(&str, Option<&str>); 18] = [
        ("zookeeper.version", Some(VERSION)),
        ("host.name", host.host_name.as_deref()),
        ("java.version", None),
        ("java.vendor", None),
        ("java.home", None),
        ("java.class.path", None),
        ("java.library.path", None),
        ("java.io.tmpdir", host.tmp_dir.as_deref()),
        ("java.compiler", None),
        ("os.name", host.os_name.as_deref()),
        ("os.arch", host.os_arch.as_deref()),
        ("os.version", host.os_version.as_deref()),
        ("user.name", host.user_name.as_deref()),
        ("user.home", host.user_home.as_deref()),
        ("user.dir", host.user_dir.as_deref()),
        ("os.memory.free", None),
        ("os.memory.max", None),
        ("os.memory.total", None),
    ];
    let mut out = String::from("Environment:\n");
    for (key, value) in entries {
        let _ = writeln!(out, "{key}={}", value.unwrap_or("<NA>"));
    }
    out
}

/// ZooKeeper counts the connection asking among the live connections.
fn connection_count(report: &ServerReport, info: &RuntimeInfo<'_>) -> usize {
    report.connections.len() + usize::from(info.requester.is_some())
}

/// ZK compat: `BufferStats` starts at -1/-1/-1 before the first proposal.
fn proposal_sizes(report: &ServerReport) -> (i64, i64, i64) {
    report
        .proposal_sizes
        .map_or((-1, -1, -1), |(last, min, max)| (to_i64(last), to_i64(min), to_i64(max)))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// ZK compat: `ServerCnxn.dumpConnectionInfo`. Interest ops are `1` (reading) for a client
/// connection; the session fields appear only once a session exists.
fn push_connection(out: &mut String, c: &ConnectionReport, info: &RuntimeInfo<'_>, brief: bool) {
    let _ = write!(
        out,
        " {}[1](queued={},recved={},sent={}",
        java_socket_addr(c.addr),
        c.queued,
        c.received,
        c.sent
    );
    if let Some(session) = c.session.filter(|session| session.0 != 0 && !brief) {
        let age_ms = info.now.mono_ms.saturating_sub(c.established_mono_ms);
        let established_wall_ms = info.now.wall_ms.saturating_sub(to_i64(age_ms));
        let _ = write!(
            out,
            ",sid={session},lop={},est={established_wall_ms},to={}",
            c.last_op, c.timeout_ms
        );
        if c.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", c.last_cxid);
        }
        // `lresp` needs the time of the last response, which the report does not carry.
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp=0,llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid,
            c.latency_last_ms,
            c.latency_min_ms,
            c.latency_avg_ms as u64,
            c.latency_max_ms
        );
    }
    out.push(')');
}

/// The connection asking: no session, nothing queued, its 4 bytes received, interest ops 0
/// (ZooKeeper cancelled its selection key).
fn push_requester(out: &mut String, info: &RuntimeInfo<'_>) {
    if let Some(requester) = info.requester {
        let _ = writeln!(out, " {}[0](queued=0,recved=1,sent=0)", java_socket_addr(requester));
    }
}

/// ZK compat: `ExpiryQueue.dump`, with timeouts in place of expiry dates.
fn push_expiry_sets(out: &mut String, sets: &BTreeMap<i32, Vec<String>>) {
    let total: usize = sets.values().map(Vec::len).sum();
    let _ = writeln!(out, "Sets ({})/({total}):", sets.len());
    for (timeout_ms, members) in sets {
        let _ = writeln!(out, "{} expire within {timeout_ms}ms:", members.len());
        for member in members {
            let _ = writeln!(out, "\t{member}");
        }
    }
}

/// ZK compat: `AvgMinMaxCounter.getAvg` rounds to 4 decimals, half up.
fn round_half_up_4(value: f64) -> f64 {
    if !value.is_finite() {
        return value;
    }
    let scaled = value * 10_000.0;
    let floor = scaled.floor();
    let rounded = if scaled - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded / 10_000.0
}

/// Java's `Double.toString`: shortest digits; plain notation with at least one fractional
/// digit for magnitudes in [1e-3, 1e7), else `d.dddE[-]n`.
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let mut text = format!("{value}");
        if !text.contains('.') {
            text.push_str(".0");
        }
        return text;
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let dot = if mantissa.contains('.') { "" } else { ".0" };
    format!("{mantissa}{dot}E{exponent}")
}

/// Java's `InetSocketAddress.toString` for an unresolved-name address: `/ip:port`, IPv6 in
/// brackets and fully expanded (`/[0:0:0:0:0:0:0:1]:2181`), IPv4-mapped IPv6 as IPv4.
pub fn java_socket_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("/{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => {
            if let Some(v4) = v6.ip().to_ipv4_mapped() {
                return format!("/{v4}:{}", v6.port());
            }
            let scope =
                if v6.scope_id() == 0 { String::new() } else { format!("%{}", v6.scope_id()) };
            format!("/[{}{scope}]:{}", java_ipv6(v6.ip().segments()), v6.port())
        }
    }
}

/// A configured host as `QuorumServer.toString` prints it: IP literals in Java's form, IPv6 in
/// brackets, names as given.
fn java_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{}]", java_ipv6(v6.segments())),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => host.to_string(),
    }
}

fn java_ipv6(segments: [u16; 8]) -> String {
    segments.iter().map(|segment| format!("{segment:x}")).collect::<Vec<_>>().join(":")
}

impl HostEnvironment {
    /// Reads the facts from the process environment and, on Linux, `/proc`; whatever cannot
    /// be read stays `None`.
    pub fn detect() -> HostEnvironment {
        let os_name = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "Mac OS X",
            "windows" => "Windows",
            "freebsd" => "FreeBSD",
            other => other,
        };
        let os_arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "x86",
            other => other,
        };
        let read_trimmed =
            |path: &str| std::fs::read_to_string(path).ok().map(|text| text.trim().to_string());
        HostEnvironment {
            host_name: read_trimmed("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok()),
            os_name: Some(os_name.to_string()),
            os_arch: Some(os_arch.to_string()),
            os_version: read_trimmed("/proc/sys/kernel/osrelease"),
            user_name: std::env::var("USER").ok(),
            user_home: std::env::var("HOME").ok(),
            user_dir: std::env::current_dir().ok().map(|dir| dir.display().to_string()),
            tmp_dir: Some(std::env::temp_dir().display().to_string()),
        }
    }
}

/// Open file descriptors of this process (Linux: entries of `/proc/self/fd`).
pub fn open_fd_count() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    u64::try_from(entries.count()).ok()
}

/// The soft limit on open files (Linux: `Max open files` in `/proc/self/limits`).
pub fn max_fd_count() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Total bytes of the regular files under `path`, recursively (ZK compat:
/// `ZooKeeperServer.getDirSize`). Unreadable entries count as 0.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |metadata| metadata.len()),
            Err(_) => 0,
        })
        .sum()
}

mod control;

pub use control::{FourLetterAnswer, TRACE_MASK_DEFAULT};

#[cfg(test)]
mod tests;
