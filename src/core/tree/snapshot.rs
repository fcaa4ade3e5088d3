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
//! magic        8 bytes  "ENSNAP\0\x02" (format version 2; version 1 is still read)
//! zxid         u64      zxid_applied
//! acl lists    u32 count, then per list: u32 entries, then per entry: i32 perms, str, str
//! nodes        u64 count, then per node, the root first, in slot order:
//!              str path · i32 data length (-1 = null) + bytes · u32 acl list index ·
//!              i64 czxid, mzxid, ctime, mtime · i32 version, cversion, aversion ·
//!              i64 ephemeralOwner, pzxid · u32 numChildren (0 in version 2: not checked)
//! digest       u64      DataTree::digest of the encoded tree
//! checksum     u32      CRC-32C of every byte before it
//! ```
//!
//! Version 1 listed the nodes in pre-order with children sorted by name, which needs the child
//! sets at encoding time; version 2 lists them in slot order, which a frozen [`TreeImage`] has
//! without any sorting, so a snapshot can be encoded off the node loop from shared pages. Slot
//! order is a function of the txns applied, and ACL lists are numbered in order of first use,
//! so replicas that applied the same txns encode the same bytes. Decoding checks, and rejects
//! with a [`SnapshotError`] (never a panic): the checksum (so any damage to the bytes is caught
//! even where the tree would still look consistent), the magic, every length against the bytes
//! left, UTF-8, that the first node is `/`, that every other path is valid, new, and under an
//! existing parent that is not a session ephemeral (version 1: parents first), every ACL index,
//! version 1's child counts, the built-in nodes (present and persistent), no trailing bytes,
//! and finally the digest.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use thiserror::Error;

use super::node::{digest_term, len_i32, AclTable};
use super::path::{parent, validate_path, CONFIG, QUOTA, ROOT, ZOOKEEPER};
use super::store::{live_nodes, Page, Store};
use super::{path_len, DataTree, StatPersisted};
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

/// A frozen, shared image of a tree: what a snapshot encodes. Taking one is O(pages) (see
/// [`DataTree::image`]); encoding it can happen anywhere, on any thread, while the tree goes
/// on changing.
#[derive(Clone)]
pub struct TreeImage {
    pages: Arc<Vec<Arc<Page>>>,
    /// The tree's ACL table by number, as it was.
    acls: Arc<Vec<Arc<[Acl]>>>,
    nodes: usize,
    zxid: Zxid,
    digest: u64,
}

impl TreeImage {
    pub(super) fn new(
        pages: Vec<Arc<Page>>,
        acls: Vec<Arc<[Acl]>>,
        nodes: usize,
        zxid: Zxid,
        digest: u64,
    ) -> Self {
        TreeImage { pages: Arc::new(pages), acls: Arc::new(acls), nodes, zxid, digest }
    }

    /// Number of nodes, root included.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// The tree digest of the image.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Plans the encoding: numbers the ACL lists in order of first use and sizes the image.
    /// One pass over the slots that reads no path or data.
    pub fn encoder(&self) -> ImageEncoder<'_> {
        let mut acl_lists: Vec<&[Acl]> = Vec::new();
        // The image's list number for each table number (NO_LIST: not used yet).
        let mut by_number = vec![NO_LIST; self.acls.len()];
        let mut size = MAGIC_V2.len() + 8 + 4 + 8 + 8 + 4;
        for (_, node) in live_nodes(&self.pages) {
            let number = node.slot.acl as usize;
            if by_number[number] == NO_LIST {
                acl_lists.push(&self.acls[number]);
                by_number[number] =
                    u32::try_from(acl_lists.len() - 1).expect("fewer ACL lists than nodes");
            }
            size += NODE_MIN_BYTES + node.path().len() + node.slot.data_len();
        }
        for list in &acl_lists {
            let entry_len = |e: &Acl| ACL_ENTRY_MIN_BYTES + e.id.scheme.len() + e.id.id.len();
            size += 4 + list.iter().map(entry_len).sum::<usize>();
        }
        ImageEncoder { image: self, acl_lists, by_number, size }
    }

    /// The encoded image (see the module docs for the format).
    pub fn encode(&self) -> Vec<u8> {
        let encoder = self.encoder();
        let mut out = Vec::with_capacity(encoder.len());
        encoder.write_to(&mut out).expect("writing to a Vec cannot fail");
        out
    }
}

