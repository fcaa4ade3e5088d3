//! Watch tables: which connection watches which path, and who a tree change notifies.
//!
//! ZK compat: mirrors `DataTree`'s pair of `server.watch.WatchManager`s (`dataWatches` and
//! `childWatches`) with `WatcherMode` / `WatchStats`. Watches belong to a connection, not a
//! session: a reconnecting client restores them with setWatches (§7.5 of the protocol notes).
//!
//! Two tables, each keyed by path, hold a set of modes per (connection, path):
//!
//! | registration                           | data table           | child table |
//! |----------------------------------------|----------------------|-------------|
//! | getData / exists watch                 | STANDARD             | —           |
//! | getChildren watch                      | —                    | STANDARD    |
//! | addWatch mode 0 (persistent)           | PERSISTENT           | PERSISTENT  |
//! | addWatch mode 1 (persistent recursive) | PERSISTENT_RECURSIVE | —           |
//!
//! Triggering ([`WatchManager::trigger`]) follows §7.3: `NodeCreated` and `NodeDataChanged`
//! fire the data table; `NodeDeleted` fires the data table and then the child table without
//! notifying a connection twice; `NodeChildrenChanged` fires the child table only, so recursive
//! watches never see it. On the event's own path every mode fires; on an ancestor only
//! PERSISTENT_RECURSIVE does. STANDARD modes are consumed when they fire (even when the ACL
//! filter then drops the notification); persistent modes stay until removed or disconnected.
//!
//! Invariants (checked by [`WatchManager::check_invariants`]):
//! * `by_path` and `by_conn` of a table describe the same set of (connection, path) pairs, and
//!   neither holds an empty set or an empty mode set;
//! * `entries` counts those pairs and `recursive` the pairs holding PERSISTENT_RECURSIVE;
//! * the child table never holds PERSISTENT_RECURSIVE.
//!
//! Cost: a trigger looks up the event path, plus each ancestor only while some recursive watch
//! exists, so it never scans unrelated watches; [`WatchManager::remove_conn`] is proportional to
//! that connection's watches. Each table stores a path string once (`Arc<str>`), shared by its
//! two indexes. Every map that is iterated is a `BTreeMap`, so output order is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::core::ids::ConnId;
use crate::core::tree::TreeEvent;
use crate::wire::proto::{SetWatches, WatcherEvent};
use crate::wire::types::{Acl, AddWatchMode, EventType, WatcherType, KEEPER_STATE_SYNC_CONNECTED};

/// How a connection asked to watch a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// One-shot data watch (getData or exists with `watch=true`).
    Data,
    /// One-shot child watch (getChildren / getChildren2 with `watch=true`).
    Child,
    /// addWatch mode 0: data and child events on the path, until removed.
    Persistent,
    /// addWatch mode 1: data events on the path and every descendant, until removed.
    PersistentRecursive,
}

impl From<AddWatchMode> for WatchKind {
    fn from(mode: AddWatchMode) -> WatchKind {
        match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        }
    }
}

