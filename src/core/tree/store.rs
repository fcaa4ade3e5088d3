//! Where the tree's nodes live: fixed-size slots in copy-on-write pages, a path index, and the
//! child lists.
//!
//! - **Slots in pages.** Every node is one 88-byte [`Slot`] (stat, ACL number, parent) in a
//!   page of [`PAGE_SLOTS`] slots, with its path and data in the page's arena. Pages are
//!   `Arc`s: [`Store::pages`] hands out the whole table in O(pages) for a snapshot, and the
//!   first change to a page that a snapshot still holds copies that page only
//!   (`Arc::make_mut`). A snapshot taken while writes go on therefore costs a reference per
//!   page, plus a copy of each page written before the snapshot is done with it.
//! - **The index** maps a path to its slot number. An entry is the slot number and 32 bits of
//!   the path's hash (8 bytes and a control byte); the path it compares against is the one in
//!   the slot. Growing the table rehashes from the stored bits, never from the paths, so
//!   doubling a million-entry index moves 8 MB instead of visiting a million slots.
//! - **Child lists** are per parent vectors of slot numbers, unsorted (a slot records its
//!   position in its parent's list, so removal is O(1)); listings sort names when they are
//!   asked for. They live outside the pages: a snapshot does not need them (every slot names
//!   its parent), so a write to a big directory never copies its list.
//!
//! Slot numbers are handed out lowest-free-last-freed first, a function of the operations
//! applied only, so the same txns give the same layout (and the same snapshot bytes) on every
//! replica and in every run.

use std::hash::BuildHasher;
use std::sync::Arc;

use std::collections::HashMap;

use hashbrown::HashTable;

use super::node::FixedState;
use super::StatPersisted;

/// Slots per page. Small pages keep the copy made by a write during a snapshot small.
pub(crate) const PAGE_SLOTS: usize = 64;

/// A node's parent when it has none (the root, or a node not yet attached while decoding).
pub(super) const NO_PARENT: u32 = u32::MAX;

/// `Slot::data_len` of null data (distinct from empty).
const NULL_DATA: u32 = u32::MAX;

/// One node's fixed-size part; its path and data are in its page's arena. A free slot has an
/// empty path (every live path starts with `/`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Slot {
    /// The persisted stat; `cversion` is the internal creation count.
    pub(super) stat: StatPersisted,
    /// The ACL list's number in the tree's `AclTable`.
    pub(super) acl: u32,
    /// Where the path starts in the page's arena; the data follows it.
    offset: u32,
    path_len: u32,
    /// `NULL_DATA` for null.
    data_len: u32,
    /// The parent's slot, or `NO_PARENT`.
    pub(super) parent: u32,
    /// Where this slot stands in its parent's child list.
    position: u32,
}

impl Slot {
    /// Whether a node lives here.
    pub(crate) fn is_live(&self) -> bool {
        self.path_len != 0
    }

    /// Length of the data, 0 for null.
    pub(crate) fn data_len(&self) -> usize {
        match self.data_len {
            NULL_DATA => 0,
            len => len as usize,
        }
    }

    /// Bytes of path and data together.
    fn blob_len(&self) -> usize {
        self.path_len as usize + self.data_len()
    }
}

/// A page: [`PAGE_SLOTS`] slots, and one arena holding their paths and data back to back
/// (no allocation, header or rounding per node). Rewriting a node's data with data of the
/// same length is done in place; otherwise the old bytes become garbage, and the arena is
/// compacted once garbage is a quarter of it.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    slots: [Slot; PAGE_SLOTS],
    arena: Vec<u8>,
    garbage: usize,
}

impl Page {
    fn new() -> Page {
        Page { slots: std::array::from_fn(|_| Slot::default()), arena: Vec::new(), garbage: 0 }
    }

