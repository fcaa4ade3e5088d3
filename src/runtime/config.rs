//! `zoo.cfg` and `myid`: the server configuration as ZooKeeper reads it, and the values the
//! core needs from it.
//!
//! ZK compat: mirrors `QuorumPeerConfig.parseProperties` (the keys it knows), `setupMyId`,
//! `parseDynamicConfig`, `setupClientPort`, `setupPeerType` and `checkValidity`, plus the system
//! properties that a `zoo.cfg` line becomes when `QuorumPeerConfig` does not know its key
//! (`snapCount` → `zookeeper.snapCount`, read by `ZooKeeperServer`, `FilePadding`,
//! `NIOServerCnxnFactory`, `FourLetterCommands`, ...). The file syntax is Java properties; see
//! [`properties`].
//!
//! Where ZooKeeper silently falls back to a default on a malformed value (every
//! `Integer.getInteger` property), we return a typed [`ConfigError`] instead: a typo should stop
//! the server, not change its behaviour. Keys ZooKeeper knows but Ensemble does not implement
//! are accepted with a warning or a note when ignoring them is harmless, and rejected when
//! ignoring them would weaken what the operator asked for (hierarchical quorums, dynamic config
//! files, multiple addresses). The quorum port's TLS and SASL keys are read in `quorum.rs`.
//! Anything else unknown becomes a warning, which the runtime logs with `tracing::warn!`.
//!
//! Parsing is pure (text in, value out); only [`ServerConfig::load`] touches the file system.

mod auth;
mod client_tls;
pub mod jaas;
mod limits;
mod properties;
mod quorum;
pub mod sysprops;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use thiserror::Error;

use crate::core::config::NodeConfig;
use crate::core::ids::ServerId;
use crate::core::zab::{Membership, PeerRole};
use crate::runtime::fourlw::FourLetterWhitelist;

pub use auth::AuthSettings;
pub use client_tls::ClientTls;
pub use limits::ClientLimits;
use properties::Property;
pub use quorum::{QuorumSasl, QuorumSecurity, SSL_QUORUM_PREFIX};

/// A bad `zoo.cfg` or `myid`. Each variant names the key, the line and the offending value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A value that does not parse as the key's type or is out of its range.
    #[error("line {line}: {key}: expected {expected}, got '{}'", printable(.value))]
    BadValue {
        /// Line of the key (of its last occurrence).
        line: usize,
        /// The key as written.
        key: String,
        /// What the key accepts.
        expected: &'static str,
        /// The trimmed value.
        value: String,
    },
    /// A `\uXXXX` escape without four hex digits.
    #[error("line {line}: malformed \\uxxxx escape")]
    MalformedEscape {
        /// Line of the logical line holding the escape.
        line: usize,
    },
    /// A required key is absent.
    #[error("{key} is not set{context}")]
    Missing {
        /// The missing key.
        key: &'static str,
        /// Why it is required, starting with a space or empty.
        context: &'static str,
    },
    /// Values that are each well-formed but contradict each other or the rules of a quorum.
    #[error("line {line}: {key}: {message}")]
    Invalid {
        /// Line of the key.
        line: usize,
        /// The key the message is about.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `myid` and `zoo.cfg` disagree (checked once `myid` is known).
    #[error("{key}: {message}")]
    Inconsistent {
        /// The key the message is about.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A ZooKeeper feature Ensemble does not implement and cannot safely ignore.
    #[error("line {line}: {key}: {feature} is not supported by Ensemble")]
    Unsupported {
        /// Line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The feature, e.g. "hierarchical quorums (group.*/weight.*)".
        feature: &'static str,
    },
    /// The client TLS settings are wrong (`ssl.*`).
    #[error("client TLS: {0}")]
    Tls(#[from] crate::runtime::tls::TlsError),
    /// `myid` is not a server id.
    #[error("myid: expected a server id in 1..=255 on the first line, got '{}'", printable(.value))]
    BadMyid {
        /// The first line of the file.
        value: String,
    },
    /// The configuration lists servers but there is no `myid`.
    #[error("myid file is missing (required when server.N lines make this a quorum member)")]
    MissingMyid,
    /// `myid` names no `server.N` line.
    #[error("myid {id} does not match any server.N line (servers: {servers:?})")]
    MyidNotAServer {
        /// The id from `myid`.
        id: u64,
        /// The configured server ids.
        servers: Vec<u64>,
    },
    /// A `-D` system property (from `SERVER_JVMFLAGS`, `JVMFLAGS` or `java.env`) is invalid.
    #[error("system property from {origin}: {message}")]
    SystemProperty {
        /// Where the flag came from.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// The JAAS file cannot be used.
    #[error("JAAS file {path} (named by {origin}): {message}")]
    Jaas {
        /// The file.
        path: PathBuf,
        /// Where it was named.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Reading `zoo.cfg` or `myid` failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error, as text.
        message: String,
    },
}

/// Whether a server votes (`participant`) or only follows (`observer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerType {
    /// A voting member.
    #[default]
    Participant,
    /// A non-voting member.
    Observer,
}

impl PeerType {
    /// The word used in `server.N` lines and `peerType`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        }
    }

    /// ZK compat: `LearnerType.ordinal()`, which `conf` prints as `peerType=`.
    pub fn ordinal(self) -> u8 {
        match self {
            PeerType::Participant => 0,
            PeerType::Observer => 1,
        }
    }

    fn parse(text: &str) -> Option<PeerType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "participant" => Some(PeerType::Participant),
            "observer" => Some(PeerType::Observer),
            _ => None,
        }
    }
}

/// A host (name or IP literal, IPv6 without brackets) and a port. Names are resolved by the
/// runtime when it binds or connects, not here.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// Whether the host is the wildcard address (`0.0.0.0` or `::`).
    pub fn is_wildcard(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
    }
}

/// One `server.N=host:quorumPort:electionPort[:type][;[clientHost:]clientPort]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// `N`.
    pub id: u64,
    /// Host of the quorum and election ports.
    pub host: String,
    /// Follower ↔ leader port.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
    /// Voting or not.
    pub peer_type: PeerType,
    /// The client address given in the line (`;port` means `0.0.0.0:port`).
    pub client: Option<HostPort>,
}

