//! The snapshot image of a data tree: encoding, and decoding that accepts only a consistent tree.
//!
//! ZK compat: the role of `DataTree.serialize`/`deserialize` (ACL table first, then nodes parent
//! before child, ended by a marker), in our own format. `storage` wraps these bytes in a file
//! with its own header and CRC; this layer still validates everything, because a decoder is
//! the last line against a damaged or hostile image.
//!
//! Layout, all integers little-endian, strings and buffers length-prefixed:
//!
//! ```text
//! magic        8 bytes  "ENSNAP\0\x01" (format version 1)
//! zxid         u64      zxid_applied
//! acl lists    u32 count, then per list: u32 entries, then per entry: i32 perms, str, str
//! nodes        u64 count, then per node in pre-order with children sorted by name:
//!              str path · i32 data length (-1 = null) + bytes · u32 acl list index ·
//!              i64 czxid, mzxid, ctime, mtime · i32 version, cversion, aversion ·
//!              i64 ephemeralOwner, pzxid · u32 numChildren
//! digest       u64      DataTree::digest of the encoded tree
//! checksum     u32      CRC-32C of every byte before it
//! ```
//!
//! ACL lists are numbered in order of first use, so equal trees encode to equal bytes. Decoding
//! checks, and rejects with a [`SnapshotError`] (never a panic): the checksum (so any damage to
//! the bytes is caught even where the tree would still look consistent), the magic, every length against
//! the bytes left, UTF-8, that the first node is `/`, that every other path is valid, new, and
//! under an existing parent that is not a session ephemeral, every ACL index, every numChildren,
//! the built-in nodes (present and persistent), no trailing bytes, and finally the digest.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use super::node::{FixedState, Znode};
use super::path::{name, parent, validate_path, CONFIG, QUOTA, ROOT, ZOOKEEPER};
use super::{DataTree, StatPersisted};
use crate::core::ids::Zxid;
use crate::core::txn::NodeKind;
use crate::wire::types::{Acl, Id};

/// Why a snapshot image was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The image does not start with the format's magic.
    #[error("not an ensemble snapshot (bad magic)")]
    BadMagic,
    /// The image ends in the middle of a field.
    #[error("snapshot truncated at byte {at}")]
    Truncated {
        /// Offset of the field that did not fit.
        at: usize,
    },
    /// A count or length larger than the bytes left could hold.
    #[error("implausible length {length} at byte {at}")]
    BadLength {
        /// Offset of the length.
        at: usize,
        /// The value read.
        length: u64,
    },
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 at byte {at}")]
    BadUtf8 {
        /// Offset of the string.
        at: usize,
    },
    /// The first node is not the root.
    #[error("first node is {path:?}, not /")]
    FirstNotRoot {
        /// The path found.
        path: String,
    },
    /// A path that PathUtils rejects.
    #[error("invalid path {path:?}")]
    InvalidPath {
        /// The path.
        path: String,
    },
    /// The same path twice.
    #[error("duplicate node {path}")]
    DuplicatePath {
        /// The path.
        path: String,
    },
    /// A node before its parent, or without one.
    #[error("node {path} has no parent in the snapshot")]
    MissingParent {
        /// The path.
        path: String,
    },
    /// A child of a session ephemeral.
    #[error("node {path} is a child of a session ephemeral")]
    ChildOfEphemeral {
        /// The path.
        path: String,
    },
    /// An ACL index past the ACL table.
    #[error("node {path} uses ACL list {index}, the table has {lists}")]
    AclIndexOutOfRange {
        /// The path.
        path: String,
        /// The index read.
        index: u32,
        /// Lists in the table.
        lists: usize,
    },
    /// A node's recorded child count differs from the children found.
    #[error("node {path} records {recorded} children, has {found}")]
    ChildCountMismatch {
        /// The path.
        path: String,
        /// Count in the image.
        recorded: u32,
        /// Children that followed.
        found: i32,
    },
    /// A built-in node is missing or not persistent.
    #[error("built-in node {path} missing or not persistent")]
    BadBuiltin {
        /// The path.
        path: &'static str,
    },
    /// The CRC-32C at the end does not match the bytes.
    #[error("checksum mismatch: recorded {recorded:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// CRC in the image.
        recorded: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Bytes after the digest.
    #[error("{extra} bytes after the end of the snapshot")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The decoded tree does not hash to the recorded digest.
    #[error("digest mismatch: recorded {recorded:#018x}, computed {computed:#018x}")]
    DigestMismatch {
        /// Digest in the image.
        recorded: u64,
        /// Digest of the decoded tree.
        computed: u64,
    },
}