    /// The node in slot `at`, if one lives there.
    pub(crate) fn node(&self, at: usize) -> Option<Node<'_>> {
        let slot = &self.slots[at];
        slot.is_live().then(|| {
            let start = slot.offset as usize;
            Node { slot, blob: &self.arena[start..start + slot.blob_len()] }
        })
    }

    /// Writes path and data for slot `at` at the end of the arena.
    fn put(&mut self, at: usize, path: &[u8], data: Option<&[u8]>) {
        let data_bytes = data.unwrap_or_default();
        let offset = u32::try_from(self.arena.len()).expect("a page holds under 4 GiB");
        self.arena.reserve_exact(path.len() + data_bytes.len());
        self.arena.extend_from_slice(path);
        self.arena.extend_from_slice(data_bytes);
        let slot = &mut self.slots[at];
        slot.offset = offset;
        slot.path_len = u32::try_from(path.len()).expect("paths are far below 4 GiB");
        slot.data_len = match data {
            None => NULL_DATA,
            Some(data) => u32::try_from(data.len()).expect("data is far below 4 GiB"),
        };
    }

    /// Replaces the data of live slot `at`.
    fn set_data(&mut self, at: usize, data: Option<&[u8]>) {
        let slot = &self.slots[at];
        let start = slot.offset as usize + slot.path_len as usize;
        if let Some(data) = data.filter(|data| slot.data_len == data.len() as u32) {
            self.arena[start..start + data.len()].copy_from_slice(data);
            return;
        }
        let old = slot.offset as usize..start + slot.data_len();
        let path = self.arena[old.start..start].to_vec();
        self.garbage += old.len();
        self.put(at, &path, data);
        self.compact_if_wasteful();
    }

    /// Frees slot `at` and returns what it held.
    fn free(&mut self, at: usize) -> Slot {
        let removed = std::mem::take(&mut self.slots[at]);
        self.garbage += removed.blob_len();
        self.compact_if_wasteful();
        removed
    }

    fn compact_if_wasteful(&mut self) {
        if self.garbage * 4 <= self.arena.len() {
            return;
        }
        let live = self.arena.len() - self.garbage;
        let mut arena = Vec::with_capacity(live);
        for slot in self.slots.iter_mut().filter(|slot| slot.is_live()) {
            let start = slot.offset as usize;
            slot.offset = arena.len() as u32;
            arena.extend_from_slice(&self.arena[start..start + slot.blob_len()]);
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

/// A live node: its slot, and its path and data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    /// The fixed-size part.
    pub(crate) slot: &'a Slot,
    blob: &'a [u8],
}

impl<'a> Node<'a> {
    /// The node's path.
    pub(crate) fn path(&self) -> &'a str {
        let bytes = &self.blob[..self.slot.path_len as usize];
        // Paths are stored from `&str`s only.
        std::str::from_utf8(bytes).expect("slot paths are UTF-8")
    }

    /// The node's data; `None` is ZooKeeper's null.
    pub(crate) fn data(&self) -> Option<&'a [u8]> {
        match self.slot.data_len {
            NULL_DATA => None,
            _ => Some(&self.blob[self.slot.path_len as usize..]),
        }
    }

    fn path_bytes(&self) -> &'a [u8] {
        &self.blob[..self.slot.path_len as usize]
    }
}

/// The node table.
pub(super) struct Store {
    pages: Vec<Arc<Page>>,
    /// Freed slots, reused last-freed first.
    free: Vec<u32>,
    /// Slots ever handed out (the next new slot's number).
    high: u32,
    /// Live nodes.
    live: usize,
    /// (slot, path hash) per node.
    index: HashTable<(u32, u32)>,
    /// Child slots of each slot that has children. No empty lists.
    children: HashMap<u32, Vec<u32>, FixedState>,
    hasher: FixedState,
}

impl Store {
    pub(super) fn new() -> Store {
        Store {
            pages: Vec::new(),
            free: Vec::new(),
            high: 0,
            live: 0,
            index: HashTable::new(),
            children: HashMap::default(),
            hasher: FixedState::default(),
        }
    }

    /// The table of a frozen page table (an image), sharing its pages: the index and child
    /// lists are rebuilt from the slots (each slot names its parent and its place in the
    /// parent's list, so the lists come back in their old order), and every slot not in use
    /// is free, lowest handed out first.
    pub(super) fn from_pages(pages: Vec<Arc<Page>>) -> Store {
        let mut store = Store::new();
        let slots = pages.len() * PAGE_SLOTS;
        store.high = u32::try_from(slots).expect("fewer than 4 billion nodes");
        store.pages = pages;
        let mut live = Vec::new();
        for (id, node) in live_nodes(&store.pages) {
            live.push((
                id,
                store.path_hash(node.path_bytes()),
                node.slot.parent,
                node.slot.position,
            ));
        }
        store.index.reserve(live.len(), |&(_, hash)| widen(hash));
        for &(id, hash, parent, position) in &live {
            store.index.insert_unique(widen(hash), (id, hash), |&(_, hash)| widen(hash));
            if parent != NO_PARENT {
                let list = store.children.entry(parent).or_default();
                let position = position as usize;
                if list.len() <= position {
                    list.resize(position + 1, NO_PARENT);
                }
                list[position] = id;
            }
        }
        debug_assert!(store.children.values().all(|list| !list.contains(&NO_PARENT)));
        store.live = live.len();
        let mut in_use = vec![false; slots];
        for &(id, ..) in &live {
            in_use[id as usize] = true;
        }
        store.free = (0..store.high).rev().filter(|&id| !in_use[id as usize]).collect();
        store
    }

