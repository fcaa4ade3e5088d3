//! Watches: one-shot data/exists/child watches and their event types, at-most-once delivery,
//! the notification-before-reply ordering on a connection, persistent and recursive watches,
//! checkWatches/removeWatches, and setWatches restoring watches after a reconnect.

use zookeeper_client as zk;

use crate::harness::{within, Server};
use crate::raw::{self, err, event, op, Conn, ConnectRequest, Jute, Notification};
use crate::PERSISTENT;

fn note(event_type: i32, path: &str) -> (i32, i32, String) {
    (event_type, 3, path.to_string())
}

/// (type, state, path) of each notification, ignoring the zxid (3.8 sends -1, 3.9 the txn's).
fn shape(events: &[Notification]) -> Vec<(i32, i32, String)> {
    events.iter().map(|n| (n.event_type, n.state, n.path.clone())).collect()
}

/// A round trip on `conn` that flushes every notification the server queued before it.
async fn barrier(conn: &mut Conn) {
    conn.call(op::EXISTS, &raw::path_watch_body("/", false)).await.ok("barrier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_precedes_the_reply_of_a_later_read() {
    let server = Server::start();
    let (mut watcher, _) = Conn::session(&server.addr(), 30_000).await;
    let (mut writer, _) = Conn::session(&server.addr(), 30_000).await;
    writer.create("/w", b"old", 0).await;

    let reply = watcher.call(op::GET_DATA, &raw::path_watch_body("/w", true)).await.ok("getData");
    assert_eq!(reply.reader().buffer().unwrap(), b"old");
    let set_body = Jute::new().ustring("/w").buffer(Some(b"new")).int(-1).bytes();
    let set = writer.call(op::SET_DATA, &set_body).await.ok("setData");

    // The write completed before this read was sent, so the read sees it, and the watch
    // event must be on the wire before the read's reply.
    let read = watcher.call(op::GET_DATA, &raw::path_watch_body("/w", false)).await.ok("getData");
    assert_eq!(read.reader().buffer().unwrap(), b"new");
    let events = watcher.take_events();
    assert_eq!(shape(&events), [note(event::NODE_DATA_CHANGED, "/w")]);
    assert!(events[0].zxid == set.zxid || events[0].zxid == -1, "event zxid {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watch_fires_once() {
    let server = Server::start();
    let (mut watcher, _) = Conn::session(&server.addr(), 30_000).await;
    let client = server.client().await;
    client.create("/once", b"", &PERSISTENT).await.unwrap();

    // Registered twice (getData and exists share the data table): still one event.
    watcher.call(op::GET_DATA, &raw::path_watch_body("/once", true)).await.ok("getData");
    watcher.call(op::EXISTS, &raw::path_watch_body("/once", true)).await.ok("exists");
    client.set_data("/once", b"1", None).await.unwrap();
    client.set_data("/once", b"2", None).await.unwrap();
    client.delete("/once", None).await.unwrap();
    barrier(&mut watcher).await;
    assert_eq!(shape(&watcher.take_events()), [note(event::NODE_DATA_CHANGED, "/once")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exists_watch_on_a_missing_node_fires_on_create() {
    let server = Server::start();
    let client = server.client().await;
    let other = server.client().await;

    let (stat, watcher) = client.check_and_watch_stat("/later").await.unwrap();
    assert_eq!(stat, None);
    other.create("/later", b"", &PERSISTENT).await.unwrap();
    let event = within("NodeCreated", watcher.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeCreated);
    assert_eq!(event.path, "/later");

    let (_, watcher) = client.check_and_watch_stat("/later").await.unwrap();
    other.set_data("/later", b"x", None).await.unwrap();
    let event = within("NodeDataChanged", watcher.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);

    let (_, watcher) = client.check_and_watch_stat("/later").await.unwrap();
    other.delete("/later", None).await.unwrap();
    let event = within("NodeDeleted", watcher.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_data_or_children_on_a_missing_node_leaves_no_watch() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let (mut writer, _) = Conn::session(&server.addr(), 30_000).await;

    let reply = conn.call(op::GET_DATA, &raw::path_watch_body("/ghost", true)).await;
    assert_eq!(reply.err, err::NO_NODE);
    let reply = conn.call(op::GET_CHILDREN, &raw::path_watch_body("/ghost", true)).await;
    assert_eq!(reply.err, err::NO_NODE);
    let reply = conn.call(op::GET_CHILDREN2, &raw::path_watch_body("/ghost", true)).await;
    assert_eq!(reply.err, err::NO_NODE);
    writer.create("/ghost", b"", 0).await;
    writer.create("/ghost/kid", b"", 0).await;
    barrier(&mut conn).await;
    assert!(conn.take_events().is_empty());
    let check = Jute::new().ustring("/ghost").int(3).bytes();
    assert_eq!(conn.call(op::CHECK_WATCHES, &check).await.err, err::NO_WATCHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_watch_fires_on_child_create_and_delete_only() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let client = server.client().await;
    client.create("/c", b"", &PERSISTENT).await.unwrap();
    client.create("/c/stay", b"", &PERSISTENT).await.unwrap();
    let watch = || raw::path_watch_body("/c", true);

    conn.call(op::GET_CHILDREN, &watch()).await.ok("ls");
    client.set_data("/c", b"data", None).await.unwrap();
    client.set_data("/c/stay", b"data", None).await.unwrap();
    client.create("/c/stay/grandchild", b"", &PERSISTENT).await.unwrap();
    barrier(&mut conn).await;
    assert!(conn.take_events().is_empty(), "data changes and grandchildren do not fire");

    client.create("/c/new", b"", &PERSISTENT).await.unwrap();
    barrier(&mut conn).await;
    assert_eq!(shape(&conn.take_events()), [note(event::NODE_CHILDREN_CHANGED, "/c")]);

    conn.call(op::GET_CHILDREN2, &watch()).await.ok("ls2");
    client.delete("/c/new", None).await.unwrap();
    barrier(&mut conn).await;
    assert_eq!(shape(&conn.take_events()), [note(event::NODE_CHILDREN_CHANGED, "/c")]);

    // The root's child events name "/".
    conn.call(op::GET_CHILDREN, &raw::path_watch_body("/", true)).await.ok("ls /");
    client.create("/top", b"", &PERSISTENT).await.unwrap();
    barrier(&mut conn).await;
    assert_eq!(shape(&conn.take_events()), [note(event::NODE_CHILDREN_CHANGED, "/")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_notifies_once_per_connection_then_the_parent() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let client = server.client().await;
    client.create("/p", b"", &PERSISTENT).await.unwrap();
    client.create("/p/d", b"", &PERSISTENT).await.unwrap();

    conn.call(op::GET_DATA, &raw::path_watch_body("/p/d", true)).await.ok("get");
    conn.call(op::GET_CHILDREN, &raw::path_watch_body("/p/d", true)).await.ok("ls");
    conn.call(op::GET_CHILDREN, &raw::path_watch_body("/p", true)).await.ok("ls parent");
    client.delete("/p/d", None).await.unwrap();
    barrier(&mut conn).await;
    let expected = [note(event::NODE_DELETED, "/p/d"), note(event::NODE_CHILDREN_CHANGED, "/p")];
    assert_eq!(shape(&conn.take_events()), expected);

    // A child watch alone also reports the node's own deletion as NodeDeleted.
    client.create("/p/e", b"", &PERSISTENT).await.unwrap();
    conn.call(op::GET_CHILDREN, &raw::path_watch_body("/p/e", true)).await.ok("ls");
    client.delete("/p/e", None).await.unwrap();
    barrier(&mut conn).await;
    assert_eq!(shape(&conn.take_events()), [note(event::NODE_DELETED, "/p/e")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_one_shot_watchers_report_event_types() {
    let server = Server::start();
    let client = server.client().await;
    let other = server.client().await;
    client.create("/t", b"", &PERSISTENT).await.unwrap();

    let (_, _, data) = client.get_and_watch_data("/t").await.unwrap();
    let (_, children) = client.list_and_watch_children("/t").await.unwrap();
    let (_, _, children2) = client.get_and_watch_children("/t").await.unwrap();
    other.create("/t/kid", b"", &PERSISTENT).await.unwrap();
    let event = within("child event", children.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeChildrenChanged, "/t"));
    let event = within("child2 event", children2.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeChildrenChanged);

    other.set_data("/t", b"x", None).await.unwrap();
    let event = within("data event", data.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDataChanged, "/t"));

    let (_, _, data) = client.get_and_watch_data("/t/kid").await.unwrap();
    other.delete("/t/kid", None).await.unwrap();
    let event = within("delete event", data.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDeleted, "/t/kid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_fires_watches_in_op_order() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let client = server.client().await;
    client.create("/m1", b"", &PERSISTENT).await.unwrap();
    client.create("/m2", b"", &PERSISTENT).await.unwrap();
    conn.call(op::GET_DATA, &raw::path_watch_body("/m1", true)).await.ok("get m1");
    conn.call(op::GET_DATA, &raw::path_watch_body("/m2", true)).await.ok("get m2");
    conn.call(op::EXISTS, &raw::path_watch_body("/m3", true)).await;

    let mut writer = client.new_multi_writer();
    writer.add_set_data("/m2", b"x", None).unwrap();
    writer.add_create("/m3", b"", &PERSISTENT).unwrap();
    writer.add_delete("/m1", None).unwrap();
    writer.commit().await.unwrap();
    barrier(&mut conn).await;
    let expected = [
        note(event::NODE_DATA_CHANGED, "/m2"),
        note(event::NODE_CREATED, "/m3"),
        note(event::NODE_DELETED, "/m1"),
    ];
    assert_eq!(shape(&conn.take_events()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_sees_every_change_of_its_node() {
    let server = Server::start();
    let client = server.client().await;
    let other = server.client().await;
    let mut watcher = client.watch("/pw", zk::AddWatchMode::Persistent).await.unwrap();

    other.create("/pw", b"", &PERSISTENT).await.unwrap();
    other.set_data("/pw", b"1", None).await.unwrap();
    other.create("/pw/kid", b"", &PERSISTENT).await.unwrap();
    other.set_data("/pw/kid", b"1", None).await.unwrap(); // not this node: no event
    other.delete("/pw/kid", None).await.unwrap();
    other.delete("/pw", None).await.unwrap();
    other.create("/pw", b"", &PERSISTENT).await.unwrap(); // still registered after delete

    let expected = [
        (zk::EventType::NodeCreated, "/pw"),
        (zk::EventType::NodeDataChanged, "/pw"),
        (zk::EventType::NodeChildrenChanged, "/pw"),
        (zk::EventType::NodeChildrenChanged, "/pw"),
        (zk::EventType::NodeDeleted, "/pw"),
        (zk::EventType::NodeCreated, "/pw"),
    ];
    for (i, (event_type, path)) in expected.iter().enumerate() {
        let event = within(&format!("persistent event {i}"), watcher.changed()).await;
        assert_eq!((event.event_type, event.path.as_str()), (*event_type, *path), "event {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_watch_sees_the_subtree_without_child_events() {
    let server = Server::start();
    let client = server.client().await;
    let other = server.client().await;
    let mut watcher = client.watch("/rw", zk::AddWatchMode::PersistentRecursive).await.unwrap();

    other.create("/rw", b"", &PERSISTENT).await.unwrap();
    other.create("/rw/a", b"", &PERSISTENT).await.unwrap();
    other.create("/rw/a/b", b"", &PERSISTENT).await.unwrap();
    other.set_data("/rw/a/b", b"x", None).await.unwrap();
    other.create("/rwx", b"", &PERSISTENT).await.unwrap(); // a sibling with a common prefix
    other.delete("/rw/a/b", None).await.unwrap();
    other.set_data("/rw", b"y", None).await.unwrap();

    let expected = [
        (zk::EventType::NodeCreated, "/rw"),
        (zk::EventType::NodeCreated, "/rw/a"),
        (zk::EventType::NodeCreated, "/rw/a/b"),
        (zk::EventType::NodeDataChanged, "/rw/a/b"),
        (zk::EventType::NodeDeleted, "/rw/a/b"),
        (zk::EventType::NodeDataChanged, "/rw"),
    ];
    for (i, (event_type, path)) in expected.iter().enumerate() {
        let event = within(&format!("recursive event {i}"), watcher.changed()).await;
        assert_eq!((event.event_type, event.path.as_str()), (*event_type, *path), "event {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_watch_over_the_wire() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let (mut writer, _) = Conn::session(&server.addr(), 30_000).await;

    let reply = conn.call(op::ADD_WATCH, &Jute::new().ustring("/aw").int(1).bytes()).await;
    assert_eq!(reply.err, err::OK);
    assert_eq!(reply.body, [0, 0, 0, 0], "addWatch answers with ErrorResponse{{0}}");
    writer.create("/aw", b"", 0).await;
    writer.create("/aw/x", b"", 0).await;
    barrier(&mut conn).await;
    let expected = [note(event::NODE_CREATED, "/aw"), note(event::NODE_CREATED, "/aw/x")];
    assert_eq!(shape(&conn.take_events()), expected);

    let check = |t: i32| Jute::new().ustring("/aw").int(t).bytes();
    assert_eq!(conn.call(op::CHECK_WATCHES, &check(3)).await.err, err::OK);
    // Since 3.9 (ZOOKEEPER-4472) watcher types 4 and 5 name persistent watches, and types 1
    // and 2 match one-shot watches only. 3.8 knows types 1-3 only.
    let removal_type = if server.behaves_like_at_least(3, 9, 0) {
        assert_eq!(conn.call(op::CHECK_WATCHES, &check(5)).await.err, err::OK);
        assert_eq!(conn.call(op::CHECK_WATCHES, &check(4)).await.err, err::NO_WATCHER);
        assert_eq!(conn.call(op::CHECK_WATCHES, &check(1)).await.err, err::NO_WATCHER);
        assert_eq!(conn.call(op::CHECK_WATCHES, &check(2)).await.err, err::NO_WATCHER);
        5
    } else {
        3
    };
    assert_eq!(conn.call(op::REMOVE_WATCHES, &check(removal_type)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &check(3)).await.err, err::NO_WATCHER);
    writer.create("/aw/y", b"", 0).await;
    barrier(&mut conn).await;
    assert!(conn.take_events().is_empty(), "removed recursive watch stays silent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_remove_watches() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let (mut writer, _) = Conn::session(&server.addr(), 30_000).await;
    let body = |path: &str, t: i32| Jute::new().ustring(path).int(t).bytes();

    let newest = server.behaves_like_at_least(3, 9, 0);
    let types = if newest { 1..=5 } else { 1..=3 };
    for t in types {
        assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", t)).await.err, err::NO_WATCHER);
        assert_eq!(conn.call(op::REMOVE_WATCHES, &body("/nw", t)).await.err, err::NO_WATCHER);
    }

    conn.call(op::EXISTS, &raw::path_watch_body("/nw", true)).await;
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 2)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 3)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 1)).await.err, err::NO_WATCHER);
    // Watches belong to the connection that set them. (3.8's WatchManager.containsWatcher
    // answered for any watcher of the path; 3.9 checks the caller's own.)
    if newest {
        let other = writer.call(op::CHECK_WATCHES, &body("/nw", 3)).await;
        assert_eq!(other.err, err::NO_WATCHER);
    }
    assert_eq!(conn.call(op::REMOVE_WATCHES, &body("/nw", 2)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 2)).await.err, err::NO_WATCHER);
    writer.create("/nw", b"", 0).await;
    barrier(&mut conn).await;
    assert!(conn.take_events().is_empty(), "a removed watch never fires");

    // Persistent (mode 0) lives in both tables; type 4 (3.9+) or Any removes it from both.
    let reply = conn.call(op::ADD_WATCH, &Jute::new().ustring("/nw").int(0).bytes()).await;
    assert_eq!(reply.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 3)).await.err, err::OK);
    if newest {
        assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 4)).await.err, err::OK);
        assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 5)).await.err, err::NO_WATCHER);
        assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 1)).await.err, err::NO_WATCHER);
    }
    let removal_type = if newest { 4 } else { 3 };
    assert_eq!(conn.call(op::REMOVE_WATCHES, &body("/nw", removal_type)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 3)).await.err, err::NO_WATCHER);
    writer.create("/nw/kid", b"", 0).await;
    barrier(&mut conn).await;
    assert!(conn.take_events().is_empty());

    // Child watch, removed by type Any.
    conn.call(op::GET_CHILDREN, &raw::path_watch_body("/nw", true)).await.ok("ls");
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 1)).await.err, err::OK);
    assert_eq!(conn.call(op::REMOVE_WATCHES, &body("/nw", 3)).await.err, err::OK);
    assert_eq!(conn.call(op::CHECK_WATCHES, &body("/nw", 1)).await.err, err::NO_WATCHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_watches_restores_and_catches_up_after_reconnect() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    let client = server.client().await;
    for path in ["/same", "/changed", "/deleted", "/kids"] {
        client.create(path, b"", &PERSISTENT).await.unwrap();
    }
    conn.call(op::GET_DATA, &raw::path_watch_body("/same", true)).await.ok("get");
    let last_zxid = conn.last_zxid;
    drop(conn); // Disconnect without closing the session; server-side watches go with it.

    client.set_data("/changed", b"x", None).await.unwrap();
    client.delete("/deleted", None).await.unwrap();
    client.create("/appeared", b"", &PERSISTENT).await.unwrap();
    client.create("/kids/new", b"", &PERSISTENT).await.unwrap();

    let mut conn = Conn::open(&server.addr()).await;
    let resumed = conn.handshake(&ConnectRequest::reattach(&session, last_zxid)).await;
    assert_eq!(resumed.session_id, session.session_id);
    let body = Jute::new()
        .long(last_zxid)
        .strings(&["/same", "/changed", "/deleted"])
        .strings(&["/appeared", "/still-missing"])
        .strings(&["/kids"])
        .bytes();
    conn.send_with_xid(-8, op::SET_WATCHES, &body).await;
    let reply = conn.reply_for(-8).await;
    assert_eq!(reply.err, err::OK);
    barrier(&mut conn).await;
    let mut events = shape(&conn.take_events());
    events.sort();
    let mut expected = vec![
        note(event::NODE_CREATED, "/appeared"),
        note(event::NODE_DELETED, "/deleted"),
        note(event::NODE_DATA_CHANGED, "/changed"),
        note(event::NODE_CHILDREN_CHANGED, "/kids"),
    ];
    expected.sort();
    assert_eq!(events, expected, "catch-up events for what changed while away");

    // The unchanged ones were re-registered.
    client.set_data("/same", b"y", None).await.unwrap();
    client.create("/still-missing", b"", &PERSISTENT).await.unwrap();
    barrier(&mut conn).await;
    let mut events = shape(&conn.take_events());
    events.sort();
    let mut expected =
        vec![note(event::NODE_DATA_CHANGED, "/same"), note(event::NODE_CREATED, "/still-missing")];
    expected.sort();
    assert_eq!(events, expected);
}
