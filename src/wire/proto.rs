//! Typed client requests and responses (the records of `zookeeper.jute`), as the core uses them.
//! Their encoding and decoding live in `wire::codec`.

use bytes::Bytes;

use crate::wire::types::{Acl, Stat};

/// The first frame of a connection. ZK compat: jute `ConnectRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Clients send 0; not checked.
    pub protocol_version: i32,
    /// The highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session password (16 zero bytes for a new session).
    pub password: Bytes,
    /// The trailing read-only flag, if the client sent one.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// What a client sends to open a new session with this timeout: no session, an all-zero
    /// password, nothing seen yet, and the read-only flag present and off.
    pub fn new_session(timeout_ms: i32) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            password: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        }
    }
}

/// The first frame the server sends. ZK compat: jute `ConnectResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout; 0 means the session is invalid or expired.
    pub timeout_ms: i32,
    /// Session id; 0 when invalid.
    pub session_id: i64,
    /// 16-byte password; zeros when invalid.
    pub password: Bytes,
    /// Present iff the request carried the read-only flag.
    pub read_only: Option<bool>,
}

/// `RequestHeader`: the first 8 bytes of every request after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    /// Client-chosen id, echoed in the reply (special: -2 ping, -4 auth, -8 setWatches).
    pub xid: i32,
    /// The opcode (`OpCode` value; may be unknown).
    pub opcode: i32,
}

/// `ReplyHeader`: the first 16 bytes of every server frame after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    /// Echoed request xid (-1 notification, -2 ping).
    pub xid: i32,
    /// The server's last applied zxid (the write's zxid for writes).
    pub zxid: i64,
    /// Error code, 0 on success.
    pub err: i32,
}

/// `CreateRequest` / `CreateTTLRequest` with the opcode it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// Requested path (before any sequence suffix).
    pub path: String,
    /// Data (`None` = null buffer).
    pub data: Option<Bytes>,
    /// Requested ACL.
    pub acl: Vec<Acl>,
    /// Raw `CreateMode` flags (validated by the core, not the codec).
    pub flags: i32,
    /// TTL in ms; `None` unless the opcode was createTTL.
    pub ttl: Option<i64>,
}

/// Which flavour of create a request was (decides the response record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateKind {
    /// op 1: `CreateResponse`.
    Create,
    /// op 15: `Create2Response`.
    Create2,
    /// op 19: `Create2Response`.
    Container,
    /// op 21: `Create2Response`.
    Ttl,
}

/// One operation of a write multi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiOp {
    /// create / create2 / createContainer / createTTL.
    Create(CreateKind, CreateRequest),
    /// delete.
    Delete {
        /// Path.
        path: String,
        /// Expected version, -1 = any.
        version: i32,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// Data.
        data: Option<Bytes>,
        /// Expected version, -1 = any.
        version: i32,
    },
    /// check.
    Check {
        /// Path.
        path: String,
        /// Expected version, -1 = any.
        version: i32,
    },
}

/// One operation of a multiRead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOp {
    /// getChildren (watch flag ignored).
    GetChildren {
        /// Path.
        path: String,
    },
    /// getData (watch flag ignored).
    GetData {
        /// Path.
        path: String,
    },
}

/// The lists of a `SetWatches` / `SetWatches2` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetWatches {
    /// The client's last seen zxid.
    pub relative_zxid: i64,
    /// getData watches.
    pub data: Vec<String>,
    /// exists watches.
    pub exist: Vec<String>,
    /// getChildren watches.
    pub child: Vec<String>,
    /// Persistent watches (setWatches2 only).
    pub persistent: Vec<String>,
    /// Persistent recursive watches (setWatches2 only).
    pub persistent_recursive: Vec<String>,
}

