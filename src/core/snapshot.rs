//! The snapshot body: the data tree plus the session table, as of one zxid.
//!
//! The storage layer wraps this body in an envelope with a CRC (`storage::snapshot`); this
//! module only defines what is inside. ZK compat: `FileSnap` serializes the session map followed
//! by the `DataTree`; so do we (in our own encoding).
//!
//! Layout (version 1), all integers little-endian and fixed-width — byte for byte what bincode
//! 1.3's `serialize` made of the former `Body { version, zxid, sessions, tree }` struct, which a
//! test keeps true:
//!
//! ```text
//! version      u32      1
//! zxid         u64      the last txn covered
//! sessions     u64 count, then per session: i64 id · i32 timeout (ms) · 16 bytes password
//! tree         u64 length, then the tree image (`DataTree::encode_snapshot`)
//! ```
//!
//! Written by hand and streamed: a [`SnapshotImage`] (taken in O(pages) inside `Node::step`)
//! is encoded by the driver, off the node loop, straight into the file, so neither the node
//! nor memory holds a second copy of the tree.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;

use crate::core::ids::{SessionId, Zxid};
use crate::core::tree::{DataTree, ImageEncoder, TreeImage};

/// Version of the body layout.
const SNAPSHOT_BODY_VERSION: u32 = 1;

/// Bytes of one session record: id, timeout, password.
const SESSION_BYTES: usize = 8 + 4 + 16;

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

/// A session record: id, timeout (ms), password.
pub type SessionRecord = (SessionId, i32, [u8; 16]);

/// The state as of one zxid, frozen and shared: what a snapshot holds before it is encoded.
/// Cheap to take (the tree's pages are shared, see [`DataTree::image`]) and to clone, and
/// encodable on any thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotImage {
    zxid: Zxid,
    sessions: Arc<Vec<SessionRecord>>,
    tree: TreeImage,
}

impl SnapshotImage {
    /// The state of `tree` and `sessions` as of `zxid`.
    pub fn new(zxid: Zxid, tree: &DataTree, sessions: Vec<SessionRecord>) -> SnapshotImage {
        SnapshotImage { zxid, sessions: Arc::new(sessions), tree: tree.image() }
    }

    /// The last txn the image covers.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// The session table of the image.
    pub fn sessions(&self) -> &[SessionRecord] {
        &self.sessions
    }

    /// Number of znodes in the image.
    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// What decoding the image's encoding gives, without the bytes: the tree shares the
    /// image's pages. For a driver that kept the image itself (the simulator's disk).
    pub fn restore(&self) -> Restored {
        Restored {
            zxid: self.zxid,
            sessions: self.sessions.to_vec(),
            tree: DataTree::from_image(&self.tree),
        }
    }

    /// Plans the encoding (one pass over the tree's slots) and gives its exact length.
    pub fn encoder(&self) -> BodyEncoder<'_> {
        BodyEncoder { image: self, tree: self.tree.encoder() }
    }

    /// The encoded body.
    pub fn encode(&self) -> Bytes {
        let encoder = self.encoder();
        let mut out = Vec::with_capacity(encoder.len());
        encoder.write_to(&mut out).expect("writing to a Vec cannot fail");
        Bytes::from(out)
    }
}

/// A body ready to be written, with its exact length.
pub struct BodyEncoder<'a> {
    image: &'a SnapshotImage,
    tree: ImageEncoder<'a>,
}

impl BodyEncoder<'_> {
    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        4 + 8 + 8 + self.image.sessions.len() * SESSION_BYTES + 8 + self.tree.len()
    }

    /// Whether the body is empty (never: it has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Streams the body to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let sessions = &self.image.sessions;
        let mut head = Vec::with_capacity(4 + 8 + 8 + sessions.len() * SESSION_BYTES + 8);
        head.extend_from_slice(&SNAPSHOT_BODY_VERSION.to_le_bytes());
        head.extend_from_slice(&self.image.zxid.0.to_le_bytes());
        head.extend_from_slice(&(sessions.len() as u64).to_le_bytes());
        for (id, timeout_ms, password) in sessions.iter() {
            head.extend_from_slice(&id.0.to_le_bytes());
            head.extend_from_slice(&timeout_ms.to_le_bytes());
            head.extend_from_slice(password);
        }
        head.extend_from_slice(&(self.tree.len() as u64).to_le_bytes());
        out.write_all(&head)?;
        self.tree.write_to(out)
    }
}

