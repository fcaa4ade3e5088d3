//! The snapshot body: the data tree plus the session table, as of one zxid.
//!
//! The storage layer wraps this body in an envelope with a CRC (`storage::snapshot`); this
//! module only defines what is inside. ZK compat: `FileSnap` serializes the session map followed
//! by the `DataTree`; so do we (in our own encoding).

use bincode::Options as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::ids::{SessionId, Zxid};
use crate::core::tree::DataTree;

/// Version of the body layout.
const SNAPSHOT_BODY_VERSION: u32 = 1;

/// A decoded snapshot body.
pub struct Restored {
    /// The last txn it covers.
    pub zxid: Zxid,
    /// Sessions: id, timeout, password.
    pub sessions: Vec<(SessionId, i32, [u8; 16])>,
    /// The tree.
    pub tree: DataTree,
}

/// Why a snapshot body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The header or session table does not decode.
    #[error("malformed snapshot body: {0}")]
    Malformed(String),
    /// A layout this build does not know.
    #[error("unsupported snapshot body version {0}")]
    Version(u32),
    /// The tree part does not decode.
    #[error("tree: {0}")]
    Tree(String),
}

#[derive(Serialize, Deserialize)]
struct Body {
    version: u32,
    zxid: Zxid,
    sessions: Vec<(SessionId, i32, [u8; 16])>,
    tree: Vec<u8>,
}

/// Encodes the state as of `zxid`.
pub fn encode(zxid: Zxid, tree: &DataTree, sessions: &[(SessionId, i32, [u8; 16])]) -> Bytes {
    let body = Body {
        version: SNAPSHOT_BODY_VERSION,
        zxid,
        sessions: sessions.to_vec(),
        tree: tree.encode_snapshot(),
    };
    Bytes::from(bincode::serialize(&body).expect("in-memory serialization cannot fail"))
}

/// Decodes a body; never panics on damaged input.
pub fn decode(bytes: &[u8]) -> Result<Restored, SnapshotError> {
    let body: Body = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(bytes.len() as u64 + 1024)
        .deserialize(bytes)
        .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
    if body.version != SNAPSHOT_BODY_VERSION {
        return Err(SnapshotError::Version(body.version));
    }
    let tree =
        DataTree::decode_snapshot(&body.tree).map_err(|e| SnapshotError::Tree(e.to_string()))?;
    Ok(Restored { zxid: body.zxid, sessions: body.sessions, tree })
}