/// A decoded client request (everything after the `RequestHeader`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// create, create2, createContainer, createTTL.
    Create(CreateKind, CreateRequest),
    /// delete.
    Delete {
        /// Path.
        path: String,
        /// Expected version, -1 = any.
        version: i32,
    },
    /// exists.
    Exists {
        /// Path.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// getData.
    GetData {
        /// Path.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// Data.
        data: Option<Bytes>,
        /// Expected version, -1 = any.
        version: i32,
    },
    /// getACL.
    GetAcl {
        /// Path.
        path: String,
    },
    /// setACL.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected aversion, -1 = any.
        version: i32,
    },
    /// getChildren (op 8) or getChildren2 (op 12, `with_stat`).
    GetChildren {
        /// Path.
        path: String,
        /// Leave a child watch.
        watch: bool,
        /// getChildren2: reply carries the parent's Stat.
        with_stat: bool,
    },
    /// sync.
    Sync {
        /// Path (echoed, not validated).
        path: String,
    },
    /// ping (xid -2).
    Ping,
    /// check outside a multi (answered with Unimplemented).
    Check {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// multi.
    Multi(Vec<MultiOp>),
    /// multiRead.
    MultiRead(Vec<ReadOp>),
    /// auth (xid -4).
    Auth {
        /// Always 0.
        auth_type: i32,
        /// `digest`, `ip`, ...
        scheme: String,
        /// Scheme-specific credentials.
        auth: Bytes,
    },
    /// setWatches (op 101) or setWatches2 (op 105).
    SetWatches(SetWatches),
    /// addWatch.
    AddWatch {
        /// Path (need not exist).
        path: String,
        /// Raw `AddWatchMode`.
        mode: i32,
    },
    /// checkWatches (op 17) or removeWatches (op 18, `remove`).
    CheckWatches {
        /// Path.
        path: String,
        /// Raw `WatcherType`.
        watcher_type: i32,
        /// removeWatches rather than checkWatches.
        remove: bool,
    },
    /// getEphemerals.
    GetEphemerals {
        /// Plain string prefix.
        prefix: String,
    },
    /// getAllChildrenNumber.
    GetAllChildrenNumber {
        /// Path.
        path: String,
    },
    /// whoAmI.
    WhoAmI,
    /// closeSession.
    CloseSession,
    /// sasl (op 102): `GetSASLRequest`, one token of the SASL exchange.
    Sasl {
        /// The client's token (empty when the client sent a null buffer).
        token: Bytes,
    },
}

impl Request {
    /// Whether the request changes the tree or the sessions: create, delete, setData, setACL,
    /// multi, closeSession. Each becomes a txn (an error txn when it fails), in zxid order.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(..)
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Multi(_)
                | Request::CloseSession
        )
    }

    /// Whether a server must send the request through the leader, in order with the writes:
    /// every write, and `sync`.
    pub fn is_ordered(&self) -> bool {
        self.is_write() || matches!(self, Request::Sync { .. })
    }
}

/// One result of a multi or multiRead. ZK compat: `OpResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// type 1: `CreateResponse`.
    Create {
        /// Actual path.
        path: String,
    },
    /// type 15: `Create2Response`.
    Create2 {
        /// Actual path.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// type 2.
    Delete,
    /// type 5: `SetDataResponse`.
    SetData {
        /// Stat after the update.
        stat: Stat,
    },
    /// type 13.
    Check,
    /// type 4 (multiRead): `GetDataResponse`.
    GetData {
        /// Data.
        data: Option<Bytes>,
        /// Stat.
        stat: Stat,
    },
    /// type 8 (multiRead): `GetChildrenResponse`.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// type -1: `ErrorResponse`.
    Error {
        /// The code.
        err: i32,
    },
}

/// A success response body (errors are a bare `ReplyHeader`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// No body (delete, setWatches, ping, auth, sync-free ops, removeWatches, closeSession).
    Empty,
    /// `CreateResponse`.
    Create {
        /// Actual path.
        path: String,
    },
    /// `Create2Response`.
    Create2 {
        /// Actual path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// `ExistsResponse` / `SetDataResponse` / `SetACLResponse`: a bare Stat.
    Stat(Stat),
    /// `GetDataResponse`.
    GetData {
        /// Data.
        data: Option<Bytes>,
        /// Stat.
        stat: Stat,
    },
    /// `GetACLResponse`.
    GetAcl {
        /// ACL.
        acl: Vec<Acl>,
        /// Stat.
        stat: Stat,
    },
    /// `GetChildrenResponse`.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// `GetChildren2Response`.
    GetChildren2 {
        /// Child names.
        children: Vec<String>,
        /// The parent's Stat.
        stat: Stat,
    },
    /// `SyncResponse`.
    Sync {
        /// Echoed path.
        path: String,
    },
    /// `MultiResponse` (multi and multiRead).
    Multi(Vec<OpResult>),
    /// `ErrorResponse{0}` (addWatch success).
    ErrorBody {
        /// The code (0).
        err: i32,
    },
    /// `GetEphemeralsResponse`.
    Ephemerals(Vec<String>),
    /// `GetAllChildrenNumberResponse`.
    AllChildrenNumber(i32),
    /// `WhoAmIResponse`: (scheme, user) pairs.
    WhoAmI(Vec<(String, String)>),
    /// `SetSASLResponse`: the server's next token (null when there is none).
    Sasl {
        /// The token.
        token: Option<Bytes>,
    },
}

/// A watch notification. ZK compat: jute `WatcherEvent` (state is always SyncConnected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherEvent {
    /// `EventType` value.
    pub event_type: i32,
    /// `KeeperState` value (3).
    pub state: i32,
    /// Full server-side path.
    pub path: String,
}
