//! multi (op 14) and multiRead (op 22): atomic success, rollback with per-op results, the
//! shared zxid, speculative validation against earlier ops, result record types, and reads.

use zookeeper_client as zk;

use crate::harness::Server;
use crate::raw::{self, err, op, parse_multi_results, Conn, Jute};
use crate::PERSISTENT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_applies_all_ops_under_one_zxid() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/gone", b"", &PERSISTENT).await.unwrap();

    let mut writer = client.new_multi_writer();
    writer.add_create("/m", b"one", &PERSISTENT).unwrap();
    writer.add_set_data("/m", b"two", Some(0)).unwrap();
    writer.add_check_version("/m", 1).unwrap();
    writer.add_delete("/gone", None).unwrap();
    writer.add_create("/m/child", b"", &PERSISTENT).unwrap();
    let results = writer.commit().await.unwrap();
    assert_eq!(results.len(), 5);

    let zk::MultiWriteResult::Create { path, stat: created } = &results[0] else {
        panic!("result 0: {:?}", results[0])
    };
    assert_eq!(path, "/m");
    let zk::MultiWriteResult::SetData { stat: set } = &results[1] else {
        panic!("result 1: {:?}", results[1])
    };
    assert_eq!(results[2], zk::MultiWriteResult::Check);
    assert_eq!(results[3], zk::MultiWriteResult::Delete);
    let zk::MultiWriteResult::Create { path, stat: child } = &results[4] else {
        panic!("result 4: {:?}", results[4])
    };
    assert_eq!(path, "/m/child");

    // ZOOKEEPER-4026 (fixed in 3.8.2): before it, create2 inside multi answered as a plain
    // create, without a stat.
    if server.behaves_like_at_least(3, 8, 2) {
        assert_eq!(child.czxid, created.czxid, "every sub-op shares the multi's zxid");
        assert_eq!(set.mzxid, created.czxid, "every sub-op shares the multi's zxid");
    } else {
        assert!(created.is_invalid() && child.is_invalid());
    }
    assert_eq!(set.version, 1);
    let (data, stat) = client.get_data("/m").await.unwrap();
    assert_eq!(data, b"two");
    assert_eq!(stat.num_children, 1);
    assert_eq!(stat.pzxid, set.mzxid);
    assert_eq!(client.check_stat("/gone").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_rolls_back_everything() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/keep", b"old", &PERSISTENT).await.unwrap();

    let mut writer = client.new_multi_writer();
    writer.add_create("/r1", b"", &PERSISTENT).unwrap();
    writer.add_set_data("/keep", b"new", None).unwrap();
    writer.add_check_version("/keep", 5).unwrap();
    writer.add_create("/r2", b"", &PERSISTENT).unwrap();
    let failure = writer.commit().await.unwrap_err();
    assert_eq!(
        failure,
        zk::MultiWriteError::OperationFailed { index: 2, source: zk::Error::BadVersion }
    );

    assert_eq!(client.check_stat("/r1").await.unwrap(), None);
    assert_eq!(client.check_stat("/r2").await.unwrap(), None);
    let (data, stat) = client.get_data("/keep").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"old"[..], 0));

    let mut writer = client.new_multi_writer();
    writer.add_create("/keep", b"", &PERSISTENT).unwrap();
    let failure = writer.commit().await.unwrap_err();
    assert_eq!(
        failure,
        zk::MultiWriteError::OperationFailed { index: 0, source: zk::Error::NodeExists }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_multi_reports_each_op_and_consumes_a_zxid() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let before = conn.call(op::CREATE, &raw::create_body("/x", Some(b""), 0)).await.ok("create");

    let body = raw::multi_body(&[
        (op::CREATE, raw::create_body("/y", Some(b""), 0)),
        (op::DELETE, Jute::new().ustring("/missing").int(-1).bytes()),
        (op::SET_DATA, Jute::new().ustring("/x").buffer(Some(b"v")).int(-1).bytes()),
    ]);
    let reply = conn.call(op::MULTI, &body).await;
    assert_eq!(reply.err, err::OK, "a rolled-back multi still has header err 0");
    let results = parse_multi_results(&reply.body);
    assert_eq!(results, [(-1, err::OK), (-1, err::NO_NODE), (-1, err::RUNTIME_INCONSISTENCY)]);
    assert_eq!(reply.zxid, before.zxid + 1, "the failed multi consumed one zxid");

    let (code, stat) = conn.exists("/y", false).await;
    assert_eq!((code, stat), (err::NO_NODE, None));
    let after = conn.call(op::CREATE2, &raw::create_body("/z", Some(b""), 0)).await.ok("create2");
    let mut r = after.reader();
    assert_eq!(r.ustring(), "/z");
    assert_eq!(r.stat().czxid, reply.zxid + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_result_types_and_speculative_view() {
    let server =
        Server::start_with(crate::harness::Options::with_lines(&["extendedTypesEnabled=true"]));
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let ttl_body = Jute::new()
        .ustring("/ttl")
        .buffer(Some(b""))
        .acls(raw::OPEN_ACL)
        .int(5)
        .long(60_000)
        .bytes();
    let body = raw::multi_body(&[
        (op::CREATE, raw::create_body("/a", Some(b""), 0)),
        (op::CREATE2, raw::create_body("/b", Some(b""), 0)),
        (op::CREATE_CONTAINER, raw::create_body("/c", Some(b""), 4)),
        (op::CREATE_TTL, ttl_body),
        (op::SET_DATA, Jute::new().ustring("/a").buffer(Some(b"1")).int(0).bytes()),
        // Sees the setData just above: version 1.
        (op::CHECK, Jute::new().ustring("/a").int(1).bytes()),
        (op::DELETE, Jute::new().ustring("/b").int(0).bytes()),
        (op::CREATE, raw::create_body("/a/s-", Some(b""), 2)),
    ]);
    let reply = conn.call(op::MULTI, &body).await.ok("multi");
    let results = parse_multi_results(&reply.body);
    // ZOOKEEPER-4026 (fixed in 3.8.2): create2 results used to be reported as type 1.
    let create2 = if server.behaves_like_at_least(3, 8, 2) { op::CREATE2 } else { op::CREATE };
    let expected = [
        (op::CREATE, 0),
        (create2, 0),
        (op::CREATE2, 0), // container results are reported as create2
        (op::CREATE2, 0), // so are TTL results
        (op::SET_DATA, 0),
        (op::CHECK, 0),
        (op::DELETE, 0),
        (op::CREATE, 0),
    ];
    assert_eq!(results, expected);

    // The sequential create inside the multi got its suffix from the speculative parent.
    let children = conn.call(op::GET_CHILDREN, &raw::path_watch_body("/a", false)).await;
    assert_eq!(children.ok("ls /a").reader().strings(), ["s-0000000000"]);

    // An empty multi is accepted and answers with just the terminator.
    let empty = conn.call(op::MULTI, &raw::multi_body(&[])).await.ok("empty multi");
    assert!(parse_multi_results(&empty.body).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_read_answers_each_op_independently() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/a", b"data", &PERSISTENT).await.unwrap();
    client.create("/a/x", b"", &PERSISTENT).await.unwrap();

    let mut reader = client.new_multi_reader();
    reader.add_get_data("/a").unwrap();
    reader.add_get_children("/a").unwrap();
    reader.add_get_data("/missing").unwrap();
    reader.add_get_children("/a/x").unwrap();
    let results = reader.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    match &results[0] {
        zk::MultiReadResult::Data { data, stat } => {
            assert_eq!(data, b"data");
            assert_eq!(stat.num_children, 1);
        }
        other => panic!("result 0: {other:?}"),
    }
    match &results[1] {
        zk::MultiReadResult::Children { children } => assert_eq!(children, &["x"]),
        other => panic!("result 1: {other:?}"),
    }
    match &results[2] {
        zk::MultiReadResult::Error { err } => assert_eq!(err, &zk::Error::NoNode),
        other => panic!("result 2: {other:?}"),
    }
    match &results[3] {
        zk::MultiReadResult::Children { children } => assert!(children.is_empty()),
        other => panic!("result 3: {other:?}"),
    }

    // Raw: result types 4 and 8, errors as type -1; header err 0.
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let body = raw::multi_body(&[
        (op::GET_DATA, raw::path_watch_body("/a", false)),
        (op::GET_CHILDREN, raw::path_watch_body("/missing", false)),
        (op::GET_CHILDREN, raw::path_watch_body("/a", false)),
    ]);
    let reply = conn.call(op::MULTI_READ, &body).await.ok("multiRead");
    let results = parse_multi_results(&reply.body);
    assert_eq!(results, [(op::GET_DATA, 0), (-1, err::NO_NODE), (op::GET_CHILDREN, 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_version_inside_multi() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/c", b"", &PERSISTENT).await.unwrap();
    client.set_data("/c", b"1", None).await.unwrap();

    let mut writer = client.new_check_writer("/c", Some(1)).unwrap();
    writer.add_create("/c/ok", b"", &PERSISTENT).unwrap();
    writer.commit().await.unwrap();

    let mut writer = client.new_multi_writer();
    writer.add_check_version("/c", 0).unwrap();
    let failure = writer.commit().await.unwrap_err();
    assert_eq!(
        failure,
        zk::MultiWriteError::OperationFailed { index: 0, source: zk::Error::BadVersion }
    );
    let mut writer = client.new_multi_writer();
    writer.add_check_version("/nope", -1).unwrap();
    let failure = writer.commit().await.unwrap_err();
    assert_eq!(
        failure,
        zk::MultiWriteError::OperationFailed { index: 0, source: zk::Error::NoNode }
    );
    // check needs READ on the node.
    let no_read = [zk::Acl::new(zk::Permission::WRITE, zk::AuthId::anyone())];
    client
        .create("/hidden", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&no_read)))
        .await
        .unwrap();
    let mut writer = client.new_multi_writer();
    writer.add_check_version("/hidden", 0).unwrap();
    let failure = writer.commit().await.unwrap_err();
    assert_eq!(
        failure,
        zk::MultiWriteError::OperationFailed { index: 0, source: zk::Error::NoAuth }
    );
    // Version -1 matches any version.
    let mut writer = client.new_multi_writer();
    writer.add_check_version("/c", -1).unwrap();
    assert_eq!(writer.commit().await.unwrap(), [zk::MultiWriteResult::Check]);
}
