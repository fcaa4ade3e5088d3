//! The data-model records and enumerations of the ZooKeeper client protocol.
//!
//! These are plain values shared by the codec (`wire`), the data tree and request preparation
//! (`core`). Numbers follow `ZooDefs`, `KeeperException.Code`, `CreateMode` and `Watcher` of
//! Apache ZooKeeper 3.9.

use serde::{Deserialize, Serialize};

/// Permission bits of an ACL entry. ZK compat: `ZooDefs.Perms`.
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set ACLs.
    pub const ADMIN: i32 = 16;
    /// Everything.
    pub const ALL: i32 = 31;
}

/// The 68-byte `Stat` record a client sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData (equals czxid initially).
    pub mzxid: i64,
    /// Creation time, ms since the epoch, from the leader's clock.
    pub ctime: i64,
    /// Time of the last setData.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Reported child version: `2 * child creations - numChildren`.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session for session ephemerals, else 0 (also 0 for containers and TTL nodes).
    pub ephemeral_owner: i64,
    /// Length of the data (0 for null data).
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
}

/// An identity: scheme plus scheme-specific id. ZK compat: jute `Id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    /// `world`, `auth`, `digest`, `ip`, `super`, ...
    pub scheme: String,
    /// Scheme-specific id, e.g. `anyone` or `user:base64digest`.
    pub id: String,
}

impl Id {
    /// Builds an id from its parts.
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_string(), id: id.to_string() }
    }
}

/// One ACL entry. ZK compat: jute `ACL`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    /// Bit set of `perms`.
    pub perms: i32,
    /// Who the entry grants to.
    pub id: Id,
}

impl Acl {
    /// `world:anyone` with every permission (ZooKeeper's `OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }]
    }

    /// `world:anyone` read only (`READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }]
    }
}

macro_rules! int_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// The wire value.
            pub fn code(self) -> i32 {
                match self { $($name::$variant => $value,)* }
            }

            /// The variant with this wire value, if any.
            pub fn from_code(code: i32) -> Option<$name> {
                match code { $($value => Some($name::$variant),)* _ => None }
            }
        }
    };
}

int_enum! {
    /// Error codes as ZooKeeper returns them. ZK compat: `KeeperException.Code`.
    ErrorCode {
        /// Success.
        Ok = 0,
        /// Ops of a multi after the failing one.
        RuntimeInconsistency = -2,
        /// Not sent by current servers.
        DataInconsistency = -3,
        /// Undecodable request body, bad watcher type, mixed multi.
        MarshallingError = -5,
        /// Unknown or unsupported opcode; TTL nodes while extended types are off.
        Unimplemented = -6,
        /// Invalid path, create flags, TTL; delete of a built-in node.
        BadArguments = -8,
        /// Session unknown to the tracker.
        UnknownSession = -12,
        /// Node (or parent) does not exist.
        NoNode = -101,
        /// ACL check failed.
        NoAuth = -102,
        /// Version mismatch.
        BadVersion = -103,
        /// Create under a session ephemeral.
        NoChildrenForEphemerals = -108,
        /// Create of an existing path.
        NodeExists = -110,
        /// Delete of a node with children.
        NotEmpty = -111,
        /// Request on an expired or closing session.
        SessionExpired = -112,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// Session owned by another server.
        SessionMoved = -118,
        /// Write sent to a read-only server.
        NotReadOnly = -119,
        /// Ephemeral on a local session.
        EphemeralOnLocalSession = -120,
        /// checkWatches/removeWatches found nothing.
        NoWatcher = -121,
        /// Reconfig disabled.
        ReconfigDisabled = -123,
        /// The server requires authentication (`enforce.auth`) and the connection has none.
        SessionClosedRequireSaslAuth = -124,
        /// Quota exceeded.
        QuotaExceeded = -125,
        /// Request throttled.
        Throttled = -127,
    }
}