impl fmt::Debug for TreeImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeImage")
            .field("nodes", &self.nodes)
            .field("zxid", &self.zxid)
            .field("digest", &format_args!("{:#018x}", self.digest))
            .finish()
    }
}

impl PartialEq for TreeImage {
    /// Images of the same tree: same zxid, node count and digest.
    fn eq(&self, other: &TreeImage) -> bool {
        (self.zxid, self.nodes, self.digest) == (other.zxid, other.nodes, other.digest)
    }
}

impl Eq for TreeImage {}

/// An image ready to be written: its ACL numbering and its exact length.
pub struct ImageEncoder<'a> {
    image: &'a TreeImage,
    acl_lists: Vec<&'a [Acl]>,
    by_number: Vec<u32>,
    size: usize,
}

impl ImageEncoder<'_> {
    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether the encoding is empty (never: it has a header).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Streams the image to `out` (buffered here; `out` sees large writes), with its checksum.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut w = ChecksumWriter::new(out);
        w.put(MAGIC_V2)?;
        w.put(&self.image.zxid.0.to_le_bytes())?;
        w.put(&count_u32(self.acl_lists.len()).to_le_bytes())?;
        for list in &self.acl_lists {
            w.put(&count_u32(list.len()).to_le_bytes())?;
            for entry in list.iter() {
                w.put(&entry.perms.to_le_bytes())?;
                w.put_str(&entry.id.scheme)?;
                w.put_str(&entry.id.id)?;
            }
        }
        w.put(&(self.image.nodes as u64).to_le_bytes())?;
        for (_, node) in live_nodes(&self.image.pages) {
            let acl_index = self.by_number[node.slot.acl as usize];
            w.put_str(node.path())?;
            match node.data() {
                None => w.put(&(-1i32).to_le_bytes())?,
                Some(data) => {
                    w.put(&count_u32(data.len()).to_le_bytes())?;
                    w.put(data)?;
                }
            }
            w.put(&fixed_fields(&node.slot.stat, acl_index, 0))?;
        }
        w.put(&self.image.digest.to_le_bytes())?;
        let checksum = w.crc;
        w.put(&checksum.to_le_bytes())?;
        debug_assert_eq!(w.written, self.size, "sizing pass agrees with the writing pass");
        w.flush()
    }
}

/// Buffers writes into large chunks and keeps a running CRC-32C of everything written.
struct ChecksumWriter<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    crc: u32,
    written: usize,
}

/// Bytes buffered before a write to the sink.
const CHUNK: usize = 1 << 18;