/// Encodes the state as of `zxid`.
pub fn encode(zxid: Zxid, tree: &DataTree, sessions: &[SessionRecord]) -> Bytes {
    SnapshotImage::new(zxid, tree, sessions.to_vec()).encode()
}

/// Decodes a body; never panics on damaged input. Bytes after the tree image are ignored.
pub fn decode(bytes: &[u8]) -> Result<Restored, SnapshotError> {
    let mut reader = Reader { bytes };
    let version = u32::from_le_bytes(reader.array("version")?);
    if version != SNAPSHOT_BODY_VERSION {
        return Err(SnapshotError::Version(version));
    }
    let zxid = Zxid(u64::from_le_bytes(reader.array("zxid")?));
    let count = u64::from_le_bytes(reader.array("session count")?);
    if count > (reader.bytes.len() / SESSION_BYTES) as u64 {
        return Err(SnapshotError::Malformed(format!("{count} sessions do not fit the body")));
    }
    let mut sessions = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = SessionId(i64::from_le_bytes(reader.array("session id")?));
        let timeout_ms = i32::from_le_bytes(reader.array("session timeout")?);
        sessions.push((id, timeout_ms, reader.array("session password")?));
    }
    let length = u64::from_le_bytes(reader.array("tree length")?);
    let image = usize::try_from(length)
        .ok()
        .and_then(|length| reader.bytes.get(..length))
        .ok_or_else(|| SnapshotError::Malformed(format!("tree of {length} bytes is cut short")))?;
    let tree = DataTree::decode_snapshot(image).map_err(|e| SnapshotError::Tree(e.to_string()))?;
    Ok(Restored { zxid, sessions, tree })
}

/// A cursor over the body's header.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], SnapshotError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(SnapshotError::Malformed(format!("body ends before the {what}")));
        };
        self.bytes = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::core::ids::Zxid;
    use crate::core::txn::{Txn, TxnOp};
    use crate::wire::types::Acl;

    /// The struct bincode 1.3 used to serialize: the layout is pinned to it.
    #[derive(Serialize)]
    struct BincodeBody {
        version: u32,
        zxid: Zxid,
        sessions: Vec<(SessionId, i32, [u8; 16])>,
        tree: Vec<u8>,
    }

    fn sample() -> (DataTree, Vec<(SessionId, i32, [u8; 16])>) {
        let mut tree = DataTree::new();
        let mut events = Vec::new();
        for (zxid, path) in [(1, "/a"), (2, "/a/b"), (3, "/c")] {
            let op = TxnOp::Create {
                path: path.into(),
                data: Some(Bytes::from_static(b"data")),
                acl: Acl::open_unsafe().into(),
                ephemeral_owner: 0,
            };
            let txn = Txn { zxid: Zxid(zxid), session: SessionId(7), cxid: 1, time_ms: 5, op };
            tree.apply(&txn, &mut events);
        }
        (tree, vec![(SessionId(7), 4_000, [3; 16]), (SessionId(-2), 30_000, [9; 16])])
    }

    #[test]
    fn the_body_is_byte_identical_to_the_bincode_layout() {
        let (tree, sessions) = sample();
        let ours = encode(Zxid(3), &tree, &sessions);
        let theirs = bincode::serialize(&BincodeBody {
            version: SNAPSHOT_BODY_VERSION,
            zxid: Zxid(3),
            sessions: sessions.clone(),
            tree: tree.encode_snapshot(),
        })
        .unwrap();
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn a_body_round_trips() {
        let (tree, sessions) = sample();
        let restored = decode(&encode(Zxid(3), &tree, &sessions)).unwrap();
        assert_eq!(restored.zxid, Zxid(3));
        assert_eq!(restored.sessions, sessions);
        assert_eq!(restored.tree.digest(), tree.digest());
        assert_eq!(restored.tree.children("/a"), Some(vec!["b".to_string()]));
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let (tree, sessions) = sample();
        let body = encode(Zxid(3), &tree, &sessions);
        for cut in 0..body.len() {
            assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_version = body.to_vec();
        wrong_version[0] = 2;
        assert!(matches!(decode(&wrong_version), Err(SnapshotError::Version(2))));
        let mut many_sessions = body.to_vec();
        many_sessions[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&many_sessions), Err(SnapshotError::Malformed(_))));
        let mut flipped = body.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(decode(&flipped), Err(SnapshotError::Tree(_))));
    }
}