impl DataTree {
    /// The snapshot image of this tree (see the module docs for the format). Deterministic:
    /// equal trees give equal bytes.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_snapshot_into(&mut out);
        out
    }

    /// Appends the snapshot image of this tree to `out` (so a caller can wrap it without
    /// copying it), and returns its length.
    ///
    /// One pre-order walk collects the nodes with their paths (one path buffer, one hash lookup
    /// per node); the ACL lists are numbered in order of first use, looked up by the shared
    /// `Arc` first (equal lists are interned, so a content comparison is needed once per list);
    /// then the image is sized and written into `out` in one go.
    pub fn encode_snapshot_into(&self, out: &mut Vec<u8>) -> usize {
        let mut walk = Preorder::with_capacity(self.nodes.len());
        self.preorder_into(&mut walk);

        let mut acl_lists: Vec<&[Acl]> = Vec::new();
        let mut by_arc: Vec<(*const Acl, u32)> = Vec::new();
        let mut by_content: HashMap<&[Acl], u32, FixedState> = HashMap::default();
        let mut acl_of = Vec::with_capacity(walk.nodes.len());
        let mut size = MAGIC.len() + 8 + 4 + 8 + 8 + 4 + walk.paths.len();
        for (_, _, node) in &walk.nodes {
            let arc = node.acl.as_ptr();
            let index = match by_arc.iter().find(|(seen, _)| *seen == arc) {
                Some(&(_, index)) => index,
                None => {
                    let index = *by_content.entry(&node.acl).or_insert_with(|| {
                        acl_lists.push(&node.acl);
                        u32::try_from(acl_lists.len() - 1).expect("fewer ACL lists than nodes")
                    });
                    by_arc.push((arc, index));
                    index
                }
            };
            acl_of.push(index);
            size += NODE_MIN_BYTES + node.data.as_ref().map_or(0, Bytes::len);
        }
        for list in &acl_lists {
            let entry_len = |e: &Acl| ACL_ENTRY_MIN_BYTES + e.id.scheme.len() + e.id.id.len();
            size += 4 + list.iter().map(entry_len).sum::<usize>();
        }

        let start = out.len();
        out.reserve(size);
        out.extend_from_slice(MAGIC);
        put_u64(out, self.zxid_applied.0);
        put_u32(out, count_u32(acl_lists.len()));
        for list in &acl_lists {
            put_u32(out, count_u32(list.len()));
            for entry in list.iter() {
                out.extend_from_slice(&entry.perms.to_le_bytes());
                put_str(out, &entry.id.scheme);
                put_str(out, &entry.id.id);
            }
        }
        put_u64(out, walk.nodes.len() as u64);
        for (&(from, to, node), acl_index) in walk.nodes.iter().zip(acl_of) {
            write_node(out, &walk.paths[from..to], node, acl_index);
        }
        put_u64(out, self.digest);
        let checksum = crc32c::crc32c(&out[start..]);
        put_u32(out, checksum);
        debug_assert_eq!(out.len() - start, size, "sizing pass agrees with the writing pass");
        out.len() - start
    }

    /// Collects every node parent first, children in name order, with its path.
    fn preorder_into<'a>(&'a self, walk: &mut Preorder<'a>) {
        let root = &self.nodes[ROOT];
        let mut path = String::from(ROOT);
        walk.push(&path, root);
        // Per level: the children still to visit, and the length of their parent's path.
        let mut stack: Vec<(ChildNames<'a>, usize)> = vec![(root.child_names(), path.len())];
        while let Some((children, parent_len)) = stack.last_mut() {
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let parent_len = *parent_len;
            path.truncate(parent_len);
            if parent_len > ROOT.len() {
                path.push('/');
            }
            path.push_str(child);
            let node = &self.nodes[path.as_str()];
            walk.push(&path, node);
            if !node.is_leaf() {
                stack.push((node.child_names(), path.len()));
            }
        }
        debug_assert_eq!(walk.nodes.len(), self.nodes.len(), "every node is reachable from /");
    }

    /// Rebuilds a tree from a snapshot image, or says why the image is not a consistent tree.
    /// The ephemeral, container and TTL indexes, sizes and digest are recomputed.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        let Some(body_len) = bytes.len().checked_sub(4) else {
            return Err(SnapshotError::Truncated { at: 0 });
        };
        let (bytes, checksum) = bytes.split_at(body_len);
        let recorded = u32::from_le_bytes(checksum.try_into().expect("split 4 bytes off"));
        let computed = crc32c::crc32c(bytes);
        if recorded != computed {
            return Err(SnapshotError::ChecksumMismatch { recorded, computed });
        }
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut tree = DataTree::empty();
        tree.zxid_applied = Zxid(reader.u64()?);
        let acl_lists = read_acl_lists(&mut reader, &mut tree)?;
        let at = reader.at;
        let node_count = reader.u64()?;
        let node_count = reader.plausible(at, node_count, NODE_MIN_BYTES)?;
        let mut recorded_children = Vec::with_capacity(node_count);
        for position in 0..node_count {
            let (path, node, recorded) = read_node(&mut reader, &acl_lists)?;
            if position == 0 && path != ROOT {
                return Err(SnapshotError::FirstNotRoot { path });
            }
            if position > 0 {
                attach_to_parent(&mut tree, &path)?;
            }
            tree.insert_node(&path, node);
            recorded_children.push((path, recorded));
        }
        let recorded_digest = reader.u64()?;
        if reader.at != bytes.len() {
            return Err(SnapshotError::TrailingBytes { extra: bytes.len() - reader.at });
        }
        for (path, recorded) in recorded_children {
            let found = tree.nodes[path.as_str()].num_children();
            if i64::from(recorded) != i64::from(found) {
                return Err(SnapshotError::ChildCountMismatch { path, recorded, found });
            }
        }
        for builtin in [ROOT, ZOOKEEPER, QUOTA, CONFIG] {
            let persistent = tree.nodes.get(builtin).is_some_and(|node| {
                NodeKind::from_owner(node.stat.ephemeral_owner) == NodeKind::Persistent
            });
            if !persistent {
                return Err(SnapshotError::BadBuiltin { path: builtin });
            }
        }
        if tree.digest != recorded_digest {
            return Err(SnapshotError::DigestMismatch {
                recorded: recorded_digest,
                computed: tree.digest,
            });
        }
        Ok(tree)
    }
}

