//! Where the tree's nodes live: fixed-size slots in copy-on-write pages, a path index, and the
//! child lists.
//!
//! - **Slots in pages.** Every node is one [`Slot`] (stat, ACL, parent, and one allocation
//!   holding its path followed by its data) in a page of [`PAGE_SLOTS`] slots. Pages are
//!   `Arc`s: [`Store::pages`] hands out the whole table in O(pages) for a snapshot, and the
//!   first change to a page that a snapshot still holds copies that page only
//!   (`Arc::make_mut`). A snapshot taken while writes go on therefore costs a reference per
//!   page, plus a copy of each page written before the snapshot is done with it.
//! - **The index** maps a path to its slot number. It stores slot numbers only (4 bytes and a
//!   control byte per entry); the path it compares against is the one in the slot.
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
use crate::wire::types::Acl;

/// Slots per page. Small pages keep the copy made by a write during a snapshot small.
pub(crate) const PAGE_SLOTS: usize = 64;

/// A node's parent when it has none (the root, or a node not yet attached while decoding).
pub(super) const NO_PARENT: u32 = u32::MAX;

/// High bit of `Slot::path_len`: the node's data is null (distinct from empty).
const NULL_DATA: u32 = 1 << 31;

/// One node. A free slot has no blob.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slot {
    /// The persisted stat; `cversion` is the internal creation count.
    pub(super) stat: StatPersisted,
    /// Shared with every node holding an equal list (`AclCache`).
    pub(super) acl: Arc<[Acl]>,
    /// The path, then the data.
    blob: Option<Box<[u8]>>,
    /// Bytes of path at the front of the blob, | `NULL_DATA`.
    path_len: u32,
    /// The parent's slot, or `NO_PARENT`.
    pub(super) parent: u32,
    /// Where this slot stands in its parent's child list.
    position: u32,
}

impl Slot {
    /// Whether a node lives here.
    pub(crate) fn is_live(&self) -> bool {
        self.blob.is_some()
    }

    /// The node's path.
    pub(crate) fn path(&self) -> &str {
        let bytes = self.path_bytes();
        // Paths are stored from `&str`s only.
        std::str::from_utf8(bytes).expect("slot paths are UTF-8")
    }

    fn path_bytes(&self) -> &[u8] {
        let len = (self.path_len & !NULL_DATA) as usize;
        self.blob.as_deref().map_or(&[], |blob| &blob[..len])
    }

    /// The node's data; `None` is ZooKeeper's null.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        if self.path_len & NULL_DATA != 0 {
            return None;
        }
        let len = self.path_len as usize;
        Some(self.blob.as_deref().map_or(&[], |blob| &blob[len..]))
    }

    /// Length of the data, 0 for null.
    pub(crate) fn data_len(&self) -> usize {
        let path_len = (self.path_len & !NULL_DATA) as usize;
        self.blob.as_deref().map_or(0, |blob| blob.len() - path_len)
    }

    /// Replaces path and data with one allocation of exactly their bytes.
    fn set_blob(&mut self, path: &str, data: Option<&[u8]>) {
        let path_len = u32::try_from(path.len()).expect("paths are far below 2 GiB");
        assert!(path_len < NULL_DATA, "paths are far below 2 GiB");
        let data_bytes = data.unwrap_or_default();
        let mut blob = Vec::with_capacity(path.len() + data_bytes.len());
        blob.extend_from_slice(path.as_bytes());
        blob.extend_from_slice(data_bytes);
        self.blob = Some(blob.into_boxed_slice());
        self.path_len = path_len | if data.is_none() { NULL_DATA } else { 0 };
    }
}

/// A page of slots.
pub(crate) type Page = [Slot; PAGE_SLOTS];

/// The node table.
pub(super) struct Store {
    pages: Vec<Arc<Page>>,
    /// Freed slots, reused last-freed first.
    free: Vec<u32>,
    /// Slots ever handed out (the next new slot's number).
    high: u32,
    /// Live nodes.
    live: usize,
    index: HashTable<u32>,
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

    /// Makes room for `more` nodes without growing the index or page table on the way.
    pub(super) fn reserve(&mut self, more: usize) {
        let Store { index, pages, hasher, .. } = self;
        index.reserve(more, |&id| hasher.hash_one(slot_in(pages, id).path_bytes()));
        self.pages.reserve(more.div_ceil(PAGE_SLOTS));
    }

    /// Live nodes.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The slot of `path`, if a node lives there.
    pub(super) fn find(&self, path: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(path.as_bytes());
        let pages = &self.pages;
        self.index.find(hash, |&id| slot_in(pages, id).path_bytes() == path.as_bytes()).copied()
    }