impl<'a> ChecksumWriter<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        ChecksumWriter { out, buf: Vec::with_capacity(CHUNK), crc: 0, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.written += bytes.len();
        if self.buf.len() + bytes.len() > CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
            if bytes.len() >= CHUNK {
                return self.out.write_all(bytes);
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn put_str(&mut self, value: &str) -> io::Result<()> {
        self.put(&count_u32(value.len()).to_le_bytes())?;
        self.put(value.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl DataTree {
    /// The snapshot image of this tree (see the module docs for the format). Deterministic:
    /// the same txns applied give the same bytes.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        self.image().encode()
    }

    /// The tree `image` was taken of, sharing its pages (a write copies the page it touches,
    /// as after any snapshot): what decoding the image's encoding gives, without encoding and
    /// decoding it. For an image this process took itself (the simulator restarts a node from
    /// the image its disk keeps), so nothing is checked; the sizes, indexes and digest are
    /// recomputed from the slots as decoding does.
    pub fn from_image(image: &TreeImage) -> DataTree {
        let mut tree = DataTree::empty();
        tree.zxid_applied = image.zxid;
        tree.nodes = Store::from_pages(image.pages.to_vec());
        let mut refs = vec![0u32; image.acls.len()];
        for (_, node) in tree.nodes.live_nodes() {
            refs[node.slot.acl as usize] += 1;
            let (path, data, stat) = (node.path(), node.data(), &node.slot.stat);
            tree.data_size += path_len(path) + data.map_or(0, |data| data.len() as i64);
            if path != CONFIG {
                let list = &image.acls[node.slot.acl as usize];
                tree.digest = tree.digest.wrapping_add(digest_term(path, stat, list, data));
            }
            match NodeKind::from_owner(stat.ephemeral_owner) {
                NodeKind::Ephemeral(session) => {
                    tree.ephemerals.entry(session).or_default().insert(path.into());
                }
                NodeKind::Container => _ = tree.containers.insert(path.into()),
                NodeKind::Ttl(_) => _ = tree.ttls.insert(path.into()),
                NodeKind::Persistent => {}
            }
        }
        tree.acl_cache = AclTable::from_lists(image.acls.to_vec(), refs);
        debug_assert_eq!(tree.digest, image.digest, "an image restores to its own digest");
        debug_assert_eq!(tree.nodes.len(), image.nodes);
        tree
    }

    /// Rebuilds a tree from a snapshot image, or says why the image is not a consistent tree.
    /// The ephemeral, container and TTL indexes, sizes and digest are recomputed. Reads both
    /// layouts: version 1 (parents before children, with child counts) and version 2 (slot
    /// order).
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
        let magic = reader.take(MAGIC.len())?;
        let v1 = match magic {
            m if m == MAGIC => true,
            m if m == MAGIC_V2 => false,
            _ => return Err(SnapshotError::BadMagic),
        };
        let mut tree = DataTree::empty();
        tree.zxid_applied = Zxid(reader.u64()?);
        let acl_lists = read_acl_lists(&mut reader, &mut tree)?;
        let at = reader.at;
        let node_count = reader.u64()?;
        let node_count = reader.plausible(at, node_count, NODE_MIN_BYTES)?;
        let mut recorded_children = Vec::with_capacity(if v1 { node_count } else { 0 });
        let mut slots = Vec::with_capacity(node_count);
        tree.nodes.reserve(node_count);
        for position in 0..node_count {
            let (path, data, stat, acl, recorded) = read_node(&mut reader, &acl_lists)?;
            if position == 0 && path != ROOT {
                return Err(SnapshotError::FirstNotRoot { path: path.to_string() });
            }
            if position > 0 {
                if validate_path(path).is_err() || path == ROOT {
                    return Err(SnapshotError::InvalidPath { path: path.to_string() });
                }
                if tree.nodes.find(path).is_some() {
                    return Err(SnapshotError::DuplicatePath { path: path.to_string() });
                }
            }
            // Version 1 lists parents first: its parents are checked as it goes.
            let up = match v1 && position > 0 {
                true => Some(parent_of(&tree, path)?),
                false => None,
            };
            tree.acl_cache.add_ref(acl);
            let id = tree.insert_node(path, data, stat, acl);
            if let Some(up) = up {
                tree.nodes.attach(id, up);
            }
            if v1 {
                recorded_children.push((id, recorded));
            }
            slots.push(id);
        }
        // The lists were counted once each as they were read; nodes hold their own counts.
        for &number in &acl_lists {
            tree.acl_cache.release(number);
        }
        let recorded_digest = reader.u64()?;
        if reader.at != bytes.len() {
            return Err(SnapshotError::TrailingBytes { extra: bytes.len() - reader.at });
        }
        if !v1 {
            // Slot order: attach everything once every node is in, with the same checks.
            for &id in slots.iter().skip(1) {
                let up = parent_of(&tree, tree.nodes.node(id).path())?;
                tree.nodes.attach(id, up);
            }
        }
        for (id, recorded) in recorded_children {
            let found = len_i32(tree.nodes.child_count(id));
            if i64::from(recorded) != i64::from(found) {
                let path = tree.nodes.node(id).path().to_string();
                return Err(SnapshotError::ChildCountMismatch { path, recorded, found });
            }
        }
        for builtin in [ROOT, ZOOKEEPER, QUOTA, CONFIG] {
            let persistent = tree.nodes.find(builtin).is_some_and(|id| {
                let owner = tree.nodes.slot(id).stat.ephemeral_owner;
                NodeKind::from_owner(owner) == NodeKind::Persistent
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

/// The first eight bytes of version 1.
const MAGIC: &[u8; 8] = b"ENSNAP\0\x01";

/// The first eight bytes of version 2, the one written.
const MAGIC_V2: &[u8; 8] = b"ENSNAP\0\x02";

/// The smallest node record: empty path, empty data, ACL index, stat, child count.
const NODE_MIN_BYTES: usize = 4 + 4 + 4 + 6 * 8 + 3 * 4 + 4;

/// The smallest ACL entry: perms and two empty strings.
const ACL_ENTRY_MIN_BYTES: usize = 4 + 4 + 4;

/// Bytes of a node record after its path and data: ACL index, stat, child count.
const NODE_FIXED_BYTES: usize = 4 + 4 * 8 + 3 * 4 + 2 * 8 + 4;

/// No image list number assigned yet.
const NO_LIST: u32 = u32::MAX;

/// A node record after its path and data: ACL index, stat, child count.
fn fixed_fields(stat: &StatPersisted, acl_index: u32, children: u32) -> [u8; NODE_FIXED_BYTES] {
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
    put(&children.to_le_bytes());
    debug_assert_eq!(at, NODE_FIXED_BYTES);
    fixed
}

/// Reads the image's ACL lists into the tree's table (one count each, for the caller to give
/// back) and returns their table numbers.
fn read_acl_lists(reader: &mut Reader<'_>, tree: &mut DataTree) -> Result<Vec<u32>, SnapshotError> {
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

/// A node record: path, data, stat, ACL table number and recorded child count.
type NodeRecord<'a> = (&'a str, Option<&'a [u8]>, StatPersisted, u32, u32);

fn read_node<'a>(
    reader: &mut Reader<'a>,
    acl_lists: &[u32],
) -> Result<NodeRecord<'a>, SnapshotError> {
    let path = reader.str()?;
    let data = match reader.i32()? {
        -1 => None,
        length => {
            let length = reader.length(i64::from(length))?;
            Some(reader.take(length)?)
        }
    };
    let index = reader.u32()?;
    let Some(&acl) = acl_lists.get(index as usize) else {
        let path = path.to_string();
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
    Ok((path, data, stat, acl, recorded_children))
}

/// The slot of a non-root node's parent, which must exist and may have children.
fn parent_of(tree: &DataTree, path: &str) -> Result<u32, SnapshotError> {
    let Some(up) = tree.nodes.find(parent(path)) else {
        return Err(SnapshotError::MissingParent { path: path.to_string() });
    };
    let owner = tree.nodes.slot(up).stat.ephemeral_owner;
    if let NodeKind::Ephemeral(_) = NodeKind::from_owner(owner) {
        return Err(SnapshotError::ChildOfEphemeral { path: path.to_string() });
    }
    Ok(up)
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

    fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let length = self.u32()?;
        let at = self.at;
        let length = self.length(i64::from(length))?;
        let bytes = self.take(length)?;
        std::str::from_utf8(bytes).map_err(|_| SnapshotError::BadUtf8 { at })
    }

    fn string(&mut self) -> Result<String, SnapshotError> {
        self.str().map(str::to_string)
    }
}