/// A parsed `zoo.cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// `tickTime`: the base time unit, ms.
    pub tick_time_ms: u32,
    /// `initLimit`: ticks a learner may take to connect and sync (0 = unset; quorum requires it).
    pub init_limit: u32,
    /// `syncLimit`: ticks a learner may lag (0 = unset; quorum requires it).
    pub sync_limit: u32,
    /// `dataDir`: snapshots and `myid`.
    pub data_dir: PathBuf,
    /// `dataLogDir`: transaction logs (defaults to `data_dir`).
    pub data_log_dir: PathBuf,
    /// `clientPort`.
    pub client_port: Option<u16>,
    /// `clientPortAddress` (requires `clientPort`); all interfaces when absent.
    pub client_port_address: Option<String>,
    /// `secureClientPort`: a TLS-only client port.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress` (requires `secureClientPort`); all interfaces when absent.
    pub secure_client_port_address: Option<String>,
    /// Client TLS (`ssl.*`, `client.portUnification`, `client.certReload`) and x509 auth.
    pub client_tls: ClientTls,
    /// `clientPortListenBacklog` (-1 = OS default).
    pub client_port_listen_backlog: i32,
    /// `maxClientCnxns`: connections per client IP (0 = unlimited).
    pub max_client_cnxns: u32,
    /// `minSessionTimeout` in ms (default 2 × tick).
    pub session_timeout_min_ms: i32,
    /// `maxSessionTimeout` in ms (default 20 × tick).
    pub session_timeout_max_ms: i32,
    /// `autopurge.snapRetainCount` (at least 3).
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours (0 = no purge).
    pub purge_interval_hours: u32,
    /// `snapCount`: txns between snapshots (at least 2).
    pub snap_count: u64,
    /// `preAllocSize` (given in KiB): txn log pre-allocation block, in bytes.
    pub pre_alloc_size_bytes: u64,
    /// `4lw.commands.whitelist`.
    pub four_letter_words: FourLetterWhitelist,
    /// `forceSync`: false only for `forceSync=no`, which stops the txn log's `fdatasync`.
    pub force_sync: bool,
    /// `standaloneEnabled`: with false, even one server runs as a quorum.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `peerType` of this server (the `server.N` line wins when they disagree).
    pub peer_type: PeerType,
    /// `localSessionsEnabled` (Ensemble has global sessions only; true is warned about).
    pub local_sessions_enabled: bool,
    /// `globalOutstandingLimit`: requests in flight before the node pushes back.
    pub outstanding_max: usize,
    /// `jute.maxbuffer` (an Ensemble extension key; ZooKeeper takes it as a JVM flag).
    pub frame_max_bytes: usize,
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed, server ids at most 254.
    pub extended_types: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `user:base64(sha1)`.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL=yes`.
    pub skip_acl: bool,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never).
    pub container_never_used_ms: u64,
    /// `zookeeper.enableEagerACLCheck`.
    pub eager_acl_check: bool,
    /// `zookeeper.nio.sessionlessCnxnTimeout`: a connection without a handshake closes after this.
    pub handshake_timeout_ms: u64,
    /// Connection and request throttling and the per-connection byte budgets.
    pub client_limits: ClientLimits,
    /// `ensemble.slowStepWarnMs` (an Ensemble key): a node-loop round or disk batch taking
    /// longer than this many ms is logged at WARN with what it did; 0 turns that off.
    pub slow_step_warn_ms: u64,
    /// TLS and SASL between members (`sslQuorum`, `ssl.quorum.*`, `quorum.auth.*`).
    pub quorum_security: QuorumSecurity,
    /// `server.N` lines by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// `version` (hex): the membership version ZooKeeper writes with dynamic config.
    pub membership_version: u64,
    /// SASL, authentication providers and `enforce.auth` (see [`auth`]).
    pub auth: AuthSettings,
    /// The system properties taken and where from, logged at startup.
    pub system_properties: Vec<String>,
    /// Problems that do not stop the server; the runtime logs them with `tracing::warn!`.
    pub warnings: Vec<String>,
    /// Keys accepted and deliberately ignored; the runtime logs them with `tracing::info!`.
    pub notes: Vec<String>,
}

impl ServerConfig {
    /// Parses `zoo.cfg` text for a `--config` run. `dataDir` is required. `myid` is checked
    /// separately by [`ServerConfig::resolve_server_id`], as ZooKeeper reads it from `dataDir`.
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        Self::parse_with_system_properties(text, &sysprops::SystemProperties::default())
    }

    /// [`ServerConfig::parse`] for a JVM started with these system properties (`zoo.cfg` wins
    /// where both set a key).
    pub fn parse_with_system_properties(
        text: &str,
        system: &sysprops::SystemProperties,
    ) -> Result<ServerConfig, ConfigError> {
        let properties = properties::parse(text)
            .map_err(|escape| ConfigError::MalformedEscape { line: escape.line })?;
        let mut draft = Draft::default();
        let system_properties = sysprops::apply(&mut draft, system)?;
        for property in &properties {
            draft.apply(property)?;
        }
        let mut config = draft.finish()?;
        config.system_properties = system_properties;
        config.notes.extend(system.notes.iter().cloned());
        Ok(config)
    }

    /// Reads `zoo.cfg` at `path`, then `myid` from its `dataDir` if that file exists, and
    /// returns the configuration with the server id this process runs as.
    pub fn load(path: &Path) -> Result<(ServerConfig, ServerId), ConfigError> {
        Self::load_with_system_properties(path, &sysprops::SystemProperties::default())
    }

    /// [`ServerConfig::load`] with system properties; also reads the JAAS file they or
    /// `zoo.cfg` name.
    pub fn load_with_system_properties(
        path: &Path,
        system: &sysprops::SystemProperties,
    ) -> Result<(ServerConfig, ServerId), ConfigError> {
        let io_error = |path: &Path, error: std::io::Error| ConfigError::Io {
            path: path.to_path_buf(),
            message: error.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|error| io_error(path, error))?;
        let mut config = ServerConfig::parse_with_system_properties(&text, system)?;
        config.auth.load_jaas(&mut config.notes)?;
        let myid_path = config.data_dir.join("myid");
        let myid = match std::fs::read_to_string(&myid_path) {
            Ok(text) => Some(parse_myid(&text)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(io_error(&myid_path, error)),
        };
        let server_id = config.resolve_server_id(myid)?;
        Ok((config, server_id))
    }

    /// The configuration of `ensemble server` without arguments: a standalone server on
    /// `127.0.0.1:2181` with its data in `./ensemble-data` and `tickTime=2000`.
    ///
    /// Deviation (a development convenience): every four-letter word Ensemble implements is
    /// enabled, where ZooKeeper enables only `srvr` unless told otherwise.
    pub fn standalone_default() -> ServerConfig {
        let draft = Draft {
            tick_time_ms: Some(2000),
            data_dir: Some(PathBuf::from("./ensemble-data")),
            client_port: Some((2181, 0)),
            client_port_address: Some(("127.0.0.1".to_string(), 0)),
            four_letter_words: Some(FourLetterWhitelist::all()),
            ..Draft::default()
        };
        draft.finish().expect("the built-in defaults are a valid standalone configuration")
    }

    /// Whether this configuration runs a quorum member. ZK compat:
    /// `QuorumPeerConfig.isDistributed`: more than one participant, or any server line with
    /// `standaloneEnabled=false`.
    pub fn is_quorum(&self) -> bool {
        let participants = self.participants().count();
        participants > 1 || (!self.standalone_enabled && participants > 0)
    }

    /// The voting members.
    pub fn participants(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.values().filter(|spec| spec.peer_type == PeerType::Participant)
    }

    /// Checks `myid` against the configuration and returns the id this server runs as.
    ///
    /// ZK compat: a standalone server runs as id 0 whatever `myid` says (`ZooKeeperServerMain`
    /// does not read it). A quorum member needs a `myid` that names one of its `server.N` lines.
    /// As in `setupPeerType`, the role in that line wins over `peerType` (with a warning), and,
    /// as in `setupClientPort`, a static `clientPort` must agree with the line's client address.
    pub fn resolve_server_id(&mut self, myid: Option<u64>) -> Result<ServerId, ConfigError> {
        if !self.is_quorum() {
            return Ok(ServerId(0));
        }
        let id = myid.ok_or(ConfigError::MissingMyid)?;
        let Some(spec) = self.servers.get(&id) else {
            let servers = self.servers.keys().copied().collect();
            return Err(ConfigError::MyidNotAServer { id, servers });
        };
        if self.extended_types && id > SERVER_ID_EXTENDED_MAX {
            return Err(ConfigError::Inconsistent {
                key: "myid",
                message: format!(
                    "extendedTypesEnabled is true but server id {id} is larger than \
                     {SERVER_ID_EXTENDED_MAX}"
                ),
            });
        }
        if let (Some(line_client), Some(static_client)) = (&spec.client, self.static_client()) {
            let agrees = if static_client.is_wildcard() {
                static_client.port == line_client.port
            } else {
                static_client == *line_client
            };
            if !agrees {
                return Err(ConfigError::Inconsistent {
                    key: "clientPort",
                    message: format!(
                        "client address for server {id} is {}:{} in clientPort/clientPortAddress \
                         but {}:{} in its server.{id} line",
                        static_client.host, static_client.port, line_client.host, line_client.port
                    ),
                });
            }
        }
        if spec.peer_type != self.peer_type {
            self.warnings.push(format!(
                "peerType is {} but server.{id} says {}; using {}",
                self.peer_type.as_str(),
                spec.peer_type.as_str(),
                spec.peer_type.as_str()
            ));
            self.peer_type = spec.peer_type;
        }
        Ok(ServerId(id))
    }

    /// The address to accept clients on, if any. ZK compat: `setupClientPort`: a quorum member
    /// uses the client address of its `server.N` line when the line has one, else `clientPort`
    /// (and `clientPortAddress`, default all interfaces).
    pub fn client_address(&self, server_id: ServerId) -> Option<HostPort> {
        let from_line = self.servers.get(&server_id.0).and_then(|spec| spec.client.clone());
        from_line.filter(|_| self.is_quorum()).or_else(|| self.static_client())
    }

    /// The values the core needs.
    pub fn node_config(&self, server_id: ServerId, rng_seed: u64) -> NodeConfig {
        NodeConfig {
            server_id,
            tick_time_ms: self.tick_time_ms,
            session_timeout_min_ms: self.session_timeout_min_ms,
            session_timeout_max_ms: self.session_timeout_max_ms,
            snap_count: self.snap_count,
            frame_max_bytes: self.frame_max_bytes,
            extended_types: self.extended_types,
            super_digest: self.super_digest.clone(),
            skip_acl: self.skip_acl,
            container_check_interval_ms: self.container_check_interval_ms,
            container_never_used_ms: self.container_never_used_ms,
            handshake_timeout_ms: self.handshake_timeout_ms,
            outstanding_max: self.outstanding_max,
            rng_seed,
            membership: self.membership(),
            reconfig_enabled: self.reconfig_enabled,
            canaries: Default::default(),
            zxid_counter_start: 0,
            // Unset limits only happen in standalone mode, where they are never used.
            init_limit: if self.init_limit == 0 { 10 } else { self.init_limit },
            sync_limit: if self.sync_limit == 0 { 5 } else { self.sync_limit },
            auth: self.auth.core.clone(),
        }
    }

    /// The ensemble's members with their roles (empty when standalone).
    pub fn membership(&self) -> Membership {
        if !self.is_quorum() {
            return Membership::default();
        }
        let members = self
            .servers
            .values()
            .map(|spec| {
                let role = match spec.peer_type {
                    PeerType::Participant => PeerRole::Participant,
                    PeerType::Observer => PeerRole::Observer,
                };
                (ServerId(spec.id), role)
            })
            .collect();
        Membership { members }
    }

    fn static_client(&self) -> Option<HostPort> {
        let host = self.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".to_string());
        self.client_port.map(|port| HostPort { host, port })
    }
}

/// Parses the content of a `myid` file: the first line, a decimal server id in 1..=255.
///
/// ZK compat: `setupMyId` reads the first line with `Long.parseLong`. We also accept blanks
/// around the number (editors add them; Java would reject them) and enforce the documented
/// range, which ZooKeeper needs because a session id carries the server id in its top byte.
pub fn parse_myid(text: &str) -> Result<u64, ConfigError> {
    let first = text.split(['\n', '\r']).next().unwrap_or("");
    let value = first.trim_matches([' ', '\t']);
    let bad = || ConfigError::BadMyid { value: first.to_string() };
    let id = properties::parse_long(value).ok_or_else(bad)?;
    match u64::try_from(id) {
        Ok(id @ 1..=SERVER_ID_MAX) => Ok(id),
        _ => Err(bad()),
    }
}

/// The largest server id (a session id holds the id in its top byte).
pub const SERVER_ID_MAX: u64 = 255;

/// The largest server id with `extendedTypesEnabled` (ZK compat: `EphemeralType`).
pub const SERVER_ID_EXTENDED_MAX: u64 = 254;

const TICK_TIME_DEFAULT_MS: u32 = 3000;
const MAX_CLIENT_CNXNS_DEFAULT: u32 = 60;
const SNAP_RETAIN_COUNT_MIN: u32 = 3;
const SNAP_COUNT_DEFAULT: u64 = 100_000;
const SNAP_COUNT_MIN: u64 = 2;
const PRE_ALLOC_SIZE_DEFAULT_KIB: u64 = 65_536;
const OUTSTANDING_MAX_DEFAULT: usize = 1000;
const FRAME_MAX_BYTES_DEFAULT: usize = 0xFFFFF;
const CONTAINER_CHECK_INTERVAL_DEFAULT_MS: u64 = 60_000;
const HANDSHAKE_TIMEOUT_DEFAULT_MS: u64 = 10_000;

/// Keys ZooKeeper knows that Ensemble accepts and ignores; each gets a note.
const IGNORED_KEYS: &[&str] = &[
    "syncEnabled",
    "connectToLearnerMasterLimit",
    "localSessionsUpgradingEnabled",
    "quorum.cnxn.threads.size",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "jvm.pause.monitor",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.warn-threshold.ms",
    "jvm.pause.sleep.time.ms",
    // No ZooKeeper-compatible tree digest: `hash` prints the empty history of a ZooKeeper
    // with `digest.enabled=false`.
    "digest.enabled",
];

/// Key prefixes accepted and ignored (the HTTP admin server, JMX-style metrics providers).
const IGNORED_PREFIXES: &[&str] = &["admin.", "metricsProvider."];

/// Every value read so far, with the line it came from (for errors found in `finish`).
#[derive(Default)]
struct Draft {
    tick_time_ms: Option<u32>,
    tick_line: usize,
    init_limit: u32,
    sync_limit: u32,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    client_port: Option<(u16, usize)>,
    client_port_address: Option<(String, usize)>,
    secure_client_port: Option<u16>,
    secure_client_port_address: Option<(String, usize)>,
    client_tls: ClientTls,
    client_port_listen_backlog: Option<i32>,
    max_client_cnxns: Option<u32>,
    session_timeout_min_ms: Option<(i32, usize)>,
    session_timeout_max_ms: Option<(i32, usize)>,
    snap_retain_count: Option<(i32, usize)>,
    purge_interval_hours: u32,
    snap_count: Option<u64>,
    pre_alloc_size_kib: Option<u64>,
    four_letter_words: Option<FourLetterWhitelist>,
    force_sync: Option<bool>,
    standalone_enabled: Option<bool>,
    reconfig_enabled: bool,
    peer_type: PeerType,
    local_sessions_enabled: bool,
    outstanding_max: Option<usize>,
    frame_max_bytes: Option<usize>,
    extended_types: bool,
    super_digest: Option<String>,
    skip_acl: bool,
    container_check_interval_ms: Option<u64>,
    container_never_used_ms: u64,
    eager_acl_check: bool,
    handshake_timeout_ms: Option<u64>,
    client_limits: ClientLimits,
    slow_step_warn_ms: Option<u64>,
    quorum_security: QuorumSecurity,
    servers: BTreeMap<u64, (ServerSpec, usize)>,
    membership_version: u64,
    auth: auth::AuthDraft,
    /// Where the property being applied came from when it is a `-D` flag.
    sysprop_origin: Option<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Draft {
    /// Takes one `zoo.cfg` entry. ZK compat: the `if/else` chain of `parseProperties`.
    fn apply(&mut self, property: &Property) -> Result<(), ConfigError> {
        let p = property;
        match p.key.as_str() {
            "tickTime" => {
                self.tick_time_ms = Some(positive_int(p)?);
                self.tick_line = p.line;
            }
            "initLimit" => self.init_limit = non_negative_int(p)?,
            "syncLimit" => self.sync_limit = non_negative_int(p)?,
            "dataDir" => self.data_dir = Some(path(p)?),
            "dataLogDir" => self.data_log_dir = Some(path(p)?),
            "clientPort" => self.client_port = Some((port(p)?, p.line)),
            "clientPortAddress" => self.client_port_address = Some((host(p)?, p.line)),
            "secureClientPort" => {
                self.secure_client_port = Some(port(p)?);
            }
            "secureClientPortAddress" => {
                self.secure_client_port_address = Some((host(p)?, p.line));
            }
            "clientPortListenBacklog" => self.client_port_listen_backlog = Some(java_int(p)?),
            "maxClientCnxns" => self.max_client_cnxns = Some(non_negative_int(p)?),
            "minSessionTimeout" => self.session_timeout_min_ms = Some((timeout(p)?, p.line)),
            "maxSessionTimeout" => self.session_timeout_max_ms = Some((timeout(p)?, p.line)),
            "electionAlg" => {
                if java_int(p)? != 3 {
                    return Err(bad(p, "3 (the only election algorithm)"));
                }
            }
            "peerType" => {
                self.peer_type = PeerType::parse(&p.value)
                    .ok_or_else(|| bad(p, "'participant' or 'observer'"))?;
            }
            "autopurge.snapRetainCount" => self.snap_retain_count = Some((java_int(p)?, p.line)),
            "autopurge.purgeInterval" => {
                self.purge_interval_hours = u32::try_from(java_int(p)?).unwrap_or(0);
            }
            "standaloneEnabled" => self.standalone_enabled = Some(boolean(p)?),
            "reconfigEnabled" => {
                self.reconfig_enabled = boolean(p)?;
                if self.reconfig_enabled {
                    self.warn(p, "reconfigEnabled: dynamic reconfiguration is not supported");
                }
            }
            "localSessionsEnabled" => {
                self.local_sessions_enabled = boolean(p)?;
                if self.local_sessions_enabled {
                    self.warn(p, "localSessionsEnabled: every session is global in Ensemble");
                }
            }
            "version" => {
                self.membership_version =
                    u64::from_str_radix(&p.value, 16).map_err(|_| bad(p, "a hex version"))?;
            }
            "ensemble.slowStepWarnMs" => {
                let ms = u64::try_from(java_long(p)?).map_err(|_| bad(p, "a number of ms"))?;
                self.slow_step_warn_ms = Some(ms);
            }
            key if key.starts_with("server.") => self.apply_server(p)?,
            // An error, not a warning: running majority quorums instead would change which
            // sets of servers can commit, silently breaking what the operator designed.
            key if key.starts_with("group.") || key.starts_with("weight.") => {
                return Err(unsupported(p, "hierarchical quorums (group.*/weight.*)"));
            }
            _ => self.apply_other(p)?,
        }
        Ok(())
    }

    /// Keys `parseProperties` knows that Ensemble does not implement, then the system
    /// properties that unknown keys become.
    fn apply_other(&mut self, p: &Property) -> Result<(), ConfigError> {
        let enabled_unsupported = match p.key.as_str() {
            "dynamicConfigFile" => return Err(unsupported(p, "a dynamic config file")),
            "oraclePath" => return Err(unsupported(p, "the oracle quorum (oraclePath)")),
            "multiAddress.enabled" => Some("multiple addresses per server"),
            _ => None,
        };
        if let Some(feature) = enabled_unsupported {
            if boolean(p)? {
                return Err(unsupported(p, feature));
            }
            return Ok(());
        }
        if self.quorum_security.apply(p)? {
            return Ok(());
        }
        match p.key.as_str() {
            "observerMasterPort" | "quorumListenOnAllIPs" => {
                self.warn(p, &format!("{} is not supported; ignored", p.key));
            }
            key if IGNORED_KEYS.contains(&key)
                || IGNORED_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) =>
            {
                self.notes
                    .push(format!("line {}: {} is not used by Ensemble; ignored", p.line, key));
            }
            _ => self.apply_system_property(p)?,
        }
        Ok(())
    }

    /// ZK compat: `System.setProperty("zookeeper." + key, value)` and the classes that read
    /// those properties. Both `snapCount` and `zookeeper.snapCount` are accepted here (ZooKeeper
    /// would read only the first, as `zookeeper.snapCount`).
    fn apply_system_property(&mut self, p: &Property) -> Result<(), ConfigError> {
        let name = p.key.strip_prefix("zookeeper.").unwrap_or(&p.key);
        // client_tls first: it takes the X509AuthenticationProvider `authProvider.N`.
        if self.client_limits.apply(name, p)? || self.client_tls.apply(name, p, &mut self.notes)? {
            return Ok(());
        }
        let origin =
            self.sysprop_origin.clone().unwrap_or_else(|| format!("zoo.cfg line {}", p.line));
        if self.auth.apply(name, p, &origin)? {
            return Ok(());
        }
        // `-Dzookeeper.ssl.quorum.*` flags (QuorumX509Util reads system properties too).
        if name.starts_with(SSL_QUORUM_PREFIX) && self.quorum_security.apply(p)? {
            return Ok(());
        }
        match name {
            "snapCount" => {
                let count = properties::decode_int(&p.value).ok_or_else(|| bad(p, "an integer"))?;
                // ZK compat: `ZooKeeperServer.getSnapCount` resets values below 2 to 2.
                let count = u64::try_from(count).unwrap_or(0);
                if count < SNAP_COUNT_MIN {
                    self.warn(p, "snapCount should be 2 or more; using 2");
                }
                self.snap_count = Some(count.max(SNAP_COUNT_MIN));
            }
            "preAllocSize" => {
                let kib = java_long(p)?;
                self.pre_alloc_size_kib = Some(
                    u64::try_from(kib)
                        .ok()
                        .filter(|kib| kib.checked_mul(1024).is_some())
                        .ok_or_else(|| bad(p, "a size in KiB"))?,
                );
            }
            "4lw.commands.whitelist" => {
                let (whitelist, unknown) = FourLetterWhitelist::parse(&p.value);
                for word in unknown {
                    self.warn(p, &format!("4lw.commands.whitelist: unknown command '{word}'"));
                }
                self.four_letter_words = Some(whitelist);
            }
            "globalOutstandingLimit" => self.outstanding_max = Some(positive_decoded(p)? as usize),
            "jute.maxbuffer" => self.frame_max_bytes = Some(positive_decoded(p)? as usize),
            "extendedTypesEnabled" => self.extended_types = boolean(p)?,
            "enableEagerACLCheck" => self.eager_acl_check = boolean(p)?,
            "skipACL" => {
                self.skip_acl = match p.value.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad(p, "'yes' or 'no'")),
                };
            }
            "DigestAuthenticationProvider.superDigest" => {
                self.super_digest = Some(super_digest(p)?);
            }
            "znode.container.checkIntervalMs" => {
                self.container_check_interval_ms = Some(u64::from(positive_decoded(p)?));
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                let ms = decoded_long(p)?;
                self.container_never_used_ms =
                    u64::try_from(ms).map_err(|_| bad(p, "a non-negative number of ms"))?;
            }
            // ZK compat: `FileTxnLog` syncs unless the property is exactly `no`.
            "forceSync" => {
                self.force_sync = Some(p.value != "no");
                if p.value == "no" {
                    self.warn(
                        p,
                        "forceSync=no: the txn log is never fdatasync'ed; a power failure or \
                         OS crash can lose acknowledged writes",
                    );
                }
            }
            "nio.sessionlessCnxnTimeout" => {
                self.handshake_timeout_ms = Some(u64::from(positive_decoded(p)?));
            }
            _ => self.warn(p, &format!("unknown key '{}'; ignored", p.key)),
        }
        Ok(())
    }

    /// ZK compat: `QuorumMaj(Properties)` and `QuorumServer.initializeWithAddressString`.
    fn apply_server(&mut self, p: &Property) -> Result<(), ConfigError> {
        let id_text = &p.key["server.".len()..];
        let id = properties::parse_long(id_text)
            .and_then(|id| u64::try_from(id).ok())
            .filter(|id| (1..=SERVER_ID_MAX).contains(id))
            .ok_or_else(|| ConfigError::BadValue {
                line: p.line,
                key: p.key.clone(),
                expected: "a server id in 1..=255 after 'server.'",
                value: id_text.to_string(),
            })?;
        let spec = server_spec(id, p, &mut self.warnings)?;
        if let Some((_, first_line)) = self.servers.get(&id) {
            return Err(ConfigError::Invalid {
                line: p.line,
                key: p.key.clone(),
                message: format!("server id {id} is already defined on line {first_line}"),
            });
        }
        self.servers.insert(id, (spec, p.line));
        Ok(())
    }

    fn warn(&mut self, p: &Property, message: &str) {
        self.warnings.push(format!("line {}: {message}", p.line));
    }

    /// The checks `parseProperties` makes after reading every key, then `parseDynamicConfig`
    /// and `checkValidity`.
    fn finish(mut self) -> Result<ServerConfig, ConfigError> {
        let data_dir =
            self.data_dir.take().ok_or(ConfigError::Missing { key: "dataDir", context: "" })?;
        let (session_timeout_min_ms, session_timeout_max_ms) = self.session_timeouts()?;
        if let (Some((_, line)), None) = (&self.client_port_address, &self.client_port) {
            return Err(ConfigError::Invalid {
                line: *line,
                key: "clientPortAddress".to_string(),
                message: "clientPortAddress is set but clientPort is not set".to_string(),
            });
        }
        if let (Some((_, line)), None) = (&self.secure_client_port_address, self.secure_client_port)
        {
            let line = *line;
            return Err(ConfigError::Invalid {
                line,
                key: "secureClientPortAddress".to_string(),
                message: "secureClientPortAddress is set but secureClientPort is not set"
                    .to_string(),
            });
        }
        if self.secure_client_port.is_some() || self.client_tls.port_unification {
            let settings = self.client_tls.settings()?;
            if settings.key_store.is_none() {
                return Err(ConfigError::Missing {
                    key: "ssl.keyStore.location",
                    context: " (a key store is required to serve TLS clients)",
                });
            }
        }
        let snap_retain_count = match self.snap_retain_count {
            Some((count, line)) if count < SNAP_RETAIN_COUNT_MIN as i32 => {
                self.warnings.push(format!(
                    "line {line}: invalid autopurge.snapRetainCount {count}; using 3"
                ));
                SNAP_RETAIN_COUNT_MIN
            }
            Some((count, _)) => count as u32,
            None => SNAP_RETAIN_COUNT_MIN,
        };
        let standalone_enabled = self.standalone_enabled.unwrap_or(true);
        self.check_quorum(standalone_enabled)?;
        self.quorum_security.check()?;
        if self.extended_types {
            self.check_extended_server_ids()?;
        }
        let x509 = self.client_tls.x509_provider(self.secure_client_port.is_some());
        let auth = std::mem::take(&mut self.auth).finish(x509)?;
        self.warnings.extend(auth.unknown_providers.iter().cloned());
        let config = ServerConfig {
            tick_time_ms: self.tick_time_ms.unwrap_or(TICK_TIME_DEFAULT_MS),
            init_limit: self.init_limit,
            sync_limit: self.sync_limit,
            data_log_dir: self.data_log_dir.unwrap_or_else(|| data_dir.clone()),
            data_dir,
            client_port: self.client_port.map(|(port, _)| port),
            client_port_address: self.client_port_address.map(|(host, _)| host),
            secure_client_port: self.secure_client_port,
            secure_client_port_address: self.secure_client_port_address.map(|(host, _)| host),
            client_tls: self.client_tls,
            client_port_listen_backlog: self.client_port_listen_backlog.unwrap_or(-1),
            max_client_cnxns: self.max_client_cnxns.unwrap_or(MAX_CLIENT_CNXNS_DEFAULT),
            session_timeout_min_ms,
            session_timeout_max_ms,
            snap_retain_count,
            purge_interval_hours: self.purge_interval_hours,
            snap_count: self.snap_count.unwrap_or(SNAP_COUNT_DEFAULT),
            pre_alloc_size_bytes: self.pre_alloc_size_kib.unwrap_or(PRE_ALLOC_SIZE_DEFAULT_KIB)
                * 1024,
            four_letter_words: self.four_letter_words.unwrap_or_default(),
            force_sync: self.force_sync.unwrap_or(true),
            standalone_enabled,
            reconfig_enabled: self.reconfig_enabled,
            peer_type: self.peer_type,
            local_sessions_enabled: self.local_sessions_enabled,
            outstanding_max: self.outstanding_max.unwrap_or(OUTSTANDING_MAX_DEFAULT),
            frame_max_bytes: self.frame_max_bytes.unwrap_or(FRAME_MAX_BYTES_DEFAULT),
            extended_types: self.extended_types,
            super_digest: self.super_digest,
            skip_acl: self.skip_acl,
            container_check_interval_ms: self
                .container_check_interval_ms
                .unwrap_or(CONTAINER_CHECK_INTERVAL_DEFAULT_MS),
            container_never_used_ms: self.container_never_used_ms,
            eager_acl_check: self.eager_acl_check,
            handshake_timeout_ms: self.handshake_timeout_ms.unwrap_or(HANDSHAKE_TIMEOUT_DEFAULT_MS),
            client_limits: self.client_limits,
            slow_step_warn_ms: self
                .slow_step_warn_ms
                .unwrap_or(crate::runtime::slow::SLOW_WARN_DEFAULT_MS),
            quorum_security: self.quorum_security,
            servers: self.servers.into_iter().map(|(id, (spec, _))| (id, spec)).collect(),
            membership_version: self.membership_version,
            auth,
            system_properties: Vec::new(),
            warnings: self.warnings,
            notes: self.notes,
        };
        Ok(config)
    }

    /// ZK compat: -1 (or absent) means the default, 2 × tick and 20 × tick; min > max is an
    /// error. Java computes the defaults in `int` and would overflow; we refuse instead.
    fn session_timeouts(&self) -> Result<(i32, i32), ConfigError> {
        let tick = self.tick_time_ms.unwrap_or(TICK_TIME_DEFAULT_MS);
        let default = |factor: u32, key: &str| {
            tick.checked_mul(factor).and_then(|ms| i32::try_from(ms).ok()).ok_or_else(|| {
                ConfigError::Invalid {
                    line: self.tick_line,
                    key: "tickTime".to_string(),
                    message: format!("tickTime {tick} is too large for the default {key}"),
                }
            })
        };
        let min = match self.session_timeout_min_ms {
            Some((ms, _)) if ms != -1 => ms,
            _ => default(2, "minSessionTimeout")?,
        };
        let max = match self.session_timeout_max_ms {
            Some((ms, _)) if ms != -1 => ms,
            _ => default(20, "maxSessionTimeout")?,
        };
        if min > max {
            let line =
                self.session_timeout_min_ms.or(self.session_timeout_max_ms).map_or(0, |t| t.1);
            return Err(ConfigError::Invalid {
                line,
                key: "minSessionTimeout".to_string(),
                message: format!(
                    "minSessionTimeout ({min}) must not be larger than maxSessionTimeout ({max})"
                ),
            });
        }
        Ok((min, max))
    }

    /// ZK compat: `parseDynamicConfig` and `checkValidity`.
    fn check_quorum(&mut self, standalone_enabled: bool) -> Result<(), ConfigError> {
        let (observers, participants): (Vec<_>, Vec<_>) =
            self.servers.values().partition(|(spec, _)| spec.peer_type == PeerType::Observer);
        let first_line = self.servers.values().map(|(_, line)| *line).min().unwrap_or(0);
        let invalid = |message: &str| ConfigError::Invalid {
            line: first_line,
            key: "server.N".to_string(),
            message: message.to_string(),
        };
        match participants.len() {
            0 if !standalone_enabled => {
                return Err(invalid("standaloneEnabled=false needs at least one participant"));
            }
            0 if !observers.is_empty() => {
                return Err(invalid("observers without participants are an invalid configuration"));
            }
            0 => return Ok(()),
            1 if standalone_enabled => {
                if !observers.is_empty() {
                    return Err(invalid("observers without a quorum are an invalid configuration"));
                }
                self.warnings.push(format!(
                    "line {first_line}: only one server specified; running standalone \
                     (set standaloneEnabled=false to run a one-server quorum)"
                ));
                return Ok(());
            }
            1 | 2 => self.warnings.push(
                "no server failure will be tolerated; you need at least 3 servers".to_string(),
            ),
            n if n % 2 == 0 => self
                .warnings
                .push("non-optimal configuration, consider an odd number of servers".to_string()),
            _ => {}
        }
        if self.init_limit == 0 {
            return Err(ConfigError::Missing { key: "initLimit", context: CONTEXT_QUORUM });
        }
        if self.sync_limit == 0 {
            return Err(ConfigError::Missing { key: "syncLimit", context: CONTEXT_QUORUM });
        }
        Ok(())
    }

    /// ZK compat: `EphemeralType.validateServerId`: with extended types a session id keeps
    /// its top byte for the type, so server ids stop at 254.
    fn check_extended_server_ids(&self) -> Result<(), ConfigError> {
        match self.servers.values().find(|(spec, _)| spec.id > SERVER_ID_EXTENDED_MAX) {
            Some((spec, line)) => Err(ConfigError::Invalid {
                line: *line,
                key: format!("server.{}", spec.id),
                message: format!(
                    "extendedTypesEnabled is true but server id {} is larger than \
                     {SERVER_ID_EXTENDED_MAX}",
                    spec.id
                ),
            }),
            None => Ok(()),
        }
    }
}

const CONTEXT_QUORUM: &str = " (required when server.N lines make this a quorum)";

/// Parses `host:quorumPort:electionPort[:type][;[clientHost:]clientPort[;secure]]`.
fn server_spec(
    id: u64,
    p: &Property,
    warnings: &mut Vec<String>,
) -> Result<ServerSpec, ConfigError> {
    const EXPECTED: &str =
        "host:quorumPort:electionPort[:participant|observer][;[host:]clientPort]";
    let bad_line = || bad(p, EXPECTED);
    let mut parts = p.value.split(';');
    let server_part = parts.next().unwrap_or("").trim();
    let client_part = parts.next().map(str::trim).filter(|part| !part.is_empty());
    let secure_part = parts.next().map(str::trim).filter(|part| !part.is_empty());
    if parts.next().is_some() {
        return Err(bad_line());
    }
    if server_part.contains('|') {
        return Err(unsupported(p, "multiple addresses per server ('|')"));
    }
    let pieces = host_and_ports(server_part).ok_or_else(bad_line)?;
    if !(3..=4).contains(&pieces.len()) || pieces[0].is_empty() {
        return Err(bad_line());
    }
    let quorum_port = server_port(p, pieces[1])?;
    let election_port = server_port(p, pieces[2])?;
    if quorum_port == election_port {
        return Err(ConfigError::Invalid {
            line: p.line,
            key: p.key.clone(),
            message: format!("quorum and election port must be different, both are {quorum_port}"),
        });
    }
    let peer_type = match pieces.get(3) {
        Some(word) => PeerType::parse(word)
            .ok_or_else(|| bad(p, "'participant' or 'observer' as the role"))?,
        None => PeerType::Participant,
    };
    let client = client_part.map(|part| client_address(p, part)).transpose()?;
    if secure_part.is_some() {
        warnings.push(format!(
            "line {}: {}: a secure client address on a server line is not supported (use \
             secureClientPort); not opened",
            p.line, p.key
        ));
    }
    Ok(ServerSpec {
        id,
        host: pieces[0].to_string(),
        quorum_port,
        election_port,
        peer_type,
        client,
    })
}

/// `[clientHost:]clientPort`; a bare port means all interfaces.
fn client_address(p: &Property, part: &str) -> Result<HostPort, ConfigError> {
    let pieces = host_and_ports(part).ok_or_else(|| bad(p, "[host:]port after ';'"))?;
    let (host, port_text) = match pieces.as_slice() {
        [port] => ("0.0.0.0", *port),
        [host, port] if !host.is_empty() => (*host, *port),
        _ => return Err(bad(p, "[host:]port after ';'")),
    };
    let port = properties::parse_int(port_text)
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| bad(p, "a client port in 0..=65535"))?;
    Ok(HostPort { host: host.to_string(), port })
}

/// ZK compat: `ConfigUtils.getHostAndPort`: `[v6]:a:b` keeps the bracketed host whole,
/// anything else splits on `:`. Pieces are trimmed (Java would reject the blanks).
fn host_and_ports(text: &str) -> Option<Vec<&str>> {
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let after = rest[close + 1..].strip_prefix(':')?;
        if after.is_empty() {
            return None;
        }
        let mut pieces = vec![host];
        pieces.extend(after.split(':').map(str::trim));
        return Some(pieces);
    }
    Some(text.split(':').map(str::trim).collect())
}

fn server_port(p: &Property, text: &str) -> Result<u16, ConfigError> {
    properties::parse_int(text)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|&port| port != 0)
        .ok_or_else(|| bad(p, "quorum and election ports in 1..=65535"))
}

/// A value for an error message: control characters escaped, everything else as written.
fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() })
        .collect()
}

fn bad(p: &Property, expected: &'static str) -> ConfigError {
    ConfigError::BadValue { line: p.line, key: p.key.clone(), expected, value: p.value.clone() }
}

fn unsupported(p: &Property, feature: &'static str) -> ConfigError {
    ConfigError::Unsupported { line: p.line, key: p.key.clone(), feature }
}

/// `Integer.parseInt`.
fn java_int(p: &Property) -> Result<i32, ConfigError> {
    properties::parse_int(&p.value).ok_or_else(|| bad(p, "an integer"))
}

/// `Long.parseLong`.
fn java_long(p: &Property) -> Result<i64, ConfigError> {
    properties::parse_long(&p.value).ok_or_else(|| bad(p, "an integer"))
}

/// `Long.decode` (the syntax of `Long.getLong`).
fn decoded_long(p: &Property) -> Result<i64, ConfigError> {
    properties::decode_long(&p.value).ok_or_else(|| bad(p, "an integer"))
}

/// `Integer.decode` (the syntax of `Integer.getInteger`), and at least 1.
fn positive_decoded(p: &Property) -> Result<u32, ConfigError> {
    properties::decode_int(&p.value)
        .and_then(|value| u32::try_from(value).ok())
        .filter(|&value| value > 0)
        .ok_or_else(|| bad(p, "a positive integer"))
}

fn positive_int(p: &Property) -> Result<u32, ConfigError> {
    properties::parse_int(&p.value)
        .and_then(|value| u32::try_from(value).ok())
        .filter(|&value| value > 0)
        .ok_or_else(|| bad(p, "a positive integer"))
}

fn non_negative_int(p: &Property) -> Result<u32, ConfigError> {
    properties::parse_int(&p.value)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or_else(|| bad(p, "a non-negative integer"))
}

/// A session timeout in ms: non-negative, or -1 for the default.
fn timeout(p: &Property) -> Result<i32, ConfigError> {
    properties::parse_int(&p.value)
        .filter(|&ms| ms >= -1)
        .ok_or_else(|| bad(p, "a number of ms (or -1 for the default)"))
}

/// A client port; 0 lets the OS pick one (handy in tests).
fn port(p: &Property) -> Result<u16, ConfigError> {
    properties::parse_int(&p.value)
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| bad(p, "a port in 0..=65535"))
}

/// A host name or IP literal, brackets around IPv6 removed.
fn host(p: &Property) -> Result<String, ConfigError> {
    let value = p.value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(&p.value);
    if value.is_empty() || value.chars().any(|c| c.is_whitespace()) {
        return Err(bad(p, "a host name or IP address"));
    }
    Ok(value.to_string())
}

fn path(p: &Property) -> Result<PathBuf, ConfigError> {
    if p.value.is_empty() {
        return Err(bad(p, "a directory path"));
    }
    Ok(PathBuf::from(&p.value))
}

/// ZK compat: `QuorumPeerConfig.parseBoolean`: `true`/`false`, any case.
fn boolean(p: &Property) -> Result<bool, ConfigError> {
    if p.value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if p.value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(bad(p, "'true' or 'false'"))
    }
}

/// `user:base64(sha1(user:password))`. ZooKeeper compares the string as is; we check its
/// shape so a typo cannot silently lock the super user out.
fn super_digest(p: &Property) -> Result<String, ConfigError> {
    let expected = "user:base64-sha1-digest";
    let (user, digest) = p.value.split_once(':').ok_or_else(|| bad(p, expected))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(digest);
    if user.is_empty() || decoded.map_or(true, |bytes| bytes.len() != 20) {
        return Err(bad(p, expected));
    }
    Ok(p.value.clone())
}

#[cfg(test)]
mod tests;
