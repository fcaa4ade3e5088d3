//! Node operations through `zookeeper-client`: every create mode, delete, exists, getData,
//! setData, getChildren(2), getAllChildrenNumber, getEphemerals, sync, the built-in tree, the
//! client-visible error codes and the Stat fields after each operation.

use zookeeper_client as zk;

use crate::harness::{within, Server};
use crate::raw::{self, op, Conn};
use crate::{sorted, EPHEMERAL, EPHEMERAL_SEQUENTIAL, PERSISTENT, PERSISTENT_SEQUENTIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create2_returns_the_new_stat() {
    let server = Server::start();
    let client = server.client().await;

    let (stat, sequence) =
        within("create", client.create("/a", b"hello", &PERSISTENT)).await.unwrap();
    assert_eq!(sequence.into_i64(), -1, "non-sequential create has no sequence");
    assert!(stat.czxid > 0, "{stat:?}");
    assert_eq!(stat.mzxid, stat.czxid);
    assert_eq!(stat.pzxid, stat.czxid);
    assert_eq!(stat.ctime, stat.mtime);
    assert!(stat.ctime > 1_500_000_000_000, "ctime is wall-clock ms: {}", stat.ctime);
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);

    let (data, read_stat) = client.get_data("/a").await.unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(read_stat, stat, "getData returns the stat create2 returned");
    assert_eq!(client.check_stat("/a").await.unwrap(), Some(stat), "exists agrees");

    let (children, root) = client.get_children("/").await.unwrap();
    assert_eq!(sorted(children), ["a", "zookeeper"]);
    assert_eq!(root.pzxid, stat.czxid, "parent pzxid is the create's zxid");
    assert_eq!(root.num_children, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_mode_sets_the_owner_it_should() {
    let server = Server::start();
    let client = server.client().await;
    let session = client.session_id().0;

    let (persistent, _) = client.create("/p", b"", &PERSISTENT).await.unwrap();
    let (ephemeral, _) = client.create("/e", b"", &EPHEMERAL).await.unwrap();
    let (pseq, n1) = client.create("/ps-", b"", &PERSISTENT_SEQUENTIAL).await.unwrap();
    let (eseq, n2) = client.create("/es-", b"", &EPHEMERAL_SEQUENTIAL).await.unwrap();
    let (container, _) = client.create("/c", b"", &crate::CONTAINER).await.unwrap();

    assert_eq!(persistent.ephemeral_owner, 0);
    assert_eq!(ephemeral.ephemeral_owner, session);
    assert_eq!(pseq.ephemeral_owner, 0);
    assert_eq!(eseq.ephemeral_owner, session);
    assert_eq!(container.ephemeral_owner, 0, "containers report owner 0 to clients");
    assert!(!container.is_invalid(), "createContainer answers with a Create2Response");
    // The root's counter counts creates only: /p and /e. The built-in /zookeeper was attached
    // without counting, so the first sequential child of "/" gets 2.
    assert_eq!(n1.into_i64(), 2);
    assert_eq!(n2.into_i64(), 3);

    let names = sorted(client.list_children("/").await.unwrap());
    assert_eq!(names, ["c", "e", "es-0000000003", "p", "ps-0000000002", "zookeeper"]);

    // Another session sees the owner too.
    let other = server.client().await;
    let seen = other.check_stat("/e").await.unwrap().expect("/e exists");
    assert_eq!(seen.ephemeral_owner, session);
    assert_eq!(other.list_ephemerals("/").await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_suffix_comes_from_the_parent_create_count() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/q", b"", &PERSISTENT).await.unwrap();

    let seq = |path: &'static str, options: &'static zk::CreateOptions<'static>| {
        let client = client.clone();
        async move { client.create(path, b"", options).await.unwrap().1.into_i64() }
    };
    assert_eq!(seq("/q/lock-", &PERSISTENT_SEQUENTIAL).await, 0);
    // A plain create advances the counter too.
    client.create("/q/plain", b"", &PERSISTENT).await.unwrap();
    assert_eq!(seq("/q/lock-", &EPHEMERAL_SEQUENTIAL).await, 2);
    // Deletes never rewind it.
    client.delete("/q/plain", None).await.unwrap();
    assert_eq!(seq("/q/x-", &PERSISTENT_SEQUENTIAL).await, 3);
    // A sequential path may end in '/': the name is just the ten digits.
    assert_eq!(seq("/q/", &PERSISTENT_SEQUENTIAL).await, 4);

    let (children, stat) = client.get_children("/q").await.unwrap();
    assert_eq!(
        sorted(children),
        ["0000000004", "lock-0000000000", "lock-0000000002", "x-0000000003"]
    );
    // Reported cversion counts creates and deletes: 5 creates + 1 delete.
    assert_eq!(stat.cversion, 6);
    assert_eq!(stat.num_children, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_counter_is_per_parent() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/a", b"", &PERSISTENT).await.unwrap();
    client.create("/b", b"", &PERSISTENT).await.unwrap();
    for i in 0..3 {
        let (_, n) = client.create("/a/n-", b"", &PERSISTENT_SEQUENTIAL).await.unwrap();
        assert_eq!(n.into_i64(), i);
    }
    let (_, n) = client.create("/b/n-", b"", &PERSISTENT_SEQUENTIAL).await.unwrap();
    assert_eq!(n.into_i64(), 0, "a fresh parent starts at 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_honours_versions() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/d", b"0", &PERSISTENT).await.unwrap();
    client.set_data("/d", b"1", None).await.unwrap();
    client.set_data("/d", b"2", None).await.unwrap();

    assert_eq!(client.delete("/d", Some(1)).await, Err(zk::Error::BadVersion));
    assert_eq!(client.delete("/d", Some(3)).await, Err(zk::Error::BadVersion));
    client.delete("/d", Some(2)).await.unwrap();
    assert_eq!(client.delete("/d", None).await, Err(zk::Error::NoNode));
    assert_eq!(client.check_stat("/d").await.unwrap(), None);

    client.create("/any", b"", &PERSISTENT).await.unwrap();
    client.set_data("/any", b"x", None).await.unwrap();
    client.delete("/any", None).await.unwrap();
    // NoNode wins over the version check.
    assert_eq!(client.delete("/any", Some(0)).await, Err(zk::Error::NoNode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_data_versions_and_stat() {
    let server = Server::start();
    let client = server.client().await;
    let (created, _) = client.create("/s", b"a", &PERSISTENT).await.unwrap();

    let first = client.set_data("/s", b"bb", Some(0)).await.unwrap();
    assert_eq!(first.version, 1);
    assert!(first.mzxid > created.czxid);
    assert_eq!(first.czxid, created.czxid);
    assert_eq!(first.ctime, created.ctime);
    assert!(first.mtime >= created.ctime);
    assert_eq!(first.pzxid, created.pzxid, "setData leaves pzxid alone");
    assert_eq!(first.data_length, 2);
    assert_eq!((first.cversion, first.aversion), (0, 0));

    assert_eq!(client.set_data("/s", b"c", Some(0)).await, Err(zk::Error::BadVersion));
    let second = client.set_data("/s", b"", None).await.unwrap();
    assert_eq!(second.version, 2);
    assert!(second.mzxid > first.mzxid);
    assert_eq!(second.data_length, 0);

    let (data, stat) = client.get_data("/s").await.unwrap();
    assert!(data.is_empty());
    assert_eq!(stat, second);
    assert_eq!(client.set_data("/missing", b"x", None).await, Err(zk::Error::NoNode));
    assert_eq!(client.set_data("/missing", b"x", Some(3)).await, Err(zk::Error::NoNode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_stat_tracks_child_creates_and_deletes() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/p", b"", 0).await;
    let (_, Some(p0)) = conn.exists("/p", false).await else { panic!("/p missing") };
    assert_eq!((p0.cversion, p0.num_children, p0.pzxid), (0, 0, p0.czxid));

    conn.create("/p/a", b"", 0).await;
    conn.create("/p/b", b"", 0).await;
    let (_, Some(a)) = conn.exists("/p/a", false).await else { panic!("/p/a missing") };
    let (_, Some(b)) = conn.exists("/p/b", false).await else { panic!("/p/b missing") };
    let (_, Some(p2)) = conn.exists("/p", false).await else { panic!("/p missing") };
    assert!(b.czxid > a.czxid);
    assert_eq!((p2.cversion, p2.num_children, p2.pzxid), (2, 2, b.czxid));
    assert_eq!((p2.mzxid, p2.version), (p0.mzxid, 0), "child creates do not touch data fields");

    let deleted = conn.call(op::DELETE, &raw::Jute::new().ustring("/p/a").int(-1).bytes()).await;
    assert_eq!(deleted.err, 0);
    assert!(deleted.zxid > b.czxid, "delete reply carries its own zxid");
    let (_, Some(p3)) = conn.exists("/p", false).await else { panic!("/p missing") };
    assert_eq!(p3.pzxid, deleted.zxid, "pzxid moves to the delete's zxid");
    assert_eq!(p3.cversion, 3, "a delete also bumps the reported cversion");
    assert_eq!(p3.num_children, 1);

    // Grandchildren do not affect /p.
    conn.create("/p/b/c", b"", 0).await;
    let (_, Some(p4)) = conn.exists("/p", false).await else { panic!("/p missing") };
    assert_eq!(p4, p3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_children_and_children2() {
    let server = Server::start();
    let client = server.client().await;
    let (parent, _) = client.create("/p", b"data", &PERSISTENT).await.unwrap();
    client.create("/p/a", b"", &PERSISTENT).await.unwrap();
    client.create("/p/b", b"", &EPHEMERAL).await.unwrap();
    let (c, _) = client.create("/p/c", b"", &PERSISTENT).await.unwrap();
    client.create("/p/a/deep", b"", &PERSISTENT).await.unwrap();

    assert_eq!(sorted(client.list_children("/p").await.unwrap()), ["a", "b", "c"]);
    let (children, stat) = client.get_children("/p").await.unwrap();
    assert_eq!(sorted(children), ["a", "b", "c"]);
    assert_eq!(stat.czxid, parent.czxid, "getChildren2 returns the parent's stat");
    assert_eq!(stat.num_children, 3);
    assert_eq!(stat.cversion, 3);
    assert_eq!(stat.pzxid, c.czxid);
    assert_eq!(stat.data_length, 4);

    assert!(client.list_children("/p/c").await.unwrap().is_empty());
    assert_eq!(client.list_children("/nope").await, Err(zk::Error::NoNode));
    assert_eq!(client.get_children("/nope").await, Err(zk::Error::NoNode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_children_number_counts_descendants() {
    let server = Server::start();
    let client = server.client().await;
    for path in ["/n", "/n/a", "/n/a/b", "/n/c", "/nx"] {
        client.create(path, b"", &PERSISTENT).await.unwrap();
    }
    assert_eq!(client.count_descendants_number("/n").await.unwrap(), 3);
    assert_eq!(client.count_descendants_number("/n/a").await.unwrap(), 1);
    assert_eq!(client.count_descendants_number("/n/a/b").await.unwrap(), 0);
    // For "/" every node but the root counts, built-in /zookeeper subtree included.
    let under_zookeeper = client.count_descendants_number("/zookeeper").await.unwrap();
    assert_eq!(client.count_descendants_number("/").await.unwrap(), 5 + 1 + under_zookeeper);
    assert_eq!(client.count_descendants_number("/missing").await, Err(zk::Error::NoNode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_ephemerals_lists_own_session_by_string_prefix() {
    let server = Server::start();
    let mine = server.client().await;
    let theirs = server.client().await;
    mine.create("/e1", b"", &EPHEMERAL).await.unwrap();
    mine.create("/e2", b"", &PERSISTENT).await.unwrap();
    mine.create("/e2/x", b"", &EPHEMERAL).await.unwrap();
    mine.create("/ex", b"", &EPHEMERAL).await.unwrap();
    mine.create("/other", b"", &EPHEMERAL).await.unwrap();
    theirs.create("/e3", b"", &EPHEMERAL).await.unwrap();

    let all = sorted(mine.list_ephemerals("/").await.unwrap());
    assert_eq!(all, ["/e1", "/e2/x", "/ex", "/other"]);
    // A plain string prefix, not a subtree: "/e" matches "/ex" and "/e1".
    assert_eq!(sorted(mine.list_ephemerals("/e").await.unwrap()), ["/e1", "/e2/x", "/ex"]);
    assert_eq!(mine.list_ephemerals("/e2").await.unwrap(), ["/e2/x"]);
    assert!(mine.list_ephemerals("/nothing").await.unwrap().is_empty(), "no NoNode");
    assert_eq!(theirs.list_ephemerals("/").await.unwrap(), ["/e3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_answers_for_any_path() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/s", b"", &PERSISTENT).await.unwrap();
    within("sync /s", client.sync("/s")).await.unwrap();
    within("sync /", client.sync("/")).await.unwrap();
    // The path is echoed, not looked up.
    within("sync missing", client.sync("/does/not/exist")).await.unwrap();

    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = conn.call(op::SYNC, &raw::path_body("/does/not/exist")).await.ok("sync");
    assert_eq!(reply.reader().ustring(), "/does/not/exist", "SyncResponse echoes the path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_tree() {
    let server = Server::start();
    let client = server.client().await;
    assert_eq!(client.list_children("/").await.unwrap(), ["zookeeper"]);
    assert_eq!(sorted(client.list_children("/zookeeper").await.unwrap()), ["config", "quota"]);
    // Built-in nodes are attached without counting creates: reported cversion is negative.
    let (_, root) = client.get_children("/").await.unwrap();
    assert_eq!((root.cversion, root.num_children), (-1, 1), "{root:?}");
    let (_, zookeeper) = client.get_children("/zookeeper").await.unwrap();
    assert_eq!((zookeeper.cversion, zookeeper.num_children), (-2, 2), "{zookeeper:?}");
    let (acl, _) = client.get_acl("/").await.unwrap();
    assert_eq!(acl, [zk::Acl::new(zk::Permission::ALL, zk::AuthId::anyone())]);

    for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(client.delete(path, None).await, Err(crate::SERVER_BAD_ARGUMENTS), "{path}");
    }
    let (data, _) = client.get_config().await.unwrap();
    assert!(data.is_empty(), "standalone /zookeeper/config is empty: {data:?}");
    let (config_acl, _) = client.get_acl("/zookeeper/config").await.unwrap();
    assert_eq!(config_acl, [zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_of_node_operations() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/x", b"", &PERSISTENT).await.unwrap();
    client.create("/x/child", b"", &PERSISTENT).await.unwrap();
    client.create("/eph", b"", &EPHEMERAL).await.unwrap();

    assert_eq!(client.create("/x", b"", &PERSISTENT).await, Err(zk::Error::NodeExists));
    assert_eq!(client.create("/no/parent", b"", &PERSISTENT).await, Err(zk::Error::NoNode));
    let under_ephemeral = client.create("/eph/child", b"", &PERSISTENT).await;
    assert_eq!(under_ephemeral, Err(zk::Error::NoChildrenForEphemerals));
    let seq_under_ephemeral = client.create("/eph/s-", b"", &EPHEMERAL_SEQUENTIAL).await;
    assert_eq!(seq_under_ephemeral, Err(zk::Error::NoChildrenForEphemerals));
    assert_eq!(client.delete("/x", None).await, Err(zk::Error::NotEmpty));
    assert_eq!(client.delete("/x", Some(7)).await, Err(zk::Error::BadVersion), "version first");
    assert_eq!(client.get_data("/missing").await, Err(zk::Error::NoNode));
    assert_eq!(client.get_acl("/missing").await, Err(zk::Error::NoNode));
    let set_acl = client.set_acl("/missing", zk::Acls::anyone_all().as_ref(), None).await;
    assert_eq!(set_acl, Err(zk::Error::NoNode));
    assert_eq!(client.check_stat("/missing").await, Ok(None));
}
