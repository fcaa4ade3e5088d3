//! The values the core needs from the server configuration (no file or environment access).

use crate::core::ids::ServerId;
use crate::core::zab::Membership;

/// Configuration of one node, derived by the runtime from `zoo.cfg` and `myid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This server's id (`myid`; 0 in a standalone server without one, as ZooKeeper does).
    pub server_id: ServerId,
    /// Base time unit in ms.
    pub tick_time_ms: u32,
    /// Lowest session timeout a client can negotiate (ms).
    pub session_timeout_min_ms: i32,
    /// Highest session timeout a client can negotiate (ms).
    pub session_timeout_max_ms: i32,
    /// Txns between snapshots.
    pub snap_count: u64,
    /// `jute.maxbuffer`: the largest frame accepted from a client.
    pub frame_max_bytes: usize,
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `user:base64digest` of the super user.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL`: no ACL checks at all.
    pub skip_acl: bool,
    /// `znode.container.checkIntervalMs`: how often containers and TTL nodes are reaped.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxNeverUsedIntervalMs`: reap never-used containers after this (0 = never).
    pub container_never_used_ms: u64,
    /// `zookeeper.nio.sessionlessCnxnTimeout`: a connection without a handshake is closed after this.
    pub handshake_timeout_ms: u64,
    /// `globalOutstandingLimit`: requests in flight before the node pushes back.
    pub outstanding_max: usize,
    /// Seed of the node's RNG (session passwords). The runtime draws it from the OS.
    pub rng_seed: u64,
    /// The ensemble (`server.N` lines). Empty, or only this server: standalone.
    pub membership: Membership,
    /// `reconfigEnabled`: dynamic reconfiguration allowed (Ensemble answers it `Unimplemented`).
    pub reconfig_enabled: bool,
    /// Deliberate bugs switched on (only with the `canary` feature; see `core::canary`).
    pub canaries: crate::core::canary::Canaries,
    /// The counter a new leader's zxids start from (0). The simulator raises it to reach the
    /// counter roll-over quickly.
    pub zxid_counter_start: u32,
    /// `initLimit`: ticks a learner may take to connect to and sync with its leader.
    pub init_limit: u32,
    /// `syncLimit`: ticks a member may go without hearing from its leader / its quorum.
    pub sync_limit: u32,
    /// SASL users, optional auth providers, super users and `enforce.auth`.
    pub auth: crate::core::auth::AuthConfig,
}

impl NodeConfig {
    /// Whether this server runs alone (no other member in the configuration).
    pub fn is_standalone(&self) -> bool {
        self.membership.members.keys().all(|id| *id == self.server_id)
    }

    /// ZooKeeper's defaults for a standalone server with `tickTime=2000`.
    pub fn standalone() -> NodeConfig {
        let tick_time_ms = 2000;
        NodeConfig {
            server_id: ServerId(0),
            tick_time_ms,
            session_timeout_min_ms: 2 * tick_time_ms as i32,
            session_timeout_max_ms: 20 * tick_time_ms as i32,
            snap_count: 100_000,
            frame_max_bytes: 0xFFFFF,
            extended_types: false,
            super_digest: None,
            skip_acl: false,
            container_check_interval_ms: 60_000,
            container_never_used_ms: 0,
            handshake_timeout_ms: 10_000,
            outstanding_max: 1000,
            rng_seed: 0,
            membership: Membership::default(),
            reconfig_enabled: false,
            canaries: crate::core::canary::Canaries::NONE,
            zxid_counter_start: 0,
            init_limit: 10,
            sync_limit: 5,
            auth: Default::default(),
        }
    }
}