    /// Makes room for `more` nodes without growing the index or page table on the way.
    pub(super) fn reserve(&mut self, more: usize) {
        self.index.reserve(more, |&(_, hash)| widen(hash));
        self.pages.reserve(more.div_ceil(PAGE_SLOTS));
    }

    /// The 32 bits of a path's hash the index keeps.
    fn path_hash(&self, path: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(path);
        (hash ^ (hash >> 32)) as u32
    }

    /// Live nodes.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The slot of `path`, if a node lives there.
    pub(super) fn find(&self, path: &str) -> Option<u32> {
        let hash = self.path_hash(path.as_bytes());
        let pages = &self.pages;
        let same = |&(id, _): &(u32, u32)| node_in(pages, id).path_bytes() == path.as_bytes();
        self.index.find(widen(hash), same).map(|&(id, _)| id)
    }

    /// The live node in slot `id`.
    pub(super) fn node(&self, id: u32) -> Node<'_> {
        node_in(&self.pages, id)
    }

    /// The slot `id` (which must have been handed out).
    pub(super) fn slot(&self, id: u32) -> &Slot {
        &self.pages[id as usize / PAGE_SLOTS].slots[id as usize % PAGE_SLOTS]
    }

    /// The slot `id` for changing; copies its page first if a snapshot still holds it.
    pub(super) fn slot_mut(&mut self, id: u32) -> &mut Slot {
        let (page, at) = self.page_mut(id);
        &mut page.slots[at]
    }

    fn page_mut(&mut self, id: u32) -> (&mut Page, usize) {
        let page = Arc::make_mut(&mut self.pages[id as usize / PAGE_SLOTS]);
        (page, id as usize % PAGE_SLOTS)
    }

    /// Child slots of `id`, in no particular order.
    pub(super) fn children(&self, id: u32) -> &[u32] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Number of children of `id`.
    pub(super) fn child_count(&self, id: u32) -> usize {
        self.children(id).len()
    }

    /// Adds a node at `path`, not yet attached to a parent. The caller checks that the path
    /// is new.
    pub(super) fn insert(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        stat: StatPersisted,
        acl: u32,
    ) -> u32 {
        assert!(!path.is_empty(), "an empty path marks a free slot");
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = self.high;
                self.high = self.high.checked_add(1).expect("fewer than 4 billion nodes");
                if id as usize / PAGE_SLOTS == self.pages.len() {
                    self.pages.push(Arc::new(Page::new()));
                }
                id
            }
        };
        let (page, at) = self.page_mut(id);
        page.put(at, path.as_bytes(), data);
        let slot = &mut page.slots[at];
        slot.stat = stat;
        slot.acl = acl;
        slot.parent = NO_PARENT;
        let hash = self.path_hash(path.as_bytes());
        self.index.insert_unique(widen(hash), (id, hash), |&(_, hash)| widen(hash));
        self.live += 1;
        id
    }

    /// Lists `child` (unattached) under `parent`.
    pub(super) fn attach(&mut self, child: u32, parent: u32) {
        let list = self.children.entry(parent).or_default();
        let position = u32::try_from(list.len()).expect("fewer than 4 billion children");
        list.push(child);
        let slot = self.slot_mut(child);
        slot.parent = parent;
        slot.position = position;
    }

    /// Removes the node in slot `id` (which must be live and have no children) and returns
    /// what it held.
    pub(super) fn remove(&mut self, id: u32) -> Slot {
        let hash = self.path_hash(self.node(id).path_bytes());
        if let Ok(entry) = self.index.find_entry(widen(hash), |&(other, _)| other == id) {
            entry.remove();
        }
        let (page, at) = self.page_mut(id);
        let removed = page.free(at);
        if removed.parent != NO_PARENT {
            self.detach(removed.parent, removed.position);
        }
        self.children.remove(&id);
        self.free.push(id);
        self.live -= 1;
        removed
    }

    /// Replaces the data of live slot `id`.
    pub(super) fn set_data(&mut self, id: u32, data: Option<&[u8]>) {
        let (page, at) = self.page_mut(id);
        page.set_data(at, data);
    }

    /// The page table as it is now, shared: later changes copy the pages they touch.
    pub(super) fn pages(&self) -> Vec<Arc<Page>> {
        self.pages.clone()
    }

    /// Live nodes in slot order.
    pub(super) fn live_nodes(&self) -> impl Iterator<Item = (u32, Node<'_>)> {
        live_nodes(&self.pages)
    }

    /// Asserts the table's own bookkeeping: slots handed out are live or free (once), the
    /// index holds every live slot once under its path's hash, child lists are non-empty
    /// and agree with each child's parent and position, and each page's arena is its live
    /// paths and data plus the garbage it counts. O(slots): for `DataTree::check_invariants`.
    pub(super) fn check(&self) {
        let high = self.high as usize;
        assert_eq!(self.pages.len(), high.div_ceil(PAGE_SLOTS), "pages for {high} slots");
        let mut free = vec![false; high];
        for &id in &self.free {
            let id = id as usize;
            assert!(id < high && !free[id], "free slot {id} out of range or listed twice");
            free[id] = true;
        }
        assert_eq!(self.live + self.free.len(), high, "live + free slots");
        for (page_at, page) in self.pages.iter().enumerate() {
            let mut blobs = 0;
            for (at, slot) in page.slots.iter().enumerate() {
                let id = page_at * PAGE_SLOTS + at;
                if !slot.is_live() {
                    assert!(id >= high || free[id], "slot {id} is neither live nor free");
                    continue;
                }
                assert!(id < high && !free[id], "live slot {id} is free or never handed out");
                let end = slot.offset as usize + slot.blob_len();
                assert!(end <= page.arena.len(), "slot {id} runs past its arena");
                blobs += slot.blob_len();
            }
            assert_eq!(blobs + page.garbage, page.arena.len(), "page {page_at} arena bytes");
        }
        assert_eq!(self.index.len(), self.live, "index entries");
        for &(id, hash) in &self.index {
            let node = self.node(id);
            assert_eq!(self.path_hash(node.path_bytes()), hash, "index hash of slot {id}");
        }
        for (&parent, list) in &self.children {
            assert!(!list.is_empty(), "slot {parent} keeps an empty child list");
            assert!(self.slot(parent).is_live(), "dead slot {parent} has children");
            for (position, &child) in list.iter().enumerate() {
                let slot = self.slot(child);
                assert_eq!(slot.parent, parent, "child {child} of {parent}: parent");
                assert_eq!(slot.position as usize, position, "child {child} of {parent}");
            }
        }
    }

    /// Drops the entry at `position` of `parent`'s list; the last entry takes its place.
    fn detach(&mut self, parent: u32, position: u32) {
        let Some(list) = self.children.get_mut(&parent) else {
            return;
        };
        let position = position as usize;
        if position >= list.len() {
            return;
        }
        list.swap_remove(position);
        let moved = list.get(position).copied();
        if list.is_empty() {
            self.children.remove(&parent);
        }
        if let Some(moved) = moved {
            self.slot_mut(moved).position = position as u32;
        }
    }
}

