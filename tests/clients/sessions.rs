//! Sessions: the ConnectResponse shape, timeout negotiation, closeSession, expiry of a silent
//! client, reattaching with id + password, and the "invalid session" answer
//! (timeOut = 0, sessionId = 0, 16 zero bytes) for wrong passwords and dead sessions.

use std::time::Duration;

use zookeeper_client as zk;

use crate::harness::{within, Server, TICK_MS};
use crate::raw::{self, err, event, op, Conn, ConnectRequest, ConnectResponse};
use crate::{EPHEMERAL, PERSISTENT};

fn assert_invalid_session(response: &ConnectResponse) {
    assert_eq!(response.protocol_version, 0);
    assert_eq!(response.timeout_ms, 0, "{response:?}");
    assert_eq!(response.session_id, 0, "{response:?}");
    assert_eq!(response.password, [0u8; 16], "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_response_shape_and_read_only_byte() {
    let server = Server::start();
    let mut conn = Conn::open(&server.addr()).await;
    let response = conn.handshake(&ConnectRequest::new_session(10_000)).await;
    assert_eq!(response.protocol_version, 0);
    assert_eq!(response.timeout_ms, 10_000);
    assert_ne!(response.session_id, 0);
    assert_eq!(response.password.len(), 16);
    assert_eq!(response.read_only, Some(false));
    assert_eq!(response.payload_len, 37);
    conn.ping().await.ok("ping");

    // A pre-3.4 client omits the readOnly byte; the answer omits it too.
    let mut old = Conn::open(&server.addr()).await;
    let request = ConnectRequest { read_only: None, ..ConnectRequest::new_session(10_000) };
    let response = old.handshake(&request).await;
    assert_eq!(response.payload_len, 36);
    assert_eq!(response.read_only, None);
    assert_ne!(response.session_id, 0);
    old.ping().await.ok("ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_is_clamped_to_the_configured_bounds() {
    let server = Server::start_with(crate::harness::Options::with_lines(&[
        "minSessionTimeout=4000",
        "maxSessionTimeout=8000",
    ]));
    for (asked, granted) in [(1, 4000), (4000, 4000), (6000, 6000), (8000, 8000), (1_000_000, 8000)]
    {
        let (_conn, response) = Conn::session(&server.addr(), asked).await;
        assert_eq!(response.timeout_ms, granted, "asked for {asked}");
    }
    // Defaults are 2 and 20 ticks (the harness raises the maximum; the minimum is the default).
    let default = Server::start();
    let (_conn, response) = Conn::session(&default.addr(), 1).await;
    assert_eq!(response.timeout_ms, 2 * TICK_MS as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_sessions_and_passwords() {
    let server = Server::start();
    let (_a, first) = Conn::session(&server.addr(), 10_000).await;
    let (_b, second) = Conn::session(&server.addr(), 10_000).await;
    assert_ne!(first.session_id, second.session_id);
    assert_ne!(first.password, [0u8; 16]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_deletes_its_ephemerals() {
    let server = Server::start();
    let owner = server.client().await;
    let observer = server.client().await;
    owner.create("/dir", b"", &PERSISTENT).await.unwrap();
    owner.create("/dir/eph", b"", &EPHEMERAL).await.unwrap();
    owner.create("/eph2", b"", &EPHEMERAL).await.unwrap();
    let (_, deleted) = observer.check_and_watch_stat("/dir/eph").await.unwrap();
    let (_, children) = observer.list_and_watch_children("/dir").await.unwrap();

    let mut state = owner.state_watcher();
    drop(owner); // the last handle: the crate sends closeSession
    assert_eq!(within("owner closed", state.changed()).await, zk::SessionState::Closed);

    let event = within("NodeDeleted", deleted.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDeleted, "/dir/eph"));
    let event = within("NodeChildrenChanged", children.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeChildrenChanged);
    assert_eq!(observer.check_stat("/dir/eph").await.unwrap(), None);
    assert_eq!(observer.check_stat("/eph2").await.unwrap(), None);
    assert!(observer.check_stat("/dir").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_replies_then_closes_and_the_session_is_gone() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/mine", b"", 1).await;
    let reply = conn.call(op::CLOSE_SESSION, &[]).await;
    assert_eq!(reply.err, err::OK);
    assert!(reply.body.is_empty());
    conn.expect_closed().await;

    let (mut other, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(other.exists("/mine", false).await.0, err::NO_NODE);

    let mut again = Conn::open(&server.addr()).await;
    let response = again.handshake(&ConnectRequest::reattach(&session, 0)).await;
    assert_invalid_session(&response);
    again.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reattaching_with_id_and_password_keeps_the_session() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/kept", b"", 1).await;
    let last_zxid = conn.last_zxid;
    drop(conn); // TCP gone, session alive

    let mut conn = Conn::open(&server.addr()).await;
    let resumed = conn.handshake(&ConnectRequest::reattach(&session, last_zxid)).await;
    assert_eq!(resumed.session_id, session.session_id);
    assert_eq!(resumed.password, session.password);
    assert_eq!(resumed.timeout_ms, session.timeout_ms);
    let (code, stat) = conn.exists("/kept", false).await;
    assert_eq!(code, err::OK);
    assert_eq!(stat.expect("stat").ephemeral_owner, session.session_id);
    conn.create("/kept2", b"", 1).await;
    let ephemerals = conn.call(op::GET_EPHEMERALS, &raw::path_body("/")).await.ok("getEphemerals");
    let mut names = ephemerals.reader().strings();
    names.sort();
    assert_eq!(names, ["/kept", "/kept2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reattaching_moves_the_session_off_the_old_connection() {
    let server = Server::start();
    let (mut first, session) = Conn::session(&server.addr(), 30_000).await;
    first.create("/moved", b"", 1).await;
    let mut second = Conn::open(&server.addr()).await;
    let resumed = second.handshake(&ConnectRequest::reattach(&session, first.last_zxid)).await;
    assert_eq!(resumed.session_id, session.session_id);
    // The server closes the session's other connection.
    first.expect_closed().await;
    second.ping().await.ok("ping on the new connection");
    assert_eq!(second.exists("/moved", false).await.0, err::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_the_session_survives() {
    let server = Server::start();
    let (mut owner, session) = Conn::session(&server.addr(), 30_000).await;
    owner.create("/still", b"", 1).await;

    let mut bad = session.clone();
    bad.password[0] ^= 0xff;
    let mut intruder = Conn::open(&server.addr()).await;
    let response = intruder.handshake(&ConnectRequest::reattach(&bad, 0)).await;
    assert_invalid_session(&response);
    assert_eq!(response.read_only, Some(false));
    intruder.expect_closed().await;
    // ZK compat: ZooKeeperServer.processConnectRequest closes the session's current
    // connection before it checks the password, so the owner is disconnected as well: that
    // happened before the intruder got its answer, so the owner's next request finds the
    // connection closed.
    assert!(owner.try_ping().await.is_none(), "the owner's connection should have been closed");

    let mut unknown = session.clone();
    unknown.session_id ^= 0x00ff_0000;
    let mut stranger = Conn::open(&server.addr()).await;
    assert_invalid_session(&stranger.handshake(&ConnectRequest::reattach(&unknown, 0)).await);
    stranger.expect_closed().await;

    // ...but the session itself lives on: the owner reattaches and keeps its ephemeral.
    let mut owner = Conn::open(&server.addr()).await;
    let resumed = owner.handshake(&ConnectRequest::reattach(&session, 0)).await;
    assert_eq!(resumed.session_id, session.session_id);
    let (code, stat) = owner.exists("/still", false).await;
    assert_eq!(code, err::OK);
    assert_eq!(stat.expect("stat").ephemeral_owner, session.session_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_expires_and_loses_its_ephemerals() {
    let server = Server::start();
    let (mut silent, session) = Conn::session(&server.addr(), 1000).await;
    assert_eq!(session.timeout_ms, 1000);
    silent.create("/lease", b"", 1).await;
    silent.create("/lease-seq-", b"", 3).await;

    let (mut observer, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(observer.exists("/lease", true).await.0, err::OK);
    // The silent client sends nothing from now on; expiry is time-based.
    let deleted = within("NodeDeleted after expiry", observer.next_event()).await;
    assert_eq!((deleted.event_type, deleted.path.as_str()), (event::NODE_DELETED, "/lease"));
    let children = observer.call(op::GET_CHILDREN, &raw::path_watch_body("/", false)).await;
    assert_eq!(children.ok("ls /").reader().strings(), ["zookeeper"]);

    // The server also drops the expired session's connection.
    silent.expect_closed().await;
    let mut late = Conn::open(&server.addr()).await;
    let response = late.handshake(&ConnectRequest::reattach(&session, 0)).await;
    assert_invalid_session(&response);
    late.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_a_short_session_alive() {
    let server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 3000).await;
    assert_eq!(session.timeout_ms, 3000);
    conn.create("/alive", b"", 1).await;
    // Ping far inside the timeout (a loaded machine may stall us) for over two timeouts.
    let end = std::time::Instant::now() + Duration::from_millis(7000);
    while std::time::Instant::now() < end {
        let reply = conn.ping().await;
        assert_eq!((reply.xid, reply.err), (-2, err::OK));
        assert!(reply.body.is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(conn.exists("/alive", false).await.0, err::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_reattach_to_a_closed_session_reports_expired() {
    let server = Server::start();
    let client = server.client().await;
    let connector = zk::Client::connector().with_session(client.session().clone());
    let (mut observer, _) = Conn::session(&server.addr(), 30_000).await;
    client.create("/crate-eph", b"", &EPHEMERAL).await.unwrap();
    assert_eq!(observer.exists("/crate-eph", true).await.0, err::OK);
    // Dropping the only handle closes the session.
    drop(client);
    let deleted = within("NodeDeleted", observer.next_event()).await;
    assert_eq!((deleted.event_type, deleted.path.as_str()), (event::NODE_DELETED, "/crate-eph"));
    let reattach = within("reattach", connector.connect(&server.addr())).await;
    assert_eq!(reattach.err(), Some(zk::Error::SessionExpired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_zxid_ahead_of_the_server_is_refused() {
    let server = Server::start();
    let mut conn = Conn::open(&server.addr()).await;
    let request = ConnectRequest { last_zxid_seen: 1 << 40, ..ConnectRequest::new_session(10_000) };
    conn.send_frame(&request.encode()).await;
    conn.expect_closed().await;
    // Others are unaffected.
    let (mut ok, _) = Conn::session(&server.addr(), 10_000).await;
    ok.ping().await.ok("ping");
}