/// The watches of every connection. ZK compat: `DataTree.dataWatches` + `childWatches`.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// Registers a watch of `conn` on `path` (which need not exist). Returns whether this added
    /// a mode the connection did not already hold there.
    ///
    /// ZK compat: `DataTree.getData/statNode/getChildren/addWatch` registration. The caller
    /// must not register watches for a connection after [`WatchManager::remove_conn`].
    pub fn add(&mut self, conn: ConnId, path: &str, kind: WatchKind) -> bool {
        match kind {
            WatchKind::Data => self.data.add(conn, path, Mode::Standard),
            WatchKind::Child => self.child.add(conn, path, Mode::Standard),
            WatchKind::Persistent => {
                let added_data = self.data.add(conn, path, Mode::Persistent);
                let added_child = self.child.add(conn, path, Mode::Persistent);
                added_data || added_child
            }
            WatchKind::PersistentRecursive => self.data.add(conn, path, Mode::PersistentRecursive),
        }
    }

    /// Fires the watches matching one tree change and appends the notifications to `out`,
    /// sorted by connection, at most one per connection.
    ///
    /// `can_read(conn, acl)` says whether `conn` holds READ on `acl` (the event's ACL); a
    /// connection without it gets nothing, but its one-shot watches are consumed all the same
    /// (ZK compat: the 3.8.4+/3.9.2+ `ServerCnxn.process(event, acl)` filter). The caller sends
    /// each notification with the triggering txn's zxid.
    ///
    /// The tree reports a create as `NodeCreated(path)` then `NodeChildrenChanged(parent)`, and a
    /// delete as `NodeDeleted(path)` then `NodeChildrenChanged(parent)`; each is one call here.
    pub fn trigger(
        &mut self,
        event: &TreeEvent,
        can_read: &mut dyn FnMut(ConnId, &[Acl]) -> bool,
        out: &mut Vec<(ConnId, WatcherEvent)>,
    ) {
        let mut fired = BTreeSet::new();
        match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.fire(&event.path, &mut fired);
            }
            EventType::NodeDeleted => {
                // ZK compat: `DataTree.deleteNode` suppresses, in the child table, every
                // watcher the data table already fired; sharing `fired` does exactly that, and
                // the child table's one-shot entries are still consumed.
                self.data.fire(&event.path, &mut fired);
                self.child.fire(&event.path, &mut fired);
            }
            EventType::NodeChildrenChanged => {
                self.child.fire(&event.path, &mut fired);
            }
            EventType::None
            | EventType::DataWatchRemoved
            | EventType::ChildWatchRemoved
            | EventType::PersistentWatchRemoved => {
                debug_assert!(false, "the tree never emits {:?}", event.event_type);
                return;
            }
        }
        for conn in fired {
            if can_read(conn, &event.acl) {
                out.push((conn, watcher_event(event.event_type, &event.path)));
            }
        }
    }

    /// Whether `conn` holds a watch of `watcher_type` on `path` (checkWatches).
    ///
    /// ZK compat: `DataTree.containsWatcher`; see [`WatchManager::remove`] for the matching.
    pub fn contains(&self, conn: ConnId, path: &str, watcher_type: WatcherType) -> bool {
        let data = self.data.modes(conn, path);
        let child = self.child.modes(conn, path);
        match watcher_type {
            WatcherType::Children => child.has(Mode::Standard),
            WatcherType::Data => data.has(Mode::Standard),
            WatcherType::Any => !data.is_empty() || !child.is_empty(),
            WatcherType::Persistent => data.has(Mode::Persistent),
            WatcherType::PersistentRecursive => data.has(Mode::PersistentRecursive),
        }
    }

    /// Removes the watches of `watcher_type` that `conn` holds on `path` (removeWatches).
    /// Returns false when there was none (the caller answers `NoWatcher`).
    ///
    /// ZK compat: `DataTree.removeWatch`. Children and Data match only one-shot watches of
    /// their table; Persistent clears the persistent mode from both tables; PersistentRecursive
    /// clears the recursive mode; Any clears every mode from both tables.
    pub fn remove(&mut self, conn: ConnId, path: &str, watcher_type: WatcherType) -> bool {
        match watcher_type {
            WatcherType::Children => self.child.remove(conn, path, Some(Mode::Standard)),
            WatcherType::Data => self.data.remove(conn, path, Some(Mode::Standard)),
            WatcherType::Any => {
                let removed_child = self.child.remove(conn, path, None);
                let removed_data = self.data.remove(conn, path, None);
                removed_child || removed_data
            }
            WatcherType::Persistent => {
                let removed_child = self.child.remove(conn, path, Some(Mode::Persistent));
                let removed_data = self.data.remove(conn, path, Some(Mode::Persistent));
                removed_child || removed_data
            }
            WatcherType::PersistentRecursive => {
                self.data.remove(conn, path, Some(Mode::PersistentRecursive))
            }
        }
    }

    /// Drops every watch of a closed connection. ZK compat: `DataTree.removeCnxn`.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// Restores a reconnected client's watches (setWatches, setWatches2), appending the
    /// catch-up notifications for changes it missed to `out`, in request order.
    ///
    /// `lookup(path)` returns `(mzxid, pzxid)` of the node if it exists. Against
    /// `req.relative_zxid`: a data watch on a missing node yields `NodeDeleted`, on a node with
    /// a newer `mzxid` `NodeDataChanged`, else it is registered; an exist watch on a present
    /// node yields `NodeCreated`, else it is registered; a child watch on a missing node yields
    /// `NodeDeleted`, on a node with a newer `pzxid` `NodeChildrenChanged`, else it is
    /// registered. Persistent and recursive watches are registered without catch-up. The caller
    /// sends the synthesized events with zxid -1 and no ACL filter.
    ///
    /// ZK compat: `DataTree.setWatches`.
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        req: &SetWatches,
        lookup: &dyn Fn(&str) -> Option<(i64, i64)>,
        out: &mut Vec<WatcherEvent>,
    ) {
        let relative_zxid = req.relative_zxid;
        for path in &req.data {
            match lookup(path) {
                None => out.push(watcher_event(EventType::NodeDeleted, path)),
                Some((mzxid, _)) if mzxid > relative_zxid => {
                    out.push(watcher_event(EventType::NodeDataChanged, path));
                }
                Some(_) => {
                    self.data.add(conn, path, Mode::Standard);
                }
            }
        }
        for path in &req.exist {
            match lookup(path) {
                Some(_) => out.push(watcher_event(EventType::NodeCreated, path)),
                None => {
                    self.data.add(conn, path, Mode::Standard);
                }
            }
        }
        for path in &req.child {
            match lookup(path) {
                None => out.push(watcher_event(EventType::NodeDeleted, path)),
                Some((_, pzxid)) if pzxid > relative_zxid => {
                    out.push(watcher_event(EventType::NodeChildrenChanged, path));
                }
                Some(_) => {
                    self.child.add(conn, path, Mode::Standard);
                }
            }
        }
        for path in &req.persistent {
            self.add(conn, path, WatchKind::Persistent);
        }
        for path in &req.persistent_recursive {
            self.add(conn, path, WatchKind::PersistentRecursive);
        }
    }

    /// For `wchs`: (connections watching, distinct paths, total watches) of the data table.
    ///
    /// ZK compat: `WatchManager.getWatchesSummary` of `dataWatches`; a connection with several
    /// modes on one path counts once.
    pub fn data_watch_summary(&self) -> (usize, usize, usize) {
        (self.data.by_conn.len(), self.data.by_path.len(), self.data.entries)
    }

    /// For `wchc`: the data-table paths each connection watches, both sorted.
    pub fn by_connection(&self) -> BTreeMap<ConnId, Vec<String>> {
        let by_conn = &self.data.by_conn;
        by_conn
            .iter()
            .map(|(conn, paths)| (*conn, paths.iter().map(|path| path.to_string()).collect()))
            .collect()
    }

    /// For `wchp`: the connections watching each data-table path, both sorted.
    pub fn by_path(&self) -> BTreeMap<String, Vec<ConnId>> {
        let by_path = &self.data.by_path;
        by_path
            .iter()
            .map(|(path, conns)| (path.to_string(), conns.keys().copied().collect()))
            .collect()
    }

    /// Watches in both tables, counting each (connection, path) pair once per table.
    ///
    /// ZK compat: `DataTree.getWatchCount` (mntr `zk_watch_count`).
    pub fn total(&self) -> usize {
        self.data.entries + self.child.entries
    }

    /// Asserts the invariants listed in the module docs. O(watches): for tests and the
    /// simulator, not the hot path.
    pub fn check_invariants(&self) {
        self.data.check_invariants("data");
        self.child.check_invariants("child");
        assert_eq!(self.child.recursive, 0, "child table holds recursive watches");
    }
}

/// One watcher mode. ZK compat: `WatcherMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Standard,
    Persistent,
    PersistentRecursive,
}

impl Mode {
    fn bit(self) -> u8 {
        match self {
            Mode::Standard => 1,
            Mode::Persistent => 2,
            Mode::PersistentRecursive => 4,
        }
    }
}

/// The modes one connection holds on one path. ZK compat: `WatchStats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ModeSet(u8);