    /// The slot `id` (which must have been handed out).
    pub(super) fn slot(&self, id: u32) -> &Slot {
        slot_in(&self.pages, id)
    }

    /// The slot `id` for changing; copies its page first if a snapshot still holds it.
    pub(super) fn slot_mut(&mut self, id: u32) -> &mut Slot {
        let page = Arc::make_mut(&mut self.pages[id as usize / PAGE_SLOTS]);
        &mut page[id as usize % PAGE_SLOTS]
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
        acl: Arc<[Acl]>,
    ) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = self.high;
                self.high = self.high.checked_add(1).expect("fewer than 4 billion nodes");
                if id as usize / PAGE_SLOTS == self.pages.len() {
                    self.pages.push(Arc::new(std::array::from_fn(|_| Slot::default())));
                }
                id
            }
        };
        let slot = self.slot_mut(id);
        slot.stat = stat;
        slot.acl = acl;
        slot.set_blob(path, data);
        slot.parent = NO_PARENT;
        let hash = self.hasher.hash_one(path.as_bytes());
        let Store { index, pages, hasher, .. } = self;
        index.insert_unique(hash, id, |&other| hasher.hash_one(slot_in(pages, other).path_bytes()));
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
        let hash = self.hasher.hash_one(self.slot(id).path_bytes());
        let Store { index, .. } = self;
        if let Ok(entry) = index.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        let removed = std::mem::take(self.slot_mut(id));
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
        let slot = self.slot_mut(id);
        let path = slot.path().to_owned();
        slot.set_blob(&path, data);
    }

    /// The page table as it is now, shared: later changes copy the pages they touch.
    pub(super) fn pages(&self) -> Vec<Arc<Page>> {
        self.pages.clone()
    }

    /// Live slots in slot order.
    pub(super) fn live_slots(&self) -> impl Iterator<Item = (u32, &Slot)> {
        live_slots(&self.pages)
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

fn slot_in(pages: &[Arc<Page>], id: u32) -> &Slot {
    &pages[id as usize / PAGE_SLOTS][id as usize % PAGE_SLOTS]
}

/// Live slots of a page table, in slot order.
pub(crate) fn live_slots(pages: &[Arc<Page>]) -> impl Iterator<Item = (u32, &Slot)> {
    pages.iter().enumerate().flat_map(|(page, slots)| {
        slots.iter().enumerate().filter(|(_, slot)| slot.is_live()).map(move |(at, slot)| {
            let id = u32::try_from(page * PAGE_SLOTS + at).expect("slot numbers are u32");
            (id, slot)
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
            .map(|path| {
                let data = Some(&b"d"[..]);
                store.insert(path, data, StatPersisted::default(), Arc::from(Acl::open_unsafe()))
            })
            .collect();
        (store, ids)
    }

    #[test]
    fn finds_inserted_paths_and_forgets_removed_ones() {
        let (mut store, ids) = store_with(&["/", "/a", "/a/b"]);
        store.attach(ids[1], ids[0]);
        store.attach(ids[2], ids[1]);
        assert_eq!(store.find("/a/b"), Some(ids[2]));
        assert_eq!(store.find("/a/c"), None);
        assert_eq!(store.slot(ids[2]).path(), "/a/b");
        assert_eq!(store.slot(ids[2]).data(), Some(&b"d"[..]));
        let removed = store.remove(ids[2]);
        assert_eq!(removed.path(), "/a/b");
        assert_eq!(store.find("/a/b"), None);
        assert_eq!(store.child_count(ids[1]), 0);
        assert_eq!(store.len(), 2);
        // The freed slot is the next one handed out.
        let again = store.insert("/x", None, StatPersisted::default(), Arc::from(vec![]));
        assert_eq!(again, ids[2]);
        assert_eq!(store.slot(again).data(), None, "null data stays null");
        assert_eq!(store.slot(again).data_len(), 0);
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
            store.children(ids[0]).iter().map(|&id| store.slot(id).path()).collect();
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
        assert_eq!(slot_in(&held, ids[5]).data(), Some(&b"d"[..]));
        assert!(slot_in(&held, ids[PAGE_SLOTS + 1]).is_live());
        assert_eq!(store.slot(ids[5]).data(), Some(&b"new"[..]));
        // Only the two written pages were copied; the third is still shared.
        assert!(!Arc::ptr_eq(&held[0], &store.pages[0]));
        assert!(!Arc::ptr_eq(&held[1], &store.pages[1]));
        assert!(Arc::ptr_eq(&held[2], &store.pages[2]));
        assert_eq!(live_slots(&held).count(), PAGE_SLOTS * 3);
        assert_eq!(store.live_slots().count(), PAGE_SLOTS * 3 - 1);
    }
}
