//! Raw protocol behaviour: framing limits, garbage, unknown opcodes, pings, reply order and
//! xid echo, header-only error replies, path validation (BadArguments), null vs empty data, and
//! the server staying healthy for everyone else after a bad connection.

use zookeeper_client as zk;

use crate::harness::{Options, Server};
use crate::raw::{self, err, op, Conn, Jute};

/// A fresh session on `server` answers a ping: the server is still healthy.
async fn assert_serving(server: &Server) {
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = conn.ping().await;
    assert_eq!((reply.xid, reply.err), (-2, err::OK));
    conn.create("/healthy", b"", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_before_the_handshake_closes_only_that_connection() {
    let server = Server::start();
    let (mut bystander, _) = Conn::session(&server.addr(), 30_000).await;

    // A frame of the right size whose content is not a ConnectRequest.
    let mut conn = Conn::open(&server.addr()).await;
    conn.send_bytes(&[0, 0, 0, 10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6]).await;
    conn.expect_closed().await;

    // Text that is not a four-letter word: read as an absurd length.
    let mut conn = Conn::open(&server.addr()).await;
    let _ = conn.try_send_bytes(b"GARBAGE GARBAGE GARBAGE\r\n").await;
    conn.expect_closed().await;

    // A negative length.
    let mut conn = Conn::open(&server.addr()).await;
    let _ = conn.try_send_bytes(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).await;
    conn.expect_closed().await;

    bystander.ping().await.ok("bystander ping");
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_the_connection() {
    let server = Server::start();
    let (mut bystander, _) = Conn::session(&server.addr(), 30_000).await;
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    // Above jute.maxbuffer (0xfffff): the server closes without reading the body.
    let len: i32 = 2 * 1024 * 1024;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&Jute::new().int(1).int(op::CREATE).bytes());
    let _ = conn.try_send_bytes(&frame).await;
    conn.expect_closed().await;

    bystander.ping().await.ok("bystander ping");
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_just_below_the_frame_limit_is_accepted() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let data = vec![7u8; 1_000_000];
    conn.create("/big", &data, 0).await;
    let reply = conn.call(op::GET_DATA, &raw::path_watch_body("/big", false)).await.ok("get");
    let mut r = reply.reader();
    assert_eq!(r.buffer().expect("data").len(), data.len());
    assert_eq!(r.stat().data_length, data.len() as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcode_gets_unimplemented_then_close() {
    let server = Server::start();
    // The opcode alone decides, before the body is decoded: a well-formed {path, int} body
    // and a truncated one get the same answer.
    let well_formed = Jute::new().ustring("/").int(-1).bytes();
    let truncated = vec![0, 0];
    let mut cases = Vec::new();
    for opcode in [999, 10, 0, 200, -100] {
        cases.push((opcode, well_formed.clone()));
        cases.push((opcode, truncated.clone()));
    }
    // Outside multi, check (13) is invalid since 3.9 (3.8 tried to run it).
    if server.behaves_like_at_least(3, 9, 0) {
        cases.push((op::CHECK, well_formed.clone()));
        cases.push((op::CHECK, truncated.clone()));
    }
    for (opcode, body) in cases {
        let what = format!("op {opcode} with a {}-byte body", body.len());
        let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
        let xid = conn.send_request(opcode, &body).await;
        let reply = conn.try_reply_for(xid).await;
        let reply = reply.unwrap_or_else(|| panic!("{what}: closed without a reply"));
        assert_eq!(reply.xid, xid, "{what}");
        assert_eq!(reply.err, err::UNIMPLEMENTED, "{what}");
        assert_eq!(reply.zxid, -1, "{what}");
        assert!(reply.body.is_empty(), "{what}");
        conn.expect_closed().await;
    }
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_echo_xids_in_request_order() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/o", b"", 0).await;
    // Pipeline a mix of reads, writes and failures without waiting, with arbitrary xids.
    let xids = [1000, 7, 42, 5000, 3, 99, 12345, 8, 77, 31];
    for (i, xid) in xids.iter().enumerate() {
        let (opcode, body) = match i % 4 {
            0 => (op::CREATE, raw::create_body(&format!("/o/n{i}"), Some(b""), 0)),
            1 => (op::GET_DATA, raw::path_watch_body("/o", false)),
            2 => (op::GET_DATA, raw::path_watch_body("/missing", false)),
            _ => (op::SET_DATA, Jute::new().ustring("/o").buffer(Some(b"x")).int(-1).bytes()),
        };
        conn.send_with_xid(*xid, opcode, &body).await;
    }
    let mut last_zxid = 0;
    for (i, xid) in xids.iter().enumerate() {
        let reply = conn.reply_for(*xid).await;
        assert_eq!(reply.err, if i % 4 == 2 { err::NO_NODE } else { err::OK }, "reply {i}");
        assert!(reply.zxid >= last_zxid, "reply zxids never go backwards");
        last_zxid = reply.zxid;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_error_replies_are_header_only() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let created = conn.call(op::CREATE, &raw::create_body("/p", Some(b""), 0)).await.ok("create");
    let ping = conn.ping().await;
    assert_eq!((ping.xid, ping.err), (-2, err::OK));
    assert!(ping.body.is_empty());
    assert_eq!(ping.zxid, created.zxid, "ping carries the last applied zxid");

    let missing = conn.call(op::GET_DATA, &raw::path_watch_body("/missing", false)).await;
    assert_eq!(missing.err, err::NO_NODE);
    assert!(missing.body.is_empty(), "error replies have no body");
    let exists = conn.call(op::EXISTS, &raw::path_watch_body("/missing", false)).await;
    assert_eq!(exists.err, err::NO_NODE);
    assert!(exists.body.is_empty());
    let dup = conn.call(op::CREATE, &raw::create_body("/p", Some(b""), 0)).await;
    assert_eq!(dup.err, err::NODE_EXISTS);
    assert!(dup.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_paths_are_bad_arguments_for_writes() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/a", b"", 0).await;
    // create checks that the parent exists before validating the full path, so an invalid
    // path whose "parent" is missing is NoNode; setData validates first.
    let invalid = [
        ("a", err::BAD_ARGUMENTS),
        ("/a/", err::BAD_ARGUMENTS),
        ("/a//b", err::NO_NODE),
        ("/a/./b", err::NO_NODE),
        ("/a/../b", err::NO_NODE),
        ("/a/.", err::BAD_ARGUMENTS),
        ("/a/..", err::BAD_ARGUMENTS),
        ("/a/b\u{0}", err::BAD_ARGUMENTS),
        ("/a/b\u{1}", err::BAD_ARGUMENTS),
        ("/a/b\u{7f}", err::BAD_ARGUMENTS),
        ("/a/b\u{9f}", err::BAD_ARGUMENTS),
        ("/a/b\u{e000}", err::BAD_ARGUMENTS),
        ("/a/b\u{fff5}", err::BAD_ARGUMENTS),
        ("/a\u{1}/b", err::NO_NODE),
    ];
    for (path, code) in invalid {
        let create = conn.call(op::CREATE, &raw::create_body(path, Some(b""), 0)).await;
        assert_eq!(create.err, code, "create {path:?}");
        let set = Jute::new().ustring(path).buffer(Some(b"")).int(-1).bytes();
        assert_eq!(conn.call(op::SET_DATA, &set).await.err, err::BAD_ARGUMENTS, "setData {path:?}");
    }
    // Reads do not validate: an invalid path is simply not there.
    for path in ["/a/", "/a//b", "/a/./b"] {
        let get = conn.call(op::GET_DATA, &raw::path_watch_body(path, false)).await;
        assert_eq!(get.err, err::NO_NODE, "getData {path:?}");
    }
    // Spaces, colons and other printable characters are fine.
    conn.create("/a/with space:and-üñí", b"", 0).await;
    // '.' and '..' are only forbidden as whole components.
    conn.create("/a/.hidden", b"", 0).await;
    conn.create("/a/..x", b"", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_and_built_in_nodes_cannot_be_deleted() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        let reply = conn.call(op::DELETE, &Jute::new().ustring(path).int(-1).bytes()).await;
        assert_eq!(reply.err, err::BAD_ARGUMENTS, "delete {path}");
    }
    let reply = conn.call(op::CREATE, &raw::create_body("/", Some(b""), 0)).await;
    assert_eq!(reply.err, err::NODE_EXISTS, "create /");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_and_empty_data_are_distinct() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = conn.call(op::CREATE, &raw::create_body("/null", None, 0)).await;
    reply.ok("create with null data");
    conn.create("/empty", b"", 0).await;

    let null = conn.call(op::GET_DATA, &raw::path_watch_body("/null", false)).await.ok("get");
    let mut r = null.reader();
    assert_eq!(r.buffer(), None, "null data reads back as length -1");
    assert_eq!(r.stat().data_length, 0);
    let empty = conn.call(op::GET_DATA, &raw::path_watch_body("/empty", false)).await.ok("get");
    let mut r = empty.reader();
    assert_eq!(r.buffer(), Some(Vec::new()));
    assert_eq!(r.stat().data_length, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_read_replies() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/r", b"abc", 0).await;
    conn.create("/r/e", b"", 1).await;

    let reply = conn.call(op::GET_CHILDREN2, &raw::path_watch_body("/r", false)).await.ok("ls2");
    let mut r = reply.reader();
    assert_eq!(r.strings(), ["e"]);
    let stat = r.stat();
    assert_eq!((stat.num_children, stat.data_length), (1, 3));
    assert_eq!(r.remaining(), 0);

    let reply = conn.call(op::GET_ACL, &raw::path_body("/r")).await.ok("getACL");
    let mut r = reply.reader();
    assert_eq!(r.acls(), [(31, "world".to_string(), "anyone".to_string())]);
    assert_eq!(r.stat().czxid, stat.czxid);
    assert_eq!(r.remaining(), 0);

    let reply = conn.call(op::GET_ALL_CHILDREN_NUMBER, &raw::path_body("/r")).await.ok("count");
    assert_eq!(reply.body, 1i32.to_be_bytes());

    let reply = conn.call(op::GET_EPHEMERALS, &raw::path_body("/")).await.ok("ephemerals");
    assert_eq!(reply.reader().strings(), ["/r/e"]);

    let reply = conn.call(op::EXISTS, &raw::path_watch_body("/r/e", false)).await.ok("exists");
    let mut r = reply.reader();
    assert_eq!(r.stat().ephemeral_owner, session.session_id);
    assert_eq!(r.remaining(), 0);

    let reply = conn.call(op::WHO_AM_I, &[]).await.ok("whoAmI");
    let mut r = reply.reader();
    assert_eq!(r.int(), 1);
    assert_eq!((r.ustring(), r.ustring()), ("ip".to_string(), "127.0.0.1".to_string()));

    let set = Jute::new().ustring("/r").buffer(Some(b"xy")).int(0).bytes();
    let reply = conn.call(op::SET_DATA, &set).await.ok("setData");
    let mut r = reply.reader();
    let stat = r.stat();
    assert_eq!((stat.version, stat.data_length), (1, 2));
    assert_eq!(stat.mzxid, reply.zxid, "a write's reply zxid is its own txn");
    assert_eq!(r.remaining(), 0);

    let create = conn.call(op::CREATE, &raw::create_body("/plain", Some(b""), 0)).await;
    let create = create.ok("create");
    let mut r = create.reader();
    assert_eq!(r.ustring(), "/plain");
    assert_eq!(r.remaining(), 0, "op 1 answers with the path only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_marshalling_errors() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/m", b"", 0).await;
    let cases: Vec<(&str, i32, Vec<u8>)> = vec![
        ("truncated getData", op::GET_DATA, vec![0, 0]),
        ("checkWatches type 9", op::CHECK_WATCHES, Jute::new().ustring("/m").int(9).bytes()),
        ("removeWatches type 0", op::REMOVE_WATCHES, Jute::new().ustring("/m").int(0).bytes()),
        ("addWatch mode 7", op::ADD_WATCH, Jute::new().ustring("/m").int(7).bytes()),
        (
            "read inside multi",
            op::MULTI,
            raw::multi_body(&[(op::GET_DATA, raw::path_watch_body("/m", false))]),
        ),
        (
            "write inside multiRead",
            op::MULTI_READ,
            raw::multi_body(&[(op::CREATE, raw::create_body("/m/x", Some(b""), 0))]),
        ),
    ];
    for (what, opcode, body) in cases {
        let reply = conn.call(opcode, &body).await;
        assert_eq!(reply.err, err::MARSHALLING_ERROR, "{what}");
        // Only the code here: the exact bytes (zxid, the multiRead case's empty
        // MultiResponse) are in error_replies.rs.
    }
    assert_eq!(conn.exists("/m/x", false).await.0, err::NO_NODE);
    conn.ping().await.ok("the connection stays usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exists_rejects_nul_but_not_other_invalid_paths() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(conn.exists("/a\u{0}b", false).await.0, err::BAD_ARGUMENTS);
    assert_eq!(conn.exists("/a//b", false).await.0, err::NO_NODE);
    assert_eq!(conn.exists("no-slash", false).await.0, err::NO_NODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_on_the_wire() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/e", b"", 1).await;
    conn.create("/full", b"", 0).await;
    conn.create("/full/kid", b"", 0).await;
    let read_only =
        Jute::new().ustring("/ro").buffer(Some(b"")).acls(&[(1, "world", "anyone")]).int(0).bytes();
    conn.call(op::CREATE, &read_only).await.ok("create /ro");

    let delete = |path: &str, version: i32| Jute::new().ustring(path).int(version).bytes();
    let set = |path: &str, version: i32| {
        Jute::new().ustring(path).buffer(Some(b"x")).int(version).bytes()
    };
    let cases: Vec<(&str, i32, Vec<u8>, i32)> = vec![
        (
            "create under ephemeral",
            op::CREATE,
            raw::create_body("/e/x", Some(b""), 0),
            err::NO_CHILDREN_FOR_EPHEMERALS,
        ),
        ("create existing", op::CREATE, raw::create_body("/full", Some(b""), 0), err::NODE_EXISTS),
        (
            "create without parent",
            op::CREATE,
            raw::create_body("/no/x", Some(b""), 0),
            err::NO_NODE,
        ),
        ("delete non-empty", op::DELETE, delete("/full", -1), err::NOT_EMPTY),
        ("delete bad version", op::DELETE, delete("/full/kid", 3), err::BAD_VERSION),
        ("delete missing", op::DELETE, delete("/full/none", -1), err::NO_NODE),
        ("setData bad version", op::SET_DATA, set("/full", 1), err::BAD_VERSION),
        ("setData without WRITE", op::SET_DATA, set("/ro", -1), err::NO_AUTH),
        (
            "create under read-only",
            op::CREATE,
            raw::create_body("/ro/x", Some(b""), 0),
            err::NO_AUTH,
        ),
    ];
    for (what, opcode, body, code) in cases {
        let reply = conn.call(opcode, &body).await;
        assert_eq!(reply.err, code, "{what}");
        assert!(reply.body.is_empty(), "{what}: error replies are header-only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_is_disabled_by_default() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let body = Jute::new().ustring("").ustring("").ustring("server.1=127.0.0.1:2888:3888").long(-1);
    let reply = conn.call(op::RECONFIG, &body.bytes()).await;
    assert_eq!(reply.err, err::RECONFIG_DISABLED);
    assert!(reply.body.is_empty());
    conn.ping().await.ok("the connection stays open");

    let client = server.client().await;
    let update = zk::EnsembleUpdate::New { ensemble: ["server.1=127.0.0.1:2888:3888"].into_iter() };
    assert_eq!(client.update_ensemble(update, None).await, Err(zk::Error::ReconfigDisabled));

    // Enabled, a standalone server still cannot reconfigure: Unimplemented, and unlike an
    // unknown opcode the connection stays open.
    let enabled = Server::start_with(Options::with_lines(&["reconfigEnabled=true"]));
    let (mut conn, _) = Conn::session(&enabled.addr(), 30_000).await;
    let body = Jute::new().ustring("").ustring("").ustring("server.1=127.0.0.1:2888:3888").long(-1);
    let reply = conn.call(op::RECONFIG, &body.bytes()).await;
    assert_eq!(reply.err, err::UNIMPLEMENTED);
    conn.ping().await.ok("the connection stays open");
}
