//! Containers and TTL nodes: creation (opcodes 19 and 21), the client-visible stat, reaping
//! by the server (time-based: polled with a deadline), and TTL being gated by
//! `extendedTypesEnabled`.

use std::time::Duration;

use zookeeper_client as zk;

use crate::harness::{eventually, within, Options, Server};
use crate::raw::{self, err, op, Conn, Jute};
use crate::{CONTAINER, PERSISTENT};

/// Reaping happens on the server's own schedule; allow plenty on a loaded machine.
const REAP_LIMIT: Duration = Duration::from_secs(60);

fn ttl(mode: zk::CreateMode, millis: u64) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_millis(millis))
}

async fn gone(client: &zk::Client, path: &str) -> Option<()> {
    match client.check_stat(path).await.unwrap() {
        None => Some(()),
        Some(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_is_reaped_once_its_last_child_goes() {
    let server = Server::start_with(Options::with_lines(&["znode.container.checkIntervalMs=100"]));
    let client = server.client().await;
    let (stat, _) = client.create("/box", b"", &CONTAINER).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    client.create("/never-used", b"", &CONTAINER).await.unwrap();
    client.create("/busy", b"", &CONTAINER).await.unwrap();
    client.create("/busy/kid", b"", &PERSISTENT).await.unwrap();
    // Containers take any kind of child, ephemerals included.
    client.create("/box/kid", b"", &crate::EPHEMERAL).await.unwrap();
    let (_, deleted) = client.check_and_watch_stat("/box").await.unwrap();

    client.delete("/box/kid", None).await.unwrap();
    eventually("/box reaped", REAP_LIMIT, || gone(&client, "/box")).await;
    let event = within("NodeDeleted /box", deleted.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDeleted, "/box"));

    // Reaped in the same passes, had they qualified: never-used and non-empty containers stay.
    assert!(client.check_stat("/never-used").await.unwrap().is_some());
    assert!(client.check_stat("/busy").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_node_is_reaped_after_its_ttl_when_childless() {
    let server = Server::start_with(Options::with_lines(&[
        "extendedTypesEnabled=true",
        "znode.container.checkIntervalMs=100",
    ]));
    let client = server.client().await;
    let (stat, _) =
        client.create("/short", b"", &ttl(zk::CreateMode::Persistent, 300)).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "TTL nodes report owner 0 to clients");
    assert!(!stat.is_invalid(), "createTTL answers with a Create2Response");
    let (_, n) =
        client.create("/seq-", b"", &ttl(zk::CreateMode::PersistentSequential, 300)).await.unwrap();
    assert!(n.into_i64() >= 0);
    let (_, _) =
        client.create("/parent", b"", &ttl(zk::CreateMode::Persistent, 300)).await.unwrap();
    client.create("/parent/kid", b"", &PERSISTENT).await.unwrap();
    client.create("/long", b"", &ttl(zk::CreateMode::Persistent, 3_600_000)).await.unwrap();

    eventually("/short reaped", REAP_LIMIT, || gone(&client, "/short")).await;
    let seq_path = format!("/seq-{n}");
    eventually("/seq- reaped", REAP_LIMIT, || gone(&client, &seq_path)).await;
    assert!(
        client.check_stat("/parent").await.unwrap().is_some(),
        "a TTL node with children stays"
    );
    assert!(client.check_stat("/long").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_unimplemented_unless_extended_types_are_enabled() {
    let server = Server::start();
    let client = server.client().await;
    let created = client.create("/t", b"", &ttl(zk::CreateMode::Persistent, 1000)).await;
    assert_eq!(created, Err(zk::Error::Unimplemented));
    let created = client.create("/t-", b"", &ttl(zk::CreateMode::PersistentSequential, 1000)).await;
    assert_eq!(created, Err(zk::Error::Unimplemented));
    assert_eq!(client.check_stat("/t").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_flags_and_ttl_values_are_validated() {
    let server = Server::start_with(Options::with_lines(&["extendedTypesEnabled=true"]));
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let ttl_body = |path: &str, flags: i32, ttl: i64| {
        Jute::new().ustring(path).buffer(Some(b"")).acls(raw::OPEN_ACL).int(flags).long(ttl).bytes()
    };
    let cases = [
        ("unknown flags", op::CREATE, raw::create_body("/f", Some(b""), 7)),
        ("negative flags", op::CREATE, raw::create_body("/f", Some(b""), -1)),
        ("TTL mode via create", op::CREATE, raw::create_body("/f", Some(b""), 5)),
        ("TTL mode via create2", op::CREATE2, raw::create_body("/f", Some(b""), 6)),
        ("zero ttl", op::CREATE_TTL, ttl_body("/f", 5, 0)),
        ("negative ttl", op::CREATE_TTL, ttl_body("/f", 5, -5)),
        ("ttl above 2^40-1", op::CREATE_TTL, ttl_body("/f", 5, 1 << 40)),
        ("createTTL with a non-TTL mode", op::CREATE_TTL, ttl_body("/f", 0, 1000)),
    ];
    for (what, opcode, body) in cases {
        assert_eq!(conn.call(opcode, &body).await.err, err::BAD_ARGUMENTS, "{what}");
    }
    assert_eq!(conn.exists("/f", false).await.0, err::NO_NODE);
    let reply = conn.call(op::CREATE_TTL, &ttl_body("/f", 5, (1 << 40) - 1)).await.ok("max ttl");
    let mut r = reply.reader();
    assert_eq!(r.ustring(), "/f");
    assert_eq!(r.stat().ephemeral_owner, 0);
    // createContainer always answers with a Create2Response.
    let reply = conn.call(op::CREATE_CONTAINER, &raw::create_body("/box", Some(b""), 4)).await;
    let reply = reply.ok("container");
    let mut r = reply.reader();
    assert_eq!(r.ustring(), "/box");
    assert_eq!(r.stat().ephemeral_owner, 0);
}