impl ModeSet {
    const EMPTY: ModeSet = ModeSet(0);

    fn has(self, mode: Mode) -> bool {
        self.0 & mode.bit() != 0
    }

    fn with(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 | mode.bit())
    }

    fn without(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 & !mode.bit())
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One watch table (data or child). ZK compat: one `WatchManager` instance.
#[derive(Debug, Default)]
struct Table {
    /// Path → watching connections and their modes.
    by_path: BTreeMap<Arc<str>, BTreeMap<ConnId, ModeSet>>,
    /// Connection → paths it watches; the reverse index of `by_path`, sharing its keys.
    by_conn: BTreeMap<ConnId, BTreeSet<Arc<str>>>,
    /// Number of (connection, path) pairs.
    entries: usize,
    /// Number of pairs holding `Mode::PersistentRecursive`; zero skips the ancestor walk.
    recursive: usize,
}

impl Table {
    fn add(&mut self, conn: ConnId, path: &str, mode: Mode) -> bool {
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(path),
        };
        let modes = self.by_path.entry(Arc::clone(&key)).or_default().entry(conn).or_default();
        if modes.has(mode) {
            return false;
        }
        if modes.is_empty() {
            self.entries += 1;
            self.by_conn.entry(conn).or_default().insert(key);
        }
        *modes = modes.with(mode);
        if mode == Mode::PersistentRecursive {
            self.recursive += 1;
        }
        true
    }

    fn modes(&self, conn: ConnId, path: &str) -> ModeSet {
        self.by_path.get(path).and_then(|conns| conns.get(&conn)).copied().unwrap_or(ModeSet::EMPTY)
    }

    /// Clears `mode` (every mode if `None`) of `conn` on `path`; returns whether anything
    /// changed. ZK compat: `WatchManager.removeWatcher(path, watcher, mode)`.
    fn remove(&mut self, conn: ConnId, path: &str, mode: Option<Mode>) -> bool {
        let Some(conns) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = conns.get_mut(&conn) else {
            return false;
        };
        let before = *modes;
        let after = mode.map_or(ModeSet::EMPTY, |mode| before.without(mode));
        if after == before {
            return false;
        }
        if before.has(Mode::PersistentRecursive) && !after.has(Mode::PersistentRecursive) {
            self.recursive -= 1;
        }
        if !after.is_empty() {
            *modes = after;
            return true;
        }
        conns.remove(&conn);
        if conns.is_empty() {
            self.by_path.remove(path);
        }
        self.unlink(conn, path);
        true
    }

    /// Removes `path` from the reverse index of `conn` after its entry left `by_path`.
    fn unlink(&mut self, conn: ConnId, path: &str) {
        self.entries -= 1;
        let paths = self.by_conn.get_mut(&conn).expect("by_conn mirrors by_path");
        let was_present = paths.remove(path);
        assert!(was_present, "{conn} watches {path} in by_path only");
        if paths.is_empty() {
            self.by_conn.remove(&conn);
        }
    }

    fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for path in paths {
            let conns = self.by_path.get_mut(&path).expect("by_path mirrors by_conn");
            let modes = conns.remove(&conn).expect("by_path mirrors by_conn");
            if modes.has(Mode::PersistentRecursive) {
                self.recursive -= 1;
            }
            if conns.is_empty() {
                self.by_path.remove(&path);
            }
            self.entries -= 1;
        }
    }

    /// Adds to `fired` every connection watching `path` (any mode) or an ancestor of it
    /// (recursive mode only), and consumes the one-shot modes on `path`.
    ///
    /// ZK compat: `WatchManager.triggerWatch` with `PathParentIterator`.
    fn fire(&mut self, path: &str, fired: &mut BTreeSet<ConnId>) {
        let mut emptied = Vec::new();
        if let Some(conns) = self.by_path.get_mut(path) {
            conns.retain(|conn, modes| {
                fired.insert(*conn);
                *modes = modes.without(Mode::Standard);
                if modes.is_empty() {
                    emptied.push(*conn);
                }
                !modes.is_empty()
            });
            if conns.is_empty() {
                self.by_path.remove(path);
            }
        }
        for conn in emptied {
            self.unlink(conn, path);
        }
        if self.recursive == 0 {
            return;
        }
        for ancestor in ancestors(path) {
            let Some(conns) = self.by_path.get(ancestor) else {
                continue;
            };
            let recursive = conns.iter().filter(|(_, modes)| modes.has(Mode::PersistentRecursive));
            fired.extend(recursive.map(|(conn, _)| *conn));
        }
    }

    fn check_invariants(&self, table: &str) {
        let mut entries = 0;
        let mut recursive = 0;
        for (path, conns) in &self.by_path {
            assert!(!conns.is_empty(), "{table}: {path} has no watchers");
            for (conn, modes) in conns {
                assert!(!modes.is_empty(), "{table}: {conn} on {path} has no mode");
                let linked = self.by_conn.get(conn).is_some_and(|paths| paths.contains(path));
                assert!(linked, "{table}: {conn} on {path} missing from by_conn");
                entries += 1;
                recursive += usize::from(modes.has(Mode::PersistentRecursive));
            }
        }
        let reverse: usize = self.by_conn.values().map(BTreeSet::len).sum();
        assert!(self.by_conn.values().all(|paths| !paths.is_empty()), "{table}: empty by_conn");
        assert_eq!(reverse, entries, "{table}: by_conn and by_path sizes differ");
        assert_eq!(self.entries, entries, "{table}: entry count");
        assert_eq!(self.recursive, recursive, "{table}: recursive count");
    }
}

/// The strict ancestors of `path`, nearest first, ending with `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(parent(path), |path| parent(path))
}

/// The parent of `path`: `/` for a top-level node, `None` for `/` (or a non-path).
fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(slash) => Some(&path[..slash]),
        None => None,
    }
}