int_enum! {
    /// Request opcodes. ZK compat: `ZooDefs.OpCode`.
    OpCode {
        /// Watch notification (never a request).
        Notification = 0,
        /// create
        Create = 1,
        /// delete
        Delete = 2,
        /// exists
        Exists = 3,
        /// getData
        GetData = 4,
        /// setData
        SetData = 5,
        /// getACL
        GetAcl = 6,
        /// setACL
        SetAcl = 7,
        /// getChildren
        GetChildren = 8,
        /// sync
        Sync = 9,
        /// ping
        Ping = 11,
        /// getChildren2
        GetChildren2 = 12,
        /// check (only inside multi)
        Check = 13,
        /// multi
        Multi = 14,
        /// create2
        Create2 = 15,
        /// reconfig
        Reconfig = 16,
        /// checkWatches
        CheckWatches = 17,
        /// removeWatches
        RemoveWatches = 18,
        /// createContainer
        CreateContainer = 19,
        /// deleteContainer (internal)
        DeleteContainer = 20,
        /// createTTL
        CreateTtl = 21,
        /// multiRead
        MultiRead = 22,
        /// auth
        Auth = 100,
        /// setWatches
        SetWatches = 101,
        /// sasl
        Sasl = 102,
        /// getEphemerals
        GetEphemerals = 103,
        /// getAllChildrenNumber
        GetAllChildrenNumber = 104,
        /// setWatches2
        SetWatches2 = 105,
        /// addWatch
        AddWatch = 106,
        /// whoAmI
        WhoAmI = 107,
        /// createSession (internal)
        CreateSession = -10,
        /// closeSession
        CloseSession = -11,
        /// error (txn type / multi result type)
        Error = -1,
    }
}

impl OpCode {
    /// Whether a request of this opcode is a write that request preparation turns into a
    /// txn (an error txn when it fails), known before its body is decoded: create (every
    /// kind), delete, setData, setACL, multi. Not sync (its reply carries no fresh zxid) nor
    /// closeSession (it has no body). The decoded form is `Request::is_write`.
    pub fn is_prepared_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Multi
        )
    }
}

int_enum! {
    /// Watch event types. ZK compat: `Watcher.Event.EventType`.
    EventType {
        /// Client-local state change.
        None = -1,
        /// Node created.
        NodeCreated = 1,
        /// Node deleted.
        NodeDeleted = 2,
        /// Node data changed.
        NodeDataChanged = 3,
        /// Node children changed.
        NodeChildrenChanged = 4,
        /// Client-local.
        DataWatchRemoved = 5,
        /// Client-local.
        ChildWatchRemoved = 6,
        /// Client-local.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Watcher types of checkWatches/removeWatches. ZK compat: `Watcher.WatcherType`.
    WatcherType {
        /// One-shot child watch.
        Children = 1,
        /// One-shot data (or exists) watch.
        Data = 2,
        /// Any watch.
        Any = 3,
        /// Persistent watch.
        Persistent = 4,
        /// Persistent recursive watch.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// addWatch modes. ZK compat: `ZooDefs.AddWatchModes`.
    AddWatchMode {
        /// Persistent watch on one node (data and children).
        Persistent = 0,
        /// Persistent watch on a node and all its descendants (no child events).
        PersistentRecursive = 1,
    }
}

/// The keeper state the server puts in every notification (`SyncConnected`).
pub const KEEPER_STATE_SYNC_CONNECTED: i32 = 3;

int_enum! {
    /// Create modes, from the `flags` of a create request. ZK compat: `CreateMode`.
    CreateMode {
        /// Persistent.
        Persistent = 0,
        /// Ephemeral.
        Ephemeral = 1,
        /// Persistent sequential.
        PersistentSequential = 2,
        /// Ephemeral sequential.
        EphemeralSequential = 3,
        /// Container.
        Container = 4,
        /// Persistent with TTL.
        PersistentWithTtl = 5,
        /// Persistent sequential with TTL.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the node belongs to a session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    /// Whether a sequence suffix is appended.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node is a container.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// Whether the node has a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}
