//! What a znode reports, the interned ACL lists, and the per-node digest term (the node itself
//! is a slot of `store`).
//!
//! ZK compat: `DataNode.copyStat` (turns the internal creation count into the reported
//! cversion), `ReferenceCountedACLCache` (one shared copy per distinct ACL list), and
//! `DigestCalculator` (the tree digest is a sum of per-node hashes, so it can be kept up to date
//! in O(1) per change and does not depend on any order).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::StatPersisted;
use crate::core::txn::NodeKind;
use crate::wire::types::{Acl, Stat};

/// Hash state for the tree's lookup tables: a fixed, fast word-at-a-time hash ([`TableHasher`]),
/// so the core never reads OS randomness. Nothing iterates these tables into an output, so the
/// hash only affects speed. (It was SipHash-1-3 with fixed keys; with known keys neither resists
/// a deliberate collision search, and SipHash cost several percent of a simulated run in path
/// lookups alone.)
pub(super) type FixedState = BuildHasherDefault<TableHasher>;

/// The tables' hasher: [`NodeHasher`]'s multiply-rotate rounds, a word at a time, behind
/// `std::hash::Hasher`.
#[derive(Default)]
pub(super) struct TableHasher(NodeHasher);

impl Hasher for TableHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.0.write_u64(u64::from_le_bytes(word.try_into().expect("chunks_exact(8)")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            self.0.write_u64(u64::from_le_bytes(last) ^ ((tail.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.0.write_u64(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.0.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0.write_u64(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.0.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// The Stat a client sees. ZK compat: `DataNode.copyStat`: reported cversion is
/// `2 * creations - numChildren` (Java int arithmetic), and only session ephemerals report
/// their owner.
pub(super) fn client_stat(stat: &StatPersisted, data_length: i32, num_children: i32) -> Stat {
    Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion.wrapping_mul(2).wrapping_sub(num_children),
        aversion: stat.aversion,
        ephemeral_owner: NodeKind::visible_owner(stat.ephemeral_owner),
        data_length,
        num_children,
        pzxid: stat.pzxid,
    }
}

/// A node's term of the tree digest: a 64-bit hash of path, data (null distinct from empty),
/// every persisted stat field and the ACL. Children are implied by other terms. It is the sum
/// of [`meta_term`] and [`data_term`], so that stat changes (a parent gaining a child) do not
/// rehash the data.
pub(super) fn digest_term(
    path: &str,
    stat: &StatPersisted,
    acl: &[Acl],
    data: Option<&[u8]>,
) -> u64 {
    meta_term(path, stat, acl).wrapping_add(data_term(path, data))
}

/// The part of the digest term covering path, stat and ACL.
pub(super) fn meta_term(path: &str, stat: &StatPersisted, acl: &[Acl]) -> u64 {
    let mut hasher = NodeHasher::new(0x243F_6A88_85A3_08D3);
    hasher.write_bytes(path.as_bytes());
    let longs = [stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.ephemeral_owner, stat.pzxid];
    for value in longs {
        hasher.write_u64(value as u64);
    }
    for value in [stat.version, stat.cversion, stat.aversion] {
        hasher.write_u64(value as u32 as u64);
    }
    hasher.write_u64(acl.len() as u64);
    for entry in acl {
        hasher.write_u64(entry.perms as u32 as u64);
        hasher.write_bytes(entry.id.scheme.as_bytes());
        hasher.write_bytes(entry.id.id.as_bytes());
    }
    hasher.finish()
}

/// The part of a node's digest term covering its data (null distinct from empty).
pub(super) fn data_term(path: &str, data: Option<&[u8]>) -> u64 {
    let mut hasher = NodeHasher::new(0x1319_8A2E_0370_7344);
    hasher.write_bytes(path.as_bytes());
    match data {
        None => hasher.write_u64(u64::MAX),
        Some(data) => hasher.write_bytes(data),
    }
    hasher.finish()
}

/// Interned ACL lists, numbered: a node keeps its list's number (4 bytes) and the table keeps
/// one copy of each distinct list with a count of the nodes using it. ZK compat:
/// `ReferenceCountedACLCache` (a `long` per node, the lists and their counts in the tree).
#[derive(Debug, Default)]
pub(super) struct AclTable {
    /// By number; a free number holds an empty list.
    lists: Vec<Arc<[Acl]>>,
    /// Nodes using each number.
    refs: Vec<u32>,
    by_content: HashMap<Arc<[Acl]>, u32, FixedState>,
    /// Numbers no node uses, reused last-freed first.
    free: Vec<u32>,
}

impl AclTable {
    /// The number of `acl`, counting one more node that uses it.
    pub(super) fn intern(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&number) = self.by_content.get(acl) {
            self.refs[number as usize] += 1;
            return number;
        }
        let shared: Arc<[Acl]> = Arc::from(acl);
        let number = match self.free.pop() {
            Some(number) => {
                self.lists[number as usize] = Arc::clone(&shared);
                self.refs[number as usize] = 1;
                number
            }
            None => {
                self.lists.push(Arc::clone(&shared));
                self.refs.push(1);
                u32::try_from(self.lists.len() - 1).expect("fewer ACL lists than nodes")
            }
        };
        self.by_content.insert(shared, number);
        number
    }

    /// The table of an image: its lists at their numbers, with `refs[n]` nodes using list
    /// `n`. A list no node uses is free (and emptied), reused highest number last.
    pub(super) fn from_lists(mut lists: Vec<Arc<[Acl]>>, refs: Vec<u32>) -> AclTable {
        debug_assert_eq!(lists.len(), refs.len());
        let mut by_content = HashMap::default();
        let mut free = Vec::new();
        for (number, list) in lists.iter_mut().enumerate().rev() {
            let number = u32::try_from(number).expect("fewer ACL lists than nodes");
            match refs[number as usize] {
                0 => {
                    *list = Arc::from([]);
                    free.push(number);
                }
                _ => _ = by_content.insert(Arc::clone(list), number),
            }
        }
        AclTable { lists, refs, by_content, free }
    }

    /// Counts one more node using list `number`.
    pub(super) fn add_ref(&mut self, number: u32) {
        self.refs[number as usize] += 1;
    }

    /// Counts one node fewer using list `number`; the list goes when none is left.
    pub(super) fn release(&mut self, number: u32) {
        let refs = &mut self.refs[number as usize];
        *refs -= 1;
        if *refs == 0 {
            let list = std::mem::replace(&mut self.lists[number as usize], Arc::from([]));
            self.by_content.remove(&list);
            self.free.push(number);
        }
    }

    /// List `number` (which a node uses).
    pub(super) fn get(&self, number: u32) -> &Arc<[Acl]> {
        &self.lists[number as usize]
    }

    /// Nodes using list `number`.
    pub(super) fn refs(&self, number: u32) -> u32 {
        self.refs.get(number as usize).copied().unwrap_or(0)
    }

    /// Number of distinct lists in use.
    pub(super) fn len(&self) -> usize {
        self.by_content.len()
    }

    /// Every list by number, shared, for a snapshot image.
    pub(super) fn lists(&self) -> Vec<Arc<[Acl]>> {
        self.lists.clone()
    }
}

/// The ZooKeeper-visible length of a collection: Java ints, saturating (a tree never gets there).
pub(super) fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A small, fast, deterministic 64-bit hash for digest terms (word at a time, multiply-rotate,
/// with a final avalanche so that sums of terms stay well spread). Not for adversarial inputs:
/// it only compares replicas that applied the same txns.
#[derive(Default)]
struct NodeHasher(u64);

impl NodeHasher {
    /// A hasher; distinct seeds keep the meta and data terms of one path apart.
    fn new(seed: u64) -> NodeHasher {
        NodeHasher(seed)
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31);
    }

    /// Length-prefixed, so adjacent fields cannot trade bytes.
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.write_u64(u64::from_le_bytes(word.try_into().expect("chunks_exact(8)")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            self.write_u64(u64::from_le_bytes(last));
        }
    }

    /// splitmix64's finalizer.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::Id;

    #[test]
    fn acl_table_shares_counts_and_reuses_numbers() {
        let mut table = AclTable::default();
        let open = Acl::open_unsafe();
        let first = table.intern(&open);
        assert_eq!(table.intern(&open), first);
        assert_eq!((table.len(), table.refs(first)), (1, 2));
        let read = table.intern(&Acl::read_unsafe());
        assert_eq!(table.len(), 2);
        table.release(first);
        assert_eq!(table.len(), 2, "still used once");
        table.release(first);
        assert_eq!((table.len(), table.refs(first)), (1, 0));
        assert_eq!(&**table.get(read), &Acl::read_unsafe()[..]);
        // The freed number is reused for the next new list.
        let ip = [Acl { perms: 1, id: Id::new("ip", "1.2.3.4") }];
        assert_eq!(table.intern(&ip), first);
        assert_eq!(&**table.get(first), &ip[..]);
    }

    #[test]
    fn client_stat_reports_changes_and_hides_special_owners() {
        let mut stat = StatPersisted { cversion: 3, ..StatPersisted::default() };
        let reported = client_stat(&stat, 3, 2);
        assert_eq!((reported.cversion, reported.num_children, reported.data_length), (4, 2, 3));
        assert_eq!(client_stat(&stat, 3, 0).cversion, 6);

        for (owner, visible) in [
            (0x1234, 0x1234),
            (crate::core::txn::EPHEMERAL_CONTAINER, 0),
            (crate::core::txn::TTL_MARKER | 5000, 0),
            (0, 0),
        ] {
            stat.ephemeral_owner = owner;
            assert_eq!(client_stat(&stat, 0, 0).ephemeral_owner, visible, "{owner:#x}");
        }
    }

    #[test]
    fn digest_term_sees_every_field() {
        let acl = Acl::open_unsafe();
        let base = StatPersisted::default();
        let term = digest_term("/a", &base, &acl, Some(b""));
        assert_ne!(term, digest_term("/b", &base, &acl, Some(b"")));
        assert_ne!(term, digest_term("/a", &base, &acl, None), "null vs empty");
        assert_ne!(term, digest_term("/a", &base, &acl, Some(b"x")));
        let other_acl = [Acl { perms: 1, id: Id::new("ip", "1.2.3.4") }];
        assert_ne!(term, digest_term("/a", &base, &other_acl, Some(b"")));
        let changes: [fn(&mut StatPersisted); 9] = [
            |s| s.czxid = 1,
            |s| s.mzxid = 1,
            |s| s.ctime = 1,
            |s| s.mtime = 1,
            |s| s.version = 1,
            |s| s.cversion = 1,
            |s| s.aversion = 1,
            |s| s.ephemeral_owner = 1,
            |s| s.pzxid = 1,
        ];
        for change in changes {
            let mut stat = base;
            change(&mut stat);
            assert_ne!(term, digest_term("/a", &stat, &acl, Some(b"")), "{stat:?}");
        }
    }
}