fn watcher_event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: event_type.code(),
        state: KEEPER_STATE_SYNC_CONNECTED,
        path: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::types::{perms, Id};

    const CREATED: i32 = 1;
    const DELETED: i32 = 2;
    const DATA_CHANGED: i32 = 3;
    const CHILDREN_CHANGED: i32 = 4;

    fn conn(id: u64) -> ConnId {
        ConnId(id)
    }

    fn tree_event(event_type: EventType, path: &str) -> TreeEvent {
        TreeEvent { event_type, path: path.to_string(), acl: Acl::open_unsafe().into() }
    }

    /// Triggers with everyone allowed to read; returns (conn, event type, path).
    fn fire(watches: &mut WatchManager, event_type: EventType, path: &str) -> Vec<(u64, i32)> {
        fire_filtered(watches, event_type, path, &[])
    }

    fn fire_filtered(
        watches: &mut WatchManager,
        event_type: EventType,
        path: &str,
        denied: &[u64],
    ) -> Vec<(u64, i32)> {
        let mut out = Vec::new();
        let mut can_read = |conn: ConnId, _: &[Acl]| !denied.contains(&conn.0);
        watches.trigger(&tree_event(event_type, path), &mut can_read, &mut out);
        watches.check_invariants();
        for (_, event) in &out {
            assert_eq!(event.path, path);
            assert_eq!(event.state, KEEPER_STATE_SYNC_CONNECTED);
        }
        out.into_iter().map(|(conn, event)| (conn.0, event.event_type)).collect()
    }

    /// The tree's two events for a create of `path` under `parent`.
    fn create(watches: &mut WatchManager, path: &str, parent: &str) -> Vec<Vec<(u64, i32)>> {
        vec![
            fire(watches, EventType::NodeCreated, path),
            fire(watches, EventType::NodeChildrenChanged, parent),
        ]
    }

    /// The tree's two events for a delete of `path` under `parent`.
    fn delete(watches: &mut WatchManager, path: &str, parent: &str) -> Vec<Vec<(u64, i32)>> {
        vec![
            fire(watches, EventType::NodeDeleted, path),
            fire(watches, EventType::NodeChildrenChanged, parent),
        ]
    }

    /// Conn 1: data watch on /a/b. Conn 2: child watch on /a/b. Conn 3: child watch on /a.
    /// Conn 4: data watch on /a. Conn 5: recursive on /a. Conn 6: persistent on /a.
    fn every_kind() -> WatchManager {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/a/b", WatchKind::Data);
        watches.add(conn(2), "/a/b", WatchKind::Child);
        watches.add(conn(3), "/a", WatchKind::Child);
        watches.add(conn(4), "/a", WatchKind::Data);
        watches.add(conn(5), "/a", WatchKind::PersistentRecursive);
        watches.add(conn(6), "/a", WatchKind::Persistent);
        watches
    }

    #[test]
    fn create_fires_data_watchers_of_the_node_and_child_watchers_of_the_parent() {
        let mut watches = every_kind();
        let events = create(&mut watches, "/a/b", "/a");
        assert_eq!(events[0], vec![(1, CREATED), (5, CREATED)]);
        assert_eq!(events[1], vec![(3, CHILDREN_CHANGED), (6, CHILDREN_CHANGED)]);
        // The child watch on /a/b and the data watch on /a did not fire, so they remain.
        assert!(watches.contains(conn(2), "/a/b", WatcherType::Children));
        assert!(watches.contains(conn(4), "/a", WatcherType::Data));
    }

    #[test]
    fn delete_fires_data_and_child_watchers_of_the_node_then_the_parent() {
        let mut watches = every_kind();
        let events = delete(&mut watches, "/a/b", "/a");
        assert_eq!(events[0], vec![(1, DELETED), (2, DELETED), (5, DELETED)]);
        assert_eq!(events[1], vec![(3, CHILDREN_CHANGED), (6, CHILDREN_CHANGED)]);
        assert!(!watches.contains(conn(1), "/a/b", WatcherType::Any));
        assert!(!watches.contains(conn(2), "/a/b", WatcherType::Any));
    }

    #[test]
    fn set_data_fires_the_data_table_only() {
        let mut watches = every_kind();
        assert_eq!(
            fire(&mut watches, EventType::NodeDataChanged, "/a/b"),
            vec![(1, DATA_CHANGED), (5, DATA_CHANGED)]
        );
        assert!(watches.contains(conn(2), "/a/b", WatcherType::Children));
        assert_eq!(
            fire(&mut watches, EventType::NodeDataChanged, "/a"),
            vec![(4, DATA_CHANGED), (5, DATA_CHANGED), (6, DATA_CHANGED)]
        );
        assert!(watches.contains(conn(3), "/a", WatcherType::Children));
    }

    #[test]
    fn events_on_unwatched_paths_notify_nobody() {
        let mut watches = every_kind();
        let total = watches.total();
        for event_type in
            [EventType::NodeCreated, EventType::NodeDeleted, EventType::NodeDataChanged]
        {
            assert_eq!(fire(&mut watches, event_type, "/b"), vec![]);
        }
        assert_eq!(fire(&mut watches, EventType::NodeChildrenChanged, "/a/b/c"), vec![]);
        assert_eq!(watches.total(), total);
    }

    #[test]
    fn one_shot_watches_fire_once() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/x", WatchKind::Data);
        watches.add(conn(1), "/x", WatchKind::Child);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/x"), vec![(1, DATA_CHANGED)]);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/x"), vec![]);
        assert_eq!(
            fire(&mut watches, EventType::NodeChildrenChanged, "/x"),
            vec![(1, CHILDREN_CHANGED)]
        );
        assert_eq!(fire(&mut watches, EventType::NodeChildrenChanged, "/x"), vec![]);
        assert_eq!(watches.total(), 0);
        assert_eq!(watches.data_watch_summary(), (0, 0, 0));
    }

    #[test]
    fn persistent_watches_get_all_four_types_and_survive_delete() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/p", WatchKind::Persistent);
        let events = [
            (EventType::NodeCreated, CREATED),
            (EventType::NodeDataChanged, DATA_CHANGED),
            (EventType::NodeChildrenChanged, CHILDREN_CHANGED),
            (EventType::NodeDeleted, DELETED),
            (EventType::NodeCreated, CREATED),
            (EventType::NodeDeleted, DELETED),
        ];
        for (event_type, code) in events {
            assert_eq!(fire(&mut watches, event_type, "/p"), vec![(1, code)]);
        }
        assert!(watches.contains(conn(1), "/p", WatcherType::Persistent));
        assert_eq!(watches.total(), 2, "one entry in each table");
    }

    #[test]
    fn persistent_watches_ignore_descendants() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/p", WatchKind::Persistent);
        assert_eq!(create(&mut watches, "/p/c/d", "/p/c"), vec![vec![], vec![]]);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/p/c"), vec![]);
    }

    #[test]
    fn recursive_watches_fire_for_the_path_and_descendants_but_not_children_changed() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/r", WatchKind::PersistentRecursive);
        watches.add(conn(2), "/", WatchKind::PersistentRecursive);
        assert_eq!(create(&mut watches, "/r", "/"), vec![vec![(1, CREATED), (2, CREATED)], vec![]]);
        assert_eq!(
            create(&mut watches, "/r/s/t", "/r/s"),
            vec![vec![(1, CREATED), (2, CREATED)], vec![]]
        );
        assert_eq!(
            fire(&mut watches, EventType::NodeDataChanged, "/r/s"),
            vec![(1, DATA_CHANGED), (2, DATA_CHANGED)]
        );
        assert_eq!(
            delete(&mut watches, "/r/s/t", "/r/s"),
            vec![vec![(1, DELETED), (2, DELETED)], vec![]]
        );
        assert_eq!(fire(&mut watches, EventType::NodeChildrenChanged, "/r"), vec![]);
        assert_eq!(fire(&mut watches, EventType::NodeChildrenChanged, "/"), vec![]);
        // `/rx` shares a prefix with `/r` but is not below it.
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/rx"), vec![(2, DATA_CHANGED)]);
        assert!(watches.contains(conn(1), "/r", WatcherType::PersistentRecursive));
    }

    #[test]
    fn a_connection_registered_several_ways_gets_one_notification() {
        let mut watches = WatchManager::new();
        for path in ["/", "/a", "/a/b"] {
            watches.add(conn(7), path, WatchKind::PersistentRecursive);
        }
        watches.add(conn(7), "/a/b", WatchKind::Data);
        watches.add(conn(7), "/a/b", WatchKind::Persistent);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/a/b"), vec![(7, DATA_CHANGED)]);
        assert!(!watches.contains(conn(7), "/a/b", WatcherType::Data), "one-shot consumed");
        assert!(watches.contains(conn(7), "/a/b", WatcherType::Persistent));
        assert!(watches.contains(conn(7), "/a/b", WatcherType::PersistentRecursive));
    }

    #[test]
    fn delete_notifies_each_connection_once_across_both_tables() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/d", WatchKind::Data);
        watches.add(conn(2), "/d", WatchKind::Child);
        watches.add(conn(3), "/d", WatchKind::Data);
        watches.add(conn(3), "/d", WatchKind::Child);
        watches.add(conn(4), "/d", WatchKind::Persistent);
        watches.add(conn(5), "/d", WatchKind::Child);
        watches.add(conn(5), "/", WatchKind::PersistentRecursive);
        assert_eq!(
            fire(&mut watches, EventType::NodeDeleted, "/d"),
            vec![(1, DELETED), (2, DELETED), (3, DELETED), (4, DELETED), (5, DELETED)]
        );
        // Suppressed child entries are consumed too.
        for id in [1, 2, 3, 5] {
            assert!(!watches.contains(conn(id), "/d", WatcherType::Any), "conn {id}");
        }
        assert!(watches.contains(conn(4), "/d", WatcherType::Persistent));
    }

    #[test]
    fn acl_filter_drops_the_event_but_consumes_the_one_shot_watch() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/s", WatchKind::Data);
        watches.add(conn(2), "/s", WatchKind::Data);
        watches.add(conn(3), "/s", WatchKind::Persistent);
        watches.add(conn(4), "/", WatchKind::PersistentRecursive);
        let secret = TreeEvent {
            event_type: EventType::NodeDataChanged,
            path: "/s".to_string(),
            acl: vec![Acl { perms: perms::READ, id: Id::new("digest", "bob:x") }].into(),
        };
        let mut seen = Vec::new();
        let mut can_read = |conn: ConnId, acl: &[Acl]| {
            seen.push((conn.0, acl.to_vec()));
            conn.0 == 1
        };
        let mut out = Vec::new();
        watches.trigger(&secret, &mut can_read, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, conn(1));
        assert_eq!(seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(seen.iter().all(|(_, acl)| acl[..] == secret.acl[..]));
        assert!(!watches.contains(conn(2), "/s", WatcherType::Data), "consumed while denied");
        assert!(watches.contains(conn(3), "/s", WatcherType::Persistent));
        assert_eq!(
            fire_filtered(&mut watches, EventType::NodeDataChanged, "/s", &[3]),
            vec![(4, 3)]
        );
    }

    #[test]
    fn notifications_are_sorted_by_connection() {
        let mut watches = WatchManager::new();
        for (id, path, kind) in [
            (9, "/o/p", WatchKind::Data),
            (3, "/", WatchKind::PersistentRecursive),
            (12, "/o/p", WatchKind::Persistent),
            (1, "/o", WatchKind::PersistentRecursive),
            (5, "/o/p", WatchKind::Child),
            (0, "/o/p", WatchKind::Data),
        ] {
            watches.add(conn(id), path, kind);
        }
        let ids: Vec<u64> = fire(&mut watches, EventType::NodeDeleted, "/o/p")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![0, 1, 3, 5, 9, 12]);
    }

    #[test]
    fn contains_and_remove_follow_the_watcher_type_table() {
        use WatcherType::{Any, Children, Data, Persistent, PersistentRecursive};
        let types = [Children, Data, Any, Persistent, PersistentRecursive];
        let kinds = [
            (WatchKind::Data, [false, true, true, false, false]),
            (WatchKind::Child, [true, false, true, false, false]),
            (WatchKind::Persistent, [false, false, true, true, false]),
            (WatchKind::PersistentRecursive, [false, false, true, false, true]),
        ];
        for (kind, expected) in kinds {
            for (watcher_type, matches) in types.into_iter().zip(expected) {
                let mut watches = WatchManager::new();
                watches.add(conn(1), "/w", kind);
                let context = format!("{kind:?} vs {watcher_type:?}");
                assert_eq!(watches.contains(conn(1), "/w", watcher_type), matches, "{context}");
                assert!(!watches.contains(conn(2), "/w", watcher_type), "{context}");
                assert!(!watches.contains(conn(1), "/v", watcher_type), "{context}");
                assert!(!watches.remove(conn(2), "/w", watcher_type), "{context}");
                assert!(!watches.remove(conn(1), "/v", watcher_type), "{context}");
                assert_eq!(watches.remove(conn(1), "/w", watcher_type), matches, "{context}");
                assert_eq!(watches.total() == 0, matches, "{context}");
                assert!(!watches.remove(conn(1), "/w", watcher_type), "{context}: second remove");
                watches.check_invariants();
            }
        }
    }

    #[test]
    fn remove_keeps_the_other_modes_of_the_same_path() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/m", WatchKind::Data);
        watches.add(conn(1), "/m", WatchKind::Child);
        watches.add(conn(1), "/m", WatchKind::Persistent);
        watches.add(conn(1), "/m", WatchKind::PersistentRecursive);
        assert!(watches.remove(conn(1), "/m", WatcherType::Persistent));
        watches.check_invariants();
        // The persistent mode left both tables: a child event reaches only the one-shot watch.
        assert_eq!(
            fire(&mut watches, EventType::NodeChildrenChanged, "/m"),
            vec![(1, CHILDREN_CHANGED)]
        );
        assert_eq!(fire(&mut watches, EventType::NodeChildrenChanged, "/m"), vec![]);
        assert!(watches.remove(conn(1), "/m", WatcherType::Data));
        assert!(watches.contains(conn(1), "/m", WatcherType::Any));
        assert!(watches.remove(conn(1), "/m", WatcherType::PersistentRecursive));
        assert!(!watches.contains(conn(1), "/m", WatcherType::Any));
        assert_eq!(watches.total(), 0);
        assert_eq!(watches.data.recursive, 0);
    }

    #[test]
    fn remove_any_clears_both_tables() {
        let mut watches = WatchManager::new();
        watches.add(conn(1), "/m", WatchKind::Child);
        watches.add(conn(1), "/m", WatchKind::PersistentRecursive);
        watches.add(conn(1), "/n", WatchKind::Data);
        assert!(watches.remove(conn(1), "/m", WatcherType::Any));
        assert_eq!(watches.data.recursive, 0);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/m/x"), vec![]);
        assert_eq!(watches.by_connection(), BTreeMap::from([(conn(1), vec!["/n".to_string()])]));
    }

    #[test]
    fn remove_conn_drops_only_that_connection() {
        let mut watches = every_kind();
        watches.add(conn(5), "/a/b", WatchKind::Child);
        watches.remove_conn(conn(5));
        watches.remove_conn(conn(5));
        watches.remove_conn(conn(42));
        watches.check_invariants();
        assert_eq!(watches.data.recursive, 0);
        assert_eq!(fire(&mut watches, EventType::NodeDataChanged, "/a/b"), vec![(1, DATA_CHANGED)]);
        assert!(!watches.contains(conn(5), "/a/b", WatcherType::Any));
        assert!(watches.contains(conn(6), "/a", WatcherType::Persistent));
        // Conns 2, 3 and 4 keep one watch each; conn 6's persistent watch is in both tables.
        assert_eq!(watches.total(), 5);
    }

    #[test]
    fn stats_describe_the_data_table() {
        let mut watches = WatchManager::new();
        watches.add(conn(2), "/b", WatchKind::Data);
        watches.add(conn(2), "/a", WatchKind::Data);
        watches.add(conn(2), "/a", WatchKind::PersistentRecursive);
        watches.add(conn(1), "/b", WatchKind::Persistent);
        watches.add(conn(3), "/c", WatchKind::Child);
        assert_eq!(watches.data_watch_summary(), (2, 2, 3));
        assert_eq!(watches.total(), 5, "3 data-table pairs and 2 child-table pairs");
        assert_eq!(
            watches.by_connection(),
            BTreeMap::from([
                (conn(1), vec!["/b".to_string()]),
                (conn(2), vec!["/a".to_string(), "/b".to_string()]),
            ])
        );
        assert_eq!(
            watches.by_path(),
            BTreeMap::from([
                ("/a".to_string(), vec![conn(2)]),
                ("/b".to_string(), vec![conn(1), conn(2)]),
            ])
        );
    }

    #[test]
    fn add_reports_whether_it_added_a_mode() {
        let mut watches = WatchManager::new();
        assert!(watches.add(conn(1), "/q", WatchKind::Data));
        assert!(!watches.add(conn(1), "/q", WatchKind::Data));
        assert!(watches.add(conn(1), "/q", WatchKind::Persistent));
        assert!(!watches.add(conn(1), "/q", WatchKind::Persistent));
        assert!(watches.add(conn(1), "/q", WatchKind::Child));
        assert!(watches.add(conn(1), "/q", WatchKind::PersistentRecursive));
        assert!(!watches.add(conn(1), "/q", WatchKind::PersistentRecursive));
        assert_eq!(watches.total(), 2);
        assert_eq!(watches.data.recursive, 1);
    }

    #[test]
    fn set_watches_catches_up_or_registers() {
        let nodes = BTreeMap::from([("/old", (5, 5)), ("/data", (9, 5)), ("/kids", (5, 9))]);
        let lookup = |path: &str| nodes.get(path).copied();
        let req = SetWatches {
            relative_zxid: 5,
            data: vec!["/gone".into(), "/data".into(), "/old".into()],
            exist: vec!["/old".into(), "/absent".into()],
            child: vec!["/gone".into(), "/kids".into(), "/old".into()],
            persistent: vec!["/gone".into(), "/data".into()],
            persistent_recursive: vec!["/kids".into(), "/nowhere".into()],
        };
        let mut watches = WatchManager::new();
        let mut out = Vec::new();
        watches.set_watches(conn(1), &req, &lookup, &mut out);
        watches.check_invariants();
        let events: Vec<(i32, &str)> =
            out.iter().map(|event| (event.event_type, event.path.as_str())).collect();
        assert_eq!(
            events,
            vec![
                (DELETED, "/gone"),
                (DATA_CHANGED, "/data"),
                (CREATED, "/old"),
                (DELETED, "/gone"),
                (CHILDREN_CHANGED, "/kids"),
            ]
        );
        assert!(out.iter().all(|event| event.state == KEEPER_STATE_SYNC_CONNECTED));
        let has = |path, watcher_type| watches.contains(conn(1), path, watcher_type);
        assert!(has("/old", WatcherType::Data), "data watch, mzxid == relative zxid");
        assert!(has("/absent", WatcherType::Data), "exist watch on a missing node");
        assert!(has("/old", WatcherType::Children), "child watch, pzxid == relative zxid");
        assert!(!has("/gone", WatcherType::Data));
        assert!(!has("/gone", WatcherType::Children));
        assert!(!has("/data", WatcherType::Data));
        assert!(!has("/kids", WatcherType::Children));
        assert!(has("/gone", WatcherType::Persistent));
        assert!(has("/data", WatcherType::Persistent));
        assert!(has("/kids", WatcherType::PersistentRecursive));
        assert!(has("/nowhere", WatcherType::PersistentRecursive));
        // Persistent registration reaches the child table too.
        assert_eq!(
            fire(&mut watches, EventType::NodeChildrenChanged, "/gone"),
            vec![(1, CHILDREN_CHANGED)]
        );
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("").count(), 0);
        assert_eq!(ancestors("a").count(), 0);
    }

    // ---- model check -------------------------------------------------------------------

    /// The naive model: every watch as one (conn, path, kind) row, scanned linearly.
    #[derive(Default)]
    struct Model {
        rows: Vec<(u64, String, WatchKind)>,
    }

    impl Model {
        fn add(&mut self, id: u64, path: &str, kind: WatchKind) {
            if !self.rows.iter().any(|row| *row == (id, path.to_string(), kind)) {
                self.rows.push((id, path.to_string(), kind));
            }
        }

        fn matches(row: &(u64, String, WatchKind), event_type: EventType, path: &str) -> bool {
            let (_, watched, kind) = row;
            let below = watched == "/" && path != "/" || path.starts_with(&format!("{watched}/"));
            let data = match kind {
                WatchKind::Data | WatchKind::Persistent => watched == path,
                WatchKind::PersistentRecursive => watched == path || below,
                WatchKind::Child => false,
            };
            let child = matches!(kind, WatchKind::Child | WatchKind::Persistent) && watched == path;
            match event_type {
                EventType::NodeCreated | EventType::NodeDataChanged => data,
                EventType::NodeDeleted => data || child,
                EventType::NodeChildrenChanged => child,
                _ => false,
            }
        }

        fn trigger(&mut self, event_type: EventType, path: &str, denied: u8) -> Vec<(u64, i32)> {
            let fired: BTreeSet<u64> = self
                .rows
                .iter()
                .filter(|row| Model::matches(row, event_type, path))
                .map(|row| row.0)
                .collect();
            self.rows.retain(|row| {
                let one_shot = matches!(row.2, WatchKind::Data | WatchKind::Child);
                !(one_shot && Model::matches(row, event_type, path))
            });
            fired
                .into_iter()
                .filter(|id| denied & (1 << id) == 0)
                .map(|id| (id, event_type.code()))
                .collect()
        }

        fn selects(row: &(u64, String, WatchKind), watcher_type: WatcherType) -> bool {
            match watcher_type {
                WatcherType::Children => row.2 == WatchKind::Child,
                WatcherType::Data => row.2 == WatchKind::Data,
                WatcherType::Any => true,
                WatcherType::Persistent => row.2 == WatchKind::Persistent,
                WatcherType::PersistentRecursive => row.2 == WatchKind::PersistentRecursive,
            }
        }

        fn contains(&self, id: u64, path: &str, watcher_type: WatcherType) -> bool {
            self.rows
                .iter()
                .any(|row| row.0 == id && row.1 == path && Model::selects(row, watcher_type))
        }

        fn remove(&mut self, id: u64, path: &str, watcher_type: WatcherType) -> bool {
            let before = self.rows.len();
            self.rows
                .retain(|row| !(row.0 == id && row.1 == path && Model::selects(row, watcher_type)));
            self.rows.len() != before
        }

        fn in_data_table(kind: WatchKind) -> bool {
            kind != WatchKind::Child
        }

        fn in_child_table(kind: WatchKind) -> bool {
            matches!(kind, WatchKind::Child | WatchKind::Persistent)
        }

        fn pairs(&self, in_table: fn(WatchKind) -> bool) -> BTreeSet<(u64, String)> {
            self.rows
                .iter()
                .filter(|row| in_table(row.2))
                .map(|row| (row.0, row.1.clone()))
                .collect()
        }

        fn by_connection(&self) -> BTreeMap<ConnId, Vec<String>> {
            let mut by_conn: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
            for (id, path) in self.pairs(Model::in_data_table) {
                by_conn.entry(conn(id)).or_default().push(path);
            }
            by_conn
        }

        fn by_path(&self) -> BTreeMap<String, Vec<ConnId>> {
            let mut by_path: BTreeMap<String, Vec<ConnId>> = BTreeMap::new();
            for (id, path) in self.pairs(Model::in_data_table) {
                by_path.entry(path).or_default().push(conn(id));
            }
            by_path.values_mut().for_each(|conns| conns.sort());
            by_path
        }
    }

    const PATHS: [&str; 8] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/a/bc", "/b", "/b/a"];

    #[derive(Clone, Debug)]
    enum Op {
        Add(u64, usize, WatchKind),
        Trigger(EventType, usize, u8),
        Contains(u64, usize, WatcherType),
        Remove(u64, usize, WatcherType),
        RemoveConn(u64),
        SetWatches(u64, SetWatches, BTreeMap<usize, (i64, i64)>),
    }

    fn kind() -> impl Strategy<Value = WatchKind> {
        prop_oneof![
            Just(WatchKind::Data),
            Just(WatchKind::Child),
            Just(WatchKind::Persistent),
            Just(WatchKind::PersistentRecursive),
        ]
    }

    fn watcher_type() -> impl Strategy<Value = WatcherType> {
        (1..=5i32).prop_map(|code| WatcherType::from_code(code).expect("1..=5 are watcher types"))
    }

    fn event_type() -> impl Strategy<Value = EventType> {
        (1..=4i32).prop_map(|code| EventType::from_code(code).expect("1..=4 are event types"))
    }

    fn path_list() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec((0..PATHS.len()).prop_map(|i| PATHS[i].to_string()), 0..4)
    }

    fn set_watches() -> impl Strategy<Value = (SetWatches, BTreeMap<usize, (i64, i64)>)> {
        let lists = (path_list(), path_list(), path_list(), path_list(), path_list());
        let nodes = prop::collection::btree_map(0..PATHS.len(), (0..4i64, 0..4i64), 0..6);
        (0..4i64, lists, nodes).prop_map(|(relative_zxid, lists, nodes)| {
            let (data, exist, child, persistent, persistent_recursive) = lists;
            let req =
                SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive };
            (req, nodes)
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        let id = 0..5u64;
        let path = 0..PATHS.len();
        prop_oneof![
            4 => (id.clone(), path.clone(), kind()).prop_map(|(c, p, k)| Op::Add(c, p, k)),
            4 => (event_type(), path.clone(), any::<u8>()).prop_map(|(e, p, d)| Op::Trigger(e, p, d)),
            1 => (id.clone(), path.clone(), watcher_type()).prop_map(|(c, p, t)| Op::Contains(c, p, t)),
            2 => (id.clone(), path, watcher_type()).prop_map(|(c, p, t)| Op::Remove(c, p, t)),
            1 => id.clone().prop_map(Op::RemoveConn),
            1 => (id, set_watches()).prop_map(|(c, (req, nodes))| Op::SetWatches(c, req, nodes)),
        ]
    }

    fn model_set_watches(
        model: &mut Model,
        id: u64,
        req: &SetWatches,
        lookup: &dyn Fn(&str) -> Option<(i64, i64)>,
    ) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        let rel = req.relative_zxid;
        for path in &req.data {
            match lookup(path) {
                None => out.push((DELETED, path.clone())),
                Some((mzxid, _)) if mzxid > rel => out.push((DATA_CHANGED, path.clone())),
                Some(_) => model.add(id, path, WatchKind::Data),
            }
        }
        for path in &req.exist {
            match lookup(path) {
                Some(_) => out.push((CREATED, path.clone())),
                None => model.add(id, path, WatchKind::Data),
            }
        }
        for path in &req.child {
            match lookup(path) {
                None => out.push((DELETED, path.clone())),
                Some((_, pzxid)) if pzxid > rel => out.push((CHILDREN_CHANGED, path.clone())),
                Some(_) => model.add(id, path, WatchKind::Child),
            }
        }
        req.persistent.iter().for_each(|path| model.add(id, path, WatchKind::Persistent));
        for path in &req.persistent_recursive {
            model.add(id, path, WatchKind::PersistentRecursive);
        }
        out
    }

    fn apply(watches: &mut WatchManager, model: &mut Model, op: &Op) {
        match op {
            Op::Add(id, path, kind) => {
                watches.add(conn(*id), PATHS[*path], *kind);
                model.add(*id, PATHS[*path], *kind);
            }
            Op::Trigger(event_type, path, denied) => {
                let path = PATHS[*path];
                let got = fire_filtered(watches, *event_type, path, &denied_ids(*denied));
                assert_eq!(got, model.trigger(*event_type, path, *denied), "{op:?}");
            }
            Op::Contains(id, path, watcher_type) => {
                let path = PATHS[*path];
                let expected = model.contains(*id, path, *watcher_type);
                assert_eq!(watches.contains(conn(*id), path, *watcher_type), expected, "{op:?}");
            }
            Op::Remove(id, path, watcher_type) => {
                let path = PATHS[*path];
                let expected = model.remove(*id, path, *watcher_type);
                assert_eq!(watches.remove(conn(*id), path, *watcher_type), expected, "{op:?}");
            }
            Op::RemoveConn(id) => {
                watches.remove_conn(conn(*id));
                model.rows.retain(|row| row.0 != *id);
            }
            Op::SetWatches(id, req, nodes) => {
                let by_path: BTreeMap<&str, (i64, i64)> =
                    nodes.iter().map(|(path, zxids)| (PATHS[*path], *zxids)).collect();
                let lookup = |path: &str| by_path.get(path).copied();
                let mut out = Vec::new();
                watches.set_watches(conn(*id), req, &lookup, &mut out);
                let got: Vec<(i32, String)> =
                    out.into_iter().map(|event| (event.event_type, event.path)).collect();
                assert_eq!(got, model_set_watches(model, *id, req, &lookup), "{op:?}");
            }
        }
    }

    fn denied_ids(denied: u8) -> Vec<u64> {
        (0..8).filter(|id| denied & (1 << id) != 0).collect()
    }

    proptest! {
        #[test]
        fn matches_the_linear_model(ops in prop::collection::vec(op(), 1..80)) {
            let mut watches = WatchManager::new();
            let mut model = Model::default();
            for op in &ops {
                apply(&mut watches, &mut model, op);
                watches.check_invariants();
                let data_pairs = model.pairs(Model::in_data_table);
                let child_pairs = model.pairs(Model::in_child_table);
                let by_connection = model.by_connection();
                let by_path = model.by_path();
                prop_assert_eq!(watches.total(), data_pairs.len() + child_pairs.len());
                prop_assert_eq!(
                    watches.data_watch_summary(),
                    (by_connection.len(), by_path.len(), data_pairs.len())
                );
                prop_assert_eq!(watches.by_connection(), by_connection);
                prop_assert_eq!(watches.by_path(), by_path);
            }
        }
    }
}