/// The nodes of a pre-order walk, with their paths side by side in one string.
struct Preorder<'a> {
    paths: String,
    /// Per node: where its path starts and ends in `paths`, and the node.
    nodes: Vec<(usize, usize, &'a Znode)>,
}

/// A node's child names in order.
type ChildNames<'a> = std::collections::btree_set::Iter<'a, Box<str>>;

impl<'a> Preorder<'a> {
    fn with_capacity(nodes: usize) -> Preorder<'a> {
        Preorder { paths: String::with_capacity(nodes * 24), nodes: Vec::with_capacity(nodes) }
    }

    fn push(&mut self, path: &str, node: &'a Znode) {
        let start = self.paths.len();
        self.paths.push_str(path);
        self.nodes.push((start, self.paths.len(), node));
    }
}

/// The format's first eight bytes.
const MAGIC: &[u8; 8] = b"ENSNAP\0\x01";

/// The smallest node record: empty path, empty data, ACL index, stat, child count.
const NODE_MIN_BYTES: usize = 4 + 4 + 4 + 6 * 8 + 3 * 4 + 4;

/// The smallest ACL entry: perms and two empty strings.
const ACL_ENTRY_MIN_BYTES: usize = 4 + 4 + 4;

/// Bytes of a node record after its path and data: ACL index, stat, child count.
const NODE_FIXED_BYTES: usize = 4 + 4 * 8 + 3 * 4 + 2 * 8 + 4;

fn write_node(out: &mut Vec<u8>, path: &str, node: &Znode, acl_index: u32) {
    put_str(out, path);
    match &node.data {
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        Some(data) => {
            put_u32(out, count_u32(data.len()));
            out.extend_from_slice(data);
        }
    }
    // The fixed-size rest is assembled on the stack and appended at once: per-field appends
    // cost a capacity check and a copy call each, several times the work of the bytes.
    let stat = &node.stat;
    let mut fixed = [0u8; NODE_FIXED_BYTES];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        fixed[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&acl_index.to_le_bytes());
    for value in [stat.czxid, stat.mzxid, stat.ctime, stat.mtime] {
        put(&value.to_le_bytes());
    }
    for value in [stat.version, stat.cversion, stat.aversion] {
        put(&value.to_le_bytes());
    }
    for value in [stat.ephemeral_owner, stat.pzxid] {
        put(&value.to_le_bytes());
    }
    put(&node.num_children().unsigned_abs().to_le_bytes());
    debug_assert_eq!(at, NODE_FIXED_BYTES);
    out.extend_from_slice(&fixed);
}