/// The table's 64-bit hash from the 32 bits kept: a bijective mix, so that the bucket (low
/// bits) and the control byte (top bits) both depend on all 32.
fn widen(hash: u32) -> u64 {
    (u64::from(hash) | (u64::from(hash) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn node_in(pages: &[Arc<Page>], id: u32) -> Node<'_> {
    pages[id as usize / PAGE_SLOTS].node(id as usize % PAGE_SLOTS).expect("a live slot")
}

/// Live nodes of a page table, in slot order.
pub(crate) fn live_nodes(pages: &[Arc<Page>]) -> impl Iterator<Item = (u32, Node<'_>)> {
    pages.iter().enumerate().flat_map(|(page_at, page)| {
        (0..PAGE_SLOTS).filter_map(move |at| {
            let id = u32::try_from(page_at * PAGE_SLOTS + at).expect("slot numbers are u32");
            page.node(at).map(|node| (id, node))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(paths: &[&str]) -> (Store, Vec<u32>) {
        let mut store = Store::new();
        let ids = paths
            .iter()
            .map(|path| store.insert(path, Some(&b"d"[..]), StatPersisted::default(), 0))
            .collect();
        (store, ids)
    }

    #[test]
    fn the_bookkeeping_check_passes_through_changes_and_catches_a_corruption() {
        let (mut store, ids) = store_with(&["/", "/a", "/b", "/a/x"]);
        store.attach(ids[1], ids[0]);
        store.attach(ids[2], ids[0]);
        store.attach(ids[3], ids[1]);
        store.check();
        store.remove(ids[3]);
        store.set_data(ids[2], Some(&b"longer data"[..]));
        store.check();
        store.free.push(ids[2]);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.check()));
        assert!(caught.is_err(), "a live slot on the free list is caught");
    }

    #[test]
    fn finds_inserted_paths_and_forgets_removed_ones() {
        let (mut store, ids) = store_with(&["/", "/a", "/a/b"]);
        store.attach(ids[1], ids[0]);
        store.attach(ids[2], ids[1]);
        assert_eq!(store.find("/a/b"), Some(ids[2]));
        assert_eq!(store.find("/a/c"), None);
        assert_eq!(store.node(ids[2]).path(), "/a/b");
        assert_eq!(store.node(ids[2]).data(), Some(&b"d"[..]));
        store.remove(ids[2]);
        assert_eq!(store.find("/a/b"), None);
        assert_eq!(store.child_count(ids[1]), 0);
        assert_eq!(store.len(), 2);
        // The freed slot is the next one handed out.
        let again = store.insert("/x", None, StatPersisted::default(), 0);
        assert_eq!(again, ids[2]);
        assert_eq!(store.node(again).data(), None, "null data stays null");
        assert_eq!(store.slot(again).data_len(), 0);
    }

    #[test]
    fn data_rewrites_keep_paths_and_the_arena_bounded() {
        let (mut store, ids) = store_with(&["/", "/a", "/b"]);
        store.set_data(ids[1], Some(b"x")); // same length: in place
        assert_eq!(store.pages[0].garbage, 0);
        for round in 0..100usize {
            let data = vec![round as u8; round % 7 * 10];
            store.set_data(ids[1], Some(&data));
            store.set_data(ids[2], if round % 3 == 0 { None } else { Some(&data) });
            assert_eq!(store.node(ids[1]).data(), Some(&data[..]));
            assert_eq!(store.node(ids[1]).path(), "/a");
            assert_eq!(store.node(ids[2]).path(), "/b");
            assert_eq!(store.node(ids[0]).data(), Some(&b"d"[..]));
            let page = &store.pages[0];
            assert!(page.garbage * 4 <= page.arena.len(), "compacted at a quarter");
        }
        assert_eq!(store.find("/b"), Some(ids[2]));
    }

    #[test]
    fn removing_a_child_keeps_the_siblings_positions_right() {
        let paths = ["/", "/a", "/b", "/c", "/d"];
        let (mut store, ids) = store_with(&paths);
        for &child in &ids[1..] {
            store.attach(child, ids[0]);
        }
        store.remove(ids[1]); // "/d" moves into "/a"'s place
        store.remove(ids[4]); // and is found there
        let mut left: Vec<&str> =
            store.children(ids[0]).iter().map(|&id| store.node(id).path()).collect();
        left.sort_unstable();
        assert_eq!(left, ["/b", "/c"]);
        store.remove(ids[2]);
        store.remove(ids[3]);
        assert!(store.children.is_empty(), "no empty lists are kept");
    }

    #[test]
    fn a_held_page_table_does_not_see_later_changes() {
        let paths: Vec<String> = (0..PAGE_SLOTS * 3).map(|i| format!("/n{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let (mut store, ids) = store_with(&refs);
        let held = store.pages();
        store.set_data(ids[5], Some(b"new"));
        store.remove(ids[PAGE_SLOTS + 1]);
        assert_eq!(node_in(&held, ids[5]).data(), Some(&b"d"[..]));
        assert_eq!(node_in(&held, ids[PAGE_SLOTS + 1]).path(), "/n65");
        assert_eq!(store.node(ids[5]).data(), Some(&b"new"[..]));
        // Only the two written pages were copied; the third is still shared.
        assert!(!Arc::ptr_eq(&held[0], &store.pages[0]));
        assert!(!Arc::ptr_eq(&held[1], &store.pages[1]));
        assert!(Arc::ptr_eq(&held[2], &store.pages[2]));
        assert_eq!(live_nodes(&held).count(), PAGE_SLOTS * 3);
        assert_eq!(store.live_nodes().count(), PAGE_SLOTS * 3 - 1);
    }
}