fn read_acl_lists(
    reader: &mut Reader<'_>,
    tree: &mut DataTree,
) -> Result<Vec<Arc<[Acl]>>, SnapshotError> {
    let at = reader.at;
    let list_count = reader.u32()?;
    let list_count = reader.plausible(at, list_count.into(), 4)?;
    let mut lists = Vec::with_capacity(list_count);
    for _ in 0..list_count {
        let at = reader.at;
        let entry_count = reader.u32()?;
        let entry_count = reader.plausible(at, entry_count.into(), ACL_ENTRY_MIN_BYTES)?;
        let mut list = Vec::with_capacity(entry_count);
        for _ in 0..entry_count {
            let perms = reader.i32()?;
            let scheme = reader.string()?;
            let id = reader.string()?;
            list.push(Acl { perms, id: Id { scheme, id } });
        }
        lists.push(tree.acl_cache.intern(&list));
    }
    Ok(lists)
}

fn read_node(
    reader: &mut Reader<'_>,
    acl_lists: &[Arc<[Acl]>],
) -> Result<(String, Znode, u32), SnapshotError> {
    let path = reader.string()?;
    let data = match reader.i32()? {
        -1 => None,
        length => {
            let length = reader.length(i64::from(length))?;
            Some(match length {
                0 => Bytes::new(),
                _ => Bytes::copy_from_slice(reader.take(length)?),
            })
        }
    };
    let index = reader.u32()?;
    let Some(acl) = acl_lists.get(index as usize) else {
        return Err(SnapshotError::AclIndexOutOfRange { path, index, lists: acl_lists.len() });
    };
    let stat = StatPersisted {
        czxid: reader.i64()?,
        mzxid: reader.i64()?,
        ctime: reader.i64()?,
        mtime: reader.i64()?,
        version: reader.i32()?,
        cversion: reader.i32()?,
        aversion: reader.i32()?,
        ephemeral_owner: reader.i64()?,
        pzxid: reader.i64()?,
    };
    let recorded_children = reader.u32()?;
    let node = Znode { stat, data, acl: Arc::clone(acl), children: None };
    Ok((path, node, recorded_children))
}

/// Checks a non-root node's path and parent, and lists it in the parent.
fn attach_to_parent(tree: &mut DataTree, path: &str) -> Result<(), SnapshotError> {
    if validate_path(path).is_err() || path == ROOT {
        return Err(SnapshotError::InvalidPath { path: path.to_string() });
    }
    if tree.nodes.contains_key(path) {
        return Err(SnapshotError::DuplicatePath { path: path.to_string() });
    }
    let Some(up) = tree.nodes.get_mut(parent(path)) else {
        return Err(SnapshotError::MissingParent { path: path.to_string() });
    };
    if let NodeKind::Ephemeral(_) = NodeKind::from_owner(up.stat.ephemeral_owner) {
        return Err(SnapshotError::ChildOfEphemeral { path: path.to_string() });
    }
    // The parent's digest term does not cover its children, so no digest update is needed.
    up.add_child(name(path));
    Ok(())
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_u32(out, count_u32(value.len()));
    out.extend_from_slice(value.as_bytes());
}

/// Lengths in the image are u32: no znode, path or ACL list comes near 4 GiB (a client frame is
/// at most `jute.maxbuffer`, about 1 MiB).
fn count_u32(len: usize) -> u32 {
    u32::try_from(len).expect("lengths in a tree fit in u32 (jute.maxbuffer bounds them)")
}

/// A cursor over the image. Every read checks the bytes left first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(length).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(SnapshotError::Truncated { at: self.at })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.array().map(i32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        self.array().map(i64::from_le_bytes)
    }

    /// A byte length that must fit in what is left.
    fn length(&mut self, length: i64) -> Result<usize, SnapshotError> {
        let at = self.at.saturating_sub(4);
        let left = self.bytes.len() - self.at;
        match usize::try_from(length) {
            Ok(length) if length <= left => Ok(length),
            _ => Err(SnapshotError::BadLength { at, length: length as u64 }),
        }
    }

    /// A count read at `at` of records of at least `record_min` bytes each, checked against the
    /// bytes left so that no allocation sized by it can exceed the image.
    fn plausible(&self, at: usize, count: u64, record_min: usize) -> Result<usize, SnapshotError> {
        let left = (self.bytes.len() - self.at) as u64;
        match usize::try_from(count) {
            Ok(fits) if count <= left / record_min as u64 => Ok(fits),
            _ => Err(SnapshotError::BadLength { at, length: count }),
        }
    }

    fn string(&mut self) -> Result<String, SnapshotError> {
        let length = self.u32()?;
        let at = self.at;
        let length = self.length(i64::from(length))?;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SnapshotError::BadUtf8 { at })
    }
}
